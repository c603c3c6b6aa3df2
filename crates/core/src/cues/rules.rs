//! The cue rules' settings: one TOML file, every threshold with its unit in its name. The
//! shipped default (`rules/cues.toml`) is embedded; `CueRules::load` reads an override (e.g.
//! `attune serve --rules FILE`). Unknown keys are errors (a misspelt threshold must not
//! silently keep its default), and so are bad values: each error names the key and its line.

use serde::Deserialize;

/// The shipped rules, embedded in the binary.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../../../rules/cues.toml");

/// Most judged windows a window rule may average (the engine's rings hold this many).
pub(crate) const MAX_RULE_WINDOWS: usize = 16;
/// Most events an event rule may count.
pub(crate) const MAX_EVENT_COUNT: usize = 8;

/// What can go wrong reading a rules file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    #[error("cannot read cue rules {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Syntax errors, unknown keys, missing keys and wrong types (the message names the key and
    /// its line).
    #[error("cue rules {path}: {message}")]
    Parse { path: String, message: String },
    #[error("cue rules {path}{}: {key} = {value}: {why}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Invalid {
        path: String,
        /// `table.key` or `key`.
        key: String,
        /// 1-based line of the key in the file, when found.
        line: Option<usize>,
        value: f64,
        why: String,
    },
}

/// A level rule with hysteresis: opens when its measure stays past `open` for `open_min_s`,
/// closes when it stays back past `close` for `close_min_s`. Rules that open on a falling
/// measure have `close` above `open`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hysteresis {
    pub open: f64,
    pub close: f64,
    pub open_min_s: f64,
    pub close_min_s: f64,
}

impl Hysteresis {
    /// The rule opens when its measure rises past `open`.
    pub(crate) fn rising(&self) -> bool {
        self.open >= self.close
    }
}

/// A level rule over the mean of the last `windows` judged emotion windows of a party.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowHysteresis {
    pub windows: usize,
    pub open: f64,
    pub close: f64,
    pub open_min_s: f64,
    pub close_min_s: f64,
}

impl WindowHysteresis {
    pub fn level(&self) -> Hysteresis {
        Hysteresis {
            open: self.open,
            close: self.close,
            open_min_s: self.open_min_s,
            close_min_s: self.close_min_s,
        }
    }
}

/// A trend rule: the last `windows` judged windows against the `reference_windows` before them.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendHysteresis {
    pub windows: usize,
    pub reference_windows: usize,
    pub open: f64,
    pub close: f64,
    pub open_min_s: f64,
    pub close_min_s: f64,
}

impl TrendHysteresis {
    pub fn level(&self) -> Hysteresis {
        Hysteresis {
            open: self.open,
            close: self.close,
            open_min_s: self.open_min_s,
            close_min_s: self.close_min_s,
        }
    }
}

/// A span rule: opens once a span (a turn, a silence, an overlap) has lasted `open` seconds,
/// closes when the span ends.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanRule {
    pub open: f64,
}

/// An event rule: opens at the `open_count`-th event within `window_s` seconds, closes
/// `close_after_s` seconds after the last event.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    pub open_count: usize,
    pub window_s: f64,
    pub close_after_s: f64,
}

/// A fast path that opens `caller_upset` on strong evidence before the averaged rule would:
/// the last `windows` caller windows each judged (cold) angry with at least
/// `angry_probability_min` (minus the caller's habitual level beyond the allowance), high
/// arousal with at least `arousal_probability_min` and a confidence of at least
/// `confidence_min`. Closing stays with `[caller_upset_probability]`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsetStrongRule {
    pub windows: usize,
    pub angry_probability_min: f64,
    pub arousal_probability_min: f64,
    pub confidence_min: f64,
}

/// The same fast path over short caller windows of `window_speech_s` of speech, judged cold
/// for the upset onset only (staggered: one closes every `window_speech_s /`
/// [`ONSET_WINDOW_LANES`] of caller speech). The displayed emotion, the baseline and every
/// other rule keep the full-length windows.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsetOnsetRule {
    pub window_speech_s: f64,
    pub windows: usize,
    pub angry_probability_min: f64,
    pub arousal_probability_min: f64,
    pub confidence_min: f64,
}

