//! Agent configuration: `caravan agent` flags and Nomad's agent config files (HCL v1 or JSON,
//! files and directories merged in Nomad's order, every block and key decoded into typed
//! config, unknown keys refused with `file:line:col`). Settings whose feature Caravan lacks are
//! accepted where ignoring them is safe and refused where it is not (ACLs, TLS, audit, joining
//! other servers).

pub mod file;
pub mod load;
pub mod merge;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

use anyhow::{anyhow, bail};
use caravan_structs::NodeReservedResources;
pub use file::FileConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const USAGE: &str = "Usage: caravan agent [options]

  Starts the Caravan agent and runs until an interrupt is received.

  -dev                Server and client in one process, in-memory, raw_exec enabled,
                      HTTP on 127.0.0.1:4646.
  -config=<path>      A config file or directory (repeatable).
  -data-dir=<path>    Where the agent keeps state.
  -bind=<addr>        Address to bind the HTTP listener to.
  -server             Enable server mode.
  -client             Enable client mode.
  -node=<name>        Node name.
  -dc=<name>          Datacenter (default dc1).
  -region=<name>      Region (default global).
  -node-class=<c>     Node class.
  -node-pool=<p>      Node pool.
  -meta=<k=v>         Client metadata (repeatable).
  -log-level=<level>  TRACE, DEBUG, INFO, WARN, ERROR (changes on SIGHUP from the files).
  -log-json           Log as JSON lines.
  -log-file=<path>    Also log to this file (or caravan.log in this directory).
  -log-rotate-bytes=<n>, -log-rotate-max-files=<n>
                      Rotate the log file past n bytes; keep n rotated files.
  -http-port=<port>   HTTP port (Caravan addition; ports { http } in config files).
";

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub help: bool,
    pub dev: bool,
    pub server: bool,
    pub client: bool,
    /// `acl { enabled }` or `-acl-enabled`: every request needs a token's permission.
    pub acl_enabled: bool,
    pub data_dir: PathBuf,
    pub data_dir_is_temp: bool,
    pub bind_addr: String,
    pub advertise: Option<String>,
    pub http_port: u16,
    pub rpc_port: u16,
    pub serf_port: u16,
    pub node_name: String,
    pub datacenter: String,
    pub region: String,
    pub node_class: String,
    pub node_pool: String,
    pub meta: BTreeMap<String, String>,
    pub log_level: String,
    pub raw_exec_enabled: bool,
    pub num_schedulers: usize,
    pub reserved: NodeReservedResources,
    pub config_files: Vec<String>,
    /// Everything the config files said, merged (flags are not folded in; the fields above are
    /// the effective values).
    pub file: FileConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            help: false,
            dev: false,
            server: false,
            client: false,
            acl_enabled: false,
            data_dir: PathBuf::new(),
            data_dir_is_temp: false,
            bind_addr: "0.0.0.0".into(),
            advertise: None,
            http_port: 4646,
            rpc_port: 4647,
            serf_port: 4648,
            node_name: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().to_string())
                .unwrap_or_else(|_| "caravan".into()),
            datacenter: "dc1".into(),
            region: "global".into(),
            node_class: String::new(),
            node_pool: "default".into(),
            meta: BTreeMap::new(),
            log_level: "INFO".into(),
            raw_exec_enabled: false,
            num_schedulers: 2,
            reserved: NodeReservedResources::default(),
            config_files: vec![],
            file: FileConfig::default(),
        }
    }
}

impl AgentConfig {
    /// The logging settings: `log_level`, `log_json`, `log_file`, `log_rotate_*`,
    /// `enable_syslog`/`syslog_facility`; `CARAVAN_LOG` overrides the level.
    pub fn log_settings(&self) -> anyhow::Result<crate::logging::LogSettings> {
        let mut s = crate::logging::LogSettings::default();
        let level = std::env::var("CARAVAN_LOG").unwrap_or_else(|_| self.log_level.clone());
        match crate::logging::parse_level(&level).map_err(|e| anyhow!("log_level: {e}"))? {
            Some(l) => s.level = l,
            None => s.off = true,
        }
        let f = &self.file;
        s.json = f.log_json.unwrap_or(false);
        s.file = f
            .log_file
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        if let Some(b) = f.log_rotate_bytes {
            s.rotate_bytes = u64::try_from(b)
                .map_err(|_| anyhow!("log_rotate_bytes = {b}: must not be negative"))?;
        }
        if let Some(d) = &f.log_rotate_duration {
            s.rotate_duration = d.as_std();
        }
        if let Some(n) = f.log_rotate_max_files {
            s.rotate_max_files = usize::try_from(n)
                .map_err(|_| anyhow!("log_rotate_max_files = {n}: must not be negative"))?;
        }
        if f.enable_syslog.unwrap_or(false) {
            s.syslog = Some(f.syslog_facility.clone().unwrap_or_else(|| "LOCAL0".into()));
        }
        Ok(s)
    }

