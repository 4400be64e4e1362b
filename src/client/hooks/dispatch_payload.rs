//! Writes a dispatched job's payload to the task's `local/<dispatch_payload.file>` before the
//! task starts (Nomad's dispatch hook). The path never leaves the task directory.

use super::{HookContext, HookError, TaskHook};
use crate::client::allocdir::resolve_within;
use base64::Engine;
use caravan_driver::async_trait;

pub struct DispatchPayloadHook;

fn err(message: String) -> HookError {
    HookError {
        hook: "dispatch_payload",
        message,
        recoverable: false,
    }
}

#[async_trait]
impl TaskHook for DispatchPayloadHook {
    fn name(&self) -> &'static str {
        "dispatch_payload"
    }

    async fn prestart(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        let Some(file) = ctx.task.dispatch_payload_file() else {
            return Ok(());
        };
        let Some(encoded) = ctx
            .alloc
            .job
            .as_ref()
            .and_then(|j| j.payload.as_deref())
            .filter(|p| !p.is_empty())
        else {
            return Ok(());
        };
        let payload = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| err(format!("the job's payload is not valid base64: {e}")))?;
        let task_dir = ctx.alloc_dir.task_dir(&ctx.task.name);
        let dest = resolve_within(&task_dir, &format!("local/{file}")).map_err(|_| {
            err(format!(
                "dispatch payload file {file:?} escapes the task directory"
            ))
        })?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| err(format!("creating {}: {e}", parent.display())))?;
        }
        tokio::fs::write(&dest, &payload)
            .await
            .map_err(|e| err(format!("writing {}: {e}", dest.display())))?;
        tracing::debug!(task = %ctx.task.name, file = %file, bytes = payload.len(), "dispatch payload written");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::allocdir::AllocDir;
    use caravan_structs::{Allocation, Job, Node, Task};
    use std::sync::Arc;

    fn ctx(root: &std::path::Path, file: &str, payload: Option<&str>) -> HookContext {
        let alloc_dir = AllocDir::new(root, "a1");
        alloc_dir.build().unwrap();
        alloc_dir.build_task("t").unwrap();
        let task = Task {
            name: "t".into(),
            dispatch_payload: Some(serde_json::json!({ "File": file })),
            ..Default::default()
        };
        let job = Job {
            payload: payload.map(str::to_string),
            ..Default::default()
        };
        HookContext {
            alloc: Arc::new(Allocation {
                job: Some(Arc::new(job)),
                ..Default::default()
            }),
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
            control: None,
            vault: None,
            restoring: false,
        }
    }

    #[tokio::test]
    async fn payload_lands_in_local_and_never_outside() {
        let root =
            std::env::temp_dir().join(format!("caravan-dispatch-{}", caravan_structs::new_id()));
        // "hello\n" in base64.
        let mut c = ctx(&root, "in/put.txt", Some("aGVsbG8K"));
        DispatchPayloadHook.prestart(&mut c).await.unwrap();
        let written = std::fs::read(c.alloc_dir.local_dir("t").join("in/put.txt")).unwrap();
        assert_eq!(written, b"hello\n");

        let mut c = ctx(&root, "../../../escape.txt", Some("aGVsbG8K"));
        let e = DispatchPayloadHook.prestart(&mut c).await.unwrap_err();
        assert!(e.message.contains("escapes the task directory"), "{e}");
        assert!(!root.join("escape.txt").exists());

        // No payload: nothing to write, no error.
        let mut c = ctx(&root, "none.txt", None);
        DispatchPayloadHook.prestart(&mut c).await.unwrap();
        assert!(!c.alloc_dir.local_dir("t").join("none.txt").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
