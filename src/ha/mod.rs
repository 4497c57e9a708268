//! `[ha]`: several instances with one config share its sources. Each source is polled by
//! the one instance holding its lease in the lease bucket ([`lease`]); which instance that
//! should be is computed alike everywhere from the instances alive ([`assign`]).
//!
//! The [`Coordinator`] task of each instance, every third of the lease TTL (and at once when
//! the bucket changes: a lease released, an instance gone):
//! 1. renews its heartbeat and every lease it holds (compare-and-set: a lease someone else
//!    took is lost at once; one not renewed before its [`Deadline`] is lost too),
//! 2. reads the bucket, computes the assignment, and takes the free leases of its sources
//!    (the scheduler starts them under the lease's deadline),
//! 3. gives up, at a safe point, the sources now assigned to another live instance: the
//!    scheduler stops the source (its cursor written), then the lease is deleted, and the
//!    new holder, watching the bucket, takes it within a round trip.
//!
//! Fencing: a source's task runs under its lease's deadline (`Shutdown::until`): the pipeline
//! checks it before every batch, so an instance paused past its lease publishes nothing when
//! it wakes, before the coordinator has even run. The cursor's compare-and-set refuses a
//! write that raced a new holder's.

pub mod assign;
pub mod lease;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::shutdown::{Deadline, Shutdown};
use crate::source::SourceSpec;
use crate::telemetry::{self, Telemetry};
use lease::{Holder, LeaseBucket, Written, instance_key, lease_key};

/// What the coordinator asks of the scheduler.
#[derive(Debug)]
pub enum Order {
    /// Poll this source, stopping when `deadline` passes (the lease's validity).
    Start {
        spec: SourceSpec,
        deadline: Deadline,
    },
    /// Stop polling it; answer on `done` once its task has ended (its cursor written).
    Stop {
        spec: SourceSpec,
        done: oneshot::Sender<()>,
    },
}

enum Ctl {
    Sources(Vec<SourceSpec>),
    Release(oneshot::Sender<()>),
}

/// The scheduler's handle on the coordinator task.
pub struct Ha {
    /// The orders to carry out, in order.
    pub orders: mpsc::UnboundedReceiver<Order>,
    ctl: mpsc::UnboundedSender<Ctl>,
    task: tokio::task::JoinHandle<()>,
    /// How many leases the coordinator holds.
    held: HeldLeases,
}

/// How many leases this instance holds, as the coordinator last changed them; cheap to
/// clone (a standby probe asks it).
#[derive(Clone, Debug, Default)]
pub struct HeldLeases(Arc<AtomicUsize>);

impl HeldLeases {
    /// Whether this instance holds any lease.
    pub fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }

    fn set(&self, n: usize) {
        self.0.store(n, Ordering::Relaxed);
    }
}

impl Ha {
    /// Starts the coordinator of `instance` over `sources`. It stops acquiring once
    /// `shutdown` fires, and keeps renewing what it holds until [`Ha::release_all`].
    pub fn start(
        bucket: LeaseBucket,
        instance: String,
        ttl: Duration,
        sources: Vec<SourceSpec>,
        telemetry: Telemetry,
        shutdown: Shutdown,
    ) -> Ha {
        let (orders_tx, orders) = mpsc::unbounded_channel();
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let held = HeldLeases::default();
        let c = Coordinator {
            bucket,
            holder: Holder {
                instance,
                since: Utc::now(),
                nonce: rand::random::<u64>().max(1),
                sources: Some(assign::fingerprint(&sources)),
            },
            ttl,
            sources,
            heartbeat: 0,
            held: BTreeMap::new(),
            generation: 0,
            orders: orders_tx,
            telemetry,
            instances: Vec::new(),
            holders: BTreeMap::new(),
            drift: None,
            shutdown,
            held_count: held.clone(),
        };
        Ha {
            orders,
            ctl,
            task: tokio::spawn(c.run(ctl_rx)),
            held,
        }
    }

