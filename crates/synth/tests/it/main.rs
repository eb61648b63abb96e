//! The synthetic data set's integration tests, in one binary: properties
//! of generated data sets ([`dataset`]).

mod dataset;
