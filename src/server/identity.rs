//! Workload identities on the server: signing each task's identities when the plan applier
//! commits its allocation (Nomad's `signAllocIdentities`), and accepting those JWTs as request
//! tokens (Nomad's `ResolveClaims`): the signature must hold, the allocation must still exist
//! and not be terminal, and the ACL is made of the policies bound to the job with a `JobACL`.

use super::acl::{ResolveError, Resolved};
use super::{Server, ServerError};
use crate::state::Tables;
use caravan_acl::{Acl, AclClaim};
use caravan_structs::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether a request's secret is a JWT rather than an ACL token's secret ID (a UUID has no
/// dots; a JWT has exactly two).
pub fn looks_like_jwt(secret: &str) -> bool {
    secret.matches('.').count() == 2
}

/// Replaces each `${name}` in `value` that `lookup` knows; unknown references stay as written
/// (as Nomad's claims builder leaves them).
fn interpolate_claim(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[start..start + 2 + end + 1]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Nomad's checks of a policy's `JobACL`: each narrower field needs the wider one.
pub fn validate_job_acl(j: &JobAcl) -> Result<(), String> {
    if !j.job_id.is_empty() && j.namespace.is_empty() {
        return Err("JobACL: namespace must be set to set job ID".into());
    }
    if !j.group.is_empty() && j.job_id.is_empty() {
        return Err("JobACL: job ID must be set to set group".into());
    }
    if !j.task.is_empty() && j.group.is_empty() {
        return Err("JobACL: group must be set to set task".into());
    }
    Ok(())
}

impl Server {
    /// The claims of `identity` for `task` of `alloc` (of `job`), issued now.
    fn identity_claims(
        &self,
        job: &Job,
        alloc: &Allocation,
        task: &str,
        identity: &WorkloadIdentity,
    ) -> IdentityClaims {
        let now = time::now_nanos() / 1_000_000_000;
        // Dispatched and periodic children act as their parent job.
        let job_id = if job.parent_id.is_empty() {
            job.id.clone()
        } else {
            job.parent_id.clone()
        };
        let region = if job.region.is_empty() {
            self.config.region.clone()
        } else {
            job.region.clone()
        };
        let (vault_namespace, vault_role, extra_claims) =
            self.vault_claims(job, alloc, task, identity, &region, &job_id);
        IdentityClaims {
            vault_namespace,
            vault_role,
            extra_claims,
            nomad_namespace: alloc.namespace.clone(),
            nomad_job_id: job_id.clone(),
            nomad_allocation_id: alloc.id.clone(),
            nomad_task: task.to_string(),
            sub: [
                region.as_str(),
                &alloc.namespace,
                &job_id,
                &alloc.task_group,
                task,
                identity.handle(),
            ]
            .join(":"),
            aud: identity.audience.clone(),
            iss: self.config.oidc_issuer.clone(),
            iat: now,
            nbf: now,
            exp: (identity.ttl > 0).then(|| now + identity.ttl / 1_000_000_000),
            jti: new_id(),
        }
    }

    /// A `vault_<cluster>` identity carries the task's Vault namespace and role and the
    /// cluster's `default_identity { extra_claims }`, their `${...}` references filled in
    /// (Nomad's claims builder).
    fn vault_claims(
        &self,
        job: &Job,
        alloc: &Allocation,
        task: &str,
        identity: &WorkloadIdentity,
        region: &str,
        job_id: &str,
    ) -> (String, String, BTreeMap<String, String>) {
        let Some(cluster) = identity.name.strip_prefix("vault_") else {
            return Default::default();
        };
        let group = job.lookup_group(&alloc.task_group);
        let Some(v) = group
            .and_then(|g| g.tasks.iter().find(|t| t.name == task))
            .and_then(|t| t.vault_block())
            .filter(|v| v.cluster == cluster)
        else {
            return Default::default();
        };
        let extras: BTreeMap<String, String> = self
            .config
            .vault_default_identity
            .get(cluster)
            .and_then(|d| serde_json::from_value(d.extra_claims.clone()).ok())
            .unwrap_or_default();
        if extras.is_empty() {
            return (v.namespace, v.role, extras);
        }
        let node = self.store.snapshot().nodes.get(&alloc.node_id).cloned();
        let node_attr = |f: fn(&Node) -> String| node.as_deref().map(f).unwrap_or_default();
        let values: BTreeMap<&str, String> = [
            ("job.region", region.to_string()),
            ("job.namespace", job.namespace.clone()),
            ("job.id", job_id.to_string()),
            ("job.node_pool", job.node_pool.clone()),
            ("group.name", alloc.task_group.clone()),
            ("alloc.id", alloc.id.clone()),
            ("node.id", node_attr(|n| n.id.clone())),
            ("node.datacenter", node_attr(|n| n.datacenter.clone())),
            ("node.pool", node_attr(|n| n.node_pool.clone())),
            ("node.class", node_attr(|n| n.node_class.clone())),
            ("task.name", task.to_string()),
            ("vault.cluster", v.cluster.clone()),
            ("vault.namespace", v.namespace.clone()),
            ("vault.role", v.role.clone()),
        ]
        .into_iter()
        .collect();
        let lookup = |name: &str| -> Option<String> {
            if let Some(key) = name.strip_prefix("job.meta.") {
                return job.meta.get(key).cloned();
            }
            values.get(name).cloned()
        };
        let extras = extras
            .into_iter()
            .map(|(k, val)| (k, interpolate_claim(&val, &lookup)))
            .collect();
        (v.namespace, v.role, extras)
    }

    fn sign_claims(&self, claims: &IdentityClaims) -> Result<String, ServerError> {
        let v = serde_json::to_value(claims)
            .map_err(|e| ServerError::Internal(format!("encoding identity claims: {e}")))?;
        self.sign_identity(&v)
    }

    /// Signs the default identity (and the named ones) of every task of `alloc`'s group,
    /// replacing what it carried.
    pub fn sign_alloc_identities(
        &self,
        job: &Job,
        alloc: &mut Allocation,
    ) -> Result<(), ServerError> {
        let Some(group) = job.lookup_group(&alloc.task_group) else {
            return Ok(());
        };
        let key_id = self
            .store
            .snapshot()
            .active_root_key()
            .map(|k| k.meta.key_id.clone())
            .ok_or_else(|| {
                ServerError::Internal("the keyring has no active root key yet".into())
            })?;
        let mut signed = BTreeMap::new();
        let mut named = BTreeMap::new();
        for task in &group.tasks {
            let claims = self.identity_claims(job, alloc, &task.name, &task.default_identity());
            signed.insert(task.name.clone(), self.sign_claims(&claims)?);
            let mut by_name = BTreeMap::new();
            for id in task.named_identities() {
                let claims = self.identity_claims(job, alloc, &task.name, &id);
                by_name.insert(id.name.clone(), self.sign_claims(&claims)?);
            }
            if !by_name.is_empty() {
                named.insert(task.name.clone(), by_name);
            }
        }
        alloc.signed_identities = signed;
        alloc.signed_named_identities = named;
        alloc.signing_key_id = key_id;
        Ok(())
    }

    /// Fresh JWTs for identities of one task of a running allocation, by identity name
    /// (`default` for the default one): how a client renews identities with a `ttl` (Nomad's
    /// `Alloc.SignIdentities`).
    pub fn sign_task_identities(
        &self,
        alloc_id: &str,
        task: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, ServerError> {
        let snap = self.store.snapshot();
        let alloc = snap
            .allocs
            .get(alloc_id)
            .ok_or_else(|| ServerError::NotFound(format!("allocation {alloc_id} not found")))?;
        if alloc.server_terminal() || alloc.client_terminal() {
            return Err(ServerError::BadRequest(format!(
                "allocation {alloc_id} is terminal"
            )));
        }
        let job = alloc
            .job
            .clone()
            .or_else(|| snap.job(&alloc.namespace, &alloc.job_id))
            .ok_or_else(|| {
                ServerError::NotFound(format!("job of allocation {alloc_id} not found"))
            })?;
        let t = job
            .lookup_group(&alloc.task_group)
            .and_then(|g| g.tasks.iter().find(|t| t.name == task))
            .ok_or_else(|| {
                ServerError::NotFound(format!("task {task:?} not in allocation {alloc_id}"))
            })?;
        let mut out = BTreeMap::new();
        for name in names {
            let identity = if name == WORKLOAD_IDENTITY_DEFAULT_NAME {
                t.default_identity()
            } else {
                t.named_identities()
                    .into_iter()
                    .find(|i| &i.name == name)
                    .ok_or_else(|| {
                        ServerError::NotFound(format!("task {task:?} has no identity {name:?}"))
                    })?
            };
            let claims = self.identity_claims(&job, alloc, task, &identity);
            out.insert(name.clone(), self.sign_claims(&claims)?);
        }
        Ok(out)
    }

    /// The claims of a workload identity JWT presented as a token, with the allocation it was
    /// signed for, which must exist and still be running.
    pub fn verify_workload_identity(
        &self,
        jwt: &str,
    ) -> Result<(IdentityClaims, Arc<Allocation>), ResolveError> {
        let v = self
            .verify_identity(jwt)
            .map_err(|e| ResolveError::Identity(e.to_string()))?;
        let claims: IdentityClaims = serde_json::from_value(v)
            .map_err(|_| ResolveError::Identity("malformed token".into()))?;
        if claims.nomad_allocation_id.is_empty() {
            return Err(ResolveError::Identity(
                "the token names no allocation".into(),
            ));
        }
        let alloc = self
            .store
            .snapshot()
            .allocs
            .get(&claims.nomad_allocation_id)
            .cloned()
            .ok_or_else(|| ResolveError::Identity("allocation does not exist".into()))?;
        if alloc.server_terminal() || alloc.client_terminal() {
            return Err(ResolveError::Identity("allocation is terminal".into()));
        }
        Ok((claims, alloc))
    }

    /// What a request carrying a workload identity may do: the policies bound to its job (all
    /// of the job, its group, or its task), and its claim (its own Variables).
    pub(super) fn resolve_workload_identity(&self, jwt: &str) -> Result<Resolved, ResolveError> {
        let (claims, alloc) = self.verify_workload_identity(jwt)?;
        let snap = self.store.snapshot();
        let acl = compile_bound(&snap, &claims, &alloc);
        Ok(Resolved {
            token: None,
            acl: Arc::new(acl),
            claim: Some(AclClaim {
                namespace: claims.nomad_namespace.clone(),
                job: claims.nomad_job_id.clone(),
                group: alloc.task_group.clone(),
                task: claims.nomad_task.clone(),
            }),
        })
    }
}

/// The policies whose `JobACL` names the claim's job (and its group and task, where set).
pub fn policies_for_claims<'a>(
    snap: &'a Tables,
    claims: &IdentityClaims,
    alloc: &Allocation,
) -> Vec<&'a AclPolicy> {
    let job_id = alloc
        .job
        .as_ref()
        .map(|j| {
            if j.parent_id.is_empty() {
                j.id.clone()
            } else {
                j.parent_id.clone()
            }
        })
        .unwrap_or_else(|| alloc.job_id.clone());
    let mut out: Vec<&AclPolicy> = snap
        .acl
        .policies
        .values()
        .map(|p| p.as_ref())
        .filter(|p| {
            let Some(j) = &p.job_acl else { return false };
            j.namespace == alloc.namespace
                && j.job_id == job_id
                && (j.group.is_empty()
                    || (j.group == alloc.task_group
                        && (j.task.is_empty() || j.task == claims.nomad_task)))
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn compile_bound(snap: &Tables, claims: &IdentityClaims, alloc: &Allocation) -> Acl {
    let mut parsed = Vec::new();
    for p in policies_for_claims(snap, claims, alloc) {
        match caravan_acl::parse_lenient(&p.rules) {
            Ok(r) => parsed.push(r),
            Err(e) => tracing::warn!(policy = %p.name, "stored ACL policy does not parse: {e}"),
        }
    }
    if parsed.is_empty() {
        Acl::deny_all()
    } else {
        Acl::from_policies(&parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::acl::AclConfig;
    use crate::server::command::Command;
    use crate::server::ServerConfig;

    fn server() -> Arc<Server> {
        let s = Server::new(ServerConfig {
            acl: AclConfig {
                enabled: true,
                ..Default::default()
            },
            ..Default::default()
        });
        s.keyring_init().unwrap();
        s
    }

    fn job() -> Job {
        let task = |name: &str| Task {
            name: name.into(),
            ..Default::default()
        };
        let mut j = Job {
            id: "web".into(),
            ..Default::default()
        };
        j.task_groups = vec![TaskGroup {
            name: "g".into(),
            tasks: vec![task("a"), task("b")],
            ..Default::default()
        }];
        j
    }

    /// Places a signed allocation of `job()` and returns the token of each task.
    fn place(s: &Server) -> (Allocation, String, String) {
        let job = Arc::new(job());
        let mut alloc = Allocation {
            id: new_id(),
            job_id: "web".into(),
            task_group: "g".into(),
            job: Some(job.clone()),
            ..Default::default()
        };
        s.sign_alloc_identities(&job, &mut alloc).unwrap();
        s.raft_apply(Command::ApplyPlanResults {
            allocs: vec![alloc.clone()],
            deployment: None,
            deployment_updates: vec![],
            eval_id: String::new(),
        });
        let a = alloc.signed_identities["a"].clone();
        let b = alloc.signed_identities["b"].clone();
        (alloc, a, b)
    }

    fn bind(s: &Server, name: &str, rules: &str, group: &str, task: &str) {
        s.acl_policy_upsert(AclPolicy {
            name: name.into(),
            rules: rules.into(),
            job_acl: Some(JobAcl {
                namespace: "default".into(),
                job_id: "web".into(),
                group: group.into(),
                task: task.into(),
            }),
            ..Default::default()
        })
        .unwrap();
    }

    #[test]
    fn policies_bind_to_the_job_its_group_or_one_task() {
        let s = server();
        let (_, a, b) = place(&s);
        // No policy: the claim only.
        let r = s.resolve_token(Some(&a)).unwrap();
        assert!(!r.acl.allow_namespace_operation("default", "read-job"));
        assert_eq!(r.claim.as_ref().unwrap().task, "a");
        bind(
            &s,
            "only-b",
            "namespace \"default\" { policy = \"read\" }",
            "g",
            "b",
        );
        bind(&s, "other-group", "node { policy = \"read\" }", "h", "");
        bind(&s, "whole-job", "agent { policy = \"read\" }", "", "");
        let ra = s.resolve_token(Some(&a)).unwrap();
        let rb = s.resolve_token(Some(&b)).unwrap();
        assert!(!ra.acl.allow_namespace_operation("default", "read-job"));
        assert!(rb.acl.allow_namespace_operation("default", "read-job"));
        assert!(ra.acl.allow_agent_read() && rb.acl.allow_agent_read());
        assert!(!ra.acl.allow_node_read() && !rb.acl.allow_node_read());
    }

    #[test]
    fn claims_are_nomads_and_die_with_the_allocation() {
        let s = server();
        let (alloc, a, _) = place(&s);
        let (claims, _) = s.verify_workload_identity(&a).unwrap();
        assert_eq!(claims.sub, "global:default:web:g:a:default");
        assert_eq!(claims.aud, vec![WORKLOAD_IDENTITY_DEFAULT_AUD.to_string()]);
        assert_eq!(claims.nomad_allocation_id, alloc.id);
        assert_eq!(claims.exp, None);
        // A token is not a UUID: malformed ones are still refused as identities.
        assert!(matches!(
            s.resolve_token(Some("a.b.c")),
            Err(ResolveError::Identity(_))
        ));
        // Renewal: fresh tokens for the task's identities, by name.
        let fresh = s
            .sign_task_identities(&alloc.id, "a", &["default".to_string()])
            .unwrap();
        let (renewed, _) = s.verify_workload_identity(&fresh["default"]).unwrap();
        assert_eq!(renewed.sub, claims.sub);
        assert_ne!(renewed.jti, claims.jti);
        let e = s
            .sign_task_identities(&alloc.id, "a", &["nope".to_string()])
            .unwrap_err();
        assert!(e.to_string().contains("has no identity \"nope\""), "{e}");
        let mut stopped = alloc.clone();
        stopped.desired_status = ALLOC_DESIRED_STOP.into();
        s.raft_apply(Command::ApplyPlanResults {
            allocs: vec![stopped],
            deployment: None,
            deployment_updates: vec![],
            eval_id: String::new(),
        });
        assert_eq!(
            s.resolve_token(Some(&a)).err(),
            Some(ResolveError::Identity("allocation is terminal".into()))
        );
        let e = s
            .sign_task_identities(&alloc.id, "a", &["default".to_string()])
            .unwrap_err();
        assert!(e.to_string().contains("is terminal"), "{e}");
    }

    #[test]
    fn vault_identities_carry_the_role_and_interpolated_extra_claims() {
        let mut extra = WorkloadIdentity {
            audience: vec!["vault.io".into()],
            ..Default::default()
        };
        extra.extra_claims = serde_json::json!({
            "unique_id": "${job.id}-${group.name}-${task.name}",
            "team": "${job.meta.team}",
            "where": "${vault.cluster}/${node.datacenter}/${nope}",
        });
        let s = Server::new(ServerConfig {
            vault_default_identity: [("default".to_string(), extra)].into(),
            ..Default::default()
        });
        s.keyring_init().unwrap();
        let mut j = job();
        j.meta.insert("team".into(), "payments".into());
        j.task_groups[0].tasks[0].vault =
            Some(serde_json::json!({"Role": "app", "Namespace": "ns1"}));
        let id = WorkloadIdentity {
            name: "vault_default".into(),
            audience: vec!["vault.io".into()],
            ..Default::default()
        };
        let alloc = Allocation {
            id: new_id(),
            job_id: "web".into(),
            task_group: "g".into(),
            ..Default::default()
        };
        let c = s.identity_claims(&j, &alloc, "a", &id);
        assert_eq!(c.vault_role, "app");
        assert_eq!(c.vault_namespace, "ns1");
        assert_eq!(c.extra_claims["unique_id"], "web-g-a");
        assert_eq!(c.extra_claims["team"], "payments");
        // No node known: empty, as Nomad; an unknown reference stays as written.
        assert_eq!(c.extra_claims["where"], "default//${nope}");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["extra_claims"]["team"], "payments");
        // Other identities, and tasks without a vault block, carry none of it.
        let plain = s.identity_claims(&j, &alloc, "a", &WorkloadIdentity::default());
        assert!(plain.extra_claims.is_empty() && plain.vault_role.is_empty());
        let other = s.identity_claims(&j, &alloc, "b", &id);
        assert!(other.extra_claims.is_empty());
        assert!(serde_json::to_value(&plain)
            .unwrap()
            .get("extra_claims")
            .is_none());
    }

    #[test]
    fn job_acl_needs_its_wider_fields() {
        let ok = JobAcl {
            namespace: "default".into(),
            job_id: "web".into(),
            group: "g".into(),
            task: "t".into(),
        };
        assert!(validate_job_acl(&ok).is_ok());
        for bad in [
            JobAcl {
                namespace: String::new(),
                ..ok.clone()
            },
            JobAcl {
                job_id: String::new(),
                ..ok.clone()
            },
            JobAcl {
                group: String::new(),
                ..ok.clone()
            },
        ] {
            assert!(validate_job_acl(&bad).is_err(), "{bad:?}");
        }
    }
}
