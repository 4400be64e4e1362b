//! Placement: feasibility, resources, ports, ranking and metrics.

use super::*;
use crate::constraints::{check_operand, RegexCache};
use crate::{SchedulerError, StateSnapshot};
use caravan_structs::{Affinity, Constraint, NetworkResource, Port, Spread, SpreadTarget};
use std::collections::HashMap;

#[test]
fn places_on_the_matching_node_with_full_alloc_fields() {
    let mut snap = MemSnapshot::new();
    let mut win = node("win", "dc1");
    win.attributes
        .insert("kernel.name".into(), "windows".into());
    snap.upsert_node(win);
    snap.upsert_node(node("lin", "dc1"));
    let mut j = job("app", 2);
    j.constraints.push(Constraint {
        l_target: "${attr.kernel.name}".into(),
        r_target: "linux".into(),
        operand: "=".into(),
    });
    let arc = snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    let allocs = placed(&o);
    assert_eq!(allocs.len(), 2);
    let mut names: Vec<_> = allocs.iter().map(|a| a.name.clone()).collect();
    names.sort();
    assert_eq!(names, vec!["app.web[0]", "app.web[1]"]);
    for a in &allocs {
        assert_eq!(a.node_id, "lin");
        assert_eq!(a.node_name, "name-lin");
        assert_eq!(a.client_status, "pending");
        assert_eq!(a.desired_status, "run");
        assert_eq!(a.task_group, "web");
        assert_eq!(a.eval_id, o.plan.eval_id);
        assert_eq!(a.create_time, NOW);
        assert!(Arc::ptr_eq(a.job.as_ref().unwrap(), &arc));
        assert_eq!(a.allocated_resources.tasks["server"].cpu.cpu_shares, 500);
        assert_eq!(a.allocated_resources.tasks["server"].memory.memory_mb, 256);
        assert_eq!(a.allocated_resources.shared.disk_mb, 300);
        assert!(a.allocated_resources.task_lifecycles.contains_key("server"));
        let m = a.metrics.as_ref().unwrap();
        assert!(m.nodes_evaluated >= 1);
        assert_eq!(m.nodes_in_pool, 2);
        assert_eq!(m.nodes_available.get("dc1"), Some(&2));
        assert!(m.score_meta_data.iter().any(|s| s.node_id == "lin"));
        let lin = m
            .score_meta_data
            .iter()
            .find(|s| s.node_id == "lin")
            .unwrap();
        assert!(lin.scores.contains_key("binpack"));
        // Like Nomad since 0.9, only ScoreMetaData carries scores.
        assert!(m.scores.is_empty());
    }
    assert!(o.failed_tg_allocs.is_empty());
    assert_eq!(o.queued_allocations["web"], 0);
    assert_eq!(o.annotations.desired_tg_updates["web"].place, 2);
    assert!(!o.create_blocked_eval);
}

