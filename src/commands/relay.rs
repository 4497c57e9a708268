//! `relay` and its subcommands: run, check, dead-letters list, redeliver.

use std::path::Path;
use std::sync::Arc;

use crate::cli::{DeadLettersCommand, RelayCommand};
use crate::config::{DEFAULT_CONFIG_PATH, LogFormat};
use crate::event::hook::wire::HookMessage;
use crate::relay::config::{DEFAULT_RELAY_CONFIG_PATH, Receiver, RelayConfig};
use crate::relay::worker::{self, Outcome, Sender};
use crate::relay::{self as service, dead};
use crate::say;
use crate::shutdown::Shutdown;
use crate::telemetry::Telemetry;
use crate::telemetry::logging;

use super::{Reported, UsageError, stop_signal};

/// Reads the relay config (the sourcer's default path means "not given": the relay's own
/// default then) and runs the subcommand. Config errors exit 2, naming the key.
pub async fn dispatch(
    path: &Path,
    log_format: Option<LogFormat>,
    action: Option<RelayCommand>,
) -> anyhow::Result<()> {
    let path = match path == Path::new(DEFAULT_CONFIG_PATH) {
        true => Path::new(DEFAULT_RELAY_CONFIG_PATH),
        false => path,
    };
    let action = action.unwrap_or(RelayCommand::Run);
    let is_check = matches!(action, RelayCommand::Check);
    let failed = |e: crate::config::ConfigError| {
        if is_check {
            say!("FAIL config: {e}");
        }
        e
    };
    let cfg = RelayConfig::load(path).map_err(failed)?;
    let format = log_format.or(cfg.log.format).unwrap_or(LogFormat::Text);
    logging::init(format, Some(&cfg.log));
    cfg.nats.check_secrets().map_err(failed)?;
    let receivers = cfg.receivers().map_err(failed)?;
    if is_check {
        say!("ok   config: {} receivers", receivers.len());
    }
    match action {
        RelayCommand::Run => service::run(cfg, receivers, stop_signal())
            .await
            .map_err(anyhow::Error::new),
        RelayCommand::Check => check(&cfg, &receivers).await,
        RelayCommand::DeadLetters(DeadLettersCommand::List { receiver }) => {
            list(&cfg, &receivers, receiver.as_deref()).await
        }
        RelayCommand::Redeliver { receiver, id } => {
            redeliver(&cfg, &receivers, &receiver, id.as_deref()).await
        }
    }
}

async fn jetstream(cfg: &RelayConfig) -> anyhow::Result<async_nats::jetstream::Context> {
    let client = crate::nats::connect(&cfg.nats, &Telemetry::new()).await?;
    Ok(crate::nats::jetstream(client))
}

fn known<'a>(receivers: &'a [Receiver], name: &str) -> anyhow::Result<&'a Receiver> {
    receivers.iter().find(|r| r.name == name).ok_or_else(|| {
        UsageError(format!(
            "no [[receiver]] named {name:?} (configured: {})",
            receivers
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()
    })
}

/// One line per check; exit 1 if any failed.
async fn check(cfg: &RelayConfig, receivers: &[Receiver]) -> anyhow::Result<()> {
    let mut failures = 0;
    let js = match jetstream(cfg).await {
        Ok(js) => {
            say!(
                "ok   nats: {}",
                crate::config::without_userinfo(&cfg.nats.url)
            );
            Some(js)
        }
        Err(e) => {
            say!("FAIL nats: {e}");
            failures += 1;
            None
        }
    };
    let stream = match &js {
        Some(js) => match js.get_stream(&cfg.nats.stream).await {
            Ok(s) => {
                say!("ok   stream: {}", cfg.nats.stream);
                Some(s)
            }
            Err(e) => {
                say!(
                    "FAIL stream: {}: {e} (the sourcer creates it; is it running with webhooks = true?)",
                    cfg.nats.stream
                );
                failures += 1;
                None
            }
        },
        None => None,
    };
    // Private repositories' events come from their own stream, for the receivers that
    // opted in (`private = true`).
    if let Some(js) = &js
        && receivers.iter().any(|r| r.private)
    {
        match js.get_stream(&cfg.nats.private_stream).await {
            Ok(_) => say!(
                "ok   stream: {} (private repositories)",
                cfg.nats.private_stream
            ),
            Err(e) => {
                say!(
                    "FAIL stream: {}: {e} (a receiver has private = true; the sourcer creates it)",
                    cfg.nats.private_stream
                );
                failures += 1;
            }
        }
    }
    let letters = match &js {
        Some(js) => match js.get_key_value(&cfg.dead_letter_bucket).await {
            Ok(store) => dead::list(&store, None).await.unwrap_or_default(),
            Err(_) => Vec::new(),
        },
        None => Vec::new(),
    };
    for r in receivers {
        // A ping: any HTTP answer (even 405) proves the receiver is there.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(r.timeout)
            .build()?;
        match client.head(r.url.expose().trim()).send().await {
            Ok(resp) => say!(
                "ok   receiver {}: {} answers HEAD with {}",
                r.name,
                r.shown,
                resp.status().as_u16()
            ),
            Err(e) => {
                say!(
                    "FAIL receiver {}: {} does not answer: {}",
                    r.name,
                    r.shown,
                    e.without_url()
                );
                failures += 1;
            }
        }
        match r.private {
            true => say!(
                "info receiver {}: gets public and private repositories' events (private = true)",
                r.name
            ),
            false => say!(
                "info receiver {}: gets public repositories' events only (private = false)",
                r.name
            ),
        }
        let dead = letters.iter().filter(|l| l.receiver == r.name).count();
        if let Some(s) = &stream {
            match s
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&r.consumer_name())
                .await
            {
                Ok(mut c) => match c.info().await {
                    Ok(i) => say!(
                        "ok   consumer {}: {} waiting, {} in hand, {} dead letters",
                        r.consumer_name(),
                        i.num_pending,
                        i.num_ack_pending,
                        dead
                    ),
                    Err(e) => say!("ok   consumer {}: info failed: {e}", r.consumer_name()),
                },
                Err(_) => say!(
                    "ok   consumer {}: not created yet (the relay creates it at start), {} dead letters",
                    r.consumer_name(),
                    dead
                ),
            }
        }
    }
    match failures {
        0 => Ok(()),
        n => Err(Reported(format!("{n} checks failed")).into()),
    }
}

