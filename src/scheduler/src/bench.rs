//! Benchmark inputs: a synthetic cluster and job, so placements per second can be measured
//! without a server (`caravan-bench scheduler`). Deterministic for a given seed.

use crate::snapshot::MemSnapshot;
use caravan_structs::{
    DriverInfo, Job, NetworkResource, Node, Port, Resources, Task, TaskGroup, NODE_STATUS_READY,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// A UUID-shaped ID drawn from `rng`.
fn synthetic_id(rng: &mut StdRng) -> String {
    let a: u128 = rng.gen();
    let h = format!("{a:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// One ready client node with typical fingerprints.
pub fn synthetic_node(i: usize, rng: &mut StdRng) -> Node {
    let mut drivers = BTreeMap::new();
    for d in ["raw_exec", "exec", "docker"] {
        drivers.insert(
            d.to_string(),
            DriverInfo {
                detected: true,
                healthy: true,
                ..Default::default()
            },
        );
    }
    let mut attributes = BTreeMap::new();
    attributes.insert("kernel.name".into(), "linux".into());
    attributes.insert("cpu.arch".into(), "amd64".into());
    attributes.insert(
        "nomad.version".into(),
        caravan_structs::NOMAD_API_VERSION.into(),
    );
    attributes.insert("unique.hostname".into(), format!("client-{i}"));
    attributes.insert(
        "unique.network.ip-address".into(),
        format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
    );
    let mut meta = BTreeMap::new();
    meta.insert("rack".into(), format!("r{}", i % 10));
    let mut node = Node {
        id: synthetic_id(rng),
        name: format!("client-{i}"),
        datacenter: format!("dc{}", 1 + i % 3),
        node_class: if i.is_multiple_of(4) {
            "large".into()
        } else {
            "standard".into()
        },
        status: NODE_STATUS_READY.into(),
        attributes,
        meta,
        drivers,
        ..Default::default()
    };
    node.node_resources.cpu.cpu_shares = [4000, 8000, 16000][rng.gen_range(0..3)];
    node.node_resources.memory.memory_mb = [8192, 16384, 32768][rng.gen_range(0..3)];
    node.node_resources.disk.disk_mb = 100 * 1024;
    node.reserved_resources.cpu.cpu_shares = 100;
    node.reserved_resources.memory.memory_mb = 256;
    node.reserved_resources.networks.reserved_host_ports = "22".into();
    node.compute_class();
    node
}

/// `nodes` ready client nodes over three datacenters, deterministic for `seed`.
pub fn synthetic_cluster(nodes: usize, seed: u64) -> MemSnapshot {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut snap = MemSnapshot::new();
    for i in 0..nodes {
        snap.upsert_node(synthetic_node(i, &mut rng));
    }
    snap
}

/// A service job with one group of `count` allocations: one `raw_exec` task (100 MHz,
/// 128 MB) with a dynamic `http` port, constrained to Linux.
pub fn synthetic_job(id: &str, count: i32) -> Job {
    let mut job = Job {
        id: id.into(),
        name: id.into(),
        datacenters: vec!["*".into()],
        constraints: vec![caravan_structs::Constraint {
            l_target: "${attr.kernel.name}".into(),
            r_target: "linux".into(),
            operand: "=".into(),
        }],
        task_groups: vec![TaskGroup {
            name: "web".into(),
            count,
            networks: vec![NetworkResource {
                dynamic_ports: vec![Port {
                    label: "http".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            tasks: vec![Task {
                name: "server".into(),
                driver: "raw_exec".into(),
                resources: Resources {
                    cpu: 100,
                    memory_mb: 128,
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    job.canonicalize();
    job
}

/// Racks in C1M's cluster (`meta.rack` = `r0` .. `r49`).
pub const C1M_RACKS: usize = 50;
/// Datacenters in C1M's cluster (`dc1`, `dc2`).
pub const C1M_DATACENTERS: usize = 2;
/// One C1M node's CPU (MHz).
pub const C1M_NODE_CPU: i64 = 128_000;
/// One C1M node's memory (MiB): 256 GiB.
pub const C1M_NODE_MEMORY_MB: i64 = 256 * 1024;
/// One C1M allocation's CPU (MHz).
pub const C1M_ALLOC_CPU: i64 = 250;
/// One C1M allocation's memory (MiB).
pub const C1M_ALLOC_MEMORY_MB: i64 = 512;

/// Node `i` of C1M's cluster: 128,000 MHz, 256 GiB, nothing reserved, in rack
/// `r{i % 50}` and datacenter `dc{1 + i % 2}`. Its disk (1 TiB) never binds.
pub fn c1m_node(i: usize, rng: &mut StdRng) -> Node {
    let mut node = synthetic_node(i, rng);
    node.datacenter = format!("dc{}", 1 + i % C1M_DATACENTERS);
    node.node_class = String::new();
    node.meta
        .insert("rack".into(), format!("r{}", i % C1M_RACKS));
    node.node_resources.cpu.cpu_shares = C1M_NODE_CPU;
    node.node_resources.memory.memory_mb = C1M_NODE_MEMORY_MB;
    node.node_resources.disk.disk_mb = 1024 * 1024;
    node.reserved_resources = Default::default();
    node.compute_class();
    node
}

/// `nodes` C1M nodes, deterministic for `seed`.
pub fn c1m_nodes(nodes: usize, seed: u64) -> Vec<Node> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..nodes).map(|i| c1m_node(i, &mut rng)).collect()
}

/// The racks C1M's jobs may use: the first half, so half the nodes are infeasible.
pub fn c1m_allowed_racks() -> Vec<String> {
    (0..C1M_RACKS / 2).map(|r| format!("r{r}")).collect()
}

/// A C1M service job: one group of `count` allocations of one `raw_exec` task (250 MHz,
/// 512 MiB, no ports), with a `set_contains_any` constraint on `${meta.rack}` that admits
/// only [`c1m_allowed_racks`].
pub fn c1m_job(id: &str, count: i32) -> Job {
    let mut job = Job {
        id: id.into(),
        name: id.into(),
        datacenters: (1..=C1M_DATACENTERS).map(|d| format!("dc{d}")).collect(),
        constraints: vec![caravan_structs::Constraint {
            l_target: "${meta.rack}".into(),
            r_target: c1m_allowed_racks().join(","),
            operand: "set_contains_any".into(),
        }],
        task_groups: vec![TaskGroup {
            name: "c1m".into(),
            count,
            tasks: vec![Task {
                name: "task".into(),
                driver: "raw_exec".into(),
                resources: Resources {
                    cpu: C1M_ALLOC_CPU,
                    memory_mb: C1M_ALLOC_MEMORY_MB,
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    job.canonicalize();
    job
}
