//! Hands a task its workload identities (Nomad's identity hook): the default identity's JWT,
//! signed by the servers when the allocation was placed, goes to `secrets/nomad_token` when
//! its block says `file = true` and to `NOMAD_TOKEN` when it says `env = true`; named
//! identities go to `secrets/nomad_<name>.jwt` and `NOMAD_TOKEN_<name>`. A `filepath` puts the
//! file elsewhere in the task directory. Rewritten when the allocation is updated in place.

use super::{HookContext, HookError, TaskHook};
use crate::client::allocdir::resolve_within;
use caravan_driver::async_trait;
use caravan_structs::WorkloadIdentity;
use std::collections::BTreeMap;

pub struct IdentityHook;

fn err(message: String) -> HookError {
    HookError {
        hook: "identity",
        message,
        recoverable: false,
    }
}

/// Each identity the task asked to see, with its token, file (relative to the task directory)
/// and variable.
fn wanted(ctx: &HookContext) -> Result<Vec<(WorkloadIdentity, String, String, String)>, HookError> {
    let task = &ctx.task.name;
    let mut out = Vec::new();
    let default = ctx.task.default_identity();
    if default.env || default.file {
        let token = ctx
            .alloc
            .signed_identities
            .get(task)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| err(format!("no workload identity was signed for task {task:?}")))?;
        out.push((
            default,
            token.clone(),
            "secrets/nomad_token".to_string(),
            "NOMAD_TOKEN".to_string(),
        ));
    }
    for id in ctx.task.named_identities() {
        if !(id.env || id.file) {
            continue;
        }
        let token = ctx
            .alloc
            .signed_named_identities
            .get(task)
            .and_then(|m| m.get(&id.name))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                err(format!(
                    "no workload identity {:?} was signed for task {task:?}",
                    id.name
                ))
            })?;
        let file = format!("secrets/nomad_{}.jwt", id.name);
        let var = format!("NOMAD_TOKEN_{}", id.name);
        out.push((id, token.clone(), file, var));
    }
    Ok(out)
}

/// Writes the files and returns the variables.
async fn hand_out(ctx: &HookContext) -> Result<BTreeMap<String, String>, HookError> {
    let task_dir = ctx.alloc_dir.task_dir(&ctx.task.name);
    let mut env = BTreeMap::new();
    for (id, token, default_file, var) in wanted(ctx)? {
        if id.env {
            env.insert(var, token.clone());
        }
        if id.file {
            let rel = if id.filepath.is_empty() {
                default_file
            } else {
                id.filepath.clone()
            };
            let dest = resolve_within(&task_dir, &rel).map_err(|_| {
                err(format!(
                    "identity {:?} file path {rel:?} escapes the task directory",
                    id.handle()
                ))
            })?;
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| err(format!("creating {}: {e}", parent.display())))?;
            }
            tokio::fs::write(&dest, token.as_bytes())
                .await
                .map_err(|e| err(format!("writing {}: {e}", dest.display())))?;
        }
    }
    Ok(env)
}

#[async_trait]
impl TaskHook for IdentityHook {
    fn name(&self) -> &'static str {
        "identity"
    }

    async fn prestart(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        let env = hand_out(ctx).await?;
        ctx.env.extend(env);
        Ok(())
    }

    async fn update(&self, ctx: &HookContext) -> Result<(), HookError> {
        let env = hand_out(ctx).await?;
        if let (Some(control), false) = (&ctx.control, env.is_empty()) {
            control.set_env(env);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::allocdir::AllocDir;
    use caravan_structs::{Allocation, Node, Task};
    use serde_json::json;
    use std::sync::Arc;

    fn ctx(root: &std::path::Path, task: Task, alloc: Allocation) -> HookContext {
        let alloc_dir = AllocDir::new(root, "a1");
        alloc_dir.build().unwrap();
        alloc_dir.build_task("t").unwrap();
        HookContext {
            alloc: Arc::new(alloc),
            task,
            alloc_dir,
            env: BTreeMap::new(),
            stdout_path: root.join("out"),
            stderr_path: root.join("err"),
            events: vec![],
            task_env: None,
            node: Arc::new(Node::default()),
            driver_mounts: false,
            mounts: vec![],
            consul: None,
            control: None,
        }
    }

    fn alloc() -> Allocation {
        let mut a = Allocation::default();
        a.signed_identities.insert("t".into(), "d.e.f".into());
        a.signed_named_identities
            .entry("t".into())
            .or_default()
            .insert("vault".into(), "v.w.x".into());
        a
    }

    #[tokio::test]
    async fn default_and_named_identities_reach_files_and_env_as_asked() {
        let dir = std::env::temp_dir().join(format!("wid-hook-{}", caravan_structs::new_id()));
        let task = Task {
            name: "t".into(),
            identity: Some(json!({"Env": true, "File": true})),
            identities: vec![json!({"Name": "vault", "File": true})],
            ..Default::default()
        };
        let mut c = ctx(&dir, task, alloc());
        IdentityHook.prestart(&mut c).await.unwrap();
        let secrets = c.alloc_dir.task_dir("t").join("secrets");
        assert_eq!(
            std::fs::read_to_string(secrets.join("nomad_token")).unwrap(),
            "d.e.f"
        );
        assert_eq!(
            std::fs::read_to_string(secrets.join("nomad_vault.jwt")).unwrap(),
            "v.w.x"
        );
        assert_eq!(c.env.get("NOMAD_TOKEN").map(String::as_str), Some("d.e.f"));
        assert!(
            !c.env.contains_key("NOMAD_TOKEN_vault"),
            "env not asked for"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn nothing_is_handed_out_unless_asked_and_a_missing_token_fails() {
        let dir = std::env::temp_dir().join(format!("wid-hook-{}", caravan_structs::new_id()));
        let plain = Task {
            name: "t".into(),
            ..Default::default()
        };
        let mut c = ctx(&dir, plain, alloc());
        IdentityHook.prestart(&mut c).await.unwrap();
        assert!(c.env.is_empty());
        assert!(!c
            .alloc_dir
            .task_dir("t")
            .join("secrets/nomad_token")
            .exists());

        let wants = Task {
            name: "t".into(),
            identity: Some(json!({"Env": true})),
            ..Default::default()
        };
        let mut c = ctx(&dir, wants, Allocation::default());
        let e = IdentityHook.prestart(&mut c).await.unwrap_err();
        assert!(e.message.contains("no workload identity was signed"), "{e}");

        let escaping = Task {
            name: "t".into(),
            identity: Some(json!({"File": true, "Filepath": "../../x"})),
            ..Default::default()
        };
        let mut c = ctx(&dir, escaping, alloc());
        let e = IdentityHook.prestart(&mut c).await.unwrap_err();
        assert!(e.message.contains("escapes the task directory"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
