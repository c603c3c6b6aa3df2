//! Shared helpers of the integration tests: synthetic audio, temporary files, the CLI binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh, empty folder under cargo's `target/tmp`, unique to this test (emptied when the test
/// runs again, so runs do not pile up folders in the system temp dir).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("it-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The shared corpora beside the checkout, if present.
pub fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} not found", dir.display());
        None
    }
}

/// The `attune` binary built for these tests.
pub fn attune() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attune"))
}

/// Runs `attune` with `args`; returns stdout, panicking with stderr on failure.
pub fn run_ok(args: &[&str]) -> String {
    let output = attune().args(args).output().expect("run attune");
    assert!(
        output.status.success(),
        "attune {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Runs `attune` with `args` expecting failure; returns stderr.
pub fn run_err(args: &[&str]) -> String {
    let output = attune().args(args).output().expect("run attune");
    assert!(
        !output.status.success(),
        "attune {args:?} should have failed"
    );
    String::from_utf8(output.stderr).expect("utf-8 stderr")
}

/// A voiced, vowel-like signal: harmonics of `f0_hz` with a falling spectrum, no fundamental
/// below 300 Hz when `telephone` is true, amplitude-modulated into syllables of `syllable_s`.
pub fn synthetic_voice(
    sample_rate_hz: u32,
    seconds: f64,
    f0_hz: f64,
    syllable_s: f64,
    telephone: bool,
) -> Vec<f32> {
    let n = (seconds * sample_rate_hz as f64) as usize;
    let max_harmonic = ((3400.0 / f0_hz) as usize).max(1);
    (0..n)
        .map(|i| {
            let t = i as f64 / sample_rate_hz as f64;
            let mut v = 0.0;
            for h in 1..=max_harmonic {
                let f = h as f64 * f0_hz;
                if telephone && f < 300.0 {
                    continue;
                }
                v += (2.0 * std::f64::consts::PI * f * t).sin() / h as f64;
            }
            let envelope = (std::f64::consts::PI * t / syllable_s)
                .sin()
                .abs()
                .powf(0.7);
            (0.15 * v * envelope) as f32
        })
        .collect()
}

/// Writes `channels` (equal lengths) as a 16-bit PCM WAV.
pub fn write_wav_i16(path: &Path, sample_rate_hz: u32, channels: &[Vec<f32>]) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: sample_rate_hz,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create wav");
    for i in 0..channels[0].len() {
        for channel in channels {
            let v = (channel[i].clamp(-1.0, 1.0) * 32767.0).round() as i16;
            writer.write_sample(v).expect("write sample");
        }
    }
    writer.finalize().expect("finalize wav");
}
