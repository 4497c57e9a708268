//! Shutdown as a value passed in (mini-redis style): the scheduler owns the sender, every
//! task holds a [`Shutdown`] and races only its waits against it, never the step between
//! publishing and writing the cursor.
//!
//! A thin wrapper over [`CancellationToken`]: the process-wide shutdown is one token, and a
//! source's own stop is a child token ([`Shutdown::child`]) that the process-wide one also
//! cancels, so firing the process-wide [`Trigger`] reaches every source at once.

use tokio_util::sync::CancellationToken;

/// Fires once; cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    token: CancellationToken,
}

/// The sending side. Dropping it fires it too: nobody can fire it any more, so whoever waits
/// stops instead of waiting forever.
#[derive(Debug)]
pub struct Trigger {
    token: CancellationToken,
}

/// A new pair.
pub fn channel() -> (Trigger, Shutdown) {
    let token = CancellationToken::new();
    (
        Trigger {
            token: token.clone(),
        },
        Shutdown { token },
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
            Shutdown { token },
        )
    }

    /// Whether shutdown was asked for.
    pub fn is_fired(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when shutdown is asked for (or the trigger is dropped).
    pub async fn wait(&mut self) {
        self.token.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn fires_soon(s: &Shutdown) -> bool {
        let mut s = s.clone();
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
}
