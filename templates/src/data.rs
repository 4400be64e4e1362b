//! Where template data comes from: one [`DataSource`] trait over [`Dependency`] values. The
//! renderer asks the source for each data function's dependency; a dependency the source has
//! not fetched yet is recorded as missing (the render is incomplete, as consul-template's),
//! and every dependency a render used is recorded so a watcher can re-render when it changes.

use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// One piece of data a template reads, named as consul-template names it in Nomad's
/// "Missing: ..." events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dependency {
    /// A Consul KV key. `block`: `key` waits for it to exist; `keyOrDefault`/`keyExists` do not.
    Kv {
        key: String,
        dc: Option<String>,
        block: bool,
    },
    /// Every key under a Consul KV prefix (`ls`, `tree`, `safeLs`, `safeTree`).
    KvList { prefix: String, dc: Option<String> },
    /// Healthy (or `any`) instances of a Consul service (`service`).
    Service {
        name: String,
        tag: Option<String>,
        dc: Option<String>,
        passing: bool,
    },
    /// The Consul catalog's services and their tags (`services`).
    Services { dc: Option<String> },
    /// A Nomad variable (`nomadVar` waits for it to exist; `nomadVarExists` does not), in the
    /// task's namespace unless `path@namespace` names one.
    NomadVar {
        path: String,
        namespace: Option<String>,
        block: bool,
    },
    /// The Nomad variables under a prefix (`nomadVarList`, `nomadVarListSafe`).
    NomadVarList {
        prefix: String,
        namespace: Option<String>,
    },
    /// The instances of a Nomad-native service in the task's namespace (`nomadService`):
    /// `[tag.]name[@region]`, and with `choose` (`"<count>|<key>"`) the servers' rendezvous
    /// selection of that many instances for the key.
    NomadService {
        name: String,
        tag: Option<String>,
        choose: Option<String>,
    },
    /// The Nomad-native services of the task's namespace and their tags (`nomadServices`).
    NomadServices,
    /// A Vault secret read with the task's Vault token (`secret "path"`): KV v1 and v2 (a KV
    /// v2 path without `data/` gets it, as consul-template's), dynamic secrets.
    VaultRead { path: String },
    /// A Vault write whose answer is the secret (`secret "path" "k=v" ...`), e.g. a dynamic
    /// credential or a transit operation.
    VaultWrite {
        path: String,
        data: Vec<(String, String)>,
    },
    /// The keys under a Vault path (`secrets "path"`).
    VaultList { path: String },
    /// A certificate issued by Vault's PKI engine (`pkiCert "pki/issue/role" "k=v" ...`).
    VaultPki {
        path: String,
        data: Vec<(String, String)>,
    },
    /// A local file read with `file` (its resolved path): read at render time, recorded so
    /// a watcher can render again when it changes.
    File { path: String },
}

/// Which service answers a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    Consul,
    Nomad,
    Vault,
    /// The client's own disk (`file`).
    Local,
}

impl Dependency {
    /// Whether the Nomad servers (not Consul) answer this dependency.
    pub fn is_nomad(&self) -> bool {
        self.kind() == SourceKind::Nomad
    }

