//! Caravan: a workload orchestrator that does what HashiCorp Nomad does, compatible with its
//! job files, HTTP API and CLI. This crate is the agent (server and client in one binary);
//! the data model, job file parser, scheduler, CLI and drivers are crates of their own.

pub mod agent;
pub mod api;
pub mod client;
pub mod logging;
pub mod server;
pub mod state;
pub mod util;
