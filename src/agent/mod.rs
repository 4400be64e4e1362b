//! `caravan agent`: reads flags and config, starts the server and client in one process, and
//! serves the HTTP API until a signal stops it.

mod artifact;
pub mod config;
mod consul;
mod exec_driver;
mod reload;
mod shutdown;
mod template;
pub mod validate;
mod vault;

use crate::api::{self, AgentInfo, AppState};
use crate::client::{rpc::InProcess, Client, ClientConfig};
use crate::server::{Server, ServerConfig};
use anyhow::{bail, Context};
use caravan_driver::Driver;
use config::AgentConfig;
use std::sync::Arc;
use std::time::Duration;

/// Entry point for `caravan agent ...`; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let cfg = match config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("==> Error: {e:#}");
            return 1;
        }
    };
    if cfg.help {
        println!("{}", config::USAGE);
        return 0;
    }
    let logs = match cfg.log_settings().and_then(|ls| init_logging(&ls)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("==> Error setting up logging: {e:#}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("==> Error starting runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(serve(cfg, args.to_vec(), logs)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("==> Error starting agent: {e:#}");
            1
        }
    }
}

/// Installs the agent's log layer as the global subscriber.
fn init_logging(settings: &crate::logging::LogSettings) -> anyhow::Result<crate::logging::Logs> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (logs, layer) = crate::logging::Logs::new(settings, true)?;
    // A second install (only in tests) keeps the first.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(logs)
}

