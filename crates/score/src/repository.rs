//! The model repository: `<root>/<model>/<version>/` directories (the Triton
//! convention), loaded into an immutable [`ModelSet`] that is swapped
//! atomically when the directory changes.
//!
//! Rules, all without a restart:
//! - a version directory dropped in is loaded on the next poll; one that is
//!   removed is unloaded;
//! - the serving version is the highest loaded one, unless pinned (in
//!   `<model>/serving.toml` as `version = "2"`, or by the scorer's config);
//! - a version whose files fail to load never serves: if it was loaded
//!   before, the previous load keeps serving and the failure is logged;
//! - `serving.toml` may name a `shadow` version, scored on every request
//!   but never returned to callers;
//! - `serving.toml` may name a `gate` model: the model then scores only the
//!   rows its gate model matched ([`ServedModel::gate`]). The gate must be
//!   served by this repository, must not be gated itself (no chains, no
//!   cycles) and must read the same feature schema; a reload that breaks
//!   this keeps the model's previous gate when that is still valid, and
//!   otherwise the model does not serve (it is never served ungated).
//!
//! Copy a new version into place under a temporary name and rename it, so a
//! poll never sees half a directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
#[allow(clippy::disallowed_types)]
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::Deserialize;
use triad_features::FeatureSchema;
use triad_server::{quote, quote_list};

use crate::model::LoadedModel;

/// Per-model serving policy file, beside the version directories.
pub const SERVING_FILE: &str = "serving.toml";

/// Contents of `serving.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServingPolicy {
    /// `"latest"` (the default) or a version to pin.
    pub version: Option<String>,
    /// A version to score in the shadow of the serving one.
    pub shadow: Option<String>,
    /// A model whose matches this one judges: only the rows it matched are
    /// scored, the others are reported as not scored.
    pub gate: Option<String>,
}

/// One model as served right now.
#[derive(Debug, Clone)]
pub struct ServedModel {
    /// The model's directory name, which callers ask for.
    pub name: String,
    /// Every loaded version, by number.
    pub versions: BTreeMap<u64, Arc<LoadedModel>>,
    /// The version that answers when a request pins none: the highest
    /// loaded, or the pinned one.
    pub serving: Arc<LoadedModel>,
    /// The version scored in the serving one's shadow, never answered;
    /// never the serving version itself.
    pub shadow: Option<Arc<LoadedModel>>,
    /// The served model this one is gated on (validated: served, ungated
    /// itself, the same feature schema): this model scores only the rows
    /// the gate model matched in the same request.
    pub gate: Option<String>,
}

impl ServedModel {
    /// A loaded version by its name, e.g. `"2"`.
    pub fn version(&self, version: &str) -> Option<&Arc<LoadedModel>> {
        version
            .parse()
            .ok()
            .and_then(|number: u64| self.versions.get(&number))
    }
}

/// An immutable snapshot of every served model.
#[derive(Debug, Clone, Default)]
pub struct ModelSet {
    /// Every model with at least one loaded version, by name.
    pub models: BTreeMap<String, ServedModel>,
}

