//! The rest of Nomad's jobspec2 function library: hashing, UUIDs, time, sets, CIDR math,
//! regular expressions, CSV and URL encoding, and `convert(value, type)`.

use super::funcs::{int, list, num, num_result, s, R};
use super::types::{convert as convert_to, parse_type};
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::{Map, Value};
use std::net::IpAddr;

/// Declares the functions of this module in `ctx`.
pub(super) fn declare(ctx: &mut Context<'static>) {
    use ParamType::{Any, String as S};
    let one = |ty: ParamType, f: hcl::eval::Func| FuncDef::builder().param(ty).build(f);
    let two = |f: hcl::eval::Func| FuncDef::builder().params([Any, Any]).build(f);
    let var = |f: hcl::eval::Func| FuncDef::builder().variadic_param(Any).build(f);
    let defs: Vec<(&str, FuncDef)> = vec![
        (
            "strlen",
            one(S, |a| Ok(Value::from(s(&a[0])?.chars().count()))),
        ),
        ("pow", two(|a| num_result(num(&a[0])?.powf(num(&a[1])?)))),
        (
            "log",
            two(|a| num_result(num(&a[0])?.ln() / num(&a[1])?.ln())),
        ),
        ("signum", one(Any, |a| num_result(num(&a[0])?.signum()))),
        (
            "md5",
            one(S, |a| Ok(hex_digest::<md5::Md5>(s(&a[0])?).into())),
        ),
        (
            "sha1",
            one(S, |a| Ok(hex_digest::<sha1::Sha1>(s(&a[0])?).into())),
        ),
        (
            "sha256",
            one(S, |a| Ok(hex_digest::<sha2::Sha256>(s(&a[0])?).into())),
        ),
        (
            "sha512",
            one(S, |a| Ok(hex_digest::<sha2::Sha512>(s(&a[0])?).into())),
        ),
        (
            "uuidv4",
            FuncDef::builder().build(|_| Ok(uuid::Uuid::new_v4().to_string().into())),
        ),
        ("uuidv5", FuncDef::builder().params([S, S]).build(uuidv5)),
        ("urlencode", one(S, |a| Ok(urlencode(s(&a[0])?).into()))),
        ("chunklist", two(chunklist)),
        ("setunion", var(setunion)),
        ("setintersection", var(setintersection)),
        ("setproduct", var(setproduct)),
        (
            "regex_replace",
            FuncDef::builder().params([S, S, S]).build(regex_replace),
        ),
        ("timeadd", FuncDef::builder().params([S, S]).build(timeadd)),
        (
            "formatdate",
            FuncDef::builder().params([S, S]).build(formatdate),
        ),
        ("csvdecode", one(S, csvdecode)),
        ("cidrhost", two(cidrhost)),
        ("cidrnetmask", one(S, cidrnetmask)),
        (
            "cidrsubnet",
            FuncDef::builder().params([Any, Any, Any]).build(cidrsubnet),
        ),
        ("cidrsubnets", var(cidrsubnets)),
        // `convert(v, T)`: the evaluator rewrites the type argument to its source text.
        (
            "convert",
            FuncDef::builder().params([Any, S]).build(convert),
        ),
        ("can", one(Any, |_| Ok(Value::Bool(true)))),
    ];
    for (name, def) in defs {
        ctx.declare_func(name, def);
    }
}