    /// The address other parts reach this agent on.
    pub fn advertise_ip(&self) -> String {
        if let Some(a) = &self.advertise {
            return a.clone();
        }
        if self.bind_addr == "0.0.0.0" {
            "127.0.0.1".into()
        } else {
            self.bind_addr.clone()
        }
    }

    /// What `/v1/agent/self` shows as `config`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "Region": self.region, "Datacenter": self.datacenter, "NodeName": self.node_name,
            "DataDir": self.data_dir, "LogLevel": self.log_level, "BindAddr": self.bind_addr,
            "DevMode": self.dev,
            "Ports": {"HTTP": self.http_port, "RPC": self.rpc_port, "Serf": self.serf_port},
            "Server": {"Enabled": self.server, "NumSchedulers": self.num_schedulers},
            "Client": {"Enabled": self.client, "NodeClass": self.node_class, "NodePool": self.node_pool, "Meta": self.meta},
            "Files": self.config_files,
            "Version": {"Version": caravan_structs::NOMAD_API_VERSION, "VersionMetadata": format!("caravan{}", caravan_structs::CARAVAN_VERSION)},
        })
    }
}

/// Parses `caravan agent` arguments (Go-style single-dash flags).
pub fn from_args(args: &[String]) -> anyhow::Result<AgentConfig> {
    let mut cfg = AgentConfig::default();
    let mut overrides: Vec<(String, String)> = Vec::new();
    let mut acl_flag: Option<bool> = None;
    let mut configs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let raw = &args[i];
        i += 1;
        let flag = raw
            .strip_prefix("--")
            .or_else(|| raw.strip_prefix('-'))
            .ok_or_else(|| anyhow!("unexpected argument {raw:?}; see caravan agent -h"))?;
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.to_string(), None),
        };
        let bool_flag = matches!(
            name.as_str(),
            "dev" | "server" | "client" | "h" | "help" | "acl-enabled" | "log-json"
        );
        let value = if bool_flag {
            inline.unwrap_or_else(|| "true".into())
        } else {
            match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .cloned()
                        .ok_or_else(|| anyhow!("flag -{name} needs a value"))?;
                    i += 1;
                    v
                }
            }
        };
        match name.as_str() {
            "h" | "help" => cfg.help = true,
            "config" => configs.push(value),
            "acl-enabled" => acl_flag = Some(value != "false"),
            _ => overrides.push((name, value)),
        }
    }
    if overrides.iter().any(|(n, v)| n == "dev" && v != "false") {
        cfg.dev = true;
        cfg.server = true;
        cfg.client = true;
        cfg.bind_addr = "127.0.0.1".into();
        cfg.raw_exec_enabled = true;
        cfg.log_level = "DEBUG".into();
        cfg.num_schedulers = 2;
    }
    if !configs.is_empty() {
        let (file, loaded) = load::load_paths(&configs)?;
        if let Some(refusal) = unsupported(&file).into_iter().next() {
            bail!("{refusal}");
        }
        apply_file(&mut cfg, &file)?;
        cfg.file = file;
        cfg.config_files = loaded;
    }
    if let Some(on) = acl_flag {
        cfg.acl_enabled = on;
    }
    for (name, value) in overrides {
        match name.as_str() {
            "dev" => {}
            "server" => cfg.server = value != "false",
            "client" => cfg.client = value != "false",
            "data-dir" => cfg.data_dir = PathBuf::from(value),
            "bind" => cfg.bind_addr = value,
            "node" => cfg.node_name = value,
            "dc" => cfg.datacenter = value,
            "region" => cfg.region = value,
            "node-class" => cfg.node_class = value,
            "node-pool" => cfg.node_pool = value,
            "log-level" => cfg.log_level = value,
            "log-json" => cfg.file.log_json = Some(value != "false"),
            "log-file" => cfg.file.log_file = Some(value),
            "log-rotate-bytes" => {
                cfg.file.log_rotate_bytes = Some(value.parse().map_err(|_| {
                    anyhow!("-log-rotate-bytes: {value:?} is not a number of bytes")
                })?)
            }
            "log-rotate-max-files" => {
                cfg.file.log_rotate_max_files = Some(
                    value
                        .parse()
                        .map_err(|_| anyhow!("-log-rotate-max-files: {value:?} is not a number"))?,
                )
            }
            "http-port" => {
                cfg.http_port = value
                    .parse()
                    .map_err(|_| anyhow!("-http-port: {value:?} is not a port number"))?
            }
            "meta" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| anyhow!("-meta must be key=value, got {value:?}"))?;
                cfg.meta.insert(k.into(), v.into());
            }
            other => bail!("flag provided but not defined: -{other} (see caravan agent -h)"),
        }
    }
    if cfg.data_dir.as_os_str().is_empty() {
        if cfg.dev {
            cfg.data_dir = std::env::temp_dir().join(format!("caravan-dev-{}", std::process::id()));
            cfg.data_dir_is_temp = true;
        } else if cfg.server || cfg.client {
            bail!("must specify data directory (-data-dir or data_dir in a config file)");
        }
    }
    Ok(cfg)
}

