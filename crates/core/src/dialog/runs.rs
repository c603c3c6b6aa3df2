//! One party's turns from its speech frames: runs of speech joined over pauses shorter than
//! [`super::DialogConfig::pause_bridge_s`], dropped when they hold less than
//! [`super::DialogConfig::min_speech_s`] of speech. A frame's talking state is decided once the
//! pause after it is known to be bridged or not (bounded look-ahead).

use std::collections::VecDeque;

/// A confirmed run of talking frames, `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    start: u64,
    end: u64,
}

/// The run being built.
#[derive(Debug, Clone, Copy)]
struct OpenRun {
    start: u64,
    last_speech: u64,
    /// Last talking frame: speech, or a tail frame after it.
    last_talk: u64,
    speech_frames: u64,
    /// Holds enough speech: it is (the back of) `confirmed`.
    confirmed: bool,
}

/// Streaming run builder for one party.
#[derive(Debug, Clone)]
pub(super) struct RunSmoother {
    bridge_frames: u64,
    min_speech_frames: u64,
    tail_frames: u64,
    frames_in: u64,
    open: Option<OpenRun>,
    /// Confirmed runs not yet passed by the reader, oldest first; the back one may be open.
    confirmed: VecDeque<Run>,
}

impl RunSmoother {
    pub(super) fn new(bridge_frames: u64, min_speech_frames: u64, tail_frames: u64) -> Self {
        Self {
            bridge_frames,
            min_speech_frames: min_speech_frames.max(1),
            tail_frames,
            frames_in: 0,
            open: None,
            confirmed: VecDeque::with_capacity(16),
        }
    }

    /// Adds the next frame: whether it is this party's speech, or else a tail frame (which
    /// can only continue a run, right after its talking frames).
    pub(super) fn push(&mut self, speech: bool, tail: bool) {
        let t = self.frames_in;
        self.frames_in += 1;
        if speech {
            let run = self.open.get_or_insert(OpenRun {
                start: t,
                last_speech: t,
                last_talk: t,
                speech_frames: 0,
                confirmed: false,
            });
            run.last_speech = t;
            run.last_talk = t;
            run.speech_frames += 1;
            if run.confirmed {
                if let Some(back) = self.confirmed.back_mut() {
                    back.end = t;
                }
            } else if run.speech_frames >= self.min_speech_frames {
                run.confirmed = true;
                self.confirmed.push_back(Run {
                    start: run.start,
                    end: t,
                });
            }
            return;
        }
        let Some(run) = self.open.as_mut() else {
            return;
        };
        if tail && run.last_talk + 1 == t && t - run.last_speech <= self.tail_frames {
            run.last_talk = t;
            if run.confirmed
                && let Some(back) = self.confirmed.back_mut()
            {
                back.end = t;
            }
        } else if t - run.last_talk >= self.bridge_frames {
            // The pause has become too long: the run ended at its last talking frame (an
            // unconfirmed run is dropped).
            self.open = None;
        }
    }

    /// Ends the stream: the open run ends at its last speech frame.
    pub(super) fn finish(&mut self) {
        self.open = None;
    }

    /// Frames before this are decided.
    pub(super) fn horizon(&self) -> u64 {
        match self.open {
            Some(run) if run.confirmed => run.last_talk + 1,
            Some(run) => run.start,
            None => self.frames_in,
        }
    }

    /// Whether decided frame `f` is talking. Calls must come in increasing `f`.
    pub(super) fn talking(&mut self, f: u64) -> bool {
        debug_assert!(f < self.horizon());
        while let Some(front) = self.confirmed.front() {
            if front.end < f {
                self.confirmed.pop_front();
            } else {
                return front.start <= f;
            }
        }
        false
    }
}
