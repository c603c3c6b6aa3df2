//! The live-call hub: the one place that knows every live call. Ingest sessions register calls
//! and publish their events; consoles and monitor streams subscribe. In-process (a
//! `tokio::sync::broadcast` fan-out); a scale-out bus would sit behind the same methods.
//!
//! Slow subscribers never slow ingest: the broadcast channel keeps the newest
//! [`SUBSCRIBER_BUFFER_EVENTS`] events; a subscriber that falls further behind is told how many
//! it missed (`Lagged`), counts them, and re-reads the current state with [`Hub::live_calls`].
//!
//! Memory is bounded: each call keeps at most [`TIMELINE_MAX_SNAPSHOTS`] snapshots and
//! [`TIMELINE_MAX_CUES`] cue events; at most [`RECENT_ENDED_CALLS`] ended calls are kept.
//!
//! Alerts: every cue that opens is also an [`Alert`] in one hub-wide feed (the newest
//! [`ALERTS_MAX`]), which a supervisor can acknowledge; acknowledgements are fanned out on their
//! own channel ([`Hub::subscribe_acks`]) so every console sees them.
//!
//! Strain across a shift: the hub follows each agent's consecutive calls
//! ([`attune_core::empathy::strain::ShiftStrain`], at most [`STRAIN_AGENTS_MAX`] agents) and,
//! when a call ends hard or the shift strains the agent, opens `agent_take_a_moment` on that
//! call just before it ends, for the agent's view and their supervisor's alerts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::attention::{AttentionInputs, attention_score};
use crate::session::CallSummary;
use attune_core::call::{CallSnapshot, EmotionPoint};
use attune_core::cues::{CueEvent, CueRules, CueTransition, TakeAMomentRule};
use attune_core::empathy::strain::{CallStrain, ShiftStrain};

/// Events a subscriber may fall behind before it is told it lagged.
pub const SUBSCRIBER_BUFFER_EVENTS: usize = 16_384;
/// Snapshots kept per call for its timeline (an hour at one per second).
pub const TIMELINE_MAX_SNAPSHOTS: usize = 3_600;
/// Cue events kept per call.
pub const TIMELINE_MAX_CUES: usize = 1_000;
/// Emotion points kept per call.
pub const TIMELINE_MAX_EMOTION_POINTS: usize = 7_200;
/// Ended calls kept for consoles.
pub const RECENT_ENDED_CALLS: usize = 200;
/// Alerts (cue openings across calls) kept in the feed.
pub const ALERTS_MAX: usize = 2_000;
/// Agents whose shift the hub follows; past it, the agent whose last call ended longest ago is
/// forgotten.
pub const STRAIN_AGENTS_MAX: usize = 10_000;
/// Other nodes' live calls a hub mirrors at most (cluster).
pub const REMOTE_CALLS_MAX: usize = 100_000;
/// Acknowledgements a subscriber may fall behind before it is told it lagged.
const ACK_BUFFER: usize = 1_024;

/// Who and what a call is, as declared by its ingest stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    pub call_id: String,
    pub agent_id: String,
    pub team: String,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEnd {
    /// "ended" (explicit), "timeout" (stream silent too long), "disconnected", "error".
    pub reason: String,
    pub duration_s: f64,
    pub ended_at_unix_ms: u64,
    /// What the call amounted to (chunks, cues, the analysis outcome), when the ingest
    /// session could compute it.
    /// Not sent to cluster peers (read back: None).
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub summary: Option<Arc<CallSummary>>,
}

/// What happened in a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubEventKind {
    CallStarted,
    Snapshot(Box<CallSnapshot>),
    Emotion(EmotionPoint),
    Cue(CueEvent),
    CallEnded(CallEnd),
}

/// One event of one call, as fanned out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HubEvent {
    /// Hub-wide sequence number (increasing).
    pub seq: u64,
    /// Wall-clock time of publication, ms since the Unix epoch.
    pub published_at_unix_ms: u64,
    pub call: Arc<CallInfo>,
    /// The call's attention score after this event ([`crate::attention`]).
    pub attention: u32,
    #[serde(flatten)]
    pub kind: HubEventKind,
}

/// Which calls a subscriber wants; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    pub team: Option<String>,
    pub agent_id: Option<String>,
    pub call_id: Option<String>,
}

