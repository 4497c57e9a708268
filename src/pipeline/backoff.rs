//! Work that keeps failing (a repository kind whose endpoint answers 404 or 500), skipped
//! for a growing number of polls: 1, 3, 7 ... 63. Held by the run's [`super::Context`], in
//! memory: a restart tries each once again.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// At most this many polls skipped in a row.
const MAX_SKIP: u32 = 63;

#[derive(Default)]
struct Failing {
    failures: u32,
    skip: u32,
}

/// Consecutive failures and polls still to skip, per key (a kind's cursor key).
#[derive(Default)]
pub struct FailureBackoff {
    map: Mutex<HashMap<String, Failing>>,
}

impl FailureBackoff {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_grow_to_a_cap_and_a_success_ends_them() {
        let b = FailureBackoff::default();
        let skips: Vec<u32> = (0..8).map(|_| b.failed("k").1).collect();
        assert_eq!(skips, vec![1, 3, 7, 15, 31, 63, 63, 63]);
        assert!(b.skip("k"));
        assert!(!b.skip("other"));
        assert_eq!(b.succeeded("k"), Some(8));
        assert!(!b.skip("k"));
    }

    #[test]
    fn two_runs_do_not_share_failures() {
        let (a, b) = (FailureBackoff::default(), FailureBackoff::default());
        a.failed("k");
        assert!(a.skip("k"));
        assert!(!b.skip("k"));
    }
}
