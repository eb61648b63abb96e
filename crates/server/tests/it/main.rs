//! The shared server's integration tests, in one binary: every port's
//! limits ([`ports`]) and TLS, mutual TLS and tokens ([`tls`]) on real
//! servers on ephemeral loopback ports.

mod ports;
mod tls;
