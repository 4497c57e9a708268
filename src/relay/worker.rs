//! One receiver's delivery loop: its durable consumer hands out one event at a time
//! (`max_ack_pending = 1`, so the stream's order holds, per repository and overall, across
//! retries and restarts; a receiver with `private = true` has one loop per stream, so the
//! order holds within each stream, and a repository whose visibility changed may have its
//! older events (one stream) delivered between its newer ones (the other)); each is POSTed
//! with Gitea's headers until a 2xx (acknowledged), a refusal or the retry budget's end (a dead letter, then acknowledged). While an event is
//! retried it is kept in progress, so JetStream does not hand it out again; a relay that
//! dies leaves it unacknowledged, and the consumer hands it out again after `ack_wait`: at
//! least once, with the same delivery id.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, AckKind, consumer};
use backon::BackoffBuilder;
use bytes::Bytes;
use futures::StreamExt;

use crate::event::hook::wire::HookMessage;
use crate::shutdown::Shutdown;
use crate::telemetry::{self, Telemetry};

use super::WorkError;
use super::config::{Method, Receiver, Start};
use super::dead::{self, DeadLetter};
use super::delivery::{self, Verdict};

/// How much of a receiver's answer a dead letter keeps.
const EXCERPT: usize = 512;

/// The outcome of one attempt.
#[derive(Debug)]
pub struct Attempt {
    /// The status, if the receiver answered.
    pub status: Option<u16>,
    /// What the answer means.
    pub verdict: Verdict,
    /// The start of the answer's body.
    pub excerpt: String,
    /// The error without an answer (no URL in it).
    pub error: Option<String>,
}

/// Sends deliveries to one receiver.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    pub receiver: Arc<Receiver>,
}

impl Sender {
    pub fn new(receiver: Arc<Receiver>) -> Result<Sender, WorkError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("gitea-nats-relay/", env!("CARGO_PKG_VERSION")))
            // A redirect is the receiver's answer, not a place to resend the body to (a
            // followed 302 turns the POST into a GET): it is a refusal.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(receiver.timeout)
            .build()
            .map_err(|source| WorkError::Client {
                receiver: receiver.name.clone(),
                source,
            })?;
        Ok(Sender { client, receiver })
    }

    /// One attempt to deliver `hook`.
    pub async fn attempt(&self, hook: &HookMessage) -> Attempt {
        let r = &self.receiver;
        let id = delivery::delivery_id(&hook.event_id, &r.name);
        let method = match r.method {
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
        };
        let mut req = self
            .client
            .request(method, r.url.expose().trim())
            .body(hook.body.clone());
        for (name, value) in delivery::headers(
            &id,
            &hook.event,
            &hook.event_type,
            &hook.body,
            r.secret.as_ref(),
            r.authorization.as_ref(),
        ) {
            req = req.header(name, value);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // Only the start of the answer is kept (for a dead letter): at most
                // ANSWER_READ bytes are read, the rest is never received.
                let body = tokio::time::timeout(r.timeout, read_start(resp, ANSWER_READ))
                    .await
                    .unwrap_or_default();
                Attempt {
                    status: Some(status),
                    verdict: delivery::verdict(status, retry_after.as_deref(), SystemTime::now()),
                    excerpt: delivery::excerpt(&body, EXCERPT),
                    error: None,
                }
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                // without_url: the URL may carry a token.
                let e = e.without_url();
                Attempt {
                    status: None,
                    verdict: Verdict::Retry(None),
                    excerpt: String::new(),
                    error: Some(format!("{kind}: {e}")),
                }
            }
        }
    }
}

/// The most of a receiver's answer that is read (its start goes into a dead letter): a
/// receiver answering with an endless body costs no more.
const ANSWER_READ: usize = EXCERPT + 1;

/// The first `max` bytes of an answer's body (fewer when it ends first or fails); the
/// rest is not read, and dropping the response closes the connection.
async fn read_start(mut resp: reqwest::Response, max: usize) -> Bytes {
    let mut out = bytes::BytesMut::new();
    while out.len() < max {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = max - out.len();
                out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    out.freeze()
}

/// How one event ended.
#[derive(Debug)]
pub enum Outcome {
    /// A 2xx after this many attempts.
    Delivered { attempts: u32, status: u16 },
    /// A dead letter (already counted, not yet stored).
    Dead(Box<DeadLetter>),
}

/// Runs `fut` while sending `msg` in-progress acks at each `tick`, or stops at shutdown.
/// One `tick` serves every attempt and wait of an event, so the acks keep their pace across
/// them (a timer started afresh for each short attempt and wait left gaps longer than
/// `ack_wait / 3`, and JetStream handed the event out again on a busy host).
async fn keeping<F: Future>(
    msg: Option<&jetstream::Message>,
    tick: &mut tokio::time::Interval,
    shutdown: &Shutdown,
    fut: F,
) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Some(out),
            _ = tick.tick() => {
                if let Some(m) = msg {
                    let _ = m.ack_with(AckKind::Progress).await;
                }
            }
            _ = shutdown.wait() => return None,
        }
    }
}

