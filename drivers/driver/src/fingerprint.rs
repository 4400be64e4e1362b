//! What a driver reports about itself to the client's node fingerprint.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A driver's fingerprint: node attributes it contributes and its health.
///
/// Maps onto Nomad's `DriverInfo { Attributes, Detected, Healthy, HealthDescription }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Node attributes, e.g. `driver.raw_exec = "1"`.
    pub attributes: BTreeMap<String, String>,
    /// Whether the driver is usable on this node at all.
    pub detected: bool,
    /// Whether the driver currently works.
    pub healthy: bool,
    /// Human-readable health, e.g. "Healthy" or "disabled".
    pub health_description: String,
}
