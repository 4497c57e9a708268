//! `run`: connect, make sure the stream and bucket exist, then poll every source on its own
//! interval (with jitter), each in its own task, until shutdown. One poll at a time per
//! source; a failing source backs off alone while the others go on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::app::{RunError, Services, SourcePoller, connect, index_keep};
use crate::config::{Config, Source};
use crate::ha::{Ha, Order};
use crate::pipeline::{Context, Owners, PollError};
use crate::shutdown::{self, Deadline, Shutdown, Trigger};
use crate::source::SourceSpec;
use crate::telemetry::{self, Telemetry};

/// The longest a failing source waits before trying again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long running polls get to reach a safe point after shutdown.
const DRAIN: Duration = Duration::from_secs(8);
/// How long the last flush towards NATS may take at shutdown (DRAIN + FLUSH < 10 s).
const FLUSH: Duration = Duration::from_secs(1);
/// How long releasing the leases may take at shutdown (`[ha]`; the unit allows 15 s).
const RELEASE: Duration = Duration::from_secs(2);

/// Polls every configured source until `stop` completes; then lets running polls reach a
/// safe point (cursor written for everything acknowledged) and returns.
pub async fn run(cfg: Config, stop: impl Future<Output = ()>) -> Result<(), RunError> {
    run_with_reload(cfg, None, stop).await
}

/// A running source task and how to stop it alone.
struct Running {
    source: Source,
    trigger: Trigger,
    task: tokio::task::JoinHandle<()>,
    /// Under `[ha]`: its lease's validity (the task stops when it passes).
    deadline: Option<Deadline>,
    /// A drain: the source its repository goes to (it runs under that source's lease).
    drains_to: Option<SourceSpec>,
}

