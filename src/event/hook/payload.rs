//! The payloads (`modules/structs/hook.go`, filled as `services/webhook/notifier.go` does),
//! from a feed row ([`from_row`]) or a repository endpoint's change ([`from_change`]).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Hook, ZERO_SHA};
use crate::gitea::Activity;

/// What the hooks of a row or change need fetched from the API.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Needs {
    /// `/repos/{o}/{r}/issues/{index}`.
    pub issue: Option<i64>,
    /// `/repos/{o}/{r}/pulls/{index}`.
    pub pull: Option<i64>,
    /// `/repos/{o}/{r}/issues/comments/{id}` (when the row carries no comment object).
    pub comment: Option<i64>,
    /// `/repos/{o}/{r}/releases` (the release of this tag).
    pub release_tag: Option<String>,
    /// `/repos/{o}/{r}/branches/{name}`: the head of a created branch.
    pub branch: Option<String>,
    /// `/repos/{o}/{r}/tags/{name}`: the commit of a created tag.
    pub tag: Option<String>,
    /// `/repos/{o}/{r}/pulls?state=open`: for `pull_request_sync` of a branch push.
    pub open_pulls: bool,
    /// `/repos/{o}/{r}/git/commits/{sha}` of each listed commit (`push_files = true`).
    pub commits: Vec<String>,
    /// `/repos/{o}/{r}`: a change carries no repository object.
    pub repo: bool,
    /// `/repos/{o}/{r}/actions/workflows/{id}`: a run's workflow (`id` its file name).
    pub workflow: Option<String>,
    /// `/orgs/{owner}`: the repository's organization (a 404 tells a user's repository).
    pub org: bool,
    /// `/repos/{o}/{r}/issues/{index}/timeline` around the row's time: the commit that
    /// closed or reopened an issue, if one did.
    pub timeline: Option<i64>,
}

/// The Gitea objects a row's or change's hooks are built from (as the API returned them).
#[derive(Default)]
pub struct RowObjects<'a> {
    /// The full repository (a feed row's `repo`, or `/repos/{o}/{r}`).
    pub repo: Option<&'a Value>,
    /// Who acted (a feed row's `act_user`); changes name theirs in their data.
    pub sender: Option<&'a Value>,
    pub issue: Option<&'a Value>,
    pub pull: Option<&'a Value>,
    pub comment: Option<&'a Value>,
    pub release: Option<&'a Value>,
    /// The commit a created branch or tag points to (from the API: for a row that does not
    /// name it).
    pub ref_sha: Option<&'a str>,
    /// The sha a deleted tag pointed to, when known: Gitea's `delete_tag` row does not carry
    /// it (`{"Commits":null,"HeadCommit":null,"CompareURL":"","Len":0}`) and the API no longer
    /// has the tag; the tag's own `push_tag` row, when seen, does.
    pub deleted_sha: Option<&'a str>,
    /// This push created its branch (its `CompareURL` names no real `before`).
    pub new_ref: bool,
    /// The repository's open pull requests (`open_pulls`).
    pub open_pulls: &'a [Value],
    /// Commit API objects by sha (`push_files = true`; a status's commit).
    pub commits: Option<&'a HashMap<String, Value>>,
    /// A run's workflow as `/actions/workflows/{id}` answers it.
    pub workflow: Option<&'a Value>,
    /// The repository's owner as `/orgs/{owner}` answers it; `None` for a user.
    pub organization: Option<&'a Value>,
    /// The issue's timeline items around the row's time (`Needs::timeline`), id ascending.
    pub timeline: &'a [Value],
}

/// A repository endpoint's change, as `repo::Change` carries it.
pub struct Change<'a> {
    /// `issue`, `pull_request`, `comment`, `release`, `status`, `actions_run`,
    /// `actions_job`.
    pub noun: &'a str,
    /// `labeled`, `edited`, `published`, ...
    pub change: &'a str,
    /// The objects the endpoint returned (`{"issue":..,"timeline":..}`, `{"comment":..}`, ...).
    pub data: &'a Value,
}

/// The push JSON of a `commit_repo` / `push_tag` / `delete_tag` row's `content`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PushContent {
    /// `null` in Gitea's tag rows (a nil slice: `services/feed/notifier.go` `PushCommits`
    /// with `NewPushCommits()`), `[]` in Forgejo 13+'s.
    #[serde(rename = "Commits", deserialize_with = "null_as_empty")]
    commits: Vec<PushCommit>,
    #[serde(rename = "HeadCommit")]
    head_commit: Option<PushCommit>,
    #[serde(rename = "CompareURL")]
    compare_url: String,
    #[serde(rename = "Len")]
    len: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct PushCommit {
    sha1: String,
    message: String,
    author_email: String,
    author_name: String,
    committer_email: String,
    committer_name: String,
    timestamp: String,
}

/// A list that may be `null`, as Go writes a nil slice.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The row's content is a push (`{"Commits":...}`; a cut `{}` too), not a ref's creation.
fn is_push_content(a: &Activity) -> bool {
    a.content.trim_start().starts_with('{')
}

fn short_ref(r: &str) -> &str {
    r.strip_prefix("refs/heads/")
        .or_else(|| r.strip_prefix("refs/tags/"))
        .unwrap_or(r)
}

/// `INDEX` of `INDEX|...` (Forgejo: `["INDEX",...]`).
fn index_of(a: &Activity) -> Option<i64> {
    a.issue_content().map(|(index, _)| index)
}

/// The shas of a push's listed commits and of its head commit (a tag's push lists none but
/// has a head, whose file lists Gitea's payload carries too).
fn listed_shas(p: PushContent) -> Vec<String> {
    let mut shas: Vec<String> = p.commits.into_iter().map(|c| c.sha1).collect();
    if let Some(h) = p.head_commit
        && !h.sha1.is_empty()
        && !shas.contains(&h.sha1)
    {
        shas.push(h.sha1);
    }
    shas
}

/// The value a push row set its ref to (Gitea's `opts.NewCommitID`): the `NEW` of its
/// compare URL (`services/repository/push.go`; for an annotated tag the tag object, not the
/// commit), else its head commit. `None` for a push JSON that names neither (cut to `{}`).
pub fn pushed_sha(a: &Activity) -> Option<String> {
    if !is_push_content(a) {
        return None;
    }
    let p = push_content(a);
    let (_, new) = compare_ends(&p.compare_url);
    new.filter(|n| is_sha(n))
        .map(str::to_string)
        .or(p.head_commit.map(|h| h.sha1))
        .filter(|s| !s.is_empty())
}

