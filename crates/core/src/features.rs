//! The per-channel prosody track: [`ChannelAnalyzer`] turns one party's samples (at the analysis
//! rate) into one [`FrameFeatures`] every 10 ms — pitch, loudness, voice activity, syllable
//! nuclei, spectral shape and voice quality — and [`ChannelSummary`] condenses a channel into the
//! figures a report needs (speech time, syllables, speaking and articulation rate, F0 median).
//! [`analyze_audio`] runs it over a whole recording, streamed in chunks, channel by channel.
//!
//! The stages, each with its own look-ahead: frame analysis (spectrum, loudness, pitch
//! candidates) → pitch decision (+ voice quality on the decided F0) → voice activity → syllable
//! nuclei. The syllable contour needs only the frame levels, so it is computed alongside pitch
//! and voice activity (its 150 ms centred trend window overlaps their look-ahead instead of
//! adding to it); only the peak decision waits for the frame's voicing and activity. A frame is
//! emitted once every stage has decided it, so a live call sees each frame after
//! [`ChannelAnalyzer::latency_frames`] at most ([`ChannelAnalyzer::stage_lags`] counts how long
//! each stage actually held frames). All buffers are sized when the
//! analyser is built; the per-frame path does not allocate.

use std::collections::VecDeque;

use serde::Serialize;

use crate::audio::{AudioError, AudioReader, Resampler};
use crate::dsp::pitch::{PitchConfig, PitchEstimate, PitchTracker};
use crate::dsp::spectrum::{MFCC_COUNT, SPECTRUM_WINDOW_SAMPLES, SpectralShape, SpectrumAnalyzer};
use crate::dsp::syllables::SyllableDetector;
use crate::dsp::vad::{VadConfig, VadInput, VoiceActivity, VoiceActivityDetector};
use crate::dsp::voice_quality::{VoiceQuality, VoiceQualityAnalyzer};
use crate::dsp::{ANALYSIS_RATE_HZ, FRAME_PERIOD_S, HOP_SAMPLES};

/// Frames per second (100): times are `index / FRAMES_PER_S`, exact to the printed digit.
const FRAMES_PER_S: f64 = 100.0;

/// Everything measured on one 10 ms frame of one channel. Voice-quality fields are NaN on frames
/// where they are undefined (unvoiced).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FrameFeatures {
    /// Index of the frame; its centre is at `index * 10 ms`.
    pub index: u64,
    /// F0 in Hz; 0 when unvoiced.
    pub f0_hz: f32,
    pub voiced: bool,
    /// Periodicity strength in [0, 1].
    pub voicing_strength: f32,
    /// Frame level, dBFS (see [`crate::dsp::loudness`]).
    pub loudness_db: f32,
    /// Voice activity for the prosody and emotion features (fixed SNR margin).
    pub activity: VoiceActivity,
    /// Voice activity for turn-taking (talk time, overlaps, interruptions): the same detector
    /// with [`AnalyzerConfig::dialog_vad`], which judges a soft voice against its own level.
    pub dialog_activity: VoiceActivity,
    /// A syllable nucleus is centred on this frame.
    pub syllable_nucleus: bool,
    pub spectral: SpectralShape,
    pub voice_quality: VoiceQuality,
}

impl FrameFeatures {
    /// Time of the frame centre, seconds.
    pub fn time_s(&self) -> f64 {
        self.index as f64 / FRAMES_PER_S
    }
}

/// Settings of the per-channel prosody track.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzerConfig {
    pub pitch: PitchConfig,
    /// Voice activity feeding the prosody and emotion features ([`FrameFeatures::activity`]).
    pub vad: VadConfig,
    /// Voice activity feeding the dialog tracker ([`FrameFeatures::dialog_activity`]); by
    /// default [`VadConfig::turn_taking`]. When equal to `vad`, one detector serves both.
    pub dialog_vad: VadConfig,
    pub syllable_marks: SyllableMarks,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self {
            pitch: PitchConfig::default(),
            vad: VadConfig::default(),
            dialog_vad: VadConfig::turn_taking(),
            syllable_marks: SyllableMarks::default(),
        }
    }
}

/// Where a frame's syllable-nucleus mark lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyllableMarks {
    /// On the nucleus frame itself: frames wait for the syllable decision (up to half the
    /// detector's trend window plus its peak wait after voice activity). Per-frame output.
    #[default]
    Exact,
    /// Frames go out as soon as pitch and voice activity are decided; a nucleus decided after
    /// its frame left is marked on the next speech frame instead (usually a few frames later;
    /// the counts are the same, and the summary counts marks still pending at the end). For
    /// live calls, where every frame held back delays every cue.
    NextSpeechFrame,
}

/// Pauses up to this long stay inside a talk span when counting speaking rate.
pub(crate) const MAX_PAUSE_IN_TALK_SPAN_S: f64 = 1.0;

