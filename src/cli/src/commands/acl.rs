//! `acl bootstrap`, `acl policy apply|list|info|delete`, `acl token
//! create|list|info|self|update|delete` and `acl role create|list|info|update|delete`, with
//! Nomad's output (key = value blocks and column lists) and `-json`/`-t`.

use super::{args_and_client, fail, formatted};
use crate::client::seg;
use crate::columnize::{format_kv, format_list};
use crate::Ctx;
use serde_json::{json, Value};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| s(x, "Name").to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Nomad's token block.
fn format_token(t: &Value) -> String {
    let expiry = match s(t, "ExpirationTime") {
        "" => "<none>".to_string(),
        e => e.to_string(),
    };
    let mut lines = vec![
        format!("Accessor ID|{}", s(t, "AccessorID")),
        format!("Secret ID|{}", s(t, "SecretID")),
        format!("Name|{}", s(t, "Name")),
        format!("Type|{}", s(t, "Type")),
        format!("Global|{}", t["Global"].as_bool().unwrap_or(false)),
        format!("Create Time|{}", s(t, "CreateTime")),
        format!("Expiry Time|{expiry}"),
        format!("Create Index|{}", t["CreateIndex"].as_u64().unwrap_or(0)),
        format!("Modify Index|{}", t["ModifyIndex"].as_u64().unwrap_or(0)),
    ];
    if s(t, "Type") == "management" {
        lines.push("Policies|n/a".into());
        lines.push("Roles|n/a".into());
        return format_kv(&lines);
    }
    lines.push(format!("Policies|[{}]", names(&t["Policies"]).join(" ")));
    let mut out = format_kv(&lines);
    let roles = t["Roles"].as_array().cloned().unwrap_or_default();
    out.push_str("\n\nRoles\n");
    if roles.is_empty() {
        out.push_str("<none>");
    } else {
        let mut rows = vec!["ID|Name".to_string()];
        rows.extend(
            roles
                .iter()
                .map(|r| format!("{}|{}", s(r, "ID"), s(r, "Name"))),
        );
        out.push_str(&format_list(&rows));
    }
    out
}

fn format_role(r: &Value) -> String {
    format_kv(&[
        format!("ID|{}", s(r, "ID")),
        format!("Name|{}", s(r, "Name")),
        format!("Description|{}", s(r, "Description")),
        format!("Policies|{}", names(&r["Policies"]).join(",")),
        format!("Create Index|{}", r["CreateIndex"].as_u64().unwrap_or(0)),
        format!("Modify Index|{}", r["ModifyIndex"].as_u64().unwrap_or(0)),
    ])
}

fn show(ctx: &mut Ctx<'_>, v: &Value, text: impl FnOnce(&Value) -> String) -> i32 {
    if let Some(code) = formatted(ctx, v) {
        return code;
    }
    ctx.ui.output(&text(v));
    0
}

pub(crate) async fn bootstrap(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let mut body = json!({});
    if let Some(file) = ctx.flags.args.first().cloned() {
        let secret = if file == "-" {
            let mut buf = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf);
            buf
        } else {
            match std::fs::read_to_string(&file) {
                Ok(s) => s,
                Err(e) => return fail(ctx, &format!("Error reading {file}"), e),
            }
        };
        body = json!({"BootstrapSecret": secret.trim()});
    }
    match client.put::<Value>("/v1/acl/bootstrap", &body, &[]).await {
        Ok(t) => show(ctx, &t, format_token),
        Err(e) => fail(ctx, "Error bootstrapping", e),
    }
}

pub(crate) async fn policy_apply(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 2, 2) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let (name, path) = (ctx.flags.args[0].clone(), ctx.flags.args[1].clone());
    let rules = if path == "-" {
        let mut buf = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf);
        buf
    } else {
        match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => return fail(ctx, &format!("Error reading policy file {path}"), e),
        }
    };
    let description = ctx.flags.value("description").unwrap_or("").to_string();
    let mut body = json!({"Name": name, "Description": description, "Rules": rules});
    // `-job` (with `-group`, `-task`) binds the policy to that job's workload identities, in
    // the `-namespace` (or `NOMAD_NAMESPACE`, else default) namespace.
    let flag = |n: &str| ctx.flags.value(n).unwrap_or("").to_string();
    let (job, group, task) = (flag("job"), flag("group"), flag("task"));
    if job.is_empty() && !(group.is_empty() && task.is_empty()) {
        ctx.ui.error("-group and -task require -job");
        return 1;
    }
    if !job.is_empty() {
        let namespace = ctx
            .flags
            .value("namespace")
            .map(str::to_string)
            .or_else(|| ctx.env_var(&["CARAVAN_NAMESPACE", "NOMAD_NAMESPACE"]))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        body["JobACL"] =
            json!({"Namespace": namespace, "JobID": job, "Group": group, "Task": task});
    }
    match client
        .put::<Value>(&format!("/v1/acl/policy/{}", seg(&name)), &body, &[])
        .await
    {
        Ok(_) => {
            ctx.ui
                .output(&format!("Successfully wrote {name:?} ACL policy!"));
            0
        }
        Err(e) => fail(ctx, "Error writing ACL policy", e),
    }
}

