//! `[control]`: the micro service, pause marks, backfills it started.

use std::fmt::Display;
use std::time::Duration;

use chrono::NaiveDate;

use super::{Happening, TARGET};
use crate::source::SourceSpec;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::Metrics;

/// `[control]`: the micro service answers on NATS.
pub struct ControlStarted<'a> {
    pub service: &'a str,
    pub subject: &'a str,
}

impl Happening for ControlStarted<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::info!(target: TARGET,
            service = self.service,
            subject = self.subject,
            "control service up (nats micro ls)"
        );
    }
}

/// A source's pause mark was seen: its task here idles (no requests, no publishing) until
/// the mark is deleted. Out of health's view meanwhile: a paused source is not a stalled one.
pub struct SourcePaused<'a> {
    pub source: &'a SourceSpec,
}

impl Happening for SourcePaused<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        h.unregister(&self.source.to_string());
        tracing::info!(target: TARGET,
            source = %h.names.shown_source(&self.source.to_string()),
            "source paused: not polled until `sources-resume` (its new actions wait in Gitea)"
        );
    }
}

/// A paused source's mark is gone: its task here polls again at once.
pub struct SourceResumed<'a> {
    pub source: &'a SourceSpec,
    pub interval: Duration,
}

impl Happening for SourceResumed<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        h.register(&self.source.to_string(), self.interval);
        tracing::info!(target: TARGET, source = %h.names.shown_source(&self.source.to_string()), "source resumed: polling again");
    }
}

/// The pause marks could not be read or followed (NATS away); tried again after `retry_in`.
/// What was known stays; sources whose marks were never read do not poll yet.
pub struct PausesUnread<'a> {
    pub error: &'a dyn Display,
    pub retry_in: Duration,
}

impl Happening for PausesUnread<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(target: TARGET,
            "cannot follow the pause marks in the cursor bucket (trying again in {:?}): {}",
            self.retry_in,
            self.error
        );
    }
}

/// `[control]`: the micro service could not start; the sourcer runs without it.
pub struct ControlUnavailable<'a> {
    pub error: &'a dyn Display,
}

impl Happening for ControlUnavailable<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::error!(target: TARGET,
            "control service not started (the sourcer runs without it): {}",
            self.error
        );
    }
}

/// `[control]`: one request, who asked and its outcome (`ok`, or the error code and why).
pub struct ControlRequested<'a> {
    pub endpoint: &'a str,
    /// The request's body (a source spec, or a backfill's range): no secrets.
    pub body: &'a str,
    pub outcome: &'a str,
    /// The requester's NATS user, as nats-server's `Nats-Request-Info` header names it
    /// (`unknown` without it); never its JWT or anything else of the header.
    pub user: &'a str,
    /// The requester's NATS account, likewise.
    pub account: &'a str,
}

impl Happening for ControlRequested<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let body: String = self.body.chars().take(200).collect();
        tracing::info!(target: TARGET,
            endpoint = self.endpoint,
            body,
            outcome = self.outcome,
            user = self.user,
            account = self.account,
            "control request"
        );
    }
}

/// `[control]`: a backfill it started finished.
pub struct ControlBackfillDone<'a> {
    pub sources: &'a str,
    pub since: NaiveDate,
    pub until: NaiveDate,
    pub days: usize,
    pub published: usize,
    pub skipped: usize,
    /// Source-days it could not complete (each logged as [`BackfillDayIncomplete`](super::BackfillDayIncomplete)).
    pub incomplete: usize,
}

impl Happening for ControlBackfillDone<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        if self.incomplete > 0 {
            tracing::warn!(target: TARGET,
                sources = self.sources,
                since = %self.since,
                until = %self.until,
                days = self.days,
                published = self.published,
                skipped = self.skipped,
                incomplete = self.incomplete,
                "control: backfill ended with {} source-days incomplete (logged above); run it again for them",
                self.incomplete
            );
            return;
        }
        tracing::info!(target: TARGET,
            sources = self.sources,
            since = %self.since,
            until = %self.until,
            days = self.days,
            published = self.published,
            skipped = self.skipped,
            "control: backfill done"
        );
    }
}

/// `[control]`: a backfill it started failed.
pub struct ControlBackfillFailed<'a> {
    pub sources: &'a str,
    pub error: &'a dyn Display,
}

impl Happening for ControlBackfillFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::error!(target: TARGET,
            sources = self.sources,
            "control: backfill failed: {}",
            self.error
        );
    }
}

/// `[control]`: an answer could not be sent back (the requester is gone, NATS away).
pub struct ControlAnswerUnsent<'a> {
    /// The endpoint asked.
    pub endpoint: &'a str,
    /// Why the answer was not sent.
    pub error: &'a dyn Display,
}

impl Happening for ControlAnswerUnsent<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let ControlAnswerUnsent { endpoint, error } = self;
        tracing::debug!(target: "gitea_nats_sourcer::control::service", endpoint, "control: the answer was not sent: {error}");
    }
}
