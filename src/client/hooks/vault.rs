//! Gives a task with a `vault` block its Vault token (Nomad's vault hook, workload identity
//! flow): logs in to the cluster's JWT auth method with the task's `vault_<cluster>` identity
//! and its role (or the agent's `create_from_role`), writes `secrets/vault_token` (unless
//! `disable_file`), sets `VAULT_TOKEN` (unless `env = false`), `VAULT_ADDR` and
//! `VAULT_NAMESPACE`, renews the token at half its lease in the background, and — beyond
//! Nomad — revokes it when the task stops for good (not when the client restarts: this hook's
//! `stop` only runs for a finished task). A login Vault refuses (unknown role, claims the role
//! does not accept) fails the task before it starts; an unreachable Vault is retried under the
//! restart policy.

use super::{HookContext, HookError, TaskHook};
use crate::client::vault::{VaultClusters, VaultSettings};
use caravan_driver::async_trait;
use caravan_structs::TaskVault;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct VaultHook {
    clusters: Arc<VaultClusters>,
    /// The task's token client and its renewal loop, once logged in.
    state: Mutex<Option<(caravan_vault::Client, tokio::task::JoinHandle<()>)>>,
}

impl VaultHook {
    pub fn new(clusters: Arc<VaultClusters>) -> Self {
        VaultHook {
            clusters,
            state: Mutex::new(None),
        }
    }

    fn take_state(&self) -> Option<(caravan_vault::Client, tokio::task::JoinHandle<()>)> {
        match self.state.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }
}

fn err(message: String, recoverable: bool) -> HookError {
    HookError {
        hook: "vault",
        message,
        recoverable,
    }
}

/// Renews the token at half its lease until it cannot be renewed any more.
async fn renew_loop(client: caravan_vault::Client, task: String, mut lease: u64) {
    loop {
        if lease == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(lease.div_ceil(2))).await;
        match client.renew_self(None).await {
            Ok(auth) => {
                tracing::debug!(%task, lease = auth.lease_duration, "Vault token renewed");
                lease = auth.lease_duration;
            }
            Err(e) if e.is_unreachable() => {
                // Vault is away: try again after a short wait, with the lease still running.
                tracing::warn!(%task, "renewing the Vault token: {e}");
                lease = lease.div_ceil(2).max(2);
            }
            Err(e) => {
                tracing::warn!(%task, "the Vault token can no longer be renewed: {e}");
                return;
            }
        }
    }
}

fn settings<'a>(
    clusters: &'a VaultClusters,
    v: &TaskVault,
) -> Result<&'a VaultSettings, HookError> {
    clusters.get(&v.cluster).ok_or_else(|| {
        err(
            format!(
                "Vault cluster {:?} is not enabled on this client (agent vault block)",
                v.cluster
            ),
            false,
        )
    })
}

#[async_trait]
impl TaskHook for VaultHook {
    fn name(&self) -> &'static str {
        "vault"
    }

    async fn prestart(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        let Some(v) = ctx.task.vault_block() else {
            return Ok(());
        };
        let s = settings(&self.clusters, &v)?;
        let id_name = v.identity_name();
        let jwt = ctx
            .alloc
            .signed_named_identities
            .get(&ctx.task.name)
            .and_then(|m| m.get(&id_name))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                err(
                    format!("no {id_name:?} workload identity was signed for this task"),
                    false,
                )
            })?;
        let role = if v.role.is_empty() {
            s.create_from_role.clone()
        } else {
            v.role.clone()
        };
        let namespace = if v.namespace.is_empty() {
            s.namespace.clone()
        } else {
            v.namespace.clone()
        };
        let client = s
            .client()
            .map_err(|e| err(e.to_string(), false))?
            .with_namespace(namespace.clone());
        let auth = client
            .jwt_login(&s.jwt_auth_backend_path, &role, jwt)
            .await
            .map_err(|e| {
                err(
                    format!("failed to derive a Vault token (role {role:?}): {e}"),
                    e.is_unreachable(),
                )
            })?;
        let token = auth.client_token.clone();
        if !v.disable_file {
            let path = ctx
                .alloc_dir
                .secrets_dir(&ctx.task.name)
                .join("vault_token");
            write_secret(&path, &token)
                .map_err(|e| err(format!("writing {}: {e}", path.display()), false))?;
        }
        if v.env {
            ctx.env.insert("VAULT_TOKEN".into(), token.clone());
        }
        ctx.env
            .insert("VAULT_ADDR".into(), client.address().to_string());
        if !namespace.is_empty() {
            ctx.env.insert("VAULT_NAMESPACE".into(), namespace);
        }
        let task_client = client.with_token(token);
        let renewer = tokio::spawn(renew_loop(
            task_client.clone(),
            ctx.task.name.clone(),
            if auth.renewable {
                auth.lease_duration
            } else {
                0
            },
        ));
        // Should prestart run again for this task (it runs once per task runner; restarts
        // keep the token), the previous token goes.
        if let Some((old, h)) = self.take_state() {
            h.abort();
            if let Err(e) = old.revoke_self().await {
                tracing::warn!(task = %ctx.task.name, "revoking the previous Vault token: {e}");
            }
        }
        match self.state.lock() {
            Ok(mut g) => *g = Some((task_client, renewer)),
            Err(p) => *p.into_inner() = Some((task_client, renewer)),
        }
        Ok(())
    }

    async fn stop(&self, ctx: &HookContext) -> Result<(), HookError> {
        let Some((client, renewer)) = self.take_state() else {
            return Ok(());
        };
        renewer.abort();
        client.revoke_self().await.map_err(|e| {
            err(
                format!("revoking the Vault token of task {:?}: {e}", ctx.task.name),
                false,
            )
        })
    }
}

/// Writes the token readable by its owner only.
fn write_secret(path: &std::path::Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(token.as_bytes())
}
