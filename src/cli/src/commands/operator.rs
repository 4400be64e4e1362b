//! `operator api <path>`: a raw request to the HTTP API, printing the body as it comes.

use super::{args_and_client, fail};
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
        "GET" => match client.get_raw(&p, &params).await {
            Ok(r) => r
                .bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string()),
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
