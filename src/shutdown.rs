//! Shutdown as a value passed in (mini-redis style): the scheduler owns the sender, every
//! task holds a [`Shutdown`] and races only its waits against it, never the step between
//! publishing and writing the cursor.

use tokio::sync::watch;

/// Fires once; cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The sending side.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

/// A new pair.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    /// Tells every [`Shutdown`] to stop.
    pub fn fire(&self) {
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    /// A shutdown that never fires (one-shot commands).
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        // Keep the sender alive forever so `wait` stays pending instead of returning.
        std::mem::forget(tx);
        Shutdown { rx }
    }

    /// Whether shutdown was asked for.
    pub fn is_fired(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes when shutdown is asked for (or the trigger is dropped).
    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|fired| *fired).await;
    }
}
