//! Fetches the task's `artifact` blocks into its directory before the driver starts (Nomad's
//! `artifact_hook.go`), through `caravan-getter`. A failure is recorded as a
//! "Failed Artifact Download" event and is recoverable: the task runner retries it under the
//! restart policy. Artifacts already fetched are not fetched again on a retry.
//!
//! Beyond Nomad: a download that runs longer than the client's progress interval (10 s) shows
//! its progress as one `Downloading Artifacts` event updated in place (every interval, or at
//! each quarter of a known size), so the task's 10 events are not flooded. `chown = true`
//! hands the fetched files to the task's `user`.

use super::{HookContext, HookError, TaskHook};
use caravan_driver::async_trait;
use caravan_getter::{Artifact, Getter, GetterConfig};
use caravan_structs::TaskEvent;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Nomad's event types for this hook.
pub const TASK_EVENT_DOWNLOADING_ARTIFACTS: &str = "Downloading Artifacts";
pub const TASK_EVENT_ARTIFACT_DOWNLOAD_FAILED: &str = "Failed Artifact Download";

/// The hook; `config` is the client's `artifact {}` settings, read at each fetch so a SIGHUP
/// reload applies to the next download.
#[derive(Default)]
pub struct ArtifactHook {
    config: Option<super::SharedGetterConfig>,
    /// Indexes of the artifacts already in place.
    done: Mutex<BTreeSet<usize>>,
}

impl ArtifactHook {
    pub fn new(config: super::SharedGetterConfig) -> Self {
        ArtifactHook {
            config: Some(config),
            done: Mutex::new(BTreeSet::new()),
        }
    }

    fn getter_config(&self, ctx: &HookContext) -> GetterConfig {
        let mut cfg = match &self.config {
            Some(shared) => match shared.read() {
                Ok(c) => c.clone(),
                Err(p) => p.into_inner().clone(),
            },
            None => GetterConfig::default(),
        };
        if cfg.cache_dir.is_none() {
            // <data_dir>/alloc/<id> → <data_dir>/artifact-cache, shared by the node's allocations.
            cfg.cache_dir = ctx
                .alloc_dir
                .root
                .parent()
                .and_then(|p| p.parent())
                .map(|d| d.join("artifact-cache"));
        }
        cfg
    }
}

/// The detail key that marks a progress event (so the next one replaces it).
pub const PROGRESS_DETAIL: &str = "download_progress_bytes";

/// Records a progress event: it replaces the last event when that one is a progress event too,
/// so a long download shows one line that moves instead of many.
pub fn record_progress(events: &mut Vec<TaskEvent>, ev: TaskEvent) {
    match events.last_mut() {
        Some(last)
            if last.event_type == ev.event_type && last.details.contains_key(PROGRESS_DETAIL) =>
        {
            *last = ev
        }
        _ => events.push(ev),
    }
}

