//! Nomad's agent configuration file, typed: every block and key Nomad's `command/agent/config.go`
//! decodes, each optional so files merge (see `merge`). Key names are Nomad's. Defaults are
//! applied where the agent reads a value, not here, so "not set" stays visible.

use super::merge::{section, Appended, Duration, PortRanges};
use caravan_hcl1::{Blocks, MaybeLabeled};
use std::collections::BTreeMap;

section! {
    /// One file (or several merged): the top level of an agent config.
    pub struct FileConfig {
        pub region: Option<String>,
        pub datacenter: Option<String>,
        pub name: Option<String>,
        pub data_dir: Option<String>,
        pub plugin_dir: Option<String>,
        pub log_level: Option<String>,
        pub log_json: Option<bool>,
        pub log_file: Option<String>,
        pub log_include_location: Option<bool>,
        pub log_rotate_duration: Option<Duration>,
        pub log_rotate_bytes: Option<i64>,
        pub log_rotate_max_files: Option<i64>,
        pub bind_addr: Option<String>,
        pub enable_debug: Option<bool>,
        pub ports: Option<Ports>,
        pub addresses: Option<Addresses>,
        pub advertise: Option<Addresses>,
        pub client: Option<ClientConfig>,
        pub server: Option<ServerConfig>,
        pub rpc: Option<RpcConfig>,
        pub acl: Option<AclConfig>,
        pub telemetry: Option<Telemetry>,
        pub leave_on_interrupt: Option<bool>,
        pub leave_on_terminate: Option<bool>,
        pub enable_syslog: Option<bool>,
        pub syslog_facility: Option<String>,
        pub disable_update_check: Option<bool>,
        pub disable_anonymous_signature: Option<bool>,
        /// `consul { ... }` and `consul "name" { ... }`; labels are filled in by the loader
        /// (the label, else the block's `name`, else `default`).
        pub consul: MaybeLabeled<ConsulConfig>,
        pub vault: MaybeLabeled<VaultConfig>,
        pub ui: Option<UiConfig>,
        pub tls: Option<TlsConfig>,
        pub http_api_response_headers: Option<BTreeMap<String, String>>,
        pub sentinel: Option<SentinelConfig>,
        pub autopilot: Option<AutopilotConfig>,
        pub plugin: Blocks<PluginConfig>,
        pub limits: Option<Limits>,
        pub audit: Option<AuditConfig>,
        pub reporting: Option<ReportingConfig>,
        /// `keyring "awskms" { active = true, region = "...", ... }`: provider settings are free-form.
        pub keyring: Blocks<BTreeMap<String, serde_json::Value>>,
        pub eventlog: Option<Eventlog>,
    }
}

section! {
    pub struct Ports {
        pub http: Option<u16>,
        pub rpc: Option<u16>,
        pub serf: Option<u16>,
    }
}

section! {
    /// `addresses { }` and `advertise { }` (advertise values may carry a port).
    pub struct Addresses {
        pub http: Option<String>,
        pub rpc: Option<String>,
        pub serf: Option<String>,
    }
}

