//! The Sprig template library as consul-template exposes it: every Sprig function under a
//! `sprig_` prefix (`{{ "x" | sprig_trimPrefix "pre" }}`), with Sprig's argument order, its
//! empty/nil rules (`sprig_default`, `sprig_empty`, `sprig_coalesce`), its lenient number
//! conversions (spf13/cast: `"42"` is 42, junk is 0) and Go's argument type checks ("wrong type
//! for value; expected string; got int"). Values are JSON, so a Go `time.Time` is carried as
//! its Go string form (`sprig_now` prints as Go prints it, and the date functions read it back).
//! Functions left out (key generation, network lookups, the agent's environment, ...) fail the
//! render saying why; see [`LEFT_OUT`].

use crate::exec::{kind, want};
use crate::fmt::go_print;
use crate::helpers::go_layout;
use base64::Engine;
use serde_json::{Map, Value};

/// Sprig functions Caravan does not provide, with the reason (also in docs/compatibility.md).
pub(crate) const LEFT_OUT: &[(&str, &str)] = &[
    (
        "env",
        "it reads the client agent's own environment (use `env`, which reads the task's)",
    ),
    (
        "expandenv",
        "it reads the client agent's own environment (use `env`)",
    ),
    (
        "getHostByName",
        "DNS lookups are not a watched template dependency",
    ),
    (
        "genPrivateKey",
        "key and certificate generation is not built (use Vault `pkiCert`)",
    ),
    (
        "genCA",
        "key and certificate generation is not built (use Vault `pkiCert`)",
    ),
    (
        "genCAWithKey",
        "key and certificate generation is not built (use Vault `pkiCert`)",
    ),
    (
        "genSelfSignedCert",
        "key and certificate generation is not built (use Vault `pkiCert`)",
    ),
    (
        "genSelfSignedCertWithKey",
        "key and certificate generation is not built (use Vault `pkiCert`)",
    ),
    (
        "genSignedCert",
        "key and certificate generation is not built (use Vault `pkiCert`)",
    ),
    (
        "genSignedCertWithKey",
        "key and certificate generation is not built (use Vault `pkiCert`)",
    ),
    (
        "buildCustomCert",
        "key and certificate generation is not built (use Vault `pkiCert`)",
    ),
    (
        "derivePassword",
        "the master-password algorithm is not built",
    ),
    ("bcrypt", "password hashing is not built"),
    ("htpasswd", "password hashing is not built"),
    ("encryptAES", "AES encryption in templates is not built"),
    ("decryptAES", "AES encryption in templates is not built"),
    (
        "semver",
        "no semantic-version library in the template engine",
    ),
    (
        "semverCompare",
        "no semantic-version library in the template engine",
    ),
    (
        "addf",
        "Sprig's decimal arithmetic is not built (use `add`, `multiply`... on floats)",
    ),
    ("add1f", "Sprig's decimal arithmetic is not built"),
    ("subf", "Sprig's decimal arithmetic is not built"),
    ("mulf", "Sprig's decimal arithmetic is not built"),
    ("divf", "Sprig's decimal arithmetic is not built"),
    ("urlParse", "URL parsing is not built"),
    ("urlJoin", "URL parsing is not built"),
    ("abbrevboth", "not built"),
];

/// Functions that change their first argument in place in Go (`{{ $_ := sprig_set $d "k" 1 }}`
/// changes `$d`); the executor writes the result back to the variable passed.
pub(crate) fn mutates_first_arg(name: &str) -> bool {
    matches!(
        name,
        "sprig_set"
            | "sprig_unset"
            | "sprig_merge"
            | "sprig_mustMerge"
            | "sprig_mergeOverwrite"
            | "sprig_mustMergeOverwrite"
    )
}

/// Go's type name of a JSON value (`%T`).
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        other => kind(other),
    }
}

fn wrong(expected: &str, v: &Value) -> String {
    match v {
        Value::Null => format!("invalid value; expected {expected}"),
        other => format!(
            "wrong type for value; expected {expected}; got {}",
            go_type(other)
        ),
    }
}

fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or(&Value::Null)
}

fn a_str(args: &[Value], i: usize) -> Result<String, String> {
    match arg(args, i) {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong("string", other)),
    }
}

fn a_int(args: &[Value], i: usize) -> Result<i64, String> {
    match arg(args, i) {
        Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
        other => Err(wrong("int", other)),
    }
}

fn a_bool(args: &[Value], i: usize) -> Result<bool, String> {
    match arg(args, i) {
        Value::Bool(b) => Ok(*b),
        other => Err(wrong("bool", other)),
    }
}

fn a_map(args: &[Value], i: usize) -> Result<Map<String, Value>, String> {
    match arg(args, i) {
        Value::Object(m) => Ok(m.clone()),
        other => Err(wrong("map[string]interface {}", other)),
    }
}

fn at_least(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() >= n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want at least {n} got {}",
            args.len()
        ))
    }
}

/// Sprig's `strval`: Go's `%v`, with `<nil>` for nil.
fn strval(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => go_print(other),
    }
}

/// Sprig's `strslice`: a list's non-nil elements as strings; a scalar as a one-element list.
fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter(|x| !x.is_null()).map(strval).collect(),
        Value::Null => vec![],
        other => vec![strval(other)],
    }
}

fn strings(v: Vec<String>) -> Value {
    Value::Array(v.into_iter().map(Value::String).collect())
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// Sprig's `empty`: nil, false, 0, and empty strings, lists and maps.
fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, then `0x`, `0o`, `0b` or a leading `0` (octal).
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower)
    };
    let digits = if radix != 10 {
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let m = i128::from_str_radix(&digits, radix).ok()?;
    i64::try_from(if neg { -m } else { m }).ok()
}

/// spf13/cast's `ToInt64`: numbers truncated, strings parsed (`"3.0"` is 3), bools 1/0, else 0.
fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().map(|f| f as i64).unwrap_or(0)),
        Value::String(s) => {
            // cast trims a zero decimal part ("3.00" -> "3") before parsing.
            let mut t = s.as_str();
            if let Some((int, frac)) = s.rsplit_once('.') {
                if !frac.is_empty() && frac.bytes().all(|b| b == b'0') {
                    t = int;
                }
            }
            parse_go_int(t).unwrap_or(0)
        }
        Value::Bool(b) => *b as i64,
        _ => 0,
    }
}

/// spf13/cast's `ToFloat64`.
fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.parse::<f64>().unwrap_or(0.0),
        Value::Bool(b) => *b as i64 as f64,
        _ => 0.0,
    }
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\u{7}' => o.push_str("\\a"),
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\u{b}' => o.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                o.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Go's `strings.Title`: a letter after a separator is upper-cased.
fn go_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        // Go's isSeparator: ASCII letters, digits and `_` join words, other ASCII separates;
        // beyond ASCII only letters, digits and spaces are classified.
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !c.is_alphanumeric() && c.is_whitespace()
        };
    }
    out
}

