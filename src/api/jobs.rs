//! `/v1/jobs`, `/v1/job/:id/...`, `/v1/jobs/parse` and `/v1/validate/job`.

use super::query::{blocking, QueryOptions};
use super::{decode_body, json_with_index, ApiError, ApiResult, AppState};
use crate::server::acl::Resolved;
use crate::state::{summary, Table};
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::{get, put};
use axum::Router;
use caravan_acl::capability as cap;
use caravan_structs::*;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", get(list).put(register).post(register))
        .route("/v1/jobs/parse", put(parse).post(parse))
        .route("/v1/validate/job", put(validate).post(validate))
        .route(
            "/v1/job/:id",
            get(read)
                .delete(deregister)
                .put(register_at)
                .post(register_at),
        )
        .route("/v1/job/:id/versions", get(versions))
        .route("/v1/job/:id/summary", get(job_summary))
        .route("/v1/job/:id/allocations", get(job_allocs))
        .route("/v1/job/:id/evaluations", get(job_evals))
        .route("/v1/job/:id/deployments", get(job_deployments))
        .route("/v1/job/:id/deployment", get(job_latest_deployment))
        .route("/v1/job/:id/plan", put(plan).post(plan))
        .route("/v1/job/:id/evaluate", put(evaluate).post(evaluate))
}

type Params = Query<HashMap<String, String>>;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RegisterRequest {
    job: Option<Job>,
    enforce_index: bool,
    job_modify_index: u64,
    /// The write request's namespace (Nomad's `WriteRequest.Namespace`).
    namespace: String,
}

/// The namespace a submitted job goes into, as Nomad's HTTP layer picks it: `?namespace=`
/// (the CLI's `-namespace`), then the request's `Namespace`, then the job's own. With ACLs
/// on, the token must be allowed to submit jobs there (the route's rule saw only the query).
fn place_in_namespace(
    job: &mut Job,
    params: &HashMap<String, String>,
    request_ns: &str,
    token: Option<&Resolved>,
) -> Result<(), ApiError> {
    if let Some(ns) = params.get("namespace").filter(|s| !s.is_empty()) {
        job.namespace = ns.clone();
    } else if !request_ns.is_empty() {
        job.namespace = request_ns.to_string();
    }
    let allowed = |r: &Resolved| {
        r.acl
            .allow_namespace_operation(&job.namespace, cap::SUBMIT_JOB)
    };
    if token.is_some_and(|r| !allowed(r)) {
        return Err(ApiError::Forbidden("Permission denied".into()));
    }
    Ok(())
}

pub(super) fn job_stub(j: &Job, t: &crate::state::Tables) -> serde_json::Value {
    let allocs = t.allocs_by_job(&j.namespace, &j.id);
    let evals = t.evals_by_job(&j.namespace, &j.id);
    let mut job_summary = summary::job_summary(j, &allocs, &evals);
    job_summary.children = t.children_summary(&j.namespace, &j.id);
    json!({
        "ID": j.id, "ParentID": j.parent_id, "Name": j.name, "Namespace": j.namespace,
        "Datacenters": j.datacenters, "NodePool": j.node_pool, "Multiregion": null,
        "Type": j.job_type, "Priority": j.priority, "Periodic": j.periodic.is_some(),
        "ParameterizedJob": j.is_parameterized(), "Stop": j.stop, "Status": j.status,
        "StatusDescription": j.status_description,
        "JobSummary": job_summary,
        "CreateIndex": j.create_index, "ModifyIndex": j.modify_index,
        "JobModifyIndex": j.job_modify_index, "SubmitTime": j.submit_time, "Meta": j.meta,
    })
}

async fn list(
    State(s): State<AppState>,
    Query(p): Params,
    r: Option<Extension<Resolved>>,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Jobs, Table::Allocs], |t| {
        Ok(t.jobs
            .values()
            .filter(|j| q.all_namespaces() || j.namespace == q.namespace)
            .filter(|j| super::acl_rules::may(&r, &j.namespace, caravan_acl::capability::LIST_JOBS))
            .filter(|j| j.id.starts_with(&q.prefix))
            .map(|j| job_stub(j, t))
            .collect::<Vec<_>>())
    })
    .await
}

async fn register(
    State(s): State<AppState>,
    Query(p): Params,
    r: Option<Extension<Resolved>>,
    body: Bytes,
) -> ApiResult {
    do_register(&s, None, &p, r.as_deref(), &body)
}

async fn register_at(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
    r: Option<Extension<Resolved>>,
    body: Bytes,
) -> ApiResult {
    do_register(&s, Some(&id), &p, r.as_deref(), &body)
}

