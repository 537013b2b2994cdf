//! Request pacing: the rate limiter shared by all calls of one adapter, and retry backoff.
//!
//! SES allows one suppression-list request per second per account and region and answers more
//! with 429. The limiter hands out start times at least `interval` apart, in the order callers
//! ask, and callers sleep until theirs (no polling). Backoff after a retryable failure doubles
//! from an initial delay up to a cap, with "equal jitter" (half fixed, half random) so that
//! several workers that were throttled together do not retry together. Depends only on tokio.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Spaces the starts of requests at least `interval` apart.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    next_free: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter that lets one request start per `interval`; a zero interval never waits.
    pub(crate) fn new(interval: Duration) -> Self {
        Self { interval, next_free: Mutex::new(None) }
    }

    /// Waits until this caller may start a request. A caller that gives up while waiting still
    /// uses its turn, which errs on the slow side.
    pub(crate) async fn wait_turn(&self) {
        if self.interval.is_zero() {
            return;
        }
        let turn = {
            // Only plain data is written under the lock, so a poisoned lock is still consistent.
            let mut next_free = self.next_free.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let turn = next_free.map_or(now, |free| free.max(now));
            *next_free = Some(turn + self.interval);
            turn
        };
        tokio::time::sleep_until(turn).await;
    }
}

/// Exponential backoff with equal jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
}

impl Backoff {
    /// The delay after failed attempt `attempt` (1-based): `initial * 2^(attempt-1)`, capped at
    /// `max`, of which a random half is taken away.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let ceiling = self.initial.saturating_mul(factor).min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn turns_are_spaced_by_the_interval_in_paused_time() {
        let limiter = RateLimiter::new(Duration::from_millis(250));
        let start = Instant::now();

        let mut waited = Vec::new();
        for _ in 0..3 {
            limiter.wait_turn().await;
            waited.push(start.elapsed());
        }

        let ms = |millis| Duration::from_millis(millis);
        assert_eq!(waited, [ms(0), ms(250), ms(500)]);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_limiter() {
        let limiter = RateLimiter::new(Duration::from_millis(100));
        let start = Instant::now();

        let (a, b, c) = tokio::join!(
            async {
                limiter.wait_turn().await;
                start.elapsed()
            },
            async {
                limiter.wait_turn().await;
                start.elapsed()
            },
            async {
                limiter.wait_turn().await;
                start.elapsed()
            },
        );

        let mut starts = [a, b, c];
        starts.sort();
        let ms = |millis| Duration::from_millis(millis);
        assert_eq!(starts, [ms(0), ms(100), ms(200)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_period_does_not_bank_turns() {
        let limiter = RateLimiter::new(Duration::from_millis(100));
        limiter.wait_turn().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();

        limiter.wait_turn().await;
        let first = start.elapsed();
        limiter.wait_turn().await;
        let second = start.elapsed();

        assert_eq!((first, second), (Duration::ZERO, Duration::from_millis(100)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_never_waits() {
        let limiter = RateLimiter::new(Duration::ZERO);
        let start = Instant::now();

        for _ in 0..10 {
            limiter.wait_turn().await;
        }

        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_keeps_at_least_half() {
        let backoff =
            Backoff { initial: Duration::from_millis(100), max: Duration::from_millis(500) };

        for _ in 0..200 {
            let ceilings = [100, 200, 400, 500, 500, 500];
            for (attempt, ceiling) in (1..).zip(ceilings) {
                let delay = backoff.delay(attempt);
                let ceiling = Duration::from_millis(ceiling);
                assert!(delay >= ceiling / 2 && delay <= ceiling, "{attempt}: {delay:?}");
            }
        }
        assert!(backoff.delay(u32::MAX) <= Duration::from_millis(500));
    }
}
