//! Go's value formatting over JSON values: `%v` printing (`map[a:1 b:2]`, `[1 2]`,
//! `<no value>`), truthiness, and a `fmt.Sprintf` subset for `printf`.

use serde_json::Value;

/// Go's `%v` rendering of a value at the top level of an action.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else if f.abs() >= 1e21 || (f != 0.0 && f.abs() < 1e-4) {
                    format!("{f:e}").replace('e', "e+").replace("e+-", "e-")
                } else {
                    f.to_string()
                }
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(go_print_inner).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_print_inner(&o[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn go_print_inner(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => go_print(other),
    }
}

/// Go's truthiness: false, 0, nil and empty collections are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().map(|f| f != 0.0).unwrap_or(false),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

pub(crate) fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// A subset of Go's `fmt.Sprintf`: flags `-+0 #`, width, precision and the verbs
/// `v s d q x X o b f F e g t c %`.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        let verb = loop {
            match it.next() {
                Some(ch) if "-+# 0123456789.".contains(ch) => spec.push(ch),
                Some(ch) => break ch,
                None => {
                    out.push_str("%!(NOVERB)");
                    return out;
                }
            }
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(ai) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        ai += 1;
        let flags: String = spec.chars().take_while(|c| "-+# 0".contains(*c)).collect();
        let left = flags.contains('-');
        let zero = flags.contains('0') && !left;
        let plus = flags.contains('+');
        let spec_body = &spec[flags.len()..];
        let (width, prec) = match spec_body.split_once('.') {
            Some((w, p)) => (
                w.parse::<usize>().ok(),
                Some(p.parse::<usize>().unwrap_or(0)),
            ),
            None => (spec_body.parse::<usize>().ok(), None),
        };
        let int = |f: f64| f.trunc() as i64;
        let body = match verb {
            'd' => match num(arg) {
                Some(f) if plus && f >= 0.0 => format!("+{}", int(f)),
                Some(f) => format!("{}", int(f)),
                None => format!("%!d({})", go_print(arg)),
            },
            'f' | 'F' => match num(arg) {
                Some(f) if plus && f >= 0.0 => format!("+{:.*}", prec.unwrap_or(6), f),
                Some(f) => format!("{:.*}", prec.unwrap_or(6), f),
                None => format!("%!f({})", go_print(arg)),
            },
            'e' => match num(arg) {
                Some(f) => {
                    let s = format!("{:.*e}", prec.unwrap_or(6), f);
                    match s.split_once('e') {
                        Some((m, e)) => {
                            let (sign, digits) = match e.strip_prefix('-') {
                                Some(d) => ('-', d),
                                None => ('+', e),
                            };
                            format!("{m}e{sign}{digits:0>2}")
                        }
                        None => s,
                    }
                }
                None => format!("%!e({})", go_print(arg)),
            },
            'g' => match num(arg) {
                Some(_) => go_print(arg),
                None => format!("%!g({})", go_print(arg)),
            },
            'q' => match arg {
                Value::Number(_) if num(arg).is_some_and(|f| f.fract() == 0.0) => {
                    let ch = char::from_u32(num(arg).unwrap_or(0.0) as u32).unwrap_or('\u{fffd}');
                    format!("{ch:?}")
                }
                _ => serde_json::to_string(&Value::String(go_print(arg))).unwrap_or_default(),
            },
            'x' | 'X' => {
                let s = match arg {
                    Value::Number(_) => format!("{:x}", int(num(arg).unwrap_or(0.0))),
                    _ => go_print(arg).bytes().map(|b| format!("{b:02x}")).collect(),
                };
                if verb == 'X' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            'o' => match num(arg) {
                Some(f) => format!("{:o}", int(f)),
                None => format!("%!o({})", go_print(arg)),
            },
            'b' => match num(arg) {
                Some(f) => format!("{:b}", int(f)),
                None => format!("%!b({})", go_print(arg)),
            },
            'c' => match num(arg) {
                Some(f) => char::from_u32(f as u32)
                    .map(String::from)
                    .unwrap_or_default(),
                None => format!("%!c({})", go_print(arg)),
            },
            't' => match arg {
                Value::Bool(b) => b.to_string(),
                _ => format!("%!t({})", go_print(arg)),
            },
            's' | 'v' => {
                let s = match arg {
                    Value::Null => "<nil>".to_string(),
                    _ => go_print(arg),
                };
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            other => format!("%!{other}({})", go_print(arg)),
        };
        let len = body.chars().count();
        match width {
            Some(w) if w > len => {
                let pad = w - len;
                if left {
                    out.push_str(&body);
                    out.extend(std::iter::repeat_n(' ', pad));
                } else if zero && matches!(verb, 'd' | 'f' | 'x' | 'X' | 'o' | 'b' | 'e') {
                    let (sign, digits) = match body.strip_prefix(['-', '+']) {
                        Some(d) => (&body[..1], d),
                        None => ("", body.as_str()),
                    };
                    out.push_str(sign);
                    out.extend(std::iter::repeat_n('0', pad));
                    out.push_str(digits);
                } else {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    if ai < args.len() {
        let extra: Vec<String> = args[ai..]
            .iter()
            .map(|a| match a {
                Value::String(s) => format!("string={s}"),
                Value::Bool(b) => format!("bool={b}"),
                Value::Number(n) if n.is_f64() => format!("float64={}", go_print(a)),
                Value::Number(_) => format!("int={}", go_print(a)),
                other => go_print(other),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}