    pub fn kind(&self) -> SourceKind {
        match self {
            Dependency::NomadVar { .. }
            | Dependency::NomadVarList { .. }
            | Dependency::NomadService { .. }
            | Dependency::NomadServices => SourceKind::Nomad,
            Dependency::VaultRead { .. }
            | Dependency::VaultWrite { .. }
            | Dependency::VaultList { .. }
            | Dependency::VaultPki { .. } => SourceKind::Vault,
            Dependency::File { .. } => SourceKind::Local,
            _ => SourceKind::Consul,
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |dc: &Option<String>| dc.as_ref().map(|d| format!("@{d}")).unwrap_or_default();
        match self {
            Dependency::Kv { key, dc, block } => {
                let kind = if *block { "block" } else { "get" };
                write!(f, "kv.{kind}({key}{})", at(dc))
            }
            Dependency::KvList { prefix, dc } => write!(f, "kv.list({prefix}{})", at(dc)),
            Dependency::Service {
                name,
                tag,
                dc,
                passing,
            } => {
                let tag = tag.as_ref().map(|t| format!("{t}.")).unwrap_or_default();
                let filter = if *passing { "passing" } else { "any" };
                write!(f, "health.service({tag}{name}{}|{filter})", at(dc))
            }
            Dependency::Services { dc } => write!(f, "catalog.services({})", at(dc)),
            Dependency::NomadVar {
                path,
                namespace,
                block,
            } => {
                let kind = if *block { "block" } else { "get" };
                write!(f, "nomad.var.{kind}({path}{})", at(namespace))
            }
            Dependency::NomadVarList { prefix, namespace } => {
                write!(f, "nomad.var.list({prefix}{})", at(namespace))
            }
            Dependency::NomadService { name, tag, choose } => {
                let tag = tag.as_ref().map(|t| format!("{t}.")).unwrap_or_default();
                let choose = choose.as_ref().map(|c| format!(":{c}")).unwrap_or_default();
                write!(f, "nomad.service({tag}{name}{choose})")
            }
            Dependency::NomadServices => write!(f, "nomad.services"),
            Dependency::VaultRead { path } => write!(f, "vault.read({path})"),
            // Key names only: the values may be secret.
            Dependency::VaultWrite { path, data } => {
                write!(f, "vault.write({path} -> {})", keys(data))
            }
            Dependency::VaultList { path } => write!(f, "vault.list({path})"),
            Dependency::VaultPki { path, data } => write!(f, "vault.pki({path} -> {})", keys(data)),
            Dependency::File { path } => write!(f, "file({path})"),
        }
    }
}

fn keys(data: &[(String, String)]) -> String {
    data.iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// What a source knows of a dependency: `None` until fetched. Values, once fetched:
/// - `Kv`: the key's value as a string, or `Null` when the key does not exist;
/// - `KvList`: an array of `{"Key", "Value", "CreateIndex", "ModifyIndex", "Flags"}` objects
///   for every key under the prefix, full key names;
/// - `Service`: an array of consul-template `HealthService` objects (`Node`, `Address`, `ID`,
///   `Name`, `Tags`, `Port`, `Status`, `ServiceMeta`, `NodeMeta`, ...);
/// - `Services`: an object of service name → tags.
/// - `NomadVar`: an object of the variable's items, or `Null` when it does not exist;
/// - `NomadVarList`: an array of variable metadata (`Namespace`, `Path`, `CreateIndex`,
///   `ModifyIndex`, `CreateTime`, `ModifyTime`);
/// - `NomadService`: an array of consul-template `NomadService` objects (`ID`, `Name`,
///   `Node`, `Address`, `Port`, `Datacenter`, `Tags`, `JobID`, `AllocID`), by name;
/// - `NomadServices`: an array of `{"Name", "Tags"}`, by name;
/// - `VaultRead`, `VaultWrite`: consul-template's secret (`RequestID`, `LeaseID`,
///   `LeaseDuration`, `Renewable`, `Data`, `Warnings`; KV v2's `Data` holds `data` and
///   `metadata`);
/// - `VaultList`: an array of key names;
/// - `VaultPki`: `{"Cert", "Key", "CA", "CAChain"}` PEM text.
pub trait DataSource {
    fn get(&self, dep: &Dependency) -> Option<Value>;
}

/// A source backed by a map: a fake for tests, and the cache a watcher fills.
#[derive(Debug, Clone, Default)]
pub struct MapSource {
    pub values: HashMap<Dependency, Value>,
}

impl MapSource {
    pub fn new() -> MapSource {
        MapSource::default()
    }

    /// Records a dependency's value; returns whether it changed.
    pub fn set(&mut self, dep: Dependency, value: Value) -> bool {
        match self.values.get(&dep) {
            Some(old) if *old == value => false,
            _ => {
                self.values.insert(dep, value);
                true
            }
        }
    }
}

impl DataSource for MapSource {
    fn get(&self, dep: &Dependency) -> Option<Value> {
        // `key` and `keyOrDefault` read the same key: either fetch answers both.
        if let Some(v) = self.values.get(dep) {
            return Some(v.clone());
        }
        if let Dependency::NomadVar {
            path,
            namespace,
            block,
        } = dep
        {
            return self
                .values
                .get(&Dependency::NomadVar {
                    path: path.clone(),
                    namespace: namespace.clone(),
                    block: !block,
                })
                .cloned();
        }
        if let Dependency::Kv { key, dc, block } = dep {
            return self
                .values
                .get(&Dependency::Kv {
                    key: key.clone(),
                    dc: dc.clone(),
                    block: !block,
                })
                .cloned();
        }
        None
    }
}

/// Splits `name@dc`.
pub(crate) fn split_dc(s: &str) -> (String, Option<String>) {
    match s.rsplit_once('@') {
        Some((n, dc)) if !dc.is_empty() => (n.to_string(), Some(dc.to_string())),
        _ => (s.to_string(), None),
    }
}

/// Parses `service`'s argument `[tag.]name[@dc]`.
pub(crate) fn parse_service(s: &str) -> (String, Option<String>, Option<String>) {
    let (rest, dc) = split_dc(s);
    match rest.split_once('.') {
        Some((tag, name)) => (name.to_string(), Some(tag.to_string()), dc),
        None => (rest, None, dc),
    }
}
