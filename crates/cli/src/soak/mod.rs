//! `triad soak`: the hostile soak test (`.ci/run` runs it after the tests).
//!
//! It starts the real service binaries — `triad-preprocess`, `triad-score`
//! and `triad-monitor`, found beside this executable — on loopback ports,
//! with tokens on every port, the monitor on SQLite and the scorer's spool
//! on disk, then:
//!
//! 1. **One hostile request at a time** ([`memory_shapes`]): bodies of at
//!    most 4 MiB built to make the scorer allocate (one huge field, long
//!    texts, many items, many pairs with every field at its bound, a
//!    product of pairs past the admission limit, two models). Around each,
//!    the scorer's peak RSS is reset (`/proc/<pid>/clear_refs`) and read
//!    back (`VmHWM`) once the monitor holds the request's outcomes: the
//!    growth must stay under `--max-request-rss-mib`.
//! 2. **Mixed traffic** for `--seconds`: valid callers (gRPC `Score` and
//!    the seed's HTTP contract, several sharing an `x-request-id`) beside
//!    hostile ones ([`Hostile`]: future and ancient times, colliding and odd
//!    ids, repeated, too many and oversized model names, malformed
//!    matrices and bodies), unauthenticated callers inventing a new path
//!    each call, and hundreds of connections held idle or half-sent.
//! 3. **Checks**, every one run and reported: every valid call answered OK
//!    and every hostile one with its expected answer; every answered
//!    request's outcomes stored in the monitor exactly once and nothing
//!    stored for a refused one; no outcome dropped; no `panicked` in any
//!    log; the scorer's peak RSS under `--max-rss-mib`; each `/metrics`
//!    closed without the read token, under `--max-metrics-kib` and free of
//!    anything a caller made up; every idle connection closed by the
//!    server; every service exiting 0 on SIGTERM; no `ERROR` line in any
//!    log (a caller's mistakes are not the server's errors).
//!
//! The command fails if any check did.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rand::{Rng as _, SeedableRng as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tonic::Code;
use tonic::transport::Channel;
use triad_features::{RawBudget, RawLineItem, RawRequest};
use triad_proto::v1::{self, scorer_client::ScorerClient};

use crate::http1::HttpConnection;

mod calls;
mod fleet;
mod hostile;
mod idle;
mod report;
mod shapes;

use calls::*;
use fleet::*;
use hostile::*;
use idle::*;
use report::*;
use shapes::*;

/// The model the seed's HTTP contract serves.
const MODEL: &str = "budget_expense_matcher";
/// A second model, so one request can run two.
const SECOND_MODEL: &str = "out_of_policy";
const HTTP_PATH: &str = "/budget_expense_matcher/";
/// Longest any single call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between the calls of one valid caller: each sends at most 40 a
/// second, so the monitor keeps up and the spool never fills (a full spool
/// refuses requests by design; `docs/operations.md`).
const VALID_PACE: Duration = Duration::from_millis(25);
/// Pause between the calls of one hostile or unauthenticated caller.
const HOSTILE_PACE: Duration = Duration::from_millis(50);
/// Marks everything a soak caller makes up (paths, ids, model names): none
/// of it may show in `/metrics`.
const MARK: &str = "soakmark";

#[derive(Args)]
pub(crate) struct SoakArgs {
    /// Seconds of mixed valid and hostile traffic.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Directory of the service binaries (default: this executable's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Model repository the scorer serves.
    #[arg(long, default_value = "models")]
    models_dir: PathBuf,
    /// Most the scorer's RSS may grow while it handles one request of at
    /// most 4 MiB, in MiB.
    #[arg(long, default_value_t = 64)]
    max_request_rss_mib: u64,
    /// Most the scorer's RSS may ever reach, in MiB.
    #[arg(long, default_value_t = 512)]
    max_rss_mib: u64,
    /// Largest `/metrics` answer of any service, in KiB.
    #[arg(long, default_value_t = 256)]
    max_metrics_kib: u64,
    /// Also send the heaviest single requests (pair products with every
    /// field at its bound, in the tens of thousands): minutes on debug
    /// builds, for measuring release ones.
    #[arg(long)]
    heavy: bool,
    /// The scorer's `--max-request-bytes` (default: its own default), to
    /// see what a different bound admits and costs.
    #[arg(long)]
    max_request_bytes: Option<u64>,
    /// Keep the work directory (logs, spool, monitor database).
    #[arg(long)]
    keep: bool,
}

