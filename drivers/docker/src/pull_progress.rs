//! Image pull progress as task events: one `Driver` event per pull that says which image is
//! being downloaded, then is updated in place (the client replaces the task's last progress
//! event, as it does for `Downloading Artifacts`) with the layers and bytes done, at most once
//! per interval, and a last time when the pull ends. A pull shared by several tasks (the same
//! image started at once) reports to each of them.

use bollard::models::CreateImageInfo;
use caravan_driver::task_events::TaskEventSender;
use caravan_driver::{TaskConfig, TaskDriverEvent};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a running pull reports by default (the client's artifact progress interval).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The task a pull reports to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watcher {
    pub task_id: String,
    pub alloc_id: String,
    pub task_name: String,
}

impl Watcher {
    pub fn of(task: &TaskConfig) -> Watcher {
        Watcher {
            task_id: task.id.clone(),
            alloc_id: task.alloc_id.clone(),
            task_name: task.name.clone(),
        }
    }
}

/// The tasks waiting for one pull (a task that joins a running pull is added).
pub type Watchers = Arc<Mutex<Vec<Watcher>>>;

#[derive(Debug, Default, Clone, Copy)]
struct Layer {
    current: u64,
    total: u64,
    done: bool,
}

/// The state of one pull and where its reports go.
pub struct Progress {
    image: String,
    events: TaskEventSender,
    watchers: Watchers,
    interval: Duration,
    layers: BTreeMap<String, Layer>,
    started: Instant,
    last_report: Instant,
}

impl Progress {
    /// Reports the start of the pull at once.
    pub fn start(
        image: &str,
        events: TaskEventSender,
        watchers: Watchers,
        interval: Duration,
    ) -> Progress {
        let now = Instant::now();
        let p = Progress {
            image: image.to_string(),
            events,
            watchers,
            interval,
            layers: BTreeMap::new(),
            started: now,
            last_report: now,
        };
        p.emit(format!("Downloading image {image}"));
        p
    }

    /// Takes one message of the engine's pull stream; reports when the interval has passed.
    pub fn update(&mut self, info: &CreateImageInfo) {
        if !self.apply(info) {
            return;
        }
        if self.last_report.elapsed() >= self.interval {
            self.last_report = Instant::now();
            let msg = format!("Downloading image {}: {}", self.image, self.summary());
            self.emit(msg);
        }
    }

    /// Reports the end of a successful pull.
    pub fn finish(&mut self) {
        for l in self.layers.values_mut() {
            l.done = true;
            l.current = l.current.max(l.total);
        }
        let msg = format!(
            "Downloaded image {}: {} in {:.1}s",
            self.image,
            self.summary(),
            self.started.elapsed().as_secs_f64()
        );
        self.emit(msg);
    }

    /// Records what the message says about a layer; false when it is about none.
    fn apply(&mut self, info: &CreateImageInfo) -> bool {
        let (Some(id), Some(status)) = (info.id.as_deref(), info.status.as_deref()) else {
            return false;
        };
        // The first message names the tag ("Pulling from repo", id = tag): not a layer.
        let layer_status = [
            "Pulling fs layer",
            "Waiting",
            "Downloading",
            "Verifying Checksum",
            "Download complete",
            "Extracting",
            "Pull complete",
            "Already exists",
            "Copying blob",
        ]
        .iter()
        .any(|s| status.starts_with(s));
        if !layer_status {
            return false;
        }
        let layer = self.layers.entry(id.to_string()).or_default();
        let detail = info.progress_detail.as_ref();
        let total = detail.and_then(|d| d.total).unwrap_or(0).max(0) as u64;
        let current = detail.and_then(|d| d.current).unwrap_or(0).max(0) as u64;
        if status.starts_with("Downloading") {
            layer.total = layer.total.max(total);
            layer.current = layer.current.max(current);
        } else if status.starts_with("Download complete")
            || status.starts_with("Verifying Checksum")
            || status.starts_with("Extracting")
            || status.starts_with("Pull complete")
            || status.starts_with("Already exists")
        {
            layer.done = true;
            layer.current = layer.current.max(layer.total);
        }
        true
    }

    fn bytes(&self) -> (u64, u64) {
        self.layers
            .values()
            .fold((0, 0), |(c, t), l| (c + l.current, t + l.total))
    }

    fn summary(&self) -> String {
        let done = self.layers.values().filter(|l| l.done).count();
        let (current, total) = self.bytes();
        let mut s = format!("{done} of {} layers", self.layers.len());
        if total > 0 {
            s.push_str(&format!(", {} of {}", human(current), human(total)));
        } else if current > 0 {
            s.push_str(&format!(", {}", human(current)));
        }
        s
    }

