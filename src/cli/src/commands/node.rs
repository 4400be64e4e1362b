//! Node commands: `node status` (list and single node), `node eligibility`, `node drain`.

use super::alloc::ibytes;
use super::lookup::ListLookup;
use super::{args_and_client, client_or_err, fail, formatted, want_args};
use crate::client::{seg, Client};
use crate::columnize::{format_kv, format_list};
use crate::format::limit;
use crate::timefmt::{format_api_time, pretty_ago};
use crate::Ctx;
use caravan_structs::{Allocation, Node, NodeListStub};
use serde_json::{json, Value};

pub(crate) fn node_list_table(nodes: &[NodeListStub], verbose: bool, len: usize) -> String {
    let mut head = "ID|Node Pool|DC|Name|Class|".to_string();
    if verbose {
        head.push_str("Address|Version|");
    }
    head.push_str("Drain|Eligibility|Status");
    let mut rows = vec![head];
    for n in nodes {
        let mut row = format!(
            "{}|{}|{}|{}|{}",
            limit(&n.id, len),
            n.node_pool,
            n.datacenter,
            n.name,
            n.node_class
        );
        if verbose {
            row.push_str(&format!("|{}|{}", n.address, n.version));
        }
        row.push_str(&format!(
            "|{}|{}|{}",
            n.drain, n.scheduling_eligibility, n.status
        ));
        rows.push(row);
    }
    format_list(&rows)
}

/// Resolves a node ID or prefix; `-self` asks the agent for its own node.
async fn node_id(ctx: &mut Ctx<'_>, client: &Client, arg: Option<String>) -> Result<String, i32> {
    let Some(id) = arg else {
        // -self
        let me = match client.get_value("/v1/agent/self", &[]).await {
            Ok(v) => v,
            Err(e) => return Err(fail(ctx, "Error querying agent info", e)),
        };
        return match me
            .pointer("/stats/client/node_id")
            .or_else(|| me.pointer("/Stats/client/node_id"))
            .and_then(|v| v.as_str())
        {
            Some(id) => Ok(id.to_string()),
            None => {
                ctx.ui.error("Caravan not running in client mode");
                Err(1)
            }
        };
    };
    Ok(NODES.resolve(ctx, client, &id).await?.id)
}

/// Nodes, for resolving an ID prefix.
const NODES: ListLookup<NodeListStub> = ListLookup {
    endpoint: "/v1/nodes",
    query_error: "Error querying node info",
    plural: "nodes",
    id_of: |n| &n.id,
    no_match: |id, _| format!("No node(s) with prefix {id:?} found"),
    table: |ctx, nodes| node_list_table(nodes, ctx.flags.bool("verbose"), ctx.id_len()),
};

/// The flags and arguments `node eligibility` and `node drain` share: exactly one of
/// `-enable`/`-disable` (returns whether it is `-enable`), and a node ID unless `-self`.
fn enable_and_node_arg(ctx: &mut Ctx<'_>) -> Result<bool, i32> {
    let enable = ctx.flags.bool("enable");
    let disable = ctx.flags.bool("disable");
    if enable == disable {
        return Err(ctx.usage_error("Either the '-enable' or '-disable' flag must be set"));
    }
    let self_ = ctx.flags.bool("self");
    want_args(ctx, usize::from(!self_), usize::from(!self_))?;
    Ok(enable)
}

/// Builds the client and resolves the node a command acts on (`args[0]`, or `-self`).
async fn client_and_node(ctx: &mut Ctx<'_>) -> Result<(Client, String), i32> {
    let client = client_or_err(ctx)?;
    let arg = ctx.flags.args.first().cloned();
    let id = node_id(ctx, &client, arg).await?;
    Ok((client, id))
}

pub(crate) async fn status(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let len = ctx.id_len();
    let arg = ctx.flags.args.first().cloned();
    if arg.is_none() && !ctx.flags.bool("self") {
        let nodes: Vec<Value> = match client.get("/v1/nodes", &[], None).await {
            Ok((n, _)) => n,
            Err(e) => return fail(ctx, "Error querying node status", e),
        };
        if let Some(c) = formatted(ctx, &nodes) {
            return c;
        }
        if nodes.is_empty() {
            ctx.ui.output("No nodes registered");
            return 0;
        }
        let stubs: Vec<NodeListStub> = nodes
            .into_iter()
            .filter_map(|n| serde_json::from_value(n).ok())
            .collect();
        if ctx.flags.bool("quiet") {
            for n in &stubs {
                ctx.ui.output(limit(&n.id, len));
            }
            return 0;
        }
        ctx.ui
            .output(&node_list_table(&stubs, ctx.flags.bool("verbose"), len));
        return 0;
    }
    let id = match node_id(ctx, &client, arg).await {
        Ok(id) => id,
        Err(c) => return c,
    };
    show_node(ctx, &client, &id).await
}

