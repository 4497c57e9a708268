//! Golden comparisons: every payload the sourcer builds has the shape of the real Gitea
//! webhook body of the same event (`tests/fixtures/webhooks/`, a copy of
//! `shared/gitea/fixtures/webhooks/`): every key of Gitea's body, with its JSON type,
//! recursively. The Gitea objects a payload embeds are taken from that same body (as the
//! API would return them), so what is compared is what the sourcer adds and where it puts
//! each object; `tests/webhooks.rs` compares the payloads built from the simulator's API.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use gitea_nats_sourcer::event::hook::{self as webhook, Change, Hook, RowObjects};
use serde_json::{Value, json};
use support::bodies::{
    self, DELETED_TAG, GITEA, World, api_fixture, every_hook, push_content, row, tag_content,
};
use support::hooks::{assert_shape, shape_diff, webhook_fixture};
use support::structs::{
    ACTION_WORKFLOW, COMMIT_STATUS_PAYLOAD, EVENTS, PAYLOAD_COMMIT, PULL_REQUEST_PAYLOAD,
    REVIEW_PAYLOAD, WORKFLOW_RUN_PAYLOAD, hook_diff, struct_diff,
};

/// `secret`: old Gitea versions put the hook's secret in the body (removed since, and a
/// secret never goes into an event).
const SKIP: &[&str] = &["secret"];

fn objects(fx: &Value) -> RowObjects<'_> {
    RowObjects {
        repo: Some(&fx["repository"]),
        sender: Some(&fx["sender"]),
        ..RowObjects::default()
    }
}

fn only(hooks: Vec<Hook>, event_type: &str) -> Value {
    let mut found: Vec<Value> = hooks
        .into_iter()
        .filter(|h| h.event_type == event_type)
        .map(|h| h.body)
        .collect();
    assert_eq!(found.len(), 1, "one {event_type} hook");
    found.remove(0)
}

#[test]
fn push_has_gitea_s_shape_and_its_before_after_and_compare_url() {
    let fx = webhook_fixture("push.json");
    let r = row("commit_repo", "refs/heads/master", &push_content(&fx), &fx);
    let mut files = HashMap::new();
    let sha = fx["after"].as_str().unwrap().to_string();
    files.insert(
        sha.clone(),
        json!({ "sha": sha, "files": [{ "filename": "README.md", "status": "modified" }] }),
    );
    let o = RowObjects {
        commits: Some(&files),
        ..objects(&fx)
    };
    let push = only(webhook::from_row(GITEA, &r.activity, &o).unwrap(), "push");
    assert_shape("push.json", &push, SKIP, false);
    for k in ["ref", "before", "after", "compare_url"] {
        assert_eq!(push[k], fx[k], "{k}");
    }
    assert_eq!(push["total_commits"], 1);
    assert_eq!(push["commits"][0]["url"], fx["commits"][0]["url"]);
    assert_eq!(push["commits"][0]["modified"], json!(["README.md"]));
    assert_eq!(push["head_commit"]["id"], fx["after"]);
    assert_eq!(push["pusher"]["login"], "unknwon");
    // The pusher's own email names its username; Gitea looks every email up.
    assert_eq!(push["commits"][0]["author"]["username"], "unknwon");
}

#[test]
fn a_push_that_created_its_branch_has_zeros_before() {
    let fx = webhook_fixture("push.json");
    let r = row("commit_repo", "refs/heads/master", &push_content(&fx), &fx);
    let o = RowObjects {
        new_ref: true,
        ..objects(&fx)
    };
    let push = only(webhook::from_row(GITEA, &r.activity, &o).unwrap(), "push");
    assert_eq!(push["before"], webhook::ZERO_SHA);
    assert_eq!(push["after"], fx["after"]);
}

#[test]
fn a_push_to_an_open_pull_request_s_head_is_also_pull_request_sync() {
    let push_fx = webhook_fixture("push.json");
    let fx = webhook_fixture("pull_request_synchronized.json");
    let head = fx["pull_request"]["head"]["ref"].as_str().unwrap();
    let r = row(
        "commit_repo",
        &format!("refs/heads/{head}"),
        &push_content(&push_fx),
        &fx,
    );
    let pulls = vec![fx["pull_request"].clone()];
    let o = RowObjects {
        open_pulls: &pulls,
        ..objects(&fx)
    };
    let hooks = webhook::from_row(GITEA, &r.activity, &o).unwrap();
    assert_eq!(
        hooks.iter().map(|h| h.event_type).collect::<Vec<_>>(),
        ["push", "pull_request_sync"]
    );
    let sync = only(hooks, "pull_request_sync");
    assert_shape("pull_request_synchronized.json", &sync, SKIP, false);
    assert_eq!(sync["action"], "synchronized");
    assert_pull_request_payload("pull_request_sync", &sync);
    // A push to another branch is not.
    let other = row(
        "commit_repo",
        "refs/heads/other",
        &push_content(&push_fx),
        &fx,
    );
    let hooks = webhook::from_row(GITEA, &other.activity, &o).unwrap();
    assert_eq!(hooks.len(), 1);
}

