//! Fundamental frequency (F0) and the voicing decision, per 10 ms frame.
//!
//! # Method
//! An autocorrelation tracker in the spirit of Boersma (1993, Praat's "ac" method), sized for
//! telephone speech and about a microsecond per frame:
//!
//! 1. **Decimation to 4 kHz.** The frame's window (at [`ANALYSIS_RATE_HZ`]) goes through a
//!    Kaiser-windowed half-band low-pass and keeps every other sample. Pitch lives in the
//!    harmonics below 2 kHz; halving the rate lets one 256-point FFT cover the analysis window
//!    (2.2 periods of [`PitchConfig::min_f0_hz`], 37 ms at 60 Hz) and every lag of the search.
//!    When a window continues the previous one by one hop (the streaming case) only the new
//!    hop is filtered.
//! 2. **Normalised, compressed autocorrelation.** The mean is removed, a Hann window applied,
//!    and the autocorrelation computed by FFT: forward, power spectrum raised to
//!    [`PitchConfig::spectral_exponent`] (0.5: the magnitude spectrum) and tapered above
//!    1.2 kHz, inverse. Compression flattens the spectrum, so one strong harmonic (a telephone
//!    voice's 2nd or 3rd, with the fundamental cut by the 300 Hz high-pass) cannot pass for the
//!    fundamental. The result is normalised by its lag-0 value and divided by the Hann window's
//!    own autocorrelation, so a periodic signal scores close to 1 at its period.
//! 3. **Candidates.** Local maxima in the lag range of [`PitchConfig::min_f0_hz`] ..
//!    [`PitchConfig::max_f0_hz`], refined by parabolic interpolation, scored by their height
//!    (plus an optional [`PitchConfig::octave_cost`] per octave) minus a *speaker prior*:
//!    [`PitchConfig::speaker_prior_cost`] per octave beyond
//!    [`PitchConfig::speaker_free_octaves`] from the median F0 of the channel's confidently
//!    voiced frames so far (a running, decaying histogram; inactive until ~10 such frames).
//!    The [`MAX_VOICED_CANDIDATES`] best are kept, with one *unvoiced* candidate scoring
//!    [`PitchConfig::voicing_threshold`], raised on frames that are quiet relative to the
//!    channel's recent level ([`PitchConfig::silence_threshold`], as in Praat).
//! 4. **Fixed-lag Viterbi.** A dynamic programme over the candidates of successive frames, with
//!    [`PitchConfig::octave_jump_cost`] per octave of F0 change and
//!    [`PitchConfig::voiced_unvoiced_cost`] per voicing change, picks the best path; each frame
//!    is decided [`PitchTracker::lookahead_frames`] frames after it was analysed, by tracing
//!    back from the best current state.
//!
//! All buffers and FFT plans are made in [`PitchTracker::new`]; [`PitchTracker::push_frame`]
//! does not allocate. Any finite input (silence, DC, clipping, full-scale noise) is handled; a
//! window with non-finite samples is called unvoiced.
//!
//! Accuracy (`attune eval pitch`, telephone channel, 8 kHz): see the project README; on the
//! shared corpora GPE is about 1 % (pitchref_world/tel) and 0.5 % (fda_tel/tel).

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::{ANALYSIS_RATE_HZ, HOP_SAMPLES};

/// Voiced candidates kept per frame (the unvoiced candidate comes on top).
pub(crate) const MAX_VOICED_CANDIDATES: usize = 5;
/// States per frame in the dynamic programme: unvoiced + voiced candidates.
const STATES: usize = MAX_VOICED_CANDIDATES + 1;
/// Index of the unvoiced state.
const UNVOICED: usize = 0;

/// Rate the autocorrelation runs at, Hz (half the analysis rate).
const DECIMATED_RATE_HZ: f32 = ANALYSIS_RATE_HZ as f32 / 2.0;
/// Half-band filter: non-zero taps either side of the centre tap (odd offsets 1, 3, ...).
const HALF_BAND_SIDE_TAPS: usize = 9;
/// Distance from the centre to the outermost tap, input samples.
const HALF_BAND_REACH: usize = 2 * HALF_BAND_SIDE_TAPS - 1;
/// Kaiser window shape of the half-band filter.
const HALF_BAND_KAISER_BETA: f64 = 6.0;
/// Analysis window length in periods of the lowest F0.
const WINDOW_PERIODS_OF_MIN_F0: f32 = 2.2;
/// The spectrum is weighted down from here (harmonics above ~1.2 kHz are rarely resolved and
/// mostly add noise and aliasing to the autocorrelation), Hz...
const TAPER_START_HZ: f32 = 1200.0;
/// ... to zero here, Hz.
const TAPER_END_HZ: f32 = 2000.0;
/// Lags this close to the FFT length minus the window length are still usable: the Hann tails
/// that alias there weigh less than 1e-5.
const CIRCULAR_ALIAS_MARGIN: usize = 8;
/// Frame energy below this (mean square, full scale = 1) is digital silence.
const SILENCE_MEAN_SQUARE: f32 = 1e-10;

