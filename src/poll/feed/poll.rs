//! One poll of one source: read the feed above the cursor's cutoff (or catch up day by day
//! when far behind), publish what is new oldest first, wait for every ack, move the cursor.
//! The design is in `store::cursor`.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};

use super::walk::{self, Depth, LiveWalk, Walked};
use crate::config::{Source, StartAt};
use crate::event::{self, Event};
use crate::gitea::day::midnight;
use crate::gitea::{ActivityRow, GiteaError};
use crate::nats::publish::BatchOutcome;
use crate::poll::pipeline::{
    Context, Pending, PollError, Target, feed_candidates, hooks, stored_op_types,
};
use crate::shutdown::Shutdown;
use crate::source::SourceSpec;
use crate::store::cursor::{Cursor, FLOOR_RULE, Gap, LeftTo, MAX_OFFSET, SeenSet, Span, TakenOver};
use crate::store::{StoreError, Stored};
use crate::telemetry::{self, Telemetry};

/// What one poll did.
#[derive(Debug, Default, Clone, Copy)]
pub struct PollReport {
    /// Rows read from Gitea.
    pub read: usize,
    /// Events stored by JetStream.
    pub published: usize,
    /// Events JetStream already had (same id).
    pub duplicates: usize,
    /// Days walked by a catch-up.
    pub days: usize,
    /// Shutdown interrupted the poll (between safe points).
    pub stopped: bool,
    /// The walk reached the head of the feed with every row proven held.
    pub caught_up: bool,
    /// A second the walk could not prove whole: the cursor waits below it.
    pub held: Option<i64>,
}

/// Polls one source's feed; keeps its cursor between polls. One task owns it and polls it
/// through `&mut self`: its state is plain fields.
pub struct FeedPoller {
    /// What every poll shares (client, store, publisher, settings).
    ctx: Arc<Context>,
    /// The source polled.
    source: Source,
    /// The cursor as last read or written (meaningful while `loaded`).
    stored: Stored,
    /// Whether `stored` holds the source's cursor: not before the first poll, nor after a
    /// conflict or a failed take-over record (it is read again at the next poll).
    loaded: bool,
    /// What the poll under way (or the last one) did.
    report: PollReport,
    /// When this source was configured in this process (start or reload).
    configured_at: chrono::DateTime<chrono::Utc>,
    /// The position of the cursor as last read or written (`i64::MIN`: not yet): where an
    /// org or user source last published a repository it now leaves to a `repo:` source.
    committed_position: i64,
    /// Repositories (`owner/name`, lowercase) with a row in the trailing window, gathered
    /// since [`Self::take_active`] was last called.
    active: HashSet<String>,
    /// The second this source could not prove whole, while it waits below it.
    held: Option<HeldBack>,
    /// The held second whose full window was told (`i64::MIN`: none), so it is said once.
    window_full: i64,
}

/// A second of the feed that walks could not prove whole (why, as the reads tell:
/// `walk::Why`, a steady feed's tie that no alignment served whole, a feed that changed
/// while it was read, or a page that came back empty too early): the cursor waits
/// below it. The operator is told once per second; the source then walks with one pass a
/// poll (its trailing window's pages) and tries hard again after a wait that doubles, so
/// an unprovable second never costs the whole request budget.
#[derive(Debug, Clone, Copy)]
struct HeldBack {
    second: i64,
    since: std::time::Instant,
    tries: u32,
    next_try: std::time::Instant,
}

/// The first wait before a held-back second is tried hard again; it doubles per try (a
/// second held by a feed that changed while it was read is often provable a moment later).
const HELD_RETRY: std::time::Duration = std::time::Duration::from_secs(2);
/// The longest wait between two hard tries of a held-back second.
const HELD_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Races a Gitea read against shutdown: `None` when shutdown won. Reads only, so
/// abandoning one loses nothing.
async fn read<T>(
    shutdown: &Shutdown,
    f: impl Future<Output = Result<T, GiteaError>>,
) -> Result<Option<T>, PollError> {
    tokio::select! {
        biased;
        _ = shutdown.wait() => Ok(None),
        r = f => Ok(Some(r?)),
    }
}

impl FeedPoller {
    pub fn new(ctx: Arc<Context>, source: Source) -> Self {
        FeedPoller {
            ctx,
            source,
            stored: Stored {
                cursor: Cursor::new(0, 0),
                revision: 0,
            },
            loaded: false,
            report: PollReport::default(),
            configured_at: chrono::Utc::now(),
            committed_position: i64::MIN,
            active: HashSet::new(),
            held: None,
            window_full: i64::MIN,
        }
    }

    /// Whether this poll's walks try hard to prove every second: no second is held back,
    /// or its wait is over.
    fn patient(&self) -> bool {
        self.held
            .is_none_or(|h| std::time::Instant::now() >= h.next_try)
    }

