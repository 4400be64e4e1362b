//! The client-side rules of Consul's blocking queries (Consul's "Blocking Queries" docs,
//! "Implementation Details"): reset the index when it goes backwards, never wait on an index
//! below 1, back off with jitter after errors, and rate-limit loops that return immediately.

use std::time::Duration;

use tokio::time::Instant;

/// The `index` to send next, given the one sent (`previous`) and the `X-Consul-Index` returned.
///
/// - If the index went backwards (a snapshot restore, a new cluster), reset to 0 so the next
///   read returns at once with fresh data.
/// - An index below 1 is treated as 1: `index=0` never blocks, so a server that (wrongly)
///   answers 0 would otherwise make the loop spin.
pub fn next_wait_index(previous: u64, returned: u64) -> u64 {
    if returned < previous {
        0
    } else {
        returned.max(1)
    }
}

/// Exponential back-off with jitter for retrying failed reads.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// Delays start near `base` and double up to `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x2545_F491_4F6C_DD1D);
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
            rng: seed | 1,
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64: enough randomness to spread retries of many clients.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The next delay: `min(max, base * 2^attempt)`, then a random point in its upper half.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(30)).unwrap_or(u32::MAX);
        let ceiling = self.base.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let span = (ceiling - half).as_nanos() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.random() % (span + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// Forgets past failures (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Keeps successive requests at least `min_interval` apart.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    min_interval: Duration,
    last: Option<Instant>,
}

impl RateLimiter {
    pub fn new(min_interval: Duration) -> RateLimiter {
        RateLimiter {
            min_interval,
            last: None,
        }
    }

    /// Waits until `min_interval` has passed since the previous call returned.
    pub async fn wait(&mut self) {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + self.min_interval).await;
        }
        self.last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_resets_when_it_goes_backwards() {
        assert_eq!(next_wait_index(0, 5), 5);
        assert_eq!(next_wait_index(5, 9), 9);
        assert_eq!(next_wait_index(9, 9), 9);
        // A restore made Consul's index go backwards: start over.
        assert_eq!(next_wait_index(9, 3), 0);
        // Then the fresh read's index is taken as is.
        assert_eq!(next_wait_index(0, 3), 3);
    }

    #[test]
    fn index_below_one_becomes_one() {
        assert_eq!(next_wait_index(0, 0), 1);
        assert_eq!(next_wait_index(1, 0), 0);
        assert_eq!(next_wait_index(0, 1), 1);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let mut b = Backoff::new(base, max);
        let mut ceiling = base;
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceiling = (ceiling * 2).min(max);
        }
        b.reset();
        assert!(b.next_delay() <= base);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_calls() {
        let mut r = RateLimiter::new(Duration::from_millis(250));
        let start = Instant::now();
        r.wait().await;
        assert_eq!(Instant::now(), start, "the first call does not wait");
        r.wait().await;
        r.wait().await;
        assert!(Instant::now() - start >= Duration::from_millis(500));
    }
}
