//! One file's functionals, through a chosen channel condition: as recorded (resampled to the
//! 8 kHz analysis rate), or through a simulated telephone channel (8 kHz, 300–3400 Hz
//! band-pass, G.711 mu-law round trip, optional white noise at a given SNR) for training and
//! evaluating on the channel Attune is used on.

use std::path::Path;

use attune_core::audio::g711::{decode_mulaw, encode_mulaw};
use attune_core::audio::{AudioError, Resampler};
use attune_core::dsp::ANALYSIS_RATE_HZ;
use attune_core::prosody::windows::{FileFunctionals, functionals_of_samples};
use attune_core::rng::SplitMix64;
use attune_qa::files::read_wav;

use crate::compose::channel::TelephoneFilter;

/// The channel a recording is passed through before analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChannelCondition {
    /// As recorded (only resampled to the analysis rate).
    AsRecorded,
    /// Simulated telephone channel; `noise_snr_db` adds white noise at that SNR re the signal's
    /// RMS over the whole file.
    Telephone { noise_snr_db: Option<f64> },
}

/// Errors extracting a file's functionals.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("the file has {channels} channel(s); channel {wanted} was asked for")]
    NoSuchChannel {
        path: String,
        channels: usize,
        wanted: usize,
    },
}

/// Samples of `channel` of `path` at the analysis rate, through `condition`.
pub fn load_channel(
    path: &Path,
    channel: usize,
    condition: ChannelCondition,
) -> Result<Vec<f32>, ExtractError> {
    let audio = read_wav(path)?;
    let channels = audio.channels.len();
    let Some(samples) = audio.channels.into_iter().nth(channel) else {
        return Err(ExtractError::NoSuchChannel {
            path: path.display().to_string(),
            channels,
            wanted: channel,
        });
    };
    let mut resampler = Resampler::try_new(audio.sample_rate_hz, ANALYSIS_RATE_HZ)?;
    let mut out = Vec::with_capacity(
        resampler.expected_output_len(samples.len() as u64) as usize + ANALYSIS_RATE_HZ as usize,
    );
    resampler.process(&samples, &mut out);
    resampler.finish(&mut out);
    if let ChannelCondition::Telephone { noise_snr_db } = condition {
        apply_telephone(&mut out, noise_snr_db, seed_of(path));
    }
    Ok(out)
}

/// Telephone channel in place at 8 kHz: band-pass, optional noise, mu-law round trip.
pub fn apply_telephone(samples: &mut [f32], noise_snr_db: Option<f64>, seed: u64) {
    TelephoneFilter::new(ANALYSIS_RATE_HZ).process(samples);
    if let Some(snr_db) = noise_snr_db {
        let power = samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
            / samples.len().max(1) as f64;
        if power > 0.0 {
            let sigma = (power / 10f64.powf(snr_db / 10.0)).sqrt();
            let mut rng = SplitMix64::new(seed);
            for s in samples.iter_mut() {
                *s += (sigma * rng.gaussian()) as f32;
            }
        }
    }
    for s in samples.iter_mut() {
        let linear = (f64::from(*s) * 32_768.0).clamp(-32_768.0, 32_767.0) as i16;
        *s = f32::from(decode_mulaw(encode_mulaw(linear))) / 32_768.0;
    }
}

/// A deterministic seed from a path (FNV-1a), so augmentation noise is reproducible.
fn seed_of(path: &Path) -> u64 {
    attune_qa::fnv1a_64(path.to_string_lossy().as_bytes())
}

/// Functionals of `channel` of the file at `path` through `condition`.
pub fn extract_file(
    path: &Path,
    channel: usize,
    condition: ChannelCondition,
) -> Result<FileFunctionals, ExtractError> {
    let samples = load_channel(path, channel, condition)?;
    Ok(functionals_of_samples(&samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telephone_round_trip_clips_and_stays_finite() {
        let mut x: Vec<f32> = (0..8_000).map(|i| 3.0 * (i as f32 * 0.3).sin()).collect();
        apply_telephone(&mut x, Some(10.0), 1);
        assert!(x.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
    }
}
