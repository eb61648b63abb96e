//! ONNX models (`kind = "onnx"`), run with tract (pure Rust, no native
//! runtime): typically a scikit-learn classifier exported by skl2onnx with
//! `zipmap=False`, whose outputs are `label` and `probabilities` [N, classes].
//!
//! At load the graph's single input is typed `f32 [N, n_inputs]` with `N` a
//! symbol, so one optimised plan serves every batch size. The scores are
//! column 1 (the positive class) of the output named
//! [`PROBABILITIES_OUTPUT`] or, when no output has that name, of the second
//! output (skl2onnx's classifiers put the label first and the probabilities
//! second). The other outputs are pruned from the plan, so the label's
//! arg-max is never computed.
//!
//! Tree ensembles: tract 0.23 parses `TreeEnsembleClassifier` (ai.onnx.ml)
//! into its own op, but that op's kernel costs O(trees × leaves) per row (it
//! reaches a leaf's weights by stepping an ndarray iterator from the first
//! leaf of the whole ensemble) and builds an error value at every leaf it
//! reaches (it decodes "is this a branch?" through a failing `TryFrom`, which
//! also captures a backtrace when `RUST_BACKTRACE` is set): about 0.2 ms per
//! row for 100 trees of 8 leaves, some 150 times onnxruntime. By default
//! ([`TreeKernel::Native`]) the optimised plan keeps every node tract built
//! except that kernel, which is swapped for [`TreeEnsembleSums`]: the same
//! per-class sums from the same parsed trees, added in the same order, so the
//! output is bit for bit tract's (checked by `tests/it/onnx_parity.rs`).
//! [`TreeKernel::Tract`] keeps tract's own kernel, for comparison.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{EvalContext, EvalOp, Op, StaticName, bail};
use tract_onnx::tract_hir::infer::GenericFactoid;
use tract_onnx_opl::ml::tree::{Aggregate, TreeEnsemble};
use tract_onnx_opl::ml::tree_ensemble_classifier::TreeEnsembleClassifier;

use super::{Model, ModelError};

/// File name of an ONNX model inside its version directory.
pub const MODEL_FILE: &str = "model.onnx";

/// Name of the probability output skl2onnx gives classifiers.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";

/// Column of the positive class in the probability output.
const POSITIVE_CLASS: usize = 1;

/// Which kernel evaluates `TreeEnsembleClassifier` nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TreeKernel {
    /// [`TreeEnsembleSums`]: linear in the path length (the default).
    #[default]
    Native,
    /// tract's own kernel (slow, see the module doc); for comparison.
    Tract,
}

/// An ONNX model optimised into a runnable plan.
pub struct OnnxModel {
    plan: Arc<TypedSimplePlan>,
    n_inputs: usize,
    /// Columns of the probability output.
    n_classes: usize,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("n_inputs", &self.n_inputs)
            .field("n_classes", &self.n_classes)
            .finish_non_exhaustive()
    }
}

impl OnnxModel {
    /// Loads the ONNX graph at `path`, types its input as `f32 [N, n_inputs]`
    /// and optimises it into a plan for any `N`.
    pub fn load(path: &Path, n_inputs: usize) -> Result<Self, ModelError> {
        Self::load_with(path, n_inputs, TreeKernel::default())
    }

