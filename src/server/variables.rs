//! Variables on the server, as Nomad's `Variables` endpoint: validation (paths, sizes, lock
//! TTLs), sealing items with the keyring's active key before they enter the log, check-and-set
//! and lock conflicts decided by the same rule the FSM applies, and the lock timers a leader
//! keeps: a lock not renewed within twice its TTL lapses, and after its lock-delay the servers
//! release it through the apply path.

use super::command::Command;
use super::{Server, ServerError};
use crate::state::variables::{
    VarCommand, VarRefusal, VariableEncrypted, VariableLock, VariableMeta,
};
use crate::state::Tables;
use caravan_structs::{new_id, time};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Nomad's limit on a variable's items (keys and values together), unencrypted.
pub const MAX_VARIABLE_SIZE: usize = 64 * 1024;
pub const MAX_PATH_LEN: usize = 128;
const MIN_LOCK_TTL: i64 = 10_000_000_000;
const MAX_LOCK_TTL: i64 = 24 * 3600 * 1_000_000_000;
const DEFAULT_LOCK_TTL: i64 = 15_000_000_000;
const DEFAULT_LOCK_DELAY: i64 = 15_000_000_000;

/// The FSM's part.
pub fn apply(t: &mut Tables, index: u64, cmd: &VarCommand) {
    if let Err(e) = t.apply_variable(index, cmd) {
        // The server checked first; a refusal here only happens on replay of a raced entry.
        tracing::debug!(index, "variable change refused at apply: {e:?}");
    }
}

/// Nomad's `VariableDecrypted`: metadata and the items in the clear.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Variable {
    #[serde(flatten)]
    pub meta: VariableMeta,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub items: BTreeMap<String, String>,
}

/// How a write ended.
#[derive(Debug, Clone)]
pub enum VarWrite {
    /// Applied at this index; the variable as written (none after a delete).
    Done(u64, Option<Variable>),
    /// Check-and-set or lock conflict: what is stored (sealed, or just namespace and path).
    Conflict(VariableEncrypted),
}

/// The in-memory side of variables: one writer at a time (so the conflict check and the
/// apply see the same state), and the lock timers by lock ID.
#[derive(Default)]
pub struct VarRuntime {
    write: Mutex<()>,
    locks: Mutex<HashMap<String, LockTimer>>,
}

#[derive(Debug, Clone)]
struct LockTimer {
    namespace: String,
    path: String,
    ttl: Duration,
    delay: Duration,
    renewed: Instant,
}

impl LockTimer {
    /// Nomad gives a holder twice the TTL before the lock lapses.
    fn lapses_at(&self) -> Instant {
        self.renewed + self.ttl * 2
    }
    fn released_at(&self) -> Instant {
        self.lapses_at() + self.delay
    }
}

