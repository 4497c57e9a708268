//! `statuses`: commit statuses of recently pushed heads. Each poll lists `/branches`; a head
//! that changed is tracked for two hours (CI reports within that time), and each tracked
//! head's `/statuses/{sha}` is read oldest first. Gitea keeps every status a CI posts as its
//! own row, so a status that changes twice between polls yields both events, in order.

use serde_json::{Map, Value, json};

use super::{Change, Collected, KindCursor, Repo, change_id, unix};
use crate::gitea::GiteaError;

/// How long a head's statuses are followed after it was pushed.
const TRACK_SECS: i64 = 2 * 3600;

pub async fn collect(repo: &Repo<'_>, cursor: &KindCursor) -> Result<Collected, GiteaError> {
    let now = chrono::Utc::now().timestamp();
    let baseline = cursor.state["heads"].is_null() && cursor.since > 0;
    let heads = cursor.state["heads"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    // sha -> { "since": unix, "last": newest status id read }
    let mut tracked = cursor.state["tracked"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let branches = repo.list_all(&["branches"], &[], None, 20).await?;
    let mut next_heads = Map::new();
    for b in &branches {
        let (Some(name), Some(sha)) = (b["name"].as_str(), b["commit"]["id"].as_str()) else {
            continue;
        };
        next_heads.insert(name.to_string(), json!(sha));
        if heads.get(name).and_then(Value::as_str) != Some(sha) && !tracked.contains_key(sha) {
            tracked.insert(
                sha.to_string(),
                json!({ "since": now, "last": 0, "branch": name }),
            );
        }
    }
    tracked.retain(|_, v| v["since"].as_i64().unwrap_or(0) > now - TRACK_SECS);
    let mut changes = Vec::new();
    for (sha, info) in tracked.iter_mut() {
        let last = info["last"].as_i64().unwrap_or(0);
        let statuses = repo
            .list_all(
                &["statuses", sha],
                &[("sort", "oldest".to_string())],
                None,
                10,
            )
            .await?;
        let mut newest = last;
        for s in statuses {
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
                data: json!({ "sha": sha, "branch": info["branch"], "status": s }),
            });
        }
        info["last"] = json!(newest);
    }
    Ok(Collected {
        changes,
        since: now,
        state: json!({ "heads": next_heads, "tracked": tracked }),
    })
}
