//! Scripted calls for the empathy measures (`attune eval empathy`, `attune compose --empathy`):
//! the same caller arc — calm, then an upset stretch (angry/disgust utterances,
//! [`UPSET_LEVEL_DB`] louder, longer turns), then calm again or still upset — with the agent
//! behaviour the script asks for:
//!
//! - **interrupts**: the agent starts each answer to an upset caller turn 1.0–1.6 s before the
//!   caller's last sentence ends (a dialog interruption), instead of after a 0.5–1.0 s gap;
//! - **mirrors**: the agent answers an upset caller [`MIRROR_LEVEL_DB`] louder and
//!   [`MIRROR_SPEED`] times faster (rate and pitch up together), after 0.15–0.3 s;
//! - **slow and soft**: the agent answers an upset caller [`SOFT_LEVEL_DB`] (softer) and at
//!   [`SOFT_SPEED`] speed (slower, lower), after 1.0–1.5 s;
//! - **backchannels**: the agent says a short "mm" (the first 0.4–0.6 s of one of its
//!   sentences, 3 dB quieter) 0.6 s into every caller turn's first sentence of at least 1.3 s
//!   (never its last sentence, so the "mm" lies inside the caller's turn).
//!
//! Agent: one CSTR FDA speaker; caller: one RAVDESS actor of the catalog (for speaker-disjoint
//! evaluation, a catalog of held-out actors only). Deterministic for (seed, index).

use serde::Serialize;

use super::annotation::Speaker;
use super::random::{CALM_EMOTION_CODES, Catalog, UPSET_EMOTION_CODES};
use super::spec::{CallSpec, OutputEncoding, Start, UtteranceSpec};
use super::{ComposeError, SourceCache};
use attune_core::rng::SplitMix64;

/// The caller's upset utterances are this much louder than its calm ones, dB.
pub const UPSET_LEVEL_DB: f64 = 6.0;
/// A mirroring agent answers this much louder, dB, and this much faster.
pub const MIRROR_LEVEL_DB: f64 = 7.0;
pub const MIRROR_SPEED: f64 = 1.12;
/// A slow, soft agent answers this much louder (negative: softer), dB, at this speed.
pub const SOFT_LEVEL_DB: f64 = -4.0;
pub const SOFT_SPEED: f64 = 0.88;
/// Caller turns before, during and after the upset stretch.
pub const CALM_TURNS_BEFORE: usize = 3;
pub const UPSET_TURNS: usize = 6;
pub const TURNS_AFTER: usize = 5;

/// How the agent answers an upset caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStyle {
    /// As to a calm caller.
    Neutral,
    /// Louder and faster: matching the caller's rise.
    Mirror,
    /// Softer and slower, after a longer pause.
    SlowSoft,
}

/// What the agent and the caller do in one scripted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EmpathyScript {
    /// The agent interrupts the caller's upset turns.
    pub interrupts_upset: bool,
    pub style_when_upset: AgentStyle,
    /// The caller is calm again after the upset stretch (else upset to the end).
    pub caller_calms: bool,
    /// The agent backchannels in the caller's turns.
    pub backchannels: bool,
}

