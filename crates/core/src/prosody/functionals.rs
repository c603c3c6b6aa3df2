//! Window-level prosodic functionals over one party's speech: an eGeMAPS-class set of statistics
//! (F0 in semitones, loudness, spectral shape and slope, MFCC 1–4, voice quality, voicing, pause
//! rhythm, speaking rate) computed from the signal core's [`FrameFeatures`].
//!
//! [`FunctionalsAccumulator`] is fed frame by frame and yields a fixed-length vector
//! ([`FEATURE_COUNT`] values, named by [`FEATURE_NAMES`]). It holds running sums and fixed-size
//! histograms only, so it never allocates after construction and its cost per frame is constant.
//! A window is whatever the caller accumulates between [`FunctionalsAccumulator::reset`] calls
//! (a file, or 2–4 s of speech in a live call).
//!
//! Which frames count:
//! - *speech frames* (`activity == Speech`) feed loudness, spectral shape, MFCCs, voiced ratio
//!   and speaking rate;
//! - *voiced speech frames* (speech and voiced with F0 > 0) feed F0 and voice quality (NaN
//!   voice-quality values are skipped);
//! - pauses are runs of non-speech frames between two speech frames (leading and trailing
//!   silence are not pauses).
//!
//! Undefined statistics (no voiced frame, no pause) are 0, never NaN, so every vector is finite.

use crate::dsp::FRAME_PERIOD_S;
use crate::dsp::vad::VoiceActivity;
use crate::features::FrameFeatures;

/// Reference of the semitone scale: 27.5 Hz (A0), as in eGeMAPS.
pub(crate) const SEMITONE_REFERENCE_HZ: f64 = 27.5;

/// Names of the features, in vector order. Units are in the names.
pub const FEATURE_NAMES: [&str; FEATURE_COUNT] = [
    "f0_mean_st",
    "f0_std_st",
    "f0_p20_st",
    "f0_p50_st",
    "f0_p80_st",
    "f0_range_p20_p80_st",
    "f0_rising_slope_mean_st_per_s",
    "f0_falling_slope_mean_st_per_s",
    "loudness_mean_db",
    "loudness_std_db",
    "loudness_p20_db",
    "loudness_p50_db",
    "loudness_p80_db",
    "loudness_range_p20_p80_db",
    "loudness_peaks_per_s",
    "spectral_slope_mean_db_per_khz",
    "spectral_slope_std_db_per_khz",
    "alpha_ratio_mean_db",
    "alpha_ratio_std_db",
    "hammarberg_mean_db",
    "hammarberg_std_db",
    "spectral_centroid_mean_hz",
    "spectral_centroid_std_hz",
    "spectral_flux_mean",
    "spectral_flux_std",
    "spectral_flatness_mean",
    "mfcc1_mean",
    "mfcc1_std",
    "mfcc2_mean",
    "mfcc2_std",
    "mfcc3_mean",
    "mfcc3_std",
    "mfcc4_mean",
    "mfcc4_std",
    "jitter_local_mean",
    "shimmer_local_mean_db",
    "hnr_mean_db",
    "hnr_std_db",
    "voicing_strength_mean",
    "voiced_ratio",
    "pause_mean_s",
    "pauses_per_s",
    "speaking_rate_syl_per_s",
    "mfcc5_mean",
    "mfcc6_mean",
    "mfcc7_mean",
    "mfcc8_mean",
    "mfcc9_mean",
    "mfcc10_mean",
    "mfcc11_mean",
    "mfcc12_mean",
    "loudness_rising_slope_mean_db_per_s",
    "loudness_falling_slope_mean_db_per_s",
    "loudness_voiced_mean_db",
    "loudness_unvoiced_mean_db",
    "spectral_slope_unvoiced_mean_db_per_khz",
    "alpha_ratio_unvoiced_mean_db",
    "hammarberg_unvoiced_mean_db",
    "voiced_segment_mean_s",
    "voiced_segments_per_s",
];

/// Length of the feature vector.
pub const FEATURE_COUNT: usize = 60;

/// Index of a feature by name (for code that reads single features, e.g. calmness).
pub(crate) fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|&n| n == name)
}

