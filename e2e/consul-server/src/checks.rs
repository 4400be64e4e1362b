//! Health checks: turning a check definition into a [`Check`], running HTTP and TCP checks on
//! their interval, expiring TTL checks, applying `SuccessBeforePassing`/`FailuresBefore*`, and
//! reaping services critical for longer than `DeregisterCriticalServiceAfter`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::duration::{format_go_duration, parse_go_duration};
use crate::error::ApiError;
use crate::model::{CheckDef, JsonDuration};
use crate::store::{Check, CheckKind, Data, Store};

/// Consul's smallest check interval; shorter ones are raised to it.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Consul's default timeout of HTTP and TCP checks.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Consul's default cap on a check's output.
pub const OUTPUT_MAX: usize = 4096;

pub const PASSING: &str = "passing";
pub const WARNING: &str = "warning";
pub const CRITICAL: &str = "critical";

fn duration(field: &str, d: &Option<JsonDuration>) -> Result<Option<Duration>, ApiError> {
    match d {
        None => Ok(None),
        Some(JsonDuration::Nanos(n)) => Ok(Some(Duration::from_nanos(*n))),
        Some(JsonDuration::Text(s)) if s.is_empty() => Ok(None),
        Some(JsonDuration::Text(s)) => parse_go_duration(s)
            .map(Some)
            .map_err(|e| ApiError::bad(format!("Request decode failed: {field}: {e}"))),
    }
}

/// A validated check definition, ready to be stored.
#[derive(Debug)]
pub struct CheckSpec {
    pub id: String,
    pub name: String,
    pub service_id: String,
    pub notes: String,
    pub status: Option<String>,
    pub kind: CheckKind,
    pub definition: Value,
    pub deregister_critical_after: Option<Duration>,
    pub success_before_passing: u32,
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
}

/// Validates a check definition. `id`/`name` are the already-defaulted identity.
pub fn build(
    def: &CheckDef,
    id: String,
    name: String,
    service_id: String,
) -> Result<CheckSpec, ApiError> {
    if def.Args.is_some()
        || def.ScriptArgs.is_some()
        || def.DockerContainerID.is_some()
        || def.Shell.is_some()
    {
        return Err(ApiError::bad(
            "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true",
        ));
    }
    for (set, what) in [
        (def.GRPC.is_some(), "GRPC"),
        (def.H2PING.is_some(), "H2PING"),
        (def.UDP.is_some(), "UDP"),
        (def.OSService.is_some(), "OSService"),
        (
            def.AliasNode.is_some() || def.AliasService.is_some(),
            "alias",
        ),
    ] {
        if set {
            return Err(ApiError::bad(format!(
                "Invalid check: {what} checks are not implemented by the Caravan Consul test server"
            )));
        }
    }
    if def
        .Namespace
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != "default")
    {
        return Err(ApiError::bad(
            "Invalid check: Namespaces are a Consul Enterprise feature",
        ));
    }
    let status = match def.Status.as_deref() {
        None | Some("") => None,
        Some(s @ (PASSING | WARNING | CRITICAL)) => Some(s.to_string()),
        Some(other) => return Err(ApiError::bad(format!("Invalid check status: {other:?}"))),
    };
    let ttl = duration("TTL", &def.TTL)?;
    let interval = duration("Interval", &def.Interval)?;
    let timeout = duration("Timeout", &def.Timeout)?
        .filter(|t| !t.is_zero())
        .unwrap_or(DEFAULT_TIMEOUT);
    let kinds = [ttl.is_some(), def.HTTP.is_some(), def.TCP.is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(ApiError::bad(
            "Invalid check: Must provide TTL or HTTP/TCP (this server implements TTL, HTTP and TCP checks) and Interval",
        ));
    }
    let kind = if let Some(ttl) = ttl {
        if interval.is_some_and(|i| !i.is_zero()) {
            return Err(ApiError::bad(
                "Invalid check: Interval and TTL cannot both be specified",
            ));
        }
        if ttl.is_zero() {
            return Err(ApiError::bad(
                "Invalid check: TTL must be > 0 for TTL checks",
            ));
        }
        CheckKind::Ttl { ttl }
    } else {
        let interval = match interval {
            Some(i) if !i.is_zero() => i.max(MIN_INTERVAL),
            _ => return Err(ApiError::bad(
                "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks",
            )),
        };
        if let Some(url) = &def.HTTP {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ApiError::bad(format!(
                    "Invalid check: invalid HTTP URL {url:?}"
                )));
            }
            CheckKind::Http {
                url: url.clone(),
                method: def
                    .Method
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "GET".into()),
                headers: def.Header.clone().unwrap_or_default(),
                body: def.Body.clone().unwrap_or_default(),
                tls_skip_verify: def.TLSSkipVerify.unwrap_or(false),
                interval,
                timeout,
            }
        } else {
            let address = def.TCP.clone().unwrap_or_default();
            if address.rsplit_once(':').is_none() {
                return Err(ApiError::bad(format!(
                    "Invalid check: TCP address {address:?} must be host:port"
                )));
            }
            CheckKind::Tcp {
                address,
                interval,
                timeout,
            }
        }
    };
    let definition = definition_json(
        &kind,
        duration(
            "DeregisterCriticalServiceAfter",
            &def.DeregisterCriticalServiceAfter,
        )?,
    );
    Ok(CheckSpec {
        id,
        name,
        service_id,
        notes: def.Notes.clone().unwrap_or_default(),
        status,
        kind,
        definition,
        deregister_critical_after: duration(
            "DeregisterCriticalServiceAfter",
            &def.DeregisterCriticalServiceAfter,
        )?
        .filter(|d| !d.is_zero()),
        success_before_passing: def.SuccessBeforePassing.unwrap_or(0),
        failures_before_warning: def.FailuresBeforeWarning.unwrap_or(0),
        failures_before_critical: def.FailuresBeforeCritical.unwrap_or(0),
    })
}

