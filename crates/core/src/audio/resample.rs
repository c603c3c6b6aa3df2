//! Streaming resampling of one channel to the analysis rate.
//!
//! Built on rubato's synchronous FFT resampler ([`rubato::Fft`]), which filters with a windowed
//! sinc (Blackman-Harris squared) of one FFT block and is exact for any integer rate pair. This
//! wrapper adds what the analyzer needs on top:
//!
//! - **arbitrary chunk sizes**: input is gathered into fixed FFT blocks internally, so `process`
//!   takes any number of samples (0 included) and emits whatever is ready;
//! - **time alignment**: the filter's group delay (half a block, an exact whole number of output
//!   samples by construction) is dropped from the head of the output, so an event at `t` seconds
//!   in the input is at `t` seconds in the output;
//! - **exact length**: [`Resampler::finish`] flushes the tail so that the output over the whole
//!   stream has exactly `round(input_len * output_rate / input_rate)` samples (ties round half
//!   up); the last one or two output samples, which depend on input past the end, see zeros;
//! - **no allocation** in `process`/`finish` once built (appending to the caller's `Vec` may grow
//!   it; reuse it to avoid that);
//! - **pass-through** when both rates are equal (a plain copy, no delay).

use audioadapter_buffers::direct::SequentialSlice;
use rubato::{FixedSync, Resampler as _};

use super::{AudioError, MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ};

/// Input samples per FFT block we aim for: big enough for a sharp anti-aliasing filter (the
/// transition band shrinks as the block grows), small enough to keep the delay near 10-40 ms.
const TARGET_BLOCK_INPUT_SAMPLES: usize = 2048;
/// Output samples per FFT block we aim for at least: the anti-aliasing cutoff of rubato's FFT
/// resampler rises towards Nyquist as the output block grows (256 -> about 0.95 of Nyquist).
const TARGET_BLOCK_OUTPUT_SAMPLES: usize = 256;

/// Streaming resampler for one channel from `input_rate_hz` to `output_rate_hz`.
pub struct Resampler {
    input_rate_hz: u32,
    output_rate_hz: u32,
    /// `None` when both rates are equal (pass-through).
    engine: Option<FftEngine>,
    /// Input samples seen so far.
    input_samples: u64,
    /// Output samples emitted so far.
    output_samples: u64,
    finished: bool,
}

/// The rubato resampler and the fixed-size buffers around it.
struct FftEngine {
    fft: rubato::Fft<f32>,
    /// Input samples per block.
    block_in: usize,
    /// Output samples per block.
    block_out: usize,
    /// Input gathered for the next block; `pending` samples are valid.
    block: Vec<f32>,
    pending: usize,
    /// Output of one block.
    out_block: Vec<f32>,
    /// Output samples still to drop (the filter's group delay).
    delay_to_skip: usize,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn check_rate(rate_hz: u32, what: &str) -> Result<(), AudioError> {
    if !(MIN_SAMPLE_RATE_HZ..=MAX_SAMPLE_RATE_HZ).contains(&rate_hz) {
        return Err(AudioError::Unsupported(format!(
            "unsupported {what} sample rate {rate_hz} Hz (expected \
             {MIN_SAMPLE_RATE_HZ}..={MAX_SAMPLE_RATE_HZ})"
        )));
    }
    Ok(())
}

impl FftEngine {
    fn try_new(input_rate_hz: u32, output_rate_hz: u32) -> Result<Self, AudioError> {
        let g = gcd(u64::from(input_rate_hz), u64::from(output_rate_hz));
        let min_in = (u64::from(input_rate_hz) / g) as usize;
        let min_out = (u64::from(output_rate_hz) / g) as usize;
        // Whole number of minimal blocks, at least the target on both sides. An even count
        // makes half a block (the delay) a whole number of samples on both sides, so the
        // compensation is exact; only for near-coprime rates (a minimal block already longer
        // than the target, e.g. 8001 -> 8000 Hz) is an odd count kept, leaving at most one
        // sample of misalignment rather than doubling a block of a second or more.
        let mut units = TARGET_BLOCK_INPUT_SAMPLES
            .div_ceil(min_in)
            .max(TARGET_BLOCK_OUTPUT_SAMPLES.div_ceil(min_out))
            .max(1);
        if units % 2 == 1 && (units > 1 || min_in <= TARGET_BLOCK_INPUT_SAMPLES) {
            units += 1;
        }
        let block_in = units * min_in;
        let block_out = units * min_out;
        let fft = rubato::Fft::<f32>::new(
            input_rate_hz as usize,
            output_rate_hz as usize,
            block_in,
            1,
            FixedSync::Both,
        )
        .map_err(|e| {
            AudioError::Unsupported(format!(
                "cannot resample {input_rate_hz} Hz to {output_rate_hz} Hz: {e}"
            ))
        })?;
        debug_assert_eq!(fft.input_frames_next(), block_in);
        debug_assert_eq!(fft.output_frames_next(), block_out);
        let delay_to_skip = fft.output_delay();
        Ok(Self {
            fft,
            block_in,
            block_out,
            block: vec![0.0; block_in],
            pending: 0,
            out_block: vec![0.0; block_out],
            delay_to_skip,
        })
    }

