//! The docker task `config {}` block: Nomad's docker driver schema (`drivers/docker/config.go`),
//! checked when the task starts as Nomad's client does. Unknown keys are errors naming the key;
//! deprecated and Windows-only keys are accepted with a warning.

use crate::decode;
use caravan_driver::DriverError;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Every key of Nomad's docker task schema.
pub const KNOWN_KEYS: &[&str] = &[
    "image",
    "advertise_ipv6_address",
    "args",
    "auth",
    "auth_soft_fail",
    "cap_add",
    "cap_drop",
    "cgroupns",
    "command",
    "container_exists_attempts",
    "cpuset_cpus",
    "cpu_hard_limit",
    "cpu_cfs_period",
    "devices",
    "dns_search_domains",
    "dns_options",
    "dns_servers",
    "entrypoint",
    "extra_hosts",
    "force_pull",
    "group_add",
    "healthchecks",
    "hostname",
    "init",
    "interactive",
    "ipc_mode",
    "ipv4_address",
    "ipv6_address",
    "isolation",
    "labels",
    "load",
    "logging",
    "mac_address",
    "memory_hard_limit",
    "mount",
    "mounts",
    "network_aliases",
    "network_mode",
    "oom_score_adj",
    "runtime",
    "pids_limit",
    "pid_mode",
    "ports",
    "port_map",
    "privileged",
    "image_pull_timeout",
    "readonly_rootfs",
    "security_opt",
    "shm_size",
    "storage_opt",
    "sysctl",
    "tty",
    "ulimit",
    "uts_mode",
    "userns_mode",
    "volumes",
    "volume_driver",
    "work_dir",
];

/// Keys accepted with a deprecation warning, and what replaces them.
pub const DEPRECATED_KEYS: &[(&str, &str)] = &[
    (
        "port_map",
        "group network ports with `to` and the task's `ports` list",
    ),
    ("mounts", "`mount` blocks"),
];

/// Keys that only mean something on Windows clients.
pub const WINDOWS_ONLY_KEYS: &[&str] = &["isolation"];

/// Default `image_pull_timeout` (Nomad's).
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Registry credentials of a task (`auth {}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(deserialize_with = "decode::string_lenient")]
    pub username: String,
    #[serde(deserialize_with = "decode::string_lenient")]
    pub password: String,
    #[serde(deserialize_with = "decode::string_lenient")]
    pub email: String,
    #[serde(deserialize_with = "decode::string_lenient")]
    pub server_address: String,
}

/// A `devices {}` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceConfig {
    pub host_path: String,
    pub container_path: String,
    pub cgroup_permissions: String,
}

/// `healthchecks {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthchecksConfig {
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub disable: bool,
}

/// `logging {}`: the engine's log driver for the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// Older name of `driver`.
    #[serde(rename = "type")]
    pub typ: String,
    pub driver: String,
    #[serde(deserialize_with = "decode::string_map")]
    pub config: BTreeMap<String, String>,
}

impl LoggingConfig {
    /// The log driver: `driver`, else `type`.
    pub fn driver_name(&self) -> &str {
        if self.driver.is_empty() {
            &self.typ
        } else {
            &self.driver
        }
    }
}

/// `bind_options {}` of a mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BindOptions {
    pub propagation: String,
}

/// `tmpfs_options {}` of a mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TmpfsOptions {
    #[serde(deserialize_with = "decode::opt_i64")]
    pub size: Option<i64>,
    #[serde(deserialize_with = "decode::opt_i64")]
    pub mode: Option<i64>,
}

/// `driver_config {}` of a volume mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeDriverConfig {
    pub name: String,
    #[serde(deserialize_with = "decode::string_map")]
    pub options: BTreeMap<String, String>,
}

/// `volume_options {}` of a mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeOptions {
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub no_copy: bool,
    #[serde(deserialize_with = "decode::string_map")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "decode::block")]
    pub driver_config: Option<VolumeDriverConfig>,
}

