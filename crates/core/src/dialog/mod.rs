//! Conversation dynamics of a two-party call: who talks, who interrupts, who waits.
//!
//! [`DialogTracker`] is fed, every 10 ms, the [`FrameFeatures`] of the agent's and of the caller's
//! channel (only `dialog_activity` and `loudness_db` are read) and keeps turns, talk time per party,
//! overlap and silence time, interruptions (attributed, with their overlap), backchannels,
//! response latency and the longest monologue. The definitions and thresholds are those of
//! [`DialogConfig`].
//!
//! It works incrementally, for live calls: [`DialogTracker::push`] returns the events decided by
//! that frame (finished turns, overlaps, interruptions), [`DialogTracker::finish`] ends the call,
//! and [`DialogTracker::report`] condenses it. Decisions come out after a bounded look-ahead
//! (a pause is a turn end only once it exceeds `pause_bridge_s`; an overlap is an interruption
//! only once the interrupter's turn outlasts `backchannel_max_s`). Feeding a whole file gives
//! exactly the result of feeding it frame by frame: there is only this one code path.
//!
//! Memory is bounded: no frame is stored. The tracker keeps a few counters per party, a
//! response-latency histogram (10 ms bins, see [`DialogConfig`]) and the lists of turns,
//! overlaps and interruptions (a few per minute of call). The per-frame path does not
//! allocate except to append a finished turn, overlap or interruption to its list.
//!
//! Stages, per frame: crosstalk gate (`crosstalk`) → per-party turn runs with pause bridging
//! (`runs`) → the joint two-party state machine (this module).

mod config;
mod crosstalk;
mod runs;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use self::config::{DialogConfig, DialogConfigError};
mod speaker;

pub use self::speaker::Speaker;

use self::crosstalk::CrosstalkGate;
use self::runs::RunSmoother;
use crate::dsp::FRAME_PERIOD_S;
use crate::dsp::vad::VoiceActivity;
use crate::features::FrameFeatures;

/// What part a turn plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnKind {
    /// An ordinary turn.
    Turn,
    /// Short, started while the other party talked: not an interruption.
    Backchannel,
    /// Started an interruption.
    Interruption,
}

/// One turn of one party.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Turn {
    pub speaker: Speaker,
    pub start_s: f64,
    pub end_s: f64,
    pub kind: TurnKind,
}

impl Turn {
    pub fn duration_s(&self) -> f64 {
        self.end_s - self.start_s
    }
}

/// A span where both parties talk.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Overlap {
    pub start_s: f64,
    pub end_s: f64,
    /// Who started it (whose turn began at its onset); None for a simultaneous start.
    pub started_by: Option<Speaker>,
}

/// One party starting to talk while the other is mid-turn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interruption {
    /// Onset of the overlap, seconds.
    pub t_s: f64,
    pub by: Speaker,
    /// Length of the overlap it opened, seconds.
    pub overlap_s: f64,
}

/// A response latency, as it is measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Response {
    /// Start of the responding turn, seconds.
    pub t_s: f64,
    pub by: Speaker,
    pub latency_s: f64,
}

/// Something the tracker has decided.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DialogEvent {
    /// A finished turn (backchannels included, see [`Turn::kind`]).
    Turn(Turn),
    /// A finished overlap.
    Overlap(Overlap),
    Interruption(Interruption),
    /// A party started a turn in answer to the other.
    Response(Response),
}

/// Talk-time totals, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TalkTime {
    pub agent_s: f64,
    pub caller_s: f64,
    pub overlap_s: f64,
    pub silence_s: f64,
}

/// Response latency of each party (as the responder), seconds; None when it never responded.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ResponseLatency {
    pub agent_median: Option<f64>,
    pub caller_median: Option<f64>,
    pub agent_p90: Option<f64>,
    pub caller_p90: Option<f64>,
    pub agent_count: u64,
    pub caller_count: u64,
}

/// A figure per party.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PerParty<T> {
    pub agent: T,
    pub caller: T,
}

/// The conversation as decided so far (see [`DialogTracker::live`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LiveDialog {
    /// Call time up to which the tracker has decided, seconds.
    pub decided_s: f64,
    pub talk: TalkTime,
    /// Start of each party's turn in progress, seconds; None when not talking.
    pub turn_start_s: PerParty<Option<f64>>,
    /// Start of the overlap in progress, seconds.
    pub overlap_start_s: Option<f64>,
    pub interruption_count: PerParty<u64>,
    /// End of each party's last finished turn (backchannels included), seconds.
    pub last_turn_end_s: PerParty<Option<f64>>,
}