impl ModelSet {
    /// The served model `name` and its loaded version `version`, or its
    /// serving version when `version` is `None`: the one model and version
    /// lookup of every front door (`Score` and the seed's HTTP contract
    /// through [`crate::engine`], the Open Inference Protocol in
    /// [`crate::oip`]).
    pub fn resolve(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(&ServedModel, &Arc<LoadedModel>), LookupError> {
        let served = self
            .models
            .get(name)
            .ok_or_else(|| LookupError::UnknownModel {
                name: name.to_owned(),
                served: self.models.keys().cloned().collect(),
            })?;
        let Some(version) = version else {
            return Ok((served, &served.serving));
        };
        let model = served
            .version(version)
            .ok_or_else(|| LookupError::UnknownVersion {
                model: name.to_owned(),
                version: version.to_owned(),
                loaded: served.versions.keys().map(u64::to_string).collect(),
            })?;
        Ok((served, model))
    }
}

/// A model or version a caller asked for that is not served: `NOT_FOUND`
/// at every front door. The messages are the scorer's (`Score` and the
/// seed's HTTP contract); the Open Inference Protocol words the same
/// errors its own way ([`crate::oip::OipError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No served model has this name.
    #[error(
        "no model named {}; this scorer serves {}",
        quote(name),
        quote_list(served.iter().map(String::as_str), 16)
    )]
    UnknownModel {
        /// The name asked for, whole (messages quote it bounded).
        name: String,
        /// The names it was looked for among: every served model, or the
        /// ones a request selected when it pins a version of another.
        served: Vec<String>,
    },
    /// The model is served but has no loaded version of this name.
    #[error(
        "model {} has no loaded version {}; loaded versions are {}",
        quote(model),
        quote(version),
        quote_list(loaded.iter().map(String::as_str), 16)
    )]
    UnknownVersion {
        /// The model's name.
        model: String,
        /// The version asked for, whole (messages quote it bounded).
        version: String,
        /// The model's loaded versions, lowest first.
        loaded: Vec<String>,
    },
}

/// Failures opening the repository itself (one bad model never is one).
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// A directory of the repository cannot be listed (its root, when
    /// opening or reloading fails).
    #[error("cannot read model repository {path}: {source}")]
    Root {
        /// The directory.
        path: PathBuf,
        /// What the OS answered.
        source: std::io::Error,
    },
}

/// Size and modification time of every file of a version directory.
type Fingerprint = Vec<(String, u64, Option<SystemTime>)>;

/// The repository and its current [`ModelSet`].
pub struct Repository {
    root: PathBuf,
    schema: &'static FeatureSchema,
    pins: BTreeMap<String, String>,
    /// Serve only these models (and their gate models); empty means all.
    only: Vec<String>,
    current: ArcSwap<ModelSet>,
    /// Fingerprint of every version directory as last loaded or tried, so
    /// unchanged ones are neither reloaded nor re-logged. Only locked by
    /// `reload`, which runs on the blocking pool and never awaits.
    #[allow(clippy::disallowed_types)]
    seen: Mutex<HashMap<PathBuf, Fingerprint>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Repository {
    /// Opens the repository at `root` and loads every model in it. `pins`
    /// (model name → version) override each model's `serving.toml`.
    pub fn open(
        root: &Path,
        schema: &'static FeatureSchema,
        pins: BTreeMap<String, String>,
    ) -> Result<Self, RepositoryError> {
        Self::open_filtered(root, schema, pins, Vec::new())
    }

    /// The feature schema every model served was trained on.
    pub fn schema(&self) -> &'static FeatureSchema {
        self.schema
    }

    /// Like [`Repository::open`], serving only the models named in `only`
    /// (all of them when it is empty).
    #[allow(clippy::disallowed_types)] // see `seen`
    pub fn open_filtered(
        root: &Path,
        schema: &'static FeatureSchema,
        pins: BTreeMap<String, String>,
        only: Vec<String>,
    ) -> Result<Self, RepositoryError> {
        let repository = Self {
            root: root.to_owned(),
            schema,
            pins,
            only,
            current: ArcSwap::from_pointee(ModelSet::default()),
            seen: Mutex::new(HashMap::new()),
        };
        repository.reload()?;
        Ok(repository)
    }

    /// The models as served right now.
    pub fn snapshot(&self) -> Arc<ModelSet> {
        self.current.load_full()
    }

