//! The monitor behind TLS and two tokens, on real ports: the service
//! token writes and reads, the read-only token reads (the read RPCs and
//! the dashboard) but cannot write (`PERMISSION_DENIED`), no or a wrong
//! token is `UNAUTHENTICATED` / 401, and health and `/metrics` stay open.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tonic::Code;
use triad_monitor::{MonitorConfig, StoreConfig};
use triad_proto::v1::{self, monitor_client::MonitorClient};
use triad_server::auth::{AuthConfig, Secret, TokenSource};
use triad_server::client::{self, ClientConfig, GrpcChannel};
use triad_server::tls::ClientTls;
use triad_server::{Security, health::healthcheck_tls};
use triad_test_support::{TestPki, https_request};

use crate::support::{MONDAY, label, outcome};

const WRITE: &str = "monitor-write-token";
const READ: &str = "monitor-read-token";

struct Monitor {
    grpc: SocketAddr,
    http: SocketAddr,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn start(pki: &TestPki) -> Monitor {
    sqlx::any::install_default_drivers();
    let data = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let grpc = triad_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = triad_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    let config = MonitorConfig {
        addr: grpc_addr,
        http_addr,
        models_dir: models.path().to_owned(),
        store: StoreConfig {
            database_url: format!("sqlite://{}/monitor.db", data.path().display()),
            ..StoreConfig::default()
        },
        security: Security {
            tls: Some(pki.server_tls()),
            auth: AuthConfig {
                token: Some(TokenSource::Value(Secret::new(WRITE))),
                read_token: Some(TokenSource::Value(Secret::new(READ))),
                ..AuthConfig::default()
            },
        },
        ..MonitorConfig::default()
    };
    let (stop, mut stopped) = watch::channel(false);
    let server = tokio::spawn(async move {
        triad_monitor::serve(grpc, Some(http), config, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await
        .expect("the monitor serves");
    });
    // The listener is bound: the probe's connection waits for the server.
    healthcheck_tls(
        &format!("https://127.0.0.1:{}", grpc_addr.port()),
        triad_monitor::SERVICE_NAME,
        Duration::from_secs(10),
        &pki.anonymous_client_tls(),
    )
    .await
    .expect("health is open without a token");
    Monitor {
        grpc: grpc_addr,
        http: http_addr,
        stop,
        server,
        _dirs: (data, models),
    }
}

fn client(monitor: &Monitor, tls: &ClientTls, token: Option<&str>) -> MonitorClient<GrpcChannel> {
    let channel = client::connect(
        &format!("https://127.0.0.1:{}", monitor.grpc.port()),
        &ClientConfig {
            tls: tls.clone(),
            token: token.map(|t| TokenSource::Value(Secret::new(t))),
            ..ClientConfig::default()
        },
    )
    .expect("a channel");
    MonitorClient::new(channel)
}

fn metrics_request() -> v1::QueryMetricsRequest {
    v1::QueryMetricsRequest {
        model: "m".into(),
        bucket: v1::Bucket::Hour.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_read_token_reads_but_cannot_write_and_the_service_token_does_both() {
    let pki = TestPki::new();
    let monitor = start(&pki).await;
    let tls = pki.anonymous_client_tls();
    let mut writer = client(&monitor, &tls, Some(WRITE));
    let mut reader = client(&monitor, &tls, Some(READ));

    // The service token writes.
    let stored = writer
        .record_outcomes(v1::RecordOutcomesRequest {
            outcomes: vec![outcome("1", MONDAY, ("b1", "i1"), true)],
            ..Default::default()
        })
        .await
        .expect("the service token writes")
        .into_inner();
    assert_eq!(stored.stored, 1);

    // The read token reads what was written …
    let points = reader
        .query_metrics(metrics_request())
        .await
        .expect("the read token may QueryMetrics")
        .into_inner()
        .points;
    assert_eq!(points.iter().map(|p| p.count).sum::<u64>(), 1);
    reader
        .list_mistakes(v1::ListMistakesRequest {
            model: "m".into(),
            ..Default::default()
        })
        .await
        .expect("the read token may ListMistakes");
    reader
        .query_threshold(v1::QueryThresholdRequest {
            model: "m".into(),
            thresholds: vec![0.5],
            ..Default::default()
        })
        .await
        .expect("the read token may QueryThreshold");
    reader
        .alerts(v1::AlertsRequest::default())
        .await
        .expect("the read token may ask for Alerts");

    // … and every write is refused with PERMISSION_DENIED.
    let status = reader
        .record_labels(v1::RecordLabelsRequest {
            labels: vec![label(("b1", "i1"), true)],
        })
        .await
        .expect_err("a read token cannot RecordLabels");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = reader
        .record_outcomes(v1::RecordOutcomesRequest {
            outcomes: vec![outcome("2", MONDAY, ("b2", "i2"), true)],
            ..Default::default()
        })
        .await
        .expect_err("a read token cannot RecordOutcomes");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = reader
        .record_events(v1::RecordEventsRequest::default())
        .await
        .expect_err("a read token cannot RecordEvents");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // Nothing the read token tried was stored.
    let points = writer
        .query_metrics(metrics_request())
        .await
        .expect("the service token reads too")
        .into_inner()
        .points;
    assert_eq!(points.iter().map(|p| p.count).sum::<u64>(), 1);
    assert_eq!(points.iter().map(|p| p.labelled).sum::<u64>(), 0);

    let _ = monitor.stop.send(true);
    monitor.server.await.unwrap();
}

/// The RPCs that write: every other RPC must be in
/// [`triad_monitor::READ_METHODS`].
const WRITE_METHODS: &[&str] = &[
    "RecordOutcomes",
    "RecordOutcomesStream",
    "RecordLabels",
    "RecordEvents",
];

#[test]
fn every_rpc_of_the_proto_is_either_a_read_or_a_listed_write() {
    let proto = include_str!("../../../../proto/triad/v1/monitor.proto");
    let rpcs: Vec<&str> = proto
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("rpc "))
        .map(|rest| rest.split('(').next().unwrap_or_default().trim())
        .collect();
    assert!(
        rpcs.len() > WRITE_METHODS.len(),
        "the rpc lines parse: {rpcs:?}"
    );
    for rpc in &rpcs {
        let path = format!("/triad.v1.Monitor/{rpc}");
        let read = triad_monitor::READ_METHODS.contains(&path.as_str());
        let write = WRITE_METHODS.contains(rpc);
        assert!(
            read != write,
            "{rpc} must be in exactly one of READ_METHODS (lib.rs) and WRITE_METHODS (read: {read}, write: {write})"
        );
    }
    // And neither list names an RPC the service no longer has.
    for path in triad_monitor::READ_METHODS {
        let rpc = path.trim_start_matches("/triad.v1.Monitor/");
        assert!(
            rpcs.contains(&rpc),
            "READ_METHODS names {path}, not in monitor.proto"
        );
    }
    for rpc in WRITE_METHODS {
        assert!(
            rpcs.contains(rpc),
            "WRITE_METHODS names {rpc}, not in monitor.proto"
        );
    }
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthenticated() {
    let pki = TestPki::new();
    let monitor = start(&pki).await;
    let tls = pki.anonymous_client_tls();
    for token in [None, Some("not-a-token"), Some("")] {
        let status = client(&monitor, &tls, token)
            .query_metrics(metrics_request())
            .await
            .expect_err("refused");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "token {token:?}: {status:?}"
        );
        let status = client(&monitor, &tls, token)
            .record_labels(v1::RecordLabelsRequest::default())
            .await
            .expect_err("refused");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "token {token:?}: {status:?}"
        );
    }
    let _ = monitor.stop.send(true);
    monitor.server.await.unwrap();
}

#[tokio::test]
async fn the_dashboard_and_metrics_take_the_read_token_and_health_stays_open() {
    // Its `/metrics` scrape resets the process-wide quality gauges.
    let _process = triad_test_support::process_wide_state().await;
    let pki = TestPki::new();
    let monitor = start(&pki).await;
    let tls = pki.anonymous_client_tls();
    let get = |path: &'static str, token: Option<&'static str>| {
        let tls = tls.clone();
        let addr = monitor.http;
        async move {
            https_request(addr, &tls, "GET", path, token, "")
                .await
                .expect("HTTPS request")
        }
    };

    let page = get("/", Some(READ)).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("<html"),
        "the dashboard page: {}",
        page.body
    );
    assert_eq!(get("/", Some(WRITE)).await.status, 200);
    assert_eq!(get("/", None).await.status, 401);
    assert_eq!(get("/", Some("wrong")).await.status, 401);
    assert_eq!(get("/models/m", None).await.status, 401);

    // /metrics (per-model precision and recall) needs the read token.
    assert_eq!(get("/metrics", None).await.status, 401);
    let metrics = get("/metrics", Some(READ)).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("# TYPE"), "{}", metrics.body);
    assert_eq!(get("/health", None).await.status, 200);

    // POST /events writes: the service token, never the read token.
    let body = r#"{"events": [{"name": "expense_matched", "duration_ms": 12.5}]}"#;
    let post = |token: Option<&'static str>| {
        let tls = tls.clone();
        let addr = monitor.http;
        async move {
            https_request(addr, &tls, "POST", "/events", token, body)
                .await
                .expect("HTTPS request")
        }
    };
    assert_eq!(post(None).await.status, 401);
    assert_eq!(post(Some("wrong")).await.status, 401);
    assert_eq!(post(Some(READ)).await.status, 403);
    let stored = post(Some(WRITE)).await;
    assert_eq!(stored.status, 200, "{stored:?}");
    assert!(stored.body.contains(r#""stored":1"#), "{}", stored.body);

    let _ = monitor.stop.send(true);
    monitor.server.await.unwrap();
}
