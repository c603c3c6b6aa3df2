//! Stored calls (the store): the Recorded calls page, a stored call's report (with a player
//! when the call has a recording), their JSON, a call's audio (whole or a clip), the upload of
//! a recording to score and the audit log's JSON. Store and file work runs on blocking
//! threads; every read of a report and every listen is audited.

use super::*;

/// What `/recorded` and `/api/recorded` say when no database is configured.
pub(super) const NO_STORE: &str = "no database is configured, so no call is stored: start `attune serve` \
    (or `attune demo`) with --db PATH (a SQLite file) or --db postgres://...";

pub(super) async fn recorded_page(Authed(who): Authed) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("this role does not see stored calls");
    }
    page(StatusCode::OK, PAGE_RECORDED)
}

/// Runs store work on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

/// The answer when a blocking store task died (panicked or was cancelled).
fn store_task_failed() -> Response {
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "store task failed".into(),
    )
}

/// The report page of a stored call: the stored result document drawn by the QA report.
pub(super) async fn recorded_report_page(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    Path(call_id): Path<String>,
) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("this role does not see stored calls");
    }
    let Some(recorder) = state.recorder.clone() else {
        let html = format!(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>\
             <title>No database — Attune</title><link rel='stylesheet' href='/static/console.css'>\
             </head><body><header class='bar'><h1>Attune</h1><nav><a href='/'>Live wall</a>\
             <a href='/recorded'>Recorded calls</a></nav></header><main><h2>No database</h2>\
             <p class='notice' id='no-store'>{}</p></main></body></html>",
            attune_qa::html::escape(NO_STORE)
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CACHE_CONTROL, "no-store")],
            Html(html),
        )
            .into_response();
    };
    let recordings = recorder.recordings().cloned();
    let found = read_stored(&state, &who, &source, recorder, &call_id).await;
    let doc = match found {
        Some(Ok(Some(text))) => text,
        Some(Ok(None)) => return not_found(&format!("stored call {call_id}")),
        Some(Err(e)) => {
            return store_failed(&e);
        }
        None => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    // Only a call its reader may read gets here: whether it has a recording is theirs to know.
    let has_recording = match recordings {
        None => false,
        Some(recordings) => {
            let id = call_id.clone();
            blocking(move || recordings.has(&id)).await.unwrap_or(false)
        }
    };
    let rendered = serde_json::from_str::<serde_json::Value>(&doc)
        .map_err(|e| format!("bad stored document: {e}"))
        .and_then(|doc| attune_qa::html::render_document(&doc))
        .map(|html| {
            let html = html.replacen(
                "<body>",
                &format!(
                    "<body><nav><a href='/recorded'>← Recorded calls</a></nav>{}",
                    if has_recording {
                        player(&call_id)
                    } else {
                        String::new()
                    }
                ),
                1,
            );
            if has_recording {
                html.replacen(
                    "</body>",
                    "<script src='/static/report-audio.js'></script></body>",
                    1,
                )
            } else {
                html
            }
        });
    match rendered {
        // The report as `attune analyze --format html` writes it, with a way back.
        Ok(html) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            Html(html),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("stored call {call_id}: {e}"),
        )
            .into_response(),
    }
}

/// The player atop a recorded call's report: the call's audio, which `report-audio.js` seeks
/// to a moment when its ▶ (or the moment's link) is clicked.
fn player(call_id: &str) -> String {
    let src = format!(
        "/api/recorded/{}/audio",
        crate::auth::web::path_segment(call_id)
    );
    format!(
        "<section id='recording' style='position:sticky;top:0;z-index:2;background:#fff;\
         padding:6px 0;border-bottom:1px solid #ddd'><audio id='call-audio' controls \
         preload='metadata' src='{}'></audio> <span class='muted' id='recording-note'>\
         Recording: caller left, agent right. ▶ plays a moment from its time.</span></section>\
         <style>.play-moment{{border:0;background:none;color:#00897b;cursor:pointer;\
         padding:0 4px;font-size:12px}}</style>",
        attune_qa::html::escape(&src)
    )
}

/// Query of `/api/recorded/{call_id}/audio`: a clip from `from_s` to `to_s` seconds, or the
/// whole recording (neither).
#[derive(Debug, Default, Deserialize)]
pub(super) struct AudioQuery {
    from_s: Option<String>,
    to_s: Option<String>,
}

/// What looking up a call's audio found.
enum AudioLookup {
    /// No such stored call, or one the reader may not read (the same answer: ids cannot be
    /// probed).
    NoCall,
    NoRecording,
    Found(crate::recordings::StoredAudio),
    Failed(String),
}