section! {
    pub struct ClientConfig {
        pub enabled: Option<bool>,
        pub state_dir: Option<String>,
        pub alloc_dir: Option<String>,
        pub alloc_mounts_dir: Option<String>,
        pub host_volumes_dir: Option<String>,
        pub host_volume_plugin_dir: Option<String>,
        pub common_plugin_dir: Option<String>,
        pub servers: Appended<String>,
        pub node_class: Option<String>,
        pub node_pool: Option<String>,
        pub options: BTreeMap<String, String>,
        pub meta: BTreeMap<String, String>,
        pub chroot_env: BTreeMap<String, String>,
        pub network_interface: Option<String>,
        pub preferred_address_family: Option<String>,
        pub network_speed: Option<i64>,
        pub cpu_disable_dmidecode: Option<bool>,
        pub cpu_total_compute: Option<i64>,
        pub memory_total_mb: Option<i64>,
        pub disk_total_mb: Option<i64>,
        pub disk_free_mb: Option<i64>,
        pub reservable_cores: Option<String>,
        pub max_kill_timeout: Option<Duration>,
        /// Caravan: `"keep"` (default) or `"fail"`, what a Vault outage does to running tasks.
        pub vault_outage: Option<String>,
        pub client_max_port: Option<i64>,
        pub client_min_port: Option<i64>,
        pub max_dynamic_port: Option<i64>,
        pub min_dynamic_port: Option<i64>,
        pub reserved: Option<Reserved>,
        pub gc_interval: Option<Duration>,
        pub gc_parallel_destroys: Option<i64>,
        pub gc_disk_usage_threshold: Option<f64>,
        pub gc_inode_usage_threshold: Option<f64>,
        pub gc_max_allocs: Option<i64>,
        pub gc_volumes_on_node_gc: Option<bool>,
        pub no_host_uuid: Option<bool>,
        pub disable_remote_exec: Option<bool>,
        pub template: Option<TemplateConfig>,
        pub server_join: Option<ServerJoin>,
        pub host_volume: Blocks<HostVolume>,
        pub cni_path: Option<String>,
        pub cni_config_dir: Option<String>,
        pub bridge_network_name: Option<String>,
        pub bridge_network_subnet: Option<String>,
        pub bridge_network_subnet_ipv6: Option<String>,
        pub bridge_network_hairpin_mode: Option<bool>,
        pub host_network: Blocks<HostNetwork>,
        pub bind_wildcard_default_host_network: Option<bool>,
        pub cgroup_parent: Option<String>,
        pub nomad_service_discovery: Option<bool>,
        pub artifact: Option<ArtifactConfig>,
        pub drain_on_shutdown: Option<DrainConfig>,
        pub users: Option<UsersConfig>,
        pub node_max_allocs: Option<i64>,
        pub log_file: Option<String>,
        pub fingerprint: Blocks<Fingerprint>,
        pub default_ineligible: Option<bool>,
        /// Unused; Nomad ignores it silently, so does Caravan.
        pub stats: Option<serde_json::Value>,
    }
}

section! {
    /// `client { reserved { } }`.
    pub struct Reserved {
        pub cpu: Option<i64>,
        pub memory: Option<i64>,
        pub disk: Option<i64>,
        pub reserved_ports: Option<PortRanges>,
        pub cores: Option<String>,
    }
}

section! {
    pub struct ServerJoin {
        pub start_join: Option<Vec<String>>,
        pub retry_join: Option<Vec<String>>,
        pub retry_max: Option<i64>,
        pub retry_interval: Option<Duration>,
    }
}

section! {
    pub struct TemplateConfig {
        pub function_denylist: Option<Vec<String>>,
        pub function_blacklist: Option<Vec<String>>,
        pub disable_file_sandbox: Option<bool>,
        pub max_stale: Option<Duration>,
        pub block_query_wait: Option<Duration>,
        pub wait: Option<WaitConfig>,
        pub wait_bounds: Option<WaitConfig>,
        pub consul_retry: Option<RetryConfig>,
        pub vault_default_lease_duration: Option<Duration>,
        pub vault_retry: Option<RetryConfig>,
        pub nomad_retry: Option<RetryConfig>,
        pub use_client_consul_token: Option<bool>,
        /// Caravan: template restarts roll through a group (`update.max_parallel`).
        pub coordinated_restarts: Option<bool>,
        /// Caravan: Vault-backed templates render afresh on every task restart.
        pub render_secrets_on_restart: Option<bool>,
    }
}

section! {
    pub struct WaitConfig {
        pub min: Option<Duration>,
        pub max: Option<Duration>,
    }
}

section! {
    pub struct RetryConfig {
        pub attempts: Option<i64>,
        pub backoff: Option<Duration>,
        pub max_backoff: Option<Duration>,
    }
}

section! {
    /// `host_volume "name" { }` (the name is the label).
    pub struct HostVolume {
        pub path: Option<String>,
        pub read_only: Option<bool>,
    }
}

