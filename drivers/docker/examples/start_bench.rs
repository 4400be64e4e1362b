//! Task start through the docker driver against the engine's own create + start of the same
//! container (the same spec the driver builds), and the driver's memory per running container.
//!
//! ```sh
//! bash e2e/containers/dockerd-setup.sh        # prints the socket; or podman-setup.sh
//! cargo run --release -p caravan-driver-docker --example start_bench -- SOCKET [ROUNDS] [RUNNING]
//! ```
//!
//! Each round starts one container through `Driver::start` (image present: inspect, create,
//! start, inspect; the log pump and waiter start) and one through bollard's create + start,
//! alternating which goes first; each is removed untimed. Prints the medians and their ratio.
//! Then `RUNNING` containers (`sleep`) are started through the driver and the process's VmRSS
//! before and after gives the memory per running container (the driver's waiter, log pump and
//! bookkeeping; the engine's own memory is not counted).

use bollard::container::{CreateContainerOptions, RemoveContainerOptions, StartContainerOptions};
use caravan_driver::{Driver, TaskConfig, TaskResources};
use caravan_driver_docker::spec::{self, NodeCpu};
use caravan_driver_docker::{DockerDriver, DockerPluginConfig, DockerTaskConfig};
use serde_json::json;
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/busybox:test";

fn task(root: &std::path::Path, name: &str, args: &str) -> TaskConfig {
    let alloc_id = format!("bench{}-{name}", std::process::id());
    let dir = root.join(&alloc_id);
    for d in ["alloc/logs", "t/local", "t/secrets"] {
        std::fs::create_dir_all(dir.join(d)).expect("bench dirs");
    }
    TaskConfig {
        id: format!("{alloc_id}/t"),
        name: "t".into(),
        alloc_id,
        job_name: "bench".into(),
        task_group: "g".into(),
        driver_config: json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c", args]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        alloc_dir: dir.join("alloc"),
        task_dir: dir.join("t"),
        local_dir: dir.join("t/local"),
        secrets_dir: dir.join("t/secrets"),
        stdout_path: dir.join("alloc/logs/stdout"),
        stderr_path: dir.join("alloc/logs/stderr"),
        resources: TaskResources {
            cpu_shares: 100,
            memory_mb: 32,
            memory_max_mb: 0,
        },
        ..Default::default()
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let sock = args
        .get(1)
        .ok_or("usage: start_bench SOCKET [ROUNDS] [RUNNING]")?;
    let rounds: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let running: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(50);
    let root = std::env::temp_dir().join(format!("caravan-start-bench-{}", std::process::id()));
    let plugin = DockerPluginConfig {
        endpoint: format!("unix://{sock}"),
        ..Default::default()
    };
    let d = DockerDriver::new(plugin.clone());
    let api = bollard::Docker::connect_with_unix(sock, 120, bollard::API_DEFAULT_VERSION)?;

    // Warm-up: one of each.
    let mut via_driver = Vec::new();
    let mut via_engine = Vec::new();
    for round in 0..=rounds {
        for first in [round % 2 == 0, round % 2 != 0] {
            let name = format!("r{round}-{}", if first { "d" } else { "e" });
            let cfg = task(&root, &name, "exec sleep 600");
            if first {
                let t = Instant::now();
                d.start(cfg.clone()).await?;
                let took = t.elapsed();
                d.destroy(&cfg.id, true).await?;
                if round > 0 {
                    via_driver.push(took);
                }
            } else {
                let tc = DockerTaskConfig::parse(&cfg.driver_config)?;
                let s = spec::build(&cfg, &tc, &plugin, NodeCpu::detect())?;
                let t = Instant::now();
                let created = api
                    .create_container(
                        Some(CreateContainerOptions {
                            name: s.name.clone(),
                            platform: None,
                        }),
                        s.config.clone(),
                    )
                    .await?;
                api.start_container(&created.id, None::<StartContainerOptions<String>>)
                    .await?;
                let took = t.elapsed();
                api.remove_container(
                    &created.id,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await?;
                if round > 0 {
                    via_engine.push(took);
                }
            }
        }
    }
    let (md, me) = (median(&mut via_driver), median(&mut via_engine));
    println!("docker.start_driver_p50: {:.1} ms", md.as_secs_f64() * 1e3);
    println!("docker.start_engine_p50: {:.1} ms", me.as_secs_f64() * 1e3);
    println!(
        "docker.start_ratio: {:.2}",
        md.as_secs_f64() / me.as_secs_f64()
    );

    // Memory per running container.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib();
    let mut ids = Vec::new();
    for i in 0..running {
        let cfg = task(&root, &format!("m{i}"), "exec sleep 600");
        d.start(cfg.clone()).await?;
        ids.push(cfg.id);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    println!(
        "docker.client_rss_per_container: {:.1} KiB ({running} running, {before} → {after} KiB)",
        (after.saturating_sub(before)) as f64 / running.max(1) as f64
    );
    for id in ids {
        d.destroy(&id, true).await?;
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