impl UpsetOnsetRule {
    pub fn strong(&self) -> UpsetStrongRule {
        UpsetStrongRule {
            windows: self.windows,
            angry_probability_min: self.angry_probability_min,
            arousal_probability_min: self.arousal_probability_min,
            confidence_min: self.confidence_min,
        }
    }
}

/// Staggered short windows of [`UpsetOnsetRule`].
pub const ONSET_WINDOW_LANES: usize = 6;
/// Shortest onset window the model judges (it abstains below 1 s of speech), seconds.
pub(crate) const ONSET_WINDOW_MIN_SPEECH_S: f64 = crate::model::emotion::MIN_SPEECH_S;

/// The agent answered after a long gap: an [`EventRule`] over responses of at least
/// `latency_s`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowResponseRule {
    pub latency_s: f64,
    pub open_count: usize,
    pub window_s: f64,
    pub close_after_s: f64,
}

impl SlowResponseRule {
    pub fn events(&self) -> EventRule {
        EventRule {
            open_count: self.open_count,
            window_s: self.window_s,
            close_after_s: self.close_after_s,
        }
    }
}

/// The live empathy cue (`agent_pressing_upset_caller`): while `caller_upset` is open, the
/// agent is fast (its rate ratio against its own baseline at least `rate_ratio_min`), loud (its
/// loudness at least `loudness_vs_baseline_db_min` above its own baseline) — either judged only
/// while the agent has spoken within the last `agent_spoke_within_s` — or it interrupted the
/// caller within the last `interruption_window_s`. Opens when that holds for `open_min_s` of
/// call time, closes when it has not held for `close_min_s` (also once the caller is no longer
/// upset).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressingUpsetCallerRule {
    pub rate_ratio_min: f64,
    pub loudness_vs_baseline_db_min: f64,
    pub interruption_window_s: f64,
    pub agent_spoke_within_s: f64,
    pub open_min_s: f64,
    pub close_min_s: f64,
}

impl PressingUpsetCallerRule {
    /// The rule as a level rule over its 0/1 condition.
    pub fn level(&self) -> Hysteresis {
        Hysteresis {
            open: 1.0,
            close: 0.0,
            open_min_s: self.open_min_s,
            close_min_s: self.close_min_s,
        }
    }
}

/// Agent strain across a shift (`agent_take_a_moment`, judged after each call by the service
/// with [`crate::empathy::strain::ShiftStrain`]): a call is hard when `caller_upset` was open for
/// at least `hard_call_upset_s`, `agent_tension` opened, or the agent's mean calmness was at
/// least `hard_call_calmness_drop_points` below its mean over the shift's earlier calls (at least
/// `baseline_calls` of them: its own level, not an absolute one); the shift strains the agent when the mean calmness of its last
/// `strain_calls` calls is at least `strain_drop_points` below that of its earlier calls (at
/// least `strain_calls` of them). Either opens the cue, at most once per `min_gap_s`; a break of
/// at least `shift_break_s` between calls starts a new shift.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TakeAMomentRule {
    pub shift_break_s: f64,
    pub hard_call_upset_s: f64,
    pub hard_call_calmness_drop_points: f64,
    pub baseline_calls: u32,
    pub strain_calls: u32,
    pub strain_drop_points: f64,
    pub min_gap_s: f64,
}

