//! Allocation commands: `alloc status`, `stop`, `restart`, `signal`, and what the other
//! allocation commands share: the prefix lookup and the `<alloc> [<task>]` argument handling.

use super::lookup::ListLookup;
use super::{args_and_client, eval_id_of, fail, formatted};
use crate::client::{seg, Client};
use crate::columnize::{format_kv, format_list, format_list_with_spaces};
use crate::format::{format_alloc_list_stubs, format_alloc_metrics, limit};
use crate::monitor;
use crate::timefmt::{format_api_time, format_unix_nanos, pretty_ago};
use crate::Ctx;
use caravan_structs::{AllocListStub, Allocation, TaskEvent, TaskState};
use serde_json::{json, Value};

/// Allocations, for resolving an ID prefix.
const ALLOCS: ListLookup<AllocListStub> = ListLookup {
    endpoint: "/v1/allocations",
    query_error: "Error querying allocation",
    plural: "allocations",
    id_of: |s| &s.id,
    no_match: |_, prefix| format!("No allocation(s) with prefix or id {prefix:?} found"),
    table: |ctx, stubs| format_alloc_list_stubs(stubs, ctx.flags.bool("verbose"), ctx.id_len()),
};

/// The allocation an ID or prefix names, fetched in full (typed, and as the raw JSON for
/// `-json`). Ambiguous prefixes list the matches and fail.
pub(crate) async fn alloc_by_prefix(
    ctx: &mut Ctx<'_>,
    client: &Client,
    id: &str,
) -> Result<(Allocation, Value), i32> {
    let stub = ALLOCS.resolve(ctx, client, id).await?;
    let mut params = vec![];
    if !stub.namespace.is_empty() {
        params.push(("namespace", stub.namespace.clone()));
    }
    let raw = match client
        .get_value(&format!("/v1/allocation/{}", seg(&stub.id)), &params)
        .await
    {
        Ok(v) => v,
        Err(e) => return Err(fail(ctx, "Error querying allocation", e)),
    };
    match serde_json::from_value::<Allocation>(raw.clone()) {
        Ok(a) => Ok((a, raw)),
        Err(e) => Err(fail(ctx, "Error decoding allocation", e)),
    }
}

/// The start of every command on one allocation: checks the argument count, builds the
/// client and resolves the allocation `args[0]` names (typed, and as raw JSON).
pub(crate) async fn alloc_arg(
    ctx: &mut Ctx<'_>,
    min_args: usize,
    max_args: usize,
) -> Result<(Client, Allocation, Value), i32> {
    let client = args_and_client(ctx, min_args, max_args)?;
    let id = ctx.flags.args[0].clone();
    let (alloc, raw) = alloc_by_prefix(ctx, &client, &id).await?;
    Ok((client, alloc, raw))
}

/// How a `<alloc> [<task>]` command treats the task named by `args[1]` or `-task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskArg {
    /// A task is needed: the one named, or the allocation's only one.
    Required,
    /// A named task is checked; none means the whole allocation.
    Optional,
    /// As `Optional`, but naming a task together with `-all-tasks` is a usage error.
    OptionalUnlessAllTasks,
}

/// The start of the `<alloc> [<task>]` commands: one or two arguments, the client, the
/// allocation, and the task the command acts on (empty when none was named and `task` does
/// not require one).
pub(crate) async fn alloc_and_task(
    ctx: &mut Ctx<'_>,
    task: TaskArg,
) -> Result<(Client, Allocation, String), i32> {
    let (client, alloc, _) = alloc_arg(ctx, 1, 2).await?;
    let named = ctx
        .flags
        .args
        .get(1)
        .cloned()
        .or_else(|| ctx.flags.value("task").map(str::to_string));
    if task == TaskArg::OptionalUnlessAllTasks && ctx.flags.bool("all-tasks") && named.is_some() {
        return Err(ctx.usage_error("The -all-tasks option cannot be used with a task name"));
    }
    let task = match (named, task) {
        (named, TaskArg::Required) => pick_task(ctx, &alloc, named)?,
        (Some(t), _) => pick_task(ctx, &alloc, Some(t))?,
        (None, _) => String::new(),
    };
    Ok((client, alloc, task))
}

