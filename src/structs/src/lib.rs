//! Caravan's data model, split by resource. Every type serialises to the JSON that Nomad's
//! HTTP API uses (PascalCase keys, `ID` suffixes, durations as nanoseconds), so API clients
//! written for Nomad read and write it unchanged.
//!
//! `Default` impls carry Nomad's defaults (what its `Canonicalize` fills in); the few defaults
//! that depend on the job type are applied by [`job::Job::canonicalize`].

pub mod acl;
pub mod alloc;
pub mod deployment;
pub mod eval;
pub mod identity;
pub mod job;
pub mod jobops;
pub mod namespace;
pub mod node;
pub mod operator;
pub mod plan;
pub mod resources;
pub mod service_provider;
pub mod time;

pub use acl::*;
pub use alloc::*;
pub use deployment::*;
pub use eval::*;
pub use identity::*;
pub use job::*;
pub use jobops::*;
pub use namespace::*;
pub use node::*;
pub use operator::*;
pub use plan::*;
pub use resources::*;

/// Nomad's Go code writes unset fields as `null`; dropping them lets the `Default` impls (and
/// so Nomad's defaults) apply when decoding. Use on every JSON that comes from outside.
pub fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// A new random ID in Nomad's UUID format.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The first 8 characters of an ID, as Nomad's CLI shows it.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The Nomad API version Caravan implements (reported as `nomad.version`).
pub const NOMAD_API_VERSION: &str = "1.9.0";
/// Caravan's own version (reported as `caravan.version`).
pub const CARAVAN_VERSION: &str = env!("CARGO_PKG_VERSION");
