//! The agent's `consul {}` block turned into Caravan's Consul link: the caravan-consul client
//! (address, token, TLS, namespace, over Consul's `CONSUL_*` environment as in Nomad), and,
//! with `auto_advertise`, the agent's own registrations: servers as `nomad` (one instance each
//! for the http, rpc and serf ports) and clients as `nomad-client`, with Nomad's health checks.

use super::config::file::ConsulConfig as ConsulBlock;
use super::config::AgentConfig;
use crate::client::consul::{Consul, ConsulTiming};
use anyhow::{anyhow, bail};
use caravan_consul::{AgentServiceCheck, AgentServiceRegistration, ConsulClient, ConsulConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The default cluster's `consul` block (the unnamed one, or `consul "default"`).
fn default_block(cfg: &AgentConfig) -> Option<&ConsulBlock> {
    let blocks = &cfg.file.consul.0;
    blocks
        .iter()
        .find(|(name, _)| name == "default")
        .map(|(_, b)| b)
}

/// The client settings of a `consul` block over Consul's environment variables.
pub fn client_config(block: Option<&ConsulBlock>) -> anyhow::Result<ConsulConfig> {
    let mut c = ConsulConfig::from_env();
    let Some(b) = block else {
        return Ok(c);
    };
    let ssl = b.ssl.unwrap_or(false);
    if let Some(addr) = b.address.as_ref().filter(|a| !a.is_empty()) {
        c.address = if addr.contains("://") {
            addr.clone()
        } else if ssl {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        };
    } else if ssl && !c.address.starts_with("https://") {
        c.address = c.address.replacen("http://", "https://", 1);
    }
    if let Some(t) = b.token.as_ref().filter(|t| !t.is_empty()) {
        c.token = Some(t.clone());
    }
    if let Some(v) = b.verify_ssl {
        c.tls_skip_verify = !v;
    }
    let path = |p: &Option<String>| p.as_ref().filter(|p| !p.is_empty()).map(PathBuf::from);
    c.ca_file = path(&b.ca_file).or(c.ca_file);
    c.cert_file = path(&b.cert_file).or(c.cert_file);
    c.key_file = path(&b.key_file).or(c.key_file);
    if c.cert_file.is_some() != c.key_file.is_some() {
        bail!("consul: cert_file and key_file must be set together");
    }
    if let Some(ns) = b.namespace.as_ref().filter(|n| !n.is_empty()) {
        c.namespace = Some(ns.clone());
    }
    if b.auth.as_ref().is_some_and(|a| !a.is_empty()) {
        bail!("consul: auth (HTTP basic auth to Consul) is not supported by Caravan yet; use token instead");
    }
    Ok(c)
}

/// Builds Caravan's Consul link from the agent's config. As in Nomad, there is always one:
/// without a `consul` block it talks to `127.0.0.1:8500` (or `CONSUL_HTTP_ADDR`). Only the
/// default cluster is used; other named `consul` blocks are reported and ignored.
pub fn from_config(cfg: &AgentConfig) -> anyhow::Result<Arc<Consul>> {
    for (name, _) in &cfg.file.consul.0 {
        if name != "default" {
            tracing::warn!(
                cluster = %name,
                "consul \"{name}\" {{}}: only the default Consul cluster is used by Caravan yet; this block is ignored"
            );
        }
    }
    let config = client_config(default_block(cfg))?;
    let client = ConsulClient::new(config).map_err(|e| anyhow!("consul: {e}"))?;
    Ok(Consul::new(client, "default", ConsulTiming::default()))
}

/// A stable ID for an agent registration (Nomad's `_nomad-server-<hash>`).
fn agent_service_id(prefix: &str, parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.join("|").bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}{h:016x}")
}

/// Where checks dial this agent: the advertise address with `checks_use_advertise`, else the
/// bind address (a wildcard bind is dialled on loopback).
fn check_host(cfg: &AgentConfig, block: Option<&ConsulBlock>) -> String {
    let use_advertise = block.and_then(|b| b.checks_use_advertise).unwrap_or(false);
    let host = if use_advertise || cfg.bind_addr.is_empty() {
        cfg.advertise_ip()
    } else {
        match cfg.bind_addr.as_str() {
            "0.0.0.0" => "127.0.0.1".into(),
            "::" | "[::]" => "::1".into(),
            other => other.to_string(),
        }
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    }
}

