//! Starts log capture for the task (Nomad's logmon): the task writes to FIFOs, LogMon copies
//! them into `alloc/logs/<task>.stdout.N` and `.stderr.N` with the job's `logs` rotation.

use super::{HookContext, HookError, TaskHook};
use caravan_driver::{async_trait, LogMon};
use std::sync::Mutex;

#[derive(Default)]
pub struct LogMonHook {
    mons: Mutex<Vec<LogMon>>,
}

#[async_trait]
impl TaskHook for LogMonHook {
    fn name(&self) -> &'static str {
        "logmon"
    }

    async fn prestart(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        let mut mons = match self.mons.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if !mons.is_empty() {
            // Already capturing (the task is restarting): the FIFOs stay.
            return Ok(());
        }
        let logs = ctx.alloc_dir.logs_dir();
        let cfg = &ctx.task.log_config;
        let max_files = cfg.max_files.max(1) as usize;
        let max_size = (cfg.max_file_size_mb.max(1) as u64) * 1024 * 1024;
        let task = &ctx.task.name;
        ctx.stdout_path = logs.join(format!(".{task}.stdout.fifo"));
        ctx.stderr_path = logs.join(format!(".{task}.stderr.fifo"));
        for (fifo, kind) in [(&ctx.stdout_path, "stdout"), (&ctx.stderr_path, "stderr")] {
            let mon = LogMon::start(fifo, &logs, &format!("{task}.{kind}"), max_files, max_size)
                .map_err(|e| HookError {
                    hook: "logmon",
                    message: format!("failed to start log capture: {e}"),
                    recoverable: false,
                })?;
            mons.push(mon);
        }
        Ok(())
    }

    async fn stop(&self, _ctx: &HookContext) -> Result<(), HookError> {
        let mons: Vec<LogMon> = match self.mons.lock() {
            Ok(mut g) => g.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        // Stopping joins the copy threads; keep that off the async runtime.
        let _ = tokio::task::spawn_blocking(move || {
            for mut m in mons {
                m.stop();
            }
        })
        .await;
        Ok(())
    }
}
