//! The Variables table: each variable by namespace and path, its metadata (indexes, times, the
//! lock it holds) in the clear and its items only as AES-256-GCM ciphertext with the ID of the
//! root key that sealed them. The rules of every change (check-and-set, locks) live here, in
//! one pure function the FSM applies and the server dry-runs to answer conflicts.

use super::{Table, Tables};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use im::OrdMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;

/// Nomad's `VariableLock`: who holds the variable as a lock, for how long without renewal, and
/// how long after a lapse nobody may take it. Durations are Go duration strings in JSON
/// (`"15s"`); numbers (nanoseconds) are accepted too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VariableLock {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "TTL", with = "go_duration")]
    pub ttl: i64,
    #[serde(with = "go_duration")]
    pub lock_delay: i64,
}

/// Nomad's `VariableMetadata`, the list entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VariableMeta {
    pub namespace: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<VariableLock>,
    pub create_index: u64,
    /// Unix nanoseconds.
    pub create_time: i64,
    pub modify_index: u64,
    pub modify_time: i64,
}

/// What is stored: metadata and sealed items (`nonce || ciphertext || tag` of the items' JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableEncrypted {
    pub meta: VariableMeta,
    #[serde(with = "b64")]
    pub data: Vec<u8>,
    pub key_id: String,
}

/// One change to the table. Items arrive sealed; the log never holds plaintext.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "Op")]
pub enum VarCommand {
    /// Write `var` (its `meta.lock` carries the caller's lock ID when it updates a locked
    /// variable); with `cas`, only when the stored modify index is that (0: absent).
    Set {
        var: VariableEncrypted,
        cas: Option<u64>,
    },
    Delete {
        namespace: String,
        path: String,
        cas: Option<u64>,
        lock_id: Option<String>,
    },
    /// Take the lock in `var.meta.lock`, creating the variable when absent (items as sent).
    LockAcquire { var: VariableEncrypted },
    /// Drop the lock; `lock_id` none is the servers' own release of a lapsed lock, which
    /// only drops `expected` (the lock it timed), never a newer one.
    LockRelease {
        namespace: String,
        path: String,
        lock_id: Option<String>,
        expected: Option<String>,
    },
}

/// Why a change did not happen.
#[derive(Debug, Clone, PartialEq)]
pub enum VarRefusal {
    /// Check-and-set or lock conflict: the current variable, or (when the caller may not see
    /// it, or nothing is stored) just its namespace and path.
    Conflict(Box<VariableEncrypted>),
    NotFound(String),
    /// Conflict-class error without a variable to show (HTTP 409 with this text).
    Locked(String),
}