fn definition_json(kind: &CheckKind, dereg: Option<Duration>) -> Value {
    let dereg = dereg.map(format_go_duration).unwrap_or_else(|| "0s".into());
    match kind {
        CheckKind::Ttl { ttl } => {
            json!({"TTL": format_go_duration(*ttl), "DeregisterCriticalServiceAfter": dereg})
        }
        CheckKind::Http {
            url,
            method,
            headers,
            body,
            tls_skip_verify,
            interval,
            timeout,
        } => json!({
            "HTTP": url, "Method": method, "Header": headers, "Body": body,
            "TLSSkipVerify": tls_skip_verify,
            "Interval": format_go_duration(*interval), "Timeout": format_go_duration(*timeout),
            "DeregisterCriticalServiceAfter": dereg,
        }),
        CheckKind::Tcp {
            address,
            interval,
            timeout,
        } => json!({
            "TCP": address,
            "Interval": format_go_duration(*interval), "Timeout": format_go_duration(*timeout),
            "DeregisterCriticalServiceAfter": dereg,
        }),
    }
}

/// Stores a check (replacing one with the same ID, keeping its status unless the definition
/// sets one) and starts its runner. Must be called inside `Store::write`.
pub fn insert(store: &Store, data: &mut Data, spec: CheckSpec) {
    let index = data.next_index();
    let previous = data.checks.remove(&spec.id);
    let (status, output, create_index) = match &previous {
        Some(p) => (p.status.clone(), p.output.clone(), p.create_index),
        None => (CRITICAL.to_string(), String::new(), index),
    };
    let status = spec.status.clone().unwrap_or(status);
    let ttl_deadline = match &spec.kind {
        CheckKind::Ttl { ttl } => Some(Instant::now() + *ttl),
        _ => None,
    };
    let check = Check {
        id: spec.id.clone(),
        name: spec.name,
        critical_since: (status == CRITICAL).then(Instant::now),
        status,
        notes: spec.notes,
        output,
        service_id: spec.service_id,
        kind: spec.kind.clone(),
        definition: spec.definition,
        deregister_critical_after: spec.deregister_critical_after,
        success_before_passing: spec.success_before_passing,
        failures_before_warning: spec.failures_before_warning,
        failures_before_critical: spec.failures_before_critical,
        successes: 0,
        failures: 0,
        create_index,
        modify_index: index,
        runner: None,
        ttl_refresh: Arc::new(Notify::new()),
        ttl_deadline,
    };
    let refresh = check.ttl_refresh.clone();
    if let Some(name) = data.check_service_name(&check) {
        data.touch_service(&name, index);
    }
    data.checks.insert(spec.id.clone(), check);
    data.checks_index = index;
    drop(previous);
    let runner = spawn_runner(store.clone(), spec.id.clone(), spec.kind, refresh);
    if let Some(check) = data.checks.get_mut(&spec.id) {
        check.runner = Some(runner);
    }
}

