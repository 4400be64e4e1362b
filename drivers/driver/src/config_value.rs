//! Reading values of a task's `config {}` block as they arrive in JSON, with errors that name
//! the key and what was found. Shared by the drivers' task config parsers.

use crate::DriverError;
use serde_json::{Map, Value};

/// Describes a JSON value's kind for error messages ("a map", "a list").
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// `key` as a list of strings (absent: empty); numbers and bools convert, as HCL's
/// `list(string)` does in Nomad.
pub fn string_list(cfg: &Map<String, Value>, key: &str) -> Result<Vec<String>, DriverError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(DriverError::InvalidConfig(format!(
                    "\"{key}\" must be a list of strings; element {i} is {}",
                    kind(other)
                ))),
            })
            .collect(),
        Some(other) => Err(DriverError::InvalidConfig(format!(
            "\"{key}\" must be a list of strings, got {}",
            kind(other)
        ))),
    }
}
