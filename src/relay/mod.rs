//! The relay: reads the webhook-shaped events (`{prefix}.{owner}.{repo}.hook.{event_type}`)
//! from JetStream (public repositories' from `nats.stream`; private ones' from
//! `nats.private_stream` only for a receiver with `private = true`) and delivers each, body unchanged, to the HTTP receivers teams already run
//! (Woodpecker, Drone, Jenkins, Buildbot), with Gitea's headers and signatures, and with the
//! retries Gitea never makes. It needs no Gitea access.
//!
//! * [`config`]: the relay's config file (`[nats]` as the sourcer's, `[[receiver]]` tables).
//! * [`glob`]: `owner/name` patterns.
//! * [`delivery`]: pure parts of a delivery: delivery ids, headers, signatures, verdicts.
//! * [`dead`]: dead letters in a key-value bucket.
//! * [`worker`]: one receiver's loop: durable consumer, attempts, retries, acks.
//!
//! [`run`] starts one task per receiver: a slow or dead receiver never delays another.

pub mod config;
pub mod dead;
pub mod delivery;
pub mod glob;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use self::config::{Receiver, RelayConfig};
use crate::nats::NatsError;
use crate::telemetry::{self, Telemetry};

/// What stops the relay from running.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error("cannot listen on {0} for [http]: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error(transparent)]
    Work(#[from] WorkError),
}

/// An error of the NATS client or of encoding, kept as it came.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a receiver's loop, its consumer or the dead-letter bucket failed at; each keeps the
/// client's error as its source. The loop starts over after a pause on any of them.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// The events' stream could not be looked up.
    #[error("stream {stream}: {source}")]
    Stream {
        stream: String,
        #[source]
        source: BoxError,
    },
    /// The receiver's durable consumer could not be created or updated (`action`).
    #[error("consumer {name}: cannot {action} it: {source}")]
    ConsumerSetup {
        name: String,
        action: &'static str,
        #[source]
        source: BoxError,
    },
    /// The consumer's messages could not be read.
    #[error("consumer {name}: {source}")]
    Consumer {
        name: String,
        #[source]
        source: BoxError,
    },
    /// The consumer's message stream ended (the server closed it).
    #[error("the consumer's message stream ended")]
    ConsumerEnded,
    /// The dead-letter bucket could not be opened, or created (`created`).
    #[error("dead-letter bucket {name}: {}{source}", if *.creating { "cannot create it: " } else { "" })]
    Bucket {
        name: String,
        creating: bool,
        #[source]
        source: BoxError,
    },
    /// A dead letter could not be encoded, stored, listed, read or removed.
    #[error("{what}{source}")]
    DeadLetter {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    /// A receiver's HTTP client could not be built.
    #[error("receiver {receiver}: cannot build the HTTP client: {source}")]
    Client {
        receiver: String,
        #[source]
        source: reqwest::Error,
    },
}

/// Runs the relay until `stop` completes: every receiver's loop, and the HTTP listener.
pub async fn run(
    cfg: RelayConfig,
    receivers: Vec<Receiver>,
    stop: impl Future<Output = ()>,
) -> Result<(), RelayError> {
    run_with(cfg, receivers, Telemetry::new(), stop).await
}

/// [`run`] with the caller's telemetry (tests read its metrics).
pub async fn run_with(
    cfg: RelayConfig,
    receivers: Vec<Receiver>,
    telemetry: Telemetry,
    stop: impl Future<Output = ()>,
) -> Result<(), RelayError> {
    telemetry.health.without_gitea();
    telemetry
        .health
        .names
        .name_private(cfg.log.name_private_repos);
    let (trigger, shutdown) = crate::shutdown::channel();
    let work = async {
        let listener = match cfg.http.listen {
            Some(addr) => Some(
                crate::telemetry::http::bind(addr)
                    .await
                    .map_err(|e| RelayError::Listen(addr, e))?,
            ),
            None => None,
        };
        if let Some(l) = listener {
            tokio::spawn(crate::telemetry::http::serve(
                l,
                telemetry.clone(),
                shutdown.clone(),
            ));
        }
        let Some(client) = crate::nats::connect_retrying(&cfg.nats, &telemetry, &shutdown).await?
        else {
            return Ok(());
        };
        telemetry.emit(telemetry::NatsConnected { connected: true });
        let js = crate::nats::jetstream(client);
        let store = dead::bucket(&js, &cfg.dead_letter_bucket, cfg.nats.replicas).await?;
        let mut tasks = Vec::new();
        let n = receivers.len();
        for r in receivers {
            telemetry.emit(telemetry::RelayReceiverGets {
                receiver: &r.name,
                private: r.private,
                stream: &cfg.nats.stream,
                private_stream: &cfg.nats.private_stream,
            });
            let legs = worker::Leg::of(&cfg.nats, &r);
            let sender = worker::Sender::new(Arc::new(r))?;
            for leg in legs {
                tasks.push(tokio::spawn(worker::run(
                    js.clone(),
                    leg,
                    sender.clone(),
                    store.clone(),
                    telemetry.clone(),
                    shutdown.clone(),
                )));
            }
        }
        telemetry.emit(telemetry::RelayReady { receivers: n });
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    };
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => r,
        _ = stop => {
            telemetry.emit(telemetry::Stopping);
            trigger.fire();
            // Every wait of the loops races the shutdown; an attempt in flight is dropped
            // (its event stays unacknowledged and is delivered again after a restart).
            work.await
        }
    }
}
