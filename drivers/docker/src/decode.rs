//! Lenient decoders for values of a task's `config {}` block as they arrive in JSON: HCL blocks
//! may come as one object or a list of objects, `list(map(string))` attributes as a map or a list
//! of maps, and numbers or bools may have been turned into strings by interpolation.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;

pub use caravan_driver::config_value::kind;

/// A scalar as a string (numbers and bools converted, as HCL's type conversion does).
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `list(string)`: a list of scalars; a single scalar is taken as a list of one.
pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    to_string_list(&v).map_err(serde::de::Error::custom)
}

pub fn to_string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                scalar_string(x)
                    .ok_or_else(|| format!("must be a list of strings; element {i} is {}", kind(x)))
            })
            .collect(),
        other => scalar_string(other)
            .map(|s| vec![s])
            .ok_or_else(|| format!("must be a list of strings, got {}", kind(other))),
    }
}

/// `list(map(string))` or a block of attributes: a map, or a list of maps merged in order.
pub fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let v = Value::deserialize(d)?;
    to_string_map(&v).map_err(serde::de::Error::custom)
}

pub fn to_string_map(v: &Value) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for obj in objects(v)? {
        for (k, x) in obj {
            let s = scalar_string(x)
                .ok_or_else(|| format!("value of {k:?} must be a string, got {}", kind(x)))?;
            out.insert(k.clone(), s);
        }
    }
    Ok(out)
}

/// The objects of a block: one object, or a list of objects.
pub fn objects(v: &Value) -> Result<Vec<&serde_json::Map<String, Value>>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Object(o) => Ok(vec![o]),
        Value::Array(items) => items
            .iter()
            .map(|x| match x {
                Value::Object(o) => Ok(o),
                other => Err(format!(
                    "must be a block (a map), got a list of {}",
                    kind(other)
                )),
            })
            .collect(),
        other => Err(format!("must be a block (a map), got {}", kind(other))),
    }
}

/// A block that appears at most once: one object or a list of (at most) one object.
pub fn block<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    let objs = objects(&v).map_err(serde::de::Error::custom)?;
    match objs.as_slice() {
        [] => Ok(None),
        [one] => serde_json::from_value(Value::Object((*one).clone()))
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("the block may appear only once")),
    }
}

/// A block that may repeat: every object of a list (or the one object).
pub fn blocks<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    objects(&v)
        .map_err(serde::de::Error::custom)?
        .into_iter()
        .map(|o| serde_json::from_value(Value::Object(o.clone())).map_err(serde::de::Error::custom))
        .collect()
}

/// A number, also from a numeric string.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a number"))),
        other => Err(serde::de::Error::custom(format!(
            "must be a number, got {}",
            kind(other)
        ))),
    }
}

/// A bool, also from the strings "true"/"false"/"1"/"0".
pub fn bool_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" | "" => Ok(false),
            _ => Err(serde::de::Error::custom(format!("{s:?} is not a bool"))),
        },
        other => Err(serde::de::Error::custom(format!(
            "must be a bool, got {}",
            kind(other)
        ))),
    }
}

/// A string, also from a number or bool.
pub fn string_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(String::new()),
        other => scalar_string(other).ok_or_else(|| {
            serde::de::Error::custom(format!("must be a string, got {}", kind(other)))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_from_map_or_list_of_maps() {
        let m = to_string_map(&json!([{"a": "1"}, {"b": 2}])).unwrap();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "2");
        let m = to_string_map(&json!({"a": true})).unwrap();
        assert_eq!(m["a"], "true");
        assert!(to_string_map(&json!("x")).is_err());
        assert!(to_string_map(&json!({"a": {"b": 1}})).is_err());
    }

    #[test]
    fn lists_convert_scalars() {
        assert_eq!(
            to_string_list(&json!(["a", 1, false])).unwrap(),
            vec!["a", "1", "false"]
        );
        assert_eq!(to_string_list(&json!("one")).unwrap(), vec!["one"]);
        let e = to_string_list(&json!(["a", {"x": 1}])).unwrap_err();
        assert!(e.contains("element 1 is a map"), "{e}");
    }
}
