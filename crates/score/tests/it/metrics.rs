//! `GET /metrics` on the scorer's HTTP port: request counts and latency by
//! RPC and status code in the Prometheus text format (0.0.4), accepted by
//! `promtool check metrics` (Debian's `prometheus` package; `.ci/run`
//! installs it — without it the promtool check says so and is skipped,
//! except under CI).

use tonic::Code;
use triad_features::FeatureSchema;
use triad_test_support::tools::promtool_check;
use triad_test_support::{get, seed_score_request};

use crate::support::{Stack, write_logistic};

#[tokio::test]
async fn metrics_count_requests_by_rpc_and_status() {
    let repo = tempfile::tempdir().unwrap();
    write_logistic(
        repo.path(),
        "ratio",
        "1",
        0.0,
        &[],
        0.5,
        &FeatureSchema::current().hash,
    );
    let stack = Stack::start(repo.path()).await;
    let mut client = stack.scorer().await;
    client.score(seed_score_request()).await.unwrap();
    let mut unknown = seed_score_request();
    unknown.models = vec!["nope".into()];
    assert_eq!(
        client.score(unknown).await.unwrap_err().code(),
        Code::NotFound
    );

    let (status, text) = get(stack.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    let count = |labels: &str| -> f64 {
        let prefix = format!("triad_grpc_server_requests_total{{{labels}}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    };
    // Other tests in this process may add to the counters: at least ours.
    assert!(
        count(r#"code="OK",method="Score",service="triad.v1.Scorer""#) >= 1.0,
        "{text}"
    );
    assert!(
        count(r#"code="NOT_FOUND",method="Score",service="triad.v1.Scorer""#) >= 1.0,
        "{text}"
    );
    assert!(
        count(r#"code="OK",method="Featurize",service="triad.v1.Preprocess""#) >= 1.0,
        "{text}"
    );
    assert!(
        text.contains("triad_grpc_server_request_duration_seconds_bucket{"),
        "{text}"
    );

    promtool_check(&text);
    stack.stop().await;
}
