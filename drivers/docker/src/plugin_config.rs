//! The client's `plugin "docker" { config { ... } }` block (Nomad's docker plugin options).

use crate::decode;
use crate::task_config::parse_go_duration;
use caravan_driver::DriverError;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// Where the engine listens when `endpoint` is not set.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// Capabilities a task may add unless the operator sets `allow_caps` (Nomad's default list:
/// Docker's defaults without `net_raw`).
pub const DEFAULT_ALLOW_CAPS: &[&str] = &[
    "audit_write",
    "chown",
    "dac_override",
    "fowner",
    "fsetid",
    "kill",
    "mknod",
    "net_bind_service",
    "setfcap",
    "setgid",
    "setpcap",
    "setuid",
    "sys_chroot",
];

/// Runtimes tasks may select unless `allow_runtimes` says otherwise.
pub const DEFAULT_ALLOW_RUNTIMES: &[&str] = &["runc", "nvidia"];

/// `auth {}`: registry credentials for pulls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginAuth {
    /// A Docker `config.json` with registry credentials.
    pub config: String,
    /// A credential helper (`docker-credential-<helper>`).
    pub helper: String,
}

/// `tls {}`: client certificates for a TCP endpoint (stored; TLS endpoints are not supported).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginTls {
    pub cert: String,
    pub key: String,
    pub ca: String,
}

/// `gc { dangling_containers {} }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DanglingContainers {
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub enabled: bool,
    pub period: String,
    pub creation_grace: String,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub dry_run: bool,
}

impl Default for DanglingContainers {
    fn default() -> Self {
        DanglingContainers {
            enabled: true,
            period: "5m".into(),
            creation_grace: "5m".into(),
            dry_run: false,
        }
    }
}

/// `gc {}`: what is removed when a task is destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcConfig {
    /// Remove images no task uses any more (after `image_delay`).
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub image: bool,
    pub image_delay: String,
    /// Remove the container when its task is destroyed.
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub container: bool,
    #[serde(deserialize_with = "decode::block")]
    pub dangling_containers: Option<DanglingContainers>,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            image: true,
            image_delay: "3m".into(),
            container: true,
            dangling_containers: Some(DanglingContainers::default()),
        }
    }
}

/// `volumes {}`: whether tasks may mount host paths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumesConfig {
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub enabled: bool,
    pub selinuxlabel: String,
}

/// `logging {}`: the default log driver of containers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLogging {
    #[serde(rename = "type")]
    pub typ: String,
    #[serde(deserialize_with = "decode::string_map")]
    pub config: std::collections::BTreeMap<String, String>,
}

/// `allowed_modes {}`: stored for compatibility.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllowedModes {
    #[serde(deserialize_with = "decode::string_list")]
    pub pid: Vec<String>,
    #[serde(deserialize_with = "decode::string_list")]
    pub ipc: Vec<String>,
    #[serde(deserialize_with = "decode::string_list")]
    pub userns: Vec<String>,
    #[serde(deserialize_with = "decode::string_list")]
    pub uts: Vec<String>,
}

/// The docker driver's plugin configuration with Nomad's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerPluginConfig {
    /// `unix:///path`, a plain socket path, or `tcp://host:port` / `http://host:port`.
    pub endpoint: String,
    #[serde(deserialize_with = "decode::block")]
    pub auth: Option<PluginAuth>,
    #[serde(deserialize_with = "decode::block")]
    pub tls: Option<PluginTls>,
    #[serde(deserialize_with = "decode::string_list")]
    pub extra_labels: Vec<String>,
    #[serde(deserialize_with = "decode::block")]
    pub logging: Option<PluginLogging>,
    #[serde(deserialize_with = "decode::block")]
    pub gc: Option<GcConfig>,
    #[serde(deserialize_with = "decode::block")]
    pub volumes: Option<VolumesConfig>,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub allow_privileged: bool,
    #[serde(deserialize_with = "decode::string_list")]
    pub allow_caps: Vec<String>,
    pub nvidia_runtime: String,
    #[serde(deserialize_with = "decode::string_list")]
    pub allow_runtimes: Vec<String>,
    pub infra_image: String,
    pub infra_image_pull_timeout: String,
    pub image_pull_timeout: String,
    #[serde(deserialize_with = "decode::opt_i64")]
    pub container_exists_attempts: Option<i64>,
    #[serde(deserialize_with = "decode::opt_i64")]
    pub oom_score_adj: Option<i64>,
    pub pull_activity_timeout: String,
    /// Upper bound on a task's `pids_limit` (0: none).
    #[serde(deserialize_with = "decode::opt_i64")]
    pub pids_limit: Option<i64>,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub disable_log_collection: bool,
    #[serde(deserialize_with = "decode::bool_lenient")]
    pub windows_allow_insecure_container_admin: bool,
    #[serde(deserialize_with = "decode::block")]
    pub allowed_modes: Option<AllowedModes>,
}

