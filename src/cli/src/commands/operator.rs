//! `operator api <path>` (a raw request to the HTTP API, printing the body as it comes) and
//! `operator scheduler get-config/set-config`.

use super::{args_and_client, fail, formatted};
use crate::columnize::format_kv;
use crate::Ctx;
use serde_json::Value;

pub(crate) async fn api(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let mut path = ctx.flags.args[0].clone();
    // Accept a full URL; only its path and query are used.
    if let Some(rest) = path.split_once("://").map(|(_, r)| r.to_string()) {
        path = rest
            .find('/')
            .map(|i| rest[i..].to_string())
            .unwrap_or_else(|| "/".into());
    }
    if !path.starts_with('/') {
        path = format!("/{path}");
    }
    let (p, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path.clone(), String::new()),
    };
    let mut params: Vec<(&str, String)> = vec![];
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect();
    for (k, v) in &pairs {
        params.push((k.as_str(), v.clone()));
    }
    if let Some(f) = ctx.flags.value("filter") {
        params.push(("filter", f.to_string()));
    }
    let method = ctx.flags.value("X").unwrap_or("GET").to_uppercase();
    let result = match method.as_str() {
        // Printed chunk by chunk, so streams (`/v1/event/stream`) show as they arrive.
        "GET" => match client.get_raw(&p, &params).await {
            Ok(mut r) => {
                let mut last = b'\n';
                loop {
                    match r.chunk().await {
                        Ok(Some(chunk)) => {
                            ctx.ui.raw(&chunk);
                            last = chunk.last().copied().unwrap_or(last);
                        }
                        Ok(None) => break,
                        Err(e) => return fail(ctx, "Error reading response", e),
                    }
                }
                if last != b'\n' {
                    ctx.ui.raw(b"\n");
                }
                return 0;
            }
            Err(e) => Err(e.to_string()),
        },
        "DELETE" => client
            .delete::<Value>(&p, &params)
            .await
            .map(|v| v.to_string().into_bytes())
            .map_err(|e| e.to_string()),
        "PUT" | "POST" => {
            let body: Value = match std::io::read_to_string(std::io::stdin()) {
                Ok(s) if !s.trim().is_empty() => match serde_json::from_str(&s) {
                    Ok(v) => v,
                    Err(e) => return fail(ctx, "Error parsing request body from stdin", e),
                },
                _ => Value::Null,
            };
            client
                .put::<Value>(&p, &body, &params)
                .await
                .map(|v| v.to_string().into_bytes())
                .map_err(|e| e.to_string())
        }
        other => return ctx.usage_error(&format!("Unsupported method {other:?}")),
    };
    match result {
        Ok(b) => {
            ctx.ui.raw(&b);
            if !b.ends_with(b"\n") {
                ctx.ui.raw(b"\n");
            }
            0
        }
        Err(e) => fail(ctx, "Error performing request", e),
    }
}

/// `operator scheduler get-config`.
pub(crate) async fn scheduler_get_config(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let resp: Value = match client
        .get("/v1/operator/scheduler/configuration", &[], None)
        .await
    {
        Ok((v, _)) => v,
        Err(e) => return fail(ctx, "Error querying scheduler configuration", e),
    };
    let cfg = resp.get("SchedulerConfig").cloned().unwrap_or(Value::Null);
    if let Some(code) = formatted(ctx, &cfg) {
        return code;
    }
    let b = |v: &Value| v.as_bool().unwrap_or(false).to_string();
    let p = &cfg["PreemptionConfig"];
    let rows = [
        format!(
            "Scheduler Algorithm|{}",
            cfg["SchedulerAlgorithm"].as_str().unwrap_or("")
        ),
        format!(
            "Memory Oversubscription|{}",
            b(&cfg["MemoryOversubscriptionEnabled"])
        ),
        format!(
            "Reject Job Registration|{}",
            b(&cfg["RejectJobRegistration"])
        ),
        format!("Pause Eval Broker|{}", b(&cfg["PauseEvalBroker"])),
        format!(
            "Preemption System Scheduler|{}",
            b(&p["SystemSchedulerEnabled"])
        ),
        format!(
            "Preemption Service Scheduler|{}",
            b(&p["ServiceSchedulerEnabled"])
        ),
        format!(
            "Preemption Batch Scheduler|{}",
            b(&p["BatchSchedulerEnabled"])
        ),
        format!(
            "Preemption SysBatch Scheduler|{}",
            b(&p["SysBatchSchedulerEnabled"])
        ),
        format!("Modify Index|{}", cfg["ModifyIndex"].as_u64().unwrap_or(0)),
    ];
    ctx.ui.output(&format_kv(&rows));
    0
}

/// `operator scheduler set-config`: changes only the settings given as flags.
pub(crate) async fn scheduler_set_config(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let (resp, _): (Value, u64) = match client
        .get("/v1/operator/scheduler/configuration", &[], None)
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Error querying scheduler configuration", e),
    };
    let mut cfg = resp.get("SchedulerConfig").cloned().unwrap_or(Value::Null);
    if !cfg.is_object() {
        ctx.ui
            .error("Error querying scheduler configuration: the response has no SchedulerConfig");
        return 1;
    }
    let bools: [(&str, &[&str]); 7] = [
        (
            "memory-oversubscription",
            &["MemoryOversubscriptionEnabled"],
        ),
        ("reject-job-registration", &["RejectJobRegistration"]),
        ("pause-eval-broker", &["PauseEvalBroker"]),
        (
            "preempt-system-scheduler",
            &["PreemptionConfig", "SystemSchedulerEnabled"],
        ),
        (
            "preempt-service-scheduler",
            &["PreemptionConfig", "ServiceSchedulerEnabled"],
        ),
        (
            "preempt-batch-scheduler",
            &["PreemptionConfig", "BatchSchedulerEnabled"],
        ),
        (
            "preempt-sysbatch-scheduler",
            &["PreemptionConfig", "SysBatchSchedulerEnabled"],
        ),
    ];
    for (flag, path) in bools {
        let Some(v) = ctx.flags.value(flag).map(|s| s.to_string()) else {
            continue;
        };
        let b = match v.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                ctx.ui.error(&format!(
                    "Invalid value for -{flag}: {v:?} (use true or false)"
                ));
                return 1;
            }
        };
        let mut slot = &mut cfg;
        for key in path {
            slot = &mut slot[*key];
        }
        *slot = Value::Bool(b);
    }
    if let Some(a) = ctx
        .flags
        .value("scheduler-algorithm")
        .map(|s| s.to_string())
    {
        if a != "binpack" && a != "spread" {
            ctx.ui.error(&format!(
                "Invalid value for -scheduler-algorithm: {a:?} (use binpack or spread)"
            ));
            return 1;
        }
        cfg["SchedulerAlgorithm"] = Value::String(a);
    }
    let mut params: Vec<(&str, String)> = vec![];
    if let Some(i) = ctx.flags.value("check-index") {
        params.push(("cas", i.to_string()));
    }
    match client
        .put::<Value>("/v1/operator/scheduler/configuration", &cfg, &params)
        .await
    {
        Ok(r) if r["Updated"].as_bool().unwrap_or(false) => {
            ctx.ui.output("Scheduler configuration updated!");
            0
        }
        Ok(_) => {
            ctx.ui
                .error("Scheduler configuration could not be atomically updated, please try again");
            1
        }
        Err(e) => fail(ctx, "Error setting scheduler configuration", e),
    }
}
