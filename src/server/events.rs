//! The event stream's source, as Nomad's `nomad/stream` and `state/events.go`: every applied
//! log entry becomes one batch of events (topic, type, key, payload) derived from what the entry
//! changed in the state store; the [`EventBroker`] keeps the last `event_buffer_size` batches in
//! memory and wakes its [`Subscription`]s when a batch is published.
//!
//! An event's type comes from the entry (a job registration's evaluation is an `Evaluation`
//! event of type `JobRegistered`, as in Nomad); its topic and payload from the changed object.

use super::command::Command;
use crate::state::Tables;
use caravan_structs::{Allocation, Deployment, Evaluation, Job, Node};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::watch;

/// Nomad's default `event_buffer_size`: batches (log indexes) kept for resuming subscribers.
pub const DEFAULT_EVENT_BUFFER_SIZE: usize = 100;

pub const TOPIC_ALL: &str = "*";
pub const TOPIC_JOB: &str = "Job";
pub const TOPIC_EVALUATION: &str = "Evaluation";
pub const TOPIC_ALLOCATION: &str = "Allocation";
pub const TOPIC_DEPLOYMENT: &str = "Deployment";
pub const TOPIC_NODE: &str = "Node";
pub const TOPIC_SERVICE: &str = "Service";

/// Every topic a Nomad server publishes. A subscription may name any of them, including those
/// Caravan does not produce yet (their subscribers simply see nothing).
pub const TOPICS: &[&str] = &[
    "ACLAuthMethod",
    "ACLBindingRule",
    "ACLPolicy",
    "ACLRole",
    "ACLToken",
    TOPIC_ALLOCATION,
    "CSIPlugin",
    "CSIVolume",
    TOPIC_DEPLOYMENT,
    TOPIC_EVALUATION,
    "HostVolume",
    TOPIC_JOB,
    TOPIC_NODE,
    "NodePool",
    "Operator",
    TOPIC_SERVICE,
    "Variable",
];

/// Nomad's event type names.
pub mod types {
    pub const JOB_REGISTERED: &str = "JobRegistered";
    pub const JOB_DEREGISTERED: &str = "JobDeregistered";
    pub const JOB_BATCH_DEREGISTERED: &str = "JobBatchDeregistered";
    pub const EVALUATION_UPDATED: &str = "EvaluationUpdated";
    pub const ALLOCATION_UPDATED: &str = "AllocationUpdated";
    pub const ALLOCATION_UPDATE_DESIRED_STATUS: &str = "AllocationUpdateDesiredStatus";
    pub const PLAN_RESULT: &str = "PlanResult";
    pub const DEPLOYMENT_STATUS_UPDATE: &str = "DeploymentStatusUpdate";
    pub const DEPLOYMENT_PROMOTION: &str = "DeploymentPromotion";
    pub const DEPLOYMENT_ALLOC_HEALTH: &str = "DeploymentAllocHealth";
    pub const NODE_REGISTRATION: &str = "NodeRegistration";
    pub const NODE_DEREGISTRATION: &str = "NodeDeregistration";
    pub const NODE_EVENT: &str = "NodeStreamEvent";
    pub const NODE_ELIGIBILITY: &str = "NodeEligibility";
    pub const NODE_DRAIN: &str = "NodeDrain";
    pub const SERVICE_REGISTRATION: &str = "ServiceRegistration";
    pub const SERVICE_DEREGISTRATION: &str = "ServiceDeregistration";
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("Invalid topic query: {0}")]
    InvalidTopic(String),
    /// The subscriber read too slowly: batches it had not read left the buffer.
    #[error("the subscriber fell behind: events after index {after} left the event buffer (oldest now held is after {dropped_through}); resubscribe with index={dropped_through}")]
    Lagged { after: u64, dropped_through: u64 },
    #[error("the event broker has shut down")]
    Closed,
}

/// What an event carries, as the state store holds it (serialised only when sent).
#[derive(Debug, Clone)]
pub enum Payload {
    Job {
        job: Arc<Job>,
        deleted: bool,
    },
    Evaluation(Arc<Evaluation>),
    Allocation(Arc<Allocation>),
    Deployment(Arc<Deployment>),
    Node(Arc<Node>),
    /// A token, shown without its secret.
    AclToken(Arc<caravan_structs::AclToken>),
    AclPolicy(Arc<caravan_structs::AclPolicy>),
    AclRole(Arc<caravan_structs::AclRole>),
    /// A Nomad-native service registration (`{"Service": ...}`).
    Service(Arc<crate::state::services::ServiceRegistration>),
}