#[test]
fn pull_request_sync_carries_the_push_s_before_and_after() {
    // Gitea 1.27+ `PullRequestPayload` has `before`/`after` (`omitempty`): the head
    // branch's old and new commit, the same pair as the push that synchronized it.
    let push_fx = webhook_fixture("push.json");
    let fx = webhook_fixture("pull_request_synchronized.json");
    let head = fx["pull_request"]["head"]["ref"].as_str().unwrap();
    let r = row(
        "commit_repo",
        &format!("refs/heads/{head}"),
        &push_content(&push_fx),
        &fx,
    );
    let pulls = vec![fx["pull_request"].clone()];
    let o = RowObjects {
        open_pulls: &pulls,
        ..objects(&fx)
    };
    let hooks = webhook::from_row(GITEA, &r.activity, &o).unwrap();
    let push = only(hooks.clone(), "push");
    let sync = only(hooks, "pull_request_sync");
    assert_eq!(sync["before"], push_fx["before"], "{sync:#}");
    assert_eq!(sync["after"], push_fx["after"], "{sync:#}");
    assert_eq!(
        (&sync["before"], &sync["after"]),
        (&push["before"], &push["after"])
    );
    // A branch created by the push: zeros, as the push's.
    let o = RowObjects { new_ref: true, ..o };
    let sync = only(
        webhook::from_row(GITEA, &r.activity, &o).unwrap(),
        "pull_request_sync",
    );
    assert_eq!(sync["before"], webhook::ZERO_SHA);
    // Other pull request payloads have neither key.
    let o = RowObjects {
        pull: Some(&fx["pull_request"]),
        ..objects(&fx)
    };
    let opened = only(
        webhook::from_row(
            GITEA,
            &row("create_pull_request", "", "1|t", &fx).activity,
            &o,
        )
        .unwrap(),
        "pull_request",
    );
    assert!(opened.get("before").is_none() && opened.get("after").is_none());
}

/// `default_branch`: the real bodies of `branch_create.json` and `tag_create.json` are from an
/// old Gitea whose `CreatePayload` still had it (Gogs'); today's `modules/structs/hook.go`
/// `CreatePayload` has only `sha`, `ref`, `ref_type`, `repository` and `sender`.
const CREATE_SKIP: &[&str] = &["secret", "default_branch"];

#[test]
fn create_and_delete_of_branches() {
    // Gitea's rows for a branch: an empty `commit_repo` row for a new one
    // (services/feed/notifier.go `CreateRef`), an empty `delete_branch` row for a deleted one
    // (`DeleteRef`).
    for (name, op, r#ref, ty) in [
        (
            "branch_create.json",
            "commit_repo",
            "refs/heads/feature",
            "create",
        ),
        (
            "branch_delete.json",
            "delete_branch",
            "refs/heads/feature",
            "delete",
        ),
    ] {
        let fx = webhook_fixture(name);
        let r = row(op, r#ref, "", &fx);
        let sha = "599d25c67b05717269f50ac082b34f176d085179".to_string();
        let o = RowObjects {
            ref_sha: Some(&sha),
            ..objects(&fx)
        };
        let hooks = webhook::from_row(GITEA, &r.activity, &o).unwrap();
        // A deleted branch is `delete` alone (services/repository/push.go sends no push).
        assert_eq!(
            hooks.iter().map(|h| h.event_type).collect::<Vec<_>>(),
            [ty],
            "{name}"
        );
        let body = only(hooks, ty);
        assert_shape(name, &body, CREATE_SKIP, false);
        assert_eq!(body["ref"], fx["ref"], "{name}");
        assert_eq!(body["ref_type"], fx["ref_type"], "{name}");
    }
}

fn event_types(hooks: &[Hook]) -> Vec<&'static str> {
    hooks.iter().map(|h| h.event_type).collect()
}

