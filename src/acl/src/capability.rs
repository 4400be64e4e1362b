//! Every capability and policy level Nomad's ACL policies know, which values each rule accepts,
//! and how the `policy = "..."` shorthand expands into capabilities (Nomad's `acl/policy.go`).

// Policy levels: the values of a rule's `policy` field.
pub const POLICY_DENY: &str = "deny";
pub const POLICY_READ: &str = "read";
pub const POLICY_LIST: &str = "list";
pub const POLICY_WRITE: &str = "write";
pub const POLICY_SCALE: &str = "scale";

// Namespace capabilities.
pub const DENY: &str = "deny";
pub const LIST_JOBS: &str = "list-jobs";
pub const PARSE_JOB: &str = "parse-job";
pub const READ_JOB: &str = "read-job";
pub const SUBMIT_JOB: &str = "submit-job";
pub const DISPATCH_JOB: &str = "dispatch-job";
pub const READ_LOGS: &str = "read-logs";
pub const READ_FS: &str = "read-fs";
pub const ALLOC_EXEC: &str = "alloc-exec";
pub const ALLOC_NODE_EXEC: &str = "alloc-node-exec";
pub const ALLOC_LIFECYCLE: &str = "alloc-lifecycle";
pub const SENTINEL_OVERRIDE: &str = "sentinel-override";
pub const CSI_REGISTER_PLUGIN: &str = "csi-register-plugin";
pub const CSI_WRITE_VOLUME: &str = "csi-write-volume";
pub const CSI_READ_VOLUME: &str = "csi-read-volume";
pub const CSI_LIST_VOLUME: &str = "csi-list-volume";
pub const CSI_MOUNT_VOLUME: &str = "csi-mount-volume";
pub const HOST_VOLUME_CREATE: &str = "host-volume-create";
pub const HOST_VOLUME_REGISTER: &str = "host-volume-register";
pub const HOST_VOLUME_READ: &str = "host-volume-read";
pub const HOST_VOLUME_WRITE: &str = "host-volume-write";
pub const HOST_VOLUME_DELETE: &str = "host-volume-delete";
pub const LIST_SCALING_POLICIES: &str = "list-scaling-policies";
pub const READ_SCALING_POLICY: &str = "read-scaling-policy";
pub const READ_JOB_SCALING: &str = "read-job-scaling";
pub const SCALE_JOB: &str = "scale-job";
pub const SUBMIT_RECOMMENDATION: &str = "submit-recommendation";
// Fine-grained job capabilities, each also granted by `submit-job` (see [`implied_by`]).
pub const REGISTER_JOB: &str = "register-job";
pub const REVERT_JOB: &str = "revert-job";
pub const DEREGISTER_JOB: &str = "deregister-job";
pub const PURGE_JOB: &str = "purge-job";
pub const EVALUATE_JOB: &str = "evaluate-job";
pub const PLAN_JOB: &str = "plan-job";
pub const TAG_JOB_VERSION: &str = "tag-job-version";
pub const STABLE_JOB: &str = "stable-job";
pub const FAIL_DEPLOYMENT: &str = "fail-deployment";
pub const PAUSE_DEPLOYMENT: &str = "pause-deployment";
pub const PROMOTE_DEPLOYMENT: &str = "promote-deployment";
pub const UNBLOCK_DEPLOYMENT: &str = "unblock-deployment";
pub const CANCEL_DEPLOYMENT: &str = "cancel-deployment";
pub const SET_ALLOC_HEALTH_DEPLOYMENT: &str = "set-alloc-health-deployment";
pub const GC_ALLOCATION: &str = "gc-allocation";
pub const PAUSE_ALLOCATION: &str = "pause-allocation";
pub const FORCE_PERIODIC_JOB: &str = "force-periodic-job";
pub const DELETE_SERVICE_REGISTRATION: &str = "delete-service-registration";