/// Condensed figures of one channel. Bounded memory: distributions are kept as histograms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelSummary {
    pub channel: usize,
    pub duration_s: f64,
    /// Time the voice-activity detector marked as speech (pauses under 250 ms included).
    pub speech_duration_s: f64,
    /// Time of voiced frames.
    pub voiced_duration_s: f64,
    pub syllable_count: u64,
    /// Syllables per second of talk (speech spans with pauses up to 1 s included).
    pub speaking_rate_syl_per_s: f64,
    /// Syllables per second of speech (pauses excluded).
    pub articulation_rate_syl_per_s: f64,
    /// Median F0 of voiced frames, Hz (0 when none).
    pub f0_median_hz: f64,
    /// 10th and 90th percentiles of F0 over voiced frames, Hz.
    pub f0_p10_hz: f64,
    pub f0_p90_hz: f64,
    /// Median loudness of speech frames, dBFS.
    pub loudness_speech_median_db: f64,
    /// Frames in each voice-activity class.
    pub frames_speech: u64,
    pub frames_silence: u64,
    pub frames_noise: u64,
}

/// Histogram with fixed bins, for medians over arbitrarily long calls.
#[derive(Debug, Clone)]
struct Histogram {
    low: f64,
    bin_width: f64,
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    fn new(low: f64, high: f64, bin_width: f64) -> Self {
        let bins = ((high - low) / bin_width).ceil() as usize;
        Self {
            low,
            bin_width,
            counts: vec![0; bins],
            total: 0,
        }
    }

    fn add(&mut self, value: f64) {
        let bin = ((value - self.low) / self.bin_width).floor();
        let bin = (bin.max(0.0) as usize).min(self.counts.len() - 1);
        self.counts[bin] += 1;
        self.total += 1;
    }

    /// Value below which `fraction` of the observations fall (bin centre), or None if empty.
    fn quantile(&self, fraction: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let target = (fraction * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bin, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= target {
                return Some(self.low + (bin as f64 + 0.5) * self.bin_width);
            }
        }
        None
    }
}

/// Running tallies behind [`ChannelSummary`].
#[derive(Debug, Clone)]
struct SummaryAccumulator {
    frames: u64,
    speech_frames: u64,
    silence_frames: u64,
    noise_frames: u64,
    voiced_frames: u64,
    syllables: u64,
    talk_span_frames: u64,
    last_speech_frame: Option<u64>,
    /// F0 in semitones re 1 Hz, 0.1 semitone bins (exact medians to ~0.3 %).
    f0_semitones: Histogram,
    speech_loudness_db: Histogram,
}

fn hz_to_semitones(hz: f64) -> f64 {
    12.0 * hz.log2()
}

impl SummaryAccumulator {
    fn new() -> Self {
        Self {
            frames: 0,
            speech_frames: 0,
            silence_frames: 0,
            noise_frames: 0,
            voiced_frames: 0,
            syllables: 0,
            talk_span_frames: 0,
            last_speech_frame: None,
            f0_semitones: Histogram::new(hz_to_semitones(30.0), hz_to_semitones(1000.0), 0.1),
            speech_loudness_db: Histogram::new(-130.0, 10.0, 0.5),
        }
    }

    fn add(&mut self, frame: &FrameFeatures) {
        self.frames += 1;
        match frame.activity {
            VoiceActivity::Speech => {
                self.speech_frames += 1;
                self.speech_loudness_db.add(frame.loudness_db as f64);
                let max_pause_frames = (MAX_PAUSE_IN_TALK_SPAN_S / FRAME_PERIOD_S) as u64;
                match self.last_speech_frame {
                    Some(last) if frame.index - last - 1 <= max_pause_frames => {
                        self.talk_span_frames += frame.index - last;
                    }
                    _ => self.talk_span_frames += 1,
                }
                self.last_speech_frame = Some(frame.index);
                if frame.syllable_nucleus {
                    self.syllables += 1;
                }
            }
            VoiceActivity::Silence => self.silence_frames += 1,
            VoiceActivity::Noise => self.noise_frames += 1,
        }
        if frame.voiced && frame.f0_hz > 0.0 {
            self.voiced_frames += 1;
            self.f0_semitones.add(hz_to_semitones(frame.f0_hz as f64));
        }
    }

    fn summary(&self, channel: usize) -> ChannelSummary {
        let seconds = |frames: u64| frames as f64 / FRAMES_PER_S;
        let rate = |syllables: u64, frames: u64| {
            if frames == 0 {
                0.0
            } else {
                syllables as f64 / seconds(frames)
            }
        };
        let f0_quantile = |q: f64| {
            self.f0_semitones
                .quantile(q)
                .map_or(0.0, |st| 2f64.powf(st / 12.0))
        };
        ChannelSummary {
            channel,
            duration_s: seconds(self.frames),
            speech_duration_s: seconds(self.speech_frames),
            voiced_duration_s: seconds(self.voiced_frames),
            syllable_count: self.syllables,
            speaking_rate_syl_per_s: rate(self.syllables, self.talk_span_frames),
            articulation_rate_syl_per_s: rate(self.syllables, self.speech_frames),
            f0_median_hz: f0_quantile(0.5),
            f0_p10_hz: f0_quantile(0.1),
            f0_p90_hz: f0_quantile(0.9),
            loudness_speech_median_db: self.speech_loudness_db.quantile(0.5).unwrap_or(-120.0),
            frames_speech: self.speech_frames,
            frames_silence: self.silence_frames,
            frames_noise: self.noise_frames,
        }
    }
}

