//! The [`Supervisor`]: owns the run's tasks (one per source, the drains, the background
//! ones) and answers what comes to it, one thing at a time: SIGHUP ([`Supervisor::on_hangup`]),
//! a discovery ([`Supervisor::on_discovered`]), the `[ha]` coordinator's orders
//! ([`Supervisor::on_orders`]), a control request ([`Supervisor::on_control`]); at shutdown
//! it lets every task reach a safe point ([`Supervisor::drain_all`]).

use std::collections::HashMap;
use std::path::PathBuf;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::background;
use super::drain::start_drains;
use super::services::{RunError, Services};
use super::source_task::SourceTask;
use super::{DRAIN, FLUSH, RELEASE};
use crate::config::{Config, Source};
use crate::control::{Answer, Ask, Control, Request, SourceView, State};
use crate::ha::{Ha, Order};
use crate::shutdown::{Deadline, Shutdown, Trigger};
use crate::source::SourceSpec;
use crate::telemetry;

/// A running source task and how to stop it alone.
pub(super) struct Running {
    /// What it polls (a reload restarts it when this changes).
    pub(super) source: Source,
    /// Stops it alone, at its next safe point.
    pub(super) trigger: Trigger,
    /// The task, awaited when it stops.
    pub(super) task: JoinHandle<()>,
    /// Under `[ha]`: its lease's validity (the task stops when it passes).
    pub(super) deadline: Option<Deadline>,
    /// A drain: the source its repository goes to (it runs under that source's lease).
    pub(super) drains_to: Option<SourceSpec>,
}

/// The `all = true` discovery task and the lists it finds.
type Discovery = (mpsc::Receiver<Vec<SourceSpec>>, JoinHandle<()>);

