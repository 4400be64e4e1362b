//! The jobspec tables: for each block, the keys Nomad accepts and the API JSON field each
//! fills (names from Nomad's `api` package). Add a row here to accept a new key.

use super::custom::{
    affinity_finish, bind_addresses, config, constraint_finish, group_scaling_finish,
    periodic_finish, ports, task_scaling, volumes,
};
use super::Kind::*;
use super::{Field, Label, Spec};

macro_rules! f {
    ($hcl:literal, $json:literal, $kind:expr) => {
        Field {
            hcl: $hcl,
            json: $json,
            kind: $kind,
        }
    };
}

const fn spec(label: Label, fields: &'static [Field]) -> Spec {
    Spec {
        label,
        fields,
        finish: None,
    }
}

pub(crate) static JOB: Spec = spec(
    Label::One("ID"),
    &[
        f!("id", "ID", Str),
        f!("name", "Name", Str),
        f!("region", "Region", Str),
        f!("namespace", "Namespace", Str),
        f!("type", "Type", Str),
        f!("priority", "Priority", Int),
        f!("all_at_once", "AllAtOnce", Bool),
        f!("datacenters", "Datacenters", StrList),
        f!("node_pool", "NodePool", Str),
        f!("meta", "Meta", StrMap),
        f!("constraint", "Constraints", List(&CONSTRAINT)),
        f!("affinity", "Affinities", List(&AFFINITY)),
        f!("spread", "Spreads", List(&SPREAD)),
        f!("update", "Update", Object(&UPDATE)),
        f!("reschedule", "Reschedule", Object(&RESCHEDULE)),
        f!("migrate", "Migrate", Object(&MIGRATE)),
        f!("periodic", "Periodic", Object(&PERIODIC)),
        f!("parameterized", "ParameterizedJob", Object(&PARAMETERIZED)),
        f!("multiregion", "Multiregion", Object(&MULTIREGION)),
        f!("vault", "Vault", Object(&VAULT)),
        f!("ui", "UI", Object(&UI)),
        f!("consul_token", "ConsulToken", Str),
        f!("vault_token", "VaultToken", Str),
        f!("consul_namespace", "ConsulNamespace", Str),
        f!("vault_namespace", "VaultNamespace", Str),
        f!("group", "TaskGroups", List(&GROUP)),
        // Applies to every task (jobspec2's job-level `secret`).
        f!("secret", "Secrets", List(&SECRET)),
        // HCL1-era shorthand: a task directly in the job becomes a group of its own.
        f!("task", "Tasks", List(&TASK)),
    ],
);

pub(crate) static GROUP: Spec = spec(
    Label::One("Name"),
    &[
        f!("count", "Count", Int),
        f!("constraint", "Constraints", List(&CONSTRAINT)),
        f!("affinity", "Affinities", List(&AFFINITY)),
        f!("spread", "Spreads", List(&SPREAD)),
        f!("meta", "Meta", StrMap),
        f!("restart", "RestartPolicy", Object(&RESTART)),
        f!("reschedule", "ReschedulePolicy", Object(&RESCHEDULE)),
        f!("ephemeral_disk", "EphemeralDisk", Object(&EPHEMERAL_DISK)),
        f!("update", "Update", Object(&UPDATE)),
        f!("migrate", "Migrate", Object(&MIGRATE)),
        f!("network", "Networks", List(&NETWORK)),
        f!("service", "Services", List(&SERVICE)),
        f!("task", "Tasks", List(&TASK)),
        f!("volume", "Volumes", Custom(volumes)),
        f!("scaling", "Scaling", Object(&GROUP_SCALING)),
        f!("consul", "Consul", Object(&CONSUL)),
        f!("disconnect", "Disconnect", Object(&DISCONNECT)),
        f!("vault", "Vault", Object(&VAULT)),
        f!("shutdown_delay", "ShutdownDelay", Duration),
        f!("max_run_duration", "MaxRunDuration", Duration),
        f!(
            "stop_after_client_disconnect",
            "StopAfterClientDisconnect",
            Duration
        ),
        f!("max_client_disconnect", "MaxClientDisconnect", Duration),
        f!(
            "prevent_reschedule_on_lost",
            "PreventRescheduleOnLost",
            Bool
        ),
    ],
);

