//! `operator root keyring list|rotate|remove`: the servers' root keys, as Nomad's commands.

use super::{args_and_client, fail, formatted};
use crate::client::seg;
use crate::columnize::format_list;
use crate::Ctx;
use serde_json::{json, Value};

fn key_rows(keys: &[Value], verbose: bool) -> String {
    let mut rows = vec!["Key|State|Create Time".to_string()];
    for k in keys {
        let id = k["KeyID"].as_str().unwrap_or_default();
        let id = if verbose { id } else { &id[..id.len().min(8)] };
        let created = crate::timefmt::format_unix_nanos(k["CreateTime"].as_i64().unwrap_or(0));
        rows.push(format!(
            "{id}|{}|{created}",
            k["State"].as_str().unwrap_or_default()
        ));
    }
    format_list(&rows)
}

pub(crate) async fn list(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client.get_value("/v1/operator/keyring/keys", &[]).await {
        Ok(v) => {
            if let Some(code) = formatted(ctx, &v) {
                return code;
            }
            let keys = v.as_array().cloned().unwrap_or_default();
            let out = key_rows(&keys, ctx.flags.bool("verbose"));
            ctx.ui.output(&out);
            0
        }
        Err(e) => fail(ctx, "error", e),
    }
}

pub(crate) async fn rotate(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let mut params = vec![];
    if ctx.flags.bool("full") {
        params.push(("full", "true".to_string()));
    }
    match client
        .put::<Value>("/v1/operator/keyring/rotate", &json!({}), &params)
        .await
    {
        Ok(v) => {
            if let Some(code) = formatted(ctx, &v["Key"]) {
                return code;
            }
            let out = key_rows(&[v["Key"].clone()], ctx.flags.bool("verbose"));
            ctx.ui.output(&out);
            0
        }
        Err(e) => fail(ctx, "error", e),
    }
}

pub(crate) async fn remove(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let id = ctx.flags.args[0].clone();
    match client
        .delete::<Value>(&format!("/v1/operator/keyring/key/{}", seg(&id)), &[])
        .await
    {
        Ok(_) => {
            ctx.ui.output(&format!("Removed encryption key {id}"));
            0
        }
        Err(e) => fail(ctx, "error", e),
    }
}
