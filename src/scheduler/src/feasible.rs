//! Feasibility: whether a node can run a task group at all, before capacity is considered —
//! job constraints, drivers, group and task constraints (with the implied ones), and the
//! `distinct_hosts` / `distinct_property` constraints that depend on other placements.

use crate::constraints::{
    implied_constraints, meets_constraint, resolve_target, RegexCache, OP_DISTINCT_HOSTS,
    OP_DISTINCT_PROPERTY,
};
use caravan_structs::{Constraint, Job, Node, TaskGroup};
use std::collections::HashMap;

/// Nomad's filter reason for a node without a needed driver.
pub const FILTER_MISSING_DRIVERS: &str = "missing drivers";
/// Nomad's filter reason for a node without the host volumes a group asks for.
pub const FILTER_MISSING_HOST_VOLUMES: &str = "missing compatible host volumes";

/// A `distinct_property` constraint and the counts of its values among placements.
#[derive(Debug, Clone)]
pub struct DistinctProperty {
    pub target: String,
    pub limit: u64,
    /// Declared on the group (counts only the group's allocations) or on the job.
    pub group_level: bool,
    pub counts: HashMap<String, u64>,
}

impl DistinctProperty {
    /// `Err(reason)` when placing on `node` would exceed the limit.
    pub fn check(&self, node: &Node) -> Result<(), String> {
        let Some(v) = resolve_target(&self.target, node) else {
            return Err(format!("missing property {:?}", self.target));
        };
        let used = self.counts.get(v).copied().unwrap_or(0);
        if used >= self.limit {
            return Err(format!(
                "{OP_DISTINCT_PROPERTY}: {}={} used by {} allocs",
                self.target, v, used
            ));
        }
        Ok(())
    }
}

/// The static checks of one task group.
#[derive(Debug, Clone, Default)]
pub struct GroupChecks {
    pub job_constraints: Vec<Constraint>,
    pub group_constraints: Vec<Constraint>,
    pub drivers: Vec<String>,
    pub distinct_hosts_job: bool,
    pub distinct_hosts_group: bool,
    /// `volume { type = "host" }` requests: (source, read_only).
    pub host_volumes: Vec<(String, bool)>,
}

fn is_true(c: &Constraint) -> bool {
    c.r_target.is_empty()
        || matches!(
            c.r_target.as_str(),
            "true" | "1" | "t" | "T" | "TRUE" | "True"
        )
}

