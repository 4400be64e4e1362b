//! `setup vault`: the Vault objects Caravan's workload identities need (Nomad's `nomad setup
//! vault`) — a JWT auth method at `jwt-nomad` trusting the agent's `/.well-known/jwks.json`,
//! the `nomad-workloads` role bound to the `vault.io` audience, and a `nomad-workloads` policy
//! granting each job its own KV paths. Prints them; with `-apply`, writes them to the Vault at
//! `VAULT_ADDR` with `VAULT_TOKEN` (and `VAULT_NAMESPACE`).

use super::{fail, want_args};
use crate::Ctx;
use serde_json::{json, Value};

pub(crate) const AUTH_PATH: &str = "jwt-nomad";
pub(crate) const ROLE: &str = "nomad-workloads";
pub(crate) const POLICY: &str = "nomad-workloads";
/// Replaced by the auth method's accessor in the policy (templated paths name it).
const ACCESSOR: &str = "AUTH_METHOD_ACCESSOR";

fn policy_text(accessor: &str) -> String {
    let m = |claim: &str| format!("{{{{identity.entity.aliases.{accessor}.metadata.{claim}}}}}");
    let (ns, job) = (m("nomad_namespace"), m("nomad_job_id"));
    format!(
        "path \"secret/data/{ns}/{job}/*\" {{\n  capabilities = [\"read\"]\n}}\n\n\
         path \"secret/data/{ns}/{job}\" {{\n  capabilities = [\"read\"]\n}}\n\n\
         path \"secret/metadata/{ns}/*\" {{\n  capabilities = [\"list\"]\n}}\n\n\
         path \"secret/metadata/*\" {{\n  capabilities = [\"list\"]\n}}\n"
    )
}

fn auth_config(jwks_url: &str) -> Value {
    json!({
        "jwks_url": jwks_url,
        "jwt_supported_algs": ["EdDSA", "RS256"],
        "default_role": ROLE,
    })
}

fn role() -> Value {
    json!({
        "role_type": "jwt",
        "bound_audiences": ["vault.io"],
        "user_claim": "/nomad_job_id",
        "user_claim_json_pointer": true,
        "claim_mappings": {
            "nomad_namespace": "nomad_namespace",
            "nomad_job_id": "nomad_job_id",
            "nomad_task": "nomad_task",
        },
        "token_type": "service",
        "token_policies": [POLICY],
        "token_period": "30m",
        "token_explicit_max_ttl": 0,
    })
}

pub(crate) async fn vault(ctx: &mut Ctx<'_>) -> i32 {
    if let Err(c) = want_args(ctx, 0, 0) {
        return c;
    }
    let jwks_url = match ctx.flags.value("jwks-url") {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => {
            let addr = ctx
                .flags
                .value("address")
                .map(str::to_string)
                .or_else(|| ctx.env_var(&["CARAVAN_ADDR", "NOMAD_ADDR"]))
                .unwrap_or_else(|| "http://127.0.0.1:4646".into());
            format!("{}/.well-known/jwks.json", addr.trim_end_matches('/'))
        }
    };
    if !ctx.flags.bool("apply") {
        let out = format!(
            "# JWT auth method\n$ bao auth enable -path={AUTH_PATH} jwt\n\
             $ bao write auth/{AUTH_PATH}/config - <<EOF\n{}\nEOF\n\n\
             # Policy ({ACCESSOR}: the accessor `bao auth list` shows for {AUTH_PATH}/)\n\
             $ bao policy write {POLICY} - <<EOF\n{}EOF\n\n\
             # Role\n$ bao write auth/{AUTH_PATH}/role/{ROLE} - <<EOF\n{}\nEOF\n\n\
             Run again with -apply to write these with VAULT_ADDR and VAULT_TOKEN.",
            serde_json::to_string_pretty(&auth_config(&jwks_url)).unwrap_or_default(),
            policy_text(ACCESSOR),
            serde_json::to_string_pretty(&role()).unwrap_or_default(),
        );
        ctx.ui.output(&out);
        return 0;
    }
    let (Some(addr), Some(token)) = (ctx.env_var(&["VAULT_ADDR"]), ctx.env_var(&["VAULT_TOKEN"]))
    else {
        return fail(
            ctx,
            "Error",
            "-apply needs VAULT_ADDR and VAULT_TOKEN (a token that may manage auth methods and policies)",
        );
    };
    let namespace = ctx.env_var(&["VAULT_NAMESPACE"]).unwrap_or_default();
    let client = match caravan_vault::Client::new(&caravan_vault::VaultConfig {
        address: addr,
        namespace,
        ..Default::default()
    }) {
        Ok(c) => c.with_token(token),
        Err(e) => return fail(ctx, "Error", e),
    };
    match apply(&client, &jwks_url).await {
        Ok(lines) => {
            for l in lines {
                ctx.ui.output(&l);
            }
            0
        }
        Err(e) => fail(ctx, "Error applying the Vault configuration", e),
    }
}

/// Writes the auth method (enabled unless it is), its config, the policy and the role.
async fn apply(
    c: &caravan_vault::Client,
    jwks_url: &str,
) -> Result<Vec<String>, caravan_vault::VaultError> {
    use reqwest::Method;
    let mut out = Vec::new();
    let mounts = c
        .request(Method::GET, "sys/auth", None)
        .await?
        .unwrap_or_default();
    let key = format!("{AUTH_PATH}/");
    let mounted = |m: &Value| {
        m.get(&key)
            .or_else(|| m.get("data").and_then(|d| d.get(&key)))
            .and_then(|a| a["accessor"].as_str())
            .map(str::to_string)
    };
    let accessor = match mounted(&mounts) {
        Some(a) => {
            out.push(format!("Auth method {AUTH_PATH} already enabled"));
            a
        }
        None => {
            c.request(
                Method::POST,
                &format!("sys/auth/{AUTH_PATH}"),
                Some(&json!({"type": "jwt"})),
            )
            .await?;
            out.push(format!("Enabled the JWT auth method at {AUTH_PATH}"));
            let mounts = c
                .request(Method::GET, "sys/auth", None)
                .await?
                .unwrap_or_default();
            mounted(&mounts).unwrap_or_default()
        }
    };
    c.request(
        Method::POST,
        &format!("auth/{AUTH_PATH}/config"),
        Some(&auth_config(jwks_url)),
    )
    .await?;
    out.push(format!("Configured {AUTH_PATH} with JWKS {jwks_url}"));
    c.request(
        Method::POST,
        &format!("sys/policies/acl/{POLICY}"),
        Some(&json!({"policy": policy_text(&accessor)})),
    )
    .await?;
    out.push(format!("Wrote policy {POLICY}"));
    c.request(
        Method::POST,
        &format!("auth/{AUTH_PATH}/role/{ROLE}"),
        Some(&role()),
    )
    .await?;
    out.push(format!("Wrote role {ROLE}"));
    Ok(out)
}
