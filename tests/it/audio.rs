//! The audio input edge through the public API: WAV files of every supported encoding written to
//! a temp dir, every kind of bad input (each must give a clear error or a clean early end, never
//! a panic or a hang), raw streams, property tests over arbitrary bytes, resampling a decoded
//! file, and the shared real recordings when they are present.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use attune_core::audio::{
    AudioError, AudioReader, MAX_CHANNELS, RawFormat, Resampler, SampleEncoding, g711, read_all,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A fresh file path in this binary's folder under cargo's `target/tmp` (overwritten by the next run).
fn temp_path(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("it-audio");
    std::fs::create_dir_all(&dir).unwrap();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{n}-{name}"))
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = temp_path(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A WAV file assembled field by field, so tests can make every field lie.
#[derive(Clone)]
struct Wav {
    magic: [u8; 4],
    tag: u16,
    channels: u16,
    rate_hz: u32,
    bits: u16,
    /// `None`: channels * bytes per sample.
    block_align: Option<u16>,
    /// `Some(sub_tag)`: write a 40-byte WAVE_FORMAT_EXTENSIBLE fmt chunk with this sub-format.
    extensible: Option<u16>,
    /// Chunks written before `fmt ` and between `fmt ` and `data` (id, payload).
    before_fmt: Vec<([u8; 4], Vec<u8>)>,
    before_data: Vec<([u8; 4], Vec<u8>)>,
    /// `None`: the real length.
    data_size: Option<u32>,
    data: Vec<u8>,
}

impl Wav {
    fn new(tag: u16, channels: u16, rate_hz: u32, bits: u16, data: Vec<u8>) -> Self {
        Self {
            magic: *b"RIFF",
            tag,
            channels,
            rate_hz,
            bits,
            block_align: None,
            extensible: None,
            before_fmt: Vec::new(),
            before_data: Vec::new(),
            data_size: None,
            data,
        }
    }

    fn pcm16(channels: u16, rate_hz: u32, samples: &[i16]) -> Self {
        let data = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        Self::new(1, channels, rate_hz, 16, data)
    }

    fn chunk(out: &mut Vec<u8>, id: &[u8; 4], payload: &[u8]) {
        out.extend_from_slice(id);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        if payload.len() % 2 == 1 {
            out.push(0);
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let container = self.bits.div_ceil(8);
        let block_align = self
            .block_align
            .unwrap_or(self.channels.wrapping_mul(container));
        let mut fmt = Vec::new();
        let tag = if self.extensible.is_some() {
            0xFFFE
        } else {
            self.tag
        };
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&self.channels.to_le_bytes());
        fmt.extend_from_slice(&self.rate_hz.to_le_bytes());
        fmt.extend_from_slice(
            &self
                .rate_hz
                .wrapping_mul(u32::from(block_align))
                .to_le_bytes(),
        );
        fmt.extend_from_slice(&block_align.to_le_bytes());
        fmt.extend_from_slice(&self.bits.to_le_bytes());
        if let Some(sub_tag) = self.extensible {
            fmt.extend_from_slice(&22u16.to_le_bytes());
            fmt.extend_from_slice(&self.bits.to_le_bytes());
            fmt.extend_from_slice(&0u32.to_le_bytes());
            fmt.extend_from_slice(&sub_tag.to_le_bytes());
            fmt.extend_from_slice(&[
                0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
            ]);
        }
        let mut body = b"WAVE".to_vec();
        for (id, payload) in &self.before_fmt {
            Self::chunk(&mut body, id, payload);
        }
        Self::chunk(&mut body, b"fmt ", &fmt);
        for (id, payload) in &self.before_data {
            Self::chunk(&mut body, id, payload);
        }
        body.extend_from_slice(b"data");
        let size = self.data_size.unwrap_or(self.data.len() as u32);
        body.extend_from_slice(&size.to_le_bytes());
        body.extend_from_slice(&self.data);
        let mut out = self.magic.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn write(&self, name: &str) -> PathBuf {
        write_temp(name, &self.bytes())
    }
}

/// Reads every frame with odd chunk sizes, checking the streaming contract on the way.
fn read_streamed(reader: &mut AudioReader) -> Result<Vec<Vec<f32>>, AudioError> {
    let channels = usize::from(reader.spec().channels);
    let mut all = vec![Vec::new(); channels];
    let mut out = vec![Vec::new(); channels];
    let sizes = [1usize, 7, 1000, 3];
    for i in 0.. {
        let max = sizes[i % sizes.len()];
        let n = reader.read_frames(max, &mut out)?;
        assert!(n <= max);
        for (a, o) in all.iter_mut().zip(&out) {
            assert_eq!(o.len(), n);
            a.extend_from_slice(o);
        }
        if n == 0 {
            break;
        }
    }
    Ok(all)
}

fn open_bytes(bytes: &[u8]) -> Result<AudioReader, AudioError> {
    AudioReader::from_wav_bytes(bytes.to_vec())
}

fn err_text(result: Result<AudioReader, AudioError>) -> (AudioError, String) {
    let e = result.expect_err("expected an error");
    let text = e.to_string();
    (e, text)
}

// ---------------------------------------------------------------------------------------------
// Encodings

#[test]
fn pcm16_stereo_round_trips_exactly() {
    let samples: Vec<i16> = vec![0, 1, -1, i16::MAX, i16::MIN, 1234, -4321, 16_384];
    let path = Wav::pcm16(2, 16_000, &samples).write("pcm16.wav");
    let mut reader = attune_qa::files::open_wav(&path).unwrap();
    let spec = reader.spec().clone();
    assert_eq!(spec.sample_rate_hz, 16_000);
    assert_eq!(spec.channels, 2);
    assert_eq!(spec.encoding, SampleEncoding::Pcm16);
    assert_eq!(spec.total_frames, Some(4));
    let got = read_streamed(&mut reader).unwrap();
    for (i, &s) in samples.iter().enumerate() {
        assert_eq!(got[i % 2][i / 2], f32::from(s) / 32_768.0);
    }
    assert!(!reader.truncated());
}

#[test]
fn hound_written_files_decode_like_hound_reads_them() {
    // hound as an independent writer and reader for every PCM/float layout it supports.
    let cases: [(u16, hound::SampleFormat, u16); 6] = [
        (8, hound::SampleFormat::Int, 1),
        (16, hound::SampleFormat::Int, 2),
        (24, hound::SampleFormat::Int, 1),
        (32, hound::SampleFormat::Int, 3),
        (32, hound::SampleFormat::Float, 2),
        (16, hound::SampleFormat::Int, 20),
    ];
    for (bits, format, channels) in cases {
        let spec = hound::WavSpec {
            channels,
            sample_rate: 22_050,
            bits_per_sample: bits,
            sample_format: format,
        };
        let path = temp_path(&format!("hound-{bits}-{channels}.wav"));
        let frames = 300usize;
        let full_scale = (1i64 << (bits - 1)) as f64;
        {
            let mut w = hound::WavWriter::create(&path, spec).unwrap();
            for n in 0..frames * usize::from(channels) {
                let x = ((n as f64) * 0.37).sin() * 0.9;
                match format {
                    hound::SampleFormat::Float => w.write_sample(x as f32).unwrap(),
                    hound::SampleFormat::Int => w
                        .write_sample((x * (full_scale - 1.0)).round() as i32)
                        .unwrap(),
                }
            }
            w.finalize().unwrap();
        }
        let buffer = attune_qa::files::read_wav(&path).unwrap();
        assert_eq!(buffer.sample_rate_hz, 22_050);
        assert_eq!(buffer.channels.len(), usize::from(channels));
        let mut reader = hound::WavReader::open(&path).unwrap();
        let expected: Vec<f32> = match format {
            hound::SampleFormat::Float => reader.samples::<f32>().map(Result::unwrap).collect(),
            hound::SampleFormat::Int => reader
                .samples::<i32>()
                .map(|s| (f64::from(s.unwrap()) / full_scale) as f32)
                .collect(),
        };
        assert_eq!(expected.len(), frames * usize::from(channels));
        for (n, e) in expected.iter().enumerate() {
            let got = buffer.channels[n % usize::from(channels)][n / usize::from(channels)];
            assert!(
                (got - e).abs() < 1e-6,
                "{bits}-bit {format:?}: {got} vs {e}"
            );
        }
    }
}

#[test]
fn pcm_u8_24_32_and_float64_known_values() {
    let u8_wav = Wav::new(1, 1, 8_000, 8, vec![0, 128, 255, 64]);
    let got = read_all(open_bytes(&u8_wav.bytes()).unwrap()).unwrap();
    assert_eq!(got.channels[0], vec![-1.0, 0.0, 127.0 / 128.0, -0.5]);

    let pcm24 = Wav::new(
        1,
        1,
        8_000,
        24,
        vec![0x00, 0x00, 0x80, 0xFF, 0xFF, 0x7F, 0x00, 0x00, 0x40],
    );
    let got = read_all(open_bytes(&pcm24.bytes()).unwrap()).unwrap();
    assert_eq!(got.channels[0], vec![-1.0, 8_388_607.0 / 8_388_608.0, 0.5]);

    let pcm32 = Wav::new(
        1,
        1,
        8_000,
        32,
        [i32::MIN, 1 << 30]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    );
    let got = read_all(open_bytes(&pcm32.bytes()).unwrap()).unwrap();
    assert_eq!(got.channels[0], vec![-1.0, 0.5]);

    let f64s = [0.25f64, -0.75, 1.5];
    let float64 = Wav::new(
        3,
        1,
        8_000,
        64,
        f64s.iter().flat_map(|v| v.to_le_bytes()).collect(),
    );
    let mut reader = open_bytes(&float64.bytes()).unwrap();
    assert_eq!(reader.spec().encoding, SampleEncoding::Float64);
    let got = read_streamed(&mut reader).unwrap();
    // Out-of-range floats are clamped to [-1, 1].
    assert_eq!(got[0], vec![0.25, -0.75, 1.0]);
}

#[test]
fn g711_wav_files_decode_with_the_tables() {
    let codes: Vec<u8> = (0..=255).collect();
    for (tag, encoding, decode) in [
        (
            7u16,
            SampleEncoding::MuLaw,
            g711::decode_mulaw as fn(u8) -> i16,
        ),
        (6, SampleEncoding::ALaw, g711::decode_alaw),
    ] {
        for extensible in [None, Some(tag)] {
            let mut wav = Wav::new(tag, 1, 8_000, 8, codes.clone());
            wav.extensible = extensible;
            let path = wav.write("g711.wav");
            let buffer = attune_qa::files::read_wav(&path).unwrap();
            assert_eq!(
                attune_qa::files::open_wav(&path).unwrap().spec().encoding,
                encoding
            );
            let expected: Vec<f32> = codes
                .iter()
                .map(|&c| f32::from(decode(c)) / 32_768.0)
                .collect();
            assert_eq!(
                buffer.channels[0], expected,
                "tag {tag} extensible {extensible:?}"
            );
        }
    }
}

#[test]
fn extensible_pcm_and_float_decode() {
    let mut wav = Wav::pcm16(1, 48_000, &[100, -200]);
    wav.extensible = Some(1);
    let got = read_all(open_bytes(&wav.bytes()).unwrap()).unwrap();
    assert_eq!(got.channels[0], vec![100.0 / 32_768.0, -200.0 / 32_768.0]);

    let mut wav = Wav::new(3, 1, 48_000, 32, 0.5f32.to_le_bytes().to_vec());
    wav.extensible = Some(3);
    assert_eq!(
        read_all(open_bytes(&wav.bytes()).unwrap())
            .unwrap()
            .channels[0],
        vec![0.5]
    );

    // An unknown sub-format GUID is refused with its value.
    let mut wav = Wav::pcm16(1, 48_000, &[0]);
    wav.extensible = Some(0x0055);
    let (e, text) = err_text(open_bytes(&wav.bytes()));
    assert!(matches!(e, AudioError::Unsupported(_)), "{text}");
    assert!(text.contains("format tag 0x0055"), "{text}");
}

#[test]
fn twenty_channels_work_and_deinterleave() {
    let channels = 20u16;
    let frames = 50usize;
    let samples: Vec<i16> = (0..frames * 20)
        .map(|n| (n % 20) as i16 * 100 + (n / 20) as i16)
        .collect();
    let path = Wav::pcm16(channels, 8_000, &samples).write("twenty.wav");
    let buffer = attune_qa::files::read_wav(&path).unwrap();
    assert_eq!(buffer.channels.len(), 20);
    for (c, ch) in buffer.channels.iter().enumerate() {
        assert_eq!(ch.len(), frames);
        for (f, &v) in ch.iter().enumerate() {
            assert_eq!(v, (c as i16 * 100 + f as i16) as f32 / 32_768.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness: bad headers and bad data

#[test]
fn data_chunk_larger_than_file_reads_what_is_there() {
    let mut wav = Wav::pcm16(1, 8_000, &[1, 2, 3, 4, 5]);
    wav.data_size = Some(1_000_000);
    let path = wav.write("lying-size.wav");
    let mut reader = attune_qa::files::open_wav(&path).unwrap();
    assert_eq!(
        reader.spec().total_frames,
        Some(5),
        "capped at the bytes present"
    );
    let got = read_streamed(&mut reader).unwrap();
    assert_eq!(got[0].len(), 5);
    assert!(reader.truncated());
    // Reading after the end keeps returning 0.
    let mut out = vec![Vec::new()];
    assert_eq!(reader.read_frames(100, &mut out).unwrap(), 0);
}

#[test]
fn streaming_size_ffffffff_reads_to_eof() {
    let mut wav = Wav::pcm16(2, 8_000, &[1, 2, 3, 4, 5, 6, 7]);
    wav.data_size = Some(u32::MAX);
    let mut reader = open_bytes(&wav.bytes()).unwrap();
    assert_eq!(reader.spec().total_frames, Some(3));
    let got = read_streamed(&mut reader).unwrap();
    // 7 samples = 3 whole stereo frames; the trailing half frame is dropped.
    assert_eq!(got[0].len(), 3);
    assert!(!reader.truncated());

    let mut reader =
        AudioReader::from_wav_reader(Box::new(std::io::Cursor::new(wav.bytes()))).unwrap();
    assert_eq!(reader.spec().total_frames, None);
    assert_eq!(read_streamed(&mut reader).unwrap()[1].len(), 3);
}

#[test]
fn unfinalised_zero_data_size_reads_to_eof_and_empty_data_is_empty() {
    let mut wav = Wav::pcm16(1, 8_000, &[1, 2, 3]);
    wav.data_size = Some(0);
    let path = wav.write("unfinalised.wav");
    let mut reader = attune_qa::files::open_wav(&path).unwrap();
    assert_eq!(reader.spec().total_frames, Some(3));
    assert_eq!(read_streamed(&mut reader).unwrap()[0].len(), 3);

    let empty = Wav::pcm16(1, 8_000, &[]);
    let mut reader = open_bytes(&empty.bytes()).unwrap();
    assert_eq!(reader.spec().total_frames, Some(0));
    assert_eq!(read_streamed(&mut reader).unwrap()[0].len(), 0);
}

#[test]
fn odd_and_unknown_chunks_are_skipped_with_padding() {
    let mut wav = Wav::pcm16(1, 8_000, &[7, 8, 9]);
    wav.before_fmt.push((*b"JUNK", vec![1, 2, 3]));
    wav.before_data.push((*b"LIST", vec![0xAA; 5]));
    wav.before_data
        .push((*b"fact", 3u32.to_le_bytes().to_vec()));
    wav.before_data.push((*b"zzzz", Vec::new()));
    let got = read_all(open_bytes(&wav.bytes()).unwrap()).unwrap();
    assert_eq!(
        got.channels[0],
        vec![7.0 / 32_768.0, 8.0 / 32_768.0, 9.0 / 32_768.0]
    );
}

#[test]
fn odd_sized_data_chunk_drops_the_partial_frame() {
    let mut wav = Wav::pcm16(1, 8_000, &[5, 6]);
    wav.data.push(0x7F);
    let mut reader = open_bytes(&wav.bytes()).unwrap();
    assert_eq!(read_streamed(&mut reader).unwrap()[0].len(), 2);
}

#[test]
fn empty_and_short_files_are_not_wav() {
    for bytes in [
        &b""[..],
        b"R",
        b"RIFF\x10\0\0\0WAV",
        b"hello world, not a wav at all",
    ] {
        let path = write_temp("short.wav", bytes);
        let (e, text) = err_text(attune_qa::files::open_wav(&path));
        assert!(matches!(e, AudioError::NotWav(_)), "{text}");
    }
    let (_, text) = err_text(attune_qa::files::open_wav(&write_temp("empty.wav", b"")));
    assert!(text.contains("0 bytes"), "{text}");
    let (e, text) = err_text(open_bytes(b"RIFF\x04\0\0\0WAVE"));
    assert!(
        matches!(e, AudioError::Malformed(_)) && text.contains("no fmt chunk"),
        "{text}"
    );
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let path = temp_path("does-not-exist.wav");
    let (e, text) = err_text(attune_qa::files::open_wav(&path));
    assert!(matches!(e, AudioError::Io { .. }));
    assert!(text.contains("does-not-exist.wav"), "{text}");
}

#[test]
fn zero_channels_is_malformed() {
    let wav = Wav::new(1, 0, 8_000, 16, vec![0; 4]);
    let (e, text) = err_text(open_bytes(&wav.bytes()));
    assert!(matches!(e, AudioError::Malformed(_)), "{text}");
    assert!(text.contains("channel count 0 (expected 1..=32)"), "{text}");
}

#[test]
fn too_many_channels_is_unsupported() {
    let channels = MAX_CHANNELS + 1;
    let wav = Wav::new(1, channels, 8_000, 16, vec![0; 4 * usize::from(channels)]);
    let (e, text) = err_text(open_bytes(&wav.bytes()));
    assert!(matches!(e, AudioError::Unsupported(_)), "{text}");
    assert!(
        text.contains("channel count 33 (expected 1..=32)"),
        "{text}"
    );
}

#[test]
fn sample_rates_outside_range_are_unsupported() {
    for (rate, shown) in [
        (4_000u32, "4000 Hz"),
        (7_999, "7999 Hz"),
        (192_001, "192001 Hz"),
        (0, "0 Hz"),
    ] {
        let wav = Wav::pcm16(1, rate, &[0; 4]);
        let (e, text) = err_text(open_bytes(&wav.bytes()));
        assert!(matches!(e, AudioError::Unsupported(_)), "{text}");
        assert!(
            text.contains(&format!(
                "unsupported sample rate {shown} (expected 8000..=192000)"
            )),
            "{text}"
        );
    }
    for rate in [8_000u32, 192_000] {
        assert!(open_bytes(&Wav::pcm16(1, rate, &[0; 4]).bytes()).is_ok());
    }
}

#[test]
fn inconsistent_block_align_is_malformed() {
    for align in [0u16, 1, 3, 8] {
        let mut wav = Wav::pcm16(2, 8_000, &[0; 8]);
        wav.block_align = Some(align);
        let (e, text) = err_text(open_bytes(&wav.bytes()));
        assert!(matches!(e, AudioError::Malformed(_)), "{text}");
        assert!(
            text.contains(&format!("block_align {align}")) && text.contains("expected 4"),
            "{text}"
        );
    }
}

#[test]
fn unsupported_formats_name_the_value() {
    let (_, text) = err_text(open_bytes(&Wav::new(2, 1, 8_000, 4, vec![0; 4]).bytes()));
    assert!(text.contains("format tag 0x0002"), "{text}");
    let (_, text) = err_text(open_bytes(&Wav::new(3, 1, 8_000, 16, vec![0; 4]).bytes()));
    assert!(text.contains("float bit depth 16"), "{text}");
    let (_, text) = err_text(open_bytes(&Wav::new(7, 1, 8_000, 16, vec![0; 4]).bytes()));
    assert!(text.contains("bit depth 16"), "{text}");
    let (_, text) = err_text(open_bytes(&Wav::new(1, 1, 8_000, 40, vec![0; 10]).bytes()));
    assert!(text.contains("pcm bit depth 40"), "{text}");
    let mut rifx = Wav::pcm16(1, 8_000, &[0]);
    rifx.magic = *b"RIFX";
    let (e, text) = err_text(open_bytes(&rifx.bytes()));
    assert!(matches!(e, AudioError::Unsupported(_)), "{text}");
}

#[test]
fn nonfinite_floats_become_zero_and_are_counted() {
    let values = [0.5f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.25];
    let wav = Wav::new(
        3,
        1,
        8_000,
        32,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    );
    let mut reader = open_bytes(&wav.bytes()).unwrap();
    let got = read_streamed(&mut reader).unwrap();
    assert_eq!(got[0], vec![0.5, 0.0, 0.0, 0.0, -0.25]);
    assert_eq!(reader.nonfinite_samples(), 3);
}

#[test]
fn data_before_fmt_and_duplicate_fmt_are_malformed() {
    let mut bytes = b"RIFF\x00\x00\x00\x00WAVEdata\x02\x00\x00\x00\x00\x00".to_vec();
    let (e, text) = err_text(open_bytes(&bytes));
    assert!(
        matches!(e, AudioError::Malformed(_)) && text.contains("before the fmt"),
        "{text}"
    );
    let good = Wav::pcm16(1, 8_000, &[1]).bytes();
    bytes = good[..36].to_vec();
    bytes.extend_from_slice(&good[12..]);
    let (e, text) = err_text(open_bytes(&bytes));
    assert!(
        matches!(e, AudioError::Malformed(_)) && text.contains("second fmt"),
        "{text}"
    );
}

#[test]
fn fmt_chunk_too_small_or_cut_is_malformed() {
    let good = Wav::pcm16(1, 8_000, &[1]).bytes();
    let mut small = good.clone();
    small[16..20].copy_from_slice(&12u32.to_le_bytes());
    let (e, text) = err_text(open_bytes(&small));
    assert!(
        matches!(e, AudioError::Malformed(_)) && text.contains("fmt chunk of 12 bytes"),
        "{text}"
    );
    let (e, text) = err_text(open_bytes(&good[..30]));
    assert!(
        matches!(e, AudioError::Malformed(_)) && text.contains("truncated"),
        "{text}"
    );
}

#[test]
fn every_prefix_of_a_valid_file_fails_cleanly_or_reads_less() {
    let mut wav = Wav::pcm16(2, 44_100, &(0..64).collect::<Vec<i16>>());
    wav.before_data.push((*b"LIST", vec![1; 9]));
    let bytes = wav.bytes();
    for len in 0..bytes.len() {
        match open_bytes(&bytes[..len]) {
            Ok(mut reader) => {
                let got = read_streamed(&mut reader).unwrap();
                assert!(got[0].len() < 32);
                assert!(reader.truncated() || got[0].is_empty());
            }
            Err(AudioError::NotWav(_) | AudioError::Malformed(_)) => {}
            Err(e) => panic!("prefix {len}: unexpected {e}"),
        }
    }
}

#[test]
fn wrong_output_channel_count_is_an_argument_error() {
    let mut reader = open_bytes(&Wav::pcm16(2, 8_000, &[1, 2]).bytes()).unwrap();
    let mut out = vec![Vec::new()];
    let e = reader.read_frames(10, &mut out).unwrap_err();
    assert!(matches!(e, AudioError::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("expected 2"), "{e}");
}

/// A stream of `len` bytes after a header, produced on the fly (a multi-hour call).
struct Generated {
    header: Vec<u8>,
    pos: u64,
    len: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let header_len = self.header.len() as u64;
        let total = header_len + self.len;
        let mut n = 0;
        while n < buf.len() && self.pos < total {
            buf[n] = if self.pos < header_len {
                self.header[self.pos as usize]
            } else {
                (self.pos % 251) as u8
            };
            self.pos += 1;
            n += 1;
        }
        Ok(n)
    }
}

#[test]
fn four_hour_stream_is_read_in_bounded_chunks() {
    // Four hours of 8 kHz mu-law, streamed with an "until the end" data size.
    let mut wav = Wav::new(7, 1, 8_000, 8, Vec::new());
    wav.data_size = Some(u32::MAX);
    let len = 4 * 3600 * 8_000u64;
    let source = Generated {
        header: wav.bytes(),
        pos: 0,
        len,
    };
    let mut reader = AudioReader::from_wav_reader(Box::new(source)).unwrap();
    let mut out = vec![Vec::with_capacity(24_000)];
    let mut total = 0u64;
    loop {
        let n = reader.read_frames(24_000, &mut out).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        // The caller's buffer never grows past the chunk it asked for.
        assert!(out[0].capacity() <= 24_000);
    }
    assert_eq!(total, len);
}

// ---------------------------------------------------------------------------------------------
// Raw streams

#[test]
fn raw_streams_of_each_encoding_decode() {
    let codes: Vec<u8> = (0..=255).collect();
    let fmt = |encoding, channels| RawFormat {
        encoding,
        sample_rate_hz: 8_000,
        channels,
    };
    let path = write_temp("raw.ul", &codes);
    let got = read_all(attune_qa::files::open_raw(&path, fmt(SampleEncoding::MuLaw, 1)).unwrap())
        .unwrap();
    assert_eq!(got.channels[0][0], -32_124.0 / 32_768.0);
    assert_eq!(got.channels[0][255], 0.0);
    let got =
        read_all(attune_qa::files::open_raw(&path, fmt(SampleEncoding::ALaw, 2)).unwrap()).unwrap();
    assert_eq!(
        got.channels[1][0x6A],
        f32::from(g711::decode_alaw(0xD5)) / 32_768.0
    );

    // PCM16 with a trailing odd byte: the partial sample is ignored.
    let mut pcm = [1000i16, -1000, 5]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect::<Vec<u8>>();
    pcm.push(0x12);
    let path = write_temp("raw.s16", &pcm);
    let mut reader = attune_qa::files::open_raw(&path, fmt(SampleEncoding::Pcm16, 1)).unwrap();
    assert_eq!(reader.spec().total_frames, Some(3));
    assert_eq!(
        read_streamed(&mut reader).unwrap()[0],
        vec![1000.0 / 32_768.0, -1000.0 / 32_768.0, 5.0 / 32_768.0]
    );

    // F32 stereo with a trailing partial frame (one sample of two).
    let floats = [0.1f32, 0.2, 0.3, f32::NAN, 0.5];
    let bytes: Vec<u8> = floats.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut reader = AudioReader::from_raw_reader(
        Box::new(std::io::Cursor::new(bytes)),
        fmt(SampleEncoding::Float32, 2),
    )
    .unwrap();
    let got = read_streamed(&mut reader).unwrap();
    assert_eq!(got[0], vec![0.1, 0.3]);
    assert_eq!(got[1], vec![0.2, 0.0]);
    assert_eq!(reader.nonfinite_samples(), 1);
}

#[test]
fn raw_format_is_validated() {
    let path = write_temp("raw-bad.ul", &[0; 16]);
    for (rate, channels) in [(8_000, 0u16), (4_000, 1), (8_000, 33)] {
        let format = RawFormat {
            encoding: SampleEncoding::MuLaw,
            sample_rate_hz: rate,
            channels,
        };
        assert!(
            attune_qa::files::open_raw(&path, format).is_err(),
            "{rate} Hz {channels} ch"
        );
    }
    let empty = write_temp("raw-empty.ul", &[]);
    let format = RawFormat {
        encoding: SampleEncoding::MuLaw,
        sample_rate_hz: 8_000,
        channels: 1,
    };
    let mut reader = attune_qa::files::open_raw(&empty, format).unwrap();
    assert_eq!(read_streamed(&mut reader).unwrap()[0].len(), 0);
}

// ---------------------------------------------------------------------------------------------
// Property tests: arbitrary and mutated input never panics and always ends

/// Decodes everything the bytes allow; panics only on a broken invariant.
fn decode_fully(bytes: Vec<u8>) {
    if let Ok(mut reader) = AudioReader::from_wav_bytes(bytes) {
        let channels = usize::from(reader.spec().channels);
        assert!((1..=usize::from(MAX_CHANNELS)).contains(&channels));
        let mut out = vec![Vec::new(); channels];
        let mut calls = 0;
        while reader.read_frames(333, &mut out).unwrap() > 0 {
            calls += 1;
            assert!(calls < 1_000_000, "reader does not end");
            for ch in &out {
                assert!(ch.iter().all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
            }
        }
    }
}

fn valid_header_strategy() -> impl Strategy<Value = Vec<u8>> {
    let encodings = prop_oneof![
        Just((1u16, 8u16)),
        Just((1, 16)),
        Just((1, 24)),
        Just((1, 32)),
        Just((3, 32)),
        Just((3, 64)),
        Just((6, 8)),
        Just((7, 8)),
    ];
    (
        encodings,
        1u16..4,
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|((tag, bits), channels, extensible, data)| {
            let mut wav = Wav::new(tag, channels, 16_000, bits, data);
            if extensible {
                wav.extensible = Some(tag);
            }
            wav.bytes()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_fully(bytes);
    }

    #[test]
    fn arbitrary_bytes_after_riff_magic_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut v = b"RIFF\xff\xff\xff\xffWAVE".to_vec();
        v.extend_from_slice(&bytes);
        decode_fully(v);
    }

    #[test]
    fn mutated_valid_headers_never_panic(
        valid in valid_header_strategy(),
        edits in proptest::collection::vec((0usize..80, any::<u8>()), 1..8),
        cut in any::<proptest::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut bytes = valid;
        for (at, value) in edits {
            if at < bytes.len() {
                bytes[at] = value;
            }
        }
        if do_cut {
            let len = cut.index(bytes.len() + 1);
            bytes.truncate(len);
        }
        decode_fully(bytes);
    }

    #[test]
    fn raw_streams_of_any_length_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        which in 0usize..8,
        channels in 1u16..5,
    ) {
        let encoding = [
            SampleEncoding::PcmU8, SampleEncoding::Pcm16, SampleEncoding::Pcm24,
            SampleEncoding::Pcm32, SampleEncoding::Float32, SampleEncoding::Float64,
            SampleEncoding::MuLaw, SampleEncoding::ALaw,
        ][which];
        let format = RawFormat { encoding, sample_rate_hz: 8_000, channels };
        let n = bytes.len();
        let reader = AudioReader::from_raw_reader(Box::new(std::io::Cursor::new(bytes)), format).unwrap();
        let buffer = read_all(reader).unwrap();
        let frame = usize::from(channels) * encoding.bytes_per_sample();
        prop_assert_eq!(buffer.channels[0].len(), n / frame);
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding then resampling to the analysis rate

#[test]
fn decoded_44k_file_resamples_to_8k_with_exact_length() {
    let rate = 44_100u32;
    let samples: Vec<i16> = (0..rate as usize)
        .map(|n| {
            ((n as f64 * 2.0 * std::f64::consts::PI * 440.0 / f64::from(rate)).sin() * 10_000.0)
                as i16
        })
        .collect();
    let path = Wav::pcm16(1, rate, &samples).write("sine44k.wav");
    let mut reader = attune_qa::files::open_wav(&path).unwrap();
    let mut resampler = Resampler::try_new(rate, 8_000).unwrap();
    let mut out = vec![Vec::new()];
    let mut resampled = Vec::new();
    while reader.read_frames(4_410, &mut out).unwrap() > 0 {
        resampler.process(&out[0], &mut resampled);
    }
    resampler.finish(&mut resampled);
    assert_eq!(resampled.len(), 8_000);
}

// ---------------------------------------------------------------------------------------------
// The shared real recordings (skipped when ../shared/data is absent)

fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    dir.is_dir().then_some(dir)
}

#[test]
fn real_mulaw_telephone_file_matches_sox() {
    let Some(dir) = shared_data() else { return };
    let path = dir.join("fda_tel/tel/rl001.wav");
    if !path.exists() {
        return;
    }
    let reader = attune_qa::files::open_wav(&path).unwrap();
    assert_eq!(reader.spec().encoding, SampleEncoding::MuLaw);
    assert_eq!(reader.spec().sample_rate_hz, 8_000);
    let buffer = read_all(reader).unwrap();
    let ints: Vec<i64> = buffer.channels[0]
        .iter()
        .map(|&v| (v * 32_768.0) as i64)
        .collect();
    // Known answers from `sox rl001.wav -t raw -e signed -b 16 -` (SoX 14.4.2).
    assert_eq!(ints.len(), 12_000);
    assert_eq!(&ints[..5], &[8, 8, 8, 8, -8]);
    assert_eq!(ints.iter().sum::<i64>(), 2_632);
    assert_eq!(ints.iter().map(|v| v.abs()).sum::<i64>(), 6_048_152);
}

#[test]
fn real_pcm_files_match_hound() {
    let Some(dir) = shared_data() else { return };
    let mut files: Vec<PathBuf> = vec![dir.join("fda/rl001.wav")];
    for sub in ["ravdess/Actor_01", "emodb/wav"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            let mut wavs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                .collect();
            wavs.sort();
            files.extend(wavs.into_iter().take(3));
        }
    }
    for path in files.iter().filter(|p| p.exists()) {
        let buffer = attune_qa::files::read_wav(path).unwrap();
        let mut hound_reader = hound::WavReader::open(path).unwrap();
        let spec = hound_reader.spec();
        assert_eq!(
            buffer.sample_rate_hz,
            spec.sample_rate,
            "{}",
            path.display()
        );
        let channels = usize::from(spec.channels);
        let expected: Vec<i32> = hound_reader.samples::<i32>().map(Result::unwrap).collect();
        assert_eq!(
            buffer.channels[0].len() * channels,
            expected.len(),
            "{}",
            path.display()
        );
        for (n, &e) in expected.iter().enumerate() {
            let got = buffer.channels[n % channels][n / channels];
            assert_eq!(got, e as f32 / 32_768.0, "{} sample {n}", path.display());
        }
    }
}
