//! One file's functionals, through a chosen channel condition: as recorded (resampled to the
//! 8 kHz analysis rate), or through a simulated telephone channel (8 kHz, 300–3400 Hz
//! band-pass, G.711 mu-law round trip, optional white noise at a given SNR) for training and
//! evaluating on the channel Attune is used on.

use std::path::Path;

use crate::audio::g711::{decode_mulaw, encode_mulaw};
use crate::audio::{AudioError, Resampler, read_audio_file};
use crate::compose::channel::TelephoneFilter;
use crate::compose::rng::SplitMix64;
use crate::dsp::ANALYSIS_RATE_HZ;
use crate::features::{AnalyzerConfig, ChannelAnalyzer};

use super::functionals::{FEATURE_COUNT, FunctionalsAccumulator};

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

/// Functionals of one recording (one channel) and how much speech they rest on.
#[derive(Debug, Clone, PartialEq)]
pub struct FileFunctionals {
    pub features: [f32; FEATURE_COUNT],
    pub speech_s: f64,
    pub voiced_s: f64,
    pub duration_s: f64,
}

/// Samples of `channel` of `path` at the analysis rate, through `condition`.
pub fn load_channel(
    path: &Path,
    channel: usize,
    condition: ChannelCondition,
) -> Result<Vec<f32>, ExtractError> {
    let audio = read_audio_file(path)?;
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
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.to_string_lossy().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Functionals over all frames of `samples` (analysis rate).
pub fn functionals_of_samples(samples: &[f32]) -> FileFunctionals {
    let mut analyzer = ChannelAnalyzer::new(0, &AnalyzerConfig::default());
    let mut acc = FunctionalsAccumulator::new();
    let mut emit = |f: &crate::features::FrameFeatures| acc.push(f);
    analyzer.push(samples, &mut emit);
    analyzer.finish(&mut emit);
    FileFunctionals {
        features: acc.features(),
        speech_s: acc.speech_s(),
        voiced_s: acc.voiced_s(),
        duration_s: acc.duration_s(),
    }
}

/// Speech per window when a recording is cut into windows, seconds (RAVDESS utterances, the
/// training material, hold 1.5–2.5 s of speech each).
pub const WINDOW_SPEECH_S: f64 = 2.5;

/// Functionals of consecutive windows of `samples` (analysis rate), each closed once it holds
/// `window_speech_s` of speech. The last window is kept if it holds at least half that much
/// speech, or if it is the only one.
pub fn windowed_functionals(samples: &[f32], window_speech_s: f64) -> Vec<FileFunctionals> {
    let mut analyzer = ChannelAnalyzer::new(0, &AnalyzerConfig::default());
    let mut acc = FunctionalsAccumulator::new();
    let mut windows = Vec::new();
    let mut emit = |f: &crate::features::FrameFeatures| {
        acc.push(f);
        if acc.speech_s() >= window_speech_s {
            windows.push(FileFunctionals {
                features: acc.features(),
                speech_s: acc.speech_s(),
                voiced_s: acc.voiced_s(),
                duration_s: acc.duration_s(),
            });
            acc.reset();
        }
    };
    analyzer.push(samples, &mut emit);
    analyzer.finish(&mut emit);
    if windows.is_empty() || acc.speech_s() >= window_speech_s / 2.0 {
        windows.push(FileFunctionals {
            features: acc.features(),
            speech_s: acc.speech_s(),
            voiced_s: acc.voiced_s(),
            duration_s: acc.duration_s(),
        });
    }
    windows
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
    fn silence_has_no_speech_and_finite_features() {
        let f = functionals_of_samples(&vec![0.0; 8_000]);
        assert_eq!(f.speech_s, 0.0);
        assert!(f.features.iter().all(|v| v.is_finite()));
        assert!((f.duration_s - 1.0).abs() < 0.02);
    }

    #[test]
    fn windows_split_on_speech_time() {
        assert_eq!(windowed_functionals(&vec![0.0; 8_000], 2.5).len(), 1);
        // 8 s of a steady vowel-like tone: about 8 s of speech in 2.5 s windows.
        let tone: Vec<f32> = (0..64_000)
            .map(|i| {
                let t = i as f32 / 8_000.0;
                let am = 0.5 + 0.5 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
                0.3 * am * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
            })
            .collect();
        let windows = windowed_functionals(&tone, 2.5);
        assert!(
            windows
                .iter()
                .all(|w| w.features.iter().all(|v| v.is_finite()))
        );
        let speech: f64 = windows.iter().map(|w| w.speech_s).sum();
        if speech >= 5.0 {
            assert!(
                windows.len() >= 2,
                "{speech} s in {} windows",
                windows.len()
            );
        }
    }

    #[test]
    fn telephone_round_trip_clips_and_stays_finite() {
        let mut x: Vec<f32> = (0..8_000).map(|i| 3.0 * (i as f32 * 0.3).sin()).collect();
        apply_telephone(&mut x, Some(10.0), 1);
        assert!(x.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
    }
}
