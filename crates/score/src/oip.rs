//! The Open Inference Protocol (KServe V2, `inference.GRPCInferenceService`)
//! over the model repository, on the scorer's gRPC port, so Triton, KServe
//! and Seldon MLServer clients can call Triad's models directly.
//!
//! Every model has one input and two outputs:
//!
//! - input `features`, `FP32`, shape `[N, F]` (or `[F]` for one row): `N`
//!   rows of the model's own `F` features, in the order of its `model.toml`
//!   `features` list (also returned as `feature_names` by Triad's own
//!   `triad.v1.Scorer/ListModels`). The input may have any name; errors
//!   name it as sent. A NaN value means "missing" and is imputed by the
//!   model.
//! - output `probability`, `FP32`, shape `[N]`: the positive class's
//!   probability per row;
//! - output `matched`, `BOOL`, shape `[N]`: `probability >= threshold`, with
//!   the model version's threshold.
//!
//! `ModelInfer` validates the whole request before scoring anything; every
//! mismatch is `INVALID_ARGUMENT` naming the input and what was expected
//! against what was received:
//!
//! - exactly one input tensor, of datatype `FP32`;
//! - shape of rank 2 `[N, F]` or rank 1 `[F]`, no negative dimension;
//! - `N × F` (checked arithmetic, no overflow) at most the most FP32 values
//!   a message can carry (`max_message_bytes / 4`), and `N` at most
//!   `max_message_bytes / 8` rows, so the response fits a message too;
//! - `F` equal to the model's feature count;
//! - values in exactly one of `contents.fp32_contents` (exactly `N × F`
//!   values, no other typed field set) or `raw_input_contents[0]` (exactly
//!   one entry, of exactly `N × F × 4` bytes of little-endian FP32);
//! - no infinite value (NaN is fine: it is a missing value);
//! - when `outputs` is not empty: only `probability` and `matched`, each at
//!   most once; the response then holds just those, in the order asked.
//!
//! Names the client chose (model, version, input, output, datatype) are
//! echoed in messages at most [`MAX_ECHO_CHARS`] characters long, and a
//! shape of the wrong rank at most its first [`MAX_ECHO_DIMS`] dimensions,
//! so an error is never larger than a few hundred bytes whatever was sent.
//!
//! Models and versions are looked up as `Score` looks them up
//! ([`ModelSet::resolve`](crate::repository::ModelSet::resolve)): an
//! unknown model or version is `NOT_FOUND`; an empty version means the
//! serving one. Outputs come back in `contents` (`fp32_contents`,
//! `bool_contents`) unless the request sent its input as
//! `raw_input_contents`: then, as Triton does, they come back in
//! `raw_output_contents` (little-endian FP32; one byte, 0 or 1, per BOOL).
//! Request and tensor `parameters` are accepted and ignored.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use triad_proto::inference::grpc_inference_service_server::GrpcInferenceService;
use triad_proto::inference::model_infer_request::InferInputTensor;
use triad_proto::inference::model_infer_response::InferOutputTensor;
use triad_proto::inference::model_metadata_response::TensorMetadata;
use triad_proto::inference::{
    InferTensorContents, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
    ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse, ServerLiveRequest,
    ServerLiveResponse, ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest,
    ServerReadyResponse,
};

use crate::model::{LoadedModel, ModelError, ModelKind};
use crate::offload;
use crate::repository::{LookupError, Repository};

pub use triad_proto::inference::grpc_inference_service_server::{
    GrpcInferenceServiceServer, SERVICE_NAME,
};

/// The server name `ServerMetadata` reports.
pub const SERVER_NAME: &str = "triad";
/// The input tensor's name in `ModelMetadata`.
pub const INPUT: &str = "features";
/// The probability output.
pub const PROBABILITY: &str = "probability";
/// The thresholded output.
pub const MATCHED: &str = "matched";

const FP32: &str = "FP32";
const BOOL: &str = "BOOL";
const FP32_BYTES: usize = size_of::<f32>();
/// Longest client-chosen name echoed in an error message, in characters.
pub const MAX_ECHO_CHARS: usize = 64;
/// Most dimensions of a client's shape echoed in an error message.
pub const MAX_ECHO_DIMS: usize = 8;

