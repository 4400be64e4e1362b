//! The deployment watcher: follows each active deployment's allocations, keeps its counters,
//! asks the scheduler for the next rolling batch when allocations turn healthy, and ends the
//! deployment as successful or failed (unhealthy allocations, progress deadline).

use super::command::Command;
use super::Server;
use crate::state::{Table, Tables};
use caravan_structs::*;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(server: Arc<Server>) {
    let mut seen = 0u64;
    loop {
        server
            .store
            .watches
            .wait_any(
                &[Table::Allocs, Table::Deployments],
                seen,
                Duration::from_secs(1),
            )
            .await;
        let _writing = server.lock_deployment_writes();
        let snap = server.store.snapshot();
        seen = snap.max_index(&[Table::Allocs, Table::Deployments]);
        for d in snap.deployments.values().filter(|d| d.active()) {
            if let Some(cmd) = step(&snap, d, time::now_nanos()) {
                let succeeded = matches!(&cmd, Command::DeploymentUpsert { deployment, .. }
                    if deployment.status == DEPLOYMENT_STATUS_SUCCESSFUL);
                server.raft_apply(cmd);
                if succeeded {
                    server.raft_apply(Command::JobStability {
                        namespace: d.namespace.clone(),
                        job_id: d.job_id.clone(),
                        version: d.job_version,
                        stable: true,
                    });
                }
            }
        }
    }
}

/// Decides what, if anything, changes for one active deployment. Pure, for tests.
pub fn step(snap: &Tables, d: &Deployment, now: i64) -> Option<Command> {
    let Some(job) = snap.job(&d.namespace, &d.job_id) else {
        return Some(finish(
            d,
            DEPLOYMENT_STATUS_CANCELLED,
            "Cancelled because job was purged",
            vec![],
        ));
    };
    if job.stop {
        return Some(finish(
            d,
            DEPLOYMENT_STATUS_CANCELLED,
            DEPLOYMENT_DESC_STOPPED_JOB,
            vec![],
        ));
    }
    if job.version != d.job_version {
        return Some(finish(
            d,
            DEPLOYMENT_STATUS_CANCELLED,
            DEPLOYMENT_DESC_NEWER_JOB,
            vec![],
        ));
    }
    // Paused by an operator: nothing progresses, nothing times out, until it is resumed.
    if d.status == DEPLOYMENT_STATUS_PAUSED {
        return None;
    }
    let allocs: Vec<_> = snap
        .allocs_by_job(&d.namespace, &d.job_id)
        .into_iter()
        .filter(|a| a.deployment_id == d.id)
        .collect();
    let mut next = d.clone();
    let mut progressed = false;
    for (group, state) in next.task_groups.iter_mut() {
        let mine: Vec<_> = allocs.iter().filter(|a| &a.task_group == group).collect();
        let placed = mine.len() as i32;
        let healthy = mine
            .iter()
            .filter(|a| a.deployment_status.as_ref().and_then(|s| s.healthy) == Some(true))
            .count() as i32;
        let unhealthy = mine
            .iter()
            .filter(|a| a.deployment_status.as_ref().and_then(|s| s.healthy) == Some(false))
            .count() as i32;
        if state.require_progress_by.is_none() && state.progress_deadline > 0 {
            let start = if d.create_time > 0 {
                d.create_time
            } else {
                now
            };
            state.require_progress_by = Some(crate::util::rfc3339(start + state.progress_deadline));
        }
        if healthy > state.healthy_allocs && state.progress_deadline > 0 {
            state.require_progress_by = Some(crate::util::rfc3339(now + state.progress_deadline));
        }
        if healthy > state.healthy_allocs {
            progressed = true;
        }
        state.placed_allocs = placed;
        state.healthy_allocs = healthy;
        state.unhealthy_allocs = unhealthy;
    }
    if next.task_groups.values().any(|s| s.unhealthy_allocs > 0) {
        return Some(finish(
            &next,
            DEPLOYMENT_STATUS_FAILED,
            DEPLOYMENT_DESC_FAILED_ALLOCS,
            vec![],
        ));
    }
    let deadline_passed = next.task_groups.values().any(|s| {
        s.healthy_allocs < s.desired_total
            && s.require_progress_by
                .as_deref()
                .and_then(crate::util::parse_rfc3339)
                .map(|t| now > t)
                .unwrap_or(false)
    });
    if deadline_passed {
        return Some(finish(
            &next,
            DEPLOYMENT_STATUS_FAILED,
            DEPLOYMENT_DESC_PROGRESS_DEADLINE,
            vec![],
        ));
    }
    let complete = next
        .task_groups
        .values()
        .all(|s| s.healthy_allocs >= s.desired_total);
    if complete {
        return Some(finish(
            &next,
            DEPLOYMENT_STATUS_SUCCESSFUL,
            DEPLOYMENT_DESC_SUCCESSFUL,
            vec![],
        ));
    }
    if next != *d {
        // New healthy allocations let the scheduler replace the next batch.
        let evals = if progressed {
            let mut e = Evaluation::for_job(&job, TRIGGER_DEPLOYMENT_WATCHER);
            e.deployment_id = d.id.clone();
            vec![e]
        } else {
            vec![]
        };
        return Some(Command::DeploymentUpsert {
            deployment: next,
            evals,
        });
    }
    None
}

