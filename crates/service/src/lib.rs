//! The service edge: live calls in, events out.
//!
//! - [`hub`] keeps every live call and fans its events out to subscribers (gRPC monitor
//!   streams, the browser console), each with the call's [`attention`] score.
//! - [`console`] serves the supervisor console and the agent view over HTTP; [`feeder`] plays
//!   recordings in as live calls (the demo and the tests).
//! - [`session`] is one call's server-side state without I/O: header validation, chunk
//!   sequencing, decoding and the call's analyzer.
//! - [`analysis`] runs the analysis (CPU work) on a small pool of OS threads, off tokio's workers.
//! - [`grpc`] drives ingest sessions and monitor streams (`attune.v1.LiveCalls`), mapping every
//!   fault to a precise status; [`http`] serves `/healthz` and `/metrics` ([`metrics`]);
//!   [`http_conn`] serves the HTTP listener's connections with timeouts and a cap.
//! - [`recorder`] scores ended calls and uploaded recordings and saves them to the store (off
//!   tokio's workers), and answers the console's "Recorded calls" queries; [`spool`] keeps its
//!   ended calls on disk until stored and journals the live calls (a kill -9 loses neither).
//! - [`recordings`] keeps the audio of the calls of opted-in teams (and their uploads) as
//!   stereo WAV files beside the store, written off the analysis path, with a retention period.
//! - [`ingest`] takes calls from telephony platforms (Twilio Media Streams, Genesys AudioHook,
//!   Asterisk AudioSocket) into the same live-call path as gRPC.
//! - [`server`] is the composition root of `attune serve` and `attune demo`: the service, its
//!   one HTTP application, served on bound listeners until a shutdown signal.
//! - [`client`] streams a call's audio from any chunk source to a server (replay, capture).
//! - [`convert`] maps analysis types to the wire types ([`pb`]) and wire events to JSON.
//! - [`auth`] decides who may see and do what: accounts, roles, API tokens, console sessions,
//!   the audit log; [`tls`] serves HTTP over rustls.
//!
//! Everything here is I/O around the pure core ([`attune_core::call::CallAnalyzer`]).

pub mod analysis;
pub mod attention;
pub mod auth;
#[cfg(feature = "cluster")]
pub mod backlog;
pub mod client;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod console;
pub mod convert;
pub mod feeder;
pub mod grpc;
pub mod http;
pub mod http_conn;
pub mod hub;
pub mod ingest;
pub mod limits;
pub mod metrics;
pub mod recorder;
pub mod recordings;
pub mod server;
pub mod session;
pub mod spool;
pub mod tls;

/// The generated gRPC types and stubs of `proto/attune/v1/attune.proto`.
#[allow(clippy::all, missing_docs)] // generated code
pub mod pb {
    /// The byte buffer of audio chunks (`AudioChunk.audio`).
    pub use prost::bytes::Bytes;
    tonic::include_proto!("attune.v1");
}
