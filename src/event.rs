//! The event model: pure functions from a Gitea activity row to a CloudEvents message.
//!
//! ## Identity
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
//! originals within one second (see `feed::dedup`).

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::gitea::{Activity, ActivityRow};

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
    if !is_repeatable(a) {
        return key.to_string();
    }
    timed_id(key, a.created.timestamp())
}

/// The id of a repeatable action: its content key and when it happened.
pub fn timed_id(key: &str, t: i64) -> String {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update(t.to_be_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Escapes one subject token: every byte outside `[A-Za-z0-9_-]` becomes `%XX`
/// ([`crate::source::ESCAPED`]).
pub fn escape_token(name: &str) -> String {
    let out = percent_encoding::utf8_percent_encode(name, crate::source::ESCAPED).to_string();
    if out.is_empty() {
        // An empty token would break the subject; `%00` cannot come from a real name.
        return "%00".to_string();
    }
    out
}

pub use crate::gitea::Visibility;

/// The header every event carries: `public` or `private` ([`Visibility::as_str`]).
pub const VISIBILITY_HEADER: &str = "Gitea-Visibility";

/// The two subject prefixes: public repositories' events below the first, the others below
/// the second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    pub public: String,
    pub private: String,
    /// `gitea.require_signin_view`: every event is private.
    pub all_private: bool,
}

impl Prefixes {
    /// `nats.subject_prefix` and `nats.private_subject_prefix`, and whether the instance
    /// requires signing in to read anything (`gitea.require_signin_view`).
    pub fn of_config(config: &crate::config::Config) -> Prefixes {
        Prefixes {
            public: config.nats.subject_prefix.clone(),
            private: config.nats.private_subject_prefix.clone(),
            all_private: config.gitea.require_signin_view,
        }
    }

    /// The visibility an event of a repository of `visibility` is published with: its
    /// own, or private when nothing of the instance is readable anonymously.
    pub fn decide(&self, visibility: Visibility) -> Visibility {
        match self.all_private {
            true => Visibility::Private,
            false => visibility,
        }
    }

    /// The prefix of events of `visibility`.
    pub fn of(&self, visibility: Visibility) -> &str {
        match visibility {
            Visibility::Public => &self.public,
            Visibility::Private => &self.private,
        }
    }
}

/// `{prefix}.{owner}.{repo}.{op_type}`, each name escaped.
pub fn subject(prefix: &str, a: &Activity) -> String {
    let (owner, repo) = match a.repo_names() {
        Some((o, r)) => (escape_token(o), escape_token(r)),
        // The repository was deleted or is hidden: keep the event, under a token no real
        // name can produce, so it is neither lost nor confused with a repository.
        None => ("%00".to_string(), format!("%00{}", a.repo_id)),
    };
    format!("{prefix}.{owner}.{repo}.{}", escape_token(&a.op_type))
}

/// A message ready for JetStream.
#[derive(Debug, Clone)]
pub struct Event {
    /// CloudEvents `id` and `Nats-Msg-Id`.
    pub id: String,
    /// The identity key (without time), for de-duplication across feeds.
    pub key: String,
    /// NATS subject.
    pub subject: String,
    /// The CloudEvents JSON.
    pub payload: Bytes,
    /// `created` as Unix seconds.
    pub created: i64,
    /// The op type, for logs and metrics.
    pub op_type: String,
    /// Whose it is to read: decides the subject prefix (already in `subject`) and the
    /// [`VISIBILITY_HEADER`] the publisher adds.
    pub visibility: Visibility,
    /// CloudEvents binary mode: the message's headers (attributes as `ce-*`, the content
    /// type, and any others), besides `Nats-Msg-Id`. Empty: structured mode (the payload is
    /// the whole CloudEvent; `Content-Type: application/cloudevents+json`).
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: &'a str,
    source: String,
    #[serde(rename = "type")]
    ty: String,
    subject: String,
    time: String,
    datacontenttype: &'static str,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    activity: &'a RawValue,
    /// With `enrich = true`: the issue or pull request a thin row points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    issue: Option<&'a serde_json::Value>,
}

/// The issue index a row's content names (`INDEX|...`, Forgejo's `["INDEX",...]`), for
/// enrichment.
pub fn issue_index(a: &Activity) -> Option<i64> {
    if a.op_type.contains("issue")
        || a.op_type.contains("pull")
        || a.op_type.starts_with("comment_")
    {
        a.issue_content().map(|(index, _)| index)
    } else {
        None
    }
}

/// Builds the event of one row. `gitea_url` is the base URL of the web UI (no trailing `/`).
pub fn build(
    gitea_url: &str,
    prefixes: &Prefixes,
    row: &ActivityRow,
) -> Result<Event, serde_json::Error> {
    build_with(gitea_url, prefixes, row, identity_key(&row.activity), None)
}

/// Like [`build`], with the identity key already computed (`identity_key(&row.activity)`)
/// and the issue the row points to (enrichment).
pub fn build_with(
    gitea_url: &str,
    prefixes: &Prefixes,
    row: &ActivityRow,
    key: String,
    issue: Option<&serde_json::Value>,
) -> Result<Event, serde_json::Error> {
    let a = &row.activity;
    let id = event_id(&key, a);
    let (source, subject_name) = match a.repo_names() {
        Some((o, r)) => (format!("{gitea_url}/{o}/{r}"), format!("{o}/{r}")),
        None => (gitea_url.to_string(), format!("repo_id:{}", a.repo_id)),
    };
    let ce = CloudEvent {
        specversion: "1.0",
        id: &id,
        source,
        ty: format!("io.gitea.activity.{}", a.op_type),
        subject: subject_name,
        time: a.created.to_rfc3339(),
        datacontenttype: "application/json",
        data: Data {
            activity: &row.raw,
            issue,
        },
    };
    // Sized up front: `Bytes::from(Vec)` keeps the Vec's capacity, and a doubling Vec would
    // hold up to twice the payload for as long as the event lives.
    let mut buf = Vec::with_capacity(row.raw.get().len() + 512);
    serde_json::to_writer(&mut buf, &ce)?;
    let payload = Bytes::from(buf);
    let visibility = prefixes.decide(a.visibility());
    Ok(Event {
        subject: subject(prefixes.of(visibility), a),
        visibility,
        id,
        key,
        payload,
        created: a.created.timestamp(),
        op_type: a.op_type.clone(),
        headers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes() -> Prefixes {
        Prefixes {
            public: "gitea".into(),
            private: "gitea_private".into(),
            all_private: false,
        }
    }

    fn row(json: &str) -> ActivityRow {
        ActivityRow::parse(RawValue::from_string(json.to_string()).unwrap()).unwrap()
    }

    const PUSH: &str = r#"{"id":7,"user_id":1,"op_type":"commit_repo","act_user_id":1,
        "repo_id":3,"repo":{"id":3,"name":"dot.files","full_name":"alice/dot.files","private":false},
        "comment_id":0,"ref_name":"refs/heads/main","is_private":false,
        "content":"{\"Commits\":[],\"CompareURL\":\"alice/dot.files/compare/a...b\",\"Len\":1}",
        "created":"2026-11-28T16:25:31+08:00","new_field":{"x":1}}"#;

    /// A public repository's row goes below the public prefix; below the private one when
    /// it is private, names no repository, or the instance requires signing in.
    #[test]
    fn a_row_s_visibility_picks_its_prefix() {
        let public = build("https://g", &prefixes(), &row(PUSH)).unwrap();
        assert_eq!(public.visibility, Visibility::Public);
        assert!(
            public.subject.starts_with("gitea.alice."),
            "{}",
            public.subject
        );
        for json in [
            PUSH.replace(r#""private":false"#, r#""private":true"#),
            PUSH.replace(r#""is_private":false"#, r#""is_private":true"#),
            PUSH.replace(r#","private":false"#, ""),
        ] {
            let e = build("https://g", &prefixes(), &row(&json)).unwrap();
            assert_eq!(e.visibility, Visibility::Private, "{json}");
            assert!(
                e.subject.starts_with("gitea_private.alice."),
                "{}",
                e.subject
            );
        }
        let signin = Prefixes {
            all_private: true,
            ..prefixes()
        };
        let e = build("https://g", &signin, &row(PUSH)).unwrap();
        assert_eq!(e.visibility, Visibility::Private);
    }

    /// services/convert/repository.go and modules/structs/visible_type.go: anonymously
    /// readable only when not private, not internal, and of a public owner.
    #[test]
    fn a_repository_is_public_only_when_anyone_may_read_it() {
        use serde_json::json;
        let of = |v: serde_json::Value| Visibility::of_repo(&v);
        let owner = |vis: &str| json!({"login": "acme", "visibility": vis});
        assert_eq!(
            of(json!({"private": false, "internal": false, "owner": owner("public")})),
            Visibility::Public
        );
        assert_eq!(
            of(json!({"private": false})),
            Visibility::Public,
            "Gitea < 1.13"
        );
        for (repo, why) in [
            (
                json!({"private": true, "owner": owner("public")}),
                "private",
            ),
            (json!({"private": false, "internal": true}), "internal"),
            (
                json!({"private": false, "owner": owner("limited")}),
                "limited owner",
            ),
            (
                json!({"private": false, "owner": owner("private")}),
                "private owner",
            ),
            (json!({"owner": owner("public")}), "no private field"),
            (json!(null), "no repository"),
        ] {
            assert_eq!(of(repo), Visibility::Private, "{why}");
        }
    }

    #[test]
    fn subject_escapes_dots_and_wildcards() {
        let r = row(PUSH);
        assert_eq!(
            subject("gitea", &r.activity),
            "gitea.alice.dot%2Efiles.commit_repo"
        );
        assert_eq!(escape_token("a b*>"), "a%20b%2A%3E");
    }

    /// `escape_token` as it was before percent-encoding.
    fn old_escape_token(name: &str) -> String {
        let mut out = String::with_capacity(name.len() + 8);
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        if out.is_empty() {
            out.push_str("%00");
        }
        out
    }

    #[test]
    fn escape_token_is_what_it_was_on_awkward_names() {
        for name in crate::source::tests::awkward_names() {
            let token = escape_token(&name);
            assert_eq!(token, old_escape_token(&name), "{name:?}");
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'%')),
                "{name:?} -> {token:?}"
            );
        }
        assert_eq!(escape_token("dot.files"), "dot%2Efiles");
        assert_eq!(escape_token("%"), "%25");
        assert_eq!(escape_token("ü.>"), "%C3%BC%2E%3E");
        assert_eq!(escape_token(""), "%00");
    }

    #[test]
    fn copy_one_second_later_has_the_same_id() {
        let original = row(PUSH);
        let copy = row(&PUSH
            .replace("\"id\":7,\"user_id\":1", "\"id\":8,\"user_id\":9")
            .replace("16:25:31", "16:25:32"));
        let a = build("https://g", &prefixes(), &original).unwrap();
        let b = build("https://g", &prefixes(), &copy).unwrap();
        assert_eq!(a.id, b.id);
    }

    #[test]
    fn repeated_close_gets_distinct_ids() {
        let close = r#"{"id":1,"user_id":1,"op_type":"close_issue","act_user_id":1,"repo_id":3,
            "content":"4|","created":"2026-11-28T10:00:00+08:00"}"#;
        let a = build("https://g", &prefixes(), &row(close)).unwrap();
        let b = build(
            "https://g",
            &prefixes(),
            &row(&close.replace("10:00:00", "11:00:00")),
        )
        .unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(a.key, b.key);
    }

    #[test]
    fn cloudevent_carries_the_raw_activity() {
        let e = build("https://g/sub", &prefixes(), &row(PUSH)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "io.gitea.activity.commit_repo");
        assert_eq!(v["source"], "https://g/sub/alice/dot.files");
        assert_eq!(v["subject"], "alice/dot.files");
        assert_eq!(v["time"], "2026-11-28T16:25:31+08:00");
        assert_eq!(v["data"]["activity"]["new_field"]["x"], 1);
        assert_eq!(v["id"], e.id.as_str());
    }
}
