//! The run's lifecycle: ready, stopping, the watchdog, config reloads, the HTTP listener.

use std::fmt::Display;
use std::time::Duration;

use super::{Happening, TARGET};
use crate::telemetry::health::Health;
use crate::telemetry::metrics::Metrics;

/// Every source is started.
pub struct Ready {
    pub sources: usize,
}

impl Happening for Ready {
    fn emit(self, _: &Metrics, _: &Health) {
        let sources = self.sources;
        tracing::info!(target: TARGET, sources, "running");
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            tracing::debug!(target: TARGET, "sd_notify READY: {e}");
        }
    }
}

/// Shutdown began.
pub struct Stopping;

impl Happening for Stopping {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::info!(target: TARGET, "shutting down");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    }
}

/// The systemd watchdog is pinged.
pub struct WatchdogPing;

impl Happening for WatchdogPing {
    fn emit(self, _: &Metrics, _: &Health) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
    }
}

/// A poll made no progress within the watchdog interval: the ping is withheld.
pub struct WatchdogWithheld;

impl Happening for WatchdogWithheld {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::error!(target: TARGET,
            "a poll is running and made no progress (no Gitea answer, no acknowledged batch) within the watchdog interval; withholding the systemd watchdog ping so the service is restarted"
        );
    }
}

/// A config reload (SIGHUP) was applied.
pub struct Reloaded {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

impl Happening for Reloaded {
    fn emit(self, _: &Metrics, _: &Health) {
        let Reloaded {
            added,
            removed,
            changed,
        } = self;
        tracing::info!(target: TARGET,
            added,
            removed,
            changed,
            "config reloaded (SIGHUP): sources updated, cursors kept"
        );
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}

/// A config reload (SIGHUP) failed; the running config is kept.
pub struct ReloadFailed<'a> {
    pub error: &'a dyn Display,
}

impl Happening for ReloadFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let err = self.error;
        tracing::error!(target: TARGET, "config reload (SIGHUP) failed, keeping the running config: {err}");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}

/// Sources stopped by a reload did not reach a safe point in time.
pub struct ReloadAbandoned {
    pub tasks: usize,
}

impl Happening for ReloadAbandoned {
    fn emit(self, _: &Metrics, _: &Health) {
        let tasks = self.tasks;
        tracing::warn!(target: TARGET,
            tasks,
            "config reload (SIGHUP): a stopped source did not reach a safe point in time; abandoning it (its cursor stays at its last acknowledged batch)"
        );
    }
}

/// A reloaded section other than the sources needs a restart.
pub struct ReloadNeedsRestart<'a> {
    pub section: &'a str,
}

impl Happening for ReloadNeedsRestart<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let section = self.section;
        tracing::warn!(target: TARGET,
            "config reload (SIGHUP): [{section}] changed; it takes effect only after a restart"
        );
    }
}

/// The HTTP listener (`/metrics`, `/healthz`, `/readyz`) failed; the run goes on without it.
pub struct HttpFailed<'a> {
    /// Why it failed.
    pub error: &'a dyn Display,
}

impl Happening for HttpFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let error = self.error;
        tracing::error!(target: "gitea_nats_sourcer::telemetry::http", "HTTP listener failed: {error}");
    }
}

/// The log target of the scheduler's happenings below (where they are logged today).
const SCHEDULER: &str = "gitea_nats_sourcer::scheduler";

/// At shutdown, polls did not stop within the drain time and are abandoned (their cursors
/// stay at the last acknowledged batch).
pub struct PollsAbandoned;

impl Happening for PollsAbandoned {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(
            target: SCHEDULER,
            "polls did not stop in time; abandoning them (their cursors stay at the last acknowledged batch)"
        );
    }
}

/// At shutdown, the last NATS flush failed (`error`) or had no answer within `within`
/// (`error` is then `None`); every acknowledged batch is stored already.
pub struct NatsFlushFailed<'a> {
    /// Why the flush failed, if it answered.
    pub error: Option<&'a dyn Display>,
    /// How long the flush was waited for.
    pub within: Duration,
}

impl Happening for NatsFlushFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let within = self.within;
        match self.error {
            Some(e) => tracing::debug!(target: SCHEDULER, "NATS flush at shutdown: {e}"),
            None => {
                tracing::debug!(target: SCHEDULER, "NATS flush at shutdown: no answer within {within:?}")
            }
        }
    }
}

/// The stored cursors could not be listed (`error`) or did not come within `within`
/// (`error` is then `None`), so the drains the sources taken here bring are not started now.
pub struct DrainCursorsUnread<'a> {
    /// Why the cursors could not be listed, if the bucket answered.
    pub error: Option<&'a dyn Display>,
    /// How long the list was waited for.
    pub within: Duration,
}

impl Happening for DrainCursorsUnread<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let within = self.within;
        match self.error {
            Some(e) => tracing::warn!(
                target: SCHEDULER,
                "cannot read the stored cursors for the drains the sources taken here bring \
                 ({e}); none started now"
            ),
            None => tracing::warn!(
                target: SCHEDULER,
                "the stored cursors did not come within {within:?}; no drain started now"
            ),
        }
    }
}

/// SIGHUP cannot be listened for; a config change needs a restart.
pub struct SighupUnavailable<'a> {
    /// Why the signal handler could not be installed.
    pub error: &'a dyn Display,
}

impl Happening for SighupUnavailable<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let error = self.error;
        tracing::warn!(target: SCHEDULER, "cannot listen for SIGHUP ({error}); reload by restarting");
    }
}
