//! `submit-latency`: the time from `PUT /v1/jobs` to the job's allocation reported `running`,
//! on a real `caravan agent -dev`, for N single-allocation raw_exec jobs.

use crate::agent::{reap_leftover_tasks, tasks_with_job_prefix, Agent};
use crate::api::{sleep_job, AllocEvent, Api};
use crate::args::Args;
use crate::error::BenchError;
use crate::report::{ms, percentile, Report};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long one job may take from submit to running before the run is abandoned.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct Options {
    pub jobs: usize,
    pub concurrency: usize,
    pub caravan: PathBuf,
    pub log_level: Option<String>,
}

impl Options {
    pub fn from_args(a: &Args) -> Result<Options, BenchError> {
        Ok(Options {
            jobs: a.count("jobs", 200)?,
            concurrency: a.count("concurrency", 4)?,
            caravan: a.caravan_path()?,
            log_level: a.string("log-level"),
        })
    }
}

pub async fn run(o: Options, report: &mut Report) -> Result<(), BenchError> {
    eprintln!(
        "== submit-latency: {} jobs, {} in flight at a time",
        o.jobs, o.concurrency
    );
    let mut agent = Agent::spawn(&o.caravan, o.log_level.as_deref(), "submit-latency")?;
    let api = Api::new(agent.base_url())?;
    agent.wait_healthy(&api, Duration::from_secs(60)).await?;
    let prefix = format!("caravan-bench-{}-lat-", std::process::id());

    let measured = measure(&o, &api, &mut agent, &prefix).await;
    let ids: Vec<String> = (0..o.jobs).map(|i| format!("{prefix}{i}")).collect();
    let cleanup = cleanup(&api, &mut agent, &ids, &prefix).await;
    let latencies = measured?;
    let leftover = cleanup?;
    agent.discard_log();

    let Latencies {
        running: mut lat,
        mut placed,
        elapsed,
    } = latencies;
    lat.sort();
    placed.sort();
    for (key, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)] {
        if let Some(d) = percentile(&lat, p) {
            report.add(key, ms(d), 0, "ms");
        }
    }
    report.add(
        "throughput",
        lat.len() as f64 / elapsed.as_secs_f64(),
        1,
        "jobs/s",
    );
    for (key, p) in [("placed_p50", 50.0), ("placed_p99", 99.0)] {
        if let Some(d) = percentile(&placed, p) {
            report.add(key, ms(d), 1, "ms");
        }
    }
    report.add("leftover_tasks", leftover as f64, 0, "tasks");
    Ok(())
}

/// What one run measured.
struct Latencies {
    /// Per job, submit to its allocation reported running.
    running: Vec<Duration>,
    /// Per job, submit to its allocation first listed (placed by the scheduler).
    placed: Vec<Duration>,
    /// From the first submit to the last job running.
    elapsed: Duration,
}

/// Submits the jobs, at most `concurrency` waiting to run at once, and times each.
async fn measure(
    o: &Options,
    api: &Api,
    agent: &mut Agent,
    prefix: &str,
) -> Result<Latencies, BenchError> {
    let (watcher, mut events) = api.watch(prefix);
    let result = async {
        let mut submitted: HashMap<String, Instant> = HashMap::new();
        let mut latencies = Vec::with_capacity(o.jobs);
        let mut placed = Vec::with_capacity(o.jobs);
        let mut next = 0usize;
        let start = Instant::now();
        while latencies.len() < o.jobs {
            while submitted.len() < o.concurrency && next < o.jobs {
                let id = format!("{prefix}{next}");
                let t0 = Instant::now();
                api.register(&sleep_job(&id, 1)).await?;
                submitted.insert(id, t0);
                next += 1;
            }
            let ev = match tokio::time::timeout(JOB_TIMEOUT, events.recv()).await {
                Ok(Some(ev)) => ev,
                Ok(None) => {
                    agent.check_alive()?;
                    return Err(BenchError::Decode {
                        what: "watching allocations".into(),
                        detail: "the watcher stopped".into(),
                    });
                }
                Err(_) => {
                    agent.check_alive()?;
                    return Err(BenchError::Timeout {
                        what: format!("{} job(s) to run", submitted.len()),
                        secs: JOB_TIMEOUT.as_secs(),
                        log: agent.log.clone(),
                    });
                }
            };
            match ev {
                AllocEvent::Placed { job, at } => {
                    if let Some(t0) = submitted.get(&job) {
                        placed.push(at.saturating_duration_since(*t0));
                    }
                }
                AllocEvent::Running { job, at } => {
                    if let Some(t0) = submitted.remove(&job) {
                        latencies.push(at.saturating_duration_since(t0));
                        let n = latencies.len();
                        if n.is_multiple_of(20) || n == o.jobs {
                            eprintln!(
                                "  {n}/{} running (last: {:.0} ms)",
                                o.jobs,
                                ms(at.saturating_duration_since(t0))
                            );
                        }
                    }
                }
                AllocEvent::Ended { job, alloc, status } => {
                    return Err(BenchError::AllocFailed {
                        job,
                        alloc,
                        status,
                        log: agent.log.clone(),
                    })
                }
                AllocEvent::Error(e) => return Err(e),
            }
        }
        Ok(Latencies {
            running: latencies,
            placed,
            elapsed: start.elapsed(),
        })
    }
    .await;
    watcher.abort();
    result
}

/// Purges the jobs, stops the agent with SIGINT and checks that no task outlived it; returns
/// how many task processes did (and were killed).
pub async fn cleanup(
    api: &Api,
    agent: &mut Agent,
    job_ids: &[String],
    prefix: &str,
) -> Result<usize, BenchError> {
    eprintln!(
        "stopping {} job(s); {} task process(es) running",
        job_ids.len(),
        tasks_with_job_prefix(prefix).len()
    );
    let mut first_err = None;
    for id in job_ids {
        // A job never submitted answers 404; that is fine.
        match api.purge(id).await {
            Ok(()) | Err(BenchError::Status { status: 404, .. }) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    agent.stop().await?;
    let left = reap_leftover_tasks(prefix).await;
    match first_err {
        Some(e) => Err(e),
        None => Ok(left),
    }
}
