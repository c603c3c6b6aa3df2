//! Conversions between the analysis types and the wire types of `attune.v1`, and from wire
//! events to JSON lines (what `attune replay` and `attune watch` print).

use serde_json::{Value, json};

use attune_core::call::{CallEvent, CallSnapshot, EmotionPoint, PartyNow};
use attune_core::cues::CueEvent;

use super::hub::{CallInfo, CallView, HubEvent, HubEventKind};
use super::pb::{self, event::Kind};
use super::session::CallSummary;

pub fn cue_to_proto(c: &CueEvent) -> pb::Cue {
    pb::Cue {
        cue_id: c.cue_id,
        kind: c.kind.as_str().to_owned(),
        party: c.party.as_str().to_owned(),
        severity: c.severity.as_str().to_owned(),
        event: c.event.as_str().to_owned(),
        t_s: c.t_s,
        start_s: c.start_s,
        end_s: c.end_s,
        rule: c.evidence.rule.clone(),
        evidence: c
            .evidence
            .values
            .iter()
            .map(|v| pb::EvidenceValue {
                name: v.name.to_owned(),
                value: v.value,
            })
            .collect(),
        guidance: c.guidance.unwrap_or("").to_owned(),
    }
}

pub fn emotion_to_proto(p: &EmotionPoint) -> pb::EmotionPoint {
    pb::EmotionPoint {
        t_s: p.t_s,
        party: match p.party {
            attune_core::dialog::Speaker::Agent => "agent",
            attune_core::dialog::Speaker::Caller => "caller",
        }
        .to_owned(),
        emotion: p.emotion.unwrap_or("").to_owned(),
        abstain_reason: p.abstain_reason.clone().unwrap_or_default(),
        probabilities: p.probabilities.to_vec(),
        arousal: p.arousal,
        valence: p.valence,
        confidence: p.confidence,
        calmness: p.calmness,
        normalisation: match p.normalisation {
            attune_core::prosody::baseline::Normalisation::Speaker => "speaker",
            attune_core::prosody::baseline::Normalisation::Global => "global",
        }
        .to_owned(),
        speech_s: p.speech_s,
    }
}

fn party_to_proto(p: &PartyNow) -> pb::PartyNow {
    pb::PartyNow {
        talking: p.talking,
        loudness_db: p.loudness_db,
        pitch_hz: p.pitch_hz,
    }
}

pub fn snapshot_to_proto(s: &CallSnapshot) -> pb::Snapshot {
    pb::Snapshot {
        t_s: s.t_s,
        agent: Some(party_to_proto(&s.agent)),
        caller: Some(party_to_proto(&s.caller)),
        caller_emotion: s.caller_emotion.as_ref().map(emotion_to_proto),
        agent_calmness: s.agent_calmness,
        open_cues: s.open_cues.iter().map(cue_to_proto).collect(),
        dialog_json: serde_json::to_string(&s.dialog).unwrap_or_default(),
    }
}

pub fn summary_to_proto(s: &CallSummary, ended_at_unix_ms: u64) -> pb::CallSummary {
    pb::CallSummary {
        reason: s.reason.clone(),
        duration_s: s.duration_s,
        ended_at_unix_ms,
        chunks_received: s.chunks_received,
        bytes_received: s.bytes_received,
        chunks_out_of_order: s.chunks_out_of_order,
        chunks_duplicate: s.chunks_duplicate,
        cues: s
            .outcome
            .as_ref()
            .map(|o| o.cues.iter().map(cue_to_proto).collect())
            .unwrap_or_default(),
        outcome_json: s
            .outcome
            .as_ref()
            .and_then(|o| serde_json::to_string(o).ok())
            .unwrap_or_default(),
    }
}

pub fn call_info_to_proto(c: &CallInfo) -> pb::CallInfo {
    pb::CallInfo {
        call_id: c.call_id.clone(),
        agent_id: c.agent_id.clone(),
        team: c.team.clone(),
        started_at_unix_ms: c.started_at_unix_ms,
    }
}

/// A call event as sent on the call's own ingest stream (None for dialog events, which
/// reach clients inside snapshots).
pub fn call_event_kind(e: &CallEvent) -> Option<Kind> {
    match e {
        CallEvent::Snapshot(s) => Some(Kind::Snapshot(snapshot_to_proto(s))),
        CallEvent::Emotion(p) => Some(Kind::Emotion(emotion_to_proto(p))),
        CallEvent::Cue(c) => Some(Kind::Cue(cue_to_proto(c))),
        CallEvent::Dialog(_) => None,
    }
}

