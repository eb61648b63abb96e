//! The codec of every generated client and server: prost's, with a bound
//! on what a message callers send in bulk may cost once decoded, checked on
//! its bytes before it is decoded.
//!
//! Protobuf is compact where Rust structs are not: an empty `Budget` is 2
//! bytes on the wire and 216 bytes decoded, so a 4 MiB `ScoreRequest` of
//! empty budgets would take the scorer past 400 MB before any handler
//! could look at it. For the messages whose repeated records come from
//! callers ([`bounded_shape`]: `ScoreRequest`, `FeaturizeRequest`,
//! `ScoreMatrixRequest`, `RecordOutcomesRequest`), [`decoded_cost`] walks
//! the wire format once (no allocation) and adds up each record's struct,
//! twice over for a `Vec` growing by doubling, plus four times its bytes
//! for the strings it holds; past [`MAX_DECODED_BYTES`] the call is
//! refused with `INVALID_ARGUMENT` before anything is decoded. Every other
//! message decodes exactly as with `tonic_prost::ProstCodec`.

use std::any::TypeId;
use std::marker::PhantomData;

use prost::Message;
use prost::bytes::Buf as _;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::v1;

/// Most a bounded message may cost once decoded: 48 MiB.
pub const MAX_DECODED_BYTES: u64 = 48 << 20;

/// Deepest nesting [`decoded_cost`] follows (the shapes below need two).
const MAX_DEPTH: usize = 4;

/// [`tonic_prost::ProstCodec`] with the decode bound of this module.
#[derive(Debug, Clone, Copy)]
pub struct BoundedCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for BoundedCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for BoundedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = BoundedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoundedDecoder(PhantomData)
    }
}

/// Checks a bounded message's cost, then decodes it with prost.
#[derive(Debug, Clone, Copy)]
pub struct BoundedDecoder<U>(PhantomData<U>);

impl<U: Message + Default + 'static> Decoder for BoundedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        if let Some(shape) = bounded_shape::<U>() {
            // The message is whole and contiguous by now (tonic has read
            // all of it, within the port's message size limit).
            let cost = decoded_cost(buf.chunk(), shape, 0);
            if cost > MAX_DECODED_BYTES {
                return Err(Status::invalid_argument(format!(
                    "this message would take about {} MiB once decoded, more than the limit of {} MiB: send fewer records per call",
                    cost >> 20,
                    MAX_DECODED_BYTES >> 20
                )));
            }
        }
        ProstDecoder::<U>::default().decode(buf)
    }
}

/// The records of a message: for each field number that holds a repeated
/// record, the size of its decoded struct and the shape of its own
/// records, if any. Any other length-delimited field counts as a string.
#[derive(Debug)]
pub struct Shape {
    records: &'static [(u32, usize, Option<&'static Shape>)],
}

const BUDGETS_AND_ITEMS: Shape = Shape {
    records: &[
        (1, size_of::<v1::Budget>(), None),
        (2, size_of::<v1::ExpenseLineItem>(), None),
    ],
};

const FEATURE_MATRIX: Shape = Shape {
    records: &[
        (5, size_of::<v1::PairKey>(), None),
        (6, size_of::<v1::ItemError>(), None),
    ],
};

const SCORE_MATRIX_REQUEST: Shape = Shape {
    records: &[(1, size_of::<v1::FeatureMatrix>(), Some(&FEATURE_MATRIX))],
};

const RECORD_OUTCOMES_REQUEST: Shape = Shape {
    records: &[
        (1, size_of::<v1::Outcome>(), None),
        (2, size_of::<v1::ItemError>(), None),
    ],
};

/// The shape of `U`, if it is one of the messages callers send in bulk.
pub fn bounded_shape<U: 'static>() -> Option<&'static Shape> {
    let id = TypeId::of::<U>();
    if id == TypeId::of::<v1::ScoreRequest>() || id == TypeId::of::<v1::FeaturizeRequest>() {
        Some(&BUDGETS_AND_ITEMS)
    } else if id == TypeId::of::<v1::ScoreMatrixRequest>() {
        Some(&SCORE_MATRIX_REQUEST)
    } else if id == TypeId::of::<v1::RecordOutcomesRequest>() {
        Some(&RECORD_OUTCOMES_REQUEST)
    } else {
        None
    }
}

