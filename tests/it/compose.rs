//! `attune compose`: the truth of composed calls is self-consistent, the telephone channel has
//! its band, the same seed gives the same bytes, bad specs fail naming the utterance, and the
//! committed example calls parse.

use std::path::{Path, PathBuf};

use attune_lab::compose::annotation::{CallAnnotation, Speaker, UtteranceKind};
use attune_lab::compose::channel::{TelephoneFilter, amplitude_db};
use attune_lab::compose::{CallSpec, compose};

use crate::util::{run_err, run_ok, shared_data, synthetic_voice, temp_dir, write_wav_i16};

/// One 10 ms frame: the resolution of the truth.
const FRAME_S: f64 = 0.01;

/// Checks the invariants every truth must hold.
fn check_truth(a: &CallAnnotation) {
    let d = a.duration_s;
    let t = a.talk;
    let balance = t.agent_s + t.caller_s - t.overlap_s + t.silence_s;
    assert!(
        (balance - d).abs() <= FRAME_S,
        "talk balance {balance} vs {d}"
    );
    let spans = a
        .overlaps
        .iter()
        .chain(&a.silences)
        .chain(&a.backchannels)
        .map(|s| (s.start_s, s.end_s))
        .chain(a.turns.iter().map(|t| (t.start_s, t.end_s)))
        .chain(a.utterances.iter().map(|u| (u.start_s, u.end_s)));
    for (s, e) in spans {
        assert!(
            0.0 <= s && s < e && e <= d + 1e-9,
            "bad span {s}-{e} in {d}"
        );
    }
    let sum = |v: &[attune_lab::compose::annotation::Span]| {
        v.iter().map(|s| s.end_s - s.start_s).sum::<f64>()
    };
    assert!((sum(&a.overlaps) - t.overlap_s).abs() < 1e-6);
    assert!((sum(&a.silences) - t.silence_s).abs() < 1e-6);
    for i in &a.interruptions {
        assert!(i.overlap_s > 0.0);
        assert!(
            a.overlaps
                .iter()
                .any(|o| o.start_s <= i.t_s + 1e-9 && i.t_s + i.overlap_s <= o.end_s + 1e-9),
            "interruption {i:?} outside every overlap"
        );
    }
    for b in &a.backchannels {
        // A backchannel starts while the other party speaks (it may outlast a pause of theirs).
        assert!(b.end_s - b.start_s <= 1.0 + 1e-9);
        assert!(
            a.overlaps
                .iter()
                .any(|o| (o.start_s - b.start_s).abs() < 1e-9),
            "backchannel {b:?} does not start an overlap"
        );
    }
    assert!(a.turns.windows(2).all(|w| w[0].start_s <= w[1].start_s));
    for u in &a.utterances {
        let expected = if u.speaker == Speaker::Agent {
            a.agent_channel
        } else {
            1 - a.agent_channel
        };
        assert_eq!(u.channel, expected);
    }
}

