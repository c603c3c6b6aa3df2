//! Random call timelines for evaluation sets, deterministic for a seed.
//!
//! Agent: one of the two CSTR FDA speakers (`fda/rl*`, `fda/sb*`); caller: one RAVDESS actor,
//! in a mood drawn per call (neutral/calm 45 %, angry/disgust 25 %, sad/fearful 15 %,
//! happy/surprised 15 %). The agent opens; turns alternate, each one to three sentences chained
//! with 0.05-0.15 s pauses (bridged into one run). Between turns: an ordinary gap of 0.2-2 s
//! (skewed short), a long silence of 5-12 s (4 %), a turn-boundary overlap where the next
//! speaker starts 0.05-0.25 s early (12 %), or an interruption starting 0.7-2 s before the end
//! of a turn, once the interrupted party has spoken at least 1 s of it (16 %). Inside sentences
//! of at least 2 s the other party backchannels (25 %): the first 0.35-0.7 s of one of its
//! sentences, 3 dB quieter. Levels:
//! -30..-19 dBFS per party, +-1.5 dB per utterance; crosstalk -35..-25 dB, line noise -60..-45
//! dBFS unless fixed.
//!
//! For cue evaluation, [`RandomCallConfig::caller_arc`] scripts the caller's mood instead
//! ([`CallerArc`]): calm throughout (neutral/calm utterances only), or calm, then a sustained
//! upset stretch (angry/disgust utterances, louder, the caller talking in longer turns), then
//! calm again; or the same with an anxious (fearful) stretch. Without it the generator draws exactly what it always drew for a seed.

use std::path::Path;

use super::annotation::Speaker;
use super::spec::{CallSpec, OutputEncoding, Start, UtteranceSpec};
use super::{ComposeError, SourceCache};
use attune_core::rng::SplitMix64;

/// What the generated calls look like.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomCallConfig {
    pub seed: u64,
    pub min_minutes: f64,
    pub max_minutes: f64,
    /// Fixed crosstalk, dB; drawn in -35..-25 when `None`.
    pub crosstalk_db: Option<f64>,
    /// Fixed line noise, dBFS; drawn in -60..-45 when `None`.
    pub noise_dbfs: Option<f64>,
    pub sample_rate_hz: u32,
    pub telephone: bool,
    pub encoding: OutputEncoding,
    /// A scripted caller mood; None draws a mood per call.
    pub caller_arc: Option<CallerArc>,
    /// A soft-spoken caller: sad utterances only, this many dB below the usual caller level
    /// (e.g. 12). Ignored with a `caller_arc`.
    pub quiet_caller_db: Option<f64>,
    /// Breaths and lip clicks before utterances (see [`super::noises`]), both parties.
    pub mouth_noises: bool,
}

/// RAVDESS emotion code of a sad (soft-spoken) caller.
pub const SAD_EMOTION_CODES: [u8; 1] = [4];
/// Chance of a breath before an utterance, when mouth noises are on.
pub const BREATH_CHANCE: f64 = 0.6;
/// Chance of a lip click before an utterance, when mouth noises are on.
pub const CLICK_CHANCE: f64 = 0.3;

/// A scripted caller mood for cue evaluation (RAVDESS emotion codes: 01 neutral, 02 calm,
/// 05 angry, 07 disgust).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CallerArc {
    /// Neutral and calm utterances only.
    Calm,
    /// Neutral/calm, then from the first caller turn starting at or after `onset_s` a sustained
    /// stretch of angry/disgust utterances for `upset_s` seconds of call time (every caller
    /// utterance starting in it; caller turns of 2-3 sentences), `level_offset_db` louder than
    /// the caller's calm speech; then neutral/calm again.
    Upset {
        onset_s: f64,
        upset_s: f64,
        level_offset_db: f64,
    },
    /// As [`CallerArc::Upset`], but the stretch is of fearful utterances (an anxious caller).
    Anxious {
        onset_s: f64,
        anxious_s: f64,
        level_offset_db: f64,
    },
}

/// RAVDESS emotion codes of a calm caller.
pub const CALM_EMOTION_CODES: [u8; 2] = [1, 2];
/// RAVDESS emotion codes of an upset caller.
pub const UPSET_EMOTION_CODES: [u8; 2] = [5, 7];
/// RAVDESS emotion codes of an anxious caller.
pub const ANXIOUS_EMOTION_CODES: [u8; 1] = [6];

/// The RAVDESS emotion code of a source path (`.../03-01-05-...wav` → 5).
pub fn ravdess_emotion_code(source: &str) -> Option<u8> {
    let name = source.rsplit('/').next()?;
    name.split('-').nth(2)?.parse().ok()
}

