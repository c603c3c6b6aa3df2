//! Voice activity per channel: each frame is speech, silence or (non-speech) noise.
//!
//! A frame is *active* when its level clears three floors: the channel's tracked noise floor plus
//! [`VadConfig::snr_margin_db`], the channel's own tracked speech level minus
//! [`VadConfig::below_speech_level_db`] (so a faint copy of the other party — echo, crosstalk —
//! stays out), and the absolute [`VadConfig::min_level_dbfs`]. It is *weakly active* when it
//! clears the noise floor by only [`VadConfig::continue_margin_db`] (and the other two floors):
//! hysteresis, so the soft onsets and decaying ends of words stay with the word. A run of
//! consecutive weakly active frames is *speech* once it holds at least
//! [`VadConfig::min_voiced_s`] of voiced, active frames (so stationary line noise, clicks and hiss
//! never count); its unvoiced and soft edges (fricatives, plosives, decays) belong to it. Gaps between speech runs shorter than [`VadConfig::bridge_pause_s`] are speech too (a
//! breath inside a phrase is not a silence). Active runs that never become speech are noise.
//!
//! Decisions need look-ahead: they come out in frame order, at most
//! [`VadConfig::bridge_pause_s`] (or [`VadConfig::max_pending_s`]) after the frame.

use std::collections::VecDeque;

use super::FRAME_PERIOD_S;

/// Voice-activity class of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VoiceActivity {
    #[default]
    Silence,
    Noise,
    Speech,
}

impl VoiceActivity {
    /// Lower-case name, as written in CSV and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            VoiceActivity::Silence => "silence",
            VoiceActivity::Noise => "noise",
            VoiceActivity::Speech => "speech",
        }
    }
}

/// Voice-activity thresholds; units in the names. Deserialises from JSON or TOML with every
/// missing field at its default (evaluations take it as `--vad-config`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VadConfig {
    /// How far above the noise floor a frame must be to be active.
    pub snr_margin_db: f32,
    /// How far above the noise floor a frame must be to extend a run (hysteresis).
    pub continue_margin_db: f32,
    /// Soft speakers: a pitch-voiced frame is strong (confirms a run) when it clears the noise
    /// floor by only this much (the default equals [`VadConfig::snr_margin_db`]: the rule is
    /// off unless set, e.g. to 4 dB), provided it also comes within
    /// [`VadConfig::soft_below_speech_level_db`] of the channel's own tracked speech level.
    /// A loud party's speech level sits far above its floor, so the condition never holds for
    /// it; a quiet (sad, distant) party's speech sits a few dB above the line noise, and its
    /// voiced frames are judged against its own level instead of the fixed
    /// [`VadConfig::snr_margin_db`]. Unvoiced frames (breaths, clicks, hiss) never qualify.
    pub soft_snr_margin_db: f32,
    /// How far below the channel's own speech level a voiced frame may be and still count as
    /// strong under [`VadConfig::soft_snr_margin_db`].
    pub soft_below_speech_level_db: f32,
    /// The soft-speaker rule applies only while the channel's tracked speech level is at most
    /// this far above its noise floor (a quiet party); a party that speaks well above its line
    /// noise keeps the fixed [`VadConfig::snr_margin_db`].
    pub soft_max_party_snr_db: f32,
    /// How far below the channel's own speech level a frame may be and still be active.
    pub below_speech_level_db: f32,
    /// Absolute level below which nothing is active.
    pub min_level_dbfs: f32,
    /// Voiced time a run of active frames needs to be speech. A frame counts as voiced when the
    /// pitch tracker says so or when its spectrum is as peaked as a vowel's (flatness below
    /// [`VadConfig::max_vowel_flatness`]): creaky or breathy vowels can lack a clean period,
    /// never a formant structure, while line noise and hiss are flat.
    pub min_voiced_s: f64,
    /// Mel-band flatness below which an active frame is vowel-like.
    pub max_vowel_flatness: f32,
    /// A frame this far above the noise floor whose spectrum is not flat like hiss (flatness
    /// below [`VadConfig::max_consonant_flatness`]) counts as voiced too: loud fricatives and
    /// bursts of a word whose vowel is soft.
    pub loud_margin_db: f32,
    /// Mel-band flatness below which a loud frame is speech-like rather than hiss.
    pub max_consonant_flatness: f32,
    /// Pauses shorter than this between speech runs are speech.
    pub bridge_pause_s: f64,
    /// Longest an undecided run may wait for its decision.
    pub max_pending_s: f64,
    /// How fast the noise floor may rise, dB per second (it falls at once).
    pub noise_floor_rise_db_per_s: f32,
    /// How fast the tracked speech level decays, dB per second (it rises at once).
    pub speech_level_decay_db_per_s: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            snr_margin_db: 9.0,
            continue_margin_db: 4.0,
            // Off (equal to `snr_margin_db`). 4 dB, chosen on `attune eval dialog --generate 24
            // --quiet-caller --breaths` (seed 1, checked on seed 7), brings a quiet caller's talk
            // time within a few % but moved the speaker-disjoint cue figures the wrong way
            // (docs/unseen-voices.md), so it is a setting, not the default.
            soft_snr_margin_db: 9.0,
            soft_below_speech_level_db: 20.0,
            soft_max_party_snr_db: 25.0,
            below_speech_level_db: 30.0,
            min_level_dbfs: -65.0,
            min_voiced_s: 0.05,
            max_vowel_flatness: 0.15,
            loud_margin_db: 15.0,
            max_consonant_flatness: 0.5,
            bridge_pause_s: 0.25,
            max_pending_s: 0.5,
            noise_floor_rise_db_per_s: 3.0,
            speech_level_decay_db_per_s: 1.0,
        }
    }
}