/// Like [`run`]; with `config_path`, SIGHUP re-reads the source list from that file: added
/// sources start, removed ones stop at a safe point, changed ones restart, cursors are kept
/// (they live in the bucket). Other sections need a restart and say so.
pub async fn run_with_reload(
    cfg: Config,
    config_path: Option<PathBuf>,
    stop: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let (trigger, mut shutdown) = shutdown::channel();
    let telemetry = Telemetry::new();
    let work = async {
        // Served from the start: while NATS is not there yet, `/healthz` says the process
        // lives, `/readyz` that it is not ready, `/metrics` what setup tried.
        if let Some(addr) = cfg.http.listen {
            let l = crate::http::bind(addr)
                .await
                .map_err(|e| RunError::Listen(addr, e))?;
            tokio::spawn(crate::http::serve(l, telemetry.clone(), shutdown.clone()));
        }
        let Some(services) = connect(&cfg, &telemetry, &mut shutdown).await? else {
            return Ok(());
        };
        services.ctx.telemetry.emit(telemetry::NatsConnected {
            connected: services.nats.connection_state() == async_nats::connection::State::Connected,
        });
        let mut running: HashMap<SourceSpec, Running> = HashMap::new();
        let mut draining: HashMap<SourceSpec, Running> = HashMap::new();
        let configured: Vec<SourceSpec> = cfg.sources().into_iter().map(|s| s.spec).collect();
        let stored: Vec<SourceSpec> = services
            .ctx
            .store
            .list()
            .await?
            .into_iter()
            .filter(|(_, s)| s.cursor.handed_to.is_none())
            .map(|(spec, _)| spec)
            .collect();
        // Under `[ha]` the coordinator says which sources run here (as it takes their
        // leases); otherwise every source does.
        let mut ha = services.leases.clone().map(|bucket| {
            Ha::start(
                bucket,
                services.instance.clone(),
                cfg.ha.lease_ttl,
                configured.clone(),
                telemetry.clone(),
                shutdown.clone(),
            )
        });
        if ha.is_none() {
            start_drains(
                &services,
                &cfg,
                &configured,
                stored,
                &mut draining,
                &shutdown,
                None,
            );
            for source in cfg.sources() {
                running.insert(
                    source.spec.clone(),
                    start_source(&services, source, cfg.poll.jitter, &shutdown, None, None),
                );
            }
        }
        let background = [
            tokio::spawn(prune_loop(
                services.ctx.clone(),
                cfg.poll.lookback,
                shutdown.clone(),
            )),
            tokio::spawn(watchdog_loop(telemetry.clone(), shutdown.clone())),
            tokio::spawn(crate::pause::follow(
                services.ctx.store.clone(),
                services.ctx.pauses.clone(),
                telemetry.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(ledger_prune_loop(
                services.ctx.clone(),
                crate::nats::jetstream(services.nats.clone()),
                cfg.nats.stream.clone(),
                shutdown.clone(),
            )),
        ];
        let standby_probe = ha
            .as_ref()
            .map(|_| tokio::spawn(standby_probe_loop(services.ctx.clone(), shutdown.clone())));
        services.ctx.telemetry.emit(telemetry::Ready {
            sources: running.len(),
        });
        // `[control]`: the NATS micro service, answered below (the list; a reset's stop and
        // start). Its pauses are marks in the bucket, which `pause::follow` brings to every
        // source's task.
        let mut control = match cfg.control.enabled {
            true => match crate::control::service::start(
                &cfg.control,
                services.nats.clone(),
                services.ctx.clone(),
                services.instance.clone(),
                shutdown.clone(),
            )
            .await
            {
                Ok(c) => Some(c),
                Err(e) => {
                    telemetry.emit(telemetry::ControlUnavailable { error: &e });
                    None
                }
            },
            false => None,
        };
        // Tasks stopped by the control service's reset, and the lease each ran under.
        let mut stopped: HashMap<SourceSpec, Option<Deadline>> = HashMap::new();
        let mut current = cfg.clone();
        // `all = true`: the file as read (its all table) and the sources last found.
        let mut file_cfg = cfg.clone();
        let mut discovered: Vec<SourceSpec> = Vec::new();
        let mut discovery = cfg.discovery().map(|_| {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let task = tokio::spawn(discovery_loop(
                services.ctx.clone(),
                cfg.poll.repos_refresh,
                tx,
                shutdown.clone(),
            ));
            (rx, task)
        });
        let mut hup = hangup_signal(config_path.is_some());
        // Tasks stopped by a reload that shutdown interrupted: drained with the others.
        let mut retired: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        // `[ha]`: sources stopped by the coordinator whose tasks are still ending (true once
        // ended); a lease taken again meanwhile starts its task after that.
        let mut ending: HashMap<SourceSpec, tokio::sync::watch::Receiver<bool>> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = hup.recv() => {
                    if let Some(path) = &config_path {
                        let mut stop = shutdown.clone();
                        let loaded = Config::load(path);
                        if let Ok(c) = &loaded {
                            file_cfg = c.clone();
                        }
                        let new = loaded.map(|c| c.with_discovered(&discovered));
                        reload(new, &mut current, &mut running, &mut draining, &mut retired, &services, ha.as_ref(), &mut stop).await;
                    }
                }
                Some(found) = next_found(&mut discovery) => {
                    if found != discovered {
                        let added: Vec<SourceSpec> = found.iter().filter(|s| !discovered.contains(s)).cloned().collect();
                        let gone: Vec<SourceSpec> = discovered.iter().filter(|s| !found.contains(s)).cloned().collect();
                        services.ctx.telemetry.emit(telemetry::SourcesDiscovered { added: &added, gone: &gone });
                        discovered = found;
                        let mut stop = shutdown.clone();
                        let new = Ok(file_cfg.with_discovered(&discovered));
                        reload(new, &mut current, &mut running, &mut draining, &mut retired, &services, ha.as_ref(), &mut stop).await;
                    }
                }
                Some(order) = next_order(&mut ha) => {
                    // Every order already waiting is carried out together (one read of the
                    // stored cursors for all the sources a failover brings).
                    let mut orders = vec![order];
                    if let Some(ha) = ha.as_mut() {
                        while let Ok(o) = ha.orders.try_recv() {
                            orders.push(o);
                        }
                    }
                    let mut live = Live { running: &mut running, draining: &mut draining, ending: &mut ending };
                    carry_out(orders, &current, &mut live, &services, &shutdown).await;
                }
                Some(req) = next_control(&mut control) => {
                    let answer = control_hook(req.ask, &current, &mut running, &mut stopped, &services, &shutdown).await;
                    let _ = req.reply.send(answer);
                }
            }
        }
        for r in running.values().chain(draining.values()) {
            r.trigger.fire();
        }
        let mut tasks: Vec<_> = running
            .into_values()
            .chain(draining.into_values())
            .map(|r| r.task)
            .collect();
        tasks.append(&mut retired);
        let aborts: Vec<tokio::task::AbortHandle> =
            tasks.iter().map(|t| t.abort_handle()).collect();
        let drained = tokio::time::timeout(DRAIN, futures::future::join_all(tasks)).await;
        if drained.is_err() {
            tracing::warn!(
                "polls did not stop in time; abandoning them (their cursors stay at the last acknowledged batch)"
            );
            // Aborted before their leases go: a new holder must not meet them still running.
            for a in &aborts {
                a.abort();
            }
        }
        // Every source has stopped (its cursor written): the leases go, so that the other
        // instances take the sources now rather than when they expire.
        if let Some(ha) = ha {
            ha.release_all(RELEASE).await;
        }
        let discovery_task = discovery.map(|(_, task)| task);
        for b in background
            .into_iter()
            .chain(standby_probe)
            .chain(discovery_task)
        {
            b.abort();
        }
        // Bounded: with NATS down a flush waits for a reconnect that may never come. Every
        // acknowledged batch is already stored; this only speeds up unacknowledged writes.
        match tokio::time::timeout(FLUSH, services.nats.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!("NATS flush at shutdown: {e}"),
            Err(_) => tracing::debug!("NATS flush at shutdown: no answer within {FLUSH:?}"),
        }
        Ok::<(), RunError>(())
    };
    tokio::pin!(work);
    tokio::pin!(stop);
    tokio::select! {
        r = &mut work => return r,
        _ = &mut stop => {
            telemetry.emit(telemetry::Stopping);
            trigger.fire();
        }
    }
    work.await
}

/// The next order of the `[ha]` coordinator; never, without `[ha]`.
async fn next_order(ha: &mut Option<Ha>) -> Option<Order> {
    match ha {
        Some(ha) => ha.orders.recv().await,
        None => std::future::pending().await,
    }
}

