//! The featurizer's integration tests, in one binary: hand-computed
//! features ([`featurize`]), hostile input and the JSON path's bounds
//! ([`hostile`]), long texts and interrupts ([`long_text`]), properties
//! of every value ([`properties`]), and a naive reference ([`reference`]).

mod featurize;
mod hostile;
mod long_text;
mod properties;
mod reference;
