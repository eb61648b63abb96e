//! The whole chain as a user runs it, with the real `triad` binary: `triad
//! up` (every service in one process, on ephemeral loopback ports), the
//! synthetic data set backfilled through the scorer at its original times,
//! its labels uploaded, then precision and recall per day from the monitor
//! — and the analyst's plain SQL view agreeing with them; the same chain
//! with `triad certs`' mutual TLS and tokens on every port; and `triad up`
//! refusing to expose an unauthenticated port.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Row;
use triad_proto::v1::monitor_client::MonitorClient;
use triad_proto::v1::scorer_client::ScorerClient;
use triad_proto::v1::{Bucket, QueryMetricsRequest};
use triad_server::auth::TokenSource;
use triad_server::tls::{ClientTls, TlsConfig};
use triad_test_support::{
    SEED_REQUEST, SEED_RESPONSE, get, https_request, seed_score_request, shipped_models,
};

const TRIAD: &str = env!("CARGO_BIN_EXE_triad");

fn triad(args: &[&str]) {
    let output = Command::new(TRIAD).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "triad {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `triad up` on ephemeral ports; killed (SIGTERM) when dropped.
struct Up {
    child: Child,
    addresses: Vec<(String, String)>,
    /// What it printed up to its ready-to-paste calls.
    banner: Vec<String>,
}

/// `triad up`'s arguments for ephemeral loopback ports (the seed
/// contract's on `http_addr`), `database` and the repository's models.
fn up_args(database: &Path, http_addr: &str) -> Command {
    let mut command = Command::new(TRIAD);
    command
        .args([
            "up",
            "--preprocess-addr",
            "127.0.0.1:0",
            "--preprocess-http-addr",
            "127.0.0.1:0",
            "--score-addr",
            "127.0.0.1:0",
        ])
        .args(["--http-addr", http_addr, "--monitor-addr", "127.0.0.1:0"])
        .args(["--monitor-http-addr", "127.0.0.1:0"])
        .arg("--database-url")
        .arg(format!("sqlite://{}", database.display()))
        .arg("--models-dir")
        .arg(shipped_models())
        .env("RUST_LOG", "warn");
    command
}

impl Up {
    fn start(database: &Path) -> Self {
        Self::start_with(database, &[])
    }

    fn start_with(database: &Path, extra: &[&str]) -> Self {
        let mut child = up_args(database, "127.0.0.1:0")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // The banner names every bound address: "  <service>  <proto>  <addr> ...".
        let mut addresses = Vec::new();
        let mut banner = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = Instant::now();
        while let Some(Ok(line)) = lines.next() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [service, proto, addr, ..] = words[..]
                && addr.starts_with("127.0.0.1:")
            {
                addresses.push((format!("{service} {proto}"), addr.to_owned()));
            }
            let done = line.starts_with("try:");
            banner.push(line);
            if done || started.elapsed() > Duration::from_secs(60) {
                break;
            }
        }
        // Keep reading whatever else it prints.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            addresses,
            banner,
        }
    }

    fn socket(&self, what: &str) -> SocketAddr {
        self.addr(what).parse().unwrap()
    }

    fn addr(&self, what: &str) -> String {
        self.addresses
            .iter()
            .find(|(name, _)| name == what)
            .map(|(_, addr)| addr.clone())
            .unwrap_or_else(|| panic!("no {what} in {:?}", self.addresses))
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "triad up exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "triad up did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfilled_synthetic_data_and_labels_give_daily_precision_and_recall() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let database = dir.path().join("monitor.db");
    triad(&["synth", "--users", "60", "--out", synth.to_str().unwrap()]);
    let up = Up::start(&database);
    let scorer = format!("http://{}", up.addr("score grpc"));
    let monitor = format!("http://{}", up.addr("monitor grpc"));

    let requests = synth.join("requests.jsonl");
    let labels = synth.join("labels.csv");
    triad(&[
        "backfill",
        requests.to_str().unwrap(),
        "--scorer",
        &scorer,
        "--times",
        labels.to_str().unwrap(),
    ]);
    triad(&["labels", labels.to_str().unwrap(), "--monitor", &monitor]);

    let pairs = std::fs::read_to_string(&labels).unwrap().lines().count() as u64 - 1;
    // `triad up` scores the seed request once as its own check: one more.
    let scored = pairs + 1;
    let mut client = MonitorClient::connect(monitor).await.unwrap();
    let query = QueryMetricsRequest {
        model: "budget_expense_matcher".into(),
        bucket: Bucket::Day.into(),
        ..QueryMetricsRequest::default()
    };
    // Outcomes reach the monitor asynchronously: wait for all of them.
    let mut points = Vec::new();
    for _ in 0..600 {
        points = client
            .query_metrics(query.clone())
            .await
            .unwrap()
            .into_inner()
            .points;
        let (count, labelled) = points
            .iter()
            .fold((0, 0), |(c, l), p| (c + p.count, l + p.labelled));
        if count == scored && labelled == pairs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let count: u64 = points.iter().map(|p| p.count).sum();
    assert_eq!(count, scored, "every scored pair is stored once");
    let days: Vec<_> = points.iter().filter(|p| p.count > 0).collect();
    assert!(
        days.len() > 10,
        "the backfill spread over the synthetic days: {}",
        days.len()
    );
    let (tp, fp, fn_): (u64, u64, u64) = points.iter().fold((0, 0, 0), |(a, b, c), p| {
        (
            a + p.true_positives,
            b + p.false_positives,
            c + p.false_negatives,
        )
    });
    let precision = tp as f64 / (tp + fp) as f64;
    let recall = tp as f64 / (tp + fn_) as f64;
    assert!(
        precision > 0.8 && recall > 0.8,
        "precision {precision}, recall {recall}"
    );

    // The analyst's view, computed from the raw rows, agrees day by day.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", database.display()))
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT day_start_ms, outcomes, tp, fp, fn, tn FROM daily_precision_recall \
         WHERE model = 'budget_expense_matcher' AND shadow = 0 ORDER BY day_start_ms",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let from_sql: Vec<(i64, i64, i64, i64, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<i64, _>(0),
                r.get::<i64, _>(1),
                r.get::<i64, _>(2),
                r.get::<i64, _>(3),
                r.get::<i64, _>(4),
                r.get::<i64, _>(5),
            )
        })
        .collect();
    let from_rpc: Vec<(i64, i64, i64, i64, i64, i64)> = days
        .iter()
        .map(|p| {
            (
                p.bucket_start_ms,
                p.count as i64,
                p.true_positives as i64,
                p.false_positives as i64,
                p.false_negatives as i64,
                p.true_negatives as i64,
            )
        })
        .collect();
    assert_eq!(from_sql, from_rpc);
    pool.close().await;

    // The dashboard shows the model's precision and recall per day.
    let (status, page) = get(
        up.socket("monitor http"),
        "/models/budget_expense_matcher?days=400",
    )
    .await;
    assert_eq!(status, 200, "{}", &page[..page.len().min(300)]);
    assert!(page.contains("<svg"), "the page draws its charts");
    assert!(page.to_lowercase().contains("precision") && page.to_lowercase().contains("recall"));
    // The shipped model has a reference profile: drift is computed.
    assert!(
        page.contains("<table class=\"drift\">"),
        "the drift table is drawn"
    );
    assert!(page.contains("travel_vendor_jaro_winkler"));

    up.stop();
}

