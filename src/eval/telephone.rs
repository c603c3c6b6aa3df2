//! A telephone channel for evaluations: 8 kHz, 300–3400 Hz band (4th-order Butterworth high-pass
//! and low-pass, as cascaded biquads), G.711 mu-law round trip — the conventions in
//! `shared/data/README.md`. Used by `attune eval rate --telephone` to analyse clean corpora as a
//! call center would hear them.

use crate::audio::g711::{decode_mulaw, encode_mulaw};
use crate::audio::{AudioError, Resampler};
use crate::dsp::ANALYSIS_RATE_HZ;

/// Telephone band edges, Hz.
pub const BAND_LOW_HZ: f64 = 300.0;
pub const BAND_HIGH_HZ: f64 = 3400.0;

/// Q of the two sections of a 4th-order Butterworth filter.
const BUTTERWORTH_4_Q: [f64; 2] = [0.541_196_100_146_197, 1.306_562_964_876_376_6];

/// Direct-form-I biquad (RBJ cookbook coefficients), f64 state.
#[derive(Debug, Clone, Copy)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
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
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    fn tick(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[0] * self.y[0]
            - self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
}

/// 300–3400 Hz band-pass (4th-order Butterworth high-pass and low-pass) at a given rate.
#[derive(Debug, Clone)]
pub struct TelephoneBand {
    sections: [Biquad; 4],
}

impl TelephoneBand {
    pub fn new(sample_rate_hz: u32) -> Self {
        let rate = f64::from(sample_rate_hz);
        let [q1, q2] = BUTTERWORTH_4_Q;
        Self {
            sections: [
                Biquad::new(rate, BAND_LOW_HZ, q1, true),
                Biquad::new(rate, BAND_LOW_HZ, q2, true),
                Biquad::new(rate, BAND_HIGH_HZ, q1, false),
                Biquad::new(rate, BAND_HIGH_HZ, q2, false),
            ],
        }
    }

    /// Filters in place.
    pub fn process(&mut self, samples: &mut [f32]) {
        for sample in samples {
            let mut x = f64::from(*sample);
            for section in &mut self.sections {
                x = section.tick(x);
            }
            *sample = x as f32;
        }
    }
}

/// G.711 mu-law encode and decode of each sample (full scale 1.0 = 32767).
pub fn mulaw_round_trip(samples: &mut [f32]) {
    for sample in samples {
        let linear = (*sample * 32_767.0).round().clamp(-32_768.0, 32_767.0) as i16;
        *sample = f32::from(decode_mulaw(encode_mulaw(linear))) / 32_768.0;
    }
}

/// Passes one channel at `sample_rate_hz` through the telephone channel; returns samples at
/// [`ANALYSIS_RATE_HZ`] (8 kHz).
pub fn telephone_channel(samples: &[f32], sample_rate_hz: u32) -> Result<Vec<f32>, AudioError> {
    let mut resampler = Resampler::try_new(sample_rate_hz, ANALYSIS_RATE_HZ)?;
    let mut out = Vec::with_capacity(resampler.expected_output_len(samples.len() as u64) as usize);
    resampler.process(samples, &mut out);
    resampler.finish(&mut out);
    TelephoneBand::new(ANALYSIS_RATE_HZ).process(&mut out);
    mulaw_round_trip(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone_gain_db(freq_hz: f64) -> f64 {
        let rate = f64::from(ANALYSIS_RATE_HZ);
        let mut x: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f64::consts::PI * freq_hz * i as f64 / rate).sin() as f32)
            .collect();
        TelephoneBand::new(ANALYSIS_RATE_HZ).process(&mut x);
        let tail = &x[8_000..];
        let rms =
            (tail.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
        20.0 * (rms * 2f64.sqrt()).log10()
    }

    #[test]
    fn band_pass_is_flat_inside_and_steep_outside() {
        assert!(tone_gain_db(1000.0).abs() < 0.5);
        assert!((tone_gain_db(300.0) + 3.0).abs() < 0.5);
        assert!((tone_gain_db(3400.0) + 3.0).abs() < 0.7);
        assert!(tone_gain_db(100.0) < -30.0);
        assert!(tone_gain_db(75.0) < -40.0);
    }

    #[test]
    fn channel_resamples_and_keeps_speech_band_level() {
        let rate = 22_050;
        let x: Vec<f32> = (0..rate)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 800.0 * i as f32 / rate as f32).sin())
            .collect();
        let y = telephone_channel(&x, rate).unwrap();
        assert_eq!(y.len(), 8_000);
        let peak = y[2_000..6_000].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.5).abs() < 0.03, "{peak}");
        let mut quiet = vec![1e-3f32; 4];
        mulaw_round_trip(&mut quiet);
        assert!((quiet[0] - 1e-3).abs() < 1e-4);
    }
}