/// Every capability a `namespace` rule accepts.
pub const NAMESPACE_CAPABILITIES: &[&str] = &[
    DENY,
    LIST_JOBS,
    PARSE_JOB,
    READ_JOB,
    SUBMIT_JOB,
    DISPATCH_JOB,
    READ_LOGS,
    READ_FS,
    ALLOC_EXEC,
    ALLOC_NODE_EXEC,
    ALLOC_LIFECYCLE,
    SENTINEL_OVERRIDE,
    CSI_REGISTER_PLUGIN,
    CSI_WRITE_VOLUME,
    CSI_READ_VOLUME,
    CSI_LIST_VOLUME,
    CSI_MOUNT_VOLUME,
    HOST_VOLUME_CREATE,
    HOST_VOLUME_REGISTER,
    HOST_VOLUME_READ,
    HOST_VOLUME_WRITE,
    HOST_VOLUME_DELETE,
    LIST_SCALING_POLICIES,
    READ_SCALING_POLICY,
    READ_JOB_SCALING,
    SCALE_JOB,
    SUBMIT_RECOMMENDATION,
    REGISTER_JOB,
    REVERT_JOB,
    DEREGISTER_JOB,
    PURGE_JOB,
    EVALUATE_JOB,
    PLAN_JOB,
    TAG_JOB_VERSION,
    STABLE_JOB,
    FAIL_DEPLOYMENT,
    PAUSE_DEPLOYMENT,
    PROMOTE_DEPLOYMENT,
    UNBLOCK_DEPLOYMENT,
    CANCEL_DEPLOYMENT,
    SET_ALLOC_HEALTH_DEPLOYMENT,
    GC_ALLOCATION,
    PAUSE_ALLOCATION,
    FORCE_PERIODIC_JOB,
    DELETE_SERVICE_REGISTRATION,
];

// Variables path capabilities.
pub const VAR_LIST: &str = "list";
pub const VAR_READ: &str = "read";
pub const VAR_WRITE: &str = "write";
pub const VAR_DESTROY: &str = "destroy";
pub const VAR_DENY: &str = "deny";

/// Every capability a variables `path` rule accepts.
pub const VARIABLE_CAPABILITIES: &[&str] = &[VAR_LIST, VAR_READ, VAR_WRITE, VAR_DESTROY, VAR_DENY];

// Node pool capabilities.
pub const POOL_READ: &str = "read";
pub const POOL_WRITE: &str = "write";
pub const POOL_DELETE: &str = "delete";
pub const POOL_DENY: &str = "deny";

/// Every capability a `node_pool` rule accepts.
pub const NODE_POOL_CAPABILITIES: &[&str] = &[POOL_DELETE, POOL_DENY, POOL_READ, POOL_WRITE];

// Host volume capabilities.
pub const MOUNT_READONLY: &str = "mount-readonly";
pub const MOUNT_READWRITE: &str = "mount-readwrite";
pub const HOST_VOLUME_DENY: &str = "deny";

/// Every capability a `host_volume` rule accepts.
pub const HOST_VOLUME_CAPABILITIES: &[&str] = &[HOST_VOLUME_DENY, MOUNT_READONLY, MOUNT_READWRITE];

// Operator capabilities.
pub const OPERATOR_DENY: &str = "deny";
pub const SNAPSHOT_SAVE: &str = "snapshot-save";
pub const LICENSE_READ: &str = "license-read";
pub const KEYRING_ROTATE: &str = "keyring-rotate";
pub const KEYRING_READ: &str = "keyring-read";
pub const KEYRING_DELETE: &str = "keyring-delete";

/// Every capability an `operator` rule accepts.
pub const OPERATOR_CAPABILITIES: &[&str] = &[
    OPERATOR_DENY,
    SNAPSHOT_SAVE,
    LICENSE_READ,
    KEYRING_ROTATE,
    KEYRING_READ,
    KEYRING_DELETE,
];