/// The host part of an advertise address (`"10.0.0.1:4646"` → `10.0.0.1`); `None` for
/// go-sockaddr templates, which Caravan does not evaluate.
fn advertise_host(addr: &str) -> Option<String> {
    if addr.contains("{{") || addr.is_empty() {
        return None;
    }
    if let Ok(sa) = addr.parse::<std::net::SocketAddr>() {
        return Some(sa.ip().to_string());
    }
    if addr.parse::<std::net::IpAddr>().is_ok() {
        return Some(addr.to_string());
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() && !host.contains(':') => {
            Some(host.to_string())
        }
        _ => Some(addr.to_string()),
    }
}

fn truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => matches!(s.as_str(), "true" | "1"),
        serde_json::Value::Number(n) => n.as_i64() == Some(1),
        // Repeated `config {}` blocks decode as a list: the last one wins.
        serde_json::Value::Array(a) => a.last().is_some_and(truthy),
        _ => false,
    }
}

/// Whether `plugin "raw_exec" { config { enabled = ... } }` or the old client option turns
/// raw_exec on (`Some(false)` when it is explicitly off).
fn raw_exec_setting(file: &FileConfig) -> Option<bool> {
    let mut setting = file
        .client
        .as_ref()
        .and_then(|c| c.options.get("driver.raw_exec.enable"))
        .map(|v| matches!(v.as_str(), "1" | "true"));
    if let Some(enabled) = file
        .plugin
        .get("raw_exec")
        .and_then(|p| p.config.as_ref())
        .and_then(|c| plugin_key(c, "enabled"))
    {
        setting = Some(truthy(enabled));
    }
    setting
}

fn plugin_key<'a>(config: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    match config {
        serde_json::Value::Object(m) => m.get(key),
        serde_json::Value::Array(a) => a.iter().rev().find_map(|c| plugin_key(c, key)),
        _ => None,
    }
}

