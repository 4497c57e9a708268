//! One struct per happening (Vector's internal events): its `emit` writes the happening's
//! log line and moves its metrics, so call sites say what happened and nothing more:
//! `telemetry.emit(PollCompleted { .. })`, on the run's [`Telemetry`]. Happenings carry plain values (strings, numbers, times,
//! `&dyn Display` errors, [`SourceSpec`]); this module imports nothing of the product but
//! `source`, `metrics` and `health`, so every layer can call it. Tokens never reach this
//! module: URLs carry none, and errors are built without them.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate};

use crate::health::Health;
use crate::metrics::{
    ClassLabel, Metrics, PublishedLabels, ReasonLabel, ReceiverClassLabels, ReceiverLabel,
    SourceLabel, SourceReasonLabels,
};
use crate::source::SourceSpec;

/// A happening: what it writes to the log and the metrics it moves.
pub trait Happening {
    fn emit(self, m: &Metrics, h: &Health);
}

/// The metrics registry and the health state of one run, handed to what emits happenings
/// (the Gitea client, the NATS event callback, the polls, the scheduler) and to the HTTP
/// listener that shows them. Cheap to clone: clones share both.
#[derive(Clone)]
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl Telemetry {
    /// A fresh registry and health state.
    pub fn new() -> Telemetry {
        Telemetry {
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::default()),
        }
    }

    /// Emits a happening: `telemetry.emit(PollCompleted { .. })`.
    pub fn emit(&self, happening: impl Happening) {
        happening.emit(&self.metrics, &self.health)
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

/// A source's label: its name, a private repository's hidden (`names`).
fn source_label(spec: &SourceSpec, names: &crate::names::RepoNames) -> SourceLabel {
    SourceLabel {
        source: names.shown_source(&spec.to_string()).into_owned(),
    }
}

/// A Gitea request failed and is retried after `wait`.
pub struct GiteaRetry<'a> {
    pub url: &'a str,
    /// The error's short label (`GiteaError::reason`).
    pub reason: &'a str,
    pub error: &'a dyn Display,
    pub wait: Duration,
}

impl Happening for GiteaRetry<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let GiteaRetry {
            url,
            reason,
            error,
            wait,
        } = self;
        h.progress();
        m.gitea_retries
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
        // A URL or an error may name a private repository (`/repos/{owner}/{name}/...`).
        let url = &*h.names.scrub(url);
        let error = h.names.scrub(&error.to_string()).into_owned();
        tracing::warn!(
            url,
            reason,
            wait_ms = wait.as_millis() as u64,
            "Gitea request failed, retrying: {error}"
        );
    }
}

/// Gitea answered with an HTTP status.
pub struct GiteaResponse {
    pub status: u16,
}

impl Happening for GiteaResponse {
    fn emit(self, m: &Metrics, h: &Health) {
        let status = self.status;
        h.progress();
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        m.gitea_requests
            .get_or_create(&ClassLabel {
                class: class.into(),
            })
            .inc();
        h.set_gitea_ok(status < 500);
    }
}

/// Gitea did not answer at all.
pub struct GiteaUnreachable;

impl Happening for GiteaUnreachable {
    fn emit(self, m: &Metrics, h: &Health) {
        m.gitea_requests
            .get_or_create(&ClassLabel {
                class: "error".into(),
            })
            .inc();
        h.set_gitea_ok(false);
    }
}

/// The client was built with `gitea.tls_insecure_skip_verify`.
pub struct GiteaTlsUnverified<'a> {
    pub url: &'a str,
}

impl Happening for GiteaTlsUnverified<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let url = self.url;
        tracing::warn!(
            url,
            "gitea.tls_insecure_skip_verify is on: Gitea's TLS certificate is NOT verified; anyone on the path can read the token"
        );
    }
}

/// A request waits for the shared rate limit.
pub struct RateLimitWait;

