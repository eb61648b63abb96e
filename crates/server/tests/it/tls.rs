//! TLS, mutual TLS, certificate rotation and bearer tokens on real
//! servers (`serve_secured`, `serve_http_secured`) on 127.0.0.1:0, with
//! certificates generated for the test.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::{get, post};
use tokio::sync::oneshot;
use triad_server::auth::{AuthConfig, Secret, TokenSource};
use triad_server::health::healthcheck_tls;
use triad_server::tls::TlsConfig;
use triad_server::{Security, ServiceSpec};
use triad_test_support::{TestPki, https_request};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A gRPC server (health only) and an HTTP server, both with `security`.
struct Servers {
    grpc: SocketAddr,
    http: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(security: &Security) -> Servers {
    let secured = security.load(&[]).expect("security loads");
    let grpc = triad_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = triad_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let spec = ServiceSpec {
        name: "test",
        routes: tonic::service::Routes::default(),
        health_names: vec![],
        descriptors: vec![],
    };
    let router = axum::Router::new()
        .route("/hello", get(|| async { "hello\n" }))
        .route("/write", post(|| async { "written\n" }))
        .route("/metrics", get(|| async { "# metrics\n" }));
    let secured_http = secured.clone();
    tokio::spawn(async move {
        let limits = triad_server::ServerLimits::default();
        let _ = triad_server::serve_secured(grpc, spec, &limits, &secured, async {
            let _ = stopped.await;
            let _ = stop_http.send(());
        })
        .await;
    });
    tokio::spawn(triad_server::serve_http_secured(
        http,
        router,
        &secured_http,
        async {
            let _ = http_stopped.await;
        },
    ));
    Servers {
        grpc: grpc_addr,
        http: http_addr,
        _stop: stop,
    }
}

fn tls_only(pki: &TestPki) -> Security {
    Security {
        tls: Some(pki.server_tls()),
        ..Security::default()
    }
}

#[tokio::test]
async fn grpc_and_http_round_trip_over_tls() {
    let pki = TestPki::new();
    let servers = start(&tls_only(&pki)).await;
    let https = format!("https://127.0.0.1:{}", servers.grpc.port());
    healthcheck_tls(&https, "", TIMEOUT, &pki.anonymous_client_tls())
        .await
        .expect("gRPC health over TLS");
    // Plain TCP to a TLS port fails.
    let plain = format!("http://127.0.0.1:{}", servers.grpc.port());
    assert!(
        triad_server::healthcheck(&plain, "", TIMEOUT)
            .await
            .is_err()
    );

    let response = https_request(
        servers.http,
        &pki.anonymous_client_tls(),
        "GET",
        "/hello",
        None,
        "",
    )
    .await
    .expect("HTTPS request");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "hello\n");
}