/// Bytes in Go's `humanize.IBytes` style: `300 MiB`, `1.5 GiB`.
pub(crate) fn ibytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 10 {
        return format!("{n} B");
    }
    let e = ((n as f64).ln() / 1024f64.ln()).floor() as usize;
    let e = e.min(UNITS.len() - 1);
    let val = n as f64 / 1024f64.powi(e as i32);
    let val = (val * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", UNITS[e])
    } else {
        format!("{val:.0} {}", UNITS[e])
    }
}

fn event_description(e: &TaskEvent) -> String {
    if !e.display_message.is_empty() {
        return e.display_message.clone();
    }
    match e.event_type.as_str() {
        "Started" => "Task started by client".into(),
        "Received" => "Task received by client".into(),
        "Task Setup" => e.message.clone(),
        "Driver Failure" if !e.driver_error.is_empty() => e.driver_error.clone(),
        "Driver Failure" => "Failed to start task".into(),
        "Setup Failure" if !e.setup_error.is_empty() => e.setup_error.clone(),
        "Setup Failure" => "Task setup failed".into(),
        "Killing" if e.kill_timeout != 0 => format!(
            "Sent interrupt. Waiting {} before force killing",
            caravan_structs::time::format_duration(e.kill_timeout)
        ),
        "Killing" => "Sent interrupt".into(),
        "Killed" if !e.kill_error.is_empty() => e.kill_error.clone(),
        "Killed" => "Task successfully killed".into(),
        "Terminated" => {
            let mut parts = vec![format!("Exit Code: {}", e.exit_code)];
            if e.signal != 0 {
                parts.push(format!("Signal: {}", e.signal));
            }
            if !e.message.is_empty() {
                parts.push(format!("Exit Message: {:?}", e.message));
            }
            parts.join(", ")
        }
        "Restarting" => {
            let d = format!(
                "Task restarting in {}",
                caravan_structs::time::format_duration(e.start_delay)
            );
            if e.restart_reason.is_empty() {
                d
            } else {
                format!("{} - {d}", e.restart_reason)
            }
        }
        "Not Restarting" if !e.restart_reason.is_empty() => e.restart_reason.clone(),
        "Not Restarting" => "Task exceeded restart policy".into(),
        _ => e.message.clone(),
    }
}

fn task_status(state: &TaskState) -> String {
    let basic = format_kv(&[
        format!(
            "Started At|{}",
            format_api_time(state.started_at.as_deref())
        ),
        format!(
            "Finished At|{}",
            format_api_time(state.finished_at.as_deref())
        ),
        format!("Total Restarts|{}", state.restarts),
        format!(
            "Last Restart|{}",
            format_api_time(state.last_restart.as_deref())
        ),
    ]);
    let mut rows = vec!["Time|Type|Description".to_string()];
    for e in state.events.iter().rev() {
        rows.push(format!(
            "{}|{}|{}",
            format_unix_nanos(e.time),
            e.event_type,
            event_description(e).replace('|', "/")
        ));
    }
    format!(
        "Task Events:\n{basic}\n\nRecent Events:\n{}",
        format_list(&rows)
    )
}

fn task_resources(a: &Allocation, task: &str) -> Option<String> {
    let r = a.allocated_resources.tasks.get(task)?;
    let mut addrs = vec![];
    for nw in &r.networks {
        for p in nw.reserved_ports.iter().chain(nw.dynamic_ports.iter()) {
            addrs.push(format!("{}: {}:{}", p.label, nw.ip, p.value));
        }
    }
    // Group networks (the common case) hold their ports in the shared resources.
    for p in &a.allocated_resources.shared.ports {
        let to = if p.to > 0 {
            format!(" -> {}", p.to)
        } else {
            String::new()
        };
        addrs.push(format!("{}: {}:{}{to}", p.label, p.host_ip, p.value));
    }
    let mut rows = vec!["CPU|Memory|Disk|Addresses".to_string()];
    let mem_max = if r.memory.memory_max_mb != 0 && r.memory.memory_max_mb != r.memory.memory_mb {
        format!(
            "Max: {}",
            ibytes(r.memory.memory_max_mb as u64 * 1024 * 1024)
        )
    } else {
        String::new()
    };
    rows.push(format!(
        "{} MHz|{}|{}|{}",
        r.cpu.cpu_shares,
        ibytes(r.memory.memory_mb.max(0) as u64 * 1024 * 1024),
        ibytes(a.allocated_resources.shared.disk_mb.max(0) as u64 * 1024 * 1024),
        addrs.first().cloned().unwrap_or_default()
    ));
    if !mem_max.is_empty() || addrs.len() > 1 {
        rows.push(format!(
            "|{mem_max}||{}",
            addrs.get(1).cloned().unwrap_or_default()
        ));
    }
    for a in addrs.iter().skip(2) {
        rows.push(format!("|||{a}"));
    }
    Some(format!(
        "Task Resources:\n{}",
        format_list_with_spaces(&rows)
    ))
}

