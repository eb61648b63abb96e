//! The monitor's HTTP port end to end: a real monitor (gRPC and HTTP on
//! `127.0.0.1:0`, a SQLite file in a temporary directory) fed through the
//! gRPC API, then its dashboard, `/health` and `/metrics` read over HTTP.
//! `/metrics` goes through `promtool check metrics` and the model page
//! through headless Chromium when they are on PATH (Debian's `prometheus`
//! and `chromium` packages; both required when `CI=true`, otherwise the
//! check says it was skipped).

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use triad_monitor::{MonitorConfig, StoreConfig};
use triad_proto::v1::monitor_client::MonitorClient;
use triad_proto::v1::{Bucket, Outcome, QueryEventsRequest, QueryMetricsRequest};
use triad_test_support::tools::{promtool_check, tool_available};
use triad_test_support::{get, post, wait_healthy};

use crate::support::{DAY, label, labels, outcome, postgres_url, record, with_database};

/// A running monitor; [`Monitor::stop`] stops it and waits.
struct Monitor {
    grpc: String,
    http: SocketAddr,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    db: Db,
}

/// Where a test monitor's data lives, removed when it stops.
enum Db {
    /// Kept until the monitor stops.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin: String,
        name: String,
    },
}

impl Monitor {
    /// A monitor over a SQLite file in a temporary directory.
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/monitor.db", dir.path().display());
        Self::start_on(url, Db::Sqlite { _dir: dir }).await
    }

    /// A monitor over a new database of the PostgreSQL server at `admin`,
    /// dropped by [`Monitor::stop`].
    async fn start_postgres(admin: String) -> Self {
        sqlx::any::install_default_drivers();
        let name = format!("triad_dashboard_test_{}_{}", std::process::id(), now_ms());
        let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let url = with_database(&admin, &name);
        Self::start_on(url, Db::Postgres { admin, name }).await
    }

    async fn start_on(database_url: String, db: Db) -> Self {
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let config = MonitorConfig {
            addr: grpc_addr,
            http_addr,
            store: StoreConfig {
                database_url,
                max_connections: 4,
                ..StoreConfig::default()
            },
            ..MonitorConfig::default()
        };
        let (stop, mut stopped) = watch::channel(false);
        let server = tokio::spawn(async move {
            triad_monitor::serve(grpc, Some(http), config, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
            .unwrap();
        });
        let grpc = format!("http://{grpc_addr}");
        wait_healthy(&grpc).await;
        Self {
            grpc,
            http: http_addr,
            stop,
            server,
            db,
        }
    }

    async fn client(&self) -> MonitorClient<tonic::transport::Channel> {
        MonitorClient::connect(self.grpc.clone()).await.unwrap()
    }

    async fn get(&self, path: &str) -> (u16, String) {
        get(self.http, path).await
    }

    /// Stops both servers; fails if they do not stop within 10 s.
    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("the monitor stops")
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(self.http).await.is_err(),
            "the HTTP port is closed"
        );
        if let Db::Postgres { admin, name } = &self.db {
            let pool = sqlx::AnyPool::connect(admin).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An outcome of `model` with a pair of its own.
fn scored(model: &str, id: &str, at: i64, matched: bool) -> Outcome {
    let mut o = outcome(id, at, (&format!("b-{id}"), &format!("i-{id}")), matched);
    o.model = model.to_owned();
    o
}

fn label_of(model: &str, id: &str, value: bool) -> triad_proto::v1::Label {
    let mut l = label((&format!("b-{id}"), &format!("i-{id}")), value);
    l.model = model.to_owned();
    l
}

const VENDOR: &str = "<script>alert(1)</script> & Sons";

/// Six days of `model` (day 0 is today), four outcomes a day: `a`
/// matched and right, `b` matched (wrong on days 1 and 3), `c` not matched
/// (wrong on day 2), `d` not matched and never labelled. Mistakes, newest
/// first: `1b`, `2c`, `3b`; `1b`'s vendor holds a script tag.
async fn six_days(monitor: &Monitor, model: &str) {
    let mut client = monitor.client().await;
    let now = now_ms();
    let mut outcomes = Vec::new();
    let mut truth = Vec::new();
    for day in 0..6_i64 {
        let at = now - day * DAY - 60_000;
        for (suffix, matched, label) in [
            ("a", true, Some(true)),
            ("b", true, Some(day != 1 && day != 3)),
            ("c", false, Some(day == 2)),
            ("d", false, None),
        ] {
            let id = format!("{model}-{day}{suffix}");
            let mut o = scored(model, &id, at, matched);
            if id.ends_with("-1b")
                && let Some(item) = o.line_item.as_mut()
            {
                item.vendor_name_expense = Some(VENDOR.into());
            }
            outcomes.push(o);
            if let Some(value) = label {
                truth.push(label_of(model, &id, value));
            }
        }
    }
    let stored = record(&mut client, outcomes.clone()).await;
    assert_eq!(stored.stored, 24);
    // Sent again: all duplicates.
    assert_eq!(record(&mut client, outcomes).await.duplicates, 24);
    assert_eq!(labels(&mut client, truth).await.stored, 18);
}

/// Thirty days of `model`, 18 outcomes a day with varied scores: 10
/// matched (a few false positives, eight on day 8: a dip in precision
/// that the EWMA rule flags), 6 not matched (one false negative every
/// third day), 2 never labelled. Day 1's first false positive has a script
/// tag in its vendor.
async fn month(monitor: &Monitor, model: &str) {
    let mut client = monitor.client().await;
    let now = now_ms();
    let (mut outcomes, mut truth) = (Vec::new(), Vec::new());
    for day in 0..30_i64 {
        let at = now - day * DAY - 60_000;
        let fp = if day == 8 {
            8
        } else {
            [1, 2, 1, 2, 3, 1, 2, 1, 2, 2][day as usize % 10]
        };
        for k in 0..18_i64 {
            let matched = k < 10;
            let id = format!("{model}-{day}-{k}");
            let mut o = scored(model, &id, at - k * 1_000, matched);
            o.score = if matched {
                0.52 + 0.045 * k as f32
            } else {
                0.03 + 0.05 * (k - 10) as f32
            };
            let label = match k {
                _ if matched => Some(k >= fp),
                10 => Some(day % 3 == 0),
                16 | 17 => None,
                _ => Some(false),
            };
            if day == 1
                && k == 0
                && let Some(item) = o.line_item.as_mut()
            {
                item.vendor_name_expense = Some(VENDOR.into());
            }
            outcomes.push(o);
            if let Some(value) = label {
                truth.push(label_of(model, &id, value));
            }
        }
    }
    assert_eq!(record(&mut client, outcomes).await.stored, 540);
    assert_eq!(labels(&mut client, truth).await.stored, 480);
}

/// The part of `html` from the element with `id="<id>"` to the next
/// section.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let rest = &html[start..];
    let end = rest.find("</section>").unwrap_or(rest.len());
    &rest[..end]
}

