//! The featurizer: typed, normalized entities in, one dense row per
//! (budget, line item) pair out.
//!
//! Work is arranged so that nothing is done per pair that could be done per
//! entity, and nothing per entity that could be done per distinct string:
//! every field is parsed once per entity; every text is normalized once per
//! distinct raw string and interned by its normalized form; every vendor
//! similarity is computed once per distinct pair of normalized vendor strings
//! (a user's line items come from a few dozen vendors); the row loop only
//! looks values up and does arithmetic, writing straight into the output
//! matrix.
//!
//! The work of one request is bounded by its caller: [`Featurizer::featurize_until`]
//! checks an [`Interrupt`] (a deadline, a cancel flag) between pieces of work
//! of bounded cost, and gives up with [`Interrupted`] once it fires.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::{ItemError, ItemErrorCode, ItemKind};
use crate::matrix::FeatureMatrix;
use crate::parse::{self, FieldError};
use crate::record::{IdProblem, RawBudget, RawLineItem, RawRequest};
use crate::schema::{FIRST_FLAG, FeatureSchema, N_BUDGET_FLAGS, N_FEATURES, N_ITEM_FLAGS};
use crate::text::{
    NormalizedText, SimilarityProfile, StemCache, TextNormalizer, character_similarities, jaccard,
    travel_category,
};

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

impl FeaturizerConfig {
    /// The most bytes of a field of `kind` the featurizer reads: what a
    /// kept copy of the field needs (see [`crate::record::clip`]).
    pub fn read_bound(&self, kind: crate::FieldKind) -> usize {
        match kind {
            crate::FieldKind::Id => self.max_id_bytes,
            crate::FieldKind::Parsed => parse::MAX_FIELD_BYTES,
            crate::FieldKind::Text => self.max_text_bytes,
        }
    }
}

impl Default for FeaturizerConfig {
    fn default() -> Self {
        Self {
            max_text_bytes: 512,
            max_id_bytes: 128,
        }
    }
}

/// When a featurization should give up: a deadline, a cancel flag, both or
/// neither. Checked between pieces of work of bounded cost (about every
/// 100 µs of work), so a fired interrupt stops a request within about that
/// much more work, whatever its size.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    deadline: Option<Instant>,
    cancelled: Option<Arc<AtomicBool>>,
}

impl Interrupt {
    /// An interrupt that never fires.
    pub fn never() -> Self {
        Self::default()
    }

    /// Fires once `deadline` has passed.
    pub fn at(deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            cancelled: None,
        }
    }

    /// Also fires once `flag` is set (for example by a guard dropped when the
    /// caller goes away).
    pub fn or_cancelled_by(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancelled = Some(flag);
        self
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// `Err` once the interrupt has fired.
    pub fn check(&self) -> Result<(), Interrupted> {
        if let Some(flag) = &self.cancelled
            && flag.load(Ordering::Relaxed)
        {
            return Err(Interrupted::Cancelled);
        }
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(Interrupted::DeadlineExceeded),
            _ => Ok(()),
        }
    }
}

/// Why a featurization stopped before building its matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Interrupted {
    /// The [`Interrupt`]'s deadline passed.
    #[error("featurization stopped: the request's deadline passed before its matrix was built")]
    DeadlineExceeded,
    /// The [`Interrupt`]'s cancel flag was set.
    #[error("featurization stopped: the request was cancelled before its matrix was built")]
    Cancelled,
}

/// Work done since the interrupt was last checked, in units of about 10 ns.
struct Checkpoint<'i> {
    interrupt: &'i Interrupt,
    work: usize,
}

impl<'i> Checkpoint<'i> {
    /// Units of work between two checks: about 100 µs.
    const EVERY: usize = 10_000;

    /// Checks once at the start, so an interrupt that has already fired
    /// stops the request before any work.
    fn new(interrupt: &'i Interrupt) -> Result<Self, Interrupted> {
        interrupt.check()?;
        Ok(Self { interrupt, work: 0 })
    }