#[test]
fn a_new_tag_is_push_and_create_as_gitea_sends_them() {
    // services/repository/push.go: `PushCommits` (before zeros, after the ref's new value,
    // the head commit, no commits) then `CreateRef(..., opts.NewCommitID)`.
    let fx = webhook_fixture("tag_create.json");
    let full = fx["repository"]["full_name"].as_str().unwrap();
    let html = fx["repository"]["html_url"].as_str().unwrap();
    let commit = "4522cbcefc20728a5b72b3a86af35e608622c514";
    // An annotated tag (the ref names the tag object) and a lightweight one (the commit).
    for object in [fx["sha"].as_str().unwrap(), commit] {
        let r = row(
            "push_tag",
            "refs/tags/v1.0.0",
            &tag_content(&fx, object, commit),
            &fx,
        );
        // Nothing read from the API: the row names the tag's sha.
        let hooks = webhook::from_row(GITEA, &r.activity, &objects(&fx)).unwrap();
        assert_eq!(event_types(&hooks), ["push", "create"], "{object}");
        let push = only(hooks.clone(), "push");
        assert_eq!(push["ref"], "refs/tags/v1.0.0");
        assert_eq!(push["before"], webhook::ZERO_SHA);
        assert_eq!(push["after"], object);
        assert_eq!(
            push["compare_url"],
            format!("{GITEA}/{full}/compare/{}...{object}", webhook::ZERO_SHA)
        );
        assert_eq!(push["commits"], json!([]));
        assert_eq!(push["total_commits"], 0);
        assert_eq!(push["head_commit"]["id"], commit);
        assert_eq!(
            push["head_commit"]["url"],
            format!("{html}/commit/{commit}")
        );
        assert_eq!(push["head_commit"]["message"], "Release 1.0\n");
        let create = only(hooks, "create");
        assert_shape("tag_create.json", &create, CREATE_SKIP, false);
        assert_eq!(create["ref"], "v1.0.0");
        assert_eq!(create["ref_type"], "tag");
        assert_eq!(create["sha"], object);
    }
}

#[test]
fn a_deleted_tag_is_push_and_delete_as_gitea_sends_them() {
    // services/repository/push.go: `PushCommits` (before the old sha, after zeros, nothing
    // else: `compare_url` is `setting.AppURL + ""`, the instance's URL) then `DeleteRef`.
    let fx = webhook_fixture("tag_delete.json");
    let r = row("delete_tag", "refs/tags/v1.0.0", DELETED_TAG, &fx);
    let old = "4522cbcefc20728a5b72b3a86af35e608622c514";
    for (known, before) in [(Some(old), old), (None, "")] {
        let o = RowObjects {
            deleted_sha: known,
            ..objects(&fx)
        };
        let hooks = webhook::from_row(GITEA, &r.activity, &o).unwrap();
        assert_eq!(event_types(&hooks), ["push", "delete"]);
        let push = only(hooks.clone(), "push");
        assert_eq!(push["ref"], "refs/tags/v1.0.0");
        // The row does not carry the old sha: known only from the tag's own row.
        assert_eq!(push["before"], before);
        assert_eq!(push["after"], webhook::ZERO_SHA);
        assert_eq!(push["compare_url"], format!("{GITEA}/"));
        assert_eq!(push["commits"], json!([]));
        assert_eq!(push["total_commits"], 0);
        assert_eq!(push["head_commit"], Value::Null);
        let delete = only(hooks, "delete");
        assert_shape("tag_delete.json", &delete, SKIP, false);
        assert_eq!(delete["ref"], "v1.0.0");
        assert_eq!(delete["ref_type"], "tag");
        assert_eq!(delete["pusher_type"], "user");
    }
}

#[test]
fn every_event_has_the_keys_and_json_types_of_gitea_s_struct() {
    let w = World::new();
    let made = every_hook(&w);
    let mut diffs = Vec::new();
    for m in &made {
        diffs.extend(hook_diff(&m.label, &m.hook));
    }
    assert!(diffs.is_empty(), "{diffs:#?}");
    // A job's action is its status as the API answers it (what `reachable_pairs` counts on).
    for m in made.iter().filter(|m| m.hook.event_type == "workflow_job") {
        let b = &m.hook.body;
        assert_eq!(b["action"], b["workflow_job"]["status"], "{}", m.label);
    }
    // Every pair of the tables was made and checked (no table is stale, and the scenarios
    // miss none)...
    let checked = bodies::pairs(made.iter().map(|m| &m.hook));
    let tables: BTreeSet<(String, String)> = EVENTS
        .iter()
        .flat_map(|(t, actions, _)| actions.iter().map(|a| (t.to_string(), a.to_string())))
        .collect();
    assert_eq!(
        checked, tables,
        "the pairs made and the pairs of the tables"
    );
    // ...and they are every pair the code can make at all: a new event or action without
    // a table (or a scenario) fails here.
    let reachable = bodies::reachable_pairs(&w);
    let unchecked: Vec<_> = reachable.difference(&checked).collect();
    assert!(
        unchecked.is_empty(),
        "made by the code, not compared with a Gitea struct: {unchecked:?}"
    );
    assert_eq!(reachable, checked, "what the source's words reach");
}