impl Happening for RateLimitWait {
    fn emit(self, m: &Metrics, _: &Health) {
        m.rate_limit_waits.inc();
        tracing::trace!("waiting for the Gitea rate limit");
    }
}

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
        tracing::warn!(source = %h.names.shown_source(&spec.to_string()), url, "skipping a feed row that does not parse: {reason}");
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
        tracing::error!(source = %h.names.shown_source(&spec.to_string()), "skipping an action whose event cannot be built: {reason}");
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
        tracing::warn!(
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
        tracing::error!(
            source,
            id,
            subject,
            "skipping an event that cannot be published: {error}"
        );
    }
}

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
        tracing::debug!(source = %h.names.shown_source(&spec.to_string()), pass, unproven, "a row of a second split by a page boundary (or of shifted pages) may be hidden; reading again");
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
        tracing::debug!(source = %h.names.shown_source(&spec.to_string()), second, rows, held, "read a same-second tie split by a page boundary again at another page size");
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
        tracing::warn!(source = %h.names.shown_source(&spec.to_string()), second, at, retry_in = ?retry_in, "cannot prove every row of this second of the feed was read: {why}. The cursor waits at it (what was read is published; newer rows go out while the window has room, poll.max_window); each poll reads the trailing window once, and the second is tried hard again, at other alignments, after a wait that doubles up to 15 min. Said once for this second");
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
        tracing::info!(source = %h.names.shown_source(&spec.to_string()), second, waited = ?waited, "the held-back second is proven whole; the cursor moves on");
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
        tracing::debug!(source = %h.names.shown_source(&spec.to_string()), unproven, passes, "could not prove every row of the feed was read ({why}); the cursor stays at the unproven second and the next poll reads it again");
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
        tracing::debug!(source = %h.names.shown_source(&spec.to_string()), %day, read, unproven, "could not prove every row of the day was read ({why}); publishing what was read, the cursor stays at the unproven second and the next poll reads the day again");
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
        tracing::warn!(source = %h.names.shown_source(&spec.to_string()), %day, unproven, "backfill could not complete the day: second {unproven} could not be proven whole ({why}); what was read is published, the day is not marked done, run the backfill again for it");
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
        tracing::info!(source = %source, with = %with, "backfill of {source} also backfills {with}: that source publishes its repository");
    }
}

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
        tracing::warn!(source = %h.names.shown_source(&spec.to_string()), from, max, "more published identities in the trailing window than a cursor can store; the window now starts at {from} until the burst has passed (a row turning visible later than that would be missed)");
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
        tracing::warn!(source = %h.names.shown_source(&spec.to_string()), second, waiting, max, "the cursor waits below a second it could not prove whole and its window holds poll.max_window identities: newer rows wait until that second is proven (late, not lost; the cursor cannot forget what it published above the second). Said once for this second");
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
        tracing::warn!(repo = %h.names.shown_parts(owner, repo), kind, from, "more published changes in the trailing window than a cursor can store; the window now starts at {from} until the burst has passed");
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
        tracing::info!(source = %h.names.shown_source(&spec.to_string()), %day, from, to, "the server's offset fell (daylight saving time ended): reading the end of the day, which no date= query returns, through plain paging");
    }
}

/// A new `repo:` source takes its repository over from the source that published it.
pub struct CursorHandedOver<'a> {
    pub from: &'a SourceSpec,
    pub to: &'a SourceSpec,
    pub position: i64,
}

impl Happening for CursorHandedOver<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let CursorHandedOver { from, to, position } = self;
        tracing::info!(source = %h.names.shown_source(&to.to_string()), from = %from, position, "no stored cursor; taking the repository over from {from} where its cursor is");
    }
}

/// A new `repo:` source takes its repository over from the source that published it, but
/// its own `start` asks for older history than that source published: it starts there and
/// leaves out the span that source published.
pub struct HistoryBeforeHandover<'a> {
    pub from: &'a SourceSpec,
    pub to: &'a SourceSpec,
    /// The `start` setting, as written in the config.
    pub start: &'a dyn Display,
    /// What `from` published, Unix seconds from and to (`None`: nothing of this repository).
    pub left_out: Option<(i64, i64)>,
}

impl Happening for HistoryBeforeHandover<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let HistoryBeforeHandover {
            from,
            to,
            start,
            left_out,
        } = self;
        let at = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        };
        match left_out {
            Some((lo, hi)) => {
                tracing::info!(source = %h.names.shown_source(&to.to_string()), from = %from, %start, left_out_from = lo, left_out_to = hi, "no stored cursor; taking the repository over from {from}, and publishing its history from {start}: all but what {from} published, from {} to {}", at(lo), at(hi))
            }
            None => {
                tracing::info!(source = %h.names.shown_source(&to.to_string()), from = %from, %start, "no stored cursor; {from} published nothing of the repository that this source's start leaves out: starting at {start}")
            }
        }
    }
}

