//! The cue rules' settings: one TOML file, every threshold with its unit in its name. The
//! shipped default (`rules/cues.toml`) is embedded; `attune serve --rules FILE` overrides it.
//! Unknown keys are errors (a misspelt threshold must not silently keep its default).

use std::path::Path;

use serde::Deserialize;

/// The shipped rules, embedded in the binary.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../rules/cues.toml");

/// What can go wrong reading a rules file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    #[error("cannot read cue rules {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cue rules {path}: {message}")]
    Parse { path: String, message: String },
    #[error("cue rules {path}: {field} = {value}: {why}")]
    Invalid {
        path: String,
        field: &'static str,
        value: f64,
        why: &'static str,
    },
}

/// A rule with hysteresis: opens when its measure stays past `open` for `open_min_s`,
/// closes when it stays back past `close` for `close_min_s`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hysteresis {
    pub open: f64,
    pub close: f64,
    pub open_min_s: f64,
    pub close_min_s: f64,
}

/// Every rule's thresholds. Field names carry the unit of the measure.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CueRules {
    /// Version of these rules, reported with every score so results can be reproduced.
    pub version: String,
    /// Speech a party must have produced before rules against its own baseline run, seconds.
    pub baseline_min_speech_s: f64,
    /// Agent loudness over the last speech frames, dB above the agent's own baseline.
    pub agent_raised_voice_db: Hysteresis,
    /// Caller upset: probability of `angry` averaged over recent windows (0..1).
    pub caller_upset_probability: Hysteresis,
    /// Nobody talks, seconds of continuous silence.
    pub extended_silence_s: f64,
}

impl Default for CueRules {
    fn default() -> Self {
        Self::from_toml(DEFAULT_RULES_TOML, "<embedded rules/cues.toml>")
            .expect("the embedded cue rules are valid (checked by a unit test)")
    }
}

impl CueRules {
    /// Reads and checks a rules file.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks rules; `path` names the source in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, RulesError> {
        let rules: CueRules = toml::from_str(text).map_err(|e| RulesError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        rules.validate(path)?;
        Ok(rules)
    }

    fn validate(&self, path: &str) -> Result<(), RulesError> {
        let invalid = |field, value, why| RulesError::Invalid {
            path: path.to_owned(),
            field,
            value,
            why,
        };
        let non_negative = [
            ("baseline_min_speech_s", self.baseline_min_speech_s),
            ("extended_silence_s", self.extended_silence_s),
        ];
        for (field, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(field, value, "must be a finite number >= 0"));
            }
        }
        let rising = [
            ("agent_raised_voice_db", self.agent_raised_voice_db),
            ("caller_upset_probability", self.caller_upset_probability),
        ];
        for (field, h) in rising {
            for value in [h.open, h.close, h.open_min_s, h.close_min_s] {
                if !value.is_finite() {
                    return Err(invalid(field, value, "must be finite"));
                }
            }
            if h.close > h.open {
                return Err(invalid(field, h.close, "close must not exceed open"));
            }
            if h.open_min_s < 0.0 || h.close_min_s < 0.0 {
                return Err(invalid(field, h.open_min_s, "durations must be >= 0"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_rules_parse() {
        let rules = CueRules::default();
        assert!(rules.extended_silence_s > 0.0);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let bad = DEFAULT_RULES_TOML.replace("extended_silence_s", "extended_silense_s");
        let e = CueRules::from_toml(&bad, "x.toml").unwrap_err().to_string();
        assert!(
            e.contains("x.toml") && e.contains("extended_silense_s"),
            "{e}"
        );
        let bad =
            DEFAULT_RULES_TOML.replace("extended_silence_s = 10.0", "extended_silence_s = -1.0");
        let e = CueRules::from_toml(&bad, "x.toml").unwrap_err().to_string();
        assert!(e.contains("extended_silence_s"), "{e}");
    }
}