/// A `mount {}` block: `type` is `volume` (default), `bind` or `tmpfs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MountConfig {
    #[serde(rename = "type")]
    pub typ: String,
    pub target: String,
    pub source: String,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub readonly: bool,
    #[serde(deserialize_with = "decode::block")]
    pub bind_options: Option<BindOptions>,
    #[serde(deserialize_with = "decode::block")]
    pub tmpfs_options: Option<TmpfsOptions>,
    #[serde(deserialize_with = "decode::block")]
    pub volume_options: Option<VolumeOptions>,
}

impl MountConfig {
    /// The mount type, defaulting to `volume` as Nomad does.
    pub fn kind(&self) -> &str {
        if self.typ.is_empty() {
            "volume"
        } else {
            &self.typ
        }
    }
}

/// A parsed docker task config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DockerTaskConfig {
    pub image: String,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub advertise_ipv6_address: bool,
    #[serde(deserialize_with = "decode::string_list")]
    pub args: Vec<String>,
    #[serde(deserialize_with = "decode::block")]
    pub auth: Option<AuthConfig>,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub auth_soft_fail: bool,
    #[serde(deserialize_with = "decode::string_list")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "decode::string_list")]
    pub cap_drop: Vec<String>,
    pub cgroupns: String,
    #[serde(deserialize_with = "decode::string_lenient")]
    pub command: String,
    #[serde(deserialize_with = "decode::opt_i64")]
    pub container_exists_attempts: Option<i64>,
    #[serde(deserialize_with = "decode::string_lenient")]
    pub cpuset_cpus: String,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub cpu_hard_limit: bool,
    #[serde(deserialize_with = "decode::opt_i64")]
    pub cpu_cfs_period: Option<i64>,
    #[serde(deserialize_with = "decode::blocks")]
    pub devices: Vec<DeviceConfig>,
    #[serde(deserialize_with = "decode::string_list")]
    pub dns_search_domains: Vec<String>,
    #[serde(deserialize_with = "decode::string_list")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "decode::string_list")]
    pub dns_servers: Vec<String>,
    #[serde(deserialize_with = "decode::string_list")]
    pub entrypoint: Vec<String>,
    #[serde(deserialize_with = "decode::string_list")]
    pub extra_hosts: Vec<String>,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub force_pull: bool,
    #[serde(deserialize_with = "decode::string_list")]
    pub group_add: Vec<String>,
    #[serde(deserialize_with = "decode::block")]
    pub healthchecks: Option<HealthchecksConfig>,
    pub hostname: String,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub init: bool,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub interactive: bool,
    pub ipc_mode: String,
    pub ipv4_address: String,
    pub ipv6_address: String,
    pub isolation: String,
    #[serde(deserialize_with = "decode::string_map")]
    pub labels: BTreeMap<String, String>,
    pub load: String,
    #[serde(deserialize_with = "decode::block")]
    pub logging: Option<LoggingConfig>,
    pub mac_address: String,
    #[serde(deserialize_with = "decode::opt_i64")]
    pub memory_hard_limit: Option<i64>,
    #[serde(deserialize_with = "decode::blocks")]
    pub mount: Vec<MountConfig>,
    #[serde(deserialize_with = "decode::blocks")]
    pub mounts: Vec<MountConfig>,
    #[serde(deserialize_with = "decode::string_list")]
    pub network_aliases: Vec<String>,
    pub network_mode: String,
    #[serde(deserialize_with = "decode::opt_i64")]
    pub oom_score_adj: Option<i64>,
    pub runtime: String,
    #[serde(deserialize_with = "decode::opt_i64")]
    pub pids_limit: Option<i64>,
    pub pid_mode: String,
    #[serde(deserialize_with = "decode::string_list")]
    pub ports: Vec<String>,
    #[serde(deserialize_with = "decode::string_map")]
    pub port_map: BTreeMap<String, String>,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub privileged: bool,
    #[serde(deserialize_with = "decode::string_lenient")]
    pub image_pull_timeout: String,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "decode::string_list")]
    pub security_opt: Vec<String>,
    #[serde(deserialize_with = "decode::opt_i64")]
    pub shm_size: Option<i64>,
    #[serde(deserialize_with = "decode::string_map")]
    pub storage_opt: BTreeMap<String, String>,
    #[serde(deserialize_with = "decode::string_map")]
    pub sysctl: BTreeMap<String, String>,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub tty: bool,
    #[serde(deserialize_with = "decode::string_map")]
    pub ulimit: BTreeMap<String, String>,
    pub uts_mode: String,
    pub userns_mode: String,
    #[serde(deserialize_with = "decode::string_list")]
    pub volumes: Vec<String>,
    pub volume_driver: String,
    pub work_dir: String,
}

