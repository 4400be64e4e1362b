//! HCL's JSON syntax for job files (`{"job": {"example": {...}}}`, what Nomad reads from a
//! `.json` job file without `-json`): rewritten into HCL native syntax, then read like any
//! other job file. Whether a key is a block or an argument depends on the schema, as in HCL
//! itself, so the rewrite follows the decoder tables. JSON strings are HCL templates
//! (`"${var.x}"`); a string that is a single `${...}` becomes that expression, so it keeps
//! its type (a list, a bool) as HCL's JSON syntax specifies.

use crate::decode::specs::{JOB, TASK_SCALING, VOLUME};
use crate::decode::{Kind, Label, Spec};
use crate::error::JobspecError;
use serde_json::Value as Json;
use std::fmt::Write;

/// Whether JSON text is a job in HCL's JSON syntax (lower-case `job`, `variable`, `locals`
/// keys) rather than the API's `{"Job": {...}}`.
pub(crate) fn looks_like_hcl_json(src: &str) -> bool {
    match serde_json::from_str::<Json>(src) {
        Ok(Json::Object(m)) => ["job", "variable", "variables", "locals"]
            .iter()
            .any(|k| m.contains_key(*k)),
        _ => false,
    }
}

/// Rewrites an HCL JSON job file as HCL native syntax.
pub(crate) fn to_hcl(src: &str, file: &str) -> Result<String, JobspecError> {
    let value: Json = serde_json::from_str(src).map_err(|e| JobspecError::Syntax {
        file: file.to_string(),
        line: e.line(),
        col: e.column(),
        message: format!("invalid JSON: {e}"),
    })?;
    let Json::Object(top) = value else {
        return Err(JobspecError::Syntax {
            file: file.to_string(),
            line: 1,
            col: 1,
            message: "a JSON job file holds an object".into(),
        });
    };
    let mut out = String::new();
    for (key, v) in &top {
        match key.as_str() {
            "job" => blocks(&mut out, 0, "job", v, 1, Some(&JOB)),
            "variable" => blocks(&mut out, 0, "variable", v, 1, None),
            "locals" | "variables" => blocks(&mut out, 0, key, v, 0, None),
            other => {
                // Left for the HCL reader to reject with its message.
                let _ = writeln!(out, "{other} = {}", expr(v));
            }
        }
    }
    Ok(out)
}

/// Emits `name "l1" ... { body }` for each block in `v` (an object keyed by labels, level by
/// level, or a list of those).
fn blocks(
    out: &mut String,
    depth: usize,
    name: &str,
    v: &Json,
    labels: usize,
    spec: Option<&Spec>,
) {
    let mut found = Vec::new();
    collect(v, labels, &mut Vec::new(), &mut found);
    for (labels, body) in found {
        indent(out, depth);
        out.push_str(name);
        for l in &labels {
            let _ = write!(out, " {}", quote(l));
        }
        out.push_str(" {\n");
        match body {
            Json::Object(m) => body_of(out, depth + 1, name, m, spec),
            other => {
                indent(out, depth + 1);
                let _ = writeln!(out, "# not an object: {}", expr(other).replace('\n', " "));
            }
        }
        indent(out, depth);
        out.push_str("}\n");
    }
}

fn collect<'a>(
    v: &'a Json,
    labels: usize,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'a Json)>,
) {
    match v {
        Json::Array(items) => {
            for i in items {
                collect(i, labels, prefix, out);
            }
        }
        Json::Object(m) if labels > 0 => {
            for (k, inner) in m {
                prefix.push(k.clone());
                collect(inner, labels - 1, prefix, out);
                prefix.pop();
            }
        }
        other => out.push((prefix.clone(), other)),
    }
}

