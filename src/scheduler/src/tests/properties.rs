//! Property tests on random small clusters (a seeded random loop): no placement ever takes a
//! node past its capacity or onto a host port already in use, and none violates the job's
//! constraints, checked by an evaluator written here independently of the scheduler's. The
//! same scenarios also run twice — once with the snapshot's per-node index and computed node
//! classes (the fast paths), once without either — and must place every allocation on the
//! same node both times.

use super::{eval_for, NOW};
use crate::{process, Algorithm, MemSnapshot, SchedulerConfig, StateSnapshot};
use caravan_structs::{
    AllocatedResources, AllocatedSharedResources, Allocation, ComparableResources, Constraint,
    DriverInfo, Job, NetworkResource, Node, Port, Resources, Task, TaskGroup, ALLOC_CLIENT_RUNNING,
    ALLOC_DESIRED_RUN, NODE_STATUS_DOWN, NODE_STATUS_READY,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet};

const CASES: u64 = 150;
const RACKS: [&str; 4] = ["r0", "r1", "r2", "r3"];

/// One random node; `with_class` computes its class (the scheduler's per-class cache).
fn random_node(rng: &mut StdRng, i: usize, with_class: bool) -> Node {
    let mut n = Node {
        id: format!("node-{i:02}"),
        name: format!("name-{i}"),
        datacenter: ["dc1", "dc2"][rng.gen_range(0..2)].into(),
        status: if rng.gen_bool(0.1) {
            NODE_STATUS_DOWN.into()
        } else {
            NODE_STATUS_READY.into()
        },
        ..Default::default()
    };
    n.node_resources.cpu.cpu_shares = rng.gen_range(500..4000);
    n.node_resources.memory.memory_mb = rng.gen_range(256..4096);
    n.node_resources.disk.disk_mb = rng.gen_range(200..20_000);
    if rng.gen_bool(0.3) {
        n.reserved_resources.cpu.cpu_shares = rng.gen_range(0..300);
        n.reserved_resources.memory.memory_mb = rng.gen_range(0..200);
        n.reserved_resources.networks.reserved_host_ports = "8000-8002".into();
    }
    n.attributes.insert("kernel.name".into(), "linux".into());
    n.meta
        .insert("rack".into(), RACKS[rng.gen_range(0..RACKS.len())].into());
    if rng.gen_bool(0.9) {
        n.drivers.insert(
            "raw_exec".into(),
            DriverInfo {
                detected: true,
                healthy: true,
                ..Default::default()
            },
        );
    }
    if with_class {
        n.compute_class();
    }
    n
}

