//! HCL type constraints (`string`, `list(number)`, `object({ a = string })`, `optional(...)`)
//! as written in `variable` blocks and the `convert()` function, and the conversion of a value
//! to such a type with HCL's rules (numbers and bools become strings and back, tuples become
//! lists, objects become maps). A value that does not fit is an error naming the expected type.

use hcl::expr::{Expression, ObjectKey};
use hcl::{Map, Value};
use std::fmt;

/// A type constraint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TypeExpr {
    Any,
    String,
    Number,
    Bool,
    List(Box<TypeExpr>),
    Set(Box<TypeExpr>),
    Map(Box<TypeExpr>),
    Tuple(Vec<TypeExpr>),
    /// Attributes with their type and, for `optional(T, default)`, whether they may be
    /// missing and their default.
    Object(Vec<(String, TypeExpr, Option<Option<Value>>)>),
}

impl fmt::Display for TypeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeExpr::Any => write!(f, "any"),
            TypeExpr::String => write!(f, "string"),
            TypeExpr::Number => write!(f, "number"),
            TypeExpr::Bool => write!(f, "bool"),
            TypeExpr::List(t) => write!(f, "list({t})"),
            TypeExpr::Set(t) => write!(f, "set({t})"),
            TypeExpr::Map(t) => write!(f, "map({t})"),
            TypeExpr::Tuple(ts) => {
                let parts: Vec<String> = ts.iter().map(|t| t.to_string()).collect();
                write!(f, "tuple([{}])", parts.join(", "))
            }
            TypeExpr::Object(attrs) => {
                let parts: Vec<String> = attrs
                    .iter()
                    .map(|(k, t, opt)| match opt {
                        Some(_) => format!("{k} = optional({t})"),
                        None => format!("{k} = {t}"),
                    })
                    .collect();
                write!(f, "object({{ {} }})", parts.join(", "))
            }
        }
    }
}

