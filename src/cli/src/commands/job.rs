//! Commands about submitted jobs: `job status`, `inspect`, `stop`, `history`, `allocs`,
//! `deployments`, `eval`.

use super::{args_and_client, eval_id_of, fail, formatted, not_found};
use crate::api_types::{JobListStub, JobRegisterResponse, JobSummary};
use crate::client::{seg, Client};
use crate::columnize::{format_kv, format_list};
use crate::format::{
    format_alloc_list_stubs, format_alloc_metrics, format_deployment, format_deployment_groups,
    limit,
};
use crate::monitor;
use crate::prefix::{match_prefix, Match};
use crate::timefmt::format_unix_nanos;
use crate::Ctx;
use caravan_structs::{AllocListStub, Deployment, Evaluation, Job};
use serde_json::{json, Value};

/// Resolves a job ID or prefix (Nomad's `JobIDByPrefix`); prints why not on failure.
pub(crate) async fn job_id_by_prefix(
    ctx: &mut Ctx<'_>,
    client: &Client,
    prefix: &str,
) -> Result<String, i32> {
    let jobs: Vec<JobListStub> = match client
        .get("/v1/jobs", &[("prefix", prefix.to_string())], None)
        .await
    {
        Ok((j, _)) => j,
        Err(e) => return Err(fail(ctx, "Error querying job", e)),
    };
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    match match_prefix(prefix, &ids) {
        Match::One(id) => Ok(id),
        Match::None => {
            ctx.ui
                .error(&format!("No job(s) with prefix or id {prefix:?} found"));
            Err(1)
        }
        Match::Many(_) => {
            let matched: Vec<JobListStub> = jobs
                .into_iter()
                .filter(|j| j.id.starts_with(prefix))
                .collect();
            ctx.ui.error(&format!(
                "Prefix matched multiple jobs\n\n{}",
                job_list_table(&matched, false)
            ));
            Err(1)
        }
    }
}

fn status_string(status: &str, stop: bool) -> String {
    if stop {
        format!("{status} (stopped)")
    } else {
        status.to_string()
    }
}

pub(crate) fn job_list_table(jobs: &[JobListStub], namespaces: bool) -> String {
    let mut rows = vec![if namespaces {
        "ID|Namespace|Type|Priority|Status|Submit Date".to_string()
    } else {
        "ID|Type|Priority|Status|Submit Date".to_string()
    }];
    for j in jobs {
        let mut t = j.job_type.clone();
        if j.periodic {
            t.push_str("/periodic");
        }
        if j.parameterized_job {
            t.push_str("/parameterized");
        }
        let ns = if namespaces {
            format!("{}|", j.namespace)
        } else {
            String::new()
        };
        rows.push(format!(
            "{}|{ns}{t}|{}|{}|{}",
            j.id,
            j.priority,
            status_string(&j.status, j.stop),
            format_unix_nanos(j.submit_time)
        ));
    }
    format_list(&rows)
}

async fn job_json(client: &Client, id: &str, all: bool) -> Result<Value, crate::client::ApiError> {
    let base = format!("/v1/job/{}", seg(id));
    let summary: Value = client.get_value(&format!("{base}/summary"), &[]).await?;
    let allocs: Value = client
        .get_value(&format!("{base}/allocations"), &[("all", all.to_string())])
        .await?;
    let latest: Value = client
        .get_value(&format!("{base}/deployment"), &[])
        .await
        .unwrap_or(Value::Null);
    let evals: Value = client
        .get_value(&format!("{base}/evaluations"), &[])
        .await?;
    Ok(json!({
        "Summary": summary,
        "Allocations": allocs,
        "LatestDeployment": latest,
        "Evaluations": evals,
    }))
}

pub(crate) async fn status(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let all_ns = client.config.namespace.as_deref() == Some("*");
    let Some(prefix) = ctx.flags.args.first().map(|s| s.trim().to_string()) else {
        let jobs: Vec<JobListStub> = match client.get("/v1/jobs", &[], None).await {
            Ok((j, _)) => j,
            Err(e) => return fail(ctx, "Error querying jobs", e),
        };
        if jobs.is_empty() {
            ctx.ui.output("No running jobs");
            return 0;
        }
        if ctx.flags.bool("json") || ctx.flags.value("t").is_some() {
            let mut all = vec![];
            for j in &jobs {
                match job_json(&client, &j.id, ctx.flags.bool("all-allocs")).await {
                    Ok(v) => all.push(v),
                    Err(e) => return fail(ctx, "Error querying job", e),
                }
            }
            return formatted(ctx, &all).unwrap_or(0);
        }
        ctx.ui.output(&job_list_table(&jobs, all_ns));
        return 0;
    };
    let id = match job_id_by_prefix(ctx, &client, &prefix).await {
        Ok(id) => id,
        Err(c) => return c,
    };
    show_job(ctx, &client, &id).await
}