#[test]
fn the_struct_comparison_fails_on_a_key_too_many_or_missing_or_a_changed_type() {
    let w = World::new();
    let made = every_hook(&w);
    let find = |label: &str, ty: &str| {
        made.iter()
            .find(|m| m.label == label && m.hook.event_type == ty)
            .map(|m| m.hook.clone())
            .unwrap()
    };
    let push = find("row commit_repo: push", "push");
    assert!(hook_diff("push", &push).is_empty());
    let mut extra = push.clone();
    extra.body["default_branch"] = json!("master");
    assert_eq!(
        hook_diff("p", &extra),
        ["p [push PushPayload].default_branch: not in Gitea's struct"]
    );
    let mut dropped = push.clone();
    dropped.body.as_object_mut().unwrap().remove("before");
    assert_eq!(
        hook_diff("p", &dropped),
        ["p [push PushPayload].before: missing"]
    );
    let mut nested = push.clone();
    nested.body["head_commit"]["author"]
        .as_object_mut()
        .unwrap()
        .remove("username");
    assert_eq!(
        hook_diff("p", &nested),
        ["p [push PushPayload].head_commit.author.username: missing"]
    );
    let mut retyped = push.clone();
    retyped.body["commits"][0]["timestamp"] = json!(1_512_783_307);
    assert_eq!(
        hook_diff("p", &retyped),
        ["p [push PushPayload].commits[].timestamp: number where Gitea has string"]
    );
    // omitempty: absent is fine, `null` is not.
    let sync = find(
        "row commit_repo: push to a pull request's head",
        "pull_request_sync",
    );
    let mut absent = sync.clone();
    absent.body.as_object_mut().unwrap().remove("before");
    assert!(hook_diff("s", &absent).is_empty());
    let mut nulled = sync.clone();
    nulled.body["before"] = Value::Null;
    assert_eq!(hook_diff("s", &nulled).len(), 1);
    // An action the struct's event does not have; an event without a table.
    let mut action = sync.clone();
    action.body["action"] = json!("merged");
    assert_eq!(hook_diff("s", &action).len(), 1);
    let mut unknown = push;
    unknown.event_type = "fork";
    assert_eq!(hook_diff("f", &unknown), ["f: fork has no table"]);
}

#[test]
fn issues_opened_and_closed() {
    for (name, op) in [
        ("issues_opened.json", "create_issue"),
        ("issues_closed.json", "close_issue"),
    ] {
        let fx = webhook_fixture(name);
        let r = row(op, "", "1|Problem", &fx);
        let o = RowObjects {
            issue: Some(&fx["issue"]),
            ..objects(&fx)
        };
        let body = only(webhook::from_row(GITEA, &r.activity, &o).unwrap(), "issues");
        assert_shape(name, &body, SKIP, false);
        assert_eq!(body["action"], fx["action"], "{name}");
    }
}

#[test]
fn pull_requests_opened_closed_reopened_and_merged() {
    for (name, op) in [
        ("pull_request_opened.json", "create_pull_request"),
        ("pull_request_closed.json", "close_pull_request"),
        ("pull_request_reopened.json", "reopen_pull_request"),
        ("pull_request_merged.json", "merge_pull_request"),
    ] {
        let fx = webhook_fixture(name);
        let r = row(op, "", "1|Add LICENSE File", &fx);
        let o = RowObjects {
            pull: Some(&fx["pull_request"]),
            ..objects(&fx)
        };
        let body = only(
            webhook::from_row(GITEA, &r.activity, &o).unwrap(),
            "pull_request",
        );
        assert_shape(name, &body, SKIP, false);
        assert_eq!(body["action"], fx["action"], "{name}");
    }
    let fx = webhook_fixture("pull_request_merged.json");
    assert_eq!(
        fx["action"], "closed",
        "a merge is closed with merged: true"
    );
    assert_eq!(fx["pull_request"]["merged"], true);
}

#[test]
fn reviews_are_the_pull_request_payload_with_the_review() {
    let fx = webhook_fixture("pull_request_opened.json");
    for (op, ty) in [
        ("approve_pull_request", "pull_request_review_approved"),
        ("reject_pull_request", "pull_request_review_rejected"),
    ] {
        let r = row(op, "", "1|Looks good", &fx);
        let o = RowObjects {
            pull: Some(&fx["pull_request"]),
            ..objects(&fx)
        };
        let body = only(webhook::from_row(GITEA, &r.activity, &o).unwrap(), ty);
        assert_shape(
            "pull_request_opened.json",
            &body,
            &["secret", "action"],
            false,
        );
        assert_eq!(body["action"], "reviewed");
        assert_eq!(
            body["review"],
            json!({ "type": ty, "content": "Looks good" })
        );
    }
}