/// First-order DC-blocking high-pass (corner ~13 Hz at 8 kHz): a DC offset on the line must not
/// read as loudness or speech.
#[derive(Debug, Clone, Copy, Default)]
struct DcBlocker {
    previous_input: f32,
    previous_output: f32,
}

impl DcBlocker {
    const POLE: f32 = 0.99;

    fn process(&mut self, sample: f32) -> f32 {
        let output = sample - self.previous_input + Self::POLE * self.previous_output;
        self.previous_input = sample;
        self.previous_output = output;
        output
    }
}

/// Counts of how many frames a stage held frames back, 0..[`LagHistogram::MAX_FRAMES`] (longer
/// lags are counted in the last bin). Fixed size: recording it does not allocate.
#[derive(Debug, Clone, PartialEq)]
pub struct LagHistogram {
    counts: [u64; LagHistogram::MAX_FRAMES + 1],
    total: u64,
}

impl Default for LagHistogram {
    fn default() -> Self {
        Self {
            counts: [0; LagHistogram::MAX_FRAMES + 1],
            total: 0,
        }
    }
}

impl LagHistogram {
    pub(crate) const MAX_FRAMES: usize = 200;

    pub fn add(&mut self, lag_frames: u64) {
        self.counts[(lag_frames as usize).min(Self::MAX_FRAMES)] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &LagHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Lag (frames) below or at which `fraction` of the frames fall; None when empty.
    pub fn quantile_frames(&self, fraction: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let target = (fraction * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (lag, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= target {
                return Some(lag as u64);
            }
        }
        Some(Self::MAX_FRAMES as u64)
    }

    /// Mean lag, frames (0 when empty).
    pub fn mean_frames(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let sum: u64 = self
            .counts
            .iter()
            .enumerate()
            .map(|(lag, &count)| lag as u64 * count)
            .sum();
        sum as f64 / self.total as f64
    }
}

/// Where a channel's frames waited, cumulatively: frames analysed past a frame (its windows
/// complete) by the time its pitch, its voice activity and its syllable mark were decided. The
/// last is the channel's whole look-ahead; each window also needs [`ChannelAnalyzer::window_lead_s`]
/// of audio past the frame centre.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageLags {
    pub pitch: LagHistogram,
    pub voice_activity: LagHistogram,
    pub syllable: LagHistogram,
}

/// What [`ChannelAnalyzer::speech_onset_hint`] knows of speech coming on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpeechOnsetHint {
    /// The first frame of the speech coming, decided or provisional.
    pub onset: Option<u64>,
    /// Frames from here on may still turn out to be speech (for either detector).
    pub undecided_from: Option<u64>,
}

/// Input samples are consumed in slices of at most this many, so buffers stay fixed.
const MAX_PUSH_SAMPLES: usize = 1024;

/// The whole per-channel prosody track at [`ANALYSIS_RATE_HZ`]. Build once per channel.
pub struct ChannelAnalyzer {
    channel: usize,
    spectrum: SpectrumAnalyzer,
    pitch: PitchTracker,
    voice_quality: VoiceQualityAnalyzer,
    vad: VoiceActivityDetector,
    /// The turn-taking detector, when its settings differ from `vad`'s.
    dialog_vad: Option<VoiceActivityDetector>,
    /// Decisions of each detector not yet paired with the other's for the same frame.
    activity_ready: VecDeque<VoiceActivity>,
    dialog_activity_ready: VecDeque<VoiceActivity>,
    syllables: SyllableDetector,
    /// Samples kept for the windows still to be analysed; `samples[0]` is absolute sample
    /// `base_sample` (negative at the start: the zero padding before the first sample).
    samples: Vec<f32>,
    base_sample: i64,
    /// Samples received so far.
    received_samples: i64,
    /// Next frame whose windows are analysed.
    next_frame: u64,
    /// Next frame awaiting its pitch decision.
    next_pitch_frame: u64,
    awaiting_pitch: VecDeque<FrameFeatures>,
    awaiting_vad: VecDeque<FrameFeatures>,
    awaiting_syllable: VecDeque<FrameFeatures>,
    /// Scratch for [`Self::speech_onset_hint`]: provisional voicing of the look-ahead frames.
    provisional_voiced: Vec<bool>,
    syllable_marks: SyllableMarks,
    /// With [`SyllableMarks::NextSpeechFrame`]: whether each frame already emitted but not yet
    /// syllable-decided was speech, oldest first.
    undecided_speech: VecDeque<bool>,
    /// Nuclei decided after their frame left, not yet marked on a speech frame.
    late_nuclei: u64,
    summary: SummaryAccumulator,
    lags: StageLags,
    dc_blocker: DcBlocker,
    half_window: i64,
    vq_half_window: i64,
    pitch_window: usize,
    vq_window: usize,
    finished: bool,
}

