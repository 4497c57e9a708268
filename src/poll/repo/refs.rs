//! `refs`: pushes the feed does not show. A token that is not a site admin's never sees the
//! feed rows of the Gitea Actions bot (models/activities/action.go `ActivityQueryCondition`),
//! nor those of accounts that keep their activity private: every push and tag a workflow
//! makes would be missing. This kind keeps each repository's refs (branches and tags) and
//! publishes, for a ref that moved, appeared or went away, the `push`, `create` and `delete`
//! hooks Gitea would have sent (services/webhook/notifier.go `PushCommits`, `CreateRef`,
//! `DeleteRef`, in the order services/repository/push.go `pushUpdates` calls them).
//!
//! Cost: nothing while the repository's `updated_at` has not moved (every push moves it:
//! `pushUpdates` calls `UpdateRepositoryUpdatedTime`). An org source learns which of its
//! repositories moved from one `/repos/search?uid=&sort=updated` request per poll
//! ([`Updated::Unchanged`]); a repository source reads `/repos/{o}/{r}` (one request). A
//! moved repository costs its `/branches` and `/tags` pages.
//!
//! Published once: a push's identity is the repository, the ref and its new value
//! ([`push_key`]), the same key a feed row of the same push claims
//! (`pipeline::hooks`), so a push seen in the feed (an admin's token, or a user's push) and
//! here is published by whichever saw it first. A deletion is matched by time instead (a
//! feed row of a deleted branch names no sha): the span between the listing that last saw
//! the ref and the one that found it gone ([`delete_key`], `RecentIndex::claim_span`).
//!
//! What a listing cannot tell: who pushed (the API does not say; `pusher` and `sender` are
//! the head commit's committer), and the commits between the old and new head (`commits`
//! holds the head commit only). Two pushes of one ref between two listings are one push.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Change, Collected, KindCursor, Reader, Repo, Updated, rfc3339};
use crate::event::hook::ZERO_SHA;
use crate::event::{delete_key, push_key};
use crate::gitea::GiteaError;

/// The `refs` reader.
pub struct Refs;

/// What `refs` keeps: every ref's value, and the repository's `updated_at` when listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Full ref name (`refs/heads/main`, `refs/tags/v1`) to its value; `None` until the
    /// first listing.
    pub refs: Option<BTreeMap<String, String>>,
    /// The repository's `updated_at` at the last listing.
    pub updated_at: Option<String>,
    /// Unix seconds of the last listing (a ref gone since went away after it).
    pub listed_at: i64,
}

impl Reader for Refs {
    type State = State;
    async fn collect(
        repo: &Repo<'_>,
        cursor: &KindCursor<State>,
    ) -> Result<Collected<State>, GiteaError> {
        collect(repo, cursor).await
    }
}

/// How far Gitea's clock (a feed row's second) may be from ours (a listing's) when a
/// deletion is matched by time.
pub const CLOCK_SKEW: i64 = 5;

async fn collect(
    repo: &Repo<'_>,
    cursor: &KindCursor<State>,
) -> Result<Collected<State>, GiteaError> {
    let now = chrono::Utc::now().timestamp();
    let unchanged = |state: &State| Collected {
        changes: Vec::new(),
        since: now,
        state: state.clone(),
    };
    let known = cursor.state.refs.is_some();
    // `updated_at` has whole seconds, and Gitea's clock is not ours: a push in the second
    // of the last listing (or a clock behind) leaves it as it was. It is trusted only once
    // older than the listing before by the trailing window (`repo.from`).
    let settled = |at: &Option<String>| {
        at.as_ref()
            .and_then(|a| super::unix(&json!(a)))
            .is_some_and(|t| t < repo.from)
    };
    let (repository, updated_at) = match &repo.updated {
        Updated::Unchanged if known && settled(&cursor.state.updated_at) => {
            return Ok(unchanged(&cursor.state));
        }
        Updated::At(r) => (r.clone(), r["updated_at"].as_str().map(str::to_string)),
        _ => {
            let r: Value = repo.client.get_json(&repo.path(&[]), &[]).await?;
            let at = r["updated_at"].as_str().map(str::to_string);
            (r, at)
        }
    };
    if known && settled(&updated_at) && updated_at == cursor.state.updated_at {
        return Ok(unchanged(&cursor.state));
    }
    let branches = repo.list_all(&["branches"], &[], None, 100).await?;
    let tags = repo.list_all(&["tags"], &[], None, 100).await?;
    let complete = branches.complete && tags.complete;
    // Ref to (value, the head commit as the listing shows it).
    let mut listed: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for b in &branches.items {
        if let (Some(name), Some(sha)) = (b["name"].as_str(), b["commit"]["id"].as_str()) {
            listed.insert(
                format!("refs/heads/{name}"),
                (sha.to_string(), b["commit"].clone()),
            );
        }
    }
    for t in &tags.items {
        // `id` is the ref's value (the tag object of an annotated tag, the commit of a
        // lightweight one): services/convert/convert.go `ToTag`.
        if let (Some(name), Some(id)) = (t["name"].as_str(), t["id"].as_str()) {
            listed.insert(format!("refs/tags/{name}"), (id.to_string(), t.clone()));
        }
    }
    let baseline = !known && cursor.first_listing_is_baseline();
    let old = cursor.state.refs.clone().unwrap_or_default();
    let mut changes = Vec::new();
    let time = rfc3339(now);
    let listed_at = cursor.state.listed_at;
    let mut seq = 0;
    let mut change = |r#ref: &str, before: &str, after: &str, head: &Value| {
        let kind = if after == ZERO_SHA {
            "deleted"
        } else if before == ZERO_SHA {
            "created"
        } else {
            "pushed"
        };
        let key = match kind {
            // One per deletion: the ref's last value and when it was last seen.
            "deleted" => format!(
                "{}\n{before}\n{listed_at}",
                delete_key(repo.owner, repo.name, r#ref)
            ),
            _ => push_key(repo.owner, repo.name, r#ref, after),
        };
        seq += 1;
        changes.push(Change {
            id: crate::event::parts_id(&[b"gitea-ref-change-v1", key.as_bytes()]),
            key,
            t: now,
            seq,
            repeatable: false,
            noun: "ref",
            change: kind.to_string(),
            time: time.clone(),
            data: json!({
                "ref": r#ref,
                "before": before,
                "after": after,
                "head": head,
                "repository": repository,
                "seen_before": listed_at,
            }),
        });
    };
    if !baseline {
        for (r#ref, (value, head)) in &listed {
            match old.get(r#ref) {
                Some(v) if v == value => {}
                Some(v) => change(r#ref, v, value, head),
                None => change(r#ref, ZERO_SHA, value, head),
            }
        }
        if complete && known {
            for (r#ref, value) in &old {
                if !listed.contains_key(r#ref) {
                    change(r#ref, value, ZERO_SHA, &Value::Null);
                }
            }
        }
    }
    let mut refs: BTreeMap<String, String> = listed.into_iter().map(|(r, (v, _))| (r, v)).collect();
    if !complete {
        // Refs not listed this time keep their known values (absent is not deleted).
        for (r, v) in old {
            refs.entry(r).or_insert(v);
        }
    }
    Ok(Collected {
        changes,
        since: now,
        state: State {
            refs: Some(refs),
            // An incomplete listing is read again at the next poll.
            updated_at: updated_at.filter(|_| complete),
            listed_at: now,
        },
    })
}
