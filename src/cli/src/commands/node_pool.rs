//! `node pool apply|list|info|nodes|jobs|delete`: Nomad's node pool commands over
//! `/v1/node/pools` and `/v1/node/pool/:name`. `apply` reads a `node_pool "name" { ... }`
//! specification in HCL or, with `-json`, the API's JSON.

use super::job::job_list_table;
use super::node::node_list_table;
use super::{args_and_client, fail, formatted};
use crate::api_types::JobListStub;
use crate::client::{seg, Client};
use crate::columnize::{format_kv, format_list};
use crate::Ctx;
use caravan_structs::NodeListStub;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The body of `node_pool "name" { ... }`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PoolSpec {
    description: String,
    meta: BTreeMap<String, String>,
    node_identity_ttl: Option<String>,
    scheduler_config: Option<SchedulerSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SchedulerSpec {
    scheduler_algorithm: String,
    memory_oversubscription_enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PoolFile {
    node_pool: caravan_hcl1::Blocks<PoolSpec>,
}

/// Parses a node pool specification: the API's JSON with `-json`, else one
/// `node_pool "name" { ... }` block of HCL.
fn parse_spec(src: &str, file: &str, json_input: bool) -> Result<Value, String> {
    if json_input {
        return serde_json::from_str(src)
            .map_err(|e| format!("Failed to parse input content: {e}"));
    }
    let node = caravan_hcl1::parse(file, src)
        .map_err(|e| format!("Failed to parse input content: {e}"))?;
    let spec: PoolFile = caravan_hcl1::from_node(&node)
        .map_err(|e| format!("Failed to parse input content: {e}"))?;
    let mut pools = spec.node_pool.0;
    if pools.len() != 1 {
        return Err(format!(
            "Failed to parse input content: {file}: expected one node_pool block, found {}",
            pools.len()
        ));
    }
    let (name, body) = pools.remove(0);
    let mut v = json!({"Name": name, "Description": body.description, "Meta": body.meta});
    if let Some(ttl) = body.node_identity_ttl {
        v["NodeIdentityTTL"] = json!(ttl);
    }
    if let Some(sc) = body.scheduler_config {
        v["SchedulerConfiguration"] = json!({
            "SchedulerAlgorithm": sc.scheduler_algorithm,
            "MemoryOversubscriptionEnabled": sc.memory_oversubscription_enabled,
        });
    }
    Ok(v)
}

/// `caravan node pool apply [-json] <path>`.
pub(crate) async fn apply(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let path = ctx.flags.args[0].clone();
    let (src, file) = if path == "-" {
        let mut buf = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf) {
            return fail(ctx, "Failed to read stdin", e);
        }
        (buf, "stdin.nomad.hcl".to_string())
    } else {
        match std::fs::read_to_string(&path) {
            Ok(s) => (s, path.clone()),
            Err(e) => return fail(ctx, &format!("Failed to read file {path:?}"), e),
        }
    };
    let pool = match parse_spec(&src, &file, ctx.flags.bool("json")) {
        Ok(p) => p,
        Err(e) => {
            ctx.ui.error(&e);
            return 1;
        }
    };
    let name = pool["Name"].as_str().unwrap_or_default().to_string();
    match client.put::<Value>("/v1/node/pools", &pool, &[]).await {
        Ok(_) => {
            ctx.ui
                .output(&format!("Successfully applied node pool {name:?}!"));
            0
        }
        Err(e) => fail(ctx, "Error applying node pool", e),
    }
}

fn pool_table(pools: &[Value]) -> String {
    let mut rows = vec!["Name|Description".to_string()];
    for p in pools {
        rows.push(format!(
            "{}|{}",
            p["Name"].as_str().unwrap_or_default(),
            p["Description"].as_str().unwrap_or_default()
        ));
    }
    format_list(&rows)
}

/// `caravan node pool list`.
pub(crate) async fn list(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let pools: Vec<Value> = match client.get("/v1/node/pools", &[], None).await {
        Ok((v, _)) => v,
        Err(e) => return fail(ctx, "Error querying node pools", e),
    };
    if let Some(c) = formatted(ctx, &pools) {
        return c;
    }
    ctx.ui.output(&pool_table(&pools));
    0
}

/// The pool `name` names: the only one with that prefix, or the exact match among several;
/// otherwise the error is printed.
async fn pool_by_prefix(ctx: &mut Ctx<'_>, client: &Client, name: &str) -> Result<Value, i32> {
    let found: Vec<Value> = match client
        .get("/v1/node/pools", &[("prefix", name.to_string())], None)
        .await
    {
        Ok((v, _)) => v,
        Err(e) => return Err(fail(ctx, "Error retrieving node pool", e)),
    };
    match found.as_slice() {
        [] => Err(fail(
            ctx,
            "Error retrieving node pool",
            format!("No node pool with prefix {name:?} found"),
        )),
        [one] => Ok(one.clone()),
        many => match many.iter().find(|p| p["Name"] == name) {
            Some(exact) => Ok(exact.clone()),
            None => {
                ctx.ui.error(&format!(
                    "Prefix matched multiple node pools\n\n{}",
                    pool_table(many)
                ));
                Err(1)
            }
        },
    }
}

/// The one pool argument, resolved by prefix, with the client.
async fn client_and_pool(ctx: &mut Ctx<'_>) -> Result<(Client, Value), i32> {
    let client = args_and_client(ctx, 1, 1)?;
    let name = ctx.flags.args[0].clone();
    let pool = pool_by_prefix(ctx, &client, &name).await?;
    Ok((client, pool))
}

/// Go's `time.Duration.String()` for nanoseconds.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (unit, div) = match n {
            n if n < 1_000 => ("ns", 1),
            n if n < 1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", trim_fraction(n, div));
    }
    let (h, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let s = trim_fraction(rest, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// `n / div` with the fraction's trailing zeros dropped (`1500, 1000` → `1.5`).
fn trim_fraction(n: u64, div: u64) -> String {
    let whole = n / div;
    let frac = n % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// `caravan node pool info <pool>`.
pub(crate) async fn info(ctx: &mut Ctx<'_>) -> i32 {
    let (_, pool) = match client_and_pool(ctx).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    if let Some(c) = formatted(ctx, &pool) {
        return c;
    }
    let mut basic = vec![
        format!("Name|{}", pool["Name"].as_str().unwrap_or_default()),
        format!(
            "Description|{}",
            pool["Description"].as_str().unwrap_or_default()
        ),
    ];
    if let Some(ttl) = pool["NodeIdentityTTL"].as_i64().filter(|t| *t > 0) {
        basic.push(format!("Node Identity TTL|{}", go_duration(ttl)));
    }
    ctx.ui.output(&format_kv(&basic));
    ctx.ui.output("\nMetadata");
    match pool["Meta"].as_object().filter(|m| !m.is_empty()) {
        Some(meta) => {
            let rows: Vec<String> = meta
                .iter()
                .map(|(k, v)| format!("{k}|{}", v.as_str().unwrap_or_default()))
                .collect();
            ctx.ui.output(&format_kv(&rows));
        }
        None => ctx.ui.output("No metadata"),
    }
    ctx.ui.output("\nScheduler Configuration");
    match pool["SchedulerConfiguration"].as_object() {
        Some(sc) => {
            let mut rows = vec![format!(
                "Scheduler Algorithm|{}",
                sc.get("SchedulerAlgorithm")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )];
            if let Some(m) = sc
                .get("MemoryOversubscriptionEnabled")
                .and_then(Value::as_bool)
            {
                rows.push(format!("Memory Oversubscription Enabled|{m}"));
            }
            ctx.ui.output(&format_kv(&rows));
        }
        None => ctx.ui.output("No scheduler configuration"),
    }
    0
}

/// `caravan node pool nodes <pool>`.
pub(crate) async fn nodes(ctx: &mut Ctx<'_>) -> i32 {
    let (client, pool) = match client_and_pool(ctx).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    let name = pool["Name"].as_str().unwrap_or_default();
    let nodes: Vec<Value> = match client
        .get(&format!("/v1/node/pool/{}/nodes", seg(name)), &[], None)
        .await
    {
        Ok((v, _)) => v,
        Err(e) => return fail(ctx, "Error querying nodes", e),
    };
    if nodes.is_empty() {
        ctx.ui.output("No nodes");
        return 0;
    }
    if let Some(c) = formatted(ctx, &nodes) {
        return c;
    }
    let stubs: Vec<NodeListStub> = nodes
        .into_iter()
        .filter_map(|n| serde_json::from_value(n).ok())
        .collect();
    let len = ctx.id_len();
    ctx.ui
        .output(&node_list_table(&stubs, ctx.flags.bool("verbose"), len));
    0
}

/// `caravan node pool jobs <pool>` (in `-namespace`; `*` for all).
pub(crate) async fn jobs(ctx: &mut Ctx<'_>) -> i32 {
    let (client, pool) = match client_and_pool(ctx).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    let name = pool["Name"].as_str().unwrap_or_default();
    let jobs: Vec<Value> = match client
        .get(&format!("/v1/node/pool/{}/jobs", seg(name)), &[], None)
        .await
    {
        Ok((v, _)) => v,
        Err(e) => return fail(ctx, "Error querying jobs", e),
    };
    if jobs.is_empty() {
        ctx.ui.output("No jobs");
        return 0;
    }
    if let Some(c) = formatted(ctx, &jobs) {
        return c;
    }
    let stubs: Vec<JobListStub> = jobs
        .into_iter()
        .filter_map(|j| serde_json::from_value(j).ok())
        .collect();
    let all_ns = client.config.namespace.as_deref() == Some("*");
    ctx.ui.output(&job_list_table(&stubs, all_ns));
    0
}

/// `caravan node pool delete <pool>`.
pub(crate) async fn delete(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let name = ctx.flags.args[0].clone();
    match client
        .delete::<Value>(&format!("/v1/node/pool/{}", seg(&name)), &[])
        .await
    {
        Ok(_) => {
            ctx.ui
                .output(&format!("Successfully deleted node pool {name:?}!"));
            0
        }
        Err(e) => fail(ctx, "Error deleting node pool", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_spec_parses() {
        // Nomad's `node pool init` example (../shared/corpus/other/command__asset__pool.nomad.hcl).
        let src = r#"node_pool "example" {

  description = "Example node pool"

  # meta is optional metadata on the node pool, defined as key-value pairs.
  # The scheduler does not use node pool metadata as part of scheduling.
  meta {
    environment = "prod"
    owner       = "sre"
  }

  # node identity TTL is an optional parameter that sets the TTL for all node
  # identities issued to nodes in this node pool. The value must be a valid
  # duration string (e.g. "30m", "1h", "24h"). If not set, the default value is
  # "24h".
  # node_identity_ttl = "24h"

  # The scheduler configuration options specific to this node pool. This block
  # supports a subset of the fields supported in the global scheduler
  # configuration as described at:
  # https://developer.hashicorp.com/nomad/commands/operator/scheduler/set-config
  #
  # * scheduler_algorithm is the scheduling algorithm to use for the pool.
  #   If not defined, the global cluster scheduling algorithm is used.
  #
  # * memory_oversubscription_enabled specifies whether memory oversubscription
  #   is enabled. If not defined, the global cluster configuration is used.
  #
  # Available only in Nomad Enterprise.

  # scheduler_config {
  #   scheduler_algorithm             = "spread"
  #   memory_oversubscription_enabled = true
  # }
}
"#;
        let v = parse_spec(src, "pool.nomad.hcl", false).unwrap();
        assert_eq!(v["Name"], "example");
        assert_eq!(v["Description"], "Example node pool");
        assert_eq!(v["Meta"], json!({"environment": "prod", "owner": "sre"}));
        assert!(v.get("SchedulerConfiguration").is_none());

        let v = parse_spec(
            "node_pool \"gpu\" {\n node_identity_ttl = \"1h\"\n scheduler_config {\n  scheduler_algorithm = \"spread\"\n }\n}",
            "p.hcl",
            false,
        )
        .unwrap();
        assert_eq!(v["NodeIdentityTTL"], "1h");
        assert_eq!(v["SchedulerConfiguration"]["SchedulerAlgorithm"], "spread");

        let err = parse_spec("node_pool \"a\" {\n colour = 1\n}", "p.hcl", false).unwrap_err();
        assert!(err.contains("p.hcl:2"), "{err}");
        let err = parse_spec("node_pool \"a\" {}\nnode_pool \"b\" {}", "p.hcl", false).unwrap_err();
        assert!(
            err.contains("expected one node_pool block, found 2"),
            "{err}"
        );
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(24 * 3_600_000_000_000), "24h0m0s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(250_000_000), "250ms");
        assert_eq!(go_duration(0), "0s");
    }
}
