//! The `attune features` contract: column names, one row per frame and channel, summaries.

use crate::util::{run_err, run_ok, synthetic_voice, temp_dir, write_wav_i16};

#[test]
fn features_csv_has_contract_columns_and_one_row_per_frame_and_channel() {
    let dir = temp_dir("features-csv");
    let path = dir.join("stereo.wav");
    let voice = synthetic_voice(16_000, 2.0, 150.0, 0.25, false);
    let silence = vec![0.0; voice.len()];
    write_wav_i16(&path, 16_000, &[voice, silence]);

    let csv = run_ok(&["features", path.to_str().unwrap(), "--format", "csv"]);
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("time_s,channel,f0_hz,voiced,loudness_db"),
        "header: {header}"
    );
    let columns: Vec<&str> = header.split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // 2 s at 10 ms = 200 frames per channel.
    assert_eq!(rows.len(), 400);
    assert!(rows.iter().all(|r| r.len() == columns.len()));
    // Frame centres every 10 ms, both channels per frame.
    assert_eq!(rows[0][0], "0.000");
    assert_eq!(rows[2][0], "0.010");
    assert_eq!((rows[0][1], rows[1][1]), ("0", "1"));

    let voiced_f0: Vec<f64> = rows
        .iter()
        .filter(|r| r[1] == "0" && r[3] == "1")
        .map(|r| r[2].parse().unwrap())
        .collect();
    assert!(voiced_f0.len() > 100, "voiced frames: {}", voiced_f0.len());
    let near = voiced_f0
        .iter()
        .filter(|f| (*f - 150.0).abs() < 3.0)
        .count();
    assert!(near * 10 >= voiced_f0.len() * 9, "f0 off: {voiced_f0:?}");
    // The silent channel is unvoiced throughout, with f0 0.
    assert!(
        rows.iter()
            .filter(|r| r[1] == "1")
            .all(|r| r[3] == "0" && r[2] == "0.00")
    );
}

#[test]
fn features_summary_json_reports_speech_rate_and_f0_per_channel() {
    let dir = temp_dir("features-summary");
    let path = dir.join("mono.wav");
    let mut voice = vec![0.0; 8_000];
    voice.extend(synthetic_voice(8_000, 3.0, 200.0, 0.2, true));
    voice.extend(vec![0.0; 8_000]);
    write_wav_i16(&path, 8_000, &[voice]);

    let json = run_ok(&[
        "features",
        path.to_str().unwrap(),
        "--summary",
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let channel = &doc["channels"][0];
    for field in [
        "speech_duration_s",
        "syllable_count",
        "speaking_rate_syl_per_s",
        "articulation_rate_syl_per_s",
        "f0_median_hz",
    ] {
        assert!(channel[field].is_number(), "missing {field}: {channel}");
    }
    let f0 = channel["f0_median_hz"].as_f64().unwrap();
    assert!((f0 - 200.0).abs() < 4.0, "f0 median {f0}");
    let speech = channel["speech_duration_s"].as_f64().unwrap();
    assert!((2.5..=3.3).contains(&speech), "speech {speech}");
    // 3 s of syllables 0.2 s long: 15 nuclei, 5 per second.
    let rate = channel["speaking_rate_syl_per_s"].as_f64().unwrap();
    assert!((3.5..=6.5).contains(&rate), "rate {rate}");
}

#[test]
fn features_of_missing_file_names_the_file() {
    let err = run_err(&["features", "/nonexistent/call.wav"]);
    assert!(err.contains("/nonexistent/call.wav"), "{err}");
}