    /// [`OnnxModel::load`] with a choice of tree-ensemble kernel.
    pub fn load_with(path: &Path, n_inputs: usize, kernel: TreeKernel) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes, n_inputs, kernel).map_err(|message| ModelError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Builds the plan from the bytes of an ONNX file.
    pub fn from_bytes(bytes: &[u8], n_inputs: usize, kernel: TreeKernel) -> Result<Self, String> {
        if n_inputs == 0 {
            return Err("expected a model reading at least one feature, got 0".to_owned());
        }
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|error| format!("cannot parse the onnx graph: {error:#}"))?;

        let n_graph_inputs = model.input_outlets().map_err(display)?.len();
        if n_graph_inputs != 1 {
            return Err(format!(
                "expected an onnx graph with one input, got {n_graph_inputs}"
            ));
        }
        check_declared_input(model.input_fact(0).map_err(display)?, n_inputs)?;
        let batch = model.sym("N");
        model
            .set_input_fact(
                0,
                f32::fact([TDim::from(batch), TDim::from(n_inputs as i64)]).into(),
            )
            .map_err(display)?;

        let outputs = model.output_outlets().map_err(display)?.to_vec();
        let labels: Vec<&str> = outputs
            .iter()
            .map(|&outlet| model.outlet_label(outlet).unwrap_or("?"))
            .collect();
        let probabilities = outputs
            .iter()
            .position(|&outlet| model.outlet_label(outlet) == Some(PROBABILITIES_OUTPUT))
            .or(if outputs.len() >= 2 { Some(1) } else { None })
            .ok_or_else(|| {
                format!(
                    "expected an output named {PROBABILITIES_OUTPUT:?} or a second output, got outputs {labels:?}"
                )
            })?;
        model
            .select_output_outlets(&[outputs[probabilities]])
            .map_err(display)?;

        let mut typed = model.into_optimized().map_err(|error| {
            format!("cannot type the graph for f32 input [N, {n_inputs}]: {error:#}")
        })?;
        if kernel == TreeKernel::Native {
            swap_tree_kernels(&mut typed)?;
        }
        let fact = typed.output_fact(0).map_err(display)?;
        let n_classes = (fact.datum_type == DatumType::F32 && fact.rank() == 2)
            .then(|| fact.shape[1].as_i64())
            .flatten()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > POSITIVE_CLASS);
        let Some(n_classes) = n_classes else {
            return Err(format!(
                "expected the probability output to be f32 [N, classes] with at least 2 classes, got {fact:?}"
            ));
        };
        let plan = typed
            .into_runnable()
            .map_err(|error| format!("cannot plan the graph: {error:#}"))?;
        Ok(Self {
            plan,
            n_inputs,
            n_classes,
        })
    }

    /// Number of inputs (columns) a row has.
    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    /// Number of tree ensembles the plan runs with [`TreeEnsembleSums`].
    pub fn native_tree_kernels(&self) -> usize {
        self.plan
            .model()
            .nodes()
            .iter()
            .filter(|node| node.op_as::<TreeEnsembleSums>().is_some())
            .count()
    }
}

impl Model for OnnxModel {
    fn predict(&self, input: &[f32], n_rows: usize, out: &mut Vec<f32>) -> Result<(), ModelError> {
        let run_error = |message: String| ModelError::Run {
            rows: n_rows,
            message,
        };
        let expected = n_rows.checked_mul(self.n_inputs);
        if expected != Some(input.len()) {
            return Err(run_error(format!(
                "expected {} values ({n_rows} rows x {} inputs), got {}",
                expected.map_or_else(|| "too many".to_owned(), |n| n.to_string()),
                self.n_inputs,
                input.len()
            )));
        }
        out.clear();
        if n_rows == 0 {
            return Ok(());
        }
        let tensor = Tensor::from_shape(&[n_rows, self.n_inputs], input)
            .map_err(|error| run_error(format!("cannot build the input tensor: {error:#}")))?;
        let outputs = self
            .plan
            .run(tvec!(tensor.into()))
            .map_err(|error| run_error(format!("{error:#}")))?;
        let probabilities = outputs
            .first()
            .ok_or_else(|| run_error("expected one output, got none".to_owned()))?;
        let view = probabilities
            .to_plain_array_view::<f32>()
            .map_err(|error| run_error(format!("cannot read the probabilities: {error:#}")))?;
        if view.shape() != [n_rows, self.n_classes] {
            return Err(run_error(format!(
                "expected probabilities of shape [{n_rows}, {}], got {:?}",
                self.n_classes,
                view.shape()
            )));
        }
        out.reserve(n_rows);
        out.extend(
            view.index_axis(tract_ndarray::Axis(1), POSITIVE_CLASS)
                .iter()
                .copied(),
        );
        Ok(())
    }
}

/// Checks what the graph declares about its input (each part it leaves open
/// is accepted) against `f32 [N, n_inputs]`: tract would otherwise let a
/// tree ensemble read only the first columns of a wider row.
fn check_declared_input(declared: &InferenceFact, n_inputs: usize) -> Result<(), String> {
    if let GenericFactoid::Only(datum_type) = declared.datum_type
        && datum_type != DatumType::F32
    {
        return Err(format!(
            "expected an onnx graph with an f32 input, got {datum_type:?}"
        ));
    }
    if let GenericFactoid::Only(rank) = declared.shape.rank()
        && rank != 2
    {
        return Err(format!(
            "expected an onnx graph input of rank 2 [rows, features], got rank {rank}"
        ));
    }
    if let Some(GenericFactoid::Only(width)) = declared.shape.dim(1)
        && let Some(width) = width.as_i64()
        && usize::try_from(width).ok() != Some(n_inputs)
    {
        return Err(format!(
            "expected an onnx graph input of {n_inputs} columns (the features in model.toml), got {width}"
        ));
    }
    Ok(())
}