    /// Notes how a walk ended: a second it could not prove is held back (told once per
    /// second, tried hard again after a doubling wait) and recorded in the cursor as
    /// pinned (written with it); `None` (every second proven up to the head) releases a
    /// held second.
    fn note_unproven(&mut self, unproven: Option<i64>, why: walk::Why) {
        self.stored.cursor.pin(unproven, chrono::Utc::now());
        let now = std::time::Instant::now();
        let held = &mut self.held;
        match (unproven, *held) {
            (None, None) => {}
            (None, Some(h)) => {
                self.ctx.telemetry.emit(telemetry::SecondProven {
                    source: &self.source.spec,
                    second: h.second,
                    waited: now.duration_since(h.since),
                });
                *held = None;
            }
            (Some(t), Some(h)) if h.second == t => {
                if now >= h.next_try {
                    // A hard try that failed: wait longer before the next.
                    let tries = h.tries.saturating_add(1);
                    let wait = HELD_RETRY
                        .saturating_mul(1u32 << tries.min(10))
                        .min(HELD_RETRY_MAX);
                    *held = Some(HeldBack {
                        tries,
                        next_try: now + wait,
                        ..h
                    });
                }
            }
            (Some(t), _) => {
                self.ctx.telemetry.emit(telemetry::SecondHeldBack {
                    source: &self.source.spec,
                    second: t,
                    retry_in: HELD_RETRY,
                    why: why.describe(),
                });
                *held = Some(HeldBack {
                    second: t,
                    since: now,
                    tries: 0,
                    next_try: now + HELD_RETRY,
                });
            }
        }
    }

    pub fn spec(&self) -> &SourceSpec {
        &self.source.spec
    }

    /// The repositories that had a row in the trailing window (or newer) in the polls since
    /// the last call: where the feed shows activity.
    pub fn take_active(&mut self) -> HashSet<String> {
        std::mem::take(&mut self.active)
    }

    /// The cursor as last written or read.
    pub fn cursor(&self) -> Option<&Cursor> {
        self.loaded.then_some(&self.stored.cursor)
    }

    /// One poll of the feed. On error the cursor stays where the last acknowledged batch
    /// left it.
    pub async fn poll(&mut self, shutdown: &Shutdown) -> Result<PollReport, PollError> {
        self.report = PollReport::default();
        if !self.loaded {
            self.stored = match self.ctx.store.load(&self.source.spec).await? {
                // A cursor handed over to another source is that source's history now.
                Some(s) if s.cursor.handed_to.is_none() => {
                    self.committed_position = s.cursor.position;
                    s
                }
                _ => match self.initial(shutdown).await? {
                    Some(s) => s,
                    None => {
                        self.report.stopped = true;
                        return Ok(self.report);
                    }
                },
            };
            self.loaded = true;
        }
        if let Err(e) = self.record_takeovers(shutdown).await {
            // The cursor is read again at the next poll.
            self.loaded = false;
            return Err(e);
        }
        let result = self.poll_with(shutdown).await;
        // Keep the cursor for the next poll unless someone else wrote it: then re-read.
        if matches!(result, Err(PollError::State(StoreError::Conflict { .. }))) {
            self.loaded = false;
        } else {
            let pinned = self.stored.cursor.pinned.as_ref();
            self.ctx.telemetry.emit(telemetry::CursorPosition {
                source: &self.source.spec,
                position: self.stored.cursor.position,
                pinned: pinned.map(|p| (p.second, p.since)),
            });
        }
        result?;
        Ok(self.report)
    }

    /// Records the repositories drained `repo:` sources hand over to this source (see
    /// [`Cursor::taken_over`]) and tells each drain they are recorded. Unrecorded (the write
    /// failed) they wait for the next poll.
    async fn record_takeovers(&mut self, shutdown: &Shutdown) -> Result<(), PollError> {
        let offers = self.ctx.takeovers.take(&self.source.spec);
        if offers.is_empty() {
            return Ok(());
        }
        let cursor = &mut self.stored.cursor;
        for o in &offers {
            cursor.taken_over.retain(|t| t.repo != o.taken.repo);
            cursor.taken_over.push(o.taken.clone());
        }
        if let Err(e) = self.commit(shutdown).await {
            // The cursor is read again at the next poll (this one's is dropped).
            self.ctx.takeovers.put_back(&self.source.spec, offers);
            return Err(e);
        }
        for o in offers {
            self.ctx.telemetry.emit(telemetry::RepositoryTakenOver {
                source: &self.source.spec,
                repo: &o.taken.repo,
                from: o.taken.from,
            });
            let _ = o.recorded.send(());
        }
        Ok(())
    }

    /// The oldest `created` a poll reads: the cursor's cutoff, or further back where a
    /// taken-over repository is read from.
    fn read_from(&self, cursor: &Cursor) -> i64 {
        let cutoff = cursor.cutoff(self.ctx.lookback);
        cursor
            .taken_over
            .iter()
            .map(|t| t.from)
            .fold(cutoff, i64::min)
    }

    /// The unproven second that holds this cursor's position back. With a taken-over
    /// repository read back further than the cutoff: one at or above the cutoff; one below
    /// it keeps that repository's read-back there ([`Cursor::settle_taken`]), not the
    /// position, and does not stop a catch-up.
    fn own_unproven(&self, cursor: &Cursor, unproven: Option<i64>) -> Option<i64> {
        if cursor.taken_over.is_empty() {
            return unproven;
        }
        let cutoff = cursor.cutoff(self.ctx.lookback);
        unproven.filter(|&u| u >= cutoff)
    }

