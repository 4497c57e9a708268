//! Every webhook-shaped event the sourcer makes, built with `webhook::from_row` /
//! `webhook::from_change` (no NATS) from feed rows as Gitea and Forgejo write them and from
//! the repository endpoints' changes, with real Gitea objects (`tests/fixtures/webhooks/`,
//! `tests/fixtures/api/`) as what the API returned: [`every_hook`]. And [`reachable_pairs`]:
//! every `(event type, action)` pair the code can make at all, found by feeding it every word
//! its source names.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use gitea_nats_sourcer::event::hook::{self as webhook, Change, Hook, RowObjects};
use gitea_nats_sourcer::gitea::ActivityRow;
use serde_json::{Value, json};

use super::hooks::webhook_fixture;
use super::structs::WORKFLOW_JOB_ACTIONS;

/// The instance URL the fixtures' bodies name.
pub const GITEA: &str = "http://try.gitea.io";

/// A sha the fixtures' commits do not use (a branch's or tag's head read from the API).
pub const HEAD_SHA: &str = "4522cbcefc20728a5b72b3a86af35e608622c514";

/// A feed row as `/api/v1/users/{u}/activities/feeds` returns it, of the fixture's
/// repository and sender.
pub fn row(op_type: &str, ref_name: &str, content: &str, fx: &Value) -> ActivityRow {
    let v = json!({
        "id": 1, "user_id": fx["sender"]["id"], "op_type": op_type,
        "act_user_id": fx["sender"]["id"], "act_user": fx["sender"],
        "repo_id": fx["repository"]["id"], "repo": fx["repository"],
        "comment_id": 0, "comment": null, "ref_name": ref_name, "is_private": false,
        "content": content, "created": "2017-12-09T01:35:07Z",
    });
    ActivityRow::parse(serde_json::value::RawValue::from_string(v.to_string()).unwrap()).unwrap()
}

/// An API object from `tests/fixtures/api/`.
pub fn api_fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/api")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The feed content of the push in `push.json` (what the feed row of that push holds).
pub fn push_content(fx: &Value) -> String {
    let c = &fx["commits"][0];
    let commit = json!({
        "Sha1": c["id"], "Message": c["message"],
        "AuthorEmail": c["author"]["email"], "AuthorName": c["author"]["name"],
        "CommitterEmail": c["committer"]["email"], "CommitterName": c["committer"]["name"],
        "Timestamp": c["timestamp"],
    });
    json!({
        "Commits": [commit], "HeadCommit": commit,
        "CompareURL": fx["compare_url"].as_str().unwrap().trim_start_matches(&format!("{GITEA}/")),
        "Len": 1,
    })
    .to_string()
}

/// A new tag's feed row as Gitea writes it (services/repository/push.go `pushUpdates` builds
/// `NewPushCommits()` with the head commit and a compare URL from the zero SHA to the ref's
/// new value; services/feed/notifier.go `PushCommits` marshals it): `Commits` is `null` (a
/// nil slice), `Len` 0. `object` is the ref's new value (the tag object of an annotated
/// tag), `commit` the commit it points to.
pub fn tag_content(fx: &Value, object: &str, commit: &str) -> String {
    tag_content_with(fx, object, commit, Value::Null)
}

/// [`tag_content`] as Forgejo 13+ writes it: `Commits` is `[]`.
pub fn forgejo_tag_content(fx: &Value, object: &str, commit: &str) -> String {
    tag_content_with(fx, object, commit, json!([]))
}

fn tag_content_with(fx: &Value, object: &str, commit: &str, commits: Value) -> String {
    let full = fx["repository"]["full_name"].as_str().unwrap();
    let u = &fx["sender"];
    json!({
        "Commits": commits,
        "HeadCommit": {
            "Sha1": commit, "Message": "Release 1.0\n",
            "AuthorEmail": u["email"], "AuthorName": u["login"],
            "CommitterEmail": u["email"], "CommitterName": u["login"],
            "Timestamp": "2017-12-09T01:35:07Z",
        },
        "CompareURL": format!("{full}/compare/{}...{object}", webhook::ZERO_SHA),
        "Len": 0,
    })
    .to_string()
}

/// A deleted tag's feed row as Gitea writes it (`PushCommits(..., NewPushCommits())`).
pub const DELETED_TAG: &str = r#"{"Commits":null,"HeadCommit":null,"CompareURL":"","Len":0}"#;