fn finish(d: &Deployment, status: &str, desc: &str, evals: Vec<Evaluation>) -> Command {
    let mut d = d.clone();
    d.status = status.into();
    d.status_description = desc.into();
    Command::DeploymentUpsert {
        deployment: d,
        evals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateStore;

    fn setup(healthy: Option<bool>) -> (Arc<StateStore>, Deployment) {
        let store = StateStore::new();
        let mut job = Job {
            id: "web".into(),
            ..Default::default()
        };
        job.task_groups.push(TaskGroup {
            name: "g".into(),
            count: 1,
            tasks: vec![Task {
                name: "t".into(),
                driver: "raw_exec".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        job.canonicalize();
        let mut d = Deployment {
            id: "d1".into(),
            namespace: "default".into(),
            job_id: "web".into(),
            status: DEPLOYMENT_STATUS_RUNNING.into(),
            create_time: time::now_nanos(),
            ..Default::default()
        };
        d.task_groups.insert(
            "g".into(),
            DeploymentState {
                desired_total: 1,
                progress_deadline: 600 * time::SECOND,
                ..Default::default()
            },
        );
        let alloc = Allocation {
            id: "a1".into(),
            job_id: "web".into(),
            task_group: "g".into(),
            deployment_id: "d1".into(),
            deployment_status: healthy.map(|h| AllocDeploymentStatus {
                healthy: Some(h),
                ..Default::default()
            }),
            ..Default::default()
        };
        store.write(1, |t| {
            t.upsert_job(1, job);
            t.upsert_alloc(1, alloc);
            t.upsert_deployment(1, d.clone());
        });
        (store, d)
    }

    fn status_of(cmd: Option<Command>) -> String {
        match cmd {
            Some(Command::DeploymentUpsert { deployment, .. }) => deployment.status,
            _ => "none".into(),
        }
    }

    #[test]
    fn healthy_allocs_complete_the_deployment() {
        let (s, d) = setup(Some(true));
        assert_eq!(
            status_of(step(&s.snapshot(), &d, time::now_nanos())),
            DEPLOYMENT_STATUS_SUCCESSFUL
        );
    }

    #[test]
    fn unhealthy_allocs_fail_it() {
        let (s, d) = setup(Some(false));
        assert_eq!(
            status_of(step(&s.snapshot(), &d, time::now_nanos())),
            DEPLOYMENT_STATUS_FAILED
        );
    }

    #[test]
    fn progress_deadline_fails_it() {
        let (s, d) = setup(None);
        let snap = s.snapshot();
        // First step records when progress is due; the deployment keeps running.
        let Some(Command::DeploymentUpsert { deployment, .. }) = step(&snap, &d, time::now_nanos())
        else {
            panic!("expected an update");
        };
        assert_eq!(deployment.status, DEPLOYMENT_STATUS_RUNNING);
        assert_eq!(
            step(&snap, &deployment, time::now_nanos()).map(|_| ()),
            None
        );
        let later = time::now_nanos() + 601 * time::SECOND;
        assert_eq!(
            status_of(step(&snap, &deployment, later)),
            DEPLOYMENT_STATUS_FAILED
        );
    }
}