    /// Counts `units` of work done; checks the interrupt every
    /// [`Checkpoint::EVERY`] units.
    #[inline]
    fn spend(&mut self, units: usize) -> Result<(), Interrupted> {
        self.work += units;
        if self.work >= Self::EVERY {
            self.work = 0;
            self.interrupt.check()?;
        }
        Ok(())
    }
}

/// Builds feature matrices. Cheap to share: build one per process.
#[derive(Debug, Default)]
pub struct Featurizer {
    normalizer: TextNormalizer,
    config: FeaturizerConfig,
}

/// Marks a missing text, vendor or category id.
const NONE: u32 = u32::MAX;

/// A budget with every field parsed; `NaN` marks a missing number, [`NONE`]
/// a missing text. Texts are ids into the request's [`Texts`].
struct Budget {
    id: String,
    price: f64,
    actual: f64,
    start: f64,
    end: f64,
    generated: f64,
    travel_vendor: u32,
    purchase_vendor: u32,
    budget_type: u32,
    flags: [f32; N_BUDGET_FLAGS],
}

/// A line item with every field parsed; `NaN` marks a missing number,
/// [`NONE`] a missing text. Texts are ids into the request's [`Texts`].
struct LineItem {
    id: String,
    amount: f64,
    date: f64,
    vendor: u32,
    /// Type name and category of the itemization, then of the expense.
    types: [u32; 4],
    flags: [f32; N_ITEM_FLAGS],
}

/// The distinct normalized texts of one request. Each raw string is
/// normalized once; equal normalized texts get equal ids, so comparing ids
/// compares texts.
struct Texts<'r> {
    by_raw: HashMap<&'r str, u32>,
    by_cleaned: HashMap<String, u32>,
    values: Vec<NormalizedText>,
    stems: StemCache,
}

impl<'r> Texts<'r> {
    /// Room for `n_fields` text fields; most requests repeat many strings.
    fn with_capacity(n_fields: usize) -> Self {
        Self {
            by_raw: HashMap::with_capacity(n_fields.min(4096)),
            by_cleaned: HashMap::new(),
            values: Vec::new(),
            stems: StemCache::default(),
        }
    }

    /// The id of the normalized `raw`, or [`NONE`] if nothing is left of it.
    fn intern(&mut self, normalizer: &TextNormalizer, raw: &'r str) -> u32 {
        if let Some(&id) = self.by_raw.get(raw) {
            return id;
        }
        let id = match normalizer.normalize_cached(raw, &mut self.stems) {
            None => NONE,
            Some(text) => match self.by_cleaned.get(&text.cleaned) {
                Some(&id) => id,
                None => {
                    let id = self.values.len() as u32;
                    self.by_cleaned.insert(text.cleaned.clone(), id);
                    self.values.push(text);
                    id
                }
            },
        };
        self.by_raw.insert(raw, id);
        id
    }
}

/// Indices of the items an earlier stage dropped, sorted, per list.
struct Dropped {
    budgets: Vec<u32>,
    items: Vec<u32>,
}

impl Dropped {
    fn new(errors: &[ItemError]) -> Self {
        let (mut budgets, mut items) = (Vec::new(), Vec::new());
        for error in errors.iter().filter(|error| error.dropped) {
            match error.kind {
                ItemKind::Budget => budgets.push(error.index),
                ItemKind::LineItem => items.push(error.index),
            }
        }
        budgets.sort_unstable();
        items.sort_unstable();
        Self { budgets, items }
    }

    fn contains(list: &[u32], index: u32) -> bool {
        !list.is_empty() && list.binary_search(&index).is_ok()
    }
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

