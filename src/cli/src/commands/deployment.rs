//! Deployment commands: `deployment status` (optionally following it), `deployment list`, and
//! the operator actions `deployment fail|pause|resume|promote`.

use super::lookup::ListLookup;
use super::{args_and_client, fail, formatted};
use crate::client::{seg, Client};
use crate::columnize::format_list;
use crate::format::{format_deployment, limit};
use crate::monitor;
use crate::Ctx;
use caravan_structs::Deployment;
use serde_json::Value;

pub(crate) fn deployment_list(ds: &[Deployment], len: usize) -> String {
    if ds.is_empty() {
        return "No deployments found".into();
    }
    let mut rows = vec!["ID|Job ID|Job Version|Status|Description".to_string()];
    for d in ds {
        rows.push(format!(
            "{}|{}|{}|{}|{}",
            limit(&d.id, len),
            d.job_id,
            d.job_version,
            d.status,
            d.status_description
        ));
    }
    format_list(&rows)
}

/// Deployments, for resolving an ID prefix.
const DEPLOYMENTS: ListLookup<Deployment> = ListLookup {
    endpoint: "/v1/deployments",
    query_error: "Error retrieving deployment",
    plural: "deployments",
    id_of: |d| &d.id,
    no_match: |_, prefix| format!("Deployment ID {prefix:?} matched no deployments"),
    table: |ctx, ds| deployment_list(ds, ctx.id_len()),
};

pub(crate) async fn status(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let id = ctx.flags.args[0].clone();
    let did = match DEPLOYMENTS.resolve(ctx, &client, &id).await {
        Ok(d) => d.id,
        Err(c) => return c,
    };
    let len = ctx.id_len();
    if ctx.flags.bool("monitor") {
        return match monitor::monitor_deployment(&mut ctx.ui, &client, &did, len).await {
            Some(s) if s == caravan_structs::DEPLOYMENT_STATUS_SUCCESSFUL => 0,
            _ => 1,
        };
    }
    show_deployment(ctx, &client, &did).await
}

/// The single-deployment view (also used by `status <deployment>`).
pub(crate) async fn show_deployment(ctx: &mut Ctx<'_>, client: &Client, id: &str) -> i32 {
    let raw = match client
        .get_value(&format!("/v1/deployment/{}", seg(id)), &[])
        .await
    {
        Ok(v) => v,
        Err(e) => return fail(ctx, "Error retrieving deployment", e),
    };
    if let Some(c) = formatted(ctx, &raw) {
        return c;
    }
    let d: Deployment = match serde_json::from_value(raw) {
        Ok(d) => d,
        Err(e) => return fail(ctx, "Error decoding deployment", e),
    };
    let len = ctx.id_len();
    ctx.ui.output(&format_deployment(&d, len));
    0
}

pub(crate) async fn list(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let raw: Vec<Value> = match client.get("/v1/deployments", &[], None).await {
        Ok((d, _)) => d,
        Err(e) => return fail(ctx, "Error retrieving deployments", e),
    };
    if let Some(c) = formatted(ctx, &raw) {
        return c;
    }
    let ds: Vec<Deployment> = raw
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let len = ctx.id_len();
    ctx.ui.output(&deployment_list(&ds, len));
    0
}

/// `deployment fail|pause|resume|promote <id>`: the action, then the evaluation it created is
/// monitored unless `-detach`.
async fn act(ctx: &mut Ctx<'_>, action: &str) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let id = ctx.flags.args[0].clone();
    let did = match DEPLOYMENTS.resolve(ctx, &client, &id).await {
        Ok(d) => d.id,
        Err(c) => return c,
    };
    let (path, body, done, what) = match action {
        "fail" => (
            "fail",
            serde_json::json!({"DeploymentID": did}),
            "failed",
            "failing",
        ),
        "pause" => (
            "pause",
            serde_json::json!({"DeploymentID": did, "Pause": true}),
            "paused",
            "pausing",
        ),
        "resume" => (
            "pause",
            serde_json::json!({"DeploymentID": did, "Pause": false}),
            "resumed",
            "resuming",
        ),
        _ => (
            "promote",
            serde_json::json!({"DeploymentID": did, "All": true}),
            "promoted",
            "promoting",
        ),
    };
    let r: Value = match client
        .put(&format!("/v1/deployment/{path}/{}", seg(&did)), &body, &[])
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(ctx, &format!("Error {what} deployment"), e),
    };
    let len = ctx.id_len();
    ctx.ui
        .output(&format!("Deployment \"{}\" {done}", limit(&did, len)));
    let eval = r["EvalID"].as_str().unwrap_or_default().to_string();
    if eval.is_empty() || ctx.flags.bool("detach") {
        if !eval.is_empty() {
            ctx.ui.output(&format!("Evaluation ID: {eval}"));
        }
        return 0;
    }
    ctx.ui.output("");
    monitor::monitor(&mut ctx.ui, &client, &eval, len).await
}

pub(crate) async fn fail_deployment(ctx: &mut Ctx<'_>) -> i32 {
    act(ctx, "fail").await
}

pub(crate) async fn pause(ctx: &mut Ctx<'_>) -> i32 {
    act(ctx, "pause").await
}

pub(crate) async fn resume(ctx: &mut Ctx<'_>) -> i32 {
    act(ctx, "resume").await
}

pub(crate) async fn promote(ctx: &mut Ctx<'_>) -> i32 {
    act(ctx, "promote").await
}
