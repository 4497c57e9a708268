//! `releases`: published, edited and deleted releases, by comparing `/releases` with the
//! releases known from the last poll (kept in the cursor). A publication has the identity
//! of the feed's `publish_release` row (`event::release_key`, matched within a second).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Change, Collected, KindCursor, Reader, Repo, change_id, unix};
use crate::event;
use crate::gitea::GiteaError;

/// The `releases` reader.
pub struct Releases;

/// What `releases` keeps: the repository id and the releases listed last time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub repo_id: Option<i64>,
    /// By release id; `None` until the first listing (a cursor created at "now" records
    /// what exists then without announcing it).
    pub known: Option<BTreeMap<i64, Known>>,
}

/// A release as last listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Known {
    /// What an edit changes (tag, name, body, draft, prerelease).
    pub fp: String,
    pub tag_name: String,
    pub name: Value,
    /// Gitea's `published_at` (else `created_at`), as written (server offset); the `time`
    /// of its deletion, since Gitea keeps no time of its own for that.
    pub published_at: Option<String>,
}

/// The release's own time as Gitea wrote it: `published_at`, else `created_at`.
fn gitea_time(r: &Value) -> Option<&str> {
    r["published_at"]
        .as_str()
        .or(r["created_at"].as_str())
        .filter(|t| !t.is_empty())
}

impl Reader for Releases {
    type State = State;
    async fn collect(
        repo: &Repo<'_>,
        cursor: &KindCursor<State>,
    ) -> Result<Collected<State>, GiteaError> {
        collect(repo, cursor).await
    }
}

fn fingerprint(r: &Value) -> String {
    event::parts_id(&[
        r["tag_name"].as_str().unwrap_or("").as_bytes(),
        r["name"].as_str().unwrap_or("").as_bytes(),
        r["body"].as_str().unwrap_or("").as_bytes(),
        r["draft"].to_string().as_bytes(),
        r["prerelease"].to_string().as_bytes(),
    ])
}

async fn collect(
    repo: &Repo<'_>,
    cursor: &KindCursor<State>,
) -> Result<Collected<State>, GiteaError> {
    let repo_id = super::comments::repo_id(repo, cursor.state.repo_id).await?;
    // A cursor created at "now" records what exists without announcing it.
    let baseline = cursor.state.known.is_none() && cursor.first_listing_is_baseline();
    let known = cursor.state.known.clone().unwrap_or_default();
    let listed = repo.list_all(&["releases"], &[], None, 100).await?;
    // Only a complete list tells deletions: from one that may miss releases (the page
    // bound, or releases moving between pages while walking), an absent one is not gone.
    let complete = listed.complete;
    let releases = listed.items;
    let now = chrono::Utc::now();
    // Only for a release known from a cursor written before its time was kept.
    let now_s = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut changes = Vec::new();
    let mut next = BTreeMap::new();
    for r in &releases {
        let id = r["id"].as_i64().unwrap_or(0);
        let fp = fingerprint(r);
        let tag = r["tag_name"].as_str().unwrap_or("");
        next.insert(
            id,
            Known {
                fp: fp.clone(),
                tag_name: tag.to_string(),
                name: r["name"].clone(),
                published_at: gitea_time(r).map(str::to_string),
            },
        );
        if baseline {
            continue;
        }
        match known.get(&id) {
            None => {
                let time = gitea_time(r).unwrap_or("");
                let t = unix(&json!(time)).unwrap_or(now.timestamp());
                let key = event::release_key(repo_id, tag);
                let change = if r["draft"].as_bool() == Some(true) {
                    "drafted"
                } else {
                    "published"
                };
                changes.push(Change {
                    id: event::timed_id(&key, t),
                    key,
                    t,
                    seq: id,
                    repeatable: true,
                    noun: "release",
                    change: change.into(),
                    time: time.to_string(),
                    data: json!({ "release": r }),
                });
            }
            Some(k) if k.fp != fp => {
                let key = change_id("release", repo, id, &fp);
                changes.push(Change {
                    id: key.clone(),
                    key,
                    t: now.timestamp(),
                    seq: id,
                    repeatable: false,
                    noun: "release",
                    change: "edited".into(),
                    // Gitea keeps no edit time: the release's own time, as Gitea wrote it.
                    time: gitea_time(r).unwrap_or(&now_s).to_string(),
                    data: json!({ "release": r }),
                });
            }
            Some(_) => {}
        }
    }
    for (&n, k) in &known {
        if next.contains_key(&n) {
            continue;
        }
        if complete {
            let key = change_id("release", repo, n, "deleted");
            changes.push(Change {
                id: key.clone(),
                key,
                t: now.timestamp(),
                seq: n,
                repeatable: false,
                noun: "release",
                change: "deleted".into(),
                time: k.published_at.clone().unwrap_or_else(|| now_s.clone()),
                data: json!({ "release": {
                    "id": n, "tag_name": k.tag_name, "name": k.name, "published_at": k.published_at
                } }),
            });
        } else {
            // Not listed this time, but the list may be incomplete: still known.
            next.insert(n, k.clone());
        }
    }
    Ok(Collected {
        changes,
        since: now.timestamp(),
        state: State {
            repo_id: Some(repo_id),
            known: Some(next),
        },
    })
}
