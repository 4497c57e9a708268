//! The model of feed rows: accounts and repositories with their precomputed JSON,
//! logical actions and their copies' data, the index keys of the feeds, and the
//! public builders of new actions ([`NewAction`]). No world state, no HTTP.

use std::borrow::Cow;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, FixedOffset};
use serde_json::value::RawValue;

use crate::base::ActionId;
use crate::push::{self, GenPush};

/// Id of the Gitea Actions bot, the actor of what a workflow's token does (go-gitea/gitea
/// models/user/user_system.go `ActionsUserID`). It has no row in Gitea's `user` table.
pub const ACTIONS_BOT_ID: i64 = -2;
/// Login of the Gitea Actions bot (models/user/user_system.go `ActionsUserName`): an
/// actor of this name (any case) is the bot, not a user.
pub const ACTIONS_BOT_LOGIN: &str = "gitea-actions";

/// Whether `login` names the Actions bot (models/user/user_system.go
/// `IsGiteaActionsUserName`: case-insensitive).
pub(crate) fn is_actions_bot(login: &str) -> bool {
    login.eq_ignore_ascii_case(ACTIONS_BOT_LOGIN)
}

/// A user's or an org's visibility (go-gitea/gitea modules/structs/visible_type.go
/// `VisibleType`): who may see the account, hence its rows in the feeds of a viewer who
/// is not a site admin (models/activities/action.go `ActivityQueryCondition`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Seen by everyone (the default).
    #[default]
    Public,
    /// Seen by signed-in users only.
    Limited,
    /// Seen by the account itself, org members and site admins only.
    Private,
}

impl Visibility {
    /// The API's name (`"public"`, `"limited"`, `"private"`).
    pub fn name(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Limited => "limited",
            Visibility::Private => "private",
        }
    }
}

/// Who reads a feed: Gitea's `GetFeedsOptions.Actor` (go-gitea/gitea
/// models/activities/action.go), which decides which actors' rows it may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Viewer {
    /// No token (`opts.Actor == nil`).
    Anonymous,
    /// The token's user (`id`), a site admin or not.
    User { id: i64, admin: bool },
}

/// A user or an organization, with its JSON precomputed.
pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) login: String,
    pub(crate) email: String,
    pub(crate) full_name: String,
    pub(crate) is_org: bool,
    /// `visibility` (read at query time, as Gitea does).
    pub(crate) visibility: Visibility,
    /// `keep_activity_private` ("hide activity" in the user's settings).
    pub(crate) keep_activity_private: bool,
    /// `User` object (also used for orgs in `act_user` / `repo.owner`).
    pub(crate) json: Box<RawValue>,
    /// `Organization` object, for orgs.
    pub(crate) org_json: Option<Box<RawValue>>,
}

/// A repository, with its JSON precomputed (rebuilt when it changes).
pub(crate) struct Repo {
    pub(crate) id: i64,
    pub(crate) owner_id: i64,
    pub(crate) name: String,
    pub(crate) full_name: String,
    pub(crate) private: bool,
    pub(crate) watchers: Vec<i64>,
    pub(crate) json: Box<RawValue>,
    /// `updated_unix`: moved by every push (go-gitea/gitea services/repository/push.go
    /// `pushUpdates` calls `repo_model.UpdateRepositoryUpdatedTime(ctx, repo.ID, time.Now())`);
    /// 0: never changed (its creation time is shown).
    pub(crate) updated: i64,
    /// Deleted ([`World::delete_repo`](crate::World::delete_repo)): kept for its id, out of
    /// every lookup and listing.
    pub(crate) deleted: bool,
}

/// An action's content: stored text, or a push payload re-rendered from a seed.
pub(crate) enum Content {
    Text(Box<str>),
    Push(GenPush),
}

pub(crate) struct CommentData {
    pub(crate) id: i64,
    pub(crate) body: Box<str>,
    pub(crate) issue_index: i64,
    pub(crate) is_pull: bool,
    /// Unix seconds of the last edit; `0` = never edited (`updated_at` = `created`).
    pub(crate) updated: i64,
}

