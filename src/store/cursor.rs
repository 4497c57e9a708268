//! The cursor of one source: how far it has been published, and the design that makes the
//! feed walk lose nothing and repeat nothing.
//!
//! ## What the feed does to a naive poller (see docs/gitea-feeds.md)
//! * Rows are ordered by `created` only, with one-second resolution; ties come back in a
//!   random order, so "the last id I saw" and "everything after second S" are both wrong.
//! * Rows become visible late (open transactions) with an older `created` than rows already
//!   served: "everything newer than the newest I saw" loses them.
//! * Paging is by offset: inserts push rows onto later pages (seen twice), soft deletes pull
//!   rows onto earlier pages (skipped once).
//! * The same action appears in several feeds with different row ids, and a copy's `created`
//!   may be one second later than the original's.
//!
//! ## The design
//! A cursor is a **position** (`created` of the newest row covered, Unix seconds) plus a
//! **trailing window** of `lookback` seconds below it, and the **identities** ([`Seen`]: the
//! content key of `event::identity_key` and `created`) of every row in that window that was
//! published. Each poll re-reads the feed down to `cutoff = max(position - lookback, floor)`
//! and publishes every row at or above the cutoff whose identity is not in the window.
//! * Ties and rows split across pages: they are above the cutoff and identified by content,
//!   so each is published exactly once whatever order or page it arrives on.
//! * Late-visible rows: anything that turns up inside the window is still new to it.
//! * Shifting pages: a walk de-duplicates rows by id; when `X-Total-Count` drops during a
//!   walk (a deletion could have pulled a row past us) the walk starts over; a row skipped
//!   anyway is inside the window and is read by the next poll.
//! * Copies across feeds: identities are content, not row ids; the process-wide
//!   `poll::pipeline::dedup::RecentIndex` matches a copy to an original published by another source,
//!   and JetStream's duplicate window (same `Nats-Msg-Id`) backs it up.
//!
//! The cursor moves only after JetStream acknowledged every event at or before its new
//! position, and is written with compare-and-set on the revision read, so two processes
//! cannot overwrite each other's progress silently. Rows that turn visible more than
//! `lookback` after a newer row was published are beyond the design (Gitea's transactions
//! last milliseconds; the default window is five minutes).
//!
//! Far behind (more than `poll.live_pages` pages to read), the poll switches to a catch-up
//! that walks history one day at a time (`date=`, server time zone), oldest day first, and
//! commits the cursor after every acknowledged chunk: memory holds one day, not the gap.
//!
//! What proves a second: only the rows a walk read (never the window's identities: a row
//! published and deleted since would stand in for one the walk never saw). The position
//! moves only over proven seconds and stops at the oldest unproven one, so every second
//! below it is proven and published; a catch-up's day walks prove only from the position
//! on (a day that failed late is taken up there), while live polls prove the whole window.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The identity of a published row inside the trailing window (the stored form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Content key (`event::identity_key`).
    pub k: String,
    /// `created`, Unix seconds.
    pub t: i64,
}

/// The identity of one action or change, as the pipeline checks it: its content key, when
/// it happened, and whether identical content can happen again (then a match must also be
/// within one second, the lag of a copy in another feed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub key: String,
    pub t: i64,
    pub repeatable: bool,
}

/// The most identities one window keeps. Each costs about 55 bytes of the cursor's KV value
/// (1 MiB at most by default); past this, the oldest seconds are forgotten first and the
/// window is shorter than `lookback` until the burst has passed (logged).
pub const MAX_SEEN: usize = 12_000;

/// Identities published inside a window, looked up in O(1). Stored as the list of [`Seen`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeenSet {
    map: HashMap<String, Vec<i64>>,
    len: usize,
}

impl SeenSet {
    /// Whether an identity matching `id` was published: the same key, and for a repeatable
    /// one a time at most one second apart.
    pub fn contains(&self, id: &Identity) -> bool {
        self.map
            .get(&id.key)
            .is_some_and(|ts| !id.repeatable || ts.iter().any(|&s| (s - id.t).abs() <= 1))
    }

