//! Fuzz target: arbitrary bytes as the urlencoded query or form of every HTTP handler that
//! takes one (console: `/api/calls`, `/api/alerts`, `/events`, `/api/coaching`,
//! `/api/recorded`, `/api/recorded/{id}/audio`, `/api/audit`, uploads; auth: the login page's
//! query and the login form), through axum's extractor (serde_urlencoded), then each query's
//! own checks (filters, coaching request, store query, the login redirect check).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    attune_service::console::fuzz_queries(data);
    attune_service::auth::web::fuzz_forms(data);
});
