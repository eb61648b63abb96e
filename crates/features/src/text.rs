//! Text normalization, done once per entity (never once per pair):
//! transliterate to ASCII, lowercase, split on anything that is not a letter
//! (punctuation and digit runs such as card or booking numbers go), drop
//! English stopwords, then Snowball-stem the remaining tokens. Also the
//! similarities between normalized texts, with bit-parallel versions of the
//! character-level ones for the pure-ASCII strings normalization produces
//! (single-word for texts of up to 64 bytes, block-wise for longer ones).

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

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
        self.normalize_cached(text, &mut StemCache::default())
    }

    /// Like [`TextNormalizer::normalize`], looking stems up in `cache` first
    /// and adding the ones it computes: the same words recur across the
    /// fields of one request, and stemming is the costly step.
    pub fn normalize_cached(&self, text: &str, cache: &mut StemCache) -> Option<NormalizedText> {
        // Borrows `text` when it is ASCII already; otherwise equals
        // `deunicode::deunicode(text)`.
        let ascii = deunicode::deunicode_with_tofu_cow(text, "[?]");
        let mut cleaned = String::with_capacity(ascii.len());
        let mut stems = Vec::new();
        let mut lower = String::new();
        // Apostrophes stay inside a token so that "don't" meets the stopword
        // list; they are stripped before the token is kept.
        let tokens = ascii
            .split(|c: char| !(c.is_ascii_alphabetic() || c == '\''))
            .map(|token| token.trim_matches('\''));
        for token in tokens {
            if token.is_empty() {
                continue;
            }
            lower.clear();
            lower.push_str(token);
            lower.make_ascii_lowercase();
            if self.stopwords.contains(lower.as_str()) {
                continue;
            }
            lower.retain(|c| c != '\'');
            if lower.is_empty() {
                continue;
            }
            if !cleaned.is_empty() {
                cleaned.push(' ');
            }
            cleaned.push_str(&lower);
            stems.push(cache.stem(&self.stemmer, &lower));
        }
        if cleaned.is_empty() {
            return None;
        }
        stems.sort_unstable();
        stems.dedup();
        Some(NormalizedText { cleaned, stems })
    }
}

/// Stems computed so far, by word. Keep one per request (or per batch): it
/// grows with the distinct words seen.
#[derive(Debug, Default)]
pub struct StemCache {
    stems: HashMap<String, String>,
}

impl StemCache {
    fn stem(&mut self, stemmer: &Stemmer, word: &str) -> String {
        if let Some(stem) = self.stems.get(word) {
            return stem.clone();
        }
        let stem = stemmer.stem(word).into_owned();
        self.stems.insert(word.to_owned(), stem.clone());
        stem
    }
}

/// Travel categories recognised in budget types and expense type or category
/// names, so that "flight", "Airfare" and "air travel" agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TravelCategory {
    /// Air travel: flights, airfare, airlines.
    Flight,
    /// Lodging: hotels, motels, inns, resorts.
    Hotel,
    /// Rail travel.
    Train,
    /// Taxis, ride-hailing and shuttles.
    Taxi,
    /// Parking, garages and tolls.
    Parking,
    /// Meals, restaurants, coffee and bars.
    Meal,
    /// Car rental.
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

/// Every key stem of [`CATEGORY_STEMS`] with the position of its first
/// category there, sorted by stem.
static CATEGORY_OF_STEM: LazyLock<Vec<(&str, usize)>> = LazyLock::new(|| {
    let mut keys: Vec<(&str, usize)> = CATEGORY_STEMS
        .iter()
        .enumerate()
        .flat_map(|(position, (_, keys))| keys.iter().map(move |&key| (key, position)))
        .collect();
    keys.sort_unstable();
    keys.dedup_by_key(|(key, _)| *key);
    keys
});

