//! Nomad's native service catalog (`service { provider = "nomad" }`): the registrations
//! clients make for the services of their running allocations, by registration ID, in
//! Nomad's `ServiceRegistration` shape. Clients upsert and delete them; the FSM also drops
//! those of allocations that turned terminal or were garbage-collected, and of nodes that
//! went down (see [`prune`]).

use super::{Table, Tables};
use caravan_structs::Allocation;
use im::OrdMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Nomad's `ServiceRegistration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceRegistration {
    #[serde(rename = "ID")]
    pub id: String,
    pub service_name: String,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub datacenter: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    #[serde(rename = "AllocID")]
    pub alloc_id: String,
    pub tags: Vec<String>,
    pub address: String,
    pub port: u16,
    pub create_index: u64,
    pub modify_index: u64,
}

impl ServiceRegistration {
    /// Whether the stored copy differs from `other` in anything but its indexes.
    fn same_as(&self, other: &ServiceRegistration) -> bool {
        let strip = |r: &ServiceRegistration| ServiceRegistration {
            create_index: 0,
            modify_index: 0,
            ..r.clone()
        };
        strip(self) == strip(other)
    }
}

/// Registrations by ID.
pub type ServiceMap = OrdMap<String, Arc<ServiceRegistration>>;

/// One change to the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Op")]
pub enum ServiceCommand {
    /// A client registered (or re-registered) services of its allocations.
    Upsert { services: Vec<ServiceRegistration> },
    /// Registrations removed by ID (a client deregistering, or `DELETE /v1/service/:name/:id`).
    DeleteByIds { ids: Vec<String> },
}

pub fn apply(t: &mut Tables, index: u64, cmd: &ServiceCommand) {
    match cmd {
        ServiceCommand::Upsert { services } => {
            for s in services {
                // A registration for an allocation that is already gone or finished would
                // never be removed again.
                let live = t.allocs.get(&s.alloc_id).is_some_and(|a| !gone(a));
                if !live {
                    continue;
                }
                let mut s = s.clone();
                match t.service_registrations.get(&s.id) {
                    Some(old) if old.same_as(&s) => continue,
                    Some(old) => s.create_index = old.create_index,
                    None => s.create_index = index,
                }
                s.modify_index = index;
                t.service_registrations.insert(s.id.clone(), Arc::new(s));
                t.touch(Table::Services, index);
            }
        }
        ServiceCommand::DeleteByIds { ids } => {
            for id in ids {
                if t.service_registrations.remove(id).is_some() {
                    t.touch(Table::Services, index);
                }
            }
        }
    }
}

/// Whether an allocation's registrations must go: it is finished on its client (which also
/// covers `lost`, what a down node's allocations become).
fn gone(a: &Allocation) -> bool {
    a.client_terminal()
}

/// Drops the registrations of the named allocations that are terminal or no longer exist,
/// and (with `down_node`) every registration on that node.
pub fn prune(t: &mut Tables, index: u64, alloc_ids: &[&str], down_node: Option<&str>) {
    if t.service_registrations.is_empty() {
        return;
    }
    let doomed: Vec<String> = t
        .service_registrations
        .values()
        .filter(|r| {
            down_node == Some(r.node_id.as_str())
                || (alloc_ids.contains(&r.alloc_id.as_str())
                    && t.allocs.get(&r.alloc_id).is_none_or(|a| gone(a)))
        })
        .map(|r| r.id.clone())
        .collect();
    if doomed.is_empty() {
        return;
    }
    for id in doomed {
        t.service_registrations.remove(&id);
    }
    t.touch(Table::Services, index);
}

/// Nomad's `ErrMalformedChooseParameter` wording.
pub const MALFORMED_CHOOSE: &str = "Parameter for choose must be in form '<number>|<key>'";

/// Parses `choose`'s `<number>|<key>`.
pub fn parse_choose(c: &str) -> Result<(usize, String), String> {
    let bad = || MALFORMED_CHOOSE.to_string();
    let (n, key) = c.split_once('|').ok_or_else(bad)?;
    let n: usize = n.parse().map_err(|_| bad())?;
    if key.is_empty() {
        return Err(bad());
    }
    Ok((n, key.to_string()))
}

