//! The `[ha]` coordinator's orders, carried out by the [`Supervisor`]: a lease taken starts
//! its source (and the drains it brings along), a lease lost or released stops it.

use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::DRAIN;
use super::drain::start_drains;
use super::supervisor::{Running, Supervisor, unhanded};
use crate::ha::Order;
use crate::shutdown::Deadline;
use crate::source::SourceSpec;
use crate::telemetry;

/// How long reading the stored cursors may take when leases are taken (for the drains
/// they bring along).
const LIST_TIMEOUT: Duration = Duration::from_secs(2);

impl Supervisor {
    /// Starts or stops sources as the `[ha]` coordinator says; every order already waiting
    /// is carried out together with `first` (one read of the stored cursors for all the
    /// sources a failover brings).
    /// * Start: an org or user source brings along the drains of removed `repo:` sources it
    ///   takes over (from cursors a previous config left), run here under its lease; a source
    ///   whose earlier task is still ending starts once that one has ended.
    /// * Stop: fires the source's trigger (and its drains') and answers once the tasks have
    ///   ended (a safe point), or after [`DRAIN`] with them aborted (their cursors stay at
    ///   their last acknowledged batch).
    pub(super) async fn on_orders(&mut self, first: Order) {
        let mut orders = vec![first];
        if let Some(ha) = self.ha.as_mut() {
            while let Ok(o) = ha.orders.try_recv() {
                orders.push(o);
            }
        }
        self.ending.retain(|_, ended| !*ended.borrow());
        let owners_taken = orders.iter().any(
            |o| matches!(o, Order::Start { spec, .. } if !matches!(spec, SourceSpec::Repo { .. })),
        );
        let stored = match owners_taken {
            true => self.stored_for_drains().await,
            false => None,
        };
        for order in orders {
            match order {
                Order::Start { spec, deadline } => self.on_start(spec, deadline, &stored),
                Order::Stop { spec, done } => self.on_stop(spec, done),
            }
        }
    }

    /// The stored cursors' sources (for the drains the sources taken here bring), read
    /// within [`LIST_TIMEOUT`]; `None` (logged) when they cannot be had.
    async fn stored_for_drains(&self) -> Option<Vec<SourceSpec>> {
        match tokio::time::timeout(LIST_TIMEOUT, self.services.ctx.store.list()).await {
            Ok(Ok(list)) => Some(unhanded(list)),
            Ok(Err(e)) => {
                self.services
                    .ctx
                    .telemetry
                    .emit(telemetry::DrainCursorsUnread {
                        error: Some(&e),
                        within: LIST_TIMEOUT,
                    });
                None
            }
            Err(_) => {
                self.services
                    .ctx
                    .telemetry
                    .emit(telemetry::DrainCursorsUnread {
                        error: None,
                        within: LIST_TIMEOUT,
                    });
                None
            }
        }
    }

    /// A lease taken: the source starts under it (after its earlier task, if that is still
    /// ending), with the drains into it among `stored`.
    fn on_start(&mut self, spec: SourceSpec, deadline: Deadline, stored: &Option<Vec<SourceSpec>>) {
        if let Some(r) = self.running.get(&spec) {
            // A task of an earlier taking that has not been stopped yet is replaced: it
            // stops, and the new one starts after it.
            if r.deadline.as_ref().is_some_and(|d| d.same(&deadline)) {
                return;
            }
            if let Some(r) = self.running.remove(&spec) {
                let ended = stop_tasks(vec![r], None);
                self.ending.insert(spec.clone(), ended);
            }
        }
        let Some(source) = self.config.sources().into_iter().find(|s| s.spec == spec) else {
            return;
        };
        if let Some(candidates) = stored {
            let configured: Vec<SourceSpec> =
                self.config.sources().into_iter().map(|s| s.spec).collect();
            self.draining.retain(|_, r| !r.task.is_finished());
            start_drains(
                &self.services,
                &self.config,
                &configured,
                candidates.clone(),
                &mut self.draining,
                &self.shutdown,
                Some((&spec, &deadline)),
            );
        }
        let after = self.ending.get(&spec).cloned();
        let r = self.start_source(source, Some(deadline), after);
        self.running.insert(spec, r);
    }

    /// A lease lost or released: the source and its drains stop; `done` is answered once
    /// they have ended.
    fn on_stop(&mut self, spec: SourceSpec, done: oneshot::Sender<()>) {
        let mut stopping = Vec::new();
        if let Some(r) = self.running.remove(&spec) {
            self.services
                .ctx
                .telemetry
                .health
                .unregister(&spec.to_string());
            stopping.push(r);
        }
        let drains: Vec<SourceSpec> = self
            .draining
            .iter()
            .filter(|(_, r)| r.drains_to.as_ref() == Some(&spec))
            .map(|(s, _)| s.clone())
            .collect();
        stopping.extend(drains.iter().filter_map(|s| self.draining.remove(s)));
        let ended = stop_tasks(stopping, Some(done));
        self.ending.insert(spec, ended);
    }
}

/// Fires the tasks' triggers and, in the background, waits for them (aborting those that
/// take longer than [`DRAIN`]); then answers on `done`. The receiver turns true once all
/// have ended.
fn stop_tasks(stopping: Vec<Running>, done: Option<oneshot::Sender<()>>) -> watch::Receiver<bool> {
    let (ended, rx) = watch::channel(false);
    for r in &stopping {
        r.trigger.fire();
    }
    tokio::spawn(async move {
        for r in stopping {
            let mut task = r.task;
            if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
        let _ = ended.send(true);
        if let Some(done) = done {
            let _ = done.send(());
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn running(parent: &crate::shutdown::Shutdown, ends_after: Option<Duration>) -> Running {
        let source = Config::parse(
            "[gitea]\nurl = \"https://git.example.com\"\n[[source]]\norg = \"acme\"\n",
        )
        .expect("config")
        .sources()
        .remove(0);
        let (trigger, stop) = parent.child();
        let task = tokio::spawn(async move {
            stop.wait().await;
            // The safe point comes this long after the stop (never, with `None`).
            match ends_after {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        });
        Running {
            source,
            trigger,
            task,
            deadline: None,
            drains_to: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_is_answered_once_the_task_has_ended() {
        let (_process, shutdown) = crate::shutdown::channel();
        let (done, answered) = oneshot::channel();
        let start = tokio::time::Instant::now();
        let ended = stop_tasks(
            vec![running(&shutdown, Some(Duration::from_millis(300)))],
            Some(done),
        );
        answered.await.expect("answered");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "at its safe point"
        );
        assert!(*ended.borrow(), "ended before the answer");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_does_not_stop_is_aborted_after_the_drain_and_then_answered() {
        let (_process, shutdown) = crate::shutdown::channel();
        let (done, answered) = oneshot::channel();
        let start = tokio::time::Instant::now();
        let mut ended = stop_tasks(
            vec![
                running(&shutdown, None),
                running(&shutdown, Some(Duration::ZERO)),
            ],
            Some(done),
        );
        ended.wait_for(|e| *e).await.expect("ended");
        assert_eq!(start.elapsed(), DRAIN);
        answered.await.expect("answered");
    }
}
