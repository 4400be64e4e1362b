//! Reading an HCL2 job file: syntax, top-level blocks (`job`, `variable`, `variables`,
//! `locals`), then the job block through the decoder tables, then `Job::canonicalize`.

use crate::decode::{specs, Decoder, JsonMap};
use crate::error::{JobspecError, Reporter};
use crate::tree::{self, Item, ItemKind};
use crate::{vars, VarInputs};
use caravan_structs::Job;
use hcl::edit::structure::{Block, Body, Structure};
use hcl::edit::Span;
use serde_json::Value as Json;
use std::rc::Rc;

/// Parses HCL text, turning a syntax error into `file:line:col: message`.
pub(crate) fn parse_body(src: &str, file: &str) -> Result<Body, JobspecError> {
    hcl::edit::parser::parse_body(src).map_err(|e| JobspecError::Syntax {
        file: file.to_string(),
        line: e.location().line(),
        col: e.location().column(),
        message: format!("syntax error: {}", e.message()),
    })
}

pub(crate) fn parse(src: &str, file: &str, inputs: &VarInputs) -> Result<Job, JobspecError> {
    let _fs = crate::eval::FsScope::enter(inputs.fs_base_dir.clone());
    let body = parse_body(src, file)?;
    let rep = Reporter::new(file, src);

    let mut jobs: Vec<&Block> = Vec::new();
    let (mut variable, mut variables, mut locals) = (Vec::new(), Vec::new(), Vec::new());
    for s in body.iter() {
        let pos = s.span().map(|s| s.start);
        match s {
            Structure::Block(b) => match b.ident.as_str() {
                "job" => jobs.push(b),
                "variable" => variable.push(b),
                "variables" => variables.push(b),
                "locals" => locals.push(b),
                other => {
                    return Err(rep.invalid(pos, "", format!(
                        "unsupported block type {other:?}: a job file holds job, variable and locals blocks"
                    )))
                }
            },
            Structure::Attribute(a) => {
                return Err(rep.invalid(pos, "", format!(
                    "unsupported argument {:?}: a job file holds job, variable and locals blocks",
                    a.key.as_str()
                )))
            }
        }
    }
    let job_block = match jobs.as_slice() {
        [] => {
            return Err(rep.invalid(
                None,
                "",
                "missing job block: a job file needs one job \"<name>\" { ... } block",
            ))
        }
        [one] => *one,
        [_, second, ..] => {
            return Err(rep.invalid(
                second.span().map(|s| s.start),
                "",
                "duplicate job block: a job file holds exactly one job",
            ))
        }
    };
    let job_pos = job_block.span().map(|s| s.start);
    let labels: Vec<String> = job_block
        .labels
        .iter()
        .map(|l| l.as_str().to_string())
        .collect();
    if labels.len() != 1 {
        return Err(rep.invalid(
            job_pos,
            "",
            "a job block takes exactly one label: job \"<id>\" { ... }",
        ));
    }

    let ev = Rc::new(vars::resolve(&variable, &variables, &locals, inputs, &rep)?);
    let job_path = format!("job {:?}", labels[0]);
    let items = tree::build(&job_block.body, &ev, &rep, &format!("job {:?}", labels[0]))?;
    let item = Item {
        key: "job".into(),
        pos: job_pos,
        kind: ItemKind::Block {
            labels,
            body: items,
        },
        scope: ev,
    };
    let dec = Decoder { rep: &rep };
    // Error paths start at the job block: `job "web" -> group "api" -> task "server"`.
    let mut map = match &item.kind {
        ItemKind::Block { labels, body } => {
            let mut out = JsonMap::new();
            out.insert("ID".into(), Json::String(labels[0].clone()));
            dec.body(&job_path, body, &specs::JOB, &mut out)?;
            out
        }
        ItemKind::Attr(_) => JsonMap::new(),
    };
    tasks_as_groups(&mut map);
    inherit_vault(&mut map);
    let mut job: Job = serde_json::from_value(Json::Object(map))
        .map_err(|e| rep.invalid(job_pos, &job_path, format!("invalid job: {e}")))?;
    job.canonicalize();
    Ok(job)
}

/// A `vault` block on the job or a group applies to each task that has none (as in Nomad).
fn inherit_vault(job: &mut JsonMap) {
    let job_vault = job.remove("Vault");
    let Some(Json::Array(groups)) = job.get_mut("TaskGroups") else {
        return;
    };
    for g in groups {
        let Json::Object(g) = g else { continue };
        let vault = g.remove("Vault").or_else(|| job_vault.clone());
        let (Some(vault), Some(Json::Array(tasks))) = (vault, g.get_mut("Tasks")) else {
            continue;
        };
        for t in tasks {
            if let Json::Object(t) = t {
                t.entry("Vault").or_insert_with(|| vault.clone());
            }
        }
    }
}

/// A `task` written directly in the job becomes a group of the same name holding it (Nomad
/// kept this from its first job file format).
fn tasks_as_groups(job: &mut JsonMap) {
    let Some(Json::Array(tasks)) = job.remove("Tasks") else {
        return;
    };
    let groups = job
        .entry("TaskGroups")
        .or_insert_with(|| Json::Array(vec![]));
    if let Json::Array(groups) = groups {
        for t in tasks {
            let mut g = JsonMap::new();
            g.insert("Name".into(), t.get("Name").cloned().unwrap_or(Json::Null));
            g.insert("Tasks".into(), Json::Array(vec![t]));
            groups.push(Json::Object(g));
        }
    }
}