/// Renders a tract error with its causes.
fn display(error: TractError) -> String {
    format!("{error:#}")
}

/// Replaces the kernel of every tree ensemble tract built with
/// [`TreeEnsembleSums`]; ensembles it does not cover keep tract's.
fn swap_tree_kernels(model: &mut TypedModel) -> Result<(), String> {
    for id in 0..model.nodes().len() {
        let Some(op) = model.node(id).op_as::<TreeEnsembleClassifier>() else {
            continue;
        };
        let sums = TreeEnsembleSums::from_tract(&op.ensemble).map_err(|error| {
            format!(
                "cannot read tree ensemble {:?}: {error}",
                model.node(id).name
            )
        })?;
        if let Some(sums) = sums {
            model.node_mut(id).op = Box::new(sums);
        }
    }
    Ok(())
}

/// How a branch compares its feature `x` with its threshold `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Equal,
    NotEqual,
    Less,
    Greater,
    LessEqual,
    GreaterEqual,
}

impl Compare {
    /// Decodes tract's comparator byte (`tract_onnx_opl::ml::tree::Cmp`);
    /// 0 marks a leaf.
    fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Compare::Equal,
            2 => Compare::NotEqual,
            3 => Compare::Less,
            4 => Compare::Greater,
            5 => Compare::LessEqual,
            6 => Compare::GreaterEqual,
            _ => return None,
        })
    }

    #[inline]
    fn holds(self, x: f32, t: f32) -> bool {
        match self {
            Compare::Equal => x == t,
            Compare::NotEqual => x != t,
            Compare::Less => x < t,
            Compare::Greater => x > t,
            Compare::LessEqual => x <= t,
            Compare::GreaterEqual => x >= t,
        }
    }
}

/// A tree node: a branch, or a leaf's range of (class, weight) votes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TreeNode {
    Branch {
        feature: u32,
        threshold: f32,
        compare: Compare,
        /// Where a NaN feature goes (`nodes_missing_value_tracks_true`).
        nan_is_true: bool,
        if_true: u32,
        if_false: u32,
    },
    Leaf {
        start: u32,
        end: u32,
    },
}

/// A tree-ensemble kernel over the trees tract parsed: for each row, the sum
/// per class of the votes of the leaf each tree reaches, trees in order,
/// from 0 — exactly what tract's kernel computes with the `SUM` aggregate.
/// The base values and post transform stay in tract's graph around it.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeEnsembleSums {
    /// Root node of each tree.
    roots: Vec<u32>,
    nodes: Vec<TreeNode>,
    /// (class, weight) votes of the leaves.
    votes: Vec<(u32, f32)>,
    n_classes: usize,
    /// Smallest number of columns a row must have.
    min_features: usize,
}

impl Eq for TreeEnsembleSums {}

