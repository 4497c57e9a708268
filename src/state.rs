//! Cursors in the JetStream key-value bucket: one key per source, written with
//! compare-and-set on the revision that was read, so two sourcers polling the same source
//! cannot silently overwrite each other's progress (the loser gets [`StateError::Conflict`]).

use async_nats::jetstream::kv;
use futures::TryStreamExt;

use crate::feed::cursor::Cursor;
use crate::source::SourceSpec;

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
        "the stored cursor of {source_spec} is not valid JSON ({message}); reset it with \
             `cursors reset {source_spec}`"
    )]
    Corrupt {
        source_spec: SourceSpec,
        message: String,
    },
}

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

    /// The bucket itself (backfill ledgers live beside the cursors).
    pub fn kv(&self) -> &kv::Store {
        &self.kv
    }

    /// The stored cursor of a source, if any.
    pub async fn load(&self, spec: &SourceSpec) -> Result<Option<Stored>, StateError> {
        let entry = self
            .kv
            .entry(spec.kv_key())
            .await
            .map_err(|e| StateError::Kv(e.to_string()))?;
        let Some(entry) = entry else { return Ok(None) };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let cursor = serde_json::from_slice(&entry.value).map_err(|e| StateError::Corrupt {
            source_spec: spec.clone(),
            message: e.to_string(),
        })?;
        Ok(Some(Stored {
            cursor,
            revision: entry.revision,
        }))
    }

    /// Writes `cursor` if the stored revision is still `revision` (0: must not exist yet).
    /// Returns the new revision.
    pub async fn save(
        &self,
        spec: &SourceSpec,
        cursor: &Cursor,
        revision: u64,
    ) -> Result<u64, StateError> {
        let value = serde_json::to_vec(cursor).map_err(|e| StateError::Kv(e.to_string()))?;
        let key = spec.kv_key();
        if revision == 0 {
            return self
                .kv
                .create(&key, value.into())
                .await
                .map_err(|e| match e.kind() {
                    kv::CreateErrorKind::AlreadyExists => StateError::Conflict {
                        source_spec: spec.clone(),
                    },
                    _ => StateError::Kv(e.to_string()),
                });
        }
        self.kv
            .update(&key, value.into(), revision)
            .await
            .map_err(|e| match e.kind() {
                kv::UpdateErrorKind::WrongLastRevision => StateError::Conflict {
                    source_spec: spec.clone(),
                },
                _ => StateError::Kv(e.to_string()),
            })
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

    /// Every stored cursor, ordered by source.
    pub async fn list(&self) -> Result<Vec<(SourceSpec, Stored)>, StateError> {
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(|e| StateError::Kv(e.to_string()))?
            .try_collect()
            .await
            .map_err(|e| StateError::Kv(e.to_string()))?;
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
}
