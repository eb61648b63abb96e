//! Exporting `tracing` spans to an OpenTelemetry collector over OTLP/gRPC
//! (Jaeger, Tempo and the OpenTelemetry Collector all accept it).
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then there is no exporter,
//! no OpenTelemetry layer and no background thread. When on, spans go
//! through the SDK's batch processor (its own thread; `OTEL_BSP_*` tune it)
//! to a tonic exporter whose connection runs on a one-thread Tokio runtime
//! of its own, so export never competes with, waits on or outlives the
//! service's runtime, and the process can flush at exit from any context.
//! The rest of the standard `OTEL_*` variables (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, …) are read by
//! the OpenTelemetry SDK as usual.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};

/// The collector's gRPC endpoint, e.g. `http://otel-collector:4317`.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// A traces-only endpoint; wins over [`ENDPOINT_ENV`].
pub const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The service name spans are reported under; defaults to the binary's.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";
/// `true` turns export off whatever the endpoint.
pub const SDK_DISABLED_ENV: &str = "OTEL_SDK_DISABLED";

/// Longest the exit flush may take before the last spans are given up.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Failures to set export up; the service then runs without it.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The exporter's own one-thread tokio runtime could not be started.
    #[error("cannot start the otlp export runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The OTLP/gRPC span exporter could not be built (e.g. an invalid
    /// endpoint).
    #[error("cannot build the otlp span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The collector endpoint from the environment, when export is wanted.
pub fn configured_endpoint() -> Option<String> {
    if std::env::var(SDK_DISABLED_ENV).is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"))
    {
        return None;
    }
    [TRACES_ENDPOINT_ENV, ENDPOINT_ENV]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|value| value.trim().to_owned())
        .find(|value| !value.is_empty())
}

/// A running span export pipeline.
pub(crate) struct Pipeline {
    pub(crate) tracer: SdkTracer,
    pub(crate) provider: SdkTracerProvider,
    pub(crate) runtime: tokio::runtime::Runtime,
}

/// The service name spans are reported under: `OTEL_SERVICE_NAME` when set,
/// else `default` (the binary's).
pub fn service_name(default: &str) -> String {
    std::env::var(SERVICE_NAME_ENV)
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Builds the exporter to `endpoint`, reporting spans under `service_name`
/// and sending a batch every `export_interval` (default: the SDK's, 5 s or
/// `OTEL_BSP_SCHEDULE_DELAY`).
pub(crate) fn pipeline(
    endpoint: &str,
    service_name: &str,
    export_interval: Option<Duration>,
) -> Result<Pipeline, ExportError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("triad-otlp")
        .enable_all()
        .build()?;
    // The exporter's channel spawns its connection tasks on the runtime
    // entered here.
    let exporter = {
        let _entered = runtime.enter();
        SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()?
    };
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ));
    let mut batch = BatchConfigBuilder::default();
    if let Some(interval) = export_interval {
        batch = batch.with_scheduled_delay(interval);
    }
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch.build())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("triad");
    Ok(Pipeline {
        tracer,
        provider,
        runtime,
    })
}

/// Keeps span export alive; dropping it (or [`TelemetryGuard::shutdown`])
/// flushes the spans still queued and stops the exporter. Hold it until the
/// process exits: `let _telemetry = triad_telemetry::init("triad-score");`.
/// Without export it holds nothing and dropping it does nothing.
#[must_use = "dropping the guard stops span export"]
#[derive(Default)]
pub struct TelemetryGuard {
    export: Option<(SdkTracerProvider, tokio::runtime::Runtime)>,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("exporting", &self.export.is_some())
            .finish()
    }
}

impl TelemetryGuard {
    pub(crate) fn exporting(provider: SdkTracerProvider, runtime: tokio::runtime::Runtime) -> Self {
        Self {
            export: Some((provider, runtime)),
        }
    }

    /// Whether spans are being exported.
    pub fn is_exporting(&self) -> bool {
        self.export.is_some()
    }

    /// Exports every span ended so far now, rather than at the next batch.
    /// Blocks (briefly) the calling thread.
    pub fn flush(&self) {
        if let Some((provider, _)) = &self.export
            && let Err(error) = provider.force_flush()
        {
            tracing::warn!(%error, "cannot flush spans to the otlp collector");
        }
    }

    /// Flushes the spans still queued and stops export (what dropping the
    /// guard does). Blocks the calling thread for at most a few seconds.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some((provider, runtime)) = self.export.take() else {
            return;
        };
        if let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            // The subscriber may be gone at exit: say it on stderr.
            eprintln!("triad: spans may be lost: cannot flush to the otlp collector: {error}");
        }
        // Safe inside or outside an async context.
        runtime.shutdown_background();
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.stop();
    }
}