/// What the hooks of row `a` need fetched (`push_files`: the commits' file lists).
pub fn needs(a: &Activity, push_files: bool) -> Needs {
    let mut n = Needs::default();
    match a.op_type.as_str() {
        "commit_repo" | "mirror_sync_push" if is_push_content(a) => {
            // A mirror sync synchronizes no pull request (`services/mirror/mirror_pull.go`
            // `SyncPullMirror` calls no `PullRequestSynchronized`).
            n.open_pulls = a.op_type == "commit_repo" && a.ref_name.starts_with("refs/heads/");
            if push_files {
                n.commits = listed_shas(push_content(a));
            }
            if a.op_type == "mirror_sync_push" && pushed_sha(a).is_none() {
                // A new ref's sync push (`repo_module.NewPushCommits()`: no commits, no
                // head, no compare URL): its value is the ref's, from the API.
                ref_needs(&mut n, &a.ref_name);
            }
        }
        // `SyncCreateRef(..., commitID)`: the row (empty content) does not name the commit.
        "mirror_sync_create" => ref_needs(&mut n, &a.ref_name),
        "push_tag" if is_push_content(a) => {
            if push_files {
                n.commits = listed_shas(push_content(a));
            }
            if pushed_sha(a).is_none() {
                // A push JSON cut short: the tag's sha from the API.
                n.tag = Some(short_ref(&a.ref_name).to_string());
            }
        }
        "commit_repo" => n.branch = Some(short_ref(&a.ref_name).to_string()),
        "push_tag" => n.tag = Some(short_ref(&a.ref_name).to_string()),
        "create_issue" => n.issue = index_of(a),
        "close_issue" | "reopen_issue" => {
            n.issue = index_of(a);
            n.timeline = n.issue;
        }
        "comment_issue" | "comment_pull" => {
            n.issue = index_of(a);
            n.comment = Some(a.comment_id).filter(|id| *id != 0);
            // Gitea's feed writes `comment_pull` for a comment on a pull request, whose
            // payload carries the pull request (1.23+).
            if a.op_type == "comment_pull" {
                n.pull = n.issue;
                // The timeline item of the row's comment tells a plain comment from a
                // review's (`review`) or a code comment (`code`): services/feed/notifier.go
                // `PullRequestReview` writes `comment_pull` rows for both.
                n.timeline = n.issue;
            }
        }
        "create_pull_request"
        | "close_pull_request"
        | "reopen_pull_request"
        | "merge_pull_request"
        | "auto_merge_pull_request"
        | "approve_pull_request"
        | "reject_pull_request" => n.pull = index_of(a),
        "publish_release" => n.release_tag = Some(short_ref(&a.ref_name).to_string()),
        _ => {}
    }
    n
}

/// Asks for the value of `ref_name` (a branch's head, a tag's object) from the API.
fn ref_needs(n: &mut Needs, ref_name: &str) {
    match ref_type(ref_name) {
        "branch" => n.branch = Some(short_ref(ref_name).to_string()),
        "tag" => n.tag = Some(short_ref(ref_name).to_string()),
        _ => {}
    }
}

/// `git.RefName.RefType()` (`modules/git/ref.go`): `branch`, `tag`, else `""` here (a
/// mirror syncs heads and tags; pull refs are skipped before any row is written).
fn ref_type(ref_name: &str) -> &'static str {
    if ref_name.starts_with("refs/heads/") {
        "branch"
    } else if ref_name.starts_with("refs/tags/") {
        "tag"
    } else {
        ""
    }
}

fn push_content(a: &Activity) -> PushContent {
    serde_json::from_str(&a.content).unwrap_or_default()
}

fn require<'a>(v: Option<&'a Value>, what: &str) -> Result<&'a Value, String> {
    v.ok_or_else(|| format!("the {what} could not be read from the API"))
}

fn hook(event_type: &'static str, body: Value) -> Hook {
    Hook {
        event_type,
        part: None,
        body,
    }
}

/// A full user object's `login`, for matching commit emails.
fn user_email(u: &Value) -> &str {
    u["email"].as_str().unwrap_or("")
}

/// `PayloadCommit` (`modules/structs/repo_commit.go`) of a listed commit. The username is
/// known only when the email is the pusher's (Gitea looks every email up; the API cannot).
fn payload_commit(html: &str, c: &PushCommit, sender: &Value, files: Option<&Value>) -> Value {
    let username = |email: &str| {
        if !email.is_empty() && email == user_email(sender) {
            sender["login"].as_str().unwrap_or("").to_string()
        } else {
            String::new()
        }
    };
    let (added, removed, modified) = file_lists(files);
    json!({
        "id": c.sha1,
        "message": c.message,
        "url": format!("{html}/commit/{}", c.sha1),
        "author": { "name": c.author_name, "email": c.author_email, "username": username(&c.author_email) },
        "committer": { "name": c.committer_name, "email": c.committer_email, "username": username(&c.committer_email) },
        "verification": null,
        "timestamp": c.timestamp,
        "added": added,
        "removed": removed,
        "modified": modified,
    })
}

/// `PayloadCommit` of a commit API object (`/git/commits/{sha}`), as Gitea's
/// `services/repository/push.go` `ToAPIPayloadCommit` makes it of
/// `CommitToPushCommit(commit)`: the author's and committer's name and email, `username`
/// the Gitea user of that email (the API's `author`/`committer` user), `timestamp` the
/// author's date, no `verification`, the file lists. Without the object (it could not be
/// read) every key is still there, only `id` and `url` known.
fn api_payload_commit(html: &str, sha: &str, commit: Option<&Value>) -> Value {
    let c = commit.unwrap_or(&Value::Null);
    let user = |who: &str| {
        let git = &c["commit"][who];
        json!({
            "name": git["name"].as_str().unwrap_or(""),
            "email": git["email"].as_str().unwrap_or(""),
            "username": c[who]["login"].as_str().unwrap_or(""),
        })
    };
    let (added, removed, modified) = file_lists(commit);
    json!({
        "id": sha,
        "message": c["commit"]["message"].as_str().unwrap_or(""),
        "url": format!("{html}/commit/{sha}"),
        "author": user("author"),
        "committer": user("committer"),
        "verification": null,
        "timestamp": c["commit"]["author"]["date"].as_str().unwrap_or(""),
        "added": added,
        "removed": removed,
        "modified": modified,
    })
}

/// `added`, `removed` and `modified` of a commit API object's `files`
/// (`git.GetCommitFileStatus` in Gitea).
fn file_lists(commit: Option<&Value>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut added, mut removed, mut modified) = (Vec::new(), Vec::new(), Vec::new());
    for f in commit
        .and_then(|c| c["files"].as_array())
        .into_iter()
        .flatten()
    {
        let name = f["filename"].as_str().unwrap_or("").to_string();
        match f["status"].as_str().unwrap_or("") {
            "added" => added.push(name),
            "removed" | "deleted" => removed.push(name),
            _ => modified.push(name),
        }
    }
    (added, removed, modified)
}

/// `OLD` and `NEW` of `owner/repo/compare/OLD...NEW`.
fn compare_ends(compare: &str) -> (Option<&str>, Option<&str>) {
    let Some((_, ends)) = compare.rsplit_once("/compare/") else {
        return (None, None);
    };
    match ends.split_once("...") {
        Some((old, new)) => (Some(old), Some(new)),
        None => (None, Some(ends)),
    }
}

