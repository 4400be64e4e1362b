//! `namespace apply|list|status|delete`: Nomad's namespace commands over `/v1/namespaces` and
//! `/v1/namespace/:name`. `apply` takes a name (with `-description`/`-quota`) or a
//! specification file in HCL (Nomad's namespace spec) or, with `-json`, JSON.

use super::{args_and_client, fail, formatted};
use crate::client::{seg, Client};
use crate::columnize::{format_kv, format_list};
use crate::Ctx;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Nomad's HCL namespace specification (`name`, `description`, `quota`, `capabilities {}`,
/// `meta {}`; the Enterprise blocks are passed on so the server refuses them by name).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct NamespaceSpec {
    name: String,
    description: String,
    quota: String,
    capabilities: Option<CapabilitiesSpec>,
    meta: BTreeMap<String, String>,
    node_pool_config: Option<serde::de::IgnoredAny>,
    vault: Option<serde::de::IgnoredAny>,
    consul: Option<serde::de::IgnoredAny>,
    required_extra_claims: BTreeMap<String, String>,
    optional_extra_claims: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CapabilitiesSpec {
    enabled_task_drivers: Vec<String>,
    disabled_task_drivers: Vec<String>,
    enabled_network_modes: Vec<String>,
    disabled_network_modes: Vec<String>,
}

impl NamespaceSpec {
    /// The namespace as the API takes it.
    fn to_api(&self) -> Value {
        let mut v = json!({
            "Name": self.name,
            "Description": self.description,
            "Quota": self.quota,
            "Meta": self.meta,
        });
        if let Some(c) = &self.capabilities {
            v["Capabilities"] = json!({
                "EnabledTaskDrivers": c.enabled_task_drivers,
                "DisabledTaskDrivers": c.disabled_task_drivers,
                "EnabledNetworkModes": c.enabled_network_modes,
                "DisabledNetworkModes": c.disabled_network_modes,
            });
        }
        let enterprise = [
            ("NodePoolConfiguration", self.node_pool_config.is_some()),
            ("VaultConfiguration", self.vault.is_some()),
            ("ConsulConfiguration", self.consul.is_some()),
        ];
        for (key, set) in enterprise {
            if set {
                v[key] = json!({});
            }
        }
        if !self.required_extra_claims.is_empty() {
            v["RequiredExtraClaims"] = json!(self.required_extra_claims);
        }
        if !self.optional_extra_claims.is_empty() {
            v["OptionalExtraClaims"] = json!(self.optional_extra_claims);
        }
        v
    }
}

/// Parses a namespace specification file: JSON (the API's form) with `-json`, HCL otherwise.
fn parse_spec(src: &str, file: &str, json_input: bool) -> Result<Value, String> {
    if json_input {
        return serde_json::from_str(src).map_err(|e| format!("Failed to parse namespace: {e}"));
    }
    let node = caravan_hcl1::parse(file, src)
        .map_err(|e| format!("Error parsing namespace specification: {e}"))?;
    let spec: NamespaceSpec = caravan_hcl1::from_node(&node)
        .map_err(|e| format!("Error parsing namespace specification: {e}"))?;
    Ok(spec.to_api())
}

/// `caravan namespace apply [-description <d>] [-quota <q>] [-json] <name or file>`.
pub(crate) async fn apply(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let input = ctx.flags.args[0].clone();
    let description = ctx.flags.value("description").map(str::to_string);
    let quota = ctx.flags.value("quota").map(str::to_string);
    let is_file = input == "-" || std::path::Path::new(&input).is_file();
    let namespace = if is_file {
        if description.is_some() || quota.is_some() {
            ctx.ui.error("Flags are ignored when a file is specified!");
        }
        let src = if input == "-" {
            let mut buf = String::new();
            if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf) {
                return fail(ctx, "Failed to read stdin", e);
            }
            buf
        } else {
            match std::fs::read_to_string(&input) {
                Ok(s) => s,
                Err(e) => return fail(ctx, "Failed to read file", e),
            }
        };
        match parse_spec(&src, &input, ctx.flags.bool("json")) {
            Ok(v) => v,
            Err(e) => {
                ctx.ui.error(&e);
                return 1;
            }
        }
    } else {
        // A name: update what exists (or start a new one) with what the flags set.
        let path = format!("/v1/namespace/{}", seg(&input));
        let mut ns = match client.get_value(&path, &[]).await {
            Ok(v) => v,
            Err(e) if e.is_not_found() => json!({ "Name": input }),
            Err(e) => return fail(ctx, "Error looking up namespace", e),
        };
        if let Some(d) = description {
            ns["Description"] = json!(d);
        }
        if let Some(q) = quota {
            ns["Quota"] = json!(q);
        }
        ns
    };
    let name = namespace["Name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        ctx.ui.error("Namespace name required");
        return 1;
    }
    match client
        .put::<Value>(&format!("/v1/namespace/{}", seg(&name)), &namespace, &[])
        .await
    {
        Ok(_) => {
            ctx.ui
                .output(&format!("Successfully applied namespace {name:?}!"));
            0
        }
        Err(e) => fail(ctx, "Error applying namespace", e),
    }
}

