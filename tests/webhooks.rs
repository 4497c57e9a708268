//! `webhooks = true` end to end: the simulated Gitea, the sourcer, a real nats-server. Each
//! kind of webhook event the simulator can make arrives once, in CloudEvents binary mode,
//! with the shape of Gitea's own body; ids are stable across feeds and restarts; a plain
//! subscriber (headers and serde_json, no CloudEvents library) reads them.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use gitea_nats_sourcer::event::hook as webhook;
use gitea_sim::{FakeGitea, NewAction, SimOptions};
use serde::Deserialize;
use serde_json::Value;
use support::hooks::{RawMsg, assert_shape, read_hooks, read_raw};
use support::*;

const STREAM: &str = "GITEA_EVENTS";
const REPO: &str = "acme/widgets";
/// The commit of tag `v0.1.0`.
const TAG_SHA: &str = "3333333333333333333333333333333333333333";
const ALL_KINDS: &str =
    "kinds = [\"issues\", \"comments\", \"releases\", \"statuses\", \"actions\"]";

async fn setup() -> (Nats, FakeGitea) {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    (nats, g)
}

/// `(event_type, action)` of each hook in the stream, counted.
fn kinds_of(hooks: &[RawMsg]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for h in hooks {
        let action = action_of(&h.json()).to_string();
        *out.entry((h.event_type().to_string(), action)).or_default() += 1;
    }
    out
}

/// A hook body's `action`, else its `ref_type` (create, delete), else `""`.
fn action_of(body: &Value) -> &str {
    body["action"]
        .as_str()
        .or(body["ref_type"].as_str())
        .unwrap_or("")
}

async fn wait_hooks(nats: &Nats, what: &str, want: &[(&str, &str)]) -> Vec<RawMsg> {
    let url = nats.url();
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let arrived = wait_until(60, || {
        let url = url.clone();
        let want = want.clone();
        async move {
            if stream_count(&url, STREAM).await == 0 {
                return false;
            }
            let have = kinds_of(&read_hooks(&url, STREAM).await);
            want.iter().all(|k| have.contains_key(k))
        }
    })
    .await;
    let hooks = read_hooks(&url, STREAM).await;
    if !arrived {
        let have = kinds_of(&hooks);
        let missing: Vec<_> = want.iter().filter(|k| !have.contains_key(*k)).collect();
        panic!("{what}: still missing {missing:?}; have {have:?}");
    }
    hooks
}

fn find<'a>(hooks: &'a [RawMsg], event_type: &str, action: &str) -> &'a RawMsg {
    hooks
        .iter()
        .find(|h| h.event_type() == event_type && action_of(&h.json()) == action)
        .unwrap_or_else(|| panic!("a {event_type} {action} hook"))
}

fn push(actor: &str, branch: &str, n: usize) -> NewAction {
    NewAction::push(actor, REPO, branch, n)
}

/// Every kind of action the simulator can make, in an order that leaves each object in a
/// state the assertions can tell.
fn make_everything(g: &FakeGitea) -> Made {
    g.push_action(NewAction::new("create_repo", "alice", REPO));
    g.set_branch_head(REPO, "main", "1111111111111111111111111111111111111111");
    g.push_action(push("alice", "main", 2));
    // A new branch: Gitea's empty row for the ref, then the push.
    g.set_branch_head(REPO, "feature", "2222222222222222222222222222222222222222");
    g.push_action(push("alice", "feature", 0));
    g.push_action(push("alice", "feature", 1));
    // Tags: the rows Gitea writes (services/repository/push.go), one each.
    g.push_action(NewAction::push_tag("alice", REPO, "v0.1.0", TAG_SHA));
    g.push_action(NewAction::new("delete_branch", "alice", REPO).ref_name("refs/heads/old"));
    let issue = g.create_issue(REPO, "alice", "Crash on start", false);
    g.label_issue(REPO, issue, "bob", "bug", true);
    g.assign_issue(REPO, issue, "bob", "alice", true);
    g.set_milestone(REPO, issue, "bob", Some("v1.0"));
    g.edit_issue(REPO, issue, "alice", Some("Crash on start (Linux)"), None);
    let comment = g.comment_on(REPO, issue, "bob", "Cannot reproduce");
    g.close_issue_as(REPO, issue, "alice");
    let other = g.create_issue(REPO, "bob", "Flaky test", false);
    g.label_issue(REPO, other, "bob", "flaky", true);
    g.label_issue(REPO, other, "bob", "flaky", false);
    g.close_issue_as(REPO, other, "bob");
    g.reopen_issue_as(REPO, other, "bob");
    g.push_action(NewAction::delete_tag("alice", REPO, "v0.0.9"));
    let dropped = g.create_issue(REPO, "bob", "Another approach", true);
    g.push_action(
        NewAction::new("reject_pull_request", "alice", REPO)
            .content(&format!("{dropped}|Not like this")),
    );
    g.close_issue_as(REPO, dropped, "bob");
    g.reopen_issue_as(REPO, dropped, "bob");
    let pr = g.create_issue(REPO, "alice", "Fix crash", true);
    g.set_pull_head(REPO, pr, "feature");
    g.label_issue(REPO, pr, "bob", "bug", true);
    g.assign_issue(REPO, pr, "alice", "alice", true);
    g.set_milestone(REPO, pr, "alice", Some("v1.0"));
    g.request_review(REPO, pr, "alice", "bob");
    g.comment_on(REPO, pr, "bob", "Looks fine");
    g.push_action(
        NewAction::new("approve_pull_request", "bob", REPO).content(&format!("{pr}|LGTM")),
    );
    let rel = g.add_release(REPO, "alice", "v1.0.0", "First");
    g.add_status(
        REPO,
        "1111111111111111111111111111111111111111",
        "ci/build",
        "success",
    );
    let run = g.add_run(
        REPO,
        "ci.yml",
        "1111111111111111111111111111111111111111",
        "queued",
    );
    g.update_run(REPO, run, "completed", Some("success"));
    Made {
        pr,
        comment,
        release: rel,
    }
}

