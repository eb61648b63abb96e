//! Explanations stored with outcomes (`Outcome.explanation`, the
//! `outcomes.explanation` column of migration `0004`): checked on arrival,
//! stored as JSON, read back for `ListMistakes`, and the features that
//! pushed a mistake the wrong way for the dashboard.

use triad_features::FeatureSchema;
use triad_proto::v1::Explanation;

/// Why `explanation` cannot be stored, if it cannot: more contributions
/// than the feature schema has columns, or a number that is not finite.
/// Its outcome is stored all the same, without it.
pub(crate) fn check(explanation: &Explanation) -> Result<(), String> {
    let width = FeatureSchema::current().feature_names.len();
    if explanation.contributions.len() > width {
        return Err(format!(
            "explanation has {} contributions: expected at most the schema's {width}",
            explanation.contributions.len()
        ));
    }
    if !explanation.intercept.is_finite()
        || !explanation.logit.is_finite()
        || explanation.contributions.iter().any(|c| !c.is_finite())
    {
        return Err("explanation holds a number that is not finite".to_owned());
    }
    Ok(())
}

/// The stored form: `{"intercept": x, "logit": y, "contributions": [...]}`.
pub(crate) fn to_json(explanation: &Explanation) -> String {
    serde_json::json!({
        "intercept": explanation.intercept,
        "logit": explanation.logit,
        "contributions": explanation.contributions,
    })
    .to_string()
}

/// Reads [`to_json`]'s output back; `None` for anything else (a column
/// written by hand is shown as no explanation, never as zeros).
pub(crate) fn from_json(text: &str) -> Option<Explanation> {
    #[derive(serde::Deserialize)]
    struct Stored {
        intercept: f32,
        logit: f32,
        contributions: Vec<f32>,
    }
    let stored: Stored = serde_json::from_str(text).ok()?;
    Some(Explanation {
        intercept: stored.intercept,
        contributions: stored.contributions,
        logit: stored.logit,
    })
}

/// The `n` features that pushed a mistake hardest the wrong way, with
/// their contributions: for a false positive (`matched`) the largest
/// positive contributions, for a false negative the most negative. Names
/// come from the schema (contributions are stored in schema order).
pub(crate) fn wrong_way(
    explanation: &Explanation,
    matched: bool,
    n: usize,
) -> Vec<(&'static str, f32)> {
    let names = &FeatureSchema::current().feature_names;
    let mut pushed: Vec<(&'static str, f32)> = names
        .iter()
        .zip(&explanation.contributions)
        .map(|(name, &c)| (name.as_str(), c))
        .filter(|&(_, c)| if matched { c > 0.0 } else { c < 0.0 })
        .collect();
    pushed.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    pushed.truncate(n);
    pushed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_reads_back_and_names_the_wrong_way() {
        let width = FeatureSchema::current().feature_names.len();
        let mut contributions = vec![0.0; width];
        contributions[0] = 2.0;
        contributions[1] = -3.0;
        contributions[2] = 0.5;
        let explanation = Explanation {
            intercept: -1.0,
            logit: -1.5,
            contributions,
        };
        check(&explanation).unwrap();
        let back = from_json(&to_json(&explanation)).unwrap();
        assert_eq!(back, explanation);
        let names = &FeatureSchema::current().feature_names;
        let fp = wrong_way(&back, true, 3);
        assert_eq!(fp, [(names[0].as_str(), 2.0), (names[2].as_str(), 0.5)]);
        let fn_ = wrong_way(&back, false, 3);
        assert_eq!(fn_, [(names[1].as_str(), -3.0)]);
        assert!(from_json("not json").is_none());
    }

    #[test]
    fn oversized_or_non_finite_explanations_cannot_be_stored() {
        let width = FeatureSchema::current().feature_names.len();
        assert!(
            check(&Explanation {
                contributions: vec![0.0; width + 1],
                ..Explanation::default()
            })
            .is_err()
        );
        assert!(
            check(&Explanation {
                logit: f32::NAN,
                ..Explanation::default()
            })
            .is_err()
        );
    }
}