/// `Name|Description` rows, by name.
fn namespace_table(namespaces: &[Value]) -> String {
    if namespaces.is_empty() {
        return "No namespaces found".into();
    }
    let mut sorted: Vec<&Value> = namespaces.iter().collect();
    sorted.sort_by_key(|n| n["Name"].as_str().unwrap_or_default().to_string());
    let mut rows = vec!["Name|Description".to_string()];
    for n in sorted {
        rows.push(format!(
            "{}|{}",
            n["Name"].as_str().unwrap_or_default(),
            n["Description"].as_str().unwrap_or_default()
        ));
    }
    format_list(&rows)
}

/// `caravan namespace list`.
pub(crate) async fn list(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let namespaces: Vec<Value> = match client.get("/v1/namespaces", &[], None).await {
        Ok((v, _)) => v,
        Err(e) => return fail(ctx, "Error retrieving namespaces", e),
    };
    if let Some(c) = formatted(ctx, &namespaces) {
        return c;
    }
    ctx.ui.output(&namespace_table(&namespaces));
    0
}

/// The namespace `name` names: the only one with that prefix, or the exact match among
/// several; otherwise the error is printed.
async fn namespace_by_prefix(ctx: &mut Ctx<'_>, client: &Client, name: &str) -> Result<Value, i32> {
    let found: Vec<Value> = match client
        .get("/v1/namespaces", &[("prefix", name.to_string())], None)
        .await
    {
        Ok((v, _)) => v,
        Err(e) => return Err(fail(ctx, "Error retrieving namespaces", e)),
    };
    match found.as_slice() {
        [] => Err(fail(
            ctx,
            "Error retrieving namespaces",
            format!("Namespace {name:?} matched no namespaces"),
        )),
        [one] => Ok(one.clone()),
        many => match many.iter().find(|n| n["Name"] == name) {
            Some(exact) => Ok(exact.clone()),
            None => {
                ctx.ui.error(&format!(
                    "Prefix matched multiple namespaces\n\n{}",
                    namespace_table(many)
                ));
                Err(1)
            }
        },
    }
}

/// `caravan namespace status <name>`.
pub(crate) async fn status(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let name = ctx.flags.args[0].clone();
    let ns = match namespace_by_prefix(ctx, &client, &name).await {
        Ok(ns) => ns,
        Err(c) => return c,
    };
    if let Some(c) = formatted(ctx, &ns) {
        return c;
    }
    let list = |key: &str, unset: &str| {
        let items: Vec<&str> = ns["Capabilities"][key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if items.is_empty() {
            unset.to_string()
        } else {
            items.join(",")
        }
    };
    let s = |key: &str| ns[key].as_str().unwrap_or_default().to_string();
    ctx.ui.output(&format_kv(&[
        format!("Name|{}", s("Name")),
        format!("Description|{}", s("Description")),
        format!("Quota|{}", s("Quota")),
        format!("Enabled Drivers|{}", list("EnabledTaskDrivers", "*")),
        format!("Disabled Drivers|{}", list("DisabledTaskDrivers", "")),
        format!("Enabled Network Modes|{}", list("EnabledNetworkModes", "*")),
        format!(
            "Disabled Network Modes|{}",
            list("DisabledNetworkModes", "")
        ),
    ]));
    if let Some(meta) = ns["Meta"].as_object().filter(|m| !m.is_empty()) {
        ctx.ui.output("\nMetadata");
        let rows: Vec<String> = meta
            .iter()
            .map(|(k, v)| format!("{k}|{}", v.as_str().unwrap_or_default()))
            .collect();
        ctx.ui.output(&format_kv(&rows));
    }
    0
}

/// `caravan namespace delete <name>`.
pub(crate) async fn delete(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let name = ctx.flags.args[0].clone();
    match client
        .delete::<Value>(&format!("/v1/namespace/{}", seg(&name)), &[])
        .await
    {
        Ok(_) => {
            ctx.ui
                .output(&format!("Successfully deleted namespace {name:?}!"));
            0
        }
        Err(e) => fail(ctx, "Error deleting namespace", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_specs_become_api_namespaces() {
        let src = r#"
name        = "prod"
description = "Production"
capabilities {
  enabled_task_drivers  = ["docker", "exec"]
  disabled_network_modes = ["host"]
}
meta {
  owner = "sre"
}
"#;
        let v = parse_spec(src, "ns.hcl", false).unwrap();
        assert_eq!(v["Name"], "prod");
        assert_eq!(v["Description"], "Production");
        assert_eq!(
            v["Capabilities"]["EnabledTaskDrivers"],
            json!(["docker", "exec"])
        );
        assert_eq!(v["Capabilities"]["DisabledNetworkModes"], json!(["host"]));
        assert_eq!(v["Meta"]["owner"], "sre");
        assert!(v.get("VaultConfiguration").is_none());

        let v = parse_spec(
            "name = \"x\"\nvault { default = \"other\" }",
            "ns.hcl",
            false,
        )
        .unwrap();
        assert_eq!(v["VaultConfiguration"], json!({}));

        let err = parse_spec("name = \"x\"\ncolour = \"red\"", "ns.hcl", false).unwrap_err();
        assert!(err.contains("ns.hcl:2"), "{err}");
        let err = parse_spec("name = ", "ns.hcl", false).unwrap_err();
        assert!(err.contains("ns.hcl:1"), "{err}");
    }
}
