//! Every port's limits on real servers on 127.0.0.1:0: idle connections
//! closed within the configured timeouts, TLS handshakes not starved by
//! idle connections, request timeouts and load shedding on HTTP, metrics
//! that callers cannot grow, panics answered as errors, reflection listing
//! only the served services, and health failing from the start of a
//! drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use triad_server::auth::{AuthConfig, Secret, TokenSource};
use triad_server::{Security, ServerLimits, ServiceSpec};
use triad_test_support::{TestPki, https_request};

/// Generous bound on anything a test waits for.
const PATIENCE: Duration = Duration::from_secs(10);

/// A running server: its address, the sender that stops it, and its task.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// Starts the shutdown and waits (bounded) for the server to end.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }
}

async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = triad_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn spec(routes: tonic::service::Routes, health_names: Vec<&'static str>) -> ServiceSpec {
    ServiceSpec {
        name: "test",
        routes,
        health_names,
        descriptors: vec![],
    }
}

async fn grpc(spec: ServiceSpec, limits: ServerLimits, security: &Security) -> Running {
    let secured = security.load(&[]).expect("security loads");
    let (listener, addr) = listener().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        triad_server::serve_secured(listener, spec, &limits, &secured, async {
            let _ = stopped.await;
        })
        .await
        .expect("grpc server");
    });
    Running { addr, stop, task }
}

async fn http_server(router: axum::Router, limits: ServerLimits, security: &Security) -> Running {
    let secured = security.load(&[]).expect("security loads");
    let (listener, addr) = listener().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = triad_server::serve_http_with(listener, router, &limits, &secured, async {
        let _ = stopped.await;
    });
    let task = tokio::spawn(async move { serving.await.expect("http server") });
    Running { addr, stop, task }
}

fn router() -> axum::Router {
    axum::Router::new()
        .route("/hello", get(|| async { "hello\n" }))
        .route("/health", get(|| async { "ok\n" }))
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("a handler bug");
                }
                "unreachable\n"
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "late\n"
            }),
        )
}

/// Limits with every timeout short, for tests that wait on them (the
/// request timeout is also the grace a closing connection gets: an HTTP/2
/// client that never answers the server's PING is dropped after it).
fn short() -> ServerLimits {
    ServerLimits {
        handshake_timeout: Duration::from_millis(300),
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    }
}

/// Waits (bounded) for the peer to close `stream`: true when it did.
async fn closed_by_peer(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0_u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // Whatever the server sends before closing (an HTTP/2 GOAWAY).
            Ok(Ok(_)) => continue,
        }
    }
}

/// One HTTP/1.1 request on an open connection: (status, body).
async fn http1(stream: &mut TcpStream, path: &str) -> std::io::Result<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    let mut buf = [0_u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status = head[9..12].parse().expect("a status code");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().expect("a length"));
    while raw.len() < head_end + length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&raw[head_end..head_end + length]).into_owned();
    Ok((status, body))
}

async fn get_status(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    http1(&mut stream, path).await
}

// Observation 5: idle connections stayed open on every port.
#[tokio::test]
async fn connections_that_never_speak_are_closed_on_grpc_and_http_ports() {
    let grpc = grpc(
        spec(tonic::service::Routes::default(), vec![]),
        short(),
        &Security::default(),
    )
    .await;
    let http = http_server(router(), short(), &Security::default()).await;
    for addr in [grpc.addr, http.addr] {
        let mut idle = Vec::new();
        for _ in 0..50 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        for stream in &mut idle {
            assert!(
                closed_by_peer(stream, PATIENCE).await,
                "an idle connection to {addr} stayed open"
            );
        }
    }
    grpc.stop().await;
    http.stop().await;
}