/// The feed content of a mirror sync's new ref (`mirror_sync_push`): services/mirror/mirror_pull.go
/// `SyncPullMirror` notifies `SyncPushCommits` with `repo_module.NewPushCommits()` (no commits,
/// no head commit, no compare URL), before zeros, after the ref's commit.
pub const NEW_REF_PUSH: &str = r#"{"Commits":null,"HeadCommit":null,"CompareURL":"","Len":0}"#;

/// The content of an issue's or pull request's row: Gitea's `INDEX|TITLE` and Forgejo
/// 13+'s JSON array.
pub fn issue_contents(index: i64, text: &str) -> [(&'static str, String); 2] {
    [
        ("gitea", format!("{index}|{text}")),
        ("forgejo", json!([index.to_string(), text]).to_string()),
    ]
}

/// A branch as `GET /repos/{o}/{r}/branches` lists it (routers/api/v1/repo/branch.go
/// `ListBranches`, services/convert/convert.go `ToBranch`: `commit` is
/// `ToPayloadCommit` of the head, without files), as the simulator's `api_branches` answers
/// it; the refs kind's `head` is its `commit`.
pub fn listed_branch(fx: &Value, name: &str, sha: &str) -> Value {
    let html = fx["repository"]["html_url"].as_str().unwrap();
    let u = &fx["sender"];
    let who = json!({ "name": u["full_name"], "email": u["email"], "username": u["login"] });
    json!({
        "name": name,
        "commit": {
            "id": sha, "message": format!("Update {name}\n"),
            "url": format!("{html}/commit/{sha}"),
            "author": who, "committer": who, "verification": null,
            "timestamp": "2017-12-09T01:35:07Z",
            "added": null, "removed": null, "modified": null,
        },
        "protected": false, "required_approvals": 0, "enable_status_check": false,
        "status_check_contexts": [], "user_can_push": true, "user_can_merge": true,
        "effective_branch_protection_name": "",
    })
}

/// A tag as `GET /repos/{o}/{r}/tags` lists it (services/convert/convert.go `ToTag`: `id` the
/// ref's value, the tag object of an annotated tag; `commit` the commit it points to), as the
/// simulator's `api_tags` answers it; the refs kind's `head` is the whole object.
pub fn listed_tag(fx: &Value, name: &str, object: &str, commit: &str) -> Value {
    let html = fx["repository"]["html_url"].as_str().unwrap();
    let api = html.replacen(GITEA, &format!("{GITEA}/api/v1/repos"), 1);
    json!({
        "name": name, "message": "", "id": object,
        "commit": {
            "url": format!("{api}/git/commits/{commit}"), "sha": commit,
            "created": "2017-12-09T01:35:07Z",
        },
        "zipball_url": format!("{html}/archive/{name}.zip"),
        "tarball_url": format!("{html}/archive/{name}.tar.gz"),
    })
}

/// A job as `/repos/{o}/{r}/actions/runs/{run}/jobs` lists it (services/convert/convert.go
/// `ToActionWorkflowJob`): `conclusion` only once completed, `runner_id` / `runner_name`
/// only once a runner took it (`omitempty`).
pub fn listed_job(status: &str) -> Value {
    let mut job = json!({
        "id": 11, "url": "http://try.gitea.io/api/v1/repos/gogits/hello-world/actions/jobs/11",
        "html_url": "http://try.gitea.io/gogits/hello-world/actions/runs/7/jobs/11",
        "run_id": 7, "run_url": "http://try.gitea.io/api/v1/repos/gogits/hello-world/actions/runs/7",
        "name": "build", "labels": ["ubuntu-latest"], "run_attempt": 1, "head_sha": HEAD_SHA,
        "head_branch": "master", "status": status, "steps": [],
        "created_at": "2017-12-09T01:35:07Z", "started_at": "2017-12-09T01:35:09Z",
        "completed_at": "0001-01-01T00:00:00Z",
    });
    if matches!(status, "in_progress" | "completed") {
        job["runner_id"] = json!(1);
        job["runner_name"] = json!("runner-1");
    }
    if status == "completed" {
        job["conclusion"] = json!("success");
        job["completed_at"] = json!("2017-12-09T01:36:07Z");
    }
    job
}

/// One hook the sourcer made, with what it was made of.
#[derive(Debug, Clone)]
pub struct Made {
    /// e.g. `row push_tag (forgejo)`, `change pull_request labeled`.
    pub label: String,
    pub hook: Hook,
}

/// `action` of a hook's body, `""` for the payloads without one (push, create, delete,
/// status).
pub fn action_of(hook: &Hook) -> String {
    hook.body["action"].as_str().unwrap_or("").to_string()
}

/// The `(event type, action)` pairs of hooks.
pub fn pairs<'a>(hooks: impl IntoIterator<Item = &'a Hook>) -> BTreeSet<(String, String)> {
    hooks
        .into_iter()
        .map(|h| (h.event_type.to_string(), action_of(h)))
        .collect()
}

