//! Restart survival: a server on a data dir is dropped and a new one opened on the same dir
//! must hold exactly the same state (compared as whole snapshot images, so every table,
//! index and timestamp counts), and continue at the next index.

use super::log_store::{LogId, LogRecord, LogStore};
use super::snapshot::SnapshotStore;
use crate::server::command::{Command, LogEntry, COMMAND_FORMAT_VERSION};
use crate::server::{Server, ServerConfig};
use crate::state::snapshot::StateImage;
use caravan_structs::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fn config(dir: &Path, threshold: u64) -> ServerConfig {
    let mut c = ServerConfig {
        data_dir: Some(dir.join("server")),
        snapshot_threshold: threshold,
        ..Default::default()
    };
    c.acl.enabled = true;
    c
}

fn image(s: &Server) -> serde_json::Value {
    serde_json::to_value(StateImage::from_tables(&s.store.snapshot())).unwrap()
}

fn job(id: &str, ns: &str) -> Job {
    let mut j = Job {
        id: id.into(),
        namespace: ns.into(),
        datacenters: vec!["dc1".into()],
        ..Default::default()
    };
    j.task_groups.push(TaskGroup {
        name: "g".into(),
        tasks: vec![Task {
            name: "t".into(),
            driver: "raw_exec".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    j
}

/// Writes one of everything the state holds, through the server's own endpoints where
/// there is one.
fn populate(s: &Server) {
    s.keyring_init().unwrap();
    s.raft_apply(Command::SchedulerSetConfig {
        config: SchedulerConfiguration::default(),
    });
    s.acl_bootstrap(None).unwrap();
    s.acl_policy_upsert(AclPolicy {
        name: "readonly".into(),
        rules: r#"namespace "default" { policy = "read" }"#.into(),
        ..Default::default()
    })
    .unwrap();
    s.namespace_upsert(Namespace {
        name: "prod".into(),
        description: "production".into(),
        ..Default::default()
    })
    .unwrap();
    s.node_pool_upsert(NodePool {
        name: "gpu".into(),
        ..Default::default()
    })
    .unwrap();
    let mut items = BTreeMap::new();
    items.insert("password".to_string(), "hunter2".to_string());
    s.var_set("default", "app/db", items, None, None).unwrap();
    s.job_register(job("web", "default"), None).unwrap();
    s.job_register(job("api", "prod"), None).unwrap();
    s.raft_apply(Command::NodeRegister {
        node: Node {
            id: "node-1".into(),
            name: "n1".into(),
            status: NODE_STATUS_READY.into(),
            ..Default::default()
        },
    });
    let web = s.store.snapshot().job("default", "web").unwrap();
    s.raft_apply(Command::ApplyPlanResults {
        allocs: vec![Allocation {
            id: "alloc-1".into(),
            job_id: "web".into(),
            namespace: "default".into(),
            node_id: "node-1".into(),
            eval_id: "eval-x".into(),
            task_group: "g".into(),
            job: Some(web),
            desired_status: ALLOC_DESIRED_RUN.into(),
            client_status: ALLOC_CLIENT_PENDING.into(),
            ..Default::default()
        }],
        deployment: Some(Deployment {
            id: "dep-1".into(),
            job_id: "web".into(),
            namespace: "default".into(),
            status: "running".into(),
            ..Default::default()
        }),
        deployment_updates: vec![],
        eval_id: "eval-x".into(),
    });
    // A GC'd node leaves its alloc behind but not in the by-node index: a restored state
    // must answer the same.
    s.raft_apply(Command::GcDelete {
        plan: crate::server::gc::GcPlan {
            nodes: vec!["node-1".into()],
            ..Default::default()
        },
    });
}

#[test]
fn everything_survives_a_restart_with_the_same_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let (before, last) = {
        let s = Server::open(config(dir.path(), 8192)).unwrap();
        assert_eq!(s.recovery.as_ref().unwrap().last_index, 0);
        populate(&s);
        assert!(s.store.snapshot().allocs_by_node("node-1").is_empty());
        (image(&s), s.last_index())
    };
    assert!(last > 10, "{last}");
    let s = Server::open(config(dir.path(), 8192)).unwrap();
    let rec = s.recovery.clone().unwrap();
    assert_eq!(
        (rec.snapshot_index, rec.replayed, rec.last_index),
        (None, last, last)
    );
    assert_eq!(image(&s), before, "state after restart differs");
    let t = s.store.snapshot();
    assert_eq!(t.index, last);
    assert!(t.job("prod", "api").is_some());
    assert!(t.acl.bootstrap_index > 0);
    assert!(t.active_root_key().is_some());
    assert!(t.allocs_by_node("node-1").is_empty());
    // The variable opens with the persisted root key.
    let v = s.var_read("default", "app/db").unwrap().unwrap();
    assert_eq!(v.items["password"], "hunter2");
    // The next write takes the next index.
    let r = s.job_register(job("next", "default"), None).unwrap();
    assert_eq!(r.job_modify_index, last + 1);
    drop(s);
    let s = Server::open(config(dir.path(), 8192)).unwrap();
    assert_eq!(s.last_index(), last + 1);
}

#[test]
fn snapshots_compact_the_log_and_restarts_start_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let s = Server::open(config(dir.path(), 10)).unwrap();
        populate(&s);
        for i in 0..30 {
            s.job_register(job(&format!("j{i}"), "default"), None)
                .unwrap();
            s.persist.as_ref().unwrap().wait_snapshot();
        }
        let p = s.persist.as_ref().unwrap();
        let snaps = p.snapshots.list().unwrap();
        assert_eq!(snaps.len(), 2, "{snaps:?}");
        let st = p.log.log_state().unwrap();
        // The log starts after the older snapshot kept, and ends at the last entry.
        assert_eq!(st.last_purged.unwrap().index, snaps[1].index);
        assert_eq!(st.last.unwrap().index, s.last_index());
        let kept = p.log.entries(..).unwrap().len() as u64;
        assert!(kept < 2 * 10 + 1, "{kept} entries kept");
        image(&s)
    };
    let s = Server::open(config(dir.path(), 10)).unwrap();
    let rec = s.recovery.clone().unwrap();
    let snap = rec.snapshot_index.unwrap();
    assert_eq!(rec.replayed, rec.last_index - snap);
    assert!(rec.replayed < 10, "{rec:?}");
    assert_eq!(image(&s), before);
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_older_one_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let s = Server::open(config(dir.path(), 8)).unwrap();
        populate(&s);
        for i in 0..20 {
            s.job_register(job(&format!("j{i}"), "default"), None)
                .unwrap();
            s.persist.as_ref().unwrap().wait_snapshot();
        }
        image(&s)
    };
    let snaps = SnapshotStore::open(&dir.path().join("server/snapshots"))
        .unwrap()
        .list()
        .unwrap();
    assert_eq!(snaps.len(), 2);
    let bytes = std::fs::read(&snaps[0].path).unwrap();
    std::fs::write(&snaps[0].path, &bytes[..bytes.len() / 2]).unwrap();
    let s = Server::open(config(dir.path(), 8)).unwrap();
    let rec = s.recovery.clone().unwrap();
    assert_eq!(rec.snapshot_index, Some(snaps[1].index));
    assert_eq!(rec.unreadable_snapshots.len(), 1);
    assert_eq!(image(&s), before);
}

