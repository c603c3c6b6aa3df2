//! Test calls with exact ground truth: builds two-party stereo calls from real utterances of two
//! speakers following a timeline spec ([`spec`]), through a telephone channel ([`channel`]), and
//! writes the ground-truth annotation ([`annotation`], computed by [`truth`]) beside the audio.
//!
//! Pipeline of [`compose`]: each source is read, resampled to the call rate and trimmed to its
//! speech ([`source`]); utterances are placed at sample-exact onsets with their level; the truth
//! is computed from the placed clean per-party speech; then each channel gets its party plus the
//! other party's leaked copy (`crosstalk_db`, delayed `crosstalk_delay_ms`), white line noise,
//! the 300-3400 Hz band-pass and the G.711 mu-law round trip. [`random`] draws realistic
//! timelines for evaluation sets. Calls are composed in memory (up to [`spec::MAX_CALL_S`]; a
//! 10-minute 8 kHz call is under 40 MB of working memory).

pub mod annotation;
pub mod channel;
pub mod empathy;
pub mod noises;
pub mod random;
pub mod source;
pub mod spec;
pub mod truth;
pub mod wav;

use std::path::{Path, PathBuf};

use annotation::{CallAnnotation, PlacedUtterance, Speaker, UtteranceKind};
use attune_core::rng::SplitMix64;
pub use source::SourceCache;
use source::SourceError;
pub use spec::{CallSpec, OutputEncoding, Start, UtteranceSpec};
use truth::{TruthConfig, UtteranceActivity};

use attune_core::audio::g711;

/// Everything that can go wrong composing a call. Messages name the utterance (by its index in
/// the spec's `utterances`) and the rule it breaks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    #[error("invalid call spec: {0}")]
    Spec(String),
    #[error("utterances[{index}] ({speaker} {file}): {message}")]
    Utterance {
        index: usize,
        speaker: Speaker,
        file: String,
        message: String,
    },
    #[error("utterances[{index}] ({speaker})")]
    Source {
        index: usize,
        speaker: Speaker,
        #[source]
        error: SourceError,
    },
    #[error("corpus: {0}")]
    Corpus(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl std::fmt::Display for UtteranceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UtteranceKind::Turn => "turn",
            UtteranceKind::Backchannel => "backchannel",
            UtteranceKind::Interruption => "interruption",
        })
    }
}

/// A composed call: its audio and its truth.
#[derive(Debug, Clone)]
pub struct ComposedCall {
    pub annotation: CallAnnotation,
    pub encoding: OutputEncoding,
    /// Final samples per channel, as a reader decodes them (after the mu-law round trip when the
    /// call is telephone or mu-law).
    pub channels: Vec<Vec<f32>>,
    /// Mu-law codes per channel, when the call is written as mu-law.
    pub mulaw: Option<Vec<Vec<u8>>>,
    /// Samples beyond full scale before encoding (clipped), over both channels.
    pub clipped_samples: usize,
}

/// The data folder a spec's sources are relative to: `override_dir`, else the spec's
/// `data_dir`, else [`spec::DEFAULT_DATA_DIR`].
pub fn data_dir_for(spec: &CallSpec, override_dir: Option<&Path>) -> PathBuf {
    override_dir.map_or_else(
        || PathBuf::from(spec.data_dir.as_deref().unwrap_or(spec::DEFAULT_DATA_DIR)),
        Path::to_path_buf,
    )
}

/// Composes `spec` with sources under `data_dir`.
pub fn compose(spec: &CallSpec, data_dir: &Path) -> Result<ComposedCall, ComposeError> {
    let mut cache = SourceCache::new(data_dir, spec.sample_rate_hz, spec.telephone);
    compose_with(spec, &mut cache)
}

struct Placement {
    speaker: Speaker,
    /// Call sample of the clip's first sample (may be negative: the lead margin is cut off).
    offset: i64,
    gain: f32,
    /// Source, `max_s` and speed of its clip.
    key: (String, Option<f64>, f64),
    speech: (usize, usize),
    /// Index in the spec's utterances.
    index: usize,
}

