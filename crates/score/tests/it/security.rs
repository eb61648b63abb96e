//! The whole chain behind TLS and tokens, on real ports: a caller reaches
//! the scorer over TLS with its token; the scorer reaches preprocess over
//! mutual TLS with preprocess's token, and sends outcomes to the monitor
//! over TLS with the monitor's write token. Without its client
//! certificate the scorer cannot reach preprocess.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tonic::Code;
use triad_features::FeatureSchema;
use triad_preprocess::PreprocessConfig;
use triad_proto::v1::{self, monitor_client::MonitorClient, scorer_client::ScorerClient};
use triad_score::ScoreConfig;
use triad_server::Security;
use triad_server::auth::{AuthConfig, Secret, TokenSource};
use triad_server::client::{self, ClientConfig, GrpcChannel};
use triad_server::health::healthcheck_tls;
use triad_server::tls::ClientTls;
use triad_test_support::{SEED_REQUEST, seed_score_request};
use triad_test_support::{TestPki, https_request};

use crate::support::write_logistic;

const PREPROCESS_TOKEN: &str = "preprocess-token";
const SCORE_TOKEN: &str = "score-token-0123456";
const MONITOR_WRITE: &str = "monitor-write-token";
const MONITOR_READ: &str = "monitor-read-token";
const MODEL: &str = "budget_expense_matcher";

fn token(value: &str) -> Option<TokenSource> {
    Some(TokenSource::Value(Secret::new(value)))
}

fn https(addr: SocketAddr) -> String {
    format!("https://127.0.0.1:{}", addr.port())
}

async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = triad_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Preprocess (mutual TLS + token), monitor (TLS + tokens) and the scorer
/// (TLS + token) calling both with `upstream` as its client TLS.
struct Chain {
    scorer: SocketAddr,
    scorer_http: SocketAddr,
    monitor: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn start(pki: &TestPki, upstream: ClientTls) -> Chain {
    let (stop, stopped) = watch::channel(false);
    let until = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let models = tempfile::tempdir().unwrap();
    write_logistic(
        models.path(),
        MODEL,
        "1",
        -1.0,
        &[("amount_ratio_actual_cost", 1.0)],
        0.5,
        &FeatureSchema::current().hash,
    );
    let data = tempfile::tempdir().unwrap();

    let (listener, preprocess) = bind().await;
    let config = PreprocessConfig {
        addr: preprocess,
        security: Security {
            tls: Some(pki.mutual_tls()),
            auth: AuthConfig {
                token: token(PREPROCESS_TOKEN),
                ..AuthConfig::default()
            },
        },
        ..PreprocessConfig::default()
    };
    let preprocess_task = tokio::spawn({
        let until = until.clone();
        async move {
            triad_preprocess::serve(listener, None, config, until())
                .await
                .expect("preprocess serves");
        }
    });

    let (grpc, monitor) = bind().await;
    let config = triad_monitor::MonitorConfig {
        addr: monitor,
        models_dir: models.path().to_owned(),
        store: triad_monitor::StoreConfig {
            database_url: format!("sqlite://{}/monitor.db", data.path().display()),
            ..triad_monitor::StoreConfig::default()
        },
        security: Security {
            tls: Some(pki.server_tls()),
            auth: AuthConfig {
                token: token(MONITOR_WRITE),
                read_token: token(MONITOR_READ),
                ..AuthConfig::default()
            },
        },
        ..triad_monitor::MonitorConfig::default()
    };
    let monitor_task = tokio::spawn({
        let until = until.clone();
        async move {
            triad_monitor::serve(grpc, None, config, until())
                .await
                .expect("the monitor serves");
        }
    });

    let (grpc, scorer) = bind().await;
    let (http, scorer_http) = bind().await;
    let config = ScoreConfig {
        addr: scorer,
        http_addr: Some(scorer_http),
        preprocess: https(preprocess),
        monitor: Some(https(monitor)),
        models_dir: models.path().to_owned(),
        upstream_tls: upstream,
        preprocess_token: token(PREPROCESS_TOKEN),
        monitor_token: token(MONITOR_WRITE),
        security: Security {
            tls: Some(pki.server_tls()),
            auth: AuthConfig {
                token: token(SCORE_TOKEN),
                ..AuthConfig::default()
            },
        },
        ..ScoreConfig::default()
    };
    let scorer_task = tokio::spawn({
        let until = until.clone();
        async move {
            triad_score::serve(grpc, Some(http), config, until())
                .await
                .expect("the scorer serves");
        }
    });

    // Listeners are bound: each probe waits for its server to serve.
    for addr in [preprocess, monitor, scorer] {
        healthcheck_tls(&https(addr), "", Duration::from_secs(10), &pki.client_tls())
            .await
            .expect("healthy");
    }
    Chain {
        scorer,
        scorer_http,
        monitor,
        stop,
        tasks: vec![preprocess_task, monitor_task, scorer_task],
        _dirs: vec![models, data],
    }
}

impl Chain {
    fn channel(&self, addr: SocketAddr, tls: &ClientTls, token: Option<&str>) -> GrpcChannel {
        client::connect(
            &https(addr),
            &ClientConfig {
                tls: tls.clone(),
                token: token.map(|t| TokenSource::Value(Secret::new(t))),
                ..ClientConfig::default()
            },
        )
        .expect("a channel")
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("servers stop")
                .unwrap();
        }
    }
}