// Sentinel capabilities (an Enterprise feature; the rule is parsed so such policies load).
pub const SENTINEL_DENY: &str = "deny";
pub const SENTINEL_READ: &str = "sentinel-read";
pub const SENTINEL_SUBMIT: &str = "sentinel-submit";
pub const SENTINEL_DELETE: &str = "sentinel-delete";

/// Every capability a `sentinel` rule accepts.
pub const SENTINEL_CAPABILITIES: &[&str] = &[
    SENTINEL_DENY,
    SENTINEL_READ,
    SENTINEL_SUBMIT,
    SENTINEL_DELETE,
];

/// Whether `policy` is one a namespace, node pool, host volume, agent, node, operator, quota or
/// sentinel rule accepts (Nomad's isPolicyValid: `list` is for plugins only).
pub fn is_valid_policy(policy: &str) -> bool {
    matches!(
        policy,
        POLICY_DENY | POLICY_READ | POLICY_WRITE | POLICY_SCALE
    )
}

/// Whether `policy` is one a `plugin` rule accepts.
pub fn is_valid_plugin_policy(policy: &str) -> bool {
    matches!(
        policy,
        POLICY_DENY | POLICY_READ | POLICY_LIST | POLICY_WRITE
    )
}

const NAMESPACE_READ: &[&str] = &[
    LIST_JOBS,
    PARSE_JOB,
    READ_JOB,
    CSI_LIST_VOLUME,
    CSI_READ_VOLUME,
    READ_JOB_SCALING,
    LIST_SCALING_POLICIES,
    READ_SCALING_POLICY,
    HOST_VOLUME_READ,
];

const NAMESPACE_WRITE_EXTRA: &[&str] = &[
    SCALE_JOB,
    SUBMIT_JOB,
    DISPATCH_JOB,
    READ_LOGS,
    READ_FS,
    ALLOC_EXEC,
    ALLOC_LIFECYCLE,
    CSI_MOUNT_VOLUME,
    CSI_WRITE_VOLUME,
    SUBMIT_RECOMMENDATION,
    HOST_VOLUME_CREATE,
];

const NAMESPACE_SCALE: &[&str] = &[
    LIST_SCALING_POLICIES,
    READ_SCALING_POLICY,
    READ_JOB_SCALING,
    SCALE_JOB,
    READ_JOB,
    SUBMIT_RECOMMENDATION,
];

/// The capabilities a namespace rule's `policy` grants (Nomad's expandNamespacePolicy), in
/// Nomad's order; empty for an unknown policy.
pub fn expand_namespace_policy(policy: &str) -> Vec<&'static str> {
    match policy {
        POLICY_DENY => vec![DENY],
        POLICY_READ => NAMESPACE_READ.to_vec(),
        POLICY_WRITE => NAMESPACE_READ
            .iter()
            .chain(NAMESPACE_WRITE_EXTRA)
            .copied()
            .collect(),
        POLICY_SCALE => NAMESPACE_SCALE.to_vec(),
        _ => Vec::new(),
    }
}

/// The capabilities a namespace capability brings along when granted (Nomad's
/// expandNamespaceCapabilities): the host volume ones.
pub fn expand_namespace_capability(cap: &str) -> &'static [&'static str] {
    match cap {
        HOST_VOLUME_WRITE => &[
            HOST_VOLUME_REGISTER,
            HOST_VOLUME_CREATE,
            HOST_VOLUME_DELETE,
            HOST_VOLUME_READ,
        ],
        HOST_VOLUME_REGISTER => &[HOST_VOLUME_CREATE, HOST_VOLUME_READ],
        HOST_VOLUME_CREATE => &[HOST_VOLUME_READ],
        _ => &[],
    }
}