/// Delivers one event with retries (backoff with jitter, `Retry-After` honoured) until a
/// 2xx, a refusal, `max_attempts` or `give_up_after`; `None` when shutdown came first (the
/// event stays unacknowledged and is handed out again).
pub async fn deliver(
    sender: &Sender,
    hook: &HookMessage,
    msg: Option<&jetstream::Message>,
    telemetry: &Telemetry,
    shutdown: &Shutdown,
) -> Option<Outcome> {
    let r = &sender.receiver;
    let started = Instant::now();
    let progress_every = r.ack_wait / 3;
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + progress_every, progress_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = backon::ExponentialBuilder::default()
        .with_min_delay(r.backoff_min)
        .with_max_delay(r.backoff_max)
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let a = keeping(msg, &mut tick, shutdown, sender.attempt(hook)).await?;
        let wait = match a.verdict {
            Verdict::Delivered => {
                let status = a.status.unwrap_or(200);
                telemetry.emit(telemetry::RelayDelivered {
                    receiver: &r.name,
                    event_id: &hook.event_id,
                    event_type: &hook.event_type,
                    repo: &hook.repo,
                    status,
                    attempts,
                    took: started.elapsed(),
                });
                return Some(Outcome::Delivered { attempts, status });
            }
            Verdict::Refused => None,
            Verdict::Retry(after) => {
                let next = backoff.next().unwrap_or(r.backoff_max);
                // Retry-After wins over the backoff (not below backoff_min: `0` must not
                // spin; not beyond give_up_after, which it would end in anyway).
                Some(after.map_or(next, |after| after.max(r.backoff_min).min(r.give_up_after)))
            }
        };
        let exhausted = r.max_attempts.is_some_and(|m| attempts >= m)
            || wait.is_some_and(|w| started.elapsed().saturating_add(w) > r.give_up_after);
        let why = a
            .error
            .clone()
            .unwrap_or_else(|| format!("HTTP {}", a.status.unwrap_or(0)));
        match wait {
            Some(wait) if !exhausted => {
                telemetry.emit(telemetry::RelayRetry {
                    receiver: &r.name,
                    event_id: &hook.event_id,
                    status: a.status,
                    error: &why,
                    attempt: attempts,
                    wait,
                });
                keeping(msg, &mut tick, shutdown, tokio::time::sleep(wait)).await?;
            }
            _ => {
                let reason = match wait {
                    None => format!("refused: {why}"),
                    Some(_) => format!("gave up after {attempts} attempts: {why}"),
                };
                telemetry.emit(telemetry::RelayDeadLettered {
                    receiver: &r.name,
                    event_id: &hook.event_id,
                    status: a.status,
                    reason: &reason,
                });
                return Some(Outcome::Dead(Box::new(DeadLetter {
                    receiver: r.name.clone(),
                    event_id: hook.event_id.clone(),
                    delivery_id: delivery::delivery_id(&hook.event_id, &r.name),
                    event_type: hook.event_type.clone(),
                    // A private repository's name only where the operator allows it.
                    repo: telemetry
                        .health
                        .names
                        .shown_as(&hook.repo, hook.private)
                        .into_owned(),
                    stream_sequence: hook.sequence,
                    private: hook.private,
                    status: a.status,
                    reason,
                    body_excerpt: a.excerpt,
                    attempts,
                    time: chrono::Utc::now().to_rfc3339(),
                })));
            }
        }
    }
}

/// The subject filter of every receiver's consumer: every hook event.
pub fn filter_subject(prefix: &str) -> String {
    format!("{prefix}.*.*.hook.*")
}