/// Reads a type expression; `eval` evaluates the defaults of `optional(T, default)`.
pub(crate) fn parse_type(
    expr: &Expression,
    eval: &dyn Fn(&Expression) -> Result<Value, String>,
) -> Result<TypeExpr, String> {
    match expr {
        Expression::Variable(v) => match v.as_str() {
            "any" => Ok(TypeExpr::Any),
            "string" => Ok(TypeExpr::String),
            "number" => Ok(TypeExpr::Number),
            "bool" => Ok(TypeExpr::Bool),
            "list" => Ok(TypeExpr::List(Box::new(TypeExpr::Any))),
            "set" => Ok(TypeExpr::Set(Box::new(TypeExpr::Any))),
            "map" => Ok(TypeExpr::Map(Box::new(TypeExpr::Any))),
            other => Err(format!(
                "unknown type {other:?}: use string, number, bool, any, list(T), set(T), map(T), tuple([...]) or object({{...}})"
            )),
        },
        Expression::Parenthesis(e) => parse_type(e, eval),
        Expression::FuncCall(call) => {
            let name = call.name.to_string();
            let args = &call.args;
            let one = |args: &[Expression]| -> Result<TypeExpr, String> {
                match args {
                    [t] => parse_type(t, eval),
                    _ => Err(format!("{name}(...) takes exactly one element type")),
                }
            };
            match name.as_str() {
                "list" => Ok(TypeExpr::List(Box::new(one(args)?))),
                "set" => Ok(TypeExpr::Set(Box::new(one(args)?))),
                "map" => Ok(TypeExpr::Map(Box::new(one(args)?))),
                "tuple" => match args.as_slice() {
                    [Expression::Array(items)] => Ok(TypeExpr::Tuple(
                        items
                            .iter()
                            .map(|t| parse_type(t, eval))
                            .collect::<Result<_, _>>()?,
                    )),
                    _ => Err("tuple(...) takes a list of types: tuple([string, number])".into()),
                },
                "object" => match args.as_slice() {
                    [Expression::Object(obj)] => {
                        let mut attrs = Vec::new();
                        for (k, v) in obj.iter() {
                            let key = match k {
                                ObjectKey::Identifier(i) => i.to_string(),
                                ObjectKey::Expression(Expression::String(s)) => s.clone(),
                                ObjectKey::Expression(Expression::Variable(v)) => {
                                    v.as_str().to_string()
                                }
                                _ => return Err("object type attribute names must be names".into()),
                            };
                            let (ty, opt) = match v {
                                Expression::FuncCall(c) if c.name.to_string() == "optional" => {
                                    match c.args.as_slice() {
                                        [t] => (parse_type(t, eval)?, Some(None)),
                                        [t, d] => (parse_type(t, eval)?, Some(Some(eval(d)?))),
                                        _ => {
                                            return Err(
                                                "optional(...) takes a type and an optional default"
                                                    .into(),
                                            )
                                        }
                                    }
                                }
                                other => (parse_type(other, eval)?, None),
                            };
                            attrs.push((key, ty, opt));
                        }
                        Ok(TypeExpr::Object(attrs))
                    }
                    _ => Err("object(...) takes a map of attribute types: object({ a = string })".into()),
                },
                other => Err(format!("unknown type constructor {other:?}")),
            }
        }
        _ => Err("not a type: use string, number, bool, any, list(T), set(T), map(T), tuple([...]) or object({...})".into()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Converts `v` to type `t`, or says why it cannot be.
pub(crate) fn convert(v: &Value, t: &TypeExpr) -> Result<Value, String> {
    if matches!(v, Value::Null) {
        return Ok(Value::Null);
    }
    let mismatch = || format!("{t} required, got {}", kind(v));
    match t {
        TypeExpr::Any => Ok(v.clone()),
        TypeExpr::String => match v {
            Value::String(_) => Ok(v.clone()),
            Value::Number(n) => Ok(Value::from(n.to_string())),
            Value::Bool(b) => Ok(Value::from(b.to_string())),
            _ => Err(mismatch()),
        },
        TypeExpr::Number => match v {
            Value::Number(_) => Ok(v.clone()),
            Value::String(s) => {
                let s = s.trim();
                if let Ok(i) = s.parse::<i64>() {
                    Ok(Value::from(i))
                } else {
                    s.parse::<f64>()
                        .ok()
                        .and_then(hcl::Number::from_f64)
                        .map(Value::Number)
                        .ok_or_else(|| format!("number required, got the string {s:?}"))
                }
            }
            _ => Err(mismatch()),
        },
        TypeExpr::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) if s == "true" => Ok(Value::Bool(true)),
            Value::String(s) if s == "false" => Ok(Value::Bool(false)),
            Value::String(s) => Err(format!("bool required, got the string {s:?}")),
            _ => Err(mismatch()),
        },
        TypeExpr::List(e) | TypeExpr::Set(e) => match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let c = convert(item, e).map_err(|m| format!("element {i}: {m}"))?;
                    if matches!(t, TypeExpr::Set(_)) && out.contains(&c) {
                        continue;
                    }
                    out.push(c);
                }
                Ok(Value::Array(out))
            }
            _ => Err(mismatch()),
        },
        TypeExpr::Map(e) => match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, item) in m {
                    out.insert(
                        k.clone(),
                        convert(item, e).map_err(|m| format!("element {k:?}: {m}"))?,
                    );
                }
                Ok(Value::Object(out))
            }
            _ => Err(mismatch()),
        },
        TypeExpr::Tuple(ts) => match v {
            Value::Array(items) if items.len() == ts.len() => items
                .iter()
                .zip(ts)
                .enumerate()
                .map(|(i, (item, t))| convert(item, t).map_err(|m| format!("element {i}: {m}")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Array(items) => Err(format!(
                "{t} required, got a list of {} elements",
                items.len()
            )),
            _ => Err(mismatch()),
        },
        TypeExpr::Object(attrs) => match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, t, opt) in attrs {
                    match (m.get(k), opt) {
                        (Some(item), _) => {
                            out.insert(
                                k.clone(),
                                convert(item, t).map_err(|e| format!("attribute {k:?}: {e}"))?,
                            );
                        }
                        (None, Some(default)) => {
                            out.insert(k.clone(), default.clone().unwrap_or(Value::Null));
                        }
                        (None, None) => {
                            return Err(format!("attribute {k:?} is required ({t} expected)"))
                        }
                    }
                }
                Ok(Value::Object(out))
            }
            _ => Err(mismatch()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> TypeExpr {
        let e: hcl::edit::expr::Expression = s.parse().unwrap();
        parse_type(&e.into(), &|_| Ok(Value::Null)).unwrap()
    }

    #[test]
    fn converts_with_hcl_rules() {
        assert_eq!(
            convert(&Value::from("5"), &ty("number")).unwrap(),
            Value::from(5)
        );
        assert_eq!(
            convert(&hcl::value!([1, "a"]), &ty("list(string)")).unwrap(),
            hcl::value!(["1", "a"])
        );
        assert_eq!(
            convert(
                &hcl::value!({ a = 1 }),
                &ty("object({ a = string, b = optional(number) })")
            )
            .unwrap(),
            hcl::value!({ a = "1", b = null })
        );
    }

    #[test]
    fn mismatches_name_the_expected_type() {
        let e = convert(&Value::from("x"), &ty("list(string)")).unwrap_err();
        assert!(e.contains("list(string) required"), "{e}");
        let e = convert(&hcl::value!({}), &ty("object({ a = string })")).unwrap_err();
        assert!(e.contains("\"a\" is required"), "{e}");
        let e = convert(&Value::from("yes"), &ty("bool")).unwrap_err();
        assert!(e.contains("bool required"), "{e}");
    }
}