#[test]
fn every_constraint_operator() {
    let mut cache = RegexCache::default();
    let table: &[(&str, Option<&str>, Option<&str>, bool)] = &[
        ("=", Some("a"), Some("a"), true),
        ("==", Some("a"), Some("b"), false),
        ("is", Some("a"), Some("a"), true),
        ("=", None, Some("a"), false),
        ("!=", Some("a"), Some("b"), true),
        ("not", Some("a"), Some("a"), false),
        ("!=", None, Some("a"), true),
        (">", Some("10"), Some("9"), true),
        (">", Some("b"), Some("a"), true),
        (">=", Some("9"), Some("10"), false),
        ("<", Some("9"), Some("10"), true),
        ("<", Some("9"), Some("10a"), false),
        ("<=", Some("1.5"), Some("1.5"), true),
        ("<", None, Some("1"), false),
        ("regexp", Some("ubuntu-22"), Some("^ubuntu-\\d+$"), true),
        ("regexp", Some("debian"), Some("^ubuntu"), false),
        ("regexp", Some("x"), Some("("), false),
        ("version", Some("1.5.0"), Some(">= 1.2, < 2"), true),
        ("version", Some("2.1.0"), Some(">= 1.2, < 2"), false),
        ("version", Some("1.5.0-beta"), Some(">= 1.2"), false),
        ("semver", Some("1.5.0-beta"), Some(">= 1.2"), true),
        ("semver", Some("0.3.0"), Some(">= 0.4.0"), false),
        ("set_contains", Some("a,b,c"), Some("a,c"), true),
        ("set_contains", Some("a,b"), Some("a,d"), false),
        ("set_contains_all", Some("a, b"), Some("b"), true),
        ("set_contains_any", Some("a,b"), Some("d,b"), true),
        ("set_contains_any", Some("a,b"), Some("d,e"), false),
        ("is_set", Some("x"), None, true),
        ("is_set", None, None, false),
        ("is_not_set", None, None, true),
        ("is_not_set", Some("x"), None, false),
        ("distinct_hosts", None, None, true),
        ("distinct_property", None, None, true),
        ("bogus", Some("a"), Some("a"), false),
    ];
    for (op, l, r, want) in table {
        assert_eq!(
            check_operand(&mut cache, op, *l, *r),
            *want,
            "{l:?} {op} {r:?}"
        );
    }
}

#[test]
fn filtered_constraint_is_named_in_metrics() {
    let mut snap = MemSnapshot::new();
    snap.upsert_node(node("n1", "dc1"));
    let mut j = job("app", 1);
    j.task_groups[0].tasks[0].constraints.push(Constraint {
        l_target: "${attr.kernel.name}".into(),
        r_target: "windows".into(),
        operand: "=".into(),
    });
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    let m = &o.failed_tg_allocs["web"];
    assert_eq!(m.constraint_filtered["${attr.kernel.name} = windows"], 1);
    assert_eq!(m.nodes_filtered, 1);
    assert!(o.create_blocked_eval);
    assert_eq!(o.queued_allocations["web"], 1);
}

#[test]
fn exhausted_dimensions_are_named() {
    for (cpu, mem, disk, dim) in [
        (9000, 256, 300, "cpu"),
        (100, 9000, 300, "memory"),
        (100, 256, 200_000, "disk"),
    ] {
        let mut snap = MemSnapshot::new();
        snap.upsert_node(node("n1", "dc1"));
        let mut j = job("app", 3);
        j.task_groups[0].tasks[0].resources.cpu = cpu;
        j.task_groups[0].tasks[0].resources.memory_mb = mem;
        j.task_groups[0].ephemeral_disk.size_mb = disk;
        snap.upsert_job(j.clone());
        let o = run(&snap, &j);
        let m = &o.failed_tg_allocs["web"];
        assert_eq!(m.dimension_exhausted[dim], 1, "{dim}");
        assert_eq!(m.nodes_exhausted, 1);
        assert_eq!(m.coalesced_failures, 2, "the other two are coalesced");
        assert_eq!(o.queued_allocations["web"], 3);
        assert!(placed(&o).is_empty());
    }
}

#[test]
fn capacity_counts_existing_and_planned_allocs() {
    let mut snap = MemSnapshot::new();
    snap.upsert_node(node("n1", "dc1"));
    // 4000 cpu, 500 each: 8 fit.
    let j = job("app", 10);
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    assert_eq!(placed(&o).len(), 8);
    assert_eq!(o.queued_allocations["web"], 2);
    assert_eq!(o.failed_tg_allocs["web"].dimension_exhausted["cpu"], 1);
    snap.apply_plan(&o.plan);
    let other = job("other", 1);
    snap.upsert_job(other.clone());
    let o2 = run(&snap, &other);
    assert!(placed(&o2).is_empty());
    assert_eq!(o2.failed_tg_allocs["web"].dimension_exhausted["cpu"], 1);
}

fn static_port_job(id: &str, port: u16) -> Job {
    let mut j = job(id, 1);
    j.task_groups[0].networks = vec![NetworkResource {
        reserved_ports: vec![Port {
            label: "http".into(),
            value: port,
            to: 0,
            host_network: String::new(),
        }],
        ..Default::default()
    }];
    j
}

