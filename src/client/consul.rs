//! Caravan's link to the local Consul agent: the registrations Caravan wants in Consul (job
//! services and the agent's own `nomad`/`nomad-client` services), kept there by a sync loop that
//! retries with back-off while Consul is away and removes `_nomad-task-` registrations Caravan no
//! longer owns; and the client's `consul.*` node attributes, fingerprinted periodically.

use super::Client;
use caravan_consul::{AgentServiceRegistration, ConsulClient, ConsulError, WriteOptions};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Prefix of the Consul service IDs of job services (Nomad's `nomadTaskPrefix`).
pub const TASK_SERVICE_PREFIX: &str = "_nomad-task-";
/// Prefix of the Consul check IDs of job service checks (Nomad's `nomadCheckPrefix`).
pub const CHECK_PREFIX: &str = "_nomad-check-";
/// The longest a hook waits on one Consul call before leaving it to the sync loop.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A check's `on_update` values (Nomad's `OnUpdateRequireHealthy` and friends): whether the
/// check counts towards the allocation's health.
pub const ON_UPDATE_REQUIRE_HEALTHY: &str = "require_healthy";
pub const ON_UPDATE_IGNORE_WARNINGS: &str = "ignore_warnings";
pub const ON_UPDATE_IGNORE: &str = "ignore";

/// How often the sync loop and the fingerprint run, and the back-off while Consul is away.
#[derive(Debug, Clone)]
pub struct ConsulTiming {
    /// Between syncs while Consul answers (Nomad: 30s periodic sync).
    pub sync_interval: Duration,
    /// Between fingerprints while Consul answers (Nomad: 15s).
    pub fingerprint_interval: Duration,
    /// First retry delay after a failure; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ConsulTiming {
    fn default() -> Self {
        ConsulTiming {
            sync_interval: Duration::from_secs(30),
            fingerprint_interval: Duration::from_secs(15),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// One Consul cluster as Caravan uses it: the HTTP client and what Caravan wants registered.
#[derive(Debug)]
pub struct Consul {
    pub client: ConsulClient,
    /// The `consul` block's name (`default` for the unnamed one); node attributes of other
    /// clusters are `consul.<name>.*`.
    pub cluster: String,
    pub timing: ConsulTiming,
    /// Registrations Caravan wants, by service ID.
    desired: Mutex<HashMap<String, AgentServiceRegistration>>,
    /// Wakes the sync loop (a registration failed, or one was removed).
    nudge: tokio::sync::Notify,
    /// Whether the sync loop runs (the agent and its client share one `Consul`).
    syncing: std::sync::atomic::AtomicBool,
    /// Each registered check's `on_update`, by check ID.
    policies: Mutex<HashMap<String, String>>,
}

impl Consul {
    pub fn new(client: ConsulClient, cluster: &str, timing: ConsulTiming) -> Arc<Consul> {
        Arc::new(Consul {
            client,
            cluster: cluster.to_string(),
            timing,
            desired: Mutex::new(HashMap::new()),
            nudge: tokio::sync::Notify::new(),
            syncing: std::sync::atomic::AtomicBool::new(false),
            policies: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, AgentServiceRegistration>> {
        match self.desired.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn lock_policies(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        match self.policies.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn timeout(&self, method: &str, path: &str) -> ConsulError {
        ConsulError::Timeout {
            address: self.client.address(),
            method: method.into(),
            path: path.into(),
            timeout: CALL_TIMEOUT,
        }
    }

    /// Records how the checks about to be registered count towards their allocation's health
    /// (check ID, `on_update`).
    pub fn set_check_policies(&self, policies: Vec<(String, String)>) {
        self.lock_policies().extend(policies);
    }

    /// Whether the Consul checks of an allocation's services are healthy, as Nomad's
    /// `health_check = "checks"` judges them: every check Caravan registered for it is
    /// passing (a warning passes for `on_update = "ignore_warnings"`; `"ignore"` checks do not
    /// count). None when the allocation has no check that counts, or Consul does not answer
    /// (then nothing is decided from checks this time).
    pub async fn checks_healthy(&self, alloc_id: &str) -> Option<bool> {
        let prefix = format!("{TASK_SERVICE_PREFIX}{alloc_id}-");
        let wanted: Vec<(String, String)> = {
            // Same order as `deregister`: registrations, then policies.
            let desired = self.lock();
            let policies = self.lock_policies();
            desired
                .iter()
                .filter(|(id, _)| id.starts_with(&prefix))
                .flat_map(|(_, reg)| reg.checks.iter())
                .filter_map(|c| c.check_id.clone())
                .map(|id| {
                    let p = policies
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| ON_UPDATE_REQUIRE_HEALTHY.into());
                    (id, p)
                })
                .filter(|(_, p)| p != ON_UPDATE_IGNORE)
                .collect()
        };
        if wanted.is_empty() {
            return None;
        }
        let present = tokio::time::timeout(CALL_TIMEOUT, self.client.agent_checks())
            .await
            .ok()?
            .ok()?;
        Some(wanted.iter().all(|(id, policy)| {
            present.get(id).is_some_and(|c| {
                c.status == "passing"
                    || (c.status == "warning" && policy == ON_UPDATE_IGNORE_WARNINGS)
            })
        }))
    }

    /// Whether Caravan currently wants `service_id` registered.
    pub fn owns(&self, service_id: &str) -> bool {
        self.lock().contains_key(service_id)
    }

    /// Registers a service (with its checks) now; if Consul does not answer, the sync loop
    /// keeps retrying until it does.
    pub async fn register(&self, reg: AgentServiceRegistration) {
        let id = reg.id.clone().unwrap_or_else(|| reg.name.clone());
        // Owned before it exists in Consul, so a concurrent sync never removes it.
        self.lock().insert(id.clone(), reg.clone());
        // Bounded, so a hanging Consul never holds up a task's hooks; the sync loop retries.
        let attempt = tokio::time::timeout(
            CALL_TIMEOUT,
            self.client
                .agent_service_register(&reg, true, &WriteOptions::default()),
        )
        .await
        .unwrap_or_else(|_| Err(self.timeout("PUT", "/v1/agent/service/register")));
        match attempt {
            Ok(()) => tracing::debug!(service = %id, "registered service in Consul"),
            Err(e) => {
                // An unreachable Consul is reported once by the sync loop.
                if e.is_retryable() {
                    tracing::debug!(service = %id, "could not register service in Consul, will retry: {e}");
                } else {
                    tracing::warn!(
                        service = %id,
                        consul = %self.client.address(),
                        "could not register service in Consul, will retry: {e}"
                    );
                }
                self.nudge.notify_one();
            }
        }
    }

    /// Deregisters a service; a failure is retried by the sync loop (task services) or left
    /// to Consul's owner.
    pub async fn deregister(&self, service_id: &str) {
        if let Some(reg) = self.lock().remove(service_id) {
            let mut policies = self.lock_policies();
            for id in reg.checks.iter().filter_map(|c| c.check_id.as_ref()) {
                policies.remove(id);
            }
        }
        let attempt = tokio::time::timeout(
            CALL_TIMEOUT,
            self.client
                .agent_service_deregister(service_id, &WriteOptions::default()),
        )
        .await
        .unwrap_or_else(|_| Err(self.timeout("PUT", "/v1/agent/service/deregister")));
        match attempt {
            Ok(()) => tracing::debug!(service = %service_id, "deregistered service from Consul"),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => {
                tracing::warn!(
                    service = %service_id,
                    "could not deregister service from Consul, will retry: {e}"
                );
                self.nudge.notify_one();
            }
        }
    }

    /// One pass: registers every wanted service Consul lacks (or holds differently) and removes
    /// `_nomad-task-` services Caravan does not own. Returns how many it changed.
    pub async fn sync_once(&self) -> Result<usize, ConsulError> {
        let present = self.client.agent_services().await?;
        let wanted: Vec<AgentServiceRegistration> = self.lock().values().cloned().collect();
        let mut changed = 0;
        for reg in wanted {
            let id = reg.id.clone().unwrap_or_else(|| reg.name.clone());
            let same = present.get(&id).is_some_and(|s| {
                s.service == reg.name
                    && s.port == reg.port.unwrap_or(0)
                    && s.address == reg.address.clone().unwrap_or_default()
                    && s.tags == reg.tags
            });
            if !same {
                self.client
                    .agent_service_register(&reg, true, &WriteOptions::default())
                    .await?;
                changed += 1;
            }
        }
        for id in present.keys() {
            // Checked after listing: a service registered meanwhile is already owned.
            if id.starts_with(TASK_SERVICE_PREFIX) && !self.owns(id) {
                tracing::info!(service = %id, "removing a Consul registration no allocation owns");
                match self
                    .client
                    .agent_service_deregister(id, &WriteOptions::default())
                    .await
                {
                    Ok(()) => changed += 1,
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(changed)
    }

    /// Keeps Consul in line with what Caravan wants: a sync now, then every `sync_interval`
    /// (sooner when nudged), backing off while Consul is unreachable. Only the first call
    /// starts the loop. The first pass removes stale `_nomad-task-` registrations left by an
    /// earlier run of the client.
    pub fn spawn_sync(self: &Arc<Self>) {
        if self.syncing.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut backoff = me.timing.min_backoff;
            let mut was_down = false;
            loop {
                let wait = match me.sync_once().await {
                    Ok(n) => {
                        if was_down {
                            tracing::info!(consul = %me.client.address(), "Consul is reachable again; registrations synced");
                        } else if n > 0 {
                            tracing::debug!(changed = n, "synced Consul registrations");
                        }
                        was_down = false;
                        backoff = me.timing.min_backoff;
                        me.timing.sync_interval
                    }
                    Err(e) => {
                        if !was_down {
                            tracing::warn!(
                                consul = %me.client.address(),
                                "cannot sync service registrations with Consul: {e}; retrying with back-off (check the consul {{ address }} setting and that the Consul agent is running)"
                            );
                        }
                        was_down = true;
                        let w = backoff;
                        backoff = (backoff * 2).min(me.timing.max_backoff);
                        w
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = me.nudge.notified() => {
                        // Let a burst of changes settle before the next pass.
                        tokio::time::sleep(me.timing.min_backoff.min(wait)).await;
                    }
                }
            }
        });
    }

    /// The node attributes Nomad's Consul fingerprint sets, from `/v1/agent/self`.
    pub async fn fingerprint(&self) -> Result<BTreeMap<String, String>, ConsulError> {
        let me = self.client.agent_self().await?;
        let prefix = if self.cluster == "default" {
            "consul".to_string()
        } else {
            format!("consul.{}", self.cluster)
        };
        let unique = if self.cluster == "default" {
            "unique.consul.name".to_string()
        } else {
            format!("unique.consul.{}.name", self.cluster)
        };
        let version = me
            .config
            .version
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_start_matches('v')
            .to_string();
        let mut attrs = BTreeMap::new();
        attrs.insert(format!("{prefix}.version"), version);
        attrs.insert(format!("{prefix}.revision"), me.config.revision.clone());
        attrs.insert(format!("{prefix}.datacenter"), me.config.datacenter.clone());
        attrs.insert(format!("{prefix}.server"), me.config.server.to_string());
        if let Some(sku) = sku(&me.config.version) {
            attrs.insert(format!("{prefix}.sku"), sku.into());
        }
        let dc = &me.debug_config;
        let connect = dc["ConnectEnabled"].as_bool().unwrap_or(false);
        let grpc = dc["GRPCPort"]
            .as_i64()
            .filter(|p| *p > 0)
            .or_else(|| dc["GRPCTLSPort"].as_i64().filter(|p| *p > 0))
            .unwrap_or(-1);
        attrs.insert(format!("{prefix}.connect"), connect.to_string());
        attrs.insert(format!("{prefix}.grpc"), grpc.to_string());
        if let Some(s) = me.meta.get("consul-network-segment") {
            attrs.insert(format!("{prefix}.segment"), s.clone());
        }
        attrs.insert(unique, me.config.node_name.clone());
        Ok(attrs)
    }

    /// The attribute keys this cluster's fingerprint may set (cleared when Consul is away).
    fn owns_attribute(&self, key: &str) -> bool {
        if self.cluster == "default" {
            (key.starts_with("consul.")
                && !key[7..].contains('.')
                && CONSUL_ATTRS.contains(&&key[7..]))
                || key == "unique.consul.name"
        } else {
            key.starts_with(&format!("consul.{}.", self.cluster))
                || key == format!("unique.consul.{}.name", self.cluster)
        }
    }
}

const CONSUL_ATTRS: &[&str] = &[
    "version",
    "revision",
    "datacenter",
    "server",
    "sku",
    "connect",
    "grpc",
    "segment",
];

/// `ent` for Consul Enterprise versions (`1.16.0+ent`), `oss` otherwise.
fn sku(version: &str) -> Option<&'static str> {
    if version.is_empty() {
        None
    } else if version.contains("+ent") {
        Some("ent")
    } else {
        Some("oss")
    }
}

/// Fingerprints Consul once (bounded by `timeout`) and puts the answer in the node's
/// attributes; does not re-register the node. Returns whether Consul answered.
pub(super) async fn initial_fingerprint(client: &Client, timeout: Duration) -> bool {
    let Some(consul) = client.shared.config.consul.clone() else {
        return false;
    };
    match tokio::time::timeout(timeout, consul.fingerprint()).await {
        Ok(Ok(attrs)) => {
            apply_attributes(client, &consul, Some(attrs));
            tracing::info!(consul = %consul.client.address(), "Consul fingerprinted");
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(
                consul = %consul.client.address(),
                "Consul is not reachable: {e}; the agent runs without consul.* attributes (jobs with Consul services cannot be placed here yet) and keeps retrying"
            );
            false
        }
        Err(_) => {
            tracing::warn!(
                consul = %consul.client.address(),
                "Consul did not answer within {timeout:?}; the agent keeps retrying in the background"
            );
            false
        }
    }
}

/// Sets (or, with `None`, clears) the cluster's attributes on the node; true when they changed.
fn apply_attributes(
    client: &Client,
    consul: &Consul,
    attrs: Option<BTreeMap<String, String>>,
) -> bool {
    client.shared.update_node(|node| {
        let before = node.attributes.clone();
        node.attributes.retain(|k, _| !consul.owns_attribute(k));
        if let Some(a) = attrs {
            node.attributes.extend(a);
        }
        node.attributes != before
    })
}

/// Refreshes the node's Consul attributes every `fingerprint_interval`, re-registering the
/// node with the servers when they change; while Consul is away the attributes are cleared and
/// the fingerprint retried with back-off.
pub(super) fn spawn_fingerprint(client: Arc<Client>, mut healthy: bool) {
    let Some(consul) = client.shared.config.consul.clone() else {
        return;
    };
    tokio::spawn(async move {
        let mut backoff = consul.timing.min_backoff;
        loop {
            let wait = if healthy {
                consul.timing.fingerprint_interval
            } else {
                let w = backoff;
                backoff = (backoff * 2).min(consul.timing.max_backoff);
                w
            };
            tokio::time::sleep(wait).await;
            let (attrs, ok) = match consul.fingerprint().await {
                Ok(a) => (Some(a), true),
                Err(e) => {
                    if healthy {
                        tracing::warn!(
                            consul = %consul.client.address(),
                            "Consul stopped answering: {e}; clearing consul.* attributes and retrying with back-off"
                        );
                    }
                    (None, false)
                }
            };
            if ok && !healthy {
                tracing::info!(consul = %consul.client.address(), "Consul is reachable; consul.* attributes set");
                backoff = consul.timing.min_backoff;
            }
            healthy = ok;
            if apply_attributes(&client, &consul, attrs) {
                client.register().await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_consul::{AgentServiceCheck, ConsulConfig};

    #[tokio::test]
    async fn a_deregistered_service_leaves_no_check_policy_behind() {
        // Nothing listens there: calls fail at once, what Caravan wants is kept locally.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let client = ConsulClient::new(ConsulConfig {
            address: format!("http://127.0.0.1:{port}"),
            ..Default::default()
        })
        .unwrap();
        let consul = Consul::new(client, "default", ConsulTiming::default());
        let reg = AgentServiceRegistration {
            id: Some(format!("{TASK_SERVICE_PREFIX}a1-web-svc-http")),
            name: "svc".into(),
            checks: vec![AgentServiceCheck {
                check_id: Some(format!("{CHECK_PREFIX}1")),
                ..Default::default()
            }],
            ..Default::default()
        };
        consul.set_check_policies(vec![(
            format!("{CHECK_PREFIX}1"),
            ON_UPDATE_IGNORE_WARNINGS.into(),
        )]);
        consul.register(reg.clone()).await;
        assert_eq!(consul.lock_policies().len(), 1);
        consul.deregister(reg.id.as_deref().unwrap()).await;
        assert!(consul.lock_policies().is_empty());
    }
}
