//! `webhooks = true`: the payload Gitea's own webhook would have POSTed for an action, as a
//! CloudEvent in binary mode on `{prefix}.{owner}.{repo}.hook.{event_type}`.
//!
//! Pure functions: from an activity row (or a repository endpoint's change) and the Gitea
//! objects fetched for it (repository, issue, pull request, comment, release) to the
//! [`Hook`]s Gitea would have sent (an action can make two: a new branch's `create` and
//! `push`, a new tag's `push` and `create`, a deleted tag's `push` and `delete`, a push to a
//! pull request's head branch `push` and `pull_request_sync`), and from a
//! [`Hook`] to the message ([`to_event`]). What to fetch is said by [`needs`]; the fetching
//! itself is `pipeline::hooks`.
//!
//! ## Identity
//! A hook's id is derived from the id of the action's activity event (itself derived from the
//! action, equal in every feed and endpoint that carries it) and the fine event type
//! ([`hook_id`]): the hook event of one action is published once, whichever feed saw it
//! first, and again under the same id after any restart.
//!
//! ## Fidelity
//! Every key of Gitea's payload is there with Gitea's JSON type (`tests/webhooks_golden.rs`
//! compares them with real bodies). What the API cannot tell is listed in the README's table
//! of event types; nothing is invented: a value that cannot be known is left empty (`""`,
//! `[]`) or `null` where Gitea itself may send `null`.

mod payload;
pub mod users;
pub mod wire;

pub use payload::{
    Change, Needs, RowObjects, from_change, from_row, index_in_url, makes_hooks, needs,
    needs_change, pushed_sha,
};

use bytes::Bytes;
use serde_json::Value;

use crate::event::{self, Envelope, Event, RepoName};

/// Forty zeros: `before` of a new ref, `after` of a deleted one.
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// One webhook delivery Gitea would have made.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// The fine event type (`X-Gitea-Event-Type`), e.g. `pull_request_sync`.
    pub event_type: &'static str,
    /// Tells apart hooks of one type from one action (`pull_request_sync` of each pull
    /// request whose head branch a push moved): its number, part of the id.
    pub part: Option<i64>,
    /// The body Gitea would POST.
    pub body: Value,
}

impl Hook {
    /// The coarse event (`X-Gitea-Event`).
    pub fn event(&self) -> &'static str {
        coarse(self.event_type)
    }
}

/// `X-Gitea-Event` of a fine event type (`modules/webhook/type.go`, `HookEventType.Event`).
pub fn coarse(event_type: &'static str) -> &'static str {
    match event_type {
        "issues" | "issue_assign" | "issue_label" | "issue_milestone" => "issues",
        "issue_comment" | "pull_request_comment" => "issue_comment",
        "pull_request"
        | "pull_request_assign"
        | "pull_request_label"
        | "pull_request_milestone"
        | "pull_request_sync"
        | "pull_request_review_request" => "pull_request",
        "pull_request_review_approved" => "pull_request_approved",
        "pull_request_review_rejected" => "pull_request_rejected",
        "pull_request_review_comment" => "pull_request_comment",
        other => other,
    }
}

/// The id of the hook event of an action: the action's event id and the fine event type.
pub fn hook_id(action_id: &str, event_type: &str, part: Option<i64>) -> String {
    let part = part.map(|p| p.to_be_bytes()).unwrap_or_default();
    event::parts_id(&[
        b"gitea-webhook-v1",
        action_id.as_bytes(),
        event_type.as_bytes(),
        &part,
    ])
}

/// `{prefix}.{owner}.{repo}.hook.{event_type}` ([`event::subject`]).
pub fn subject(prefix: &str, owner: &str, repo: &str, event_type: &str) -> String {
    event::subject(prefix, RepoName::Named(owner, repo), &["hook", event_type])
}

/// The action a hook belongs to: where its events are published and what they say of
/// themselves.
pub struct Action<'a> {
    /// Base URL of the Gitea web UI, without a trailing `/`.
    pub gitea_url: &'a str,
    /// The subject prefixes; `visibility` picks one.
    pub prefixes: &'a crate::event::Prefixes,
    /// That of the action's own event: its hooks go with it.
    pub visibility: crate::event::Visibility,
    /// The repository's owner, as Gitea spells it.
    pub owner: &'a str,
    /// The repository's name, as Gitea spells it.
    pub repo: &'a str,
    /// The id of the action's activity (or repository) event.
    pub action_id: &'a str,
    /// The identity key of the action (de-duplication is the activity event's).
    pub key: &'a str,
    /// When the action happened, RFC 3339 as Gitea wrote it.
    pub time: &'a str,
    /// When the action happened, Unix seconds.
    pub created: i64,
}

