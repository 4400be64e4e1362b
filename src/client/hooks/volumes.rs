//! Host volumes: turns the task's `volume_mount` blocks into bind mounts of the node's
//! `host_volume` paths, read-only when the mount, the group's request or the host volume says
//! so. A driver that cannot mount (raw_exec) fails the task, as in Nomad.

use super::{HookContext, HookError, TaskHook};
use caravan_driver::{async_trait, MountConfig};
use serde_json::Value;

pub struct VolumeHook;

fn err(message: String) -> HookError {
    HookError {
        hook: "volumes",
        message,
        recoverable: false,
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(|s| s.as_str()).unwrap_or_default()
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(|b| b.as_bool()).unwrap_or(false)
}

/// The mounts for the task's `volume_mount` blocks.
pub fn mounts(ctx: &HookContext) -> Result<Vec<MountConfig>, HookError> {
    if ctx.task.volume_mounts.is_empty() {
        return Ok(vec![]);
    }
    let group = ctx
        .alloc
        .job
        .as_ref()
        .and_then(|j| j.lookup_group(&ctx.alloc.task_group))
        .ok_or_else(|| err("the allocation has no task group".into()))?;
    let mut out = Vec::new();
    for vm in &ctx.task.volume_mounts {
        let name = text(vm, "Volume");
        let dest = text(vm, "Destination");
        let req = group.volumes.get(name).ok_or_else(|| {
            err(format!(
                "volume_mount references volume {name:?}, which group {:?} does not define",
                group.name
            ))
        })?;
        if text(req, "Type") != "host" {
            return Err(err(format!(
                "volume {name:?} is of type {:?}; only host volumes are available in Caravan",
                text(req, "Type")
            )));
        }
        let source = text(req, "Source");
        let host = ctx.node.host_volumes.get(source).ok_or_else(|| {
            err(format!(
                "host volume {source:?} is not configured on this node (client {{ host_volume {source:?} {{ ... }} }})"
            ))
        })?;
        let path = text(host, "Path");
        if path.is_empty() {
            return Err(err(format!("host volume {source:?} has no path")));
        }
        if !dest.starts_with('/') || dest.split('/').any(|c| c == "..") {
            return Err(err(format!(
                "volume_mount destination {dest:?} must be an absolute path without \"..\""
            )));
        }
        out.push(MountConfig {
            host_path: path.into(),
            task_path: dest.to_string(),
            readonly: flag(vm, "ReadOnly") || flag(req, "ReadOnly") || flag(host, "ReadOnly"),
        });
    }
    Ok(out)
}

#[async_trait]
impl TaskHook for VolumeHook {
    fn name(&self) -> &'static str {
        "volumes"
    }

    async fn prestart(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        let mounts = mounts(ctx)?;
        if !mounts.is_empty() && !ctx.driver_mounts {
            return Err(err(format!(
                "task driver {:?} does not support host volumes (use exec or docker)",
                ctx.task.driver
            )));
        }
        ctx.mounts = mounts;
        Ok(())
    }
}