pub(crate) async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this executable has no directory")?
            .to_path_buf(),
    };
    let models_dir = std::fs::canonicalize(&args.models_dir)
        .with_context(|| format!("no model repository at {}", args.models_dir.display()))?;
    let dir = std::env::temp_dir().join(format!("triad-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    println!(
        "triad soak: services from {}, work directory {}",
        bin_dir.display(),
        dir.display()
    );

    let mut report = Report::default();
    let mut fleet = Fleet::start(&bin_dir, &dir, &models_dir, args.max_request_bytes)?;
    let result = soak(&args, &fleet, &mut report).await;
    if let Err(error) = &result {
        report.fail(format!("the soak stopped early: {error:#}"));
    }
    for (name, status) in fleet.stop() {
        report.check(
            status.as_ref().is_ok_and(|s| s.success()),
            format!("{name} exits 0 on SIGTERM ({status:?})"),
        );
    }
    for service in fleet.services() {
        let log = std::fs::read_to_string(&service.log).unwrap_or_default();
        for (what, marker) in [("panic", "panicked"), ("error", "ERROR")] {
            let found: Vec<&str> = log.lines().filter(|l| l.contains(marker)).collect();
            report.check(
                found.is_empty(),
                format!(
                    "no {what} in {}'s log ({} lines{})",
                    service.name,
                    found.len(),
                    found
                        .first()
                        .map(|l| format!("; first: {l}"))
                        .unwrap_or_default()
                ),
            );
        }
    }
    println!(
        "\n{} in {:.0} s",
        report.summary(),
        started.elapsed().as_secs_f64()
    );
    if report.failed() || args.keep {
        println!("logs, spool and database kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    anyhow::ensure!(!report.failed(), "the soak test failed");
    Ok(())
}

async fn soak(args: &SoakArgs, fleet: &Fleet, report: &mut Report) -> anyhow::Result<()> {
    fleet.wait_ready().await?;
    let ctx = Ctx::connect(fleet).await?;
    let rss = RssSampler::start(fleet.score.pid());
    let metrics_before = ctx.metrics(ctx.score_http).await?;

    // 1. One hostile request at a time, with the scorer's RSS around it.
    println!(
        "\n{:<44} {:>8} {:>10} {:>10} {:>12}",
        "one request alone", "answer", "outcomes", "estimate", "peak RSS +"
    );
    let mut shapes = memory_shapes();
    if args.heavy {
        shapes.extend(heavy_shapes());
    }
    for shape in shapes {
        let (answer, growth) = ctx.measure(fleet, &shape).await?;
        // What the scorer's admission check estimates the request holds.
        let request = match &shape.raw_body {
            Some(body) if !shape.grpc => std::str::from_utf8(body)
                .ok()
                .and_then(|body| triad_features::parse_request(body, &Default::default()).ok())
                .map(|parsed| parsed.request)
                .unwrap_or_default(),
            _ => shape.request.clone(),
        };
        let estimate = triad_score::engine::estimated_bytes(
            &request.into(),
            triad_features::N_FEATURES,
            // SECOND_MODEL is gated on MODEL, which runs with it.
            shape.models.len()
                + usize::from(
                    shape.models.contains(&SECOND_MODEL) && !shape.models.contains(&MODEL),
                ),
            usize::from(shape.models.contains(&SECOND_MODEL)),
            0,
        );
        println!(
            "{:<44} {:>8} {:>10} {:>6.1} MiB {:>8.1} MiB",
            shape.name,
            answer.label,
            answer.outcomes,
            estimate as f64 / f64::from(1 << 20),
            growth as f64 / 1024.0
        );
        report.check(
            growth <= args.max_request_rss_mib * 1024,
            format!(
                "{}: the scorer's RSS grew {:.1} MiB (bound {} MiB)",
                shape.name,
                growth as f64 / 1024.0,
                args.max_request_rss_mib
            ),
        );
        report.check(
            answer.expected,
            format!("{}: answered {}", shape.name, answer.label),
        );
    }

    // 2. Mixed traffic, with idle connections held from the start.
    let idle = IdleConnections::open(fleet).await?;
    println!(
        "\nmixed traffic for {} s; {} idle connections held",
        args.seconds,
        idle.len()
    );
    let tally = Tally::default();
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..3 {
        tasks.spawn(valid_grpc(ctx.clone(), tally.clone(), end, caller));
    }
    for caller in 0..2 {
        tasks.spawn(valid_http(ctx.clone(), tally.clone(), end, caller));
    }
    for caller in 0..2 {
        tasks.spawn(hostile(ctx.clone(), tally.clone(), end, caller));
    }
    tasks.spawn(unauthenticated(ctx.clone(), tally.clone(), end));
    while let Some(joined) = tasks.join_next().await {
        joined.context("a traffic task failed")?;
    }
    println!("\n{:<44} {:>8} {:>10}", "calls", "sent", "unexpected");
    for (kind, count) in tally.snapshot().await {
        println!("{kind:<44} {:>8} {:>10}", count.sent, count.unexpected);
        report.check(
            count.unexpected == 0,
            format!(
                "{kind}: {} of {} calls answered unexpectedly{}",
                count.unexpected,
                count.sent,
                count
                    .example
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default()
            ),
        );
    }
    let (closed, still_open) = idle.closed().await;
    report.check(
        still_open == 0,
        format!("the server closed every idle or half-sent connection ({closed} closed, {still_open} still open)"),
    );

    // 3. Every answered request's outcomes stored exactly once.
    ctx.check_outcomes(report).await?;

    // 4. Metrics: closed without the read token, bounded, nothing made up.
    for (service, addr) in [
        ("triad-score", ctx.score_http),
        ("triad-monitor", ctx.monitor_http),
    ] {
        let mut connection = HttpConnection::open(addr).await?;
        let status = connection.send("GET", "/metrics", &[], b"").await?;
        report.check(
            status == 401,
            format!("{service}: /metrics without a token answers {status}"),
        );
        let body = ctx.metrics(addr).await?;
        let series = series(&body);
        println!(
            "{service}: /metrics {:.1} KiB, {series} series",
            body.len() as f64 / 1024.0
        );
        report.check(
            body.len() as u64 <= args.max_metrics_kib * 1024,
            format!(
                "{service}: /metrics is {} bytes (bound {} KiB)",
                body.len(),
                args.max_metrics_kib
            ),
        );
        report.check(
            !body.contains(MARK),
            format!("{service}: /metrics holds nothing a caller made up"),
        );
    }
    let metrics_after = ctx.metrics(ctx.score_http).await?;
    println!(
        "triad-score: {} series before the soak, {} after",
        series(&metrics_before),
        series(&metrics_after)
    );
    let dropped = counter_sum(&metrics_after, "triad_outcomes_dropped_total");
    report.check(
        dropped == 0.0,
        format!("no outcome dropped ({dropped} counted)"),
    );

    let peak = rss.stop().await;
    println!("triad-score peak RSS {:.1} MiB", peak as f64 / 1024.0);
    report.check(
        peak <= args.max_rss_mib * 1024,
        format!(
            "the scorer's peak RSS {:.1} MiB (bound {} MiB)",
            peak as f64 / 1024.0,
            args.max_rss_mib
        ),
    );
    Ok(())
}
