//! The building blocks of the rules: hysteresis state machines (level, event), fixed-size
//! rings of judged windows and running means of a party's frames. All of fixed size, made
//! once per call: nothing here allocates.

use super::rules::{EventRule, Hysteresis, MAX_EVENT_COUNT};

/// One party's frame as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PartyFrame {
    /// The voice-activity detector marked the frame as speech.
    pub speech: bool,
    pub loudness_db: f32,
    /// 0 when unvoiced.
    pub f0_hz: f32,
    pub syllable_nucleus: bool,
}
use crate::dsp::FRAME_PERIOD_S;

/// A rule's decision at one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// The condition has held long enough: open, the condition having started at `from_s`.
    Open { from_s: f64 },
    /// The condition has been back long enough: close, the condition having ended at `until_s`.
    Close { until_s: f64 },
}

/// Where one level rule stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct LevelState {
    pub open: bool,
    /// The rule's clock and call time when the measure crossed in the current direction.
    crossing_since: Option<(f64, f64)>,
}

impl LevelState {
    /// Advances the rule. `measure` is None when there is nothing to judge (the state holds);
    /// `clock_s` is what the minimum durations count (call time, or the party's speech time);
    /// `t_s` is call time, for the cue's span.
    pub fn step(
        &mut self,
        measure: Option<f64>,
        clock_s: f64,
        t_s: f64,
        h: &Hysteresis,
    ) -> Option<Step> {
        let value = measure?;
        let rising = h.rising();
        let (crossed, min_s) = if self.open {
            let back = if rising {
                value <= h.close
            } else {
                value >= h.close
            };
            (back, h.close_min_s)
        } else {
            let past = if rising {
                value >= h.open
            } else {
                value <= h.open
            };
            (past, h.open_min_s)
        };
        if !crossed {
            self.crossing_since = None;
            return None;
        }
        let (since_clock, since_t) = *self.crossing_since.get_or_insert((clock_s, t_s));
        if clock_s - since_clock + 1e-9 < min_s {
            return None;
        }
        self.crossing_since = None;
        self.open = !self.open;
        Some(if self.open {
            Step::Open { from_s: since_t }
        } else {
            Step::Close { until_s: since_t }
        })
    }

    /// Marks the rule open (another path opened its cue), forgetting a crossing in progress.
    pub(crate) fn force_open(&mut self) {
        self.crossing_since = None;
        self.open = true;
    }

    /// Forgets a crossing in progress and marks the rule closed (its cue was closed by another
    /// rule).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Where one event rule stands: the recent events' spans.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventState {
    pub open: bool,
    /// Start and end of the latest events, newest last (`len` of them).
    events: [(f64, f64); MAX_EVENT_COUNT],
    len: usize,
}

impl EventState {
    /// Adds an event spanning `start_s..end_s`; returns Open when the rule opens.
    pub fn event(&mut self, start_s: f64, end_s: f64, rule: &EventRule) -> Option<Step> {
        if self.len == MAX_EVENT_COUNT {
            self.events.copy_within(1.., 0);
            self.len -= 1;
        }
        self.events[self.len] = (start_s, end_s);
        self.len += 1;
        if self.open {
            return None;
        }
        let recent = &self.events[..self.len];
        let in_window = recent
            .iter()
            .filter(|(s, _)| *s >= start_s - rule.window_s)
            .count();
        if in_window < rule.open_count {
            return None;
        }
        self.open = true;
        Some(Step::Open {
            from_s: recent[self.len - rule.open_count].0,
        })
    }

    /// Closes the rule `close_after_s` after the latest event ended.
    pub fn tick(&mut self, t_s: f64, rule: &EventRule) -> Option<Step> {
        if !self.open || self.len == 0 {
            return None;
        }
        let until_s = self.events[self.len - 1].1;
        if t_s - until_s + 1e-9 < rule.close_after_s {
            return None;
        }
        self.open = false;
        Some(Step::Close { until_s })
    }

    /// The number of events within `window_s` before `t_s`.
    pub(crate) fn count_since(&self, t_s: f64, window_s: f64) -> usize {
        self.events[..self.len]
            .iter()
            .filter(|(s, _)| *s >= t_s - window_s)
            .count()
    }
}

/// Size of a [`WindowSeries`] ring (judged windows kept).
pub(crate) const SERIES_LEN: usize = 32;

/// The latest judged windows' values of one series (e.g. the caller's angry probability), and
/// the running total over the whole call.
#[derive(Debug, Clone, Copy)]
pub struct WindowSeries {
    ring: [f64; SERIES_LEN],
    /// Values pushed so far.
    count: u64,
    total: f64,
}

