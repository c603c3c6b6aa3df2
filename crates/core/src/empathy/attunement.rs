//! Attunement (prosodic accommodation): does the agent move toward the caller's pitch and pace
//! over adjacent turns, and stay calmly below a raised caller rather than match the rise?
//!
//! Pairs: each caller turn with the agent turn that answers it ([`super::Context::answer_pairs`]).
//! Per feature (pitch level and range in semitones, loudness in dB, articulation rate in
//! syllables/s) the [`super::entrainment`] figures. A caller turn is *raised* when it is
//! `raised_caller_db` louder than the caller's median turn; the agent's answer *matches the
//! rise* when it is `matched_rise_db` louder, or `matched_rise_st` higher, than the agent's
//! reference (its median answer to unraised caller turns; all its answers when there is none).
//!
//! Score = 100 × (w × stays-below share + (1 − w) × accommodation) with raised turns,
//! 100 × accommodation without; accommodation = 0.5 + 0.5 × the mean synchrony of pitch level,
//! pitch range and rate (the features where moving with the caller is rapport; loudness is left
//! out: following a shouting caller up is not).

use serde::Serialize;

use super::entrainment::{Entrainment, Pair, entrainment};
use super::{Context, EmpathyConfig, EmpathyScore, Moment, median, round3};
use crate::dialog::Speaker;

/// Entrainment per feature.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct FeatureEntrainment {
    pub pitch_level_st: Entrainment,
    pub pitch_range_st: Entrainment,
    pub loudness_db: Entrainment,
    pub rate_syl_per_s: Entrainment,
}

/// The measures behind the attunement score.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AttunementMeasures {
    /// Caller→agent turn pairs.
    pub pairs: usize,
    pub entrainment: FeatureEntrainment,
    /// Raised caller turns the agent answered.
    pub raised_caller_turns: u64,
    /// ... of which the agent's answer stayed below the rise.
    pub agent_stayed_below: u64,
    /// Share of raised caller turns answered calmly (0–1).
    pub stays_below_share: Option<f64>,
    /// Mean loudness of the agent's answers to raised caller turns minus its reference, dB.
    pub answer_to_raised_vs_own_db: Option<f64>,
    /// 0.5 + 0.5 × mean synchrony of pitch level, pitch range and rate (0–1).
    pub accommodation: Option<f64>,
}

type Feature = fn(&super::TurnProsody) -> Option<f64>;

const FEATURES: [Feature; 4] = [
    |t| t.pitch_level_st,
    |t| t.pitch_range_st,
    |t| t.loudness_db,
    |t| t.rate_syl_per_s,
];

/// Entrainment of one feature over the call's answer pairs.
pub(crate) fn feature_entrainment(ctx: &Context, f: Feature) -> Entrainment {
    let pairs: Vec<Pair> = ctx
        .answer_pairs()
        .into_iter()
        .filter_map(|(c, a)| {
            Some(Pair {
                t_s: a.start_s,
                caller: f(c)?,
                agent: f(a)?,
            })
        })
        .collect();
    let caller: Vec<f64> = ctx.main_turns(Speaker::Caller).filter_map(f).collect();
    let agent: Vec<f64> = ctx.main_turns(Speaker::Agent).filter_map(f).collect();
    entrainment(&pairs, &caller, &agent)
}