/// One logical action and the ids of its rows: the original row has id `id`, copy
/// `i` (receiver `receivers[i]`) has id `id + i`.
pub(crate) struct Action {
    pub(crate) id: i64,
    pub(crate) op: u16,
    pub(crate) actor: i64,
    pub(crate) repo: i64,
    pub(crate) content: Content,
    pub(crate) ref_name: Box<str>,
    pub(crate) comment_id: i64,
    pub(crate) comment: Option<Box<CommentData>>,
    /// Unix seconds of the original row.
    pub(crate) created: i64,
    pub(crate) copy_delay: i64,
    /// `receivers[0]` is the actor (original row); then the owner and watchers.
    pub(crate) receivers: Box<[i64]>,
    pub(crate) visible: bool,
    pub(crate) deleted: bool,
    /// The original row was removed by `delete_older_than` (copies may remain).
    pub(crate) original_purged: bool,
}

impl Action {
    pub(crate) fn row_created(&self, i: usize) -> i64 {
        if i == 0 {
            self.created
        } else {
            self.created + self.copy_delay
        }
    }

    pub(crate) fn last_row_created(&self) -> i64 {
        self.row_created(self.receivers.len().saturating_sub(1))
    }

    pub(crate) fn is_live(&self) -> bool {
        self.visible && !self.deleted && !self.original_purged
    }
}

/// Which feed an index serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FeedKey {
    /// Original rows of a repository.
    Repo(i64),
    /// Rows received by a user or org (`user_id == id`).
    Recv(i64),
    /// Original rows performed by a user (`user_id == act_user_id == id`).
    Actor(i64),
}

/// Everything needed to insert an action (ids already resolved).
pub(crate) struct ActionSpec {
    pub(crate) op: u16,
    pub(crate) actor: i64,
    pub(crate) repo: i64,
    pub(crate) content: Content,
    pub(crate) ref_name: Box<str>,
    pub(crate) comment_id: i64,
    pub(crate) comment: Option<Box<CommentData>>,
    pub(crate) created: i64,
    pub(crate) copy_delay: i64,
    pub(crate) visible: bool,
}

/// A logical action as the simulator holds it (original row's data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalAction {
    pub id: ActionId,
    /// `owner/name`.
    pub repo: String,
    pub op_type: String,
    /// Actor's login.
    pub actor: String,
    pub content: String,
    pub ref_name: String,
    pub comment_id: i64,
    /// The original row's `created` in the server's time zone.
    pub created: DateTime<FixedOffset>,
}

/// A comment attached to a [`NewAction`]: the row then carries a `comment` object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewComment {
    /// Index of the issue or pull request commented on.
    pub issue_index: i64,
    /// Full comment body.
    pub body: String,
    /// A pull-request comment (changes the URLs in the comment object).
    pub is_pull: bool,
}

/// An action to insert with [`FakeGitea::push_action`](crate::FakeGitea::push_action) / [`World::push_action`](crate::World::push_action).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAction {
    pub op_type: String,
    /// Actor login (created as a user when missing).
    pub actor: String,
    /// `owner/name` (created when missing; a name without `/` is taken as the actor's repo).
    pub repo: String,
    pub content: String,
    pub ref_name: String,
    pub comment_id: i64,
    /// When `Some`, the rows carry a comment object (and `comment_id` is its id).
    pub comment: Option<NewComment>,
    /// `None` = now.
    pub created: Option<DateTime<FixedOffset>>,
    /// The copies' `created` = original's + this (0 or 1 in practice).
    pub copy_delay_secs: i64,
    /// `false` = late-visible until [`FakeGitea::reveal`](crate::FakeGitea::reveal).
    pub visible: bool,
}

/// Comment ids handed out by [`NewAction::comment`]. They start high so they do not
/// collide with the ids the world's own generators allocate (from 1).
static NEXT_COMMENT_ID: AtomicI64 = AtomicI64::new(1 << 32);
/// Counter that makes [`NewAction::push`] payloads unique without an rng.
pub(crate) static PUSH_COUNTER: AtomicU64 = AtomicU64::new(1);

