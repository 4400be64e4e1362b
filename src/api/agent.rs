//! `/v1/agent/*`, `/v1/status/*`, `/v1/regions` and `/v1/metrics`: facts about this agent.

use super::{ApiResult, AppState};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use caravan_structs::*;
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agent/self", get(agent_self))
        .route("/v1/agent/members", get(members))
        .route("/v1/agent/health", get(health))
        .route("/v1/agent/servers", get(servers))
        .route("/v1/status/leader", get(leader))
        .route("/v1/status/peers", get(peers))
        .route("/v1/regions", get(regions))
        .route("/v1/metrics", get(metrics))
}

fn member(s: &AppState) -> serde_json::Value {
    let a = &s.agent;
    let (host, rpc_port) = a.rpc_addr.rsplit_once(':').unwrap_or((&a.rpc_addr, "4647"));
    json!({
        "Name": format!("{}.{}", a.node_name, a.region),
        "Addr": host,
        "Port": a.serf_port,
        "Tags": {
            "role": "nomad", "region": a.region, "dc": a.datacenter,
            "build": format!("{}+caravan{}", NOMAD_API_VERSION, CARAVAN_VERSION),
            "vsn": "1", "raft_vsn": "3", "port": rpc_port, "bootstrap": "1",
            "expect": "1", "rpc_addr": host, "leader": "true",
        },
        "Status": "alive",
        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}

async fn agent_self(State(s): State<AppState>) -> ApiResult {
    let client = s.client.as_ref().map(|c| {
        let n = c.shared.node();
        json!({"node_id": n.id, "known_servers": s.agent.rpc_addr, "num_allocations": c.alloc_runners().len()})
    });
    let mut config = s.agent.config_json.clone();
    if let (Some(logs), Some(obj)) = (&s.agent.logs, config.as_object_mut()) {
        // A SIGHUP may have changed it since start.
        obj.insert("LogLevel".into(), logs.level().into());
    }
    Ok(axum::Json(json!({
        "config": config,
        "member": member(&s),
        "stats": {
            "nomad": {"server": "true", "leader": "true", "leader_addr": s.server.leader_addr(), "bootstrap": "true", "known_regions": "1"},
            "client": client,
            "raft": {"state": "Leader", "applied_index": s.server.store.latest_index().to_string()},
            "runtime": {"arch": std::env::consts::ARCH, "version": format!("caravan {CARAVAN_VERSION}")},
        },
    }))
    .into_response())
}

async fn members(State(s): State<AppState>) -> ApiResult {
    Ok(axum::Json(json!({
        "ServerName": s.agent.node_name,
        "ServerRegion": s.agent.region,
        "ServerDC": s.agent.datacenter,
        "Members": [member(&s)],
    }))
    .into_response())
}

async fn health(State(s): State<AppState>) -> ApiResult {
    let mut v = json!({"server": {"ok": true, "message": "ok"}});
    if s.client.is_some() {
        v["client"] = json!({"ok": true, "message": "ok"});
    }
    Ok(axum::Json(v).into_response())
}

async fn servers(State(s): State<AppState>) -> ApiResult {
    Ok(axum::Json(json!([s.agent.rpc_addr])).into_response())
}

async fn leader(State(s): State<AppState>) -> ApiResult {
    Ok(axum::Json(json!(s.server.leader_addr())).into_response())
}

async fn peers(State(s): State<AppState>) -> ApiResult {
    Ok(axum::Json(json!([s.server.leader_addr()])).into_response())
}

async fn regions(State(s): State<AppState>) -> ApiResult {
    Ok(axum::Json(json!([s.agent.region])).into_response())
}

/// Gauges in Nomad's JSON shape, or Prometheus text with `?format=prometheus`.
async fn metrics(State(s): State<AppState>, Query(p): Query<HashMap<String, String>>) -> ApiResult {
    let snap = s.server.store.snapshot();
    let (ready, unacked, delayed, pending) = s.server.broker.stats();
    let running = snap
        .allocs
        .values()
        .filter(|a| a.client_status == ALLOC_CLIENT_RUNNING)
        .count();
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0);
    let gauges: Vec<(&str, f64)> = vec![
        ("nomad.broker.total_ready", ready as f64),
        ("nomad.broker.total_unacked", unacked as f64),
        ("nomad.broker.total_waiting", delayed as f64),
        ("nomad.broker.total_pending", pending as f64),
        (
            "nomad.blocked_evals.total_blocked",
            s.server.blocked.len() as f64,
        ),
        ("nomad.state.jobs", snap.jobs.len() as f64),
        ("nomad.state.allocs", snap.allocs.len() as f64),
        ("nomad.state.nodes", snap.nodes.len() as f64),
        ("nomad.client.allocations.running", running as f64),
        (
            "nomad.client.vault.stale_tasks",
            crate::client::vault_outage::stale_tasks() as f64,
        ),
        ("nomad.runtime.alloc_bytes", rss as f64),
        ("nomad.raft.applied_index", snap.index as f64),
        ("nomad.uptime", s.server.started_at.elapsed().as_secs_f64()),
    ];
    if p.get("format").map(|f| f == "prometheus").unwrap_or(false) {
        let mut out = String::new();
        for (name, v) in &gauges {
            let n = name.replace('.', "_");
            out.push_str(&format!("# TYPE {n} gauge\n{n} {v}\n"));
        }
        return Ok(([("Content-Type", "text/plain; version=0.0.4")], out).into_response());
    }
    Ok(axum::Json(json!({
        "Timestamp": crate::util::rfc3339(time::now_nanos()),
        "Gauges": gauges.iter().map(|(n, v)| json!({"Name": n, "Value": v, "Labels": {}})).collect::<Vec<_>>(),
        "Counters": [],
        "Samples": [],
        "Points": [],
    }))
    .into_response())
}
