//! Evaluation commands: `eval status` (with its `Failed Placements` section) and `eval list`.

use super::lookup::ListLookup;
use super::{args_and_client, fail, formatted};
use crate::client::{seg, Client};
use crate::columnize::{format_kv, format_list};
use crate::format::{
    failed_placement_heading, format_alloc_list_stubs, format_alloc_metrics, limit,
};
use crate::monitor;
use crate::timefmt::{format_unix_nanos, pretty_ago};
use crate::Ctx;
use caravan_structs::{AllocListStub, Evaluation};
use serde_json::Value;

fn failure_text(e: &Evaluation) -> String {
    if e.status == "blocked" {
        "N/A - In Progress".into()
    } else {
        (!e.failed_tg_allocs.is_empty()).to_string()
    }
}

pub(crate) fn eval_list_table(evals: &[Evaluation], len: usize) -> String {
    let mut rows = vec![
        "ID|Priority|Triggered By|Job ID|Namespace|Node ID|Status|Placement Failures".to_string(),
    ];
    for e in evals {
        rows.push(format!(
            "{}|{}|{}|{}|{}|{}|{}|{}",
            limit(&e.id, len),
            e.priority,
            e.triggered_by,
            e.job_id,
            e.namespace,
            limit(&e.node_id, len),
            e.status,
            failure_text(e)
        ));
    }
    format_list(&rows)
}

/// Evaluations, for resolving an ID prefix.
const EVALS: ListLookup<Evaluation> = ListLookup {
    endpoint: "/v1/evaluations",
    query_error: "Error querying evaluation",
    plural: "evaluations",
    id_of: |e| &e.id,
    no_match: |_, prefix| format!("No evaluation(s) with prefix or id {prefix:?} found"),
    table: |ctx, evals| eval_list_table(evals, ctx.id_len()),
};

pub(crate) async fn status(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let id = ctx.flags.args[0].clone();
    let eid = match EVALS.resolve(ctx, &client, &id).await {
        Ok(e) => e.id,
        Err(c) => return c,
    };
    let len = ctx.id_len();
    if ctx.flags.bool("monitor") {
        return monitor::monitor(&mut ctx.ui, &client, &eid, len).await;
    }
    show_eval(ctx, &client, &eid).await
}

/// The single-evaluation view of `eval status` (also used by `status <eval>`).
pub(crate) async fn show_eval(ctx: &mut Ctx<'_>, client: &Client, id: &str) -> i32 {
    let raw = match client
        .get_value(&format!("/v1/evaluation/{}", seg(id)), &[])
        .await
    {
        Ok(v) => v,
        Err(e) => return fail(ctx, "Error querying evaluation", e),
    };
    if let Some(c) = formatted(ctx, &raw) {
        return c;
    }
    let eval: Evaluation = match serde_json::from_value(raw) {
        Ok(e) => e,
        Err(e) => return fail(ctx, "Error decoding evaluation", e),
    };
    let placed: Vec<AllocListStub> = match client
        .get(
            &format!("/v1/evaluation/{}/allocations", seg(id)),
            &[],
            None,
        )
        .await
    {
        Ok((a, _)) => a,
        Err(e) => return fail(ctx, "Error querying related allocations", e),
    };
    let verbose = ctx.flags.bool("verbose");
    let len = ctx.id_len();
    let (created, modified) = if verbose {
        (
            format_unix_nanos(eval.create_time),
            format_unix_nanos(eval.modify_time),
        )
    } else {
        (pretty_ago(eval.create_time), pretty_ago(eval.modify_time))
    };
    let desc = if eval.status_description.is_empty() {
        eval.status.clone()
    } else {
        eval.status_description.clone()
    };
    let mut basic = vec![
        format!("ID|{}", limit(&eval.id, len)),
        format!("Create Time|{created}"),
        format!("Modify Time|{modified}"),
        format!("Status|{}", eval.status),
        format!("Status Description|{desc}"),
        format!("Type|{}", eval.eval_type),
        format!("TriggeredBy|{}", eval.triggered_by),
        format!("Job ID|{}", eval.job_id),
        format!("Namespace|{}", eval.namespace),
    ];
    match eval.triggered_by.as_str() {
        "node-update" => basic.push(format!("Node ID|{}", eval.node_id)),
        "max-plan-attempts" => basic.push(format!("Previous Eval|{}", eval.previous_eval)),
        _ => {}
    }
    basic.push(format!("Priority|{}", eval.priority));
    basic.push(format!("Placement Failures|{}", failure_text(&eval)));
    if eval.wait_until > 0 {
        basic.push(format!("Wait Until|{}", format_unix_nanos(eval.wait_until)));
    }
    basic.push(format!("Previous Eval|{}", limit(&eval.previous_eval, len)));
    basic.push(format!("Next Eval|{}", limit(&eval.next_eval, len)));
    basic.push(format!("Blocked Eval|{}", limit(&eval.blocked_eval, len)));
    ctx.ui.output(&format_kv(&basic));

    if !placed.is_empty() {
        ctx.ui.output("\nPlaced Allocations");
        ctx.ui.output(&format_alloc_list_stubs(&placed, false, len));
    }
    if !eval.failed_tg_allocs.is_empty() {
        ctx.ui.output("\nFailed Placements");
        for (tg, m) in &eval.failed_tg_allocs {
            ctx.ui.output(&failed_placement_heading(tg, m));
            ctx.ui.output(&format_alloc_metrics(m, false, "  "));
        }
        if !eval.blocked_eval.is_empty() {
            ctx.ui.output(&format!(
                "\nEvaluation {:?} waiting for additional capacity to place remainder",
                limit(&eval.blocked_eval, len)
            ));
        }
    }
    0
}

pub(crate) async fn list(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let mut params = vec![];
    if let Some(p) = ctx.flags.value("per-page") {
        params.push(("per_page", p.to_string()));
    }
    let raw: Vec<Value> = match client.get("/v1/evaluations", &params, None).await {
        Ok((e, _)) => e,
        Err(e) => return fail(ctx, "Error querying evaluations", e),
    };
    let job = ctx.flags.value("job").map(str::to_string);
    let status = ctx.flags.value("status").map(str::to_string);
    let keep = |v: &Value, k: &str, want: &Option<String>| {
        want.as_ref()
            .map(|w| v.get(k).and_then(|s| s.as_str()) == Some(w.as_str()))
            .unwrap_or(true)
    };
    let raw: Vec<Value> = raw
        .into_iter()
        .filter(|v| keep(v, "JobID", &job) && keep(v, "Status", &status))
        .collect();
    if let Some(c) = formatted(ctx, &raw) {
        return c;
    }
    if raw.is_empty() {
        ctx.ui.output("No evals found");
        return 0;
    }
    let evals: Vec<Evaluation> = raw
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let len = ctx.id_len();
    ctx.ui.output(&eval_list_table(&evals, len));
    0
}
