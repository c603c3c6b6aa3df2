//! Speaker-disjoint cue accuracy, behind `attune eval cues`. The RAVDESS actors are split into K
//! folds ([`super::folds::speaker_folds`]); for each fold the emotion model is trained as
//! `attune train` trains it but without the fold's actors ([`super::fold_models`], cached), and
//! N calls are composed with callers from the fold's actors only, cycling through an upset
//! caller, a calm caller and an anxious caller ([`caller_arc`]). Each call runs through
//! `analyze_recording` exactly as a recorded call. Figures per fold and pooled, with their
//! spread over folds (definitions in [`super::cues`] and [`super::caller`]).
//!
//! [`Judge::InSample`] judges the same calls with one model trained on every actor instead: it
//! overstates, and is kept only to show by how much.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use attune_core::audio::AudioError;
use attune_core::call::{CallConfig, CallEvent, EmotionPoint, RecordingError, analyze_recording};
use attune_core::cues::{CueEvent, CueKind, CueRules};
use attune_core::dialog::Speaker;
use attune_core::dsp::vad::VadConfig;
use attune_core::features::AnalyzerConfig;
use attune_core::model::emotion::EmotionModel;
use attune_core::rng::SplitMix64;

use crate::compose::random::{CallerArc, Catalog, RandomCallConfig, random_spec};
use crate::compose::{self, ComposeError, SourceCache};
use crate::eval::caller::{AnxiousCallResult, TimelineCounts, score_anxious_call, timeline_counts};
use crate::eval::cues::{self as eval, CallCueResult, TARGET_DELAY_S};
use crate::eval::fold_models::{FoldCorpus, FoldModelError};
use crate::eval::folds::{Spread, pct, per_10_min, ravdess_sex, speaker_folds};

/// The second delay target: every upset caller flagged within this long, seconds.
pub const ALL_FLAGGED_DELAY_S: f64 = 10.0;

/// Why the evaluation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CueEvalError {
    #[error("--generate {0}: need at least 1 call per fold")]
    NoCalls(usize),
    #[error("--minutes {0}: need 1 <= M <= 60")]
    BadMinutes(f64),
    #[error("--only-folds {fold}: there are {folds} folds")]
    NoSuchFold { fold: usize, folds: usize },
    #[error("cannot list the corpora in {path}: {source}")]
    Catalog {
        path: String,
        #[source]
        source: ComposeError,
    },
    #[error("cannot create {path}: {source}")]
    WorkDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    FoldModel(#[from] FoldModelError),
    #[error("cannot plan or compose {call}: {source}")]
    Compose {
        call: String,
        #[source]
        source: ComposeError,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: AudioError,
    },
    #[error("cannot analyse {path}: {source}")]
    Analyse {
        path: String,
        #[source]
        source: RecordingError,
    },
}

/// What judges the calls.
pub enum Judge {
    /// Speaker-disjoint: one model per fold, trained without the fold's actors.
    FoldModels(FoldCorpus),
    /// In-sample, overstates: every fold judged by `model`, named `label` in the report.
    InSample {
        model: Arc<EmotionModel>,
        label: String,
    },
}

/// The evaluation's settings (the flags of `attune eval cues`).
#[derive(Debug, Clone)]
pub struct CueEvalConfig {
    /// Folds over the RAVDESS actors.
    pub folds: usize,
    /// Run only these folds (0-based); all when `None`.
    pub only_folds: Option<Vec<usize>>,
    /// Calls composed per fold.
    pub calls_per_fold: usize,
    /// Seed of the composed calls.
    pub seed: u64,
    /// Length of each call, minutes.
    pub minutes: f64,
    pub rules: CueRules,
    /// Voice-activity thresholds of both channels.
    pub vad: VadConfig,
    /// The corpora folder.
    pub data_dir: PathBuf,
    /// Where the composed calls are written while they are judged.
    pub work_dir: PathBuf,
    /// Keep the composed calls (WAV, truth and spec) in `work_dir`; removed otherwise.
    pub keep_calls: bool,
}

impl CueEvalConfig {
    /// Checks the settings that need no corpus ([`evaluate`] checks them too).
    pub fn validate(&self) -> Result<(), CueEvalError> {
        if self.calls_per_fold == 0 {
            return Err(CueEvalError::NoCalls(self.calls_per_fold));
        }
        if !(self.minutes.is_finite() && (1.0..=60.0).contains(&self.minutes)) {
            return Err(CueEvalError::BadMinutes(self.minutes));
        }
        Ok(())
    }
}

