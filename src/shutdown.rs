//! Shutdown as a value passed in (mini-redis style): the scheduler owns the sender, every
//! task holds a [`Shutdown`] and races only its waits against it, never the step between
//! publishing and writing the cursor.
//!
//! A thin wrapper over [`CancellationToken`]: the process-wide shutdown is one token, and a
//! source's own stop is a child token ([`Shutdown::child`]) that the process-wide one also
//! cancels, so firing the process-wide [`Trigger`] reaches every source at once.
//!
//! A source polled under a lease (`[ha]`) also stops when its [`Deadline`] passes: the lease's
//! validity on this process's monotonic clock, moved on by each renewal. A process that was
//! paused past it (SIGSTOP, a stalled VM) finds itself stopped at its next check, before the
//! code that would tell it so has run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Fires once; cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    /// Cancelled when shutdown is asked for (this one's trigger or a parent's).
    token: CancellationToken,
    /// A lease's validity, when polled under one (`[ha]`).
    deadline: Option<Deadline>,
}

/// A point in time that can be moved later (a renewed lease) or to now (a lost one); shared
/// by clones.
#[derive(Clone, Debug)]
pub struct Deadline {
    /// When it was made: `at` counts from here.
    base: Instant,
    /// Nanoseconds after `base`; 0 once expired for good.
    at: Arc<AtomicU64>,
}

impl Deadline {
    /// A deadline `after` from now.
    pub fn after(after: Duration) -> Deadline {
        Deadline::at(Instant::now() + after)
    }

    /// A deadline at `at` (now if `at` is past).
    pub fn at(at: Instant) -> Deadline {
        let d = Deadline {
            base: Instant::now(),
            at: Arc::new(AtomicU64::new(1)),
        };
        d.move_to(at);
        d
    }

    /// Moves it to `at` (never before now: a late renewal's answer cannot revive it).
    pub fn move_to(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.base).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX).max(1);
        // 0 is "expired for good": left alone.
        let _ = self
            .at
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                (now != 0).then_some(nanos)
            });
    }

    /// Passes it now, for good: [`Deadline::move_to`] is ignored afterwards.
    pub fn expire(&self) {
        self.at.store(0, Ordering::SeqCst);
    }

    /// When it passes.
    pub fn instant(&self) -> Instant {
        self.base + Duration::from_nanos(self.at.load(Ordering::SeqCst))
    }

    /// Whether `other` is this deadline (a clone of it), not just one at the same time.
    pub fn same(&self, other: &Deadline) -> bool {
        Arc::ptr_eq(&self.at, &other.at)
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        self.at.load(Ordering::SeqCst) == 0 || Instant::now() >= self.instant()
    }
}

/// The sending side. Dropping it fires it too: nobody can fire it any more, so whoever waits
/// stops instead of waiting forever.
#[derive(Debug)]
pub struct Trigger {
    /// The token its [`Shutdown`]s wait on.
    token: CancellationToken,
}

/// A new pair.
pub fn channel() -> (Trigger, Shutdown) {
    let token = CancellationToken::new();
    (
        Trigger {
            token: token.clone(),
        },
        Shutdown {
            token,
            deadline: None,
        },
    )
}

impl Trigger {
    /// Tells every [`Shutdown`] of this pair (and its children) to stop.
    pub fn fire(&self) {
        self.token.cancel();
    }
}

impl Drop for Trigger {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl Shutdown {
    /// A shutdown that never fires (one-shot commands): no trigger exists for it.
    pub fn never() -> Shutdown {
        Shutdown {
            token: CancellationToken::new(),
            deadline: None,
        }
    }

    /// A new pair below this one: its [`Shutdown`] fires when its own [`Trigger`] fires
    /// (one source stopped alone) or when this one does (every source at shutdown); firing
    /// the child leaves this one alone.
    pub fn child(&self) -> (Trigger, Shutdown) {
        let token = self.token.child_token();
        (
            Trigger {
                token: token.clone(),
            },
            Shutdown {
                token,
                deadline: self.deadline.clone(),
            },
        )
    }

