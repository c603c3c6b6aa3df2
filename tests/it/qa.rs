//! `attune analyze` as a QA scorer: the extended per-call document, determinism, batches with
//! bad files, resume after an interrupted run, custom rubrics and their errors, HTML/CSV output,
//! unwritable output folders.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{attune, run_err, run_ok, temp_dir, write_wav_i16};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/calls")
        .join(name)
}

/// The document without the run's timestamps (every key ending in `_at`).
fn without_run_times(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, _| !k.ends_with("_at"));
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[test]
fn one_file_gives_the_extended_document_and_the_same_result_twice() {
    let path = example("agent_interrupts.wav");
    let first: Value = serde_json::from_str(&run_ok(&["analyze", path.to_str().unwrap()])).unwrap();
    let second: Value =
        serde_json::from_str(&run_ok(&["analyze", path.to_str().unwrap()])).unwrap();
    assert!(first["started_at"].is_string() && first["finished_at"].is_string());
    assert_eq!(without_run_times(first.clone()), without_run_times(second));

    // The dialog document is still there, extended.
    assert!(first["talk"]["agent_s"].as_f64().unwrap() > 5.0);
    let emotion = first["caller_emotion"].as_array().unwrap();
    assert!(emotion.len() >= 5, "{}", emotion.len());
    for p in emotion {
        for key in ["t_s", "emotion", "arousal", "valence", "confidence"] {
            assert!(!p[key].is_null(), "caller_emotion point without {key}: {p}");
        }
    }
    let calm = first["agent_calmness"].as_array().unwrap();
    assert!(!calm.is_empty() && calm.iter().all(|p| p["score"].is_number()));
    for cue in first["cues"].as_array().unwrap() {
        for key in ["t_s", "kind", "party", "event", "evidence"] {
            assert!(!cue[key].is_null(), "cue without {key}: {cue}");
        }
    }
    let qa = &first["qa"];
    assert!(qa["score_pct"].is_number() && qa["auto_fail"].is_boolean());
    let items = qa["items"].as_array().unwrap();
    assert!(items.len() >= 8);
    // The call's agent interrupts 4 times: the default rubric allows 2, with evidence.
    let interruptions = items
        .iter()
        .find(|i| i["id"] == "few_interruptions")
        .unwrap();
    assert_eq!(interruptions["result"], "fail");
    assert_eq!(interruptions["value"], 4.0);
    assert_eq!(interruptions["evidence"].as_array().unwrap().len(), 4);
    for key in ["model", "cue_rules", "rubric", "rubric_digest"] {
        assert!(first["versions"][key].is_string(), "no version {key}");
    }
    // The empathy object (docs/empathy.md): its three measures, each a score or a reason,
    // with its measures and evidence moments.
    let empathy = &first["empathy"];
    for key in ["active_listening", "attunement", "de_escalation"] {
        let m = &empathy[key];
        assert!(
            m["score"].is_number() || m["reason"].is_string(),
            "{key} has neither score nor reason: {m}"
        );
        if let Some(score) = m["score"].as_f64() {
            assert!((0.0..=100.0).contains(&score), "{key} score {score}");
        }
        assert!(m["measures"].is_object(), "{key}: {m}");
        for e in m["evidence"].as_array().unwrap() {
            assert!(e["t_s"].is_number() && e["what"].is_string(), "{e}");
        }
    }
    assert!(empathy["active_listening"]["measures"]["agent_interruptions"] == 4);
    assert!(first["facts"]["empathy_active_listening_score"].is_object());
}

#[test]
fn a_silent_call_is_not_scored_as_a_pass() {
    let dir = temp_dir("qa-silent");
    let path = dir.join("silent.wav");
    let silence = vec![0.0f32; 8_000 * 20];
    write_wav_i16(&path, 8_000, &[silence.clone(), silence]);
    let doc: Value = serde_json::from_str(&run_ok(&["analyze", path.to_str().unwrap()])).unwrap();
    assert_eq!(doc["two_party"], true);
    assert!(doc["qa"]["score_pct"].is_null(), "{}", doc["qa"]);
    let items = doc["qa"]["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for item in items {
        assert_eq!(item["result"], "not_applicable", "{item}");
        assert!(
            item["reason"].as_str().unwrap().contains("no speech"),
            "{item}"
        );
    }
}