/// What [`make_everything`] made that the test changes later.
struct Made {
    pr: i64,
    comment: i64,
    release: i64,
}

/// Hook kinds the simulator makes, `(X-Gitea-Event-Type, action or ref_type)`.
const EVERY_KIND: &[(&str, &str)] = &[
    ("repository", "created"),
    ("push", ""),
    ("create", "branch"),
    ("create", "tag"),
    ("delete", "branch"),
    ("delete", "tag"),
    ("issues", "opened"),
    ("issues", "reopened"),
    ("issue_label", "label_cleared"),
    ("pull_request", "reopened"),
    ("pull_request_review_rejected", "reviewed"),
    ("issue_label", "label_updated"),
    ("issue_assign", "assigned"),
    ("issue_milestone", "milestoned"),
    ("issues", "edited"),
    ("issue_comment", "created"),
    ("issues", "closed"),
    ("pull_request", "opened"),
    ("pull_request_label", "label_updated"),
    ("pull_request_assign", "assigned"),
    ("pull_request_milestone", "milestoned"),
    ("pull_request_review_request", "review_requested"),
    ("pull_request_comment", "created"),
    ("pull_request_review_approved", "reviewed"),
    ("pull_request_sync", "synchronized"),
    ("release", "published"),
    ("status", ""),
    ("workflow_run", "completed"),
];

