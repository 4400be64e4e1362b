//! Server garbage collection (Nomad's core scheduler): terminal evaluations with their
//! terminal allocations, dead jobs, finished deployments and long-down nodes are removed once
//! they are older than their thresholds; `PUT /v1/system/gc` collects with every threshold at
//! zero.

use super::command::Command;
use super::Server;
use crate::state::Tables;
use caravan_structs::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Thresholds and interval, Nomad's defaults.
#[derive(Debug, Clone)]
pub struct GcConfig {
    pub interval: Duration,
    pub job_threshold: Duration,
    pub eval_threshold: Duration,
    pub batch_eval_threshold: Duration,
    pub deployment_threshold: Duration,
    pub node_threshold: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval: Duration::from_secs(5 * 60),
            job_threshold: Duration::from_secs(4 * 3600),
            eval_threshold: Duration::from_secs(3600),
            batch_eval_threshold: Duration::from_secs(24 * 3600),
            deployment_threshold: Duration::from_secs(3600),
            node_threshold: Duration::from_secs(24 * 3600),
        }
    }
}

impl GcConfig {
    /// Every threshold zero: what a forced GC uses.
    pub fn forced(&self) -> GcConfig {
        GcConfig {
            interval: self.interval,
            job_threshold: Duration::ZERO,
            eval_threshold: Duration::ZERO,
            batch_eval_threshold: Duration::ZERO,
            deployment_threshold: Duration::ZERO,
            node_threshold: Duration::ZERO,
        }
    }
}

/// What one GC pass removes.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GcPlan {
    pub jobs: Vec<(String, String)>,
    pub evals: Vec<String>,
    pub allocs: Vec<String>,
    pub deployments: Vec<String>,
    pub nodes: Vec<String>,
}

impl GcPlan {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
            && self.evals.is_empty()
            && self.allocs.is_empty()
            && self.deployments.is_empty()
            && self.nodes.is_empty()
    }
}

pub async fn run(server: Arc<Server>) {
    // A zero interval would spin (and tokio refuses it).
    let mut tick = tokio::time::interval(server.config.gc.interval.max(Duration::from_secs(1)));
    tick.tick().await;
    loop {
        tick.tick().await;
        collect(&server, &server.config.gc);
    }
}

/// One pass; returns what was removed.
pub fn collect(server: &Server, cfg: &GcConfig) -> GcPlan {
    let plan = plan(&server.store.snapshot(), cfg, time::now_nanos());
    if !plan.is_empty() {
        tracing::debug!(
            jobs = plan.jobs.len(),
            evals = plan.evals.len(),
            allocs = plan.allocs.len(),
            deployments = plan.deployments.len(),
            nodes = plan.nodes.len(),
            "garbage collecting"
        );
        server.raft_apply(Command::GcDelete { plan: plan.clone() });
    }
    plan
}

fn older(ts: i64, now: i64, threshold: Duration) -> bool {
    now.saturating_sub(ts) >= threshold.as_nanos() as i64
}

