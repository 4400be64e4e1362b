//! The commands, one module per area, and the dispatch from a command path to its code.

mod acl;
mod agent;
mod alloc;
mod alloc_exec;
mod alloc_logs;
mod deployment;
mod eval;
mod job;
mod job_ops;
mod job_run;
mod keyring;
mod lookup;
mod namespace;
mod node;
mod node_pool;
mod operator;
mod operator_snapshot;
mod server;
mod service;
mod setup;
mod status;
mod system;
mod var;

use crate::client::{ApiError, Client};
use crate::format::data_format;
use crate::Ctx;
use serde::Serialize;

/// `Caravan v0.1.0 (Nomad API 1.9.0)`.
pub fn version_string() -> String {
    format!(
        "Caravan v{} (Nomad API {})",
        caravan_structs::CARAVAN_VERSION,
        caravan_structs::NOMAD_API_VERSION
    )
}

pub(crate) async fn dispatch(ctx: &mut Ctx<'_>) -> i32 {
    match ctx.spec.name {
        "version" => {
            ctx.ui.output(&version_string());
            0
        }
        "status" => status::status(ctx).await,
        "job init" => job_run::init(ctx),
        "job run" => job_run::run(ctx).await,
        "job plan" => job_run::plan(ctx).await,
        "job validate" => job_run::validate(ctx).await,
        "job status" => job::status(ctx).await,
        "job inspect" => job::inspect(ctx).await,
        "job stop" => job::stop(ctx).await,
        "job history" => job::history(ctx).await,
        "job allocs" => job::allocs(ctx).await,
        "job deployments" => job::deployments(ctx).await,
        "job eval" => job::eval(ctx).await,
        "job revert" => job_ops::revert(ctx).await,
        "job scale" => job_ops::scale(ctx).await,
        "job dispatch" => job_ops::dispatch(ctx).await,
        "alloc status" => alloc::status(ctx).await,
        "alloc stop" => alloc::stop(ctx).await,
        "alloc restart" => alloc::restart(ctx).await,
        "alloc signal" => alloc::signal(ctx).await,
        "alloc exec" => alloc_exec::exec(ctx).await,
        "alloc logs" => alloc_logs::logs(ctx).await,
        "alloc fs" => alloc_logs::fs(ctx).await,
        "eval status" => eval::status(ctx).await,
        "eval list" => eval::list(ctx).await,
        "node status" => node::status(ctx).await,
        "node eligibility" => node::eligibility(ctx).await,
        "node drain" => node::drain(ctx).await,
        "node pool apply" => node_pool::apply(ctx).await,
        "node pool list" => node_pool::list(ctx).await,
        "node pool info" => node_pool::info(ctx).await,
        "node pool nodes" => node_pool::nodes(ctx).await,
        "node pool jobs" => node_pool::jobs(ctx).await,
        "node pool delete" => node_pool::delete(ctx).await,
        "namespace apply" => namespace::apply(ctx).await,
        "namespace list" => namespace::list(ctx).await,
        "namespace status" => namespace::status(ctx).await,
        "namespace delete" => namespace::delete(ctx).await,
        "server members" => server::members(ctx).await,
        "service list" => service::list(ctx).await,
        "service info" => service::info(ctx).await,
        "service delete" => service::delete(ctx).await,
        "deployment status" => deployment::status(ctx).await,
        "deployment list" => deployment::list(ctx).await,
        "deployment fail" => deployment::fail_deployment(ctx).await,
        "deployment pause" => deployment::pause(ctx).await,
        "deployment resume" => deployment::resume(ctx).await,
        "deployment promote" => deployment::promote(ctx).await,
        "operator api" => operator::api(ctx).await,
        "operator scheduler get-config" => operator::scheduler_get_config(ctx).await,
        "operator scheduler set-config" => operator::scheduler_set_config(ctx).await,
        "operator snapshot save" => operator_snapshot::save(ctx).await,
        "operator snapshot restore" => operator_snapshot::restore(ctx).await,
        "operator snapshot inspect" => operator_snapshot::inspect(ctx).await,
        "system gc" => system::gc(ctx).await,
        "monitor" => agent::monitor(ctx).await,
        "agent-info" => agent::agent_info(ctx).await,
        "system reconcile summaries" => system::reconcile_summaries(ctx).await,
        "operator root keyring list" => keyring::list(ctx).await,
        "operator root keyring rotate" => keyring::rotate(ctx).await,
        "operator root keyring remove" => keyring::remove(ctx).await,
        "setup vault" => setup::vault(ctx).await,
        "acl bootstrap" => acl::bootstrap(ctx).await,
        "acl policy apply" => acl::policy_apply(ctx).await,
        "acl policy list" => acl::policy_list(ctx).await,
        "acl policy info" => acl::policy_info(ctx).await,
        "acl policy delete" => acl::policy_delete(ctx).await,
        "acl token create" => acl::token_create(ctx).await,
        "acl token list" => acl::token_list(ctx).await,
        "acl token info" => acl::token_info(ctx).await,
        "acl token self" => acl::token_self(ctx).await,
        "acl token update" => acl::token_update(ctx).await,
        "acl token delete" => acl::token_delete(ctx).await,
        "acl role create" => acl::role_create(ctx).await,
        "acl role list" => acl::role_list(ctx).await,
        "acl role info" => acl::role_info(ctx).await,
        "acl role update" => acl::role_update(ctx).await,
        "acl role delete" => acl::role_delete(ctx).await,
        "var put" => var::put(ctx).await,
        "var get" => var::get(ctx).await,
        "var list" => var::list(ctx).await,
        "var purge" => var::purge(ctx).await,
        "var lock" => var::lock(ctx).await,
        other => {
            ctx.ui.error(&format!("Unknown command: {other}"));
            127
        }
    }
}

