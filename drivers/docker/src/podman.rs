//! The `podman` driver: Nomad's podman driver options, translated onto the docker driver's
//! config and run through Podman's Docker-compatible API (same code as `docker`; the libpod
//! API is not used). Task keys only Podman has (`memory_reservation`, `memory_swap`,
//! `memory_swappiness`, `init_path`, `socket`, `auth.tls_verify`) are accepted and ignored with
//! a warning; `userns`, `working_dir`, `logging.options`, `devices` strings, `tmpfs`,
//! `apparmor_profile` and `selinux_opts` map onto their docker equivalents.

use crate::decode;
use crate::driver::Flavor;
use crate::plugin_config::DockerPluginConfig;
use crate::task_config::DockerTaskConfig;
use caravan_driver::DriverError;
use serde_json::{json, Map, Value};

/// Where Podman's rootful service listens when `socket_path` is not set.
pub const DEFAULT_SOCKET: &str = "unix:///run/podman/podman.sock";

/// Nomad's `podman` driver.
pub const PODMAN: Flavor = Flavor {
    name: "podman",
    default_endpoint: DEFAULT_SOCKET,
};

/// Keys of Nomad's podman task config.
const PODMAN_KEYS: &[&str] = &[
    "apparmor_profile",
    "args",
    "auth",
    "cap_add",
    "cap_drop",
    "command",
    "cpu_cfs_period",
    "cpu_hard_limit",
    "devices",
    "entrypoint",
    "extra_hosts",
    "force_pull",
    "hostname",
    "image",
    "image_pull_timeout",
    "init",
    "init_path",
    "labels",
    "logging",
    "memory_reservation",
    "memory_swap",
    "memory_swappiness",
    "network_mode",
    "pids_limit",
    "port_map",
    "ports",
    "privileged",
    "readonly_rootfs",
    "security_opt",
    "selinux_opts",
    "shm_size",
    "socket",
    "sysctl",
    "tmpfs",
    "tty",
    "ulimit",
    "userns",
    "volumes",
    "working_dir",
];

/// Podman keys the Docker API cannot express; accepted and ignored.
const IGNORED_KEYS: &[&str] = &[
    "memory_reservation",
    "memory_swap",
    "memory_swappiness",
    "init_path",
    "socket",
];

