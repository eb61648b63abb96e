//! The `triad` command's integration tests, in one binary: the whole chain
//! through the real `triad` binary ([`end_to_end`]), every service past
//! saturation ([`overload`]), the weekly report against a monitor
//! ([`report`]), and one trace across the three services
//! ([`tracing`]).

mod end_to_end;
mod overload;
mod report;
mod tracing;
