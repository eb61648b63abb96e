//! The featurizer: typed, normalized entities in, one dense row per
//! (budget, line item) pair out.
//!
//! Work is arranged so that nothing is done per pair that could be done per
//! entity: every field is parsed and every text normalized once per entity;
//! every vendor similarity is computed once per distinct pair of normalized
//! vendor strings (a user's line items come from a few dozen vendors); the
//! row loop only looks values up and does arithmetic, writing straight into
//! the output matrix.

use std::collections::{HashMap, HashSet};

use crate::error::{ItemError, ItemErrorCode, ItemKind};
use crate::matrix::FeatureMatrix;
use crate::parse::{self, FieldError};
use crate::record::{RawBudget, RawLineItem, RawRequest};
use crate::schema::{FIRST_FLAG, FeatureSchema, N_BUDGET_FLAGS, N_FEATURES, N_ITEM_FLAGS};
use crate::text::{NormalizedText, TextNormalizer, TravelCategory, jaccard, travel_category};

/// Days allowed before the trip starts and after it ends for a transaction
/// to count as inside the trip window. Part of the schema's definition.
pub const TRIP_WINDOW_TOLERANCE_DAYS: f64 = 2.0;

const SECONDS_PER_DAY: f64 = 86_400.0;

/// Bounds that keep one item from costing more than its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeaturizerConfig {
    /// Longest text field, in bytes, that is normalized; a longer one is
    /// treated as missing with a `VALUE_TOO_LONG` item error.
    pub max_text_bytes: usize,
    /// Longest id, in bytes; an item with a longer id forms no row.
    pub max_id_bytes: usize,
}

impl Default for FeaturizerConfig {
    fn default() -> Self {
        Self {
            max_text_bytes: 512,
            max_id_bytes: 128,
        }
    }
}

/// Builds feature matrices. Cheap to share: build one per process.
#[derive(Debug, Default)]
pub struct Featurizer {
    normalizer: TextNormalizer,
    config: FeaturizerConfig,
}

/// A budget with every field parsed; `NaN` marks a missing number.
struct Budget {
    id: String,
    price: f64,
    actual: f64,
    start: f64,
    end: f64,
    generated: f64,
    travel_vendor: Option<NormalizedText>,
    purchase_vendor: Option<NormalizedText>,
    budget_type: Option<NormalizedText>,
    flags: [f32; N_BUDGET_FLAGS],
}

/// A line item with every field parsed; `NaN` marks a missing number.
struct LineItem {
    id: String,
    amount: f64,
    date: f64,
    vendor: Option<NormalizedText>,
    /// Type name and category of the itemization, then of the expense.
    types: [Option<NormalizedText>; 4],
    flags: [f32; N_ITEM_FLAGS],
}

/// Collects the per-item errors of one entity while its fields are parsed.
struct FieldSink<'a> {
    kind: ItemKind,
    index: u32,
    id: &'a str,
    errors: &'a mut Vec<ItemError>,
}

impl FieldSink<'_> {
    fn report(&mut self, field: &'static str, code: ItemErrorCode, message: String) {
        self.errors.push(ItemError {
            kind: self.kind,
            index: self.index,
            id: Some(self.id.to_owned()),
            field: Some(field),
            code,
            message,
            dropped: false,
        });
    }

    fn number(
        &mut self,
        field: &'static str,
        value: Option<&str>,
        parse: fn(&str) -> Result<f64, FieldError>,
        flag: &mut f32,
    ) -> f64 {
        match value.filter(|text| !text.trim().is_empty()) {
            None => {
                *flag = 1.0;
                f64::NAN
            }
            Some(text) => parse(text).unwrap_or_else(|error| {
                self.report(field, ItemErrorCode::InvalidValue, error.to_string());
                *flag = 1.0;
                f64::NAN
            }),
        }
    }

    fn datetime(&mut self, field: &'static str, value: Option<&str>, flag: &mut f32) -> f64 {
        self.number(
            field,
            value,
            |text| parse::parse_datetime(text).map(|seconds| seconds as f64),
            flag,
        )
    }

    fn text(
        &mut self,
        normalizer: &TextNormalizer,
        max_bytes: usize,
        field: &'static str,
        value: Option<&str>,
        flag: &mut f32,
    ) -> Option<NormalizedText> {
        let normalized = match value {
            Some(text) if text.len() > max_bytes => {
                self.report(
                    field,
                    ItemErrorCode::ValueTooLong,
                    format!(
                        "expected at most {max_bytes} bytes, got {}; treated as missing",
                        text.len()
                    ),
                );
                None
            }
            Some(text) => normalizer.normalize(text),
            None => None,
        };
        if normalized.is_none() {
            *flag = 1.0;
        }
        normalized
    }
}