/// Pauses shorter than this are ignored in the pause rhythm (stop closures, not pauses).
pub(crate) const MIN_PAUSE_S: f64 = 0.1;
/// Gaps longer than this are turn gaps (the other party talking, hold), not pauses: they are
/// left out of the pause rhythm and of the speaking span.
pub(crate) const MAX_PAUSE_S: f64 = 2.0;
/// F0 steps larger than this between consecutive voiced frames are octave jumps or new
/// phrases, not slopes, and are left out of the slope means.
const MAX_F0_STEP_ST: f64 = 2.0;

/// Running mean and variance (sums in f64; fine for the lengths of a call window).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    n: u64,
    sum: f64,
    sum_sq: f64,
}

impl Moments {
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        self.sum_sq += x * x;
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    /// Population standard deviation, 0 when fewer than two values.
    pub fn std(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let mean = self.mean();
        (self.sum_sq / self.n as f64 - mean * mean).max(0.0).sqrt()
    }
}

/// Histogram with `BINS` fixed bins over `[low, low + BINS * width)`; out-of-range values go to
/// the edge bins. Quantiles are interpolated within the bin.
#[derive(Debug, Clone, PartialEq)]
struct FixedHistogram<const BINS: usize> {
    low: f64,
    width: f64,
    counts: [u32; BINS],
    total: u64,
}

impl<const BINS: usize> FixedHistogram<BINS> {
    fn new(low: f64, width: f64) -> Self {
        Self {
            low,
            width,
            counts: [0; BINS],
            total: 0,
        }
    }

    fn add(&mut self, x: f64) {
        let bin = ((x - self.low) / self.width).floor();
        let bin = if bin.is_nan() {
            0
        } else {
            (bin.max(0.0) as usize).min(BINS - 1)
        };
        self.counts[bin] = self.counts[bin].saturating_add(1);
        self.total += 1;
    }

    /// Value below which `fraction` of the observations fall, 0 when empty.
    fn quantile(&self, fraction: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let target = fraction.clamp(0.0, 1.0) * self.total as f64;
        let mut seen = 0.0;
        for (bin, &count) in self.counts.iter().enumerate() {
            let count = f64::from(count);
            if count > 0.0 && seen + count >= target {
                let within = ((target - seen) / count).clamp(0.0, 1.0);
                return self.low + (bin as f64 + within) * self.width;
            }
            seen += count;
        }
        self.low + BINS as f64 * self.width
    }
}

/// Semitones of `hz` re [`SEMITONE_REFERENCE_HZ`].
pub(crate) fn hz_to_semitones(hz: f64) -> f64 {
    12.0 * (hz / SEMITONE_REFERENCE_HZ).log2()
}

/// Streaming functionals over one party's frames. See the module docs.
#[derive(Debug, Clone)]
pub struct FunctionalsAccumulator {
    frames: u64,
    speech_frames: u64,
    voiced_frames: u64,
    syllables: u64,
    f0: Moments,
    f0_hist: FixedHistogram<1000>,
    rising: Moments,
    falling: Moments,
    previous_f0_st: Option<f64>,
    loudness: Moments,
    loudness_hist: FixedHistogram<600>,
    /// The last two speech-frame loudness values, for local-maximum detection.
    loudness_prev: [f64; 2],
    loudness_seen: u8,
    loudness_peaks: u64,
    slope: Moments,
    alpha: Moments,
    hammarberg: Moments,
    centroid: Moments,
    flux: Moments,
    flatness: Moments,
    mfcc: [Moments; 4],
    /// Means of MFCC 5..12.
    mfcc_high: [Moments; 8],
    loudness_rising: Moments,
    loudness_falling: Moments,
    loudness_voiced: Moments,
    loudness_unvoiced: Moments,
    slope_unvoiced: Moments,
    alpha_unvoiced: Moments,
    hammarberg_unvoiced: Moments,
    /// Voiced frames in the voiced run in progress.
    voiced_run: u64,
    voiced_segments: Moments,
    jitter: Moments,
    shimmer: Moments,
    hnr: Moments,
    voicing: Moments,
    /// Non-speech frames since the last speech frame (a pause in progress).
    gap_frames: u64,
    seen_speech: bool,
    pauses: Moments,
    /// Frames from the first to the last speech frame.
    span_frames: u64,
}

impl Default for FunctionalsAccumulator {
    fn default() -> Self {
        Self::new()
    }
}

/// Loudness peaks must rise at least this far over the previous frame's level (dB) to count.
const PEAK_MIN_RISE_DB: f64 = 0.0;

