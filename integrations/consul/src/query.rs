//! Per-request options (datacenter, token, consistency, blocking index and wait, tags, near)
//! and the metadata Consul returns with every read (`X-Consul-Index`, `X-Consul-KnownLeader`,
//! `X-Consul-LastContact`).

use std::time::Duration;

use http::HeaderMap;

/// Read consistency mode (`?consistent` / `?stale`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consistency {
    /// Consul's default: answered by the leader, may be stale for a split second.
    #[default]
    Default,
    /// `?consistent`: the leader confirms its leadership first.
    Consistent,
    /// `?stale`: any server answers; see [`QueryMeta::last_contact`].
    Stale,
}

/// Options of a read. Unset fields fall back to the client's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// `?dc=`.
    pub datacenter: Option<String>,
    /// `?ns=` (Consul Enterprise).
    pub namespace: Option<String>,
    /// `?partition=` (Consul Enterprise).
    pub partition: Option<String>,
    /// ACL token for this request (`X-Consul-Token`).
    pub token: Option<String>,
    pub consistency: Consistency,
    /// `?index=`: block until Consul's index passes this (0: do not block).
    pub wait_index: u64,
    /// `?wait=`: the longest a blocking query waits (Consul: default 5m, at most 10m).
    pub wait_time: Option<Duration>,
    /// `?near=`: sort by round-trip time from this node (`_agent` for the local agent).
    pub near: Option<String>,
    /// `?tag=` (repeated): only services that carry all these tags.
    pub tags: Vec<String>,
    /// `?filter=`: a Consul filter expression.
    pub filter: Option<String>,
}

/// Options of a write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    pub datacenter: Option<String>,
    pub namespace: Option<String>,
    pub partition: Option<String>,
    pub token: Option<String>,
}

/// What Consul says about a read's freshness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryMeta {
    /// `X-Consul-Index`: pass as the next [`QueryOptions::wait_index`].
    pub last_index: u64,
    /// `X-Consul-KnownLeader`.
    pub known_leader: bool,
    /// `X-Consul-LastContact`: how stale a `?stale` answer may be.
    pub last_contact: Duration,
}

impl QueryMeta {
    /// Parses Consul's query headers; a missing or malformed header reads as 0/false.
    pub fn from_headers(headers: &HeaderMap) -> QueryMeta {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        QueryMeta {
            last_index: text("x-consul-index")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            known_leader: text("x-consul-knownleader") == Some("true"),
            last_contact: Duration::from_millis(
                text("x-consul-lastcontact")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query_headers() {
        let mut h = HeaderMap::new();
        h.insert("X-Consul-Index", "42".parse().unwrap());
        h.insert("X-Consul-KnownLeader", "true".parse().unwrap());
        h.insert("X-Consul-LastContact", "1500".parse().unwrap());
        let m = QueryMeta::from_headers(&h);
        assert_eq!(m.last_index, 42);
        assert!(m.known_leader);
        assert_eq!(m.last_contact, Duration::from_millis(1500));
        let mut bad = HeaderMap::new();
        bad.insert("X-Consul-Index", "nope".parse().unwrap());
        assert_eq!(QueryMeta::from_headers(&bad), QueryMeta::default());
    }
}