/// Pitch search range and voicing settings. The costs follow Praat's "To Pitch (ac)" meaning
/// (per 10 ms frame).
#[derive(Debug, Clone, PartialEq)]
pub struct PitchConfig {
    /// Lowest F0 searched, Hz.
    pub min_f0_hz: f32,
    /// Highest F0 searched, Hz.
    pub max_f0_hz: f32,
    /// Score of the unvoiced candidate on frames at speech level: a frame is voiced when its best
    /// (octave-corrected) normalised autocorrelation peak beats this, path costs aside.
    pub voicing_threshold: f32,
    /// Frames whose RMS is below this fraction of the channel's recent speech level lean towards
    /// unvoiced (Praat's silence threshold, amplitude ratio).
    pub silence_threshold: f32,
    /// Score bonus per octave of F0 above `min_f0_hz` (favours the true F0 over sub-harmonics).
    pub octave_cost: f32,
    /// Path cost per octave of F0 change between successive voiced frames.
    pub octave_jump_cost: f32,
    /// Path cost of a change between voiced and unvoiced.
    pub voiced_unvoiced_cost: f32,
    /// How fast the tracked speech level decays, dB per second (it rises at once).
    pub level_decay_db_per_s: f32,
    /// Frames a decision waits for (fixed-lag Viterbi look-ahead). 8 (80 ms): on the telephone
    /// sets GPE/VDE are the same as with 15 and GPE at 10 dB SNR is within 0.15 points
    /// (`attune eval pitch`), and every frame reaches the live analysis 70 ms sooner.
    pub lookahead_frames: usize,
    /// The autocorrelation is taken of the power spectrum raised to this exponent (1 = plain
    /// autocorrelation; below 1 flattens the spectrum so one strong harmonic cannot pass for
    /// the fundamental).
    pub spectral_exponent: f32,
    /// Path cost per octave a voiced candidate lies beyond `speaker_free_octaves` from the
    /// speaker's running median F0 (0 disables the speaker prior).
    pub speaker_prior_cost: f32,
    /// Octaves either side of the speaker's median F0 that carry no prior cost.
    pub speaker_free_octaves: f32,
    /// Decided frames with at least this periodicity feed the speaker's F0 distribution.
    pub speaker_min_strength: f32,
}

impl Default for PitchConfig {
    fn default() -> Self {
        Self {
            min_f0_hz: 60.0,
            max_f0_hz: 500.0,
            voicing_threshold: 0.25,
            silence_threshold: 0.03,
            octave_cost: 0.0,
            octave_jump_cost: 0.35,
            voiced_unvoiced_cost: 0.14,
            level_decay_db_per_s: 3.0,
            lookahead_frames: 8,
            spectral_exponent: 0.5,
            speaker_prior_cost: 0.3,
            speaker_free_octaves: 1.0,
            speaker_min_strength: 0.45,
        }
    }
}

/// The decision for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PitchEstimate {
    /// F0 in Hz; 0 when unvoiced.
    pub f0_hz: f32,
    pub voiced: bool,
    /// Periodicity strength in [0, 1] (peak of the normalised autocorrelation).
    pub voicing_strength: f32,
}

/// Candidates of one frame plus its dynamic-programme back-pointers.
#[derive(Debug, Clone, Copy, Default)]
struct FrameSlot {
    /// F0 of each state, Hz (0 for the unvoiced state and unused slots).
    f0_hz: [f32; STATES],
    /// log2 of `f0_hz` (voiced states only).
    log2_f0: [f32; STATES],
    /// Local cost of each state (minus its score); `f32::INFINITY` for unused slots.
    cost: [f32; STATES],
    /// Best predecessor state of each state.
    back: [u8; STATES],
    /// Highest normalised autocorrelation peak in range.
    strength: f32,
    /// Normalised autocorrelation of each voiced state.
    peak: [f32; STATES],
}

/// Streaming pitch tracker at [`super::ANALYSIS_RATE_HZ`].
pub struct PitchTracker {
    config: PitchConfig,
    /// Input window length at the analysis rate.
    window_samples: usize,
    /// Analysis window length at the decimated rate.
    decimated_len: usize,

    min_lag: usize,
    max_lag: usize,
    /// Non-zero odd-offset taps of the half-band filter, from offset -reach to +reach.
    half_band: [f32; 2 * HALF_BAND_SIDE_TAPS],
    hann: Vec<f32>,
    /// Reciprocal of the Hann window's normalised autocorrelation, per lag.
    inverse_window_autocorr: Vec<f32>,
    /// Sum of squared Hann weights (energy normalisation).
    hann_power: f32,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    odd_samples: Vec<f32>,
    /// Copy of a window of unexpected length, centred (rarely used).
    padded: Vec<f32>,
    /// Spectral weight per bin: 1 up to [`TAPER_START_HZ`], a raised-cosine fall to 0 at
    /// [`TAPER_END_HZ`].
    taper: Vec<f32>,
    /// The previous window (to reuse its filtered part when the next one continues it).
    previous: Vec<f32>,
    previous_valid: bool,
    decimated: Vec<f32>,
    fft_input: Vec<f32>,
    spectrum: Vec<Complex32>,
    autocorr: Vec<f32>,
    scratch: Vec<Complex32>,
    /// Ring of the last `lookahead + 1` frames.
    slots: Vec<FrameSlot>,
    /// Accumulated path cost of each state of the newest frame.
    path_cost: [f32; STATES],
    path_scratch: Vec<u8>,
    frames_pushed: u64,
    frames_emitted: u64,
    /// Tracked speech level (RMS, full scale = 1).
    level_rms: f32,
    level_decay_per_frame: f32,
    speaker: SpeakerF0,
}

