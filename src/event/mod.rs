//! The event model: pure functions from what Gitea says (an activity row, a repository
//! endpoint's change, the objects an action names) to the messages published on NATS.
//!
//! * [`Event`]: one message ready for JetStream; [`Prefixes`] and [`Visibility`] pick its subject.
//! * `id`: the identity of an action and the event ids derived from it ([`identity_key`],
//!   [`event_id`], ...).
//! * `activity`: the CloudEvent of one feed row ([`build`]).
//! * [`hook`]: the payloads Gitea's webhooks would POST for an action (a feed row or a
//!   repository change), as binary-mode events.

mod activity;
pub mod hook;
mod id;

pub use activity::{build, build_with, issue_index};
pub use id::{
    comment_key, delete_key, event_id, identity_key, is_repeatable, parts_id, push_key, ref_key,
    release_key, timed_id,
};

use bytes::Bytes;

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
