//! `caravan-bench driver-start`: how long `Driver::start` takes (until the command has been
//! exec'd) for exec beside raw_exec, in-process and without an agent: `/bin/true` started N
//! times with each driver, one after another, each waited for and destroyed before the next.
//! Both drivers are measured as tasks now run (under the task shim, `caravan_driver::shim`)
//! and without the shim, so its cost shows. Needs root (the exec driver does).

use crate::error::BenchError;
use crate::report::Report;
use caravan_driver::{Driver, TaskConfig};
use caravan_driver_exec::{ExecDriver, ExecDriverConfig};
use caravan_driver_raw_exec::RawExecDriver;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Options {
    pub starts: usize,
}

impl Options {
    pub fn from_args(a: &crate::args::Args) -> Result<Options, BenchError> {
        Ok(Options {
            starts: a.count("starts", 300)?,
        })
    }
}

fn task(dir: &Path, i: usize) -> TaskConfig {
    let task_dir = dir.join(format!("t{i}"));
    for sub in ["local", "secrets", "tmp"] {
        let _ = std::fs::create_dir_all(task_dir.join(sub));
    }
    let logs = dir.join("alloc/logs");
    let _ = std::fs::create_dir_all(&logs);
    let mut cfg = TaskConfig {
        id: format!("bench-{i}/t"),
        name: "t".into(),
        alloc_id: format!("bench-{}-{i}", std::process::id()),
        alloc_dir: dir.join("alloc"),
        local_dir: task_dir.join("local"),
        secrets_dir: task_dir.join("secrets"),
        // Output to files in alloc/logs, as the client's FIFOs are: the shim's status file
        // goes beside them.
        stdout_path: logs.join("t.stdout"),
        stderr_path: logs.join("t.stderr"),
        task_dir,
        ..Default::default()
    };
    cfg.env.insert("PATH".into(), "/usr/bin:/bin".into());
    cfg.driver_config
        .insert("command".into(), "/bin/true".into());
    cfg
}

async fn measure(d: &dyn Driver, dir: &Path, n: usize) -> Result<Vec<Duration>, BenchError> {
    let fail = |e: caravan_driver::DriverError| BenchError::Decode {
        what: format!("{} task", d.name()),
        detail: e.to_string(),
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let cfg = task(dir, i);
        let t = Instant::now();
        let h = d.start(cfg).await.map_err(fail)?;
        out.push(t.elapsed());
        let exit = d.wait(&h.task_id).await.map_err(fail)?;
        if !exit.successful() {
            return Err(BenchError::Decode {
                what: format!("{} task", d.name()),
                detail: format!("/bin/true did not succeed: {exit:?}"),
            });
        }
        d.destroy(&h.task_id, true).await.map_err(fail)?;
    }
    out.sort();
    Ok(out)
}

fn ms(v: &[Duration], p: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1000.0
}

pub async fn run(o: Options, report: &mut Report) -> Result<(), BenchError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(BenchError::Usage(
            "driver-start needs root (the exec driver does)".into(),
        ));
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("caravan-bench-{}-driver-start", std::process::id()));
    eprintln!(
        "== driver-start: {} starts of /bin/true per driver",
        o.starts
    );
    let exec = ExecDriver::new(ExecDriverConfig {
        cgroup_parent: "caravan-bench".into(),
        ..Default::default()
    });
    let raw = RawExecDriver::new(true);
    let result = async {
        for shim in [false, true] {
            if shim {
                caravan_driver::shim::install(&dir.join("bin")).map_err(|e| BenchError::Io {
                    what: "installing the task shim".into(),
                    source: e,
                })?;
            }
            let suffix = if shim { "" } else { "_without_shim" };
            for d in [&raw as &dyn Driver, &exec as &dyn Driver] {
                // Warm-up starts, not counted.
                measure(d, &dir, 3).await?;
                let v = measure(d, &dir, o.starts).await?;
                report.add(&format!("{}{suffix}_p50", d.name()), ms(&v, 0.50), 2, "ms");
                report.add(&format!("{}{suffix}_p99", d.name()), ms(&v, 0.99), 2, "ms");
            }
        }
        Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}
