//! The alert thresholds, per model: `monitor.toml` (`--config`), with a
//! `[defaults]` table and one `[models.<name>]` table per model that
//! overrides some of them. Every key has a documented default
//! ([`Thresholds::default`], `docs/monitoring.md`, "Alerts"); an unknown
//! key, a value out of its range or a file larger than
//! [`MAX_CONFIG_BYTES`] is refused at start with the file, the table and
//! the key named.
//!
//! ```toml
//! [defaults]
//! volume_ratio = 0.4
//!
//! [models.budget_expense_matcher]
//! estimated_precision_floor = 0.8
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Largest `monitor.toml` read.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Most `[models.<name>]` tables.
pub(crate) const MAX_CONFIGURED_MODELS: usize = 10_000;

/// The thresholds of the alert rules for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Daily buckets of history read, the last closed one included
    /// (default 28; 14 to 90). Volume needs two weeks.
    pub history_days: u32,
    /// Fewest outcomes a bucket needs for its rates (estimates, null
    /// rates, labelled share) to be judged (default 50; 1 to 1 000 000).
    pub min_outcomes: u64,
    /// Fewest labelled predicted positives (precision) or labelled
    /// positives (recall) a bucket needs for its realized value to be
    /// judged (default 30; 1 to 1 000 000).
    pub min_labelled: u64,
    /// `k` of the EWMA band, in robust standard deviations (default 3,
    /// the `Anomalies` default; 0.5 to 20).
    pub anomaly_k: f64,
    /// Smallest drop below the EWMA that fires an anomaly (default 0.05;
    /// 0 to 1): a noiseless series would flag any change at all.
    pub anomaly_min_change: f64,
    /// Estimated precision under this fires (default 0.5; 0 to 1, 0 turns
    /// the rule off).
    pub estimated_precision_floor: f64,
    /// Estimated recall under this fires (default 0.5; 0 to 1, 0 turns the
    /// rule off).
    pub estimated_recall_floor: f64,
    /// A feature's (or the score's) PSI over this fires (default 0.2,
    /// `triad_series::PSI_DRIFT_THRESHOLD`; 0.01 to 100).
    pub drift_psi: f64,
    /// Newest outcomes of the last closed bucket the drift rule compares
    /// (default 5 000; 100 to 100 000).
    pub drift_max_rows: u32,
    /// Days after which labels should have arrived (default 7; 1 to 60,
    /// less than `history_days - 3`).
    pub label_delay_days: u32,
    /// The labelled share of the bucket `label_delay_days` old under this
    /// fraction of the median share of the buckets before it fires
    /// (default 0.5; 0 to 1).
    pub labelled_share_ratio: f64,
    /// ... or under this absolute share (default 0: off; 0 to 1).
    pub labelled_share_floor: f64,
    /// The last closed bucket's outcomes under this fraction of the median
    /// of the same weekday over the previous four weeks fires (default
    /// 0.5; 0 to 1).
    pub volume_ratio: f64,
    /// A seed field's null rate over its median of the previous 7 days
    /// plus this fires (default 0.2; 0.001 to 1).
    pub null_rate_jump: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            history_days: 28,
            min_outcomes: 50,
            min_labelled: 30,
            anomaly_k: triad_series::DEFAULT_ANOMALY_K,
            anomaly_min_change: 0.05,
            estimated_precision_floor: 0.5,
            estimated_recall_floor: 0.5,
            drift_psi: triad_series::PSI_DRIFT_THRESHOLD,
            drift_max_rows: 5_000,
            label_delay_days: 7,
            labelled_share_ratio: 0.5,
            labelled_share_floor: 0.0,
            volume_ratio: 0.5,
            null_rate_jump: 0.2,
        }
    }
}

/// Why a `monitor.toml` was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file cannot be read.
    #[error("cannot read the alert settings {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is too large.
    #[error("the alert settings {path} hold {bytes} bytes: expected at most {max}")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        bytes: u64,
        /// The most allowed.
        max: u64,
    },
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("the alert settings {path} are not valid: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, with the table and key.
        message: String,
    },
}

/// The thresholds of every model: defaults and per-model overrides.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertSettings {
    /// The thresholds of every model without a table of its own.
    pub defaults: Thresholds,
    /// Each configured model's thresholds (its table over the defaults).
    pub models: BTreeMap<String, Thresholds>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: toml::Table,
    #[serde(default)]
    models: BTreeMap<String, toml::Table>,
}

fn check_range(table: &str, key: &str, value: f64, low: f64, high: f64, errors: &mut Vec<String>) {
    if !(value.is_finite() && value >= low && value <= high) {
        errors.push(format!(
            "[{table}] {key} is {value}: expected a number from {low} to {high}"
        ));
    }
}

