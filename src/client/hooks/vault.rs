//! Gives a task with a `vault` block its Vault token (Nomad's vault hook, workload identity
//! flow): logs in to the cluster's JWT auth method with the task's `vault_<cluster>` identity
//! and its role (or the agent's `create_from_role`), writes `secrets/vault_token` (unless
//! `disable_file`), sets `VAULT_TOKEN` (unless `env = false`), `VAULT_ADDR` and
//! `VAULT_NAMESPACE`, renews the token at half its lease in the background — once it cannot
//! be renewed any more (its max TTL, revoked), logs in again, rewrites the file and applies
//! `change_mode` (`restart` with the new `VAULT_TOKEN`, `signal` with `change_signal`,
//! `noop`) — and, beyond
//! Nomad — revokes it when the task stops for good (not when the client restarts: this hook's
//! `stop` only runs for a finished task). A login Vault refuses (unknown role, claims the role
//! does not accept) fails the task before it starts; an unreachable Vault is retried under the
//! restart policy. `allow_token_expiration` leaves the token to run out (no renewal, no new
//! login). While Vault is unreachable the task keeps its token and runs on (see
//! [`crate::client::vault_outage`]): renewal is retried, a stale event and gauge say so, and
//! with `vault_outage = "fail"` a token that runs out meanwhile fails the task.

use super::{HookContext, HookError, TaskControl, TaskHook};
use crate::client::template_settings::{self, SharedTemplateSettings};
use crate::client::vault::{VaultClusters, VaultSettings};
use crate::client::vault_outage::{Staleness, VaultOutage};
use caravan_driver::async_trait;
use caravan_structs::{TaskEvent, TaskVault, TASK_EVENT_RESTART_SIGNAL};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The task's current token client (replaced after a new login) and its renewal loop.
type LoggedIn = (
    Arc<Mutex<caravan_vault::Client>>,
    tokio::task::JoinHandle<()>,
);

pub struct VaultHook {
    clusters: Arc<VaultClusters>,
    /// The client's settings (`vault_outage`).
    settings: SharedTemplateSettings,
    /// The task's current token client (the renewal loop replaces it after a new login) and
    /// the renewal loop, once logged in.
    state: Mutex<Option<LoggedIn>>,
}

impl VaultHook {
    pub fn new(clusters: Arc<VaultClusters>, settings: SharedTemplateSettings) -> Self {
        VaultHook {
            clusters,
            settings,
            state: Mutex::new(None),
        }
    }