/// The V2 platform name of a model kind.
pub fn platform(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Logistic => "triad_logistic",
        ModelKind::Onnx => "onnx_onnxv1",
    }
}

/// Why an Open Inference Protocol call failed; mapped to a gRPC status in
/// one place, below.
#[derive(Debug, thiserror::Error)]
pub enum OipError {
    /// The model or version asked for is not served (`NOT_FOUND`), worded
    /// as this protocol always has.
    #[error("{}", lookup_message(.0))]
    Lookup(#[from] LookupError),
    /// The input tensor does not match the model (`INVALID_ARGUMENT`).
    #[error("input {input:?}: {message}")]
    BadInput {
        /// The input's name as sent, cut to [`MAX_ECHO_CHARS`]
        /// characters.
        input: String,
        /// What was expected and what came.
        message: String,
    },
    /// The request as a whole is malformed: its inputs or outputs
    /// (`INVALID_ARGUMENT`).
    #[error("invalid inference request: {0}")]
    BadRequest(String),
    /// The model failed on the rows (`INTERNAL`).
    #[error("model {model:?} version {version} failed: {source}")]
    Model {
        /// The model's name as requested.
        model: String,
        /// The version that ran.
        version: String,
        /// What the model reported.
        source: Box<ModelError>,
    },
    /// The model is gated (`FAILED_PRECONDITION`): it judges only the
    /// pairs its gate model matched, and this protocol's rows carry only
    /// the model's own inputs, not its gate model's, so it cannot tell
    /// which rows to score; `Score` and `ScoreMatrix` can.
    #[error(
        "model {} is gated on {}: it scores only the pairs that model matched, and rows sent here carry only its own inputs; score them with triad.v1.Scorer/Score or ScoreMatrix, which run the gate",
        triad_server::quote(model),
        triad_server::quote(gate)
    )]
    Gated {
        /// The model's name as requested.
        model: String,
        /// Its gate model.
        gate: String,
    },
    /// The blocking task scoring a large input panicked or was cancelled
    /// (`INTERNAL`).
    #[error("inference task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<OipError> for Status {
    fn from(error: OipError) -> Self {
        use tonic::Code;
        let code = match &error {
            OipError::Lookup(_) => Code::NotFound,
            OipError::Gated { .. } => Code::FailedPrecondition,
            OipError::BadInput { .. } | OipError::BadRequest(_) => Code::InvalidArgument,
            OipError::Model { .. } | OipError::Task(_) => Code::Internal,
        };
        Status::new(code, error.to_string())
    }
}

/// The outputs a model produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Probability,
    Matched,
}

impl Output {
    const ALL: [Output; 2] = [Output::Probability, Output::Matched];

    fn name(self) -> &'static str {
        match self {
            Output::Probability => PROBABILITY,
            Output::Matched => MATCHED,
        }
    }

    fn datatype(self) -> &'static str {
        match self {
            Output::Probability => FP32,
            Output::Matched => BOOL,
        }
    }
}

/// A validated input: `n_rows` rows of the model's features, row-major.
#[derive(Debug, PartialEq)]
struct Rows {
    values: Vec<f32>,
    n_rows: usize,
    /// Whether the values came as `raw_input_contents`.
    raw: bool,
}

/// Handlers of `inference.GRPCInferenceService`.
#[derive(Debug, Clone)]
pub struct InferenceService {
    repository: Arc<Repository>,
    /// Most values (`N × F`) one input may hold.
    max_values: usize,
    /// Most rows one request may score.
    max_rows: usize,
}

impl InferenceService {
    /// Serves the models of `repository`, with input sizes bounded by what
    /// fits in messages of `max_message_bytes`.
    pub fn new(repository: Arc<Repository>, max_message_bytes: usize) -> Self {
        let (max_values, max_rows) = input_bounds(max_message_bytes);
        Self {
            repository,
            max_values,
            max_rows,
        }
    }
}

/// Most values (`N × F`) and most rows of one input, for messages of
/// `max_message_bytes`.
fn input_bounds(max_message_bytes: usize) -> (usize, usize) {
    // A row answers with 4 bytes of probability and 1 of matched.
    (
        max_message_bytes / FP32_BYTES,
        max_message_bytes / (2 * FP32_BYTES),
    )
}

