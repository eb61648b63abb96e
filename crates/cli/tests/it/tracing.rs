//! Distributed tracing end to end: preprocess, score and monitor run in
//! this process (as `triad up` runs them) exporting spans over OTLP to an
//! in-process collector; one `Score` call and one seed HTTP call, each
//! carrying a known W3C `traceparent`, must each come back as one trace
//! spanning the services, every span linked to its parent.
//!
//! One process has one global tracer provider, so every span has the same
//! `service.name`; the services are told apart by span name and by the
//! `triad.service` attribute of server spans. The subscriber is global to
//! the process too: this test holds `process_wide_state` (as the overload
//! test, whose storm of calls would fill the exporter's queue, does), the
//! other tests of this binary may add spans of their own, and this test
//! looks only at its two traces.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tokio::net::TcpListener;
use tokio::sync::watch;
use triad_proto::v1::scorer_client::ScorerClient;
use triad_test_support::{SEED_REQUEST, http_request, seed_score_request, shipped_models};

const SERVICE_NAME: &str = "triad-tracing-test";

/// The caller's trace and span of the gRPC call, and of the HTTP call.
const GRPC_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const GRPC_PARENT: &str = "00f067aa0ba902b7";
const HTTP_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const HTTP_PARENT: &str = "b7ad6b7169203331";

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Exported {
    service_name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: SpanKind,
    attributes: HashMap<String, String>,
}

/// An OTLP/gRPC collector that keeps every span it receives.
struct Collector {
    spans: watch::Sender<Vec<Exported>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans
                .resource
                .map(|resource| attributes(&resource.attributes))
                .unwrap_or_default();
            let service_name = resource.get("service.name").cloned().unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    received.push(Exported {
                        service_name: service_name.clone(),
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        kind: span.kind(),
                        name: span.name,
                        attributes: attributes(&span.attributes),
                    });
                }
            }
        }
        self.spans.send_modify(|spans| spans.extend(received));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn attributes(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v: &AnyValue| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// Starts the collector on an ephemeral port: its address and the spans
/// received so far.
async fn start_collector() -> (String, watch::Receiver<Vec<Exported>>) {
    let (spans, received) = watch::channel(Vec::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector { spans }))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (format!("http://{addr}"), received)
}

/// The one span of `trace` named `name` of kind `kind`.
fn find<'a>(
    spans: &'a [Exported],
    trace: &str,
    name: &str,
    kind: SpanKind,
) -> Option<&'a Exported> {
    spans
        .iter()
        .find(|span| span.trace_id == trace && span.name == name && span.kind == kind)
}

