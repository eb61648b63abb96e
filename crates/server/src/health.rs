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
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("health check of {endpoint} failed: {status}")]
    Call {
        endpoint: String,
        status: tonic::Status,
    },
    #[error("{endpoint} is {status:?}, expected SERVING")]
    NotServing {
        endpoint: String,
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
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .map_err(|source| HealthError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })?
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
