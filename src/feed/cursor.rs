//! The cursor of one source: how far it has been published, and the design that makes the
//! feed walk lose nothing and repeat nothing.
//!
//! ## What the feed does to a naive poller (see FACTS.md)
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

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The identity of a published row inside the trailing window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Content key (`event::identity_key`).
    pub k: String,
    /// `created`, Unix seconds.
    pub t: i64,
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
    /// Published identities with `t >= position - lookback`.
    #[serde(default)]
    pub seen: Vec<Seen>,
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
}

impl Cursor {
    /// A cursor at `position` that publishes nothing older than `floor`.
    pub fn new(position: i64, floor: i64) -> Cursor {
        Cursor {
            position,
            floor,
            seen: Vec::new(),
            gap: None,
            published: 0,
            newest: None,
            updated_at: Utc::now(),
        }
    }

    /// The oldest `created` a poll still needs to read.
    pub fn cutoff(&self, lookback: i64) -> i64 {
        (self.position - lookback).max(self.floor)
    }

    /// Whether a row with this identity is already covered by this cursor.
    pub fn has_seen(&self, key: &str, t: i64, repeatable: bool) -> bool {
        self.seen
            .iter()
            .any(|s| s.k == key && (!repeatable || (s.t - t).abs() <= 1))
    }

    /// Moves the position forward (never back) and forgets identities below the window.
    pub fn advance(&mut self, position: i64, lookback: i64) {
        if position > self.position {
            self.position = position;
        }
        let keep_from = self.position - lookback;
        self.seen.retain(|s| s.t >= keep_from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_keeps_only_the_window() {
        let mut c = Cursor::new(100, 0);
        c.seen.push(Seen {
            k: "a".into(),
            t: 95,
        });
        c.seen.push(Seen {
            k: "b".into(),
            t: 60,
        });
        c.advance(110, 20);
        assert_eq!(c.position, 110);
        assert_eq!(c.seen.len(), 1);
        c.advance(50, 20);
        assert_eq!(c.position, 110, "never moves back");
        assert_eq!(c.cutoff(20), 90);
    }

    #[test]
    fn repeatable_match_allows_one_second() {
        let mut c = Cursor::new(100, 0);
        c.seen.push(Seen {
            k: "a".into(),
            t: 95,
        });
        assert!(c.has_seen("a", 96, true));
        assert!(!c.has_seen("a", 97, true));
        assert!(c.has_seen("a", 10, false));
    }
}
