//! A handler that panics answers its own request with an error and nothing
//! else: gRPC `INTERNAL` (a proper `grpc-status` response, not a stream
//! reset), HTTP 500. The panic is logged and counted in
//! `triad_handler_panics_total{protocol}`; the connection and every other
//! request on it carry on. (tower-http's `CatchPanicLayer`, with Triad's
//! answers.)
//!
//! A panic while a streaming response is being written (after the handler
//! returned) is outside the handler's future and not caught here.

use std::any::Any;
use std::sync::LazyLock;

use http::{Response, StatusCode};
use prometheus::IntCounterVec;
use tower::layer::util::Stack;
use tower::util::MapResponseLayer;
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};

/// Panics caught, by protocol.
static PANICS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let counter = IntCounterVec::new(
        prometheus::Opts::new(
            "handler_panics_total",
            "Request handlers that panicked, answered INTERNAL (gRPC) or 500 (HTTP), by protocol",
        ),
        &["protocol"],
    )
    .expect("valid metric options");
    triad_telemetry::metrics::register(Box::new(counter.clone()));
    counter
});

/// Registers the counter so it shows (at zero) before the first panic.
pub(crate) fn register() {
    LazyLock::force(&PANICS);
}

/// The panic's message, when it carries one.
fn message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

fn record(protocol: &'static str, panic: &(dyn Any + Send)) {
    PANICS.with_label_values(&[protocol]).inc();
    tracing::error!(
        protocol,
        panic = %crate::quote(message(panic)),
        "a request handler panicked; answered with an internal error"
    );
}

/// gRPC's answer to a panic: `INTERNAL`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcPanic;

impl ResponseForPanic for GrpcPanic {
    type ResponseBody = tonic::body::Body;

    fn response_for_panic(&mut self, panic: Box<dyn Any + Send>) -> Response<tonic::body::Body> {
        record("grpc", panic.as_ref());
        tonic::Status::internal("the server failed on this request; it was logged").into_http()
    }
}

/// HTTP's answer to a panic: 500.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpPanic;

impl ResponseForPanic for HttpPanic {
    type ResponseBody = axum::body::Body;

    fn response_for_panic(&mut self, panic: Box<dyn Any + Send>) -> Response<axum::body::Body> {
        record("http", panic.as_ref());
        let mut response = Response::new(axum::body::Body::from(
            "the server failed on this request; it was logged\n",
        ));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    }
}

/// The body tower-http's catch-panic layer answers with.
type CaughtBody = tower_http::body::UnsyncBoxBody<axum::body::Bytes, tower_http::BoxError>;

fn into_grpc_body(response: Response<CaughtBody>) -> Response<tonic::body::Body> {
    response.map(tonic::body::Body::new)
}

/// Turns the catch-panic layer's body back into tonic's.
type IntoGrpcBody = fn(Response<CaughtBody>) -> Response<tonic::body::Body>;

/// What [`grpc_layer`] returns.
pub type GrpcCatchPanicLayer = Stack<CatchPanicLayer<GrpcPanic>, MapResponseLayer<IntoGrpcBody>>;

/// The layer for a gRPC server's routes (innermost, so the metrics and
/// traces outside it see the `INTERNAL`).
pub fn grpc_layer() -> GrpcCatchPanicLayer {
    register();
    Stack::new(
        CatchPanicLayer::custom(GrpcPanic),
        MapResponseLayer::new(into_grpc_body as IntoGrpcBody),
    )
}

/// The layer for an HTTP router's routes.
pub fn http_layer() -> CatchPanicLayer<HttpPanic> {
    register();
    CatchPanicLayer::custom(HttpPanic)
}
