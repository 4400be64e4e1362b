//! `job revert`, `job scale` and `job dispatch`: Nomad's commands over `/v1/job/:id/revert`,
//! `/v1/job/:id/scale` and `/v1/job/:id/dispatch`, monitoring the evaluation they create
//! unless `-detach`.

use super::job::{job_id_by_prefix, job_list_table};
use super::{client_or_err, fail, want_args};
use crate::api_types::{JobListStub, JobRegisterResponse};
use crate::client::{seg, Client};
use crate::columnize::format_kv;
use crate::format::limit;
use crate::monitor;
use crate::prefix::{match_prefix, Match};
use crate::Ctx;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;

/// `caravan job revert [options] <job> <version>`.
pub(crate) async fn revert(ctx: &mut Ctx<'_>) -> i32 {
    if ctx.flags.args.len() != 2 {
        return ctx.usage_error("This command takes two arguments: <job> <version>");
    }
    let version_arg = ctx.flags.args[1].trim().to_string();
    let version: u64 = match version_arg.parse() {
        Ok(v) => v,
        Err(_) => {
            ctx.ui.error(&format!(
                "Error parsing version {version_arg:?}: a version is a number (see \"caravan job history\"); version tags are not available in Caravan"
            ));
            return 1;
        }
    };
    let client = match client_or_err(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let prefix = ctx.flags.args[0].trim().to_string();
    let id = match job_id_by_prefix(ctx, &client, &prefix).await {
        Ok(id) => id,
        Err(c) => return c,
    };
    let body = json!({ "JobID": id, "JobVersion": version });
    let resp: JobRegisterResponse = match client
        .put(&format!("/v1/job/{}/revert", seg(&id)), &body, &[])
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Error retrieving job versions", e),
    };
    if resp.eval_id.is_empty() {
        return 0;
    }
    if ctx.flags.bool("detach") {
        ctx.ui.output(&format!("Evaluation ID: {}", resp.eval_id));
        return 0;
    }
    let len = ctx.id_len();
    monitor::monitor(&mut ctx.ui, &client, &resp.eval_id, len).await
}

/// `caravan job scale [options] <job> [<group>] <count>`.
pub(crate) async fn scale(ctx: &mut Ctx<'_>) -> i32 {
    let n = ctx.flags.args.len();
    if !(2..=3).contains(&n) {
        return ctx.usage_error("Command requires at least two arguments and no more than three");
    }
    let mut group = if n == 3 {
        ctx.flags.args[1].clone()
    } else {
        String::new()
    };
    let count_arg = ctx.flags.args[n - 1].clone();
    let count: i64 = match count_arg.parse() {
        Ok(c) => c,
        Err(e) => {
            ctx.ui.error(&format!(
                "Failed to convert count string to int: {count_arg:?}: {e}"
            ));
            return 1;
        }
    };
    let check_index = match ctx.flags.value("check-index") {
        None => 0,
        Some(s) => match s.parse::<u64>() {
            Ok(v) => v,
            Err(e) => {
                ctx.ui
                    .error(&format!("Error parsing check-index value {s:?}: {e}"));
                return 1;
            }
        },
    };
    let client = match client_or_err(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let prefix = ctx.flags.args[0].trim().to_string();
    let id = match job_id_by_prefix(ctx, &client, &prefix).await {
        Ok(id) => id,
        Err(c) => return c,
    };
    let base = format!("/v1/job/{}", seg(&id));
    let status: Value = match client.get_value(&format!("{base}/scale"), &[]).await {
        Ok(s) => s,
        Err(e) => return fail(ctx, "Error querying job", e),
    };
    let groups: Vec<String> = status
        .get("TaskGroups")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if group.is_empty() {
        match groups.as_slice() {
            [only] => group = only.clone(),
            _ => {
                ctx.ui.error("Group name required");
                return 1;
            }
        }
    } else if !groups.contains(&group) {
        ctx.ui.error(&format!("Group {group} not found within job"));
        return 1;
    }
    let body = json!({
        "Count": count,
        "Target": { "Job": id, "Group": group },
        "Message": "submitted using the Caravan CLI",
        "PolicyOverride": false,
        "JobModifyIndex": check_index,
    });
    let resp: JobRegisterResponse = match client.put(&format!("{base}/scale"), &body, &[]).await {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Error submitting scaling request", e),
    };
    if !resp.warnings.is_empty() {
        ctx.ui
            .output(&format!("Job Warnings:\n{}\n", resp.warnings));
    }
    if ctx.flags.bool("detach") || resp.eval_id.is_empty() {
        ctx.ui.output("Job scale successful");
        if !resp.eval_id.is_empty() {
            ctx.ui.output(&format!("Evaluation ID: {}", resp.eval_id));
        }
        return 0;
    }
    let len = ctx.id_len();
    monitor::monitor(&mut ctx.ui, &client, &resp.eval_id, len).await
}

/// Resolves a parameterized (parent) job's ID or prefix, as Nomad's dispatch does.
async fn parameterized_job_id(
    ctx: &mut Ctx<'_>,
    client: &Client,
    prefix: &str,
) -> Result<String, i32> {
    let jobs: Vec<JobListStub> = match client
        .get("/v1/jobs", &[("prefix", prefix.to_string())], None)
        .await
    {
        Ok((j, _)) => j,
        Err(e) => return Err(fail(ctx, "Error querying job", e)),
    };
    let jobs: Vec<JobListStub> = jobs
        .into_iter()
        .filter(|j| j.parent_id.is_empty() && j.parameterized_job)
        .collect();
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    match match_prefix(prefix, &ids) {
        Match::One(id) => Ok(id),
        Match::None => {
            ctx.ui.error(&format!(
                "No parameterized job(s) with prefix or ID {prefix:?} found"
            ));
            Err(1)
        }
        Match::Many(_) => {
            ctx.ui.error(&format!(
                "Prefix matched multiple jobs\n\n{}",
                job_list_table(&jobs, false)
            ));
            Err(1)
        }
    }
}

/// Reads the dispatch input: a file, or standard input for `-`.
fn read_payload(source: &str) -> std::io::Result<Vec<u8>> {
    if source == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(source)
    }
}