pub(crate) static TASK: Spec = spec(
    Label::One("Name"),
    &[
        f!("driver", "Driver", Str),
        f!("user", "User", Str),
        f!("config", "Config", Custom(config)),
        f!("env", "Env", StrMap),
        f!("meta", "Meta", StrMap),
        f!("constraint", "Constraints", List(&CONSTRAINT)),
        f!("affinity", "Affinities", List(&AFFINITY)),
        f!("resources", "Resources", Object(&RESOURCES)),
        f!("restart", "RestartPolicy", Object(&RESTART)),
        f!("lifecycle", "Lifecycle", Object(&LIFECYCLE)),
        f!("logs", "LogConfig", Object(&LOGS)),
        f!("kill_timeout", "KillTimeout", Duration),
        f!("kill_signal", "KillSignal", Str),
        f!("leader", "Leader", Bool),
        f!("shutdown_delay", "ShutdownDelay", Duration),
        f!("kind", "Kind", Str),
        f!("service", "Services", List(&SERVICE)),
        f!("artifact", "Artifacts", List(&ARTIFACT)),
        f!("template", "Templates", List(&TEMPLATE)),
        f!("vault", "Vault", Object(&VAULT)),
        f!("consul", "Consul", Object(&CONSUL)),
        f!("identity", "Identities", List(&IDENTITY)),
        f!("volume_mount", "VolumeMounts", List(&VOLUME_MOUNT)),
        f!(
            "dispatch_payload",
            "DispatchPayload",
            Object(&DISPATCH_PAYLOAD)
        ),
        f!("action", "Actions", List(&ACTION)),
        f!("schedule", "Schedule", Object(&SCHEDULE)),
        f!("csi_plugin", "CSIPluginConfig", Object(&CSI_PLUGIN)),
        f!("scaling", "ScalingPolicies", Custom(task_scaling)),
        f!("secret", "Secrets", List(&SECRET)),
    ],
);

pub(crate) static CONSTRAINT: Spec = Spec {
    label: Label::None,
    fields: &[
        f!("attribute", "LTarget", Str),
        f!("operator", "Operand", Str),
        f!("value", "RTarget", Str),
        f!("distinct_hosts", "distinct_hosts", Bool),
        f!("distinct_property", "distinct_property", Str),
        f!("version", "version", Str),
        f!("semver", "semver", Str),
        f!("regexp", "regexp", Str),
        f!("set_contains", "set_contains", Str),
        f!("set_contains_all", "set_contains_all", Str),
        f!("set_contains_any", "set_contains_any", Str),
        f!("is_set", "is_set", Str),
        f!("is_not_set", "is_not_set", Str),
    ],
    finish: Some(constraint_finish),
};

pub(crate) static AFFINITY: Spec = Spec {
    label: Label::None,
    fields: &[
        f!("attribute", "LTarget", Str),
        f!("operator", "Operand", Str),
        f!("value", "RTarget", Str),
        f!("weight", "Weight", Int),
        f!("version", "version", Str),
        f!("semver", "semver", Str),
        f!("regexp", "regexp", Str),
        f!("set_contains", "set_contains", Str),
        f!("set_contains_all", "set_contains_all", Str),
        f!("set_contains_any", "set_contains_any", Str),
    ],
    finish: Some(affinity_finish),
};

pub(crate) static SPREAD: Spec = spec(
    Label::None,
    &[
        f!("attribute", "Attribute", Str),
        f!("weight", "Weight", Int),
        f!("target", "SpreadTarget", List(&SPREAD_TARGET)),
    ],
);

static SPREAD_TARGET: Spec = spec(Label::One("Value"), &[f!("percent", "Percent", Int)]);

pub(crate) static UPDATE: Spec = spec(
    Label::None,
    &[
        f!("max_parallel", "MaxParallel", Int),
        f!("health_check", "HealthCheck", Str),
        f!("min_healthy_time", "MinHealthyTime", Duration),
        f!("healthy_deadline", "HealthyDeadline", Duration),
        f!("progress_deadline", "ProgressDeadline", Duration),
        f!("auto_revert", "AutoRevert", Bool),
        f!("auto_promote", "AutoPromote", Bool),
        f!("canary", "Canary", Int),
        f!("stagger", "Stagger", Duration),
    ],
);

static RESTART: Spec = spec(
    Label::None,
    &[
        f!("attempts", "Attempts", Int),
        f!("interval", "Interval", Duration),
        f!("delay", "Delay", Duration),
        f!("mode", "Mode", Str),
        f!("render_templates", "RenderTemplates", Bool),
    ],
);