/// How a key inside a block is written: as a block with this many labels and spec, or as an
/// argument.
fn shape(parent: &str, spec: Option<&Spec>, key: &str) -> Option<(usize, Option<&'static Spec>)> {
    if parent == "variable" {
        return (key == "validation").then_some((0, None));
    }
    if key == "dynamic" {
        return Some((1, None));
    }
    if parent == "dynamic" {
        return (key == "content").then_some((0, None));
    }
    let spec = spec?;
    let field = spec.fields.iter().find(|f| f.hcl == key)?;
    let count = |s: &Spec| match s.label {
        Label::None => 0,
        Label::One(_) => 1,
    };
    match field.kind {
        Kind::Object(s) | Kind::List(s) => Some((count(s), Some(s))),
        Kind::Custom(_) => match key {
            "port" | "reserved_ports" => Some((1, None)),
            "volume" => Some((1, Some(&VOLUME))),
            "scaling" => Some((1, Some(&TASK_SCALING))),
            _ => None,
        },
        _ => None,
    }
}

fn body_of(
    out: &mut String,
    depth: usize,
    name: &str,
    m: &serde_json::Map<String, Json>,
    spec: Option<&Spec>,
) {
    for (k, v) in m {
        // Inside a `dynamic` block's `content` the generated block's table is not looked up,
        // so its keys are written as arguments (nested blocks there are not supported).
        match shape(name, spec, k) {
            Some((labels, sub)) => blocks(out, depth, k, v, labels, sub),
            None => {
                indent(out, depth);
                let value =
                    if name == "variable" && k == "type" || k == "condition" || k == "for_each" {
                        raw_expression(v)
                    } else {
                        expr(v)
                    };
                let _ = writeln!(out, "{} = {value}", attr_name(k));
            }
        }
    }
}

fn attr_name(k: &str) -> String {
    let ident = !k.is_empty()
        && k.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if ident {
        k.to_string()
    } else {
        // Not an identifier: the HCL reader rejects it with its location.
        quote(k)
    }
}

/// A value whose string form is an expression (`"list(string)"`, `"${var.ok}"`).
fn raw_expression(v: &Json) -> String {
    match v {
        Json::String(s) => single_interpolation(s).unwrap_or(s).to_string(),
        other => expr(other),
    }
}

/// `"${expr}"` with nothing around it → `expr`.
fn single_interpolation(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("${")?.strip_suffix('}')?;
    let mut depth = 0i32;
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    (depth == 0 && !inner.contains("${")).then_some(inner)
}

/// A JSON value as an HCL expression; strings stay templates.
fn expr(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => match single_interpolation(s) {
            Some(inner) => format!("({inner})"),
            None => template(s),
        },
        Json::Array(items) => {
            let parts: Vec<String> = items.iter().map(expr).collect();
            format!("[{}]", parts.join(", "))
        }
        Json::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{} = {}", quote(k), expr(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
    }
}

/// A string literal that keeps `${...}` and `%{...}` as template sequences.
fn template(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal string with no template sequences (labels, object keys).
fn quote(s: &str) -> String {
    template(&s.replace("${", "$${").replace("%{", "%%{"))
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_blocks_by_schema_and_keeps_templates() {
        let src = r#"{
          "variable": {"dcs": {"type": "list(string)", "default": ["dc1"]}},
          "job": {"web": {
            "datacenters": "${var.dcs}",
            "meta": {"a.b": "c"},
            "group": {"api": {
              "network": {"port": {"http": {"to": 8080}}},
              "task": [{"srv": {"driver": "exec", "env": {"X": "${NOMAD_ALLOC_ID}"},
                                "config": {"command": "/bin/true"}}}]
            }}
          }}
        }"#;
        let hcl = to_hcl(src, "j.json").unwrap();
        assert!(hcl.contains("variable \"dcs\" {"), "{hcl}");
        assert!(hcl.contains("type = list(string)"), "{hcl}");
        assert!(hcl.contains("datacenters = (var.dcs)"), "{hcl}");
        assert!(hcl.contains("group \"api\" {"), "{hcl}");
        assert!(hcl.contains("port \"http\" {"), "{hcl}");
        assert!(hcl.contains("task \"srv\" {"), "{hcl}");
        assert!(hcl.contains("env = { \"X\" = (NOMAD_ALLOC_ID) }"), "{hcl}");
        assert!(looks_like_hcl_json(src));
        assert!(!looks_like_hcl_json(r#"{"Job": {"ID": "x"}}"#));
    }
}