/// Whether a progress report is due: never in the first `interval` of a download (small
/// downloads stay quiet), then after `interval` since the last report or on reaching a new
/// quarter of a known total. Returns the quarter reached (0..=4) when due.
fn progress_due(
    since_start: Duration,
    since_last: Option<Duration>,
    last_quarter: u8,
    bytes: u64,
    total: Option<u64>,
    interval: Duration,
) -> Option<u8> {
    let quarter = match total {
        Some(t) if t > 0 => ((bytes.min(t) * 4) / t) as u8,
        _ => 0,
    };
    if since_start < interval {
        return None;
    }
    let time_due = since_last.map(|d| d >= interval).unwrap_or(true);
    (time_due || quarter > last_quarter).then_some(quarter)
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Turns the getter's `(bytes, total)` callbacks into rate-limited progress events.
struct ProgressReporter {
    control: Arc<dyn super::TaskControl>,
    source: String,
    interval: Duration,
    started: Instant,
    /// When the last report went out, and the quarter it showed.
    last: Mutex<(Option<Instant>, u8)>,
}

impl ProgressReporter {
    fn report(&self, bytes: u64, total: Option<u64>) {
        let now = Instant::now();
        let mut last = match self.last.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let Some(quarter) = progress_due(
            now - self.started,
            last.0.map(|t| now - t),
            last.1,
            bytes,
            total,
            self.interval,
        ) else {
            return;
        };
        *last = (Some(now), quarter.max(last.1));
        drop(last);
        let msg = match total {
            Some(t) if t > 0 => format!(
                "Downloaded {} of {} ({}%) of artifact {}",
                human_bytes(bytes),
                human_bytes(t),
                bytes.min(t) * 100 / t,
                self.source
            ),
            _ => format!(
                "Downloaded {} of artifact {}",
                human_bytes(bytes),
                self.source
            ),
        };
        let mut ev = TaskEvent::new(TASK_EVENT_DOWNLOADING_ARTIFACTS, msg);
        ev.details.insert(PROGRESS_DETAIL.into(), bytes.to_string());
        if let Some(t) = total {
            ev.details
                .insert("download_total_bytes".into(), t.to_string());
        }
        self.control.update_event(ev);
    }
}

/// Gives the fetched files to the task's user (`chown = true`). Without a `user` the task
/// runs as the agent's user, who already owns them.
fn chown_to_task_user(user: &str, dest: &std::path::Path) -> Result<(), String> {
    match caravan_driver::process::resolve_user(user) {
        Ok(Some(id)) => caravan_getter::sandbox::chown_recursive(dest, id.uid, id.gid)
            .map_err(|e| format!("chown to the task user {user:?}: {e}")),
        Ok(None) => Ok(()),
        Err(e) => Err(format!("chown to the task user {user:?}: {e}")),
    }
}

fn failed(ctx: &mut HookContext, message: String) -> HookError {
    let mut ev = TaskEvent::new(TASK_EVENT_ARTIFACT_DOWNLOAD_FAILED, message.clone());
    ev.details.insert("download_error".into(), message.clone());
    ctx.events.push(ev);
    HookError {
        hook: "artifacts",
        message,
        recoverable: true,
    }
}

#[async_trait]
impl TaskHook for ArtifactHook {
    fn name(&self) -> &'static str {
        "artifacts"
    }

    async fn prestart(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        // A task re-attached after an agent restart has its artifacts already.
        if ctx.task.artifacts.is_empty() || ctx.restoring {
            return Ok(());
        }
        let done: BTreeSet<usize> = match self.done.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if done.len() == ctx.task.artifacts.len() {
            return Ok(());
        }
        let started = TaskEvent::new(
            TASK_EVENT_DOWNLOADING_ARTIFACTS,
            "Client is downloading artifacts",
        );
        // Recorded at once where possible, so progress events come after it.
        match &ctx.control {
            Some(c) => c.event(started),
            None => ctx.events.push(started),
        }
        let config = self.getter_config(ctx);
        let interval = config.progress_interval;
        let getter = match Getter::new(config) {
            Ok(g) => g,
            Err(e) => {
                return Err(failed(
                    ctx,
                    format!("failed to set up artifact downloads: {e}"),
                ))
            }
        };
        let task_dir: PathBuf = ctx.alloc_dir.task_dir(&ctx.task.name);
        let alloc_root = ctx.alloc_dir.root.clone();
        let artifacts = ctx.task.artifacts.clone();
        for (i, raw) in artifacts.iter().enumerate() {
            if done.contains(&i) {
                continue;
            }
            let artifact = match Artifact::from_nomad_json(raw) {
                Ok(a) => a,
                Err(e) => return Err(failed(ctx, format!("failed to download artifact {i}: {e}"))),
            };
            let artifact = match &ctx.task_env {
                Some(env) => artifact.interpolated(&|s: &str| env.interpolate(s)),
                None => artifact,
            };
            tracing::info!(alloc = %ctx.alloc.id, task = %ctx.task.name, source = %artifact.source, "downloading artifact");
            let reporter = ctx.control.clone().map(|control| ProgressReporter {
                control,
                source: artifact.source.clone(),
                interval,
                started: Instant::now(),
                last: Mutex::new((None, 0)),
            });
            let progress = |bytes: u64, total: Option<u64>| {
                if let Some(r) = &reporter {
                    r.report(bytes, total);
                }
            };
            let fetched = getter
                .fetch(&artifact, &alloc_root, &task_dir, Some(&progress))
                .await;
            let fetched = match fetched {
                Ok(f) if artifact.chown => match chown_to_task_user(&ctx.task.user, &f.destination)
                {
                    Ok(()) => Ok(f),
                    Err(e) => {
                        return Err(failed(
                            ctx,
                            format!("failed to download artifact {:?}: {e}", artifact.source),
                        ))
                    }
                },
                other => other,
            };
            match fetched {
                Ok(f) => {
                    tracing::info!(
                        alloc = %ctx.alloc.id, task = %ctx.task.name, bytes = f.bytes,
                        from_cache = f.from_cache, dest = %f.destination.display(),
                        "artifact downloaded"
                    );
                    match self.done.lock() {
                        Ok(mut g) => g.insert(i),
                        Err(p) => p.into_inner().insert(i),
                    };
                }
                Err(e) => {
                    return Err(failed(
                        ctx,
                        format!("failed to download artifact {:?}: {e}", artifact.source),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::allocdir::AllocDir;
    use caravan_structs::{Allocation, Node, Task};
    use std::io::{BufRead, BufReader, Write};

    #[test]
    fn progress_is_rate_limited() {
        let s = Duration::from_secs;
        // Quiet during the first interval, whatever the bytes.
        assert_eq!(progress_due(s(3), None, 0, 90, Some(100), s(10)), None);
        // Then the first report is due at once.
        assert_eq!(progress_due(s(10), None, 0, 30, Some(100), s(10)), Some(1));
        // A new quarter is due before the interval is up; the same quarter is not.
        assert_eq!(
            progress_due(s(12), Some(s(2)), 1, 55, Some(100), s(10)),
            Some(2)
        );
        assert_eq!(
            progress_due(s(13), Some(s(1)), 2, 60, Some(100), s(10)),
            None
        );
        // Unknown total: every interval.
        assert_eq!(progress_due(s(21), Some(s(10)), 0, 7, None, s(10)), Some(0));
        assert_eq!(progress_due(s(25), Some(s(4)), 0, 9, None, s(10)), None);
    }

    #[test]
    fn progress_events_replace_each_other() {
        let mut events = vec![TaskEvent::new(TASK_EVENT_DOWNLOADING_ARTIFACTS, "start")];
        for n in [1u64, 2, 3] {
            let mut ev = TaskEvent::new(TASK_EVENT_DOWNLOADING_ARTIFACTS, format!("{n}"));
            ev.details.insert(PROGRESS_DETAIL.into(), n.to_string());
            record_progress(&mut events, ev);
        }
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].display_message, "start");
        assert_eq!(events[1].details[PROGRESS_DETAIL], "3");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }

    /// Records events as the task runner does (progress events replace each other).
    #[derive(Default)]
    struct Recorder(Mutex<Vec<TaskEvent>>);

    #[async_trait]
    impl super::super::TaskControl for Recorder {
        fn event(&self, ev: TaskEvent) {
            self.0.lock().unwrap().push(ev);
        }
        fn update_event(&self, ev: TaskEvent) {
            record_progress(&mut self.0.lock().unwrap(), ev);
        }
        fn is_running(&self) -> bool {
            false
        }
        fn set_env(&self, _: std::collections::BTreeMap<String, String>) {}
        fn killed(&self) -> bool {
            false
        }
        fn restart(&self, _: TaskEvent) -> Result<(), String> {
            Err("not running".into())
        }
        fn fail(&self, ev: TaskEvent) {
            self.event(ev)
        }
        async fn signal(&self, _: &str) -> Result<(), String> {
            Err("not running".into())
        }
        async fn exec(
            &self,
            _: Vec<String>,
            _: Duration,
        ) -> Result<caravan_driver::ExecResult, String> {
            Err("not running".into())
        }
    }

    /// Serves `body` in 64 KiB writes with a Content-Length.
    fn serve(body: Vec<u8>) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/big.bin", l.local_addr().unwrap());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                for chunk in body.chunks(64 << 10) {
                    if s.write_all(chunk).is_err() {
                        break;
                    }
                    let _ = s.flush();
                }
            }
        });
        url
    }

    fn ctx(root: &std::path::Path, task: Task, control: Arc<Recorder>) -> HookContext {
        let alloc_dir = AllocDir::new(root, "a1");
        alloc_dir.build().unwrap();
        alloc_dir.build_task("t").unwrap();
        HookContext {
            alloc: Arc::new(Allocation::default()),
            task,
            alloc_dir,
            env: Default::default(),
            stdout_path: root.join("out"),
            stderr_path: root.join("err"),
            events: vec![],
            task_env: None,
            node: Arc::new(Node::default()),
            driver_mounts: false,
            mounts: vec![],
            consul: None,
            control: Some(control),
            vault: None,
            restoring: false,
        }
    }

    #[tokio::test]
    async fn a_download_shows_one_progress_event_and_chown_gives_files_to_the_user() {
        let root = tempfile::tempdir().unwrap();
        let body = vec![5u8; 2 << 20];
        let url = serve(body.clone());
        let config = Arc::new(std::sync::RwLock::new(GetterConfig {
            // Report from the first byte, so the test needs no slow download.
            progress_interval: Duration::ZERO,
            ..GetterConfig::default()
        }));
        let hook = ArtifactHook::new(config);
        let rec = Arc::new(Recorder::default());
        let am_root = nix::unistd::geteuid().is_root();
        let task = Task {
            name: "t".into(),
            user: if am_root {
                "nobody".into()
            } else {
                String::new()
            },
            artifacts: vec![serde_json::json!({
                "GetterSource": url,
                "RelativeDest": "local/",
                "Chown": true,
            })],
            ..Default::default()
        };
        let mut c = ctx(root.path(), task, rec.clone());
        hook.prestart(&mut c).await.unwrap();
        let file = c.alloc_dir.local_dir("t").join("big.bin");
        assert_eq!(std::fs::read(&file).unwrap(), body);

        let events = rec.0.lock().unwrap().clone();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].display_message, "Client is downloading artifacts");
        let last = &events[1];
        assert_eq!(last.event_type, TASK_EVENT_DOWNLOADING_ARTIFACTS);
        assert_eq!(last.details[PROGRESS_DETAIL], (2u64 << 20).to_string());
        assert_eq!(
            last.details["download_total_bytes"],
            (2u64 << 20).to_string()
        );
        assert!(
            last.display_message
                .starts_with("Downloaded 2.0 MiB of 2.0 MiB (100%)"),
            "{}",
            last.display_message
        );

        if am_root {
            use std::os::unix::fs::MetadataExt;
            let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
            assert_eq!(std::fs::metadata(&file).unwrap().uid(), nobody.uid.as_raw());
        } else {
            println!("SKIPPED chown check: needs root to give files to another user");
        }
    }

    #[tokio::test]
    async fn chown_to_a_missing_user_is_a_download_failure_event() {
        let root = tempfile::tempdir().unwrap();
        let url = serve(b"x".to_vec());
        let hook = ArtifactHook::new(Arc::new(std::sync::RwLock::new(GetterConfig::default())));
        let task = Task {
            name: "t".into(),
            user: "no-such-user-caravan".into(),
            artifacts: vec![serde_json::json!({"GetterSource": url, "Chown": true})],
            ..Default::default()
        };
        let mut c = ctx(root.path(), task, Arc::new(Recorder::default()));
        let e = hook.prestart(&mut c).await.unwrap_err();
        assert!(e.recoverable);
        assert!(e.message.contains("no-such-user-caravan"), "{e}");
        let ev = c.events.last().unwrap();
        assert_eq!(ev.event_type, TASK_EVENT_ARTIFACT_DOWNLOAD_FAILED);
    }
}
