//! Functionals of a whole recording or of consecutive speech windows of it: what the emotion
//! model reads (training files are whole utterances; calls are cut into windows of
//! [`WINDOW_SPEECH_S`] of speech).

use crate::features::{AnalyzerConfig, ChannelAnalyzer};

use super::functionals::{FEATURE_COUNT, FunctionalsAccumulator};

/// Functionals of one recording (one channel) and how much speech they rest on.
#[derive(Debug, Clone, PartialEq)]
pub struct FileFunctionals {
    pub features: [f32; FEATURE_COUNT],
    pub speech_s: f64,
    pub voiced_s: f64,
    pub duration_s: f64,
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
}