#[test]
fn comments_created() {
    for (name, op, ty) in [
        (
            "issue_comment_created.json",
            "comment_issue",
            "issue_comment",
        ),
        (
            "pull_request_comment_created.json",
            "comment_pull",
            "pull_request_comment",
        ),
    ] {
        let fx = webhook_fixture(name);
        let r = row(op, "", "1|Got it", &fx);
        let o = RowObjects {
            issue: Some(&fx["issue"]),
            comment: Some(&fx["comment"]),
            ..objects(&fx)
        };
        let body = only(webhook::from_row(GITEA, &r.activity, &o).unwrap(), ty);
        assert_shape(name, &body, SKIP, false);
        assert_eq!(body["is_pull"], op == "comment_pull", "{name}");
    }
}

/// `changes.body`: Gitea sends the old body; the API keeps none, so the sourcer cannot.
const NO_OLD_BODY: &[&str] = &["secret", "changes.body"];

#[test]
fn comments_edited_from_the_comments_endpoint() {
    for name in [
        "issue_comment_edited.json",
        "pull_request_comment_edited.json",
    ] {
        let fx = webhook_fixture(name);
        let mut comment = fx["comment"].clone();
        comment["issue_url"] = json!(format!("{GITEA}/gogits/hello-world/issues/1"));
        let data = json!({ "comment": comment });
        let c = Change {
            noun: "comment",
            change: "edited",
            data: &data,
        };
        assert_eq!(webhook::needs_change(&c).issue, Some(1));
        let o = RowObjects {
            repo: Some(&fx["repository"]),
            issue: Some(&fx["issue"]),
            ..RowObjects::default()
        };
        let hooks = webhook::from_change(&c, &o).unwrap();
        let ty = if fx["issue"]["pull_request"].is_null() {
            "issue_comment"
        } else {
            "pull_request_comment"
        };
        let mut body = only(hooks, ty);
        assert_shape(name, &body, NO_OLD_BODY, false);
        assert_eq!(body["action"], "edited");
        // What the shape test skipped is really absent (not invented).
        assert!(body["changes"].get("body").is_none());
        body["changes"] = fx["changes"].clone();
        assert_shape(name, &body, SKIP, false);
    }
}

#[test]
fn pull_request_title_edited_from_the_timeline() {
    let fx = webhook_fixture("pull_request_edited.json");
    let data = json!({
        "issue": { "number": 1, "labels": [] },
        "timeline": { "type": "change_title", "user": fx["sender"],
                      "old_title": fx["changes"]["title"]["from"], "new_title": "Add LICENSE File" },
    });
    let c = Change {
        noun: "pull_request",
        change: "title_edited",
        data: &data,
    };
    assert_eq!(webhook::needs_change(&c).pull, Some(1));
    let o = RowObjects {
        repo: Some(&fx["repository"]),
        pull: Some(&fx["pull_request"]),
        ..RowObjects::default()
    };
    let body = only(webhook::from_change(&c, &o).unwrap(), "pull_request");
    assert_shape("pull_request_edited.json", &body, SKIP, false);
    assert_eq!(body["changes"], fx["changes"]);
}

/// A `PullRequestPayload` (the one comparer, [`struct_diff`], with its table), `before` and
/// `after` (`omitempty`) only on a synchronization: Gitea 1.27+ fills them there alone
/// (`TestPullRequestPayloadSynchronizeBeforeAfter` / `...NonSynchronizeOmitsBeforeAfter`).
fn assert_pull_request_payload(what: &str, body: &Value) {
    let mut diffs = struct_diff(what, body, PULL_REQUEST_PAYLOAD);
    if let Some(r) = body.get("review").filter(|r| !r.is_null()) {
        diffs.extend(struct_diff(&format!("{what}.review"), r, REVIEW_PAYLOAD));
    }
    assert!(diffs.is_empty(), "{diffs:#?}\n{body:#}");
    let sync = body["action"] == "synchronized";
    for k in ["before", "after"] {
        assert_eq!(body.get(k).is_some(), sync, "{what}: {k}");
    }
}