/// Where a scripted upset stretch stands while planning.
#[derive(Debug, Clone, Copy)]
struct UpsetPlan {
    onset_s: f64,
    upset_s: f64,
    level_offset_db: f64,
    /// Start of the first upset utterance, once placed.
    started_s: Option<f64>,
}

impl Default for RandomCallConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            min_minutes: 1.0,
            max_minutes: 3.0,
            crosstalk_db: None,
            noise_dbfs: None,
            sample_rate_hz: super::spec::DEFAULT_SAMPLE_RATE_HZ,
            telephone: true,
            encoding: OutputEncoding::Mulaw,
            caller_arc: None,
            quiet_caller_db: None,
            mouth_noises: false,
        }
    }
}

/// The source files available, sorted.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Per FDA speaker, its sentences (paths relative to the data folder).
    pub agents: Vec<Vec<String>>,
    /// Per RAVDESS actor, its files with their emotion code (01 neutral .. 08 surprised).
    pub callers: Vec<Vec<(u8, String)>>,
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, ComposeError> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| ComposeError::Corpus(format!("cannot list {}: {e}", dir.display())))?;
    let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    Ok(entries)
}

impl Catalog {
    /// Lists `fda/` and `ravdess/Actor_*/` under `data_dir`.
    pub fn scan(data_dir: &Path) -> Result<Self, ComposeError> {
        let mut agents = vec![Vec::new(), Vec::new()];
        for entry in sorted_entries(&data_dir.join("fda"))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".wav") {
                continue;
            }
            let who = if name.starts_with("rl") {
                0
            } else if name.starts_with("sb") {
                1
            } else {
                continue;
            };
            agents[who].push(format!("fda/{name}"));
        }
        agents.retain(|a| !a.is_empty());
        let mut callers = Vec::new();
        for actor in sorted_entries(&data_dir.join("ravdess"))? {
            let actor_name = actor.file_name().to_string_lossy().into_owned();
            if !actor_name.starts_with("Actor_") || !actor.path().is_dir() {
                continue;
            }
            let mut files = Vec::new();
            for entry in sorted_entries(&actor.path())? {
                let name = entry.file_name().to_string_lossy().into_owned();
                let emotion = name.split('-').nth(2).and_then(|e| e.parse::<u8>().ok());
                if let (true, Some(emotion)) = (name.ends_with(".wav"), emotion) {
                    files.push((emotion, format!("ravdess/{actor_name}/{name}")));
                }
            }
            if !files.is_empty() {
                callers.push(files);
            }
        }
        if agents.is_empty() || callers.is_empty() {
            return Err(ComposeError::Corpus(format!(
                "{} needs fda/*.wav and ravdess/Actor_*/*.wav",
                data_dir.display()
            )));
        }
        Ok(Self { agents, callers })
    }
}

struct Planner<'a> {
    rng: SplitMix64,
    cache: &'a mut SourceCache,
    rate: f64,
    agent_files: &'a [String],
    caller_files: Vec<&'a str>,
    /// The actor's angry/disgust files, for a scripted upset stretch.
    upset_files: Vec<&'a str>,
    upset: Option<UpsetPlan>,
    levels: [f64; 2],
    utterances: Vec<UtteranceSpec>,
    spans: Vec<(Speaker, f64, f64)>,
    latest_end: f64,
    /// Draws breaths and clicks (its own stream: the timeline stays what it is without them).
    sound_rng: Option<SplitMix64>,
}