/// Folds the merged files into the effective settings (flags come after).
fn apply_file(cfg: &mut AgentConfig, f: &FileConfig) -> anyhow::Result<()> {
    let set = |dst: &mut String, v: &Option<String>| {
        if let Some(v) = v {
            *dst = v.clone();
        }
    };
    set(&mut cfg.region, &f.region);
    if let Some(on) = f.acl.as_ref().and_then(|a| a.enabled) {
        cfg.acl_enabled = on;
    }
    set(&mut cfg.datacenter, &f.datacenter);
    set(&mut cfg.node_name, &f.name);
    set(&mut cfg.bind_addr, &f.bind_addr);
    set(&mut cfg.log_level, &f.log_level);
    if let Some(d) = &f.data_dir {
        cfg.data_dir = PathBuf::from(d);
    }
    if let Some(p) = &f.ports {
        cfg.http_port = p.http.unwrap_or(cfg.http_port);
        cfg.rpc_port = p.rpc.unwrap_or(cfg.rpc_port);
        cfg.serf_port = p.serf.unwrap_or(cfg.serf_port);
    }
    if let Some(a) = &f.advertise {
        if let Some(host) = [&a.http, &a.rpc, &a.serf]
            .into_iter()
            .flatten()
            .find_map(|s| advertise_host(s))
        {
            cfg.advertise = Some(host);
        }
    }
    if let Some(s) = &f.server {
        if let Some(e) = s.enabled {
            cfg.server = e;
        }
        if let Some(n) = s.num_schedulers {
            cfg.num_schedulers = usize::try_from(n)
                .map_err(|_| anyhow!("server.num_schedulers = {n}: must not be negative"))?;
        }
    }
    if let Some(c) = &f.client {
        if let Some(e) = c.enabled {
            cfg.client = e;
        }
        set(&mut cfg.node_class, &c.node_class);
        set(&mut cfg.node_pool, &c.node_pool);
        cfg.meta
            .extend(c.meta.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(r) = &c.reserved {
            if let Some(v) = r.cpu {
                cfg.reserved.cpu.cpu_shares = v;
            }
            if let Some(v) = r.memory {
                cfg.reserved.memory.memory_mb = v;
            }
            if let Some(v) = r.disk {
                cfg.reserved.disk.disk_mb = v;
            }
            if let Some(p) = &r.reserved_ports {
                cfg.reserved.networks.reserved_host_ports = p.0.clone();
            }
        }
    }
    if let Some(on) = raw_exec_setting(f) {
        cfg.raw_exec_enabled = on;
    }
    Ok(())
}

/// Settings Caravan refuses to start with because ignoring them would be unsafe; one message
/// per setting, empty when the config can run.
pub fn unsupported(f: &FileConfig) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = &f.tls {
        if t.http == Some(true) || t.rpc == Some(true) {
            out.push("tls { http/rpc = true }: TLS is not available in Caravan yet; refusing to start with a TLS block that would be ignored".to_string());
        }
    }
    if f.audit.as_ref().and_then(|a| a.enabled) == Some(true) {
        out.push("audit { enabled = true }: audit logging is not available in Caravan yet; refusing to start without the audit trail you asked for".to_string());
    }
    if let Some(s) = &f.server {
        if let Some(n) = s.bootstrap_expect.filter(|n| *n > 1) {
            out.push(format!("server.bootstrap_expect = {n}: multi-server clusters need the clustering feature, not available in Caravan yet"));
        }
        let joins = !s.start_join.0.is_empty()
            || !s.retry_join.0.is_empty()
            || s.server_join.as_ref().is_some_and(|j| {
                j.start_join.as_ref().is_some_and(|v| !v.is_empty())
                    || j.retry_join.as_ref().is_some_and(|v| !v.is_empty())
            });
        if s.enabled == Some(true) && joins {
            out.push("server: start_join/retry_join/server_join: joining other servers needs the clustering feature, not available in Caravan yet; refusing to start a lone server that would split the cluster".to_string());
        }
    }
    out
}

/// Checks each path (a file, or a directory merged like `-config` does) for `caravan config
/// validate`: syntax, every key known, every value of the right type and form. A fragment (no
/// `server`/`client` enabled) is valid on its own. `Ok` carries the settings `caravan agent`
/// would refuse to start with (see [`unsupported`]), to show as warnings.
pub fn check_files(paths: &[String]) -> Vec<(String, Result<Vec<String>, String>)> {
    paths
        .iter()
        .map(|p| {
            let r = load::load_paths(std::slice::from_ref(p))
                .map(|(f, _)| unsupported(&f))
                .map_err(|e| e.to_string());
            (p.clone(), r)
        })
        .collect()
}

/// `caravan config validate FILE...`: one result per path, the error text naming
/// `file:line:col` where it can. See [`check_files`] for the warnings.
pub fn validate_files(paths: &[String]) -> Vec<(String, Result<(), String>)> {
    check_files(paths)
        .into_iter()
        .map(|(p, r)| (p, r.map(|_| ())))
        .collect()
}
