//! Feed rows and the events built from them: pages read, rows and events skipped, events cut,
//! issues fetched for `enrich`.

use std::fmt::Display;

use super::{Happening, TARGET};
use crate::source::SourceSpec;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::{Metrics, PublishedLabels};

/// A page of a source's feed was read: progress of that source's poll (readiness judges a
/// long poll, such as a catch-up whose day takes longer than 15 minutes, by it).
pub struct FeedPageRead<'a> {
    pub source: &'a SourceSpec,
}

impl Happening for FeedPageRead<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        h.source_progress(&self.source.to_string());
    }
}

/// A feed row that does not parse is skipped.
pub struct RowSkipped<'a> {
    pub source: &'a SourceSpec,
    pub url: &'a str,
    pub reason: &'a str,
}

impl Happening for RowSkipped<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RowSkipped {
            source: spec,
            url,
            reason,
        } = self;
        let url = &*h.names.scrub(url);
        tracing::warn!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), url, "skipping a feed row that does not parse: {reason}");
    }
}

/// An action whose event cannot be built is skipped.
pub struct EventSkipped<'a> {
    pub source: &'a SourceSpec,
    pub reason: &'a str,
}

impl Happening for EventSkipped<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let EventSkipped {
            source: spec,
            reason,
        } = self;
        tracing::error!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), "skipping an action whose event cannot be built: {reason}");
    }
}

/// An event larger than the server's `max_payload` was cut to fit, and stored.
pub struct EventCut<'a> {
    /// The source (or `backfill`) that published it.
    pub source: &'a str,
    /// The event's id, subject and op type.
    pub id: &'a str,
    pub subject: &'a str,
    pub op_type: &'a str,
    /// Its size on the wire before and after the cut, bytes.
    pub from: usize,
    pub to: usize,
}

impl Happening for EventCut<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let EventCut {
            source,
            id,
            subject,
            op_type,
            from,
            to,
        } = self;
        m.events_truncated
            .get_or_create(&PublishedLabels {
                source: h.names.shown_source(source).into_owned(),
                op_type: op_type.to_string(),
            })
            .inc();
        let source = &*h.names.shown_source(source);
        let subject = &*h.names.shown_subject(subject);
        tracing::warn!(target: TARGET,
            source,
            id,
            subject,
            bytes = from,
            published_bytes = to,
            "an event larger than the server's max_payload was published cut to fit: its longest texts end in \"[cut by gitea-nats-sourcer: N bytes]\", it is marked `truncated` (header Gitea-Truncated: its size before), and the whole object stays in Gitea at the URL it names"
        );
    }
}

/// An event that cannot be cut small enough for `max_payload` is left out.
pub struct EventTooLarge<'a> {
    pub source: &'a str,
    /// The event's id, subject and op type.
    pub id: &'a str,
    pub subject: &'a str,
    pub op_type: &'a str,
    /// Why it cannot fit.
    pub error: &'a dyn std::error::Error,
}

impl Happening for EventTooLarge<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let EventTooLarge {
            source,
            id,
            subject,
            op_type,
            error,
        } = self;
        m.events_too_large
            .get_or_create(&PublishedLabels {
                source: h.names.shown_source(source).into_owned(),
                op_type: op_type.to_string(),
            })
            .inc();
        let source = &*h.names.shown_source(source);
        let subject = &*h.names.shown_subject(subject);
        tracing::error!(target: TARGET,
            source,
            id,
            subject,
            "skipping an event that cannot be published: {error}"
        );
    }
}

/// The log target of enrichment's happenings (where they were logged before).
const ENRICH: &str = "gitea_nats_sourcer::poll::pipeline::enrich";

/// `enrich`: an issue's fetch was abandoned at shutdown; the event goes out without it.
pub struct EnrichmentAbandoned<'a> {
    /// The repository's owner.
    pub owner: &'a str,
    /// The repository's name.
    pub name: &'a str,
    /// The index.
    pub index: i64,
}

impl Happening for EnrichmentAbandoned<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let EnrichmentAbandoned { owner, name, index } = self;
        tracing::debug!(target: ENRICH, repo = %format!("{owner}/{name}"), index, "enrichment abandoned at shutdown");
    }
}

/// `enrich`: an issue could not be fetched; the event goes out without it.
pub struct EnrichmentSkipped<'a> {
    /// The repository's owner.
    pub owner: &'a str,
    /// The repository's name.
    pub name: &'a str,
    /// The index.
    pub index: i64,
    /// Why the fetch failed.
    pub error: &'a dyn Display,
}

impl Happening for EnrichmentSkipped<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let EnrichmentSkipped {
            owner,
            name,
            index,
            error,
        } = self;
        tracing::warn!(target: ENRICH, repo = %format!("{owner}/{name}"), index, "enrichment skipped: {error}");
    }
}