impl ChannelAnalyzer {
    pub fn new(channel: usize, config: &AnalyzerConfig) -> Self {
        let pitch = PitchTracker::new(config.pitch.clone());
        let voice_quality = VoiceQualityAnalyzer::new();
        let vad = VoiceActivityDetector::new(config.vad.clone());
        let dialog_vad = (config.dialog_vad != config.vad)
            .then(|| VoiceActivityDetector::new(config.dialog_vad.clone()));
        let pitch_window = pitch.window_samples();
        let vq_window = voice_quality.window_samples();
        let max_window = SPECTRUM_WINDOW_SAMPLES.max(pitch_window).max(vq_window);
        let half_window = max_window.div_ceil(2) as i64;
        let lookahead = pitch.lookahead_frames();
        let retained = max_window + (lookahead + 2) * HOP_SAMPLES + MAX_PUSH_SAMPLES;
        let queue = |n: usize| VecDeque::with_capacity(n + 4);
        let vad_lag = vad.max_lag_frames().max(
            dialog_vad
                .as_ref()
                .map_or(0, VoiceActivityDetector::max_lag_frames),
        );
        let syllables = SyllableDetector::new();
        let syllable_lag = syllables.max_lag_frames();
        let mut samples = Vec::with_capacity(2 * retained + MAX_PUSH_SAMPLES);
        samples.resize(half_window as usize, 0.0);
        Self {
            channel,
            spectrum: SpectrumAnalyzer::new(),
            pitch,
            voice_quality,
            vad,
            dialog_vad,
            activity_ready: VecDeque::with_capacity(vad_lag + 4),
            dialog_activity_ready: VecDeque::with_capacity(vad_lag + 4),
            syllables,
            samples,
            base_sample: -half_window,
            received_samples: 0,
            next_frame: 0,
            next_pitch_frame: 0,
            awaiting_pitch: queue(lookahead),
            awaiting_vad: queue(vad_lag),
            awaiting_syllable: queue(syllable_lag),
            provisional_voiced: Vec::with_capacity(lookahead + 4),
            syllable_marks: config.syllable_marks,
            undecided_speech: VecDeque::with_capacity(syllable_lag + vad_lag + 8),
            late_nuclei: 0,
            summary: SummaryAccumulator::new(),
            lags: StageLags::default(),
            dc_blocker: DcBlocker::default(),
            half_window,
            vq_half_window: vq_window.div_ceil(2) as i64,
            pitch_window,
            vq_window,
            finished: false,
        }
    }

    /// The channel this analyser reports as.
    pub fn channel(&self) -> usize {
        self.channel
    }

    /// The most frames a frame's output can lag behind its samples (pitch, voice-activity and
    /// syllable look-ahead together).
    pub fn latency_frames(&self) -> usize {
        self.pitch.lookahead_frames()
            + self.vad.max_lag_frames()
            + self.awaiting_syllable.capacity()
    }

    /// How long each stage held this channel's frames so far.
    pub fn stage_lags(&self) -> &StageLags {
        &self.lags
    }

    /// Audio past a frame's centre its analysis windows need, seconds.
    pub fn window_lead_s(&self) -> f64 {
        self.half_window as f64 / ANALYSIS_RATE_HZ as f64
    }

    /// Frames whose analysis windows are complete (the newest is `frames_analysed() - 1`).
    pub(crate) fn frames_analysed(&self) -> u64 {
        self.next_frame
    }

    /// Frames analysed past `index`.
    fn lag_of(&self, index: u64) -> u64 {
        self.next_frame.saturating_sub(index + 1)
    }

    /// Adds samples at [`ANALYSIS_RATE_HZ`]; calls `emit` for every frame that is complete.
    pub fn push(&mut self, samples: &[f32], emit: &mut impl FnMut(&FrameFeatures)) {
        for piece in samples.chunks(MAX_PUSH_SAMPLES) {
            let dc_blocker = &mut self.dc_blocker;
            self.samples.extend(piece.iter().map(|&s| {
                let s = if s.is_finite() { s } else { 0.0 };
                dc_blocker.process(s)
            }));
            self.received_samples += piece.len() as i64;
            self.analyze_ready_frames(emit);
            self.discard_consumed_samples();
        }
    }

