//! The mistakes table's "pushed it the wrong way" cell: the features whose
//! contributions pushed a false positive up (largest positive) or a false
//! negative down (most negative), from the explanation stored with the
//! outcome; for a model without explanations (ONNX) the cell says so
//! plainly, never zeros. And the summary's note on a gated model's outcomes
//! not scored.

use std::fmt::Write as _;

use triad_proto::v1::{MetricPoint, Outcome};

use super::page::escape;
use crate::app::explanations::wrong_way;

/// Features listed per mistake.
pub(crate) const TOP_FEATURES: usize = 3;

/// The cell's HTML.
pub(crate) fn wrong_way_cell(outcome: &Outcome) -> String {
    let Some(explanation) = &outcome.explanation else {
        return "<td class=\"fields k\">no explanation available (only native logistic models \
                explain their scores)</td>"
            .to_owned();
    };
    let pushed = wrong_way(explanation, outcome.matched, TOP_FEATURES);
    if pushed.is_empty() {
        return "<td class=\"fields k\">no feature pushed it this way: the intercept did</td>"
            .to_owned();
    }
    let mut cell = String::from("<td class=\"fields\">");
    for (name, contribution) in pushed {
        let _ = write!(
            cell,
            "<div class=\"nowrap\"><code>{}</code> <span class=\"num\">{contribution:+.3}</span></div>",
            escape(name)
        );
    }
    let _ = write!(
        cell,
        "<div class=\"k\">logit {:.3} = {:.3} + contributions</div></td>",
        explanation.logit, explanation.intercept
    );
    cell
}

/// The summary's note on a gated model's outcomes not scored (none: empty):
/// they are stored but in none of the summary's counts.
pub(crate) fn not_scored_note(points: &[MetricPoint]) -> String {
    let not_scored: u64 = points.iter().map(|p| p.not_scored).sum();
    if not_scored == 0 {
        return String::new();
    }
    format!(
        "<p class=\"caption\">Plus {not_scored} outcome(s) <strong>not scored</strong>: this \
         model is gated, and its gate model did not match those pairs. They are stored \
         (<code>outcomes.scored = 0</code>) but in none of these counts, nor in precision, \
         recall or the charts below.</p>"
    )
}