/// Bins of the speaker's F0 distribution per octave.
const SPEAKER_BINS_PER_OCTAVE: f32 = 12.0;
/// Octaves covered by the speaker's F0 distribution (from the lowest searched F0).
const SPEAKER_OCTAVES: usize = 6;
/// Weight each new frame keeps after 100 further voiced frames... decay per voiced frame.
const SPEAKER_DECAY_PER_FRAME: f32 = 0.995;
/// Weight (in frames) the distribution needs before it is used.
const SPEAKER_MIN_WEIGHT: f32 = 10.0;

/// Running, decaying distribution of the speaker's log F0 over confidently voiced frames.
#[derive(Debug, Clone)]
struct SpeakerF0 {
    low_log2_hz: f32,
    /// Bin weights, in units of `increment` (which grows instead of the old weights decaying).
    weights: [f32; SPEAKER_OCTAVES * SPEAKER_BINS_PER_OCTAVE as usize],
    increment: f32,
    sum: f32,
    /// Decayed count of frames, in frames.
    total: f32,
    median: Option<f32>,
}

impl SpeakerF0 {
    fn new(min_f0_hz: f32) -> Self {
        Self {
            low_log2_hz: min_f0_hz.log2(),
            weights: [0.0; SPEAKER_OCTAVES * SPEAKER_BINS_PER_OCTAVE as usize],
            increment: 1.0,
            sum: 0.0,
            total: 0.0,
            median: None,
        }
    }

    fn reset(&mut self) {
        self.weights.fill(0.0);
        self.increment = 1.0;
        self.sum = 0.0;
        self.total = 0.0;
        self.median = None;
    }

    fn add(&mut self, estimate: &PitchEstimate, min_strength: f32) {
        if !estimate.voiced || estimate.voicing_strength < min_strength || estimate.f0_hz <= 0.0 {
            return;
        }
        let bin = ((estimate.f0_hz.log2() - self.low_log2_hz) * SPEAKER_BINS_PER_OCTAVE).floor();
        if !bin.is_finite() {
            return;
        }
        let bin = (bin.max(0.0) as usize).min(self.weights.len() - 1);
        // Decay by growing the weight of new frames instead of shrinking every bin.
        self.increment /= SPEAKER_DECAY_PER_FRAME;
        self.weights[bin] += self.increment;
        self.sum += self.increment;
        if self.increment > 1e6 {
            for w in self.weights.iter_mut() {
                *w /= self.increment;
            }
            self.sum /= self.increment;
            self.increment = 1.0;
        }
        self.total = self.total * SPEAKER_DECAY_PER_FRAME + 1.0;
        self.median = self.compute_median();
    }

    /// Median log2 F0 (Hz), once enough frames were seen.
    fn median_log2_f0(&self) -> Option<f32> {
        if self.total < SPEAKER_MIN_WEIGHT {
            None
        } else {
            self.median
        }
    }

    fn compute_median(&self) -> Option<f32> {
        let half = 0.5 * self.sum;
        let mut seen = 0.0;
        for (bin, &w) in self.weights.iter().enumerate() {
            if seen + w >= half {
                let within = if w > 0.0 { (half - seen) / w } else { 0.5 };
                return Some(self.low_log2_hz + (bin as f32 + within) / SPEAKER_BINS_PER_OCTAVE);
            }
            seen += w;
        }
        None
    }
}

fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < 1e-12 * sum {
            break;
        }
    }
    sum
}

