//! Result lines (`name: value unit`) and the small statistics behind them.

use std::time::Duration;

/// The results of one benchmark, printed on stdout when it ends.
#[derive(Debug, Clone)]
pub struct Report {
    prefix: String,
    lines: Vec<String>,
}

impl Report {
    pub fn new(prefix: &str) -> Report {
        Report {
            prefix: prefix.to_string(),
            lines: Vec::new(),
        }
    }

    /// Records `<prefix>.<key>: <value> <unit>`, with `decimals` digits after the point.
    pub fn add(&mut self, key: &str, value: f64, decimals: usize, unit: &str) {
        let line = format!("{}.{key}: {value:.decimals$} {unit}", self.prefix);
        eprintln!("  {line}");
        self.lines.push(line);
    }

    /// Records the benchmark's headline, `<prefix>: <value> <unit>` (no key).
    pub fn add_total(&mut self, value: f64, decimals: usize, unit: &str) {
        let line = format!("{}: {value:.decimals$} {unit}", self.prefix);
        eprintln!("  {line}");
        self.lines.push(line);
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    pub fn render(&self) -> String {
        self.lines().iter().map(|l| format!("{l}\n")).collect()
    }
}

/// The `p`th percentile (0..=100) of `sorted` by the nearest-rank method: the smallest value
/// at least `p` percent of the samples are less than or equal to. `None` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

/// The median of `samples` (the mean of the middle two for an even count). `None` when empty.
pub fn median(samples: &[Duration]) -> Option<Duration> {
    let mut v = samples.to_vec();
    v.sort();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(d).collect();
        assert_eq!(percentile(&v, 50.0), Some(d(50)));
        assert_eq!(percentile(&v, 90.0), Some(d(90)));
        assert_eq!(percentile(&v, 99.0), Some(d(99)));
        assert_eq!(percentile(&v, 100.0), Some(d(100)));
        assert_eq!(percentile(&v, 0.0), Some(d(1)));
        assert_eq!(percentile(&[d(7)], 99.0), Some(d(7)));
        assert_eq!(percentile(&[], 50.0), None);
        let v = vec![d(1), d(2), d(3)];
        assert_eq!(percentile(&v, 50.0), Some(d(2)));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[d(3), d(1), d(2)]), Some(d(2)));
        assert_eq!(
            median(&[d(4), d(1), d(2), d(3)]),
            Some(Duration::from_micros(2500))
        );
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn lines_have_the_documented_shape() {
        let mut r = Report::new("submit-latency");
        r.add("p50", 412.0, 0, "ms");
        r.add("idle_rss", 14.234, 1, "MiB");
        assert_eq!(
            r.lines(),
            [
                "submit-latency.p50: 412 ms",
                "submit-latency.idle_rss: 14.2 MiB"
            ]
        );
        assert_eq!(
            r.render(),
            "submit-latency.p50: 412 ms\nsubmit-latency.idle_rss: 14.2 MiB\n"
        );
    }
}
