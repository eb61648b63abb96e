//! `triad bench --report-outcomes N`: how long `triad report` takes over a
//! week of N stored outcomes (the target: 10 000 000 in at most
//! 2 s).
//!
//! The outcomes go into a SQLite database (a temporary directory, or
//! `--report-db FILE`, kept and reused when it already holds them) through
//! the very `Monitor::record_outcomes` and `record_labels` the gRPC
//! handlers call, in batches of 10 000, spread evenly over the week
//! 2026-11-02..09 UTC: model `budget_expense_matcher` version 1, scores
//! uniform in 0..1, threshold 0.5, one outcome in ten labelled (positive
//! with probability 0.6, so about 45 % of the labelled ones are mistakes:
//! some 450 000 for `ListMistakes` to rank). To keep the file small the
//! outcomes carry no raw inputs and 4 features, except the newest 20 000,
//! which carry the shipped profile's schema hash and 35 features so that
//! `Drift` compares real vectors. A monitor is then served on that
//! database on a loopback port and the report fetched and rendered in all
//! three formats, exactly as `triad report` does, several times.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use triad_monitor::{Monitor, MonitorConfig, Profiles, Store, StoreConfig};
use triad_proto::v1::{Label, Outcome, RecordLabelsRequest, RecordOutcomesRequest};
use triad_server::Shutdown;

use super::{Format, Window};

/// 2026-11-09T00:00:00Z, the end of the measured week.
const UNTIL: i64 = 1_794_182_400_000;
const WEEK: i64 = 7 * super::window::DAY_MS;
const MODEL: &str = "budget_expense_matcher";
/// Newest outcomes stored with full feature vectors.
const FULL: u64 = 20_000;
/// Reports measured.
const RUNS: usize = 5;

/// A cheap deterministic generator (splitmix64).
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(n: u64) -> f32 {
    (mix(n) >> 40) as f32 / (1u64 << 24) as f32
}

fn outcome(n: u64, total: u64, schema: &(String, usize)) -> Outcome {
    let score = unit(n);
    let at = UNTIL - WEEK + (n as i64 * WEEK) / total as i64;
    let (schema_hash, features) = if n + FULL >= total {
        let width = schema.1 as u64;
        (
            schema.0.clone(),
            (0..width).map(|k| unit(n * 64 + k)).collect(),
        )
    } else {
        ("compact".to_owned(), vec![score, 1.0, 0.0, unit(n + 9)])
    };
    Outcome {
        outcome_id: format!("req{}:{MODEL}:1:b{}:i{n}", n / 50, n / 7),
        request_id: format!("req{}", n / 50),
        scored_at_ms: at,
        model: MODEL.into(),
        version: "1".into(),
        schema_hash,
        budget_id: format!("b{}", n / 7),
        itemization_id: format!("i{n}"),
        score,
        threshold: 0.5,
        matched: score >= 0.5,
        latency_ms: 4.0,
        features,
        ..Default::default()
    }
}

