//! `attune train` / `attune classify`: the JSON-lines contract, abstention on too little speech,
//! bad input, and model-file errors. A tiny model is trained on synthetic voices so these tests
//! do not depend on the shipped model; the shipped model (models/emotion.json, if present) is
//! run on the example upset call's caller channel.

use std::path::{Path, PathBuf};

use crate::util::{run_err, run_ok, synthetic_voice, temp_dir, write_wav_i16};

const CLASSES: [&str; 5] = ["angry", "anxious", "sad", "happy", "neutral"];

fn parse_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn check_contract(line: &serde_json::Value) {
    for key in [
        "file",
        "emotion",
        "probabilities",
        "arousal",
        "valence",
        "calmness",
        "confidence",
    ] {
        assert!(line.get(key).is_some(), "{key} missing in {line}");
    }
    let emotion = line["emotion"].as_str().expect("emotion is a string");
    if emotion == "unknown" {
        assert!(line["reason"].as_str().is_some(), "{line}");
        return;
    }
    assert!(CLASSES.contains(&emotion), "{line}");
    let p = &line["probabilities"];
    let sum: f64 = CLASSES.iter().map(|c| p[c].as_f64().expect(c)).sum();
    assert!((sum - 1.0).abs() < 0.01, "{line}");
    let arousal = line["arousal"].as_f64().expect("arousal");
    assert!((0.0..=1.0).contains(&arousal));
    let valence = line["valence"].as_f64().expect("valence");
    assert!((-1.0..=1.0).contains(&valence));
    let calmness = line["calmness"].as_f64().expect("calmness");
    assert!((0.0..=100.0).contains(&calmness));
    let confidence = line["confidence"].as_f64().expect("confidence");
    assert!((0.0..=1.0).contains(&confidence));
}

