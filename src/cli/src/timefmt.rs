//! Time display as Nomad's CLI does it: ISO-8601 dates (`2026-11-25T10:30:00Z`, in UTC here)
//! and short relative times (`10s ago`, `1h5m ago`, `3d2h from now`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 to a (year, month, day) civil date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A civil date to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as `2006-01-02T15:04:05Z`; empty for times before 1970-01-01T00:00:01
/// (Nomad shows nothing rather than the epoch).
pub fn format_unix_secs(secs: i64) -> String {
    if secs < 1 {
        return String::new();
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Unix nanoseconds as `2006-01-02T15:04:05Z` (empty for zero).
pub fn format_unix_nanos(nanos: i64) -> String {
    format_unix_secs(nanos.div_euclid(1_000_000_000))
}

/// Parses an RFC 3339 time (`2026-11-25T10:30:00.123Z`, `...+02:00`) to Unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut frac_nanos: i64 = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        let digits = &r[..end];
        let mut padded: String = digits.chars().take(9).collect();
        while padded.len() < 9 {
            padded.push('0');
        }
        frac_nanos = padded.parse().ok()?;
        rest = &r[end..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = match &o[..1] {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let oh: i64 = o.get(1..3)?.parse().ok()?;
            let om: i64 = o.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_secs;
    Some(
        secs.saturating_mul(1_000_000_000)
            .saturating_add(frac_nanos),
    )
}

/// An RFC 3339 string from the API as Nomad prints task times: `N/A` when unset or zero.
pub fn format_api_time(s: Option<&str>) -> String {
    match s.and_then(parse_rfc3339) {
        Some(n) if n >= 1_000_000_000 => format_unix_nanos(n),
        _ => "N/A".into(),
    }
}

/// Nomad's `prettyTimeDiff`: the two largest units of the difference between `first` and
/// `second` (both Unix nanoseconds), rounded to seconds, with `ago` or `from now`.
/// Empty when `first` is zero.
pub fn pretty_time_diff(first: i64, second: i64) -> String {
    if first == 0 {
        return String::new();
    }
    let round = |n: i64| (n + 500_000_000).div_euclid(1_000_000_000);
    let (a, b) = (round(first), round(second));
    let (d, suffix) = if b >= a {
        (b - a, "ago")
    } else {
        (a - b, "from now")
    };
    let mut u = d as u64;
    let mut parts: Vec<String> = vec![];
    let secs = u % 60;
    if secs > 0 {
        parts.push(format!("{secs}s"));
    }
    u /= 60;
    if u > 0 {
        let mins = u % 60;
        if mins > 0 {
            parts.push(format!("{mins}m"));
        }
        u /= 60;
        if u > 0 {
            let hrs = u % 24;
            if hrs > 0 {
                parts.push(format!("{hrs}h"));
            }
            u /= 24;
        }
        if u > 0 {
            let days = u % 30;
            if days > 0 {
                parts.push(format!("{days}d"));
            }
            u /= 30;
        }
        if u > 0 {
            let months = u % 12;
            if months > 0 {
                parts.push(format!("{months}mo"));
            }
            u /= 12;
        }
        if u > 0 {
            parts.push(format!("{u}y"));
        }
    }
    if parts.is_empty() {
        return format!("0s {suffix}");
    }
    // parts are smallest-first; keep the two largest.
    let n = parts.len();
    let kept: Vec<&String> = parts[n.saturating_sub(2)..].iter().rev().collect();
    let s: String = kept.into_iter().map(|p| p.as_str()).collect();
    format!("{s} {suffix}")
}

/// `pretty_time_diff(t, now)`.
pub fn pretty_ago(t: i64) -> String {
    pretty_time_diff(t, now_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: i64 = 1_000_000_000;

    #[test]
    fn formats_dates_in_utc() {
        assert_eq!(format_unix_secs(0), "");
        assert_eq!(format_unix_secs(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_unix_nanos(951_782_400 * S), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(1_700_000_000 * S)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000 * S + 500_000_000)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(format_api_time(Some("0001-01-01T00:00:00Z")), "N/A");
        assert_eq!(format_api_time(None), "N/A");
        assert_eq!(
            format_api_time(Some("2023-11-14T22:13:20.999Z")),
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn pretty_differences() {
        let now = 1_700_000_000 * S;
        assert_eq!(pretty_time_diff(now - 10 * S, now), "10s ago");
        assert_eq!(pretty_time_diff(now - 125 * S, now), "2m5s ago");
        assert_eq!(pretty_time_diff(now - (3600 + 65) * S, now), "1h1m ago");
        assert_eq!(pretty_time_diff(now - 3 * 86_400 * S, now), "3d ago");
        assert_eq!(pretty_time_diff(now + 90 * S, now), "1m30s from now");
        assert_eq!(pretty_time_diff(now, now), "0s ago");
        assert_eq!(pretty_time_diff(0, now), "");
    }
}
