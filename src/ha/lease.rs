//! The lease bucket: one key per instance alive (`instance/NAME`, its heartbeat) and one per
//! source held (`lease/SOURCE`, its holder), each written with compare-and-set and expiring
//! on the server's clock unless written again within the TTL.
//!
//! Expiry: on a server with per-message TTL (2.11 and newer) the bucket is created with
//! `allow_msg_ttl` and delete markers, and every write carries `Nats-TTL`; on 2.10 the bucket's
//! `max_age` is the TTL (every key in it is a lease or a heartbeat, so a bucket-wide age is
//! the same thing). Either way the server drops a key its writer stopped renewing.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, kv, stream};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::config::HaConfig;
use crate::source::{SourceSpec, kv_escape};
use crate::store::Key;

/// What goes wrong with the lease bucket.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease bucket {bucket}: {message}")]
    Bucket { bucket: String, message: String },
    #[error("lease bucket {bucket}: {message}")]
    Kv { bucket: String, message: String },
}

impl LeaseError {
    /// A bucket that exists with settings this config cannot use: the operator must act.
    pub fn is_permanent(&self) -> bool {
        matches!(self, LeaseError::Bucket { .. })
    }
}

/// The value of a key: who wrote it and since when it holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub instance: String,
    pub since: DateTime<Utc>,
    /// Random per process: tells this process's writes from another's of the same name.
    #[serde(default)]
    pub nonce: u64,
    /// Heartbeats: a fingerprint of the instance's source list (every instance should have
    /// the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<String>,
}

impl Holder {
    /// Written by the same process for the same taking (the source-list fingerprint of a
    /// heartbeat may differ after a reload).
    pub fn same_writer(&self, other: &Holder) -> bool {
        self.instance == other.instance && self.nonce == other.nonce && self.since == other.since
    }
}

/// A key's value and revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub holder: Holder,
    pub revision: u64,
}

/// The bucket as read in one round.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Instances alive, by name.
    pub instances: BTreeMap<String, Entry>,
    /// Source leases, by source.
    pub leases: BTreeMap<SourceSpec, Entry>,
}

/// A compare-and-set write's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored at this revision.
    At(u64),
    /// The key is not at the expected revision: someone else wrote it (or it expired).
    Taken,
}

/// The lease bucket of `[ha]`.
#[derive(Clone)]
pub struct LeaseBucket {
    js: jetstream::Context,
    kv: kv::Store,
    bucket: String,
    ttl: Duration,
    /// Per-key TTL (2.11+); otherwise the bucket's `max_age` expires every key.
    per_key: bool,
}

/// The shortest wait for the next message while reading the leases.
const MIN_VIEW_WAIT: Duration = Duration::from_millis(500);

/// The key of an instance's heartbeat.
pub fn instance_key(instance: &str) -> String {
    format!("instance/{}", kv_escape(instance))
}

/// The key of a source's lease.
pub fn lease_key(spec: &SourceSpec) -> String {
    Key::Lease(spec.clone()).to_string()
}

/// Whether a server version (`2.11.0`, `v2.10.26`) has per-message TTL (2.11+); an
/// unreadable one has not.
pub fn has_per_key_ttl(version: &str) -> bool {
    crate::nats::server_major_minor(version).is_some_and(|v| v >= (2, 11))
}