#[tokio::test]
async fn every_kind_the_simulator_makes_arrives_once_in_binary_mode_with_gitea_s_shape() {
    let (nats, g) = setup().await;
    let made = make_everything(&g);
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nwebhooks = true",
        &format!("[[source]]\nrepo = \"{REPO}\"\n{ALL_KINDS}\n"),
    );
    let run = run(cfg);
    wait_hooks(&nats, "every kind of hook", EVERY_KIND).await;
    // Changes a later poll sees as such: edits (between two listings), the merge, a
    // release deleted.
    // An edit is told from the creation by a later `updated_at` (one-second resolution).
    g.advance_clock(2);
    g.edit_comment(REPO, made.comment, "Cannot reproduce on 1.2");
    g.edit_release(REPO, made.release, "First (final)");
    g.merge_pull(REPO, made.pr, "alice");
    let rel = g.add_release(REPO, "alice", "v2.0.0", "Second");
    let url = nats.url();
    wait_for(30, "the second release", || {
        let url = url.clone();
        async move {
            let k = kinds_of(&read_hooks(&url, STREAM).await);
            k.get(&("release".to_string(), "published".to_string())) == Some(&2)
        }
    })
    .await;
    // The feed may have published it first: let the releases endpoint list it too, so
    // that its deletion is one (absent is deleted only for what was known).
    let listed = || {
        g.requests()
            .iter()
            .filter(|r| r.path.ends_with("/releases"))
            .count()
    };
    let before = listed();
    wait_for(20, "two more release listings", || async {
        listed() >= before + 2
    })
    .await;
    g.delete_release(REPO, rel);
    let hooks = wait_hooks(
        &nats,
        "the edits, the merge and the deletion",
        &[
            ("issue_comment", "edited"),
            ("release", "updated"),
            ("pull_request", "closed"),
            ("release", "deleted"),
        ],
    )
    .await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async {
        g.requests().len() > reqs + 20
    })
    .await;
    run.stop().await;
    let all = read_raw(&nats.url(), STREAM).await;
    let hooks_now = read_hooks(&nats.url(), STREAM).await;
    assert_eq!(
        hooks.len(),
        hooks_now.len(),
        "nothing more after more polls"
    );

    // Published once: every Nats-Msg-Id of the stream is unique.
    let mut ids = HashSet::new();
    for m in &all {
        assert!(
            ids.insert(m.header("Nats-Msg-Id").to_string()),
            "repeated: {}",
            m.subject
        );
    }
    let kinds = kinds_of(&hooks);
    let every = EVERY_KIND.iter().chain(&[
        ("issue_comment", "edited"),
        ("release", "updated"),
        ("release", "deleted"),
    ]);
    for (ty, action) in every {
        assert!(
            kinds.contains_key(&(ty.to_string(), action.to_string())),
            "{ty} {action}: {kinds:?}"
        );
    }
    // Binary mode: the attributes are headers, the body is Gitea's payload.
    for h in &hooks {
        let ty = h.event_type();
        assert_eq!(h.header("ce-specversion"), "1.0");
        assert_eq!(h.header("ce-id"), h.header("Nats-Msg-Id"));
        assert_eq!(h.header("ce-type"), format!("io.gitea.webhook.{ty}"));
        assert_eq!(h.header("ce-source"), format!("{}/{REPO}", g.url()));
        assert_eq!(h.header("ce-subject"), REPO);
        assert!(chrono::DateTime::parse_from_rfc3339(h.header("ce-time")).is_ok());
        assert_eq!(h.header("Content-Type"), "application/json");
        assert_eq!(h.header("X-Gitea-Event"), webhook::coarse(leak(ty)));
        let tokens: Vec<&str> = h.subject.split('.').collect();
        assert_eq!(
            tokens,
            ["gitea", "acme", "widgets", "hook", ty],
            "{}",
            h.subject
        );
        let body = h.json();
        assert_eq!(body["repository"]["full_name"], REPO, "{ty}");
    }
    // The activity events are all still there, on four tokens.
    let activity: Vec<&RawMsg> = all.iter().filter(|m| !m.is_hook()).collect();
    assert!(activity.iter().all(|m| m.subject.split('.').count() == 4));
    assert!(activity.len() >= 20, "{}", activity.len());

    // Shapes, against Gitea's real bodies (`null` allowed where Gitea's field is a pointer).
    let skip = &["secret"][..];
    let shape = |name: &str, ty: &str, action: &str, skip: &[&str]| {
        assert_shape(name, &find(&hooks, ty, action).json(), skip, true)
    };
    shape("push.json", "push", "", skip);
    // `default_branch`: in old Gitea's (Gogs') `CreatePayload` only, not in today's.
    let create_skip = &["secret", "default_branch"][..];
    shape("branch_create.json", "create", "branch", create_skip);
    shape("tag_create.json", "create", "tag", create_skip);
    shape("branch_delete.json", "delete", "branch", skip);
    shape("tag_delete.json", "delete", "tag", skip);
    shape(
        "pull_request_reopened.json",
        "pull_request",
        "reopened",
        skip,
    );
    shape("issues_opened.json", "issues", "opened", skip);
    shape("issues_closed.json", "issues", "closed", skip);
    for (ty, action) in [
        ("issue_label", "label_updated"),
        ("issue_assign", "assigned"),
        ("issue_milestone", "milestoned"),
        ("issues", "edited"),
    ] {
        shape("issues_opened.json", ty, action, &["action"]);
    }
    shape(
        "issue_comment_created.json",
        "issue_comment",
        "created",
        skip,
    );
    shape(
        "issue_comment_edited.json",
        "issue_comment",
        "edited",
        &["changes.body"],
    );
    shape(
        "pull_request_comment_created.json",
        "pull_request_comment",
        "created",
        skip,
    );
    shape("pull_request_opened.json", "pull_request", "opened", skip);
    shape("pull_request_merged.json", "pull_request", "closed", skip);
    shape(
        "pull_request_synchronized.json",
        "pull_request_sync",
        "synchronized",
        skip,
    );
    for (ty, action) in [
        ("pull_request_label", "label_updated"),
        ("pull_request_assign", "assigned"),
        ("pull_request_milestone", "milestoned"),
        ("pull_request_review_request", "review_requested"),
        ("pull_request_review_approved", "reviewed"),
        ("pull_request_review_rejected", "reviewed"),
    ] {
        shape(
            "pull_request_opened.json",
            ty,
            action,
            &["secret", "action"],
        );
    }
    shape(
        "issues_opened.json",
        "issue_label",
        "label_cleared",
        &["action"],
    );
    let rejected = find(&hooks, "pull_request_review_rejected", "reviewed");
    assert_eq!(rejected.header("X-Gitea-Event"), "pull_request_rejected");
    assert_eq!(rejected.json()["review"]["content"], "Not like this");

    // Values a receiver acts on.
    let closed: Vec<Value> = hooks
        .iter()
        .filter(|h| h.event_type() == "pull_request" && action_of(&h.json()) == "closed")
        .map(RawMsg::json)
        .collect();
    assert_eq!(closed.len(), 2, "one closed, one merged");
    let merged = closed
        .iter()
        .find(|c| c["pull_request"]["merged"] == true)
        .expect("the merge: closed with merged: true");
    assert_shape("pull_request_merged.json", merged, skip, true);
    assert!(closed.iter().any(|c| c["pull_request"]["merged"] == false));
    assert_eq!(merged["pull_request"]["head"]["ref"], "feature");
    let created = find(&hooks, "create", "branch").json();
    assert_eq!(created["ref"], "feature");
    // The value the branch was created with: its push's new commit (Gitea's `CreateRef` is
    // given `opts.NewCommitID`), not what the branch API says later.
    let feature_push = hooks
        .iter()
        .filter(|h| h.event_type() == "push")
        .map(RawMsg::json)
        .find(|p| p["ref"] == "refs/heads/feature")
        .expect("the push that made the branch");
    assert_eq!(created["sha"], feature_push["after"]);
    assert_eq!(feature_push["before"], webhook::ZERO_SHA);
    let pushes: Vec<Value> = hooks
        .iter()
        .filter(|h| h.event_type() == "push")
        .map(RawMsg::json)
        .collect();
    let first_feature = pushes
        .iter()
        .find(|p| p["ref"] == "refs/heads/feature")
        .expect("the feature branch's first push");
    assert_eq!(
        first_feature["before"],
        webhook::ZERO_SHA,
        "a new branch's push has zeros before"
    );
    // Tags as Gitea sends them: a new tag's push and create, a deleted tag's push and delete.
    let tag_push = pushes
        .iter()
        .find(|p| p["ref"] == "refs/tags/v0.1.0")
        .expect("the new tag's push");
    assert_eq!(tag_push["before"], webhook::ZERO_SHA);
    assert_eq!(tag_push["after"], TAG_SHA);
    assert_eq!(tag_push["head_commit"]["id"], TAG_SHA);
    assert_eq!(tag_push["commits"], serde_json::json!([]));
    assert_eq!(
        tag_push["compare_url"],
        format!(
            "{}/{REPO}/compare/{}...{TAG_SHA}",
            g.url(),
            webhook::ZERO_SHA
        )
    );
    let tag = find(&hooks, "create", "tag").json();
    assert_eq!(
        (&tag["ref"], &tag["sha"]),
        (&"v0.1.0".into(), &TAG_SHA.into())
    );
    let tag_gone = pushes
        .iter()
        .find(|p| p["ref"] == "refs/tags/v0.0.9")
        .expect("the deleted tag's push");
    assert_eq!(tag_gone["after"], webhook::ZERO_SHA);
    assert_eq!(tag_gone["head_commit"], Value::Null);
    assert_eq!(tag_gone["compare_url"], format!("{}/", g.url()));
    assert_eq!(find(&hooks, "delete", "tag").json()["ref"], "v0.0.9");
    // A deleted branch is `delete` alone: no push names it.
    assert!(pushes.iter().all(|p| p["ref"] != "refs/heads/old"));
    let main = pushes
        .iter()
        .find(|p| p["ref"] == "refs/heads/main")
        .expect("main");
    assert_eq!(main["total_commits"], 2);
    assert_eq!(main["commits"].as_array().map(Vec::len), Some(2));
    assert!(
        main["compare_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/{REPO}/compare/", g.url()))
    );
    assert_eq!(main["after"], main["commits"][0]["id"]);
    assert_eq!(main["pusher"]["login"], "alice");
    let review = find(&hooks, "pull_request_review_approved", "reviewed").json();
    assert_eq!(review["review"]["content"], "LGTM");
    let edited = find(&hooks, "issues", "edited").json();
    assert_eq!(edited["changes"]["title"]["from"], "Crash on start");
    let run_hook = find(&hooks, "workflow_run", "completed").json();
    assert_eq!(run_hook["workflow_run"]["conclusion"], "success");
    // The whole `ActionWorkflow` (`/actions/workflows/{id}`), and the org of an org's
    // repository.
    assert_eq!(run_hook["workflow"]["id"], "ci.yml");
    assert_eq!(run_hook["workflow"]["path"], ".gitea/workflows/ci.yml");
    assert_eq!(run_hook["workflow"]["state"], "active");
    assert!(
        run_hook["workflow"]["badge_url"].is_string(),
        "{run_hook:#}"
    );
    assert_eq!(run_hook["organization"]["username"], "acme");
    let status = find(&hooks, "status", "").json();
    assert_eq!(status["state"], "success");
    assert_eq!(status["context"], "ci/build");
    // `commit` is a whole `PayloadCommit` (`/git/commits/{sha}`).
    let commit = &status["commit"];
    assert_eq!(commit["id"], "1111111111111111111111111111111111111111");
    for k in ["message", "timestamp"] {
        assert!(commit[k].is_string(), "{k}: {commit:#}");
    }
    for k in ["author", "committer"] {
        assert!(commit[k]["username"].is_string(), "{k}: {commit:#}");
    }
    for k in ["added", "removed", "modified"] {
        assert!(commit[k].is_array(), "{k}: {commit:#}");
    }
    assert_eq!(
        commit["modified"],
        serde_json::json!(["src/1111111.txt"]),
        "the commit API's file list"
    );
}

