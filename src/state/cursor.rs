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
//!   `feed::dedup::RecentIndex` matches a copy to an original published by another source,
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

use chrono::{DateTime, Utc};
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

/// Where a source has been published up to. Stored as JSON in the cursor bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// `created` (Unix seconds) of the newest row covered; 0 = nothing yet.
    pub position: i64,
    /// Rows older than this are never published (start date or "now"); Unix seconds.
    #[serde(default)]
    pub floor: i64,
    /// `start = "YYYY-MM-DD"`: rows whose local date (as Gitea wrote `created`) is earlier
    /// are never published. `floor` is then the earliest instant that date can begin at
    /// (offsets differ across daylight saving time), and this is the exact rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_day: Option<chrono::NaiveDate>,
    /// Published identities with `t >= position - lookback`.
    #[serde(default)]
    pub seen: SeenSet,
    /// Set when more identities than [`MAX_SEEN`] fell in the window: the window starts
    /// here instead (what is below was forgotten, so it must not be read again).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub window_floor: i64,
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
    /// First write (absent in cursors written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
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

impl Cursor {
    /// A cursor at `position` that publishes nothing older than `floor`.
    pub fn new(position: i64, floor: i64) -> Cursor {
        Cursor {
            position,
            floor,
            floor_day: None,
            seen: SeenSet::default(),
            window_floor: 0,
            gap: None,
            published: 0,
            newest: None,
            updated_at: Utc::now(),
            handed_to: None,
            left_to: Vec::new(),
            created_at: Some(Utc::now()),
        }
    }

    /// The oldest `created` a poll still needs to read.
    pub fn cutoff(&self, lookback: i64) -> i64 {
        (self.position - lookback)
            .max(self.floor)
            .max(self.window_floor)
    }

    /// Keeps the window's identities within [`MAX_SEEN`]; returns where the window now
    /// starts when it had to forget the oldest seconds.
    pub fn bound_window(&mut self, keep_from: Option<i64>) -> Option<i64> {
        let from = self.seen.bound(MAX_SEEN, keep_from)?;
        self.window_floor = self.window_floor.max(from);
        Some(from)
    }

    /// Whether a row created at `created` is this cursor's to publish (at or after its start);
    /// older rows belong to `backfill`.
    pub fn owns(&self, created: &chrono::DateTime<chrono::FixedOffset>) -> bool {
        created.timestamp() >= self.floor
            && self.floor_day.is_none_or(|d| created.date_naive() >= d)
    }

    /// Moves the position forward (never back) and forgets identities below the window.
    pub fn advance(&mut self, position: i64, lookback: i64) {
        if position > self.position {
            self.position = position;
        }
        self.seen.retain_from(self.position - lookback);
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
