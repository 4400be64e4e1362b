//! JSON renderings of nodes, services and checks, in the shapes Consul's API returns them.

use serde_json::{json, Value};

use crate::store::{Check, Data, Service};

/// The built-in `consul` service every Consul server registers.
pub fn consul_service(data: &Data) -> Service {
    Service {
        id: "consul".into(),
        name: "consul".into(),
        tags: Vec::new(),
        address: String::new(),
        port: 8300,
        meta: Default::default(),
        tagged_addresses: Default::default(),
        weights: (1, 1),
        enable_tag_override: false,
        socket_path: String::new(),
        create_index: data.node_index,
        modify_index: data.node_index,
    }
}

/// Every service in the catalog, the built-in `consul` one included.
pub fn catalog_services(data: &Data) -> Vec<Service> {
    let mut all = vec![consul_service(data)];
    all.extend(data.services.values().cloned());
    all
}

pub fn node(data: &Data) -> Value {
    let n = &data.node;
    json!({
        "ID": n.id,
        "Node": n.name,
        "Address": n.address,
        "Datacenter": n.datacenter,
        "TaggedAddresses": {
            "lan": n.address, "lan_ipv4": n.address, "wan": n.address, "wan_ipv4": n.address,
        },
        "Meta": {"consul-network-segment": ""},
        "CreateIndex": data.node_index,
        "ModifyIndex": data.node_index,
    })
}

fn weights(s: &Service) -> Value {
    json!({"Passing": s.weights.0, "Warning": s.weights.1})
}

/// An entry of `/v1/agent/services` and `/v1/agent/service/:id`.
pub fn agent_service(data: &Data, s: &Service) -> Value {
    let mut v = json!({
        "ID": s.id,
        "Service": s.name,
        "Tags": s.tags,
        "Meta": s.meta,
        "Port": s.port,
        "Address": s.address,
        "Weights": weights(s),
        "EnableTagOverride": s.enable_tag_override,
        "Datacenter": data.node.datacenter,
    });
    if !s.tagged_addresses.is_empty() {
        v["TaggedAddresses"] = Value::Object(s.tagged_addresses.clone());
    }
    if !s.socket_path.is_empty() {
        v["SocketPath"] = Value::String(s.socket_path.clone());
    }
    v
}

/// The `Service` part of a `/v1/health/service/:name` entry and of `/v1/catalog/node/:node`.
pub fn health_service(s: &Service) -> Value {
    json!({
        "ID": s.id,
        "Service": s.name,
        "Tags": s.tags,
        "Address": s.address,
        "TaggedAddresses": s.tagged_addresses,
        "Meta": s.meta,
        "Port": s.port,
        "SocketPath": s.socket_path,
        "Weights": weights(s),
        "EnableTagOverride": s.enable_tag_override,
        "Proxy": {"MeshGateway": {}, "Expose": {}},
        "Connect": {},
        "CreateIndex": s.create_index,
        "ModifyIndex": s.modify_index,
    })
}

/// An entry of `/v1/catalog/service/:name`.
pub fn catalog_service(data: &Data, s: &Service) -> Value {
    let n = &data.node;
    json!({
        "ID": n.id,
        "Node": n.name,
        "Address": n.address,
        "Datacenter": n.datacenter,
        "TaggedAddresses": {
            "lan": n.address, "lan_ipv4": n.address, "wan": n.address, "wan_ipv4": n.address,
        },
        "NodeMeta": {"consul-network-segment": ""},
        "ServiceKind": "",
        "ServiceID": s.id,
        "ServiceName": s.name,
        "ServiceTags": s.tags,
        "ServiceAddress": s.address,
        "ServiceTaggedAddresses": s.tagged_addresses,
        "ServiceWeights": weights(s),
        "ServiceMeta": s.meta,
        "ServicePort": s.port,
        "ServiceSocketPath": s.socket_path,
        "ServiceEnableTagOverride": s.enable_tag_override,
        "ServiceProxy": {"MeshGateway": {}, "Expose": {}},
        "ServiceConnect": {},
        "CreateIndex": s.create_index,
        "ModifyIndex": s.modify_index,
    })
}

/// A health check as `/v1/health/*` and `/v1/agent/checks` return it.
pub fn check(data: &Data, c: &Check) -> Value {
    let (service_name, tags) = match data.services.get(&c.service_id) {
        Some(s) => (s.name.clone(), s.tags.clone()),
        None => (String::new(), Vec::new()),
    };
    json!({
        "Node": data.node.name,
        "CheckID": c.id,
        "Name": c.name,
        "Status": c.status,
        "Notes": c.notes,
        "Output": c.output,
        "ServiceID": c.service_id,
        "ServiceName": service_name,
        "ServiceTags": tags,
        "Type": c.kind.type_name(),
        "Interval": c.definition.get("Interval").cloned().unwrap_or(Value::String(String::new())),
        "Timeout": c.definition.get("Timeout").cloned().unwrap_or(Value::String(String::new())),
        "ExposedPort": 0,
        "Definition": c.definition,
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    })
}

/// The node's `serfHealth` check, always passing on this single-node server.
pub fn serf_check(data: &Data) -> Value {
    json!({
        "Node": data.node.name,
        "CheckID": "serfHealth",
        "Name": "Serf Health Status",
        "Status": "passing",
        "Notes": "",
        "Output": "Agent alive and reachable",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "Type": "",
        "Interval": "",
        "Timeout": "",
        "ExposedPort": 0,
        "Definition": {},
        "CreateIndex": data.node_index,
        "ModifyIndex": data.node_index,
    })
}