fn do_register(
    s: &AppState,
    path_id: Option<&str>,
    params: &HashMap<String, String>,
    token: Option<&Resolved>,
    body: &[u8],
) -> ApiResult {
    let req: RegisterRequest = decode_body(body)?;
    let mut job = req
        .job
        .ok_or_else(|| ApiError::BadRequest("Job must be specified".into()))?;
    place_in_namespace(&mut job, params, &req.namespace, token)?;
    if let Some(id) = path_id {
        if job.id != id {
            return Err(ApiError::BadRequest("Job ID does not match name".into()));
        }
    }
    let enforce = req.enforce_index.then_some(req.job_modify_index);
    let resp = s.server.job_register(job, enforce)?;
    let index = resp.index;
    Ok(json_with_index(&resp, index))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ParseRequest {
    #[serde(rename = "JobHCL")]
    job_hcl: String,
    canonicalize: bool,
    variables: String,
}

async fn parse(body: Bytes) -> ApiResult {
    let req: ParseRequest = decode_body(&body)?;
    if req.job_hcl.trim().is_empty() {
        return Err(ApiError::BadRequest("Job HCL must be specified".into()));
    }
    let mut vars = caravan_jobspec::VarInputs::default();
    if !req.variables.trim().is_empty() {
        vars.var_files
            .push(("variables".into(), req.variables.clone()));
    }
    let mut job = caravan_jobspec::parse(&req.job_hcl, "input.hcl", &vars)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if req.canonicalize {
        job.canonicalize();
    }
    Ok(axum::Json(job).into_response_value())
}

trait IntoResponseValue {
    fn into_response_value(self) -> axum::response::Response;
}
impl<T: serde::Serialize> IntoResponseValue for axum::Json<T> {
    fn into_response_value(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

async fn validate(body: Bytes) -> ApiResult {
    let req: RegisterRequest = decode_body(&body)?;
    let mut job = req
        .job
        .ok_or_else(|| ApiError::BadRequest("Job must be specified".into()))?;
    job.canonicalize();
    let errors = job.validate().err().unwrap_or_default();
    Ok(axum::Json(json!({
        "DriverConfigValidated": true,
        "ValidationErrors": errors,
        "Error": if errors.is_empty() { String::new() } else { crate::server::endpoints::format_multi(&errors) },
        "Warnings": "",
    }))
    .into_response_value())
}

fn find_job(
    t: &crate::state::Tables,
    q: &QueryOptions,
    id: &str,
) -> Result<std::sync::Arc<Job>, ApiError> {
    t.job(&q.namespace, id)
        .ok_or_else(|| ApiError::NotFound("job not found".into()))
}

async fn read(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Jobs], |t| find_job(t, &q, &id)).await
}

async fn deregister(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    let purge = q.flag("purge");
    let (eval_id, index) = s.server.job_deregister(&q.namespace, &id, purge)?;
    Ok(json_with_index(
        &json!({"EvalID": eval_id, "EvalCreateIndex": index, "JobModifyIndex": index, "Index": index}),
        index,
    ))
}

async fn versions(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Jobs], |t| {
        find_job(t, &q, &id)?;
        Ok(json!({"Versions": t.job_versions(&q.namespace, &id), "Diffs": null}))
    })
    .await
}

async fn job_summary(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Jobs, Table::Allocs, Table::Evals], |t| {
        let j = find_job(t, &q, &id)?;
        let mut js = summary::job_summary(
            &j,
            &t.allocs_by_job(&q.namespace, &id),
            &t.evals_by_job(&q.namespace, &id),
        );
        js.children = t.children_summary(&q.namespace, &id);
        Ok(js)
    })
    .await
}

async fn job_allocs(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    let all = q.flag("all");
    blocking(&s, &q, &[Table::Allocs], |t| {
        let job = t.job(&q.namespace, &id);
        let mut v: Vec<_> = t
            .allocs_by_job(&q.namespace, &id)
            .iter()
            .filter(|a| {
                // Without ?all, only allocations of the current job incarnation.
                all || job
                    .as_ref()
                    .map(|j| a.create_index >= j.create_index)
                    .unwrap_or(true)
            })
            .map(|a| a.stub())
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.create_index));
        Ok(v)
    })
    .await
}

async fn job_evals(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Evals], |t| {
        let mut v = t.evals_by_job(&q.namespace, &id);
        v.sort_by_key(|e| std::cmp::Reverse(e.create_index));
        Ok(v)
    })
    .await
}

async fn job_deployments(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Deployments], |t| {
        Ok(t.deployments_by_job(&q.namespace, &id))
    })
    .await
}

async fn job_latest_deployment(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Deployments], |t| {
        Ok(t.latest_deployment(&q.namespace, &id))
    })
    .await
}

async fn plan(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
    r: Option<Extension<Resolved>>,
    body: Bytes,
) -> ApiResult {
    let req: RegisterRequest = decode_body(&body)?;
    let mut job = req
        .job
        .ok_or_else(|| ApiError::BadRequest("Job must be specified".into()))?;
    place_in_namespace(&mut job, &p, &req.namespace, r.as_deref())?;
    if job.id != id {
        return Err(ApiError::BadRequest("Job ID does not match".into()));
    }
    let out = s.server.job_plan(job)?;
    Ok(axum::Json(out).into_response_value())
}

async fn evaluate(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    let (eval_id, index) = s.server.job_evaluate(&q.namespace, &id)?;
    Ok(json_with_index(
        &json!({"EvalID": eval_id, "EvalCreateIndex": index, "JobModifyIndex": index, "Index": index}),
        index,
    ))
}
