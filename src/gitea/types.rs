//! The Gitea objects the sourcer reads, as lenient serde types.
//!
//! Gitea adds fields in newer versions and older versions miss some: every field has a
//! default and unknown fields are ignored, so any version's JSON parses. Only what the
//! sourcer needs is typed; the raw JSON of an activity is kept and published as Gitea sent it.

use bytes::Bytes;
use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A user or organisation (`modules/structs/user.go`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct User {
    pub id: i64,
    /// The name in URLs.
    pub login: String,
    /// The same name, as older versions (and some objects of newer ones) call it.
    pub username: String,
    pub full_name: String,
    /// A site admin (`is_admin`; sent for the token's own user by `GET /user`).
    pub is_admin: bool,
    /// `public`, `limited` (signed-in users only) or `private` (members only); empty when
    /// not sent (modules/structs/visible_type.go).
    pub visibility: String,
}

impl User {
    /// The name in URLs, whichever field this Gitea version used for it.
    pub fn name(&self) -> &str {
        if self.login.is_empty() {
            &self.username
        } else {
            &self.login
        }
    }
}

/// A repository (`modules/structs/repo.go`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Repository {
    pub id: i64,
    pub name: String,
    /// `OWNER/NAME`.
    pub full_name: String,
    pub owner: Option<User>,
    /// Absent (`None`) in no Gitea version; absent here means not known.
    pub private: Option<bool>,
    /// A public repository of an owner with private visibility (services/convert/repository.go).
    pub internal: bool,
    pub html_url: String,
}

impl Repository {
    /// Who may read its events ([`Visibility::of_repo`], on the parsed fields).
    pub fn visibility(&self) -> Visibility {
        Visibility::of_flags(
            self.private,
            Some(self.internal),
            self.owner.as_ref().map(|o| o.visibility.as_str()),
        )
    }
}

/// Who may read a repository's events: anyone (its repository is readable anonymously) or
/// only its readers. Each goes to its own subject prefix and stream
/// (`nats.subject_prefix`/`nats.stream`, `nats.private_subject_prefix`/`nats.private_stream`)
/// and says which in the `Gitea-Visibility` header (`event::VISIBILITY_HEADER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    /// The header's and the logs' word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    /// Of a repository as the API shows it (go-gitea/gitea modules/structs/repo.go
    /// `Repository`): public only when nobody needs to sign in to read it: not `private`,
    /// not `internal` (services/convert/repository.go: a public repository of an owner with
    /// private visibility), and its owner's `visibility` (modules/structs/visible_type.go)
    /// `public`, a `limited` owner's repositories being for signed-in users only. An owner
    /// without the field (Gitea before 1.13 sends none) is taken as public; a value that is
    /// not an object (no repository) is private.
    pub fn of_repo(repo: &serde_json::Value) -> Visibility {
        let Some(r) = repo.as_object() else {
            return Visibility::Private;
        };
        let owner = r
            .get("owner")
            .and_then(|o| o.get("visibility"))
            .and_then(serde_json::Value::as_str);
        Visibility::of_flags(
            r.get("private").and_then(serde_json::Value::as_bool),
            r.get("internal").and_then(serde_json::Value::as_bool),
            owner,
        )
    }

    /// The rule of [`Visibility::of_repo`] on the fields themselves: `private` (every
    /// version sends it; without it nothing says the repository is public), `internal` and
    /// the owner's `visibility` (absent: public).
    pub fn of_flags(
        private: Option<bool>,
        internal: Option<bool>,
        owner_visibility: Option<&str>,
    ) -> Visibility {
        let owner_public = owner_visibility.is_none_or(|v| v.is_empty() || v == "public");
        match (private, internal.unwrap_or(false), owner_public) {
            (Some(false), false, true) => Visibility::Public,
            _ => Visibility::Private,
        }
    }
}

/// An issue or pull request comment (`modules/structs/issue_comment.go`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Comment {
    pub id: i64,
    pub body: String,
    pub html_url: String,
    pub user: Option<User>,
}

