//! The process-wide index of recently published identities, shared by every source, so that
//! the same action read through an org feed and a repository feed is published once even
//! when the copy's `created` is a second later (its id can then differ; see `event`).
//!
//! Rows are *reserved* in the index before they are published, by the source that will
//! publish them, so two sources polling at once cannot both publish one action. A
//! reservation is released when its batch was never sent; a batch whose publish failed stays
//! reserved (JetStream may have stored it without the ack arriving), and the same source
//! may reserve it again for its retry, which JetStream de-duplicates by id, while another
//! source's copy of it (another id, when the copy's `created` is a second late) is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// Identity key -> (`created`, reserving source) of what was published (or is being
/// published). Source 0: seeded from stored cursors, published for sure.
#[derive(Debug, Default)]
pub struct RecentIndex {
    map: Mutex<HashMap<String, Vec<(i64, u64)>>>,
    /// Identities older than this (Unix seconds) are not kept: a catch-up through old days
    /// would otherwise fill the index with the whole gap until the next prune.
    horizon: AtomicI64,
    /// Claims of spans of time, by key: `(from, to, owner)`. A ref's deletion is one: the
    /// feed's row names its second, the `refs` kind only the listings between which the ref
    /// went away (`repo::refs`).
    spans: Mutex<HashMap<String, Vec<Span>>>,
    /// The newest value a feed's push row gave each ref (`event::ref_key`): its new
    /// head and the row's second. The `refs` listing takes it for the `before` of a move it
    /// finds after it (two pushes between two listings, the first told by the feed).
    heads: Mutex<HashMap<String, (String, i64)>>,
}

/// A span claim: `(from, to, owner)`, Unix seconds and the claimer's tag.
type Span = (i64, i64, u64);

/// The prefix of a span claim's identity in a cursor's window (`seen`): what
/// [`RecentIndex::seed`] hands to [`RecentIndex::claim_span`] at start.
pub const SPAN_PREFIX: &str = "span\n";

impl RecentIndex {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(i64, u64)>>> {
        // A panic while holding this lock cannot leave the map inconsistent (each
        // operation is one insert or remove), so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an identity without checking (seeding from stored cursors).
    pub fn insert(&self, key: &str, t: i64) {
        self.lock().entry(key.to_string()).or_default().push((t, 0));
    }

    /// Seeds one identity of a stored cursor's window: a span claim ([`SPAN_PREFIX`]) as
    /// the second it names, any other as [`RecentIndex::insert`].
    pub fn seed(&self, key: &str, t: i64) {
        match key.strip_prefix(SPAN_PREFIX) {
            Some(span) => {
                self.claim_span(0, span, t, t);
            }
            None => self.insert(key, t),
        }
    }

    /// Claims `key` for the seconds `from..=to` by `owner`, unless another owner (or a
    /// seeded claim) holds a span of it that meets this one (a second apart counts: an org's
    /// copy of a row may be a second late). True when claimed (or already this owner's).
    pub fn claim_span(&self, owner: u64, key: &str, from: i64, to: i64) -> bool {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        let held = spans.entry(key.to_string()).or_default();
        let meets = |&(f, t, _): &Span| f <= to + 1 && from <= t + 1;
        if let Some(&(_, _, by)) = held.iter().find(|s| meets(s))
            && (owner == 0 || by != owner)
        {
            return false;
        }
        held.push((from, to, owner));
        true
    }

    /// Reserves `(key, t)` unless a matching identity is already there; true when reserved.
    /// Below the horizon nothing is stored (and nothing found): each repository is published
    /// by one source, so old rows need no cross-feed matching.
    pub fn reserve(&self, key: &str, t: i64, repeatable: bool) -> bool {
        self.reserve_as(0, key, t, repeatable)
    }

