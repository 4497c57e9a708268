//! Walks: re-reads, realignments, seconds held back and proven, incomplete days.

use chrono::NaiveDate;

use super::{Happening, TARGET, source_label};
use crate::source::SourceSpec;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::Metrics;

/// A walk reads the feed again (a row may be hidden by a page boundary).
pub struct WalkRestarted<'a> {
    pub source: &'a SourceSpec,
    pub pass: u64,
    pub unproven: i64,
}

impl Happening for WalkRestarted<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let WalkRestarted {
            source: spec,
            pass,
            unproven,
        } = self;
        tracing::debug!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), pass, unproven, "a row of a second split by a page boundary (or of shifted pages) may be hidden; reading again");
    }
}

/// A second split by a page boundary was read again at another alignment (another page
/// size, so that no boundary cuts it).
pub struct WalkRealigned<'a> {
    pub source: &'a SourceSpec,
    pub second: i64,
    /// Rows the second has (its slots in the read that split it).
    pub rows: u64,
    /// Distinct rows of it held after the reads.
    pub held: u64,
}

impl Happening for WalkRealigned<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let WalkRealigned {
            source: spec,
            second,
            rows,
            held,
        } = self;
        m.walks_realigned
            .get_or_create(&source_label(spec, &h.names))
            .inc();
        tracing::debug!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), second, rows, held, "read a same-second tie split by a page boundary again at another page size");
    }
}

/// A source could not prove a second of its feed whole and holds its cursor below it: said
/// once per second (the walks go on at one pass a poll, trying hard again now and then).
pub struct SecondHeldBack<'a> {
    pub source: &'a SourceSpec,
    pub second: i64,
    pub retry_in: std::time::Duration,
    /// Why it could not be proven, as the walk's reads tell (`feed::evidence::Why`).
    pub why: &'a str,
}

impl Happening for SecondHeldBack<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let SecondHeldBack {
            source: spec,
            second,
            retry_in,
            why,
        } = self;
        m.seconds_held_back
            .get_or_create(&source_label(spec, &h.names))
            .set(1);
        let at = chrono::DateTime::from_timestamp(second, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        tracing::warn!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), second, at, retry_in = ?retry_in, "cannot prove every row of this second of the feed was read: {why}. The cursor waits at it (what was read is published; newer rows go out while the window has room, poll.max_window); each poll reads the trailing window once, and the second is tried hard again, at other alignments, after a wait that doubles up to 15 min. Said once for this second");
    }
}

/// A held-back second was proven whole at last.
pub struct SecondProven<'a> {
    pub source: &'a SourceSpec,
    pub second: i64,
    pub waited: std::time::Duration,
}

impl Happening for SecondProven<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let SecondProven {
            source: spec,
            second,
            waited,
        } = self;
        m.seconds_held_back
            .get_or_create(&source_label(spec, &h.names))
            .set(0);
        tracing::info!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), second, waited = ?waited, "the held-back second is proven whole; the cursor moves on");
    }
}

/// A live walk could not prove every row held.
pub struct WalkUnproven<'a> {
    pub source: &'a SourceSpec,
    pub unproven: i64,
    pub passes: usize,
    /// Why, as the walk's reads tell.
    pub why: &'a str,
}

impl Happening for WalkUnproven<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let WalkUnproven {
            source: spec,
            unproven,
            passes,
            why,
        } = self;
        m.walks_unproven
            .get_or_create(&source_label(spec, &h.names))
            .inc();
        tracing::debug!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), unproven, passes, "could not prove every row of the feed was read ({why}); the cursor stays at the unproven second and the next poll reads it again");
    }
}

/// A day walk could not prove every row of the day held.
pub struct WalkIncomplete<'a> {
    pub source: &'a SourceSpec,
    pub day: NaiveDate,
    pub read: usize,
    pub unproven: i64,
    /// Why, as the walk's reads tell.
    pub why: &'a str,
}

impl Happening for WalkIncomplete<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let WalkIncomplete {
            source: spec,
            day,
            read,
            unproven,
            why,
        } = self;
        m.walks_unproven
            .get_or_create(&source_label(spec, &h.names))
            .inc();
        tracing::debug!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), %day, read, unproven, "could not prove every row of the day was read ({why}); publishing what was read, the cursor stays at the unproven second and the next poll reads the day again");
    }
}

/// A backfill could not complete a day of a source: its walk left a second unproven. The
/// day is not marked done (the next backfill reads it again) and the command fails.
pub struct BackfillDayIncomplete<'a> {
    pub source: &'a SourceSpec,
    pub day: NaiveDate,
    pub unproven: i64,
    /// Why, as the walk's reads tell.
    pub why: &'a str,
}

impl Happening for BackfillDayIncomplete<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let BackfillDayIncomplete {
            source: spec,
            day,
            unproven,
            why,
        } = self;
        tracing::warn!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), %day, unproven, "backfill could not complete the day: second {unproven} could not be proven whole ({why}); what was read is published, the day is not marked done, run the backfill again for it");
    }
}

/// A backfill of an org or user source also backfills a configured `repo:` source of one of
/// its repositories (that source publishes the repository, live and in backfill).
pub struct BackfillWithOwner<'a> {
    pub source: &'a SourceSpec,
    pub with: &'a SourceSpec,
}

impl Happening for BackfillWithOwner<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let BackfillWithOwner { source, with } = self;
        tracing::info!(target: TARGET, source = %source, with = %with, "backfill of {source} also backfills {with}: that source publishes its repository");
    }
}

/// A backfill finished a day of a source: the progress line (written in place on a
/// terminal instead).
pub struct BackfillProgress<'a> {
    /// The line, as the terminal shows it.
    pub line: &'a str,
}

impl Happening for BackfillProgress<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let line = self.line;
        tracing::info!(target: "gitea_nats_sourcer::poll::backfill", "{line}");
    }
}