impl VadConfig {
    /// The settings for turn-taking (talk time, overlaps, interruptions): the defaults with a
    /// soft voice judged against its own level (`soft_snr_margin_db` 4 dB). Measured with
    /// `attune eval dialog --generate 24 --quiet-caller --breaths` (docs/unseen-voices.md): a
    /// quiet caller's talk time error 9.9 -> 3.4 % (seed 1), 11.9 -> 6.4 % (seed 7). The
    /// emotion features keep the fixed margin ([`VadConfig::default`]): with the soft margin
    /// there they moved the speaker-disjoint cue figures the wrong way.
    pub fn turn_taking() -> Self {
        Self {
            soft_snr_margin_db: 4.0,
            ..Self::default()
        }
    }
}

/// What the detector needs to know of one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadInput {
    pub loudness_db: f32,
    pub voiced: bool,
    /// Spectral flatness of the frame's mel bands in [0, 1] (see
    /// [`super::spectrum::SpectralShape::flatness`]).
    pub spectral_flatness: f32,
}

/// What [`VoiceActivityDetector::provisional`] foresees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Provisional {
    /// The first frame of the run the frames looked at confirm as speech.
    pub confirmed: Option<u64>,
    /// Without one: the first frame that may still become speech (an active run not yet
    /// decided, or a pause after speech that may be bridged).
    pub undecided_from: Option<u64>,
}

/// How [`VoiceActivityDetector::classify`] read one frame.
#[derive(Debug, Clone, Copy)]
struct FrameClass {
    /// The noise floor with this frame, dB.
    floor_db: f32,
    strong: bool,
    speech_like: bool,
    active: bool,
}

#[derive(Debug, Clone, Copy)]
struct PendingFrame {
    active: bool,
}

/// Streaming voice-activity detector for one channel. Buffers are sized once.
pub struct VoiceActivityDetector {
    config: VadConfig,
    min_voiced_frames: usize,
    bridge_frames: usize,
    max_pending_frames: usize,
    noise_rise_db_per_frame: f32,
    level_decay_db_per_frame: f32,
    noise_floor_db: Option<f32>,
    speech_level_db: Option<f32>,
    /// Frames not yet decided, oldest first.
    pending: VecDeque<PendingFrame>,
    /// Decisions ready to be taken, oldest first.
    decided: VecDeque<VoiceActivity>,
    /// The pending frames start right after a speech frame (a bridgeable pause).
    after_speech: bool,
    /// Index in `pending` where the current active run starts.
    run_start: Option<usize>,
    run_voiced_frames: usize,
    /// The current active run is confirmed speech; its frames are decided at once.
    in_speech_run: bool,
    /// Frames pushed so far (the next frame pushed has this index).
    frames_pushed: u64,
}

