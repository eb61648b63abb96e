//! Payload logging: one debug line with each request's input and one with
//! its output, on the front doors that take requests (the seed HTTP
//! contract and `triad.v1.Scorer`; not the Open Inference Protocol's
//! feature rows), under the `triad_score::payload` target, so
//! `RUST_LOG=info,triad_score::payload=debug` turns it on.
//!
//! Inputs hold personal expense data, so fields are redacted by name
//! before anything is written ([`PayloadLogConfig::redact`]): a redacted
//! field's value becomes `"[redacted]"` wherever it appears, and so does
//! the message of an item error about that field (it may quote the value).
//! The default redacts the free-text fields (vendors, descriptions).
//!
//! Off the hot path when not wanted: nothing is serialized unless payload
//! logging is enabled *and* the target's debug level is on
//! ([`PayloadLog::active`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The tracing target of payload lines.
pub const TARGET: &str = "triad_score::payload";

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Field patterns redacted by default: the seed contract's free-text
/// fields (`travel_vendor_receipts`, `purchase_vendor_receipts`,
/// `vendor_name_expense`) and any description.
pub const DEFAULT_REDACT: &[&str] = &["*vendor*", "*description*"];

/// Payload logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PayloadLogConfig {
    /// Log inputs and outputs (when the target's debug level is on).
    /// Default true.
    pub enabled: bool,
    /// Field names whose values are never logged: an exact name, or a
    /// pattern with `*` at either end (`*vendor*` matches every field
    /// whose name contains `vendor`). Default [`DEFAULT_REDACT`].
    pub redact: Vec<String>,
}

impl Default for PayloadLogConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            redact: DEFAULT_REDACT.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

/// A compiled [`PayloadLogConfig`], cheap to clone.
#[derive(Debug, Clone)]
pub struct PayloadLog {
    enabled: bool,
    redact: Arc<[Pattern]>,
}

impl Default for PayloadLog {
    fn default() -> Self {
        Self::new(&PayloadLogConfig::default())
    }
}

impl PayloadLog {
    /// Logging as `config` says, its redaction patterns parsed once.
    pub fn new(config: &PayloadLogConfig) -> Self {
        Self {
            enabled: config.enabled,
            redact: config.redact.iter().map(|p| Pattern::parse(p)).collect(),
        }
    }

    /// Payload logging switched off.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            redact: Arc::from([]),
        }
    }

    /// True when a payload line would be written.
    pub fn active(&self) -> bool {
        self.enabled && tracing::enabled!(target: TARGET, tracing::Level::DEBUG)
    }

    /// Whether a field called `name` is redacted.
    pub fn is_redacted(&self, name: &str) -> bool {
        self.redact.iter().any(|pattern| pattern.matches(name))
    }

    /// `value` with every redacted field's value replaced.
    pub fn redact(&self, mut value: Value) -> Value {
        self.redact_in_place(&mut value);
        value
    }

    fn redact_in_place(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                // An item error about a redacted field may quote its value.
                let about_redacted = map
                    .get("field")
                    .and_then(Value::as_str)
                    .is_some_and(|field| self.is_redacted(field));
                for (key, child) in map.iter_mut() {
                    if self.is_redacted(key) || (about_redacted && key == "message") {
                        if !child.is_null() {
                            *child = Value::String(REDACTED.to_owned());
                        }
                    } else {
                        self.redact_in_place(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_in_place(item)),
            _ => {}
        }
    }

    /// Logs a request's input (`kind` "input") or output ("output"),
    /// redacted; `payload` is only called when the line is written.
    pub fn log(
        &self,
        front: &'static str,
        kind: &'static str,
        request_id: &str,
        payload: impl FnOnce() -> Option<Value>,
    ) {
        if !self.active() {
            return;
        }
        let Some(value) = payload() else {
            return;
        };
        let text = self.redact(value).to_string();
        tracing::debug!(target: TARGET, front, kind, request_id, payload = %text, "payload");
    }
}

/// One redaction pattern.
#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl Pattern {
    fn parse(text: &str) -> Self {
        let text = text.trim();
        match (text.strip_prefix('*'), text.strip_suffix('*')) {
            (Some(rest), Some(_)) => Pattern::Contains(rest.trim_end_matches('*').to_owned()),
            (Some(rest), None) => Pattern::Suffix(rest.to_owned()),
            (None, Some(rest)) => Pattern::Prefix(rest.to_owned()),
            _ => Pattern::Exact(text.to_owned()),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(exact) => name == exact,
            Pattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
            Pattern::Suffix(suffix) => name.ends_with(suffix.as_str()),
            Pattern::Contains(part) => name.contains(part.as_str()),
        }
    }
}

/// A `triad.v1.ScoreResponse` as logged: keys, each model's scores and
/// decisions, and the item errors.
pub fn score_response_json(response: &triad_proto::v1::ScoreResponse) -> Value {
    let keys: Vec<Value> = response
        .keys
        .iter()
        .map(|key| serde_json::json!({"budget_id": key.budget_id, "itemization_id": key.itemization_id}))
        .collect();
    let results: Vec<Value> = response
        .results
        .iter()
        .map(|result| {
            serde_json::json!({
                "model": result.model,
                "version": result.version,
                "threshold": result.threshold,
                "scores": result.scores,
                "matched": result.matched,
            })
        })
        .collect();
    let errors: Vec<Value> = response
        .errors
        .iter()
        .map(|error| {
            serde_json::json!({
                "item_kind": error.item_kind,
                "index": error.index,
                "field": error.field,
                "message": error.message,
            })
        })
        .collect();
    serde_json::json!({"keys": keys, "results": results, "errors": errors})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_fields_and_messages_about_them_are_replaced_everywhere() {
        let log = PayloadLog::new(&PayloadLogConfig {
            enabled: true,
            redact: vec!["*vendor*".into(), "description".into(), "card_*".into()],
        });
        let value = serde_json::json!({
            "budgets": [{"budget_id": "1", "travel_vendor_receipts": "Acme Air", "description": "trip"}],
            "items": [{"vendor_name_expense": "Bob's Taxi", "card_last4": "1234", "amount": "3"}],
            "errors": [{"field": "vendor_name_expense", "message": "too long: Bob's Taxi…"},
                       {"field": "amount", "message": "not a number: x"}],
            "missing": {"purchase_vendor_receipts": null}
        });
        let redacted = log.redact(value);
        let text = redacted.to_string();
        for secret in ["Acme Air", "Bob's Taxi", "trip", "1234"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(redacted["budgets"][0]["budget_id"], "1");
        assert_eq!(redacted["budgets"][0]["travel_vendor_receipts"], REDACTED);
        assert_eq!(redacted["items"][0]["amount"], "3");
        assert_eq!(redacted["errors"][1]["message"], "not a number: x");
        assert_eq!(redacted["missing"]["purchase_vendor_receipts"], Value::Null);
    }

    #[test]
    fn the_default_redacts_every_free_text_field_of_the_seed_contract() {
        let log = PayloadLog::default();
        for field in [
            "travel_vendor_receipts",
            "purchase_vendor_receipts",
            "vendor_name_expense",
        ] {
            assert!(log.is_redacted(field), "{field}");
        }
        assert!(!log.is_redacted("budget_id"));
        assert!(!log.is_redacted("expensed_amount_itemization"));
    }

    #[test]
    fn a_disabled_log_is_never_active() {
        assert!(!PayloadLog::disabled().active());
    }
}
