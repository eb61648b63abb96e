//! The repository's fixtures, read once here: the seed API's example
//! request and response (a contract: `tests/fixtures/`), the request as
//! each gRPC front door takes it, and the workspace root for tests that
//! read other files of the repository.

use std::path::{Path, PathBuf};

use triad_features::{JsonLimits, parse_request};
use triad_proto::v1;

/// The seed API's example request (`tests/fixtures/seed_request.json`):
/// one budget, one line item.
pub const SEED_REQUEST: &str = include_str!("../../../tests/fixtures/seed_request.json");

/// The seed API's answer to [`SEED_REQUEST`]
/// (`tests/fixtures/seed_response.json`).
pub const SEED_RESPONSE: &str = include_str!("../../../tests/fixtures/seed_response.json");

/// [`SEED_REQUEST`] as a `Featurize` call takes it.
pub fn seed_featurize_request() -> v1::FeaturizeRequest {
    parse_request(SEED_REQUEST, &JsonLimits::default())
        .expect("the seed request parses")
        .request
        .into()
}

/// [`SEED_REQUEST`] as a `Score` call takes it (every served model, no
/// pins).
pub fn seed_score_request() -> v1::ScoreRequest {
    let request = seed_featurize_request();
    v1::ScoreRequest {
        budgets: request.budgets,
        all_user_expense_lineitems: request.all_user_expense_lineitems,
        ..v1::ScoreRequest::default()
    }
}

/// The repository's shipped model repository (`models/`).
pub fn shipped_models() -> PathBuf {
    workspace_root().join("models")
}

/// The workspace's root directory (where `Cargo.lock`, `models/` and
/// `docs/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/test-support sits two levels below the workspace root")
        .to_owned()
}