    pub fn insert(&mut self, key: &str, t: i64) {
        let ts = self.map.entry(key.to_string()).or_default();
        if !ts.contains(&t) {
            ts.push(t);
            self.len += 1;
        }
    }

    /// Forgets identities older than `from`.
    pub fn retain_from(&mut self, from: i64) {
        let mut len = 0;
        self.map.retain(|_, ts| {
            ts.retain(|&t| t >= from);
            len += ts.len();
            !ts.is_empty()
        });
        self.len = len;
    }

    /// Keeps at most `max` identities, dropping whole seconds from the oldest, but never a
    /// second at or above `keep_from` (an unproven second must stay readable). Returns the
    /// oldest second still held when something was dropped.
    pub fn bound(&mut self, max: usize, keep_from: Option<i64>) -> Option<i64> {
        if self.len <= max {
            return None;
        }
        let mut times: Vec<i64> = self.map.values().flatten().copied().collect();
        times.sort_unstable();
        // The second of the `len - max`-th oldest identity and everything below it go.
        let mut cut = times[self.len - max - 1] + 1;
        if let Some(k) = keep_from {
            cut = cut.min(k);
        }
        if times.first().is_none_or(|&oldest| oldest >= cut) {
            return None;
        }
        self.retain_from(cut);
        Some(cut)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.map
            .iter()
            .flat_map(|(k, ts)| ts.iter().map(move |&t| (k.as_str(), t)))
    }
}

impl From<Vec<Seen>> for SeenSet {
    fn from(list: Vec<Seen>) -> SeenSet {
        let mut s = SeenSet::default();
        for e in list {
            s.insert(&e.k, e.t);
        }
        s
    }
}

impl From<SeenSet> for Vec<Seen> {
    fn from(set: SeenSet) -> Vec<Seen> {
        let mut v: Vec<Seen> = set
            .map
            .into_iter()
            .flat_map(|(k, ts)| ts.into_iter().map(move |t| Seen { k: k.clone(), t }))
            .collect();
        v.sort_by(|a, b| (a.t, &a.k).cmp(&(b.t, &b.k)));
        v
    }
}

impl Serialize for SeenSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Vec::<Seen>::from(self.clone()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for SeenSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SeenSet, D::Error> {
        Vec::<Seen>::deserialize(d).map(SeenSet::from)
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}

/// The [`Window::floor_rule`] of cursors written now: the cursor publishes every row it owns.
pub const FLOOR_RULE: u8 = 1;

/// History that Gitea no longer has (the `delete_old_actions` cron ran before we read it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Unix seconds: the cursor's position when the gap was found.
    pub from: i64,
    /// Unix seconds: `created` of the oldest row Gitea still had.
    pub to: i64,
    /// When the sourcer noticed.
    pub detected_at: DateTime<Utc>,
}

/// The most western UTC offset there is (seconds; UTC-12:00).
pub const MIN_OFFSET: i32 = -12 * 3600;
/// The most eastern UTC offset there is (seconds; UTC+14:00): a start date's earliest
/// instant is its midnight there.
pub const MAX_OFFSET: i32 = 14 * 3600;

