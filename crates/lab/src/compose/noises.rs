//! Non-speech mouth sounds placed before utterances: breaths and lip smacks/clicks. They go into
//! the party's channel but never into the truth: a breath is not speech.
//!
//! - **Breath**: white noise through a 400 Hz high-pass and a broad resonance near 1.6 kHz (the
//!   turbulent, formant-less spectrum of an inhalation through an open mouth), under a smooth
//!   envelope (rise over 40 % of it, decay over the rest), 0.25-0.5 s, its RMS typically 16-26 dB
//!   below the speech that follows.
//! - **Click** (lip smack, tongue click): a few-millisecond damped oscillation near 2-3.5 kHz
//!   with a sharp onset, its RMS over its length 6-14 dB below the speech.
//!
//! Both are returned at unit RMS; the composer scales them to the utterance's level.

use serde::{Deserialize, Serialize};

use attune_core::rng::SplitMix64;

/// Kind of a non-speech sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseKind {
    Breath,
    Click,
}

/// One non-speech sound before an utterance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseSpec {
    pub kind: NoiseKind,
    /// The sound ends this long before the utterance's speech onset, seconds.
    pub lead_s: f64,
    /// Its duration, seconds.
    pub dur_s: f64,
    /// Its RMS relative to the utterance's speech RMS, dB.
    pub rel_db: f64,
}

impl NoiseSpec {
    /// Checks the fields; returns a message naming the bad value.
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=5.0).contains(&self.lead_s) {
            return Err(format!("noise lead_s {} is outside 0..=5", self.lead_s));
        }
        if !(0.001..=2.0).contains(&self.dur_s) {
            return Err(format!("noise dur_s {} is outside 0.001..=2", self.dur_s));
        }
        if !(-60.0..=0.0).contains(&self.rel_db) {
            return Err(format!("noise rel_db {} is outside -60..=0", self.rel_db));
        }
        Ok(())
    }
}