static RESCHEDULE: Spec = spec(
    Label::None,
    &[
        f!("attempts", "Attempts", Int),
        f!("interval", "Interval", Duration),
        f!("delay", "Delay", Duration),
        f!("delay_function", "DelayFunction", Str),
        f!("max_delay", "MaxDelay", Duration),
        f!("unlimited", "Unlimited", Bool),
    ],
);

static MIGRATE: Spec = spec(
    Label::None,
    &[
        f!("max_parallel", "MaxParallel", Int),
        f!("health_check", "HealthCheck", Str),
        f!("min_healthy_time", "MinHealthyTime", Duration),
        f!("healthy_deadline", "HealthyDeadline", Duration),
    ],
);

static PERIODIC: Spec = Spec {
    label: Label::None,
    fields: &[
        f!("cron", "Spec", Str),
        f!("crons", "Specs", StrList),
        f!("prohibit_overlap", "ProhibitOverlap", Bool),
        f!("time_zone", "TimeZone", Str),
        f!("enabled", "Enabled", Bool),
    ],
    finish: Some(periodic_finish),
};

static PARAMETERIZED: Spec = spec(
    Label::None,
    &[
        f!("payload", "Payload", Str),
        f!("meta_required", "MetaRequired", StrList),
        f!("meta_optional", "MetaOptional", StrList),
    ],
);

static MULTIREGION: Spec = spec(
    Label::None,
    &[
        f!("strategy", "Strategy", Object(&MULTIREGION_STRATEGY)),
        f!("region", "Regions", List(&MULTIREGION_REGION)),
    ],
);

static MULTIREGION_STRATEGY: Spec = spec(
    Label::None,
    &[
        f!("max_parallel", "MaxParallel", Int),
        f!("on_failure", "OnFailure", Str),
    ],
);

static MULTIREGION_REGION: Spec = spec(
    Label::One("Name"),
    &[
        f!("count", "Count", Int),
        f!("datacenters", "Datacenters", StrList),
        f!("node_pool", "NodePool", Str),
        f!("meta", "Meta", StrMap),
    ],
);

static VAULT: Spec = spec(
    Label::None,
    &[
        f!("policies", "Policies", StrList),
        f!("role", "Role", Str),
        f!("namespace", "Namespace", Str),
        f!("cluster", "Cluster", Str),
        f!("env", "Env", Bool),
        f!("disable_file", "DisableFile", Bool),
        f!("change_mode", "ChangeMode", Str),
        f!("change_signal", "ChangeSignal", Str),
        f!("allow_token_expiration", "AllowTokenExpiration", Bool),
    ],
);

static UI: Spec = spec(
    Label::None,
    &[
        f!("description", "Description", Str),
        f!("link", "Links", List(&UI_LINK)),
    ],
);

static UI_LINK: Spec = spec(
    Label::None,
    &[f!("label", "Label", Str), f!("url", "URL", Str)],
);

static EPHEMERAL_DISK: Spec = spec(
    Label::None,
    &[
        f!("sticky", "Sticky", Bool),
        f!("size", "SizeMB", Int),
        f!("migrate", "Migrate", Bool),
    ],
);

static CONSUL: Spec = spec(
    Label::None,
    &[
        f!("namespace", "Namespace", Str),
        f!("cluster", "Cluster", Str),
        f!("partition", "Partition", Str),
    ],
);

static DISCONNECT: Spec = spec(
    Label::None,
    &[
        f!("lost_after", "LostAfter", Duration),
        f!("replace", "Replace", Bool),
        f!("reconcile", "Reconcile", Str),
        f!("stop_on_client_after", "StopOnClientAfter", Duration),
    ],
);

static GROUP_SCALING: Spec = Spec {
    label: Label::None,
    fields: SCALING_FIELDS,
    finish: Some(group_scaling_finish),
};

/// A task's `scaling "cpu"` / `scaling "mem"` block (checked by `task_scaling`).
pub(crate) static TASK_SCALING: Spec = spec(Label::One("Name"), SCALING_FIELDS);

static SCALING_FIELDS: &[Field] = &[
    f!("min", "Min", Int),
    f!("max", "Max", Int),
    f!("enabled", "Enabled", Bool),
    f!("type", "Type", Str),
    f!("policy", "Policy", Any),
];