/// The trailing window of a cursor, shared by the feed's [`Cursor`] and the repository
/// kinds' cursors (`repo::KindCursor`), flattened into both: where it stands, where its
/// history begins, and the identities published inside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// `created` (Unix seconds) of the newest row covered; 0 = nothing yet. A kind's cursor
    /// stores it as `since`.
    #[serde(alias = "since")]
    pub position: i64,
    /// Rows older than this are never published (start date or "now"); Unix seconds, 0:
    /// none (a kind's cursor then leaves it out).
    #[serde(default, deserialize_with = "zero_if_null")]
    pub floor: i64,
    /// How `floor` was set (feed cursors only). `0` (absent: cursors written before issue
    /// 22): a `start = "now"` cursor's floor lies `lookback` below the newest row at
    /// install, and the rows from there up to that row were counted as published without
    /// being published; `backfill` publishes them ([`Cursor::published_live`]).
    /// [`FLOOR_RULE`] since: every row at or after `floor` is this cursor's to publish, and
    /// it publishes it.
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub floor_rule: u8,
    /// `start = "YYYY-MM-DD"`: rows whose local date (as Gitea wrote `created`) is earlier
    /// are never published. `floor` is then the earliest instant that date can begin at
    /// (offsets differ across daylight saving time), and this is the exact rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_day: Option<NaiveDate>,
    /// Published identities with `t >= position - lookback`.
    #[serde(default)]
    pub seen: SeenSet,
    /// Set when more identities than the window may keep fell in it: the window starts
    /// here instead (what is below was forgotten, so it must not be read again). 0: not set.
    #[serde(
        default,
        deserialize_with = "zero_if_null",
        skip_serializing_if = "is_zero"
    )]
    pub window_floor: i64,
}

/// A number stored as an `Option<i64>` (absent or `null`: 0).
fn zero_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.unwrap_or_default())
}

impl Window {
    /// Where the trailing window begins: `lookback` below the position, or higher when the
    /// window had to forget its oldest seconds.
    pub fn window_start(&self, lookback: i64) -> i64 {
        (self.position - lookback).max(self.window_floor)
    }

    /// The oldest `created` a poll still needs to read.
    pub fn cutoff(&self, lookback: i64) -> i64 {
        self.window_start(lookback).max(self.floor)
    }

    /// Moves the position forward (never back) and forgets identities below the window.
    pub fn advance(&mut self, position: i64, lookback: i64) {
        if position > self.position {
            self.position = position;
        }
        self.seen.retain_from(self.position - lookback);
    }

    /// Keeps the window's identities within `max` (at most [`MAX_SEEN`]), never forgetting a
    /// second at or above `keep_from`; returns where the window now starts when it had to
    /// forget the oldest seconds.
    pub fn bound(&mut self, max: usize, keep_from: Option<i64>) -> Option<i64> {
        let from = self.seen.bound(max.min(MAX_SEEN), keep_from)?;
        self.window_floor = self.window_floor.max(from);
        Some(from)
    }

    /// Whether a row created at `created` is this cursor's to publish (at or after its start);
    /// older rows belong to `backfill`.
    pub fn owns(&self, created: &DateTime<FixedOffset>) -> bool {
        self.owns_at(created.timestamp(), Some(*created.offset()))
    }

    /// [`Window::owns`] for a change at `t` (Unix seconds) whose Gitea time carried
    /// `offset`: its local date is the one in that offset. Without an offset (`None`: the
    /// time did not parse) only what is on or after the start date in every zone is owned
    /// (from its latest midnight, the one at [`MIN_OFFSET`]).
    pub fn owns_at(&self, t: i64, offset: Option<FixedOffset>) -> bool {
        if t < self.floor {
            return false;
        }
        let Some(day) = self.floor_day else {
            return true;
        };
        let offset = offset.or(FixedOffset::east_opt(MIN_OFFSET));
        DateTime::from_timestamp(t, 0)
            .zip(offset)
            .is_some_and(|(u, o)| u.with_timezone(&o).date_naive() >= day)
    }
}

