//! The service edge: live calls in, events out. [`hub`] keeps every live call and fans its
//! events out to subscribers (gRPC monitor streams, the browser console); [`console`] serves the
//! supervisor console and the agent view over HTTP; [`feeder`] plays recordings in as live
//! calls (the demo and the tests).
//!
//! Everything here is I/O around the pure core ([`crate::call::CallAnalyzer`]).

pub mod console;
pub mod feeder;
pub mod hub;