    /// The taken-over repositories this source publishes now (not those still drained):
    /// asked before a walk, so that only what that walk was to publish is settled after it.
    fn taken_published(&self, cursor: &Cursor) -> Vec<String> {
        if cursor.taken_over.is_empty() {
            return Vec::new();
        }
        let owners = self.ctx.owners.read().unwrap_or_else(|e| e.into_inner());
        cursor
            .taken_over
            .iter()
            .filter(|t| owners.publishes_repo(&self.source.spec, &t.repo))
            .map(|t| t.repo.clone())
            .collect()
    }

    /// After a walk that read the taken-over repositories in `published` back to where they
    /// are read from: see [`Cursor::settle_taken`].
    fn settle_taken(&mut self, published: &[String], unproven: Option<i64>) {
        if published.is_empty() {
            return;
        }
        let cursor = &mut self.stored.cursor;
        let cutoff = cursor.cutoff(self.ctx.lookback);
        cursor.settle_taken(unproven, cutoff, |repo| published.iter().any(|r| r == repo));
    }

    async fn poll_with(&mut self, shutdown: &Shutdown) -> Result<(), PollError> {
        let ctx = self.ctx.clone();
        let published = self.taken_published(&self.stored.cursor);
        let read_from = self.read_from(&self.stored.cursor);
        let depth = Depth {
            cutoff: read_from,
            max_pages: ctx.live_pages,
            // A taken-over repository read back further than the window: live only if that
            // far is within `live_pages`, else day by day (one day in memory at a time).
            settled: Some(self.stored.cursor.position.min(read_from)),
            read_ahead: false,
            patient: self.patient(),
        };
        let walked = read(
            shutdown,
            walk::walk_back(&ctx.client, &self.source.spec, depth),
        )
        .await?;
        match walked {
            None => self.report.stopped = true,
            Some(LiveWalk::Done {
                rows,
                exhausted,
                unproven,
                why,
            }) => {
                self.report.read += rows.len();
                // A walk that reached the end of the feed above the cursor suggests history
                // Gitea no longer has; only Gitea's oldest row tells (the walk may have
                // ended early: an empty page, rows deleted under it).
                if exhausted
                    && rows
                        .iter()
                        .map(ActivityRow::created_unix)
                        .min()
                        .is_some_and(|oldest| Self::gap_possible(&self.stored.cursor, oldest))
                {
                    let oldest =
                        read(shutdown, walk::oldest_row(&ctx.client, &self.source.spec)).await?;
                    match oldest {
                        None => {
                            self.report.stopped = true;
                            return Ok(());
                        }
                        Some(Some(oldest)) => Self::check_gap(
                            &ctx.telemetry,
                            &self.source.spec,
                            &mut self.stored.cursor,
                            oldest.created_unix(),
                        ),
                        Some(None) => {}
                    }
                }
                let newest = rows.iter().map(ActivityRow::created_unix).max();
                let moved = |c: &Cursor| {
                    (
                        c.position,
                        c.seen.len(),
                        c.gap.clone(),
                        c.pinned.clone(),
                        c.taken_over.len(),
                    )
                };
                let before = moved(&self.stored.cursor);
                let cap = self.own_unproven(&self.stored.cursor, unproven);
                self.process(rows, cap, shutdown).await?;
                let stopped = self.report.stopped;
                let to = newest
                    .filter(|_| !stopped)
                    .map(|newest| cap.map_or(newest, |u| newest.min(u)));
                self.report.caught_up = !stopped && unproven.is_none();
                if !stopped {
                    self.report.held = unproven;
                }
                let then = |p: &mut Self| {
                    if !stopped {
                        p.note_unproven(unproven, why);
                        p.settle_taken(&published, unproven);
                    }
                };
                self.settle(to, then, |c| moved(c) != before, shutdown)
                    .await?;
            }
            Some(LiveWalk::TooDeep { newest }) => {
                self.catch_up(newest, &published, shutdown).await?
            }
        }
        Ok(())
    }

    /// Moves the cursor up to `to` (`None`: it stays), lets `then` record what else the
    /// poll learnt (it sees the moved cursor), and writes the cursor when `write` says so.
    /// The one place the cursor moves: after an acknowledged batch, and after a walk or a
    /// catch-up's day.
    async fn settle(
        &mut self,
        to: Option<i64>,
        then: impl FnOnce(&mut Self),
        write: impl FnOnce(&Cursor) -> bool,
        stop: &Shutdown,
    ) -> Result<(), PollError> {
        if let Some(to) = to {
            self.stored.cursor.advance(to, self.ctx.lookback);
        }
        then(self);
        if write(&self.stored.cursor) {
            self.commit(stop).await?;
        }
        Ok(())
    }

    /// The revision of a stored cursor that is being replaced (one handed over), else 0.
    async fn stored_revision(&self) -> Result<u64, PollError> {
        Ok(self
            .ctx
            .store
            .load(&self.source.spec)
            .await?
            .map_or(0, |s| s.revision))
    }

