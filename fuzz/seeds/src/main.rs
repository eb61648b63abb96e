//! Writes the fuzz targets' seed corpora from `tests/fixtures/`: the seed
//! request JSON as it is and in a few variants, the same request as
//! encoded `triad.v1` protos, and valid and near-valid OIP requests.
//!
//! Usage: `triad-fuzz-seeds <tests/fixtures> <corpus dir>`; `fuzz/run.sh`
//! runs it before fuzzing. Existing files are overwritten, others kept.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use prost::Message;
use triad_features::{JsonLimits, parse_request};
use triad_proto::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use triad_proto::inference::{InferTensorContents, ModelInferRequest};
use triad_proto::v1;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn infer(shape: Vec<i64>, values: Vec<f32>, raw: bool) -> ModelInferRequest {
    let (contents, raw_input_contents) = if raw {
        (
            None,
            vec![values.iter().flat_map(|v| v.to_le_bytes()).collect()],
        )
    } else {
        (
            Some(InferTensorContents {
                fp32_contents: values,
                ..Default::default()
            }),
            Vec::new(),
        )
    };
    ModelInferRequest {
        model_name: "budget_expense_matcher".to_owned(),
        inputs: vec![InferInputTensor {
            name: "features".to_owned(),
            datatype: "FP32".to_owned(),
            shape,
            parameters: Default::default(),
            contents,
        }],
        outputs: vec![InferRequestedOutputTensor {
            name: "probability".to_owned(),
            parameters: Default::default(),
        }],
        raw_input_contents,
        ..Default::default()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(fixtures), Some(corpus)) = (args.next(), args.next()) else {
        return Err("usage: triad-fuzz-seeds <tests/fixtures> <corpus dir>".into());
    };
    let seed = std::fs::read_to_string(fixtures.join("seed_request.json"))?;

    let json = corpus.join("json_request");
    write(&json, "seed_request.json", seed.as_bytes())?;
    write(
        &json,
        "bad_items.json",
        br#"{"budgets":[5,{"budget_id":"1","budget_price_budget":"abc","start_datetime_trips":"2017-04-20","end_datetime_trips":"2017-04-18"},{"budget_id":"1"}],
            "all_user_expense_lineitems":[{"itemization_id":2,"vendor_name_expense":["x"],"expensed_amount_itemization":1e400},null,{}]}"#,
    )?;
    write(
        &json,
        "empty.json",
        br#"{"budgets":[],"all_user_expense_lineitems":null}"#,
    )?;

    let request: v1::FeaturizeRequest =
        parse_request(&seed, &JsonLimits::default())?.request.into();
    let proto = corpus.join("proto_request");
    write(&proto, "seed_featurize.bin", &request.encode_to_vec())?;
    let score = v1::ScoreRequest {
        budgets: request.budgets.clone(),
        all_user_expense_lineitems: request.all_user_expense_lineitems.clone(),
        models: vec!["budget_expense_matcher".to_owned()],
        occurred_at_ms: 1_492_488_000_000,
        ..Default::default()
    };
    write(&proto, "seed_score.bin", &score.encode_to_vec())?;

    // The first byte is the model's feature count.
    let oip = corpus.join("oip_infer");
    let with_width = |n: u8, request: ModelInferRequest| {
        let mut bytes = vec![n];
        bytes.extend(request.encode_to_vec());
        bytes
    };
    let values: Vec<f32> = (0..70).map(|i| i as f32 / 7.0).collect();
    write(
        &oip,
        "typed_2x35.bin",
        &with_width(35, infer(vec![2, 35], values.clone(), false)),
    )?;
    write(
        &oip,
        "raw_2x35.bin",
        &with_width(35, infer(vec![2, 35], values, true)),
    )?;
    write(
        &oip,
        "one_row_nan.bin",
        &with_width(3, infer(vec![3], vec![f32::NAN, 1.0, 2.0], false)),
    )?;
    write(
        &oip,
        "huge_shape.bin",
        &with_width(3, infer(vec![1 << 62, 1 << 62], vec![1.0], false)),
    )?;
    println!("seed corpora written under {}", corpus.display());
    Ok(())
}