/// Creates or updates the receiver's durable consumer.
pub async fn ensure_consumer(
    stream: &jetstream::stream::Stream,
    prefix: &str,
    receiver: &Receiver,
) -> Result<consumer::Consumer<consumer::pull::Config>, WorkError> {
    let name = receiver.consumer_name();
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        description: Some(format!(
            "gitea-nats-sourcer relay: hook events for receiver {}",
            receiver.name
        )),
        filter_subject: filter_subject(prefix),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: receiver.ack_wait,
        // One at a time: the stream's order per repository holds across retries.
        max_ack_pending: 1,
        // Retries are the relay's own (it keeps the event in progress); JetStream hands an
        // event out again only after the relay died.
        max_deliver: -1,
        deliver_policy: match receiver.start {
            Start::New => consumer::DeliverPolicy::New,
            Start::All => consumer::DeliverPolicy::All,
        },
        ..Default::default()
    };
    match stream.get_consumer::<consumer::pull::Config>(&name).await {
        Ok(mut existing) => {
            // Resume where it was: the start policy of a consumer cannot change, the rest
            // (filter, ack wait) is brought up to date.
            let mut config = config;
            if let Ok(info) = existing.info().await {
                config.deliver_policy = info.config.deliver_policy;
            }
            stream
                .update_consumer(config)
                .await
                .map_err(|e| WorkError::ConsumerSetup {
                    name: name.clone(),
                    action: "update",
                    source: e.into(),
                })
        }
        Err(_) => stream
            .create_consumer(config)
            .await
            .map_err(|e| WorkError::ConsumerSetup {
                name: name.clone(),
                action: "create",
                source: e.into(),
            }),
    }
}

/// Between two attempts of a receiver's consumer: 0.5 s, doubled per failure, at most 30 s.
const CONSUMER_RETRY: crate::retry::Doubling = crate::retry::Doubling {
    from: Duration::from_millis(500),
    cap: Duration::from_secs(30),
};

/// The loop of one receiver until shutdown. Failures of the consumer (NATS gone) are
/// retried after a pause; nothing here ends the relay.
pub async fn run(
    js: jetstream::Context,
    leg: Leg,
    sender: Sender,
    dead_letters: async_nats::jetstream::kv::Store,
    telemetry: Telemetry,
    shutdown: Shutdown,
) {
    let r = sender.receiver.clone();
    let mut failures: u32 = 0;
    while !shutdown.is_fired() {
        match serve(&js, &leg, &sender, &dead_letters, &telemetry, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                // Nothing is in hand while the loop starts over: the backlog must not age.
                leg.backlog.pending[leg.slot()].store(0, Ordering::Relaxed);
                leg.backlog.in_hand[leg.slot()].store(0, Ordering::Relaxed);
                leg.backlog.report(&telemetry, &r.name);
                failures = failures.saturating_add(1);
                let pause = CONSUMER_RETRY.after(failures);
                telemetry.emit(telemetry::RelayConsumerFailed {
                    receiver: &r.name,
                    error: &e,
                    wait: pause,
                });
                if !shutdown.sleep(pause).await {
                    return;
                }
            }
        }
    }
}

/// One stream a receiver's events come from: the public one, and for a receiver with
/// `private = true` also the private one, each read by a loop of its own (with a durable
/// consumer of the same name in each stream). Their backlogs are reported as one.
#[derive(Clone)]
pub struct Leg {
    pub visibility: crate::event::Visibility,
    pub stream: String,
    pub prefix: String,
    pub backlog: Arc<Backlog>,
}

impl Leg {
    /// The legs of `receiver`: the public stream, and the private one when it opted in.
    pub fn of(nats: &crate::config::NatsConfig, receiver: &Receiver) -> Vec<Leg> {
        let backlog = Arc::new(Backlog::default());
        crate::nats::event_streams(nats)
            .into_iter()
            .filter(|s| receiver.private || s.visibility == crate::event::Visibility::Public)
            .map(|s| Leg {
                visibility: s.visibility,
                stream: s.name.to_string(),
                prefix: s.prefix.to_string(),
                backlog: backlog.clone(),
            })
            .collect()
    }

    fn slot(&self) -> usize {
        match self.visibility {
            crate::event::Visibility::Public => 0,
            crate::event::Visibility::Private => 1,
        }
    }
}

/// A receiver's backlog over its legs: what each leg's consumer has pending, and when the
/// event each has in hand was published (0: none).
#[derive(Debug, Default)]
pub struct Backlog {
    pending: [AtomicI64; 2],
    in_hand: [AtomicI64; 2],
}

impl Backlog {
    /// Reports the receiver's backlog: the legs' pending summed, the oldest event in hand.
    fn report(&self, telemetry: &Telemetry, receiver: &str) {
        let pending = self
            .pending
            .iter()
            .map(|p| p.load(Ordering::Relaxed).max(0) as u64)
            .sum();
        let now = chrono::Utc::now().timestamp();
        let oldest_age = self
            .in_hand
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .filter(|t| *t != 0)
            .map(|t| (now - t).max(0) as f64)
            .fold(0.0, f64::max);
        telemetry.emit(telemetry::RelayBacklog {
            receiver,
            pending,
            oldest_age,
        });
    }
}

