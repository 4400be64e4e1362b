//! `system gc` (collect terminal jobs, evaluations, allocations, deployments and nodes now)
//! and `system reconcile summaries`, as Nomad's `system` commands: silent on success.

use super::{args_and_client, fail};
use crate::Ctx;
use serde_json::{json, Value};

pub(crate) async fn gc(ctx: &mut Ctx<'_>) -> i32 {
    put(
        ctx,
        "/v1/system/gc",
        "Error running system garbage-collection",
    )
    .await
}

pub(crate) async fn reconcile_summaries(ctx: &mut Ctx<'_>) -> i32 {
    put(
        ctx,
        "/v1/system/reconcile/summaries",
        "Error running system summary reconciliation",
    )
    .await
}

async fn put(ctx: &mut Ctx<'_>, path: &str, what: &str) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client.put::<Value>(path, &json!({}), &[]).await {
        Ok(_) => 0,
        Err(e) => fail(ctx, what, e),
    }
}