pub(crate) async fn status(ctx: &mut Ctx<'_>) -> i32 {
    let (_, alloc, raw) = match alloc_arg(ctx, 1, 1).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    if let Some(c) = formatted(ctx, &raw) {
        return c;
    }
    show_alloc(ctx, &alloc)
}

/// The single-allocation view of `alloc status` (also used by `status <alloc>`).
pub(crate) fn show_alloc(ctx: &mut Ctx<'_>, alloc: &Allocation) -> i32 {
    let verbose = ctx.flags.bool("verbose");
    let len = ctx.id_len();
    let (created, modified) = if verbose {
        (
            format_unix_nanos(alloc.create_time),
            format_unix_nanos(alloc.modify_time),
        )
    } else {
        (pretty_ago(alloc.create_time), pretty_ago(alloc.modify_time))
    };
    if ctx.flags.bool("short") {
        ctx.ui.output(&format_kv(&[
            format!("ID|{}", alloc.id),
            format!("Name|{}", alloc.name),
            format!("Created|{created}"),
            format!("Modified|{modified}"),
        ]));
        let mut rows = vec!["Name|State|Last Event|Time".to_string()];
        for (name, st) in &alloc.task_states {
            let (ev, t) = st
                .events
                .last()
                .map(|e| (e.event_type.clone(), format_unix_nanos(e.time)))
                .unwrap_or_default();
            rows.push(format!("{name}|{}|{ev}|{t}", st.state));
        }
        ctx.ui.output("\nTasks");
        ctx.ui.output(&format_list(&rows));
        return 0;
    }
    let mut basic = vec![
        format!("ID|{}", alloc.id),
        format!("Eval ID|{}", limit(&alloc.eval_id, len)),
        format!("Name|{}", alloc.name),
        format!("Node ID|{}", limit(&alloc.node_id, len)),
        format!("Node Name|{}", alloc.node_name),
        format!("Job ID|{}", alloc.job_id),
        format!("Job Version|{}", alloc.job_version()),
        format!("Client Status|{}", alloc.client_status),
        format!("Client Description|{}", alloc.client_description),
        format!("Desired Status|{}", alloc.desired_status),
        format!("Desired Description|{}", alloc.desired_description),
        format!("Created|{created}"),
        format!("Modified|{modified}"),
    ];
    if !alloc.deployment_id.is_empty() {
        let health = match alloc.deployment_status.as_ref().and_then(|d| d.healthy) {
            Some(true) => "healthy",
            Some(false) => "unhealthy",
            None => "unset",
        };
        basic.push(format!(
            "Deployment ID|{}",
            limit(&alloc.deployment_id, len)
        ));
        basic.push(format!("Deployment Health|{health}"));
        if alloc.deployment_status.as_ref().is_some_and(|d| d.canary) {
            basic.push("Canary|true".into());
        }
    }
    if !alloc.next_allocation.is_empty() {
        basic.push(format!(
            "Replacement Alloc ID|{}",
            limit(&alloc.next_allocation, len)
        ));
    }
    if verbose {
        let m = alloc.metrics.clone().unwrap_or_default();
        basic.push(format!("Evaluated Nodes|{}", m.nodes_evaluated));
        basic.push(format!("Filtered Nodes|{}", m.nodes_filtered));
        basic.push(format!("Exhausted Nodes|{}", m.nodes_exhausted));
        basic.push(format!(
            "Allocation Time|{}",
            caravan_structs::time::format_duration(m.allocation_time)
        ));
        basic.push(format!("Failures|{}", m.coalesced_failures));
    }
    ctx.ui.output(&format_kv(&basic));

    // Tasks: lifecycle hooks first as Nomad orders them, then by name.
    let mut names: Vec<&String> = alloc.task_states.keys().collect();
    let hook_rank = |n: &str| -> u8 {
        match alloc.allocated_resources.task_lifecycles.get(n) {
            Some(Some(lc)) if lc.hook == "prestart" => 0,
            Some(Some(lc)) if lc.hook == "poststart" => 2,
            Some(Some(lc)) if lc.hook == "poststop" => 3,
            _ => 1,
        }
    };
    names.sort_by_key(|n| (hook_rank(n), (*n).clone()));
    for name in names {
        let st = &alloc.task_states[name];
        ctx.ui.output(&format!("\nTask {name:?} is {:?}", st.state));
        if let Some(r) = task_resources(alloc, name) {
            ctx.ui.output(&r);
        }
        ctx.ui.output("");
        ctx.ui.output(&task_status(st));
    }
    if verbose {
        ctx.ui.output("\nPlacement Metrics");
        let m = alloc.metrics.clone().unwrap_or_default();
        ctx.ui.output(&format_alloc_metrics(&m, true, "  "));
    }
    0
}

