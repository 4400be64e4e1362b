//! Following an evaluation (and then its deployment) to the end, printing what changes the
//! way Nomad's `job run` monitor does. Exit codes: 0 done, 1 error or failed deployment,
//! 2 placement failures.

use crate::client::{seg, Blocking, Client};
use crate::format::{failed_placement_heading, format_alloc_metrics, format_deployment, limit};
use crate::timefmt::{format_unix_nanos, now_nanos};
use crate::Ui;
use caravan_structs::{AllocListStub, Deployment, Evaluation};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// A blocking query that returns once the index passes `index`, or after [`WAIT`].
fn blocking_from(index: u64) -> Option<Blocking> {
    Some(Blocking {
        index,
        wait: Some(WAIT),
    })
}

fn now() -> String {
    format_unix_nanos(now_nanos())
}

fn info(ui: &mut Ui, msg: &str) {
    ui.output(&format!("==> {msg}"));
}

fn out(ui: &mut Ui, msg: &str) {
    ui.output(&format!("    {msg}"));
}

#[derive(Default)]
struct EvalState {
    job: String,
    node: String,
    deployment: String,
    status: String,
    /// Allocation ID → client status.
    allocs: BTreeMap<String, String>,
}

/// Follows evaluation `eval_id` (and the evaluations it chains to), then its deployment.
pub async fn monitor(ui: &mut Ui<'_>, client: &Client, eval_id: &str, len: usize) -> i32 {
    let mut eval_id = eval_id.to_string();
    let mut sched_failure = false;
    let mut deployment: String;
    'chain: loop {
        info(
            ui,
            &format!(
                "{}: Monitoring evaluation {:?}",
                now(),
                limit(&eval_id, len)
            ),
        );
        let mut state = EvalState::default();
        let mut index = 0u64;
        loop {
            let path = format!("/v1/evaluation/{}", seg(&eval_id));
            let (eval, idx): (Evaluation, u64) =
                match client.get(&path, &[], blocking_from(index)).await {
                    Ok(r) => r,
                    Err(e) => {
                        info(ui, &format!("No evaluation with id {eval_id:?} found: {e}"));
                        return 1;
                    }
                };
            let allocs: Vec<AllocListStub> =
                match client.get(&format!("{path}/allocations"), &[], None).await {
                    Ok((a, _)) => a,
                    Err(e) => {
                        info(ui, &format!("{}: Error reading allocations: {e}", now()));
                        return 1;
                    }
                };
            update(ui, &mut state, &eval, &allocs, len);
            if eval.terminal() {
                if eval.failed_tg_allocs.is_empty() {
                    info(
                        ui,
                        &format!(
                            "{}: Evaluation {:?} finished with status {:?}",
                            now(),
                            limit(&eval.id, len),
                            eval.status
                        ),
                    );
                } else {
                    sched_failure = true;
                    info(
                        ui,
                        &format!(
                            "{}: Evaluation {:?} finished with status {:?} but failed to place all allocations:",
                            now(),
                            limit(&eval.id, len),
                            eval.status
                        ),
                    );
                    for (tg, m) in &eval.failed_tg_allocs {
                        out(
                            ui,
                            &format!("{}: {}", now(), failed_placement_heading(tg, m)),
                        );
                        for line in format_alloc_metrics(m, false, "  ").lines() {
                            out(ui, line);
                        }
                    }
                    if !eval.blocked_eval.is_empty() {
                        out(
                            ui,
                            &format!(
                                "{}: Evaluation {:?} waiting for additional capacity to place remainder",
                                now(),
                                limit(&eval.blocked_eval, len)
                            ),
                        );
                    }
                }
                deployment = state.deployment.clone();
                if deployment.is_empty() && eval.eval_type == caravan_structs::JOB_TYPE_SERVICE {
                    // Fall back on the deployment the placed allocations belong to.
                    if let Ok((full, _)) = client
                        .get::<Vec<serde_json::Value>>(&format!("{path}/allocations"), &[], None)
                        .await
                    {
                        if let Some(d) = full
                            .iter()
                            .filter_map(|a| a.get("DeploymentID").and_then(|d| d.as_str()))
                            .find(|d| !d.is_empty())
                        {
                            deployment = d.to_string();
                        }
                    }
                }
                if !eval.next_eval.is_empty() {
                    if eval.wait > 0 {
                        info(
                            ui,
                            &format!(
                                "{}: Monitoring next evaluation {:?} in {}",
                                now(),
                                limit(&eval.next_eval, len),
                                caravan_structs::time::format_duration(eval.wait)
                            ),
                        );
                        tokio::time::sleep(caravan_structs::time::nanos(eval.wait)).await;
                    }
                    eval_id = eval.next_eval.clone();
                    continue 'chain;
                }
                break 'chain;
            }
            if idx <= index {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            index = idx.max(index);
        }
    }

    if !deployment.is_empty() {
        info(
            ui,
            &format!(
                "{}: Monitoring deployment {:?}",
                now(),
                limit(&deployment, len)
            ),
        );
        match monitor_deployment(ui, client, &deployment, len).await {
            Some(s) if s == caravan_structs::DEPLOYMENT_STATUS_SUCCESSFUL => sched_failure = false,
            _ => return 1,
        }
    }
    if sched_failure {
        2
    } else {
        0
    }
}