/// The part of a body a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ByteRange {
    /// No (usable) range: the whole body.
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// A range that starts past the end (416).
    Unsatisfiable,
}

/// Reads a `Range: bytes=...` header against a body of `len` bytes. One range only; a header
/// that cannot be read (or asks for several ranges) is ignored, as RFC 9110 allows.
pub(super) fn byte_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') || len == 0 {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<u64>() {
            Ok(0) => ByteRange::Unsatisfiable,
            Ok(n) => ByteRange::Part(len.saturating_sub(n), len - 1),
            Err(_) => ByteRange::Whole,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return ByteRange::Whole;
    };
    let end = if b.is_empty() {
        len - 1
    } else {
        match b.parse::<u64>() {
            Ok(end) if end >= start => end.min(len - 1),
            _ => return ByteRange::Whole,
        }
    };
    if start >= len {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part(start, end)
}

/// `GET /api/recorded/{call_id}/audio[?from_s=A&to_s=B]`: the call's recording as a WAV
/// (`audio/wav`, stereo: caller left, agent right), whole or the clip A..B seconds (at most
/// [`crate::recordings::MAX_CLIP_S`], clamped to the recording's end); `Range` requests are
/// answered (206) so a player can seek. Readable by exactly who may read the call's report
/// (otherwise 404, as for the report); 404 when the call has no recording; every listen is
/// audited (`recording_listen`).
pub(super) async fn api_recorded_audio(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    Path(call_id): Path<String>,
    Query(query): Query<AudioQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("this role does not see stored calls");
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    let clip = match crate::recordings::parse_clip(query.from_s.as_deref(), query.to_s.as_deref()) {
        Ok(clip) => clip,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    let (id, reader) = (call_id.clone(), who.clone());
    let found = blocking(move || {
        let team = match recorder.call_team(&id) {
            Ok(Some(team)) => team,
            Ok(None) => return Ok(AudioLookup::NoCall),
            Err(e) => return Err(e),
        };
        if !reader.may(Access::ReadStored {
            team: team.as_deref(),
        }) {
            return Ok(AudioLookup::NoCall);
        }
        let Some(recordings) = recorder.recordings() else {
            return Ok(AudioLookup::NoRecording);
        };
        Ok(match recordings.open_audio(&id) {
            Ok(Some(audio)) => AudioLookup::Found(audio),
            Ok(None) => AudioLookup::NoRecording,
            Err(e) => AudioLookup::Failed(e.to_string()),
        })
    })
    .await;
    let listen = |outcome: &str| {
        audit(
            &state.gate,
            &who,
            "recording_listen",
            &call_id,
            &source,
            outcome,
        )
    };
    let audio = match found {
        Some(Ok(AudioLookup::Found(audio))) => audio,
        Some(Ok(AudioLookup::NoCall)) => {
            listen("not found");
            return json_error(StatusCode::NOT_FOUND, format!("no stored call {call_id:?}"));
        }
        Some(Ok(AudioLookup::NoRecording)) => {
            listen("no recording");
            return json_error(
                StatusCode::NOT_FOUND,
                format!(
                    "stored call {call_id:?} has no recording (its team is not recorded, or the recording was deleted after the retention period)"
                ),
            );
        }
        Some(Ok(AudioLookup::Failed(e))) => {
            listen("failed");
            eprintln!("attune: console: recording of {call_id:?}: {e}");
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the recording cannot be read; the server's log says why".into(),
            );
        }
        Some(Err(e)) => return store_failed(&e),
        None => return store_task_failed(),
    };
    let what = match clip {
        Some((from_s, to_s)) => format!("clip {from_s}-{to_s} s"),
        None => "whole".to_owned(),
    };
    let slice = match audio.slice(clip) {
        Ok(slice) => slice,
        Err(e) => {
            listen(&format!("refused {what}: {e}"));
            return json_error(StatusCode::BAD_REQUEST, e);
        }
    };
    let len = slice.len();
    let range = byte_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    );
    let (status, start, end) = match range {
        ByteRange::Whole => (StatusCode::OK, 0, len),
        ByteRange::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b + 1),
        ByteRange::Unsatisfiable => {
            listen(&format!("refused {what}: range past the end"));
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response();
        }
    };
    listen(&match range {
        ByteRange::Part(a, b) => format!("ok {what} bytes {a}-{b}"),
        _ => format!("ok {what}"),
    });
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        slice.send_range(start, end, |piece| {
            tx.blocking_send(piece.map(Bytes::from)).is_ok()
        });
    });
    let mut response = Response::new(axum::body::Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ));
    *response.status_mut() = status;
    let h = response.headers_mut();
    let value = |v: String| {
        axum::http::HeaderValue::from_str(&v).unwrap_or(axum::http::HeaderValue::from_static("0"))
    };
    h.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("audio/wav"),
    );
    h.insert(header::CONTENT_LENGTH, value((end - start).to_string()));
    h.insert(
        header::ACCEPT_RANGES,
        axum::http::HeaderValue::from_static("bytes"),
    );
    h.insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            value(format!("bytes {start}-{}/{len}", end - 1)),
        );
    }
    response
}

