//! The server: state, the apply path every change takes, the eval broker, scheduler workers,
//! the plan applier, heartbeats and the deployment watcher. In the dev agent it runs in
//! process; the clustering issue puts Raft behind [`Server::raft_apply`].

pub mod acl;
pub mod blocked;
pub mod broker;
pub mod command;
pub mod deployment_ops;
pub mod deployment_watcher;
pub mod drainer;
pub mod endpoints;
pub mod events;
pub mod fsm;
pub mod gc;
pub mod heartbeat;
pub mod identity;
pub mod jobops;
pub mod keyring;
mod operator;
pub mod partitions;
pub mod plan_apply;
pub mod raft;
pub mod restarts;
pub mod services;
pub mod variables;
pub mod worker;

use crate::state::StateStore;
use caravan_structs::{Plan, PlanResult, SchedulerConfiguration};
use command::{Command, LogEntry};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub use endpoints::ServerError;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub region: String,
    /// `acl {}`: whether requests need tokens, token expiry bounds, the bootstrap reset file.
    pub acl: acl::AclConfig,
    /// `server { oidc_issuer }`: the issuer of workload identities, for OIDC discovery.
    pub oidc_issuer: String,
    pub datacenter: String,
    pub node_name: String,
    /// Address advertised for RPC (what `/v1/status/leader` reports).
    pub rpc_addr: String,
    pub num_schedulers: usize,
    /// The scheduler settings a new cluster starts with (`server { default_scheduler_config }`).
    pub default_scheduler_config: SchedulerConfiguration,
    pub min_heartbeat_ttl: Duration,
    pub heartbeat_grace: Duration,
    pub gc: gc::GcConfig,
    /// `job_tracked_versions`: versions kept per job (0: Nomad's 6).
    pub job_tracked_versions: usize,
    /// `enable_event_broker`: whether applied entries publish events (`/v1/event/stream`).
    pub enable_event_broker: bool,
    /// `event_buffer_size`: event batches kept for resuming subscribers (0: Nomad's 100).
    pub event_buffer_size: usize,
    /// `search {}`: fuzzy search settings.
    pub search: SearchConfig,
    /// The enabled `vault "<name>" {}` clusters: a job whose task uses another is refused.
    pub vault_clusters: Vec<String>,
    /// `vault "<name>" { default_identity {} }` by cluster: added at submit as the
    /// `vault_<name>` identity of tasks using that cluster without their own.
    pub vault_default_identity:
        std::collections::BTreeMap<String, caravan_structs::WorkloadIdentity>,
    /// Where the log and snapshots live (`<data_dir>/server`); `None` keeps the state in
    /// memory only (the dev agent without `-data-dir`). Used by [`Server::open`].
    pub data_dir: Option<std::path::PathBuf>,
    /// Entries between state snapshots (Nomad's `raft_snapshot_threshold`, 8192).
    pub snapshot_threshold: u64,
}

/// `server { search { ... } }`, with Nomad's defaults.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    pub fuzzy_enabled: bool,
    /// Objects scanned per context before a fuzzy search stops (and says it truncated).
    pub limit_query: usize,
    /// Matches returned per context.
    pub limit_results: usize,
    /// The shortest text a fuzzy search accepts.
    pub min_term_length: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            fuzzy_enabled: true,
            limit_query: 20,
            limit_results: 100,
            min_term_length: 2,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            region: "global".into(),
            acl: acl::AclConfig::default(),
            oidc_issuer: String::new(),
            datacenter: "dc1".into(),
            node_name: "caravan".into(),
            rpc_addr: "127.0.0.1:4647".into(),
            num_schedulers: 2,
            default_scheduler_config: SchedulerConfiguration::default(),
            min_heartbeat_ttl: Duration::from_secs(10),
            heartbeat_grace: Duration::from_secs(10),
            gc: gc::GcConfig::default(),
            job_tracked_versions: 0,
            enable_event_broker: true,
            event_buffer_size: events::DEFAULT_EVENT_BUFFER_SIZE,
            search: SearchConfig::default(),
            vault_clusters: Vec::new(),
            vault_default_identity: std::collections::BTreeMap::new(),
            data_dir: None,
            snapshot_threshold: raft::DEFAULT_SNAPSHOT_THRESHOLD,
        }
    }
}