/// Whether the spans of one call's trace are all there: the front door's
/// server span, the scorer's Featurize client span, preprocess's server
/// span and the model's; and, for the gRPC call, the monitor's.
fn complete(spans: &[Exported], trace: &str, front_door: &str, with_monitor: bool) -> bool {
    find(spans, trace, front_door, SpanKind::Server).is_some()
        && find(
            spans,
            trace,
            "triad.v1.Preprocess/Featurize",
            SpanKind::Client,
        )
        .is_some()
        && find(
            spans,
            trace,
            "triad.v1.Preprocess/Featurize",
            SpanKind::Server,
        )
        .is_some()
        && spans
            .iter()
            .any(|span| span.trace_id == trace && span.name == "model.score")
        && (!with_monitor
            || find(
                spans,
                trace,
                "triad.v1.Monitor/RecordOutcomes",
                SpanKind::Server,
            )
            .is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_is_one_trace_across_preprocess_score_and_monitor() {
    // The subscriber and the OTLP exporter it installs are the process's.
    let _process = triad_test_support::process_wide_state().await;
    let (collector, mut received) = start_collector().await;
    let mut config = triad_telemetry::logging::TelemetryConfig::new(SERVICE_NAME);
    config.log_filter = "warn".to_owned();
    config.otlp_endpoint = Some(collector);
    config.export_interval = Some(Duration::from_millis(50));
    let telemetry = triad_telemetry::logging::init_with(&config);
    assert!(telemetry.is_exporting(), "span export did not start");
    assert!(triad_telemetry::trace::enabled());

    // The three services, as `triad up` starts them.
    let data = tempfile::tempdir().unwrap();
    // The scorer stops first, so its last outcomes reach a live monitor.
    let (stop, stopped) = watch::channel(false);
    let (stop_front, front_stopped) = watch::channel(false);
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let preprocess_addr = listener.local_addr().unwrap();
    let preprocess = tokio::spawn(triad_preprocess::serve(
        listener,
        None,
        triad_preprocess::PreprocessConfig {
            addr: preprocess_addr,
            ..triad_preprocess::PreprocessConfig::default()
        },
        until_stopped(stopped.clone()),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let monitor_addr = listener.local_addr().unwrap();
    let mut monitor_config = triad_monitor::MonitorConfig {
        addr: monitor_addr,
        models_dir: shipped_models(),
        ..triad_monitor::MonitorConfig::default()
    };
    monitor_config.store.database_url =
        format!("sqlite://{}", data.path().join("monitor.db").display());
    let monitor = tokio::spawn(triad_monitor::serve(
        listener,
        None,
        monitor_config,
        until_stopped(stopped.clone()),
    ));
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (score_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    let scorer = tokio::spawn(triad_score::serve(
        grpc,
        Some(http),
        triad_score::ScoreConfig {
            addr: score_addr,
            http_addr: Some(http_addr),
            preprocess: format!("http://{preprocess_addr}"),
            models_dir: shipped_models(),
            models: vec!["budget_expense_matcher".to_owned()],
            monitor: Some(format!("http://{monitor_addr}")),
            ..triad_score::ScoreConfig::default()
        },
        until_stopped(front_stopped),
    ));
    for (endpoint, service) in [
        (
            format!("http://{preprocess_addr}"),
            triad_preprocess::SERVICE_NAME,
        ),
        (
            format!("http://{monitor_addr}"),
            triad_monitor::SERVICE_NAME,
        ),
        (format!("http://{score_addr}"), triad_score::SERVICE_NAME),
    ] {
        triad_server::healthcheck(&endpoint, service, Duration::from_secs(10))
            .await
            .unwrap_or_else(|error| panic!("{service} did not become healthy: {error}"));
    }

    // One Score call with the caller's traceparent.
    let mut call = tonic::Request::new(seed_score_request());
    call.metadata_mut().insert(
        "traceparent",
        format!("00-{GRPC_TRACE}-{GRPC_PARENT}-01").parse().unwrap(),
    );
    let response = ScorerClient::connect(format!("http://{score_addr}"))
        .await
        .unwrap()
        .score(call)
        .await
        .unwrap()
        .into_inner();
    assert!(!response.keys.is_empty(), "the seed request scored no pair");

    // One seed HTTP call with another.
    let traceparent = format!("00-{HTTP_TRACE}-{HTTP_PARENT}-01");
    let response = http_request(
        http_addr,
        "POST",
        "/budget_expense_matcher/",
        &[("traceparent", &traceparent)],
        SEED_REQUEST,
    )
    .await
    .unwrap();
    assert_eq!(response.status, 200, "seed call answered {response:?}");

    // Wait, bounded, until both traces have arrived whole.
    let arrived = tokio::time::timeout(
        Duration::from_secs(30),
        received.wait_for(|spans| {
            complete(spans, GRPC_TRACE, "triad.v1.Scorer/Score", true)
                && complete(spans, HTTP_TRACE, "POST /budget_expense_matcher/", false)
        }),
    )
    .await
    .is_ok_and(|waited| waited.is_ok());
    let spans = received.borrow().clone();
    assert!(
        arrived,
        "traces incomplete after 30 s; received: {:#?}",
        spans
            .iter()
            .map(|s| (&s.trace_id, &s.name, s.kind, &s.parent_span_id))
            .collect::<Vec<_>>()
    );

    // The gRPC trace: caller → Score → (Featurize client → Featurize
    // server), model scoring, and the monitor's RecordOutcomes.
    let score = find(
        &spans,
        GRPC_TRACE,
        "triad.v1.Scorer/Score",
        SpanKind::Server,
    )
    .unwrap();
    assert_eq!(
        score.parent_span_id, GRPC_PARENT,
        "Score is not the caller's child"
    );
    assert_eq!(
        score.attributes.get("triad.service").map(String::as_str),
        Some("score")
    );
    let featurize_client = find(
        &spans,
        GRPC_TRACE,
        "triad.v1.Preprocess/Featurize",
        SpanKind::Client,
    )
    .unwrap();
    assert_eq!(featurize_client.parent_span_id, score.span_id);
    let featurize = find(
        &spans,
        GRPC_TRACE,
        "triad.v1.Preprocess/Featurize",
        SpanKind::Server,
    )
    .unwrap();
    assert_eq!(featurize.parent_span_id, featurize_client.span_id);
    assert_eq!(
        featurize
            .attributes
            .get("triad.service")
            .map(String::as_str),
        Some("preprocess")
    );
    let models: Vec<_> = spans
        .iter()
        .filter(|span| span.trace_id == GRPC_TRACE && span.name == "model.score")
        .collect();
    assert!(
        models
            .iter()
            .all(|model| model.parent_span_id == score.span_id),
        "model spans not under Score: {models:#?}"
    );
    let record = find(
        &spans,
        GRPC_TRACE,
        "triad.v1.Monitor/RecordOutcomes",
        SpanKind::Server,
    )
    .unwrap();
    assert_eq!(
        record.parent_span_id, score.span_id,
        "RecordOutcomes is not under Score"
    );
    assert_eq!(
        record.attributes.get("triad.service").map(String::as_str),
        Some("monitor")
    );

    // The HTTP trace: caller → POST → Featurize client → Featurize server.
    let post = find(
        &spans,
        HTTP_TRACE,
        "POST /budget_expense_matcher/",
        SpanKind::Server,
    )
    .unwrap();
    assert_eq!(
        post.parent_span_id, HTTP_PARENT,
        "the HTTP span is not the caller's child"
    );
    let featurize_client = find(
        &spans,
        HTTP_TRACE,
        "triad.v1.Preprocess/Featurize",
        SpanKind::Client,
    )
    .unwrap();
    assert_eq!(featurize_client.parent_span_id, post.span_id);
    let featurize = find(
        &spans,
        HTTP_TRACE,
        "triad.v1.Preprocess/Featurize",
        SpanKind::Server,
    )
    .unwrap();
    assert_eq!(featurize.parent_span_id, featurize_client.span_id);

    // Every span is reported under the configured service name, and no
    // health check made it into a trace.
    assert!(spans.iter().all(|span| span.service_name == SERVICE_NAME));
    assert!(
        !spans
            .iter()
            .any(|span| span.name.starts_with("grpc.health"))
    );

    let _ = stop_front.send(true);
    scorer.await.unwrap().unwrap();
    let _ = stop.send(true);
    preprocess.await.unwrap().unwrap();
    monitor.await.unwrap().unwrap();
    telemetry.shutdown();
}