/// Validates `request` as `ModelInfer` does before it scores anything, for
/// a model reading `features`, under the bounds that messages of
/// `max_message_bytes` set; returns the number of rows. The values are
/// taken out of the request. For the fuzz targets and property tests.
pub fn validate_request(
    request: &mut ModelInferRequest,
    features: &[String],
    max_message_bytes: usize,
) -> Result<usize, OipError> {
    requested_outputs(request)?;
    let (max_values, max_rows) = input_bounds(max_message_bytes);
    let rows = read_input(request, features, max_values, max_rows)?;
    Ok(rows.n_rows)
}

/// `text` cut to [`MAX_ECHO_CHARS`] characters, to echo in a message.
fn echo(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// `shape` for a message: at most [`MAX_ECHO_DIMS`] dimensions.
fn echo_shape(shape: &[i64]) -> String {
    if shape.len() <= MAX_ECHO_DIMS {
        format!("{shape:?}")
    } else {
        let shown: Vec<String> = shape[..MAX_ECHO_DIMS].iter().map(i64::to_string).collect();
        format!("[{}, …]", shown.join(", "))
    }
}

/// The version a V2 request names: an empty one means the serving one.
fn requested_version(version: &str) -> Option<&str> {
    (!version.is_empty()).then_some(version)
}

/// This protocol's wording of a failed lookup, as it has always been: the
/// scorer's words, but "this server", names cut by [`echo`] and lists
/// whole.
fn lookup_message(error: &LookupError) -> String {
    match error {
        LookupError::UnknownModel { name, served } => {
            format!(
                "no model named {:?}; this server serves {served:?}",
                echo(name)
            )
        }
        LookupError::UnknownVersion {
            model,
            version,
            loaded,
        } => format!(
            "model {:?} has no loaded version {:?}; loaded versions are {loaded:?}",
            echo(model),
            echo(version)
        ),
    }
}

/// The outputs asked for, in order; every output when none are.
fn requested_outputs(request: &ModelInferRequest) -> Result<Vec<Output>, OipError> {
    if request.outputs.is_empty() {
        return Ok(Output::ALL.to_vec());
    }
    let mut outputs = Vec::with_capacity(request.outputs.len());
    for requested in &request.outputs {
        let output = Output::ALL
            .into_iter()
            .find(|output| output.name() == requested.name)
            .ok_or_else(|| {
                OipError::BadRequest(format!(
                    "unknown output {:?}; expected {PROBABILITY:?} or {MATCHED:?}",
                    echo(&requested.name)
                ))
            })?;
        if outputs.contains(&output) {
            return Err(OipError::BadRequest(format!(
                "output {:?} is requested more than once",
                echo(&requested.name)
            )));
        }
        outputs.push(output);
    }
    Ok(outputs)
}

/// The typed `contents` fields that hold values.
fn filled_fields(contents: &InferTensorContents) -> Vec<&'static str> {
    [
        ("bool_contents", contents.bool_contents.is_empty()),
        ("int_contents", contents.int_contents.is_empty()),
        ("int64_contents", contents.int64_contents.is_empty()),
        ("uint_contents", contents.uint_contents.is_empty()),
        ("uint64_contents", contents.uint64_contents.is_empty()),
        ("fp32_contents", contents.fp32_contents.is_empty()),
        ("fp64_contents", contents.fp64_contents.is_empty()),
        ("bytes_contents", contents.bytes_contents.is_empty()),
    ]
    .into_iter()
    .filter_map(|(name, empty)| (!empty).then_some(name))
    .collect()
}

