//! The one integration-test binary: drives the `attune` CLI and the library's public API.

mod audio;
mod bad_input;
mod cli;
mod compose;
mod dialog;
mod emotion;
mod pitch;
mod rate;
mod service;
mod util;
