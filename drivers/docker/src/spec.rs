//! Builds the engine's container-create request from a task: image, command, environment,
//! labels, the alloc/local/secrets binds, volumes and mounts, resources, ports, capabilities
//! and the other options of the task's `config {}` block, after checking them against the
//! plugin config (privileged, capabilities, runtimes, host volumes, pids limit).

use crate::plugin_config::{normalize_cap, DockerPluginConfig};
use crate::ports::{self, PortMapping};
use crate::task_config::{DockerTaskConfig, MountConfig};
use bollard::container::{Config, NetworkingConfig};
use bollard::models::{
    DeviceMapping, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig,
    HostConfigCgroupnsModeEnum, HostConfigLogConfig, Mount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountTmpfsOptions, MountTypeEnum, MountVolumeOptions,
    MountVolumeOptionsDriverConfig, PortBinding, ResourcesUlimits,
};
use caravan_driver::{DriverError, TaskConfig};
use std::collections::HashMap;
use std::path::Path;

/// Nomad's container labels.
pub const LABEL_ALLOC_ID: &str = "com.hashicorp.nomad.alloc_id";
pub const LABEL_JOB_NAME: &str = "com.hashicorp.nomad.job_name";
pub const LABEL_TASK_GROUP: &str = "com.hashicorp.nomad.task_group_name";
pub const LABEL_TASK_NAME: &str = "com.hashicorp.nomad.task_name";
/// Caravan's own labels: the task id, and a marker for containers Caravan manages.
pub const LABEL_CARAVAN_TASK_ID: &str = "io.caravan.task_id";
pub const LABEL_CARAVAN_MANAGED: &str = "io.caravan.managed";
/// Which of Caravan's container drivers (`docker`, `podman`) made the container.
pub const LABEL_CARAVAN_DRIVER: &str = "io.caravan.driver";

/// Capabilities Docker grants a container by default.
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "audit_write",
    "chown",
    "dac_override",
    "fowner",
    "fsetid",
    "kill",
    "mknod",
    "net_bind_service",
    "net_raw",
    "setfcap",
    "setgid",
    "setpcap",
    "setuid",
    "sys_chroot",
];

/// Default CFS period when `cpu_hard_limit` is set (microseconds).
const DEFAULT_CFS_PERIOD: i64 = 100_000;

/// Everything the driver needs to create a task's container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub config: Config<String>,
    /// The hard memory limit in bytes (0: none), for telling an OOM kill on Podman.
    pub memory_limit: i64,
    pub ports: Vec<PortMapping>,
}