fn read_truth(path: &Path) -> CallAnnotation {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_audio_matches(wav: &Path, a: &CallAnnotation) {
    let audio = attune_qa::files::read_wav(wav).unwrap();
    assert_eq!(audio.sample_rate_hz, a.sample_rate_hz);
    assert_eq!(audio.channels.len(), 2);
    let frames = audio.channels[0].len() as f64;
    assert!((frames / f64::from(a.sample_rate_hz) - a.duration_s).abs() < 1e-6);
}

/// A data folder of synthetic voices: `agent.wav` (3 s, 20 kHz, 120 Hz) and `caller.wav`
/// (2 s, 16 kHz, 220 Hz), each with 0.5 s of silence either side.
fn synthetic_data(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    for (file, rate, seconds, f0) in [
        ("agent.wav", 20_000, 3.0, 120.0),
        ("caller.wav", 16_000, 2.0, 220.0),
    ] {
        let pad = vec![0.0; rate as usize / 2];
        let mut x = pad.clone();
        x.extend(synthetic_voice(rate, seconds, f0, 0.25, false));
        x.extend(pad);
        write_wav_i16(&dir.join(file), rate, &[x]);
    }
    dir
}

#[test]
fn synthetic_timeline_gives_exact_turns_interruption_and_backchannel() {
    let data = synthetic_data("compose-synthetic");
    let spec = CallSpec::from_json(
        r#"{"agent_channel": 1, "crosstalk_db": -25, "noise_dbfs": -60, "utterances": [
        {"speaker": "agent", "source": "agent.wav", "start": {"at_s": 1.0}},
        {"speaker": "caller", "source": "caller.wav", "start": {"into_other_s": 0.8}, "max_s": 0.5, "kind": "backchannel"},
        {"speaker": "caller", "source": "caller.wav", "start": {"after_s": 0.5}, "kind": "turn"},
        {"speaker": "agent", "source": "agent.wav", "start": {"before_other_end_s": 1.0}, "kind": "interruption"},
        {"speaker": "caller", "source": "caller.wav", "start": {"after_s": 6.0}}
        ]}"#,
    )
    .unwrap();
    let call = compose(&spec, &data).unwrap();
    let a = &call.annotation;
    check_truth(a);
    // Speech onsets land where the spec puts them (sample-exact placement, 10 ms frames).
    let starts: Vec<f64> = a.utterances.iter().map(|u| u.start_s).collect();
    assert!((starts[0] - 1.0).abs() < 1e-9, "{starts:?}");
    assert!((starts[1] - 1.8).abs() < 1e-9, "{starts:?}");
    let agent_end = a.utterances[0].end_s;
    assert!(
        (agent_end - 4.0).abs() <= 2.0 * FRAME_S,
        "agent speech ends {agent_end}"
    );
    assert!((starts[2] - (agent_end + 0.5)).abs() < 1e-6);
    assert_eq!(a.interruptions.len(), 1);
    let i = a.interruptions[0];
    assert_eq!(i.by, Speaker::Agent);
    assert!((i.t_s - starts[3]).abs() < 1e-9 && (i.overlap_s - 1.0).abs() < 1e-6);
    assert_eq!(a.backchannels.len(), 1);
    assert_eq!(a.utterances[1].kind, UtteranceKind::Backchannel);
    assert_eq!(a.turns.len(), 4);
    assert_eq!(
        a.turns.iter().map(|t| t.speaker).collect::<Vec<_>>(),
        [
            Speaker::Agent,
            Speaker::Caller,
            Speaker::Agent,
            Speaker::Caller
        ]
    );
    // A long silence of about 6 s before the last turn.
    assert!(
        a.silences
            .iter()
            .any(|s| (s.end_s - s.start_s - 6.0).abs() < 1e-6)
    );
    assert_eq!(call.clipped_samples, 0);
    // The agent is on channel 1; channel 0 carries only the caller plus -25 dB crosstalk.
    let (s, e) = (a.utterances[0].start_s, a.utterances[1].start_s);
    let rms = |c: &[f32]| {
        let from = (s * 8000.0) as usize;
        let to = (e * 8000.0) as usize;
        (c[from..to]
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            / (to - from) as f64)
            .sqrt()
    };
    let leak = amplitude_db(rms(&call.channels[0]) / rms(&call.channels[1]));
    assert!((-27.0..-23.0).contains(&leak), "crosstalk {leak} dB");
}

