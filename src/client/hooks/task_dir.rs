//! Builds the task's directories (`local/`, `secrets/`, `tmp/`) inside the allocation dir.

use super::{HookContext, HookError, TaskHook};
use caravan_driver::async_trait;
use caravan_structs::{TaskEvent, TASK_EVENT_SETUP};

pub struct TaskDirHook;

#[async_trait]
impl TaskHook for TaskDirHook {
    fn name(&self) -> &'static str {
        "task_dir"
    }

    async fn prestart(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        if !ctx.restoring {
            ctx.events
                .push(TaskEvent::new(TASK_EVENT_SETUP, "Building Task Directory"));
        }
        ctx.alloc_dir
            .build_task(&ctx.task.name)
            .map_err(|e| HookError {
                hook: "task_dir",
                message: format!(
                    "failed to build task directory for {:?}: {e}",
                    ctx.task.name
                ),
                recoverable: false,
            })
    }
}