/// `&'static str` for [`webhook::coarse`] in a test (event types are few).
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

#[tokio::test]
async fn a_push_to_an_open_pull_request_s_head_branch_gives_push_and_pull_request_sync() {
    let (nats, g) = setup().await;
    let pr = g.create_issue(REPO, "alice", "Add retries", true);
    g.set_pull_head(REPO, pr, "retries");
    let closed = g.create_issue(REPO, "alice", "Old attempt", true);
    g.set_pull_head(REPO, closed, "retries");
    g.close_issue_as(REPO, closed, "alice");
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nwebhooks = true",
        &format!("[[source]]\nrepo = \"{REPO}\"\n"),
    );
    let run = run(cfg);
    wait_hooks(&nats, "the pull request", &[("pull_request", "opened")]).await;
    g.push_action(push("alice", "retries", 3));
    g.push_action(push("alice", "unrelated", 1));
    let hooks = wait_hooks(&nats, "the sync", &[("pull_request_sync", "synchronized")]).await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async { g.requests().len() > reqs + 8 }).await;
    run.stop().await;
    let hooks_after = read_hooks(&nats.url(), STREAM).await;
    assert_eq!(hooks.len(), hooks_after.len());
    let syncs: Vec<Value> = hooks_after
        .iter()
        .filter(|h| h.event_type() == "pull_request_sync")
        .map(RawMsg::json)
        .collect();
    assert_eq!(
        syncs.len(),
        1,
        "only the open pull request of that head: {syncs:?}"
    );
    assert_eq!(syncs[0]["number"], pr);
    assert_eq!(syncs[0]["pull_request"]["head"]["ref"], "retries");
    // `before`/`after` (Gitea 1.27+): the push's own pair.
    let the_push = hooks_after
        .iter()
        .filter(|h| h.event_type() == "push")
        .map(RawMsg::json)
        .find(|p| p["ref"] == "refs/heads/retries")
        .expect("the push to the head branch");
    assert_eq!(
        (&syncs[0]["before"], &syncs[0]["after"]),
        (&the_push["before"], &the_push["after"])
    );
    assert!(syncs[0]["after"].as_str().is_some_and(|a| a.len() == 40));
    let sync = hooks_after
        .iter()
        .find(|h| h.event_type() == "pull_request_sync")
        .unwrap();
    assert_eq!(sync.header("X-Gitea-Event"), "pull_request");
    let pushes: Vec<Value> = hooks_after
        .iter()
        .filter(|h| h.event_type() == "push")
        .map(RawMsg::json)
        .collect();
    assert_eq!(pushes.len(), 2);
    assert!(
        pushes
            .iter()
            .any(|p| p["ref"] == "refs/heads/retries" && p["total_commits"] == 3)
    );
}

