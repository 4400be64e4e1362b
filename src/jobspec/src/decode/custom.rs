//! The few keys that need more than a table row: driver `config`, network ports, group
//! volumes, and the constraint/affinity shorthands (`distinct_hosts = true`, `version = ...`).

use super::specs::{BIND_ADDRESS, TASK_SCALING, VOLUME};
use super::{Decoder, Field, JsonMap};
use crate::error::JobspecError;
use crate::tree::{join_path, Item, ItemKind};
use serde_json::Value as Json;

/// `config { ... }` or `config = { ... }`: free-form, but it must be a map.
pub(crate) fn config(
    d: &Decoder,
    path: &str,
    field: &Field,
    items: &[&Item],
    out: &mut JsonMap,
) -> Result<(), JobspecError> {
    if let Some(dup) = items.get(1) {
        return Err(d
            .rep
            .invalid(dup.pos, path, "duplicate config block: only one is allowed"));
    }
    let it = items[0];
    let value = match &it.kind {
        ItemKind::Block { labels, body } => {
            if !labels.is_empty() {
                return Err(d
                    .rep
                    .invalid(it.pos, path, "a config block takes no labels"));
            }
            d.free_form_body(&join_path(path, "config"), body)?
        }
        ItemKind::Attr(_) => d.free_form(path, it)?,
    };
    match value {
        Json::Object(_) => {
            out.insert(field.json.to_string(), value);
            Ok(())
        }
        other => Err(d.rep.invalid(
            it.pos,
            path,
            format!("config must be a block or a map, got {other}"),
        )),
    }
}

/// `port "label" { static, to, host_network }` → `ReservedPorts` (static) or `DynamicPorts`.
pub(crate) fn ports(
    d: &Decoder,
    path: &str,
    _field: &Field,
    items: &[&Item],
    out: &mut JsonMap,
) -> Result<(), JobspecError> {
    for it in items {
        let ItemKind::Block { labels, body } = &it.kind else {
            return Err(d.rep.invalid(
                it.pos,
                path,
                format!(
                    "unsupported argument {key:?}: did you mean to define a block of type {key:?}? ({key} \"label\" {{ static = 8080 }})",
                    key = it.key
                ),
            ));
        };
        let [label] = labels.as_slice() else {
            return Err(d
                .rep
                .invalid(it.pos, path, "a port block takes exactly one label"));
        };
        let here = join_path(path, &it.describe());
        let mut port = JsonMap::new();
        port.insert("Label".into(), Json::String(label.clone()));
        let mut is_static = false;
        for sub in body {
            let v = d.attr(&here, sub)?;
            if v.is_null() {
                continue;
            }
            let bad = |e: String| {
                d.rep
                    .invalid(sub.pos, &here, format!("argument {:?}: {e}", sub.key))
            };
            match sub.key.as_str() {
                "static" => {
                    let n = super::convert(super::Kind::Int, &v).map_err(bad)?;
                    let p = n.as_i64().unwrap_or(-1);
                    if !(0..=65535).contains(&p) {
                        return Err(bad(format!("port {p} is out of range 0-65535")));
                    }
                    is_static = p > 0;
                    port.insert("Value".into(), n);
                }
                "to" => {
                    port.insert(
                        "To".into(),
                        super::convert(super::Kind::Int, &v).map_err(bad)?,
                    );
                }
                "host_network" => {
                    port.insert(
                        "HostNetwork".into(),
                        super::convert(super::Kind::Str, &v).map_err(bad)?,
                    );
                }
                other => {
                    return Err(d.rep.invalid(
                        sub.pos,
                        &here,
                        format!("unsupported argument {other:?}"),
                    ));
                }
            }
        }
        let key = if is_static {
            "ReservedPorts"
        } else {
            "DynamicPorts"
        };
        let list = out.entry(key).or_insert_with(|| Json::Array(vec![]));
        if let Json::Array(a) = list {
            if a.iter()
                .any(|p| p.get("Label").and_then(Json::as_str) == Some(label.as_str()))
            {
                return Err(d
                    .rep
                    .invalid(it.pos, path, format!("duplicate port label {label:?}")));
            }
            a.push(Json::Object(port));
        }
    }
    Ok(())
}

/// `volume "name" { ... }` blocks → `Volumes` map keyed by the label.
pub(crate) fn volumes(
    d: &Decoder,
    path: &str,
    field: &Field,
    items: &[&Item],
    out: &mut JsonMap,
) -> Result<(), JobspecError> {
    labelled_map(d, path, field, items, out, &VOLUME, "volume")
}

/// `envoy_gateway_bind_addresses "name" { ... }` blocks → map keyed by the label.
pub(crate) fn bind_addresses(
    d: &Decoder,
    path: &str,
    field: &Field,
    items: &[&Item],
    out: &mut JsonMap,
) -> Result<(), JobspecError> {
    labelled_map(d, path, field, items, out, &BIND_ADDRESS, "bind address")
}

