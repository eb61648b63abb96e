//! Client-side balancing: a channel to a name spreads its `Featurize` calls
//! over every replica the name resolves to, instead of pinning them to the
//! one HTTP/2 connection it opened first, and stops using a replica once
//! the name no longer resolves to it.
//!
//! The lookup is the test's own (a `watch` channel of addresses standing in
//! for DNS), so it can change what the name resolves to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use triad_preprocess::PreprocessConfig;
use triad_proto::v1::preprocess_client::PreprocessClient;
use triad_server::client::{self, ClientConfig, GrpcChannel};
use triad_test_support::seed_featurize_request;

/// A preprocess replica on an ephemeral port that counts what it serves.
struct Replica {
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

impl Replica {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&served);
        let counting = tower::util::MapRequestLayer::new(move |request: http::Request<_>| {
            counter.fetch_add(1, Ordering::Relaxed);
            request
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let spec = triad_preprocess::service_spec(&PreprocessConfig::default());
        tokio::spawn(
            tonic::transport::Server::builder()
                .layer(counting)
                .add_routes(spec.routes)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                ),
        );
        Self {
            addr,
            served,
            stop: Some(stop),
        }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }
}

/// A channel to `http://preprocess:50051` whose name resolves to whatever
/// `answer` holds.
fn channel(answer: watch::Receiver<Vec<SocketAddr>>) -> GrpcChannel {
    client::connect_with_lookup(
        "http://preprocess:50051",
        &ClientConfig {
            dns_refresh: Duration::from_millis(50),
            ..ClientConfig::default()
        },
        move || {
            let addrs = answer.borrow().clone();
            Box::pin(async move { Ok(addrs) })
        },
    )
    .unwrap()
}

/// `calls` Featurize calls from 8 concurrent callers sharing `client`, as
/// the scorer's request handlers do; every one must succeed.
async fn featurize_concurrently(client: &PreprocessClient<GrpcChannel>, calls: usize) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..calls / 8 {
                let matrix = client
                    .featurize(seed_featurize_request())
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(matrix.keys.len(), 1);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_every_replica_behind_a_name() {
    let replicas = [Replica::start().await, Replica::start().await];
    let (_answer, lookup) = watch::channel(vec![replicas[0].addr, replicas[1].addr]);
    let client = PreprocessClient::new(channel(lookup));

    featurize_concurrently(&client, 400).await;

    let counts = [replicas[0].served(), replicas[1].served()];
    assert_eq!(
        counts[0] + counts[1],
        400,
        "every call served once: {counts:?}"
    );
    // Power of two choices by in-flight requests: both replicas get a real
    // share (an even split is 200 each), not a handful.
    assert!(
        counts.iter().all(|&n| n >= 40),
        "calls not spread over both replicas: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_leaving_the_name_stops_getting_calls() {
    let mut replicas = [Replica::start().await, Replica::start().await];
    let (answer, lookup) = watch::channel(vec![replicas[0].addr]);
    let client = PreprocessClient::new(channel(lookup));

    // A replica that appears is used within a refresh.
    answer.send_replace(vec![replicas[0].addr, replicas[1].addr]);
    tokio::time::timeout(Duration::from_secs(10), async {
        while replicas[1].served() == 0 {
            featurize_concurrently(&client, 8).await;
        }
    })
    .await
    .expect("the new replica gets calls");

    // The second replica leaves the name (Kubernetes drops a pod that
    // turned NOT_SERVING from its Service): wait until it gets nothing for
    // 100 calls in a row, then stop it; no call may fail, before or after.
    answer.send_replace(vec![replicas[0].addr]);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let before = replicas[1].served();
            featurize_concurrently(&client, 104).await;
            if replicas[1].served() == before {
                break;
            }
        }
    })
    .await
    .expect("the departed replica stops getting calls");
    let _ = replicas[1].stop.take().unwrap().send(());
    let first = replicas[0].served();
    featurize_concurrently(&client, 200).await;
    assert_eq!(replicas[0].served(), first + 200);
}
