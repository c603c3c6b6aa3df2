//! WAV writers for composed calls: G.711 mu-law (format tag 7, which `hound` cannot write) and
//! 16-bit PCM, interleaved from per-channel buffers.

use std::io::{self, Write};

/// `WAVE_FORMAT_MULAW`.
pub const WAVE_FORMAT_MULAW: u16 = 7;

/// Writes a mu-law WAV: `channels[c]` holds channel `c`'s mu-law codes (equal lengths).
pub fn write_mulaw_wav<W: Write>(
    mut out: W,
    sample_rate_hz: u32,
    channels: &[Vec<u8>],
) -> io::Result<()> {
    let count = channels.len() as u16;
    let frames = channels.first().map_or(0, Vec::len);
    let data_len = frames * usize::from(count);
    let pad = data_len % 2;
    let data_len_u32 = u32::try_from(data_len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "call too long for a WAV"))?;
    // RIFF size: "WAVE" + fmt (8+18) + fact (8+4) + data (8+len+pad).
    let riff_len = 4 + 26 + 12 + 8 + data_len_u32 + pad as u32;
    out.write_all(b"RIFF")?;
    out.write_all(&riff_len.to_le_bytes())?;
    out.write_all(b"WAVEfmt ")?;
    out.write_all(&18u32.to_le_bytes())?;
    out.write_all(&WAVE_FORMAT_MULAW.to_le_bytes())?;
    out.write_all(&count.to_le_bytes())?;
    out.write_all(&sample_rate_hz.to_le_bytes())?;
    out.write_all(&(sample_rate_hz * u32::from(count)).to_le_bytes())?; // byte rate
    out.write_all(&count.to_le_bytes())?; // block align
    out.write_all(&8u16.to_le_bytes())?; // bits per sample
    out.write_all(&0u16.to_le_bytes())?; // cbSize
    out.write_all(b"fact")?;
    out.write_all(&4u32.to_le_bytes())?;
    out.write_all(&(frames as u32).to_le_bytes())?;
    out.write_all(b"data")?;
    out.write_all(&data_len_u32.to_le_bytes())?;
    let mut interleaved = Vec::with_capacity(data_len + pad);
    for i in 0..frames {
        interleaved.extend(channels.iter().map(|c| c[i]));
    }
    interleaved.resize(data_len + pad, 0);
    out.write_all(&interleaved)?;
    out.flush()
}

/// Writes a 16-bit PCM WAV: `channels[c]` holds channel `c`'s samples (equal lengths).
pub fn write_pcm16_wav<W: Write>(
    mut out: W,
    sample_rate_hz: u32,
    channels: &[Vec<i16>],
) -> io::Result<()> {
    let count = channels.len() as u16;
    let frames = channels.first().map_or(0, Vec::len);
    let data_len = u32::try_from(frames * usize::from(count) * 2)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "call too long for a WAV"))?;
    out.write_all(b"RIFF")?;
    out.write_all(&(4 + 24 + 8 + data_len).to_le_bytes())?;
    out.write_all(b"WAVEfmt ")?;
    out.write_all(&16u32.to_le_bytes())?;
    out.write_all(&1u16.to_le_bytes())?;
    out.write_all(&count.to_le_bytes())?;
    out.write_all(&sample_rate_hz.to_le_bytes())?;
    out.write_all(&(sample_rate_hz * u32::from(count) * 2).to_le_bytes())?;
    out.write_all(&(count * 2).to_le_bytes())?;
    out.write_all(&16u16.to_le_bytes())?;
    out.write_all(b"data")?;
    out.write_all(&data_len.to_le_bytes())?;
    let mut interleaved = Vec::with_capacity(data_len as usize);
    for i in 0..frames {
        for c in channels {
            interleaved.extend_from_slice(&c[i].to_le_bytes());
        }
    }
    out.write_all(&interleaved)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_header_layout() {
        let mut bytes = Vec::new();
        write_mulaw_wav(&mut bytes, 8000, &[vec![1, 2, 3], vec![4, 5, 6]]).unwrap();
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
            bytes.len() - 8
        );
        assert_eq!(u16::from_le_bytes([bytes[20], bytes[21]]), 7);
        assert_eq!(&bytes[38..42], b"fact");
        assert_eq!(&bytes[50..54], b"data");
        assert_eq!(&bytes[58..64], &[1, 4, 2, 5, 3, 6]);
    }

    #[test]
    fn pcm16_readable_by_hound() {
        let mut bytes = Vec::new();
        write_pcm16_wav(&mut bytes, 8000, &[vec![1, -2], vec![3, 4]]).unwrap();
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(reader.spec().channels, 2);
        let s: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
        assert_eq!(s, vec![1, 3, -2, 4]);
    }
}
