//! "Did you mean ...?" for misspelt argument and block names: the accepted name closest to
//! what was written, when it is close enough to be a likely typo.

/// The candidate nearest to `word` by edit distance: at most 1 edit for names of up to three
/// letters, else a third of the length, between 2 and 3.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = if len <= 3 { 1 } else { (len / 3).clamp(2, 3) };
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        let names = ["interval", "timeout", "type", "port"];
        assert_eq!(closest("nterval", names), Some("interval"));
        assert_eq!(closest("prot", names), Some("port"));
        assert_eq!(closest("completely_else", names), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