/// The travel category a normalized text names, if any: the first category,
/// in the order parking, taxi, meal, flight, hotel, train, car (so "car
/// parking" is parking), with a key stem among the text's stems
/// (`docs/features.md`, "Categories").
pub fn travel_category(text: &NormalizedText) -> Option<TravelCategory> {
    text.stems
        .iter()
        .filter_map(|stem| {
            let found = CATEGORY_OF_STEM.binary_search_by(|(key, _)| (*key).cmp(stem.as_str()));
            found.ok().map(|index| CATEGORY_OF_STEM[index].1)
        })
        .min()
        .map(|position| CATEGORY_STEMS[position].0)
}

/// Token-set Jaccard similarity of two sorted, deduplicated stem lists (as
/// strings, or as ids sorted by id).
pub fn jaccard<T: Ord>(a: &[T], b: &[T]) -> f64 {
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

/// Longest text the single-word bit-parallel pass takes: one bit per byte.
/// Longer texts take the block-wise pass ([`long_similarities`]).
const MAX_PROFILED_LEN: usize = 64;

/// The positions of each byte value in a text, in 64-byte blocks: bit `j`
/// of `block[c & 31]` is set when byte `64 × block + j` is `c`.
type Block = [u64; 32];

/// A text prepared for the character-level similarities
/// ([`jaro_winkler`], [`normalized_levenshtein`]) against many others.
///
/// Normalized texts (see [`NormalizedText::cleaned`]) are lowercase ASCII
/// letters and single spaces; for such a text the profile holds, for each
/// byte value and each block of 64 bytes, the bit set of the positions where
/// it occurs. A byte `c` of `a`..=`z` or space is looked up at `c & 31`,
/// which is distinct for those 27 bytes. Any other text is left unprofiled
/// and the similarities fall back to `strsim` (the featurizer never makes
/// one: every text it compares is normalized).
#[derive(Debug, Clone)]
pub struct SimilarityProfile<'a> {
    text: &'a str,
    /// One block per 64 bytes of a normalized text; `None` for any other
    /// text (the similarities then fall back to `strsim`).
    positions: Option<Vec<Block>>,
}

impl<'a> SimilarityProfile<'a> {
    /// The profile of `text`.
    pub fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let profiled =
            !bytes.is_empty() && bytes.iter().all(|&c| c.is_ascii_lowercase() || c == b' ');
        let positions = profiled.then(|| {
            let mut blocks = vec![[0u64; 32]; bytes.len().div_ceil(64)];
            for (j, &c) in bytes.iter().enumerate() {
                blocks[j / 64][usize::from(c & 31)] |= 1 << (j % 64);
            }
            blocks
        });
        Self { text, positions }
    }

    /// The profiled text.
    pub fn text(&self) -> &'a str {
        self.text
    }
}

/// Jaro-Winkler similarity; equals `strsim::jaro_winkler(a.text(), b.text())`
/// bit for bit.
pub fn jaro_winkler(a: &SimilarityProfile<'_>, b: &SimilarityProfile<'_>) -> f64 {
    character_similarities(a, b).0
}

/// Levenshtein similarity, 1 − distance / longer length; equals
/// `strsim::normalized_levenshtein(a.text(), b.text())` bit for bit.
pub fn normalized_levenshtein(a: &SimilarityProfile<'_>, b: &SimilarityProfile<'_>) -> f64 {
    character_similarities(a, b).1
}

/// [`jaro_winkler`] and [`normalized_levenshtein`] of `a` and `b`, computed
/// together in one pass over `a` when both texts are profiled: a single-word
/// pass when both have at most 64 bytes, a block-wise one (O(|a| × |b| / 64))
/// otherwise.
pub fn character_similarities(a: &SimilarityProfile<'_>, b: &SimilarityProfile<'_>) -> (f64, f64) {
    let (a_bytes, b_bytes) = (a.text.as_bytes(), b.text.as_bytes());
    let (Some(_), Some(b_blocks)) = (&a.positions, &b.positions) else {
        return (
            strsim::jaro_winkler(a.text, b.text),
            strsim::normalized_levenshtein(a.text, b.text),
        );
    };
    if a_bytes.len() > MAX_PROFILED_LEN || b_bytes.len() > MAX_PROFILED_LEN {
        return long_similarities(a_bytes, b_bytes, b_blocks);
    }
    let scan = scan(a_bytes, b_bytes.len(), &b_blocks[0]);
    let (a, b) = (a_bytes, b_bytes);

    // strsim's formulas, operation for operation.
    let matches = scan.a_matched.count_ones() as usize;
    let transpositions = if matches == 0 {
        0
    } else {
        transpositions(a, b, scan.a_matched, scan.b_matched)
    };
    finish(a, b, matches, transpositions, scan.distance)
}

