//! Sends every scored outcome to the monitor, through a spool, so that no
//! answered outcome is lost: not to a monitor outage, not to a crash of the
//! scorer, not to another caller's request.
//!
//! The request path hands each answered request's outcomes to the writer
//! task as one [`ScoredRequest`] (every model's scores, the matrix, the
//! request's inputs and item errors, all shared, not copied). The writer
//! encodes them into spool records of bounded size, with each raw input
//! field cut to what the featurizer reads of it, and appends everything
//! queued with one batch (group commit); then it wakes the waiting
//! requests. A request's records are written all together or not at all:
//! a `Score` call answers only once they are in the spool ([`Written`]) —
//! in the OS page cache, which survives `SIGKILL` of the process, or on
//! disk with `fsync` ([`SpoolConfig::fsync`]). When they cannot be (the
//! spool is full because the monitor is behind, a write or `fsync` failed,
//! the request alone would take more than its share) the request is
//! refused ([`Refused`], `UNAVAILABLE` or `INVALID_ARGUMENT` to the
//! caller) and nothing of it is kept: never half-kept, never answered and
//! then dropped.
//!
//! The sender task reads the spool in order and sends `RecordOutcomes`
//! calls cut by count and by bytes (so no call passes the monitor's message
//! limit), retrying with backoff while the monitor is down or slow, and
//! moves the spool's cursor past what the monitor acknowledged. A call the
//! monitor refuses as a whole is split until only the outcome it refuses is
//! left, so one bad outcome never takes its neighbours with it. After a
//! restart it resumes at the cursor: delivery is at least once, and the
//! monitor stores each outcome id once, so every outcome becomes exactly one
//! row.
//!
//! **Identity.** Each request carries the scorer's own id
//! ([`triad_telemetry::RequestIds`]): random and unique for a live request;
//! for a backfill (a request with its own `occurred_at_ms`) a digest of the
//! caller's id, the time and the whole request, so replaying a backfill
//! stores nothing twice while two different requests never share an id. An
//! outcome's id is `<request id>/<model>/<version>/<row>`: none of its parts
//! is the caller's, and none can run into the next (request ids are hex,
//! model names are directory names, versions and rows are numbers).
//!
//! Every outcome that does not reach the monitor after its request was
//! answered is counted by reason ([`DropReason`],
//! `triad_outcomes_dropped_total{reason}`) and logged: never silently.
//! Without a spool directory the same log is kept in memory: it rides out a
//! monitor outage, not a restart.

pub mod spool;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use triad_features::FeaturizerConfig;
use triad_proto::convert::{kept_budget, kept_line_item};
use triad_proto::v1::monitor_client::MonitorClient;
use triad_proto::v1::{self, FeaturizeRequest};
use triad_server::client::{self, ClientConfig, GrpcChannel};

pub use crate::config::SpoolConfig;
use spool::{Batch, Position, Record, SpoolError, SpoolOptions, SpoolReader, SpoolWriter};

/// Settings of the outcome publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeConfig {
    /// The monitor's gRPC URL.
    pub endpoint: String,
    /// Most outcomes per `RecordOutcomes` call.
    pub batch_size: usize,
    /// Most bytes per `RecordOutcomes` call (default 4 MiB, well under the
    /// monitor's 64 MiB message limit): a call is cut at whichever of this
    /// and [`OutcomeConfig::batch_size`] comes first.
    pub max_call_bytes: usize,
    /// Longest an outcome waits for its batch to fill.
    pub flush_interval: Duration,
    /// Deadline of each `RecordOutcomes` call.
    pub timeout: Duration,
    /// Longest wait between two attempts while the monitor is down.
    pub max_backoff: Duration,
    /// Where outcomes wait for the monitor.
    pub spool: SpoolConfig,
    /// How much of each raw input field an outcome keeps: what the
    /// featurizer reads of it.
    pub kept: FeaturizerConfig,
    /// TLS and token settings of the connection to the monitor (its
    /// timeouts are [`OutcomeConfig::timeout`]).
    pub client: ClientConfig,
}

impl OutcomeConfig {
    /// Defaults for a monitor at `endpoint`, with the spool in memory.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            batch_size: 1_000,
            max_call_bytes: DEFAULT_MAX_CALL_BYTES,
            flush_interval: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(2),
            spool: SpoolConfig::default(),
            kept: FeaturizerConfig::default(),
            client: ClientConfig::default(),
        }
    }
}

/// Default of [`OutcomeConfig::max_call_bytes`].
pub const DEFAULT_MAX_CALL_BYTES: usize = 4 << 20;

/// Payload bytes past which the writer starts a new record of the same
/// request: what one record costs to hold, encode and decode.
const RECORD_BYTES: usize = 256 << 10;

/// Outcomes of a group past which the writer encodes it on the blocking
/// pool rather than on an async worker.
const BLOCKING_GROUP_OUTCOMES: u64 = 2_000;

/// Failures starting the publisher.
#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    /// The channel to the monitor cannot be set up (its endpoint, TLS
    /// settings or token).
    #[error(transparent)]
    Endpoint(#[from] client::ClientError),
    /// Opening the spool failed (a directory that cannot be read or
    /// written, or one in use by another process).
    #[error("cannot open the outcome spool: {0}")]
    Spool(#[from] SpoolError),
    /// The blocking task opening the spool panicked or was cancelled
    /// before it finished.
    #[error("opening the outcome spool did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why an answered request's outcome did not reach the monitor; each is a
/// value of `triad_outcomes_dropped_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The monitor rejected the outcome itself (a `Rejection` in its
    /// answer).
    MonitorRejected,
    /// The monitor refused a call holding only this outcome.
    MonitorRefused,
    /// A spool record could not be decoded (a disk fault).
    Undecodable,
    /// Shutdown could not deliver an in-memory spool (no spool directory).
    Shutdown,
    /// A shadow version's outcomes could not be written (shadows are never
    /// answered, so nobody is refused for them).
    Shadow,
}

impl DropReason {
    const ALL: [DropReason; 5] = [
        DropReason::MonitorRejected,
        DropReason::MonitorRefused,
        DropReason::Undecodable,
        DropReason::Shutdown,
        DropReason::Shadow,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MonitorRejected => "monitor_rejected",
            DropReason::MonitorRefused => "monitor_refused",
            DropReason::Undecodable => "undecodable",
            DropReason::Shutdown => "shutdown",
            DropReason::Shadow => "shadow",
        }
    }
}

/// Why a request's outcomes could not be recorded; the request is then
/// refused, not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The spool holds its maximum: the monitor is behind.
    #[error(
        "the outcome spool is full (the monitor is behind): the request's outcomes cannot be recorded; retry later"
    )]
    SpoolFull,
    /// The request alone would take more than its share of the spool.
    #[error(
        "the request's outcomes would take more than the {limit}-byte limit of one request in the outcome spool; send fewer pairs per request"
    )]
    TooLarge {
        /// The most bytes one request's outcomes may take.
        limit: u64,
    },
    /// A write or `fsync` of the spool failed (or the writer stopped
    /// after one).
    #[error("the outcome spool cannot be written; retry later")]
    Failed,
    /// The publisher is closed: the scorer is shutting down.
    #[error("the scorer is shutting down; retry on another replica")]
    Closed,
}

impl Refused {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::SpoolFull => "spool_full",
            Refused::TooLarge { .. } => "too_large",
            Refused::Failed => "spool_failed",
            Refused::Closed => "closed",
        }
    }
}

/// Process-wide Prometheus counterparts of [`PublisherStats`].
struct OutcomeMetrics {
    published: IntCounter,
    sent: IntCounter,
    dropped: IntCounterVec,
    refused: IntCounterVec,
    send_failures: IntCounter,
    replayed: IntCounter,
    pending: IntGauge,
    spool_bytes: IntGauge,
    spool_segments: IntGauge,
}

