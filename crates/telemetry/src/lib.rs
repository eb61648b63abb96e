//! Triad's telemetry, in one place for every binary: the tracing
//! subscriber ([`logging`]), the Prometheus registry and the tower layer
//! that counts and times every gRPC request ([`metrics`]), and request ids
//! carried on every hop ([`request_id`]).
//!
//! `triad-server` applies these layers to every server; service crates only
//! register their own metrics and read request ids.
#![forbid(unsafe_code)]

pub mod logging;
pub mod metrics;
pub mod request_id;

pub use logging::init;
pub use request_id::{REQUEST_ID_HEADER, request_id};
