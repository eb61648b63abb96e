//! The Open Inference Protocol (`inference.GRPCInferenceService`) end to end:
//! a temporary model repository, the scorer on loopback, the generated
//! client.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;
use triad_features::FeatureSchema;
use triad_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use triad_proto::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use triad_proto::inference::{
    InferTensorContents, ModelInferRequest, ModelMetadataRequest, ModelReadyRequest,
    ServerLiveRequest, ServerMetadataRequest, ServerReadyRequest,
};
use triad_score::ScoreConfig;
use triad_server::ServerError;
use triad_test_support::tools::{GrpcurlOutput, grpcurl};

const MODEL: &str = "matcher";
const INTERCEPTS: [f64; 2] = [-0.25, 1.5];
const WEIGHTS: [f64; 3] = [0.5, -1.0, 2.0];
const THRESHOLD: f32 = 0.5;
/// Imputation value of the second feature.
const IMPUTE: f64 = 3.0;

/// Three features of the current schema, not the first three, in the order
/// the model reads them.
fn model_features() -> Vec<String> {
    let names = &FeatureSchema::current().feature_names;
    assert!(names.len() >= 6, "the schema has at least six features");
    vec![names[4].clone(), names[1].clone(), names[5].clone()]
}

/// Writes version `version` of the test model under `root`: `model.toml`
/// and a logistic `model.json`.
fn write_version(root: &Path, version: usize) {
    let schema = FeatureSchema::current();
    let features = model_features();
    let dir = root.join(MODEL).join(version.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let meta = format!(
        r#"kind = "logistic"
description = "test model"
threshold = {THRESHOLD}
features = {features:?}

[schema]
name = {name:?}
version = {schema_version:?}
hash = {hash:?}
"#,
        name = schema.name,
        schema_version = schema.version,
        hash = schema.hash,
    );
    std::fs::write(dir.join("model.toml"), meta).unwrap();
    let weights: serde_json::Map<String, serde_json::Value> = features
        .iter()
        .cloned()
        .zip(WEIGHTS.map(serde_json::Value::from))
        .collect();
    let model = serde_json::json!({
        "intercept": INTERCEPTS[version - 1],
        "weights": weights,
        "impute": { features[1].clone(): IMPUTE },
    });
    std::fs::write(dir.join("model.json"), model.to_string()).unwrap();
}

/// What the model version answers for one row, computed by hand in f64.
fn expected(version: usize, row: &[f32]) -> f32 {
    let z = INTERCEPTS[version - 1]
        + row
            .iter()
            .zip(WEIGHTS)
            .enumerate()
            .map(|(i, (x, w))| {
                let x = if x.is_nan() && i == 1 {
                    IMPUTE
                } else if x.is_nan() {
                    0.0
                } else {
                    f64::from(*x)
                };
                w * x
            })
            .sum::<f64>();
    (1.0 / (1.0 + (-z).exp())) as f32
}

/// A scorer serving versions 1 and 2 of the test model on loopback.
struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServerError>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_version(dir.path(), 1);
        write_version(dir.path(), 2);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ScoreConfig {
            models_dir: dir.path().to_owned(),
            // Not used by the Open Inference Protocol.
            preprocess: "http://127.0.0.1:1".into(),
            ..Default::default()
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(triad_score::serve(listener, None, config, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop,
            task,
            _dir: dir,
        }
    }

    async fn client(&self) -> GrpcInferenceServiceClient<Channel> {
        GrpcInferenceServiceClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    /// Sends the shutdown and waits for the server to stop by itself.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stops")
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
    }
}

fn fp32_input(name: &str, shape: Vec<i64>, values: Vec<f32>) -> InferInputTensor {
    InferInputTensor {
        name: name.to_owned(),
        datatype: "FP32".to_owned(),
        shape,
        parameters: Default::default(),
        contents: Some(InferTensorContents {
            fp32_contents: values,
            ..Default::default()
        }),
    }
}

fn infer_request(input: InferInputTensor) -> ModelInferRequest {
    ModelInferRequest {
        model_name: MODEL.to_owned(),
        id: "request-7".to_owned(),
        inputs: vec![input],
        ..Default::default()
    }
}

fn raw_request(name: &str, shape: Vec<i64>, values: &[f32]) -> ModelInferRequest {
    let mut input = fp32_input(name, shape, Vec::new());
    input.contents = None;
    let mut request = infer_request(input);
    request.raw_input_contents = vec![values.iter().flat_map(|v| v.to_le_bytes()).collect()];
    request
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

const ROWS: [[f32; 3]; 3] = [[1.0, 2.0, 0.5], [0.0, f32::NAN, -1.0], [-3.0, 0.25, 4.0]];

fn flat_rows() -> Vec<f32> {
    ROWS.iter().flatten().copied().collect()
}

fn assert_close(actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() < 1e-6, "{actual:?} vs {expected:?}");
    }
}

