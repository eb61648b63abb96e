//! Reference profiles of the monitored model versions
//! (`<models_dir>/<model>/<version>/profile.json`, written by `triad train`
//! and `triad profile`), read lazily on first use, cached, and read again
//! when the file changes (its size or modification time). They feed the
//! `Drift` RPC and the calibrated probabilities of confidence-based
//! performance estimation; a version without a profile has no drift answer
//! and its raw scores stand in for probabilities.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Mutex;
use triad_series::{PROFILE_FILE, ReferenceProfile, calibrate};

/// What [`Profiles::get`] found for one model version.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The profile, as last read.
    Found(Arc<ReferenceProfile>),
    /// No profile file (or no models directory, or a model or version name
    /// that cannot be a directory name).
    Missing { path: Option<PathBuf> },
    /// A file that is not a profile.
    Invalid { path: PathBuf, message: String },
}

impl Lookup {
    /// The profile, if one was read.
    pub fn profile(&self) -> Option<&Arc<ReferenceProfile>> {
        match self {
            Self::Found(profile) => Some(profile),
            _ => None,
        }
    }

    /// Why there is no profile of `model` `version` (the names this
    /// lookup was made for), for answers: names the profile file relative
    /// to the models directory, the names quoted at most 64 characters
    /// each ([`triad_server::quote`]). `None` when found.
    pub fn why_not(&self, model: &str, version: &str) -> Option<String> {
        let file = || {
            format!(
                "{}/{}/{PROFILE_FILE}",
                triad_server::quote(model),
                triad_server::quote(version)
            )
        };
        match self {
            Self::Found(_) => None,
            Self::Missing { path: Some(_) } => Some(format!(
                "no reference profile {} in the models directory",
                file()
            )),
            Self::Missing { path: None } => Some(format!(
                "no reference profile {}: no models directory is configured, or a name cannot be a directory name",
                file()
            )),
            Self::Invalid { message, .. } => Some(format!(
                "the reference profile {} is invalid: {message}",
                file()
            )),
        }
    }
}

/// Identity of the file a cached lookup was made from.
type Stamp = Option<(SystemTime, u64)>;

/// The profile cache. Cheap to share (`Arc` inside the [`Store`](crate::Store)).
#[derive(Debug, Default)]
pub struct Profiles {
    dir: Option<PathBuf>,
    cache: Mutex<HashMap<(String, String), (Stamp, Lookup)>>,
}

/// Whether `name` can be used as one path component (no separator, not
/// `.` or `..`): model and version names come from senders.
fn component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !Path::new(name).is_absolute()
}

impl Profiles {
    /// Profiles under `models_dir`.
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(models_dir.into()),
            cache: Mutex::default(),
        }
    }

    /// No models directory: every profile is missing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// The models directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Where the profile of `model` `version` lives.
    pub fn path(&self, model: &str, version: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        (component(model) && component(version))
            .then(|| dir.join(model).join(version).join(PROFILE_FILE))
    }

    /// The profile of `model` `version`: from the cache while the file is
    /// unchanged, else read (off the async runtime) and cached. A missing
    /// or invalid file is cached too, until the file changes.
    pub async fn get(&self, model: &str, version: &str) -> Lookup {
        let Some(path) = self.path(model, version) else {
            return Lookup::Missing { path: None };
        };
        let key = (model.to_owned(), version.to_owned());
        let stamp = stamp(&path);
        if let Some((cached_stamp, lookup)) = self.cache.lock().await.get(&key)
            && *cached_stamp == stamp
        {
            return lookup.clone();
        }
        let lookup = match stamp {
            None => Lookup::Missing { path: Some(path) },
            Some(_) => {
                let read_path = path.clone();
                tokio::task::spawn_blocking(move || read(&read_path))
                    .await
                    .unwrap_or_else(|error| Lookup::Invalid {
                        path,
                        message: format!("reading it failed: {error}"),
                    })
            }
        };
        if let Lookup::Invalid { path, message } = &lookup {
            tracing::warn!(
                path = %path.display(),
                "the reference profile is invalid: {message}; falling back to raw scores, no drift"
            );
        }
        // Only files are cached: a name without one costs the cache
        // nothing, however many names senders make up.
        if stamp.is_none() {
            return lookup;
        }
        self.cache.lock().await.insert(key, (stamp, lookup.clone()));
        lookup
    }
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    meta.is_file().then(|| {
        (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        )
    })
}

