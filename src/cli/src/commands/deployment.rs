//! Deployment commands: `deployment status` (optionally following it) and `deployment list`.

use super::{client_or_err, fail, formatted, want_args};
use crate::client::{seg, Client};
use crate::columnize::format_list;
use crate::format::{format_deployment, limit};
use crate::monitor;
use crate::prefix::sanitize_uuid_prefix;
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

pub(crate) async fn status(ctx: &mut Ctx<'_>) -> i32 {
    if let Err(c) = want_args(ctx, 1, 1) {
        return c;
    }
    let client = match client_or_err(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let id = ctx.flags.args[0].clone();
    if id.len() == 1 {
        ctx.ui
            .error("Identifier must contain at least two characters.");
        return 1;
    }
    let prefix = sanitize_uuid_prefix(&id);
    let ds: Vec<Deployment> = match client
        .get("/v1/deployments", &[("prefix", prefix.clone())], None)
        .await
    {
        Ok((d, _)) => d,
        Err(e) => return fail(ctx, "Error retrieving deployment", e),
    };
    let mut ds: Vec<Deployment> = ds
        .into_iter()
        .filter(|d| d.id.starts_with(&prefix))
        .collect();
    if let Some(pos) = ds.iter().position(|d| d.id == id) {
        ds = vec![ds.swap_remove(pos)];
    }
    let len = ctx.id_len();
    match ds.len() {
        0 => {
            ctx.ui
                .error(&format!("Deployment ID {prefix:?} matched no deployments"));
            return 1;
        }
        1 => {}
        _ => {
            ctx.ui.error(&format!(
                "Prefix matched multiple deployments\n\n{}",
                deployment_list(&ds, len)
            ));
            return 1;
        }
    }
    let did = ds[0].id.clone();
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
    if let Err(c) = want_args(ctx, 0, 0) {
        return c;
    }
    let client = match client_or_err(ctx) {
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
