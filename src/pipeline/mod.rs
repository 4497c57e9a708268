//! The one publish pipeline: feed polls, repository kinds and backfill all publish through it,
//! with what they share: the [`Context`] (client, publisher, bucket, settings), the
//! process-wide cross-feed index ([`RecentIndex`]), the issue cache of `enrich = true`
//! ([`enrich::IssueCache`]), which source publishes which repository ([`Owners`]), and why a
//! poll does not finish ([`PollError`]).
//!
//! Given candidates sorted oldest first, it
//! 1. drops those whose identity the target already holds (its cursor's window, a kind's
//!    window, a backfill day's ledger),
//! 2. reserves the rest in the process-wide cross-feed index (when the target uses it); a
//!    candidate another source already published is remembered and not published,
//! 3. publishes them in pipelined batches and, after every acknowledged batch, records the
//!    batch's identities in the target and lets the target write its state (compare-and-set),
//! 4. stops between batches at shutdown, and on any failure releases the reservations of what
//!    was not acknowledged, so that the retry publishes it.
//!
//! A crash between a batch's acks and its state write re-publishes at most that batch; its
//! ids are derived from the actions, so JetStream's duplicate window absorbs the repeat.

pub mod context;
pub mod dedup;
pub mod enrich;
pub mod owners;

pub use context::{Context, PollError};
pub use dedup::RecentIndex;
pub use owners::Owners;

use crate::event::Event;
use crate::publish::{BatchOutcome, Publisher};
use crate::shutdown::Shutdown;
use crate::state::cursor::{Identity, SeenSet};

/// One candidate: its identity and what its event is built from.
pub struct Pending<T> {
    pub id: Identity,
    pub item: T,
}

/// Where a pipeline's results go: the state whose window de-duplicates, and how it is written.
pub trait Target {
    type Item;

    /// The identities already published.
    fn seen(&mut self) -> &mut SeenSet;

    /// The events of a batch, oldest first. An item whose event cannot be built is left out
    /// with a logged reason (it would otherwise block its source forever).
    fn build(&mut self, batch: &[Pending<Self::Item>]) -> impl Future<Output = Vec<Event>>;

    /// After the batch's acks (its identities already in [`Target::seen`]): move the
    /// position and write the state.
    fn commit(
        &mut self,
        batch: &[Pending<Self::Item>],
        events: &[Event],
        outcome: &BatchOutcome,
    ) -> impl Future<Output = Result<(), PollError>>;
}

/// The op type of each event of a batch that JetStream stored (not its duplicates), oldest
/// first: what the published-events counter counts.
pub fn stored_op_types<'a>(events: &'a [Event], outcome: &BatchOutcome) -> Vec<&'a str> {
    events
        .iter()
        .zip(&outcome.duplicate)
        .filter(|(_, dup)| !**dup)
        .map(|(e, _)| e.op_type.as_str())
        .collect()
}

/// What a pipeline run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// Events stored by JetStream.
    pub published: usize,
    /// Events JetStream already had (same id).
    pub duplicates: usize,
    /// Candidates the target or another source had already published.
    pub known: usize,
    /// Shutdown stopped it between batches.
    pub stopped: bool,
}

/// The shared parts: where to publish, the cross-feed index, the batch size.
pub struct Pipeline<'a> {
    pub publisher: &'a Publisher,
    /// `None`: no cross-feed matching (backfill, whose ledgers are shared by every source).
    pub index: Option<&'a RecentIndex>,
    pub batch: usize,
}

impl Pipeline<'_> {
    /// Publishes the candidates that are new to `target`, oldest first (the caller sorts).
    pub async fn run<T: Target>(
        &self,
        target: &mut T,
        candidates: Vec<Pending<T::Item>>,
        shutdown: &Shutdown,
    ) -> Result<Outcome, PollError> {
        let mut out = Outcome::default();
        let mut fresh: Vec<Pending<T::Item>> = Vec::new();
        // The identities of `fresh`: a copy read twice in one walk is published once.
        let mut taken = SeenSet::default();
        for c in candidates {
            let seen = target.seen();
            if seen.contains(&c.id) || taken.contains(&c.id) {
                out.known += 1;
                continue;
            }
            if let Some(index) = self.index
                && !index.reserve(&c.id.key, c.id.t, c.id.repeatable)
            {
                // Another source has published this action (e.g. the repository feed of an
                // org's repository): remember it, publish nothing.
                seen.insert(&c.id.key, c.id.t);
                out.known += 1;
                continue;
            }
            taken.insert(&c.id.key, c.id.t);
            fresh.push(c);
        }
        let mut at = 0;
        while at < fresh.len() {
            let end = (at + self.batch.max(1)).min(fresh.len());
            let batch = &fresh[at..end];
            let events = target.build(batch).await;
            let outcome = match self.publisher.publish_all(&events).await {
                Ok(o) => o,
                Err(e) => {
                    self.release(&fresh[at..]);
                    return Err(e.into());
                }
            };
            for c in batch {
                target.seen().insert(&c.id.key, c.id.t);
            }
            if let Err(e) = target.commit(batch, &events, &outcome).await {
                // This batch is in the stream (a retry is de-duplicated by its ids); the
                // later ones were never published: free them for the retry.
                self.release(&fresh[end..]);
                return Err(e);
            }
            out.published += outcome.stored;
            out.duplicates += outcome.duplicates;
            at = end;
            if shutdown.is_fired() && at < fresh.len() {
                self.release(&fresh[at..]);
                out.stopped = true;
                break;
            }
        }
        Ok(out)
    }

    fn release<I>(&self, rest: &[Pending<I>]) {
        if let Some(index) = self.index {
            for c in rest {
                index.release(&c.id.key, c.id.t);
            }
        }
    }
}
