//! Serving a gRPC port: the service's routes beside `grpc.health.v1` and
//! server reflection (listing only the services the port serves), behind
//! the shared layers, on connections from [`crate::accept`], with
//! HTTP/2 keepalive and a two-step drain ([`crate::drain`]).

use std::collections::HashSet;
use std::future::Future;

use prost::Message as _;
use tonic_health::ServingStatus;
use tower_http::trace::TraceLayer;
use triad_telemetry::{metrics, request_id};

use crate::accept::{self, AcceptLimits};
use crate::drain;
use crate::{Secured, ServerError, ServerLimits, ServiceSpec, auth, overload, panic};
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;

/// The health service's gRPC name.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// The reflection services' gRPC names.
const REFLECTION_SERVICES: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Serves `spec` on `listener` with health, reflection and the shared layers
/// until `shutdown` resolves; then health turns NOT_SERVING, requests are
/// still served for [`ServerLimits::drain_delay`], and in-flight requests
/// drain.
pub fn serve<F>(
    listener: TcpListener,
    spec: ServiceSpec,
    limits: &ServerLimits,
    shutdown: F,
) -> impl Future<Output = Result<(), ServerError>> + Send + 'static + use<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_secured(listener, spec, limits, &Secured::default(), shutdown)
}

/// The gRPC paths (`/pkg.Service/Method`) of the methods of `services`
/// that `descriptors` describe.
fn served_methods(
    descriptors: &[&[u8]],
    services: &HashSet<&str>,
) -> Result<Vec<String>, ServerError> {
    let mut methods = Vec::new();
    for encoded in descriptors {
        let set = prost_types::FileDescriptorSet::decode(*encoded)?;
        for file in &set.file {
            let package = file.package();
            for service in &file.service {
                let full = if package.is_empty() {
                    service.name().to_owned()
                } else {
                    format!("{package}.{}", service.name())
                };
                if services.contains(full.as_str()) {
                    methods.extend(
                        service
                            .method
                            .iter()
                            .map(|method| format!("/{full}/{}", method.name())),
                    );
                }
            }
        }
    }
    Ok(methods)
}

/// [`serve`] with TLS and bearer tokens as `secured` says (see
/// [`crate::Security::load`]).
pub fn serve_secured<F>(
    listener: TcpListener,
    spec: ServiceSpec,
    limits: &ServerLimits,
    secured: &Secured,
    shutdown: F,
) -> impl Future<Output = Result<(), ServerError>> + Send + 'static + use<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    let limits = limits.clone();
    let secured = secured.clone();
    async move { serve_port(listener, spec, &limits, &secured, shutdown).await }
}

/// The body of [`serve_secured`], over its own copies of the limits and
/// security.
async fn serve_port(
    listener: TcpListener,
    spec: ServiceSpec,
    limits: &ServerLimits,
    secured: &Secured,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    for name in &spec.health_names {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;

    // Reflection lists the services this port serves, and nothing else the
    // descriptor sets happen to describe.
    let listed: Vec<&str> = spec
        .health_names
        .iter()
        .copied()
        .chain([HEALTH_SERVICE])
        .chain(REFLECTION_SERVICES)
        .collect();
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        for descriptor in &spec.descriptors {
            builder = builder.register_encoded_file_descriptor_set(descriptor);
        }
        for name in &listed {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let mut descriptors = spec.descriptors.clone();
    descriptors.extend([
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ]);
    let methods = served_methods(&descriptors, &listed.iter().copied().collect())?;

    let routes = spec
        .routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let local = listener.local_addr().ok();
    tracing::info!(
        service = spec.name,
        addr = ?local,
        tls = secured.is_tls(),
        tokens = secured.is_authenticated(),
        "serving grpc"
    );
    let health_names = spec.health_names;
    let name = spec.name;
    let (phase_sender, phase) = drain::phase_channel();
    let draining = drain::run(shutdown, limits.drain_delay, phase_sender, async move {
        for name in health_names {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
    });

    let mut server = tonic::transport::Server::builder()
        .timeout(limits.request_timeout)
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .load_shed(true)
        .http2_keepalive_interval(Some(limits.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout));
    if let Some(age) = limits.max_connection_age {
        server = server
            .max_connection_age(age)
            .max_connection_age_grace(limits.request_timeout);
    }
    let router = server
        .layer(request_id::SetRequestIdLayer)
        .layer(metrics::GrpcMetricsLayer::new(methods))
        .layer(
            TraceLayer::new(caller_errors_are_not_failures()).make_span_with(
                // A child of the caller's `traceparent`, tagged with the service.
                move |request: &http::Request<_>| {
                    triad_telemetry::trace::make_service_span(name, request)
                },
            ),
        )
        // Refused calls are counted and traced, and never take capacity.
        .layer(auth::GrpcAuthLayer::new(secured.authorizer.clone()))
        .layer(overload::ShedLayer::new(limits.max_concurrent_requests))
        // Innermost: a panicking handler answers INTERNAL, seen by the
        // metrics and traces above.
        .layer(panic::grpc_layer())
        .add_routes(routes);
    let connections = accept::spawn(
        listener,
        secured.grpc_tls.clone(),
        AcceptLimits::from(limits),
        phase,
    );
    router
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(connections).map(Ok::<_, std::io::Error>),
            draining,
        )
        .await?;
    Ok(())
}

/// How the trace layer classifies a call's answer: a status that says the
/// caller was wrong (a bad argument, an unknown model or method, a missing
/// token…) and a call shed under load (`triad_grpc_server_shed_total`
/// counts it) are the answer working as intended, logged at debug level with every other
/// answer; only statuses that say the server failed (`INTERNAL`,
/// `UNAVAILABLE`, `UNKNOWN`, `DEADLINE_EXCEEDED`, …) are logged as
/// errors. A caller cannot fill the error log, save with bytes that are
/// not protobuf (which tonic answers `INTERNAL`).
fn caller_errors_are_not_failures()
-> tower_http::classify::SharedClassifier<tower_http::classify::GrpcErrorsAsFailures> {
    use tower_http::classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier};
    SharedClassifier::new(
        GrpcErrorsAsFailures::new()
            .with_success(GrpcCode::Cancelled)
            .with_success(GrpcCode::InvalidArgument)
            .with_success(GrpcCode::NotFound)
            .with_success(GrpcCode::AlreadyExists)
            .with_success(GrpcCode::PermissionDenied)
            .with_success(GrpcCode::FailedPrecondition)
            .with_success(GrpcCode::OutOfRange)
            .with_success(GrpcCode::Unimplemented)
            .with_success(GrpcCode::Unauthenticated)
            // Load shedding: counted by the shed layer's own metric; a
            // line per refused call would flood the log exactly when the
            // server is busiest.
            .with_success(GrpcCode::ResourceExhausted),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_methods_come_from_the_descriptors_of_served_services_only() {
        let services: HashSet<&str> = [HEALTH_SERVICE].into_iter().collect();
        let methods = served_methods(
            &[
                tonic_health::pb::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            ],
            &services,
        )
        .unwrap();
        assert!(methods.contains(&"/grpc.health.v1.Health/Check".to_owned()));
        assert!(methods.contains(&"/grpc.health.v1.Health/Watch".to_owned()));
        assert!(
            methods
                .iter()
                .all(|m| m.starts_with("/grpc.health.v1.Health/"))
        );
    }
}
