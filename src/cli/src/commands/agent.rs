//! `monitor` (stream the agent's logs at a chosen level) and `agent-info` (the agent's stats
//! sections, as Nomad prints them).

use super::{args_and_client, fail, formatted};
use crate::Ctx;
use serde_json::Value;

pub(crate) async fn monitor(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let mut params: Vec<(&str, String)> = vec![("plain", "true".into())];
    params.push((
        "log_level",
        ctx.flags.value("log-level").unwrap_or("info").to_string(),
    ));
    if ctx.flags.bool("json") {
        params.push(("log_json", "true".into()));
    }
    if let Some(n) = ctx.flags.value("node-id") {
        params.push(("node_id", n.to_string()));
    }
    if let Some(s) = ctx.flags.value("server-id") {
        params.push(("server_id", s.to_string()));
    }
    let mut resp = match client.get_raw("/v1/agent/monitor", &params).await {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Error starting monitor", e),
    };
    loop {
        match resp.chunk().await {
            Ok(Some(b)) => ctx.ui.raw(&b),
            Ok(None) => return 0,
            Err(e) => return fail(ctx, "Error reading monitor stream", e),
        }
    }
}

pub(crate) async fn agent_info(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let info: Value = match client.get("/v1/agent/self", &[], None).await {
        Ok((v, _)) => v,
        Err(e) => return fail(ctx, "Error querying agent info", e),
    };
    if let Some(code) = formatted(ctx, &info) {
        return code;
    }
    let Some(stats) = info.get("stats").and_then(|s| s.as_object()) else {
        ctx.ui
            .error("Error querying agent info: the agent reported no stats");
        return 1;
    };
    let mut sections: Vec<_> = stats.iter().filter(|(_, v)| v.is_object()).collect();
    sections.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (name, section) in sections {
        out.push_str(name);
        out.push('\n');
        let mut keys: Vec<_> = section.as_object().into_iter().flatten().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in keys {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("  {k} = {v}\n"));
        }
    }
    ctx.ui.output(out.trim_end());
    0
}