    /// Resamples the (full) block, appending at most `limit` output samples after the delay.
    fn run_block(&mut self, output: &mut Vec<f32>, limit: u64) -> u64 {
        let emitted = {
            let (Ok(input), Ok(mut out)) = (
                SequentialSlice::new(&self.block[..], 1, self.block_in),
                SequentialSlice::new_mut(&mut self.out_block[..], 1, self.block_out),
            ) else {
                unreachable!("block buffers are sized for one channel of one block");
            };
            match self.fft.process_into_buffer(&input, &mut out, None) {
                Ok(_) => {}
                Err(e) => unreachable!("fixed-size block rejected by rubato: {e}"),
            }
            let skip = self.delay_to_skip.min(self.block_out);
            self.delay_to_skip -= skip;
            let ready = &self.out_block[skip..];
            let take = (ready.len() as u64).min(limit) as usize;
            output.extend_from_slice(&ready[..take]);
            take as u64
        };
        self.pending = 0;
        emitted
    }
}

impl Resampler {
    /// Builds a resampler; errors on rates outside the supported range
    /// ([`MIN_SAMPLE_RATE_HZ`]..=[`MAX_SAMPLE_RATE_HZ`]).
    pub fn try_new(input_rate_hz: u32, output_rate_hz: u32) -> Result<Self, AudioError> {
        check_rate(input_rate_hz, "input")?;
        check_rate(output_rate_hz, "output")?;
        let engine = if input_rate_hz == output_rate_hz {
            None
        } else {
            Some(FftEngine::try_new(input_rate_hz, output_rate_hz)?)
        };
        Ok(Self {
            input_rate_hz,
            output_rate_hz,
            engine,
            input_samples: 0,
            output_samples: 0,
            finished: false,
        })
    }

    /// Output samples the whole stream will have once finished, for `input_len` input samples:
    /// `round(input_len * output_rate / input_rate)`, ties rounding up.
    pub fn expected_output_len(&self, input_len: u64) -> u64 {
        let num = u128::from(input_len) * u128::from(self.output_rate_hz);
        let den = u128::from(self.input_rate_hz);
        ((2 * num + den) / (2 * den)) as u64
    }

    /// Resamples `input`, appending the output samples to `output`. Any chunk size works; the
    /// output is time-aligned with the input (the filter delay is compensated), so the first
    /// samples of a stream may come out only after a few chunks. Does not allocate (beyond
    /// growing `output`). Input after [`finish`](Self::finish) is ignored.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) {
        if self.finished {
            return;
        }
        self.input_samples += input.len() as u64;
        let Some(engine) = self.engine.as_mut() else {
            output.extend_from_slice(input);
            self.output_samples += input.len() as u64;
            return;
        };
        let mut rest = input;
        while !rest.is_empty() {
            let take = (engine.block_in - engine.pending).min(rest.len());
            engine.block[engine.pending..engine.pending + take].copy_from_slice(&rest[..take]);
            engine.pending += take;
            rest = &rest[take..];
            if engine.pending == engine.block_in {
                self.output_samples += engine.run_block(output, u64::MAX);
            }
        }
    }

    /// Flushes the samples still held in the filter, appending them to `output`. Output length
    /// over the whole stream is `round(input_len * output_rate / input_rate)` (exactly; see
    /// [`expected_output_len`](Self::expected_output_len)). Later calls do nothing.
    pub fn finish(&mut self, output: &mut Vec<f32>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let target = self.expected_output_len(self.input_samples);
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        // Pad with silence until the filter has pushed out everything the input implies. Each
        // zero block yields `block_out` samples (minus any delay still to skip), so this ends.
        while self.output_samples < target {
            engine.block[engine.pending..].fill(0.0);
            engine.pending = engine.block_in;
            self.output_samples += engine.run_block(output, target - self.output_samples);
        }
    }

    /// Forgets all state, ready for a new stream at the same rates.
    pub fn reset(&mut self) {
        if let Some(engine) = self.engine.as_mut() {
            engine.fft.reset();
            engine.pending = 0;
            engine.delay_to_skip = engine.fft.output_delay();
        }
        self.input_samples = 0;
        self.output_samples = 0;
        self.finished = false;
    }
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("input_rate_hz", &self.input_rate_hz)
            .field("output_rate_hz", &self.output_rate_hz)
            .field("input_samples", &self.input_samples)
            .field("output_samples", &self.output_samples)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sine(freq_hz: f64, rate_hz: u32, len: usize, amplitude: f64) -> Vec<f32> {
        (0..len)
            .map(|n| {
                (amplitude * (2.0 * PI * freq_hz * n as f64 / f64::from(rate_hz)).sin()) as f32
            })
            .collect()
    }

