//! Bookkeeping: calls and unexpected answers by kind, every check's
//! result, and reading a Prometheus exposition.

use super::*;

/// Calls made and unexpected answers, by kind.
#[derive(Clone, Default)]
pub(super) struct Tally(pub(super) Arc<Mutex<BTreeMap<&'static str, Count>>>);

#[derive(Clone, Default)]
pub(super) struct Count {
    pub(super) sent: u64,
    pub(super) unexpected: u64,
    pub(super) example: Option<String>,
}

impl Tally {
    pub(super) async fn record(&self, kind: &'static str, result: Result<(), String>) {
        let mut counts = self.0.lock().await;
        let count = counts.entry(kind).or_default();
        count.sent += 1;
        if let Err(error) = result {
            count.unexpected += 1;
            count.example.get_or_insert(error);
        }
    }

    pub(super) async fn snapshot(&self) -> Vec<(&'static str, Count)> {
        self.0
            .lock()
            .await
            .iter()
            .map(|(kind, count)| (*kind, count.clone()))
            .collect()
    }
}

/// Every check's result.
#[derive(Default)]
pub(super) struct Report {
    pub(super) passed: usize,
    pub(super) failures: Vec<String>,
}

impl Report {
    pub(super) fn check(&mut self, ok: bool, what: String) {
        if ok {
            self.passed += 1;
        } else {
            println!("FAILED: {what}");
            self.failures.push(what);
        }
    }

    pub(super) fn fail(&mut self, what: String) {
        self.check(false, what);
    }

    pub(super) fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    pub(super) fn summary(&self) -> String {
        let mut summary = format!(
            "triad soak: {} checks passed, {} failed",
            self.passed,
            self.failures.len()
        );
        for failure in &self.failures {
            summary.push_str("\n  FAILED: ");
            summary.push_str(failure);
        }
        summary
    }
}

/// The number of series in a Prometheus text exposition.
pub(super) fn series(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .count()
}

/// The sum of every series of `name`.
pub(super) fn counter_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
