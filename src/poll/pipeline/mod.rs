//! The one publish pipeline: feed polls, repository kinds and backfill all publish through it,
//! with what they share: the [`Context`] (client, publisher, bucket, settings), the
//! process-wide cross-feed index ([`RecentIndex`]), the issue cache of `enrich = true`
//! ([`enrich::IssueCache`]), the webhook-shaped events built beside each action's own
//! ([`hooks`], `webhooks = true`), which source publishes which repository ([`Owners`]), the
//! backoff of repository kinds that keep failing ([`crate::retry::SkipAfterFailures`]), and why a poll does not finish
//! ([`PollError`]).
//!
//! Given candidates sorted oldest first, it
//! 1. drops those whose identity the target already holds (its cursor's window, a kind's
//!    window, a backfill day's ledger),
//! 2. reserves the rest in the process-wide cross-feed index (when the target uses it); a
//!    candidate another source already published is remembered and not published,
//! 3. publishes them in pipelined batches (a batch NATS fails is tried again, with the same
//!    ids, for up to [`PUBLISH_RETRY`]: an election) and, after every acknowledged batch,
//!    records the batch's identities in the target and lets the target write its state
//!    (compare-and-set),
//! 4. stops before any batch at shutdown or when its lease may be gone (`[ha]`), and on any
//!    failure releases the reservations of what was not acknowledged, so that the retry
//!    publishes it.
//!
//! A crash between a batch's acks and its state write re-publishes at most that batch; its
//! ids are derived from the actions, so JetStream's duplicate window absorbs the repeat.

pub mod context;
pub mod dedup;
pub mod enrich;
pub mod hooks;
pub mod owners;

pub use context::{Context, PollError};
pub use dedup::RecentIndex;
pub use owners::Owners;

use crate::event::Event;
use crate::nats::publish::{BatchOutcome, Publisher};
use crate::shutdown::Shutdown;
use crate::store::cursor::{Identity, SeenSet};

/// Events per pipelined batch in a run: all are sent before any acknowledgement is awaited,
/// and the cursor is written after each batch (so a kill re-publishes at most one).
pub const BATCH: usize = 512;

/// How long a batch's publishing is tried again when NATS fails it (see
/// [`Pipeline::run`]): longer than a stream leader's election.
pub const PUBLISH_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// One candidate: its identity and what its event is built from.
pub struct Pending<T> {
    pub id: Identity,
    pub item: T,
}

/// Feed rows as candidates, oldest first (by second, then row id), each with the identity
/// its event's id is made of: what feed polls and backfill days hand to [`Pipeline::run`].
pub fn feed_candidates(
    mut rows: Vec<crate::gitea::ActivityRow>,
) -> Vec<Pending<crate::gitea::ActivityRow>> {
    rows.sort_by_key(|r| (r.created_unix(), r.activity.id));
    rows.into_iter()
        .map(|mut row| Pending {
            id: Identity {
                key: crate::event::identity_key(&row.activity),
                t: row.created_unix(),
                repeatable: crate::event::is_repeatable(&row.activity),
            },
            item: {
                // Decoded for the identity; a day of candidates waits for its batches, and
                // its event is built from the row's JSON.
                row.activity.content.forget_decoded();
                row
            },
        })
        .collect()
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
    /// Who publishes, for logs and metrics (a source's name, or `backfill`).
    pub source: &'a str,
    /// Where events cut to fit `max_payload` (or too large even so) are told.
    pub telemetry: &'a crate::telemetry::Telemetry,
    /// `None`: no cross-feed matching (backfill, whose ledgers are shared by every source).
    pub index: Option<&'a RecentIndex>,
    /// The domain of users' placeholder e-mail addresses: every user object is published as
    /// Gitea's webhooks show it (`event::hook::users`).
    pub no_reply: &'a str,
    pub batch: usize,
    /// Who reserves in the index (see [`owner_tag`]); 0 for a pipeline without an owner.
    pub owner: u64,
}