pub fn hub_event_to_proto(e: &HubEvent) -> pb::Event {
    let kind = match &e.kind {
        HubEventKind::CallStarted => Kind::CallStarted(pb::CallStarted {}),
        HubEventKind::Snapshot(s) => Kind::Snapshot(snapshot_to_proto(s)),
        HubEventKind::Emotion(p) => Kind::Emotion(emotion_to_proto(p)),
        HubEventKind::Cue(c) => Kind::Cue(cue_to_proto(c)),
        HubEventKind::CallEnded(end) => Kind::CallEnded(match &end.summary {
            Some(s) => summary_to_proto(s, end.ended_at_unix_ms),
            None => pb::CallSummary {
                reason: end.reason.clone(),
                duration_s: end.duration_s,
                ended_at_unix_ms: end.ended_at_unix_ms,
                ..Default::default()
            },
        }),
    };
    pb::Event {
        call: Some(call_info_to_proto(&e.call)),
        seq: e.seq,
        published_at_unix_ms: e.published_at_unix_ms,
        kind: Some(kind),
    }
}

pub fn view_to_proto(v: &CallView) -> pb::LiveCall {
    pb::LiveCall {
        call: Some(call_info_to_proto(&v.call)),
        latest: v.latest.as_deref().map(snapshot_to_proto),
        open_cues: v.open_cues.iter().map(cue_to_proto).collect(),
    }
}

/// A wire cue as JSON (the fields of `attune::cues::CueEvent`).
pub fn cue_json(call_id: &str, c: &pb::Cue) -> Value {
    json!({
        "call_id": call_id,
        "cue_id": c.cue_id,
        "kind": c.kind,
        "party": c.party,
        "severity": c.severity,
        "event": c.event,
        "t_s": c.t_s,
        "start_s": c.start_s,
        "end_s": c.end_s,
        "evidence": {
            "rule": c.rule,
            "values": c.evidence.iter().map(|v| json!({"name": v.name, "value": v.value})).collect::<Vec<_>>(),
        },
        "guidance": if c.guidance.is_empty() { Value::Null } else { Value::from(c.guidance.clone()) },
    })
}

fn emotion_json(p: &pb::EmotionPoint) -> Value {
    json!({
        "t_s": p.t_s,
        "party": p.party,
        "emotion": if p.emotion.is_empty() { Value::Null } else { Value::from(p.emotion.clone()) },
        "probabilities": p.probabilities,
        "arousal": p.arousal,
        "valence": p.valence,
        "confidence": p.confidence,
        "calmness": p.calmness,
        "normalisation": p.normalisation,
    })
}

fn party_json(p: Option<&pb::PartyNow>) -> Value {
    p.map_or(
        Value::Null,
        |p| json!({"talking": p.talking, "loudness_db": p.loudness_db, "pitch_hz": p.pitch_hz}),
    )
}

fn snapshot_json(s: &pb::Snapshot) -> Value {
    json!({
        "t_s": s.t_s,
        "agent": party_json(s.agent.as_ref()),
        "caller": party_json(s.caller.as_ref()),
        "caller_emotion": s.caller_emotion.as_ref().map(emotion_json),
        "agent_calmness": s.agent_calmness,
        "open_cues": s.open_cues.iter().map(|c| c.kind.clone()).collect::<Vec<_>>(),
        "dialog": serde_json::from_str::<Value>(&s.dialog_json).unwrap_or(Value::Null),
    })
}

/// A wire event as one JSON object with a `type` field.
pub fn event_json(e: &pb::Event) -> Value {
    let call_id = e.call.as_ref().map_or("", |c| c.call_id.as_str());
    let mut value = match &e.kind {
        Some(Kind::CallStarted(_)) => json!({"type": "call_started"}),
        Some(Kind::Snapshot(s)) => json!({"type": "snapshot", "snapshot": snapshot_json(s)}),
        Some(Kind::Emotion(p)) => json!({"type": "emotion", "emotion": emotion_json(p)}),
        Some(Kind::Cue(c)) => json!({"type": "cue", "cue": cue_json(call_id, c)}),
        Some(Kind::CallEnded(s)) => json!({
            "type": "call_ended",
            "reason": s.reason,
            "duration_s": s.duration_s,
            "chunks_received": s.chunks_received,
            "chunks_out_of_order": s.chunks_out_of_order,
            "chunks_duplicate": s.chunks_duplicate,
            "cue_events": s.cues.len(),
        }),
        None => json!({"type": "unknown"}),
    };
    if let (Value::Object(map), Some(call)) = (&mut value, &e.call) {
        map.insert("call_id".into(), call.call_id.clone().into());
        if !call.agent_id.is_empty() {
            map.insert("agent_id".into(), call.agent_id.clone().into());
        }
        if !call.team.is_empty() {
            map.insert("team".into(), call.team.clone().into());
        }
    }
    value
}
