//! Port assignment for a group's `network` block on one node: static ports must be free,
//! dynamic ports are picked from the node's dynamic range, avoiding every port in use.

use caravan_structs::{AllocatedPortMapping, NetworkResource, Node, Port};
use rand::Rng;
use std::collections::HashSet;

/// The ports and network an allocation gets on a node.
#[derive(Debug, Clone, Default)]
pub struct PortOffer {
    pub network: NetworkResource,
    pub ports: Vec<AllocatedPortMapping>,
}

/// The address allocations on this node are reachable at.
pub fn node_ip(node: &Node) -> String {
    node.node_resources
        .networks
        .iter()
        .find(|n| !n.ip.is_empty())
        .map(|n| n.ip.clone())
        .or_else(|| node.attributes.get("unique.network.ip-address").cloned())
        .unwrap_or_default()
}

fn mapping(p: &Port, ip: &str) -> AllocatedPortMapping {
    AllocatedPortMapping {
        label: p.label.clone(),
        value: p.value,
        to: if p.to == -1 { p.value as i32 } else { p.to },
        host_ip: ip.to_string(),
    }
}

/// Assigns the ask's ports on the node. `used` holds every host port taken there. The error
/// is the reason Nomad reports after `network: ` in the exhausted dimensions.
pub fn assign_ports(
    ask: &NetworkResource,
    node: &Node,
    used: &HashSet<u16>,
    rng: &mut impl Rng,
) -> Result<PortOffer, String> {
    let ip = node_ip(node);
    let mut taken: HashSet<u16> = HashSet::new();
    let mut offer = NetworkResource {
        mode: if ask.mode.is_empty() {
            "host".into()
        } else {
            ask.mode.clone()
        },
        device: ask.device.clone(),
        cidr: ask.cidr.clone(),
        ip: ip.clone(),
        hostname: ask.hostname.clone(),
        mbits: ask.mbits,
        dns: ask.dns.clone(),
        reserved_ports: Vec::with_capacity(ask.reserved_ports.len()),
        dynamic_ports: Vec::with_capacity(ask.dynamic_ports.len()),
    };
    let mut ports = Vec::new();
    for p in &ask.reserved_ports {
        if p.value == 0 {
            return Err(format!("invalid port {} (out of range)", p.value));
        }
        if used.contains(&p.value) || !taken.insert(p.value) {
            return Err(format!("reserved port collision {}={}", p.label, p.value));
        }
        ports.push(mapping(p, &ip));
        offer.reserved_ports.push(p.clone());
    }
    let (mut min, mut max) = (
        node.node_resources.min_dynamic_port,
        node.node_resources.max_dynamic_port,
    );
    if min == 0 || max == 0 || min > max {
        (min, max) = (20000, 32000);
    }
    for p in &ask.dynamic_ports {
        let free = |v: u16, taken: &HashSet<u16>| !used.contains(&v) && !taken.contains(&v);
        let mut chosen = None;
        for _ in 0..20 {
            let v = rng.gen_range(min..=max);
            if free(v, &taken) {
                chosen = Some(v);
                break;
            }
        }
        if chosen.is_none() {
            chosen = (min..=max).find(|v| free(*v, &taken));
        }
        let Some(v) = chosen else {
            return Err("dynamic port selection failed".into());
        };
        taken.insert(v);
        let mut q = p.clone();
        q.value = v;
        ports.push(mapping(&q, &ip));
        offer.dynamic_ports.push(q);
    }
    Ok(PortOffer {
        network: offer,
        ports,
    })
}