section! {
    /// `host_network "name" { }`.
    pub struct HostNetwork {
        pub cidr: Option<String>,
        pub interface: Option<String>,
        pub reserved_ports: Option<PortRanges>,
    }
}

section! {
    pub struct ArtifactConfig {
        pub http_read_timeout: Option<Duration>,
        pub http_max_size: Option<String>,
        pub gcs_timeout: Option<Duration>,
        pub git_timeout: Option<Duration>,
        pub hg_timeout: Option<Duration>,
        pub s3_timeout: Option<Duration>,
        pub decompression_file_count_limit: Option<i64>,
        pub decompression_size_limit: Option<String>,
        pub disable_artifact_inspection: Option<bool>,
        pub disable_filesystem_isolation: Option<bool>,
        pub filesystem_isolation_extra_paths: Option<Vec<String>>,
        pub set_environment_variables: Option<String>,
    }
}

section! {
    pub struct DrainConfig {
        pub deadline: Option<Duration>,
        pub ignore_system_jobs: Option<bool>,
        pub force: Option<bool>,
    }
}

section! {
    pub struct UsersConfig {
        pub dynamic_user_min: Option<i64>,
        pub dynamic_user_max: Option<i64>,
    }
}

section! {
    /// `fingerprint "name" { }`.
    pub struct Fingerprint {
        pub retry_interval: Option<Duration>,
        pub retry_attempts: Option<i64>,
        pub exit_on_failure: Option<bool>,
    }
}

section! {
    pub struct ServerConfig {
        pub enabled: Option<bool>,
        pub authoritative_region: Option<String>,
        pub bootstrap_expect: Option<i64>,
        pub client_introduction: Option<ClientIntroduction>,
        pub data_dir: Option<String>,
        pub protocol_version: Option<i64>,
        pub raft_protocol: Option<i64>,
        pub raft_multiplier: Option<i64>,
        pub num_schedulers: Option<i64>,
        pub enabled_schedulers: Appended<String>,
        pub node_gc_threshold: Option<Duration>,
        pub job_gc_interval: Option<Duration>,
        pub job_gc_threshold: Option<Duration>,
        pub eval_gc_threshold: Option<Duration>,
        pub batch_eval_gc_threshold: Option<Duration>,
        pub deployment_gc_threshold: Option<Duration>,
        pub csi_volume_claim_gc_interval: Option<Duration>,
        pub csi_volume_claim_gc_threshold: Option<Duration>,
        pub csi_plugin_gc_threshold: Option<Duration>,
        pub acl_token_gc_threshold: Option<Duration>,
        pub root_key_gc_interval: Option<Duration>,
        pub root_key_gc_threshold: Option<Duration>,
        pub root_key_rotation_threshold: Option<Duration>,
        pub heartbeat_grace: Option<Duration>,
        pub min_heartbeat_ttl: Option<Duration>,
        pub max_heartbeats_per_second: Option<f64>,
        pub failover_heartbeat_ttl: Option<Duration>,
        /// Old form of `server_join { start_join }`.
        pub start_join: Appended<String>,
        /// Old form of `server_join { retry_join }`.
        pub retry_join: Appended<String>,
        pub retry_max: Option<i64>,
        pub retry_interval: Option<Duration>,
        pub rejoin_after_leave: Option<bool>,
        pub non_voting_server: Option<bool>,
        pub redundancy_zone: Option<String>,
        pub upgrade_version: Option<String>,
        pub encrypt: Option<String>,
        pub server_join: Option<ServerJoin>,
        pub default_scheduler_config: Option<SchedulerConfig>,
        pub plan_rejection_tracker: Option<PlanRejectionTracker>,
        pub plan_apply_pipeline: Option<i64>,
        pub enable_event_broker: Option<bool>,
        pub event_buffer_size: Option<i64>,
        pub license_path: Option<String>,
        pub search: Option<SearchConfig>,
        pub deploy_query_rate_limit: Option<f64>,
        pub raft_logstore: Option<RaftLogStore>,
        pub raft_boltdb: Option<RaftBolt>,
        pub raft_snapshot_threshold: Option<i64>,
        pub raft_snapshot_interval: Option<Duration>,
        pub raft_trailing_logs: Option<i64>,
        pub job_default_priority: Option<i64>,
        pub job_max_priority: Option<i64>,
        pub job_max_count: Option<i64>,
        pub job_max_source_size: Option<String>,
        pub job_tracked_versions: Option<i64>,
        pub oidc_issuer: Option<String>,
        pub start_timeout: Option<Duration>,
        pub log_file: Option<String>,
        pub non_production: Option<bool>,
    }
}

