//! What the fuzz targets share: one entry function per target, so that a
//! crash found by libFuzzer can be replayed by a plain test too, the
//! matrix invariants (the very file the property tests use), and the
//! structured record types the `records` target builds with `arbitrary`.
//!
//! Every entry function returns quietly on input the code refuses cleanly
//! (a request error, a proto that does not decode) and panics, which is
//! what libFuzzer reports as a crash, when an invariant breaks.

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use prost::Message;
use triad_features::{
    Featurizer, FeaturizerConfig, ItemError, JsonLimits, RawBudget, RawLineItem, RawRequest,
    parse_request,
};
use triad_proto::convert::matrix_chunks;
use triad_proto::inference::ModelInferRequest;
use triad_proto::v1;

#[path = "../../crates/test-support/src/invariants.rs"]
pub mod invariants;

/// Most pairs featurized per input: the preprocess service's default
/// `max_pairs`, past which it refuses a request before featurizing.
pub const MAX_PAIRS: usize = 250_000;

static FEATURIZER: LazyLock<Featurizer> = LazyLock::new(Featurizer::default);

/// Featurizes `request` (continuing from `errors`) and checks every
/// invariant of the result.
pub fn featurize_and_check(featurizer: &Featurizer, request: &RawRequest, errors: Vec<ItemError>) {
    let pairs = request
        .budgets
        .len()
        .saturating_mul(request.all_user_expense_lineitems.len());
    if pairs > MAX_PAIRS {
        return;
    }
    let matrix = featurizer.featurize_with_errors(request, errors);
    if let Err(problem) = invariants::check_matrix(request, &matrix) {
        panic!("invariant broken: {problem}");
    }
    // And into wire messages, in chunks, as preprocess answers.
    let (n_rows, n_errors) = (matrix.n_rows, matrix.errors.len());
    let chunks = matrix_chunks(matrix, "fuzz", 7);
    assert_eq!(
        chunks.iter().map(|c| c.n_rows as usize).sum::<usize>(),
        n_rows
    );
    assert_eq!(chunks[0].errors.len(), n_errors);
    for chunk in &chunks {
        assert_eq!(
            chunk.values.len(),
            chunk.n_rows as usize * chunk.n_cols as usize
        );
        assert_eq!(chunk.keys.len(), chunk.n_rows as usize);
    }
}

/// Target `json_request`: a body as the seed HTTP contract receives it
/// (axum hands over only valid UTF-8), read with the default limits, then
/// featurized.
pub fn json_request(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse_request(body, &JsonLimits::default()) else {
        return;
    };
    featurize_and_check(&FEATURIZER, &parsed.request, parsed.errors);
}

/// Target `proto_request`: the bytes as a `triad.v1.FeaturizeRequest` (what
/// preprocess decodes) and as a `triad.v1.ScoreRequest` (what the scorer
/// decodes), each converted to records and featurized; records also survive
/// the trip back to the wire unchanged.
pub fn proto_request(data: &[u8]) {
    if let Ok(request) = v1::FeaturizeRequest::decode(data) {
        let raw = RawRequest::from(request);
        let wire = v1::FeaturizeRequest::from(raw.clone()).encode_to_vec();
        let again = RawRequest::from(v1::FeaturizeRequest::decode(wire.as_slice()).unwrap());
        assert_eq!(raw, again, "records changed on the way through the wire");
        featurize_and_check(&FEATURIZER, &raw, Vec::new());
    }
    if let Ok(request) = v1::ScoreRequest::decode(data) {
        let raw = RawRequest::from(v1::FeaturizeRequest {
            budgets: request.budgets,
            all_user_expense_lineitems: request.all_user_expense_lineitems,
        });
        featurize_and_check(&FEATURIZER, &raw, Vec::new());
    }
}

/// Target `oip_infer`: the first byte picks the model's feature count, the
/// rest is a `inference.ModelInferRequest`, validated as `ModelInfer` does
/// under 64 KiB messages. A valid request's shape agrees with its values;
/// an invalid one is `INVALID_ARGUMENT` with a short message.
pub fn oip_infer(data: &[u8]) {
    const MAX_MESSAGE_BYTES: usize = 64 * 1024;
    let Some((&n_features, rest)) = data.split_first() else {
        return;
    };
    let n_features = usize::from(n_features % 40);
    let Ok(mut request) = ModelInferRequest::decode(rest) else {
        return;
    };
    let before = request.clone();
    let features: Vec<String> = (0..n_features).map(|i| format!("f{i}")).collect();
    match triad_score::oip::validate_request(&mut request, &features, MAX_MESSAGE_BYTES) {
        Ok(n_rows) => {
            assert!(n_rows <= MAX_MESSAGE_BYTES / 8);
            let n_values = n_rows * n_features;
            let typed = before.inputs[0]
                .contents
                .as_ref()
                .map_or(0, |c| c.fp32_contents.len());
            let raw = before.raw_input_contents.first().map_or(0, Vec::len);
            assert!(
                (typed == n_values && before.raw_input_contents.is_empty())
                    || (raw == n_values * 4 && typed == 0),
                "accepted {n_rows} rows of {n_features} with {typed} typed values and {raw} raw bytes"
            );
        }
        Err(error) => {
            let status = tonic_status(error);
            assert_eq!(status.0, "InvalidArgument", "{}", status.1);
            assert!(status.1.len() < 1024, "message of {} bytes", status.1.len());
        }
    }
}