pub(crate) async fn policy_list(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client.get_value("/v1/acl/policies", &[]).await {
        Ok(v) => show(ctx, &v, |v| {
            let list = v.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                return "No policies found".into();
            }
            let mut rows = vec!["Name|Description".to_string()];
            rows.extend(
                list.iter()
                    .map(|p| format!("{}|{}", s(p, "Name"), s(p, "Description"))),
            );
            format_list(&rows)
        }),
        Err(e) => fail(ctx, "Error listing ACL policies", e),
    }
}

pub(crate) async fn policy_info(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let name = ctx.flags.args[0].clone();
    match client
        .get_value(&format!("/v1/acl/policy/{}", seg(&name)), &[])
        .await
    {
        Ok(v) => show(ctx, &v, |p| {
            format!(
                "{}\n\nRules\n\n{}",
                format_kv(&[
                    format!("Name|{}", s(p, "Name")),
                    format!("Description|{}", s(p, "Description")),
                    format!("CreateIndex|{}", p["CreateIndex"].as_u64().unwrap_or(0)),
                    format!("ModifyIndex|{}", p["ModifyIndex"].as_u64().unwrap_or(0)),
                ]),
                s(p, "Rules").trim_end()
            )
        }),
        Err(e) => fail(ctx, "Error fetching ACL policy", e),
    }
}

pub(crate) async fn policy_delete(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let name = ctx.flags.args[0].clone();
    match client
        .delete::<Value>(&format!("/v1/acl/policy/{}", seg(&name)), &[])
        .await
    {
        Ok(_) => {
            ctx.ui
                .output(&format!("Successfully deleted {name:?} ACL policy!"));
            0
        }
        Err(e) => fail(ctx, "Error deleting ACL policy", e),
    }
}

/// `-role-name`/`-role-id` flags as role links.
fn role_links(ctx: &Ctx<'_>) -> Vec<Value> {
    let mut links: Vec<Value> = ctx
        .flags
        .values("role-id")
        .iter()
        .map(|id| json!({"ID": id}))
        .collect();
    links.extend(
        ctx.flags
            .values("role-name")
            .iter()
            .map(|n| json!({"Name": n})),
    );
    links
}

pub(crate) async fn token_create(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let ttl = match ctx.flags.value("ttl").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => match caravan_structs::time::parse_duration(t) {
            Ok(n) => n,
            Err(e) => return fail(ctx, "Error parsing -ttl", e),
        },
    };
    let body = json!({
        "Name": ctx.flags.value("name").unwrap_or(""),
        "Type": ctx.flags.value("type").filter(|t| !t.is_empty()).unwrap_or("client"),
        "Policies": ctx.flags.values("policy"),
        "Roles": role_links(ctx),
        "Global": ctx.flags.bool("global"),
        "ExpirationTTL": ttl,
    });
    match client.put::<Value>("/v1/acl/token", &body, &[]).await {
        Ok(t) => show(ctx, &t, format_token),
        Err(e) => fail(ctx, "Error creating token", e),
    }
}

pub(crate) async fn token_list(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client.get_value("/v1/acl/tokens", &[]).await {
        Ok(v) => show(ctx, &v, |v| {
            let list = v.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                return "No tokens found".into();
            }
            let mut rows = vec!["Name|Type|Global|Accessor ID|Expired".to_string()];
            let now = caravan_structs::time::now_nanos();
            rows.extend(list.iter().map(|t| {
                let expired = crate::timefmt::parse_rfc3339(s(t, "ExpirationTime"))
                    .is_some_and(|at| at <= now);
                format!(
                    "{}|{}|{}|{}|{}",
                    s(t, "Name"),
                    s(t, "Type"),
                    t["Global"].as_bool().unwrap_or(false),
                    s(t, "AccessorID"),
                    expired
                )
            }));
            format_list(&rows)
        }),
        Err(e) => fail(ctx, "Error listing tokens", e),
    }
}

