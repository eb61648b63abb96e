//! Triad's telemetry, in one place for every binary: the tracing
//! subscriber ([`logging`]), the Prometheus registry and the tower layer
//! that counts and times every gRPC request ([`metrics`]), request ids
//! carried on every hop ([`request_id`]), and distributed tracing: W3C
//! trace context propagated on every hop ([`trace`]) and spans exported
//! over OTLP when a collector is configured ([`otlp`]).
//!
//! `triad-server` applies these layers to every server and client; service
//! crates only register their own metrics and read request ids.

pub mod logging;
pub mod metrics;
pub mod otlp;
pub mod request_id;
pub mod trace;

pub use logging::init;
pub use otlp::TelemetryGuard;
pub use request_id::{REQUEST_ID_HEADER, RequestIds, request_id};
pub use trace::current_traceparent;