/// The single-node view of `node status` (also used by `status <node>`).
pub(crate) async fn show_node(ctx: &mut Ctx<'_>, client: &Client, id: &str) -> i32 {
    let raw = match client
        .get_value(&format!("/v1/node/{}", seg(id)), &[])
        .await
    {
        Ok(v) => v,
        Err(e) => return fail(ctx, "Error querying node info", e),
    };
    if let Some(c) = formatted(ctx, &raw) {
        return c;
    }
    let node: Node = match serde_json::from_value(raw) {
        Ok(n) => n,
        Err(e) => return fail(ctx, "Error decoding node", e),
    };
    let allocs: Vec<Allocation> = match client
        .get(&format!("/v1/node/{}/allocations", seg(id)), &[], None)
        .await
    {
        Ok((a, _)) => a,
        Err(e) => return fail(ctx, "Error querying node allocations", e),
    };
    let verbose = ctx.flags.bool("verbose");
    let len = ctx.id_len();
    let mut drivers: Vec<String> = node
        .drivers
        .iter()
        .filter(|(_, d)| d.detected)
        .map(|(n, d)| {
            if d.healthy {
                n.clone()
            } else {
                format!("{n} (unhealthy)")
            }
        })
        .collect();
    drivers.sort();
    let host_volumes: Vec<&String> = node.host_volumes.keys().collect();
    let host_networks: Vec<&String> = node.host_networks.keys().collect();
    let join = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
    let basic = vec![
        format!("ID|{}", node.id),
        format!("Name|{}", node.name),
        format!("Node Pool|{}", node.node_pool),
        format!("Class|{}", node.node_class),
        format!("DC|{}", node.datacenter),
        format!("Drain|{}", node.drain),
        format!("Eligibility|{}", node.scheduling_eligibility),
        format!("Status|{}", node.status),
        "CSI Controllers|".to_string(),
        "CSI Drivers|".to_string(),
        format!("Host Volumes|{}", join(&host_volumes)),
        format!("Host Networks|{}", join(&host_networks)),
        "CSI Volumes|".to_string(),
        format!("Drivers|{}", drivers.join(",")),
    ];
    ctx.ui.output(&format_kv(&basic));

    if !ctx.flags.bool("short") {
        if verbose {
            let mut rows = vec!["Driver|Detected|Healthy|Message|Time".to_string()];
            for (name, d) in &node.drivers {
                rows.push(format!(
                    "{name}|{}|{}|{}|{}",
                    d.detected,
                    d.healthy,
                    d.health_description,
                    format_api_time(Some(&d.update_time))
                ));
            }
            ctx.ui.output("\nDrivers");
            ctx.ui.output(&format_list(&rows));
        }
        let mut rows = vec![if verbose {
            "Time|Subsystem|Message|Details".to_string()
        } else {
            "Time|Subsystem|Message".to_string()
        }];
        for e in node.events.iter().rev() {
            let t = format_api_time(Some(&e.timestamp));
            if verbose {
                let details: Vec<String> =
                    e.details.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                rows.push(format!(
                    "{t}|{}|{}|{}",
                    e.subsystem,
                    e.message,
                    details.join(", ")
                ));
            } else {
                rows.push(format!("{t}|{}|{}", e.subsystem, e.message));
            }
        }
        ctx.ui.output("\nNode Events");
        ctx.ui.output(&format_list(&rows));

        let running: Vec<&Allocation> = allocs
            .iter()
            .filter(|a| a.client_status == "running")
            .collect();
        let (mut cpu, mut mem, mut disk) = (0i64, 0i64, 0i64);
        for a in &running {
            let c = a.allocated_resources.comparable();
            cpu += c.cpu_shares;
            mem += c.memory_mb;
            disk += c.disk_mb;
        }
        let total = node.comparable_capacity();
        let mb = |n: i64| ibytes(n.max(0) as u64 * 1024 * 1024);
        let count = if node.node_max_allocs > 0 {
            format!("{}/{}", running.len(), node.node_max_allocs)
        } else {
            running.len().to_string()
        };
        ctx.ui.output("\nAllocated Resources");
        ctx.ui.output(&format_list(&[
            "CPU|Memory|Disk|Alloc Count".to_string(),
            format!(
                "{cpu}/{} MHz|{}/{}|{}/{}|{count}",
                total.cpu_shares,
                mb(mem),
                mb(total.memory_mb),
                mb(disk),
                mb(total.disk_mb)
            ),
        ]));
    }

    ctx.ui.output("\nAllocations");
    if allocs.is_empty() {
        ctx.ui.output("No allocations placed");
    } else {
        let mut rows = vec![if verbose {
            "ID|Eval ID|Node ID|Task Group|Version|Desired|Status|Created|Modified".to_string()
        } else {
            "ID|Node ID|Task Group|Version|Desired|Status|Created|Modified".to_string()
        }];
        for a in &allocs {
            let (c, m) = if verbose {
                (
                    crate::timefmt::format_unix_nanos(a.create_time),
                    crate::timefmt::format_unix_nanos(a.modify_time),
                )
            } else {
                (pretty_ago(a.create_time), pretty_ago(a.modify_time))
            };
            let eval = if verbose {
                format!("{}|", limit(&a.eval_id, len))
            } else {
                String::new()
            };
            rows.push(format!(
                "{}|{eval}{}|{}|{}|{}|{}|{c}|{m}",
                limit(&a.id, len),
                limit(&a.node_id, len),
                a.task_group,
                a.job_version(),
                a.desired_status,
                a.client_status
            ));
        }
        ctx.ui.output(&format_list(&rows));
    }

    if verbose {
        let attrs: Vec<String> = node
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}|{v}"))
            .collect();
        ctx.ui.output("\nAttributes");
        ctx.ui.output(&format_kv(&attrs));
        let meta: Vec<String> = node.meta.iter().map(|(k, v)| format!("{k}|{v}")).collect();
        ctx.ui.output("\nMeta");
        ctx.ui.output(&format_kv(&meta));
    }
    0
}