static METRICS: LazyLock<OutcomeMetrics> = LazyLock::new(|| {
    let vec = |name: &str, help: &str, labels: &[&str]| {
        let counter =
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric options");
        triad_telemetry::metrics::register(Box::new(counter.clone()));
        counter
    };
    let counter = |name: &str, help: &str| {
        let counter = IntCounter::new(name, help).expect("valid metric options");
        triad_telemetry::metrics::register(Box::new(counter.clone()));
        counter
    };
    let gauge = |name: &str, help: &str| {
        let gauge = IntGauge::new(name, help).expect("valid metric options");
        triad_telemetry::metrics::register(Box::new(gauge.clone()));
        gauge
    };
    let metrics = OutcomeMetrics {
        published: counter(
            "outcomes_published_total",
            "Outcomes of answered requests written to the outcome spool",
        ),
        sent: counter(
            "outcomes_sent_total",
            "Outcomes the monitor stored or already had",
        ),
        dropped: vec(
            "outcomes_dropped_total",
            "Outcomes of answered requests that did not reach the monitor, by reason",
            &["reason"],
        ),
        refused: vec(
            "outcome_requests_refused_total",
            "Requests refused because their outcomes could not be recorded, by reason",
            &["reason"],
        ),
        send_failures: counter(
            "outcome_send_failures_total",
            "Failed RecordOutcomes calls (each retried)",
        ),
        replayed: counter(
            "outcomes_replayed_total",
            "Outcomes found in the spool at start, left undelivered by an earlier process",
        ),
        pending: gauge(
            "outcomes_pending",
            "Outcomes in the spool the monitor has not acknowledged",
        ),
        spool_bytes: gauge(
            "outcome_spool_bytes",
            "Bytes the outcome spool's segments hold",
        ),
        spool_segments: gauge("outcome_spool_segments", "Segments of the outcome spool"),
    };
    // Every reason is a series from the start, at zero.
    for reason in DropReason::ALL {
        metrics.dropped.with_label_values(&[reason.as_str()]);
    }
    for refused in [
        Refused::SpoolFull,
        Refused::TooLarge { limit: 0 },
        Refused::Failed,
        Refused::Closed,
    ] {
        metrics.refused.with_label_values(&[refused.as_str()]);
    }
    metrics
});

/// Counters of the publisher, for metrics and tests.
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// Outcomes of answered requests written to the spool.
    pub published: AtomicU64,
    /// Outcomes the monitor acknowledged (stored, or already had).
    pub sent: AtomicU64,
    /// Outcomes of answered requests that did not reach the monitor, in all.
    pub dropped: AtomicU64,
    /// [`PublisherStats::dropped`] by [`DropReason`], in `DropReason::ALL`
    /// order.
    pub dropped_by: [AtomicU64; 5],
    /// Requests refused because their outcomes could not be recorded.
    pub refused: AtomicU64,
    /// Failed `RecordOutcomes` calls (each retried).
    pub send_failures: AtomicU64,
    /// Outcomes an earlier process left in the spool, found at start.
    pub replayed: AtomicU64,
    /// Outcomes in the spool the monitor has not acknowledged.
    pub pending: AtomicU64,
    /// Bytes the spool holds.
    pub spool_bytes: AtomicU64,
    /// Segments of the spool.
    pub spool_segments: AtomicU64,
}

impl PublisherStats {
    /// Outcomes dropped for `reason`.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        let i = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.dropped_by[i].load(Ordering::Relaxed)
    }

    fn drop_outcomes(&self, n: u64, reason: DropReason, why: &dyn std::fmt::Display) {
        if n == 0 {
            return;
        }
        let i = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.dropped_by[i].fetch_add(n, Ordering::Relaxed);
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        METRICS
            .dropped
            .with_label_values(&[reason.as_str()])
            .inc_by(n);
        // Log the first drop and then every 10 000th outcome dropped.
        if total == n || total / 10_000 != (total - n) / 10_000 {
            tracing::warn!(
                dropped = n,
                dropped_total = total,
                reason = reason.as_str(),
                "outcomes dropped: {why}"
            );
        }
    }

    fn refuse(&self, refused: &Refused, request_id: &str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        METRICS.refused.with_label_values(&[refused.as_str()]).inc();
        tracing::warn!(
            request_id,
            reason = refused.as_str(),
            "request refused: {refused}"
        );
    }

    fn set_usage(&self, usage: spool::Usage) {
        let before = self.pending.swap(usage.pending_outcomes, Ordering::Relaxed);
        METRICS
            .pending
            .add(usage.pending_outcomes as i64 - before as i64);
        let before = self.spool_bytes.swap(usage.bytes, Ordering::Relaxed);
        METRICS.spool_bytes.add(usage.bytes as i64 - before as i64);
        let before = self.spool_segments.swap(usage.segments, Ordering::Relaxed);
        METRICS
            .spool_segments
            .add(usage.segments as i64 - before as i64);
    }
}

/// One request's scores, as the request path hands them over: everything
/// shared with the response, nothing copied per outcome.
#[derive(Debug, Clone)]
pub struct ScoredRequest {
    /// The scorer's id of the request ([`request_identity`]).
    pub request_id: String,
    /// The caller's id of the request (empty: none).
    pub correlation_id: String,
    /// When the request happened, in milliseconds since the epoch: now,
    /// or a backfill's own time.
    pub scored_at_ms: i64,
    /// Time from receiving the request to its scores, in milliseconds.
    pub latency_ms: f32,
    /// The hash of the matrix's feature schema.
    pub schema_hash: String,
    /// The pair of each matrix row.
    pub keys: Arc<Vec<v1::PairKey>>,
    /// The matrix, row-major, `n_cols` wide.
    pub values: Arc<Vec<f32>>,
    /// Columns of the matrix.
    pub n_cols: usize,
    /// One entry per model run, each lined up with `keys`.
    pub results: Vec<v1::ModelScores>,
    /// The model version behind each entry of `results`, whose
    /// explanation of each scored row is stored with its outcome (built
    /// one row at a time as the outcome is written); empty: none stored.
    pub models: Vec<Arc<crate::model::LoadedModel>>,
    /// Scored by shadow versions: nobody waits for these.
    pub shadow: bool,
    /// The raw request, when the scorer featurized it itself.
    pub inputs: Option<Arc<FeaturizeRequest>>,
    /// The request's per-item errors.
    pub errors: Arc<Vec<v1::ItemError>>,
}

impl ScoredRequest {
    fn outcomes(&self) -> u64 {
        self.results.iter().map(|r| r.scores.len() as u64).sum()
    }
}

/// The scorer's id of a request: random for a live request; for a backfill
/// (`occurred_at_ms` given by the caller) a digest of the caller's id, the
/// time and the encoded request, so replaying the same backfill files its
/// outcomes under the same ids (stored once) while any two requests that
/// differ in anything get different ones.
pub fn request_identity(
    ids: &triad_telemetry::RequestIds,
    occurred_at_ms: Option<i64>,
    request: &v1::ScoreRequest,
) -> String {
    let Some(at) = occurred_at_ms.filter(|_| !ids.correlation_id.is_empty()) else {
        return ids.request_id.clone();
    };
    let mut digest = Sha256::new();
    digest.update(b"triad-backfill-v1\0");
    digest.update((ids.correlation_id.len() as u64).to_le_bytes());
    digest.update(ids.correlation_id.as_bytes());
    digest.update(at.to_le_bytes());
    // Pins are a map: encode them in key order.
    let mut pins: Vec<(&String, &String)> = request.versions.iter().collect();
    pins.sort();
    let mut bare = request.clone();
    bare.versions.clear();
    digest.update(bare.encode_to_vec());
    for (model, version) in pins {
        for part in [model, version] {
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part.as_bytes());
        }
    }
    let digest = digest.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `<request id>/<model>/<version>/<row>`: unique per outcome, stable
/// across retries, and made of nothing a caller chose.
pub fn outcome_id(request_id: &str, model: &str, version: &str, row: usize) -> String {
    let mut id = String::new();
    write_outcome_id(&mut id, request_id, model, version, row);
    id
}