#[test]
fn every_pull_request_payload_has_the_keys_and_types_of_gitea_s_struct() {
    let fx = webhook_fixture("pull_request_opened.json");
    let o = RowObjects {
        pull: Some(&fx["pull_request"]),
        ..objects(&fx)
    };
    // From feed rows.
    for (op, ty) in [
        ("create_pull_request", "pull_request"),
        ("close_pull_request", "pull_request"),
        ("reopen_pull_request", "pull_request"),
        ("merge_pull_request", "pull_request"),
        ("auto_merge_pull_request", "pull_request"),
        ("approve_pull_request", "pull_request_review_approved"),
        ("reject_pull_request", "pull_request_review_rejected"),
    ] {
        let r = row(op, "", "1|Looks good", &fx);
        let body = only(webhook::from_row(GITEA, &r.activity, &o).unwrap(), ty);
        assert_pull_request_payload(op, &body);
        if !ty.starts_with("pull_request_review") {
            assert_eq!(body["review"], Value::Null, "{op}");
        }
        assert_eq!(body["requested_reviewer"], Value::Null, "{op}");
    }
    // A push to an open pull request's head.
    let push_fx = webhook_fixture("push.json");
    let head = fx["pull_request"]["head"]["ref"].as_str().unwrap();
    let r = row(
        "commit_repo",
        &format!("refs/heads/{head}"),
        &push_content(&push_fx),
        &fx,
    );
    let pulls = vec![fx["pull_request"].clone()];
    let with_pulls = RowObjects {
        open_pulls: &pulls,
        ..objects(&fx)
    };
    let sync = only(
        webhook::from_row(GITEA, &r.activity, &with_pulls).unwrap(),
        "pull_request_sync",
    );
    assert_pull_request_payload("pull_request_sync", &sync);
    // From the repository endpoints (the timeline of the pull request).
    let o = RowObjects {
        repo: Some(&fx["repository"]),
        pull: Some(&fx["pull_request"]),
        ..RowObjects::default()
    };
    for (change, ty, timeline) in [
        (
            "labeled",
            "pull_request_label",
            json!({ "type": "label", "user": fx["sender"] }),
        ),
        (
            "assigned",
            "pull_request_assign",
            json!({ "type": "assignees", "user": fx["sender"] }),
        ),
        (
            "milestoned",
            "pull_request_milestone",
            json!({ "type": "milestone", "user": fx["sender"] }),
        ),
        (
            "review_requested",
            "pull_request_review_request",
            json!({ "type": "review_request", "user": fx["sender"], "assignee": fx["sender"] }),
        ),
        (
            "title_edited",
            "pull_request",
            json!({ "type": "change_title", "user": fx["sender"], "old_title": "Old" }),
        ),
        (
            "edited",
            "pull_request",
            json!({ "type": "change_title", "user": fx["sender"] }),
        ),
    ] {
        let data = json!({ "issue": { "number": 1, "labels": [] }, "timeline": timeline });
        let c = Change {
            noun: "pull_request",
            change,
            data: &data,
        };
        let body = only(webhook::from_change(&c, &o).unwrap(), ty);
        assert_pull_request_payload(change, &body);
        assert_eq!(body["review"], Value::Null, "{change}");
        if ty == "pull_request_review_request" {
            assert_eq!(body["requested_reviewer"], fx["sender"]);
        } else {
            assert_eq!(body["requested_reviewer"], Value::Null, "{change}");
        }
    }
}

#[test]
fn the_comparison_fails_on_a_dropped_key_or_a_changed_type() {
    let fx = webhook_fixture("push.json");
    let r = row("commit_repo", "refs/heads/master", &push_content(&fx), &fx);
    let push = only(
        webhook::from_row(GITEA, &r.activity, &objects(&fx)).unwrap(),
        "push",
    );
    assert!(shape_diff(&fx, &push, SKIP, false).is_empty());
    for key in ["before", "pusher", "compare_url"] {
        let mut dropped = push.clone();
        dropped.as_object_mut().unwrap().remove(key);
        assert_eq!(
            shape_diff(&fx, &dropped, SKIP, false),
            [format!("{key}: missing")]
        );
    }
    let mut nested = push.clone();
    nested["commits"][0]["author"]
        .as_object_mut()
        .unwrap()
        .remove("username");
    assert_eq!(
        shape_diff(&fx, &nested, SKIP, false),
        ["commits[].author.username: missing"]
    );
    let mut retyped = push.clone();
    retyped["commits"][0]["timestamp"] = json!(1_512_783_307);
    assert_eq!(
        shape_diff(&fx, &retyped, SKIP, false),
        ["commits[].timestamp: string in Gitea's body, number in ours"]
    );
    let mut nulled = push;
    nulled["repository"]["owner"] = Value::Null;
    assert_eq!(shape_diff(&fx, &nulled, SKIP, true).len(), 1);
}

