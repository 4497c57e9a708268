//! Cursors in the JetStream key-value bucket: one key per source, written with
//! compare-and-set on the revision that was read, so two sourcers polling the same source
//! cannot silently overwrite each other's progress (the loser gets [`StoreError::Conflict`]).

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use futures::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::source::SourceSpec;

pub mod cursor;
mod key;

use cursor::Cursor;
pub use key::{Key, NotAKey};

/// An error of the NATS client (or of encoding a value for it), kept as it came.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The header a key-value bucket's message names its operation in (`PUT`, `DEL`, `PURGE`).
const KV_OPERATION: &str = "KV-Operation";
/// The header of a message the server wrote itself (a key removed or aged out).
const NATS_MARKER_REASON: &str = "Nats-Marker-Reason";

/// Errors of reading or writing cursors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `key` was written by someone else since it was read (compare-and-set lost).
    #[error("{}", conflict(key))]
    Conflict { key: String },
    /// The bucket failed a read, write, deletion or watch (NATS side: no answer, no leader,
    /// a server restarting), or a value could not be encoded: worth another try.
    #[error("cursor bucket: {0}")]
    Kv(#[source] BoxError),
    /// A stored value that is not the JSON expected under its key.
    #[error("{key} in the cursor bucket is not valid JSON ({source}); delete it to start it over")]
    CorruptKey {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// A stored cursor that is not the JSON of a cursor.
    #[error(
        "the stored cursor of {source_spec} is not valid JSON ({source}); reset it with \
             `cursors reset {source_spec}`"
    )]
    Corrupt {
        source_spec: SourceSpec,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Whether trying again may succeed: the bucket failed (NATS side). A conflict or a
    /// corrupt value stays what it is.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Kv(_))
    }
}

/// The message of a [`StoreError::Conflict`] on `key`.
fn conflict(key: &str) -> String {
    match key.parse() {
        Ok(Key::Cursor(spec)) => format!(
            "the cursor of {spec} was changed by someone else (another sourcer on the same \
             bucket?); not overwriting it"
        ),
        _ => format!(
            "{key} in the cursor bucket was changed by someone else (another sourcer or \
             backfill at once?); not overwriting it"
        ),
    }
}

/// A failure of the bucket, its source kept.
fn kv(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Kv(Box::new(e))
}

/// How long [`CursorStore::save`] tries a cursor write again that failed on the NATS side:
/// longer than an election of the bucket's leader (10 s on the tests' loopback cluster).
pub const SAVE_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// A cursor and the KV revision it was read at (0: not stored yet).
#[derive(Debug, Clone)]
pub struct Stored {
    pub cursor: Cursor,
    pub revision: u64,
}

/// The cursor bucket.
#[derive(Clone)]
pub struct CursorStore {
    kv: kv::Store,
}

impl CursorStore {
    pub fn new(kv: kv::Store) -> Self {
        CursorStore { kv }
    }

