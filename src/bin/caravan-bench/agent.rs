//! The `caravan agent -dev` process a benchmark measures: spawning it on a free port with its
//! output in a temp file, waiting for it to be healthy, reading its memory, stopping it with
//! SIGINT, and finding task processes it may have left behind.

use crate::api::Api;
use crate::error::BenchError;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the agent gets to exit after SIGINT before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(60);

pub struct Agent {
    child: Option<Child>,
    pub pid: u32,
    pub port: u16,
    pub log: PathBuf,
    spawned_at: Instant,
}

impl Agent {
    /// Spawns `<caravan> agent -dev -http-port=<free port>` with stdout and stderr in a temp
    /// file named after `tag`.
    pub fn spawn(caravan: &Path, log_level: Option<&str>, tag: &str) -> Result<Agent, BenchError> {
        Agent::spawn_with(caravan, log_level, tag, &[])
    }

    /// [`Agent::spawn`] with more arguments after `-dev` (`-config=...`, `-data-dir=...`).
    pub fn spawn_with(
        caravan: &Path,
        log_level: Option<&str>,
        tag: &str,
        extra: &[String],
    ) -> Result<Agent, BenchError> {
        if !caravan.is_file() {
            return Err(BenchError::CaravanMissing(caravan.to_path_buf()));
        }
        let port = free_port()?;
        let log =
            std::env::temp_dir().join(format!("caravan-bench-{}-{tag}.log", std::process::id()));
        let out = File::create(&log).map_err(|e| BenchError::Io {
            what: format!("creating the agent log {}", log.display()),
            source: e,
        })?;
        let err = out.try_clone().map_err(|e| BenchError::Io {
            what: "duplicating the agent log handle".into(),
            source: e,
        })?;
        let mut cmd = Command::new(caravan);
        cmd.arg("agent")
            .arg("-dev")
            .arg(format!("-http-port={port}"))
            .args(extra);
        if let Some(level) = log_level {
            cmd.arg(format!("-log-level={level}"));
        }
        let spawned_at = Instant::now();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| BenchError::Io {
                what: format!("starting {}", caravan.display()),
                source: e,
            })?;
        eprintln!(
            "started {} agent -dev (pid {}) on 127.0.0.1:{port}, output in {}",
            caravan.display(),
            child.id(),
            log.display()
        );
        Ok(Agent {
            pid: child.id(),
            child: Some(child),
            port,
            log,
            spawned_at,
        })
    }

    /// [`Agent::spawn_with`] given `config` (HCL) as its config file and its own data dir,
    /// both in `$TMPDIR/caravan-bench-<pid>-<tag>`; returns that directory (the caller removes
    /// it once the run succeeded) and the data dir.
    pub fn spawn_configured(
        caravan: &Path,
        log_level: Option<&str>,
        tag: &str,
        config: &str,
    ) -> Result<(Agent, PathBuf, PathBuf), BenchError> {
        let dir = std::env::temp_dir().join(format!("caravan-bench-{}-{tag}", std::process::id()));
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir).map_err(|e| BenchError::Io {
            what: format!("creating {}", data_dir.display()),
            source: e,
        })?;
        let file = dir.join("agent.hcl");
        std::fs::write(&file, config).map_err(|e| BenchError::Io {
            what: format!("writing {}", file.display()),
            source: e,
        })?;
        let extra = [
            format!("-config={}", file.display()),
            format!("-data-dir={}", data_dir.display()),
        ];
        let agent = Agent::spawn_with(caravan, log_level, tag, &extra)?;
        Ok((agent, dir, data_dir))
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls `/v1/agent/health` until it answers 200 (there is nothing to block on before the
    /// listener exists); returns the time from spawn to that answer.
    pub async fn wait_healthy(
        &mut self,
        api: &Api,
        limit: Duration,
    ) -> Result<Duration, BenchError> {
        loop {
            if api.healthy().await {
                return Ok(self.spawned_at.elapsed());
            }
            self.check_alive()?;
            if self.spawned_at.elapsed() > limit {
                return Err(BenchError::NotHealthy {
                    secs: limit.as_secs(),
                    log: self.log.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// An error when the agent process has already exited.
    pub fn check_alive(&mut self) -> Result<(), BenchError> {
        let Some(child) = self.child.as_mut() else {
            return Err(BenchError::AgentExited {
                status: "already stopped".into(),
                log: self.log.clone(),
            });
        };
        match child.try_wait() {
            Ok(Some(status)) => Err(BenchError::AgentExited {
                status: status.to_string(),
                log: self.log.clone(),
            }),
            Ok(None) => Ok(()),
            Err(e) => Err(BenchError::Io {
                what: "checking on the agent process".into(),
                source: e,
            }),
        }
    }

    /// The agent's resident set size in KiB (`VmRSS` in /proc/<pid>/status).
    pub fn rss_kib(&self) -> Result<u64, BenchError> {
        let path = format!("/proc/{}/status", self.pid);
        let text = std::fs::read_to_string(&path).map_err(|e| BenchError::Io {
            what: format!("reading {path}"),
            source: e,
        })?;
        parse_vm_rss(&text).ok_or_else(|| BenchError::Decode {
            what: path,
            detail: "no VmRSS line".into(),
        })
    }

    /// The task shims the agent started (its children named `caravan-shim`): how many, and
    /// their resident set sizes added up, in KiB.
    pub fn shims_rss_kib(&self) -> (usize, u64) {
        let mut n = 0;
        let mut total = 0;
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return (0, 0);
        };
        for entry in dir.flatten() {
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
            };
            let ppid_ok = field("PPid:").and_then(|p| p.parse::<u32>().ok()) == Some(self.pid);
            if ppid_ok && field("Name:").as_deref() == Some("caravan-shim") {
                n += 1;
                total += parse_vm_rss(&status).unwrap_or(0);
            }
        }
        (n, total)
    }

    /// SIGINT, then waits for the agent to exit (SIGKILL after [`STOP_GRACE`]). Returns how
    /// it exited.
    pub async fn stop(&mut self) -> Result<String, BenchError> {
        let Some(mut child) = self.child.take() else {
            return Ok("already stopped".into());
        };
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGINT);
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    eprintln!(
                        "agent exited ({status}) {:.1} s after SIGINT",
                        start.elapsed().as_secs_f64()
                    );
                    return Ok(status.to_string());
                }
                Ok(None) if start.elapsed() < STOP_GRACE => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                _ => {
                    eprintln!("agent still running {STOP_GRACE:?} after SIGINT: killing it");
                    let _ = child.kill();
                    let status = child.wait().map_err(|e| BenchError::Io {
                        what: "waiting for the killed agent".into(),
                        source: e,
                    })?;
                    return Ok(format!("killed after SIGINT timed out ({status})"));
                }
            }
        }
    }

    /// Removes the agent's output file (kept when a benchmark fails).
    pub fn discard_log(&self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Drop for Agent {
    /// A benchmark that fails half-way still stops its agent (which stops its tasks).
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGINT);
        let start = Instant::now();
        while start.elapsed() < STOP_GRACE {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A TCP port on 127.0.0.1 nothing listens on right now.
pub fn free_port() -> Result<u16, BenchError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| BenchError::Io {
        what: "finding a free port".into(),
        source: e,
    })?;
    let port = l
        .local_addr()
        .map_err(|e| BenchError::Io {
            what: "finding a free port".into(),
            source: e,
        })?
        .port();
    Ok(port)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(n),
        _ => None,
    }
}

