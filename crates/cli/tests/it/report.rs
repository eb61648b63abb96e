//! `triad report` against a real monitor started in this process on an
//! ephemeral loopback port (SQLite in a temporary directory), fed two weeks
//! of outcomes and labels over gRPC: the CSV's numbers equal `QueryMetrics`
//! over the same window field by field, every format holds every section,
//! the mistakes are the ten most confident, `-o FILE` writes the file, and
//! the HTML stays one inert file whatever the model and vendor names hold.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tokio::sync::oneshot;
use triad_proto::v1::monitor_client::MonitorClient;
use triad_proto::v1::{self, Bucket, MetricPoint};

const TRIAD: &str = env!("CARGO_BIN_EXE_triad");
const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// 2026-11-09T00:00:00Z, the end of the report's window.
const UNTIL: i64 = 1_794_182_400_000;
const FROM: i64 = UNTIL - 7 * DAY;
const SINCE_ARG: &str = "2026-11-02T00:00:00Z";
const UNTIL_ARG: &str = "2026-11-09T00:00:00Z";
/// The window's sixth day (2026-11-07) has no outcome.
const EMPTY_DAY: i64 = 5;
const HOSTILE_MODEL: &str = "<script>alert('m')</script>\"&<img src=https://evil.example/x.png>";
const HOSTILE_VENDOR: &str =
    "<a href=\"https://evil.example\">Vendor</a> | ** [x](https://e.example) \n# h";

