//! Explanations (`?verbose=true`, `explain`) and gated models (`gate` in a
//! model's `serving.toml`) end to end, on the shipped models and on small
//! synthetic repositories.

use std::collections::BTreeMap;

use triad_features::FeatureSchema;
use triad_proto::v1;
use triad_score::repository::Repository;
use triad_test_support::{SEED_REQUEST, post, seed_score_request, shipped_models};

use crate::support::{Stack, write_logistic};

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Checks that `explanation` sums to its logit and that the logit gives
/// `score`, within f32 rounding.
fn assert_sums(explanation: &v1::Explanation, score: f32) {
    let sum = f64::from(explanation.intercept)
        + explanation
            .contributions
            .iter()
            .map(|c| f64::from(*c))
            .sum::<f64>();
    let logit = f64::from(explanation.logit);
    assert!(
        (sum - logit).abs() <= 1e-4 * logit.abs().max(1.0),
        "{sum} vs {logit}"
    );
    assert!(
        (sigmoid(logit) - f64::from(score)).abs() < 1e-5,
        "{logit} {score}"
    );
}

#[tokio::test]
async fn verbose_http_answers_explain_the_seed_pair_and_the_default_is_unchanged() {
    let stack = Stack::start(&shipped_models()).await;
    let (status, body) = post(
        stack.http_addr,
        "/budget_expense_matcher/?verbose=true",
        SEED_REQUEST,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let entry = &entries[0];
    let explanation = &entry["explanation"];
    let contributions = explanation["contributions"].as_object().unwrap();
    let features = &FeatureSchema::current().feature_names;
    assert_eq!(contributions.len(), features.len(), "{explanation}");
    let names: Vec<&String> = contributions.keys().collect();
    assert!(names.iter().all(|n| features.contains(n)));
    let sum = explanation["intercept"].as_f64().unwrap()
        + contributions
            .values()
            .map(|v| v.as_f64().unwrap())
            .sum::<f64>();
    let logit = explanation["logit"].as_f64().unwrap();
    assert!(
        (sum - logit).abs() < 1e-4 * logit.abs().max(1.0),
        "{sum} vs {logit}"
    );
    let probability = entry["probability"].as_f64().unwrap();
    assert!((sigmoid(logit) - probability).abs() < 1e-5);
    assert!(entry.get("explanation_unavailable").is_none());
    // `verbose` takes true or false only.
    let (status, _) = post(
        stack.http_addr,
        "/budget_expense_matcher/?verbose=yes-please",
        SEED_REQUEST,
    )
    .await;
    assert_eq!(status, 400);
    stack.stop().await;
}

#[tokio::test]
async fn the_seed_pair_is_not_scored_by_out_of_policy_and_onnx_says_it_cannot_explain() {
    let stack = Stack::start(&shipped_models()).await;
    let mut scorer = stack.scorer().await;
    let listed = scorer
        .list_models(v1::ListModelsRequest {})
        .await
        .unwrap()
        .into_inner();
    let gates: BTreeMap<&str, &str> = listed
        .models
        .iter()
        .map(|m| (m.name.as_str(), m.gate.as_str()))
        .collect();
    assert_eq!(gates["out_of_policy"], "budget_expense_matcher");
    assert_eq!(gates["budget_expense_matcher"], "");

    let mut request = seed_score_request();
    request.explain = true;
    let response = scorer.score(request).await.unwrap().into_inner();
    let names: Vec<&str> = response.results.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(names, ["budget_expense_matcher", "out_of_policy"]);
    let matcher = &response.results[0];
    assert!(matcher.scored.is_empty() && matcher.gate.is_empty());
    assert_eq!(matcher.matched, [false]);
    assert_eq!(matcher.explanations.len(), 1);
    assert_eq!(
        matcher.explained_features,
        FeatureSchema::current().feature_names
    );
    assert_sums(&matcher.explanations[0], matcher.scores[0]);
    // The taxi-vs-flight pair does not match, so out_of_policy did not
    // score it: no score (NaN), not a 0.89 and not a 0.
    let oop = &response.results[1];
    assert_eq!(oop.gate, "budget_expense_matcher");
    assert_eq!(oop.scored, [false]);
    assert_eq!(oop.matched, [false]);
    assert!(oop.scores[0].is_nan(), "{oop:?}");
    // ONNX: said plainly, no explanation, never zeros.
    assert!(oop.explanations.is_empty());
    assert!(
        oop.explanation_unavailable
            .contains("no explanation is available")
    );

    // Naming only the gated model runs its gate too, answered after it.
    let mut request = seed_score_request();
    request.models = vec!["out_of_policy".into()];
    let response = scorer.score(request).await.unwrap().into_inner();
    let names: Vec<&str> = response.results.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(names, ["out_of_policy", "budget_expense_matcher"]);
    assert_eq!(response.results[0].scored, [false]);
    // Without `explain`, no explanation travels.
    assert!(
        response
            .results
            .iter()
            .all(|r| r.explanations.is_empty() && r.explanation_unavailable.is_empty())
    );
    stack.stop().await;
}

/// `gate` matches a pair when the amount ratio is over 0.5; `judge` is
/// gated on it.
fn gated_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let hash = &FeatureSchema::current().hash;
    write_logistic(
        dir.path(),
        "gate",
        "1",
        -5.0,
        &[("amount_ratio_actual_cost", 10.0)],
        0.5,
        hash,
    );
    write_logistic(
        dir.path(),
        "judge",
        "1",
        0.5,
        &[("in_trip_window", 1.0)],
        0.5,
        hash,
    );
    std::fs::write(dir.path().join("judge/serving.toml"), "gate = \"gate\"\n").unwrap();
    dir
}