impl NewAction {
    /// A bare action; set the rest with the builder methods.
    pub fn new(op_type: &str, actor: &str, repo: &str) -> NewAction {
        NewAction {
            op_type: op_type.to_string(),
            actor: actor.to_string(),
            repo: repo.to_string(),
            content: String::new(),
            ref_name: String::new(),
            comment_id: 0,
            comment: None,
            created: None,
            copy_delay_secs: 0,
            visible: true,
        }
    }

    pub fn content(mut self, content: &str) -> NewAction {
        self.content = content.to_string();
        self
    }

    pub fn ref_name(mut self, ref_name: &str) -> NewAction {
        self.ref_name = ref_name.to_string();
        self
    }

    pub fn comment_id(mut self, id: i64) -> NewAction {
        self.comment_id = id;
        self
    }

    /// Set `created` (the original row's).
    pub fn at(mut self, created: DateTime<FixedOffset>) -> NewAction {
        self.created = Some(created);
        self
    }

    /// The copies' `created` = the original's + `secs`.
    pub fn copy_delay(mut self, secs: i64) -> NewAction {
        self.copy_delay_secs = secs;
        self
    }

    /// Late-visible: the rows exist (and have their ids) but are not served until
    /// [`FakeGitea::reveal`](crate::FakeGitea::reveal).
    pub fn hidden(mut self) -> NewAction {
        self.visible = false;
        self
    }

    /// Done by the Gitea Actions bot (a workflow's token): the actor is
    /// [`ACTIONS_BOT_LOGIN`], user id [`ACTIONS_BOT_ID`], which has no `user` row, so only
    /// a site admin's token sees the rows in any feed (see
    /// [`FakeGitea::set_user_visibility`](crate::FakeGitea::set_user_visibility)). The
    /// same as `actor: "gitea-actions"`.
    pub fn by_actions_bot(mut self) -> NewAction {
        self.actor = ACTIONS_BOT_LOGIN.to_string();
        self
    }

    /// A `commit_repo` push of `n_commits` commits to `refs/heads/{branch}`, with a
    /// Gitea-shaped push JSON built from a process-wide counter (no rng). With
    /// `n_commits == 0` the content is empty (a new branch without commits).
    pub fn push(actor: &str, repo: &str, branch: &str, n_commits: usize) -> NewAction {
        let counter = PUSH_COUNTER.fetch_add(1, Ordering::Relaxed);
        let content = if n_commits == 0 {
            String::new()
        } else {
            push::counter_push_json(counter, actor, repo, branch, n_commits)
        };
        NewAction::new("commit_repo", actor, repo)
            .content(&content)
            .ref_name(&format!("refs/heads/{branch}"))
    }

    /// A `push_tag` row of a new tag `refs/tags/{tag}` pointing at `sha`, with the push JSON
    /// Gitea writes for it (`"Commits":null`, the head commit, a compare URL from the zero
    /// SHA; go-gitea/gitea services/repository/push.go `pushUpdates`, written by
    /// services/feed/notifier.go `PushCommits`). Gitea writes no other row for a new tag
    /// (its feed notifier's `CreateRef` skips tags).
    pub fn push_tag(actor: &str, repo: &str, tag: &str, sha: &str) -> NewAction {
        NewAction::new("push_tag", actor, repo)
            .content(&push::tag_push_json(repo, actor, sha, sha))
            .ref_name(&format!("refs/tags/{tag}"))
    }

    /// A `delete_tag` row of `refs/tags/{tag}`, with the push JSON Gitea writes for it
    /// (`{"Commits":null,"HeadCommit":null,"CompareURL":"","Len":0}`: the old SHA is not in
    /// it; go-gitea/gitea services/repository/push.go `pushUpdates`). Gitea writes no other
    /// row for a deleted tag (its feed notifier's `DeleteRef` skips tags).
    pub fn delete_tag(actor: &str, repo: &str, tag: &str) -> NewAction {
        NewAction::new("delete_tag", actor, repo)
            .content(push::DELETED_TAG_PUSH_JSON)
            .ref_name(&format!("refs/tags/{tag}"))
    }

