//! The seed HTTP contract's request-level bounds, against a real scorer: a
//! body over `JsonLimits::max_body_bytes` is a 413 and one nested past
//! `JsonLimits::max_depth` a 400, both with a message; the server keeps
//! serving afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use triad_features::json::DEFAULT_MAX_BODY_BYTES;
use triad_test_support::{SEED_REQUEST, post, seed_score_request, shipped_models};

use crate::support::Stack;

/// POSTs `body` while reading the answer, so an early answer (the server
/// refusing the body before it is all sent) is read, not lost to a reset.
async fn post_large(addr: SocketAddr, body: Vec<u8>) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /budget_expense_matcher/ HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let send = tokio::spawn(async move {
        // The server may close before all of it is sent: that is the point.
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body).await;
        writer
    });
    let mut response = Vec::new();
    let _ = reader.read_to_end(&mut response).await;
    drop(send.await);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

#[tokio::test]
async fn an_oversized_body_is_a_413_and_the_server_keeps_serving() {
    let stack = Stack::start(&shipped_models()).await;
    let mut body = br#"{"budgets":[],"all_user_expense_lineitems":[],"pad":""#.to_vec();
    body.resize(DEFAULT_MAX_BODY_BYTES + 1, b'a');
    body.extend_from_slice(b"\"}");
    let (status, answer) = post_large(stack.http_addr, body).await;
    assert_eq!(status, 413, "{answer}");

    let (status, body) = post(stack.http_addr, "/budget_expense_matcher/", SEED_REQUEST).await;
    assert_eq!(status, 200, "{body}");
    stack.stop().await;
}

#[tokio::test]
async fn a_body_announced_over_the_limit_is_a_413_before_any_of_it_is_sent() {
    let stack = Stack::start(&shipped_models()).await;
    let mut stream = tokio::net::TcpStream::connect(stack.http_addr)
        .await
        .unwrap();
    let head = format!(
        "POST /budget_expense_matcher/ HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        DEFAULT_MAX_BODY_BYTES + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // No byte of the body follows: the answer must not wait for one (it
    // used to wait for the request timeout, holding a request slot).
    let mut status = [0; 12];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut status))
        .await
        .expect("answered without the body")
        .unwrap();
    assert_eq!(&status, b"HTTP/1.1 413");
    stack.stop().await;
}

#[tokio::test]
async fn deep_nesting_is_a_400_with_a_message() {
    let stack = Stack::start(&shipped_models()).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, body) = post(stack.http_addr, "/budget_expense_matcher/", &deep).await;
    assert_eq!(status, 400, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        error["error"],
        "request nests arrays and objects deeper than the limit of 32 levels"
    );
    stack.stop().await;
}

// ---- Hostile callers (issue 11) ------------------------------------------

use triad_proto::v1;

/// `grpc-message` of a failed call, and its code.
async fn score_error(stack: &Stack, request: v1::ScoreRequest) -> tonic::Status {
    stack
        .scorer()
        .await
        .score(request)
        .await
        .expect_err("the call is refused")
}