/// Validates the request's one input against a model reading `features`
/// and takes its values; nothing is read unless its size is right.
fn read_input(
    request: &mut ModelInferRequest,
    features: &[String],
    max_values: usize,
    max_rows: usize,
) -> Result<Rows, OipError> {
    let n_features = features.len();
    if request.inputs.len() != 1 {
        return Err(OipError::BadRequest(format!(
            "expected exactly one input tensor ({INPUT:?}, {FP32} [N, {n_features}]), got {}",
            request.inputs.len()
        )));
    }
    let raw_entries = std::mem::take(&mut request.raw_input_contents);
    let input: &mut InferInputTensor = &mut request.inputs[0];
    let bad = |message: String| OipError::BadInput {
        input: echo(&input.name),
        message,
    };

    if input.datatype != FP32 {
        return Err(bad(format!(
            "expected datatype {FP32}, got {:?}",
            echo(&input.datatype)
        )));
    }
    let shape = &input.shape;
    let (rows, cols) = match shape.as_slice() {
        [cols] => (1, *cols),
        [rows, cols] => (*rows, *cols),
        _ => {
            return Err(bad(format!(
                "expected shape [N, {n_features}] (or [{n_features}] for one row), got {} (rank {})",
                echo_shape(shape),
                shape.len()
            )));
        }
    };
    let (Ok(n_rows), Ok(n_cols)) = (usize::try_from(rows), usize::try_from(cols)) else {
        return Err(bad(format!(
            "expected non-negative dimensions, got shape {shape:?}"
        )));
    };
    let n_values = n_rows.checked_mul(n_cols).ok_or_else(|| {
        bad(format!(
            "shape {shape:?} holds more values than can be counted; expected at most {max_values} values"
        ))
    })?;
    if n_values > max_values {
        return Err(bad(format!(
            "shape {shape:?} holds {n_values} values; expected at most {max_values}"
        )));
    }
    if n_rows > max_rows {
        return Err(bad(format!(
            "shape {shape:?} has {n_rows} rows; expected at most {max_rows}"
        )));
    }
    if n_cols != n_features {
        return Err(bad(format!(
            "expected {n_features} features per row, shape [N, {n_features}] (or [{n_features}] for one row), got shape {shape:?}"
        )));
    }

    let filled = input
        .contents
        .as_ref()
        .map(filled_fields)
        .unwrap_or_default();
    let (values, raw) = match raw_entries.as_slice() {
        [] => {
            if let Some(other) = filled.iter().find(|field| **field != "fp32_contents") {
                return Err(bad(format!(
                    "expected {FP32} values in contents.fp32_contents, got contents.{other}"
                )));
            }
            let values = input
                .contents
                .as_mut()
                .map(|contents| std::mem::take(&mut contents.fp32_contents))
                .unwrap_or_default();
            if values.len() != n_values {
                return Err(bad(format!(
                    "expected {n_values} values in contents.fp32_contents ({n_rows} rows x {n_features} features), got {}",
                    values.len()
                )));
            }
            (values, false)
        }
        [bytes] => {
            if !filled.is_empty() {
                return Err(bad(format!(
                    "expected its values in either raw_input_contents or contents, got both (contents.{})",
                    filled.join(", contents.")
                )));
            }
            let n_bytes = n_values.checked_mul(FP32_BYTES).ok_or_else(|| {
                bad(format!(
                    "shape {shape:?} holds more bytes than can be counted"
                ))
            })?;
            if bytes.len() != n_bytes {
                return Err(bad(format!(
                    "expected {n_bytes} bytes in raw_input_contents[0] ({n_rows} rows x {n_features} features x {FP32_BYTES} bytes of little-endian {FP32}), got {}",
                    bytes.len()
                )));
            }
            let (chunks, _) = bytes.as_chunks::<FP32_BYTES>();
            (
                chunks.iter().copied().map(f32::from_le_bytes).collect(),
                true,
            )
        }
        entries => {
            return Err(OipError::BadRequest(format!(
                "expected one raw_input_contents entry per input (1), got {}",
                entries.len()
            )));
        }
    };

    if let Some(at) = values.iter().position(|value| value.is_infinite()) {
        let (row, col) = (at / n_features.max(1), at % n_features.max(1));
        return Err(bad(format!(
            "expected finite values (or NaN for a missing value), got {} at row {row}, feature {:?}",
            values[at],
            features.get(col).map_or("?", String::as_str)
        )));
    }
    Ok(Rows {
        values,
        n_rows,
        raw,
    })
}

