//! Dead letters: one JSON record per (receiver, event) that could not be delivered, in a
//! JetStream key-value bucket (`dead_letter_bucket`, key `{receiver}.{delivery id}`). The
//! record points at the event's stream sequence, so `relay redeliver` can send the very
//! message again; a successful redelivery deletes the record.

use async_nats::jetstream::{self, kv, stream};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{BoxError, WorkError};

/// What is kept of a delivery that failed for good. No secret is in it: the URL is not,
/// and errors are recorded without their URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The receiver's name.
    pub receiver: String,
    /// The event's `ce-id`.
    pub event_id: String,
    /// `X-Gitea-Delivery` of its attempts.
    pub delivery_id: String,
    /// `X-Gitea-Event-Type`.
    pub event_type: String,
    /// `owner/name`.
    pub repo: String,
    /// Where the event is in the stream (for `relay redeliver`).
    pub stream_sequence: u64,
    /// The event is a private repository's: its sequence is in `nats.private_stream`
    /// (absent in letters written before: the public stream).
    #[serde(default)]
    pub private: bool,
    /// The last HTTP status, if the receiver answered at all.
    pub status: Option<u16>,
    /// Why: `refused` (a 4xx or 3xx), `gave up` (retries exhausted), and the last error.
    pub reason: String,
    /// The first bytes of the receiver's last answer.
    pub body_excerpt: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it became a dead letter (RFC 3339, UTC).
    pub time: String,
}

impl DeadLetter {
    /// Its key in the bucket.
    pub fn key(&self) -> String {
        format!("{}.{}", self.receiver, self.delivery_id)
    }
}

/// The dead-letter bucket, created (file storage, replicas as the stream's) if missing.
pub async fn bucket(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
) -> Result<kv::Store, WorkError> {
    let bucket_err = |creating: bool| {
        move |e: BoxError| WorkError::Bucket {
            name: name.to_string(),
            creating,
            source: e,
        }
    };
    match js.get_key_value(name).await {
        Ok(store) => Ok(store),
        Err(e) if e.kind() == jetstream::context::KeyValueErrorKind::GetBucket => js
            .create_key_value(kv::Config {
                bucket: name.to_string(),
                description:
                    "gitea-nats-sourcer relay: dead letters, one key per receiver and event".into(),
                history: 1,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| bucket_err(true)(e.into())),
        Err(e) => Err(bucket_err(false)(e.into())),
    }
}

/// Stores a record (a repeat of the same event overwrites its record).
pub async fn put(store: &kv::Store, letter: &DeadLetter) -> Result<(), WorkError> {
    let value = serde_json::to_vec(letter).map_err(|e| failed("")(e.into()))?;
    store
        .put(letter.key(), value.into())
        .await
        .map(|_| ())
        .map_err(|e| failed("cannot store the dead letter: ")(e.into()))
}

/// A dead-letter error: `what` went wrong (a prefix of the message, or none), and why.
fn failed(what: &'static str) -> impl Fn(BoxError) -> WorkError {
    move |source| WorkError::DeadLetter { what, source }
}

/// Every record, of one receiver or of all, oldest key order.
pub async fn list(store: &kv::Store, receiver: Option<&str>) -> Result<Vec<DeadLetter>, WorkError> {
    let mut keys = store.keys().await.map_err(|e| failed("")(e.into()))?;
    let mut out = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| failed("")(e.into()))?;
        if let Some(r) = receiver
            && !key.starts_with(&format!("{r}."))
        {
            continue;
        }
        if let Some(value) = store.get(&key).await.map_err(|e| failed("")(e.into()))?
            && let Ok(letter) = serde_json::from_slice::<DeadLetter>(&value)
        {
            out.push(letter);
        }
    }
    out.sort_by(|a, b| {
        (a.receiver.as_str(), a.stream_sequence).cmp(&(b.receiver.as_str(), b.stream_sequence))
    });
    Ok(out)
}

/// Removes a record (after a successful redelivery).
pub async fn remove(store: &kv::Store, letter: &DeadLetter) -> Result<(), WorkError> {
    store
        .purge(letter.key())
        .await
        .map_err(|e| failed("cannot remove the dead letter: ")(e.into()))
}