impl Thresholds {
    /// Every value out of its range, as `[table] key is v: expected …`.
    fn problems(&self, table: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let mut range = |key: &str, value: f64, low: f64, high: f64| {
            check_range(table, key, value, low, high, &mut errors);
        };
        range("history_days", f64::from(self.history_days), 14.0, 90.0);
        range("min_outcomes", self.min_outcomes as f64, 1.0, 1e6);
        range("min_labelled", self.min_labelled as f64, 1.0, 1e6);
        range("anomaly_k", self.anomaly_k, 0.5, 20.0);
        range("anomaly_min_change", self.anomaly_min_change, 0.0, 1.0);
        range(
            "estimated_precision_floor",
            self.estimated_precision_floor,
            0.0,
            1.0,
        );
        range(
            "estimated_recall_floor",
            self.estimated_recall_floor,
            0.0,
            1.0,
        );
        range("drift_psi", self.drift_psi, 0.01, 100.0);
        range(
            "drift_max_rows",
            f64::from(self.drift_max_rows),
            100.0,
            100_000.0,
        );
        range(
            "label_delay_days",
            f64::from(self.label_delay_days),
            1.0,
            f64::from(self.history_days.saturating_sub(4).max(1)),
        );
        range("labelled_share_ratio", self.labelled_share_ratio, 0.0, 1.0);
        range("labelled_share_floor", self.labelled_share_floor, 0.0, 1.0);
        range("volume_ratio", self.volume_ratio, 0.0, 1.0);
        range("null_rate_jump", self.null_rate_jump, 0.001, 1.0);
        errors
    }
}

impl AlertSettings {
    /// The thresholds of `model`.
    pub fn thresholds(&self, model: &str) -> &Thresholds {
        self.models.get(model).unwrap_or(&self.defaults)
    }

    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let name = path.display().to_string();
        let read = |source| SettingsError::Read {
            path: name.clone(),
            source,
        };
        let bytes = std::fs::metadata(path).map_err(read)?.len();
        if bytes > MAX_CONFIG_BYTES {
            return Err(SettingsError::TooLarge {
                path: name,
                bytes,
                max: MAX_CONFIG_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::parse(&text).map_err(|message| SettingsError::Invalid {
            path: name,
            message,
        })
    }

    /// Parses and checks the text of a `monitor.toml`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(format!(
                "{} bytes: expected at most {MAX_CONFIG_BYTES}",
                text.len()
            ));
        }
        let file: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        if file.models.len() > MAX_CONFIGURED_MODELS {
            return Err(format!(
                "{} [models.*] tables: expected at most {MAX_CONFIGURED_MODELS}",
                file.models.len()
            ));
        }
        let thresholds = |table: &str, values: toml::Table| -> Result<Thresholds, String> {
            toml::Value::Table(values)
                .try_into::<Thresholds>()
                .map_err(|e| format!("[{table}] {}", e.message()))
        };
        let defaults = thresholds("defaults", file.defaults.clone())?;
        let mut errors = defaults.problems("defaults");
        let mut models = BTreeMap::new();
        for (model, overrides) in file.models {
            let table = format!("models.{model}");
            if model.is_empty() || model.len() > crate::app::validate::MAX_ID_BYTES {
                errors.push(format!(
                    "[{}] is not a model name: expected 1 to {} bytes",
                    triad_server::quote(&table),
                    crate::app::validate::MAX_ID_BYTES
                ));
                continue;
            }
            let mut merged = file.defaults.clone();
            merged.extend(overrides);
            let t = thresholds(&table, merged)?;
            errors.extend(t.problems(&table));
            models.insert(model, t);
        }
        if errors.is_empty() {
            Ok(Self { defaults, models })
        } else {
            Err(errors.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_their_own_checks() {
        assert!(Thresholds::default().problems("defaults").is_empty());
        assert_eq!(AlertSettings::parse("").unwrap(), AlertSettings::default());
    }

    #[test]
    fn a_model_table_overrides_the_defaults_key_by_key() {
        let settings = AlertSettings::parse(
            "[defaults]\nvolume_ratio = 0.4\nmin_outcomes = 10\n\
             [models.m]\nmin_outcomes = 20\nestimated_precision_floor = 0.8\n",
        )
        .unwrap();
        assert_eq!(settings.defaults.volume_ratio, 0.4);
        let m = settings.thresholds("m");
        assert_eq!(
            (m.volume_ratio, m.min_outcomes, m.estimated_precision_floor),
            (0.4, 20, 0.8)
        );
        assert_eq!(settings.thresholds("other").min_outcomes, 10);
    }

    #[test]
    fn unknown_keys_and_out_of_range_values_are_refused_with_their_place() {
        for (text, expected) in [
            (
                "[defaults]\ncolour = 1\n",
                "[defaults] unknown field `colour`",
            ),
            ("[alerts]\n", "unknown field `alerts`"),
            (
                "[models.m]\nvolume_ratio = 1.5\n",
                "[models.m] volume_ratio is 1.5: expected a number from 0 to 1",
            ),
            (
                "[defaults]\nhistory_days = 3\n",
                "[defaults] history_days is 3: expected a number from 14 to 90",
            ),
            (
                "[defaults]\nanomaly_k = nan\n",
                "[defaults] anomaly_k is NaN",
            ),
            ("[defaults]\nmin_outcomes = -1\n", "[defaults]"),
            ("not toml", ""),
        ] {
            let error = AlertSettings::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let long = format!("[models.{}]\n", "m".repeat(1_000));
        let error = AlertSettings::parse(&long).unwrap_err();
        assert!(error.len() < 300, "{error}");
    }

    #[test]
    fn a_file_too_large_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("monitor.toml");
        std::fs::write(&path, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).unwrap();
        assert!(matches!(
            AlertSettings::load(&path),
            Err(SettingsError::TooLarge { .. })
        ));
        assert!(matches!(
            AlertSettings::load(&dir.path().join("missing.toml")),
            Err(SettingsError::Read { .. })
        ));
    }
}
