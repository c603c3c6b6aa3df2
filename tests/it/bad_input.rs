//! Bad and unusual audio through the whole `attune features` path: a clear error or a sensible
//! result, never a panic or a hang.

use std::path::Path;

use crate::util::{run_err, run_ok, synthetic_voice, temp_dir, write_wav_i16};

fn summary(path: &Path) -> serde_json::Value {
    let json = run_ok(&[
        "features",
        path.to_str().unwrap(),
        "--summary",
        "--format",
        "json",
    ]);
    serde_json::from_str(&json).expect("summary is JSON")
}

fn write_wav_f32(path: &Path, sample_rate_hz: u32, channels: &[Vec<f32>]) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: sample_rate_hz,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..channels[0].len() {
        for channel in channels {
            writer.write_sample(channel[i]).unwrap();
        }
    }
    writer.finalize().unwrap();
}

#[test]
fn nan_and_infinite_float_samples_are_treated_as_silence() {
    let dir = temp_dir("nan");
    let path = dir.join("nan.wav");
    let mut samples = synthetic_voice(16_000, 1.0, 180.0, 0.2, false);
    for (i, s) in samples.iter_mut().enumerate() {
        if i % 97 == 0 {
            *s = f32::NAN;
        } else if i % 89 == 0 {
            *s = f32::INFINITY;
        }
    }
    write_wav_f32(&path, 16_000, &[samples]);
    let doc = summary(&path);
    let channel = &doc["channels"][0];
    let f0 = channel["f0_median_hz"].as_f64().unwrap();
    assert!(f0.is_finite() && f0 > 0.0, "{channel}");
}

#[test]
fn pure_silence_gives_no_speech() {
    let dir = temp_dir("silence");
    let path = dir.join("silence.wav");
    write_wav_i16(&path, 8_000, &[vec![0.0; 16_000]]);
    let channel = summary(&path)["channels"][0].clone();
    assert_eq!(channel["speech_duration_s"].as_f64(), Some(0.0));
    assert_eq!(channel["syllable_count"].as_u64(), Some(0));
    assert_eq!(channel["f0_median_hz"].as_f64(), Some(0.0));
}

#[test]
fn white_noise_is_not_speech() {
    let dir = temp_dir("noise");
    let path = dir.join("noise.wav");
    let mut state = 12_345u32;
    let noise: Vec<f32> = (0..24_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32 - 0.5) * 0.5
        })
        .collect();
    write_wav_i16(&path, 8_000, &[noise]);
    let channel = summary(&path)["channels"][0].clone();
    let speech = channel["speech_duration_s"].as_f64().unwrap();
    assert!(speech < 0.2, "noise read as {speech} s of speech");
}

#[test]
fn dc_offset_and_clipping_do_not_break_pitch() {
    let dir = temp_dir("dc-clip");
    let path = dir.join("dc.wav");
    let voice: Vec<f32> = synthetic_voice(8_000, 2.0, 120.0, 0.25, true)
        .into_iter()
        .map(|s| (s * 8.0 + 0.3).clamp(-1.0, 1.0))
        .collect();
    write_wav_i16(&path, 8_000, &[voice]);
    let channel = summary(&path)["channels"][0].clone();
    let f0 = channel["f0_median_hz"].as_f64().unwrap();
    assert!((f0 - 120.0).abs() < 4.0, "f0 {f0}");
}

#[test]
fn twenty_channels_each_get_a_summary() {
    let dir = temp_dir("twenty");
    let path = dir.join("twenty.wav");
    let channels: Vec<Vec<f32>> = (0..20)
        .map(|c| synthetic_voice(8_000, 0.5, 100.0 + 10.0 * c as f64, 0.25, false))
        .collect();
    write_wav_i16(&path, 8_000, &channels);
    let doc = summary(&path);
    assert_eq!(doc["channels"].as_array().map(Vec::len), Some(20));
}

#[test]
fn empty_and_truncated_files_are_clear_errors_or_empty_results() {
    let dir = temp_dir("truncated");
    let empty = dir.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let err = run_err(&["features", empty.to_str().unwrap()]);
    assert!(err.contains("empty.wav"), "{err}");

    let garbage = dir.join("garbage.wav");
    std::fs::write(&garbage, b"this is not audio at all, just text").unwrap();
    let err = run_err(&["features", garbage.to_str().unwrap()]);
    assert!(err.to_lowercase().contains("wav"), "{err}");

    // A valid header whose data chunk claims more than the file holds.
    let full = dir.join("full.wav");
    write_wav_i16(
        &full,
        8_000,
        &[synthetic_voice(8_000, 1.0, 150.0, 0.2, true)],
    );
    let bytes = std::fs::read(&full).unwrap();
    let truncated = dir.join("truncated.wav");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let output = crate::util::attune()
        .args([
            "features",
            truncated.to_str().unwrap(),
            "--summary",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    if output.status.success() {
        let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let duration = doc["channels"][0]["duration_s"].as_f64().unwrap();
        assert!((0.4..=0.6).contains(&duration), "duration {duration}");
    } else {
        assert!(stderr.contains("truncated.wav"), "{stderr}");
    }
}

#[test]
fn absurd_sample_rate_is_rejected_with_the_value() {
    let dir = temp_dir("rate");
    let path = dir.join("rate.wav");
    write_wav_i16(&path, 1_000, &[vec![0.1; 1_000]]);
    let err = run_err(&["features", path.to_str().unwrap()]);
    assert!(err.contains("1000"), "{err}");
}

#[test]
fn raw_mulaw_stream_is_read_with_its_declared_format() {
    let dir = temp_dir("raw");
    let path = dir.join("call.ul");
    let voice = synthetic_voice(8_000, 1.0, 150.0, 0.2, true);
    let bytes: Vec<u8> = voice
        .iter()
        .map(|&s| attune_core::audio::g711::encode_mulaw((s * 32767.0) as i16))
        .collect();
    std::fs::write(&path, bytes).unwrap();
    let json = run_ok(&[
        "features",
        path.to_str().unwrap(),
        "--raw",
        "mulaw",
        "--sample-rate",
        "8000",
        "--summary",
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let f0 = doc["channels"][0]["f0_median_hz"].as_f64().unwrap();
    assert!((f0 - 150.0).abs() < 4.0, "f0 {f0}");
}