async fn serve(
    cfg: AgentConfig,
    args: Vec<String>,
    logs: crate::logging::Logs,
) -> anyhow::Result<()> {
    if !cfg.server && !cfg.client {
        bail!("must specify either server, client or dev mode for the agent");
    }
    if !cfg.server {
        bail!("a client-only agent needs the clustering feature (RPC to remote servers), which is not available in Caravan yet; run with -dev or enable server {{}} too");
    }
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data_dir {}", cfg.data_dir.display()))?;
    let http_addr = format!("{}:{}", cfg.bind_addr, cfg.http_port);
    let rpc_addr = format!("{}:{}", cfg.advertise_ip(), cfg.rpc_port);
    let listener = tokio::net::TcpListener::bind(&http_addr)
        .await
        .with_context(|| format!("failed to bind HTTP listener on {http_addr}"))?;

    let server = Server::open(ServerConfig {
        region: cfg.region.clone(),
        acl: acl_config(&cfg),
        oidc_issuer: cfg
            .file
            .server
            .as_ref()
            .and_then(|s| s.oidc_issuer.clone())
            .unwrap_or_default(),
        datacenter: cfg.datacenter.clone(),
        node_name: cfg.node_name.clone(),
        rpc_addr: rpc_addr.clone(),
        num_schedulers: cfg.num_schedulers,
        default_scheduler_config: default_scheduler_config(&cfg)?,
        gc: gc_config(&cfg),
        job_tracked_versions: cfg
            .file
            .server
            .as_ref()
            .and_then(|s| s.job_tracked_versions)
            .map(|n| n.max(1) as usize)
            .unwrap_or(0),
        enable_event_broker: cfg
            .file
            .server
            .as_ref()
            .and_then(|s| s.enable_event_broker)
            .unwrap_or(true),
        event_buffer_size: event_buffer_size(&cfg)?,
        search: search_config(&cfg)?,
        vault_clusters: vault::vault_clusters(&cfg)?.into_keys().collect(),
        vault_default_identity: vault::default_identities(&cfg),
        data_dir: server_data_dir(&cfg),
        snapshot_threshold: cfg
            .file
            .server
            .as_ref()
            .and_then(|s| s.raft_snapshot_threshold)
            .filter(|n| *n > 0)
            .map(|n| n as u64)
            .unwrap_or(crate::server::raft::DEFAULT_SNAPSHOT_THRESHOLD),
        ..Default::default()
    })
    .context("cannot start the server")?;
    server.start();
    let consul = consul::from_config(&cfg)?;

    let client = if cfg.client {
        let mut drivers: Vec<Arc<dyn Driver>> = vec![Arc::new(
            caravan_driver_raw_exec::RawExecDriver::new(cfg.raw_exec_enabled),
        )];
        let exec = exec_driver::exec_driver(&cfg)?;
        // java runs through the exec driver's isolation, with the same options.
        let client_options = cfg.file.client.as_ref().map(|c| c.options.clone());
        let java = caravan_driver_java::JavaDriver::from_exec_config(
            exec.config().clone(),
            &client_options.unwrap_or_default(),
        );
        drivers.push(Arc::new(exec));
        drivers.push(Arc::new(java));
        drivers.extend(container_drivers(&cfg)?);
        let c = Client::start(
            ClientConfig {
                data_dir: cfg.data_dir.clone(),
                node_name: cfg.node_name.clone(),
                datacenter: cfg.datacenter.clone(),
                node_class: cfg.node_class.clone(),
                node_pool: cfg.node_pool.clone(),
                meta: cfg.meta.clone(),
                network_ip: cfg.advertise_ip(),
                http_addr: format!("{}:{}", cfg.advertise_ip(), cfg.http_port),
                reserved: cfg.reserved.clone(),
                gc: client_gc_settings(&cfg),
                artifact: artifact::getter_config(&cfg)?,
                template: template::template_settings(&cfg)?,
                host_volumes: cfg
                    .file
                    .client
                    .iter()
                    .flat_map(|c| c.host_volume.0.iter())
                    .map(|(name, v)| {
                        (
                            name.clone(),
                            crate::client::HostVolumeConfig {
                                path: v.path.clone().unwrap_or_default().into(),
                                read_only: v.read_only.unwrap_or(false),
                            },
                        )
                    })
                    .collect(),
                consul: Some(consul.clone()),
                vault: vault::vault_clusters(&cfg)?,
                nomad_service_discovery: cfg
                    .file
                    .client
                    .as_ref()
                    .and_then(|c| c.nomad_service_discovery)
                    .unwrap_or(true),
                ..Default::default()
            },
            drivers,
            Arc::new(InProcess(server.clone())),
        )
        .await?;
        Some(c)
    } else {
        None
    };

    let consul_ids = consul::advertise(&cfg, &consul);
    print_banner(&cfg, &http_addr, &rpc_addr, client.as_ref());
    let state = AppState {
        server: server.clone(),
        client: client.clone(),
        agent: Arc::new(AgentInfo {
            node_name: cfg.node_name.clone(),
            datacenter: cfg.datacenter.clone(),
            region: cfg.region.clone(),
            http_addr: http_addr.clone(),
            rpc_addr,
            serf_port: cfg.serf_port,
            dev_mode: cfg.dev,
            config_json: cfg.to_json(),
            logs: Some(logs.clone()),
        }),
    };
    tokio::spawn(reload::Reloader::new(args, cfg.clone(), logs, client.clone()).run());
    let app = api::router(state);
    let shutdown = {
        let (cfg, server, client) = (cfg.clone(), server.clone(), client.clone());
        async move {
            let sig = shutdown::wait_for_signal().await;
            shutdown::leave(&cfg, sig, &server, client.as_ref()).await;
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server failed")?;
    consul::withdraw(&consul, &consul_ids).await;

    if let Some(c) = client {
        if cfg.dev {
            // A dev agent leaves nothing running behind it.
            shutdown::stop_all_tasks(&c).await;
        }
    }
    if cfg.dev && cfg.data_dir_is_temp {
        let _ = std::fs::remove_dir_all(&cfg.data_dir);
    }
    Ok(())
}

/// Where the server keeps its log and snapshots: `server { data_dir }`, else
/// `<data_dir>/server`; none (memory only) for a dev agent without `-data-dir`.
fn server_data_dir(cfg: &AgentConfig) -> Option<std::path::PathBuf> {
    if let Some(d) = cfg.file.server.as_ref().and_then(|s| s.data_dir.clone()) {
        return Some(d.into());
    }
    if cfg.dev && cfg.data_dir_is_temp {
        return None;
    }
    Some(cfg.data_dir.join("server"))
}

/// The client's GC settings from `client {}`, Nomad's defaults where unset.
fn client_gc_settings(cfg: &AgentConfig) -> crate::client::gc::GcSettings {
    let mut gc = crate::client::gc::GcSettings::default();
    if let Some(c) = &cfg.file.client {
        if let Some(d) = &c.gc_interval {
            gc.interval = d.as_std();
        }
        if let Some(n) = c.gc_max_allocs {
            gc.max_allocs = n.max(0) as usize;
        }
        if let Some(p) = c.gc_disk_usage_threshold {
            gc.disk_usage_threshold = p;
        }
        if let Some(p) = c.gc_inode_usage_threshold {
            gc.inode_usage_threshold = p;
        }
        if let Some(n) = c.gc_parallel_destroys {
            gc.parallel_destroys = n.max(1) as usize;
        }
    }
    gc
}

/// `server { default_scheduler_config {} }`, Nomad's defaults where unset.
fn default_scheduler_config(
    cfg: &AgentConfig,
) -> anyhow::Result<caravan_structs::SchedulerConfiguration> {
    let mut c = caravan_structs::SchedulerConfiguration::default();
    let Some(d) = cfg
        .file
        .server
        .as_ref()
        .and_then(|s| s.default_scheduler_config.as_ref())
    else {
        return Ok(c);
    };
    if let Some(a) = &d.scheduler_algorithm {
        c.scheduler_algorithm = a.clone();
    }
    if let Some(m) = d.memory_oversubscription_enabled {
        c.memory_oversubscription_enabled = m;
    }
    if let Some(r) = d.reject_job_registration {
        c.reject_job_registration = r;
    }
    if let Some(p) = d.pause_eval_broker {
        c.pause_eval_broker = p;
    }
    if let Some(p) = &d.preemption_config {
        let pc = &mut c.preemption_config;
        pc.system_scheduler_enabled = p
            .system_scheduler_enabled
            .unwrap_or(pc.system_scheduler_enabled);
        pc.sys_batch_scheduler_enabled = p
            .sysbatch_scheduler_enabled
            .unwrap_or(pc.sys_batch_scheduler_enabled);
        pc.batch_scheduler_enabled = p
            .batch_scheduler_enabled
            .unwrap_or(pc.batch_scheduler_enabled);
        pc.service_scheduler_enabled = p
            .service_scheduler_enabled
            .unwrap_or(pc.service_scheduler_enabled);
    }
    c.validate()
        .map_err(|e| anyhow::anyhow!("server.default_scheduler_config: {e}"))?;
    Ok(c)
}

/// The server's GC settings from `server {}`, Nomad's defaults where unset.
/// `server { event_buffer_size }` (0 or unset: Nomad's 100).
fn event_buffer_size(cfg: &AgentConfig) -> anyhow::Result<usize> {
    match cfg.file.server.as_ref().and_then(|s| s.event_buffer_size) {
        None => Ok(0),
        Some(n) => usize::try_from(n)
            .map_err(|_| anyhow::anyhow!("server.event_buffer_size must be 0 or more, got {n}")),
    }
}

/// `server { search { fuzzy_enabled limit_query limit_results min_term_length } }`.
fn search_config(cfg: &AgentConfig) -> anyhow::Result<crate::server::SearchConfig> {
    let mut c = crate::server::SearchConfig::default();
    let Some(s) = cfg.file.server.as_ref().and_then(|s| s.search.as_ref()) else {
        return Ok(c);
    };
    if let Some(b) = s.fuzzy_enabled {
        c.fuzzy_enabled = b;
    }
    let positive = |name: &str, v: Option<i64>, into: &mut usize| match v {
        None => Ok(()),
        Some(n) if n >= 1 => {
            *into = n as usize;
            Ok(())
        }
        Some(n) => Err(anyhow::anyhow!(
            "server.search.{name} must be 1 or more, got {n}"
        )),
    };
    positive("limit_query", s.limit_query, &mut c.limit_query)?;
    positive("limit_results", s.limit_results, &mut c.limit_results)?;
    positive("min_term_length", s.min_term_length, &mut c.min_term_length)?;
    Ok(c)
}

/// `acl {}` (and `-acl-enabled`): on or off, token expiry bounds, and the bootstrap reset
/// file in the data dir, as Nomad keeps it.
fn acl_config(cfg: &AgentConfig) -> crate::server::acl::AclConfig {
    let mut a = crate::server::acl::AclConfig {
        enabled: cfg.acl_enabled,
        bootstrap_reset_file: Some(cfg.data_dir.join("server").join("acl-bootstrap-reset")),
        ..Default::default()
    };
    if let Some(f) = &cfg.file.acl {
        if let Some(d) = &f.token_min_expiration_ttl {
            a.token_min_expiration_ttl = d.as_std();
        }
        if let Some(d) = &f.token_max_expiration_ttl {
            a.token_max_expiration_ttl = d.as_std();
        }
    }
    a
}

fn gc_config(cfg: &AgentConfig) -> crate::server::gc::GcConfig {
    let mut gc = crate::server::gc::GcConfig::default();
    if let Some(s) = &cfg.file.server {
        let set = |d: &Option<config::merge::Duration>, into: &mut Duration| {
            if let Some(d) = d {
                *into = d.as_std();
            }
        };
        set(&s.job_gc_interval, &mut gc.interval);
        set(&s.job_gc_threshold, &mut gc.job_threshold);
        set(&s.eval_gc_threshold, &mut gc.eval_threshold);
        set(&s.batch_eval_gc_threshold, &mut gc.batch_eval_threshold);
        set(&s.deployment_gc_threshold, &mut gc.deployment_threshold);
        set(&s.node_gc_threshold, &mut gc.node_threshold);
    }
    gc
}

/// The docker driver (always; undetected without an engine) and the podman driver (when a
/// `plugin "podman"` or `plugin "nomad-driver-podman"` block configures it), from their
/// plugin config blocks; a bad block stops the agent with the driver's message.
fn container_drivers(cfg: &AgentConfig) -> anyhow::Result<Vec<Arc<dyn Driver>>> {
    let block = |name: &str| {
        let config = cfg.file.plugin.get(name)?.config.clone();
        let object = match config {
            Some(serde_json::Value::Array(a)) => a.into_iter().rev().find(|v| v.is_object()),
            other => other,
        };
        Some(match object {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        })
    };
    let docker_block = block("docker").unwrap_or_default();
    let docker = caravan_driver_docker::DockerPluginConfig::parse(&docker_block)
        .map_err(|e| anyhow::anyhow!("plugin \"docker\": {e}"))?;
    let mut drivers: Vec<Arc<dyn Driver>> =
        vec![Arc::new(caravan_driver_docker::DockerDriver::new(docker))];
    if let Some(podman) = block("podman").or_else(|| block("nomad-driver-podman")) {
        let d = caravan_driver_docker::DockerDriver::podman(&podman)
            .map_err(|e| anyhow::anyhow!("plugin \"podman\": {e}"))?;
        drivers.push(Arc::new(d));
    }
    Ok(drivers)
}

fn print_banner(cfg: &AgentConfig, http: &str, rpc: &str, client: Option<&Arc<Client>>) {
    if cfg.config_files.is_empty() {
        println!("==> No configuration files loaded");
    } else {
        println!(
            "==> Loaded configuration from {}",
            cfg.config_files.join(", ")
        );
    }
    println!("==> Starting Caravan agent...");
    println!("==> Caravan agent configuration:\n");
    let serf = format!("{}:{}", cfg.advertise_ip(), cfg.serf_port);
    let rows = [
        (
            "Advertise Addrs",
            format!(
                "HTTP: {}:{}; RPC: {rpc}; Serf: {serf}",
                cfg.advertise_ip(),
                cfg.http_port
            ),
        ),
        (
            "Bind Addrs",
            format!("HTTP: [{http}]; RPC: {rpc}; Serf: {serf}"),
        ),
        ("Client", cfg.client.to_string()),
        ("Log Level", cfg.log_level.to_uppercase()),
        ("Node Id", client.map(|c| c.node_id()).unwrap_or_default()),
        ("Region", format!("{} (DC: {})", cfg.region, cfg.datacenter)),
        ("Server", cfg.server.to_string()),
        (
            "Version",
            format!(
                "{} (Nomad API {})",
                caravan_structs::CARAVAN_VERSION,
                caravan_structs::NOMAD_API_VERSION
            ),
        ),
    ];
    for (k, v) in rows {
        println!("{k:>22}: {v}");
    }
    println!("\n==> Caravan agent started! Log data will stream in below:\n");
}

#[cfg(test)]
mod server_data_dir_tests {
    use super::*;

    fn cfg(args: &[&str]) -> AgentConfig {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        config::from_args(&args).expect("flags")
    }

    #[test]
    fn dev_keeps_state_in_memory_unless_given_a_data_dir() {
        assert_eq!(server_data_dir(&cfg(&["-dev"])), None);
        assert_eq!(
            server_data_dir(&cfg(&["-dev", "-data-dir=/var/lib/caravan"])),
            Some("/var/lib/caravan/server".into())
        );
        assert_eq!(
            server_data_dir(&cfg(&["-server", "-data-dir=/srv/c"])),
            Some("/srv/c/server".into())
        );
    }
}
