//! Trains the native logistic model the scorer serves: L2-regularized
//! logistic regression fitted by Newton's method (IRLS) on standardized,
//! median-imputed features, folded back into raw-feature weights so the
//! served kernel is one dot product. Also evaluates a model on held-out
//! pairs and writes a model version directory (`model.json`, `model.toml`,
//! the model card `README.md`).

pub mod dataset;
pub mod evaluation;
pub mod fit;
pub mod write;

pub use dataset::{LabelledMatrix, Target};
pub use evaluation::Evaluation;
pub use fit::{FitConfig, FitError, LogisticFit, fit_logistic};
pub use write::{ModelCard, write_model_version};