/// Where a source has been published up to. Stored as JSON in the cursor bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Position, start and trailing window (stored as top-level fields, as they always were).
    #[serde(flatten)]
    pub window: Window,
    /// The last gap found, if any.
    #[serde(default)]
    pub gap: Option<Gap>,
    /// Events published by this source in total.
    #[serde(default)]
    pub published: u64,
    /// `created` of the newest published event, as Gitea wrote it.
    #[serde(default)]
    pub newest: Option<String>,
    /// Last write.
    pub updated_at: DateTime<Utc>,
    /// The source this repository was handed over to when its `repo:` source was removed
    /// (after a last poll to the head of its feed). Such a cursor only seeds the cross-feed
    /// index; a `repo:` source added again takes over from that source instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_to: Option<String>,
    /// An org or user cursor: the repositories of that org or user that other (`repo:`)
    /// sources publish, each with this cursor's position when it stopped publishing it. A
    /// `repo:` source of one of them without a cursor of its own takes the repository over
    /// from there, not from this cursor's position now (it skipped the repository since).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_to: Vec<LeftTo>,
    /// A `repo:` cursor that took its repository over from an org or user source while its
    /// own `start` asked for older history than that source published: the rows of this
    /// span were published by that source, so this one leaves them out (it publishes what
    /// is older, from its own start, and what is newer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_before: Option<Span>,
    /// An org or user cursor: repositories taken over from a drained `repo:` source, each
    /// read back (beside this cursor's own window) from where that source's window began,
    /// until a poll of this source has read that far with every row proven (see
    /// [`TakenOver`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken_over: Vec<TakenOver>,
    /// First write (absent in cursors written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Set while the position waits below a second of the feed that walks could not prove
    /// whole (newer rows are published meanwhile): which second and since when, so that
    /// `cursors list`, `check` and the metrics of a restarted process can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<Pinned>,
}

impl std::ops::Deref for Cursor {
    type Target = Window;

    fn deref(&self) -> &Window {
        &self.window
    }
}

impl std::ops::DerefMut for Cursor {
    fn deref_mut(&mut self) -> &mut Window {
        &mut self.window
    }
}

/// A cursor whose position waits below a second it could not prove whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinned {
    /// Unix seconds: the second waited for (the oldest one a walk could not prove).
    pub second: i64,
    /// Since when the position has not moved while waiting for it.
    pub since: DateTime<Utc>,
    /// The cursor's position then: when it moves, `since` starts again.
    pub position: i64,
}

/// A repository an org or user cursor left to its `repo:` source, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftTo {
    /// `owner/name`, lower case.
    pub repo: String,
    /// The cursor's position when it stopped publishing the repository: everything of it up
    /// to there was published by this cursor's source.
    pub from: i64,
}

/// A repository an org or user cursor took over from a drained `repo:` source. That source
/// may have handed it over below a second it could not prove, or before a late row of its
/// window turned up: this cursor reads the repository back from where that source's window
/// began, and publishes what is not among the identities that source (or this one since)
/// published there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakenOver {
    /// `owner/name`, lower case.
    pub repo: String,
    /// Unix seconds: the drained cursor's cutoff (its position minus the lookback).
    pub from: i64,
    /// Identities of the repository's rows at or after `from` published so far.
    #[serde(default)]
    pub seen: SeenSet,
    /// The drained cursor's [`Cursor::published_before`]: rows this source published
    /// before that one took the repository over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_before: Option<Span>,
}

/// Rows another source published: `created` from `from` (and, for a source that began at
/// a date, a local date from `from_day`) up to, not including, `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Unix seconds.
    pub from: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_day: Option<chrono::NaiveDate>,
    /// Unix seconds, exclusive.
    pub to: i64,
}

impl Span {
    /// Whether a row created at `created` lies in the span.
    pub fn contains(&self, created: &chrono::DateTime<chrono::FixedOffset>) -> bool {
        let t = created.timestamp();
        t >= self.from && t < self.to && self.from_day.is_none_or(|d| created.date_naive() >= d)
    }
}

impl Cursor {
    /// A cursor at `position` that publishes nothing older than `floor`.
    pub fn new(position: i64, floor: i64) -> Cursor {
        Cursor {
            window: Window {
                position,
                floor,
                floor_rule: FLOOR_RULE,
                floor_day: None,
                seen: SeenSet::default(),
                window_floor: 0,
            },
            gap: None,
            published: 0,
            newest: None,
            updated_at: Utc::now(),
            handed_to: None,
            left_to: Vec::new(),
            published_before: None,
            taken_over: Vec::new(),
            created_at: Some(Utc::now()),
            pinned: None,
        }
    }