/// Composes `spec`, reading sources through `cache` (which must serve the spec's rate and
/// channel; a fresh one is used otherwise).
pub fn compose_with(
    spec: &CallSpec,
    cache: &mut SourceCache,
) -> Result<ComposedCall, ComposeError> {
    spec.check().map_err(ComposeError::Spec)?;
    if !cache.serves(cache.data_dir(), spec.sample_rate_hz, spec.telephone) {
        let mut fresh = SourceCache::new(cache.data_dir(), spec.sample_rate_hz, spec.telephone);
        return compose_with(spec, &mut fresh);
    }
    let rate = f64::from(spec.sample_rate_hz);
    let mut placements: Vec<Placement> = Vec::with_capacity(spec.utterances.len());
    let mut latest_end = 0usize;
    for (index, u) in spec.utterances.iter().enumerate() {
        let fail = |message: String| ComposeError::Utterance {
            index,
            speaker: u.speaker,
            file: u.source.clone(),
            message,
        };
        u.check().map_err(&fail)?;
        let clip = cache
            .clip_at_speed(&u.source, u.max_s, u.speed.unwrap_or(1.0))
            .map_err(|error| ComposeError::Source {
                index,
                speaker: u.speaker,
                error,
            })?;
        let other = placements.iter().rev().find(|p| p.speaker != u.speaker);
        let sec = |n: usize| n as f64 / rate;
        let start_s = match u.start {
            Start::AtS(v) => v,
            Start::AfterS(gap) => sec(latest_end) + gap,
            Start::IntoOtherS(offset) => match other {
                Some(p) => sec(p.speech.0) + offset,
                None => {
                    return Err(fail(
                        "into_other_s but the other party has not spoken yet".into(),
                    ));
                }
            },
            Start::BeforeOtherEndS(lead) => match other {
                Some(p) => sec(p.speech.1) - lead,
                None => {
                    return Err(fail(
                        "before_other_end_s but the other party has not spoken yet".into(),
                    ));
                }
            },
        };
        if start_s < 0.0 {
            return Err(fail(format!(
                "its speech would start at {start_s:.3} s, before the call starts"
            )));
        }
        let start = (start_s * rate).round() as usize;
        let end = start + clip.speech_len();
        if end as f64 / rate > spec::MAX_CALL_S {
            return Err(fail(format!(
                "it ends after {} s, the longest call composed",
                spec::MAX_CALL_S
            )));
        }
        if let Some((j, p)) = placements
            .iter()
            .enumerate()
            .find(|(_, p)| p.speaker == u.speaker && start < p.speech.1 && p.speech.0 < end)
        {
            return Err(fail(format!(
                "its speech ({:.3}-{:.3} s) overlaps the same speaker's utterances[{j}] ({:.3}-{:.3} s)",
                sec(start),
                sec(end),
                sec(p.speech.0),
                sec(p.speech.1)
            )));
        }
        let gain = 10f64.powf((u.level_dbfs - clip.speech_rms_dbfs) / 20.0) as f32;
        placements.push(Placement {
            speaker: u.speaker,
            offset: start as i64 - clip.speech_start() as i64,
            gain,
            key: (u.source.clone(), u.max_s, u.speed.unwrap_or(1.0)),
            speech: (start, end),
            index,
        });
        latest_end = latest_end.max(end);
    }
    let total = latest_end + (spec.tail_s * rate).round() as usize;

    // Clean per-party signals and their speech.
    let mut clean = [vec![0.0f32; total], vec![0.0f32; total]];
    let mut activities = Vec::with_capacity(placements.len());
    for p in &placements {
        let clip = cache
            .clip_at_speed(&p.key.0, p.key.1, p.key.2)
            .expect("clip cached while placing");
        let party = &mut clean[usize::from(p.speaker == Speaker::Caller)];
        for (k, x) in clip.samples.iter().enumerate() {
            let at = p.offset + k as i64;
            if (0..total as i64).contains(&at) {
                party[at as usize] += p.gain * x;
            }
        }
        // Breaths and clicks before the speech: in the party's signal, not in its activity.
        let level_dbfs = spec.utterances[p.index].level_dbfs;
        let mut sound_rng = SplitMix64::new(spec.seed ^ 0x6272_6561_7468).fork(p.index as u64);
        for noise in &spec.utterances[p.index].noises {
            let len = ((noise.dur_s * rate).round() as usize).max(1);
            let end = p.speech.0 as i64 - (noise.lead_s * rate).round() as i64;
            let amp = 10f64.powf((level_dbfs + noise.rel_db) / 20.0) as f32;
            let sound = noises::synthesize(noise.kind, len, rate, &mut sound_rng);
            for (k, x) in sound.iter().enumerate() {
                let at = end - len as i64 + k as i64;
                if (0..total as i64).contains(&at) {
                    party[at as usize] += amp * x;
                }
            }
        }
        let place = |n: usize| (p.offset + n as i64).max(0) as usize;
        activities.push(UtteranceActivity {
            speaker: p.speaker,
            runs: clip
                .audible_runs(f64::from(p.gain), spec.noise_dbfs)
                .iter()
                .map(|&(s, e)| (place(s), place(e)))
                .collect(),
        });
    }
    let truth = truth::compute_truth(
        spec.sample_rate_hz,
        total,
        &activities,
        &TruthConfig::default(),
    );
    for (index, (u, inferred)) in spec
        .utterances
        .iter()
        .zip(&truth.utterance_kinds)
        .enumerate()
    {
        if let Some(declared) = u.kind
            && declared != *inferred
        {
            let c = TruthConfig::default();
            return Err(ComposeError::Utterance {
                index,
                speaker: u.speaker,
                file: u.source.clone(),
                message: format!(
                    "declared {declared} but the timeline makes it a {inferred} (backchannel: a run \
                     <= {} s inside the other's speech; interruption: starts after the other has \
                     spoken >= {} s and overlaps it >= {} s; runs closer than {} s merge)",
                    c.backchannel_max_s,
                    c.interruption_min_prior_s,
                    c.interruption_min_overlap_s,
                    c.bridge_pause_s
                ),
            });
        }
    }
    let utterances = spec
        .utterances
        .iter()
        .zip(&activities)
        .zip(&truth.utterance_kinds)
        .map(|((u, a), kind)| PlacedUtterance {
            speaker: u.speaker,
            channel: if u.speaker == Speaker::Agent {
                spec.agent_channel
            } else {
                1 - spec.agent_channel
            },
            start_s: a.runs.first().map_or(0.0, |r| r.0 as f64 / rate),
            end_s: a.runs.last().map_or(0.0, |r| r.1 as f64 / rate),
            kind: *kind,
            source: u.source.clone(),
            level_dbfs: u.level_dbfs,
        })
        .collect();

    // The line.
    let [agent, caller] = clean;
    let (mut agent_line, mut caller_line) = (agent.clone(), caller.clone());
    if let Some(db) = spec.crosstalk_db {
        let gain = 10f64.powf(db / 20.0) as f32;
        let delay = (spec.crosstalk_delay_ms / 1000.0 * rate).round() as usize;
        channel::add_delayed(&mut agent_line, &caller, gain, delay);
        channel::add_delayed(&mut caller_line, &agent, gain, delay);
    }
    drop((agent, caller));
    let mut lines = if spec.agent_channel == 0 {
        vec![agent_line, caller_line]
    } else {
        vec![caller_line, agent_line]
    };
    let mut noise_rng = SplitMix64::new(spec.seed);
    let mut clipped_samples = 0;
    let use_mulaw = spec.telephone || spec.encoding == OutputEncoding::Mulaw;
    let mut codes = Vec::new();
    for line in &mut lines {
        if let Some(db) = spec.noise_dbfs {
            channel::add_noise(line, db, &mut noise_rng);
        }
        if spec.telephone {
            channel::TelephoneFilter::new(spec.sample_rate_hz).process(line);
        }
        clipped_samples += line.iter().filter(|x| x.abs() > 1.0).count();
        if use_mulaw {
            let line_codes: Vec<u8> = line
                .iter()
                .map(|x| g711::encode_mulaw(to_i16(*x)))
                .collect();
            for (x, c) in line.iter_mut().zip(&line_codes) {
                *x = f32::from(g711::decode_mulaw(*c)) / 32768.0;
            }
            codes.push(line_codes);
        } else {
            for x in line.iter_mut() {
                *x = f32::from(to_i16(*x)) / 32768.0;
            }
        }
    }

    let annotation = CallAnnotation {
        sample_rate_hz: spec.sample_rate_hz,
        duration_s: total as f64 / rate,
        agent_channel: spec.agent_channel,
        crosstalk_db: spec.crosstalk_db,
        noise_dbfs: spec.noise_dbfs,
        utterances,
        turns: truth.turns,
        overlaps: truth.overlaps,
        interruptions: truth.interruptions,
        backchannels: truth.backchannels,
        silences: truth.silences,
        talk: truth.talk,
    };
    Ok(ComposedCall {
        annotation,
        encoding: spec.encoding,
        channels: lines,
        mulaw: if spec.encoding == OutputEncoding::Mulaw {
            Some(codes)
        } else {
            None
        },
        clipped_samples,
    })
}