/// A removed `repo:` source is drained before `to` takes its repository over.
pub struct RepositoryDraining<'a> {
    pub source: &'a SourceSpec,
    pub to: &'a SourceSpec,
}

impl Happening for RepositoryDraining<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepositoryDraining { source: spec, to } = self;
        tracing::info!(source = %h.names.shown_source(&spec.to_string()), to = %to, "source removed; polling its repository to the head of its feed once more before {to} takes it over");
    }
}

/// A drained repository is handed over to `to`, which reads it back from `from`.
pub struct RepositoryHandedOver<'a> {
    pub source: &'a SourceSpec,
    pub to: &'a SourceSpec,
    /// Unix seconds: the drained cursor's cutoff.
    pub from: i64,
    /// The second the drain could not prove, if it handed over below one.
    pub held: Option<i64>,
}

impl Happening for RepositoryHandedOver<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepositoryHandedOver {
            source: spec,
            to,
            from,
            held,
        } = self;
        match held {
            None => {
                tracing::info!(source = %h.names.shown_source(&spec.to_string()), to = %to, from, "repository handed over to {to}")
            }
            Some(second) => {
                tracing::info!(source = %h.names.shown_source(&spec.to_string()), to = %to, from, held = second, "repository handed over to {to} below a second the drain could not prove: {to} reads it again from this source's trailing window and publishes what was not published")
            }
        }
    }
}

/// An org or user source records a repository a drained `repo:` source hands over: it
/// reads it back from `from` until a poll proved every row there.
pub struct RepositoryTakenOver<'a> {
    pub source: &'a SourceSpec,
    /// `owner/name`, lower case.
    pub repo: &'a str,
    /// Unix seconds.
    pub from: i64,
}

impl Happening for RepositoryTakenOver<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepositoryTakenOver {
            source: spec,
            repo,
            from,
        } = self;
        let repo = &*h.names.shown(repo);
        tracing::info!(source = %h.names.shown_source(&spec.to_string()), repo, from, "taking {repo} over from its drained source: reading it back from where that source's window began");
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
        tracing::info!(source = %h.names.shown_source(&spec.to_string()), %start, position, "no stored cursor; starting at {start}");
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
        tracing::info!(source = %h.names.shown_source(&spec.to_string()), %from, %to, "far behind: catching up day by day");
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
        tracing::error!(
            source = %h.names.shown_source(&spec.to_string()), from = %fmt(from), to = %fmt(to),
            "history lost: the oldest row Gitea has (read from the end of the feed) is newer \
             than the cursor, so the actions between were deleted before they were read (by \
             the delete_old_actions cron, or with their repository or issue); continuing from \
             the oldest row"
        );
    }
}

/// Counts the events of a batch that JetStream stored (not its duplicates) by op type.
fn count_published(m: &Metrics, source: &str, stored_op_types: &[&str]) {
    for op_type in stored_op_types {
        m.events_published
            .get_or_create(&PublishedLabels {
                source: source.to_string(),
                op_type: op_type.to_string(),
            })
            .inc();
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
        tracing::info!(source = %h.names.shown_source(&spec.to_string()), count = stored, duplicates, newest = %newest.to_rfc3339(), "published");
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
        tracing::debug!(
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
        tracing::debug!(source = %h.names.shown_source(&spec.to_string()), read, published, took_ms = took.as_millis() as u64, "poll done");
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
        tracing::warn!(
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
        tracing::info!(
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
        tracing::warn!(
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
        tracing::warn!(source = %h.names.shown_source(&spec.to_string()), reason, retry_in_s = retry_in.as_secs(), "poll failed: {err}");
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
        tracing::error!(source = %h.names.shown_source(&spec.to_string()), retry_in_s = retry_in.as_secs(), "source refused by Gitea (token or name?); it waits, the others go on: {err}");
    }
}

/// Every source is started.
pub struct Ready {
    pub sources: usize,
}

impl Happening for Ready {
    fn emit(self, _: &Metrics, _: &Health) {
        let sources = self.sources;
        tracing::info!(sources, "running");
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            tracing::debug!("sd_notify READY: {e}");
        }
    }
}

/// Shutdown began.
pub struct Stopping;

impl Happening for Stopping {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::info!("shutting down");
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
        tracing::error!(
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
        tracing::info!(
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
        tracing::error!("config reload (SIGHUP) failed, keeping the running config: {err}");
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
        tracing::warn!(
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
        tracing::warn!(
            "config reload (SIGHUP): [{section}] changed; it takes effect only after a restart"
        );
    }
}

/// A repository change whose event cannot be built is skipped.
pub struct RepoEventSkipped<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub reason: &'a str,
}

impl Happening for RepoEventSkipped<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoEventSkipped {
            owner,
            repo,
            kind,
            reason,
        } = self;
        tracing::error!(repo = %h.names.shown_parts(owner, repo), kind, "skipping a change whose event cannot be built: {reason}");
    }
}

/// The webhook-shaped event of an action cannot be built (an object it needs could not be
/// read: a 404 for a deleted issue, a server error): the action's own event is published
/// without it.
pub struct HookSkipped<'a> {
    /// `owner/name`.
    pub repo: &'a str,
    /// The op type (`create_issue`) or repository change (`comment_edited`).
    pub op_type: &'a str,
    pub reason: &'a str,
}

impl Happening for HookSkipped<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let HookSkipped {
            repo,
            op_type,
            reason,
        } = self;
        let repo = &*h.names.shown(repo);
        let reason = &*h.names.scrub(reason);
        m.hooks_skipped
            .get_or_create(&PublishedLabels {
                source: format!("repo:{repo}"),
                op_type: op_type.to_string(),
            })
            .inc();
        tracing::warn!(
            repo,
            op_type,
            "publishing the action without its webhook-shaped event: {reason}"
        );
    }
}