#[test]
fn static_port_collisions() {
    let mut snap = MemSnapshot::new();
    let mut n = node("n1", "dc1");
    n.reserved_resources.networks.reserved_host_ports = "22,9000-9010".into();
    snap.upsert_node(n);
    let first = static_port_job("first", 8080);
    snap.upsert_job(first.clone());
    let o = run(&snap, &first);
    let a = placed(&o)[0].clone();
    assert_eq!(a.allocated_resources.shared.ports[0].value, 8080);
    assert_eq!(a.allocated_resources.shared.ports[0].label, "http");
    assert_eq!(a.allocated_resources.shared.ports[0].host_ip, "10.0.0.1");
    assert_eq!(
        a.allocated_resources.shared.networks[0].reserved_ports[0].value,
        8080
    );
    snap.apply_plan(&o.plan);

    let second = static_port_job("second", 8080);
    snap.upsert_job(second.clone());
    let o = run(&snap, &second);
    assert_eq!(
        o.failed_tg_allocs["web"].dimension_exhausted["network: reserved port collision http=8080"],
        1
    );

    let reserved = static_port_job("third", 9005);
    snap.upsert_job(reserved.clone());
    let o = run(&snap, &reserved);
    assert_eq!(
        o.failed_tg_allocs["web"].dimension_exhausted["network: reserved port collision http=9005"],
        1
    );
}

#[test]
fn dynamic_ports_are_assigned_in_range_and_distinct() {
    let mut snap = MemSnapshot::new();
    let mut n = node("n1", "dc1");
    n.node_resources.min_dynamic_port = 30000;
    n.node_resources.max_dynamic_port = 30003;
    snap.upsert_node(n);
    let mut j = job("app", 4);
    j.task_groups[0].tasks[0].resources.cpu = 100;
    j.task_groups[0].networks = vec![NetworkResource {
        dynamic_ports: vec![Port {
            label: "http".into(),
            to: -1,
            ..Default::default()
        }],
        ..Default::default()
    }];
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    let mut ports: Vec<u16> = placed(&o)
        .iter()
        .map(|a| {
            let p = &a.allocated_resources.shared.ports[0];
            assert_eq!(p.to, p.value as i32, "to = -1 maps to the host port");
            assert_eq!(
                a.allocated_resources.shared.networks[0].dynamic_ports[0].value,
                p.value
            );
            p.value
        })
        .collect();
    ports.sort();
    assert_eq!(ports, vec![30000, 30001, 30002, 30003]);
    // A fifth does not fit in the range.
    snap.apply_plan(&o.plan);
    let mut more = j.clone();
    more.id = "more".into();
    more.task_groups[0].count = 1;
    snap.upsert_job(more.clone());
    let o = run(&snap, &more);
    assert_eq!(
        o.failed_tg_allocs["web"].dimension_exhausted["network: dynamic port selection failed"],
        1
    );
}

#[test]
fn missing_driver_is_reported() {
    let mut snap = MemSnapshot::new();
    snap.upsert_node(node("n1", "dc1"));
    let mut unhealthy = node("n2", "dc1");
    unhealthy.drivers.get_mut("raw_exec").unwrap().healthy = false;
    snap.upsert_node(unhealthy);
    let mut legacy = node("n3", "dc1");
    legacy.drivers.clear();
    legacy.attributes.insert("driver.docker".into(), "1".into());
    snap.upsert_node(legacy);
    let mut j = job("app", 1);
    j.task_groups[0].tasks[0].driver = "docker".into();
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    let a = placed(&o);
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].node_id, "n3",
        "the legacy driver.docker attribute counts"
    );
    let m = a[0].metrics.as_ref().unwrap();
    assert!(
        m.constraint_filtered
            .get("missing drivers")
            .copied()
            .unwrap_or(0)
            <= 2
    );

    let mut none = job("none", 1);
    none.task_groups[0].tasks[0].driver = "qemu".into();
    snap.upsert_job(none.clone());
    let o = run(&snap, &none);
    let m = &o.failed_tg_allocs["web"];
    assert_eq!(m.constraint_filtered["missing drivers"], 3);
    assert_eq!(m.nodes_evaluated, 3);
}