/// Samples of a sound of `kind`, `len` samples at `rate_hz`, unit RMS.
pub fn synthesize(kind: NoiseKind, len: usize, rate_hz: f64, rng: &mut SplitMix64) -> Vec<f32> {
    let mut out = vec![0.0f64; len];
    if len == 0 {
        return Vec::new();
    }
    match kind {
        NoiseKind::Breath => {
            // One-pole high-pass at 400 Hz, then a two-pole resonator (broad, Q ~ 1.2).
            let hp = (-2.0 * std::f64::consts::PI * 400.0 / rate_hz).exp();
            let centre = rng.range(1_300.0, 2_000.0).min(0.4 * rate_hz);
            let bw = centre / 1.2;
            let r = (-std::f64::consts::PI * bw / rate_hz).exp();
            let theta = 2.0 * std::f64::consts::PI * centre / rate_hz;
            let (a1, a2) = (2.0 * r * theta.cos(), -r * r);
            let (mut prev_in, mut prev_hp, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
            let rise = (0.4 * len as f64).max(1.0);
            for (k, o) in out.iter_mut().enumerate() {
                let x = rng.gaussian();
                let h = hp * (prev_hp + x - prev_in);
                prev_in = x;
                prev_hp = h;
                let y = h + a1 * y1 + a2 * y2;
                y2 = y1;
                y1 = y;
                let t = k as f64;
                let env = if t < rise {
                    (0.5 - 0.5 * (std::f64::consts::PI * t / rise).cos()).sqrt()
                } else {
                    let u = (t - rise) / (len as f64 - rise).max(1.0);
                    0.5 + 0.5 * (std::f64::consts::PI * u).cos()
                };
                // Half raw high-passed noise, half resonance: flat-ish but tilted, no harmonics.
                *o = env * (0.5 * h + 0.5 * y * (1.0 - r));
            }
        }
        NoiseKind::Click => {
            let freq = rng.range(2_000.0, 3_500.0).min(0.4 * rate_hz);
            let tau = len as f64 / 4.0;
            let phase = rng.range(0.0, std::f64::consts::TAU);
            for (k, o) in out.iter_mut().enumerate() {
                let t = k as f64;
                *o = (-t / tau).exp()
                    * (std::f64::consts::TAU * freq * t / rate_hz + phase).sin()
                    * (1.0 + 0.3 * rng.gaussian());
            }
        }
    }
    let rms = (out.iter().map(|x| x * x).sum::<f64>() / len as f64).sqrt();
    let scale = if rms > 0.0 { 1.0 / rms } else { 0.0 };
    out.iter().map(|x| (x * scale) as f32).collect()
}

/// Draws the sounds before one utterance, given the free time before its onset (seconds since
/// the party's own previous speech ended): a breath with chance `p_breath` (ending 0.03-0.2 s
/// before the onset), a click with chance `p_click` (just before the onset, or before the
/// breath). Only what fits in `free_s` minus 0.15 s is placed.
pub fn draw(rng: &mut SplitMix64, free_s: f64, p_breath: f64, p_click: f64) -> Vec<NoiseSpec> {
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let mut sounds = Vec::new();
    let room = free_s - 0.15;
    let mut used = 0.0;
    if rng.chance(p_breath) {
        let lead = round3(rng.range(0.03, 0.2));
        let dur = round3(rng.range(0.25, 0.5));
        if lead + dur <= room {
            sounds.push(NoiseSpec {
                kind: NoiseKind::Breath,
                lead_s: lead,
                dur_s: dur,
                rel_db: round3(rng.range(-26.0, -16.0)),
            });
            used = lead + dur;
        }
    }
    if rng.chance(p_click) {
        let dur = round3(rng.range(0.003, 0.008));
        let lead = if used > 0.0 && rng.chance(0.5) {
            round3(used + rng.range(0.02, 0.1))
        } else {
            round3(rng.range(0.01, 0.03))
        };
        let overlaps_breath = sounds
            .first()
            .is_some_and(|b| lead < b.lead_s + b.dur_s && b.lead_s < lead + dur);
        if lead + dur <= room && !overlaps_breath {
            sounds.push(NoiseSpec {
                kind: NoiseKind::Click,
                lead_s: lead,
                dur_s: dur,
                rel_db: round3(rng.range(-14.0, -6.0)),
            });
        }
    }
    sounds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band_energy(x: &[f32], rate: f64, lo: f64, hi: f64) -> f64 {
        // Plain DFT over a few bins: enough for a test.
        let n = x.len();
        let mut e = 0.0;
        let step = rate / n as f64;
        let mut f = lo;
        while f < hi {
            let (mut re, mut im) = (0.0, 0.0);
            for (k, v) in x.iter().enumerate() {
                let a = std::f64::consts::TAU * f * k as f64 / rate;
                re += f64::from(*v) * a.cos();
                im += f64::from(*v) * a.sin();
            }
            e += re * re + im * im;
            f += step * 4.0;
        }
        e
    }

    #[test]
    fn breath_is_unit_rms_broadband_above_low_frequencies() {
        let mut rng = SplitMix64::new(7);
        let x = synthesize(NoiseKind::Breath, 3_200, 8_000.0, &mut rng);
        assert_eq!(x.len(), 3_200);
        let rms = (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / 3_200.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-3, "{rms}");
        // Envelope: quiet at both ends, loud in the middle.
        let seg =
            |a: usize, b: usize| x[a..b].iter().map(|v| v.abs()).sum::<f32>() / (b - a) as f32;
        assert!(seg(0, 100) < 0.3 * seg(1_200, 1_400));
        assert!(seg(3_100, 3_200) < 0.3 * seg(1_200, 1_400));
        // More energy 1-2.5 kHz than below 300 Hz.
        let low = band_energy(&x, 8_000.0, 50.0, 300.0);
        let mid = band_energy(&x, 8_000.0, 1_000.0, 1_250.0);
        assert!(mid > 4.0 * low, "mid {mid} low {low}");
    }

    #[test]
    fn click_is_short_and_decays() {
        let mut rng = SplitMix64::new(3);
        let x = synthesize(NoiseKind::Click, 40, 8_000.0, &mut rng);
        assert_eq!(x.len(), 40);
        let head: f32 = x[..10].iter().map(|v| v * v).sum();
        let tail: f32 = x[30..].iter().map(|v| v * v).sum();
        assert!(head > 10.0 * tail);
    }

    #[test]
    fn draw_fits_the_free_time_and_is_deterministic() {
        let mut a = SplitMix64::new(11);
        let mut b = SplitMix64::new(11);
        for _ in 0..200 {
            let free = a.range(0.0, 2.0);
            let _ = b.range(0.0, 2.0);
            let sounds = draw(&mut a, free, 0.7, 0.4);
            assert_eq!(sounds, draw(&mut b, free, 0.7, 0.4));
            for s in &sounds {
                s.check().unwrap();
                assert!(s.lead_s + s.dur_s <= free - 0.15 + 1e-9);
                if s.kind == NoiseKind::Breath {
                    assert!((0.25..=0.5).contains(&s.dur_s));
                }
            }
        }
        assert!(draw(&mut a, 0.1, 1.0, 1.0).is_empty());
    }
}
