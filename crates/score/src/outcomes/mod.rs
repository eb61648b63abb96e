//! Sends every scored outcome to the monitor, asynchronously and in
//! batches, off the request path: a slow or absent monitor never slows or
//! fails a `Score` call.
//!
//! The request path hands over one [`ScoredBatch`] per request and model
//! (cheap: shared matrices and ids), never waiting. A background task turns
//! batches into `Outcome` messages and sends them with `RecordOutcomes`,
//! retrying with backoff while the monitor is down. The buffer is bounded
//! by a count of outcomes; anything that must be dropped is counted in
//! [`PublisherStats::dropped`] and logged — never dropped silently. Outcome
//! ids are deterministic, so a retried batch is stored once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use triad_proto::v1::monitor_client::MonitorClient;
use triad_proto::v1::{self, FeaturizeRequest};
use triad_server::client::{self, ClientConfig, GrpcChannel};

/// Settings of the outcome publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeConfig {
    /// The monitor's gRPC URL.
    pub endpoint: String,
    /// Outcomes per `RecordOutcomes` call.
    pub batch_size: usize,
    /// Longest an outcome waits for its batch to fill.
    pub flush_interval: Duration,
    /// Most outcomes held while the monitor is slow or down; past it new
    /// outcomes are dropped and counted.
    pub capacity: usize,
    /// Deadline of each `RecordOutcomes` call.
    pub timeout: Duration,
    /// How long shutdown waits to flush what is buffered.
    pub drain_timeout: Duration,
}

