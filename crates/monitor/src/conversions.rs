//! The one mapping of the application layer's errors to what callers see:
//! a gRPC status for the `triad.v1.Monitor` handlers and an HTTP status for
//! the dashboard, both from one classification ([`code`]). The message is
//! the error's own, unchanged.
//!
//! - a refused request ([`RequestError`](crate::app::RequestError)) is `INVALID_ARGUMENT` (HTTP 400);
//! - a write that raced another writer is `ABORTED` and a database with no
//!   free connection `UNAVAILABLE` (both HTTP 503: retry);
//! - any other failure of the store or of a computation is `INTERNAL`
//!   (HTTP 500, and logged).

use axum::http::StatusCode;

use crate::app::AppError;
use crate::dashboard::PageError;
use crate::store::StorageError;

/// The gRPC code of `error`.
fn code(error: &AppError) -> tonic::Code {
    match error {
        AppError::Request(_) => tonic::Code::InvalidArgument,
        AppError::Storage(StorageError::ConcurrentWrite { .. }) => tonic::Code::Aborted,
        AppError::Storage(StorageError::Database(sqlx::Error::PoolTimedOut)) => {
            tonic::Code::Unavailable
        }
        AppError::Storage(_) | AppError::Computation(_) => tonic::Code::Internal,
    }
}

/// The HTTP status of a gRPC `code`.
fn http_status(code: tonic::Code) -> StatusCode {
    match code {
        tonic::Code::InvalidArgument
        | tonic::Code::OutOfRange
        | tonic::Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::Unavailable | tonic::Code::Aborted => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<AppError> for tonic::Status {
    fn from(error: AppError) -> Self {
        tonic::Status::new(code(&error), error.to_string())
    }
}

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        let status = http_status(code(&error));
        let message = error.to_string();
        if status.is_server_error() {
            tracing::error!(error = %message, "HTTP request failed");
        }
        Self { status, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::RequestError;

    #[test]
    fn errors_map_to_grpc_codes() {
        let code = |e: AppError| tonic::Status::from(e).code();
        assert_eq!(
            code(RequestError::PageSize { got: 2, max: 1 }.into()),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            code(
                StorageError::ConcurrentWrite {
                    expected: 2,
                    inserted: 1
                }
                .into()
            ),
            tonic::Code::Aborted
        );
        assert_eq!(
            code(StorageError::Database(sqlx::Error::PoolTimedOut).into()),
            tonic::Code::Unavailable
        );
        assert_eq!(
            code(AppError::Computation("x".into())),
            tonic::Code::Internal
        );
    }

    #[test]
    fn errors_map_to_http_statuses() {
        let status = |e: AppError| PageError::from(e).status;
        assert_eq!(
            status(
                RequestError::TooManyPoints {
                    points: 9,
                    max: 1,
                    first_day: String::new(),
                    last_day: String::new(),
                }
                .into()
            ),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(StorageError::Database(sqlx::Error::PoolTimedOut).into()),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(StorageError::Corrupt("x".into()).into()),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