impl VoiceActivityDetector {
    pub fn new(config: VadConfig) -> Self {
        let frames = |s: f64| ((s / FRAME_PERIOD_S).round() as usize).max(1);
        let min_voiced_frames = frames(config.min_voiced_s);
        let bridge_frames = frames(config.bridge_pause_s);
        let max_pending_frames = frames(config.max_pending_s).max(bridge_frames + 1);
        let capacity = max_pending_frames + bridge_frames + 2;
        Self {
            min_voiced_frames,
            bridge_frames,
            max_pending_frames,
            noise_rise_db_per_frame: config.noise_floor_rise_db_per_s * FRAME_PERIOD_S as f32,
            level_decay_db_per_frame: config.speech_level_decay_db_per_s * FRAME_PERIOD_S as f32,
            config,
            noise_floor_db: None,
            speech_level_db: None,
            pending: VecDeque::with_capacity(capacity),
            decided: VecDeque::with_capacity(capacity),
            after_speech: false,
            run_start: None,
            run_voiced_frames: 0,
            in_speech_run: false,
            frames_pushed: 0,
        }
    }

    /// The most frames a decision can lag behind the newest pushed frame.
    pub(crate) fn max_lag_frames(&self) -> usize {
        self.max_pending_frames + self.bridge_frames + 1
    }

    /// How one frame reads against the floors as they stand (`noise_floor_db`,
    /// `speech_level_db`: the tracked levels before it). The one place the thresholds are
    /// applied, for [`Self::push`] and [`Self::provisional_onset`] alike.
    fn classify(
        &self,
        input: VadInput,
        noise_floor_db: Option<f32>,
        speech_level_db: Option<f32>,
    ) -> FrameClass {
        let level = input.loudness_db;
        let floor_before = noise_floor_db.unwrap_or(level);
        let speech_like = input.voiced
            || input.spectral_flatness < self.config.max_vowel_flatness
            || (level >= floor_before + self.config.loud_margin_db
                && input.spectral_flatness < self.config.max_consonant_flatness);
        let floor = match noise_floor_db {
            None => level,
            Some(floor) => (floor + self.noise_rise_db_per_frame).min(level),
        };
        let mut lower_bound = self.config.min_level_dbfs;
        if let Some(speech_level) = speech_level_db {
            lower_bound = lower_bound.max(speech_level - self.config.below_speech_level_db);
        }
        let mut strong = level > (floor + self.config.snr_margin_db).max(lower_bound);
        if !strong
            && input.voiced
            && let Some(speech_level) = speech_level_db
            && speech_level - floor <= self.config.soft_max_party_snr_db
        {
            let soft_bound = (floor + self.config.soft_snr_margin_db)
                .max(speech_level - self.config.soft_below_speech_level_db)
                .max(lower_bound);
            strong = level > soft_bound;
        }
        // Runs are made of weakly active frames; only strong voiced frames confirm them.
        let active = level > (floor + self.config.continue_margin_db).max(lower_bound);
        FrameClass {
            floor_db: floor,
            strong,
            speech_like,
            active,
        }
    }

    /// Where speech would begin if the next frames pushed were `next` (oldest first): the
    /// index (in frames pushed, from 0) of the first frame of the run they would confirm, or
    /// None if they confirm none. Nothing changes here: it runs [`Self::push`]'s rules on
    /// copies of the tracked levels. For a *provisional* onset: `next` carries voicing not yet
    /// decided. None while a run is already speech or a pause after speech is pending (the
    /// decided frames say what happens there).
    #[cfg(test)]
    pub(crate) fn provisional_onset(
        &self,
        next: impl IntoIterator<Item = VadInput>,
    ) -> Option<u64> {
        self.provisional(next).confirmed
    }

    /// [`Self::provisional_onset`], and where an active run still undecided after `next`
    /// starts (it may yet become speech), or where the pause after speech starts.
    pub(crate) fn provisional(&self, next: impl IntoIterator<Item = VadInput>) -> Provisional {
        let first_pending = self.frames_pushed - self.pending.len() as u64;
        if self.in_speech_run || self.after_speech {
            return Provisional {
                confirmed: None,
                undecided_from: Some(first_pending),
            };
        }
        let mut floor_db = self.noise_floor_db;
        let mut speech_level_db = self.speech_level_db;
        let mut run_start = self.run_start.map(|s| first_pending + s as u64);
        let mut voiced_frames = self.run_voiced_frames;
        let track = |current: Option<f32>, level: f32| match current {
            None => level,
            Some(current) => (current - self.level_decay_db_per_frame).max(level),
        };
        for (index, input) in (self.frames_pushed..).zip(next) {
            let level = input.loudness_db;
            let frame = self.classify(input, floor_db, speech_level_db);
            floor_db = Some(frame.floor_db);
            if frame.strong && frame.speech_like && run_start.is_some() {
                speech_level_db = Some(track(speech_level_db, level));
            }
            if frame.active {
                let start = *run_start.get_or_insert_with(|| {
                    voiced_frames = 0;
                    index
                });
                if frame.speech_like && frame.strong {
                    voiced_frames += 1;
                    if voiced_frames >= self.min_voiced_frames {
                        return Provisional {
                            confirmed: Some(start),
                            undecided_from: None,
                        };
                    }
                }
                // As `release_overdue`: an undecided run keeps at most `max_pending_frames`.
                let oldest_kept = (index + 1).saturating_sub(self.max_pending_frames as u64);
                run_start = Some(start.max(oldest_kept));
            } else {
                run_start = None;
            }
        }
        Provisional {
            confirmed: None,
            undecided_from: run_start,
        }
    }

