//! Every call's work is bounded: a request past its deadline is answered
//! `DEADLINE_EXCEEDED` instead of holding a thread, and a stream may hold
//! only so many budgets, line items and bytes, however few pairs it makes.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Code, Request};
use triad_features::Featurizer;
use triad_preprocess::{PreprocessConfig, PreprocessService};
use triad_proto::v1::preprocess_server::Preprocess;
use triad_proto::v1::{self, FeaturizeRequest};
use triad_server::ServerLimits;
use triad_test_support::seed_featurize_request;

use crate::support::TestServer;

fn budget(seed: &FeaturizeRequest, id: usize) -> v1::Budget {
    v1::Budget {
        budget_id: Some(format!("b{id}")),
        ..seed.budgets[0].clone()
    }
}

fn item(seed: &FeaturizeRequest, id: usize) -> v1::ExpenseLineItem {
    v1::ExpenseLineItem {
        itemization_id: Some(format!("i{id}")),
        ..seed.all_user_expense_lineitems[0].clone()
    }
}

/// A service called directly (no timeout layer in front), whose request
/// timeout is `request_timeout`.
fn service_with_timeout(request_timeout: Duration) -> PreprocessService {
    let config = PreprocessConfig {
        server: ServerLimits {
            request_timeout,
            ..ServerLimits::default()
        },
        ..PreprocessConfig::default()
    };
    PreprocessService::new(Arc::new(Featurizer::new(config.featurizer)), config)
}

#[tokio::test]
async fn a_request_past_its_deadline_is_deadline_exceeded() {
    // A zero request timeout: the deadline has passed when featurizing
    // starts, whatever the machine's speed.
    let service = service_with_timeout(Duration::ZERO);
    let status = Preprocess::featurize(&service, Request::new(seed_featurize_request()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(
        status.message(),
        "request not featurized within its deadline of 0 ms (the caller's grpc-timeout or the \
         server's request timeout, whichever is sooner); send fewer pairs or shorter vendor \
         names, or allow more time"
    );
    // The same service with time to spare featurizes it.
    let service = service_with_timeout(Duration::from_secs(60));
    let matrix = Preprocess::featurize(&service, Request::new(seed_featurize_request()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(matrix.n_rows, 1);
}

#[tokio::test]
async fn a_long_request_on_the_blocking_pool_stops_at_the_callers_deadline() {
    // 40 × 40 pairs of distinct 170-character CJK vendor names: the
    // estimated cost sends it to the blocking pool, and its thousands of
    // long comparisons take far longer than the caller's 5 ms, so the
    // featurizer's own checks stop it mid-work.
    let seed = seed_featurize_request();
    let mut state = 11u64;
    let mut name = || -> String {
        (0..170)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from_u32(0x4E00 + (state % 0x5200) as u32).unwrap()
            })
            .collect()
    };
    let request = FeaturizeRequest {
        budgets: (0..40)
            .map(|i| v1::Budget {
                travel_vendor_receipts: Some(name()),
                purchase_vendor_receipts: Some(name()),
                ..budget(&seed, i)
            })
            .collect(),
        all_user_expense_lineitems: (0..40)
            .map(|i| v1::ExpenseLineItem {
                vendor_name_expense: Some(name()),
                ..item(&seed, i)
            })
            .collect(),
    };
    let service = service_with_timeout(Duration::from_secs(60));
    let mut request = Request::new(request);
    request
        .metadata_mut()
        .insert("grpc-timeout", "5m".parse().unwrap());
    let status = Preprocess::featurize(&service, request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(
        status.message().contains("deadline of 5 ms"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_stream_of_budgets_only_stops_at_the_budget_limit() {
    let config = PreprocessConfig {
        max_budgets: 5,
        ..PreprocessConfig::default()
    };
    let server = TestServer::start(config).await;
    let seed = seed_featurize_request();
    // No line items, so no pairs: only the budget count can stop it.
    let chunks: Vec<FeaturizeRequest> = (0..10)
        .map(|chunk| FeaturizeRequest {
            budgets: (0..3).map(|i| budget(&seed, 3 * chunk + i)).collect(),
            all_user_expense_lineitems: vec![],
        })
        .collect();
    let status = server
        .client()
        .await
        .featurize_stream(tokio_stream::iter(chunks))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "request has 6 budgets, more than the limit of 5 per call"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stream_stops_at_the_line_item_and_byte_limits() {
    let seed = seed_featurize_request();
    let items_only = |chunks: usize| -> Vec<FeaturizeRequest> {
        (0..chunks)
            .map(|chunk| FeaturizeRequest {
                budgets: vec![],
                all_user_expense_lineitems: (0..4).map(|i| item(&seed, 4 * chunk + i)).collect(),
            })
            .collect()
    };

    let server = TestServer::start(PreprocessConfig {
        max_line_items: 10,
        ..PreprocessConfig::default()
    })
    .await;
    let status = server
        .client()
        .await
        .featurize_stream(tokio_stream::iter(items_only(10)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "request has 12 line items, more than the limit of 10 per call"
    );
    server.stop().await;

    let sizes: Vec<usize> = items_only(10)
        .iter()
        .map(prost::Message::encoded_len)
        .collect();
    let limit = sizes[0] + sizes[1];
    let server = TestServer::start(PreprocessConfig {
        max_stream_bytes: limit,
        ..PreprocessConfig::default()
    })
    .await;
    let status = server
        .client()
        .await
        .featurize_stream(tokio_stream::iter(items_only(10)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.message(),
        format!(
            "stream has sent {} bytes, more than the limit of {} bytes per stream; split it into several calls",
            limit + sizes[2],
            limit
        )
    );
    // Two chunks fit: 8 line items, no budgets, no rows.
    let mut responses = server
        .client()
        .await
        .featurize_stream(tokio_stream::iter(items_only(2)))
        .await
        .unwrap()
        .into_inner();
    let mut rows = 0;
    while let Some(part) = responses.message().await.unwrap() {
        rows += part.n_rows;
    }
    assert_eq!(rows, 0);
    server.stop().await;
}

#[tokio::test]
async fn featurize_refuses_more_budgets_than_the_limit() {
    let server = TestServer::start(PreprocessConfig {
        max_budgets: 2,
        ..PreprocessConfig::default()
    })
    .await;
    let seed = seed_featurize_request();
    let request = FeaturizeRequest {
        budgets: (0..3).map(|i| budget(&seed, i)).collect(),
        all_user_expense_lineitems: vec![],
    };
    let status = server.client().await.featurize(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "request has 3 budgets, more than the limit of 2 per call"
    );
    server.stop().await;
}