/// The agent's own registrations under `auto_advertise` (default on): what Nomad registers.
pub fn agent_registrations(cfg: &AgentConfig) -> Vec<AgentServiceRegistration> {
    let block = default_block(cfg);
    if !block.and_then(|b| b.auto_advertise).unwrap_or(true) {
        return Vec::new();
    }
    let b = block.cloned().unwrap_or_default();
    let extra_tags = b.tags.clone().unwrap_or_default();
    let addr = cfg.advertise_ip();
    let check_host = check_host(cfg, block);
    let count = |v: Option<i64>| v.unwrap_or(0).clamp(0, u32::MAX as i64) as u32;
    let http_check =
        |name: String, kind: &str, crit: Option<i64>, warn: Option<i64>| AgentServiceCheck {
            name: Some(name),
            http: Some(format!(
                "http://{check_host}:{}/v1/agent/health?type={kind}",
                cfg.http_port
            )),
            interval: Some(Duration::from_secs(10)),
            timeout: Some(Duration::from_secs(6)),
            failures_before_critical: count(crit),
            failures_before_warning: count(warn),
            ..Default::default()
        };
    let tcp_check = |name: String, port: u16| AgentServiceCheck {
        name: Some(name),
        tcp: Some(format!("{check_host}:{port}")),
        interval: Some(Duration::from_secs(10)),
        timeout: Some(Duration::from_secs(6)),
        failures_before_critical: count(b.server_failures_before_critical),
        failures_before_warning: count(b.server_failures_before_warning),
        ..Default::default()
    };
    let service = |prefix: &str, name: &str, tag: &str, port: u16, check: AgentServiceCheck| {
        let mut tags = vec![tag.to_string()];
        tags.extend(extra_tags.iter().cloned());
        AgentServiceRegistration {
            id: Some(agent_service_id(
                prefix,
                &[name, tag, &addr, &port.to_string()],
            )),
            name: name.to_string(),
            tags,
            port: Some(port),
            address: Some(addr.clone()),
            checks: vec![check],
            ..Default::default()
        }
    };
    let mut out = Vec::new();
    if cfg.server {
        let name = b
            .server_service_name
            .clone()
            .unwrap_or_else(|| "nomad".into());
        let http_name = b
            .server_http_check_name
            .clone()
            .unwrap_or_else(|| "Nomad Server HTTP Check".into());
        out.push(service(
            "_nomad-server-",
            &name,
            "http",
            cfg.http_port,
            http_check(
                http_name,
                "server",
                b.server_failures_before_critical,
                b.server_failures_before_warning,
            ),
        ));
        let rpc_name = b
            .server_rpc_check_name
            .clone()
            .unwrap_or_else(|| "Nomad Server RPC Check".into());
        out.push(service(
            "_nomad-server-",
            &name,
            "rpc",
            cfg.rpc_port,
            tcp_check(rpc_name, cfg.rpc_port),
        ));
        let serf_name = b
            .server_serf_check_name
            .clone()
            .unwrap_or_else(|| "Nomad Server Serf Check".into());
        out.push(service(
            "_nomad-server-",
            &name,
            "serf",
            cfg.serf_port,
            tcp_check(serf_name, cfg.serf_port),
        ));
    }
    if cfg.client {
        let name = b
            .client_service_name
            .clone()
            .unwrap_or_else(|| "nomad-client".into());
        let check_name = b
            .client_http_check_name
            .clone()
            .unwrap_or_else(|| "Nomad Client HTTP Check".into());
        out.push(service(
            "_nomad-client-",
            &name,
            "http",
            cfg.http_port,
            http_check(
                check_name,
                "client",
                b.client_failures_before_critical,
                b.client_failures_before_warning,
            ),
        ));
    }
    out
}

