//! `footprint`: how fast `caravan agent -dev` becomes healthy and how much memory it holds,
//! idle and with N running allocations.

use crate::agent::Agent;
use crate::api::{sleep_job_on, AllocEvent, Api};
use crate::args::Args;
use crate::error::BenchError;
use crate::report::{ms, Report};
use crate::submit_latency::cleanup;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Time the agent gets to settle before each memory reading.
const SETTLE: Duration = Duration::from_secs(2);
/// How long the allocations may take to all run.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone)]
pub struct Options {
    pub allocs: usize,
    /// The driver of the allocations' task: `raw_exec` (default) or `exec` (needs root).
    pub driver: String,
    pub caravan: PathBuf,
    pub log_level: Option<String>,
}

impl Options {
    pub fn from_args(a: &Args) -> Result<Options, BenchError> {
        Ok(Options {
            allocs: a.count("allocs", 50)?,
            driver: match a.string("driver").as_deref() {
                None | Some("raw_exec") => "raw_exec".into(),
                Some("exec") => "exec".into(),
                Some(other) => {
                    return Err(BenchError::Usage(format!(
                        "--driver {other:?}: use raw_exec or exec"
                    )))
                }
            },
            caravan: a.caravan_path()?,
            log_level: a.string("log-level"),
        })
    }
}

pub async fn run(o: Options, report: &mut Report) -> Result<(), BenchError> {
    eprintln!(
        "== footprint: idle, then {} allocations ({})",
        o.allocs, o.driver
    );
    let mut agent = Agent::spawn(&o.caravan, o.log_level.as_deref(), "footprint")?;
    let api = Api::new(agent.base_url())?;
    let healthy = agent.wait_healthy(&api, Duration::from_secs(60)).await?;
    report.add("start_to_healthy", ms(healthy), 0, "ms");

    let prefix = format!("caravan-bench-{}-fp-", std::process::id());
    let job_id = format!("{prefix}0");
    let measured = measure(&o, &api, &mut agent, &job_id, report).await;
    let cleanup = cleanup(&api, &mut agent, &[job_id], &prefix).await;
    measured?;
    let leftover = cleanup?;
    agent.discard_log();
    report.add("leftover_tasks", leftover as f64, 0, "tasks");
    Ok(())
}

async fn measure(
    o: &Options,
    api: &Api,
    agent: &mut Agent,
    job_id: &str,
    report: &mut Report,
) -> Result<(), BenchError> {
    tokio::time::sleep(SETTLE).await;
    agent.check_alive()?;
    let idle = agent.rss_kib()?;
    report.add("idle_rss", mib(idle), 1, "MiB");

    let (watcher, mut events) = api.watch(job_id);
    let start = Instant::now();
    let result = async {
        api.register(&sleep_job_on(job_id, o.allocs, &o.driver))
            .await?;
        let mut running = 0usize;
        while running < o.allocs {
            let left = RUN_TIMEOUT.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, events.recv()).await {
                Ok(Some(AllocEvent::Placed { .. })) => {}
                Ok(Some(AllocEvent::Running { .. })) => {
                    running += 1;
                    if running.is_multiple_of(10) || running == o.allocs {
                        eprintln!("  {running}/{} running", o.allocs);
                    }
                }
                Ok(Some(AllocEvent::Ended { job, alloc, status })) => {
                    return Err(BenchError::AllocFailed {
                        job,
                        alloc,
                        status,
                        log: agent.log.clone(),
                    })
                }
                Ok(Some(AllocEvent::Error(e))) => return Err(e),
                Ok(None) | Err(_) => {
                    agent.check_alive()?;
                    return Err(BenchError::Timeout {
                        what: format!("{} allocations to run ({running} did)", o.allocs),
                        secs: RUN_TIMEOUT.as_secs(),
                        log: agent.log.clone(),
                    });
                }
            }
        }
        Ok(start.elapsed())
    }
    .await;
    watcher.abort();
    let all_running = result?;
    report.add(
        &format!("time_to_{}_running", o.allocs),
        ms(all_running),
        0,
        "ms",
    );

    tokio::time::sleep(SETTLE).await;
    agent.check_alive()?;
    let busy = agent.rss_kib()?;
    report.add(&format!("rss_{}_allocs", o.allocs), mib(busy), 1, "MiB");
    let per_alloc = busy.saturating_sub(idle) as f64 / o.allocs as f64;
    report.add("rss_per_alloc", per_alloc, 0, "KiB");
    // Each task's parent outside the agent (see caravan_driver::shim).
    let (shims, shim_kib) = agent.shims_rss_kib();
    report.add("task_shims", shims as f64, 0, "");
    if shims > 0 {
        report.add(
            "shim_rss_per_task",
            shim_kib as f64 / shims as f64,
            0,
            "KiB",
        );
    }
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