fn is_sha(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The hooks Gitea would have sent for feed row `a`. An `Err` names the object that could
/// not be read (the caller logs it and publishes the activity event alone).
pub fn from_row(gitea_url: &str, a: &Activity, o: &RowObjects<'_>) -> Result<Vec<Hook>, String> {
    let repo = require(o.repo, "repository")?;
    let sender = o.sender.unwrap_or(&Value::Null);
    let base = |action: &str| {
        let mut m = Map::new();
        m.insert("action".into(), json!(action));
        m
    };
    let finish = |mut m: Map<String, Value>| {
        m.insert("repository".into(), repo.clone());
        m.insert("sender".into(), sender.clone());
        Value::Object(m)
    };
    let issue_payload = |action: &str, state: AsOf| -> Result<Value, String> {
        let issue = require(o.issue, "issue")?;
        let mut m = base(action);
        m.insert("number".into(), issue["number"].clone());
        m.insert("issue".into(), as_of(issue, state, a));
        let commit = match a.op_type.as_str() {
            "close_issue" | "reopen_issue" => closing_commit(o.timeline, a, sender),
            _ => None,
        };
        m.insert("commit_id".into(), json!(commit.unwrap_or_default()));
        Ok(finish(m))
    };
    let pull_payload = |action: &str, state: Option<AsOf>| -> Result<Map<String, Value>, String> {
        let pull = require(o.pull, "pull request")?;
        let mut m = base(action);
        m.insert("number".into(), pull["number"].clone());
        let pull = match state {
            Some(state) => as_of(pull, state, a),
            None => pull.clone(),
        };
        m.insert("pull_request".into(), pull);
        pull_unused(&mut m);
        m.insert("commit_id".into(), json!(""));
        Ok(m)
    };
    let op = a.op_type.as_str();
    Ok(match op {
        // `services/webhook/notifier.go` `PushCommits`: `before`/`after` are the ref's old
        // and new values, `compare_url` is `setting.AppURL + CompareURL` (the instance's URL
        // alone when the row has none, as a deleted tag's).
        "commit_repo" | "mirror_sync_push" | "push_tag" | "delete_tag" if is_push_content(a) => {
            let p = push_content(a);
            let html = repo["html_url"].as_str().unwrap_or("");
            let (old, _) = compare_ends(&p.compare_url);
            let after = if op == "delete_tag" {
                ZERO_SHA.to_string()
            } else {
                pushed_sha(a)
                    .or_else(|| o.ref_sha.map(str::to_string))
                    .unwrap_or_default()
            };
            let before = match old {
                // The row of a deleted tag names no old sha: known only from the tag's row.
                _ if op == "delete_tag" => o.deleted_sha.unwrap_or("").to_string(),
                _ if o.new_ref || op == "push_tag" => ZERO_SHA.to_string(),
                Some(old) if is_sha(old) => old.to_string(),
                _ => ZERO_SHA.to_string(),
            };
            let files = |sha: &str| o.commits.and_then(|m| m.get(sha));
            let commits: Vec<Value> = p
                .commits
                .iter()
                .map(|c| payload_commit(html, c, sender, files(&c.sha1)))
                .collect();
            let head = p
                .head_commit
                .as_ref()
                .map(|c| payload_commit(html, c, sender, files(&c.sha1)))
                .unwrap_or(Value::Null);
            let compare_url = format!("{gitea_url}/{}", p.compare_url);
            let push = json!({
                "ref": a.ref_name,
                "before": before,
                "after": after,
                "compare_url": compare_url,
                "commits": commits,
                "total_commits": p.len,
                "head_commit": head,
                "repository": repo,
                "pusher": sender,
                "sender": sender,
            });
            let mut out = vec![hook("push", push)];
            // `services/repository/push.go`: a new tag's `PushCommits` is followed by
            // `CreateRef(..., opts.NewCommitID)`, a deleted tag's by `DeleteRef`.
            if op == "push_tag" {
                out.push(create_hook(a, "tag", &after, repo, sender));
            } else if op == "delete_tag" {
                out.push(delete_hook(a, "tag", repo, sender));
            } else if op == "commit_repo" {
                let branch = short_ref(&a.ref_name);
                let full = repo["full_name"].as_str().unwrap_or("");
                for pr in o.open_pulls {
                    let head_repo = pr["head"]["repo"]["full_name"].as_str().unwrap_or(full);
                    if pr["head"]["ref"].as_str() == Some(branch)
                        && head_repo == full
                        && pr["state"].as_str() != Some("closed")
                    {
                        let mut m = base("synchronized");
                        m.insert("number".into(), pr["number"].clone());
                        m.insert("pull_request".into(), pr.clone());
                        pull_unused(&mut m);
                        m.insert("commit_id".into(), json!(""));
                        // Gitea 1.27+ `PullRequestPayload.Before`/`After` (`omitempty`,
                        // filled for a synchronization only): the head branch's old and new
                        // commit, the push's own pair.
                        m.insert("before".into(), json!(before));
                        m.insert("after".into(), json!(after));
                        out.push(Hook {
                            event_type: "pull_request_sync",
                            part: pr["number"].as_i64(),
                            body: finish(m),
                        });
                    }
                }
            }
            out
        }
        "commit_repo" | "push_tag" => {
            let ref_type = if op == "push_tag" { "tag" } else { "branch" };
            vec![create_hook(
                a,
                ref_type,
                o.ref_sha.unwrap_or(""),
                repo,
                sender,
            )]
        }
        "delete_branch" | "delete_tag" => {
            let ref_type = if op == "delete_tag" { "tag" } else { "branch" };
            vec![delete_hook(a, ref_type, repo, sender)]
        }
        // `services/mirror/mirror_pull.go` `SyncPullMirror`: a ref the sync created is
        // `SyncPushCommits` (the `mirror_sync_push` row, above) then `SyncCreateRef(owner,
        // repo, ref, commitID)`, a ref it removed `SyncDeleteRef` alone;
        // `services/webhook/notifier.go` sends them as `CreateRef` / `DeleteRef` do, the
        // repository's owner as sender (the row's `act_user`,
        // `services/feed/notifier.go` `SyncCreateRef` / `SyncDeleteRef`).
        "mirror_sync_create" => vec![create_hook(
            a,
            ref_type(&a.ref_name),
            o.ref_sha.unwrap_or(""),
            repo,
            sender,
        )],
        "mirror_sync_delete" => vec![delete_hook(a, ref_type(&a.ref_name), repo, sender)],
        "create_issue" => vec![hook("issues", issue_payload("opened", AsOf::Open)?)],
        "close_issue" => vec![hook("issues", issue_payload("closed", AsOf::Closed)?)],
        "reopen_issue" => vec![hook("issues", issue_payload("reopened", AsOf::Open)?)],
        "create_pull_request" => vec![hook(
            "pull_request",
            finish(pull_payload("opened", Some(AsOf::Open))?),
        )],
        "close_pull_request" => vec![hook(
            "pull_request",
            finish(pull_payload("closed", Some(AsOf::Closed))?),
        )],
        "merge_pull_request" | "auto_merge_pull_request" => vec![hook(
            "pull_request",
            finish(pull_payload("closed", Some(AsOf::Merged))?),
        )],
        "reopen_pull_request" => vec![hook(
            "pull_request",
            finish(pull_payload("reopened", Some(AsOf::Open))?),
        )],
        "approve_pull_request" | "reject_pull_request" => {
            let event_type = if op == "approve_pull_request" {
                "pull_request_review_approved"
            } else {
                "pull_request_review_rejected"
            };
            let content = match o.comment {
                Some(c) => c["body"].as_str().unwrap_or("").to_string(),
                None => a.issue_content().map(|(_, c)| c).unwrap_or_default(),
            };
            let mut m = pull_payload("reviewed", None)?;
            m.insert(
                "review".into(),
                json!({ "type": event_type, "content": content }),
            );
            vec![hook(event_type, finish(m))]
        }
        // services/webhook/notifier.go `PullRequestReview`: a review of type comment is
        // `pull_request_review_comment` (`reviewed`, `review.type` the event type, its
        // body the content), sent once per review; its code comments send nothing of their own.
        "comment_pull" if timeline_type(o.timeline, a.comment_id) == Some("review") => {
            let content = o
                .timeline
                .iter()
                .find(|t| t["id"].as_i64() == Some(a.comment_id))
                .and_then(|t| t["body"].as_str())
                .unwrap_or("")
                .to_string();
            let event_type = "pull_request_review_comment";
            let mut m = pull_payload("reviewed", None)?;
            m.insert(
                "review".into(),
                json!({ "type": event_type, "content": content }),
            );
            vec![hook(event_type, finish(m))]
        }
        "comment_pull" if timeline_type(o.timeline, a.comment_id) == Some("code") => Vec::new(),
        "comment_issue" | "comment_pull" => {
            let issue = require(o.issue, "issue")?;
            let comment = require(o.comment, "comment")?;
            let is_pull = op == "comment_pull" || !issue["pull_request"].is_null();
            let event_type = if is_pull {
                "pull_request_comment"
            } else {
                "issue_comment"
            };
            let mut m = base("created");
            m.insert("issue".into(), issue.clone());
            comment_pull(&mut m, is_pull, o.pull);
            m.insert("comment".into(), comment.clone());
            m.insert("is_pull".into(), json!(is_pull));
            vec![hook(event_type, finish(m))]
        }
        "publish_release" => {
            let release = require(o.release, "release")?;
            let mut m = base("published");
            m.insert("release".into(), release.clone());
            vec![hook("release", finish(m))]
        }
        "create_repo" => {
            let mut m = base("created");
            m.insert("organization".into(), repo["owner"].clone());
            vec![hook("repository", finish(m))]
        }
        // Stars, watches, renames, transfers, dismissed reviews: Gitea sends no webhook (or
        // none the feed row can be matched to).
        _ => Vec::new(),
    })
}

/// The `type` of timeline item `id` (`comment`, `review`, `code`, ...), if it was read.
fn timeline_type(timeline: &[Value], id: i64) -> Option<&str> {
    timeline
        .iter()
        .find(|t| id != 0 && t["id"].as_i64() == Some(id))
        .and_then(|t| t["type"].as_str())
}

/// `commit_id` of a `close_issue` / `reopen_issue` row: the commit whose message closed or
/// reopened the issue. `services/issue/commit.go` `UpdateIssuesCommit` writes a `commit_ref`
/// comment (`ref_commit_sha`) and then calls `ChangeStatus(..., c.Sha1, ...)`, whose
/// `close` / `reopen` comment follows it directly; `services/webhook/notifier.go`
/// `IssueChangeStatus` sends that sha as `commit_id` (`""` when closed by hand). Only issues
/// are closed this way ("Only issues can be closed/reopened this way"). The status item is
/// the row's comment (`comment_id`), else the one of the row's kind, by its actor, within two
/// seconds of the row; the commit is the `commit_ref` item just before it, by the same user,
/// within two seconds. `None` when the timeline shows none (a reference written earlier, by
/// another push of the same commit, is not told apart from one by hand).
fn closing_commit(timeline: &[Value], a: &Activity, actor: &Value) -> Option<String> {
    let kind = if a.op_type == "close_issue" {
        "close"
    } else {
        "reopen"
    };
    let t = a.created.timestamp();
    let secs = |v: &Value| {
        v["created_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.timestamp())
    };
    let near = |v: &Value, to: i64| secs(v).is_some_and(|s| (s - to).abs() <= 2);
    let by_actor = |v: &Value| match (v["user"]["id"].as_i64(), actor["id"].as_i64()) {
        (Some(u), Some(me)) => u == me,
        _ => v["user"]["login"].as_str().is_some() && v["user"]["login"] == actor["login"],
    };
    let at = timeline
        .iter()
        .position(|v| a.comment_id != 0 && v["id"].as_i64() == Some(a.comment_id))
        .or_else(|| {
            timeline
                .iter()
                .rposition(|v| v["type"] == kind && by_actor(v) && near(v, t))
        })?;
    let status = &timeline[at];
    let prev = timeline.get(at.checked_sub(1)?)?;
    let status_secs = secs(status)?;
    (prev["type"] == "commit_ref" && prev["user"] == status["user"] && near(prev, status_secs))
        .then(|| prev["ref_commit_sha"].as_str().unwrap_or(""))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// What an action tells of its issue's or pull request's state when it happened.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AsOf {
    Open,
    /// Closed without a merge.
    Closed,
    Merged,
}

/// The issue or pull request `obj` (as the API returns it now) as it was at action `a`:
/// Gitea builds the payload in the request that changed the state
/// (`services/webhook/notifier.go` `NewIssue`, `NewPullRequest`, `IssueChangeStatus`,
/// `MergePullRequest`, each with `convert.ToAPIIssue` / `convert.ToAPIPullRequest` of the
/// object just written), so `state`, `closed_at` and the merge fields are what the action
/// made them; every other value is the API's (what Gitea would say otherwise). A
/// `closed_at` of the API more than two seconds from the action is a later closing: the
/// action's own time is taken (Gitea's `ClosedUnix` is set by the closing request).
fn as_of(obj: &Value, state: AsOf, a: &Activity) -> Value {
    let mut v = obj.clone();
    let Value::Object(m) = &mut v else {
        return v;
    };
    let when = json!(a.created.to_rfc3339_opts(SecondsFormat::Secs, true));
    let near = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| (t.timestamp() - a.created.timestamp()).abs() <= 2)
    };
    let closed_at = if state == AsOf::Open {
        Value::Null
    } else if near("closed_at") {
        m["closed_at"].clone()
    } else {
        when.clone()
    };
    let merged_at = (state == AsOf::Merged && !near("merged_at")).then(|| when.clone());
    m.insert(
        "state".into(),
        json!(if state == AsOf::Open {
            "open"
        } else {
            "closed"
        }),
    );
    m.insert("closed_at".into(), closed_at);
    // A pull request's merge fields (`merged` is a pull request's key only).
    if m.contains_key("merged") {
        if state == AsOf::Merged {
            m.insert("merged".into(), json!(true));
            if let Some(t) = merged_at {
                m.insert("merged_at".into(), t);
            }
        } else {
            // Not merged yet: `convert.ToAPIPullRequest` fills these only when `HasMerged`.
            m.insert("merged".into(), json!(false));
            for k in ["merged_at", "merge_commit_sha", "merged_by"] {
                m.insert(k.into(), Value::Null);
            }
        }
    }
    v
}