pub(crate) async fn eligibility(ctx: &mut Ctx<'_>) -> i32 {
    let enable = match enable_and_node_arg(ctx) {
        Ok(e) => e,
        Err(c) => return c,
    };
    let (client, id) = match client_and_node(ctx).await {
        Ok(r) => r,
        Err(c) => return c,
    };
    let elig = if enable { "eligible" } else { "ineligible" };
    let body = json!({ "NodeID": id, "Eligibility": elig });
    if let Err(e) = client
        .put::<Value>(&format!("/v1/node/{}/eligibility", seg(&id)), &body, &[])
        .await
    {
        return fail(ctx, "Error updating scheduling eligibility", e);
    }
    ctx.ui.output(&format!(
        "Node {:?} scheduling eligibility set: {elig} for scheduling",
        id
    ));
    0
}

pub(crate) async fn drain(ctx: &mut Ctx<'_>) -> i32 {
    let enable = match enable_and_node_arg(ctx) {
        Ok(e) => e,
        Err(c) => return c,
    };
    let deadline = if ctx.flags.bool("force") {
        -1
    } else if ctx.flags.bool("no-deadline") {
        0
    } else {
        match ctx.flags.value("deadline") {
            None => caravan_structs::time::HOUR,
            Some(d) => match caravan_structs::time::parse_duration(d) {
                Ok(n) => n,
                Err(e) => return ctx.usage_error(&format!("Failed to parse deadline {d:?}: {e}")),
            },
        }
    };
    let (client, id) = match client_and_node(ctx).await {
        Ok(r) => r,
        Err(c) => return c,
    };
    let body = if enable {
        json!({
            "NodeID": id,
            "DrainSpec": { "Deadline": deadline, "IgnoreSystemJobs": ctx.flags.bool("ignore-system") },
            "MarkEligible": false,
        })
    } else {
        json!({ "NodeID": id, "DrainSpec": null, "MarkEligible": !ctx.flags.bool("keep-ineligible") })
    };
    if let Err(e) = client
        .put::<Value>(&format!("/v1/node/{}/drain", seg(&id)), &body, &[])
        .await
    {
        return fail(ctx, "Error updating drain specification", e);
    }
    let what = if enable { "set" } else { "unset" };
    ctx.ui.output(&format!("Node {id:?} drain strategy {what}"));
    0
}
