//! `scheduler --jobs N`: C1M's shape through the real scheduler and the real state store, in
//! one process. Nodes and jobs are registered through the FSM (`fsm::apply`), every
//! evaluation runs `caravan_scheduler::process` on a snapshot of the store, and its plan is
//! committed with `Command::ApplyPlanResults`, as the server's plan applier does, so later
//! evaluations see the fuller cluster. No Raft, no network, no eval broker.
//!
//! The bench keeps a per-node index of what is allocated (the sum of each node's
//! non-terminal allocations, updated from the store after every commit) and hands it to the
//! scheduler through [`caravan_scheduler::StateSnapshot::node_allocated`]; it also uses it to
//! re-check each node's capacity before a commit, as the plan applier does. At the end every
//! node's allocations are summed again from the store, independently of that index, and
//! checked against capacity, the constraint, the index and the expected counts.

use crate::error::BenchError;
use crate::report::{ms, percentile, Report};
use caravan::server::command::Command;
use caravan::server::events::EventBroker;
use caravan::server::fsm;
use caravan::state::{SchedSnapshot, StateStore, Tables};
use caravan_scheduler::bench::{c1m_allowed_racks, c1m_job, c1m_nodes};
use caravan_scheduler::{NodeAllocated, SchedulerConfig, StateSnapshot};
use caravan_structs::{
    Allocation, ComparableResources, Deployment, Evaluation, Job, Node, TRIGGER_JOB_REGISTER,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct C1mOptions {
    pub nodes: usize,
    pub jobs: usize,
    pub count: usize,
    pub seed: u64,
}

/// The store's snapshot plus the bench's per-node allocation index.
struct IndexedSnapshot<'a> {
    inner: SchedSnapshot,
    index: &'a HashMap<String, NodeAllocated>,
}

impl StateSnapshot for IndexedSnapshot<'_> {
    fn index(&self) -> u64 {
        self.inner.index()
    }
    fn job(&self, namespace: &str, id: &str) -> Option<Arc<Job>> {
        self.inner.job(namespace, id)
    }
    fn nodes(&self) -> Vec<Arc<Node>> {
        self.inner.nodes()
    }
    fn node(&self, id: &str) -> Option<Arc<Node>> {
        self.inner.node(id)
    }
    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<Arc<Allocation>> {
        self.inner.allocs_by_job(namespace, job_id)
    }
    fn allocs_by_node(&self, node_id: &str) -> Vec<Arc<Allocation>> {
        self.inner.allocs_by_node(node_id)
    }
    fn latest_deployment(&self, namespace: &str, job_id: &str) -> Option<Deployment> {
        self.inner.latest_deployment(namespace, job_id)
    }
    fn node_allocated(&self, node_id: &str) -> Option<NodeAllocated> {
        Some(self.index.get(node_id).cloned().unwrap_or_default())
    }
}

/// What the run measured, for the report.
struct Totals {
    placements: usize,
    evals: usize,
    failed: usize,
    rejected_nodes: usize,
    wall: Duration,
    register: Vec<Duration>,
    schedule: Vec<Duration>,
    apply: Vec<Duration>,
}

