//! `service list|info|delete`: Nomad's native service catalog commands over `/v1/services`,
//! `/v1/service/:name` and `DELETE /v1/service/:name/:id`.

use super::{args_and_client, fail, formatted};
use crate::client::{seg, Client};
use crate::columnize::{format_kv, format_list};
use crate::format::limit;
use crate::Ctx;
use serde_json::Value;

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// `[a,b]`, sorted.
fn tags(v: &Value) -> String {
    let mut t: Vec<&str> = v["Tags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    t.sort();
    format!("[{}]", t.join(","))
}

/// Nomad's `formatServiceListOutput`: `Service Name[|Namespace]|Tags`, by namespace and name.
fn list_table(all_namespaces: bool, regs: &[Value]) -> String {
    let mut rows = vec![if all_namespaces {
        "Service Name|Namespace|Tags".to_string()
    } else {
        "Service Name|Tags".to_string()
    }];
    let mut by_ns: Vec<&Value> = regs.iter().collect();
    by_ns.sort_by_key(|n| s(n, "Namespace"));
    for ns in by_ns {
        let mut services: Vec<&Value> = ns["Services"].as_array().into_iter().flatten().collect();
        services.sort_by_key(|v| s(v, "ServiceName"));
        for svc in services {
            let mut row = s(svc, "ServiceName");
            if all_namespaces {
                row.push('|');
                row.push_str(&s(ns, "Namespace"));
            }
            row.push('|');
            row.push_str(&tags(svc));
            rows.push(row);
        }
    }
    format_list(&rows)
}

fn all_namespaces(ctx: &Ctx<'_>) -> bool {
    ctx.flags.value("namespace") == Some("*")
}

/// `caravan service list [-namespace <ns>|*] [-json] [-t <tmpl>]`.
pub(crate) async fn list(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let regs: Vec<Value> = match client.get("/v1/services", &[], None).await {
        Ok((v, _)) => v,
        Err(e) => return fail(ctx, "Error listing service registrations", e),
    };
    if regs.is_empty() {
        ctx.ui.output("No service registrations found");
        return 0;
    }
    if let Some(c) = formatted(ctx, &regs) {
        return c;
    }
    let all = all_namespaces(ctx);
    ctx.ui.output(&list_table(all, &regs));
    0
}

/// The namespace and name `prefix` picks (Nomad's `getServiceByPrefix`), or the error shown.
async fn by_prefix(
    ctx: &mut Ctx<'_>,
    client: &Client,
    prefix: &str,
) -> Result<(Option<String>, String), i32> {
    let found: Vec<Value> = match client
        .get("/v1/services", &[("prefix", prefix.to_string())], None)
        .await
    {
        Ok((v, _)) => v,
        Err(e) => return Err(fail(ctx, "Error listing service registrations", e)),
    };
    let names: Vec<(String, String)> = found
        .iter()
        .flat_map(|ns| {
            ns["Services"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |svc| (s(ns, "Namespace"), s(svc, "ServiceName")))
        })
        .collect();
    let exact: Vec<&(String, String)> = names.iter().filter(|(_, n)| n == prefix).collect();
    match (names.as_slice(), exact.as_slice()) {
        ([], _) => Err(fail(
            ctx,
            "Error listing service registrations",
            format!("No service registrations with prefix {prefix:?} found"),
        )),
        ([(ns, name)], _) | (_, [(ns, name)]) => Ok((Some(ns.clone()), name.clone())),
        _ => {
            let all = all_namespaces(ctx);
            ctx.ui.error(&format!(
                "Prefix matched multiple services\n\n{}",
                list_table(all, &found)
            ));
            Err(1)
        }
    }
}

/// `host:port`, or the address alone for port 0 (Nomad's `formatAddress`).
fn address(v: &Value) -> String {
    let host = s(v, "Address");
    match v["Port"].as_u64().unwrap_or(0) {
        0 => host,
        p if host.contains(':') => format!("[{host}]:{p}"),
        p => format!("{host}:{p}"),
    }
}

/// `caravan service info [-verbose] [-json] [-t <tmpl>] <service name or prefix>`.
pub(crate) async fn info(ctx: &mut Ctx<'_>) -> i32 {
    let mut client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let prefix = ctx.flags.args[0].clone();
    let (ns, name) = match by_prefix(ctx, &client, &prefix).await {
        Ok(found) => found,
        Err(c) => return c,
    };
    if let Some(ns) = ns {
        client.set_namespace(&ns);
    }
    let regs: Vec<Value> = match client
        .get(&format!("/v1/service/{}", seg(&name)), &[], None)
        .await
    {
        Ok((v, _)) => v,
        Err(e) => return fail(ctx, "Error listing service registrations", e),
    };
    if regs.is_empty() {
        ctx.ui.output("No service registrations found");
        return 0;
    }
    if let Some(c) = formatted(ctx, &regs) {
        return c;
    }
    // Several jobs may register one name: by job ID, as Nomad.
    let mut sorted: Vec<&Value> = regs.iter().collect();
    sorted.sort_by_key(|r| s(r, "JobID"));
    if ctx.flags.bool("verbose") {
        for r in sorted {
            ctx.ui.output(&format_kv(&[
                format!("ID|{}", s(r, "ID")),
                format!("Service Name|{}", s(r, "ServiceName")),
                format!("Namespace|{}", s(r, "Namespace")),
                format!("Job ID|{}", s(r, "JobID")),
                format!("Alloc ID|{}", s(r, "AllocID")),
                format!("Node ID|{}", s(r, "NodeID")),
                format!("Datacenter|{}", s(r, "Datacenter")),
                format!(
                    "Address|{}:{}",
                    s(r, "Address"),
                    r["Port"].as_u64().unwrap_or(0)
                ),
                format!("Tags|{}\n", tags(r)),
            ]));
            ctx.ui.output("");
        }
        return 0;
    }
    let mut rows = vec!["Job ID|Address|Tags|Node ID|Alloc ID".to_string()];
    for r in sorted {
        rows.push(format!(
            "{}|{}|{}|{}|{}",
            s(r, "JobID"),
            address(r),
            tags(r),
            limit(&s(r, "NodeID"), 8),
            limit(&s(r, "AllocID"), 8),
        ));
    }
    ctx.ui.output(&format_list(&rows));
    0
}

/// `caravan service delete <service name> <service id>`.
pub(crate) async fn delete(ctx: &mut Ctx<'_>) -> i32 {
    if ctx.flags.args.len() != 2 {
        ctx.ui
            .error("This command takes two arguments: <service_name> and <service_id>");
        return 1;
    }
    let client = match args_and_client(ctx, 2, 2) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let (name, id) = (ctx.flags.args[0].clone(), ctx.flags.args[1].clone());
    match client
        .delete::<Value>(&format!("/v1/service/{}/{}", seg(&name), seg(&id)), &[])
        .await
    {
        Ok(_) => {
            ctx.ui.output("Successfully deleted service registration");
            0
        }
        Err(e) => fail(ctx, "Error deleting service registration", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_and_address_format_like_nomad() {
        let regs = vec![
            json!({"Namespace": "prod", "Services": [{"ServiceName": "b", "Tags": ["z", "a"]}]}),
            json!({"Namespace": "default", "Services": [
                {"ServiceName": "web", "Tags": []}, {"ServiceName": "api", "Tags": ["v1"]}
            ]}),
        ];
        let one = list_table(false, &regs[1..]);
        let lines: Vec<&str> = one.lines().map(str::trim_end).collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["Service", "Name", "Tags"]
        );
        assert!(
            lines[1].starts_with("api") && lines[1].ends_with("[v1]"),
            "{one}"
        );
        assert!(
            lines[2].starts_with("web") && lines[2].ends_with("[]"),
            "{one}"
        );
        let all = list_table(true, &regs);
        let lines: Vec<&str> = all.lines().map(str::trim_end).collect();
        assert!(lines[0].contains("Namespace"), "{all}");
        assert!(
            lines[3].starts_with('b') && lines[3].contains("prod") && lines[3].ends_with("[a,z]"),
            "{all}"
        );
        assert_eq!(
            address(&json!({"Address": "10.0.0.1", "Port": 80})),
            "10.0.0.1:80"
        );
        assert_eq!(
            address(&json!({"Address": "10.0.0.1", "Port": 0})),
            "10.0.0.1"
        );
        assert_eq!(address(&json!({"Address": "::1", "Port": 80})), "[::1]:80");
    }
}