    /// Ends the stream: analyses the last frames (zero-padded) and emits everything pending.
    pub fn finish(&mut self, emit: &mut impl FnMut(&FrameFeatures)) {
        if self.finished {
            return;
        }
        self.finished = true;
        // Frames whose centre lies inside the signal.
        let total_frames = (self.received_samples as u64).div_ceil(HOP_SAMPLES as u64);
        while self.next_frame < total_frames {
            let needed_end = self.next_frame as i64 * HOP_SAMPLES as i64 + self.half_window;
            let buffered_end = self.base_sample + self.samples.len() as i64;
            let pad = (needed_end - buffered_end).max(0) as usize;
            self.samples.extend(std::iter::repeat_n(0.0, pad));
            self.analyze_ready_frames(emit);
            self.discard_consumed_samples();
        }
        // Pitch decisions still pending need their windows: pad enough zeros for all of them.
        self.samples
            .extend(std::iter::repeat_n(0.0, self.vq_window));
        let mut decided = Vec::with_capacity(self.awaiting_pitch.len());
        self.pitch.flush(|estimate| decided.push(estimate));
        for estimate in decided {
            self.complete_pitch(estimate, emit);
        }
        self.vad.finish();
        if let Some(dialog_vad) = self.dialog_vad.as_mut() {
            dialog_vad.finish();
        }
        self.drain_vad(emit);
        self.syllables.finish();
        self.drain_syllables(emit);
        // Nuclei decided after the last speech frame left still count in the summary.
        self.take_syllable_decisions();
        self.summary.syllables += std::mem::take(&mut self.late_nuclei);
    }

    /// Speech coming on this channel ([`FrameFeatures::activity`]) before its frames are
    /// emitted, as far as it is known: `onset`, the first frame the voice-activity detector has
    /// decided as speech (waiting for the turn-taking detector), else the first frame of the
    /// run it would confirm if the frames still in the pitch look-ahead kept the voicing the
    /// pitch tracker's best path gives them now ([`PitchTracker::provisional_voicing`]): it
    /// comes [`PitchConfig::lookahead_frames`] frames before the decided one and is usually
    /// the same frame, but the decision can still differ. `undecided_from`: the first frame
    /// before which nothing can still turn into speech for either detector (the turn-taking
    /// one, [`FrameFeatures::dialog_activity`], included) is known: an active run not yet
    /// decided, or earlier speech of the turn-taking detector. Changes nothing in the
    /// analysis; allocates nothing.
    pub fn speech_onset_hint(&mut self) -> SpeechOnsetHint {
        let n = self.awaiting_pitch.len();
        let voiced = &mut self.provisional_voiced;
        voiced.clear();
        voiced.resize(n, false);
        self.pitch.provisional_voicing(|k, v| {
            if k < n {
                voiced[n - 1 - k] = v;
            }
        });
        let awaiting_vad = &self.awaiting_vad;
        let awaiting_pitch = &self.awaiting_pitch;
        let provisional = &self.provisional_voiced;
        let foresee = |ready: &VecDeque<VoiceActivity>, vad: &VoiceActivityDetector| {
            if let Some(i) = ready.iter().position(|&a| a == VoiceActivity::Speech) {
                return (awaiting_vad.get(i).map(|f| f.index), None);
            }
            let inputs = awaiting_pitch
                .iter()
                .zip(provisional.iter())
                .map(|(f, &voiced)| VadInput {
                    loudness_db: f.loudness_db,
                    voiced,
                    spectral_flatness: f.spectral.flatness,
                });
            let p = vad.provisional(inputs);
            (p.confirmed, p.undecided_from)
        };
        let (onset, mut undecided_from) = foresee(&self.activity_ready, &self.vad);
        if let Some(dialog_vad) = &self.dialog_vad {
            let (dialog_onset, dialog_undecided) = foresee(&self.dialog_activity_ready, dialog_vad);
            for frame in [dialog_onset, dialog_undecided].into_iter().flatten() {
                undecided_from = Some(undecided_from.map_or(frame, |u| u.min(frame)));
            }
        }
        SpeechOnsetHint {
            onset,
            undecided_from,
        }
    }

    /// Summary of everything emitted so far.
    pub fn summary(&self) -> ChannelSummary {
        self.summary.summary(self.channel)
    }

    fn analyze_ready_frames(&mut self, emit: &mut impl FnMut(&FrameFeatures)) {
        let buffered_end = self.base_sample + self.samples.len() as i64;
        loop {
            let centre = self.next_frame as i64 * HOP_SAMPLES as i64;
            if centre + self.half_window > buffered_end {
                break;
            }
            let start = (centre - (SPECTRUM_WINDOW_SAMPLES / 2) as i64 - self.base_sample) as usize;
            let loudness_db = self
                .spectrum
                .analyze(&self.samples[start..start + SPECTRUM_WINDOW_SAMPLES]);
            let spectral = self.spectrum.shape();
            // The syllable contour needs only the levels: it runs alongside pitch and VAD.
            self.syllables
                .push_levels(loudness_db, spectral.vowel_band_db);
            self.awaiting_pitch.push_back(FrameFeatures {
                index: self.next_frame,
                loudness_db,
                spectral,
                ..FrameFeatures::default()
            });
            self.next_frame += 1;
            let start = (centre - (self.pitch_window / 2) as i64 - self.base_sample) as usize;
            let decided = self
                .pitch
                .push_frame(&self.samples[start..start + self.pitch_window]);
            if let Some(estimate) = decided {
                self.complete_pitch(estimate, emit);
            }
        }
    }