// Observation 5: no header-read or idle timeout on HTTP ports.
#[tokio::test]
async fn http_connections_idle_after_a_request_are_closed_http1_and_http2() {
    let http = http_server(router(), short(), &Security::default()).await;

    // HTTP/1.1 keep-alive: served, then closed once idle.
    let mut stream = TcpStream::connect(http.addr).await.unwrap();
    assert_eq!(
        http1(&mut stream, "/hello").await.unwrap(),
        (200, "hello\n".to_owned())
    );
    assert!(closed_by_peer(&mut stream, PATIENCE).await, "HTTP/1.1 idle");

    // A request whose headers never end.
    let mut stream = TcpStream::connect(http.addr).await.unwrap();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_peer(&mut stream, PATIENCE).await,
        "headers never end"
    );

    // HTTP/2 (prior knowledge): preface and SETTINGS, then nothing.
    let mut stream = TcpStream::connect(http.addr).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    assert!(closed_by_peer(&mut stream, PATIENCE).await, "HTTP/2 idle");
    http.stop().await;
}

#[tokio::test]
async fn a_slow_http_request_is_answered_503_at_the_request_timeout() {
    let limits = ServerLimits {
        request_timeout: Duration::from_millis(200),
        ..ServerLimits::default()
    };
    let http = http_server(router(), limits, &Security::default()).await;
    let (status, _) = tokio::time::timeout(PATIENCE, get_status(http.addr, "/slow"))
        .await
        .expect("answered within the request timeout")
        .unwrap();
    assert_eq!(status, 503);
    http.stop().await;
}

// Observation 5: no concurrency limit or shedding on HTTP ports.
#[tokio::test]
async fn http_requests_past_capacity_are_shed_at_once_and_health_is_not() {
    let release = Arc::new(Notify::new());
    let entered = Arc::new(Notify::new());
    let (held_release, held_entered) = (Arc::clone(&release), Arc::clone(&entered));
    let router = router().route(
        "/held",
        get(move || {
            let (release, entered) = (Arc::clone(&held_release), Arc::clone(&held_entered));
            async move {
                entered.notify_one();
                release.notified().await;
                "released\n"
            }
        }),
    );
    let limits = ServerLimits {
        max_concurrent_requests: 1,
        ..ServerLimits::default()
    };
    let http = http_server(router, limits, &Security::default()).await;
    let addr = http.addr;
    let held = tokio::spawn(async move { get_status(addr, "/held").await.unwrap() });
    entered.notified().await;

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0_u8; 1024];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut head))
        .await
        .expect("refused at once, not queued")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("retry-after: 1"), "{head}");

    assert_eq!(get_status(addr, "/health").await.unwrap().0, 200);
    release.notify_one();
    assert_eq!(held.await.unwrap(), (200, "released\n".to_owned()));
    http.stop().await;
}

// Observation 6: ~1 000 idle connections stalled every TLS handshake.
#[tokio::test]
async fn idle_connections_do_not_hold_up_a_tls_handshake() {
    let pki = TestPki::new();
    let security = Security {
        tls: Some(pki.server_tls()),
        ..Security::default()
    };
    let secured = security.load(&[]).unwrap();
    let (listener, addr) = listener().await;
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(triad_server::serve_http_secured(
        listener,
        router(),
        &secured,
        async {
            let _ = stopped.await;
        },
    ));
    // More idle connections than the old accept loop had handshake
    // permits (1 024), all from the legitimate client's address.
    let mut idle = Vec::new();
    for _ in 0..1100 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        https_request(addr, &pki.anonymous_client_tls(), "GET", "/hello", None, ""),
    )
    .await
    .expect("the handshake finishes")
    .expect("HTTPS request");
    let took = started.elapsed();
    assert_eq!(response.status, 200);
    // The target is < 100 ms (measured in benches/handshake.rs); before
    // the fix this took the whole handshake timeout (10 s).
    assert!(took < Duration::from_secs(2), "took {took:?}");
    drop(idle);
}

