//! The run's lifecycle: ready, stopping, the watchdog, config reloads, the HTTP listener.

use std::fmt::Display;

use super::{Happening, TARGET};
use crate::health::Health;
use crate::metrics::Metrics;

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
        tracing::error!(target: "gitea_nats_sourcer::http", "HTTP listener failed: {error}");
    }
}