/// The run, once connected: every task it started and what it needs to start more.
pub(super) struct Supervisor {
    /// NATS, Gitea and the shared context every task polls with.
    pub(super) services: Services,
    /// The process-wide shutdown; every task's own stop is a child of it.
    pub(super) shutdown: Shutdown,
    /// The config in force (with the discovered sources, under `all = true`).
    pub(super) config: Config,
    /// The file as last read (its `all` table): a discovery applies to it.
    pub(super) file_config: Config,
    /// Where SIGHUP re-reads the config from; `None`: no reload.
    pub(super) config_path: Option<PathBuf>,
    /// The sources' tasks running here.
    pub(super) running: HashMap<SourceSpec, Running>,
    /// The drains of removed `repo:` sources running here.
    pub(super) draining: HashMap<SourceSpec, Running>,
    /// `[ha]`: sources stopped by the coordinator whose tasks are still ending (true once
    /// ended); a lease taken again meanwhile starts its task after that.
    pub(super) ending: HashMap<SourceSpec, watch::Receiver<bool>>,
    /// Tasks stopped by the control service's reset, and the lease each ran under.
    pub(super) stopped: HashMap<SourceSpec, Option<Deadline>>,
    /// Tasks stopped by a reload that shutdown interrupted: drained with the others.
    pub(super) retired: Vec<JoinHandle<()>>,
    /// `all = true`: the sources last found.
    pub(super) discovered: Vec<SourceSpec>,
    /// `[ha]`: the coordinator, which says which sources run here.
    pub(super) ha: Option<Ha>,
    /// `[control]`: the requests of the NATS micro service.
    control: Option<Control>,
    /// `all = true`: the discovery task and its lists.
    discovery: Option<Discovery>,
    /// SIGHUP, when reloading is possible.
    hup: Hangup,
    /// The watchdog, the pause follower, the prunes, the standby probe: aborted at the end.
    background: Vec<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts what runs from the start: the coordinator under `[ha]` (which starts the
    /// sources as it takes their leases), otherwise every source and the drains the stored
    /// cursors call for; the background tasks; the control service; discovery.
    pub(super) async fn start(
        cfg: Config,
        config_path: Option<PathBuf>,
        services: Services,
        shutdown: &Shutdown,
    ) -> Result<Supervisor, RunError> {
        let telemetry = services.ctx.telemetry.clone();
        let configured: Vec<SourceSpec> = cfg.sources().into_iter().map(|s| s.spec).collect();
        let stored = unhanded(services.ctx.store.list().await?);
        // Under `[ha]` the coordinator says which sources run here (as it takes their
        // leases); otherwise every source does.
        let ha = services.leases.clone().map(|bucket| {
            Ha::start(
                bucket,
                services.instance.clone(),
                cfg.ha.lease_ttl,
                configured.clone(),
                telemetry.clone(),
                shutdown.clone(),
            )
        });
        let mut s = Supervisor {
            hup: Hangup(None),
            services,
            shutdown: shutdown.clone(),
            config: cfg.clone(),
            file_config: cfg.clone(),
            config_path,
            running: HashMap::new(),
            draining: HashMap::new(),
            ending: HashMap::new(),
            stopped: HashMap::new(),
            retired: Vec::new(),
            discovered: Vec::new(),
            ha,
            control: None,
            discovery: None,
            background: Vec::new(),
        };
        if s.ha.is_none() {
            start_drains(
                &s.services,
                &cfg,
                &configured,
                stored,
                &mut s.draining,
                shutdown,
                None,
            );
            for source in cfg.sources() {
                let r = s.start_source(source, None, None);
                s.running.insert(r.source.spec.clone(), r);
            }
        }
        s.background = background::start(
            &s.services,
            &cfg,
            s.ha.as_ref().map(Ha::held_leases),
            shutdown,
        );
        telemetry.emit(telemetry::Ready {
            sources: s.running.len(),
        });
        s.control = s.start_control(&cfg).await;
        s.discovery = cfg.discovery().map(|_| {
            let (tx, rx) = mpsc::channel(1);
            let task = tokio::spawn(background::discovery_loop(
                s.services.ctx.clone(),
                cfg.poll.repos_refresh,
                tx,
                shutdown.clone(),
            ));
            (rx, task)
        });
        s.hup = hangup_signal(s.config_path.is_some(), &s.services.ctx.telemetry);
        Ok(s)
    }

    /// `[control]`: the NATS micro service, answered by `on_control` (the list; a reset's
    /// stop and start). Its pauses are marks in the bucket, which `pause::follow` brings to
    /// every source's task. `None` without it, or when it cannot be had (logged).
    async fn start_control(&self, cfg: &Config) -> Option<Control> {
        if !cfg.control.enabled {
            return None;
        }
        let started = crate::control::service::start(
            &cfg.control,
            self.services.nats.clone(),
            self.services.ctx.clone(),
            self.services.instance.clone(),
            self.shutdown.clone(),
        )
        .await;
        match started {
            Ok(c) => Some(c),
            Err(e) => {
                self.services
                    .ctx
                    .telemetry
                    .emit(telemetry::ControlUnavailable { error: &e });
                None
            }
        }
    }

    /// Answers what comes, one thing at a time, until shutdown.
    pub(super) async fn run(&mut self) {
        loop {
            tokio::select! {
                _ = self.shutdown.wait() => break,
                _ = self.hup.recv() => self.on_hangup().await,
                Some(found) = next_found(&mut self.discovery) => self.on_discovered(found).await,
                Some(order) = next_order(&mut self.ha) => self.on_orders(order).await,
                Some(req) = next_control(&mut self.control) => self.on_control(req).await,
            }
        }
    }

    /// SIGHUP: reads the config file again and applies it.
    async fn on_hangup(&mut self) {
        let Some(path) = &self.config_path else {
            return;
        };
        let loaded = Config::load(path);
        if let Ok(c) = &loaded {
            self.file_config = c.clone();
        }
        let new = loaded.map(|c| c.with_discovered(&self.discovered));
        self.reload(new).await;
    }

    /// `all = true`: a new list of the sources the token sees; applied when it changed.
    async fn on_discovered(&mut self, found: Vec<SourceSpec>) {
        if found == self.discovered {
            return;
        }
        let added: Vec<SourceSpec> = found
            .iter()
            .filter(|s| !self.discovered.contains(s))
            .cloned()
            .collect();
        let gone: Vec<SourceSpec> = self
            .discovered
            .iter()
            .filter(|s| !found.contains(s))
            .cloned()
            .collect();
        self.services
            .ctx
            .telemetry
            .emit(telemetry::SourcesDiscovered {
                added: &added,
                gone: &gone,
            });
        self.discovered = found;
        let new = Ok(self.file_config.with_discovered(&self.discovered));
        self.reload(new).await;
    }

    /// A request of the control service: answered (see [`Supervisor::control_answer`]).
    async fn on_control(&mut self, req: Request) {
        let answer = self.control_answer(req.ask).await;
        let _ = req.reply.send(answer);
    }

    /// Carries out a request of the control service (`[control]`, [`crate::control`]): lists
    /// the sources, stops one's task for a reset (at a safe point, or aborted after
    /// [`DRAIN`]), or starts it again (under the lease's deadline it was stopped with).
    /// Pauses are not asked here: they are marks in the bucket that every source's task
    /// follows ([`crate::poll::pause`]).
    async fn control_answer(&mut self, ask: Ask) -> Answer {
        let configured =
            |spec: &SourceSpec| self.config.sources().into_iter().find(|s| s.spec == *spec);
        match ask {
            Ask::List => Answer::Sources(self.source_views()),
            Ask::Stop(spec) if configured(&spec).is_none() => Answer::Unknown,
            Ask::Stop(spec) => {
                let Some(r) = self.running.remove(&spec) else {
                    return Answer::Conflict("not running here");
                };
                self.services
                    .ctx
                    .telemetry
                    .health
                    .unregister(&spec.to_string());
                r.trigger.fire();
                let mut task = r.task;
                if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
                    task.abort();
                }
                self.stopped.insert(spec, r.deadline);
                Answer::Done
            }
            Ask::Start(spec) => {
                let Some(source) = configured(&spec) else {
                    return Answer::Unknown;
                };
                if self.running.contains_key(&spec) {
                    return Answer::Conflict("running already");
                }
                let Some(deadline) = self.stopped.remove(&spec) else {
                    return Answer::Conflict("not stopped");
                };
                let r = self.start_source(source, deadline, None);
                self.running.insert(spec, r);
                Answer::Done
            }
        }
    }

