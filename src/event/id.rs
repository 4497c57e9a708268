//! The identity of an event: what makes two rows (or a row and an endpoint's change) the same
//! action, and the event id derived from it.
//!
//! Gitea writes one row per receiver of an action (the actor's original, the org's copy,
//! each watcher's copy), each with its own `id`, and a copy's `created` can be one second
//! later than the original's. The identity of an action is therefore its content:
//! `repo_id, op_type, act_user_id, ref_name, comment_id, content` ([`identity_key`]).
//!
//! Most actions are unique by that content alone: a comment has its own `comment_id`, an
//! issue or pull request is created or merged once, a push names its commits. Their event id
//! is a hash of the content only, so the original and any copy get the same id even when the
//! copy's `created` is a second later. Actions that can recur with identical content (close
//! and reopen, star, watch, a branch deleted twice, a push without commits, a release or
//! rename) also hash `created` ([`is_repeatable`]); for those the sourcer matches copies to
//! originals within one second (see `poll::pipeline::dedup`).

use sha2::{Digest, Sha256};

use crate::gitea::Activity;

fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(&h.finalize()[..16])
}

/// The identity of a comment's creation, shared by the feed row (`comment_issue`,
/// `comment_pull`) and the comments endpoint, so a comment seen by both is published once.
pub fn comment_key(repo_id: i64, comment_id: i64) -> String {
    short_hash(&[
        b"gitea-comment-v1",
        &repo_id.to_be_bytes(),
        &comment_id.to_be_bytes(),
    ])
}

/// The identity of a release's publication, shared by the feed row (`publish_release`) and
/// the releases endpoint (matched within one second of `created`, like other repeatables).
pub fn release_key(repo_id: i64, tag: &str) -> String {
    let tag = tag.strip_prefix("refs/tags/").unwrap_or(tag);
    short_hash(&[b"gitea-release-v1", &repo_id.to_be_bytes(), tag.as_bytes()])
}

/// An id made of parts (repository events: a timeline item, a status, a run's state).
pub fn parts_id(parts: &[&[u8]]) -> String {
    short_hash(parts)
}

// Identities of refs, shared by a feed's ref rows and the `refs` kind (`repo::refs`).

/// The identity of a push of `r#ref` to `after` (a new value, never zeros) in `owner/name`:
/// shared with the feed's rows of the same push.
pub fn push_key(owner: &str, name: &str, r#ref: &str, after: &str) -> String {
    format!(
        "gitea-ref-v1\n{}/{}\n{}\n{}",
        owner.to_lowercase(),
        name.to_lowercase(),
        r#ref,
        after
    )
}

/// The key of `r#ref` in `owner/name` for the newest value the feed gave it
/// (`pipeline::RecentIndex::note_head`).
pub fn ref_key(owner: &str, name: &str, r#ref: &str) -> String {
    format!(
        "{}/{}\n{}",
        owner.to_lowercase(),
        name.to_lowercase(),
        r#ref
    )
}

/// The key of `r#ref`'s deletions in `owner/name`, matched by time span.
pub fn delete_key(owner: &str, name: &str, r#ref: &str) -> String {
    format!(
        "gitea-ref-deleted-v1\n{}/{}\n{}",
        owner.to_lowercase(),
        name.to_lowercase(),
        r#ref
    )
}

/// The content hash of an action (hex, 32 characters): equal for the original and its copies.
pub fn identity_key(a: &Activity) -> String {
    if a.comment_id != 0 && matches!(a.op_type.as_str(), "comment_issue" | "comment_pull") {
        return comment_key(a.repo_id, a.comment_id);
    }
    if a.op_type == "publish_release" {
        return release_key(a.repo_id, &a.ref_name);
    }
    let mut h = Sha256::new();
    h.update(b"gitea-action-v1\0");
    h.update(a.repo_id.to_be_bytes());
    for field in [a.op_type.as_bytes(), a.ref_name.as_bytes()] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    h.update(a.act_user_id.to_be_bytes());
    h.update(a.comment_id.to_be_bytes());
    h.update((a.content.len() as u64).to_be_bytes());
    h.update(a.content.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// True when identical content can legitimately happen more than once, so that `created`
/// must be part of the identity.
pub fn is_repeatable(a: &Activity) -> bool {
    if a.comment_id != 0 {
        return false;
    }
    match a.op_type.as_str() {
        "create_issue"
        | "create_pull_request"
        | "merge_pull_request"
        | "auto_merge_pull_request"
        | "create_repo" => false,
        "commit_repo" | "mirror_sync_push" | "push_tag" => {
            // A push that names its commits is unique; an empty or cut (`{}`) one is not.
            !(a.content.len() > 2 && a.content.contains("CompareURL"))
        }
        _ => true,
    }
}

/// The event id: the `Nats-Msg-Id` and the CloudEvents `id`.
pub fn event_id(key: &str, a: &Activity) -> String {
    event_id_of(key, is_repeatable(a), a.created.timestamp())
}

/// [`event_id`] from an identity already taken: its key, whether it is repeatable
/// ([`is_repeatable`]) and when it happened (Unix seconds).
pub fn event_id_of(key: &str, repeatable: bool, t: i64) -> String {
    match repeatable {
        true => timed_id(key, t),
        false => key.to_string(),
    }
}

/// The id of a repeatable action: its content key and when it happened.
pub fn timed_id(key: &str, t: i64) -> String {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update(t.to_be_bytes());
    hex::encode(&h.finalize()[..16])
}