fn hex_digest<D: sha2::Digest>(text: &str) -> String {
    let out = D::digest(text.as_bytes());
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn uuidv5(a: FuncArgs) -> R {
    let ns = match s(&a[0])? {
        "dns" => uuid::Uuid::NAMESPACE_DNS,
        "url" => uuid::Uuid::NAMESPACE_URL,
        "oid" => uuid::Uuid::NAMESPACE_OID,
        "x500" => uuid::Uuid::NAMESPACE_X500,
        other => uuid::Uuid::parse_str(other)
            .map_err(|e| format!("uuidv5: namespace must be dns, url, oid, x500 or a UUID: {e}"))?,
    };
    // RFC 4122 version 5: SHA-1 of namespace bytes and name, version and variant bits set.
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(ns.as_bytes());
    h.update(s(&a[1])?.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(uuid::Uuid::from_bytes(b).to_string().into())
}

fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn chunklist(a: FuncArgs) -> R {
    let items = list(&a[0])?;
    let size = int(&a[1])?;
    if size < 0 {
        return Err("chunklist: the chunk size must not be negative".into());
    }
    if size == 0 {
        return Ok(Value::Array(vec![Value::Array(items.to_vec())]));
    }
    Ok(Value::Array(
        items
            .chunks(size as usize)
            .map(|c| Value::Array(c.to_vec()))
            .collect(),
    ))
}

fn setunion(a: FuncArgs) -> R {
    let mut out: Vec<Value> = Vec::new();
    for l in a.iter() {
        for v in list(l)? {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
    }
    Ok(Value::Array(out))
}

fn setintersection(a: FuncArgs) -> R {
    let mut it = a.iter();
    let Some(first) = it.next() else {
        return Err("setintersection needs at least one set".into());
    };
    let mut out: Vec<Value> = Vec::new();
    for v in list(first)? {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    for l in it {
        let l = list(l)?;
        out.retain(|v| l.contains(v));
    }
    Ok(Value::Array(out))
}

fn setproduct(a: FuncArgs) -> R {
    let mut acc: Vec<Vec<Value>> = vec![vec![]];
    for l in a.iter() {
        let items = list(l)?;
        let mut next = Vec::new();
        for prefix in &acc {
            for v in items {
                let mut p = prefix.clone();
                p.push(v.clone());
                next.push(p);
            }
        }
        acc = next;
    }
    if a.is_empty() {
        return Err("setproduct needs at least one set".into());
    }
    Ok(Value::Array(acc.into_iter().map(Value::Array).collect()))
}

fn regex_replace(a: FuncArgs) -> R {
    let re =
        regex::Regex::new(s(&a[1])?).map_err(|e| format!("invalid regular expression: {e}"))?;
    Ok(re.replace_all(s(&a[0])?, s(&a[2])?).into_owned().into())
}

fn parse_ts(text: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("{text:?} is not an RFC 3339 timestamp: {e}"))
}

fn timeadd(a: FuncArgs) -> R {
    let ts = parse_ts(s(&a[0])?)?;
    let dur = s(&a[1])?;
    let (neg, body) = match dur.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, dur.strip_prefix('+').unwrap_or(dur)),
    };
    let ns = caravan_structs::time::parse_duration(body)
        .map_err(|e| format!("invalid duration {dur:?}: {e}"))?;
    let delta = chrono::Duration::nanoseconds(if neg { -ns } else { ns });
    let out = ts
        .checked_add_signed(delta)
        .ok_or_else(|| "timeadd: the result is out of range".to_string())?;
    Ok(out
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        .into())
}

/// Terraform/HCL `formatdate` spec letters mapped to chrono.
fn formatdate(a: FuncArgs) -> R {
    let spec = s(&a[0])?;
    let ts = parse_ts(s(&a[1])?)?;
    let mut out = String::new();
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                out.push(chars[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let token: String = std::iter::repeat_n(c, n).collect();
        let fmt = match token.as_str() {
            "YYYY" => "%Y",
            "YY" => "%y",
            "MMMM" => "%B",
            "MMM" => "%b",
            "MM" => "%m",
            "M" => "%-m",
            "DD" => "%d",
            "D" => "%-d",
            "EEEE" => "%A",
            "EEE" => "%a",
            "hh" => "%H",
            "h" => "%-H",
            "HH" => "%I",
            "H" => "%-I",
            "AA" => "%p",
            "aa" => "%P",
            "mm" => "%M",
            "m" => "%-M",
            "ss" => "%S",
            "s" => "%-S",
            "ZZZZZ" => "%:z",
            "ZZZZ" => "%z",
            "ZZZ" => "%Z",
            "Z" => "Z",
            t if c.is_ascii_alphabetic() => {
                return Err(format!("formatdate: unsupported sequence {t:?}"))
            }
            t => {
                out.push_str(t);
                i += n;
                continue;
            }
        };
        if fmt == "Z" || fmt == "%Z" {
            if ts.offset().local_minus_utc() == 0 {
                out.push_str(if fmt == "Z" { "Z" } else { "UTC" });
            } else {
                out.push_str(&ts.format("%:z").to_string());
            }
        } else {
            out.push_str(&ts.format(fmt).to_string());
        }
        i += n;
    }
    Ok(out.into())
}

fn csvdecode(a: FuncArgs) -> R {
    let mut rows = parse_csv(s(&a[0])?)?.into_iter();
    let Some(header) = rows.next() else {
        return Err("csvdecode: missing header line".into());
    };
    let mut out = Vec::new();
    for (n, row) in rows.enumerate() {
        if row.len() != header.len() {
            return Err(format!(
                "csvdecode: line {} has {} fields, the header has {}",
                n + 2,
                row.len(),
                header.len()
            ));
        }
        let m: Map<String, Value> = header
            .iter()
            .cloned()
            .zip(row.into_iter().map(Value::from))
            .collect();
        out.push(Value::Object(m));
    }
    Ok(Value::Array(out))
}

fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("csvdecode: unterminated quoted field".into());
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

fn parse_cidr(text: &str) -> Result<(IpAddr, u32), String> {
    let (ip, bits) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not a CIDR prefix such as 10.0.0.0/8"))?;
    let ip: IpAddr = ip.parse().map_err(|e| format!("{text:?}: {e}"))?;
    let bits: u32 = bits.parse().map_err(|e| format!("{text:?}: {e}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if bits > max {
        return Err(format!("{text:?}: prefix length {bits} is over {max}"));
    }
    Ok((ip, bits))
}

fn width(ip: &IpAddr) -> u32 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn to_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(*v)),
        IpAddr::V6(v) => u128::from(*v),
    }
}

