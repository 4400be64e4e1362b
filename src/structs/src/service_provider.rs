//! Validation of service providers, as Nomad's `Service.Validate` and `validateServices`:
//! the provider is `consul` or `nomad`, one task group uses one provider across its group and
//! task services, and `provider = "nomad"` services have only the checks the client runs
//! itself (`http`, with a relative path, and `tcp`) and no Connect.

use crate::TaskGroup;

/// Appends the provider errors of `tg` to `errs`.
pub fn validate_service_providers(tg: &TaskGroup, errs: &mut Vec<String>) {
    let services = tg
        .services
        .iter()
        .chain(tg.tasks.iter().flat_map(|t| t.services.iter()));
    let mut providers = std::collections::BTreeSet::new();
    for svc in services {
        let provider = if svc.provider.is_empty() {
            "consul"
        } else {
            svc.provider.as_str()
        };
        match provider {
            "consul" => {}
            "nomad" => {
                for c in &svc.checks {
                    if let Err(e) = nomad_check(c) {
                        errs.push(format!(
                            "Task group {}: service {:?}: {e}",
                            tg.name, svc.name
                        ));
                    }
                }
                if svc.connect.is_some() {
                    errs.push(format!(
                        "Task group {}: service {:?}: Service with provider nomad cannot include Connect blocks",
                        tg.name, svc.name
                    ));
                }
            }
            other => errs.push(format!(
                "Task group {}: service {:?}: Service provider must be \"consul\", or \"nomad\"; not {other:?}",
                tg.name, svc.name
            )),
        }
        providers.insert(provider);
    }
    if providers.len() > 1 {
        errs.push(format!(
            "Task group {}: Multiple service providers used: task group services must use the same provider (found {})",
            tg.name,
            providers.into_iter().collect::<Vec<_>>().join(" and ")
        ));
    }
}

/// Nomad's `ServiceCheck.validateNomad` (the parts that apply to Caravan's check fields).
fn nomad_check(c: &serde_json::Value) -> Result<(), String> {
    let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let kind = s("Type").to_ascii_lowercase();
    if kind != "tcp" && kind != "http" {
        return Err(format!(
            "invalid check type ({kind:?}), must be one of tcp, http"
        ));
    }
    if kind == "http" {
        let path = s("Path");
        if path.is_empty() {
            return Err("http type must have http path".into());
        }
        if path.contains("://") {
            return Err("http type must have relative http path".into());
        }
        let method = s("Method");
        const METHODS: [&str; 9] = [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
        ];
        if !method.is_empty() && !METHODS.contains(&method.to_ascii_uppercase().as_str()) {
            return Err(format!(
                "method type {method:?} not supported in Nomad http check"
            ));
        }
    }
    if c.get("Expose").and_then(|v| v.as_bool()) == Some(true) {
        return Err("expose may only be set for Consul service checks".into());
    }
    if s("OnUpdate") == "ignore_warnings" {
        return Err(
            "on_update may only be set to ignore_warnings for Consul service checks".into(),
        );
    }
    if s("AddressMode") == "driver" {
        return Err("address_mode = driver may only be set for Consul service checks".into());
    }
    if c.get("SuccessBeforePassing")
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
        != 0
    {
        return Err("success_before_passing may only be set for Consul service checks".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Service, Task};
    use serde_json::json;

    fn group(services: Vec<Service>, task_services: Vec<Service>) -> TaskGroup {
        TaskGroup {
            name: "web".into(),
            services,
            tasks: vec![Task {
                name: "t".into(),
                services: task_services,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn svc(provider: &str, checks: Vec<serde_json::Value>) -> Service {
        Service {
            name: "s".into(),
            provider: provider.into(),
            checks,
            ..Default::default()
        }
    }

    fn errors(tg: &TaskGroup) -> Vec<String> {
        let mut e = Vec::new();
        validate_service_providers(tg, &mut e);
        e
    }

    #[test]
    fn providers_and_nomad_checks_follow_nomad() {
        assert!(errors(&group(
            vec![svc("nomad", vec![])],
            vec![svc("nomad", vec![])]
        ))
        .is_empty());
        let mixed = errors(&group(
            vec![svc("consul", vec![])],
            vec![svc("nomad", vec![])],
        ));
        assert_eq!(mixed.len(), 1, "{mixed:?}");
        assert!(
            mixed[0].contains("Multiple service providers used"),
            "{mixed:?}"
        );
        assert!(mixed[0].contains("consul and nomad"), "{mixed:?}");
        let bad = errors(&group(vec![svc("etcd", vec![])], vec![]));
        assert!(bad[0].contains("not \"etcd\""), "{bad:?}");
        let script = errors(&group(
            vec![svc(
                "nomad",
                vec![json!({"Type": "script", "Command": "true"})],
            )],
            vec![],
        ));
        assert!(
            script[0].contains("invalid check type (\"script\"), must be one of tcp, http"),
            "{script:?}"
        );
        let no_path = errors(&group(
            vec![svc("nomad", vec![json!({"Type": "http"})])],
            vec![],
        ));
        assert!(
            no_path[0].contains("http type must have http path"),
            "{no_path:?}"
        );
        let ok = errors(&group(
            vec![svc(
                "nomad",
                vec![
                    json!({"Type": "http", "Path": "/health", "Method": "post"}),
                    json!({"Type": "tcp"}),
                ],
            )],
            vec![],
        ));
        assert!(ok.is_empty(), "{ok:?}");
        // Consul services keep their other check types.
        let consul = errors(&group(
            vec![svc("consul", vec![json!({"Type": "script"})])],
            vec![],
        ));
        assert!(consul.is_empty(), "{consul:?}");
    }
}