/// A workflow as `/repos/{o}/{r}/actions/workflows/{id}` answers it.
pub fn workflow() -> Value {
    json!({
        "id": "ci.yml", "name": "CI", "path": ".gitea/workflows/ci.yml", "state": "active",
        "created_at": "2026-11-28T16:25:31Z", "updated_at": "2026-11-28T16:25:31Z",
        "url": "http://try.gitea.io/api/v1/repos/gitea/webhooks/actions/workflows/ci.yml",
        "html_url": "http://try.gitea.io/gitea/webhooks/src/branch/master/.gitea/workflows/ci.yml",
        "badge_url": "http://try.gitea.io/gitea/webhooks/actions/workflows/ci.yml/badge.svg?branch=master",
        "deleted_at": "0001-01-01T00:00:00Z",
    })
}

/// The Gitea objects of every scenario: the fixtures' repository, sender, issues, pull
/// request and comments, and the API's release, status, commit and organization.
pub struct World {
    pub push: Value,
    pub pull: Value,
    pub issue: Value,
    pub issue_comment: Value,
    pub pull_comment: Value,
    pub release: Value,
    pub status: Value,
    pub commit: Value,
    pub organization: Value,
    pub workflow: Value,
    pub commits: HashMap<String, Value>,
}

impl World {
    pub fn new() -> World {
        let push = webhook_fixture("push.json");
        let commit = api_fixture("commit.json");
        let mut commits = HashMap::new();
        let after = push["after"].as_str().unwrap().to_string();
        commits.insert(
            after.clone(),
            json!({ "sha": after, "files": [{ "filename": "README.md", "status": "modified" }] }),
        );
        commits.insert(HEAD_SHA.to_string(), commit.clone());
        let mut release = api_fixture("release.json");
        release["author"] = push["sender"].clone();
        World {
            push,
            pull: webhook_fixture("pull_request_synchronized.json"),
            issue: webhook_fixture("issues_opened.json"),
            issue_comment: webhook_fixture("issue_comment_created.json"),
            pull_comment: webhook_fixture("pull_request_comment_created.json"),
            release,
            status: api_fixture("status.json"),
            commit,
            organization: api_fixture("organization.json"),
            workflow: workflow(),
            commits,
        }
    }

    /// Every object a row's hooks can ask for, of fixture `fx`'s repository and sender.
    pub fn objects<'a>(&'a self, fx: &'a Value, open_pulls: &'a [Value]) -> RowObjects<'a> {
        RowObjects {
            repo: Some(&fx["repository"]),
            sender: Some(&fx["sender"]),
            pull: Some(&self.pull["pull_request"]),
            release: Some(&self.release),
            ref_sha: Some(HEAD_SHA),
            deleted_sha: Some(HEAD_SHA),
            open_pulls,
            commits: Some(&self.commits),
            workflow: Some(&self.workflow),
            organization: Some(&self.organization),
            ..RowObjects::default()
        }
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

fn from_row(out: &mut Vec<Made>, label: String, r: &ActivityRow, o: &RowObjects<'_>) {
    let hooks = webhook::from_row(GITEA, &r.activity, o).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(!hooks.is_empty(), "{label}: no hook");
    out.extend(hooks.into_iter().map(|hook| Made {
        label: label.clone(),
        hook,
    }));
}

fn from_change(out: &mut Vec<Made>, label: String, c: &Change<'_>, o: &RowObjects<'_>) {
    let hooks = webhook::from_change(c, o).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(!hooks.is_empty(), "{label}: no hook");
    out.extend(hooks.into_iter().map(|hook| Made {
        label: label.clone(),
        hook,
    }));
}

