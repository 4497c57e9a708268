//! The wire contract of hook events: the header names a hook event is written with
//! ([`super::to_event`]) and read back by ([`HookMessage::parse`]: the relay, `tail`).

use async_nats::HeaderMap;
use async_nats::header::{IntoHeaderName, NATS_MESSAGE_ID};
use bytes::Bytes;

use crate::event::VISIBILITY_HEADER;

/// CloudEvents binary mode: the spec version attribute (`1.0`).
pub const CE_SPECVERSION: &str = "ce-specversion";
/// CloudEvents binary mode: the event id (also the `Nats-Msg-Id`).
pub const CE_ID: &str = "ce-id";
/// CloudEvents binary mode: the type (`io.gitea.webhook.{event_type}`).
pub const CE_TYPE: &str = "ce-type";
/// CloudEvents binary mode: the repository's web URL.
pub const CE_SOURCE: &str = "ce-source";
/// CloudEvents binary mode: `owner/name`.
pub const CE_SUBJECT: &str = "ce-subject";
/// CloudEvents binary mode: when the action happened, RFC 3339.
pub const CE_TIME: &str = "ce-time";
/// The body's media type: `application/json` in binary mode (the body as Gitea POSTs it).
pub const CONTENT_TYPE: &str = "Content-Type";
/// Gitea's coarse event (`pull_request`), as its webhooks send it.
pub const GITEA_EVENT: &str = "X-Gitea-Event";
/// Gitea's fine event type (`pull_request_sync`), as its webhooks send it.
pub const GITEA_EVENT_TYPE: &str = "X-Gitea-Event-Type";

/// One hook event as read from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct HookMessage {
    /// `ce-id`.
    pub event_id: String,
    /// `X-Gitea-Event`.
    pub event: String,
    /// `X-Gitea-Event-Type`.
    pub event_type: String,
    /// `owner/name` (`ce-subject`).
    pub repo: String,
    /// The body, forwarded byte for byte.
    pub body: Bytes,
    /// Its stream sequence.
    pub sequence: u64,
    /// A private repository's (`Gitea-Visibility: private`).
    pub private: bool,
}

impl HookMessage {
    /// Reads a stored message's headers; `None` when it is not a hook event (no
    /// `X-Gitea-Event`).
    pub fn parse(
        headers: Option<&HeaderMap>,
        subject: &str,
        body: Bytes,
        sequence: u64,
    ) -> Option<HookMessage> {
        let h = headers?;
        let event = text(h, GITEA_EVENT).filter(|e| !e.is_empty())?;
        let event_type = text(h, GITEA_EVENT_TYPE)
            .or_else(|| subject.rsplit('.').next().map(str::to_string))
            .unwrap_or_else(|| event.clone());
        let event_id = text(h, CE_ID)
            .or_else(|| text(h, NATS_MESSAGE_ID))
            .unwrap_or_else(|| format!("seq-{sequence}"));
        Some(HookMessage {
            event_id,
            event,
            event_type,
            repo: text(h, CE_SUBJECT).unwrap_or_default(),
            private: text(h, VISIBILITY_HEADER).as_deref() == Some("private"),
            body,
            sequence,
        })
    }
}

/// A header's (first) value.
fn text(h: &HeaderMap, name: impl IntoHeaderName) -> Option<String> {
    h.get(name).map(|v| v.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::hook::{Action, Hook, to_event};
    use crate::event::{Prefixes, Visibility};

    /// What `to_event` writes, `parse` reads back: every field, for a public and a private
    /// repository's hook, with the headers the publisher stores (`publish.rs`).
    #[test]
    fn a_hook_event_written_by_to_event_parses_back_field_for_field() {
        let prefixes = Prefixes {
            public: "gitea".into(),
            private: "gitea_private".into(),
            all_private: false,
        };
        let hook = Hook {
            event_type: "pull_request_sync",
            part: Some(3),
            body: serde_json::json!({"action": "synchronized", "number": 3}),
        };
        for visibility in [Visibility::Public, Visibility::Private] {
            let action = Action {
                gitea_url: "https://g",
                prefixes: &prefixes,
                visibility,
                owner: "alice",
                repo: "dot.files",
                action_id: "abc",
                key: "k",
                time: "2026-01-02T03:04:05+08:00",
                created: 1,
            };
            let e = to_event(&action, &hook).unwrap();
            let mut headers = HeaderMap::new();
            for (name, value) in &e.headers {
                headers.insert(*name, value.as_str());
            }
            headers.insert(VISIBILITY_HEADER, e.visibility.as_str());
            headers.insert(NATS_MESSAGE_ID, e.id.as_str());
            let parsed = HookMessage::parse(Some(&headers), &e.subject, e.payload.clone(), 42);
            assert_eq!(
                parsed,
                Some(HookMessage {
                    event_id: e.id.clone(),
                    event: "pull_request".into(),
                    event_type: "pull_request_sync".into(),
                    repo: "alice/dot.files".into(),
                    body: e.payload.clone(),
                    sequence: 42,
                    private: visibility == Visibility::Private,
                }),
                "{visibility:?}"
            );
        }
    }
}