/// Everything the tracker knows about a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DialogReport {
    pub duration_s: f64,
    pub talk: TalkTime,
    /// Every turn, in order of their end (backchannels included, with their kind).
    pub turns: Vec<Turn>,
    pub overlaps: Vec<Overlap>,
    pub interruptions: Vec<Interruption>,
    pub response_latency_s: ResponseLatency,
    /// Longest non-backchannel turn, seconds.
    pub longest_monologue_s: PerParty<f64>,
    pub turn_count: PerParty<u64>,
    pub backchannel_count: PerParty<u64>,
    pub interruption_count: PerParty<u64>,
    /// Speech frames of each channel rejected as leakage of the other party, seconds.
    pub crosstalk_rejected_s: PerParty<f64>,
}

impl DialogReport {
    /// The backchannel turns.
    pub fn backchannels(&self) -> impl Iterator<Item = &Turn> {
        self.turns
            .iter()
            .filter(|t| t.kind == TurnKind::Backchannel)
    }
}

const AGENT: usize = 0;
const CALLER: usize = 1;

fn speaker(party: usize) -> Speaker {
    if party == AGENT {
        Speaker::Agent
    } else {
        Speaker::Caller
    }
}

fn seconds(frames: u64) -> f64 {
    // Divide by the frame rate rather than multiply by 0.01 s: 2806 frames print as 28.06, not
    // 28.060000000000002.
    frames as f64 / (1.0 / FRAME_PERIOD_S).round()
}

fn frames_of(s: f64) -> u64 {
    (s / FRAME_PERIOD_S).round().max(0.0) as u64
}

/// An overlap onset waiting for the interrupter's turn to be classified and for the overlap's end.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    onset: u64,
    overlap_frames: Option<u64>,
    /// The interrupter's turn is not a backchannel.
    confirmed: bool,
    /// Already reported.
    emitted: bool,
}

/// Response latencies in 10 ms bins.
#[derive(Debug, Clone)]
struct LatencyHistogram {
    counts: Vec<u32>,
    total: u64,
}

impl LatencyHistogram {
    fn new(max_frames: usize) -> Self {
        Self {
            counts: vec![0; max_frames + 1],
            total: 0,
        }
    }

    fn add(&mut self, frames: u64) {
        let last = self.counts.len() - 1;
        self.counts[(frames as usize).min(last)] += 1;
        self.total += 1;
    }

