//! Polls: started, planned, completed, failed; the setup and ledger upkeep around them.

use std::fmt::Display;
use std::time::Duration;

use super::{Happening, TARGET, source_label};
use crate::source::SourceSpec;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::{Metrics, SourceReasonLabels};

/// A poll of a source starts.
pub struct PollStarted<'a> {
    pub source: &'a SourceSpec,
}

impl Happening for PollStarted<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let source = self.source.to_string();
        // Every per-source family shows this source at zero from its first poll on.
        m.init_source(&h.names.shown_source(&source));
        h.poll_started(&source);
    }
}

/// The cadence planned a source's next poll.
pub struct PollPlanned<'a> {
    pub source: &'a SourceSpec,
    /// Until the next poll (before jitter).
    pub wait: Duration,
    /// The source's configured interval.
    pub interval: Duration,
    /// It published recently.
    pub active: bool,
    /// Requests a second of every source's plan.
    pub planned_rps: f64,
}

impl Happening for PollPlanned<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let PollPlanned {
            source: spec,
            wait,
            interval,
            active,
            planned_rps,
        } = self;
        m.poll_wait
            .get_or_create(&source_label(spec, &h.names))
            .set(wait.as_secs_f64());
        m.polls_planned_rps.set(planned_rps);
        tracing::debug!(target: TARGET,
            source = %h.names.shown_source(&spec.to_string()),
            wait_ms = wait.as_millis() as u64,
            interval_ms = interval.as_millis() as u64,
            active,
            planned_rps,
            "next poll planned"
        );
    }
}

/// A poll of a source finished.
pub struct PollCompleted<'a> {
    pub source: &'a SourceSpec,
    pub read: usize,
    pub published: usize,
    pub took: Duration,
}

impl Happening for PollCompleted<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let PollCompleted {
            source: spec,
            read,
            published,
            took,
        } = self;
        m.poll_duration
            .get_or_create(&source_label(spec, &h.names))
            .observe(took.as_secs_f64());
        h.poll_finished(&spec.to_string(), None);
        tracing::debug!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), read, published, took_ms = took.as_millis() as u64, "poll done");
    }
}

fn poll_error(m: &Metrics, h: &Health, spec: &SourceSpec, reason: &str, err: &dyn Display) {
    m.poll_errors
        .get_or_create(&SourceReasonLabels {
            source: h.names.shown_source(&spec.to_string()).into_owned(),
            reason: reason.into(),
        })
        .inc();
    h.poll_finished(&spec.to_string(), Some(err.to_string()));
}

/// The stream, the bucket or the cursors could not be had at start; tried again in
/// `retry_in` (nothing is polled until then).
pub struct NatsSetupFailed<'a> {
    pub error: &'a dyn Display,
    pub retry_in: Duration,
}

impl Happening for NatsSetupFailed<'_> {
    fn emit(self, m: &Metrics, _: &Health) {
        m.nats_setup_failures.inc();
        tracing::warn!(target: TARGET,
            retry_in_ms = self.retry_in.as_millis() as u64,
            "cannot set up JetStream yet (stream, bucket or cursors); retrying: {}",
            self.error
        );
    }
}

/// Backfill ledgers of days beyond the stream's `max_age` were deleted.
pub struct LedgersPruned<'a> {
    pub days: &'a [chrono::NaiveDate],
}

impl Happening for LedgersPruned<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let (Some(first), Some(last)) = (self.days.first(), self.days.last()) else {
            return;
        };
        tracing::info!(target: TARGET,
            count = self.days.len(),
            from = %first,
            to = %last,
            "deleted the backfill ledgers of days the stream no longer holds (max_age)"
        );
    }
}

/// Deleting old backfill ledgers failed; tried again in an hour.
pub struct LedgersPruneFailed<'a> {
    pub error: &'a dyn Display,
}

impl Happening for LedgersPruneFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(target: TARGET,
            "cannot delete old backfill ledgers (tried again in an hour): {}",
            self.error
        );
    }
}

/// A poll failed; the source tries again in `retry_in`.
pub struct PollFailed<'a> {
    pub source: &'a SourceSpec,
    /// The error's short label (`PollError::reason`).
    pub reason: &'a str,
    pub error: &'a dyn Display,
    pub retry_in: Duration,
}

impl Happening for PollFailed<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let PollFailed {
            source: spec,
            reason,
            error: err,
            retry_in,
        } = self;
        poll_error(m, h, spec, reason, err);
        let err = h.names.scrub(&err.to_string()).into_owned();
        tracing::warn!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), reason, retry_in_s = retry_in.as_secs(), "poll failed: {err}");
    }
}

/// Gitea refused a source (401, 403, 404); it waits, the others go on.
pub struct SourceRefused<'a> {
    pub source: &'a SourceSpec,
    pub reason: &'a str,
    pub error: &'a dyn Display,
    pub retry_in: Duration,
}

impl Happening for SourceRefused<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let SourceRefused {
            source: spec,
            reason,
            error: err,
            retry_in,
        } = self;
        poll_error(m, h, spec, reason, err);
        let err = h.names.scrub(&err.to_string()).into_owned();
        tracing::error!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), retry_in_s = retry_in.as_secs(), "source refused by Gitea (token or name?); it waits, the others go on: {err}");
    }
}