impl DockerTaskConfig {
    /// Checks the block against the schema and parses it. Deprecated and Windows-only keys are
    /// logged as warnings (Nomad accepts them too).
    pub fn parse(cfg: &Map<String, Value>) -> Result<Self, DriverError> {
        for key in cfg.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                return Err(DriverError::InvalidConfig(format!(
                    "unknown docker config option {key:?}: it is not part of the docker \
                     driver's task config schema; remove it or check its spelling"
                )));
            }
        }
        for (key, instead) in DEPRECATED_KEYS {
            if cfg.contains_key(*key) {
                tracing::warn!(
                    key,
                    "docker config option {key:?} is deprecated; use {instead}"
                );
            }
        }
        for key in WINDOWS_ONLY_KEYS {
            if cfg.contains_key(*key) {
                tracing::warn!(
                    key,
                    "docker config option {key:?} only applies to Windows clients; ignored"
                );
            }
        }
        // Decode key by key so that an error names the key it is about.
        let mut parsed = Map::new();
        for (key, value) in cfg {
            if value.is_null() {
                continue;
            }
            let mut one = Map::new();
            one.insert(key.clone(), value.clone());
            serde_json::from_value::<DockerTaskConfig>(Value::Object(one)).map_err(|e| {
                DriverError::InvalidConfig(format!("docker config option {key:?}: {e}"))
            })?;
            parsed.insert(key.clone(), value.clone());
        }
        let c: DockerTaskConfig = serde_json::from_value(Value::Object(parsed))
            .map_err(|e| DriverError::InvalidConfig(format!("docker config: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), DriverError> {
        if self.image.trim().is_empty() {
            return Err(DriverError::InvalidConfig(
                "missing required \"image\" in the docker config block".into(),
            ));
        }
        for m in self.all_mounts() {
            if !matches!(m.kind(), "bind" | "volume" | "tmpfs") {
                return Err(DriverError::InvalidConfig(format!(
                    "mount type {:?} is not supported; use \"bind\", \"volume\" or \"tmpfs\"",
                    m.typ
                )));
            }
            if m.target.is_empty() {
                return Err(DriverError::InvalidConfig(
                    "a mount block needs a \"target\" path inside the container".into(),
                ));
            }
        }
        if !self.work_dir.is_empty() && !self.work_dir.starts_with('/') {
            return Err(DriverError::InvalidConfig(format!(
                "\"work_dir\" must be an absolute path inside the container, got {:?}",
                self.work_dir
            )));
        }
        if let Some(l) = &self.memory_hard_limit {
            if *l < 0 {
                return Err(DriverError::InvalidConfig(
                    "\"memory_hard_limit\" must not be negative".into(),
                ));
            }
        }
        self.pull_timeout()?;
        if !self.cgroupns.is_empty() && !matches!(self.cgroupns.as_str(), "host" | "private") {
            return Err(DriverError::InvalidConfig(format!(
                "\"cgroupns\" must be \"host\" or \"private\", got {:?}",
                self.cgroupns
            )));
        }
        Ok(())
    }

    /// `mount` and the deprecated `mounts` blocks together.
    pub fn all_mounts(&self) -> impl Iterator<Item = &MountConfig> {
        self.mount.iter().chain(self.mounts.iter())
    }

    /// `image_pull_timeout` (a Go duration such as "5m"), default 5 minutes.
    pub fn pull_timeout(&self) -> Result<Duration, DriverError> {
        if self.image_pull_timeout.trim().is_empty() {
            return Ok(DEFAULT_PULL_TIMEOUT);
        }
        parse_go_duration(&self.image_pull_timeout).ok_or_else(|| {
            DriverError::InvalidConfig(format!(
                "\"image_pull_timeout\" {:?} is not a duration such as \"90s\" or \"10m\"",
                self.image_pull_timeout
            ))
        })
    }

    /// The command and arguments: `command` followed by `args`, or nothing (the image's).
    pub fn cmd(&self) -> Option<Vec<String>> {
        if self.command.is_empty() {
            if self.args.is_empty() {
                None
            } else {
                Some(self.args.clone())
            }
        } else {
            let mut v = vec![self.command.clone()];
            v.extend(self.args.iter().cloned());
            Some(v)
        }
    }
}

/// Parses a Go duration string ("1h2m3.5s", "300ms", "10m"); a bare number is seconds.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * factor;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<DockerTaskConfig, DriverError> {
        DockerTaskConfig::parse(v.as_object().unwrap())
    }

    #[test]
    fn parses_a_typical_block() {
        let c = parse(json!({
            "image": "redis:7",
            "command": "sh",
            "args": ["-c", "echo hi", 8080],
            "ports": ["db"],
            "labels": [{"team": "a"}],
            "volumes": ["local/x:/x"],
            "mount": [{"type": "tmpfs", "target": "/scratch", "tmpfs_options": [{"size": 1024}]}],
            "logging": {"type": "json-file", "config": [{"max-size": "10m"}]},
            "ulimit": {"nproc": "100:200"},
            "shm_size": "65536",
            "privileged": "false",
            "healthchecks": [{"disable": true}],
            "image_pull_timeout": "90s"
        }))
        .unwrap();
        assert_eq!(c.cmd().unwrap(), vec!["sh", "-c", "echo hi", "8080"]);
        assert_eq!(c.labels["team"], "a");
        assert_eq!(c.mount[0].kind(), "tmpfs");
        assert_eq!(c.mount[0].tmpfs_options.as_ref().unwrap().size, Some(1024));
        assert_eq!(c.logging.as_ref().unwrap().driver_name(), "json-file");
        assert_eq!(c.logging.as_ref().unwrap().config["max-size"], "10m");
        assert_eq!(c.shm_size, Some(65536));
        assert!(c.healthchecks.as_ref().unwrap().disable);
        assert_eq!(c.pull_timeout().unwrap(), Duration::from_secs(90));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse(json!({"image": "x", "imagee": "y"})).unwrap_err();
        assert!(
            matches!(&e, DriverError::InvalidConfig(m) if m.contains("\"imagee\"")),
            "{e}"
        );
    }

    #[test]
    fn bad_value_names_the_key() {
        let e = parse(json!({"image": "x", "shm_size": "lots"})).unwrap_err();
        assert!(e.to_string().contains("\"shm_size\""), "{e}");
        let e =
            parse(json!({"image": "x", "mount": [{"type": "nfs", "target": "/a"}]})).unwrap_err();
        assert!(e.to_string().contains("\"nfs\""), "{e}");
        let e = parse(json!({"image": "x", "mount": [{"target": "/a", "bogus": 1}]})).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn image_is_required() {
        let e = parse(json!({"command": "x"})).unwrap_err();
        assert!(e.to_string().contains("\"image\""), "{e}");
    }

    #[test]
    fn deprecated_keys_are_accepted() {
        let c = parse(
            json!({"image": "x", "port_map": [{"http": 8080}], "mounts": [{"target": "/a"}]}),
        )
        .unwrap();
        assert_eq!(c.port_map["http"], "8080");
        assert_eq!(c.all_mounts().count(), 1);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_go_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("5 minutes"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn command_and_args() {
        let c = parse(json!({"image": "x"})).unwrap();
        assert_eq!(c.cmd(), None);
        let c = parse(json!({"image": "x", "args": ["a"]})).unwrap();
        assert_eq!(c.cmd(), Some(vec!["a".to_string()]));
    }
}