    /// The last step of a removed `repo:` source whose repository another source covers
    /// (it was polled to the head first, or until a second it cannot prove, see
    /// `scheduler::drain`): offers the repository to `to`, which records that it reads it
    /// back from this cursor's cutoff (what a next poll of this source would read again:
    /// a held second, late rows) and which identities were published there; then marks
    /// this cursor handed over, so a `repo:` source added again takes over from `to`.
    /// `Ok(false)`: stopped before `to` recorded it (nothing was marked).
    pub async fn hand_over(
        &mut self,
        to: &SourceSpec,
        held: Option<i64>,
        stop: &Shutdown,
    ) -> Result<bool, PollError> {
        let Some(mut stored) = self.ctx.store.load(&self.source.spec).await? else {
            return Ok(true);
        };
        let SourceSpec::Repo { owner, name } = &self.source.spec else {
            return Ok(true);
        };
        let from = stored.cursor.cutoff(self.ctx.lookback);
        let taken = TakenOver {
            repo: format!("{owner}/{name}").to_lowercase(),
            from,
            seen: stored.cursor.seen.clone(),
            published_before: stored.cursor.published_before.clone(),
        };
        let stop_wait = stop.clone();
        loop {
            let recorded = self.ctx.takeovers.offer(to, taken.clone());
            tokio::select! {
                r = recorded => if r.is_ok() {
                    break;
                },
                // Dropped unrecorded (the taker's poll was cut short): offered again.
                _ = stop_wait.wait() => return Ok(false),
            }
        }
        stored.cursor.handed_to = Some(to.to_string());
        write_cursor(
            &self.ctx,
            &self.source.spec,
            &mut self.committed_position,
            &mut stored,
            stop,
        )
        .await?;
        self.ctx.telemetry.emit(telemetry::RepositoryHandedOver {
            source: &self.source.spec,
            to,
            from,
            held,
        });
        Ok(true)
    }

    /// A new `repo:` source takes its repository over from the org (or user) source that
    /// published it until now: it starts where that source's cursor is, so that it neither
    /// publishes again what that source published (the window's identities are in the
    /// cross-feed index) nor skips what it had not reached yet. When its own `start` asks
    /// for older history than that source published, it starts there instead and leaves
    /// out only what that source published ([`Self::history_before`]).
    async fn handover(&mut self, stop: &Shutdown) -> Result<Option<Stored>, PollError> {
        let SourceSpec::Repo { owner, name } = &self.source.spec else {
            return Ok(None);
        };
        let from = {
            let owners = self.ctx.owners.read().unwrap_or_else(|e| e.into_inner());
            owners.fallback_for(owner, owners.users())
        };
        let Some(from) = from else { return Ok(None) };
        let Some(prev) = self.ctx.store.load(&from).await? else {
            return Ok(None);
        };
        // Only a cursor older than this source's configuration published the repository:
        // on a fresh install both start together and the other source never owned it.
        if prev
            .cursor
            .created_at
            .is_some_and(|c| c >= self.configured_at)
        {
            return Ok(None);
        }
        // That source left this repository to this one at some position, and skipped it
        // since: take it over from there.
        let repo = format!("{owner}/{name}").to_lowercase();
        let from_position = prev
            .cursor
            .left_to
            .iter()
            .find(|l| l.repo == repo)
            .map_or(prev.cursor.position, |l| l.from);
        let cursor = match self.history_before(&prev.cursor, from_position) {
            Some(cursor) => {
                self.ctx.telemetry.emit(telemetry::HistoryBeforeHandover {
                    from: &from,
                    to: &self.source.spec,
                    start: &self.source.start,
                    left_out: cursor.published_before.as_ref().map(|s| (s.from, s.to)),
                });
                cursor
            }
            None => {
                let mut cursor = Cursor::new(from_position, prev.cursor.floor);
                cursor.floor_day = prev.cursor.floor_day;
                cursor.floor_rule = prev.cursor.floor_rule;
                self.ctx.telemetry.emit(telemetry::CursorHandedOver {
                    from: &from,
                    to: &self.source.spec,
                    position: cursor.position,
                });
                cursor
            }
        };
        let mut stored = Stored {
            cursor,
            revision: self.stored_revision().await?,
        };
        write_cursor(
            &self.ctx,
            &self.source.spec,
            &mut self.committed_position,
            &mut stored,
            stop,
        )
        .await?;
        Ok(Some(stored))
    }

    /// A `repo:` source taking its repository over from `prev` (an org or user cursor that
    /// published it up to `left_at`) whose own `start` asks for older history than `prev`
    /// published: a cursor at its own start that leaves out the span `prev` published (up
    /// to where a take-over at `left_at` reads again, `left_at - lookback`; above that the
    /// cross-feed index tells what `prev` published, as for any take-over). `None`: `start`
    /// asks for nothing older; the take-over starts at `left_at`.
    fn history_before(&self, prev: &Cursor, left_at: i64) -> Option<Cursor> {
        // Where what `prev` published begins. A cursor that began `now` (a floor without a
        // day) before `FLOOR_RULE` took the rows of its first window (up to its first
        // position, its floor plus the lookback) for published without publishing them; one
        // written since publishes every row from its floor on.
        let (from, from_day) = match (prev.floor, prev.floor_day) {
            (floor, Some(day)) => (floor, Some(day)),
            (0, None) => (0, None),
            (floor, None) if prev.floor_rule >= FLOOR_RULE => (floor, None),
            (floor, None) => (floor + self.ctx.lookback + 1, None),
        };
        let mut cursor = match self.source.start {
            StartAt::Now => return None,
            StartAt::Beginning if from <= 0 => return None,
            StartAt::Beginning => Cursor::new(0, 0),
            StartAt::Date(day) => {
                let floor = midnight(day, MAX_OFFSET);
                let older = match from_day {
                    Some(d) => day < d,
                    None => floor < from,
                };
                if !older {
                    return None;
                }
                let mut c = Cursor::new(floor - 1, floor);
                c.floor_day = Some(day);
                c
            }
        };
        let to = left_at - self.ctx.lookback;
        if to > from {
            cursor.published_before = Some(Span { from, from_day, to });
        }
        Some(cursor)
    }