    /// The JSON value stored under `key` and its revision; `None` when absent or deleted.
    /// Cursors, repository-kind cursors and backfill ledgers all live in the bucket this way.
    ///
    /// Read from the bucket's stream leader (`STREAM.MSG.GET`), not with the `DIRECT.GET`
    /// that `kv::Store::entry` uses: every replica answers a direct get, a follower with what
    /// it has applied so far, so an instance taking a source's lease right after another
    /// wrote the cursor and let the lease go could read the cursor before that write and
    /// publish again what came after it. Reads are few (a task's start, a conflict).
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, u64)>, StoreError> {
        let subject = format!("{}{key}", self.kv.prefix);
        let message = match self
            .kv
            .stream
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(m) => m,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(kv(e)),
        };
        // As `kv::Store::entry`: a message without an operation header is a put; a delete,
        // a purge, or a server's marker (a removed or aged-out key) is no value.
        let removed = message
            .headers
            .get(KV_OPERATION)
            .is_some_and(|op| op.as_str() != "PUT")
            || message.headers.get(NATS_MARKER_REASON).is_some();
        if removed {
            return Ok(None);
        }
        let value =
            serde_json::from_slice(&message.payload).map_err(|source| StoreError::CorruptKey {
                key: key.to_string(),
                source,
            })?;
        Ok(Some((value, message.sequence)))
    }

    /// Writes `value` under `key` if the stored revision is still `revision` (0: the key
    /// must not exist yet). Returns the new revision.
    pub async fn put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        revision: u64,
    ) -> Result<u64, StoreError> {
        let bytes = serde_json::to_vec(value).map_err(kv)?;
        let taken = || StoreError::Conflict {
            key: key.to_string(),
        };
        if revision == 0 {
            return self
                .kv
                .create(key, bytes.into())
                .await
                .map_err(|e| match e.kind() {
                    kv::CreateErrorKind::AlreadyExists => taken(),
                    _ => kv(e),
                });
        }
        self.kv
            .update(key, bytes.into(), revision)
            .await
            .map_err(|e| match e.kind() {
                kv::UpdateErrorKind::WrongLastRevision => taken(),
                _ => kv(e),
            })
    }

    /// The stored cursor of a source, if any.
    pub async fn load(&self, spec: &SourceSpec) -> Result<Option<Stored>, StoreError> {
        let key = Key::Cursor(spec.clone()).to_string();
        match self.get::<Cursor>(&key).await {
            Ok(v) => Ok(v.map(|(cursor, revision)| Stored { cursor, revision })),
            Err(StoreError::CorruptKey { source, .. }) => Err(StoreError::Corrupt {
                source_spec: spec.clone(),
                source,
            }),
            Err(e) => Err(e),
        }
    }

    /// Writes `cursor` if the stored revision is still `revision` (0: must not exist yet).
    /// Returns the new revision.
    ///
    /// A write that fails on the NATS side (no answer: an election of the bucket's leader, a
    /// server restarting) is tried again for up to [`SAVE_RETRY`], so that a catch-up does
    /// not give up the days it has read ahead for one lost answer. Such a write may have been
    /// stored all the same; when the retry then finds the revision moved on, the stored
    /// cursor is read back: if it is this one, the write stood; anything else is a conflict.
    ///
    /// It stops trying at `stop` (shutdown, or a lease that may be gone): the cursor then
    /// stays at its last write, and what came after is published again (same ids).
    pub async fn save(
        &self,
        spec: &SourceSpec,
        cursor: &Cursor,
        revision: u64,
        stop: &crate::shutdown::Shutdown,
    ) -> Result<u64, StoreError> {
        let mut retry = crate::retry::RetryWithin::new(SAVE_RETRY);
        let mut uncertain = false;
        let key = Key::Cursor(spec.clone()).to_string();
        loop {
            match self.put(&key, cursor, revision).await {
                Ok(r) => return Ok(r),
                Err(e @ StoreError::Conflict { .. }) if uncertain => {
                    return match self.load(spec).await? {
                        Some(stored) if stored.cursor == *cursor => Ok(stored.revision),
                        _ => Err(e),
                    };
                }
                Err(StoreError::Kv(e)) => {
                    let failed = format!("the cursor write of {spec} failed: {e}");
                    if !retry.pause(stop, &failed).await {
                        return Err(StoreError::Kv(e));
                    }
                    uncertain = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes a source's cursor: it starts over as `poll.start` says.
    pub async fn reset(&self, spec: &SourceSpec) -> Result<bool, StoreError> {
        let existed = self.load(spec).await?.is_some();
        let key = Key::Cursor(spec.clone()).to_string();
        self.kv.purge(&key).await.map_err(kv)?;
        Ok(existed)
    }

    /// Every key in the bucket (cursors, repository kinds' cursors, ledgers, pause marks).
    async fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.kv
            .keys()
            .await
            .map_err(kv)?
            .try_collect()
            .await
            .map_err(kv)
    }

    /// Every stored cursor, ordered by source.
    pub async fn list(&self) -> Result<Vec<(SourceSpec, Stored)>, StoreError> {
        let keys = self.keys().await?;
        let mut out = Vec::new();
        for key in keys {
            let Ok(Key::Cursor(spec)) = key.parse() else {
                continue;
            };
            if let Some(stored) = self.load(&spec).await? {
                out.push((spec, stored));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Deletes the backfill ledgers (`backfill/YYYY-MM-DD`) of the days before `keep_from`,
    /// returning the days pruned, oldest first. Their events are beyond the stream's
    /// `max_age` (see [`crate::nats::ledgers_needed_from`]), so the ledgers guard nothing;
    /// a later `backfill` of such a day publishes it again. Other keys are never touched.
    pub async fn prune_backfill_ledgers(
        &self,
        keep_from: chrono::NaiveDate,
    ) -> Result<Vec<chrono::NaiveDate>, StoreError> {
        let keys = self.keys().await?;
        let mut days: Vec<chrono::NaiveDate> = keys
            .iter()
            .filter_map(|k| ledger_day(k))
            .filter(|d| *d < keep_from)
            .collect();
        days.sort();
        for day in &days {
            let key = Key::Ledger(*day).to_string();
            self.kv.purge(&key).await.map_err(kv)?;
        }
        Ok(days)
    }
}

/// A pause of a source (`[control]` `sources-pause`), stored beside its cursor under
/// [`Key::Paused`] (`paused.` + its key): every instance on the bucket leaves the source alone
/// until the mark is deleted, across restarts, reloads and lease moves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PauseMark {
    /// When it was paused.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Which process paused it (its `[ha]` instance name, or `HOST-PID`).
    pub by: String,
}

impl CursorStore {
    /// Stores a pause mark for `spec`; `false` when it was paused already (the mark stays).
    pub async fn pause(&self, spec: &SourceSpec, mark: &PauseMark) -> Result<bool, StoreError> {
        let key = Key::Paused(spec.clone()).to_string();
        match self.put(&key, mark, 0).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the pause mark of `spec` (whatever its value); `false` when it was not paused.
    pub async fn resume(&self, spec: &SourceSpec) -> Result<bool, StoreError> {
        let key = Key::Paused(spec.clone()).to_string();
        let entry = self.kv.entry(&key).await.map_err(kv)?;
        if !entry.is_some_and(|e| e.operation == kv::Operation::Put) {
            return Ok(false);
        }
        self.kv.purge(&key).await.map_err(kv)?;
        Ok(true)
    }

    /// Every paused source and its mark, ordered by source. The key is the pause: a value
    /// that is not a [`PauseMark`] (one put by hand, say) pauses the source all the same and
    /// comes back as `None`.
    pub async fn pauses(&self) -> Result<Vec<(SourceSpec, Option<PauseMark>)>, StoreError> {
        let keys = self.keys().await?;
        let mut out = Vec::new();
        for key in keys {
            let Ok(Key::Paused(spec)) = key.parse() else {
                continue;
            };
            let entry = self.kv.entry(&key).await.map_err(kv)?;
            if let Some(e) = entry.filter(|e| e.operation == kv::Operation::Put) {
                out.push((spec, serde_json::from_slice(&e.value).ok()));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The changes of pause marks from now on (puts and deletions of `paused.>`).
    pub async fn watch_pauses(&self) -> Result<kv::Watch, StoreError> {
        self.kv.watch(Key::every_pause()).await.map_err(kv)
    }
}

/// The day of a backfill ledger key (`backfill/2026-10-01`), `None` for any other key.
pub fn ledger_day(key: &str) -> Option<chrono::NaiveDate> {
    match key.parse() {
        Ok(Key::Ledger(day)) => Some(day),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_failure_keeps_its_source_and_is_retryable_a_conflict_is_not() {
        let e = StoreError::Kv(Box::new(std::io::Error::other("timed out")));
        assert_eq!(e.to_string(), "cursor bucket: timed out");
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.is_retryable());
        let spec: SourceSpec = "org:acme".parse().unwrap();
        let conflict = StoreError::Conflict {
            key: Key::Cursor(spec).to_string(),
        };
        assert!(!conflict.is_retryable());
        assert_eq!(
            conflict.to_string(),
            "the cursor of org:acme was changed by someone else (another sourcer on the same \
             bucket?); not overwriting it"
        );
        let ledger = StoreError::Conflict {
            key: "backfill/2026-10-01".into(),
        };
        assert_eq!(
            ledger.to_string(),
            "backfill/2026-10-01 in the cursor bucket was changed by someone else (another \
             sourcer or backfill at once?); not overwriting it"
        );
    }

    #[test]
    fn ledger_keys_are_told_from_other_keys() {
        assert_eq!(
            ledger_day("backfill/2026-10-01"),
            chrono::NaiveDate::from_ymd_opt(2026, 10, 1)
        );
        assert_eq!(ledger_day("backfill/2026-13-01"), None);
        assert_eq!(ledger_day("org.acme"), None);
        assert_eq!(ledger_day("kind/issues/acme/widgets"), None);
    }
}