    /// The count of leases held here, for whoever must know whether this instance is a
    /// standby.
    pub fn held_leases(&self) -> HeldLeases {
        self.held.clone()
    }

    /// The configured sources changed (a reload).
    pub fn set_sources(&self, sources: Vec<SourceSpec>) {
        let _ = self.ctl.send(Ctl::Sources(sources));
    }

    /// Deletes the heartbeat and every lease held (after the scheduler stopped every
    /// source), so the other instances take the sources at once; waits at most `within`.
    pub async fn release_all(self, within: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.ctl.send(Ctl::Release(tx)).is_ok() {
            let _ = tokio::time::timeout(within, rx).await;
        }
        self.task.abort();
    }
}

/// A lease this instance holds.
struct Held {
    /// Its value: this instance (and process), since it took the lease.
    value: Holder,
    revision: u64,
    deadline: Deadline,
    /// Being stopped for a release (renewed until its task has ended).
    releasing: bool,
    /// Which taking of the lease this is: a release begun for an earlier one (since lost
    /// and taken again) must not delete this one.
    generation: u64,
}

struct Coordinator {
    bucket: LeaseBucket,
    /// The heartbeat's value; its nonce tells this process from another of the same name.
    holder: Holder,
    ttl: Duration,
    sources: Vec<SourceSpec>,
    /// The heartbeat's revision (0: not written).
    heartbeat: u64,
    held: BTreeMap<SourceSpec, Held>,
    /// The last [`Held::generation`] given out.
    generation: u64,
    orders: mpsc::UnboundedSender<Order>,
    telemetry: Telemetry,
    /// The instances alive at the last round (for the log line when they change).
    instances: Vec<String>,
    /// Who held each source's lease at the last round (named when it expires under them).
    holders: BTreeMap<SourceSpec, String>,
    /// The instances last reported with another source list than this one's.
    drift: Option<Vec<String>>,
    shutdown: Shutdown,
    /// `held`'s size, shared with [`Ha::held_leases`].
    held_count: HeldLeases,
}

/// What the watch of the bucket reports: something was deleted or a new key appeared.
type Changes = std::pin::Pin<Box<dyn futures::Stream<Item = ()> + Send>>;

/// A release under way: its source and the generation of the lease it releases.
type Releasing = std::pin::Pin<Box<dyn Future<Output = (SourceSpec, u64)> + Send>>;

impl Coordinator {
    /// How long a renewed lease is trusted here: three quarters of the TTL from the moment
    /// the renewal was sent (the server counts from when it stored it, later), leaving a
    /// quarter for a batch checked just before it to reach the stream.
    fn validity(&self) -> Duration {
        self.ttl * 3 / 4
    }

