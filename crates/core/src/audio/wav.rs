//! RIFF/WAVE header parsing: finds the `fmt ` and `data` chunks, validates the format and
//! reports where the samples are. Our own parser (not hound) so that every encoding the reader
//! supports (PCM 8/16/24/32, float 32/64, G.711 mu-law/A-law, each plain or inside
//! `WAVE_FORMAT_EXTENSIBLE`) goes through one path, hostile headers give typed errors instead of
//! panics, and the data chunk is streamed from a plain [`Read`] (no seeking, bounded memory).
//!
//! Tolerated quirks of real files: lying RIFF sizes (ignored), `RF64` (its `ds64` chunk is
//! skipped and the `data` chunk read to the end), data sizes of `0xFFFFFFFF` (streaming writers)
//! or 0 (a header never finalised): read to the end, data sizes past the end of the file (read what is there), unknown chunks
//! (skipped, with their pad byte when odd-sized), `fmt ` chunks with extra bytes, PCM bit depths
//! that are not a multiple of 8 (decoded by their byte container).

use std::io::{self, Read};

use super::SampleEncoding;
use super::{AudioError, AudioSpec, MAX_CHANNELS, MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ};

/// `WAVE_FORMAT_PCM`.
const TAG_PCM: u16 = 0x0001;
/// `WAVE_FORMAT_IEEE_FLOAT`.
const TAG_FLOAT: u16 = 0x0003;
/// `WAVE_FORMAT_ALAW`.
const TAG_ALAW: u16 = 0x0006;
/// `WAVE_FORMAT_MULAW`.
const TAG_MULAW: u16 = 0x0007;
/// `WAVE_FORMAT_EXTENSIBLE`.
const TAG_EXTENSIBLE: u16 = 0xFFFE;
/// The 14 bytes after the format tag in a `KSDATAFORMAT_SUBTYPE_*` GUID
/// (`xxxxxxxx-0000-0010-8000-00aa00389b71`; the tag fills the first 2 bytes, then 2 zero bytes).
const SUBFORMAT_GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];
/// Chunks read before giving up on finding `data` (real files have a handful).
const MAX_CHUNKS_BEFORE_DATA: usize = 1024;
/// Bytes of a `fmt ` chunk we look at (the extensible layout); the rest is skipped.
const FMT_BYTES_USED: usize = 40;