/// Odd-offset taps of a Kaiser-windowed half-band low-pass (the centre tap is 0.5, even
/// offsets are zero), ordered from offset `-HALF_BAND_REACH` to `+HALF_BAND_REACH`.
fn half_band_taps() -> [f32; 2 * HALF_BAND_SIDE_TAPS] {
    let mut taps = [0.0f32; 2 * HALF_BAND_SIDE_TAPS];
    let reach = HALF_BAND_REACH as f64;
    let norm = bessel_i0(HALF_BAND_KAISER_BETA);
    let mut sum = 0.0;
    for (m, tap) in taps.iter_mut().enumerate() {
        let offset = 2.0 * m as f64 - reach;
        let sinc = (std::f64::consts::FRAC_PI_2 * offset).sin() / (std::f64::consts::PI * offset);
        let r = offset / (reach + 1.0);
        let kaiser = bessel_i0(HALF_BAND_KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / norm;
        let value = sinc * kaiser;
        *tap = value as f32;
        sum += value;
    }
    // DC gain exactly 1: the odd taps sum to 0.5 like the centre tap.
    for tap in taps.iter_mut() {
        *tap = (*tap as f64 * 0.5 / sum) as f32;
    }
    taps
}

impl PitchTracker {
    pub fn new(config: PitchConfig) -> Self {
        let mut config = config;
        let sane = |v: f32, default: f32, lo: f32, hi: f32| {
            if v.is_finite() {
                v.clamp(lo, hi)
            } else {
                default
            }
        };
        let defaults = PitchConfig::default();
        config.min_f0_hz = sane(config.min_f0_hz, defaults.min_f0_hz, 30.0, 400.0);
        config.max_f0_hz = sane(
            config.max_f0_hz,
            defaults.max_f0_hz,
            config.min_f0_hz * 1.5,
            DECIMATED_RATE_HZ / 3.0,
        );
        config.voicing_threshold = sane(
            config.voicing_threshold,
            defaults.voicing_threshold,
            0.0,
            1.0,
        );
        config.silence_threshold = sane(
            config.silence_threshold,
            defaults.silence_threshold,
            0.0,
            1.0,
        );
        config.octave_cost = sane(config.octave_cost, defaults.octave_cost, 0.0, 1.0);
        config.octave_jump_cost = sane(
            config.octave_jump_cost,
            defaults.octave_jump_cost,
            0.0,
            10.0,
        );
        config.voiced_unvoiced_cost = sane(
            config.voiced_unvoiced_cost,
            defaults.voiced_unvoiced_cost,
            0.0,
            10.0,
        );
        config.level_decay_db_per_s = sane(
            config.level_decay_db_per_s,
            defaults.level_decay_db_per_s,
            0.0,
            1000.0,
        );
        config.lookahead_frames = config.lookahead_frames.min(200);
        config.spectral_exponent = sane(
            config.spectral_exponent,
            defaults.spectral_exponent,
            0.1,
            2.0,
        );
        config.speaker_prior_cost = sane(
            config.speaker_prior_cost,
            defaults.speaker_prior_cost,
            0.0,
            10.0,
        );
        config.speaker_free_octaves = sane(
            config.speaker_free_octaves,
            defaults.speaker_free_octaves,
            0.0,
            10.0,
        );
        config.speaker_min_strength = sane(
            config.speaker_min_strength,
            defaults.speaker_min_strength,
            0.0,
            1.0,
        );

        let max_lag = (DECIMATED_RATE_HZ / config.min_f0_hz).ceil() as usize + 1;
        let min_lag = ((DECIMATED_RATE_HZ / config.max_f0_hz).floor() as usize).max(2);
        let decimated_len = ((WINDOW_PERIODS_OF_MIN_F0 * DECIMATED_RATE_HZ / config.min_f0_hz)
            / 2.0)
            .ceil() as usize
            * 2;
        let fft_len = (decimated_len + max_lag + 1)
            .saturating_sub(CIRCULAR_ALIAS_MARGIN)
            .next_power_of_two();
        let window_samples = 2 * decimated_len + 2 * HALF_BAND_REACH;

        let hann: Vec<f32> = (0..decimated_len)
            .map(|i| {
                let phase = 2.0 * std::f64::consts::PI * (i as f64 + 0.5) / decimated_len as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        let hann_power: f32 = hann.iter().map(|w| w * w).sum();
        let inverse_window_autocorr: Vec<f32> = (0..=max_lag + 1)
            .map(|lag| {
                let sum: f64 = hann
                    .iter()
                    .zip(hann.iter().skip(lag))
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum();
                (hann_power as f64 / sum.max(1e-6)) as f32
            })
            .collect();

        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(fft_len);
        let inverse = planner.plan_fft_inverse(fft_len);
        let scratch_len = forward.get_scratch_len().max(inverse.get_scratch_len());
        let lookahead = config.lookahead_frames;
        let decay_db = config.level_decay_db_per_s * super::FRAME_PERIOD_S as f32;
        Self {
            window_samples,
            decimated_len,

            min_lag,
            max_lag,
            half_band: half_band_taps(),
            inverse_window_autocorr,
            hann_power: hann_power.max(1e-9),
            hann,
            odd_samples: vec![0.0; window_samples / 2],
            padded: vec![0.0; window_samples],
            previous: vec![0.0; window_samples],
            previous_valid: false,
            taper: (0..fft_len / 2 + 1)
                .map(|bin| {
                    let hz = bin as f32 * DECIMATED_RATE_HZ / fft_len as f32;
                    let x =
                        ((hz - TAPER_START_HZ) / (TAPER_END_HZ - TAPER_START_HZ)).clamp(0.0, 1.0);
                    let c = (std::f32::consts::FRAC_PI_2 * x).cos();
                    c * c
                })
                .collect(),
            decimated: vec![0.0; decimated_len],
            fft_input: forward.make_input_vec(),
            spectrum: forward.make_output_vec(),
            autocorr: inverse.make_output_vec(),
            scratch: vec![Complex32::default(); scratch_len],
            forward,
            inverse,
            slots: vec![FrameSlot::default(); lookahead + 1],
            path_cost: [0.0; STATES],
            path_scratch: vec![0; lookahead + 1],
            frames_pushed: 0,
            frames_emitted: 0,
            level_rms: 0.0,
            level_decay_per_frame: 10f32.powf(-decay_db / 20.0),
            speaker: SpeakerF0::new(config.min_f0_hz),
            config,
        }
    }

    /// Length of the window, centred on the frame, passed to [`Self::push_frame`].
    pub fn window_samples(&self) -> usize {
        self.window_samples
    }

    /// How many frames a decision lags behind the newest pushed frame.
    pub(crate) fn lookahead_frames(&self) -> usize {
        self.config.lookahead_frames
    }

    /// The settings in use (after range checks).
    pub fn config(&self) -> &PitchConfig {
        &self.config
    }

    /// Analyses the next frame's window; returns the decision for frame `n - lookahead_frames()`
    /// once it is final (None while the first frames fill the look-ahead).
    ///
    /// A window of another length is centred on the expected one (cut or zero-padded).
    pub fn push_frame(&mut self, window: &[f32]) -> Option<PitchEstimate> {
        let slot_index = (self.frames_pushed % self.slots.len() as u64) as usize;
        let slot = self.analyze(window);
        self.slots[slot_index] = slot;
        self.viterbi_step(slot_index);
        self.frames_pushed += 1;
        let lookahead = self.config.lookahead_frames as u64;
        if self.frames_pushed > lookahead {
            let estimate = self.trace_back_one();
            self.speaker
                .add(&estimate, self.config.speaker_min_strength);
            self.frames_emitted += 1;
            Some(estimate)
        } else {
            None
        }
    }

    /// At the end of the stream, emits the decisions still pending, in frame order. The tracker
    /// is then ready for a new stream.
    pub fn flush(&mut self, mut emit: impl FnMut(PitchEstimate)) {
        let pending = (self.frames_pushed - self.frames_emitted) as usize;
        if pending > 0 {
            let ring = self.slots.len();
            let newest = ((self.frames_pushed - 1) % ring as u64) as usize;
            let mut state = best_state(&self.path_cost);
            // path_scratch[k] = state of the k-th pending frame.
            for k in (0..pending).rev() {
                let index = (newest + ring - (pending - 1 - k)) % ring;
                self.path_scratch[k] = state as u8;
                state = self.slots[index].back[state] as usize;
            }
            let oldest = (newest + ring + 1 - pending) % ring;
            for k in 0..pending {
                let slot = &self.slots[(oldest + k) % ring];
                emit(estimate_of(slot, self.path_scratch[k] as usize));
            }
        }
        self.frames_pushed = 0;
        self.frames_emitted = 0;
        self.path_cost = [0.0; STATES];
        self.level_rms = 0.0;
        self.speaker.reset();
        self.previous_valid = false;
    }

    /// Provisional voicing of the frames analysed but not yet decided (at most
    /// [`PitchTracker::lookahead_frames`]): the best path as it stands at the newest frame,
    /// traced back. `visit(k, voiced)` sees them from the newest (`k = 0`) back; the frame
    /// `k` back is the `k`-th before the newest pushed. The decision may still change as later
    /// frames arrive; nothing is changed here.
    pub(crate) fn provisional_voicing(&self, mut visit: impl FnMut(usize, bool)) {
        let pending = (self.frames_pushed - self.frames_emitted) as usize;
        if pending == 0 {
            return;
        }
        let ring = self.slots.len();
        let mut index = ((self.frames_pushed - 1) % ring as u64) as usize;
        let mut state = best_state(&self.path_cost);
        for k in 0..pending {
            let estimate = estimate_of(&self.slots[index], state);
            visit(k, estimate.voiced && estimate.f0_hz > 0.0);
            state = self.slots[index].back[state] as usize;
            index = if index == 0 { ring - 1 } else { index - 1 };
        }
    }

    /// Decides the frame `lookahead` frames back by tracing the best path from the newest frame.
    fn trace_back_one(&self) -> PitchEstimate {
        let ring = self.slots.len();
        let newest = ((self.frames_pushed - 1) % ring as u64) as usize;
        let mut state = best_state(&self.path_cost);
        let mut index = newest;
        for _ in 0..self.config.lookahead_frames {
            state = self.slots[index].back[state] as usize;
            index = if index == 0 { ring - 1 } else { index - 1 };
        }
        estimate_of(&self.slots[index], state)
    }

    fn viterbi_step(&mut self, slot_index: usize) {
        let ring = self.slots.len();
        let octave_jump = self.config.octave_jump_cost;
        let voicing_change = self.config.voiced_unvoiced_cost;
        if self.frames_pushed == 0 {
            let slot = &mut self.slots[slot_index];
            self.path_cost = slot.cost;
            slot.back = [0; STATES];
            return;
        }
        let previous = self.slots[(slot_index + ring - 1) % ring];
        let slot = &mut self.slots[slot_index];
        let mut next = [f32::INFINITY; STATES];
        #[allow(clippy::needless_range_loop)] // j indexes three arrays and is a state id
        for j in 0..STATES {
            if !slot.cost[j].is_finite() {
                continue;
            }
            let mut best = f32::INFINITY;
            let mut best_i = 0u8;
            for i in 0..STATES {
                let before = self.path_cost[i];
                if !before.is_finite() {
                    continue;
                }
                let transition = match (i == UNVOICED, j == UNVOICED) {
                    (true, true) => 0.0,
                    (false, false) => octave_jump * (previous.log2_f0[i] - slot.log2_f0[j]).abs(),
                    _ => voicing_change,
                };
                let total = before + transition;
                if total < best {
                    best = total;
                    best_i = i as u8;
                }
            }
            next[j] = best + slot.cost[j];
            slot.back[j] = best_i;
        }
        // Keep the numbers small: only differences matter.
        let floor = next.iter().copied().fold(f32::INFINITY, f32::min);
        if floor.is_finite() {
            for cost in next.iter_mut() {
                *cost -= floor;
            }
        } else {
            next = [0.0; STATES];
        }
        self.path_cost = next;
    }

    /// Candidates of one frame.
    fn analyze(&mut self, window: &[f32]) -> FrameSlot {
        self.decimate(window);

        let n = self.decimated_len;
        let mean = sum8(&self.decimated) / n as f32;
        for ((out, &x), &w) in self
            .fft_input
            .iter_mut()
            .zip(&self.decimated)
            .zip(&self.hann)
        {
            *out = (x - mean) * w;
        }
        self.fft_input[n..].fill(0.0);

        let mut slot = FrameSlot {
            cost: [f32::INFINITY; STATES],
            ..FrameSlot::default()
        };

        let energy = sum_squares8(&self.fft_input[..n]);
        let mean_square = energy / self.hann_power;
        let rms = if mean_square.is_finite() {
            mean_square.sqrt()
        } else {
            0.0
        };
        self.level_rms = (self.level_rms * self.level_decay_per_frame).max(rms);

        // Unvoiced candidate (Praat: voicing threshold, raised on quiet frames).
        let relative = if self.level_rms > 0.0 {
            rms / self.level_rms
        } else {
            0.0
        };
        let vt = self.config.voicing_threshold;
        let st = self.config.silence_threshold.max(1e-6);
        let unvoiced_score = vt + (2.0 - relative / (st / (1.0 + vt))).max(0.0);
        slot.cost[UNVOICED] = -unvoiced_score;

        if mean_square.is_nan() || mean_square <= SILENCE_MEAN_SQUARE {
            return slot;
        }

        if self
            .forward
            .process_with_scratch(&mut self.fft_input, &mut self.spectrum, &mut self.scratch)
            .is_err()
        {
            return slot;
        }
        for (bin, &w) in self.spectrum.iter_mut().zip(&self.taper) {
            *bin *= w;
        }
        let exponent = self.config.spectral_exponent;
        if exponent == 1.0 {
            for bin in self.spectrum.iter_mut() {
                *bin = Complex32::new(bin.norm_sqr(), 0.0);
            }
        } else if exponent == 0.5 {
            for bin in self.spectrum.iter_mut() {
                *bin = Complex32::new(bin.norm_sqr().sqrt(), 0.0);
            }
        } else {
            for bin in self.spectrum.iter_mut() {
                *bin = Complex32::new(bin.norm_sqr().powf(exponent), 0.0);
            }
        }
        if self
            .inverse
            .process_with_scratch(&mut self.spectrum, &mut self.autocorr, &mut self.scratch)
            .is_err()
        {
            return slot;
        }
        let r0 = self.autocorr[0];
        if !r0.is_finite() || r0 <= 0.0 {
            return slot;
        }
        // Normalised autocorrelation, over the lags the search needs (one on either side).
        let scale = 1.0 / r0;
        for lag in self.min_lag - 1..=self.max_lag + 1 {
            self.autocorr[lag] *= scale * self.inverse_window_autocorr[lag];
        }

        let min_f0 = self.config.min_f0_hz;
        let max_f0 = self.config.max_f0_hz;
        let octave_cost = self.config.octave_cost;
        let speaker_centre = if self.config.speaker_prior_cost > 0.0 {
            self.speaker.median_log2_f0()
        } else {
            None
        };
        let candidate_floor = 0.5 * vt;
        let r = &self.autocorr;
        let mut count = 0usize;
        let mut strongest = 0.0f32;
        for lag in self.min_lag..=self.max_lag {
            let (left, centre, right) = (r[lag - 1], r[lag], r[lag + 1]);
            if !(centre > left && centre >= right) || centre < candidate_floor {
                continue;
            }
            let curvature = left - 2.0 * centre + right;
            let shift = if curvature < 0.0 {
                (0.5 * (left - right) / curvature).clamp(-0.5, 0.5)
            } else {
                0.0
            };
            let mut peak = centre - 0.25 * (left - right) * shift;
            if peak > 1.0 {
                peak = 1.0 / peak;
            }
            let f0 = DECIMATED_RATE_HZ / (lag as f32 + shift);
            if !(min_f0..=max_f0).contains(&f0) {
                continue;
            }
            strongest = strongest.max(peak);
            let log2_f0 = f0.log2();
            let mut score = peak + octave_cost * (log2_f0 - min_f0.log2());
            if let Some(centre) = speaker_centre {
                let excess = ((log2_f0 - centre).abs() - self.config.speaker_free_octaves).max(0.0);
                score -= self.config.speaker_prior_cost * excess;
            }
            // Insert into the voiced states, kept sorted by cost (best first).
            let cost = -score;
            let mut position = 1 + count;
            if count == MAX_VOICED_CANDIDATES {
                if cost >= slot.cost[STATES - 1] {
                    continue;
                }
                position = STATES - 1;
            } else {
                count += 1;
            }
            while position > 1 && slot.cost[position - 1] > cost {
                slot.cost[position] = slot.cost[position - 1];
                slot.f0_hz[position] = slot.f0_hz[position - 1];
                slot.log2_f0[position] = slot.log2_f0[position - 1];
                slot.peak[position] = slot.peak[position - 1];
                position -= 1;
            }
            slot.cost[position] = cost;
            slot.f0_hz[position] = f0;
            slot.log2_f0[position] = log2_f0;
            slot.peak[position] = peak;
        }
        slot.strength = strongest.clamp(0.0, 1.0);
        slot
    }

    /// Low-pass and keep every other sample of the window into `self.decimated`. When the
    /// window is the previous one moved by one hop (the streaming case), only the new hop is
    /// filtered and the rest reused.
    fn decimate(&mut self, window: &[f32]) {
        let expected = self.window_samples;
        let input: &[f32] = if window.len() == expected {
            window
        } else {
            // Centre the given window on the expected one (cut or zero-padded).
            self.padded.fill(0.0);
            let (from, to, len) = if window.len() > expected {
                ((window.len() - expected) / 2, 0, expected)
            } else {
                (0, (expected - window.len()) / 2, window.len())
            };
            self.padded[to..to + len].copy_from_slice(&window[from..from + len]);
            &self.padded
        };
        let n = self.decimated_len;
        let shift = HOP_SAMPLES / 2;
        let continues = self.previous_valid
            && n > shift
            && !differs(
                &input[..expected - HOP_SAMPLES],
                &self.previous[HOP_SAMPLES..],
            );
        let first = if continues {
            self.decimated.copy_within(shift.., 0);
            n - shift
        } else {
            0
        };
        // Output i is centred on input 2i + 2 * side taps (even); the non-zero taps sit at odd
        // offsets, i.e. on the odd inputs 2(i + m) + 1, m = 0 .. 2 * side taps.
        let odd_end = n + 2 * HALF_BAND_SIDE_TAPS - 1;
        for (k, out) in self.odd_samples[first..odd_end].iter_mut().enumerate() {
            *out = input[2 * (first + k) + 1];
        }
        for (k, out) in self.decimated[first..].iter_mut().enumerate() {
            *out = 0.5 * input[2 * (first + k) + 2 * HALF_BAND_SIDE_TAPS];
        }
        if n - first == HOP_SAMPLES / 2 {
            // The streaming case: the accumulators stay in registers.
            let mut acc = [0.0f32; HOP_SAMPLES / 2];
            acc.copy_from_slice(&self.decimated[first..]);
            for (m, &tap) in self.half_band.iter().enumerate() {
                let source = &self.odd_samples[first + m..first + m + HOP_SAMPLES / 2];
                for (out, &x) in acc.iter_mut().zip(source) {
                    *out += tap * x;
                }
            }
            self.decimated[first..].copy_from_slice(&acc);
        } else {
            for (m, &tap) in self.half_band.iter().enumerate() {
                let source = &self.odd_samples[first + m..m + n];
                for (out, &x) in self.decimated[first..].iter_mut().zip(source) {
                    *out += tap * x;
                }
            }
        }
        if window.len() == expected {
            self.previous.copy_from_slice(window);
        } else {
            let (previous, padded) = (&mut self.previous, &self.padded);
            previous.copy_from_slice(padded);
        }
        self.previous_valid = true;
    }
}

/// Whether two equally long slices differ in any bit (vectorises; no early exit).
fn differs(a: &[f32], b: &[f32]) -> bool {
    a.iter()
        .zip(b)
        .fold(0u32, |acc, (x, y)| acc | (x.to_bits() ^ y.to_bits()))
        != 0
}

/// Sum of a slice with eight partial sums (vectorises, unlike a sequential sum).
fn sum8(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// Sum of squares with eight partial sums.
fn sum_squares8(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v * v;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

fn best_state(costs: &[f32; STATES]) -> usize {
    let mut best = UNVOICED;
    for (i, &c) in costs.iter().enumerate() {
        if c < costs[best] {
            best = i;
        }
    }
    best
}

fn estimate_of(slot: &FrameSlot, state: usize) -> PitchEstimate {
    if state == UNVOICED || slot.f0_hz[state] <= 0.0 {
        PitchEstimate {
            f0_hz: 0.0,
            voiced: false,
            voicing_strength: slot.strength,
        }
    } else {
        PitchEstimate {
            f0_hz: slot.f0_hz[state],
            voiced: true,
            voicing_strength: slot.peak[state].clamp(0.0, 1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE_HZ: f32 = ANALYSIS_RATE_HZ as f32;

    /// Runs the tracker over `signal` as the per-channel analyser does (windows centred on each
    /// frame, zeros outside) and returns one estimate per frame.
    fn track(signal: &[f32]) -> Vec<PitchEstimate> {
        let mut tracker = PitchTracker::new(PitchConfig::default());
        let window = tracker.window_samples();
        let half = window / 2;
        let mut padded = vec![0.0f32; half];
        padded.extend_from_slice(signal);
        padded.resize(padded.len() + window, 0.0);
        let frames = signal.len().div_ceil(HOP_SAMPLES);
        let mut out = Vec::with_capacity(frames);
        for k in 0..frames {
            let start = k * HOP_SAMPLES;
            out.extend(tracker.push_frame(&padded[start..start + window]));
        }
        tracker.flush(|e| out.push(e));
        assert_eq!(out.len(), frames);
        out
    }

    /// Second-order high-pass (RBJ biquad, Q = 0.707), applied twice: a 300 Hz telephone edge.
    fn telephone_high_pass(signal: &mut [f32]) {
        let w0 = std::f32::consts::TAU * 300.0 / RATE_HZ;
        let alpha = w0.sin() / (2.0 * std::f32::consts::FRAC_1_SQRT_2);
        let cos = w0.cos();
        let a0 = 1.0 + alpha;
        let b = [
            (1.0 + cos) / 2.0 / a0,
            -(1.0 + cos) / a0,
            (1.0 + cos) / 2.0 / a0,
        ];
        let a = [-2.0 * cos / a0, (1.0 - alpha) / a0];
        for _ in 0..2 {
            let (mut x1, mut x2, mut y1, mut y2) = (0.0f32, 0.0, 0.0, 0.0);
            for s in signal.iter_mut() {
                let y = b[0] * *s + b[1] * x1 + b[2] * x2 - a[0] * y1 - a[1] * y2;
                x2 = x1;
                x1 = *s;
                y2 = y1;
                y1 = y;
                *s = y;
            }
        }
    }

    /// Harmonics 1/k of an F0 contour (Hz per sample) up to 3.4 kHz.
    fn harmonic(f0_at: impl Fn(f32) -> f32, seconds: f32, amplitudes: &[f32]) -> Vec<f32> {
        let n = (seconds * RATE_HZ) as usize;
        let mut phase = 0.0f32;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let f0 = f0_at(i as f32 / RATE_HZ);
            phase = (phase + std::f32::consts::TAU * f0 / RATE_HZ) % std::f32::consts::TAU;
            let mut x = 0.0;
            for k in 1..=40 {
                if k as f32 * f0 > 3400.0 {
                    break;
                }
                let amplitude = amplitudes.get(k - 1).copied().unwrap_or(1.0 / k as f32);
                x += amplitude * (k as f32 * phase).sin();
            }
            out.push(0.2 * x);
        }
        out
    }

    fn noise(n: usize, amplitude: f32, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                amplitude * ((state >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
            })
            .collect()
    }

    /// The frames away from the edges (the window reaches past the signal there).
    fn middle(track: &[PitchEstimate]) -> &[PitchEstimate] {
        &track[5..track.len() - 5]
    }

    #[test]
    fn missing_fundamental_through_telephone_band() {
        for f0 in [80.0f32, 120.0, 220.0, 400.0] {
            let mut signal = harmonic(|_| f0, 1.0, &[]);
            telephone_high_pass(&mut signal);
            let estimates = track(&signal);
            for (k, e) in middle(&estimates).iter().enumerate() {
                assert!(e.voiced, "{f0} Hz: frame {k} unvoiced");
                assert!(
                    (e.f0_hz / f0 - 1.0).abs() < 0.01,
                    "{f0} Hz: frame {k} at {} Hz",
                    e.f0_hz
                );
            }
        }
    }

    #[test]
    fn white_noise_is_unvoiced() {
        for amplitude in [0.01f32, 0.3, 1.0] {
            let estimates = track(&noise(16_000, amplitude, 7));
            let voiced = estimates.iter().filter(|e| e.voiced).count();
            assert!(
                voiced * 20 <= estimates.len(),
                "noise at {amplitude}: {voiced} of {} frames voiced",
                estimates.len()
            );
        }
    }

    #[test]
    fn silence_dc_and_clipping_do_not_break_it() {
        let silence = track(&vec![0.0; 8000]);
        assert!(silence.iter().all(|e| !e.voiced && e.f0_hz == 0.0));
        let dc = track(&vec![0.5; 8000]);
        assert!(dc.iter().all(|e| !e.voiced));
        let clipped: Vec<f32> = harmonic(|_| 150.0, 1.0, &[])
            .iter()
            .map(|x| (x * 50.0).clamp(-1.0, 1.0))
            .collect();
        let estimates = track(&clipped);
        for e in middle(&estimates) {
            assert!(e.voiced && (e.f0_hz / 150.0 - 1.0).abs() < 0.02, "{e:?}");
        }
        let loud = track(
            &noise(8000, 1.0, 3)
                .iter()
                .map(|x| x.signum())
                .collect::<Vec<_>>(),
        );
        assert!(loud.iter().all(|e| e.f0_hz.is_finite()));
        assert!(track(&[]).is_empty());
        assert_eq!(track(&[0.3; 7]).len(), 1);
    }

    #[test]
    fn strong_second_harmonic_gives_no_octave_jump() {
        let mut signal = harmonic(|_| 100.0, 2.0, &[0.3, 1.0, 0.2, 0.3, 0.1, 0.1]);
        telephone_high_pass(&mut signal);
        let mixed: Vec<f32> = signal
            .iter()
            .zip(noise(signal.len(), 0.005, 11))
            .map(|(s, n)| s + n)
            .collect();
        let estimates = track(&mixed);
        for (k, e) in middle(&estimates).iter().enumerate() {
            assert!(
                e.voiced && (e.f0_hz / 100.0 - 1.0).abs() < 0.02,
                "frame {k}: {e:?}"
            );
        }
    }

    #[test]
    fn glide_is_tracked() {
        let glide = |t: f32| 100.0 * 2f32.powf(t);
        let mut signal = harmonic(glide, 1.0, &[]);
        telephone_high_pass(&mut signal);
        let estimates = track(&signal);
        for (k, e) in estimates
            .iter()
            .enumerate()
            .skip(5)
            .take(estimates.len() - 10)
        {
            let expected = glide(k as f32 * 0.01);
            assert!(
                e.voiced && (e.f0_hz / expected - 1.0).abs() < 0.03,
                "frame {k}: expected {expected} Hz, got {e:?}"
            );
        }
    }

    #[test]
    fn windows_of_another_length_are_accepted() {
        let mut tracker = PitchTracker::new(PitchConfig::default());
        let signal = harmonic(|_| 200.0, 0.5, &[]);
        let mut count = 0;
        for k in 0..30 {
            let window = &signal[k * 80..k * 80 + 300];
            count += tracker.push_frame(window).is_some() as usize;
        }
        tracker.flush(|_| count += 1);
        assert_eq!(count, 30);
        // Nonsense settings are brought into range.
        let odd = PitchTracker::new(PitchConfig {
            min_f0_hz: f32::NAN,
            max_f0_hz: -5.0,
            ..PitchConfig::default()
        });
        assert!(odd.window_samples() > 0);
        // Extreme but valid ranges work end to end.
        let signal = harmonic(|_| 420.0, 0.5, &[]);
        for (min_f0_hz, max_f0_hz) in [(30.0, 2000.0), (400.0, 450.0), (20.0, 25.0)] {
            let mut tracker = PitchTracker::new(PitchConfig {
                min_f0_hz,
                max_f0_hz,
                ..PitchConfig::default()
            });
            let window = tracker.window_samples();
            let mut count = 0;
            for k in 0..(signal.len() - window) / HOP_SAMPLES {
                let start = k * HOP_SAMPLES;
                count += tracker.push_frame(&signal[start..start + window]).is_some() as usize;
            }
            tracker.flush(|e| {
                assert!(e.f0_hz.is_finite());
                count += 1;
            });
            assert_eq!(count, (signal.len() - window) / HOP_SAMPLES);
        }
    }
}