/// Checks a podman task config against Nomad's podman schema and translates it.
pub fn to_docker_config(cfg: &Map<String, Value>) -> Result<DockerTaskConfig, DriverError> {
    let bad = |key: &str, e: String| {
        DriverError::InvalidConfig(format!("podman config option {key:?}: {e}"))
    };
    let mut out = Map::new();
    let mut security_opt: Vec<String> = Vec::new();
    let mut mounts: Vec<Value> = Vec::new();
    for (key, value) in cfg {
        if !PODMAN_KEYS.contains(&key.as_str()) {
            return Err(DriverError::InvalidConfig(format!(
                "unknown podman config option {key:?}: it is not part of the podman driver's \
                 task config schema; remove it or check its spelling"
            )));
        }
        if value.is_null() {
            continue;
        }
        if IGNORED_KEYS.contains(&key.as_str()) {
            tracing::warn!(key, "podman config option {key:?} is not supported through the Docker-compatible API; ignored");
            continue;
        }
        match key.as_str() {
            "userns" => {
                out.insert("userns_mode".into(), value.clone());
            }
            "working_dir" => {
                out.insert("work_dir".into(), value.clone());
            }
            "entrypoint" => {
                let list = match value {
                    Value::String(s) => vec![s.clone()],
                    v => decode::to_string_list(v).map_err(|e| bad(key, e))?,
                };
                out.insert("entrypoint".into(), json!(list));
            }
            "apparmor_profile" => {
                let p = decode::scalar_string(value).unwrap_or_default();
                if !p.is_empty() {
                    security_opt.push(format!("apparmor={p}"));
                }
            }
            "selinux_opts" => {
                for o in decode::to_string_list(value).map_err(|e| bad(key, e))? {
                    security_opt.push(format!("label={o}"));
                }
            }
            "security_opt" => {
                security_opt.extend(decode::to_string_list(value).map_err(|e| bad(key, e))?);
            }
            "tmpfs" => {
                for t in decode::to_string_list(value).map_err(|e| bad(key, e))? {
                    mounts.push(json!({"type": "tmpfs", "target": t}));
                }
            }
            "devices" => {
                let mut blocks = Vec::new();
                for d in decode::to_string_list(value).map_err(|e| bad(key, e))? {
                    let parts: Vec<&str> = d.split(':').collect();
                    blocks.push(json!({
                        "host_path": parts[0],
                        "container_path": parts.get(1).copied().unwrap_or(""),
                        "cgroup_permissions": parts.get(2).copied().unwrap_or(""),
                    }));
                }
                out.insert("devices".into(), Value::Array(blocks));
            }
            "logging" => {
                let block = decode::objects(value).map_err(|e| bad(key, e))?;
                if let Some(b) = block.first() {
                    let driver = b
                        .get("driver")
                        .and_then(decode::scalar_string)
                        .unwrap_or_default();
                    // "nomad" (the default) means the driver collects logs; the engine keeps
                    // its own log driver then.
                    if !driver.is_empty() && driver != "nomad" {
                        let mut l = Map::new();
                        l.insert("driver".into(), json!(driver));
                        if let Some(o) = b.get("options") {
                            l.insert("config".into(), o.clone());
                        }
                        out.insert("logging".into(), Value::Object(l));
                    }
                }
            }
            "auth" => {
                let block = decode::objects(value).map_err(|e| bad(key, e))?;
                if let Some(b) = block.first() {
                    let mut a = (*b).clone();
                    if a.remove("tls_verify").is_some() {
                        tracing::warn!("podman auth option \"tls_verify\" is not supported; the engine's registry settings apply");
                    }
                    out.insert("auth".into(), Value::Object(a));
                }
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if !security_opt.is_empty() {
        out.insert("security_opt".into(), json!(security_opt));
    }
    if !mounts.is_empty() {
        out.insert("mount".into(), Value::Array(mounts));
    }
    DockerTaskConfig::parse(&out).map_err(|e| {
        DriverError::InvalidConfig(e.to_string().replace("docker config", "podman config"))
    })
}

/// Parses Nomad's podman plugin config (`socket_path`, `volumes`, `gc { container }`,
/// `disable_log_collection`, `extra_labels`, `recover_stopped`, `client_http_timeout`,
/// `logging`) into the shared plugin config.
pub fn plugin_config(cfg: &Map<String, Value>) -> Result<DockerPluginConfig, DriverError> {
    let mut out = Map::new();
    for (key, value) in cfg {
        match key.as_str() {
            "socket_path" => {
                out.insert("endpoint".into(), value.clone());
            }
            "volumes"
            | "disable_log_collection"
            | "extra_labels"
            | "allow_privileged"
            | "allow_caps" => {
                out.insert(key.clone(), value.clone());
            }
            "gc" => {
                let blocks = decode::objects(value).map_err(|e| {
                    DriverError::InvalidConfig(format!("podman plugin config \"gc\": {e}"))
                })?;
                let container = blocks
                    .first()
                    .and_then(|b| b.get("container"))
                    .cloned()
                    .unwrap_or(json!(true));
                out.insert("gc".into(), json!({"container": container}));
            }
            "recover_stopped" | "client_http_timeout" | "logging" | "dns_servers" | "socket" => {
                tracing::warn!(
                    key,
                    "podman plugin option {key:?} is not supported; ignored"
                );
            }
            other => {
                return Err(DriverError::InvalidConfig(format!(
                    "unknown podman plugin option {other:?}; check its spelling"
                )))
            }
        }
    }
    let mut c = DockerPluginConfig::parse(&out).map_err(|e| {
        DriverError::InvalidConfig(e.to_string().replace("docker plugin", "podman plugin"))
    })?;
    if c.endpoint.is_empty() {
        c.endpoint = DEFAULT_SOCKET.to_string();
    }
    // Nomad's podman driver removes no images and reaps no containers; and Podman's pull
    // stream says nothing while a layer downloads, so a stall cannot be told from a big layer.
    let mut gc = c.gc();
    gc.image = false;
    gc.dangling_containers = Some(crate::plugin_config::DanglingContainers {
        enabled: false,
        ..Default::default()
    });
    c.gc = Some(gc);
    c.pull_activity_timeout = "0".into();
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_podman_keys() {
        let c = to_docker_config(
            json!({
                "image": "busybox", "userns": "keep-id", "working_dir": "/w",
                "entrypoint": "/bin/sh", "tmpfs": ["/scratch"], "devices": ["/dev/fuse"],
                "memory_reservation": "100m", "apparmor_profile": "unconfined",
                "logging": {"driver": "journald", "options": {"tag": "x"}},
                "auth": {"username": "u", "password": "p", "tls_verify": false}
            })
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(c.userns_mode, "keep-id");
        assert_eq!(c.work_dir, "/w");
        assert_eq!(c.entrypoint, vec!["/bin/sh"]);
        assert_eq!(c.mount[0].target, "/scratch");
        assert_eq!(c.devices[0].host_path, "/dev/fuse");
        assert_eq!(c.security_opt, vec!["apparmor=unconfined"]);
        assert_eq!(c.logging.unwrap().driver_name(), "journald");
        assert_eq!(c.auth.unwrap().username, "u");
    }

    #[test]
    fn rejects_docker_only_and_unknown_keys() {
        let e = to_docker_config(json!({"image": "b", "port_mapp": 1}).as_object().unwrap())
            .unwrap_err();
        assert!(
            e.to_string().contains("port_mapp") && e.to_string().contains("podman"),
            "{e}"
        );
        // A docker-only key is not part of the podman schema.
        assert!(to_docker_config(
            json!({"image": "b", "ipc_mode": "host"})
                .as_object()
                .unwrap()
        )
        .is_err());
    }

    #[test]
    fn podman_flavor_has_no_image_gc_reaper_or_activity_timeout() {
        let c = plugin_config(json!({"gc": {"container": false}}).as_object().unwrap()).unwrap();
        let gc = c.gc();
        assert!(!gc.container && !gc.image);
        assert!(!gc.dangling_containers.unwrap().enabled);
        assert_eq!(c.pull_activity_timeout(), None);
    }

    #[test]
    fn plugin_socket_path() {
        let c = plugin_config(&Map::new()).unwrap();
        assert_eq!(c.endpoint(), DEFAULT_SOCKET);
        let c = plugin_config(
            json!({"socket_path": "unix:///run/x.sock", "gc": {"container": false}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(c.endpoint(), "unix:///run/x.sock");
        assert!(!c.gc().container);
        assert!(plugin_config(json!({"sockett": 1}).as_object().unwrap()).is_err());
    }
}