/// The container name Nomad uses: `<task>-<alloc id>`.
pub fn container_name(cfg: &TaskConfig) -> String {
    let raw = format!("{}-{}", cfg.name, cfg.alloc_id);
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn err(msg: impl Into<String>) -> DriverError {
    DriverError::InvalidConfig(msg.into())
}

/// Builds the create request; `node_cpu_mhz` is the node's total compute (MHz over all
/// cores), used for `cpu_hard_limit`.
pub fn build(
    task: &TaskConfig,
    tc: &DockerTaskConfig,
    plugin: &DockerPluginConfig,
    node_cpu: NodeCpu,
) -> Result<ContainerSpec, DriverError> {
    if tc.privileged && !plugin.allow_privileged {
        return Err(err(
            "privileged containers are not allowed on this client: set allow_privileged = true \
             in the docker plugin config to allow them",
        ));
    }
    let (cap_add, cap_drop) = capabilities(tc, plugin)?;
    if !tc.runtime.is_empty() && !plugin.allow_runtimes.contains(&tc.runtime) {
        return Err(err(format!(
            "runtime {:?} is not allowed on this client; allowed: {:?} (plugin option allow_runtimes)",
            tc.runtime, plugin.allow_runtimes
        )));
    }
    let pids_limit = pids_limit(tc, plugin)?;

    // Labels: the task's, then Nomad's and Caravan's (which win).
    let mut labels: HashMap<String, String> = tc
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(crate::labels::extra(task, &plugin.extra_labels));
    labels.insert(LABEL_ALLOC_ID.into(), task.alloc_id.clone());
    labels.insert(LABEL_JOB_NAME.into(), task.job_name.clone());
    labels.insert(LABEL_TASK_GROUP.into(), task.task_group.clone());
    labels.insert(LABEL_TASK_NAME.into(), task.name.clone());
    labels.insert(LABEL_CARAVAN_TASK_ID.into(), task.id.clone());
    labels.insert(LABEL_CARAVAN_MANAGED.into(), "true".into());

    // Environment: the client's, with the task directories as the container sees them.
    let mut env = task.env.clone();
    env.insert("NOMAD_ALLOC_DIR".into(), "/alloc".into());
    env.insert("NOMAD_TASK_DIR".into(), "/local".into());
    env.insert("NOMAD_SECRETS_DIR".into(), "/secrets".into());
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();

    let mut binds = Vec::new();
    for (host, inside) in [
        (&task.alloc_dir, "/alloc"),
        (&task.local_dir, "/local"),
        (&task.secrets_dir, "/secrets"),
    ] {
        if !host.as_os_str().is_empty() {
            binds.push(format!("{}:{inside}", host.display()));
        }
    }
    for v in &tc.volumes {
        binds.push(volume_bind(v, task, tc, plugin)?);
    }
    // Host volumes from the task's `volume_mount` blocks.
    for m in &task.mounts {
        let ro = if m.readonly { ":ro" } else { "" };
        binds.push(format!("{}:{}{ro}", m.host_path.display(), m.task_path));
    }
    let mounts = tc
        .all_mounts()
        .map(|m| mount(m, task, plugin))
        .collect::<Result<Vec<_>, _>>()?;

    // Memory: the reservation is memory_mb; the hard limit memory_hard_limit, or memory_max.
    let res = &task.resources;
    let hard_mb = tc
        .memory_hard_limit
        .filter(|l| *l > 0)
        .or(Some(res.memory_max_mb).filter(|m| *m > res.memory_mb));
    let (memory, reservation) = match hard_mb {
        Some(h) => (h * MIB, (res.memory_mb > 0).then_some(res.memory_mb * MIB)),
        None => (res.memory_mb.max(0) * MIB, None),
    };
    let cpu_shares = (res.cpu_shares > 0).then_some(res.cpu_shares.max(2));
    let (cpu_period, cpu_quota) = if tc.cpu_hard_limit {
        let period = tc
            .cpu_cfs_period
            .filter(|p| *p > 0)
            .unwrap_or(DEFAULT_CFS_PERIOD);
        if !(1_000..=1_000_000).contains(&period) {
            return Err(err(
                "\"cpu_cfs_period\" must be between 1000 and 1000000 microseconds",
            ));
        }
        (Some(period), Some(node_cpu.quota(res.cpu_shares, period)))
    } else {
        (None, None)
    };

    let port_mappings = ports::resolve(&tc.ports, &tc.port_map, &task.env)?;
    let mut exposed: HashMap<String, HashMap<(), ()>> = HashMap::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &port_mappings {
        for proto in ["tcp", "udp"] {
            let key = format!("{}/{proto}", p.container_port);
            exposed.insert(key.clone(), HashMap::new());
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: (!p.host_ip.is_empty()).then(|| p.host_ip.clone()),
                    host_port: Some(p.host_port.to_string()),
                });
        }
    }

    let ulimits = tc
        .ulimit
        .iter()
        .map(|(name, v)| ulimit(name, v))
        .collect::<Result<Vec<_>, _>>()?;

    let log_config = tc
        .logging
        .as_ref()
        .and_then(|l| {
            let name = l.driver_name();
            (!name.is_empty()).then(|| HostConfigLogConfig {
                typ: Some(name.to_string()),
                config: Some(
                    l.config
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
            })
        })
        .or_else(|| {
            plugin
                .logging
                .as_ref()
                .filter(|l| !l.typ.is_empty())
                .map(|l| HostConfigLogConfig {
                    typ: Some(l.typ.clone()),
                    config: Some(
                        l.config
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                })
        });

    let devices: Vec<DeviceMapping> = tc
        .devices
        .iter()
        .map(|d| {
            if d.host_path.is_empty() {
                return Err(err("a devices block needs \"host_path\""));
            }
            Ok(DeviceMapping {
                path_on_host: Some(d.host_path.clone()),
                path_in_container: Some(if d.container_path.is_empty() {
                    d.host_path.clone()
                } else {
                    d.container_path.clone()
                }),
                cgroup_permissions: Some(if d.cgroup_permissions.is_empty() {
                    "rwm".into()
                } else {
                    d.cgroup_permissions.clone()
                }),
            })
        })
        .collect::<Result<_, _>>()?;

    let some_str = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let some_vec = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());

    let host_config = HostConfig {
        binds: Some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        memory: (memory > 0).then_some(memory),
        memory_reservation: reservation,
        memory_swap: (memory > 0).then_some(memory),
        cpu_shares,
        cpu_period,
        cpu_quota,
        cpuset_cpus: some_str(&tc.cpuset_cpus),
        pids_limit,
        privileged: Some(tc.privileged),
        cap_add: some_vec(&cap_add),
        cap_drop: some_vec(&cap_drop),
        network_mode: some_str(&tc.network_mode),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        dns: some_vec(&tc.dns_servers),
        dns_search: some_vec(&tc.dns_search_domains),
        dns_options: some_vec(&tc.dns_options),
        extra_hosts: some_vec(&tc.extra_hosts),
        group_add: some_vec(&tc.group_add),
        ipc_mode: some_str(&tc.ipc_mode),
        pid_mode: some_str(&tc.pid_mode),
        uts_mode: some_str(&tc.uts_mode),
        userns_mode: some_str(&tc.userns_mode),
        cgroupns_mode: match tc.cgroupns.as_str() {
            "host" => Some(HostConfigCgroupnsModeEnum::HOST),
            "private" => Some(HostConfigCgroupnsModeEnum::PRIVATE),
            _ => None,
        },
        readonly_rootfs: tc.readonly_rootfs.then_some(true),
        security_opt: some_vec(&tc.security_opt),
        shm_size: tc.shm_size.filter(|s| *s > 0),
        sysctls: (!tc.sysctl.is_empty()).then(|| {
            tc.sysctl
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        storage_opt: (!tc.storage_opt.is_empty()).then(|| {
            tc.storage_opt
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        init: tc.init.then_some(true),
        oom_score_adj: tc
            .oom_score_adj
            .or(plugin.oom_score_adj)
            .filter(|v| *v != 0),
        runtime: some_str(&tc.runtime),
        volume_driver: some_str(&tc.volume_driver),
        log_config,
        devices: (!devices.is_empty()).then_some(devices),
        ..Default::default()
    };

    let networking_config = if !tc.network_mode.is_empty()
        && (!tc.network_aliases.is_empty()
            || !tc.ipv4_address.is_empty()
            || !tc.ipv6_address.is_empty())
    {
        let ipam = (!tc.ipv4_address.is_empty() || !tc.ipv6_address.is_empty()).then(|| {
            EndpointIpamConfig {
                ipv4_address: some_str(&tc.ipv4_address),
                ipv6_address: some_str(&tc.ipv6_address),
                ..Default::default()
            }
        });
        Some(NetworkingConfig {
            endpoints_config: HashMap::from([(
                tc.network_mode.clone(),
                EndpointSettings {
                    aliases: some_vec(&tc.network_aliases),
                    ipam_config: ipam,
                    ..Default::default()
                },
            )]),
        })
    } else {
        None
    };

    let config = Config {
        image: Some(tc.image.clone()),
        cmd: tc.cmd(),
        entrypoint: some_vec(&tc.entrypoint),
        env: Some(env),
        labels: Some(labels),
        hostname: some_str(&tc.hostname),
        user: some_str(&task.user),
        working_dir: some_str(&tc.work_dir),
        mac_address: some_str(&tc.mac_address),
        tty: tc.tty.then_some(true),
        open_stdin: tc.interactive.then_some(true),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck: tc
            .healthchecks
            .as_ref()
            .filter(|h| h.disable)
            .map(|_| HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    };
    Ok(ContainerSpec {
        name: container_name(task),
        config,
        memory_limit: memory,
        ports: port_mappings,
    })
}

const MIB: i64 = 1024 * 1024;

/// The node's CPU as the scheduler counts it, for `cpu_hard_limit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeCpu {
    pub cores: u32,
    pub total_mhz: f64,
}

impl NodeCpu {
    /// Reads core count and MHz from `/proc/cpuinfo` (1000 MHz per core when unknown).
    pub fn detect() -> NodeCpu {
        let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let mhz: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("cpu MHz"))
            .filter_map(|l| l.split(':').nth(1)?.trim().parse().ok())
            .collect();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let per_core = if mhz.is_empty() {
            1000.0
        } else {
            mhz.iter().sum::<f64>() / mhz.len() as f64
        };
        NodeCpu {
            cores,
            total_mhz: per_core * cores as f64,
        }
    }

    /// The CFS quota for `cpu_mhz` of this node's compute, as Nomad computes it.
    pub fn quota(&self, cpu_mhz: i64, period: i64) -> i64 {
        if self.total_mhz <= 0.0 {
            return period;
        }
        let share = cpu_mhz.max(1) as f64 / self.total_mhz;
        ((share * period as f64) as i64 * self.cores.max(1) as i64).max(1000)
    }
}

fn capabilities(
    tc: &DockerTaskConfig,
    plugin: &DockerPluginConfig,
) -> Result<(Vec<String>, Vec<String>), DriverError> {
    let all_allowed = plugin.allow_caps.iter().any(|c| c == "all");
    let adds: Vec<String> = tc.cap_add.iter().map(|c| normalize_cap(c)).collect();
    let drops: Vec<String> = tc.cap_drop.iter().map(|c| normalize_cap(c)).collect();
    let refused: Vec<&String> = adds
        .iter()
        .filter(|c| !(all_allowed || (c.as_str() != "all" && plugin.cap_allowed(c))))
        .collect();
    if !refused.is_empty() {
        return Err(err(format!(
            "capabilities {refused:?} are not allowed on this client; the operator can allow them \
             with allow_caps in the docker plugin config (allowed: {:?})",
            plugin.allow_caps
        )));
    }
    let mut cap_drop: Vec<String> = drops.iter().map(|c| c.to_ascii_uppercase()).collect();
    if !all_allowed && !drops.iter().any(|d| d == "all") {
        // Docker's defaults that the operator did not allow are dropped, as Nomad does.
        for c in DOCKER_DEFAULT_CAPS {
            if !plugin.cap_allowed(c)
                && !adds.iter().any(|a| a == c)
                && !drops.iter().any(|d| d == c)
            {
                cap_drop.push(c.to_ascii_uppercase());
            }
        }
    }
    Ok((
        adds.iter().map(|c| c.to_ascii_uppercase()).collect(),
        cap_drop,
    ))
}

fn pids_limit(
    tc: &DockerTaskConfig,
    plugin: &DockerPluginConfig,
) -> Result<Option<i64>, DriverError> {
    let max = plugin.pids_limit.filter(|p| *p > 0);
    match (tc.pids_limit.filter(|p| *p > 0), max) {
        (Some(t), Some(m)) if t > m => Err(err(format!(
            "pids_limit {t} is above this client's maximum of {m} (plugin option pids_limit)"
        ))),
        (Some(t), _) => Ok(Some(t)),
        (None, m) => Ok(m),
    }
}

/// A `volumes` entry `src:dst[:mode]`: relative sources are under the task dir; absolute
/// ones and named volumes need `volumes { enabled = true }`.
fn volume_bind(
    v: &str,
    task: &TaskConfig,
    tc: &DockerTaskConfig,
    plugin: &DockerPluginConfig,
) -> Result<String, DriverError> {
    let parts: Vec<&str> = v.splitn(3, ':').collect();
    if parts.len() < 2 || parts[0].is_empty() || parts[1].is_empty() {
        return Err(err(format!(
            "volume {v:?} must look like \"host_path:container_path[:mode]\""
        )));
    }
    let src = parts[0];
    let named_volume =
        !tc.volume_driver.is_empty() && !src.starts_with('/') && !src.starts_with('.');
    let host = if named_volume || Path::new(src).is_absolute() {
        if !plugin.volumes_enabled() {
            return Err(err(format!(
                "volume {v:?} mounts a host path or named volume, but volumes are disabled on \
                 this client (plugin option volumes {{ enabled = true }}); use a path relative \
                 to the task directory"
            )));
        }
        src.to_string()
    } else {
        within_task_dir(src, task)?
    };
    let mut out = format!("{host}:{}", parts[1]);
    if let Some(mode) = parts.get(2) {
        out.push(':');
        out.push_str(mode);
    }
    Ok(out)
}

fn within_task_dir(rel: &str, task: &TaskConfig) -> Result<String, DriverError> {
    let joined = task.task_dir.join(rel);
    let mut clean = std::path::PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    if !task.task_dir.as_os_str().is_empty()
        && !clean.starts_with(task.alloc_dir.parent().unwrap_or(&task.task_dir))
    {
        return Err(err(format!(
            "path {rel:?} escapes the allocation directory; enable volumes on the client to \
             mount host paths"
        )));
    }
    Ok(clean.display().to_string())
}

fn mount(
    m: &MountConfig,
    task: &TaskConfig,
    plugin: &DockerPluginConfig,
) -> Result<Mount, DriverError> {
    let mut out = Mount {
        target: Some(m.target.clone()),
        read_only: m.readonly.then_some(true),
        ..Default::default()
    };
    match m.kind() {
        "bind" => {
            if m.source.is_empty() {
                return Err(err("a bind mount needs a \"source\""));
            }
            let source = if Path::new(&m.source).is_absolute() {
                if !plugin.volumes_enabled() {
                    return Err(err(format!(
                        "bind mount of host path {:?} needs volumes {{ enabled = true }} in the \
                         docker plugin config; use a path relative to the task directory",
                        m.source
                    )));
                }
                m.source.clone()
            } else {
                within_task_dir(&m.source, task)?
            };
            out.typ = Some(MountTypeEnum::BIND);
            out.source = Some(source);
            if let Some(b) = &m.bind_options {
                let propagation = match b.propagation.as_str() {
                    "" => None,
                    "private" => Some(MountBindOptionsPropagationEnum::PRIVATE),
                    "rprivate" => Some(MountBindOptionsPropagationEnum::RPRIVATE),
                    "shared" => Some(MountBindOptionsPropagationEnum::SHARED),
                    "rshared" => Some(MountBindOptionsPropagationEnum::RSHARED),
                    "slave" => Some(MountBindOptionsPropagationEnum::SLAVE),
                    "rslave" => Some(MountBindOptionsPropagationEnum::RSLAVE),
                    other => return Err(err(format!("bind propagation {other:?} is not one of private, rprivate, shared, rshared, slave, rslave"))),
                };
                out.bind_options = Some(MountBindOptions {
                    propagation,
                    ..Default::default()
                });
            }
        }
        "tmpfs" => {
            out.typ = Some(MountTypeEnum::TMPFS);
            if let Some(t) = &m.tmpfs_options {
                out.tmpfs_options = Some(MountTmpfsOptions {
                    size_bytes: t.size,
                    mode: t.mode,
                    ..Default::default()
                });
            }
        }
        _ => {
            out.typ = Some(MountTypeEnum::VOLUME);
            out.source = (!m.source.is_empty()).then(|| m.source.clone());
            if let Some(v) = &m.volume_options {
                if v.driver_config.is_some() && !plugin.volumes_enabled() {
                    return Err(err(
                        "volume mounts with a driver_config need volumes { enabled = true } in \
                         the docker plugin config",
                    ));
                }
                out.volume_options = Some(MountVolumeOptions {
                    no_copy: v.no_copy.then_some(true),
                    labels: (!v.labels.is_empty()).then(|| {
                        v.labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    }),
                    driver_config: v.driver_config.as_ref().map(|d| {
                        MountVolumeOptionsDriverConfig {
                            name: (!d.name.is_empty()).then(|| d.name.clone()),
                            options: Some(
                                d.options
                                    .iter()
                                    .map(|(k, v)| (k.clone(), v.clone()))
                                    .collect(),
                            ),
                        }
                    }),
                    ..Default::default()
                });
            }
        }
    }
    Ok(out)
}

/// `nofile = "1024:2048"` (soft:hard) or `"1024"` (both).
fn ulimit(name: &str, v: &str) -> Result<ResourcesUlimits, DriverError> {
    let bad = || {
        err(format!(
            "ulimit {name:?} = {v:?} must be \"soft\" or \"soft:hard\" numbers"
        ))
    };
    let (soft, hard) = match v.split_once(':') {
        Some((s, h)) => (
            s.trim().parse::<i64>().map_err(|_| bad())?,
            h.trim().parse::<i64>().map_err(|_| bad())?,
        ),
        None => {
            let n = v.trim().parse::<i64>().map_err(|_| bad())?;
            (n, n)
        }
    };
    if soft > hard {
        return Err(err(format!(
            "ulimit {name:?}: soft limit {soft} is above the hard limit {hard}"
        )));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_driver::TaskResources;
    use serde_json::json;

    fn task() -> TaskConfig {
        TaskConfig {
            id: "a1/web".into(),
            name: "web".into(),
            alloc_id: "a1".into(),
            job_name: "job".into(),
            task_group: "g".into(),
            alloc_dir: "/data/alloc/a1/alloc".into(),
            task_dir: "/data/alloc/a1/web".into(),
            local_dir: "/data/alloc/a1/web/local".into(),
            secrets_dir: "/data/alloc/a1/web/secrets".into(),
            resources: TaskResources {
                cpu_shares: 500,
                memory_mb: 256,
                memory_max_mb: 0,
            },
            ..Default::default()
        }
    }

    fn tc(v: serde_json::Value) -> DockerTaskConfig {
        DockerTaskConfig::parse(v.as_object().unwrap()).unwrap()
    }

    fn cpu() -> NodeCpu {
        NodeCpu {
            cores: 2,
            total_mhz: 4000.0,
        }
    }

    #[test]
    fn labels_env_binds_and_memory() {
        let mut t = task();
        t.env.insert("NOMAD_TASK_DIR".into(), "/host/path".into());
        t.env.insert("FOO".into(), "bar".into());
        let s = build(
            &t,
            &tc(json!({"image": "busybox", "labels": {"x": "y"}})),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap();
        assert_eq!(s.name, "web-a1");
        let labels = s.config.labels.unwrap();
        assert_eq!(labels[LABEL_ALLOC_ID], "a1");
        assert_eq!(labels[LABEL_TASK_NAME], "web");
        assert_eq!(labels[LABEL_JOB_NAME], "job");
        assert_eq!(labels["x"], "y");
        let env = s.config.env.unwrap();
        assert!(env.contains(&"NOMAD_TASK_DIR=/local".to_string()));
        assert!(env.contains(&"FOO=bar".to_string()));
        let hc = s.config.host_config.unwrap();
        assert_eq!(
            hc.binds.unwrap(),
            vec![
                "/data/alloc/a1/alloc:/alloc",
                "/data/alloc/a1/web/local:/local",
                "/data/alloc/a1/web/secrets:/secrets"
            ]
        );
        assert_eq!(hc.memory, Some(256 * MIB));
        assert_eq!(hc.memory_reservation, None);
        assert_eq!(hc.cpu_shares, Some(500));
        assert_eq!(s.memory_limit, 256 * MIB);
        assert_eq!(hc.cap_drop.unwrap(), vec!["NET_RAW"]);
    }

    #[test]
    fn memory_hard_limit_and_max() {
        let s = build(
            &task(),
            &tc(json!({"image": "b", "memory_hard_limit": 512})),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap();
        let hc = s.config.host_config.unwrap();
        assert_eq!(
            (hc.memory, hc.memory_reservation),
            (Some(512 * MIB), Some(256 * MIB))
        );
        let mut t = task();
        t.resources.memory_max_mb = 1024;
        let hc = build(
            &t,
            &tc(json!({"image": "b"})),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap()
        .config
        .host_config
        .unwrap();
        assert_eq!(
            (hc.memory, hc.memory_reservation),
            (Some(1024 * MIB), Some(256 * MIB))
        );
    }

    #[test]
    fn privileged_needs_allow_privileged() {
        let e = build(
            &task(),
            &tc(json!({"image": "b", "privileged": true})),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("allow_privileged"), "{e}");
        let p = DockerPluginConfig {
            allow_privileged: true,
            ..Default::default()
        };
        assert!(build(
            &task(),
            &tc(json!({"image": "b", "privileged": true})),
            &p,
            cpu()
        )
        .is_ok());
    }

    #[test]
    fn caps_checked_against_allow_caps() {
        let e = build(
            &task(),
            &tc(json!({"image": "b", "cap_add": ["SYS_ADMIN"]})),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("sys_admin") && e.to_string().contains("allow_caps"),
            "{e}"
        );
        let hc = build(
            &task(),
            &tc(json!({"image": "b", "cap_add": ["CAP_CHOWN"], "cap_drop": ["kill"]})),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap()
        .config
        .host_config
        .unwrap();
        assert_eq!(hc.cap_add.unwrap(), vec!["CHOWN"]);
        assert_eq!(hc.cap_drop.unwrap(), vec!["KILL", "NET_RAW"]);
    }

    #[test]
    fn ports_become_bindings() {
        let mut t = task();
        t.env.insert("NOMAD_HOST_PORT_http".into(), "25000".into());
        t.env.insert("NOMAD_PORT_http".into(), "8080".into());
        t.env
            .insert("NOMAD_HOST_IP_http".into(), "127.0.0.1".into());
        let s = build(
            &t,
            &tc(json!({"image": "b", "ports": ["http"]})),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap();
        let b = s.config.host_config.unwrap().port_bindings.unwrap();
        let tcp = b["8080/tcp"].as_ref().unwrap();
        assert_eq!(tcp[0].host_port.as_deref(), Some("25000"));
        assert_eq!(tcp[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert!(s.config.exposed_ports.unwrap().contains_key("8080/udp"));
    }

    #[test]
    fn host_volumes_need_enabling() {
        let e = build(
            &task(),
            &tc(json!({"image": "b", "volumes": ["/etc:/host-etc"]})),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("enabled = true"), "{e}");
        let s = build(
            &task(),
            &tc(json!({"image": "b", "volumes": ["local/conf:/etc/conf:ro"]})),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap();
        let binds = s.config.host_config.unwrap().binds.unwrap();
        assert_eq!(binds[3], "/data/alloc/a1/web/local/conf:/etc/conf:ro");
        let e = build(
            &task(),
            &tc(json!({"image": "b", "volumes": ["../../../etc:/x"]})),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("escapes"), "{e}");
        let p = DockerPluginConfig {
            volumes: Some(crate::plugin_config::VolumesConfig {
                enabled: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(build(
            &task(),
            &tc(json!({"image": "b", "volumes": ["/etc:/host-etc"]})),
            &p,
            cpu()
        )
        .is_ok());
    }

    #[test]
    fn mounts_ulimits_and_misc() {
        let s = build(
            &task(),
            &tc(json!({
                "image": "b",
                "mount": [{"type": "tmpfs", "target": "/t", "tmpfs_options": {"size": 1000}},
                          {"type": "bind", "source": "local", "target": "/l", "readonly": true}],
                "ulimit": {"nofile": "100:200", "nproc": "50"},
                "healthchecks": {"disable": true},
                "cpu_hard_limit": true,
                "pids_limit": 64,
                "sysctl": {"net.core.somaxconn": "16384"}
            })),
            &DockerPluginConfig::default(),
            cpu(),
        )
        .unwrap();
        let hc = s.config.host_config.clone().unwrap();
        let mounts = hc.mounts.unwrap();
        assert_eq!(mounts[0].typ, Some(MountTypeEnum::TMPFS));
        assert_eq!(
            mounts[1].source.as_deref(),
            Some("/data/alloc/a1/web/local")
        );
        let u = hc.ulimits.unwrap();
        assert!(u.iter().any(|u| u.name.as_deref() == Some("nproc")
            && u.soft == Some(50)
            && u.hard == Some(50)));
        assert_eq!(s.config.healthcheck.unwrap().test.unwrap(), vec!["NONE"]);
        // 500 MHz of 4000 MHz over 2 cores: 12.5% * 100000 * 2
        assert_eq!((hc.cpu_period, hc.cpu_quota), (Some(100_000), Some(25_000)));
        assert_eq!(hc.pids_limit, Some(64));
        assert!(build(
            &task(),
            &tc(json!({"image": "b", "ulimit": {"nofile": "x"}})),
            &DockerPluginConfig::default(),
            cpu()
        )
        .is_err());
        let p = DockerPluginConfig {
            pids_limit: Some(10),
            ..Default::default()
        };
        let e = build(
            &task(),
            &tc(json!({"image": "b", "pids_limit": 64})),
            &p,
            cpu(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("pids_limit"), "{e}");
    }
}