#[tokio::test]
async fn a_gated_model_scores_exactly_the_rows_its_gate_matched() {
    let repo = gated_repo();
    let stack = Stack::start(repo.path()).await;
    let schema = FeatureSchema::current();
    let ratio = schema.index_of("amount_ratio_actual_cost").unwrap();
    let n_cols = schema.feature_names.len();
    // Rows with ratios 0.1, 0.9, NaN (imputed 0: no match), 0.7.
    let ratios = [0.1_f32, 0.9, f32::NAN, 0.7];
    let mut values = vec![0.0_f32; ratios.len() * n_cols];
    for (row, r) in ratios.iter().enumerate() {
        values[row * n_cols + ratio] = *r;
    }
    let matrix = v1::FeatureMatrix {
        schema: Some(v1::FeatureSchema {
            name: schema.name.clone(),
            version: schema.version.clone(),
            hash: schema.hash.clone(),
            feature_names: schema.feature_names.clone(),
        }),
        n_rows: ratios.len() as u32,
        n_cols: n_cols as u32,
        values,
        keys: (0..ratios.len())
            .map(|i| v1::PairKey {
                budget_id: format!("b{i}"),
                itemization_id: format!("i{i}"),
            })
            .collect(),
        ..v1::FeatureMatrix::default()
    };
    let response = stack
        .scorer()
        .await
        .score_matrix(v1::ScoreMatrixRequest {
            matrix: Some(matrix),
            models: vec!["judge".into()],
            explain: true,
            ..v1::ScoreMatrixRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let judge = &response.results[0];
    let gate = &response.results[1];
    assert_eq!(gate.model, "gate");
    assert_eq!(gate.matched, [false, true, false, true]);
    assert_eq!(judge.scored, gate.matched);
    for row in 0..ratios.len() {
        if judge.scored[row] {
            assert!((f64::from(judge.scores[row]) - sigmoid(0.5)).abs() < 1e-6);
            assert_sums(&judge.explanations[row], judge.scores[row]);
        } else {
            assert!(judge.scores[row].is_nan() && !judge.matched[row]);
            assert!(judge.explanations[row].contributions.is_empty());
        }
    }
    for row in 0..ratios.len() {
        assert_sums(&gate.explanations[row], gate.scores[row]);
    }
    stack.stop().await;
}

fn open(root: &std::path::Path) -> Repository {
    Repository::open(root, FeatureSchema::current(), BTreeMap::new()).unwrap()
}

#[test]
fn gates_are_checked_at_load_and_a_reload_that_breaks_one_is_refused() {
    let repo = gated_repo();
    let repository = open(repo.path());
    let gate_of =
        |r: &Repository, name: &str| r.snapshot().models.get(name).map(|m| m.gate.clone());
    assert_eq!(gate_of(&repository, "judge"), Some(Some("gate".to_owned())));

    // A reload naming a model that is not served keeps the previous gate.
    let policy = repo.path().join("judge/serving.toml");
    std::fs::write(&policy, "gate = \"nowhere\"\n").unwrap();
    repository.reload().unwrap();
    assert_eq!(gate_of(&repository, "judge"), Some(Some("gate".to_owned())));
    // So does a gate on itself, and a chain.
    std::fs::write(&policy, "gate = \"judge\"\n").unwrap();
    repository.reload().unwrap();
    assert_eq!(gate_of(&repository, "judge"), Some(Some("gate".to_owned())));

    // Opened fresh with a bad gate, the model does not serve (never
    // ungated); the others do.
    std::fs::write(&policy, "gate = \"nowhere\"\n").unwrap();
    let fresh = open(repo.path());
    assert_eq!(gate_of(&fresh, "judge"), None);
    assert_eq!(gate_of(&fresh, "gate"), Some(None));

    // A cycle: neither gated model serves.
    std::fs::write(&policy, "gate = \"gate\"\n").unwrap();
    std::fs::write(repo.path().join("gate/serving.toml"), "gate = \"judge\"\n").unwrap();
    let cycle = open(repo.path());
    assert!(
        cycle.snapshot().models.is_empty(),
        "{:?}",
        cycle.snapshot().models.keys()
    );
}

#[test]
fn serving_only_a_gated_model_serves_its_gate_too() {
    let repo = gated_repo();
    let repository = Repository::open_filtered(
        repo.path(),
        FeatureSchema::current(),
        BTreeMap::new(),
        vec!["judge".to_owned()],
    )
    .unwrap();
    let names: Vec<String> = repository.snapshot().models.keys().cloned().collect();
    assert_eq!(names, ["gate", "judge"]);
}

#[tokio::test]
async fn outcomes_carry_explanations_and_mark_the_rows_not_scored() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let monitor_url = format!("http://{}", listener.local_addr().unwrap());
    let monitor = crate::support::FakeMonitor::default();
    let (stop_monitor, stopped) = tokio::sync::oneshot::channel::<()>();
    let monitor_task = crate::support::serve_fake_monitor(listener, monitor.clone(), async {
        let _ = stopped.await;
    });
    let stack = Stack::start_with(&shipped_models(), |config| {
        config.monitor = Some(monitor_url)
    })
    .await;
    // Not asked to explain: the outcomes are explained all the same.
    let response = stack
        .scorer()
        .await
        .score(seed_score_request())
        .await
        .unwrap()
        .into_inner();
    assert!(response.results.iter().all(|r| r.explanations.is_empty()));
    let mut outcomes = Vec::new();
    for _ in 0..500 {
        outcomes = monitor.outcomes.lock().await.clone();
        if outcomes.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(outcomes.len(), 2, "every answered pair, once per model");
    outcomes.sort_by(|a, b| a.model.cmp(&b.model));
    let matcher = &outcomes[0];
    assert_eq!(matcher.model, "budget_expense_matcher");
    assert!(!matcher.not_scored);
    let explanation = matcher.explanation.as_ref().unwrap();
    // Schema order, like the features.
    assert_eq!(
        explanation.contributions.len(),
        FeatureSchema::current().feature_names.len()
    );
    assert_sums(explanation, matcher.score);
    let oop = &outcomes[1];
    assert_eq!(oop.model, "out_of_policy");
    assert!(
        oop.not_scored && !oop.matched && oop.score == 0.0,
        "{oop:?}"
    );
    assert!(oop.explanation.is_none());
    stack.stop().await;
    let _ = stop_monitor.send(());
    monitor_task.await.unwrap();
}

#[tokio::test]
async fn the_http_contract_of_a_gated_model_says_not_scored_never_a_score() {
    let repo = gated_repo();
    let stack = Stack::start_with(repo.path(), |config| config.http_model = "judge".into()).await;
    // The seed pair: amount ratio 24 / 131.98, below the gate's 0.5.
    let (status, body) = post(
        stack.http_addr,
        "/budget_expense_matcher/?verbose=true",
        SEED_REQUEST,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entries: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        entries,
        serde_json::json!([{
            "score": null,
            "scored": false,
            "gate": "gate",
            "budget_id": "309366",
            "itemization_id": "4659496",
        }])
    );
    stack.stop().await;
}

#[tokio::test]
async fn explanations_count_in_the_request_size_limit() {
    let request = seed_score_request();
    let featurize = triad_proto::v1::FeaturizeRequest {
        budgets: request.budgets.clone(),
        all_user_expense_lineitems: request.all_user_expense_lineitems.clone(),
    };
    let n = FeatureSchema::current().feature_names.len();
    let without = triad_score::engine::estimated_bytes(&featurize, n, 1, 0, 0);
    let with = triad_score::engine::estimated_bytes(&featurize, n, 1, 0, n);
    assert!(with > without);
    let limit = ((without + with) / 2) as usize;
    let stack =
        Stack::start_with(&shipped_models(), |config| config.max_request_bytes = limit).await;
    let mut scorer = stack.scorer().await;
    let mut plain = request.clone();
    plain.models = vec!["budget_expense_matcher".into()];
    scorer.score(plain.clone()).await.unwrap();
    let status = scorer
        .score(v1::ScoreRequest {
            explain: true,
            ..plain
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let (status, _) = post(stack.http_addr, "/budget_expense_matcher/", SEED_REQUEST).await;
    assert_eq!(status, 200);
    let (status, body) = post(
        stack.http_addr,
        "/budget_expense_matcher/?verbose=true",
        SEED_REQUEST,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    stack.stop().await;
}

#[tokio::test]
async fn a_pair_whose_explanation_is_not_finite_is_answered_and_recorded_without_one() {
    let repo = tempfile::tempdir().unwrap();
    let schema = FeatureSchema::current();
    write_logistic(
        repo.path(),
        "m",
        "1",
        0.0,
        &[("amount_ratio_actual_cost", 10.0)],
        0.5,
        &schema.hash,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let monitor_url = format!("http://{}", listener.local_addr().unwrap());
    let monitor = crate::support::FakeMonitor::default();
    let (stop_monitor, stopped) = tokio::sync::oneshot::channel::<()>();
    let monitor_task = crate::support::serve_fake_monitor(listener, monitor.clone(), async {
        let _ = stopped.await;
    });
    let stack = Stack::start_with(repo.path(), |config| config.monitor = Some(monitor_url)).await;
    let ratio = schema.index_of("amount_ratio_actual_cost").unwrap();
    let n_cols = schema.feature_names.len();
    // A finite row, an infinite input, and one whose contribution
    // 10 · 3e38 overflows f32.
    let ratios = [0.5_f32, f32::INFINITY, 3e38];
    let mut values = vec![0.0_f32; ratios.len() * n_cols];
    for (row, r) in ratios.iter().enumerate() {
        values[row * n_cols + ratio] = *r;
    }
    let matrix = v1::FeatureMatrix {
        schema: Some(v1::FeatureSchema {
            name: schema.name.clone(),
            version: schema.version.clone(),
            hash: schema.hash.clone(),
            feature_names: schema.feature_names.clone(),
        }),
        n_rows: ratios.len() as u32,
        n_cols: n_cols as u32,
        values,
        keys: (0..ratios.len())
            .map(|i| v1::PairKey {
                budget_id: format!("b{i}"),
                itemization_id: format!("i{i}"),
            })
            .collect(),
        ..v1::FeatureMatrix::default()
    };
    let response = stack
        .scorer()
        .await
        .score_matrix(v1::ScoreMatrixRequest {
            matrix: Some(matrix),
            explain: true,
            ..v1::ScoreMatrixRequest::default()
        })
        .await
        .expect("every row is answered")
        .into_inner();
    let m = &response.results[0];
    assert_eq!(m.matched, [true, true, true]);
    assert_sums(&m.explanations[0], m.scores[0]);
    // No inf or NaN in the answer: an empty explanation instead.
    for row in 1..ratios.len() {
        assert_eq!(m.explanations[row], v1::Explanation::default(), "row {row}");
    }

    let mut outcomes = Vec::new();
    for _ in 0..500 {
        outcomes = monitor.outcomes.lock().await.clone();
        if outcomes.len() >= ratios.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        outcomes.len(),
        ratios.len(),
        "every answered pair is recorded"
    );
    outcomes.sort_by(|a, b| a.budget_id.cmp(&b.budget_id));
    assert!(outcomes[0].explanation.is_some());
    for outcome in &outcomes[1..] {
        assert!(outcome.score.is_finite(), "{outcome:?}");
        assert_eq!(outcome.explanation, None, "{outcome:?}");
    }
    stack.stop().await;
    let _ = stop_monitor.send(());
    monitor_task.await.unwrap();
}