/// Removes a check (stopping its runner). Must be called inside `Store::write`.
pub fn remove(data: &mut Data, id: &str) -> bool {
    let Some(check) = data.checks.remove(id) else {
        return false;
    };
    let index = data.next_index();
    if let Some(name) = data.check_service_name(&check) {
        data.touch_service(&name, index);
    }
    data.checks_index = index;
    true
}

/// Sets a check's status and output directly (TTL updates); bumps the index only on change.
pub fn set_status(data: &mut Data, id: &str, status: &str, output: &str) -> bool {
    let mut output = output.to_string();
    if output.len() > OUTPUT_MAX {
        let mut cut = OUTPUT_MAX;
        while !output.is_char_boundary(cut) {
            cut -= 1;
        }
        output.truncate(cut);
        output.push_str(" ... (captured check output exceeded 4096 bytes and was truncated)");
    }
    let Some(check) = data.checks.get(id) else {
        return false;
    };
    if check.status == status && check.output == output {
        return true;
    }
    let service = data.check_service_name(check);
    let index = data.next_index();
    if let Some(check) = data.checks.get_mut(id) {
        if status == CRITICAL && check.critical_since.is_none() {
            check.critical_since = Some(Instant::now());
        } else if status != CRITICAL {
            check.critical_since = None;
        }
        check.status = status.to_string();
        check.output = output;
        check.modify_index = index;
    }
    if let Some(name) = service {
        data.touch_service(&name, index);
    }
    data.checks_index = index;
    true
}

/// Records one result of an HTTP/TCP check, honouring the success/failure thresholds.
fn record_result(data: &mut Data, id: &str, status: &str, output: &str) {
    let Some(check) = data.checks.get_mut(id) else {
        return;
    };
    let new_status = if status == CRITICAL {
        check.successes = 0;
        check.failures = check.failures.saturating_add(1);
        if check.failures >= check.failures_before_critical {
            Some(CRITICAL)
        } else if check.failures_before_warning > 0
            && check.failures >= check.failures_before_warning
        {
            Some(WARNING)
        } else {
            None
        }
    } else {
        check.failures = 0;
        check.successes = check.successes.saturating_add(1);
        (check.successes >= check.success_before_passing).then_some(status)
    };
    match new_status {
        Some(s) => {
            set_status(data, id, s, output);
        }
        None => {
            let current = check.status.clone();
            set_status(data, id, &current, output);
        }
    }
}

/// Refreshes a TTL check: new status, output, and a new deadline.
pub fn ttl_update(data: &mut Data, id: &str, status: &str, output: &str) -> Result<(), ApiError> {
    let Some(check) = data.checks.get_mut(id) else {
        return Err(ApiError::NotFound(format!(
            "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
        )));
    };
    let CheckKind::Ttl { ttl } = check.kind else {
        return Err(ApiError::Internal(format!(
            "CheckID {id:?} does not have associated TTL"
        )));
    };
    check.ttl_deadline = Some(Instant::now() + ttl);
    check.ttl_refresh.notify_one();
    set_status(data, id, status, output);
    Ok(())
}

