//! A telephone channel for evaluations: 8 kHz, 300–3400 Hz band ([`TelephoneFilter`], the
//! composer's 4th-order Butterworth high-pass and low-pass), G.711 mu-law round trip — the
//! conventions in `shared/data/README.md`. Used by `attune eval rate --telephone` to analyse clean corpora as a
//! call center would hear them.

use crate::compose::channel::TelephoneFilter;
use attune_core::audio::g711::{decode_mulaw, encode_mulaw};
use attune_core::audio::{AudioError, Resampler};
use attune_core::dsp::ANALYSIS_RATE_HZ;

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
    TelephoneFilter::new(ANALYSIS_RATE_HZ).process(&mut out);
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
        TelephoneFilter::new(ANALYSIS_RATE_HZ).process(&mut x);
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
