//! ACL on the server: the commands that change policies, tokens and roles and how the FSM
//! applies them, their validation (policies must parse, roles name existing policies, token
//! types and expiry TTLs as Nomad allows), the one-time bootstrap (re-armed by Nomad's
//! `acl-bootstrap-reset` file), and resolving a secret ID to the ACL it grants, cached until
//! the ACL tables change.

use super::{Server, ServerError};
use crate::state::{Table, Tables};
use caravan_acl::Acl;
use caravan_structs::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `acl {}` of the agent configuration.
#[derive(Debug, Clone)]
pub struct AclConfig {
    pub enabled: bool,
    /// `token_min_expiration_ttl` / `token_max_expiration_ttl`.
    pub token_min_expiration_ttl: Duration,
    pub token_max_expiration_ttl: Duration,
    /// `<data_dir>/server/acl-bootstrap-reset`: holding the bootstrap's reset index allows one
    /// more bootstrap.
    pub bootstrap_reset_file: Option<PathBuf>,
}

impl Default for AclConfig {
    fn default() -> Self {
        AclConfig {
            enabled: false,
            token_min_expiration_ttl: Duration::from_secs(60),
            token_max_expiration_ttl: Duration::from_secs(24 * 3600),
            bootstrap_reset_file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "Op")]
pub enum AclCommand {
    PolicyUpsert {
        policies: Vec<AclPolicy>,
    },
    PolicyDelete {
        names: Vec<String>,
    },
    TokenUpsert {
        tokens: Vec<AclToken>,
    },
    TokenDelete {
        accessors: Vec<String>,
    },
    RoleUpsert {
        roles: Vec<AclRole>,
    },
    RoleDelete {
        ids: Vec<String>,
    },
    /// The first management token; marks the cluster bootstrapped at this index.
    Bootstrap {
        token: AclToken,
    },
}

/// The FSM's part for ACL commands.
pub fn apply(t: &mut Tables, index: u64, cmd: &AclCommand) {
    match cmd {
        AclCommand::PolicyUpsert { policies } => {
            for p in policies {
                t.acl_upsert_policy(index, p.clone());
            }
        }
        AclCommand::PolicyDelete { names } => t.acl_delete_policies(index, names),
        AclCommand::TokenUpsert { tokens } => {
            for tok in tokens {
                t.acl_upsert_token(index, tok.clone());
            }
        }
        AclCommand::TokenDelete { accessors } => t.acl_delete_tokens(index, accessors),
        AclCommand::RoleUpsert { roles } => {
            for r in roles {
                t.acl_upsert_role(index, r.clone());
            }
        }
        AclCommand::RoleDelete { ids } => t.acl_delete_roles(index, ids),
        AclCommand::Bootstrap { token } => {
            t.acl_upsert_token(index, token.clone());
            t.acl_mark_bootstrapped(index);
        }
    }
}

/// Why a request's token gives it nothing.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResolveError {
    #[error("ACL token not found")]
    NotFound,
    #[error("ACL token expired")]
    Expired,
    /// A workload identity JWT that is forged, expired, or whose allocation is gone.
    #[error("invalid workload identity: {0}")]
    Identity(String),
}

/// What a request may do: its token (none for the anonymous token) and the compiled ACL.
#[derive(Clone)]
pub struct Resolved {
    pub token: Option<Arc<AclToken>>,
    pub acl: Arc<Acl>,
    /// Set when the request carries a workload identity: the task it was signed for (its own
    /// Variables under `nomad/jobs/<job>` are readable with it).
    pub claim: Option<caravan_acl::AclClaim>,
}

/// Compiled ACLs by token accessor (`""` for anonymous), valid for one ACL table index.
#[derive(Default)]
pub struct AclCache {
    inner: Mutex<(u64, HashMap<String, Arc<Acl>>)>,
}

/// Nomad's policy and role names: letters, digits and dashes, 1 to 128 characters.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn secret() -> String {
    new_id()
}

impl Server {
    pub fn acl_enabled(&self) -> bool {
        self.config.acl.enabled
    }

    fn require_acl(&self) -> Result<(), ServerError> {
        if self.acl_enabled() {
            Ok(())
        } else {
            Err(ServerError::BadRequest("ACL support disabled".into()))
        }
    }