/// An allocation of another job already on `node` (it may even overcommit the node).
fn existing_alloc(rng: &mut StdRng, i: usize, node: &Node) -> Allocation {
    let mut tasks = BTreeMap::new();
    tasks.insert(
        "t".to_string(),
        caravan_structs::AllocatedTaskResources {
            cpu: caravan_structs::AllocatedCpuResources {
                cpu_shares: rng.gen_range(50..1500),
                reserved_cores: vec![],
            },
            memory: caravan_structs::AllocatedMemoryResources {
                memory_mb: rng.gen_range(32..1500),
                memory_max_mb: 0,
            },
            networks: vec![],
            devices: vec![],
        },
    );
    let ports = if rng.gen_bool(0.3) {
        vec![caravan_structs::AllocatedPortMapping {
            label: "p".into(),
            value: 8080,
            to: 0,
            host_ip: "10.0.0.1".into(),
        }]
    } else {
        vec![]
    };
    Allocation {
        id: format!("existing-{i}"),
        namespace: "default".into(),
        name: format!("other.g[{i}]"),
        node_id: node.id.clone(),
        job_id: "other".into(),
        task_group: "g".into(),
        desired_status: ALLOC_DESIRED_RUN.into(),
        client_status: if rng.gen_bool(0.2) {
            "complete".into()
        } else {
            ALLOC_CLIENT_RUNNING.into()
        },
        allocated_resources: AllocatedResources {
            tasks,
            shared: AllocatedSharedResources {
                ports,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The constraints a random job may carry (all checked independently by [`satisfies`]).
fn random_constraints(rng: &mut StdRng) -> Vec<Constraint> {
    let mut out = Vec::new();
    if rng.gen_bool(0.6) {
        let racks: Vec<&str> = RACKS
            .iter()
            .copied()
            .filter(|_| rng.gen_bool(0.5))
            .collect();
        out.push(Constraint {
            l_target: "${meta.rack}".into(),
            r_target: racks.join(","),
            operand: "set_contains_any".into(),
        });
    }
    if rng.gen_bool(0.3) {
        out.push(Constraint {
            l_target: "${node.datacenter}".into(),
            r_target: "dc1".into(),
            operand: "=".into(),
        });
    }
    if rng.gen_bool(0.3) {
        out.push(Constraint {
            l_target: "${node.unique.name}".into(),
            r_target: format!("name-{}", rng.gen_range(0..6)),
            operand: "!=".into(),
        });
    }
    if rng.gen_bool(0.2) {
        out.push(Constraint {
            l_target: "".into(),
            r_target: "true".into(),
            operand: "distinct_hosts".into(),
        });
    }
    out
}

fn random_job(rng: &mut StdRng, id: &str) -> Job {
    let mut groups = Vec::new();
    for g in 0..rng.gen_range(1..=2) {
        let networks = match rng.gen_range(0..3) {
            0 => vec![NetworkResource {
                dynamic_ports: vec![Port {
                    label: "http".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            1 => vec![NetworkResource {
                reserved_ports: vec![Port {
                    label: "fixed".into(),
                    value: 8080,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            _ => vec![],
        };
        groups.push(TaskGroup {
            name: format!("g{g}"),
            count: rng.gen_range(1..=12),
            networks,
            constraints: if rng.gen_bool(0.3) {
                random_constraints(rng)
            } else {
                vec![]
            },
            tasks: vec![Task {
                name: "t".into(),
                driver: "raw_exec".into(),
                resources: Resources {
                    cpu: rng.gen_range(50..1500),
                    memory_mb: rng.gen_range(32..1024),
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    let mut j = Job {
        id: id.into(),
        datacenters: vec!["dc1".into(), "dc2".into()],
        constraints: random_constraints(rng),
        task_groups: groups,
        ..Default::default()
    };
    j.canonicalize();
    j
}

/// The independent check of one constraint on one node (`distinct_hosts` is checked over
/// all of the job's allocations instead).
fn satisfies(c: &Constraint, node: &Node) -> bool {
    match (c.l_target.as_str(), c.operand.as_str()) {
        ("${meta.rack}", "set_contains_any") => {
            let rack = node.meta.get("rack").map(String::as_str).unwrap_or("");
            c.r_target.split(',').any(|r| r == rack)
        }
        ("${node.datacenter}", "=") => node.datacenter == c.r_target,
        ("${node.unique.name}", "!=") => node.name != c.r_target,
        (_, "distinct_hosts") => true,
        other => panic!("constraint {other:?} not generated by this test"),
    }
}

fn host_ports(a: &Allocation) -> HashSet<u16> {
    a.allocated_resources
        .host_ports()
        .filter(|p| *p != 0)
        .collect()
}

/// Runs one scenario: random nodes and existing allocations, then up to four random jobs or
/// new versions of them, each plan applied before the next. Checks every plan and returns where each allocation
/// went, by job and allocation name.
fn scenario(seed: u64, fast_paths: bool) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut snap = MemSnapshot::new();
    let nodes: Vec<Node> = (0..rng.gen_range(1..=10))
        .map(|i| random_node(&mut rng, i, fast_paths))
        .collect();
    for n in &nodes {
        snap.upsert_node(n.clone());
    }
    for i in 0..rng.gen_range(0..8) {
        let n = &nodes[rng.gen_range(0..nodes.len())];
        snap.upsert_alloc(existing_alloc(&mut rng, i, n));
    }
    snap.keep_node_index(fast_paths);
    let by_id: HashMap<&str, &Node> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let cfg = SchedulerConfig {
        algorithm: if rng.gen_bool(0.5) {
            Algorithm::Binpack
        } else {
            Algorithm::Spread
        },
        rng_seed: Some(seed),
        now_nanos: Some(NOW),
        ..Default::default()
    };
    let mut placements = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    for j in 0..rng.gen_range(1..=4) {
        // Sometimes a new version of an earlier job with other resources: its destructive
        // updates stop allocations and place their replacements in one plan.
        let job = match jobs.last() {
            Some(prev) if rng.gen_bool(0.4) => {
                let mut next = prev.clone();
                next.version += 1;
                next.job_modify_index += 1;
                for tg in &mut next.task_groups {
                    for t in &mut tg.tasks {
                        t.resources.cpu = rng.gen_range(50..1500);
                    }
                }
                next
            }
            _ => random_job(&mut rng, &format!("job-{j}")),
        };
        jobs.push(job.clone());
        snap.upsert_job(job.clone());
        let out = match process(&eval_for(&job), &snap, &cfg) {
            Ok(o) => o,
            Err(e) => panic!("seed {seed}: process failed: {e}"),
        };
        snap.apply_plan(&out.plan);
        for (node_id, allocs) in &out.plan.node_allocation {
            let node = by_id[node_id.as_str()];
            assert_eq!(
                node.status, NODE_STATUS_READY,
                "seed {seed}: placed on a down node"
            );
            // Capacity and ports, counting everything live on the node after the plan.
            let mut used = ComparableResources::default();
            let mut ports: HashSet<u16> = [8000, 8001, 8002]
                .into_iter()
                .filter(|_| {
                    !node
                        .reserved_resources
                        .networks
                        .reserved_host_ports
                        .is_empty()
                })
                .collect();
            let new_ids: HashSet<&str> = allocs.iter().map(|a| a.id.as_str()).collect();
            for a in snap
                .allocs_by_node(node_id)
                .iter()
                .filter(|a| !a.terminal())
            {
                used.add(&a.allocated_resources.comparable());
                if new_ids.contains(a.id.as_str()) {
                    for p in host_ports(a) {
                        assert!(
                            ports.insert(p),
                            "seed {seed}: port {p} on {node_id} given twice"
                        );
                    }
                } else {
                    ports.extend(host_ports(a));
                }
            }
            assert!(
                node.comparable_capacity().superset(&used).is_none(),
                "seed {seed}: {node_id} over capacity: {used:?} > {:?}",
                node.comparable_capacity()
            );
            for a in allocs {
                let tg = job
                    .lookup_group(&a.task_group)
                    .expect("placed group exists");
                for c in job.constraints.iter().chain(&tg.constraints) {
                    assert!(
                        satisfies(c, node),
                        "seed {seed}: {c:?} violated on {node_id}"
                    );
                }
                assert!(
                    node.drivers.contains_key("raw_exec"),
                    "seed {seed}: {node_id} lacks the driver"
                );
                placements.push((format!("{}/{}", job.id, a.name), node_id.clone()));
            }
        }
        // distinct_hosts: at most one of the job's (or the group's) allocations per node.
        let live: Vec<_> = snap
            .allocs_by_job("default", &job.id)
            .into_iter()
            .filter(|a| !a.terminal())
            .collect();
        let dh = |cs: &[Constraint]| cs.iter().any(|c| c.operand == "distinct_hosts");
        let mut per_node: HashMap<(String, Option<String>), usize> = HashMap::new();
        for a in &live {
            let tg = job.lookup_group(&a.task_group).expect("group exists");
            if dh(&job.constraints) {
                *per_node.entry((a.node_id.clone(), None)).or_default() += 1;
            }
            if dh(&tg.constraints) {
                *per_node
                    .entry((a.node_id.clone(), Some(tg.name.clone())))
                    .or_default() += 1;
            }
        }
        assert!(
            per_node.values().all(|n| *n <= 1),
            "seed {seed}: distinct_hosts violated: {per_node:?}"
        );
        // Nothing placed beyond what the job asks for.
        for tg in &job.task_groups {
            let n = live.iter().filter(|a| a.task_group == tg.name).count();
            assert!(
                n <= tg.count as usize,
                "seed {seed}: {n} > count {}",
                tg.count
            );
        }
    }
    placements.sort();
    placements
}

#[test]
fn random_clusters_never_overcommit_or_violate_constraints() {
    let mut placed = 0;
    for seed in 0..CASES {
        let fast = scenario(seed, true);
        let slow = scenario(seed, false);
        assert_eq!(
            fast, slow,
            "seed {seed}: the node index and class cache changed where allocations went"
        );
        placed += fast.len();
    }
    // The scenarios must actually place things for the checks to mean anything.
    assert!(placed > (CASES as usize) * 3, "only {placed} placements");
}
