//! Start latency of the exec driver beside raw_exec: starts `/bin/true` N times with each
//! driver (one after another, each waited for and destroyed before the next) and prints the
//! p50/p99 of the time `Driver::start` takes, i.e. until the command has been exec'd.
//! Needs root. Run: `cargo run --release -p caravan-driver-exec --example start_latency [N]`.

use caravan_driver::{Driver, TaskConfig};
use caravan_driver_exec::{ExecDriver, ExecDriverConfig};
use caravan_driver_raw_exec::RawExecDriver;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn task(dir: &Path, i: usize) -> TaskConfig {
    let task_dir = dir.join(format!("t{i}"));
    for sub in ["local", "secrets", "tmp"] {
        let _ = std::fs::create_dir_all(task_dir.join(sub));
    }
    let _ = std::fs::create_dir_all(dir.join("alloc"));
    let mut cfg = TaskConfig {
        id: format!("bench-{i}/t"),
        name: "t".into(),
        alloc_id: format!("bench-{}-{i}", std::process::id()),
        alloc_dir: dir.join("alloc"),
        local_dir: task_dir.join("local"),
        secrets_dir: task_dir.join("secrets"),
        task_dir,
        ..Default::default()
    };
    cfg.env.insert("PATH".into(), "/usr/bin:/bin".into());
    cfg.driver_config
        .insert("command".into(), "/bin/true".into());
    cfg
}

async fn measure(d: &dyn Driver, dir: &Path, n: usize) -> Result<Vec<Duration>, String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let cfg = task(dir, i);
        let t = Instant::now();
        let h = d.start(cfg).await.map_err(|e| e.to_string())?;
        out.push(t.elapsed());
        d.wait(&h.task_id).await.map_err(|e| e.to_string())?;
        d.destroy(&h.task_id, true)
            .await
            .map_err(|e| e.to_string())?;
    }
    out.sort();
    Ok(out)
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("start_latency needs root (the exec driver does)");
        std::process::exit(2);
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("caravan-exec-bench-{}", std::process::id()));
    let exec = ExecDriver::new(ExecDriverConfig {
        cgroup_parent: "caravan-bench".into(),
        ..Default::default()
    });
    let raw = RawExecDriver::new(true);
    for (name, d) in [
        ("raw_exec", &raw as &dyn Driver),
        ("exec", &exec as &dyn Driver),
    ] {
        // One warm-up start each.
        if let Err(e) = measure(d, &dir, 3).await {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
        match measure(d, &dir, n).await {
            Ok(v) => println!(
                "{name}.start_latency: p50 {:.2} ms, p99 {:.2} ms over {n} starts",
                pct(&v, 0.50).as_secs_f64() * 1000.0,
                pct(&v, 0.99).as_secs_f64() * 1000.0
            ),
            Err(e) => {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