#[tokio::test]
async fn a_body_without_budgets_or_items_is_a_400_naming_the_key() {
    let stack = Stack::start(&shipped_models()).await;
    for (body, key) in [
        (
            r#"{"budget":[],"all_user_expense_lineitems":[]}"#,
            "budgets",
        ),
        (r#"{"budgets":[]}"#, "all_user_expense_lineitems"),
    ] {
        let (status, answer) = post(stack.http_addr, "/budget_expense_matcher/", body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains(&format!("`{key}`")), "{answer}");
    }
    // Empty lists stay a valid request with nothing to match.
    let (status, answer) = post(
        stack.http_addr,
        "/budget_expense_matcher/",
        r#"{"budgets":[],"all_user_expense_lineitems":[]}"#,
    )
    .await;
    assert_eq!((status, answer.as_str()), (200, "[]"));
    stack.stop().await;
}

#[tokio::test]
async fn a_time_in_the_future_or_before_2000_is_invalid() {
    let stack = Stack::start(&shipped_models()).await;
    let now = triad_proto::time::now_ms();
    for at in [now + 3_600_000, i64::MAX, 1, -5, 946_684_799_999] {
        let status = score_error(
            &stack,
            v1::ScoreRequest {
                occurred_at_ms: at,
                ..seed_score_request()
            },
        )
        .await;
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{at}: {status}"
        );
        assert!(status.message().contains("occurred_at_ms"), "{status}");
    }
    // A backfill time in range is fine.
    stack
        .scorer()
        .await
        .score(v1::ScoreRequest {
            occurred_at_ms: now - 86_400_000,
            ..seed_score_request()
        })
        .await
        .unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn a_model_named_many_times_runs_once_and_the_list_is_bounded() {
    let stack = Stack::start(&shipped_models()).await;
    let model = "budget_expense_matcher".to_owned();
    let response = stack
        .scorer()
        .await
        .score(v1::ScoreRequest {
            models: vec![model.clone(); 3],
            ..seed_score_request()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.results.len(),
        1,
        "three names, one model: one result"
    );

    let status = score_error(
        &stack,
        v1::ScoreRequest {
            models: vec![model; 5_000],
            ..seed_score_request()
        },
    )
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    assert!(status.message().contains("at most 64"), "{status}");
    stack.stop().await;
}

#[tokio::test]
async fn error_messages_quote_at_most_64_characters_of_a_callers_value() {
    let stack = Stack::start(&shipped_models()).await;
    for len in [10_000, 200_000] {
        let status = score_error(
            &stack,
            v1::ScoreRequest {
                models: vec!["m".repeat(len)],
                ..seed_score_request()
            },
        )
        .await;
        assert_eq!(status.code(), tonic::Code::NotFound, "{len}");
        assert!(
            status.message().len() < 400,
            "{} bytes",
            status.message().len()
        );
        assert!(
            status.message().contains(&format!("({len} bytes)")),
            "{status}"
        );
    }
    stack.stop().await;
}

#[tokio::test]
async fn an_http_client_never_learns_an_internal_address() {
    // Too many pairs for preprocess (its limit is 250 000; the scorer's own
    // bound lifted): the 400 says so without naming where preprocess runs.
    let stack = Stack::start_with(&shipped_models(), |config| {
        config.max_request_bytes = usize::MAX;
    })
    .await;
    let item = |i: usize| format!(r#"{{"itemization_id":"i{i}"}}"#);
    let budget = |i: usize| format!(r#"{{"budget_id":"b{i}"}}"#);
    let body = format!(
        r#"{{"budgets":[{}],"all_user_expense_lineitems":[{}]}}"#,
        (0..600).map(budget).collect::<Vec<_>>().join(","),
        (0..600).map(item).collect::<Vec<_>>().join(",")
    );
    let (status, answer) = post(stack.http_addr, "/budget_expense_matcher/", &body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("pairs"), "{answer}");
    let preprocess = stack.preprocess_addr.to_string();
    assert!(!answer.contains(&preprocess), "{answer}");
    assert!(!answer.contains("127.0.0.1"), "{answer}");

    // Preprocess gone: a 503 that does not name it either.
    let (status, answer) = {
        let stack = Stack::start_with(&shipped_models(), |config| {
            config.preprocess = "http://127.0.0.1:9".to_owned();
            config.preprocess_timeout = std::time::Duration::from_millis(300);
        })
        .await;
        let answer = post(stack.http_addr, "/budget_expense_matcher/", SEED_REQUEST).await;
        stack.stop().await;
        answer
    };
    assert_eq!(status, 503, "{answer}");
    assert!(!answer.contains("127.0.0.1:9"), "{answer}");
    stack.stop().await;
}

#[tokio::test]
async fn score_matrix_checks_the_schema_behind_its_hash_and_never_panics() {
    let stack = Stack::start(&shipped_models()).await;
    let featurizer = triad_features::Featurizer::default();
    let request: triad_features::RawRequest =
        triad_features::parse_request(SEED_REQUEST, &Default::default())
            .unwrap()
            .request;
    let good = triad_proto::convert::matrix_to_proto(featurizer.featurize(&request), "m");
    let mut client = stack.scorer().await;
    for n_cols in [0_u32, 1] {
        let mut matrix = good.clone();
        let schema = matrix.schema.as_mut().unwrap();
        schema.feature_names.truncate(n_cols as usize);
        matrix.n_cols = n_cols;
        matrix
            .values
            .truncate(n_cols as usize * matrix.n_rows as usize);
        let status = client
            .score_matrix(v1::ScoreMatrixRequest {
                matrix: Some(matrix),
                ..v1::ScoreMatrixRequest::default()
            })
            .await
            .expect_err("refused");
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{n_cols}: {status}"
        );
    }
    // Keys the monitor could not store, or a pair twice, are refused too.
    for keys in [
        vec![v1::PairKey::default()],
        vec![v1::PairKey {
            budget_id: "b".repeat(129),
            itemization_id: "i".to_owned(),
        }],
        vec![v1::PairKey {
            budget_id: "b".to_owned(),
            itemization_id: "nul\0inside".to_owned(),
        }],
    ] {
        let mut matrix = good.clone();
        matrix.keys = keys;
        let status = client
            .score_matrix(v1::ScoreMatrixRequest {
                matrix: Some(matrix),
                ..v1::ScoreMatrixRequest::default()
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    }
    // The server is fine: the real matrix still scores.
    client
        .score_matrix(v1::ScoreMatrixRequest {
            matrix: Some(good),
            ..v1::ScoreMatrixRequest::default()
        })
        .await
        .unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn a_message_that_would_decode_to_far_more_than_its_size_is_refused_before_decoding() {
    // 4 MiB of empty budgets (2 bytes each on the wire, 216 decoded): it
    // used to be decoded whole, over 400 MB, before any check.
    let stack = Stack::start(&shipped_models()).await;
    let channel = tonic::transport::Endpoint::from_shared(stack.scorer_endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let wire = triad_proto::shared::Encoded([0x0a, 0x00].repeat(2 << 20));
    let status = grpc
        .unary(
            tonic::Request::new(wire),
            tonic::codegen::http::uri::PathAndQuery::from_static("/triad.v1.Scorer/Score"),
            tonic_prost::ProstCodec::<triad_proto::shared::Encoded, v1::ScoreResponse>::default(),
        )
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    assert!(status.message().contains("once decoded"), "{status}");
    // The server is fine.
    stack
        .scorer()
        .await
        .score(seed_score_request())
        .await
        .unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn a_request_too_large_for_the_scorers_memory_bound_is_refused_before_any_work() {
    // 500 budgets x 500 items with 128-byte ids: 250 000 pairs, about
    // 250 MB of ids and rows, from a body of 140 kB.
    let stack = Stack::start(&shipped_models()).await;
    let id = |prefix: char, i: usize| format!("{prefix}{i:0>127}");
    let request = v1::ScoreRequest {
        budgets: (0..500)
            .map(|i| v1::Budget {
                budget_id: Some(id('b', i)),
                ..v1::Budget::default()
            })
            .collect(),
        all_user_expense_lineitems: (0..500)
            .map(|i| v1::ExpenseLineItem {
                itemization_id: Some(id('i', i)),
                ..v1::ExpenseLineItem::default()
            })
            .collect(),
        ..v1::ScoreRequest::default()
    };
    let status = score_error(&stack, request).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    assert!(
        status.message().contains("500 budgets x 500 line items"),
        "{status}"
    );
    assert!(status.message().contains("limit of 56 MiB"), "{status}");
    assert_eq!(
        stack
            .preprocess_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "refused before featurizing"
    );
    stack.stop().await;
}
