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
    /// The servers did not take the registrations (worth another try).
    unregistered: bool,
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
            Err(e) => {
                out.unregistered = true;
                problems.push(format!("registering with the servers: {e}"))
            }
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
            if reg.unregistered {
                // Tried again on the next sync.
                reg.remove(self.rpc.as_ref()).await;
            } else {
                self.registered = Some(reg);
            }
        } else if !running {
            if let Some(r) = self.registered.take() {
                r.remove(self.rpc.as_ref()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::rpc::RpcError;
    use caravan_structs::{Job, TaskGroup};
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// Refuses the first upsert, then records what it is sent.
    #[derive(Default)]
    struct Flaky {
        upserts: Mutex<Vec<Vec<ServiceRegistration>>>,
        deletes: Mutex<Vec<Vec<String>>>,
    }

    #[async_trait]
    impl ServerRpc for Flaky {
        async fn register(&self, _: Node) -> Result<Duration, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn heartbeat(&self, _: &str, _: &str) -> Result<Duration, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn get_allocs(
            &self,
            _: &str,
            _: u64,
            _: Duration,
        ) -> Result<(Vec<Arc<Allocation>>, u64), RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn update_allocs(&self, _: Vec<Allocation>) -> Result<(), RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn get_alloc(&self, _: &str) -> Result<Option<Arc<Allocation>>, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn get_node(&self, _: &str) -> Result<Option<Arc<Node>>, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn migrate_token(&self, _: &str) -> Result<Option<String>, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn sign_identities(
            &self,
            _: &str,
            _: &str,
            _: Vec<String>,
        ) -> Result<BTreeMap<String, String>, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn upsert_services(
            &self,
            _: &str,
            services: Vec<ServiceRegistration>,
        ) -> Result<(), RpcError> {
            let mut u = self.upserts.lock().unwrap();
            u.push(services);
            if u.len() == 1 {
                return Err(RpcError("no leader".into()));
            }
            Ok(())
        }
        async fn delete_services(&self, ids: Vec<String>) -> Result<(), RpcError> {
            self.deletes.lock().unwrap().push(ids);
            Ok(())
        }
    }

    #[tokio::test]
    async fn group_services_retry_a_refused_registration_and_go_when_stopped() {
        let job = Job {
            id: "shop".into(),
            name: "shop".into(),
            task_groups: vec![TaskGroup {
                name: "front".into(),
                services: vec![Service {
                    name: "edge".into(),
                    provider: "nomad".into(),
                    tags: vec!["${NOMAD_GROUP_NAME}".into()],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let alloc = Allocation {
            id: "a1".into(),
            namespace: "default".into(),
            job_id: "shop".into(),
            task_group: "front".into(),
            job: Some(Arc::new(job)),
            ..Default::default()
        };
        let node = Node {
            id: "n1".into(),
            ..Default::default()
        };
        let rpc = Arc::new(Flaky::default());
        let mut g = NomadGroupServices::new(rpc.clone());
        g.sync(&alloc, &node, true).await;
        assert!(
            g.registered.is_none(),
            "a refused registration is tried again"
        );
        g.sync(&alloc, &node, true).await;
        g.sync(&alloc, &node, true).await;
        let upserts = rpc.upserts.lock().unwrap().clone();
        assert_eq!(upserts.len(), 2, "registered once it was taken");
        let reg = &upserts[1][0];
        assert_eq!(reg.id, "_nomad-task-a1-group-front-edge-");
        assert_eq!((reg.service_name.as_str(), reg.port), ("edge", 0));
        assert_eq!(reg.tags, vec!["front"]);
        g.sync(&alloc, &node, false).await;
        assert_eq!(
            *rpc.deletes.lock().unwrap(),
            vec![vec!["_nomad-task-a1-group-front-edge-".to_string()]]
        );
    }
}
