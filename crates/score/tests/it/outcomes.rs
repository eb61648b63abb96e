//! Outcomes reach the monitor off the request path: every scored pair (and
//! every shadow score) arrives with its inputs and features; a monitor that
//! is down never fails or slows a `Score` call, and what was buffered while
//! it was down arrives once it is up.

use std::time::Duration;

use triad_features::FeatureSchema;
use triad_test_support::seed_score_request;

use crate::support::{FakeMonitor, Stack, serve_fake_monitor, write_logistic};

fn hash() -> &'static str {
    &FeatureSchema::current().hash
}

/// Waits until the fake monitor holds `n` outcomes.
async fn wait_for_outcomes(monitor: &FakeMonitor, n: usize) -> Vec<triad_proto::v1::Outcome> {
    for _ in 0..500 {
        let outcomes = monitor.outcomes.lock().await.clone();
        if outcomes.len() >= n {
            return outcomes;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the monitor never received {n} outcomes");
}

#[tokio::test]
async fn every_outcome_reaches_the_monitor_with_its_inputs() {
    let repo = tempfile::tempdir().unwrap();
    write_logistic(
        repo.path(),
        "ratio",
        "1",
        0.0,
        &[("amount_ratio_actual_cost", 1.0)],
        0.5,
        hash(),
    );
    write_logistic(repo.path(), "ratio", "2", -9.0, &[], 0.5, hash());
    std::fs::write(
        repo.path().join("ratio/serving.toml"),
        "version = \"1\"\nshadow = \"2\"\n",
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let monitor_url = format!("http://{}", listener.local_addr().unwrap());
    let monitor = FakeMonitor::default();
    let (stop_monitor, stopped) = tokio::sync::oneshot::channel::<()>();
    let monitor_task = serve_fake_monitor(listener, monitor.clone(), async {
        let _ = stopped.await;
    });
    let stack = Stack::start_with(repo.path(), |config| config.monitor = Some(monitor_url)).await;

    let mut request = tonic::Request::new(seed_score_request());
    request
        .metadata_mut()
        .insert("x-request-id", "req-1".parse().unwrap());
    let response = stack
        .scorer()
        .await
        .score(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.results.len(), 1, "the shadow is not returned");

    let mut outcomes = wait_for_outcomes(&monitor, 2).await;
    outcomes.sort_by_key(|o| o.shadow);
    let served = &outcomes[0];
    // The scorer's own request id names the outcomes; the caller's is kept
    // beside it.
    assert_eq!(
        served.outcome_id,
        format!("{}/ratio/1/0", response.request_id)
    );
    assert_eq!(served.request_id, response.request_id);
    assert_eq!(served.correlation_id, "req-1");
    assert_eq!(response.correlation_id, "req-1");
    assert_eq!(
        (served.model.as_str(), served.version.as_str()),
        ("ratio", "1")
    );
    assert!(!served.shadow);
    assert_eq!(served.schema_hash, hash());
    assert_eq!(served.score, response.results[0].scores[0]);
    assert_eq!(served.matched, response.results[0].matched[0]);
    assert_eq!(served.features.len(), 35);
    let budget = served.budget.as_ref().unwrap();
    assert_eq!(
        budget.travel_vendor_receipts.as_deref(),
        Some("Southwest Airlines")
    );
    let item = served.line_item.as_ref().unwrap();
    assert_eq!(item.vendor_name_expense.as_deref(), Some("taxi"));
    assert!(served.scored_at_ms > 1_700_000_000_000);
    let shadow = &outcomes[1];
    assert!(shadow.shadow);
    assert_eq!(shadow.version, "2");
    assert_eq!(
        shadow.outcome_id,
        format!("{}/ratio/2/0", response.request_id)
    );

    stack.stop().await;
    let _ = stop_monitor.send(());
    monitor_task.await.unwrap();
}

#[tokio::test]
async fn a_monitor_that_is_down_neither_fails_scoring_nor_loses_outcomes() {
    let repo = tempfile::tempdir().unwrap();
    write_logistic(repo.path(), "ratio", "1", 0.0, &[], 0.5, hash());
    // Reserve a port for the monitor, but start it only later.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let stack = Stack::start_with(repo.path(), |config| {
        config.monitor = Some(format!("http://{addr}"));
    })
    .await;
    let mut client = stack.scorer().await;
    for _ in 0..20 {
        client
            .score(seed_score_request())
            .await
            .expect("scoring does not depend on the monitor");
    }
    let monitor = FakeMonitor::default();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (stop_monitor, stopped) = tokio::sync::oneshot::channel::<()>();
    let monitor_task = serve_fake_monitor(listener, monitor.clone(), async {
        let _ = stopped.await;
    });
    let outcomes = wait_for_outcomes(&monitor, 20).await;
    let mut ids: Vec<_> = outcomes.iter().map(|o| o.outcome_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "20 distinct requests, 20 distinct outcomes");
    stack.stop().await;
    let _ = stop_monitor.send(());
    monitor_task.await.unwrap();
}

#[tokio::test]
async fn per_item_errors_reach_the_monitor_with_their_request() {
    let repo = tempfile::tempdir().unwrap();
    write_logistic(repo.path(), "ratio", "1", 0.0, &[], 0.5, hash());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let monitor_url = format!("http://{}", listener.local_addr().unwrap());
    let monitor = FakeMonitor::default();
    let (stop_monitor, stopped) = tokio::sync::oneshot::channel::<()>();
    let monitor_task = serve_fake_monitor(listener, monitor.clone(), async {
        let _ = stopped.await;
    });
    let stack = Stack::start_with(repo.path(), |config| config.monitor = Some(monitor_url)).await;

    let mut request = seed_score_request();
    let mut bad = request.all_user_expense_lineitems[0].clone();
    bad.itemization_id = None;
    request.all_user_expense_lineitems.push(bad);
    let mut call = tonic::Request::new(request);
    call.metadata_mut()
        .insert("x-request-id", "req-err".parse().unwrap());
    let response = stack.scorer().await.score(call).await.unwrap().into_inner();

    wait_for_outcomes(&monitor, 1).await;
    let mut errors = Vec::new();
    for _ in 0..500 {
        errors = monitor.errors.lock().await.clone();
        if !errors.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(errors.len(), 1, "one item error, sent once");
    let (request_id, error) = &errors[0];
    // Filed under the scorer's own id of the request, not the caller's.
    assert_eq!(request_id, &response.request_id);
    assert_eq!(response.correlation_id, "req-err");
    assert_eq!(error.item_kind, "expense_line_item");
    assert_eq!(error.index, 1);
    assert!(error.dropped);

    stack.stop().await;
    let _ = stop_monitor.send(());
    monitor_task.await.unwrap();
}

// ---- Hostile callers (issue 11) ------------------------------------------

/// A scorer serving one model, `m`, sending outcomes to a fake monitor that
/// refuses messages over `max_message_bytes`.
async fn stack_with_monitor(
    repo: &std::path::Path,
    max_message_bytes: usize,
) -> (
    Stack,
    FakeMonitor,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    write_logistic(
        repo,
        "m",
        "1",
        0.0,
        &[("amount_ratio_actual_cost", 1.0)],
        0.5,
        hash(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let monitor_url = format!("http://{}", listener.local_addr().unwrap());
    let monitor = FakeMonitor::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = crate::support::serve_fake_monitor_with_limit(
        listener,
        monitor.clone(),
        max_message_bytes,
        async {
            let _ = stopped.await;
        },
    );
    let stack = Stack::start_with(repo, |config| config.monitor = Some(monitor_url)).await;
    (stack, monitor, stop, task)
}

fn budget(id: &str) -> triad_proto::v1::Budget {
    triad_proto::v1::Budget {
        budget_id: Some(id.to_owned()),
        budget_price_budget: Some("100".to_owned()),
        ..Default::default()
    }
}

fn item(id: &str) -> triad_proto::v1::ExpenseLineItem {
    triad_proto::v1::ExpenseLineItem {
        itemization_id: Some(id.to_owned()),
        expensed_amount_itemization: Some("10".to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_reused_request_id_or_a_slash_in_an_id_never_merges_two_outcomes() {
    let repo = tempfile::tempdir().unwrap();
    let (stack, monitor, stop, task) = stack_with_monitor(repo.path(), 64 << 20).await;
    let mut client = stack.scorer().await;
    let mut request_ids = Vec::new();
    // Two different requests under one caller id.
    for items in [vec![item("x")], vec![item("y")]] {
        let mut call = tonic::Request::new(triad_proto::v1::ScoreRequest {
            budgets: vec![budget("b")],
            all_user_expense_lineitems: items,
            ..Default::default()
        });
        call.metadata_mut()
            .insert("x-request-id", "same-id".parse().unwrap());
        let response = client.score(call).await.unwrap().into_inner();
        assert_eq!(response.correlation_id, "same-id");
        assert_ne!(response.request_id, "same-id");
        request_ids.push(response.request_id);
    }
    assert_ne!(request_ids[0], request_ids[1]);
    // Budgets `a` and `a/b`, items `b/c` and `c`: four pairs.
    let response = client
        .score(triad_proto::v1::ScoreRequest {
            budgets: vec![budget("a"), budget("a/b")],
            all_user_expense_lineitems: vec![item("b/c"), item("c")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.keys.len(), 4);

    let outcomes = wait_for_outcomes(&monitor, 6).await;
    let ids: std::collections::HashSet<&str> =
        outcomes.iter().map(|o| o.outcome_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        6,
        "six pairs answered, six distinct outcomes: {ids:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o.correlation_id == "same-id")
            .count(),
        2
    );
    stack.stop().await;
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn a_hostile_request_never_costs_a_neighbour_its_outcomes() {
    // A monitor whose message limit is 256 KiB (calls over it are refused
    // whole, OUT_OF_RANGE), a request with a 100 kB vendor name on one
    // budget and 700 line items, and a normal request just after: every
    // outcome of both arrives, the long field cut.
    let repo = tempfile::tempdir().unwrap();
    let (stack, monitor, stop, task) = stack_with_monitor(repo.path(), 256 << 10).await;
    let mut client = stack.scorer().await;
    let mut hostile = budget("long");
    hostile.travel_vendor_receipts = Some("Southwest ".repeat(10_000));
    let items: Vec<_> = (0..700).map(|i| item(&format!("i{i}"))).collect();
    client
        .score(triad_proto::v1::ScoreRequest {
            budgets: vec![hostile],
            all_user_expense_lineitems: items,
            ..Default::default()
        })
        .await
        .unwrap();
    client.score(seed_score_request()).await.unwrap();

    let outcomes = wait_for_outcomes(&monitor, 701).await;
    assert_eq!(outcomes.len(), 701);
    let travel = outcomes
        .iter()
        .find(|o| o.budget_id == "long")
        .and_then(|o| o.budget.as_ref())
        .and_then(|b| b.travel_vendor_receipts.clone())
        .unwrap();
    assert!(travel.len() < 600, "{} bytes kept", travel.len());
    assert!(travel.ends_with("…[cut from 100000 bytes]"), "{travel}");
    assert!(
        outcomes.iter().any(|o| o.budget_id == "309366"),
        "the neighbour's outcome"
    );
    stack.stop().await;
    let _ = stop.send(());
    task.await.unwrap();
}