/// Nomad's `ServiceRegistration.HashWith`: the registration's priority for `key`.
fn hash_with(r: &ServiceRegistration, key: &str) -> String {
    let mut h = Sha256::new();
    h.update((r.port as u64).to_be_bytes());
    for part in [
        &r.alloc_id,
        &r.id,
        &r.namespace,
        &r.address,
        &r.service_name,
    ] {
        h.update(part.as_bytes());
    }
    for tag in &r.tags {
        h.update(tag.as_bytes());
    }
    h.update(key.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Rendezvous hashing (Nomad's `choose`): the `n` registrations that rank highest for `key`,
/// a stable choice per key that moves little when registrations come and go.
pub fn choose(
    regs: Vec<Arc<ServiceRegistration>>,
    n: usize,
    key: &str,
) -> Vec<Arc<ServiceRegistration>> {
    let mut ranked: Vec<(String, Arc<ServiceRegistration>)> =
        regs.into_iter().map(|r| (hash_with(&r, key), r)).collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    ranked.into_iter().take(n).map(|(_, r)| r).collect()
}

impl Tables {
    /// The registrations named `name` in namespace `ns`, ordered by ID.
    pub fn services_by_name(&self, ns: &str, name: &str) -> Vec<Arc<ServiceRegistration>> {
        self.service_registrations
            .values()
            .filter(|r| r.namespace == ns && r.service_name == name)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_structs::{ALLOC_CLIENT_COMPLETE, ALLOC_CLIENT_RUNNING};

    fn reg(id: &str, alloc: &str, node: &str) -> ServiceRegistration {
        ServiceRegistration {
            id: id.into(),
            service_name: "web".into(),
            namespace: "default".into(),
            node_id: node.into(),
            alloc_id: alloc.into(),
            address: "127.0.0.1".into(),
            port: 8080,
            ..Default::default()
        }
    }

    fn alloc(t: &mut Tables, id: &str, status: &str) {
        t.upsert_alloc(
            1,
            Allocation {
                id: id.into(),
                node_id: "n1".into(),
                client_status: status.into(),
                ..Default::default()
            },
        );
    }

    #[test]
    fn upserts_keep_create_index_and_skip_unknown_or_finished_allocs() {
        let mut t = Tables::default();
        alloc(&mut t, "a1", ALLOC_CLIENT_RUNNING);
        alloc(&mut t, "a2", ALLOC_CLIENT_COMPLETE);
        let up = |services| ServiceCommand::Upsert { services };
        apply(
            &mut t,
            5,
            &up(vec![
                reg("s1", "a1", "n1"),
                reg("s2", "a2", "n1"),
                reg("s3", "nope", "n1"),
            ]),
        );
        assert_eq!(t.service_registrations.len(), 1);
        assert_eq!(t.table_index(Table::Services), 5);
        // Unchanged: no write, the index stays.
        apply(&mut t, 6, &up(vec![reg("s1", "a1", "n1")]));
        assert_eq!(t.table_index(Table::Services), 5);
        let mut moved = reg("s1", "a1", "n1");
        moved.port = 9090;
        apply(&mut t, 7, &up(vec![moved]));
        let s = t.service_registrations.get("s1").unwrap();
        assert_eq!((s.create_index, s.modify_index, s.port), (5, 7, 9090));
        apply(
            &mut t,
            8,
            &ServiceCommand::DeleteByIds {
                ids: vec!["s1".into()],
            },
        );
        assert!(t.service_registrations.is_empty());
        assert_eq!(t.table_index(Table::Services), 8);
    }

    #[test]
    fn prune_drops_terminal_missing_and_down_node_registrations() {
        let mut t = Tables::default();
        alloc(&mut t, "a1", ALLOC_CLIENT_RUNNING);
        alloc(&mut t, "a2", ALLOC_CLIENT_RUNNING);
        alloc(&mut t, "a3", ALLOC_CLIENT_RUNNING);
        let mut other = reg("s4", "a3", "n2");
        other.node_id = "n2".into();
        apply(
            &mut t,
            2,
            &ServiceCommand::Upsert {
                services: vec![reg("s1", "a1", "n1"), reg("s2", "a2", "n1"), other],
            },
        );
        // a1 still runs: pruning it changes nothing.
        prune(&mut t, 3, &["a1"], None);
        assert_eq!(t.service_registrations.len(), 3);
        alloc(&mut t, "a1", ALLOC_CLIENT_COMPLETE);
        prune(&mut t, 4, &["a1"], None);
        assert!(!t.service_registrations.contains_key("s1"));
        t.delete_alloc(5, "a2");
        prune(&mut t, 5, &["a2"], None);
        assert!(!t.service_registrations.contains_key("s2"));
        prune(&mut t, 6, &[], Some("n2"));
        assert!(t.service_registrations.is_empty());
        assert_eq!(t.table_index(Table::Services), 6);
    }
}

#[cfg(test)]
mod choose_tests {
    use super::*;

    fn reg(id: &str, port: u16) -> Arc<ServiceRegistration> {
        Arc::new(ServiceRegistration {
            id: id.into(),
            service_name: "web".into(),
            namespace: "default".into(),
            alloc_id: format!("alloc-{id}"),
            address: "10.0.0.1".into(),
            port,
            ..Default::default()
        })
    }

    #[test]
    fn choose_is_stable_per_key_and_bounded() {
        let regs: Vec<_> = (0..6).map(|i| reg(&format!("s{i}"), 8000 + i)).collect();
        let a = choose(regs.clone(), 2, "k1");
        assert_eq!(a.len(), 2);
        // The same key picks the same, whatever order the registrations come in.
        let mut rev = regs.clone();
        rev.reverse();
        let b = choose(rev, 2, "k1");
        assert_eq!(
            a.iter().map(|r| &r.id).collect::<Vec<_>>(),
            b.iter().map(|r| &r.id).collect::<Vec<_>>()
        );
        // Some key ranks them differently.
        assert!((2..40).any(|k| {
            let c = choose(regs.clone(), 2, &format!("k{k}"));
            c.iter().map(|r| &r.id).ne(a.iter().map(|r| &r.id))
        }));
        assert_eq!(choose(regs, 10, "k").len(), 6);
    }

    #[test]
    fn choose_parameter_shape() {
        assert_eq!(parse_choose("3|abc").unwrap(), (3, "abc".to_string()));
        for bad in ["3", "x|abc", "3|", "-1|k"] {
            match parse_choose(bad) {
                Err(m) => assert_eq!(m, MALFORMED_CHOOSE),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
