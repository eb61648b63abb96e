//! Lenient reader for the seed API's JSON request body.
//!
//! The body's outer shape must be right (an object with two arrays), but
//! inside the arrays every problem is per item: an element that is not an
//! object, or a field that is an array, becomes an [`ItemError`] and the rest
//! of the request is still read. Numbers are accepted where strings are
//! expected (`"budget_id": 309366` reads as `"309366"`).
//!
//! Every whole-request bound is a field of [`JsonLimits`] and checked before
//! the body is parsed any further: the body's size, its nesting depth (by a
//! linear pre-scan, so serde_json's own recursion limit of 128 is never the
//! one that answers), then the number of items of each list. String lengths
//! are bounded later, per field, by the featurizer (`FeaturizerConfig`) and
//! the field parsers ([`crate::parse`]); `docs/fuzzing.md` has the table.
//!
//! [`parse_request`] reads the body straight into the request's records
//! (module `stream`), never through a JSON tree: a 4 MiB body of two million
//! tiny values costs what its records cost, not a tree node per value.

use serde_json::{Map, Value};

use crate::error::{ItemError, ItemErrorCode, ItemKind, RequestError};
use crate::record::{RawBudget, RawLineItem, RawRequest};

mod stream;

/// Bounds on what one JSON request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Largest body, in bytes. The seed HTTP contract answers a larger one
    /// with 413 before reading it; [`parse_request`] refuses it too.
    pub max_body_bytes: usize,
    /// Deepest nesting of arrays and objects. The seed's shape needs 3
    /// (object, array, item object); a field holding an array or object
    /// becomes a per-item error, so a little room is left for that.
    pub max_depth: usize,
    /// Most budgets per request.
    pub max_budgets: usize,
    /// Most line items per request.
    pub max_line_items: usize,
}

/// Default of [`JsonLimits::max_body_bytes`]: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default of [`JsonLimits::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 32;

impl Default for JsonLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_budgets: 100_000,
            max_line_items: 100_000,
        }
    }
}

/// A request read from JSON, with the per-item errors found while reading.
///
/// Items that could not be read at all are kept as empty placeholders so that
/// indices stay aligned with the input; their errors are marked `dropped` and
/// [`crate::Featurizer::featurize_with_errors`] skips them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonRequest {
    /// The items read, with placeholders for the unreadable ones.
    pub request: RawRequest,
    /// The problems found while reading, in input order.
    pub errors: Vec<ItemError>,
}

/// Parses one seed-format request body, within `limits`.
pub fn parse_request(body: &str, limits: &JsonLimits) -> Result<JsonRequest, RequestError> {
    if body.len() > limits.max_body_bytes {
        return Err(RequestError::TooLarge {
            bytes: body.len(),
            limit: limits.max_body_bytes,
        });
    }
    check_depth(body.as_bytes(), limits.max_depth)?;
    let mut reader = stream::RequestReader::new(limits);
    let mut deserializer = serde_json::Deserializer::from_str(body);
    serde::de::DeserializeSeed::deserialize(&mut reader, &mut deserializer)?;
    deserializer.end()?;
    reader.finish()
}

/// Refuses a body whose arrays and objects nest deeper than `limit`, in one
/// pass over its bytes and before anything is allocated for it. Brackets
/// inside strings do not count. On a body that is not JSON the count may be
/// off, but such a body is refused by the parser anyway (whose recursion
/// limit, 128, stays as a second bound).
fn check_depth(body: &[u8], limit: usize) -> Result<(), RequestError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(RequestError::TooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Reads a request from an already-parsed JSON value, exactly as
/// [`parse_request`] reads its text (which builds no such tree: see
/// module `stream`).
pub fn from_value(value: Value, limits: &JsonLimits) -> Result<JsonRequest, RequestError> {
    let Value::Object(mut object) = value else {
        return Err(RequestError::NotAnObject(type_name(&value)));
    };
    let mut errors = Vec::new();
    let budgets = take_array(&mut object, "budgets", limits.max_budgets)?
        .into_iter()
        .enumerate()
        .map(|(index, value)| read_budget(index, value, &mut errors))
        .collect();
    let all_user_expense_lineitems = take_array(
        &mut object,
        "all_user_expense_lineitems",
        limits.max_line_items,
    )?
    .into_iter()
    .enumerate()
    .map(|(index, value)| read_line_item(index, value, &mut errors))
    .collect();
    Ok(JsonRequest {
        request: RawRequest {
            budgets,
            all_user_expense_lineitems,
        },
        errors,
    })
}

fn take_array(
    object: &mut Map<String, Value>,
    field: &'static str,
    limit: usize,
) -> Result<Vec<Value>, RequestError> {
    match object.remove(field) {
        // A misspelt key would otherwise match nothing and answer `[]`.
        None => Err(RequestError::MissingKey(field)),
        Some(Value::Array(items)) if items.len() > limit => Err(RequestError::TooManyItems {
            field,
            count: items.len(),
            limit,
        }),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(RequestError::NotAnArray {
            field,
            got: type_name(&other),
        }),
    }
}

/// Reads the fields of one item, reporting each unreadable one.
struct FieldReader<'a> {
    object: Map<String, Value>,
    kind: ItemKind,
    index: u32,
    id: Option<String>,
    errors: &'a mut Vec<ItemError>,
}

