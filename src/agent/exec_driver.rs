//! Builds the `exec` driver from the agent configuration: the client's `chroot_env`,
//! `cgroup_parent` and `user.denylist`/`user.checked_drivers` options, and the
//! `plugin "exec" { config { ... } }` block.

use super::config::AgentConfig;
use anyhow::anyhow;
use caravan_driver_exec::{ExecDriver, ExecDriverConfig};

/// The exec driver's options from the agent's config files.
pub fn exec_driver_config(cfg: &AgentConfig) -> anyhow::Result<ExecDriverConfig> {
    let mut out = ExecDriverConfig::default();
    if let Some(client) = &cfg.file.client {
        if !client.chroot_env.is_empty() {
            out.chroot_env = Some(client.chroot_env.clone());
        }
        if let Some(parent) = client.cgroup_parent.as_deref().filter(|p| !p.is_empty()) {
            out.cgroup_parent = parent.to_string();
        }
        out.apply_user_options(
            client.options.get("user.denylist").map(String::as_str),
            client
                .options
                .get("user.checked_drivers")
                .map(String::as_str),
        );
    }
    if let Some(block) = cfg.file.plugin.get("exec").and_then(|p| p.config.as_ref()) {
        let warnings = out
            .apply_plugin_config(block)
            .map_err(|e| anyhow!("{e}; fix the plugin \"exec\" block of the agent config"))?;
        for w in warnings {
            tracing::warn!("{w}");
        }
    }
    Ok(out)
}

/// The exec driver for this agent.
pub fn exec_driver(cfg: &AgentConfig) -> anyhow::Result<ExecDriver> {
    Ok(ExecDriver::new(exec_driver_config(cfg)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::config::file::{ClientConfig, FileConfig, PluginConfig};
    use caravan_hcl1::Blocks;

    /// An agent config with `client` and a `plugin "exec"` block holding `plugin`.
    fn agent(client: Option<ClientConfig>, plugin: serde_json::Value) -> AgentConfig {
        AgentConfig {
            file: FileConfig {
                client,
                plugin: Blocks(vec![(
                    "exec".into(),
                    PluginConfig {
                        config: Some(plugin),
                        ..Default::default()
                    },
                )]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn client_and_plugin_settings_reach_the_driver() {
        let client = ClientConfig {
            chroot_env: [("/opt/tools".to_string(), "/usr/local".to_string())].into(),
            cgroup_parent: Some("/nomad.slice".into()),
            options: [("user.denylist".to_string(), "root,admin".to_string())].into(),
            ..Default::default()
        };
        let cfg = agent(Some(client), serde_json::json!({"no_pivot_root": true}));
        let c = exec_driver_config(&cfg).unwrap();
        assert!(c.no_pivot_root);
        assert_eq!(c.cgroup_parent, "/nomad.slice");
        assert_eq!(c.user_denylist, vec!["root", "admin"]);
        assert_eq!(
            c.chroot_env.unwrap().get("/opt/tools").map(String::as_str),
            Some("/usr/local")
        );
        // Defaults without any settings: Nomad's chroot map and root denied.
        let c = exec_driver_config(&AgentConfig::default()).unwrap();
        assert_eq!(c.chroot_env, None);
        assert_eq!(c.user_denylist, vec!["root"]);
    }

    #[test]
    fn bad_plugin_block_is_an_error() {
        let cfg = agent(None, serde_json::json!({"default_pid_mode": "shared"}));
        let e = exec_driver_config(&cfg).unwrap_err().to_string();
        assert!(e.contains("default_pid_mode"), "{e}");
    }
}
