//! `var put|get|list|purge|lock`: Variables, as Nomad's `nomad var` commands. `put` is a
//! check-and-set write unless `-force` (so it will not silently overwrite), and conflicts are
//! explained with the server's current index; `lock` holds a variable lock while a command runs.

use super::{client_or_err, fail, formatted, want_args};
use crate::client::{seg, ApiError, Client};
use crate::columnize::{format_kv, format_list};
use crate::Ctx;
use serde_json::{json, Map, Value};
use std::time::Duration;

const WILDCARD_NS: &str = r#"The wildcard namespace ("*") is not valid for this command."#;

/// `/v1/var/<path>` with each segment escaped.
fn var_url(path: &str) -> String {
    let segs: Vec<String> = path.split('/').map(seg).collect();
    format!("/v1/var/{}", segs.join("/"))
}

fn wildcard_ns(client: &Client) -> bool {
    client.config.namespace.as_deref() == Some("*")
}

fn check_index(ctx: &mut Ctx<'_>) -> Result<Option<u64>, i32> {
    match ctx.flags.value("check-index").map(str::to_string) {
        None => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|e| {
            ctx.ui
                .error(&format!("Error parsing check-index value {s:?}: {e}"));
            1
        }),
    }
}

/// Nomad's explanation of a check-and-set conflict, from the 409 body (the stored variable).
fn cas_conflict(ctx: &mut Ctx<'_>, provided: u64, body: &str) -> i32 {
    let current: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let server_index = current["ModifyIndex"].as_u64().unwrap_or(0);
    ctx.ui.error("\nCheck-and-Set conflict\n");
    let mut msg = format!(
        "    Your provided check-index ({provided}) does not match the server-side index ({server_index})."
    );
    if server_index > 0 {
        let at = crate::timefmt::format_unix_nanos(current["ModifyTime"].as_i64().unwrap_or(0));
        msg.push_str(&format!(
            "\n    The server-side item was last updated on {at}."
        ));
    }
    msg.push_str(&format!(
        "\n    If you are sure you want to perform this operation, add the -force or\n    -check-index={server_index} flag before the positional arguments.\n"
    ));
    ctx.ui.error(&msg);
    1
}

/// The output format: `-json`/`-t` first, else `-out` (none, json, table).
fn out_format(ctx: &mut Ctx<'_>, default: &str) -> Result<String, i32> {
    let out = ctx.flags.value("out").unwrap_or(default).to_string();
    match out.as_str() {
        "none" | "json" | "table" | "terse" => Ok(out),
        other => {
            ctx.ui.error(&format!(
                "Invalid value for \"-out\" ({other:?}); valid values are [json, none, table]"
            ));
            Err(1)
        }
    }
}

fn var_table(v: &Value) -> String {
    let mut meta = vec![
        format!("Namespace|{}", v["Namespace"].as_str().unwrap_or_default()),
        format!("Path|{}", v["Path"].as_str().unwrap_or_default()),
        format!(
            "Create Time|{}",
            crate::timefmt::format_unix_nanos(v["CreateTime"].as_i64().unwrap_or(0))
        ),
    ];
    if v["CreateTime"] != v["ModifyTime"] {
        meta.push(format!(
            "Modify Time|{}",
            crate::timefmt::format_unix_nanos(v["ModifyTime"].as_i64().unwrap_or(0))
        ));
    }
    meta.push(format!(
        "Check Index|{}",
        v["ModifyIndex"].as_u64().unwrap_or(0)
    ));
    let items: Vec<String> = v["Items"]
        .as_object()
        .map(|m| {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| format!("{k}|{}", m[k].as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    format!("{}\n\nItems\n{}", format_kv(&meta), format_kv(&items))
}

/// Reads `@file` (or `-` for stdin) for a value or a whole specification.
fn read_ref(arg: &str) -> Result<String, String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("Error reading from stdin: {e}"))?;
        return Ok(s);
    }
    let path = arg.strip_prefix('@').unwrap_or(arg);
    std::fs::read_to_string(path).map_err(|e| format!("Error reading {path:?}: {e}"))
}

