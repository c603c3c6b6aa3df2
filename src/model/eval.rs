//! Leave-one-speaker-out evaluation: for each speaker, train on all others and judge that
//! speaker's files — cold (global normalisation, each file alone) and, when asked, against the
//! speaker's own baseline from all their files (unlabelled statistics only). Reports unweighted
//! average recall (UAR) over the 5 classes and over high/low arousal, confusion matrices, and the
//! ROC AUC of agent calmness separating calm/neutral from angry/fearful speech.
//!
//! Every file is judged, including those the model would abstain on (they are counted apart),
//! so the figures cover the whole corpus.

use std::collections::BTreeSet;

use serde::Serialize;

use super::emotion::{EmotionModel, LabelledFunctionals, Prediction, speaker_baselines};
use super::labels::{CLASS_NAMES, Label};
use super::mlp::{CLASS_COUNT, TrainConfig};

/// Results of one normalisation mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeReport {
    /// "cold" or "speaker_baseline".
    pub mode: &'static str,
    pub files: usize,
    pub abstained: usize,
    pub uar_5class_pct: f64,
    pub arousal_uar_pct: f64,
    /// rows: true class, columns: predicted, in [`CLASS_NAMES`] order.
    pub confusion: [[u32; CLASS_COUNT]; CLASS_COUNT],
    /// rows: true low/high, columns: predicted low/high (surprised counted as high).
    pub arousal_confusion: [[u32; 2]; 2],
    /// ROC AUC of calmness: calm/neutral (positive) against anger/fear files.
    pub calmness_auc: f64,
    /// Mean calmness of calm/neutral files and of anger/fear files.
    pub calmness_mean_calm: f64,
    pub calmness_mean_agitated: f64,
}

/// A whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LosoReport {
    /// "leave-one-speaker-out" or "cross-corpus".
    pub protocol: &'static str,
    pub condition: String,
    pub speakers: usize,
    pub files: usize,
    pub modes: Vec<ModeReport>,
    /// Mean wall time of one cold prediction (normalisation + ensemble forward pass), µs.
    pub inference_us_per_window: f64,
}

fn recall_mean<const N: usize>(confusion: &[[u32; N]; N]) -> f64 {
    let mut sum = 0.0;
    let mut present = 0;
    for (i, row) in confusion.iter().enumerate() {
        let total: u32 = row.iter().sum();
        if total > 0 {
            sum += f64::from(row[i]) / f64::from(total);
            present += 1;
        }
    }
    if present == 0 {
        0.0
    } else {
        100.0 * sum / f64::from(present)
    }
}