#[tokio::test]
async fn forgejo_s_publish_release_row_names_the_bare_tag_and_gives_one_release_hook() {
    // Forgejo writes a `publish_release` row's `ref_name` as the bare tag name (`v3.0.0`),
    // Gitea as the ref (`refs/tags/v3.0.0`): the same release, found and published once,
    // whether the feed or the `releases` kind reads it first.
    let nats = Nats::start().await;
    let g = gitea_with(SimOptions {
        forgejo: true,
        ..Default::default()
    })
    .await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_release(REPO, "alice", "v3.0.0", "Third");
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nwebhooks = true",
        &format!("[[source]]\nrepo = \"{REPO}\"\nkinds = [\"releases\"]\n"),
    );
    let run = run(cfg);
    let hooks = wait_hooks(&nats, "the release", &[("release", "published")]).await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async { g.requests().len() > reqs + 8 }).await;
    run.stop().await;
    let all = read_raw(&nats.url(), STREAM).await;
    let row = all
        .iter()
        .filter(|m| !m.is_hook())
        .map(RawMsg::json)
        .find(|e| e["data"]["activity"]["op_type"] == "publish_release")
        .expect("the publish_release row's event");
    assert_eq!(
        row["data"]["activity"]["ref_name"], "v3.0.0",
        "Forgejo's row names the bare tag"
    );
    let releases: Vec<Value> = read_hooks(&nats.url(), STREAM)
        .await
        .iter()
        .filter(|h| h.event_type() == "release")
        .map(RawMsg::json)
        .collect();
    assert_eq!(releases.len(), 1, "one release hook: {releases:#?}");
    assert_eq!(releases[0]["action"], "published");
    assert_eq!(releases[0]["release"]["tag_name"], "v3.0.0");
    assert_eq!(releases[0]["release"]["name"], "Third");
    assert!(hooks.iter().all(|h| h.event_type() == "release"));
}

#[tokio::test]
async fn a_deleted_tag_s_push_names_the_sha_its_push_tag_row_gave_when_both_are_read_together() {
    // Gitea's `delete_tag` row names no sha (`{"Commits":null,"HeadCommit":null,...}`) and the
    // API no longer has the tag: the tag's `push_tag` row, read in the same batch, names it.
    let (nats, g) = setup().await;
    let sha = "4444444444444444444444444444444444444444";
    g.push_action(NewAction::push_tag("alice", REPO, "v2.0.0", sha));
    g.push_action(NewAction::delete_tag("alice", REPO, "v2.0.0"));
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nwebhooks = true",
        &format!("[[source]]\nrepo = \"{REPO}\"\n"),
    );
    let run = run(cfg);
    let hooks = wait_hooks(
        &nats,
        "the tag's hooks",
        &[("create", "tag"), ("delete", "tag")],
    )
    .await;
    run.stop().await;
    let pushes: Vec<Value> = hooks
        .iter()
        .filter(|h| h.event_type() == "push")
        .map(RawMsg::json)
        .collect();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    let gone = pushes
        .iter()
        .find(|p| p["after"] == webhook::ZERO_SHA)
        .expect("the deleted tag's push");
    assert_eq!(gone["ref"], "refs/tags/v2.0.0");
    assert_eq!(gone["before"], sha);
    let new = pushes
        .iter()
        .find(|p| p["before"] == webhook::ZERO_SHA)
        .expect("the new tag's push");
    assert_eq!(new["after"], sha);
}