/// What `bytes`, a message of `shape`, costs once decoded, at most: each
/// record's struct twice (a `Vec` grows by doubling) and four times every
/// length-delimited payload (a string's bytes and its allocation). Bytes
/// that are not well-formed protobuf end the walk; prost refuses them.
pub fn decoded_cost(mut bytes: &[u8], shape: &Shape, depth: usize) -> u64 {
    let mut cost = 0_u64;
    while !bytes.is_empty() {
        let Some(key) = varint(&mut bytes) else {
            break;
        };
        let (field, wire_type) = ((key >> 3) as u32, key & 7);
        match wire_type {
            0 => {
                if varint(&mut bytes).is_none() {
                    break;
                }
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                let Some(rest) = bytes.get(width..) else {
                    break;
                };
                bytes = rest;
            }
            2 => {
                let Some(len) = varint(&mut bytes).and_then(|len| usize::try_from(len).ok()) else {
                    break;
                };
                let Some(payload) = bytes.get(..len) else {
                    break;
                };
                bytes = &bytes[len..];
                cost = cost.saturating_add(4 * len as u64);
                if let Some((_, size, inner)) = shape.records.iter().find(|(f, ..)| *f == field) {
                    cost = cost.saturating_add(2 * *size as u64);
                    if let Some(inner) = inner
                        && depth < MAX_DEPTH
                    {
                        cost = cost.saturating_add(decoded_cost(payload, inner, depth + 1));
                    }
                }
            }
            _ => break,
        }
    }
    cost
}

/// Reads one varint off the front of `bytes`.
fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0_u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost<M: Message + 'static>(message: &M) -> u64 {
        decoded_cost(&message.encode_to_vec(), bounded_shape::<M>().unwrap(), 0)
    }

    #[test]
    fn two_million_empty_budgets_cost_far_more_than_their_four_mib() {
        let wire = [0x0a, 0x00].repeat(2 << 20);
        assert_eq!(wire.len(), 4 << 20);
        let cost = decoded_cost(&wire, &BUDGETS_AND_ITEMS, 0);
        assert!(cost > 800 << 20, "{cost}");
        assert!(cost > MAX_DECODED_BYTES);
    }

    #[test]
    fn a_realistic_request_costs_a_few_times_its_size() {
        let budget = v1::Budget {
            budget_id: Some("309366".into()),
            budget_price_budget: Some("140.0".into()),
            travel_vendor_receipts: Some("Southwest Airlines".into()),
            ..v1::Budget::default()
        };
        let item = v1::ExpenseLineItem {
            itemization_id: Some("4659496".into()),
            expensed_amount_itemization: Some("140.0".into()),
            vendor_name_expense: Some("SOUTHWEST AIR 5262134".into()),
            ..v1::ExpenseLineItem::default()
        };
        let request = v1::ScoreRequest {
            budgets: vec![budget; 50],
            all_user_expense_lineitems: vec![item; 5000],
            models: vec!["budget_expense_matcher".into()],
            ..v1::ScoreRequest::default()
        };
        let cost = cost(&request);
        let decoded = 50 * size_of::<v1::Budget>() + 5000 * size_of::<v1::ExpenseLineItem>();
        assert!(cost >= decoded as u64, "{cost} < {decoded}");
        assert!(cost < MAX_DECODED_BYTES / 8, "{cost}");
    }

    #[test]
    fn nested_records_count_too() {
        let matrix = v1::FeatureMatrix {
            keys: vec![v1::PairKey::default(); 100_000],
            ..v1::FeatureMatrix::default()
        };
        let request = v1::ScoreMatrixRequest {
            matrix: Some(matrix),
            ..v1::ScoreMatrixRequest::default()
        };
        assert!(cost(&request) >= 2 * 100_000 * size_of::<v1::PairKey>() as u64);
    }

    #[test]
    fn malformed_bytes_end_the_walk_without_a_panic() {
        for wire in [&[0x0a][..], &[0x0a, 0x05, 0x01], &[0xff; 11], &[0x0b, 0x00]] {
            let _ = decoded_cost(wire, &BUDGETS_AND_ITEMS, 0);
        }
    }

    #[test]
    fn only_the_bulk_messages_are_bounded() {
        assert!(bounded_shape::<v1::ScoreRequest>().is_some());
        assert!(bounded_shape::<v1::FeatureMatrix>().is_none());
        assert!(bounded_shape::<v1::ListModelsRequest>().is_none());
    }
}
