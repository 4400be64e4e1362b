//! Nomad's native service discovery on the client: a task's `service` blocks with
//! `provider = "nomad"` are registered in the servers' catalog once the task runs and removed
//! when it exits or stops ([`NomadServiceHook`]); group-level ones while the allocation runs
//! ([`NomadGroupServices`], driven by the alloc runner). IDs, names, addresses and ports are
//! the Consul hook's ([`super::services::endpoint`]); the services' `http` and `tcp` checks
//! are run by the client ([`crate::client::nomad_checks`]).

use super::services::{endpoint, Owner};
use super::{HookContext, HookError, TaskHook};
use crate::client::nomad_checks;
use crate::client::rpc::ServerRpc;
use crate::client::taskenv::{EnvInput, TaskEnv};
use crate::state::services::ServiceRegistration;
use caravan_driver::async_trait;
use caravan_structs::{Allocation, Node, Service, Task};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub fn is_nomad(s: &Service) -> bool {
    s.provider == "nomad"
}

/// Whether the group's services (group or task level) use the nomad provider.
pub fn uses_nomad(group: &caravan_structs::TaskGroup) -> bool {
    group
        .services
        .iter()
        .chain(group.tasks.iter().flat_map(|t| t.services.iter()))
        .any(is_nomad)
}

/// What one owner (a task or its group) has registered.
#[derive(Default)]
struct Registered {
    alloc_id: String,
    ids: Vec<String>,
    check_ids: Vec<String>,
    checks: Vec<tokio::task::JoinHandle<()>>,
}

impl Registered {
    fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.checks.is_empty()
    }

    /// Stops the checks and removes the registrations (and check results).
    async fn remove(self, rpc: &dyn ServerRpc) {
        for h in &self.checks {
            h.abort();
        }
        nomad_checks::forget(&self.alloc_id, &self.check_ids);
        if !self.ids.is_empty() {
            if let Err(e) = rpc.delete_services(self.ids).await {
                tracing::warn!(alloc = %self.alloc_id, "nomad services not deregistered: {e}");
            }
        }
    }
}

/// Builds the registrations of `services` and starts their checks.
async fn register(
    rpc: &dyn ServerRpc,
    services: &[&Service],
    owner: &Owner<'_>,
    alloc: &Allocation,
    node: &Node,
    env: &TaskEnv,
) -> (Registered, Vec<String>) {
    let task = match owner {
        Owner::Task(t) => t.to_string(),
        Owner::Group(_) => String::new(),
    };
    let mut problems = Vec::new();
    let mut regs = Vec::new();
    let mut checks = Vec::new();
    for svc in services {
        let ep = match endpoint(svc, owner, alloc, node, env) {
            Ok(ep) => ep,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        for (i, raw) in svc.checks.iter().enumerate() {
            match nomad_checks::build(raw, alloc, node, &task, &ep.name, &ep.address, ep.port, env)
            {
                Ok(Some(c)) => checks.push(c),
                Ok(None) => {}
                Err(e) => problems.push(format!("service {:?}: check {}: {e}", ep.name, i + 1)),
            }
        }
        regs.push(ServiceRegistration {
            id: ep.id,
            service_name: ep.name,
            namespace: alloc.namespace.clone(),
            node_id: node.id.clone(),
            datacenter: node.datacenter.clone(),
            job_id: alloc.job_id.clone(),
            alloc_id: alloc.id.clone(),
            tags: svc.tags.iter().map(|t| env.interpolate(t)).collect(),
            address: ep.address,
            port: ep.port.unwrap_or(0),
            ..Default::default()
        });
    }
    let mut out = Registered {
        alloc_id: alloc.id.clone(),
        ..Default::default()
    };
    if !regs.is_empty() {
        let ids: Vec<String> = regs.iter().map(|r| r.id.clone()).collect();
        match rpc.upsert_services(&node.id, regs).await {
            Ok(()) => out.ids = ids,
            Err(e) => problems.push(format!("registering with the servers: {e}")),
        }
    }
    for c in checks {
        out.check_ids.push(c.template.id.clone());
        out.checks.push(tokio::spawn(nomad_checks::run(c)));
    }
    (out, problems)
}

/// Registers the task's `provider = "nomad"` services after it starts; removes them when it
/// exits or stops.
pub struct NomadServiceHook {
    rpc: Arc<dyn ServerRpc>,
    registered: Mutex<Registered>,
}

impl NomadServiceHook {
    pub fn new(rpc: Arc<dyn ServerRpc>) -> NomadServiceHook {
        NomadServiceHook {
            rpc,
            registered: Mutex::new(Registered::default()),
        }
    }

    fn take(&self) -> Registered {
        match self.registered.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }

    async fn deregister(&self) {
        let r = self.take();
        if !r.is_empty() {
            r.remove(self.rpc.as_ref()).await;
        }
    }
}

#[async_trait]
impl TaskHook for NomadServiceHook {
    fn name(&self) -> &'static str {
        "nomad_services"
    }

    async fn poststart(&self, ctx: &HookContext) -> Result<(), HookError> {
        let services: Vec<&Service> = ctx.task.services.iter().filter(|s| is_nomad(s)).collect();
        if services.is_empty() {
            return Ok(());
        }
        let Some(env) = &ctx.task_env else {
            return Ok(());
        };
        // A poststart after a restart replaces what the last run registered.
        self.deregister().await;
        let owner = Owner::Task(&ctx.task.name);
        let (reg, problems) = register(
            self.rpc.as_ref(),
            &services,
            &owner,
            &ctx.alloc,
            &ctx.node,
            env,
        )
        .await;
        match self.registered.lock() {
            Ok(mut g) => *g = reg,
            Err(p) => *p.into_inner() = reg,
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(HookError {
                hook: "nomad_services",
                message: problems.join("; "),
                recoverable: false,
            })
        }
    }

    async fn exited(&self, _ctx: &HookContext) -> Result<(), HookError> {
        self.deregister().await;
        Ok(())
    }

    async fn stop(&self, _ctx: &HookContext) -> Result<(), HookError> {
        self.deregister().await;
        Ok(())
    }
}

/// Group-level `provider = "nomad"` services of one allocation: registered while it runs.
pub struct NomadGroupServices {
    rpc: Arc<dyn ServerRpc>,
    registered: Option<Registered>,
}

impl NomadGroupServices {
    pub fn new(rpc: Arc<dyn ServerRpc>) -> NomadGroupServices {
        NomadGroupServices {
            rpc,
            registered: None,
        }
    }

    /// Registers the group's services when `running` turns true and removes them when it
    /// turns false.
    pub async fn sync(&mut self, alloc: &Allocation, node: &Node, running: bool) {
        if running && self.registered.is_none() {
            let job = alloc.job.clone().unwrap_or_default();
            let Some(group) = job.lookup_group(&alloc.task_group) else {
                return;
            };
            let services: Vec<&Service> = group.services.iter().filter(|s| is_nomad(s)).collect();
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
            let (reg, problems) =
                register(self.rpc.as_ref(), &services, &owner, alloc, node, &env).await;
            if !problems.is_empty() {
                tracing::warn!(alloc = %alloc.id, "group services: {}", problems.join("; "));
            }
            self.registered = Some(reg);
        } else if !running {
            if let Some(r) = self.registered.take() {
                r.remove(self.rpc.as_ref()).await;
            }
        }
    }
}
