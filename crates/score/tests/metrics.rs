//! `GET /metrics` on the scorer's HTTP port: request counts and latency by
//! RPC and status code in the Prometheus text format (0.0.4), accepted by
//! `promtool check metrics` (Debian's `prometheus` package; `.ci/run`
//! installs it — without it the promtool check says so and is skipped,
//! except under CI).

mod support;

use std::process::{Command, Stdio};

use support::{Stack, http, seed_score_request, write_logistic};
use tonic::Code;
use triad_features::FeatureSchema;

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

    let (status, text) = http(stack.http_addr, "GET", "/metrics", "").await;
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

    match Command::new("promtool").arg("--version").output() {
        Ok(_) => {
            let mut child = Command::new("promtool")
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "promtool check metrics failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is required under CI (apt-get install prometheus)"
            );
            eprintln!("promtool check SKIPPED: no promtool on PATH");
        }
    }
    stack.stop().await;
}