impl Payload {
    /// Nomad's payload objects: `{"Job": ...}` (with `"Deleted": true` for a purge),
    /// `{"Evaluation": ...}`, `{"Allocation": ...}` without its job, `{"Deployment": ...}`,
    /// `{"Node": ...}` without its secret.
    fn to_json(&self) -> Value {
        fn value<T: serde::Serialize>(v: &T) -> Value {
            serde_json::to_value(v).unwrap_or(Value::Null)
        }
        match self {
            Payload::Job { job, deleted } => {
                let mut v = json!({"Job": value(&**job)});
                if *deleted {
                    v["Deleted"] = Value::Bool(true);
                }
                v
            }
            Payload::Evaluation(e) => json!({"Evaluation": value(&**e)}),
            Payload::Allocation(a) => {
                let mut alloc = value(&**a);
                if let Some(o) = alloc.as_object_mut() {
                    o.insert("Job".into(), Value::Null);
                    // Workload identity tokens are for the task alone (Nomad's Sanitize).
                    o.insert("SignedIdentities".into(), Value::Null);
                    o.remove("SignedNamedIdentities");
                }
                json!({"Allocation": alloc})
            }
            Payload::Deployment(d) => json!({"Deployment": value(&**d)}),
            Payload::Node(n) => {
                let mut node = value(&**n);
                if let Some(o) = node.as_object_mut() {
                    o.remove("SecretID");
                }
                json!({"Node": node})
            }
            Payload::AclToken(t) => {
                let mut token = value(&**t);
                if let Some(o) = token.as_object_mut() {
                    o.remove("SecretID");
                }
                json!({"ACLToken": token})
            }
            Payload::AclPolicy(p) => json!({"ACLPolicy": value(&**p)}),
            Payload::AclRole(r) => json!({"ACLRole": value(&**r)}),
            Payload::Service(r) => json!({"Service": value(&**r)}),
        }
    }
}

/// One change to one object at one index.
#[derive(Debug)]
pub struct Event {
    pub topic: &'static str,
    pub event_type: &'static str,
    /// The object's ID (a job's ID, an allocation's ID, ...).
    pub key: String,
    /// Empty for objects outside namespaces (nodes).
    pub namespace: String,
    /// Related IDs a subscription may also match on (an allocation's job and deployment).
    pub filter_keys: Vec<String>,
    pub index: u64,
    pub payload: Payload,
    json: OnceLock<String>,
}

impl Event {
    pub fn new(
        topic: &'static str,
        event_type: &'static str,
        key: String,
        namespace: String,
        filter_keys: Vec<String>,
        index: u64,
        payload: Payload,
    ) -> Self {
        Event {
            topic,
            event_type,
            key,
            namespace,
            filter_keys: filter_keys.into_iter().filter(|k| !k.is_empty()).collect(),
            index,
            payload,
            json: OnceLock::new(),
        }
    }

    /// The event as Nomad's JSON, serialised once however many subscribers read it.
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            json!({
                "Topic": self.topic,
                "Type": self.event_type,
                "Key": self.key,
                "Namespace": self.namespace,
                "FilterKeys": if self.filter_keys.is_empty() {
                    Value::Null
                } else {
                    json!(self.filter_keys)
                },
                "Index": self.index,
                "Payload": self.payload.to_json(),
            })
            .to_string()
        })
    }
}

/// The events of one log entry.
#[derive(Debug, Default)]
pub struct Events {
    pub index: u64,
    pub events: Vec<Arc<Event>>,
}

/// What a subscriber receives: the events of one index that passed its filter.
#[derive(Debug, Clone)]
pub struct Frame {
    pub index: u64,
    pub events: Vec<Arc<Event>>,
}

impl Frame {
    /// `{"Index":N,"Events":[...]}`, one NDJSON line without its newline.
    pub fn to_json(&self) -> String {
        let mut s = format!("{{\"Index\":{},\"Events\":[", self.index);
        for (i, e) in self.events.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(e.json());
        }
        s.push_str("]}");
        s
    }
}

/// Which topics and keys a subscription wants: topic (or `*`) to keys (or `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFilter(BTreeMap<String, BTreeSet<String>>);

impl TopicFilter {
    /// The topics asked for (`*` for all of them).
    pub fn topic_names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// Every event.
    pub fn all() -> Self {
        TopicFilter(BTreeMap::from([(
            TOPIC_ALL.to_string(),
            BTreeSet::from([TOPIC_ALL.to_string()]),
        )]))
    }