    /// Adds the next frame.
    pub fn push(&mut self, input: VadInput) {
        self.frames_pushed += 1;
        let level = input.loudness_db;
        let frame = self.classify(input, self.noise_floor_db, self.speech_level_db);
        self.noise_floor_db = Some(frame.floor_db);
        let (strong, speech_like, active) = (frame.strong, frame.speech_like, frame.active);
        if strong && speech_like && (self.in_speech_run || self.run_start.is_some()) {
            self.track_speech_level(level);
        }

        if self.in_speech_run {
            if active {
                self.decided.push_back(VoiceActivity::Speech);
                return;
            }
            self.in_speech_run = false;
            self.after_speech = true;
        }
        self.pending.push_back(PendingFrame { active });
        if active {
            if self.run_start.is_none() {
                self.run_start = Some(self.pending.len() - 1);
                self.run_voiced_frames = 0;
            }
            if speech_like && strong {
                self.run_voiced_frames += 1;
                if self.run_voiced_frames >= self.min_voiced_frames {
                    self.confirm_run(level);
                    return;
                }
            }
        } else {
            self.run_start = None;
        }
        self.release_overdue();
    }

    /// At the end of the stream: decides every pending frame.
    pub fn finish(&mut self) {
        self.run_start = None;
        self.after_speech = false;
        self.release_overdue();
    }

    /// Takes the next decision, in frame order.
    pub(crate) fn pop_decided(&mut self) -> Option<VoiceActivity> {
        self.decided.pop_front()
    }

    fn track_speech_level(&mut self, level: f32) {
        let tracked = match self.speech_level_db {
            None => level,
            Some(current) => (current - self.level_decay_db_per_frame).max(level),
        };
        self.speech_level_db = Some(tracked);
    }

    /// The current run is speech: decide the pause before it and the run so far.
    fn confirm_run(&mut self, level: f32) {
        let run_start = self.run_start.take().unwrap_or(0);
        let bridged = self.after_speech && run_start <= self.bridge_frames;
        for (index, frame) in self.pending.drain(..).enumerate() {
            let decision = if index >= run_start || bridged {
                VoiceActivity::Speech
            } else if frame.active {
                VoiceActivity::Noise
            } else {
                VoiceActivity::Silence
            };
            self.decided.push_back(decision);
        }
        self.in_speech_run = true;
        self.after_speech = false;
        self.track_speech_level(level);
    }

