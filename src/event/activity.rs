//! The CloudEvent of one activity row (structured mode: the row as Gitea wrote it, in `data`).

use super::{
    Envelope, Event, Prefixes, RepoName, event_id_of, identity_key, is_repeatable, subject,
};
use crate::gitea::{Activity, ActivityRow};

/// The row's repository, or its id alone when the row names none.
fn repo_name(a: &Activity) -> RepoName<'_> {
    match a.repo_names() {
        Some((owner, name)) => RepoName::Named(owner, name),
        None => RepoName::Unnamed(a.repo_id),
    }
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
    let a = &row.activity;
    build_with(
        gitea_url,
        prefixes,
        row,
        identity_key(a),
        is_repeatable(a),
        None,
    )
}

/// Like [`build`], with the identity already computed (`identity_key(&row.activity)` and
/// `is_repeatable(&row.activity)`, as the pipeline's candidates hold them) and the issue the
/// row points to (enrichment).
pub fn build_with(
    gitea_url: &str,
    prefixes: &Prefixes,
    row: &ActivityRow,
    key: String,
    repeatable: bool,
    issue: Option<&serde_json::Value>,
) -> Result<Event, serde_json::Error> {
    let a = &row.activity;
    let id = event_id_of(&key, repeatable, a.created.timestamp());
    let repo = repo_name(a);
    let time = a.created.to_rfc3339();
    let envelope = Envelope {
        id: &id,
        source: repo.source(gitea_url),
        ty: format!("io.gitea.activity.{}", a.op_type),
        subject: repo.full_name(),
        time: &time,
    };
    // `data`: `{"activity":ROW}`, with `"issue"` after it when enriched; the row copied in
    // as Gitea sent it.
    let raw = row.raw();
    let payload = envelope.structured_with(raw.len() + 512, |out| {
        out.extend_from_slice(b"{\"activity\":");
        out.extend_from_slice(raw);
        if let Some(issue) = issue {
            out.extend_from_slice(b",\"issue\":");
            serde_json::to_writer(&mut *out, issue)?;
        }
        out.push(b'}');
        Ok(())
    })?;
    let visibility = prefixes.decide(a.visibility());
    Ok(Event {
        subject: subject(prefixes.of(visibility), repo, &[&a.op_type]),
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
    use crate::event::{Visibility, escape_token};
    use serde_json::value::RawValue;

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
    #[test]
    fn subject_escapes_dots_and_wildcards() {
        let r = row(PUSH);
        assert_eq!(
            subject("gitea", repo_name(&r.activity), &[&r.activity.op_type]),
            "gitea.alice.dot%2Efiles.commit_repo"
        );
        assert_eq!(escape_token("a b*>"), "a%20b%2A%3E");
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

    /// A push read from a feed holds its long content undecoded: its identity, repeatable
    /// flag and event are those of the same row decoded at once.
    #[test]
    fn a_row_held_undecoded_has_the_identity_and_event_of_the_decoded_row() {
        let (_, json) = crate::gitea::types::tests::long_push_row();
        let held = ActivityRow::from_json(bytes::Bytes::from(json.to_string())).unwrap();
        assert_eq!(held.activity.content.decoded_len(), 0);
        let eager: crate::gitea::Activity = serde_json::from_value(json).unwrap();
        assert_eq!(identity_key(&held.activity), identity_key(&eager));
        assert_eq!(is_repeatable(&held.activity), is_repeatable(&eager));
        assert!(!is_repeatable(&eager), "a push naming its commits");
        let e = build("https://g", &prefixes(), &held).unwrap();
        assert_eq!(e.id, crate::event::event_id(&identity_key(&eager), &eager));
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

    /// The bytes `build` wrote before the envelope was shared, for a named and an unnamed
    /// repository.
    #[test]
    fn a_row_s_event_is_byte_for_byte_as_before() {
        let e = build("https://g", &prefixes(), &row(PUSH)).unwrap();
        assert_eq!(
            std::str::from_utf8(&e.payload).unwrap(),
            format!(
                r#"{{"specversion":"1.0","id":"{}","source":"https://g/alice/dot.files","type":"io.gitea.activity.commit_repo","subject":"alice/dot.files","time":"2026-11-28T16:25:31+08:00","datacontenttype":"application/json","data":{{"activity":{PUSH}}}}}"#,
                e.id
            )
        );
        let gone = PUSH.replace(
            r#""repo":{"id":3,"name":"dot.files","full_name":"alice/dot.files","private":false},"#,
            "",
        );
        let e = build("https://g", &prefixes(), &row(&gone)).unwrap();
        assert_eq!(
            std::str::from_utf8(&e.payload).unwrap(),
            format!(
                r#"{{"specversion":"1.0","id":"{}","source":"https://g","type":"io.gitea.activity.commit_repo","subject":"repo_id:3","time":"2026-11-28T16:25:31+08:00","datacontenttype":"application/json","data":{{"activity":{gone}}}}}"#,
                e.id
            )
        );
        assert_eq!(e.subject, "gitea_private.%00.%003.commit_repo");
    }
}
