//! Sends every scored outcome to the monitor, through a spool, so that no
//! acknowledged outcome is lost: not to a monitor outage, not to a crash of
//! the scorer.
//!
//! The request path turns each [`ScoredBatch`] into one spool record
//! (outcomes, the request's item errors, its W3C `traceparent`) and hands
//! it to the writer task, which appends everything queued with one write
//! (group commit) and then wakes every waiting request. A `Score` call
//! answers only once its record is written ([`Written`]): in the OS page
//! cache, which survives `SIGKILL` of the process, or on disk with `fsync`
//! ([`SpoolConfig::fsync`]). The sender task reads the spool in order,
//! sends `RecordOutcomes` batches, retrying with backoff while the monitor
//! is down or slow, and moves the spool's cursor past what the monitor
//! acknowledged. After a restart it resumes at the cursor: delivery is at
//! least once, and the monitor stores each (deterministic) outcome id once,
//! so every outcome becomes exactly one row.
//!
//! The spool is bounded ([`SpoolConfig::max_bytes`]); what does not fit is
//! dropped, counted in [`PublisherStats::dropped`] and
//! `triad_outcomes_dropped_total`, and logged: never silently. A full spool
//! never fails or slows a `Score` call. Without a spool directory the same
//! log is kept in memory: it rides out a monitor outage, not a restart.

pub mod spool;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use prost::Message;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use triad_proto::v1::monitor_client::MonitorClient;
use triad_proto::v1::{self, FeaturizeRequest};
use triad_server::client::{self, ClientConfig, GrpcChannel};

pub use crate::config::SpoolConfig;
use spool::{Position, Record, SpoolError, SpoolOptions, SpoolReader, SpoolWriter};

/// Settings of the outcome publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeConfig {
    /// The monitor's gRPC URL.
    pub endpoint: String,
    /// Most outcomes per `RecordOutcomes` call (a larger record is split).
    pub batch_size: usize,
    /// Longest an outcome waits for its batch to fill.
    pub flush_interval: Duration,
    /// Deadline of each `RecordOutcomes` call.
    pub timeout: Duration,
    /// Longest wait between two attempts while the monitor is down.
    pub max_backoff: Duration,
    /// Where outcomes wait for the monitor.
    pub spool: SpoolConfig,
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
            flush_interval: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(2),
            spool: SpoolConfig::default(),
            client: ClientConfig::default(),
        }
    }
}