/// Query of `/api/recorded`: the filters of `attune calls`; empty values match everything.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RecordedQuery {
    agent: Option<String>,
    team: Option<String>,
    from: Option<String>,
    to: Option<String>,
    min_score: Option<String>,
    max_score: Option<String>,
    /// `true`/`1`/`on`: only calls whose caller ended upset.
    caller_ended_upset: Option<String>,
    agent_interruptions_over: Option<String>,
    limit: Option<String>,
}

/// Most rows `/api/recorded` returns when no `limit` is given (and the most it returns).
pub const RECORDED_DEFAULT_LIMIT: i64 = 500;
pub const RECORDED_MAX_LIMIT: i64 = 10_000;

impl RecordedQuery {
    pub(super) fn to_query(&self) -> Result<attune_qa::store::CallQuery, String> {
        fn number<T: std::str::FromStr>(
            name: &str,
            v: &Option<String>,
        ) -> Result<Option<T>, String> {
            match non_empty(v) {
                None => Ok(None),
                Some(text) => text
                    .trim()
                    .parse::<T>()
                    .map(Some)
                    .map_err(|_| format!("{name} must be a number, got {text:?}")),
            }
        }
        let date = |v: &Option<String>| {
            non_empty(v)
                .map(|t| attune_qa::store::parse_date(t.trim()))
                .transpose()
        };
        let min_score_pct: Option<f64> = number("min_score", &self.min_score)?;
        let max_score_pct: Option<f64> = number("max_score", &self.max_score)?;
        if let (Some(lo), Some(hi)) = (min_score_pct, max_score_pct)
            && lo > hi
        {
            return Err(format!("min_score {lo} is above max_score {hi}"));
        }
        let upset = match non_empty(&self.caller_ended_upset).as_deref() {
            None | Some("false" | "0" | "off") => false,
            Some("true" | "1" | "on") => true,
            Some(other) => {
                return Err(format!(
                    "caller_ended_upset must be true or false, got {other:?}"
                ));
            }
        };
        let limit: Option<i64> = number("limit", &self.limit)?;
        Ok(attune_qa::store::CallQuery {
            agent: non_empty(&self.agent),
            team: non_empty(&self.team),
            from: date(&self.from)?,
            to: date(&self.to)?,
            min_score_pct,
            max_score_pct,
            caller_ended_upset: upset,
            agent_interruptions_over: number(
                "agent_interruptions_over",
                &self.agent_interruptions_over,
            )?,
            limit: Some(
                limit
                    .unwrap_or(RECORDED_DEFAULT_LIMIT)
                    .clamp(1, RECORDED_MAX_LIMIT),
            ),
        })
    }
}

#[derive(Serialize)]
pub(super) struct RecordedBody {
    calls: Vec<attune_qa::store::CallRow>,
}

/// `/api/recorded?agent=&team=&from=&to=&min_score=&max_score=&caller_ended_upset=&agent_interruptions_over=&limit=`:
/// stored calls, newest first (`Store::calls`); 503 without a database.
pub(super) async fn api_recorded(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Query(query): Query<RecordedQuery>,
) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("this role does not see stored calls");
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    let query = match query.to_query() {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    let found = blocking(move || {
        recorder.calls(&query).map(|mut calls| {
            calls.retain(|c| {
                who.may(Access::ReadStored {
                    team: c.team.as_deref(),
                })
            });
            RecordedBody { calls }
        })
    })
    .await;
    match found {
        Some(Ok(body)) => axum::Json(body).into_response(),
        Some(Err(e)) => store_failed(&e),
        None => store_task_failed(),
    }
}