/// Decides what to collect. Pure, for tests.
pub fn plan(t: &Tables, cfg: &GcConfig, now: i64) -> GcPlan {
    let mut out = GcPlan::default();
    let mut gone_allocs: BTreeSet<String> = BTreeSet::new();

    // Dead jobs, with everything they own, once all of it is old enough.
    for job in t.jobs.values() {
        if job.status != JOB_STATUS_DEAD {
            continue;
        }
        let allocs = t.allocs_by_job(&job.namespace, &job.id);
        let evals = t.evals_by_job(&job.namespace, &job.id);
        let last = allocs
            .iter()
            .map(|a| a.modify_time)
            .chain(evals.iter().map(|e| e.modify_time))
            .chain(std::iter::once(job.submit_time))
            .max()
            .unwrap_or(0);
        let all_terminal = allocs.iter().all(|a| a.terminal() && a.client_terminal())
            && evals.iter().all(|e| e.terminal());
        if all_terminal && older(last, now, cfg.job_threshold) {
            out.jobs.push((job.namespace.clone(), job.id.clone()));
            for a in &allocs {
                gone_allocs.insert(a.id.clone());
            }
            out.evals.extend(evals.iter().map(|e| e.id.clone()));
            out.deployments.extend(
                t.deployments_by_job(&job.namespace, &job.id)
                    .iter()
                    .map(|d| d.id.clone()),
            );
        }
    }
    let gone_jobs: BTreeSet<&(String, String)> = out.jobs.iter().collect();

    // Terminal evaluations whose allocations are all finished, for jobs still around.
    for e in t.evals.values() {
        if !e.terminal() || gone_jobs.contains(&(e.namespace.clone(), e.job_id.clone())) {
            continue;
        }
        let job = t.job(&e.namespace, &e.job_id);
        let batch = job
            .as_ref()
            .map(|j| j.job_type == JOB_TYPE_BATCH && j.status != JOB_STATUS_DEAD)
            .unwrap_or(false);
        let threshold = if batch {
            cfg.batch_eval_threshold
        } else {
            cfg.eval_threshold
        };
        if !older(e.modify_time, now, threshold) {
            continue;
        }
        let allocs = t.allocs_by_eval(&e.id);
        let done = allocs.iter().all(|a| {
            a.server_terminal() && a.client_terminal() && older(a.modify_time, now, threshold)
        });
        if !done {
            continue;
        }
        // A batch job's finished allocations are its record of having run: keep them (and
        // so their eval) while the job lives, as Nomad does.
        if batch && !allocs.is_empty() {
            continue;
        }
        out.evals.push(e.id.clone());
        gone_allocs.extend(allocs.iter().map(|a| a.id.clone()));
    }

    for d in t.deployments.values() {
        if !d.active()
            && older(d.modify_time, now, cfg.deployment_threshold)
            && !out.deployments.contains(&d.id)
        {
            // Keep the latest deployment of a live job: `job status` shows it.
            let latest = t
                .latest_deployment(&d.namespace, &d.job_id)
                .map(|l| l.id == d.id)
                .unwrap_or(false);
            let job_alive = t.job(&d.namespace, &d.job_id).is_some();
            if !(latest && job_alive) {
                out.deployments.push(d.id.clone());
            }
        }
    }

    for n in t.nodes.values() {
        if n.status != NODE_STATUS_DOWN {
            continue;
        }
        let since = n.status_updated_at * 1_000_000_000;
        let has_live = t.allocs_by_node(&n.id).iter().any(|a| !a.terminal());
        if !has_live && older(since, now, cfg.node_threshold) {
            out.nodes.push(n.id.clone());
        }
    }
    out.allocs = gone_allocs.into_iter().collect();
    out.evals.sort();
    out.evals.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    fn cfg() -> GcConfig {
        GcConfig {
            job_threshold: Duration::from_secs(100),
            eval_threshold: Duration::from_secs(100),
            batch_eval_threshold: Duration::from_secs(100),
            deployment_threshold: Duration::from_secs(100),
            node_threshold: Duration::from_secs(100),
            ..Default::default()
        }
    }

    /// A batch job with one complete eval and one complete alloc, all last touched at `at`.
    fn finished_batch(t: &mut Tables, id: &str, at: i64, status: &str) {
        let job = Job {
            id: id.into(),
            job_type: JOB_TYPE_BATCH.into(),
            status: status.into(),
            submit_time: at,
            ..Default::default()
        };
        t.jobs.insert(("default".into(), id.into()), Arc::new(job));
        t.upsert_eval(
            1,
            Evaluation {
                id: format!("{id}-eval"),
                job_id: id.into(),
                status: EVAL_STATUS_COMPLETE.into(),
                modify_time: at,
                ..Default::default()
            },
        );
        t.upsert_alloc(
            1,
            Allocation {
                id: format!("{id}-alloc"),
                job_id: id.into(),
                eval_id: format!("{id}-eval"),
                node_id: "n1".into(),
                desired_status: ALLOC_DESIRED_RUN.into(),
                client_status: ALLOC_CLIENT_COMPLETE.into(),
                modify_time: at,
                ..Default::default()
            },
        );
    }

    #[test]
    fn dead_jobs_go_with_their_evals_and_allocs_only_after_the_threshold() {
        let mut t = Tables::default();
        let now = 1_000 * SEC;
        finished_batch(&mut t, "old", now - 200 * SEC, JOB_STATUS_DEAD);
        finished_batch(&mut t, "young", now - 50 * SEC, JOB_STATUS_DEAD);
        let p = plan(&t, &cfg(), now);
        assert_eq!(p.jobs, vec![("default".to_string(), "old".to_string())]);
        assert_eq!(p.evals, vec!["old-eval".to_string()]);
        assert_eq!(p.allocs, vec!["old-alloc".to_string()]);
        // Forced: thresholds at zero take both.
        let p = plan(&t, &cfg().forced(), now);
        assert_eq!(p.jobs.len(), 2);
        assert_eq!(p.allocs.len(), 2);
    }

    #[test]
    fn live_batch_jobs_keep_their_finished_allocations() {
        let mut t = Tables::default();
        let now = 1_000 * SEC;
        finished_batch(&mut t, "b", now - 500 * SEC, JOB_STATUS_RUNNING);
        assert!(plan(&t, &cfg().forced(), now).is_empty());
    }

    #[test]
    fn running_work_is_never_collected() {
        let mut t = Tables::default();
        let now = 1_000 * SEC;
        finished_batch(&mut t, "j", now - 500 * SEC, JOB_STATUS_DEAD);
        // One allocation of the dead job still runs on its client: nothing of it goes.
        let mut a = (*t.allocs["j-alloc"]).clone();
        a.client_status = ALLOC_CLIENT_RUNNING.into();
        a.desired_status = ALLOC_DESIRED_STOP.into();
        t.upsert_alloc(2, a);
        let p = plan(&t, &cfg().forced(), now);
        assert!(p.jobs.is_empty() && p.allocs.is_empty(), "{p:?}");
        // A pending eval is not terminal.
        let mut t = Tables::default();
        t.upsert_eval(
            1,
            Evaluation {
                id: "e".into(),
                job_id: "x".into(),
                status: EVAL_STATUS_PENDING.into(),
                ..Default::default()
            },
        );
        assert!(plan(&t, &cfg().forced(), now).evals.is_empty());
    }

    #[test]
    fn down_nodes_go_after_node_threshold_unless_they_hold_live_allocs() {
        let mut t = Tables::default();
        let now = 1_000 * SEC;
        for (id, down_for) in [("old", 500), ("young", 10)] {
            t.upsert_node(
                1,
                Node {
                    id: id.into(),
                    status: NODE_STATUS_DOWN.into(),
                    status_updated_at: (now / SEC) - down_for,
                    ..Default::default()
                },
            );
        }
        t.upsert_node(
            1,
            Node {
                id: "up".into(),
                status: NODE_STATUS_READY.into(),
                ..Default::default()
            },
        );
        assert_eq!(plan(&t, &cfg(), now).nodes, vec!["old".to_string()]);
    }

    #[test]
    fn the_latest_deployment_of_a_live_job_stays() {
        let mut t = Tables::default();
        let now = 1_000 * SEC;
        t.jobs.insert(
            ("default".into(), "web".into()),
            Arc::new(Job {
                id: "web".into(),
                status: JOB_STATUS_RUNNING.into(),
                ..Default::default()
            }),
        );
        for (i, id) in ["d1", "d2"].iter().enumerate() {
            t.upsert_deployment(
                1 + i as u64,
                Deployment {
                    id: id.to_string(),
                    job_id: "web".into(),
                    namespace: "default".into(),
                    status: DEPLOYMENT_STATUS_SUCCESSFUL.into(),
                    modify_time: now - 500 * SEC,
                    ..Default::default()
                },
            );
        }
        let latest = t.latest_deployment("default", "web").map(|d| d.id.clone());
        let p = plan(&t, &cfg(), now);
        assert_eq!(p.deployments.len(), 1, "{p:?}");
        assert_ne!(Some(p.deployments[0].clone()), latest);
    }
}
