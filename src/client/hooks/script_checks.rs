//! Consul `script` checks (Nomad's script check runner): Consul cannot run a command inside
//! the task, so the check is registered as a TTL check (TTL = interval + 31 s, as Nomad) and
//! the client runs `command args` in the task through its driver every `interval` (bounded by
//! `timeout`), reporting exit 0 as passing, 1 as warning and anything else as critical, with
//! the command's output.

use super::TaskControl;
use crate::client::consul::Consul;
use caravan_consul::{CheckStatus, WriteOptions};
use std::sync::Arc;
use std::time::Duration;

/// Nomad's `ttlCheckBuffer`.
pub const TTL_BUFFER: Duration = Duration::from_secs(31);

/// One script check to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub check_id: String,
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
}

/// Consul's status for a script's exit code (Nagios conventions, as Nomad).
pub fn status_of(exit_code: i32) -> CheckStatus {
    match exit_code {
        0 => CheckStatus::Passing,
        1 => CheckStatus::Warning,
        _ => CheckStatus::Critical,
    }
}

/// Runs `s` in the task every interval until aborted.
pub async fn run(consul: Arc<Consul>, control: Arc<dyn TaskControl>, s: Script) {
    loop {
        if control.killed() {
            return;
        }
        if control.is_running() {
            let (status, output) = match control.exec(s.command.clone(), s.timeout).await {
                Ok(r) => {
                    let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
                    out.push_str(&String::from_utf8_lossy(&r.stderr));
                    (status_of(r.exit_code), out)
                }
                Err(e) => (
                    CheckStatus::Critical,
                    format!("running the check failed: {e}"),
                ),
            };
            if let Err(e) = consul
                .client
                .agent_check_update(&s.check_id, status, &output, &WriteOptions::default())
                .await
            {
                tracing::debug!(check = %s.check_id, "updating a script check: {e}");
            }
        }
        tokio::time::sleep(s.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_as_nagios_and_nomad_do() {
        assert_eq!(status_of(0), CheckStatus::Passing);
        assert_eq!(status_of(1), CheckStatus::Warning);
        assert_eq!(status_of(2), CheckStatus::Critical);
        assert_eq!(status_of(-1), CheckStatus::Critical);
    }
}