/// Failures starting the publisher.
#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    #[error(transparent)]
    Endpoint(#[from] client::ClientError),
    #[error("cannot open the outcome spool: {0}")]
    Spool(#[from] SpoolError),
    #[error("cannot open the outcome spool: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Process-wide Prometheus counterparts of [`PublisherStats`].
struct OutcomeMetrics {
    published: IntCounter,
    sent: IntCounter,
    dropped: IntCounter,
    send_failures: IntCounter,
    replayed: IntCounter,
    pending: IntGauge,
    spool_bytes: IntGauge,
    spool_segments: IntGauge,
}

static METRICS: LazyLock<OutcomeMetrics> = LazyLock::new(|| {
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
    OutcomeMetrics {
        published: counter(
            "outcomes_published_total",
            "Scored outcomes handed to the outcome spool",
        ),
        sent: counter("outcomes_sent_total", "Outcomes the monitor acknowledged"),
        dropped: counter(
            "outcomes_dropped_total",
            "Outcomes dropped: spool full or failing, refused by the monitor, or not flushed at shutdown without a spool directory",
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
    }
});

/// Counters of the publisher, for metrics and tests.
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// Outcomes handed over by requests.
    pub published: AtomicU64,
    /// Outcomes the monitor acknowledged.
    pub sent: AtomicU64,
    /// Outcomes dropped: the spool was full or failing, the monitor refused
    /// them as invalid, or shutdown could not flush a spool in memory.
    pub dropped: AtomicU64,
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
    fn drop_outcomes(&self, n: u64, why: &dyn std::fmt::Display) {
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        METRICS.dropped.inc_by(n);
        // Log the first drop and then every 10 000th outcome dropped.
        if total == n || total / 10_000 != (total - n) / 10_000 {
            tracing::warn!(
                dropped = n,
                dropped_total = total,
                "outcomes dropped: {why}"
            );
        }
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

/// One model's scores for one request, as the request path hands them over.
#[derive(Debug, Clone)]
pub struct ScoredBatch {
    pub request_id: String,
    pub scored_at_ms: i64,
    pub latency_ms: f32,
    pub schema_hash: String,
    pub keys: Arc<Vec<v1::PairKey>>,
    /// The matrix, row-major, `n_cols` wide.
    pub values: Arc<Vec<f32>>,
    pub n_cols: usize,
    pub scores: v1::ModelScores,
    pub shadow: bool,
    /// The raw request, when the scorer featurized it itself.
    pub inputs: Option<Arc<FeaturizeRequest>>,
    /// The request's per-item errors; carried by one batch per request.
    pub errors: Vec<v1::ItemError>,
}

/// One spool record: a [`ScoredBatch`] as the monitor will receive it, and
/// the trace of the request that produced it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SpoolRecord {
    /// W3C `traceparent` of the producing request (empty: none).
    #[prost(string, tag = "1")]
    pub traceparent: String,
    #[prost(message, repeated, tag = "2")]
    pub outcomes: Vec<v1::Outcome>,
    /// The request's per-item errors, with its id.
    #[prost(message, repeated, tag = "3")]
    pub errors: Vec<v1::ItemError>,
    #[prost(string, tag = "4")]
    pub request_id: String,
}

/// A record on its way to the writer task.
struct Append {
    frame: Vec<u8>,
    outcomes: u64,
    written: oneshot::Sender<()>,
}

/// Resolves once a published batch is in the spool (or was dropped,
/// counted and logged). Dropping it does not stop the write.
#[must_use = "await it before answering: the outcomes are safe once it resolves"]
#[derive(Debug)]
pub struct Written(Option<oneshot::Receiver<()>>);

impl Future for Written {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            None => Poll::Ready(()),
            // An error means the writer is gone; it counted the drop.
            Some(written) => Pin::new(written).poll(cx).map(|_| ()),
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
        let (writer, reader, recovered) =
            tokio::task::spawn_blocking(move || spool::open(dir.as_deref(), options)).await??;
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
        let writer = tokio::spawn(write_loop(
            writer,
            queue,
            closed,
            done,
            Arc::clone(&written),
            config.spool.fsync,
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

    /// Encodes `batch` as one spool record and queues it for the writer;
    /// await the result before answering the request. A full or failing
    /// spool drops the record (counted and logged), never fails the call.
    pub fn publish(&self, batch: ScoredBatch) -> Written {
        let n = batch.scores.scores.len() as u64;
        if n == 0 && batch.errors.is_empty() {
            return Written(None);
        }
        self.stats.published.fetch_add(n, Ordering::Relaxed);
        METRICS.published.inc_by(n);
        let traceparent = triad_telemetry::current_traceparent().unwrap_or_default();
        let mut frame = Vec::new();
        spool::frame_with(&mut frame, n as u32, |out| {
            encode_record(batch, traceparent, out);
        });
        if frame.len() - spool::HEADER_BYTES > spool::MAX_PAYLOAD_BYTES as usize {
            self.stats.drop_outcomes(
                n,
                &format_args!(
                    "a record of {} bytes is too large for the spool",
                    frame.len()
                ),
            );
            return Written(None);
        }
        let (written, wait) = oneshot::channel();
        let append = Append {
            frame,
            outcomes: n,
            written,
        };
        if self.appends.send(append).is_err() {
            self.stats
                .drop_outcomes(n, &"the outcome spool is closed (shutting down)");
            return Written(None);
        }
        Written(Some(wait))
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

/// The writer task: appends everything queued with one write (group
/// commit), then wakes the requests waiting for it and the sender.
async fn write_loop(
    mut writer: SpoolWriter,
    mut queue: mpsc::UnboundedReceiver<Append>,
    mut close: watch::Receiver<bool>,
    done: watch::Sender<bool>,
    written: Arc<Notify>,
    fsync: bool,
    stats: Arc<PublisherStats>,
) {
    let mut group: Vec<Append> = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
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
            if fsync {
                // A flush takes milliseconds: keep it off the async threads.
                let taken = std::mem::take(&mut group);
                let mut buf = std::mem::take(&mut buffer);
                let stats_ref = Arc::clone(&stats);
                let flushed = tokio::task::spawn_blocking(move || {
                    commit(&mut writer, &taken, &mut buf, &stats_ref);
                    (writer, taken, buf)
                })
                .await;
                match flushed {
                    Ok((back, taken, buf)) => (writer, group, buffer) = (back, taken, buf),
                    Err(error) => {
                        tracing::error!(%error, "the outcome spool writer failed; outcomes from now on are dropped");
                        break;
                    }
                }
            } else {
                commit(&mut writer, &group, &mut buffer, &stats);
            }
            stats.set_usage(writer.usage());
            written.notify_one();
            for append in group.drain(..) {
                let _ = append.written.send(());
            }
        }
        if closing {
            break;
        }
    }
    let _ = done.send(true);
    written.notify_one();
}

/// Writes one group of records: with one write when they fit, else record
/// by record, dropping (and counting) what does not.
fn commit(
    writer: &mut SpoolWriter,
    group: &[Append],
    buffer: &mut Vec<u8>,
    stats: &PublisherStats,
) {
    let outcomes: u64 = group.iter().map(|a| a.outcomes).sum();
    let result = if let [one] = group {
        writer.append(&one.frame, one.outcomes)
    } else {
        buffer.clear();
        for append in group {
            buffer.extend_from_slice(&append.frame);
        }
        writer.append(buffer, outcomes)
    };
    match result {
        Ok(()) => {}
        Err(error) if group.len() == 1 => stats.drop_outcomes(outcomes, &error),
        Err(_) => {
            for append in group {
                if let Err(error) = writer.append(&append.frame, append.outcomes) {
                    stats.drop_outcomes(append.outcomes, &error);
                }
            }
        }
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
    // The bytes one `RecordOutcomes` call should stay under.
    let max_bytes = 8 << 20;
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
        if !closing && outcomes < batch {
            let deadline = Instant::now() + sender.config.flush_interval;
            loop {
                tokio::select! {
                    () = written.notified() => {}
                    () = tokio::time::sleep_until(deadline) => break,
                    _ = writer_done.changed() => break,
                }
                match reader.read(batch - outcomes, max_bytes) {
                    Ok(more) => {
                        outcomes += more.iter().map(|r| r.outcomes).sum::<u64>();
                        records.extend(more);
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot read the outcome spool");
                        break;
                    }
                }
                if outcomes >= batch {
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
    traceparent: String,
    /// The end of the last record whose outcomes are all in this call.
    complete: Option<Position>,
    /// Outcomes of records completed by this call (for the spool's count).
    completed_outcomes: u64,
}

impl Sender<'_> {
    /// Sends `records` in calls of at most a batch of outcomes, moving the
    /// cursor past each record once the monitor has acknowledged all of it.
    async fn send_records(&mut self, records: Vec<Record>, reader: &mut SpoolReader) {
        let batch = self.config.batch_size.max(1);
        let mut call = Pending::default();
        for record in records {
            let decoded = match SpoolRecord::decode(record.payload.as_slice()) {
                Ok(decoded) => decoded,
                Err(error) => {
                    tracing::error!(%error, "cannot decode an outcome spool record; skipping it");
                    self.stats
                        .drop_outcomes(record.outcomes, &"an undecodable spool record");
                    self.flush(&mut call, reader).await;
                    self.acknowledge(reader, record.end, record.outcomes);
                    continue;
                }
            };
            if !decoded.errors.is_empty() {
                let request = v1::RecordOutcomesRequest {
                    errors: decoded.errors,
                    request_id: decoded.request_id,
                    ..v1::RecordOutcomesRequest::default()
                };
                self.send(request, &decoded.traceparent, 0).await;
            }
            if call.outcomes.is_empty() {
                call.traceparent = decoded.traceparent.clone();
            }
            let mut outcomes = decoded.outcomes;
            while call.outcomes.len() + outcomes.len() > batch {
                let take = batch - call.outcomes.len();
                let rest = outcomes.split_off(take);
                call.outcomes.append(&mut outcomes);
                outcomes = rest;
                self.flush(&mut call, reader).await;
                call.traceparent = decoded.traceparent.clone();
            }
            call.outcomes.append(&mut outcomes);
            call.complete = Some(record.end);
            call.completed_outcomes += record.outcomes;
            if call.outcomes.len() >= batch {
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
            let n = call.outcomes.len() as u64;
            let request = v1::RecordOutcomesRequest {
                outcomes: call.outcomes,
                ..v1::RecordOutcomesRequest::default()
            };
            self.send(request, &call.traceparent, n).await;
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

    /// Calls `RecordOutcomes` until the monitor acknowledges `request`,
    /// backing off exponentially. A call the monitor refuses as invalid is
    /// not retried: its `n` outcomes are counted as dropped.
    async fn send(&mut self, request: v1::RecordOutcomesRequest, traceparent: &str, n: u64) {
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
                Ok(_) => {
                    self.stats.sent.fetch_add(n, Ordering::Relaxed);
                    METRICS.sent.inc_by(n);
                    return;
                }
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::InvalidArgument | tonic::Code::OutOfRange
                    ) =>
                {
                    tracing::error!(endpoint = %self.config.endpoint, %status, "the monitor refused a batch of outcomes; not retrying it");
                    self.stats.drop_outcomes(n, &"refused by the monitor");
                    return;
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

/// `SpoolRecord.outcomes`: field 2, length-delimited.
const OUTCOMES_KEY: u8 = (2 << 3) | 2;

/// Encodes `batch` as a [`SpoolRecord`] into `out`: the bytes the record
/// would have with every `Outcome` built in full, without building them.
/// A protobuf message may arrive in any number of parts, so the fields
/// every outcome of the batch shares, and each budget's and line item's
/// inputs, are encoded once and copied into each outcome; the rest goes
/// through one reused `Outcome`. A 50×200 request makes 10 000 outcomes on
/// the request path: this keeps them off the allocator.
fn encode_record(batch: ScoredBatch, traceparent: String, out: &mut Vec<u8>) {
    let scores = &batch.scores;
    let common = v1::Outcome {
        request_id: batch.request_id.clone(),
        scored_at_ms: batch.scored_at_ms,
        model: scores.model.clone(),
        version: scores.version.clone(),
        schema_hash: batch.schema_hash.clone(),
        threshold: scores.threshold,
        latency_ms: batch.latency_ms,
        shadow: batch.shadow,
        ..v1::Outcome::default()
    }
    .encode_to_vec();
    // Each input is encoded once, when an outcome first needs it.
    let (budgets, items) = match &batch.inputs {
        Some(inputs) => (index_budgets(inputs), index_items(inputs)),
        None => (HashMap::new(), HashMap::new()),
    };
    let mut budget_parts: HashMap<&str, Vec<u8>> = HashMap::new();
    let mut item_parts: HashMap<&str, Vec<u8>> = HashMap::new();
    let mut own = v1::Outcome::default();
    for (row, ((key, score), matched)) in batch
        .keys
        .iter()
        .zip(&scores.scores)
        .zip(&scores.matched)
        .enumerate()
    {
        own.outcome_id.clear();
        write_outcome_id(&mut own.outcome_id, &batch, key);
        own.budget_id.clone_from(&key.budget_id);
        own.itemization_id.clone_from(&key.itemization_id);
        own.score = *score;
        own.matched = *matched;
        own.features.clear();
        if let Some(features) = batch
            .values
            .get(row * batch.n_cols..(row + 1) * batch.n_cols)
        {
            own.features.extend_from_slice(features);
        }
        let budget = match budgets.get_key_value(key.budget_id.as_str()) {
            Some((id, budget)) => budget_parts.entry(id).or_insert_with(|| {
                v1::Outcome {
                    budget: Some((*budget).clone()),
                    ..v1::Outcome::default()
                }
                .encode_to_vec()
            }),
            None => &[][..],
        };
        let item = match items.get_key_value(key.itemization_id.as_str()) {
            Some((id, item)) => item_parts.entry(id).or_insert_with(|| {
                v1::Outcome {
                    line_item: Some((*item).clone()),
                    ..v1::Outcome::default()
                }
                .encode_to_vec()
            }),
            None => &[][..],
        };
        let len = common.len() + own.encoded_len() + budget.len() + item.len();
        out.push(OUTCOMES_KEY);
        append_varint(len as u64, out);
        out.extend_from_slice(&common);
        append(&own, out);
        out.extend_from_slice(budget);
        out.extend_from_slice(item);
    }
    let rest = SpoolRecord {
        traceparent,
        outcomes: Vec::new(),
        request_id: if batch.errors.is_empty() {
            String::new()
        } else {
            batch.request_id.clone()
        },
        errors: batch.errors,
    };
    append(&rest, out);
}

/// Appends `message` to `out`.
fn append(message: &impl Message, out: &mut Vec<u8>) {
    out.reserve(message.encoded_len());
    // Encoding fails only when the buffer has no room; a `Vec` grows.
    let _ = message.encode(out);
}

/// Appends a protobuf varint.
fn append_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Turns one scored batch into outcome messages: what [`encode_record`]
/// encodes, built in full (the reference its test compares with).
#[cfg(test)]
fn expand(batch: &ScoredBatch, out: &mut Vec<v1::Outcome>) {
    let (budgets, items) = match &batch.inputs {
        Some(inputs) => (index_budgets(inputs), index_items(inputs)),
        None => (HashMap::new(), HashMap::new()),
    };
    let scores = &batch.scores;
    out.reserve(scores.scores.len());
    for (row, ((key, score), matched)) in batch
        .keys
        .iter()
        .zip(&scores.scores)
        .zip(&scores.matched)
        .enumerate()
    {
        let features = batch
            .values
            .get(row * batch.n_cols..(row + 1) * batch.n_cols)
            .map(<[f32]>::to_vec)
            .unwrap_or_default();
        out.push(v1::Outcome {
            outcome_id: outcome_id(batch, key),
            request_id: batch.request_id.clone(),
            scored_at_ms: batch.scored_at_ms,
            model: scores.model.clone(),
            version: scores.version.clone(),
            schema_hash: batch.schema_hash.clone(),
            budget_id: key.budget_id.clone(),
            itemization_id: key.itemization_id.clone(),
            score: *score,
            threshold: scores.threshold,
            matched: *matched,
            latency_ms: batch.latency_ms,
            shadow: batch.shadow,
            budget: budgets.get(key.budget_id.as_str()).map(|b| (*b).clone()),
            line_item: items.get(key.itemization_id.as_str()).map(|i| (*i).clone()),
            features,
            correlation_id: String::new(),
        });
    }
}

/// `request/model/version/budget/item`: unique per outcome and stable
/// across retries.
#[cfg(test)]
fn outcome_id(batch: &ScoredBatch, key: &v1::PairKey) -> String {
    let mut id = String::new();
    write_outcome_id(&mut id, batch, key);
    id
}

fn write_outcome_id(out: &mut String, batch: &ScoredBatch, key: &v1::PairKey) {
    for (i, part) in [
        &batch.request_id,
        &batch.scores.model,
        &batch.scores.version,
        &key.budget_id,
        &key.itemization_id,
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            out.push('/');
        }
        out.push_str(part);
    }
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

    fn batch(request: &str, pairs: usize) -> ScoredBatch {
        ScoredBatch {
            request_id: request.to_owned(),
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
            scores: v1::ModelScores {
                model: "m".to_owned(),
                version: "1".to_owned(),
                threshold: 0.5,
                scores: vec![0.7; pairs],
                matched: vec![true; pairs],
            },
            shadow: false,
            inputs: None,
            errors: Vec::new(),
        }
    }

    #[test]
    fn the_record_encoder_writes_what_full_outcomes_would_encode_to() {
        let mut scored = batch("req-3", 3);
        scored.keys = Arc::new(vec![
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
        scored.values = Arc::new((0..6).map(|v| v as f32 / 4.0).collect());
        scored.scores.scores = vec![0.25, 0.0, 0.75];
        scored.scores.matched = vec![false, false, true];
        scored.shadow = true;
        scored.inputs = Some(Arc::new(FeaturizeRequest {
            budgets: vec![v1::Budget {
                budget_id: Some("b1".to_owned()),
                travel_vendor_receipts: Some("Southwest Airlines".to_owned()),
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
        scored.errors = vec![v1::ItemError {
            itemization_id: "i3".to_owned(),
            index: 2,
            ..v1::ItemError::default()
        }];

        let mut expected = SpoolRecord {
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
            outcomes: Vec::new(),
            errors: scored.errors.clone(),
            request_id: "req-3".to_owned(),
        };
        expand(&scored, &mut expected.outcomes);
        assert_eq!(
            expected.outcomes[0]
                .budget
                .as_ref()
                .unwrap()
                .travel_vendor_receipts
                .as_deref(),
            Some("Southwest Airlines")
        );
        assert_eq!(expected.outcomes[2].budget, None);

        let mut encoded = Vec::new();
        encode_record(scored, expected.traceparent.clone(), &mut encoded);
        assert_eq!(SpoolRecord::decode(encoded.as_slice()).unwrap(), expected);
    }

    /// An address nothing listens on.
    async fn dead_endpoint() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    #[tokio::test]
    async fn a_full_spool_drops_and_counts_what_does_not_fit_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = OutcomeConfig::new(dead_endpoint().await);
        config.spool.dir = Some(dir.path().to_owned());
        config.spool.max_bytes = Some(64 << 10);
        config.spool.drain_timeout = Duration::from_millis(50);
        let (publisher, tasks) = OutcomePublisher::start(config).await.unwrap();
        let dropped_before = METRICS.dropped.get();
        for i in 0..200 {
            publisher.publish(batch(&format!("r{i}"), 10)).await;
        }
        let stats = Arc::clone(publisher.stats());
        let (published, dropped) = (
            stats.published.load(Ordering::Relaxed),
            stats.dropped.load(Ordering::Relaxed),
        );
        assert_eq!(published, 2_000);
        assert!(dropped > 0 && dropped < 2_000, "dropped {dropped}");
        assert_eq!(dropped % 10, 0, "whole records are dropped");
        assert_eq!(stats.pending.load(Ordering::Relaxed), 2_000 - dropped);
        assert!(stats.spool_bytes.load(Ordering::Relaxed) <= 64 << 10);
        assert!(METRICS.dropped.get() - dropped_before >= dropped);

        tasks.shutdown().await;
        let late = publisher.publish(batch("late", 3));
        late.await;
        assert_eq!(stats.dropped.load(Ordering::Relaxed), dropped + 3);
        drop(publisher);
        let (_, _, recovered) =
            spool::open(Some(dir.path()), SpoolOptions::new(64 << 10, false)).unwrap();
        assert_eq!(
            recovered.outcomes,
            2_000 - dropped,
            "what was not sent stays in the spool"
        );
    }

    #[tokio::test]
    async fn records_carry_the_outcomes_errors_and_trace_of_their_request() {
        let mut config = OutcomeConfig::new(dead_endpoint().await);
        config.spool.drain_timeout = Duration::from_millis(50);
        let dir = tempfile::tempdir().unwrap();
        config.spool.dir = Some(dir.path().to_owned());
        let (publisher, tasks) = OutcomePublisher::start(config).await.unwrap();
        let mut with_errors = batch("req-7", 2);
        with_errors.errors = vec![v1::ItemError {
            item_kind: "budget".to_owned(),
            index: 3,
            ..v1::ItemError::default()
        }];
        publisher.publish(with_errors).await;
        tasks.shutdown().await;
        drop(publisher);

        let (_, mut reader, recovered) =
            spool::open(Some(dir.path()), SpoolOptions::new(1 << 20, false)).unwrap();
        assert_eq!(recovered.outcomes, 2);
        let records = reader.read(100, 1 << 20).unwrap();
        let record = SpoolRecord::decode(records[0].payload.as_slice()).unwrap();
        let ids: Vec<&str> = record
            .outcomes
            .iter()
            .map(|o| o.outcome_id.as_str())
            .collect();
        assert_eq!(ids, ["req-7/m/1/b/i0", "req-7/m/1/b/i1"]);
        assert_eq!(record.request_id, "req-7");
        assert_eq!(record.errors.len(), 1);
        assert_eq!(record.errors[0].index, 3);
        // No tracing layer in unit tests: no trace to carry.
        assert_eq!(record.traceparent, "");
    }
}
