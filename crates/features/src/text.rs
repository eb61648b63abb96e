//! Text normalization, done once per entity (never once per pair):
//! transliterate to ASCII, lowercase, split on anything that is not a letter
//! (punctuation and digit runs such as card or booking numbers go), drop
//! English stopwords, then Snowball-stem the remaining tokens.

use std::collections::HashSet;

use rust_stemmers::{Algorithm, Stemmer};

/// The English stopword list of NLTK's `stopwords` corpus (the list the seed
/// model used), embedded so nothing is downloaded at run time.
const STOPWORDS: &[&str] = &[
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "you're",
    "you've",
    "you'll",
    "you'd",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "she's",
    "her",
    "hers",
    "herself",
    "it",
    "it's",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "that'll",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "s",
    "t",
    "can",
    "will",
    "just",
    "don",
    "don't",
    "should",
    "should've",
    "now",
    "d",
    "ll",
    "m",
    "o",
    "re",
    "ve",
    "y",
    "ain",
    "aren",
    "aren't",
    "couldn",
    "couldn't",
    "didn",
    "didn't",
    "doesn",
    "doesn't",
    "hadn",
    "hadn't",
    "hasn",
    "hasn't",
    "haven",
    "haven't",
    "isn",
    "isn't",
    "ma",
    "mightn",
    "mightn't",
    "mustn",
    "mustn't",
    "needn",
    "needn't",
    "shan",
    "shan't",
    "shouldn",
    "shouldn't",
    "wasn",
    "wasn't",
    "weren",
    "weren't",
    "won",
    "won't",
    "wouldn",
    "wouldn't",
];

/// A normalized text field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NormalizedText {
    /// The kept tokens, unstemmed, joined by single spaces: the input of the
    /// character-level similarities (Jaro-Winkler, Levenshtein).
    pub cleaned: String,
    /// The distinct stems of the kept tokens, sorted: the input of the
    /// token-set similarities.
    pub stems: Vec<String>,
}

/// Normalizes text fields. Build one and reuse it: it owns the stemmer and
/// the stopword set.
pub struct TextNormalizer {
    stemmer: Stemmer,
    stopwords: HashSet<&'static str>,
}

impl Default for TextNormalizer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TextNormalizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextNormalizer").finish_non_exhaustive()
    }
}

impl TextNormalizer {
    /// An English normalizer.
    pub fn new() -> Self {
        Self {
            stemmer: Stemmer::create(Algorithm::English),
            stopwords: STOPWORDS.iter().copied().collect(),
        }
    }

    /// Normalizes `text`. Returns `None` when nothing is left (empty input,
    /// only digits, punctuation or stopwords): such a field counts as missing.
    pub fn normalize(&self, text: &str) -> Option<NormalizedText> {
        let ascii = deunicode::deunicode(text);
        let mut cleaned = String::with_capacity(ascii.len());
        let mut stems = Vec::new();
        // Apostrophes stay inside a token so that "don't" meets the stopword
        // list; they are stripped before the token is kept.
        let tokens = ascii
            .split(|c: char| !(c.is_ascii_alphabetic() || c == '\''))
            .map(|token| token.trim_matches('\''));
        for token in tokens {
            if token.is_empty() {
                continue;
            }
            let lower = token.to_ascii_lowercase();
            if self.stopwords.contains(lower.as_str()) {
                continue;
            }
            let word: String = lower.chars().filter(|&c| c != '\'').collect();
            if word.is_empty() {
                continue;
            }
            if !cleaned.is_empty() {
                cleaned.push(' ');
            }
            cleaned.push_str(&word);
            stems.push(self.stemmer.stem(&word).into_owned());
        }
        if cleaned.is_empty() {
            return None;
        }
        stems.sort_unstable();
        stems.dedup();
        Some(NormalizedText { cleaned, stems })
    }
}

/// Travel categories recognised in budget types and expense type or category
/// names, so that "flight", "Airfare" and "air travel" agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TravelCategory {
    Flight,
    Hotel,
    Train,
    Taxi,
    Parking,
    Meal,
    Car,
}

