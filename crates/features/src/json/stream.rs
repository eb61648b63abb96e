//! The seed request read straight from its JSON text into records, with
//! serde visitors: no JSON tree is built, so what a body costs is what its
//! records cost (a value no record keeps is skipped as it is read).
//!
//! It reads what [`super::from_value`] reads from a tree, errors and their
//! order included (a property test checks it): the outer object's two
//! lists (the last of a repeated key wins; any other key is skipped),
//! budgets and line items in order, an item that is not an object kept as
//! an empty placeholder with its error, a field that is an array, an
//! object or a boolean reported per item (in the record's field order,
//! with the item's id), numbers read as their JSON text. Whole-request
//! problems (not an object, a missing key, a list that is not an array or
//! is too long) are only decided once the body has been read, in the order
//! the tree reader checks them, so a syntax error anywhere still wins;
//! past a list's limit its elements are counted, not kept.
//!
//! One difference: a value it skips (an unknown key, elements past a
//! list's limit, the contents of a wrong-typed field) is checked for its
//! syntax only, not for lone UTF-16 surrogates or numbers beyond `f64`,
//! which the tree reader refused; this one ignores them with the value.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::JsonLimits;
use crate::error::{ItemError, ItemErrorCode, ItemKind, RequestError};
use crate::record::{RawBudget, RawLineItem, RawRequest};

/// A record the body's lists hold: its kind and its fields, in order.
trait Record: Default {
    const KIND: ItemKind;
    /// The JSON key of each field, in the record's field order; the first
    /// is the id.
    const FIELDS: &'static [&'static str];
    /// The record of `values`, one per field of [`Self::FIELDS`].
    fn from_fields(values: Vec<Option<String>>) -> Self;
}

impl Record for RawBudget {
    const KIND: ItemKind = ItemKind::Budget;
    const FIELDS: &'static [&'static str] = &crate::record::BUDGET_FIELDS;

    fn from_fields(values: Vec<Option<String>>) -> Self {
        let mut values = values.into_iter();
        let mut next = || values.next().flatten();
        Self {
            budget_id: next(),
            budget_price_budget: next(),
            travel_vendor_receipts: next(),
            purchase_vendor_receipts: next(),
            budget_type_budget: next(),
            generated_at_budget: next(),
            start_datetime_trips: next(),
            end_datetime_trips: next(),
            actual_cost_budget: next(),
        }
    }
}

impl Record for RawLineItem {
    const KIND: ItemKind = ItemKind::LineItem;
    const FIELDS: &'static [&'static str] = &crate::record::LINE_ITEM_FIELDS;

    fn from_fields(values: Vec<Option<String>>) -> Self {
        let mut values = values.into_iter();
        let mut next = || values.next().flatten();
        Self {
            itemization_id: next(),
            expensed_amount_itemization: next(),
            expense_type_name_itemization: next(),
            transaction_date_itemization: next(),
            expense_category_itemization: next(),
            vendor_name_expense: next(),
            expense_type_name_expense: next(),
            expense_category_expense: next(),
        }
    }
}

/// What one of the body's lists turned out to be.
enum List<T> {
    Items(Vec<T>, Vec<ItemError>),
    /// An array longer than the limit: its length.
    TooMany(usize),
    /// Not an array: what it was.
    NotAnArray(&'static str),
}

/// Reads the whole body; [`RequestReader::finish`] then decides.
pub(super) struct RequestReader<'l> {
    limits: &'l JsonLimits,
    /// What the body was, when not an object.
    not_an_object: Option<&'static str>,
    budgets: Option<List<RawBudget>>,
    items: Option<List<RawLineItem>>,
}

impl<'l> RequestReader<'l> {
    pub(super) fn new(limits: &'l JsonLimits) -> Self {
        Self {
            limits,
            not_an_object: None,
            budgets: None,
            items: None,
        }
    }

    /// The request, or the first whole-request problem in the order the
    /// tree reader checks them.
    pub(super) fn finish(self) -> Result<super::JsonRequest, RequestError> {
        if let Some(got) = self.not_an_object {
            return Err(RequestError::NotAnObject(got));
        }
        let (budgets, mut errors) = list(self.budgets, "budgets", self.limits.max_budgets)?;
        let (all_user_expense_lineitems, item_errors) = list(
            self.items,
            "all_user_expense_lineitems",
            self.limits.max_line_items,
        )?;
        errors.extend(item_errors);
        Ok(super::JsonRequest {
            request: RawRequest {
                budgets,
                all_user_expense_lineitems,
            },
            errors,
        })
    }
}