/// A webhook-shaped event goes out with a value left empty (a created ref's commit that is
/// gone again), or one is not made (`pull_request_sync` when the open pull requests could not
/// be listed), because the API could not tell it.
pub struct HookIncomplete<'a> {
    /// `owner/name`.
    pub repo: &'a str,
    pub op_type: &'a str,
    /// The field left empty.
    pub field: &'a str,
    pub reason: &'a str,
}

impl Happening for HookIncomplete<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let HookIncomplete {
            repo,
            op_type,
            field,
            reason,
        } = self;
        let repo = &*h.names.shown(repo);
        let reason = &*h.names.scrub(reason);
        tracing::info!(
            repo,
            op_type,
            field,
            "a webhook-shaped event with an empty field: {reason}"
        );
    }
}

/// A batch of repository-endpoint events was acknowledged; counted under
/// `source="repo:OWNER/NAME"`.
pub struct RepoBatchPublished<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    /// The op type of each stored event (not the duplicates), oldest first.
    pub stored_op_types: &'a [&'a str],
}

impl Happening for RepoBatchPublished<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let RepoBatchPublished {
            owner,
            repo,
            stored_op_types,
        } = self;
        h.progress();
        count_published(
            m,
            &format!("repo:{}", h.names.shown_parts(owner, repo)),
            stored_op_types,
        );
    }
}

/// One kind of one repository published changes in a poll.
pub struct RepoChangesPublished<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub count: usize,
}

impl Happening for RepoChangesPublished<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoChangesPublished {
            owner,
            repo,
            kind,
            count,
        } = self;
        tracing::info!(repo = %h.names.shown_parts(owner, repo), kind, count, "published repository changes");
    }
}

/// One kind of one repository failed (the others go on); `skip_polls` polls skip it now.
pub struct RepoKindFailed<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    /// The failed request's URL (empty when unknown).
    pub url: &'a str,
    /// The HTTP status, when Gitea answered with one.
    pub status: Option<u16>,
    /// The error's short label (`GiteaError::reason`).
    pub reason: &'a str,
    pub error: &'a dyn Display,
    pub failures: u32,
    pub skip_polls: u32,
}

impl Happening for RepoKindFailed<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let RepoKindFailed {
            owner,
            repo,
            kind,
            url,
            status,
            reason,
            error: err,
            failures,
            skip_polls,
        } = self;
        let source = format!("repo:{}", h.names.shown_parts(owner, repo));
        m.poll_errors
            .get_or_create(&SourceReasonLabels {
                source: source.clone(),
                reason: format!("{kind}_{reason}"),
            })
            .inc();
        let status = status.map(|s| s.to_string()).unwrap_or_default();
        let url = &*h.names.scrub(url);
        let err = h.names.scrub(&err.to_string()).into_owned();
        tracing::warn!(
            repo = %h.names.shown_parts(owner, repo),
            kind,
            url,
            status,
            reason,
            failures,
            skip_polls,
            "repository endpoint failed; this kind of this repository waits {skip_polls} polls, the others go on: {err}"
        );
    }
}