    fn complete_pitch(&mut self, estimate: PitchEstimate, emit: &mut impl FnMut(&FrameFeatures)) {
        let Some(mut frame) = self.awaiting_pitch.pop_front() else {
            return;
        };
        self.next_pitch_frame = frame.index + 1;
        if !self.finished {
            self.lags.pitch.add(self.lag_of(frame.index));
        }
        frame.f0_hz = if estimate.voiced { estimate.f0_hz } else { 0.0 };
        frame.voiced = estimate.voiced && estimate.f0_hz > 0.0;
        frame.voicing_strength = estimate.voicing_strength;
        frame.voice_quality = VoiceQuality {
            jitter_local: f32::NAN,
            shimmer_local_db: f32::NAN,
            hnr_db: f32::NAN,
        };
        if frame.voiced {
            let centre = frame.index as i64 * HOP_SAMPLES as i64;
            let start = (centre - (self.vq_window / 2) as i64 - self.base_sample) as usize;
            let window = &self.samples[start..start + self.vq_window];
            if let Some(quality) = self.voice_quality.analyze(window, frame.f0_hz) {
                frame.voice_quality = quality;
            }
        }
        let input = VadInput {
            loudness_db: frame.loudness_db,
            voiced: frame.voiced,
            spectral_flatness: frame.spectral.flatness,
        };
        self.vad.push(input);
        if let Some(dialog_vad) = self.dialog_vad.as_mut() {
            dialog_vad.push(input);
        }
        self.awaiting_vad.push_back(frame);
        self.drain_vad(emit);
    }

    /// Emits the frames both detectors have decided (each decides in frame order, possibly at
    /// different frames; the rings hold the one ahead, within the detectors' lag).
    fn drain_vad(&mut self, emit: &mut impl FnMut(&FrameFeatures)) {
        while let Some(activity) = self.vad.pop_decided() {
            self.activity_ready.push_back(activity);
        }
        if let Some(dialog_vad) = self.dialog_vad.as_mut() {
            while let Some(activity) = dialog_vad.pop_decided() {
                self.dialog_activity_ready.push_back(activity);
            }
        }
        loop {
            let dialog_activity = match self.dialog_vad {
                None => self.activity_ready.front().copied(),
                Some(_) => self.dialog_activity_ready.front().copied(),
            };
            let (Some(&activity), Some(dialog_activity)) =
                (self.activity_ready.front(), dialog_activity)
            else {
                break;
            };
            let Some(mut frame) = self.awaiting_vad.pop_front() else {
                break;
            };
            self.activity_ready.pop_front();
            if self.dialog_vad.is_some() {
                self.dialog_activity_ready.pop_front();
            }
            frame.activity = activity;
            frame.dialog_activity = dialog_activity;
            if !self.finished {
                self.lags.voice_activity.add(self.lag_of(frame.index));
            }
            self.syllables.push_class(frame.voiced, activity);
            match self.syllable_marks {
                SyllableMarks::Exact => {
                    self.awaiting_syllable.push_back(frame);
                    self.drain_syllables(emit);
                }
                SyllableMarks::NextSpeechFrame => self.emit_before_syllables(frame, emit),
            }
        }
    }

    /// [`SyllableMarks::NextSpeechFrame`]: emits `frame` now, with a nucleus mark if one is due.
    fn emit_before_syllables(
        &mut self,
        mut frame: FrameFeatures,
        emit: &mut impl FnMut(&FrameFeatures),
    ) {
        let speech = frame.activity == VoiceActivity::Speech;
        self.undecided_speech.push_back(speech);
        self.take_syllable_decisions();
        frame.syllable_nucleus = speech && self.late_nuclei > 0;
        if frame.syllable_nucleus {
            self.late_nuclei -= 1;
        }
        if !self.finished {
            self.lags.syllable.add(self.lag_of(frame.index));
        }
        self.summary.add(&frame);
        emit(&frame);
    }

    /// Counts the nuclei decided for frames already emitted (or being emitted).
    fn take_syllable_decisions(&mut self) {
        while let Some(&speech) = self.undecided_speech.front() {
            let Some(nucleus) = self.syllables.pop_decided() else {
                break;
            };
            self.undecided_speech.pop_front();
            if nucleus && speech {
                self.late_nuclei += 1;
            }
        }
    }

    fn drain_syllables(&mut self, emit: &mut impl FnMut(&FrameFeatures)) {
        while let Some(nucleus) = self.syllables.pop_decided() {
            let Some(mut frame) = self.awaiting_syllable.pop_front() else {
                break;
            };
            frame.syllable_nucleus = nucleus && frame.activity == VoiceActivity::Speech;
            if !self.finished {
                self.lags.syllable.add(self.lag_of(frame.index));
            }
            self.summary.add(&frame);
            emit(&frame);
        }
    }