#[tokio::test]
async fn hook_ids_are_one_per_action_across_the_org_and_repository_feeds_and_restarts() {
    let (nats, g) = setup().await;
    // Org copies a second late, as Gitea writes them.
    g.push_action(push("alice", "main", 1).copy_delay(1));
    let issue = g.create_issue(REPO, "alice", "Crash", false);
    g.comment_on(REPO, issue, "bob", "Seen it too");
    g.close_issue_as(REPO, issue, "alice");
    let cfg = || {
        config(
            &g.url(),
            &nats.url(),
            "start = \"beginning\"\nwebhooks = true",
            &format!("[[source]]\norg = \"acme\"\n\n[[source]]\nrepo = \"{REPO}\"\n"),
        )
    };
    let want = [
        ("push", ""),
        ("issues", "opened"),
        ("issue_comment", "created"),
        ("issues", "closed"),
    ];
    let first = run(cfg());
    let hooks = wait_hooks(&nats, "the hooks", &want).await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async {
        g.requests().len() > reqs + 10
    })
    .await;
    first.stop().await;
    let count = stream_count(&nats.url(), STREAM).await;
    let published_at = Instant::now();
    assert_eq!(
        kinds_of(&hooks).values().sum::<usize>(),
        4,
        "{:?}",
        kinds_of(&hooks)
    );

    // Each hook's id is the action's activity event's id and the event type.
    let all = read_raw(&nats.url(), STREAM).await;
    let activity: HashMap<String, String> = all
        .iter()
        .filter(|m| !m.is_hook())
        .map(|m| {
            let op = m.json()["data"]["activity"]["op_type"]
                .as_str()
                .unwrap()
                .to_string();
            (op, m.header("Nats-Msg-Id").to_string())
        })
        .collect();
    for (op, ty) in [
        ("commit_repo", "push"),
        ("create_issue", "issues"),
        ("comment_issue", "issue_comment"),
        ("close_issue", "issues"),
    ] {
        let hook = all
            .iter()
            .filter(|m| m.is_hook() && m.event_type() == ty)
            .map(|m| m.header("ce-id").to_string())
            .collect::<Vec<_>>();
        assert!(
            hook.contains(&webhook::hook_id(&activity[op], ty, None)),
            "{op}: {hook:?}"
        );
    }

    // Restarted once the one-second duplicate window is long past: nothing is published
    // again (counted in the stream, not hidden by JetStream).
    let second = run(cfg());
    let reqs = g.requests().len();
    wait_for(
        30,
        "polls after the restart, past the duplicate window",
        || async {
            g.requests().len() > reqs + 20 && published_at.elapsed() > Duration::from_secs(3)
        },
    )
    .await;
    second.stop().await;
    assert_eq!(stream_count(&nats.url(), STREAM).await, count);
}

/// What a Woodpecker-style receiver reads of a push (its own struct, no CloudEvents).
#[derive(Deserialize)]
struct PushHook {
    #[serde(rename = "ref")]
    ref_name: String,
    before: String,
    after: String,
    compare_url: String,
    commits: Vec<PushCommit>,
    repository: Repo,
    sender: User,
}
#[derive(Deserialize)]
struct PushCommit {
    id: String,
    modified: Vec<String>,
}
#[derive(Deserialize)]
struct Repo {
    full_name: String,
    owner: User,
    html_url: String,
}
#[derive(Deserialize)]
struct User {
    username: String,
}

#[tokio::test]
async fn a_plain_subscriber_decodes_hooks_with_headers_and_serde_json_alone() {
    let (nats, g) = setup().await;
    let client = nats.client().await;
    let mut hooks = client.subscribe("gitea.*.*.hook.push").await.unwrap();
    let mut activity = client.subscribe("gitea.*.*.*").await.unwrap();
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"now\"\nwebhooks = true\npush_files = true",
        &format!("[[source]]\nrepo = \"{REPO}\"\n"),
    );
    let run = run(cfg);
    wait_for(20, "the first polls", || async { g.requests().len() > 5 }).await;
    g.push_action(push("alice", "main", 1));
    let m = tokio::time::timeout(Duration::from_secs(30), hooks.next())
        .await
        .expect("a push hook in time")
        .expect("message");
    let h = m.headers.as_ref().expect("headers");
    assert_eq!(h.get("X-Gitea-Event").map(|v| v.as_str()), Some("push"));
    assert_eq!(
        h.get("Content-Type").map(|v| v.as_str()),
        Some("application/json")
    );
    let push: PushHook = serde_json::from_slice(&m.payload).expect("Gitea's push body");
    assert_eq!(push.ref_name, "refs/heads/main");
    assert_eq!(push.after, push.commits[0].id);
    assert_eq!(push.before.len(), 40);
    assert!(push.compare_url.contains("/compare/"));
    assert_eq!(push.repository.full_name, REPO);
    assert_eq!(push.repository.owner.username, "acme");
    assert!(push.repository.html_url.ends_with(REPO));
    assert_eq!(push.sender.username, "alice");
    // push_files = true: the commit API's files.
    assert_eq!(
        push.commits[0].modified,
        [format!("src/{}.txt", &push.commits[0].id[..7])]
    );
    // `gitea.*.*.*` sees the activity event, never a hook.
    let a = tokio::time::timeout(Duration::from_secs(30), activity.next())
        .await
        .expect("the activity event")
        .expect("message");
    assert_eq!(a.subject.split('.').count(), 4);
    run.stop().await;
    let all = read_raw(&nats.url(), STREAM).await;
    assert_eq!(all.len(), 2, "the activity event and its push hook");
}