impl CallFilter {
    pub fn matches(&self, call: &CallInfo) -> bool {
        self.team.as_deref().is_none_or(|t| t == call.team)
            && self.agent_id.as_deref().is_none_or(|a| a == call.agent_id)
            && self.call_id.as_deref().is_none_or(|c| c == call.call_id)
    }
}

/// A call as a console sees it: who, the latest state and the open cues.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallView {
    pub call: Arc<CallInfo>,
    pub live: bool,
    pub latest: Option<Box<CallSnapshot>>,
    pub open_cues: Vec<CueEvent>,
    /// How much the call needs attention now ([`crate::attention`]; higher first).
    pub attention: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<CallEnd>,
}

/// A call's timeline for the detail view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallTimeline {
    pub view: CallView,
    pub snapshots: Vec<Box<CallSnapshot>>,
    pub emotion: Vec<EmotionPoint>,
    pub cues: Vec<CueEvent>,
}

/// Why a call could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("too many live calls: the limit is {limit}")]
    TooManyCalls { limit: usize },
    #[error("call id {0:?} is already live")]
    DuplicateCall(String),
    #[error("call id must be 1..=128 printable characters, got {0:?}")]
    BadCallId(String),
}

/// A cue that opened, in the hub-wide alert feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub call: Arc<CallInfo>,
    /// The cue's open event.
    pub cue: CueEvent,
    /// Wall-clock time the cue opened, ms since the Unix epoch.
    pub opened_at_unix_ms: u64,
    /// Call time the cue closed, seconds; None while open.
    pub closed_at_s: Option<f64>,
    pub ack: Option<AlertAck>,
}

/// A supervisor's acknowledgement of an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertAck {
    pub call: Arc<CallInfo>,
    pub cue_id: u64,
    /// Who acknowledged (free text from the console, may be empty).
    pub by: String,
    /// Wall-clock time, ms since the Unix epoch.
    pub at_unix_ms: u64,
}

/// Which alerts to list; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    pub calls: CallFilter,
    /// Only alerts of exactly this severity.
    pub severity: Option<attune_core::cues::Severity>,
}

/// Why an acknowledgement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("no alert with cue id {cue_id} in call {call_id:?} (unknown, or older than the feed)")]
    UnknownAlert { call_id: String, cue_id: u64 },
}

struct CallState {
    info: Arc<CallInfo>,
    latest: Option<Box<CallSnapshot>>,
    open_cues: Vec<CueEvent>,
    /// What the attention score reads besides the open cues.
    attention: AttentionInputs,
    snapshots: VecDeque<Box<CallSnapshot>>,
    emotion: VecDeque<EmotionPoint>,
    cues: VecDeque<CueEvent>,
    end: Option<CallEnd>,
    /// Live on another node of the cluster (mirrored here; not counted against max_calls).
    remote: bool,
    /// Wall-clock time of the call's latest event, ms since the Unix epoch.
    last_event_at_unix_ms: u64,
    /// Set when this node took the call over from a node that stopped (cluster).
    continued: Option<Continuation>,
}

impl CallState {
    fn new(info: Arc<CallInfo>, remote: bool) -> Self {
        Self {
            last_event_at_unix_ms: info.started_at_unix_ms.max(now_unix_ms()),
            info,
            latest: None,
            open_cues: Vec::new(),
            attention: AttentionInputs::default(),
            snapshots: VecDeque::new(),
            emotion: VecDeque::new(),
            cues: VecDeque::new(),
            end: None,
            remote,
            continued: None,
        }
    }

    /// What a local call continuing this (another node's) call should note.
    fn continuation(&self, now_unix_ms: u64) -> Continuation {
        Continuation {
            earlier_started_at_unix_ms: self.info.started_at_unix_ms,
            earlier_analysed_s: self.latest.as_ref().map_or(0.0, |l| l.t_s),
            gap_s: now_unix_ms.saturating_sub(self.last_event_at_unix_ms) as f64 / 1000.0,
        }
    }
}

/// A call this node continues after the node that held it stopped (a client reconnected the
/// same call id here): where the gap was. Its analysis here starts afresh at `t_s` 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Continuation {
    /// When the earlier part began on the other node, ms since the Unix epoch.
    pub earlier_started_at_unix_ms: u64,
    /// How far the earlier part had been analysed (its latest snapshot), seconds.
    pub earlier_analysed_s: f64,
    /// From the earlier part's last event to this node's start, seconds.
    pub gap_s: f64,
}

