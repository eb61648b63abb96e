//! The `triad.v1.Preprocess` gRPC handlers: validate the request's size,
//! featurize under the call's deadline, and convert the matrix to its wire
//! form.
//!
//! Every call's work is bounded: by counts checked before featurizing
//! (pairs, budgets, line items and, for a stream, bytes held), and in time
//! by an [`Interrupt`] the featurizer checks as it goes, which fires at the
//! caller's deadline (`grpc-timeout`, or the server's request timeout if
//! sooner) or when the call is dropped, so a blocking-pool thread is never
//! held by a call nobody waits for.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use triad_features::{FeatureMatrix, Featurizer, Interrupt, Interrupted, RawRequest};
use triad_proto::convert::{matrix_chunks, matrix_to_proto};
use triad_proto::v1::preprocess_server::Preprocess;
use triad_proto::v1::{self, FeaturizeRequest};

use crate::config::PreprocessConfig;
use crate::error::PreprocessError;

/// Handlers of the preprocess service.
#[derive(Debug, Clone)]
pub struct PreprocessService {
    featurizer: Arc<Featurizer>,
    config: PreprocessConfig,
}

/// When a call must be answered by, and how long that was when it arrived.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    allowed: Duration,
}

impl Deadline {
    /// The server's request timeout, shortened by the caller's
    /// `grpc-timeout` if that is sooner.
    fn of<T>(request: &Request<T>, request_timeout: Duration) -> Self {
        let allowed = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map_or(request_timeout, |timeout| timeout.min(request_timeout));
        let now = Instant::now();
        Self {
            at: now.checked_add(allowed).unwrap_or(now + request_timeout),
            allowed,
        }
    }
}

/// Parses a `grpc-timeout` header value: at most 8 digits and a unit (`H`,
/// `M`, `S`, `m`, `u`, `n`). `None` for anything else.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Sets its flag when dropped: when tonic drops a handler's future (the
/// caller went away, or the server's timeout answered first), the
/// featurization it started stops at its next check.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl PreprocessService {
    /// A service featurizing with `featurizer` under `config`'s limits.
    pub fn new(featurizer: Arc<Featurizer>, config: PreprocessConfig) -> Self {
        Self { featurizer, config }
    }

    fn check_pairs(
        budgets: usize,
        items: usize,
        limit: usize,
        hint: &'static str,
    ) -> Result<(), PreprocessError> {
        let pairs = budgets.saturating_mul(items);
        if pairs > limit {
            return Err(PreprocessError::TooManyPairs {
                budgets,
                items,
                pairs,
                limit,
                hint,
            });
        }
        Ok(())
    }

    /// Checks the budgets and line items held against their limits.
    fn check_items(&self, budgets: usize, items: usize) -> Result<(), PreprocessError> {
        for (list, count, limit) in [
            ("budgets", budgets, self.config.max_budgets),
            ("line items", items, self.config.max_line_items),
        ] {
            if count > limit {
                return Err(PreprocessError::TooManyItems { list, count, limit });
            }
        }
        Ok(())
    }

    /// Featurizes under `deadline`: inline for small, cheap requests and on
    /// the blocking pool for the others, stopping once the deadline passes
    /// or this future is dropped.
    async fn featurize(
        &self,
        request: RawRequest,
        deadline: Deadline,
    ) -> Result<FeatureMatrix, PreprocessError> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancelled));
        let interrupt = Interrupt::at(deadline.at).or_cancelled_by(cancelled);
        let outcome = if estimated_cost(&request) <= self.config.blocking_threshold_pairs {
            self.featurizer
                .featurize_until(&request, Vec::new(), &interrupt)
        } else {
            let featurizer = Arc::clone(&self.featurizer);
            tokio::task::spawn_blocking(move || {
                featurizer.featurize_until(&request, Vec::new(), &interrupt)
            })
            .await?
        };
        outcome.map_err(|interrupted| match interrupted {
            Interrupted::DeadlineExceeded => PreprocessError::DeadlineExceeded {
                allowed_ms: deadline.allowed.as_millis(),
            },
            Interrupted::Cancelled => PreprocessError::Cancelled,
        })
    }
}

/// The work of featurizing `request`, in pairs of short names: its pairs,
/// plus its vendor texts' bytes on each side multiplied (long vendor names
/// cost about their product / 4096 pairs' worth), so that a few hundred
/// pairs of long names are not featurized on an async worker either.
fn estimated_cost(request: &RawRequest) -> usize {
    let bytes = |texts: &mut dyn Iterator<Item = &Option<String>>| -> usize {
        texts.map(|text| text.as_ref().map_or(0, String::len)).sum()
    };
    let budget_bytes = bytes(&mut request.budgets.iter().flat_map(|budget| {
        [
            &budget.travel_vendor_receipts,
            &budget.purchase_vendor_receipts,
        ]
    }));
    let item_bytes = bytes(
        &mut request
            .all_user_expense_lineitems
            .iter()
            .map(|item| &item.vendor_name_expense),
    );
    let pairs = request
        .budgets
        .len()
        .saturating_mul(request.all_user_expense_lineitems.len());
    pairs.saturating_add(budget_bytes.saturating_mul(item_bytes) / 4096)
}