/// `caravan job dispatch [options] <parameterized job> [input source]`.
pub(crate) async fn dispatch(ctx: &mut Ctx<'_>) -> i32 {
    if let Err(c) = want_args(ctx, 1, 2) {
        return c;
    }
    let payload = match ctx.flags.args.get(1).cloned() {
        None => Vec::new(),
        Some(src) => match read_payload(&src) {
            Ok(p) => p,
            Err(e) => {
                ctx.ui.error(&format!("Error reading input data: {e}"));
                return 1;
            }
        },
    };
    let mut meta = BTreeMap::new();
    for m in ctx.flags.values("meta") {
        match m.split_once('=') {
            Some((k, v)) => {
                meta.insert(k.to_string(), v.to_string());
            }
            None => {
                ctx.ui.error(&format!("Error parsing meta value: {m}"));
                return 1;
            }
        }
    }
    let priority = match ctx.flags.value("priority") {
        None => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(p) => p,
            Err(e) => {
                ctx.ui
                    .error(&format!("Error parsing priority value {s:?}: {e}"));
                return 1;
            }
        },
    };
    let client = match client_or_err(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let prefix = ctx.flags.args[0].trim().to_string();
    let id = match parameterized_job_id(ctx, &client, &prefix).await {
        Ok(id) => id,
        Err(c) => return c,
    };
    let body = json!({
        "JobID": id,
        "Payload": base64::engine::general_purpose::STANDARD.encode(&payload),
        "Meta": meta,
        "IdPrefixTemplate": ctx.flags.value("id-prefix-template").unwrap_or_default(),
        "Priority": priority,
    });
    let resp: Value = match client
        .put(&format!("/v1/job/{}/dispatch", seg(&id)), &body, &[])
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Failed to dispatch job", e),
    };
    let len = ctx.id_len();
    let text = |k: &str| {
        resp.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let eval_id = text("EvalID");
    let mut rows = vec![format!("Dispatched Job ID|{}", text("DispatchedJobID"))];
    if !eval_id.is_empty() {
        rows.push(format!("Evaluation ID|{}", limit(&eval_id, len)));
    }
    ctx.ui.output(&format_kv(&rows));
    if ctx.flags.bool("detach") || eval_id.is_empty() {
        return 0;
    }
    ctx.ui.output("");
    if monitor::monitor(&mut ctx.ui, &client, &eval_id, len).await != 0 {
        return 1;
    }
    0
}
