//! Dialog-tracking evaluation against composed calls (`CALL.wav` with `CALL.truth.json`, see
//! [`crate::compose::annotation`]). Each call runs through the real pipeline
//! ([`attune_core::call::analyze_recording`]: decoding, resampling, signal core, tracker), with the agent
//! channel taken from the annotation.
//!
//! Figures:
//! - **Interruptions**: a detected interruption matches a true one when their onsets are within
//!   [`ONSET_TOLERANCE_S`] (0.5 s); matching is one-to-one, greedy by smallest onset distance,
//!   regardless of who interrupted. Precision = matched / detected, recall = matched / true,
//!   F1 their harmonic mean, pooled over all calls. **Attribution** = share of matched
//!   interruptions whose `by` is right. **Interruption onset error** = |detected − true onset|
//!   over matched interruptions.
//! - **Overlap onset error**: every detected overlap (both parties talking) is matched to a true
//!   one the same way (onsets within 0.5 s); median and 95th percentile of the onset error, ms.
//!   **False overlap** = detected overlap time outside every true overlap, seconds (what
//!   crosstalk would create).
//! - **Talk time error** per party: |detected − true| / true × 100 per call (calls where the
//!   party talks under 1 s are skipped); mean and max over calls, and pooled (sums over calls).
//! - **Silence error**: |detected − true| silence per call, seconds (mean, max) and pooled %.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::EvalError;
use crate::compose::annotation::CallAnnotation;
use std::sync::Arc;

use attune_core::call::{CallAnalysis, CallConfig, RecordingError, analyze_recording};
use attune_core::dialog::DialogConfig;
use attune_core::dsp::vad::VadConfig;
use attune_core::features::AnalyzerConfig;
use attune_core::model::emotion::EmotionModel;

/// Onsets closer than this match, seconds.
pub const ONSET_TOLERANCE_S: f64 = 0.5;

/// The annotation beside a call: `CALL.wav` → `CALL.truth.json`.
pub fn truth_path(wav: &Path) -> PathBuf {
    wav.with_extension("truth.json")
}

/// What one call contributes.
#[derive(Debug, Clone, Serialize)]
pub struct CallScore {
    pub file: String,
    pub duration_s: f64,
    pub crosstalk_db: Option<f64>,
    pub interruptions_true: usize,
    pub interruptions_detected: usize,
    pub interruptions_matched: usize,
    pub attribution_correct: usize,
    /// |onset error| of matched interruptions, ms.
    pub interruption_onset_errors_ms: Vec<f64>,
    pub overlaps_true: usize,
    pub overlaps_detected: usize,
    /// |onset error| of matched overlaps, ms.
    pub overlap_onset_errors_ms: Vec<f64>,
    /// Detected overlap time outside every true overlap, s.
    pub false_overlap_s: f64,
    pub talk_true: [f64; 2],
    pub talk_detected: [f64; 2],
    pub silence_true_s: f64,
    pub silence_detected_s: f64,
}