#[tokio::test]
async fn server_and_model_readiness_and_metadata() {
    let server = Server::start().await;
    let mut client = server.client().await;

    assert!(
        client
            .server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    assert!(
        client
            .server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let ready = |name: &str, version: &str| ModelReadyRequest {
        name: name.to_owned(),
        version: version.to_owned(),
    };
    for (name, version, expected) in [
        (MODEL, "", true),
        (MODEL, "1", true),
        (MODEL, "2", true),
        (MODEL, "3", false),
        (MODEL, "latest", false),
        ("unknown", "", false),
        ("", "", false),
    ] {
        let answer = client.model_ready(ready(name, version)).await.unwrap();
        assert_eq!(answer.into_inner().ready, expected, "{name:?} {version:?}");
    }

    let metadata = client
        .server_metadata(ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.name, "triad");
    assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
    assert!(metadata.extensions.is_empty());

    let metadata = client
        .model_metadata(ModelMetadataRequest {
            name: MODEL.to_owned(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.name, MODEL);
    assert_eq!(metadata.versions, ["1", "2"]);
    assert_eq!(metadata.platform, "triad_logistic");
    assert_eq!(metadata.inputs.len(), 1);
    assert_eq!(metadata.inputs[0].name, "features");
    assert_eq!(metadata.inputs[0].datatype, "FP32");
    assert_eq!(metadata.inputs[0].shape, [-1, 3]);
    let outputs: Vec<_> = metadata
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.datatype.as_str(), o.shape.clone()))
        .collect();
    assert_eq!(
        outputs,
        [
            ("probability", "FP32", vec![-1]),
            ("matched", "BOOL", vec![-1])
        ]
    );

    for (name, version) in [("unknown", ""), (MODEL, "9")] {
        let status = client
            .model_metadata(ModelMetadataRequest {
                name: name.to_owned(),
                version: version.to_owned(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }

    // Health reports the inference service too.
    triad_server::healthcheck(
        &format!("http://{}", server.addr),
        triad_score::oip::SERVICE_NAME,
        Duration::from_secs(5),
    )
    .await
    .unwrap();

    server.stop().await;
}

#[tokio::test]
async fn typed_and_raw_inputs_give_the_same_hand_computed_probabilities() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let expected_v2: Vec<f32> = ROWS.iter().map(|row| expected(2, row)).collect();

    let typed = client
        .model_infer(infer_request(fp32_input(
            "features",
            vec![3, 3],
            flat_rows(),
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(typed.model_name, MODEL);
    assert_eq!(typed.model_version, "2");
    assert_eq!(typed.id, "request-7");
    assert!(typed.raw_output_contents.is_empty());
    assert_eq!(typed.outputs.len(), 2);
    let probability = &typed.outputs[0];
    assert_eq!(
        (probability.name.as_str(), probability.datatype.as_str()),
        ("probability", "FP32")
    );
    assert_eq!(probability.shape, [3]);
    let typed_scores = probability.contents.as_ref().unwrap().fp32_contents.clone();
    assert_close(&typed_scores, &expected_v2);
    let matched = &typed.outputs[1];
    assert_eq!(
        (matched.name.as_str(), matched.datatype.as_str()),
        ("matched", "BOOL")
    );
    assert_eq!(matched.shape, [3]);
    let expected_matched: Vec<bool> = expected_v2.iter().map(|p| *p >= THRESHOLD).collect();
    assert_eq!(
        matched.contents.as_ref().unwrap().bool_contents,
        expected_matched
    );
    assert!(expected_matched.contains(&true) && expected_matched.contains(&false));

    // The same rows as raw little-endian bytes, under another input name:
    // the outputs come back raw, in the same order.
    let raw = client
        .model_infer(raw_request("input__0", vec![3, 3], &flat_rows()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(raw.model_version, "2");
    assert_eq!(raw.id, "request-7");
    assert_eq!(raw.raw_output_contents.len(), 2);
    assert!(raw.outputs.iter().all(|o| o.contents.is_none()));
    assert_eq!(raw.outputs[0].name, "probability");
    let raw_scores = f32s(&raw.raw_output_contents[0]);
    assert_eq!(
        raw_scores.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
        typed_scores.iter().map(|s| s.to_bits()).collect::<Vec<_>>()
    );
    let raw_matched: Vec<bool> = raw.raw_output_contents[1].iter().map(|b| *b == 1).collect();
    assert_eq!(raw_matched, expected_matched);

    // A pinned version, one row as a rank-1 tensor, and one output only.
    let mut request = infer_request(fp32_input("features", vec![3], ROWS[2].to_vec()));
    request.model_version = "1".to_owned();
    request.outputs = vec![InferRequestedOutputTensor {
        name: "probability".to_owned(),
        parameters: Default::default(),
    }];
    let one = client.model_infer(request).await.unwrap().into_inner();
    assert_eq!(one.model_version, "1");
    assert_eq!(one.outputs.len(), 1);
    assert_eq!(one.outputs[0].shape, [1]);
    assert_close(
        &one.outputs[0].contents.as_ref().unwrap().fp32_contents,
        &[expected(1, &ROWS[2])],
    );

    // Zero rows is a valid, empty batch.
    let empty = client
        .model_infer(infer_request(fp32_input(
            "features",
            vec![0, 3],
            Vec::new(),
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty.outputs[0].shape, [0]);

    server.stop().await;
}

#[tokio::test]
async fn invalid_requests_are_rejected_naming_the_input() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let values = flat_rows();

    let mut wrong_type = fp32_input("features", vec![3, 3], Vec::new());
    wrong_type.datatype = "FP64".to_owned();
    wrong_type.contents = Some(InferTensorContents {
        fp64_contents: values.iter().map(|v| f64::from(*v)).collect(),
        ..Default::default()
    });
    let mut short = raw_request("features", vec![3, 3], &values);
    short.raw_input_contents[0].truncate(9 * 4 - 4);
    let mut both = infer_request(fp32_input("features", vec![3, 3], values.clone()));
    both.raw_input_contents = vec![values.iter().flat_map(|v| v.to_le_bytes()).collect()];
    let huge = 1_i64 << 62;

    let cases = [
        (infer_request(wrong_type), "expected datatype FP32"),
        (
            infer_request(fp32_input("features", vec![3, 4], vec![0.0; 12])),
            "expected 3 features per row",
        ),
        (
            infer_request(fp32_input("features", vec![3, 3], values[..8].to_vec())),
            "expected 9 values in contents.fp32_contents",
        ),
        (short, "expected 36 bytes in raw_input_contents[0]"),
        (both, "got both"),
        (
            infer_request(fp32_input("features", vec![-1, 3], values.clone())),
            "expected non-negative dimensions",
        ),
        (
            infer_request(fp32_input("features", vec![huge, huge], values.clone())),
            "more values than can be counted",
        ),
        (
            infer_request(fp32_input("features", vec![huge, 3], values.clone())),
            "expected at most",
        ),
        (
            infer_request(fp32_input("features", vec![1, 3, 3], values.clone())),
            "expected shape [N, 3]",
        ),
        (
            infer_request(fp32_input(
                "features",
                vec![1, 3],
                vec![0.0, f32::INFINITY, 1.0],
            )),
            "expected finite values",
        ),
    ];
    for (request, expected) in cases {
        let status = client.model_infer(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().starts_with("input \"features\": "),
            "{status:?}"
        );
        assert!(status.message().contains(expected), "{status:?}");
    }

    // Whole-request mistakes.
    let mut two_inputs = infer_request(fp32_input("a", vec![1, 3], vec![0.0; 3]));
    two_inputs
        .inputs
        .push(fp32_input("b", vec![1, 3], vec![0.0; 3]));
    let mut unknown_output = infer_request(fp32_input("features", vec![1, 3], vec![0.0; 3]));
    unknown_output.outputs = vec![InferRequestedOutputTensor {
        name: "logits".to_owned(),
        parameters: Default::default(),
    }];
    for (request, expected) in [
        (two_inputs, "expected exactly one input tensor"),
        (unknown_output, "unknown output \"logits\""),
    ] {
        let status = client.model_infer(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(expected), "{status:?}");
    }

    let mut unknown_model = infer_request(fp32_input("features", vec![1, 3], vec![0.0; 3]));
    unknown_model.model_name = "unknown".to_owned();
    let mut unknown_version = infer_request(fp32_input("features", vec![1, 3], vec![0.0; 3]));
    unknown_version.model_version = "7".to_owned();
    for request in [unknown_model, unknown_version] {
        let status = client.model_infer(request).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }

    // The server still answers after all of that.
    client
        .model_infer(infer_request(fp32_input("features", vec![3, 3], values)))
        .await
        .unwrap();

    server.stop().await;
}

/// The calls of `docs/inference.md`: reflection lists the service with no
/// proto file at hand, and a `-d` JSON request scores typed rows.
#[tokio::test]
async fn grpcurl_lists_and_infers_as_documented() {
    let server = Server::start().await;
    let addr = server.addr.to_string();

    let Some(GrpcurlOutput {
        ok,
        stdout: out,
        stderr: err,
    }) = grpcurl(vec!["-plaintext".into(), addr.clone(), "list".into()], None).await
    else {
        server.stop().await;
        return;
    };
    assert!(ok, "{err}");
    assert!(
        out.lines().any(|l| l == "inference.GRPCInferenceService"),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "triad.v1.Scorer"), "{out}");

    let request = format!(
        r#"{{
          "model_name": "{MODEL}",
          "id": "r1",
          "inputs": [{{
            "name": "features",
            "datatype": "FP32",
            "shape": [2, 3],
            "contents": {{ "fp32_contents": [1, 2, 0.5, 0, "NaN", -1] }}
          }}]
        }}"#
    );
    let GrpcurlOutput {
        ok,
        stdout: out,
        stderr: err,
    } = grpcurl(
        vec![
            "-plaintext".into(),
            "-d".into(),
            request,
            addr,
            "inference.GRPCInferenceService/ModelInfer".into(),
        ],
        None,
    )
    .await
    .unwrap();
    assert!(ok, "{err}");
    let response: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(response["id"], "r1");
    assert_eq!(response["modelVersion"], "2");
    let scores: Vec<f32> = response["outputs"][0]["contents"]["fp32Contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_close(&scores, &[expected(2, &ROWS[0]), expected(2, &ROWS[1])]);

    server.stop().await;
}

#[tokio::test]
async fn a_gated_model_is_refused_saying_where_to_score_it() {
    // `judge`: a copy of the test model gated on it.
    let dir = tempfile::tempdir().unwrap();
    write_version(dir.path(), 1);
    let judge = dir.path().join("judge/1");
    std::fs::create_dir_all(&judge).unwrap();
    for file in ["model.toml", "model.json"] {
        std::fs::copy(
            dir.path().join(MODEL).join("1").join(file),
            judge.join(file),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("judge/serving.toml"),
        format!("gate = \"{MODEL}\"\n"),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = ScoreConfig {
        models_dir: dir.path().to_owned(),
        preprocess: "http://127.0.0.1:1".into(),
        ..Default::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(triad_score::serve(listener, None, config, async {
        let _ = stopped.await;
    }));
    let server = Server {
        addr,
        stop,
        task,
        _dir: dir,
    };
    let mut client = server.client().await;
    let mut request = infer_request(fp32_input("features", vec![3, 3], flat_rows()));
    request.model_name = "judge".to_owned();
    let status = client.model_infer(request).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("gated on"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("Score"), "{}", status.message());
    // Its gate model answers as ever.
    client
        .model_infer(infer_request(fp32_input(
            "features",
            vec![3, 3],
            flat_rows(),
        )))
        .await
        .unwrap();
    server.stop().await;
}