    /// Creates the cursor of a source that has none, as `start` says (or from the source
    /// that published its repository until now: [`Self::handover`]).
    async fn initial(&mut self, shutdown: &Shutdown) -> Result<Option<Stored>, PollError> {
        if let Some(stored) = self.handover(shutdown).await? {
            return Ok(Some(stored));
        }
        let ctx = self.ctx.clone();
        let spec = &self.source.spec;
        let Some(first) = read(shutdown, ctx.client.feed_page(spec, 1, None)).await? else {
            return Ok(None);
        };
        let newest = first.rows.iter().map(|r| r.activity.created).max();
        let cursor = match (self.source.start, newest) {
            (StartAt::Beginning, _) | (_, None) => Cursor::new(0, 0),
            (StartAt::Now, Some(newest)) => {
                // The cursor owns the rows after the newest one at install; that row, its
                // second's ties (also those that turn visible later) and everything older
                // are `backfill`'s, so that each row has exactly one publisher. The window's
                // identities are known all the same (nothing below the floor is published).
                let t = newest.timestamp();
                let mut c = Cursor::new(t, t + 1);
                let rows = match read(
                    shutdown,
                    walk::walk_back_to(&ctx.client, spec, t - ctx.lookback, ctx.live_pages),
                )
                .await?
                {
                    Some(LiveWalk::Done { rows, .. }) => rows,
                    Some(LiveWalk::TooDeep { .. }) => first.rows,
                    None => return Ok(None),
                };
                for r in rows.iter().filter(|r| r.created_unix() >= t - ctx.lookback) {
                    c.seen
                        .insert(&event::identity_key(&r.activity), r.created_unix());
                }
                c
            }
            (StartAt::Date(day), Some(_)) => {
                // The earliest instant the local day can begin at (any offset); the exact
                // rule is the row's own local date (`floor_day`).
                let floor = midnight(day, MAX_OFFSET);
                let mut c = Cursor::new(floor - 1, floor);
                c.floor_day = Some(day);
                c
            }
        };
        self.ctx.telemetry.emit(telemetry::CursorCreated {
            source: spec,
            start: &self.source.start,
            position: cursor.position,
        });
        let mut stored = Stored {
            cursor,
            revision: self.stored_revision().await?,
        };
        write_cursor(
            &ctx,
            spec,
            &mut self.committed_position,
            &mut stored,
            shutdown,
        )
        .await?;
        Ok(Some(stored))
    }

    /// Far behind: walk history one day at a time, oldest first. A day that cannot be proven
    /// whole stops the catch-up there (the cursor stays below it; the next poll retries).
    async fn catch_up(
        &mut self,
        newest: DateTime<FixedOffset>,
        published: &[String],
        shutdown: &Shutdown,
    ) -> Result<(), PollError> {
        let ctx = self.ctx.clone();
        let spec = self.source.spec.clone();
        let spec = &spec;
        let Some(oldest) = read(shutdown, walk::oldest_row(&ctx.client, spec)).await? else {
            self.report.stopped = true;
            return Ok(());
        };
        let Some(oldest) = oldest else { return Ok(()) };
        Self::check_gap(
            &ctx.telemetry,
            spec,
            &mut self.stored.cursor,
            oldest.created_unix(),
        );
        let cursor = &self.stored.cursor;
        let from = self.read_from(cursor).max(oldest.created_unix());
        // The local date of `from`: offsets differ across daylight saving time, so take the
        // earliest date any known offset gives (a day read twice costs only requests).
        let known_offsets = [*newest.offset(), *oldest.activity.created.offset()]
            .into_iter()
            .chain(
                cursor
                    .newest
                    .as_deref()
                    .and_then(|n| DateTime::parse_from_rfc3339(n).ok())
                    .map(|d| *d.offset()),
            );
        let first_day = known_offsets
            .filter_map(|tz| tz.timestamp_opt(from, 0).single().map(|d| d.date_naive()))
            .min()
            .unwrap_or(newest.date_naive());
        let last_day = newest.date_naive();
        ctx.telemetry.emit(telemetry::CatchUpStarted {
            source: spec,
            from: first_day,
            to: last_day,
        });
        // Every day before the last is walked ahead of its publication (`DaysAhead`: the
        // next day is read while this one is published, acknowledged and committed); the
        // cursor still moves day by day, in order, after every acknowledged batch.
        let before_last: Vec<NaiveDate> = first_day
            .iter_days()
            .take_while(|d| *d < last_day)
            .collect();
        let expected = before_last.len();
        // Every second below the position was proven and published (by this catch-up's
        // last attempt, say, which failed later in a day): the day walks prove only the
        // seconds from there on.
        let mut ahead = walk::DayWalker::new(&ctx.client, spec, last_day)
            .patient(self.patient())
            .proven_below(self.stored.cursor.position)
            .ahead(before_last, &ctx.read_ahead);
        let mut taken = 0;
        loop {
            if shutdown.is_fired() {
                self.report.stopped = true;
                return Ok(());
            }
            let next = tokio::select! {
                biased;
                _ = shutdown.wait() => None,
                n = ahead.next() => Some(n),
            };
            let Some(next) = next else {
                self.report.stopped = true;
                return Ok(());
            };
            let Some((_, walked)) = next else {
                // The walks ended: every day must have come, or the head would skip some.
                if taken < expected {
                    return Err(GiteaError::Request(format!(
                        "the day walks of {spec} ended after {taken} of {expected} days"
                    ))
                    .into());
                }
                break;
            };
            taken += 1;
            if !self.take_day(walked?, shutdown).await? {
                return Ok(());
            }
        }
        drop(ahead);
        if shutdown.is_fired() {
            self.report.stopped = true;
            return Ok(());
        }
        // The last day is read from the head down to the cursor's cutoff, as a live poll
        // reads: `date=` would read the whole of today again at every poll of a source
        // whose trailing window is deeper than `live_pages`, and no day after it can hide
        // the end of it.
        let Some(walked) = self.head(shutdown).await? else {
            self.report.stopped = true;
            return Ok(());
        };
        if self.take_day(walked, shutdown).await? {
            // Only a second of a taken-over repository, below the cutoff, may be unproven.
            if self.report.held.is_none() {
                let was_pinned = self.stored.cursor.pinned.is_some();
                self.note_unproven(None, walk::Why::default());
                if was_pinned {
                    self.commit(shutdown).await?;
                }
            }
            // Written with the next change of the cursor: read back once more at worst.
            let held = self.report.held;
            self.settle_taken(published, held);
        }
        Ok(())
    }

