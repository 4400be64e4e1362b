//! Port bindings of a container from the group network's ports: the task's `ports` labels
//! (and the deprecated `port_map`) resolved through the `NOMAD_HOST_PORT_<label>`,
//! `NOMAD_PORT_<label>` and `NOMAD_HOST_IP_<label>` variables the client puts in the task's
//! environment.

use caravan_driver::DriverError;
use std::collections::BTreeMap;

/// One published port: host address and port to the container port, for TCP and UDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub label: String,
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

fn env_key(prefix: &str, label: &str) -> String {
    format!("{prefix}{}", label.replace('-', "_"))
}

fn port_var(env: &BTreeMap<String, String>, prefix: &str, label: &str) -> Option<u16> {
    env.get(&env_key(prefix, label))
        .and_then(|v| v.trim().parse::<u16>().ok())
        .filter(|p| *p > 0)
}

/// Resolves `ports` labels and `port_map` (label → container port) against the task env.
pub fn resolve(
    ports: &[String],
    port_map: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
) -> Result<Vec<PortMapping>, DriverError> {
    let mut out: Vec<PortMapping> = Vec::new();
    let mut add = |label: &str, container_override: Option<u16>| -> Result<(), DriverError> {
        let host_port = port_var(env, "NOMAD_HOST_PORT_", label).ok_or_else(|| {
            DriverError::InvalidConfig(format!(
                "port label {label:?} is not a port of the group's network; add \
                 `port \"{label}\" {{}}` to the group's `network` block"
            ))
        })?;
        let container_port = container_override
            .or_else(|| port_var(env, "NOMAD_PORT_", label))
            .unwrap_or(host_port);
        let host_ip = env
            .get(&env_key("NOMAD_HOST_IP_", label))
            .cloned()
            .unwrap_or_default();
        out.retain(|m| m.label != label);
        out.push(PortMapping {
            label: label.to_string(),
            host_ip,
            host_port,
            container_port,
        });
        Ok(())
    };
    for label in ports {
        add(label, None)?;
    }
    for (label, to) in port_map {
        let to: u16 = to.trim().parse().map_err(|_| {
            DriverError::InvalidConfig(format!(
                "port_map value for {label:?} must be a port number, got {to:?}"
            ))
        })?;
        add(label, Some(to))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn maps_labels_through_env() {
        let e = env(&[
            ("NOMAD_HOST_PORT_http", "23456"),
            ("NOMAD_PORT_http", "8080"),
            ("NOMAD_HOST_IP_http", "127.0.0.1"),
            ("NOMAD_HOST_PORT_my_db", "23457"),
        ]);
        let m = resolve(&["http".into(), "my-db".into()], &BTreeMap::new(), &e).unwrap();
        assert_eq!(
            m[0],
            PortMapping {
                label: "http".into(),
                host_ip: "127.0.0.1".into(),
                host_port: 23456,
                container_port: 8080
            }
        );
        assert_eq!((m[1].host_port, m[1].container_port), (23457, 23457));
    }

    #[test]
    fn unknown_label_is_explained() {
        let e = resolve(&["web".into()], &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("\"web\""), "{e}");
    }

    #[test]
    fn port_map_overrides_container_port() {
        let e = env(&[
            ("NOMAD_HOST_PORT_http", "20000"),
            ("NOMAD_PORT_http", "20000"),
        ]);
        let pm: BTreeMap<String, String> = [("http".to_string(), "80".to_string())].into();
        let m = resolve(&["http".into()], &pm, &e).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].host_port, m[0].container_port), (20000, 80));
        assert!(resolve(&[], &[("http".to_string(), "x".to_string())].into(), &e).is_err());
    }
}