async fn list(
    cfg: &RelayConfig,
    receivers: &[Receiver],
    receiver: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(name) = receiver {
        known(receivers, name)?;
    }
    let js = jetstream(cfg).await?;
    let store = dead::bucket(&js, &cfg.dead_letter_bucket, cfg.nats.replicas)
        .await
        .map_err(anyhow::Error::msg)?;
    let letters = dead::list(&store, receiver)
        .await
        .map_err(anyhow::Error::msg)?;
    for l in &letters {
        say!(
            "{} {} {} {} seq={} status={} attempts={} delivery={} {}: {}",
            l.time,
            l.receiver,
            l.event_id,
            l.repo,
            l.stream_sequence,
            l.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            l.attempts,
            l.delivery_id,
            l.event_type,
            l.reason
        );
    }
    say!("{} dead letters", letters.len());
    Ok(())
}

async fn redeliver(
    cfg: &RelayConfig,
    receivers: &[Receiver],
    receiver: &str,
    id: Option<&str>,
) -> anyhow::Result<()> {
    let r = known(receivers, receiver)?;
    let js = jetstream(cfg).await?;
    let store = dead::bucket(&js, &cfg.dead_letter_bucket, cfg.nats.replicas)
        .await
        .map_err(anyhow::Error::msg)?;
    let letters: Vec<_> = dead::list(&store, Some(receiver))
        .await
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .filter(|l| id.is_none_or(|id| l.event_id == id || l.delivery_id == id))
        .collect();
    if let (Some(id), true) = (id, letters.is_empty()) {
        return Err(UsageError(format!("receiver {receiver} has no dead letter {id}")).into());
    }
    let public = js.get_stream(&cfg.nats.stream).await?;
    // Private repositories' letters point into the private stream.
    let private = match letters.iter().any(|l| l.private) {
        true => Some(js.get_stream(&cfg.nats.private_stream).await?),
        false => None,
    };
    // One attempt each: a person is waiting at the terminal.
    let mut once = r.clone();
    once.max_attempts = Some(1);
    let sender = Sender::new(Arc::new(once)).map_err(anyhow::Error::msg)?;
    let telemetry = Telemetry::new();
    let (mut delivered, mut failed) = (0, 0);
    for l in &letters {
        let stream = match (&private, l.private) {
            (Some(p), true) => p,
            _ => &public,
        };
        let msg = match stream.get_raw_message(l.stream_sequence).await {
            Ok(m) => m,
            Err(e) => {
                say!(
                    "FAIL {}: stream sequence {} is gone ({e})",
                    l.event_id,
                    l.stream_sequence
                );
                failed += 1;
                continue;
            }
        };
        let Some(hook) = HookMessage::parse(
            Some(&msg.headers),
            msg.subject.as_str(),
            msg.payload,
            msg.sequence,
        ) else {
            say!(
                "FAIL {}: the stored message is not a hook event",
                l.event_id
            );
            failed += 1;
            continue;
        };
        // The sequence must still hold the letter's event (a letter of another stream, or a
        // stream recreated since, would send something else).
        if hook.event_id != l.event_id {
            say!(
                "FAIL {}: stream sequence {} of {} holds another event ({}); not sent",
                l.event_id,
                l.stream_sequence,
                stream.cached_info().config.name,
                hook.event_id
            );
            failed += 1;
            continue;
        }
        let never = Shutdown::never();
        match worker::deliver(&sender, &hook, None, &telemetry, &never).await {
            Some(Outcome::Delivered { status, .. }) => {
                dead::remove(&store, l).await.map_err(anyhow::Error::msg)?;
                say!(
                    "ok   {} delivered ({status}); dead letter removed",
                    l.event_id
                );
                delivered += 1;
            }
            Some(Outcome::Dead(again)) => {
                dead::put(&store, &again)
                    .await
                    .map_err(anyhow::Error::msg)?;
                say!("FAIL {}: {}", l.event_id, again.reason);
                failed += 1;
            }
            None => break,
        }
    }
    say!("{delivered} redelivered, {failed} failed");
    match failed {
        0 => Ok(()),
        n => Err(Reported(format!("{n} redeliveries failed")).into()),
    }
}
