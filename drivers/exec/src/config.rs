//! Configuration of the exec driver: the plugin/client options ([`ExecDriverConfig`]) and a
//! task's `config {}` block ([`ExecTaskConfig`]).

use crate::caps::NOMAD_DEFAULTS;
use caravan_driver::config_value::{kind, string_list};
use caravan_driver::DriverError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Nomad's default `chroot_env` (`client/config.DefaultChrootEnv`): host path → path in
/// the chroot. Sources missing on the host are skipped when this default is in use.
pub const DEFAULT_CHROOT_ENV: &[(&str, &str)] = &[
    ("/bin", "/bin"),
    ("/etc", "/etc"),
    ("/lib", "/lib"),
    ("/lib32", "/lib32"),
    ("/lib64", "/lib64"),
    ("/run/resolvconf", "/run/resolvconf"),
    ("/run/systemd/resolve", "/run/systemd/resolve"),
    ("/sbin", "/sbin"),
    ("/usr", "/usr"),
];

/// Isolation of the PID or IPC namespace (`pid_mode`, `ipc_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IsolationMode {
    /// A namespace of the task's own (the default).
    #[default]
    Private,
    /// The host's namespace.
    Host,
}

impl IsolationMode {
    fn parse(key: &str, s: &str) -> Result<IsolationMode, DriverError> {
        match s {
            "private" => Ok(IsolationMode::Private),
            "host" => Ok(IsolationMode::Host),
            other => Err(DriverError::InvalidConfig(format!(
                "{key} must be \"private\" or \"host\", got {other:?}"
            ))),
        }
    }
}

/// Options of the exec driver on one client: Nomad's `plugin "exec" { config { ... } }`
/// (`no_pivot_root`, `default_pid_mode`, `default_ipc_mode`, `allow_caps`) plus the client
/// options the driver needs (`chroot_env`, `user.denylist`) and where cgroups live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecDriverConfig {
    /// Use `chroot` instead of `pivot_root` (needed when the task dirs are on a ramdisk).
    pub no_pivot_root: bool,
    /// PID namespace of tasks that do not set `pid_mode`.
    pub default_pid_mode: IsolationMode,
    /// IPC namespace of tasks that do not set `ipc_mode`.
    pub default_ipc_mode: IsolationMode,
    /// Capabilities tasks may have (names like `"chown"`, or `"all"`); Nomad's default set.
    pub allow_caps: Vec<String>,
    /// The client's `chroot_env`: host path → path inside the chroot. `None`: Nomad's
    /// default map ([`DEFAULT_CHROOT_ENV`]).
    pub chroot_env: Option<BTreeMap<String, String>>,
    /// Users tasks may not run as (the client's `user.denylist`). Default `["root"]`.
    pub user_denylist: Vec<String>,
    /// Where the cgroup filesystem is mounted (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// The cgroup under which task cgroups are made: `caravan` gives
    /// `<root>/<controller>/caravan/<alloc>.<task>` on v1 and
    /// `<root>/caravan.slice/<alloc>.<task>.scope` on v2.
    pub cgroup_parent: String,
}

impl Default for ExecDriverConfig {
    fn default() -> Self {
        ExecDriverConfig {
            no_pivot_root: false,
            default_pid_mode: IsolationMode::Private,
            default_ipc_mode: IsolationMode::Private,
            allow_caps: NOMAD_DEFAULTS
                .iter()
                .map(|c| c.to_ascii_lowercase())
                .collect(),
            chroot_env: None,
            user_denylist: vec!["root".to_string()],
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            cgroup_parent: "caravan".to_string(),
        }
    }
}

impl ExecDriverConfig {
    /// The chroot map in effect and whether it is the default one (whose missing sources
    /// are skipped rather than refused).
    pub fn chroot_map(&self) -> (Vec<(String, String)>, bool) {
        match &self.chroot_env {
            Some(m) => (
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                false,
            ),
            None => (
                DEFAULT_CHROOT_ENV
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                true,
            ),
        }
    }
}