fn update(
    ui: &mut Ui,
    st: &mut EvalState,
    eval: &Evaluation,
    allocs: &[AllocListStub],
    len: usize,
) {
    if st.node.is_empty() && !eval.node_id.is_empty() {
        out(
            ui,
            &format!(
                "{}: Evaluation triggered by node {:?}",
                now(),
                limit(&eval.node_id, len)
            ),
        );
        st.node = eval.node_id.clone();
    }
    if st.job.is_empty() && !eval.job_id.is_empty() {
        out(
            ui,
            &format!("{}: Evaluation triggered by job {:?}", now(), eval.job_id),
        );
        st.job = eval.job_id.clone();
    }
    if st.deployment.is_empty() && !eval.deployment_id.is_empty() {
        out(
            ui,
            &format!(
                "{}: Evaluation within deployment: {:?}",
                now(),
                limit(&eval.deployment_id, len)
            ),
        );
        st.deployment = eval.deployment_id.clone();
    }
    for a in allocs {
        match st.allocs.get(&a.id) {
            None => {
                if a.create_index < eval.create_index {
                    out(
                        ui,
                        &format!(
                            "{}: Allocation {:?} modified: node {:?}, group {:?}",
                            now(),
                            limit(&a.id, len),
                            limit(&a.node_id, len),
                            a.task_group
                        ),
                    );
                } else if a.desired_status == caravan_structs::ALLOC_DESIRED_RUN {
                    out(
                        ui,
                        &format!(
                            "{}: Allocation {:?} created: node {:?}, group {:?}",
                            now(),
                            limit(&a.id, len),
                            limit(&a.node_id, len),
                            a.task_group
                        ),
                    );
                }
            }
            Some(prev) if *prev != a.client_status => {
                let desc = if a.client_description.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", a.client_description)
                };
                out(
                    ui,
                    &format!(
                        "{}: Allocation {:?} status changed: {:?} -> {:?}{desc}",
                        now(),
                        limit(&a.id, len),
                        prev,
                        a.client_status
                    ),
                );
            }
            _ => {}
        }
        st.allocs.insert(a.id.clone(), a.client_status.clone());
    }
    if !st.status.is_empty() && eval.status != "pending" && st.status != eval.status {
        out(
            ui,
            &format!(
                "{}: Evaluation status changed: {:?} -> {:?}",
                now(),
                st.status,
                eval.status
            ),
        );
    }
    st.status = eval.status.clone();
}

/// Follows a deployment until it is terminal, printing its table at every change; returns
/// its final status (`None` on error). A failed deployment with auto-revert is followed by
/// the rollback's deployment.
pub async fn monitor_deployment(
    ui: &mut Ui<'_>,
    client: &Client,
    id: &str,
    len: usize,
) -> Option<String> {
    let mut id = id.to_string();
    let mut index = 0u64;
    let mut last_modify = u64::MAX;
    loop {
        let (d, idx): (Deployment, u64) = match client
            .get(
                &format!("/v1/deployment/{}", seg(&id)),
                &[("stale", String::new())],
                blocking_from(index),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                ui.error(&format!("{}: Error fetching deployment: {e}", now()));
                return None;
            }
        };
        if d.modify_index != last_modify {
            last_modify = d.modify_index;
            ui.output("");
            ui.output(&format!("{}\n{}", now(), format_deployment(&d, len)));
        }
        match d.status.as_str() {
            caravan_structs::DEPLOYMENT_STATUS_FAILED => {
                if d.task_groups.values().any(|s| s.auto_revert) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let latest: Option<Deployment> = client
                        .get(&format!("/v1/job/{}/deployment", seg(&d.job_id)), &[], None)
                        .await
                        .ok()
                        .map(|(d, _)| d);
                    ui.output("");
                    if let Some(r) = latest.filter(|r| r.id != d.id && !r.id.is_empty()) {
                        id = r.id;
                        index = 0;
                        last_modify = u64::MAX;
                        continue;
                    }
                }
                return Some(d.status);
            }
            caravan_structs::DEPLOYMENT_STATUS_SUCCESSFUL
            | caravan_structs::DEPLOYMENT_STATUS_CANCELLED
            | "blocked" => return Some(d.status),
            _ => {
                if idx <= index {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                index = idx.max(index);
            }
        }
    }
}