/// Under `triad up` every service answers `GET /metrics` on its HTTP port,
/// preprocess included; the calls of `triad up`'s own check are counted.
#[tokio::test]
async fn up_serves_metrics_on_every_http_port() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start(&dir.path().join("monitor.db"));
    for port in ["preprocess http", "score http", "monitor http"] {
        let (status, metrics) = get(up.socket(port), "/metrics").await;
        assert_eq!(
            status,
            200,
            "{port}: {}",
            &metrics[..metrics.len().min(300)]
        );
        assert!(
            metrics.contains(
                r#"triad_grpc_server_requests_total{code="OK",method="Featurize",service="triad.v1.Preprocess"} "#
            ),
            "{port}: {metrics}"
        );
    }
    up.stop();
}

/// `triad certs` writes a working mutual-TLS set, and `triad up --secrets`
/// turns it and the tokens on for every port and every hop: its own
/// end-to-end check passes, each service's `healthcheck` probe passes, and
/// a caller gets through only with a client certificate of that CA and the
/// right service's token — over gRPC, HTTP, `triad backfill` and `triad
/// labels` alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triad_certs_and_up_run_mutual_tls_and_tokens_on_every_port() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let database = dir.path().join("monitor.db");
    triad(&["certs", "--out", secrets.to_str().unwrap()]);
    let file = |name: &str| secrets.join(name);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&secrets), 0o700);
    for private in [
        "server-key.pem",
        "client-key.pem",
        "score.token",
        "preprocess.token",
        "monitor.token",
        "read.token",
    ] {
        assert_eq!(mode(&file(private)), 0o600, "{private}");
    }
    let token = |name: &str| {
        std::fs::read_to_string(file(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert!(token("score.token").len() >= 32);
    assert_ne!(token("score.token"), token("monitor.token"));
    let again = Command::new(TRIAD)
        .args(["certs", "--out", secrets.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "an existing set is not overwritten"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    // Its own end-to-end check passed (over mutual TLS, with the tokens):
    // it printed the banner.
    let up = Up::start_with(&database, &["--secrets", secrets.to_str().unwrap()]);
    assert!(
        up.banner
            .iter()
            .any(|line| line == "security: mutual TLS, bearer tokens on every port"),
        "{:#?}",
        up.banner
    );
    assert!(
        up.banner
            .iter()
            .any(|line| line.contains("seed request: 1 pair(s)")),
        "{:#?}",
        up.banner
    );
    // out_of_policy is gated on budget_expense_matcher (its serving.toml),
    // which did not match the seed's taxi-vs-flight pair: not scored.
    assert!(
        up.banner
            .iter()
            .any(|line| line.starts_with("out_of_policy gated on budget_expense_matcher")),
        "{:#?}",
        up.banner
    );
    assert!(
        up.banner.iter().any(|line| line.contains("out_of_policy")
            && line.contains("not scored (budget_expense_matcher did not match it)")),
        "{:#?}",
        up.banner
    );

    // What each service's `healthcheck` subcommand runs: the service's own
    // certificate, pinned, presented as the client's.
    let service_security = triad_server::Security {
        tls: Some(
            TlsConfig::new(file("server.pem"), file("server-key.pem"))
                .with_client_ca(file("ca.pem")),
        ),
        ..triad_server::Security::default()
    };
    for (what, service) in [
        ("preprocess grpc", "triad.v1.Preprocess"),
        ("score grpc", "triad.v1.Scorer"),
        ("monitor grpc", "triad.v1.Monitor"),
    ] {
        triad_server::check_local_with(up.socket(what), service, &service_security)
            .await
            .unwrap_or_else(|error| panic!("{what}: {error}"));
    }

    let client = ClientTls {
        ca: Some(file("ca.pem")),
        cert: Some(file("client.pem")),
        key: Some(file("client-key.pem")),
        domain: None,
    };
    let score = up.socket("score grpc");
    let timeout = Duration::from_secs(3);
    assert!(
        triad_server::healthcheck(&format!("http://{score}"), "", timeout)
            .await
            .is_err(),
        "plain TCP is refused"
    );
    let anonymous = ClientTls {
        cert: None,
        key: None,
        ..client.clone()
    };
    assert!(
        triad_server::health::healthcheck_tls(&format!("https://{score}"), "", timeout, &anonymous)
            .await
            .is_err(),
        "TLS without a client certificate is refused"
    );
    let call = |token: Option<&str>| {
        let channel = triad_server::client::connect(
            &format!("https://{score}"),
            &triad_server::ClientConfig {
                tls: client.clone(),
                token: token.map(|name| TokenSource::File(file(name))),
                ..triad_server::ClientConfig::default()
            },
        )
        .unwrap();
        async move { ScorerClient::new(channel).score(seed_score_request()).await }
    };
    assert_eq!(
        call(None).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        call(Some("monitor.token")).await.unwrap_err().code(),
        tonic::Code::Unauthenticated,
        "another service's token is not the scorer's"
    );
    let scored = call(Some("score.token")).await.unwrap().into_inner();
    assert_eq!(scored.keys.len(), 1);

    // The seed's HTTP contract, over TLS, with the scorer's token.
    let http = up.socket("score http");
    let path = "/budget_expense_matcher/";
    let refused = https_request(http, &client, "POST", path, None, SEED_REQUEST)
        .await
        .unwrap();
    assert_eq!(refused.status, 401);
    let answered = https_request(
        http,
        &client,
        "POST",
        path,
        Some(&token("score.token")),
        SEED_REQUEST,
    )
    .await
    .unwrap();
    assert_eq!(answered.status, 200, "{}", answered.body);
    let expected: serde_json::Value = serde_json::from_str(SEED_RESPONSE).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answered.body).unwrap(),
        expected
    );
    // The dashboard with the read-only token.
    let dashboard = https_request(
        up.socket("monitor http"),
        &client,
        "GET",
        "/",
        Some(&token("read.token")),
        "",
    )
    .await
    .unwrap();
    assert_eq!(dashboard.status, 200);

    // `triad backfill` and `triad labels` with their TLS and token flags.
    let synth = dir.path().join("synth");
    triad(&["synth", "--users", "8", "--out", synth.to_str().unwrap()]);
    let labels = synth.join("labels.csv");
    let tls_flags = |token_name: &str| {
        [
            "--ca".to_owned(),
            file("ca.pem").display().to_string(),
            "--cert".to_owned(),
            file("client.pem").display().to_string(),
            "--key".to_owned(),
            file("client-key.pem").display().to_string(),
            "--token-file".to_owned(),
            file(token_name).display().to_string(),
        ]
    };
    let run = |args: Vec<String>| {
        let output = Command::new(TRIAD).args(&args).output().unwrap();
        assert!(
            output.status.success(),
            "triad {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let mut backfill = vec![
        "backfill".to_owned(),
        synth.join("requests.jsonl").display().to_string(),
        "--scorer".to_owned(),
        format!("https://{score}"),
        "--times".to_owned(),
        labels.display().to_string(),
    ];
    backfill.extend(tls_flags("score.token"));
    run(backfill);
    let mut upload = vec![
        "labels".to_owned(),
        labels.display().to_string(),
        "--monitor".to_owned(),
        format!("https://{}", up.addr("monitor grpc")),
    ];
    upload.extend(tls_flags("monitor.token"));
    run(upload);

    // Read back with the read-only token: every pair stored once and
    // labelled — plus the seed request scored three times (the check, the
    // gRPC call, the HTTP call).
    let pairs = std::fs::read_to_string(&labels).unwrap().lines().count() as u64 - 1;
    let channel = triad_server::client::connect(
        &format!("https://{}", up.addr("monitor grpc")),
        &triad_server::ClientConfig {
            tls: client.clone(),
            token: Some(TokenSource::File(file("read.token"))),
            ..triad_server::ClientConfig::default()
        },
    )
    .unwrap();
    let mut monitor = MonitorClient::new(channel);
    let query = QueryMetricsRequest {
        model: "budget_expense_matcher".into(),
        bucket: Bucket::Day.into(),
        ..QueryMetricsRequest::default()
    };
    let mut totals = (0, 0);
    for _ in 0..600 {
        let points = monitor
            .query_metrics(query.clone())
            .await
            .unwrap()
            .into_inner()
            .points;
        totals = points
            .iter()
            .fold((0, 0), |(c, l), p| (c + p.count, l + p.labelled));
        if totals == (pairs + 3, pairs) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(totals, (pairs + 3, pairs));

    up.stop();
}

/// A non-loopback address with neither tokens nor client certificates is
/// refused, naming the way out; `--insecure` serves it anyway, warning.
#[test]
fn up_refuses_an_unauthenticated_exposed_port_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("monitor.db");
    let refused = up_args(&database, "0.0.0.0:0")
        .arg("--check-only")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("refusing to serve 0.0.0.0:0") && stderr.contains("--insecure"),
        "{stderr}"
    );

    let insecure = up_args(&database, "0.0.0.0:0")
        .args(["--check-only", "--insecure"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&insecure.stdout),
        String::from_utf8_lossy(&insecure.stderr),
    );
    assert!(insecure.status.success(), "{stderr}");
    assert!(stdout.contains("triad is up"), "{stdout}");
    assert!(
        stderr.contains("no caller authentication (--insecure)"),
        "{stderr}"
    );
}
