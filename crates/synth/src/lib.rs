//! Triad's synthetic data: a reproducible, realistic set of users' travel
//! budgets and expense line items in the seed API's request shape, with a
//! `matched` and an `out_of_policy` label for every (budget, line item)
//! pair, for training and evaluating the models and trying the monitoring
//! dashboard.
//!
//! ```
//! use triad_synth::{SynthConfig, generate, split, write_labels_csv, write_requests_jsonl};
//!
//! let config = SynthConfig { users: 20, ..SynthConfig::default() };
//! let dataset = generate(&config);
//! let (train, test) = split(&dataset, 0.25);
//! assert_eq!(train.requests.len() + test.requests.len(), 20);
//! let mut jsonl = Vec::new();
//! write_requests_jsonl(&dataset, &mut jsonl)?;
//! let mut csv = Vec::new();
//! write_labels_csv(&dataset, &mut csv)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The generation process and the `matched` rule are documented in
//! [`mod@generate`], the `out_of_policy` rule in [`policy`].

mod catalog;
pub mod config;
pub mod dataset;
pub mod generate;
pub mod policy;
pub mod write;

pub use config::{DEFAULT_START_DATE, SynthConfig};
pub use dataset::{Dataset, DatasetStats, PairLabel, SynthRequest, split};
pub use generate::generate;
pub use policy::TravelKind;
pub use write::{write_labels_csv, write_requests_jsonl};
