//! Commands that start from a job file: `job init`, `job run`, `job plan`, `job validate`.
//! The file is parsed locally (so a syntax error costs no request), then sent to the server.

use super::{client_or_err, fail, formatted, want_args};
use crate::api_types::{
    FieldDiff, JobDiff, JobPlanResponse, JobRegisterResponse, JobValidateResponse, ObjectDiff,
    TaskDiff, TaskGroupDiff,
};
use crate::client::{seg, ApiError, Client};
use crate::format::{failed_placement_heading, format_alloc_metrics, pretty_json};
use crate::jobspec_api::{self, VarInputs};
use crate::monitor;
use crate::Ctx;
use caravan_structs::Job;
use serde_json::{json, Value};

const DEFAULT_INIT_NAME: &str = "example.nomad.hcl";

pub(crate) fn init(ctx: &mut Ctx<'_>) -> i32 {
    if let Err(c) = want_args(ctx, 0, 1) {
        return c;
    }
    let name = ctx
        .flags
        .args
        .first()
        .cloned()
        .unwrap_or_else(|| DEFAULT_INIT_NAME.to_string());
    match std::fs::metadata(&name) {
        Ok(_) => {
            ctx.ui.error(&format!("Job '{name}' already exists"));
            return 1;
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return fail(ctx, &format!("Failed to stat '{name}'"), e);
        }
        Err(_) => {}
    }
    if let Err(e) = std::fs::write(&name, jobspec_api::init_example()) {
        return fail(ctx, "Failed to write job file", e);
    }
    ctx.ui
        .output(&format!("Example job file written to {name}"));
    0
}

/// Reads and parses the job file named by the single argument (`-` for stdin).
fn load_job(ctx: &mut Ctx<'_>) -> Result<Job, String> {
    let path = ctx.flags.args[0].clone();
    let src = if path == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("Error reading job from stdin: {e}"))?
    } else {
        std::fs::read_to_string(&path).map_err(|e| {
            format!("Error getting job struct: error reading job file {path:?}: {e}")
        })?
    };
    let mut inputs = VarInputs::default();
    for v in ctx.flags.values("var") {
        let Some((k, val)) = v.split_once('=') else {
            return Err(format!(
                "Error getting job struct: invalid -var {v:?}: use -var name=value"
            ));
        };
        inputs.vars.insert(k.trim().to_string(), val.to_string());
    }
    for f in ctx.flags.values("var-file") {
        let contents = std::fs::read_to_string(f)
            .map_err(|e| format!("Error getting job struct: reading var file {f:?}: {e}"))?;
        inputs.var_files.push((f.clone(), contents));
    }
    inputs.env = ctx.env.clone();
    // file() and friends read relative to the job file, as Nomad's CLI does.
    inputs.fs_base_dir = Some(if path == "-" {
        std::path::PathBuf::from(".")
    } else {
        std::path::Path::new(&path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| std::path::PathBuf::from("."))
    });
    let filename = if path == "-" {
        "<stdin>"
    } else {
        path.as_str()
    };
    jobspec_api::parse(&src, filename, &inputs)
        .map_err(|e| format!("Error parsing job file from {filename}:\n{e}"))
}

/// The single argument, read and parsed as a job file; errors are printed (exit code 1).
fn job_arg(ctx: &mut Ctx<'_>) -> Result<Job, i32> {
    want_args(ctx, 1, 1)?;
    load_job(ctx).map_err(|e| {
        ctx.ui.error(&e);
        1
    })
}

/// The client, aimed at the job's region and namespace. A job file that names no namespace
/// (it reads as `default`) goes to `-namespace`/`NOMAD_NAMESPACE` when one is given, as
/// Nomad's does.
fn job_client(ctx: &mut Ctx<'_>, job: &Job) -> Result<Client, i32> {
    let mut client = client_or_err(ctx)?;
    client.set_region(&job.region);
    if job.namespace != caravan_structs::DEFAULT_NAMESPACE || client.config.namespace.is_none() {
        client.set_namespace(&job.namespace);
    }
    Ok(client)
}