/// The single-job view of `job status` (also used by `status <job>`).
pub(crate) async fn show_job(ctx: &mut Ctx<'_>, client: &Client, id: &str) -> i32 {
    let base = format!("/v1/job/{}", seg(id));
    let job: Job = match client.get(&base, &[], None).await {
        Ok((j, _)) => j,
        Err(e) => return fail(ctx, "Error querying job", e),
    };
    if ctx.flags.bool("json") || ctx.flags.value("t").is_some() {
        let v = match job_json(client, id, ctx.flags.bool("all-allocs")).await {
            Ok(v) => v,
            Err(e) => return fail(ctx, "Error querying job", e),
        };
        return formatted(ctx, &vec![v]).unwrap_or(0);
    }
    let len = ctx.id_len();
    let periodic = job.periodic.as_ref().is_some_and(|p| !p.is_null());
    // A dispatched child is not itself parameterized (Nomad's IsParameterized).
    let param = job.is_parameterized();
    let basic = vec![
        format!("ID|{}", job.id),
        format!("Name|{}", job.name),
        format!("Submit Date|{}", format_unix_nanos(job.submit_time)),
        format!("Type|{}", job.job_type),
        format!("Priority|{}", job.priority),
        format!("Datacenters|{}", job.datacenters.join(",")),
        format!("Namespace|{}", job.namespace),
        format!("Node Pool|{}", job.node_pool),
        format!("Status|{}", status_string(&job.status, job.stop)),
        format!("Periodic|{periodic}"),
        format!("Parameterized|{param}"),
    ];
    ctx.ui.output(&format_kv(&basic));
    if ctx.flags.bool("short") {
        return 0;
    }

    // Summary.
    match client
        .get::<JobSummary>(&format!("{base}/summary"), &[], None)
        .await
    {
        Ok((s, _)) => {
            if !periodic && !param {
                let mut rows = vec![
                    "Task Group|Queued|Starting|Running|Failed|Complete|Lost|Unknown".to_string(),
                ];
                for (tg, t) in &s.summary {
                    rows.push(format!(
                        "{tg}|{}|{}|{}|{}|{}|{}|{}",
                        t.queued, t.starting, t.running, t.failed, t.complete, t.lost, t.unknown
                    ));
                }
                ctx.ui.output("\nSummary");
                ctx.ui.output(&format_list(&rows));
            }
            if let Some(ch) = &s.children {
                if periodic || param || ch.pending + ch.running + ch.dead > 0 {
                    ctx.ui.output(if param {
                        "\nParameterized Job Summary"
                    } else {
                        "\nChildren Job Summary"
                    });
                    ctx.ui.output(&format_list(&[
                        "Pending|Running|Dead".to_string(),
                        format!("{}|{}|{}", ch.pending, ch.running, ch.dead),
                    ]));
                }
            }
        }
        Err(e) if not_found(&e) => {}
        Err(e) => return fail(ctx, "Error querying job summary", e),
    }

    if periodic || param {
        let children: Vec<JobListStub> = client
            .get("/v1/jobs", &[("prefix", format!("{}/", job.id))], None)
            .await
            .map(|(j, _)| j)
            .unwrap_or_default();
        let children: Vec<&JobListStub> =
            children.iter().filter(|c| c.parent_id == job.id).collect();
        if children.is_empty() {
            ctx.ui.output(if param {
                "\nNo dispatched instances of parameterized job found"
            } else {
                "\nNo instances of periodic job found"
            });
        } else {
            let mut rows = vec!["ID|Status".to_string()];
            rows.extend(children.iter().map(|c| format!("{}|{}", c.id, c.status)));
            ctx.ui.output(if param {
                "\nDispatched Jobs"
            } else {
                "\nPreviously Launched Jobs"
            });
            ctx.ui.output(&format_list(&rows));
        }
        return 0;
    }

    let all = ctx.flags.bool("all-allocs");
    let allocs: Vec<AllocListStub> = match client
        .get(
            &format!("{base}/allocations"),
            &[("all", all.to_string())],
            None,
        )
        .await
    {
        Ok((a, _)) => a,
        Err(e) => return fail(ctx, "Error querying job allocations", e),
    };
    let evals: Vec<Evaluation> = match client.get(&format!("{base}/evaluations"), &[], None).await {
        Ok((e, _)) => e,
        Err(e) => return fail(ctx, "Error querying job evaluations", e),
    };
    let latest: Option<Deployment> = if job.job_type == caravan_structs::JOB_TYPE_SERVICE {
        match client
            .get::<Option<Deployment>>(&format!("{base}/deployment"), &[], None)
            .await
        {
            Ok((d, _)) => d.filter(|d| !d.id.is_empty()),
            Err(e) if not_found(&e) => None,
            Err(e) => return fail(ctx, "Error querying latest job deployment", e),
        }
    } else {
        None
    };

    let mut latest_failed: Option<&Evaluation> = None;
    let mut blocked = false;
    let mut rows = vec!["ID|Priority|Triggered By|Status|Placement Failures".to_string()];
    for e in &evals {
        let failures = if e.status == "blocked" {
            "N/A - In Progress".to_string()
        } else {
            (!e.failed_tg_allocs.is_empty()).to_string()
        };
        rows.push(format!(
            "{}|{}|{}|{}|{failures}",
            limit(&e.id, len),
            e.priority,
            e.triggered_by,
            e.status
        ));
        if e.status == "blocked" {
            blocked = true;
        }
        if !e.failed_tg_allocs.is_empty()
            && latest_failed.is_none_or(|l| l.create_index < e.create_index)
        {
            latest_failed = Some(e);
        }
    }
    if ctx.flags.bool("verbose") || ctx.flags.bool("evals") {
        ctx.ui.output("\nEvaluations");
        ctx.ui.output(&format_list(&rows));
    }
    if let (true, Some(f)) = (blocked, latest_failed) {
        ctx.ui.output("\nPlacement Failure");
        let n = f.failed_tg_allocs.len();
        for (i, (tg, m)) in f.failed_tg_allocs.iter().enumerate() {
            ctx.ui.output(&format!("Task Group {tg:?}:"));
            ctx.ui.output(&format_alloc_metrics(m, false, "  "));
            if i + 1 != n {
                ctx.ui.output("");
            }
        }
    }
    if let Some(d) = latest {
        let mut block = format_kv(&[
            format!("ID|{}", limit(&d.id, len)),
            format!("Status|{}", d.status),
            format!("Description|{}", d.status_description),
        ]);
        if !d.task_groups.is_empty() {
            block.push_str("\n\nDeployed\n");
            block.push_str(&format_deployment_groups(&d));
        }
        ctx.ui.output("\nLatest Deployment");
        ctx.ui.output(&block);
    }
    ctx.ui.output("\nAllocations");
    ctx.ui.output(&format_alloc_list_stubs(
        &allocs,
        ctx.flags.bool("verbose"),
        len,
    ));
    0
}

