//! Triad's feature library: reads budgets and expense line items (the seed
//! API's JSON or the proto messages, as raw optional strings), parses and
//! normalizes each entity once, and builds the named, versioned feature
//! matrix with one row per (budget, line item) pair.
//!
//! It does no I/O and cannot fail on outside input: a null, empty or
//! unparsable field becomes NaN plus its missing flag, an item that cannot
//! form a row becomes an [`ItemError`], and every other pair is still built.
//! `docs/features.md` defines every feature. The caller bounds a request's
//! time with [`Featurizer::featurize_until`] and an [`Interrupt`].

pub mod error;
pub mod featurize;
pub mod json;
pub mod matrix;
pub mod parse;
pub mod record;
pub mod schema;
pub mod text;

pub use error::{ItemError, ItemErrorCode, ItemKind, RequestError};
pub use featurize::{
    Featurizer, FeaturizerConfig, Interrupt, Interrupted, TRIP_WINDOW_TOLERANCE_DAYS,
};
pub use json::{JsonLimits, JsonRequest, parse_request};
pub use matrix::FeatureMatrix;
pub use record::{FieldKind, IdProblem, RawBudget, RawLineItem, RawRequest, check_id, clip};
pub use schema::{FEATURE_NAMES, FeatureSchema, MISSING_FLAG_FIELDS, N_FEATURES, feature_inputs};