impl LeaseBucket {
    /// Opens the bucket, creating it for `ha.lease_ttl` if missing (`replicas` as the
    /// cursor bucket's; per-key TTL when `server_version` has it).
    pub async fn open(
        js: &jetstream::Context,
        ha: &HaConfig,
        replicas: usize,
        server_version: &str,
    ) -> Result<LeaseBucket, LeaseError> {
        if let Some(b) = LeaseBucket::find(js, ha).await? {
            return Ok(b);
        }
        let per_key = has_per_key_ttl(server_version);
        let created = js
            .create_key_value(kv::Config {
                bucket: ha.lease_bucket.clone(),
                description: "gitea-nats-sourcer leases ([ha]): instances alive and who polls \
                              which source; keys expire"
                    .into(),
                history: 1,
                max_age: if per_key {
                    Duration::ZERO
                } else {
                    ha.lease_ttl
                },
                limit_markers: per_key.then_some(ha.lease_ttl),
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await;
        // Another instance may have created it at the same moment: look again either way.
        match (LeaseBucket::find(js, ha).await?, created) {
            (Some(b), _) => Ok(b),
            (None, Err(e)) => Err(LeaseError::Bucket {
                bucket: ha.lease_bucket.clone(),
                message: format!("cannot create it: {e}"),
            }),
            (None, Ok(_)) => Err(LeaseError::Kv {
                bucket: ha.lease_bucket.clone(),
                message: "created, then not found".into(),
            }),
        }
    }

    /// The bucket if it exists (never created here: `check` and `cursors list` use it),
    /// with its expiry checked against `ha.lease_ttl`.
    pub async fn find(
        js: &jetstream::Context,
        ha: &HaConfig,
    ) -> Result<Option<LeaseBucket>, LeaseError> {
        let bucket = ha.lease_bucket.clone();
        let fail = |message: String| LeaseError::Bucket {
            bucket: bucket.clone(),
            message,
        };
        let kv_err = |e: &dyn std::fmt::Display| LeaseError::Kv {
            bucket: bucket.clone(),
            message: e.to_string(),
        };
        let kv = match js.get_key_value(&bucket).await {
            Ok(kv) => kv,
            Err(e) if e.kind() == jetstream::context::KeyValueErrorKind::GetBucket => {
                return Ok(None);
            }
            Err(e) => return Err(kv_err(&e)),
        };
        let config = js
            .get_stream(format!("KV_{bucket}"))
            .await
            .map_err(|e| kv_err(&e))?
            .cached_info()
            .config
            .clone();
        let per_key = config.allow_message_ttl;
        if !per_key {
            if config.max_age.is_zero() {
                return Err(fail(
                    "it exists without expiry (no max_age, no per-message TTL): leases of a \
                     dead instance would never expire; delete it (`nats kv del`) and let the \
                     sourcer create it"
                        .into(),
                ));
            }
            if config.max_age != ha.lease_ttl {
                return Err(fail(format!(
                    "its keys expire after {} (max_age) but ha.lease_ttl is {}: give every \
                     instance the same lease_ttl, or delete the bucket",
                    humantime::format_duration(config.max_age),
                    humantime::format_duration(ha.lease_ttl)
                )));
            }
        }
        Ok(Some(LeaseBucket {
            js: js.clone(),
            kv,
            bucket,
            ttl: ha.lease_ttl,
            per_key,
        }))
    }

    /// Whether keys expire one by one (per-message TTL) rather than by the bucket's age.
    pub fn per_key_ttl(&self) -> bool {
        self.per_key
    }

    fn kv_err(&self, e: impl std::fmt::Display) -> LeaseError {
        LeaseError::Kv {
            bucket: self.bucket.clone(),
            message: e.to_string(),
        }
    }

    /// Every live instance and lease, read in one pass (waiting at most `wait` for each
    /// message): an ordered consumer delivering the
    /// last message of every key (one request per round, however many sources).
    pub async fn view(&self, wait: Duration) -> Result<View, LeaseError> {
        use async_nats::jetstream::consumer::{self, DeliverPolicy, ReplayPolicy};
        let consumer = self
            .kv
            .stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: self.js.client().new_inbox(),
                description: Some("gitea-nats-sourcer lease view".into()),
                filter_subject: format!("{}>", self.kv.prefix),
                replay_policy: ReplayPolicy::Instant,
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| self.kv_err(e))?;
        let mut view = View::default();
        if consumer.cached_info().num_pending == 0 {
            return Ok(view);
        }
        let mut messages = consumer.messages().await.map_err(|e| self.kv_err(e))?;
        loop {
            let next = tokio::time::timeout(wait.max(MIN_VIEW_WAIT), messages.next()).await;
            let m = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(self.kv_err(e)),
                Ok(None) => break,
                Err(_) => return Err(self.kv_err("no answer while reading the leases")),
            };
            let pending = m.info().map(|i| i.pending).unwrap_or(0);
            let deleted = m.headers.as_ref().is_some_and(|h| {
                h.get("KV-Operation").is_some()
                    || h.get(async_nats::header::NATS_MARKER_REASON).is_some()
            });
            let key = m.subject.as_str().strip_prefix(self.kv.prefix.as_str());
            let revision = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            // A value that is not a holder counts as absent (the next holder overwrites it).
            if let (false, Some(key), Ok(holder)) =
                (deleted, key, serde_json::from_slice::<Holder>(&m.payload))
            {
                let entry = Entry { holder, revision };
                if key.starts_with("instance/") {
                    view.instances.insert(entry.holder.instance.clone(), entry);
                } else if let Ok(Key::Lease(spec)) = key.parse() {
                    view.leases.insert(spec, entry);
                }
            }
            if pending == 0 {
                break;
            }
        }
        Ok(view)
    }

    /// Yields when a key is deleted or expires, or an instance's heartbeat appears (not at
    /// each renewal): what should make the coordinator look again at once.
    pub async fn watch_changes(
        &self,
    ) -> Result<std::pin::Pin<Box<dyn futures::Stream<Item = ()> + Send>>, LeaseError> {
        let watch = self.kv.watch_all().await.map_err(|e| self.kv_err(e))?;
        let mut known = std::collections::HashSet::new();
        Ok(Box::pin(watch.filter_map(move |e| {
            let out = match e {
                Err(_) => None,
                Ok(e) if e.operation != kv::Operation::Put => {
                    known.remove(&e.key);
                    Some(())
                }
                Ok(e) if e.key.starts_with("instance/") => known.insert(e.key).then_some(()),
                Ok(_) => None,
            };
            std::future::ready(out)
        })))
    }