async fn resolve_arg(ctx: &mut Ctx<'_>) -> Result<(Client, String), i32> {
    let client = args_and_client(ctx, 1, 1)?;
    let prefix = ctx.flags.args[0].trim().to_string();
    let id = job_id_by_prefix(ctx, &client, &prefix).await?;
    Ok((client, id))
}

pub(crate) async fn inspect(ctx: &mut Ctx<'_>) -> i32 {
    let (client, id) = match resolve_arg(ctx).await {
        Ok(r) => r,
        Err(c) => return c,
    };
    let mut params = vec![];
    if let Some(v) = ctx.flags.value("version") {
        params.push(("version", v.to_string()));
    }
    let (job, path) = if params.is_empty() {
        (
            client
                .get_value(&format!("/v1/job/{}", seg(&id)), &[])
                .await,
            false,
        )
    } else {
        (
            client
                .get_value(&format!("/v1/job/{}/versions", seg(&id)), &[])
                .await,
            true,
        )
    };
    let mut job = match job {
        Ok(j) => j,
        Err(e) => return fail(ctx, "Error inspecting job", e),
    };
    if path {
        let want: u64 = params[0].1.parse().unwrap_or(u64::MAX);
        let found = job
            .get("Versions")
            .and_then(|v| v.as_array())
            .and_then(|vs| {
                vs.iter()
                    .find(|j| j.get("Version").and_then(|v| v.as_u64()) == Some(want))
            })
            .cloned();
        match found {
            Some(j) => job = j,
            None => {
                ctx.ui.error(&format!(
                    "Error inspecting job: version {} of job {id:?} not found",
                    params[0].1
                ));
                return 1;
            }
        }
    }
    if let Some(c) = formatted(ctx, &job) {
        return c;
    }
    ctx.ui
        .output(&crate::format::pretty_json(&json!({ "Job": job })));
    0
}

pub(crate) async fn stop(ctx: &mut Ctx<'_>) -> i32 {
    let (client, id) = match resolve_arg(ctx).await {
        Ok(r) => r,
        Err(c) => return c,
    };
    let params = vec![
        ("purge", ctx.flags.bool("purge").to_string()),
        ("global", ctx.flags.bool("global").to_string()),
    ];
    let resp: JobRegisterResponse = match client
        .delete(&format!("/v1/job/{}", seg(&id)), &params)
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Error deregistering job", e),
    };
    if resp.eval_id.is_empty() {
        return 0;
    }
    if ctx.flags.bool("detach") {
        ctx.ui.output(&resp.eval_id);
        return 0;
    }
    let len = ctx.id_len();
    monitor::monitor(&mut ctx.ui, &client, &resp.eval_id, len).await
}