fn list<T>(
    list: Option<List<T>>,
    field: &'static str,
    limit: usize,
) -> Result<(Vec<T>, Vec<ItemError>), RequestError> {
    match list {
        // A misspelt key would otherwise match nothing and answer `[]`.
        None => Err(RequestError::MissingKey(field)),
        Some(List::TooMany(count)) => Err(RequestError::TooManyItems {
            field,
            count,
            limit,
        }),
        Some(List::NotAnArray(got)) => Err(RequestError::NotAnArray { field, got }),
        Some(List::Items(items, errors)) => Ok((items, errors)),
    }
}

impl<'de> DeserializeSeed<'de> for &mut RequestReader<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut RequestReader<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<TopKey>()? {
            // A repeated key's earlier list is dropped before the next is
            // read: never two lists in memory at once.
            match key {
                TopKey::Budgets => {
                    self.budgets = None;
                    self.budgets =
                        Some(map.next_value_seed(ListSeed::new(self.limits.max_budgets))?);
                }
                TopKey::Items => {
                    self.items = None;
                    self.items =
                        Some(map.next_value_seed(ListSeed::new(self.limits.max_line_items))?);
                }
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.not_an_object = Some(skip_seq(seq)?);
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.not_an_object = Some("a boolean");
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.not_an_object = Some("a number");
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.not_an_object = Some("a number");
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.not_an_object = Some("a number");
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.not_an_object = Some("a string");
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.not_an_object = Some("null");
        Ok(())
    }
}

/// A key of the outer object.
enum TopKey {
    Budgets,
    Items,
    Other,
}

impl<'de> de::Deserialize<'de> for TopKey {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = TopKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_str<E>(self, key: &str) -> Result<TopKey, E> {
                Ok(match key {
                    "budgets" => TopKey::Budgets,
                    "all_user_expense_lineitems" => TopKey::Items,
                    _ => TopKey::Other,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Skips the rest of an array; what it was, for an error.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<&'static str, A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok("an array")
}

/// Skips the rest of an object; what it was, for an error.
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<&'static str, A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok("an object")
}

/// Reads one list: its records up to `limit`, then only counts.
struct ListSeed<T> {
    limit: usize,
    record: std::marker::PhantomData<T>,
}

impl<T> ListSeed<T> {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            record: std::marker::PhantomData,
        }
    }
}

impl<'de, T: Record> DeserializeSeed<'de> for ListSeed<T> {
    type Value = List<T>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<List<T>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// What a list that is not an array was, for [`List::NotAnArray`].
macro_rules! not_an_array {
    ($($method:ident($($arg:ty)?) => $got:literal),* $(,)?) => {
        $(
            fn $method<E>(self, $(_: $arg)?) -> Result<List<T>, E> {
                Ok(List::NotAnArray($got))
            }
        )*
    };
}

impl<'de, T: Record> Visitor<'de> for ListSeed<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
        let (mut records, mut errors) = (Vec::new(), Vec::new());
        let mut count = 0;
        loop {
            if count < self.limit {
                let seed = RecordSeed::<T> {
                    index: count,
                    errors: &mut errors,
                    record: std::marker::PhantomData,
                };
                match seq.next_element_seed(seed)? {
                    Some(record) => records.push(record),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            count += 1;
        }
        if count > self.limit {
            return Ok(List::TooMany(count));
        }
        Ok(List::Items(records, errors))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List<T>, A::Error> {
        Ok(List::NotAnArray(skip_map(map)?))
    }

    not_an_array! {
        visit_bool(bool) => "a boolean",
        visit_i64(i64) => "a number",
        visit_u64(u64) => "a number",
        visit_f64(f64) => "a number",
        visit_str(&str) => "a string",
        visit_unit() => "null",
    }
}

/// Reads one record at `index` of its list, its errors into `errors`.
struct RecordSeed<'e, T> {
    index: usize,
    errors: &'e mut Vec<ItemError>,
    record: std::marker::PhantomData<T>,
}

impl<'de, T: Record> DeserializeSeed<'de> for RecordSeed<'_, T> {
    type Value = T;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<T: Record> RecordSeed<'_, T> {
    /// An element that is not an object: an empty placeholder, so indices
    /// stay aligned, and its error.
    fn malformed(self, got: &'static str) -> T {
        self.errors.push(ItemError {
            kind: T::KIND,
            index: self.index as u32,
            id: None,
            field: None,
            code: ItemErrorCode::MalformedItem,
            message: format!("expected a JSON object, got {got}"),
            dropped: true,
        });
        T::default()
    }
}