async fn serve(
    js: &jetstream::Context,
    leg: &Leg,
    sender: &Sender,
    dead_letters: &async_nats::jetstream::kv::Store,
    telemetry: &Telemetry,
    shutdown: &Shutdown,
) -> Result<(), WorkError> {
    let r = sender.receiver.clone();
    let stream = js
        .get_stream(&leg.stream)
        .await
        .map_err(|e| WorkError::Stream {
            stream: leg.stream.clone(),
            source: e.into(),
        })?;
    let consumer = ensure_consumer(&stream, &leg.prefix, &r).await?;
    telemetry.emit(telemetry::RelayReceiverStarted {
        receiver: &r.name,
        url: &r.shown,
        consumer: &r.consumer_name(),
        stream: &leg.stream,
        visibility: leg.visibility.as_str(),
    });
    // The backlog, from the consumer's own count, every few seconds (also while one event
    // is retried for hours); the oldest undelivered age from the event in hand.
    let slot = leg.slot();
    let in_hand = &leg.backlog.in_hand[slot];
    let _watcher = AbortOnDrop(tokio::spawn(watch_backlog(
        consumer.clone(),
        r.name.clone(),
        leg.clone(),
        telemetry.clone(),
    )));
    // The stream sequence last acknowledged by this loop.
    let mut last_acked: Option<u64> = None;
    let mut messages = consumer.messages().await.map_err(|e| WorkError::Consumer {
        name: r.consumer_name(),
        source: e.into(),
    })?;
    loop {
        let next = tokio::select! {
            m = messages.next() => m,
            _ = shutdown.wait() => return Ok(()),
        };
        let msg = match next {
            None => return Err(WorkError::ConsumerEnded),
            Some(Err(e)) => {
                return Err(WorkError::Consumer {
                    name: r.consumer_name(),
                    source: e.into(),
                });
            }
            Some(Ok(m)) => m,
        };
        let (sequence, pending, published, delivered) = match msg.info() {
            Ok(i) => (
                i.stream_sequence,
                i.pending,
                i.published.unix_timestamp(),
                i.delivered,
            ),
            Err(_) => (0, 0, chrono::Utc::now().timestamp(), 1),
        };
        // Handed out again: after a restart (the relay died holding it), or because an ack
        // or progress reached the server later than ack_wait (a starved host). One event is
        // in hand at a time, in stream order, so a sequence at or below the last one
        // acknowledged here was delivered already: acknowledged again, not POSTed again.
        let stale = sequence != 0 && last_acked.is_some_and(|l| sequence <= l);
        if delivered > 1 {
            telemetry.emit(telemetry::RelayRedelivered {
                receiver: &r.name,
                sequence,
                delivered,
                stale,
            });
        }
        if stale {
            ack(&msg, AckKind::Ack).await;
            continue;
        }
        in_hand.store(published.max(1), Ordering::Relaxed);
        leg.backlog.pending[slot].store(pending as i64 + 1, Ordering::Relaxed);
        leg.backlog.report(telemetry, &r.name);
        let hook = HookMessage::parse(
            msg.headers.as_ref(),
            msg.subject.as_str(),
            msg.payload.clone(),
            sequence,
        );
        // A private repository's event makes its name hidden; a public one's never unhides
        // it (the public stream keeps a repository's events from before it was private).
        if let Some(h) = &hook
            && (h.private || leg.visibility == crate::event::Visibility::Private)
        {
            telemetry.health.names.learn(&h.repo, true);
        }
        let Some(hook) = hook else {
            telemetry.emit(telemetry::RelaySkipped {
                receiver: &r.name,
                subject: msg.subject.as_str(),
                why: "not a hook event (no X-Gitea-Event header)",
            });
            ack(&msg, AckKind::Term).await;
            continue;
        };
        if !r.wants(&hook.event, &hook.repo) {
            ack(&msg, AckKind::Ack).await;
            last_acked = Some(sequence);
            in_hand.store(0, Ordering::Relaxed);
            done(telemetry, &r.name, leg, pending);
            continue;
        }
        let Some(outcome) = deliver(sender, &hook, Some(&msg), telemetry, shutdown).await else {
            // Shutdown mid-delivery: unacknowledged, handed out again after a restart.
            return Ok(());
        };
        if let Outcome::Dead(letter) = outcome {
            // The letter must be stored before the event is acknowledged; if it cannot be,
            // the event stays unacknowledged and this loop starts over (and tries again).
            dead::put(dead_letters, &letter).await?;
        }
        ack(&msg, AckKind::Ack).await;
        last_acked = Some(sequence);
        in_hand.store(0, Ordering::Relaxed);
        done(telemetry, &r.name, leg, pending);
    }
}