#[test]
fn bad_specs_fail_naming_the_utterance() {
    let data = synthetic_data("compose-bad");
    let write = |name: &str, body: &str| {
        let path = data.join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let out = data.join("out.wav");
    let data_arg = data.to_str().unwrap();
    let cases = [
        (
            r#"{"utterances":[{"speaker":"agent","source":"agent.wav","start":{"at_s":0.5}},
               {"speaker":"caller","source":"missing.wav","start":{"after_s":0.5}}]}"#,
            "utterances[1] (caller)",
        ),
        (
            r#"{"utterances":[{"speaker":"agent","source":"agent.wav","start":{"at_s":-1}}]}"#,
            "negative",
        ),
        (
            r#"{"utterances":[{"speaker":"agent","source":"agent.wav","start":{"at_s":0.5}},
               {"speaker":"agent","source":"agent.wav","start":{"at_s":2.0}}]}"#,
            "overlaps the same speaker's utterances[0]",
        ),
        (
            r#"{"utterances":[{"speaker":"caller","source":"caller.wav","start":{"into_other_s":0.5}}]}"#,
            "has not spoken yet",
        ),
        (
            r#"{"utterances":[{"speaker":"agent","source":"agent.wav","start":{"at_s":0.5}},
               {"speaker":"caller","source":"caller.wav","start":{"after_s":0.5},"kind":"interruption"}]}"#,
            "declared interruption",
        ),
        (
            r#"{"utterances":[{"speaker":"agent","source":"agent.wav","start":{"after_s":-0.5}}]}"#,
            "before the call starts",
        ),
    ];
    for (k, (body, expected)) in cases.iter().enumerate() {
        let spec = write(&format!("bad{k}.json"), body);
        let stderr = run_err(&[
            "compose",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--data-dir",
            data_arg,
        ]);
        assert!(stderr.contains(expected), "case {k}: {stderr}");
    }
}

fn sine_gain_db(freq_hz: f64) -> f64 {
    let rate = 8_000;
    let mut x: Vec<f32> = (0..16_000)
        .map(|i| (2.0 * std::f64::consts::PI * freq_hz * f64::from(i) / 8000.0).sin() as f32)
        .collect();
    let rms =
        |v: &[f32]| (v.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    let before = rms(&x[8_000..]);
    TelephoneFilter::new(rate).process(&mut x);
    amplitude_db(rms(&x[8_000..]) / before)
}

#[test]
fn telephone_filter_keeps_the_band() {
    assert!(
        sine_gain_db(100.0) <= -20.0,
        "100 Hz: {}",
        sine_gain_db(100.0)
    );
    assert!(
        sine_gain_db(3_900.0) <= -20.0,
        "3.9 kHz: {}",
        sine_gain_db(3_900.0)
    );
    assert!(
        sine_gain_db(1_000.0).abs() <= 1.0,
        "1 kHz: {}",
        sine_gain_db(1_000.0)
    );
}

#[test]
fn random_calls_are_consistent_and_reproducible() {
    let Some(data) = shared_data() else { return };
    let dirs = [temp_dir("compose-random-a"), temp_dir("compose-random-b")];
    for dir in &dirs {
        run_ok(&[
            "compose",
            "--random",
            "2",
            "--seed",
            "11",
            "--minutes",
            "0.5-1",
            "--out",
            dir.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ]);
    }
    for k in 0..2 {
        for ext in ["wav", "truth.json", "spec.json"] {
            let name = format!("call_{k:03}.{ext}");
            let a = std::fs::read(dirs[0].join(&name)).unwrap();
            let b = std::fs::read(dirs[1].join(&name)).unwrap();
            assert!(a == b, "{name} differs between runs of the same seed");
        }
        let wav = dirs[0].join(format!("call_{k:03}.wav"));
        let truth = read_truth(&dirs[0].join(format!("call_{k:03}.truth.json")));
        check_truth(&truth);
        check_audio_matches(&wav, &truth);
        assert!(
            (25.0..=75.0).contains(&truth.duration_s),
            "{}",
            truth.duration_s
        );
        assert!(truth.turns.len() >= 6);
        let spec = std::fs::read_to_string(dirs[0].join(format!("call_{k:03}.spec.json"))).unwrap();
        CallSpec::from_json(&spec).unwrap();
    }
}

#[test]
fn committed_example_calls_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/calls");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".truth.json") else {
            continue;
        };
        let truth = read_truth(&path);
        check_truth(&truth);
        check_audio_matches(&dir.join(format!("{stem}.wav")), &truth);
        let spec = std::fs::read_to_string(dir.join(format!("{stem}.spec.json"))).unwrap();
        let spec = CallSpec::from_json(&spec).unwrap();
        assert_eq!(spec.utterances.len(), truth.utterances.len());
        count += 1;
    }
    assert!(count >= 3, "only {count} example calls");
}