/// A kind of a repository that was failing answers again.
pub struct RepoKindRecovered<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub failures: u32,
}

impl Happening for RepoKindRecovered<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoKindRecovered {
            owner,
            repo,
            kind,
            failures,
        } = self;
        tracing::info!(repo = %h.names.shown_parts(owner, repo), kind, failures, "repository endpoint answers again");
    }
}

/// A kind's cursor was written elsewhere meanwhile.
pub struct RepoKindConflict<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub error: &'a dyn Display,
}

impl Happening for RepoKindConflict<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoKindConflict {
            owner,
            repo,
            kind,
            error: err,
        } = self;
        tracing::warn!(repo = %h.names.shown_parts(owner, repo), kind, "cursor written elsewhere meanwhile; read again next poll: {err}");
    }
}

/// An org's repositories cannot be listed; the `kept` known ones are polled.
pub struct RepoListFailed<'a> {
    pub org: &'a str,
    /// The error's short label (`GiteaError::reason`).
    pub reason: &'a str,
    pub error: &'a dyn Display,
    pub kept: usize,
}

impl Happening for RepoListFailed<'_> {
    fn emit(self, m: &Metrics, _: &Health) {
        let RepoListFailed {
            org,
            reason,
            error: err,
            kept,
        } = self;
        m.poll_errors
            .get_or_create(&SourceReasonLabels {
                source: format!("org:{org}"),
                reason: format!("repos_{reason}"),
            })
            .inc();
        tracing::warn!(
            org,
            reason,
            kept,
            "cannot list the org's repositories; polling the {kept} known ones: {err}"
        );
    }
}

/// A list is longer than the pages read.
pub struct ListTruncated<'a> {
    pub what: &'a str,
    pub path: &'a str,
    pub pages: usize,
    pub items: usize,
}

impl Happening for ListTruncated<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let ListTruncated {
            what,
            path,
            pages,
            items,
        } = self;
        tracing::warn!(
            of = what,
            path,
            pages,
            items,
            "list longer than the pages read: reading {pages} pages at most; the rest is not read this poll and the list is taken as incomplete"
        );
    }
}

/// The server has no Actions API (404) for this repository.
pub struct ActionsUnsupported<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
}

impl Happening for ActionsUnsupported<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let ActionsUnsupported { owner, repo } = self;
        tracing::info!(repo = %h.names.shown_parts(owner, repo), "this Gitea has no Actions API (404); the actions kind is skipped for this repository");
    }
}

/// The server answers on its Actions API now.
pub struct ActionsSupported<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
}

impl Happening for ActionsSupported<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let ActionsSupported { owner, repo } = self;
        tracing::info!(repo = %h.names.shown_parts(owner, repo), "this Gitea answers on its Actions API now; the actions kind polls it for this repository");
    }
}

/// Changes read before the source's start are not published.
pub struct RepoChangesBeforeStart<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub n: usize,
}

impl Happening for RepoChangesBeforeStart<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoChangesBeforeStart {
            owner,
            repo,
            kind,
            n,
        } = self;
        tracing::debug!(repo = %h.names.shown_parts(owner, repo), kind, n, "changes before the source's start not published");
    }
}

/// A source waits for NATS before polling Gitea.
pub struct NatsWaiting<'a> {
    pub source: &'a SourceSpec,
}

impl Happening for NatsWaiting<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let spec = self.source;
        tracing::debug!(source = %h.names.shown_source(&spec.to_string()), "NATS is not connected; not polling Gitea until it is");
    }
}

/// NATS is connected, or not.
pub struct NatsConnected {
    pub connected: bool,
}

impl Happening for NatsConnected {
    fn emit(self, m: &Metrics, h: &Health) {
        let connected = self.connected;
        m.nats_connected.set(connected as i64);
        h.set_nats_ok(connected);
    }
}

/// An event of the NATS connection (connected, disconnected, anything else).
pub struct NatsEvent<'a> {
    pub event: &'a async_nats::Event,
}

impl Happening for NatsEvent<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        match self.event {
            async_nats::Event::Connected => {
                NatsConnected { connected: true }.emit(m, h);
                tracing::info!("NATS connected")
            }
            async_nats::Event::Disconnected => {
                NatsConnected { connected: false }.emit(m, h);
                tracing::warn!("NATS disconnected; reconnecting")
            }
            other => tracing::info!("NATS: {other}"),
        }
    }
}