/// Every kind of hook the sourcer makes, each from a row as Gitea (and, where Forgejo
/// writes it differently, Forgejo) writes it, or from a repository endpoint's change.
pub fn every_hook(w: &World) -> Vec<Made> {
    let mut out = Vec::new();
    let fx = &w.push;
    let none: &[Value] = &[];
    // Pushes: to a branch (with the commit's files), to an open pull request's head
    // (`pull_request_sync` too), a push that created its branch, a mirror's.
    let pr = &w.pull;
    let head = pr["pull_request"]["head"]["ref"].as_str().unwrap();
    let pulls = [pr["pull_request"].clone()];
    let head_ref = format!("refs/heads/{head}");
    for (label, op, r#ref, new_ref, open) in [
        ("push", "commit_repo", "refs/heads/master", false, none),
        (
            "push to a pull request's head",
            "commit_repo",
            &head_ref[..],
            false,
            &pulls[..],
        ),
        (
            "push creating its branch",
            "commit_repo",
            "refs/heads/feature",
            true,
            none,
        ),
        (
            "mirror push",
            "mirror_sync_push",
            "refs/heads/master",
            false,
            none,
        ),
    ] {
        let o = RowObjects {
            new_ref,
            ..w.objects(if open.is_empty() { fx } else { pr }, open)
        };
        let r = row(op, r#ref, &push_content(fx), fx);
        from_row(&mut out, format!("row {op}: {label}"), &r, &o);
    }
    // A new branch (Gitea's empty `commit_repo` row), a deleted one.
    for (op, r#ref) in [
        ("commit_repo", "refs/heads/feature"),
        ("delete_branch", "refs/heads/feature"),
    ] {
        let r = row(op, r#ref, "", fx);
        from_row(
            &mut out,
            format!("row {op}: branch"),
            &r,
            &w.objects(fx, none),
        );
    }
    // Tags: new (annotated: the ref names the tag object; lightweight), Gitea's row with
    // `Commits: null`, Forgejo's with `[]`; deleted.
    let tag_object = "599d25c67b05717269f50ac082b34f176d085179";
    for (label, content) in [
        ("annotated (gitea)", tag_content(fx, tag_object, HEAD_SHA)),
        ("lightweight (gitea)", tag_content(fx, HEAD_SHA, HEAD_SHA)),
        (
            "annotated (forgejo)",
            forgejo_tag_content(fx, tag_object, HEAD_SHA),
        ),
        ("cut to {}", "{}".to_string()),
        ("empty (create alone)", String::new()),
    ] {
        let r = row("push_tag", "refs/tags/v1.0.0", &content, fx);
        from_row(
            &mut out,
            format!("row push_tag: {label}"),
            &r,
            &w.objects(fx, none),
        );
    }
    let r = row("delete_tag", "refs/tags/v1.0.0", DELETED_TAG, fx);
    from_row(&mut out, "row delete_tag".into(), &r, &w.objects(fx, none));
    // Issues, pull requests, reviews, comments: both content formats.
    let issue_fx = &w.issue;
    for (format, content) in issue_contents(1, "Looks good") {
        for op in ["create_issue", "close_issue", "reopen_issue"] {
            let o = RowObjects {
                issue: Some(&issue_fx["issue"]),
                ..w.objects(issue_fx, none)
            };
            let r = row(op, "", &content, issue_fx);
            from_row(&mut out, format!("row {op} ({format})"), &r, &o);
        }
        for op in [
            "create_pull_request",
            "close_pull_request",
            "reopen_pull_request",
            "merge_pull_request",
            "auto_merge_pull_request",
            "approve_pull_request",
            "reject_pull_request",
        ] {
            let r = row(op, "", &content, pr);
            from_row(
                &mut out,
                format!("row {op} ({format})"),
                &r,
                &w.objects(pr, none),
            );
        }
        for (op, cfx) in [
            ("comment_issue", &w.issue_comment),
            ("comment_pull", &w.pull_comment),
        ] {
            let o = RowObjects {
                issue: Some(&cfx["issue"]),
                comment: Some(&cfx["comment"]),
                ..w.objects(cfx, none)
            };
            let r = row(op, "", &content, cfx);
            from_row(&mut out, format!("row {op} ({format})"), &r, &o);
        }
        // A review of type comment: its summary's `comment_pull` row, whose timeline item
        // is a `review` (services/webhook/notifier.go `PullRequestReview`).
        let mut r = row("comment_pull", "", &content, &w.pull_comment);
        r.activity.comment_id = 77;
        let timeline = [json!({ "id": 77, "type": "review", "body": "Looks close." })];
        let o = RowObjects {
            issue: Some(&w.pull_comment["issue"]),
            comment: Some(&w.pull_comment["comment"]),
            timeline: &timeline,
            ..w.objects(&w.pull_comment, none)
        };
        from_row(
            &mut out,
            format!("row comment_pull review ({format})"),
            &r,
            &o,
        );
    }
    let r = row("publish_release", "refs/tags/v1.0.0", "v1.0.0", fx);
    from_row(
        &mut out,
        "row publish_release".into(),
        &r,
        &w.objects(fx, none),
    );
    let r = row("create_repo", "", "", fx);
    from_row(&mut out, "row create_repo".into(), &r, &w.objects(fx, none));
    // A mirror sync (services/mirror/mirror_pull.go `SyncPullMirror`): a new ref's push
    // (`NewPushCommits()`: no commits, no head commit) and create, a removed ref's delete;
    // the ref's commit read from the API (`ref_sha`).
    for (op, r#ref, content) in [
        ("mirror_sync_push", "refs/heads/feature", NEW_REF_PUSH),
        ("mirror_sync_push", "refs/tags/v2.0.0", NEW_REF_PUSH),
        ("mirror_sync_create", "refs/heads/feature", ""),
        ("mirror_sync_create", "refs/tags/v2.0.0", ""),
        ("mirror_sync_delete", "refs/heads/old", ""),
        ("mirror_sync_delete", "refs/tags/v1.0.0", ""),
    ] {
        let r = row(op, r#ref, content, fx);
        from_row(
            &mut out,
            format!("row {op}: {}", r#ref),
            &r,
            &w.objects(fx, none),
        );
    }

    // The repository endpoints.
    let sender = &fx["sender"];
    for (noun, fx) in [("issue", &w.issue), ("pull_request", &w.pull)] {
        let mut issue = if noun == "issue" {
            fx["issue"].clone()
        } else {
            json!({ "number": fx["number"], "pull_request": { "merged": false } })
        };
        for (change, timeline, labels) in [
            ("labeled", json!({ "type": "label", "body": "1" }), true),
            ("unlabeled", json!({ "type": "label", "body": "" }), true),
            ("unlabeled", json!({ "type": "label", "body": "" }), false),
            ("assigned", json!({ "type": "assignees" }), false),
            (
                "unassigned",
                json!({ "type": "assignees", "removed_assignee": true }),
                false,
            ),
            ("milestoned", json!({ "type": "milestone" }), false),
            (
                "demilestoned",
                json!({ "type": "milestone", "milestone": null }),
                false,
            ),
            (
                "review_requested",
                json!({ "type": "review_request", "assignee": sender }),
                false,
            ),
            (
                "review_request_removed",
                json!({ "type": "review_request", "assignee": sender }),
                false,
            ),
            (
                "title_edited",
                json!({ "type": "change_title", "old_title": "Old" }),
                false,
            ),
            ("edited", Value::Null, false),
        ] {
            if noun == "issue" && change.starts_with("review_request") {
                continue;
            }
            issue["labels"] = if labels {
                json!([{ "id": 1, "name": "bug" }])
            } else {
                json!([])
            };
            let mut timeline = timeline;
            if !timeline.is_null() {
                timeline["user"] = sender.clone();
            }
            let data = json!({ "issue": issue, "timeline": timeline });
            let c = Change {
                noun,
                change,
                data: &data,
            };
            let label = format!(
                "change {noun} {change}{}",
                if labels { " (labels left)" } else { "" }
            );
            from_change(&mut out, label, &c, &w.objects(fx, none));
        }
    }
    for (cfx, on) in [
        (&w.issue_comment, "issue"),
        (&w.pull_comment, "pull request"),
    ] {
        for change in ["created", "edited"] {
            let data = json!({ "comment": cfx["comment"] });
            let c = Change {
                noun: "comment",
                change,
                data: &data,
            };
            let o = RowObjects {
                issue: Some(&cfx["issue"]),
                ..w.objects(cfx, none)
            };
            from_change(
                &mut out,
                format!("change comment {change} on an {on}"),
                &c,
                &o,
            );
        }
    }
    for change in ["published", "edited", "deleted"] {
        let data = json!({ "release": w.release });
        let c = Change {
            noun: "release",
            change,
            data: &data,
        };
        from_change(
            &mut out,
            format!("change release {change}"),
            &c,
            &w.objects(fx, none),
        );
    }
    let data = json!({ "sha": HEAD_SHA, "branch": "master", "status": w.status });
    let c = Change {
        noun: "status",
        change: "success",
        data: &data,
    };
    from_change(&mut out, "change status".into(), &c, &w.objects(fx, none));
    for (status, org) in [
        ("waiting", true),
        ("running", true),
        ("completed", true),
        ("completed", false),
    ] {
        let data = json!({ "run": { "id": 7, "path": ".gitea/workflows/ci.yml@refs/heads/master",
            "status": status, "conclusion": "success", "trigger_actor": sender } });
        let c = Change {
            noun: "actions_run",
            change: "success",
            data: &data,
        };
        let o = RowObjects {
            organization: if org { Some(&w.organization) } else { None },
            ..w.objects(fx, none)
        };
        let label = format!(
            "change actions_run {status}{}",
            if org { " (org)" } else { "" }
        );
        from_change(&mut out, label, &c, &o);
    }
    // A job in each status the jobs endpoint answers, of an organization's repository and
    // of a user's.
    for status in WORKFLOW_JOB_ACTIONS {
        for org in [true, false] {
            let data = json!({ "job": listed_job(status),
                "run": { "id": 7, "path": ".gitea/workflows/ci.yml@refs/heads/master",
                         "status": "in_progress", "trigger_actor": sender } });
            let c = Change {
                noun: "actions_job",
                change: status,
                data: &data,
            };
            let o = RowObjects {
                organization: if org { Some(&w.organization) } else { None },
                ..w.objects(fx, none)
            };
            let label = format!(
                "change actions_job {status}{}",
                if org { " (org)" } else { "" }
            );
            from_change(&mut out, label, &c, &o);
        }
    }
    // The refs kind: a ref that moved, appeared or went away between two listings, its
    // `head` as the listing shows it (a branch's `commit`, a tag's whole object; none for a
    // deleted ref). The annotated tag's ref names its tag object.
    let old = fx["before"].as_str().unwrap();
    let tag_object = "599d25c67b05717269f50ac082b34f176d085179";
    let branch = listed_branch(fx, "master", HEAD_SHA);
    let tag = listed_tag(fx, "v1.0.0", tag_object, HEAD_SHA);
    for (label, r#ref, before, after, head) in [
        (
            "branch pushed",
            "refs/heads/master",
            old,
            HEAD_SHA,
            &branch["commit"],
        ),
        (
            "branch created",
            "refs/heads/feature",
            webhook::ZERO_SHA,
            HEAD_SHA,
            &branch["commit"],
        ),
        (
            "branch deleted",
            "refs/heads/feature",
            HEAD_SHA,
            webhook::ZERO_SHA,
            &Value::Null,
        ),
        (
            "tag created",
            "refs/tags/v1.0.0",
            webhook::ZERO_SHA,
            tag_object,
            &tag,
        ),
        (
            "tag deleted",
            "refs/tags/v1.0.0",
            tag_object,
            webhook::ZERO_SHA,
            &Value::Null,
        ),
    ] {
        let change = if after == webhook::ZERO_SHA {
            "deleted"
        } else if before == webhook::ZERO_SHA {
            "created"
        } else {
            "pushed"
        };
        let data = json!({ "ref": r#ref, "before": before, "after": after, "head": head,
            "repository": fx["repository"], "seen_before": 1_512_783_000 });
        let c = Change {
            noun: "ref",
            change,
            data: &data,
        };
        from_change(
            &mut out,
            format!("change ref {label}"),
            &c,
            &w.objects(fx, none),
        );
    }
    out
}

/// Every lowercase word (`[a-z_]+`) the non-test source of `src/event/hook/payload.rs` names
/// in a string literal: the op types, nouns, changes and run statuses it matches on
/// include them all.
pub fn source_words() -> BTreeSet<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/event/hook/payload.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_string)
        .collect()
}

/// Every `(event type, action)` pair `from_row` and `from_change` make when fed every word
/// of [`source_words`] as op type, noun, change and run status, with every object there:
/// what the code can make at all (a new event or action the source names is among them).
pub fn reachable_pairs(w: &World) -> BTreeSet<(String, String)> {
    let words = source_words();
    let mut found = BTreeSet::new();
    let pr = &w.pull;
    let head = pr["pull_request"]["head"]["ref"].as_str().unwrap();
    let pulls = [pr["pull_request"].clone()];
    let branch = format!("refs/heads/{head}");
    let contents: Vec<String> = [
        push_content(&w.push),
        tag_content(&w.push, HEAD_SHA, HEAD_SHA),
        forgejo_tag_content(&w.push, HEAD_SHA, HEAD_SHA),
        DELETED_TAG.to_string(),
        String::new(),
    ]
    .into_iter()
    .chain(issue_contents(1, "t").into_iter().map(|(_, c)| c))
    .collect();
    let issues = [w.issue["issue"].clone(), w.pull_comment["issue"].clone()];
    for op in &words {
        for r#ref in [&branch[..], "refs/tags/v1"] {
            for content in &contents {
                let r = row(op, r#ref, content, pr);
                for issue in &issues {
                    for new_ref in [false, true] {
                        let o = RowObjects {
                            issue: Some(issue),
                            comment: Some(&w.issue_comment["comment"]),
                            new_ref,
                            ..w.objects(pr, &pulls)
                        };
                        if let Ok(hooks) = webhook::from_row(GITEA, &r.activity, &o) {
                            found.extend(pairs(&hooks));
                        }
                    }
                }
            }
        }
    }
    // The row's comment as its timeline item, of every type the source names (a review's
    // summary is told by its `review` item).
    let content = issue_contents(1, "t")
        .into_iter()
        .map(|(_, c)| c)
        .next()
        .unwrap_or_default();
    for op in &words {
        let mut r = row(op, "", &content, pr);
        r.activity.comment_id = 7;
        for ty in &words {
            let timeline = [json!({ "id": 7, "type": ty, "body": "b" })];
            let o = RowObjects {
                issue: Some(&issues[1]),
                comment: Some(&w.issue_comment["comment"]),
                timeline: &timeline,
                ..w.objects(pr, &pulls)
            };
            if let Ok(hooks) = webhook::from_row(GITEA, &r.activity, &o) {
                found.extend(pairs(&hooks));
            }
        }
    }
    let sender = &w.push["sender"];
    for change in &words {
        for (issue, labels) in [(&issues[0], json!([])), (&issues[1], json!([{ "id": 1 }]))] {
            let mut issue = issue.clone();
            issue["labels"] = labels;
            let mut comment = w.issue_comment["comment"].clone();
            if !issue["pull_request"].is_null() {
                comment["pull_request_url"] = json!("http://g/o/r/pulls/1");
            }
            let data = json!({
                "issue": issue,
                "timeline": { "type": change, "user": sender, "assignee": sender },
                "comment": comment,
                "release": w.release,
                "sha": HEAD_SHA, "status": w.status,
                "run": { "id": 7, "path": "ci.yml@refs/heads/master", "status": change,
                         "trigger_actor": sender },
                "job": listed_job("completed"),
            });
            let o = RowObjects {
                issue: Some(&issue),
                ..w.objects(pr, &pulls)
            };
            for noun in &words {
                let c = Change {
                    noun,
                    change,
                    data: &data,
                };
                if let Ok(hooks) = webhook::from_change(&c, &o) {
                    found.extend(pairs(&hooks));
                }
            }
        }
    }
    // A job's hook takes its action from the job's status as the API answers it (checked
    // by the golden test): it reaches what the API can answer.
    for status in WORKFLOW_JOB_ACTIONS {
        let data = json!({ "job": listed_job(status), "run": { "trigger_actor": sender } });
        for noun in &words {
            let c = Change {
                noun,
                change: status,
                data: &data,
            };
            if let Ok(hooks) = webhook::from_change(&c, &w.objects(pr, &pulls)) {
                found.extend(pairs(&hooks));
            }
        }
    }
    found
}