    /// Parses `topic` query parameters, `Topic` or `Topic:key`, where either may be `*`; none
    /// means every event.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, EventError> {
        if raw.is_empty() {
            return Ok(TopicFilter::all());
        }
        let mut topics: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for t in raw {
            let t = t.as_ref();
            let (topic, key) = match t.split(':').collect::<Vec<_>>()[..] {
                [topic] => (topic, TOPIC_ALL),
                [topic, key] => (topic, key),
                _ => {
                    return Err(EventError::InvalidTopic(format!(
                        "Invalid key value pair for topic, topic: {t}"
                    )))
                }
            };
            if topic.is_empty() {
                return Err(EventError::InvalidTopic(format!(
                    "topic {t:?} names no topic; use Topic or Topic:key"
                )));
            }
            if topic != TOPIC_ALL && !TOPICS.contains(&topic) {
                return Err(EventError::InvalidTopic(format!(
                    "unknown topic {topic:?}; topics are * or one of {}",
                    TOPICS.join(", ")
                )));
            }
            if key.is_empty() {
                return Err(EventError::InvalidTopic(format!(
                    "topic {t:?} has an empty key; use {topic} or {topic}:* for every key"
                )));
            }
            topics
                .entry(topic.to_string())
                .or_default()
                .insert(key.to_string());
        }
        Ok(TopicFilter(topics))
    }

    fn matches(&self, e: &Event) -> bool {
        [e.topic, TOPIC_ALL].iter().any(|topic| {
            self.0.get(*topic).is_some_and(|keys| {
                keys.contains(TOPIC_ALL)
                    || keys.contains(&e.key)
                    || e.filter_keys.iter().any(|k| keys.contains(k))
            })
        })
    }
}

/// A subscription's request: what it wants, where it starts, and its namespace.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    pub topics: TopicFilter,
    /// Start with events at this index or later (Nomad's `index`); 0 for every held event.
    pub index: u64,
    /// Events of this namespace only (and those outside namespaces); `None` for all.
    pub namespace: Option<String>,
    /// With ACLs on: only events this ACL may read (`read-job` in the event's namespace, node
    /// read for node events); `None` sees everything.
    pub acl: Option<Arc<caravan_acl::Acl>>,
}

/// Whether `acl` may read events of `topic` in `namespace` (Nomad's per-topic checks).
pub fn acl_allows(acl: &caravan_acl::Acl, topic: &str, namespace: &str) -> bool {
    match topic {
        TOPIC_NODE => acl.allow_node_read(),
        TOPIC_JOB | TOPIC_EVALUATION | TOPIC_ALLOCATION | TOPIC_DEPLOYMENT | TOPIC_SERVICE => {
            acl.allow_namespace_operation(namespace, caravan_acl::capability::READ_JOB)
        }
        _ => acl.is_management(),
    }
}

impl SubscribeRequest {
    fn matches(&self, e: &Event) -> bool {
        if let Some(ns) = &self.namespace {
            if !e.namespace.is_empty() && e.namespace != *ns {
                return false;
            }
        }
        if let Some(acl) = &self.acl {
            if !acl_allows(acl, e.topic, &e.namespace) {
                return false;
            }
        }
        self.topics.matches(e)
    }
}

#[derive(Default)]
struct Buffer {
    batches: VecDeque<Arc<Events>>,
    /// The index of the newest batch that left the buffer.
    dropped_through: u64,
}

/// Holds recent event batches and wakes subscribers when one is published.
pub struct EventBroker {
    enabled: bool,
    capacity: usize,
    buffer: Mutex<Buffer>,
    published: watch::Sender<u64>,
}