fn write_outcome_id(out: &mut String, request_id: &str, model: &str, version: &str, row: usize) {
    use std::fmt::Write as _;
    let _ = write!(out, "{request_id}/{model}/{version}/{row}");
}

/// One spool record: part of one request's outcomes and item errors, as
/// the monitor will receive them, and the trace of the request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SpoolRecord {
    /// W3C `traceparent` of the producing request (empty: none).
    #[prost(string, tag = "1")]
    pub traceparent: String,
    /// Some of the request's outcomes: a record holds about 256 KiB of
    /// them, a larger request spans several records.
    #[prost(message, repeated, tag = "2")]
    pub outcomes: Vec<v1::Outcome>,
    /// Some of the request's per-item errors, with its id.
    #[prost(message, repeated, tag = "3")]
    pub errors: Vec<v1::ItemError>,
    /// The scorer's id of the request the errors belong to.
    #[prost(string, tag = "4")]
    pub request_id: String,
}

/// What [`Written`] reports to the request that is waiting.
type Reply = oneshot::Sender<Result<(), Refused>>;

/// A request on its way to the writer task.
struct Append {
    request: ScoredRequest,
    traceparent: String,
    /// `None` for shadows: nobody waits.
    reply: Option<Reply>,
}

/// Resolves once a request's outcomes are in the spool, or with why they
/// could not be (then the request must be refused). Dropping it does not
/// stop the write.
#[must_use = "await it before answering: the outcomes are safe once it resolves Ok"]
#[derive(Debug)]
pub struct Written(WrittenState);

#[derive(Debug)]
enum WrittenState {
    Done(Option<Result<(), Refused>>),
    Waiting(oneshot::Receiver<Result<(), Refused>>),
}

impl Future for Written {
    type Output = Result<(), Refused>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            WrittenState::Done(result) => Poll::Ready(result.take().unwrap_or(Ok(()))),
            // An error means the writer is gone without answering.
            WrittenState::Waiting(written) => Pin::new(written)
                .poll(cx)
                .map(|result| result.unwrap_or(Err(Refused::Closed))),
        }
    }
}

/// Hands outcomes to the spool.
#[derive(Debug, Clone)]
pub struct OutcomePublisher {
    appends: mpsc::UnboundedSender<Append>,
    stats: Arc<PublisherStats>,
}

/// The background tasks of a publisher; [`OutcomeTasks::shutdown`] stops
/// them.
#[derive(Debug)]
pub struct OutcomeTasks {
    close: watch::Sender<bool>,
    writer: JoinHandle<()>,
    sender: JoinHandle<()>,
    stats: Arc<PublisherStats>,
    drain_timeout: Duration,
}

impl OutcomePublisher {
    /// Opens the spool (recovering what an earlier process left in it) and
    /// starts the writer and sender tasks.
    pub async fn start(config: OutcomeConfig) -> Result<(Self, OutcomeTasks), OutcomeError> {
        Self::start_with(config, None).await
    }

    /// [`OutcomePublisher::start`] with every spool segment file passed
    /// through `wrap` (fault injection in tests).
    pub async fn start_with(
        config: OutcomeConfig,
        wrap: Option<spool::WrapSegment>,
    ) -> Result<(Self, OutcomeTasks), OutcomeError> {
        let channel = client::connect(
            &config.endpoint,
            &ClientConfig {
                connect_timeout: config.timeout,
                timeout: config.timeout,
                ..config.client.clone()
            },
        )?;
        LazyLock::force(&METRICS);
        let dir = config.spool.dir.clone();
        let options = SpoolOptions::new(config.spool.max_bytes(), config.spool.fsync);
        let (writer, reader, recovered) = tokio::task::spawn_blocking(move || match wrap {
            Some(wrap) => spool::open_wrapped(dir.as_deref(), options, wrap),
            None => spool::open(dir.as_deref(), options),
        })
        .await??;
        let stats = Arc::new(PublisherStats::default());
        stats.set_usage(reader.usage());
        if recovered.outcomes > 0 || recovered.truncated_bytes > 0 {
            stats
                .replayed
                .fetch_add(recovered.outcomes, Ordering::Relaxed);
            METRICS.replayed.inc_by(recovered.outcomes);
            tracing::info!(
                outcomes = recovered.outcomes,
                records = recovered.records,
                truncated_bytes = recovered.truncated_bytes,
                "outcome spool: replaying what an earlier process left undelivered"
            );
        }
        if let Some(dir) = &config.spool.dir {
            tracing::info!(spool = %dir.display(), max_bytes = options.max_bytes, fsync = options.fsync, "outcome spool open");
        }

        let (appends, queue) = mpsc::unbounded_channel();
        let (close, closed) = watch::channel(false);
        let (done, writer_done) = watch::channel(false);
        let written = Arc::new(Notify::new());
        let encoder = Encoder {
            kept: config.kept,
            max_request_bytes: config.spool.max_request_bytes(),
        };
        let writer = tokio::spawn(write_loop(
            writer,
            encoder,
            queue,
            closed,
            done,
            Arc::clone(&written),
            Arc::clone(&stats),
        ));
        let sender = tokio::spawn(send_loop(
            config.clone(),
            MonitorClient::new(channel),
            reader,
            written,
            writer_done,
            Arc::clone(&stats),
        ));
        let tasks = OutcomeTasks {
            close,
            writer,
            sender,
            stats: Arc::clone(&stats),
            drain_timeout: config.spool.drain_timeout,
        };
        Ok((Self { appends, stats }, tasks))
    }

    /// The publisher's counters.
    pub fn stats(&self) -> &Arc<PublisherStats> {
        &self.stats
    }

    /// Queues an answered request's outcomes for the spool; await the
    /// result before answering: `Err` means they could not be recorded and
    /// the request must be refused.
    pub fn publish(&self, request: ScoredRequest) -> Written {
        if request.outcomes() == 0 && request.errors.is_empty() {
            return Written(WrittenState::Done(Some(Ok(()))));
        }
        let (reply, wait) = oneshot::channel();
        let append = Append {
            request,
            traceparent: triad_telemetry::current_traceparent().unwrap_or_default(),
            reply: Some(reply),
        };
        if let Err(error) = self.appends.send(append) {
            let refused = Refused::Closed;
            self.stats.refuse(&refused, &error.0.request.request_id);
            return Written(WrittenState::Done(Some(Err(refused))));
        }
        Written(WrittenState::Waiting(wait))
    }

    /// Queues a shadow version's outcomes; nobody waits for them, and what
    /// cannot be written is counted as dropped ([`DropReason::Shadow`]).
    pub fn publish_shadow(&self, request: ScoredRequest) {
        let n = request.outcomes();
        if n == 0 {
            return;
        }
        let append = Append {
            request,
            traceparent: triad_telemetry::current_traceparent().unwrap_or_default(),
            reply: None,
        };
        if self.appends.send(append).is_err() {
            self.stats
                .drop_outcomes(n, DropReason::Shadow, &"the outcome spool is closed");
        }
    }
}

impl OutcomeTasks {
    /// Stops taking outcomes, writes what was handed over, then sends what
    /// the spool holds for at most the drain timeout. What is left stays in
    /// an on-disk spool for the next start; in memory it is counted as
    /// dropped.
    pub async fn shutdown(self) {
        let _ = self.close.send(true);
        if let Err(error) = self.writer.await {
            tracing::error!(%error, "the outcome spool writer failed");
        }
        // The sender stops itself at the drain deadline; the margin only
        // guards against a task that cannot be interrupted.
        let margin = self.drain_timeout + Duration::from_secs(2);
        if tokio::time::timeout(margin, self.sender).await.is_err() {
            tracing::error!("the outcome sender did not stop in time");
        }
    }

    /// The publisher's counters.
    pub fn stats(&self) -> &Arc<PublisherStats> {
        &self.stats
    }
}

