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
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
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
        let c = Coordinator {
            bucket,
            holder: Holder {
                instance,
                since: Utc::now(),
            },
            ttl,
            sources,
            heartbeat: 0,
            held: BTreeMap::new(),
            orders: orders_tx,
            telemetry,
            instances: Vec::new(),
            holders: BTreeMap::new(),
            shutdown,
        };
        Ha {
            orders,
            ctl,
            task: tokio::spawn(c.run(ctl_rx)),
        }
    }

    /// The configured sources changed (a reload).
    pub fn set_sources(&self, sources: Vec<SourceSpec>) {
        let _ = self.ctl.send(Ctl::Sources(sources));
    }

    /// Deletes every lease held and the heartbeat (after the scheduler stopped every
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
    revision: u64,
    deadline: Deadline,
    /// Being stopped for a release (renewed until its task has ended).
    releasing: bool,
}

struct Coordinator {
    bucket: LeaseBucket,
    holder: Holder,
    ttl: Duration,
    sources: Vec<SourceSpec>,
    /// The heartbeat's revision (0: not written).
    heartbeat: u64,
    held: BTreeMap<SourceSpec, Held>,
    orders: mpsc::UnboundedSender<Order>,
    telemetry: Telemetry,
    /// The instances alive at the last round (for the log line when they change).
    instances: Vec<String>,
    /// Who held each source's lease at the last round (named when it expires under them).
    holders: BTreeMap<SourceSpec, String>,
    shutdown: Shutdown,
}

/// What the watch of the bucket reports: something was deleted or a new key appeared.
type Changes = std::pin::Pin<Box<dyn futures::Stream<Item = ()> + Send>>;

impl Coordinator {
    /// How long a renewed lease is trusted here: three quarters of the TTL from the moment
    /// the renewal was sent (the server counts from when it stored it, later), leaving a
    /// quarter for a batch checked just before it to reach the stream.
    fn validity(&self) -> Duration {
        self.ttl * 3 / 4
    }

    async fn run(mut self, mut ctl: mpsc::UnboundedReceiver<Ctl>) {
        let mut tick = tokio::time::interval(self.ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping: FuturesUnordered<
            std::pin::Pin<Box<dyn Future<Output = SourceSpec> + Send>>,
        > = FuturesUnordered::new();
        let mut changes = self.watch().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                c = ctl.recv() => match c {
                    Some(Ctl::Sources(s)) => self.sources = s,
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
                Some(spec) = stopping.next() => {
                    self.released(&spec, "rebalance").await;
                    continue;
                }
                c = changes.next() => {
                    if c.is_none() {
                        // The watch ended (NATS went away): renewed on the next tick.
                        changes = self.watch().await;
                    }
                }
            }
            for (spec, done) in self.round().await {
                stopping.push(Box::pin(async move {
                    let _ = done.await;
                    spec
                }));
            }
        }
    }

    /// A stream that yields when a key is deleted, expires or appears (so a released lease
    /// or a new instance is acted on at once, not at the next tick); never ends on error.
    async fn watch(&self) -> Changes {
        match self.bucket.watch_changes().await {
            Ok(s) => s,
            Err(e) => {
                self.telemetry
                    .emit(telemetry::LeaseBucketFailed { error: &e });
                Box::pin(futures::stream::pending())
            }
        }
    }

    /// One round (see the module doc); returns the releases begun, to await.
    async fn round(&mut self) -> Vec<(SourceSpec, oneshot::Receiver<()>)> {
        self.renew().await;
        let view = match self.bucket.view().await {
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
                let current = view.leases.get(spec);
                let sent = Instant::now();
                let written = match current {
                    None => self.bucket.create(&lease_key(spec), &self.holder).await,
                    // Ours from before (a renewal that failed for longer than its deadline
                    // and then reached the server, or a restart under a fixed name).
                    Some(e) if e.holder.instance == self.holder.instance => {
                        self.bucket
                            .write(&lease_key(spec), &self.holder, e.revision)
                            .await
                    }
                    Some(_) => continue,
                };
                match written {
                    Ok(Written::At(revision)) => {
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
                        self.held.insert(
                            spec.clone(),
                            Held {
                                revision,
                                deadline: deadline.clone(),
                                releasing: false,
                            },
                        );
                        let _ = self.orders.send(Order::Start {
                            spec: spec.clone(),
                            deadline,
                        });
                    }
                    Ok(Written::Taken) => {}
                    Err(e) => self
                        .telemetry
                        .emit(telemetry::LeaseBucketFailed { error: &e }),
                }
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
            releasing.push((spec.clone(), wait));
        }
        releasing
    }

    /// Renews the heartbeat and every lease held; loses those taken or past their deadline.
    async fn renew(&mut self) {
        let key = instance_key(&self.holder.instance);
        let heartbeat = match self.bucket.write(&key, &self.holder, self.heartbeat).await {
            Ok(Written::Taken) => self.bucket.create(&key, &self.holder).await,
            other => other,
        };
        match heartbeat {
            Ok(Written::At(rev)) => self.heartbeat = rev,
            Ok(Written::Taken) => {
                // Our name's key holds someone else's heartbeat: two instances share a name.
                self.heartbeat = 0;
                self.telemetry.emit(telemetry::LeaseBucketFailed {
                    error: &format!(
                        "another instance writes the heartbeat of {:?}: give each instance its \
                         own ha.instance",
                        self.holder.instance
                    ),
                });
            }
            Err(e) => self
                .telemetry
                .emit(telemetry::LeaseBucketFailed { error: &e }),
        }
        let mut lost: Vec<(SourceSpec, String)> = Vec::new();
        let validity = self.validity();
        for (spec, held) in self.held.iter_mut() {
            let sent = Instant::now();
            match self
                .bucket
                .write(&lease_key(spec), &self.holder, held.revision)
                .await
            {
                Ok(Written::At(rev)) if !held.deadline.passed() => {
                    held.revision = rev;
                    held.deadline.move_to(sent + validity);
                }
                Ok(Written::At(rev)) => {
                    // Stored, but after this instance stopped trusting it: its task has
                    // stopped. Keep the revision: the next round takes it again cleanly.
                    held.revision = rev;
                    lost.push((spec.clone(), "not renewed before its deadline".into()));
                }
                Ok(Written::Taken) => {
                    lost.push((spec.clone(), "another instance holds it now".into()))
                }
                Err(e) if held.deadline.passed() => {
                    lost.push((spec.clone(), format!("not renewed in time: {e}")))
                }
                Err(_) => {}
            }
        }
        for (spec, reason) in lost {
            if let Some(held) = self.held.remove(&spec) {
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

    /// A release's source has stopped: delete its lease (unless lost meanwhile).
    async fn released(&mut self, spec: &SourceSpec, why: &'static str) {
        let Some(held) = self.held.remove(spec) else {
            return;
        };
        held.deadline.expire();
        if let Err(e) = self.bucket.delete(&lease_key(spec), held.revision).await {
            // It expires by itself within the TTL.
            self.telemetry
                .emit(telemetry::LeaseBucketFailed { error: &e });
        }
        self.telemetry
            .emit(telemetry::LeaseReleased { source: spec, why });
    }

    /// At shutdown (every source stopped): every lease, then the heartbeat.
    async fn release_all(&mut self) {
        let specs: Vec<SourceSpec> = self.held.keys().cloned().collect();
        for spec in specs {
            self.released(&spec, "shutdown").await;
        }
        if self.heartbeat > 0 {
            let _ = self
                .bucket
                .delete(&instance_key(&self.holder.instance), self.heartbeat)
                .await;
        }
    }
}