/// The scripted mood of call `index`: index % 3 = 0 upset, 1 calm, 2 anxious. Upset and anxious
/// stretches: onset 20 s..40 % of the call, 25-45 s long, 2-6 dB louder.
pub fn caller_arc(seed: u64, index: u64, duration_s: f64) -> CallerArc {
    let mut rng = SplitMix64::new(seed ^ 0x00c0_ffee).fork(index);
    let latest_onset_s = (0.4 * duration_s).max(25.0);
    let onset_s = (rng.range(20.0, latest_onset_s) * 10.0).round() / 10.0;
    let stretch_s = (rng.range(25.0, 45.0) * 10.0).round() / 10.0;
    let level_offset_db = (rng.range(2.0, 6.0) * 10.0).round() / 10.0;
    match index % 3 {
        0 => CallerArc::Upset {
            onset_s,
            upset_s: stretch_s,
            level_offset_db,
        },
        1 => CallerArc::Calm,
        _ => CallerArc::Anxious {
            onset_s,
            anxious_s: stretch_s,
            level_offset_db,
        },
    }
}

/// The RAVDESS actor of a path (`ravdess/Actor_07/...` → 7).
fn path_actor(path: &str) -> Option<u32> {
    path.split('/')
        .find_map(|p| p.strip_prefix("Actor_"))
        .and_then(|n| n.parse().ok())
}

/// The RAVDESS actor of a catalog caller.
pub fn catalog_actor(files: &[(u8, String)]) -> Option<u32> {
    let (_, path) = files.first()?;
    path_actor(path)
}

/// The catalog's caller actors in `k` speaker folds (balanced by sex), as every
/// speaker-disjoint evaluation over composed calls splits them.
pub fn caller_folds(catalog: &Catalog, k: usize) -> Vec<Vec<u32>> {
    let actors: Vec<u32> = catalog
        .callers
        .iter()
        .filter_map(|c| catalog_actor(c))
        .collect();
    speaker_folds(&actors, k, ravdess_sex)
}

/// Counts over a set of calls; every figure is computed from them, so pooling is summing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CueCounts {
    pub calls: usize,
    pub upset_calls: usize,
    pub upset_flagged_within_3_s: usize,
    pub upset_flagged_within_10_s: usize,
    /// caller_upset opened before the first angry utterance of an upset call.
    pub upset_opened_before_anger: usize,
    pub calm_calls: usize,
    pub calm_call_minutes: f64,
    pub false_caller_upset_on_calm_calls: usize,
    pub false_caller_anxious_on_calm_calls: usize,
    /// Every false cue on calm calls, all kinds (see [`super::cues`]).
    pub false_cues_any_kind_on_calm_calls: usize,
    pub anxious_calls: usize,
    pub anxious_flagged: usize,
    pub caller_anxious_opened_before_fear: usize,
    pub caller_upset_on_anxious_calls: usize,
    pub caller_anxious_on_upset_calls: usize,
    pub timeline: TimelineCounts,
}

/// The headline figures of a [`CueCounts`], by name.
pub fn figures(c: &CueCounts) -> Vec<(&'static str, f64)> {
    let t = &c.timeline;
    vec![
        (
            "false_caller_upset_per_10_min_calm",
            per_10_min(c.false_caller_upset_on_calm_calls, c.calm_call_minutes),
        ),
        (
            "upset_flagged_within_3_s_pct",
            pct(c.upset_flagged_within_3_s, c.upset_calls),
        ),
        (
            "upset_flagged_within_10_s_pct",
            pct(c.upset_flagged_within_10_s, c.upset_calls),
        ),
        (
            "caller_anxious_recall_pct",
            pct(c.anxious_flagged, c.anxious_calls),
        ),
        (
            "false_caller_anxious_per_10_min_calm",
            per_10_min(c.false_caller_anxious_on_calm_calls, c.calm_call_minutes),
        ),
        (
            "false_cues_any_kind_per_10_min_calm",
            per_10_min(c.false_cues_any_kind_on_calm_calls, c.calm_call_minutes),
        ),
        (
            "timeline_angry_turns_read_angry_pct",
            pct(t.angry_turns_read_angry, t.angry_turns),
        ),
        (
            "timeline_angry_turns_read_happy_pct",
            pct(t.angry_turns_read_happy, t.angry_turns),
        ),
        (
            "timeline_calm_turns_read_angry_pct",
            pct(t.calm_turns_read_angry, t.calm_turns),
        ),
        (
            "timeline_anxious_turns_read_anxious_pct",
            pct(t.anxious_turns_read_anxious, t.anxious_turns),
        ),
    ]
}

