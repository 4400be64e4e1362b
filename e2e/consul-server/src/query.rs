//! Query parameters and headers common to Consul's endpoints (`dc`, `ns`, `partition`, `index`,
//! `wait`, `stale`/`consistent`, the ACL token) and the blocking-query loop that serves them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::duration::parse_go_duration;
use crate::error::ApiError;
use crate::store::{Data, Store};
use crate::ServerConfig;

/// Consul's default blocking wait.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// Consul's maximum blocking wait.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// The read consistency the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Default,
    Consistent,
    Stale,
}

impl Consistency {
    fn header(self) -> &'static str {
        match self {
            Consistency::Default => "leader",
            Consistency::Consistent => "consistent",
            Consistency::Stale => "stale",
        }
    }
}

/// The parsed common parameters of one request.
#[derive(Debug, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
    pub index: u64,
    pub wait: Duration,
    pub consistency: Consistency,
}

impl Params {
    /// Parses and validates the common parameters; checks the datacenter, the enterprise-only
    /// parameters and the ACL token.
    pub fn parse(
        pairs: Vec<(String, String)>,
        headers: &HeaderMap,
        config: &ServerConfig,
    ) -> Result<Params, ApiError> {
        let mut p = Params {
            pairs,
            index: 0,
            wait: DEFAULT_WAIT,
            consistency: Consistency::Default,
        };
        if let Some(dc) = p.get("dc") {
            if !dc.is_empty() && dc != config.datacenter {
                return Err(ApiError::Internal("No path to datacenter".into()));
            }
        }
        for (param, what) in [("ns", "Namespaces"), ("partition", "Partitions")] {
            if let Some(v) = p.get(param) {
                if !v.is_empty() && v != "default" {
                    return Err(ApiError::bad(format!(
                        "Invalid query parameter: {param:?} - {what} are a Consul Enterprise feature"
                    )));
                }
            }
        }
        if p.get("filter").is_some_and(|f| !f.is_empty()) {
            return Err(ApiError::bad(
                "Failed to create boolean expression evaluator: the ?filter parameter is not implemented by the Caravan Consul test server",
            ));
        }
        let stale = p.flag("stale");
        let consistent = p.flag("consistent");
        if stale && consistent {
            return Err(ApiError::bad(
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            ));
        }
        p.consistency = if stale {
            Consistency::Stale
        } else if consistent {
            Consistency::Consistent
        } else {
            Consistency::Default
        };
        if let Some(wait) = p.get("wait") {
            let d = parse_go_duration(wait).map_err(|_| ApiError::bad("Invalid wait time"))?;
            p.wait = d.min(MAX_WAIT);
            if p.wait.is_zero() {
                p.wait = DEFAULT_WAIT;
            }
        }
        if let Some(index) = p.get("index") {
            p.index = index
                .parse::<u64>()
                .map_err(|_| ApiError::bad("Invalid index"))?;
        }
        check_token(&p, headers, config)?;
        Ok(p)
    }

    /// The first value of a query parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated query parameter (`tag=a&tag=b`).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean flag: present with no value, or `true`/`1`.
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(v, "false" | "0"),
        }
    }

    /// A numeric parameter, rejected with Consul's wording when malformed.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| ApiError::bad(format!("Invalid {key} value {v:?}"))),
        }
    }
}

fn check_token(p: &Params, headers: &HeaderMap, config: &ServerConfig) -> Result<(), ApiError> {
    let Some(expected) = &config.acl_management_token else {
        return Ok(());
    };
    let header_token = headers
        .get("x-consul-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let token = header_token
        .or(bearer)
        .or_else(|| p.get("token").map(str::to_string))
        .filter(|t| !t.is_empty());
    match token {
        None => Err(ApiError::Forbidden(
            "Permission denied: anonymous token lacks permission".into(),
        )),
        Some(t) if &t == expected => Ok(()),
        Some(_) => Err(ApiError::Forbidden("ACL not found".into())),
    }
}

/// A small random stagger, like Consul's `lib.RandomStagger`, without a RNG dependency.
fn random_stagger(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    Duration::from_nanos(x % (max.as_nanos() as u64).max(1))
}

/// Serves a (possibly blocking) read. `f` computes the answer and the index it reports; when the
/// caller passed `?index=N`, the read waits (on the store's index watch) until that index moves
/// past N or `wait` (plus up to wait/16 jitter, as Consul) runs out.
pub async fn blocking<T>(
    store: &Store,
    params: &Params,
    f: impl Fn(&Data) -> (u64, T),
) -> (u64, T) {
    let mut rx = store.subscribe();
    let timeout = params.wait + random_stagger(params.wait / 16);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        rx.borrow_and_update();
        let (index, value) = {
            let data = store.lock();
            f(&data)
        };
        // Consul never reports an index of 0: clients would spin.
        let index = index.max(1);
        if params.index == 0 || index > params.index {
            return (index, value);
        }
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return (index, value);
                }
            }
            _ = tokio::time::sleep_until(deadline) => return (index, value),
        }
    }
}

/// Adds Consul's query-meta headers to a response.
pub fn with_meta(index: u64, params: &Params, body: impl IntoResponse) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert("x-consul-index", HeaderValue::from(index));
    h.insert("x-consul-knownleader", HeaderValue::from_static("true"));
    h.insert("x-consul-lastcontact", HeaderValue::from_static("0"));
    h.insert(
        "x-consul-effective-consistency",
        HeaderValue::from_static(params.consistency.header()),
    );
    resp
}