#[test]
fn implied_constraints_name_the_missing_feature() {
    let mut snap = MemSnapshot::new();
    snap.upsert_node(node("n1", "dc1"));
    let mut j = job("app", 1);
    j.task_groups[0].tasks[0].vault = Some(serde_json::json!({"Policies": ["p"]}));
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    assert_eq!(
        o.failed_tg_allocs["web"].constraint_filtered["${attr.vault.version} semver >= 0.6.1"],
        1
    );

    let mut bridge = job("bridge", 1);
    bridge.task_groups[0].networks = vec![NetworkResource {
        mode: "bridge".into(),
        ..Default::default()
    }];
    snap.upsert_job(bridge.clone());
    let o = run(&snap, &bridge);
    assert!(o.failed_tg_allocs["web"]
        .constraint_filtered
        .contains_key("${attr.plugins.cni.version.bridge} semver >= 0.4.0"));

    let mut svc = job("svc", 1);
    svc.task_groups[0].services = vec![caravan_structs::Service {
        name: "web".into(),
        provider: "consul".into(),
        ..Default::default()
    }];
    snap.upsert_job(svc.clone());
    let o = run(&snap, &svc);
    assert!(o.failed_tg_allocs["web"]
        .constraint_filtered
        .contains_key("${attr.consul.version} semver >= 1.8.0"));

    let mut nomad = job("nomadsvc", 1);
    nomad.task_groups[0].services = vec![caravan_structs::Service {
        name: "web".into(),
        provider: "nomad".into(),
        ..Default::default()
    }];
    snap.upsert_job(nomad.clone());
    let o = run(&snap, &nomad);
    assert!(o.failed_tg_allocs["web"]
        .constraint_filtered
        .contains_key("${attr.nomad.service_discovery} = true"));
}

#[test]
fn datacenter_globs_and_pools() {
    let mut snap = MemSnapshot::new();
    snap.upsert_node(node("a", "dc1"));
    snap.upsert_node(node("b", "dc2"));
    snap.upsert_node(node("c", "eu1"));
    let mut pooled = node("d", "dc3");
    pooled.node_pool = "gpu".into();
    snap.upsert_node(pooled);
    let mut down = node("e", "dc1");
    down.status = "down".into();
    snap.upsert_node(down);
    let mut j = job("app", 6);
    j.task_groups[0].tasks[0].resources.cpu = 10;
    j.datacenters = vec!["dc*".into()];
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    let allocs = placed(&o);
    assert_eq!(allocs.len(), 6);
    assert!(allocs.iter().all(|a| a.node_id == "a" || a.node_id == "b"));
    let m = allocs[0].metrics.as_ref().unwrap();
    let want: std::collections::BTreeMap<String, u64> =
        [("dc1".to_string(), 1), ("dc2".to_string(), 1)].into();
    assert_eq!(m.nodes_available, want);
    assert_eq!(m.nodes_in_pool, 2);

    let mut gpu = job("gpu", 1);
    gpu.node_pool = "gpu".into();
    snap.upsert_job(gpu.clone());
    assert_eq!(placed(&run(&snap, &gpu))[0].node_id, "d");
    let mut all = job("all", 1);
    all.node_pool = "all".into();
    all.datacenters = vec!["dc3".into()];
    snap.upsert_job(all.clone());
    assert_eq!(placed(&run(&snap, &all))[0].node_id, "d");
}

