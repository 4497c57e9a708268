//! Pipelined publishing to JetStream: every message of a batch is sent before any ack is
//! awaited (the batch, `pipeline::BATCH`, bounds how many are in flight), then all acks are
//! awaited. Only
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
#[error(
    "publishing to JetStream failed after {acked} of {total} events: {}",
    reason(kind, source.as_deref())
)]
pub struct PublishError {
    /// Where it failed.
    pub kind: PublishErrorKind,
    /// Events acknowledged before the failure (the first ones of the batch).
    pub acked: usize,
    /// Events in the batch.
    pub total: usize,
    /// The NATS client's error (`None` for [`PublishErrorKind::Fenced`]).
    #[source]
    pub source: Option<crate::store::BoxError>,
}

/// Where publishing a batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishErrorKind {
    /// Sending a message (no connection, no stream).
    Send,
    /// Waiting for an ack (timed out, refused).
    Ack,
    /// The lease may be gone (`[ha]`): nothing more was sent after `sent` messages.
    Fenced { sent: usize },
}

/// The last part of a [`PublishError`]'s message.
fn reason(
    kind: &PublishErrorKind,
    source: Option<&(dyn std::error::Error + Send + Sync)>,
) -> String {
    match (kind, source) {
        (PublishErrorKind::Fenced { sent }, _) => {
            format!("the lease may be gone: stopped after sending {sent} of the batch")
        }
        (_, Some(e)) => e.to_string(),
        (_, None) => "no reason given".to_string(),
    }
}

impl PublishError {
    /// A failure of the NATS client while sending or awaiting acks.
    pub fn nats(
        kind: PublishErrorKind,
        acked: usize,
        total: usize,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        PublishError {
            kind,
            acked,
            total,
            source: Some(Box::new(e)),
        }
    }

    /// Whether the same batch may be published again: NATS failed it (sent or acked). A
    /// fenced publisher may no longer hold the source, so it must not.
    pub fn is_retryable(&self) -> bool {
        !matches!(self.kind, PublishErrorKind::Fenced { .. })
    }
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
        let mut pending = Vec::with_capacity(total);
        for e in events {
            if fence.lease_passed() {
                return Err(PublishError {
                    kind: PublishErrorKind::Fenced {
                        sent: pending.len(),
                    },
                    acked: 0,
                    total,
                    source: None,
                });
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
                .map_err(|err| PublishError::nats(PublishErrorKind::Send, 0, total, err))?;
            pending.push(ack);
        }
        let mut out = BatchOutcome::default();
        for (i, ack) in pending.into_iter().enumerate() {
            let ack = ack
                .await
                .map_err(|err| PublishError::nats(PublishErrorKind::Ack, i, total, err))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nats_failure_keeps_its_source_and_may_be_retried_a_fenced_one_may_not() {
        let e = PublishError::nats(
            PublishErrorKind::Ack,
            1,
            3,
            std::io::Error::other("timed out"),
        );
        assert_eq!(
            e.to_string(),
            "publishing to JetStream failed after 1 of 3 events: timed out"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.is_retryable());
        let fenced = PublishError {
            kind: PublishErrorKind::Fenced { sent: 2 },
            acked: 0,
            total: 3,
            source: None,
        };
        assert_eq!(
            fenced.to_string(),
            "publishing to JetStream failed after 0 of 3 events: the lease may be gone: \
             stopped after sending 2 of the batch"
        );
        assert!(!fenced.is_retryable());
    }
}
