//! The tracing subscriber every Triad binary installs: human-readable lines
//! by default, JSON lines when `TRIAD_LOG_FORMAT=json`, filtered by
//! `RUST_LOG` (default `info`); and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set, spans exported to that OpenTelemetry collector ([`crate::otlp`]).

use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::otlp::{self, TelemetryGuard};

/// Environment variable choosing the log format (`text` or `json`).
pub const LOG_FORMAT_ENV: &str = "TRIAD_LOG_FORMAT";

/// Environment variable filtering log lines (`tracing` directives).
pub const LOG_FILTER_ENV: &str = "RUST_LOG";

/// Environment variable filtering which spans are exported, in `RUST_LOG`
/// syntax (default `info`); independent of `RUST_LOG`, so quieter logs do
/// not thin out traces.
pub const TRACE_FILTER_ENV: &str = "TRIAD_TRACE_FILTER";

/// The default of both filters.
const DEFAULT_FILTER: &str = "info";

/// How a process logs and traces; [`TelemetryConfig::from_env`] reads it
/// from the environment, tests build it directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// Service name of exported spans (`service.name`), e.g. `triad-score`.
    pub service_name: String,
    /// Log lines as JSON rather than text.
    pub json_logs: bool,
    /// Which log lines are written (`tracing` directives).
    pub log_filter: String,
    /// The OTLP/gRPC collector to export spans to; `None`: no export.
    pub otlp_endpoint: Option<String>,
    /// Which spans are exported (`tracing` directives).
    pub trace_filter: String,
    /// How often queued spans are sent; `None`: the SDK's default (5 s, or
    /// `OTEL_BSP_SCHEDULE_DELAY` in milliseconds).
    pub export_interval: Option<Duration>,
}

impl TelemetryConfig {
    /// Text logs at `info`, no export.
    pub fn new(service_name: impl Into<String>) -> Self {
        Self {
            service_name: service_name.into(),
            json_logs: false,
            log_filter: DEFAULT_FILTER.to_owned(),
            otlp_endpoint: None,
            trace_filter: DEFAULT_FILTER.to_owned(),
            export_interval: None,
        }
    }

    /// The configuration the environment asks for, for the binary
    /// `service_name` (`OTEL_SERVICE_NAME` overrides it): `RUST_LOG`,
    /// `TRIAD_LOG_FORMAT`, `TRIAD_TRACE_FILTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_SDK_DISABLED=true`
    /// turns export off).
    pub fn from_env(service_name: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        Self {
            service_name: otlp::service_name(service_name),
            json_logs: var(LOG_FORMAT_ENV).is_some_and(|format| format == "json"),
            log_filter: var(LOG_FILTER_ENV).unwrap_or_else(|| DEFAULT_FILTER.to_owned()),
            otlp_endpoint: otlp::configured_endpoint(),
            trace_filter: var(TRACE_FILTER_ENV).unwrap_or_else(|| DEFAULT_FILTER.to_owned()),
            export_interval: None,
        }
    }
}

/// Installs the global subscriber for the binary `service_name` (e.g.
/// `triad-score`) as the environment asks ([`TelemetryConfig::from_env`])
/// and returns the guard that keeps span export running: hold it until the
/// process exits. Safe to call more than once (later calls are no-ops and
/// return an inert guard), so tests and `triad up` can call it freely.
pub fn init(service_name: &str) -> TelemetryGuard {
    init_with(&TelemetryConfig::from_env(service_name))
}

/// [`init`] with an explicit configuration.
pub fn init_with(config: &TelemetryConfig) -> TelemetryGuard {
    if tracing::dispatcher::has_been_set() {
        return TelemetryGuard::default();
    }
    let filter = |directives: &str| {
        EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if config.json_logs {
        fmt.json().with_filter(filter(&config.log_filter)).boxed()
    } else {
        fmt.with_filter(filter(&config.log_filter)).boxed()
    };

    let pipeline = config.otlp_endpoint.as_deref().map(|endpoint| {
        otlp::pipeline(endpoint, &config.service_name, config.export_interval)
            .map(|pipeline| (endpoint, pipeline))
    });
    let (endpoint, pipeline) = match pipeline {
        Some(Ok(pipeline)) => pipeline,
        not_exporting => {
            if tracing_subscriber::registry().with(fmt).try_init().is_ok()
                && let Some(Err(error)) = not_exporting
            {
                tracing::warn!(%error, "spans are not exported");
            }
            return TelemetryGuard::default();
        }
    };

    let otel = tracing_opentelemetry::layer()
        .with_tracer(pipeline.tracer)
        .with_target(false)
        .with_threads(false)
        .with_filter(filter(&config.trace_filter));
    let guard = TelemetryGuard::exporting(pipeline.provider, pipeline.runtime);
    if tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .is_err()
    {
        // Another subscriber won a race: export would see no spans.
        return TelemetryGuard::default();
    }
    crate::trace::set_enabled();
    tracing::info!(
        %endpoint,
        service = %config.service_name,
        "exporting spans over otlp"
    );
    guard
}
