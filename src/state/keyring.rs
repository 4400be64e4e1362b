//! The keyring table: root keys by ID, each with its metadata and 32 bytes of material (the
//! AES-256-GCM key that encrypts Variables, and the seed of the Ed25519 key that signs
//! workload identities). Written by the FSM only.

use super::{Table, Tables};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const KEY_STATE_ACTIVE: &str = "active";
pub const KEY_STATE_INACTIVE: &str = "inactive";

/// Nomad's `RootKeyMeta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RootKeyMeta {
    #[serde(rename = "KeyID")]
    pub key_id: String,
    pub algorithm: String,
    /// Unix nanoseconds.
    pub create_time: i64,
    pub create_index: u64,
    pub modify_index: u64,
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootKey {
    pub meta: RootKeyMeta,
    /// Base64 of the 32-byte key material.
    pub material: String,
}

impl Tables {
    /// The active key, if the keyring has been initialised.
    pub fn active_root_key(&self) -> Option<Arc<RootKey>> {
        self.root_keys
            .values()
            .find(|k| k.meta.state == KEY_STATE_ACTIVE)
            .cloned()
    }

    /// Adds `key`; when it is active, every other key becomes inactive.
    pub fn upsert_root_key(&mut self, index: u64, mut key: RootKey) {
        key.meta.create_index = self
            .root_keys
            .get(&key.meta.key_id)
            .map(|k| k.meta.create_index)
            .unwrap_or(index);
        key.meta.modify_index = index;
        if key.meta.state == KEY_STATE_ACTIVE {
            let others: Vec<Arc<RootKey>> = self
                .root_keys
                .values()
                .filter(|k| k.meta.state == KEY_STATE_ACTIVE && k.meta.key_id != key.meta.key_id)
                .cloned()
                .collect();
            for k in others {
                let mut k = (*k).clone();
                k.meta.state = KEY_STATE_INACTIVE.into();
                k.meta.modify_index = index;
                self.root_keys.insert(k.meta.key_id.clone(), Arc::new(k));
            }
        }
        self.root_keys
            .insert(key.meta.key_id.clone(), Arc::new(key));
        self.touch(Table::Keyring, index);
    }

    pub fn delete_root_key(&mut self, index: u64, key_id: &str) {
        self.root_keys.remove(key_id);
        self.touch(Table::Keyring, index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_is_active_at_a_time() {
        let mut t = Tables::default();
        let key = |id: &str| RootKey {
            meta: RootKeyMeta {
                key_id: id.into(),
                state: KEY_STATE_ACTIVE.into(),
                ..Default::default()
            },
            material: String::new(),
        };
        t.upsert_root_key(3, key("a"));
        t.upsert_root_key(4, key("b"));
        assert_eq!(t.active_root_key().unwrap().meta.key_id, "b");
        assert_eq!(t.root_keys["a"].meta.state, KEY_STATE_INACTIVE);
        assert_eq!(t.root_keys["a"].meta.modify_index, 4);
        t.delete_root_key(5, "a");
        assert!(!t.root_keys.contains_key("a"));
        assert_eq!(t.table_index(Table::Keyring), 5);
    }
}