#[tokio::test]
async fn an_issue_the_api_cannot_return_publishes_the_action_without_its_hook() {
    let (nats, g) = setup().await;
    // A feed row for an issue the API answers 404 for (deleted since).
    g.push_action(NewAction::create_issue("alice", REPO, 99, "Gone"));
    g.push_action(push("alice", "main", 1));
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nwebhooks = true",
        &format!("[[source]]\nrepo = \"{REPO}\"\n"),
    );
    let run = run(cfg);
    wait_hooks(&nats, "the push's hook", &[("push", "")]).await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async { g.requests().len() > reqs + 8 }).await;
    run.stop().await;
    let all = read_raw(&nats.url(), STREAM).await;
    let ops: Vec<String> = all
        .iter()
        .filter(|m| !m.is_hook())
        .map(|m| {
            m.json()["data"]["activity"]["op_type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(ops.contains(&"create_issue".to_string()), "{ops:?}");
    assert!(
        all.iter()
            .filter(|m| m.is_hook())
            .all(|m| m.event_type() == "push")
    );
    assert!(
        g.requests().iter().any(|r| r.path.ends_with("/issues/99")),
        "the issue was asked for"
    );
}

/// Kills the child if the test ends without stopping it, so no sourcer outlives its test.
struct Reaper(Option<std::process::Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test]
async fn the_binary_publishes_every_kind_and_tail_shows_them_readably() {
    let (nats, g) = setup().await;
    make_everything(&g);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[gitea]\nurl = \"{}\"\nrequests_per_second = 200\nburst = 50\n\
             [nats]\nurl = \"{}\"\nduplicate_window = \"1s\"\nmax_bytes = \"256MiB\"\n\
             [poll]\ninterval = \"200ms\"\njitter = 0.0\nstart = \"beginning\"\nwebhooks = true\n\
             [[source]]\nrepo = \"{REPO}\"\n{ALL_KINDS}\n",
            g.url(),
            nats.url()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reaper = Reaper(Some(child));
    wait_hooks(&nats, "every kind, from the binary", EVERY_KIND).await;
    let n = read_hooks(&nats.url(), STREAM).await.len();
    let (code, stdout, stderr) = tokio::time::timeout(
        Duration::from_secs(30),
        sourcer(
            &path,
            &[
                "tail",
                "--all",
                "--count",
                &n.to_string(),
                "acme.widgets.hook.>",
            ],
        ),
    )
    .await
    .expect("tail prints the hooks there are and exits");
    let Some(child) = reaper.0.take() else {
        unreachable!("the child is there")
    };
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), n, "one line per hook event: {stdout}");
    for (ty, _) in EVERY_KIND {
        assert!(
            lines.iter().any(|l| l.contains(&format!(" hook {ty} "))),
            "tail shows {ty}: {stdout}"
        );
    }
    let push = lines
        .iter()
        .find(|l| l.contains(" hook push ") && l.contains("refs/heads/main"))
        .expect("the push to main");
    assert!(push.contains("2 commits by alice"), "{push}");
}

#[tokio::test]
async fn payloads_say_what_was_true_at_the_event_and_name_the_closing_commit() {
    let (nats, g) = setup().await;
    let fix = "7777777777777777777777777777777777777777";
    let back = "8888888888888888888888888888888888888888";
    // All of it happens before the first poll: every object is read in its final state.
    let crash = g.create_issue(REPO, "alice", "Crash", false);
    g.close_issue_by_commit(REPO, crash, "alice", fix, true);
    let typo = g.create_issue(REPO, "bob", "Typo", false);
    g.close_issue_as(REPO, typo, "bob");
    let again = g.create_issue(REPO, "bob", "Again", false);
    g.close_issue_by_commit(REPO, again, "alice", fix, true);
    g.close_issue_by_commit(REPO, again, "alice", back, false);
    let head = "9999999999999999999999999999999999999999";
    g.set_branch_head(REPO, "fix", head);
    let pr = g.create_issue(REPO, "alice", "Fix", true);
    g.set_pull_head(REPO, pr, "fix");
    g.comment_on(REPO, pr, "bob", "Looks fine");
    g.merge_pull(REPO, pr, "alice");
    g.delete_branch(REPO, "fix");
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nwebhooks = true",
        &format!("[[source]]\nrepo = \"{REPO}\"\n"),
    );
    let run = run(cfg);
    let hooks = wait_hooks(
        &nats,
        "the issues and the pull request",
        &[
            ("issues", "closed"),
            ("issues", "reopened"),
            ("pull_request", "opened"),
            ("pull_request", "closed"),
            ("pull_request_comment", "created"),
        ],
    )
    .await;
    run.stop().await;
    let of = |ty: &str, action: &str, number: i64| -> Value {
        hooks
            .iter()
            .filter(|h| h.event_type() == ty)
            .map(RawMsg::json)
            .find(|b| {
                b["action"] == action && (b["number"] == number || b["issue"]["number"] == number)
            })
            .unwrap_or_else(|| panic!("{ty} {action} of #{number}"))
    };
    // `commit_id`: the closing (reopening) commit, `""` when closed by hand.
    assert_eq!(of("issues", "closed", crash)["commit_id"], fix);
    assert_eq!(of("issues", "closed", typo)["commit_id"], "");
    assert_eq!(of("issues", "closed", again)["commit_id"], fix);
    assert_eq!(of("issues", "reopened", again)["commit_id"], back);
    assert_eq!(of("issues", "opened", crash)["commit_id"], "");
    // As of the event: opened is open, though the issue is closed now.
    let opened = of("issues", "opened", typo);
    assert_eq!(opened["issue"]["state"], "open", "{opened}");
    assert_eq!(opened["issue"]["closed_at"], Value::Null);
    assert_eq!(of("issues", "closed", again)["issue"]["state"], "closed");
    // The pull request: opened open and unmerged, though merged now; merged closed.
    let opened = &of("pull_request", "opened", pr)["pull_request"];
    assert_eq!(
        (&opened["state"], &opened["merged"]),
        (&"open".into(), &false.into())
    );
    assert_eq!(opened["merged_by"], Value::Null);
    let merged = &of("pull_request", "closed", pr)["pull_request"];
    assert_eq!(
        (&merged["state"], &merged["merged"]),
        (&"closed".into(), &true.into())
    );
    // Its branch is gone; Gitea's `refs/pull/N/head` still names the head commit.
    assert_eq!(merged["head"]["sha"], head, "{merged}");
    // A comment on a pull request carries it (Gitea 1.23+).
    let comment = of("pull_request_comment", "created", pr);
    assert_eq!(comment["pull_request"]["number"], pr, "{comment}");
    assert_eq!(comment["is_pull"], true);
}