fn read(path: &Path) -> Lookup {
    let invalid = |message: String| Lookup::Invalid {
        path: path.to_owned(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str::<ReferenceProfile>(&text) {
            Ok(profile) => Lookup::Found(Arc::new(profile)),
            Err(error) => invalid(error.to_string()),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Lookup::Missing {
            path: Some(path.to_owned()),
        },
        Err(error) => invalid(error.to_string()),
    }
}

/// The probability that an outcome with `score` is positive, as
/// confidence-based performance estimation uses it: the profile's
/// calibrated rate for the score ([`calibrate`]: the observed positive rate
/// of the held-out scores in the same bin), or — without a profile — the
/// raw score, clamped to `[0, 1]`.
pub(crate) fn probability(profile: Option<&ReferenceProfile>, score: f64) -> f64 {
    let p = profile.map_or(score, |profile| calibrate(&profile.calibration, score));
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use triad_series::{CalibrationBin, Distribution};

    pub(crate) fn profile(calibration: Vec<CalibrationBin>) -> ReferenceProfile {
        ReferenceProfile {
            model: "m".into(),
            version: "1".into(),
            schema_hash: "hash".into(),
            rows: 3,
            features: vec![("x".into(), Distribution::of([1.0, 2.0, 3.0]))],
            score: Distribution::of([0.1, 0.5, 0.9]),
            calibration,
        }
    }

    fn bin(low: f64, high: f64, positive_rate: f64) -> CalibrationBin {
        CalibrationBin {
            low,
            high,
            count: 10,
            positive_rate,
        }
    }

    #[test]
    fn probabilities_are_calibrated_or_the_raw_score() {
        let p = profile(vec![bin(0.0, 0.5, 0.1), bin(0.5, 1.0, 0.8)]);
        assert_eq!(probability(Some(&p), 0.3), 0.1);
        assert_eq!(probability(Some(&p), 0.5), 0.8);
        assert_eq!(probability(Some(&p), 1.0), 0.8);
        assert_eq!(probability(None, 0.3), 0.3);
        assert_eq!(probability(None, 1.5), 1.0);
        // No bin covers the score: the score itself.
        let gap = profile(vec![bin(0.0, 0.2, 0.05)]);
        assert_eq!(probability(Some(&gap), 0.7), 0.7);
    }

    #[test]
    fn names_that_are_not_one_directory_have_no_profile() {
        let profiles = Profiles::new("models");
        assert_eq!(
            profiles.path("m", "1"),
            Some(PathBuf::from("models/m/1/profile.json"))
        );
        for (model, version) in [
            ("..", "1"),
            ("m", "../x"),
            ("a/b", "1"),
            ("m", ""),
            ("/", "1"),
        ] {
            assert_eq!(profiles.path(model, version), None, "{model} {version}");
        }
        assert_eq!(Profiles::disabled().path("m", "1"), None);
    }

    #[tokio::test]
    async fn names_without_a_profile_file_are_not_cached_and_quoted_in_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = Profiles::new(dir.path());
        let long = "m".repeat(10_000);
        for n in 0..100 {
            let lookup = profiles.get(&format!("model-{n}"), "1").await;
            assert!(matches!(lookup, Lookup::Missing { path: Some(_) }));
        }
        assert!(profiles.cache.lock().await.is_empty());
        let why = profiles.get(&long, "1").await.why_not(&long, "1").unwrap();
        assert!(why.len() < 200, "{why}");
        assert!(why.starts_with("no reference profile \"mmm"), "{why}");
    }

    #[tokio::test]
    async fn profiles_are_read_lazily_cached_and_reread_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = Profiles::new(dir.path());
        assert!(matches!(
            profiles.get("m", "1").await,
            Lookup::Missing { path: Some(_) }
        ));
        let version = dir.path().join("m").join("1");
        std::fs::create_dir_all(&version).unwrap();
        let file = version.join(PROFILE_FILE);
        std::fs::write(&file, "not json").unwrap();
        let invalid = profiles.get("m", "1").await;
        assert!(matches!(invalid, Lookup::Invalid { .. }), "{invalid:?}");
        assert!(invalid.why_not("m", "1").unwrap().contains("invalid"));

        let first = profile(vec![bin(0.0, 1.0, 0.25)]);
        std::fs::write(&file, serde_json::to_string(&first).unwrap()).unwrap();
        let found = profiles.get("m", "1").await;
        assert_eq!(
            found.profile().map(|p| p.calibration.clone()),
            Some(first.calibration.clone())
        );
        // Unchanged file: the same cached profile.
        let again = profiles.get("m", "1").await;
        assert!(Arc::ptr_eq(
            found.profile().unwrap(),
            again.profile().unwrap()
        ));

        // A changed file (another size) is read again.
        let second = profile(vec![bin(0.0, 0.5, 0.125), bin(0.5, 1.0, 0.75)]);
        std::fs::write(&file, serde_json::to_string(&second).unwrap()).unwrap();
        let reread = profiles.get("m", "1").await;
        assert_eq!(reread.profile().unwrap().calibration, second.calibration);
    }
}