    /// Rescans the directory and swaps in the new set if anything changed.
    /// Returns whether it did.
    pub fn reload(&self) -> Result<bool, RepositoryError> {
        let previous = self.current.load_full();
        let mut models = BTreeMap::new();
        let dirs = list_dirs(&self.root)?;
        // Serving only some models serves their gate models too: a gated
        // model never serves without its gate.
        let gates: Vec<String> = dirs
            .iter()
            .filter(|(name, _)| self.only.contains(name))
            .filter_map(|(name, dir)| read_policy(name, dir).gate)
            .collect();
        for (name, dir) in dirs {
            if !self.only.is_empty() && !self.only.contains(&name) && !gates.contains(&name) {
                continue;
            }
            if let Some(model) = self.load_model(&name, &dir, previous.models.get(&name)) {
                models.insert(name, model);
            }
        }
        check_gates(&mut models, &previous);
        let changed = !same_set(&previous, &models);
        if changed {
            for model in models.values() {
                tracing::info!(
                    model = %model.name,
                    serving = %model.serving.version,
                    shadow = model.shadow.as_ref().map(|s| s.version.as_str()),
                    gate = model.gate.as_deref(),
                    versions = ?model.versions.keys().collect::<Vec<_>>(),
                    "model set updated"
                );
            }
            self.current.store(Arc::new(ModelSet { models }));
        }
        Ok(changed)
    }

    /// Polls the directory every `interval` until `shutdown` resolves.
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {
                    let repository = Arc::clone(&self);
                    match tokio::task::spawn_blocking(move || repository.reload()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => tracing::error!(%error, "model repository reload failed"),
                        Err(error) => tracing::error!(%error, "model repository reload panicked"),
                    }
                }
            }
        }
    }

    fn load_model(
        &self,
        name: &str,
        dir: &Path,
        previous: Option<&ServedModel>,
    ) -> Option<ServedModel> {
        let mut versions = BTreeMap::new();
        let entries = match list_dirs(dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::error!(model = name, %error, "cannot list model versions");
                return previous.cloned();
            }
        };
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for (version, version_dir) in entries {
            let Ok(number) = version.parse::<u64>() else {
                tracing::debug!(model = name, dir = %version_dir.display(), "skipping non-numeric version directory");
                continue;
            };
            let fingerprint = fingerprint(&version_dir);
            let loaded_before = previous.and_then(|p| p.versions.get(&number));
            let unchanged = seen.get(&version_dir) == Some(&fingerprint);
            if unchanged {
                // Loaded before and unchanged: reuse. Failed before and
                // unchanged: stay failed, without logging again.
                if let Some(model) = loaded_before {
                    versions.insert(number, Arc::clone(model));
                }
                continue;
            }
            seen.insert(version_dir.clone(), fingerprint);
            match LoadedModel::load(&version_dir, &version, self.schema) {
                Ok(model) => {
                    versions.insert(number, Arc::new(model));
                }
                Err(error) => match loaded_before {
                    Some(model) => {
                        tracing::error!(model = name, version, %error, "cannot reload model version; the previous load keeps serving");
                        versions.insert(number, Arc::clone(model));
                    }
                    None => {
                        tracing::error!(model = name, version, %error, "cannot load model version; it does not serve");
                    }
                },
            }
        }
        drop(seen);

        let latest = versions.values().next_back()?.clone();
        let policy = read_policy(name, dir);
        let pinned = self.pins.get(name).cloned().or(policy.version);
        let pick = |wanted: &str, role: &str| -> Option<Arc<LoadedModel>> {
            let found = wanted
                .parse::<u64>()
                .ok()
                .and_then(|number| versions.get(&number).cloned());
            if found.is_none() {
                tracing::error!(
                    model = name,
                    version = wanted,
                    role,
                    "version is not loaded"
                );
            }
            found
        };
        let serving = match pinned.as_deref() {
            None | Some("latest") => latest,
            Some(wanted) => pick(wanted, "pinned").unwrap_or_else(|| {
                // Keep what served before if it is still loaded.
                previous
                    .and_then(|p| versions.get(&p.serving.version.parse().unwrap_or(u64::MAX)))
                    .cloned()
                    .unwrap_or(latest)
            }),
        };
        let shadow = policy
            .shadow
            .as_deref()
            .and_then(|wanted| pick(wanted, "shadow"))
            .filter(|shadow| shadow.version != serving.version);
        Some(ServedModel {
            name: name.to_owned(),
            versions,
            serving,
            shadow,
            gate: policy.gate,
        })
    }
}