fn spawn_runner(
    store: Store,
    id: String,
    kind: CheckKind,
    refresh: Arc<Notify>,
) -> tokio::task::AbortHandle {
    match kind {
        CheckKind::Ttl { .. } => tokio::spawn(ttl_loop(store, id, refresh)).abort_handle(),
        CheckKind::Http {
            url,
            method,
            headers,
            body,
            tls_skip_verify,
            interval,
            timeout,
        } => tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .danger_accept_invalid_certs(tls_skip_verify)
                .timeout(timeout)
                .build();
            loop {
                let (status, output) = match &client {
                    Ok(client) => run_http(client, &url, &method, &headers, &body).await,
                    Err(e) => (CRITICAL, format!("cannot build HTTP client: {e}")),
                };
                store.write(|data| record_result(data, &id, status, &output));
                tokio::time::sleep(interval).await;
            }
        })
        .abort_handle(),
        CheckKind::Tcp {
            address,
            interval,
            timeout,
        } => tokio::spawn(async move {
            loop {
                let (status, output) =
                    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address))
                        .await
                    {
                        Ok(Ok(_)) => (PASSING, format!("TCP connect {address}: Success")),
                        Ok(Err(e)) => (CRITICAL, format!("dial tcp {address}: {e}")),
                        Err(_) => (CRITICAL, format!("dial tcp {address}: i/o timeout")),
                    };
                store.write(|data| record_result(data, &id, status, &output));
                tokio::time::sleep(interval).await;
            }
        })
        .abort_handle(),
    }
}

async fn run_http(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    headers: &BTreeMap<String, Vec<String>>,
    body: &str,
) -> (&'static str, String) {
    let method = match reqwest::Method::from_bytes(method.as_bytes()) {
        Ok(m) => m,
        Err(_) => return (CRITICAL, format!("invalid HTTP method {method:?}")),
    };
    let mut req = client
        .request(method.clone(), url)
        .header("user-agent", "Consul Health Check");
    for (name, values) in headers {
        for v in values {
            req = req.header(name.as_str(), v.as_str());
        }
    }
    if !body.is_empty() {
        req = req.body(body.to_string());
    }
    match req.send().await {
        Err(e) => (CRITICAL, format!("{method} {url}: {e}")),
        Ok(resp) => {
            let code = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let output = format!("HTTP {method} {url}: {code} Output: {text}");
            if code.is_success() {
                (PASSING, output)
            } else if code.as_u16() == 429 {
                (WARNING, output)
            } else {
                (CRITICAL, output)
            }
        }
    }
}

async fn ttl_loop(store: Store, id: String, refresh: Arc<Notify>) {
    loop {
        let deadline = match store.lock().checks.get(&id) {
            None => return,
            Some(c) => c.ttl_deadline,
        };
        match deadline {
            None => refresh.notified().await,
            Some(deadline) => {
                tokio::select! {
                    _ = refresh.notified() => {}
                    _ = tokio::time::sleep_until(deadline.into()) => {
                        store.write(|data| {
                            let expired = data
                                .checks
                                .get(&id)
                                .and_then(|c| c.ttl_deadline)
                                .is_some_and(|d| d <= Instant::now());
                            if expired {
                                if let Some(c) = data.checks.get_mut(&id) {
                                    c.ttl_deadline = None;
                                }
                                let output = data.checks.get(&id).map(|c| c.output.clone()).unwrap_or_default();
                                let output = if output.is_empty() { "TTL expired".to_string() } else { format!("TTL expired (last output before timeout follows): {output}") };
                                set_status(data, &id, CRITICAL, &output);
                            }
                        });
                    }
                }
            }
        }
    }
}

/// Deregisters services whose check has been critical longer than its
/// `DeregisterCriticalServiceAfter`; runs every `every`.
pub async fn reap_loop(store: Store, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        store.write(|data| {
            let now = Instant::now();
            let doomed: Vec<String> = data
                .checks
                .values()
                .filter(|c| !c.service_id.is_empty())
                .filter(|c| match (c.deregister_critical_after, c.critical_since) {
                    (Some(after), Some(since)) => now.duration_since(since) >= after,
                    _ => false,
                })
                .map(|c| c.service_id.clone())
                .collect();
            for sid in doomed {
                tracing::info!(service_id = %sid, "deregistering service critical for longer than DeregisterCriticalServiceAfter");
                crate::agent::remove_service(data, &sid);
            }
        });
    }
}