/// Every rule's thresholds. Field names carry the unit of the measure. See `rules/cues.toml`
/// for what each rule measures.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CueRules {
    /// Version of these rules, reported with every score so results can be reproduced.
    pub version: String,
    /// Speech a party must have produced before rules against its own baseline run, seconds.
    pub baseline_min_speech_s: f64,
    /// Recent speech compared with the earlier speech by the loudness rules, seconds of speech.
    pub recent_speech_s: f64,
    /// Recent speech compared with the earlier speech by the rate rules, seconds of speech.
    pub recent_rate_speech_s: f64,
    /// Weight of the baseline judgement in a caller window's probabilities (0 = cold only).
    pub caller_baseline_weight: f64,
    /// The caller's habitual probability (mean of its earlier windows) beyond this allowance
    /// is subtracted from the recent mean by the upset, anxious and positive rules.
    pub caller_habitual_allowance: f64,
    pub agent_speaking_quickly_rate_ratio: Hysteresis,
    pub agent_speaking_slowly_rate_ratio: Hysteresis,
    pub agent_low_energy_db: Hysteresis,
    pub agent_raised_voice_db: Hysteresis,
    pub agent_tension_calmness_drop_points: WindowHysteresis,
    pub agent_continuous_speaking_s: SpanRule,
    pub agent_interrupting: EventRule,
    pub agent_slow_to_respond: SlowResponseRule,
    pub extended_silence_s: SpanRule,
    pub extended_overlap_s: SpanRule,
    pub caller_upset_probability: WindowHysteresis,
    /// Optional fast open of caller_upset on a few strong full-length windows.
    #[serde(default)]
    pub caller_upset_strong: Option<UpsetStrongRule>,
    /// Optional fast open of caller_upset on short onset windows.
    #[serde(default)]
    pub caller_upset_onset: Option<UpsetOnsetRule>,
    pub caller_anxious_probability: WindowHysteresis,
    pub caller_escalating_rise: TrendHysteresis,
    pub caller_calmed_down_probability: WindowHysteresis,
    pub positive_interaction_probability: WindowHysteresis,
    /// Optional live empathy cue: the caller is upset and the agent fast, loud or interrupting
    /// (leave the table out to switch it off).
    #[serde(default)]
    pub agent_pressing_upset_caller: Option<PressingUpsetCallerRule>,
    /// Optional cue across calls: take a moment after a hard call or when the shift strains
    /// the agent (leave the table out to switch it off).
    #[serde(default)]
    pub agent_take_a_moment: Option<TakeAMomentRule>,
}

impl Default for CueRules {
    fn default() -> Self {
        Self::from_toml(DEFAULT_RULES_TOML, "<embedded rules/cues.toml>")
            .expect("the embedded cue rules are valid (checked by a unit test)")
    }
}

/// Which way a level rule must open.
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Rising,
    Falling,
}

impl CueRules {
    /// Parses and checks rules; `path` names the source in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, RulesError> {
        let rules: CueRules = toml::from_str(text).map_err(|e| RulesError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        rules.validate(text, path)?;
        Ok(rules)
    }

