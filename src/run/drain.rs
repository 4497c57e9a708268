//! Drains: a `repo:` source removed from the config while an org (or user) source covers
//! its repository is polled until it reaches the head of its feed once more, then hands the
//! repository over ([`start_drains`], [`drain`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::services::{Services, SourcePoller};
use super::supervisor::Running;
use crate::config::{Config, Source};
use crate::poll::pipeline::Context;
use crate::shutdown::{Deadline, Shutdown};
use crate::source::SourceSpec;
use crate::telemetry;

/// Starts a drain for each `repo:` source in `candidates` that is not configured and whose
/// repository a configured org (or user) source covers: it is polled until it reaches the
/// head of its feed once more, then its repository is handed over. Until then it keeps
/// publishing its repository (the org skips it), so what it had not reached yet (a source
/// removed while behind) is neither lost nor read by two sources.
pub(super) fn start_drains(
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
/// [`crate::poll::feed::poll::FeedPoller::hand_over`]) and marks the cursor handed over.
async fn drain(
    ctx: Arc<Context>,
    source: Source,
    to: SourceSpec,
    nats: async_nats::Client,
    shutdown: Shutdown,
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
        match poller.poll(&shutdown).await {
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