pub(crate) async fn token_info(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let id = ctx.flags.args[0].clone();
    match client
        .get_value(&format!("/v1/acl/token/{}", seg(&id)), &[])
        .await
    {
        Ok(t) => show(ctx, &t, format_token),
        Err(e) => fail(ctx, "Error fetching token", e),
    }
}

pub(crate) async fn token_self(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client.get_value("/v1/acl/token/self", &[]).await {
        Ok(t) => show(ctx, &t, format_token),
        Err(e) => fail(ctx, "Error fetching self token", e),
    }
}

pub(crate) async fn token_update(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let id = ctx.flags.args[0].clone();
    let path = format!("/v1/acl/token/{}", seg(&id));
    let mut t = match client.get_value(&path, &[]).await {
        Ok(t) => t,
        Err(e) => return fail(ctx, "Error fetching token", e),
    };
    if let Some(n) = ctx.flags.value("name") {
        t["Name"] = json!(n);
    }
    if !ctx.flags.values("policy").is_empty() {
        t["Policies"] = json!(ctx.flags.values("policy"));
    }
    let roles = role_links(ctx);
    if !roles.is_empty() {
        t["Roles"] = json!(roles);
    }
    match client.put::<Value>(&path, &t, &[]).await {
        Ok(t) => show(ctx, &t, format_token),
        Err(e) => fail(ctx, "Error updating token", e),
    }
}

pub(crate) async fn token_delete(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let id = ctx.flags.args[0].clone();
    match client
        .delete::<Value>(&format!("/v1/acl/token/{}", seg(&id)), &[])
        .await
    {
        Ok(_) => {
            ctx.ui.output(&format!("Token {id} successfully deleted"));
            0
        }
        Err(e) => fail(ctx, "Error deleting token", e),
    }
}

fn role_body(ctx: &Ctx<'_>, id: &str) -> Value {
    json!({
        "ID": id,
        "Name": ctx.flags.value("name").unwrap_or(""),
        "Description": ctx.flags.value("description").unwrap_or(""),
        "Policies": ctx.flags.values("policy").iter().map(|p| json!({"Name": p})).collect::<Vec<_>>(),
    })
}

pub(crate) async fn role_create(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let body = role_body(ctx, "");
    match client.put::<Value>("/v1/acl/role", &body, &[]).await {
        Ok(r) => show(ctx, &r, format_role),
        Err(e) => fail(ctx, "Error creating ACL role", e),
    }
}

pub(crate) async fn role_list(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    match client.get_value("/v1/acl/roles", &[]).await {
        Ok(v) => show(ctx, &v, |v| {
            let list = v.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                return "No ACL roles found".into();
            }
            let mut rows = vec!["ID|Name|Description|Policies".to_string()];
            rows.extend(list.iter().map(|r| {
                format!(
                    "{}|{}|{}|{}",
                    s(r, "ID"),
                    s(r, "Name"),
                    s(r, "Description"),
                    names(&r["Policies"]).join(",")
                )
            }));
            format_list(&rows)
        }),
        Err(e) => fail(ctx, "Error listing ACL roles", e),
    }
}

pub(crate) async fn role_info(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let key = ctx.flags.args[0].clone();
    let path = if ctx.flags.bool("by-name") {
        format!("/v1/acl/role/name/{}", seg(&key))
    } else {
        format!("/v1/acl/role/{}", seg(&key))
    };
    match client.get_value(&path, &[]).await {
        Ok(r) => show(ctx, &r, format_role),
        Err(e) => fail(ctx, "Error reading ACL role", e),
    }
}

pub(crate) async fn role_update(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let id = ctx.flags.args[0].clone();
    let path = format!("/v1/acl/role/{}", seg(&id));
    let mut r = match client.get_value(&path, &[]).await {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Error reading ACL role", e),
    };
    if let Some(n) = ctx.flags.value("name") {
        r["Name"] = json!(n);
    }
    if let Some(d) = ctx.flags.value("description") {
        r["Description"] = json!(d);
    }
    if !ctx.flags.values("policy").is_empty() {
        r["Policies"] = role_body(ctx, &id)["Policies"].clone();
    }
    match client.put::<Value>(&path, &r, &[]).await {
        Ok(r) => show(ctx, &r, format_role),
        Err(e) => fail(ctx, "Error updating ACL role", e),
    }
}

pub(crate) async fn role_delete(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let id = ctx.flags.args[0].clone();
    match client
        .delete::<Value>(&format!("/v1/acl/role/{}", seg(&id)), &[])
        .await
    {
        Ok(_) => {
            ctx.ui
                .output(&format!("ACL role {id} successfully deleted"));
            0
        }
        Err(e) => fail(ctx, "Error deleting ACL role", e),
    }
}
