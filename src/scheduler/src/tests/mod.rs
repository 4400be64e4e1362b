//! Scenario tests: whole evaluations against a [`crate::MemSnapshot`].

mod placement;
mod properties;
mod updates;

use crate::{process, MemSnapshot, Outcome, SchedulerConfig};
use caravan_structs::time::SECOND;
use caravan_structs::{
    Allocation, DriverInfo, Evaluation, Job, Node, Resources, Task, TaskGroup, NODE_STATUS_READY,
};
use std::sync::Arc;

/// A fixed "now" for reschedule arithmetic.
pub const NOW: i64 = 1_700_000_000 * SECOND;

pub fn node(id: &str, dc: &str) -> Node {
    let mut n = Node {
        id: id.into(),
        name: format!("name-{id}"),
        datacenter: dc.into(),
        status: NODE_STATUS_READY.into(),
        ..Default::default()
    };
    n.node_resources.cpu.cpu_shares = 4000;
    n.node_resources.memory.memory_mb = 8192;
    n.node_resources.disk.disk_mb = 100_000;
    n.attributes.insert("kernel.name".into(), "linux".into());
    n.attributes
        .insert("unique.network.ip-address".into(), "10.0.0.1".into());
    n.drivers.insert(
        "raw_exec".into(),
        DriverInfo {
            detected: true,
            healthy: true,
            ..Default::default()
        },
    );
    n
}

pub fn job(id: &str, count: i32) -> Job {
    let mut j = Job {
        id: id.into(),
        task_groups: vec![TaskGroup {
            name: "web".into(),
            count,
            tasks: vec![Task {
                name: "server".into(),
                driver: "raw_exec".into(),
                resources: Resources {
                    cpu: 500,
                    memory_mb: 256,
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    j.canonicalize();
    j
}

pub fn batch_job(id: &str, count: i32) -> Job {
    let mut j = job(id, count);
    j.job_type = caravan_structs::JOB_TYPE_BATCH.into();
    for tg in &mut j.task_groups {
        tg.update = None;
        tg.restart_policy = None;
        tg.reschedule_policy = None;
    }
    j.canonicalize();
    j
}

pub fn cfg() -> SchedulerConfig {
    SchedulerConfig {
        rng_seed: Some(7),
        now_nanos: Some(NOW),
        ..Default::default()
    }
}

pub fn eval_for(job: &Job) -> Evaluation {
    let mut e = Evaluation::for_job(job, caravan_structs::TRIGGER_JOB_REGISTER);
    e.eval_type = job.job_type.clone();
    e
}

pub fn run(snap: &MemSnapshot, job: &Job) -> Outcome {
    match process(&eval_for(job), snap, &cfg()) {
        Ok(o) => o,
        Err(e) => panic!("process failed: {e}"),
    }
}

/// Every allocation the plan places or updates.
pub fn placed(o: &Outcome) -> Vec<&Allocation> {
    o.plan.node_allocation.values().flatten().collect()
}

/// Every allocation the plan stops.
pub fn stopped(o: &Outcome) -> Vec<&Allocation> {
    o.plan.node_update.values().flatten().collect()
}

/// Marks every allocation of the snapshot running (and optionally healthy).
pub fn set_running(snap: &mut MemSnapshot, healthy: bool) {
    for a in snap.all_allocs() {
        if a.desired_status != "run" {
            continue;
        }
        let mut a = (*a).clone();
        a.client_status = "running".into();
        if healthy && !a.deployment_id.is_empty() {
            a.deployment_status = Some(caravan_structs::AllocDeploymentStatus {
                healthy: Some(true),
                ..Default::default()
            });
        }
        snap.upsert_alloc(a);
    }
}

/// A snapshot with `nodes` identical nodes in dc1 and the job registered.
pub fn cluster(nodes: usize, job: &Job) -> (MemSnapshot, Arc<Job>) {
    let mut snap = MemSnapshot::new();
    for i in 0..nodes {
        snap.upsert_node(node(&format!("node-{i}"), "dc1"));
    }
    let j = snap.upsert_job(job.clone());
    (snap, j)
}

/// Registers a new version of the job (version + 1), as the server would.
pub fn new_version(snap: &mut MemSnapshot, mut job: Job) -> Job {
    job.version += 1;
    job.job_modify_index += 1;
    snap.upsert_job(job.clone());
    job
}