fn tonic_status(error: triad_score::oip::OipError) -> (String, String) {
    let status = tonic::Status::from(error);
    (format!("{:?}", status.code()), status.message().to_owned())
}

/// A field value, shaped so that the fuzzer reaches every parser branch
/// quickly: realistic amounts, datetimes and vendor names as often as
/// arbitrary text.
#[derive(Debug, Arbitrary)]
pub enum Field {
    Missing,
    Blank,
    Text(String),
    Amount {
        cents: i64,
        exponent: Option<i8>,
    },
    Float(f64),
    Date {
        year: u16,
        month: u8,
        day: u8,
        seconds: u32,
        layout: u8,
    },
    Known(u8),
    Repeated {
        times: u16,
        text: String,
    },
}

const KNOWN: &[&str] = &[
    "Southwest Airlines",
    "SOUTHWEST AIR 5262134",
    "Hôtel Le Méridien",
    "Marriott Hotels",
    "Uber Technologies",
    "flight",
    "Airfare",
    "hotel",
    "taxi",
    "car rental",
    "Meals",
    "東京ホテル",
    "don't",
    "the and of",
    "2017-04-18 04:00:00",
    "140.0",
    "1e308",
    "NaN",
    "-0",
];

impl Field {
    fn render(self) -> Option<String> {
        Some(match self {
            Field::Missing => return None,
            Field::Blank => "  ".to_owned(),
            Field::Text(text) => text,
            Field::Amount { cents, exponent } => match exponent {
                None => format!("{}.{:02}", cents / 100, (cents % 100).abs()),
                Some(e) => format!("{cents}e{e}"),
            },
            Field::Float(x) => x.to_string(),
            Field::Date {
                year,
                month,
                day,
                seconds,
                layout,
            } => {
                let (h, m, s) = (seconds / 3600 % 100, seconds / 60 % 60, seconds % 61);
                match layout % 4 {
                    0 => format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}"),
                    1 => format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
                    2 => format!("{year:04}-{month:02}-{day:02}"),
                    _ => format!(
                        "{year}-{month}-{day}T{h}:{m}:{s}.{seconds}+0{}:00",
                        layout % 10
                    ),
                }
            }
            Field::Known(i) => KNOWN[usize::from(i) % KNOWN.len()].to_owned(),
            Field::Repeated { times, text } => text.repeat(usize::from(times % 1024)),
        })
    }
}

/// An id: mostly from a small set, so duplicates happen.
#[derive(Debug, Arbitrary)]
pub enum Id {
    Missing,
    Small(u8),
    Text(String),
    Long(u16),
}

impl Id {
    fn render(self) -> Option<String> {
        match self {
            Id::Missing => None,
            Id::Small(n) => Some(format!("{}", n % 8)),
            Id::Text(text) => Some(text),
            Id::Long(n) => Some("x".repeat(usize::from(n % 512))),
        }
    }
}

/// A budget built from arbitrary fields.
#[derive(Debug, Arbitrary)]
pub struct ArbBudget {
    id: Id,
    fields: [Field; 8],
}

/// A line item built from arbitrary fields.
#[derive(Debug, Arbitrary)]
pub struct ArbLineItem {
    id: Id,
    fields: [Field; 7],
}

/// Target `records`' input: records and the featurizer's bounds.
#[derive(Debug, Arbitrary)]
pub struct ArbRequest {
    budgets: Vec<ArbBudget>,
    items: Vec<ArbLineItem>,
    max_text_bytes: Option<u16>,
    max_id_bytes: Option<u8>,
}

impl ArbRequest {
    /// The records, and a featurizer with the chosen bounds.
    pub fn build(self) -> (RawRequest, FeaturizerConfig) {
        let budgets = self
            .budgets
            .into_iter()
            .map(|b| {
                let [a, c, d, e, f, g, h, i] = b.fields.map(Field::render);
                RawBudget {
                    budget_id: b.id.render(),
                    budget_price_budget: a,
                    travel_vendor_receipts: c,
                    purchase_vendor_receipts: d,
                    budget_type_budget: e,
                    generated_at_budget: f,
                    start_datetime_trips: g,
                    end_datetime_trips: h,
                    actual_cost_budget: i,
                }
            })
            .collect();
        let items = self
            .items
            .into_iter()
            .map(|item| {
                let [a, c, d, e, f, g, h] = item.fields.map(Field::render);
                RawLineItem {
                    itemization_id: item.id.render(),
                    expensed_amount_itemization: a,
                    expense_type_name_itemization: c,
                    transaction_date_itemization: d,
                    expense_category_itemization: e,
                    vendor_name_expense: f,
                    expense_type_name_expense: g,
                    expense_category_expense: h,
                }
            })
            .collect();
        let defaults = FeaturizerConfig::default();
        let config = FeaturizerConfig {
            max_text_bytes: self
                .max_text_bytes
                .map_or(defaults.max_text_bytes, usize::from),
            max_id_bytes: self.max_id_bytes.map_or(defaults.max_id_bytes, usize::from),
        };
        (
            RawRequest {
                budgets,
                all_user_expense_lineitems: items,
            },
            config,
        )
    }
}

/// Target `records`: arbitrary records into a featurizer with arbitrary
/// bounds.
pub fn records(input: ArbRequest) {
    let (request, config) = input.build();
    let featurizer = if config == FeaturizerConfig::default() {
        &FEATURIZER
    } else {
        &Featurizer::new(config)
    };
    featurize_and_check(featurizer, &request, Vec::new());
}
