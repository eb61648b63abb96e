//! Payload logging on real servers: with the `triad_score::payload` target
//! at debug, each request's input and output are logged on both front
//! doors with the free-text fields redacted; switched off, nothing is.
//! The log is captured by a subscriber scoped to this (single-threaded)
//! test.

use std::io::Write;
use std::sync::Arc;

use triad_features::FeatureSchema;
use triad_score::payload::PayloadLogConfig;
use triad_test_support::{SEED_REQUEST, post, seed_score_request};

use crate::support::{Stack, write_logistic};

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<tokio::sync::Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // Never contended across an await: the subscriber writes whole
        // lines synchronously.
        self.0
            .try_lock()
            .map_err(std::io::Error::other)?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    async fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().await).into_owned()
    }
}

/// Scores the seed request over HTTP and gRPC on a stack with `config`,
/// and returns the payload lines logged meanwhile.
async fn payload_lines(config: PayloadLogConfig) -> Vec<String> {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("triad_score::payload=debug")
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let repo = tempfile::tempdir().unwrap();
    write_logistic(
        repo.path(),
        "budget_expense_matcher",
        "1",
        -1.0,
        &[("amount_ratio_actual_cost", 1.0)],
        0.5,
        &FeatureSchema::current().hash,
    );
    let stack = Stack::start_with(repo.path(), |score| score.payload_log = config).await;
    let (status, body) = post(stack.http_addr, "/budget_expense_matcher/", SEED_REQUEST).await;
    assert_eq!(status, 200, "{body}");
    stack
        .scorer()
        .await
        .score(seed_score_request())
        .await
        .expect("scored");
    stack.stop().await;
    captured
        .text()
        .await
        .lines()
        .filter(|line| line.contains("triad_score::payload"))
        .map(str::to_owned)
        .collect()
}

// One test: the subscriber is per thread, and tracing caches whether a
// call site is enabled per process.
#[tokio::test(flavor = "current_thread")]
async fn payloads_are_logged_redacted_and_not_at_all_when_switched_off() {
    let lines = payload_lines(PayloadLogConfig::default()).await;
    // Input and output of the HTTP request and of the gRPC call.
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for (line, (front, kind)) in lines.iter().zip([
        ("http", "input"),
        ("http", "output"),
        ("grpc", "input"),
        ("grpc", "output"),
    ]) {
        assert!(
            line.contains(&format!("front=\"{front}\""))
                || line.contains(&format!("front={front}")),
            "{line}"
        );
        assert!(line.contains(kind), "{line}");
    }
    let inputs: Vec<&String> = lines.iter().filter(|l| l.contains("input")).collect();
    for input in inputs {
        // The seed's vendor fields are free text: never logged …
        assert!(!input.contains("Southwest Airlines"), "{input}");
        assert!(input.contains("[redacted]"), "{input}");
        // … while ids and amounts are.
        assert!(input.contains("309366"), "{input}");
        assert!(input.contains("131.98"), "{input}");
    }

    // Redacting an amount too, by name.
    let lines = payload_lines(PayloadLogConfig {
        enabled: true,
        redact: vec!["*vendor*".into(), "actual_cost_budget".into()],
    })
    .await;
    assert_eq!(lines.len(), 4);
    assert!(
        lines.iter().all(|line| !line.contains("131.98")),
        "{lines:#?}"
    );

    // Switched off: not a line, whatever the level.
    let lines = payload_lines(PayloadLogConfig {
        enabled: false,
        ..PayloadLogConfig::default()
    })
    .await;
    assert!(lines.is_empty(), "{lines:#?}");
}