pub struct Server {
    pub config: ServerConfig,
    /// Compiled ACLs of recently seen tokens.
    acl_cache: acl::AclCache,
    pub store: Arc<StateStore>,
    pub broker: Arc<broker::EvalBroker>,
    pub blocked: blocked::BlockedEvals,
    pub heartbeats: heartbeat::Heartbeats,
    /// The event stream's buffer and subscriptions, fed by the FSM.
    pub events: Arc<events::EventBroker>,
    /// Variables' single writer and lock timers.
    variables: variables::VarRuntime,
    /// Held across read-decide-apply of a deployment (the watcher, the operator endpoints), so
    /// that one does not write back a copy the other changed meanwhile (a pause lost to the
    /// watcher's health update).
    pub(crate) deployment_writes: std::sync::Mutex<()>,
    /// The log: the last applied index. Serialises every write.
    log: Mutex<u64>,
    plan_tx: mpsc::Sender<plan_apply::PlanRequest>,
    plan_rx: Mutex<Option<mpsc::Receiver<plan_apply::PlanRequest>>>,
    pub started_at: std::time::Instant,
    /// The durable log and snapshots, when the server has a data dir.
    pub persist: Option<Arc<raft::Persistence>>,
    /// What the start found on disk (None: in memory).
    pub recovery: Option<raft::Recovery>,
}

impl Server {
    /// A server whose state lives in memory only (`config.data_dir` is not read: use
    /// [`Server::open`] for a durable one).
    pub fn new(config: ServerConfig) -> Arc<Self> {
        let store = StateStore::with_tracked_versions(config.job_tracked_versions);
        Self::build(config, store, None, None)
    }

    /// A server on `config.data_dir` when it is set: the state on disk is loaded (newest
    /// snapshot, then the log after it) before anything else runs, and every later entry is
    /// durable before it is applied. Without a data dir, the same as [`Server::new`].
    pub fn open(config: ServerConfig) -> Result<Arc<Self>, raft::PersistError> {
        let store = StateStore::with_tracked_versions(config.job_tracked_versions);
        let Some(dir) = config.data_dir.clone() else {
            return Ok(Self::build(config, store, None, None));
        };
        let (persist, recovery) = raft::Persistence::open_and_recover(
            &dir,
            config.snapshot_threshold,
            &store,
            config.job_tracked_versions,
        )?;
        Ok(Self::build(
            config,
            store,
            Some(Arc::new(persist)),
            Some(recovery),
        ))
    }

    fn build(
        config: ServerConfig,
        store: Arc<StateStore>,
        persist: Option<Arc<raft::Persistence>>,
        recovery: Option<raft::Recovery>,
    ) -> Arc<Self> {
        let (plan_tx, plan_rx) = mpsc::channel(64);
        let events = events::EventBroker::new(config.event_buffer_size, config.enable_event_broker);
        let last = recovery.as_ref().map(|r| r.last_index).unwrap_or(0);
        Arc::new(Server {
            config,
            acl_cache: acl::AclCache::default(),
            store,
            broker: broker::EvalBroker::new(),
            blocked: blocked::BlockedEvals::default(),
            heartbeats: heartbeat::Heartbeats::default(),
            events,
            variables: variables::VarRuntime::default(),
            deployment_writes: std::sync::Mutex::new(()),
            log: Mutex::new(last),
            plan_tx,
            plan_rx: Mutex::new(Some(plan_rx)),
            started_at: std::time::Instant::now(),
            persist,
            recovery,
        })
    }

    /// Starts the background parts: workers, plan applier, heartbeat and deployment watchers.
    pub fn start(self: &Arc<Self>) {
        if self.recovery.is_some() {
            self.restore_runtime();
        }
        if let Err(e) = self.keyring_init() {
            tracing::error!("cannot create the first root key: {e}");
        }
        if self.store.snapshot().scheduler_config.is_none() {
            self.raft_apply(Command::SchedulerSetConfig {
                config: self.config.default_scheduler_config.clone(),
            });
        }
        self.broker
            .set_paused(self.scheduler_config().pause_eval_broker);
        let rx = match self.plan_rx.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(rx) = rx {
            tokio::spawn(plan_apply::run(self.clone(), rx));
        }
        for i in 0..self.config.num_schedulers.max(1) {
            tokio::spawn(worker::run(self.clone(), i));
        }
        tokio::spawn(heartbeat::run(self.clone()));
        tokio::spawn(deployment_watcher::run(self.clone()));
        tokio::spawn(drainer::run(self.clone()));
        tokio::spawn(gc::run(self.clone()));
        tokio::spawn(variables::run_lock_timers(self.clone()));
    }

