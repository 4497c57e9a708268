//! `issues`: issue and pull request changes the feed lacks, from `/issues?state=all&since=`
//! (most recently updated first) and each changed issue's `/timeline`. Far behind, one day
//! (`since`/`before`) is read per poll, oldest first.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Change, Collected, KindCursor, Reader, Repo, change_id, rfc3339, unix};
use crate::gitea::GiteaError;

/// The `issues` reader.
pub struct Issues;

/// `issues` keeps nothing but its position (older cursors stored `null`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {}

impl Reader for Issues {
    type State = State;
    async fn collect(
        repo: &Repo<'_>,
        cursor: &KindCursor<State>,
    ) -> Result<Collected<State>, GiteaError> {
        collect(repo, cursor).await
    }
}

/// Timeline types the activity feed already carries (published from there, not again):
/// reviews and their code comments too (services/feed/notifier.go `PullRequestReview`
/// writes `approve_pull_request`, `reject_pull_request` and `comment_pull` rows for them).
const IN_FEED: &[&str] = &["comment", "close", "reopen", "merge_pull", "review", "code"];

/// The event name of a timeline item, e.g. `labeled`; `None` for what the feed carries.
fn change_of(item: &Value) -> Option<String> {
    let ty = item["type"].as_str().unwrap_or("");
    if IN_FEED.contains(&ty) {
        return None;
    }
    Some(match ty {
        "label" if item["body"].as_str() == Some("1") => "labeled".into(),
        "label" => "unlabeled".into(),
        "assignees" if item["removed_assignee"].as_bool() == Some(true) => "unassigned".into(),
        "assignees" => "assigned".into(),
        "milestone" if item["milestone"].is_null() => "demilestoned".into(),
        "milestone" => "milestoned".into(),
        "review_request" => "review_requested".into(),
        "change_title" => "title_edited".into(),
        other => other
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect(),
    })
}

async fn collect(
    repo: &Repo<'_>,
    cursor: &KindCursor<State>,
) -> Result<Collected<State>, GiteaError> {
    let from = repo.from;
    let before = repo
        .window(&["issues"], &[("state", "all".to_string())])
        .await?;
    let mut query = vec![("state", "all".to_string()), ("since", rfc3339(from))];
    if let Some(b) = before {
        query.push(("before", rfc3339(b)));
    }
    let issues = repo.list_all(&["issues"], &query, None, 200).await?;
    let complete = issues.complete;
    let mut changes = Vec::new();
    let mut since = cursor.position;
    for issue in issues.items {
        let Some(updated) = unix(&issue["updated_at"]) else {
            continue;
        };
        if updated < from || before.is_some_and(|b| updated >= b) {
            continue;
        }
        since = since.max(updated);
        let noun = if issue["pull_request"].is_null() {
            "issue"
        } else {
            "pull_request"
        };
        let index = issue["number"].as_i64().unwrap_or(0).to_string();
        let issue_id = issue["id"].as_i64().unwrap_or(0);
        let timeline = repo
            .list_all(
                &["issues", &index, "timeline"],
                &[("since", rfc3339(from))],
                None,
                50,
            )
            .await?;
        let mut explained = HashSet::new();
        for item in timeline.items {
            let Some(t) = unix(&item["created_at"]) else {
                continue;
            };
            explained.insert(t);
            if t < from {
                continue;
            }
            let Some(change) = change_of(&item) else {
                continue;
            };
            let seq = item["id"].as_i64().unwrap_or(0);
            let id = change_id(noun, repo, seq, "timeline");
            changes.push(Change {
                key: id.clone(),
                t,
                seq,
                repeatable: false,
                id,
                noun,
                change,
                time: item["created_at"].as_str().unwrap_or("").to_string(),
                data: json!({ "issue": issue, "timeline": item }),
            });
        }
        // An update no timeline item explains (within a second), other than the creation:
        // the title or body was edited.
        let created = unix(&issue["created_at"]).unwrap_or(updated);
        let explained = (updated - 1..=updated + 1).any(|t| explained.contains(&t));
        if updated > created + 1 && !explained {
            let stamp = issue["updated_at"].as_str().unwrap_or("").to_string();
            let id = change_id(noun, repo, issue_id, &stamp);
            changes.push(Change {
                key: id.clone(),
                t: updated,
                seq: i64::MAX,
                repeatable: false,
                id,
                noun,
                change: "edited".into(),
                time: stamp,
                data: json!({ "issue": issue }),
            });
        }
    }
    if let Some(b) = before {
        since = since.max(b - 1);
    }
    if !complete {
        // Some issues were not read (newest first: the oldest): read the span again.
        since = cursor.position;
    }
    Ok(Collected {
        changes,
        since,
        state: State {},
    })
}