/// How often the backlog gauge is refreshed from the consumer's info.
const BACKLOG_EVERY: Duration = Duration::from_secs(2);

/// Aborts a task when dropped: the backlog watcher ends with its consumer's loop.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn watch_backlog(
    mut consumer: consumer::Consumer<consumer::pull::Config>,
    receiver: String,
    leg: Leg,
    telemetry: Telemetry,
) {
    loop {
        tokio::time::sleep(BACKLOG_EVERY).await;
        if let Ok(info) = consumer.info().await {
            let pending = info.num_pending + info.num_ack_pending as u64;
            leg.backlog.pending[leg.slot()].store(
                i64::try_from(pending).unwrap_or(i64::MAX),
                Ordering::Relaxed,
            );
            leg.backlog.report(&telemetry, &receiver);
        }
    }
}

async fn ack(msg: &jetstream::Message, kind: AckKind) {
    // A lost ack means the event is handed out again after ack_wait: at least once, with
    // the same delivery id. Nothing else to do about it.
    let _ = msg.ack_with(kind).await;
}

fn done(telemetry: &Telemetry, receiver: &str, leg: &Leg, pending: u64) {
    if pending == 0 {
        leg.backlog.pending[leg.slot()].store(0, Ordering::Relaxed);
        leg.backlog.report(telemetry, receiver);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use axum::response::IntoResponse;

    use super::*;
    use crate::config::Secret;

    /// A receiver at `url` with the defaults of a `[[receiver]]` table.
    fn receiver(url: &str) -> Arc<Receiver> {
        Arc::new(Receiver {
            name: "ci".into(),
            url: Secret::new(url),
            shown: url.into(),
            secret: None,
            authorization: None,
            events: Vec::new(),
            repos: Vec::new(),
            timeout: Duration::from_secs(10),
            give_up_after: Duration::from_secs(3600),
            max_attempts: None,
            method: Method::Post,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            ack_wait: Duration::from_secs(30),
            start: Start::New,
            private: false,
        })
    }

    fn hook() -> HookMessage {
        HookMessage {
            event_id: "e1".into(),
            event: "push".into(),
            event_type: "push".into(),
            repo: "acme/widgets".into(),
            body: Bytes::from_static(b"{}"),
            sequence: 1,
            private: false,
        }
    }

    /// Serves `app` on a free port; its URL.
    async fn serve(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}/hook")
    }

    #[tokio::test]
    async fn a_retry_after_of_u64_max_seconds_ends_in_a_dead_letter_not_a_dead_loop() {
        // One second first (the overflow needs a deadline already past its first second),
        // then the largest number a u64 holds.
        let calls = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                async move {
                    let after = if n == 0 { "1" } else { "18446744073709551615" };
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        [("Retry-After", after)],
                        "busy",
                    )
                        .into_response()
                }
            }),
        );
        let sender = Sender::new(receiver(&serve(app).await)).expect("sender");
        let outcome = deliver(
            &sender,
            &hook(),
            None,
            &Telemetry::new(),
            &Shutdown::never(),
        )
        .await;
        match outcome {
            Some(Outcome::Dead(letter)) => {
                assert_eq!(letter.attempts, 2);
                assert!(letter.reason.contains("HTTP 503"), "{}", letter.reason);
            }
            other => panic!("a wait longer than give_up_after gives up at once: {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_endless_answer_is_read_only_as_far_as_a_dead_letter_keeps() {
        // 256 MiB offered in 64 KiB chunks; what the server had to produce is counted.
        let produced = Arc::new(AtomicUsize::new(0));
        let counter = produced.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let counter = counter.clone();
                async move {
                    let chunks = futures::stream::iter(0..4096).map(move |_| {
                        counter.fetch_add(64 * 1024, Ordering::Relaxed);
                        Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024]))
                    });
                    (
                        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                        axum::body::Body::from_stream(chunks),
                    )
                        .into_response()
                }
            }),
        );
        let sender = Sender::new(receiver(&serve(app).await)).expect("sender");
        let a = sender.attempt(&hook()).await;
        assert_eq!(a.status, Some(422));
        assert_eq!(a.excerpt.chars().filter(|c| *c == 'x').count(), EXCERPT);
        // What the kernel's socket buffers took before the client stopped reading.
        let sent = produced.load(Ordering::Relaxed);
        assert!(
            sent < 32 << 20,
            "the relay read the whole answer: the server produced {} MiB",
            sent >> 20
        );
    }
}
