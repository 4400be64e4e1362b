//! Agent configuration: `caravan agent` flags and the subset of Nomad's agent config file the
//! walking skeleton runs (the agent-configuration issue extends this loader to every block,
//! HCL v1 syntax and directory merging). Security settings that are not built yet are refused,
//! never accepted and ignored.

use anyhow::{anyhow, bail, Context};
use caravan_structs::NodeReservedResources;
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
  -log-level=<level>  TRACE, DEBUG, INFO, WARN, ERROR.
  -http-port=<port>   HTTP port (Caravan addition; ports { http } in config files).
";

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub help: bool,
    pub dev: bool,
    pub server: bool,
    pub client: bool,
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
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            help: false,
            dev: false,
            server: false,
            client: false,
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
        }
    }
}

impl AgentConfig {
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
            "Version": {"Version": caravan_structs::NOMAD_API_VERSION, "VersionMetadata": format!("caravan{}", caravan_structs::CARAVAN_VERSION)},
        })
    }
}

/// Parses `caravan agent` arguments (Go-style single-dash flags).
pub fn from_args(args: &[String]) -> anyhow::Result<AgentConfig> {
    let mut cfg = AgentConfig::default();
    let mut overrides: Vec<(String, String)> = Vec::new();
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
            "dev" | "server" | "client" | "h" | "help" | "acl-enabled"
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
            "acl-enabled" => {
                if value != "false" {
                    bail!("-acl-enabled: ACLs are not available in Caravan yet; refusing to start an agent that would accept every request unauthenticated");
                }
            }
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
    for path in &configs {
        load_path(&mut cfg, path)?;
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

fn load_path(cfg: &mut AgentConfig, path: &str) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("error loading {path}"))?;
    if meta.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("hcl") | Some("json")
                )
            })
            .collect();
        files.sort();
        for f in files {
            load_file(cfg, &f.to_string_lossy())?;
        }
        Ok(())
    } else {
        load_file(cfg, path)
    }
}

fn load_file(cfg: &mut AgentConfig, path: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("error loading {path}"))?;
    let value: serde_json::Value = if path.ends_with(".json") {
        serde_json::from_str(&text).with_context(|| format!("error parsing {path}"))?
    } else {
        hcl::from_str(&text).map_err(|e| anyhow!("error parsing {path}: {e}"))?
    };
    apply_value(cfg, &value).map_err(|e| anyhow!("{path}: {e}"))?;
    cfg.config_files.push(path.to_string());
    Ok(())
}

fn as_str(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_bool(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => s == "true" || s == "1",
        _ => false,
    }
}

/// HCL decodes a block to an object, or to an array of objects when repeated.
fn objects(v: &serde_json::Value) -> Vec<&serde_json::Map<String, serde_json::Value>> {
    match v {
        serde_json::Value::Object(m) => vec![m],
        serde_json::Value::Array(a) => a.iter().flat_map(objects).collect(),
        _ => vec![],
    }
}