/// The target of each headline figure that has one, as printed (`<= 1`, `>= 90`, ...).
pub fn targets() -> BTreeMap<&'static str, &'static str> {
    [
        ("false_caller_upset_per_10_min_calm", "<= 1"),
        ("upset_flagged_within_3_s_pct", ">= 90"),
        ("upset_flagged_within_10_s_pct", "100"),
        ("caller_anxious_recall_pct", ">= 80"),
        ("false_caller_anxious_per_10_min_calm", "<= 1"),
        ("timeline_angry_turns_read_angry_pct", ">= 70"),
        ("timeline_calm_turns_read_angry_pct", "<= 10"),
    ]
    .into_iter()
    .collect()
}

impl CueCounts {
    /// Adds `o`'s counts (pooling).
    pub fn add(&mut self, o: &Self) {
        self.calls += o.calls;
        self.upset_calls += o.upset_calls;
        self.upset_flagged_within_3_s += o.upset_flagged_within_3_s;
        self.upset_flagged_within_10_s += o.upset_flagged_within_10_s;
        self.upset_opened_before_anger += o.upset_opened_before_anger;
        self.calm_calls += o.calm_calls;
        self.calm_call_minutes += o.calm_call_minutes;
        self.false_caller_upset_on_calm_calls += o.false_caller_upset_on_calm_calls;
        self.false_caller_anxious_on_calm_calls += o.false_caller_anxious_on_calm_calls;
        self.false_cues_any_kind_on_calm_calls += o.false_cues_any_kind_on_calm_calls;
        self.anxious_calls += o.anxious_calls;
        self.anxious_flagged += o.anxious_flagged;
        self.caller_anxious_opened_before_fear += o.caller_anxious_opened_before_fear;
        self.caller_upset_on_anxious_calls += o.caller_upset_on_anxious_calls;
        self.caller_anxious_on_upset_calls += o.caller_anxious_on_upset_calls;
        self.timeline.add(&o.timeline);
    }
}

/// The scripted mood of an evaluated call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerMood {
    Upset,
    Calm,
    Anxious,
}

impl From<&CallerArc> for CallerMood {
    fn from(arc: &CallerArc) -> Self {
        match arc {
            CallerArc::Upset { .. } => Self::Upset,
            CallerArc::Calm => Self::Calm,
            CallerArc::Anxious { .. } => Self::Anxious,
        }
    }
}

/// One evaluated call.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluatedCall {
    pub name: String,
    pub caller_mood: CallerMood,
    pub caller_actor: Option<u32>,
    pub cues: CallCueResult,
    pub anxious: Option<AnxiousCallResult>,
    pub timeline: TimelineCounts,
}

