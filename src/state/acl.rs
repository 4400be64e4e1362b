//! The ACL tables: policies by name, tokens by accessor ID (with an index by secret ID),
//! roles by ID, and the index of the one-time bootstrap. Written by the FSM only.

use super::{Table, Tables};
use caravan_structs::{AclPolicy, AclRole, AclToken};
use im::{HashMap as IMap, OrdMap};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct AclTables {
    pub policies: OrdMap<String, Arc<AclPolicy>>,
    pub tokens: OrdMap<String, Arc<AclToken>>,
    token_by_secret: IMap<String, String>,
    pub roles: OrdMap<String, Arc<AclRole>>,
    /// The index the bootstrap token was created at (0: not bootstrapped yet).
    pub bootstrap_index: u64,
}

impl AclTables {
    pub fn token_by_secret(&self, secret: &str) -> Option<Arc<AclToken>> {
        self.token_by_secret
            .get(secret)
            .and_then(|a| self.tokens.get(a))
            .cloned()
    }

    pub fn role_by_name(&self, name: &str) -> Option<Arc<AclRole>> {
        self.roles.values().find(|r| r.name == name).cloned()
    }
}

impl Tables {
    pub fn acl_upsert_policy(&mut self, index: u64, mut p: AclPolicy) {
        p.create_index = self
            .acl
            .policies
            .get(&p.name)
            .map(|old| old.create_index)
            .unwrap_or(index);
        p.modify_index = index;
        self.acl.policies.insert(p.name.clone(), Arc::new(p));
        self.touch(Table::Acl, index);
    }

    pub fn acl_delete_policies(&mut self, index: u64, names: &[String]) {
        for n in names {
            self.acl.policies.remove(n);
        }
        self.touch(Table::Acl, index);
    }

    pub fn acl_upsert_token(&mut self, index: u64, mut t: AclToken) {
        if let Some(old) = self.acl.tokens.get(&t.accessor_id).cloned() {
            t.create_index = old.create_index;
            self.acl.token_by_secret.remove(&old.secret_id);
        } else {
            t.create_index = index;
        }
        t.modify_index = index;
        self.acl
            .token_by_secret
            .insert(t.secret_id.clone(), t.accessor_id.clone());
        self.acl.tokens.insert(t.accessor_id.clone(), Arc::new(t));
        self.touch(Table::Acl, index);
    }

    pub fn acl_delete_tokens(&mut self, index: u64, accessors: &[String]) {
        for a in accessors {
            if let Some(old) = self.acl.tokens.remove(a) {
                self.acl.token_by_secret.remove(&old.secret_id);
            }
        }
        self.touch(Table::Acl, index);
    }

    pub fn acl_upsert_role(&mut self, index: u64, mut r: AclRole) {
        r.create_index = self
            .acl
            .roles
            .get(&r.id)
            .map(|old| old.create_index)
            .unwrap_or(index);
        r.modify_index = index;
        self.acl.roles.insert(r.id.clone(), Arc::new(r));
        self.touch(Table::Acl, index);
    }

    pub fn acl_delete_roles(&mut self, index: u64, ids: &[String]) {
        for id in ids {
            self.acl.roles.remove(id);
        }
        self.touch(Table::Acl, index);
    }

    pub fn acl_mark_bootstrapped(&mut self, index: u64) {
        self.acl.bootstrap_index = index;
        self.touch(Table::Acl, index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_by_secret_until_replaced_or_deleted() {
        let mut t = Tables::default();
        let tok = |secret: &str| AclToken {
            accessor_id: "acc".into(),
            secret_id: secret.into(),
            ..Default::default()
        };
        t.acl_upsert_token(5, tok("s1"));
        assert_eq!(t.acl.token_by_secret("s1").unwrap().create_index, 5);
        t.acl_upsert_token(7, tok("s2"));
        assert!(t.acl.token_by_secret("s1").is_none());
        let now = t.acl.token_by_secret("s2").unwrap();
        assert_eq!((now.create_index, now.modify_index), (5, 7));
        t.acl_delete_tokens(9, &["acc".into()]);
        assert!(t.acl.token_by_secret("s2").is_none());
        assert_eq!(t.table_index(Table::Acl), 9);
    }
}
