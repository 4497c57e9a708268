//! Waiting before trying again, in one place; each caller keeps only its numbers.
//!
//! * [`Doubling`]: a wait that doubles per consecutive failure up to a cap (the setup loop,
//!   the relay's consumer loop, the pause follower, a failing source's polls).
//! * [`with_jitter`]: a wait lengthened by a random part of itself.
//! * [`RetryWithin`]: attempts within a wall-clock bound (a NATS election).
//! * [`SkipAfterFailures`]: work that keeps failing, skipped for a growing number of polls.
//! * [`retry_after`]: an HTTP `Retry-After`, capped (both HTTP clients).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;

use crate::shutdown::Shutdown;

/// A wait of `from` after the first failure, doubled after each further one, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doubling {
    /// The wait after the first failure.
    pub from: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Doubling {
    /// The wait after `failures` consecutive failures (1 is the first; 0 counts as 1).
    pub fn after(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.from.saturating_mul(factor).min(self.cap)
    }
}

/// `d` lengthened by a random part (below `fraction`) of itself; `d` when `fraction` is not
/// positive.
pub fn with_jitter(d: Duration, fraction: f64) -> Duration {
    if fraction <= 0.0 {
        return d;
    }
    d.mul_f64(1.0 + rand::rng().random_range(0.0..fraction))
}

/// Between the attempts of [`RetryWithin`]: 0.1 s doubled per attempt, at most 1 s.
const WITHIN: Doubling = Doubling {
    from: Duration::from_millis(100),
    cap: Duration::from_secs(1),
};

/// Tries again within a wall-clock bound (a NATS election: publishing and cursor writes),
/// pausing 0.1 s doubled per attempt, at most 1 s, between attempts; gives up at a stop.
pub struct RetryWithin {
    /// The pauses taken so far.
    pauses: u32,
    /// When the bound passes.
    until: tokio::time::Instant,
}

impl RetryWithin {
    /// Attempts until `within` from now has passed.
    pub fn new(within: Duration) -> RetryWithin {
        RetryWithin {
            pauses: 0,
            until: tokio::time::Instant::now() + within,
        }
    }

    /// Pauses before the next attempt (logging `failed` at debug level with the pause);
    /// `false`, at once, when `stop` has fired or the pause would end past the bound, or
    /// when `stop` fires during it: give up then.
    pub async fn pause(&mut self, stop: &Shutdown, failed: &str) -> bool {
        self.pauses = self.pauses.saturating_add(1);
        let delay = WITHIN.after(self.pauses);
        if stop.is_fired() || tokio::time::Instant::now() + delay >= self.until {
            return false;
        }
        tracing::debug!("{failed}; trying again in {delay:?}");
        stop.clone().sleep(delay).await
    }
}

/// At most this many polls skipped in a row by [`SkipAfterFailures`].
const MAX_SKIP: u32 = 63;

/// One key's failures in [`SkipAfterFailures`].
#[derive(Default)]
struct Failing {
    /// Consecutive failures.
    failures: u32,
    /// Polls still to skip.
    skip: u32,
}

/// Work that keeps failing (a repository kind whose endpoint answers 404 or 500), skipped
/// for a growing number of polls: 1, 3, 7 ... 63. Held by the run's context, in memory: a
/// restart tries each once again. Consecutive failures and polls still to skip, per key (a
/// kind's cursor key).
#[derive(Default)]
pub struct SkipAfterFailures {
    /// The failing keys.
    map: Mutex<HashMap<String, Failing>>,
}

impl SkipAfterFailures {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Failing>> {
        // Each use is one insert, update or remove: a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether to skip this poll of `key` (counts the skip).
    pub fn skip(&self, key: &str) -> bool {
        match self.map().get_mut(key) {
            Some(f) if f.skip > 0 => {
                f.skip -= 1;
                true
            }
            _ => false,
        }
    }

    /// Records a failure: consecutive failures and the polls now skipped.
    pub fn failed(&self, key: &str) -> (u32, u32) {
        let mut m = self.map();
        let f = m.entry(key.to_string()).or_default();
        f.failures = f.failures.saturating_add(1);
        f.skip = ((1u32 << f.failures.min(6)) - 1).min(MAX_SKIP);
        (f.failures, f.skip)
    }

    /// Records a success: the failures it ends, if any.
    pub fn succeeded(&self, key: &str) -> Option<u32> {
        self.map().remove(key).map(|f| f.failures)
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (RFC 9110 §10.2.3), capped at `cap`
/// (a value from outside must not overflow a deadline, nor a misconfigured proxy park a
/// source for a day); a date in the past is zero; more digits than a `u64` holds is still a
/// number of seconds, more than the cap; anything else is ignored.
pub fn retry_after(
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
    cap: Duration,
) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(cap));
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(cap);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO).min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_starts_at_from_doubles_and_stops_at_its_cap() {
        let d = Doubling {
            from: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        };
        let waits: Vec<u128> = (1..=8).map(|n| d.after(n).as_millis()).collect();
        assert_eq!(
            waits,
            vec![500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(d.after(0), d.after(1));
        assert_eq!(d.after(u32::MAX), d.cap, "no overflow");
    }

    #[test]
    fn jitter_lengthens_by_less_than_its_fraction() {
        let d = Duration::from_secs(10);
        assert_eq!(with_jitter(d, 0.0), d);
        for _ in 0..100 {
            let j = with_jitter(d, 1.0);
            assert!(j >= d && j < d * 2, "{j:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_within_pauses_doubling_until_its_bound() {
        let (_trigger, stop) = crate::shutdown::channel();
        let start = tokio::time::Instant::now();
        let mut r = RetryWithin::new(Duration::from_secs(3));
        let mut paused = Vec::new();
        while r.pause(&stop, "test").await {
            paused.push(start.elapsed().as_millis());
        }
        assert_eq!(paused, vec![100, 300, 700, 1500, 2500]);
        let (trigger, stop) = crate::shutdown::channel();
        trigger.fire();
        assert!(
            !RetryWithin::new(Duration::from_secs(3))
                .pause(&stop, "test")
                .await
        );
    }

    #[test]
    fn skips_grow_to_a_cap_and_a_success_ends_them() {
        let b = SkipAfterFailures::default();
        let skips: Vec<u32> = (0..8).map(|_| b.failed("k").1).collect();
        assert_eq!(skips, vec![1, 3, 7, 15, 31, 63, 63, 63]);
        assert!(b.skip("k"));
        assert!(!b.skip("other"));
        assert_eq!(b.succeeded("k"), Some(8));
        assert!(!b.skip("k"));
    }

    #[test]
    fn two_runs_do_not_share_failures() {
        let (a, b) = (SkipAfterFailures::default(), SkipAfterFailures::default());
        a.failed("k");
        assert!(a.skip("k"));
        assert!(!b.skip("k"));
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_capped() {
        use chrono::TimeZone;
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 17, 56, 20)
            .single()
            .expect("time");
        let cap = Duration::from_secs(600);
        assert_eq!(retry_after("3", now, cap), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after("Sat, 28 Nov 2026 17:56:28 GMT", now, cap),
            Some(Duration::from_secs(8))
        );
        assert_eq!(
            retry_after("Sat, 28 Nov 2026 17:56:00 GMT", now, cap),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("99999", now, cap), Some(cap));
        assert_eq!(retry_after("99999999999999999999999", now, cap), Some(cap));
        assert_eq!(retry_after("soon", now, cap), None);
    }
}