#[tokio::test]
async fn a_client_of_another_authority_is_not_trusted() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let servers = start(&tls_only(&pki)).await;
    let https = format!("https://127.0.0.1:{}", servers.grpc.port());
    let error = healthcheck_tls(&https, "", TIMEOUT, &other.anonymous_client_tls())
        .await
        .expect_err("the server's certificate is not signed by the client's CA");
    assert!(
        matches!(error, triad_server::health::HealthError::Connect { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_and_accepts_one_with() {
    let pki = TestPki::new();
    let security = Security {
        tls: Some(pki.mutual_tls()),
        ..Security::default()
    };
    let servers = start(&security).await;
    let https = format!("https://127.0.0.1:{}", servers.grpc.port());

    for (who, client) in [
        ("no certificate", pki.anonymous_client_tls()),
        (
            "a certificate of another authority",
            pki.stranger_client_tls(),
        ),
    ] {
        assert!(
            healthcheck_tls(&https, "", TIMEOUT, &client).await.is_err(),
            "gRPC with {who} must be refused"
        );
        let http = https_request(servers.http, &client, "GET", "/hello", None, "").await;
        assert!(
            http.is_err(),
            "HTTP with {who} must be refused, got {http:?}"
        );
    }

    healthcheck_tls(&https, "", TIMEOUT, &pki.client_tls())
        .await
        .expect("gRPC with the client certificate");
    let response = https_request(servers.http, &pki.client_tls(), "GET", "/hello", None, "")
        .await
        .expect("HTTP with the client certificate");
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn the_healthcheck_subcommand_probes_tls_and_mutual_tls_servers() {
    let pki = TestPki::new();
    for security in [
        tls_only(&pki),
        Security {
            tls: Some(pki.mutual_tls()),
            ..Security::default()
        },
    ] {
        let servers = start(&security).await;
        triad_server::check_local_with(servers.grpc, "", &security)
            .await
            .expect("healthcheck of a TLS server");
        assert!(
            triad_server::check_local(servers.grpc, "").await.is_err(),
            "a plaintext probe of a TLS port fails"
        );
    }
    // And of a plain server, as before.
    let servers = start(&Security::default()).await;
    triad_server::check_local_with(servers.grpc, "", &Security::default())
        .await
        .expect("healthcheck of a plain server");
}

#[tokio::test]
async fn bearer_tokens_guard_http_and_metrics_except_health() {
    let pki = TestPki::new();
    let security = Security {
        tls: Some(pki.server_tls()),
        auth: AuthConfig {
            token: Some(TokenSource::Value(Secret::new("s3cret-write-0123456"))),
            read_token: Some(TokenSource::Value(Secret::new("s3cret-read-0123456"))),
            ..AuthConfig::default()
        },
    };
    let servers = start(&security).await;
    let client = pki.anonymous_client_tls();
    let request = |method: &'static str, path: &'static str, token: Option<&'static str>| {
        let client = client.clone();
        async move {
            https_request(servers.http, &client, method, path, token, "")
                .await
                .expect("HTTPS request")
        }
    };

    let missing = request("GET", "/hello", None).await;
    assert_eq!(missing.status, 401);
    assert!(
        missing
            .headers
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{missing:?}"
    );
    assert_eq!(request("GET", "/hello", Some("wrong")).await.status, 401);
    assert_eq!(
        request("GET", "/hello", Some("s3cret-read-0123456"))
            .await
            .status,
        200
    );
    assert_eq!(
        request("GET", "/hello", Some("s3cret-write-0123456"))
            .await
            .status,
        200
    );
    assert_eq!(
        request("POST", "/write", Some("s3cret-read-0123456"))
            .await
            .status,
        403
    );
    assert_eq!(
        request("POST", "/write", Some("s3cret-write-0123456"))
            .await
            .status,
        200
    );
    // Only /health is open: /metrics needs the read token.
    assert_eq!(request("GET", "/metrics", None).await.status, 401);
    let metrics = request("GET", "/metrics", Some("s3cret-read-0123456")).await;
    assert_eq!(
        (metrics.status, metrics.body.as_str()),
        (200, "# metrics\n")
    );

    // gRPC health stays open without a token.
    let https = format!("https://127.0.0.1:{}", servers.grpc.port());
    healthcheck_tls(&https, "", TIMEOUT, &client)
        .await
        .expect("health needs no token");
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let old = TestPki::new();
    let new = TestPki::new();
    // The served files, first the old authority's.
    let dir = old.dir().join("served");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::copy(&old.server_cert, &cert).unwrap();
    std::fs::copy(&old.server_key, &key).unwrap();
    let security = Security {
        tls: Some(TlsConfig {
            reload_interval: Duration::from_millis(20),
            ..TlsConfig::new(&cert, &key)
        }),
        ..Security::default()
    };
    let servers = start(&security).await;
    https_request(
        servers.http,
        &old.anonymous_client_tls(),
        "GET",
        "/hello",
        None,
        "",
    )
    .await
    .expect("the old certificate is served");

    // A broken file is ignored: the old certificate stays.
    std::fs::write(&key, "not a key").unwrap();
    // Then the new certificate and key arrive (key first, as a Secret
    // volume update may).
    std::fs::copy(&new.server_key, &key).unwrap();
    std::fs::copy(&new.server_cert, &cert).unwrap();

    // No event says when the reload happened: poll, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = https_request(
            servers.http,
            &new.anonymous_client_tls(),
            "GET",
            "/hello",
            None,
            "",
        )
        .await;
        if let Ok(response) = attempt {
            assert_eq!(response.status, 200);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not picked up: {attempt:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let https = format!("https://127.0.0.1:{}", servers.grpc.port());
    healthcheck_tls(&https, "", TIMEOUT, &new.anonymous_client_tls())
        .await
        .expect("gRPC serves the new certificate too");
    assert!(
        https_request(
            servers.http,
            &old.anonymous_client_tls(),
            "GET",
            "/hello",
            None,
            ""
        )
        .await
        .is_err(),
        "the old authority's clients no longer match"
    );
}

#[tokio::test]
async fn a_bad_certificate_file_fails_start_up_with_its_name() {
    let pki = TestPki::new();
    let missing = pki.dir().join("missing.pem");
    let security = Security {
        tls: Some(TlsConfig::new(&missing, &pki.server_key)),
        ..Security::default()
    };
    let error = security.load(&[]).expect_err("missing certificate");
    assert!(error.to_string().contains("missing.pem"), "{error}");

    let security = Security {
        tls: Some(TlsConfig::new(&pki.server_cert, &pki.server_cert)),
        ..Security::default()
    };
    let error = security.load(&[]).expect_err("a certificate is not a key");
    assert!(error.to_string().contains("private key"), "{error}");
}

#[tokio::test]
async fn a_balanced_channel_idle_past_the_servers_handshake_deadline_still_calls_every_replica() {
    // Sixteen mutual-TLS replicas behind one name, each closing a connection
    // that has not finished its handshake within 300 ms. One call, then
    // idle past the deadline, then calls again: none may fail (with
    // tonic's balance_channel the replicas not chosen first were left
    // half-way through their handshake, closed by the server, and the next
    // call sent to one failed).
    let pki = TestPki::new();
    let secured = Security {
        tls: Some(pki.mutual_tls()),
        ..Security::default()
    }
    .load(&[])
    .unwrap();
    let limits = triad_server::ServerLimits {
        handshake_timeout: Duration::from_millis(300),
        ..triad_server::ServerLimits::default()
    };
    let mut replicas = Vec::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for _ in 0..16 {
        let listener = triad_server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        replicas.push(listener.local_addr().unwrap());
        let spec = ServiceSpec {
            name: "replica",
            routes: tonic::service::Routes::default(),
            health_names: vec![],
            descriptors: vec![],
        };
        let (secured, limits, mut stopped) = (secured.clone(), limits.clone(), stopped.clone());
        tokio::spawn(async move {
            let _ = triad_server::serve_secured(listener, spec, &limits, &secured, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await;
        });
    }
    let list = replicas.clone();
    let channel = triad_server::client::connect_with_lookup(
        "https://localhost:1",
        &triad_server::ClientConfig {
            tls: pki.client_tls(),
            ..triad_server::ClientConfig::default()
        },
        move || {
            let list = list.clone();
            Box::pin(async move { Ok(list) })
        },
    )
    .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = tonic_health::pb::HealthCheckRequest::default();
    health.check(check.clone()).await.expect("first call");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for call in 0..32 {
        health
            .check(check.clone())
            .await
            .unwrap_or_else(|status| panic!("call {call} after idling failed: {status}"));
    }
    let _ = stop.send(true);
}