/// ROC AUC of `positive` scores above `negative` scores (ties count half).
pub fn roc_auc(positive: &[f32], negative: &[f32]) -> f64 {
    if positive.is_empty() || negative.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0;
    for &p in positive {
        for &n in negative {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (positive.len() * negative.len()) as f64
}

fn report(mode: &'static str, judged: &[(Label, Prediction)]) -> ModeReport {
    let mut confusion = [[0u32; CLASS_COUNT]; CLASS_COUNT];
    let mut arousal_confusion = [[0u32; 2]; 2];
    let mut calm = Vec::new();
    let mut agitated = Vec::new();
    let mut abstained = 0;
    for (label, p) in judged {
        abstained += usize::from(p.emotion.is_none());
        let best = (0..CLASS_COUNT)
            .max_by(|&a, &b| p.probabilities[a].total_cmp(&p.probabilities[b]))
            .unwrap_or(0);
        if let Some(c) = label.class() {
            confusion[c][best] += 1;
        }
        arousal_confusion[usize::from(label.high_arousal())][usize::from(p.arousal > 0.5)] += 1;
        match label {
            Label::Calm | Label::Neutral => calm.push(p.calmness),
            Label::Anger | Label::Fear => agitated.push(p.calmness),
            _ => {}
        }
    }
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64;
    ModeReport {
        mode,
        files: judged.len(),
        abstained,
        uar_5class_pct: recall_mean(&confusion),
        arousal_uar_pct: recall_mean(&arousal_confusion),
        confusion,
        arousal_confusion,
        calmness_auc: roc_auc(&calm, &agitated),
        calmness_mean_calm: mean(&calm),
        calmness_mean_agitated: mean(&agitated),
    }
}

/// Leave-one-speaker-out over `samples`; `with_baseline` adds the speaker-baseline mode.
pub fn leave_one_speaker_out(
    samples: &[LabelledFunctionals],
    config: &TrainConfig,
    condition: &str,
    with_baseline: bool,
) -> LosoReport {
    leave_one_speaker_out_augmented(samples, &[], config, condition, with_baseline)
}

/// Speaker a sample belongs to: its `speaker` up to the first `/` (augmented copies are named
/// `SPEAKER/CONDITION` so their baselines stay apart but they leave the training set with
/// their speaker).
pub fn base_speaker(speaker: &str) -> &str {
    speaker.split('/').next().unwrap_or(speaker)
}

/// Leave-one-speaker-out over `samples`, with `extra_train` (augmented copies, e.g. another
/// channel condition) added to every fold's training set except the held-out speaker's.
pub fn leave_one_speaker_out_augmented(
    samples: &[LabelledFunctionals],
    extra_train: &[LabelledFunctionals],
    config: &TrainConfig,
    condition: &str,
    with_baseline: bool,
) -> LosoReport {
    let speakers: BTreeSet<&str> = samples.iter().map(|s| s.speaker.as_str()).collect();
    let mut cold = Vec::with_capacity(samples.len());
    let mut based = Vec::with_capacity(samples.len());
    let mut inference_s = 0.0;
    for &speaker in &speakers {
        let train: Vec<LabelledFunctionals> = samples
            .iter()
            .chain(extra_train)
            .filter(|s| base_speaker(&s.speaker) != speaker)
            .cloned()
            .collect();
        let test: Vec<&LabelledFunctionals> =
            samples.iter().filter(|s| s.speaker == speaker).collect();
        let model = EmotionModel::train(&train, config, condition);
        let test_owned: Vec<LabelledFunctionals> = test.iter().map(|&s| s.clone()).collect();
        let baselines = speaker_baselines(&test_owned);
        let baseline = baselines.get(speaker);
        for s in &test {
            let started = std::time::Instant::now();
            let p = model.predict(&s.features, s.speech_s, s.voiced_s, None);
            inference_s += started.elapsed().as_secs_f64();
            cold.push((s.label, p));
            if with_baseline {
                based.push((
                    s.label,
                    model.predict(&s.features, s.speech_s, s.voiced_s, baseline),
                ));
            }
        }
    }
    let mut modes = vec![report("cold", &cold)];
    if with_baseline {
        modes.push(report("speaker_baseline", &based));
    }
    LosoReport {
        protocol: "leave-one-speaker-out",
        condition: condition.to_owned(),
        speakers: speakers.len(),
        files: samples.len(),
        modes,
        inference_us_per_window: 1e6 * inference_s / samples.len().max(1) as f64,
    }
}

/// Cross-corpus: trains once on `train` (+ `extra_train`) and judges every file of `test` (other
/// speakers, possibly another corpus or language), cold and, with `with_baseline`, against each
/// test speaker's own baseline.
pub fn cross_corpus(
    train: &[LabelledFunctionals],
    extra_train: &[LabelledFunctionals],
    test: &[LabelledFunctionals],
    config: &TrainConfig,
    condition: &str,
    with_baseline: bool,
) -> LosoReport {
    let all: Vec<LabelledFunctionals> = train.iter().chain(extra_train).cloned().collect();
    let model = EmotionModel::train(&all, config, condition);
    let baselines = speaker_baselines(test);
    let mut cold = Vec::with_capacity(test.len());
    let mut based = Vec::with_capacity(test.len());
    let mut inference_s = 0.0;
    for s in test {
        let started = std::time::Instant::now();
        let p = model.predict(&s.features, s.speech_s, s.voiced_s, None);
        inference_s += started.elapsed().as_secs_f64();
        cold.push((s.label, p));
        if with_baseline {
            based.push((
                s.label,
                model.predict(
                    &s.features,
                    s.speech_s,
                    s.voiced_s,
                    baselines.get(&s.speaker),
                ),
            ));
        }
    }
    let mut modes = vec![report("cold", &cold)];
    if with_baseline {
        modes.push(report("speaker_baseline", &based));
    }
    let speakers: BTreeSet<&str> = test.iter().map(|s| s.speaker.as_str()).collect();
    LosoReport {
        protocol: "cross-corpus",
        condition: condition.to_owned(),
        speakers: speakers.len(),
        files: test.len(),
        modes,
        inference_us_per_window: 1e6 * inference_s / test.len().max(1) as f64,
    }
}

/// The report as text tables.
pub fn format_report(r: &LosoReport) -> String {
    let mut text = format!(
        "{}, {} test speakers, {} files, condition: {}\n",
        r.protocol, r.speakers, r.files, r.condition
    );
    text.push_str(&format!(
        "inference: {:.1} µs per window (normalisation + {}-network ensemble, one thread)\n",
        r.inference_us_per_window,
        super::emotion::ENSEMBLE_SIZE
    ));
    for m in &r.modes {
        text.push_str(&format!(
            "\n[{}]  5-class UAR {:.1} %   arousal UAR {:.1} %   calmness ROC AUC {:.3} (mean {:.1} calm/neutral vs {:.1} angry/fearful)   abstained {}/{}\n",
            m.mode,
            m.uar_5class_pct,
            m.arousal_uar_pct,
            m.calmness_auc,
            m.calmness_mean_calm,
            m.calmness_mean_agitated,
            m.abstained,
            m.files
        ));
        text.push_str(&format!("{:>10}", "true\\pred"));
        for name in CLASS_NAMES {
            text.push_str(&format!("{name:>9}"));
        }
        text.push_str("   recall\n");
        for (i, row) in m.confusion.iter().enumerate() {
            text.push_str(&format!("{:>10}", CLASS_NAMES[i]));
            for v in row {
                text.push_str(&format!("{v:>9}"));
            }
            let total: u32 = row.iter().sum();
            text.push_str(&format!(
                "   {:.1} %\n",
                100.0 * f64::from(row[i]) / f64::from(total.max(1))
            ));
        }
        text.push_str(&format!("{:>10}{:>9}{:>9}\n", "arousal", "low", "high"));
        for (i, name) in ["low", "high"].iter().enumerate() {
            let row = m.arousal_confusion[i];
            text.push_str(&format!("{name:>10}{:>9}{:>9}\n", row[0], row[1]));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_uar() {
        assert_eq!(roc_auc(&[2.0, 3.0], &[1.0]), 1.0);
        assert_eq!(roc_auc(&[1.0], &[1.0]), 0.5);
        let c = [[8, 2], [5, 5]];
        assert!((recall_mean(&c) - 65.0).abs() < 1e-9);
    }
}