pub(crate) static NETWORK: Spec = spec(
    Label::None,
    &[
        f!("mode", "Mode", Str),
        f!("hostname", "Hostname", Str),
        f!("mbits", "MBits", Int),
        f!("device", "Device", Str),
        f!("cidr", "CIDR", Str),
        f!("ip", "IP", Str),
        f!("port", "Ports", Custom(ports)),
        f!("reserved_ports", "ReservedPorts", Custom(ports)),
        f!("dns", "DNS", Object(&DNS)),
        f!("cni", "CNI", Object(&CNI)),
    ],
);

static DNS: Spec = spec(
    Label::None,
    &[
        f!("servers", "Servers", StrList),
        f!("searches", "Searches", StrList),
        f!("options", "Options", StrList),
    ],
);

static CNI: Spec = spec(Label::None, &[f!("args", "Args", StrMap)]);

static RESOURCES: Spec = spec(
    Label::None,
    &[
        f!("cpu", "CPU", Int),
        f!("cores", "Cores", Int),
        f!("memory", "MemoryMB", Int),
        f!("memory_max", "MemoryMaxMB", Int),
        f!("disk", "DiskMB", Int),
        f!("iops", "IOPS", Int),
        f!("secrets", "SecretsMB", Int),
        f!("network", "Networks", List(&NETWORK)),
        f!("device", "Devices", List(&DEVICE)),
        f!("numa", "NUMA", Object(&NUMA)),
    ],
);

static NUMA: Spec = spec(
    Label::None,
    &[
        f!("affinity", "Affinity", Str),
        f!("devices", "Devices", StrList),
    ],
);

static DEVICE: Spec = spec(
    Label::One("Name"),
    &[
        f!("count", "Count", Int),
        f!("constraint", "Constraints", List(&CONSTRAINT)),
        f!("affinity", "Affinities", List(&AFFINITY)),
    ],
);

static LIFECYCLE: Spec = spec(
    Label::None,
    &[f!("hook", "Hook", Str), f!("sidecar", "Sidecar", Bool)],
);

static LOGS: Spec = spec(
    Label::None,
    &[
        f!("max_files", "MaxFiles", Int),
        f!("max_file_size", "MaxFileSizeMB", Int),
        f!("disabled", "Disabled", Bool),
        f!("enabled", "Enabled", Bool),
    ],
);

pub(crate) static SERVICE: Spec = spec(
    Label::None,
    &[
        f!("name", "Name", Str),
        f!("port", "PortLabel", Str),
        f!("tags", "Tags", StrList),
        f!("canary_tags", "CanaryTags", StrList),
        f!("enable_tag_override", "EnableTagOverride", Bool),
        f!("address_mode", "AddressMode", Str),
        f!("address", "Address", Str),
        f!("task", "TaskName", Str),
        f!("meta", "Meta", StrMap),
        f!("canary_meta", "CanaryMeta", StrMap),
        f!("tagged_addresses", "TaggedAddresses", StrMap),
        f!("on_update", "OnUpdate", Str),
        f!("provider", "Provider", Str),
        f!("cluster", "Cluster", Str),
        f!("kind", "Kind", Str),
        f!("check", "Checks", List(&CHECK)),
        f!("check_restart", "CheckRestart", Object(&CHECK_RESTART)),
        f!("connect", "Connect", Object(&CONNECT)),
        f!("identity", "Identity", Object(&IDENTITY)),
        f!("weights", "Weights", Object(&WEIGHTS)),
    ],
);

static WEIGHTS: Spec = spec(
    Label::None,
    &[f!("passing", "Passing", Int), f!("warning", "Warning", Int)],
);

static CHECK: Spec = spec(
    Label::None,
    &[
        f!("name", "Name", Str),
        f!("type", "Type", Str),
        f!("command", "Command", Str),
        f!("args", "Args", StrList),
        f!("path", "Path", Str),
        f!("protocol", "Protocol", Str),
        f!("port", "PortLabel", Str),
        f!("expose", "Expose", Bool),
        f!("address_mode", "AddressMode", Str),
        f!("advertise", "Advertise", Str),
        f!("interval", "Interval", Duration),
        f!("timeout", "Timeout", Duration),
        f!("initial_status", "InitialStatus", Str),
        f!("notes", "Notes", Str),
        f!("tls_server_name", "TLSServerName", Str),
        f!("tls_skip_verify", "TLSSkipVerify", Bool),
        f!("header", "Header", StrListMap),
        f!("method", "Method", Str),
        f!("body", "Body", Str),
        f!("grpc_service", "GRPCService", Str),
        f!("grpc_use_tls", "GRPCUseTLS", Bool),
        f!("task", "TaskName", Str),
        f!("success_before_passing", "SuccessBeforePassing", Int),
        f!("failures_before_critical", "FailuresBeforeCritical", Int),
        f!("failures_before_warning", "FailuresBeforeWarning", Int),
        f!("on_update", "OnUpdate", Str),
        f!("check_restart", "CheckRestart", Object(&CHECK_RESTART)),
    ],
);

