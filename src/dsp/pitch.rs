//! Fundamental frequency (F0) and the voicing decision, per 10 ms frame.
//!
//! # Method
//! An autocorrelation tracker in the spirit of Boersma (1993, Praat's "ac" method), sized for
//! telephone speech and a few microseconds per frame:
//!
//! 1. **Decimation to 4 kHz.** The frame's window (at [`ANALYSIS_RATE_HZ`]) goes through a
//!    Kaiser-windowed half-band low-pass and keeps every other sample. Pitch lives in the
//!    harmonics below 2 kHz; halving the rate lets one 256-point FFT cover a 48 ms window and
//!    every lag down to [`PitchConfig::min_f0_hz`].
//! 2. **Normalised autocorrelation.** The mean is removed, a Hann window applied, and the
//!    autocorrelation computed by FFT (forward, power, inverse). It is normalised by its lag-0
//!    value and divided by the Hann window's own autocorrelation, so a periodic signal scores
//!    close to 1 at its period and at every multiple of it.
//! 3. **Candidates.** Local maxima in the lag range of [`PitchConfig::min_f0_hz`] ..
//!    [`PitchConfig::max_f0_hz`], refined by parabolic interpolation, each scored by its height
//!    plus [`PitchConfig::octave_cost`] per octave above the floor (a periodic signal is just as
//!    periodic at twice its period; the bonus breaks the tie towards the true, higher F0). The
//!    [`MAX_VOICED_CANDIDATES`] best are kept, together with one *unvoiced* candidate whose
//!    score is [`PitchConfig::voicing_threshold`], raised on frames that are quiet relative to
//!    the channel's recent speech level ([`PitchConfig::silence_threshold`]).
//! 4. **Fixed-lag Viterbi.** A dynamic programme over the candidates of successive frames, with
//!    [`PitchConfig::octave_jump_cost`] per octave of F0 change and
//!    [`PitchConfig::voiced_unvoiced_cost`] per voicing change, picks the best path; each frame
//!    is decided [`PitchTracker::lookahead_frames`] frames after it was analysed, by tracing
//!    back from the best current state.
//!
//! All buffers and FFT plans are made in [`PitchTracker::new`]; [`PitchTracker::push_frame`]
//! does not allocate. Any finite input (silence, DC, clipping, full-scale noise) is handled;
//! non-finite samples are treated as zeros.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::ANALYSIS_RATE_HZ;

/// Voiced candidates kept per frame (the unvoiced candidate comes on top).
pub const MAX_VOICED_CANDIDATES: usize = 5;
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
const WINDOW_PERIODS_OF_MIN_F0: f32 = 2.9;
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
    /// Frames a decision waits for (fixed-lag Viterbi look-ahead).
    pub lookahead_frames: usize,
}

impl Default for PitchConfig {
    fn default() -> Self {
        Self {
            min_f0_hz: 60.0,
            max_f0_hz: 500.0,
            voicing_threshold: 0.45,
            silence_threshold: 0.03,
            octave_cost: 0.01,
            octave_jump_cost: 0.35,
            voiced_unvoiced_cost: 0.14,
            level_decay_db_per_s: 3.0,
            lookahead_frames: 15,
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
    /// Normalised autocorrelation of the Hann window, per lag.
    window_autocorr: Vec<f32>,
    /// Sum of squared Hann weights (energy normalisation).
    hann_power: f32,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    odd_samples: Vec<f32>,
    /// Copy of a window of unexpected length, centred (rarely used).
    padded: Vec<f32>,
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
        config.voicing_threshold = sane(config.voicing_threshold, 0.45, 0.0, 1.0);
        config.silence_threshold = sane(config.silence_threshold, 0.03, 0.0, 1.0);
        config.octave_cost = sane(config.octave_cost, 0.01, 0.0, 1.0);
        config.octave_jump_cost = sane(config.octave_jump_cost, 0.35, 0.0, 10.0);
        config.voiced_unvoiced_cost = sane(config.voiced_unvoiced_cost, 0.14, 0.0, 10.0);
        config.level_decay_db_per_s = sane(config.level_decay_db_per_s, 3.0, 0.0, 1000.0);
        config.lookahead_frames = config.lookahead_frames.min(200);

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
        let window_autocorr: Vec<f32> = (0..=max_lag + 1)
            .map(|lag| {
                let sum: f64 = hann
                    .iter()
                    .zip(hann.iter().skip(lag))
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum();
                (sum / hann_power as f64).max(1e-6) as f32
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
            window_autocorr,
            hann_power: hann_power.max(1e-9),
            hann,
            odd_samples: vec![0.0; window_samples / 2],
            padded: vec![0.0; window_samples],
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
            config,
        }
    }

    /// Length of the window, centred on the frame, passed to [`Self::push_frame`].
    pub fn window_samples(&self) -> usize {
        self.window_samples
    }

    /// How many frames a decision lags behind the newest pushed frame.
    pub fn lookahead_frames(&self) -> usize {
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
    }

    /// Decides the frame `lookahead` frames back by tracing the best path from the newest frame.
    fn trace_back_one(&self) -> PitchEstimate {
        let ring = self.slots.len();
        let newest = ((self.frames_pushed - 1) % ring as u64) as usize;
        let mut state = best_state(&self.path_cost);
        let mut index = newest;
        for _ in 0..self.config.lookahead_frames {
            state = self.slots[index].back[state] as usize;
            index = (index + ring - 1) % ring;
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
        let mean = self.decimated.iter().sum::<f32>() / n as f32;
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

        let energy: f32 = self.fft_input[..n].iter().map(|x| x * x).sum();
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
        for bin in self.spectrum.iter_mut() {
            *bin = Complex32::new(bin.norm_sqr(), 0.0);
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
            self.autocorr[lag] *= scale / self.window_autocorr[lag];
        }

        let min_f0 = self.config.min_f0_hz;
        let max_f0 = self.config.max_f0_hz;
        let octave_cost = self.config.octave_cost;
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
            let score = peak + octave_cost * (log2_f0 - min_f0.log2());
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

    /// Low-pass and keep every other sample of the window into `self.decimated`.
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
        // Output i is centred on input 2i + 2 * side taps (even); the non-zero taps sit at odd
        // offsets, i.e. on the odd inputs 2(i + m) + 1, m = 0 .. 2 * side taps.
        for (k, out) in self.odd_samples.iter_mut().enumerate() {
            *out = input[2 * k + 1];
        }
        let n = self.decimated_len;
        for (i, out) in self.decimated.iter_mut().enumerate() {
            *out = 0.5 * input[2 * i + 2 * HALF_BAND_SIDE_TAPS];
        }
        for (m, &tap) in self.half_band.iter().enumerate() {
            let source = &self.odd_samples[m..m + n];
            for (out, &x) in self.decimated.iter_mut().zip(source) {
                *out += tap * x;
            }
        }
    }
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