#[test]
fn distinct_hosts_and_distinct_property() {
    let mut snap = MemSnapshot::new();
    for (id, rack) in [("n1", "r1"), ("n2", "r1"), ("n3", "r2")] {
        let mut n = node(id, "dc1");
        n.meta.insert("rack".into(), rack.into());
        snap.upsert_node(n);
    }
    let mut j = job("app", 4);
    j.constraints.push(Constraint {
        operand: "distinct_hosts".into(),
        r_target: "true".into(),
        ..Default::default()
    });
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    let mut nodes: Vec<_> = placed(&o).iter().map(|a| a.node_id.clone()).collect();
    nodes.sort();
    assert_eq!(nodes, vec!["n1", "n2", "n3"]);
    assert_eq!(
        o.failed_tg_allocs["web"].constraint_filtered["distinct_hosts"],
        3
    );

    let mut p = job("prop", 3);
    p.task_groups[0].constraints.push(Constraint {
        l_target: "${meta.rack}".into(),
        operand: "distinct_property".into(),
        r_target: String::new(),
    });
    snap.upsert_job(p.clone());
    let o = run(&snap, &p);
    assert_eq!(placed(&o).len(), 2, "one per rack");
    let m = &o.failed_tg_allocs["web"];
    assert!(m
        .constraint_filtered
        .keys()
        .any(|k| k.starts_with("distinct_property: ${meta.rack}=")));
}

#[test]
fn affinity_pulls_placements() {
    let mut snap = MemSnapshot::new();
    for i in 0..4 {
        snap.upsert_node(node(&format!("a{i}"), "dc1"));
        snap.upsert_node(node(&format!("b{i}"), "dc2"));
    }
    let mut j = job("app", 3);
    j.affinities.push(Affinity {
        l_target: "${node.datacenter}".into(),
        r_target: "dc2".into(),
        operand: "=".into(),
        weight: 100,
    });
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    for a in placed(&o) {
        assert!(a.node_id.starts_with('b'), "{} not in dc2", a.node_id);
        let m = a.metrics.as_ref().unwrap();
        let chosen = m
            .score_meta_data
            .iter()
            .find(|s| s.node_id == a.node_id)
            .unwrap();
        assert_eq!(chosen.scores["node-affinity"], 1.0);
    }
}

#[test]
fn spread_targets_and_even_spread() {
    let mut snap = MemSnapshot::new();
    for i in 0..3 {
        snap.upsert_node(node(&format!("a{i}"), "dc1"));
        snap.upsert_node(node(&format!("b{i}"), "dc2"));
    }
    let mut j = job("app", 4);
    j.task_groups[0].tasks[0].resources.cpu = 100;
    j.spreads.push(Spread {
        attribute: "${node.datacenter}".into(),
        weight: 100,
        spread_target: vec![],
    });
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    let mut by_dc: HashMap<String, usize> = HashMap::new();
    for a in placed(&o) {
        *by_dc
            .entry(snap.node(&a.node_id).unwrap().datacenter.clone())
            .or_default() += 1;
    }
    assert_eq!(by_dc.get("dc1"), Some(&2));
    assert_eq!(by_dc.get("dc2"), Some(&2));

    let mut t = job("targets", 4);
    t.task_groups[0].tasks[0].resources.cpu = 100;
    t.task_groups[0].spreads.push(Spread {
        attribute: "${node.datacenter}".into(),
        weight: 100,
        spread_target: vec![
            SpreadTarget {
                value: "dc1".into(),
                percent: 75,
            },
            SpreadTarget {
                value: "dc2".into(),
                percent: 25,
            },
        ],
    });
    snap.upsert_job(t.clone());
    let o = run(&snap, &t);
    let mut by_dc: HashMap<String, usize> = HashMap::new();
    for a in placed(&o) {
        *by_dc
            .entry(snap.node(&a.node_id).unwrap().datacenter.clone())
            .or_default() += 1;
    }
    assert_eq!(by_dc.get("dc1"), Some(&3));
    assert_eq!(by_dc.get("dc2"), Some(&1));
}