/// How long after another node's call ends as interrupted a reconnect of its id here is
/// taken as its continuation.
pub const CONTINUATION_WINDOW_MS: u64 = 10 * 60 * 1000;

impl CallState {
    fn view(&self) -> CallView {
        CallView {
            call: self.info.clone(),
            live: self.end.is_none(),
            latest: self.latest.clone(),
            open_cues: self.open_cues.clone(),
            attention: self.attention_score(),
            end: self.end.clone(),
        }
    }

    fn attention_score(&self) -> u32 {
        attention_score(&self.open_cues, &self.attention)
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, limit: usize) {
    if queue.len() == limit {
        queue.pop_front();
    }
    queue.push_back(item);
}

#[derive(Default)]
struct HubState {
    live: BTreeMap<String, CallState>,
    ended: VecDeque<CallState>,
    alerts: VecDeque<Alert>,
    /// How many of `live` are other nodes' calls.
    remote_live: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct HubCounters {
    pub calls_started: AtomicU64,
    pub calls_ended: AtomicU64,
    pub calls_rejected: AtomicU64,
    pub events_published: AtomicU64,
    /// Events subscribers missed because they read too slowly (reported by subscribers).
    pub events_dropped_slow_subscribers: AtomicU64,
}

/// Told when a local call starts and ends (the store's journal of live calls,
/// [`crate::recorder::CallRecorder::journal_live_calls`]); must not block.
pub trait LiveJournal: Send + Sync {
    fn started(&self, call: &Arc<CallInfo>);
    fn ended(&self, call: &Arc<CallInfo>);
}

/// The hub. Cheap to share (`Arc<Hub>`).
pub struct Hub {
    /// The journal of live calls, if any (set once).
    journal: std::sync::OnceLock<Arc<dyn LiveJournal>>,
    max_calls: usize,
    state: Mutex<HubState>,
    sender: broadcast::Sender<Arc<HubEvent>>,
    ack_sender: broadcast::Sender<AlertAck>,
    seq: AtomicU64,
    pub counters: HubCounters,
    /// The take-a-moment rule (None: off) and each agent's shift.
    strain: Mutex<(Option<TakeAMomentRule>, HashMap<String, ShiftStrain>)>,
}

/// A call id the hub keeps: 1..=128 bytes, no control characters.
fn valid_call_id(call_id: &str) -> bool {
    !call_id.is_empty() && call_id.len() <= 128 && !call_id.chars().any(char::is_control)
}

/// Wall-clock now, ms since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    pub fn new(max_calls: usize) -> Self {
        Self::with_subscriber_buffer(max_calls, SUBSCRIBER_BUFFER_EVENTS)
    }