    /// Drops samples no pending window needs any more (a memmove within capacity).
    fn discard_consumed_samples(&mut self) {
        let next_centre = self.next_frame as i64 * HOP_SAMPLES as i64;
        let pitch_centre = self.next_pitch_frame as i64 * HOP_SAMPLES as i64;
        let keep_from = (next_centre - self.half_window).min(pitch_centre - self.vq_half_window);
        let drop = (keep_from - self.base_sample).max(0) as usize;
        if drop >= MAX_PUSH_SAMPLES {
            self.samples.drain(..drop);
            self.base_sample += drop as i64;
        }
    }
}

/// Maximum frames per chunk read from a file (0.5 s at 48 kHz).
const READ_CHUNK_FRAMES: usize = 24_000;

/// Runs the prosody track over every channel of a recording, streaming it in chunks. `emit`
/// receives frames in time order, all channels of one frame index together. Returns one summary
/// per channel.
pub fn analyze_audio(
    reader: &mut AudioReader,
    config: &AnalyzerConfig,
    mut emit: impl FnMut(usize, &FrameFeatures),
) -> Result<Vec<ChannelSummary>, AudioError> {
    let spec = reader.spec().clone();
    let channels = spec.channels as usize;
    let mut analyzers: Vec<ChannelAnalyzer> = (0..channels)
        .map(|c| ChannelAnalyzer::new(c, config))
        .collect();
    let mut resamplers = (0..channels)
        .map(|_| Resampler::try_new(spec.sample_rate_hz, ANALYSIS_RATE_HZ))
        .collect::<Result<Vec<_>, _>>()?;
    let mut input: Vec<Vec<f32>> = vec![Vec::with_capacity(READ_CHUNK_FRAMES); channels];
    let mut resampled: Vec<Vec<f32>> = vec![Vec::new(); channels];
    let mut frames: Vec<Vec<FrameFeatures>> = vec![Vec::new(); channels];
    loop {
        let read = reader.read_frames(READ_CHUNK_FRAMES, &mut input)?;
        for c in 0..channels {
            resampled[c].clear();
            if read == 0 {
                resamplers[c].finish(&mut resampled[c]);
            } else {
                resamplers[c].process(&input[c], &mut resampled[c]);
            }
            let out = &mut frames[c];
            analyzers[c].push(&resampled[c], &mut |f| out.push(*f));
            if read == 0 {
                analyzers[c].finish(&mut |f| out.push(*f));
            }
        }
        emit_in_time_order(&mut frames, &mut emit);
        if read == 0 {
            break;
        }
    }
    Ok(analyzers.iter().map(ChannelAnalyzer::summary).collect())
}

/// Emits the frames every channel has reached, index by index, and keeps the rest.
fn emit_in_time_order(
    frames: &mut [Vec<FrameFeatures>],
    emit: &mut impl FnMut(usize, &FrameFeatures),
) {
    let ready = frames.iter().map(Vec::len).min().unwrap_or(0);
    for i in 0..ready {
        for (c, channel_frames) in frames.iter().enumerate() {
            emit(c, &channel_frames[i]);
        }
    }
    for channel_frames in frames.iter_mut() {
        channel_frames.drain(..ready);
    }
}

/// Column names of the per-frame CSV, in order.
pub fn csv_header() -> String {
    let mut header = String::from(
        "time_s,channel,f0_hz,voiced,loudness_db,voicing_strength,activity,syllable_nucleus,\
         hnr_db,jitter_local,shimmer_local_db,spectral_centroid_hz,spectral_slope_db_per_khz,\
         alpha_ratio_db,hammarberg_db,spectral_flux,spectral_flatness,vowel_band_db",
    );
    for k in 1..=MFCC_COUNT {
        header.push_str(&format!(",mfcc{k}"));
    }
    header
}

/// Writes one CSV row (no newline); undefined values are left empty.
pub fn write_csv_row(out: &mut impl std::fmt::Write, channel: usize, f: &FrameFeatures) {
    let opt = |v: f32| {
        if v.is_finite() {
            format!("{v:.4}")
        } else {
            String::new()
        }
    };
    let s = &f.spectral;
    let q = &f.voice_quality;
    let _ = write!(
        out,
        "{:.3},{},{:.2},{},{:.2},{:.3},{},{},{},{},{},{:.1},{:.3},{:.3},{:.3},{:.4},{:.4},{:.2}",
        f.time_s(),
        channel,
        f.f0_hz,
        u8::from(f.voiced),
        f.loudness_db,
        f.voicing_strength,
        f.activity.as_str(),
        u8::from(f.syllable_nucleus),
        opt(q.hnr_db),
        opt(q.jitter_local),
        opt(q.shimmer_local_db),
        s.centroid_hz,
        s.slope_db_per_khz,
        s.alpha_ratio_db,
        s.hammarberg_db,
        s.flux,
        s.flatness,
        s.vowel_band_db,
    );
    for c in &s.mfcc {
        let _ = write!(out, ",{c:.3}");
    }
}