    async fn run(mut self, mut ctl: mpsc::UnboundedReceiver<Ctl>) {
        // Renewals every third of the TTL. Where keys expire by the bucket's age (2.10) no
        // marker announces an expiry, so the bucket is looked at twice as often between.
        let looks = if self.bucket.per_key_ttl() { 1 } else { 2 };
        let mut tick = tokio::time::interval(self.ttl / (3 * looks));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u32 = 0;
        let mut stopping: FuturesUnordered<Releasing> = FuturesUnordered::new();
        let mut changes = self.watch().await;
        loop {
            // Renewals on the ticks only: a round woken by the bucket looks and acts.
            let renew = tokio::select! {
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    ticks % looks == 1 || looks == 1
                }
                c = ctl.recv() => match c {
                    Some(Ctl::Sources(s)) => {
                        self.holder.sources = Some(assign::fingerprint(&s));
                        self.sources = s;
                        false
                    }
                    Some(Ctl::Release(done)) => {
                        self.release_all().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.release_all().await;
                        return;
                    }
                },
                Some((spec, generation)) = stopping.next() => {
                    self.released(&spec, generation, "rebalance").await;
                    continue;
                }
                c = changes.next() => {
                    if c.is_none() {
                        // The watch ended (NATS went away, or it could not be had).
                        changes = self.watch().await;
                    }
                    // A burst of changes (several leases released at once) is one round.
                    while let Some(Some(())) = changes.next().now_or_never() {}
                    false
                }
            };
            for (spec, generation, done) in self.round(renew).await {
                stopping.push(Box::pin(async move {
                    let _ = done.await;
                    (spec, generation)
                }));
            }
        }
    }

    /// A stream that yields when a key is deleted, expires or appears (so a released lease
    /// or a new instance is acted on at once, not at the next tick). When it cannot be had,
    /// one that yields once a TTL later and ends (the loop then watches again).
    async fn watch(&self) -> Changes {
        match self.bucket.watch_changes().await {
            Ok(s) => s,
            Err(e) => {
                self.telemetry
                    .emit(telemetry::LeaseBucketFailed { error: &e });
                let later = self.ttl;
                Box::pin(futures::stream::once(tokio::time::sleep(later)))
            }
        }
    }

    /// One round (see the module doc), renewing first when `renew`; returns the releases
    /// begun, to await.
    async fn round(&mut self, renew: bool) -> Vec<(SourceSpec, u64, oneshot::Receiver<()>)> {
        if renew || self.heartbeat == 0 {
            self.renew().await;
        }
        // Whatever the round: a lease past its deadline is lost (its task has stopped).
        let passed: Vec<SourceSpec> = self
            .held
            .iter()
            .filter(|(_, h)| h.deadline.passed())
            .map(|(s, _)| s.clone())
            .collect();
        self.lose(
            passed
                .into_iter()
                .map(|s| (s, "not renewed before its deadline".to_string()))
                .collect(),
        );
        let view = match self.bucket.view(self.ttl / 4).await {
            Ok(v) => v,
            Err(e) => {
                self.telemetry
                    .emit(telemetry::LeaseBucketFailed { error: &e });
                return Vec::new();
            }
        };
        let mut alive: Vec<String> = view.instances.keys().cloned().collect();
        if self.heartbeat > 0 && !alive.contains(&self.holder.instance) {
            alive.push(self.holder.instance.clone());
        }
        alive.sort();
        if alive != self.instances {
            self.telemetry
                .emit(telemetry::InstancesChanged { instances: &alive });
            self.instances = alive.clone();
        }
        self.report_drift(&view);
        // Until its own heartbeat is stored, an instance takes nothing: the others do not
        // count it yet and would assign its sources elsewhere.
        if self.heartbeat == 0 {
            return Vec::new();
        }
        let current: BTreeMap<SourceSpec, String> = view
            .leases
            .iter()
            .map(|(s, e)| (s.clone(), e.holder.instance.clone()))
            .collect();
        let plan = assign::assign(&self.sources, &alive, &current);
        let mine: Vec<SourceSpec> = plan
            .get(&self.holder.instance)
            .map(|v| v.iter().map(|s| (*s).clone()).collect())
            .unwrap_or_default();
        if !self.shutdown.is_fired() {
            for spec in &mine {
                if self.held.contains_key(spec) {
                    continue;
                }
                self.take(spec, view.leases.get(spec)).await;
            }
        }
        self.holders = current;
        // Sources assigned elsewhere (or no longer configured): stopped, then released.
        let mut releasing = Vec::new();
        for (spec, held) in self.held.iter_mut() {
            if held.releasing || mine.contains(spec) {
                continue;
            }
            held.releasing = true;
            let (done, wait) = oneshot::channel();
            let _ = self.orders.send(Order::Stop {
                spec: spec.clone(),
                done,
            });
            releasing.push((spec.clone(), held.generation, wait));
        }
        releasing
    }

    /// Takes `spec`'s lease if it is free (`current` is its entry in this round's view) or
    /// still this process's own (a renewal whose answer was lost), and orders its start.
    async fn take(&mut self, spec: &SourceSpec, current: Option<&lease::Entry>) {
        let sent = Instant::now();
        let written = match current {
            None => {
                let value = Holder {
                    instance: self.holder.instance.clone(),
                    since: Utc::now(),
                    nonce: self.holder.nonce,
                    sources: None,
                };
                self.bucket
                    .create(&lease_key(spec), &value)
                    .await
                    .map(|w| (w, value))
            }
            // This process's own (same name and nonce): a lease it gave up for lost whose
            // renewal then reached the server. Another process of the same name (a restart
            // after a kill, or a twin) waits for it to expire.
            Some(e) if self.is_mine(&e.holder) => self
                .bucket
                .write(&lease_key(spec), &e.holder, e.revision)
                .await
                .map(|w| (w, e.holder.clone())),
            Some(_) => return,
        };
        match written {
            Ok((Written::At(revision), value)) => {
                let deadline = Deadline::at(sent + self.validity());
                let after = self
                    .holders
                    .get(spec)
                    .filter(|h| **h != self.holder.instance)
                    .cloned();
                self.telemetry.emit(telemetry::LeaseAcquired {
                    source: spec,
                    instance: &self.holder.instance,
                    after: after.as_deref(),
                });
                self.generation += 1;
                self.held.insert(
                    spec.clone(),
                    Held {
                        value,
                        revision,
                        deadline: deadline.clone(),
                        releasing: false,
                        generation: self.generation,
                    },
                );
                self.held_count.set(self.held.len());
                let _ = self.orders.send(Order::Start {
                    spec: spec.clone(),
                    deadline,
                });
            }
            Ok((Written::Taken, _)) => {}
            Err(e) => self
                .telemetry
                .emit(telemetry::LeaseBucketFailed { error: &e }),
        }
    }

    /// Whether `h` was written by this process.
    fn is_mine(&self, h: &Holder) -> bool {
        h.instance == self.holder.instance && h.nonce == self.holder.nonce
    }

    /// Warns when live instances run with another source list (a reload that failed on one,
    /// a config file not updated everywhere): a source only some of them know may go
    /// unpolled, since each computes the assignment from its own list.
    fn report_drift(&mut self, view: &lease::View) {
        let mut other: Vec<String> = view
            .instances
            .values()
            .filter(|e| e.holder.sources.is_some() && e.holder.sources != self.holder.sources)
            .map(|e| e.holder.instance.clone())
            .collect();
        other.sort();
        let now = (!other.is_empty()).then_some(other);
        if now != self.drift {
            if let Some(other) = &now {
                self.telemetry
                    .emit(telemetry::SourcesDiffer { instances: other });
            }
            self.drift = now;
        }
    }

    /// Renews the heartbeat and every lease held (at once); loses those taken by another
    /// process or past their deadline.
    async fn renew(&mut self) {
        let key = instance_key(&self.holder.instance);
        let heartbeat = match self
            .bucket
            .write_own(&key, &self.holder, self.heartbeat)
            .await
        {
            // Expired (a pause, an outage): written anew, unless another process holds it.
            Ok(Written::Taken) => match self.bucket.create(&key, &self.holder).await {
                Ok(Written::Taken) => Ok(None),
                other => other.map(Some),
            },
            other => other.map(Some),
        };
        match heartbeat {
            Ok(Some(Written::At(rev))) => self.heartbeat = rev,
            Ok(_) => {
                // Our name's key holds another process's heartbeat: two share a name.
                self.heartbeat = 0;
                self.telemetry.emit(telemetry::LeaseBucketFailed {
                    error: &format!(
                        "another process writes the heartbeat of {:?}: give each instance its \
                         own ha.instance",
                        self.holder.instance
                    ),
                });
            }
            Err(e) => self
                .telemetry
                .emit(telemetry::LeaseBucketFailed { error: &e }),
        }
        let validity = self.validity();
        let bucket = &self.bucket;
        let renewals = self.held.iter().map(|(spec, held)| async move {
            let sent = Instant::now();
            let r = bucket
                .write_own(&lease_key(spec), &held.value, held.revision)
                .await;
            (spec.clone(), sent, r)
        });
        let results = futures::future::join_all(renewals).await;
        let mut lost: Vec<(SourceSpec, String)> = Vec::new();
        for (spec, sent, result) in results {
            let Some(held) = self.held.get_mut(&spec) else {
                continue;
            };
            match result {
                Ok(Written::At(rev)) if !held.deadline.passed() => {
                    held.revision = rev;
                    held.deadline.move_to(sent + validity);
                }
                Ok(Written::At(_)) => {
                    // Stored, but after this instance stopped trusting it: its task has
                    // stopped; the next round takes it again (it is still this process's).
                    lost.push((spec, "not renewed before its deadline".into()));
                }
                Ok(Written::Taken) => lost.push((spec, "another instance holds it now".into())),
                Err(e) if held.deadline.passed() => {
                    lost.push((spec, format!("not renewed in time: {e}")))
                }
                Err(_) => {}
            }
        }
        self.lose(lost);
    }

    /// Forgets these leases as lost: their deadlines expire (their tasks stop at once) and
    /// the scheduler is told to stop them.
    fn lose(&mut self, lost: Vec<(SourceSpec, String)>) {
        for (spec, reason) in lost {
            if let Some(held) = self.held.remove(&spec) {
                self.held_count.set(self.held.len());
                held.deadline.expire();
                self.telemetry.emit(telemetry::LeaseLost {
                    source: &spec,
                    reason: &reason,
                });
                if !held.releasing {
                    let (done, _) = oneshot::channel();
                    let _ = self.orders.send(Order::Stop { spec, done });
                }
            }
        }
    }

    /// A release's source has stopped: delete its lease, unless it was lost meanwhile (and
    /// maybe taken again: another generation, left alone).
    async fn released(&mut self, spec: &SourceSpec, generation: u64, why: &'static str) {
        if self
            .held
            .get(spec)
            .is_none_or(|h| h.generation != generation)
        {
            return;
        }
        let Some(held) = self.held.remove(spec) else {
            return;
        };
        self.held_count.set(self.held.len());
        held.deadline.expire();
        match self
            .delete_own(&lease_key(spec), &held.value, held.revision)
            .await
        {
            false => self.telemetry.emit(telemetry::LeaseLost {
                source: spec,
                reason: &"another instance held it when it was to be released",
            }),
            true => self
                .telemetry
                .emit(telemetry::LeaseReleased { source: spec, why }),
        }
    }

    /// Deletes a key this process wrote, at `revision` or (an answer lost) at the revision
    /// it has now if its value is still ours. A failure is logged: the key expires anyway.
    /// False when another process holds the key now.
    async fn delete_own(&self, key: &str, value: &Holder, revision: u64) -> bool {
        let r = match self.bucket.delete(key, revision).await {
            Ok(Written::Taken) => match self.bucket.read(key).await {
                Ok(Some(e)) if e.holder.same_writer(value) => {
                    self.bucket.delete(key, e.revision).await
                }
                other => other.map(|_| Written::Taken),
            },
            other => other,
        };
        match r {
            Ok(Written::At(_)) => true,
            Ok(Written::Taken) => false,
            Err(e) => {
                self.telemetry
                    .emit(telemetry::LeaseBucketFailed { error: &e });
                true
            }
        }
    }

    /// At shutdown (every source stopped): the heartbeat first (so no instance assigns the
    /// freed sources back to this one), then every lease at once.
    async fn release_all(&mut self) {
        if self.heartbeat > 0 {
            let key = instance_key(&self.holder.instance);
            let _ = self.delete_own(&key, &self.holder, self.heartbeat).await;
            self.heartbeat = 0;
        }
        let held = std::mem::take(&mut self.held);
        self.held_count.set(0);
        let this = &*self;
        futures::future::join_all(held.iter().map(|(spec, h)| async move {
            h.deadline.expire();
            if this
                .delete_own(&lease_key(spec), &h.value, h.revision)
                .await
            {
                this.telemetry.emit(telemetry::LeaseReleased {
                    source: spec,
                    why: "shutdown",
                });
            } else {
                this.telemetry.emit(telemetry::LeaseLost {
                    source: spec,
                    reason: &"another instance held it at shutdown",
                });
            }
        }))
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HaConfig;

    const TTL: Duration = Duration::from_secs(2);

    async fn bucket() -> (nats_harness::LocalNats, tempfile::TempDir, LeaseBucket) {
        let (server, dir, client) = crate::nats::test_server().await;
        let version = client.server_info().version;
        let js = crate::nats::jetstream(client);
        let ha = HaConfig {
            enabled: true,
            lease_ttl: TTL,
            ..HaConfig::default()
        };
        let b = LeaseBucket::open(&js, &ha, 1, &version)
            .await
            .expect("bucket");
        (server, dir, b)
    }

    /// A coordinator, and the trigger of its shutdown (dropping it would fire it).
    fn start(
        bucket: &LeaseBucket,
        name: &str,
        sources: &[SourceSpec],
    ) -> (Ha, crate::shutdown::Trigger) {
        let (trigger, shutdown) = crate::shutdown::channel();
        let ha = Ha::start(
            bucket.clone(),
            name.into(),
            TTL,
            sources.to_vec(),
            Telemetry::new(),
            shutdown,
        );
        (ha, trigger)
    }

    async fn started(ha: &mut Ha) -> SourceSpec {
        match tokio::time::timeout(Duration::from_secs(10), ha.orders.recv()).await {
            Ok(Some(Order::Start { spec, .. })) => spec,
            other => panic!("expected a start, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_renewal_whose_answer_was_lost_keeps_the_lease() {
        let (_server, _dir, b) = bucket().await;
        let spec = SourceSpec::org("acme").unwrap();
        let (mut ha, _run) = start(&b, "one", std::slice::from_ref(&spec));
        assert_eq!(started(&mut ha).await, spec);
        // The coordinator's own value written once more behind its back: its next renewal
        // expects the older revision, as if the answer to its last write had been lost.
        let key = lease_key(&spec);
        let e = b.read(&key).await.expect("read").expect("held");
        let Written::At(moved) = b.write(&key, &e.holder, e.revision).await.expect("write") else {
            panic!("rewrite refused");
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = b.read(&key).await.expect("read").expect("still held");
            if now.revision > moved {
                assert!(
                    now.holder.same_writer(&e.holder),
                    "renewed by the same process"
                );
                break;
            }
            assert!(Instant::now() < deadline, "no renewal after the rewrite");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            ha.orders.try_recv().is_err(),
            "no stop: a lost answer is not a lost lease"
        );
        ha.release_all(Duration::from_secs(2)).await;
        assert!(b.read(&key).await.expect("read").is_none(), "released");
    }

    #[tokio::test]
    async fn a_second_process_with_the_same_name_takes_nothing_of_the_first() {
        let (_server, _dir, b) = bucket().await;
        let spec = SourceSpec::org("acme").unwrap();
        let (mut first, _run1) = start(&b, "twin", std::slice::from_ref(&spec));
        assert_eq!(started(&mut first).await, spec);
        let (mut second, _run2) = start(&b, "twin", std::slice::from_ref(&spec));
        // Three TTLs of its rounds: it never starts the source (it cannot even write its
        // heartbeat, which the first holds).
        let got = tokio::time::timeout(TTL * 3, second.orders.recv()).await;
        assert!(got.is_err(), "the twin took something: {got:?}");
        assert!(first.orders.try_recv().is_err(), "the first kept its lease");
        first.release_all(Duration::from_secs(2)).await;
        // Now free: the second takes it.
        assert_eq!(started(&mut second).await, spec);
        second.release_all(Duration::from_secs(2)).await;
    }
}