    fn text<'r>(
        &mut self,
        texts: &mut Texts<'r>,
        normalizer: &TextNormalizer,
        max_bytes: usize,
        field: &'static str,
        value: Option<&'r str>,
        flag: &mut f32,
    ) -> u32 {
        let id = match value {
            Some(text) if text.len() > max_bytes => {
                self.report(
                    field,
                    ItemErrorCode::ValueTooLong,
                    format!(
                        "expected at most {max_bytes} bytes, got {}; treated as missing",
                        text.len()
                    ),
                );
                NONE
            }
            Some(text) => texts.intern(normalizer, text),
            None => NONE,
        };
        if id == NONE {
            *flag = 1.0;
        }
        id
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
        errors: Vec<ItemError>,
    ) -> FeatureMatrix {
        match self.featurize_until(request, errors, &Interrupt::never()) {
            Ok(matrix) => matrix,
            Err(never) => unreachable!("an interrupt that never fires fired: {never}"),
        }
    }

    /// Like [`Featurizer::featurize_with_errors`], giving up with
    /// [`Interrupted`] once `interrupt` fires (checked before any work, then
    /// about every 100 µs of work). The matrix, when built, is the same.
    pub fn featurize_until(
        &self,
        request: &RawRequest,
        mut errors: Vec<ItemError>,
        interrupt: &Interrupt,
    ) -> Result<FeatureMatrix, Interrupted> {
        let mut checkpoint = Checkpoint::new(interrupt)?;
        let dropped = Dropped::new(&errors);
        let n_text_fields =
            3 * request.budgets.len() + 5 * request.all_user_expense_lineitems.len();
        let mut texts = Texts::with_capacity(n_text_fields);
        let budgets = self.prepare_budgets(
            &request.budgets,
            &dropped,
            &mut texts,
            &mut errors,
            &mut checkpoint,
        )?;
        let items = self.prepare_items(
            &request.all_user_expense_lineitems,
            &dropped,
            &mut texts,
            &mut errors,
            &mut checkpoint,
        )?;
        let values = build_rows(&budgets, &items, &texts.values, &mut checkpoint)?;
        Ok(FeatureMatrix {
            schema: self.schema(),
            n_rows: budgets.len() * items.len(),
            values,
            budget_ids: budgets.into_iter().map(|budget| budget.id).collect(),
            item_ids: items.into_iter().map(|item| item.id).collect(),
            errors,
        })
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
        let Some(id) = id else {
            return fail(
                ItemErrorCode::MissingId,
                format!("expected a non-empty `{field}`, got null; the item forms no row"),
                None,
            );
        };
        match crate::check_id(id, self.config.max_id_bytes) {
            Err(IdProblem::Blank) => fail(
                ItemErrorCode::MissingId,
                format!(
                    "expected a non-empty `{field}`, got an empty string; the item forms no row"
                ),
                None,
            ),
            Err(IdProblem::TooLong { len }) => fail(
                ItemErrorCode::ValueTooLong,
                format!(
                    "expected `{field}` of at most {} bytes, got {len}; the item forms no row",
                    self.config.max_id_bytes,
                ),
                None,
            ),
            Err(IdProblem::Control) => fail(
                ItemErrorCode::InvalidValue,
                format!(
                    "expected `{field}` without control characters (such as NUL); the item forms no row"
                ),
                None,
            ),
            Ok(()) if !seen.insert(id) => fail(
                ItemErrorCode::DuplicateId,
                format!("`{field}` {id:?} appears earlier in the request; this item forms no row"),
                Some(id),
            ),
            Ok(()) => Some(id),
        }
    }

    fn prepare_budgets<'r>(
        &self,
        raw: &'r [RawBudget],
        dropped: &Dropped,
        texts: &mut Texts<'r>,
        errors: &mut Vec<ItemError>,
        checkpoint: &mut Checkpoint<'_>,
    ) -> Result<Vec<Budget>, Interrupted> {
        let mut seen = HashSet::with_capacity(raw.len());
        let mut budgets = Vec::with_capacity(raw.len());
        for (index, budget) in raw.iter().enumerate() {
            checkpoint.spend(entity_cost(&[
                &budget.travel_vendor_receipts,
                &budget.purchase_vendor_receipts,
                &budget.budget_type_budget,
            ]))?;
            let index = index as u32;
            if Dropped::contains(&dropped.budgets, index) {
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
                texts,
                norm,
                max,
                "travel_vendor_receipts",
                budget.travel_vendor_receipts.as_deref(),
                f_travel,
            );
            let purchase_vendor = sink.text(
                texts,
                norm,
                max,
                "purchase_vendor_receipts",
                budget.purchase_vendor_receipts.as_deref(),
                f_purchase,
            );
            let budget_type = sink.text(
                texts,
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
        Ok(budgets)
    }

    fn prepare_items<'r>(
        &self,
        raw: &'r [RawLineItem],
        dropped: &Dropped,
        texts: &mut Texts<'r>,
        errors: &mut Vec<ItemError>,
        checkpoint: &mut Checkpoint<'_>,
    ) -> Result<Vec<LineItem>, Interrupted> {
        let mut seen = HashSet::with_capacity(raw.len());
        let mut items = Vec::with_capacity(raw.len());
        for (index, item) in raw.iter().enumerate() {
            checkpoint.spend(entity_cost(&[
                &item.expense_type_name_itemization,
                &item.expense_category_itemization,
                &item.vendor_name_expense,
                &item.expense_type_name_expense,
                &item.expense_category_expense,
            ]))?;
            let index = index as u32;
            if Dropped::contains(&dropped.items, index) {
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
                texts,
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
                texts,
                norm,
                max,
                "expense_category_itemization",
                item.expense_category_itemization.as_deref(),
                f_cat_i,
            );
            let vendor = sink.text(
                texts,
                norm,
                max,
                "vendor_name_expense",
                item.vendor_name_expense.as_deref(),
                f_vendor,
            );
            let type_expense = sink.text(
                texts,
                norm,
                max,
                "expense_type_name_expense",
                item.expense_type_name_expense.as_deref(),
                f_type_e,
            );
            let category_expense = sink.text(
                texts,
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
        Ok(items)
    }
}

/// Work units (about 10 ns each) of parsing one entity whose text fields
/// are `texts`: normalization costs about a nanosecond per byte.
fn entity_cost(texts: &[&Option<String>]) -> usize {
    let bytes: usize = texts
        .iter()
        .map(|text| text.as_ref().map_or(0, String::len))
        .sum();
    20 + bytes / 8
}

/// Dense ids, in order of first appearance, of the distinct vendor texts on
/// one side of the pairs.
struct Vendors {
    /// Dense id of each text id, or [`NONE`] if not seen on this side.
    by_text: Vec<u32>,
    /// Text id of each dense id.
    texts: Vec<u32>,
}

impl Vendors {
    fn new(n_texts: usize) -> Self {
        Self {
            by_text: vec![NONE; n_texts],
            texts: Vec::new(),
        }
    }

    /// The dense id of `text`, or [`NONE`] for a missing text.
    fn intern(&mut self, text: u32) -> u32 {
        if text == NONE {
            return NONE;
        }
        let id = &mut self.by_text[text as usize];
        if *id == NONE {
            *id = self.texts.len() as u32;
            self.texts.push(text);
        }
        *id
    }

    /// The index of `id` in a similarity row or column, whose last slot
    /// stands for a missing vendor; valid once every text is interned.
    fn slot(&self, id: u32) -> usize {
        if id == NONE {
            self.texts.len()
        } else {
            id as usize
        }
    }
}

/// A distinct vendor name, prepared for similarities against many others.
struct Vendor<'t> {
    profile: SimilarityProfile<'t>,
    /// Its stems as ids (equal ids, equal stems), sorted.
    stems: Vec<u32>,
}

impl<'t> Vendor<'t> {
    fn new(text: &'t NormalizedText, stem_ids: &mut HashMap<&'t str, u32>) -> Self {
        let mut stems: Vec<u32> = text
            .stems
            .iter()
            .map(|stem| {
                let next = stem_ids.len() as u32;
                *stem_ids.entry(stem.as_str()).or_insert(next)
            })
            .collect();
        stems.sort_unstable();
        Self {
            profile: SimilarityProfile::new(&text.cleaned),
            stems,
        }
    }

    /// Work units (about 10 ns each) of [`Vendor::similarity`]: the
    /// block-wise pass costs a few nanoseconds per byte of one text and
    /// 64-byte block of the other.
    fn similarity_cost(&self, other: &Vendor<'_>) -> usize {
        let (a, b) = (self.profile.text().len(), other.profile.text().len());
        10 + a * b.div_ceil(64) / 2
    }

    /// The three vendor similarities of two vendor names.
    fn similarity(&self, other: &Vendor<'_>) -> [f32; 3] {
        let (jaro_winkler, levenshtein) = character_similarities(&self.profile, &other.profile);
        [
            jaro_winkler as f32,
            levenshtein as f32,
            jaccard(&self.stems, &other.stems) as f32,
        ]
    }
}

/// What the row loop reads of a budget.
struct BudgetColumns<'s> {
    /// Similarities of the travel and purchase vendors, by item vendor slot.
    travel: &'s [[f32; 3]],
    purchase: &'s [[f32; 3]],
    budget_type: u32,
    actual: f64,
    price: f64,
    start: f64,
    end: f64,
    generated: f64,
    /// The trip window with its tolerance, if both ends are known.
    window: Option<(f64, f64)>,
    flags: [f32; N_BUDGET_FLAGS],
}

