//! The scorer end to end: a real preprocess and scorer on ephemeral
//! loopback ports, called over gRPC and over the seed's HTTP contract.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tonic::Code;
use triad_features::FeatureSchema;
use triad_proto::v1::preprocess_client::PreprocessClient;
use triad_proto::v1::{self, FeaturizeRequest};
use triad_test_support::{SEED_REQUEST, SEED_RESPONSE, post, seed_score_request, shipped_models};

use crate::support::{Stack, write_logistic};

fn hash() -> &'static str {
    &FeatureSchema::current().hash
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Two models: `ratio` reads the amount ratio, `window` the trip window.
fn two_model_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_logistic(
        dir.path(),
        "ratio",
        "1",
        0.0,
        &[("amount_ratio_actual_cost", 1.0)],
        0.5,
        hash(),
    );
    write_logistic(
        dir.path(),
        "window",
        "1",
        -1.0,
        &[("in_trip_window", 2.0)],
        0.5,
        hash(),
    );
    dir
}

#[tokio::test]
async fn seed_fixture_over_http_answers_the_seed_response() {
    let stack = Stack::start(&shipped_models()).await;
    let (status, body) = post(stack.http_addr, "/budget_expense_matcher/", SEED_REQUEST).await;
    assert_eq!(status, 200, "{body}");
    let got: serde_json::Value = serde_json::from_str(&body).unwrap();
    let expected: serde_json::Value = serde_json::from_str(SEED_RESPONSE).unwrap();
    assert_eq!(got, expected);
    stack.stop().await;
}

#[tokio::test]
async fn seed_fixture_over_grpc_scores_one_pair() {
    let stack = Stack::start(&shipped_models()).await;
    let mut request = seed_score_request();
    request.models = vec!["budget_expense_matcher".into()];
    let response = stack
        .scorer()
        .await
        .score(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.keys.len(), 1);
    assert_eq!(response.keys[0].budget_id, "309366");
    assert_eq!(response.keys[0].itemization_id, "4659496");
    assert_eq!(response.schema_hash, hash());
    let result = &response.results[0];
    assert_eq!(result.model, "budget_expense_matcher");
    assert_eq!(result.version, "1");
    assert!(result.scores[0] < result.threshold, "{result:?}");
    assert_eq!(result.matched, [false]);
    stack.stop().await;
}

#[tokio::test]
async fn two_models_score_one_matrix_from_one_preprocess_call() {
    let repo = two_model_repo();
    let stack = Stack::start(repo.path()).await;
    let response = stack
        .scorer()
        .await
        .score(seed_score_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stack.preprocess_calls.load(Ordering::SeqCst), 1);
    let names: Vec<_> = response.results.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(names, ["ratio", "window"]);
    let ratio = f64::from(response.results[0].scores[0]);
    assert!((ratio - sigmoid(24.0 / 131.98)).abs() < 1e-6, "{ratio}");
    assert_eq!(response.results[0].matched, [true]);
    let window = f64::from(response.results[1].scores[0]);
    assert!((window - sigmoid(-1.0)).abs() < 1e-6, "{window}");
    assert_eq!(response.results[1].matched, [false]);
    stack.stop().await;
}