section! {
    pub struct ClientIntroduction {
        pub enforcement: Option<String>,
        pub default_identity_ttl: Option<Duration>,
        pub max_identity_ttl: Option<Duration>,
    }
}

section! {
    pub struct SchedulerConfig {
        pub scheduler_algorithm: Option<String>,
        pub preemption_config: Option<PreemptionConfig>,
        pub memory_oversubscription_enabled: Option<bool>,
        pub reject_job_registration: Option<bool>,
        pub pause_eval_broker: Option<bool>,
        pub node_limit_for_feasibility_checks: Option<i64>,
    }
}

section! {
    pub struct PreemptionConfig {
        pub system_scheduler_enabled: Option<bool>,
        pub sysbatch_scheduler_enabled: Option<bool>,
        pub batch_scheduler_enabled: Option<bool>,
        pub service_scheduler_enabled: Option<bool>,
    }
}

section! {
    pub struct PlanRejectionTracker {
        pub enabled: Option<bool>,
        pub node_threshold: Option<i64>,
        pub node_window: Option<Duration>,
    }
}

section! {
    pub struct SearchConfig {
        pub fuzzy_enabled: Option<bool>,
        pub limit_query: Option<i64>,
        pub limit_results: Option<i64>,
        pub min_term_length: Option<i64>,
    }
}

section! {
    pub struct RaftLogStore {
        pub backend: Option<String>,
        pub boltdb: Option<RaftBolt>,
        pub wal: Option<RaftWal>,
        pub disable_log_cache: Option<bool>,
        pub verification: Option<LogStoreVerification>,
    }
}

section! {
    pub struct RaftBolt {
        pub no_freelist_sync: Option<bool>,
    }
}

section! {
    pub struct RaftWal {
        pub segment_size_mb: Option<i64>,
    }
}

section! {
    pub struct LogStoreVerification {
        pub enabled: Option<bool>,
        pub interval: Option<Duration>,
    }
}

section! {
    pub struct RpcConfig {
        pub accept_backlog: Option<i64>,
        pub keep_alive_interval: Option<Duration>,
        pub connection_write_timeout: Option<Duration>,
        pub stream_open_timeout: Option<Duration>,
        pub stream_close_timeout: Option<Duration>,
        pub dial_timeout: Option<Duration>,
        pub max_stream_window_size: Option<i64>,
    }
}

section! {
    pub struct AclConfig {
        pub enabled: Option<bool>,
        pub token_ttl: Option<Duration>,
        pub policy_ttl: Option<Duration>,
        pub role_ttl: Option<Duration>,
        pub replication_token: Option<String>,
        pub token_min_expiration_ttl: Option<Duration>,
        pub token_max_expiration_ttl: Option<Duration>,
    }
}