/// `/api/recorded/{call_id}`: a stored call's result document.
pub(super) async fn api_recorded_call(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    Path(call_id): Path<String>,
) -> Response {
    if !who.sees_stored_calls() {
        return forbidden("this role does not see stored calls");
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    match read_stored(&state, &who, &source, recorder, &call_id).await {
        Some(Ok(Some(doc))) => ([(header::CONTENT_TYPE, "application/json")], doc).into_response(),
        Some(Ok(None)) => json_error(StatusCode::NOT_FOUND, format!("no stored call {call_id:?}")),
        Some(Err(e)) => store_failed(&e),
        None => store_task_failed(),
    }
}

/// A stored call's document if `who` may read it (None inside: no such call, or one of a team
/// they do not cover); every read is audited.
pub(super) async fn read_stored(
    state: &ConsoleState,
    who: &Principal,
    source: &str,
    recorder: Arc<CallRecorder>,
    call_id: &str,
) -> Option<Result<Option<String>, attune_qa::store::StoreError>> {
    let id = call_id.to_owned();
    let who_ = who.clone();
    let result = blocking(move || {
        let team = match recorder.call_team(&id) {
            Ok(Some(team)) => team,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !who_.may(Access::ReadStored {
            team: team.as_deref(),
        }) {
            return Ok(None);
        }
        recorder.report_json(&id)
    })
    .await;
    let outcome = match &result {
        Some(Ok(Some(_))) => "ok",
        Some(Ok(None)) => "not found",
        _ => "failed",
    };
    audit(&state.gate, who, "report_read", call_id, source, outcome);
    result
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct UploadQuery {
    name: Option<String>,
    agent: Option<String>,
    team: Option<String>,
    /// Channel carrying the agent: 0 (default) or 1.
    agent_channel: Option<String>,
}

/// A store failure: logged in full on the server; the client learns only that it failed (the
/// store's location and its messages are not theirs to read).
pub(super) fn store_failed(e: &attune_qa::store::StoreError) -> Response {
    eprintln!("attune: console: store: {e}");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the store failed; the server's log says why".into(),
    )
}

/// `/admin/audit`: the audit log (admins).
pub(super) async fn audit_page(Authed(who): Authed) -> Response {
    if !who.may(Access::Administer) {
        return forbidden("the audit log is for admins");
    }
    page(StatusCode::OK, PAGE_AUDIT)
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQueryParams {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    limit: Option<i64>,
}

/// `/api/audit?actor=&action=&target=&limit=`: audit entries, newest first (admins).
pub(super) async fn api_audit(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    Query(q): Query<AuditQueryParams>,
) -> Response {
    if !who.may(Access::Administer) {
        return forbidden("the audit log is for admins");
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    let query = attune_qa::store::AuditQuery {
        actor: non_empty(&q.actor),
        action: non_empty(&q.action),
        target: non_empty(&q.target),
        limit: Some(q.limit.unwrap_or(500).clamp(1, 10_000)),
    };
    match blocking(move || recorder.audit_entries(&query)).await {
        Some(Ok(entries)) => axum::Json(serde_json::json!({ "entries": entries })).into_response(),
        Some(Err(e)) => store_failed(&e),
        None => store_task_failed(),
    }
}

/// Content types an upload may carry.
pub const UPLOAD_CONTENT_TYPES: &[&str] = &["audio/wav", "audio/x-wav", "audio/wave"];

pub(super) fn upload_error(e: &UploadError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_error(status, e.to_string())
}

/// `POST /api/recordings?name=&agent=&team=&agent_channel=` with a WAV file as the body: scores it with the
/// default rubric on a blocking thread, stores it (`source = "recording"`) and answers with its
/// call id and score. At most [`crate::recorder::MAX_CONCURRENT_UPLOADS`] at once: the permit
/// is taken before the body is read (503 without reading it otherwise), and the body is
/// streamed to a temporary file ([`UploadSpool`]; 413 as soon as it passes the limit), so
/// memory holds at most one body per permit.
pub(super) async fn api_upload(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    headers: axum::http::HeaderMap,
    Query(query): Query<UploadQuery>,
    body: axum::body::Body,
) -> Response {
    if !who.may(Access::Upload) {
        return forbidden("only QA analysts and admins upload recordings");
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !UPLOAD_CONTENT_TYPES.contains(&content_type) {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "an upload's Content-Type must be one of {}, got {content_type:?}",
                UPLOAD_CONTENT_TYPES.join(", ")
            ),
        );
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    for (field, value) in [
        ("name", &query.name),
        ("agent", &query.agent),
        ("team", &query.team),
    ] {
        if let Err(e) = crate::session::check_client_id(field, value.as_deref().unwrap_or("")) {
            return json_error(StatusCode::BAD_REQUEST, e.to_string());
        }
    }
    let agent_channel = match non_empty(&query.agent_channel) {
        None => 0,
        Some(text) => match text.trim().parse::<u16>() {
            Ok(c) if c <= 1 => c,
            _ => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    format!("agent_channel must be 0 or 1, got {text:?}"),
                );
            }
        },
    };
    let limit = recorder.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(size_bytes) = declared.filter(|&n| n > limit as u64) {
        return upload_error(&UploadError::TooLarge {
            size_bytes,
            limit_bytes: limit,
        });
    }
    // The permit first: a refused upload is answered before its body is read (a client that
    // sent `Expect: 100-continue` never sends it), so N clients never hold N bodies.
    let permit = match recorder.upload_permit() {
        Ok(p) => p,
        Err(e) => return upload_error(&e),
    };
    let spool = match UploadSpool::receive(body, limit).await {
        Ok(spool) => spool,
        Err(response) => return response,
    };
    // The audio is kept when the call's team, or one of the uploader's, is recorded.
    let keep_audio = recorder.recordings().is_some_and(|r| {
        r.records_upload(
            query
                .team
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty()),
            &who.teams,
        )
    });
    let info = UploadInfo {
        name: query.name,
        agent: query.agent,
        team: query.team,
        agent_channel,
        keep_audio,
        call_id: None,
    };
    let scored = blocking(move || {
        let _permit = permit;
        // Read from the spool on this thread: at most one body per permit in memory.
        let bytes = spool.read_all()?;
        drop(spool);
        Ok::<_, std::io::Error>(recorder.score_upload(&info, bytes))
    })
    .await;
    match scored {
        Some(Err(e)) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the received upload back: {e}"),
        ),
        Some(Ok(Ok(result))) => {
            audit(
                &state.gate,
                &who,
                "upload",
                &result.call_id,
                &source,
                &format!("ok sha256={}", result.content_sha256),
            );
            (StatusCode::CREATED, axum::Json(result)).into_response()
        }
        Some(Ok(Err(e))) => upload_error(&e),
        None => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the scoring task failed".into(),
        ),
    }
}

