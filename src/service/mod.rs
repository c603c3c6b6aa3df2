//! The service edge: live calls in, events out. [`hub`] keeps every live call and fans its
//! events out to subscribers (gRPC monitor streams, the browser console).
//!
//! Everything here is I/O around the pure core ([`crate::call::CallAnalyzer`]).

pub mod hub;