static CHECK_RESTART: Spec = spec(
    Label::None,
    &[
        f!("limit", "Limit", Int),
        f!("grace", "Grace", Duration),
        f!("ignore_warnings", "IgnoreWarnings", Bool),
    ],
);

static ARTIFACT: Spec = spec(
    Label::None,
    &[
        f!("source", "GetterSource", Str),
        f!("destination", "RelativeDest", Str),
        f!("mode", "GetterMode", Str),
        f!("options", "GetterOptions", StrMap),
        f!("headers", "GetterHeaders", StrMap),
        f!("chown", "Chown", Bool),
        f!("insecure", "GetterInsecure", Bool),
    ],
);

static TEMPLATE: Spec = spec(
    Label::None,
    &[
        f!("source", "SourcePath", Str),
        f!("destination", "DestPath", Str),
        f!("data", "EmbeddedTmpl", Str),
        f!("change_mode", "ChangeMode", Str),
        f!("change_signal", "ChangeSignal", Str),
        f!("change_script", "ChangeScript", Object(&CHANGE_SCRIPT)),
        f!("splay", "Splay", Duration),
        f!("perms", "Perms", Str),
        f!("uid", "Uid", Int),
        f!("gid", "Gid", Int),
        f!("left_delimiter", "LeftDelim", Str),
        f!("right_delimiter", "RightDelim", Str),
        f!("env", "Envvars", Bool),
        f!("vault_grace", "VaultGrace", Duration),
        f!("wait", "Wait", Object(&WAIT)),
        f!("error_on_missing_key", "ErrMissingKey", Bool),
        f!("once", "Once", Bool),
    ],
);

static CHANGE_SCRIPT: Spec = spec(
    Label::None,
    &[
        f!("command", "Command", Str),
        f!("args", "Args", StrList),
        f!("timeout", "Timeout", Duration),
        f!("fail_on_error", "FailOnError", Bool),
        f!("run_on_first_render", "RunOnFirstRender", Bool),
    ],
);

static WAIT: Spec = spec(
    Label::None,
    &[f!("min", "Min", Duration), f!("max", "Max", Duration)],
);

static IDENTITY: Spec = spec(
    Label::None,
    &[
        f!("name", "Name", Str),
        f!("aud", "Audience", StrList),
        f!("change_mode", "ChangeMode", Str),
        f!("change_signal", "ChangeSignal", Str),
        f!("env", "Env", Bool),
        f!("file", "File", Bool),
        f!("filepath", "Filepath", Str),
        f!("ttl", "TTL", Duration),
        f!("service_name", "ServiceName", Str),
        f!("extra_claims", "ExtraClaims", StrList),
    ],
);

static VOLUME_MOUNT: Spec = spec(
    Label::None,
    &[
        f!("volume", "Volume", Str),
        f!("destination", "Destination", Str),
        f!("read_only", "ReadOnly", Bool),
        f!("propagation_mode", "PropagationMode", Str),
        f!("selinux_label", "SELinuxLabel", Str),
    ],
);

pub(crate) static VOLUME: Spec = spec(
    Label::One("Name"),
    &[
        f!("type", "Type", Str),
        f!("source", "Source", Str),
        f!("read_only", "ReadOnly", Bool),
        f!("sticky", "Sticky", Bool),
        f!("access_mode", "AccessMode", Str),
        f!("attachment_mode", "AttachmentMode", Str),
        f!("per_alloc", "PerAlloc", Bool),
        f!("mount_options", "MountOptions", Object(&MOUNT_OPTIONS)),
    ],
);

static MOUNT_OPTIONS: Spec = spec(
    Label::None,
    &[
        f!("fs_type", "FSType", Str),
        f!("mount_flags", "MountFlags", StrList),
    ],
);

static DISPATCH_PAYLOAD: Spec = spec(Label::None, &[f!("file", "File", Str)]);

static ACTION: Spec = spec(
    Label::One("Name"),
    &[f!("command", "Command", Str), f!("args", "Args", StrList)],
);