/// Why `name`'s gate cannot be used in `models`, if it cannot.
pub fn gate_problem(models: &BTreeMap<String, ServedModel>, name: &str) -> Option<String> {
    let model = models.get(name)?;
    let gate = model.gate.as_deref()?;
    if gate == name {
        return Some("a model cannot be gated on itself".to_owned());
    }
    let Some(gate_model) = models.get(gate) else {
        return Some(format!(
            "its gate model {} is not served by this scorer",
            quote(gate)
        ));
    };
    if let Some(chained) = &gate_model.gate {
        return Some(format!(
            "its gate model {} is itself gated (on {}); gates do not chain",
            quote(gate),
            quote(chained)
        ));
    }
    let (a, b) = (
        &model.serving.meta.schema.hash,
        &gate_model.serving.meta.schema.hash,
    );
    if a != b {
        return Some(format!(
            "its gate model {} reads feature schema {b}, not {a}",
            quote(gate)
        ));
    }
    None
}

/// Refuses gates that cannot work (see [`gate_problem`]), one at a time
/// until every gate works: a model keeps its previous gate when that one
/// still works, else it does not serve (never ungated).
fn check_gates(models: &mut BTreeMap<String, ServedModel>, previous: &ModelSet) {
    loop {
        let Some((name, problem)) = models
            .keys()
            .find_map(|name| gate_problem(models, name).map(|problem| (name.clone(), problem)))
        else {
            return;
        };
        let wanted = models.get(&name).and_then(|m| m.gate.clone());
        let before = previous.models.get(&name).and_then(|p| p.gate.clone());
        if before.is_some() && before != wanted {
            if let Some(model) = models.get_mut(&name) {
                model.gate.clone_from(&before);
            }
            if gate_problem(models, &name).is_none() {
                tracing::error!(model = %name, gate = wanted.as_deref(), %problem, "gate refused; the previous gate stays");
                continue;
            }
        }
        tracing::error!(model = %name, gate = wanted.as_deref(), %problem, "gate refused; the model does not serve");
        models.remove(&name);
    }
}

fn read_policy(name: &str, dir: &Path) -> ServingPolicy {
    let path = dir.join(SERVING_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).unwrap_or_else(|error| {
            tracing::error!(model = name, path = %path.display(), %error, "invalid serving policy; serving the latest version");
            ServingPolicy::default()
        }),
        Err(_) => ServingPolicy::default(),
    }
}

/// Subdirectories of `dir` by name, skipping hidden ones (temporary copies).
fn list_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, RepositoryError> {
    let error = |source| RepositoryError::Root {
        path: dir.to_owned(),
        source,
    };
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(error)? {
        let entry = entry.map_err(error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        dirs.push((name, entry.path()));
    }
    dirs.sort();
    Ok(dirs)
}

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files: Fingerprint = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let metadata = entry.metadata().ok()?;
            Some((
                entry.file_name().to_string_lossy().into_owned(),
                metadata.len(),
                metadata.modified().ok(),
            ))
        })
        .collect();
    files.sort();
    files
}

fn same_set(previous: &ModelSet, next: &BTreeMap<String, ServedModel>) -> bool {
    let same_arc = |a: &Arc<LoadedModel>, b: &Arc<LoadedModel>| Arc::ptr_eq(a, b);
    previous.models.len() == next.len()
        && previous.models.iter().zip(next).all(|((na, a), (nb, b))| {
            na == nb
                && same_arc(&a.serving, &b.serving)
                && a.gate == b.gate
                && match (&a.shadow, &b.shadow) {
                    (None, None) => true,
                    (Some(x), Some(y)) => same_arc(x, y),
                    _ => false,
                }
                && a.versions.len() == b.versions.len()
                && a.versions
                    .iter()
                    .zip(&b.versions)
                    .all(|((va, ma), (vb, mb))| va == vb && same_arc(ma, mb))
        })
}
