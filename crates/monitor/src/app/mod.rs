//! The application layer: what the monitor does for each RPC and page,
//! between the wire adapters (`grpc.rs`, `dashboard/`) and the
//! [`Store`]. Each operation takes the wire request, checks it
//! ([`validate`]: a bad request is refused, a bad item rejected next to
//! what was stored), turns it into rows for the store or a filter for its
//! counts, computes the answer ([`quality`], drift) and records the
//! monitor's own telemetry ([`crate::telemetry`]) once a write is
//! committed.
//!
//! One file per operation, each an `impl Monitor` block: `outcomes.rs`
//! (`RecordOutcomes`), `labels.rs` (`RecordLabels`), `events.rs`
//! (`RecordEvents`, `QueryEvents`), `over_time.rs` (`QueryMetrics`,
//! `Anomalies`), `mistakes.rs` (`ListMistakes`), `drift.rs` (`Drift`),
//! `stored.rs` (what the dashboard and the gauges read: models, recent
//! quality, score histograms), `threshold.rs` (`QueryThreshold`),
//! `alerts/` (alert rules and their firing state, `Alerts`). Their errors
//! are `error.rs`'s.

pub(crate) mod alerts;
mod drift;
mod error;
mod events;
pub(crate) mod explanations;
mod labels;
mod mistakes;
mod outcomes;
mod over_time;
pub(crate) mod quality;
mod stored;
pub(crate) mod threshold;
pub(crate) mod validate;

use std::sync::Arc;

use crate::profiles::Profiles;
use crate::store::Store;

pub use alerts::AlertEvaluation;
pub use alerts::settings::{AlertSettings, SettingsError, Thresholds};
pub use error::{AppError, RequestError};
// The store's rows the wire adapters show as they are.
pub(crate) use crate::store::{Confusion, HistogramFilter, ModelSummary, ScoreHistogram};

pub(crate) use stored::DEFAULT_BINS;

/// The monitor's operations over one [`Store`] and the reference profiles
/// of the monitored model versions. Cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct Monitor {
    store: Store,
    profiles: Arc<Profiles>,
    alert_settings: Arc<AlertSettings>,
}

impl Monitor {
    /// The operations over `store`, estimating performance and answering
    /// `Drift` with `profiles` ([`Profiles::disabled`]: raw scores stand in
    /// for probabilities and `Drift` answers "not available").
    pub fn new(store: Store, profiles: Profiles) -> Self {
        Self {
            store,
            profiles: Arc::new(profiles),
            alert_settings: Arc::default(),
        }
    }

    /// The same operations, evaluating alerts with `settings` (default:
    /// [`AlertSettings::default`]).
    pub fn with_alert_settings(mut self, settings: AlertSettings) -> Self {
        self.alert_settings = Arc::new(settings);
        self
    }

    /// The alert thresholds of every model.
    pub(crate) fn alert_settings(&self) -> &AlertSettings {
        &self.alert_settings
    }

    /// The store the operations read and write.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The reference profiles of the monitored model versions.
    pub(crate) fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// Closes the store (waits for the connections in use).
    pub async fn close(&self) {
        self.store.close().await;
    }
}
