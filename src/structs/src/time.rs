//! Time helpers: Nomad's JSON carries durations as nanoseconds and times as Unix nanoseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A nanosecond count as a `Duration` (negative counts are zero).
pub fn nanos(n: i64) -> Duration {
    Duration::from_nanos(n.max(0) as u64)
}

/// Parses a Go duration string such as `30s`, `1m30s`, `250ms`, `1h`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        if num_end == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let value: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
        };
        total += value * mult;
    }
    let n = total.round() as i64;
    Ok(if neg { -n } else { n })
}

/// Formats nanoseconds the way Go's `time.Duration.String` does (`1m30s`, `250ms`).
pub fn format_duration(n: i64) -> String {
    if n == 0 {
        return "0s".into();
    }
    let neg = n < 0;
    let n = n.unsigned_abs();
    let out = if n < 1_000 {
        format!("{n}ns")
    } else if n < 1_000_000 {
        format!("{}µs", trim_float(n as f64 / 1e3))
    } else if n < 1_000_000_000 {
        format!("{}ms", trim_float(n as f64 / 1e6))
    } else {
        let h = n / 3_600_000_000_000;
        let m = (n / 60_000_000_000) % 60;
        let s = (n % 60_000_000_000) as f64 / 1e9;
        let mut o = String::new();
        if h > 0 {
            o.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            o.push_str(&format!("{m}m"));
        }
        o.push_str(&format!("{}s", trim_float(s)));
        o
    };
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

fn trim_float(f: f64) -> String {
    let s = format!("{f:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("30s").unwrap(), 30 * SECOND);
        assert_eq!(parse_duration("1m30s").unwrap(), 90 * SECOND);
        assert_eq!(parse_duration("250ms").unwrap(), 250_000_000);
        assert_eq!(parse_duration("1.5h").unwrap(), 90 * MINUTE);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(90 * SECOND), "1m30s");
        assert_eq!(format_duration(5 * MINUTE), "5m0s");
        assert_eq!(format_duration(250_000_000), "250ms");
        assert_eq!(format_duration(HOUR), "1h0m0s");
    }
}