impl GroupChecks {
    pub fn new(job: &Job, tg: &TaskGroup) -> Self {
        let plain =
            |c: &&Constraint| c.operand != OP_DISTINCT_HOSTS && c.operand != OP_DISTINCT_PROPERTY;
        let job_constraints = job.constraints.iter().filter(plain).cloned().collect();
        let mut group_constraints: Vec<Constraint> = tg
            .constraints
            .iter()
            .chain(tg.tasks.iter().flat_map(|t| t.constraints.iter()))
            .filter(plain)
            .cloned()
            .collect();
        for c in implied_constraints(tg) {
            if !group_constraints.contains(&c) && !job.constraints.contains(&c) {
                group_constraints.push(c);
            }
        }
        let mut drivers: Vec<String> = tg.tasks.iter().map(|t| t.driver.clone()).collect();
        drivers.sort();
        drivers.dedup();
        let dh = |cs: &[Constraint]| {
            cs.iter()
                .any(|c| c.operand == OP_DISTINCT_HOSTS && is_true(c))
        };
        let host_volumes = tg
            .volumes
            .values()
            .filter(|v| v.get("Type").and_then(|t| t.as_str()) == Some("host"))
            .map(|v| {
                (
                    v.get("Source")
                        .and_then(|s| s.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    v.get("ReadOnly").and_then(|r| r.as_bool()).unwrap_or(false),
                )
            })
            .collect();
        GroupChecks {
            job_constraints,
            group_constraints,
            drivers,
            distinct_hosts_job: dh(&job.constraints),
            distinct_hosts_group: dh(&tg.constraints),
            host_volumes,
        }
    }

    /// Whether every check reads only what a node's computed class covers (datacenter, class,
    /// pool, drivers, non-`unique.` attributes and meta), so that nodes of one class all
    /// pass or all fail. Host volumes are not in the class.
    pub fn class_safe(&self) -> bool {
        self.host_volumes.is_empty()
            && self
                .job_constraints
                .iter()
                .chain(&self.group_constraints)
                .all(|c| class_safe_target(&c.l_target) && class_safe_target(&c.r_target))
    }

    /// `Err(reason)` with the reason Nomad's metrics use when the node cannot run the group.
    pub fn check(&self, cache: &mut RegexCache, node: &Node) -> Result<(), String> {
        for c in &self.job_constraints {
            if !meets_constraint(cache, c, node) {
                return Err(c.to_string());
            }
        }
        if !self.drivers.iter().all(|d| has_driver(node, d)) {
            return Err(FILTER_MISSING_DRIVERS.into());
        }
        for c in &self.group_constraints {
            if !meets_constraint(cache, c, node) {
                return Err(c.to_string());
            }
        }
        for (source, read_only) in &self.host_volumes {
            let Some(v) = node.host_volumes.get(source) else {
                return Err(FILTER_MISSING_HOST_VOLUMES.into());
            };
            // A read-only host volume cannot serve a read-write request.
            let node_ro = v.get("ReadOnly").and_then(|r| r.as_bool()).unwrap_or(false);
            if node_ro && !read_only {
                return Err(FILTER_MISSING_HOST_VOLUMES.into());
            }
        }
        Ok(())
    }
}

/// Whether a constraint target resolves to the same value on every node of one computed
/// class (see `Node::compute_class`): a literal, or an interpolation of a field the class
/// hashes. `${node.unique.*}` and `unique.` attributes and meta are per node.
fn class_safe_target(target: &str) -> bool {
    if !target.starts_with("${") {
        return true;
    }
    match target {
        "${node.datacenter}" | "${node.class}" | "${node.pool}" => true,
        _ => {
            let Some(inner) = target.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
                return false;
            };
            match inner
                .strip_prefix("attr.")
                .or_else(|| inner.strip_prefix("meta."))
            {
                Some(key) => !key.starts_with("unique."),
                // Every other interpolation resolves to nothing on any node.
                None => !inner.starts_with("node."),
            }
        }
    }
}

/// The group's and job's `distinct_property` constraints (job-level ones first).
pub fn distinct_properties(job: &Job, tg: &TaskGroup) -> Vec<DistinctProperty> {
    let make = |c: &Constraint, group_level: bool| DistinctProperty {
        target: c.l_target.clone(),
        limit: c
            .r_target
            .trim()
            .parse()
            .ok()
            .filter(|l| *l > 0)
            .unwrap_or(1),
        group_level,
        counts: HashMap::new(),
    };
    job.constraints
        .iter()
        .filter(|c| c.operand == OP_DISTINCT_PROPERTY)
        .map(|c| make(c, false))
        .chain(
            tg.constraints
                .iter()
                .filter(|c| c.operand == OP_DISTINCT_PROPERTY)
                .map(|c| make(c, true)),
        )
        .collect()
}

/// Go's `strconv.ParseBool` truth values.
fn parse_bool(s: &str) -> bool {
    matches!(s, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// Whether the node has the driver detected and healthy (or the legacy `driver.X` attribute).
pub fn has_driver(node: &Node, driver: &str) -> bool {
    match node.drivers.get(driver) {
        Some(info) => info.detected && info.healthy,
        None => node
            .attributes
            .get(&format!("driver.{driver}"))
            .is_some_and(|v| parse_bool(v)),
    }
}

/// Whether a node may take new work at all: ready, eligible, not draining.
pub fn node_schedulable(node: &Node) -> bool {
    node.ready_and_eligible() && node.drain_strategy.is_none()
}
