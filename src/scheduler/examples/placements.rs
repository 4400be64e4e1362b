//! Measures scheduler placements per second on a synthetic cluster:
//! `cargo run --release -p caravan-scheduler --example placements -- [nodes] [count]`.

use caravan_scheduler::bench::{synthetic_cluster, synthetic_job};
use caravan_scheduler::{process, SchedulerConfig};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let count: i32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mut snap = synthetic_cluster(nodes, 1);
    let job = synthetic_job("bench", count);
    snap.upsert_job(job.clone());
    let eval = caravan_structs::Evaluation::for_job(&job, caravan_structs::TRIGGER_JOB_REGISTER);
    let cfg = SchedulerConfig {
        rng_seed: Some(1),
        ..Default::default()
    };
    let start = Instant::now();
    let out = match process(&eval, &snap, &cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let elapsed = start.elapsed();
    let placed: usize = out.plan.node_allocation.values().map(Vec::len).sum();
    println!(
        "{nodes} nodes, {placed}/{count} placed in {:.1} ms: {:.0} placements/s",
        elapsed.as_secs_f64() * 1e3,
        placed as f64 / elapsed.as_secs_f64()
    );
}