/// `CreatePayload` (`modules/structs/hook.go`: `sha`, `ref`, `ref_type`, `repository`,
/// `sender`; no `default_branch`, which only Gogs' and early Gitea's had), as
/// `services/webhook/notifier.go` `CreateRef` fills it: `ref` short, `sha` the ref's value.
fn create_hook(a: &Activity, ref_type: &str, sha: &str, repo: &Value, sender: &Value) -> Hook {
    hook(
        "create",
        json!({
            "sha": sha,
            "ref": short_ref(&a.ref_name),
            "ref_type": ref_type,
            "repository": repo,
            "sender": sender,
        }),
    )
}

/// `DeletePayload`, as `services/webhook/notifier.go` `DeleteRef` fills it.
fn delete_hook(a: &Activity, ref_type: &str, repo: &Value, sender: &Value) -> Hook {
    hook(
        "delete",
        json!({
            "ref": short_ref(&a.ref_name),
            "ref_type": ref_type,
            "pusher_type": "user",
            "repository": repo,
            "sender": sender,
        }),
    )
}

/// Whether rows of `op_type` can make webhook events at all (stars, watches, renames and
/// transfers make none).
pub fn makes_hooks(op_type: &str) -> bool {
    matches!(
        op_type,
        "commit_repo"
            | "mirror_sync_push"
            | "push_tag"
            | "delete_tag"
            | "delete_branch"
            | "mirror_sync_create"
            | "mirror_sync_delete"
            | "create_issue"
            | "close_issue"
            | "reopen_issue"
            | "comment_issue"
            | "comment_pull"
            | "create_pull_request"
            | "close_pull_request"
            | "reopen_pull_request"
            | "merge_pull_request"
            | "auto_merge_pull_request"
            | "approve_pull_request"
            | "reject_pull_request"
            | "publish_release"
            | "create_repo"
    )
}

/// `INDEX` at the end of an issue's or pull request's web URL (`.../issues/7`).
pub fn index_in_url(url: &str) -> Option<i64> {
    url.rsplit('/').next()?.parse().ok()
}

