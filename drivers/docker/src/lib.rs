//! The `docker` and `podman` drivers: run tasks as containers through the Docker Engine API,
//! against Docker or Podman's Docker-compatible service (Nomad's `docker` driver, and Nomad's
//! `podman` driver options over the same API).
//!
//! Wire in with [`DockerDriver::new`] (a [`DockerPluginConfig`] from the client's
//! `plugin "docker" { config {} }`) or [`DockerDriver::podman`] (from `plugin "podman"`).

mod auth;
mod decode;
pub mod driver;
pub mod engine;
mod exec_stream;
mod gc;
mod image;
mod labels;
mod logs;
pub mod plugin_config;
pub mod podman;
pub mod ports;
mod pull_progress;
pub mod spec;
mod stats;
pub mod task_config;
mod time;

pub use driver::{DockerDriver, DriverState, Flavor, DOCKER};
pub use plugin_config::DockerPluginConfig;
pub use podman::PODMAN;
pub use task_config::DockerTaskConfig;

impl DockerDriver {
    /// A `podman` driver from Nomad's podman plugin config block.
    pub fn podman(
        plugin: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<DockerDriver, caravan_driver::DriverError> {
        Ok(DockerDriver::with_flavor(
            PODMAN,
            podman::plugin_config(plugin)?,
        ))
    }
}
