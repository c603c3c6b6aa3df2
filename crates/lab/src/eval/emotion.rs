//! Leave-one-speaker-out evaluation: for each speaker, train on all others and judge that
//! speaker's files — cold (global normalisation, each file alone) and, when asked, against the
//! speaker's own baseline from all their files (unlabelled statistics only) and live (each file
//! against the files before it, in two orders). Reports unweighted
//! average recall (UAR) over the 5 classes and over high/low arousal, confusion matrices, and the
//! ROC AUC of agent calmness separating calm/neutral from angry/fearful speech.
//!
//! Every file is judged, including those the model would abstain on (they are counted apart),
//! so the figures cover the whole corpus.

use std::collections::BTreeSet;

use serde::Serialize;

use attune_core::model::emotion::{EmotionModel, LabelledFunctionals, Prediction};
use attune_core::model::labels::{CLASS_NAMES, Label};
use attune_core::model::mlp::{CLASS_COUNT, TrainConfig};
use attune_core::prosody::baseline::SpeakerBaseline;
use attune_core::rng::SplitMix64;

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
    /// Networks per head.
    pub ensemble: usize,
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

/// Judgements of one evaluation, per mode.
#[derive(Default)]
struct Judged {
    cold: Vec<(Label, Prediction)>,
    based: Vec<(Label, Prediction)>,
    live_shuffled: Vec<(Label, Prediction)>,
    live_blocks: Vec<(Label, Prediction)>,
    inference_s: f64,
    windows: usize,
}

impl Judged {
    /// Judges one test speaker's files: cold; and with `with_baseline` against the baseline of
    /// all their files, and *live* in two orders — files shuffled, and emotion blocks (all
    /// files of one label together, blocks in random order) — each file against a baseline of
    /// the files before it (cold until it holds enough speech), as a live call would.
    fn speaker(
        &mut self,
        model: &EmotionModel,
        test: &[&LabelledFunctionals],
        with_baseline: bool,
        seed: u64,
    ) {
        let mut baseline = SpeakerBaseline::new();
        for s in test {
            baseline.add(&s.features, s.speech_s);
        }
        for s in test {
            let started = std::time::Instant::now();
            let p = model.predict(&s.features, s.speech_s, s.voiced_s, None);
            self.inference_s += started.elapsed().as_secs_f64();
            self.windows += 1;
            self.cold.push((s.label, p));
            if with_baseline {
                self.based.push((
                    s.label,
                    model.predict(&s.features, s.speech_s, s.voiced_s, Some(&baseline)),
                ));
            }
        }
        if !with_baseline {
            return;
        }
        let mut rng = SplitMix64::new(seed);
        let shuffled = shuffled_order(test.len(), &mut rng);
        let blocks = block_order(test, &mut rng);
        for (order, out) in [
            (shuffled, &mut self.live_shuffled),
            (blocks, &mut self.live_blocks),
        ] {
            let mut live = SpeakerBaseline::new();
            for i in order {
                let s = test[i];
                out.push((
                    s.label,
                    model.predict(&s.features, s.speech_s, s.voiced_s, Some(&live)),
                ));
                live.add(&s.features, s.speech_s);
            }
        }
    }

    fn report(
        self,
        protocol: &'static str,
        condition: &str,
        speakers: usize,
        with_baseline: bool,
        ensemble: usize,
    ) -> LosoReport {
        let mut modes = vec![report("cold", &self.cold)];
        if with_baseline {
            modes.push(report("speaker_baseline", &self.based));
            modes.push(report("live_shuffled", &self.live_shuffled));
            modes.push(report("live_blocks", &self.live_blocks));
        }
        LosoReport {
            protocol,
            condition: condition.to_owned(),
            speakers,
            files: self.cold.len(),
            modes,
            inference_us_per_window: 1e6 * self.inference_s / self.windows.max(1) as f64,
            ensemble,
        }
    }
}