impl Planner<'_> {
    fn pick(&mut self, who: Speaker) -> String {
        match who {
            Speaker::Agent => self.agent_files[self.rng.below(self.agent_files.len())].clone(),
            Speaker::Caller => {
                self.caller_files[self.rng.below(self.caller_files.len())].to_owned()
            }
        }
    }

    fn speech_s(
        &mut self,
        who: Speaker,
        source: &str,
        max_s: Option<f64>,
    ) -> Result<f64, ComposeError> {
        let index = self.utterances.len();
        let clip = self
            .cache
            .clip(source, max_s)
            .map_err(|error| ComposeError::Source {
                index,
                speaker: who,
                error,
            })?;
        Ok(clip.speech_len() as f64 / self.rate)
    }

    fn latest_of(&self, who: Speaker) -> Option<(f64, f64)> {
        self.spans
            .iter()
            .rev()
            .find(|s| s.0 == who)
            .map(|s| (s.1, s.2))
    }

    fn resolve(&self, who: Speaker, start: Start) -> f64 {
        let other = self.latest_of(who.other()).unwrap_or((0.0, 0.0));
        match start {
            Start::AtS(v) => v,
            Start::AfterS(g) => self.latest_end + g,
            Start::IntoOtherS(o) => other.0 + o,
            Start::BeforeOtherEndS(b) => other.1 - b,
        }
    }

    fn push(
        &mut self,
        who: Speaker,
        source: String,
        start: Start,
        level_offset_db: f64,
        max_s: Option<f64>,
    ) -> Result<(f64, f64), ComposeError> {
        let begin = self.resolve(who, start);
        let (source, scripted_db) = self.scripted_source(who, source, begin, max_s);
        let duration = self.speech_s(who, &source, max_s)?;
        let base = self.levels[usize::from(who == Speaker::Caller)];
        let level = (base + level_offset_db + scripted_db + self.rng.range(-1.5, 1.5)).min(-18.0);
        let own_end = self.latest_of(who).map_or(0.0, |s| s.1);
        let noises = match &mut self.sound_rng {
            Some(rng) => super::noises::draw(rng, begin - own_end, BREATH_CHANCE, CLICK_CHANCE),
            None => Vec::new(),
        };
        self.utterances.push(UtteranceSpec {
            noises,
            speaker: who,
            source,
            start,
            level_dbfs: (level * 10.0).round() / 10.0,
            kind: None,
            max_s,
            speed: None,
        });
        self.spans.push((who, begin, begin + duration));
        self.latest_end = self.latest_end.max(begin + duration);
        Ok((begin, begin + duration))
    }

    /// The caller's utterance in a scripted upset stretch: an angry/disgust file instead of the
    /// calm pick, louder. Backchannels (`max_s`) keep their pick.
    fn scripted_source(
        &mut self,
        who: Speaker,
        source: String,
        begin_s: f64,
        max_s: Option<f64>,
    ) -> (String, f64) {
        let Some(mut plan) = self.upset else {
            return (source, 0.0);
        };
        if who != Speaker::Caller || max_s.is_some() || self.upset_files.is_empty() {
            return (source, 0.0);
        }
        let new_turn = self.spans.last().is_none_or(|s| s.0 == Speaker::Agent);
        let upset = match plan.started_s {
            None if new_turn && begin_s >= plan.onset_s => {
                plan.started_s = Some(begin_s);
                true
            }
            None => false,
            Some(started) => begin_s < started + plan.upset_s,
        };
        self.upset = Some(plan);
        if !upset {
            return (source, 0.0);
        }
        let file = self.upset_files[self.rng.below(self.upset_files.len())].to_owned();
        (file, plan.level_offset_db)
    }

    /// The caller is in a scripted upset stretch at `t_s`.
    fn upset_at(&self, t_s: f64) -> bool {
        self.upset
            .and_then(|p| p.started_s.map(|s| t_s >= s && t_s < s + p.upset_s))
            .unwrap_or(false)
    }

    /// With some chance, `who.other()` backchannels inside `who`'s latest utterance.
    fn maybe_backchannel(&mut self, who: Speaker) -> Result<(), ComposeError> {
        let Some((start, end)) = self.latest_of(who) else {
            return Ok(());
        };
        if end - start < 2.0 || !self.rng.chance(0.25) {
            return Ok(());
        }
        let party = who.other();
        let source = self.pick(party);
        let max_s = (self.rng.range(0.35, 0.7) * 100.0).round() / 100.0;
        // A cut without a loud enough frame is no speech: skip this backchannel.
        let Ok(duration) = self.speech_s(party, &source, Some(max_s)) else {
            return Ok(());
        };
        let (low, high) = (0.5, end - start - duration - 0.7);
        let own_end = self.latest_of(party).map_or(0.0, |s| s.1);
        if high <= low {
            return Ok(());
        }
        let offset = (self.rng.range(low, high) * 100.0).round() / 100.0;
        if start + offset < own_end + 0.5 {
            return Ok(());
        }
        self.push(party, source, Start::IntoOtherS(offset), -3.0, Some(max_s))?;
        Ok(())
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Draws call number `index` of the set seeded by `config.seed`.
pub fn random_spec(
    config: &RandomCallConfig,
    index: u64,
    catalog: &Catalog,
    cache: &mut SourceCache,
) -> Result<CallSpec, ComposeError> {
    if !(config.min_minutes > 0.0 && config.min_minutes <= config.max_minutes) {
        return Err(ComposeError::Spec(format!(
            "minutes {}..{} is not a positive range",
            config.min_minutes, config.max_minutes
        )));
    }
    let mut rng = SplitMix64::new(config.seed).fork(index);
    let agent_files = &catalog.agents[rng.below(catalog.agents.len())];
    let actor = &catalog.callers[rng.below(catalog.callers.len())];
    let quiet_db = config
        .quiet_caller_db
        .filter(|_| config.caller_arc.is_none());
    let mood: &[u8] = match rng.next_f64() {
        _ if config.caller_arc.is_some() => &CALM_EMOTION_CODES,
        _ if quiet_db.is_some() => &SAD_EMOTION_CODES,
        r if r < 0.45 => &[1, 2],
        r if r < 0.70 => &[5, 7],
        r if r < 0.85 => &[4, 6],
        _ => &[3, 8],
    };
    let stretch_codes: &[u8] = match config.caller_arc {
        Some(CallerArc::Anxious { .. }) => &ANXIOUS_EMOTION_CODES,
        _ => &UPSET_EMOTION_CODES,
    };
    let upset_files: Vec<&str> = actor
        .iter()
        .filter(|(e, _)| stretch_codes.contains(e))
        .map(|(_, f)| f.as_str())
        .collect();
    let upset = match config.caller_arc {
        Some(CallerArc::Upset {
            onset_s,
            upset_s,
            level_offset_db,
        }) => Some(UpsetPlan {
            onset_s,
            upset_s,
            level_offset_db,
            started_s: None,
        }),
        Some(CallerArc::Anxious {
            onset_s,
            anxious_s,
            level_offset_db,
        }) => Some(UpsetPlan {
            onset_s,
            upset_s: anxious_s,
            level_offset_db,
            started_s: None,
        }),
        _ => None,
    };
    let mut caller_files: Vec<&str> = actor
        .iter()
        .filter(|(e, _)| mood.contains(e))
        .map(|(_, f)| f.as_str())
        .collect();
    if caller_files.is_empty() {
        caller_files = actor.iter().map(|(_, f)| f.as_str()).collect();
    }
    let target_s = rng.range(config.min_minutes, config.max_minutes) * 60.0;
    let crosstalk_db = config
        .crosstalk_db
        .unwrap_or_else(|| round2(rng.range(-35.0, -25.0)));
    let noise_dbfs = config
        .noise_dbfs
        .unwrap_or_else(|| round2(rng.range(-60.0, -45.0)));
    let agent_channel = rng.below(2) as u16;
    let mut levels = [rng.range(-30.0, -19.0), rng.range(-30.0, -19.0)];
    levels[1] -= quiet_db.unwrap_or(0.0);
    let noise_seed = rng.next_u64();
    let sound_rng = config
        .mouth_noises
        .then(|| SplitMix64::new(config.seed ^ 0x006d_6f75_7468).fork(index));
    let mut planner = Planner {
        rng,
        cache,
        rate: f64::from(config.sample_rate_hz),
        agent_files,
        caller_files,
        upset_files,
        upset,
        levels,
        utterances: Vec::new(),
        spans: Vec::new(),
        latest_end: 0.0,
        sound_rng,
    };

    let mut speaker = Speaker::Agent;
    let first = planner.pick(speaker);
    let at = round2(planner.rng.range(0.3, 1.2));
    let (mut turn_start, _) = planner.push(speaker, first, Start::AtS(at), 0.0, None)?;
    loop {
        let mut extra = planner
            .rng
            .below(if speaker == Speaker::Agent { 3 } else { 2 });
        // An upset caller talks in longer turns.
        if speaker == Speaker::Caller && planner.upset_at(planner.latest_end - 0.01) {
            extra += 1;
        }
        for _ in 0..extra {
            planner.maybe_backchannel(speaker)?;
            let source = planner.pick(speaker);
            let gap = round2(planner.rng.range(0.05, 0.15));
            planner.push(speaker, source, Start::AfterS(gap), 0.0, None)?;
        }
        planner.maybe_backchannel(speaker)?;
        if planner.latest_end >= target_s {
            break;
        }
        let next = speaker.other();
        let (last_start, last_end) = planner.latest_of(speaker).unwrap_or((0.0, 0.0));
        let own_end = planner.latest_of(next).map_or(0.0, |s| s.1);
        // The interrupted party has spoken >= 1 s of its turn when interrupted.
        let max_lead = 2.0f64
            .min(last_end - turn_start - 1.0)
            .min(last_end - last_start);
        let ordinary_gap = |rng: &mut SplitMix64| round2(0.2 + 1.8 * rng.next_f64().powi(2));
        let r = planner.rng.next_f64();
        let start = if r < 0.04 {
            Start::AfterS(round2(planner.rng.range(5.0, 12.0)))
        } else if r < 0.16 {
            Start::AfterS(-round2(planner.rng.range(0.05, 0.25)))
        } else if r < 0.32 && max_lead >= 0.8 {
            let lead = round2(planner.rng.range(0.7, max_lead));
            if last_end - lead >= own_end + 0.5 {
                Start::BeforeOtherEndS(lead)
            } else {
                Start::AfterS(ordinary_gap(&mut planner.rng))
            }
        } else {
            Start::AfterS(ordinary_gap(&mut planner.rng))
        };
        // Never start over one's own speech (e.g. after a short interruption that ended
        // inside the other's sentence, "latest end" is one's own).
        let start = if planner.resolve(next, start) < own_end + 0.3 {
            Start::AfterS(ordinary_gap(&mut planner.rng).max(0.3))
        } else {
            start
        };
        let source = planner.pick(next);
        turn_start = planner.push(next, source, start, 0.0, None)?.0;
        speaker = next;
    }

    Ok(CallSpec {
        sample_rate_hz: config.sample_rate_hz,
        agent_channel,
        data_dir: None,
        crosstalk_db: Some(crosstalk_db),
        crosstalk_delay_ms: 3.0,
        noise_dbfs: Some(noise_dbfs),
        telephone: config.telephone,
        encoding: config.encoding,
        tail_s: 0.5,
        seed: noise_seed,
        utterances: planner.utterances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny corpus of tone "sentences": two agent files, one actor with calm and sad files.
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
        write("fda/rl002.wav", 130.0, 1.5);
        for (code, secs) in [(1, 1.8), (2, 2.2), (4, 2.0), (4, 2.6)] {
            let rep = if secs > 2.1 { 2 } else { 1 };
            write(
                &format!("ravdess/Actor_01/03-01-0{code}-01-01-0{rep}-01.wav"),
                220.0,
                secs,
            );
        }
    }

    #[test]
    fn quiet_callers_are_sad_and_quieter_and_sounds_leave_the_timeline_alone() {
        let dir = std::env::temp_dir().join(format!("attune-random-{}", std::process::id()));
        tiny_corpus(&dir);
        let catalog = Catalog::scan(&dir).unwrap();
        let mut cache = SourceCache::new(&dir, 8_000, true);
        let base = RandomCallConfig {
            seed: 5,
            min_minutes: 0.5,
            max_minutes: 0.5,
            ..RandomCallConfig::default()
        };
        let plain = random_spec(&base, 0, &catalog, &mut cache).unwrap();
        let quiet_config = RandomCallConfig {
            quiet_caller_db: Some(12.0),
            ..base.clone()
        };
        let quiet = random_spec(&quiet_config, 0, &catalog, &mut cache).unwrap();
        let breathy_config = RandomCallConfig {
            mouth_noises: true,
            ..quiet_config.clone()
        };
        let breathy = random_spec(&breathy_config, 0, &catalog, &mut cache).unwrap();
        let mean_caller_db = |s: &CallSpec| {
            let levels: Vec<f64> = s
                .utterances
                .iter()
                .filter(|u| u.speaker == Speaker::Caller)
                .map(|u| u.level_dbfs)
                .collect();
            levels.iter().sum::<f64>() / levels.len() as f64
        };
        for u in quiet
            .utterances
            .iter()
            .filter(|u| u.speaker == Speaker::Caller)
        {
            assert_eq!(ravdess_emotion_code(&u.source), Some(4), "{}", u.source);
        }
        assert!(mean_caller_db(&quiet) < mean_caller_db(&plain) - 8.0);
        assert!(plain.utterances.iter().all(|u| u.noises.is_empty()));
        // Same timeline with or without the sounds; some utterances get them.
        assert_eq!(quiet.utterances.len(), breathy.utterances.len());
        for (a, b) in quiet.utterances.iter().zip(&breathy.utterances) {
            assert_eq!(
                (&a.source, a.start, a.level_dbfs),
                (&b.source, b.start, b.level_dbfs)
            );
        }
        assert!(breathy.utterances.iter().any(|u| !u.noises.is_empty()));
        // The call composes and its truth ignores the sounds.
        let t0 = super::super::compose_with(&quiet, &mut cache).unwrap();
        let t1 = super::super::compose_with(&breathy, &mut cache).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(t0.annotation.talk, t1.annotation.talk);
    }
}
