//! The statistics' integration tests, in one binary: edge cases that must
//! not panic ([`edge_cases`]) and the Python reference fixtures
//! ([`reference`], read by [`support`]).

mod edge_cases;
mod reference;
mod support;