/// Scores `rows` with `model`: one probability per row.
fn predict(model: &LoadedModel, name: &str, rows: &Rows) -> Result<Vec<f32>, OipError> {
    let mut scores = Vec::new();
    if rows.n_rows == 0 {
        return Ok(scores);
    }
    let failed = |source| OipError::Model {
        model: name.to_owned(),
        version: model.version.clone(),
        source: Box::new(source),
    };
    model
        .model
        .predict(&rows.values, rows.n_rows, &mut scores)
        .map_err(failed)?;
    if scores.len() != rows.n_rows {
        return Err(failed(ModelError::Run {
            rows: rows.n_rows,
            message: format!("expected one score per row, got {}", scores.len()),
        }));
    }
    Ok(scores)
}

/// A tensor dimension as the wire has it.
fn dim(size: usize) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// The response tensors: typed contents, or raw bytes when `raw`.
fn outputs(
    wanted: &[Output],
    scores: &[f32],
    threshold: f32,
    raw: bool,
) -> (Vec<InferOutputTensor>, Vec<Vec<u8>>) {
    let mut tensors = Vec::with_capacity(wanted.len());
    let mut raw_contents = Vec::new();
    for &output in wanted {
        let mut contents = InferTensorContents::default();
        match (output, raw) {
            (Output::Probability, false) => contents.fp32_contents = scores.to_vec(),
            (Output::Matched, false) => {
                contents.bool_contents = scores.iter().map(|s| *s >= threshold).collect();
            }
            (Output::Probability, true) => {
                raw_contents.push(scores.iter().flat_map(|s| s.to_le_bytes()).collect());
            }
            (Output::Matched, true) => {
                raw_contents.push(scores.iter().map(|s| u8::from(*s >= threshold)).collect());
            }
        }
        tensors.push(InferOutputTensor {
            name: output.name().to_owned(),
            datatype: output.datatype().to_owned(),
            shape: vec![dim(scores.len())],
            parameters: Default::default(),
            contents: (!raw).then_some(contents),
        });
    }
    (tensors, raw_contents)
}

