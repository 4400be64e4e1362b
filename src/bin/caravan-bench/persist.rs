//! `persist`: the server's durable log and snapshots, in-process (no agent, no network):
//! job registrations committed per second to the redb log (each one fsync'd before it is
//! applied) against the same server in memory, then the time and size of a state snapshot
//! and the time a restart takes to load it and replay the log after it.

use crate::args::Args;
use crate::error::BenchError;
use crate::report::{ms, Report};
use caravan::server::{Server, ServerConfig};
use caravan_structs::{Job, Task, TaskGroup};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Options {
    /// Job registrations timed per server.
    pub entries: usize,
    /// Registrations after the snapshot, replayed by the restart.
    pub tail: usize,
}

impl Options {
    pub fn from_args(a: &Args) -> Result<Options, BenchError> {
        Ok(Options {
            entries: a.count("entries", 2000)?,
            tail: a.count("tail", 500)?,
        })
    }
}

fn job(i: usize) -> Job {
    let mut j = Job {
        id: format!("bench-{i}"),
        datacenters: vec!["dc1".into()],
        ..Default::default()
    };
    j.task_groups.push(TaskGroup {
        name: "g".into(),
        tasks: vec![Task {
            name: "t".into(),
            driver: "raw_exec".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    j
}

fn register(s: &Server, from: usize, n: usize) -> Result<f64, BenchError> {
    let start = Instant::now();
    for i in from..from + n {
        s.job_register(job(i), None)
            .map_err(|e| BenchError::Decode {
                what: "job register".into(),
                detail: e.to_string(),
            })?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        what: what.to_string(),
        source,
    }
}

pub fn run(o: &Options, report: &mut Report) -> Result<(), BenchError> {
    let dir = std::env::temp_dir().join(format!("caravan-bench-persist-{}", std::process::id()));
    let config = ServerConfig {
        data_dir: Some(dir.join("server")),
        // No automatic snapshot during the timed run: it is timed on its own below.
        snapshot_threshold: u64::MAX / 2,
        ..Default::default()
    };
    let result = (|| {
        let mem = Server::new(ServerConfig::default());
        eprintln!("persist: {} registrations in memory", o.entries);
        let rate = register(&mem, 0, o.entries)?;
        report.add("memory_registrations_per_s", rate, 0, "1/s");
        drop(mem);

        let durable = Server::open(config.clone()).map_err(|e| BenchError::Decode {
            what: "open the data dir".into(),
            detail: e.to_string(),
        })?;
        eprintln!("persist: {} registrations to the durable log", o.entries);
        let rate = register(&durable, 0, o.entries)?;
        report.add("durable_registrations_per_s", rate, 0, "1/s");

        let persist = durable.persist.clone().ok_or_else(|| BenchError::Decode {
            what: "durable server".into(),
            detail: "no persistence".into(),
        })?;
        let start = Instant::now();
        let file = persist
            .snapshot_now(&durable.store)
            .map_err(|e| BenchError::Decode {
                what: "snapshot".into(),
                detail: e.to_string(),
            })?;
        report.add("snapshot_ms", ms(start.elapsed()), 1, "ms");
        let size = std::fs::metadata(&file.path)
            .map_err(io("snapshot size"))?
            .len();
        report.add("snapshot_bytes", size as f64, 0, "B");
        register(&durable, o.entries, o.tail)?;
        // The database stays locked while anything holds it.
        drop(persist);
        drop(durable);

        let start = Instant::now();
        let again = Server::open(config.clone()).map_err(|e| BenchError::Decode {
            what: "reopen the data dir".into(),
            detail: e.to_string(),
        })?;
        report.add("restart_ms", ms(start.elapsed()), 1, "ms");
        let replayed = again.recovery.as_ref().map(|r| r.replayed).unwrap_or(0);
        report.add("restart_replayed_entries", replayed as f64, 0, "");
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
