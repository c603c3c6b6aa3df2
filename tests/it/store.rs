//! The store: migrations, saving calls with their cues and QA items, the queries the CLI and the
//! console use, trends, and a locked or full database. The same suite runs on SQLite and — with
//! the `postgres` feature and `ATTUNE_TEST_POSTGRES_URL` set (as `.ci/run` does) — PostgreSQL.

use std::time::Duration;

use serde_json::{Value, json};

use attune_qa::store::{CallQuery, Store, StoreError, StoredCall, TrendPeriod};

use crate::util::temp_dir;

/// A result document as `attune analyze` writes it (the fields the store reads).
fn document(score: Option<f64>, agent_interruptions: i64, end_angry: f64) -> Value {
    json!({
        "file": "x.wav",
        "duration_s": 300.0,
        "talk": {"agent_s": 120.0, "caller_s": 100.0, "overlap_s": 5.0, "silence_s": 85.0},
        "interruption_count": {"agent": agent_interruptions, "caller": 1},
        "caller_emotion": [
            {"t_s": 10.0, "emotion": "neutral", "arousal": 0.2, "valence": 0.1, "confidence": 0.8},
            {"t_s": 290.0, "emotion": if end_angry >= 0.5 { "angry" } else { "neutral" },
             "arousal": 0.7, "valence": -0.5, "confidence": 0.7}
        ],
        "agent_calmness": [{"t_s": 20.0, "score": 70.0}],
        "cues": [
            {"cue_id": 1, "kind": "caller_upset", "party": "caller", "severity": "critical",
             "event": "open", "t_s": 100.0, "start_s": 98.0, "end_s": 100.0,
             "evidence": {"rule": "p >= 0.6 for 2 s", "values": [{"name": "p", "value": 0.7}]}},
            {"cue_id": 1, "kind": "caller_upset", "party": "caller", "severity": "critical",
             "event": "close", "t_s": 120.0, "start_s": 98.0, "end_s": 118.0,
             "evidence": {"rule": "p >= 0.6 for 2 s", "values": [{"name": "p", "value": 0.3}]}}
        ],
        "facts": {
            "caller_end_upset_probability": {"value": end_angry, "evidence": []},
            "agent_calmness_min": {"value": 55.0, "evidence": []}
        },
        "qa": {
            "score_pct": score, "raw_score_pct": score, "auto_fail": score == Some(0.0),
            "items": [
                {"section": "Opening", "id": "greets_promptly", "title": "Greets", "weight": 10.0,
                 "rule": "agent_first_speech_s <= 5", "result": "pass", "value": 1.2,
                 "auto_fail": false, "evidence": [{"start_s": 0.0, "end_s": 1.2, "label": "l"}]},
                {"section": "Tone", "id": "de_escalation", "title": "De-escalates", "weight": 10.0,
                 "rule": "caller_valence_change >= -0.1", "result": "not_applicable",
                 "value": null, "auto_fail": false, "evidence": []}
            ]
        },
        "versions": {"attune": "0.1.0", "model": "m1", "cue_rules": "r1", "rubric": "q1",
                     "rubric_digest": "d"},
        "input": {"path": "/calls/x.wav", "size_bytes": 10, "modified_unix_ms": 0}
    })
}

fn call(id: &str, agent: &str, team: &str, at: &str, doc: &Value) -> StoredCall {
    StoredCall::from_document(
        doc,
        id,
        "recording",
        Some(agent.to_owned()),
        Some(team.to_owned()),
        at.to_owned(),
    )
    .unwrap()
}

fn ids(rows: &[attune_qa::store::CallRow]) -> Vec<&str> {
    rows.iter().map(|r| r.call_id.as_str()).collect()
}