    /// [`RecentIndex::reserve`] by source `owner` (non-zero): a matching reservation of its
    /// own (a batch whose publish failed, retried) is granted again.
    pub fn reserve_as(&self, owner: u64, key: &str, t: i64, repeatable: bool) -> bool {
        if t < self.horizon.load(Ordering::Relaxed) {
            return true;
        }
        let mut map = self.lock();
        let times = map.entry(key.to_string()).or_default();
        let matching = |&(s, _): &(i64, u64)| !repeatable || (s - t).abs() <= 1;
        if let Some(&(_, by)) = times.iter().find(|e| matching(e)) {
            return owner != 0 && by == owner;
        }
        times.push((t, owner));
        true
    }

    /// Notes that a feed row of `r#ref` (a `event::ref_key`) at second `t` moved it to
    /// `head` (the newest row wins).
    pub fn note_head(&self, r#ref: &str, head: &str, t: i64) {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        let e = heads
            .entry(r#ref.to_string())
            .or_insert_with(|| (head.to_string(), t));
        if t >= e.1 {
            *e = (head.to_string(), t);
        }
    }

    /// The value a feed row gave `r#ref` at or after second `since`, if any.
    pub fn head_since(&self, r#ref: &str, since: i64) -> Option<String> {
        let heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        heads
            .get(r#ref)
            .filter(|(_, t)| *t >= since)
            .map(|(h, _)| h.clone())
    }

    /// Undoes a reservation whose publish failed.
    pub fn release(&self, key: &str, t: i64) {
        let mut map = self.lock();
        if let Some(times) = map.get_mut(key) {
            if let Some(i) = times.iter().position(|&(s, _)| s == t) {
                times.swap_remove(i);
            }
            if times.is_empty() {
                map.remove(key);
            }
        }
    }

    /// Forgets identities older than `t` (Unix seconds) and keeps none older from now on.
    pub fn prune_before(&self, t: i64) {
        self.horizon.store(t, Ordering::Relaxed);
        self.lock().retain(|_, times| {
            times.retain(|&(s, _)| s >= t);
            !times.is_empty()
        });
        self.heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (_, at)| *at >= t);
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, spans| {
                spans.retain(|&(_, to, _)| to >= t);
                !spans.is_empty()
            });
    }

    /// Number of identities held.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_release_and_one_second_match() {
        let idx = RecentIndex::new();
        assert!(idx.reserve("k", 10, true));
        assert!(!idx.reserve("k", 11, true), "copy one second later");
        assert!(idx.reserve("k", 20, true), "a later repeat is new");
        assert!(!idx.reserve("u", 10, false) || !idx.reserve("u", 99, false));
        idx.release("k", 10);
        assert!(idx.reserve("k", 10, true));
        idx.prune_before(15);
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn a_source_may_retry_its_own_reservation_but_not_take_another_s() {
        let idx = RecentIndex::new();
        assert!(idx.reserve_as(7, "k", 10, true));
        assert!(idx.reserve_as(7, "k", 10, true), "the same source's retry");
        assert!(
            !idx.reserve_as(8, "k", 11, true),
            "another source's copy a second late"
        );
        idx.insert("seeded", 5);
        assert!(idx.claim_span(7, "d", 100, 160), "a listing's span");
        assert!(!idx.claim_span(8, "d", 130, 130), "a feed row inside it");
        assert!(!idx.claim_span(8, "d", 161, 161), "a row a second after it");
        assert!(idx.claim_span(8, "d", 170, 170), "a later deletion");
        assert!(idx.claim_span(7, "d", 100, 160), "the same owner's retry");
        idx.note_head("r", "a", 10);
        idx.note_head("r", "b", 12);
        idx.note_head("r", "old", 11);
        assert_eq!(
            idx.head_since("r", 12).as_deref(),
            Some("b"),
            "the newest row's"
        );
        assert_eq!(idx.head_since("r", 13), None, "none after");
        idx.seed(&format!("{SPAN_PREFIX}e"), 50);
        assert!(!idx.claim_span(7, "e", 40, 60), "seeded from a cursor");
        assert!(
            !idx.reserve_as(7, "seeded", 5, false),
            "seeded from cursors: published"
        );
    }
}