    /// The configured sources as the control service lists them.
    fn source_views(&self) -> Vec<SourceView> {
        self.config
            .sources()
            .into_iter()
            .map(|s| SourceView {
                state: match (
                    self.services.ctx.pauses.is_paused(&s.spec),
                    self.running.contains_key(&s.spec),
                ) {
                    (true, _) => State::Paused,
                    (false, true) => State::Running,
                    (false, false) => State::Elsewhere,
                },
                source: s.spec.to_string(),
                interval: humantime::format_duration(s.interval).to_string(),
            })
            .collect()
    }

    /// Starts a source's task (under `deadline`, a lease's, if any). With `after`, its first
    /// poll waits until that turns true (an earlier task of the same source has ended).
    pub(super) fn start_source(
        &self,
        source: Source,
        deadline: Option<Deadline>,
        after: Option<watch::Receiver<bool>>,
    ) -> Running {
        let (trigger, shutdown) = self.shutdown.child();
        let shutdown = match &deadline {
            Some(d) => shutdown.until(d.clone()),
            None => shutdown,
        };
        self.services
            .ctx
            .telemetry
            .health
            .register(&source.spec.to_string(), source.interval);
        // A source taken over from another instance polls at once; at start, sources spread.
        let spread = deadline.is_none();
        let (ctx, nats, jitter) = (
            self.services.ctx.clone(),
            self.services.nats.clone(),
            self.config.poll.jitter,
        );
        let polled = source.clone();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            if let Some(mut ended) = after {
                tokio::select! {
                    _ = ended.wait_for(|ended| *ended) => {}
                    _ = stop.wait() => return,
                }
            }
            // Built once the earlier task has ended, as its first poll's state must be.
            SourceTask::new(ctx, polled, nats, jitter, shutdown)
                .run(spread)
                .await
        });
        Running {
            source,
            trigger,
            task,
            deadline,
            drains_to: None,
        }
    }

    /// At shutdown: every task stops at its next safe point (or is aborted after [`DRAIN`]),
    /// then the leases go, the background tasks end and NATS gets a last, bounded flush.
    pub(super) async fn drain_all(self) {
        for r in self.running.values().chain(self.draining.values()) {
            r.trigger.fire();
        }
        let mut tasks: Vec<_> = self
            .running
            .into_values()
            .chain(self.draining.into_values())
            .map(|r| r.task)
            .collect();
        tasks.extend(self.retired);
        let aborts: Vec<tokio::task::AbortHandle> =
            tasks.iter().map(|t| t.abort_handle()).collect();
        let drained = tokio::time::timeout(DRAIN, futures::future::join_all(tasks)).await;
        if drained.is_err() {
            self.services.ctx.telemetry.emit(telemetry::PollsAbandoned);
            // Aborted before their leases go: a new holder must not meet them still running.
            for a in &aborts {
                a.abort();
            }
        }
        // Every source has stopped (its cursor written): the leases go, so that the other
        // instances take the sources now rather than when they expire.
        if let Some(ha) = self.ha {
            ha.release_all(RELEASE).await;
        }
        let discovery_task = self.discovery.map(|(_, task)| task);
        for b in self.background.into_iter().chain(discovery_task) {
            b.abort();
        }
        // Bounded: with NATS down a flush waits for a reconnect that may never come. Every
        // acknowledged batch is already stored; this only speeds up unacknowledged writes.
        let telemetry = &self.services.ctx.telemetry;
        match tokio::time::timeout(FLUSH, self.services.nats.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => telemetry.emit(telemetry::NatsFlushFailed {
                error: Some(&e),
                within: FLUSH,
            }),
            Err(_) => telemetry.emit(telemetry::NatsFlushFailed {
                error: None,
                within: FLUSH,
            }),
        }
    }
}