/// Everything the store promises, against one fresh database.
fn store_suite(location: &str) {
    let mut store = Store::open(location).unwrap();
    assert_eq!(store.schema_version().unwrap(), 5);
    drop(store);
    // Reopening runs no migration twice.
    let mut store = Store::open(location).unwrap();
    assert_eq!(store.schema_version().unwrap(), 5);

    store
        .save_call(&call(
            "a1",
            "ana",
            "blue",
            "2026-11-01T09:00:00.000Z",
            &document(Some(90.0), 0, 0.1),
        ))
        .unwrap();
    store
        .save_call(&call(
            "a2",
            "ana",
            "blue",
            "2026-11-02T09:00:00.000Z",
            &document(Some(40.0), 5, 0.8),
        ))
        .unwrap();
    store
        .save_call(&call(
            "b1",
            "ben",
            "red",
            "2026-11-02T15:00:00.000Z",
            &document(Some(0.0), 3, 0.2),
        ))
        .unwrap();
    store
        .save_call(&call(
            "b2",
            "ben",
            "red",
            "2026-12-01T10:00:00.000Z",
            &document(None, 0, 0.9),
        ))
        .unwrap();

    let all = store.calls(&CallQuery::default()).unwrap();
    assert_eq!(ids(&all), ["b2", "b1", "a2", "a1"], "newest first");
    assert_eq!(all[0].cue_count, 1, "opened cues are counted");
    assert_eq!(all[0].recording.as_deref(), Some("/calls/x.wav"));
    assert!(all[2].caller_ended_upset && !all[3].caller_ended_upset);
    assert_eq!(all[2].caller_end_emotion.as_deref(), Some("angry"));
    assert!(all[1].auto_fail);

    let q = |f: fn(&mut CallQuery)| {
        let mut query = CallQuery::default();
        f(&mut query);
        query
    };
    let by = |store: &mut Store, query: CallQuery| -> Vec<String> {
        ids(&store.calls(&query).unwrap())
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        by(&mut store, q(|q| q.agent = Some("ana".into()))),
        ["a2", "a1"]
    );
    assert_eq!(
        by(&mut store, q(|q| q.team = Some("red".into()))),
        ["b2", "b1"]
    );
    assert_eq!(
        by(
            &mut store,
            q(|q| {
                q.from = Some("2026-11-02".into());
                q.to = Some("2026-11-02".into());
            })
        ),
        ["b1", "a2"]
    );
    assert_eq!(
        by(
            &mut store,
            q(|q| {
                q.min_score_pct = Some(30.0);
                q.max_score_pct = Some(95.0);
            })
        ),
        ["a2", "a1"]
    );
    assert_eq!(
        by(&mut store, q(|q| q.caller_ended_upset = true)),
        ["b2", "a2"]
    );
    assert_eq!(
        by(&mut store, q(|q| q.agent_interruptions_over = Some(2))),
        ["b1", "a2"]
    );
    assert_eq!(by(&mut store, q(|q| q.limit = Some(1))), ["b2"]);

    // Cues and QA items come back in order.
    let cues = store.call_cues("a1").unwrap();
    assert_eq!(cues.len(), 2);
    assert_eq!(
        (cues[0].event.as_str(), cues[1].event.as_str()),
        ("open", "close")
    );
    assert!(cues[0].evidence_json.contains("p >= 0.6"));
    let items = store.qa_items("a1").unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].result, "not_applicable");
    assert_eq!(items[1].value, None);
    assert_eq!(items[0].value, Some(1.2));
    let report: Value = serde_json::from_str(&store.report_json("a1").unwrap().unwrap()).unwrap();
    assert_eq!(report["qa"]["score_pct"], 90.0);
    assert!(store.has_call("a1").unwrap() && !store.has_call("zz").unwrap());

    // Saving again replaces, never duplicates.
    store
        .save_call(&call(
            "a1",
            "ana",
            "blue",
            "2026-11-01T09:00:00.000Z",
            &document(Some(80.0), 1, 0.1),
        ))
        .unwrap();
    let ana = store
        .calls(&CallQuery {
            agent: Some("ana".into()),
            ..CallQuery::default()
        })
        .unwrap();
    assert_eq!(ana.len(), 2);
    assert_eq!(ana[1].score_pct, Some(80.0));
    assert_eq!(store.call_cues("a1").unwrap().len(), 2);

    // Trends per agent and day / month.
    let days = store
        .agent_trends(&CallQuery::default(), TrendPeriod::Day)
        .unwrap();
    let summary: Vec<(String, String, i64)> = days
        .iter()
        .map(|t| (t.agent.clone(), t.period.clone(), t.calls))
        .collect();
    assert_eq!(
        summary,
        [
            ("ana".into(), "2026-11-01".into(), 1),
            ("ana".into(), "2026-11-02".into(), 1),
            ("ben".into(), "2026-11-02".into(), 1),
            ("ben".into(), "2026-12-01".into(), 1),
        ]
    );
    let months = store
        .agent_trends(&CallQuery::default(), TrendPeriod::Month)
        .unwrap();
    let ana_nov = &months[0];
    assert_eq!(
        (ana_nov.agent.as_str(), ana_nov.period.as_str()),
        ("ana", "2026-11")
    );
    assert_eq!(ana_nov.calls, 2);
    assert_eq!(ana_nov.mean_score_pct, Some(60.0));
    assert_eq!(ana_nov.min_score_pct, Some(40.0));
    assert_eq!(ana_nov.callers_ended_upset, 1);
    assert!((ana_nov.mean_agent_interruptions - 3.0).abs() < 1e-9);
    // ISO weeks: 2026-11-01 is a Sunday (week 44), 2026-11-02 a Monday (week 45).
    let weeks = store
        .agent_trends(&CallQuery::default(), TrendPeriod::Week)
        .unwrap();
    let summary: Vec<(&str, &str, i64, Option<f64>)> = weeks
        .iter()
        .map(|t| {
            (
                t.agent.as_str(),
                t.period.as_str(),
                t.calls,
                t.mean_score_pct,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ana", "2026-W44", 1, Some(80.0)), // a1 as saved again
            ("ana", "2026-W45", 1, Some(40.0)),
            ("ben", "2026-W45", 1, Some(0.0)),
            ("ben", "2026-W49", 1, None),
        ]
    );
    let ben_nov = &months[1];
    assert_eq!(ben_nov.auto_fails, 1);

    accounts_suite(&mut store);
}

