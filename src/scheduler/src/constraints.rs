//! Constraint and affinity evaluation against a node: target interpolation (`${attr.X}`,
//! `${node.unique.id}`, ...), every Nomad operator, datacenter globs, node pools, and the
//! implicit constraints Nomad adds for features a job uses (Vault, Consul, CNI, ...).

use crate::version::{self, Flavor};
use caravan_structs::{Constraint, Job, Node, TaskGroup};
use regex::Regex;
use std::collections::HashMap;

pub const OP_DISTINCT_HOSTS: &str = "distinct_hosts";
pub const OP_DISTINCT_PROPERTY: &str = "distinct_property";

/// Resolves a constraint target against a node: `${...}` interpolations or a literal.
/// Returns `None` when the node lacks the attribute (or the interpolation is unknown).
pub fn resolve_target<'a>(target: &'a str, node: &'a Node) -> Option<&'a str> {
    if !target.starts_with("${") {
        return Some(target);
    }
    match target {
        "${node.unique.id}" => Some(&node.id),
        "${node.datacenter}" => Some(&node.datacenter),
        "${node.unique.name}" => Some(&node.name),
        "${node.class}" => Some(&node.node_class),
        "${node.pool}" => Some(&node.node_pool),
        _ => {
            let inner = target.strip_prefix("${")?.strip_suffix('}')?;
            if let Some(attr) = inner.strip_prefix("attr.") {
                node.attributes.get(attr).map(String::as_str)
            } else if let Some(meta) = inner.strip_prefix("meta.") {
                node.meta.get(meta).map(String::as_str)
            } else {
                None
            }
        }
    }
}

/// Compiled regular expressions, kept for one scheduling run.
#[derive(Debug, Default)]
pub struct RegexCache(HashMap<String, Option<Regex>>);

impl RegexCache {
    fn is_match(&mut self, pattern: &str, value: &str) -> bool {
        let re = self
            .0
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).ok());
        re.as_ref().is_some_and(|r| r.is_match(value))
    }
}

/// Whether a resolved `(lval, rval)` pair satisfies `operand`, with Nomad's semantics
/// (`distinct_*` always pass here: they are checked against placements elsewhere).
pub fn check_operand(
    cache: &mut RegexCache,
    operand: &str,
    lval: Option<&str>,
    rval: Option<&str>,
) -> bool {
    match operand {
        OP_DISTINCT_HOSTS | OP_DISTINCT_PROPERTY => true,
        "=" | "==" | "is" => matches!((lval, rval), (Some(l), Some(r)) if l == r),
        "!=" | "not" => lval != rval,
        "<" | "<=" | ">" | ">=" => match (lval, rval) {
            (Some(l), Some(r)) => check_order(operand, l, r),
            _ => false,
        },
        "is_set" => lval.is_some(),
        "is_not_set" => lval.is_none(),
        "version" => match (lval, rval) {
            (Some(l), Some(r)) => version::matches(l, r, Flavor::GoVersion),
            _ => false,
        },
        "semver" => match (lval, rval) {
            (Some(l), Some(r)) => version::matches(l, r, Flavor::Semver),
            _ => false,
        },
        "regexp" => match (lval, rval) {
            (Some(l), Some(r)) => cache.is_match(r, l),
            _ => false,
        },
        "set_contains" | "set_contains_all" => match (lval, rval) {
            (Some(l), Some(r)) => {
                let have: Vec<&str> = l.split(',').map(str::trim).collect();
                r.split(',').map(str::trim).all(|x| have.contains(&x))
            }
            _ => false,
        },
        "set_contains_any" => match (lval, rval) {
            (Some(l), Some(r)) => {
                let have: Vec<&str> = l.split(',').map(str::trim).collect();
                r.split(',').map(str::trim).any(|x| have.contains(&x))
            }
            _ => false,
        },
        _ => false,
    }
}

/// Integers if both parse, then floats, then lexical order.
fn check_order(op: &str, l: &str, r: &str) -> bool {
    fn cmp<T: PartialOrd>(op: &str, a: T, b: T) -> bool {
        match op {
            "<" => a < b,
            "<=" => a <= b,
            ">" => a > b,
            ">=" => a >= b,
            _ => false,
        }
    }
    if let (Ok(a), Ok(b)) = (l.parse::<i64>(), r.parse::<i64>()) {
        return cmp(op, a, b);
    }
    if let (Ok(a), Ok(b)) = (l.parse::<f64>(), r.parse::<f64>()) {
        return cmp(op, a, b);
    }
    cmp(op, l, r)
}