impl OutcomeConfig {
    /// Defaults for a monitor at `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            batch_size: 1_000,
            flush_interval: Duration::from_millis(200),
            capacity: 200_000,
            timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Process-wide Prometheus counterparts of [`PublisherStats`].
struct OutcomeMetrics {
    published: IntCounter,
    sent: IntCounter,
    dropped: IntCounter,
    send_failures: IntCounter,
    pending: IntGauge,
}

static METRICS: LazyLock<OutcomeMetrics> = LazyLock::new(|| {
    let counter = |name: &str, help: &str| {
        let counter = IntCounter::new(name, help).expect("valid metric options");
        triad_telemetry::metrics::register(Box::new(counter.clone()));
        counter
    };
    let pending = IntGauge::new("outcomes_pending", "Outcomes buffered for the monitor")
        .expect("valid metric options");
    triad_telemetry::metrics::register(Box::new(pending.clone()));
    OutcomeMetrics {
        published: counter(
            "outcomes_published_total",
            "Scored outcomes handed to the monitor sender",
        ),
        sent: counter("outcomes_sent_total", "Outcomes the monitor acknowledged"),
        dropped: counter(
            "outcomes_dropped_total",
            "Outcomes dropped: buffer full, or not flushed at shutdown",
        ),
        send_failures: counter(
            "outcome_send_failures_total",
            "Failed RecordOutcomes calls (each retried)",
        ),
        pending,
    }
});

/// Counters of the publisher, for metrics and tests.
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// Outcomes handed over by requests.
    pub published: AtomicU64,
    /// Outcomes the monitor acknowledged.
    pub sent: AtomicU64,
    /// Outcomes dropped because the buffer was full or shutdown could not
    /// flush them.
    pub dropped: AtomicU64,
    /// Failed `RecordOutcomes` calls (each retried).
    pub send_failures: AtomicU64,
    /// Outcomes buffered right now.
    pub pending: AtomicU64,
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

/// Hands outcomes to the background sender.
#[derive(Debug, Clone)]
pub struct OutcomePublisher {
    sender: mpsc::UnboundedSender<ScoredBatch>,
    capacity: u64,
    stats: Arc<PublisherStats>,
}

impl OutcomePublisher {
    /// Starts the background sender; it runs until every publisher is
    /// dropped, then flushes what it holds (within the drain timeout).
    pub fn start(config: OutcomeConfig) -> Result<(Self, JoinHandle<()>), client::ClientError> {
        let channel = client::connect(
            &config.endpoint,
            &ClientConfig {
                connect_timeout: config.timeout,
                timeout: config.timeout,
                ..ClientConfig::default()
            },
        )?;
        LazyLock::force(&METRICS);
        let (sender, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(PublisherStats::default());
        let publisher = Self {
            sender,
            capacity: config.capacity as u64,
            stats: Arc::clone(&stats),
        };
        let task = tokio::spawn(run(config, MonitorClient::new(channel), receiver, stats));
        Ok((publisher, task))
    }

    /// The publisher's counters.
    pub fn stats(&self) -> &Arc<PublisherStats> {
        &self.stats
    }

    /// Hands a batch over without waiting. Drops it (counted and logged)
    /// when the buffer is full.
    pub fn publish(&self, batch: ScoredBatch) {
        let n = batch.scores.scores.len() as u64;
        if n == 0 && batch.errors.is_empty() {
            return;
        }
        self.stats.published.fetch_add(n, Ordering::Relaxed);
        METRICS.published.inc_by(n);
        let pending = self.stats.pending.fetch_add(n, Ordering::Relaxed) + n;
        METRICS.pending.add(n as i64);
        if pending > self.capacity {
            self.stats.pending.fetch_sub(n, Ordering::Relaxed);
            METRICS.pending.sub(n as i64);
            self.drop_outcomes(n, "the outcome buffer is full (monitor slow or down)");
            return;
        }
        if self.sender.send(batch).is_err() {
            self.stats.pending.fetch_sub(n, Ordering::Relaxed);
            METRICS.pending.sub(n as i64);
            self.drop_outcomes(n, "the outcome sender has stopped");
        }
    }

    fn drop_outcomes(&self, n: u64, why: &str) {
        let total = self.stats.dropped.fetch_add(n, Ordering::Relaxed) + n;
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
}

/// Counts what was still buffered as dropped, when shutdown gave up
/// waiting for the sender.
pub fn abandon_pending(stats: &PublisherStats) -> u64 {
    let lost = stats.pending.swap(0, Ordering::Relaxed);
    stats.dropped.fetch_add(lost, Ordering::Relaxed);
    METRICS.dropped.inc_by(lost);
    METRICS.pending.sub(lost as i64);
    lost
}

/// The background sender.
async fn run(
    config: OutcomeConfig,
    mut client: MonitorClient<GrpcChannel>,
    mut receiver: mpsc::UnboundedReceiver<ScoredBatch>,
    stats: Arc<PublisherStats>,
) {
    let mut buffer: Vec<v1::Outcome> = Vec::new();
    // Per-item errors travel one request at a time (each names its request).
    let mut errors: Vec<v1::RecordOutcomesRequest> = Vec::new();
    let mut ticks = tokio::time::interval(config.flush_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            batch = receiver.recv() => match batch {
                Some(mut batch) => {
                    if !batch.errors.is_empty() {
                        errors.push(v1::RecordOutcomesRequest {
                            errors: std::mem::take(&mut batch.errors),
                            request_id: batch.request_id.clone(),
                            ..v1::RecordOutcomesRequest::default()
                        });
                    }
                    expand(&batch, &mut buffer);
                    while buffer.len() >= config.batch_size {
                        let rest = buffer.split_off(config.batch_size);
                        let full = std::mem::replace(&mut buffer, rest);
                        send_until_acknowledged(&mut client, full, &stats, &config).await;
                    }
                }
                None => break,
            },
            _ = ticks.tick() => {
                if !buffer.is_empty() {
                    let batch = std::mem::take(&mut buffer);
                    send_until_acknowledged(&mut client, batch, &stats, &config).await;
                }
                for request in errors.drain(..) {
                    send_errors_until_acknowledged(&mut client, request, &stats, &config).await;
                }
            }
        }
    }
    // Every publisher is gone: flush what is left, within the drain timeout.
    let flush_errors = async {
        for request in errors.drain(..) {
            send_errors_until_acknowledged(&mut client, request, &stats, &config).await;
        }
    };
    if tokio::time::timeout(config.drain_timeout, flush_errors)
        .await
        .is_err()
    {
        tracing::error!("item errors dropped: the monitor did not answer before shutdown");
    }
    let left = buffer.len() as u64;
    if left > 0 {
        let flush = send_until_acknowledged(&mut client, buffer, &stats, &config);
        if tokio::time::timeout(config.drain_timeout, flush)
            .await
            .is_err()
        {
            stats.dropped.fetch_add(left, Ordering::Relaxed);
            stats.pending.fetch_sub(left, Ordering::Relaxed);
            METRICS.dropped.inc_by(left);
            METRICS.pending.sub(left as i64);
            tracing::error!(
                dropped = left,
                "outcomes dropped: the monitor did not answer before shutdown"
            );
        }
    }
}

/// Sends one batch of outcomes, retrying with exponential backoff until the
/// monitor acknowledges it.
async fn send_until_acknowledged(
    client: &mut MonitorClient<GrpcChannel>,
    outcomes: Vec<v1::Outcome>,
    stats: &PublisherStats,
    config: &OutcomeConfig,
) {
    let n = outcomes.len() as u64;
    let request = v1::RecordOutcomesRequest {
        outcomes,
        ..v1::RecordOutcomesRequest::default()
    };
    send_with_retries(client, &request, stats, config).await;
    stats.sent.fetch_add(n, Ordering::Relaxed);
    stats.pending.fetch_sub(n, Ordering::Relaxed);
    METRICS.sent.inc_by(n);
    METRICS.pending.sub(n as i64);
}

/// Sends one request's per-item errors, retrying like outcomes.
async fn send_errors_until_acknowledged(
    client: &mut MonitorClient<GrpcChannel>,
    request: v1::RecordOutcomesRequest,
    stats: &PublisherStats,
    config: &OutcomeConfig,
) {
    send_with_retries(client, &request, stats, config).await;
}

/// Calls `RecordOutcomes` until it succeeds, backing off exponentially.
async fn send_with_retries(
    client: &mut MonitorClient<GrpcChannel>,
    request: &v1::RecordOutcomesRequest,
    stats: &PublisherStats,
    config: &OutcomeConfig,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match client.record_outcomes(request.clone()).await {
            Ok(_) => return,
            Err(status) => {
                let failures = stats.send_failures.fetch_add(1, Ordering::Relaxed) + 1;
                METRICS.send_failures.inc();
                if failures.is_power_of_two() {
                    tracing::warn!(
                        endpoint = %config.endpoint,
                        %status,
                        failures,
                        "cannot record outcomes; retrying"
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Turns one scored batch into outcome messages.
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
        });
    }
}

/// `request/model/version/budget/item`: unique per outcome and stable
/// across retries.
fn outcome_id(batch: &ScoredBatch, key: &v1::PairKey) -> String {
    format!(
        "{}/{}/{}/{}/{}",
        batch.request_id,
        batch.scores.model,
        batch.scores.version,
        key.budget_id,
        key.itemization_id
    )
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