impl Featurizer {
    /// A featurizer with the given bounds.
    pub fn new(config: FeaturizerConfig) -> Self {
        Self {
            normalizer: TextNormalizer::new(),
            config,
        }
    }

    /// The schema of the matrices this featurizer builds.
    pub fn schema(&self) -> &'static FeatureSchema {
        FeatureSchema::current()
    }

    /// Featurizes every (budget, line item) pair of `request`.
    pub fn featurize(&self, request: &RawRequest) -> FeatureMatrix {
        self.featurize_with_errors(request, Vec::new())
    }

    /// Like [`Featurizer::featurize`], continuing from errors an earlier
    /// stage (such as the JSON reader) found: items those errors mark as
    /// dropped are skipped, and the errors are returned first.
    pub fn featurize_with_errors(
        &self,
        request: &RawRequest,
        mut errors: Vec<ItemError>,
    ) -> FeatureMatrix {
        let dropped: HashSet<(ItemKind, u32)> = errors
            .iter()
            .filter(|error| error.dropped)
            .map(|error| (error.kind, error.index))
            .collect();
        let budgets = self.prepare_budgets(&request.budgets, &dropped, &mut errors);
        let items = self.prepare_items(&request.all_user_expense_lineitems, &dropped, &mut errors);
        let values = build_rows(&budgets, &items);
        FeatureMatrix {
            schema: self.schema(),
            n_rows: budgets.len() * items.len(),
            values,
            budget_ids: budgets.into_iter().map(|budget| budget.id).collect(),
            item_ids: items.into_iter().map(|item| item.id).collect(),
            errors,
        }
    }

    /// Checks an id; returns it when the item may form rows.
    fn accept_id<'r>(
        &self,
        kind: ItemKind,
        index: u32,
        id: Option<&'r str>,
        seen: &mut HashSet<&'r str>,
        errors: &mut Vec<ItemError>,
    ) -> Option<&'r str> {
        let field = match kind {
            ItemKind::Budget => "budget_id",
            ItemKind::LineItem => "itemization_id",
        };
        let mut fail = |code, message: String, id: Option<&str>| {
            errors.push(ItemError {
                kind,
                index,
                id: id.map(str::to_owned),
                field: Some(field),
                code,
                message,
                dropped: true,
            });
            None
        };
        match id {
            None => fail(
                ItemErrorCode::MissingId,
                format!("expected a non-empty `{field}`, got null; the item forms no row"),
                None,
            ),
            Some(id) if id.trim().is_empty() => fail(
                ItemErrorCode::MissingId,
                format!(
                    "expected a non-empty `{field}`, got an empty string; the item forms no row"
                ),
                None,
            ),
            Some(id) if id.len() > self.config.max_id_bytes => fail(
                ItemErrorCode::ValueTooLong,
                format!(
                    "expected `{field}` of at most {} bytes, got {}; the item forms no row",
                    self.config.max_id_bytes,
                    id.len()
                ),
                None,
            ),
            Some(id) if !seen.insert(id) => fail(
                ItemErrorCode::DuplicateId,
                format!("`{field}` {id:?} appears earlier in the request; this item forms no row"),
                Some(id),
            ),
            Some(id) => Some(id),
        }
    }

    fn prepare_budgets(
        &self,
        raw: &[RawBudget],
        dropped: &HashSet<(ItemKind, u32)>,
        errors: &mut Vec<ItemError>,
    ) -> Vec<Budget> {
        let mut seen = HashSet::with_capacity(raw.len());
        let mut budgets = Vec::with_capacity(raw.len());
        for (index, budget) in raw.iter().enumerate() {
            let index = index as u32;
            if dropped.contains(&(ItemKind::Budget, index)) {
                continue;
            }
            let Some(id) = self.accept_id(
                ItemKind::Budget,
                index,
                budget.budget_id.as_deref(),
                &mut seen,
                errors,
            ) else {
                continue;
            };
            let mut sink = FieldSink {
                kind: ItemKind::Budget,
                index,
                id,
                errors,
            };
            let mut flags = [0.0; N_BUDGET_FLAGS];
            let [
                f_price,
                f_travel,
                f_purchase,
                f_type,
                f_generated,
                f_start,
                f_end,
                f_actual,
            ] = &mut flags;
            let max = self.config.max_text_bytes;
            let norm = &self.normalizer;
            let price = sink.number(
                "budget_price_budget",
                budget.budget_price_budget.as_deref(),
                parse::parse_budget_amount,
                f_price,
            );
            let travel_vendor = sink.text(
                norm,
                max,
                "travel_vendor_receipts",
                budget.travel_vendor_receipts.as_deref(),
                f_travel,
            );
            let purchase_vendor = sink.text(
                norm,
                max,
                "purchase_vendor_receipts",
                budget.purchase_vendor_receipts.as_deref(),
                f_purchase,
            );
            let budget_type = sink.text(
                norm,
                max,
                "budget_type_budget",
                budget.budget_type_budget.as_deref(),
                f_type,
            );
            let generated = sink.datetime(
                "generated_at_budget",
                budget.generated_at_budget.as_deref(),
                f_generated,
            );
            let start = sink.datetime(
                "start_datetime_trips",
                budget.start_datetime_trips.as_deref(),
                f_start,
            );
            let mut end = sink.datetime(
                "end_datetime_trips",
                budget.end_datetime_trips.as_deref(),
                f_end,
            );
            if end < start {
                sink.report(
                    "end_datetime_trips",
                    ItemErrorCode::InvalidValue,
                    "expected the trip to end no earlier than it starts; end treated as missing"
                        .to_owned(),
                );
                end = f64::NAN;
                *f_end = 1.0;
            }
            let actual = sink.number(
                "actual_cost_budget",
                budget.actual_cost_budget.as_deref(),
                parse::parse_budget_amount,
                f_actual,
            );
            budgets.push(Budget {
                id: id.to_owned(),
                price,
                actual,
                start,
                end,
                generated,
                travel_vendor,
                purchase_vendor,
                budget_type,
                flags,
            });
        }
        budgets
    }

    fn prepare_items(
        &self,
        raw: &[RawLineItem],
        dropped: &HashSet<(ItemKind, u32)>,
        errors: &mut Vec<ItemError>,
    ) -> Vec<LineItem> {
        let mut seen = HashSet::with_capacity(raw.len());
        let mut items = Vec::with_capacity(raw.len());
        for (index, item) in raw.iter().enumerate() {
            let index = index as u32;
            if dropped.contains(&(ItemKind::LineItem, index)) {
                continue;
            }
            let Some(id) = self.accept_id(
                ItemKind::LineItem,
                index,
                item.itemization_id.as_deref(),
                &mut seen,
                errors,
            ) else {
                continue;
            };
            let mut sink = FieldSink {
                kind: ItemKind::LineItem,
                index,
                id,
                errors,
            };
            let mut flags = [0.0; N_ITEM_FLAGS];
            let [
                f_amount,
                f_type_i,
                f_date,
                f_cat_i,
                f_vendor,
                f_type_e,
                f_cat_e,
            ] = &mut flags;
            let max = self.config.max_text_bytes;
            let norm = &self.normalizer;
            let amount = sink.number(
                "expensed_amount_itemization",
                item.expensed_amount_itemization.as_deref(),
                parse::parse_amount,
                f_amount,
            );
            let type_item = sink.text(
                norm,
                max,
                "expense_type_name_itemization",
                item.expense_type_name_itemization.as_deref(),
                f_type_i,
            );
            let date = sink.datetime(
                "transaction_date_itemization",
                item.transaction_date_itemization.as_deref(),
                f_date,
            );
            let category_item = sink.text(
                norm,
                max,
                "expense_category_itemization",
                item.expense_category_itemization.as_deref(),
                f_cat_i,
            );
            let vendor = sink.text(
                norm,
                max,
                "vendor_name_expense",
                item.vendor_name_expense.as_deref(),
                f_vendor,
            );
            let type_expense = sink.text(
                norm,
                max,
                "expense_type_name_expense",
                item.expense_type_name_expense.as_deref(),
                f_type_e,
            );
            let category_expense = sink.text(
                norm,
                max,
                "expense_category_expense",
                item.expense_category_expense.as_deref(),
                f_cat_e,
            );
            items.push(LineItem {
                id: id.to_owned(),
                amount,
                date,
                vendor,
                types: [type_item, category_item, type_expense, category_expense],
                flags,
            });
        }
        items
    }
}

