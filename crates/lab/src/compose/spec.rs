//! The timeline spec of a composed call (JSON): call-level channel settings and the list of
//! utterances, each with its speaker, source file, start and level.
//!
//! An utterance's start is the onset of its *speech* (the source's leading silence is trimmed),
//! given in one of four ways (`start` is a one-key object):
//! - `{"at_s": 12.0}`: absolute call time;
//! - `{"after_s": 0.4}`: this long after the latest speech end of all earlier utterances (the
//!   usual next turn; negative values overlap the end of what was said, e.g. -0.2 for a
//!   turn-boundary overlap);
//! - `{"into_other_s": 1.5}`: this long after the speech start of the other party's latest
//!   utterance (backchannels, mid-turn interruptions);
//! - `{"before_other_end_s": 1.0}`: this long before the speech end of the other party's latest
//!   utterance (interruptions near the end of a turn).
//!
//! Example:
//! ```json
//! {"agent_channel": 0, "crosstalk_db": -30, "noise_dbfs": -55,
//!  "utterances": [
//!   {"speaker": "agent", "source": "fda/rl001.wav", "start": {"at_s": 0.5}, "level_dbfs": -22},
//!   {"speaker": "caller", "source": "ravdess/Actor_02/03-01-01-01-01-01-02.wav",
//!    "start": {"after_s": 0.6}, "level_dbfs": -24}]}
//! ```

use serde::{Deserialize, Serialize};

use super::annotation::{Speaker, UtteranceKind};
use super::noises::NoiseSpec;

/// Default call sample rate: the telephone's 8 kHz.
pub const DEFAULT_SAMPLE_RATE_HZ: u32 = 8_000;
/// Default data folder, relative to the working directory (the project root).
pub const DEFAULT_DATA_DIR: &str = "../shared/data";

/// How the call's samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputEncoding {
    /// G.711 mu-law WAV (format tag 7), 8 bits per sample: what a telephone line carries.
    #[default]
    Mulaw,
    /// 16-bit PCM WAV (after the mu-law round trip when the telephone channel is on).
    Pcm16,
}

/// When an utterance's speech starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// Absolute call time, seconds.
    AtS(f64),
    /// Gap after the latest speech end of all earlier utterances, seconds (negative: overlap).
    AfterS(f64),
    /// Offset after the speech start of the other party's latest utterance, seconds.
    IntoOtherS(f64),
    /// Lead before the speech end of the other party's latest utterance, seconds.
    BeforeOtherEndS(f64),
}

/// One utterance of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtteranceSpec {
    pub speaker: Speaker,
    /// Source WAV, relative to the data folder.
    pub source: String,
    pub start: Start,
    /// RMS level of the utterance's speech frames, dBFS (before the telephone band-pass).
    #[serde(default = "default_level_dbfs")]
    pub level_dbfs: f64,
    /// Declared role; checked against the role computed from the timeline (omit to infer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<UtteranceKind>,
    /// Keep only the first this-many seconds of the source's speech, cut at the quietest frame
    /// of the last 40 % (how backchannels are made: there are no "mm-hm" recordings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_s: Option<f64>,
    /// Play the source this many times faster (a tape-speed change, [`MIN_SPEED`]..=
    /// [`MAX_SPEED`]: speaking rate and pitch change together; 1.15 is 15 % faster and 2.4
    /// semitones higher). Omit for the source as recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Non-speech sounds (breaths, lip clicks) before the speech onset, in the same channel;
    /// never speech in the truth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noises: Vec<NoiseSpec>,
}

/// A whole call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    #[serde(default = "default_sample_rate_hz")]
    pub sample_rate_hz: u32,
    /// Channel of the agent (0 or 1); the caller is on the other.
    #[serde(default)]
    pub agent_channel: u16,
    /// Folder the sources are relative to (default `../shared/data`; the CLI may override).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// Leakage of each party into the other's channel, dB (-35..-20), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crosstalk_db: Option<f64>,
    /// Delay of the leaked copy, milliseconds.
    #[serde(default = "default_crosstalk_delay_ms")]
    pub crosstalk_delay_ms: f64,
    /// White line noise RMS, dBFS, added to both channels before the telephone band-pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_dbfs: Option<f64>,
    /// Telephone channel: 300-3400 Hz band-pass and G.711 mu-law round trip.
    #[serde(default = "default_true")]
    pub telephone: bool,
    #[serde(default)]
    pub encoding: OutputEncoding,
    /// Silence after the last speech end, seconds.
    #[serde(default = "default_tail_s")]
    pub tail_s: f64,
    /// Seed of the line noise.
    #[serde(default)]
    pub seed: u64,
    pub utterances: Vec<UtteranceSpec>,
}

fn default_sample_rate_hz() -> u32 {
    DEFAULT_SAMPLE_RATE_HZ
}
fn default_level_dbfs() -> f64 {
    -24.0
}
fn default_crosstalk_delay_ms() -> f64 {
    3.0
}
fn default_true() -> bool {
    true
}
fn default_tail_s() -> f64 {
    0.5
}