impl FunctionalsAccumulator {
    pub fn new() -> Self {
        Self {
            frames: 0,
            speech_frames: 0,
            voiced_frames: 0,
            syllables: 0,
            f0: Moments::default(),
            // 0..100 semitones re 27.5 Hz (27.5 Hz .. 8.9 kHz) in 0.1 st bins.
            f0_hist: FixedHistogram::new(0.0, 0.1),
            rising: Moments::default(),
            falling: Moments::default(),
            previous_f0_st: None,
            loudness: Moments::default(),
            // -120..0 dBFS in 0.2 dB bins.
            loudness_hist: FixedHistogram::new(-120.0, 0.2),
            loudness_prev: [0.0; 2],
            loudness_seen: 0,
            loudness_peaks: 0,
            slope: Moments::default(),
            alpha: Moments::default(),
            hammarberg: Moments::default(),
            centroid: Moments::default(),
            flux: Moments::default(),
            flatness: Moments::default(),
            mfcc: [Moments::default(); 4],
            mfcc_high: [Moments::default(); 8],
            loudness_rising: Moments::default(),
            loudness_falling: Moments::default(),
            loudness_voiced: Moments::default(),
            loudness_unvoiced: Moments::default(),
            slope_unvoiced: Moments::default(),
            alpha_unvoiced: Moments::default(),
            hammarberg_unvoiced: Moments::default(),
            voiced_run: 0,
            voiced_segments: Moments::default(),
            jitter: Moments::default(),
            shimmer: Moments::default(),
            hnr: Moments::default(),
            voicing: Moments::default(),
            gap_frames: 0,
            seen_speech: false,
            pauses: Moments::default(),
            span_frames: 0,
        }
    }

    /// Starts a new window. The accumulator holds no heap memory, so this does not allocate.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Adds one frame (frames of one channel, in time order).
    pub fn push(&mut self, frame: &FrameFeatures) {
        self.frames += 1;
        let speech = frame.activity == VoiceActivity::Speech;
        let voiced = speech && frame.voiced && frame.f0_hz > 0.0 && frame.f0_hz.is_finite();
        if !voiced {
            self.end_voiced_run();
        }
        if !speech {
            if self.seen_speech {
                self.gap_frames += 1;
            }
            self.previous_f0_st = None;
            self.loudness_seen = 0;
            return;
        }
        if self.seen_speech {
            let gap_s = self.gap_frames as f64 * FRAME_PERIOD_S;
            if gap_s > MAX_PAUSE_S {
                self.span_frames += 1;
            } else {
                self.span_frames += self.gap_frames + 1;
                if gap_s >= MIN_PAUSE_S {
                    self.pauses.add(gap_s);
                }
            }
        } else {
            self.span_frames = 1;
        }
        self.gap_frames = 0;
        self.seen_speech = true;
        self.speech_frames += 1;
        if frame.syllable_nucleus {
            self.syllables += 1;
        }

        let loudness = f64::from(frame.loudness_db);
        if loudness.is_finite() {
            self.loudness.add(loudness);
            self.loudness_hist.add(loudness);
            // Local maximum of the speech-frame loudness contour at the previous frame.
            if self.loudness_seen >= 2 {
                let [before, middle] = self.loudness_prev;
                if middle - before > PEAK_MIN_RISE_DB && middle >= loudness {
                    self.loudness_peaks += 1;
                }
            }
            if self.loudness_seen >= 1 {
                let slope = (loudness - self.loudness_prev[1]) / FRAME_PERIOD_S;
                if slope > 0.0 {
                    self.loudness_rising.add(slope);
                } else if slope < 0.0 {
                    self.loudness_falling.add(slope);
                }
            }
            if voiced {
                self.loudness_voiced.add(loudness);
            } else {
                self.loudness_unvoiced.add(loudness);
            }
            self.loudness_prev = [self.loudness_prev[1], loudness];
            self.loudness_seen = self.loudness_seen.saturating_add(1);
        }

        let s = &frame.spectral;
        add_finite(&mut self.slope, s.slope_db_per_khz);
        add_finite(&mut self.alpha, s.alpha_ratio_db);
        add_finite(&mut self.hammarberg, s.hammarberg_db);
        add_finite(&mut self.centroid, s.centroid_hz);
        add_finite(&mut self.flux, s.flux);
        add_finite(&mut self.flatness, s.flatness);
        for (m, &c) in self.mfcc.iter_mut().zip(&s.mfcc) {
            add_finite(m, c);
        }
        for (m, &c) in self.mfcc_high.iter_mut().zip(s.mfcc.iter().skip(4)) {
            add_finite(m, c);
        }
        if !voiced {
            add_finite(&mut self.slope_unvoiced, s.slope_db_per_khz);
            add_finite(&mut self.alpha_unvoiced, s.alpha_ratio_db);
            add_finite(&mut self.hammarberg_unvoiced, s.hammarberg_db);
        }
        add_finite(&mut self.voicing, frame.voicing_strength);

        if voiced {
            self.voiced_frames += 1;
            self.voiced_run += 1;
            let st = hz_to_semitones(f64::from(frame.f0_hz));
            self.f0.add(st);
            self.f0_hist.add(st);
            if let Some(previous) = self.previous_f0_st {
                let step = st - previous;
                if step.abs() <= MAX_F0_STEP_ST {
                    let slope = step / FRAME_PERIOD_S;
                    if step > 0.0 {
                        self.rising.add(slope);
                    } else if step < 0.0 {
                        self.falling.add(slope);
                    }
                }
            }
            self.previous_f0_st = Some(st);
            let q = &frame.voice_quality;
            add_finite(&mut self.jitter, q.jitter_local);
            add_finite(&mut self.shimmer, q.shimmer_local_db);
            add_finite(&mut self.hnr, q.hnr_db);
        } else {
            self.previous_f0_st = None;
        }
    }