pub fn run(o: &C1mOptions, report: &mut Report) -> Result<(), BenchError> {
    if o.count > i32::MAX as usize {
        return Err(BenchError::Usage(format!(
            "--count {} is too large",
            o.count
        )));
    }
    eprintln!(
        "== scheduler (C1M shape): {} nodes, {} jobs x {} allocations, seed {}",
        o.nodes, o.jobs, o.count, o.seed
    );
    let store = StateStore::new();
    let events = EventBroker::new(0, false);
    let mut raft_index = 0u64;
    let t = Instant::now();
    for node in c1m_nodes(o.nodes, o.seed) {
        raft_index += 1;
        fsm::apply(&store, &events, raft_index, &Command::NodeRegister { node });
    }
    eprintln!("registered {} nodes in {:.0} ms", o.nodes, ms(t.elapsed()));

    let cfg = SchedulerConfig {
        rng_seed: Some(o.seed),
        ..Default::default()
    };
    let mut index: HashMap<String, NodeAllocated> = HashMap::new();
    let mut tot = Totals {
        placements: 0,
        evals: 0,
        failed: 0,
        rejected_nodes: 0,
        wall: Duration::ZERO,
        register: Vec::with_capacity(o.jobs),
        schedule: Vec::with_capacity(o.jobs),
        apply: Vec::with_capacity(o.jobs),
    };
    let start = Instant::now();
    for j in 0..o.jobs {
        let job = c1m_job(&format!("c1m-{j}"), o.count as i32);
        let mut eval = Evaluation::for_job(&job, TRIGGER_JOB_REGISTER);
        eval.eval_type = job.job_type.clone();
        let tr = Instant::now();
        raft_index += 1;
        fsm::apply(
            &store,
            &events,
            raft_index,
            &Command::JobRegister {
                job,
                eval: Some(eval.clone()),
            },
        );

        let t0 = Instant::now();
        tot.register.push(t0 - tr);
        let snap = IndexedSnapshot {
            inner: SchedSnapshot(store.snapshot()),
            index: &index,
        };
        let out = caravan_scheduler::process(&eval, &snap, &cfg)?;
        drop(snap);
        let t1 = Instant::now();
        tot.evals += 1;
        tot.failed += out
            .failed_tg_allocs
            .values()
            .map(|m| 1 + m.coalesced_failures as usize)
            .sum::<usize>();

        // The plan applier's re-check: every node must still hold what the plan adds.
        let before = store.snapshot();
        let mut plan = out.plan;
        let mut rejected = Vec::new();
        for (node_id, allocs) in &plan.node_allocation {
            if !still_fits(&before, &index, node_id, allocs) {
                rejected.push(node_id.clone());
            }
        }
        for n in &rejected {
            plan.node_allocation.remove(n);
        }
        tot.rejected_nodes += rejected.len();
        let mut commit: Vec<Allocation> = Vec::new();
        for (_, v) in std::mem::take(&mut plan.node_update) {
            commit.extend(v);
        }
        for (_, v) in std::mem::take(&mut plan.node_allocation) {
            tot.placements += v.len();
            commit.extend(v);
        }
        let ids: Vec<String> = commit.iter().map(|a| a.id.clone()).collect();
        raft_index += 1;
        fsm::apply(
            &store,
            &events,
            raft_index,
            &Command::ApplyPlanResults {
                allocs: commit,
                deployment: plan.deployment.take(),
                deployment_updates: std::mem::take(&mut plan.deployment_updates),
                eval_id: plan.eval_id.clone(),
            },
        );
        let after = store.snapshot();
        for id in &ids {
            if let Some(old) = before.allocs.get(id) {
                if let Some(u) = index.get_mut(&old.node_id) {
                    u.remove(old);
                }
            }
            if let Some(new) = after.allocs.get(id) {
                index.entry(new.node_id.clone()).or_default().add(new);
            }
        }
        // Releasing the older table versions frees what the commit copied: part of its cost.
        drop(before);
        drop(after);
        let t2 = Instant::now();
        tot.schedule.push(t1 - t0);
        tot.apply.push(t2 - t1);
        if (j + 1) % 100 == 0 || j + 1 == o.jobs {
            eprintln!(
                "  {} jobs, {} placements, {:.1} s",
                j + 1,
                tot.placements,
                start.elapsed().as_secs_f64()
            );
        }
    }
    tot.wall = start.elapsed();

    print_totals(&tot, report);
    let complete = tot.failed == 0 && tot.rejected_nodes == 0;
    let check = verify(&store.snapshot(), &index, o, tot.placements, complete)?;
    eprintln!("check: {check}");
    if !complete {
        return Err(BenchError::Failed(format!(
            "{} failed placements, {} nodes rejected at plan apply",
            tot.failed, tot.rejected_nodes
        )));
    }
    Ok(())
}

/// Whether `node_id` can take `allocs` on top of what the index says it holds.
fn still_fits(
    t: &Tables,
    index: &HashMap<String, NodeAllocated>,
    node_id: &str,
    allocs: &[Allocation],
) -> bool {
    let Some(node) = t.nodes.get(node_id) else {
        return false;
    };
    let mut used = index.get(node_id).map(|u| u.resources).unwrap_or_default();
    for a in allocs.iter().filter(|a| !a.terminal()) {
        used.add(&a.allocated_resources.comparable());
    }
    node.comparable_capacity().superset(&used).is_none()
}