static SECRET: Spec = spec(
    Label::One("Name"),
    &[
        f!("provider", "Provider", Str),
        f!("path", "Path", Str),
        f!("config", "Config", Custom(config)),
        f!("env", "Env", StrMap),
    ],
);

static SCHEDULE: Spec = spec(Label::None, &[f!("cron", "Cron", Object(&SCHEDULE_CRON))]);

static SCHEDULE_CRON: Spec = spec(
    Label::None,
    &[
        f!("start", "Start", Str),
        f!("end", "End", Str),
        f!("timezone", "Timezone", Str),
    ],
);

static CSI_PLUGIN: Spec = spec(
    Label::None,
    &[
        f!("id", "ID", Str),
        f!("type", "Type", Str),
        f!("mount_dir", "MountDir", Str),
        f!("stage_publish_base_dir", "StagePublishBaseDir", Str),
        f!("health_timeout", "HealthTimeout", Duration),
    ],
);

// Consul Connect (`service { connect { ... } }`), names from Nomad's `api` package.

pub(crate) static CONNECT: Spec = spec(
    Label::None,
    &[
        f!("native", "Native", Bool),
        f!("gateway", "Gateway", Object(&GATEWAY)),
        f!(
            "sidecar_service",
            "SidecarService",
            Object(&SIDECAR_SERVICE)
        ),
        f!("sidecar_task", "SidecarTask", Object(&SIDECAR_TASK)),
    ],
);

static SIDECAR_SERVICE: Spec = spec(
    Label::None,
    &[
        f!("tags", "Tags", StrList),
        f!("port", "Port", Str),
        f!("proxy", "Proxy", Object(&PROXY)),
        f!("disable_default_tcp_check", "DisableDefaultTCPCheck", Bool),
        f!("meta", "Meta", StrMap),
    ],
);

static PROXY: Spec = spec(
    Label::None,
    &[
        f!("local_service_address", "LocalServiceAddress", Str),
        f!("local_service_port", "LocalServicePort", Int),
        f!("expose", "Expose", Object(&EXPOSE)),
        f!("upstreams", "Upstreams", List(&UPSTREAM)),
        f!(
            "transparent_proxy",
            "TransparentProxy",
            Object(&TRANSPARENT_PROXY)
        ),
        f!("config", "Config", Any),
    ],
);

static EXPOSE: Spec = spec(Label::None, &[f!("path", "Paths", List(&EXPOSE_PATH))]);

static EXPOSE_PATH: Spec = spec(
    Label::None,
    &[
        f!("path", "Path", Str),
        f!("protocol", "Protocol", Str),
        f!("local_path_port", "LocalPathPort", Int),
        f!("listener_port", "ListenerPort", Str),
    ],
);

static UPSTREAM: Spec = spec(
    Label::None,
    &[
        f!("destination_name", "DestinationName", Str),
        f!("destination_namespace", "DestinationNamespace", Str),
        f!("destination_peer", "DestinationPeer", Str),
        f!("destination_partition", "DestinationPartition", Str),
        f!("destination_type", "DestinationType", Str),
        f!("local_bind_port", "LocalBindPort", Int),
        f!("datacenter", "Datacenter", Str),
        f!("local_bind_address", "LocalBindAddress", Str),
        f!("local_bind_socket_path", "LocalBindSocketPath", Str),
        f!("local_bind_socket_mode", "LocalBindSocketMode", Str),
        f!("mesh_gateway", "MeshGateway", Object(&MESH_GATEWAY)),
        f!("config", "Config", Any),
    ],
);

static MESH_GATEWAY: Spec = spec(Label::None, &[f!("mode", "Mode", Str)]);

static TRANSPARENT_PROXY: Spec = spec(
    Label::None,
    &[
        f!("uid", "UID", Str),
        f!("outbound_port", "OutboundPort", Int),
        f!("exclude_inbound_ports", "ExcludeInboundPorts", StrList),
        f!("exclude_outbound_ports", "ExcludeOutboundPorts", Any),
        f!("exclude_outbound_cidrs", "ExcludeOutboundCIDRs", StrList),
        f!("exclude_uids", "ExcludeUIDs", StrList),
        f!("no_dns", "NoDNS", Bool),
    ],
);