fn receiver_label(receiver: &str) -> ReceiverLabel {
    ReceiverLabel {
        receiver: receiver.to_string(),
    }
}

fn relay_class(m: &Metrics, receiver: &str, status: Option<u16>) {
    let class = match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(_) => "5xx",
        None => "error",
    };
    m.relay_deliveries
        .get_or_create(&ReceiverClassLabels {
            receiver: receiver.to_string(),
            class: class.into(),
        })
        .inc();
}

/// Relay: every receiver's loop is started.
pub struct RelayReady {
    pub receivers: usize,
}

impl Happening for RelayReady {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::info!(receivers = self.receivers, "relay running");
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            tracing::debug!("sd_notify READY: {e}");
        }
    }
}

/// Relay, at start: which repositories' events a receiver gets.
pub struct RelayReceiverGets<'a> {
    pub receiver: &'a str,
    /// Opted in to private repositories' events (`private = true`).
    pub private: bool,
    pub stream: &'a str,
    pub private_stream: &'a str,
}

impl Happening for RelayReceiverGets<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        match self.private {
            true => tracing::info!(
                receiver = self.receiver,
                streams = format!("{} {}", self.stream, self.private_stream),
                "receiver gets public and private repositories' events (private = true)"
            ),
            false => tracing::info!(
                receiver = self.receiver,
                streams = self.stream,
                "receiver gets public repositories' events only (private repositories' need private = true)"
            ),
        }
    }
}

/// Relay: a receiver's delivery loop has its consumer in one stream and waits for events.
pub struct RelayReceiverStarted<'a> {
    pub receiver: &'a str,
    /// Scheme, host and port only: the URL may carry a token.
    pub url: &'a str,
    pub consumer: &'a str,
    pub stream: &'a str,
    /// `public` or `private`: whose events the stream holds.
    pub visibility: &'a str,
}

impl Happening for RelayReceiverStarted<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        h.progress();
        // Every relay family shows this receiver at zero from the start of its loop.
        m.init_receiver(self.receiver);
        tracing::info!(
            receiver = self.receiver,
            url = self.url,
            consumer = self.consumer,
            stream = self.stream,
            visibility = self.visibility,
            "relaying hook events to receiver"
        );
    }
}

/// Relay: a receiver answered 2xx; the event is acknowledged.
pub struct RelayDelivered<'a> {
    pub receiver: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub repo: &'a str,
    pub status: u16,
    pub attempts: u32,
    /// From the first attempt to the answer.
    pub took: Duration,
}

impl Happening for RelayDelivered<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        h.progress();
        relay_class(m, self.receiver, Some(self.status));
        m.relay_delivery_duration
            .get_or_create(&receiver_label(self.receiver))
            .observe(self.took.as_secs_f64());
        tracing::info!(
            receiver = self.receiver,
            event_id = self.event_id,
            status = self.status,
            attempts = self.attempts,
            took_ms = self.took.as_millis() as u64,
            "delivered {} {}",
            self.event_type,
            h.names.shown(self.repo)
        );
    }
}

/// Relay: an attempt failed and is tried again after `wait`.
pub struct RelayRetry<'a> {
    pub receiver: &'a str,
    pub event_id: &'a str,
    pub status: Option<u16>,
    /// `HTTP 503` or the error (without the URL).
    pub error: &'a str,
    pub attempt: u32,
    pub wait: Duration,
}

impl Happening for RelayRetry<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        h.progress();
        relay_class(m, self.receiver, self.status);
        m.relay_retries
            .get_or_create(&receiver_label(self.receiver))
            .inc();
        tracing::warn!(
            receiver = self.receiver,
            event_id = self.event_id,
            attempt = self.attempt,
            wait_ms = self.wait.as_millis() as u64,
            "delivery failed, retrying: {}",
            self.error
        );
    }
}

/// Relay: an event became a dead letter (refused, or retried to the end).
pub struct RelayDeadLettered<'a> {
    pub receiver: &'a str,
    pub event_id: &'a str,
    pub status: Option<u16>,
    pub reason: &'a str,
}

impl Happening for RelayDeadLettered<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        h.progress();
        relay_class(m, self.receiver, self.status);
        m.relay_dead_letters
            .get_or_create(&receiver_label(self.receiver))
            .inc();
        tracing::error!(
            receiver = self.receiver,
            event_id = self.event_id,
            "dead letter: {}",
            self.reason
        );
    }
}