/// The scripted cases, each one side of a comparison of `attune eval empathy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Interrupts an upset caller (neutral otherwise; the caller calms).
    InterruptsUpsetCaller,
    /// Lets the upset caller finish; no backchannels (the silent listener too).
    LetsUpsetCallerFinish,
    /// Mirrors the loud caller (louder, faster); the caller calms anyway.
    MirrorsLoudCaller,
    /// Stays slow and soft under the loud caller, who calms down.
    StaysSlowAndSoft,
    /// Mirrors the loud caller, who stays upset to the end.
    MirrorsCallerStaysUpset,
    /// Lets the caller finish and backchannels.
    Backchannels,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::InterruptsUpsetCaller,
        Scenario::LetsUpsetCallerFinish,
        Scenario::MirrorsLoudCaller,
        Scenario::StaysSlowAndSoft,
        Scenario::MirrorsCallerStaysUpset,
        Scenario::Backchannels,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::InterruptsUpsetCaller => "interrupts_upset_caller",
            Scenario::LetsUpsetCallerFinish => "lets_upset_caller_finish",
            Scenario::MirrorsLoudCaller => "mirrors_loud_caller",
            Scenario::StaysSlowAndSoft => "stays_slow_and_soft",
            Scenario::MirrorsCallerStaysUpset => "mirrors_caller_stays_upset",
            Scenario::Backchannels => "backchannels",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn script(self) -> EmpathyScript {
        let base = EmpathyScript {
            interrupts_upset: false,
            style_when_upset: AgentStyle::Neutral,
            caller_calms: true,
            backchannels: false,
        };
        match self {
            Scenario::InterruptsUpsetCaller => EmpathyScript {
                interrupts_upset: true,
                ..base
            },
            Scenario::LetsUpsetCallerFinish => base,
            Scenario::MirrorsLoudCaller => EmpathyScript {
                style_when_upset: AgentStyle::Mirror,
                ..base
            },
            Scenario::StaysSlowAndSoft => EmpathyScript {
                style_when_upset: AgentStyle::SlowSoft,
                ..base
            },
            Scenario::MirrorsCallerStaysUpset => EmpathyScript {
                style_when_upset: AgentStyle::Mirror,
                caller_calms: false,
                ..base
            },
            Scenario::Backchannels => EmpathyScript {
                backchannels: true,
                ..base
            },
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Plans one scripted call (`index` picks the voices and the sentences).
pub fn scripted_spec(
    script: EmpathyScript,
    seed: u64,
    index: u64,
    catalog: &Catalog,
    cache: &mut SourceCache,
) -> Result<CallSpec, ComposeError> {
    let mut rng = SplitMix64::new(seed ^ 0x0065_6d70_6174_6879).fork(index);
    if catalog.agents.is_empty() || catalog.callers.is_empty() {
        return Err(ComposeError::Corpus(
            "the catalog needs an agent and a caller".into(),
        ));
    }
    let agent_files = &catalog.agents[rng.below(catalog.agents.len())];
    let actor = &catalog.callers[rng.below(catalog.callers.len())];
    let of = |codes: &[u8]| -> Vec<&str> {
        actor
            .iter()
            .filter(|(e, _)| codes.contains(e))
            .map(|(_, f)| f.as_str())
            .collect()
    };
    let (calm, upset) = (of(&CALM_EMOTION_CODES), of(&UPSET_EMOTION_CODES));
    if calm.is_empty() || upset.is_empty() || agent_files.is_empty() {
        return Err(ComposeError::Corpus(
            "the caller actor needs calm and angry/disgust files".into(),
        ));
    }
    let agent_channel = rng.below(2) as u16;
    let agent_db = rng.range(-25.0, -20.0);
    let caller_db = rng.range(-27.0, -22.0);
    let rate = 8_000.0;
    let mut utterances: Vec<UtteranceSpec> = Vec::new();
    let mut push = |u: UtteranceSpec| utterances.push(u);
    let utterance = |speaker, source: &str, start, level: f64, speed: Option<f64>| UtteranceSpec {
        speaker,
        source: source.to_owned(),
        start,
        level_dbfs: round2(level.min(-16.0)),
        kind: None,
        max_s: None,
        speed,
        noises: Vec::new(),
    };
    // The agent's greeting.
    let pick = |rng: &mut SplitMix64, files: &[&str]| files[rng.below(files.len())].to_owned();
    let agent_list: Vec<&str> = agent_files.iter().map(String::as_str).collect();
    let greeting = pick(&mut rng, &agent_list);
    push(utterance(
        Speaker::Agent,
        &greeting,
        Start::AtS(round2(rng.range(0.3, 0.8))),
        agent_db,
        None,
    ));
    let turns = CALM_TURNS_BEFORE + UPSET_TURNS + TURNS_AFTER;
    for turn in 0..turns {
        let upset_turn = turn >= CALM_TURNS_BEFORE
            && (turn < CALM_TURNS_BEFORE + UPSET_TURNS || !script.caller_calms);
        // The caller's turn: 2 sentences calm, 3 upset.
        let sentences = if upset_turn { 3 } else { 2 };
        let mut last_len_s = 0.0;
        for k in 0..sentences {
            let source = pick(&mut rng, if upset_turn { &upset } else { &calm });
            let start = if k == 0 {
                // Placed after the agent's answer (set below) — the gap is the agent's.
                Start::AfterS(round2(rng.range(0.4, 0.9)))
            } else {
                Start::AfterS(round2(rng.range(0.08, 0.15)))
            };
            let level = caller_db + if upset_turn { UPSET_LEVEL_DB } else { 0.0 };
            push(utterance(
                Speaker::Caller,
                &source,
                start,
                level + rng.range(-1.0, 1.0),
                None,
            ));
            let clip = cache
                .clip(&source, None)
                .map_err(|error| ComposeError::Source {
                    index: 0,
                    speaker: Speaker::Caller,
                    error,
                })?;
            last_len_s = clip.speech_len() as f64 / rate;
            if k == 0 && script.backchannels && last_len_s >= 1.3 {
                let source = pick(&mut rng, &agent_list);
                let max_s = round2(rng.range(0.4, 0.6));
                push(UtteranceSpec {
                    max_s: Some(max_s),
                    ..utterance(
                        Speaker::Agent,
                        &source,
                        Start::IntoOtherS(0.6),
                        agent_db - 3.0,
                        None,
                    )
                });
            }
        }
        if turn + 1 == turns {
            break;
        }
        // The agent's answer: 2 sentences.
        let style = if upset_turn {
            script.style_when_upset
        } else {
            AgentStyle::Neutral
        };
        let (level_db, speed, gap_s, sentence_gap_s) = match style {
            AgentStyle::Neutral => (0.0, None, rng.range(0.5, 1.0), rng.range(0.08, 0.15)),
            AgentStyle::Mirror => (
                MIRROR_LEVEL_DB,
                Some(MIRROR_SPEED),
                rng.range(0.15, 0.3),
                rng.range(0.04, 0.08),
            ),
            AgentStyle::SlowSoft => (
                SOFT_LEVEL_DB,
                Some(SOFT_SPEED),
                rng.range(1.0, 1.5),
                rng.range(0.2, 0.28),
            ),
        };
        let lead_s = rng.range(1.0, 1.6).min(last_len_s - 0.7);
        let start = if upset_turn && script.interrupts_upset && lead_s >= 0.6 {
            Start::BeforeOtherEndS(round2(lead_s))
        } else {
            Start::AfterS(round2(gap_s))
        };
        for k in 0..2 {
            let source = pick(&mut rng, &agent_list);
            let start = if k == 0 {
                start
            } else {
                Start::AfterS(round2(sentence_gap_s))
            };
            push(utterance(
                Speaker::Agent,
                &source,
                start,
                agent_db + level_db + rng.range(-1.0, 1.0),
                speed,
            ));
        }
    }
    Ok(CallSpec {
        sample_rate_hz: 8_000,
        agent_channel,
        data_dir: None,
        crosstalk_db: Some(round2(rng.range(-35.0, -28.0))),
        crosstalk_delay_ms: 3.0,
        noise_dbfs: Some(round2(rng.range(-60.0, -50.0))),
        telephone: true,
        encoding: OutputEncoding::Mulaw,
        tail_s: 0.5,
        seed: rng.next_u64(),
        utterances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Tone "sentences": two agent files, one actor with calm and angry files.
    fn tiny_corpus(dir: &Path) {
        let write = |rel: &str, freq: f64, secs: f64| {
            let rate = 8_000usize;
            let len = (secs * rate as f64) as usize;
            let mut pcm = vec![0i16; len + rate / 2];
            for (k, v) in pcm[rate / 4..rate / 4 + len].iter_mut().enumerate() {
                *v = ((std::f64::consts::TAU * freq * k as f64 / rate as f64).sin() * 5_000.0)
                    as i16;
            }
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let file = std::fs::File::create(path).unwrap();
            super::super::wav::write_pcm16_wav(std::io::BufWriter::new(file), 8_000, &[pcm])
                .unwrap();
        };
        write("fda/rl001.wav", 120.0, 2.5);
        write("fda/rl002.wav", 130.0, 1.8);
        for (code, secs) in [(1, 1.8), (2, 2.2), (5, 2.0), (7, 2.4)] {
            write(
                &format!("ravdess/Actor_01/03-01-0{code}-01-01-01-01.wav"),
                220.0,
                secs,
            );
        }
    }

    #[test]
    fn scripts_do_what_they_say_and_compose() {
        let dir = std::env::temp_dir().join(format!("attune-empathy-{}", std::process::id()));
        tiny_corpus(&dir);
        let catalog = Catalog::scan(&dir).unwrap();
        let mut cache = SourceCache::new(&dir, 8_000, true);
        let mut spec = |s: Scenario| scripted_spec(s.script(), 4, 0, &catalog, &mut cache).unwrap();
        let agent = |spec: &CallSpec| -> Vec<UtteranceSpec> {
            spec.utterances
                .iter()
                .filter(|u| u.speaker == Speaker::Agent)
                .cloned()
                .collect()
        };
        let interrupts = spec(Scenario::InterruptsUpsetCaller);
        let finish = spec(Scenario::LetsUpsetCallerFinish);
        let mirrors = spec(Scenario::MirrorsLoudCaller);
        let soft = spec(Scenario::StaysSlowAndSoft);
        let backchannels = spec(Scenario::Backchannels);
        let stays = spec(Scenario::MirrorsCallerStaysUpset);
        let early = |s: &CallSpec| {
            agent(s)
                .iter()
                .filter(|u| matches!(u.start, Start::BeforeOtherEndS(_)))
                .count()
        };
        assert_eq!(early(&interrupts), UPSET_TURNS);
        assert_eq!(early(&finish), 0);
        let at_speed =
            |s: &CallSpec, speed: f64| agent(s).iter().filter(|u| u.speed == Some(speed)).count();
        // Two sentences per answer to each upset turn.
        assert_eq!(at_speed(&mirrors, MIRROR_SPEED), 2 * UPSET_TURNS);
        assert_eq!(at_speed(&soft, SOFT_SPEED), 2 * UPSET_TURNS);
        // Upset to the end: every answer after the calm start (the last turn is unanswered).
        assert_eq!(
            at_speed(&stays, MIRROR_SPEED),
            2 * (UPSET_TURNS + TURNS_AFTER - 1)
        );
        let short = |s: &CallSpec| agent(s).iter().filter(|u| u.max_s.is_some()).count();
        assert_eq!(short(&finish), 0);
        // One "mm" per caller turn whose first sentence lasts >= 1.3 s (all of them here).
        assert_eq!(
            short(&backchannels),
            CALM_TURNS_BEFORE + UPSET_TURNS + TURNS_AFTER
        );
        for s in [&interrupts, &mirrors, &backchannels] {
            let call = super::super::compose_with(s, &mut cache).unwrap();
            assert!(call.annotation.duration_s > 60.0);
        }
        let truth = super::super::compose_with(&interrupts, &mut cache)
            .unwrap()
            .annotation;
        assert!(
            truth
                .interruptions
                .iter()
                .filter(|i| i.by == Speaker::Agent)
                .count()
                >= UPSET_TURNS - 1,
            "{:?}",
            truth.interruptions
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