/// Marks an absent interned id.
const NONE: u32 = u32::MAX;

/// Gives each distinct key a dense id, in order of first appearance.
struct Interner<'a, K> {
    ids: HashMap<K, u32>,
    values: Vec<&'a NormalizedText>,
}

impl<'a, K: std::hash::Hash + Eq> Interner<'a, K> {
    fn new() -> Self {
        Self {
            ids: HashMap::new(),
            values: Vec::new(),
        }
    }

    /// The id of `text` under `key(text)`, or [`NONE`] for a missing text.
    fn intern(
        &mut self,
        text: &'a Option<NormalizedText>,
        key: impl Fn(&'a NormalizedText) -> K,
    ) -> u32 {
        let Some(text) = text else { return NONE };
        let next = self.values.len() as u32;
        *self.ids.entry(key(text)).or_insert_with(|| {
            self.values.push(text);
            next
        })
    }
}

/// What a type or category text means for agreement: a recognised travel
/// category, or else the normalized text itself.
#[derive(Hash, PartialEq, Eq)]
enum CategoryKey<'a> {
    Known(TravelCategory),
    Other(&'a str),
}

fn category_key(text: &NormalizedText) -> CategoryKey<'_> {
    travel_category(text).map_or(CategoryKey::Other(&text.cleaned), CategoryKey::Known)
}