/// 0..n in random order (Fisher-Yates).
fn shuffled_order(n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// Indices of `test` grouped by label, blocks in random order, files shuffled within a block.
fn block_order(test: &[&LabelledFunctionals], rng: &mut SplitMix64) -> Vec<usize> {
    let mut labels: Vec<&'static str> = test.iter().map(|s| s.label.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    let label_order = shuffled_order(labels.len(), rng);
    let mut order = Vec::with_capacity(test.len());
    for l in label_order {
        let members: Vec<usize> = (0..test.len())
            .filter(|&i| test[i].label.as_str() == labels[l])
            .collect();
        for k in shuffled_order(members.len(), rng) {
            order.push(members[k]);
        }
    }
    order
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
    leave_one_speaker_out_split(
        samples,
        &[samples, extra_train],
        config,
        condition,
        with_baseline,
    )
}

/// Leave-one-speaker-out with the test material apart from the training material (e.g. short
/// windows judged by a model trained on whole files): each speaker of `test_samples` is judged
/// by a model trained on every sample of `train_pools` from the other speakers.
pub fn leave_one_speaker_out_split(
    test_samples: &[LabelledFunctionals],
    train_pools: &[&[LabelledFunctionals]],
    config: &TrainConfig,
    condition: &str,
    with_baseline: bool,
) -> LosoReport {
    let speakers: BTreeSet<&str> = test_samples.iter().map(|s| s.speaker.as_str()).collect();
    let mut judged = Judged::default();
    for (k, &speaker) in speakers.iter().enumerate() {
        let train: Vec<LabelledFunctionals> = train_pools
            .iter()
            .flat_map(|pool| pool.iter())
            .filter(|s| base_speaker(&s.speaker) != speaker)
            .cloned()
            .collect();
        let test: Vec<&LabelledFunctionals> = test_samples
            .iter()
            .filter(|s| s.speaker == speaker)
            .collect();
        let model = EmotionModel::train(&train, config, condition);
        judged.speaker(&model, &test, with_baseline, LIVE_ORDER_SEED + k as u64);
    }
    judged.report(
        "leave-one-speaker-out",
        condition,
        speakers.len(),
        with_baseline,
        config.ensemble,
    )
}

/// Seed of the live orders (per test speaker: this plus its index).
const LIVE_ORDER_SEED: u64 = 20_240_501;

/// Cross-corpus: trains once on `train` (+ `extra_train`) and judges every file of `test` (other
/// speakers, possibly another corpus or language), cold and, with `with_baseline`, against each
/// test speaker's own baseline and live.
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
    let speakers: BTreeSet<&str> = test.iter().map(|s| s.speaker.as_str()).collect();
    let mut judged = Judged::default();
    for (k, &speaker) in speakers.iter().enumerate() {
        let files: Vec<&LabelledFunctionals> =
            test.iter().filter(|s| s.speaker == speaker).collect();
        judged.speaker(&model, &files, with_baseline, LIVE_ORDER_SEED + k as u64);
    }
    judged.report(
        "cross-corpus",
        condition,
        speakers.len(),
        with_baseline,
        config.ensemble,
    )
}

/// The report as text tables.
pub fn format_report(r: &LosoReport) -> String {
    let mut text = format!(
        "{}, {} test speakers, {} files, condition: {}\n",
        r.protocol, r.speakers, r.files, r.condition
    );
    text.push_str(&format!(
        "inference: {:.1} µs per window (normalisation + {}-network ensemble, one thread)\n",
        r.inference_us_per_window, r.ensemble
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
    fn live_orders_are_permutations_and_blocks_keep_labels_together() {
        let mut rng = SplitMix64::new(4);
        let mut order = shuffled_order(50, &mut rng);
        order.sort_unstable();
        assert_eq!(order, (0..50).collect::<Vec<_>>());
        let labels = [
            Label::Anger,
            Label::Calm,
            Label::Anger,
            Label::Fear,
            Label::Calm,
        ];
        let files: Vec<LabelledFunctionals> = labels
            .iter()
            .map(|&label| LabelledFunctionals {
                features: [0.0; attune_core::prosody::functionals::FEATURE_COUNT],
                speech_s: 2.0,
                voiced_s: 1.0,
                speaker: "s".to_owned(),
                label,
            })
            .collect();
        let refs: Vec<&LabelledFunctionals> = files.iter().collect();
        let order = block_order(&refs, &mut rng);
        assert_eq!(order.len(), 5);
        let seq: Vec<Label> = order.iter().map(|&i| labels[i]).collect();
        let changes = seq.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(changes, 2, "{seq:?}");
    }

    #[test]
    fn auc_and_uar() {
        assert_eq!(roc_auc(&[2.0, 3.0], &[1.0]), 1.0);
        assert_eq!(roc_auc(&[1.0], &[1.0]), 0.5);
        let c = [[8, 2], [5, 5]];
        assert!((recall_mean(&c) - 65.0).abs() < 1e-9);
    }
}
