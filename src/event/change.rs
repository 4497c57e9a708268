//! The CloudEvent of one change a repository endpoint shows (a label added, an issue edited,
//! a status set, a run finished): structured mode, Gitea's objects as returned in `data`.

use serde_json::Value;

use super::{Envelope, Event, Prefixes, RepoName, Visibility, subject};

/// One change of a repository, as `repo` reads it (borrowed from its `repo::Change`).
pub struct RepoChange<'a> {
    /// The repository's owner, as Gitea spells it.
    pub owner: &'a str,
    /// The repository's name, as Gitea spells it.
    pub name: &'a str,
    /// The event id.
    pub id: &'a str,
    /// De-duplication identity (shared with the feed for comments and releases).
    pub key: &'a str,
    /// `issue`, `pull_request`, `comment`, `release`, `status`, `actions_run`, `actions_job`.
    pub noun: &'a str,
    /// `labeled`, `edited`, `success`, ...
    pub change: &'a str,
    /// When it happened, as Gitea wrote it.
    pub time: &'a str,
    /// When it happened, Unix seconds.
    pub created: i64,
    /// The Gitea objects as returned.
    pub data: &'a Value,
}

impl RepoChange<'_> {
    /// Its event: type `io.gitea.{noun}.{change}` on `{prefix}.{owner}.{name}.{noun}_{change}`,
    /// below the prefix of `visibility` (the repository's, as already decided).
    pub fn to_event(
        &self,
        gitea_url: &str,
        prefixes: &Prefixes,
        visibility: Visibility,
    ) -> Result<Event, serde_json::Error> {
        let repo = RepoName::Named(self.owner, self.name);
        let op_type = format!("{}_{}", self.noun, self.change);
        let envelope = Envelope {
            id: self.id,
            source: repo.source(gitea_url),
            ty: format!("io.gitea.{}.{}", self.noun, self.change),
            subject: repo.full_name(),
            time: self.time,
        };
        Ok(Event {
            id: self.id.to_string(),
            key: self.key.to_string(),
            subject: subject(prefixes.of(visibility), repo, &[&op_type]),
            payload: envelope.structured(self.data, 0)?,
            created: self.created,
            op_type,
            visibility,
            headers: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes and subject `repo::build` wrote before the envelope was shared.
    #[test]
    fn a_change_s_event_is_byte_for_byte_as_before() {
        let data = serde_json::json!({"id": 9, "labels": [{"name": "bug"}]});
        let change = RepoChange {
            owner: "alice",
            name: "dot.files",
            id: "abc",
            key: "k",
            noun: "issue",
            change: "labeled",
            time: "2026-01-02T03:04:05+08:00",
            created: 7,
            data: &data,
        };
        let prefixes = Prefixes {
            public: "gitea".into(),
            private: "gitea_private".into(),
            all_private: false,
        };
        let e = change
            .to_event("https://g", &prefixes, Visibility::Private)
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&e.payload).unwrap(),
            r#"{"specversion":"1.0","id":"abc","source":"https://g/alice/dot.files","type":"io.gitea.issue.labeled","subject":"alice/dot.files","time":"2026-01-02T03:04:05+08:00","datacontenttype":"application/json","data":{"id":9,"labels":[{"name":"bug"}]}}"#
        );
        assert_eq!(e.subject, "gitea_private.alice.dot%2Efiles.issue_labeled");
        assert_eq!((e.id.as_str(), e.key.as_str()), ("abc", "k"));
        assert_eq!((e.op_type.as_str(), e.created), ("issue_labeled", 7));
        assert!(e.headers.is_empty(), "structured mode");
    }
}