/// Builds the client or prints why not.
pub(crate) fn client_or_err(ctx: &mut Ctx<'_>) -> Result<Client, i32> {
    ctx.client().map_err(|e| {
        ctx.ui.error(&format!("Error initializing client: {e}"));
        1
    })
}

/// The start of most commands: checks the positional argument count, then builds the client.
pub(crate) fn args_and_client(ctx: &mut Ctx<'_>, min: usize, max: usize) -> Result<Client, i32> {
    want_args(ctx, min, max)?;
    client_or_err(ctx)
}

/// Prints `what: err` and returns 1.
pub(crate) fn fail(ctx: &mut Ctx<'_>, what: &str, e: impl std::fmt::Display) -> i32 {
    ctx.ui.error(&format!("{what}: {e}"));
    1
}

/// When `-json` or `-t` was given, prints `data` that way and returns the exit code.
pub(crate) fn formatted<T: Serialize>(ctx: &mut Ctx<'_>, data: &T) -> Option<i32> {
    let json = ctx.flags.bool("json");
    let tmpl = ctx.flags.value("t").map(|s| s.to_string());
    if !json && tmpl.as_deref().map(str::is_empty).unwrap_or(true) {
        return None;
    }
    let value = match serde_json::to_value(data) {
        Ok(v) => v,
        Err(e) => return Some(fail(ctx, "Error formatting output", e)),
    };
    match data_format(json, tmpl.as_deref(), &value) {
        Some(Ok(s)) => {
            ctx.ui.output(&s);
            Some(0)
        }
        Some(Err(e)) => {
            ctx.ui.error(&e);
            Some(1)
        }
        None => None,
    }
}

/// Checks the positional argument count, printing a usage error when it is wrong.
pub(crate) fn want_args(ctx: &mut Ctx<'_>, min: usize, max: usize) -> Result<(), i32> {
    let n = ctx.flags.args.len();
    if n < min || n > max {
        let what = match (min, max) {
            (0, 0) => "This command takes no arguments".to_string(),
            (0, 1) => format!(
                "This command takes either no arguments or one: {}",
                ctx.spec.args
            ),
            (a, b) if a == b => format!("This command takes {}: {}", plural_args(a), ctx.spec.args),
            _ => format!("This command takes {}", ctx.spec.args),
        };
        return Err(ctx.usage_error(&what));
    }
    Ok(())
}

fn plural_args(n: usize) -> String {
    match n {
        1 => "one argument".into(),
        n => format!("{n} arguments"),
    }
}

/// The `EvalID` of an answer that may have created an evaluation (empty when it did not).
pub(crate) fn eval_id_of(resp: &serde_json::Value) -> String {
    resp.get("EvalID")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

/// Whether an API error means "not found".
pub(crate) fn not_found(e: &ApiError) -> bool {
    e.is_not_found()
}
