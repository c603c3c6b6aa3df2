//! The one integration-test binary: drives the `attune` CLI and the library's public API.

mod access;
mod audio;
mod bad_input;
#[cfg(feature = "capture")]
mod capture;
mod cli;
#[cfg(feature = "cluster")]
mod cluster;
mod compose;
mod console;
mod cues;
mod dialog;
mod durable;
mod emotion;
mod http_edge;
mod ingest;
mod latency;
mod limits;
mod pitch;
mod qa;
mod rate;
mod recorded;
mod security;
mod service;
mod store;
mod util;