    fn take_state(&self) -> Option<LoggedIn> {
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

/// What the renewal loop needs to log in again and tell the task.
struct Relogin {
    client: caravan_vault::Client,
    mount: String,
    role: String,
    jwt: String,
    file: Option<std::path::PathBuf>,
    env: bool,
    change_mode: String,
    change_signal: String,
    control: Option<Arc<dyn TaskControl>>,
    current: Arc<Mutex<caravan_vault::Client>>,
    task: String,
    outage: VaultOutage,
    stale: Arc<Staleness>,
}

/// The token client as it is now (a new login replaces it).
pub(super) fn current_client(c: &Mutex<caravan_vault::Client>) -> caravan_vault::Client {
    match c.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

impl Relogin {
    /// A new token for the task after the old one ran out: file, environment, change_mode.
    async fn replace(&self) -> Option<u64> {
        let auth = match self
            .client
            .jwt_login(&self.mount, &self.role, &self.jwt)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(task = %self.task, "logging in to Vault again: {e}");
                return None;
            }
        };
        let token = auth.client_token.clone();
        if let Some(path) = &self.file {
            if let Err(e) = write_secret(path, &token) {
                tracing::warn!(task = %self.task, "writing {}: {e}", path.display());
            }
        }
        match self.current.lock() {
            Ok(mut g) => *g = self.client.with_token(token.clone()),
            Err(p) => *p.into_inner() = self.client.with_token(token.clone()),
        }
        if let Some(control) = &self.control {
            if self.env {
                control.set_env([("VAULT_TOKEN".to_string(), token)].into());
            }
            match self.change_mode.as_str() {
                "signal" if !self.change_signal.is_empty() => {
                    if let Err(e) = control.signal(&self.change_signal).await {
                        tracing::warn!(task = %self.task, "signal after a new Vault token: {e}");
                    }
                }
                "restart" => {
                    let ev = TaskEvent::new(
                        TASK_EVENT_RESTART_SIGNAL,
                        "Vault: new Vault token acquired",
                    );
                    if let Err(e) = control.restart(ev) {
                        tracing::warn!(task = %self.task, "restart after a new Vault token: {e}");
                    }
                }
                _ => {}
            }
        }
        Some(if auth.renewable {
            auth.lease_duration
        } else {
            0
        })
    }
}

/// What the renewal loop calls its token in stale events.
const TOKEN: &str = "the Vault token";

/// Renews the token at half its lease; one that cannot be renewed any more is replaced.
async fn renew_loop(r: Relogin, mut lease: u64) {
    let mut expires = Instant::now() + Duration::from_secs(lease);
    // Between tries once the token ran out during an outage.
    let mut expired_delay = Duration::from_secs(1);
    loop {
        if lease == 0 {
            return;
        }
        // At half the lease, a little earlier for some tasks than others.
        let half = Duration::from_secs(lease).mul_f64(0.5 * (0.9 + 0.1 * crate::util::jitter()));
        tokio::time::sleep(half).await;
        let renewed = current_client(&r.current).renew_self(None).await;
        let outage = matches!(&renewed, Err(e) if e.is_unreachable());
        if !outage {
            r.stale.fresh(TOKEN);
        }
        match renewed {
            // A lease cut short by the token's max TTL: replace it when it runs out.
            Ok(auth) if auth.lease_duration < lease.div_ceil(2) => {
                tokio::time::sleep(Duration::from_secs(auth.lease_duration)).await;
                lease = r.replace().await.unwrap_or(2);
                expires = Instant::now() + Duration::from_secs(lease);
            }
            Ok(auth) => {
                tracing::debug!(task = %r.task, lease = auth.lease_duration, "Vault token renewed");
                lease = auth.lease_duration;
                expires = Instant::now() + Duration::from_secs(lease);
                expired_delay = Duration::from_secs(1);
            }
            Err(e) if e.is_unreachable() => {
                // Vault is away: the task keeps its token; try again sooner as the lease runs
                // down, then with back-off once it ran out.
                tracing::warn!(task = %r.task, "renewing the Vault token: {e}");
                r.stale.stale(TOKEN, &e.to_string());
                if Instant::now() >= expires {
                    if r.outage == VaultOutage::Fail {
                        if let Some(c) = &r.control {
                            c.fail(TaskEvent::new(
                                caravan_structs::TASK_EVENT_KILLING,
                                format!(
                                    "Vault token expired while Vault was unreachable \
                                     (client vault_outage = \"fail\"): {e}"
                                ),
                            ));
                        }
                        return;
                    }
                    tokio::time::sleep(expired_delay).await;
                    expired_delay = (expired_delay * 2).min(Duration::from_secs(30));
                    lease = 2;
                } else {
                    lease = lease.div_ceil(2).max(2);
                }
            }
            Err(e) => {
                tracing::warn!(task = %r.task, "the Vault token can no longer be renewed: {e}");
                lease = r.replace().await.unwrap_or(2);
                expires = Instant::now() + Duration::from_secs(lease);
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
        let token_file = ctx
            .alloc_dir
            .secrets_dir(&ctx.task.name)
            .join("vault_token");
        let kept = match ctx.restoring && !v.disable_file {
            true => still_valid_token(&client, &token_file).await,
            false => None,
        };
        let auth = match kept {
            Some(auth) => auth,
            None => client
                .jwt_login(&s.jwt_auth_backend_path, &role, jwt)
                .await
                .map_err(|e| {
                    err(
                        format!("failed to derive a Vault token (role {role:?}): {e}"),
                        e.is_unreachable(),
                    )
                })?,
        };
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
        let current = Arc::new(Mutex::new(client.with_token(token)));
        ctx.vault = Some(current.clone());
        let relogin = Relogin {
            client: client.clone(),
            mount: s.jwt_auth_backend_path.clone(),
            role,
            jwt: jwt.clone(),
            file: (!v.disable_file).then(|| {
                ctx.alloc_dir
                    .secrets_dir(&ctx.task.name)
                    .join("vault_token")
            }),
            env: v.env,
            change_mode: v.change_mode.clone(),
            change_signal: v.change_signal.clone(),
            control: ctx.control.clone(),
            current: current.clone(),
            task: ctx.task.name.clone(),
            outage: template_settings::current(&self.settings).vault_outage,
            stale: Staleness::new(ctx.control.clone()),
        };
        // `allow_token_expiration`: the token is left to run out, as the job asks.
        let lease = if auth.renewable && !v.allow_token_expiration {
            auth.lease_duration
        } else {
            0
        };
        let renewer = tokio::spawn(renew_loop(relogin, lease));
        // Should prestart run again for this task (it runs once per task runner; restarts
        // keep the token), the previous token goes.
        if let Some((old, h)) = self.take_state() {
            h.abort();
            if let Err(e) = current_client(&old).revoke_self().await {
                tracing::warn!(task = %ctx.task.name, "revoking the previous Vault token: {e}");
            }
        }
        match self.state.lock() {
            Ok(mut g) => *g = Some((current, renewer)),
            Err(p) => *p.into_inner() = Some((current, renewer)),
        }
        Ok(())
    }

    async fn stop(&self, ctx: &HookContext) -> Result<(), HookError> {
        let Some((client, renewer)) = self.take_state() else {
            return Ok(());
        };
        renewer.abort();
        current_client(&client).revoke_self().await.map_err(|e| {
            err(
                format!("revoking the Vault token of task {:?}: {e}", ctx.task.name),
                false,
            )
        })
    }
}

/// Writes the token readable by its owner only.
/// The token a task re-attached after an agent restart already holds (its `vault_token`
/// file), when Vault still accepts it: the task keeps it and renewal carries on, as Nomad's
/// restored Vault hook does. None means a new login.
async fn still_valid_token(
    client: &caravan_vault::Client,
    file: &std::path::Path,
) -> Option<caravan_vault::Auth> {
    let token = std::fs::read_to_string(file).ok()?.trim().to_string();
    if token.is_empty() {
        return None;
    }
    match client.with_token(token.clone()).lookup_self().await {
        Ok(info) if info.ttl > 0 || !info.renewable => Some(caravan_vault::Auth {
            client_token: token,
            accessor: info.accessor,
            policies: info.policies.clone(),
            token_policies: info.policies,
            lease_duration: u64::try_from(info.ttl).unwrap_or(0),
            renewable: info.renewable,
            entity_id: info.entity_id,
        }),
        Ok(_) => None,
        Err(e) => {
            tracing::info!(
                "the restored task's Vault token is no longer usable ({e}); logging in again"
            );
            None
        }
    }
}

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