/// Whether the node satisfies one constraint.
pub fn meets_constraint(cache: &mut RegexCache, c: &Constraint, node: &Node) -> bool {
    let l = resolve_target(&c.l_target, node);
    let r = resolve_target(&c.r_target, node);
    check_operand(cache, &c.operand, l, r)
}

/// Glob match where `*` matches any run of characters (Nomad's datacenter patterns).
pub fn glob_match(pattern: &str, value: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == value;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = value;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Whether the node's datacenter is one of the job's (globs allowed).
pub fn datacenter_matches(job: &Job, node: &Node) -> bool {
    if job.datacenters.is_empty() {
        return true;
    }
    job.datacenters
        .iter()
        .any(|p| glob_match(p, &node.datacenter))
}

/// Whether the node is in the job's node pool (`all` takes any node).
pub fn node_pool_matches(job: &Job, node: &Node) -> bool {
    let want = if job.node_pool.is_empty() {
        caravan_structs::DEFAULT_NODE_POOL
    } else {
        job.node_pool.as_str()
    };
    let have = if node.node_pool.is_empty() {
        caravan_structs::DEFAULT_NODE_POOL
    } else {
        node.node_pool.as_str()
    };
    want == "all" || want == have
}

fn semver_constraint(l: &str, r: &str) -> Constraint {
    Constraint {
        l_target: l.into(),
        r_target: r.into(),
        operand: "semver".into(),
    }
}

/// The constraints Nomad injects into a group for the features it uses, so that a node
/// without the feature is filtered and the metrics name what is missing.
pub fn implied_constraints(tg: &TaskGroup) -> Vec<Constraint> {
    let mut out = Vec::new();
    let mut push = |c: Constraint| {
        if !out.contains(&c) {
            out.push(c);
        }
    };
    if tg.tasks.iter().any(|t| t.vault.is_some()) {
        push(semver_constraint("${attr.vault.version}", ">= 0.6.1"));
    }
    let services = tg
        .services
        .iter()
        .chain(tg.tasks.iter().flat_map(|t| t.services.iter()));
    for s in services {
        match s.provider.as_str() {
            "nomad" => push(Constraint {
                l_target: "${attr.nomad.service_discovery}".into(),
                r_target: "true".into(),
                operand: "=".into(),
            }),
            _ => push(semver_constraint("${attr.consul.version}", ">= 1.8.0")),
        }
    }
    if tg.networks.iter().any(|n| n.mode == "bridge") {
        for plugin in ["bridge", "firewall", "host-local", "loopback", "portmap"] {
            push(semver_constraint(
                &format!("${{attr.plugins.cni.version.{plugin}}}"),
                ">= 0.4.0",
            ));
        }
    }
    if tg.networks.iter().any(|n| n.mode.starts_with("cni/")) {
        push(Constraint {
            l_target: "${attr.plugins.cni.version.bridge}".into(),
            r_target: String::new(),
            operand: "is_set".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "dc1"));
        assert!(glob_match("dc*", "dc1"));
        assert!(!glob_match("dc*", "eu-dc1"));
        assert!(glob_match("*-west-*", "us-west-2"));
        assert!(glob_match("dc1", "dc1"));
        assert!(!glob_match("dc1", "dc2"));
    }

    #[test]
    fn targets_resolve() {
        let mut n = Node {
            id: "n1".into(),
            name: "host1".into(),
            node_class: "large".into(),
            ..Default::default()
        };
        n.attributes.insert("kernel.name".into(), "linux".into());
        n.meta.insert("rack".into(), "r1".into());
        assert_eq!(resolve_target("${attr.kernel.name}", &n), Some("linux"));
        assert_eq!(resolve_target("${meta.rack}", &n), Some("r1"));
        assert_eq!(resolve_target("${node.unique.id}", &n), Some("n1"));
        assert_eq!(resolve_target("${node.unique.name}", &n), Some("host1"));
        assert_eq!(resolve_target("${node.class}", &n), Some("large"));
        assert_eq!(resolve_target("${node.datacenter}", &n), Some("dc1"));
        assert_eq!(resolve_target("${node.pool}", &n), Some("default"));
        assert_eq!(resolve_target("${attr.nope}", &n), None);
        assert_eq!(resolve_target("literal", &n), Some("literal"));
    }
}