/// Where the samples are and how they are stored, as announced by a validated header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WavLayout {
    /// Rate, channels and encoding; `total_frames` from the data chunk size (`None` when it is
    /// `0xFFFFFFFF`, i.e. "until the end").
    pub spec: AudioSpec,
    /// Bytes per frame (all channels).
    pub block_align: usize,
    /// Bytes in the data chunk, `None` for "until the end of the stream".
    pub data_bytes: Option<u64>,
    /// Offset of the first sample byte from the start of the stream.
    pub data_offset: u64,
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
pub(crate) fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Discards up to `count` bytes; returns how many were there.
fn skip(reader: &mut dyn Read, count: u64) -> io::Result<u64> {
    io::copy(&mut reader.take(count), &mut io::sink())
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Printable form of a 4-byte chunk id for messages.
fn fourcc(id: &[u8]) -> String {
    id.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// Checks a sample rate against the supported range.
pub(crate) fn check_sample_rate(rate_hz: u32) -> Result<(), AudioError> {
    if !(MIN_SAMPLE_RATE_HZ..=MAX_SAMPLE_RATE_HZ).contains(&rate_hz) {
        return Err(AudioError::Unsupported(format!(
            "unsupported sample rate {rate_hz} Hz (expected \
             {MIN_SAMPLE_RATE_HZ}..={MAX_SAMPLE_RATE_HZ})"
        )));
    }
    Ok(())
}

/// Checks a channel count: 0 is malformed, more than [`MAX_CHANNELS`] unsupported.
pub(crate) fn check_channels(channels: u16) -> Result<(), AudioError> {
    if channels == 0 {
        return Err(AudioError::Malformed(format!(
            "channel count 0 (expected 1..={MAX_CHANNELS})"
        )));
    }
    if channels > MAX_CHANNELS {
        return Err(AudioError::Unsupported(format!(
            "unsupported channel count {channels} (expected 1..={MAX_CHANNELS})"
        )));
    }
    Ok(())
}

/// The validated contents of a `fmt ` chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fmt {
    sample_rate_hz: u32,
    channels: u16,
    encoding: SampleEncoding,
    block_align: usize,
}

/// Parses and validates the first (up to) [`FMT_BYTES_USED`] bytes of a `fmt ` chunk.
fn parse_fmt(bytes: &[u8]) -> Result<Fmt, AudioError> {
    let tag = u16_at(bytes, 0);
    let channels = u16_at(bytes, 2);
    let sample_rate_hz = u32_at(bytes, 4);
    let block_align = u16_at(bytes, 12);
    let bits = u16_at(bytes, 14);
    let tag = if tag == TAG_EXTENSIBLE {
        if bytes.len() < FMT_BYTES_USED {
            return Err(AudioError::Malformed(format!(
                "extensible fmt chunk of {} bytes (expected at least {FMT_BYTES_USED})",
                bytes.len()
            )));
        }
        let extension_bytes = u16_at(bytes, 16);
        if extension_bytes < 22 {
            return Err(AudioError::Malformed(format!(
                "extensible fmt extension of {extension_bytes} bytes (expected at least 22)"
            )));
        }
        let guid = &bytes[24..40];
        if guid[2..] != SUBFORMAT_GUID_TAIL {
            let hex: String = guid.iter().map(|b| format!("{b:02x}")).collect();
            return Err(AudioError::Unsupported(format!(
                "unsupported extensible sub-format guid {hex} (expected a \
                 KSDATAFORMAT_SUBTYPE pcm, float, a-law or mu-law guid)"
            )));
        }
        u16_at(guid, 0)
    } else {
        tag
    };
    check_channels(channels)?;
    check_sample_rate(sample_rate_hz)?;
    let encoding = match tag {
        TAG_PCM => match bits {
            1..=8 => SampleEncoding::PcmU8,
            9..=16 => SampleEncoding::Pcm16,
            17..=24 => SampleEncoding::Pcm24,
            25..=32 => SampleEncoding::Pcm32,
            _ => {
                return Err(AudioError::Unsupported(format!(
                    "unsupported pcm bit depth {bits} (expected 1..=32)"
                )));
            }
        },
        TAG_FLOAT => match bits {
            32 => SampleEncoding::Float32,
            64 => SampleEncoding::Float64,
            _ => {
                return Err(AudioError::Unsupported(format!(
                    "unsupported float bit depth {bits} (expected 32 or 64)"
                )));
            }
        },
        TAG_ALAW | TAG_MULAW => {
            if bits != 8 {
                return Err(AudioError::Unsupported(format!(
                    "unsupported g.711 bit depth {bits} (expected 8)"
                )));
            }
            if tag == TAG_ALAW {
                SampleEncoding::ALaw
            } else {
                SampleEncoding::MuLaw
            }
        }
        _ => {
            return Err(AudioError::Unsupported(format!(
                "unsupported wav format tag {tag:#06x} (expected 0x0001 pcm, 0x0003 float, \
                 0x0006 a-law, 0x0007 mu-law or 0xfffe extensible)"
            )));
        }
    };
    let bytes_per_sample = encoding.bytes_per_sample();
    let expected = usize::from(channels) * bytes_per_sample;
    if usize::from(block_align) != expected {
        return Err(AudioError::Malformed(format!(
            "block_align {block_align} does not match {channels} channels x {bytes_per_sample} \
             bytes per sample (expected {expected})"
        )));
    }
    Ok(Fmt {
        sample_rate_hz,
        channels,
        encoding,
        block_align: expected,
    })
}

/// Reads a RIFF/WAVE header up to the first sample byte. `source` names the input in I/O
/// errors. Never panics and always ends: every step consumes input or fails.
pub(crate) fn read_header(reader: &mut dyn Read, source: &str) -> Result<WavLayout, AudioError> {
    let io_error = |e: io::Error| AudioError::Io {
        path: source.to_string(),
        source: e,
    };
    let mut riff = [0u8; 12];
    let n = read_full(reader, &mut riff).map_err(io_error)?;
    if n == 0 {
        return Err(AudioError::NotWav("empty input (0 bytes)".into()));
    }
    if n < riff.len() {
        return Err(AudioError::NotWav(format!(
            "{n} bytes is too short for a RIFF header (expected at least 12)"
        )));
    }
    match &riff[0..4] {
        b"RIFF" | b"RF64" => {}
        b"RIFX" => {
            return Err(AudioError::Unsupported(
                "unsupported big-endian RIFX wav (expected little-endian RIFF)".into(),
            ));
        }
        other => {
            return Err(AudioError::NotWav(format!(
                "file starts with \"{}\" (expected \"RIFF\")",
                fourcc(other)
            )));
        }
    }
    if &riff[8..12] != b"WAVE" {
        return Err(AudioError::NotWav(format!(
            "RIFF form type \"{}\" (expected \"WAVE\")",
            fourcc(&riff[8..12])
        )));
    }
    let mut offset: u64 = 12;
    let mut fmt: Option<Fmt> = None;
    for _ in 0..MAX_CHUNKS_BEFORE_DATA {
        let mut header = [0u8; 8];
        let n = read_full(reader, &mut header).map_err(io_error)?;
        if n < header.len() {
            let missing = if fmt.is_none() { "fmt" } else { "data" };
            return Err(AudioError::Malformed(format!(
                "no {missing} chunk before the end of the file at byte {}",
                offset + n as u64
            )));
        }
        offset += 8;
        let id = &header[0..4];
        let size = u32_at(&header, 4);
        match id {
            b"fmt " => {
                if fmt.is_some() {
                    return Err(AudioError::Malformed(format!(
                        "second fmt chunk at byte {} (expected one)",
                        offset - 8
                    )));
                }
                if size < 16 {
                    return Err(AudioError::Malformed(format!(
                        "fmt chunk of {size} bytes (expected at least 16)"
                    )));
                }
                let used = (size as usize).min(FMT_BYTES_USED);
                let mut bytes = [0u8; FMT_BYTES_USED];
                let got = read_full(reader, &mut bytes[..used]).map_err(io_error)?;
                if got < used {
                    return Err(AudioError::Malformed(format!(
                        "fmt chunk truncated: {got} of {size} bytes before the end of the file"
                    )));
                }
                let rest = u64::from(size) - used as u64 + u64::from(size & 1);
                let skipped = skip(reader, rest).map_err(io_error)?;
                offset += used as u64 + skipped;
                fmt = Some(parse_fmt(&bytes[..used])?);
            }
            b"data" => {
                let Some(fmt) = fmt else {
                    return Err(AudioError::Malformed(
                        "data chunk before the fmt chunk (expected fmt first)".into(),
                    ));
                };
                // 0xFFFFFFFF is what streaming writers put before they know the size, and 0 is
                // what a recorder that never finalised its header leaves: read both to the end
                // (a truly empty data chunk then simply yields nothing).
                let data_bytes = (size != u32::MAX && size != 0).then_some(u64::from(size));
                return Ok(WavLayout {
                    spec: AudioSpec {
                        sample_rate_hz: fmt.sample_rate_hz,
                        channels: fmt.channels,
                        encoding: fmt.encoding,
                        total_frames: data_bytes.map(|b| b / fmt.block_align as u64),
                    },
                    block_align: fmt.block_align,
                    data_bytes,
                    data_offset: offset,
                });
            }
            _ => {
                // Unknown chunk (LIST, fact, cue, ds64, JUNK, ...): skip it and its pad byte.
                let skipped =
                    skip(reader, u64::from(size) + u64::from(size & 1)).map_err(io_error)?;
                offset += skipped;
            }
        }
    }
    Err(AudioError::Malformed(format!(
        "no data chunk within the first {MAX_CHUNKS_BEFORE_DATA} chunks"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A canonical 44-byte-header WAV with the given fmt fields and data.
    fn wav(
        tag: u16,
        channels: u16,
        rate: u32,
        bits: u16,
        block_align: u16,
        data: &[u8],
    ) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        v.extend_from_slice(&block_align.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    fn parse(bytes: &[u8]) -> Result<WavLayout, AudioError> {
        read_header(&mut &bytes[..], "test")
    }

    #[test]
    fn parses_canonical_pcm16() {
        let layout = parse(&wav(1, 2, 44_100, 16, 4, &[0; 40])).unwrap();
        assert_eq!(layout.spec.encoding, SampleEncoding::Pcm16);
        assert_eq!(layout.spec.channels, 2);
        assert_eq!(layout.spec.total_frames, Some(10));
        assert_eq!(layout.block_align, 4);
        assert_eq!(layout.data_offset, 44);
    }

    #[test]
    fn parses_g711_tags() {
        assert_eq!(
            parse(&wav(7, 1, 8_000, 8, 1, &[])).unwrap().spec.encoding,
            SampleEncoding::MuLaw
        );
        assert_eq!(
            parse(&wav(6, 1, 8_000, 8, 1, &[])).unwrap().spec.encoding,
            SampleEncoding::ALaw
        );
    }

    #[test]
    fn error_messages_name_value_and_rule() {
        let e = parse(&wav(1, 1, 4_000, 16, 2, &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unsupported sample rate 4000 Hz (expected 8000..=192000)"),
            "{e}"
        );
        let e = parse(&wav(1, 1, 8_000, 16, 3, &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("block_align 3") && e.contains("expected 2"),
            "{e}"
        );
        let e = parse(&wav(2, 1, 8_000, 4, 1, &[])).unwrap_err().to_string();
        assert!(e.contains("format tag 0x0002"), "{e}");
        let e = parse(&wav(1, 0, 8_000, 16, 0, &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("channel count 0"), "{e}");
        let e = parse(&wav(1, 33, 8_000, 16, 66, &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("channel count 33 (expected 1..=32)"), "{e}");
    }

    #[test]
    fn short_inputs_are_not_wav() {
        assert!(matches!(parse(&[]), Err(AudioError::NotWav(_))));
        assert!(matches!(parse(b"RIFF"), Err(AudioError::NotWav(_))));
        assert!(matches!(
            parse(b"RIFF\0\0\0\0WAVE"),
            Err(AudioError::Malformed(_))
        ));
    }
}