    /// Publishes one day of a catch-up and moves the cursor over it. `false`: stop the
    /// catch-up here (shutdown, or a second of the day not proven whole).
    async fn take_day(&mut self, walked: Walked, shutdown: &Shutdown) -> Result<bool, PollError> {
        // `_held`: the day's bytes count against the read-ahead budget until it is published.
        let Walked {
            rows,
            unproven,
            why,
            held: _held,
        } = walked;
        self.report.read += rows.len();
        self.report.days += 1;
        let before = self.stored.cursor.clone();
        let newest_read = rows.iter().map(ActivityRow::created_unix).max();
        let cap = self.own_unproven(&self.stored.cursor, unproven);
        self.process(rows, cap, shutdown).await?;
        // Every row of the day is held (or the cursor stops below the unproven second):
        // rows another source publishes move the position too, so a source whose newest
        // rows are all another's does not read today again at every poll.
        let stopped = self.report.stopped;
        let to = newest_read
            .filter(|_| !stopped)
            .map(|newest| cap.map_or(newest, |u| newest.min(u)));
        let then = |p: &mut Self| {
            if !stopped && unproven.is_some() {
                p.note_unproven(unproven, why);
            }
        };
        self.settle(to, then, |c| *c != before, shutdown).await?;
        if !stopped && let Some(u) = unproven {
            // The oldest of the catch-up (a second below the cutoff, of a taken-over
            // repository only, does not stop it).
            let held = &mut self.report.held;
            *held = Some(held.map_or(u, |h| h.min(u)));
        }
        Ok(!stopped && cap.is_none())
    }

    /// Every row from the head of the feed down to the cursor's cutoff, however deep.
    async fn head(&self, shutdown: &Shutdown) -> Result<Option<Walked>, PollError> {
        let depth = Depth {
            cutoff: self.read_from(&self.stored.cursor),
            max_pages: usize::MAX,
            settled: None,
            read_ahead: true,
            patient: self.patient(),
        };
        let walked = read(
            shutdown,
            walk::walk_back(&self.ctx.client, &self.source.spec, depth),
        )
        .await?;
        Ok(walked.map(|w| match w {
            LiveWalk::Done {
                rows,
                unproven,
                why,
                ..
            } => Walked {
                rows,
                unproven,
                why,
                held: None,
            },
            // Not with `usize::MAX` pages; were it so, nothing was read and nothing moves.
            LiveWalk::TooDeep { .. } => Walked::default(),
        }))
    }

