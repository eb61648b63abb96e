//! The preprocess service's integration tests, in one binary: real servers
//! on ephemeral loopback ports ([`support`]), called through the generated
//! client, balanced channels and `grpcurl`.

mod balancing;
mod bounds;
mod grpcurl;
mod server;
mod support;