/// Jaro-Winkler and normalized Levenshtein from Jaro's matches and
/// (unhalved) transpositions and the Levenshtein distance, with strsim's
/// formulas operation for operation.
fn finish(
    a: &[u8],
    b: &[u8],
    matches: usize,
    transpositions: usize,
    distance: usize,
) -> (f64, f64) {
    let jaro = if matches == 0 {
        0.0
    } else {
        let transpositions = transpositions / 2;
        ((matches as f64 / a.len() as f64)
            + (matches as f64 / b.len() as f64)
            + ((matches - transpositions) as f64 / matches as f64))
            / 3.0
    };
    let jaro_winkler = if jaro > 0.7 {
        let prefix = a.iter().take(4).zip(b).take_while(|(x, y)| x == y).count();
        jaro + 0.1 * prefix as f64 * (1.0 - jaro)
    } else {
        jaro
    };
    let levenshtein = 1.0 - (distance as f64) / (a.len().max(b.len()) as f64);
    (jaro_winkler, levenshtein)
}

/// [`character_similarities`] of `a` and a profiled `b`, both non-empty
/// normalized texts of any length, with `b`'s positions in 64-byte blocks.
///
/// Jaro: as in [`scan`], each byte of `a` in order takes the lowest free
/// position of an equal byte of `b` inside its window, now searched block
/// by block from the window's start (the first block with a free candidate
/// ends the search). Levenshtein: Myers' bit-vector algorithm in Hyyrö's
/// block-wise formulation, one pass over the blocks of `b` per byte of `a`,
/// passing the horizontal deltas of each block's last row on to the next
/// block (a −1 delta coming in acts as a match in the block's first row,
/// which is what carries the addition across blocks).
fn long_similarities(a: &[u8], b: &[u8], b_blocks: &[Block]) -> (f64, f64) {
    let (n, m) = (a.len(), b.len());
    let words = b_blocks.len();
    debug_assert_eq!(words, m.div_ceil(64));

    // Jaro's matching, exactly as strsim does it: the window of `a[i]` is
    // `i - search_range ..= i + search_range`, clipped to `b`.
    let search_range = (n.max(m) / 2).saturating_sub(1);
    let mut b_matched = vec![0u64; words];
    let mut a_matched = vec![0u64; n.div_ceil(64)];
    let mut matches = 0usize;
    for (i, &c) in a.iter().enumerate() {
        let start = i.saturating_sub(search_range);
        let end = (i + search_range + 1).min(m);
        if start >= end {
            continue;
        }
        let c = usize::from(c & 31);
        let (first, last) = (start / 64, (end - 1) / 64);
        for word in first..=last {
            let mut candidates = b_blocks[word][c] & !b_matched[word];
            if word == first {
                candidates &= u64::MAX << (start % 64);
            }
            if word == last {
                candidates &= u64::MAX >> (63 - (end - 1) % 64);
            }
            if candidates != 0 {
                b_matched[word] |= candidates & candidates.wrapping_neg();
                a_matched[i / 64] |= 1 << (i % 64);
                matches += 1;
                break;
            }
        }
    }
    // Transpositions: the matched bytes of `a` in order against the matched
    // bytes of `b` in order.
    let mut transpositions = 0usize;
    let mut b_positions = set_bits(&b_matched);
    for i in set_bits(&a_matched) {
        let j = b_positions.next().expect("as many matches in b as in a");
        transpositions += usize::from(a[i] != b[j]);
    }

    // Levenshtein, `b` vertical (its blocks), `a` horizontal.
    let mut pv = vec![u64::MAX; words];
    let mut mv = vec![0u64; words];
    let last_bit = 1u64 << ((m - 1) % 64);
    let mut distance = m;
    for &c in a {
        let c = usize::from(c & 31);
        // Row 0 of the DP is 0, 1, 2, ...: a +1 horizontal delta enters
        // the first block.
        let (mut ph_carry, mut mh_carry) = (1u64, 0u64);
        for word in 0..words {
            let eq = b_blocks[word][c];
            let (v_plus, v_minus) = (pv[word], mv[word]);
            let x = eq | mh_carry;
            let d0 = ((x & v_plus).wrapping_add(v_plus) ^ v_plus) | x | v_minus;
            let ph = v_minus | !(d0 | v_plus);
            let mh = d0 & v_plus;
            let (ph_in, mh_in) = (ph_carry, mh_carry);
            if word + 1 < words {
                ph_carry = ph >> 63;
                mh_carry = mh >> 63;
            } else {
                ph_carry = u64::from(ph & last_bit != 0);
                mh_carry = u64::from(mh & last_bit != 0);
            }
            let ph = (ph << 1) | ph_in;
            let mh = (mh << 1) | mh_in;
            pv[word] = mh | !(d0 | ph);
            mv[word] = ph & d0;
        }
        // At most one of the two is set.
        distance = distance + ph_carry as usize - mh_carry as usize;
    }

    finish(a, b, matches, transpositions, distance)
}