/// Calls `path` on `channel` with a health request as the message.
async fn call(
    channel: tonic::transport::Channel,
    path: &str,
    token: Option<&str>,
) -> Result<HealthCheckResponse, tonic::Status> {
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let mut request = tonic::Request::new(HealthCheckRequest::default());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = http::uri::PathAndQuery::try_from(path).unwrap();
    client
        .unary(request, path, tonic_prost::ProstCodec::default())
        .await
        .map(tonic::Response::into_inner)
}

async fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Series in the process registry (non-comment lines of `/metrics`).
fn series() -> usize {
    triad_telemetry::metrics::encode()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .count()
}

const TOKEN: &str = "grpc-test-token-0123456789";

// Observation 7: unauthenticated calls to unique paths grew /metrics.
#[tokio::test]
async fn calls_to_unique_paths_grow_metrics_by_a_fixed_number_of_series() {
    let security = Security {
        auth: AuthConfig {
            token: Some(TokenSource::Value(Secret::new(TOKEN))),
            ..AuthConfig::default()
        },
        ..Security::default()
    };
    let server = grpc(
        spec(tonic::service::Routes::default(), vec![]),
        ServerLimits::default(),
        &security,
    )
    .await;
    let channel = channel(server.addr).await;
    // Warm up: the label sets of a refused and an unknown call exist.
    let _ = call(channel.clone(), "/warm.Up/Call", None).await;
    let _ = call(channel.clone(), "/warm.Up/Call", Some(TOKEN)).await;
    let before = series();
    for i in 0..1000 {
        let refused = call(
            channel.clone(),
            &format!("/x{i}.Service{i}/Method{i}"),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        let unknown = call(
            channel.clone(),
            &format!("/y{i}.Service{i}/Method{i}"),
            Some(TOKEN),
        )
        .await
        .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::Unimplemented);
    }
    let after = series();
    // Other tests of this binary share the registry and add a few series
    // of their own meanwhile; 2 000 unique paths labelled by path would
    // add 40 000.
    assert!(
        after <= before + 200,
        "{} new series for 2 000 unique paths",
        after - before
    );
    let metrics = triad_telemetry::metrics::encode();
    assert!(!metrics.contains("x999.Service999"), "no path is a label");
    assert!(
        metrics.contains(r#"service="unauthenticated""#),
        "refused calls are counted"
    );
    server.stop().await;
}

/// A gRPC service whose every call panics.
#[derive(Debug, Clone)]
struct Panicking;

impl tonic::server::NamedService for Panicking {
    const NAME: &'static str = "test.v1.Panicking";
}

impl tower::Service<http::Request<tonic::body::Body>> for Panicking {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async {
            if true {
                panic!("a handler bug");
            }
            Ok(http::Response::new(tonic::body::Body::empty()))
        })
    }
}