    /// A hub whose subscribers may fall `buffer_events` events behind before they lag.
    pub fn with_subscriber_buffer(max_calls: usize, buffer_events: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer_events.max(1));
        let (ack_sender, _) = broadcast::channel(ACK_BUFFER);
        Self {
            journal: std::sync::OnceLock::new(),
            max_calls,
            state: Mutex::new(HubState::default()),
            sender,
            ack_sender,
            seq: AtomicU64::new(0),
            counters: HubCounters::default(),
            strain: Mutex::new((CueRules::default().agent_take_a_moment, HashMap::new())),
        }
    }

    /// Sets the rule for `agent_take_a_moment` (None switches it off); the embedded rules'
    /// by default.
    pub fn set_take_a_moment_rule(&self, rule: Option<TakeAMomentRule>) {
        let mut strain = self.strain.lock().unwrap_or_else(|p| p.into_inner());
        strain.0 = rule;
        strain.1.clear();
    }

    /// Follows the agent's shift with this ended call; the take-a-moment cue to open on it,
    /// if due.
    fn judge_strain(&self, call: &CallInfo, end: &CallEnd) -> Option<CueEvent> {
        let outcome = end.summary.as_ref()?.outcome.as_ref()?;
        let this_call = CallStrain::from_outcome(outcome);
        let cue_id = outcome.cues.iter().map(|c| c.cue_id).max().unwrap_or(0) + 1;
        let mut guard = self.strain.lock().unwrap_or_else(|p| p.into_inner());
        let (rule, agents) = &mut *guard;
        let rule = (*rule)?;
        if !agents.contains_key(&call.agent_id) && agents.len() >= STRAIN_AGENTS_MAX {
            let oldest = agents
                .iter()
                .min_by(|a, b| {
                    let end = |s: &ShiftStrain| s.last_end_unix_s().unwrap_or(0.0);
                    end(a.1).total_cmp(&end(b.1))
                })
                .map(|(agent, _)| agent.clone());
            if let Some(oldest) = oldest {
                agents.remove(&oldest);
            }
        }
        let shift = agents
            .entry(call.agent_id.clone())
            .or_insert_with(|| ShiftStrain::new(rule));
        let ended_unix_s = end.ended_at_unix_ms as f64 / 1000.0;
        let started_unix_s = call.started_at_unix_ms as f64 / 1000.0;
        shift
            .after_call(started_unix_s, ended_unix_s, &this_call)
            .cue(&this_call, &rule, cue_id)
    }

    pub fn max_calls(&self) -> usize {
        self.max_calls
    }

    /// Tells `journal` of every local call's start and end from now on; false if a journal
    /// was set already.
    pub fn set_live_journal(&self, journal: Arc<dyn LiveJournal>) -> bool {
        self.journal.set(journal).is_ok()
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock leaves consistent data (every update is one push).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a live call (its `started_at_unix_ms` is set now).
    pub fn start_call(&self, mut info: CallInfo) -> Result<Arc<CallInfo>, HubError> {
        if !valid_call_id(&info.call_id) {
            self.counters.calls_rejected.fetch_add(1, Ordering::Relaxed);
            return Err(HubError::BadCallId(info.call_id));
        }
        info.started_at_unix_ms = now_unix_ms();
        let info = Arc::new(info);
        let mut guard = self.lock();
        let state = &mut *guard;
        let now = info.started_at_unix_ms;
        // Another node's call of this id: its client reconnected here (that node stopped or
        // lost it), so this node takes it over and notes the gap.
        let taking_over = state.live.get(&info.call_id).is_some_and(|s| s.remote);
        let continued = match state.live.get(&info.call_id) {
            Some(s) if s.remote => Some(s.continuation(now)),
            Some(_) => {
                self.counters.calls_rejected.fetch_add(1, Ordering::Relaxed);
                return Err(HubError::DuplicateCall(info.call_id.clone()));
            }
            None => state
                .ended
                .iter()
                .rev()
                .find(|s| {
                    s.remote
                        && s.info.call_id == info.call_id
                        && s.end.as_ref().is_some_and(|e| {
                            e.reason == "interrupted"
                                && now.saturating_sub(e.ended_at_unix_ms) <= CONTINUATION_WINDOW_MS
                        })
                })
                .map(|s| s.continuation(now)),
        };
        if state.live.len() - state.remote_live >= self.max_calls {
            self.counters.calls_rejected.fetch_add(1, Ordering::Relaxed);
            return Err(HubError::TooManyCalls {
                limit: self.max_calls,
            });
        }
        if taking_over {
            state.remote_live -= 1;
        }
        let mut call = CallState::new(info.clone(), false);
        call.continued = continued;
        state.live.insert(info.call_id.clone(), call);
        self.counters.calls_started.fetch_add(1, Ordering::Relaxed);
        if let Some(journal) = self.journal.get() {
            journal.started(&info);
        }
        // A call just started has nothing open and nothing judged: attention 0.
        self.send_locked(&info, 0, HubEventKind::CallStarted);
        Ok(info)
    }

    /// Mirrors a call live on another node of the cluster: its start time is kept, it does
    /// not count against `max_calls` (at most [`REMOTE_CALLS_MAX`] are mirrored), and its
    /// events come through [`Self::publish`] and [`Self::end_call`] like a local call's.
    pub fn start_remote_call(&self, info: CallInfo) -> Result<Arc<CallInfo>, HubError> {
        if !valid_call_id(&info.call_id) {
            return Err(HubError::BadCallId(info.call_id));
        }
        let info = Arc::new(info);
        let mut state = self.lock();
        if state.live.contains_key(&info.call_id) {
            return Err(HubError::DuplicateCall(info.call_id.clone()));
        }
        if state.remote_live >= REMOTE_CALLS_MAX {
            return Err(HubError::TooManyCalls {
                limit: REMOTE_CALLS_MAX,
            });
        }
        state
            .live
            .insert(info.call_id.clone(), CallState::new(info.clone(), true));
        state.remote_live += 1;
        // A call just started has nothing open and nothing judged: attention 0.
        self.send_locked(&info, 0, HubEventKind::CallStarted);
        Ok(info)
    }

    /// The live call `call_id`, if any: its info and whether another node holds it.
    pub fn live_call(&self, call_id: &str) -> Option<(Arc<CallInfo>, bool)> {
        self.lock()
            .live
            .get(call_id)
            .map(|s| (s.info.clone(), s.remote))
    }

    /// Where the live call `call_id` continues another node's call, if it does.
    pub fn continuation(&self, call_id: &str) -> Option<Continuation> {
        self.lock()
            .live
            .get(call_id)
            .and_then(|s| s.continued.clone())
    }

    /// Publishes an event of a live call (ignored for unknown or ended calls).
    pub fn publish(&self, call: &Arc<CallInfo>, kind: HubEventKind) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(s) = state.live.get_mut(&call.call_id) else {
            return;
        };
        s.last_event_at_unix_ms = now_unix_ms();
        match &kind {
            HubEventKind::Snapshot(snap) => {
                s.attention.apply_snapshot(snap);
                s.latest = Some(snap.clone());
                push_bounded(&mut s.snapshots, snap.clone(), TIMELINE_MAX_SNAPSHOTS);
            }
            HubEventKind::Emotion(p) => {
                s.attention.apply_emotion(p);
                push_bounded(&mut s.emotion, p.clone(), TIMELINE_MAX_EMOTION_POINTS)
            }
            HubEventKind::Cue(cue) => {
                match cue.event {
                    CueTransition::Open => {
                        s.open_cues.push(cue.clone());
                        push_bounded(
                            &mut state.alerts,
                            Alert {
                                call: s.info.clone(),
                                cue: cue.clone(),
                                opened_at_unix_ms: now_unix_ms(),
                                closed_at_s: None,
                                ack: None,
                            },
                            ALERTS_MAX,
                        );
                    }
                    CueTransition::Close => {
                        s.open_cues.retain(|c| c.cue_id != cue.cue_id);
                        if let Some(alert) =
                            find_alert(&mut state.alerts, &call.call_id, cue.cue_id)
                        {
                            alert.closed_at_s = Some(cue.end_s);
                        }
                    }
                }
                push_bounded(&mut s.cues, cue.clone(), TIMELINE_MAX_CUES);
            }
            HubEventKind::CallStarted | HubEventKind::CallEnded(_) => {}
        }
        let attention = s.attention_score();
        self.send_locked(call, attention, kind);
    }

    /// Ends a live call: it leaves the live set and is kept among the recent ended calls.
    /// An `agent_take_a_moment` cue is opened on it first when the agent's shift calls for one.
    pub fn end_call(&self, call: &Arc<CallInfo>, end: CallEnd) {
        if let Some(cue) = self.judge_strain(call, &end) {
            self.publish(call, HubEventKind::Cue(cue));
        }
        let mut state = self.lock();
        let Some(mut s) = state.live.remove(&call.call_id) else {
            return;
        };
        s.end = Some(end.clone());
        s.open_cues.clear();
        if s.remote {
            state.remote_live -= 1;
        } else {
            self.counters.calls_ended.fetch_add(1, Ordering::Relaxed);
            if let Some(journal) = self.journal.get() {
                journal.ended(call);
            }
        }
        let attention = s.attention_score();
        push_bounded(&mut state.ended, s, RECENT_ENDED_CALLS);
        self.send_locked(call, attention, HubEventKind::CallEnded(end));
    }

    fn send_locked(&self, call: &Arc<CallInfo>, attention: u32, kind: HubEventKind) {
        let event = HubEvent {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            published_at_unix_ms: now_unix_ms(),
            call: call.clone(),
            attention,
            kind,
        };
        self.counters
            .events_published
            .fetch_add(1, Ordering::Relaxed);
        // No subscriber is not an error.
        let _ = self.sender.send(Arc::new(event));
    }

    /// Subscribes: the current view of every live call matching `filter` and a receiver of
    /// every event published after that view (taken atomically: nothing falls in between).
    pub fn subscribe(
        &self,
        filter: &CallFilter,
    ) -> (Vec<CallView>, broadcast::Receiver<Arc<HubEvent>>) {
        let state = self.lock();
        let receiver = self.sender.subscribe();
        let views = state
            .live
            .values()
            .filter(|s| filter.matches(&s.info))
            .map(CallState::view)
            .collect();
        (views, receiver)
    }

    /// Live calls matching `filter`.
    pub fn live_calls(&self, filter: &CallFilter) -> Vec<CallView> {
        self.lock()
            .live
            .values()
            .filter(|s| filter.matches(&s.info))
            .map(CallState::view)
            .collect()
    }

    /// Recently ended calls matching `filter`, newest first.
    pub fn ended_calls(&self, filter: &CallFilter) -> Vec<CallView> {
        self.lock()
            .ended
            .iter()
            .rev()
            .filter(|s| filter.matches(&s.info))
            .map(CallState::view)
            .collect()
    }

    /// A live or recently ended call's timeline.
    pub fn timeline(&self, call_id: &str) -> Option<CallTimeline> {
        let state = self.lock();
        let s = state
            .live
            .get(call_id)
            .or_else(|| state.ended.iter().rev().find(|s| s.info.call_id == call_id))?;
        Some(CallTimeline {
            view: s.view(),
            snapshots: s.snapshots.iter().cloned().collect(),
            emotion: s.emotion.iter().cloned().collect(),
            cues: s.cues.iter().cloned().collect(),
        })
    }

    /// Number of live calls.
    pub fn live_count(&self) -> usize {
        self.lock().live.len()
    }

    /// The alert feed matching `filter`, newest first, at most `limit`.
    pub fn alerts(&self, filter: &AlertFilter, limit: usize) -> Vec<Alert> {
        self.lock()
            .alerts
            .iter()
            .rev()
            .filter(|a| {
                filter.calls.matches(&a.call) && filter.severity.is_none_or(|s| s == a.cue.severity)
            })
            .take(limit)
            .cloned()
            .collect()
    }

    /// Acknowledges an alert (again: the newest acknowledgement wins) and tells every
    /// subscriber of [`Self::subscribe_acks`].
    pub fn acknowledge_alert(
        &self,
        call_id: &str,
        cue_id: u64,
        by: &str,
    ) -> Result<AlertAck, AckError> {
        let mut state = self.lock();
        let alert = find_alert(&mut state.alerts, call_id, cue_id).ok_or_else(|| {
            AckError::UnknownAlert {
                call_id: call_id.to_owned(),
                cue_id,
            }
        })?;
        let ack = AlertAck {
            call: alert.call.clone(),
            cue_id,
            by: by.chars().filter(|c| !c.is_control()).take(64).collect(),
            at_unix_ms: now_unix_ms(),
        };
        alert.ack = Some(ack.clone());
        // No subscriber is not an error.
        let _ = self.ack_sender.send(ack.clone());
        Ok(ack)
    }

    /// Applies an acknowledgement made on another node of the cluster (told to this node's
    /// subscribers of [`Self::subscribe_acks`] like a local one); None when the alert is not
    /// in this node's feed.
    pub fn apply_remote_ack(&self, ack: &AlertAck) -> Option<AlertAck> {
        let mut state = self.lock();
        let alert = find_alert(&mut state.alerts, &ack.call.call_id, ack.cue_id)?;
        let ack = AlertAck {
            call: alert.call.clone(),
            cue_id: ack.cue_id,
            by: ack
                .by
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect(),
            at_unix_ms: ack.at_unix_ms,
        };
        alert.ack = Some(ack.clone());
        let _ = self.ack_sender.send(ack.clone());
        Some(ack)
    }

    /// A receiver of every acknowledgement made from now on.
    pub fn subscribe_acks(&self) -> broadcast::Receiver<AlertAck> {
        self.ack_sender.subscribe()
    }

    /// Records events a subscriber missed (for `/metrics`).
    pub fn count_dropped(&self, events: u64) {
        self.counters
            .events_dropped_slow_subscribers
            .fetch_add(events, Ordering::Relaxed);
    }
}