#[tokio::test]
async fn the_chain_runs_over_mutual_tls_with_tokens() {
    let pki = TestPki::new();
    let chain = start(&pki, pki.client_tls()).await;
    let caller = pki.anonymous_client_tls();

    // gRPC Score: scorer → preprocess over mutual TLS.
    let mut scorer = ScorerClient::new(chain.channel(chain.scorer, &caller, Some(SCORE_TOKEN)));
    let response = scorer
        .score(seed_score_request())
        .await
        .expect("scored through the whole chain")
        .into_inner();
    assert_eq!(response.keys.len(), 1);
    assert_eq!(response.results.len(), 1);
    assert_eq!(response.results[0].model, MODEL);
    assert_eq!(response.results[0].scores.len(), 1);

    // The seed HTTP contract over TLS, with the token.
    let http = https_request(
        chain.scorer_http,
        &caller,
        "POST",
        "/budget_expense_matcher/",
        Some(SCORE_TOKEN),
        SEED_REQUEST,
    )
    .await
    .expect("HTTPS request");
    assert_eq!(http.status, 200, "{http:?}");
    let entries: serde_json::Value = serde_json::from_str(&http.body).unwrap();
    assert_eq!(entries[0]["budget_id"], "309366");
    assert_eq!(entries[0]["itemization_id"], "4659496");

    // Without the scorer's token: refused, on both ports.
    let status = ScorerClient::new(chain.channel(chain.scorer, &caller, None))
        .score(seed_score_request())
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let http = https_request(
        chain.scorer_http,
        &caller,
        "POST",
        "/budget_expense_matcher/",
        Some("wrong"),
        SEED_REQUEST,
    )
    .await
    .expect("HTTPS request");
    assert_eq!(http.status, 401);

    // The outcomes reached the monitor with its write token (sent in the
    // background: poll, bounded).
    let mut monitor = MonitorClient::new(chain.channel(chain.monitor, &caller, Some(MONITOR_READ)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let points = monitor
            .query_metrics(v1::QueryMetricsRequest {
                model: MODEL.into(),
                bucket: v1::Bucket::Hour.into(),
                ..Default::default()
            })
            .await
            .expect("the read token queries")
            .into_inner()
            .points;
        let count: u64 = points.iter().map(|p| p.count).sum();
        if count >= 2 {
            assert_eq!(count, 2, "one outcome per scored pair, gRPC and HTTP");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "outcomes did not reach the monitor: {count}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    chain.stop().await;
}

#[tokio::test]
async fn without_its_client_certificate_the_scorer_cannot_reach_preprocess() {
    let pki = TestPki::new();
    // The scorer trusts the CA but presents no certificate.
    let chain = start(&pki, pki.anonymous_client_tls()).await;
    let status = ScorerClient::new(chain.channel(
        chain.scorer,
        &pki.anonymous_client_tls(),
        Some(SCORE_TOKEN),
    ))
    .score(seed_score_request())
    .await
    .expect_err("preprocess refuses the scorer");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    chain.stop().await;
}
