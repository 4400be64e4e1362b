//! Records what drivers report about their tasks while they work on them
//! ([`caravan_driver::Driver::task_events`]: image pull progress) as task events of type
//! `Driver` (Nomad's `TaskDriverMessage`). A progress report replaces the task's last event when
//! that one is a progress report too (see `hooks::artifact::record_progress`), so a long pull
//! shows one line that moves.

use super::hooks::artifact::PROGRESS_DETAIL;
use super::hooks::TaskControl;
use super::ClientShared;
use caravan_driver::{Driver, TaskDriverEvent};
use caravan_structs::TaskEvent;
use std::sync::{Arc, Weak};
use tokio::sync::broadcast::error::RecvError;

/// Nomad's event type for messages from a driver.
pub const TASK_EVENT_DRIVER_MESSAGE: &str = "Driver";

/// The task event recorded for a driver's event.
pub fn task_event(ev: &TaskDriverEvent) -> TaskEvent {
    let mut te = TaskEvent::new(TASK_EVENT_DRIVER_MESSAGE, ev.message.clone());
    te.details = ev.details.clone();
    if let Some(bytes) = ev.progress_bytes {
        te.details.insert(PROGRESS_DETAIL.into(), bytes.to_string());
    }
    te
}

/// Records `ev` on its task through `control`.
pub fn record(control: &dyn TaskControl, ev: &TaskDriverEvent) {
    let te = task_event(ev);
    if ev.progress_bytes.is_some() {
        control.update_event(te);
    } else {
        control.event(te);
    }
}

/// Forwards every driver's task events to the task runners of this client, for as long as the
/// client lives.
pub fn spawn(shared: &Arc<ClientShared>) {
    for driver in shared.drivers.values() {
        if let Some(rx) = driver.task_events() {
            tokio::spawn(forward(Arc::downgrade(shared), driver.clone(), rx));
        }
    }
}

async fn forward(
    shared: Weak<ClientShared>,
    driver: Arc<dyn Driver>,
    mut rx: tokio::sync::broadcast::Receiver<TaskDriverEvent>,
) {
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(RecvError::Lagged(n)) => {
                tracing::debug!(driver = driver.name(), skipped = n, "task events skipped");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let runner = shared
            .runner(&ev.alloc_id)
            .and_then(|a| a.task(&ev.task_name));
        match runner {
            Some(tr) => record(tr.as_ref(), &ev),
            None => {
                tracing::debug!(task = %ev.task_id, "driver event for a task this client does not run")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::hooks::artifact::record_progress;
    use std::collections::BTreeMap;

    fn ev(msg: &str, bytes: Option<u64>) -> TaskDriverEvent {
        TaskDriverEvent {
            task_id: "a/t".into(),
            alloc_id: "a".into(),
            task_name: "t".into(),
            message: msg.into(),
            details: BTreeMap::from([("image".to_string(), "img:1".to_string())]),
            progress_bytes: bytes,
        }
    }

    /// As the task runner records them: progress through `record_progress`, others appended.
    fn apply(events: &mut Vec<TaskEvent>, e: &TaskDriverEvent) {
        let te = task_event(e);
        if e.progress_bytes.is_some() {
            record_progress(events, te)
        } else {
            events.push(te)
        }
    }

    #[test]
    fn progress_reports_replace_each_other_and_plain_messages_add_up() {
        let mut events = vec![TaskEvent::new("Received", "Task received by client")];
        apply(&mut events, &ev("Downloading image img:1", Some(0)));
        apply(
            &mut events,
            &ev("Downloading image img:1: 0 of 1 layers", Some(512)),
        );
        apply(
            &mut events,
            &ev("Downloaded image img:1: 1 of 1 layers", Some(1024)),
        );
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[1].event_type, "Driver");
        assert_eq!(
            events[1].display_message,
            "Downloaded image img:1: 1 of 1 layers"
        );
        assert_eq!(events[1].details[PROGRESS_DETAIL], "1024");
        assert_eq!(events[1].details["image"], "img:1");
        apply(&mut events, &ev("a note", None));
        assert!(!events[2].details.contains_key(PROGRESS_DETAIL));
        apply(&mut events, &ev("Downloading image img:1", Some(0)));
        assert_eq!(events.len(), 4);
    }
}