fn labelled_map(
    d: &Decoder,
    path: &str,
    field: &Field,
    items: &[&Item],
    out: &mut JsonMap,
    spec: &super::Spec,
    what: &str,
) -> Result<(), JobspecError> {
    let mut map = JsonMap::new();
    for it in items {
        let v = d.block(path, it, spec)?;
        let name = v
            .get("Name")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        if map.contains_key(&name) {
            return Err(d
                .rep
                .invalid(it.pos, path, format!("duplicate {what} {name:?}")));
        }
        map.insert(name, Json::Object(v));
    }
    out.insert(field.json.to_string(), Json::Object(map));
    Ok(())
}

fn take_str(m: &mut JsonMap, k: &str) -> Option<String> {
    match m.remove(k) {
        Some(Json::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// Shorthand operators that put their value in `RTarget`, in Nomad's order of precedence.
const SHORTHANDS: &[&str] = &[
    "version",
    "semver",
    "regexp",
    "set_contains_any",
    "set_contains_all",
    "set_contains",
    "is_set",
    "is_not_set",
];

fn apply_shorthands(m: &mut JsonMap) {
    for op in SHORTHANDS {
        if let Some(v) = take_str(m, op) {
            m.insert("Operand".into(), Json::String(op.to_string()));
            m.insert("RTarget".into(), Json::String(v));
        }
    }
}

pub(crate) fn constraint_finish(m: &mut JsonMap) -> Result<(), String> {
    apply_shorthands(m);
    if let Some(Json::Bool(b)) = m.remove("distinct_hosts") {
        m.insert("Operand".into(), Json::String("distinct_hosts".into()));
        m.insert("RTarget".into(), Json::String(b.to_string()));
    }
    if let Some(p) = take_str(m, "distinct_property") {
        m.insert("Operand".into(), Json::String("distinct_property".into()));
        m.insert("LTarget".into(), Json::String(p));
    }
    default_operand(m);
    Ok(())
}

pub(crate) fn affinity_finish(m: &mut JsonMap) -> Result<(), String> {
    apply_shorthands(m);
    default_operand(m);
    m.entry("Weight").or_insert(Json::from(50));
    Ok(())
}

fn default_operand(m: &mut JsonMap) {
    let empty = m
        .get("Operand")
        .and_then(Json::as_str)
        .is_none_or(str::is_empty);
    if empty {
        m.insert("Operand".into(), Json::String("=".into()));
    }
}

pub(crate) fn periodic_finish(m: &mut JsonMap) -> Result<(), String> {
    if m.contains_key("Spec") || m.contains_key("Specs") {
        m.insert("SpecType".into(), Json::String("cron".into()));
    }
    Ok(())
}

/// A group's `scaling` block: `max` is required and the type, when set, is "horizontal"
/// (Nomad's checks, with its words).
pub(crate) fn group_scaling_finish(m: &mut JsonMap) -> Result<(), String> {
    if !m.contains_key("Max") {
        return Err("argument \"max\" is required in a group scaling block".into());
    }
    match m.get("Type").and_then(Json::as_str) {
        None | Some("") | Some("horizontal") => Ok(()),
        Some(other) => Err(format!(
            "task group scaling policy had invalid type: {other:?} (a group scaling block is \"horizontal\")"
        )),
    }
}

/// A task's `scaling "cpu"` and `scaling "mem"` blocks: the label names the resource, each at
/// most once, and sets the policy type (`vertical_cpu`, `vertical_mem`).
pub(crate) fn task_scaling(
    d: &Decoder,
    path: &str,
    field: &Field,
    items: &[&Item],
    out: &mut JsonMap,
) -> Result<(), JobspecError> {
    let mut seen: Vec<String> = Vec::new();
    let mut list = Vec::new();
    for it in items {
        let mut p = d.block(path, it, &TASK_SCALING)?;
        let label = p
            .get("Name")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let policy_type = match label.as_str() {
            "cpu" => "vertical_cpu",
            "mem" => "vertical_mem",
            other => {
                return Err(d.rep.invalid(
                    it.pos,
                    path,
                    format!("invalid scaling policy name {other:?}: scaling policy name must be \"cpu\" or \"mem\""),
                ))
            }
        };
        if seen.contains(&label) {
            return Err(d.rep.invalid(
                it.pos,
                path,
                format!(
                    "Duplicate scaling {label:?} block: only one scaling {label} block is allowed"
                ),
            ));
        }
        seen.push(label);
        match p.get("Type").and_then(Json::as_str) {
            None | Some("") => {
                p.insert("Type".into(), Json::String(policy_type.into()));
            }
            Some(t) if t == policy_type => {}
            Some(t) => {
                return Err(d.rep.invalid(
                    it.pos,
                    path,
                    format!("Invalid scaling policy type: expected {policy_type:?}, found {t:?}"),
                ))
            }
        }
        list.push(Json::Object(p));
    }
    out.insert(field.json.to_string(), Json::Array(list));
    Ok(())
}
