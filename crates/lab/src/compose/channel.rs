//! The telephone channel: 300-3400 Hz band-pass (4th-order Butterworth high-pass and low-pass,
//! each two biquads), crosstalk leakage between the two channels, white line noise.

use attune_core::rng::SplitMix64;

/// Lower edge of the telephone band.
pub const TELEPHONE_LOW_HZ: f64 = 300.0;
/// Upper edge of the telephone band.
pub const TELEPHONE_HIGH_HZ: f64 = 3_400.0;

/// Q of the two sections of a 4th-order Butterworth filter.
const BUTTERWORTH4_Q: [f64; 2] = [0.541_196_100_146_197, 1.306_562_964_876_376_6];

/// One second-order section (RBJ cookbook coefficients, transposed direct form II, `f64` state).
#[derive(Debug, Clone)]
pub struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    z: [f64; 2],
}

impl Biquad {
    fn new(sample_rate_hz: f64, cutoff_hz: f64, q: f64, high_pass: bool) -> Self {
        let w0 = 2.0 * std::f64::consts::PI * cutoff_hz / sample_rate_hz;
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * q);
        let a0 = 1.0 + alpha;
        let (b0, b1) = if high_pass {
            ((1.0 + cos) / 2.0, -(1.0 + cos))
        } else {
            ((1.0 - cos) / 2.0, 1.0 - cos)
        };
        Self {
            b: [b0 / a0, b1 / a0, b0 / a0],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
            z: [0.0; 2],
        }
    }

    /// A Butterworth low-pass section.
    pub fn low_pass(sample_rate_hz: f64, cutoff_hz: f64, q: f64) -> Self {
        Self::new(sample_rate_hz, cutoff_hz, q, false)
    }

    /// A Butterworth high-pass section.
    pub fn high_pass(sample_rate_hz: f64, cutoff_hz: f64, q: f64) -> Self {
        Self::new(sample_rate_hz, cutoff_hz, q, true)
    }

    #[inline]
    fn tick(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.z[0];
        self.z[0] = self.b[1] * x - self.a[0] * y + self.z[1];
        self.z[1] = self.b[2] * x - self.a[1] * y;
        y
    }
}

/// The 300-3400 Hz telephone band-pass: 4th-order Butterworth high-pass at 300 Hz and low-pass
/// at 3400 Hz (the low-pass is left out when 3400 Hz is not below Nyquist).
#[derive(Debug, Clone)]
pub struct TelephoneFilter {
    sections: Vec<Biquad>,
}

impl TelephoneFilter {
    /// A filter for `sample_rate_hz` (at least 8 kHz).
    pub fn new(sample_rate_hz: u32) -> Self {
        let rate = f64::from(sample_rate_hz);
        let mut sections: Vec<Biquad> = BUTTERWORTH4_Q
            .iter()
            .map(|&q| Biquad::high_pass(rate, TELEPHONE_LOW_HZ, q))
            .collect();
        if TELEPHONE_HIGH_HZ < 0.49 * rate {
            sections.extend(
                BUTTERWORTH4_Q
                    .iter()
                    .map(|&q| Biquad::low_pass(rate, TELEPHONE_HIGH_HZ, q)),
            );
        }
        Self { sections }
    }

    /// Filters `samples` in place (state carries over between calls).
    pub fn process(&mut self, samples: &mut [f32]) {
        for x in samples {
            let mut v = f64::from(*x);
            for s in &mut self.sections {
                v = s.tick(v);
            }
            *x = v as f32;
        }
    }
}

/// Adds `gain * source[i - delay]` to `target[i]`.
pub fn add_delayed(target: &mut [f32], source: &[f32], gain: f32, delay_samples: usize) {
    for (t, s) in target.iter_mut().skip(delay_samples).zip(source) {
        *t += gain * s;
    }
}

/// Adds white Gaussian noise of RMS `level_dbfs` (relative to full scale 1.0).
pub fn add_noise(target: &mut [f32], level_dbfs: f64, rng: &mut SplitMix64) {
    let sigma = 10f64.powf(level_dbfs / 20.0);
    for t in target {
        *t += (sigma * rng.gaussian()) as f32;
    }
}

/// dB of a linear amplitude ratio.
pub fn amplitude_db(ratio: f64) -> f64 {
    20.0 * ratio.max(1e-12).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gain_db(freq_hz: f64) -> f64 {
        let rate = 8_000;
        let n = 16_000;
        let mut x: Vec<f32> = (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * freq_hz * i as f64 / rate as f64).sin() as f32)
            .collect();
        let rms = |v: &[f32]| {
            (v.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let before = rms(&x[8_000..]);
        TelephoneFilter::new(rate).process(&mut x);
        amplitude_db(rms(&x[8_000..]) / before)
    }

    #[test]
    fn band_pass_shape() {
        assert!(gain_db(1_000.0).abs() < 1.0, "{}", gain_db(1_000.0));
        assert!(gain_db(100.0) < -20.0, "{}", gain_db(100.0));
        assert!(gain_db(3_900.0) < -20.0, "{}", gain_db(3_900.0));
        assert!(gain_db(300.0) > -4.0 && gain_db(300.0) < -2.0);
    }
}
