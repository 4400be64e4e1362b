//! The service hook: registers a task's `service` blocks (provider `consul`) in the local Consul
//! agent once the task runs, and deregisters them when it exits or stops. [`GroupServices`] does
//! the same for group-level services, driven by the alloc runner. Registrations follow Nomad:
//! service IDs `_nomad-task-<alloc>-<task>-<service>-<port>` (`group-<group>` for group
//! services), `${...}` interpolation from the task's environment, address and port from the
//! allocation's network, http and tcp checks as Consul checks, `script` checks run by the
//! client in the task and reported as TTL checks ([`script_checks`]); checks with
//! `check_restart` are watched and restart the task when they stay unhealthy
//! ([`check_restart`]).

use super::{check_restart, script_checks, HookContext, HookError, TaskHook};
use crate::client::consul::{Consul, CHECK_PREFIX, ON_UPDATE_REQUIRE_HEALTHY, TASK_SERVICE_PREFIX};
use crate::client::taskenv::{EnvInput, TaskEnv};
use caravan_consul::{AgentServiceCheck, AgentServiceRegistration};
use caravan_driver::async_trait;
use caravan_structs::{Allocation, Node, Service, Task};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Registers the task's Consul services after it starts; removes them when it exits or stops.
#[derive(Default)]
pub struct ServiceHook {
    registered: Mutex<Vec<String>>,
    /// The `check_restart` watcher and script check runners while the task's services are
    /// registered.
    watchers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl ServiceHook {
    /// Replaces the running watchers; the old ones are returned.
    fn set_watchers(
        &self,
        h: Vec<tokio::task::JoinHandle<()>>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        match self.watchers.lock() {
            Ok(mut g) => std::mem::replace(&mut *g, h),
            Err(p) => std::mem::replace(&mut *p.into_inner(), h),
        }
    }

    fn stop_watcher(&self) {
        for h in self.set_watchers(Vec::new()) {
            h.abort();
        }
    }

    fn take(&self) -> Vec<String> {
        match self.registered.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }

    async fn deregister_all(&self, consul: &Consul) {
        for id in self.take() {
            consul.deregister(&id).await;
        }
    }
}

#[async_trait]
impl TaskHook for ServiceHook {
    fn name(&self) -> &'static str {
        "consul_services"
    }

