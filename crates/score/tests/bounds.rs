//! The seed HTTP contract's request-level bounds, against a real scorer: a
//! body over `JsonLimits::max_body_bytes` is a 413 and one nested past
//! `JsonLimits::max_depth` a 400, both with a message; the server keeps
//! serving afterwards.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use support::{Stack, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use triad_features::json::DEFAULT_MAX_BODY_BYTES;

fn shipped_models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

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

    let (status, body) = http(
        stack.http_addr,
        "POST",
        "/budget_expense_matcher/",
        support::SEED_REQUEST,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    stack.stop().await;
}

#[tokio::test]
async fn deep_nesting_is_a_400_with_a_message() {
    let stack = Stack::start(&shipped_models()).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, body) = http(stack.http_addr, "POST", "/budget_expense_matcher/", &deep).await;
    assert_eq!(status, 400, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        error["error"],
        "request nests arrays and objects deeper than the limit of 32 levels"
    );
    stack.stop().await;
}
