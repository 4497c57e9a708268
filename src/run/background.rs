//! The run's background tasks: the systemd watchdog, discovery (`all = true`), the standby
//! probe (`[ha]`), and the prunes of the backfill ledgers and of the cross-feed index.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::services::{Services, index_keep};
use crate::config::Config;
use crate::ha::HeldLeases;
use crate::poll::pipeline::Context;
use crate::shutdown::Shutdown;
use crate::source::SourceSpec;
use crate::telemetry::{self, Telemetry};

/// Starts the tasks that run beside the sources until shutdown: the index prune, the
/// watchdog, the pause follower, the ledger prune and, under `[ha]` (`held`: the leases
/// held here), the standby probe.
pub(super) fn start(
    services: &Services,
    cfg: &Config,
    held: Option<HeldLeases>,
    shutdown: &Shutdown,
) -> Vec<JoinHandle<()>> {
    let telemetry = services.ctx.telemetry.clone();
    let mut tasks = vec![
        tokio::spawn(prune_loop(
            services.ctx.clone(),
            cfg.poll.lookback,
            shutdown.clone(),
        )),
        tokio::spawn(watchdog_loop(telemetry.clone(), shutdown.clone())),
        tokio::spawn(crate::poll::pause::follow(
            services.ctx.store.clone(),
            services.ctx.pauses.clone(),
            telemetry,
            shutdown.clone(),
        )),
        tokio::spawn(ledger_prune_loop(
            services.ctx.clone(),
            crate::nats::jetstream(services.nats.clone()),
            cfg.nats.stream.clone(),
            shutdown.clone(),
        )),
    ];
    if let Some(held) = held {
        tasks.push(tokio::spawn(standby_probe_loop(
            services.ctx.clone(),
            held,
            shutdown.clone(),
        )));
    }
    tasks
}

/// Pings the systemd watchdog (when enabled) while progress is made within its interval
/// or no poll runs (see [`crate::telemetry::health::Health::progress`]).
async fn watchdog_loop(telemetry: Telemetry, shutdown: Shutdown) {
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

/// How long a failed listing of what the token sees waits before it is tried again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(30);

/// `all = true`: lists the orgs and repositories the token sees at once, then every
/// `every`, and hands each complete list to the supervisor (which starts what is new and
/// stops what is gone). A failed or incomplete listing changes nothing.
pub(super) async fn discovery_loop(
    ctx: Arc<Context>,
    every: Duration,
    found: tokio::sync::mpsc::Sender<Vec<SourceSpec>>,
    shutdown: Shutdown,
) {
    loop {
        let listed = tokio::select! {
            r = crate::poll::discovery::discover(&ctx.client) => r,
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
async fn standby_probe_loop(ctx: Arc<Context>, held: HeldLeases, shutdown: Shutdown) {
    loop {
        if !shutdown.sleep(STANDBY_PROBE_EVERY).await {
            break;
        }
        if held.any() {
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
    shutdown: Shutdown,
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

/// Forgets cross-feed identities that no poll can meet again, every minute.
async fn prune_loop(ctx: Arc<Context>, lookback: Duration, shutdown: Shutdown) {
    let keep = index_keep(lookback);
    loop {
        if !shutdown.sleep(Duration::from_secs(60)).await {
            break;
        }
        ctx.index
            .prune_before(chrono::Utc::now().timestamp() - keep.as_secs() as i64);
    }
}