/// What the hooks of a repository endpoint's change need fetched.
pub fn needs_change(c: &Change<'_>) -> Needs {
    let mut n = Needs {
        repo: true,
        ..Needs::default()
    };
    match c.noun {
        "pull_request" => n.pull = c.data["issue"]["number"].as_i64(),
        "actions_run" => {
            let (file, _) = run_workflow(&c.data["run"]);
            n.workflow = Some(file.to_string()).filter(|f| !f.is_empty());
            n.org = true;
        }
        // A tag's listing names its commit only: its `PayloadCommit` is read.
        "ref"
            if c.data["ref"]
                .as_str()
                .is_some_and(|r| r.starts_with("refs/tags/")) =>
        {
            n.commits = c.data["head"]["commit"]["sha"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .into_iter()
                .collect();
        }
        "actions_job" => n.org = true,
        // `status.commit` is the whole `PayloadCommit` of the status's commit.
        "status" => {
            n.commits = c.data["sha"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .into_iter()
                .collect();
        }
        "comment" => {
            let cm = &c.data["comment"];
            let url = [&cm["issue_url"], &cm["pull_request_url"]]
                .into_iter()
                .filter_map(|u| u.as_str())
                .find(|u| !u.is_empty())
                .unwrap_or("");
            n.issue = index_in_url(url);
            // A comment on a pull request: its payload carries the pull request.
            n.pull = cm["pull_request_url"]
                .as_str()
                .filter(|u| !u.is_empty())
                .and(n.issue);
        }
        _ => {}
    }
    n
}

/// The hooks Gitea would have sent for a repository endpoint's change.
pub fn from_change(c: &Change<'_>, o: &RowObjects<'_>) -> Result<Vec<Hook>, String> {
    let repo = require(o.repo, "repository")?;
    let d = c.data;
    let with = |mut m: Map<String, Value>, sender: &Value| {
        m.insert("repository".into(), repo.clone());
        m.insert("sender".into(), sender.clone());
        Value::Object(m)
    };
    let base = |action: &str| {
        let mut m = Map::new();
        m.insert("action".into(), json!(action));
        m
    };
    Ok(match c.noun {
        "issue" | "pull_request" => {
            let is_pull = c.noun == "pull_request";
            let issue = &d["issue"];
            let timeline = &d["timeline"];
            let sender = &timeline["user"];
            let (fine, action): (&'static str, String) = match c.change {
                "labeled" | "unlabeled" => {
                    let cleared = c.change == "unlabeled"
                        && issue["labels"].as_array().is_none_or(|l| l.is_empty());
                    let action = if cleared {
                        "label_cleared"
                    } else {
                        "label_updated"
                    };
                    (
                        pick(is_pull, "pull_request_label", "issue_label"),
                        action.into(),
                    )
                }
                "assigned" | "unassigned" => (
                    pick(is_pull, "pull_request_assign", "issue_assign"),
                    c.change.into(),
                ),
                "milestoned" | "demilestoned" => (
                    pick(is_pull, "pull_request_milestone", "issue_milestone"),
                    c.change.into(),
                ),
                "review_requested" | "review_request_removed" if is_pull => {
                    ("pull_request_review_request", c.change.into())
                }
                "title_edited" | "edited" => {
                    (pick(is_pull, "pull_request", "issues"), "edited".into())
                }
                _ => return Ok(Vec::new()),
            };
            let mut m = base(&action);
            m.insert("number".into(), issue["number"].clone());
            if is_pull {
                m.insert(
                    "pull_request".into(),
                    require(o.pull, "pull request")?.clone(),
                );
                pull_unused(&mut m);
            } else {
                m.insert("issue".into(), issue.clone());
            }
            if action == "edited" {
                // The old title is in the timeline; an old body is kept nowhere in the API.
                let mut changes = Map::new();
                if c.change == "title_edited" {
                    changes.insert(
                        "title".into(),
                        json!({ "from": timeline["old_title"].as_str().unwrap_or("") }),
                    );
                }
                m.insert("changes".into(), Value::Object(changes));
            }
            if fine == "pull_request_review_request" {
                m.insert("requested_reviewer".into(), timeline["assignee"].clone());
            }
            m.insert("commit_id".into(), json!(""));
            vec![Hook {
                event_type: fine,
                part: None,
                body: with(
                    m,
                    if c.change == "edited" {
                        &Value::Null
                    } else {
                        sender
                    },
                ),
            }]
        }
        "comment" => {
            let comment = &d["comment"];
            let issue = require(o.issue, "issue")?;
            let is_pull = !issue["pull_request"].is_null()
                || comment["pull_request_url"]
                    .as_str()
                    .is_some_and(|u| !u.is_empty());
            let action = match c.change {
                "created" => "created",
                "edited" => "edited",
                _ => return Ok(Vec::new()),
            };
            let mut m = base(action);
            m.insert("issue".into(), issue.clone());
            comment_pull(&mut m, is_pull, o.pull);
            m.insert("comment".into(), comment.clone());
            if action == "edited" {
                // Gitea sends `changes.body.from`; the API keeps no old body.
                m.insert("changes".into(), json!({}));
            }
            m.insert("is_pull".into(), json!(is_pull));
            vec![Hook {
                event_type: pick(is_pull, "pull_request_comment", "issue_comment"),
                part: None,
                body: with(m, &comment["user"]),
            }]
        }
        "release" => {
            let action = match c.change {
                "published" => "published",
                "edited" => "updated",
                "deleted" => "deleted",
                _ => return Ok(Vec::new()),
            };
            let release = &d["release"];
            let mut m = base(action);
            m.insert("release".into(), release.clone());
            vec![Hook {
                event_type: "release",
                part: None,
                body: with(m, &release["author"]),
            }]
        }
        "ref" => ref_hooks(d, repo, o),
        "status" => {
            let s = &d["status"];
            let sha = d["sha"].as_str().unwrap_or("");
            let html = repo["html_url"].as_str().unwrap_or("");
            let commit = o.commits.and_then(|m| m.get(sha));
            let body = json!({
                "commit": api_payload_commit(html, sha, commit),
                "context": s["context"],
                "created_at": s["created_at"],
                "description": s["description"],
                "id": s["id"],
                "repository": repo,
                "sender": s["creator"],
                "sha": sha,
                "state": s["status"].as_str().or(s["state"].as_str()).unwrap_or(""),
                "target_url": s["target_url"],
                "updated_at": s["updated_at"],
            });
            vec![Hook {
                event_type: "status",
                part: None,
                body,
            }]
        }
        "actions_run" => {
            let run = &d["run"];
            let action = match run["status"].as_str().unwrap_or("") {
                "completed" => "completed",
                "in_progress" | "running" => "in_progress",
                _ => "requested",
            };
            // `Workflow` is `convert.GetActionWorkflow` of the run's workflow, what
            // `/actions/workflows/{id}` answers; unreadable, every key of `ActionWorkflow`
            // with what the run tells (its id and path).
            let workflow = match o.workflow {
                Some(w) => w.clone(),
                None => {
                    let (file, path) = run_workflow(run);
                    json!({
                        "id": file, "name": "", "path": path, "state": "",
                        "created_at": "", "updated_at": "", "url": "", "html_url": "",
                        "badge_url": "", "deleted_at": "",
                    })
                }
            };
            let mut m = base(action);
            m.insert("workflow".into(), workflow);
            m.insert("workflow_run".into(), run.clone());
            // `organization` (`omitempty`): set when the owner is an organization, as
            // `services/webhook/notifier.go` does for the workflow events.
            if let Some(org) = o.organization {
                m.insert("organization".into(), org.clone());
            }
            let sender = run.get("trigger_actor").unwrap_or(&Value::Null);
            vec![Hook {
                event_type: "workflow_run",
                part: None,
                body: with(m, sender),
            }]
        }
        "actions_job" => {
            // `services/webhook/notifier.go` `WorkflowJobStatusUpdate`: `WorkflowJob` is the
            // `ActionWorkflowJob` the jobs endpoint answers (`convert.ToActionWorkflowJob`;
            // Gitea 1.24 built the same keys by hand), `Action` its `status` (`queued`,
            // `waiting`, `in_progress`, `completed`), `Sender` the run's trigger user,
            // `Organization` for an organization's repository; no `pull_request`.
            let job = &d["job"];
            let action = job["status"].as_str().unwrap_or("").to_string();
            let mut m = base(&action);
            m.insert("workflow_job".into(), job.clone());
            if let Some(org) = o.organization {
                m.insert("organization".into(), org.clone());
            }
            let sender = d["run"].get("trigger_actor").unwrap_or(&Value::Null);
            vec![Hook {
                event_type: "workflow_job",
                part: None,
                body: with(m, sender),
            }]
        }
        _ => Vec::new(),
    })
}

/// The workflow file (the workflow's id) and its path, of a run's `path`
/// (`.gitea/workflows/ci.yml@refs/heads/main`, or `ci.yml@refs/heads/main`).
/// The hooks of a ref that moved, appeared or went away between two listings (`refs`
/// kind), in the order go-gitea/gitea services/repository/push.go `pushUpdates` sends them
/// through services/webhook/notifier.go: a new ref `push` (before zeros) then `create`; a
/// moved one `push`; a deleted tag `push` (after zeros) then `delete`; a deleted branch
/// `delete` only. The listing does not tell who pushed: `pusher` and `sender` are the head
/// commit's committer (Gitea's ghost user when it names none), and `commits` holds the head
/// commit only (`total_commits` 1; none for a deletion or a new tag, as Gitea's).
fn ref_hooks(d: &Value, repo: &Value, o: &RowObjects<'_>) -> Vec<Hook> {
    let r#ref = d["ref"].as_str().unwrap_or("");
    let before = d["before"].as_str().unwrap_or(ZERO_SHA);
    let after = d["after"].as_str().unwrap_or(ZERO_SHA);
    let is_tag = r#ref.starts_with("refs/tags/");
    let ref_type = if is_tag { "tag" } else { "branch" };
    let html = repo["html_url"].as_str().unwrap_or("");
    let head = if after == ZERO_SHA {
        Value::Null
    } else if is_tag {
        let sha = d["head"]["commit"]["sha"].as_str().unwrap_or(after);
        api_payload_commit(html, sha, o.commits.and_then(|m| m.get(sha)))
    } else {
        d["head"].clone()
    };
    let sender = committer_user(&head["committer"]);
    // `setting.AppURL + CompareURL`: `ComposeCompareURL(old, new)`, from zeros for a new
    // tag (for a new branch Gitea starts at the parent of the oldest commit it lists, which
    // a listing does not know: zeros too); a deletion has none (the instance's URL alone).
    let full = repo["full_name"].as_str().unwrap_or("");
    let app = html.strip_suffix(full).unwrap_or(html);
    let compare_url = if after == ZERO_SHA {
        app.to_string()
    } else {
        format!("{html}/compare/{before}...{after}")
    };
    // A new tag's push lists no commits (`NewPushCommits()`, `Commits` empty, `Len` 0) but
    // names its commit as `head_commit`: services/repository/push.go `pushUpdates`.
    let new_tag = is_tag && before == ZERO_SHA;
    let listed = !head.is_null() && !new_tag;
    let short = short_ref(r#ref);
    let push = || Hook {
        event_type: "push",
        part: None,
        body: json!({
            "ref": r#ref,
            "before": before,
            "after": after,
            "compare_url": compare_url,
            "commits": if listed { json!([head]) } else { json!([]) },
            "total_commits": if listed { 1 } else { 0 },
            "head_commit": head,
            "repository": repo,
            "pusher": sender,
            "sender": sender,
        }),
    };
    if after == ZERO_SHA {
        let delete = Hook {
            event_type: "delete",
            part: None,
            body: json!({
                "ref": short,
                "ref_type": ref_type,
                "pusher_type": "user",
                "repository": repo,
                "sender": sender,
            }),
        };
        return match is_tag {
            true => vec![push(), delete],
            false => vec![delete],
        };
    }
    let mut out = vec![push()];
    if before == ZERO_SHA {
        out.push(Hook {
            event_type: "create",
            part: None,
            body: json!({
                "sha": after,
                "ref": short,
                "ref_type": ref_type,
                "repository": repo,
                "sender": sender,
            }),
        });
    }
    out
}

/// A `User` for a commit's committer (`{name, email, username}`): the fields Gitea's
/// `convert.ToUser` writes, with what the commit tells; Gitea's ghost user
/// (models/user/user.go `NewGhostUser`: id -1, login `Ghost`) when it names nobody.
fn committer_user(c: &Value) -> Value {
    let login = c["username"].as_str().unwrap_or("");
    let (id, login) = match login {
        "" => (-1, "Ghost"),
        l => (0, l),
    };
    let full_name = if id == -1 {
        ""
    } else {
        c["name"].as_str().unwrap_or("")
    };
    let email = if id == -1 {
        ""
    } else {
        c["email"].as_str().unwrap_or("")
    };
    json!({
        "id": id,
        "login": login,
        "login_name": "",
        "source_id": 0,
        "full_name": full_name,
        "email": email,
        "avatar_url": "",
        "html_url": "",
        "language": "",
        "is_admin": false,
        "last_login": "0001-01-01T00:00:00Z",
        "created": "0001-01-01T00:00:00Z",
        "restricted": false,
        "active": false,
        "prohibit_login": false,
        "location": "",
        "website": "",
        "description": "",
        "visibility": "public",
        "followers_count": 0,
        "following_count": 0,
        "starred_repos_count": 0,
        "username": login,
    })
}

fn run_workflow(run: &Value) -> (&str, &str) {
    let path = run["path"].as_str().unwrap_or("");
    let path = path.split('@').next().unwrap_or(path);
    (path.rsplit('/').next().unwrap_or(path), path)
}

/// `requested_reviewer` and `review` of a `PullRequestPayload` (`modules/structs/hook.go`):
/// pointers without `omitempty`, so Gitea sends them as `null` when unused; the builders of
/// a review request and of a review fill them in after.
fn pull_unused(m: &mut Map<String, Value>) {
    m.insert("requested_reviewer".into(), Value::Null);
    m.insert("review".into(), Value::Null);
}

/// `pull_request` of an `IssueCommentPayload` (`modules/structs/hook.go`: a pointer with
/// `omitempty`): `services/webhook/notifier.go` `CreateIssueComment` / `UpdateComment` set it
/// for a comment on a pull request (Gitea 1.23+), and leave it out for an issue's. A pull
/// request the API could not return is left out too (logged by the caller).
fn comment_pull(m: &mut Map<String, Value>, is_pull: bool, pull: Option<&Value>) {
    if is_pull && let Some(pull) = pull {
        m.insert("pull_request".into(), pull.clone());
    }
}

fn pick(is_pull: bool, pull: &'static str, issue: &'static str) -> &'static str {
    if is_pull { pull } else { issue }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitea::ActivityRow;

    fn activity(op_type: &str, ref_name: &str, content: &str) -> Activity {
        let v = json!({ "op_type": op_type, "ref_name": ref_name, "content": content,
            "comment_id": 9, "created": "2026-01-02T03:04:05+08:00" });
        let raw = serde_json::value::RawValue::from_string(v.to_string()).unwrap();
        ActivityRow::parse(raw).unwrap().activity
    }

    #[test]
    fn what_each_row_needs_fetched() {
        let push = r#"{"Commits":[{"Sha1":"abc"}],"CompareURL":"o/r/compare/a...abc","Len":1}"#;
        let n = needs(&activity("commit_repo", "refs/heads/main", push), true);
        assert!(n.open_pulls);
        assert_eq!(n.commits, ["abc"]);
        assert!(
            needs(&activity("commit_repo", "refs/heads/main", push), false)
                .commits
                .is_empty()
        );
        assert!(!needs(&activity("push_tag", "refs/tags/v1", push), false).open_pulls);
        assert_eq!(
            needs(&activity("commit_repo", "refs/heads/new", ""), false)
                .branch
                .as_deref(),
            Some("new")
        );
        assert_eq!(
            needs(&activity("push_tag", "refs/tags/v1", ""), false)
                .tag
                .as_deref(),
            Some("v1")
        );
        let c = needs(&activity("comment_pull", "", "7|hi"), false);
        assert_eq!((c.issue, c.comment), (Some(7), Some(9)));
        assert_eq!(
            needs(&activity("merge_pull_request", "", "7|t"), false).pull,
            Some(7)
        );
        assert_eq!(
            needs(&activity("publish_release", "refs/tags/v2", "v2"), false)
                .release_tag
                .as_deref(),
            Some("v2")
        );
        assert_eq!(
            needs(&activity("star_repo", "", ""), false),
            Needs::default()
        );
        assert!(!makes_hooks("star_repo") && makes_hooks("delete_tag"));
    }

    #[test]
    fn forgejo_content_as_a_json_array_names_the_issue_as_gitea_s_does() {
        // Forgejo 13+: `["INDEX","TITLE"]`, `["INDEX","reviewer","comment"]`.
        for (gitea, forgejo) in [("7|hi", r#"["7","hi"]"#), ("12|a | b", r#"["12","a | b"]"#)] {
            let g = needs(&activity("comment_pull", "", gitea), false);
            let f = needs(&activity("comment_pull", "", forgejo), false);
            assert_eq!((g.issue, g.comment), (f.issue, f.comment));
            assert_eq!(
                activity("comment_pull", "", gitea).issue_content(),
                activity("comment_pull", "", forgejo).issue_content()
            );
        }
        assert_eq!(
            needs(
                &activity("merge_pull_request", "", r#"["7","Title"]"#),
                false
            )
            .pull,
            Some(7)
        );
        assert_eq!(
            activity("pull_review_dismissed", "", r#"["3","bob","nope"]"#).issue_content(),
            Some((3, "bob|nope".to_string()))
        );
        assert_eq!(activity("create_repo", "", "").issue_content(), None);
        assert_eq!(
            activity("comment_issue", "", "[not json").issue_content(),
            None
        );
    }

    #[test]
    fn a_tag_row_with_null_commits_keeps_its_head_commit() {
        // Gitea's push_tag row: `Commits` is null (a nil slice), the head commit is there.
        let sha = "4522cbcefc20728a5b72b3a86af35e608622c514";
        let tag = format!(
            r#"{{"Commits":null,"HeadCommit":{{"Sha1":"{sha}","Message":"v1"}},"CompareURL":"o/r/compare/0000000000000000000000000000000000000000...{sha}","Len":0}}"#
        );
        let a = activity("push_tag", "refs/tags/v1", &tag);
        let repo = json!({ "html_url": "http://g/o/r", "full_name": "o/r" });
        let o = RowObjects {
            repo: Some(&repo),
            ..RowObjects::default()
        };
        let hooks = from_row("http://g", &a, &o).unwrap();
        let push = &hooks[0].body;
        assert_eq!(push["head_commit"]["id"], sha, "{push}");
        assert_eq!(push["after"], sha);
        assert_eq!(push["commits"], json!([]));
        // delete_tag: both null.
        let gone = r#"{"Commits":null,"HeadCommit":null,"CompareURL":"","Len":0}"#;
        let hooks = from_row(
            "http://g",
            &activity("delete_tag", "refs/tags/v1", gone),
            &o,
        )
        .unwrap();
        assert_eq!(hooks[0].body["after"], ZERO_SHA);
        assert_eq!(hooks[0].body["head_commit"], Value::Null);
    }

    #[test]
    fn a_tag_push_asks_for_its_head_commit_s_files_and_reads_a_cut_tag_s_sha() {
        // Gitea's payload has the head commit's added/removed/modified; a tag's push lists
        // no commits, only its head.
        let sha = "4522cbcefc20728a5b72b3a86af35e608622c514";
        let tag = format!(
            r#"{{"Commits":null,"HeadCommit":{{"Sha1":"{sha}"}},"CompareURL":"o/r/compare/0000000000000000000000000000000000000000...{sha}","Len":0}}"#
        );
        let a = activity("push_tag", "refs/tags/v1", &tag);
        assert_eq!(needs(&a, true).commits, [sha]);
        assert_eq!(needs(&a, true).tag, None, "the row names the tag's sha");
        assert_eq!(pushed_sha(&a).as_deref(), Some(sha));
        // A push JSON cut to `{}` names no sha: the API's tag does.
        let cut = activity("push_tag", "refs/tags/v1", "{}");
        assert_eq!(needs(&cut, false).tag.as_deref(), Some("v1"));
        let repo = json!({ "html_url": "http://g/o/r", "full_name": "o/r" });
        let o = RowObjects {
            repo: Some(&repo),
            ref_sha: Some(sha),
            ..RowObjects::default()
        };
        let hooks = from_row("http://g", &cut, &o).unwrap();
        assert_eq!(hooks[0].body["after"], sha);
        assert_eq!(hooks[1].body["sha"], sha);
    }

    #[test]
    fn before_and_after_from_the_compare_url() {
        assert_eq!(
            compare_ends("o/r/compare/aaa...bbb"),
            (Some("aaa"), Some("bbb"))
        );
        assert_eq!(compare_ends(""), (None, None));
        assert!(is_sha("4522cbcefc20728a5b72b3a86af35e608622c514"));
        assert!(!is_sha("main"));
        assert_eq!(index_in_url("http://g/o/r/pulls/12"), Some(12));
    }

    #[test]
    fn a_push_with_a_branch_name_as_old_has_zeros_before() {
        // Gitea writes the default branch's name as OLD for some new branches.
        let push = r#"{"Commits":[{"Sha1":"4522cbcefc20728a5b72b3a86af35e608622c514"}],
            "HeadCommit":{"Sha1":"4522cbcefc20728a5b72b3a86af35e608622c514"},
            "CompareURL":"o/r/compare/main...4522cbcefc20728a5b72b3a86af35e608622c514","Len":1}"#;
        let a = activity("commit_repo", "refs/heads/x", push);
        let repo = json!({ "html_url": "http://g/o/r", "full_name": "o/r" });
        let o = RowObjects {
            repo: Some(&repo),
            ..RowObjects::default()
        };
        let hooks = from_row("http://g", &a, &o).unwrap();
        assert_eq!(hooks[0].body["before"], ZERO_SHA);
        assert_eq!(
            hooks[0].body["compare_url"],
            format!(
                "http://g/{}",
                "o/r/compare/main...4522cbcefc20728a5b72b3a86af35e608622c514"
            )
        );
    }

    /// A pull request as the API returns it after it was merged (closed, merged).
    fn merged_pull() -> Value {
        json!({ "number": 7, "state": "closed", "closed_at": "2026-03-01T00:00:00+08:00",
            "merged": true, "merged_at": "2026-03-01T00:00:00+08:00",
            "merge_commit_sha": "5555555555555555555555555555555555555555",
            "merged_by": { "login": "alice" }, "mergeable": false,
            "head": { "ref": "feature", "sha": "4444444444444444444444444444444444444444" } })
    }

    fn body_of(op: &str, o: &RowObjects<'_>) -> Value {
        let mut hooks = from_row("http://g", &activity(op, "", "7|Fix"), o).unwrap();
        assert_eq!(hooks.len(), 1, "{op}");
        hooks.remove(0).body
    }

    #[test]
    fn a_pull_request_s_payload_says_what_was_true_when_it_happened() {
        let repo = json!({ "html_url": "http://g/o/r", "full_name": "o/r" });
        let pull = merged_pull();
        let o = RowObjects {
            repo: Some(&repo),
            pull: Some(&pull),
            ..RowObjects::default()
        };
        // Read after its merge: `opened` is still open and unmerged.
        let opened = &body_of("create_pull_request", &o)["pull_request"];
        assert_eq!(opened["state"], "open", "{opened}");
        assert_eq!(opened["merged"], false);
        for k in ["closed_at", "merged_at", "merge_commit_sha", "merged_by"] {
            assert_eq!(opened[k], Value::Null, "{k}: {opened}");
        }
        assert_eq!(
            opened["head"]["sha"], "4444444444444444444444444444444444444444",
            "what the action does not tell stays as the API says"
        );
        let reopened = &body_of("reopen_pull_request", &o)["pull_request"];
        assert_eq!(
            (&reopened["state"], &reopened["merged"]),
            (&json!("open"), &json!(false))
        );
        // Closed without merging (it was merged only later).
        let closed = &body_of("close_pull_request", &o)["pull_request"];
        assert_eq!(
            (&closed["state"], &closed["merged"]),
            (&json!("closed"), &json!(false))
        );
        assert_eq!(closed["merged_at"], Value::Null);
        // Closed at the action's time when the API's closing is a later one.
        assert_eq!(closed["closed_at"], "2026-01-02T03:04:05+08:00", "{closed}");
        let merged = &body_of("merge_pull_request", &o)["pull_request"];
        assert_eq!(
            (&merged["state"], &merged["merged"]),
            (&json!("closed"), &json!(true))
        );
        assert_eq!(merged["merged_by"]["login"], "alice");
        // Read while open again: a `closed` payload is closed.
        let open_now = json!({ "number": 7, "state": "open", "closed_at": null,
            "merged": false, "merged_at": null, "merge_commit_sha": null, "merged_by": null });
        let o = RowObjects {
            pull: Some(&open_now),
            ..o
        };
        let closed = &body_of("close_pull_request", &o)["pull_request"];
        assert_eq!(closed["state"], "closed");
        assert_eq!(closed["closed_at"], "2026-01-02T03:04:05+08:00");
    }

    #[test]
    fn an_issue_s_payload_says_what_was_true_when_it_happened() {
        let repo = json!({ "html_url": "http://g/o/r", "full_name": "o/r" });
        let closed_now = json!({ "number": 7, "state": "closed",
            "closed_at": "2026-03-01T00:00:00+08:00", "title": "Crash" });
        let o = RowObjects {
            repo: Some(&repo),
            issue: Some(&closed_now),
            ..RowObjects::default()
        };
        let opened = &body_of("create_issue", &o)["issue"];
        assert_eq!(
            (&opened["state"], &opened["closed_at"]),
            (&json!("open"), &Value::Null)
        );
        assert_eq!(opened["title"], "Crash");
        let reopened = &body_of("reopen_issue", &o)["issue"];
        assert_eq!(reopened["state"], "open");
        let closed = &body_of("close_issue", &o)["issue"];
        assert_eq!(closed["state"], "closed");
        assert_eq!(closed["closed_at"], "2026-01-02T03:04:05+08:00");
        let open_now = json!({ "number": 7, "state": "open", "closed_at": null });
        let o = RowObjects {
            issue: Some(&open_now),
            ..o
        };
        let closed = &body_of("close_issue", &o)["issue"];
        assert_eq!(
            (&closed["state"], &closed["closed_at"]),
            (&json!("closed"), &json!("2026-01-02T03:04:05+08:00"))
        );
    }

    #[test]
    fn a_comment_on_a_pull_request_carries_the_pull_request() {
        // `services/webhook/notifier.go` `CreateIssueComment` (Gitea 1.23+):
        // `IssueCommentPayload.PullRequest` for a pull request, omitted for an issue.
        assert_eq!(
            needs(&activity("comment_pull", "", "7|hi"), false).pull,
            Some(7)
        );
        assert_eq!(
            needs(&activity("comment_issue", "", "7|hi"), false).pull,
            None
        );
        let repo = json!({ "html_url": "http://g/o/r", "full_name": "o/r" });
        let issue = json!({ "number": 7, "pull_request": { "merged": false } });
        let comment = json!({ "id": 9, "body": "hi" });
        let pull = merged_pull();
        let o = RowObjects {
            repo: Some(&repo),
            issue: Some(&issue),
            comment: Some(&comment),
            pull: Some(&pull),
            ..RowObjects::default()
        };
        let body = body_of("comment_pull", &o);
        assert_eq!(body["pull_request"], pull, "{body}");
        let plain = json!({ "number": 7, "pull_request": null });
        let o = RowObjects {
            issue: Some(&plain),
            pull: None,
            ..o
        };
        let body = body_of("comment_issue", &o);
        assert!(body.get("pull_request").is_none(), "{body}");
        // The comments endpoint: a comment whose `pull_request_url` names the pull request.
        let data = json!({ "comment": { "id": 9, "body": "hi", "user": { "login": "bob" },
            "pull_request_url": "http://g/o/r/pulls/7", "issue_url": "" } });
        let c = Change {
            noun: "comment",
            change: "edited",
            data: &data,
        };
        assert_eq!(needs_change(&c).pull, Some(7));
        let o = RowObjects {
            repo: Some(&repo),
            issue: Some(&issue),
            pull: Some(&pull),
            ..RowObjects::default()
        };
        let hooks = from_change(&c, &o).unwrap();
        assert_eq!(hooks[0].body["pull_request"], pull);
    }

    #[test]
    fn commit_id_is_the_commit_that_closed_the_issue() {
        // `services/issue/commit.go` `UpdateIssuesCommit`: a pushed commit's closing keyword
        // writes a `commit_ref` comment (`ref_commit_sha`) and then closes the issue with
        // `ChangeStatus(..., c.Sha1, ...)`, which `IssueChangeStatus` sends as `commit_id`.
        let sha = "6666666666666666666666666666666666666666";
        let repo = json!({ "html_url": "http://g/o/r", "full_name": "o/r" });
        let alice = json!({ "id": 3, "login": "alice" });
        let issue = json!({ "number": 7, "state": "closed" });
        let item = |id: i64, ty: &str, at: &str, sha: &str| {
            json!({ "id": id, "type": ty, "user": { "id": 3, "login": "alice" },
                "created_at": at, "ref_commit_sha": sha })
        };
        let at = "2026-01-02T03:04:05+08:00";
        let timeline = vec![
            item(40, "comment", "2026-01-02T03:00:00+08:00", ""),
            item(41, "commit_ref", at, sha),
            item(42, "close", at, ""),
        ];
        let o = RowObjects {
            repo: Some(&repo),
            sender: Some(&alice),
            issue: Some(&issue),
            timeline: &timeline,
            ..RowObjects::default()
        };
        assert_eq!(body_of("close_issue", &o)["commit_id"], sha);
        assert_eq!(
            needs(&activity("close_issue", "", "7|"), false).timeline,
            Some(7)
        );
        assert_eq!(
            needs(&activity("reopen_issue", "", "7|"), false).timeline,
            Some(7)
        );
        assert_eq!(
            needs(&activity("close_pull_request", "", "7|"), false).timeline,
            None
        );
        // Closed by hand (no reference just before the close): empty, as Gitea's.
        let by_hand = vec![
            item(41, "commit_ref", "2026-01-02T02:00:00+08:00", sha),
            item(42, "close", at, ""),
        ];
        let o2 = RowObjects {
            timeline: &by_hand,
            ..RowObjects::default()
        };
        let o2 = RowObjects {
            repo: o.repo,
            sender: o.sender,
            issue: o.issue,
            ..o2
        };
        assert_eq!(body_of("close_issue", &o2)["commit_id"], "");
        // Reopened by a commit (`reopens #7`).
        let reopened = vec![item(41, "commit_ref", at, sha), item(42, "reopen", at, "")];
        let o3 = RowObjects {
            repo: o.repo,
            sender: o.sender,
            issue: o.issue,
            timeline: &reopened,
            ..RowObjects::default()
        };
        assert_eq!(body_of("reopen_issue", &o3)["commit_id"], sha);
        assert_eq!(
            body_of("close_issue", &o3)["commit_id"],
            "",
            "no close item"
        );
        assert_eq!(body_of("create_issue", &o)["commit_id"], "");
    }
}