pub(crate) async fn put(ctx: &mut Ctx<'_>) -> i32 {
    let client = match client_or_err(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let checked = match check_index(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    if wildcard_ns(&client) {
        ctx.ui.error(WILDCARD_NS);
        return 1;
    }
    let default_out = if ctx.flags.bool("json") {
        "json"
    } else {
        "none"
    };
    let out = match out_format(ctx, default_out) {
        Ok(o) => o,
        Err(c) => return c,
    };
    if let Some(f) = ctx.flags.value("in").filter(|f| *f != "json") {
        ctx.ui.error(&format!(
            "Invalid value for \"-in\" ({f:?}): Caravan reads variable specifications as JSON"
        ));
        return 1;
    }
    let args = ctx.flags.args.clone();
    let Some(first) = args.first().cloned() else {
        return ctx.usage_error("Not enough arguments (expected >1, got 0)");
    };
    let is_ref = |a: &str| a == "-" || a.starts_with('@');
    if args.len() == 1 && !is_ref(&first) {
        return ctx.usage_error("Must supply data");
    }
    // The whole specification from a file, or a path followed by items.
    let (mut spec, rest): (Value, &[String]) = if is_ref(&first) {
        let text = match read_ref(&first) {
            Ok(t) => t,
            Err(e) => return fail(ctx, "Failed to parse variable data", e),
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.is_object() => (v, &args[1..]),
            Ok(_) => return fail(ctx, "Failed to parse variable data", "not a JSON object"),
            Err(e) => return fail(ctx, "Failed to parse variable data", e),
        }
    } else {
        (json!({"Path": first, "Items": {}}), &args[1..])
    };
    let path = spec["Path"].as_str().unwrap_or_default().to_string();
    if path.is_empty() {
        return fail(
            ctx,
            "Failed to parse variable data",
            "the specification has no Path",
        );
    }
    if !spec["Items"].is_object() {
        spec["Items"] = Value::Object(Map::new());
    }
    for kv in rest {
        let Some((k, v)) = kv.split_once('=') else {
            return fail(
                ctx,
                "Failed to parse K=V data",
                format!("{kv:?} is not a key=value pair"),
            );
        };
        let v = if is_ref(v) {
            match read_ref(v) {
                Ok(t) => t,
                Err(e) => return fail(ctx, "Failed to parse K=V data", e),
            }
        } else {
            v.to_string()
        };
        if let Some(items) = spec["Items"].as_object_mut() {
            if v.is_empty() {
                items.remove(k);
            } else {
                items.insert(k.to_string(), Value::String(v));
            }
        }
    }
    if let Some(ns) = &client.config.namespace {
        spec["Namespace"] = Value::String(ns.clone());
    }
    let cas = if ctx.flags.bool("force") {
        None
    } else {
        Some(checked.unwrap_or_else(|| spec["ModifyIndex"].as_u64().unwrap_or(0)))
    };
    let params: Vec<(&str, String)> = cas
        .map(|c| vec![("cas", c.to_string())])
        .unwrap_or_default();
    let written = match client.put::<Value>(&var_url(&path), &spec, &params).await {
        Ok(v) => v,
        Err(ApiError::Status { code: 409, body }) => {
            return cas_conflict(ctx, cas.unwrap_or(0), &body)
        }
        Err(e) => return fail(ctx, "Error creating variable", e),
    };
    if let Some(code) = formatted(ctx, &written) {
        return code;
    }
    let msg = format!(
        "Created variable {:?} with modify index {}",
        written["Path"].as_str().unwrap_or(&path),
        written["ModifyIndex"].as_u64().unwrap_or(0)
    );
    match out.as_str() {
        "json" => ctx.ui.output(&crate::format::pretty_json(&written)),
        "table" => ctx.ui.output(&var_table(&written)),
        _ => ctx.ui.output(&msg),
    }
    0
}

pub(crate) async fn get(ctx: &mut Ctx<'_>) -> i32 {
    if let Err(c) = want_args(ctx, 1, 1) {
        return c;
    }
    let client = match client_or_err(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    if wildcard_ns(&client) {
        ctx.ui.error(WILDCARD_NS);
        return 1;
    }
    let out = match out_format(ctx, "table") {
        Ok(o) => o,
        Err(c) => return c,
    };
    let path = ctx.flags.args[0].clone();
    let v = match client.get_value(&var_url(&path), &[]).await {
        Ok(v) => v,
        Err(e) if e.is_not_found() => {
            ctx.ui.error("Variable not found");
            return 1;
        }
        Err(e) => return fail(ctx, "Error retrieving variable", e),
    };
    if let Some(item) = ctx.flags.value("item").map(str::to_string) {
        return match v["Items"][&item].as_str() {
            Some(s) => {
                ctx.ui.raw(s.as_bytes());
                0
            }
            None => {
                ctx.ui
                    .error(&format!("Variable does not contain {item:?} item"));
                1
            }
        };
    }
    if let Some(code) = formatted(ctx, &v) {
        return code;
    }
    match out.as_str() {
        "json" => ctx.ui.output(&crate::format::pretty_json(&v)),
        "none" => {}
        _ => ctx.ui.output(&var_table(&v)),
    }
    0
}

pub(crate) async fn list(ctx: &mut Ctx<'_>) -> i32 {
    if let Err(c) = want_args(ctx, 0, 1) {
        return c;
    }
    let client = match client_or_err(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let out = match out_format(ctx, "table") {
        Ok(o) => o,
        Err(c) => return c,
    };
    let prefix = ctx.flags.args.first().cloned().unwrap_or_default();
    let v = match client.get_value("/v1/vars", &[("prefix", prefix)]).await {
        Ok(v) => v,
        Err(e) => return fail(ctx, "Error retrieving vars", e),
    };
    if let Some(code) = formatted(ctx, &v) {
        return code;
    }
    let mut vars = v.as_array().cloned().unwrap_or_default();
    vars.sort_by(|a, b| {
        (a["Namespace"].as_str(), a["Path"].as_str())
            .cmp(&(b["Namespace"].as_str(), b["Path"].as_str()))
    });
    let all_ns = client.config.namespace.as_deref() == Some("*");
    match out.as_str() {
        "json" => ctx.ui.output(&crate::format::pretty_json(&v)),
        "terse" => {
            let rows: Vec<String> = vars
                .iter()
                .map(|x| {
                    let p = x["Path"].as_str().unwrap_or_default();
                    if all_ns {
                        format!("{}|{p}", x["Namespace"].as_str().unwrap_or_default())
                    } else {
                        p.to_string()
                    }
                })
                .collect();
            ctx.ui.output(&format_list(&rows));
        }
        _ if vars.is_empty() => ctx.ui.output("No matching variables found"),
        _ => {
            let mut rows = vec!["Namespace|Path|Last Updated".to_string()];
            for x in &vars {
                rows.push(format!(
                    "{}|{}|{}",
                    x["Namespace"].as_str().unwrap_or_default(),
                    x["Path"].as_str().unwrap_or_default(),
                    crate::timefmt::format_unix_nanos(x["ModifyTime"].as_i64().unwrap_or(0))
                ));
            }
            ctx.ui.output(&format_list(&rows));
        }
    }
    0
}

pub(crate) async fn purge(ctx: &mut Ctx<'_>) -> i32 {
    if let Err(c) = want_args(ctx, 1, 1) {
        return c;
    }
    let client = match client_or_err(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let checked = match check_index(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    if wildcard_ns(&client) {
        ctx.ui.error(WILDCARD_NS);
        return 1;
    }
    let path = ctx.flags.args[0].clone();
    let params: Vec<(&str, String)> = checked
        .map(|c| vec![("cas", c.to_string())])
        .unwrap_or_default();
    match client.delete::<Value>(&var_url(&path), &params).await {
        // A purge answers 204 with no body: any 2xx is success.
        Ok(_) | Err(ApiError::Decode(_)) => {
            ctx.ui
                .output(&format!("Successfully purged variable {path:?}!"));
            0
        }
        Err(ApiError::Status { code: 409, body }) => cas_conflict(ctx, checked.unwrap_or(0), &body),
        Err(e) => fail(ctx, "Error purging variable", e),
    }
}

fn duration_flag(ctx: &mut Ctx<'_>, name: &str) -> Result<Option<String>, i32> {
    match ctx.flags.value(name).map(str::to_string) {
        None => Ok(None),
        Some(s) => match caravan_structs::time::parse_duration(&s) {
            Ok(n) if n > 0 => Ok(Some(s)),
            _ => {
                ctx.ui.error(&format!(
                    "Invalid -{name} value {s:?}: want a duration like 15s"
                ));
                Err(1)
            }
        },
    }
}

/// `var lock <path> [--] <command> [args...]`: takes the lock (waiting while another holds
/// it), runs the command, renews the lock at half its TTL while the command runs, and releases
/// it when the command exits; the command's exit code is the result. A lost lock stops the
/// command.
pub(crate) async fn lock(ctx: &mut Ctx<'_>) -> i32 {
    if ctx.flags.args.len() < 2 {
        return ctx.usage_error("This command takes at least two arguments: <path> <command>");
    }
    let client = match client_or_err(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    if wildcard_ns(&client) {
        ctx.ui.error(WILDCARD_NS);
        return 1;
    }
    let (ttl, delay) = match (duration_flag(ctx, "ttl"), duration_flag(ctx, "delay")) {
        (Ok(t), Ok(d)) => (t, d),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let path = ctx.flags.args[0].clone();
    let command = ctx.flags.args[1..].to_vec();
    let url = var_url(&path);
    let mut lock = Map::new();
    if let Some(t) = &ttl {
        lock.insert("TTL".into(), Value::String(t.clone()));
    }
    if let Some(d) = &delay {
        lock.insert("LockDelay".into(), Value::String(d.clone()));
    }
    let body = json!({"Path": path, "Lock": lock});
    let acquire = [("lock-acquire", String::new())];
    let held = loop {
        match client.put::<Value>(&url, &body, &acquire).await {
            Ok(v) => break v,
            Err(ApiError::Status { code: 409, .. }) => {
                if ctx.flags.bool("verbose") {
                    ctx.ui.error("Lock is held; waiting");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return fail(ctx, "Error acquiring lock", e),
        }
    };
    let lock_id = held["Lock"]["ID"].as_str().unwrap_or_default().to_string();
    let ttl_ns =
        caravan_structs::time::parse_duration(held["Lock"]["TTL"].as_str().unwrap_or("15s"))
            .unwrap_or(15_000_000_000);
    if ctx.flags.bool("verbose") {
        ctx.ui
            .error(&format!("Acquired lock {lock_id} on {path:?}"));
    }
    let mut child = match tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            release(&client, &url, &lock_id).await;
            return fail(ctx, &format!("Error running {:?}", command[0]), e);
        }
    };
    let renew_every = Duration::from_nanos((ttl_ns / 2).max(1_000_000_000) as u64);
    let lock_body = json!({"Path": path, "Lock": {"ID": lock_id}});
    let code = loop {
        tokio::select! {
            status = child.wait() => {
                break match status {
                    Ok(s) => s.code().unwrap_or(1),
                    Err(e) => { ctx.ui.error(&format!("Error waiting for the command: {e}")); 1 }
                };
            }
            _ = tokio::time::sleep(renew_every) => {
                if let Err(e) = client.put::<Value>(&url, &lock_body, &[("lock-renew", String::new())]).await {
                    ctx.ui.error(&format!("Lock lost ({e}); stopping the command"));
                    let _ = child.kill().await;
                    return 1;
                }
            }
        }
    };
    release(&client, &url, &lock_id).await;
    code
}

async fn release(client: &Client, url: &str, lock_id: &str) {
    let body = json!({"Lock": {"ID": lock_id}});
    if let Err(e) = client
        .put::<Value>(url, &body, &[("lock-release", String::new())])
        .await
    {
        tracing::warn!("cannot release the lock: {e}");
    }
}
