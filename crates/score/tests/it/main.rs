//! The scorer's integration tests, in one binary: a real preprocess and
//! scorer (and a real or fake monitor) on ephemeral loopback ports,
//! started by [`support`].

mod bounds;
mod explain_gate;
mod metrics;
mod oip;
mod onnx_parity;
mod outcomes;
mod payload_log;
mod scorer;
mod security;
mod spool;
mod support;