section! {
    pub struct Telemetry {
        pub in_memory_collection_interval: Option<Duration>,
        pub in_memory_retention_period: Option<Duration>,
        pub statsite_address: Option<String>,
        pub statsd_address: Option<String>,
        pub datadog_address: Option<String>,
        pub datadog_tags: Option<Vec<String>>,
        pub prometheus_metrics: Option<bool>,
        pub disable_hostname: Option<bool>,
        pub use_node_name: Option<bool>,
        pub collection_interval: Option<Duration>,
        pub publish_allocation_metrics: Option<bool>,
        pub publish_node_metrics: Option<bool>,
        pub include_alloc_metadata_in_metrics: Option<bool>,
        pub allowed_metadata_keys_in_metrics: Appended<String>,
        pub prefix_filter: Option<Vec<String>>,
        pub filter_default: Option<bool>,
        pub disable_dispatched_job_summary_metrics: Option<bool>,
        pub disable_quota_utilization_metrics: Option<bool>,
        pub disable_rpc_rate_metrics_labels: Option<bool>,
        pub disable_allocation_hook_metrics: Option<bool>,
        pub circonus_api_token: Option<String>,
        pub circonus_api_app: Option<String>,
        pub circonus_api_url: Option<String>,
        pub circonus_submission_interval: Option<String>,
        pub circonus_submission_url: Option<String>,
        pub circonus_check_id: Option<String>,
        pub circonus_check_force_metric_activation: Option<String>,
        pub circonus_check_instance_id: Option<String>,
        pub circonus_check_search_tag: Option<String>,
        pub circonus_check_tags: Option<String>,
        pub circonus_check_display_name: Option<String>,
        pub circonus_broker_id: Option<String>,
        pub circonus_broker_select_tag: Option<String>,
    }
}

section! {
    pub struct ConsulConfig {
        pub name: Option<String>,
        pub server_service_name: Option<String>,
        pub server_http_check_name: Option<String>,
        pub server_serf_check_name: Option<String>,
        pub server_rpc_check_name: Option<String>,
        pub server_failures_before_critical: Option<i64>,
        pub server_failures_before_warning: Option<i64>,
        pub client_service_name: Option<String>,
        pub client_http_check_name: Option<String>,
        pub client_failures_before_critical: Option<i64>,
        pub client_failures_before_warning: Option<i64>,
        pub tags: Option<Vec<String>>,
        pub auto_advertise: Option<bool>,
        pub checks_use_advertise: Option<bool>,
        pub address: Option<String>,
        pub grpc_address: Option<String>,
        pub timeout: Option<Duration>,
        pub token: Option<String>,
        pub auth: Option<String>,
        pub ssl: Option<bool>,
        pub share_ssl: Option<bool>,
        pub verify_ssl: Option<bool>,
        pub grpc_ca_file: Option<String>,
        pub ca_file: Option<String>,
        pub cert_file: Option<String>,
        pub key_file: Option<String>,
        pub server_auto_join: Option<bool>,
        pub client_auto_join: Option<bool>,
        pub namespace: Option<String>,
        pub service_identity: Option<WorkloadIdentity>,
        pub service_auth_method: Option<String>,
        pub task_identity: Option<WorkloadIdentity>,
        pub task_auth_method: Option<String>,
        /// Legacy (token-based workflow); accepted, no effect.
        pub allow_unauthenticated: Option<bool>,
    }
}

section! {
    pub struct VaultConfig {
        pub name: Option<String>,
        pub enabled: Option<bool>,
        pub create_from_role: Option<String>,
        pub namespace: Option<String>,
        pub address: Option<String>,
        pub jwt_auth_backend_path: Option<String>,
        pub ca_file: Option<String>,
        pub ca_path: Option<String>,
        pub cert_file: Option<String>,
        pub key_file: Option<String>,
        pub tls_skip_verify: Option<bool>,
        pub tls_server_name: Option<String>,
        pub default_identity: Option<WorkloadIdentity>,
        pub token: Option<String>,
        /// Legacy (token-based workflow); accepted, no effect.
        pub allow_unauthenticated: Option<bool>,
        /// Legacy (token-based workflow); accepted, no effect.
        pub task_token_ttl: Option<Duration>,
    }
}

section! {
    /// `service_identity`, `task_identity`, `default_identity`.
    pub struct WorkloadIdentity {
        pub aud: Option<Vec<String>>,
        pub env: Option<bool>,
        pub file: Option<bool>,
        pub filepath: Option<String>,
        pub ttl: Option<Duration>,
        pub extra_claims: BTreeMap<String, String>,
    }
}