impl<'s> BudgetColumns<'s> {
    fn new(
        budget: &Budget,
        travel: &'s [[f32; 3]],
        purchase: &'s [[f32; 3]],
        budget_type: u32,
    ) -> Self {
        let tolerance = TRIP_WINDOW_TOLERANCE_DAYS * SECONDS_PER_DAY;
        let (start, end) = (budget.start, budget.end);
        Self {
            travel,
            purchase,
            budget_type,
            actual: budget.actual,
            price: budget.price,
            start,
            end,
            generated: budget.generated,
            window: (!start.is_nan() && !end.is_nan())
                .then_some((start - tolerance, end + tolerance)),
            flags: budget.flags,
        }
    }

    /// Writes the features of the pair (this budget, `item`) into `row`.
    #[inline]
    fn write_row(&self, item: &ItemColumns, row: &mut [f32; N_FEATURES]) {
        row[0..3].copy_from_slice(&self.travel[item.vendor]);
        row[3..6].copy_from_slice(&self.purchase[item.vendor]);
        for (slot, item_type) in row[6..10].iter_mut().zip(item.categories) {
            *slot = if self.budget_type == NONE || item_type == NONE {
                f32::NAN
            } else {
                f32::from(u8::from(self.budget_type == item_type))
            };
        }
        let amount = item.amount;
        for (offset, reference) in [(10, self.actual), (13, self.price)] {
            let diff = (amount - reference).abs();
            row[offset] = (amount / reference) as f32;
            row[offset + 1] = diff as f32;
            row[offset + 2] = (diff / reference) as f32;
        }
        let date = item.date;
        row[16] = ((date - self.start) / SECONDS_PER_DAY) as f32;
        row[17] = ((date - self.end) / SECONDS_PER_DAY) as f32;
        row[18] = match self.window {
            Some((from, to)) if !date.is_nan() => f32::from(u8::from(date >= from && date <= to)),
            _ => f32::NAN,
        };
        row[19] = ((date - self.generated) / SECONDS_PER_DAY) as f32;
        row[FIRST_FLAG..FIRST_FLAG + N_BUDGET_FLAGS].copy_from_slice(&self.flags);
        row[FIRST_FLAG + N_BUDGET_FLAGS..].copy_from_slice(&item.flags);
    }
}