/// An upload body stalled this long (no bytes) is given up (408), so a stalled client cannot
/// hold an upload permit for ever.
pub const UPLOAD_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// An upload's body while it is received and scored: a private temporary file (mode 0600, in
/// the temporary folder, `TMPDIR`), unlinked as soon as it is made (on Unix) and in any case
/// removed when dropped.
struct UploadSpool {
    file: std::fs::File,
    path: std::path::PathBuf,
    size: u64,
}

impl UploadSpool {
    fn create() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "attune-upload-{}.part",
            crate::auth::secrets::random_hex(12)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        #[cfg(unix)]
        let _ = std::fs::remove_file(&path);
        Ok(Self {
            file,
            path,
            size: 0,
        })
    }

    /// Streams `body` into a new spool, at most `limit` bytes; the error is the answer (413
    /// over the limit, 408 stalled, 400 cut off, 500 the file).
    async fn receive(body: axum::body::Body, limit: usize) -> Result<Self, Response> {
        use futures_util::StreamExt as _;
        use tokio::io::AsyncWriteExt as _;
        let file_failed = |e: std::io::Error| {
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot keep the upload in a temporary file: {e}"),
            )
        };
        let mut spool = Self::create().map_err(file_failed)?;
        let mut out = tokio::fs::File::from_std(spool.file.try_clone().map_err(file_failed)?);
        let mut stream = body.into_data_stream();
        loop {
            let chunk = match tokio::time::timeout(UPLOAD_STALL_TIMEOUT, stream.next()).await {
                Err(_) => {
                    return Err(json_error(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the upload stalled: no data for {} s",
                            UPLOAD_STALL_TIMEOUT.as_secs()
                        ),
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(json_error(
                        StatusCode::BAD_REQUEST,
                        format!("cannot read the upload: {e}"),
                    ));
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            spool.size += chunk.len() as u64;
            if spool.size > limit as u64 {
                return Err(json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the recording is over the upload limit of {limit} bytes ({} MiB): refused after {} bytes",
                        limit >> 20,
                        spool.size
                    ),
                ));
            }
            out.write_all(&chunk).await.map_err(file_failed)?;
        }
        out.flush().await.map_err(file_failed)?;
        Ok(spool)
    }

    /// The whole body (blocking).
    fn read_all(&self) -> std::io::Result<Vec<u8>> {
        use std::io::{Read as _, Seek as _};
        let mut file = &self.file;
        file.seek(std::io::SeekFrom::Start(0))?;
        let mut bytes = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

impl Drop for UploadSpool {
    fn drop(&mut self) {
        #[cfg(not(unix))]
        let _ = std::fs::remove_file(&self.path);
        #[cfg(unix)]
        let _ = &self.path;
    }
}