    /// Publishes the rows that are new to the cursor, oldest first, through the pipeline,
    /// writing the cursor after each acknowledged batch; never moves the cursor past the
    /// unproven second (what a tie still hides there comes with a later poll: late, not lost).
    async fn process(
        &mut self,
        rows: Vec<ActivityRow>,
        unproven: Option<i64>,
        shutdown: &Shutdown,
    ) -> Result<(), PollError> {
        let ctx = self.ctx.clone();
        let cursor = &self.stored.cursor;
        let cutoff = cursor.cutoff(ctx.lookback);
        // Cloned so that no lock is held across the awaits below (reload may write it).
        let owners = ctx.owners.read().unwrap_or_else(|e| e.into_inner()).clone();
        // A taken-over repository is read back from further than the cutoff.
        let taken = |r: &ActivityRow| {
            let (owner, name) = r.activity.repo_names()?;
            cursor.taken(&format!("{owner}/{name}").to_lowercase())
        };
        let rows: Vec<ActivityRow> = rows
            .into_iter()
            .filter(|r| {
                (r.created_unix() >= cutoff || taken(r).is_some_and(|t| r.created_unix() >= t.from))
                    && cursor.owns(&r.activity.created)
                    && !cursor.published_elsewhere(&r.activity.created)
                    && owners.publishes(&self.source.spec, r)
            })
            .collect();
        // Only an org source sweeping its repositories' kinds asks where the feed is active.
        let s = &self.source;
        if s.repos && !s.kinds.is_empty() && !s.repos_sweep.is_zero() {
            for r in &rows {
                if let Some((owner, name)) = r.activity.repo_names() {
                    self.active.insert(format!("{owner}/{name}").to_lowercase());
                }
            }
        }
        // What the drained source (or this one since) published of a taken-over repository.
        let mut candidates: Vec<_> = feed_candidates(rows)
            .into_iter()
            .filter(|c| {
                taken(&c.item).is_none_or(|t| {
                    !t.seen.contains(&c.id)
                        && t.published_before
                            .as_ref()
                            .is_none_or(|s| !s.contains(&c.item.activity.created))
                })
            })
            .collect();
        if let Some(second) = unproven {
            self.admit_within_window(second, &mut candidates);
        }
        let owner = self.source.spec.to_string();
        let mut target = FeedTarget {
            poller: self,
            cap: unproven,
            shutdown,
            claims: Vec::new(),
        };
        let out = ctx
            .pipeline(&owner)
            .run(&mut target, candidates, shutdown)
            .await?;
        self.report.published += out.published;
        self.report.duplicates += out.duplicates;
        self.report.stopped |= out.stopped;
        Ok(())
    }

    /// While the cursor waits below `second` (not proven whole), the window cannot forget
    /// anything from that second on, so every row published above it stays in the cursor:
    /// rows newer than it are admitted only while the window has room (`poll.max_window`),
    /// oldest first; the others wait for the second to be proven (the walk reads them
    /// again: late, not lost). Without it the window grew without bound (about 18,000
    /// identities exceed 1 MiB: the cursor's writes failed, and a restart published the
    /// window again).
    fn admit_within_window(&mut self, second: i64, candidates: &mut Vec<Pending<ActivityRow>>) {
        let seen = &self.stored.cursor.seen;
        let mut room = self.ctx.max_window.saturating_sub(seen.len());
        let before = candidates.len();
        candidates.retain(|c| {
            if c.id.t <= second || seen.contains(&c.id) {
                return true;
            }
            let admit = room > 0;
            room = room.saturating_sub(1);
            admit
        });
        let waiting = before - candidates.len();
        let told = std::mem::replace(
            &mut self.window_full,
            if waiting > 0 { second } else { i64::MIN },
        );
        if waiting > 0 && told != second {
            self.ctx.telemetry.emit(telemetry::WindowFull {
                source: &self.source.spec,
                second,
                waiting,
                max: self.ctx.max_window,
            });
        }
    }

    /// Whether a row at `oldest` being the oldest would mean lost history (see
    /// [`Self::check_gap`]).
    fn gap_possible(cursor: &Cursor, oldest: i64) -> bool {
        cursor.newest.is_some() && cursor.position > 0 && oldest > cursor.position
    }

    /// The cursor's own row is gone and every row Gitea has is newer (`oldest` is the oldest
    /// row Gitea has, read from the end of the feed, never the oldest row of a walk that
    /// may have ended early): the history between was deleted (the `delete_old_actions`
    /// cron) before it was read. Say so, loudly. Only a cursor that has published something
    /// can miss history: a fresh cursor at a start date before the oldest row Gitea has has
    /// nothing to miss.
    fn check_gap(telemetry: &Telemetry, spec: &SourceSpec, cursor: &mut Cursor, oldest: i64) {
        if Self::gap_possible(cursor, oldest) {
            let gap = Gap {
                from: cursor.position,
                to: oldest,
                detected_at: chrono::Utc::now(),
            };
            telemetry.emit(telemetry::GapDetected {
                source: spec,
                from: gap.from,
                to: gap.to,
            });
            cursor.gap = Some(gap);
        }
    }

    /// Writes the cursor (see [`write_cursor`]).
    async fn commit(&mut self, stop: &Shutdown) -> Result<(), PollError> {
        write_cursor(
            &self.ctx,
            &self.source.spec,
            &mut self.committed_position,
            &mut self.stored,
            stop,
        )
        .await
    }
}

