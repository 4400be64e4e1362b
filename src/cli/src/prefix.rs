//! Resolving what a user typed (an ID, an ID prefix, a job name) to one object, the way
//! Nomad's CLI does: UUID prefixes lose their dashes' effect and odd trailing characters,
//! exact matches win, and several matches are shown for the user to choose.

use std::collections::BTreeMap;

/// Nomad's `sanitizeUUIDPrefix`: a prefix of a UUID longer than one dash-group is searched
/// with an even number of hex characters (the last odd one dropped).
pub fn sanitize_uuid_prefix(prefix: &str) -> String {
    let hyphens = prefix.matches('-').count();
    let length = prefix.len() - hyphens;
    if length % 2 == 1 && prefix.len() > 1 {
        prefix[..prefix.len() - 1].to_string()
    } else {
        prefix.to_string()
    }
}

/// Narrows what a list endpoint returned for `prefix` (the sanitized form of the typed
/// `id`): keeps the items whose ID starts with `prefix`, in case the server ignored the
/// parameter, and when one of them is exactly `id`, only that one.
pub fn narrow_to_prefix<T>(items: Vec<T>, id: &str, prefix: &str, id_of: fn(&T) -> &str) -> Vec<T> {
    let mut items: Vec<T> = items
        .into_iter()
        .filter(|i| id_of(i).starts_with(prefix))
        .collect();
    if let Some(pos) = items.iter().position(|i| id_of(i) == id) {
        items = vec![items.swap_remove(pos)];
    }
    items
}

/// The outcome of matching a prefix against candidate IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    None,
    One(String),
    Many(Vec<String>),
}

/// Matches `prefix` against `ids`: an exact ID wins; otherwise the IDs that start with it.
pub fn match_prefix<S: AsRef<str>>(prefix: &str, ids: &[S]) -> Match {
    if let Some(exact) = ids.iter().find(|i| i.as_ref() == prefix) {
        return Match::One(exact.as_ref().to_string());
    }
    let mut hits: Vec<String> = ids
        .iter()
        .map(|i| i.as_ref())
        .filter(|i| i.starts_with(prefix))
        .map(|s| s.to_string())
        .collect();
    hits.sort();
    hits.dedup();
    match hits.len() {
        0 => Match::None,
        1 => Match::One(hits.remove(0)),
        _ => Match::Many(hits),
    }
}

/// The outcome of a cross-context search (`caravan status <prefix>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchMatch {
    None,
    /// Exactly one object: its context (`jobs`, `allocs`, ...) and ID.
    One(String, String),
    /// Several: context and ID of each.
    Many(Vec<(String, String)>),
}

/// The contexts `status` knows how to show, in the order they are tried.
pub const SEARCH_CONTEXTS: &[&str] = &["jobs", "allocs", "nodes", "evals", "deployments"];

/// Picks from `/v1/search` matches: an exact ID in any context wins, then a single match.
pub fn pick_search_match(prefix: &str, matches: &BTreeMap<String, Vec<String>>) -> SearchMatch {
    let mut all: Vec<(String, String)> = vec![];
    for ctx in SEARCH_CONTEXTS {
        for id in matches.get(*ctx).into_iter().flatten() {
            if id == prefix {
                return SearchMatch::One(ctx.to_string(), id.clone());
            }
            all.push((ctx.to_string(), id.clone()));
        }
    }
    match all.len() {
        0 => SearchMatch::None,
        1 => {
            let (c, i) = all.remove(0);
            SearchMatch::One(c, i)
        }
        _ => SearchMatch::Many(all),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_odd_prefixes() {
        assert_eq!(sanitize_uuid_prefix("abc"), "ab");
        assert_eq!(sanitize_uuid_prefix("abcd"), "abcd");
        assert_eq!(sanitize_uuid_prefix("abcdef12-3"), "abcdef12-");
        assert_eq!(sanitize_uuid_prefix("a"), "a");
    }

    #[test]
    fn narrowing_keeps_prefix_matches_and_prefers_the_exact_id() {
        let ids = || vec!["abcd1234", "abcd", "abce", "ffff"];
        let id_of: fn(&&'static str) -> &'static str = |s| s;
        assert_eq!(
            narrow_to_prefix(ids(), "abc", "ab", id_of),
            vec!["abcd1234", "abcd", "abce"]
        );
        assert_eq!(narrow_to_prefix(ids(), "abcd", "abcd", id_of), vec!["abcd"]);
        assert!(narrow_to_prefix(ids(), "zz", "zz", id_of).is_empty());
    }

    #[test]
    fn exact_match_wins_over_prefix() {
        let ids = ["web", "web-api", "db"];
        assert_eq!(match_prefix("web", &ids), Match::One("web".into()));
        assert_eq!(
            match_prefix("we", &ids),
            Match::Many(vec!["web".into(), "web-api".into()])
        );
        assert_eq!(match_prefix("d", &ids), Match::One("db".into()));
        assert_eq!(match_prefix("x", &ids), Match::None);
    }

    #[test]
    fn search_matches() {
        let mut m = BTreeMap::new();
        m.insert("jobs".to_string(), vec!["example".to_string()]);
        m.insert("allocs".to_string(), vec![]);
        assert_eq!(
            pick_search_match("ex", &m),
            SearchMatch::One("jobs".into(), "example".into())
        );
        m.insert("nodes".to_string(), vec!["ex12".to_string()]);
        assert_eq!(
            pick_search_match("ex", &m),
            SearchMatch::Many(vec![
                ("jobs".into(), "example".into()),
                ("nodes".into(), "ex12".into())
            ])
        );
        assert_eq!(
            pick_search_match("example", &m),
            SearchMatch::One("jobs".into(), "example".into())
        );
        assert_eq!(pick_search_match("zz", &BTreeMap::new()), SearchMatch::None);
    }
}