/// The server's warnings about the job, when it has any.
fn output_warnings(ctx: &mut Ctx<'_>, warnings: &str) {
    if !warnings.is_empty() {
        ctx.ui.output(&format!("Job Warnings:\n{warnings}\n"));
    }
}

pub(crate) async fn run(ctx: &mut Ctx<'_>) -> i32 {
    let job = match job_arg(ctx) {
        Ok(j) => j,
        Err(c) => return c,
    };
    if ctx.flags.bool("output") {
        ctx.ui.output(&pretty_json(&json!({ "Job": job })));
        return 0;
    }
    let check_index = match ctx.flags.value("check-index") {
        None => None,
        Some(s) => match s.parse::<u64>() {
            Ok(n) => Some(n),
            Err(e) => {
                ctx.ui
                    .error(&format!("Error parsing check-index value {s:?}: {e}"));
                return 1;
            }
        },
    };
    let client = match job_client(ctx, &job) {
        Ok(c) => c,
        Err(c) => return c,
    };

    let mut body = json!({ "Job": job });
    if let Some(n) = check_index {
        body["EnforceIndex"] = Value::Bool(true);
        body["JobModifyIndex"] = Value::from(n);
    }
    if ctx.flags.bool("policy-override") {
        body["PolicyOverride"] = Value::Bool(true);
    }
    if ctx.flags.bool("preserve-counts") {
        body["PreserveCounts"] = Value::Bool(true);
    }
    if let Some(p) = ctx
        .flags
        .value("eval-priority")
        .and_then(|p| p.parse::<i64>().ok())
    {
        body["EvalPriority"] = Value::from(p);
    }
    let resp: JobRegisterResponse = match client.put("/v1/jobs", &body, &[]).await {
        Ok(r) => r,
        Err(ApiError::Status { body, .. }) if body.contains("Enforcing job modify index") => {
            ctx.ui.error(&body);
            ctx.ui.error("Job not updated");
            return 1;
        }
        Err(e) => return fail(ctx, "Error submitting job", e),
    };
    output_warnings(ctx, &resp.warnings);
    let periodic = job.periodic.as_ref().is_some_and(|p| !p.is_null());
    let param = job.parameterized_job.as_ref().is_some_and(|p| !p.is_null());
    if ctx.flags.bool("detach") || periodic || param {
        ctx.ui.output("Job registration successful");
        if !param && !periodic {
            ctx.ui.output(&format!("Evaluation ID: {}", resp.eval_id));
        }
        return 0;
    }
    if resp.eval_id.is_empty() {
        ctx.ui.output("Job registration successful");
        return 0;
    }
    let len = ctx.id_len();
    monitor::monitor(&mut ctx.ui, &client, &resp.eval_id, len).await
}

pub(crate) async fn validate(ctx: &mut Ctx<'_>) -> i32 {
    let job = match job_arg(ctx) {
        Ok(j) => j,
        Err(c) => return c,
    };
    let client = match job_client(ctx, &job) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let resp: Result<JobValidateResponse, ApiError> = client
        .put("/v1/validate/job", &json!({ "Job": job }), &[])
        .await;
    let resp = match resp {
        Ok(r) => r,
        // No agent to ask: validate locally, as Nomad does.
        Err(ApiError::Transport(_)) => JobValidateResponse {
            validation_errors: job.validate().err().unwrap_or_default(),
            ..Default::default()
        },
        Err(e) => return fail(ctx, "Error validating job", e),
    };
    if !resp.validation_errors.is_empty() || !resp.error.is_empty() {
        let mut msg = String::from("Job validation errors:");
        for e in &resp.validation_errors {
            msg.push_str(&format!("\n  * {e}"));
        }
        if resp.validation_errors.is_empty() {
            msg.push_str(&format!("\n  * {}", resp.error));
        }
        ctx.ui.error(&msg);
        return 1;
    }
    output_warnings(ctx, &resp.warnings);
    ctx.ui.output("Job validation successful");
    0
}