pub(crate) async fn stop(ctx: &mut Ctx<'_>) -> i32 {
    let (client, alloc, _) = match alloc_arg(ctx, 1, 1).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let params = vec![(
        "no_shutdown_delay",
        ctx.flags.bool("no-shutdown-delay").to_string(),
    )];
    let resp: Value = match client
        .put(
            &format!("/v1/allocation/{}/stop", seg(&alloc.id)),
            &json!({}),
            &params,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Error stopping allocation", e),
    };
    let eval_id = eval_id_of(&resp);
    if ctx.flags.bool("detach") || eval_id.is_empty() {
        ctx.ui.output(&eval_id);
        return 0;
    }
    let len = ctx.id_len();
    monitor::monitor(&mut ctx.ui, &client, &eval_id, len).await
}

/// Picks the task an alloc command acts on: the one named, or the only one.
pub(crate) fn pick_task(
    ctx: &mut Ctx<'_>,
    alloc: &Allocation,
    named: Option<String>,
) -> Result<String, i32> {
    let tasks: Vec<String> = match alloc
        .job
        .as_ref()
        .and_then(|j| j.task_groups.iter().find(|g| g.name == alloc.task_group))
    {
        Some(g) => g.tasks.iter().map(|t| t.name.clone()).collect(),
        None => alloc.task_states.keys().cloned().collect(),
    };
    match named {
        Some(t) if tasks.is_empty() || tasks.contains(&t) => Ok(t),
        Some(t) => {
            ctx.ui.error(&format!("Could not find task named: {t}"));
            Err(1)
        }
        None if tasks.len() == 1 => Ok(tasks[0].clone()),
        None => {
            ctx.ui.error(&format!(
                "Allocation {:?} is running the following tasks:\n  * {}\n\nPlease specify the task.",
                limit(&alloc.id, 8),
                tasks.join("\n  * ")
            ));
            Err(1)
        }
    }
}

pub(crate) async fn restart(ctx: &mut Ctx<'_>) -> i32 {
    let (client, alloc, task) = match alloc_and_task(ctx, TaskArg::OptionalUnlessAllTasks).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let all = ctx.flags.bool("all-tasks");
    let body = json!({ "TaskName": task, "AllTasks": all });
    match client
        .put::<Value>(
            &format!("/v1/client/allocation/{}/restart", seg(&alloc.id)),
            &body,
            &[],
        )
        .await
    {
        Ok(_) => 0,
        Err(e) => fail(ctx, "Failed to restart allocation", e),
    }
}

pub(crate) async fn signal(ctx: &mut Ctx<'_>) -> i32 {
    let (client, alloc, task) = match alloc_and_task(ctx, TaskArg::Optional).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let sig = ctx.flags.value("s").unwrap_or("SIGKILL").to_string();
    let body = json!({ "Task": task, "Signal": sig });
    match client
        .put::<Value>(
            &format!("/v1/client/allocation/{}/signal", seg(&alloc.id)),
            &body,
            &[],
        )
        .await
    {
        Ok(_) => 0,
        Err(e) => fail(ctx, "Error signalling allocation", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibytes_like_humanize() {
        assert_eq!(ibytes(300 * 1024 * 1024), "300 MiB");
        assert_eq!(ibytes(1536 * 1024 * 1024), "1.5 GiB");
        assert_eq!(ibytes(5), "5 B");
    }
}
