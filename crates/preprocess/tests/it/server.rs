//! The preprocess service end to end: a real server on an ephemeral
//! loopback port, called through the generated gRPC client.

use std::time::Duration;

use tonic::Code;
use triad_features::{FEATURE_NAMES, FeatureSchema};
use triad_preprocess::PreprocessConfig;
use triad_proto::v1::{self, FeaturizeRequest};
use triad_test_support::seed_featurize_request;

use crate::support::TestServer;

#[tokio::test]
async fn seed_request_gives_one_named_row() {
    let server = TestServer::start(PreprocessConfig::default()).await;
    let mut request = tonic::Request::new(seed_featurize_request());
    request
        .metadata_mut()
        .insert("x-request-id", "seed-1".parse().unwrap());
    let matrix = server
        .client()
        .await
        .featurize(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(matrix.n_rows, 1);
    assert_eq!(matrix.n_cols as usize, FEATURE_NAMES.len());
    assert_eq!(matrix.values.len(), FEATURE_NAMES.len());
    assert_eq!(matrix.request_id, "seed-1");
    let schema = matrix.schema.unwrap();
    assert_eq!(schema.hash, FeatureSchema::current().hash);
    assert_eq!(schema.feature_names, FEATURE_NAMES);
    assert_eq!(
        matrix.keys,
        [v1::PairKey {
            budget_id: "309366".into(),
            itemization_id: "4659496".into()
        }]
    );
    let ratio = schema
        .feature_names
        .iter()
        .position(|n| n == "amount_ratio_actual_cost")
        .unwrap();
    assert!((f64::from(matrix.values[ratio]) - 24.0 / 131.98).abs() < 1e-6);
    assert!(matrix.errors.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn bad_items_are_reported_and_good_pairs_still_come_back() {
    let server = TestServer::start(PreprocessConfig::default()).await;
    let mut request = seed_featurize_request();
    request.budgets.push(v1::Budget {
        budget_id: None,
        ..request.budgets[0].clone()
    });
    request
        .all_user_expense_lineitems
        .push(v1::ExpenseLineItem {
            itemization_id: Some("77".into()),
            expensed_amount_itemization: Some("twelve".into()),
            ..request.all_user_expense_lineitems[0].clone()
        });
    let matrix = server
        .client()
        .await
        .featurize(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(matrix.n_rows, 2);
    let ids: Vec<_> = matrix
        .keys
        .iter()
        .map(|k| (k.budget_id.as_str(), k.itemization_id.as_str()))
        .collect();
    assert_eq!(ids, [("309366", "4659496"), ("309366", "77")]);
    assert_eq!(matrix.errors.len(), 2);
    let missing = &matrix.errors[0];
    assert_eq!(missing.code(), v1::ItemErrorCode::MissingId);
    assert_eq!(missing.item_kind, "budget");
    assert_eq!(missing.index, 1);
    assert!(missing.dropped);
    let invalid = &matrix.errors[1];
    assert_eq!(invalid.code(), v1::ItemErrorCode::InvalidValue);
    assert_eq!(invalid.itemization_id, "77");
    assert_eq!(invalid.field, "expensed_amount_itemization");
    assert!(!invalid.dropped);
    server.stop().await;
}

#[tokio::test]
async fn too_many_pairs_is_invalid_argument_naming_limit_and_count() {
    let config = PreprocessConfig {
        max_pairs: 3,
        ..PreprocessConfig::default()
    };
    let server = TestServer::start(config).await;
    let mut request = seed_featurize_request();
    request.budgets = vec![request.budgets[0].clone(); 2];
    request.all_user_expense_lineitems = vec![request.all_user_expense_lineitems[0].clone(); 2];
    let status = server.client().await.featurize(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "request has 2 budgets x 2 line items = 4 pairs, more than the limit of 3 pairs per call; send larger batches with FeaturizeStream"
    );
    server.stop().await;
}

#[tokio::test]
async fn stream_accumulates_chunks_and_returns_rows_in_chunks() {
    let config = PreprocessConfig {
        rows_per_chunk: 4,
        ..PreprocessConfig::default()
    };
    let server = TestServer::start(config).await;
    let seed = seed_featurize_request();
    let budget = |id: usize| v1::Budget {
        budget_id: Some(format!("b{id}")),
        ..seed.budgets[0].clone()
    };
    let item = |id: usize| v1::ExpenseLineItem {
        itemization_id: Some(format!("i{id}")),
        ..seed.all_user_expense_lineitems[0].clone()
    };
    // Three input chunks: budgets only, both, items only; 3 x 3 = 9 rows.
    let chunks = vec![
        FeaturizeRequest {
            budgets: vec![budget(0), budget(1)],
            all_user_expense_lineitems: vec![],
        },
        FeaturizeRequest {
            budgets: vec![budget(2)],
            all_user_expense_lineitems: vec![item(0)],
        },
        FeaturizeRequest {
            budgets: vec![],
            all_user_expense_lineitems: vec![item(1), item(2)],
        },
    ];
    let mut responses = server
        .client()
        .await
        .featurize_stream(tokio_stream::iter(chunks))
        .await
        .unwrap()
        .into_inner();
    let mut parts = Vec::new();
    while let Some(part) = responses.message().await.unwrap() {
        parts.push(part);
    }
    let rows: Vec<u32> = parts.iter().map(|p| p.n_rows).collect();
    assert_eq!(rows, [4, 4, 1]);
    assert!(parts[0].schema.is_some());
    assert!(parts[1].schema.is_none());
    let keys: Vec<String> = parts
        .iter()
        .flat_map(|p| &p.keys)
        .map(|k| format!("{}/{}", k.budget_id, k.itemization_id))
        .collect();
    assert_eq!(
        keys,
        [
            "b0/i0", "b0/i1", "b0/i2", "b1/i0", "b1/i1", "b1/i2", "b2/i0", "b2/i1", "b2/i2"
        ]
    );
    for part in &parts {
        assert_eq!(
            part.values.len(),
            part.n_rows as usize * FEATURE_NAMES.len()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn health_reports_serving() {
    let server = TestServer::start(PreprocessConfig::default()).await;
    triad_server::healthcheck(
        &server.endpoint(),
        triad_preprocess::SERVICE_NAME,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    triad_server::healthcheck(&server.endpoint(), "", Duration::from_secs(5))
        .await
        .unwrap();
    let unknown =
        triad_server::healthcheck(&server.endpoint(), "no.Such", Duration::from_secs(5)).await;
    assert!(unknown.is_err());
    server.stop().await;
}