pub(crate) async fn history(ctx: &mut Ctx<'_>) -> i32 {
    let (client, id) = match resolve_arg(ctx).await {
        Ok(r) => r,
        Err(c) => return c,
    };
    let diffs = ctx.flags.bool("p");
    let v = match client
        .get_value(
            &format!("/v1/job/{}/versions", seg(&id)),
            &[("diffs", diffs.to_string())],
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return fail(ctx, "Error retrieving job versions", e),
    };
    let versions: Vec<Job> = v
        .get("Versions")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    if let Some(want) = ctx.flags.value("version") {
        let Some(j) = versions.iter().find(|j| j.version.to_string() == want) else {
            ctx.ui.error(&format!("Job version {want} not found"));
            return 1;
        };
        if let Some(c) = formatted(ctx, j) {
            return c;
        }
        ctx.ui.output(&version_block(j));
        return 0;
    }
    if let Some(c) = formatted(ctx, &versions) {
        return c;
    }
    let blocks: Vec<String> = versions.iter().map(version_block).collect();
    ctx.ui.output(&blocks.join("\n\n"));
    0
}

fn version_block(j: &Job) -> String {
    format_kv(&[
        format!("Version|{}", j.version),
        format!("Stable|{}", j.stable),
        format!("Submit Date|{}", format_unix_nanos(j.submit_time)),
    ])
}

pub(crate) async fn allocs(ctx: &mut Ctx<'_>) -> i32 {
    let (client, id) = match resolve_arg(ctx).await {
        Ok(r) => r,
        Err(c) => return c,
    };
    let all = ctx.flags.bool("all");
    let allocs: Vec<AllocListStub> = match client
        .get(
            &format!("/v1/job/{}/allocations", seg(&id)),
            &[("all", all.to_string())],
            None,
        )
        .await
    {
        Ok((a, _)) => a,
        Err(e) => return fail(ctx, "Error retrieving allocations", e),
    };
    if let Some(c) = formatted(ctx, &allocs) {
        return c;
    }
    let len = ctx.id_len();
    ctx.ui.output(&format_alloc_list_stubs(
        &allocs,
        ctx.flags.bool("verbose"),
        len,
    ));
    0
}

pub(crate) async fn deployments(ctx: &mut Ctx<'_>) -> i32 {
    let (client, id) = match resolve_arg(ctx).await {
        Ok(r) => r,
        Err(c) => return c,
    };
    let len = ctx.id_len();
    if ctx.flags.bool("latest") {
        let d: Option<Deployment> = match client
            .get(&format!("/v1/job/{}/deployment", seg(&id)), &[], None)
            .await
        {
            Ok((d, _)) => d,
            Err(e) => return fail(ctx, "Error retrieving deployments", e),
        };
        if let Some(c) = formatted(ctx, &d) {
            return c;
        }
        match d {
            Some(d) => ctx.ui.output(&format_deployment(&d, len)),
            None => ctx.ui.output(&format!("Job {id:?} has no deployment")),
        }
        return 0;
    }
    let all = ctx.flags.bool("all");
    let ds: Vec<Deployment> = match client
        .get(
            &format!("/v1/job/{}/deployments", seg(&id)),
            &[("all", all.to_string())],
            None,
        )
        .await
    {
        Ok((d, _)) => d,
        Err(e) => return fail(ctx, "Error retrieving deployments", e),
    };
    if let Some(c) = formatted(ctx, &ds) {
        return c;
    }
    ctx.ui.output(&super::deployment::deployment_list(&ds, len));
    0
}

pub(crate) async fn eval(ctx: &mut Ctx<'_>) -> i32 {
    let (client, id) = match resolve_arg(ctx).await {
        Ok(r) => r,
        Err(c) => return c,
    };
    let body = json!({
        "JobID": id,
        "EvalOptions": { "ForceReschedule": ctx.flags.bool("force-reschedule") },
    });
    let resp: Value = match client
        .put(&format!("/v1/job/{}/evaluate", seg(&id)), &body, &[])
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Error evaluating job", e),
    };
    let eval_id = eval_id_of(&resp);
    let len = ctx.id_len();
    if ctx.flags.bool("detach") {
        ctx.ui
            .output(&format!("Created eval ID: {:?} ", limit(&eval_id, len)));
        return 0;
    }
    monitor::monitor(&mut ctx.ui, &client, &eval_id, len).await
}