pub(crate) async fn plan(ctx: &mut Ctx<'_>) -> i32 {
    let job = match job_arg(ctx) {
        Ok(j) => j,
        Err(_) => return 255,
    };
    let path = ctx.flags.args[0].clone();
    let client = match job_client(ctx, &job) {
        Ok(c) => c,
        Err(_) => return 255,
    };
    let mut body = json!({ "Job": job, "Diff": true });
    if ctx.flags.bool("policy-override") {
        body["PolicyOverride"] = Value::Bool(true);
    }
    let resp: JobPlanResponse = match client
        .put(&format!("/v1/job/{}/plan", seg(&job.id)), &body, &[])
        .await
    {
        Ok(r) => r,
        Err(e) => {
            ctx.ui.error(&format!("Error during plan: {e}"));
            return 255;
        }
    };
    if let Some(code) = formatted(ctx, &resp) {
        return if code == 0 {
            plan_exit_code(&resp)
        } else {
            255
        };
    }
    let show_diff = if ctx.flags.is_set("diff") {
        ctx.flags.bool("diff")
    } else {
        true
    };
    let verbose = ctx.flags.bool("verbose");
    if show_diff {
        if let Some(d) = &resp.diff {
            ctx.ui
                .output(&format!("{}\n", format_job_diff(d, verbose).trim()));
        }
    }
    ctx.ui.output("Scheduler dry-run:");
    ctx.ui.output(&format_dry_run(&resp, &job));
    ctx.ui.output("");
    output_warnings(ctx, &resp.warnings);
    let mut run_args = String::new();
    for v in ctx.flags.values("var") {
        run_args.push_str(&format!("-var={v:?} "));
    }
    for v in ctx.flags.values("var-file") {
        run_args.push_str(&format!("-var-file={v:?} "));
    }
    if let Some(ns) = ctx.flags.value("namespace") {
        run_args.push_str(&format!("-namespace={ns:?} "));
    }
    ctx.ui.output(&format!(
        "Job Modify Index: {idx}\nTo submit the job with version verification run:\n\ncaravan job run -check-index {idx} {run_args}{path}\n\nWhen running the job with the check-index flag, the job will only be run if the\njob modify index given matches the server-side version. If the index has\nchanged, another user has modified the job and the plan's results are\npotentially invalid.",
        idx = resp.job_modify_index
    ));
    plan_exit_code(&resp)
}

/// 0 when nothing would change, 1 when allocations would be created or destroyed.
pub(crate) fn plan_exit_code(resp: &JobPlanResponse) -> i32 {
    if resp.diff.as_ref().map(|d| d.diff_type.as_str()) == Some("None") {
        return 0;
    }
    let changes = resp.annotations.as_ref().is_some_and(|a| {
        a.desired_tg_updates
            .values()
            .any(|d| d.stop + d.place + d.migrate + d.destructive_update + d.canary > 0)
    });
    i32::from(changes)
}