#[test]
fn the_copied_fixtures_are_the_shared_ones() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = here.join("../shared/gitea/fixtures/webhooks");
    let Ok(entries) = std::fs::read_dir(&shared) else {
        // Outside the shared workspace (a plain checkout): the copy is what there is.
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let copy = std::fs::read(here.join("tests/fixtures/webhooks").join(&name))
            .unwrap_or_else(|e| panic!("{name} is copied into tests/fixtures/webhooks: {e}"));
        assert_eq!(copy, std::fs::read(&p).unwrap(), "{name}");
    }
}

/// Keys and types: `every_event_has_the_keys_and_json_types_of_gitea_s_struct`; here the
/// values.
#[test]
fn releases_statuses_runs_and_repositories_carry_gitea_s_values() {
    let fx = webhook_fixture("push.json");
    let repo = &fx["repository"];
    let o = RowObjects {
        repo: Some(repo),
        ..RowObjects::default()
    };
    // `ReleasePayload`: the release as the API has it, its author the sender;
    // `services/webhook/notifier.go` `UpdateRelease` sends `updated`.
    let mut release = api_fixture("release.json");
    release["author"] = fx["sender"].clone();
    for (change, action) in [
        ("published", "published"),
        ("edited", "updated"),
        ("deleted", "deleted"),
    ] {
        let data = json!({ "release": release });
        let c = Change {
            noun: "release",
            change,
            data: &data,
        };
        let body = only(webhook::from_change(&c, &o).unwrap(), "release");
        assert_eq!(body["action"], action);
        assert_eq!(body["release"], release);
        assert_eq!(body["sender"], fx["sender"]);
    }
    // `CommitStatusPayload`.
    let status = api_fixture("status.json");
    let data = json!({ "sha": "4522cbcefc20728a5b72b3a86af35e608622c514", "branch": "master", "status": status });
    let c = Change {
        noun: "status",
        change: "success",
        data: &data,
    };
    let body = only(webhook::from_change(&c, &o).unwrap(), "status");
    assert_eq!(body["commit"]["id"], data["sha"]);
    assert_eq!(body["sha"], data["sha"]);
    assert_eq!(body["context"], status["context"]);
    // `WorkflowRunPayload`.
    let data = json!({ "run": { "id": 7, "path": ".gitea/workflows/ci.yml@refs/heads/main",
        "status": "completed", "conclusion": "success", "trigger_actor": fx["sender"] } });
    let c = Change {
        noun: "actions_run",
        change: "success",
        data: &data,
    };
    let body = only(webhook::from_change(&c, &o).unwrap(), "workflow_run");
    assert_eq!(body["action"], "completed");
    assert_eq!(body["workflow"]["id"], "ci.yml");
    assert_eq!(body["workflow"]["path"], ".gitea/workflows/ci.yml");
    // `RepositoryPayload`: `CreateRepository` sends the owner as `organization`.
    let r = row("create_repo", "", "", &fx);
    let body = only(
        webhook::from_row(GITEA, &r.activity, &objects(&fx)).unwrap(),
        "repository",
    );
    assert_eq!(body["action"], "created");
    assert_eq!(body["organization"], repo["owner"]);
}

#[test]
fn status_commit_is_a_full_payload_commit() {
    // `services/webhook/notifier.go` `CreateCommitStatus`: `Commit` is
    // `repository.ToAPIPayloadCommit` of the status's commit: a whole `PayloadCommit`.
    let fx = webhook_fixture("push.json");
    let commit = api_fixture("commit.json");
    let sha = commit["sha"].as_str().unwrap().to_string();
    let status = api_fixture("status.json");
    let data = json!({ "sha": sha, "branch": "master", "status": status });
    let c = Change {
        noun: "status",
        change: "success",
        data: &data,
    };
    assert_eq!(webhook::needs_change(&c).commits, [sha.as_str()]);
    let commits: HashMap<String, Value> = [(sha.clone(), commit.clone())].into();
    let o = RowObjects {
        repo: Some(&fx["repository"]),
        commits: Some(&commits),
        ..RowObjects::default()
    };
    let body = only(webhook::from_change(&c, &o).unwrap(), "status");
    let mut diffs = struct_diff("status", &body, COMMIT_STATUS_PAYLOAD);
    diffs.extend(struct_diff(
        "status.commit",
        &body["commit"],
        PAYLOAD_COMMIT,
    ));
    assert!(diffs.is_empty(), "{diffs:#?}\n{body:#}");
    let pc = &body["commit"];
    assert_eq!(pc["id"], sha.as_str());
    assert_eq!(pc["message"], commit["commit"]["message"]);
    assert_eq!(
        pc["url"],
        format!(
            "{}/commit/{sha}",
            fx["repository"]["html_url"].as_str().unwrap()
        )
    );
    assert_eq!(pc["author"]["name"], "Lewis Cowles");
    assert_eq!(pc["author"]["email"], "lewiscowles@me.com");
    // No Gitea user has the author's email (the API's `author` is null).
    assert_eq!(pc["author"]["username"], "");
    assert_eq!(pc["committer"]["username"], "lunny");
    assert_eq!(pc["timestamp"], commit["commit"]["author"]["date"]);
    // The commit unreadable: still every key of the struct, the id and url known.
    let o = RowObjects {
        repo: Some(&fx["repository"]),
        ..RowObjects::default()
    };
    let body = only(webhook::from_change(&c, &o).unwrap(), "status");
    let diffs = struct_diff("status.commit", &body["commit"], PAYLOAD_COMMIT);
    assert!(diffs.is_empty(), "{diffs:#?}");
    assert_eq!(body["commit"]["id"], sha.as_str());
}

