//! The `exec` driver: runs `config.command` isolated like Nomad's `exec` driver.
//!
//! Each task runs in new PID, IPC, mount and UTS namespaces (it sees only its own processes
//! and has the alloc id as hostname), with the task dir as its root (`pivot_root`, or
//! `chroot` with `no_pivot_root`) populated by read-only bind mounts of the client's
//! `chroot_env` made inside the task's own mount namespace (nothing is copied per task),
//! plus `/alloc`, `/local`, `/secrets`, `/tmp`, `/dev`, `/proc` and `/sys`. It runs as
//! `user` (default `nobody`; the client's denylist refuses `root`), with Nomad's default
//! capabilities adjusted by `cap_add`/`cap_drop` within the plugin's `allow_caps`, with
//! `no_new_privs`, in a cgroup of its own (v1 or v2, detected) carrying its CPU, memory,
//! pids and cpuset limits.
//!
//! Module map: [`config`] (options), [`caps`] (capabilities), [`cgroup`] (cgroups v1/v2),
//! [`chroot`] (the task's mounts and env), `child` (clone and in-child setup), `enter`
//! (exec into a task), [`driver`] (the [`caravan_driver::Driver`] implementation).

pub mod caps;
pub mod cgroup;
mod child;
pub mod chroot;
pub mod config;
pub mod driver;
mod enter;

pub use cgroup::{CgroupLayout, CgroupVersion};
pub use config::{ExecDriverConfig, ExecTaskConfig, IsolationMode};
pub use driver::{ExecDriver, DRIVER_NAME};