/// The broader namespace capabilities that also grant `cap`: Nomad's endpoints accept either the
/// fine-grained capability or these (`AllowNsOpAnyOf(ns, submit-job, register-job)` and so on),
/// so [`crate::Acl::allow_namespace_operation`] answers yes for `cap` when one of these is held.
pub fn implied_by(cap: &str) -> &'static [&'static str] {
    match cap {
        REGISTER_JOB
        | REVERT_JOB
        | PURGE_JOB
        | EVALUATE_JOB
        | PLAN_JOB
        | TAG_JOB_VERSION
        | STABLE_JOB
        | FAIL_DEPLOYMENT
        | PAUSE_DEPLOYMENT
        | PROMOTE_DEPLOYMENT
        | UNBLOCK_DEPLOYMENT
        | CANCEL_DEPLOYMENT
        | SET_ALLOC_HEALTH_DEPLOYMENT
        | GC_ALLOCATION
        | PAUSE_ALLOCATION
        | DELETE_SERVICE_REGISTRATION => &[SUBMIT_JOB],
        // Job.Deregister without purge: submit-job, purge-job or deregister-job.
        DEREGISTER_JOB => &[SUBMIT_JOB, PURGE_JOB],
        // Periodic.Force: dispatch-job, submit-job or force-periodic-job.
        FORCE_PERIODIC_JOB => &[SUBMIT_JOB, DISPATCH_JOB],
        _ => &[],
    }
}

/// The capabilities a node pool rule's `policy` grants (Nomad's expandNodePoolPolicy).
pub fn expand_node_pool_policy(policy: &str) -> Vec<&'static str> {
    match policy {
        POLICY_DENY => vec![POOL_DENY],
        POLICY_READ => vec![POOL_READ],
        POLICY_WRITE => vec![POOL_DELETE, POOL_READ, POOL_WRITE],
        _ => Vec::new(),
    }
}

/// The capabilities a host volume rule's `policy` grants (Nomad's expandHostVolumePolicy).
pub fn expand_host_volume_policy(policy: &str) -> Vec<&'static str> {
    match policy {
        POLICY_DENY => vec![HOST_VOLUME_DENY],
        POLICY_READ => vec![MOUNT_READONLY],
        POLICY_WRITE => vec![MOUNT_READONLY, MOUNT_READWRITE],
        _ => Vec::new(),
    }
}

/// The capabilities an operator rule's `policy` grants (Nomad's expandOperatorPolicy).
pub fn expand_operator_policy(policy: &str) -> Vec<&'static str> {
    match policy {
        POLICY_DENY => vec![OPERATOR_DENY],
        POLICY_READ => vec![LICENSE_READ, KEYRING_READ],
        POLICY_WRITE => vec![
            SNAPSHOT_SAVE,
            LICENSE_READ,
            KEYRING_ROTATE,
            KEYRING_READ,
            KEYRING_DELETE,
        ],
        _ => Vec::new(),
    }
}

/// The capabilities a sentinel rule's `policy` grants (Nomad's expandSentinelPolicy).
pub fn expand_sentinel_policy(policy: &str) -> Vec<&'static str> {
    match policy {
        POLICY_DENY => vec![SENTINEL_DENY],
        POLICY_READ => vec![SENTINEL_READ],
        POLICY_WRITE => vec![SENTINEL_READ, SENTINEL_SUBMIT, SENTINEL_DELETE],
        _ => Vec::new(),
    }
}

/// A variables path rule's capabilities as granted (Nomad's expandVariablesCapabilities): `deny`
/// alone when present, and `read` brings `list`.
pub fn expand_variable_capabilities(caps: Vec<String>) -> Vec<String> {
    if caps.iter().any(|c| c == VAR_DENY) {
        return vec![VAR_DENY.to_string()];
    }
    let read = caps.iter().any(|c| c == VAR_READ);
    let list = caps.iter().any(|c| c == VAR_LIST);
    let mut caps = caps;
    if read && !list {
        caps.push(VAR_LIST.to_string());
    }
    caps
}