/// The next request of the control service; never, without `[control]`.
async fn next_control(c: &mut Option<crate::control::Control>) -> Option<crate::control::Request> {
    match c {
        Some(c) => c.requests.recv().await,
        None => std::future::pending().await,
    }
}

/// Carries out a request of the control service (`[control]`, [`crate::control`]): lists the
/// sources, stops one's task for a reset (at a safe point, or aborted after [`DRAIN`]), or
/// starts it again (under the lease's deadline it was stopped with). Pauses are not asked
/// here: they are marks in the bucket that every source's task follows ([`crate::pause`]).
async fn control_hook(
    ask: crate::control::Ask,
    current: &Config,
    running: &mut HashMap<SourceSpec, Running>,
    stopped: &mut HashMap<SourceSpec, Option<Deadline>>,
    services: &Services,
    shutdown: &Shutdown,
) -> crate::control::Answer {
    use crate::control::{Answer, Ask, SourceView, State};
    let configured = |spec: &SourceSpec| current.sources().into_iter().find(|s| s.spec == *spec);
    match ask {
        Ask::List => Answer::Sources(
            current
                .sources()
                .into_iter()
                .map(|s| SourceView {
                    state: match (
                        services.ctx.pauses.is_paused(&s.spec),
                        running.contains_key(&s.spec),
                    ) {
                        (true, _) => State::Paused,
                        (false, true) => State::Running,
                        (false, false) => State::Elsewhere,
                    },
                    source: s.spec.to_string(),
                    interval: humantime::format_duration(s.interval).to_string(),
                })
                .collect(),
        ),
        Ask::Stop(spec) if configured(&spec).is_none() => Answer::Unknown,
        Ask::Stop(spec) => {
            let Some(r) = running.remove(&spec) else {
                return Answer::Conflict("not running here");
            };
            services.ctx.telemetry.health.unregister(&spec.to_string());
            r.trigger.fire();
            let mut task = r.task;
            if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
                task.abort();
            }
            stopped.insert(spec, r.deadline);
            Answer::Done
        }
        Ask::Start(spec) => {
            let Some(source) = configured(&spec) else {
                return Answer::Unknown;
            };
            if running.contains_key(&spec) {
                return Answer::Conflict("running already");
            }
            let Some(deadline) = stopped.remove(&spec) else {
                return Answer::Conflict("not stopped");
            };
            let r = start_source(
                services,
                source,
                current.poll.jitter,
                shutdown,
                deadline,
                None,
            );
            running.insert(spec, r);
            Answer::Done
        }
    }
}

/// How long reading the stored cursors may take when leases are taken (for the drains
/// they bring along).
const LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// The tasks of a run that `[ha]`'s orders start and stop.
struct Live<'a> {
    running: &'a mut HashMap<SourceSpec, Running>,
    draining: &'a mut HashMap<SourceSpec, Running>,
    ending: &'a mut HashMap<SourceSpec, tokio::sync::watch::Receiver<bool>>,
}

/// Starts or stops sources as the `[ha]` coordinator says.
/// * Start: an org or user source brings along the drains of removed `repo:` sources it
///   takes over (from cursors a previous config left), run here under its lease; a source
///   whose earlier task is still ending starts once that one has ended.
/// * Stop: fires the source's trigger (and its drains') and answers once the tasks have
///   ended (a safe point), or after [`DRAIN`] with them aborted (their cursors stay at
///   their last acknowledged batch).
async fn carry_out(
    orders: Vec<Order>,
    current: &Config,
    live: &mut Live<'_>,
    services: &Services,
    shutdown: &Shutdown,
) {
    live.ending.retain(|_, ended| !*ended.borrow());
    let owners_taken = orders.iter().any(
        |o| matches!(o, Order::Start { spec, .. } if !matches!(spec, SourceSpec::Repo { .. })),
    );
    let mut stored: Option<Vec<SourceSpec>> = None;
    if owners_taken {
        match tokio::time::timeout(LIST_TIMEOUT, services.ctx.store.list()).await {
            Ok(Ok(list)) => {
                stored = Some(
                    list.into_iter()
                        .filter(|(_, s)| s.cursor.handed_to.is_none())
                        .map(|(spec, _)| spec)
                        .collect(),
                )
            }
            Ok(Err(e)) => tracing::warn!(
                "cannot read the stored cursors for the drains the sources taken here bring \
                 ({e}); none started now"
            ),
            Err(_) => tracing::warn!(
                "the stored cursors did not come within {LIST_TIMEOUT:?}; no drain started now"
            ),
        }
    }
    let configured: Vec<SourceSpec> = current.sources().into_iter().map(|s| s.spec).collect();
    for order in orders {
        match order {
            Order::Start { spec, deadline } => {
                if let Some(r) = live.running.get(&spec) {
                    // A task of an earlier taking that has not been stopped yet is
                    // replaced: it stops, and the new one starts after it.
                    if r.deadline.as_ref().is_some_and(|d| d.same(&deadline)) {
                        continue;
                    }
                    if let Some(r) = live.running.remove(&spec) {
                        let ended = stop_tasks(vec![r], None);
                        live.ending.insert(spec.clone(), ended);
                    }
                }
                let Some(source) = current.sources().into_iter().find(|s| s.spec == spec) else {
                    continue;
                };
                if let Some(candidates) = &stored {
                    live.draining.retain(|_, r| !r.task.is_finished());
                    start_drains(
                        services,
                        current,
                        &configured,
                        candidates.clone(),
                        live.draining,
                        shutdown,
                        Some((&spec, &deadline)),
                    );
                }
                let r = start_source(
                    services,
                    source,
                    current.poll.jitter,
                    shutdown,
                    Some(deadline),
                    live.ending.get(&spec).cloned(),
                );
                live.running.insert(spec, r);
            }
            Order::Stop { spec, done } => {
                let mut stopping = Vec::new();
                if let Some(r) = live.running.remove(&spec) {
                    services.ctx.telemetry.health.unregister(&spec.to_string());
                    stopping.push(r);
                }
                let drains: Vec<SourceSpec> = live
                    .draining
                    .iter()
                    .filter(|(_, r)| r.drains_to.as_ref() == Some(&spec))
                    .map(|(s, _)| s.clone())
                    .collect();
                stopping.extend(drains.iter().filter_map(|s| live.draining.remove(s)));
                let ended = stop_tasks(stopping, Some(done));
                live.ending.insert(spec, ended);
            }
        }
    }
}