fn to_i16(x: f32) -> i16 {
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Where the truth of `wav` goes: `CALL.wav` -> `CALL.truth.json`.
pub fn truth_path(wav: &Path) -> PathBuf {
    wav.with_extension("truth.json")
}

/// Writes the call's WAV to `wav` and its truth to [`truth_path`]`(wav)`.
pub fn write_call(call: &ComposedCall, wav: &Path) -> Result<PathBuf, ComposeError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ComposeError::Write { path, source }
    };
    let file = std::fs::File::create(wav).map_err(write_err(wav))?;
    let out = std::io::BufWriter::new(file);
    let rate = call.annotation.sample_rate_hz;
    match &call.mulaw {
        Some(codes) => wav::write_mulaw_wav(out, rate, codes),
        None => {
            let pcm: Vec<Vec<i16>> = call
                .channels
                .iter()
                .map(|c| c.iter().map(|x| to_i16(*x)).collect())
                .collect();
            wav::write_pcm16_wav(out, rate, &pcm)
        }
    }
    .map_err(write_err(wav))?;
    let truth = truth_path(wav);
    let json = serde_json::to_string_pretty(&call.annotation).expect("annotation serialises");
    std::fs::write(&truth, json + "\n").map_err(write_err(&truth))?;
    Ok(truth)
}

