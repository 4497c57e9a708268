//! Cursors in the JetStream key-value bucket: one key per source, written with
//! compare-and-set on the revision that was read, so two sourcers polling the same source
//! cannot silently overwrite each other's progress (the loser gets [`StateError::Conflict`]).

use async_nats::jetstream::kv;
use futures::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::source::SourceSpec;

pub mod cursor;

use cursor::Cursor;

/// Errors of reading or writing cursors.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the cursor of {source_spec} was changed by someone else (another sourcer on the same \
         bucket?); not overwriting it"
    )]
    Conflict { source_spec: SourceSpec },
    #[error("cursor bucket: {0}")]
    Kv(String),
    #[error(
        "{key} in the cursor bucket was changed by someone else (another sourcer or backfill at \
         once?); not overwriting it"
    )]
    Taken { key: String },
    #[error("{key} in the cursor bucket is not valid JSON ({message}); delete it to start it over")]
    CorruptKey { key: String, message: String },
    #[error(
        "the stored cursor of {source_spec} is not valid JSON ({message}); reset it with \
             `cursors reset {source_spec}`"
    )]
    Corrupt {
        source_spec: SourceSpec,
        message: String,
    },
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
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, u64)>, StateError> {
        let entry = self
            .kv
            .entry(key)
            .await
            .map_err(|e| StateError::Kv(e.to_string()))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let value =
                    serde_json::from_slice(&e.value).map_err(|err| StateError::CorruptKey {
                        key: key.to_string(),
                        message: err.to_string(),
                    })?;
                Ok(Some((value, e.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Writes `value` under `key` if the stored revision is still `revision` (0: the key
    /// must not exist yet). Returns the new revision.
    pub async fn put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        revision: u64,
    ) -> Result<u64, StateError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StateError::Kv(e.to_string()))?;
        let taken = || StateError::Taken {
            key: key.to_string(),
        };
        if revision == 0 {
            return self
                .kv
                .create(key, bytes.into())
                .await
                .map_err(|e| match e.kind() {
                    kv::CreateErrorKind::AlreadyExists => taken(),
                    _ => StateError::Kv(e.to_string()),
                });
        }
        self.kv
            .update(key, bytes.into(), revision)
            .await
            .map_err(|e| match e.kind() {
                kv::UpdateErrorKind::WrongLastRevision => taken(),
                _ => StateError::Kv(e.to_string()),
            })
    }

    /// The stored cursor of a source, if any.
    pub async fn load(&self, spec: &SourceSpec) -> Result<Option<Stored>, StateError> {
        match self.get::<Cursor>(&spec.kv_key()).await {
            Ok(v) => Ok(v.map(|(cursor, revision)| Stored { cursor, revision })),
            Err(StateError::CorruptKey { message, .. }) => Err(StateError::Corrupt {
                source_spec: spec.clone(),
                message,
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
    ) -> Result<u64, StateError> {
        let conflict = || StateError::Conflict {
            source_spec: spec.clone(),
        };
        let mut retry = crate::retry::RetryWithin::new(SAVE_RETRY);
        let mut uncertain = false;
        loop {
            match self.put(&spec.kv_key(), cursor, revision).await {
                Ok(r) => return Ok(r),
                Err(StateError::Taken { .. }) if uncertain => {
                    return match self.load(spec).await? {
                        Some(stored) if stored.cursor == *cursor => Ok(stored.revision),
                        _ => Err(conflict()),
                    };
                }
                Err(StateError::Taken { .. }) => return Err(conflict()),
                Err(StateError::Kv(e)) => {
                    let failed = format!("the cursor write of {spec} failed: {e}");
                    if !retry.pause(stop, &failed).await {
                        return Err(StateError::Kv(e));
                    }
                    uncertain = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes a source's cursor: it starts over as `poll.start` says.
    pub async fn reset(&self, spec: &SourceSpec) -> Result<bool, StateError> {
        let existed = self.load(spec).await?.is_some();
        self.kv
            .purge(spec.kv_key())
            .await
            .map_err(|e| StateError::Kv(e.to_string()))?;
        Ok(existed)
    }

    /// Every key in the bucket (cursors, repository kinds' cursors, ledgers, pause marks).
    async fn keys(&self) -> Result<Vec<String>, StateError> {
        self.kv
            .keys()
            .await
            .map_err(|e| StateError::Kv(e.to_string()))?
            .try_collect()
            .await
            .map_err(|e| StateError::Kv(e.to_string()))
    }

    /// Every stored cursor, ordered by source.
    pub async fn list(&self) -> Result<Vec<(SourceSpec, Stored)>, StateError> {
        let keys = self.keys().await?;
        let mut out = Vec::new();
        for key in keys {
            let Some(spec) = SourceSpec::from_kv_key(&key) else {
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
    ) -> Result<Vec<chrono::NaiveDate>, StateError> {
        let keys = self.keys().await?;
        let mut days: Vec<chrono::NaiveDate> = keys
            .iter()
            .filter_map(|k| ledger_day(k))
            .filter(|d| *d < keep_from)
            .collect();
        days.sort();
        for day in &days {
            self.kv
                .purge(format!("backfill/{}", day.format("%Y-%m-%d")))
                .await
                .map_err(|e| StateError::Kv(e.to_string()))?;
        }
        Ok(days)
    }
}

/// A pause of a source (`[control]` `sources-pause`), stored beside its cursor under
/// `paused.` + its key ([`pause_key`]): every instance on the bucket leaves the source alone
/// until the mark is deleted, across restarts, reloads and lease moves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PauseMark {
    /// When it was paused.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Which process paused it (its `[ha]` instance name, or `HOST-PID`).
    pub by: String,
}

/// The key of a source's pause mark: `paused.repo/acme/widgets` (a first token of its own,
/// so that one watch of `paused.>` follows every mark and no cursor key matches it).
pub fn pause_key(spec: &SourceSpec) -> String {
    format!("{PAUSED}{}", spec.kv_key())
}

/// The prefix of pause marks' keys.
const PAUSED: &str = "paused.";

/// The source of a pause mark's key; `None` for any other key.
pub fn paused_source(key: &str) -> Option<SourceSpec> {
    SourceSpec::from_kv_key(key.strip_prefix(PAUSED)?)
}

impl CursorStore {
    /// Stores a pause mark for `spec`; `false` when it was paused already (the mark stays).
    pub async fn pause(&self, spec: &SourceSpec, mark: &PauseMark) -> Result<bool, StateError> {
        match self.put(&pause_key(spec), mark, 0).await {
            Ok(_) => Ok(true),
            Err(StateError::Taken { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the pause mark of `spec` (whatever its value); `false` when it was not paused.
    pub async fn resume(&self, spec: &SourceSpec) -> Result<bool, StateError> {
        let entry = self
            .kv
            .entry(pause_key(spec))
            .await
            .map_err(|e| StateError::Kv(e.to_string()))?;
        if !entry.is_some_and(|e| e.operation == kv::Operation::Put) {
            return Ok(false);
        }
        self.kv
            .purge(pause_key(spec))
            .await
            .map_err(|e| StateError::Kv(e.to_string()))?;
        Ok(true)
    }

    /// Every paused source and its mark, ordered by source. The key is the pause: a value
    /// that is not a [`PauseMark`] (one put by hand, say) pauses the source all the same and
    /// comes back as `None`.
    pub async fn pauses(&self) -> Result<Vec<(SourceSpec, Option<PauseMark>)>, StateError> {
        let keys = self.keys().await?;
        let mut out = Vec::new();
        for key in keys {
            let Some(spec) = paused_source(&key) else {
                continue;
            };
            let entry = self
                .kv
                .entry(&key)
                .await
                .map_err(|e| StateError::Kv(e.to_string()))?;
            if let Some(e) = entry.filter(|e| e.operation == kv::Operation::Put) {
                out.push((spec, serde_json::from_slice(&e.value).ok()));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The changes of pause marks from now on (puts and deletions of `paused.>`).
    pub async fn watch_pauses(&self) -> Result<kv::Watch, StateError> {
        self.kv
            .watch(format!("{PAUSED}>"))
            .await
            .map_err(|e| StateError::Kv(e.to_string()))
    }
}

/// The day of a backfill ledger key (`backfill/2026-10-01`), `None` for any other key.
pub fn ledger_day(key: &str) -> Option<chrono::NaiveDate> {
    let day = key.strip_prefix("backfill/")?;
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::ledger_day;

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