/// What the row loop reads of a line item, packed.
struct ItemColumns {
    amount: f64,
    date: f64,
    /// Slot of the item's vendor in a row of the similarity table.
    vendor: usize,
    /// Category ids of the type and category fields, or [`NONE`].
    categories: [u32; 4],
    flags: [f32; N_ITEM_FLAGS],
}

fn build_rows(
    budgets: &[Budget],
    items: &[LineItem],
    texts: &[NormalizedText],
    checkpoint: &mut Checkpoint<'_>,
) -> Result<Vec<f32>, Interrupted> {
    let n_rows = budgets.len() * items.len();
    if n_rows == 0 {
        return Ok(Vec::new());
    }

    // Distinct vendors on each side.
    let mut budget_vendors = Vendors::new(texts.len());
    let budget_vendor_ids: Vec<[u32; 2]> = budgets
        .iter()
        .map(|b| {
            [
                budget_vendors.intern(b.travel_vendor),
                budget_vendors.intern(b.purchase_vendor),
            ]
        })
        .collect();
    let mut item_vendors = Vendors::new(texts.len());
    let item_vendor_ids: Vec<u32> = items
        .iter()
        .map(|item| item_vendors.intern(item.vendor))
        .collect();

    // Each similarity once per distinct (budget vendor, item vendor) pair,
    // in a table with one more row and column, left NaN, for a missing
    // vendor on either side.
    let mut stem_ids = HashMap::new();
    let mut prepare = |vendors: &Vendors| -> Vec<Vendor<'_>> {
        vendors
            .texts
            .iter()
            .map(|&id| Vendor::new(&texts[id as usize], &mut stem_ids))
            .collect()
    };
    let (budget_side, item_side) = (prepare(&budget_vendors), prepare(&item_vendors));
    let stride = item_side.len() + 1;
    let mut similarities = vec![[f32::NAN; 3]; (budget_side.len() + 1) * stride];
    for (row, a) in similarities.chunks_exact_mut(stride).zip(&budget_side) {
        for (slot, b) in row.iter_mut().zip(&item_side) {
            checkpoint.spend(a.similarity_cost(b))?;
            *slot = a.similarity(b);
        }
    }

    // A type or category agrees with the budget type when both name the same
    // travel category, or else have the same normalized text: a category id
    // is the text id, or `texts.len()` plus the travel category's index.
    // Computed on first use: only type and category texts need one.
    let mut categories = vec![NONE; texts.len()];
    let mut category = |text: u32| {
        if text == NONE {
            return NONE;
        }
        let id = &mut categories[text as usize];
        if *id == NONE {
            let travel = travel_category(&texts[text as usize]);
            *id = travel.map_or(text, |c| texts.len() as u32 + c as u32);
        }
        *id
    };
    let budget_types: Vec<u32> = budgets.iter().map(|b| category(b.budget_type)).collect();
    let item_columns: Vec<ItemColumns> = items
        .iter()
        .zip(&item_vendor_ids)
        .map(|(item, &vendor)| ItemColumns {
            amount: item.amount,
            date: item.date,
            vendor: item_vendors.slot(vendor),
            categories: item.types.map(&mut category),
            flags: item.flags,
        })
        .collect();

    // Allocated zeroed, which costs nothing extra for a large matrix (fresh
    // pages are zero already), then written in place row by row: no
    // capacity checks, and each row's length is known at compile time.
    let mut values = vec![0.0f32; n_rows * N_FEATURES];
    let (rows, _) = values.as_chunks_mut::<N_FEATURES>();
    let budget_columns = budgets.iter().zip(&budget_vendor_ids).zip(&budget_types);
    for (((budget, &[travel, purchase]), &budget_type), rows) in
        budget_columns.zip(rows.chunks_exact_mut(item_columns.len()))
    {
        checkpoint.spend(item_columns.len())?;
        let budget = BudgetColumns::new(
            budget,
            &similarities[budget_vendors.slot(travel) * stride..][..stride],
            &similarities[budget_vendors.slot(purchase) * stride..][..stride],
            budget_type,
        );
        for (row, item) in rows.iter_mut().zip(&item_columns) {
            budget.write_row(item, row);
        }
    }
    Ok(values)
}