impl FieldReader<'_> {
    fn take(&mut self, field: &'static str) -> Option<String> {
        match self.object.remove(field)? {
            Value::Null => None,
            Value::String(text) => Some(text),
            Value::Number(number) => Some(number.to_string()),
            other => {
                self.errors.push(ItemError {
                    kind: self.kind,
                    index: self.index,
                    id: self.id.as_deref().map(error_id),
                    field: Some(field),
                    code: ItemErrorCode::InvalidValue,
                    message: format!(
                        "expected a string, a number or null, got {}",
                        type_name(&other)
                    ),
                    dropped: false,
                });
                None
            }
        }
    }
}

/// Most of an item's id that one of its errors repeats (the featurizer's
/// bound on ids): an item with many bad fields and a huge id must not
/// copy the id once per error, into the answer too.
const ERROR_ID_BYTES: usize = 128;

/// The id an error of an item repeats: cut to [`ERROR_ID_BYTES`], marked.
fn error_id(id: &str) -> String {
    crate::clip(id, ERROR_ID_BYTES).into_owned()
}

fn malformed(kind: ItemKind, index: usize, value: &Value) -> ItemError {
    ItemError {
        kind,
        index: index as u32,
        id: None,
        field: None,
        code: ItemErrorCode::MalformedItem,
        message: format!("expected a JSON object, got {}", type_name(value)),
        dropped: true,
    }
}

fn read_budget(index: usize, value: Value, errors: &mut Vec<ItemError>) -> RawBudget {
    let Value::Object(object) = value else {
        errors.push(malformed(ItemKind::Budget, index, &value));
        return RawBudget::default();
    };
    let mut reader = FieldReader {
        object,
        kind: ItemKind::Budget,
        index: index as u32,
        id: None,
        errors,
    };
    let budget_id = reader.take("budget_id");
    reader.id.clone_from(&budget_id);
    RawBudget {
        budget_id,
        budget_price_budget: reader.take("budget_price_budget"),
        travel_vendor_receipts: reader.take("travel_vendor_receipts"),
        purchase_vendor_receipts: reader.take("purchase_vendor_receipts"),
        budget_type_budget: reader.take("budget_type_budget"),
        generated_at_budget: reader.take("generated_at_budget"),
        start_datetime_trips: reader.take("start_datetime_trips"),
        end_datetime_trips: reader.take("end_datetime_trips"),
        actual_cost_budget: reader.take("actual_cost_budget"),
    }
}

fn read_line_item(index: usize, value: Value, errors: &mut Vec<ItemError>) -> RawLineItem {
    let Value::Object(object) = value else {
        errors.push(malformed(ItemKind::LineItem, index, &value));
        return RawLineItem::default();
    };
    let mut reader = FieldReader {
        object,
        kind: ItemKind::LineItem,
        index: index as u32,
        id: None,
        errors,
    };
    let itemization_id = reader.take("itemization_id");
    reader.id.clone_from(&itemization_id);
    RawLineItem {
        itemization_id,
        expensed_amount_itemization: reader.take("expensed_amount_itemization"),
        expense_type_name_itemization: reader.take("expense_type_name_itemization"),
        transaction_date_itemization: reader.take("transaction_date_itemization"),
        expense_category_itemization: reader.take("expense_category_itemization"),
        vendor_name_expense: reader.take("vendor_name_expense"),
        expense_type_name_expense: reader.take("expense_type_name_expense"),
        expense_category_expense: reader.take("expense_category_expense"),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_strings_and_nulls_as_none() {
        let parsed = parse_request(
            r#"{"budgets":[{"budget_id":309366,"budget_price_budget":140.5,"travel_vendor_receipts":null}],
                "all_user_expense_lineitems":[]}"#,
            &JsonLimits::default(),
        )
        .unwrap();
        let budget = &parsed.request.budgets[0];
        assert_eq!(budget.budget_id.as_deref(), Some("309366"));
        assert_eq!(budget.budget_price_budget.as_deref(), Some("140.5"));
        assert_eq!(budget.travel_vendor_receipts, None);
        assert!(parsed.errors.is_empty());
    }

    #[test]
    fn a_non_object_item_is_dropped_alone() {
        let parsed = parse_request(
            r#"{"budgets":[5,{"budget_id":"1"}],"all_user_expense_lineitems":[{"itemization_id":"2","vendor_name_expense":["x"]}]}"#,
            &JsonLimits::default(),
        )
        .unwrap();
        assert_eq!(parsed.request.budgets.len(), 2);
        assert_eq!(parsed.request.budgets[1].budget_id.as_deref(), Some("1"));
        assert_eq!(parsed.errors.len(), 2);
        assert_eq!(parsed.errors[0].code, ItemErrorCode::MalformedItem);
        assert_eq!(parsed.errors[0].index, 0);
        assert!(parsed.errors[0].dropped);
        assert_eq!(parsed.errors[1].code, ItemErrorCode::InvalidValue);
        assert_eq!(parsed.errors[1].field, Some("vendor_name_expense"));
        assert_eq!(parsed.errors[1].id.as_deref(), Some("2"));
        assert!(!parsed.errors[1].dropped);
    }

    #[test]
    fn wrong_outer_shape_is_a_request_error() {
        let limits = JsonLimits::default();
        assert!(matches!(
            parse_request("[1]", &limits),
            Err(RequestError::NotAnObject("an array"))
        ));
        assert!(matches!(
            parse_request(r#"{"budgets":{}}"#, &limits),
            Err(RequestError::NotAnArray {
                field: "budgets",
                ..
            })
        ));
        assert!(matches!(
            parse_request("{", &limits),
            Err(RequestError::Json(_))
        ));
        let small = JsonLimits {
            max_budgets: 1,
            max_line_items: 1,
            ..JsonLimits::default()
        };
        let err = parse_request(r#"{"budgets":[{},{}]}"#, &small).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`budgets` has 2 items, more than the limit of 1"
        );
    }
}