/// One row of an activity feed (`modules/structs/activity.go`).
#[derive(Debug, Clone, Deserialize)]
pub struct Activity {
    /// Row id: differs between the original and each receiver's copy.
    #[serde(default)]
    pub id: i64,
    /// The receiver of this copy.
    #[serde(default)]
    pub user_id: i64,
    pub op_type: String,
    #[serde(default)]
    pub act_user_id: i64,
    #[serde(default)]
    pub act_user: Option<User>,
    #[serde(default)]
    pub repo_id: i64,
    #[serde(default)]
    pub repo: Option<Repository>,
    #[serde(default)]
    pub comment_id: i64,
    #[serde(default)]
    pub ref_name: String,
    #[serde(default)]
    pub is_private: bool,
    /// `INDEX|TITLE`, a push's commits as JSON, ...: see [`Content`].
    #[serde(default)]
    pub content: Content,
    /// When the action happened, one-second resolution, in the server's time zone.
    pub created: DateTime<FixedOffset>,
}

/// An activity's `content`: Gitea's text for it, a few words (`12|Title`) or a whole JSON
/// document (a push's commits, kilobytes). It reads as a `str` (`Deref`). A row read from a
/// feed keeps a long one as the JSON string it came as, a slice of the row's own bytes, and
/// decodes it when first read: rows wait whole days in walks and reads ahead, and a decoded
/// copy beside the row's JSON took a third of what each held.
#[derive(Debug, Clone, Default)]
pub struct Content {
    /// The JSON string literal (quotes and escapes as sent), when not decoded at once.
    json: Option<Bytes>,
    decoded: std::sync::OnceLock<String>,
}

/// Contents up to this long are decoded when the row is read (issue rows' `INDEX|TITLE`).
const CONTENT_KEPT_DECODED: usize = 256;

impl Content {
    /// A content kept as its JSON string literal (decoded when first read).
    fn undecoded(json: Bytes) -> Content {
        Content {
            json: Some(json),
            decoded: std::sync::OnceLock::new(),
        }
    }

    /// Lets the decoded text go when it can be decoded again (a long content read from a
    /// feed); a short one stays.
    pub fn forget_decoded(&mut self) {
        if self.json.is_some() {
            self.decoded.take();
        }
    }

    /// The bytes held beside the row's JSON: the decoded text, once decoded.
    pub fn decoded_len(&self) -> usize {
        self.decoded.get().map_or(0, String::len)
    }
}

impl From<String> for Content {
    fn from(text: String) -> Content {
        Content {
            json: None,
            decoded: std::sync::OnceLock::from(text),
        }
    }
}

impl std::ops::Deref for Content {
    type Target = str;

    fn deref(&self) -> &str {
        self.decoded.get_or_init(|| {
            // The literal was decoded once already when its row was read (the same bytes,
            // the same parser): it cannot fail here. Were it to, the content reads empty.
            self.json
                .as_deref()
                .and_then(|j| serde_json::from_slice(j).ok())
                .unwrap_or_default()
        })
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Content::from)
    }
}

/// An activity with the exact JSON Gitea sent for it.
#[derive(Debug, Clone)]
pub struct ActivityRow {
    pub activity: Activity,
    /// The row's JSON, one value: a slice of the page it was read from (shared, not copied).
    raw: Bytes,
}

impl ActivityRow {
    /// Parses one feed row, keeping its raw JSON.
    pub fn parse(raw: Box<RawValue>) -> Result<ActivityRow, serde_json::Error> {
        ActivityRow::from_json(Bytes::from(String::from(Box::<str>::from(raw))))
    }

    /// Parses one feed row from its JSON (one value, as a page's slice holds it), keeping
    /// the bytes.
    pub fn from_json(raw: Bytes) -> Result<ActivityRow, serde_json::Error> {
        let mut activity: Activity = serde_json::from_slice(&raw)?;
        if activity.content.len() > CONTENT_KEPT_DECODED {
            /// The `content` of a row as it is written in it.
            #[derive(Deserialize)]
            struct Literal<'a> {
                #[serde(borrow)]
                content: &'a RawValue,
            }
            // Parsed above, so it parses again; a borrowed `RawValue` is a slice of `raw`.
            if let Ok(Literal { content }) = serde_json::from_slice(&raw) {
                activity.content = Content::undecoded(raw.slice_ref(content.get().as_bytes()));
            }
        }
        Ok(ActivityRow { activity, raw })
    }

    /// The row's JSON as Gitea sent it.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// `created` as Unix seconds.
    pub fn created_unix(&self) -> i64 {
        self.activity.created.timestamp()
    }
}