fn format_dry_run(resp: &JobPlanResponse, job: &Job) -> String {
    let rolling = resp
        .created_evals
        .iter()
        .find(|e| e.triggered_by == "rolling-update");
    let mut out = String::new();
    if resp.failed_tg_allocs.is_empty() {
        out.push_str("- All tasks successfully allocated.\n");
    } else {
        if job.job_type == caravan_structs::JOB_TYPE_SYSTEM {
            out.push_str("- WARNING: Failed to place allocations on all nodes.\n");
        } else {
            out.push_str("- WARNING: Failed to place all allocations.\n");
        }
        for (tg, m) in &resp.failed_tg_allocs {
            out.push_str(&format!("  {}\n", failed_placement_heading(tg, m)));
            out.push_str(&format!("{}\n\n", format_alloc_metrics(m, false, "    ")));
        }
        if rolling.is_none() {
            out.pop();
        }
    }
    if let Some(r) = rolling {
        out.push_str(&format!(
            "- Rolling update, next evaluation will be in {}.\n",
            caravan_structs::time::format_duration(r.wait)
        ));
    }
    if let Some(next) = resp.next_periodic_launch.as_deref() {
        let n = crate::timefmt::parse_rfc3339(next).unwrap_or(0);
        if n > 1_000_000_000 {
            out.push_str(&format!(
                "- If submitted now, next periodic launch would be at {}.\n",
                crate::timefmt::format_unix_nanos(n)
            ));
        }
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

fn marker(t: &str) -> (&'static str, usize) {
    match t {
        "Added" => ("+ ", 2),
        "Deleted" => ("- ", 2),
        "Edited" => ("+/- ", 4),
        _ => ("", 0),
    }
}

fn longest(fields: &[FieldDiff], objects: &[ObjectDiff]) -> (usize, usize) {
    let mut lf = 0;
    let mut lm = 0;
    for f in fields {
        lf = lf.max(f.name.len());
        lm = lm.max(marker(&f.diff_type).1);
    }
    for o in objects {
        lm = lm.max(marker(&o.diff_type).1);
    }
    (lf, lm)
}

/// Nomad's annotated job diff (`+/- Job: "example"`, `+ Task Group: "cache" (1 create)`).
pub(crate) fn format_job_diff(job: &JobDiff, verbose: bool) -> String {
    let (m, _) = marker(&job.diff_type);
    let mut out = format!("{m}Job: {:?}\n", job.id);
    let (lf, mut lm) = longest(&job.fields, &job.objects);
    for tg in &job.task_groups {
        lm = lm.max(marker(&tg.diff_type).1);
    }
    if job.diff_type == "Edited" || verbose {
        let fo = aligned(&job.fields, &job.objects, 0, lf, lm);
        if !fo.is_empty() {
            out.push_str(&fo);
            out.push('\n');
        }
    }
    for tg in &job.task_groups {
        let pre = lm - marker(&tg.diff_type).1;
        out.push_str(&format!("{}\n", format_tg_diff(tg, pre, verbose)));
    }
    out
}

fn format_tg_diff(tg: &TaskGroupDiff, tg_prefix: usize, verbose: bool) -> String {
    let (m, _) = marker(&tg.diff_type);
    let mut out = format!("{m}{}Task Group: {:?}", " ".repeat(tg_prefix), tg.name);
    if tg.updates.is_empty() {
        out.push('\n');
    } else {
        let ups: Vec<String> = tg.updates.iter().map(|(k, v)| format!("{v} {k}")).collect();
        out.push_str(&format!(" ({})\n", ups.join(", ")));
    }
    let (lf, mut lm) = longest(&tg.fields, &tg.objects);
    for t in &tg.tasks {
        lm = lm.max(marker(&t.diff_type).1);
    }
    let sub = tg_prefix + 2;
    if tg.diff_type == "Edited" || verbose {
        let fo = aligned(&tg.fields, &tg.objects, sub, lf, lm);
        if !fo.is_empty() {
            out.push_str(&fo);
            out.push('\n');
        }
    }
    for t in &tg.tasks {
        let pre = lm - marker(&t.diff_type).1;
        out.push_str(&format!("{}\n", format_task_diff(t, sub, pre, verbose)));
    }
    out
}

fn format_task_diff(t: &TaskDiff, start: usize, task_prefix: usize, verbose: bool) -> String {
    let (m, _) = marker(&t.diff_type);
    let mut out = format!(
        "{}{m}{}Task: {:?}",
        " ".repeat(start),
        " ".repeat(task_prefix),
        t.name
    );
    if !t.annotations.is_empty() {
        out.push_str(&format!(" ({})", t.annotations.join(", ")));
    }
    if t.diff_type == "None" || ((t.diff_type == "Deleted" || t.diff_type == "Added") && !verbose) {
        return out;
    }
    out.push('\n');
    let (lf, lm) = longest(&t.fields, &t.objects);
    out.push_str(&aligned(&t.fields, &t.objects, start + 2, lf, lm));
    out
}

fn format_object_diff(o: &ObjectDiff, start: usize, key_prefix: usize) -> String {
    let (m, ml) = marker(&o.diff_type);
    let mut out = format!(
        "{}{m}{}{} {{\n",
        " ".repeat(start),
        " ".repeat(key_prefix),
        o.name
    );
    let (lf, lm) = longest(&o.fields, &o.objects);
    out.push_str(&aligned(
        &o.fields,
        &o.objects,
        start + key_prefix + 2,
        lf,
        lm,
    ));
    format!("{out}\n{}}}", " ".repeat(start + ml + key_prefix))
}

fn format_field_diff(
    f: &FieldDiff,
    start: usize,
    key_prefix: usize,
    value_prefix: usize,
) -> String {
    let (m, _) = marker(&f.diff_type);
    let mut out = format!(
        "{}{m}{}{}: {}",
        " ".repeat(start),
        " ".repeat(key_prefix),
        f.name,
        " ".repeat(value_prefix)
    );
    match f.diff_type.as_str() {
        "Added" => out.push_str(&format!("{:?}", f.new)),
        "Deleted" => out.push_str(&format!("{:?}", f.old)),
        "Edited" => out.push_str(&format!("{:?} => {:?}", f.old, f.new)),
        _ => out.push_str(&format!("{:?}", f.new)),
    }
    if !f.annotations.is_empty() {
        out.push_str(&format!(" ({})", f.annotations.join(", ")));
    }
    out
}

fn aligned(
    fields: &[FieldDiff],
    objects: &[ObjectDiff],
    start: usize,
    lf: usize,
    lm: usize,
) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        let kp = lm - marker(&f.diff_type).1;
        let vp = lf - f.name.len();
        out.push_str(&format_field_diff(f, start, kp, vp));
        if i + 1 != fields.len() || !objects.is_empty() {
            out.push('\n');
        }
    }
    for (i, o) in objects.iter().enumerate() {
        let kp = lm - marker(&o.diff_type).1;
        out.push_str(&format_object_diff(o, start, kp));
        if i + 1 != objects.len() {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn new_job_diff_reads_like_nomad() {
        let mut updates = BTreeMap::new();
        updates.insert("create".to_string(), 1);
        let d = JobDiff {
            diff_type: "Added".into(),
            id: "example".into(),
            task_groups: vec![TaskGroupDiff {
                diff_type: "Added".into(),
                name: "cache".into(),
                updates,
                tasks: vec![TaskDiff {
                    diff_type: "Added".into(),
                    name: "redis".into(),
                    annotations: vec!["forces create".into()],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = format_job_diff(&d, false);
        assert_eq!(
            out.trim(),
            "+ Job: \"example\"\n+ Task Group: \"cache\" (1 create)\n  + Task: \"redis\" (forces create)"
        );
    }

    #[test]
    fn edited_fields_are_aligned() {
        let d = JobDiff {
            diff_type: "Edited".into(),
            id: "example".into(),
            fields: vec![
                FieldDiff {
                    diff_type: "Edited".into(),
                    name: "Priority".into(),
                    old: "50".into(),
                    new: "60".into(),
                    annotations: vec![],
                },
                FieldDiff {
                    diff_type: "Added".into(),
                    name: "Meta[a]".into(),
                    old: String::new(),
                    new: "b".into(),
                    annotations: vec![],
                },
            ],
            ..Default::default()
        };
        let out = format_job_diff(&d, false);
        assert_eq!(
            out,
            "+/- Job: \"example\"\n+/- Priority: \"50\" => \"60\"\n+   Meta[a]:  \"b\"\n"
        );
    }

    #[test]
    fn plan_exit_codes() {
        let mut r = JobPlanResponse {
            diff: Some(JobDiff {
                diff_type: "None".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(plan_exit_code(&r), 0);
        r.diff = Some(JobDiff {
            diff_type: "Added".into(),
            ..Default::default()
        });
        let mut ann = caravan_structs::PlanAnnotations::default();
        ann.desired_tg_updates.insert(
            "cache".into(),
            caravan_structs::DesiredUpdates {
                place: 1,
                ..Default::default()
            },
        );
        r.annotations = Some(ann);
        assert_eq!(plan_exit_code(&r), 1);
    }
}