fn from_u128(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(std::net::Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(v))
    }
}

fn mask(bits: u32, w: u32) -> u128 {
    if bits == 0 {
        0
    } else {
        let all = if w == 128 {
            u128::MAX
        } else {
            (1u128 << w) - 1
        };
        all & !((1u128 << (w - bits)) - 1).min(all)
    }
}

fn cidrhost(a: FuncArgs) -> R {
    let (ip, bits) = parse_cidr(s(&a[0])?)?;
    let w = width(&ip);
    let host = int(&a[1])?;
    let size = 1u128 << (w - bits).min(127);
    let base = to_u128(&ip) & mask(bits, w);
    let off = if host < 0 {
        size.checked_sub(host.unsigned_abs() as u128)
    } else {
        Some(host as u128).filter(|h| *h < size)
    };
    let off = off.ok_or_else(|| format!("cidrhost: host number {host} does not fit the prefix"))?;
    Ok(from_u128(base + off, ip.is_ipv4()).to_string().into())
}

fn cidrnetmask(a: FuncArgs) -> R {
    let (ip, bits) = parse_cidr(s(&a[0])?)?;
    if !ip.is_ipv4() {
        return Err("cidrnetmask only works with IPv4 prefixes".into());
    }
    Ok(from_u128(mask(bits, 32), true).to_string().into())
}

fn subnet(prefix: &str, newbits: i64, num: i64) -> Result<String, String> {
    let (ip, bits) = parse_cidr(prefix)?;
    let w = width(&ip);
    let nb = bits as i64 + newbits;
    if newbits < 0 || nb > w as i64 {
        return Err(format!(
            "cidrsubnet: {newbits} new bits do not fit in {prefix}"
        ));
    }
    let nb = nb as u32;
    if num < 0 || (newbits < 127 && (num as u128) >= (1u128 << newbits)) {
        return Err(format!(
            "cidrsubnet: network number {num} does not fit in {newbits} bits"
        ));
    }
    let base = to_u128(&ip) & mask(bits, w);
    let shifted = if w - nb >= 128 {
        0
    } else {
        (num as u128) << (w - nb)
    };
    Ok(format!("{}/{nb}", from_u128(base | shifted, ip.is_ipv4())))
}

fn cidrsubnet(a: FuncArgs) -> R {
    Ok(subnet(s(&a[0])?, int(&a[1])?, int(&a[2])?)?.into())
}

