//! The `java` driver: runs a jar (`jar_path`) or a class (`class` with `class_path`) with
//! the host's `java`, isolated exactly like the `exec` driver (namespaces, a chroot built
//! from the client's `chroot_env`, cgroups, user `nobody` by default, capabilities).
//!
//! It wraps an [`caravan_driver_exec::ExecDriver`]: a java task's `config {}` block becomes
//! an exec `command = "java"` with the JVM's arguments, found through the chroot's `PATH`
//! (Nomad's default chroot map binds `/usr`, where JDKs live). The node attributes
//! `driver.java.version`, `driver.java.runtime` and `driver.java.vm` come from `java -version`,
//! probed in the background from construction so the agent's start-up never waits on a JVM.
//!
//! Module map: [`config`] (the task's `config {}` block and the java command line),
//! [`version`] (parsing and probing `java -version`), [`driver`] (the
//! [`caravan_driver::Driver`] implementation).

pub mod config;
pub mod driver;
pub mod version;

pub use config::JavaTaskConfig;
pub use driver::{JavaDriver, DRIVER_NAME};
pub use version::{parse_java_version, JavaVersion, VersionParseError};