    fn emit(&self, message: String) {
        let (current, total) = self.bytes();
        let done = self.layers.values().filter(|l| l.done).count();
        let details = BTreeMap::from([
            ("image".to_string(), self.image.clone()),
            ("layers_total".to_string(), self.layers.len().to_string()),
            ("layers_downloaded".to_string(), done.to_string()),
            ("bytes_downloaded".to_string(), current.to_string()),
            ("bytes_total".to_string(), total.to_string()),
        ]);
        let watchers = self
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for w in watchers {
            // No receiver (no client listening) is fine.
            let _ = self.events.send(TaskDriverEvent {
                task_id: w.task_id,
                alloc_id: w.alloc_id,
                task_name: w.task_name,
                message: message.clone(),
                details: details.clone(),
                progress_bytes: Some(current),
            });
        }
    }
}

/// Tells a task that joins a pull already running for another task (its own reports follow).
pub fn joined(events: &TaskEventSender, watcher: &Watcher, image: &str) {
    let _ = events.send(TaskDriverEvent {
        task_id: watcher.task_id.clone(),
        alloc_id: watcher.alloc_id.clone(),
        task_name: watcher.task_name.clone(),
        message: format!("Downloading image {image} (a pull already in progress)"),
        details: BTreeMap::from([("image".to_string(), image.to_string())]),
        progress_bytes: Some(0),
    });
}

/// `1.2 MiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ProgressDetail;

    fn info(id: &str, status: &str, current: i64, total: i64) -> CreateImageInfo {
        CreateImageInfo {
            id: Some(id.into()),
            status: Some(status.into()),
            progress_detail: Some(ProgressDetail {
                current: Some(current),
                total: Some(total),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn counts_layers_and_bytes_and_reports_to_every_watcher() {
        let events = caravan_driver::task_events::channel(64);
        let mut rx = events.subscribe();
        let w = |t: &str| Watcher {
            task_id: format!("a/{t}"),
            alloc_id: "a".into(),
            task_name: t.into(),
        };
        let watchers: Watchers = Arc::new(Mutex::new(vec![w("one")]));
        let mut p = Progress::start("reg:5000/app:1", events, watchers.clone(), Duration::ZERO);
        let first = rx.try_recv().unwrap();
        assert_eq!(
            (first.task_id.as_str(), first.message.as_str()),
            ("a/one", "Downloading image reg:5000/app:1")
        );
        watchers.lock().unwrap().push(w("two"));
        p.update(&CreateImageInfo {
            id: Some("1".into()),
            status: Some("Pulling from app".into()),
            ..Default::default()
        });
        assert!(rx.try_recv().is_err(), "the tag line is no layer");
        p.update(&info("l1", "Downloading", 1024, 2048));
        p.update(&info("l2", "Already exists", 0, 0));
        let a = rx.try_recv().unwrap();
        let b = rx.try_recv().unwrap();
        assert_eq!((a.task_id.as_str(), b.task_id.as_str()), ("a/one", "a/two"));
        assert_eq!(a.progress_bytes, Some(1024));
        assert_eq!(
            a.message,
            "Downloading image reg:5000/app:1: 0 of 1 layers, 1.0 KiB of 2.0 KiB"
        );
        let c = rx.try_recv().unwrap();
        assert_eq!(c.details["layers_total"], "2");
        assert_eq!(c.details["layers_downloaded"], "1");
        let _ = rx.try_recv();
        p.finish();
        let done = rx.try_recv().unwrap();
        assert!(
            done.message
                .starts_with("Downloaded image reg:5000/app:1: 2 of 2 layers, 2.0 KiB of 2.0 KiB"),
            "{}",
            done.message
        );
        assert_eq!(done.details["bytes_downloaded"], "2048");
    }

    #[test]
    fn reports_at_most_once_per_interval() {
        let events = caravan_driver::task_events::channel(64);
        let mut rx = events.subscribe();
        let watchers: Watchers = Arc::new(Mutex::new(vec![Watcher {
            task_id: "a/t".into(),
            alloc_id: "a".into(),
            task_name: "t".into(),
        }]));
        let mut p = Progress::start("img:1", events, watchers, Duration::from_secs(3600));
        rx.try_recv().unwrap();
        p.update(&info("l1", "Downloading", 1, 10));
        assert!(rx.try_recv().is_err());
        p.finish();
        assert!(rx
            .try_recv()
            .unwrap()
            .message
            .starts_with("Downloaded image img:1"));
    }
}