/// The shipped profile's schema hash and feature count.
fn schema(models_dir: &std::path::Path) -> anyhow::Result<(String, usize)> {
    let path = models_dir.join(MODEL).join("1").join("profile.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let profile: serde_json::Value = serde_json::from_str(&text)?;
    let hash = profile["schema_hash"]
        .as_str()
        .context("profile.json has no schema_hash")?
        .to_owned();
    let width = profile["features"]
        .as_array()
        .context("profile.json has no features")?
        .len();
    Ok((hash, width))
}

async fn fill(monitor: &Monitor, total: u64, schema: &(String, usize)) -> anyhow::Result<()> {
    let started = Instant::now();
    let batch = 10_000_u64;
    let mut n = 0;
    while n < total {
        let end = (n + batch).min(total);
        let outcomes = (n..end).map(|k| outcome(k, total, schema)).collect();
        let request = RecordOutcomesRequest {
            outcomes,
            ..Default::default()
        };
        monitor.record_outcomes(&request, 0).await?;
        let labels = (n..end)
            .filter(|k| k.is_multiple_of(10))
            .map(|k| Label {
                model: MODEL.into(),
                budget_id: format!("b{}", k / 7),
                itemization_id: format!("i{k}"),
                label: unit(k + 77) < 0.6,
                source: "bench".into(),
                ..Default::default()
            })
            .collect();
        monitor
            .record_labels(&RecordLabelsRequest { labels })
            .await?;
        n = end;
        if n % 1_000_000 == 0 {
            eprintln!(
                "  {n} outcomes stored, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "stored {total} outcomes and {} labels in {:.1} s",
        total / 10,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Fills (unless already filled), serves and measures.
pub(crate) async fn run(
    total: u64,
    database: Option<PathBuf>,
    models_dir: PathBuf,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (FULL..=100_000_000).contains(&total),
        "--report-outcomes is {total}: expected {FULL} to 100000000"
    );
    let temporary = tempfile_dir()?;
    let path = database.unwrap_or_else(|| temporary.join("monitor.db"));
    let database_url = format!("sqlite://{}", path.display());
    let store_config = StoreConfig {
        database_url: database_url.clone(),
        ..StoreConfig::default()
    };
    let schema = schema(&models_dir)?;
    {
        let store = Store::open(&store_config).await?;
        let monitor = Monitor::new(store, Profiles::new(&models_dir));
        let held = monitor
            .query_metrics(&triad_proto::v1::QueryMetricsRequest {
                model: MODEL.into(),
                ..Default::default()
            })
            .await?
            .points
            .iter()
            .map(|p| p.count)
            .sum::<u64>();
        if held == 0 {
            fill(&monitor, total, &schema).await?;
        } else {
            anyhow::ensure!(
                held == total,
                "{} holds {held} outcomes, not {total}: remove it or pass the same count",
                path.display()
            );
            eprintln!("{} already holds {held} outcomes", path.display());
        }
        monitor.close().await;
    }

    let mut services = Shutdown::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = MonitorConfig {
        models_dir: models_dir.clone(),
        ..MonitorConfig::default()
    };
    config.store = store_config;
    services.spawn(triad_monitor::serve(
        listener,
        None,
        config,
        services.signalled(),
    ));
    let url = format!("http://{addr}");
    triad_server::healthcheck(&url, "", Duration::from_secs(30))
        .await
        .context("monitor did not become healthy")?;
    let channel = triad_server::client::connect(&url, &triad_server::ClientConfig::default())?;
    let mut client = triad_proto::v1::monitor_client::MonitorClient::new(channel);
    let window = Window {
        from_ms: UNTIL - WEEK,
        until_ms: UNTIL,
    };
    let mut times = Vec::new();
    for run in 0..RUNS {
        let started = Instant::now();
        let report = super::fetch(&mut client, MODEL, None, window, UNTIL).await?;
        let fetched = started.elapsed();
        let mut bytes = 0;
        for format in [Format::Md, Format::Csv, Format::Html] {
            bytes += report.render(format)?.len();
        }
        let total_time = started.elapsed();
        let counted: u64 = report.days.iter().map(|d| d.this.count).sum();
        anyhow::ensure!(counted == total, "the report counted {counted} outcomes");
        anyhow::ensure!(report.mistakes.len() == super::MISTAKES as usize);
        eprintln!(
            "run {run}: fetched in {:.1} ms, rendered (all three formats, {bytes} bytes) in {:.1} ms; drift available: {}",
            fetched.as_secs_f64() * 1e3,
            (total_time - fetched).as_secs_f64() * 1e3,
            report.drift.available
        );
        times.push(total_time);
    }
    // Where the time goes: each call of the report once more, alone.
    let started = Instant::now();
    client
        .query_metrics(triad_proto::v1::QueryMetricsRequest {
            model: MODEL.into(),
            from_ms: window.from_ms,
            to_ms: window.until_ms,
            bucket: triad_proto::v1::Bucket::Day.into(),
            ..Default::default()
        })
        .await?;
    let metrics = started.elapsed();
    let started = Instant::now();
    client
        .drift(triad_proto::v1::DriftRequest {
            model: MODEL.into(),
            from_ms: window.from_ms,
            to_ms: window.until_ms,
            ..Default::default()
        })
        .await?;
    let drift = started.elapsed();
    let started = Instant::now();
    client
        .list_mistakes(triad_proto::v1::ListMistakesRequest {
            model: MODEL.into(),
            from_ms: window.from_ms,
            to_ms: window.until_ms,
            page_size: super::MISTAKES,
            order: triad_proto::v1::list_mistakes_request::Order::MostConfident.into(),
            ..Default::default()
        })
        .await?;
    let mistakes = started.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "one QueryMetrics {:.1} ms (the report makes two), Drift {:.1} ms, ListMistakes most confident {:.1} ms",
        ms(metrics),
        ms(drift),
        ms(mistakes)
    );
    times.sort();
    println!(
        "triad report over a week of {total} outcomes ({RUNS} runs, SQLite, loopback gRPC): min {:.0} ms, median {:.0} ms, max {:.0} ms (target 2000 ms)",
        times[0].as_secs_f64() * 1e3,
        times[RUNS / 2].as_secs_f64() * 1e3,
        times[RUNS - 1].as_secs_f64() * 1e3
    );
    services.stop().await?;
    let _ = std::fs::remove_dir_all(&temporary);
    Ok(())
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("triad-report-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