/// The three vendor similarities of two normalized vendor names.
fn vendor_similarity(a: &NormalizedText, b: &NormalizedText) -> [f32; 3] {
    [
        strsim::jaro_winkler(&a.cleaned, &b.cleaned) as f32,
        strsim::normalized_levenshtein(&a.cleaned, &b.cleaned) as f32,
        jaccard(&a.stems, &b.stems) as f32,
    ]
}

fn build_rows<'a>(budgets: &'a [Budget], items: &'a [LineItem]) -> Vec<f32> {
    let n_rows = budgets.len() * items.len();
    if n_rows == 0 {
        return Vec::new();
    }

    // Distinct vendor strings on each side, and each budget's/item's ids.
    let by_cleaned = |text: &'a NormalizedText| text.cleaned.as_str();
    let mut budget_vendors = Interner::new();
    let budget_vendor_ids: Vec<[u32; 2]> = budgets
        .iter()
        .map(|b| {
            [
                budget_vendors.intern(&b.travel_vendor, by_cleaned),
                budget_vendors.intern(&b.purchase_vendor, by_cleaned),
            ]
        })
        .collect();
    let mut item_vendors = Interner::new();
    let item_vendor_ids: Vec<u32> = items
        .iter()
        .map(|item| item_vendors.intern(&item.vendor, by_cleaned))
        .collect();

    // Each similarity once per distinct (budget vendor, item vendor) pair.
    let n_item_vendors = item_vendors.values.len();
    let similarities: Vec<[f32; 3]> = budget_vendors
        .values
        .iter()
        .flat_map(|a| item_vendors.values.iter().map(|b| vendor_similarity(a, b)))
        .collect();
    let similarity = |budget_vendor: u32, item_vendor: u32| {
        if budget_vendor == NONE || item_vendor == NONE {
            [f32::NAN; 3]
        } else {
            similarities[budget_vendor as usize * n_item_vendors + item_vendor as usize]
        }
    };

    // Categories, interned across both sides so equal ids mean agreement.
    let mut categories = Interner::new();
    let budget_types: Vec<u32> = budgets
        .iter()
        .map(|b| categories.intern(&b.budget_type, category_key))
        .collect();
    let item_types: Vec<[u32; 4]> = items
        .iter()
        .map(|item| {
            item.types
                .each_ref()
                .map(|t| categories.intern(t, category_key))
        })
        .collect();

    let tolerance = TRIP_WINDOW_TOLERANCE_DAYS * SECONDS_PER_DAY;
    let mut values = Vec::with_capacity(n_rows * N_FEATURES);
    let mut row = [0.0f32; N_FEATURES];
    for (b, budget) in budgets.iter().enumerate() {
        row[FIRST_FLAG..FIRST_FLAG + N_BUDGET_FLAGS].copy_from_slice(&budget.flags);
        let [travel_vendor, purchase_vendor] = budget_vendor_ids[b];
        let budget_type = budget_types[b];
        for (i, item) in items.iter().enumerate() {
            let item_vendor = item_vendor_ids[i];
            row[0..3].copy_from_slice(&similarity(travel_vendor, item_vendor));
            row[3..6].copy_from_slice(&similarity(purchase_vendor, item_vendor));
            for (slot, item_type) in row[6..10].iter_mut().zip(item_types[i]) {
                *slot = if budget_type == NONE || item_type == NONE {
                    f32::NAN
                } else {
                    f32::from(u8::from(budget_type == item_type))
                };
            }
            let amount = item.amount;
            for (offset, reference) in [(10, budget.actual), (13, budget.price)] {
                let diff = (amount - reference).abs();
                row[offset] = (amount / reference) as f32;
                row[offset + 1] = diff as f32;
                row[offset + 2] = (diff / reference) as f32;
            }
            let date = item.date;
            row[16] = ((date - budget.start) / SECONDS_PER_DAY) as f32;
            row[17] = ((date - budget.end) / SECONDS_PER_DAY) as f32;
            row[18] = if date.is_nan() || budget.start.is_nan() || budget.end.is_nan() {
                f32::NAN
            } else {
                let inside = date >= budget.start - tolerance && date <= budget.end + tolerance;
                f32::from(u8::from(inside))
            };
            row[19] = ((date - budget.generated) / SECONDS_PER_DAY) as f32;
            row[FIRST_FLAG + N_BUDGET_FLAGS..].copy_from_slice(&item.flags);
            values.extend_from_slice(&row);
        }
    }
    values
}