/// The stored cursors' sources that have not handed their repository over.
pub(super) fn unhanded(list: Vec<(SourceSpec, crate::store::Stored)>) -> Vec<SourceSpec> {
    list.into_iter()
        .filter(|(_, s)| s.cursor.handed_to.is_none())
        .map(|(spec, _)| spec)
        .collect()
}

/// The next order of the `[ha]` coordinator; never, without `[ha]`.
async fn next_order(ha: &mut Option<Ha>) -> Option<Order> {
    match ha {
        Some(ha) => ha.orders.recv().await,
        None => std::future::pending().await,
    }
}

/// The next request of the control service; never, without `[control]`.
async fn next_control(c: &mut Option<Control>) -> Option<Request> {
    match c {
        Some(c) => c.requests.recv().await,
        None => std::future::pending().await,
    }
}

/// The next list of sources found (`all = true`); never, without it.
async fn next_found(d: &mut Option<Discovery>) -> Option<Vec<SourceSpec>> {
    match d {
        Some((rx, _)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// SIGHUP on Unix when reloading is possible; otherwise a stream that never yields.
fn hangup_signal(enabled: bool, telemetry: &telemetry::Telemetry) -> Hangup {
    #[cfg(unix)]
    if enabled {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(s) => return Hangup(Some(s)),
            Err(e) => telemetry.emit(telemetry::SighupUnavailable { error: &e }),
        }
    }
    let _ = enabled;
    Hangup(None)
}

/// SIGHUP, or nothing ever.
struct Hangup(
    #[cfg(unix)] Option<tokio::signal::unix::Signal>,
    #[cfg(not(unix))] Option<()>,
);

impl Hangup {
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = self.0.as_mut() {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    }
}