/// Go's `strings.Split`: an empty separator splits into characters; an empty text gives `[""]`.
fn go_split(text: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return text.chars().map(String::from).collect();
    }
    text.split(sep).map(String::from).collect()
}

/// Go's `strings.SplitN`.
fn go_splitn(text: &str, sep: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return vec![];
    }
    if n < 0 {
        return go_split(text, sep);
    }
    if sep.is_empty() {
        let chars: Vec<char> = text.chars().collect();
        let n = n as usize;
        if chars.len() <= n {
            return chars.into_iter().map(String::from).collect();
        }
        let mut out: Vec<String> = chars[..n - 1].iter().map(|c| c.to_string()).collect();
        out.push(chars[n - 1..].iter().collect());
        return out;
    }
    text.splitn(n as usize, sep).map(String::from).collect()
}

fn indexed_map(parts: Vec<String>) -> Value {
    Value::Object(
        parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("_{i}"), Value::String(p)))
            .collect(),
    )
}

/// goutils' `WrapCustom`: breaks at the last space within `width` columns (bytes).
fn wrap_custom(s: &str, width: i64, newline: &str, long_words: bool) -> String {
    if s.is_empty() {
        return String::new();
    }
    let newline = if newline.is_empty() { "\n" } else { newline };
    let width = width.max(1) as usize;
    let b = s.as_bytes();
    let mut out = String::new();
    let mut off = 0usize;
    let cut = |a: usize, z: usize| String::from_utf8_lossy(&b[a..z]).into_owned();
    while b.len() - off > width {
        if b[off] == b' ' {
            off += 1;
            continue;
        }
        let end = (width + off + 1).min(b.len());
        match b[off..end].iter().rposition(|&c| c == b' ') {
            Some(p) => {
                out.push_str(&cut(off, off + p));
                out.push_str(newline);
                off += p + 1;
            }
            None if long_words => {
                out.push_str(&cut(off, off + width));
                out.push_str(newline);
                off += width;
            }
            None => match b[off + width..].iter().position(|&c| c == b' ') {
                None => {
                    out.push_str(&cut(off, b.len()));
                    off = b.len();
                }
                Some(p) => {
                    let at = off + width + p;
                    out.push_str(&cut(off, at));
                    out.push_str(newline);
                    off = at + 1;
                }
            },
        }
    }
    out.push_str(&cut(off, b.len()));
    out
}

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || c.is_whitespace()
}

#[derive(Clone, Copy, PartialEq)]
enum Word {
    None,
    Number,
    Upper,
    Alpha,
    Connector,
    Punct,
    Other,
}

/// Go's `unicode.IsPunct` over ASCII (`$+<=>^`|~` are symbols, not punctuation); other
/// characters count as "other".
fn is_punct(c: char) -> bool {
    "!\"#%&'()*,./:;?@[\\]{}".contains(c)
}

fn is_alpha(c: char) -> bool {
    c.is_alphabetic() && !is_cjk(c)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF)
}

/// xstrings' word splitter behind `snakecase`/`kebabcase`: runs of upper case (`HTTPStatus`
/// splits as `HTTP` + `Status`), capitalised words, lower-case words, numbers, connectors
/// (`-`, `_`, spaces) and punctuation.
fn next_word(s: &str) -> (Word, &str, &str) {
    let Some(c) = s.chars().next() else {
        return (Word::None, "", "");
    };
    let end_while = |start: usize, pred: &dyn Fn(char) -> bool| -> usize {
        s[start..]
            .char_indices()
            .find(|&(_, c)| !pred(c))
            .map(|(i, _)| start + i)
            .unwrap_or(s.len())
    };
    let first = c.len_utf8();
    let (wt, end) = if is_connector(c) {
        (Word::Connector, end_while(first, &is_connector))
    } else if is_punct(c) {
        (Word::Punct, end_while(first, &is_punct))
    } else if c.is_uppercase() {
        let next = s[first..].chars().next();
        match next {
            Some(n) if n.is_uppercase() => {
                let end = end_while(first, &|c: char| c.is_uppercase());
                // "HTTPStatus": the last capital starts the next word when letters follow.
                match s[end..].chars().next() {
                    Some(after) if is_alpha(after) => {
                        let last = s[..end]
                            .chars()
                            .next_back()
                            .map(char::len_utf8)
                            .unwrap_or(0);
                        (Word::Upper, end - last)
                    }
                    _ => (Word::Upper, end),
                }
            }
            Some(n) if is_alpha(n) => (
                Word::Upper,
                end_while(first, &|c: char| is_alpha(c) && !c.is_uppercase()),
            ),
            _ => (Word::Upper, first),
        }
    } else if is_alpha(c) {
        (
            Word::Alpha,
            end_while(first, &|c: char| is_alpha(c) && !c.is_uppercase()),
        )
    } else if c.is_numeric() {
        (Word::Number, end_while(first, &|c: char| c.is_numeric()))
    } else {
        (
            Word::Other,
            end_while(first, &|c: char| {
                !(is_connector(c) || is_alpha(c) || c.is_numeric() || is_punct(c))
            }),
        )
    };
    (wt, &s[..end], &s[end..])
}

fn lower_word(out: &mut String, wt: Word, w: &str, conn: char) {
    if wt != Word::Upper && wt != Word::Connector {
        out.push_str(w);
        return;
    }
    for c in w.chars() {
        if is_connector(c) {
            out.push(conn);
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// xstrings' `camelCaseToLowerCase` (`snakecase`, `kebabcase`): `HTTPServer` -> `http_server`,
/// `http2xx` -> `http_2xx`, `Bld4Floor3rd` -> `bld4_floor_3rd`.
fn to_lower_case(s: &str, conn: char) -> String {
    let mut out = String::new();
    if s.is_empty() {
        return out;
    }
    let (mut wt, mut word, mut rest) = next_word(s);
    while !rest.is_empty() {
        if wt != Word::Connector {
            lower_word(&mut out, wt, word, conn);
        }
        let (prev, last) = (wt, word);
        (wt, word, rest) = next_word(rest);
        match prev {
            Word::Number => {
                while wt == Word::Alpha || wt == Word::Number {
                    lower_word(&mut out, wt, word, conn);
                    (wt, word, rest) = next_word(rest);
                }
                if !matches!(wt, Word::None | Word::Punct | Word::Connector) {
                    out.push(conn);
                }
            }
            Word::Connector => lower_word(&mut out, prev, last, conn),
            Word::Punct => {}
            _ => {
                if wt != Word::Number {
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(conn);
                    }
                    continue;
                }
                if rest.is_empty() {
                    continue;
                }
                let num = word;
                (wt, word, rest) = next_word(rest);
                if wt != Word::Alpha {
                    lower_word(&mut out, Word::Number, num, conn);
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(conn);
                    }
                    continue;
                }
                out.push(conn);
                lower_word(&mut out, Word::Number, num, conn);
                while wt == Word::Alpha || wt == Word::Number {
                    lower_word(&mut out, wt, word, conn);
                    (wt, word, rest) = next_word(rest);
                }
                if !matches!(wt, Word::None | Word::Connector | Word::Punct) {
                    out.push(conn);
                }
            }
        }
    }
    lower_word(&mut out, wt, word, conn);
    out
}

/// xstrings' `ToCamelCase` as Sprig's `camelcase` uses it: words joined by `_`, `-` or spaces
/// become capitalised (`http_server` -> `HttpServer`); leading connectors stay, runs of
/// connectors keep all but the last.
fn camelcase(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() && is_connector(chars[i]) {
        out.push(chars[i]);
        i += 1;
    }
    let Some(&first) = chars.get(i) else {
        return out;
    };
    let mut r0 = first.to_uppercase().next().unwrap_or(first);
    for &c in &chars[i + 1..] {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
            continue;
        }
        if is_connector(r1) {
            r0 = r0.to_uppercase().next().unwrap_or(r0);
        } else {
            out.push(r1);
        }
    }
    out.push(r0);
    out
}