fn zero(ns: &str, path: &str) -> VariableEncrypted {
    VariableEncrypted {
        meta: VariableMeta {
            namespace: ns.into(),
            path: path.into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Whether `held` blocks a caller presenting `presented` (Nomad's `isLocked`).
fn blocks(held: &Option<VariableLock>, presented: Option<&str>) -> bool {
    match held {
        Some(l) => presented != Some(l.id.as_str()),
        None => false,
    }
}

impl Tables {
    pub fn variable(&self, ns: &str, path: &str) -> Option<Arc<VariableEncrypted>> {
        self.variables
            .get(&(ns.to_string(), path.to_string()))
            .cloned()
    }

    fn put_variable(&mut self, index: u64, mut v: VariableEncrypted) {
        let key = (v.meta.namespace.clone(), v.meta.path.clone());
        match self.variables.get(&key) {
            Some(old) => {
                v.meta.create_index = old.meta.create_index;
                v.meta.create_time = old.meta.create_time;
            }
            None => v.meta.create_index = index,
        }
        v.meta.modify_index = index;
        self.variables.insert(key, Arc::new(v));
        self.touch(Table::Variables, index);
    }

    /// Applies one command: the FSM calls this, and the server runs it first on a copy of the
    /// tables to learn whether it would conflict.
    pub fn apply_variable(&mut self, index: u64, cmd: &VarCommand) -> Result<(), VarRefusal> {
        match cmd {
            VarCommand::Set { var, cas } => {
                let (ns, path) = (&var.meta.namespace, &var.meta.path);
                let existing = self.variable(ns, path);
                match (cas, &existing) {
                    (Some(0), Some(e)) => {
                        return Err(VarRefusal::Conflict(Box::new((**e).clone())))
                    }
                    (Some(i), None) if *i != 0 => {
                        return Err(VarRefusal::Conflict(Box::new(zero(ns, path))))
                    }
                    (Some(i), Some(e)) if *i != e.meta.modify_index => {
                        return Err(VarRefusal::Conflict(Box::new((**e).clone())))
                    }
                    _ => {}
                }
                let mut v = var.clone();
                match &existing {
                    Some(e) => {
                        let presented = var.meta.lock.as_ref().map(|l| l.id.as_str());
                        if blocks(&e.meta.lock, presented) {
                            return Err(VarRefusal::Conflict(Box::new(zero(ns, path))));
                        }
                        // A write by the holder keeps the lock as it was taken.
                        v.meta.lock = e.meta.lock.clone();
                    }
                    None => v.meta.lock = None,
                }
                self.put_variable(index, v);
                Ok(())
            }
            VarCommand::Delete {
                namespace,
                path,
                cas,
                lock_id,
            } => {
                let existing = self.variable(namespace, path);
                match (cas, &existing) {
                    (Some(0), None) | (None, None) => return Ok(()),
                    (Some(_), None) => {
                        return Err(VarRefusal::Conflict(Box::new(zero(namespace, path))))
                    }
                    (Some(i), Some(e)) if *i != e.meta.modify_index => {
                        return Err(VarRefusal::Conflict(Box::new((**e).clone())))
                    }
                    _ => {}
                }
                if let Some(e) = existing {
                    if blocks(&e.meta.lock, lock_id.as_deref()) {
                        return Err(VarRefusal::Conflict(Box::new(zero(namespace, path))));
                    }
                }
                self.variables.remove(&(namespace.clone(), path.clone()));
                self.touch(Table::Variables, index);
                Ok(())
            }
            VarCommand::LockAcquire { var } => {
                let (ns, path) = (&var.meta.namespace, &var.meta.path);
                let presented = var.meta.lock.as_ref().map(|l| l.id.as_str());
                let mut v = var.clone();
                if let Some(e) = self.variable(ns, path) {
                    if blocks(&e.meta.lock, presented) {
                        return Err(VarRefusal::Conflict(Box::new(zero(ns, path))));
                    }
                    // Taking a lock on an existing variable keeps its items.
                    if v.data.is_empty() {
                        v.data = e.data.clone();
                        v.key_id = e.key_id.clone();
                    }
                }
                self.put_variable(index, v);
                Ok(())
            }
            VarCommand::LockRelease {
                namespace,
                path,
                lock_id,
                expected,
            } => {
                let Some(e) = self.variable(namespace, path) else {
                    return Err(VarRefusal::NotFound("variable doesn't exist".into()));
                };
                let Some(held) = &e.meta.lock else {
                    return Err(VarRefusal::Locked("variable doesn't hold a lock".into()));
                };
                let wanted = lock_id.as_deref().or(expected.as_deref());
                if wanted.is_some_and(|id| id != held.id) {
                    let mut z = zero(namespace, path);
                    z.meta.lock = Some(VariableLock::default());
                    return Err(VarRefusal::Conflict(Box::new(z)));
                }
                let mut v = (*e).clone();
                v.meta.lock = None;
                self.put_variable(index, v);
                Ok(())
            }
        }
    }
}

/// Table storage: ordered by namespace then path, so prefix listings are ordered.
pub type VariableMap = OrdMap<(String, String), Arc<VariableEncrypted>>;

mod b64 {
    use super::*;
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// Go's `time.Duration` in JSON as Nomad's `VariableLock` writes it: a duration string, empty
/// for zero; reads a string or a number of nanoseconds.
mod go_duration {
    use super::*;
    pub fn serialize<S: Serializer>(n: &i64, s: S) -> Result<S::Ok, S::Error> {
        if *n == 0 {
            s.serialize_str("")
        } else {
            s.serialize_str(&caravan_structs::time::format_duration(*n))
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s.is_empty() => Ok(0),
            serde_json::Value::String(s) => {
                caravan_structs::time::parse_duration(&s).map_err(serde::de::Error::custom)
            }
            serde_json::Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or_else(|| serde::de::Error::custom("invalid duration")),
            serde_json::Value::Null => Ok(0),
            other => Err(serde::de::Error::custom(format!(
                "invalid duration {other}: want a string like \"15s\" or nanoseconds"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(path: &str, data: &[u8]) -> VariableEncrypted {
        VariableEncrypted {
            meta: VariableMeta {
                namespace: "default".into(),
                path: path.into(),
                ..Default::default()
            },
            data: data.to_vec(),
            key_id: "k".into(),
        }
    }

    #[test]
    fn check_and_set_and_locks() {
        let mut t = Tables::default();
        let set = |v, cas| VarCommand::Set { var: v, cas };
        t.apply_variable(3, &set(var("a", b"1"), Some(0))).unwrap();
        assert_eq!(t.variable("default", "a").unwrap().meta.create_index, 3);
        // cas 0 on an existing variable, and a stale index, conflict with the current one.
        let e = t
            .apply_variable(4, &set(var("a", b"2"), Some(0)))
            .unwrap_err();
        assert!(matches!(e, VarRefusal::Conflict(ref c) if c.meta.modify_index == 3));
        assert!(t.apply_variable(4, &set(var("a", b"2"), Some(9))).is_err());
        t.apply_variable(5, &set(var("a", b"2"), Some(3))).unwrap();
        let a = t.variable("default", "a").unwrap();
        assert_eq!((a.meta.create_index, a.meta.modify_index), (3, 5));
        assert_eq!(t.table_index(Table::Variables), 5);

        // A lock blocks writes and other acquirers until released.
        let mut l = var("a", b"");
        l.meta.lock = Some(VariableLock {
            id: "L1".into(),
            ttl: 10_000_000_000,
            lock_delay: 0,
        });
        t.apply_variable(6, &VarCommand::LockAcquire { var: l.clone() })
            .unwrap();
        assert_eq!(t.variable("default", "a").unwrap().data, b"2", "items kept");
        let mut other = l.clone();
        other.meta.lock.as_mut().unwrap().id = "L2".into();
        assert!(t
            .apply_variable(7, &VarCommand::LockAcquire { var: other })
            .is_err());
        assert!(t.apply_variable(7, &set(var("a", b"3"), None)).is_err());
        let del = |lock_id: Option<&str>| VarCommand::Delete {
            namespace: "default".into(),
            path: "a".into(),
            cas: None,
            lock_id: lock_id.map(String::from),
        };
        assert!(t.apply_variable(7, &del(None)).is_err());
        let release = |id: &str| VarCommand::LockRelease {
            namespace: "default".into(),
            path: "a".into(),
            lock_id: Some(id.into()),
            expected: None,
        };
        assert!(t.apply_variable(7, &release("L2")).is_err());
        t.apply_variable(8, &release("L1")).unwrap();
        assert!(t.variable("default", "a").unwrap().meta.lock.is_none());
        assert_eq!(
            t.apply_variable(9, &release("L1")),
            Err(VarRefusal::Locked("variable doesn't hold a lock".into()))
        );
        t.apply_variable(9, &del(None)).unwrap();
        assert!(t.variable("default", "a").is_none());
        // Delete with cas on something absent conflicts; cas 0 on absent is fine.
        let cas_del = |cas| VarCommand::Delete {
            namespace: "default".into(),
            path: "a".into(),
            cas: Some(cas),
            lock_id: None,
        };
        assert!(t.apply_variable(10, &cas_del(4)).is_err());
        assert!(t.apply_variable(10, &cas_del(0)).is_ok());
    }

    #[test]
    fn lock_durations_read_strings_and_numbers() {
        let l: VariableLock =
            serde_json::from_str(r#"{"ID":"x","TTL":"15s","LockDelay":1000000000}"#).unwrap();
        assert_eq!((l.ttl, l.lock_delay), (15_000_000_000, 1_000_000_000));
        let back = serde_json::to_value(&l).unwrap();
        assert_eq!(back["TTL"], "15s");
        assert_eq!(back["LockDelay"], "1s");
        assert!(serde_json::from_str::<VariableLock>(r#"{"TTL":"soon"}"#).is_err());
    }
}
