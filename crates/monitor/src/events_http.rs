//! Wire adapter: business events over HTTP, `POST /events`, beside the
//! gRPC `RecordEvents`, so a front end can send them without a gRPC
//! client. The body is the same request in JSON:
//!
//! ```json
//! {"events": [{"name": "expense_matched", "duration_ms": 1840.0,
//!              "occurred_at_ms": 1764892800000, "request_id": "…"}]}
//! ```
//!
//! `occurred_at_ms` (0 or absent: now) and `request_id` may be left out;
//! an unknown field is refused, so a misspelt one is not silently
//! dropped. The answer is `RecordEvents`' own: `{"stored": N, "rejected":
//! [{"index": i, "reason": "…"}]}` with 200, a bad event rejected next to
//! the stored ones; a body that is not such JSON is a 400. A POST writes,
//! so with tokens on it takes the service (write) token.
//!
//! A body is at most [`MAX_BODY_BYTES`] (413 beyond, before it is
//! read): some 60 000 of the shortest events, parsed and stored in one
//! call like a `RecordEvents` message of the same size.
//!
//! The body must be sent as `Content-Type: application/json` (415
//! otherwise): a web page on another origin cannot send that type without
//! a CORS preflight, which this port never grants, so a browser cannot be
//! made to post events to a monitor that runs without tokens.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use triad_proto::v1::{Event, RecordEventsRequest};

use crate::app::Monitor;
use crate::dashboard::PageError;

/// Most bytes of a `POST /events` body: axum's default, written down.
pub(crate) const MAX_BODY_BYTES: usize = 2 << 20;

/// The JSON body of `POST /events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsBody {
    events: Vec<EventBody>,
}

/// One event of [`EventsBody`]: the fields of the proto `Event`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    name: String,
    duration_ms: f64,
    #[serde(default)]
    occurred_at_ms: i64,
    #[serde(default)]
    request_id: String,
}

/// The answer: what `RecordEvents` answers, in JSON.
#[derive(Debug, Serialize)]
struct Answer {
    stored: u64,
    rejected: Vec<Rejected>,
}

/// One rejected event of [`Answer`].
#[derive(Debug, Serialize)]
struct Rejected {
    index: u32,
    reason: String,
}

/// A refused call: its status and `{"error": "…"}`.
fn refused(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// `POST /events`.
pub(crate) async fn record(
    State(monitor): State<Monitor>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be sent as Content-Type: application/json".to_owned(),
        );
    }
    let body: EventsBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => {
            return refused(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not {{\"events\": [{{\"name\", \"duration_ms\", \
                     \"occurred_at_ms\", \"request_id\"}}]}} in JSON: {error}"
                ),
            );
        }
    };
    let request = RecordEventsRequest {
        events: body
            .events
            .into_iter()
            .map(|event| Event {
                name: event.name,
                duration_ms: event.duration_ms,
                occurred_at_ms: event.occurred_at_ms,
                request_id: event.request_id,
            })
            .collect(),
    };
    match monitor.record_events(&request).await {
        Ok(response) => {
            if !response.rejected.is_empty() {
                tracing::warn!(rejected = response.rejected.len(), "events rejected");
            }
            Json(Answer {
                stored: response.stored,
                rejected: response
                    .rejected
                    .into_iter()
                    .map(|r| Rejected {
                        index: r.index,
                        reason: r.reason,
                    })
                    .collect(),
            })
            .into_response()
        }
        Err(error) => {
            let error = PageError::from(error);
            refused(error.status, error.message)
        }
    }
}
