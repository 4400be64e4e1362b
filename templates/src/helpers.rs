//! consul-template's helper functions that need no data source: JSON, strings, regular
//! expressions, collections (`contains`, `in`, `byKey`, `byTag`, `explode`), encodings and
//! hashes, `timestamp`, and arithmetic. Argument order follows consul-template's so that
//! pipelines such as `{{ key "x" | split "," | join ";" }}` work unchanged.

use crate::exec::{kind, want};
use crate::fmt::go_print;
use base64::Engine;
use serde_json::{Map, Value};

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => go_print(other),
    }
}

fn list(v: &Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::Null => Ok(vec![]),
        other => Err(format!("expected a list, got {}", kind(other))),
    }
}

fn contains_value(haystack: &Value, needle: &Value) -> Result<bool, String> {
    Ok(match haystack {
        Value::Array(a) => a
            .iter()
            .any(|x| x == needle || go_print(x) == go_print(needle)),
        Value::Object(o) => o.contains_key(&s(needle)),
        Value::String(h) => h.contains(&s(needle)),
        Value::Null => false,
        other => return Err(format!("cannot look for a value in a {}", kind(other))),
    })
}

/// Go's HTML-safe JSON: `<`, `>` and `&` (only ever inside strings) as `\u003c` and so on.
fn html_safe(j: &str) -> String {
    j.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
fn title(text: &str) -> String {
    let mut out = String::new();
    let mut prev_letter = false;
    for c in text.chars() {
        if !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

enum Num {
    I(i64),
    F(f64),
}

fn number(v: &Value) -> Result<Num, String> {
    match v {
        Value::Number(n) => Ok(match n.as_i64() {
            Some(i) => Num::I(i),
            None => Num::F(n.as_f64().unwrap_or(0.0)),
        }),
        Value::String(t) => {
            if let Ok(i) = t.trim().parse::<i64>() {
                Ok(Num::I(i))
            } else {
                t.trim()
                    .parse::<f64>()
                    .map(Num::F)
                    .map_err(|_| format!("{t:?} is not a number"))
            }
        }
        other => Err(format!("unknown type for arithmetic: {}", kind(other))),
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// consul-template's arithmetic: `op b a` computes `a op b` (so `{{ 5 | subtract 2 }}` is 3).
fn arith(name: &str, args: &[Value]) -> Result<Value, String> {
    want(name, args, 2)?;
    let (b, a) = (number(&args[0])?, number(&args[1])?);
    Ok(match (a, b) {
        (Num::I(a), Num::I(b)) => match name {
            "add" => Value::from(a.checked_add(b).ok_or("integer overflow")?),
            "subtract" => Value::from(a.checked_sub(b).ok_or("integer overflow")?),
            "multiply" => Value::from(a.checked_mul(b).ok_or("integer overflow")?),
            "divide" if b == 0 => return Err("division by zero".into()),
            "divide" => Value::from(a / b),
            "modulo" if b == 0 => return Err("modulo by zero".into()),
            "modulo" => Value::from(a % b),
            "minimum" => Value::from(a.min(b)),
            _ => Value::from(a.max(b)),
        },
        (a, b) => {
            let f = |n: Num| match n {
                Num::I(i) => i as f64,
                Num::F(f) => f,
            };
            let (a, b) = (f(a), f(b));
            match name {
                "add" => float(a + b),
                "subtract" => float(a - b),
                "multiply" => float(a * b),
                "divide" if b == 0.0 => return Err("division by zero".into()),
                "divide" => float(a / b),
                "modulo" => return Err("modulo needs integers".into()),
                "minimum" => float(a.min(b)),
                _ => float(a.max(b)),
            }
        }
    })
}

/// Translates a Go time layout (`2006-01-02T15:04:05Z07:00`) into a chrono format string.
pub(crate) fn go_layout(layout: &str) -> String {
    const MAP: &[(&str, &str)] = &[
        ("2006", "%Y"),
        ("January", "%B"),
        ("Jan", "%b"),
        ("Monday", "%A"),
        ("Mon", "%a"),
        ("MST", "UTC"),
        ("Z07:00", "Z"),
        ("-07:00", "%:z"),
        ("-0700", "%z"),
        ("01", "%m"),
        ("02", "%d"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("PM", "%p"),
        (".000000000", "%.9f"),
        (".000000", "%.6f"),
        (".000", "%.3f"),
        ("_2", "%e"),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (go, ch) in MAP {
            if let Some(r) = rest.strip_prefix(go) {
                out.push_str(ch);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Nested map from `KeyPair`s (`explode`): `a/b/c = v` becomes `{"a":{"b":{"c":"v"}}}`.
fn explode(pairs: &[Value]) -> Result<Value, String> {
    let mut root = Map::new();
    for p in pairs {
        let key = s(&p["Key"]);
        let parts: Vec<&str> = key.split('/').filter(|x| !x.is_empty()).collect();
        let Some((last, dirs)) = parts.split_last() else {
            continue;
        };
        let mut m = &mut root;
        for d in dirs {
            let e = m
                .entry(d.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            m = match e {
                Value::Object(o) => o,
                _ => return Err("explode: inconsistent key tree".into()),
            };
        }
        m.insert(last.to_string(), p["Value"].clone());
    }
    Ok(Value::Object(root))
}

/// Runs a helper; `None` when `name` is not one.
pub(crate) fn call(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let r = (|| -> Result<Value, String> {
        let a0 = || args.first().map(s).unwrap_or_default();
        Ok(match name {
            // Go's json.Marshal escapes <, > and & (toJSON); the Unescaped forms do not.
            "toJSON" | "toUnescapedJSON" => {
                want(name, args, 1)?;
                let j = serde_json::to_string(&args[0]).map_err(|e| e.to_string())?;
                Value::String(if name == "toJSON" { html_safe(&j) } else { j })
            }
            "toJSONPretty" | "toUnescapedJSONPretty" => {
                want(name, args, 1)?;
                let j = serde_json::to_string_pretty(&args[0]).map_err(|e| e.to_string())?;
                Value::String(if name == "toJSONPretty" {
                    html_safe(&j)
                } else {
                    j
                })
            }
            // consul-template trims the encoder's trailing newline.
            "toYAML" => {
                want(name, args, 1)?;
                let y = serde_yaml::to_string(&args[0]).map_err(|e| format!("toYAML: {e}"))?;
                Value::String(y.trim_end_matches('\n').to_string())
            }
            "parseYAML" => {
                want(name, args, 1)?;
                let t = a0();
                if t.trim().is_empty() {
                    Value::Object(Map::new())
                } else {
                    serde_yaml::from_str(&t).map_err(|e| format!("parseYAML: {e}"))?
                }
            }
            "toTOML" => {
                want(name, args, 1)?;
                if !args[0].is_object() {
                    return Err(
                        "toTOML: the value must be a map (a TOML document is a table)".into(),
                    );
                }
                let t = toml::to_string(&args[0]).map_err(|e| format!("toTOML: {e}"))?;
                Value::String(t.trim_end_matches('\n').to_string())
            }
            "parseJSON" => {
                want(name, args, 1)?;
                let t = a0();
                if t.trim().is_empty() {
                    Value::Object(Map::new())
                } else {
                    serde_json::from_str(&t).map_err(|e| format!("parseJSON: {e}"))?
                }
            }
            "parseBool" => {
                want(name, args, 1)?;
                let t = a0();
                Value::Bool(match t.as_str() {
                    "" => false,
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                    _ => return Err(format!("parseBool: invalid syntax {t:?}")),
                })
            }
            "parseInt" => {
                want(name, args, 1)?;
                let t = a0();
                if t.is_empty() {
                    Value::from(0)
                } else {
                    Value::from(
                        t.parse::<i64>()
                            .map_err(|_| format!("parseInt: invalid syntax {t:?}"))?,
                    )
                }
            }
            "parseUint" => {
                want(name, args, 1)?;
                let t = a0();
                Value::from(
                    t.parse::<u64>()
                        .map_err(|_| format!("parseUint: invalid syntax {t:?}"))?,
                )
            }
            "parseFloat" => {
                want(name, args, 1)?;
                let t = a0();
                if t.is_empty() {
                    float(0.0)
                } else {
                    float(
                        t.parse::<f64>()
                            .map_err(|_| format!("parseFloat: invalid syntax {t:?}"))?,
                    )
                }
            }
            "split" => {
                want(name, args, 2)?;
                let (sep, text) = (s(&args[0]), s(&args[1]));
                if text.is_empty() {
                    Value::Array(vec![])
                } else {
                    Value::Array(
                        text.split(sep.as_str())
                            .map(|x| Value::String(x.into()))
                            .collect(),
                    )
                }
            }
            "join" => {
                want(name, args, 2)?;
                let (sep, l) = match (&args[0], &args[1]) {
                    (Value::String(sep), l @ Value::Array(_)) => (sep.clone(), l),
                    (l @ Value::Array(_), Value::String(sep)) => (sep.clone(), l),
                    _ => return Err("join needs a separator and a list".into()),
                };
                Value::String(list(l)?.iter().map(s).collect::<Vec<_>>().join(&sep))
            }
            "trimSpace" => {
                want(name, args, 1)?;
                Value::String(a0().trim().to_string())
            }
            "trim" => {
                want(name, args, 2)?;
                let cut = s(&args[0]);
                Value::String(s(&args[1]).trim_matches(|c| cut.contains(c)).to_string())
            }
            "replaceAll" => {
                want(name, args, 3)?;
                Value::String(s(&args[2]).replace(&s(&args[0]), &s(&args[1])))
            }
            "regexReplaceAll" => {
                want(name, args, 3)?;
                let re = regex::Regex::new(&s(&args[0])).map_err(|e| e.to_string())?;
                // Go's `$1` expansion matches the regex crate's.
                Value::String(
                    re.replace_all(&s(&args[2]), s(&args[1]).as_str())
                        .into_owned(),
                )
            }
            "regexMatch" => {
                want(name, args, 2)?;
                let re = regex::Regex::new(&s(&args[0])).map_err(|e| e.to_string())?;
                Value::Bool(re.is_match(&s(&args[1])))
            }
            "toLower" => {
                want(name, args, 1)?;
                Value::String(a0().to_lowercase())
            }
            "toUpper" => {
                want(name, args, 1)?;
                Value::String(a0().to_uppercase())
            }
            "toTitle" => {
                want(name, args, 1)?;
                Value::String(title(&a0()))
            }
            "contains" => {
                want(name, args, 2)?;
                Value::Bool(contains_value(&args[1], &args[0])?)
            }
            "in" => {
                want(name, args, 2)?;
                Value::Bool(contains_value(&args[0], &args[1])?)
            }
            "containsAll" | "containsAny" | "containsNone" | "containsNotAll" => {
                want(name, args, 2)?;
                let needles = list(&args[0])?;
                let mut hits = 0;
                for n in &needles {
                    if contains_value(&args[1], n)? {
                        hits += 1;
                    }
                }
                Value::Bool(match name {
                    "containsAll" => hits == needles.len(),
                    "containsAny" => hits > 0,
                    "containsNone" => hits == 0,
                    _ => hits < needles.len(),
                })
            }
            "byKey" => {
                want(name, args, 1)?;
                let mut out = Map::new();
                for p in list(&args[0])? {
                    let key = s(&p["Key"]);
                    let Some((top, rest)) = key.split_once('/') else {
                        continue;
                    };
                    if rest.is_empty() {
                        continue;
                    }
                    let mut pair = p.clone();
                    if let Value::Object(o) = &mut pair {
                        o.insert("Key".into(), Value::String(rest.to_string()));
                    }
                    let group = out
                        .entry(top.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(g) = group {
                        g.insert(rest.to_string(), pair);
                    }
                }
                Value::Object(out)
            }
            "byTag" => {
                want(name, args, 1)?;
                let mut out = Map::new();
                for svc in list(&args[0])? {
                    for tag in list(&svc["Tags"])? {
                        let e = out.entry(s(&tag)).or_insert_with(|| Value::Array(vec![]));
                        if let Value::Array(a) = e {
                            a.push(svc.clone());
                        }
                    }
                }
                Value::Object(out)
            }
            "explode" => {
                want(name, args, 1)?;
                explode(&list(&args[0])?)?
            }
            "base64Encode" => {
                want(name, args, 1)?;
                Value::String(base64::engine::general_purpose::STANDARD.encode(a0()))
            }
            "base64Decode" => {
                want(name, args, 1)?;
                let b = base64::engine::general_purpose::STANDARD
                    .decode(a0())
                    .map_err(|e| format!("base64Decode: {e}"))?;
                Value::String(String::from_utf8_lossy(&b).into_owned())
            }
            "base64URLEncode" => {
                want(name, args, 1)?;
                Value::String(base64::engine::general_purpose::URL_SAFE.encode(a0()))
            }
            "base64URLDecode" => {
                want(name, args, 1)?;
                let b = base64::engine::general_purpose::URL_SAFE
                    .decode(a0())
                    .map_err(|e| format!("base64URLDecode: {e}"))?;
                Value::String(String::from_utf8_lossy(&b).into_owned())
            }
            "sha256Hex" => {
                use sha2::Digest;
                want(name, args, 1)?;
                let d = sha2::Sha256::digest(a0().as_bytes());
                Value::String(d.iter().map(|b| format!("{b:02x}")).collect())
            }
            "md5sum" => {
                use md5::Digest;
                want(name, args, 1)?;
                let d = md5::Md5::digest(a0().as_bytes());
                Value::String(d.iter().map(|b| format!("{b:02x}")).collect())
            }
            "timestamp" => {
                let now = chrono::Utc::now();
                Value::String(match args.first().map(s).as_deref() {
                    None => now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    Some("unix") => now.timestamp().to_string(),
                    Some(layout) => now.format(&go_layout(layout)).to_string(),
                })
            }
            "add" | "subtract" | "multiply" | "divide" | "modulo" | "minimum" | "maximum" => {
                arith(name, args)?
            }
            "writeToFile" | "executeTemplate" | "plugin" => {
                return Err(format!("{name} is not available in Caravan yet"))
            }
            _ if name.starts_with("sprig_") => {
                return crate::sprig::call(name, args).unwrap_or(Err(String::new()))
            }
            _ => return Err(String::new()),
        })
    })();
    match r {
        Err(e) if e.is_empty() => None,
        other => Some(other),
    }
}