    /// Decides the pending frames that can no longer become speech.
    fn release_overdue(&mut self) {
        if self.after_speech {
            let pause_frames = self.run_start.unwrap_or(self.pending.len());
            if pause_frames <= self.bridge_frames && self.pending.len() <= self.max_lag_frames() {
                return;
            }
            self.after_speech = false;
        }
        // Without a bridgeable pause, everything before the current run is not speech.
        let keep_from = match self.run_start {
            Some(start) => start.max(self.pending.len().saturating_sub(self.max_pending_frames)),
            None => self.pending.len(),
        };
        for _ in 0..keep_from {
            if let Some(frame) = self.pending.pop_front() {
                self.decided.push_back(if frame.active {
                    VoiceActivity::Noise
                } else {
                    VoiceActivity::Silence
                });
            }
        }
        if let Some(start) = self.run_start.as_mut() {
            *start -= keep_from.min(*start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(frames: &[(f32, bool)]) -> Vec<VoiceActivity> {
        run_with(VadConfig::default(), frames)
    }

    fn run_with(config: VadConfig, frames: &[(f32, bool)]) -> Vec<VoiceActivity> {
        let mut vad = VoiceActivityDetector::new(config);
        let mut out = Vec::new();
        for &(loudness_db, voiced) in frames {
            vad.push(VadInput {
                loudness_db,
                voiced,
                spectral_flatness: if voiced { 0.1 } else { 0.8 },
            });
            while let Some(d) = vad.pop_decided() {
                out.push(d);
            }
        }
        vad.finish();
        while let Some(d) = vad.pop_decided() {
            out.push(d);
        }
        out
    }

    #[test]
    fn one_decision_per_frame_in_order() {
        let mut frames = vec![(-70.0, false); 50];
        frames.extend(vec![(-20.0, true); 40]);
        frames.extend(vec![(-70.0, false); 10]);
        frames.extend(vec![(-20.0, true); 40]);
        frames.extend(vec![(-70.0, false); 80]);
        let out = run(&frames);
        assert_eq!(out.len(), frames.len());
        assert!(out[..50].iter().all(|&d| d == VoiceActivity::Silence));
        // The 100 ms pause between two speech runs is bridged.
        assert!(out[50..140].iter().all(|&d| d == VoiceActivity::Speech));
        assert!(out[140..].iter().all(|&d| d == VoiceActivity::Silence));
    }

    #[test]
    fn unvoiced_noise_burst_is_noise_not_speech() {
        let mut frames = vec![(-70.0, false); 50];
        frames.extend(vec![(-30.0, false); 100]);
        frames.extend(vec![(-70.0, false); 50]);
        let out = run(&frames);
        assert_eq!(out.len(), frames.len());
        assert!(out.iter().all(|&d| d != VoiceActivity::Speech));
        assert_eq!(
            out.iter().filter(|&&d| d == VoiceActivity::Noise).count(),
            100
        );
    }

    #[test]
    fn faint_echo_below_own_speech_level_is_not_speech() {
        let mut frames = vec![(-70.0, false); 20];
        frames.extend(vec![(-15.0, true); 100]);
        frames.extend(vec![(-70.0, false); 50]);
        // A voiced copy of the other party 40 dB below this speaker.
        frames.extend(vec![(-55.0, true); 100]);
        frames.extend(vec![(-70.0, false); 50]);
        let out = run(&frames);
        assert!(out[170..270].iter().all(|&d| d != VoiceActivity::Speech));
    }

    /// Frames of a quiet party over line noise: `(level, voiced)` with the noise at -50 dB.
    fn quiet_utterance(level_db: f32, voiced: bool, frames: usize) -> Vec<(f32, bool)> {
        vec![(level_db, voiced); frames]
    }

    /// The soft-speaker rule on, with the thresholds measured in docs/unseen-voices.md.
    fn soft() -> VadConfig {
        VadConfig {
            soft_snr_margin_db: 4.0,
            ..VadConfig::default()
        }
    }

    #[test]
    fn soft_speaker_is_judged_against_its_own_level() {
        // Line noise at -50 dB, one clear utterance at -38 dB (12 dB up: confirmed by the
        // fixed margin), then a soft one 6 dB above the noise: voiced, near the party's own
        // level, so speech; the fixed 9 dB margin alone would call it noise.
        let mut frames = vec![(-50.0, false); 100];
        frames.extend(quiet_utterance(-38.0, true, 60));
        frames.extend(vec![(-50.0, false); 100]);
        frames.extend(quiet_utterance(-44.0, true, 60));
        frames.extend(vec![(-50.0, false); 100]);
        let out = run_with(soft(), &frames);
        assert!(out[100..160].iter().all(|&d| d == VoiceActivity::Speech));
        assert!(out[260..320].iter().all(|&d| d == VoiceActivity::Speech));
        // The default (rule off): the fixed margin only.
        let out = run(&frames);
        assert!(out[260..320].iter().all(|&d| d != VoiceActivity::Speech));
    }

    #[test]
    fn soft_margin_needs_voicing_and_the_own_level() {
        // An unvoiced breath 6 dB over the noise is never speech, after speech or not.
        let mut frames = vec![(-50.0, false); 100];
        frames.extend(quiet_utterance(-38.0, true, 60));
        frames.extend(vec![(-50.0, false); 100]);
        frames.extend(quiet_utterance(-44.0, false, 40));
        frames.extend(vec![(-50.0, false); 100]);
        let out = run_with(soft(), &frames);
        assert!(out[260..300].iter().all(|&d| d != VoiceActivity::Speech));
        // A loud party (speech at -20 dB): a voiced frame 6 dB over the noise is 24 dB below
        // its own level (faint crosstalk, not its speech) and stays out.
        let mut frames = vec![(-50.0, false); 100];
        frames.extend(quiet_utterance(-20.0, true, 60));
        frames.extend(vec![(-50.0, false); 30]);
        frames.extend(quiet_utterance(-44.0, true, 60));
        frames.extend(vec![(-50.0, false); 100]);
        let out = run_with(soft(), &frames);
        assert!(out[190..250].iter().all(|&d| d != VoiceActivity::Speech));
    }

    #[test]
    fn long_pause_is_not_bridged() {
        let mut frames = vec![(-20.0, true); 30];
        frames.extend(vec![(-70.0, false); 60]);
        frames.extend(vec![(-20.0, true); 30]);
        let out = run(&frames);
        assert!(out[30..90].iter().all(|&d| d == VoiceActivity::Silence));
        assert!(out[90..].iter().all(|&d| d == VoiceActivity::Speech));
    }

    /// Pushing the frames one by one, the provisional onset over the next `look` frames (with
    /// their true voicing) names the first frame of the run the detector then confirms, and
    /// no frame before: `look` frames before the decision, or as soon as the run starts.
    fn check_provisional(config: VadConfig, frames: &[(f32, bool)], look: usize) {
        let input = |&(loudness_db, voiced): &(f32, bool)| VadInput {
            loudness_db,
            voiced,
            spectral_flatness: if voiced { 0.1 } else { 0.8 },
        };
        let decided = run_with(config.clone(), frames);
        let mut vad = VoiceActivityDetector::new(config.clone());
        for (pushed, frame) in frames.iter().enumerate() {
            let end = (pushed + look).min(frames.len());
            if let Some(onset) = vad.provisional_onset(frames[pushed..end].iter().map(input)) {
                let onset = onset as usize;
                assert!(onset < end, "onset {onset} past the frames looked at");
                assert_eq!(decided[onset], VoiceActivity::Speech, "onset {onset}");
                let first = decided[..=onset]
                    .iter()
                    .rposition(|&d| d != VoiceActivity::Speech)
                    .map_or(0, |i| i + 1);
                assert_eq!(
                    first, onset,
                    "the run the detector confirms starts at {first}"
                );
            }
            vad.push(input(frame));
        }
        // Every run of speech after a non-speech frame was announced: seen from `look` back.
        let mut vad = VoiceActivityDetector::new(config);
        let mut announced = Vec::new();
        for (pushed, frame) in frames.iter().enumerate() {
            let end = (pushed + look).min(frames.len());
            if let Some(onset) = vad.provisional_onset(frames[pushed..end].iter().map(input)) {
                announced.push(onset as usize);
            }
            vad.push(input(frame));
        }
        for (i, w) in decided.windows(2).enumerate() {
            if w[0] != VoiceActivity::Speech && w[1] == VoiceActivity::Speech {
                assert!(
                    announced.contains(&(i + 1)),
                    "speech at {} never announced",
                    i + 1
                );
            }
        }
    }

    #[test]
    fn provisional_onset_names_the_run_the_detector_confirms() {
        // Silence, a soft unvoiced lead-in, a voiced word; a noise burst that never becomes
        // speech; a word after a long pause; a run longer than `max_pending_s` before its
        // voicing (its start moves up).
        let mut frames = vec![(-70.0, false); 60];
        frames.extend(vec![(-62.0, false); 6]);
        frames.extend(vec![(-20.0, true); 40]);
        frames.extend(vec![(-70.0, false); 80]);
        frames.extend(vec![(-30.0, false); 40]);
        frames.extend(vec![(-70.0, false); 80]);
        frames.extend(vec![(-25.0, true); 3]);
        frames.extend(vec![(-25.0, false); 2]);
        frames.extend(vec![(-25.0, true); 30]);
        frames.extend(vec![(-70.0, false); 80]);
        frames.extend(vec![(-40.0, false); 70]);
        frames.extend(vec![(-20.0, true); 30]);
        frames.extend(vec![(-70.0, false); 50]);
        for look in [1, 4, 8, 12] {
            check_provisional(VadConfig::default(), &frames, look);
        }
    }
}