/// Relay: how far behind a receiver is (events not yet delivered, the oldest one's age).
pub struct RelayBacklog<'a> {
    pub receiver: &'a str,
    pub pending: u64,
    pub oldest_age: f64,
}

impl Happening for RelayBacklog<'_> {
    fn emit(self, m: &Metrics, _: &Health) {
        let l = receiver_label(self.receiver);
        m.relay_backlog.get_or_create(&l).set(self.pending as i64);
        m.relay_oldest_undelivered
            .get_or_create(&l)
            .set(self.oldest_age);
    }
}

/// Relay: JetStream handed an event out again; `stale` when this loop had acknowledged it
/// already (it is acknowledged again, not delivered again).
pub struct RelayRedelivered<'a> {
    pub receiver: &'a str,
    pub sequence: u64,
    pub delivered: i64,
    pub stale: bool,
}

impl Happening for RelayRedelivered<'_> {
    fn emit(self, m: &Metrics, _: &Health) {
        m.relay_redeliveries
            .get_or_create(&receiver_label(self.receiver))
            .inc();
        tracing::info!(
            receiver = self.receiver,
            sequence = self.sequence,
            delivered = self.delivered,
            "event handed out again{}",
            if self.stale {
                " (already delivered here: acknowledged, not sent again)"
            } else {
                ""
            }
        );
    }
}

/// Relay: a stored message on a hook subject is not a hook event; it is not delivered.
pub struct RelaySkipped<'a> {
    pub receiver: &'a str,
    pub subject: &'a str,
    pub why: &'a str,
}

impl Happening for RelaySkipped<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(
            receiver = self.receiver,
            subject = self.subject,
            "not delivered: {}",
            self.why
        );
    }
}

/// Relay: a receiver's consumer failed (NATS away, stream missing); tried again after `wait`.
pub struct RelayConsumerFailed<'a> {
    pub receiver: &'a str,
    pub error: &'a dyn Display,
    pub wait: Duration,
}

impl Happening for RelayConsumerFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(
            receiver = self.receiver,
            wait_ms = self.wait.as_millis() as u64,
            "relay consumer failed, starting it again: {}",
            self.error
        );
    }
}

/// `[ha]`: this instance took a source's lease and starts polling it.
pub struct LeaseAcquired<'a> {
    pub source: &'a SourceSpec,
    pub instance: &'a str,
    /// The previous holder, when the lease expired under it.
    pub after: Option<&'a str>,
}

impl Happening for LeaseAcquired<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        m.leases_acquired.inc();
        m.leases_held.inc();
        match self.after {
            Some(after) => {
                tracing::info!(source = %h.names.shown_source(&self.source.to_string()), instance = self.instance, after, "lease acquired; polling here now (the lease of {after} had expired)")
            }
            None => {
                tracing::info!(source = %h.names.shown_source(&self.source.to_string()), instance = self.instance, "lease acquired; polling here now")
            }
        }
    }
}

/// `[ha]`: this instance gave a source's lease up at a safe point (its cursor written).
pub struct LeaseReleased<'a> {
    pub source: &'a SourceSpec,
    /// Why: `rebalance` (another instance is its place now) or `shutdown`.
    pub why: &'static str,
}

impl Happening for LeaseReleased<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        m.leases_released.inc();
        m.leases_held.dec();
        tracing::info!(source = %h.names.shown_source(&self.source.to_string()), why = self.why, "lease released ({})", self.why);
    }
}

/// `[ha]`: this instance lost a source's lease and stopped polling it at once.
pub struct LeaseLost<'a> {
    pub source: &'a SourceSpec,
    pub reason: &'a dyn Display,
}

impl Happening for LeaseLost<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        m.leases_lost.inc();
        m.leases_held.dec();
        tracing::warn!(source = %h.names.shown_source(&self.source.to_string()), "lease lost ({}); stopped polling it here", self.reason);
    }
}

/// `[ha]`: the lease bucket could not be read or written this round (tried again).
pub struct LeaseBucketFailed<'a> {
    pub error: &'a dyn Display,
}

impl Happening for LeaseBucketFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!("lease bucket: {}; trying again", self.error);
    }
}

/// `repos_sweep`: the search for an org's changed issues failed (its quiet repositories
/// wait for their turn in the sweep; the next search asks from the same time).
pub struct IssueSearchFailed<'a> {
    pub org: &'a str,
    pub reason: &'static str,
    pub error: &'a dyn Display,
}