fn find_alert<'a>(
    alerts: &'a mut VecDeque<Alert>,
    call_id: &str,
    cue_id: u64,
) -> Option<&'a mut Alert> {
    alerts
        .iter_mut()
        .rev()
        .find(|a| a.cue.cue_id == cue_id && a.call.call_id == call_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, team: &str) -> CallInfo {
        CallInfo {
            call_id: id.into(),
            agent_id: format!("agent-{id}"),
            team: team.into(),
            started_at_unix_ms: 0,
        }
    }

    fn ended(reason: &str) -> CallEnd {
        CallEnd {
            reason: reason.into(),
            duration_s: 1.0,
            ended_at_unix_ms: now_unix_ms(),
            summary: None,
        }
    }

    #[test]
    fn a_reconnect_takes_over_another_nodes_call_and_notes_the_gap() {
        let hub = Hub::new(1);
        // Live on another node: the reconnect here takes it over (a local call now).
        let mut remote = info("r", "red");
        remote.started_at_unix_ms = now_unix_ms() - 30_000;
        let mirrored = hub.start_remote_call(remote).unwrap();
        hub.publish(&mirrored, HubEventKind::CallStarted);
        let local = hub.start_call(info("r", "red")).unwrap();
        assert_eq!(hub.live_call("r").map(|(_, remote)| remote), Some(false));
        let c = hub.continuation("r").expect("a continuation");
        assert!(c.gap_s < 5.0, "{c:?}");
        assert_eq!(c.earlier_analysed_s, 0.0);
        assert_eq!(hub.live_count(), 1);
        // Now a local call: a second connection of the id is a duplicate.
        assert_eq!(
            hub.start_call(info("r", "red")),
            Err(HubError::DuplicateCall("r".into()))
        );
        hub.end_call(&local, ended("ended"));
        // Interrupted on its node (the node stopped): a reconnect within the window continues.
        let gone = hub.start_remote_call(info("g", "red")).unwrap();
        hub.end_call(&gone, ended("interrupted"));
        hub.start_call(info("g", "red")).unwrap();
        assert!(hub.continuation("g").is_some());
        hub.end_call(&gone, ended("ended"));
        // Ended normally on its node: the same id again is a new call.
        let done = hub.start_remote_call(info("d", "red")).unwrap();
        hub.end_call(&done, ended("ended"));
        hub.start_call(info("d", "red")).unwrap();
        assert_eq!(hub.continuation("d"), None);
    }

    #[test]
    fn limits_duplicates_and_filters() {
        let hub = Hub::new(2);
        let a = hub.start_call(info("a", "red")).unwrap();
        assert_eq!(
            hub.start_call(info("a", "red")),
            Err(HubError::DuplicateCall("a".into()))
        );
        hub.start_call(info("b", "blue")).unwrap();
        assert_eq!(
            hub.start_call(info("c", "blue")),
            Err(HubError::TooManyCalls { limit: 2 })
        );
        let red = CallFilter {
            team: Some("red".into()),
            ..CallFilter::default()
        };
        assert_eq!(hub.live_calls(&red).len(), 1);
        hub.end_call(
            &a,
            CallEnd {
                reason: "ended".into(),
                duration_s: 1.0,
                ended_at_unix_ms: 0,
                summary: None,
            },
        );
        assert_eq!(hub.live_count(), 1);
        assert_eq!(hub.ended_calls(&CallFilter::default()).len(), 1);
        assert!(hub.timeline("a").is_some_and(|t| !t.view.live));
        hub.start_call(info("c", "blue")).unwrap();
        assert!(hub.start_call(info("", "blue")).is_err());
    }

    #[test]
    fn subscribers_see_events_after_their_view() {
        let hub = Hub::new(10);
        let a = hub.start_call(info("a", "red")).unwrap();
        let (views, mut rx) = hub.subscribe(&CallFilter::default());
        assert_eq!(views.len(), 1);
        hub.end_call(
            &a,
            CallEnd {
                reason: "timeout".into(),
                duration_s: 2.0,
                ended_at_unix_ms: 0,
                summary: None,
            },
        );
        let e = rx.try_recv().unwrap();
        assert!(matches!(e.kind, HubEventKind::CallEnded(_)));
    }

    fn cue(cue_id: u64, event: CueTransition, severity: attune_core::cues::Severity) -> CueEvent {
        CueEvent {
            cue_id,
            kind: attune_core::cues::CueKind::CallerUpset,
            party: attune_core::cues::CueParty::Caller,
            severity,
            event,
            t_s: 12.0,
            start_s: 10.0,
            end_s: 12.0,
            evidence: attune_core::cues::Evidence {
                rule: "test".into(),
                values: Vec::new(),
            },
            guidance: None,
        }
    }

    fn point(
        party: attune_core::dialog::Speaker,
        emotion: Option<&'static str>,
        calmness: f32,
    ) -> EmotionPoint {
        EmotionPoint {
            t_s: 1.0,
            party,
            emotion,
            abstain_reason: None,
            probabilities: [0.2; 5],
            arousal: 0.0,
            valence: 0.0,
            confidence: 0.5,
            calmness,
            normalisation: attune_core::prosody::baseline::Normalisation::Global,
            speech_s: 1.0,
        }
    }

    #[test]
    fn every_event_and_view_carries_the_calls_attention() {
        use attune_core::cues::CueTransition::{Close, Open};
        use attune_core::cues::Severity::{Critical, Info, Warning};
        use attune_core::dialog::Speaker::{Agent, Caller};
        let hub = Hub::new(4);
        let a = hub.start_call(info("a", "red")).unwrap();
        let (_, mut rx) = hub.subscribe(&CallFilter::default());
        let mut publish = |kind| {
            hub.publish(&a, kind);
            rx.try_recv().unwrap().attention
        };
        assert_eq!(publish(HubEventKind::Cue(cue(1, Open, Critical))), 1_000);
        assert_eq!(publish(HubEventKind::Cue(cue(2, Open, Warning))), 1_100);
        assert_eq!(publish(HubEventKind::Cue(cue(3, Open, Info))), 1_100);
        let caller = |emotion| HubEventKind::Emotion(point(Caller, emotion, 90.0));
        let agent = |emotion, calmness| HubEventKind::Emotion(point(Agent, emotion, calmness));
        assert_eq!(publish(caller(Some("angry"))), 1_400);
        // An abstaining agent window leaves the agent's calmness as it was (none yet).
        assert_eq!(publish(agent(None, 10.0)), 1_400);
        assert_eq!(publish(agent(Some("neutral"), 39.9)), 1_600);
        assert_eq!(publish(agent(Some("neutral"), 40.0)), 1_480);
        assert_eq!(publish(agent(Some("neutral"), 60.0)), 1_400);
        assert_eq!(publish(caller(Some("sad"))), 1_200);
        assert_eq!(publish(caller(Some("anxious"))), 1_200);
        // An abstaining caller window: the caller is not judged now.
        assert_eq!(publish(caller(None)), 1_100);
        assert_eq!(publish(HubEventKind::Cue(cue(1, Close, Critical))), 100);
        let views = hub.live_calls(&CallFilter::default());
        assert_eq!(views[0].attention, 100, "the view has the events' figure");
        hub.end_call(&a, ended("ended"));
        let last = rx.try_recv().unwrap();
        assert!(matches!(last.kind, HubEventKind::CallEnded(_)));
        assert_eq!(last.attention, 0, "an ended call has nothing open");
    }

    #[test]
    fn alerts_are_fed_closed_filtered_and_acknowledged() {
        use attune_core::cues::Severity;
        let hub = Hub::new(10);
        let a = hub.start_call(info("a", "red")).unwrap();
        let b = hub.start_call(info("b", "blue")).unwrap();
        hub.publish(
            &a,
            HubEventKind::Cue(cue(1, CueTransition::Open, Severity::Critical)),
        );
        hub.publish(
            &b,
            HubEventKind::Cue(cue(1, CueTransition::Open, Severity::Warning)),
        );
        hub.publish(
            &a,
            HubEventKind::Cue(cue(1, CueTransition::Close, Severity::Critical)),
        );
        let all = hub.alerts(&AlertFilter::default(), 10);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].call.call_id, "b", "newest first");
        assert_eq!(all[1].closed_at_s, Some(12.0));
        let critical = AlertFilter {
            severity: Some(Severity::Critical),
            ..AlertFilter::default()
        };
        assert_eq!(hub.alerts(&critical, 10).len(), 1);
        let blue = AlertFilter {
            calls: CallFilter {
                team: Some("blue".into()),
                ..CallFilter::default()
            },
            ..AlertFilter::default()
        };
        assert_eq!(hub.alerts(&blue, 10)[0].call.call_id, "b");
        let mut acks = hub.subscribe_acks();
        assert!(hub.acknowledge_alert("a", 7, "sam").is_err());
        let ack = hub.acknowledge_alert("b", 1, "sam\n").unwrap();
        assert_eq!(ack.by, "sam");
        assert_eq!(acks.try_recv().unwrap(), ack);
        assert_eq!(hub.alerts(&blue, 10)[0].ack.as_ref(), Some(&ack));
    }
}