/// Fires the tasks' triggers and, in the background, waits for them (aborting those that
/// take longer than [`DRAIN`]); then answers on `done`. The receiver turns true once all
/// have ended.
fn stop_tasks(
    stopping: Vec<Running>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
) -> tokio::sync::watch::Receiver<bool> {
    let (ended, rx) = tokio::sync::watch::channel(false);
    for r in &stopping {
        r.trigger.fire();
    }
    tokio::spawn(async move {
        for r in stopping {
            let mut task = r.task;
            if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
        let _ = ended.send(true);
        if let Some(done) = done {
            let _ = done.send(());
        }
    });
    rx
}

/// Starts a source's task (under `deadline`, a lease's, if any). With `after`, its first
/// poll waits until that turns true (an earlier task of the same source has ended).
fn start_source(
    services: &Services,
    source: Source,
    jitter: f64,
    parent: &Shutdown,
    deadline: Option<Deadline>,
    after: Option<tokio::sync::watch::Receiver<bool>>,
) -> Running {
    let (trigger, shutdown) = parent.child();
    let shutdown = match &deadline {
        Some(d) => shutdown.until(d.clone()),
        None => shutdown,
    };
    services
        .ctx
        .telemetry
        .health
        .register(&source.spec.to_string(), source.interval);
    // A source taken over from another instance polls at once; at start, sources spread.
    let spread = deadline.is_none();
    let polls = source_loop(
        services.ctx.clone(),
        source.clone(),
        services.nats.clone(),
        jitter,
        spread,
        shutdown.clone(),
    );
    let mut stop = shutdown;
    let task = tokio::spawn(async move {
        if let Some(mut ended) = after {
            tokio::select! {
                _ = ended.wait_for(|ended| *ended) => {}
                _ = stop.wait() => return,
            }
        }
        polls.await
    });
    Running {
        source,
        trigger,
        task,
        deadline,
        drains_to: None,
    }
}

/// Starts a drain for each `repo:` source in `candidates` that is not configured and whose
/// repository a configured org (or user) source covers: it is polled until it reaches the
/// head of its feed once more, then its repository is handed over. Until then it keeps
/// publishing its repository (the org skips it), so what it had not reached yet (a source
/// removed while behind) is neither lost nor read by two sources.
fn start_drains(
    services: &Services,
    cfg: &Config,
    configured: &[SourceSpec],
    candidates: Vec<SourceSpec>,
    draining: &mut HashMap<SourceSpec, Running>,
    parent: &Shutdown,
    under: Option<(&SourceSpec, &Deadline)>,
) {
    let mut started = Vec::new();
    for spec in candidates {
        let SourceSpec::Repo { owner, .. } = &spec else {
            continue;
        };
        if configured.contains(&spec) || draining.contains_key(&spec) {
            continue;
        }
        let to = {
            let owners = services
                .ctx
                .owners
                .read()
                .unwrap_or_else(|e| e.into_inner());
            owners.fallback_for(owner, owners.users())
        };
        let Some(to) = to else { continue };
        // Under `[ha]`: only the drains into the source whose lease was just taken.
        if under.is_some_and(|(spec, _)| *spec != to) {
            continue;
        }
        let Some(template) = cfg.sources().into_iter().find(|s| s.spec == to) else {
            continue;
        };
        let source = Source {
            spec: spec.clone(),
            kinds: Vec::new(),
            repos: false,
            enrich: false,
            ..template
        };
        services.ctx.telemetry.emit(telemetry::RepositoryDraining {
            source: &spec,
            to: &to,
        });
        let (trigger, shutdown) = parent.child();
        let deadline = under.map(|(_, d)| d.clone());
        let shutdown = match &deadline {
            Some(d) => shutdown.until(d.clone()),
            None => shutdown,
        };
        let task = tokio::spawn(drain(
            services.ctx.clone(),
            source.clone(),
            to.clone(),
            services.nats.clone(),
            shutdown,
        ));
        started.push(spec.clone());
        draining.insert(
            spec,
            Running {
                source,
                trigger,
                task,
                deadline,
                drains_to: Some(to),
            },
        );
    }
    if !started.is_empty() {
        let mut owners = services
            .ctx
            .owners
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let o = std::mem::take(&mut *owners);
        *owners = o.with_draining(started);
    }
}

/// One drain (see [`start_drains`]): polls until a poll reaches the head with every row
/// proven, or reports a second it cannot prove (held back), then hands the repository over
/// to `to` (which reads it back from this cursor's trailing window, see
/// [`crate::feed::poll::FeedPoller::hand_over`]) and marks the cursor handed over.
async fn drain(
    ctx: Arc<Context>,
    source: Source,
    to: SourceSpec,
    nats: async_nats::Client,
    mut shutdown: Shutdown,
) {
    let spec = source.spec.clone();
    let interval = source.interval;
    let mut poller = SourcePoller::new(ctx.clone(), source);
    let mut wait = Duration::ZERO;
    let mut held = None;
    loop {
        if !shutdown.sleep(wait).await {
            return;
        }
        wait = interval;
        if nats.connection_state() != async_nats::connection::State::Connected {
            continue;
        }
        match poller.poll(&mut shutdown).await {
            Ok(r) if r.stopped => return,
            Ok(r) if r.caught_up => break,
            // A second it cannot prove may stay so (a tie no alignment serves whole, a feed
            // that changes under every read): `to` takes the repository over from this cursor's window,
            // and reads that second again in its own feed.
            Ok(r) if r.held.is_some() => {
                held = r.held;
                break;
            }
            Ok(_) => {}
            Err(e) => ctx.telemetry.emit(telemetry::PollFailed {
                source: &spec,
                reason: e.reason(),
                error: &e,
                retry_in: wait,
            }),
        }
    }
    loop {
        // Under a lease: a drain that lost it hands nothing over (the new holder drains).
        if shutdown.is_fired() {
            return;
        }
        match poller.hand_over(&to, held, &shutdown).await {
            Ok(true) => break,
            // Stopped before `to` recorded it: nothing changed hands.
            Ok(false) => return,
            Err(e) => {
                ctx.telemetry.emit(telemetry::PollFailed {
                    source: &spec,
                    reason: e.reason(),
                    error: &e,
                    retry_in: interval,
                });
                if !shutdown.sleep(interval).await {
                    return;
                }
            }
        }
    }
    ctx.owners
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .drained(&spec);
}

/// SIGHUP on Unix when reloading is possible; otherwise a stream that never yields.
fn hangup_signal(enabled: bool) -> Hangup {
    #[cfg(unix)]
    if enabled {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(s) => return Hangup(Some(s)),
            Err(e) => tracing::warn!("cannot listen for SIGHUP ({e}); reload by restarting"),
        }
    }
    let _ = enabled;
    Hangup(None)
}

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

