//! The `docker` driver: runs tasks as containers through the Docker Engine API, against Docker
//! or Podman's Docker-compatible service (Nomad's `docker` driver).

mod decode;
pub mod plugin_config;
pub mod ports;
pub mod spec;
pub mod task_config;

pub use plugin_config::DockerPluginConfig;
pub use task_config::DockerTaskConfig;
