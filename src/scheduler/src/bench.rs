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
