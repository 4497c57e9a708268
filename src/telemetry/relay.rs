//! The relay: receivers, deliveries, retries, dead letters, backlog.

use std::fmt::Display;
use std::time::Duration;

use super::{Happening, TARGET};
use crate::telemetry::health::Health;
use crate::telemetry::metrics::{Metrics, ReceiverClassLabels, ReceiverLabel, status_class};

fn receiver_label(receiver: &str) -> ReceiverLabel {
    ReceiverLabel {
        receiver: receiver.to_string(),
    }
}

fn relay_class(m: &Metrics, receiver: &str, status: Option<u16>) {
    let class = status_class(status);
    m.relay_deliveries
        .get_or_create(&ReceiverClassLabels {
            receiver: receiver.to_string(),
            class: class.into(),
        })
        .inc();
}

/// Relay: every receiver's loop is started.
pub struct RelayReady {
    pub receivers: usize,
}

impl Happening for RelayReady {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::info!(target: TARGET, receivers = self.receivers, "relay running");
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            tracing::debug!(target: TARGET, "sd_notify READY: {e}");
        }
    }
}

/// Relay, at start: which repositories' events a receiver gets.
pub struct RelayReceiverGets<'a> {
    pub receiver: &'a str,
    /// Opted in to private repositories' events (`private = true`).
    pub private: bool,
    pub stream: &'a str,
    pub private_stream: &'a str,
}

impl Happening for RelayReceiverGets<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        match self.private {
            true => tracing::info!(target: TARGET,
                receiver = self.receiver,
                streams = format!("{} {}", self.stream, self.private_stream),
                "receiver gets public and private repositories' events (private = true)"
            ),
            false => tracing::info!(target: TARGET,
                receiver = self.receiver,
                streams = self.stream,
                "receiver gets public repositories' events only (private repositories' need private = true)"
            ),
        }
    }
}

/// Relay: a receiver's delivery loop has its consumer in one stream and waits for events.
pub struct RelayReceiverStarted<'a> {
    pub receiver: &'a str,
    /// Scheme, host and port only: the URL may carry a token.
    pub url: &'a str,
    pub consumer: &'a str,
    pub stream: &'a str,
    /// `public` or `private`: whose events the stream holds.
    pub visibility: &'a str,
}

impl Happening for RelayReceiverStarted<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        h.progress();
        // Every relay family shows this receiver at zero from the start of its loop.
        m.init_receiver(self.receiver);
        tracing::info!(target: TARGET,
            receiver = self.receiver,
            url = self.url,
            consumer = self.consumer,
            stream = self.stream,
            visibility = self.visibility,
            "relaying hook events to receiver"
        );
    }
}

/// Relay: a receiver answered 2xx; the event is acknowledged.
pub struct RelayDelivered<'a> {
    pub receiver: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub repo: &'a str,
    pub status: u16,
    pub attempts: u32,
    /// From the first attempt to the answer.
    pub took: Duration,
}

impl Happening for RelayDelivered<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        h.progress();
        relay_class(m, self.receiver, Some(self.status));
        m.relay_delivery_duration
            .get_or_create(&receiver_label(self.receiver))
            .observe(self.took.as_secs_f64());
        tracing::info!(target: TARGET,
            receiver = self.receiver,
            event_id = self.event_id,
            status = self.status,
            attempts = self.attempts,
            took_ms = self.took.as_millis() as u64,
            "delivered {} {}",
            self.event_type,
            h.names.shown(self.repo)
        );
    }
}

/// Relay: an attempt failed and is tried again after `wait`.
pub struct RelayRetry<'a> {
    pub receiver: &'a str,
    pub event_id: &'a str,
    pub status: Option<u16>,
    /// `HTTP 503` or the error (without the URL).
    pub error: &'a str,
    pub attempt: u32,
    pub wait: Duration,
}

impl Happening for RelayRetry<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        h.progress();
        relay_class(m, self.receiver, self.status);
        m.relay_retries
            .get_or_create(&receiver_label(self.receiver))
            .inc();
        tracing::warn!(target: TARGET,
            receiver = self.receiver,
            event_id = self.event_id,
            attempt = self.attempt,
            wait_ms = self.wait.as_millis() as u64,
            "delivery failed, retrying: {}",
            self.error
        );
    }
}

/// Relay: an event became a dead letter (refused, or retried to the end).
pub struct RelayDeadLettered<'a> {
    pub receiver: &'a str,
    pub event_id: &'a str,
    pub status: Option<u16>,
    pub reason: &'a str,
}

impl Happening for RelayDeadLettered<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        h.progress();
        relay_class(m, self.receiver, self.status);
        m.relay_dead_letters
            .get_or_create(&receiver_label(self.receiver))
            .inc();
        tracing::error!(target: TARGET,
            receiver = self.receiver,
            event_id = self.event_id,
            "dead letter: {}",
            self.reason
        );
    }
}

/// Relay: how far behind a receiver is (events not yet delivered, the oldest one's age).
pub struct RelayBacklog<'a> {
    pub receiver: &'a str,
    pub pending: u64,
    pub oldest_age: f64,
}

impl Happening for RelayBacklog<'_> {
    fn emit(self, m: &Metrics, _: &Health) {
        let l = receiver_label(self.receiver);
        m.relay_backlog.get_or_create(&l).set(self.pending as i64);
        m.relay_oldest_undelivered
            .get_or_create(&l)
            .set(self.oldest_age);
    }
}

/// Relay: JetStream handed an event out again; `stale` when this loop had acknowledged it
/// already (it is acknowledged again, not delivered again).
pub struct RelayRedelivered<'a> {
    pub receiver: &'a str,
    pub sequence: u64,
    pub delivered: i64,
    pub stale: bool,
}

impl Happening for RelayRedelivered<'_> {
    fn emit(self, m: &Metrics, _: &Health) {
        m.relay_redeliveries
            .get_or_create(&receiver_label(self.receiver))
            .inc();
        tracing::info!(target: TARGET,
            receiver = self.receiver,
            sequence = self.sequence,
            delivered = self.delivered,
            "event handed out again{}",
            if self.stale {
                " (already delivered here: acknowledged, not sent again)"
            } else {
                ""
            }
        );
    }
}

/// Relay: a stored message on a hook subject is not a hook event; it is not delivered.
pub struct RelaySkipped<'a> {
    pub receiver: &'a str,
    pub subject: &'a str,
    pub why: &'a str,
}

impl Happening for RelaySkipped<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(target: TARGET,
            receiver = self.receiver,
            subject = self.subject,
            "not delivered: {}",
            self.why
        );
    }
}

/// Relay: a receiver's consumer failed (NATS away, stream missing); tried again after `wait`.
pub struct RelayConsumerFailed<'a> {
    pub receiver: &'a str,
    pub error: &'a dyn Display,
    pub wait: Duration,
}

impl Happening for RelayConsumerFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(target: TARGET,
            receiver = self.receiver,
            wait_ms = self.wait.as_millis() as u64,
            "relay consumer failed, starting it again: {}",
            self.error
        );
    }
}