#[cfg(test)]
mod tests {
    use super::noises::{NoiseKind, NoiseSpec};
    use super::*;

    /// A 1 s "sentence" (a 200 Hz tone with harmonics) between 0.3 s silences, 8 kHz PCM.
    fn write_source(dir: &Path) {
        let rate = 8_000usize;
        let mut pcm = vec![0i16; rate * 16 / 10];
        for (k, v) in pcm[rate * 3 / 10..rate * 13 / 10].iter_mut().enumerate() {
            let t = k as f64 / rate as f64;
            let x = (std::f64::consts::TAU * 200.0 * t).sin()
                + 0.5 * (std::f64::consts::TAU * 400.0 * t).sin();
            *v = (x * 6_000.0) as i16;
        }
        let file = std::fs::File::create(dir.join("tone.wav")).unwrap();
        wav::write_pcm16_wav(std::io::BufWriter::new(file), 8_000, &[pcm]).unwrap();
    }

    fn spec(noises: Vec<NoiseSpec>) -> CallSpec {
        CallSpec::from_json(&format!(
            r#"{{"telephone":false,"encoding":"pcm16","utterances":[
              {{"speaker":"agent","source":"tone.wav","start":{{"at_s":1.0}},"level_dbfs":-24,
                "noises":{}}}]}}"#,
            serde_json::to_string(&noises).unwrap()
        ))
        .unwrap()
    }

    #[test]
    fn breaths_and_clicks_are_heard_but_are_not_speech() {
        let dir = std::env::temp_dir().join(format!("attune-noises-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_source(&dir);
        let plain = compose(&spec(Vec::new()), &dir).unwrap();
        let noisy = compose(
            &spec(vec![
                NoiseSpec {
                    kind: NoiseKind::Breath,
                    lead_s: 0.1,
                    dur_s: 0.4,
                    rel_db: -20.0,
                },
                NoiseSpec {
                    kind: NoiseKind::Click,
                    lead_s: 0.02,
                    dur_s: 0.005,
                    rel_db: -8.0,
                },
            ]),
            &dir,
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // Same truth: the sounds are not speech.
        assert_eq!(plain.annotation.talk, noisy.annotation.talk);
        assert_eq!(plain.annotation.turns, noisy.annotation.turns);
        // The breath is in the channel, 0.5-0.9 s, about 20 dB below the speech.
        let rms = |c: &[f32], a: f64, b: f64| {
            let s = &c[(a * 8_000.0) as usize..(b * 8_000.0) as usize];
            10.0 * (s.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / s.len() as f64).log10()
        };
        let ch = &noisy.channels[0];
        assert!(rms(&plain.channels[0], 0.55, 0.85) < -80.0);
        let breath = rms(ch, 0.55, 0.85);
        assert!((-50.0..-40.0).contains(&breath), "breath {breath} dBFS");
        assert!(rms(ch, 0.975, 0.981) > breath + 6.0, "click");
        assert!((rms(ch, 1.1, 1.9) + 24.0).abs() < 1.0);
    }
}
