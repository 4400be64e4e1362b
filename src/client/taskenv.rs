//! A task's environment: the `NOMAD_*` variables Nomad sets, the job's `env` block, node
//! attributes for `${attr.*}`/`${node.*}`/`${meta.*}` interpolation, and the interpolation
//! itself (`${...}` in env values and driver config).

use caravan_structs::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Host variables never passed to tasks (Nomad's default `env.denylist`).
const ENV_DENYLIST: &[&str] = &[
    "CONSUL_TOKEN",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_LICENSE",
    "VAULT_TOKEN",
    "VAULT_LICENSE",
    "NOMAD_LICENSE",
    "NOMAD_TOKEN",
    "CARAVAN_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

pub struct TaskEnv {
    /// The environment the task gets.
    pub env: BTreeMap<String, String>,
    /// Everything `${...}` can name: the env plus node attributes.
    pub lookup: BTreeMap<String, String>,
}

pub struct EnvInput<'a> {
    pub alloc: &'a Allocation,
    pub job: &'a Job,
    pub group: &'a TaskGroup,
    pub task: &'a Task,
    pub node: &'a Node,
    pub alloc_dir: &'a Path,
    pub task_dir: &'a Path,
    /// Whether the driver isolates the filesystem (raw_exec does not, and inherits the
    /// agent's environment as in Nomad).
    pub inherit_host_env: bool,
}

impl TaskEnv {
    pub fn build(i: &EnvInput) -> TaskEnv {
        let mut env = BTreeMap::new();
        if i.inherit_host_env {
            for (k, v) in std::env::vars() {
                if !ENV_DENYLIST.contains(&k.as_str()) {
                    env.insert(k, v);
                }
            }
        }
        let mut set = |k: &str, v: String| {
            env.insert(k.to_string(), v);
        };
        let task_dir = i.task_dir.to_string_lossy().to_string();
        set(
            "NOMAD_ALLOC_DIR",
            i.alloc_dir.join("alloc").to_string_lossy().into(),
        );
        set("NOMAD_TASK_DIR", format!("{task_dir}/local"));
        set("NOMAD_SECRETS_DIR", format!("{task_dir}/secrets"));
        set("NOMAD_ALLOC_ID", i.alloc.id.clone());
        set("NOMAD_SHORT_ALLOC_ID", short_id(&i.alloc.id).to_string());
        set("NOMAD_ALLOC_NAME", i.alloc.name.clone());
        set("NOMAD_ALLOC_INDEX", i.alloc.index().to_string());
        set("NOMAD_TASK_NAME", i.task.name.clone());
        set("NOMAD_GROUP_NAME", i.group.name.clone());
        set("NOMAD_JOB_ID", i.job.id.clone());
        set("NOMAD_JOB_NAME", i.job.name.clone());
        set("NOMAD_JOB_PARENT_ID", i.job.parent_id.clone());
        set("NOMAD_NAMESPACE", i.job.namespace.clone());
        set("NOMAD_REGION", i.job.region.clone());
        set("NOMAD_DC", i.node.datacenter.clone());
        set("NOMAD_CPU_LIMIT", i.task.resources.cpu.to_string());
        set("NOMAD_MEMORY_LIMIT", i.task.resources.memory_mb.to_string());
        if i.task.resources.memory_max_mb > 0 {
            set(
                "NOMAD_MEMORY_MAX_LIMIT",
                i.task.resources.memory_max_mb.to_string(),
            );
        }
        // Ports: the group's shared network.
        let ip = i
            .node
            .attributes
            .get("unique.network.ip-address")
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".into());
        for p in &i.alloc.allocated_resources.shared.ports {
            let host_ip = if p.host_ip.is_empty() {
                ip.clone()
            } else {
                p.host_ip.clone()
            };
            let label = p.label.replace('-', "_");
            let to = if p.to > 0 { p.to as u16 } else { p.value };
            set(&format!("NOMAD_IP_{label}"), host_ip.clone());
            set(&format!("NOMAD_PORT_{label}"), to.to_string());
            set(
                &format!("NOMAD_ADDR_{label}"),
                format!("{host_ip}:{}", p.value),
            );
            set(&format!("NOMAD_ALLOC_PORT_{label}"), to.to_string());
            set(&format!("NOMAD_HOST_IP_{label}"), host_ip.clone());
            set(&format!("NOMAD_HOST_PORT_{label}"), p.value.to_string());
            set(
                &format!("NOMAD_HOST_ADDR_{label}"),
                format!("{host_ip}:{}", p.value),
            );
        }
        // Meta: job, then group, then task, each overriding the last.
        let mut meta = i.job.meta.clone();
        meta.extend(i.group.meta.clone());
        meta.extend(i.task.meta.clone());
        for (k, v) in &meta {
            set(&format!("NOMAD_META_{k}"), v.clone());
            set(&format!("NOMAD_META_{}", k.to_uppercase()), v.clone());
        }

        let mut lookup = env.clone();
        for (k, v) in &i.node.attributes {
            lookup.insert(format!("attr.{k}"), v.clone());
        }
        for (k, v) in &i.node.meta {
            lookup.insert(format!("meta.{k}"), v.clone());
        }
        lookup.insert("node.unique.id".into(), i.node.id.clone());
        lookup.insert("node.unique.name".into(), i.node.name.clone());
        lookup.insert("node.datacenter".into(), i.node.datacenter.clone());
        lookup.insert("node.class".into(), i.node.node_class.clone());
        lookup.insert("node.pool".into(), i.node.node_pool.clone());
        lookup.insert("node.region".into(), i.job.region.clone());

        // The job's env block is interpolated against everything above.
        let mut out = TaskEnv { env, lookup };
        for (k, v) in &i.task.env {
            let v = out.interpolate(v);
            out.env.insert(k.clone(), v.clone());
            out.lookup.insert(k.clone(), v);
        }
        out
    }

    /// Replaces `${name}` with its value; unknown names stay as written, as in Nomad.
    pub fn interpolate(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) => {
                    let key = after[..end].trim();
                    let key = key
                        .strip_prefix("env[\"")
                        .and_then(|k| k.strip_suffix("\"]"))
                        .unwrap_or(key);
                    match self.lookup.get(key) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&rest[start..start + 2 + end + 1]),
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Interpolates every string inside a driver config value.
    pub fn interpolate_json(&self, v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) => serde_json::Value::String(self.interpolate(s)),
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.iter().map(|x| self.interpolate_json(x)).collect())
            }
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.interpolate_json(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_nomad_env_and_interpolates() {
        let mut job = Job {
            id: "example".into(),
            name: "example".into(),
            ..Default::default()
        };
        job.meta.insert("team".into(), "ops".into());
        let mut task = Task {
            name: "redis".into(),
            ..Default::default()
        };
        task.env.insert(
            "GREETING".into(),
            "hi ${NOMAD_TASK_NAME} on ${attr.kernel.name} ${node.nope}".into(),
        );
        let group = TaskGroup {
            name: "cache".into(),
            ..Default::default()
        };
        let mut alloc = Allocation {
            id: "0123456789abcdef".into(),
            name: "example.cache[2]".into(),
            ..Default::default()
        };
        alloc
            .allocated_resources
            .shared
            .ports
            .push(AllocatedPortMapping {
                label: "db".into(),
                value: 23456,
                to: 6379,
                host_ip: "127.0.0.1".into(),
            });
        let mut node = Node::default();
        node.attributes.insert("kernel.name".into(), "linux".into());
        let e = TaskEnv::build(&EnvInput {
            alloc: &alloc,
            job: &job,
            group: &group,
            task: &task,
            node: &node,
            alloc_dir: Path::new("/d/alloc/x"),
            task_dir: Path::new("/d/alloc/x/redis"),
            inherit_host_env: false,
        });
        assert_eq!(e.env["NOMAD_ALLOC_INDEX"], "2");
        assert_eq!(e.env["NOMAD_SHORT_ALLOC_ID"], "01234567");
        assert_eq!(e.env["NOMAD_TASK_DIR"], "/d/alloc/x/redis/local");
        assert_eq!(e.env["NOMAD_PORT_db"], "6379");
        assert_eq!(e.env["NOMAD_HOST_PORT_db"], "23456");
        assert_eq!(e.env["NOMAD_ADDR_db"], "127.0.0.1:23456");
        assert_eq!(e.env["NOMAD_META_team"], "ops");
        assert_eq!(e.env["GREETING"], "hi redis on linux ${node.nope}");
        assert!(!e.env.contains_key("PATH"), "no host env unless asked");
    }
}
