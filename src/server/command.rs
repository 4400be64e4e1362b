//! The typed commands that change server state. Every state change is one of these, applied
//! by the FSM in index order; this is the Raft log's entry format, so it is versioned: a newer
//! server must keep reading entries an older one wrote.

use caravan_structs::*;
use serde::{Deserialize, Serialize};

/// The log entry format version this build writes. 2: entries carry the time they were
/// appended (`time`), so replaying a log reproduces the timestamps the FSM set.
pub const COMMAND_FORMAT_VERSION: u16 = 2;

/// One log entry: a versioned envelope around a command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub version: u16,
    pub command: Command,
    /// Unix nanoseconds when the leader appended the entry; the FSM's clock for it. 0 in
    /// format 1 entries (the FSM then reads the clock, as format 1 servers did).
    #[serde(default)]
    pub time: i64,
}

impl LogEntry {
    pub fn new(command: Command) -> Self {
        LogEntry {
            version: COMMAND_FORMAT_VERSION,
            command,
            time: time::now_nanos(),
        }
    }

    /// Whether `bytes` is an entry of a newer format than this build reads (as opposed to
    /// damaged bytes): the one decode failure that must stop a server instead of being
    /// dropped as a torn tail.
    pub fn is_newer_format(bytes: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u16,
        }
        serde_json::from_slice::<VersionOnly>(bytes)
            .map(|v| v.version > COMMAND_FORMAT_VERSION)
            .unwrap_or(false)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes an entry written by this or an older server.
    pub fn decode(bytes: &[u8]) -> Result<LogEntry, String> {
        let entry: LogEntry =
            serde_json::from_slice(bytes).map_err(|e| format!("undecodable log entry: {e}"))?;
        if entry.version > COMMAND_FORMAT_VERSION {
            return Err(format!(
                "log entry format {} is newer than this server understands ({}); upgrade this server",
                entry.version, COMMAND_FORMAT_VERSION
            ));
        }
        Ok(entry)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "Type", content = "Body")]
#[allow(clippy::large_enum_variant)] // entries are built once and applied once
pub enum Command {
    /// ACL policies, tokens and roles (see [`super::acl`]).
    Acl(super::acl::AclCommand),
    /// Root keys (see [`super::keyring`]).
    Keyring(super::keyring::KeyringCommand),
    /// Variables: set, delete, lock acquire and release (see [`super::variables`]).
    Variables(crate::state::variables::VarCommand),
    /// Restart slots of coordinated template restarts (see [`crate::state::restarts`]).
    RestartSlot(crate::state::restarts::SlotCommand),
    /// Nomad-native service registrations (see [`crate::state::services`]).
    Services(crate::state::services::ServiceCommand),
    /// A client registered or re-registered its node.
    NodeRegister {
        node: Node,
    },
    NodeStatusUpdate {
        node_id: String,
        status: String,
        updated_at: i64,
        /// Evaluations for the jobs on the node (node-update).
        evals: Vec<Evaluation>,
    },
    NodeEligibilityUpdate {
        node_id: String,
        eligibility: String,
        evals: Vec<Evaluation>,
    },
    /// A job was registered; the evaluation is created atomically with it.
    JobRegister {
        job: Job,
        eval: Option<Evaluation>,
    },
    JobDeregister {
        namespace: String,
        job_id: String,
        purge: bool,
        eval: Option<Evaluation>,
    },
    EvalUpsert {
        evals: Vec<Evaluation>,
    },
    /// The plan applier's committed result.
    ApplyPlanResults {
        allocs: Vec<Allocation>,
        deployment: Option<Deployment>,
        deployment_updates: Vec<DeploymentStatusUpdate>,
        eval_id: String,
    },
    /// Clients report task states and client status.
    AllocClientUpdate {
        allocs: Vec<Allocation>,
        evals: Vec<Evaluation>,
    },
    /// The server stops an allocation (`alloc stop`), with its follow-up eval.
    AllocDesiredStop {
        alloc_id: String,
        eval: Evaluation,
    },
    DeploymentUpsert {
        deployment: Deployment,
        evals: Vec<Evaluation>,
    },
    /// An operator set or cleared a node's drain strategy (Nomad's `DrainStrategy` JSON), or
    /// the drainer finished it.
    NodeDrainUpdate {
        node_id: String,
        drain_strategy: Option<serde_json::Value>,
        mark_eligible: bool,
        /// Set when the drainer completes the drain (recorded in the node's events).
        completed: bool,
    },
    /// The drainer marks allocations to migrate off a draining node.
    AllocsMigrate {
        alloc_ids: Vec<String>,
        evals: Vec<Evaluation>,
    },
    /// Garbage collection: remove what the GC pass found old and finished.
    GcDelete {
        plan: super::gc::GcPlan,
    },
    /// `PUT /v1/operator/scheduler/configuration` (and the first leader's defaults).
    SchedulerSetConfig {
        config: SchedulerConfiguration,
    },
    /// A job version proved itself (its deployment succeeded).
    JobStability {
        namespace: String,
        job_id: String,
        version: u64,
        stable: bool,
    },
    /// `PUT /v1/job/:id/scale` recorded a scaling event for a task group (the count change
    /// itself, if any, is a `JobRegister` before it).
    ScalingEventRegister {
        namespace: String,
        job_id: String,
        task_group: String,
        event: ScalingEvent,
    },
    /// Namespace and node pool writes (`/v1/namespace/:name`, `/v1/node/pool/:name`).
    Partition {
        op: super::partitions::PartitionOp,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_newer_formats_are_refused() {
        let e = LogEntry::new(Command::EvalUpsert {
            evals: vec![Evaluation {
                id: "e1".into(),
                ..Default::default()
            }],
        });
        let back = LogEntry::decode(&e.encode()).unwrap();
        assert!(matches!(back.command, Command::EvalUpsert { ref evals } if evals[0].id == "e1"));
        let mut newer: serde_json::Value = serde_json::from_slice(&e.encode()).unwrap();
        newer["version"] = serde_json::json!(COMMAND_FORMAT_VERSION + 1);
        let err = LogEntry::decode(newer.to_string().as_bytes()).unwrap_err();
        assert!(err.contains("upgrade this server"), "{err}");
        assert!(LogEntry::is_newer_format(newer.to_string().as_bytes()));
        assert!(LogEntry::decode(b"garbage").is_err());
        assert!(!LogEntry::is_newer_format(b"garbage"));
        assert!(!LogEntry::is_newer_format(&e.encode()));
    }

    #[test]
    fn format_1_entries_still_decode() {
        // As a format 1 server wrote it: no time.
        let v1 = br#"{"version":1,"command":{"Type":"EvalUpsert","Body":{"evals":[]}}}"#;
        let e = LogEntry::decode(v1).unwrap();
        assert_eq!((e.version, e.time), (1, 0));
        assert!(matches!(e.command, Command::EvalUpsert { ref evals } if evals.is_empty()));
    }
}