/// Live processes whose environment has `NOMAD_JOB_ID=<prefix>...`: the tasks of this run's
/// jobs (they keep that variable even after the agent is gone and they are reparented).
pub fn tasks_with_job_prefix(prefix: &str) -> Vec<u32> {
    let needle = format!("NOMAD_JOB_ID={prefix}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| {
                    env.split(|b| *b == 0)
                        .any(|var| var.starts_with(needle.as_bytes()))
                })
                .unwrap_or(false)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// After the agent has stopped: counts the tasks of this run still alive, kills them (they
/// were started by the agent this benchmark started) and returns how many there were.
pub async fn reap_leftover_tasks(prefix: &str) -> usize {
    // The agent waits for its tasks on shutdown; give stragglers a moment anyway.
    let start = Instant::now();
    let mut left = tasks_with_job_prefix(prefix);
    while !left.is_empty() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = tasks_with_job_prefix(prefix);
    }
    if left.is_empty() {
        eprintln!("no task processes left behind");
    } else {
        eprintln!(
            "WARNING: {} task process(es) outlived the agent: {left:?}; killing them",
            left.len()
        );
        for pid in &left {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
    }
    left.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss() {
        let s = "Name:\tcaravan\nVmPeak:\t  99999 kB\nVmRSS:\t   14532 kB\nThreads:\t5\n";
        assert_eq!(parse_vm_rss(s), Some(14532));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t 12 MB\n"), None);
    }

    #[test]
    fn own_rss_is_readable() {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(parse_vm_rss(&text).unwrap() > 0);
    }

    #[test]
    fn finds_processes_by_job_env() {
        let prefix = format!("caravan-bench-test-{}-", std::process::id());
        let mut child = Command::new("/bin/sleep")
            .arg("30")
            .env("NOMAD_JOB_ID", format!("{prefix}7"))
            .spawn()
            .unwrap();
        // Other tests fork concurrently; give the new process a moment to show up exec'd.
        let mut found = tasks_with_job_prefix(&prefix);
        for _ in 0..100 {
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            found = tasks_with_job_prefix(&prefix);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, vec![child.id()]);
        assert!(tasks_with_job_prefix(&prefix).is_empty());
    }

    #[test]
    fn free_ports_are_bindable() {
        let p = free_port().unwrap();
        assert!(p > 0);
        // A child forked by a concurrent test may hold the probe socket until it execs.
        let bound = (0..100).any(|_| {
            let ok = std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
            if !ok {
                std::thread::sleep(Duration::from_millis(20));
            }
            ok
        });
        assert!(bound, "port {p} stayed in use");
    }
}