#[tokio::test]
async fn score_matrix_reuses_a_matrix_the_caller_has() {
    let repo = two_model_repo();
    let stack = Stack::start(repo.path()).await;
    let seed = seed_score_request();
    let matrix = PreprocessClient::connect(format!("http://{}", stack.preprocess_addr))
        .await
        .unwrap()
        .featurize(FeaturizeRequest {
            budgets: seed.budgets,
            all_user_expense_lineitems: seed.all_user_expense_lineitems,
        })
        .await
        .unwrap()
        .into_inner();
    let response = stack
        .scorer()
        .await
        .score_matrix(v1::ScoreMatrixRequest {
            matrix: Some(matrix.clone()),
            models: vec!["ratio".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stack.preprocess_calls.load(Ordering::SeqCst), 1);
    assert_eq!(response.results.len(), 1);
    assert!((f64::from(response.results[0].scores[0]) - sigmoid(24.0 / 131.98)).abs() < 1e-6);

    let mut foreign = matrix.clone();
    foreign.schema.as_mut().unwrap().hash = "0000000000000000".into();
    let status = stack
        .scorer()
        .await
        .score_matrix(v1::ScoreMatrixRequest {
            matrix: Some(foreign),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains(hash()), "{}", status.message());
    assert!(
        status.message().contains("0000000000000000"),
        "{}",
        status.message()
    );

    let mut short = matrix;
    short.values.pop();
    let status = stack
        .scorer()
        .await
        .score_matrix(v1::ScoreMatrixRequest {
            matrix: Some(short),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("expected 1 rows x 35 columns = 35 values, got 34")
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_model_trained_on_another_schema_is_refused() {
    let repo = two_model_repo();
    write_logistic(repo.path(), "stale", "1", 0.0, &[], 0.5, "ffffffffffffffff");
    let stack = Stack::start(repo.path()).await;
    let models = stack
        .scorer()
        .await
        .list_models(v1::ListModelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .models;
    let names: Vec<_> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["ratio", "window"]);
    let mut request = seed_score_request();
    request.models = vec!["stale".into()];
    let status = stack.scorer().await.score(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.message(),
        "no model named \"stale\"; this scorer serves [\"ratio\", \"window\"]"
    );
    stack.stop().await;
}

#[tokio::test]
async fn unknown_versions_and_pins_per_request() {
    let repo = two_model_repo();
    write_logistic(repo.path(), "ratio", "2", 5.0, &[], 0.5, hash());
    let stack = Stack::start(repo.path()).await;
    let mut request = seed_score_request();
    request.models = vec!["ratio".into()];
    let serving = stack
        .scorer()
        .await
        .score(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(serving.results[0].version, "2");
    request.versions.insert("ratio".into(), "1".into());
    let pinned = stack
        .scorer()
        .await
        .score(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pinned.results[0].version, "1");
    request.versions.insert("ratio".into(), "9".into());
    let status = stack.scorer().await.score(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.message(),
        "model \"ratio\" has no loaded version \"9\"; loaded versions are [\"1\", \"2\"]"
    );
    // Nothing was featurized for the failed request.
    assert_eq!(stack.preprocess_calls.load(Ordering::SeqCst), 2);
    stack.stop().await;
}

/// Scores until `want` version answers, failing on any error.
async fn wait_for_version(stack: &Stack, want: &str) {
    let mut client = stack.scorer().await;
    let mut request = seed_score_request();
    request.models = vec!["ratio".into()];
    for _ in 0..400 {
        let response = client.score(request.clone()).await.unwrap().into_inner();
        if response.results[0].version == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("version {want} never served");
}

#[tokio::test]
async fn versions_roll_forward_and_back_under_traffic_without_failures() {
    let repo = tempfile::tempdir().unwrap();
    write_logistic(repo.path(), "ratio", "1", -5.0, &[], 0.5, hash());
    let stack = Arc::new(Stack::start(repo.path()).await);

    // Background traffic: 4 callers scoring continuously until told to stop.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut callers = Vec::new();
    for _ in 0..4 {
        let mut client = stack.scorer().await;
        let stopped = stopped.clone();
        callers.push(tokio::spawn(async move {
            let (mut ok, mut versions) = (0usize, std::collections::BTreeSet::new());
            while !*stopped.borrow() {
                let response = client
                    .score(seed_score_request())
                    .await
                    .expect("no request fails during a roll");
                versions.insert(response.into_inner().results[0].version.clone());
                ok += 1;
            }
            (ok, versions)
        }));
    }

    // Forward: drop in version 2.
    write_logistic(repo.path(), "ratio", "2", 5.0, &[], 0.5, hash());
    wait_for_version(&stack, "2").await;
    // Back: pin version 1.
    std::fs::write(repo.path().join("ratio/serving.toml"), "version = \"1\"\n").unwrap();
    wait_for_version(&stack, "1").await;
    // Forward again by unpinning.
    std::fs::write(
        repo.path().join("ratio/serving.toml"),
        "version = \"latest\"\n",
    )
    .unwrap();
    wait_for_version(&stack, "2").await;

    let _ = stop.send(true);
    let mut seen = std::collections::BTreeSet::new();
    for caller in callers {
        let (ok, versions) = caller.await.unwrap();
        assert!(ok > 0);
        seen.extend(versions);
    }
    assert!(seen.contains("1") && seen.contains("2"), "{seen:?}");
    Arc::into_inner(stack).unwrap().stop().await;
}

#[tokio::test]
async fn a_broken_model_file_keeps_the_previous_version_serving() {
    let repo = tempfile::tempdir().unwrap();
    let v1 = write_logistic(repo.path(), "ratio", "1", -5.0, &[], 0.5, hash());
    let stack = Stack::start(repo.path()).await;
    // A new version that does not parse never serves.
    let v2 = repo.path().join("ratio/2");
    std::fs::create_dir_all(&v2).unwrap();
    std::fs::copy(v1.join("model.toml"), v2.join("model.toml")).unwrap();
    std::fs::write(v2.join("model.json"), "{ not json").unwrap();
    // Corrupting the serving version keeps its previous load.
    std::fs::write(v1.join("model.json"), "{ also not json").unwrap();
    // Wait for the repository to notice (it logs and keeps version 1).
    let repository =
        triad_score::Repository::open(repo.path(), FeatureSchema::current(), Default::default())
            .unwrap();
    assert!(
        repository.snapshot().models.is_empty(),
        "the files really are broken"
    );
    for _ in 0..20 {
        let models = stack
            .scorer()
            .await
            .list_models(v1::ListModelsRequest {})
            .await
            .unwrap()
            .into_inner()
            .models;
        assert_eq!(models[0].serving_version, "1");
        assert_eq!(models[0].versions, ["1"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = stack
        .scorer()
        .await
        .score(seed_score_request())
        .await
        .unwrap();
    assert_eq!(response.into_inner().results[0].version, "1");
    stack.stop().await;
}

#[tokio::test]
async fn shadow_versions_score_but_are_never_returned() {
    let repo = tempfile::tempdir().unwrap();
    write_logistic(repo.path(), "ratio", "1", -5.0, &[], 0.5, hash());
    write_logistic(repo.path(), "ratio", "2", 5.0, &[], 0.5, hash());
    std::fs::write(
        repo.path().join("ratio/serving.toml"),
        "version = \"1\"\nshadow = \"2\"\n",
    )
    .unwrap();
    let stack = Stack::start(repo.path()).await;
    let models = stack
        .scorer()
        .await
        .list_models(v1::ListModelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(models[0].serving_version, "1");
    assert_eq!(models[0].shadow_version, "2");
    let response = stack
        .scorer()
        .await
        .score(seed_score_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.results.len(), 1);
    assert_eq!(response.results[0].version, "1");
    stack.stop().await;
}

#[tokio::test]
async fn bad_items_get_errors_inside_a_200_while_good_items_score() {
    let stack = Stack::start(&shipped_models()).await;
    let mut request: serde_json::Value = serde_json::from_str(SEED_REQUEST).unwrap();
    let items = request["all_user_expense_lineitems"]
        .as_array_mut()
        .unwrap();
    let mut no_id = items[0].clone();
    no_id["itemization_id"] = serde_json::Value::Null;
    let mut bad_amount = items[0].clone();
    bad_amount["itemization_id"] = "42".into();
    bad_amount["expensed_amount_itemization"] = "twelve dollars".into();
    items.push(no_id);
    items.push(bad_amount);
    items.push(serde_json::json!("not an item"));
    let (status, body) = post(
        stack.http_addr,
        "/budget_expense_matcher/?verbose=true",
        &request.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let scored: Vec<_> = entries
        .iter()
        .filter(|e| e.get("score").is_some())
        .map(|e| e["itemization_id"].as_str().unwrap())
        .collect();
    assert_eq!(scored, ["4659496", "42"]);
    assert!(entries[0]["probability"].as_f64().unwrap() < 0.5);
    assert_eq!(entries[0]["model"], "budget_expense_matcher");
    let errors: Vec<_> = entries
        .iter()
        .filter_map(|e| e.get("error"))
        .map(|e| (e["code"].as_str().unwrap(), e["index"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            ("MALFORMED_ITEM", 3),
            ("MISSING_ID", 1),
            ("INVALID_VALUE", 2)
        ]
    );
    stack.stop().await;
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_message() {
    let stack = Stack::start(&shipped_models()).await;
    let (status, body) = post(
        stack.http_addr,
        "/budget_expense_matcher/",
        "{\"budgets\": [",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("request is not valid JSON"), "{body}");
    let (status, body) = post(stack.http_addr, "/budget_expense_matcher", "[]").await;
    assert_eq!(status, 400);
    assert!(body.contains("expected a JSON object"), "{body}");
    stack.stop().await;
}

#[tokio::test]
async fn an_unreachable_preprocess_is_unavailable_not_a_hang() {
    let repo = two_model_repo();
    let stack = Stack::start_with(repo.path(), |config| {
        config.preprocess = "http://127.0.0.1:1".into();
        config.preprocess_timeout = Duration::from_millis(500);
    })
    .await;
    let started = std::time::Instant::now();
    let status = stack
        .scorer()
        .await
        .score(seed_score_request())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    // The log names the endpoint; the caller never learns it.
    assert!(
        status
            .message()
            .starts_with("the feature service is unavailable"),
        "{status}"
    );
    assert!(!status.message().contains("127.0.0.1"), "{status}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (status, _) = post(stack.http_addr, "/budget_expense_matcher/", SEED_REQUEST).await;
    assert_eq!(status, 404, "the temp repo has no budget_expense_matcher");
    stack.stop().await;
}