#[test]
fn workflow_run_has_the_whole_workflow_and_an_org_s_organization() {
    // `services/webhook/notifier.go`: `Workflow` is `convert.GetActionWorkflow` of the
    // run's workflow (what `GET /repos/{o}/{r}/actions/workflows/{id}` answers), and
    // `Organization` is set when the repository's owner is an organization.
    let fx = webhook_fixture("push.json");
    let workflow = json!({
        "id": "ci.yml", "name": "CI", "path": ".gitea/workflows/ci.yml", "state": "active",
        "created_at": "2026-11-28T16:25:31Z", "updated_at": "2026-11-28T16:25:31Z",
        "url": "http://try.gitea.io/api/v1/repos/gitea/webhooks/actions/workflows/ci.yml",
        "html_url": "http://try.gitea.io/gitea/webhooks/src/branch/master/.gitea/workflows/ci.yml",
        "badge_url": "http://try.gitea.io/gitea/webhooks/actions/workflows/ci.yml/badge.svg?branch=master",
        "deleted_at": "0001-01-01T00:00:00Z",
    });
    let org = api_fixture("organization.json");
    let data = json!({ "run": { "id": 7, "path": "ci.yml@refs/heads/master",
        "status": "completed", "conclusion": "success", "trigger_actor": fx["sender"] } });
    let c = Change {
        noun: "actions_run",
        change: "success",
        data: &data,
    };
    let n = webhook::needs_change(&c);
    assert_eq!(n.workflow.as_deref(), Some("ci.yml"));
    assert!(n.org, "whether the owner is an organization");
    let o = RowObjects {
        repo: Some(&fx["repository"]),
        workflow: Some(&workflow),
        organization: Some(&org),
        ..RowObjects::default()
    };
    let body = only(webhook::from_change(&c, &o).unwrap(), "workflow_run");
    let mut diffs = struct_diff("workflow_run", &body, WORKFLOW_RUN_PAYLOAD);
    diffs.extend(struct_diff(
        "workflow_run.workflow",
        &body["workflow"],
        ACTION_WORKFLOW,
    ));
    assert!(diffs.is_empty(), "{diffs:#?}\n{body:#}");
    assert_eq!(body["workflow"], workflow);
    assert_eq!(body["organization"], org);
    // A user's repository: no `organization` key.
    let o = RowObjects {
        organization: None,
        ..o
    };
    let body = only(webhook::from_change(&c, &o).unwrap(), "workflow_run");
    assert!(body.get("organization").is_none(), "{body:#}");
    // The workflow unreadable: every key of `ActionWorkflow`, `id` and `path` known.
    let o = RowObjects {
        repo: Some(&fx["repository"]),
        ..RowObjects::default()
    };
    let body = only(webhook::from_change(&c, &o).unwrap(), "workflow_run");
    let diffs = struct_diff("workflow_run.workflow", &body["workflow"], ACTION_WORKFLOW);
    assert!(diffs.is_empty(), "{diffs:#?}");
    assert_eq!(body["workflow"]["id"], "ci.yml");
}

#[test]
fn a_required_object_missing_is_an_error_that_names_it_not_a_hook_without_it() {
    let fx = webhook_fixture("issues_opened.json");
    let r = row("create_issue", "", "1|Problem", &fx);
    let err = webhook::from_row(GITEA, &r.activity, &objects(&fx)).unwrap_err();
    assert!(err.contains("issue"), "{err}");
    let r = row("merge_pull_request", "", "1|Fix", &fx);
    let err = webhook::from_row(GITEA, &r.activity, &objects(&fx)).unwrap_err();
    assert!(err.contains("pull request"), "{err}");
    // Stars and watches make no webhook at all.
    let r = row("star_repo", "", "", &fx);
    assert!(
        webhook::from_row(GITEA, &r.activity, &objects(&fx))
            .unwrap()
            .is_empty()
    );
}