impl Happening for IssueSearchFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(
            org = self.org,
            reason = self.reason,
            "cannot search the changed issues of {} ({}); its quiet repositories wait for their turn",
            self.org,
            self.error
        );
    }
}

/// `refs`: the search for an org's repositories changed since the last poll failed (each
/// repository's `updated_at` is then read on its own this poll).
pub struct RepoSearchFailed<'a> {
    pub org: &'a str,
    pub reason: &'static str,
    pub error: &'a dyn Display,
}

impl Happening for RepoSearchFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(
            org = self.org,
            reason = self.reason,
            "cannot list the repositories of {} by update time ({}); each is asked on its own this poll",
            self.org,
            self.error
        );
    }
}

/// `all = true`: the sources the token sees changed.
pub struct SourcesDiscovered<'a> {
    pub added: &'a [SourceSpec],
    pub gone: &'a [SourceSpec],
}

impl Happening for SourcesDiscovered<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let names = |l: &[SourceSpec]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        if !self.added.is_empty() {
            tracing::info!(sources = ?names(self.added), "{} source(s) found (all = true); starting them", self.added.len());
        }
        if !self.gone.is_empty() {
            tracing::warn!(sources = ?names(self.gone), "{} source(s) no longer visible to the token (deleted, or access revoked); stopping them, their cursors are kept", self.gone.len());
        }
    }
}

/// `all = true`: listing what the token sees failed (tried again; the sources found before
/// go on).
pub struct DiscoveryFailed<'a> {
    pub error: &'a dyn Display,
    pub retry_in: Duration,
}

impl Happening for DiscoveryFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(
            "cannot list the orgs and repositories the token sees ({}); the sources found before go on; trying again in {:?}",
            self.error,
            self.retry_in
        );
    }
}

/// `[ha]`: live instances run with another source list than this one.
pub struct SourcesDiffer<'a> {
    pub instances: &'a [String],
}

impl Happening for SourcesDiffer<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(instances = ?self.instances, "these instances run with another source list than this one: a source only some know may go unpolled; give every instance the same [[source]] tables (and reload them all)");
    }
}

/// `[ha]`: the instances alive on the lease bucket changed.
pub struct InstancesChanged<'a> {
    pub instances: &'a [String],
}

impl Happening for InstancesChanged<'_> {
    fn emit(self, m: &Metrics, _: &Health) {
        m.ha_instances.set(self.instances.len() as i64);
        tracing::info!(instances = ?self.instances, "{} instance(s) share the sources", self.instances.len());
    }
}

/// `[control]`: the micro service answers on NATS.
pub struct ControlStarted<'a> {
    pub service: &'a str,
    pub subject: &'a str,
}

impl Happening for ControlStarted<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::info!(
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
        tracing::info!(
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
        tracing::info!(source = %h.names.shown_source(&self.source.to_string()), "source resumed: polling again");
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
        tracing::warn!(
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
        tracing::error!(
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
        tracing::info!(
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
    /// Source-days it could not complete (each logged as [`BackfillDayIncomplete`]).
    pub incomplete: usize,
}

impl Happening for ControlBackfillDone<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        if self.incomplete > 0 {
            tracing::warn!(
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
        tracing::info!(
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
        tracing::error!(
            sources = self.sources,
            "control: backfill failed: {}",
            self.error
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn happenings_move_only_the_handle_they_are_emitted_into() {
        let moved = Telemetry::new();
        let other = Telemetry::new();
        let clone = moved.clone();
        // The product's families only: the process_* ones are the one process's.
        let product = |t: &Telemetry| {
            t.metrics
                .encode()
                .lines()
                .filter(|l| !l.contains("process_"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let before = product(&other);
        clone.emit(RateLimitWait);
        clone.emit(NatsConnected { connected: true });
        assert!(
            moved
                .metrics
                .encode()
                .contains("gitea_nats_sourcer_rate_limit_waits_total 1")
        );
        assert!(
            moved
                .metrics
                .encode()
                .contains("gitea_nats_sourcer_nats_connected 1")
        );
        assert!(!moved.health.problems().iter().any(|p| p.contains("NATS")));
        assert_eq!(product(&other), before);
        assert!(other.health.problems().iter().any(|p| p.contains("NATS")));
    }
}
