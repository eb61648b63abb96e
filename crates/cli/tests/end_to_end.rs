//! The whole chain as a user runs it, with the real `triad` binary: `triad
//! up` (every service in one process, on ephemeral loopback ports), the
//! synthetic data set backfilled through the scorer at its original times,
//! its labels uploaded, then precision and recall per day from the monitor
//! — and the analyst's plain SQL view agreeing with them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Row;
use triad_proto::v1::monitor_client::MonitorClient;
use triad_proto::v1::{Bucket, QueryMetricsRequest};

/// One HTTP/1.1 GET; the whole response, head and body.
async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

const TRIAD: &str = env!("CARGO_BIN_EXE_triad");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

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
}

impl Up {
    fn start(database: &Path) -> Self {
        let mut child = Command::new(TRIAD)
            .args([
                "up",
                "--preprocess-addr",
                "127.0.0.1:0",
                "--score-addr",
                "127.0.0.1:0",
            ])
            .args([
                "--http-addr",
                "127.0.0.1:0",
                "--monitor-addr",
                "127.0.0.1:0",
            ])
            .args(["--monitor-http-addr", "127.0.0.1:0"])
            .arg("--database-url")
            .arg(format!("sqlite://{}", database.display()))
            .arg("--models-dir")
            .arg(repo().join("models"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // The banner names every bound address: "  <service>  <proto>  <addr> ...".
        let mut addresses = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = Instant::now();
        while let Some(Ok(line)) = lines.next() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [service, proto, addr, ..] = words[..]
                && addr.starts_with("127.0.0.1:")
            {
                addresses.push((format!("{service} {proto}"), addr.to_owned()));
            }
            if line.starts_with("try:") || started.elapsed() > Duration::from_secs(60) {
                break;
            }
        }
        // Keep reading whatever else it prints.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, addresses }
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
    let dashboard = up.addr("monitor http");
    let page = http_get(&dashboard, "/models/budget_expense_matcher?days=400").await;
    assert!(
        page.starts_with("HTTP/1.1 200"),
        "{}",
        &page[..page.len().min(300)]
    );
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
