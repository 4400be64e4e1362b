//! Version constraints as Nomad evaluates them: the `version` operand (HashiCorp go-version:
//! `>= 1.2, < 2`, `~> 1.4`, prereleases only match constraints that name one) and the
//! `semver` operand (Semver 2.0 ordering, prereleases compare normally).

use std::cmp::Ordering;

/// A parsed version: numeric segments (at least three, zero-padded) and a prerelease tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub segments: Vec<u64>,
    /// Number of segments actually written (for `~>`).
    pub written: usize,
    pub pre: String,
}

impl Version {
    /// Parses `1`, `1.2`, `v1.2.3`, `1.2.3-beta.1+meta`. `None` if malformed.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = s.split_once('+').map(|(a, _)| a).unwrap_or(s);
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, p.to_string()),
            None => (s, String::new()),
        };
        if core.is_empty() {
            return None;
        }
        let mut segments = Vec::new();
        for part in core.split('.') {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            segments.push(part.parse().ok()?);
        }
        if pre.is_empty() && s.contains('-') {
            return None;
        }
        let written = segments.len();
        while segments.len() < 3 {
            segments.push(0);
        }
        Some(Version {
            segments,
            written,
            pre,
        })
    }

    fn compare(&self, other: &Version) -> Ordering {
        let n = self.segments.len().max(other.segments.len());
        for i in 0..n {
            let a = self.segments.get(i).copied().unwrap_or(0);
            let b = other.segments.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        compare_pre(&self.pre, &other.pre)
    }
}

/// Semver prerelease precedence: no prerelease ranks above any prerelease; identifiers compare
/// numerically when both are numbers, lexically otherwise.
fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let mut ai = a.split('.');
    let mut bi = b.split('.');
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    _ => x.cmp(y),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Pessimistic,
}

#[derive(Debug, Clone)]
struct Single {
    op: Op,
    v: Version,
}

/// Which rule set to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// go-version, Nomad's `version` operand.
    GoVersion,
    /// Nomad's `semver` operand.
    Semver,
}

/// A comma-separated list of constraints, all of which must hold.
#[derive(Debug, Clone)]
pub struct Constraints {
    list: Vec<Single>,
    flavor: Flavor,
}

impl Constraints {
    /// Parses `>= 1.2, < 2.0`. `None` when any part is malformed (the node then does not
    /// match, as in Nomad).
    pub fn parse(s: &str, flavor: Flavor) -> Option<Constraints> {
        let mut list = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (op, rest) = if let Some(r) = part.strip_prefix(">=") {
                (Op::Ge, r)
            } else if let Some(r) = part.strip_prefix("<=") {
                (Op::Le, r)
            } else if let Some(r) = part.strip_prefix("!=") {
                (Op::Ne, r)
            } else if let Some(r) = part.strip_prefix("~>") {
                if flavor == Flavor::Semver {
                    return None;
                }
                (Op::Pessimistic, r)
            } else if let Some(r) = part.strip_prefix('>') {
                (Op::Gt, r)
            } else if let Some(r) = part.strip_prefix('<') {
                (Op::Lt, r)
            } else if let Some(r) = part.strip_prefix('=') {
                (Op::Eq, r)
            } else {
                (Op::Eq, part)
            };
            let v = Version::parse(rest)?;
            list.push(Single { op, v });
        }
        if list.is_empty() {
            return None;
        }
        Some(Constraints { list, flavor })
    }

    pub fn check(&self, v: &Version) -> bool {
        self.list.iter().all(|c| {
            // go-version: a prerelease only satisfies constraints that carry a prerelease
            // on the same core version.
            if self.flavor == Flavor::GoVersion
                && !v.pre.is_empty()
                && (c.v.pre.is_empty() || c.v.segments != v.segments)
            {
                return false;
            }
            let o = v.compare(&c.v);
            match c.op {
                Op::Eq => o == Ordering::Equal,
                Op::Ne => o != Ordering::Equal,
                Op::Gt => o == Ordering::Greater,
                Op::Ge => o != Ordering::Less,
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Pessimistic => {
                    if o == Ordering::Less {
                        return false;
                    }
                    // All but the last written segment must match.
                    let keep = c.v.written.saturating_sub(1).max(1);
                    (0..keep).all(|i| v.segments.get(i) == c.v.segments.get(i))
                }
            }
        })
    }
}

/// Whether `version` satisfies `constraint` under `flavor`; malformed input never matches.
pub fn matches(version: &str, constraint: &str, flavor: Flavor) -> bool {
    let Some(v) = Version::parse(version) else {
        return false;
    };
    Constraints::parse(constraint, flavor).is_some_and(|c| c.check(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_version_ranges() {
        assert!(matches("1.5.2", ">= 1.2, < 2", Flavor::GoVersion));
        assert!(!matches("2.0.0", ">= 1.2, < 2", Flavor::GoVersion));
        assert!(matches("1.4.7", "~> 1.4.3", Flavor::GoVersion));
        assert!(!matches("1.5.0", "~> 1.4.3", Flavor::GoVersion));
        assert!(matches("1.9", "~> 1.4", Flavor::GoVersion));
        assert!(!matches("1.3.0-beta1", ">= 1.0", Flavor::GoVersion));
        assert!(matches("v1.3.0", "= 1.3", Flavor::GoVersion));
        assert!(!matches("abc", ">= 1", Flavor::GoVersion));
    }

    #[test]
    fn semver_orders_prereleases() {
        assert!(matches("1.3.0-beta1", ">= 1.0", Flavor::Semver));
        assert!(matches("1.0.0-alpha", "< 1.0.0", Flavor::Semver));
        assert!(matches("1.0.0-alpha.2", "> 1.0.0-alpha.1", Flavor::Semver));
        assert!(!matches("1.4.0", "~> 1.4", Flavor::Semver));
    }
}