/// Stems that identify each category, checked in this order (so "car
/// parking" is parking and "rental car" is car).
const CATEGORY_STEMS: &[(TravelCategory, &[&str])] = &[
    (TravelCategory::Parking, &["park", "garag", "toll"]),
    (
        TravelCategory::Taxi,
        &["taxi", "cab", "uber", "lyft", "rideshar", "limo", "shuttl"],
    ),
    (
        TravelCategory::Meal,
        &[
            "meal",
            "food",
            "restaur",
            "dine",
            "dinner",
            "lunch",
            "breakfast",
            "coffe",
            "bar",
        ],
    ),
    (
        TravelCategory::Flight,
        &[
            "air", "airfar", "airlin", "airway", "flight", "plane", "aviat", "fare",
        ],
    ),
    (
        TravelCategory::Hotel,
        &[
            "hotel", "lodg", "accommod", "motel", "inn", "resort", "room",
        ],
    ),
    (
        TravelCategory::Train,
        &["train", "rail", "railway", "amtrak"],
    ),
    (
        TravelCategory::Car,
        &["car", "rental", "vehicl", "auto", "hertz", "avi"],
    ),
];

/// The travel category a normalized text names, if any.
pub fn travel_category(text: &NormalizedText) -> Option<TravelCategory> {
    CATEGORY_STEMS.iter().find_map(|(category, keys)| {
        keys.iter()
            .any(|key| {
                text.stems
                    .binary_search_by(|stem| stem.as_str().cmp(key))
                    .is_ok()
            })
            .then_some(*category)
    })
}

/// Token-set Jaccard similarity of two sorted, deduplicated stem lists.
pub fn jaccard(a: &[String], b: &[String]) -> f64 {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    if union == 0 {
        0.0
    } else {
        common as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> Option<NormalizedText> {
        TextNormalizer::new().normalize(text)
    }

    #[test]
    fn drops_digits_punctuation_and_stopwords() {
        let text = norm("SOUTHWEST AIR 5262134").unwrap();
        assert_eq!(text.cleaned, "southwest air");
        assert_eq!(text.stems, vec!["air", "southwest"]);
        let text = norm("UBER *TRIP HELP.UBER.COM").unwrap();
        assert_eq!(text.cleaned, "uber trip help uber com");
        assert_eq!(text.stems, vec!["com", "help", "trip", "uber"]);
        let text = norm("The Hotel at the Park").unwrap();
        assert_eq!(text.cleaned, "hotel park");
    }

    #[test]
    fn stems_and_transliterates() {
        let text = norm("Hôtel Le Méridien").unwrap();
        assert_eq!(text.cleaned, "hotel le meridien");
        assert_eq!(text.stems, vec!["hotel", "le", "meridien"]);
        let text = norm("Southwest Airlines").unwrap();
        assert_eq!(text.stems, vec!["airlin", "southwest"]);
        let text = norm("Don't rent cars").unwrap();
        assert_eq!(text.cleaned, "rent cars");
        assert_eq!(text.stems, vec!["car", "rent"]);
    }

    #[test]
    fn nothing_left_is_none() {
        assert_eq!(norm(""), None);
        assert_eq!(norm("   "), None);
        assert_eq!(norm("1234-5678 #99"), None);
        assert_eq!(norm("the of and"), None);
        assert_eq!(norm("'''"), None);
    }

    #[test]
    fn categories_agree_across_spellings() {
        let category = |text: &str| travel_category(&norm(text).unwrap());
        assert_eq!(category("flight"), Some(TravelCategory::Flight));
        assert_eq!(category("Airfare"), Some(TravelCategory::Flight));
        assert_eq!(category("air travel"), Some(TravelCategory::Flight));
        assert_eq!(category("Hotel"), Some(TravelCategory::Hotel));
        assert_eq!(category("Lodging"), Some(TravelCategory::Hotel));
        assert_eq!(category("Car Rental"), Some(TravelCategory::Car));
        assert_eq!(category("car parking"), Some(TravelCategory::Parking));
        assert_eq!(category("Taxi"), Some(TravelCategory::Taxi));
        assert_eq!(category("rail"), Some(TravelCategory::Train));
        assert_eq!(category("office supplies"), None);
    }

    #[test]
    fn jaccard_on_stem_sets() {
        let s = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(jaccard(&s(&["a", "b"]), &s(&["b", "c"])), 1.0 / 3.0);
        assert_eq!(jaccard(&s(&["a"]), &s(&["a"])), 1.0);
        assert_eq!(jaccard(&s(&[]), &s(&[])), 0.0);
    }
}