#[tokio::test]
async fn a_review_of_type_comment_is_one_pull_request_review_comment_not_pull_request_comments() {
    // services/webhook/notifier.go `PullRequestReview`: a review of type comment sends
    // `pull_request_review_comment` (`reviewed`); its summary and code comments are
    // `comment_pull` rows (services/feed/notifier.go), which are no `pull_request_comment`.
    let (nats, g) = setup().await;
    let pr = g.create_issue(REPO, "alice", "Add retries", true);
    g.set_pull_head(REPO, pr, "retries");
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nwebhooks = true",
        &format!("[[source]]\nrepo = \"{REPO}\"\n"),
    );
    let run = run(cfg);
    wait_hooks(&nats, "the pull request", &[("pull_request", "opened")]).await;
    g.comment_review(
        REPO,
        pr,
        "bob",
        "Looks close.\nTwo nits below.",
        &["nit: rename", "nit: typo"],
    );
    g.comment_on(REPO, pr, "carol", "Plain comment");
    let hooks = wait_hooks(
        &nats,
        "the review and the comment",
        &[
            ("pull_request_review_comment", "reviewed"),
            ("pull_request_comment", "created"),
        ],
    )
    .await;
    wait_past_duplicate_window(&nats.url(), STREAM).await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async { g.requests().len() > reqs + 8 }).await;
    run.stop().await;
    let hooks = {
        let after = read_hooks(&nats.url(), STREAM).await;
        assert_eq!(hooks.len(), after.len(), "nothing more arrived");
        after
    };
    let kinds = kinds_of(&hooks);
    assert_eq!(
        kinds.get(&("pull_request_review_comment".into(), "reviewed".into())),
        Some(&1)
    );
    assert_eq!(
        kinds.get(&("pull_request_comment".into(), "created".into())),
        Some(&1),
        "only the plain comment: {kinds:?}"
    );
    let review = find(&hooks, "pull_request_review_comment", "reviewed").json();
    assert_eq!(review["review"]["type"], "pull_request_review_comment");
    assert_eq!(review["review"]["content"], "Looks close.\nTwo nits below.");
    assert_eq!(review["pull_request"]["number"], pr);
    let comment = find(&hooks, "pull_request_comment", "created").json();
    assert_eq!(comment["comment"]["body"], "Plain comment");
}

#[tokio::test]
async fn a_password_in_gitea_url_is_in_no_published_byte() {
    // `https://user:pass@host` is used to connect (basic auth) and never published: not in an
    // event's `source`, a hook's `compare_url` or `html_url`, nor any header.
    let (nats, g) = setup().await;
    const PASSWORD: &str = "s3cret-in-url";
    g.push_action(NewAction::new("create_repo", "alice", REPO));
    g.git_push("alice", REPO, "main", 2);
    g.git_push_tag("alice", REPO, "v1.0.0", &"4".repeat(40));
    let url = g.url().replacen("://", &format!("://alice:{PASSWORD}@"), 1);
    let cfg = config(
        &url,
        &nats.url(),
        "start = \"beginning\"\nwebhooks = true",
        &format!("[[source]]\nrepo = \"{REPO}\"\nkinds = [\"refs\"]\n"),
    );
    let run = run(cfg);
    wait_hooks(
        &nats,
        "the pushes",
        &[("push", ""), ("create", "tag"), ("repository", "created")],
    )
    .await;
    run.stop().await;
    let msgs = read_raw(&nats.url(), STREAM).await;
    assert!(msgs.len() >= 6, "{}", msgs.len());
    for m in &msgs {
        let text = String::from_utf8_lossy(&m.payload);
        assert!(!text.contains(PASSWORD), "{}: {text}", m.subject);
        assert!(!text.contains("alice:"), "{}: {text}", m.subject);
        for (k, v) in &m.headers {
            assert!(!v.contains(PASSWORD), "{}: header {k}: {v}", m.subject);
        }
    }
    let push = find(&read_hooks(&nats.url(), STREAM).await, "push", "").json();
    assert!(
        push["compare_url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&g.url())),
        "{}",
        push["compare_url"]
    );
}
