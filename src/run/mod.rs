//! `run`: connect, make sure the stream and bucket exist, then poll every source on its own
//! interval (with jitter), each in its own task, until shutdown. One poll at a time per
//! source; a failing source backs off alone while the others go on.
//!
//! * [`services`]: connecting ([`connect`]), the shared [`Services`], one poll of one source
//!   ([`SourcePoller`]), and [`RunError`].
//! * `supervisor`: the `Supervisor`, which owns the run's tasks and answers what comes to it
//!   (SIGHUP, a discovery, an `[ha]` order, a control request); `reload` and `orders` are
//!   its answers to a new config and to the coordinator.
//! * `source_task`: one source's task ([`SourceTask`]): its polls, apart from the policy on
//!   failure.
//! * `drain`: the drains of removed `repo:` sources into the org that covers them.
//! * `background`: the watchdog, discovery, the standby probe and the prunes.

mod background;
mod drain;
mod orders;
mod reload;
pub mod services;
mod source_task;
mod supervisor;

use std::path::PathBuf;
use std::time::Duration;

pub use services::{RunError, Services, SourcePoller, connect, index_keep};
pub use source_task::SourceTask;

use crate::config::Config;
use crate::shutdown;
use crate::telemetry::{self, Telemetry};
use supervisor::Supervisor;

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

/// Like [`run`]; with `config_path`, SIGHUP re-reads the source list from that file: added
/// sources start, removed ones stop at a safe point, changed ones restart, cursors are kept
/// (they live in the bucket). Other sections need a restart and say so.
pub async fn run_with_reload(
    cfg: Config,
    config_path: Option<PathBuf>,
    stop: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let (trigger, shutdown) = shutdown::channel();
    let telemetry = Telemetry::new();
    let work = async {
        // Served from the start: while NATS is not there yet, `/healthz` says the process
        // lives, `/readyz` that it is not ready, `/metrics` what setup tried.
        if let Some(addr) = cfg.http.listen {
            let l = crate::telemetry::http::bind(addr)
                .await
                .map_err(|e| RunError::Listen(addr, e))?;
            tokio::spawn(crate::telemetry::http::serve(
                l,
                telemetry.clone(),
                shutdown.clone(),
            ));
        }
        let Some(services) = connect(&cfg, &telemetry, &shutdown).await? else {
            return Ok(());
        };
        services.ctx.telemetry.emit(telemetry::NatsConnected {
            connected: services.nats.connection_state() == async_nats::connection::State::Connected,
        });
        let mut supervisor =
            Supervisor::start(cfg.clone(), config_path, services, &shutdown).await?;
        supervisor.run().await;
        supervisor.drain_all().await;
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