    fn validate(&self, text: &str, path: &str) -> Result<(), RulesError> {
        let invalid = |table: &str, key: &str, value: f64, why: String| {
            let full = if table.is_empty() {
                key.to_owned()
            } else {
                format!("{table}.{key}")
            };
            RulesError::Invalid {
                path: path.to_owned(),
                key: full,
                line: key_line(text, table, key),
                value,
                why,
            }
        };
        let non_negative = |table: &str, key: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    table,
                    key,
                    value,
                    "must be a finite number >= 0".into(),
                ))
            }
        };
        non_negative("", "baseline_min_speech_s", self.baseline_min_speech_s)?;
        for (key, value) in [
            ("recent_speech_s", self.recent_speech_s),
            ("recent_rate_speech_s", self.recent_rate_speech_s),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(
                    "",
                    key,
                    value,
                    "must be a finite number > 0".into(),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.caller_habitual_allowance) {
            return Err(invalid(
                "",
                "caller_habitual_allowance",
                self.caller_habitual_allowance,
                "must be within 0..=1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.caller_baseline_weight) {
            return Err(invalid(
                "",
                "caller_baseline_weight",
                self.caller_baseline_weight,
                "must be within 0..=1".into(),
            ));
        }
        let level = |table: &str, h: &Hysteresis, direction: Direction| {
            for (key, value) in [("open", h.open), ("close", h.close)] {
                if !value.is_finite() {
                    return Err(invalid(table, key, value, "must be finite".into()));
                }
            }
            non_negative(table, "open_min_s", h.open_min_s)?;
            non_negative(table, "close_min_s", h.close_min_s)?;
            match direction {
                Direction::Rising if h.close > h.open => Err(invalid(
                    table,
                    "close",
                    h.close,
                    format!(
                        "must not exceed open ({}): the rule opens when its measure rises",
                        h.open
                    ),
                )),
                Direction::Falling if h.close < h.open => Err(invalid(
                    table,
                    "close",
                    h.close,
                    format!(
                        "must not be below open ({}): the rule opens when its measure falls",
                        h.open
                    ),
                )),
                _ => Ok(()),
            }
        };
        let windows = |table: &str, key: &str, n: usize| {
            if (1..=MAX_RULE_WINDOWS).contains(&n) {
                Ok(())
            } else {
                Err(invalid(
                    table,
                    key,
                    n as f64,
                    format!("must be within 1..={MAX_RULE_WINDOWS}"),
                ))
            }
        };
        use Direction::{Falling, Rising};
        let levels = [
            (
                "agent_speaking_quickly_rate_ratio",
                self.agent_speaking_quickly_rate_ratio,
                Rising,
            ),
            (
                "agent_speaking_slowly_rate_ratio",
                self.agent_speaking_slowly_rate_ratio,
                Falling,
            ),
            ("agent_low_energy_db", self.agent_low_energy_db, Falling),
            ("agent_raised_voice_db", self.agent_raised_voice_db, Rising),
        ];
        for (table, h, direction) in levels {
            level(table, &h, direction)?;
        }
        let window_levels = [
            (
                "agent_tension_calmness_drop_points",
                self.agent_tension_calmness_drop_points,
                Rising,
            ),
            (
                "caller_upset_probability",
                self.caller_upset_probability,
                Rising,
            ),
            (
                "caller_anxious_probability",
                self.caller_anxious_probability,
                Rising,
            ),
            (
                "caller_calmed_down_probability",
                self.caller_calmed_down_probability,
                Falling,
            ),
            (
                "positive_interaction_probability",
                self.positive_interaction_probability,
                Rising,
            ),
        ];
        for (table, w, direction) in window_levels {
            windows(table, "windows", w.windows)?;
            level(table, &w.level(), direction)?;
        }
        let unit = |table: &str, key: &str, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(invalid(table, key, value, "must be within 0..=1".into()))
            }
        };
        let strong_rules = [
            ("caller_upset_strong", self.caller_upset_strong),
            (
                "caller_upset_onset",
                self.caller_upset_onset.map(|o| o.strong()),
            ),
        ];
        for (table, rule) in strong_rules {
            let Some(rule) = rule else { continue };
            windows(table, "windows", rule.windows)?;
            unit(table, "angry_probability_min", rule.angry_probability_min)?;
            unit(
                table,
                "arousal_probability_min",
                rule.arousal_probability_min,
            )?;
            unit(table, "confidence_min", rule.confidence_min)?;
        }
        if let Some(onset) = self.caller_upset_onset
            && !(ONSET_WINDOW_MIN_SPEECH_S..=crate::prosody::windows::WINDOW_SPEECH_S)
                .contains(&onset.window_speech_s)
        {
            return Err(invalid(
                "caller_upset_onset",
                "window_speech_s",
                onset.window_speech_s,
                format!(
                    "must be within {ONSET_WINDOW_MIN_SPEECH_S}..={} (the model abstains below {ONSET_WINDOW_MIN_SPEECH_S} s of speech)",
                    crate::prosody::windows::WINDOW_SPEECH_S
                ),
            ));
        }
        let trend = self.caller_escalating_rise;
        windows("caller_escalating_rise", "windows", trend.windows)?;
        if trend.windows + trend.reference_windows > 2 * MAX_RULE_WINDOWS {
            return Err(invalid(
                "caller_escalating_rise",
                "reference_windows",
                trend.reference_windows as f64,
                format!(
                    "windows + reference_windows must not exceed {}",
                    2 * MAX_RULE_WINDOWS
                ),
            ));
        }
        windows(
            "caller_escalating_rise",
            "reference_windows",
            trend.reference_windows,
        )?;
        level("caller_escalating_rise", &trend.level(), Rising)?;
        for (table, span) in [
            (
                "agent_continuous_speaking_s",
                self.agent_continuous_speaking_s,
            ),
            ("extended_silence_s", self.extended_silence_s),
            ("extended_overlap_s", self.extended_overlap_s),
        ] {
            if !(span.open.is_finite() && span.open > 0.0) {
                return Err(invalid(
                    table,
                    "open",
                    span.open,
                    "must be a finite number > 0".into(),
                ));
            }
        }
        let slow = self.agent_slow_to_respond;
        if !(slow.latency_s.is_finite() && slow.latency_s > 0.0) {
            return Err(invalid(
                "agent_slow_to_respond",
                "latency_s",
                slow.latency_s,
                "must be a finite number > 0".into(),
            ));
        }
        for (table, e) in [
            ("agent_interrupting", self.agent_interrupting),
            ("agent_slow_to_respond", slow.events()),
        ] {
            if !(1..=MAX_EVENT_COUNT).contains(&e.open_count) {
                return Err(invalid(
                    table,
                    "open_count",
                    e.open_count as f64,
                    format!("must be within 1..={MAX_EVENT_COUNT}"),
                ));
            }
            non_negative(table, "window_s", e.window_s)?;
            non_negative(table, "close_after_s", e.close_after_s)?;
        }
        if let Some(p) = self.agent_pressing_upset_caller {
            let table = "agent_pressing_upset_caller";
            if !(p.rate_ratio_min.is_finite() && p.rate_ratio_min > 1.0) {
                return Err(invalid(
                    table,
                    "rate_ratio_min",
                    p.rate_ratio_min,
                    "must be a finite number > 1 (faster than the agent's own baseline)".into(),
                ));
            }
            non_negative(
                table,
                "loudness_vs_baseline_db_min",
                p.loudness_vs_baseline_db_min,
            )?;
            non_negative(table, "interruption_window_s", p.interruption_window_s)?;
            non_negative(table, "agent_spoke_within_s", p.agent_spoke_within_s)?;
            non_negative(table, "open_min_s", p.open_min_s)?;
            non_negative(table, "close_min_s", p.close_min_s)?;
        }
        if let Some(m) = self.agent_take_a_moment {
            let table = "agent_take_a_moment";
            non_negative(table, "shift_break_s", m.shift_break_s)?;
            non_negative(table, "hard_call_upset_s", m.hard_call_upset_s)?;
            non_negative(table, "strain_drop_points", m.strain_drop_points)?;
            non_negative(table, "min_gap_s", m.min_gap_s)?;
            if !(m.hard_call_calmness_drop_points.is_finite()
                && (0.0..=100.0).contains(&m.hard_call_calmness_drop_points))
            {
                return Err(invalid(
                    table,
                    "hard_call_calmness_drop_points",
                    m.hard_call_calmness_drop_points,
                    "must be within 0..=100 (calmness points)".into(),
                ));
            }
            if m.baseline_calls == 0 {
                return Err(invalid(
                    table,
                    "baseline_calls",
                    0.0,
                    "must be at least 1 (the agent's own earlier calls)".into(),
                ));
            }
            let max = crate::empathy::strain::MAX_STRAIN_CALLS;
            if !(1..=max).contains(&(m.strain_calls as usize)) {
                return Err(invalid(
                    table,
                    "strain_calls",
                    f64::from(m.strain_calls),
                    format!("must be within 1..={max}"),
                ));
            }
        }
        Ok(())
    }
}