type MatrixStream = Pin<Box<dyn Stream<Item = Result<v1::FeatureMatrix, Status>> + Send>>;

#[tonic::async_trait]
impl Preprocess for PreprocessService {
    async fn featurize(
        &self,
        request: Request<FeaturizeRequest>,
    ) -> Result<Response<v1::FeatureMatrix>, Status> {
        let request_id = triad_telemetry::request_id(&request);
        let deadline = Deadline::of(&request, self.config.server.request_timeout);
        let request = request.into_inner();
        let (budgets, items) = (
            request.budgets.len(),
            request.all_user_expense_lineitems.len(),
        );
        self.check_items(budgets, items)?;
        Self::check_pairs(
            budgets,
            items,
            self.config.max_pairs,
            "; send larger batches with FeaturizeStream",
        )?;
        let matrix = self.featurize(request.into(), deadline).await?;
        tracing::debug!(
            rows = matrix.n_rows,
            item_errors = matrix.errors.len(),
            "featurized"
        );
        Ok(Response::new(matrix_to_proto(matrix, &request_id)))
    }

    type FeaturizeStreamStream = MatrixStream;

    async fn featurize_stream(
        &self,
        request: Request<Streaming<FeaturizeRequest>>,
    ) -> Result<Response<Self::FeaturizeStreamStream>, Status> {
        let request_id = triad_telemetry::request_id(&request);
        let deadline = Deadline::of(&request, self.config.server.request_timeout);
        let mut chunks = request.into_inner();
        let mut whole = RawRequest::default();
        let mut bytes = 0usize;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            // Refuse as soon as a limit is passed, before buffering more.
            bytes = bytes.saturating_add(chunk.encoded_len());
            if bytes > self.config.max_stream_bytes {
                return Err(PreprocessError::StreamTooLarge {
                    bytes,
                    limit: self.config.max_stream_bytes,
                }
                .into());
            }
            let (budgets, items) = (
                whole.budgets.len() + chunk.budgets.len(),
                whole.all_user_expense_lineitems.len() + chunk.all_user_expense_lineitems.len(),
            );
            self.check_items(budgets, items)?;
            Self::check_pairs(budgets, items, self.config.max_stream_pairs, "")?;
            let chunk = RawRequest::from(chunk);
            whole.budgets.extend(chunk.budgets);
            whole
                .all_user_expense_lineitems
                .extend(chunk.all_user_expense_lineitems);
        }
        let matrix = self.featurize(whole, deadline).await?;
        tracing::debug!(
            rows = matrix.n_rows,
            item_errors = matrix.errors.len(),
            "featurized stream"
        );
        let messages = matrix_chunks(matrix, &request_id, self.config.rows_per_chunk);
        Ok(Response::new(Box::pin(tokio_stream::iter(
            messages.into_iter().map(Ok),
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "m", "5", "123456789m", "5x", "-5m", "5 m", "５m"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn deadline_is_the_sooner_of_grpc_timeout_and_request_timeout() {
        let mut request = Request::new(());
        let limit = Duration::from_secs(30);
        assert_eq!(Deadline::of(&request, limit).allowed, limit);
        request
            .metadata_mut()
            .insert("grpc-timeout", "1500m".parse().unwrap());
        assert_eq!(
            Deadline::of(&request, limit).allowed,
            Duration::from_millis(1500)
        );
        request
            .metadata_mut()
            .insert("grpc-timeout", "2H".parse().unwrap());
        assert_eq!(Deadline::of(&request, limit).allowed, limit);
    }

    #[test]
    fn long_vendor_names_count_toward_the_blocking_threshold() {
        let request = |n: usize, vendor: &str| RawRequest {
            budgets: vec![
                triad_features::RawBudget {
                    travel_vendor_receipts: Some(vendor.to_owned()),
                    ..Default::default()
                };
                n
            ],
            all_user_expense_lineitems: vec![
                triad_features::RawLineItem {
                    vendor_name_expense: Some(vendor.to_owned()),
                    ..Default::default()
                };
                n
            ],
        };
        // 100 × 100 short names: about their pairs.
        let short = estimated_cost(&request(100, "Southwest Airlines"));
        assert!((10_000..11_000).contains(&short), "{short}");
        // 100 × 100 names of 510 bytes: far over the default threshold.
        let long = estimated_cost(&request(100, &"北".repeat(170)));
        assert!(
            long > 20 * PreprocessConfig::default().blocking_threshold_pairs,
            "{long}"
        );
    }
}