pub(crate) fn measure(ctx: &Context, config: &EmpathyConfig) -> EmpathyScore<AttunementMeasures> {
    let pairs = ctx.answer_pairs();
    let [pitch_level, pitch_range, loudness, rate] = FEATURES.map(|f| feature_entrainment(ctx, f));
    let entrainment = FeatureEntrainment {
        pitch_level_st: pitch_level,
        pitch_range_st: pitch_range,
        loudness_db: loudness,
        rate_syl_per_s: rate,
    };
    let mut evidence = Vec::new();

    // Raised caller turns and the agent's answers.
    let caller_loud: Vec<f64> = ctx
        .main_turns(Speaker::Caller)
        .filter_map(|t| t.loudness_db)
        .collect();
    let caller_median = median(&caller_loud);
    let raised = |c: &super::TurnProsody| match (c.loudness_db, caller_median) {
        (Some(l), Some(m)) => l >= m + config.raised_caller_db,
        _ => false,
    };
    let unraised_answers: Vec<&super::TurnProsody> = pairs
        .iter()
        .filter(|(c, _)| !raised(c))
        .map(|(_, a)| *a)
        .collect();
    let reference_turns: Vec<&super::TurnProsody> = if unraised_answers.is_empty() {
        pairs.iter().map(|(_, a)| *a).collect()
    } else {
        unraised_answers
    };
    let agent_ref_db = median(
        &reference_turns
            .iter()
            .filter_map(|t| t.loudness_db)
            .collect::<Vec<_>>(),
    );
    let agent_ref_st = median(
        &reference_turns
            .iter()
            .filter_map(|t| t.pitch_level_st)
            .collect::<Vec<_>>(),
    );
    let (mut raised_n, mut below_n) = (0u64, 0u64);
    let mut answer_deltas = Vec::new();
    for (c, a) in pairs.iter().filter(|(c, _)| raised(c)) {
        let (Some(ad), Some(ref_db)) = (a.loudness_db, agent_ref_db) else {
            continue;
        };
        raised_n += 1;
        let caller_rise = c.loudness_db.unwrap_or(0.0) - caller_median.unwrap_or(0.0);
        let rise_db = ad - ref_db;
        let rise_st = match (a.pitch_level_st, agent_ref_st) {
            (Some(p), Some(r)) => p - r,
            _ => 0.0,
        };
        answer_deltas.push(rise_db);
        if rise_db >= config.matched_rise_db || rise_st >= config.matched_rise_st {
            evidence.push(Moment::new(
                a.start_s,
                format!(
                    "agent matched a raised caller (+{caller_rise:.1} dB): answered {rise_db:+.1} dB, {rise_st:+.1} st against its own level"
                ),
            ));
        } else {
            below_n += 1;
            evidence.push(Moment::new(
                a.start_s,
                format!(
                    "agent stayed calm under a raised caller (+{caller_rise:.1} dB): answered {rise_db:+.1} dB, {rise_st:+.1} st against its own level"
                ),
            ));
        }
    }
    let stays_below_share = (raised_n > 0).then(|| below_n as f64 / raised_n as f64);
    let sync: Vec<f64> = [pitch_level, pitch_range, rate]
        .iter()
        .filter_map(|e| e.synchrony)
        .collect();
    let accommodation =
        (!sync.is_empty()).then(|| 0.5 + 0.5 * sync.iter().sum::<f64>() / sync.len() as f64);
    // The strongest moves with / against the caller on rate and pitch.
    if pairs.len() >= config.min_pairs {
        for (name, f) in [("pitch", FEATURES[0]), ("rate", FEATURES[3])] {
            let best = pairs
                .iter()
                .filter_map(|(c, a)| Some((a.start_s, (f(a)? - f(c)?).abs())))
                .min_by(|x, y| x.1.total_cmp(&y.1));
            if let Some((t, d)) = best {
                let unit = if name == "pitch" { "st" } else { "syl/s" };
                evidence.push(Moment::new(
                    t,
                    format!(
                        "agent {name} closest to the caller turn it answered ({d:.2} {unit} apart)"
                    ),
                ));
            }
        }
    }
    let measures = AttunementMeasures {
        pairs: pairs.len(),
        entrainment,
        raised_caller_turns: raised_n,
        agent_stayed_below: below_n,
        stays_below_share: stays_below_share.map(round3),
        answer_to_raised_vs_own_db: (!answer_deltas.is_empty())
            .then(|| round3(answer_deltas.iter().sum::<f64>() / answer_deltas.len() as f64)),
        accommodation: accommodation.map(round3),
    };
    if pairs.len() < config.min_pairs {
        return EmpathyScore::unscored(
            format!(
                "{} caller→agent turn pairs: attunement needs {}",
                pairs.len(),
                config.min_pairs
            ),
            measures,
            evidence,
        );
    }
    let score = match (stays_below_share, accommodation) {
        (Some(s), Some(a)) => config.stays_below_weight * s + (1.0 - config.stays_below_weight) * a,
        (Some(s), None) => s,
        (None, Some(a)) => a,
        (None, None) => {
            return EmpathyScore::unscored(
                "no pitch or rate to compare on the answer pairs and no raised caller turn",
                measures,
                evidence,
            );
        }
    };
    EmpathyScore::scored(100.0 * score, measures, evidence)
}