fn panics(protocol: &str) -> u64 {
    let needle = format!("triad_handler_panics_total{{protocol=\"{protocol}\"}} ");
    triad_telemetry::metrics::encode()
        .lines()
        .find_map(|line| line.strip_prefix(&needle))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn a_panicking_grpc_handler_answers_internal_and_the_connection_carries_on() {
    let server = grpc(
        spec(
            tonic::service::Routes::new(Panicking),
            vec!["test.v1.Panicking"],
        ),
        ServerLimits::default(),
        &Security::default(),
    )
    .await;
    let channel = channel(server.addr).await;
    let before = panics("grpc");
    let status = call(channel.clone(), "/test.v1.Panicking/Boom", None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
    assert!(panics("grpc") > before, "counted");
    // The same connection still serves.
    let health = call(channel, "/grpc.health.v1.Health/Check", None)
        .await
        .expect("the connection carries on");
    assert_eq!(health.status, 1, "SERVING");
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_http_handler_answers_500_and_the_connection_carries_on() {
    let http = http_server(router(), ServerLimits::default(), &Security::default()).await;
    let before = panics("http");
    let mut stream = TcpStream::connect(http.addr).await.unwrap();
    let (status, _) = http1(&mut stream, "/panic").await.expect("an answer");
    assert_eq!(status, 500);
    assert!(panics("http") > before, "counted");
    assert_eq!(
        http1(&mut stream, "/hello").await.unwrap(),
        (200, "hello\n".to_owned()),
        "the same connection still serves"
    );
    http.stop().await;
}

/// A descriptor set describing two services, `test.v1.Served` and
/// `test.v1.Other`.
fn two_services() -> &'static [u8] {
    use prost::Message as _;
    use prost_types::{FileDescriptorProto, FileDescriptorSet, ServiceDescriptorProto};
    let service = |name: &str| ServiceDescriptorProto {
        name: Some(name.to_owned()),
        ..ServiceDescriptorProto::default()
    };
    let set = FileDescriptorSet {
        file: vec![FileDescriptorProto {
            name: Some("test/v1/two.proto".to_owned()),
            package: Some("test.v1".to_owned()),
            service: vec![service("Served"), service("Other")],
            syntax: Some("proto3".to_owned()),
            ..FileDescriptorProto::default()
        }],
    };
    Box::leak(set.encode_to_vec().into_boxed_slice())
}

async fn listed_services(addr: SocketAddr) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut client = ServerReflectionClient::new(channel(addr).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("a response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a list: {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

// Observation 14: reflection listed every service of the descriptors.
#[tokio::test]
async fn reflection_lists_only_the_services_the_port_serves() {
    let server = grpc(
        ServiceSpec {
            name: "test",
            routes: tonic::service::Routes::default(),
            health_names: vec!["test.v1.Served"],
            descriptors: vec![two_services()],
        },
        ServerLimits::default(),
        &Security::default(),
    )
    .await;
    assert_eq!(
        listed_services(server.addr).await,
        vec![
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "test.v1.Served",
        ]
    );
    server.stop().await;
}

// Observation 14: HTTP /health stayed healthy while the server drained.
#[tokio::test]
async fn health_fails_from_the_start_of_a_drain_while_requests_are_still_served() {
    let limits = ServerLimits {
        drain_delay: Duration::from_secs(5),
        ..ServerLimits::default()
    };
    let http = http_server(router(), limits.clone(), &Security::default()).await;
    let grpc = grpc(
        spec(tonic::service::Routes::default(), vec!["test.v1.Served"]),
        limits,
        &Security::default(),
    )
    .await;
    let grpc_endpoint = format!("http://{}", grpc.addr);
    assert_eq!(get_status(http.addr, "/health").await.unwrap().0, 200);
    triad_server::healthcheck(&grpc_endpoint, "test.v1.Served", PATIENCE)
        .await
        .expect("SERVING before the drain");

    let started = Instant::now();
    let (http_addr, grpc_addr) = (http.addr, grpc.addr);
    let stopping = tokio::spawn(async move { tokio::join!(http.stop(), grpc.stop()) });
    // The phase changes as soon as the servers see the signal.
    loop {
        let (status, body) = get_status(http_addr, "/health").await.unwrap();
        if status == 503 {
            assert_eq!(body, "draining\n");
            break;
        }
        assert!(started.elapsed() < PATIENCE, "/health never turned 503");
        tokio::task::yield_now().await;
    }
    let error = triad_server::healthcheck(&grpc_endpoint, "test.v1.Served", PATIENCE)
        .await
        .expect_err("NOT_SERVING while draining");
    assert!(
        matches!(error, triad_server::health::HealthError::NotServing { .. }),
        "{error}"
    );
    // New connections are still accepted and served during the delay.
    assert_eq!(
        get_status(http_addr, "/hello").await.unwrap(),
        (200, "hello\n".to_owned())
    );
    assert_eq!(
        listed_services(grpc_addr).await.len(),
        4,
        "gRPC still serves"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the checks above ran within the drain delay (took {:?})",
        started.elapsed()
    );
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("both stop after the delay")
        .unwrap();
    assert!(TcpStream::connect(http_addr).await.is_err(), "port closed");
}