section! {
    pub struct UiConfig {
        pub enabled: Option<bool>,
        pub content_security_policy: Option<ContentSecurityPolicy>,
        pub consul: Option<UiLink>,
        pub vault: Option<UiLink>,
        pub label: Option<UiLabel>,
        pub show_cli_hints: Option<bool>,
    }
}

section! {
    pub struct ContentSecurityPolicy {
        pub connect_src: Option<Vec<String>>,
        pub default_src: Option<Vec<String>>,
        pub form_action: Option<Vec<String>>,
        pub frame_ancestors: Option<Vec<String>>,
        pub img_src: Option<Vec<String>>,
        pub script_src: Option<Vec<String>>,
        pub style_src: Option<Vec<String>>,
    }
}

section! {
    pub struct UiLink {
        pub ui_url: Option<String>,
    }
}

section! {
    pub struct UiLabel {
        pub text: Option<String>,
        pub background_color: Option<String>,
        pub text_color: Option<String>,
    }
}

section! {
    pub struct TlsConfig {
        pub http: Option<bool>,
        pub rpc: Option<bool>,
        pub verify_server_hostname: Option<bool>,
        pub ca_file: Option<String>,
        pub cert_file: Option<String>,
        pub key_file: Option<String>,
        pub rpc_upgrade_mode: Option<bool>,
        pub verify_https_client: Option<bool>,
        pub tls_cipher_suites: Option<String>,
        pub tls_min_version: Option<String>,
    }
}

section! {
    pub struct SentinelConfig {
        pub import: Blocks<SentinelImport>,
        pub additional_enabled_modules: Option<Vec<String>>,
    }
}

section! {
    pub struct SentinelImport {
        pub path: Option<String>,
        pub args: Option<Vec<String>>,
    }
}

section! {
    pub struct AutopilotConfig {
        pub cleanup_dead_servers: Option<bool>,
        pub server_stabilization_time: Option<Duration>,
        pub last_contact_threshold: Option<Duration>,
        pub max_trailing_logs: Option<i64>,
        pub min_quorum: Option<i64>,
        pub enable_redundancy_zones: Option<bool>,
        pub disable_upgrade_migration: Option<bool>,
        pub enable_custom_upgrades: Option<bool>,
    }
}

section! {
    /// `plugin "name" { args = [...], config { ... } }`; `config` is the plugin's own schema.
    pub struct PluginConfig {
        pub args: Option<Vec<String>>,
        pub config: Option<serde_json::Value>,
    }
}

section! {
    pub struct Limits {
        pub https_handshake_timeout: Option<Duration>,
        pub http_max_conns_per_client: Option<i64>,
        pub rpc_handshake_timeout: Option<Duration>,
        pub rpc_max_conns_per_client: Option<i64>,
    }
}

section! {
    pub struct AuditConfig {
        pub enabled: Option<bool>,
        pub sink: Blocks<AuditSink>,
        pub filter: Blocks<AuditFilter>,
    }
}

section! {
    pub struct AuditSink {
        pub delivery_guarantee: Option<String>,
        pub r#type: Option<String>,
        pub format: Option<String>,
        pub path: Option<String>,
        pub rotate_duration: Option<Duration>,
        pub rotate_bytes: Option<i64>,
        pub rotate_max_files: Option<i64>,
        pub mode: Option<String>,
    }
}

section! {
    pub struct AuditFilter {
        pub r#type: Option<String>,
        pub endpoints: Option<Vec<String>>,
        pub stages: Option<Vec<String>>,
        pub operations: Option<Vec<String>>,
    }
}

section! {
    pub struct ReportingConfig {
        pub license: Option<LicenseReporting>,
        pub address: Option<String>,
        pub export_interval: Option<Duration>,
        pub snapshot_retention_time: Option<Duration>,
        pub disable_product_usage_reporting: Option<bool>,
    }
}

section! {
    pub struct LicenseReporting {
        pub enabled: Option<bool>,
    }
}

section! {
    pub struct Eventlog {
        pub enabled: Option<bool>,
        pub level: Option<String>,
    }
}