impl InferenceService {
    async fn infer(&self, mut request: ModelInferRequest) -> Result<ModelInferResponse, OipError> {
        let models = self.repository.snapshot();
        let (served, model) = models.resolve(
            &request.model_name,
            requested_version(&request.model_version),
        )?;
        if let Some(gate) = &served.gate {
            return Err(OipError::Gated {
                model: request.model_name.clone(),
                gate: gate.clone(),
            });
        }
        let model = Arc::clone(model);
        let wanted = requested_outputs(&request)?;
        let rows = read_input(
            &mut request,
            &model.meta.features,
            self.max_values,
            self.max_rows,
        )?;
        let name = request.model_name.clone();
        let (scores, rows) = offload::run(rows.values.len(), {
            let (model, name) = (Arc::clone(&model), name.clone());
            move || predict(&model, &name, &rows).map(|scores| (scores, rows))
        })
        .await??;
        tracing::info!(
            model = name,
            version = model.version,
            rows = rows.n_rows,
            raw = rows.raw,
            "inferred"
        );
        let (outputs, raw_output_contents) =
            outputs(&wanted, &scores, model.meta.threshold, rows.raw);
        Ok(ModelInferResponse {
            model_name: request.model_name,
            model_version: model.version.clone(),
            id: request.id,
            parameters: Default::default(),
            outputs,
            raw_output_contents,
        })
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for InferenceService {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        let ready = !self.repository.snapshot().models.is_empty();
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let request = request.into_inner();
        let models = self.repository.snapshot();
        let ready = models
            .resolve(&request.name, requested_version(&request.version))
            .is_ok();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: SERVER_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            extensions: Vec::new(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let request = request.into_inner();
        let models = self.repository.snapshot();
        let (served, model) = models
            .resolve(&request.name, requested_version(&request.version))
            .map_err(OipError::from)?;
        let tensor = |name: &str, datatype: &str, shape: Vec<i64>| TensorMetadata {
            name: name.to_owned(),
            datatype: datatype.to_owned(),
            shape,
        };
        Ok(Response::new(ModelMetadataResponse {
            name: served.name.clone(),
            versions: served.versions.keys().map(u64::to_string).collect(),
            platform: platform(model.meta.kind).to_owned(),
            inputs: vec![tensor(
                INPUT,
                FP32,
                vec![-1, dim(model.meta.features.len())],
            )],
            outputs: Output::ALL
                .into_iter()
                .map(|output| tensor(output.name(), output.datatype(), vec![-1]))
                .collect(),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let response = self.infer(request.into_inner()).await?;
        Ok(Response::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::ModelSet;
    use triad_proto::inference::model_infer_request::InferRequestedOutputTensor;

    fn features(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i}")).collect()
    }

    fn request(shape: Vec<i64>, values: Vec<f32>) -> ModelInferRequest {
        ModelInferRequest {
            inputs: vec![InferInputTensor {
                name: "x".to_owned(),
                datatype: FP32.to_owned(),
                shape,
                parameters: Default::default(),
                contents: Some(InferTensorContents {
                    fp32_contents: values,
                    ..Default::default()
                }),
            }],
            ..Default::default()
        }
    }

    fn error(mut request: ModelInferRequest, n_features: usize) -> String {
        match read_input(&mut request, &features(n_features), 1 << 20, 1 << 19) {
            Ok(rows) => panic!("expected an error, got {rows:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn reads_typed_and_raw_values_alike() {
        let values = vec![1.0, 2.0, 3.0, 4.0, f32::NAN, 6.0];
        let mut typed = request(vec![2, 3], values.clone());
        let rows = read_input(&mut typed, &features(3), 100, 100).unwrap();
        assert_eq!((rows.n_rows, rows.raw), (2, false));

        let mut raw = request(vec![2, 3], Vec::new());
        raw.raw_input_contents = vec![values.iter().flat_map(|v| v.to_le_bytes()).collect()];
        let raw_rows = read_input(&mut raw, &features(3), 100, 100).unwrap();
        assert_eq!((raw_rows.n_rows, raw_rows.raw), (2, true));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&rows.values), bits(&raw_rows.values));

        let mut one_row = request(vec![3], vec![1.0, 2.0, 3.0]);
        assert_eq!(
            read_input(&mut one_row, &features(3), 100, 100)
                .unwrap()
                .n_rows,
            1
        );
        let mut empty = request(vec![0, 3], Vec::new());
        assert_eq!(
            read_input(&mut empty, &features(3), 100, 100)
                .unwrap()
                .n_rows,
            0
        );
    }

    #[test]
    fn overflowing_shapes_are_rejected_without_panicking() {
        let huge = 1_i64 << 62;
        let message = error(request(vec![huge, huge], vec![1.0]), 3);
        assert!(
            message.contains("more values than can be counted"),
            "{message}"
        );
        // Even when the width matches a (huge) feature count.
        let mut matching = request(vec![huge, huge], vec![1.0]);
        let result = read_input(&mut matching, &features(0), 100, 100);
        assert!(result.is_err());
        let message = error(request(vec![i64::MAX, 3], vec![1.0]), 3);
        assert!(message.contains("more values"), "{message}");
        let message = error(request(vec![huge, 3], vec![1.0]), 3);
        assert!(message.contains("expected at most"), "{message}");
    }

    #[test]
    fn zero_width_models_still_bound_the_rows() {
        let message = error(request(vec![1 << 40, 0], Vec::new()), 0);
        assert!(message.contains("rows; expected at most"), "{message}");
    }

    #[test]
    fn every_mismatch_names_the_input() {
        let mut wrong_type = request(vec![1, 3], vec![1.0, 2.0, 3.0]);
        wrong_type.inputs[0].datatype = "FP64".to_owned();
        let cases = [
            (wrong_type, "expected datatype FP32, got \"FP64\""),
            (request(vec![1, 1, 3], vec![0.0; 3]), "rank 3"),
            (request(vec![-1, 3], vec![0.0; 3]), "non-negative"),
            (request(vec![1, 4], vec![0.0; 4]), "expected 3 features"),
            (request(vec![2, 3], vec![0.0; 5]), "expected 6 values"),
            (
                request(vec![1, 3], vec![1.0, f32::INFINITY, 0.0]),
                "got inf at row 0, feature \"f1\"",
            ),
        ];
        for (request, expected) in cases {
            let message = error(request, 3);
            assert!(message.starts_with("input \"x\": "), "{message}");
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn raw_and_typed_contents_are_exclusive_and_sized() {
        let mut both = request(vec![1, 3], vec![1.0, 2.0, 3.0]);
        both.raw_input_contents = vec![vec![0; 12]];
        assert!(error(both, 3).contains("got both"));

        let mut short = request(vec![1, 3], Vec::new());
        short.raw_input_contents = vec![vec![0; 8]];
        assert!(error(short, 3).contains("expected 12 bytes"));

        let mut two = request(vec![1, 3], Vec::new());
        two.raw_input_contents = vec![vec![0; 12], vec![0; 12]];
        assert!(error(two, 3).contains("one raw_input_contents entry per input"));

        let mut ints = request(vec![1, 3], Vec::new());
        ints.inputs[0].contents = Some(InferTensorContents {
            int_contents: vec![1, 2, 3],
            ..Default::default()
        });
        assert!(error(ints, 3).contains("got contents.int_contents"));
    }

    #[test]
    fn requested_outputs_are_checked() {
        let mut request = ModelInferRequest::default();
        assert_eq!(requested_outputs(&request).unwrap(), Output::ALL);
        let ask = |name: &str| InferRequestedOutputTensor {
            name: name.to_owned(),
            parameters: Default::default(),
        };
        request.outputs = vec![ask(MATCHED)];
        assert_eq!(requested_outputs(&request).unwrap(), [Output::Matched]);
        request.outputs = vec![ask("logits")];
        assert!(requested_outputs(&request).is_err());
        request.outputs = vec![ask(MATCHED), ask(MATCHED)];
        assert!(requested_outputs(&request).is_err());
    }

    #[test]
    fn echoed_names_and_shapes_are_bounded() {
        let long = "é".repeat(100_000);
        let mut named = request(vec![1, 1, 3], vec![0.0; 3]);
        named.inputs[0].name = long.clone();
        named.inputs[0].datatype = long.clone();
        let message = error(named.clone(), 3);
        assert!(message.len() < 400, "{} bytes: {message}", message.len());
        assert!(message.starts_with(&format!("input \"{}…\"", "é".repeat(MAX_ECHO_CHARS))));
        named.inputs[0].datatype = FP32.to_owned();
        named.inputs[0].shape = vec![7; 1_000_000];
        let message = error(named, 3);
        assert!(message.len() < 500, "{} bytes", message.len());
        assert!(
            message.contains("got [7, 7, 7, 7, 7, 7, 7, 7, …] (rank 1000000)"),
            "{message}"
        );

        let outputs = ModelInferRequest {
            outputs: vec![InferRequestedOutputTensor {
                name: long.clone(),
                parameters: Default::default(),
            }],
            ..Default::default()
        };
        let message = requested_outputs(&outputs).unwrap_err().to_string();
        assert!(message.len() < 300, "{} bytes", message.len());

        let models = ModelSet::default();
        let message = OipError::from(models.resolve(&long, None).unwrap_err()).to_string();
        assert!(message.len() < 300, "{} bytes", message.len());
    }

    #[test]
    fn lookups_keep_this_protocols_wording() {
        let model = OipError::from(LookupError::UnknownModel {
            name: "x".to_owned(),
            served: vec!["a".to_owned()],
        });
        assert_eq!(
            model.to_string(),
            "no model named \"x\"; this server serves [\"a\"]"
        );
        let version = OipError::from(LookupError::UnknownVersion {
            model: "a".to_owned(),
            version: "9".to_owned(),
            loaded: vec!["1".to_owned(), "2".to_owned()],
        });
        assert_eq!(
            version.to_string(),
            "model \"a\" has no loaded version \"9\"; loaded versions are [\"1\", \"2\"]"
        );
        assert_eq!(Status::from(version).code(), tonic::Code::NotFound);
    }

    #[test]
    fn validate_request_uses_the_service_bounds() {
        // 64 bytes: 16 values, 8 rows.
        let mut ok = request(vec![8, 2], vec![0.0; 16]);
        assert_eq!(validate_request(&mut ok, &features(2), 64).unwrap(), 8);
        let mut too_many_values = request(vec![4, 5], vec![0.0; 20]);
        let message = validate_request(&mut too_many_values, &features(5), 64)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("holds 20 values; expected at most 16"),
            "{message}"
        );
        let mut too_many_rows = request(vec![9, 1], vec![0.0; 9]);
        let message = validate_request(&mut too_many_rows, &features(1), 64)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("has 9 rows; expected at most 8"),
            "{message}"
        );
    }

    mod properties {
        //! Twin of `fuzz/fuzz_targets/oip_infer.rs`: arbitrary bytes and
        //! arbitrary requests through decoding and validation.
        use super::*;
        use proptest::prelude::*;
        use prost::Message;

        /// A validated request's shape agrees with its values.
        fn check(mut request: ModelInferRequest, n_features: usize) -> Result<(), TestCaseError> {
            let before = request.clone();
            match validate_request(&mut request, &features(n_features), 4096) {
                Ok(n_rows) => {
                    prop_assert!(n_rows <= 4096 / 8);
                    let input = &before.inputs[0];
                    let n_values = n_rows * n_features;
                    let typed = input.contents.as_ref().map_or(0, |c| c.fp32_contents.len());
                    let raw = before.raw_input_contents.first().map_or(0, Vec::len);
                    prop_assert!(
                        (typed == n_values && before.raw_input_contents.is_empty())
                            || (raw == n_values * 4 && typed == 0)
                    );
                }
                Err(error) => {
                    let status = Status::from(error);
                    prop_assert_eq!(status.code(), tonic::Code::InvalidArgument);
                    prop_assert!(status.message().len() < 1024, "{}", status.message().len());
                }
            }
            Ok(())
        }

        fn shape() -> impl Strategy<Value = Vec<i64>> {
            prop::collection::vec(
                prop_oneof![0i64..6, any::<i64>(), Just(i64::MAX), Just(1 << 62)],
                0..4,
            )
        }

        fn infer_request() -> impl Strategy<Value = ModelInferRequest> {
            (
                shape(),
                prop::collection::vec(
                    prop_oneof![any::<f32>(), Just(f32::NAN), Just(f32::INFINITY)],
                    0..24,
                ),
                prop::collection::vec(any::<u8>(), 0..96),
                0u8..4,
                prop_oneof![Just(FP32.to_owned()), "[A-Z0-9]{0,5}"],
            )
                .prop_map(|(shape, values, raw, layout, datatype)| {
                    let mut request = request(shape, values);
                    request.inputs[0].datatype = datatype;
                    match layout {
                        0 => {}
                        1 => {
                            request.inputs[0].contents = None;
                            request.raw_input_contents = vec![raw];
                        }
                        2 => request.raw_input_contents = vec![raw.clone(), raw],
                        _ => request.inputs.push(request.inputs[0].clone()),
                    }
                    request
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn arbitrary_bytes_decode_and_validate_without_panicking(
                bytes in prop::collection::vec(any::<u8>(), 0..256),
                n_features in 0usize..5,
            ) {
                if let Ok(request) = ModelInferRequest::decode(bytes.as_slice()) {
                    check(request, n_features)?;
                }
            }

            #[test]
            fn arbitrary_requests_validate_without_panicking(
                request in infer_request(),
                n_features in 0usize..5,
            ) {
                // Also through the wire, as a client would send it.
                let decoded = ModelInferRequest::decode(request.encode_to_vec().as_slice()).unwrap();
                check(decoded, n_features)?;
                check(request, n_features)?;
            }
        }
    }

    #[test]
    fn raw_outputs_are_little_endian() {
        let (tensors, raw) = outputs(&Output::ALL, &[0.25, 0.75], 0.5, true);
        assert!(tensors.iter().all(|t| t.contents.is_none()));
        assert_eq!(raw[0][..4], 0.25_f32.to_le_bytes());
        assert_eq!(raw[1], [0, 1]);
        let (tensors, raw) = outputs(&[Output::Matched], &[0.25, 0.75], 0.5, false);
        assert!(raw.is_empty());
        assert_eq!(
            tensors[0].contents.as_ref().unwrap().bool_contents,
            [false, true]
        );
    }
}
