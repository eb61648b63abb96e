//! How long a legitimate TLS handshake (and one HTTPS request) takes on a
//! Triad HTTP port, alone and while 1 000 idle TCP connections from the
//! same address are held open (observation 6 of issue 11: it took 7.4 s).
//!
//! `cargo bench -p triad-server --bench handshake`
//!
//! Three cases: no idle connections; 1 000 idle connections with the
//! default limits (the per-peer cap closes all but the newest 256 of
//! them); and 1 000 idle connections all left pending (cap raised, long
//! handshake timeout), the worst case for the accept loop.

use std::net::SocketAddr;
use std::time::Duration;

use criterion::Criterion;
use tokio::net::TcpStream;
use triad_server::{Security, ServerLimits};
use triad_test_support::{TestPki, https_request};

/// Starts a TLS HTTP port with `limits`; returns its address.
async fn start(pki: &TestPki, limits: ServerLimits) -> SocketAddr {
    let security = Security {
        tls: Some(pki.server_tls()),
        ..Security::default()
    };
    let secured = security.load(&[]).expect("security loads");
    let listener = triad_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello\n" }));
    tokio::spawn(triad_server::serve_http_with(
        listener,
        router,
        &limits,
        &secured,
        std::future::pending(),
    ));
    addr
}

fn handshake(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let pki = TestPki::new();
    let client = pki.anonymous_client_tls();
    let held_pending = ServerLimits {
        handshake_timeout: Duration::from_secs(600),
        max_pending_per_peer: 4096,
        ..ServerLimits::default()
    };
    let mut group = c.benchmark_group("tls_handshake_and_request");
    group.measurement_time(Duration::from_secs(5));
    for (name, limits, idle_count) in [
        ("alone", ServerLimits::default(), 0),
        ("1000_idle_default_limits", ServerLimits::default(), 1000),
        ("1000_idle_all_pending", held_pending, 1000),
    ] {
        let addr = runtime.block_on(start(&pki, limits));
        let idle: Vec<TcpStream> = runtime.block_on(async {
            let mut idle = Vec::new();
            for _ in 0..idle_count {
                idle.push(TcpStream::connect(addr).await.unwrap());
            }
            idle
        });
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = https_request(addr, &client, "GET", "/hello", None, "")
                        .await
                        .expect("HTTPS request");
                    assert_eq!(response.status, 200);
                })
            })
        });
        drop(idle);
    }
    group.finish();
}

// `main` by hand: `criterion_group!` generates an undocumented `pub fn`.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    handshake(&mut criterion);
    criterion.final_summary();
}
