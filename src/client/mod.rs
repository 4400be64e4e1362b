//! The client: fingerprints the node, registers and heartbeats with the servers, watches for
//! the allocations placed on it, runs each with an alloc runner, and reports their state back
//! in batches.

pub mod alloc_runner;
pub mod allocdir;
pub mod consul;
pub mod driver_events;
pub mod fingerprint;
pub mod gc;
pub mod health;
pub mod hooks;
pub mod migrate;
pub mod nomad_checks;
pub mod restarts;
pub mod restore;
pub mod rpc;
pub mod snapshot;
pub mod task_runner;
pub mod taskenv;
pub mod template_settings;
pub mod vault;
pub mod vault_outage;

use alloc_runner::AllocRunner;
use caravan_driver::Driver;
use caravan_structs::*;
use rpc::ServerRpc;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub data_dir: PathBuf,
    pub node_name: String,
    pub datacenter: String,
    pub node_class: String,
    pub node_pool: String,
    pub meta: BTreeMap<String, String>,
    /// The address tasks and other nodes reach this node on.
    pub network_ip: String,
    pub http_addr: String,
    pub reserved: NodeReservedResources,
    pub min_dynamic_port: u16,
    pub max_dynamic_port: u16,
    /// When finished allocations' directories are collected.
    pub gc: gc::GcSettings,
    /// `client { host_volume "name" { path, read_only } }`.
    pub host_volumes: BTreeMap<String, HostVolumeConfig>,
    /// `client { artifact {} }`: download limits and sandboxing.
    pub artifact: caravan_getter::GetterConfig,
    /// `client { template {} }`: how templates render and read their data.
    pub template: template_settings::TemplateSettings,
    /// How often drivers are fingerprinted again (a container engine started after the agent).
    pub driver_fingerprint_period: Duration,
    /// The local Consul agent (`consul {}`): fingerprint, service registration.
    pub consul: Option<Arc<consul::Consul>>,
    /// The enabled `vault {}` clusters by name (empty: Vault is off on this client).
    pub vault: vault::VaultClusters,
    /// `client { nomad_service_discovery }` (Nomad's default true): whether the node offers
    /// `provider = "nomad"` services (its `nomad.service_discovery` attribute).
    pub nomad_service_discovery: bool,
}

/// One host volume the client offers to jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct HostVolumeConfig {
    pub path: PathBuf,
    pub read_only: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            data_dir: PathBuf::from("/tmp/caravan"),
            node_name: String::new(),
            datacenter: "dc1".into(),
            node_class: String::new(),
            node_pool: DEFAULT_NODE_POOL.into(),
            meta: BTreeMap::new(),
            network_ip: "127.0.0.1".into(),
            http_addr: "127.0.0.1:4646".into(),
            reserved: NodeReservedResources::default(),
            min_dynamic_port: 20000,
            max_dynamic_port: 32000,
            gc: gc::GcSettings::default(),
            host_volumes: BTreeMap::new(),
            artifact: caravan_getter::GetterConfig::default(),
            template: template_settings::TemplateSettings::default(),
            driver_fingerprint_period: Duration::from_secs(15),
            consul: None,
            vault: Default::default(),
            nomad_service_discovery: true,
        }
    }
}

/// What every alloc runner of this client shares.
pub struct ClientShared {
    pub config: ClientConfig,
    pub drivers: BTreeMap<String, Arc<dyn Driver>>,
    node: RwLock<Arc<Node>>,
    updates: mpsc::UnboundedSender<Allocation>,
    /// The allocations this client runs (a replacement finds its predecessor here).
    runners: Mutex<HashMap<String, Arc<AllocRunner>>>,
    /// The `artifact {}` settings in force (replaced on reload).
    pub artifact: hooks::SharedGetterConfig,
    /// The `template {}` settings in force (replaced on reload).
    pub template: template_settings::SharedTemplateSettings,
    /// The servers (a migrating allocation looks up its predecessor's node).
    pub rpc: Arc<dyn ServerRpc>,
}

