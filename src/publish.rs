//! Pipelined publishing to JetStream: every message of a batch is sent before any ack is
//! awaited (the context bounds how many are in flight), then all acks are awaited. Only
//! then may the caller move the cursor. `Nats-Msg-Id` = the event id, so a batch retried
//! after a failure is de-duplicated by the stream. `Content-Type:
//! application/cloudevents+json` marks the structured mode (the CloudEvents NATS binding).
//! An event larger than the server's `max_payload` is cut to fit ([`fit`]) before it is
//! sent, never refused. Every message says whose it is to read
//! ([`crate::event::VISIBILITY_HEADER`]: `public` or `private`, as its subject's prefix).

mod fit;

use async_nats::jetstream::{self, message::PublishMessage};

pub use fit::{CUT_MARK, Cut, FitError, TRUNCATED_HEADER, fit};

use crate::event::{Event, VISIBILITY_HEADER};
use crate::shutdown::Shutdown;

/// The header the CloudEvents NATS protocol binding gives a structured-mode message.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";

/// A batch that could not be published completely; the cursor must not move past it.
#[derive(Debug, thiserror::Error)]
#[error("publishing to JetStream failed after {acked} of {total} events: {message}")]
pub struct PublishError {
    pub acked: usize,
    pub total: usize,
    pub message: String,
}

/// What a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Stored as new messages.
    pub stored: usize,
    /// Refused by the stream as duplicates of an earlier publish (same id).
    pub duplicates: usize,
    /// Per event of the batch: whether it was a duplicate.
    pub duplicate: Vec<bool>,
}

/// Publishes events to the stream.
#[derive(Clone)]
pub struct Publisher {
    js: jetstream::Context,
    /// `[ha]`: this instance's name, sent as [`INSTANCE_HEADER`] on every event.
    instance: Option<String>,
}

/// The header naming the instance that published an event (`[ha]` only): which of several
/// sourcers sent what, for audits and for the failover tests.
pub const INSTANCE_HEADER: &str = "Gitea-Sourcer-Instance";

impl Publisher {
    pub fn new(js: jetstream::Context) -> Self {
        Publisher { js, instance: None }
    }

    /// The most a message may take on the wire (headers and body), as the server said when
    /// the connection was made: what [`fit`] cuts events to.
    pub fn max_payload(&self) -> usize {
        self.js.client().max_payload()
    }

    /// Every event also names `instance` ([`INSTANCE_HEADER`]).
    pub fn published_by(mut self, instance: String) -> Self {
        self.instance = Some(instance);
        self
    }

    /// Publishes `events` in order, pipelined, and waits for every ack. Before each message
    /// it looks at `fence`'s lease ([`Shutdown::lease_passed`]): once the lease may be gone
    /// it sends nothing more and fails (what it sent may be stored; the next holder sends it
    /// again with the same ids).
    pub async fn publish_all(
        &self,
        events: &[Event],
        fence: &Shutdown,
    ) -> Result<BatchOutcome, PublishError> {
        let total = events.len();
        let fail = |acked, e: &dyn std::fmt::Display| PublishError {
            acked,
            total,
            message: e.to_string(),
        };
        let mut pending = Vec::with_capacity(total);
        for e in events {
            if fence.lease_passed() {
                return Err(fail(
                    0,
                    &format_args!(
                        "the lease may be gone: stopped after sending {} of the batch",
                        pending.len()
                    ),
                ));
            }
            let mut msg = PublishMessage::build().payload(e.payload.clone());
            if e.headers.is_empty() {
                msg = msg.header("Content-Type", STRUCTURED_CONTENT_TYPE);
            }
            for (name, value) in &e.headers {
                msg = msg.header(*name, value.as_str());
            }
            msg = msg.header(VISIBILITY_HEADER, e.visibility.as_str());
            if let Some(instance) = &self.instance {
                msg = msg.header(INSTANCE_HEADER, instance.as_str());
            }
            let msg = msg.message_id(&e.id);
            let ack = self
                .js
                .send_publish(e.subject.clone(), msg)
                .await
                .map_err(|err| fail(0, &err))?;
            pending.push(ack);
        }
        let mut out = BatchOutcome::default();
        for (i, ack) in pending.into_iter().enumerate() {
            let ack = ack.await.map_err(|err| fail(i, &err))?;
            out.duplicate.push(ack.duplicate);
            if ack.duplicate {
                out.duplicates += 1;
            } else {
                out.stored += 1;
            }
        }
        Ok(out)
    }
}