/// The number of `x,y` points of the first polyline with
/// `data-series="<series>"` in `html`.
fn polyline_points(html: &str, series: &str) -> usize {
    let marker = format!("data-series=\"{series}\" points=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {series} polyline in {html}"))
        + marker.len();
    let points = &html[start..start + html[start..].find('"').unwrap()];
    points.split(' ').filter(|p| p.contains(',')).count()
}

#[tokio::test]
async fn the_dashboard_shows_a_model_and_metrics_pass_promtool() {
    // A scrape resets the process-wide quality gauges to its own store's.
    let _process = triad_test_support::process_wide_state().await;
    let monitor = Monitor::start().await;
    dashboard_scenario(&monitor).await;
    metrics_scenario(&monitor).await;
    monitor.stop().await;
}

/// The dashboard's queries on PostgreSQL (when `TRIAD_TEST_POSTGRES_URL`
/// names a server; required under `CI=true`). `/metrics` is read by the
/// SQLite test only: the gauges are process-wide and set at scrape time.
#[tokio::test]
async fn the_dashboard_reads_postgres_too() {
    let Some(url) = postgres_url() else {
        return;
    };
    let monitor = Monitor::start_postgres(url).await;
    dashboard_scenario(&monitor).await;
    monitor.stop().await;
}