/// The message of one hook: CloudEvents binary mode, the body as Gitea would POST it.
pub fn to_event(env: &Action<'_>, hook: &Hook) -> Result<Event, serde_json::Error> {
    let id = hook_id(env.action_id, hook.event_type, hook.part);
    let body = serde_json::to_vec(&hook.body)?;
    let repo = RepoName::Named(env.owner, env.repo);
    let mut headers = Envelope {
        id: &id,
        source: repo.source(env.gitea_url),
        ty: format!("io.gitea.webhook.{}", hook.event_type),
        subject: repo.full_name(),
        time: env.time,
    }
    .binary();
    headers.extend([
        (wire::GITEA_EVENT, hook.event().to_string()),
        (wire::GITEA_EVENT_TYPE, hook.event_type.to_string()),
    ]);
    Ok(Event {
        subject: subject(
            env.prefixes.of(env.visibility),
            env.owner,
            env.repo,
            hook.event_type,
        ),
        visibility: env.visibility,
        id,
        key: env.key.to_string(),
        payload: Bytes::from(body),
        created: env.created,
        op_type: format!("hook_{}", hook.event_type),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_events_are_gitea_s() {
        for (fine, coarse_event) in [
            ("push", "push"),
            ("issue_label", "issues"),
            ("pull_request_comment", "issue_comment"),
            ("pull_request_sync", "pull_request"),
            ("pull_request_review_approved", "pull_request_approved"),
            ("pull_request_review_rejected", "pull_request_rejected"),
            ("workflow_run", "workflow_run"),
        ] {
            assert_eq!(coarse(fine), coarse_event, "{fine}");
        }
    }

    #[test]
    fn the_subject_has_five_tokens_and_escaped_names() {
        let s = subject("gitea", "alice", "dot.files", "push");
        assert_eq!(s, "gitea.alice.dot%2Efiles.hook.push");
        assert_eq!(s.split('.').count(), 5);
    }

    #[test]
    fn binary_mode_headers_and_ids() {
        let env = Action {
            gitea_url: "https://g",
            prefixes: &crate::event::Prefixes {
                public: "gitea".into(),
                private: "gitea_private".into(),
                all_private: false,
            },
            visibility: crate::event::Visibility::Public,
            owner: "o",
            repo: "r",
            action_id: "abc",
            key: "k",
            time: "2026-01-02T03:04:05+08:00",
            created: 1,
        };
        let hook = Hook {
            event_type: "pull_request_review_approved",
            part: None,
            body: serde_json::json!({"action": "reviewed"}),
        };
        let e = to_event(&env, &hook).unwrap();
        let h = |n: &str| {
            e.headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h("ce-id"), Some(e.id.as_str()));
        assert_eq!(
            h("ce-type"),
            Some("io.gitea.webhook.pull_request_review_approved")
        );
        assert_eq!(h("X-Gitea-Event"), Some("pull_request_approved"));
        assert_eq!(h("Content-Type"), Some("application/json"));
        assert_eq!(h("ce-source"), Some("https://g/o/r"));
        assert_eq!(h("ce-time"), Some("2026-01-02T03:04:05+08:00"));
        assert_eq!(&e.payload[..], br#"{"action":"reviewed"}"#);
        assert_ne!(e.id, hook_id("abc", "pull_request_review_rejected", None));
        assert_eq!(e.id, hook_id("abc", "pull_request_review_approved", None));
        assert_ne!(
            hook_id("abc", "pull_request_sync", Some(1)),
            hook_id("abc", "pull_request_sync", Some(2))
        );
    }
}