/// goutils' `SwapCase`.
fn swapcase(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_uppercase() {
            out.extend(c.to_lowercase());
        } else if c.is_lowercase() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += x as u32;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn b32enc(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = buf.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(B32[((n >> (35 - i * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b32dec(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim_end_matches(['\n', '\r']);
    if !s.len().is_multiple_of(8) {
        return Err(format!(
            "illegal base32 data at input byte {}",
            s.len() / 8 * 8
        ));
    }
    let mut out = Vec::new();
    for (ci, chunk) in s.as_bytes().chunks(8).enumerate() {
        let mut n = 0u64;
        let mut len = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'2'..=b'7' => c - b'2' + 26,
                b'=' => {
                    n <<= 5 * (8 - i) as u64;
                    break;
                }
                _ => return Err(format!("illegal base32 data at input byte {}", ci * 8 + i)),
            };
            n = (n << 5) | v as u64;
            len = i + 1;
        }
        let bytes = len * 5 / 8;
        for i in 0..bytes {
            out.push((n >> (32 - i * 8)) as u8);
        }
    }
    Ok(out)
}

fn random_bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).map_err(|e| format!("no random source: {e}"))?;
    Ok(buf)
}

/// `count` characters drawn uniformly from `set` (rejection sampling over random bytes).
fn random_from(set: &[u8], count: i64) -> Result<String, String> {
    let mut out = String::new();
    let limit = 256 - 256 % set.len();
    while (out.len() as i64) < count {
        for b in random_bytes(64)? {
            if (b as usize) < limit && (out.len() as i64) < count {
                out.push(set[b as usize % set.len()] as char);
            }
        }
    }
    Ok(out)
}

/// Go's `path.Clean`.
fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = vec![];
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn path_dir(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    path_clean(dir)
}

fn path_ext(p: &str) -> String {
    for (i, c) in p.char_indices().rev() {
        if c == '/' {
            break;
        }
        if c == '.' {
            return p[i..].to_string();
        }
    }
    String::new()
}

/// A time value: Sprig's dates are Go `time.Time`s; here they travel as Go's printed form.
type Time = chrono::DateTime<chrono::FixedOffset>;

const GO_TIME: &str = "%Y-%m-%d %H:%M:%S%.f %z";

fn time_value(t: Time) -> Value {
    let zone = if t.offset().local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        t.format("%z").to_string()
    };
    Value::String(format!("{} {zone}", t.format(GO_TIME)))
}

/// Reads a time back: the form [`time_value`] prints, or RFC 3339.
fn parse_time(v: &Value) -> Option<Time> {
    let Value::String(s) = v else {
        return None;
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    let (head, _zone) = s.rsplit_once(' ')?;
    chrono::DateTime::parse_from_str(head, GO_TIME).ok()
}

fn now() -> Time {
    chrono::Local::now().fixed_offset()
}

/// Sprig's `dateInZone`: a time, or Unix seconds (an int); anything else is now.
fn date_in_zone(layout: &str, date: &Value, zone: &str) -> Result<String, String> {
    let t = time_arg(date);
    let t = match zone {
        "Local" => t.with_timezone(&chrono::Local).fixed_offset(),
        "UTC" | "" => t.with_timezone(&chrono::Utc).fixed_offset(),
        z if std::path::Path::new("/usr/share/zoneinfo")
            .join(z)
            .is_file() =>
        {
            return Err(format!(
                "time zone {z:?}: only UTC and Local are available in Caravan's templates"
            ))
        }
        // Go falls back to UTC for a zone it cannot load.
        _ => t.with_timezone(&chrono::Utc).fixed_offset(),
    };
    Ok(t.format(&go_layout(layout)).to_string())
}

/// A time argument: a time value, or Unix seconds (an int); anything else is now, as Sprig's
/// `date` and `ago` treat it.
fn time_arg(v: &Value) -> Time {
    match v {
        Value::Number(n) if n.as_i64().is_some() => {
            chrono::DateTime::from_timestamp(n.as_i64().unwrap_or(0), 0)
                .map(|t| t.fixed_offset())
                .unwrap_or_else(now)
        }
        other => parse_time(other).unwrap_or_else(now),
    }
}

/// Go's `time.Duration.String` for a duration in nanoseconds (`1h2m3s`, `1.5s`, `2ms`, `0s`).
fn go_duration(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    let frac = |v: u128, digits: u32| -> String {
        let scale = 10u128.pow(digits);
        let (whole, part) = (v / scale, v % scale);
        if part == 0 {
            whole.to_string()
        } else {
            let p = format!("{part:0width$}", width = digits as usize);
            format!("{whole}.{}", p.trim_end_matches('0'))
        }
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", frac(u, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", frac(u, 6));
    }
    let (h, rest) = (u / 3_600_000_000_000, u % 3_600_000_000_000);
    let (m, s) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let secs = frac(s, 9);
    match (h, m) {
        (0, 0) => format!("{sign}{secs}s"),
        (0, m) => format!("{sign}{m}m{secs}s"),
        (h, m) => format!("{sign}{h}h{m}m{secs}s"),
    }
}

/// Go's `time.ParseDuration`: `[-+]` then numbers with units (`1h30m`, `-1.5h`, `300ms`).
fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += num * scale;
    }
    let n = total.round() as i128;
    Some(if neg { -n } else { n })
}

