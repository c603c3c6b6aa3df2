//! QA scoring of recorded calls: the rubric ([`Rubric`], TOML, default `rules/qa.toml`), the
//! measured facts of a call and its score ([`CallFacts`], [`score_call`]), the per-call result
//! document ([`CallReport`], built from one pass of the call analyzer by [`score_recording`]),
//! its HTML report ([`html::render_call`], [`html::render_index`]) and CSV rows ([`csv`]),
//! batch scoring (worker pool, resume, store sync, result naming, atomic writes: [`batch`]), and writing a
//! document without holding it as one JSON tree ([`stream`]), the empathy measures per agent
//! and period from stored documents ([`trend`]), and the coaching view's figures per agent or
//! team and period, against the team, with the moments to review ([`coaching`]).
//!
//! The file edge of the analysis lives here too ([`files`]: recordings, models, rules), and the
//! store of scored and live calls ([`store`]: SQLite, PostgreSQL with feature `postgres`), and
//! what the process has used ([`process`]: CPU time, memory from `/proc/self`).

pub mod batch;
mod calendar;
pub mod coaching;
pub mod csv;
pub mod files;
pub mod html;
pub mod process;
mod report;
mod rubric;
mod score;
pub mod store;
pub mod stream;
pub mod trend;

pub use report::{
    CallReport, CalmnessSample, EmotionSample, InputIdentity, ScoreError, ScoringSetup, Versions,
    rfc3339_from_unix_ms, rfc3339_utc, score_recording, score_wav_bytes,
};
pub use rubric::{
    CUE_COUNT_PREFIX, DEFAULT_RUBRIC_TOML, FACTS, FactDef, Rubric, RubricError, RubricItem,
    fact_def, fnv1a_64, fnv1a_hex, recording_call_id,
};
pub use score::{CallFacts, EvidenceSpan, Fact, ItemResult, ItemScore, QaScore, score_call};
