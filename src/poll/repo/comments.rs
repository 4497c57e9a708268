//! `comments`: comments created and edited, from `/issues/comments?since=`. A creation has
//! the identity of the feed's `comment_issue` row (`event::comment_key`), so a comment seen
//! in both is published once.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Change, Collected, KindCursor, Reader, Repo, change_id, rfc3339, unix};
use crate::event;
use crate::gitea::GiteaError;

/// The `comments` reader.
pub struct Comments;

/// What `comments` keeps: the repository id, once read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub repo_id: Option<i64>,
}

impl Reader for Comments {
    type State = State;
    async fn collect(
        repo: &Repo<'_>,
        cursor: &KindCursor<State>,
    ) -> Result<Collected<State>, GiteaError> {
        collect(repo, cursor).await
    }
}

/// The repository id (comment identities include it), fetched once and kept in the state.
pub(super) async fn repo_id(repo: &Repo<'_>, known: Option<i64>) -> Result<i64, GiteaError> {
    if let Some(id) = known {
        return Ok(id);
    }
    let r: Value = repo
        .client
        .get_json(&["repos", repo.owner, repo.name], &[])
        .await?;
    Ok(r["id"].as_i64().unwrap_or(0))
}

async fn collect(
    repo: &Repo<'_>,
    cursor: &KindCursor<State>,
) -> Result<Collected<State>, GiteaError> {
    let repo_id = repo_id(repo, cursor.state.repo_id).await?;
    let from = repo.from;
    let before = repo.window(&["issues", "comments"], &[]).await?;
    let mut query = vec![("since", rfc3339(from))];
    if let Some(b) = before {
        query.push(("before", rfc3339(b)));
    }
    let listed = repo
        .list_all(&["issues", "comments"], &query, None, 200)
        .await?;
    let mut changes = Vec::new();
    let mut since = cursor.position;
    for c in listed.items {
        let id = c["id"].as_i64().unwrap_or(0);
        let (Some(created), Some(updated)) = (unix(&c["created_at"]), unix(&c["updated_at"]))
        else {
            continue;
        };
        since = since.max(updated);
        if created >= from {
            let key = event::comment_key(repo_id, id);
            changes.push(Change {
                key: key.clone(),
                t: created,
                seq: id,
                repeatable: false,
                id: key,
                noun: "comment",
                change: "created".into(),
                time: c["created_at"].as_str().unwrap_or("").to_string(),
                data: json!({ "comment": c }),
            });
        }
        if updated > created && updated >= from {
            let stamp = c["updated_at"].as_str().unwrap_or("").to_string();
            let key = change_id("comment", repo, id, &stamp);
            changes.push(Change {
                key: key.clone(),
                t: updated,
                seq: id,
                repeatable: false,
                id: key,
                noun: "comment",
                change: "edited".into(),
                time: stamp,
                data: json!({ "comment": c }),
            });
        }
    }
    if let Some(b) = before {
        since = since.max(b - 1);
    }
    if !listed.complete {
        // Some comments were not read: read the same span again next poll.
        since = cursor.position;
    }
    Ok(Collected {
        changes,
        since,
        state: State {
            repo_id: Some(repo_id),
        },
    })
}