/// Accounts, tokens, the audit log and acknowledgements (migration 3), on either engine.
fn accounts_suite(store: &mut Store) {
    use attune_qa::store::{AckRecord, AuditQuery, TokenRecord, UserRecord};
    let user = UserRecord {
        name: "sue".into(),
        role: "supervisor".into(),
        teams: vec!["t1".into(), "t2".into()],
        agent_id: None,
        password_hash: "$argon2id$fake".into(),
        disabled: false,
        created_at: String::new(),
        updated_at: String::new(),
    };
    store.add_user(&user).unwrap();
    let again = store.add_user(&user).unwrap_err().to_string();
    assert!(again.contains("already exists"), "{again}");
    let stored = store.user("sue").unwrap().unwrap();
    assert_eq!(stored.teams, ["t1", "t2"]);
    assert_eq!(stored.password_hash, "$argon2id$fake");
    store.set_user_disabled("sue", true).unwrap();
    assert!(store.users().unwrap()[0].disabled);
    assert!(store.set_user_disabled("nobody", true).is_err());
    store
        .set_user_password_hash("sue", "$argon2id$new")
        .unwrap();
    assert_eq!(
        store.user("sue").unwrap().unwrap().password_hash,
        "$argon2id$new"
    );

    let token = TokenRecord {
        token_id: "abc123".into(),
        name: "pbx".into(),
        role: "ingest".into(),
        teams: vec!["*".into()],
        token_sha256: "f".repeat(64),
        created_at: "2026-12-03T00:00:00Z".into(),
        created_by: "cli:test".into(),
        revoked_at: None,
        expires_at: None,
    };
    store.add_token(&token).unwrap();
    assert_eq!(
        store
            .token_by_hash(&"f".repeat(64))
            .unwrap()
            .unwrap()
            .token_id,
        "abc123"
    );
    assert!(store.token_by_hash(&"0".repeat(64)).unwrap().is_none());
    store.revoke_token("abc123").unwrap();
    assert!(store.tokens().unwrap()[0].revoked_at.is_some());
    assert!(store.revoke_token("nope").is_err());

    for action in ["login", "ack", "upload"] {
        store
            .append_audit("user:sue", action, "c1", "127.0.0.1", "ok")
            .unwrap();
    }
    let log = store.audit(&AuditQuery::default()).unwrap();
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [3, 2, 1], "newest first, numbered in order");
    assert_eq!(log[0].action, "upload");
    let acks_only = store
        .audit(&AuditQuery {
            action: Some("ack".into()),
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(acks_only.len(), 1);

    let ack = |by: &str| AckRecord {
        call_id: "c1".into(),
        cue_id: 7,
        by: by.into(),
        at_unix_ms: 1,
    };
    store.save_ack(&ack("sue")).unwrap();
    store.save_ack(&ack("later")).unwrap();
    let acks = store.acks("c1").unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].by, "sue", "the first acknowledgement stands");
}

