//! The oracle the tests, the benchmark and the demo share: what "every action arrived once"
//! compares. An action is told apart by its repository, op type, ref, content and comment id
//! (the ref tells empty pushes apart), never by the sourcer's own ids, so a wrong id shows.

use std::collections::HashMap;

use serde_json::Value;

use crate::{LogicalAction, NewAction};

/// The identity of an action, from its parts.
pub fn identity(
    repo: &str,
    op_type: &str,
    ref_name: &str,
    content: &str,
    comment_id: i64,
) -> String {
    format!("{repo}|{op_type}|{ref_name}|{content}|{comment_id}")
}

impl LogicalAction {
    /// This action's identity ([`identity`]).
    pub fn identity(&self) -> String {
        identity(
            &self.repo,
            &self.op_type,
            &self.ref_name,
            &self.content,
            self.comment_id,
        )
    }
}

impl NewAction {
    /// The identity of the action this inserts ([`identity`]).
    pub fn identity(&self) -> String {
        identity(
            &self.repo,
            &self.op_type,
            &self.ref_name,
            &self.content,
            self.comment_id,
        )
    }
}

/// The identity of the action a published activity event carries (a CloudEvent in structured
/// mode: its `subject` is `owner/name`, its `data.activity` the feed row as Gitea sent it).
/// Missing fields count as empty, so a malformed event has an identity no action has.
pub fn of_event(body: &Value) -> String {
    let a = &body["data"]["activity"];
    identity(
        body["subject"].as_str().unwrap_or(""),
        a["op_type"].as_str().unwrap_or(""),
        a["ref_name"].as_str().unwrap_or(""),
        a["content"].as_str().unwrap_or(""),
        a["comment_id"].as_i64().unwrap_or(0),
    )
}

/// How many times each identity occurs among `actions` (for instance
/// [`FakeGitea::distinct_actions`](crate::FakeGitea::distinct_actions), what the stream must
/// hold, once each).
pub fn counts(actions: impl IntoIterator<Item = LogicalAction>) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for a in actions {
        *c.entry(a.identity()).or_default() += 1;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_and_its_action_have_one_identity_and_the_ref_tells_empty_pushes_apart() {
        let event = |r: &str| {
            json!({"subject": "acme/widgets", "data": {"activity": {
                "op_type": "commit_repo", "ref_name": r, "content": "", "comment_id": 0}}})
        };
        assert_eq!(
            of_event(&event("refs/heads/main")),
            identity("acme/widgets", "commit_repo", "refs/heads/main", "", 0)
        );
        assert_ne!(
            of_event(&event("refs/heads/main")),
            of_event(&event("refs/heads/dev"))
        );
        assert_eq!(of_event(&json!({})), identity("", "", "", "", 0));
    }
}