    /// This shutdown, also fired once `deadline` passes (a lease's validity).
    pub fn until(mut self, deadline: Deadline) -> Shutdown {
        self.deadline = Some(deadline);
        self
    }

    /// Whether the deadline (a lease's validity) has passed; the trigger is not asked. A
    /// batch being sent checks this between its messages: a holder paused or cut off in the
    /// middle of one sends none of the rest once it wakes, while a SIGTERM lets the batch
    /// under way finish (its cursor is written).
    pub fn lease_passed(&self) -> bool {
        self.deadline.as_ref().is_some_and(Deadline::passed)
    }

    /// Whether shutdown was asked for (or the deadline passed).
    pub fn is_fired(&self) -> bool {
        self.token.is_cancelled() || self.deadline.as_ref().is_some_and(Deadline::passed)
    }

    /// Completes when shutdown is asked for (or the trigger is dropped, or the deadline
    /// passes).
    pub async fn wait(&self) {
        let Some(deadline) = self.deadline.clone() else {
            return self.token.cancelled().await;
        };
        // The deadline may move while this waits: sleep to where it is, then look again.
        while !deadline.passed() {
            tokio::select! {
                _ = self.token.cancelled() => return,
                _ = tokio::time::sleep_until(deadline.instant().into()) => {}
            }
        }
    }

    /// Sleeps `d` unless shutdown comes first: `true` when the sleep ran out, `false` when
    /// shutdown came (stop then).
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.wait() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn fires_soon(s: &Shutdown) -> bool {
        let s = s.clone();
        tokio::time::timeout(Duration::from_millis(50), s.wait())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn fire_reaches_every_clone_and_a_dropped_trigger_fires_too() {
        let (trigger, shutdown) = channel();
        let clone = shutdown.clone();
        assert!(!shutdown.is_fired() && !fires_soon(&clone).await);
        trigger.fire();
        assert!(shutdown.is_fired() && clone.is_fired() && fires_soon(&clone).await);
        let (trigger, shutdown) = channel();
        drop(trigger);
        assert!(fires_soon(&shutdown).await);
        assert!(!fires_soon(&Shutdown::never()).await);
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_runs_out_or_ends_early_at_shutdown() {
        let (trigger, shutdown) = channel();
        let start = tokio::time::Instant::now();
        assert!(shutdown.sleep(Duration::from_secs(5)).await, "ran out");
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        let fire = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            trigger.fire();
        });
        let start = tokio::time::Instant::now();
        assert!(
            !shutdown.sleep(Duration::from_secs(60)).await,
            "shutdown came"
        );
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        fire.await.expect("task");
    }

    #[tokio::test]
    async fn a_child_stops_alone_or_with_its_parent() {
        let (process, shutdown) = channel();
        let (one, first) = shutdown.child();
        let (_two, second) = shutdown.child();
        one.fire();
        assert!(first.is_fired() && fires_soon(&first).await);
        assert!(!second.is_fired() && !shutdown.is_fired());
        process.fire();
        assert!(second.is_fired() && fires_soon(&second).await);
        // A child made after its parent fired is fired from the start.
        let (_late, late) = shutdown.child();
        assert!(late.is_fired());
    }

    #[tokio::test]
    async fn a_deadline_fires_when_it_passes_moves_when_renewed_and_stays_expired() {
        let (_trigger, shutdown) = channel();
        let deadline = Deadline::after(Duration::from_millis(200));
        let leased = shutdown.clone().until(deadline.clone());
        assert!(!leased.is_fired() && !shutdown.is_fired());
        deadline.move_to(Instant::now() + Duration::from_secs(60));
        assert!(!fires_soon(&leased).await, "renewed: not fired");
        deadline.move_to(Instant::now() + Duration::from_millis(20));
        assert!(fires_soon(&leased).await && leased.is_fired());
        assert!(!shutdown.is_fired(), "the parent has no deadline");
        let lost = Deadline::after(Duration::from_secs(60));
        lost.expire();
        lost.move_to(Instant::now() + Duration::from_secs(60));
        assert!(lost.passed(), "an expired deadline is not revived");
        // A child inherits the deadline.
        let (_t, child) = shutdown.clone().until(lost).child();
        assert!(child.is_fired());
    }
}