/// Applies a changed config file (SIGHUP). Sources whose settings changed in any way, and
/// removed ones, are stopped and awaited (each reaches a safe point: its cursor written for
/// everything acknowledged) before the ownership map is updated and new tasks start, so an
/// old and a new task never poll one source at once. A task that does not stop within
/// [`DRAIN`] is abandoned (its cursor stays at its last acknowledged batch). Shutdown during
/// the wait leaves the stopping tasks in `retired` and starts nothing.
// The run's state is handed in piece by piece, as the main loop holds it.
#[allow(clippy::too_many_arguments)]
async fn reload(
    new: Result<Config, crate::config::ConfigError>,
    current: &mut Config,
    running: &mut HashMap<SourceSpec, Running>,
    draining: &mut HashMap<SourceSpec, Running>,
    retired: &mut Vec<tokio::task::JoinHandle<()>>,
    services: &Services,
    ha: Option<&Ha>,
    shutdown: &mut Shutdown,
) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
    let new = match new {
        Ok(c) => c,
        Err(e) => {
            return services
                .ctx
                .telemetry
                .emit(telemetry::ReloadFailed { error: &e });
        }
    };
    if let Err(e) = new.require_sources() {
        return services
            .ctx
            .telemetry
            .emit(telemetry::ReloadFailed { error: &e });
    }
    for (section, changed) in [
        (
            "gitea",
            format!("{:?}", new.gitea) != format!("{:?}", current.gitea),
        ),
        (
            "nats",
            format!("{:?}", new.nats) != format!("{:?}", current.nats),
        ),
        (
            "http",
            format!("{:?}", new.http) != format!("{:?}", current.http),
        ),
        (
            "log",
            format!("{:?}", new.log) != format!("{:?}", current.log),
        ),
    ] {
        if changed {
            services
                .ctx
                .telemetry
                .emit(telemetry::ReloadNeedsRestart { section });
        }
    }
    let wanted: HashMap<SourceSpec, Source> = new
        .sources()
        .into_iter()
        .map(|s| (s.spec.clone(), s))
        .collect();
    let (mut removed, mut changed) = (0, 0);
    let stale: Vec<SourceSpec> = running
        .iter()
        .filter(|(spec, r)| wanted.get(*spec) != Some(&r.source))
        .map(|(spec, _)| spec.clone())
        .collect();
    let mut stopping = Vec::with_capacity(stale.len());
    // Under `[ha]`: the leases of changed sources stay held here; they restart under them.
    let mut leased: HashMap<SourceSpec, Deadline> = HashMap::new();
    // A drained repository configured again: its drain stops first.
    draining.retain(|_, r| !r.task.is_finished());
    let again: Vec<SourceSpec> = draining
        .keys()
        .filter(|spec| wanted.contains_key(*spec))
        .cloned()
        .collect();
    for spec in &again {
        if let Some(r) = draining.remove(spec) {
            r.trigger.fire();
            stopping.push(r.task);
        }
    }
    let removed_specs: Vec<SourceSpec> = stale
        .iter()
        .filter(|spec| !wanted.contains_key(*spec))
        .cloned()
        .collect();
    for spec in stale {
        let Some(r) = running.remove(&spec) else {
            continue;
        };
        // Stops at its next safe point; its cursor stays in the bucket.
        r.trigger.fire();
        if let Some(d) = r.deadline {
            leased.insert(spec.clone(), d);
        }
        services.ctx.telemetry.health.unregister(&spec.to_string());
        if wanted.contains_key(&spec) {
            changed += 1;
        } else {
            removed += 1;
        }
        stopping.push(r.task);
    }
    let drained = tokio::select! {
        r = tokio::time::timeout(DRAIN, futures::future::join_all(stopping.iter_mut())) => r.is_ok(),
        _ = shutdown.wait() => {
            retired.append(&mut stopping);
            return;
        }
    };
    if !drained {
        services.ctx.telemetry.emit(telemetry::ReloadAbandoned {
            tasks: stopping.iter().filter(|t| !t.is_finished()).count(),
        });
        for t in &stopping {
            t.abort();
        }
    }
    {
        let mut owners = services
            .ctx
            .owners
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let still: Vec<SourceSpec> = owners
            .draining()
            .filter(|d| !wanted.contains_key(*d))
            .cloned()
            .collect();
        *owners = Owners::new(wanted.keys()).with_draining(still);
    }
    let configured: Vec<SourceSpec> = wanted.keys().cloned().collect();
    let before: Vec<SourceSpec> = current.sources().into_iter().map(|s| s.spec).collect();
    match ha {
        None => start_drains(
            services,
            &new,
            &configured,
            removed_specs,
            draining,
            shutdown,
            None,
        ),
        // Under `[ha]` every instance sees the same removals; each drain runs where the
        // lease of the source it hands over to is held, under that lease.
        Some(_) => {
            let removed: Vec<SourceSpec> = before
                .iter()
                .filter(|s| !wanted.contains_key(*s))
                .cloned()
                .collect();
            let holders: Vec<(SourceSpec, Deadline)> = running
                .iter()
                .filter_map(|(spec, r)| Some((spec.clone(), r.deadline.clone()?)))
                .collect();
            for (to, deadline) in &holders {
                start_drains(
                    services,
                    &new,
                    &configured,
                    removed.clone(),
                    draining,
                    shutdown,
                    Some((to, deadline)),
                );
            }
        }
    }
    let added = wanted.keys().filter(|s| !before.contains(s)).count();
    if let Some(ha) = ha {
        // New sources start where the coordinator takes their leases; removed ones'
        // leases are released by it.
        ha.set_sources(wanted.keys().cloned().collect());
    }
    for (spec, source) in wanted {
        if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(spec) {
            let deadline = match ha {
                None => None,
                Some(_) => match leased.remove(slot.key()) {
                    Some(d) if !d.passed() => Some(d),
                    _ => continue,
                },
            };
            slot.insert(start_source(
                services,
                source,
                new.poll.jitter,
                shutdown,
                deadline,
                None,
            ));
        }
    }
    *current = new;
    services.ctx.telemetry.emit(telemetry::Reloaded {
        added,
        removed,
        changed,
    });
}