/// The index owner tag of a source (or of a repository kind's reader): its name, hashed.
pub fn owner_tag(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    // 0 is "seeded, nobody's": never a source's tag.
    h.finish().max(1)
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
                && !index.reserve_as(self.owner, &c.id.key, c.id.t, c.id.repeatable)
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
        // Each batch is taken off the front and dropped once committed: a day of rows is
        // let go batch by batch as it is published, not held until its last batch.
        while !fresh.is_empty() {
            // Before every batch: shutdown, or (under a lease) a lease this process may no
            // longer hold: a fenced-out holder publishes nothing more.
            if shutdown.is_fired() {
                self.release(&fresh);
                out.stopped = true;
                break;
            }
            let n = self.batch.max(1).min(fresh.len());
            let batch: Vec<Pending<T::Item>> = fresh.drain(..n).collect();
            let (events, cuts) = self.fit(target.build(&batch).await);
            // Building may have taken a while (enrichment asks Gitea): look again.
            if shutdown.is_fired() {
                self.release(&batch);
                self.release(&fresh);
                out.stopped = true;
                break;
            }
            let outcome = match self.publish_retrying(&events, shutdown).await {
                Ok(o) => o,
                Err(e) => {
                    // This batch may be stored without its ack having arrived: it stays
                    // reserved for this source's retry; the later ones were never sent.
                    self.release(&fresh);
                    if shutdown.lease_passed() {
                        // Fenced out mid-batch: the next holder publishes it (same ids). What
                        // was sent of it may be stored, so it stays reserved, as above.
                        out.stopped = true;
                        break;
                    }
                    return Err(e.into());
                }
            };
            for c in &batch {
                target.seen().insert(&c.id.key, c.id.t);
            }
            // Told once per event: when JetStream stored it (not for a duplicate).
            for (i, cut) in &cuts {
                if outcome.duplicate.get(*i) == Some(&false) {
                    let e = &events[*i];
                    self.telemetry.emit(crate::telemetry::EventCut {
                        source: self.source,
                        id: &e.id,
                        subject: &e.subject,
                        op_type: &e.op_type,
                        from: cut.from,
                        to: cut.to,
                    });
                }
            }
            if let Err(e) = target.commit(&batch, &events, &outcome).await {
                // This batch is in the stream (a retry is de-duplicated by its ids); the
                // later ones were never published: free them for the retry.
                self.release(&fresh);
                return Err(e);
            }
            out.published += outcome.stored;
            out.duplicates += outcome.duplicates;
        }
        Ok(out)
    }

    /// Cuts the events larger than the server's `max_payload` to fit
    /// ([`crate::nats::publish::fit`]); one that cannot be made to fit is left out with a logged
    /// reason (it would otherwise fail its batch at every try and stop its source for good).
    /// Returns the events, and the cuts by index.
    fn fit(&self, events: Vec<Event>) -> (Vec<Event>, Vec<(usize, crate::nats::publish::Cut)>) {
        let limit = self.publisher.max_payload();
        let mut out = Vec::with_capacity(events.len());
        let mut cuts = Vec::new();
        for mut e in events {
            // The one place every event passes: users as Gitea's webhooks show them, not as
            // the token (an admin's) may read them.
            if let Some(shown) =
                crate::event::hook::users::as_webhooks_show(&e.payload, self.no_reply)
            {
                e.payload = bytes::Bytes::from(shown);
            }
            match crate::nats::publish::fit(&mut e, limit) {
                Ok(None) => out.push(e),
                Ok(Some(cut)) => {
                    cuts.push((out.len(), cut));
                    out.push(e);
                }
                Err(error) => self.telemetry.emit(crate::telemetry::EventTooLarge {
                    source: self.source,
                    id: &e.id,
                    subject: &e.subject,
                    op_type: &e.op_type,
                    error: &error,
                }),
            }
        }
        (out, cuts)
    }

    /// Publishes a batch, trying again for up to [`PUBLISH_RETRY`] when NATS fails it (no
    /// stream leader during an election, a server restarting), with the same ids: what a
    /// failed attempt stored anyway comes back as a duplicate. A walk's rows (and a
    /// catch-up's days read ahead) are kept across an election this way, instead of being
    /// read again by the next poll. It gives up at once at shutdown or when the lease may
    /// be gone (`[ha]`).
    async fn publish_retrying(
        &self,
        events: &[Event],
        shutdown: &Shutdown,
    ) -> Result<BatchOutcome, crate::nats::publish::PublishError> {
        let mut retry = crate::retry::RetryWithin::new(PUBLISH_RETRY);
        loop {
            let e = match self.publisher.publish_all(events, shutdown).await {
                Ok(o) => return Ok(o),
                Err(e) => e,
            };
            let failed = format!("publishing a batch failed: {e}");
            if !retry.pause(shutdown, &failed).await {
                return Err(e);
            }
        }
    }

    fn release<I>(&self, rest: &[Pending<I>]) {
        if let Some(index) = self.index {
            for c in rest {
                index.release(&c.id.key, c.id.t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::config::NatsConfig;
    use crate::store::StoreError;

    /// A target that records what the pipeline asked of it; its commit fails on request.
    #[derive(Default)]
    struct Recorder {
        seen: SeenSet,
        /// The ids of each committed batch, in order.
        commits: Vec<Vec<String>>,
        /// Fail the commit of this batch (0-based).
        fail_commit: Option<usize>,
        /// Passed right after the first commit (a lease that ran out while it was under way).
        lease: Option<crate::shutdown::Deadline>,
    }

    impl Target for Recorder {
        type Item = String;

        fn seen(&mut self) -> &mut SeenSet {
            &mut self.seen
        }

        async fn build(&mut self, batch: &[Pending<String>]) -> Vec<Event> {
            batch
                .iter()
                .map(|c| Event {
                    id: c.item.clone(),
                    key: c.id.key.clone(),
                    subject: format!("pipe.t.{}", c.item),
                    payload: Bytes::from(c.item.clone()),
                    created: c.id.t,
                    op_type: "test".into(),
                    headers: Vec::new(),
                    visibility: crate::event::Visibility::Public,
                })
                .collect()
        }

        async fn commit(
            &mut self,
            batch: &[Pending<String>],
            _events: &[Event],
            _outcome: &BatchOutcome,
        ) -> Result<(), PollError> {
            if self.fail_commit == Some(self.commits.len()) {
                return Err(PollError::State(StoreError::Kv(
                    "test: commit refused".into(),
                )));
            }
            self.commits
                .push(batch.iter().map(|c| c.item.clone()).collect());
            if let Some(lease) = &self.lease {
                lease.move_to(std::time::Instant::now());
            }
            Ok(())
        }
    }

    fn pending(n: usize, t0: i64) -> Vec<Pending<String>> {
        (0..n)
            .map(|i| Pending {
                id: Identity {
                    key: format!("k{i}"),
                    t: t0 + i as i64,
                    repeatable: false,
                },
                item: format!("e{i}"),
            })
            .collect()
    }

    async fn publisher() -> (nats_harness::LocalNats, tempfile::TempDir, Publisher) {
        let (server, dir, client) = crate::nats::test_server().await;
        let js = crate::nats::jetstream(client);
        let cfg = NatsConfig {
            stream: "PIPE".into(),
            subject_prefix: "pipe".into(),
            private_stream: "PIPE_PRIVATE".into(),
            private_subject_prefix: "pipe_private".into(),
            duplicate_window: std::time::Duration::from_secs(1),
            ..NatsConfig::default()
        };
        crate::nats::ensure_stream(&js, &cfg).await.expect("stream");
        (server, dir, Publisher::new(js))
    }

    static TELEMETRY: std::sync::LazyLock<crate::telemetry::Telemetry> =
        std::sync::LazyLock::new(crate::telemetry::Telemetry::new);

    /// The pipeline of these tests: batches of two, through `index`.
    fn in_twos<'a>(publisher: &'a Publisher, index: &'a RecentIndex) -> Pipeline<'a> {
        Pipeline {
            publisher,
            source: "test",
            telemetry: &TELEMETRY,
            index: Some(index),
            no_reply: "noreply.localhost",
            batch: 2,
            owner: owner_tag("test"),
        }
    }

    #[tokio::test]
    async fn batches_commit_in_order_and_what_the_target_or_another_source_holds_is_skipped() {
        let (_server, _dir, publisher) = publisher().await;
        let index = RecentIndex::new();
        // Another source published k3 already.
        assert!(index.reserve("k3", 103, false));
        let p = in_twos(&publisher, &index);
        let mut target = Recorder::default();
        target.seen.insert("k0", 100);
        let out = p
            .run(&mut target, pending(6, 100), &Shutdown::never())
            .await
            .expect("run");
        assert_eq!(out.published, 4);
        assert_eq!(out.known, 2);
        assert_eq!(
            target.commits,
            vec![vec!["e1", "e2"], vec!["e4", "e5"]],
            "batches of two, oldest first, after their acks"
        );
        assert!(target.seen.contains(&pending(6, 100)[3].id), "remembered");
        // Run again: everything is known now, nothing is published.
        let out = p
            .run(&mut target, pending(6, 100), &Shutdown::never())
            .await
            .expect("run");
        assert_eq!((out.published, out.known), (0, 6));
    }

    #[tokio::test]
    async fn a_failed_commit_frees_the_later_batches_for_the_retry() {
        let (_server, _dir, publisher) = publisher().await;
        let index = RecentIndex::new();
        let p = in_twos(&publisher, &index);
        let mut target = Recorder {
            fail_commit: Some(1),
            ..Recorder::default()
        };
        let err = p
            .run(&mut target, pending(6, 100), &Shutdown::never())
            .await;
        assert!(err.is_err());
        assert_eq!(target.commits, vec![vec!["e0", "e1"]]);
        // The third batch was never published: its reservations are gone.
        assert!(index.reserve("k4", 104, false));
        assert!(index.reserve("k5", 105, false));
        // The second batch was published (its ids de-duplicate a retry): still reserved.
        assert!(!index.reserve("k2", 102, false));
    }

    #[tokio::test]
    async fn a_run_told_to_stop_publishes_no_batch_and_frees_every_reservation() {
        let (_server, _dir, publisher) = publisher().await;
        let index = RecentIndex::new();
        let p = in_twos(&publisher, &index);
        let (trigger, shutdown) = crate::shutdown::channel();
        trigger.fire();
        let mut target = Recorder::default();
        let out = p
            .run(&mut target, pending(6, 100), &shutdown)
            .await
            .expect("run");
        assert!(out.stopped);
        assert!(
            target.commits.is_empty(),
            "checked before every batch, the first included (a fenced-out lease holder \
             publishes nothing): {:?}",
            target.commits
        );
        assert!(
            index.reserve("k0", 100, false) && index.reserve("k5", 105, false),
            "every reservation is free again"
        );
    }

    #[tokio::test]
    async fn a_batch_is_sent_only_while_the_lease_holds_and_a_sigterm_lets_it_finish() {
        let (_server, _dir, publisher) = publisher().await;
        let events: Vec<Event> = (0..3)
            .map(|i| Event {
                id: format!("fence-{i}"),
                key: format!("k{i}"),
                subject: format!("pipe.t.{i}"),
                payload: Bytes::from("x"),
                created: 100,
                op_type: "test".into(),
                headers: Vec::new(),
                visibility: crate::event::Visibility::Public,
            })
            .collect();
        let (_trigger, shutdown) = crate::shutdown::channel();
        let lease = crate::shutdown::Deadline::after(std::time::Duration::from_secs(60));
        let fenced = shutdown.clone().until(lease.clone());
        lease.expire();
        let e = publisher
            .publish_all(&events, &fenced)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("the lease may be gone"), "{e}");
        // Fired by a SIGTERM but holding its lease (or none): the batch goes out whole.
        let (trigger, stopping) = crate::shutdown::channel();
        trigger.fire();
        let out = publisher
            .publish_all(&events, &stopping)
            .await
            .expect("published");
        assert_eq!(
            (out.stored, out.duplicates),
            (3, 0),
            "nothing of the fenced call was sent"
        );
    }

    #[tokio::test]
    async fn a_lease_that_runs_out_during_a_batch_stops_the_run_before_the_next_one() {
        let (_server, _dir, publisher) = publisher().await;
        let index = RecentIndex::new();
        let p = in_twos(&publisher, &index);
        // No trigger fires: only the lease's deadline passes (a paused or partitioned holder).
        let (_trigger, shutdown) = crate::shutdown::channel();
        let lease = crate::shutdown::Deadline::after(std::time::Duration::from_secs(60));
        let shutdown = shutdown.until(lease.clone());
        let mut target = Recorder {
            lease: Some(lease),
            ..Recorder::default()
        };
        let out = p
            .run(&mut target, pending(6, 100), &shutdown)
            .await
            .expect("run");
        assert!(out.stopped, "fenced out");
        assert_eq!(
            target.commits,
            vec![vec!["e0", "e1"]],
            "only the batch under way"
        );
        assert!(
            index.reserve("k2", 102, false),
            "the rest is free for the next holder"
        );
    }
}