impl EventBroker {
    /// A broker holding `capacity` batches (0: Nomad's 100); a disabled one records nothing.
    pub fn new(capacity: usize, enabled: bool) -> Arc<Self> {
        Arc::new(EventBroker {
            enabled,
            capacity: if capacity == 0 {
                DEFAULT_EVENT_BUFFER_SIZE
            } else {
                capacity
            },
            buffer: Mutex::new(Buffer::default()),
            published: watch::channel(0).0,
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        match self.buffer.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Adds one entry's events (in index order: the apply path calls this under the log lock).
    pub fn publish(&self, events: Events) {
        if !self.enabled || events.events.is_empty() {
            return;
        }
        let index = events.index;
        {
            let mut buf = self.buffer();
            buf.batches.push_back(Arc::new(events));
            while buf.batches.len() > self.capacity {
                if let Some(old) = buf.batches.pop_front() {
                    buf.dropped_through = old.index;
                }
            }
        }
        self.published.send_replace(index);
    }

    /// Starts a subscription. An `index` older than the buffer starts at the oldest batch
    /// held, as Nomad does.
    pub fn subscribe(self: &Arc<Self>, req: SubscribeRequest) -> Subscription {
        let rx = self.published.subscribe();
        let dropped_through = self.buffer().dropped_through;
        let after = req.index.saturating_sub(1).max(dropped_through);
        Subscription {
            broker: self.clone(),
            rx,
            after,
            req,
        }
    }

    /// How many subscriptions are open.
    pub fn subscribers(&self) -> usize {
        self.published.receiver_count()
    }

    /// The indexes of the batches held, oldest first.
    pub fn held_indexes(&self) -> Vec<u64> {
        self.buffer().batches.iter().map(|b| b.index).collect()
    }
}

/// One subscriber's position in the stream. Dropping it unsubscribes.
pub struct Subscription {
    broker: Arc<EventBroker>,
    rx: watch::Receiver<u64>,
    /// The index of the last batch this subscriber has passed.
    after: u64,
    req: SubscribeRequest,
}

impl Subscription {
    /// The next batch with events for this subscriber, waiting for one to be published.
    pub async fn next(&mut self) -> Result<Frame, EventError> {
        loop {
            // Mark the current publication seen before reading the buffer, so a publish in
            // between wakes the wait below.
            self.rx.borrow_and_update();
            if let Some(frame) = self.next_held()? {
                return Ok(frame);
            }
            if self.rx.changed().await.is_err() {
                return Err(EventError::Closed);
            }
        }
    }

    /// The next held batch with events for this subscriber, without waiting.
    fn next_held(&mut self) -> Result<Option<Frame>, EventError> {
        let buf = self.broker.buffer();
        if self.after < buf.dropped_through {
            return Err(EventError::Lagged {
                after: self.after,
                dropped_through: buf.dropped_through,
            });
        }
        let start = buf.batches.partition_point(|b| b.index <= self.after);
        for batch in buf.batches.range(start..) {
            self.after = batch.index;
            let events: Vec<_> = batch
                .events
                .iter()
                .filter(|e| self.req.matches(e))
                .cloned()
                .collect();
            if !events.is_empty() {
                return Ok(Some(Frame {
                    index: batch.index,
                    events,
                }));
            }
        }
        Ok(None)
    }
}

// ---- deriving events from an applied entry ----

/// The objects one log entry may have changed, by table.
#[derive(Default)]
struct Touched {
    nodes: BTreeSet<String>,
    jobs: BTreeSet<(String, String)>,
    deployments: BTreeSet<String>,
    evals: BTreeSet<String>,
    allocs: BTreeSet<String>,
}

impl Touched {
    fn evals(&mut self, evals: &[Evaluation]) {
        self.evals.extend(evals.iter().map(|e| e.id.clone()));
    }
}

fn touched(cmd: &Command, before: &Tables, after: &Tables) -> Touched {
    let mut t = Touched::default();
    match cmd {
        Command::NodeRegister { node } => {
            t.nodes.insert(node.id.clone());
        }
        Command::NodeStatusUpdate { node_id, evals, .. } => {
            t.nodes.insert(node_id.clone());
            // A down node's allocations are lost.
            t.allocs
                .extend(before.allocs_by_node(node_id).iter().map(|a| a.id.clone()));
            t.evals(evals);
        }
        Command::NodeEligibilityUpdate { node_id, evals, .. } => {
            t.nodes.insert(node_id.clone());
            t.evals(evals);
        }
        Command::NodeDrainUpdate { node_id, .. } => {
            t.nodes.insert(node_id.clone());
        }
        Command::JobRegister { job, eval } => {
            t.jobs.insert((job.namespace.clone(), job.id.clone()));
            t.evals(eval.as_slice());
        }
        Command::JobDeregister {
            namespace,
            job_id,
            eval,
            ..
        } => {
            t.jobs.insert((namespace.clone(), job_id.clone()));
            t.evals(eval.as_slice());
        }
        Command::EvalUpsert { evals } => t.evals(evals),
        Command::ApplyPlanResults {
            allocs,
            deployment,
            deployment_updates,
            ..
        } => {
            t.deployments
                .extend(deployment.iter().map(|d| d.id.clone()));
            t.deployments
                .extend(deployment_updates.iter().map(|u| u.deployment_id.clone()));
            for a in allocs {
                t.allocs.insert(a.id.clone());
                // A replacement links the allocation it replaces.
                if !a.previous_allocation.is_empty() {
                    t.allocs.insert(a.previous_allocation.clone());
                }
            }
        }
        Command::AllocClientUpdate { allocs, evals } => {
            t.allocs.extend(allocs.iter().map(|a| a.id.clone()));
            t.evals(evals);
        }
        Command::AllocDesiredStop { alloc_id, eval } => {
            t.allocs.insert(alloc_id.clone());
            t.evals(std::slice::from_ref(eval));
        }
        Command::AllocsMigrate { alloc_ids, evals } => {
            t.allocs.extend(alloc_ids.iter().cloned());
            t.evals(evals);
        }
        Command::DeploymentUpsert { deployment, evals } => {
            t.deployments.insert(deployment.id.clone());
            t.evals(evals);
        }
        Command::GcDelete { plan } => {
            t.nodes.extend(plan.nodes.iter().cloned());
            t.jobs.extend(plan.jobs.iter().cloned());
            t.deployments.extend(plan.deployments.iter().cloned());
            t.evals.extend(plan.evals.iter().cloned());
            t.allocs.extend(plan.allocs.iter().cloned());
        }
        // Nomad publishes no events for the other entries (scheduler configuration, job
        // stability, ...). A new entry that changes jobs, evaluations, allocations,
        // deployments or nodes needs an arm here and in `event_type`.
        _ => return t,
    }
    // A job's status follows its allocations and evaluations.
    for tables in [before, after] {
        for id in &t.allocs {
            if let Some(a) = tables.allocs.get(id) {
                t.jobs.insert((a.namespace.clone(), a.job_id.clone()));
            }
        }
        for id in &t.evals {
            if let Some(e) = tables.evals.get(id) {
                t.jobs.insert((e.namespace.clone(), e.job_id.clone()));
            }
        }
    }
    t
}

/// The event type an entry gives a change of `topic` (Nomad's `MsgTypeEvents`); `None` when
/// Nomad publishes nothing for it.
fn event_type(cmd: &Command, topic: &str, before: &Tables) -> Option<&'static str> {
    use types::*;
    Some(match cmd {
        Command::NodeRegister { .. } => NODE_REGISTRATION,
        Command::NodeStatusUpdate { .. } => NODE_EVENT,
        Command::NodeEligibilityUpdate { .. } => NODE_ELIGIBILITY,
        Command::NodeDrainUpdate { .. } => NODE_DRAIN,
        Command::JobRegister { .. } => JOB_REGISTERED,
        Command::JobDeregister { .. } => JOB_DEREGISTERED,
        Command::EvalUpsert { .. } => EVALUATION_UPDATED,
        Command::ApplyPlanResults { .. } => PLAN_RESULT,
        Command::AllocClientUpdate { .. } => ALLOCATION_UPDATED,
        Command::AllocDesiredStop { .. } | Command::AllocsMigrate { .. } => {
            ALLOCATION_UPDATE_DESIRED_STATUS
        }
        Command::DeploymentUpsert { deployment, .. } => {
            let was_promoted = |group: &str| {
                before
                    .deployments
                    .get(&deployment.id)
                    .and_then(|d| d.task_groups.get(group).map(|s| s.promoted))
                    .unwrap_or(false)
            };
            if deployment
                .task_groups
                .iter()
                .any(|(g, s)| s.promoted && !was_promoted(g))
            {
                DEPLOYMENT_PROMOTION
            } else {
                DEPLOYMENT_STATUS_UPDATE
            }
        }
        // Garbage collection deregisters jobs in a batch and nodes; the evaluations,
        // allocations and deployments it reaps publish nothing.
        Command::GcDelete { .. } => match topic {
            TOPIC_JOB => JOB_BATCH_DEREGISTERED,
            TOPIC_NODE => NODE_DEREGISTRATION,
            _ => return None,
        },
        _ => return None,
    })
}

/// How an object changed between two snapshots: `Some((object, deleted))`.
fn changed<'a, T>(
    before: Option<&'a Arc<T>>,
    after: Option<&'a Arc<T>>,
) -> Option<(&'a Arc<T>, bool)> {
    match (before, after) {
        (_, Some(a)) if before.is_none_or(|b| !Arc::ptr_eq(a, b)) => Some((a, false)),
        (Some(b), None) => Some((b, true)),
        _ => None,
    }
}

/// The events of entry `cmd`, applied at `index`, from what it changed between `before` and
/// `after`.
pub fn from_apply(before: &Tables, after: &Tables, index: u64, cmd: &Command) -> Events {
    let t = touched(cmd, before, after);
    let mut events = Vec::new();
    let mut push = |topic: &'static str,
                    key: &str,
                    namespace: &str,
                    filter_keys: Vec<String>,
                    payload: Payload| {
        if let Some(ty) = event_type(cmd, topic, before) {
            events.push(Arc::new(Event::new(
                topic,
                ty,
                key.to_string(),
                namespace.to_string(),
                filter_keys,
                index,
                payload,
            )));
        }
    };
    for id in &t.nodes {
        if let Some((n, _)) = changed(before.nodes.get(id), after.nodes.get(id)) {
            push(TOPIC_NODE, &n.id, "", vec![], Payload::Node(n.clone()));
        }
    }
    for key in &t.jobs {
        if let Some((j, deleted)) = changed(before.jobs.get(key), after.jobs.get(key)) {
            let payload = Payload::Job {
                job: j.clone(),
                deleted,
            };
            push(TOPIC_JOB, &j.id, &j.namespace, vec![], payload);
        }
    }
    for id in &t.deployments {
        if let Some((d, deleted)) = changed(before.deployments.get(id), after.deployments.get(id)) {
            if !deleted {
                let keys = vec![d.job_id.clone()];
                push(
                    TOPIC_DEPLOYMENT,
                    &d.id,
                    &d.namespace,
                    keys,
                    Payload::Deployment(d.clone()),
                );
            }
        }
    }
    for id in &t.evals {
        if let Some((e, deleted)) = changed(before.evals.get(id), after.evals.get(id)) {
            if !deleted {
                let keys = vec![e.job_id.clone(), e.deployment_id.clone()];
                push(
                    TOPIC_EVALUATION,
                    &e.id,
                    &e.namespace,
                    keys,
                    Payload::Evaluation(e.clone()),
                );
            }
        }
    }
    for id in &t.allocs {
        if let Some((a, deleted)) = changed(before.allocs.get(id), after.allocs.get(id)) {
            if !deleted {
                let keys = vec![a.job_id.clone(), a.deployment_id.clone()];
                push(
                    TOPIC_ALLOCATION,
                    &a.id,
                    &a.namespace,
                    keys,
                    Payload::Allocation(a.clone()),
                );
            }
        }
    }
    if let Command::Acl(_) = cmd {
        events.extend(acl_events(before, after, index));
    }
    events.extend(service_events(before, after, index));
    Events { index, events }
}

/// ACLToken, ACLPolicy and ACLRole events for what an ACL entry changed (Nomad's
/// `*Upserted`/`*Deleted`); only management tokens may read them.
/// Nomad's `Service` topic: a registration added or changed (`ServiceRegistration`) or
/// removed (`ServiceDeregistration`, whatever removed it), keyed by registration ID with the
/// job and service name as filter keys.
fn service_events(before: &Tables, after: &Tables, index: u64) -> Vec<Arc<Event>> {
    use crate::state::Table;
    let (old, new) = (&before.service_registrations, &after.service_registrations);
    if before.table_index(Table::Services) == after.table_index(Table::Services) {
        return Vec::new();
    }
    let changed = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(_, v)| (v, types::SERVICE_REGISTRATION));
    let removed = old
        .iter()
        .filter(|(k, _)| !new.contains_key(*k))
        .map(|(_, v)| (v, types::SERVICE_DEREGISTRATION));
    changed
        .chain(removed)
        .map(|(r, ty)| {
            Arc::new(Event::new(
                TOPIC_SERVICE,
                ty,
                r.id.clone(),
                r.namespace.clone(),
                vec![r.job_id.clone(), r.service_name.clone()],
                index,
                Payload::Service(r.clone()),
            ))
        })
        .collect()
}