/// The 1-based line where `key` is set inside `[table]` (or at the top level when `table` is
/// empty), for error messages.
fn key_line(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.split(']').next())
        {
            current = name.trim().to_owned();
            continue;
        }
        let Some((left, _)) = trimmed.split_once('=') else {
            continue;
        };
        let left = left.trim();
        let matches = if current == table {
            left == key
        } else {
            // Dotted keys: `table.key = ...` at the top level.
            current.is_empty() && !table.is_empty() && left == format!("{table}.{key}")
        };
        if matches {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_rules_parse() {
        let rules = CueRules::default();
        assert!(rules.extended_silence_s.open > 0.0);
        assert!(rules.agent_raised_voice_db.rising());
        assert!(!rules.agent_low_energy_db.rising());
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let bad = DEFAULT_RULES_TOML.replace("recent_speech_s", "recent_speach_s");
        let e = CueRules::from_toml(&bad, "x.toml").unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("recent_speach_s"), "{e}");
        let line = bad
            .lines()
            .position(|l| l.starts_with("recent_speach_s"))
            .unwrap()
            + 1;
        assert!(e.contains(&format!("line {line}")), "{e}");
    }

    #[test]
    fn bad_values_are_named_with_their_line() {
        let bad = DEFAULT_RULES_TOML.replace(
            "[extended_overlap_s]\nopen = 2.5",
            "[extended_overlap_s]\nopen = -1.0",
        );
        assert_ne!(bad, DEFAULT_RULES_TOML);
        let e = CueRules::from_toml(&bad, "x.toml").unwrap_err().to_string();
        let line = bad.lines().position(|l| l == "open = -1.0").unwrap() + 1;
        assert!(
            e.contains("extended_overlap_s.open") && e.contains(&format!("line {line}")),
            "{e}"
        );
    }

    #[test]
    fn hysteresis_in_the_wrong_direction_is_an_error() {
        // Low energy opens when loudness falls: a close below open is a mistake.
        let bad = DEFAULT_RULES_TOML.replace(
            "[agent_low_energy_db]\nopen = -8.0\nclose = -4.0",
            "[agent_low_energy_db]\nopen = -8.0\nclose = -10.0",
        );
        assert_ne!(bad, DEFAULT_RULES_TOML);
        let e = CueRules::from_toml(&bad, "x.toml").unwrap_err().to_string();
        assert!(
            e.contains("agent_low_energy_db.close") && e.contains("falls"),
            "{e}"
        );
        let shipped = CueRules::default().caller_upset_probability.windows;
        let bad = DEFAULT_RULES_TOML.replace(
            &format!("[caller_upset_probability]\nwindows = {shipped}\n"),
            "[caller_upset_probability]\nwindows = 0\n",
        );
        assert_ne!(bad, DEFAULT_RULES_TOML);
        let e = CueRules::from_toml(&bad, "x.toml").unwrap_err().to_string();
        assert!(e.contains("caller_upset_probability.windows"), "{e}");
    }

    #[test]
    fn missing_keys_and_wrong_types_are_named() {
        let bad: String = DEFAULT_RULES_TOML
            .lines()
            .filter(|l| !l.starts_with("caller_baseline_weight"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(bad, DEFAULT_RULES_TOML);
        let e = CueRules::from_toml(&bad, "x.toml").unwrap_err().to_string();
        assert!(e.contains("caller_baseline_weight"), "{e}");
        let bad = DEFAULT_RULES_TOML.replace(
            "baseline_min_speech_s = 10.0",
            "baseline_min_speech_s = \"ten\"",
        );
        let e = CueRules::from_toml(&bad, "x.toml").unwrap_err().to_string();
        assert!(
            e.contains("line") && e.contains("baseline_min_speech_s"),
            "{e}"
        );
    }

    #[test]
    fn onset_rule_is_optional_and_checked() {
        let shipped = CueRules::default();
        let onset = shipped
            .caller_upset_onset
            .expect("the shipped rules have an onset path");
        assert!(onset.window_speech_s < crate::prosody::windows::WINDOW_SPEECH_S);
        assert!(shipped.caller_upset_strong.is_none());
        let without: String = DEFAULT_RULES_TOML
            .split("[caller_upset_onset]")
            .next()
            .unwrap()
            .to_owned()
            + "[caller_anxious_probability]"
            + DEFAULT_RULES_TOML
                .split("[caller_anxious_probability]")
                .nth(1)
                .unwrap();
        let rules = CueRules::from_toml(&without, "x.toml").unwrap();
        assert!(rules.caller_upset_onset.is_none());
        let short = DEFAULT_RULES_TOML.replace(
            &format!("window_speech_s = {}", onset.window_speech_s),
            "window_speech_s = 0.5",
        );
        let e = CueRules::from_toml(&short, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("caller_upset_onset.window_speech_s"), "{e}");
        let unsure = DEFAULT_RULES_TOML.replace(
            &format!(
                "arousal_probability_min = {}",
                onset.arousal_probability_min
            ),
            "arousal_probability_min = 1.5",
        );
        let e = CueRules::from_toml(&unsure, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("caller_upset_onset.arousal_probability_min"),
            "{e}"
        );
    }

    #[test]
    fn pressing_rule_is_optional_and_checked() {
        let shipped = CueRules::default();
        let rule = shipped
            .agent_pressing_upset_caller
            .expect("the shipped rules have the empathy cue");
        assert!(rule.rate_ratio_min > 1.0);
        let without = DEFAULT_RULES_TOML
            .split("[agent_pressing_upset_caller]")
            .next()
            .unwrap()
            .to_owned();
        let rules = CueRules::from_toml(&without, "x.toml").unwrap();
        assert!(rules.agent_pressing_upset_caller.is_none());
        let bad = DEFAULT_RULES_TOML.replace(
            &format!("rate_ratio_min = {}", rule.rate_ratio_min),
            "rate_ratio_min = 0.9",
        );
        let e = CueRules::from_toml(&bad, "x.toml").unwrap_err().to_string();
        assert!(
            e.contains("agent_pressing_upset_caller.rate_ratio_min") && e.contains("line"),
            "{e}"
        );
    }
}