impl Default for DockerPluginConfig {
    fn default() -> Self {
        DockerPluginConfig {
            endpoint: String::new(),
            auth: None,
            tls: None,
            extra_labels: Vec::new(),
            logging: None,
            gc: None,
            volumes: None,
            allow_privileged: false,
            allow_caps: DEFAULT_ALLOW_CAPS.iter().map(|s| s.to_string()).collect(),
            nvidia_runtime: "nvidia".into(),
            allow_runtimes: DEFAULT_ALLOW_RUNTIMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            infra_image: "registry.k8s.io/pause-amd64:3.3".into(),
            infra_image_pull_timeout: "5m".into(),
            image_pull_timeout: "5m".into(),
            container_exists_attempts: None,
            oom_score_adj: None,
            pull_activity_timeout: "2m".into(),
            pids_limit: None,
            disable_log_collection: false,
            windows_allow_insecure_container_admin: false,
            allowed_modes: None,
        }
    }
}

impl DockerPluginConfig {
    /// Parses the plugin's `config {}` block (JSON as the agent's config loader produces it);
    /// an empty map gives Nomad's defaults.
    pub fn parse(cfg: &Map<String, Value>) -> Result<Self, DriverError> {
        let mut c: DockerPluginConfig = serde_json::from_value(Value::Object(cfg.clone()))
            .map_err(|e| DriverError::InvalidConfig(format!("docker plugin config: {e}")))?;
        if !cfg.contains_key("allow_caps") {
            c.allow_caps = DEFAULT_ALLOW_CAPS.iter().map(|s| s.to_string()).collect();
        }
        c.allow_caps = c.allow_caps.iter().map(|s| normalize_cap(s)).collect();
        if let Some(d) = [&c.image_pull_timeout, &c.pull_activity_timeout]
            .into_iter()
            .find(|d| !d.is_empty() && parse_go_duration(d).is_none())
        {
            return Err(DriverError::InvalidConfig(format!(
                "docker plugin config: {d:?} is not a duration such as \"2m\""
            )));
        }
        Ok(c)
    }

    /// The engine endpoint, [`DEFAULT_ENDPOINT`] when unset (or `DOCKER_HOST` if the agent has it).
    pub fn endpoint(&self) -> String {
        if !self.endpoint.is_empty() {
            return self.endpoint.clone();
        }
        std::env::var("DOCKER_HOST")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
    }

    /// Whether tasks may mount host paths outside their alloc dir.
    pub fn volumes_enabled(&self) -> bool {
        self.volumes.as_ref().map(|v| v.enabled).unwrap_or(false)
    }

    /// `pull_activity_timeout` (default 2m): how long a pull may go without progress; `None`
    /// when set to zero (off).
    pub fn pull_activity_timeout(&self) -> Option<Duration> {
        match parse_go_duration(&self.pull_activity_timeout) {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(Duration::from_secs(120)),
        }
    }

    /// `gc {}` with defaults.
    pub fn gc(&self) -> GcConfig {
        self.gc.clone().unwrap_or_default()
    }

    /// Whether `cap` (any case, `CAP_` prefix optional) may be added.
    pub fn cap_allowed(&self, cap: &str) -> bool {
        let cap = normalize_cap(cap);
        self.allow_caps.iter().any(|a| a == "all" || *a == cap)
    }
}

/// `CAP_NET_ADMIN`, `net_admin`, `NET_ADMIN` → `net_admin`.
pub fn normalize_cap(cap: &str) -> String {
    let lower = cap.trim().to_ascii_lowercase();
    lower
        .strip_prefix("cap_")
        .map(str::to_string)
        .unwrap_or(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_match_nomad() {
        let c = DockerPluginConfig::parse(&Map::new()).unwrap();
        assert!(!c.allow_privileged);
        assert!(!c.volumes_enabled());
        assert!(c.gc().container && c.gc().image);
        assert!(c.cap_allowed("CAP_CHOWN"));
        assert!(!c.cap_allowed("net_raw"));
        assert!(!c.cap_allowed("sys_admin"));
    }

    #[test]
    fn parses_nomad_blocks() {
        let c = DockerPluginConfig::parse(
            json!({
                "endpoint": "unix:///run/x.sock",
                "allow_privileged": true,
                "allow_caps": ["ALL"],
                "volumes": [{"enabled": true}],
                "gc": {"container": false, "image_delay": "1h"},
                "extra_labels": ["job_name"],
                "infra_image": "pause:1"
            })
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(c.endpoint(), "unix:///run/x.sock");
        assert!(c.allow_privileged && c.volumes_enabled());
        assert!(c.cap_allowed("sys_admin"));
        assert!(!c.gc().container);
        assert_eq!(c.gc().image_delay, "1h");
        assert_eq!(c.infra_image, "pause:1");
    }

    #[test]
    fn unknown_plugin_option_is_named() {
        let e =
            DockerPluginConfig::parse(json!({"endpont": "x"}).as_object().unwrap()).unwrap_err();
        assert!(e.to_string().contains("endpont"), "{e}");
    }
}