#[test]
fn a_damaged_log_tail_is_dropped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (before, last) = {
        let s = Server::open(config(dir.path(), 8192)).unwrap();
        populate(&s);
        (image(&s), s.last_index())
    };
    {
        // A torn write: the entry after the last good one is garbage, and one more follows.
        let log = LogStore::open(&dir.path().join("server/raft.db")).unwrap();
        let rec = |index, payload: &[u8]| LogRecord {
            id: LogId { term: 1, index },
            payload: payload.to_vec(),
        };
        log.append(&[
            rec(last + 1, b"{\"version\":2,\"comm"),
            rec(last + 2, b"{}"),
        ])
        .unwrap();
    }
    let s = Server::open(config(dir.path(), 8192)).unwrap();
    let rec = s.recovery.clone().unwrap();
    assert_eq!((rec.last_index, rec.dropped), (last, 2));
    assert_eq!(image(&s), before);
    let log_end = s.persist.as_ref().unwrap().log.log_state().unwrap().last;
    assert_eq!(log_end.unwrap().index, last);
    let r = s.job_register(job("after", "default"), None).unwrap();
    assert_eq!(r.job_modify_index, last + 1);
}

#[test]
fn an_entry_of_a_newer_format_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let last = {
        let s = Server::open(config(dir.path(), 8192)).unwrap();
        s.raft_apply(Command::EvalUpsert { evals: vec![] })
    };
    {
        let log = LogStore::open(&dir.path().join("server/raft.db")).unwrap();
        let mut newer =
            serde_json::to_value(LogEntry::new(Command::EvalUpsert { evals: vec![] })).unwrap();
        newer["version"] = serde_json::json!(COMMAND_FORMAT_VERSION + 1);
        log.append(&[LogRecord {
            id: LogId {
                term: 1,
                index: last + 1,
            },
            payload: newer.to_string().into_bytes(),
        }])
        .unwrap();
    }
    let err = Server::open(config(dir.path(), 8192))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("upgrade this server"), "{err}");
    // Nothing was dropped: a newer server can still read it.
    let log = LogStore::open(&dir.path().join("server/raft.db")).unwrap();
    assert_eq!(log.log_state().unwrap().last.unwrap().index, last + 1);
}