impl ExecDriverConfig {
    /// Applies the agent's `plugin "exec" { config { ... } }` block: `no_pivot_root`,
    /// `default_pid_mode`, `default_ipc_mode` and `allow_caps`. Repeated blocks arrive as a
    /// list and are applied in order. Returns warnings for keys Caravan does not act on;
    /// a value of the wrong kind is an error naming the key.
    pub fn apply_plugin_config(&mut self, config: &Value) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        let blocks: Vec<&Map<String, Value>> = match config {
            Value::Null => Vec::new(),
            Value::Object(m) => vec![m],
            Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
            other => {
                return Err(format!(
                    "plugin \"exec\" config must be a block, got {}",
                    kind(other)
                ))
            }
        };
        for block in blocks {
            for (key, v) in block {
                let bad = |want: &str| {
                    format!(
                        "plugin \"exec\" config: {key} must be {want}, got {}",
                        kind(v)
                    )
                };
                match key.as_str() {
                    "no_pivot_root" => {
                        self.no_pivot_root = v.as_bool().ok_or_else(|| bad("a bool"))?
                    }
                    "default_pid_mode" | "default_ipc_mode" => {
                        let s = v.as_str().ok_or_else(|| bad("a string"))?;
                        let mode = IsolationMode::parse(key, s).map_err(|e| e.to_string())?;
                        if key == "default_pid_mode" {
                            self.default_pid_mode = mode;
                        } else {
                            self.default_ipc_mode = mode;
                        }
                    }
                    "allow_caps" => {
                        let caps = string_list(block, key).map_err(|e| e.to_string())?;
                        crate::caps::CapSet::parse(&caps)
                            .map_err(|e| format!("plugin \"exec\" config: allow_caps: {e}"))?;
                        self.allow_caps = caps.iter().map(|c| c.to_ascii_lowercase()).collect();
                    }
                    other => warnings.push(format!(
                        "plugin \"exec\" config: option {other:?} is not supported by \
                         Caravan's exec driver and is ignored"
                    )),
                }
            }
        }
        Ok(warnings)
    }

    /// Applies the client's `user.denylist` and `user.checked_drivers` options (comma
    /// separated, as Nomad): the denylist holds for exec only when `exec` is among the
    /// checked drivers (Nomad's default: `exec,qemu,java`).
    pub fn apply_user_options(&mut self, denylist: Option<&str>, checked_drivers: Option<&str>) {
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        if let Some(d) = denylist {
            self.user_denylist = split(d);
        }
        if let Some(c) = checked_drivers {
            if !split(c).iter().any(|d| d == crate::driver::DRIVER_NAME) {
                self.user_denylist.clear();
            }
        }
    }
}

/// Keys Nomad's exec accepts that Caravan accepts but does not act on.
const IGNORED_KEYS: &[&str] = &[
    "cgroup_v1_override",
    "cgroup_v2_override",
    "oom_score_adj",
    "denied_envvars",
];

/// A parsed exec task `config {}` block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecTaskConfig {
    /// The program, as seen inside the chroot: an absolute path, a path relative to the
    /// task dir, or a name looked up in `/local`, `/` and `PATH`.
    pub command: String,
    pub args: Vec<String>,
    /// `None`: the plugin's default.
    pub pid_mode: Option<IsolationMode>,
    pub ipc_mode: Option<IsolationMode>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Working directory inside the chroot (absolute); default `/` (the task dir).
    pub work_dir: Option<String>,
    /// Caravan extension: the most processes the task may have (`pids.max`); 0 = no limit.
    pub pids_limit: u64,
}