    /// The revision a create must expect: 0, or that of a deletion or expiry marker.
    async fn last_revision(&self, key: &str) -> Result<Option<u64>, LeaseError> {
        let e = self.kv.entry(key).await.map_err(|e| self.kv_err(e))?;
        Ok(match e {
            None => Some(0),
            Some(e) if e.operation != kv::Operation::Put => Some(e.revision),
            Some(_) => None,
        })
    }

    /// Writes `holder` at `key` if the key is at `revision` (0: absent).
    pub async fn write(
        &self,
        key: &str,
        holder: &Holder,
        revision: u64,
    ) -> Result<Written, LeaseError> {
        let value = serde_json::to_vec(holder).map_err(|e| self.kv_err(e))?;
        self.publish(key, value.into(), revision, None).await
    }

    /// A key's live value (`None`: absent, deleted, expired, or not a holder).
    pub async fn read(&self, key: &str) -> Result<Option<Entry>, LeaseError> {
        let e = self.kv.entry(key).await.map_err(|e| self.kv_err(e))?;
        Ok(e.filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| {
                let holder = serde_json::from_slice::<Holder>(&e.value).ok()?;
                Some(Entry {
                    holder,
                    revision: e.revision,
                })
            }))
    }

    /// Like [`LeaseBucket::write`], for a key this process wrote last: when the key moved
    /// past `revision` but still holds exactly `holder` (the answer to an earlier write was
    /// lost), writes at its revision now instead of reporting it taken.
    pub async fn write_own(
        &self,
        key: &str,
        holder: &Holder,
        revision: u64,
    ) -> Result<Written, LeaseError> {
        match self.write(key, holder, revision).await? {
            Written::Taken if revision > 0 => match self.read(key).await? {
                Some(e) if e.holder.same_writer(holder) => {
                    self.write(key, holder, e.revision).await
                }
                _ => Ok(Written::Taken),
            },
            done => Ok(done),
        }
    }

    /// Writes `holder` at `key` if no one holds it (absent, deleted or expired).
    pub async fn create(&self, key: &str, holder: &Holder) -> Result<Written, LeaseError> {
        match self.write(key, holder, 0).await? {
            Written::Taken => match self.last_revision(key).await? {
                Some(rev) if rev > 0 => self.write(key, holder, rev).await,
                _ => Ok(Written::Taken),
            },
            done => Ok(done),
        }
    }

    /// Deletes `key` if it is still at `revision` (a released lease; someone else's newer
    /// write is left alone).
    pub async fn delete(&self, key: &str, revision: u64) -> Result<Written, LeaseError> {
        self.publish(key, bytes::Bytes::new(), revision, Some("DEL"))
            .await
    }

    async fn publish(
        &self,
        key: &str,
        value: bytes::Bytes,
        revision: u64,
        operation: Option<&str>,
    ) -> Result<Written, LeaseError> {
        let subject = format!(
            "{}{key}",
            self.kv.put_prefix.as_deref().unwrap_or(&self.kv.prefix)
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            revision.to_string().as_str(),
        );
        if self.per_key {
            headers.insert(
                async_nats::header::NATS_MESSAGE_TTL,
                self.ttl.as_secs().to_string().as_str(),
            );
        }
        if let Some(op) = operation {
            headers.insert("KV-Operation", op);
        }
        let ack = self
            .js
            .publish_with_headers(subject, headers, value)
            .await
            .map_err(|e| self.kv_err(e))?
            .await;
        match ack {
            Ok(ack) => Ok(Written::At(ack.sequence)),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(Written::Taken),
            Err(e) => Err(self.kv_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_key_ttl_comes_with_2_11() {
        for (v, yes) in [
            ("2.10.26", false),
            ("v2.10.0", false),
            ("2.11.0", true),
            ("2.11.0-RC.2", true),
            ("2.15.1", true),
            ("3.0.0", true),
            ("junk", false),
        ] {
            assert_eq!(has_per_key_ttl(v), yes, "{v}");
        }
    }

    #[test]
    fn keys_are_valid_kv_keys_and_apart() {
        let spec = SourceSpec::repo("acme", "dot.files").unwrap();
        assert_eq!(lease_key(&spec), "lease/repo/acme/dot=2Efiles");
        assert_eq!(
            instance_key("web-1.example.org-42"),
            "instance/web-1=2Eexample=2Eorg-42"
        );
    }
}