    /// Appends a command to the log and applies it; returns its index. Entries go through
    /// their serialised form so the log format is exercised from day one.
    pub fn raft_apply(&self, cmd: Command) -> u64 {
        let mut last = match self.log.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *last += 1;
        let index = *last;
        let entry = LogEntry::new(cmd);
        let bytes = entry.encode();
        if let Some(p) = &self.persist {
            // A write that is not durable must not be applied or acknowledged, and the
            // server cannot go on without its log (Raft treats storage errors as fatal): the
            // caller's request fails and the state stays as the log has it.
            if let Err(e) = p.append(index, bytes.clone()) {
                *last -= 1;
                tracing::error!("cannot append entry {index} to the durable log: {e}");
                panic!("cannot append entry {index} to the durable log: {e}");
            }
        }
        let (time, cmd) = match LogEntry::decode(&bytes) {
            Ok(e) => (e.time, e.command),
            Err(e) => {
                tracing::error!("log entry did not round-trip: {e}");
                (entry.time, entry.command)
            }
        };
        fsm::apply_at(&self.store, &self.events, index, time, &cmd);
        drop(last);
        if let Some(p) = &self.persist {
            p.maybe_snapshot(&self.store, index);
        }
        self.after_apply(&cmd);
        index
    }

    /// The last applied log index.
    pub fn last_index(&self) -> u64 {
        match self.log.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    /// What a leader rebuilds from the state after a start or a restore (Nomad's
    /// `restoreEvals` and `initializeHeartbeatTimers`): pending evaluations back into the
    /// broker, blocked ones into the blocked set, and a heartbeat deadline for every live
    /// node so that a node which never comes back is marked down.
    fn restore_runtime(&self) {
        let snap = self.store.snapshot();
        for e in snap.evals.values() {
            match e.status.as_str() {
                caravan_structs::EVAL_STATUS_PENDING => self.broker.enqueue((**e).clone()),
                caravan_structs::EVAL_STATUS_BLOCKED => self.blocked.block((**e).clone()),
                _ => {}
            }
        }
        for n in snap.nodes.values() {
            if n.status != caravan_structs::NODE_STATUS_DOWN {
                self.heartbeats.beat(self, &n.id);
            }
        }
    }

    /// Side effects of committed entries that a leader performs: enqueue new evaluations,
    /// unblock blocked ones when capacity may have appeared.
    fn after_apply(&self, cmd: &Command) {
        let pending = |evals: &[caravan_structs::Evaluation]| {
            for e in evals {
                if e.status == caravan_structs::EVAL_STATUS_PENDING {
                    self.broker.enqueue(e.clone());
                }
            }
        };
        match cmd {
            Command::JobRegister { eval: Some(e), .. }
            | Command::JobDeregister { eval: Some(e), .. } => pending(std::slice::from_ref(e)),
            Command::AllocDesiredStop { eval, .. } => pending(std::slice::from_ref(eval)),
            Command::NodeRegister { .. } => self.unblock(),
            Command::NodeStatusUpdate { evals, .. }
            | Command::NodeEligibilityUpdate { evals, .. } => {
                pending(evals);
                self.unblock();
            }
            Command::AllocClientUpdate { allocs, evals } => {
                pending(evals);
                if allocs.iter().any(|a| a.client_terminal()) {
                    self.unblock();
                }
            }
            Command::DeploymentUpsert { evals, .. } | Command::AllocsMigrate { evals, .. } => {
                pending(evals)
            }
            Command::NodeDrainUpdate { .. } => self.unblock(),
            Command::ApplyPlanResults { allocs, .. }
                if allocs.iter().any(|a| a.server_terminal()) =>
            {
                self.unblock()
            }
            _ => {}
        }
    }

    fn unblock(&self) {
        for e in self.blocked.unblock_all() {
            self.broker.enqueue(e);
        }
    }

    /// Hands a plan to the serial plan applier and waits for its result.
    pub async fn submit_plan(&self, plan: Plan) -> Result<PlanResult, String> {
        let (tx, rx) = oneshot::channel();
        self.plan_tx
            .send((plan, tx))
            .await
            .map_err(|_| "plan applier stopped".to_string())?;
        rx.await
            .map_err(|_| "plan applier dropped the plan".to_string())
    }

    pub fn leader_addr(&self) -> String {
        self.config.rpc_addr.clone()
    }
}