/// Nomad's variable path rules: 1 to 128 of letters, digits, `-`, `_`, `~` and `/`, no empty
/// segment (so no leading, trailing or doubled `/`), and under `nomad/` only `nomad/jobs...`
/// and `nomad/job-templates/<name>`.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("variable requires path".into());
    }
    if path.len() > MAX_PATH_LEN
        || !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '~' | '/'))
    {
        return Err(format!(
            "invalid path {path:?}: paths are 1 to {MAX_PATH_LEN} letters, digits, '-', '_', '~' and '/'"
        ));
    }
    if path.split('/').any(str::is_empty) {
        return Err(format!(
            "invalid path {path:?}: no leading, trailing or doubled '/'"
        ));
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts[0] != "nomad" {
        return Ok(());
    }
    match parts.get(1) {
        None => Err(r#""nomad" is a reserved top-level directory path, but you may write variables to "nomad/jobs", "nomad/job-templates", or below"#.into()),
        Some(&"jobs") | Some(&"sentinel") => Ok(()),
        Some(&"job-templates") if parts.len() == 3 => Ok(()),
        Some(&"job-templates") => Err(r#""nomad/job-templates" is a reserved directory path, but you may write variables at the level below it, for example, "nomad/job-templates/template-name""#.into()),
        Some(_) => Err(r#"only paths at "nomad/jobs" or "nomad/job-templates" and below are valid paths under the top-level "nomad" directory"#.into()),
    }
}

fn validate_items(items: &BTreeMap<String, String>) -> Result<(), String> {
    let size: usize = items.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_VARIABLE_SIZE {
        return Err("variables are limited to 64KiB in total size".into());
    }
    Ok(())
}

fn validate_namespace(ns: &str) -> Result<(), String> {
    if ns == "*" {
        return Err("can not target wildcard (\"*\") namespace".into());
    }
    Ok(())
}

fn bad(e: String) -> ServerError {
    ServerError::BadRequest(e)
}

impl Server {
    /// Seals items with the active root key.
    fn seal(&self, items: &BTreeMap<String, String>) -> Result<(String, Vec<u8>), ServerError> {
        let json = serde_json::to_vec(items)
            .map_err(|e| ServerError::Internal(format!("cannot encode items: {e}")))?;
        self.encrypt(&json)
    }

    /// A stored variable with its items opened (none stored: no items).
    pub fn var_open(&self, v: &VariableEncrypted) -> Result<Variable, ServerError> {
        let items = if v.data.is_empty() {
            BTreeMap::new()
        } else {
            let plain = self.decrypt(&v.key_id, &v.data)?;
            serde_json::from_slice::<Option<BTreeMap<String, String>>>(&plain)
                .map_err(|e| ServerError::Internal(format!("stored variable is damaged: {e}")))?
                .unwrap_or_default()
        };
        Ok(Variable {
            meta: v.meta.clone(),
            items,
        })
    }

    /// `GET /v1/var/:path`.
    pub fn var_read(&self, ns: &str, path: &str) -> Result<Option<Variable>, ServerError> {
        match self.store.snapshot().variable(ns, path) {
            Some(v) => self.var_open(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Decides `cmd` on the current state and applies it when it would go through.
    fn var_run(&self, cmd: VarCommand) -> Result<Result<u64, VarRefusal>, ServerError> {
        let _one_writer = self
            .variables
            .write
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut dry: Tables = (*self.store.snapshot()).clone();
        if let Err(r) = dry.apply_variable(u64::MAX, &cmd) {
            return Ok(Err(r));
        }
        Ok(Ok(self.raft_apply(Command::Variables(cmd))))
    }

    fn var_outcome(
        &self,
        r: Result<u64, VarRefusal>,
        ns: &str,
        path: &str,
        items: Option<BTreeMap<String, String>>,
    ) -> Result<VarWrite, ServerError> {
        match r {
            Ok(index) => {
                let written = self.store.snapshot().variable(ns, path);
                let out = match (written, items) {
                    (Some(v), Some(items)) => Some(Variable {
                        meta: v.meta.clone(),
                        items,
                    }),
                    (Some(v), None) => Some(Variable {
                        meta: v.meta.clone(),
                        items: BTreeMap::new(),
                    }),
                    (None, _) => None,
                };
                Ok(VarWrite::Done(index, out))
            }
            Err(VarRefusal::Conflict(v)) => Ok(VarWrite::Conflict(*v)),
            Err(VarRefusal::NotFound(m)) => Err(ServerError::NotFound(m)),
            Err(VarRefusal::Locked(m)) => Err(ServerError::Conflict(m)),
        }
    }

    /// `PUT /v1/var/:path` (with `cas`): writes the items; a locked variable only with its
    /// lock ID.
    pub fn var_set(
        &self,
        ns: &str,
        path: &str,
        items: BTreeMap<String, String>,
        lock_id: Option<String>,
        cas: Option<u64>,
    ) -> Result<VarWrite, ServerError> {
        validate_namespace(ns).map_err(bad)?;
        if items.is_empty() {
            return Err(bad("variable missing required Items object".into()));
        }
        validate_items(&items).map_err(bad)?;
        validate_path(path).map_err(bad)?;
        let (key_id, data) = self.seal(&items)?;
        let now = time::now_nanos();
        let var = VariableEncrypted {
            meta: VariableMeta {
                namespace: ns.into(),
                path: path.into(),
                lock: lock_id.map(|id| VariableLock {
                    id,
                    ..Default::default()
                }),
                create_time: now,
                modify_time: now,
                ..Default::default()
            },
            data,
            key_id,
        };
        let r = self.var_run(VarCommand::Set { var, cas })?;
        self.var_outcome(r, ns, path, Some(items))
    }

    /// `DELETE /v1/var/:path` (with `cas`).
    pub fn var_delete(
        &self,
        ns: &str,
        path: &str,
        cas: Option<u64>,
        lock_id: Option<String>,
    ) -> Result<VarWrite, ServerError> {
        validate_namespace(ns).map_err(bad)?;
        validate_path(path).map_err(bad)?;
        let r = self.var_run(VarCommand::Delete {
            namespace: ns.into(),
            path: path.into(),
            cas,
            lock_id,
        })?;
        self.var_outcome(r, ns, path, None)
    }

    /// `PUT /v1/var/:path?lock-acquire`: takes the lock (Nomad's defaults: 15 s TTL, 15 s
    /// delay), creating the variable when absent; the answer carries the new lock ID.
    pub fn var_lock_acquire(
        &self,
        ns: &str,
        path: &str,
        items: BTreeMap<String, String>,
        lock: Option<VariableLock>,
    ) -> Result<VarWrite, ServerError> {
        validate_namespace(ns).map_err(bad)?;
        validate_items(&items).map_err(bad)?;
        validate_path(path).map_err(bad)?;
        let mut lock = lock.unwrap_or_default();
        if lock.id.is_empty() {
            lock.id = new_id();
        }
        if lock.ttl == 0 {
            lock.ttl = DEFAULT_LOCK_TTL;
        }
        if lock.lock_delay == 0 {
            lock.lock_delay = DEFAULT_LOCK_DELAY;
        }
        if lock.ttl < 0 || lock.lock_delay < 0 {
            return Err(bad("Lock delay and TTL must be positive".into()));
        }
        if !(MIN_LOCK_TTL..=MAX_LOCK_TTL).contains(&lock.ttl) {
            return Err(bad("TTL must be between 10 seconds and 24 hours".into()));
        }
        let (key_id, data) = if items.is_empty() {
            (String::new(), Vec::new())
        } else {
            self.seal(&items)?
        };
        let now = time::now_nanos();
        let var = VariableEncrypted {
            meta: VariableMeta {
                namespace: ns.into(),
                path: path.into(),
                lock: Some(lock.clone()),
                create_time: now,
                modify_time: now,
                ..Default::default()
            },
            data,
            key_id,
        };
        let r = self.var_run(VarCommand::LockAcquire { var })?;
        let out = self.var_outcome(r, ns, path, None)?;
        if let VarWrite::Done(_, Some(v)) = &out {
            self.var_timer_start(ns, path, &lock);
            // The answer shows the items now stored (kept or given).
            let stored = self.store.snapshot().variable(ns, path);
            if let Some(stored) = stored {
                let opened = self.var_open(&stored)?;
                return Ok(VarWrite::Done(
                    v.meta.modify_index,
                    Some(Variable {
                        meta: v.meta.clone(),
                        items: opened.items,
                    }),
                ));
            }
        }
        Ok(out)
    }

    /// `PUT /v1/var/:path?lock-release`: only the holder's lock ID releases.
    pub fn var_lock_release(
        &self,
        ns: &str,
        path: &str,
        lock_id: &str,
    ) -> Result<VarWrite, ServerError> {
        validate_namespace(ns).map_err(bad)?;
        validate_path(path).map_err(bad)?;
        if lock_id.is_empty() {
            return Err(bad("missing lock information".into()));
        }
        let r = self.var_run(VarCommand::LockRelease {
            namespace: ns.into(),
            path: path.into(),
            lock_id: Some(lock_id.into()),
            expected: None,
        })?;
        let out = self.var_outcome(r, ns, path, None)?;
        if matches!(out, VarWrite::Done(..)) {
            self.var_locks().remove(lock_id);
        }
        Ok(out)
    }

    /// `PUT /v1/var/:path?lock-renew`: restarts the holder's TTL, unless it already lapsed.
    pub fn var_lock_renew(
        &self,
        ns: &str,
        path: &str,
        lock_id: &str,
    ) -> Result<VariableMeta, ServerError> {
        validate_path(path).map_err(bad)?;
        if lock_id.is_empty() {
            return Err(bad("missing lock ID".into()));
        }
        let v = self
            .store
            .snapshot()
            .variable(ns, path)
            .ok_or_else(|| ServerError::NotFound("variable doesn't exist".into()))?;
        let Some(held) = &v.meta.lock else {
            return Err(ServerError::Conflict("variable doesn't hold a lock".into()));
        };
        let locked = || ServerError::Conflict("attempting to modify locked variable".into());
        if held.id != lock_id {
            return Err(locked());
        }
        let now = Instant::now();
        let mut timers = self.var_locks();
        match timers.get_mut(lock_id) {
            Some(t) if now < t.lapses_at() => t.renewed = now,
            _ => return Err(locked()),
        }
        Ok(v.meta.clone())
    }

    fn var_locks(&self) -> std::sync::MutexGuard<'_, HashMap<String, LockTimer>> {
        self.variables
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn var_timer_start(&self, ns: &str, path: &str, lock: &VariableLock) {
        self.var_locks().insert(
            lock.id.clone(),
            LockTimer {
                namespace: ns.into(),
                path: path.into(),
                ttl: time::nanos(lock.ttl),
                delay: time::nanos(lock.lock_delay),
                renewed: Instant::now(),
            },
        );
    }

    /// One pass of the lock timers as of `now`: locks in the state without a timer (a new
    /// leader's) get one; timers of locks no longer held go; locks whose TTL lapsed and whose
    /// delay passed are released through the apply path. Returns how many were released.
    pub fn var_locks_tick(&self, now: Instant) -> usize {
        let snap = self.store.snapshot();
        let due: Vec<(String, LockTimer)> = {
            let mut timers = self.var_locks();
            for v in snap.variables.values() {
                if let Some(l) = &v.meta.lock {
                    timers.entry(l.id.clone()).or_insert_with(|| LockTimer {
                        namespace: v.meta.namespace.clone(),
                        path: v.meta.path.clone(),
                        ttl: time::nanos(l.ttl),
                        delay: time::nanos(l.lock_delay),
                        renewed: Instant::now(),
                    });
                }
            }
            timers.retain(|id, t| {
                snap.variable(&t.namespace, &t.path)
                    .and_then(|v| v.meta.lock.as_ref().map(|l| l.id == *id))
                    .unwrap_or(false)
            });
            timers
                .iter()
                .filter(|(_, t)| now >= t.released_at())
                .map(|(id, t)| (id.clone(), t.clone()))
                .collect()
        };
        let mut released = 0;
        for (id, t) in due {
            self.var_locks().remove(&id);
            let r = self.var_run(VarCommand::LockRelease {
                namespace: t.namespace.clone(),
                path: t.path.clone(),
                lock_id: None,
                expected: Some(id.clone()),
            });
            match r {
                Ok(Ok(_)) => {
                    tracing::info!(namespace = %t.namespace, path = %t.path, "variable lock expired; released");
                    released += 1;
                }
                Ok(Err(e)) => tracing::debug!(path = %t.path, "lapsed lock already gone: {e:?}"),
                Err(e) => tracing::warn!(path = %t.path, "cannot release a lapsed lock: {e}"),
            }
        }
        released
    }
}

impl Server {
    /// What a task's templates read (`nomadVar`, `nomadVarExists`, `nomadVarList`): the
    /// variable's items (`Null` when absent) or the metadata under a prefix, as the task's
    /// workload identity may see them (with ACLs on), once the Variables table passes
    /// `min_index` or `wait` ends; with the table's index.
    pub async fn template_var(
        &self,
        alloc_id: &str,
        task: &str,
        dep: &caravan_templates::Dependency,
        min_index: u64,
        wait: Duration,
    ) -> Result<(serde_json::Value, u64), ServerError> {
        use caravan_acl::capability as cap;
        use caravan_templates::Dependency;
        let alloc = self
            .store
            .snapshot()
            .allocs
            .get(alloc_id)
            .cloned()
            .ok_or_else(|| ServerError::NotFound(format!("allocation {alloc_id} not found")))?;
        let resolved = if self.acl_enabled() {
            let jwt = alloc
                .signed_identities
                .get(task)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ServerError::BadRequest(format!(
                        "Permission denied: task {task:?} has no workload identity to read variables with"
                    ))
                })?;
            Some(
                self.resolve_token(Some(jwt))
                    .map_err(|e| ServerError::BadRequest(format!("Permission denied: {e}")))?,
            )
        } else {
            None
        };
        if matches!(
            dep,
            Dependency::NomadService { .. } | Dependency::NomadServices
        ) {
            // Any valid workload identity reads its own namespace's services, as Nomad.
            return self
                .template_services(&alloc.namespace, dep, min_index, wait)
                .await;
        }
        let may = |ns: &str, path: &str, capability: &str| {
            resolved.as_ref().is_none_or(|r| {
                r.acl
                    .allow_variable_operation_with_claim(ns, path, capability, r.claim.as_ref())
            })
        };
        if min_index > 0 {
            self.store
                .watches
                .wait_any(&[crate::state::Table::Variables], min_index, wait)
                .await;
        }
        let snap = self.store.snapshot();
        let index = snap.table_index(crate::state::Table::Variables).max(1);
        let ns_or = |ns: &Option<String>| ns.clone().unwrap_or_else(|| alloc.namespace.clone());
        match dep {
            Dependency::NomadVar {
                path, namespace, ..
            } => {
                let ns = ns_or(namespace);
                if !may(&ns, path, cap::VAR_READ) {
                    return Err(ServerError::BadRequest(format!(
                        "Permission denied: reading variable {path:?} in namespace {ns:?}"
                    )));
                }
                let value = match snap.variable(&ns, path) {
                    Some(v) => serde_json::to_value(self.var_open(&v)?.items)
                        .map_err(|e| ServerError::Internal(e.to_string()))?,
                    None => serde_json::Value::Null,
                };
                Ok((value, index))
            }
            Dependency::NomadVarList { prefix, namespace } => {
                let ns = ns_or(namespace);
                let list: Vec<VariableMeta> = snap
                    .variables
                    .values()
                    .filter(|v| v.meta.namespace == ns && v.meta.path.starts_with(prefix.as_str()))
                    .filter(|v| may(&ns, &v.meta.path, cap::VAR_LIST))
                    .map(|v| VariableMeta {
                        lock: None,
                        ..v.meta.clone()
                    })
                    .collect();
                Ok((
                    serde_json::to_value(list).map_err(|e| ServerError::Internal(e.to_string()))?,
                    index,
                ))
            }
            other => Err(ServerError::BadRequest(format!(
                "{other} is not read from the Nomad servers"
            ))),
        }
    }
}

/// The leader's lock timer loop.
pub async fn run_lock_timers(server: Arc<Server>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        server.var_locks_tick(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerConfig;

    #[test]
    fn paths_follow_nomads_rules() {
        for ok in [
            "a",
            "app/web/config",
            "nomad/jobs",
            "nomad/jobs/x/y",
            "a-b_c~d",
            "nomad/job-templates/t",
        ] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "../x",
            "a/../b",
            "a.b",
            "a b",
            "ä",
            "nomad",
            "nomad/other",
            "nomad/job-templates",
            "nomad/job-templates/a/b",
            long.as_str(),
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn items_are_sealed_in_the_state_and_locks_lapse() {
        let s = Server::new(ServerConfig::default());
        s.keyring_init().unwrap();
        let items: BTreeMap<String, String> =
            [("password".to_string(), "hunter2-plaintext".to_string())].into();
        let VarWrite::Done(_, Some(v)) =
            s.var_set("default", "db/creds", items, None, None).unwrap()
        else {
            panic!("not written");
        };
        assert_eq!(v.items["password"], "hunter2-plaintext");
        let stored = s.store.snapshot().variable("default", "db/creds").unwrap();
        assert!(!stored.data.windows(7).any(|w| w == b"hunter2"));
        let logged = serde_json::to_string(&*stored).unwrap();
        assert!(!logged.contains("hunter2"), "{logged}");
        assert_eq!(
            s.var_read("default", "db/creds").unwrap().unwrap().items["password"],
            "hunter2-plaintext"
        );

        let VarWrite::Done(_, Some(l)) = s
            .var_lock_acquire("default", "db/creds", BTreeMap::new(), None)
            .unwrap()
        else {
            panic!("no lock");
        };
        let id = l.meta.lock.clone().unwrap().id;
        assert_eq!(l.items["password"], "hunter2-plaintext", "items kept");
        assert!(matches!(
            s.var_lock_acquire("default", "db/creds", BTreeMap::new(), None)
                .unwrap(),
            VarWrite::Conflict(_)
        ));
        assert!(s.var_lock_renew("default", "db/creds", &id).is_ok());
        assert!(s.var_lock_renew("default", "db/creds", "other").is_err());
        assert_eq!(s.var_locks_tick(Instant::now()), 0, "not lapsed yet");
        // Past 2 x TTL + delay, the servers release it.
        let later = Instant::now() + Duration::from_secs(3600);
        assert_eq!(s.var_locks_tick(later), 1);
        let v = s.store.snapshot().variable("default", "db/creds").unwrap();
        assert!(v.meta.lock.is_none());
        assert!(s.var_lock_renew("default", "db/creds", &id).is_err());
    }
}