/// What a record that is not an object was.
macro_rules! malformed {
    ($($method:ident($($arg:ty)?) => $got:literal),* $(,)?) => {
        $(
            fn $method<E>(self, $(_: $arg)?) -> Result<T, E> {
                Ok(self.malformed($got))
            }
        )*
    };
}

impl<'de, T: Record> Visitor<'de> for RecordSeed<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        // The last value of a field repeated in the object wins.
        let mut fields: Vec<Field> = T::FIELDS.iter().map(|_| Field::Absent).collect();
        while let Some(key) = map.next_key::<FieldKey<T>>()? {
            match key.index {
                Some(at) => fields[at] = map.next_value::<Field>()?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // The tree reader's order: the id first (its own error carries no
        // id), then every other field with the item's id.
        let mut id: Option<String> = None;
        let mut values = Vec::with_capacity(fields.len());
        for (at, field) in fields.into_iter().enumerate() {
            let value = match field {
                Field::Absent => None,
                Field::Value(value) => value,
                Field::Wrong(got) => {
                    self.errors.push(ItemError {
                        kind: T::KIND,
                        index: self.index as u32,
                        id: id.as_deref().map(super::error_id),
                        field: Some(T::FIELDS[at]),
                        code: ItemErrorCode::InvalidValue,
                        message: format!("expected a string, a number or null, got {got}"),
                        dropped: false,
                    });
                    None
                }
            };
            if at == 0 {
                id.clone_from(&value);
            }
            values.push(value);
        }
        Ok(T::from_fields(values))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        let got = skip_seq(seq)?;
        Ok(self.malformed(got))
    }

    malformed! {
        visit_bool(bool) => "a boolean",
        visit_i64(i64) => "a number",
        visit_u64(u64) => "a number",
        visit_f64(f64) => "a number",
        visit_str(&str) => "a string",
        visit_unit() => "null",
    }
}

/// A key of a record: the index of its field, or `None` for a key the
/// record has no field for.
struct FieldKey<T> {
    index: Option<usize>,
    record: std::marker::PhantomData<T>,
}

impl<'de, T: Record> de::Deserialize<'de> for FieldKey<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<T>(std::marker::PhantomData<T>);
        impl<T: Record> Visitor<'_> for KeyVisitor<T> {
            type Value = FieldKey<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_str<E>(self, key: &str) -> Result<FieldKey<T>, E> {
                Ok(FieldKey {
                    index: T::FIELDS.iter().position(|field| *field == key),
                    record: std::marker::PhantomData,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor(std::marker::PhantomData))
    }
}

/// One field's value as read.
enum Field {
    Absent,
    /// A string, a number (its JSON text) or null (`None`).
    Value(Option<String>),
    /// Anything else: what it was.
    Wrong(&'static str),
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number or null")
    }

    fn visit_str<E>(self, text: &str) -> Result<Field, E> {
        Ok(Field::Value(Some(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Field, E> {
        Ok(Field::Value(Some(text)))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Field, E> {
        Ok(Field::Value(Some(
            serde_json::Number::from(number).to_string(),
        )))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Field, E> {
        Ok(Field::Value(Some(
            serde_json::Number::from(number).to_string(),
        )))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Field, E> {
        // JSON has no NaN or infinity, so the number always exists.
        Ok(Field::Value(
            serde_json::Number::from_f64(number).map(|n| n.to_string()),
        ))
    }

    fn visit_unit<E>(self) -> Result<Field, E> {
        Ok(Field::Value(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Field, E> {
        Ok(Field::Wrong("a boolean"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field, A::Error> {
        Ok(Field::Wrong(skip_seq(seq)?))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
        Ok(Field::Wrong(skip_map(map)?))
    }
}
