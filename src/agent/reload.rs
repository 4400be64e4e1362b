//! SIGHUP: re-reads the agent's flags and config files and applies what may change while the
//! agent runs (log level, format, file and syslog outputs; client `meta`, `options`,
//! `artifact {}` and `template {}` settings), logging every other
//! change as needing a restart. Running tasks are never touched.

use super::config::{self, AgentConfig};
use crate::client::Client;
use crate::logging::Logs;
use std::sync::Arc;
use tokio::sync::Mutex;

pub struct Reloader {
    args: Vec<String>,
    current: Mutex<AgentConfig>,
    logs: Logs,
    client: Option<Arc<Client>>,
}

/// What one reload did.
#[derive(Debug, Default, PartialEq)]
pub struct ReloadOutcome {
    pub applied: Vec<String>,
    pub needs_restart: Vec<String>,
}

impl Reloader {
    pub fn new(
        args: Vec<String>,
        current: AgentConfig,
        logs: Logs,
        client: Option<Arc<Client>>,
    ) -> Reloader {
        Reloader {
            args,
            current: Mutex::new(current),
            logs,
            client,
        }
    }

    /// Waits for SIGHUP, reloading on each.
    pub async fn run(self) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; configuration reload is unavailable");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("caught SIGHUP, reloading configuration");
            match self.reload().await {
                Ok(out) => {
                    for a in &out.applied {
                        tracing::info!("reloaded: {a}");
                    }
                    for r in &out.needs_restart {
                        tracing::warn!("not reloadable, restart the agent to change it: {r}");
                    }
                    if out.applied.is_empty() && out.needs_restart.is_empty() {
                        tracing::info!("configuration unchanged");
                    }
                }
                Err(e) => tracing::error!(
                    "configuration reload failed, keeping the running configuration: {e:#}"
                ),
            }
        }
    }

    pub async fn reload(&self) -> anyhow::Result<ReloadOutcome> {
        let new = config::from_args(&self.args)?;
        // Everything that can be refused is checked before anything is applied.
        let new_logs = new.log_settings()?;
        let new_artifact = super::artifact::getter_config(&new)?;
        let new_template = super::template::template_settings(&new)?;
        let mut cur = self.current.lock().await;
        let mut out = ReloadOutcome::default();
        let old_logs = cur.log_settings()?;
        if new_logs != old_logs {
            self.logs.apply(&new_logs)?;
            out.applied.push(format!(
                "logging (level {}, json {}, file {})",
                self.logs.level(),
                new_logs.json,
                new_logs
                    .file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "none".into())
            ));
        }
        if format!("{new_artifact:?}") != format!("{:?}", super::artifact::getter_config(&cur)?) {
            if let Some(c) = &self.client {
                c.reload_artifact(new_artifact);
                out.applied.push("client artifact settings".into());
            }
        }
        if new_template != super::template::template_settings(&cur)? {
            if let Some(c) = &self.client {
                c.reload_template(new_template);
                out.applied
                    .push("client template settings (tasks started from now on)".into());
            }
        }
        let options = |c: &AgentConfig| {
            let mut o = c
                .file
                .client
                .as_ref()
                .map(|cl| cl.options.clone())
                .unwrap_or_default();
            // raw_exec may be enabled by its plugin block or -dev too: pass the effective value.
            o.insert(
                "driver.raw_exec.enable".into(),
                c.raw_exec_enabled.to_string(),
            );
            o
        };
        if options(&new) != options(&cur) {
            if let Some(c) = &self.client {
                let drivers = c.reload_options(&options(&new)).await;
                out.applied.push(format!(
                    "client options (drivers updated: {})",
                    if drivers.is_empty() {
                        "none".to_string()
                    } else {
                        drivers.join(", ")
                    }
                ));
            }
        }
        if new.meta != cur.meta {
            if let Some(c) = &self.client {
                c.reload_meta(&cur.meta, &new.meta).await;
                out.applied.push("client meta".into());
            }
        }
        out.needs_restart = restart_only_changes(&cur, &new);
        *cur = new;
        Ok(out)
    }
}

/// Renders one section of the config files for comparison.
type Render = fn(&config::FileConfig) -> String;

/// Settings the running agent cannot change, by name, where they differ.
fn restart_only_changes(old: &AgentConfig, new: &AgentConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name} ({a} -> {b})"));
        }
    };
    check("server", old.server.to_string(), new.server.to_string());
    check("client", old.client.to_string(), new.client.to_string());
    check(
        "data_dir",
        old.data_dir.display().to_string(),
        new.data_dir.display().to_string(),
    );
    check("bind_addr", old.bind_addr.clone(), new.bind_addr.clone());
    check(
        "ports.http",
        old.http_port.to_string(),
        new.http_port.to_string(),
    );
    check(
        "ports.rpc",
        old.rpc_port.to_string(),
        new.rpc_port.to_string(),
    );
    check("name", old.node_name.clone(), new.node_name.clone());
    check("datacenter", old.datacenter.clone(), new.datacenter.clone());
    check("region", old.region.clone(), new.region.clone());
    check(
        "client.node_class",
        old.node_class.clone(),
        new.node_class.clone(),
    );
    check(
        "client.node_pool",
        old.node_pool.clone(),
        new.node_pool.clone(),
    );
    check(
        "server.num_schedulers",
        old.num_schedulers.to_string(),
        new.num_schedulers.to_string(),
    );
    let section = |c: &AgentConfig, f: Render| f(&c.file);
    let sections: [(&str, Render); 7] = [
        ("client.reserved", |f| {
            format!("{:?}", f.client.as_ref().map(|c| &c.reserved))
        }),
        ("client.host_volume", |f| {
            format!("{:?}", f.client.as_ref().map(|c| &c.host_volume))
        }),
        ("client.template", |f| {
            format!("{:?}", f.client.as_ref().map(|c| &c.template))
        }),
        ("plugin", |f| format!("{:?}", f.plugin)),
        ("consul", |f| format!("{:?}", f.consul)),
        ("vault", |f| format!("{:?}", f.vault)),
        ("server", |f| format!("{:?}", f.server)),
    ];
    for (name, f) in sections {
        if section(old, f) != section(new, f) {
            out.push(name.to_string());
        }
    }
    out
}