impl ExecTaskConfig {
    /// Parses the task's `config {}` block.
    pub fn parse(cfg: &Map<String, Value>) -> Result<Self, DriverError> {
        const KNOWN: &[&str] = &[
            "command",
            "args",
            "pid_mode",
            "ipc_mode",
            "cap_add",
            "cap_drop",
            "work_dir",
            "pids_limit",
        ];
        for key in cfg.keys() {
            if !KNOWN.contains(&key.as_str()) && !IGNORED_KEYS.contains(&key.as_str()) {
                return Err(DriverError::InvalidConfig(format!(
                    "unknown exec config option {key:?}; expected one of {}",
                    KNOWN.join(", ")
                )));
            }
        }
        let command = match cfg.get("command") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(DriverError::InvalidConfig(
                    "missing required \"command\" in the exec config block".into(),
                ))
            }
            Some(other) => {
                return Err(DriverError::InvalidConfig(format!(
                    "\"command\" must be a string, got {}",
                    kind(other)
                )))
            }
        };
        let mode = |key: &str| -> Result<Option<IsolationMode>, DriverError> {
            match cfg.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => IsolationMode::parse(key, s).map(Some),
                Some(other) => Err(DriverError::InvalidConfig(format!(
                    "\"{key}\" must be a string, got {}",
                    kind(other)
                ))),
            }
        };
        let work_dir = match cfg.get("work_dir") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) if s.starts_with('/') => Some(s.clone()),
            Some(Value::String(s)) => {
                return Err(DriverError::InvalidConfig(format!(
                    "\"work_dir\" must be an absolute path inside the chroot, got {s:?}"
                )))
            }
            Some(other) => {
                return Err(DriverError::InvalidConfig(format!(
                    "\"work_dir\" must be a string, got {}",
                    kind(other)
                )))
            }
        };
        let pids_limit = match cfg.get("pids_limit") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
                DriverError::InvalidConfig(format!(
                    "\"pids_limit\" must be a non-negative integer, got {n}"
                ))
            })?,
            Some(other) => {
                return Err(DriverError::InvalidConfig(format!(
                    "\"pids_limit\" must be a number, got {}",
                    kind(other)
                )))
            }
        };
        Ok(ExecTaskConfig {
            command,
            args: string_list(cfg, "args")?,
            pid_mode: mode("pid_mode")?,
            ipc_mode: mode("ipc_mode")?,
            cap_add: string_list(cfg, "cap_add")?,
            cap_drop: string_list(cfg, "cap_drop")?,
            work_dir,
            pids_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ExecTaskConfig, DriverError> {
        ExecTaskConfig::parse(v.as_object().unwrap())
    }

    #[test]
    fn parses_full_block() {
        let c = parse(json!({
            "command": "/bin/sh", "args": ["-c", "true", 1],
            "pid_mode": "host", "ipc_mode": "private",
            "cap_add": ["chown"], "cap_drop": ["all"], "work_dir": "/local", "pids_limit": 20
        }))
        .unwrap();
        assert_eq!(c.args, vec!["-c", "true", "1"]);
        assert_eq!(c.pid_mode, Some(IsolationMode::Host));
        assert_eq!(c.ipc_mode, Some(IsolationMode::Private));
        assert_eq!(c.cap_drop, vec!["all"]);
        assert_eq!(c.work_dir.as_deref(), Some("/local"));
        assert_eq!(c.pids_limit, 20);
    }

    #[test]
    fn rejects_bad_input_clearly() {
        let e = parse(json!({"args": []})).unwrap_err();
        assert!(
            e.to_string().contains("missing required \"command\""),
            "{e}"
        );
        let e = parse(json!({"command": "x", "pid_mode": "shared"})).unwrap_err();
        assert!(e.to_string().contains("\"private\" or \"host\""), "{e}");
        assert!(parse(json!({"command": "x", "bogus": 1})).is_err());
        assert!(parse(json!({"command": "x", "work_dir": "rel"})).is_err());
        assert!(parse(json!({"command": "x", "pids_limit": -1})).is_err());
        assert!(parse(json!({"command": "x", "oom_score_adj": 5})).is_ok());
    }

    #[test]
    fn plugin_config_and_user_options_apply() {
        let mut c = ExecDriverConfig::default();
        let w = c
            .apply_plugin_config(&json!([
                {"no_pivot_root": true, "allow_caps": ["CAP_CHOWN", "kill"]},
                {"default_pid_mode": "host", "denied_host_uids": "0"}
            ]))
            .unwrap();
        assert!(c.no_pivot_root);
        assert_eq!(c.allow_caps, vec!["cap_chown", "kill"]);
        assert_eq!(c.default_pid_mode, IsolationMode::Host);
        assert_eq!(c.default_ipc_mode, IsolationMode::Private);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("denied_host_uids"));
        let e = c
            .apply_plugin_config(&json!({"no_pivot_root": "yes"}))
            .unwrap_err();
        assert!(e.contains("no_pivot_root must be a bool"), "{e}");
        let e = c
            .apply_plugin_config(&json!({"allow_caps": ["not_a_cap"]}))
            .unwrap_err();
        assert!(e.contains("not_a_cap"), "{e}");
        assert!(c
            .apply_plugin_config(&json!({"default_ipc_mode": "shared"}))
            .is_err());

        let mut c = ExecDriverConfig::default();
        assert_eq!(c.user_denylist, vec!["root"]);
        c.apply_user_options(Some("root, admin"), None);
        assert_eq!(c.user_denylist, vec!["root", "admin"]);
        c.apply_user_options(None, Some("exec,java"));
        assert_eq!(c.user_denylist, vec!["root", "admin"]);
        c.apply_user_options(None, Some("qemu"));
        assert!(c.user_denylist.is_empty(), "exec not checked: no denylist");
    }

    #[test]
    fn default_chroot_map_is_nomads() {
        let (m, default) = ExecDriverConfig::default().chroot_map();
        assert!(default);
        assert!(m.iter().any(|(k, v)| k == "/usr" && v == "/usr"));
        assert_eq!(m.len(), 9);
        let cfg = ExecDriverConfig {
            chroot_env: Some(BTreeMap::from([("/bin".into(), "/bin".into())])),
            ..Default::default()
        };
        let (m, default) = cfg.chroot_map();
        assert!(!default);
        assert_eq!(m.len(), 1);
    }
}