    /// The `ceil(fraction * n)`-th smallest latency, seconds.
    fn quantile_s(&self, fraction: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let target = ((fraction * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (bin, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= target {
                return Some(seconds(bin as u64));
            }
        }
        None
    }
}

/// What the joint state machine keeps per party.
#[derive(Debug, Clone)]
struct Party {
    talking: bool,
    turn_start: u64,
    /// Start of the other party's turn this turn started in, if it started in one.
    host_turn_start: Option<u64>,
    /// End (exclusive frame) of the last turn of any kind.
    last_any_end: u64,
    /// The turn has outlasted `backchannel_max_s` (so it is not a backchannel).
    long_enough: bool,
    candidate: Option<Candidate>,
    /// End (exclusive frame) of the last non-backchannel turn.
    last_turn_end: Option<u64>,
    talk_frames: u64,
    longest_turn_frames: u64,
    turns: u64,
    backchannels: u64,
    interruptions: u64,
    latency: LatencyHistogram,
}

impl Party {
    fn new(latency_bins: usize) -> Self {
        Self {
            talking: false,
            turn_start: 0,
            host_turn_start: None,
            last_any_end: 0,
            long_enough: false,
            candidate: None,
            last_turn_end: None,
            talk_frames: 0,
            longest_turn_frames: 0,
            turns: 0,
            backchannels: 0,
            interruptions: 0,
            latency: LatencyHistogram::new(latency_bins),
        }
    }
}

/// The two-party dialog tracker. See the module doc and [`DialogConfig`].
#[derive(Debug, Clone)]
pub struct DialogTracker {
    config: DialogConfig,
    backchannel_max_frames: u64,
    min_other_frames: u64,
    min_overlap_frames: u64,
    gate: CrosstalkGate,
    runs: [RunSmoother; 2],
    /// Frames pushed so far.
    frames_in: u64,
    /// Next frame the joint state machine decides.
    next_frame: u64,
    parties: [Party; 2],
    overlap_start: Option<u64>,
    overlap_started_by: Option<usize>,
    overlap_frames: u64,
    silence_frames: u64,
    turns: Vec<Turn>,
    overlaps: Vec<Overlap>,
    interruptions: Vec<Interruption>,
    events: Vec<DialogEvent>,
    finished: bool,
}

impl DialogTracker {
    /// A tracker for one call; the settings are checked.
    pub fn new(config: DialogConfig) -> Result<Self, DialogConfigError> {
        config.validate()?;
        let delay_frames = frames_of(config.crosstalk_max_delay_s) as usize;
        let bridge = frames_of(config.pause_bridge_s);
        let min_speech = frames_of(config.min_speech_s).max(1);
        let latency_bins = frames_of(config.response_latency_histogram_max_s) as usize;
        let smoother = RunSmoother::new(bridge, min_speech, frames_of(config.tail_max_s));
        Ok(Self {
            backchannel_max_frames: frames_of(config.backchannel_max_s),
            min_other_frames: frames_of(config.interruption_min_other_speaking_s),
            min_overlap_frames: frames_of(config.interruption_min_overlap_s),
            gate: CrosstalkGate::new(
                config.crosstalk_margin_db,
                delay_frames,
                config.tail_margin_db,
            ),
            runs: [smoother.clone(), smoother],
            frames_in: 0,
            next_frame: 0,
            parties: [Party::new(latency_bins), Party::new(latency_bins)],
            overlap_start: None,
            overlap_started_by: None,
            overlap_frames: 0,
            silence_frames: 0,
            turns: Vec::with_capacity(256),
            overlaps: Vec::with_capacity(64),
            interruptions: Vec::with_capacity(32),
            events: Vec::with_capacity(16),
            finished: false,
            config,
        })
    }

    pub fn config(&self) -> &DialogConfig {
        &self.config
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames_in
    }

    /// The conversation as decided so far, without copying the turn lists (cheap: for live
    /// snapshots). Lags the pushed frames by the smoothing look-ahead.
    pub fn live(&self) -> LiveDialog {
        let [agent, caller] = &self.parties;
        let turn_start = |p: &Party| p.talking.then(|| seconds(p.turn_start));
        LiveDialog {
            decided_s: seconds(self.next_frame),
            talk: TalkTime {
                agent_s: seconds(agent.talk_frames),
                caller_s: seconds(caller.talk_frames),
                overlap_s: seconds(self.overlap_frames),
                silence_s: seconds(self.silence_frames),
            },
            turn_start_s: PerParty {
                agent: turn_start(agent),
                caller: turn_start(caller),
            },
            overlap_start_s: self.overlap_start.map(seconds),
            interruption_count: PerParty {
                agent: agent.interruptions,
                caller: caller.interruptions,
            },
            last_turn_end_s: PerParty {
                agent: (agent.last_any_end > 0).then(|| seconds(agent.last_any_end)),
                caller: (caller.last_any_end > 0).then(|| seconds(caller.last_any_end)),
            },
        }
    }

    /// Routes the two channels of a frame by [`DialogConfig::agent_channel`].
    pub(crate) fn push_channels(
        &mut self,
        channel0: &FrameFeatures,
        channel1: &FrameFeatures,
    ) -> &[DialogEvent] {
        if self.config.agent_channel == 0 {
            self.push(channel0, channel1)
        } else {
            self.push(channel1, channel0)
        }
    }

    /// Adds the next frame of both parties; returns the events it decided (valid until the next
    /// call). After [`Self::finish`], frames are ignored.
    pub fn push(&mut self, agent: &FrameFeatures, caller: &FrameFeatures) -> &[DialogEvent] {
        self.events.clear();
        if self.finished {
            return &self.events;
        }
        let speech = self.gate.push(
            [
                agent.dialog_activity == VoiceActivity::Speech,
                caller.dialog_activity == VoiceActivity::Speech,
            ],
            [agent.loudness_db, caller.loudness_db],
        );
        for (runs, gate) in self.runs.iter_mut().zip(speech) {
            runs.push(gate.speech, gate.tail);
        }
        self.frames_in += 1;
        self.advance();
        &self.events
    }

    /// Ends the call: decides everything still pending; returns the events it decided.
    /// Idempotent.
    pub fn finish(&mut self) -> &[DialogEvent] {
        self.events.clear();
        if self.finished {
            return &self.events;
        }
        self.finished = true;
        for runs in &mut self.runs {
            runs.finish();
        }
        self.advance();
        // Close what is still open at the end of the call.
        let end = self.frames_in;
        if self.overlap_start.is_some() {
            self.end_overlap(end);
        }
        for party in [AGENT, CALLER] {
            if self.parties[party].talking {
                self.end_turn(party, end);
            }
        }
        &self.events
    }

    /// The figures so far (complete after [`Self::finish`]).
    pub fn report(&self) -> DialogReport {
        let [agent, caller] = &self.parties;
        let latency = |p: &Party, q| p.latency.quantile_s(q);
        let crosstalk = self.gate.rejected_frames();
        DialogReport {
            duration_s: seconds(self.frames_in),
            talk: TalkTime {
                agent_s: seconds(agent.talk_frames),
                caller_s: seconds(caller.talk_frames),
                overlap_s: seconds(self.overlap_frames),
                silence_s: seconds(self.silence_frames),
            },
            turns: self.turns.clone(),
            overlaps: self.overlaps.clone(),
            interruptions: self.interruptions.clone(),
            response_latency_s: ResponseLatency {
                agent_median: latency(agent, 0.5),
                caller_median: latency(caller, 0.5),
                agent_p90: latency(agent, 0.9),
                caller_p90: latency(caller, 0.9),
                agent_count: agent.latency.total,
                caller_count: caller.latency.total,
            },
            longest_monologue_s: PerParty {
                agent: seconds(agent.longest_turn_frames),
                caller: seconds(caller.longest_turn_frames),
            },
            turn_count: PerParty {
                agent: agent.turns,
                caller: caller.turns,
            },
            backchannel_count: PerParty {
                agent: agent.backchannels,
                caller: caller.backchannels,
            },
            interruption_count: PerParty {
                agent: agent.interruptions,
                caller: caller.interruptions,
            },
            crosstalk_rejected_s: PerParty {
                agent: seconds(crosstalk[AGENT]),
                caller: seconds(crosstalk[CALLER]),
            },
        }
    }

    /// Runs the joint state machine over every frame both parties have decided.
    fn advance(&mut self) {
        let horizon = self.runs[AGENT].horizon().min(self.runs[CALLER].horizon());
        while self.next_frame < horizon {
            let f = self.next_frame;
            let now = [self.runs[AGENT].talking(f), self.runs[CALLER].talking(f)];
            self.step(f, now);
            self.next_frame += 1;
        }
    }

    fn step(&mut self, f: u64, now: [bool; 2]) {
        let was = [self.parties[AGENT].talking, self.parties[CALLER].talking];
        let both = now[AGENT] && now[CALLER];
        if self.overlap_start.is_some() && !both {
            self.end_overlap(f);
        }
        for party in [AGENT, CALLER] {
            if was[party] && !now[party] {
                self.end_turn(party, f);
            }
        }
        // Both starts are recorded before either looks at the other's turn.
        for party in [AGENT, CALLER] {
            if !was[party] && now[party] {
                self.parties[party].turn_start = f;
            }
        }
        for party in [AGENT, CALLER] {
            if !was[party] && now[party] {
                self.start_turn(party, f, now[1 - party]);
            }
        }
        if both && self.overlap_start.is_none() {
            self.start_overlap(f);
        }
        for party in [AGENT, CALLER] {
            let p = &mut self.parties[party];
            if now[party] {
                p.talk_frames += 1;
                if !p.long_enough && f + 1 - p.turn_start > self.backchannel_max_frames {
                    p.long_enough = true;
                    if let Some(c) = p.candidate.as_mut() {
                        c.confirmed = true;
                    }
                    self.resolve_candidate(party);
                }
            }
        }
        if both {
            self.overlap_frames += 1;
        } else if !now[AGENT] && !now[CALLER] {
            self.silence_frames += 1;
        }
    }

    fn start_turn(&mut self, party: usize, f: u64, other_talking: bool) {
        let other = &self.parties[1 - party];
        let host_turn_start = other_talking.then_some(other.turn_start);
        let (this_end, other_end) = (self.parties[party].last_turn_end, other.last_turn_end);
        let p = &mut self.parties[party];
        p.talking = true;
        p.host_turn_start = host_turn_start;
        p.long_enough = false;
        p.candidate = None;
        if other_talking {
            return;
        }
        // A response: the last turn to end was the other party's.
        if let Some(other_end) = other_end
            && this_end.is_none_or(|end| end < other_end)
        {
            let gap = f - other_end;
            p.latency.add(gap);
            self.events.push(DialogEvent::Response(Response {
                t_s: seconds(f),
                by: speaker(party),
                latency_s: seconds(gap),
            }));
        }
    }

    fn end_turn(&mut self, party: usize, f: u64) {
        let other = &self.parties[1 - party];
        // The other party's turn this one started in lasts at least until this one ends.
        let inside_host = self.parties[party].host_turn_start.is_some_and(|host| {
            other.turn_start == host && (other.talking || other.last_any_end == f)
        });
        let p = &mut self.parties[party];
        p.talking = false;
        p.last_any_end = f;
        let length = f - p.turn_start;
        let backchannel = inside_host && !p.long_enough && length <= self.backchannel_max_frames;
        let kind = if backchannel {
            p.backchannels += 1;
            p.candidate = None;
            TurnKind::Backchannel
        } else {
            p.turns += 1;
            p.last_turn_end = Some(f);
            p.longest_turn_frames = p.longest_turn_frames.max(length);
            if let Some(c) = p.candidate.as_mut() {
                c.confirmed = true;
            }
            self.resolve_candidate(party);
            if self.parties[party].candidate.is_some_and(|c| c.emitted) {
                TurnKind::Interruption
            } else {
                TurnKind::Turn
            }
        };
        let turn = Turn {
            speaker: speaker(party),
            start_s: seconds(self.parties[party].turn_start),
            end_s: seconds(f),
            kind,
        };
        self.turns.push(turn);
        self.events.push(DialogEvent::Turn(turn));
    }

    fn start_overlap(&mut self, f: u64) {
        self.overlap_start = Some(f);
        let started = [AGENT, CALLER].map(|p| self.parties[p].turn_start == f);
        self.overlap_started_by = match started {
            [true, false] => Some(AGENT),
            [false, true] => Some(CALLER),
            _ => None,
        };
        if let Some(by) = self.overlap_started_by {
            let other = &self.parties[1 - by];
            if f - other.turn_start >= self.min_other_frames {
                self.parties[by].candidate = Some(Candidate {
                    onset: f,
                    overlap_frames: None,
                    confirmed: false,
                    emitted: false,
                });
            }
        }
    }

    fn end_overlap(&mut self, f: u64) {
        let Some(start) = self.overlap_start.take() else {
            return;
        };
        let overlap = Overlap {
            start_s: seconds(start),
            end_s: seconds(f),
            started_by: self.overlap_started_by.map(speaker),
        };
        self.overlaps.push(overlap);
        self.events.push(DialogEvent::Overlap(overlap));
        if let Some(by) = self.overlap_started_by.take()
            && let Some(c) = self.parties[by].candidate.as_mut()
            && c.onset == start
        {
            c.overlap_frames = Some(f - start);
            self.resolve_candidate(by);
        }
    }

    /// Emits the party's interruption once it is both confirmed and measured.
    fn resolve_candidate(&mut self, party: usize) {
        let p = &mut self.parties[party];
        let Some(c) = p.candidate.as_mut() else {
            return;
        };
        let Some(overlap_frames) = c.overlap_frames else {
            return;
        };
        if !c.confirmed || c.emitted {
            return;
        }
        if overlap_frames < self.min_overlap_frames {
            // A turn-boundary overlap: the other party stopped soon after the onset.
            p.candidate = None;
            return;
        }
        // The candidate stays: it marks the turn as an interruption.
        c.emitted = true;
        let c = *c;
        p.interruptions += 1;
        let interruption = Interruption {
            t_s: seconds(c.onset),
            by: speaker(party),
            overlap_s: seconds(overlap_frames),
        };
        self.interruptions.push(interruption);
        self.events.push(DialogEvent::Interruption(interruption));
    }
}