fn apply_value(cfg: &mut AgentConfig, v: &serde_json::Value) -> anyhow::Result<()> {
    let Some(top) = v.as_object() else {
        bail!("agent configuration must be a set of keys and blocks");
    };
    for (k, val) in top {
        match k.as_str() {
            "data_dir" => cfg.data_dir = PathBuf::from(as_str(val).unwrap_or_default()),
            "bind_addr" => cfg.bind_addr = as_str(val).unwrap_or_default(),
            "datacenter" => cfg.datacenter = as_str(val).unwrap_or_default(),
            "region" => cfg.region = as_str(val).unwrap_or_default(),
            "name" => cfg.node_name = as_str(val).unwrap_or_default(),
            "log_level" => cfg.log_level = as_str(val).unwrap_or_default(),
            "ports" => {
                for m in objects(val) {
                    for (pk, pv) in m {
                        let port: u16 = as_str(pv)
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| anyhow!("ports.{pk}: not a port number"))?;
                        match pk.as_str() {
                            "http" => cfg.http_port = port,
                            "rpc" => cfg.rpc_port = port,
                            "serf" => cfg.serf_port = port,
                            other => bail!("ports: unknown key {other:?}"),
                        }
                    }
                }
            }
            "server" => {
                for m in objects(val) {
                    for (sk, sv) in m {
                        match sk.as_str() {
                            "enabled" => cfg.server = as_bool(sv),
                            "num_schedulers" => {
                                cfg.num_schedulers =
                                    as_str(sv).and_then(|s| s.parse().ok()).unwrap_or(2)
                            }
                            "bootstrap_expect" => {
                                let n: u64 = as_str(sv).and_then(|s| s.parse().ok()).unwrap_or(1);
                                if n > 1 {
                                    bail!("server.bootstrap_expect = {n}: multi-server clusters need the clustering feature, not available in Caravan yet");
                                }
                            }
                            other => bail!("server.{other} is not available in Caravan yet"),
                        }
                    }
                }
            }
            "client" => {
                for m in objects(val) {
                    for (ck, cv) in m {
                        match ck.as_str() {
                            "enabled" => cfg.client = as_bool(cv),
                            "node_class" => cfg.node_class = as_str(cv).unwrap_or_default(),
                            "node_pool" => cfg.node_pool = as_str(cv).unwrap_or_default(),
                            "meta" => {
                                for mm in objects(cv) {
                                    for (mk, mv) in mm {
                                        cfg.meta.insert(mk.clone(), as_str(mv).unwrap_or_default());
                                    }
                                }
                            }
                            "reserved" => {
                                for r in objects(cv) {
                                    for (rk, rv) in r {
                                        let n = || {
                                            as_str(rv)
                                                .and_then(|s| s.parse::<i64>().ok())
                                                .unwrap_or(0)
                                        };
                                        match rk.as_str() {
                                            "cpu" => cfg.reserved.cpu.cpu_shares = n(),
                                            "memory" => cfg.reserved.memory.memory_mb = n(),
                                            "disk" => cfg.reserved.disk.disk_mb = n(),
                                            "reserved_ports" => {
                                                let s = as_str(rv).unwrap_or_default();
                                                caravan_structs::parse_port_ranges(&s).map_err(
                                                    |e| {
                                                        anyhow!(
                                                            "client.reserved.reserved_ports: {e}"
                                                        )
                                                    },
                                                )?;
                                                cfg.reserved.networks.reserved_host_ports = s;
                                            }
                                            other => {
                                                bail!("client.reserved: unknown key {other:?}")
                                            }
                                        }
                                    }
                                }
                            }
                            other => bail!("client.{other} is not available in Caravan yet"),
                        }
                    }
                }
            }
            "plugin" => {
                // plugin "raw_exec" { config { enabled = true } }
                for m in objects(val) {
                    for (name, body) in m {
                        if name != "raw_exec" {
                            bail!("plugin {name:?}: only the raw_exec driver is available in Caravan yet");
                        }
                        for b in objects(body) {
                            for c in b.get("config").map(objects).unwrap_or_default() {
                                if let Some(e) = c.get("enabled") {
                                    cfg.raw_exec_enabled = as_bool(e);
                                }
                            }
                        }
                    }
                }
            }
            "acl" => {
                if objects(val)
                    .iter()
                    .any(|m| m.get("enabled").map(as_bool).unwrap_or(false))
                {
                    bail!("acl {{ enabled = true }}: ACLs are not available in Caravan yet; refusing to start an agent that would accept every request unauthenticated");
                }
            }
            "tls" => {
                bail!("tls {{}}: TLS is not available in Caravan yet; refusing to start with a TLS block that would be ignored");
            }
            "telemetry" | "disable_update_check" | "leave_on_interrupt" | "leave_on_terminate" => {
                tracing::warn!("agent config {k:?} is accepted and has no effect yet");
            }
            other => bail!("agent config key {other:?} is not available in Caravan yet"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn dev_mode_defaults() {
        let c = from_args(&args("-dev")).unwrap();
        assert!(c.dev && c.server && c.client && c.raw_exec_enabled);
        assert_eq!(c.bind_addr, "127.0.0.1");
        assert_eq!(c.http_port, 4646);
        assert!(c.data_dir_is_temp);
    }

    #[test]
    fn refuses_acl_and_tls() {
        let e = from_args(&args("-dev -acl-enabled"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ACLs are not available"), "{e}");
        let dir = std::env::temp_dir().join(format!("caravan-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.hcl");
        std::fs::write(&f, "acl {\n  enabled = true\n}\n").unwrap();
        let e = from_args(&["-dev".into(), format!("-config={}", f.display())]).unwrap_err();
        assert!(format!("{e:#}").contains("ACLs are not available"), "{e:#}");
        std::fs::write(&f, "tls {\n  http = true\n}\n").unwrap();
        let e = from_args(&["-dev".into(), format!("-config={}", f.display())]).unwrap_err();
        assert!(format!("{e:#}").contains("TLS is not available"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_flag_is_an_error() {
        assert!(from_args(&args("-dev -bogus=1")).is_err());
        assert!(from_args(&args("-server"))
            .unwrap_err()
            .to_string()
            .contains("data directory"));
    }

    #[test]
    fn reads_a_config_file() {
        let dir = std::env::temp_dir().join(format!("caravan-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("agent.hcl");
        std::fs::write(
            &f,
            r#"
data_dir = "/tmp/x"
datacenter = "east"
ports { http = 5656 }
server { enabled = true }
client {
  enabled = true
  meta { rack = "r1" }
  reserved {
    memory         = 256
    reserved_ports = "22,80"
  }
}
plugin "raw_exec" {
  config { enabled = true }
}
"#,
        )
        .unwrap();
        let c = from_args(&[format!("-config={}", f.display())]).unwrap();
        assert_eq!(c.datacenter, "east");
        assert_eq!(c.http_port, 5656);
        assert!(c.server && c.client && c.raw_exec_enabled);
        assert_eq!(c.meta["rack"], "r1");
        assert_eq!(c.reserved.memory.memory_mb, 256);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
