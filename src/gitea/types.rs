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
    #[serde(default)]
    pub content: String,
    /// When the action happened, one-second resolution, in the server's time zone.
    pub created: DateTime<FixedOffset>,
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
        let activity = serde_json::from_slice(&raw)?;
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
