//! The contracts' integration tests, in one binary: hostile input on the
//! proto path ([`hostile`]).

mod hostile;