fn cidrsubnets(a: FuncArgs) -> R {
    let Some(prefix) = a.first() else {
        return Err("cidrsubnets needs a prefix".into());
    };
    let prefix = s(prefix)?;
    let (ip, bits) = parse_cidr(prefix)?;
    let w = width(&ip);
    let mut next = to_u128(&ip) & mask(bits, w);
    let mut out = Vec::new();
    for nb in a.iter().skip(1) {
        let nb = int(nb)?;
        let len = bits as i64 + nb;
        if nb < 1 || len > w as i64 {
            return Err(format!("cidrsubnets: {nb} new bits do not fit in {prefix}"));
        }
        let len = len as u32;
        let size = 1u128 << (w - len).min(127);
        // Align up to the block size.
        let start = next.div_ceil(size) * size;
        if start & mask(bits, w) != to_u128(&ip) & mask(bits, w) {
            return Err(format!("cidrsubnets: not enough space in {prefix}"));
        }
        out.push(Value::from(format!(
            "{}/{len}",
            from_u128(start, ip.is_ipv4())
        )));
        next = start + size;
    }
    Ok(Value::Array(out))
}

fn convert(a: FuncArgs) -> R {
    let text = s(&a[1])?;
    let expr: hcl::edit::expr::Expression = text
        .parse()
        .map_err(|e: hcl::edit::parser::Error| format!("invalid type {text:?}: {}", e.message()))?;
    let ty = parse_type(&expr.into(), &|_| Ok(Value::Null))?;
    convert_to(&a[0], &ty)
}

#[cfg(test)]
mod tests {
    use super::hex_digest;
    use super::urlencode;
    use crate::eval::Evaluator;
    use hcl::Value;

    fn ev(s: &str) -> Value {
        let e: hcl::edit::expr::Expression = s.parse().unwrap();
        Evaluator::new().eval_strict(&e.into()).unwrap()
    }

    #[test]
    fn uuidv5_matches_the_rfc_example() {
        // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
        assert_eq!(
            ev(r#"uuidv5("dns", "python.org")"#),
            Value::from("886313e1-3b8a-5372-9b90-0c9aee199e5d")
        );
        assert_eq!(ev("length(uuidv4())"), Value::from(36));
    }

    #[test]
    fn cidr_functions() {
        assert_eq!(
            ev(r#"cidrsubnet("10.1.2.0/24", 4, 15)"#),
            Value::from("10.1.2.240/28")
        );
        assert_eq!(
            ev(r#"cidrhost("10.12.112.0/20", 16)"#),
            Value::from("10.12.112.16")
        );
        assert_eq!(
            ev(r#"cidrnetmask("172.16.0.0/12")"#),
            Value::from("255.240.0.0")
        );
        assert_eq!(
            ev(r#"cidrsubnets("10.1.0.0/16", 4, 4, 8)"#),
            hcl::value!(["10.1.0.0/20", "10.1.16.0/20", "10.1.32.0/24"])
        );
    }

    #[test]
    fn time_text_and_type_functions() {
        assert_eq!(
            ev(r#"timeadd("2017-11-22T00:00:00Z", "10m")"#),
            Value::from("2017-11-22T00:10:00Z")
        );
        assert_eq!(
            ev(r#"formatdate("DD MMM YYYY hh:mm ZZZ", "2018-01-02T23:12:01Z")"#),
            Value::from("02 Jan 2018 23:12 UTC")
        );
        assert_eq!(
            ev(r#"csvdecode("a,b\n1,\"x,y\"\n")"#),
            hcl::value!([{ a = "1", b = "x,y" }])
        );
        assert_eq!(
            ev(r#"regex_replace("hello world", "o", "0")"#),
            Value::from("hell0 w0rld")
        );
        assert_eq!(
            Value::from(hex_digest::<sha2::Sha256>("hello")),
            Value::from("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert_eq!(urlencode("a b&c"), "a+b%26c");
        assert_eq!(
            ev(r#"length(convert({ "www" = "80" }, map(string)))"#),
            Value::from(1)
        );
        assert_eq!(
            ev(r#"convert(["1", 2], list(number))"#),
            hcl::value!([1, 2])
        );
        assert_eq!(
            ev(r#"try(jsondecode("{"), "fallback")"#),
            Value::from("fallback")
        );
        assert_eq!(ev(r#"can(jsondecode("{"))"#), Value::Bool(false));
        assert_eq!(
            ev(r#"setunion(["a"], ["b", "a"])"#),
            hcl::value!(["a", "b"])
        );
        assert_eq!(ev("chunklist([1, 2, 3], 2)"), hcl::value!([[1, 2], [3]]));
    }
}