#[test]
fn binpack_and_spread_algorithms() {
    let mut snap = MemSnapshot::new();
    snap.upsert_node(node("busy", "dc1"));
    snap.upsert_node(node("idle", "dc1"));
    let filler = job("filler", 1);
    let mut filler = filler;
    filler.task_groups[0].tasks[0].resources.cpu = 2000;
    filler.task_groups[0].tasks[0].resources.memory_mb = 4000;
    snap.upsert_job(filler.clone());
    let mut o = run(&snap, &filler);
    // Force the filler onto "busy".
    for list in o.plan.node_allocation.values_mut() {
        for a in list {
            a.node_id = "busy".into();
        }
    }
    let allocs: Vec<_> = o.plan.node_allocation.values().flatten().cloned().collect();
    for a in allocs {
        snap.upsert_alloc(a);
    }
    let j = job("app", 1);
    snap.upsert_job(j.clone());
    assert_eq!(placed(&run(&snap, &j))[0].node_id, "busy");
    let spread_cfg = SchedulerConfig {
        algorithm: crate::Algorithm::Spread,
        ..cfg()
    };
    let o = process(&eval_for(&j), &snap, &spread_cfg).unwrap();
    assert_eq!(placed(&o)[0].node_id, "idle");
}

#[test]
fn system_jobs_are_unsupported() {
    let mut snap = MemSnapshot::new();
    let mut j = job("sys", 1);
    j.job_type = "system".into();
    snap.upsert_job(j.clone());
    let err = process(&eval_for(&j), &snap, &cfg()).unwrap_err();
    assert_eq!(err, SchedulerError::Unsupported("system".into()));
    assert!(err.to_string().contains("system"));
}

#[test]
fn synthetic_cluster_places_everything() {
    let snap = crate::bench::synthetic_cluster(500, 42);
    let mut snap = snap;
    let j = crate::bench::synthetic_job("bench", 200);
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    assert_eq!(placed(&o).len(), 200);
    assert!(o.failed_tg_allocs.is_empty());
    // Visits only a handful of nodes per placement.
    let max_eval = placed(&o)
        .iter()
        .map(|a| a.metrics.as_ref().unwrap().nodes_evaluated)
        .max()
        .unwrap();
    assert!(
        max_eval <= 20,
        "evaluated {max_eval} nodes for one placement"
    );
}

#[test]
fn host_volumes_must_exist_and_be_writable_when_asked() {
    let mut snap = MemSnapshot::new();
    let mut rw = node("rw", "dc1");
    rw.host_volumes.insert(
        "shared".into(),
        serde_json::json!({"Name": "shared", "Path": "/srv/shared", "ReadOnly": false}),
    );
    let mut ro = node("ro", "dc1");
    ro.host_volumes.insert(
        "shared".into(),
        serde_json::json!({"Name": "shared", "Path": "/srv/shared", "ReadOnly": true}),
    );
    snap.upsert_node(rw);
    snap.upsert_node(ro);
    snap.upsert_node(node("none", "dc1"));
    let volume = |read_only: bool| serde_json::json!({"Name": "data", "Type": "host", "Source": "shared", "ReadOnly": read_only});

    // Read-write: only the node with a writable volume.
    // One allocation per node fits (3000 of 4000 MHz).
    let mut j = job("writer", 3);
    j.task_groups[0]
        .volumes
        .insert("data".into(), volume(false));
    j.task_groups[0].tasks[0].resources.cpu = 3000;
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    let p = placed(&o);
    assert_eq!(p.len(), 1, "one node fits; the rest fail");
    assert_eq!(p[0].node_id, "rw");
    let m = &o.failed_tg_allocs["web"];
    assert_eq!(
        m.constraint_filtered
            .get(crate::feasible::FILTER_MISSING_HOST_VOLUMES),
        Some(&2),
        "{m:?}"
    );

    // Read-only requests may use either volume.
    let mut j = job("reader", 2);
    j.task_groups[0].volumes.insert("data".into(), volume(true));
    j.task_groups[0].tasks[0].resources.cpu = 3000;
    snap.upsert_job(j.clone());
    let o = run(&snap, &j);
    let mut nodes: Vec<String> = placed(&o).iter().map(|a| a.node_id.clone()).collect();
    nodes.sort();
    assert_eq!(nodes, vec!["ro".to_string(), "rw".to_string()]);
}
