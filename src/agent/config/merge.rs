//! How agent config files combine (Nomad's `Config.Merge`): a later file's scalars replace,
//! blocks merge key by key, maps merge per key, labeled blocks merge per label, most lists
//! replace and a few (`Appended`) append. Also the `section!` macro that declares a config
//! block once and derives its decoding and merging, and the value types blocks share.

use caravan_hcl1::{Blocks, MaybeLabeled};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Folds a later file's value into an earlier one.
pub trait Merge {
    fn merge(&mut self, later: Self);
}

macro_rules! replace_merge {
    ($($t:ty),*) => {$(
        impl Merge for $t {
            fn merge(&mut self, later: Self) {
                *self = later;
            }
        }
    )*};
}
replace_merge!(
    String,
    bool,
    i64,
    u16,
    f64,
    serde_json::Value,
    Duration,
    PortRanges
);

impl<T: Merge> Merge for Option<T> {
    fn merge(&mut self, later: Self) {
        match (self.as_mut(), later) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => *self = Some(b),
            (_, None) => {}
        }
    }
}

/// Lists replace the earlier list when the later one is not empty.
impl<T> Merge for Vec<T> {
    fn merge(&mut self, later: Self) {
        if !later.is_empty() {
            *self = later;
        }
    }
}

impl<V: Merge> Merge for BTreeMap<String, V> {
    fn merge(&mut self, later: Self) {
        for (k, v) in later {
            match self.get_mut(&k) {
                Some(old) => old.merge(v),
                None => {
                    self.insert(k, v);
                }
            }
        }
    }
}

fn merge_labeled<T: Merge>(into: &mut Vec<(String, T)>, later: Vec<(String, T)>) {
    for (label, v) in later {
        match into.iter_mut().find(|(l, _)| *l == label) {
            Some((_, old)) => old.merge(v),
            None => into.push((label, v)),
        }
    }
}

impl<T: Merge> Merge for Blocks<T> {
    fn merge(&mut self, later: Self) {
        merge_labeled(&mut self.0, later.0)
    }
}

impl<T: Merge> Merge for MaybeLabeled<T> {
    fn merge(&mut self, later: Self) {
        merge_labeled(&mut self.0, later.0)
    }
}

/// A list that later files append to (Nomad: `server.retry_join`, `client.servers`, ...).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Appended<T>(pub Vec<T>);

impl<T> Merge for Appended<T> {
    fn merge(&mut self, later: Self) {
        self.0.extend(later.0);
    }
}

/// Declares a config block: a struct whose every key is optional, that refuses unknown keys,
/// and merges field by field.
macro_rules! section {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $f:ident : $t:ty, )* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name { $( $(#[$fm])* pub $f: $t, )* }

        impl $crate::agent::config::merge::Merge for $name {
            fn merge(&mut self, later: Self) {
                $( $crate::agent::config::merge::Merge::merge(&mut self.$f, later.$f); )*
            }
        }
    };
}
pub(crate) use section;

/// A Go duration (`"30s"`, `"1h30m"`, `"500ms"`), in nanoseconds like the rest of the data model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duration(pub i64);

impl Duration {
    pub fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0) as u64)
    }
}

/// Parses Go's `time.ParseDuration` syntax.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {s:?} (use e.g. \"30s\", \"5m\", \"1h30m\")");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    let v = total.round() as i64;
    Ok(if neg { -v } else { v })
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_go_duration(s.trim())
            .map(Duration)
            .map_err(serde::de::Error::custom)
    }
}

/// A reserved-ports specification (`"22,80,8000-8100"`), checked when read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRanges(pub String);

impl<'de> Deserialize<'de> for PortRanges {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        caravan_structs::parse_port_ranges(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid port list {s:?}: {e}")))?;
        Ok(PortRanges(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn merge_rules() {
        let mut a = Some(vec![1]);
        a.merge(Some(vec![]));
        assert_eq!(a, Some(vec![1]));
        let mut b = Appended(vec![1]);
        b.merge(Appended(vec![2]));
        assert_eq!(b.0, vec![1, 2]);
        let mut m = BTreeMap::from([("a".to_string(), "1".to_string())]);
        Merge::merge(&mut m, BTreeMap::from([("b".to_string(), "2".to_string())]));
        assert_eq!(m.len(), 2);
        let mut l = Blocks(vec![("x".to_string(), Some(1i64)), ("y".to_string(), None)]);
        l.merge(Blocks(vec![
            ("y".to_string(), Some(2)),
            ("z".to_string(), None),
        ]));
        assert_eq!(l.0.len(), 3);
        assert_eq!(l.get("y"), Some(&Some(2)));
    }
}