    /// Resamples `input` fed in chunks of the given sizes (cycled).
    fn run(input: &[f32], from: u32, to: u32, chunks: &[usize]) -> Vec<f32> {
        let mut r = Resampler::try_new(from, to).unwrap();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < input.len() {
            let n = chunks[i % chunks.len()].min(input.len() - pos);
            r.process(&input[pos..pos + n], &mut out);
            pos += n;
            i += 1;
        }
        r.finish(&mut out);
        out
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn rejects_rates_outside_range() {
        let err = Resampler::try_new(4_000, 8_000).unwrap_err().to_string();
        assert!(
            err.contains("4000 Hz") && err.contains("8000..=192000"),
            "{err}"
        );
        assert!(Resampler::try_new(44_100, 400_000).is_err());
    }

    #[test]
    fn same_rate_is_a_copy() {
        let x = sine(440.0, 8_000, 1234, 0.5);
        assert_eq!(run(&x, 8_000, 8_000, &[100, 7]), x);
    }

    #[test]
    fn output_length_is_rounded_ratio_for_many_rates_and_lengths() {
        for &from in &[
            11_025, 16_000, 22_050, 44_100, 48_000, 96_000, 192_000, 8_001,
        ] {
            for &len in &[0usize, 1, 5, 441, 1000, 12_345] {
                let x = vec![0.1f32; len];
                let out = run(&x, from, 8_000, &[333, 1, 4096]);
                let expected = (len as f64 * 8_000.0 / f64::from(from)).round() as usize;
                assert!(
                    out.len().abs_diff(expected) <= 1,
                    "{from} Hz, {len} samples: {} vs {expected}",
                    out.len()
                );
                let r = Resampler::try_new(from, 8_000).unwrap();
                assert_eq!(out.len() as u64, r.expected_output_len(len as u64));
            }
        }
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let x = sine(300.0, 44_100, 20_000, 0.7);
        let a = run(&x, 44_100, 8_000, &[20_000]);
        let b = run(&x, 44_100, 8_000, &[1, 17, 512, 3000]);
        assert_eq!(a.len(), b.len());
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-6);
        }
    }

    #[test]
    fn onset_stays_time_aligned() {
        for &from in &[
            44_100u32, 48_000, 16_000, 22_050, 11_025, 192_000, 8_001, 12_347,
        ] {
            let len = from as usize;
            let onset = len / 2;
            let mut x = vec![0.0f32; len];
            // A click at exactly 0.5 s.
            x[onset] = 1.0;
            let out = run(&x, from, 8_000, &[1000]);
            let peak = out
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap()
                .0;
            let peak_s = peak as f64 / 8_000.0;
            assert!(
                (peak_s - 0.5).abs() <= 0.001,
                "{from} Hz: click at {peak_s} s"
            );
        }
    }

    /// Gain in dB of a steady sine through the resampler (edges skipped).
    fn sine_gain_db(freq_hz: f64, from: u32) -> f64 {
        let amplitude = 0.5;
        let x = sine(freq_hz, from, from as usize, amplitude);
        let out = run(&x, from, 8_000, &[4800]);
        let mid = &out[800..out.len() - 800];
        20.0 * (rms(mid) / (amplitude / 2f64.sqrt())).log10()
    }

    const RATES_HZ: [u32; 7] = [16_000, 22_050, 32_000, 44_100, 48_000, 96_000, 192_000];

    #[test]
    fn passes_1khz_within_half_db() {
        for from in RATES_HZ {
            let gain_db = sine_gain_db(1_000.0, from);
            assert!(gain_db.abs() < 0.5, "{from} Hz: 1 kHz gain {gain_db} dB");
        }
    }

    #[test]
    fn passes_3khz_within_one_db() {
        for from in RATES_HZ {
            let gain_db = sine_gain_db(3_000.0, from);
            assert!(gain_db.abs() < 1.0, "{from} Hz: 3 kHz gain {gain_db} dB");
        }
    }

    #[test]
    fn attenuates_6khz_by_60db() {
        for from in RATES_HZ {
            let gain_db = sine_gain_db(6_000.0, from);
            assert!(gain_db < -60.0, "{from} Hz: 6 kHz gain {gain_db} dB");
        }
    }

    #[test]
    fn upsampling_works_too() {
        let x = sine(1_000.0, 8_000, 8_000, 0.5);
        let out = run(&x, 8_000, 16_000, &[100]);
        assert_eq!(out.len(), 16_000);
        let gain_db = 20.0 * (rms(&out[1600..14_400]) / (0.5 / 2f64.sqrt())).log10();
        assert!(gain_db.abs() < 0.5, "{gain_db}");
    }

    #[test]
    fn finish_is_idempotent_and_reset_restarts() {
        let mut r = Resampler::try_new(44_100, 8_000).unwrap();
        let mut out = Vec::new();
        r.process(&[0.5; 4410], &mut out);
        r.finish(&mut out);
        let n = out.len();
        assert_eq!(n, 800);
        r.finish(&mut out);
        r.process(&[0.5; 100], &mut out);
        assert_eq!(out.len(), n);
        r.reset();
        out.clear();
        r.process(&[0.5; 4410], &mut out);
        r.finish(&mut out);
        assert_eq!(out.len(), 800);
    }
}