impl TreeEnsembleSums {
    /// Reads tract's parsed ensemble (layout documented on
    /// `tract_onnx_opl::ml::tree::TreeEnsembleData`); `None` for an
    /// aggregate other than `SUM`, which this kernel does not cover.
    pub fn from_tract(ensemble: &TreeEnsemble) -> Result<Option<Self>, String> {
        if ensemble.aggregate_fn != Aggregate::Sum {
            return Ok(None);
        }
        let u32s = |tensor: &Tensor, what: &str| -> Result<Vec<u32>, String> {
            tensor
                .try_as_plain_ram()
                .and_then(|view| view.as_slice::<u32>().map(<[u32]>::to_vec))
                .map_err(|error| format!("expected u32 {what}, got {error:#}"))
        };
        let roots = u32s(&ensemble.data.trees, "tree roots")?;
        let raw_nodes = u32s(&ensemble.data.nodes, "nodes")?;
        let raw_votes = u32s(&ensemble.data.leaves, "leaves")?;
        if raw_nodes.len() % 5 != 0 || raw_votes.len() % 2 != 0 {
            return Err(format!(
                "expected nodes of 5 and leaves of 2 numbers, got {} and {}",
                raw_nodes.len(),
                raw_votes.len()
            ));
        }
        let votes: Vec<(u32, f32)> = raw_votes
            .chunks_exact(2)
            .map(|vote| (vote[0], f32::from_bits(vote[1])))
            .collect();
        let n_nodes = raw_nodes.len() / 5;
        let n_classes = ensemble.n_classes;
        let mut min_features = 0;
        let mut nodes = Vec::with_capacity(n_nodes);
        for row in raw_nodes.chunks_exact(5) {
            let node = match Compare::from_code(row[4] & 0xFF) {
                Some(compare) => {
                    let [feature, if_true, if_false] = [row[0], row[1], row[2]];
                    if if_true as usize >= n_nodes || if_false as usize >= n_nodes {
                        return Err(format!(
                            "expected child nodes below {n_nodes}, got {if_true} and {if_false}"
                        ));
                    }
                    min_features = min_features.max(feature as usize + 1);
                    TreeNode::Branch {
                        feature,
                        threshold: f32::from_bits(row[3]),
                        compare,
                        nan_is_true: row[4] & 0x100 != 0,
                        if_true,
                        if_false,
                    }
                }
                None if row[4] & 0xFF == 0 => {
                    let (start, end) = (row[0], row[1]);
                    if start > end || end as usize > votes.len() {
                        return Err(format!(
                            "expected a leaf's votes within 0..{}, got {start}..{end}",
                            votes.len()
                        ));
                    }
                    TreeNode::Leaf { start, end }
                }
                None => {
                    return Err(format!(
                        "expected a comparator code 0..=6, got {}",
                        row[4] & 0xFF
                    ));
                }
            };
            nodes.push(node);
        }
        if let Some(root) = roots.iter().find(|&&root| root as usize >= n_nodes) {
            return Err(format!("expected tree roots below {n_nodes}, got {root}"));
        }
        if let Some((class, _)) = votes.iter().find(|(class, _)| *class as usize >= n_classes) {
            return Err(format!("expected classes below {n_classes}, got {class}"));
        }
        Ok(Some(Self {
            roots,
            nodes,
            votes,
            n_classes,
            min_features: min_features.max(ensemble.max_used_feature + 1),
        }))
    }

    /// Adds the votes of each tree for one row to `sums` (one per class).
    #[inline]
    fn score_row(&self, row: &[f32], sums: &mut [f32]) -> TractResult<()> {
        for &root in &self.roots {
            let mut id = root as usize;
            // A path visits each node at most once; more means a cycle.
            let mut steps = 0;
            loop {
                match self.nodes[id] {
                    TreeNode::Branch {
                        feature,
                        threshold,
                        compare,
                        nan_is_true,
                        if_true,
                        if_false,
                    } => {
                        let x = row[feature as usize];
                        let go_true = if x.is_nan() {
                            nan_is_true
                        } else {
                            compare.holds(x, threshold)
                        };
                        id = if go_true { if_true } else { if_false } as usize;
                        steps += 1;
                        if steps > self.nodes.len() {
                            bail!("tree rooted at node {root} has a cycle");
                        }
                    }
                    TreeNode::Leaf { start, end } => {
                        for &(class, weight) in &self.votes[start as usize..end as usize] {
                            sums[class as usize] += weight;
                        }
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Op for TreeEnsembleSums {
    fn name(&self) -> StaticName {
        "TreeEnsembleSums".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} trees, {} nodes, {} classes (replaces tract's TreeEnsembleClassifier kernel)",
            self.roots.len(),
            self.nodes.len(),
            self.n_classes
        )])
    }

    tract_onnx::tract_core::op_as_typed_op!();
}

impl EvalOp for TreeEnsembleSums {
    tract_onnx::tract_core::op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let [input] = &*inputs else {
            bail!("expected 1 input, got {}", inputs.len());
        };
        let input = input.cast_to::<f32>()?;
        let &[n_rows, n_features] = input.shape() else {
            bail!(
                "expected a 2-d input [rows, features], got shape {:?}",
                input.shape()
            );
        };
        if n_features < self.min_features {
            bail!(
                "expected rows of at least {} features, got {n_features}",
                self.min_features
            );
        }
        let values = input.try_as_plain_ram()?;
        let values = values.as_slice::<f32>()?;
        let mut sums = vec![0f32; n_rows * self.n_classes];
        if n_features > 0 {
            for (row, out) in values
                .chunks_exact(n_features)
                .zip(sums.chunks_exact_mut(self.n_classes))
            {
                self.score_row(row, out)?;
            }
        }
        let sums = tract_ndarray::Array2::from_shape_vec((n_rows, self.n_classes), sums)?;
        Ok(tvec!(sums.into_tensor().into_tvalue()))
    }
}

impl TypedOp for TreeEnsembleSums {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n_rows = inputs[0].shape[0].clone();
        Ok(tvec!(f32::fact([n_rows, self.n_classes.to_dim()])))
    }

    tract_onnx::tract_core::as_op!();
}