    fn end_voiced_run(&mut self) {
        if self.voiced_run > 0 {
            self.voiced_segments
                .add(self.voiced_run as f64 * FRAME_PERIOD_S);
            self.voiced_run = 0;
        }
    }

    /// Seconds of speech (speech frames) in the window.
    pub fn speech_s(&self) -> f64 {
        self.speech_frames as f64 * FRAME_PERIOD_S
    }

    /// Seconds of voiced speech in the window.
    pub fn voiced_s(&self) -> f64 {
        self.voiced_frames as f64 * FRAME_PERIOD_S
    }

    /// Seconds of all frames pushed.
    pub fn duration_s(&self) -> f64 {
        self.frames as f64 * FRAME_PERIOD_S
    }

    /// The feature vector of the window so far (all finite).
    pub fn features(&self) -> [f32; FEATURE_COUNT] {
        // The voiced run in progress counts as a segment.
        let mut voiced_segments = self.voiced_segments;
        if self.voiced_run > 0 {
            voiced_segments.add(self.voiced_run as f64 * FRAME_PERIOD_S);
        }
        let f0_p20 = self.f0_hist.quantile(0.2);
        let f0_p50 = self.f0_hist.quantile(0.5);
        let f0_p80 = self.f0_hist.quantile(0.8);
        let l_p20 = self.loudness_hist.quantile(0.2);
        let l_p50 = self.loudness_hist.quantile(0.5);
        let l_p80 = self.loudness_hist.quantile(0.8);
        let speech_s = self.speech_s();
        let per_speech_s = |count: u64| {
            if speech_s > 0.0 {
                count as f64 / speech_s
            } else {
                0.0
            }
        };
        let span_s = self.span_frames as f64 * FRAME_PERIOD_S;
        let voiced_ratio = if self.speech_frames > 0 {
            self.voiced_frames as f64 / self.speech_frames as f64
        } else {
            0.0
        };
        let values: [f64; FEATURE_COUNT] = [
            self.f0.mean(),
            self.f0.std(),
            f0_p20,
            f0_p50,
            f0_p80,
            f0_p80 - f0_p20,
            self.rising.mean(),
            self.falling.mean(),
            self.loudness.mean(),
            self.loudness.std(),
            l_p20,
            l_p50,
            l_p80,
            l_p80 - l_p20,
            per_speech_s(self.loudness_peaks),
            self.slope.mean(),
            self.slope.std(),
            self.alpha.mean(),
            self.alpha.std(),
            self.hammarberg.mean(),
            self.hammarberg.std(),
            self.centroid.mean(),
            self.centroid.std(),
            self.flux.mean(),
            self.flux.std(),
            self.flatness.mean(),
            self.mfcc[0].mean(),
            self.mfcc[0].std(),
            self.mfcc[1].mean(),
            self.mfcc[1].std(),
            self.mfcc[2].mean(),
            self.mfcc[2].std(),
            self.mfcc[3].mean(),
            self.mfcc[3].std(),
            self.jitter.mean(),
            self.shimmer.mean(),
            self.hnr.mean(),
            self.hnr.std(),
            self.voicing.mean(),
            voiced_ratio,
            self.pauses.mean(),
            if span_s > 0.0 {
                self.pauses.count() as f64 / span_s
            } else {
                0.0
            },
            per_speech_s(self.syllables),
            self.mfcc_high[0].mean(),
            self.mfcc_high[1].mean(),
            self.mfcc_high[2].mean(),
            self.mfcc_high[3].mean(),
            self.mfcc_high[4].mean(),
            self.mfcc_high[5].mean(),
            self.mfcc_high[6].mean(),
            self.mfcc_high[7].mean(),
            self.loudness_rising.mean(),
            self.loudness_falling.mean(),
            self.loudness_voiced.mean(),
            self.loudness_unvoiced.mean(),
            self.slope_unvoiced.mean(),
            self.alpha_unvoiced.mean(),
            self.hammarberg_unvoiced.mean(),
            voiced_segments.mean(),
            per_speech_s(voiced_segments.count()),
        ];
        values.map(|v| if v.is_finite() { v as f32 } else { 0.0 })
    }
}