/// One fold.
#[derive(Debug, Clone, Serialize)]
pub struct FoldReport {
    pub fold: usize,
    pub held_out_actors: Vec<u32>,
    /// What judged the calls: "trained without the held-out actors" or the in-sample model.
    pub model: String,
    pub counts: CueCounts,
    pub figures: BTreeMap<&'static str, f64>,
    pub calls: Vec<EvaluatedCall>,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct SpeakerDisjointCueReport {
    /// "speaker-disjoint (K folds over RAVDESS actors)" or "in-sample (overstates)".
    pub protocol: String,
    pub rules_version: String,
    pub seed: u64,
    pub minutes_per_call: f64,
    pub calls_per_fold: usize,
    pub pooled_counts: CueCounts,
    /// Pooled figure with the spread of the per-fold figures.
    pub pooled: BTreeMap<&'static str, Spread>,
    pub folds: Vec<FoldReport>,
}

/// Runs the evaluation; `progress` receives one line per fold model (cached or trained).
pub fn evaluate(
    config: &CueEvalConfig,
    judge: &Judge,
    mut progress: impl FnMut(&str),
) -> Result<SpeakerDisjointCueReport, CueEvalError> {
    config.validate()?;
    let catalog = Catalog::scan(&config.data_dir).map_err(|source| CueEvalError::Catalog {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let folds = caller_folds(&catalog, config.folds);
    if let Some(bad) = config
        .only_folds
        .iter()
        .flatten()
        .find(|f| **f >= folds.len())
    {
        return Err(CueEvalError::NoSuchFold {
            fold: *bad,
            folds: folds.len(),
        });
    }
    let dir = &config.work_dir;
    std::fs::create_dir_all(dir).map_err(|source| CueEvalError::WorkDir {
        path: dir.display().to_string(),
        source,
    })?;
    let reports = evaluate_folds(config, judge, &catalog, &folds, &mut progress);
    if !config.keep_calls {
        let _ = std::fs::remove_dir_all(dir);
    }
    let reports = reports?;
    let mut pooled_counts = CueCounts::default();
    for r in &reports {
        pooled_counts.add(&r.counts);
    }
    let pooled = figures(&pooled_counts)
        .into_iter()
        .map(|(name, value)| {
            let per_fold: Vec<f64> = reports.iter().map(|r| r.figures[name]).collect();
            (name, Spread::new(value, &per_fold))
        })
        .collect();
    Ok(SpeakerDisjointCueReport {
        protocol: match judge {
            Judge::InSample { label, .. } => {
                format!("in-sample (overstates): every fold judged by {label}")
            }
            Judge::FoldModels(_) => format!(
                "speaker-disjoint ({} folds over RAVDESS actors)",
                folds.len()
            ),
        },
        rules_version: config.rules.version.clone(),
        seed: config.seed,
        minutes_per_call: config.minutes,
        calls_per_fold: config.calls_per_fold,
        pooled_counts,
        pooled,
        folds: reports,
    })
}

fn evaluate_folds(
    config: &CueEvalConfig,
    judge: &Judge,
    catalog: &Catalog,
    folds: &[Vec<u32>],
    progress: &mut impl FnMut(&str),
) -> Result<Vec<FoldReport>, CueEvalError> {
    let mut reports = Vec::new();
    for (fold, held_out) in folds.iter().enumerate() {
        if config
            .only_folds
            .as_ref()
            .is_some_and(|only| !only.contains(&fold))
        {
            continue;
        }
        let (model, model_name) = match judge {
            Judge::InSample { model, label } => (Arc::clone(model), format!("{label} (in-sample)")),
            Judge::FoldModels(corpus) => {
                let (model, source) = corpus.model_without(held_out)?;
                progress(&source.describe(held_out));
                (
                    Arc::new(model),
                    "trained without the held-out actors".to_owned(),
                )
            }
        };
        let fold_catalog = Catalog {
            agents: catalog.agents.clone(),
            callers: catalog
                .callers
                .iter()
                .filter(|c| catalog_actor(c).is_some_and(|a| held_out.contains(&a)))
                .cloned()
                .collect(),
        };
        let calls = evaluate_fold(config, &model, &fold_catalog, fold)?;
        reports.push(fold_report(fold, held_out, model_name, calls));
    }
    Ok(reports)
}

fn evaluate_fold(
    config: &CueEvalConfig,
    model: &Arc<EmotionModel>,
    catalog: &Catalog,
    fold: usize,
) -> Result<Vec<EvaluatedCall>, CueEvalError> {
    let base = RandomCallConfig {
        seed: config.seed,
        min_minutes: config.minutes,
        max_minutes: config.minutes,
        ..RandomCallConfig::default()
    };
    let dir = &config.work_dir;
    let rules = &config.rules;
    let mut cache = SourceCache::new(&config.data_dir, base.sample_rate_hz, base.telephone);
    let mut results = Vec::with_capacity(config.calls_per_fold);
    for i in 0..config.calls_per_fold as u64 {
        let index = fold as u64 * 1000 + i;
        let arc = caller_arc(config.seed, index, config.minutes * 60.0);
        let call_config = RandomCallConfig {
            caller_arc: Some(arc),
            ..base.clone()
        };
        let name = format!("fold{fold}_call_{i:03}");
        let wav = dir.join(format!("{name}.wav"));
        let compose_err = |source| CueEvalError::Compose {
            call: name.clone(),
            source,
        };
        let spec = random_spec(&call_config, index, catalog, &mut cache).map_err(compose_err)?;
        let call = compose::compose_with(&spec, &mut cache).map_err(compose_err)?;
        compose::write_call(&call, &wav).map_err(compose_err)?;
        if config.keep_calls {
            write_spec(&dir.join(format!("{name}.spec.json")), &spec)?;
        }
        let truth = call.annotation;
        let path = wav.display().to_string();
        let mut reader = attune_qa::files::open_wav(&wav).map_err(|source| CueEvalError::Read {
            path: path.clone(),
            source,
        })?;
        let defaults = CallConfig::default();
        let call_config = CallConfig {
            agent_channel: usize::from(truth.agent_channel),
            rules: rules.clone(),
            analyzer: AnalyzerConfig {
                vad: config.vad.clone(),
                ..defaults.analyzer.clone()
            },
            ..defaults
        };
        let mut cues: Vec<CueEvent> = Vec::new();
        let mut caller_points: Vec<EmotionPoint> = Vec::new();
        analyze_recording(
            &mut reader,
            call_config,
            Arc::clone(model),
            |e| match e {
                CallEvent::Cue(c) => cues.push(c.clone()),
                CallEvent::Emotion(p) if p.party == Speaker::Caller => {
                    caller_points.push(p.clone())
                }
                _ => {}
            },
            |_| {},
        )
        .map_err(|source| CueEvalError::Analyse {
            path: path.clone(),
            source,
        })?;
        if !config.keep_calls {
            let _ = std::fs::remove_file(&wav);
            let _ = std::fs::remove_file(wav.with_extension("truth.json"));
        }
        let caller_actor = truth
            .utterances
            .iter()
            .find(|u| u.speaker == Speaker::Caller)
            .and_then(|u| path_actor(&u.source));
        let anxious = score_anxious_call(&truth, &cues);
        let mut scored = eval::score_call(&name, &truth, &cues, rules);
        let caller_mood = CallerMood::from(&arc);
        if caller_mood == CallerMood::Anxious {
            // score_call knows upset and calm calls only: an anxious call's cues are scored
            // by `score_anxious_call`.
            scored.false_cues.clear();
        }
        results.push(EvaluatedCall {
            name,
            caller_mood,
            caller_actor,
            timeline: timeline_counts(&truth, &caller_points),
            cues: scored,
            anxious,
        });
    }
    Ok(results)
}

fn write_spec(path: &Path, spec: &impl Serialize) -> Result<(), CueEvalError> {
    let json = serde_json::to_string_pretty(spec).unwrap_or_default() + "\n";
    std::fs::write(path, json).map_err(|source| CueEvalError::Write {
        path: path.display().to_string(),
        source,
    })
}

fn count_kind(v: &[(CueKind, f64)], kind: CueKind) -> usize {
    v.iter().filter(|(k, _)| *k == kind).count()
}

fn opened(c: &CallCueResult, kind: CueKind) -> usize {
    c.opened
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, n)| *n)
}

/// The counts and figures of one fold's calls.
pub fn fold_report(
    fold: usize,
    held_out: &[u32],
    model: String,
    calls: Vec<EvaluatedCall>,
) -> FoldReport {
    let mut c = CueCounts {
        calls: calls.len(),
        ..CueCounts::default()
    };
    for call in &calls {
        c.timeline.add(&call.timeline);
        match call.caller_mood {
            CallerMood::Upset => {
                c.upset_calls += 1;
                let d = call.cues.upset_delay_s;
                c.upset_flagged_within_3_s += usize::from(d.is_some_and(|d| d <= TARGET_DELAY_S));
                c.upset_flagged_within_10_s +=
                    usize::from(d.is_some_and(|d| d <= ALL_FLAGGED_DELAY_S));
                c.upset_opened_before_anger += call.cues.early_upset_opens;
                c.caller_anxious_on_upset_calls += opened(&call.cues, CueKind::CallerAnxious);
            }
            CallerMood::Calm => {
                c.calm_calls += 1;
                c.calm_call_minutes += call.cues.duration_s / 60.0;
                c.false_caller_upset_on_calm_calls +=
                    count_kind(&call.cues.false_cues, CueKind::CallerUpset);
                c.false_caller_anxious_on_calm_calls +=
                    count_kind(&call.cues.false_cues, CueKind::CallerAnxious);
                c.false_cues_any_kind_on_calm_calls += call.cues.false_cues.len();
            }
            CallerMood::Anxious => {
                c.anxious_calls += 1;
                if let Some(a) = &call.anxious {
                    c.anxious_flagged += usize::from(a.anxious_delay_s.is_some());
                    c.caller_anxious_opened_before_fear += a.early_anxious_opens;
                    c.caller_upset_on_anxious_calls += a.upset_opens;
                }
            }
        }
    }
    FoldReport {
        fold,
        held_out_actors: held_out.to_vec(),
        model,
        figures: figures(&c).into_iter().collect(),
        counts: c,
        calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cues(
        duration_s: f64,
        upset_delay_s: Option<f64>,
        false_cues: Vec<(CueKind, f64)>,
    ) -> CallCueResult {
        CallCueResult {
            name: "c".into(),
            duration_s,
            upset_stretch_s: upset_delay_s.map(|_| (30.0, 60.0)),
            upset_delay_s,
            early_upset_opens: 0,
            false_cues,
            true_timing_cues: 0,
            opened: Vec::new(),
        }
    }

    fn call(
        mood: CallerMood,
        cues: CallCueResult,
        anxious: Option<AnxiousCallResult>,
    ) -> EvaluatedCall {
        EvaluatedCall {
            name: "c".into(),
            caller_mood: mood,
            caller_actor: Some(1),
            cues,
            anxious,
            timeline: TimelineCounts::default(),
        }
    }

    #[test]
    fn calls_cycle_upset_calm_anxious_with_stretches_inside_the_call() {
        for index in 0..30 {
            let arc = caller_arc(2, index, 180.0);
            let expected = [CallerMood::Upset, CallerMood::Calm, CallerMood::Anxious];
            assert_eq!(CallerMood::from(&arc), expected[index as usize % 3]);
            if let CallerArc::Upset {
                onset_s,
                upset_s: stretch_s,
                level_offset_db,
            }
            | CallerArc::Anxious {
                onset_s,
                anxious_s: stretch_s,
                level_offset_db,
            } = arc
            {
                assert!((20.0..=72.0).contains(&onset_s), "{onset_s}");
                assert!((25.0..=45.0).contains(&stretch_s), "{stretch_s}");
                assert!((2.0..=6.0).contains(&level_offset_db), "{level_offset_db}");
            }
        }
        assert_eq!(caller_arc(2, 3, 180.0), caller_arc(2, 3, 180.0));
    }

    #[test]
    fn actors_of_catalog_paths() {
        let files = vec![(5, "ravdess/Actor_07/03-01-05-01-01-01-07.wav".to_owned())];
        assert_eq!(catalog_actor(&files), Some(7));
        assert_eq!(catalog_actor(&[]), None);
        assert_eq!(path_actor("fda/rl001.wav"), None);
    }

    #[test]
    fn fold_counts_and_pooling() {
        let anxious = AnxiousCallResult {
            anxious_stretch_s: (30.0, 60.0),
            anxious_delay_s: Some(4.0),
            early_anxious_opens: 0,
            upset_opens: 2,
        };
        let calls = vec![
            call(CallerMood::Upset, cues(180.0, Some(2.0), Vec::new()), None),
            call(CallerMood::Upset, cues(180.0, Some(8.0), Vec::new()), None),
            call(
                CallerMood::Calm,
                cues(300.0, None, vec![(CueKind::CallerUpset, 50.0)]),
                None,
            ),
            call(
                CallerMood::Anxious,
                cues(180.0, None, Vec::new()),
                Some(anxious),
            ),
        ];
        let r = fold_report(0, &[1, 2], "m".into(), calls);
        let c = &r.counts;
        assert_eq!((c.upset_calls, c.calm_calls, c.anxious_calls), (2, 1, 1));
        assert_eq!(
            (c.upset_flagged_within_3_s, c.upset_flagged_within_10_s),
            (1, 2)
        );
        assert_eq!(c.false_caller_upset_on_calm_calls, 1);
        assert_eq!((c.anxious_flagged, c.caller_upset_on_anxious_calls), (1, 2));
        assert_eq!(r.figures["false_caller_upset_per_10_min_calm"], 2.0);
        assert_eq!(r.figures["upset_flagged_within_3_s_pct"], 50.0);
        let mut pooled = CueCounts::default();
        pooled.add(c);
        pooled.add(c);
        assert_eq!(pooled.calls, 8);
        assert_eq!(pooled.calm_call_minutes, 10.0);
        let f: BTreeMap<_, _> = figures(&pooled).into_iter().collect();
        assert_eq!(f["false_caller_upset_per_10_min_calm"], 2.0);
        assert!(f["timeline_angry_turns_read_angry_pct"].is_nan());
    }
}
