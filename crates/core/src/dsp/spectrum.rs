//! The one windowed spectrum each frame shares: a 256-point (32 ms) Hann-windowed real FFT at
//! 8 kHz, reduced to mel-band energies, and the spectral-shape measures derived from them
//! (centroid, slope, alpha ratio, Hammarberg index, flux, MFCCs).
//!
//! Everything is computed from one transform per frame; the band reduction keeps the per-frame
//! `ln` calls to one per mel band (24), not one per FFT bin.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{RealFftPlanner, RealToComplex};

use super::ANALYSIS_RATE_HZ;

/// Samples in the spectrum window (32 ms at 8 kHz).
pub const SPECTRUM_WINDOW_SAMPLES: usize = 256;
/// Power-spectrum bins (DC to Nyquist).
pub(crate) const SPECTRUM_BINS: usize = SPECTRUM_WINDOW_SAMPLES / 2 + 1;
/// Mel bands between [`MEL_LOW_HZ`] and [`MEL_HIGH_HZ`].
pub(crate) const MEL_BANDS: usize = 24;
/// Lower edge of the mel filterbank: the telephone band starts at 300 Hz.
pub(crate) const MEL_LOW_HZ: f32 = 250.0;
/// Upper edge of the mel filterbank: the telephone band ends at 3400 Hz.
pub(crate) const MEL_HIGH_HZ: f32 = 3600.0;
/// Cepstral coefficients reported (c1..c12; c0 is the band-energy mean and left out).
pub(crate) const MFCC_COUNT: usize = 12;

/// Floor added to energies before taking logs (about -120 dBFS).
const ENERGY_FLOOR: f32 = 1e-12;

/// Spectral shape of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SpectralShape {
    /// Power-weighted mean frequency over 250–3600 Hz, Hz.
    pub centroid_hz: f32,
    /// Least-squares slope of mel-band level against frequency, dB per kHz.
    pub slope_db_per_khz: f32,
    /// Level of 1–3.4 kHz over level of 0.3–1 kHz, dB (eGeMAPS' alpha ratio, telephone band).
    pub alpha_ratio_db: f32,
    /// Strongest band in 2–3.4 kHz against strongest band in 0.3–2 kHz, dB (Hammarberg index,
    /// telephone band; more negative = more high-frequency energy).
    pub hammarberg_db: f32,
    /// Change of the level-normalised mel spectrum since the previous frame (0 = identical).
    pub flux: f32,
    /// Spectral flatness of the mel bands in [0, 1] (1 = white noise, near 0 = tonal/voiced).
    pub flatness: f32,
    /// Mel-frequency cepstral coefficients c1..c12 (natural-log mel energies, orthonormal DCT-II).
    pub mfcc: [f32; MFCC_COUNT],
    /// Energy in the 300–2500 Hz band (where vowel formants carry the syllable nuclei), dBFS.
    pub vowel_band_db: f32,
    /// Level of each mel band (250–3600 Hz), dBFS.
    pub band_db: [f32; MEL_BANDS],
}

/// Computes the shared spectrum of each frame. Plans and buffers are made once.
pub struct SpectrumAnalyzer {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// Sum of squared window values, for dBFS normalisation.
    window_power: f32,
    input: Vec<f32>,
    output: Vec<Complex32>,
    scratch: Vec<Complex32>,
    power: Vec<f32>,
    /// Triangular mel filters as (first bin, weights).
    mel_filters: Vec<(usize, Vec<f32>)>,
    mel_centres_khz: [f32; MEL_BANDS],
    mel_energy: [f32; MEL_BANDS],
    mel_log: [f32; MEL_BANDS],
    previous_normalised: [f32; MEL_BANDS],
    has_previous: bool,
    /// DCT-II basis, MFCC_COUNT x MEL_BANDS.
    dct: Vec<[f32; MEL_BANDS]>,
    bin_hz: f32,
}

fn hz_to_mel(hz: f32) -> f32 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f32) -> f32 {
    700.0 * (10f32.powf(mel / 2595.0) - 1.0)
}