static SIDECAR_TASK: Spec = spec(
    Label::None,
    &[
        f!("name", "Name", Str),
        f!("driver", "Driver", Str),
        f!("user", "User", Str),
        f!("config", "Config", Custom(config)),
        f!("env", "Env", StrMap),
        f!("resources", "Resources", Object(&RESOURCES)),
        f!("meta", "Meta", StrMap),
        f!("kill_timeout", "KillTimeout", Duration),
        f!("logs", "LogConfig", Object(&LOGS)),
        f!("shutdown_delay", "ShutdownDelay", Duration),
        f!("kill_signal", "KillSignal", Str),
        f!("volume_mount", "VolumeMounts", List(&VOLUME_MOUNT)),
        f!("identity", "Identities", List(&IDENTITY)),
    ],
);

static GATEWAY: Spec = spec(
    Label::None,
    &[
        f!("proxy", "Proxy", Object(&GATEWAY_PROXY)),
        f!("ingress", "Ingress", Object(&INGRESS)),
        f!("terminating", "Terminating", Object(&TERMINATING)),
        f!("mesh", "Mesh", Object(&MESH)),
    ],
);

static GATEWAY_PROXY: Spec = spec(
    Label::None,
    &[
        f!("connect_timeout", "ConnectTimeout", Duration),
        f!(
            "envoy_gateway_bind_tagged_addresses",
            "EnvoyGatewayBindTaggedAddresses",
            Bool
        ),
        f!(
            "envoy_gateway_bind_addresses",
            "EnvoyGatewayBindAddresses",
            Custom(bind_addresses)
        ),
        f!(
            "envoy_gateway_no_default_bind",
            "EnvoyGatewayNoDefaultBind",
            Bool
        ),
        f!("envoy_dns_discovery_type", "EnvoyDNSDiscoveryType", Str),
        f!("config", "Config", Any),
    ],
);

/// `envoy_gateway_bind_addresses "name" { address, port }` (collected by label).
pub(crate) static BIND_ADDRESS: Spec = spec(
    Label::One("Name"),
    &[f!("address", "Address", Str), f!("port", "Port", Int)],
);

static INGRESS: Spec = spec(
    Label::None,
    &[
        f!("tls", "TLS", Object(&GATEWAY_TLS)),
        f!("listener", "Listeners", List(&LISTENER)),
    ],
);

static GATEWAY_TLS: Spec = spec(
    Label::None,
    &[
        f!("enabled", "Enabled", Bool),
        f!("tls_min_version", "TLSMinVersion", Str),
        f!("tls_max_version", "TLSMaxVersion", Str),
        f!("cipher_suites", "CipherSuites", StrList),
        f!("sds", "SDS", Object(&SDS)),
    ],
);

static SDS: Spec = spec(
    Label::None,
    &[
        f!("cluster_name", "ClusterName", Str),
        f!("cert_resource", "CertResource", Str),
    ],
);

static LISTENER: Spec = spec(
    Label::None,
    &[
        f!("port", "Port", Int),
        f!("protocol", "Protocol", Str),
        f!("service", "Services", List(&INGRESS_SERVICE)),
    ],
);

static INGRESS_SERVICE: Spec = spec(
    Label::None,
    &[
        f!("name", "Name", Str),
        f!("hosts", "Hosts", StrList),
        f!("tls", "TLS", Object(&GATEWAY_TLS)),
        f!(
            "request_headers",
            "RequestHeaders",
            Object(&HEADER_MODIFIERS)
        ),
        f!(
            "response_headers",
            "ResponseHeaders",
            Object(&HEADER_MODIFIERS)
        ),
        f!("max_connections", "MaxConnections", Int),
        f!("max_pending_requests", "MaxPendingRequests", Int),
        f!("max_concurrent_requests", "MaxConcurrentRequests", Int),
    ],
);

static HEADER_MODIFIERS: Spec = spec(
    Label::None,
    &[
        f!("add", "Add", StrMap),
        f!("set", "Set", StrMap),
        f!("remove", "Remove", StrList),
    ],
);

static TERMINATING: Spec = spec(
    Label::None,
    &[f!("service", "Services", List(&LINKED_SERVICE))],
);

static LINKED_SERVICE: Spec = spec(
    Label::None,
    &[
        f!("name", "Name", Str),
        f!("ca_file", "CAFile", Str),
        f!("cert_file", "CertFile", Str),
        f!("key_file", "KeyFile", Str),
        f!("sni", "SNI", Str),
    ],
);

static MESH: Spec = spec(Label::None, &[]);