#[test]
fn sqlite_store_saves_and_queries() {
    let dir = temp_dir("store-sqlite");
    store_suite(dir.join("attune.db").to_str().unwrap());
}

#[test]
fn postgres_store_saves_and_queries() {
    let Ok(url) = std::env::var("ATTUNE_TEST_POSTGRES_URL") else {
        eprintln!("skipping: ATTUNE_TEST_POSTGRES_URL not set (.ci/run sets it)");
        return;
    };
    if !cfg!(feature = "postgres") {
        let e = Store::open(&url).err().unwrap().to_string();
        assert!(e.contains("feature"), "{e}");
        return;
    }
    let db_url = attune_qa::store::fresh_postgres_database_for_tests(
        &url,
        &format!("attune_it_{}", std::process::id()),
    )
    .unwrap();
    store_suite(&db_url);
}

#[test]
fn postgres_urls_without_the_feature_are_explained() {
    if cfg!(feature = "postgres") {
        return;
    }
    let e = Store::open("postgres://nobody@127.0.0.1:1/x")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("postgres") && e.contains("feature"), "{e}");
}

#[test]
fn locked_database_waits_then_says_so() {
    let dir = temp_dir("store-locked");
    let path = dir.join("attune.db");
    let path = path.to_str().unwrap();
    let mut holder = Store::open(path).unwrap();
    holder.hold_write_lock_for_tests().unwrap();
    let mut store = Store::open_with_timeout(path, Duration::from_millis(200)).unwrap();
    let started = std::time::Instant::now();
    let e = store
        .save_call(&call(
            "a",
            "ana",
            "blue",
            "2026-11-01T00:00:00Z",
            &document(Some(1.0), 0, 0.0),
        ))
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(matches!(e, StoreError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("locked") && e.to_string().contains(path));
    // Reading still works while a writer holds the lock.
    assert!(store.calls(&CallQuery::default()).unwrap().is_empty());
    drop(holder);
    store
        .save_call(&call(
            "a",
            "ana",
            "blue",
            "2026-11-01T00:00:00Z",
            &document(Some(1.0), 0, 0.0),
        ))
        .unwrap();
}

#[test]
fn postgres_locked_database_waits_then_says_so() {
    let Ok(url) = std::env::var("ATTUNE_TEST_POSTGRES_URL") else {
        eprintln!("skipping: ATTUNE_TEST_POSTGRES_URL not set (.ci/run sets it)");
        return;
    };
    if !cfg!(feature = "postgres") {
        return;
    }
    let db_url = attune_qa::store::fresh_postgres_database_for_tests(
        &url,
        &format!("attune_lock_{}", std::process::id()),
    )
    .unwrap();
    let mut holder = Store::open(&db_url).unwrap();
    holder.hold_write_lock_for_tests().unwrap();
    let mut store = Store::open_with_timeout(&db_url, Duration::from_millis(200)).unwrap();
    let started = std::time::Instant::now();
    let e = store
        .save_call(&call(
            "a",
            "ana",
            "blue",
            "2026-11-01T00:00:00Z",
            &document(Some(1.0), 0, 0.0),
        ))
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(matches!(e, StoreError::Locked { .. }), "{e}");
    let text = e.to_string();
    // Names the database (without a password) and the table the writer waited for.
    assert!(
        text.contains("locked") && text.contains(store.location()),
        "{text}"
    );
    assert!(text.contains("table cues"), "{text}");
    assert!(text.contains("waited 0.2 s"), "{text}");
    // Reading still works while a writer holds the lock.
    assert!(store.calls(&CallQuery::default()).unwrap().is_empty());
    drop(holder);
    // The holder's connection is gone: its lock with it (the server may take a moment).
    let mut store = Store::open_with_timeout(&db_url, Duration::from_secs(5)).unwrap();
    store
        .save_call(&call(
            "a",
            "ana",
            "blue",
            "2026-11-01T00:00:00Z",
            &document(Some(1.0), 0, 0.0),
        ))
        .unwrap();
    assert_eq!(store.calls(&CallQuery::default()).unwrap().len(), 1);
}

#[test]
fn full_database_loses_nothing_already_stored() {
    let dir = temp_dir("store-full");
    let path = dir.join("attune.db");
    let mut store = Store::open(path.to_str().unwrap()).unwrap();
    store
        .save_call(&call(
            "a",
            "ana",
            "blue",
            "2026-11-01T00:00:00Z",
            &document(Some(50.0), 0, 0.0),
        ))
        .unwrap();
    // No room for more pages: the next (large) call cannot be written.
    store.limit_sqlite_pages(1).unwrap();
    let mut big = document(Some(70.0), 0, 0.0);
    big["padding"] = Value::String("x".repeat(200_000));
    let e = store
        .save_call(&call("b", "ben", "red", "2026-11-02T00:00:00Z", &big))
        .unwrap_err();
    assert!(matches!(e, StoreError::Full { .. }), "{e}");
    assert!(e.to_string().contains("disk is full"));
    drop(store);
    let mut store = Store::open(path.to_str().unwrap()).unwrap();
    let rows = store.calls(&CallQuery::default()).unwrap();
    assert_eq!(ids(&rows), ["a"]);
    assert!(store.call_cues("b").unwrap().is_empty());
}

#[test]
fn calls_command_filters_and_trends() {
    let dir = temp_dir("store-cli");
    let db = dir.join("attune.db");
    let mut store = Store::open(db.to_str().unwrap()).unwrap();
    store
        .save_call(&call(
            "a1",
            "ana",
            "blue",
            "2026-11-01T09:00:00.000Z",
            &document(Some(90.0), 0, 0.1),
        ))
        .unwrap();
    store
        .save_call(&call(
            "a2",
            "ana",
            "blue",
            "2026-11-02T09:00:00.000Z",
            &document(Some(40.0), 5, 0.8),
        ))
        .unwrap();
    drop(store);
    let db = db.to_str().unwrap();
    let rows: Value = serde_json::from_str(&crate::util::run_ok(&[
        "calls",
        "--db",
        db,
        "--caller-ended-upset",
        "--agent-interruptions-over",
        "4",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["call_id"], "a2");
    let table = crate::util::run_ok(&["calls", "--db", db, "--min-score", "50"]);
    assert!(
        table.contains("ana") && table.contains("1 calls"),
        "{table}"
    );
    let trend = crate::util::run_ok(&["calls", "--db", db, "--trend", "--period", "month"]);
    assert!(
        trend.contains("2026-11") && trend.contains("65.0"),
        "{trend}"
    );
    let weeks = crate::util::run_ok(&["calls", "--db", db, "--trend", "--period", "week"]);
    assert!(
        weeks.contains("2026-W44") && weeks.contains("2026-W45") && weeks.contains("90.0"),
        "{weeks}"
    );
    let e = crate::util::run_err(&["calls", "--db", db, "--from", "yesterday"]);
    assert!(e.contains("yesterday") && e.contains("YYYY-MM-DD"), "{e}");
    let e = crate::util::run_err(&["calls", "--db", dir.join("none.db").to_str().unwrap()]);
    assert!(e.contains("no database"), "{e}");
}

/// `attune calls --trend`'s empathy columns: means over the calls where each measure was
/// scored, read from the stored documents (calls stored before the measures count in none).
#[test]
fn empathy_trends_come_from_the_stored_documents() {
    let dir = temp_dir("empathy-trend");
    let db = dir.join("attune.db");
    let mut store = Store::open(db.to_str().unwrap()).unwrap();
    let with = |listening: Option<f64>, de_escalation: Option<f64>, upset_interruptions: u64| {
        let mut doc = document(Some(70.0), 1, 0.1);
        doc["empathy"] = json!({
            "active_listening": {"score": listening, "measures": {"interruptions_while_upset": upset_interruptions}, "evidence": []},
            "attunement": {"score": 50.0, "measures": {}, "evidence": []},
            "de_escalation": {"score": de_escalation, "reason": "x", "measures": {}, "evidence": []}
        });
        doc
    };
    let calls = [
        (
            "e1",
            "2026-12-01T09:00:00.000Z",
            with(Some(80.0), Some(40.0), 0),
        ),
        ("e2", "2026-12-01T10:00:00.000Z", with(Some(60.0), None, 2)),
        // Stored before the empathy measures: no empathy object.
        (
            "e3",
            "2026-12-01T11:00:00.000Z",
            document(Some(70.0), 1, 0.1),
        ),
    ];
    for (id, at, doc) in &calls {
        store.save_call(&call(id, "cai", "blue", at, doc)).unwrap();
    }
    let rows =
        attune_qa::trend::agent_empathy_trends(&mut store, &CallQuery::default(), TrendPeriod::Day)
            .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!((r.agent.as_str(), r.period.as_str()), ("cai", "2026-12-01"));
    assert_eq!(r.mean_active_listening, Some(70.0));
    assert_eq!(r.active_listening_calls, 2);
    assert_eq!(r.mean_attunement, Some(50.0));
    assert_eq!(r.mean_de_escalation, Some(40.0));
    assert_eq!(r.de_escalation_calls, 1);
    assert_eq!(r.interruptions_while_upset, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Files in `dir` whose names end with `suffix` (none when it does not exist).
#[cfg(unix)]
fn count_files(dir: &std::path::Path, suffix: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
            .count()
    })
}

/// Waits up to `limit` for `done`.
#[cfg(unix)]
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 17's crash case: `kill -9` while calls are live and ended calls wait for a locked
/// database. On restart every ended call is stored exactly once (from the spool), the calls
/// that were live are stored as interrupted, the spool is empty and the file is sound.
#[cfg(unix)]
#[test]
fn kill_9_loses_no_ended_call_and_stores_the_live_ones_as_interrupted() {
    use std::process::{Child, Stdio};

    use crate::util::{ServeProcess, attune, run_ok, synthetic_voice, write_wav_i16};

    let dir = temp_dir("kill9-spool");
    let db_path = dir.join("attune.db");
    let db = db_path.to_str().unwrap();
    let spool = dir.join("attune.db.spool");
    let token = run_ok(&[
        "tokens", "create", "--role", "ingest", "--teams", "*", "--db", db,
    ])
    .trim()
    .to_owned();
    // A 2 s call (replayed 4 times faster) and a 60 s one (live until the kill).
    let short = dir.join("short.wav");
    write_wav_i16(
        &short,
        8000,
        &[
            synthetic_voice(8000, 2.0, 120.0, 0.25, true),
            synthetic_voice(8000, 2.0, 210.0, 0.3, true),
        ],
    );
    let long = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/calls/calm.wav");
    let server = ServeProcess::start(&["--db", db]);
    let grpc_url = server.grpc_url();
    let replay = |file: &str, id: &str, speed: &str| -> Child {
        attune()
            .args(["replay", file, "--server", &grpc_url])
            .args(["--token", &token, "--call-id", id, "--agent-id", "a1"])
            .args(["--team", "t1", "--speed", speed, "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run attune replay")
    };
    let short = short.to_str().unwrap();
    // One call stored before the database is locked.
    assert!(replay(short, "ended-0", "4").wait().unwrap().success());
    wait_for(Duration::from_secs(20), "ended-0 stored", || {
        Store::open(db).unwrap().has_call("ended-0").unwrap()
    });
    let mut live: Vec<Child> = ["live-1", "live-2"]
        .iter()
        .map(|id| replay(long, id, "1"))
        .collect();
    wait_for(Duration::from_secs(20), "2 live markers", || {
        count_files(&spool.join("live"), ".json") == 2
    });
    // The database locked: the calls that end now wait in the spool.
    let mut holder = Store::open(db).unwrap();
    holder.hold_write_lock_for_tests().unwrap();
    for i in 1..=3 {
        assert!(
            replay(short, &format!("ended-{i}"), "4")
                .wait()
                .unwrap()
                .success()
        );
    }
    wait_for(Duration::from_secs(20), "3 spooled calls", || {
        count_files(&spool, ".call.json") == 3
    });
    server.kill();
    for mut replay in live.drain(..) {
        let _ = replay.kill();
        let _ = replay.wait();
    }
    drop(holder);
    assert_eq!(count_files(&spool.join("live"), ".json"), 2);

    let server = ServeProcess::start(&["--db", db]);
    wait_for(Duration::from_secs(30), "the spool stored", || {
        count_files(&spool, ".call.json") == 0
            && count_files(&spool.join("recovering"), ".json") == 0
            && Store::open(db)
                .unwrap()
                .calls(&CallQuery::default())
                .unwrap()
                .len()
                == 6
    });
    let (status, log) = server.terminate(Duration::from_secs(40));
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("integrity_check ok"), "{log}");
    assert!(
        log.contains("3 ended calls stored again, 2 calls that were live"),
        "{log}"
    );
    let mut store = Store::open(db).unwrap();
    assert!(store.check_integrity(true).unwrap().is_empty());
    let rows = store.calls(&CallQuery::default()).unwrap();
    // Every call once: the ended ones as live calls, the live ones as interrupted.
    let mut got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.call_id.as_str(), r.source.as_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("ended-0", "live"),
            ("ended-1", "live"),
            ("ended-2", "live"),
            ("ended-3", "live"),
            ("live-1", "interrupted"),
            ("live-2", "interrupted"),
        ]
    );
    for row in rows.iter().filter(|r| r.source == "interrupted") {
        // Never a pass: no score; who and when are kept.
        assert_eq!(row.score_pct, None, "{}", row.call_id);
        assert_eq!(row.agent.as_deref(), Some("a1"));
        assert_eq!(row.team.as_deref(), Some("t1"));
        let doc: Value =
            serde_json::from_str(&store.report_json(&row.call_id).unwrap().unwrap()).unwrap();
        assert_eq!(doc["interrupted"]["reason"], "interrupted", "{doc}");
    }
}

/// A fresh database on the throwaway cluster, and the CA files `.ci/with-postgres` made; None
/// (skipping) without the feature or the cluster.
fn postgres_tls_setup(name: &str) -> Option<(String, String, String)> {
    let (Ok(url), Ok(ca), Ok(wrong)) = (
        std::env::var("ATTUNE_TEST_POSTGRES_URL"),
        std::env::var("ATTUNE_TEST_POSTGRES_CA"),
        std::env::var("ATTUNE_TEST_POSTGRES_WRONG_CA"),
    ) else {
        eprintln!(
            "skipping: ATTUNE_TEST_POSTGRES_URL/_CA/_WRONG_CA not set (.ci/with-postgres sets them)"
        );
        return None;
    };
    if !cfg!(feature = "postgres") {
        return None;
    }
    let db_url = attune_qa::store::fresh_postgres_database_for_tests(
        &url,
        &format!("{name}_{}", std::process::id()),
    )
    .unwrap();
    Some((db_url, ca, wrong))
}

#[test]
fn postgres_tls_with_the_right_ca_stores_and_reads_a_call() {
    let Some((db_url, ca, _)) = postgres_tls_setup("attune_tls_ok") else {
        return;
    };
    let verified = attune_qa::store::with_db_ca(
        &format!("{db_url}?sslmode=verify-full"),
        std::path::Path::new(&ca),
    )
    .unwrap();
    let mut store = Store::open(&verified).unwrap();
    assert!(
        store.connection_encrypted().unwrap(),
        "verify-full must be TLS"
    );
    store
        .save_call(&call(
            "tls-1",
            "ana",
            "blue",
            "2026-11-01T00:00:00Z",
            &document(Some(0.8), 0, 0.0),
        ))
        .unwrap();
    drop(store);
    // Read back over another verified connection (verify-ca, the CA in the URL itself).
    let mut again = Store::open(&format!(
        "{db_url}?sslmode=verify-ca&sslrootcert={}",
        ca.replace(' ', "%20")
    ))
    .unwrap();
    assert!(again.connection_encrypted().unwrap());
    let rows = again.calls(&CallQuery::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].call_id, "tls-1");
    assert!(again.has_call("tls-1").unwrap());
    // require without a CA is encrypted too; prefer (the default) takes TLS when offered;
    // disable is plaintext.
    for (query, encrypted) in [
        ("?sslmode=require", true),
        ("", true),
        ("?sslmode=disable", false),
    ] {
        let mut s = Store::open(&format!("{db_url}{query}")).unwrap();
        assert_eq!(s.connection_encrypted().unwrap(), encrypted, "{query:?}");
    }
}