/// Writes a source's cursor: the repositories it now leaves to other sources first
/// (`left_to`, from `committed_position`, the position of its previous write), then the
/// cursor with compare-and-set; `committed_position` becomes the position written.
async fn write_cursor(
    ctx: &Context,
    spec: &SourceSpec,
    committed_position: &mut i64,
    stored: &mut Stored,
    stop: &Shutdown,
) -> Result<(), PollError> {
    stored.cursor.updated_at = chrono::Utc::now();
    let others = ctx
        .owners
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .left_to_others(spec);
    // A repository newly left to another source was last published by this one up to
    // the position of this cursor's previous write (this process skipped it since).
    // A cursor being created has published nothing of it: its own position.
    let previous = match *committed_position {
        i64::MIN => stored.cursor.position,
        p => p,
    };
    let mut left: Vec<LeftTo> = Vec::with_capacity(others.len());
    for repo in others {
        let from = stored
            .cursor
            .left_to
            .iter()
            .find(|l| l.repo == repo)
            .map_or(previous, |l| l.from);
        left.push(LeftTo { repo, from });
    }
    stored.cursor.left_to = left;
    stored.revision = ctx
        .store
        .save(spec, &stored.cursor, stored.revision, stop)
        .await?;
    *committed_position = stored.cursor.position;
    ctx.telemetry.emit(telemetry::CursorWritten {
        source: spec,
        newest: stored.cursor.newest.as_deref(),
    });
    Ok(())
}

/// A feed cursor as the pipeline's target.
struct FeedTarget<'a> {
    /// The poller: its cursor moves and is written with every batch.
    poller: &'a mut FeedPoller,
    /// The oldest unproven second: the position never passes it.
    cap: Option<i64>,
    /// This source's stop: enrichment fetches (reads only) are abandoned at it.
    shutdown: &'a Shutdown,
    /// The pushes the batch being published claimed (`hooks::Fetcher::claiming`): kept in
    /// the cursor's window with the batch.
    claims: Vec<(String, i64)>,
}

impl Target for FeedTarget<'_> {
    type Item = ActivityRow;

    fn seen(&mut self) -> &mut SeenSet {
        &mut self.poller.stored.cursor.seen
    }

    async fn build(&mut self, batch: &[Pending<ActivityRow>]) -> Vec<Event> {
        let p = &*self.poller;
        let ctx = &p.ctx;
        let mut events = Vec::with_capacity(batch.len());
        let mut hooks = p.source.webhooks.then(|| {
            let owner = crate::poll::pipeline::owner_tag(&p.source.spec.to_string());
            let mut f = hooks::Fetcher::new(ctx, self.shutdown).claiming(owner);
            f.scan(batch.iter().map(|c| &c.item));
            f
        });
        let settings = hooks::HookSettings {
            push_files: p.source.push_files,
        };
        for c in batch {
            let issue = match p.source.enrich {
                true => {
                    ctx.issues
                        .issue_for_until(&ctx.client, &c.item, self.shutdown)
                        .await
                }
                false => None,
            };
            match event::build_with(
                &ctx.gitea_url,
                &ctx.prefixes,
                &c.item,
                c.id.key.clone(),
                c.id.repeatable,
                issue.as_ref(),
            ) {
                Ok(e) => {
                    // The action's webhook-shaped events go in the same batch, after it.
                    let more = match hooks.as_mut() {
                        Some(f) => hooks::row_events(f, settings, &c.item, &e).await,
                        None => Vec::new(),
                    };
                    events.push(e);
                    events.extend(more);
                }
                // Serialising a parsed row cannot fail in practice; if it does, the row is
                // skipped loudly rather than blocking the source forever.
                Err(e) => ctx.telemetry.emit(telemetry::EventSkipped {
                    source: &p.source.spec,
                    reason: &e.to_string(),
                }),
            }
        }
        self.claims = hooks.as_mut().map(|f| f.take_claims()).unwrap_or_default();
        events
    }

    async fn commit(
        &mut self,
        batch: &[Pending<ActivityRow>],
        events: &[Event],
        outcome: &BatchOutcome,
    ) -> Result<(), PollError> {
        let cursor = &mut self.poller.stored.cursor;
        cursor.published += outcome.stored as u64;
        for (key, t) in std::mem::take(&mut self.claims) {
            cursor.seen.insert(&key, t);
        }
        if !cursor.taken_over.is_empty() {
            for c in batch {
                let Some((owner, name)) = c.item.activity.repo_names() else {
                    continue;
                };
                let repo = format!("{owner}/{name}").to_lowercase();
                if let Some(t) = cursor.taken_over.iter_mut().find(|t| t.repo == repo) {
                    t.seen.insert(&c.id.key, c.id.t);
                }
            }
        }
        let Some(last) = batch.last() else {
            return Ok(());
        };
        cursor.newest = Some(last.item.activity.created.to_rfc3339());
        let cap = self.cap;
        let to = cap.map_or(last.id.t, |c| last.id.t.min(c));
        let max = self.poller.ctx.max_window;
        let bound = |p: &mut FeedPoller| {
            if let Some(from) = p.stored.cursor.bound(max, cap) {
                p.ctx.telemetry.emit(telemetry::WindowShortened {
                    source: &p.source.spec,
                    from,
                    max,
                });
            }
        };
        self.poller
            .settle(Some(to), bound, |_| true, self.shutdown)
            .await?;
        self.poller.ctx.telemetry.emit(telemetry::BatchPublished {
            source: &self.poller.source.spec,
            stored: outcome.stored,
            duplicates: outcome.duplicates,
            stored_op_types: &stored_op_types(events, outcome),
            newest: &last.item.activity.created,
        });
        Ok(())
    }
}
