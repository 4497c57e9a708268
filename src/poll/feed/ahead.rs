//! The bytes a process holds of days walked ahead of their publication ([`ReadAhead`]):
//! catch-ups and backfills read the next day while the current one is published, and
//! every source doing so at once would hold days of rows each. The budget is shared by the
//! whole process and counted in bytes, so memory stays bounded whatever the gap and however
//! many sources catch up together.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The bytes of walked days that wait for (or are in) their publication may reach this
/// before a walk ahead waits. A day being walked is not counted (it must be read whole to
/// be proven), nor one a source publishes without reading ahead.
pub const READ_AHEAD_BYTES: usize = 16 << 20;

/// A process-wide budget of bytes held by days walked ahead (see the module's comment).
#[derive(Clone)]
pub struct ReadAhead {
    inner: Arc<Inner>,
}

struct Inner {
    limit: usize,
    held: AtomicUsize,
    freed: Notify,
}

impl Default for ReadAhead {
    fn default() -> Self {
        ReadAhead::new(READ_AHEAD_BYTES)
    }
}

impl ReadAhead {
    pub fn new(limit: usize) -> Self {
        ReadAhead {
            inner: Arc::new(Inner {
                limit,
                held: AtomicUsize::new(0),
                freed: Notify::new(),
            }),
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.inner.held.load(Ordering::Acquire)
    }

    /// Whether the days held are at or over the budget.
    pub fn is_full(&self) -> bool {
        self.held() >= self.inner.limit
    }

    /// Counts `bytes` until the returned guard is dropped.
    pub fn hold(&self, bytes: usize) -> Held {
        self.inner.held.fetch_add(bytes, Ordering::AcqRel);
        Held {
            budget: self.clone(),
            bytes,
        }
    }

    /// Waits until the days held are below the budget.
    pub async fn room(&self) {
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            // Registered before the look, so a release between the two is not missed.
            freed.as_mut().enable();
            if !self.is_full() {
                return;
            }
            freed.await;
        }
    }
}

/// Bytes counted against a [`ReadAhead`] until this is dropped.
pub struct Held {
    budget: ReadAhead,
    bytes: usize,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Held({} bytes)", self.bytes)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget
            .inner
            .held
            .fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.inner.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait for room ends when, and only when, enough held bytes are dropped.
    #[tokio::test(start_paused = true)]
    async fn room_waits_until_held_bytes_drop_below_the_budget() {
        let budget = ReadAhead::new(100);
        let a = budget.hold(60);
        let b = budget.hold(50);
        assert!(budget.is_full());
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.room().await }
        });
        tokio::task::yield_now().await;
        drop(a);
        assert_eq!(budget.held(), 50);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("room once below the budget")
            .expect("the waiter ran");
        let c = budget.hold(50);
        let blocked = tokio::time::timeout(std::time::Duration::from_secs(1), budget.room()).await;
        assert!(blocked.is_err(), "100 of 100 bytes held: no room");
        drop((b, c));
        assert_eq!(budget.held(), 0);
    }
}