    /// Records how a walk ended: `Some(second)` it could not prove (the position waits
    /// below it; the time it has waited counts from `now`, or from earlier when the same
    /// second held the same position already), `None` every second proven.
    pub fn pin(&mut self, unproven: Option<i64>, now: DateTime<Utc>) {
        self.pinned = match (unproven, self.pinned.take()) {
            (None, _) => None,
            (Some(t), Some(p)) if p.second == t && p.position == self.position => Some(p),
            (Some(t), _) => Some(Pinned {
                second: t,
                since: now,
                position: self.position,
            }),
        };
    }

    /// Whether a row created at `created` is published by this cursor's source live (or will
    /// be): the rows it [owns](Window::owns), less those of a `start = "now"` cursor written
    /// before [`FLOOR_RULE`] that lie in the `lookback` window at its install (from `floor` to
    /// `floor + lookback`, the newest row then): it counted them as published without
    /// publishing them, so they are `backfill`'s. (Were `lookback` changed since, the window
    /// is taken at today's; a row that turned visible late inside it was published live too
    /// and is published again, once, by backfill.)
    pub fn published_live(
        &self,
        created: &chrono::DateTime<chrono::FixedOffset>,
        lookback: i64,
    ) -> bool {
        let old_now_window = self.floor_rule == 0 && self.floor_day.is_none() && self.floor > 0;
        self.owns(created) && !(old_now_window && created.timestamp() <= self.floor + lookback)
    }

    /// Whether a row created at `created` was published by the source this cursor took its
    /// repository over from (see [`Cursor::published_before`]).
    pub fn published_elsewhere(&self, created: &chrono::DateTime<chrono::FixedOffset>) -> bool {
        self.published_before
            .as_ref()
            .is_some_and(|s| s.contains(created))
    }

    /// The taken-over repository `repo` (`owner/name`, lower case), if any.
    pub fn taken(&self, repo: &str) -> Option<&TakenOver> {
        self.taken_over.iter().find(|t| t.repo == repo)
    }