/// The positions of the set bits of a bit set stored in 64-bit words, in
/// increasing order.
fn set_bits(words: &[u64]) -> impl Iterator<Item = usize> + '_ {
    words.iter().enumerate().flat_map(|(word, &bits)| {
        let mut rest = bits;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                64 * word + bit
            })
        })
    })
}

/// What one pass over `a` against a profiled `b` finds.
struct Scan {
    /// Positions of `a` and of `b` that Jaro matches.
    a_matched: u64,
    b_matched: u64,
    /// Levenshtein distance between `a` and `b`.
    distance: usize,
}

/// Jaro's matching and Levenshtein's distance, for `a` and a profiled `b`
/// of 1 to 64 bytes each, in one loop without data-dependent branches (the
/// two dependency chains overlap).
///
/// Jaro (as strsim computes it): each byte of `a`, in order, matches the
/// first not yet matched equal byte of `b` inside the search window; with
/// `b`'s positions as bit sets that is the lowest bit of
/// `positions[c] & window & !matched`.
///
/// Levenshtein: Myers' bit-vector algorithm in Hyyrö's formulation for edit
/// distance; `pv`/`mv` hold the +1/−1 vertical deltas of the current DP
/// column, and `distance` tracks its last cell.
fn scan(a: &[u8], b_len: usize, b_positions: &[u64; 32]) -> Scan {
    let search_range = (a.len().max(b_len) / 2).saturating_sub(1);
    let b_all = u64::MAX >> (64 - b_len);
    // The window for `a[i]` is [i - search_range, i + search_range] within
    // `b`: `window_end` holds the bits below its end, `window_start` those
    // below its start; both move up one bit per byte of `a`.
    let mut window_end = b_all & (u64::MAX >> (63 - search_range));
    let mut window_start = 0u64;
    let (mut a_bit, mut a_matched, mut b_matched) = (1u64, 0u64, 0u64);

    let last = 1u64 << (b_len - 1);
    let (mut pv, mut mv, mut distance) = (u64::MAX, 0u64, b_len);

    for (i, &c) in a.iter().enumerate() {
        let eq = b_positions[usize::from(c & 31)];

        let candidates = eq & window_end & !window_start & !b_matched;
        let first = candidates & candidates.wrapping_neg();
        b_matched |= first;
        a_matched |= if first != 0 { a_bit } else { 0 };
        a_bit <<= 1;
        window_end = ((window_end << 1) | 1) & b_all;
        window_start = (window_start << 1) | u64::from(i + 1 > search_range);

        let xv = eq | mv;
        let xh = ((eq & pv).wrapping_add(pv) ^ pv) | eq;
        let ph = mv | !(xh | pv);
        let mh = pv & xh;
        // At most one of the two is set (`pv` and `mv` are disjoint).
        distance = distance + usize::from(ph & last != 0) - usize::from(mh & last != 0);
        // Row 0 of the DP is 0, 1, 2, ...: a +1 horizontal delta enters.
        let ph = (ph << 1) | 1;
        let mh = mh << 1;
        pv = mh | !(xv | ph);
        mv = ph & xv;
    }
    Scan {
        a_matched,
        b_matched,
        distance,
    }
}