impl Activity {
    /// Who may read its event: private when the row says so (`is_private`: the repository
    /// was private when the action happened, or was made private since, go-gitea/gitea
    /// services/feed/notifier.go and models/repo/update.go), when its repository (as it is
    /// now) is not public ([`Visibility::of_repo`]), or when the row names no repository (a
    /// deleted or hidden one: unknown counts as private).
    pub fn visibility(&self) -> Visibility {
        match &self.repo {
            Some(r) if !self.is_private => r.visibility(),
            _ => Visibility::Private,
        }
    }

    /// The issue index of an issue, pull request, comment or review row's content, and the
    /// text after it. Gitea writes `INDEX|TEXT` (`services/feed/notifier.go`; a title may
    /// itself hold `|`: only the first one separates); Forgejo 13 and later a JSON array of
    /// strings (`["12","Title"]`, `["12","reviewer","comment"]`), whose further parts are
    /// joined with `|` as Gitea would have written them. `None`: no index.
    pub fn issue_content(&self) -> Option<(i64, String)> {
        let c = self.content.trim_start();
        if c.starts_with('[')
            && let Ok(parts) = serde_json::from_str::<Vec<String>>(c)
        {
            let (index, rest) = parts.split_first()?;
            return Some((index.trim().parse().ok()?, rest.join("|")));
        }
        let (index, rest) = self.content.split_once('|')?;
        Some((index.trim().parse().ok()?, rest.to_string()))
    }

    /// `(owner, name)` of the repository the action happened in, when Gitea sent it.
    pub fn repo_names(&self) -> Option<(&str, &str)> {
        let repo = self.repo.as_ref()?;
        if let Some((o, n)) = repo.full_name.split_once('/') {
            return Some((o, n));
        }
        let owner = repo.owner.as_ref()?;
        Some((owner.name(), repo.name.as_str()))
    }
}

/// `GET /api/v1/version`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServerVersion {
    pub version: String,
}

/// `GET /api/v1/settings/api`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ApiSettings {
    pub max_response_items: usize,
    pub default_paging_num: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        // Gitea's defaults (modules/setting/api.go).
        ApiSettings {
            max_response_items: 50,
            default_paging_num: 30,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A push row naming 40 commits (its content about 4 KB, with escapes and non-ASCII),
    /// and that content.
    pub(crate) fn long_push_row() -> (String, serde_json::Value) {
        let commits: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"Sha1":"{i:040}","Message":"fix <b> & \"q\" é\n"}}"#))
            .collect();
        let content = format!(
            r#"{{"Commits":[{}],"CompareURL":"a/b/compare/1...2","Len":40}}"#,
            commits.join(",")
        );
        let row = serde_json::json!({"id": 1, "op_type": "commit_repo", "repo_id": 3,
            "content": content, "created": "2026-11-28T16:25:31+08:00"});
        (content, row)
    }

    /// A long content is held as the row's own bytes until read and reads as the decoded
    /// text would; once forgotten it decodes again the same (its identity:
    /// `event::activity`'s tests).
    #[test]
    fn a_long_content_is_held_undecoded_and_reads_as_decoded() {
        let (content, row) = long_push_row();
        let mut read = ActivityRow::from_json(Bytes::from(row.to_string())).expect("row");
        assert_eq!(
            read.activity.content.decoded_len(),
            0,
            "held as the row's bytes"
        );
        let eager: Activity = serde_json::from_value(row).expect("activity");
        assert_eq!(&*read.activity.content, &*eager.content);
        read.activity.content.forget_decoded();
        assert_eq!(read.activity.content.decoded_len(), 0);
        assert_eq!(&*read.activity.content, content);
        let short = ActivityRow::from_json(Bytes::from_static(
            br#"{"op_type":"create_issue","content":"12|Title","created":"2026-11-28T16:25:31+08:00"}"#,
        ))
        .expect("row");
        assert_eq!(
            short.activity.content.decoded_len(),
            "12|Title".len(),
            "short: decoded"
        );
    }
}