    /// After a poll of this source that read every taken-over repository it publishes
    /// (`publishes`) back to its `from`: rows below `unproven` (the oldest second the walk
    /// could not prove; `None`: none) are held, so each such repository is read back from
    /// there only, and no longer once its own window (`cutoff`) reaches that far.
    pub fn settle_taken(
        &mut self,
        unproven: Option<i64>,
        cutoff: i64,
        publishes: impl Fn(&str) -> bool,
    ) {
        self.taken_over.retain_mut(|t| {
            if !publishes(&t.repo) {
                return true;
            }
            let Some(u) = unproven else { return false };
            if u > t.from {
                t.from = u;
                t.seen.retain_from(u);
            }
            t.from < cutoff
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: &str, t: i64, repeatable: bool) -> Identity {
        Identity {
            key: key.into(),
            t,
            repeatable,
        }
    }

    /// Feed cursors as the code before `Window` wrote them (bytes from its serializer).
    const STORED_FULL: &str = r#"{"position":1764583200,"floor":1764500000,"floor_rule":1,"floor_day":"2025-11-30","seen":[{"k":"push/acme/widgets/abc","t":1764583100},{"k":"create_issue/acme/widgets/7","t":1764583200}],"window_floor":1764583050,"gap":{"from":1,"to":2,"detected_at":"2026-12-01T10:00:00Z"},"published":42,"newest":"2026-12-01T11:00:00+01:00","updated_at":"2026-12-01T10:00:00Z","handed_to":"org:acme","left_to":[{"repo":"acme/x","from":5}],"published_before":{"from":3,"from_day":"2025-01-02","to":9},"taken_over":[{"repo":"acme/y","from":6,"seen":[{"k":"k","t":7}]}],"created_at":"2026-12-01T10:00:00Z","pinned":{"second":1764583201,"since":"2026-12-01T10:00:00Z","position":1764583200}}"#;
    const STORED_NEW: &str = r#"{"position":0,"floor":0,"floor_rule":1,"seen":[],"gap":null,"published":0,"newest":null,"updated_at":"2026-12-01T10:00:00Z","created_at":"2026-12-01T10:00:00Z"}"#;

    #[test]
    fn stored_cursors_load_and_are_written_back_byte_for_byte() {
        for stored in [STORED_FULL, STORED_NEW] {
            let c: Cursor = serde_json::from_str(stored).unwrap();
            assert_eq!(serde_json::to_string(&c).unwrap(), stored);
        }
        let c: Cursor = serde_json::from_str(STORED_FULL).unwrap();
        assert_eq!(
            (
                c.position,
                c.floor,
                c.floor_rule,
                c.window_floor,
                c.seen.len()
            ),
            (1_764_583_200, 1_764_500_000, 1, 1_764_583_050, 2)
        );
        assert_eq!(c.floor_day, chrono::NaiveDate::from_ymd_opt(2025, 11, 30));
        assert_eq!(c.cutoff(300), 1_764_583_050, "the window's own floor");
        assert_eq!(c.cutoff(10), 1_764_583_190);
    }

    #[test]
    fn a_start_date_owns_by_the_rows_local_date_or_without_an_offset_by_its_latest_midnight() {
        let mut w = Window {
            floor: 100,
            ..Window::default()
        };
        assert!(!w.owns_at(99, None));
        assert!(w.owns_at(100, None));
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        w.floor_day = Some(day);
        let utc_midnight = day.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
        let plus2 = FixedOffset::east_opt(2 * 3600).unwrap();
        // 23:00 UTC on March 1st is March 2nd at UTC+2, not at UTC.
        assert!(w.owns_at(utc_midnight - 3600, Some(plus2)));
        assert!(!w.owns_at(utc_midnight - 3600, FixedOffset::east_opt(0)));
        let created = DateTime::parse_from_rfc3339("2026-03-02T01:00:00+02:00").unwrap();
        assert!(w.owns(&created));
        // No offset: only from the latest midnight there is (UTC-12).
        assert!(!w.owns_at(utc_midnight, None));
        assert!(w.owns_at(utc_midnight + 12 * 3600, None));
    }

    #[test]
    fn advance_keeps_only_the_window() {
        let mut c = Cursor::new(100, 0);
        c.seen.insert("a", 95);
        c.seen.insert("b", 60);
        c.advance(110, 20);
        assert_eq!(c.position, 110);
        assert_eq!(c.seen.len(), 1);
        c.advance(50, 20);
        assert_eq!(c.position, 110, "never moves back");
        assert_eq!(c.cutoff(20), 90);
    }

    #[test]
    fn an_old_start_now_cursor_leaves_its_install_window_to_backfill_a_new_one_owns_it_all() {
        let at = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .unwrap()
                .fixed_offset()
        };
        // Written before the rule: floor 1000 - 300, the newest row at install at 1000.
        let old: Cursor = serde_json::from_str(
            r#"{"position":1000,"floor":700,"seen":[],"updated_at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(old.floor_rule, 0);
        assert!(
            old.owns(&at(700)),
            "loads unchanged: run still owns the window"
        );
        assert!(!old.published_live(&at(700), 300));
        assert!(!old.published_live(&at(1000), 300));
        assert!(old.published_live(&at(1001), 300));
        assert!(!old.published_live(&at(699), 300));
        let new = Cursor::new(1000, 1001);
        assert!(!new.published_live(&at(1000), 300));
        assert!(new.published_live(&at(1001), 300));
        let back: Cursor = serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(back.floor_rule, FLOOR_RULE);
        // Beginning and start dates never had a window to leave.
        assert!(
            Cursor {
                window: Window {
                    floor_rule: 0,
                    ..Cursor::new(0, 0).window
                },
                ..Cursor::new(0, 0)
            }
            .published_live(&at(5), 300)
        );
    }

    #[test]
    fn repeatable_match_allows_one_second() {
        let mut s = SeenSet::default();
        s.insert("a", 95);
        assert!(s.contains(&id("a", 96, true)));
        assert!(!s.contains(&id("a", 97, true)));
        assert!(s.contains(&id("a", 10, false)));
        assert!(!s.contains(&id("b", 95, false)));
    }

    #[test]
    fn stored_form_is_the_old_list() {
        let json = r#"[{"k":"a","t":5},{"k":"b","t":6},{"k":"a","t":9}]"#;
        let s: SeenSet = serde_json::from_str(json).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(serde_json::to_string(&s).unwrap(), json);
    }

    #[test]
    fn a_pin_keeps_its_since_while_the_position_waits_and_stored_cursors_load_unchanged() {
        let t0 = Utc::now();
        let t1 = t0 + chrono::Duration::seconds(60);
        let mut c = Cursor::new(100, 0);
        c.pin(Some(105), t0);
        c.pin(Some(105), t1);
        assert_eq!(
            c.pinned,
            Some(Pinned {
                second: 105,
                since: t0,
                position: 100
            }),
            "the same second at the same position: waiting since the first walk"
        );
        // Stored and read back (another process, or after a restart): the same pin.
        let back: Cursor = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        c.advance(103, 20);
        c.pin(Some(105), t1);
        assert_eq!(c.pinned.as_ref().map(|p| p.since), Some(t1), "it moved");
        c.pin(Some(107), t1 + chrono::Duration::seconds(1));
        assert_eq!(c.pinned.as_ref().map(|p| p.second), Some(107));
        c.pin(None, t1);
        assert_eq!(c.pinned, None, "proven: not pinned");
        // A cursor stored before the field existed loads unchanged, and one not pinned is
        // stored without it.
        let old = r#"{"position":100,"floor":0,"seen":[],"gap":null,"published":3,"newest":null,"updated_at":"2026-12-01T00:00:00Z"}"#;
        let loaded: Cursor = serde_json::from_str(old).unwrap();
        assert_eq!(loaded.pinned, None);
        assert_eq!(loaded.published, 3);
        assert!(!serde_json::to_string(&loaded).unwrap().contains("pinned"));
    }

    #[test]
    fn a_taken_over_repository_is_read_back_until_proven_or_within_the_window() {
        let mut c = Cursor::new(1000, 0);
        let taken = |repo: &str, from: i64| TakenOver {
            repo: repo.into(),
            from,
            seen: SeenSet::default(),
            published_before: None,
        };
        c.taken_over = vec![taken("a/x", 100), taken("a/y", 100), taken("a/z", 100)];
        c.taken_over[0].seen.insert("old", 150);
        c.taken_over[0].seen.insert("new", 500);
        // a/y is still drained elsewhere: kept as it is.
        let publishes = |r: &str| r != "a/y";
        c.settle_taken(Some(400), 990, publishes);
        assert_eq!(
            c.taken("a/x").map(|t| t.from),
            Some(400),
            "read back from there"
        );
        assert_eq!(c.taken("a/x").map(|t| t.seen.len()), Some(1));
        assert_eq!(c.taken("a/y").map(|t| t.from), Some(100));
        c.settle_taken(Some(995), 990, publishes);
        assert!(c.taken("a/x").is_none(), "within the window: read anyway");
        assert!(c.taken("a/y").is_some());
        c.settle_taken(None, 990, |_| true);
        assert!(c.taken_over.is_empty(), "every row proven");
    }

    #[test]
    fn bound_drops_the_oldest_seconds() {
        let mut s = SeenSet::default();
        for t in 0..100 {
            s.insert(&format!("k{t}"), t / 10);
        }
        assert_eq!(s.bound(200, None), None);
        assert_eq!(s.bound(35, Some(5)), Some(5), "never past a second to keep");
        assert_eq!(s.len(), 50);
        assert_eq!(s.bound(35, None), Some(7));
        assert_eq!(s.len(), 30);
        assert!(!s.contains(&id("k69", 6, false)));
        assert!(s.contains(&id("k70", 7, false)));
    }
}