impl SpectrumAnalyzer {
    pub fn new() -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(SPECTRUM_WINDOW_SAMPLES);
        let window: Vec<f32> = (0..SPECTRUM_WINDOW_SAMPLES)
            .map(|i| {
                let phase =
                    2.0 * std::f32::consts::PI * (i as f32 + 0.5) / SPECTRUM_WINDOW_SAMPLES as f32;
                0.5 - 0.5 * phase.cos()
            })
            .collect();
        let window_power = window.iter().map(|w| w * w).sum();
        let bin_hz = ANALYSIS_RATE_HZ as f32 / SPECTRUM_WINDOW_SAMPLES as f32;

        let mel_low = hz_to_mel(MEL_LOW_HZ);
        let mel_high = hz_to_mel(MEL_HIGH_HZ);
        let edges_hz: Vec<f32> = (0..MEL_BANDS + 2)
            .map(|i| mel_to_hz(mel_low + (mel_high - mel_low) * i as f32 / (MEL_BANDS + 1) as f32))
            .collect();
        let mut mel_filters = Vec::with_capacity(MEL_BANDS);
        let mut mel_centres_khz = [0.0; MEL_BANDS];
        for band in 0..MEL_BANDS {
            let (lo, centre, hi) = (edges_hz[band], edges_hz[band + 1], edges_hz[band + 2]);
            mel_centres_khz[band] = centre / 1000.0;
            let first_bin = (lo / bin_hz).ceil() as usize;
            let last_bin = ((hi / bin_hz).floor() as usize).min(SPECTRUM_BINS - 1);
            let weights: Vec<f32> = (first_bin..=last_bin)
                .map(|bin| {
                    let f = bin as f32 * bin_hz;
                    if f <= centre {
                        (f - lo) / (centre - lo)
                    } else {
                        (hi - f) / (hi - centre)
                    }
                    .max(0.0)
                })
                .collect();
            mel_filters.push((first_bin, weights));
        }
        let dct = (1..=MFCC_COUNT)
            .map(|k| {
                let mut row = [0.0; MEL_BANDS];
                for (n, value) in row.iter_mut().enumerate() {
                    *value = (2.0 / MEL_BANDS as f32).sqrt()
                        * (std::f32::consts::PI * k as f32 * (n as f32 + 0.5) / MEL_BANDS as f32)
                            .cos();
                }
                row
            })
            .collect();
        let input = fft.make_input_vec();
        let output = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Self {
            fft,
            window,
            window_power,
            input,
            output,
            scratch,
            power: vec![0.0; SPECTRUM_BINS],
            mel_filters,
            mel_centres_khz,
            mel_energy: [0.0; MEL_BANDS],
            mel_log: [0.0; MEL_BANDS],
            previous_normalised: [0.0; MEL_BANDS],
            has_previous: false,
            dct,
            bin_hz,
        }
    }

    /// Windows `frame` (exactly [`SPECTRUM_WINDOW_SAMPLES`] samples centred on the frame) and
    /// computes its power spectrum. Returns the frame's loudness in dBFS: the Hann-weighted mean
    /// square, so a full-scale sine reads -3.01 dBFS and digital silence -120 dBFS.
    pub fn analyze(&mut self, frame: &[f32]) -> f32 {
        assert_eq!(
            frame.len(),
            SPECTRUM_WINDOW_SAMPLES,
            "spectrum window length"
        );
        let mut weighted_power = 0.0f32;
        for ((slot, &sample), &w) in self.input.iter_mut().zip(frame).zip(&self.window) {
            let value = sample * w;
            *slot = value;
            weighted_power += value * value;
        }
        // The input and scratch lengths come from the plan, so processing cannot fail.
        let _ = self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch);
        for (p, c) in self.power.iter_mut().zip(&self.output) {
            *p = c.norm_sqr();
        }
        super::loudness::mean_square_to_dbfs(weighted_power / self.window_power)
    }

    /// Power spectrum of the last analysed frame (unnormalised, [`SPECTRUM_BINS`] bins).
    pub fn power(&self) -> &[f32] {
        &self.power
    }

    /// Spectral shape of the last analysed frame; updates the flux reference.
    pub fn shape(&mut self) -> SpectralShape {
        // Normalise so that a full-scale sine in one bin gives the same level as loudness.
        let norm = 2.0 / (self.window_power * SPECTRUM_WINDOW_SAMPLES as f32);
        let mut total = 0.0f32;
        for (band, (first_bin, weights)) in self.mel_filters.iter().enumerate() {
            let mut energy = 0.0;
            for (w, p) in weights.iter().zip(&self.power[*first_bin..]) {
                energy += w * p;
            }
            let energy = energy * norm;
            self.mel_energy[band] = energy;
            total += energy;
        }
        let mut sum_log = 0.0;
        for (log, &energy) in self.mel_log.iter_mut().zip(&self.mel_energy) {
            *log = (energy + ENERGY_FLOOR).ln();
            sum_log += *log;
        }
        let mean_log = sum_log / MEL_BANDS as f32;
        let flatness = (mean_log.exp() / (total / MEL_BANDS as f32 + ENERGY_FLOOR)).clamp(0.0, 1.0);

        // Centroid and band levels straight from the bins inside the telephone band.
        let lo_bin = (300.0 / self.bin_hz).ceil() as usize;
        let k1_bin = (1000.0 / self.bin_hz).round() as usize;
        let k2_bin = (2000.0 / self.bin_hz).round() as usize;
        let k25_bin = (2500.0 / self.bin_hz).round() as usize;
        let hi_bin = ((3400.0 / self.bin_hz).floor() as usize).min(SPECTRUM_BINS - 1);
        let mut weighted = 0.0;
        let mut band_total = 0.0;
        let (mut low, mut high, mut vowel) = (0.0f32, 0.0f32, 0.0f32);
        let (mut max_low, mut max_high) = (0.0f32, 0.0f32);
        for bin in lo_bin..=hi_bin {
            let p = self.power[bin];
            weighted += p * bin as f32;
            band_total += p;
            if bin < k1_bin {
                low += p;
            } else {
                high += p;
            }
            if bin < k25_bin {
                vowel += p;
            }
            if bin < k2_bin {
                max_low = max_low.max(p);
            } else {
                max_high = max_high.max(p);
            }
        }
        let centroid_hz = if band_total > 0.0 {
            weighted / band_total * self.bin_hz
        } else {
            0.0
        };
        let db = |x: f32| 10.0 * (x + ENERGY_FLOOR).log10();
        let alpha_ratio_db = db(high * norm) - db(low * norm);
        let hammarberg_db = db(max_low * norm) - db(max_high * norm);
        let vowel_band_db = db(vowel * norm);

        // Slope: least squares of 10*log10(band energy) on band centre (kHz).
        let to_db = 10.0 / std::f32::consts::LN_10;
        let mean_x = self.mel_centres_khz.iter().sum::<f32>() / MEL_BANDS as f32;
        let mut sxy = 0.0;
        let mut sxx = 0.0;
        for (&x, &log) in self.mel_centres_khz.iter().zip(&self.mel_log) {
            let dx = x - mean_x;
            sxy += dx * (log - mean_log) * to_db;
            sxx += dx * dx;
        }
        let slope_db_per_khz = sxy / sxx;

        // Flux on the level-normalised band spectrum.
        let mut flux = 0.0;
        let inv_total = 1.0 / (total + ENERGY_FLOOR);
        for (prev, &energy) in self.previous_normalised.iter_mut().zip(&self.mel_energy) {
            let normalised = (energy * inv_total).sqrt();
            let d = normalised - *prev;
            flux += d * d;
            *prev = normalised;
        }
        let flux = if self.has_previous { flux.sqrt() } else { 0.0 };
        self.has_previous = true;

        let mut band_db = [0.0; MEL_BANDS];
        for (out, &log) in band_db.iter_mut().zip(&self.mel_log) {
            *out = log * to_db;
        }
        let mut mfcc = [0.0; MFCC_COUNT];
        for (c, row) in mfcc.iter_mut().zip(&self.dct) {
            *c = row.iter().zip(&self.mel_log).map(|(a, b)| a * b).sum();
        }
        SpectralShape {
            centroid_hz,
            slope_db_per_khz,
            alpha_ratio_db,
            hammarberg_db,
            flux,
            flatness,
            mfcc,
            vowel_band_db,
            band_db,
        }
    }
}

impl Default for SpectrumAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}
