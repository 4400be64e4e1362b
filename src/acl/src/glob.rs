//! The `*` wildcard matching ACL rule labels use (the ryanuber/go-glob semantics Nomad relies
//! on), and Nomad's choice among several matching globs: the closest one.

use std::collections::BTreeMap;

/// Whether `pattern` (where `*` matches any run of characters, including none) matches `subject`.
/// Follows go-glob exactly, including its greedy left-to-right scan of the middle parts.
pub fn glob_match(pattern: &str, subject: &str) -> bool {
    if pattern.is_empty() {
        return subject.is_empty();
    }
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return subject == pattern;
    }
    let leading = pattern.starts_with('*');
    let trailing = pattern.ends_with('*');
    let end = parts.len() - 1;
    let mut subj = subject;
    for (i, part) in parts[..end].iter().enumerate() {
        match subj.find(part) {
            // The first part must start the subject unless the pattern starts with `*`.
            Some(idx) if i > 0 || leading || idx == 0 => subj = &subj[idx + part.len()..],
            _ => return false,
        }
    }
    trailing || subj.ends_with(parts[end])
}

/// How far glob `pattern` is from `name` (Nomad's difference: the characters the globs stand for,
/// plus one per `*`); smaller is closer.
pub fn glob_difference(pattern: &str, name: &str) -> i64 {
    name.len() as i64 - pattern.len() as i64 + pattern.matches('*').count() as i64
}

/// The value of the glob key in `globs` that matches `name` most closely (Nomad's
/// findClosestMatchingGlob). `globs` iterates in byte order like Nomad's radix tree. Among equally
/// close globs the last one in that order wins, whatever it grants: that is where Nomad's
/// `sort.SliceStable` with its `<=` comparison leaves them (exactly so for up to 20 matching
/// globs, where Go's stable sort is an insertion sort).
pub fn closest_glob<'a, V>(globs: &'a BTreeMap<String, V>, name: &str) -> Option<&'a V> {
    let mut best: Option<(i64, &V)> = None;
    for (pattern, value) in globs {
        if !glob_match(pattern, name) {
            continue;
        }
        let diff = glob_difference(pattern, name);
        if best.is_none_or(|(d, _)| diff <= d) {
            best = Some((diff, value));
        }
    }
    best.map(|(_, v)| v)
}