/// Call-level limits, checked before anything is read.
pub const MIN_CROSSTALK_DB: f64 = -80.0;
pub const MAX_CROSSTALK_DB: f64 = -10.0;
pub const MAX_CROSSTALK_DELAY_MS: f64 = 50.0;
pub const MIN_LEVEL_DBFS: f64 = -80.0;
/// Slowest and fastest [`UtteranceSpec::speed`].
pub const MIN_SPEED: f64 = 0.75;
pub const MAX_SPEED: f64 = 1.35;
/// Longest call composed in memory.
pub const MAX_CALL_S: f64 = 3_600.0;

impl CallSpec {
    /// Parses a spec from JSON.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Checks the call-level settings; returns a message naming the bad value.
    pub fn check(&self) -> Result<(), String> {
        let rate = self.sample_rate_hz;
        if !(8_000..=48_000).contains(&rate) {
            return Err(format!("sample_rate_hz {rate} is outside 8000..=48000"));
        }
        if self.agent_channel > 1 {
            return Err(format!(
                "agent_channel {} must be 0 or 1",
                self.agent_channel
            ));
        }
        if let Some(db) = self.crosstalk_db
            && !(MIN_CROSSTALK_DB..=MAX_CROSSTALK_DB).contains(&db)
        {
            return Err(format!(
                "crosstalk_db {db} is outside {MIN_CROSSTALK_DB}..={MAX_CROSSTALK_DB}"
            ));
        }
        if !(0.0..=MAX_CROSSTALK_DELAY_MS).contains(&self.crosstalk_delay_ms) {
            return Err(format!(
                "crosstalk_delay_ms {} is outside 0..={MAX_CROSSTALK_DELAY_MS}",
                self.crosstalk_delay_ms
            ));
        }
        if let Some(db) = self.noise_dbfs
            && !(-120.0..=-10.0).contains(&db)
        {
            return Err(format!("noise_dbfs {db} is outside -120..=-10"));
        }
        if !(0.0..=60.0).contains(&self.tail_s) {
            return Err(format!("tail_s {} is outside 0..=60", self.tail_s));
        }
        if self.utterances.is_empty() {
            return Err("the spec has no utterances".into());
        }
        Ok(())
    }
}

impl UtteranceSpec {
    /// Checks the utterance's own fields; returns a message naming the bad value.
    pub fn check(&self) -> Result<(), String> {
        let value = match self.start {
            Start::AtS(v) | Start::AfterS(v) | Start::IntoOtherS(v) | Start::BeforeOtherEndS(v) => {
                v
            }
        };
        if !value.is_finite() || value.abs() > MAX_CALL_S {
            return Err(format!("start value {value} is not a usable time"));
        }
        match self.start {
            Start::AtS(v) if v < 0.0 => return Err(format!("at_s {v} is negative")),
            Start::IntoOtherS(v) if v < 0.0 => {
                return Err(format!("into_other_s {v} is negative"));
            }
            Start::BeforeOtherEndS(v) if v < 0.0 => {
                return Err(format!("before_other_end_s {v} is negative"));
            }
            _ => {}
        }
        if !(MIN_LEVEL_DBFS..=0.0).contains(&self.level_dbfs) {
            return Err(format!(
                "level_dbfs {} is outside {MIN_LEVEL_DBFS}..=0",
                self.level_dbfs
            ));
        }
        if let Some(max_s) = self.max_s
            && !(0.1..=MAX_CALL_S).contains(&max_s)
        {
            return Err(format!("max_s {max_s} is below 0.1 s"));
        }
        if let Some(speed) = self.speed
            && !(MIN_SPEED..=MAX_SPEED).contains(&speed)
        {
            return Err(format!(
                "speed {speed} is outside {MIN_SPEED}..={MAX_SPEED}"
            ));
        }
        for noise in &self.noises {
            noise.check()?;
        }
        if self.source.trim().is_empty() {
            return Err("source is empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minimal_spec_with_defaults() {
        let spec = CallSpec::from_json(
            r#"{"utterances":[{"speaker":"agent","source":"fda/rl001.wav","start":{"at_s":0.5}},
                {"speaker":"caller","source":"x.wav","start":{"before_other_end_s":0.7},"kind":"interruption"}]}"#,
        )
        .unwrap();
        assert_eq!(spec.sample_rate_hz, 8000);
        assert!(spec.telephone);
        assert_eq!(spec.encoding, OutputEncoding::Mulaw);
        assert_eq!(spec.utterances[0].start, Start::AtS(0.5));
        assert_eq!(spec.utterances[1].start, Start::BeforeOtherEndS(0.7));
        assert_eq!(spec.utterances[1].kind, Some(UtteranceKind::Interruption));
        spec.check().unwrap();
        let round = CallSpec::from_json(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(round, spec);
    }

    #[test]
    fn rejects_bad_values_with_names() {
        let mut spec = CallSpec::from_json(
            r#"{"crosstalk_db":-3,"utterances":[{"speaker":"agent","source":"a.wav","start":{"at_s":-1}}]}"#,
        )
        .unwrap();
        assert!(spec.check().unwrap_err().contains("crosstalk_db"));
        spec.crosstalk_db = None;
        assert!(spec.utterances[0].check().unwrap_err().contains("negative"));
        assert!(CallSpec::from_json(r#"{"utterances":[],"bogus":1}"#).is_err());
    }
}