impl Default for WindowSeries {
    fn default() -> Self {
        Self {
            ring: [0.0; SERIES_LEN],
            count: 0,
            total: 0.0,
        }
    }
}

impl WindowSeries {
    pub fn push(&mut self, value: f64) {
        self.ring[(self.count % SERIES_LEN as u64) as usize] = value;
        self.count += 1;
        self.total += value;
    }

    /// Mean of the `n` windows that end `skip` windows before the newest; None when fewer have
    /// been pushed.
    pub fn mean(&self, n: usize, skip: usize) -> Option<f64> {
        let needed = (n + skip) as u64;
        if n == 0 || needed > self.count || n + skip > SERIES_LEN {
            return None;
        }
        let sum: f64 = (0..n)
            .map(|k| {
                let index = self.count - 1 - (skip + k) as u64;
                self.ring[(index % SERIES_LEN as u64) as usize]
            })
            .sum();
        Some(sum / n as f64)
    }

    /// Mean of every window before the newest `n`; None when there are none.
    pub(crate) fn mean_before_last(&self, n: usize) -> Option<f64> {
        let last = self.mean(n, 0)? * n as f64;
        let earlier = self.count.checked_sub(n as u64).filter(|&c| c > 0)?;
        Some((self.total - last) / earlier as f64)
    }
}

/// A party's speech frames: loudness and syllable rate over its most recent speech (a fixed
/// span of speech time) and over its earlier speech in the call (the baseline). Frames leave
/// the recent span into the baseline, so "recent vs baseline" compares disjoint speech.
#[derive(Debug, Clone)]
pub struct ProsodyTrack {
    loudness: RecentSpan<f32>,
    nuclei: RecentSpan<bool>,
    speech_frames: u64,
}

/// The last `capacity` values of a series (made once), their sum, and the sum and count of
/// every value that left the span.
#[derive(Debug, Clone)]
struct RecentSpan<T> {
    ring: Vec<T>,
    capacity: usize,
    next: usize,
    recent_sum: f64,
    earlier_sum: f64,
    earlier_count: u64,
}

impl<T: Copy + Into<f64>> RecentSpan<T> {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            ring: Vec::with_capacity(capacity),
            capacity,
            next: 0,
            recent_sum: 0.0,
            earlier_sum: 0.0,
            earlier_count: 0,
        }
    }

    fn push(&mut self, value: T) {
        if self.ring.len() < self.capacity {
            self.ring.push(value);
        } else {
            let old: f64 = self.ring[self.next].into();
            self.ring[self.next] = value;
            self.next = (self.next + 1) % self.capacity;
            self.recent_sum -= old;
            self.earlier_sum += old;
            self.earlier_count += 1;
        }
        self.recent_sum += value.into();
    }

    fn full(&self) -> bool {
        self.ring.len() == self.capacity
    }

    fn recent_mean(&self) -> f64 {
        self.recent_sum / self.ring.len().max(1) as f64
    }

    fn earlier_mean(&self) -> f64 {
        self.earlier_sum / self.earlier_count.max(1) as f64
    }

    fn earlier_s(&self) -> f64 {
        self.earlier_count as f64 * FRAME_PERIOD_S
    }
}

impl ProsodyTrack {
    /// A track comparing the last `loudness_recent_s` / `rate_recent_s` of speech with the
    /// speech before (allocates its two rings once).
    pub fn new(loudness_recent_s: f64, rate_recent_s: f64) -> Self {
        let frames = |s: f64| (s / FRAME_PERIOD_S).round() as usize;
        Self {
            loudness: RecentSpan::new(frames(loudness_recent_s)),
            nuclei: RecentSpan::new(frames(rate_recent_s)),
            speech_frames: 0,
        }
    }

    /// Adds a frame (only speech frames count). Does not allocate once the rings are full.
    pub fn push(&mut self, frame: &PartyFrame) {
        if !frame.speech || !frame.loudness_db.is_finite() {
            return;
        }
        self.loudness.push(frame.loudness_db);
        self.nuclei.push(frame.syllable_nucleus);
        self.speech_frames += 1;
    }

    /// Speech so far, seconds.
    pub fn speech_s(&self) -> f64 {
        self.speech_frames as f64 * FRAME_PERIOD_S
    }

    /// Loudness of the recent speech minus that of the earlier speech, dB; None until the
    /// recent span is full and the earlier speech lasts `baseline_min_s`.
    pub(crate) fn loudness_vs_baseline_db(&self, baseline_min_s: f64) -> Option<f64> {
        (self.loudness.full() && self.loudness.earlier_s() >= baseline_min_s)
            .then(|| self.recent_loudness_db() - self.baseline_loudness_db())
    }