impl ClientShared {
    /// Whether this client ran the allocation before (its task states are on disk).
    pub fn ran_here(&self, alloc: &Allocation) -> bool {
        restore::alloc_dir(&self.config.data_dir, &alloc.id).exists()
    }

    pub fn node(&self) -> Arc<Node> {
        match self.node.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Changes the node copy-on-write: `change` edits a copy and says whether it changed
    /// anything; only then is the class recomputed and the copy stored. Returns that answer.
    pub fn update_node(&self, change: impl FnOnce(&mut Node) -> bool) -> bool {
        let mut guard = match self.node.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut node = (**guard).clone();
        if !change(&mut node) {
            return false;
        }
        node.compute_class();
        *guard = Arc::new(node);
        true
    }

    pub fn runner(&self, alloc_id: &str) -> Option<Arc<AllocRunner>> {
        self.lock_runners().get(alloc_id).cloned()
    }

    fn lock_runners(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AllocRunner>>> {
        match self.runners.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Queues an allocation's state for the next batch sent to the servers.
    pub fn report(&self, alloc: Allocation) {
        let _ = self.updates.send(alloc);
    }
}

pub struct Client {
    pub shared: Arc<ClientShared>,
    rpc: Arc<dyn ServerRpc>,
    gc: gc::Collector,
}

impl Client {
    /// Fingerprints the node, then registers, heartbeats and runs allocations in the
    /// background.
    pub async fn start(
        config: ClientConfig,
        drivers: Vec<Arc<dyn Driver>>,
        rpc: Arc<dyn ServerRpc>,
    ) -> anyhow::Result<Arc<Client>> {
        std::fs::create_dir_all(config.data_dir.join("client"))?;
        std::fs::create_dir_all(config.data_dir.join("alloc"))?;
        // Tasks run under the shim so that their exit status outlives an agent restart.
        match caravan_driver::shim::install(&config.data_dir.join("bin")) {
            Ok(Some(path)) => tracing::debug!(?path, "task shim installed"),
            Ok(None) => tracing::warn!(
                "no task shim for this architecture: tasks that end while the agent is down \
                 will have an unknown exit code"
            ),
            Err(e) => tracing::warn!(
                "cannot install the task shim in {}: {e}; tasks that end while the agent is \
                 down will have an unknown exit code",
                config.data_dir.join("bin").display()
            ),
        }
        let node = build_node(&config, &drivers).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let config_gc = config.gc.clone();
        let artifact_cfg = Arc::new(RwLock::new(config.artifact.clone()));
        let template_cfg = Arc::new(RwLock::new(config.template.clone()));
        let shared = Arc::new(ClientShared {
            config,
            drivers: drivers
                .into_iter()
                .map(|d| (d.name().to_string(), d))
                .collect(),
            node: RwLock::new(Arc::new(node)),
            updates: tx,
            runners: Mutex::new(HashMap::new()),
            artifact: artifact_cfg,
            template: template_cfg,
            rpc: rpc.clone(),
        });
        let client = Arc::new(Client {
            shared,
            rpc,
            gc: gc::Collector::new(config_gc),
        });
        let consul_up = consul::initial_fingerprint(&client, Duration::from_secs(2)).await;
        if let Some(c) = &client.shared.config.consul {
            c.spawn_sync();
        }
        let ttl = client.register().await;
        consul::spawn_fingerprint(client.clone(), consul_up);
        vault::spawn_fingerprint(
            client.clone(),
            client.shared.config.driver_fingerprint_period,
        );
        tokio::spawn(client.clone().heartbeat_loop(ttl));
        tokio::spawn(client.clone().watch_allocs());
        tokio::spawn(client.clone().send_updates(rx));
        tokio::spawn(client.clone().gc_loop());
        tokio::spawn(client.clone().driver_fingerprint_loop());
        driver_events::spawn(&client.shared);
        Ok(client)
    }

    pub fn node_id(&self) -> String {
        self.shared.node().id.clone()
    }

    pub fn alloc_runner(&self, alloc_id: &str) -> Option<Arc<AllocRunner>> {
        self.lock_runners().get(alloc_id).cloned()
    }

    pub fn alloc_runners(&self) -> Vec<Arc<AllocRunner>> {
        self.lock_runners().values().cloned().collect()
    }

    fn lock_runners(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AllocRunner>>> {
        self.shared.lock_runners()
    }

    /// A config reload changed the client's `meta`: replaces the keys the old config set with
    /// the new ones and re-registers the node. Running allocations are untouched.
    pub async fn reload_meta(
        &self,
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
    ) {
        self.shared.update_node(|node| {
            for k in old.keys() {
                node.meta.remove(k);
            }
            node.meta
                .extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
            true
        });
        self.register().await;
    }

    /// A config reload changed the client's `options`: each driver takes what concerns it
    /// (`driver.raw_exec.enable`, `user.denylist`, ...); drivers that changed are fingerprinted
    /// again and the node re-registered. Returns the drivers that changed.
    pub async fn reload_options(&self, options: &BTreeMap<String, String>) -> Vec<String> {
        let changed: Vec<Arc<dyn Driver>> = self
            .shared
            .drivers
            .values()
            .filter(|d| d.reload_options(options))
            .cloned()
            .collect();
        if changed.is_empty() {
            return vec![];
        }
        self.refingerprint(&changed, true).await
    }

    /// Fingerprints `drivers` again and records what changed in the node (re-registering it
    /// when anything did, or always with `force`). Returns the drivers whose facts changed.
    async fn refingerprint(&self, drivers: &[Arc<dyn Driver>], force: bool) -> Vec<String> {
        let mut infos = Vec::new();
        for d in drivers {
            infos.push((d.name().to_string(), d.fingerprint().await));
        }
        let mut changed = Vec::new();
        self.shared.update_node(|node| {
            for (name, fp) in &infos {
                let same = node.drivers.get(name).is_some_and(|old| {
                    old.detected == fp.detected
                        && old.healthy == fp.healthy
                        && old.health_description == fp.health_description
                        && old.attributes == fp.attributes
                });
                if same && !force {
                    continue;
                }
                changed.push(name.clone());
                node.attributes
                    .retain(|k, _| !k.starts_with(&format!("driver.{name}")));
                node.attributes.extend(fp.attributes.clone());
                node.drivers.insert(name.clone(), driver_info(fp.clone()));
            }
            !changed.is_empty()
        });
        if !changed.is_empty() || force {
            self.register().await;
        }
        changed
    }

    /// Drivers come and go (a container engine started after the agent): every
    /// `driver_fingerprint_period` their facts are read again and the node updated on change.
    async fn driver_fingerprint_loop(self: Arc<Self>) {
        let drivers: Vec<Arc<dyn Driver>> = self.shared.drivers.values().cloned().collect();
        loop {
            tokio::time::sleep(self.shared.config.driver_fingerprint_period).await;
            let changed = self.refingerprint(&drivers, false).await;
            if !changed.is_empty() {
                tracing::info!(drivers = ?changed, "driver fingerprint changed");
            }
        }
    }

    /// A config reload changed `artifact {}`: downloads from now on use the new settings.
    pub fn reload_artifact(&self, config: caravan_getter::GetterConfig) {
        match self.shared.artifact.write() {
            Ok(mut g) => *g = config,
            Err(p) => *p.into_inner() = config,
        }
    }

    /// A config reload changed `template {}`: tasks started from now on use the new settings.
    pub fn reload_template(&self, settings: template_settings::TemplateSettings) {
        match self.shared.template.write() {
            Ok(mut g) => *g = settings,
            Err(p) => *p.into_inner() = settings,
        }
    }

    async fn register(&self) -> Duration {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.rpc.register((*self.shared.node()).clone()).await {
                Ok(ttl) => {
                    tracing::info!(node = %self.node_id(), "node registered");
                    return ttl;
                }
                Err(e) => {
                    tracing::warn!("node registration failed, retrying: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(15));
                }
            }
        }
    }

    async fn heartbeat_loop(self: Arc<Self>, mut ttl: Duration) {
        loop {
            // Beat at half the TTL so one lost beat is not fatal.
            tokio::time::sleep(ttl / 2).await;
            match self.rpc.heartbeat(&self.node_id(), NODE_STATUS_READY).await {
                Ok(next) => ttl = next,
                Err(e) => {
                    tracing::warn!("heartbeat failed: {e}; re-registering");
                    ttl = self.register().await;
                }
            }
        }
    }

    async fn watch_allocs(self: Arc<Self>) {
        let mut index = 0;
        loop {
            let (allocs, next) = match self
                .rpc
                .get_allocs(&self.node_id(), index, Duration::from_secs(300))
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("fetching allocations failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            index = next;
            let mut runners = self.lock_runners();
            let mut seen = std::collections::HashSet::new();
            for a in allocs {
                seen.insert(a.id.clone());
                match runners.get(&a.id) {
                    Some(r) => {
                        let cur = r.current();
                        if cur.alloc_modify_index != a.alloc_modify_index
                            || cur.desired_status != a.desired_status
                            || cur.job_version() != a.job_version()
                        {
                            r.update(a);
                        }
                    }
                    None => {
                        if self.gc.was_collected(&a.id) {
                            continue;
                        }
                        // Stopped while no agent ran: a runner re-attaches to what is left
                        // running here, only to stop it.
                        let left_running =
                            a.server_terminal() && !a.client_terminal() && self.shared.ran_here(&a);
                        if a.terminal() && !left_running {
                            continue;
                        }
                        tracing::info!(alloc = %a.id, "starting allocation");
                        runners.insert(a.id.clone(), AllocRunner::spawn(self.shared.clone(), a));
                    }
                }
            }
            // Allocations the servers garbage-collected are gone for good.
            let gone: Vec<String> = runners
                .keys()
                .filter(|k| !seen.contains(*k))
                .cloned()
                .collect();
            for id in gone {
                if let Some(r) = runners.remove(&id) {
                    self.gc.forget(r, "alloc was garbage collected");
                }
            }
            let excess = self.gc.over_max(&runners);
            self.gc
                .collect(&mut runners, &excess, "client exceeded gc_max_allocs");
            self.gc.retain_listed(&seen);
        }
    }

    /// Every `gc_interval`: while the data dir's disk is past its thresholds, collects the
    /// oldest finished allocation.
    async fn gc_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.gc.settings.interval.max(Duration::from_secs(1)));
        tick.tick().await;
        loop {
            tick.tick().await;
            while let Some(u) = self.gc.disk_pressure(&self.shared.config.data_dir) {
                let mut runners = self.lock_runners();
                let oldest = gc::oldest_finished(&runners, 1);
                if oldest.is_empty() {
                    break;
                }
                tracing::info!(
                    disk = u.used_percent,
                    inodes = u.inodes_used_percent,
                    "disk usage past its GC threshold, collecting allocations"
                );
                self.gc
                    .collect(&mut runners, &oldest, "disk usage past gc threshold");
            }
        }
    }

    /// `/v1/client/allocation/:id/gc`: removes a finished allocation's directory now.
    pub fn gc_alloc(&self, alloc_id: &str) -> Result<(), String> {
        let mut runners = self.lock_runners();
        let Some(r) = runners.get(alloc_id) else {
            return Err(format!("unknown allocation {alloc_id:?}"));
        };
        if !r.finished() {
            return Err(format!(
                "allocation {alloc_id:?} is still running; stop it before collecting it"
            ));
        }
        self.gc.collect(
            &mut runners,
            &[alloc_id.to_string()],
            "garbage collection requested",
        );
        Ok(())
    }

    /// `/v1/client/gc`: removes every finished allocation's directory.
    pub fn gc_all(&self) -> usize {
        let mut runners = self.lock_runners();
        let done = gc::oldest_finished(&runners, usize::MAX);
        self.gc
            .collect(&mut runners, &done, "garbage collection requested")
    }

    async fn send_updates(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Allocation>) {
        // Nomad batches allocation updates every 200ms. Caravan batches too, but an
        // allocation whose client status changed (pending → running, → failed, ...) is
        // reported within milliseconds: at most one batch per 10 ms then, per 200 ms for
        // anything else (task events), so a busy client still coalesces its writes.
        let mut pending: BTreeMap<String, Allocation> = BTreeMap::new();
        let mut sent_status: std::collections::HashMap<String, String> = Default::default();
        let mut last_sent: Option<tokio::time::Instant> = None;
        let urgent = |pending: &BTreeMap<String, Allocation>,
                      sent: &std::collections::HashMap<String, String>| {
            pending
                .values()
                .any(|a| sent.get(&a.id) != Some(&a.client_status))
        };
        loop {
            let first = match rx.recv().await {
                Some(a) => a,
                None => return,
            };
            pending.insert(first.id.clone(), first);
            let since = |t: Option<tokio::time::Instant>| t.map(|t| t.elapsed());
            let mut deadline = tokio::time::Instant::now()
                + batch_delay(urgent(&pending, &sent_status), since(last_sent));
            while let Ok(Some(a)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                pending.insert(a.id.clone(), a);
                let d = batch_delay(urgent(&pending, &sent_status), since(last_sent));
                deadline = deadline.min(tokio::time::Instant::now() + d);
            }
            let batch: Vec<Allocation> = pending.values().cloned().collect();
            last_sent = Some(tokio::time::Instant::now());
            match self.rpc.update_allocs(batch).await {
                Ok(()) => {
                    for (id, a) in std::mem::take(&mut pending) {
                        if a.client_terminal() {
                            sent_status.remove(&id);
                        } else {
                            sent_status.insert(id, a.client_status);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("reporting allocation state failed, will retry: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// At most one batch of allocation updates per this interval (Nomad's `allocSyncIntv`)...
const ALLOC_SYNC_INTERVAL: Duration = Duration::from_millis(200);
/// ... or per this one when an allocation's client status changed.
const ALLOC_SYNC_URGENT: Duration = Duration::from_millis(10);
/// How long a batch waits for the rest of its burst.
const ALLOC_SYNC_SETTLE: Duration = Duration::from_millis(2);

/// How long to wait before sending a batch, `since_last` after the previous one; `urgent`
/// when a client status changed.
fn batch_delay(urgent: bool, since_last: Option<Duration>) -> Duration {
    let floor = if urgent {
        ALLOC_SYNC_URGENT
    } else {
        ALLOC_SYNC_INTERVAL
    };
    match since_last {
        Some(d) if d < floor => (floor - d).max(ALLOC_SYNC_SETTLE),
        _ => ALLOC_SYNC_SETTLE,
    }
}

/// The node's `HostVolumes` (Nomad's `ClientHostVolumeConfig`); every path must be an
/// existing directory.
fn host_volumes(
    vols: &BTreeMap<String, HostVolumeConfig>,
) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let mut out = BTreeMap::new();
    for (name, v) in vols {
        if !v.path.is_absolute() {
            anyhow::bail!(
                "host_volume {name:?}: path {} must be absolute",
                v.path.display()
            );
        }
        if !v.path.is_dir() {
            anyhow::bail!(
                "host_volume {name:?}: path {} does not exist or is not a directory",
                v.path.display()
            );
        }
        out.insert(
            name.clone(),
            serde_json::json!({"Name": name, "Path": v.path, "ReadOnly": v.read_only}),
        );
    }
    Ok(out)
}

/// A driver's fingerprint as the node reports it, stamped now.
fn driver_info(fp: caravan_driver::Fingerprint) -> DriverInfo {
    DriverInfo {
        attributes: fp.attributes,
        detected: fp.detected,
        healthy: fp.healthy,
        health_description: fp.health_description,
        update_time: crate::util::rfc3339(time::now_nanos()),
    }
}

async fn build_node(config: &ClientConfig, drivers: &[Arc<dyn Driver>]) -> anyhow::Result<Node> {
    let mut facts = fingerprint::fingerprint(&config.data_dir, &config.network_ip);
    facts.attributes.insert(
        "nomad.service_discovery".into(),
        config.nomad_service_discovery.to_string(),
    );
    facts
        .attributes
        .extend(vault::fingerprint(&config.vault).await);
    let id_path = config.data_dir.join("client").join("client-id");
    let id = match std::fs::read_to_string(&id_path) {
        Ok(s) if s.trim().len() == 36 => s.trim().to_string(),
        _ => {
            let id = new_id();
            std::fs::write(&id_path, &id)?;
            id
        }
    };
    let secret_path = config.data_dir.join("client").join("secret-id");
    let secret = match std::fs::read_to_string(&secret_path) {
        Ok(s) if s.trim().len() == 36 => s.trim().to_string(),
        _ => {
            let s = new_id();
            std::fs::write(&secret_path, &s)?;
            s
        }
    };
    let mut node = Node {
        id,
        secret_id: secret,
        datacenter: config.datacenter.clone(),
        name: if config.node_name.is_empty() {
            facts
                .attributes
                .get("unique.hostname")
                .cloned()
                .unwrap_or_else(|| "caravan".into())
        } else {
            config.node_name.clone()
        },
        http_addr: config.http_addr.clone(),
        attributes: facts.attributes,
        node_class: config.node_class.clone(),
        node_pool: config.node_pool.clone(),
        meta: config.meta.clone(),
        reserved_resources: config.reserved.clone(),
        host_volumes: host_volumes(&config.host_volumes)?,
        ..Default::default()
    };
    node.node_resources.cpu = NodeCpuResources {
        cpu_shares: facts.cpu_total_mhz,
        total_cpu_cores: facts.cpu_cores,
        reservable_cpu_cores: (0..facts.cpu_cores).collect(),
    };
    node.node_resources.memory.memory_mb = facts.memory_mb;
    node.node_resources.disk.disk_mb = facts.disk_mb;
    node.node_resources.min_dynamic_port = config.min_dynamic_port;
    node.node_resources.max_dynamic_port = config.max_dynamic_port;
    node.node_resources.networks = vec![NetworkResource {
        mode: "host".into(),
        device: "lo".into(),
        ip: config.network_ip.clone(),
        cidr: format!("{}/32", config.network_ip),
        mbits: 1000,
        ..Default::default()
    }];
    for d in drivers {
        let fp = d.fingerprint().await;
        node.attributes.extend(fp.attributes.clone());
        node.drivers.insert(d.name().to_string(), driver_info(fp));
    }
    node.compute_class();
    Ok(node)
}

#[cfg(test)]
mod sync_tests {
    use super::*;

    #[test]
    fn status_changes_go_out_at_once_other_updates_every_interval() {
        let ms = Duration::from_millis;
        for urgent in [true, false] {
            assert_eq!(batch_delay(urgent, None), ALLOC_SYNC_SETTLE);
            assert_eq!(batch_delay(urgent, Some(ms(500))), ALLOC_SYNC_SETTLE);
        }
        // Task events only: one batch per 200 ms.
        assert_eq!(batch_delay(false, Some(ms(50))), ms(150));
        assert_eq!(batch_delay(false, Some(ms(199))), ALLOC_SYNC_SETTLE);
        // A status change: one batch per 10 ms.
        assert_eq!(batch_delay(true, Some(ms(50))), ALLOC_SYNC_SETTLE);
        assert_eq!(batch_delay(true, Some(ms(4))), ms(6));
    }
}
