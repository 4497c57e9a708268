//! The event model: pure functions from what Gitea says (an activity row, a repository
//! endpoint's change, the objects an action names) to the messages published on NATS.
//!
//! * [`Event`]: one message ready for JetStream; [`Prefixes`] and [`Visibility`] pick its subject.
//! * `id`: the identity of an action and the event ids derived from it ([`identity_key`],
//!   [`event_id`], ...).
//! * [`Envelope`]: the CloudEvents attributes every event has, written [`Envelope::structured`]
//!   (activity and repository-change events: the JSON body) or [`Envelope::binary`] (hook
//!   events: `ce-*` headers); [`subject`]: the NATS subject of every event.
//! * `activity`: the CloudEvent of one feed row ([`build`]).
//! * `change`: the CloudEvent of one repository endpoint's change ([`RepoChange`]).
//! * [`hook`]: the payloads Gitea's webhooks would POST for an action (a feed row or a
//!   repository change), as binary-mode events.

mod activity;
mod change;
pub mod hook;
mod id;

pub use activity::{build, build_with, issue_index};
pub use change::RepoChange;
pub use id::{
    comment_key, delete_key, event_id, event_id_of, identity_key, is_repeatable, parts_id,
    push_key, ref_key, release_key, timed_id,
};

use bytes::Bytes;
use serde::Serialize;

use hook::wire;

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

/// The CloudEvents spec version every event follows.
const SPECVERSION: &str = "1.0";

/// `datacontenttype` of structured events and `Content-Type` of binary ones: the data is JSON.
const DATA_CONTENT_TYPE: &str = "application/json";

/// The repository an event is of, as its subject and its CloudEvents attributes name it.
#[derive(Debug, Clone, Copy)]
pub enum RepoName<'a> {
    /// `owner` and `name`, as Gitea spells them.
    Named(&'a str, &'a str),
    /// A feed row naming no repository (deleted, or hidden from the token): its id.
    Unnamed(i64),
}

impl RepoName<'_> {
    /// The CloudEvents `source`: the repository's web page (the instance's when unnamed).
    pub fn source(self, gitea_url: &str) -> String {
        match self {
            RepoName::Named(owner, name) => format!("{gitea_url}/{owner}/{name}"),
            RepoName::Unnamed(_) => gitea_url.to_string(),
        }
    }

    /// The CloudEvents `subject`: `owner/name`, or `repo_id:{id}` when unnamed.
    pub fn full_name(self) -> String {
        match self {
            RepoName::Named(owner, name) => format!("{owner}/{name}"),
            RepoName::Unnamed(id) => format!("repo_id:{id}"),
        }
    }
}

/// `{prefix}.{owner}.{name}.{kind}`: the subject of every event, each name escaped
/// ([`escape_token`]). `kind` is one token (`commit_repo`, `issue_labeled`) or more
/// (`["hook", "push"]`), each escaped.
pub fn subject(prefix: &str, repo: RepoName<'_>, kind: &[&str]) -> String {
    let mut out = match repo {
        RepoName::Named(owner, name) => {
            format!("{prefix}.{}.{}", escape_token(owner), escape_token(name))
        }
        // Keep the event under tokens no real name can produce, so it is neither lost nor
        // confused with a repository.
        RepoName::Unnamed(id) => format!("{prefix}.%00.%00{id}"),
    };
    for token in kind {
        out.push('.');
        out.push_str(&escape_token(token));
    }
    out
}

/// The CloudEvents attributes of one event, besides `specversion` and `datacontenttype`
/// (the same for every event).
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// `id`: the event id, also its `Nats-Msg-Id`.
    pub id: &'a str,
    /// `source`: the repository's web page ([`RepoName::source`]).
    pub source: String,
    /// `type`: `io.gitea.activity.{op_type}`, `io.gitea.{noun}.{change}` or
    /// `io.gitea.webhook.{event_type}`.
    pub ty: String,
    /// `subject`: the repository's full name ([`RepoName::full_name`]).
    pub subject: String,
    /// `time`: when the action happened, RFC 3339.
    pub time: &'a str,
}

impl Envelope<'_> {
    /// CloudEvents structured mode: the whole event as JSON, `data` in it. `capacity`: the
    /// size expected, to reserve up front (`Bytes::from(Vec)` keeps the Vec's capacity, and a
    /// doubling Vec would hold up to twice the payload for as long as the event lives).
    pub fn structured<D: Serialize>(
        &self,
        data: &D,
        capacity: usize,
    ) -> Result<Bytes, serde_json::Error> {
        self.structured_with(capacity, |out| serde_json::to_writer(out, data))
    }

    /// [`Envelope::structured`] with `data` written by `write_data` (one JSON value), so a
    /// value already in JSON (a feed row) is copied in, not serialised again. The keys in
    /// this order: `specversion`, `id`, `source`, `type`, `subject`, `time`,
    /// `datacontenttype`, `data`.
    pub fn structured_with(
        &self,
        capacity: usize,
        write_data: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
    ) -> Result<Bytes, serde_json::Error> {
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(b"{\"specversion\":");
        serde_json::to_writer(&mut buf, SPECVERSION)?;
        for (key, value) in [
            ("id", self.id),
            ("source", &self.source),
            ("type", &self.ty),
            ("subject", &self.subject),
            ("time", self.time),
            ("datacontenttype", DATA_CONTENT_TYPE),
        ] {
            buf.extend_from_slice(b",\"");
            buf.extend_from_slice(key.as_bytes());
            buf.extend_from_slice(b"\":");
            serde_json::to_writer(&mut buf, value)?;
        }
        buf.extend_from_slice(b",\"data\":");
        write_data(&mut buf)?;
        buf.push(b'}');
        Ok(Bytes::from(buf))
    }

    /// CloudEvents binary mode: the attributes as `ce-*` headers and the content type, in
    /// this order (the body is the data alone).
    pub fn binary(self) -> Vec<(&'static str, String)> {
        vec![
            (wire::CE_SPECVERSION, SPECVERSION.to_string()),
            (wire::CE_ID, self.id.to_string()),
            (wire::CE_TYPE, self.ty),
            (wire::CE_SOURCE, self.source),
            (wire::CE_SUBJECT, self.subject),
            (wire::CE_TIME, self.time.to_string()),
            (wire::CONTENT_TYPE, DATA_CONTENT_TYPE.to_string()),
        ]
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