/// Matches `detected` onsets to `truth` onsets one-to-one within the tolerance, closest pairs
/// first. Returns (truth index, detected index) pairs.
pub fn match_onsets(truth: &[f64], detected: &[f64]) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, &t) in truth.iter().enumerate() {
        for (j, &d) in detected.iter().enumerate() {
            let distance = (t - d).abs();
            if distance <= ONSET_TOLERANCE_S {
                pairs.push((distance, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut used_t = vec![false; truth.len()];
    let mut used_d = vec![false; detected.len()];
    let mut out = Vec::new();
    for (_, i, j) in pairs {
        if !used_t[i] && !used_d[j] {
            used_t[i] = true;
            used_d[j] = true;
            out.push((i, j));
        }
    }
    out
}

/// Length of `span` outside every span of `truth` (sorted or not).
fn outside(span: (f64, f64), truth: &[(f64, f64)]) -> f64 {
    let covered: f64 = truth
        .iter()
        .map(|&(s, e)| (span.1.min(e) - span.0.max(s)).max(0.0))
        .sum();
    (span.1 - span.0 - covered).max(0.0)
}

/// Scores one analysed call against its annotation.
pub fn score_call(file: &str, analysis: &CallAnalysis, truth: &CallAnnotation) -> CallScore {
    let true_onsets: Vec<f64> = truth.interruptions.iter().map(|i| i.t_s).collect();
    let detected_onsets: Vec<f64> = analysis.interruptions.iter().map(|i| i.t_s).collect();
    let matched = match_onsets(&true_onsets, &detected_onsets);
    let attribution_correct = matched
        .iter()
        .filter(|&&(i, j)| truth.interruptions[i].by == analysis.interruptions[j].by)
        .count();
    let interruption_onset_errors_ms = matched
        .iter()
        .map(|&(i, j)| 1000.0 * (true_onsets[i] - detected_onsets[j]).abs())
        .collect();

    let true_overlaps: Vec<(f64, f64)> = truth
        .overlaps
        .iter()
        .map(|s| (s.start_s, s.end_s))
        .collect();
    let detected_overlaps: Vec<(f64, f64)> = analysis
        .overlaps
        .iter()
        .map(|o| (o.start_s, o.end_s))
        .collect();
    let t_on: Vec<f64> = true_overlaps.iter().map(|o| o.0).collect();
    let d_on: Vec<f64> = detected_overlaps.iter().map(|o| o.0).collect();
    let overlap_onset_errors_ms = match_onsets(&t_on, &d_on)
        .iter()
        .map(|&(i, j)| 1000.0 * (t_on[i] - d_on[j]).abs())
        .collect();
    let false_overlap_s = detected_overlaps
        .iter()
        .map(|&o| outside(o, &true_overlaps))
        .sum();

    let talk = &analysis.talk;
    CallScore {
        file: file.to_string(),
        duration_s: analysis.duration_s,
        crosstalk_db: truth.crosstalk_db,
        interruptions_true: truth.interruptions.len(),
        interruptions_detected: analysis.interruptions.len(),
        interruptions_matched: matched.len(),
        attribution_correct,
        interruption_onset_errors_ms,
        overlaps_true: true_overlaps.len(),
        overlaps_detected: detected_overlaps.len(),
        overlap_onset_errors_ms,
        false_overlap_s,
        talk_true: [truth.talk.agent_s, truth.talk.caller_s],
        talk_detected: [talk.agent_s.unwrap_or(0.0), talk.caller_s.unwrap_or(0.0)],
        silence_true_s: truth.talk.silence_s,
        silence_detected_s: talk.silence_s,
    }
}

/// Median and 95th percentile.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub count: usize,
    pub median: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
}

fn spread(values: impl IntoIterator<Item = f64>) -> Spread {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let q = |f: f64| {
        (!v.is_empty())
            .then(|| v[(((f * v.len() as f64).ceil() as usize).max(1) - 1).min(v.len() - 1)])
    };
    Spread {
        count: v.len(),
        median: q(0.5),
        p95: q(0.95),
        max: v.last().copied(),
    }
}

/// Talk-time error of one party.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TalkError {
    /// Mean and max over calls of |detected − true| / true, %.
    pub mean_abs_pct: f64,
    pub max_abs_pct: f64,
    /// Mean signed error over calls, % (positive: too much talk detected).
    pub mean_signed_pct: f64,
    /// (sum detected − sum true) / sum true, %.
    pub pooled_pct: f64,
}

/// The figures over a set of calls.
#[derive(Debug, Clone, Serialize)]
pub struct DialogEvalReport {
    pub calls: usize,
    pub audio_s: f64,
    pub interruptions_true: usize,
    pub interruptions_detected: usize,
    pub interruptions_matched: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Share of matched interruptions attributed to the right party.
    pub attribution: f64,
    pub interruption_onset_error_ms: Spread,
    pub overlaps_true: usize,
    pub overlaps_detected: usize,
    pub overlap_onset_error_ms: Spread,
    /// Detected overlap outside every true overlap, seconds in total.
    pub false_overlap_s: f64,
    pub talk_error_agent: TalkError,
    pub talk_error_caller: TalkError,
    /// Silence: mean and max |error| over calls, seconds; pooled error, %.
    pub silence_error_mean_abs_s: f64,
    pub silence_error_max_abs_s: f64,
    pub silence_error_pooled_pct: f64,
    pub items: Vec<CallScore>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Aggregates call scores.
pub fn aggregate(items: Vec<CallScore>) -> DialogEvalReport {
    let sum = |f: &dyn Fn(&CallScore) -> usize| items.iter().map(f).sum::<usize>();
    let truth = sum(&|c| c.interruptions_true);
    let detected = sum(&|c| c.interruptions_detected);
    let matched = sum(&|c| c.interruptions_matched);
    let attributed = sum(&|c| c.attribution_correct);
    let precision = ratio(matched, detected);
    let recall = ratio(matched, truth);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let talk_error = |party: usize| {
        let errors: Vec<f64> = items
            .iter()
            .filter(|c| c.talk_true[party] >= 1.0)
            .map(|c| 100.0 * (c.talk_detected[party] - c.talk_true[party]) / c.talk_true[party])
            .collect();
        let n = errors.len().max(1) as f64;
        let true_sum: f64 = items.iter().map(|c| c.talk_true[party]).sum();
        let detected_sum: f64 = items.iter().map(|c| c.talk_detected[party]).sum();
        TalkError {
            mean_abs_pct: errors.iter().map(|e| e.abs()).sum::<f64>() / n,
            max_abs_pct: errors.iter().fold(0.0, |m, e| m.max(e.abs())),
            mean_signed_pct: errors.iter().sum::<f64>() / n,
            pooled_pct: if true_sum > 0.0 {
                100.0 * (detected_sum - true_sum) / true_sum
            } else {
                0.0
            },
        }
    };
    let silence_errors: Vec<f64> = items
        .iter()
        .map(|c| (c.silence_detected_s - c.silence_true_s).abs())
        .collect();
    let silence_true: f64 = items.iter().map(|c| c.silence_true_s).sum();
    let silence_detected: f64 = items.iter().map(|c| c.silence_detected_s).sum();
    DialogEvalReport {
        calls: items.len(),
        audio_s: items.iter().map(|c| c.duration_s).sum(),
        interruptions_true: truth,
        interruptions_detected: detected,
        interruptions_matched: matched,
        precision,
        recall,
        f1,
        attribution: ratio(attributed, matched),
        interruption_onset_error_ms: spread(
            items
                .iter()
                .flat_map(|c| c.interruption_onset_errors_ms.iter().copied()),
        ),
        overlaps_true: sum(&|c| c.overlaps_true),
        overlaps_detected: sum(&|c| c.overlaps_detected),
        overlap_onset_error_ms: spread(
            items
                .iter()
                .flat_map(|c| c.overlap_onset_errors_ms.iter().copied()),
        ),
        false_overlap_s: items.iter().map(|c| c.false_overlap_s).sum(),
        talk_error_agent: talk_error(0),
        talk_error_caller: talk_error(1),
        silence_error_mean_abs_s: silence_errors.iter().sum::<f64>()
            / silence_errors.len().max(1) as f64,
        silence_error_max_abs_s: silence_errors.iter().fold(0.0, |m: f64, e| m.max(*e)),
        silence_error_pooled_pct: if silence_true > 0.0 {
            100.0 * (silence_detected - silence_true) / silence_true
        } else {
            0.0
        },
        items,
    }
}

/// The composed calls in `dir`: every `*.wav` with a `*.truth.json` beside it, sorted.
pub fn list_calls(dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let read = std::fs::read_dir(dir).map_err(|source| EvalError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut calls: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav") && truth_path(p).is_file())
        .collect();
    calls.sort();
    Ok(calls)
}

/// Reads a call's annotation.
pub fn read_truth(wav: &Path) -> Result<CallAnnotation, EvalError> {
    let path = truth_path(wav);
    let text = std::fs::read_to_string(&path).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| EvalError::BadReference {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Analyses one composed call and scores it (agent channel from its annotation), with the
/// tracker settings `config`, the voice-activity thresholds `vad` (prosody and emotion
/// features) and `dialog_vad` (turn-taking) on both channels.
pub fn evaluate_call(
    wav: &Path,
    config: &DialogConfig,
    vad: &VadConfig,
    dialog_vad: &VadConfig,
) -> Result<CallScore, EvalError> {
    let truth = read_truth(wav)?;
    let audio_error = |source| EvalError::Audio {
        path: wav.display().to_string(),
        source,
    };
    let mut reader = attune_qa::files::open_wav(wav).map_err(audio_error)?;
    let config = DialogConfig {
        agent_channel: truth.agent_channel,
        ..config.clone()
    };
    let defaults = CallConfig::default();
    let config = CallConfig {
        agent_channel: usize::from(truth.agent_channel),
        dialog: config,
        analyzer: AnalyzerConfig {
            vad: vad.clone(),
            dialog_vad: dialog_vad.clone(),
            ..defaults.analyzer.clone()
        },
        ..defaults
    };
    let model = Arc::new(EmotionModel::embedded());
    let recording =
        analyze_recording(&mut reader, config, model, |_| {}, |_| {}).map_err(|e| match e {
            RecordingError::Audio(source) => audio_error(source),
            other => EvalError::BadReference {
                path: wav.display().to_string(),
                message: other.to_string(),
            },
        })?;
    Ok(score_call(
        &wav.display().to_string(),
        &recording.dialog,
        &truth,
    ))
}

/// Evaluates every composed call of the folders (settings as [`evaluate_call`]).
pub fn evaluate_dirs(
    dirs: &[PathBuf],
    config: &DialogConfig,
    vad: &VadConfig,
    dialog_vad: &VadConfig,
) -> Result<DialogEvalReport, EvalError> {
    let mut items = Vec::new();
    for dir in dirs {
        let calls = list_calls(dir)?;
        if calls.is_empty() {
            return Err(EvalError::Empty(dir.display().to_string()));
        }
        for wav in calls {
            items.push(evaluate_call(&wav, config, vad, dialog_vad)?);
        }
    }
    Ok(aggregate(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onsets_match_one_to_one_closest_first() {
        let m = match_onsets(&[1.0, 1.3, 5.0], &[1.25, 4.0, 9.0]);
        assert_eq!(m, vec![(1, 0)]);
        let m = match_onsets(&[1.0, 2.0], &[1.1, 2.4]);
        assert_eq!(m, vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn outside_measures_uncovered_time() {
        assert!((outside((1.0, 3.0), &[(0.0, 1.5), (2.5, 2.7)]) - 1.3).abs() < 1e-9);
    }
}
