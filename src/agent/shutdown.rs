//! How the agent stops: SIGINT or SIGTERM, a graceful leave when `leave_on_interrupt` or
//! `leave_on_terminate` asks for one (draining the client first when `drain_on_shutdown` is
//! set, as Nomad does), and, for `-dev`, stopping every task so nothing outlives the agent.

use super::config::AgentConfig;
use crate::client::Client;
use crate::server::Server;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

pub async fn wait_for_signal() -> StopSignal {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot listen for SIGINT/SIGTERM");
        std::future::pending::<()>().await;
        return StopSignal::Terminate;
    };
    tokio::select! {
        _ = int.recv() => StopSignal::Interrupt,
        _ = term.recv() => StopSignal::Terminate,
    }
}

/// Whether this signal means a graceful leave (Nomad's defaults: neither does).
pub fn leaves(cfg: &AgentConfig, sig: StopSignal) -> bool {
    match sig {
        StopSignal::Interrupt => cfg.file.leave_on_interrupt.unwrap_or(false),
        StopSignal::Terminate => cfg.file.leave_on_terminate.unwrap_or(false),
    }
}

/// Runs while the HTTP API still serves: the graceful leave and its drain.
pub async fn leave(
    cfg: &AgentConfig,
    sig: StopSignal,
    server: &Arc<Server>,
    client: Option<&Arc<Client>>,
) {
    if !leaves(cfg, sig) {
        tracing::info!(signal = ?sig, "caught signal, shutting down without a graceful leave");
        return;
    }
    tracing::info!(signal = ?sig, "gracefully leaving");
    let drain = cfg
        .file
        .client
        .as_ref()
        .and_then(|c| c.drain_on_shutdown.as_ref());
    if let (Some(c), Some(d)) = (client, drain) {
        let deadline = d
            .deadline
            .as_ref()
            .map(|d| d.as_std())
            .unwrap_or(Duration::from_secs(3600));
        let force = d.force.unwrap_or(false);
        let ignore_system = d.ignore_system_jobs.unwrap_or(false);
        drain_node(server, &c.node_id(), deadline, force, ignore_system).await;
    }
}

/// Drains the node and waits for the drain to finish (or its deadline, plus a grace second).
async fn drain_node(
    server: &Arc<Server>,
    node_id: &str,
    deadline: Duration,
    force: bool,
    ignore_system: bool,
) {
    let spec = if force {
        -1
    } else {
        deadline.as_nanos() as i64
    };
    if let Err(e) = server.node_drain(node_id, Some((spec, ignore_system)), false) {
        tracing::error!("drain_on_shutdown: could not drain the node: {e}");
        return;
    }
    tracing::info!(
        ?deadline,
        force,
        "drain_on_shutdown: draining the node before leaving"
    );
    let give_up = tokio::time::Instant::now() + deadline + Duration::from_secs(1);
    loop {
        let draining = server
            .store
            .snapshot()
            .nodes
            .get(node_id)
            .map(|n| n.drain_strategy.is_some())
            .unwrap_or(false);
        if !draining {
            tracing::info!("drain_on_shutdown: node drained");
            return;
        }
        if tokio::time::Instant::now() >= give_up {
            tracing::warn!("drain_on_shutdown: deadline passed before the drain completed");
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stops every task and waits (up to 30 s each) for them to end.
pub async fn stop_all_tasks(client: &Client) {
    let tasks: Vec<_> = client
        .alloc_runners()
        .iter()
        .flat_map(|r| r.tasks())
        .collect();
    for t in &tasks {
        t.kill("agent shutting down");
    }
    for t in &tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t.wait_done()).await;
    }
}
