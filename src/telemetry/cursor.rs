//! Feed cursors: windows, creation, catch-up, gaps, batches published and cursors written.

use std::fmt::Display;

use chrono::{DateTime, FixedOffset, NaiveDate};

use super::{Happening, TARGET, count_published, source_label};
use crate::source::SourceSpec;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::Metrics;

/// A feed cursor's window holds more identities than it can store.
pub struct WindowShortened<'a> {
    pub source: &'a SourceSpec,
    pub from: i64,
    pub max: usize,
}

impl Happening for WindowShortened<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let WindowShortened {
            source: spec,
            from,
            max,
        } = self;
        tracing::warn!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), from, max, "more published identities in the trailing window than a cursor can store; the window now starts at {from} until the burst has passed (a row turning visible later than that would be missed)");
    }
}

/// While a source waits below an unproven second, its window is full: newer rows wait.
pub struct WindowFull<'a> {
    pub source: &'a SourceSpec,
    pub second: i64,
    /// Rows of this poll that wait.
    pub waiting: usize,
    pub max: usize,
}

impl Happening for WindowFull<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let WindowFull {
            source: spec,
            second,
            waiting,
            max,
        } = self;
        tracing::warn!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), second, waiting, max, "the cursor waits below a second it could not prove whole and its window holds poll.max_window identities: newer rows wait until that second is proven (late, not lost; the cursor cannot forget what it published above the second). Said once for this second");
    }
}

/// A repository kind's window holds more identities than its cursor can store.
pub struct RepoWindowShortened<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub from: i64,
}

impl Happening for RepoWindowShortened<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoWindowShortened {
            owner,
            repo,
            kind,
            from,
        } = self;
        tracing::warn!(target: TARGET, repo = %h.names.shown_parts(owner, repo), kind, from, "more published changes in the trailing window than a cursor can store; the window now starts at {from} until the burst has passed");
    }
}

/// Daylight saving time ended: the end of the day is read through plain paging.
pub struct DstSpan<'a> {
    pub source: &'a SourceSpec,
    pub day: NaiveDate,
    pub from: i64,
    pub to: i64,
}

impl Happening for DstSpan<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let DstSpan {
            source: spec,
            day,
            from,
            to,
        } = self;
        tracing::info!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), %day, from, to, "the server's offset fell (daylight saving time ended): reading the end of the day, which no date= query returns, through plain paging");
    }
}

/// A source without a cursor gets one, as its `start` says.
pub struct CursorCreated<'a> {
    pub source: &'a SourceSpec,
    /// The `start` setting, as written in the config.
    pub start: &'a dyn Display,
    pub position: i64,
}

impl Happening for CursorCreated<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let CursorCreated {
            source: spec,
            start,
            position,
        } = self;
        tracing::info!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), %start, position, "no stored cursor; starting at {start}");
    }
}

/// A source far behind catches up day by day.
pub struct CatchUpStarted<'a> {
    pub source: &'a SourceSpec,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Happening for CatchUpStarted<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let CatchUpStarted {
            source: spec,
            from,
            to,
        } = self;
        tracing::info!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), %from, %to, "far behind: catching up day by day");
    }
}

/// History between the cursor and Gitea's oldest row was deleted before it was read.
pub struct GapDetected<'a> {
    pub source: &'a SourceSpec,
    /// Unix seconds.
    pub from: i64,
    /// Unix seconds.
    pub to: i64,
}

impl Happening for GapDetected<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let GapDetected {
            source: spec,
            from,
            to,
        } = self;
        m.gaps_detected
            .get_or_create(&source_label(spec, &h.names))
            .inc();
        let fmt = |t: i64| {
            DateTime::from_timestamp(t, 0)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default()
        };
        tracing::error!(target: TARGET,
            source = %h.names.shown_source(&spec.to_string()), from = %fmt(from), to = %fmt(to),
            "history lost: the oldest row Gitea has (read from the end of the feed) is newer \
             than the cursor, so the actions between were deleted before they were read (by \
             the delete_old_actions cron, or with their repository or issue); continuing from \
             the oldest row"
        );
    }
}

/// A feed batch was acknowledged and its cursor written.
pub struct BatchPublished<'a> {
    pub source: &'a SourceSpec,
    /// Events JetStream stored.
    pub stored: usize,
    /// Events JetStream already had.
    pub duplicates: usize,
    /// The op type of each stored event (not the duplicates), oldest first.
    pub stored_op_types: &'a [&'a str],
    /// `created` of the batch's newest row.
    pub newest: &'a DateTime<FixedOffset>,
}

impl Happening for BatchPublished<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let BatchPublished {
            source: spec,
            stored,
            duplicates,
            stored_op_types,
            newest,
        } = self;
        let source = spec.to_string();
        h.source_progress(&source);
        count_published(m, &h.names.shown_source(&source), stored_op_types);
        if duplicates > 0 {
            m.events_duplicate
                .get_or_create(&source_label(spec, &h.names))
                .inc_by(duplicates as u64);
        }
        tracing::info!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), count = stored, duplicates, newest = %newest.to_rfc3339(), "published");
    }
}

/// A feed cursor was written.
pub struct CursorWritten<'a> {
    pub source: &'a SourceSpec,
    /// The cursor's newest published `created` (RFC 3339), if any.
    pub newest: Option<&'a str>,
}

impl Happening for CursorWritten<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let CursorWritten {
            source: spec,
            newest,
        } = self;
        let source = spec.to_string();
        h.source_progress(&source);
        let newest = newest
            .and_then(|n| DateTime::parse_from_rfc3339(n).ok())
            .map(|d| d.timestamp());
        m.cursor_written(&h.names.shown_source(&source), newest);
    }
}

/// A poll ended with the source's cursor here (read from the bucket or as the poll left it):
/// the position's age and how long it has been pinned below an unproven second are shown
/// from it (computed at scrape time), and a source pinned too long is not ready.
pub struct CursorPosition<'a> {
    pub source: &'a SourceSpec,
    /// Unix seconds.
    pub position: i64,
    /// The second the position waits below (Unix seconds), and since when.
    pub pinned: Option<(i64, DateTime<chrono::Utc>)>,
}

impl Happening for CursorPosition<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let CursorPosition {
            source: spec,
            position,
            pinned,
        } = self;
        let source = spec.to_string();
        m.cursor_position(
            &h.names.shown_source(&source),
            position,
            pinned.map(|(_, since)| since),
        );
        h.pinned(&source, pinned);
    }
}
