//! Output shared by several commands: `-json`/`-t` rendering, short IDs, placement-failure
//! metrics, allocation tables and deployment blocks, each laid out as Nomad's CLI lays it out.

use crate::columnize::{format_kv, format_list};
use crate::gotemplate;
use crate::timefmt::{format_api_time, format_unix_nanos, pretty_ago};
use caravan_structs::{AllocListStub, AllocMetric, Deployment};
use serde::Serialize;
use serde_json::Value;

/// The first `len` characters of an ID (all of it when shorter).
pub fn limit(s: &str, len: usize) -> &str {
    match s.char_indices().nth(len) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// JSON indented by four spaces, as Nomad prints it.
pub fn pretty_json<T: Serialize>(v: &T) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if v.serialize(&mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// Renders `data` for `-json` or `-t`; `None` when neither was asked for.
pub fn data_format(json: bool, tmpl: Option<&str>, data: &Value) -> Option<Result<String, String>> {
    match (json, tmpl) {
        (true, Some(t)) if !t.is_empty() => Some(Err(
            "Both json and template formatting are not allowed".into(),
        )),
        (true, _) => Some(Ok(pretty_json(data))),
        (false, Some(t)) if !t.is_empty() => {
            Some(gotemplate::render(t, data).map_err(|e| e.to_string()))
        }
        _ => None,
    }
}

/// Nomad's `formatAllocMetrics`: why a group could not be placed, one `* ...` line each.
/// The heading of one task group's failed placements: `Task Group "web" (failed to place 2
/// allocations):` (the metric counts the failures beyond the first).
pub fn failed_placement_heading(tg: &str, m: &AllocMetric) -> String {
    let noun = if m.coalesced_failures > 0 {
        "allocations"
    } else {
        "allocation"
    };
    format!(
        "Task Group {tg:?} (failed to place {} {noun}):",
        m.coalesced_failures + 1
    )
}

pub fn format_alloc_metrics(m: &AllocMetric, scores: bool, prefix: &str) -> String {
    let mut out = String::new();
    if m.nodes_evaluated == 0 {
        out.push_str(&format!(
            "{prefix}* No nodes were eligible for evaluation\n"
        ));
    }
    for (dc, avail) in &m.nodes_available {
        if *avail == 0 {
            out.push_str(&format!(
                "{prefix}* No nodes are available in datacenter {dc:?}\n"
            ));
        }
    }
    for (class, n) in &m.class_filtered {
        out.push_str(&format!(
            "{prefix}* Class {class:?}: {n} nodes excluded by filter\n"
        ));
    }
    for (c, n) in &m.constraint_filtered {
        out.push_str(&format!(
            "{prefix}* Constraint {c:?}: {n} nodes excluded by filter\n"
        ));
    }
    if m.nodes_exhausted > 0 {
        out.push_str(&format!(
            "{prefix}* Resources exhausted on {} nodes\n",
            m.nodes_exhausted
        ));
    }
    for (class, n) in &m.class_exhausted {
        out.push_str(&format!(
            "{prefix}* Class {class:?} exhausted on {n} nodes\n"
        ));
    }
    for (dim, n) in &m.dimension_exhausted {
        out.push_str(&format!(
            "{prefix}* Dimension {dim:?} exhausted on {n} nodes\n"
        ));
    }
    for q in &m.quota_exhausted {
        out.push_str(&format!("{prefix}* Quota limit hit {q:?}\n"));
    }
    if scores {
        if !m.score_meta_data.is_empty() {
            let mut names: Vec<&String> = m
                .score_meta_data
                .iter()
                .flat_map(|s| s.scores.keys())
                .collect();
            names.sort();
            names.dedup();
            let mut rows = vec![format!(
                "Node|{}|final score",
                names
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("|")
            )];
            for s in &m.score_meta_data {
                let mut row = format!("{}|", s.node_id);
                for n in &names {
                    row.push_str(&format!(
                        "{}|",
                        go_g3(s.scores.get(*n).copied().unwrap_or(0.0))
                    ));
                }
                row.push_str(&go_g3(s.norm_score));
                rows.push(row);
            }
            out.push_str(&format_list(&rows));
        } else {
            for (name, score) in &m.scores {
                out.push_str(&format!("{prefix}* Score {name:?} = {score:.6}\n"));
            }
        }
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

/// Go's `%.3g` for the scores table.
fn go_g3(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let exp = f.abs().log10().floor() as i32;
    if !(-4..3).contains(&exp) {
        let s = format!("{:.2e}", f);
        return s;
    }
    let decimals = (2 - exp).max(0) as usize;
    let s = format!("{:.*}", decimals, f);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Nomad's allocation table (`Allocations` of `job status`, matches of a prefix).
pub fn format_alloc_list_stubs(stubs: &[AllocListStub], verbose: bool, len: usize) -> String {
    if stubs.is_empty() {
        return "No allocations placed".into();
    }
    let mut rows = vec![];
    if verbose {
        rows.push(
            "ID|Eval ID|Node ID|Node Name|Task Group|Version|Desired|Status|Created|Modified"
                .to_string(),
        );
        for a in stubs {
            rows.push(format!(
                "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
                limit(&a.id, len),
                limit(&a.eval_id, len),
                limit(&a.node_id, len),
                a.node_name,
                a.task_group,
                a.job_version,
                a.desired_status,
                a.client_status,
                format_unix_nanos(a.create_time),
                format_unix_nanos(a.modify_time)
            ));
        }
    } else {
        rows.push("ID|Node ID|Task Group|Version|Desired|Status|Created|Modified".to_string());
        for a in stubs {
            rows.push(format!(
                "{}|{}|{}|{}|{}|{}|{}|{}",
                limit(&a.id, len),
                limit(&a.node_id, len),
                a.task_group,
                a.job_version,
                a.desired_status,
                a.client_status,
                pretty_ago(a.create_time),
                pretty_ago(a.modify_time)
            ));
        }
    }
    format_list(&rows)
}

/// The per-group table of a deployment.
pub fn format_deployment_groups(d: &Deployment) -> String {
    let tgs = &d.task_groups;
    let autorevert = tgs.values().any(|s| s.auto_revert);
    let canaries = tgs.values().any(|s| s.desired_canaries > 0);
    let deadline = tgs.values().any(|s| s.progress_deadline != 0);
    let mut head = String::from("Task Group|");
    if autorevert {
        head.push_str("Auto Revert|");
    }
    if canaries {
        head.push_str("Promoted|");
    }
    head.push_str("Desired|");
    if canaries {
        head.push_str("Canaries|");
    }
    head.push_str("Placed|Healthy|Unhealthy");
    if deadline {
        head.push_str("|Progress Deadline");
    }
    let mut rows = vec![head];
    for (name, s) in tgs {
        let mut row = format!("{name}|");
        if autorevert {
            row.push_str(&format!("{}|", s.auto_revert));
        }
        if canaries {
            if s.desired_canaries > 0 {
                row.push_str(&format!("{}|", s.promoted));
            } else {
                row.push_str("N/A|");
            }
        }
        row.push_str(&format!("{}|", s.desired_total));
        if canaries {
            row.push_str(&format!("{}|", s.desired_canaries));
        }
        row.push_str(&format!(
            "{}|{}|{}",
            s.placed_allocs, s.healthy_allocs, s.unhealthy_allocs
        ));
        if deadline {
            let t = format_api_time(s.require_progress_by.as_deref());
            row.push_str(&format!("|{t}"));
        }
        rows.push(row);
    }
    format_list(&rows)
}

/// Nomad's deployment block (`deployment status`, the deployment monitor).
pub fn format_deployment(d: &Deployment, len: usize) -> String {
    let mut base = format_kv(&[
        format!("ID|{}", limit(&d.id, len)),
        format!("Job ID|{}", d.job_id),
        format!("Job Version|{}", d.job_version),
        format!("Status|{}", d.status),
        format!("Description|{}", d.status_description),
    ]);
    if !d.task_groups.is_empty() {
        base.push_str("\n\nDeployed\n");
        base.push_str(&format_deployment_groups(d));
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn failed_placement_heading_counts_coalesced_failures() {
        let mut m = AllocMetric::default();
        assert_eq!(
            failed_placement_heading("web", &m),
            "Task Group \"web\" (failed to place 1 allocation):"
        );
        m.coalesced_failures = 2;
        assert_eq!(
            failed_placement_heading("web", &m),
            "Task Group \"web\" (failed to place 3 allocations):"
        );
    }

    #[test]
    fn metrics_lines_match_nomad() {
        let mut m = AllocMetric {
            nodes_evaluated: 1,
            nodes_exhausted: 1,
            ..Default::default()
        };
        m.constraint_filtered
            .insert("${attr.kernel.name} = windows".into(), 1);
        m.dimension_exhausted.insert("memory".into(), 1);
        let out = format_alloc_metrics(&m, false, "  ");
        assert_eq!(
            out,
            "  * Constraint \"${attr.kernel.name} = windows\": 1 nodes excluded by filter\n  * Resources exhausted on 1 nodes\n  * Dimension \"memory\" exhausted on 1 nodes"
        );
        let none = format_alloc_metrics(&AllocMetric::default(), false, "");
        assert_eq!(none, "* No nodes were eligible for evaluation");
    }

    #[test]
    fn data_format_modes() {
        let v = serde_json::json!({"ID": "x"});
        assert_eq!(data_format(false, None, &v), None);
        assert_eq!(
            data_format(true, None, &v),
            Some(Ok("{\n    \"ID\": \"x\"\n}".into()))
        );
        assert_eq!(
            data_format(false, Some("{{.ID}}"), &v),
            Some(Ok("x".into()))
        );
        assert!(matches!(
            data_format(true, Some("{{.ID}}"), &v),
            Some(Err(_))
        ));
    }

    #[test]
    fn deployment_table() {
        let mut tgs = BTreeMap::new();
        tgs.insert(
            "cache".to_string(),
            caravan_structs::DeploymentState {
                desired_total: 2,
                placed_allocs: 2,
                healthy_allocs: 1,
                ..Default::default()
            },
        );
        let d = Deployment {
            id: "0123456789abcdef".into(),
            job_id: "example".into(),
            status: "running".into(),
            status_description: "Deployment is running".into(),
            task_groups: tgs,
            ..Default::default()
        };
        let out = format_deployment(&d, 8);
        assert!(out.starts_with("ID          = 01234567\n"));
        assert!(out.contains("Task Group  Desired  Placed  Healthy  Unhealthy\ncache       2        2       1        0"));
    }

    #[test]
    fn limits_ids() {
        assert_eq!(limit("0123456789", 8), "01234567");
        assert_eq!(limit("abc", 8), "abc");
        assert_eq!(limit("abc", usize::MAX), "abc");
        assert_eq!(go_g3(0.5), "0.5");
        assert_eq!(go_g3(0.123456), "0.123");
    }
}