/// One frame as a JSON object (undefined values are null).
pub fn frame_json(channel: usize, f: &FrameFeatures) -> serde_json::Value {
    let opt = |v: f32| {
        if v.is_finite() {
            serde_json::json!(v)
        } else {
            serde_json::Value::Null
        }
    };
    let s = &f.spectral;
    serde_json::json!({
        "time_s": f.time_s(),
        "channel": channel,
        "f0_hz": f.f0_hz,
        "voiced": f.voiced,
        "loudness_db": f.loudness_db,
        "voicing_strength": f.voicing_strength,
        "activity": f.activity.as_str(),
        "syllable_nucleus": f.syllable_nucleus,
        "hnr_db": opt(f.voice_quality.hnr_db),
        "jitter_local": opt(f.voice_quality.jitter_local),
        "shimmer_local_db": opt(f.voice_quality.shimmer_local_db),
        "spectral_centroid_hz": s.centroid_hz,
        "spectral_slope_db_per_khz": s.slope_db_per_khz,
        "alpha_ratio_db": s.alpha_ratio_db,
        "hammarberg_db": s.hammarberg_db,
        "spectral_flux": s.flux,
        "spectral_flatness": s.flatness,
        "vowel_band_db": s.vowel_band_db,
        "mfcc": s.mfcc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// `seconds` of a harmonic vowel (140 Hz, 8 harmonics) at `level_dbfs` RMS, over white
    /// noise at `noise_dbfs` RMS (the line noise runs on through the whole signal).
    fn vowel(out: &mut Vec<f32>, rng: &mut SplitMix64, seconds: f64, level_dbfs: Option<f64>) {
        let noise_rms = 10f64.powf(-50.0 / 20.0);
        let n = (seconds * ANALYSIS_RATE_HZ as f64) as usize;
        let start = out.len();
        for i in 0..n {
            let t = (start + i) as f64 / ANALYSIS_RATE_HZ as f64;
            let mut x = noise_rms * rng.gaussian();
            if let Some(level) = level_dbfs {
                let harmonics: f64 = (1..=8)
                    .map(|h| (2.0 * std::f64::consts::PI * 140.0 * h as f64 * t).sin() / h as f64)
                    .sum();
                // RMS of sum of sin(h)/h over 8 harmonics: sqrt(sum 1/(2 h^2)).
                let rms = (1..=8).map(|h| 0.5 / (h * h) as f64).sum::<f64>().sqrt();
                x += 10f64.powf(level / 20.0) * harmonics / rms;
            }
            out.push(x as f32);
        }
    }

    fn frames(config: &AnalyzerConfig, samples: &[f32]) -> Vec<FrameFeatures> {
        let mut analyzer = ChannelAnalyzer::new(0, config);
        let mut out = Vec::new();
        let mut emit = |f: &FrameFeatures| out.push(*f);
        analyzer.push(samples, &mut emit);
        analyzer.finish(&mut emit);
        out
    }

    #[test]
    fn turn_taking_hears_a_soft_voice_the_emotion_features_leave_out() {
        // Line noise at -50 dBFS; a normal utterance 20 dB above it (sets the party's level),
        // a pause, then a soft one 6 dB above the noise (under the fixed 9 dB margin).
        let mut rng = SplitMix64::new(7);
        let mut samples = Vec::new();
        vowel(&mut samples, &mut rng, 1.0, None);
        vowel(&mut samples, &mut rng, 2.0, Some(-30.0));
        vowel(&mut samples, &mut rng, 1.5, None);
        let soft_from = samples.len();
        vowel(&mut samples, &mut rng, 1.5, Some(-44.0));
        let soft_to = samples.len();
        vowel(&mut samples, &mut rng, 1.0, None);
        let out = frames(&AnalyzerConfig::default(), &samples);
        assert!(
            out.iter().enumerate().all(|(i, f)| f.index == i as u64),
            "every frame emitted once, in order"
        );
        let soft = |f: &&FrameFeatures| {
            let sample = f.index as usize * HOP_SAMPLES;
            (soft_from..soft_to).contains(&sample)
        };
        let speech = |a: VoiceActivity| a == VoiceActivity::Speech;
        let feature_speech = out
            .iter()
            .filter(soft)
            .filter(|f| speech(f.activity))
            .count();
        let dialog_speech = out
            .iter()
            .filter(soft)
            .filter(|f| speech(f.dialog_activity))
            .count();
        assert!(feature_speech < 20, "fixed margin: {feature_speech} frames");
        assert!(
            dialog_speech > 100,
            "turn-taking: {dialog_speech} of 150 frames"
        );
        // The loud utterance is speech for both.
        let loud: Vec<_> = out
            .iter()
            .filter(|f| (110..290).contains(&f.index))
            .collect();
        assert!(
            loud.iter()
                .all(|f| speech(f.activity) && speech(f.dialog_activity))
        );

        // With equal settings one detector serves both: the two activities agree everywhere.
        let same = AnalyzerConfig {
            dialog_vad: VadConfig::default(),
            ..AnalyzerConfig::default()
        };
        let out = frames(&same, &samples);
        assert!(out.iter().all(|f| f.activity == f.dialog_activity));
    }
}