/// The writer task: writes everything queued as one batch (group commit),
/// then answers the requests waiting for it and wakes the sender.
async fn write_loop(
    writer: SpoolWriter,
    encoder: Encoder,
    mut queue: mpsc::UnboundedReceiver<Append>,
    mut close: watch::Receiver<bool>,
    done: watch::Sender<bool>,
    written: Arc<Notify>,
    stats: Arc<PublisherStats>,
) {
    let mut group: Vec<Append> = Vec::new();
    let mut state = Some((writer, encoder));
    loop {
        let closing = tokio::select! {
            biased;
            n = queue.recv_many(&mut group, 1_024) => n == 0,
            _ = close.wait_for(|close| *close) => true,
        };
        if closing {
            // Take what was handed over before the close, then stop.
            queue.close();
            while let Ok(append) = queue.try_recv() {
                group.push(append);
            }
        }
        if !group.is_empty() {
            let Some((mut writer, mut encoder)) = state.take() else {
                break;
            };
            let outcomes: u64 = group.iter().map(|a| a.request.outcomes()).sum();
            let taken = std::mem::take(&mut group);
            // A large group or a disk flush takes milliseconds: keep it off
            // the async threads.
            let results = if outcomes > BLOCKING_GROUP_OUTCOMES || writer.is_fsync() {
                let span = tracing::Span::current();
                match tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    let results = encoder.commit(&mut writer, &taken);
                    (writer, encoder, taken, results)
                })
                .await
                {
                    Ok((back, enc, taken, results)) => {
                        state = Some((back, enc));
                        group = taken;
                        results
                    }
                    Err(error) => {
                        tracing::error!(%error, "the outcome spool writer failed; requests from now on are refused");
                        break;
                    }
                }
            } else {
                let results = encoder.commit(&mut writer, &taken);
                state = Some((writer, encoder));
                group = taken;
                results
            };
            if let Some((writer, _)) = &state {
                stats.set_usage(writer.usage());
            }
            written.notify_one();
            for (append, result) in group.drain(..).zip(results) {
                let n = append.request.outcomes();
                match &result {
                    Ok(()) if append.reply.is_some() => {
                        stats.published.fetch_add(n, Ordering::Relaxed);
                        METRICS.published.inc_by(n);
                    }
                    Ok(()) => {}
                    Err(refused) if append.reply.is_some() => {
                        stats.refuse(refused, &append.request.request_id);
                    }
                    Err(refused) => stats.drop_outcomes(n, DropReason::Shadow, refused),
                }
                if let Some(reply) = append.reply {
                    let _ = reply.send(result);
                }
            }
        }
        if closing {
            break;
        }
    }
    // Requests that arrive after this are refused by `publish` (the queue
    // is closed); any still queued here got their answer above.
    let _ = done.send(true);
    written.notify_one();
}

/// Turns requests into spool records.
struct Encoder {
    kept: FeaturizerConfig,
    max_request_bytes: u64,
}

impl Encoder {
    /// Writes `group` as one batch: each request's records all together or
    /// none of them. A request that does not fit is refused alone; a failed
    /// write or `fsync` refuses the whole group (none of it stays).
    fn commit(&mut self, writer: &mut SpoolWriter, group: &[Append]) -> Vec<Result<(), Refused>> {
        let mut results = Vec::with_capacity(group.len());
        let mut batch = match writer.batch() {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "cannot write the outcome spool");
                return vec![Err(Refused::Failed); group.len()];
            }
        };
        let mut failed = false;
        for append in group {
            if failed {
                results.push(Err(Refused::Failed));
                continue;
            }
            let mark = batch.mark();
            let result = self.stage(&mut batch, append);
            match result {
                Ok(()) => results.push(Ok(())),
                Err(StageError::Refused(refused)) => {
                    if batch.rewind(mark).is_err() {
                        failed = true;
                    }
                    results.push(Err(refused));
                }
                Err(StageError::Spool(error)) => {
                    tracing::error!(%error, "cannot write the outcome spool");
                    failed = true;
                    results.push(Err(Refused::Failed));
                }
            }
        }
        if failed {
            // Everything of the group that was written goes.
            drop(batch);
            return results.into_iter().map(|_| Err(Refused::Failed)).collect();
        }
        if let Err(error) = batch.commit() {
            tracing::error!(%error, "cannot write the outcome spool");
            return vec![Err(Refused::Failed); group.len()];
        }
        results
    }

    /// Stages one request's records in `batch`.
    fn stage(&mut self, batch: &mut Batch<'_>, append: &Append) -> Result<(), StageError> {
        let request = &append.request;
        let start = batch.len();
        let mut record = RecordBuilder::new(&append.traceparent);
        let mut stage = |record: &mut RecordBuilder, more: bool| -> Result<(), StageError> {
            if record.is_empty() {
                return Ok(());
            }
            let outcomes = record.outcomes;
            batch
                .stage(u64::from(outcomes), |out| record.finish_into(out, more))
                .map_err(|error| match error {
                    SpoolError::Full { .. } => StageError::Refused(Refused::SpoolFull),
                    other => StageError::Spool(other),
                })?;
            if batch.len() - start > self.max_request_bytes {
                return Err(StageError::Refused(Refused::TooLarge {
                    limit: self.max_request_bytes,
                }));
            }
            Ok(())
        };

        // The request's item errors first, then every model's outcomes.
        for error in request.errors.iter() {
            if record.payload.len() >= RECORD_BYTES {
                stage(&mut record, true)?;
            }
            record.push_error(error, &request.request_id);
        }
        let (budgets, items) = match &request.inputs {
            Some(inputs) => (index_budgets(inputs), index_items(inputs)),
            None => (HashMap::new(), HashMap::new()),
        };
        // Each kept input is encoded once, when an outcome first needs it.
        let mut budget_parts: HashMap<&str, Vec<u8>> = HashMap::new();
        let mut item_parts: HashMap<&str, Vec<u8>> = HashMap::new();
        let mut own = v1::Outcome::default();
        for (index, scores) in request.results.iter().enumerate() {
            let explainer = request
                .models
                .get(index)
                .filter(|m| m.version == scores.version);
            let common = v1::Outcome {
                request_id: request.request_id.clone(),
                correlation_id: request.correlation_id.clone(),
                scored_at_ms: request.scored_at_ms,
                model: scores.model.clone(),
                version: scores.version.clone(),
                schema_hash: request.schema_hash.clone(),
                threshold: scores.threshold,
                latency_ms: request.latency_ms,
                shadow: request.shadow,
                ..v1::Outcome::default()
            }
            .encode_to_vec();
            for (row, ((key, score), matched)) in request
                .keys
                .iter()
                .zip(&scores.scores)
                .zip(&scores.matched)
                .enumerate()
            {
                if record.payload.len() >= RECORD_BYTES {
                    stage(&mut record, true)?;
                }
                own.outcome_id.clear();
                write_outcome_id(
                    &mut own.outcome_id,
                    &request.request_id,
                    &scores.model,
                    &scores.version,
                    row,
                );
                own.budget_id.clone_from(&key.budget_id);
                own.itemization_id.clone_from(&key.itemization_id);
                // A row a gated model did not score is sent all the same,
                // marked: stored once, counted apart.
                let not_scored = !row_scored(scores, row);
                own.not_scored = not_scored;
                own.score = if not_scored { 0.0 } else { *score };
                own.matched = *matched && !not_scored;
                own.features.clear();
                own.explanation = None;
                if let Some(features) = request
                    .values
                    .get(row * request.n_cols..(row + 1) * request.n_cols)
                {
                    own.features.extend_from_slice(features);
                    if !not_scored {
                        own.explanation =
                            explainer.and_then(|model| model.explain_in_schema_order(features));
                    }
                }
                let budget = match budgets.get_key_value(key.budget_id.as_str()) {
                    Some((id, budget)) => budget_parts.entry(id).or_insert_with(|| {
                        v1::Outcome {
                            budget: Some(kept_budget(budget, &self.kept)),
                            ..v1::Outcome::default()
                        }
                        .encode_to_vec()
                    }),
                    None => &[][..],
                };
                let item = match items.get_key_value(key.itemization_id.as_str()) {
                    Some((id, item)) => item_parts.entry(id).or_insert_with(|| {
                        v1::Outcome {
                            line_item: Some(kept_line_item(item, &self.kept)),
                            ..v1::Outcome::default()
                        }
                        .encode_to_vec()
                    }),
                    None => &[][..],
                };
                record.push_outcome(&common, &own, budget, item);
            }
        }
        stage(&mut record, false)
    }
}

