//! The client side of `grpc.health.v1`: what a binary's `healthcheck`
//! subcommand calls (a scratch container has no shell or curl for a
//! HEALTHCHECK), and what tests and `triad up` wait on.

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Why a health check did not come back SERVING.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// No connection could be made within the timeout.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// The server asked.
        endpoint: String,
        /// Why the connection failed.
        source: tonic::transport::Error,
    },
    /// The `Check` call failed (an unknown service name answers
    /// `NOT_FOUND`).
    #[error("health check of {endpoint} failed: {status}")]
    Call {
        /// The server asked.
        endpoint: String,
        /// Its answer.
        status: tonic::Status,
    },
    /// The client's TLS settings cannot be used.
    #[error("cannot set up TLS for the health check: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The server answered, with a status other than SERVING.
    #[error("{endpoint} is {status:?}, expected SERVING")]
    NotServing {
        /// The server asked.
        endpoint: String,
        /// The status it reported.
        status: ServingStatus,
    },
}

/// Asks `endpoint` (e.g. `http://127.0.0.1:50051`) whether `service` (empty
/// for the whole server) is SERVING, within `timeout`.
pub async fn healthcheck(
    endpoint: &str,
    service: &str,
    timeout: Duration,
) -> Result<(), HealthError> {
    let target =
        tonic::transport::Endpoint::from_shared(endpoint.to_owned()).map_err(|source| {
            HealthError::Connect {
                endpoint: endpoint.to_owned(),
                source,
            }
        })?;
    check_endpoint(endpoint, target, service, timeout).await
}

/// [`healthcheck`] of an `https://` endpoint, trusting and presenting what
/// `tls` names.
pub async fn healthcheck_tls(
    endpoint: &str,
    service: &str,
    timeout: Duration,
    tls: &crate::tls::ClientTls,
) -> Result<(), HealthError> {
    let connect_error = |source| HealthError::Connect {
        endpoint: endpoint.to_owned(),
        source,
    };
    let target = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .map_err(connect_error)?
        .tls_config(tls.tonic_config()?)
        .map_err(connect_error)?;
    check_endpoint(endpoint, target, service, timeout).await
}

async fn check_endpoint(
    endpoint: &str,
    target: tonic::transport::Endpoint,
    service: &str,
    timeout: Duration,
) -> Result<(), HealthError> {
    let channel = target
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|source| HealthError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map_err(|status| HealthError::Call {
            endpoint: endpoint.to_owned(),
            status,
        })?;
    let status = response.into_inner().status();
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(HealthError::NotServing {
            endpoint: endpoint.to_owned(),
            status,
        })
    }
}

/// What a binary's `healthcheck` subcommand runs: asks the server this
/// binary would serve on `addr` (probed on loopback, whatever interface it
/// binds) whether `service` is SERVING, within 2 seconds.
pub async fn check_local(addr: std::net::SocketAddr, service: &str) -> Result<(), HealthError> {
    let endpoint = format!("http://127.0.0.1:{}", addr.port());
    healthcheck(&endpoint, service, Duration::from_secs(2)).await
}

/// [`check_local`] of a server configured with `security`: over TLS when
/// it serves TLS, trusting exactly the certificate it serves (and
/// presenting it, when the server requires client certificates). Health
/// checks never need a token.
pub async fn check_local_with(
    addr: std::net::SocketAddr,
    service: &str,
    security: &crate::Security,
) -> Result<(), HealthError> {
    let Some(tls) = &security.tls else {
        return check_local(addr, service).await;
    };
    let endpoint = format!("https://127.0.0.1:{}", addr.port());
    let connect_error = |source| HealthError::Connect {
        endpoint: endpoint.clone(),
        source,
    };
    let (client, verifier) = crate::tls::local_probe(tls)?;
    let target = tonic::transport::Endpoint::from_shared(endpoint.clone())
        .map_err(connect_error)?
        .tls_config_with_verifier(client, verifier)
        .map_err(connect_error)?;
    check_endpoint(&endpoint, target, service, Duration::from_secs(2)).await
}