    async fn poststart(&self, ctx: &HookContext) -> Result<(), HookError> {
        let Some(consul) = &ctx.consul else {
            return Ok(());
        };
        let services: Vec<&Service> = ctx.task.services.iter().filter(|s| is_consul(s)).collect();
        if services.is_empty() {
            return Ok(());
        }
        let Some(env) = &ctx.task_env else {
            return Ok(());
        };
        let owner = Owner::Task(&ctx.task.name);
        let mut problems = Vec::new();
        let mut watched = Vec::new();
        let mut scripts = Vec::new();
        for svc in services {
            match registration_with_rules(svc, &owner, &ctx.alloc, &ctx.node, env) {
                Ok((reg, work)) => {
                    watched.extend(work.restarts);
                    scripts.extend(work.scripts);
                    let id = reg.id.clone().unwrap_or_default();
                    consul.set_check_policies(work.policies);
                    consul.register(reg).await;
                    match self.registered.lock() {
                        Ok(mut g) => g.push(id),
                        Err(p) => p.into_inner().push(id),
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        if let Some(control) = ctx.control.clone() {
            let mut handles = Vec::new();
            if !watched.is_empty() {
                handles.push(tokio::spawn(check_restart::watch(
                    consul.clone(),
                    control.clone(),
                    watched,
                )));
            }
            for sc in scripts {
                handles.push(tokio::spawn(script_checks::run(
                    consul.clone(),
                    control.clone(),
                    sc,
                )));
            }
            for old in self.set_watchers(handles) {
                old.abort();
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(HookError {
                hook: "consul_services",
                message: problems.join("; "),
                recoverable: false,
            })
        }
    }

    async fn exited(&self, ctx: &HookContext) -> Result<(), HookError> {
        if let Some(consul) = &ctx.consul {
            self.deregister_all(consul).await;
        }
        Ok(())
    }

    async fn stop(&self, ctx: &HookContext) -> Result<(), HookError> {
        self.stop_watcher();
        if let Some(consul) = &ctx.consul {
            self.deregister_all(consul).await;
        }
        Ok(())
    }
}

/// Group-level services of one allocation: registered while the allocation runs.
pub struct GroupServices {
    consul: Option<Arc<Consul>>,
    registered: Vec<String>,
}

impl GroupServices {
    pub fn new(consul: Option<Arc<Consul>>) -> GroupServices {
        GroupServices {
            consul,
            registered: Vec::new(),
        }
    }

    /// Registers the group's services when `running` turns true and removes them when it turns
    /// false.
    pub async fn sync(&mut self, alloc: &Allocation, node: &Node, running: bool) {
        let Some(consul) = self.consul.clone() else {
            return;
        };
        if running && self.registered.is_empty() {
            let job = alloc.job.clone().unwrap_or_default();
            let Some(group) = job.lookup_group(&alloc.task_group) else {
                return;
            };
            let services: Vec<&Service> = group.services.iter().filter(|s| is_consul(s)).collect();
            if services.is_empty() {
                return;
            }
            let env = TaskEnv::build(&EnvInput {
                alloc,
                job: &job,
                group,
                task: &Task::default(),
                node,
                alloc_dir: Path::new(""),
                task_dir: Path::new(""),
                inherit_host_env: false,
            });
            let owner = Owner::Group(&group.name);
            for svc in services {
                match registration(svc, &owner, alloc, node, &env) {
                    Ok((reg, policies)) => {
                        self.registered.push(reg.id.clone().unwrap_or_default());
                        consul.set_check_policies(policies);
                        consul.register(reg).await;
                    }
                    Err(e) => {
                        tracing::warn!(alloc = %alloc.id, "group service not registered: {e}")
                    }
                }
            }
        } else if !running {
            for id in std::mem::take(&mut self.registered) {
                consul.deregister(&id).await;
            }
        }
    }
}

fn is_consul(s: &Service) -> bool {
    s.provider.is_empty() || s.provider == "consul"
}

/// Whose service it is: a task's, or its group's.
pub(crate) enum Owner<'a> {
    Task(&'a str),
    Group(&'a str),
}

/// Nomad's `MakeAllocServiceID`.
pub fn service_id(alloc_id: &str, owner_part: &str, name: &str, port_label: &str) -> String {
    format!("{TASK_SERVICE_PREFIX}{alloc_id}-{owner_part}-{name}-{port_label}")
}

/// The Consul registration of one service block (with its checks' `on_update` policies), or
/// why it cannot be made.
fn registration(
    svc: &Service,
    owner: &Owner,
    alloc: &Allocation,
    node: &Node,
    env: &TaskEnv,
) -> Result<(AgentServiceRegistration, Vec<(String, String)>), String> {
    let (reg, work) = registration_with_rules(svc, owner, alloc, node, env)?;
    if !work.scripts.is_empty() {
        tracing::warn!(
            service = %reg.name,
            "script checks of group services are not run yet (their task is not known); they stay critical"
        );
    }
    Ok((reg, work.policies))
}

/// What a task's registered checks need from the client.
#[derive(Default)]
struct CheckWork {
    /// `check_restart` rules.
    restarts: Vec<check_restart::Watched>,
    /// `script` checks to run in the task.
    scripts: Vec<script_checks::Script>,
    /// Each check's `on_update` (check ID, policy), for the allocation's health.
    policies: Vec<(String, String)>,
}

/// [`registration`], with the `check_restart` rules and script checks of its checks.
fn registration_with_rules(
    svc: &Service,
    owner: &Owner,
    alloc: &Allocation,
    node: &Node,
    env: &TaskEnv,
) -> Result<(AgentServiceRegistration, CheckWork), String> {
    let Endpoint {
        id,
        name,
        address,
        port,
    } = endpoint(svc, owner, alloc, node, env)?;
    let mut meta: HashMap<String, String> = svc
        .meta
        .iter()
        .map(|(k, v)| (k.clone(), env.interpolate(v)))
        .collect();
    meta.insert("external-source".into(), "nomad".into());
    let mut checks = Vec::new();
    let mut work = CheckWork::default();
    for (i, raw) in svc.checks.iter().enumerate() {
        match check(raw, &id, &name, &address, port, alloc, node, env) {
            Ok(Some(c)) => {
                let interval = duration(raw.get("Interval"))
                    .ok()
                    .flatten()
                    .unwrap_or(Duration::from_secs(10));
                let check_id = c.check_id.clone().unwrap_or_default();
                let on_update = raw
                    .get("OnUpdate")
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty())
                    .unwrap_or(ON_UPDATE_REQUIRE_HEALTHY);
                work.policies
                    .push((check_id.clone(), on_update.to_string()));
                if let Some(r) = check_restart::rule(
                    raw,
                    svc.check_restart.as_ref(),
                    &check_id,
                    c.name.as_deref().unwrap_or_default(),
                    interval,
                ) {
                    work.restarts.push(r);
                }
                if c.ttl.is_some() {
                    let str_of = |v: &serde_json::Value| v.as_str().map(|x| env.interpolate(x));
                    let mut command: Vec<String> =
                        raw.get("Command").and_then(str_of).into_iter().collect();
                    command.extend(
                        raw.get("Args")
                            .and_then(|a| a.as_array())
                            .map(|a| a.iter().filter_map(str_of).collect::<Vec<_>>())
                            .unwrap_or_default(),
                    );
                    work.scripts.push(script_checks::Script {
                        check_id,
                        command,
                        interval,
                        timeout: duration(raw.get("Timeout"))
                            .ok()
                            .flatten()
                            .unwrap_or(Duration::from_secs(30)),
                    });
                }
                checks.push(c)
            }
            Ok(None) => {}
            Err(e) => return Err(format!("service {name:?}: check {}: {e}", i + 1)),
        }
    }
    Ok((
        AgentServiceRegistration {
            id: Some(id),
            name,
            tags: svc.tags.iter().map(|t| env.interpolate(t)).collect(),
            port,
            address: Some(address),
            meta,
            enable_tag_override: svc.enable_tag_override,
            checks,
            ..Default::default()
        },
        work,
    ))
}

/// Where one service block registers, whatever its provider: its ID, its name (`${...}`
/// interpolated, or the default `<job>-<group>[-<task>]`), address and port.
pub(crate) struct Endpoint {
    pub id: String,
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
}

/// The [`Endpoint`] of `svc` for its owner in `alloc` on `node`.
pub(crate) fn endpoint(
    svc: &Service,
    owner: &Owner,
    alloc: &Allocation,
    node: &Node,
    env: &TaskEnv,
) -> Result<Endpoint, String> {
    let job = alloc.job.as_deref();
    let job_name = job.map(|j| j.name.as_str()).unwrap_or_default();
    let (owner_part, default_name) = match owner {
        Owner::Task(t) => (
            t.to_string(),
            format!("{job_name}-{}-{t}", alloc.task_group),
        ),
        Owner::Group(g) => (format!("group-{g}"), format!("{job_name}-{g}")),
    };
    let name = if svc.name.is_empty() {
        default_name
    } else {
        env.interpolate(&svc.name)
    };
    let port_label = env.interpolate(&svc.port_label);
    let (host, port) = address(&svc.address_mode, &port_label, alloc, node)
        .map_err(|e| format!("service {name:?}: {e}"))?;
    let address = if svc.address.is_empty() {
        host.clone()
    } else {
        env.interpolate(&svc.address)
    };
    let id = service_id(&alloc.id, &owner_part, &name, &svc.port_label);
    Ok(Endpoint {
        id,
        name,
        address,
        port,
    })
}

/// The host address and port of a port label under an address mode (auto and host: the
/// node's address and the allocation's host port).
pub(crate) fn address(
    mode: &str,
    port_label: &str,
    alloc: &Allocation,
    node: &Node,
) -> Result<(String, Option<u16>), String> {
    match mode {
        "" | "auto" | "host" => {}
        "driver" | "alloc" => {
            return Err(format!(
                "address_mode {mode:?} is not available in Caravan yet (auto and host are)"
            ))
        }
        other => return Err(format!("invalid address_mode {other:?}")),
    }
    let node_ip = node
        .attributes
        .get("unique.network.ip-address")
        .cloned()
        .or_else(|| {
            alloc
                .allocated_resources
                .shared
                .networks
                .first()
                .map(|n| n.ip.clone())
        })
        .unwrap_or_else(|| "127.0.0.1".into());
    if port_label.is_empty() {
        return Ok((node_ip, None));
    }
    if let Some(p) = alloc
        .allocated_resources
        .shared
        .ports
        .iter()
        .find(|p| p.label == port_label)
    {
        let ip = if p.host_ip.is_empty() {
            node_ip
        } else {
            p.host_ip.clone()
        };
        return Ok((ip, Some(p.value)));
    }
    let task_ports = alloc
        .allocated_resources
        .tasks
        .values()
        .flat_map(|t| t.networks.iter())
        .flat_map(|n| {
            n.reserved_ports
                .iter()
                .chain(n.dynamic_ports.iter())
                .map(move |p| (n.ip.clone(), p))
        })
        .find(|(_, p)| p.label == port_label);
    if let Some((ip, p)) = task_ports {
        let ip = if ip.is_empty() { node_ip } else { ip };
        return Ok((ip, Some(p.value)));
    }
    if let Ok(n) = port_label.parse::<u16>() {
        return Ok((node_ip, Some(n)));
    }
    Err(format!(
        "port label {port_label:?} is not a port of the allocation's network"
    ))
}

/// One `check` block as a Consul check; `None` (with a warning) for kinds Caravan does not run.
#[allow(clippy::too_many_arguments)]
fn check(
    raw: &serde_json::Value,
    service_id: &str,
    service_name: &str,
    service_addr: &str,
    service_port: Option<u16>,
    alloc: &Allocation,
    node: &Node,
    env: &TaskEnv,
) -> Result<Option<AgentServiceCheck>, String> {
    let s = |k: &str| {
        raw.get(k)
            .and_then(|v| v.as_str())
            .map(|v| env.interpolate(v))
            .unwrap_or_default()
    };
    let int = |k: &str| raw.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    let kind = s("Type").to_ascii_lowercase();
    let (host, port) = match s("PortLabel") {
        l if l.is_empty() => (service_addr.to_string(), service_port),
        l => address(&s("AddressMode"), &l, alloc, node)?,
    };
    let hostport = |port: Option<u16>| -> Result<String, String> {
        let p = port.ok_or("the check has no port (set port on the service or the check)")?;
        Ok(if host.contains(':') {
            format!("[{host}]:{p}")
        } else {
            format!("{host}:{p}")
        })
    };
    let mut c = AgentServiceCheck {
        name: Some(match s("Name") {
            n if n.is_empty() => format!("service: {service_name:?} check"),
            n => n,
        }),
        interval: duration(raw.get("Interval"))?,
        timeout: duration(raw.get("Timeout"))?,
        notes: Some(s("Notes")).filter(|n| !n.is_empty()),
        status: Some(s("InitialStatus")).filter(|n| !n.is_empty()),
        tls_server_name: Some(s("TLSServerName")).filter(|n| !n.is_empty()),
        tls_skip_verify: raw
            .get("TLSSkipVerify")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        success_before_passing: int("SuccessBeforePassing"),
        failures_before_warning: int("FailuresBeforeWarning"),
        failures_before_critical: int("FailuresBeforeCritical"),
        ..Default::default()
    };
    match kind.as_str() {
        "http" => {
            let protocol = match s("Protocol") {
                p if p.is_empty() => "http".to_string(),
                p => p,
            };
            let path = s("Path");
            let path = if path.starts_with('/') || path.is_empty() {
                path
            } else {
                format!("/{path}")
            };
            c.http = Some(format!("{protocol}://{}{path}", hostport(port)?));
            c.method = Some(s("Method")).filter(|m| !m.is_empty());
            c.body = Some(s("Body")).filter(|b| !b.is_empty());
            if let Some(h) = raw.get("Header").and_then(|v| v.as_object()) {
                for (k, vals) in h {
                    let vals: Vec<String> = match vals {
                        serde_json::Value::Array(a) => a
                            .iter()
                            .filter_map(|v| v.as_str())
                            .map(|v| env.interpolate(v))
                            .collect(),
                        serde_json::Value::String(v) => vec![env.interpolate(v)],
                        _ => Vec::new(),
                    };
                    c.header.insert(k.clone(), vals);
                }
            }
        }
        "tcp" => c.tcp = Some(hostport(port)?),
        "script" => {
            // Run by the client, reported to Consul as a TTL check (see [`script_checks`]).
            let interval = c.interval.ok_or("a script check needs an interval")?;
            if s("Command").is_empty() {
                return Err("a script check needs a command".into());
            }
            c.ttl = Some(interval + script_checks::TTL_BUFFER);
            c.interval = None;
            c.timeout = None;
        }
        other => {
            tracing::warn!(
                service = %service_name,
                "check type {other:?} is not run by Caravan yet (http and tcp are); the check is skipped"
            );
            return Ok(None);
        }
    }
    c.check_id = Some(check_id(service_id, &c));
    Ok(Some(c))
}

/// Nomad's check IDs hash the check's definition with its service ID.
fn check_id(service_id: &str, c: &AgentServiceCheck) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let def = format!("{service_id}|{:?}", c);
    for b in def.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{CHECK_PREFIX}{h:016x}")
}

/// A duration from a job's JSON: nanoseconds, or a Go duration string.
pub(crate) fn duration(v: Option<&serde_json::Value>) -> Result<Option<Duration>, String> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(n
            .as_i64()
            .filter(|n| *n > 0)
            .map(|n| Duration::from_nanos(n as u64))),
        Some(serde_json::Value::String(s)) => caravan_structs::time::parse_duration(s)
            .map(|n| (n > 0).then(|| Duration::from_nanos(n as u64)))
            .map_err(|e| format!("invalid duration {s:?}: {e}")),
        Some(other) => Err(format!("invalid duration {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_structs::{AllocatedPortMapping, Job, TaskGroup};
    use serde_json::json;

    fn fixture() -> (Allocation, Node, TaskEnv) {
        let mut alloc = Allocation {
            id: "11111111-2222-3333-4444-555555555555".into(),
            task_group: "web".into(),
            ..Default::default()
        };
        alloc.allocated_resources.shared.ports = vec![AllocatedPortMapping {
            label: "http".into(),
            value: 23456,
            to: 0,
            host_ip: "10.1.2.3".into(),
        }];
        let job = Job {
            id: "shop".into(),
            name: "shop".into(),
            task_groups: vec![TaskGroup {
                name: "web".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        alloc.job = Some(Arc::new(job.clone()));
        let node = Node::default();
        let env = TaskEnv::build(&EnvInput {
            alloc: &alloc,
            job: &job,
            group: &job.task_groups[0],
            task: &Task {
                name: "srv".into(),
                ..Default::default()
            },
            node: &node,
            alloc_dir: Path::new("/a"),
            task_dir: Path::new("/a/srv"),
            inherit_host_env: false,
        });
        (alloc, node, env)
    }

    #[test]
    fn task_service_registration_follows_nomad() {
        let (alloc, node, env) = fixture();
        let svc = Service {
            name: "${NOMAD_JOB_NAME}-api".into(),
            port_label: "http".into(),
            tags: vec!["v1".into(), "${NOMAD_GROUP_NAME}".into()],
            enable_tag_override: true,
            checks: vec![
                json!({"Type": "http", "Path": "health", "Interval": 2_000_000_000i64,
                       "Timeout": "1s", "Method": "HEAD", "Header": {"X-A": ["b"]}}),
                json!({"Type": "tcp", "Name": "alive"}),
                json!({"Type": "script", "Command": "true", "Interval": 10_000_000_000u64}),
            ],
            ..Default::default()
        };
        let (reg, _) = registration(&svc, &Owner::Task("srv"), &alloc, &node, &env).unwrap();
        assert_eq!(
            reg.id.as_deref(),
            Some("_nomad-task-11111111-2222-3333-4444-555555555555-srv-shop-api-http")
        );
        assert_eq!(reg.name, "shop-api");
        assert_eq!(reg.tags, vec!["v1", "web"]);
        assert_eq!(reg.address.as_deref(), Some("10.1.2.3"));
        assert_eq!(reg.port, Some(23456));
        assert!(reg.enable_tag_override);
        assert_eq!(reg.meta["external-source"], "nomad");
        assert_eq!(reg.checks.len(), 3);
        // The script check is a TTL check the client updates (Nomad's TTL: interval + 31 s).
        assert_eq!(reg.checks[2].ttl, Some(Duration::from_secs(41)));
        assert!(reg.checks[2].interval.is_none());
        let http = &reg.checks[0];
        assert_eq!(http.http.as_deref(), Some("http://10.1.2.3:23456/health"));
        assert_eq!(http.method.as_deref(), Some("HEAD"));
        assert_eq!(http.interval, Some(Duration::from_secs(2)));
        assert_eq!(http.timeout, Some(Duration::from_secs(1)));
        assert_eq!(http.header["X-A"], vec!["b"]);
        assert_eq!(http.name.as_deref(), Some("service: \"shop-api\" check"));
        assert!(http
            .check_id
            .as_deref()
            .unwrap()
            .starts_with("_nomad-check-"));
        assert_eq!(reg.checks[1].tcp.as_deref(), Some("10.1.2.3:23456"));
        assert_ne!(reg.checks[0].check_id, reg.checks[1].check_id);
    }

    #[test]
    fn group_service_id_and_default_name() {
        let (alloc, node, env) = fixture();
        let svc = Service {
            port_label: "http".into(),
            ..Default::default()
        };
        let (reg, _) = registration(&svc, &Owner::Group("web"), &alloc, &node, &env).unwrap();
        assert_eq!(reg.name, "shop-web");
        assert_eq!(
            reg.id.as_deref(),
            Some("_nomad-task-11111111-2222-3333-4444-555555555555-group-web-shop-web-http")
        );
    }

    #[test]
    fn unknown_port_label_and_driver_mode_are_errors() {
        let (alloc, node, env) = fixture();
        let svc = Service {
            name: "x".into(),
            port_label: "nope".into(),
            ..Default::default()
        };
        let e = registration(&svc, &Owner::Task("srv"), &alloc, &node, &env).unwrap_err();
        assert!(e.contains("\"nope\""), "{e}");
        let svc = Service {
            name: "x".into(),
            port_label: "http".into(),
            address_mode: "driver".into(),
            ..Default::default()
        };
        assert!(registration(&svc, &Owner::Task("srv"), &alloc, &node, &env).is_err());
    }
}