/// Sprig's `toDate`: Go's `time.ParseInLocation(layout, text, Local)`.
fn to_date(layout: &str, text: &str) -> Option<Time> {
    let f = go_layout(layout);
    if let Ok(t) = chrono::DateTime::parse_from_str(text, &f) {
        return Some(t);
    }
    let local = |n: chrono::NaiveDateTime| {
        n.and_local_timezone(chrono::Local)
            .earliest()
            .map(|t| t.fixed_offset())
    };
    if let Ok(n) = chrono::NaiveDateTime::parse_from_str(text, &f) {
        return local(n);
    }
    chrono::NaiveDate::parse_from_str(text, &f)
        .ok()
        .and_then(|d| local(d.and_hms_opt(0, 0, 0)?))
}

/// Go's zero `time.Time`, what Sprig's `toDate` gives for text it cannot parse.
fn zero_time() -> Value {
    Value::String("0001-01-01 00:00:00 +0000 UTC".into())
}

/// Go's `regexp.Compile`, with `MustCompile`'s panic text for the non-`must` forms.
fn regex(re: &str, must: bool) -> Result<regex::Regex, String> {
    regex::Regex::new(re).map_err(|e| {
        if must {
            format!("error parsing regexp: {e}")
        } else {
            format!("regexp: Compile({re:?}): error parsing regexp: {e}")
        }
    })
}

/// Go's `Regexp.Split`.
fn regex_split(re: &regex::Regex, s: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return vec![];
    }
    if !re.as_str().is_empty() && s.is_empty() {
        return vec![String::new()];
    }
    let mut out = vec![];
    let (mut beg, mut end) = (0usize, 0usize);
    for m in re.find_iter(s) {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            out.push(s[beg..end].to_string());
        }
        beg = m.end();
    }
    if end != s.len() {
        out.push(s[beg..].to_string());
    }
    out
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// Sprig's `untilStep`.
fn until_step(start: i64, stop: i64, step: i64) -> Vec<i64> {
    let mut v = vec![];
    if stop < start {
        if step >= 0 {
            return v;
        }
        let mut i = start;
        while i > stop {
            v.push(i);
            i += step;
        }
        return v;
    }
    if step <= 0 {
        return v;
    }
    let mut i = start;
    while i < stop {
        v.push(i);
        i += step;
    }
    v
}

fn ints(v: Vec<i64>) -> Value {
    Value::Array(v.into_iter().map(Value::from).collect())
}

/// The list argument of Sprig's list functions; `op` names the operation for the error
/// ("Cannot find first on type string"), nil fails as Go's reflection does.
fn a_list(args: &[Value], i: usize, op: &str) -> Result<Vec<Value>, String> {
    match arg(args, i) {
        Value::Array(a) => Ok(a.clone()),
        Value::Null => {
            Err("runtime error: invalid memory address or nil pointer dereference".into())
        }
        other => Err(format!("{op} {}", kind(other))),
    }
}

/// mergo's `Merge` (fill what `dst` lacks or holds empty, recursing into maps) or
/// `MergeWithOverwrite` (`src` wins, recursing into maps).
fn merge_into(dst: &mut Map<String, Value>, src: &Map<String, Value>, overwrite: bool) {
    for (k, sv) in src {
        match (dst.get_mut(k), sv) {
            (Some(Value::Object(d)), Value::Object(s)) if !d.is_empty() => {
                merge_into(d, s, overwrite)
            }
            (Some(dv), _) if !empty(dv) && !overwrite => {}
            (Some(_), Value::Null) if overwrite => {}
            _ => {
                dst.insert(k.clone(), sv.clone());
            }
        }
    }
}

/// Sprig's `dig`: walks `keys` through nested maps, `default` where one is missing.
fn dig(m: &Map<String, Value>, keys: &[String], default: &Value) -> Result<Value, String> {
    let Some((k, rest)) = keys.split_first() else {
        return Ok(default.clone());
    };
    match m.get(k) {
        None => Ok(default.clone()),
        Some(v) if rest.is_empty() => Ok(v.clone()),
        Some(Value::Object(inner)) => dig(inner, rest, default),
        Some(other) => Err(format!(
            "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
            go_type(other)
        )),
    }
}