/// Registers the agent's own services and starts the sync loop that keeps them (and job
/// services) in Consul, retrying while Consul is away.
/// Registration runs in the background so an unreachable Consul never delays the agent.
pub fn advertise(cfg: &AgentConfig, consul: &Arc<Consul>) -> Vec<String> {
    let regs = agent_registrations(cfg);
    let ids = regs.iter().filter_map(|r| r.id.clone()).collect();
    let c = consul.clone();
    tokio::spawn(async move {
        for reg in regs {
            c.register(reg).await;
        }
        c.spawn_sync();
    });
    ids
}

/// Removes the agent's own services when it leaves (bounded: Consul may be gone).
pub async fn withdraw(consul: &Consul, ids: &[String]) {
    let all = async {
        for id in ids {
            consul.deregister(id).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(3), all)
        .await
        .is_err()
    {
        tracing::warn!("Consul did not answer while deregistering the agent's services");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(server: bool, client: bool) -> AgentConfig {
        AgentConfig {
            server,
            client,
            bind_addr: "0.0.0.0".into(),
            advertise: Some("10.0.0.5".into()),
            ..Default::default()
        }
    }

    #[test]
    fn block_overrides_environment_defaults() {
        let b = ConsulBlock {
            address: Some("consul.local:8501".into()),
            ssl: Some(true),
            verify_ssl: Some(false),
            token: Some("tok".into()),
            ..Default::default()
        };
        let c = client_config(Some(&b)).unwrap();
        assert_eq!(c.address, "https://consul.local:8501");
        assert!(c.tls_skip_verify);
        assert_eq!(c.token.as_deref(), Some("tok"));
        let b = ConsulBlock {
            cert_file: Some("/c.pem".into()),
            ..Default::default()
        };
        assert!(client_config(Some(&b)).is_err());
        let b = ConsulBlock {
            auth: Some("u:p".into()),
            ..Default::default()
        };
        assert!(client_config(Some(&b)).is_err());
    }

    #[test]
    fn server_and_client_advertise_like_nomad() {
        let regs = agent_registrations(&agent(true, true));
        let names: Vec<(&str, &str)> = regs
            .iter()
            .map(|r| (r.name.as_str(), r.tags[0].as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("nomad", "http"),
                ("nomad", "rpc"),
                ("nomad", "serf"),
                ("nomad-client", "http")
            ]
        );
        assert!(regs[0].id.as_deref().unwrap().starts_with("_nomad-server-"));
        assert!(regs[3].id.as_deref().unwrap().starts_with("_nomad-client-"));
        assert_eq!(regs[0].address.as_deref(), Some("10.0.0.5"));
        assert_eq!(regs[0].port, Some(4646));
        assert_eq!(
            regs[0].checks[0].http.as_deref(),
            Some("http://127.0.0.1:4646/v1/agent/health?type=server")
        );
        assert_eq!(regs[1].checks[0].tcp.as_deref(), Some("127.0.0.1:4647"));
        assert_eq!(
            regs[3].checks[0].name.as_deref(),
            Some("Nomad Client HTTP Check")
        );
        let ids: std::collections::HashSet<_> = regs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 4, "IDs are distinct");
    }

    #[test]
    fn auto_advertise_off_and_custom_names() {
        let mut cfg = agent(true, false);
        cfg.file.consul.0.push((
            "default".into(),
            ConsulBlock {
                auto_advertise: Some(false),
                ..Default::default()
            },
        ));
        assert!(agent_registrations(&cfg).is_empty());
        let mut cfg = agent(true, false);
        cfg.file.consul.0.push((
            "default".into(),
            ConsulBlock {
                server_service_name: Some("caravan".into()),
                tags: Some(vec!["lab".into()]),
                checks_use_advertise: Some(true),
                ..Default::default()
            },
        ));
        let regs = agent_registrations(&cfg);
        assert_eq!(regs.len(), 3);
        assert_eq!(regs[0].name, "caravan");
        assert_eq!(regs[0].tags, vec!["http", "lab"]);
        assert_eq!(
            regs[0].checks[0].http.as_deref(),
            Some("http://10.0.0.5:4646/v1/agent/health?type=server")
        );
    }
}
