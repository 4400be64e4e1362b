//! C1M's shape on the in-memory snapshot, for profiling the scheduler without building the
//! server: `cargo run --release -p caravan-scheduler --example c1m -- [nodes] [jobs] [count]
//! [index|scan]`. `index` (the default) answers `node_allocated` from a per-node index;
//! `scan` makes the scheduler sum every node's allocations. `caravan-bench scheduler --jobs`
//! is the benchmark of record (real state store and FSM).

use caravan_scheduler::bench::{c1m_job, c1m_nodes};
use caravan_scheduler::{process, MemSnapshot, SchedulerConfig};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let jobs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let count: i32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let index = args.next().as_deref() != Some("scan");
    let mut snap = MemSnapshot::new();
    for n in c1m_nodes(nodes, 1) {
        snap.upsert_node(n);
    }
    snap.keep_node_index(index);
    let cfg = SchedulerConfig {
        rng_seed: Some(1),
        ..Default::default()
    };
    let (mut sched, mut apply) = (Duration::ZERO, Duration::ZERO);
    let (mut placed, mut failed) = (0usize, 0usize);
    let start = Instant::now();
    for j in 0..jobs {
        let job = c1m_job(&format!("c1m-{j}"), count);
        snap.upsert_job(job.clone());
        let mut eval =
            caravan_structs::Evaluation::for_job(&job, caravan_structs::TRIGGER_JOB_REGISTER);
        eval.eval_type = job.job_type.clone();
        let t0 = Instant::now();
        let out = match process(&eval, &snap, &cfg) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        let t1 = Instant::now();
        placed += out
            .plan
            .node_allocation
            .values()
            .map(Vec::len)
            .sum::<usize>();
        failed += out.failed_tg_allocs.len();
        snap.apply_plan(&out.plan);
        sched += t1 - t0;
        apply += t1.elapsed();
        if (j + 1) % 100 == 0 {
            eprintln!("{} jobs {:.1} s", j + 1, start.elapsed().as_secs_f64());
        }
    }
    let wall = start.elapsed();
    println!(
        "placed {placed} (failed groups {failed}) in {:.2} s: schedule {:.2} s, apply {:.2} s, {:.0} placements/s",
        wall.as_secs_f64(),
        sched.as_secs_f64(),
        apply.as_secs_f64(),
        placed as f64 / wall.as_secs_f64()
    );
}