    /// Recent syllable rate over the earlier speech's rate; None as above or when the earlier
    /// speech had no syllables.
    pub(crate) fn rate_ratio(&self, baseline_min_s: f64) -> Option<f64> {
        (self.nuclei.full()
            && self.nuclei.earlier_s() >= baseline_min_s
            && self.nuclei.earlier_sum > 0.0)
            .then(|| self.recent_rate_syl_per_s() / self.baseline_rate_syl_per_s())
    }

    pub(crate) fn baseline_loudness_db(&self) -> f64 {
        self.loudness.earlier_mean()
    }

    pub(crate) fn recent_loudness_db(&self) -> f64 {
        self.loudness.recent_mean()
    }

    /// Syllable nuclei per second of the earlier speech.
    pub(crate) fn baseline_rate_syl_per_s(&self) -> f64 {
        self.nuclei.earlier_mean() / FRAME_PERIOD_S
    }

    /// Syllable nuclei per second of the recent speech.
    pub(crate) fn recent_rate_syl_per_s(&self) -> f64 {
        self.nuclei.recent_mean() / FRAME_PERIOD_S
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(open: f64, close: f64, open_min_s: f64, close_min_s: f64) -> Hysteresis {
        Hysteresis {
            open,
            close,
            open_min_s,
            close_min_s,
        }
    }

    #[test]
    fn level_opens_after_min_duration_and_closes_with_hysteresis() {
        let rule = h(1.0, 0.5, 0.5, 0.3);
        let mut s = LevelState::default();
        let mut steps = Vec::new();
        // 0.0-0.4 s above open, a dip to 0.8 (between close and open: resets the opening),
        // then 1.0 from 0.5 s on.
        for k in 0..250 {
            let t = k as f64 * 0.01;
            let v = match t {
                t if t < 0.4 => 1.2,
                t if t < 0.5 => 0.8,
                t if t < 1.5 => 1.2,
                // Between close and open: the cue stays open.
                t if t < 1.7 => 0.7,
                _ => 0.4,
            };
            if let Some(step) = s.step(Some(v), t, t, &rule) {
                steps.push((t, step));
            }
        }
        assert_eq!(steps.len(), 2, "{steps:?}");
        let (t_open, Step::Open { from_s }) = steps[0] else {
            panic!("{steps:?}")
        };
        assert!((from_s - 0.5).abs() < 1e-6 && (t_open - 1.0).abs() < 1e-6);
        let (t_close, Step::Close { until_s }) = steps[1] else {
            panic!("{steps:?}")
        };
        assert!((until_s - 1.7).abs() < 1e-6 && (t_close - 2.0).abs() < 1e-6);
    }

    #[test]
    fn falling_level_and_missing_measures() {
        let rule = h(-6.0, -3.0, 0.2, 0.2);
        let mut s = LevelState::default();
        assert_eq!(s.step(Some(-7.0), 0.0, 0.0, &rule), None);
        assert_eq!(s.step(None, 0.1, 5.0, &rule), None);
        assert_eq!(
            s.step(Some(-7.0), 0.2, 6.0, &rule),
            Some(Step::Open { from_s: 0.0 })
        );
        assert_eq!(s.step(Some(-4.0), 0.3, 7.0, &rule), None);
        assert_eq!(s.step(Some(-2.0), 0.4, 8.0, &rule), None);
        assert_eq!(
            s.step(Some(-2.0), 0.6, 9.0, &rule),
            Some(Step::Close { until_s: 8.0 })
        );
    }

    #[test]
    fn event_rule_counts_within_window_and_closes_after_quiet() {
        let rule = EventRule {
            open_count: 2,
            window_s: 10.0,
            close_after_s: 5.0,
        };
        let mut s = EventState::default();
        assert_eq!(s.event(1.0, 1.5, &rule), None);
        // The second event is outside the window of the first.
        assert_eq!(s.event(20.0, 20.5, &rule), None);
        assert_eq!(
            s.event(25.0, 25.4, &rule),
            Some(Step::Open { from_s: 20.0 })
        );
        assert_eq!(s.tick(30.0, &rule), None);
        assert_eq!(s.tick(30.4, &rule), Some(Step::Close { until_s: 25.4 }));
        assert_eq!(s.tick(40.0, &rule), None);
    }

    #[test]
    fn window_series_means() {
        let mut w = WindowSeries::default();
        assert_eq!(w.mean(1, 0), None);
        for v in 0..40 {
            w.push(f64::from(v));
        }
        assert_eq!(w.mean(2, 0), Some(38.5));
        assert_eq!(w.mean(3, 2), Some(36.0));
        // 0..=36 mean.
        assert_eq!(w.mean_before_last(3), Some(18.0));
        assert_eq!(w.mean(20, 20), None);
    }
}
