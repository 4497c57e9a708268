//! `statuses`: commit statuses of recently pushed heads. Each poll lists `/branches`; a head
//! that changed is tracked for two hours (CI reports within that time), and each tracked
//! head's `/statuses/{sha}` is read oldest first. Gitea keeps every status a CI posts as its
//! own row, so a status that changes twice between polls yields both events, in order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Change, Collected, KindCursor, Reader, Repo, change_id, unix};
use crate::gitea::GiteaError;

/// The `statuses` reader.
pub struct Statuses;

/// What `statuses` keeps: each branch's head and the heads being followed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Branch name to head sha; `None` until the first listing.
    pub heads: Option<BTreeMap<String, String>>,
    /// Followed heads by sha.
    pub tracked: BTreeMap<String, Tracked>,
}

/// A head whose statuses are followed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tracked {
    /// When it was first seen (Unix seconds).
    pub since: i64,
    /// The newest status id read.
    pub last: i64,
    pub branch: String,
}

impl Reader for Statuses {
    type State = State;
    async fn collect(
        repo: &Repo<'_>,
        cursor: &KindCursor<State>,
    ) -> Result<Collected<State>, GiteaError> {
        collect(repo, cursor).await
    }
}

/// How long a head's statuses are followed after it was pushed.
const TRACK_SECS: i64 = 2 * 3600;

async fn collect(
    repo: &Repo<'_>,
    cursor: &KindCursor<State>,
) -> Result<Collected<State>, GiteaError> {
    let now = chrono::Utc::now().timestamp();
    let baseline = cursor.state.heads.is_none() && cursor.first_listing_is_baseline();
    let heads = cursor.state.heads.clone().unwrap_or_default();
    let mut tracked = cursor.state.tracked.clone();
    let branches = repo.list_all(&["branches"], &[], None, 20).await?;
    let mut next_heads = BTreeMap::new();
    for b in &branches.items {
        let (Some(name), Some(sha)) = (b["name"].as_str(), b["commit"]["id"].as_str()) else {
            continue;
        };
        next_heads.insert(name.to_string(), sha.to_string());
        if heads.get(name).map(String::as_str) != Some(sha) && !tracked.contains_key(sha) {
            tracked.insert(
                sha.to_string(),
                Tracked {
                    since: now,
                    last: 0,
                    branch: name.to_string(),
                },
            );
        }
    }
    if !branches.complete {
        // Branches not listed this time keep their known heads (not taken for new ones).
        for (name, sha) in &heads {
            next_heads
                .entry(name.clone())
                .or_insert_with(|| sha.clone());
        }
    }
    tracked.retain(|_, v| v.since > now - TRACK_SECS);
    let mut changes = Vec::new();
    for (sha, info) in tracked.iter_mut() {
        let last = info.last;
        let statuses = repo
            .list_all(
                &["statuses", sha],
                &[("sort", "oldest".to_string())],
                None,
                10,
            )
            .await?;
        let mut newest = last;
        for s in statuses.items {
            let id = s["id"].as_i64().unwrap_or(0);
            newest = newest.max(id);
            if id <= last || baseline {
                continue;
            }
            let state = s["status"]
                .as_str()
                .or(s["state"].as_str())
                .unwrap_or("unknown");
            let time = s["updated_at"]
                .as_str()
                .or(s["created_at"].as_str())
                .unwrap_or("")
                .to_string();
            let key = change_id("status", repo, id, "");
            changes.push(Change {
                id: key.clone(),
                key,
                t: unix(&json!(time)).unwrap_or(now),
                seq: id,
                repeatable: false,
                noun: "status",
                change: state
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
                time,
                data: json!({ "sha": sha, "branch": info.branch, "status": s }),
            });
        }
        info.last = newest;
    }
    Ok(Collected {
        changes,
        since: now,
        state: State {
            heads: Some(next_heads),
            tracked,
        },
    })
}
