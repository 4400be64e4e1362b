//! Resources: what tasks ask for, what nodes have, and what the scheduler allocated.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A task's `resources` block (Nomad's `api.Resources`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resources {
    #[serde(rename = "CPU")]
    pub cpu: i64,
    pub cores: i64,
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
    #[serde(rename = "MemoryMaxMB")]
    pub memory_max_mb: i64,
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
    pub networks: Vec<NetworkResource>,
    pub devices: Vec<serde_json::Value>,
    #[serde(rename = "NUMA")]
    pub numa: Option<serde_json::Value>,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu: 100,
            cores: 0,
            memory_mb: 300,
            memory_max_mb: 0,
            disk_mb: 0,
            networks: vec![],
            devices: vec![],
            numa: None,
        }
    }
}

/// A `network` block, or the network part of an allocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkResource {
    pub mode: String,
    pub device: String,
    #[serde(rename = "CIDR")]
    pub cidr: String,
    #[serde(rename = "IP")]
    pub ip: String,
    pub hostname: String,
    #[serde(rename = "MBits")]
    pub mbits: i64,
    #[serde(rename = "DNS")]
    pub dns: Option<serde_json::Value>,
    pub reserved_ports: Vec<Port>,
    pub dynamic_ports: Vec<Port>,
}

/// A port: static (`Value` set in `ReservedPorts`) or dynamic (assigned by the scheduler).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Port {
    pub label: String,
    pub value: u16,
    pub to: i32,
    pub host_network: String,
}

/// A port mapping as allocations report it (`AllocatedResources.Shared.Ports`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedPortMapping {
    pub label: String,
    pub value: u16,
    pub to: i32,
    #[serde(rename = "HostIP")]
    pub host_ip: String,
}

/// What the scheduler gave an allocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedResources {
    pub tasks: BTreeMap<String, AllocatedTaskResources>,
    pub task_lifecycles: BTreeMap<String, Option<crate::TaskLifecycle>>,
    pub shared: AllocatedSharedResources,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedTaskResources {
    pub cpu: AllocatedCpuResources,
    pub memory: AllocatedMemoryResources,
    pub networks: Vec<NetworkResource>,
    pub devices: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedCpuResources {
    pub cpu_shares: i64,
    pub reserved_cores: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedMemoryResources {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
    #[serde(rename = "MemoryMaxMB")]
    pub memory_max_mb: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedSharedResources {
    pub networks: Vec<NetworkResource>,
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
    pub ports: Vec<AllocatedPortMapping>,
}

impl AllocatedResources {
    /// The totals the scheduler compares against a node's free capacity.
    pub fn comparable(&self) -> ComparableResources {
        let mut c = ComparableResources {
            disk_mb: self.shared.disk_mb,
            ..Default::default()
        };
        for t in self.tasks.values() {
            c.cpu_shares += t.cpu.cpu_shares;
            c.memory_mb += t.memory.memory_mb;
        }
        c
    }

    /// Every host port this allocation holds.
    pub fn host_ports(&self) -> impl Iterator<Item = u16> + '_ {
        let shared = self.shared.ports.iter().map(|p| p.value);
        let nets = self
            .shared
            .networks
            .iter()
            .chain(self.tasks.values().flat_map(|t| t.networks.iter()))
            .flat_map(|n| n.reserved_ports.iter().chain(n.dynamic_ports.iter()))
            .map(|p| p.value);
        shared.chain(nets)
    }
}

/// Summed cpu, memory and disk, for capacity arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ComparableResources {
    pub cpu_shares: i64,
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
}

impl ComparableResources {
    pub fn add(&mut self, o: &ComparableResources) {
        self.cpu_shares += o.cpu_shares;
        self.memory_mb += o.memory_mb;
        self.disk_mb += o.disk_mb;
    }
    pub fn sub(&mut self, o: &ComparableResources) {
        self.cpu_shares -= o.cpu_shares;
        self.memory_mb -= o.memory_mb;
        self.disk_mb -= o.disk_mb;
    }
    /// `None` when `other` fits inside `self`; otherwise the exhausted dimension, named as
    /// Nomad names it in placement metrics (`cpu`, `memory`, `disk`).
    pub fn superset(&self, other: &ComparableResources) -> Option<&'static str> {
        if self.cpu_shares < other.cpu_shares {
            Some("cpu")
        } else if self.memory_mb < other.memory_mb {
            Some("memory")
        } else if self.disk_mb < other.disk_mb {
            Some("disk")
        } else {
            None
        }
    }
}

/// A node's total resources (`Node.NodeResources`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeResources {
    pub cpu: NodeCpuResources,
    pub memory: NodeMemoryResources,
    pub disk: NodeDiskResources,
    pub networks: Vec<NetworkResource>,
    pub devices: Vec<serde_json::Value>,
    pub min_dynamic_port: u16,
    pub max_dynamic_port: u16,
}

impl Default for NodeResources {
    fn default() -> Self {
        NodeResources {
            cpu: NodeCpuResources::default(),
            memory: NodeMemoryResources::default(),
            disk: NodeDiskResources::default(),
            networks: vec![],
            devices: vec![],
            min_dynamic_port: 20000,
            max_dynamic_port: 32000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeCpuResources {
    pub cpu_shares: i64,
    pub total_cpu_cores: u16,
    pub reservable_cpu_cores: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeMemoryResources {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeDiskResources {
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
}

/// What an operator reserved on a node (`client { reserved {} }`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeReservedResources {
    pub cpu: NodeReservedCpu,
    pub memory: NodeMemoryResources,
    pub disk: NodeDiskResources,
    pub networks: NodeReservedNetworks,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeReservedCpu {
    pub cpu_shares: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeReservedNetworks {
    /// Nomad's string form: `"22,80,8000-8100"`.
    pub reserved_host_ports: String,
}

/// Parses Nomad's port-range syntax (`"22,80,8000-8100"`).
pub fn parse_port_ranges(spec: &str) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: u16 = a
                .trim()
                .parse()
                .map_err(|_| format!("invalid port {a:?}"))?;
            let b: u16 = b
                .trim()
                .parse()
                .map_err(|_| format!("invalid port {b:?}"))?;
            if a > b {
                return Err(format!("invalid port range {part:?}"));
            }
            out.extend(a..=b);
        } else {
            out.push(part.parse().map_err(|_| format!("invalid port {part:?}"))?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(
            parse_port_ranges("22, 80,100-102").unwrap(),
            vec![22, 80, 100, 101, 102]
        );
        assert!(parse_port_ranges("5-1").is_err());
        assert!(parse_port_ranges("abc").is_err());
    }

    #[test]
    fn superset_names_the_exhausted_dimension() {
        let have = ComparableResources {
            cpu_shares: 100,
            memory_mb: 100,
            disk_mb: 100,
        };
        let want = ComparableResources {
            cpu_shares: 50,
            memory_mb: 200,
            disk_mb: 0,
        };
        assert_eq!(have.superset(&want), Some("memory"));
    }
}