/// Jaro's transpositions (not yet halved): matched bytes of `a` in order
/// against matched bytes of `b` in order, counting those that differ.
fn transpositions(a: &[u8], b: &[u8], a_matched: u64, b_matched: u64) -> usize {
    let (mut a_rest, mut b_rest, mut count) = (a_matched, b_matched, 0);
    while a_rest != 0 {
        let (i, j) = (a_rest.trailing_zeros(), b_rest.trailing_zeros());
        count += usize::from(a[i as usize] != b[j as usize]);
        a_rest &= a_rest - 1;
        b_rest &= b_rest - 1;
    }
    count
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
    fn category_lookup_follows_the_table_order() {
        // The definition: the first category with a key among the stems.
        let by_definition = |text: &NormalizedText| {
            CATEGORY_STEMS.iter().find_map(|(category, keys)| {
                keys.iter()
                    .any(|key| text.stems.iter().any(|stem| stem == key))
                    .then_some(*category)
            })
        };
        let normalizer = TextNormalizer::new();
        for text in [
            "car parking",
            "rental car",
            "air travel",
            "Hotel bar and restaurant",
            "Uber to the airport parking garage",
            "Amtrak rail",
            "Office supplies",
            "dinner flight hotel",
        ] {
            let text = normalizer.normalize(text).unwrap();
            assert_eq!(travel_category(&text), by_definition(&text), "{text:?}");
        }
        for (_, keys) in CATEGORY_STEMS {
            for key in *keys {
                let text = NormalizedText {
                    cleaned: key.to_string(),
                    stems: vec![key.to_string()],
                };
                assert_eq!(travel_category(&text), by_definition(&text), "{key}");
            }
        }
    }

    #[test]
    fn jaccard_on_stem_sets() {
        let s = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(jaccard(&s(&["a", "b"]), &s(&["b", "c"])), 1.0 / 3.0);
        assert_eq!(jaccard(&s(&["a"]), &s(&["a"])), 1.0);
        assert_eq!(jaccard(&s(&[]), &s(&[])), 0.0);
    }

    #[test]
    fn stem_cache_gives_the_same_texts() {
        let normalizer = TextNormalizer::new();
        let mut cache = StemCache::default();
        for text in [
            "Southwest Airlines",
            "SOUTHWEST AIR 5262134",
            "Don't rent cars",
            "Hôtel Le Méridien",
            "Southwest Airlines",
            "the of and",
        ] {
            assert_eq!(
                normalizer.normalize_cached(text, &mut cache),
                normalizer.normalize(text),
                "{text}"
            );
        }
    }

    /// Deterministic pseudo-random strings over `alphabet`.
    fn random_strings(alphabet: &[u8], count: usize, max_len: usize, seed: u64) -> Vec<String> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let len = (next() % (max_len as u64 + 1)) as usize;
                (0..len)
                    .map(|_| char::from(alphabet[(next() % alphabet.len() as u64) as usize]))
                    .collect()
            })
            .collect()
    }

    fn assert_same_as_strsim(strings: &[String]) {
        let profiles: Vec<_> = strings.iter().map(|s| SimilarityProfile::new(s)).collect();
        for a in &profiles {
            for b in &profiles {
                let (x, y) = (a.text(), b.text());
                assert_eq!(
                    jaro_winkler(a, b).to_bits(),
                    strsim::jaro_winkler(x, y).to_bits(),
                    "jaro_winkler({x:?}, {y:?})"
                );
                assert_eq!(
                    normalized_levenshtein(a, b).to_bits(),
                    strsim::normalized_levenshtein(x, y).to_bits(),
                    "normalized_levenshtein({x:?}, {y:?})"
                );
                let (jw, lev) = character_similarities(a, b);
                assert_eq!(jw.to_bits(), strsim::jaro_winkler(x, y).to_bits());
                assert_eq!(
                    lev.to_bits(),
                    strsim::normalized_levenshtein(x, y).to_bits()
                );
            }
        }
    }

    #[test]
    fn bit_parallel_similarities_equal_strsim_on_vendor_names() {
        let normalizer = TextNormalizer::new();
        let names = [
            "Southwest Airlines",
            "SOUTHWEST AIR 5262134",
            "Delta Air Lines",
            "UBER *TRIP HELP.UBER.COM",
            "LYFT *RIDE TUE 4PM",
            "HERTZ RENT-A-CAR",
            "Avis Rent A Car",
            "Marriott Downtown",
            "Hilton Garden Inn",
            "Hôtel Le Méridien",
            "taxi",
            "x",
            "Amtrak",
            "Starbucks Store",
            "The Capital Grille",
        ];
        let mut cleaned: Vec<String> = names
            .iter()
            .map(|name| normalizer.normalize(name).unwrap().cleaned)
            .collect();
        // The longest single-block text, the shortest two-block one, and
        // long transliterated CJK names.
        cleaned.push(format!("southwest {}", "x".repeat(MAX_PROFILED_LEN - 10)));
        cleaned.push(format!("southwest {}", "x".repeat(MAX_PROFILED_LEN - 9)));
        assert!(cleaned.iter().any(|s| s.len() == MAX_PROFILED_LEN));
        assert!(cleaned.iter().any(|s| s.len() == MAX_PROFILED_LEN + 1));
        for name in [
            "北京首都国际机场停车场有限公司北京首都国际机场停车场有限公司北京首都国际机场",
            "上海浦东国际机场出租汽车服务有限公司上海浦东国际机场出租汽车服务有限公司",
            "東京駅八重洲口タクシー乗り場東京駅八重洲口タクシー乗り場",
        ] {
            let text = normalizer.normalize(name).unwrap().cleaned;
            assert!(text.len() > MAX_PROFILED_LEN, "{text}");
            cleaned.push(text);
        }
        assert_same_as_strsim(&cleaned);
    }

    #[test]
    fn bit_parallel_similarities_equal_strsim_on_random_strings() {
        // Small alphabets make many matches, transpositions and ties;
        // lengths 0 to 70 cover the empty and the unprofiled fallbacks.
        assert_same_as_strsim(&random_strings(b"ab ", 150, 70, 1));
        assert_same_as_strsim(&random_strings(b"abcd", 150, 20, 2));
        assert_same_as_strsim(&random_strings(b"etaoin shrdlu", 150, 66, 3));
        assert_same_as_strsim(&random_strings(b"abcdefghijklmnopqrstuvwxyz ", 150, 64, 4));
        // Lengths across one, two and several blocks, against each other
        // and against short texts.
        assert_same_as_strsim(&random_strings(b"ab ", 60, 300, 6));
        assert_same_as_strsim(&random_strings(b"abcdefgh ", 80, 200, 7));
        assert_same_as_strsim(&random_strings(b"etaoin shrdlu", 40, 600, 8));
        assert_same_as_strsim(&random_strings(b"abcdefghijklmnopqrstuvwxyz ", 60, 400, 9));
        // Bytes outside the profiled alphabet fall back to strsim.
        assert_same_as_strsim(&random_strings(b"aB'-", 60, 10, 5));
    }
}
