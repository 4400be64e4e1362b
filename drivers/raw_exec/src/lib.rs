//! The `raw_exec` driver: runs `config.command` with `config.args` directly on the host, with
//! no isolation (Nomad's `raw_exec`). Off unless enabled in the client's plugin config.
//!
//! Each task runs in a session and process group of its own, in its task directory, with
//! exactly the environment the client built, and stdout/stderr into the client's log FIFOs.

mod config;
mod driver;
mod monitor;
mod spawn;

pub use config::RawExecConfig;
pub use driver::{RawExecDriver, DRIVER_NAME};
