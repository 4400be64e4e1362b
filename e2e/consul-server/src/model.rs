//! Request bodies of the agent endpoints, with Consul's JSON field names. Unknown fields are
//! rejected so a misspelt field in Caravan's client cannot pass unnoticed.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A duration as Consul's JSON accepts it: a Go duration string or integer nanoseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum JsonDuration {
    Text(String),
    Nanos(u64),
}

/// `Weights` of a service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    #[serde(rename = "Passing")]
    pub passing: i64,
    #[serde(rename = "Warning")]
    pub warning: i64,
}

/// A check definition: `Check`/`Checks` of a service registration (Consul's `AgentServiceCheck`)
/// and the body of `/v1/agent/check/register` (`AgentCheckRegistration`, which adds `ID` and
/// `ServiceID`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case, dead_code)]
pub struct CheckDef {
    pub ID: Option<String>,
    pub CheckID: Option<String>,
    pub Name: Option<String>,
    pub ServiceID: Option<String>,
    pub Notes: Option<String>,
    pub Status: Option<String>,
    pub Args: Option<Vec<String>>,
    pub ScriptArgs: Option<Vec<String>>,
    pub DockerContainerID: Option<String>,
    pub Shell: Option<String>,
    pub Interval: Option<JsonDuration>,
    pub Timeout: Option<JsonDuration>,
    pub TTL: Option<JsonDuration>,
    pub HTTP: Option<String>,
    pub Header: Option<BTreeMap<String, Vec<String>>>,
    pub Method: Option<String>,
    pub Body: Option<String>,
    pub DisableRedirects: Option<bool>,
    pub TCP: Option<String>,
    pub TCPUseTLS: Option<bool>,
    pub UDP: Option<String>,
    pub OSService: Option<String>,
    pub TLSServerName: Option<String>,
    pub TLSSkipVerify: Option<bool>,
    pub GRPC: Option<String>,
    pub GRPCUseTLS: Option<bool>,
    pub H2PING: Option<String>,
    pub H2PingUseTLS: Option<bool>,
    pub AliasNode: Option<String>,
    pub AliasService: Option<String>,
    pub SuccessBeforePassing: Option<u32>,
    pub FailuresBeforeWarning: Option<u32>,
    pub FailuresBeforeCritical: Option<u32>,
    pub DeregisterCriticalServiceAfter: Option<JsonDuration>,
    pub OutputMaxSize: Option<u64>,
    pub Namespace: Option<String>,
    pub Partition: Option<String>,
}

/// The body of `/v1/agent/service/register` (Consul's `AgentServiceRegistration`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case, dead_code)]
pub struct ServiceDef {
    pub Kind: Option<String>,
    pub ID: Option<String>,
    pub Name: Option<String>,
    pub Tags: Option<Vec<String>>,
    pub Port: Option<i64>,
    pub Address: Option<String>,
    pub SocketPath: Option<String>,
    pub TaggedAddresses: Option<serde_json::Map<String, Value>>,
    pub EnableTagOverride: Option<bool>,
    pub Meta: Option<BTreeMap<String, String>>,
    pub Weights: Option<Weights>,
    pub Check: Option<CheckDef>,
    pub Checks: Option<Vec<CheckDef>>,
    pub Proxy: Option<Value>,
    pub Connect: Option<Value>,
    pub Namespace: Option<String>,
    pub Partition: Option<String>,
    pub Locality: Option<Value>,
}

/// The body of `PUT /v1/agent/check/update/:check_id`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case, dead_code)]
pub struct CheckUpdate {
    pub Status: Option<String>,
    pub Output: Option<String>,
}

/// Decodes a JSON body with Consul's error wording.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, crate::error::ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| crate::error::ApiError::bad(format!("Request decode failed: {e}")))
}