struct Monitor {
    url: String,
    database_url: String,
    stop: Option<oneshot::Sender<()>>,
    _data: tempfile::TempDir,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start_monitor() -> Monitor {
    let data = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = triad_monitor::MonitorConfig {
        models_dir: data.path().join("no-models"),
        ..Default::default()
    };
    config.store.database_url = format!("sqlite://{}/monitor.db", data.path().display());
    let (stop, stopped) = oneshot::channel::<()>();
    let database_url = config.store.database_url.clone();
    tokio::spawn(triad_monitor::serve(listener, None, config, async move {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}");
    triad_server::healthcheck(&url, "", Duration::from_secs(30))
        .await
        .expect("monitor healthy");
    Monitor {
        url,
        database_url,
        stop: Some(stop),
        _data: data,
    }
}

/// Two weeks of outcomes of `model` (the window and the week before), 20
/// a day, two in three labelled, some wrong; none on the window's
/// [`EMPTY_DAY`].
async fn feed(client: &mut MonitorClient<tonic::transport::Channel>, model: &str) {
    let mut outcomes = Vec::new();
    let mut labels = Vec::new();
    for d in 0..14_i64 {
        if d == 7 + EMPTY_DAY {
            continue;
        }
        for k in 0..20_i64 {
            let id = format!("o-{d}-{k}");
            let score = ((d * 7 + k * 13) % 100) as f32 / 100.0;
            let matched = score >= 0.5;
            outcomes.push(v1::Outcome {
                outcome_id: id.clone(),
                request_id: format!("r-{d}-{k}"),
                scored_at_ms: FROM - 7 * DAY + d * DAY + k * HOUR,
                model: model.to_owned(),
                version: "1".into(),
                schema_hash: "hash".into(),
                budget_id: format!("b-{id}"),
                itemization_id: format!("i-{id}"),
                score,
                threshold: 0.5,
                matched,
                latency_ms: 2.0,
                line_item: Some(v1::ExpenseLineItem {
                    itemization_id: Some(format!("i-{id}")),
                    vendor_name_expense: Some(HOSTILE_VENDOR.into()),
                    ..Default::default()
                }),
                features: vec![0.5, f32::NAN],
                ..Default::default()
            });
            if k % 3 != 0 {
                let right = (d + k) % 4 != 0;
                labels.push(v1::Label {
                    model: model.to_owned(),
                    budget_id: format!("b-{id}"),
                    itemization_id: format!("i-{id}"),
                    label: if right { matched } else { !matched },
                    source: "test".into(),
                    ..Default::default()
                });
            }
        }
    }
    let stored = client
        .record_outcomes(v1::RecordOutcomesRequest {
            outcomes,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stored.rejected.is_empty(), "{:?}", stored.rejected);
    let stored = client
        .record_labels(v1::RecordLabelsRequest { labels })
        .await
        .unwrap()
        .into_inner();
    assert!(stored.rejected.is_empty(), "{:?}", stored.rejected);
}

async fn report(monitor: &Monitor, model: &str, extra: &[&str]) -> String {
    let mut command = Command::new(TRIAD);
    command
        .args([
            "report", "--model", model, "--since", SINCE_ARG, "--until", UNTIL_ARG,
        ])
        .args(["--monitor", &monitor.url])
        .args(extra)
        .env("RUST_LOG", "warn");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "triad report {extra:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn metrics(
    client: &mut MonitorClient<tonic::transport::Channel>,
    from_ms: i64,
    to_ms: i64,
) -> Vec<MetricPoint> {
    client
        .query_metrics(v1::QueryMetricsRequest {
            model: "m".into(),
            from_ms,
            to_ms,
            bucket: Bucket::Day.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .points
}

fn day_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

/// A CSV field as a number, `None` when empty (undefined).
fn number(text: &str) -> Option<f64> {
    (!text.is_empty()).then(|| text.parse().unwrap())
}

fn read_csv(path: &Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[..4], ["model", "version", "day", "set"]);
    assert_eq!(header.len(), 25);
    assert_eq!(header[24], "alerts_fired");
    reader.records().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_numbers_equal_query_metrics_and_every_format_holds_every_section() {
    let monitor = start_monitor().await;
    let mut client = MonitorClient::connect(monitor.url.clone()).await.unwrap();
    feed(&mut client, "m").await;

    // CSV, written with -o.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    let stdout = report(
        &monitor,
        "m",
        &["--format", "csv", "-o", path.to_str().unwrap()],
    )
    .await;
    assert!(stdout.is_empty(), "-o writes the file, not stdout");
    let rows = read_csv(&path);
    // 7 days × 2 sets, then one total row per set.
    assert_eq!(rows.len(), 7 * 2 + 2);

    let this = metrics(&mut client, FROM, UNTIL).await;
    let before = metrics(&mut client, FROM - 7 * DAY, UNTIL - 7 * DAY).await;
    assert_eq!(this.len(), 7);
    for (i, p) in this.iter().enumerate() {
        let q = &before[i];
        let day = day_text(p.bucket_start_ms);
        for (set, values, previous) in [
            (
                "realized",
                [p.precision, p.recall, p.f1, p.accuracy],
                [q.precision, q.recall, q.f1, q.accuracy],
            ),
            (
                "estimated",
                [
                    p.estimated_precision,
                    p.estimated_recall,
                    p.estimated_f1,
                    p.estimated_accuracy,
                ],
                [
                    q.estimated_precision,
                    q.estimated_recall,
                    q.estimated_f1,
                    q.estimated_accuracy,
                ],
            ),
        ] {
            let row = rows
                .iter()
                .find(|r| r[2] == *day && &r[3] == set)
                .unwrap_or_else(|| panic!("no {set} row for {day}"));
            assert_eq!(&row[0], "m");
            assert_eq!(&row[1], "");
            assert_eq!(row[4].parse::<u64>().unwrap(), p.count, "{day}");
            assert_eq!(row[5].parse::<u64>().unwrap(), p.predicted_positive);
            assert_eq!(row[6].parse::<u64>().unwrap(), p.labelled);
            if p.count > 0 {
                assert_eq!(number(&row[7]), Some(p.labelled_share));
            } else {
                assert_eq!(&row[7], "", "an empty day's labelled share is undefined");
            }
            if set == "realized" {
                let cells = [
                    p.true_positives,
                    p.false_positives,
                    p.false_negatives,
                    p.true_negatives,
                ];
                for (k, cell) in cells.iter().enumerate() {
                    assert_eq!(row[8 + k].parse::<u64>().unwrap(), *cell);
                }
            }
            for k in 0..4 {
                assert_eq!(number(&row[12 + k]), values[k], "{day} {set} {k}");
                assert_eq!(number(&row[16 + k]), previous[k], "{day} {set} prev {k}");
                let change = values[k].zip(previous[k]).map(|(a, b)| a - b);
                assert_eq!(number(&row[20 + k]), change, "{day} {set} change {k}");
            }
        }
        if i == EMPTY_DAY as usize {
            assert_eq!(p.count, 0);
            assert_eq!(p.accuracy, None);
        }
    }
    // The empty day: count 0 and every metric undefined (empty), never 0.
    let empty = rows
        .iter()
        .find(|r| r[2] == *day_text(FROM + EMPTY_DAY * DAY) && &r[3] == "realized")
        .unwrap();
    assert_eq!(&empty[4], "0");
    assert!((12..16).all(|k| empty[k].is_empty()));
    // The totals equal the summed counts.
    let total = rows
        .iter()
        .find(|r| &r[2] == "total" && &r[3] == "realized")
        .unwrap();
    let count: u64 = this.iter().map(|p| p.count).sum();
    assert_eq!(total[4].parse::<u64>().unwrap(), count);
    let (tp, fp, fn_, tn) = this.iter().fold((0, 0, 0, 0), |a, p| {
        (
            a.0 + p.true_positives,
            a.1 + p.false_positives,
            a.2 + p.false_negatives,
            a.3 + p.true_negatives,
        )
    });
    assert_eq!(
        number(&total[12]),
        Some(tp as f64 / (tp + fp) as f64),
        "total precision"
    );
    assert_eq!(
        number(&total[15]),
        Some((tp + tn) as f64 / (tp + fp + fn_ + tn) as f64),
        "total accuracy"
    );

    // The ten most confident mistakes of the window, in order.
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_mistakes(v1::ListMistakesRequest {
                model: "m".into(),
                from_ms: FROM,
                to_ms: UNTIL,
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.mistakes.into_iter().map(|m| m.outcome.unwrap()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(all.len() > 10, "the fixture needs more than ten mistakes");
    all.sort_by(|a, b| {
        let margin = |o: &v1::Outcome| (f64::from(o.score) - f64::from(o.threshold)).abs();
        margin(b)
            .total_cmp(&margin(a))
            .then(b.outcome_id.cmp(&a.outcome_id))
    });
    let expected: Vec<&str> = all[..10].iter().map(|o| o.outcome_id.as_str()).collect();

    let md = report(&monitor, "m", &["--format", "md"]).await;
    for heading in [
        "# Weekly report: m",
        "## Summary",
        "## Volume per day",
        "## Realized (from labels) quality per day",
        "## Estimated (from calibrated scores) quality per day",
        "## Trend, change points and anomalies",
        "## Alerts that fired",
        "## Drift against the reference profile",
        "## The 10 most confident mistakes",
    ] {
        assert!(md.contains(heading), "markdown lacks {heading:?}:\n{md}");
    }
    assert!(md.contains("undefined"), "the empty day shows undefined");
    // No evaluation covered the window: no alert fired in it.
    let alerts_section = section(&md, "## Alerts that fired");
    assert!(
        alerts_section.contains("None: no alert fired in the window."),
        "{alerts_section}"
    );
    assert!(rows.iter().all(|r| &r[24] == "0"), "no alert counted");
    assert!(!md.contains("NaN"), "{md}");
    let mistakes_table = md
        .split("## The 10 most confident mistakes")
        .nth(1)
        .unwrap();
    let listed: Vec<String> = mistakes_table
        .lines()
        .filter(|l| l.starts_with("| 20"))
        .map(|l| l.split(" | ").nth(5).unwrap().to_owned())
        .collect();
    assert_eq!(listed, expected);
    // A hostile vendor name cannot end a cell or start a link.
    assert!(!md.contains("[x]("), "{md}");
    assert!(md.contains("\\[x\\](https"), "{md}");
    assert!(!md.contains("<a href"), "{md}");

    let html = report(&monitor, "m", &["--format", "html"]).await;
    for needle in [
        "<!DOCTYPE html>",
        "<svg",
        "Summary",
        "Realized (from labels) quality per day",
        "Alerts that fired",
        "None: no alert fired in the window.",
        "Drift against the reference profile",
        "The 10 most confident mistakes",
        expected[0],
        &day_text(FROM),
    ] {
        assert!(html.contains(needle), "html lacks {needle:?}");
    }
    assert!(!html.contains("NaN"));
}

/// `text` escaped as the report's Markdown escapes it.
fn md_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The Markdown section under `heading`, up to the next `## `.
fn section<'a>(md: &'a str, heading: &str) -> &'a str {
    let rest = md
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no {heading:?} in:\n{md}"));
    rest.split("\n## ").next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_section_lists_exactly_the_alerts_that_fired_in_the_window() {
    let monitor = start_monitor().await;
    let mut client = MonitorClient::connect(monitor.url.clone()).await.unwrap();
    feed(&mut client, "m").await;

    // An evaluator on the monitor's database, run after each day of the
    // window closed (as the monitor's own does in real time).
    let store = triad_monitor::Store::open(&triad_monitor::StoreConfig {
        database_url: monitor.database_url.clone(),
        max_connections: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    // Floors no day of the fixture reaches, so the estimate rules fire.
    let settings = triad_monitor::AlertSettings::parse(
        "[defaults]\nmin_outcomes = 1\nestimated_precision_floor = 0.99\nestimated_recall_floor = 0.99\n",
    )
    .unwrap();
    let (alerter, deliveries) = triad_monitor::Alerter::new(
        triad_monitor::Monitor::new(store, triad_monitor::Profiles::disabled())
            .with_alert_settings(settings),
        None,
    )
    .unwrap();
    assert!(deliveries.is_none());
    for d in 1..=7 {
        alerter
            .evaluate_at(FROM + d * DAY + triad_monitor::EVALUATION_DELAY_MS + 1)
            .await
            .unwrap();
    }

    let fired = client
        .alerts(v1::AlertsRequest {
            model: "m".into(),
            history: true,
            since_ms: FROM,
            until_ms: UNTIL,
            page_size: 1000,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!fired.truncated);
    assert!(
        fired
            .alerts
            .iter()
            .any(|a| a.name.ends_with("_below_floor")),
        "the floors fire: {:?}",
        fired.alerts
    );

    // Markdown: one row per alert, in the RPC's order.
    let md = report(&monitor, "m", &["--format", "md"]).await;
    let table = section(&md, "## Alerts that fired");
    let listed: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| alert |"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    assert_eq!(listed.len(), fired.alerts.len(), "{table}");
    for (row, alert) in listed.iter().zip(&fired.alerts) {
        assert_eq!(row[0], md_escape(&alert.name), "{table}");
        assert_eq!(row[1], alert.severity);
        assert_eq!(row[2], alert.version);
        assert_eq!(row[3], md_escape(&alert.subject));
        let since = chrono::DateTime::from_timestamp_millis(alert.since_ms).unwrap();
        assert_eq!(
            row[6],
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        if alert.resolved_ms == 0 {
            assert_eq!(row[7], "still firing");
        } else {
            assert_ne!(row[7], "still firing");
        }
        assert_eq!(row[8], md_escape(&alert.link));
    }
    assert!(!table.contains("None: no alert"), "{table}");

    // HTML: every alert's name and link, escaped.
    let html = report(&monitor, "m", &["--format", "html"]).await;
    let html_section = html
        .split("<h2>Alerts that fired</h2>")
        .nth(1)
        .unwrap()
        .split("<h2>")
        .next()
        .unwrap();
    assert_eq!(
        html_section.matches("<tr><td").count(),
        fired.alerts.len(),
        "{html_section}"
    );
    for alert in &fired.alerts {
        assert!(html_section.contains(&alert.name));
        assert!(html_section.contains(&alert.link.replace('&', "&amp;")));
    }

    // CSV: the count per day and in total.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    report(
        &monitor,
        "m",
        &["--format", "csv", "-o", path.to_str().unwrap()],
    )
    .await;
    let rows = read_csv(&path);
    let total = rows.iter().find(|r| &r[2] == "total").unwrap();
    assert_eq!(total[24].parse::<usize>().unwrap(), fired.alerts.len());
    for d in 0..7 {
        let (start, end) = (FROM + d * DAY, FROM + (d + 1) * DAY);
        let expected = fired
            .alerts
            .iter()
            .filter(|a| a.since_ms < end && (a.resolved_ms == 0 || a.resolved_ms > start))
            .count();
        let row = rows.iter().find(|r| r[2] == *day_text(start)).unwrap();
        assert_eq!(row[24].parse::<usize>().unwrap(), expected, "{}", &row[2]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_is_inert_whatever_the_names_hold() {
    let monitor = start_monitor().await;
    let mut client = MonitorClient::connect(monitor.url.clone()).await.unwrap();
    feed(&mut client, HOSTILE_MODEL).await;
    let html = report(&monitor, HOSTILE_MODEL, &["--format", "html"]).await;
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{html}");
    assert!(!lower.contains("url("), "{html}");
    assert!(!lower.contains("@import"), "{html}");
    // Every tag is one the report writes, none with a src or href: text
    // from callers never holds a raw `<`.
    const TAGS: [&str; 20] = [
        "!doctype", "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table",
        "tr", "th", "td", "svg", "line", "text", "polyline", "circle", "rect",
    ];
    for tag in lower.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap();
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap();
        assert!(TAGS.contains(&name), "unexpected tag <{tag}>");
        assert!(!tag.contains("src=") && !tag.contains("href="), "<{tag}>");
    }
    // The names are there, escaped.
    assert!(html.contains("&lt;script&gt;alert(&#39;m&#39;)&lt;/script&gt;"));
    assert!(html.contains("&lt;a href=&quot;https://evil.example&quot;&gt;Vendor&lt;/a&gt;"));
    // Markdown escapes them too.
    let md = report(&monitor, HOSTILE_MODEL, &["--format", "md"]).await;
    assert!(!md.contains("<script"), "{md}");
    assert!(!md.contains("<img"), "{md}");
    assert!(md.contains("&lt;script&gt;"), "{md}");
    for line in md.lines().filter(|l| l.contains("Vendor")) {
        // The vendor's `|` is escaped: every row keeps its 11 cells.
        assert_eq!(line.matches(" | ").count(), 10, "{line}");
    }
}

#[test]
fn nonsense_windows_are_refused_before_any_call() {
    for (since, expected) in [
        ("400d", "expected 1 to 366 days"),
        ("soon", "expected a duration such as 7d"),
    ] {
        let output = Command::new(TRIAD)
            .args(["report", "--model", "m", "--since", since])
            .args(["--monitor", "http://127.0.0.1:9"])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{since}: {stderr}");
    }
}