fn acl_events(before: &Tables, after: &Tables, index: u64) -> Vec<Arc<Event>> {
    fn diff<'a, T: PartialEq>(
        old: &'a im::OrdMap<String, Arc<T>>,
        new: &'a im::OrdMap<String, Arc<T>>,
    ) -> Vec<(&'a String, &'a Arc<T>, bool)> {
        let mut out: Vec<_> = new
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, v)| (k, v, false))
            .collect();
        out.extend(
            old.iter()
                .filter(|(k, _)| !new.contains_key(*k))
                .map(|(k, v)| (k, v, true)),
        );
        out
    }
    let mut events = Vec::new();
    let mut push = |topic: &'static str, ty: &'static str, key: &str, payload: Payload| {
        events.push(Arc::new(Event::new(
            topic,
            ty,
            key.to_string(),
            String::new(),
            vec![],
            index,
            payload,
        )));
    };
    for (k, t, deleted) in diff(&before.acl.tokens, &after.acl.tokens) {
        let ty = if deleted {
            "ACLTokenDeleted"
        } else {
            "ACLTokenUpserted"
        };
        push("ACLToken", ty, k, Payload::AclToken(t.clone()));
    }
    for (k, p, deleted) in diff(&before.acl.policies, &after.acl.policies) {
        let ty = if deleted {
            "ACLPolicyDeleted"
        } else {
            "ACLPolicyUpserted"
        };
        push("ACLPolicy", ty, k, Payload::AclPolicy(p.clone()));
    }
    for (k, r, deleted) in diff(&before.acl.roles, &after.acl.roles) {
        let ty = if deleted {
            "ACLRoleDeleted"
        } else {
            "ACLRoleUpserted"
        };
        push("ACLRole", ty, k, Payload::AclRole(r.clone()));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_event(index: u64, ns: &str, id: &str) -> Events {
        let job = Arc::new(Job {
            id: id.into(),
            namespace: ns.into(),
            ..Default::default()
        });
        Events {
            index,
            events: vec![Arc::new(Event::new(
                TOPIC_JOB,
                types::JOB_REGISTERED,
                id.into(),
                ns.into(),
                vec![],
                index,
                Payload::Job {
                    job,
                    deleted: false,
                },
            ))],
        }
    }

    fn req(topics: &[&str], index: u64) -> SubscribeRequest {
        SubscribeRequest {
            topics: TopicFilter::parse(topics).expect("topics"),
            index,
            namespace: Some("default".into()),
            acl: None,
        }
    }

    #[test]
    fn topics_parse_as_nomad_and_bad_ones_say_why() {
        assert_eq!(TopicFilter::parse::<&str>(&[]).unwrap(), TopicFilter::all());
        let f = TopicFilter::parse(&["Job", "Allocation:a1", "Allocation:a2"]).unwrap();
        assert_eq!(
            f.0,
            BTreeMap::from([
                ("Job".to_string(), BTreeSet::from(["*".to_string()])),
                (
                    "Allocation".to_string(),
                    BTreeSet::from(["a1".to_string(), "a2".to_string()])
                ),
            ])
        );
        for (bad, says) in [
            ("Job:a:b", "Invalid key value pair"),
            ("Jobs", "unknown topic \"Jobs\""),
            (":x", "names no topic"),
            ("Job:", "empty key"),
        ] {
            let e = TopicFilter::parse(&[bad]).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn subscribers_resume_from_an_index_and_filter_by_topic_key_and_namespace() {
        let b = EventBroker::new(10, true);
        b.publish(job_event(3, "default", "a"));
        b.publish(job_event(5, "default", "b"));
        b.publish(job_event(6, "other", "a"));
        b.publish(job_event(8, "default", "a"));

        let mut all = b.subscribe(req(&[], 0));
        let got: Vec<u64> = [
            all.next().await.unwrap(),
            all.next().await.unwrap(),
            all.next().await.unwrap(),
        ]
        .iter()
        .map(|f| f.index)
        .collect();
        // Index 6 is in another namespace.
        assert_eq!(got, vec![3, 5, 8]);

        // `index` is inclusive, as Nomad's.
        let mut from5 = b.subscribe(req(&[], 5));
        assert_eq!(from5.next().await.unwrap().index, 5);
        assert_eq!(from5.next().await.unwrap().index, 8);

        let mut only_a = b.subscribe(req(&["Job:a"], 0));
        assert_eq!(only_a.next().await.unwrap().index, 3);
        assert_eq!(only_a.next().await.unwrap().index, 8);

        let mut any_ns = b.subscribe(SubscribeRequest {
            namespace: None,
            ..req(&["*:a"], 4)
        });
        let f = any_ns.next().await.unwrap();
        assert_eq!((f.index, f.events[0].namespace.as_str()), (6, "other"));

        // A publish wakes a waiting subscriber.
        let waiter = tokio::spawn(async move { only_a.next().await.map(|f| f.index) });
        b.publish(job_event(9, "default", "b"));
        b.publish(job_event(10, "default", "a"));
        assert_eq!(waiter.await.unwrap(), Ok(10));
    }

    #[tokio::test]
    async fn the_buffer_is_bounded_and_a_lagging_subscriber_is_told_so() {
        let b = EventBroker::new(2, true);
        let mut slow = b.subscribe(req(&[], 0));
        for i in 1..=4 {
            b.publish(job_event(i, "default", "a"));
        }
        assert_eq!(b.held_indexes(), vec![3, 4]);
        assert_eq!(
            slow.next().await.unwrap_err(),
            EventError::Lagged {
                after: 0,
                dropped_through: 2
            }
        );
        // An index older than the buffer starts at the oldest batch held.
        let mut late = b.subscribe(req(&[], 1));
        assert_eq!(late.next().await.unwrap().index, 3);
        assert_eq!(b.subscribers(), 2);
        drop(slow);
        drop(late);
        assert_eq!(b.subscribers(), 0);
    }

    /// Applies `cmd` at `index` and lists its events as (topic, type, key, deleted).
    fn applied(
        store: &crate::state::StateStore,
        index: u64,
        cmd: Command,
    ) -> Vec<(&'static str, &'static str, String, bool)> {
        let b = EventBroker::new(10, true);
        super::super::fsm::apply(store, &b, index, &cmd);
        let mut sub = b.subscribe(SubscribeRequest {
            topics: TopicFilter::all(),
            index,
            namespace: None,
            acl: None,
        });
        match sub.next_held().expect("held") {
            None => vec![],
            Some(f) => f
                .events
                .iter()
                .map(|e| {
                    let deleted = matches!(e.payload, Payload::Job { deleted: true, .. });
                    (e.topic, e.event_type, e.key.clone(), deleted)
                })
                .collect(),
        }
    }

    #[test]
    fn entries_become_nomads_events_from_what_they_changed() {
        use caravan_structs::{DeploymentState, TaskGroup};
        let store = crate::state::StateStore::new();
        let mut job = Job {
            id: "web".into(),
            namespace: "default".into(),
            ..Default::default()
        };
        job.task_groups.push(TaskGroup {
            name: "g".into(),
            ..Default::default()
        });
        let eval = Evaluation {
            id: "e1".into(),
            namespace: "default".into(),
            job_id: "web".into(),
            ..Default::default()
        };
        let register = Command::JobRegister {
            job: job.clone(),
            eval: Some(eval.clone()),
        };
        // The registration's evaluation is typed by the entry, as in Nomad.
        assert_eq!(
            applied(&store, 1, register),
            vec![
                ("Job", "JobRegistered", "web".into(), false),
                ("Evaluation", "JobRegistered", "e1".into(), false),
            ]
        );
        // An entry that changes nothing Nomad publishes gives no events.
        let stable = Command::JobStability {
            namespace: "default".into(),
            job_id: "web".into(),
            version: 0,
            stable: true,
        };
        assert_eq!(applied(&store, 2, stable), vec![]);
        // A client update for an unknown allocation changes nothing.
        let unknown = Command::AllocClientUpdate {
            allocs: vec![Allocation {
                id: "nope".into(),
                ..Default::default()
            }],
            evals: vec![],
        };
        assert_eq!(applied(&store, 3, unknown), vec![]);

        let mut d = Deployment {
            id: "d1".into(),
            namespace: "default".into(),
            job_id: "web".into(),
            ..Default::default()
        };
        d.task_groups.insert("g".into(), DeploymentState::default());
        let upsert = |d: &Deployment| Command::DeploymentUpsert {
            deployment: d.clone(),
            evals: vec![],
        };
        assert_eq!(
            applied(&store, 4, upsert(&d)),
            vec![("Deployment", "DeploymentStatusUpdate", "d1".into(), false)]
        );
        if let Some(g) = d.task_groups.get_mut("g") {
            g.promoted = true;
        }
        assert_eq!(
            applied(&store, 5, upsert(&d)),
            vec![("Deployment", "DeploymentPromotion", "d1".into(), false)]
        );

        // A purge carries the job as it was, marked deleted; garbage collection deregisters
        // jobs in a batch and reaps evaluations silently.
        let purge = Command::JobDeregister {
            namespace: "default".into(),
            job_id: "web".into(),
            purge: true,
            eval: None,
        };
        assert_eq!(
            applied(&store, 6, purge),
            vec![("Job", "JobDeregistered", "web".into(), true)]
        );
        let store = crate::state::StateStore::new();
        applied(
            &store,
            1,
            Command::JobRegister {
                job,
                eval: Some(eval),
            },
        );
        let gc = Command::GcDelete {
            plan: super::super::gc::GcPlan {
                jobs: vec![("default".into(), "web".into())],
                evals: vec!["e1".into()],
                ..Default::default()
            },
        };
        assert_eq!(
            applied(&store, 2, gc),
            vec![("Job", "JobBatchDeregistered", "web".into(), true)]
        );
    }

    #[test]
    fn a_disabled_broker_records_nothing() {
        let b = EventBroker::new(0, false);
        b.publish(job_event(1, "default", "a"));
        assert!(b.held_indexes().is_empty());
    }

    #[test]
    fn frames_are_nomads_json() {
        let mut alloc = Allocation {
            id: "a1".into(),
            namespace: "default".into(),
            job_id: "web".into(),
            ..Default::default()
        };
        alloc.job = Some(Arc::new(Job::default()));
        let e = Event::new(
            TOPIC_ALLOCATION,
            types::PLAN_RESULT,
            "a1".into(),
            "default".into(),
            vec!["web".into(), String::new()],
            7,
            Payload::Allocation(Arc::new(alloc)),
        );
        let frame = Frame {
            index: 7,
            events: vec![Arc::new(e)],
        };
        let v: Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(v["Index"], 7);
        let e = &v["Events"][0];
        assert_eq!(e["Topic"], "Allocation");
        assert_eq!(e["Type"], "PlanResult");
        assert_eq!(e["Key"], "a1");
        assert_eq!(e["FilterKeys"], json!(["web"]));
        assert_eq!(e["Payload"]["Allocation"]["JobID"], "web");
        assert_eq!(e["Payload"]["Allocation"]["Job"], Value::Null);
    }
}
