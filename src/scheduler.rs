//! `run`: connect, make sure the stream and bucket exist, then poll every source on its own
//! interval (with jitter), each in its own task, until shutdown. One poll at a time per
//! source; a failing source backs off alone while the others go on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::task::JoinSet;

use crate::config::{Config, ConfigError, Source};
use crate::feed::{PollContext, PollError, RecentIndex, SourcePoller};
use crate::gitea::{GiteaClient, GiteaError};
use crate::nats::{self, NatsError};
use crate::publish::Publisher;
use crate::shutdown::{self, Shutdown};
use crate::state::{CursorStore, StateError};
use crate::telemetry;

/// Errors that stop `run` (everything else is retried or logged per source).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Gitea(#[from] GiteaError),
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The longest a failing source waits before trying again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long running polls get to reach a safe point after shutdown.
const DRAIN: Duration = Duration::from_secs(8);

/// Connected and ready services, built from the config.
pub struct Services {
    pub ctx: Arc<PollContext>,
    pub nats: async_nats::Client,
}

/// Connects to NATS (retrying with backoff until it answers or shutdown), ensures the stream
/// and bucket, reads Gitea's page size. `None` when shutdown came first.
pub async fn connect(cfg: &Config, shutdown: &mut Shutdown) -> Result<Option<Services>, RunError> {
    let token = cfg.gitea.token()?;
    let client = GiteaClient::new(&cfg.gitea, token)?;
    let mut delay = Duration::from_millis(500);
    let nats_client = loop {
        match nats::connect(&cfg.nats).await {
            Ok(c) => break c,
            Err(NatsError::Credentials(m)) => return Err(NatsError::Credentials(m).into()),
            Err(e) => {
                tracing::warn!(retry_in_ms = delay.as_millis() as u64, "{e}; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.wait() => return Ok(None),
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    };
    let js = nats::jetstream(nats_client.clone());
    nats::ensure_stream(&js, &cfg.nats).await?;
    let kv = nats::ensure_bucket(&js, &cfg.nats).await?;
    let store = CursorStore::new(kv);
    tokio::select! {
        r = client.learn_page_limit() => match r {
            Ok(n) => tracing::debug!(page_limit = n, "Gitea page size"),
            Err(e) => tracing::warn!("cannot read Gitea's page size, using {}: {e}", client.page_limit()),
        },
        _ = shutdown.wait() => return Ok(None),
    }
    let index = Arc::new(RecentIndex::new());
    for (_, stored) in store.list().await? {
        for s in &stored.cursor.seen {
            index.insert(&s.k, s.t);
        }
    }
    let ctx = Arc::new(PollContext {
        client,
        publisher: Publisher::new(js),
        store,
        index,
        gitea_url: cfg.gitea.url.trim_end_matches('/').to_string(),
        subject_prefix: cfg.nats.subject_prefix.clone(),
        lookback: cfg.poll.lookback.as_secs() as i64,
        live_pages: cfg.poll.live_pages,
        batch: 512,
    });
    Ok(Some(Services {
        ctx,
        nats: nats_client,
    }))
}

/// Polls every configured source until `stop` completes; then lets running polls reach a
/// safe point (cursor written for everything acknowledged) and returns.
pub async fn run(cfg: Config, stop: impl Future<Output = ()>) -> Result<(), RunError> {
    let (trigger, mut shutdown) = shutdown::channel();
    let work = async {
        let Some(services) = connect(&cfg, &mut shutdown).await? else {
            return Ok(());
        };
        let mut tasks = JoinSet::new();
        for source in cfg.sources() {
            tasks.spawn(source_loop(
                services.ctx.clone(),
                source,
                services.nats.clone(),
                cfg.poll.jitter,
                shutdown.clone(),
            ));
        }
        tasks.spawn(prune_loop(
            services.ctx.clone(),
            cfg.poll.lookback,
            shutdown.clone(),
        ));
        tracing::info!(sources = cfg.sources.len(), "running");
        shutdown.wait().await;
        if tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(
                "polls did not stop in time; abandoning them (their cursors stay at the last acknowledged batch)"
            );
            tasks.abort_all();
        }
        if let Err(e) = services.nats.flush().await {
            tracing::debug!("NATS flush at shutdown: {e}");
        }
        Ok::<(), RunError>(())
    };
    tokio::pin!(work);
    tokio::pin!(stop);
    tokio::select! {
        r = &mut work => return r,
        _ = &mut stop => {
            tracing::info!("shutting down");
            trigger.fire();
        }
    }
    work.await
}

/// Polls one source forever (until shutdown).
pub async fn source_loop(
    ctx: Arc<PollContext>,
    source: Source,
    nats: async_nats::Client,
    jitter: f64,
    mut shutdown: Shutdown,
) {
    let interval = source.interval;
    let mut poller = SourcePoller::new(ctx, source);
    let mut failures: u32 = 0;
    // Spread the first polls so sources do not start in lock-step.
    let mut wait = interval
        .min(Duration::from_secs(1))
        .mul_f64(rand::rng().random_range(0.0..1.0));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => break,
        }
        if nats.connection_state() != async_nats::connection::State::Connected {
            telemetry::nats_waiting(poller.spec());
            wait = Duration::from_secs(1);
            continue;
        }
        let started = Instant::now();
        match poller.poll(&mut shutdown).await {
            Ok(report) => {
                failures = 0;
                telemetry::poll_completed(
                    poller.spec(),
                    report.read,
                    report.published,
                    started.elapsed(),
                );
                if report.stopped {
                    break;
                }
                wait = with_jitter(interval, jitter);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let backoff = interval
                    .saturating_mul(1 << (failures - 1).min(10))
                    .min(MAX_BACKOFF.max(interval));
                wait = with_jitter(backoff, jitter);
                match &e {
                    PollError::Gitea(g) if matches!(g.status(), Some(401 | 403 | 404)) => {
                        telemetry::source_refused(poller.spec(), &e, wait)
                    }
                    _ => telemetry::poll_failed(poller.spec(), e.reason(), &e, wait),
                }
            }
        }
    }
}

fn with_jitter(d: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return d;
    }
    d.mul_f64(1.0 + rand::rng().random_range(0.0..jitter))
}

/// Forgets cross-feed identities that no poll can meet again.
async fn prune_loop(ctx: Arc<PollContext>, lookback: Duration, mut shutdown: Shutdown) {
    let keep = lookback.max(Duration::from_secs(1800)) * 2;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.wait() => break,
        }
        ctx.index
            .prune_before(chrono::Utc::now().timestamp() - keep.as_secs() as i64);
    }
}
