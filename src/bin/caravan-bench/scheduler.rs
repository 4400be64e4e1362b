//! `scheduler`: placements per second of the pure scheduler (`caravan_scheduler::process`) on
//! a synthetic cluster, in-process — no server, no network, no state store. With `--jobs`,
//! C1M's shape through the scheduler and the real state store instead ([`c1m`]).

#[path = "scheduler_c1m.rs"]
mod c1m;

use crate::args::Args;
use crate::error::BenchError;
use crate::report::{median, ms, Report};
use caravan_scheduler::bench::{synthetic_cluster, synthetic_job};
use caravan_scheduler::{MemSnapshot, Outcome, SchedulerConfig};
use caravan_structs::{Evaluation, Job, TRIGGER_JOB_REGISTER};
use std::time::{Duration, Instant};

/// The small cluster every run adds, to show how placement cost scales with cluster size.
const SMALL_CLUSTER: usize = 100;

#[derive(Debug, Clone)]
pub struct Options {
    /// `--jobs`: run C1M's shape (see [`c1m`]) with this many jobs instead of the quick mode.
    pub c1m_jobs: Option<usize>,
    pub nodes: usize,
    pub count: usize,
    pub seed: u64,
    pub iterations: usize,
    pub fill_jobs: usize,
}

impl Options {
    pub fn from_args(a: &Args) -> Result<Options, BenchError> {
        let count = a.count("count", 1000)?;
        if count > i32::MAX as usize {
            return Err(BenchError::Usage(format!("--count {count} is too large")));
        }
        let c1m_jobs = Some(a.count("jobs", 0)?).filter(|n| *n > 0);
        Ok(Options {
            c1m_jobs,
            nodes: a.count("nodes", 5000)?,
            count,
            seed: a.u64("seed", 1)?,
            iterations: a.count("iterations", 5)?,
            fill_jobs: a.count("fill-jobs", 10)?,
        })
    }
}

pub fn run(o: &Options, report: &mut Report) -> Result<(), BenchError> {
    if let Some(jobs) = o.c1m_jobs {
        return c1m::run(
            &c1m::C1mOptions {
                nodes: o.nodes,
                jobs,
                count: o.count,
                seed: o.seed,
            },
            report,
        );
    }
    eprintln!(
        "== scheduler: {} placements per evaluation, seed {}, median of {} runs",
        o.count, o.seed, o.iterations
    );
    empty_cluster(o, o.nodes, "", report)?;
    if o.nodes != SMALL_CLUSTER {
        empty_cluster(o, SMALL_CLUSTER, &format!("nodes_{SMALL_CLUSTER}."), report)?;
    }
    filling_cluster(o, report)
}

/// The same evaluation, repeatedly, against an empty cluster of `nodes` nodes.
fn empty_cluster(
    o: &Options,
    nodes: usize,
    key: &str,
    report: &mut Report,
) -> Result<(), BenchError> {
    let t = Instant::now();
    let mut snap = synthetic_cluster(nodes, o.seed);
    let job = synthetic_job("bench", o.count as i32);
    snap.upsert_job(job.clone());
    eprintln!("built a {nodes}-node cluster in {:.0} ms", ms(t.elapsed()));
    let eval = eval_for(&job);
    let cfg = config(o.seed);
    // One untimed run warms caches and checks that everything places.
    let placed = placements(&caravan_scheduler::process(&eval, &snap, &cfg)?);
    if placed < o.count {
        eprintln!(
            "WARNING: only {placed} of {} placed on {nodes} nodes",
            o.count
        );
    }
    let mut times = Vec::with_capacity(o.iterations);
    for i in 0..o.iterations {
        let t = Instant::now();
        let out = caravan_scheduler::process(&eval, &snap, &cfg)?;
        let d = t.elapsed();
        std::hint::black_box(&out);
        eprintln!("  {nodes} nodes, run {}: {:.1} ms", i + 1, ms(d));
        times.push(d);
    }
    let Some(mid) = median(&times) else {
        return Ok(());
    };
    report.add(
        &format!("{key}placements_per_sec"),
        per_sec(placed, mid),
        0,
        "placements/s",
    );
    report.add(&format!("{key}ms_per_eval"), ms(mid), 1, "ms");
    Ok(())
}

/// `fill_jobs` jobs scheduled one after another, each plan applied before the next, so later
/// evaluations see a fuller cluster (closer to how C1M fills its 5,000 hosts).
fn filling_cluster(o: &Options, report: &mut Report) -> Result<(), BenchError> {
    let mut snap: MemSnapshot = synthetic_cluster(o.nodes, o.seed);
    let cfg = config(o.seed);
    let mut busy = Duration::ZERO;
    let mut placed = 0usize;
    for j in 0..o.fill_jobs {
        let job = synthetic_job(&format!("fill-{j}"), o.count as i32);
        snap.upsert_job(job.clone());
        let eval = eval_for(&job);
        let t = Instant::now();
        let out = caravan_scheduler::process(&eval, &snap, &cfg)?;
        busy += t.elapsed();
        placed += placements(&out);
        snap.apply_plan(&out.plan);
    }
    eprintln!(
        "filled {} nodes with {placed} allocations from {} jobs in {:.0} ms of scheduling",
        o.nodes,
        o.fill_jobs,
        ms(busy)
    );
    report.add(
        "fill.placements_per_sec",
        per_sec(placed, busy),
        0,
        "placements/s",
    );
    Ok(())
}

fn eval_for(job: &Job) -> Evaluation {
    let mut e = Evaluation::for_job(job, TRIGGER_JOB_REGISTER);
    e.eval_type = job.job_type.clone();
    e
}

fn config(seed: u64) -> SchedulerConfig {
    SchedulerConfig {
        rng_seed: Some(seed),
        ..Default::default()
    }
}

fn placements(out: &Outcome) -> usize {
    out.plan.node_allocation.values().map(Vec::len).sum()
}

fn per_sec(n: usize, d: Duration) -> f64 {
    if d.is_zero() {
        return 0.0;
    }
    n as f64 / d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_run_reports_every_figure() {
        let o = Options {
            c1m_jobs: None,
            nodes: 20,
            count: 10,
            seed: 3,
            iterations: 2,
            fill_jobs: 2,
        };
        let mut r = Report::new("scheduler");
        run(&o, &mut r).unwrap();
        let keys: Vec<&str> = r
            .lines()
            .iter()
            .map(|l| l.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(
            keys,
            [
                "scheduler.placements_per_sec",
                "scheduler.ms_per_eval",
                "scheduler.nodes_100.placements_per_sec",
                "scheduler.nodes_100.ms_per_eval",
                "scheduler.fill.placements_per_sec",
            ]
        );
        assert!(r.lines()[0].ends_with(" placements/s"));
    }

    #[test]
    fn every_placement_lands_on_an_empty_cluster() {
        let snap = {
            let mut s = synthetic_cluster(50, 1);
            s.upsert_job(synthetic_job("bench", 40));
            s
        };
        let job = synthetic_job("bench", 40);
        let out = caravan_scheduler::process(&eval_for(&job), &snap, &config(1)).unwrap();
        assert_eq!(placements(&out), 40);
    }

    #[test]
    fn rates() {
        assert_eq!(per_sec(10, Duration::from_millis(500)), 20.0);
        assert_eq!(per_sec(10, Duration::ZERO), 0.0);
    }
}