fn add_finite(m: &mut Moments, x: f32) {
    if x.is_finite() {
        m.add(f64::from(x));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::voice_quality::VoiceQuality;

    fn frame(index: u64, f0_hz: f32, loudness_db: f32, speech: bool) -> FrameFeatures {
        let mut f = FrameFeatures {
            index,
            f0_hz,
            voiced: f0_hz > 0.0,
            voicing_strength: if f0_hz > 0.0 { 0.9 } else { 0.1 },
            loudness_db,
            activity: if speech {
                VoiceActivity::Speech
            } else {
                VoiceActivity::Silence
            },
            ..FrameFeatures::default()
        };
        f.voice_quality = VoiceQuality {
            jitter_local: if f0_hz > 0.0 { 0.01 } else { f32::NAN },
            shimmer_local_db: f32::NAN,
            hnr_db: if f0_hz > 0.0 { 15.0 } else { f32::NAN },
        };
        f
    }

    fn get(v: &[f32; FEATURE_COUNT], name: &str) -> f32 {
        v[feature_index(name).expect(name)]
    }

    #[test]
    fn names_are_unique_and_complete() {
        for (i, a) in FEATURE_NAMES.iter().enumerate() {
            assert!(!FEATURE_NAMES[i + 1..].contains(a), "{a} twice");
        }
    }

    #[test]
    fn empty_window_is_all_zero_and_finite() {
        let acc = FunctionalsAccumulator::new();
        assert!(acc.features().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn constant_pitch_and_level() {
        let mut acc = FunctionalsAccumulator::new();
        for i in 0..200 {
            acc.push(&frame(i, 110.0, -30.0, true));
        }
        let v = acc.features();
        // 110 Hz is two octaves above 27.5 Hz: 24 semitones.
        assert!((get(&v, "f0_mean_st") - 24.0).abs() < 1e-4);
        assert!(get(&v, "f0_std_st").abs() < 1e-3);
        assert!((get(&v, "f0_p50_st") - 24.0).abs() < 0.11);
        assert!(get(&v, "f0_range_p20_p80_st") < 0.11);
        assert!((get(&v, "loudness_mean_db") + 30.0).abs() < 1e-4);
        assert!((get(&v, "loudness_p50_db") + 30.0).abs() < 0.21);
        assert!((get(&v, "voiced_ratio") - 1.0).abs() < 1e-6);
        assert!((get(&v, "jitter_local_mean") - 0.01).abs() < 1e-6);
        assert!((get(&v, "hnr_mean_db") - 15.0).abs() < 1e-4);
        assert_eq!(get(&v, "shimmer_local_mean_db"), 0.0, "NaN skipped");
        assert_eq!(get(&v, "pauses_per_s"), 0.0);
        assert!((acc.speech_s() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn uniform_pitch_ramp_statistics() {
        // F0 rising linearly in semitones from 20 to 30 st over 1000 voiced frames:
        // mean 25, std 10/sqrt(12), p20 22, p80 28, rising slope 10 st / 10 s = 1 st/s.
        let mut acc = FunctionalsAccumulator::new();
        for i in 0..1000u64 {
            let st = 20.0 + 10.0 * i as f64 / 999.0;
            let hz = SEMITONE_REFERENCE_HZ * 2f64.powf(st / 12.0);
            acc.push(&frame(i, hz as f32, -30.0, true));
        }
        let v = acc.features();
        assert!((get(&v, "f0_mean_st") - 25.0).abs() < 1e-3);
        assert!((get(&v, "f0_std_st") - 10.0 / 12f32.sqrt()).abs() < 0.01);
        assert!((get(&v, "f0_p20_st") - 22.0).abs() < 0.1);
        assert!((get(&v, "f0_p80_st") - 28.0).abs() < 0.1);
        assert!((get(&v, "f0_rising_slope_mean_st_per_s") - 1.0).abs() < 0.01);
        assert_eq!(get(&v, "f0_falling_slope_mean_st_per_s"), 0.0);
    }

    #[test]
    fn pauses_voicing_and_rate() {
        // 10 cycles of 0.5 s speech (half voiced, a nucleus in each) + 0.3 s silence.
        let mut acc = FunctionalsAccumulator::new();
        let mut index = 0;
        for _ in 0..10 {
            for k in 0..50 {
                let mut f = frame(index, if k < 25 { 150.0 } else { 0.0 }, -25.0, true);
                f.syllable_nucleus = k == 10;
                acc.push(&f);
                index += 1;
            }
            for _ in 0..30 {
                acc.push(&frame(index, 0.0, -80.0, false));
                index += 1;
            }
        }
        let v = acc.features();
        assert!((get(&v, "voiced_ratio") - 0.5).abs() < 1e-6);
        assert!((get(&v, "pause_mean_s") - 0.3).abs() < 1e-6);
        // 9 pauses inside a span of 10 * 0.5 + 9 * 0.3 = 7.7 s; the trailing silence is no pause.
        assert!((get(&v, "pauses_per_s") - 9.0 / 7.7).abs() < 1e-4);
        // 10 syllables in 5 s of speech.
        assert!((get(&v, "speaking_rate_syl_per_s") - 2.0).abs() < 1e-6);
        // 10 voiced segments of 0.25 s in 5 s of speech.
        assert!((get(&v, "voiced_segment_mean_s") - 0.25).abs() < 1e-6);
        assert!((get(&v, "voiced_segments_per_s") - 2.0).abs() < 1e-6);
        // Loudness of the silence frames is not counted.
        assert!((get(&v, "loudness_mean_db") + 25.0).abs() < 1e-4);
    }

    #[test]
    fn turn_gaps_are_not_pauses() {
        let mut acc = FunctionalsAccumulator::new();
        let mut index = 0;
        for gap in [50u64, 500] {
            for _ in 0..100 {
                acc.push(&frame(index, 150.0, -25.0, true));
                index += 1;
            }
            for _ in 0..gap {
                acc.push(&frame(index, 0.0, -80.0, false));
                index += 1;
            }
        }
        acc.push(&frame(index, 150.0, -25.0, true));
        let v = acc.features();
        // Only the 0.5 s gap is a pause; the 5 s gap is a turn gap.
        assert!((get(&v, "pause_mean_s") - 0.5).abs() < 1e-6);
        assert!((get(&v, "pauses_per_s") - 1.0 / 2.51).abs() < 1e-4);
    }

    #[test]
    fn reset_starts_a_new_window() {
        let mut acc = FunctionalsAccumulator::new();
        for i in 0..100 {
            acc.push(&frame(i, 200.0, -20.0, true));
        }
        acc.reset();
        assert_eq!(acc.speech_s(), 0.0);
        for i in 0..100 {
            acc.push(&frame(i, 110.0, -30.0, true));
        }
        let v = acc.features();
        assert!((get(&v, "f0_p50_st") - 24.0).abs() < 0.11);
        assert!((get(&v, "loudness_p80_db") + 30.0).abs() < 0.21);
    }

    #[test]
    fn hostile_values_stay_finite() {
        let mut acc = FunctionalsAccumulator::new();
        for i in 0..50 {
            let mut f = frame(i, f32::INFINITY, f32::NAN, true);
            f.spectral.centroid_hz = f32::NAN;
            acc.push(&f);
        }
        assert!(acc.features().iter().all(|v| v.is_finite()));
    }
}
