//! Pacing of the live client: the reconnection [`Backoff`] (exponential, capped, with
//! jitter) and the [`Throttle`] that keeps the frames sent under the server's rate limit.
//! Both are plain state driven by the caller's clock, so that they can be tested without
//! waiting.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::time::Instant;

/// Exponential backoff: `initial`, doubling on every attempt up to `max`, each delay drawn
/// at random from its upper half ("equal jitter"), so that clients cut off together do not
/// come back together.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    /// Attempts since the last reset.
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The delay before the next attempt, given a random number (any `u64`).
    pub(crate) fn next_delay(&mut self, random: u64) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        // `random / u64::MAX` as a fraction of the other half.
        let fraction = random as f64 / u64::MAX as f64;
        half + (ceiling - half).mul_f64(fraction)
    }

    /// Starts again from `initial` (after a connection that stayed up).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A random number for jitter, from the standard library's randomly keyed hasher (good
/// enough to spread reconnections; not for anything secret).
pub(crate) fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A token bucket for the frames this client sends: `burst` at once, then `per_second`.
/// Kept below the server's limit (`ws_frames_per_second`, by default 100 a second with
/// bursts of five seconds' worth), which answers frames beyond it with an error that names
/// no request, so they could not be matched to their answers.
#[derive(Debug, Clone)]
pub(crate) struct Throttle {
    per_second: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Throttle {
    pub(crate) fn new(per_second: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_second: per_second.max(0.1),
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.at = now;
    }

    /// `None` if a frame may go now, else when it may.
    pub(crate) fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens >= 1.0 {
            None
        } else {
            let wait = (1.0 - self.tokens) / self.per_second;
            Some(now + Duration::from_secs_f64(wait))
        }
    }

    /// Counts one frame sent (after [`Throttle::ready_at`] said it may go).
    pub(crate) fn take(&mut self) {
        self.tokens -= 1.0;
    }

    /// Restarts with a full bucket, as the server does for a new connection.
    pub(crate) fn refill_all(&mut self, now: Instant) {
        self.tokens = self.burst;
        self.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0];
        for (attempt, ceiling) in ceilings.iter().enumerate() {
            let random = random();
            let mut same = backoff.clone();
            let delay = backoff.next_delay(random).as_secs_f64();
            assert!(
                delay >= ceiling / 2.0 - 1e-9 && delay <= ceiling + 1e-9,
                "attempt {attempt}: {delay} not within [{}, {ceiling}]",
                ceiling / 2.0
            );
            assert_eq!(same.next_delay(random).as_secs_f64(), delay);
        }
        // The extremes of the random range give the extremes of the jitter.
        let mut low = Backoff::new(Duration::from_secs(2), Duration::from_secs(30));
        assert_eq!(low.next_delay(0), Duration::from_secs(1));
        let mut high = Backoff::new(Duration::from_secs(2), Duration::from_secs(30));
        assert_eq!(high.next_delay(u64::MAX), Duration::from_secs(2));
        // Many attempts never overflow; a reset starts again.
        for _ in 0..100 {
            assert!(backoff.next_delay(u64::MAX) <= Duration::from_secs(30));
        }
        backoff.reset();
        assert!(backoff.next_delay(u64::MAX) <= Duration::from_millis(500));
    }

    #[test]
    fn random_numbers_differ() {
        let draws: std::collections::HashSet<u64> = (0..16).map(|_| random()).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn the_throttle_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut throttle = Throttle::new(10.0, 3, start);
        for _ in 0..3 {
            assert_eq!(throttle.ready_at(start), None);
            throttle.take();
        }
        let next = throttle.ready_at(start).unwrap();
        assert_eq!(next - start, Duration::from_millis(100));
        assert_eq!(throttle.ready_at(start + Duration::from_millis(100)), None);
        throttle.take();
        // A long pause refills no more than the burst.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(throttle.ready_at(later), None);
            throttle.take();
        }
        assert!(throttle.ready_at(later).is_some());
        throttle.refill_all(later);
        assert_eq!(throttle.ready_at(later), None);
    }
}