/// A tiny model trained on synthetic voices of 2 "speakers", one setting per class.
fn toy_model(dir: &Path) -> PathBuf {
    let labels = ["angry", "anxious", "sad", "happy", "neutral"];
    // (f0 Hz, amplitude, syllable s) per class.
    let settings = [
        (220.0, 0.8, 0.18),
        (260.0, 0.3, 0.15),
        (110.0, 0.1, 0.35),
        (240.0, 0.5, 0.2),
        (140.0, 0.25, 0.25),
    ];
    let mut manifest = String::from("path,label,speaker\n");
    for speaker in 0..2 {
        for (k, (label, (f0, amp, syl))) in labels.iter().zip(settings).enumerate() {
            for take in 0..2 {
                let name = format!("s{speaker}_{k}_{take}.wav");
                let f0 = f0 * (1.0 + 0.1 * speaker as f64) + take as f64 * 3.0;
                let voice: Vec<f32> = synthetic_voice(16_000, 2.5, f0, syl, false)
                    .into_iter()
                    .map(|s| s * amp)
                    .collect();
                write_wav_i16(&dir.join(&name), 16_000, &[voice]);
                manifest.push_str(&format!("{name},{label},spk{speaker}\n"));
            }
        }
    }
    let manifest_path = dir.join("manifest.csv");
    std::fs::write(&manifest_path, manifest).expect("write manifest");
    let model = dir.join("models/emotion.json");
    run_ok(&[
        "train",
        "--manifest",
        manifest_path.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(dir.join("models/MODEL_CARD.md").is_file());
    model
}

#[test]
fn classify_contract_abstention_and_bad_input() {
    let dir = temp_dir("emotion-toy");
    let model = toy_model(&dir);
    let model_arg = model.to_str().unwrap();

    // Two files of speech, silence, 0.8 s of speech, clipped and extremely loud speech.
    let speech = dir.join("speech.wav");
    write_wav_i16(
        &speech,
        16_000,
        &[synthetic_voice(16_000, 3.0, 200.0, 0.2, false)],
    );
    let silence = dir.join("silence.wav");
    write_wav_i16(&silence, 8_000, &[vec![0.0; 16_000]]);
    let short = dir.join("short.wav");
    write_wav_i16(
        &short,
        16_000,
        &[synthetic_voice(16_000, 0.8, 180.0, 0.2, false)],
    );
    let clipped = dir.join("clipped.wav");
    let loud: Vec<f32> = synthetic_voice(16_000, 3.0, 150.0, 0.2, false)
        .into_iter()
        .map(|s| (s * 4.0).clamp(-1.0, 1.0))
        .collect();
    write_wav_i16(&clipped, 16_000, &[loud]);

    let files = [&speech, &silence, &short, &clipped];
    let mut args = vec!["classify", "--model", model_arg, "--format", "jsonl"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let lines = parse_lines(&run_ok(&args));
    assert_eq!(lines.len(), 4);
    for line in &lines {
        check_contract(line);
    }
    assert_ne!(lines[0]["emotion"], "unknown", "{}", lines[0]);
    assert_eq!(lines[0]["normalisation"], "global");
    for abstained in [&lines[1], &lines[2]] {
        assert_eq!(abstained["emotion"], "unknown", "{abstained}");
        assert!(
            abstained["reason"]
                .as_str()
                .unwrap_or("")
                .contains("not enough"),
            "{abstained}"
        );
    }
    assert_ne!(lines[3]["emotion"], "unknown", "{}", lines[3]);

    // --same-speaker: under 10 s of baseline speech the global normalisation is kept.
    let mut args = vec![
        "classify",
        "--model",
        model_arg,
        "--same-speaker",
        speech.to_str().unwrap(),
    ];
    args.push(clipped.to_str().unwrap());
    let lines = parse_lines(&run_ok(&args));
    assert_eq!(lines[0]["normalisation"], "global");

    // Model file problems name the file and what is wrong.
    let err = run_err(&[
        "classify",
        "--model",
        dir.join("nope.json").to_str().unwrap(),
        speech.to_str().unwrap(),
    ]);
    assert!(
        err.contains("nope.json") && err.contains("missing"),
        "{err}"
    );
    let text = std::fs::read_to_string(&model).expect("model");
    let truncated = dir.join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 3]).expect("write");
    let err = run_err(&[
        "classify",
        "--model",
        truncated.to_str().unwrap(),
        speech.to_str().unwrap(),
    ]);
    assert!(
        err.contains("truncated.json") && err.contains("truncated"),
        "{err}"
    );
    let old = dir.join("old.json");
    std::fs::write(&old, text.replacen("\"version\":2", "\"version\":1", 1)).expect("write");
    let err = run_err(&[
        "classify",
        "--model",
        old.to_str().unwrap(),
        speech.to_str().unwrap(),
    ]);
    assert!(
        err.contains("old.json") && err.contains("version 1"),
        "{err}"
    );

    // A file that cannot be read gets a line with a reason and a failing exit status.
    let err = run_err(&[
        "classify",
        "--model",
        model_arg,
        dir.join("absent.wav").to_str().unwrap(),
    ]);
    assert!(err.contains("absent.wav"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shipped model on the example upset call: the caller is channel 0 (the agent is on 1).
#[test]
fn shipped_model_on_the_upset_caller() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/emotion.json");
    if !model.is_file() {
        eprintln!("skipping: {} not found", model.display());
        return;
    }
    let call = root.join("examples/calls/upset_caller.wav");
    let calm = root.join("examples/calls/calm.wav");
    let out = run_ok(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--channel",
        "0",
        "--format",
        "jsonl",
        call.to_str().unwrap(),
    ]);
    let lines = parse_lines(&out);
    assert_eq!(lines.len(), 1);
    check_contract(&lines[0]);
    // The caller of `calm` is channel 1.
    let out = run_ok(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--channel",
        "1",
        calm.to_str().unwrap(),
    ]);
    let calm_line = &parse_lines(&out)[0];
    check_contract(calm_line);
    let upset_arousal = lines[0]["arousal"].as_f64().unwrap_or(0.0);
    let calm_arousal = calm_line["arousal"].as_f64().unwrap_or(1.0);
    assert!(
        upset_arousal > calm_arousal,
        "upset {} vs calm {}",
        lines[0],
        calm_line
    );
}