#[test]
fn mono_recording_has_no_applicable_qa_item() {
    let dir = temp_dir("qa-mono");
    let path = dir.join("mono.wav");
    let voice = crate::util::synthetic_voice(8_000, 2.0, 180.0, 0.2, true);
    write_wav_i16(&path, 8_000, &[voice]);
    let doc: Value = serde_json::from_str(&run_ok(&["analyze", path.to_str().unwrap()])).unwrap();
    assert_eq!(doc["two_party"], false);
    assert!(doc["qa"]["score_pct"].is_null());
    let items = doc["qa"]["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["result"] == "not_applicable"));
    assert!(items[0]["reason"].as_str().unwrap().contains("mono"));
    for key in ["active_listening", "attunement", "de_escalation"] {
        assert!(doc["empathy"][key]["score"].is_null());
        assert!(
            doc["empathy"][key]["reason"]
                .as_str()
                .unwrap()
                .contains("mono")
        );
    }
}

fn write_rubric(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("rubric.toml");
    std::fs::write(
        &path,
        format!("version = \"test-1\"\n[[section]]\nname = \"S\"\n{body}"),
    )
    .unwrap();
    path
}

#[test]
fn custom_rubric_auto_fails_and_bad_rubrics_name_the_line() {
    let dir = temp_dir("qa-rubric");
    let rubric = write_rubric(
        &dir,
        "[[section.item]]\nid = \"no_interrupting\"\ntitle = \"Never interrupt\"\nweight = 1\n\
         fact = \"agent_interruptions\"\nmax = 0\nauto_fail = true\n\
         [[section.item]]\nid = \"greets\"\ntitle = \"Greets\"\nweight = 3\n\
         fact = \"agent_first_speech_s\"\nmax = 5\n",
    );
    let path = example("agent_interrupts.wav");
    let doc: Value = serde_json::from_str(&run_ok(&[
        "analyze",
        path.to_str().unwrap(),
        "--rubric",
        rubric.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(doc["qa"]["auto_fail"], true);
    assert_eq!(doc["qa"]["score_pct"], 0.0);
    assert_eq!(doc["qa"]["raw_score_pct"], 75.0);
    assert_eq!(doc["versions"]["rubric"], "test-1");

    let unknown = write_rubric(
        &dir,
        "[[section.item]]\nid = \"a\"\ntitle = \"A\"\nweight = 1\nfact = \"agent_talk_shar\"\nmax = 0.5\n",
    );
    let e = run_err(&[
        "analyze",
        path.to_str().unwrap(),
        "--rubric",
        unknown.to_str().unwrap(),
    ]);
    assert!(e.contains("line 8") && e.contains("agent_talk_shar"), "{e}");
    let bad = write_rubric(
        &dir,
        "[[section.item]]\nid = \"a\"\ntitle = \"A\"\nweight = 1\nfact = \"agent_talk_share\"\nmax = 65\n",
    );
    let e = run_err(&[
        "analyze",
        path.to_str().unwrap(),
        "--rubric",
        bad.to_str().unwrap(),
    ]);
    assert!(e.contains("line 9") && e.contains("65"), "{e}");
}

fn json_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

#[test]
fn batch_scores_the_good_files_names_the_bad_and_resumes() {
    let dir = temp_dir("qa-batch");
    let calls = dir.join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    std::fs::copy(example("calm.wav"), calls.join("calm.wav")).unwrap();
    std::fs::copy(example("upset_caller.wav"), calls.join("x&<y>.wav")).unwrap();
    // A truncated copy (half the data) and a file that is not audio at all.
    let bytes = std::fs::read(example("agent_interrupts.wav")).unwrap();
    std::fs::write(calls.join("truncated.wav"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(
        calls.join("corrupt.wav"),
        b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk",
    )
    .unwrap();
    let out = dir.join("out");

    let output = attune()
        .args([
            "analyze",
            calls.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--format", "html", "--agent", "ana", "--team", "blue"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a corrupt file must fail the run");
    assert!(stderr.contains("corrupt.wav"), "{stderr}");
    assert!(stderr.contains("truncated file"), "{stderr}");
    assert!(
        stdout.contains("3 scored") && stdout.contains("1 failed"),
        "{stdout}"
    );
    assert_eq!(
        json_files(&out),
        ["calm.json", "truncated.json", "x__y_.json"]
    );
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("href='calm.html'") && index.contains("failed"));
    assert!(index.contains("x&amp;&lt;y&gt;.wav") && !index.contains("x&<y>"));
    let report = std::fs::read_to_string(out.join("calm.html")).unwrap();
    assert!(report.contains("<svg") && report.contains("id='ev-greets_promptly-0'"));
    assert!(report.contains("href='#ev-greets_promptly-0'"));
    assert!(!report.contains("src=") && !report.contains("https://"));

    // The database holds the three.
    let listed = run_ok(&[
        "calls",
        "--db",
        out.join("attune.db").to_str().unwrap(),
        "--agent",
        "ana",
        "--format",
        "json",
    ]);
    let rows: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);

    // A killed run: one result lost before its rename, a stale temp file left behind.
    let before = std::fs::read_to_string(out.join("x__y_.json")).unwrap();
    std::fs::remove_file(out.join("calm.json")).unwrap();
    std::fs::write(out.join(".calm.json.tmp-99999"), "{\"half").unwrap();
    std::fs::remove_file(calls.join("corrupt.wav")).unwrap();
    let stdout = run_ok(&[
        "analyze",
        calls.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "html",
    ]);
    assert!(
        stdout.contains("1 scored, 2 already scored, 0 failed"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("x__y_.json")).unwrap(),
        before
    );
    assert!(!out.join(".calm.json.tmp-99999").exists());
    let again: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("calm.json")).unwrap()).unwrap();
    assert_eq!(again["file"], calls.join("calm.wav").display().to_string());

    // --force scores everything again.
    let stdout = run_ok(&[
        "analyze",
        calls.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "html",
        "--force",
    ]);
    assert!(stdout.contains("3 scored, 0 already scored"), "{stdout}");
}

#[test]
fn csv_rows_and_summary() {
    let dir = temp_dir("qa-csv");
    let out = dir.join("out");
    let path = example("backchannels_crosstalk.wav");
    run_ok(&[
        "analyze",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    let rows = std::fs::read_to_string(out.join("backchannels_crosstalk.csv")).unwrap();
    let mut lines = rows.lines();
    assert!(lines.next().unwrap().starts_with("file,section,item"));
    // One row per item of the default rubric (12 since the Empathy section of qa-2026.12-1).
    assert_eq!(lines.count(), attune_qa::Rubric::default().items.len());
    assert_eq!(attune_qa::Rubric::default().items.len(), 12);
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 2);
}

#[test]
fn unwritable_output_folder_is_a_clear_error() {
    // /sys refuses new folders even to root.
    let e = run_err(&[
        "analyze",
        example("calm.wav").to_str().unwrap(),
        "--out",
        "/sys/attune-qa-out",
    ]);
    assert!(
        e.contains("/sys/attune-qa-out") && e.contains("not writable"),
        "{e}"
    );
    // A file where the folder should be.
    let dir = temp_dir("qa-notdir");
    let file = dir.join("file");
    std::fs::write(&file, "x").unwrap();
    let e = run_err(&[
        "analyze",
        example("calm.wav").to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(e.contains(file.to_str().unwrap()), "{e}");
}

#[test]
fn locked_database_is_a_clear_error() {
    let dir = temp_dir("qa-locked");
    let db = dir.join("attune.db");
    // Create it, then hold its write lock from this process.
    drop(attune_qa::store::Store::open(db.to_str().unwrap()).unwrap());
    let conn = rusqlite_lock(&db);
    let output = attune()
        .args(["analyze", example("calm.wav").to_str().unwrap()])
        .args(["--out", dir.join("out").to_str().unwrap()])
        .args(["--db", db.to_str().unwrap(), "--busy-timeout-s", "0.3"])
        .output()
        .unwrap();
    drop(conn);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("locked") && stderr.contains("attune.db"),
        "{stderr}"
    );
}

/// A second connection holding the database's write lock until dropped.
fn rusqlite_lock(db: &Path) -> attune_qa::store::Store {
    let mut store = attune_qa::store::Store::open(db.to_str().unwrap()).unwrap();
    store.hold_write_lock_for_tests().unwrap();
    store
}

fn scoring_setup() -> attune_qa::ScoringSetup {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/emotion.json");
    attune_qa::ScoringSetup::load(Some(&model), None, None, 0).unwrap()
}

#[test]
fn streamed_document_is_byte_identical_to_the_whole_tree() {
    use attune_qa::stream::{Layout, write_report};
    let setup = scoring_setup();
    let report = attune_qa::score_recording(&example("upset_caller.wav"), &setup, |_| {}).unwrap();
    assert!(!report.caller_emotion.is_empty() && !report.cues.is_empty());
    let whole = serde_json::to_value(&report).unwrap();
    let mut pretty = Vec::new();
    write_report(&report, Layout::Pretty, &mut pretty).unwrap();
    assert_eq!(
        String::from_utf8(pretty).unwrap(),
        serde_json::to_string_pretty(&whole).unwrap()
    );
    let mut compact = Vec::new();
    write_report(&report, Layout::Compact, &mut compact).unwrap();
    assert_eq!(
        String::from_utf8(compact).unwrap(),
        serde_json::to_string(&whole).unwrap()
    );
    assert_eq!(
        attune_qa::stream::to_compact_string(&report).unwrap(),
        serde_json::to_string(&whole).unwrap()
    );
}

#[test]
fn finish_moves_the_call_lists_out_instead_of_copying_them() {
    use attune_core::call::{CallAnalyzer, CallConfig};
    let model = scoring_setup().model;
    let mut call = CallAnalyzer::new(CallConfig::default(), model).unwrap();
    let agent = crate::util::synthetic_voice(8_000, 20.0, 120.0, 0.2, true);
    let caller = crate::util::synthetic_voice(8_000, 20.0, 210.0, 0.2, true);
    let mut events = Vec::new();
    call.push(0, &agent, &mut events);
    call.push(1, &caller, &mut events);
    let outcome = call.finish(&mut events);
    assert!(!outcome.caller_emotion.is_empty() && !outcome.agent_emotion.is_empty());
    // The lists exist once: the analyzer kept no copy.
    let again = call.finish(&mut events);
    assert!(again.caller_emotion.is_empty() && again.agent_emotion.is_empty());
    assert!(again.cues.is_empty());
    assert_eq!(again.duration_s, outcome.duration_s);
}

#[test]
fn a_stalled_channel_keeps_pending_frames_bounded_and_the_call_goes_on() {
    use attune_core::call::{CallAnalyzer, CallConfig, MAX_PENDING_FRAMES};
    let model = scoring_setup().model;
    let agent = crate::util::synthetic_voice(8_000, 60.0, 120.0, 0.2, true);
    let caller = crate::util::synthetic_voice(8_000, 60.0, 210.0, 0.2, true);
    let mut events = Vec::new();
    // Evenly fed: nothing is taken as silent.
    let mut even = CallAnalyzer::new(CallConfig::default(), model.clone()).unwrap();
    for (a, c) in agent.chunks(8_000).zip(caller.chunks(8_000)) {
        even.push(0, a, &mut events);
        even.push(1, c, &mut events);
    }
    assert_eq!(even.frames_taken_as_silent(), [0, 0]);
    let even_s = even.finish(&mut events).duration_s;
    // The caller's stream stalls for the whole minute, then sends it all at once.
    let mut call = CallAnalyzer::new(CallConfig::default(), model).unwrap();
    for a in agent.chunks(8_000) {
        call.push(0, a, &mut events);
        let [p0, p1] = call.pending_frames();
        assert!(p0 <= MAX_PENDING_FRAMES && p1 == 0, "{p0} {p1}");
    }
    // The call went on: all but the last 10 s were analysed, the caller taken as silent.
    let behind_s = MAX_PENDING_FRAMES as f64 * 0.01;
    assert!(
        (call.analysed_s() - (60.0 - behind_s)).abs() < 0.2,
        "{}",
        call.analysed_s()
    );
    let silent = call.frames_taken_as_silent();
    assert_eq!(silent[0], 0);
    assert!(
        (silent[1] as f64 * 0.01 - (60.0 - behind_s)).abs() < 0.2,
        "{silent:?}"
    );
    // Its late audio fills the last 10 s; what was taken as silent is dropped, not replayed.
    for c in caller.chunks(8_000) {
        call.push(1, c, &mut events);
        assert!(
            call.pending_frames()
                .iter()
                .all(|&p| p <= MAX_PENDING_FRAMES)
        );
    }
    let outcome = call.finish(&mut events);
    assert!(
        (outcome.duration_s - even_s).abs() < 0.05,
        "{} {even_s}",
        outcome.duration_s
    );
}

/// A WAV of `target_s` seconds: the example calls' audio repeated (they share one
/// format: 8 kHz stereo mu-law).
fn long_recording(path: &Path, target_s: f64) {
    fn chunk<'a>(bytes: &'a [u8], id: &[u8]) -> &'a [u8] {
        let mut i = 12;
        while i + 8 <= bytes.len() {
            let size = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) as usize;
            if &bytes[i..i + 4] == id {
                return &bytes[i + 8..(i + 8 + size).min(bytes.len())];
            }
            i += 8 + size + (size & 1);
        }
        panic!("no {id:?} chunk");
    }
    let files: Vec<Vec<u8>> = ["agent_interrupts.wav", "calm.wav", "upset_caller.wav"]
        .iter()
        .map(|n| std::fs::read(example(n)).unwrap())
        .collect();
    let fmt = chunk(&files[0], b"fmt ").to_vec();
    let byte_rate = u32::from_le_bytes(fmt[8..12].try_into().unwrap()) as f64;
    let need = (target_s * byte_rate) as usize / 2 * 2;
    let mut data = Vec::with_capacity(need);
    while data.len() < need {
        for f in &files {
            assert_eq!(chunk(f, b"fmt "), &fmt[..]);
            let d = chunk(f, b"data");
            data.extend_from_slice(&d[..d.len().min(need - data.len())]);
        }
    }
    let mut out = Vec::with_capacity(need + 64);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((4 + 8 + fmt.len() + 8 + need) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    out.extend_from_slice(&fmt);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(need as u32).to_le_bytes());
    out.extend_from_slice(&data);
    std::fs::write(path, out).unwrap();
}

/// Peak memory `attune analyze --out` reports for scoring a recording of `hours`.
fn batch_peak_memory_mb(dir: &Path, hours: f64) -> f64 {
    let wav = dir.join(format!("long_{hours}h.wav"));
    long_recording(&wav, hours * 3600.0);
    let out = dir.join(format!("out_{hours}h"));
    let stdout = run_ok(&[
        "analyze",
        wav.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    std::fs::remove_file(&wav).unwrap();
    let figure = stdout
        .split("peak memory ")
        .nth(1)
        .and_then(|rest| rest.split(" MB").next())
        .unwrap_or_else(|| panic!("no peak memory in: {stdout}"));
    figure.parse().unwrap()
}

/// Memory of a long recording hardly grows with its length: the result document is written
/// without a JSON tree of it. Run: `cargo test --test it long_recording -- --ignored
/// --nocapture` (about 30 s).
#[test]
#[ignore = "long: scores a 1-hour and a 4-hour recording"]
fn long_recording_memory_is_nearly_flat() {
    let dir = temp_dir("qa-long");
    let one_h = batch_peak_memory_mb(&dir, 1.0);
    let four_h = batch_peak_memory_mb(&dir, 4.0);
    let growth_mb_per_h = (four_h - one_h) / 3.0;
    eprintln!("peak memory: 1 h {one_h:.1} MB, 4 h {four_h:.1} MB: {growth_mb_per_h:.2} MB/h");
    // Before the document was streamed it grew by about 12 MB per hour of call.
    assert!(
        growth_mb_per_h < 8.0,
        "peak memory grows {growth_mb_per_h:.2} MB per hour of call (1 h: {one_h:.1} MB, 4 h: {four_h:.1} MB)"
    );
}

#[test]
fn a_report_is_stored_as_its_document_read_back_would_be() {
    use attune_qa::store::{ReportDigest, StoredCall};
    let setup = scoring_setup();
    let report = attune_qa::score_recording(&example("upset_caller.wav"), &setup, |_| {}).unwrap();
    let doc = serde_json::to_value(&report).unwrap();
    assert_eq!(
        ReportDigest::of(&report),
        ReportDigest::from_document(&doc).unwrap()
    );
    let stored = |call: StoredCall| StoredCall {
        stored_at: String::new(),
        ..call
    };
    let typed = StoredCall::from_report(&report, "c", "recording", None, None, "t".into());
    let read = StoredCall::from_document(&doc, "c", "recording", None, None, "t".into());
    let (typed, read) = (stored(typed.unwrap()), stored(read.unwrap()));
    assert!(!typed.cues.is_empty() && !typed.qa_items.is_empty());
    assert_eq!(typed, read);
    assert_eq!(
        attune_qa::csv::summary_row(&ReportDigest::of(&report))
            .split(',')
            .count(),
        9
    );
}

#[test]
fn a_report_page_is_the_same_from_the_report_and_from_its_stored_document() {
    let setup = scoring_setup();
    for name in ["upset_caller.wav", "agent_interrupts.wav"] {
        let report = attune_qa::score_recording(&example(name), &setup, |_| {}).unwrap();
        let stored: serde_json::Value =
            serde_json::from_str(&attune_qa::stream::to_compact_string(&report).unwrap()).unwrap();
        assert_eq!(
            attune_qa::html::render_call(&report),
            attune_qa::html::render_document(&stored).unwrap(),
            "{name}"
        );
    }
}