/// Runs `sprig_<name>`; `None` when Sprig has no such function.
pub(crate) fn call(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let short = name.strip_prefix("sprig_")?;
    if let Some((_, why)) = LEFT_OUT.iter().find(|(f, _)| *f == short) {
        return Some(Err(format!("{name} is not available in Caravan: {why}")));
    }
    let r = (|| -> Result<Value, String> {
        let s = |i: usize| a_str(args, i);
        let n = |i: usize| a_int(args, i);
        let one = || want(name, args, 1);
        let two = || want(name, args, 2);
        let three = || want(name, args, 3);
        let text = |v: String| -> Result<Value, String> { Ok(Value::String(v)) };
        match short {
            "hello" => {
                want(name, args, 0)?;
                text("Hello!".into())
            }
            // Strings.
            "trim" => {
                one()?;
                text(s(0)?.trim().to_string())
            }
            "trimAll" | "trimall" => {
                two()?;
                let cut = s(0)?;
                text(s(1)?.trim_matches(|c| cut.contains(c)).to_string())
            }
            "trimPrefix" => {
                two()?;
                let (p, t) = (s(0)?, s(1)?);
                text(t.strip_prefix(p.as_str()).unwrap_or(&t).to_string())
            }
            "trimSuffix" => {
                two()?;
                let (p, t) = (s(0)?, s(1)?);
                text(t.strip_suffix(p.as_str()).unwrap_or(&t).to_string())
            }
            "upper" => {
                one()?;
                text(s(0)?.to_uppercase())
            }
            "lower" => {
                one()?;
                text(s(0)?.to_lowercase())
            }
            "title" => {
                one()?;
                text(go_title(&s(0)?))
            }
            "untitle" => {
                one()?;
                let mut out = String::new();
                let mut next = true;
                for c in s(0)?.chars() {
                    if c.is_whitespace() {
                        next = true;
                        out.push(c);
                    } else if next {
                        out.extend(c.to_lowercase());
                        next = false;
                    } else {
                        out.push(c);
                    }
                }
                text(out)
            }
            "repeat" => {
                two()?;
                let count = n(0)?;
                if count < 0 {
                    return Err("strings: negative Repeat count".into());
                }
                let t = s(1)?;
                if t.len().saturating_mul(count as usize) > 64 << 20 {
                    return Err("strings: Repeat output too large (over 64 MiB)".into());
                }
                text(t.repeat(count as usize))
            }
            "substr" => {
                three()?;
                let (start, end, t) = (n(0)?, n(1)?, s(2)?);
                let len = t.len() as i64;
                let (a, z) = if start < 0 {
                    (0, end)
                } else if end < 0 || end > len {
                    (start, len)
                } else {
                    (start, end)
                };
                if a < 0 || z < a || z > len {
                    return Err(format!(
                        "runtime error: slice bounds out of range [{a}:{z}] with length {len}"
                    ));
                }
                t.get(a as usize..z as usize)
                    .map(|x| Value::String(x.to_string()))
                    .ok_or_else(|| "substr: the bounds split a UTF-8 character".into())
            }
            "nospace" => {
                one()?;
                text(s(0)?.chars().filter(|c| !c.is_whitespace()).collect())
            }
            "trunc" => {
                two()?;
                let (c, t) = (n(0)?, s(1)?);
                let len = t.len() as i64;
                let cut = if c < 0 && len + c > 0 {
                    t.get((len + c) as usize..)
                } else if c >= 0 && len > c {
                    t.get(..c as usize)
                } else {
                    Some(t.as_str())
                };
                cut.map(|x| Value::String(x.to_string()))
                    .ok_or_else(|| "trunc: the length splits a UTF-8 character".into())
            }
            "abbrev" => {
                two()?;
                let (w, t) = (n(0)?, s(1)?);
                if w < 4 || t.len() as i64 <= w {
                    return text(t);
                }
                match t.get(..(w - 3) as usize) {
                    Some(head) => text(format!("{head}...")),
                    None => Err("abbrev: the width splits a UTF-8 character".into()),
                }
            }
            "initials" => {
                one()?;
                let mut out = String::new();
                let mut gap = true;
                for c in s(0)?.chars() {
                    if c.is_whitespace() {
                        gap = true;
                    } else if gap {
                        out.push(c);
                        gap = false;
                    }
                }
                text(out)
            }
            "swapcase" => {
                one()?;
                text(swapcase(&s(0)?))
            }
            "snakecase" => {
                one()?;
                text(to_lower_case(&s(0)?, '_'))
            }
            "kebabcase" => {
                one()?;
                text(to_lower_case(&s(0)?, '-'))
            }
            "camelcase" => {
                one()?;
                text(camelcase(&s(0)?))
            }
            "shuffle" => {
                one()?;
                let mut chars: Vec<char> = s(0)?.chars().collect();
                let bytes = random_bytes(chars.len() * 4)?;
                for i in (1..chars.len()).rev() {
                    let r = u32::from_le_bytes([
                        bytes[i * 4],
                        bytes[i * 4 + 1],
                        bytes[i * 4 + 2],
                        bytes[i * 4 + 3],
                    ]) as usize;
                    chars.swap(i, r % (i + 1));
                }
                text(chars.into_iter().collect())
            }
            "wrap" => {
                two()?;
                text(wrap_custom(&s(1)?, n(0)?, "", false))
            }
            "wrapWith" => {
                three()?;
                text(wrap_custom(&s(2)?, n(0)?, &s(1)?, true))
            }
            "contains" => {
                two()?;
                Ok(Value::Bool(s(1)?.contains(s(0)?.as_str())))
            }
            "hasPrefix" => {
                two()?;
                Ok(Value::Bool(s(1)?.starts_with(s(0)?.as_str())))
            }
            "hasSuffix" => {
                two()?;
                Ok(Value::Bool(s(1)?.ends_with(s(0)?.as_str())))
            }
            "quote" => text(
                args.iter()
                    .filter(|a| !a.is_null())
                    .map(|a| go_quote(&strval(a)))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "squote" => text(
                args.iter()
                    .filter(|a| !a.is_null())
                    .map(|a| format!("'{}'", strval(a)))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "cat" => text(
                args.iter()
                    .filter(|a| !a.is_null())
                    .map(strval)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "indent" | "nindent" => {
                two()?;
                let pad = " ".repeat(n(0)?.clamp(0, 1 << 16) as usize);
                let body = format!("{pad}{}", s(1)?.replace('\n', &format!("\n{pad}")));
                text(if short == "nindent" {
                    format!("\n{body}")
                } else {
                    body
                })
            }
            "replace" => {
                three()?;
                text(s(2)?.replace(&s(0)?, &s(1)?))
            }
            "plural" => {
                three()?;
                let (one_, many, count) = (s(0)?, s(1)?, n(2)?);
                text(if count == 1 { one_ } else { many })
            }
            "split" => {
                two()?;
                Ok(indexed_map(go_split(&s(1)?, &s(0)?)))
            }
            "splitn" => {
                three()?;
                Ok(indexed_map(go_splitn(&s(2)?, &s(0)?, n(1)?)))
            }
            "splitList" => {
                two()?;
                Ok(strings(go_split(&s(1)?, &s(0)?)))
            }
            "join" => {
                two()?;
                text(strslice(&args[1]).join(&s(0)?))
            }
            "sortAlpha" => {
                one()?;
                Ok(strings(match &args[0] {
                    v @ Value::Array(_) => {
                        let mut l = strslice(v);
                        l.sort();
                        l
                    }
                    other => vec![strval(other)],
                }))
            }
            "toString" => {
                one()?;
                text(strval(&args[0]))
            }
            "toStrings" => {
                one()?;
                Ok(strings(strslice(&args[0])))
            }
            "randAlphaNum" | "randAlpha" | "randNumeric" | "randAscii" => {
                one()?;
                let count = n(0)?.clamp(0, 1 << 20);
                let set: Vec<u8> = match short {
                    "randAlphaNum" => (b'0'..=b'9')
                        .chain(b'A'..=b'Z')
                        .chain(b'a'..=b'z')
                        .collect(),
                    "randAlpha" => (b'A'..=b'Z').chain(b'a'..=b'z').collect(),
                    "randNumeric" => (b'0'..=b'9').collect(),
                    _ => (32u8..=126).collect(),
                };
                text(random_from(&set, count)?)
            }
            "randBytes" => {
                one()?;
                let count = n(0)?.clamp(0, 1 << 20) as usize;
                text(base64::engine::general_purpose::STANDARD.encode(random_bytes(count)?))
            }
            "uuidv4" => {
                want(name, args, 0)?;
                text(uuid::Uuid::new_v4().to_string())
            }
            // Defaults.
            "default" => {
                at_least(name, args, 1)?;
                Ok(match args.get(1) {
                    Some(given) if !empty(given) => given.clone(),
                    _ => args[0].clone(),
                })
            }
            "empty" => {
                one()?;
                Ok(Value::Bool(empty(&args[0])))
            }
            "coalesce" => Ok(args
                .iter()
                .find(|a| !empty(a))
                .cloned()
                .unwrap_or(Value::Null)),
            "all" => Ok(Value::Bool(args.iter().all(|a| !empty(a)))),
            "any" => Ok(Value::Bool(args.iter().any(|a| !empty(a)))),
            "ternary" => {
                three()?;
                Ok(if a_bool(args, 2)? {
                    args[0].clone()
                } else {
                    args[1].clone()
                })
            }
            "fromJson" | "mustFromJson" => {
                one()?;
                match serde_json::from_str::<Value>(&s(0)?) {
                    Ok(v) => Ok(v),
                    Err(e) if short == "mustFromJson" => Err(e.to_string()),
                    Err(_) => Ok(Value::Null),
                }
            }
            "toJson" | "mustToJson" | "toRawJson" | "mustToRawJson" => {
                one()?;
                let j = serde_json::to_string(&args[0]).map_err(|e| e.to_string())?;
                // Go's json.Marshal escapes <, > and &; the Raw forms do not.
                text(if short.contains("Raw") {
                    j
                } else {
                    j.replace('<', "\\u003c")
                        .replace('>', "\\u003e")
                        .replace('&', "\\u0026")
                })
            }
            "toPrettyJson" | "mustToPrettyJson" => {
                one()?;
                let j = serde_json::to_string_pretty(&args[0]).map_err(|e| e.to_string())?;
                text(
                    j.replace('<', "\\u003c")
                        .replace('>', "\\u003e")
                        .replace('&', "\\u0026"),
                )
            }
            "deepCopy" | "mustDeepCopy" => {
                one()?;
                Ok(args[0].clone())
            }
            "fail" => {
                one()?;
                Err(s(0)?)
            }
            // Reflection.
            "typeOf" => {
                one()?;
                text(go_type(&args[0]).into())
            }
            "typeIs" | "typeIsLike" => {
                two()?;
                let t = s(0)?;
                let actual = go_type(&args[1]);
                Ok(Value::Bool(
                    t == actual || (short == "typeIsLike" && t == format!("*{actual}")),
                ))
            }
            "kindOf" => {
                one()?;
                text(match &args[0] {
                    Value::Null => "invalid".into(),
                    other => kind(other).into(),
                })
            }
            "kindIs" => {
                two()?;
                let k = match &args[1] {
                    Value::Null => "invalid",
                    other => kind(other),
                };
                Ok(Value::Bool(s(0)? == k))
            }
            "deepEqual" => {
                two()?;
                Ok(Value::Bool(args[0] == args[1]))
            }
            // Paths.
            "base" | "osBase" => {
                one()?;
                text(path_base(&s(0)?))
            }
            "dir" | "osDir" => {
                one()?;
                text(path_dir(&s(0)?))
            }
            "clean" | "osClean" => {
                one()?;
                text(path_clean(&s(0)?))
            }
            "ext" | "osExt" => {
                one()?;
                text(path_ext(&s(0)?))
            }
            "isAbs" | "osIsAbs" => {
                one()?;
                Ok(Value::Bool(s(0)?.starts_with('/')))
            }
            // Encodings and hashes.
            "b64enc" => {
                one()?;
                text(base64::engine::general_purpose::STANDARD.encode(s(0)?))
            }
            "b64dec" => {
                one()?;
                // Sprig returns the decoder's error text as the value.
                text(
                    match base64::engine::general_purpose::STANDARD.decode(s(0)?) {
                        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                        Err(e) => format!("illegal base64 data: {e}"),
                    },
                )
            }
            "b32enc" => {
                one()?;
                text(b32enc(s(0)?.as_bytes()))
            }
            "b32dec" => {
                one()?;
                text(match b32dec(&s(0)?) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => e,
                })
            }
            "sha1sum" => {
                use sha1::Digest;
                one()?;
                text(hex(&sha1::Sha1::digest(s(0)?.as_bytes())))
            }
            "sha256sum" => {
                use sha2::Digest;
                one()?;
                text(hex(&sha2::Sha256::digest(s(0)?.as_bytes())))
            }
            "sha512sum" => {
                use sha2::Digest;
                one()?;
                text(hex(&sha2::Sha512::digest(s(0)?.as_bytes())))
            }
            "adler32sum" => {
                one()?;
                text(adler32(s(0)?.as_bytes()).to_string())
            }
            // Regular expressions.
            "regexMatch" | "mustRegexMatch" => {
                two()?;
                let t = s(1)?;
                match regex(&s(0)?, true) {
                    Ok(re) => Ok(Value::Bool(re.is_match(&t))),
                    Err(e) if short == "mustRegexMatch" => Err(e),
                    Err(_) => Ok(Value::Bool(false)),
                }
            }
            "regexFindAll" | "mustRegexFindAll" => {
                three()?;
                let re = regex(&s(0)?, short.starts_with("must"))?;
                let (t, lim) = (s(1)?, n(2)?);
                let found = re.find_iter(&t).map(|m| m.as_str().to_string());
                Ok(strings(if lim < 0 {
                    found.collect()
                } else {
                    found.take(lim as usize).collect()
                }))
            }
            "regexFind" | "mustRegexFind" => {
                two()?;
                let re = regex(&s(0)?, short.starts_with("must"))?;
                text(
                    re.find(&s(1)?)
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                )
            }
            "regexReplaceAll" | "mustRegexReplaceAll" => {
                three()?;
                let re = regex(&s(0)?, short.starts_with("must"))?;
                text(re.replace_all(&s(1)?, s(2)?.as_str()).into_owned())
            }
            "regexReplaceAllLiteral" | "mustRegexReplaceAllLiteral" => {
                three()?;
                let re = regex(&s(0)?, short.starts_with("must"))?;
                let repl = s(2)?;
                text(re.replace_all(&s(1)?, regex::NoExpand(&repl)).into_owned())
            }
            "regexSplit" | "mustRegexSplit" => {
                three()?;
                let re = regex(&s(0)?, short.starts_with("must"))?;
                Ok(strings(regex_split(&re, &s(1)?, n(2)?)))
            }
            "regexQuoteMeta" => {
                one()?;
                text(quote_meta(&s(0)?))
            }
            // Numbers.
            "atoi" => {
                one()?;
                Ok(Value::from(s(0)?.parse::<i64>().unwrap_or(0)))
            }
            "int" | "int64" => {
                one()?;
                Ok(Value::from(to_i64(&args[0])))
            }
            "float64" => {
                one()?;
                Ok(float(to_f64(&args[0])))
            }
            "toDecimal" => {
                one()?;
                Ok(Value::from(
                    i64::from_str_radix(&strval(&args[0]), 8).unwrap_or(0),
                ))
            }
            "add" => Ok(Value::from(
                args.iter().fold(0i64, |a, b| a.wrapping_add(to_i64(b))),
            )),
            "add1" => {
                one()?;
                Ok(Value::from(to_i64(&args[0]).wrapping_add(1)))
            }
            "sub" => {
                two()?;
                Ok(Value::from(to_i64(&args[0]).wrapping_sub(to_i64(&args[1]))))
            }
            "mul" => {
                at_least(name, args, 1)?;
                Ok(Value::from(
                    args[1..]
                        .iter()
                        .fold(to_i64(&args[0]), |a, b| a.wrapping_mul(to_i64(b))),
                ))
            }
            "div" | "mod" => {
                two()?;
                let (a, b) = (to_i64(&args[0]), to_i64(&args[1]));
                if b == 0 {
                    return Err("runtime error: integer divide by zero".into());
                }
                Ok(Value::from(if short == "div" {
                    a.wrapping_div(b)
                } else {
                    a.wrapping_rem(b)
                }))
            }
            "max" | "biggest" | "min" => {
                at_least(name, args, 1)?;
                let it = args.iter().map(to_i64);
                Ok(Value::from(if short == "min" {
                    it.min().unwrap_or(0)
                } else {
                    it.max().unwrap_or(0)
                }))
            }
            "maxf" | "minf" => {
                at_least(name, args, 1)?;
                let mut acc = to_f64(&args[0]);
                for b in &args[1..] {
                    let b = to_f64(b);
                    acc = if short == "maxf" {
                        acc.max(b)
                    } else {
                        acc.min(b)
                    };
                }
                Ok(float(acc))
            }
            "floor" => {
                one()?;
                Ok(float(to_f64(&args[0]).floor()))
            }
            "ceil" => {
                one()?;
                Ok(float(to_f64(&args[0]).ceil()))
            }
            "round" => {
                if !(2..=3).contains(&args.len()) {
                    return Err(format!(
                        "wrong number of args for {name}: want at least 2 got {}",
                        args.len()
                    ));
                }
                let places = n(1)? as f64;
                let on = args.get(2).map(to_f64).unwrap_or(0.5);
                let pow = 10f64.powf(places);
                let digit = pow * to_f64(&args[0]);
                let r = if digit.fract() >= on {
                    digit.ceil()
                } else {
                    digit.floor()
                };
                Ok(float(r / pow))
            }
            "seq" => {
                let p: Vec<i64> = (0..args.len()).map(n).collect::<Result<_, _>>()?;
                let v = match p.as_slice() {
                    [end] => {
                        let inc = if *end < 1 { -1 } else { 1 };
                        until_step(1, end + inc, inc)
                    }
                    [start, end] => {
                        let step = if end < start { -1 } else { 1 };
                        until_step(*start, end + step, step)
                    }
                    [start, step, end] => {
                        let inc = if end < start { -1 } else { 1 };
                        if end < start && *step > 0 {
                            vec![]
                        } else {
                            until_step(*start, end + inc, *step)
                        }
                    }
                    _ => vec![],
                };
                text(v.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
            }
            "until" => {
                one()?;
                let c = n(0)?;
                Ok(ints(until_step(0, c, if c < 0 { -1 } else { 1 })))
            }
            "untilStep" => {
                three()?;
                Ok(ints(until_step(n(0)?, n(1)?, n(2)?)))
            }
            // Lists.
            "list" | "tuple" => Ok(Value::Array(args.to_vec())),
            "first" | "mustFirst" => {
                one()?;
                Ok(a_list(args, 0, "Cannot find first on type")?
                    .first()
                    .cloned()
                    .unwrap_or(Value::Null))
            }
            "last" | "mustLast" => {
                one()?;
                Ok(a_list(args, 0, "Cannot find last on type")?
                    .last()
                    .cloned()
                    .unwrap_or(Value::Null))
            }
            "rest" | "mustRest" => {
                one()?;
                let l = a_list(args, 0, "Cannot find rest on type")?;
                Ok(Value::Array(l.get(1..).unwrap_or_default().to_vec()))
            }
            "initial" | "mustInitial" => {
                one()?;
                let l = a_list(args, 0, "Cannot find initial on type")?;
                Ok(Value::Array(
                    l.get(..l.len().saturating_sub(1))
                        .unwrap_or_default()
                        .to_vec(),
                ))
            }
            "append" | "push" | "mustAppend" | "mustPush" => {
                two()?;
                let mut l = a_list(args, 0, "Cannot push on type")?;
                l.push(args[1].clone());
                Ok(Value::Array(l))
            }
            "prepend" | "mustPrepend" => {
                two()?;
                let mut l = a_list(args, 0, "Cannot prepend on type")?;
                l.insert(0, args[1].clone());
                Ok(Value::Array(l))
            }
            "concat" => {
                let mut out = vec![];
                for i in 0..args.len() {
                    out.extend(a_list(args, i, "Cannot concat type")?);
                }
                Ok(Value::Array(out))
            }
            "reverse" | "mustReverse" => {
                one()?;
                let mut l = a_list(args, 0, "Cannot find reverse on type")?;
                l.reverse();
                Ok(Value::Array(l))
            }
            "uniq" | "mustUniq" => {
                one()?;
                let mut out: Vec<Value> = vec![];
                for v in a_list(args, 0, "Cannot find uniq on type")? {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                Ok(Value::Array(out))
            }
            "without" | "mustWithout" => {
                at_least(name, args, 1)?;
                let omit = &args[1..];
                Ok(Value::Array(
                    a_list(args, 0, "Cannot find without on type")?
                        .into_iter()
                        .filter(|v| !omit.contains(v))
                        .collect(),
                ))
            }
            "has" | "mustHas" => {
                two()?;
                match &args[1] {
                    Value::Null => Ok(Value::Bool(false)),
                    Value::Array(l) => Ok(Value::Bool(l.contains(&args[0]))),
                    other => Err(format!("Cannot find has on type {}", kind(other))),
                }
            }
            "compact" | "mustCompact" => {
                one()?;
                Ok(Value::Array(
                    a_list(args, 0, "Cannot compact on type")?
                        .into_iter()
                        .filter(|v| !empty(v))
                        .collect(),
                ))
            }
            "slice" | "mustSlice" => {
                at_least(name, args, 1)?;
                let l = match &args[0] {
                    Value::Array(a) => a,
                    Value::Null => {
                        return Err(
                            "runtime error: invalid memory address or nil pointer dereference"
                                .into(),
                        )
                    }
                    other => {
                        return Err(format!(
                            "list should be type of slice or array but {}",
                            kind(other)
                        ))
                    }
                };
                if l.is_empty() {
                    return Ok(Value::Null);
                }
                let len = l.len() as i64;
                let start = args.get(1).map(to_i64).unwrap_or(0);
                let end = args.get(2).map(to_i64).unwrap_or(len);
                if start < 0 || end < start || end > len {
                    return Err(format!(
                        "reflect: slice index out of range [{start}:{end}] with length {len}"
                    ));
                }
                Ok(Value::Array(l[start as usize..end as usize].to_vec()))
            }
            "chunk" | "mustChunk" => {
                two()?;
                let size = n(0)?;
                let l = a_list(args, 1, "Cannot chunk type")?;
                if size <= 0 {
                    return Err("runtime error: integer divide by zero".into());
                }
                Ok(Value::Array(
                    l.chunks(size as usize)
                        .map(|c| Value::Array(c.to_vec()))
                        .collect(),
                ))
            }
            // Dictionaries.
            "dict" => {
                let mut m = Map::new();
                for pair in args.chunks(2) {
                    m.insert(
                        strval(&pair[0]),
                        pair.get(1)
                            .cloned()
                            .unwrap_or_else(|| Value::String(String::new())),
                    );
                }
                Ok(Value::Object(m))
            }
            "get" => {
                two()?;
                let (m, k) = (a_map(args, 0)?, s(1)?);
                Ok(m.get(&k)
                    .cloned()
                    .unwrap_or_else(|| Value::String(String::new())))
            }
            "set" => {
                three()?;
                let (mut m, k) = (a_map(args, 0)?, s(1)?);
                m.insert(k, args[2].clone());
                Ok(Value::Object(m))
            }
            "unset" => {
                two()?;
                let (mut m, k) = (a_map(args, 0)?, s(1)?);
                m.remove(&k);
                Ok(Value::Object(m))
            }
            "hasKey" => {
                two()?;
                Ok(Value::Bool(a_map(args, 0)?.contains_key(&s(1)?)))
            }
            "pluck" => {
                at_least(name, args, 1)?;
                let k = s(0)?;
                let mut out = vec![];
                for i in 1..args.len() {
                    if let Some(v) = a_map(args, i)?.get(&k) {
                        out.push(v.clone());
                    }
                }
                Ok(Value::Array(out))
            }
            "keys" => {
                let mut out = vec![];
                for i in 0..args.len() {
                    out.extend(a_map(args, i)?.keys().cloned());
                }
                Ok(strings(out))
            }
            "values" => {
                one()?;
                Ok(Value::Array(a_map(args, 0)?.values().cloned().collect()))
            }
            "pick" | "omit" => {
                at_least(name, args, 1)?;
                let m = a_map(args, 0)?;
                let ks: Vec<String> = (1..args.len()).map(s).collect::<Result<_, _>>()?;
                Ok(Value::Object(
                    m.into_iter()
                        .filter(|(k, _)| ks.contains(k) == (short == "pick"))
                        .collect(),
                ))
            }
            "merge" | "mustMerge" | "mergeOverwrite" | "mustMergeOverwrite" => {
                at_least(name, args, 1)?;
                let mut dst = a_map(args, 0)?;
                for i in 1..args.len() {
                    merge_into(&mut dst, &a_map(args, i)?, short.contains("Overwrite"));
                }
                Ok(Value::Object(dst))
            }
            "dig" => {
                at_least(name, args, 3)?;
                let last = args.len() - 1;
                let m = a_map(args, last)?;
                let keys: Vec<String> = (0..last - 1).map(s).collect::<Result<_, _>>()?;
                dig(&m, &keys, &args[last - 1])
            }
            // Dates.
            "now" => {
                want(name, args, 0)?;
                Ok(time_value(now()))
            }
            "date" => {
                two()?;
                text(date_in_zone(&s(0)?, &args[1], "Local")?)
            }
            "dateInZone" | "date_in_zone" => {
                three()?;
                text(date_in_zone(&s(0)?, &args[1], &s(2)?)?)
            }
            "htmlDate" => {
                one()?;
                text(date_in_zone("2006-01-02", &args[0], "Local")?)
            }
            "htmlDateInZone" => {
                two()?;
                text(date_in_zone("2006-01-02", &args[0], &s(1)?)?)
            }
            "ago" => {
                one()?;
                let d = now().signed_duration_since(time_arg(&args[0]));
                // Rounded to the second, halves away from zero (Go's Duration.Round).
                let ms = d.num_milliseconds();
                let secs = (ms.abs() + 500) / 1000 * ms.signum();
                text(go_duration(secs as i128 * 1_000_000_000))
            }
            "duration" => {
                one()?;
                // Seconds, as an integer or a decimal string (junk is 0).
                let secs = match &args[0] {
                    Value::String(v) => v.parse::<i64>().unwrap_or(0),
                    Value::Number(n) => n.as_i64().unwrap_or(0),
                    _ => 0,
                };
                text(go_duration(secs as i128 * 1_000_000_000))
            }
            "durationRound" => {
                one()?;
                let nanos: i128 = match &args[0] {
                    Value::String(v) => match parse_time(&args[0]) {
                        Some(t) => now()
                            .signed_duration_since(t)
                            .num_nanoseconds()
                            .unwrap_or(i64::MAX) as i128,
                        None => parse_go_duration(v).unwrap_or(0),
                    },
                    Value::Number(n) => n.as_i64().unwrap_or(0) as i128,
                    _ => 0,
                };
                let u = nanos.unsigned_abs();
                const S: u128 = 1_000_000_000;
                let units: [(u128, &str); 6] = [
                    (S * 3600 * 24 * 365, "y"),
                    (S * 3600 * 24 * 30, "mo"),
                    (S * 3600 * 24, "d"),
                    (S * 3600, "h"),
                    (S * 60, "m"),
                    (S, "s"),
                ];
                text(
                    units
                        .iter()
                        .find(|(size, _)| u > *size)
                        .map(|(size, unit)| format!("{}{unit}", u / size))
                        .unwrap_or_else(|| "0s".into()),
                )
            }
            "toDate" | "mustToDate" => {
                two()?;
                let (layout, value) = (s(0)?, s(1)?);
                match to_date(&layout, &value) {
                    Some(t) => Ok(time_value(t)),
                    None if short == "mustToDate" => Err(format!(
                        "parsing time {value:?} as {layout:?}: cannot parse"
                    )),
                    None => Ok(zero_time()),
                }
            }
            "dateModify" | "date_modify" | "mustDateModify" | "must_date_modify" => {
                two()?;
                let spec = s(0)?;
                let t = parse_time(&args[1]).ok_or_else(|| wrong("time.Time", &args[1]))?;
                match parse_go_duration(&spec) {
                    Some(n) => Ok(time_value(
                        t + chrono::Duration::nanoseconds(
                            n.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
                        ),
                    )),
                    None if short.starts_with("must") => {
                        Err(format!("time: invalid duration {spec:?}"))
                    }
                    None => Ok(args[1].clone()),
                }
            }
            "unixEpoch" => {
                one()?;
                let t = parse_time(&args[0]).ok_or_else(|| wrong("time.Time", &args[0]))?;
                text(t.timestamp().to_string())
            }
            _ => Err(String::new()),
        }
    })();
    match r {
        Err(e) if e.is_empty() => None,
        other => Some(other),
    }
}