/// Pings the systemd watchdog (when enabled) while progress is made within its interval
/// or no poll runs (see [`crate::health::Health::progress`]).
async fn watchdog_loop(telemetry: Telemetry, mut shutdown: Shutdown) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = period / 3;
    loop {
        if telemetry.health.scheduler_alive(period) {
            telemetry.emit(telemetry::WatchdogPing);
        } else {
            telemetry.emit(telemetry::WatchdogWithheld);
        }
        if !shutdown.sleep(every).await {
            break;
        }
    }
}

/// Polls one source forever (until shutdown). With `spread`, the first poll waits a random
/// part of the interval (at most a second) so that sources started together do not poll
/// in lock-step; without, it polls at once (a source whose lease was just taken over).
pub async fn source_loop(
    ctx: Arc<Context>,
    source: Source,
    nats: async_nats::Client,
    jitter: f64,
    spread: bool,
    mut shutdown: Shutdown,
) {
    let interval = source.interval;
    let telemetry = ctx.telemetry.clone();
    let cadence_ctx = ctx.clone();
    let name = source.spec.to_string();
    let spec = source.spec.clone();
    let pauses = ctx.pauses.clone();
    let mut poller = SourcePoller::new(ctx, source);
    // Idling because of a pause mark (`pause`).
    let mut idle = false;
    let mut failures: u32 = 0;
    let mut wait = match spread {
        true => interval
            .min(Duration::from_secs(1))
            .mul_f64(rand::rng().random_range(0.0..1.0)),
        false => Duration::ZERO,
    };
    'polls: loop {
        // Paused, or the pause marks not read yet: no request until that changes.
        loop {
            let seen = pauses.state(&spec);
            let (may_poll, paused) = seen;
            if may_poll {
                break;
            }
            if paused && !idle {
                idle = true;
                pauses.set_idle(&spec, true);
                telemetry.emit(telemetry::SourcePaused { source: &spec });
            }
            tokio::select! {
                _ = pauses.wait_change(&spec, seen) => {}
                _ = shutdown.wait() => break 'polls,
            }
        }
        if idle {
            idle = false;
            pauses.set_idle(&spec, false);
            telemetry.emit(telemetry::SourceResumed {
                source: &spec,
                interval,
            });
            wait = Duration::ZERO;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => break,
            _ = pauses.wait_paused(&spec) => continue,
        }
        if nats.connection_state() != async_nats::connection::State::Connected {
            telemetry.emit(telemetry::NatsWaiting {
                source: poller.spec(),
            });
            wait = Duration::from_secs(1);
            continue;
        }
        let started = Instant::now();
        telemetry.emit(telemetry::PollStarted {
            source: poller.spec(),
        });
        // A pause during the poll stops it at its next safe point, as a lease's end does.
        let (result, requests) = {
            let (pause_stop, mut poll_shutdown) = shutdown.child();
            let poll = crate::cadence::count_requests(poller.poll(&mut poll_shutdown));
            tokio::pin!(poll);
            tokio::select! {
                r = &mut poll => r,
                _ = pauses.wait_paused(&spec) => {
                    pause_stop.fire();
                    poll.await
                }
            }
        };
        match result {
            Ok(report) => {
                failures = 0;
                telemetry.emit(telemetry::PollCompleted {
                    source: poller.spec(),
                    read: report.read,
                    published: report.published,
                    took: started.elapsed(),
                });
                if report.stopped {
                    // Stopped by a pause: idle at the top; by shutdown (or the lease): end.
                    if shutdown.is_fired() {
                        break;
                    }
                    continue;
                }
                // The source's interval, unless the budget is short (`cadence`).
                let plan = cadence_ctx.cadence.next_wait(
                    &name,
                    interval,
                    requests,
                    report.published,
                    report.days > 0,
                );
                telemetry.emit(telemetry::PollPlanned {
                    source: poller.spec(),
                    wait: plan.wait,
                    interval,
                    active: plan.active,
                    planned_rps: plan.planned_rps,
                });
                wait = with_jitter(plan.wait, jitter);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                wait = with_jitter(retry_delay(interval, failures, &e), jitter);
                match &e {
                    PollError::Gitea(g) if matches!(g.status(), Some(401 | 403 | 404)) => telemetry
                        .emit(telemetry::SourceRefused {
                            source: poller.spec(),
                            reason: e.reason(),
                            error: &e,
                            retry_in: wait,
                        }),
                    _ => telemetry.emit(telemetry::PollFailed {
                        source: poller.spec(),
                        reason: e.reason(),
                        error: &e,
                        retry_in: wait,
                    }),
                }
            }
        }
    }
    if idle {
        pauses.set_idle(&spec, false);
    }
    cadence_ctx.cadence.forget(&name);
}