/// Six days of one model and one unlabelled model, then every page.
async fn dashboard_scenario(monitor: &Monitor) {
    let (status, home) = monitor.get("/").await;
    assert_eq!(status, 200);
    assert!(home.contains("no data yet"), "{home}");
    let (status, health) = monitor.get("/health").await;
    assert_eq!((status, health.as_str()), (200, "ok\n"));

    six_days(monitor, "matcher").await;
    // A model with outcomes and no label yet.
    let mut client = monitor.client().await;
    record(
        &mut client,
        vec![
            scored("fresh", "fresh-1", now_ms() - 60_000, true),
            scored("fresh", "fresh-2", now_ms() - 60_000, false),
        ],
    )
    .await;

    let (status, home) = monitor.get("/").await;
    assert_eq!(status, 200);
    assert!(
        home.contains(r#"<a href="/models/matcher?days=30&amp;bucket=day">matcher</a>"#),
        "{home}"
    );
    assert!(home.contains(r#"<tr data-model="fresh">"#), "{home}");
    assert!(!home.contains("no data yet"));

    let (status, page) = monitor.get("/models/matcher").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(r#"<h1 id="model-name">matcher</h1>"#));

    // Precision and recall: one point per day, an EWMA line, a legend.
    let pr = section(&page, "precision-recall");
    let precision = &pr[..pr.find(r#"<h3 id="recall">"#).unwrap()];
    let recall = &pr[pr.find(r#"<h3 id="recall">"#).unwrap()..];
    // Estimated values are drawn exactly when the points carry them.
    let points = client
        .query_metrics(QueryMetricsRequest {
            model: "matcher".into(),
            from_ms: now_ms() - 30 * DAY,
            ..QueryMetricsRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(points.len(), 6);
    let estimated = [
        points
            .iter()
            .filter(|p| p.estimated_precision.is_some())
            .count(),
        points
            .iter()
            .filter(|p| p.estimated_recall.is_some())
            .count(),
    ];
    for (chart, estimated) in [precision, recall].into_iter().zip(estimated) {
        assert!(chart.contains("<svg"), "{chart}");
        assert_eq!(polyline_points(chart, "realized"), 6, "{chart}");
        assert_eq!(polyline_points(chart, "ewma"), 6, "{chart}");
        assert_eq!(chart.matches(r#"<circle class="pt realized""#).count(), 6);
        assert_eq!(
            chart.matches(r#"<circle class="pt estimated""#).count(),
            estimated
        );
        if estimated == 6 {
            assert_eq!(polyline_points(chart, "estimated"), 6, "{chart}");
        }
    }
    assert!(pr.contains("EWMA, span 5"));
    assert!(pr.contains("robust standard deviations"));

    // Volume: 3 labelled and 1 unlabelled outcome a day.
    let volume = section(&page, "volume");
    assert_eq!(volume.matches(r#"<rect class="bar labelled""#).count(), 6);
    assert_eq!(volume.matches(r#"<rect class="bar unlabelled""#).count(), 6);
    assert!(volume.contains("24 outcomes in 6 buckets, 18 labelled (75.0%)"));

    // Scores 0.8 (matched) and 0.2: bins 16 and 4 of 20.
    let scores = section(&page, "scores");
    let bins: Vec<&str> = scores
        .match_indices("data-bin=\"")
        .map(|(i, m)| {
            let rest = &scores[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert!(!bins.is_empty());
    assert!(bins.iter().all(|b| *b == "4" || *b == "16"), "{bins:?}");
    let counted: u64 = scores
        .match_indices("data-count=\"")
        .map(|(i, m)| {
            let rest = &scores[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(counted, 24);
    assert!(scores.contains("threshold 0.5"));

    // Null rates: 17 fields; the outcomes lack two budget fields (one
    // absent, one blank) and one line-item field.
    let nulls = section(&page, "null-rates");
    assert_eq!(nulls.matches("<tr data-field=").count(), 17);
    for (field, rate) in [
        ("travel_vendor_receipts", "100.0%"),
        ("purchase_vendor_receipts", "100.0%"),
        ("expense_type_name_expense", "100.0%"),
        ("vendor_name_expense", "0.0%"),
        ("budget_id", "0.0%"),
    ] {
        let start = nulls.find(&format!("data-field=\"{field}\"")).unwrap();
        let row = &nulls[start..start + nulls[start..].find("</tr>").unwrap()];
        assert!(row.contains(&format!(">{rate}<")), "{field}: {row}");
    }

    // Mistakes, newest first, with their inputs; the vendor is escaped.
    let mistakes = section(&page, "mistakes");
    let ids: Vec<&str> = mistakes
        .match_indices("<tr data-outcome-id=\"")
        .map(|(i, m)| {
            let rest = &mistakes[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(ids, ["matcher-1b", "matcher-2c", "matcher-3b"]);
    assert!(mistakes.contains("false positive") && mistakes.contains("false negative"));
    assert!(mistakes.contains("budget_price_budget:</span> 1200.50"));
    assert!(mistakes.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons"));
    assert!(!page.contains("<script"), "no script tag on the page");

    // No reference profile in this monitor's models directory.
    assert!(section(&page, "drift").contains("drift not available"));

    // Week buckets: one or two points; a version filter.
    let (status, weekly) = monitor
        .get("/models/matcher?bucket=week&days=14&version=1")
        .await;
    assert_eq!(status, 200, "{weekly}");
    assert!(weekly.contains("Version 1"));

    // No labels yet: clear messages rather than failures.
    let (status, fresh) = monitor.get("/models/fresh").await;
    assert_eq!(status, 200, "{fresh}");
    assert!(section(&fresh, "precision-recall").contains("no labels yet"));
    assert!(section(&fresh, "mistakes").contains("no labels yet"));
    assert!(section(&fresh, "volume").contains("<svg"));

    // Errors.
    let (status, body) = monitor.get("/models/nope").await;
    assert_eq!(status, 404);
    assert!(body.contains("has no outcome"), "{body}");
    let (status, _) = monitor.get("/models/matcher?version=9").await;
    assert_eq!(status, 404);
    let (status, body) = monitor.get("/models/matcher?bucket=month").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("bucket is &quot;month&quot;: expected hour, day or week"),
        "{body}"
    );
    for bad in ["days=0", "days=ten", "colour=red"] {
        let (status, _) = monitor.get(&format!("/models/matcher?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }

    // The pages reload themselves only when asked to, within bounds, and
    // their links keep asking.
    let reloads = |page: &str| page.contains(r#"<meta http-equiv="refresh" content="60">"#);
    let (status, page) = monitor.get("/models/matcher?refresh=60").await;
    assert_eq!(status, 200, "{page}");
    assert!(reloads(&page), "{page}");
    assert!(
        page.contains(r#"<input type="hidden" name="refresh" value="60">"#),
        "the form keeps the refresh: {page}"
    );
    let (_, page) = monitor.get("/models/matcher").await;
    assert!(!page.contains("http-equiv=\"refresh\""), "{page}");
    assert!(page.contains("no business event in this range"), "{page}");
    let (status, page) = monitor.get("/?refresh=60").await;
    assert_eq!(status, 200, "{page}");
    assert!(reloads(&page), "{page}");
    assert!(
        page.contains("refresh=60\""),
        "model links keep the refresh: {page}"
    );
    for bad in ["refresh=0", "refresh=4", "refresh=3601", "refresh=soon"] {
        let (status, body) = monitor.get(&format!("/models/matcher?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            body.contains("expected a whole number of seconds from 5 to 3600"),
            "{body}"
        );
        let (status, _) = monitor.get(&format!("/?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }
}

/// The "Threshold trade-offs" section: the window's precision-recall
/// curve with the current and F1-best thresholds marked, the current row
/// equal to the realized counts (every score is on the side of 0.5 its
/// prediction says), `?threshold=0.4` answered next to it and bad values
/// refused with 400.
#[tokio::test]
async fn the_threshold_section_answers_what_if() {
    let monitor = Monitor::start().await;
    month(&monitor, "traded").await;
    let mut client = monitor.client().await;
    let [count, labelled, tp, fp, fn_, _] = crate::support::totals(&mut client, "traded").await;
    assert_eq!((count, labelled), (540, 480));

    let (status, page) = monitor.get("/models/traded").await;
    assert_eq!(status, 200, "{page}");
    let trade = section(&page, "threshold");
    assert!(trade.contains("<h2>Threshold trade-offs</h2>"), "{trade}");
    assert!(polyline_points(trade, "curve") > 10, "{trade}");
    assert!(
        trade.contains(r#"data-mark="ewma""#),
        "current marked: {trade}"
    );
    assert!(
        trade.contains(r#"data-mark="share""#),
        "best F1 marked: {trade}"
    );
    assert!(!trade.contains(r#"data-mark="estimated""#), "{trade}");
    let current = "<tr><td>current</td><td class=\"num\">0.5</td><td class=\"num\">300</td>";
    assert!(trade.contains(current), "{trade}");
    assert!(
        trade.contains(&format!(
            "<td class=\"num\">{tp}</td><td class=\"num\">{fp}</td><td class=\"num\">{fn_}</td></tr>"
        )),
        "the current row is the realized confusion: {trade}"
    );
    assert!(trade.contains("<td>best F1</td>"), "{trade}");
    assert!(trade.contains("540 outcomes"), "{trade}");

    let (status, page) = monitor.get("/models/traded?days=30&threshold=0.4").await;
    assert_eq!(status, 200, "{page}");
    let trade = section(&page, "threshold");
    assert!(
        trade.contains("<tr><td>asked</td><td class=\"num\">0.4</td>"),
        "{trade}"
    );
    assert!(trade.contains(r#"data-mark="estimated""#), "{trade}");
    assert!(
        trade.contains(r#"name="threshold" type="number""#),
        "{trade}"
    );
    assert!(trade.contains(r#"value="0.4""#), "{trade}");

    for bad in ["1.5", "-0.1", "x", "NaN", "inf", ""] {
        let (status, body) = monitor
            .get(&format!("/models/traded?threshold={bad}"))
            .await;
        assert_eq!(status, 400, "{bad}");
        assert!(body.contains("expected a number from 0 to 1"), "{body}");
    }

    // Outcomes without labels: no curve, and why.
    record(
        &mut client,
        vec![scored("unlabelled", "u-1", now_ms() - 60_000, true)],
    )
    .await;
    let (status, page) = monitor.get("/models/unlabelled").await;
    assert_eq!(status, 200);
    assert!(
        section(&page, "threshold").contains("no labels yet: the curve needs labelled outcomes"),
        "{page}"
    );
    monitor.stop().await;
}

/// `POST /events` stores business events as `RecordEvents` does: a bad
/// event is rejected next to the stored ones, a body that is not the
/// request's JSON (or names an unknown field) is a 400, and what was
/// stored is what `QueryEvents` reads.
#[tokio::test]
async fn business_events_come_in_over_http() {
    let monitor = Monitor::start().await;
    let (status, body) = post(
        monitor.http,
        "/events",
        r#"{"events": [
            {"name": "expense_matched", "duration_ms": 1000},
            {"name": "expense_matched", "duration_ms": 3000, "occurred_at_ms": 0, "request_id": "r-1"},
            {"name": "expense_matched", "duration_ms": -1}
        ]}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["stored"], 2, "{body}");
    assert_eq!(answer["rejected"][0]["index"], 2, "{body}");
    assert!(
        answer["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("duration_ms is -1"),
        "{body}"
    );

    for bad in [
        "not json",
        r#"{"events": [{"name": "x"}]}"#,
        r#"{"events": [{"name": "x", "duration_ms": 1, "colour": "red"}]}"#,
        r#"{"event": []}"#,
    ] {
        let (status, body) = post(monitor.http, "/events", bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            answer["error"].as_str().unwrap().contains("duration_ms"),
            "{body}"
        );
    }

    // A body over 2 MiB is refused whole, before anything is stored.
    let event = r#"{"name": "expense_matched", "duration_ms": 1},"#;
    let huge = format!(
        r#"{{"events": [{}{{"name": "expense_matched", "duration_ms": 1}}]}}"#,
        event.repeat((2 << 20) / event.len() + 1)
    );
    let (status, body) = post(monitor.http, "/events", &huge).await;
    assert_eq!(status, 413, "{body}");

    // A body not sent as JSON is refused, as a cross-origin page would
    // send it.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = r#"{"events": [{"name": "expense_matched", "duration_ms": 1}]}"#;
        let mut stream = tokio::net::TcpStream::connect(monitor.http).await.unwrap();
        let request = format!(
            "POST /events HTTP/1.1\r\nhost: localhost\r\ncontent-type: text/plain\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
        assert!(answer.contains("application/json"), "{answer}");
    }

    let points = monitor
        .client()
        .await
        .query_events(QueryEventsRequest {
            name: "expense_matched".into(),
            bucket: Bucket::Day.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(points.iter().map(|p| p.count).sum::<u64>(), 2);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].median_ms, 2000.0);

    // A model page charts them next to precision and recall.
    six_days(&monitor, "matcher").await;
    let (status, page) = monitor.get("/models/matcher?days=7").await;
    assert_eq!(status, 200, "{page}");
    let events = &page[page
        .find(r#"<section id="events">"#)
        .expect("an events section")..];
    let events = &events[..events.find("</section>").unwrap()];
    assert!(
        events.contains(r#"data-event="expense_matched""#),
        "{events}"
    );
    assert!(events.contains(r#"data-series="median""#), "{events}");
    assert!(events.contains(r#"data-series="p90""#), "{events}");
    assert!(events.contains("median duration (ms): 2000"), "{events}");
    assert!(events.contains("2 events in this range"), "{events}");
    monitor.stop().await;
}

/// `/metrics` after [`dashboard_scenario`].
async fn metrics_scenario(monitor: &Monitor) {
    let (status, text) = monitor.get("/metrics").await;
    assert_eq!(status, 200);
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{series} ")))
            .unwrap_or_else(|| panic!("no {series} in {text}"))
            .trim()
            .parse()
            .unwrap()
    };
    // Process-wide counters: other tests of this binary may add to them.
    assert!(value(r#"triad_monitor_outcomes_recorded_total{model="matcher"}"#) >= 24.0);
    assert!(value("triad_monitor_outcomes_duplicate_total") >= 24.0);
    assert!(value("triad_monitor_labels_received_total") >= 18.0);
    // Days 0-5: TP 10, FP 2, FN 1.
    let precision = value(r#"triad_monitor_precision{model="matcher"}"#);
    assert!((precision - 10.0 / 12.0).abs() < 1e-12, "{precision}");
    let recall = value(r#"triad_monitor_recall{model="matcher"}"#);
    assert!((recall - 10.0 / 11.0).abs() < 1e-12, "{recall}");
    assert!(!text.contains(r#"triad_monitor_precision{model="fresh"}"#));
    assert!(text.contains("triad_grpc_server_requests_total{"));
    promtool_check(&text);
}

/// How long one Chromium run may take.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs headless Chromium on `url` with `args`, loopback only, in a
/// process group of its own that is killed if it outlives
/// [`CHROMIUM_TIMEOUT`] (and swept once it exits); returns stdout.
fn chromium(profile: &Path, url: &str, args: &[&str]) -> String {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-sync",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("chromium starts");
    let group = child.id();
    let kill_group = || {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .stderr(Stdio::null())
            .status();
    };
    let started = Instant::now();
    // Drain stdout on a thread so a large DOM cannot block the child.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        out
    });
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut out);
        out
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            kill_group();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    kill_group();
    let out = reader.join().unwrap();
    let err = errors.join().unwrap();
    assert!(status.success(), "chromium failed: {status}\n{err}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_renders_the_charts() {
    if !tool_available("chromium", "chromium check", "apt-get install chromium") {
        return;
    }
    let monitor = Monitor::start().await;
    month(&monitor, "rendered").await;
    let url = format!("http://{}/models/rendered", monitor.http);
    let work = tempfile::tempdir().unwrap();
    let screenshot = work.path().join("model.png");
    // TRIAD_DASHBOARD_SCREENSHOT_DIR: keep the screenshot, plus one of the
    // whole page, to look at.
    let keep = std::env::var_os("TRIAD_DASHBOARD_SCREENSHOT_DIR").map(std::path::PathBuf::from);
    let (profile, shot, full) = (
        work.path().join("profile"),
        screenshot.clone(),
        keep.clone(),
    );
    let home = format!("http://{}/", monitor.http);
    let dom = tokio::task::spawn_blocking(move || {
        let dom = chromium(&profile, &url, &["--dump-dom"]);
        let screenshot = |url: &str, path: &Path, size: &str| {
            chromium(
                &profile,
                url,
                &[
                    &format!("--screenshot={}", path.display()),
                    &format!("--window-size={size}"),
                    "--hide-scrollbars",
                ],
            );
        };
        screenshot(&url, &shot, "1280,2000");
        if let Some(dir) = full {
            screenshot(&url, &dir.join("model-full.png"), "1280,5200");
            screenshot(&home, &dir.join("index.png"), "1280,400");
        }
        dom
    })
    .await
    .unwrap();

    assert!(
        dom.contains(r#"<h1 id="model-name">rendered</h1>"#),
        "{dom}"
    );
    let charts = dom
        .matches("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart")
        .count();
    assert_eq!(
        charts, 5,
        "precision, recall, precision-recall curve, volume, scores: {dom}"
    );
    assert!(dom.contains("data-series=\"curve\""), "{dom}");
    assert!(dom.contains("<polyline class=\"line realized\""));
    assert!(dom.contains("<polygon class=\"band\""), "the EWMA band");
    assert!(
        dom.contains("<circle class=\"anomaly\""),
        "day 8 is flagged"
    );
    assert!(dom.contains("<rect class=\"bar labelled\""));
    assert!(dom.contains("<rect class=\"bar positive\" data-bin="));
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!dom.contains("<script"));

    let png = std::fs::read(&screenshot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2000));
    assert!(
        png.len() > 30_000,
        "a near-empty screenshot: {} bytes",
        png.len()
    );
    if let Some(dir) = keep {
        let _ = std::fs::copy(&screenshot, dir.join("model.png"));
    }
    monitor.stop().await;
}