    /// `PUT /v1/acl/bootstrap`: the first management token, once (again only when the reset
    /// file holds the index of the last bootstrap). `secret` is an operator-chosen secret ID.
    pub fn acl_bootstrap(&self, secret_id: Option<String>) -> Result<AclToken, ServerError> {
        self.require_acl()?;
        let done_at = self.store.snapshot().acl.bootstrap_index;
        if done_at > 0 {
            let reset = self
                .config
                .acl
                .bootstrap_reset_file
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|s| s.trim().parse::<u64>().ok());
            if reset != Some(done_at) {
                return Err(ServerError::BadRequest(format!(
                    "ACL bootstrap already done (reset index: {done_at})"
                )));
            }
        }
        let secret_id = match secret_id.filter(|s| !s.is_empty()) {
            Some(s) => {
                uuid::Uuid::parse_str(&s).map_err(|_| {
                    ServerError::BadRequest("invalid acl token secret: must be a UUID".into())
                })?;
                s
            }
            None => secret(),
        };
        let token = AclToken {
            accessor_id: new_id(),
            secret_id,
            name: "Bootstrap Token".into(),
            kind: ACL_TOKEN_MANAGEMENT.into(),
            global: true,
            create_time: crate::util::rfc3339(time::now_nanos()),
            ..Default::default()
        };
        let index = self.raft_apply(super::command::Command::Acl(AclCommand::Bootstrap {
            token: token.clone(),
        }));
        self.acl_token_at(&token.accessor_id, index)
    }

    fn acl_token_at(&self, accessor: &str, index: u64) -> Result<AclToken, ServerError> {
        self.store
            .snapshot()
            .acl
            .tokens
            .get(accessor)
            .map(|t| (**t).clone())
            .ok_or_else(|| ServerError::Internal(format!("token written at {index} is missing")))
    }

    pub fn acl_policy_upsert(&self, policy: AclPolicy) -> Result<u64, ServerError> {
        self.require_acl()?;
        if !valid_name(&policy.name) {
            return Err(ServerError::BadRequest(format!(
                "invalid name {:?}: policy names are letters, digits and dashes, at most 128",
                policy.name
            )));
        }
        caravan_acl::parse(&policy.rules)
            .map_err(|e| ServerError::BadRequest(format!("policy {:?}: {e}", policy.name)))?;
        if let Some(j) = &policy.job_acl {
            super::identity::validate_job_acl(j).map_err(ServerError::BadRequest)?;
        }
        Ok(
            self.raft_apply(super::command::Command::Acl(AclCommand::PolicyUpsert {
                policies: vec![policy],
            })),
        )
    }

    pub fn acl_policy_delete(&self, name: &str) -> Result<u64, ServerError> {
        self.require_acl()?;
        if !self.store.snapshot().acl.policies.contains_key(name) {
            return Err(ServerError::NotFound(format!(
                "ACL policy {name:?} not found"
            )));
        }
        Ok(
            self.raft_apply(super::command::Command::Acl(AclCommand::PolicyDelete {
                names: vec![name.to_string()],
            })),
        )
    }

    /// Links to roles by ID or name, resolved to both.
    fn resolve_roles(
        &self,
        links: &[AclTokenRoleLink],
    ) -> Result<Vec<AclTokenRoleLink>, ServerError> {
        let snap = self.store.snapshot();
        links
            .iter()
            .map(|l| {
                let role = if !l.id.is_empty() {
                    snap.acl.roles.get(&l.id).cloned()
                } else {
                    snap.acl.role_by_name(&l.name)
                };
                role.map(|r| AclTokenRoleLink {
                    id: r.id.clone(),
                    name: r.name.clone(),
                })
                .ok_or_else(|| {
                    ServerError::BadRequest(format!(
                        "cannot find role {}",
                        if l.id.is_empty() { &l.name } else { &l.id }
                    ))
                })
            })
            .collect()
    }

    fn check_token(&self, t: &mut AclToken) -> Result<(), ServerError> {
        match t.kind.as_str() {
            ACL_TOKEN_CLIENT => {
                if t.policies.is_empty() && t.roles.is_empty() {
                    return Err(ServerError::BadRequest(
                        "client token missing policies or roles".into(),
                    ));
                }
            }
            ACL_TOKEN_MANAGEMENT => {
                if !t.policies.is_empty() || !t.roles.is_empty() {
                    return Err(ServerError::BadRequest(
                        "management token cannot be associated with policies or roles".into(),
                    ));
                }
            }
            other => {
                return Err(ServerError::BadRequest(format!(
                    "token type must be client or management, not {other:?}"
                )))
            }
        }
        t.roles = self.resolve_roles(&t.roles)?;
        Ok(())
    }

    /// `PUT /v1/acl/token`: a new token with fresh IDs; `ExpirationTTL` sets its expiry.
    pub fn acl_token_create(&self, mut t: AclToken) -> Result<AclToken, ServerError> {
        self.require_acl()?;
        if !t.accessor_id.is_empty() {
            return Err(ServerError::BadRequest(
                "a new token gets its accessor ID from the server; update a token at /v1/acl/token/<accessor>".into(),
            ));
        }
        self.check_token(&mut t)?;
        let now = time::now_nanos();
        if t.expiration_ttl != 0 || t.expiration_time.is_some() {
            let ttl = if t.expiration_ttl != 0 {
                t.expiration_ttl
            } else {
                t.expiration_time
                    .as_deref()
                    .and_then(crate::util::parse_rfc3339)
                    .map(|at| at - now)
                    .ok_or_else(|| ServerError::BadRequest("invalid ExpirationTime".into()))?
            };
            let (min, max) = (
                self.config.acl.token_min_expiration_ttl,
                self.config.acl.token_max_expiration_ttl,
            );
            if ttl < min.as_nanos() as i64 || ttl > max.as_nanos() as i64 {
                return Err(ServerError::BadRequest(format!(
                    "expiration time cannot be less than {} or more than {} in the future",
                    time::format_duration(min.as_nanos() as i64),
                    time::format_duration(max.as_nanos() as i64)
                )));
            }
            t.expiration_time = Some(crate::util::rfc3339(now + ttl));
        }
        t.accessor_id = new_id();
        t.secret_id = secret();
        t.create_time = crate::util::rfc3339(now);
        let accessor = t.accessor_id.clone();
        let index = self.raft_apply(super::command::Command::Acl(AclCommand::TokenUpsert {
            tokens: vec![t],
        }));
        self.acl_token_at(&accessor, index)
    }

    /// `PUT /v1/acl/token/:accessor`: name, policies and roles change; type, secret and
    /// expiry do not.
    pub fn acl_token_update(
        &self,
        accessor: &str,
        mut t: AclToken,
    ) -> Result<AclToken, ServerError> {
        self.require_acl()?;
        let old = self
            .store
            .snapshot()
            .acl
            .tokens
            .get(accessor)
            .cloned()
            .ok_or_else(|| ServerError::NotFound(format!("ACL token {accessor} not found")))?;
        if !t.kind.is_empty() && t.kind != old.kind {
            return Err(ServerError::BadRequest("cannot change token type".into()));
        }
        t.kind = old.kind.clone();
        self.check_token(&mut t)?;
        let updated = AclToken {
            name: t.name,
            policies: t.policies,
            roles: t.roles,
            ..(*old).clone()
        };
        let index = self.raft_apply(super::command::Command::Acl(AclCommand::TokenUpsert {
            tokens: vec![updated],
        }));
        self.acl_token_at(accessor, index)
    }

    pub fn acl_token_delete(&self, accessor: &str) -> Result<u64, ServerError> {
        self.require_acl()?;
        if !self.store.snapshot().acl.tokens.contains_key(accessor) {
            return Err(ServerError::NotFound(format!(
                "ACL token {accessor} not found"
            )));
        }
        Ok(
            self.raft_apply(super::command::Command::Acl(AclCommand::TokenDelete {
                accessors: vec![accessor.to_string()],
            })),
        )
    }

    /// `PUT /v1/acl/role` (no ID) and `PUT /v1/acl/role/:id`: names are unique, policies must
    /// exist.
    pub fn acl_role_upsert(&self, mut r: AclRole) -> Result<AclRole, ServerError> {
        self.require_acl()?;
        if !valid_name(&r.name) {
            return Err(ServerError::BadRequest(format!(
                "invalid name {:?}: role names are letters, digits and dashes, at most 128",
                r.name
            )));
        }
        if r.policies.is_empty() {
            return Err(ServerError::BadRequest(
                "at least one policy must be specified".into(),
            ));
        }
        let snap = self.store.snapshot();
        for p in &r.policies {
            if !snap.acl.policies.contains_key(&p.name) {
                return Err(ServerError::BadRequest(format!(
                    "cannot find policy {}",
                    p.name
                )));
            }
        }
        if r.id.is_empty() {
            r.id = new_id();
        } else if !snap.acl.roles.contains_key(&r.id) {
            return Err(ServerError::NotFound(format!(
                "ACL role {} not found",
                r.id
            )));
        }
        if let Some(other) = snap.acl.role_by_name(&r.name) {
            if other.id != r.id {
                return Err(ServerError::BadRequest(format!(
                    "role with name {} already exists",
                    r.name
                )));
            }
        }
        let id = r.id.clone();
        self.raft_apply(super::command::Command::Acl(AclCommand::RoleUpsert {
            roles: vec![r],
        }));
        self.store
            .snapshot()
            .acl
            .roles
            .get(&id)
            .map(|r| (**r).clone())
            .ok_or_else(|| ServerError::Internal(format!("role {id} is missing")))
    }

    pub fn acl_role_delete(&self, id: &str) -> Result<u64, ServerError> {
        self.require_acl()?;
        if !self.store.snapshot().acl.roles.contains_key(id) {
            return Err(ServerError::NotFound(format!("ACL role {id} not found")));
        }
        Ok(
            self.raft_apply(super::command::Command::Acl(AclCommand::RoleDelete {
                ids: vec![id.to_string()],
            })),
        )
    }

    /// The ACL a request carrying `secret` (none: the anonymous token) may use. With ACLs off
    /// every request may do everything.
    pub fn resolve_token(&self, secret: Option<&str>) -> Result<Resolved, ResolveError> {
        if !self.acl_enabled() {
            return Ok(Resolved {
                token: None,
                acl: Arc::new(Acl::management()),
                claim: None,
            });
        }
        if let Some(jwt) = secret.filter(|s| super::identity::looks_like_jwt(s)) {
            return self.resolve_workload_identity(jwt);
        }
        let snap = self.store.snapshot();
        let token = match secret.filter(|s| !s.is_empty()) {
            Some(s) => {
                let t = snap.acl.token_by_secret(s).ok_or(ResolveError::NotFound)?;
                let expired = t
                    .expiration_time
                    .as_deref()
                    .and_then(crate::util::parse_rfc3339)
                    .is_some_and(|at| at <= time::now_nanos());
                if expired {
                    return Err(ResolveError::Expired);
                }
                Some(t)
            }
            None => None,
        };
        let key = token
            .as_ref()
            .map(|t| t.accessor_id.clone())
            .unwrap_or_default();
        let at = snap.table_index(Table::Acl);
        {
            let mut g = self
                .acl_cache
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if g.0 != at {
                *g = (at, HashMap::new());
            }
            if let Some(acl) = g.1.get(&key) {
                return Ok(Resolved {
                    token,
                    acl: acl.clone(),
                    claim: None,
                });
            }
        }
        let acl = Arc::new(compile(&snap, token.as_deref()));
        let mut g = self
            .acl_cache
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if g.0 == at {
            g.1.insert(key, acl.clone());
        }
        Ok(Resolved {
            token,
            acl,
            claim: None,
        })
    }
}

/// The ACL of a token (none: anonymous) from the policies it names directly and through its
/// roles; policies that no longer exist or no longer parse grant nothing.
fn compile(snap: &Tables, token: Option<&AclToken>) -> Acl {
    let names: Vec<String> = match token {
        Some(t) if t.is_management() => return Acl::management(),
        Some(t) => {
            let mut names = t.policies.clone();
            for link in &t.roles {
                if let Some(r) = snap.acl.roles.get(&link.id) {
                    names.extend(r.policies.iter().map(|p| p.name.clone()));
                }
            }
            names
        }
        None => vec![ANONYMOUS_POLICY.to_string()],
    };
    let mut parsed = Vec::new();
    for n in names {
        let Some(p) = snap.acl.policies.get(&n) else {
            continue;
        };
        match caravan_acl::parse_lenient(&p.rules) {
            Ok(p) => parsed.push(p),
            Err(e) => tracing::warn!(policy = %n, "stored ACL policy does not parse: {e}"),
        }
    }
    if parsed.is_empty() {
        Acl::deny_all()
    } else {
        Acl::from_policies(&parsed)
    }
}
