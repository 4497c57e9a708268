//! The webhook events added after the first set: mirror syncs (`create` / `delete` / `push`
//! of `mirror_sync_*` rows) and `workflow_job` (the `actions` kind reading the jobs of the
//! runs it tracks): what they carry. Their keys and JSON types are checked against Gitea's
//! structs by the one table set (`tests/support/structs.rs`, also used by
//! `tests/webhooks_golden.rs` on every body of `support::bodies::every_hook`); one
//! end-to-end test runs both through the simulator and a real nats-server.

mod support;

use gitea_nats_sourcer::event::hook::{self as webhook, Change, Hook, RowObjects};
use gitea_sim::NewAction;
use serde_json::{Value, json};
use support::bodies::{GITEA, HEAD_SHA as SHA, NEW_REF_PUSH, row};
use support::hooks::{read_hooks, webhook_fixture};
use support::structs::hook_diff;
use support::{Nats, config, gitea, run as run_sourcer, stream_count, wait_for, wait_until};

fn types(hooks: &[Hook]) -> Vec<&str> {
    hooks.iter().map(|h| h.event_type).collect()
}

#[test]
fn a_mirror_sync_s_new_ref_is_push_then_create_and_a_removed_ref_delete() {
    // services/mirror/mirror_pull.go `SyncPullMirror`: a new ref is `SyncPushCommits`
    // (before zeros, after the ref's commit, `NewPushCommits()`) then `SyncCreateRef`; a
    // removed ref `SyncDeleteRef` alone. services/webhook/notifier.go sends them as push,
    // create and delete; the feed writes mirror_sync_push, mirror_sync_create,
    // mirror_sync_delete (services/feed/notifier.go), the owner as actor.
    let fx = webhook_fixture("push.json");
    let mut diffs = Vec::new();
    let push = row("mirror_sync_push", "refs/heads/feature", NEW_REF_PUSH, &fx);
    let create = row("mirror_sync_create", "refs/heads/feature", "", &fx);
    let delete = row("mirror_sync_delete", "refs/tags/v1.0.0", "", &fx);
    let tag = row("mirror_sync_create", "refs/tags/v2.0.0", "", &fx);
    // The rows do not name the new ref's commit: the API's branch (or tag) does.
    assert_eq!(
        webhook::needs(&push.activity, false).branch.as_deref(),
        Some("feature")
    );
    assert!(!webhook::needs(&push.activity, false).open_pulls);
    assert_eq!(
        webhook::needs(&create.activity, false).branch.as_deref(),
        Some("feature")
    );
    assert_eq!(
        webhook::needs(&tag.activity, false).tag.as_deref(),
        Some("v2.0.0")
    );
    assert!(webhook::makes_hooks("mirror_sync_create"));
    assert!(webhook::makes_hooks("mirror_sync_delete"));
    let o = RowObjects {
        repo: Some(&fx["repository"]),
        sender: Some(&fx["sender"]),
        ref_sha: Some(SHA),
        ..RowObjects::default()
    };
    let hooks = webhook::from_row(GITEA, &push.activity, &o).unwrap();
    assert_eq!(types(&hooks), ["push"]);
    let p = &hooks[0].body;
    diffs.extend(hook_diff("mirror push", &hooks[0]));
    assert_eq!(p["ref"], "refs/heads/feature");
    assert_eq!(p["before"], webhook::ZERO_SHA);
    assert_eq!(p["after"], SHA);
    assert_eq!(p["compare_url"], format!("{GITEA}/"), "AppURL + \"\"");
    assert_eq!(p["commits"], json!([]));
    assert_eq!(p["total_commits"], 0);
    assert_eq!(p["head_commit"], Value::Null);
    assert_eq!(p["pusher"], fx["sender"]);

    let hooks = webhook::from_row(GITEA, &create.activity, &o).unwrap();
    assert_eq!(types(&hooks), ["create"]);
    let c = &hooks[0].body;
    diffs.extend(hook_diff("mirror create", &hooks[0]));
    assert_eq!(
        (&c["ref"], &c["ref_type"], &c["sha"]),
        (&json!("feature"), &json!("branch"), &json!(SHA))
    );
    assert_eq!(c["sender"], fx["sender"]);
    let hooks = webhook::from_row(GITEA, &tag.activity, &o).unwrap();
    assert_eq!(hooks[0].body["ref_type"], "tag");
    assert_eq!(hooks[0].body["ref"], "v2.0.0");

    let hooks = webhook::from_row(GITEA, &delete.activity, &o).unwrap();
    assert_eq!(types(&hooks), ["delete"], "a removed ref: no push");
    let d = &hooks[0].body;
    diffs.extend(hook_diff("mirror delete", &hooks[0]));
    assert_eq!(
        (&d["ref"], &d["ref_type"], &d["pusher_type"]),
        (&json!("v1.0.0"), &json!("tag"), &json!("user"))
    );
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn a_mirror_sync_push_synchronizes_no_pull_request() {
    // `SyncPullMirror` calls no `PullRequestSynchronized` (a user's push does, in
    // services/repository/push.go): an open pull request whose head the sync moved gets
    // no `pull_request_sync`.
    let fx = webhook_fixture("push.json");
    let content = json!({
        "Commits": [{ "Sha1": SHA, "Message": "m" }], "HeadCommit": { "Sha1": SHA },
        "CompareURL": format!("gitea/webhooks/compare/{}...{SHA}", "1".repeat(40)), "Len": 1,
    })
    .to_string();
    let r = row("mirror_sync_push", "refs/heads/feature", &content, &fx);
    let n = webhook::needs(&r.activity, false);
    assert!(!n.open_pulls, "no open pull requests asked");
    assert_eq!(n.branch, None, "the row names its commit");
    let open = vec![
        json!({ "number": 3, "state": "open", "head": { "ref": "feature",
        "repo": { "full_name": fx["repository"]["full_name"] } } }),
    ];
    let o = RowObjects {
        repo: Some(&fx["repository"]),
        sender: Some(&fx["sender"]),
        open_pulls: &open,
        ..RowObjects::default()
    };
    let hooks = webhook::from_row(GITEA, &r.activity, &o).unwrap();
    assert_eq!(types(&hooks), ["push"]);
    assert_eq!(hooks[0].body["before"], "1".repeat(40));
    assert_eq!(hooks[0].body["after"], SHA);
}

#[test]
fn workflow_job_is_the_api_s_job_with_its_status_as_action() {
    // services/webhook/notifier.go `WorkflowJobStatusUpdate`: `WorkflowJobPayload` with
    // the job as `ActionWorkflowJob` (what `/actions/runs/{run}/jobs` answers:
    // services/convert/convert.go `ToActionWorkflowJob`), `action` its status, the run's
    // trigger user as sender, `organization` only for an organization's repository.
    let fx = webhook_fixture("push.json");
    let job = json!({
        "id": 11, "url": "http://try.gitea.io/api/v1/repos/gitea/webhooks/actions/jobs/11",
        "html_url": "http://try.gitea.io/gitea/webhooks/actions/runs/3/jobs/11",
        "run_id": 7, "run_url": "http://try.gitea.io/api/v1/repos/gitea/webhooks/actions/runs/7",
        "name": "build", "labels": ["ubuntu-latest"], "run_attempt": 1, "head_sha": SHA,
        "head_branch": "master", "status": "completed", "conclusion": "success", "steps": [],
        "created_at": "2026-12-01T00:00:00Z", "started_at": "2026-12-01T00:00:05Z",
        "completed_at": "2026-12-01T00:01:00Z",
    });
    let data = json!({ "job": job, "run": { "id": 7, "trigger_actor": fx["sender"] } });
    let c = Change {
        noun: "actions_job",
        change: "success",
        data: &data,
    };
    let n = webhook::needs_change(&c);
    assert!(
        n.repo && n.org,
        "the repository and whether its owner is an org"
    );
    let org = json!({ "id": 3, "username": "gitea", "name": "gitea" });
    let o = RowObjects {
        repo: Some(&fx["repository"]),
        organization: Some(&org),
        ..RowObjects::default()
    };
    let hooks = webhook::from_change(&c, &o).unwrap();
    assert_eq!(types(&hooks), ["workflow_job"]);
    assert_eq!(hooks[0].event(), "workflow_job");
    let body = &hooks[0].body;
    let diffs = hook_diff("workflow_job", &hooks[0]);
    assert!(diffs.is_empty(), "{diffs:#?}\n{body:#}");
    assert_eq!(body["action"], "completed");
    assert_eq!(body["workflow_job"], job);
    assert_eq!(body["sender"], fx["sender"]);
    assert_eq!(body["organization"], org);
    let o = RowObjects {
        organization: None,
        ..o
    };
    let body = &webhook::from_change(&c, &o).unwrap()[0].body;
    assert!(
        body.get("organization").is_none(),
        "a user's repository: {body:#}"
    );
}

const REPO: &str = "acme/widgets";
const STREAM: &str = "GITEA_EVENTS";

/// `(event_type, action or ref_type)` of every hook in the stream.
async fn hook_kinds(nats_url: &str) -> Vec<(String, String)> {
    read_hooks(nats_url, STREAM)
        .await
        .iter()
        .map(|h| {
            let b = h.json();
            let a = b["action"]
                .as_str()
                .or(b["ref_type"].as_str())
                .unwrap_or("");
            (h.event_type().to_string(), a.to_string())
        })
        .collect()
}

async fn wait_kinds(nats_url: &str, what: &str, want: &[(&str, &str)]) {
    let url = nats_url.to_string();
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let ok = wait_until(60, || {
        let (url, want) = (url.clone(), want.clone());
        async move {
            if stream_count(&url, STREAM).await == 0 {
                return false;
            }
            let have = hook_kinds(&url).await;
            want.iter().all(|k| have.contains(k))
        }
    })
    .await;
    if !ok {
        panic!("{what}: have {:?}", hook_kinds(nats_url).await);
    }
}

#[tokio::test]
async fn mirror_syncs_and_job_states_arrive_as_gitea_s_hooks() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.push_action(NewAction::new("create_repo", "alice", REPO));
    g.mirror_sync_new_branch(REPO, "feature", SHA);
    g.set_branch_head(REPO, "old", SHA);
    g.mirror_sync_deleted_branch(REPO, "old");
    let run = g.add_run(REPO, "ci.yml", SHA, "in_progress");
    let build = g.add_job(REPO, run, "build", &["ubuntu-latest"], "queued");
    let deploy = g.add_job(REPO, run, "deploy", &["ubuntu-latest"], "waiting");
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nwebhooks = true",
        &format!("[[source]]\nrepo = \"{REPO}\"\nkinds = [\"actions\"]\n"),
    );
    let running = run_sourcer(cfg);
    wait_kinds(
        &nats.url(),
        "the mirror sync and the jobs' first states",
        &[
            ("push", ""),
            ("create", "branch"),
            ("delete", "branch"),
            ("workflow_job", "queued"),
            ("workflow_job", "waiting"),
        ],
    )
    .await;
    g.advance_clock(2);
    g.update_job(REPO, build, "in_progress", None);
    wait_kinds(
        &nats.url(),
        "build started",
        &[("workflow_job", "in_progress")],
    )
    .await;
    g.advance_clock(2);
    g.update_job(REPO, build, "completed", Some("success"));
    g.update_job(REPO, deploy, "completed", Some("skipped"));
    g.update_run(REPO, run, "completed", Some("success"));
    wait_for(60, "both jobs completed", || async {
        let k = hook_kinds(&nats.url()).await;
        k.iter()
            .filter(|(t, a)| t == "workflow_job" && a == "completed")
            .count()
            == 2
    })
    .await;
    // A completed run is not asked for its jobs again.
    let jobs_asked = || {
        g.requests()
            .iter()
            .filter(|r| r.path.ends_with("/jobs"))
            .count()
    };
    let (asked, reqs) = (jobs_asked(), g.requests().len());
    wait_for(20, "more polls", || async {
        g.requests().len() > reqs + 10
    })
    .await;
    assert!(jobs_asked() <= asked + 1, "jobs of a completed run re-read");
    running.stop().await;

    let hooks = read_hooks(&nats.url(), STREAM).await;
    let mut ids = std::collections::HashSet::new();
    for h in &hooks {
        assert!(ids.insert(h.header("ce-id").to_string()), "published once");
    }
    let owner = |b: &Value| b["sender"]["login"].as_str().map(str::to_string);
    let create = hooks
        .iter()
        .find(|h| h.event_type() == "create")
        .unwrap()
        .json();
    assert_eq!(create["sha"], SHA);
    assert_eq!(create["ref"], "feature");
    assert_eq!(
        owner(&create).as_deref(),
        Some("acme"),
        "the mirror's owner"
    );
    let push = hooks
        .iter()
        .find(|h| h.event_type() == "push")
        .unwrap()
        .json();
    assert_eq!(
        (&push["before"], &push["after"]),
        (&json!(webhook::ZERO_SHA), &json!(SHA))
    );
    let delete = hooks
        .iter()
        .find(|h| h.event_type() == "delete")
        .unwrap()
        .json();
    assert_eq!(delete["ref"], "old");
    let mut diffs = Vec::new();
    let mut states = Vec::new();
    for h in hooks.iter().filter(|h| h.event_type() == "workflow_job") {
        let b = h.json();
        assert_eq!(h.header("X-Gitea-Event"), "workflow_job");
        let hook = Hook {
            event_type: "workflow_job",
            part: None,
            body: b.clone(),
        };
        diffs.extend(hook_diff("published workflow_job", &hook));
        assert_eq!(b["action"], b["workflow_job"]["status"]);
        assert_eq!(b["organization"]["username"], "acme", "{b:#}");
        let j = &b["workflow_job"];
        states.push((
            j["name"].as_str().unwrap_or("").to_string(),
            b["action"].as_str().unwrap_or("").to_string(),
            j["conclusion"].as_str().unwrap_or("").to_string(),
        ));
    }
    assert!(diffs.is_empty(), "{diffs:#?}");
    states.sort();
    assert_eq!(
        states,
        [
            ("build", "completed", "success"),
            ("build", "in_progress", ""),
            ("build", "queued", ""),
            ("deploy", "completed", "skipped"),
            ("deploy", "waiting", ""),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
}