/// The longest wait after a failure on the NATS side (a publish or cursor write that timed
/// out: an election, a restarting server). Each such attempt already waited for its own
/// timeout, so a longer backoff would only keep the source idle after NATS is back.
const NATS_BACKOFF_CAP: Duration = Duration::from_secs(2);

/// The wait before the next poll after `failures` consecutive failures, the last being
/// `e`: the interval doubled per failure, up to [`MAX_BACKOFF`] for Gitea's errors and to
/// [`NATS_BACKOFF_CAP`] (or the interval, if longer) for NATS's.
fn retry_delay(interval: Duration, failures: u32, e: &PollError) -> Duration {
    let cap = match e {
        PollError::Publish(_) | PollError::State(crate::state::StateError::Kv(_)) => {
            NATS_BACKOFF_CAP.max(interval)
        }
        _ => MAX_BACKOFF.max(interval),
    };
    interval
        .saturating_mul(1 << failures.saturating_sub(1).min(10))
        .min(cap)
}

fn with_jitter(d: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return d;
    }
    d.mul_f64(1.0 + rand::rng().random_range(0.0..jitter))
}

/// The next list of sources found (`all = true`); never, without it.
async fn next_found(
    d: &mut Option<(
        tokio::sync::mpsc::Receiver<Vec<SourceSpec>>,
        tokio::task::JoinHandle<()>,
    )>,
) -> Option<Vec<SourceSpec>> {
    match d {
        Some((rx, _)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// How long a failed listing of what the token sees waits before it is tried again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(30);

/// `all = true`: lists the orgs and repositories the token sees at once, then every
/// `every`, and hands each complete list to the scheduler (which starts what is new and
/// stops what is gone). A failed or incomplete listing changes nothing.
async fn discovery_loop(
    ctx: Arc<Context>,
    every: Duration,
    found: tokio::sync::mpsc::Sender<Vec<SourceSpec>>,
    mut shutdown: Shutdown,
) {
    loop {
        let listed = tokio::select! {
            r = crate::discovery::discover(&ctx.client) => r,
            _ = shutdown.wait() => break,
        };
        let wait = match listed {
            Ok(Some(list)) => {
                if found.send(list).await.is_err() {
                    break;
                }
                every
            }
            Ok(None) => {
                ctx.telemetry.emit(telemetry::DiscoveryFailed {
                    error: &"a list changed while it was read, or was too long",
                    retry_in: DISCOVERY_RETRY,
                });
                DISCOVERY_RETRY
            }
            Err(e) => {
                ctx.telemetry.emit(telemetry::DiscoveryFailed {
                    error: &e,
                    retry_in: DISCOVERY_RETRY,
                });
                DISCOVERY_RETRY
            }
        };
        if !shutdown.sleep(wait).await {
            break;
        }
    }
}

/// How often an instance that holds no lease asks Gitea whether it answers (`[ha]`).
const STANDBY_PROBE_EVERY: Duration = Duration::from_secs(30);

/// `[ha]`: while this instance polls nothing (a standby), asks Gitea its version now and
/// then, so that `/readyz` tells whether it could take over (a standby makes no other
/// requests, and its Gitea state would otherwise stay as it was when it last polled).
async fn standby_probe_loop(ctx: Arc<Context>, mut shutdown: Shutdown) {
    loop {
        if !shutdown.sleep(STANDBY_PROBE_EVERY).await {
            break;
        }
        if ctx.telemetry.metrics.leases_held.get() > 0 {
            continue;
        }
        // The outcome is recorded by the client (its requests move the Gitea health).
        let _ = ctx.client.version().await;
    }
}

/// How often backfill ledgers beyond the stream's `max_age` are deleted (first at start).
const LEDGER_PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes the backfill ledgers of days whose events the stream has dropped (`max_age`), at
/// start and then hourly: without it the bucket keeps one key per backfilled day forever.
/// A failure is logged and tried again at the next round; nothing depends on it.
async fn ledger_prune_loop(
    ctx: Arc<Context>,
    js: async_nats::jetstream::Context,
    stream: String,
    mut shutdown: Shutdown,
) {
    loop {
        let pruned = async {
            let info = js
                .get_stream(&stream)
                .await
                .map_err(|e| e.to_string())?
                .info()
                .await
                .map_err(|e| e.to_string())?
                .clone();
            let Some(keep_from) = crate::nats::ledgers_needed_from(&info, chrono::Utc::now())
            else {
                return Ok(Vec::new());
            };
            ctx.store
                .prune_backfill_ledgers(keep_from)
                .await
                .map_err(|e| e.to_string())
        };
        let result = tokio::select! {
            r = pruned => r,
            _ = shutdown.wait() => break,
        };
        match result {
            Ok(days) if days.is_empty() => {}
            Ok(days) => ctx.telemetry.emit(telemetry::LedgersPruned { days: &days }),
            Err(e) => ctx
                .telemetry
                .emit(telemetry::LedgersPruneFailed { error: &e }),
        }
        if !shutdown.sleep(LEDGER_PRUNE_EVERY).await {
            break;
        }
    }
}

async fn prune_loop(ctx: Arc<Context>, lookback: Duration, mut shutdown: Shutdown) {
    let keep = index_keep(lookback);
    loop {
        if !shutdown.sleep(Duration::from_secs(60)).await {
            break;
        }
        ctx.index
            .prune_before(chrono::Utc::now().timestamp() - keep.as_secs() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::PublishError;

    #[test]
    fn a_nats_side_failure_backs_off_at_most_two_seconds_a_gitea_one_up_to_five_minutes() {
        let interval = Duration::from_millis(200);
        let publish = PollError::Publish(PublishError {
            acked: 0,
            total: 3,
            message: "timed out: didn't receive ack in time".into(),
        });
        let kv = PollError::State(crate::state::StateError::Kv("timed out".into()));
        let gitea = PollError::Gitea(crate::gitea::GiteaError::Status {
            url: "http://gitea/api/v1/repos/a/b/activities/feeds".into(),
            status: 500,
            message: "boom".into(),
            retry_after: None,
        });
        let delays = |e: &PollError| -> Vec<u64> {
            (1..=12)
                .map(|n| retry_delay(interval, n, e).as_millis() as u64)
                .collect()
        };
        assert_eq!(
            delays(&publish),
            vec![
                200, 400, 800, 1600, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000
            ]
        );
        assert_eq!(delays(&kv), delays(&publish));
        assert_eq!(*delays(&gitea).last().unwrap(), 204_800);
        assert_eq!(
            retry_delay(Duration::from_secs(60), 3, &publish),
            Duration::from_secs(60),
            "never shorter than the interval"
        );
    }
}