#[test]
fn restoring_a_snapshot_replaces_the_state_durably_and_indexes_keep_growing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::open(config(dir.path(), 8192)).unwrap();
    populate(&s);
    let mut archive = Vec::new();
    let meta = s.snapshot_save(&mut archive).unwrap();
    assert_eq!(meta.index, s.last_index());
    assert_eq!(Server::snapshot_inspect(archive.as_slice()).unwrap(), meta);
    s.job_register(job("later", "default"), None).unwrap();
    let before_restore = s.last_index();
    // A damaged archive changes nothing.
    assert!(s.snapshot_restore(&archive[..archive.len() - 10]).is_err());
    assert!(s.store.snapshot().job("default", "later").is_some());
    let index = s.snapshot_restore(archive.as_slice()).unwrap();
    assert_eq!(index, before_restore + 1);
    let t = s.store.snapshot();
    assert!(t.job("default", "later").is_none());
    assert!(t.job("prod", "api").is_some());
    assert_eq!(t.index, index);
    // The restored state is the only snapshot; asking for one now writes nothing older.
    let p = s.persist.as_ref().unwrap();
    assert_eq!(p.snapshot_now(&s.store).unwrap().index, index);
    assert_eq!(p.snapshots.list().unwrap().len(), 1);
    let after = image(&s);
    drop(t);
    drop(s);
    let s = Server::open(config(dir.path(), 8192)).unwrap();
    assert_eq!(image(&s), after);
    assert_eq!(s.recovery.as_ref().unwrap().snapshot_index, Some(index));
    assert_eq!(
        s.raft_apply(Command::EvalUpsert { evals: vec![] }),
        index + 1
    );
}

#[test]
fn an_in_memory_server_restores_a_durable_servers_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::open(config(dir.path(), 8192)).unwrap();
    populate(&s);
    let mut archive = Vec::new();
    s.snapshot_save(&mut archive).unwrap();
    let mem = Server::new(ServerConfig::default());
    let index = mem.snapshot_restore(archive.as_slice()).unwrap();
    assert_eq!(index, s.last_index() + 1);
    let mut a = image(&s);
    let mut b = image(&mem);
    // Only the stamps of the restore differ.
    for v in [&mut a, &mut b] {
        v["Index"] = serde_json::Value::Null;
        v["TableIndex"] = serde_json::Value::Null;
    }
    assert_eq!(a, b);
}

#[cfg(unix)]
#[test]
fn the_server_dir_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::open(config(dir.path(), 2)).unwrap();
    populate(&s);
    s.persist.as_ref().unwrap().wait_snapshot();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let server = dir.path().join("server");
    assert_eq!(mode(&server), 0o700);
    assert_eq!(mode(&server.join("snapshots")), 0o700);
    assert_eq!(mode(&server.join("raft.db")), 0o600);
    let snaps = s.persist.as_ref().unwrap().snapshots.list().unwrap();
    assert!(!snaps.is_empty());
    for f in snaps {
        assert_eq!(mode(&f.path), 0o600);
    }
    let _ = Arc::strong_count(&s);
}

#[test]
fn a_damaged_database_file_is_a_clear_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Server::open(config(dir.path(), 8192)).unwrap();
        populate(&s);
    }
    let bytes = std::fs::read(dir.path().join("server/raft.db")).unwrap();
    let n = bytes.len();
    let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("server")).unwrap();
        let mut b = bytes.clone();
        f(&mut b);
        std::fs::write(d.path().join("server/raft.db"), &b).unwrap();
        let r = Server::open(config(d.path(), 8192)).map(|_| ());
        (d, r)
    };
    // Shorter than its header says (redb itself asserts on this one).
    let (_d, r) = damaged(&|b| b.truncate(n - 4096));
    let err = r.unwrap_err().to_string();
    assert!(err.contains("raft.db") && err.contains("damaged"), "{err}");
    // Overwritten pages: whatever redb makes of them, an error or a state, never a panic.
    let (_d, r) = damaged(&|b| b[n - 4096..].fill(0xab));
    if let Err(e) = r {
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}