fn print_totals(tot: &Totals, report: &mut Report) {
    let mut s = tot.schedule.clone();
    s.sort();
    let mut a = tot.apply.clone();
    a.sort();
    let sched_total: Duration = s.iter().sum();
    let apply_total: Duration = a.iter().sum();
    report.add("placements", tot.placements as f64, 0, "placements");
    report.add("evaluations", tot.evals as f64, 0, "evaluations");
    report.add("failed_placements", tot.failed as f64, 0, "placements");
    report.add("wall_s", tot.wall.as_secs_f64(), 2, "s");
    report.add("schedule_s", sched_total.as_secs_f64(), 2, "s");
    report.add("plan_apply_s", apply_total.as_secs_f64(), 2, "s");
    let register_total: Duration = tot.register.iter().sum();
    report.add("job_register_s", register_total.as_secs_f64(), 2, "s");
    let sched_rate = if sched_total.is_zero() {
        0.0
    } else {
        tot.placements as f64 / sched_total.as_secs_f64()
    };
    report.add(
        "scheduler_only_placements_per_sec",
        sched_rate,
        0,
        "placements/s",
    );
    for (name, v) in [("eval", &s), ("plan_apply", &a)] {
        if let (Some(p50), Some(p99)) = (percentile(v, 50.0), percentile(v, 99.0)) {
            report.add(&format!("{name}_p50_ms"), ms(p50), 2, "ms");
            report.add(&format!("{name}_p99_ms"), ms(p99), 2, "ms");
        }
    }
    let rate = if tot.wall.is_zero() {
        0.0
    } else {
        tot.placements as f64 / tot.wall.as_secs_f64()
    };
    report.add_total(rate, 0, "placements/s");
}

/// Sums every node's allocations from the store (not from the index) and checks capacity,
/// the rack constraint, the index and the counts. `Err` names the first thing wrong.
fn verify(
    t: &Tables,
    index: &HashMap<String, NodeAllocated>,
    o: &C1mOptions,
    placements: usize,
    complete: bool,
) -> Result<String, BenchError> {
    let fail = |s: String| Err(BenchError::Failed(format!("check: {s}")));
    let racks: HashSet<String> = c1m_allowed_racks().into_iter().collect();
    let mut live = 0usize;
    let mut nodes_used = 0usize;
    let mut fullest = 0f64;
    for (id, node) in t.nodes.iter() {
        let mut used = ComparableResources::default();
        let mut here = NodeAllocated::default();
        for a in t.allocs_by_node(id).iter().filter(|a| !a.terminal()) {
            used.add(&a.allocated_resources.comparable());
            here.add(a);
            live += 1;
        }
        if here.allocs == 0 {
            continue;
        }
        nodes_used += 1;
        let cap = node.comparable_capacity();
        if let Some(dim) = cap.superset(&used) {
            return fail(format!(
                "node {id} is over capacity ({dim}): {used:?} > {cap:?}"
            ));
        }
        let rack = node.meta.get("rack").cloned().unwrap_or_default();
        if !racks.contains(&rack) {
            return fail(format!(
                "node {id} in rack {rack:?} violates the constraint"
            ));
        }
        if index.get(id) != Some(&here) {
            return fail(format!("node {id}: the index disagrees with the store"));
        }
        fullest = fullest.max(used.cpu_shares as f64 / cap.cpu_shares.max(1) as f64);
    }
    if live != placements {
        return fail(format!("{live} live allocations, {placements} placed"));
    }
    if complete && live != o.jobs * o.count {
        return fail(format!(
            "{live} live allocations, expected {}",
            o.jobs * o.count
        ));
    }
    for j in (0..o.jobs).filter(|_| complete) {
        let n = t
            .allocs_by_job("default", &format!("c1m-{j}"))
            .iter()
            .filter(|a| !a.terminal())
            .count();
        if n != o.count {
            return fail(format!(
                "job c1m-{j} has {n} allocations, expected {}",
                o.count
            ));
        }
    }
    Ok(format!(
        "{live} allocations on {nodes_used} nodes, none over capacity, all in allowed racks, \
         every job has {}; fullest node {:.1} % CPU",
        o.count,
        fullest * 100.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_c1m_run_places_everything_and_checks_out() {
        let o = C1mOptions {
            nodes: 40,
            jobs: 5,
            count: 30,
            seed: 2,
        };
        let mut r = Report::new("scheduler");
        run(&o, &mut r).unwrap();
        let lines = r.lines();
        assert!(lines.contains(&"scheduler.placements: 150 placements".to_string()));
        assert!(lines.contains(&"scheduler.failed_placements: 0 placements".to_string()));
        let last = lines.last().unwrap();
        assert!(last.starts_with("scheduler: ") && last.ends_with(" placements/s"));
    }

    #[test]
    fn an_overfull_cluster_fails_the_run() {
        // 4 nodes (all in allowed racks), 512 allocations each at most: 2,100 do not fit.
        let o = C1mOptions {
            nodes: 4,
            jobs: 1,
            count: 2100,
            seed: 1,
        };
        let mut r = Report::new("scheduler");
        let err = run(&o, &mut r).unwrap_err();
        assert!(err.to_string().contains("failed placements"), "{err}");
    }
}