    /// A `comment_issue` with a fresh comment id and a comment object; content is
    /// `INDEX|first 200 characters`.
    pub fn comment(actor: &str, repo: &str, issue_index: i64, body: &str) -> NewAction {
        let id = NEXT_COMMENT_ID.fetch_add(1, Ordering::Relaxed);
        let mut a = NewAction::new("comment_issue", actor, repo)
            .content(&format!("{issue_index}|{}", truncate_comment(body)))
            .comment_id(id);
        a.comment = Some(NewComment {
            issue_index,
            body: body.to_string(),
            is_pull: false,
        });
        a
    }

    /// `create_issue` with content `INDEX|TITLE`.
    pub fn create_issue(actor: &str, repo: &str, index: i64, title: &str) -> NewAction {
        NewAction::new("create_issue", actor, repo).content(&format!("{index}|{title}"))
    }

    /// `close_issue` with content `INDEX|`.
    pub fn close_issue(actor: &str, repo: &str, index: i64) -> NewAction {
        NewAction::new("close_issue", actor, repo).content(&format!("{index}|"))
    }
}

/// The ops whose content names an issue (Gitea: `INDEX|TEXT`, go-gitea/gitea
/// models/activities/action.go `GetIssueInfos`), with the number of fields (Gitea splits
/// them at the first `|`s: `SplitN(content, "|", 3)`).
fn issue_fields(op: &str) -> Option<usize> {
    match op {
        "create_issue"
        | "create_pull_request"
        | "merge_pull_request"
        | "auto_merge_pull_request"
        | "close_issue"
        | "reopen_issue"
        | "close_pull_request"
        | "reopen_pull_request"
        | "comment_issue"
        | "comment_pull"
        | "approve_pull_request"
        | "reject_pull_request"
        | "pull_request_ready_for_review" => Some(2),
        // services/feed/notifier.go `NotifyPullRevieweDismiss`: `INDEX|REVIEWER|COMMENT`.
        "pull_review_dismissed" => Some(3),
        _ => None,
    }
}

/// A row's content as Forgejo 13+ writes it, from Gitea's (which the world stores): an
/// issue's `INDEX|TEXT` as the JSON array `["INDEX","TEXT"]` (`pull_review_dismissed`:
/// `["INDEX","REVIEWER","COMMENT"]`), and a tag push's `"Commits":null` as `[]` (Forgejo's
/// push commits are an empty slice, not a nil one). Anything else, and an issue op's content
/// that is not `DIGITS|...` (a test's own), as it is.
pub(crate) fn forgejo_content<'a>(op: &str, content: Cow<'a, str>) -> Cow<'a, str> {
    if let Some(n) = issue_fields(op) {
        let fields: Vec<&str> = content.splitn(n, '|').collect();
        let index = fields.first().copied().unwrap_or_default();
        if fields.len() > 1 && !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) {
            // Serializing strings cannot fail.
            return Cow::Owned(serde_json::to_string(&fields).unwrap_or_default());
        }
        return content;
    }
    const NIL: &str = r#"{"Commits":null"#;
    match content.strip_prefix(NIL) {
        Some(rest) => Cow::Owned(format!(r#"{{"Commits":[]{rest}"#)),
        None => content,
    }
}

/// Forgejo's feed text of a comment: its first line, cut to at most 200 bytes (at a
/// character boundary), no ellipsis.
pub(crate) fn forgejo_comment_text(body: &str) -> &str {
    let line = body.lines().next().unwrap_or_default();
    let mut cut = line.len().min(200);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    &line[..cut]
}

/// Gitea's feed content for a comment: the first 200 characters, cut at a word
/// boundary with an ellipsis when longer.
pub(crate) fn truncate_comment(body: &str) -> String {
    match body.char_indices().nth(200) {
        None => body.to_string(),
        Some((cut, _)) => {
            let head = &body[..cut];
            match head.rfind(' ') {
                Some(sp) if head.len() - sp < 15 => format!("{}…", &head[..sp]),
                _ => head.to_string(),
            }
        }
    }
}
