//! The driver interface of Caravan: the one small trait every task driver (raw_exec, exec,
//! docker, podman, java, qemu) implements, the data that crosses it, and the helpers drivers
//! share (signal names, `/proc` sampling, log capture, interactive exec).
//!
//! The client keeps drivers as `Arc<dyn Driver>` in a registry keyed by [`Driver::name`].
//! Nomad's driver plugin interface (`plugins/drivers/driver.go`) is the model.

pub mod config_value;
pub mod driver;
pub mod error;
pub mod exec_stream;
pub mod fingerprint;
pub mod logs;
pub mod process;
pub mod procfs;
pub mod shim;
pub mod signal;
pub mod stats;
pub mod task;
pub mod task_events;

pub use async_trait::async_trait;
pub use driver::Driver;
pub use error::DriverError;
pub use exec_stream::{ExecInput, ExecOutput, ExecStreamIo};
pub use fingerprint::Fingerprint;
pub use logs::{LogMon, RotatingWriter};
pub use signal::{parse_signal, signal_name};
pub use stats::{CpuStats, MemoryStats, ResourceUsage, TaskResourceUsage};
pub use task::{
    ExecResult, ExitResult, MountConfig, TaskConfig, TaskHandle, TaskResources, TaskState,
    TaskStatus, HANDLE_VERSION,
};
pub use task_events::TaskDriverEvent;