#[test]
fn postgres_tls_with_a_wrong_ca_is_refused() {
    let Some((db_url, _, wrong)) = postgres_tls_setup("attune_tls_wrong") else {
        return;
    };
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = attune_qa::store::with_db_ca(
            &format!("{db_url}?sslmode={mode}"),
            std::path::Path::new(&wrong),
        )
        .unwrap();
        let e = Store::open(&url).err().expect("a wrong CA must be refused");
        let text = e.to_string();
        assert!(matches!(e, StoreError::Open { .. }), "{text}");
        assert!(
            text.contains("not signed by") && text.contains(&wrong),
            "{mode}: {text}"
        );
    }
    // A CA file that is not a certificate is named as such.
    let bad = temp_dir("store-pg-badca").join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let url = attune_qa::store::with_db_ca(&format!("{db_url}?sslmode=verify-full"), &bad).unwrap();
    let text = Store::open(&url).err().unwrap().to_string();
    assert!(text.contains("holds no certificate"), "{text}");
}

/// A stand-in PostgreSQL server that answers the SSLRequest with `N` (no TLS) and reports what
/// the client sent next (a plaintext startup message, or nothing).
fn server_without_tls() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut request = [0u8; 8];
        s.read_exact(&mut request).unwrap();
        // SSLRequest: length 8, code 80877103.
        assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47], "not an SSLRequest");
        s.write_all(b"N").unwrap();
        // The next message, whole (its length first), if the client sends one.
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return Vec::new();
        }
        let len = (u32::from_be_bytes(len) as usize).clamp(4, 4096);
        let mut next = vec![0u8; len - 4];
        s.read_exact(&mut next).unwrap();
        next
    });
    (port, handle)
}

#[test]
fn postgres_require_refuses_a_server_without_tls_and_prefer_falls_back() {
    if !cfg!(feature = "postgres") {
        return;
    }
    let (port, server) = server_without_tls();
    let text = Store::open(&format!(
        "postgres://attune@127.0.0.1:{port}/x?sslmode=require&connect_timeout=5"
    ))
    .err()
    .expect("require must refuse plaintext")
    .to_string();
    assert!(text.contains("does not support TLS"), "{text}");
    assert!(
        server.join().unwrap().is_empty(),
        "nothing sent in plaintext"
    );

    // prefer (libpq's default) goes on in plaintext: the startup message names the user.
    let (port, server) = server_without_tls();
    let _ = Store::open(&format!(
        "postgres://attune@127.0.0.1:{port}/x?connect_timeout=5"
    ));
    let sent = server.join().unwrap();
    // Protocol 3.0, then `user\0attune\0` among the parameters.
    assert_eq!(&sent[..4], &[0, 3, 0, 0], "{sent:?}");
    assert!(sent.windows(12).any(|w| w == b"user\0attune\0"), "{sent:?}");
}