/// Whether `scores` scored `row`: always, unless the model is gated and
/// its gate did not match the row (`ModelScores.scored`).
pub fn row_scored(scores: &v1::ModelScores, row: usize) -> bool {
    scores.scored.is_empty() || scores.scored.get(row).copied().unwrap_or(false)
}

/// Why a request could not be staged.
enum StageError {
    /// This request alone cannot be kept.
    Refused(Refused),
    /// The spool failed: the whole batch goes.
    Spool(SpoolError),
}

/// One record's payload (a [`SpoolRecord`]) under construction.
struct RecordBuilder {
    payload: Vec<u8>,
    outcomes: u32,
    /// The encoded `traceparent` field, repeated in every record.
    head: Vec<u8>,
    /// Whether the request id went into this record (once, with errors).
    has_request_id: bool,
}

impl RecordBuilder {
    fn new(traceparent: &str) -> Self {
        let head = SpoolRecord {
            traceparent: traceparent.to_owned(),
            ..SpoolRecord::default()
        }
        .encode_to_vec();
        Self {
            payload: Vec::new(),
            outcomes: 0,
            head,
            has_request_id: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// Adds one outcome: the encoded fields every outcome of its model
    /// shares, its own fields, and its encoded inputs (a protobuf message
    /// may arrive in any number of parts, so what is shared is encoded
    /// once and copied).
    fn push_outcome(&mut self, common: &[u8], own: &v1::Outcome, budget: &[u8], item: &[u8]) {
        let len = common.len() + own.encoded_len() + budget.len() + item.len();
        self.payload.push(OUTCOMES_KEY);
        append_varint(len as u64, &mut self.payload);
        self.payload.extend_from_slice(common);
        append(own, &mut self.payload);
        self.payload.extend_from_slice(budget);
        self.payload.extend_from_slice(item);
        self.outcomes += 1;
    }

    /// Adds one item error of request `request_id`.
    fn push_error(&mut self, error: &v1::ItemError, request_id: &str) {
        if !self.has_request_id {
            let id = SpoolRecord {
                request_id: request_id.to_owned(),
                ..SpoolRecord::default()
            };
            append(&id, &mut self.payload);
            self.has_request_id = true;
        }
        let field = SpoolRecord {
            errors: vec![error.clone()],
            ..SpoolRecord::default()
        };
        append(&field, &mut self.payload);
    }

    /// Appends the record (header, `traceparent`, payload) to `out` and
    /// empties the builder for the next record of the same request.
    fn finish_into(&mut self, out: &mut Vec<u8>, more: bool) {
        let start = spool::begin_frame(out);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(&self.payload);
        spool::end_frame(out, start, self.outcomes, more);
        self.payload.clear();
        self.outcomes = 0;
        self.has_request_id = false;
    }
}

/// The sender task: reads the spool in order and sends it to the monitor
/// until the writer has stopped and everything is sent, or until the drain
/// deadline after the writer stopped.
async fn send_loop(
    config: OutcomeConfig,
    client: MonitorClient<GrpcChannel>,
    mut reader: SpoolReader,
    written: Arc<Notify>,
    writer_done: watch::Receiver<bool>,
    stats: Arc<PublisherStats>,
) {
    let mut sender = Sender {
        client,
        config: &config,
        stats: &stats,
    };
    let drain_deadline = {
        let mut writer_done = writer_done.clone();
        let drain = config.spool.drain_timeout;
        async move {
            let _ = writer_done.wait_for(|done| *done).await;
            tokio::time::sleep(drain).await;
        }
    };
    let deliver = deliver(&mut sender, &mut reader, &written, writer_done);
    tokio::select! {
        () = deliver => {}
        () = drain_deadline => {}
    }
    stats.set_usage(reader.usage());
    let left = reader.usage().pending_outcomes;
    if left > 0 {
        if reader.is_durable() {
            tracing::warn!(
                outcomes = left,
                "the monitor did not take every outcome before shutdown; they stay in the spool for the next start"
            );
        } else {
            stats.drop_outcomes(
                left,
                DropReason::Shutdown,
                &"the monitor did not answer before shutdown (no spool directory)",
            );
        }
    }
}

/// Sends records until the writer has stopped and the spool is read out.
async fn deliver(
    sender: &mut Sender<'_>,
    reader: &mut SpoolReader,
    written: &Notify,
    mut writer_done: watch::Receiver<bool>,
) {
    let batch = sender.config.batch_size.max(1) as u64;
    // Records read at once: a few calls' worth.
    let max_bytes = (sender.config.max_call_bytes as u64).saturating_mul(2);
    let mut backoff = Duration::from_millis(50);
    loop {
        let closing = *writer_done.borrow() || writer_done.has_changed().is_err();
        let mut records = match reader.read(batch, max_bytes) {
            Ok(records) => records,
            Err(error) => {
                tracing::error!(%error, "cannot read the outcome spool; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(sender.config.max_backoff);
                continue;
            }
        };
        if records.is_empty() {
            if closing && reader.caught_up() {
                return;
            }
            tokio::select! {
                () = written.notified() => {}
                _ = writer_done.changed(), if !closing => {}
            }
            continue;
        }
        // A small batch waits (up to the flush interval) for more.
        let mut outcomes: u64 = records.iter().map(|r| r.outcomes).sum();
        let mut bytes: u64 = records.iter().map(|r| r.payload.len() as u64).sum();
        if !closing && outcomes < batch && bytes < max_bytes {
            let deadline = Instant::now() + sender.config.flush_interval;
            loop {
                tokio::select! {
                    () = written.notified() => {}
                    () = tokio::time::sleep_until(deadline) => break,
                    _ = writer_done.changed() => break,
                }
                match reader.read(batch - outcomes, max_bytes - bytes) {
                    Ok(more) => {
                        outcomes += more.iter().map(|r| r.outcomes).sum::<u64>();
                        bytes += more.iter().map(|r| r.payload.len() as u64).sum::<u64>();
                        records.extend(more);
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot read the outcome spool");
                        break;
                    }
                }
                if outcomes >= batch || bytes >= max_bytes {
                    break;
                }
            }
        }
        sender.send_records(records, reader).await;
    }
}

/// Sends decoded records to the monitor.
struct Sender<'a> {
    client: MonitorClient<GrpcChannel>,
    config: &'a OutcomeConfig,
    stats: &'a PublisherStats,
}

/// A `RecordOutcomes` call under construction.
#[derive(Default)]
struct Pending {
    outcomes: Vec<v1::Outcome>,
    /// Encoded size of `outcomes`.
    bytes: usize,
    traceparent: String,
    /// The end of the last record whose outcomes are all in this call.
    complete: Option<Position>,
    /// Outcomes of records completed by this call (for the spool's count).
    completed_outcomes: u64,
}

/// Bytes an item of a repeated message field takes in its parent.
fn field_len(len: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(len as u64) + len
}

impl Sender<'_> {
    /// Sends `records` in calls of at most a batch of outcomes and
    /// [`OutcomeConfig::max_call_bytes`], moving the cursor past each
    /// record once the monitor has acknowledged all of it.
    async fn send_records(&mut self, records: Vec<Record>, reader: &mut SpoolReader) {
        let batch = self.config.batch_size.max(1);
        let max_bytes = self.config.max_call_bytes.max(1);
        let mut call = Pending::default();
        for record in records {
            let decoded = match SpoolRecord::decode(record.payload.as_slice()) {
                Ok(decoded) => decoded,
                Err(error) => {
                    tracing::error!(%error, "cannot decode an outcome spool record; skipping it");
                    self.stats.drop_outcomes(
                        record.outcomes,
                        DropReason::Undecodable,
                        &"an undecodable spool record",
                    );
                    self.flush(&mut call, reader).await;
                    self.acknowledge(reader, record.end, record.outcomes);
                    continue;
                }
            };
            if !decoded.errors.is_empty() {
                self.send_errors(decoded.errors, &decoded.request_id, &decoded.traceparent)
                    .await;
            }
            for outcome in decoded.outcomes {
                let len = field_len(outcome.encoded_len());
                if !call.outcomes.is_empty()
                    && (call.outcomes.len() >= batch || call.bytes + len > max_bytes)
                {
                    self.flush(&mut call, reader).await;
                }
                if call.outcomes.is_empty() {
                    call.traceparent.clone_from(&decoded.traceparent);
                }
                call.outcomes.push(outcome);
                call.bytes += len;
            }
            call.complete = Some(record.end);
            call.completed_outcomes += record.outcomes;
            if call.outcomes.len() >= batch || call.bytes >= max_bytes {
                self.flush(&mut call, reader).await;
            }
        }
        self.flush(&mut call, reader).await;
    }

    /// Sends the call under construction, if any, and acknowledges the
    /// records it completes.
    async fn flush(&mut self, call: &mut Pending, reader: &mut SpoolReader) {
        let call = std::mem::take(call);
        if !call.outcomes.is_empty() {
            self.send_outcomes(call.outcomes, &call.traceparent).await;
        }
        if let Some(end) = call.complete {
            self.acknowledge(reader, end, call.completed_outcomes);
        }
    }

    fn acknowledge(&self, reader: &mut SpoolReader, end: Position, outcomes: u64) {
        if let Err(error) = reader.acknowledge(end, outcomes) {
            // The records were delivered; only the cursor is stale, so a
            // restart would send them again (the monitor drops duplicates).
            tracing::error!(%error, "cannot move the outcome spool's cursor");
        }
        self.stats.set_usage(reader.usage());
    }

    /// Sends `outcomes` until the monitor acknowledges them. A call it
    /// refuses as a whole is split in two and each half sent again, down to
    /// the one outcome it refuses, which alone is dropped; outcomes it
    /// rejects one by one are dropped and counted.
    async fn send_outcomes(&mut self, outcomes: Vec<v1::Outcome>, traceparent: &str) {
        let mut parts = vec![outcomes];
        while let Some(mut part) = parts.pop() {
            let n = part.len() as u64;
            let request = v1::RecordOutcomesRequest {
                outcomes: std::mem::take(&mut part),
                ..v1::RecordOutcomesRequest::default()
            };
            match self.call(request, traceparent).await {
                Sent::Stored(response) => {
                    let rejected = response.rejected.len() as u64;
                    if let Some(first) = response.rejected.first() {
                        self.stats.drop_outcomes(
                            rejected,
                            DropReason::MonitorRejected,
                            &format_args!("rejected by the monitor: {}", first.reason),
                        );
                    }
                    let stored = n.saturating_sub(rejected);
                    self.stats.sent.fetch_add(stored, Ordering::Relaxed);
                    METRICS.sent.inc_by(stored);
                }
                Sent::Refused(status, mut request) if request.outcomes.len() > 1 => {
                    tracing::warn!(outcomes = n, %status, "the monitor refused a call; sending it in halves");
                    let second = request.outcomes.split_off(request.outcomes.len() / 2);
                    // Depth first, in order: the first half goes next.
                    parts.push(second);
                    parts.push(request.outcomes);
                }
                Sent::Refused(status, _) => {
                    self.stats.drop_outcomes(
                        n,
                        DropReason::MonitorRefused,
                        &format_args!("the monitor refused an outcome: {status}"),
                    );
                }
            }
        }
    }

    /// Sends a request's item errors in calls of at most
    /// [`OutcomeConfig::max_call_bytes`]; a call refused as a whole is
    /// split like outcomes are (item errors are not counted as outcomes).
    async fn send_errors(
        &mut self,
        errors: Vec<v1::ItemError>,
        request_id: &str,
        traceparent: &str,
    ) {
        let max_bytes = self.config.max_call_bytes.max(1);
        let mut chunks: Vec<Vec<v1::ItemError>> = Vec::new();
        let mut bytes = 0;
        for error in errors {
            let len = field_len(error.encoded_len());
            match chunks.last_mut() {
                Some(chunk) if bytes + len <= max_bytes => chunk.push(error),
                _ => {
                    bytes = 0;
                    chunks.push(vec![error]);
                }
            }
            bytes += len;
        }
        chunks.reverse();
        while let Some(chunk) = chunks.pop() {
            let n = chunk.len();
            let request = v1::RecordOutcomesRequest {
                errors: chunk,
                request_id: request_id.to_owned(),
                ..v1::RecordOutcomesRequest::default()
            };
            match self.call(request, traceparent).await {
                Sent::Stored(_) => {}
                Sent::Refused(_, mut request) if request.errors.len() > 1 => {
                    let second = request.errors.split_off(request.errors.len() / 2);
                    chunks.push(second);
                    chunks.push(request.errors);
                }
                Sent::Refused(status, _) => {
                    tracing::warn!(errors = n, %status, "the monitor refused a request's item error; dropped");
                }
            }
        }
    }

    /// Calls `RecordOutcomes` until the monitor answers, backing off
    /// exponentially while it is down. A call it refuses as invalid comes
    /// back, not retried.
    async fn call(&mut self, request: v1::RecordOutcomesRequest, traceparent: &str) -> Sent {
        let traceparent: Option<tonic::metadata::MetadataValue<_>> = (!traceparent.is_empty())
            .then(|| traceparent.parse().ok())
            .flatten();
        let mut backoff = Duration::from_millis(50);
        loop {
            let mut call = tonic::Request::new(request.clone());
            if let Some(traceparent) = &traceparent {
                call.metadata_mut().insert(
                    triad_telemetry::trace::TRACEPARENT_HEADER,
                    traceparent.clone(),
                );
            }
            match self.client.record_outcomes(call).await {
                Ok(response) => return Sent::Stored(response.into_inner()),
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::InvalidArgument | tonic::Code::OutOfRange
                    ) =>
                {
                    return Sent::Refused(Box::new(status), request);
                }
                Err(status) => {
                    let failures = self.stats.send_failures.fetch_add(1, Ordering::Relaxed) + 1;
                    METRICS.send_failures.inc();
                    if failures.is_power_of_two() {
                        tracing::warn!(
                            endpoint = %self.config.endpoint,
                            %status,
                            failures,
                            "cannot record outcomes; retrying"
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }
}

/// How a `RecordOutcomes` call ended.
enum Sent {
    Stored(v1::RecordOutcomesResponse),
    /// Refused as a whole (`INVALID_ARGUMENT`, `OUT_OF_RANGE`): the call
    /// comes back to be split.
    Refused(Box<tonic::Status>, v1::RecordOutcomesRequest),
}

/// `SpoolRecord.outcomes`: field 2, length-delimited.
const OUTCOMES_KEY: u8 = (2 << 3) | 2;

/// Appends `message` to `out`.
fn append(message: &impl Message, out: &mut Vec<u8>) {
    out.reserve(message.encoded_len());
    // Encoding fails only when the buffer has no room; a `Vec` grows.
    let _ = message.encode(out);
}

/// Appends a protobuf varint.
fn append_varint(value: u64, out: &mut Vec<u8>) {
    prost::encoding::encode_varint(value, out);
}

fn index_budgets(inputs: &FeaturizeRequest) -> HashMap<&str, &v1::Budget> {
    let mut map = HashMap::new();
    for budget in &inputs.budgets {
        if let Some(id) = budget.budget_id.as_deref() {
            map.entry(id).or_insert(budget);
        }
    }
    map
}

fn index_items(inputs: &FeaturizeRequest) -> HashMap<&str, &v1::ExpenseLineItem> {
    let mut map = HashMap::new();
    for item in &inputs.all_user_expense_lineitems {
        if let Some(id) = item.itemization_id.as_deref() {
            map.entry(id).or_insert(item);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(request: &str, pairs: usize) -> ScoredRequest {
        ScoredRequest {
            request_id: request.to_owned(),
            correlation_id: String::new(),
            scored_at_ms: 1_700_000_000_000,
            latency_ms: 1.0,
            schema_hash: "hash".to_owned(),
            keys: Arc::new(
                (0..pairs)
                    .map(|i| v1::PairKey {
                        budget_id: "b".to_owned(),
                        itemization_id: format!("i{i}"),
                    })
                    .collect(),
            ),
            values: Arc::new(vec![0.5; pairs * 2]),
            n_cols: 2,
            results: vec![v1::ModelScores {
                model: "m".to_owned(),
                version: "1".to_owned(),
                threshold: 0.5,
                scores: vec![0.7; pairs],
                matched: vec![true; pairs],
                ..v1::ModelScores::default()
            }],
            models: Vec::new(),
            shadow: false,
            inputs: None,
            errors: Arc::new(Vec::new()),
        }
    }

    /// Every outcome of `request` built in full: what the records must
    /// decode to.
    fn expand(request: &ScoredRequest, kept: &FeaturizerConfig) -> Vec<v1::Outcome> {
        let (budgets, items) = match &request.inputs {
            Some(inputs) => (index_budgets(inputs), index_items(inputs)),
            None => (HashMap::new(), HashMap::new()),
        };
        let mut out = Vec::new();
        for scores in &request.results {
            for (row, key) in request.keys.iter().enumerate() {
                out.push(v1::Outcome {
                    outcome_id: outcome_id(
                        &request.request_id,
                        &scores.model,
                        &scores.version,
                        row,
                    ),
                    request_id: request.request_id.clone(),
                    correlation_id: request.correlation_id.clone(),
                    scored_at_ms: request.scored_at_ms,
                    model: scores.model.clone(),
                    version: scores.version.clone(),
                    schema_hash: request.schema_hash.clone(),
                    budget_id: key.budget_id.clone(),
                    itemization_id: key.itemization_id.clone(),
                    score: if row_scored(scores, row) {
                        scores.scores[row]
                    } else {
                        0.0
                    },
                    threshold: scores.threshold,
                    matched: scores.matched[row] && row_scored(scores, row),
                    not_scored: !row_scored(scores, row),
                    latency_ms: request.latency_ms,
                    shadow: request.shadow,
                    budget: budgets
                        .get(key.budget_id.as_str())
                        .map(|b| kept_budget(b, kept)),
                    line_item: items
                        .get(key.itemization_id.as_str())
                        .map(|i| kept_line_item(i, kept)),
                    features: request.values[row * request.n_cols..(row + 1) * request.n_cols]
                        .to_vec(),
                    explanation: None,
                });
            }
        }
        out
    }

    fn encoder(max_request_bytes: u64) -> Encoder {
        Encoder {
            kept: FeaturizerConfig::default(),
            max_request_bytes,
        }
    }

    fn append(request: ScoredRequest) -> Append {
        Append {
            request,
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
            reply: None,
        }
    }

    /// Every record the spool holds, decoded.
    fn records(reader: &mut SpoolReader) -> Vec<SpoolRecord> {
        reader
            .read(u64::MAX, u64::MAX)
            .unwrap()
            .iter()
            .map(|r| SpoolRecord::decode(r.payload.as_slice()).unwrap())
            .collect()
    }

    #[test]
    fn records_decode_to_the_full_outcomes_with_inputs_cut_to_what_is_read() {
        let mut request = scored("req-3", 3);
        request.keys = Arc::new(vec![
            v1::PairKey {
                budget_id: "b1".to_owned(),
                itemization_id: "i1".to_owned(),
            },
            v1::PairKey {
                budget_id: "b1".to_owned(),
                itemization_id: "i2".to_owned(),
            },
            // No inputs for this pair: no budget, no line item.
            v1::PairKey {
                budget_id: "b9".to_owned(),
                itemization_id: "i9".to_owned(),
            },
        ]);
        request.values = Arc::new((0..6).map(|v| v as f32 / 4.0).collect());
        request.results[0].scores = vec![0.25, 0.0, 0.75];
        request.results[0].matched = vec![false, false, true];
        request.results.push(v1::ModelScores {
            model: "other".to_owned(),
            version: "4".to_owned(),
            threshold: 0.1,
            // Gated: the middle row was not scored (NaN, not matched).
            scores: vec![0.5, f32::NAN, 0.5],
            matched: vec![true, false, true],
            scored: vec![true, false, true],
            gate: "m".to_owned(),
            ..v1::ModelScores::default()
        });
        request.correlation_id = "caller-9".to_owned();
        request.inputs = Some(Arc::new(FeaturizeRequest {
            budgets: vec![v1::Budget {
                budget_id: Some("b1".to_owned()),
                travel_vendor_receipts: Some("Southwest Airlines ".repeat(10_000)),
                ..v1::Budget::default()
            }],
            all_user_expense_lineitems: vec![
                v1::ExpenseLineItem {
                    itemization_id: Some("i1".to_owned()),
                    vendor_name_expense: Some("taxi".to_owned()),
                    ..v1::ExpenseLineItem::default()
                },
                v1::ExpenseLineItem {
                    itemization_id: Some("i2".to_owned()),
                    ..v1::ExpenseLineItem::default()
                },
            ],
        }));
        request.errors = Arc::new(vec![v1::ItemError {
            itemization_id: "i3".to_owned(),
            index: 2,
            ..v1::ItemError::default()
        }]);

        let (mut writer, mut reader, _) =
            spool::open(None, SpoolOptions::new(64 << 20, false)).unwrap();
        let group = [append(request.clone())];
        assert_eq!(encoder(1 << 30).commit(&mut writer, &group), vec![Ok(())]);
        let records = records(&mut reader);
        let expected = expand(&request, &FeaturizerConfig::default());
        let outcomes: Vec<v1::Outcome> = records.iter().flat_map(|r| r.outcomes.clone()).collect();
        assert_eq!(outcomes, expected);
        assert_eq!(outcomes[0].outcome_id, "req-3/m/1/0");
        assert_eq!(outcomes[5].outcome_id, "req-3/other/4/2");
        // The row the gated model did not score is sent all the same,
        // marked, with no score.
        assert!(outcomes[4].not_scored && !outcomes[4].matched && outcomes[4].score == 0.0);
        assert!(!outcomes[3].not_scored && !outcomes[5].not_scored);
        assert_eq!(outcomes[0].correlation_id, "caller-9");
        let travel = outcomes[0]
            .budget
            .as_ref()
            .unwrap()
            .travel_vendor_receipts
            .clone()
            .unwrap();
        assert!(travel.starts_with("Southwest Airlines "));
        assert!(travel.ends_with("…[cut from 190000 bytes]"), "{travel}");
        assert_eq!(records[0].request_id, "req-3");
        assert_eq!(records[0].errors.len(), 1);
        assert!(records.iter().all(|r| r.traceparent.starts_with("00-0af7")));
    }

    #[test]
    fn a_large_request_is_cut_into_bounded_records_written_all_or_nothing() {
        let (mut writer, mut reader, _) =
            spool::open(None, SpoolOptions::new(64 << 20, false)).unwrap();
        let big = scored("big", 20_000);
        let group = [append(big.clone())];
        assert_eq!(encoder(1 << 30).commit(&mut writer, &group), vec![Ok(())]);
        let read = reader.read(u64::MAX, u64::MAX).unwrap();
        assert!(read.len() > 2, "{} records", read.len());
        assert!(read.iter().all(|r| r.payload.len() < RECORD_BYTES + 1_024));
        assert_eq!(read.iter().map(|r| r.outcomes).sum::<u64>(), 20_000);

        // Over the limit of one request: refused, nothing of it kept, the
        // request beside it kept.
        let group = [append(scored("huge", 20_000)), append(scored("small", 2))];
        let results = encoder(100_000).commit(&mut writer, &group);
        assert_eq!(
            results,
            vec![Err(Refused::TooLarge { limit: 100_000 }), Ok(())]
        );
        let ids: Vec<String> = records(&mut reader)
            .into_iter()
            .flat_map(|r| r.outcomes)
            .map(|o| o.request_id)
            .collect();
        assert_eq!(ids, ["small", "small"]);
    }

    #[test]
    fn a_full_spool_refuses_requests_whole_and_keeps_what_it_took() {
        let (mut writer, mut reader, _) =
            spool::open(None, SpoolOptions::new(200_000, false)).unwrap();
        let mut results = Vec::new();
        for i in 0..100 {
            let group = [append(scored(&format!("r{i}"), 100))];
            results.extend(encoder(1 << 30).commit(&mut writer, &group));
        }
        let kept = results.iter().filter(|r| r.is_ok()).count();
        assert!(kept > 0 && kept < 100, "{kept} kept");
        assert!(
            results[kept..]
                .iter()
                .all(|r| *r == Err(Refused::SpoolFull))
        );
        let stored = records(&mut reader)
            .into_iter()
            .flat_map(|r| r.outcomes)
            .count();
        assert_eq!(stored, kept * 100, "whole requests only");
        assert!(writer.usage().bytes <= 200_000);
    }

    /// A segment file whose writes or syncs fail while `fail` is set.
    #[derive(Debug)]
    struct Flaky {
        file: std::fs::File,
        fail_write: Arc<std::sync::atomic::AtomicBool>,
        fail_sync: Arc<std::sync::atomic::AtomicBool>,
    }

    impl spool::SegmentFile for Flaky {
        fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            use std::io::Write as _;
            if self.fail_write.load(Ordering::Relaxed) {
                // Half the bytes land, then the disk gives up.
                self.file.write_all(&bytes[..bytes.len() / 2])?;
                return Err(std::io::Error::other("injected write failure"));
            }
            self.file.write_all(bytes)
        }

        fn sync_data(&mut self) -> std::io::Result<()> {
            if self.fail_sync.load(Ordering::Relaxed) {
                return Err(std::io::Error::other("injected fsync failure"));
            }
            self.file.sync_data()
        }

        fn truncate(&mut self, len: u64) -> std::io::Result<()> {
            self.file.set_len(len)
        }
    }

    #[tokio::test]
    async fn a_failed_write_or_fsync_refuses_its_requests_and_loses_nothing_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let fail_write = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let fail_sync = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut config = OutcomeConfig::new(dead_endpoint().await);
        config.spool.dir = Some(dir.path().to_owned());
        config.spool.fsync = true;
        config.spool.drain_timeout = Duration::from_millis(50);
        let wrap: spool::WrapSegment = {
            let (fail_write, fail_sync) = (Arc::clone(&fail_write), Arc::clone(&fail_sync));
            Arc::new(move |file| {
                Box::new(Flaky {
                    file,
                    fail_write: Arc::clone(&fail_write),
                    fail_sync: Arc::clone(&fail_sync),
                })
            })
        };
        let (publisher, tasks) = OutcomePublisher::start_with(config, Some(wrap))
            .await
            .unwrap();

        assert_eq!(publisher.publish(scored("ok-1", 10)).await, Ok(()));
        fail_sync.store(true, Ordering::Relaxed);
        assert_eq!(
            publisher.publish(scored("no-sync", 10)).await,
            Err(Refused::Failed)
        );
        fail_sync.store(false, Ordering::Relaxed);
        assert_eq!(publisher.publish(scored("ok-2", 10)).await, Ok(()));
        fail_write.store(true, Ordering::Relaxed);
        assert_eq!(
            publisher.publish(scored("no-write", 10)).await,
            Err(Refused::Failed)
        );
        fail_write.store(false, Ordering::Relaxed);
        assert_eq!(publisher.publish(scored("ok-3", 10)).await, Ok(()));
        let stats = Arc::clone(publisher.stats());
        assert_eq!(stats.refused.load(Ordering::Relaxed), 2);
        assert_eq!(stats.published.load(Ordering::Relaxed), 30);
        tasks.shutdown().await;
        drop(publisher);

        // What was acknowledged is all there, in order, and nothing else.
        let (_, mut reader, recovered) =
            spool::open(Some(dir.path()), SpoolOptions::new(1 << 30, false)).unwrap();
        assert_eq!(recovered.outcomes, 30);
        let ids: Vec<String> = records(&mut reader)
            .into_iter()
            .flat_map(|r| r.outcomes)
            .map(|o| o.request_id)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(ids, ["ok-1", "ok-2", "ok-3"]);
    }

    /// An address nothing listens on.
    async fn dead_endpoint() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    #[tokio::test]
    async fn after_shutdown_requests_are_refused_not_answered_and_dropped() {
        let mut config = OutcomeConfig::new(dead_endpoint().await);
        config.spool.drain_timeout = Duration::from_millis(50);
        let (publisher, tasks) = OutcomePublisher::start(config).await.unwrap();
        assert_eq!(publisher.publish(scored("before", 3)).await, Ok(()));
        tasks.shutdown().await;
        assert_eq!(
            publisher.publish(scored("late", 3)).await,
            Err(Refused::Closed)
        );
        let stats = publisher.stats();
        assert_eq!(stats.refused.load(Ordering::Relaxed), 1);
        // The in-memory spool could not reach the monitor: counted by reason.
        assert_eq!(stats.dropped_for(DropReason::Shutdown), 3);
    }

    #[test]
    fn outcome_ids_never_collide_whatever_the_pair_ids() {
        // Budgets `a` and `a/b` with items `b/c` and `c`: four pairs, four
        // ids (the pair ids are not part of them).
        let ids: std::collections::HashSet<String> = (0..4)
            .map(|row| outcome_id("0123abcd", "m", "1", row))
            .collect();
        assert_eq!(ids.len(), 4);
        assert_eq!(outcome_id("0123abcd", "m", "1", 3), "0123abcd/m/1/3");
    }

    #[test]
    fn backfill_identity_is_stable_for_a_replay_and_differs_for_any_other_request() {
        let ids = triad_telemetry::RequestIds {
            request_id: "fresh".to_owned(),
            correlation_id: "synth-7".to_owned(),
        };
        let request = v1::ScoreRequest {
            budgets: vec![v1::Budget {
                budget_id: Some("b".to_owned()),
                ..v1::Budget::default()
            }],
            ..v1::ScoreRequest::default()
        };
        let at = Some(1_700_000_000_000);
        let replay = request_identity(&ids, at, &request);
        assert_eq!(replay, request_identity(&ids, at, &request));
        assert_eq!(replay.len(), 32);
        let mut other = request.clone();
        other.budgets[0].budget_id = Some("c".to_owned());
        assert_ne!(
            replay,
            request_identity(&ids, at, &other),
            "same id, other inputs"
        );
        assert_ne!(
            replay,
            request_identity(&ids, Some(1_700_000_000_001), &request)
        );
        // Live traffic (no time of its own) always gets the fresh id.
        assert_eq!(request_identity(&ids, None, &request), "fresh");
    }

    #[tokio::test]
    async fn a_spool_opening_task_that_panics_says_so() {
        let panicked = tokio::task::spawn_blocking(|| panic!("disk gone"))
            .await
            .unwrap_err();
        let message = OutcomeError::from(panicked).to_string();
        assert!(
            message.starts_with("opening the outcome spool did not finish: task "),
            "{message}"
        );
        assert!(message.contains("panicked"), "{message}");
    }
}
