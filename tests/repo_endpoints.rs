//! Repository endpoints (`kinds`): the changes the feed never carries, against the fake
//! Gitea, with a real nats-server.

mod support;

use std::collections::HashMap;

use gitea_sim::FakeGitea;
use support::*;

const STREAM: &str = "GITEA_EVENTS";

fn types(msgs: &[Msg]) -> Vec<String> {
    msgs.iter()
        .map(|m| m.body["type"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn wait_type(nats: &Nats, ty: &str, n: usize) {
    let url = nats.url();
    wait_for(30, &format!("{n} x {ty}"), || {
        let url = url.clone();
        async move {
            stream_count(&url, STREAM).await > 0
                && types(&read_stream(&url, STREAM).await)
                    .iter()
                    .filter(|t| *t == ty)
                    .count()
                    >= n
        }
    })
    .await;
}

fn repo_source(kinds: &str) -> String {
    format!("[[source]]\nrepo = \"acme/widgets\"\nkinds = [{kinds}]\n")
}

async fn setup() -> (Nats, FakeGitea) {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    (nats, g)
}

#[tokio::test]
async fn issue_changes_label_added_and_removed_within_one_interval_give_both_events_in_order() {
    let (nats, g) = setup().await;
    let index = g.create_issue("acme/widgets", "alice", "Crash on start", false);
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &repo_source("\"issues\""),
    );
    let run = run(cfg);
    wait_type(&nats, "io.gitea.activity.create_issue", 1).await;
    g.label_issue("acme/widgets", index, "bob", "bug", true);
    g.label_issue("acme/widgets", index, "bob", "bug", false);
    g.assign_issue("acme/widgets", index, "bob", "alice", true);
    g.set_milestone("acme/widgets", index, "bob", Some("v1.0"));
    g.edit_issue(
        "acme/widgets",
        index,
        "alice",
        Some("Crash on start (Linux)"),
        None,
    );
    wait_type(&nats, "io.gitea.issue.title_edited", 1).await;
    let pr = g.create_issue("acme/widgets", "alice", "Fix crash", true);
    g.request_review("acme/widgets", pr, "alice", "bob");
    wait_type(&nats, "io.gitea.pull_request.review_requested", 1).await;
    // Let a few more polls happen: nothing is published twice.
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async { g.requests().len() > reqs + 8 }).await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    let t = types(&msgs);
    let pos = |ty: &str| {
        t.iter()
            .position(|x| x == ty)
            .unwrap_or_else(|| panic!("no {ty} in {t:?}"))
    };
    assert!(
        pos("io.gitea.issue.labeled") < pos("io.gitea.issue.unlabeled"),
        "{t:?}"
    );
    for ty in ["io.gitea.issue.assigned", "io.gitea.issue.milestoned"] {
        pos(ty);
    }
    let labeled = &msgs[pos("io.gitea.issue.labeled")];
    assert_eq!(labeled.subject, "gitea.acme.widgets.issue_labeled");
    assert_eq!(labeled.body["data"]["timeline"]["label"]["name"], "bug");
    assert_eq!(labeled.body["data"]["issue"]["number"], index);
    // The feed's own rows are not published again from the timeline.
    assert_eq!(
        t.iter()
            .filter(|x| x.starts_with("io.gitea.activity.create"))
            .count(),
        2
    );
}

#[tokio::test]
async fn a_comment_seen_in_the_feed_and_in_the_comments_endpoint_is_one_event_and_edits_follow() {
    let (nats, g) = setup().await;
    let index = g.create_issue("acme/widgets", "alice", "Question", false);
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &repo_source("\"comments\""),
    );
    let run = run(cfg);
    let c1 = g.comment_on(
        "acme/widgets",
        index,
        "bob",
        "Have you tried turning it off and on?",
    );
    let _c2 = g.comment_on("acme/widgets", index, "alice", "Yes.");
    wait_type(&nats, "io.gitea.activity.comment_issue", 2).await;
    // Gitea's times have one-second resolution: an edit is told from the creation by a later
    // `updated_at`, so let the simulated clock move on first.
    g.advance_clock(2);
    g.edit_comment(
        "acme/widgets",
        c1,
        "Have you tried turning it off and on again?",
    );
    wait_type(&nats, "io.gitea.comment.edited", 1).await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async { g.requests().len() > reqs + 6 }).await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    let t = types(&msgs);
    let created = t
        .iter()
        .filter(|x| *x == "io.gitea.activity.comment_issue" || *x == "io.gitea.comment.created")
        .count();
    assert_eq!(
        created, 2,
        "each comment's creation once, from whichever read it first: {t:?}"
    );
    assert_eq!(
        t.iter().filter(|x| *x == "io.gitea.comment.edited").count(),
        1
    );
}

#[tokio::test]
async fn releases_published_edited_and_deleted_each_once() {
    let (nats, g) = setup().await;
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &repo_source("\"releases\""),
    );
    let run = run(cfg);
    let r1 = g.add_release("acme/widgets", "alice", "v1.0.0", "First");
    wait_for(30, "the release", || async {
        if stream_count(&nats.url(), STREAM).await == 0 {
            return false;
        }
        let t = types(&read_stream(&nats.url(), STREAM).await);
        t.iter()
            .any(|x| x == "io.gitea.activity.publish_release" || x == "io.gitea.release.published")
    })
    .await;
    g.edit_release("acme/widgets", r1, "First (fixed notes)");
    wait_type(&nats, "io.gitea.release.edited", 1).await;
    g.delete_release("acme/widgets", r1);
    wait_type(&nats, "io.gitea.release.deleted", 1).await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async { g.requests().len() > reqs + 6 }).await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    let t = types(&msgs);
    let published = t
        .iter()
        .filter(|x| *x == "io.gitea.activity.publish_release" || *x == "io.gitea.release.published")
        .count();
    assert_eq!(published, 1, "{t:?}");
    assert_eq!(
        t.iter().filter(|x| *x == "io.gitea.release.edited").count(),
        1
    );
    assert_eq!(
        t.iter()
            .filter(|x| *x == "io.gitea.release.deleted")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_status_that_changes_twice_between_polls_gives_both_events_in_order() {
    let (nats, g) = setup().await;
    g.set_branch_head(
        "acme/widgets",
        "main",
        "aaaa000000000000000000000000000000000001",
    );
    let mut cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &repo_source("\"statuses\""),
    );
    // One poll every two seconds, so the changes land between polls.
    cfg.poll.interval = std::time::Duration::from_secs(2);
    let run = run(cfg);
    let sha = "bbbb000000000000000000000000000000000002";
    g.set_branch_head("acme/widgets", "main", sha);
    g.add_status("acme/widgets", sha, "ci/build", "pending");
    g.add_status("acme/widgets", sha, "ci/build", "success");
    g.add_status("acme/widgets", sha, "ci/lint", "failure");
    wait_type(&nats, "io.gitea.status.failure", 1).await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    let t: Vec<String> = types(&msgs)
        .into_iter()
        .filter(|x| x.starts_with("io.gitea.status."))
        .collect();
    assert_eq!(
        t,
        [
            "io.gitea.status.pending",
            "io.gitea.status.success",
            "io.gitea.status.failure"
        ]
    );
    assert_eq!(msgs[0].body["data"]["sha"], sha);
    assert!(
        msgs.iter()
            .all(|m| m.subject.starts_with("gitea.acme.widgets.status_"))
    );
}

#[tokio::test]
async fn actions_runs_publish_each_state_and_a_server_without_actions_is_skipped() {
    let (nats, g) = setup().await;
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &repo_source("\"actions\""),
    );
    let running = run(cfg);
    let id = g.add_run(
        "acme/widgets",
        "ci.yml",
        "cccc000000000000000000000000000000000003",
        "queued",
    );
    wait_type(&nats, "io.gitea.actions_run.queued", 1).await;
    g.update_run("acme/widgets", id, "in_progress", None);
    wait_type(&nats, "io.gitea.actions_run.in_progress", 1).await;
    g.update_run("acme/widgets", id, "completed", Some("success"));
    wait_type(&nats, "io.gitea.actions_run.success", 1).await;
    running.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    assert_eq!(msgs.len(), 3);

    let (nats, g) = setup().await;
    g.set_actions_supported(false);
    g.push_action(gitea_sim::NewAction::push(
        "alice",
        "acme/widgets",
        "main",
        1,
    ));
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &repo_source("\"actions\""),
    );
    let run = run(cfg);
    wait_stream(&nats.url(), STREAM, 1, "the feed still flows").await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async { g.requests().len() > reqs + 4 }).await;
    run.stop().await;
    let runs_asked = g
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/actions/runs"))
        .count();
    assert_eq!(runs_asked, 1, "asked once, then skipped");
}

#[tokio::test]
async fn an_org_source_with_repos_polls_the_kinds_of_every_repository() {
    let (nats, g) = setup().await;
    g.add_repo("acme", "gears");
    let a = g.create_issue("acme/widgets", "alice", "One", false);
    let b = g.create_issue("acme/gears", "alice", "Two", false);
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\norg = \"acme\"\nrepos = true\nkinds = [\"issues\"]\n",
    );
    let run = run(cfg);
    g.label_issue("acme/widgets", a, "bob", "bug", true);
    g.label_issue("acme/gears", b, "bob", "bug", true);
    wait_type(&nats, "io.gitea.issue.labeled", 2).await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    let mut by_repo: HashMap<String, usize> = HashMap::new();
    for m in msgs
        .iter()
        .filter(|m| m.body["type"] == "io.gitea.issue.labeled")
    {
        *by_repo.entry(m.repo()).or_default() += 1;
    }
    assert_eq!(by_repo.get("acme/widgets"), Some(&1));
    assert_eq!(by_repo.get("acme/gears"), Some(&1));
}

#[tokio::test]
async fn enrich_attaches_the_issue_a_thin_feed_row_points_to() {
    let (nats, g) = setup().await;
    let index = g.create_issue("acme/widgets", "alice", "Crash on start", false);
    g.close_issue_as("acme/widgets", index, "bob");
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"\nenrich = true\n",
    );
    let run = run(cfg);
    wait_stream(&nats.url(), STREAM, 2, "create and close").await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    for m in &msgs {
        assert_eq!(m.body["data"]["issue"]["number"], index, "{}", m.body);
        assert_eq!(m.body["data"]["issue"]["title"], "Crash on start");
    }
    let fetched = g
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&format!("/issues/{index}")))
        .count();
    assert_eq!(fetched, 1, "fetched once, then cached");
}

#[tokio::test]
async fn releases_on_pages_smaller_than_the_client_guessed_are_all_seen_and_none_falsely_deleted() {
    let nats = Nats::start().await;
    // The server serves 7 a page; the client cannot read its settings (an older server:
    // 404), so it keeps guessing 50. The releases came from a migration: no feed rows, so
    // nothing else teaches the client the real page size.
    let g = gitea_with(gitea_sim::SimOptions {
        max_response_items: 7,
        ..Default::default()
    })
    .await;
    g.inject(gitea_sim::Fault::new(gitea_sim::FaultKind::Status(404)).on_path("/settings/api"));
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    for i in 0..5 {
        g.import_release("acme/widgets", "alice", &format!("v0.{i}"), "old");
    }
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &repo_source("\"releases\""),
    );
    let run = run(cfg);
    wait_type(&nats, "io.gitea.release.published", 5).await;
    // Now the five known releases fall off the first page.
    for i in 0..25 {
        g.import_release("acme/widgets", "alice", &format!("v1.{i}"), "new");
    }
    wait_type(&nats, "io.gitea.release.published", 30).await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async {
        g.requests().len() > reqs + 12
    })
    .await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    let t = types(&msgs);
    assert_eq!(
        t.iter()
            .filter(|x| *x == "io.gitea.release.deleted")
            .count(),
        0,
        "{t:?}"
    );
    let tags: std::collections::BTreeSet<String> = msgs
        .iter()
        .filter_map(|m| m.body["data"]["release"]["tag_name"].as_str())
        .map(str::to_string)
        .collect();
    assert_eq!(tags.len(), 30, "every release seen: {tags:?}");
}

#[tokio::test]
async fn a_repository_whose_endpoint_fails_fails_alone_and_is_backed_off() {
    let (nats, g) = setup().await;
    g.add_repo("acme", "gears");
    g.add_repo("acme", "sprockets");
    // Listed first (id order): issues disabled (404); another's issues answer 500.
    g.disable_issues("acme/widgets");
    g.fail_endpoint("acme/sprockets", "issues", 500);
    let b = g.create_issue("acme/gears", "alice", "Two", false);
    let mut cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\norg = \"acme\"\nrepos = true\nkinds = [\"issues\"]\n",
    );
    cfg.gitea.max_retries = 0;
    let run = run(cfg);
    g.label_issue("acme/gears", b, "bob", "bug", true);
    wait_type(&nats, "io.gitea.issue.labeled", 1).await;
    // The org's feed goes on at its own pace (no backoff): a new action arrives.
    g.push_action(gitea_sim::NewAction::push("alice", "acme/gears", "main", 1));
    wait_type(&nats, "io.gitea.activity.commit_repo", 1).await;
    let feed_polls = |g: &FakeGitea| {
        g.requests()
            .iter()
            .filter(|r| r.path.ends_with("/orgs/acme/activities/feeds"))
            .count()
    };
    let start = feed_polls(&g);
    wait_for(30, "20 more feed polls", || async {
        feed_polls(&g) >= start + 20
    })
    .await;
    run.stop().await;
    let polls = feed_polls(&g);
    for repo in ["widgets", "sprockets"] {
        let asked = g
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(&format!("/repos/acme/{repo}/issues")))
            .count();
        assert!(
            asked * 3 <= polls,
            "acme/{repo}: failing issues asked {asked} times in {polls} polls"
        );
    }
    let gears = g
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/repos/acme/gears/issues"))
        .count();
    assert!(
        gears * 2 >= polls,
        "gears asked {gears} times in {polls} polls"
    );
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
}

#[tokio::test]
async fn release_events_carry_gitea_s_own_time_in_the_server_s_offset() {
    let (nats, g) = setup().await;
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &repo_source("\"releases\""),
    );
    let run = run(cfg);
    // Imported: only the releases endpoint announces it.
    let r1 = g.import_release("acme/widgets", "alice", "v1.0.0", "First");
    wait_type(&nats, "io.gitea.release.published", 1).await;
    g.advance_clock(30);
    g.edit_release("acme/widgets", r1, "First (fixed notes)");
    wait_type(&nats, "io.gitea.release.edited", 1).await;
    g.advance_clock(30);
    g.delete_release("acme/widgets", r1);
    wait_type(&nats, "io.gitea.release.deleted", 1).await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    let mut published_at = None;
    for m in msgs.iter().filter(|m| m.body["type"] != "") {
        let time = m.body["time"].as_str().unwrap_or("");
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with("+08:00"),
            "{}: time {time:?}",
            m.body["type"]
        );
        let own = m.body["data"]["release"]["published_at"].as_str();
        assert_eq!(Some(time), own, "{}", m.body["type"]);
        published_at.get_or_insert(time.to_string());
        assert_eq!(Some(time), published_at.as_deref());
    }
    assert_eq!(msgs.len(), 3);
}

/// The Gitea object's own timestamp that an event of `ty` must carry as its `time`.
fn own_time(body: &serde_json::Value) -> Option<&str> {
    let ty = body["type"].as_str().unwrap_or("");
    let d = &body["data"];
    let noun = ty.strip_prefix("io.gitea.")?.split('.').next()?;
    match (noun, ty.rsplit('.').next()?) {
        ("activity", _) => d["activity"]["created"].as_str(),
        ("issue" | "pull_request", "edited") => d["issue"]["updated_at"].as_str(),
        ("issue" | "pull_request", _) => d["timeline"]["created_at"].as_str(),
        ("comment", "edited") => d["comment"]["updated_at"].as_str(),
        ("comment", _) => d["comment"]["created_at"].as_str(),
        ("status", _) => d["status"]["created_at"].as_str(),
        ("actions_run", _) => d["run"]["updated_at"].as_str(),
        ("release", _) => d["release"]["published_at"].as_str(),
        _ => None,
    }
}

#[tokio::test]
async fn every_kind_s_events_carry_gitea_s_own_time_in_the_server_s_offset() {
    let (nats, g) = setup().await;
    let sha = "dddd000000000000000000000000000000000004";
    g.set_branch_head("acme/widgets", "main", sha);
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &repo_source("\"issues\", \"comments\", \"releases\", \"statuses\", \"actions\""),
    );
    let run = run(cfg);
    let index = g.create_issue("acme/widgets", "alice", "Crash on start", false);
    g.label_issue("acme/widgets", index, "bob", "bug", true);
    g.add_status("acme/widgets", sha, "ci/build", "success");
    let run_id = g.add_run("acme/widgets", "ci.yml", sha, "queued");
    g.import_release("acme/widgets", "alice", "v1.0.0", "First");
    g.comment_on("acme/widgets", index, "bob", "Seen it too");
    // Migrated: no feed row, so only the comments endpoint announces it.
    let c = g.import_comment("acme/widgets", index, "carol", "Here as well");
    wait_type(&nats, "io.gitea.issue.labeled", 1).await;
    wait_type(&nats, "io.gitea.actions_run.queued", 1).await;
    // Later changes, so that edits are told from creations (one-second resolution).
    g.advance_clock(30);
    g.edit_comment("acme/widgets", c, "Seen it too, on Linux");
    g.edit_issue(
        "acme/widgets",
        index,
        "alice",
        None,
        Some("Steps: start it"),
    );
    g.update_run("acme/widgets", run_id, "completed", Some("success"));
    let wanted = [
        "io.gitea.issue.labeled",
        "io.gitea.comment.created",
        "io.gitea.issue.edited",
        "io.gitea.comment.edited",
        "io.gitea.status.success",
        "io.gitea.actions_run.queued",
        "io.gitea.actions_run.success",
        "io.gitea.release.published",
    ];
    for ty in wanted {
        wait_type(&nats, ty, 1).await;
    }
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    for m in &msgs {
        let time = m.body["time"].as_str().unwrap_or("");
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with("+08:00"),
            "{}: time {time:?}",
            m.body["type"]
        );
        assert_eq!(
            Some(time),
            own_time(&m.body),
            "{}: {}",
            m.body["type"],
            m.body["data"]
        );
    }
}

/// Moves the last 404 of `repo`'s actions cursor `secs` into the past: the time that
/// passes before the sourcer asks again, without waiting for it.
async fn age_actions_check(nats: &Nats, repo: &str, secs: i64) {
    let js = async_nats::jetstream::new(nats.client().await);
    let kv = js
        .get_key_value("gitea_cursors")
        .await
        .expect("the cursor bucket");
    let key = format!("kind/actions/{repo}");
    // The sourcer writes the cursor every poll: retry until this write lands between two.
    wait_for(20, "the aged actions cursor written", || {
        let kv = kv.clone();
        let key = key.clone();
        async move {
            let Ok(Some(entry)) = kv.entry(&key).await else {
                return false;
            };
            let Ok(mut cursor) = serde_json::from_slice::<serde_json::Value>(&entry.value) else {
                return false;
            };
            if cursor["state"]["unsupported"] != true {
                return false;
            }
            let at = cursor["state"]["checked_at"].as_i64().unwrap_or(0);
            cursor["state"]["checked_at"] = (at - secs).into();
            let body = serde_json::to_vec(&cursor).expect("json");
            kv.update(&key, body.into(), entry.revision).await.is_ok()
        }
    })
    .await;
}

#[tokio::test]
async fn actions_enabled_after_a_404_is_asked_again_after_the_recheck_interval_and_its_runs_flow() {
    let (nats, g) = setup().await;
    g.set_actions_supported(false);
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &repo_source("\"actions\""),
    );
    let run = run(cfg);
    let runs_asked = |g: &FakeGitea| {
        g.requests()
            .iter()
            .filter(|r| r.path.ends_with("/actions/runs"))
            .count()
    };
    wait_for(20, "actions asked", || async { runs_asked(&g) == 1 }).await;
    // The server gets Actions, and a run starts.
    g.set_actions_supported(true);
    let id = g.add_run(
        "acme/widgets",
        "ci.yml",
        "eeee000000000000000000000000000000000005",
        "queued",
    );
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async { g.requests().len() > reqs + 4 }).await;
    assert_eq!(runs_asked(&g), 1, "not asked again before the interval");
    // The interval passes.
    age_actions_check(
        &nats,
        "acme/widgets",
        gitea_nats_sourcer::poll::repo::ACTIONS_RECHECK_SECS,
    )
    .await;
    wait_type(&nats, "io.gitea.actions_run.queued", 1).await;
    g.update_run("acme/widgets", id, "completed", Some("success"));
    wait_type(&nats, "io.gitea.actions_run.success", 1).await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    assert_eq!(
        types(&msgs),
        [
            "io.gitea.actions_run.queued",
            "io.gitea.actions_run.success"
        ]
    );
    assert_eq!(msgs[0].body["data"]["run"]["id"], id);
}

/// Moves the fake Gitea's clock to Unix second `t`.
fn clock_to(g: &FakeGitea, t: i64) {
    g.advance_clock(t - g.now().timestamp());
}

#[tokio::test]
async fn a_start_date_begins_every_kind_at_local_midnight_and_publishes_nothing_of_the_day_before()
{
    let (nats, g) = setup().await;
    let now = g.now();
    // Yesterday in the server's zone (+08:00): its local midnight is 16:00 UTC the day
    // before, eight hours before UTC midnight.
    let day = now.date_naive() - chrono::Days::new(1);
    let midnight = day
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_local_timezone(*now.offset())
        .single()
        .expect("a fixed offset")
        .timestamp();
    let sha = "ffff000000000000000000000000000000000006";
    let index = g.create_issue("acme/widgets", "alice", "Crash on start", false);
    // A minute before local midnight: the day before the start.
    clock_to(&g, midnight - 60);
    g.set_branch_head("acme/widgets", "main", sha);
    g.label_issue("acme/widgets", index, "bob", "early", true);
    let c_early = g.import_comment("acme/widgets", index, "bob", "early");
    g.import_release("acme/widgets", "alice", "v0.9", "early");
    let run_early = g.add_run("acme/widgets", "ci.yml", sha, "queued");
    g.add_status("acme/widgets", sha, "ci/early", "failure");
    // A minute after: the start day.
    clock_to(&g, midnight + 60);
    g.label_issue("acme/widgets", index, "bob", "late", true);
    let c_late = g.import_comment("acme/widgets", index, "bob", "late");
    g.import_release("acme/widgets", "alice", "v1.0", "late");
    let run_late = g.add_run("acme/widgets", "ci.yml", sha, "queued");
    g.add_status("acme/widgets", sha, "ci/late", "success");
    clock_to(&g, now.timestamp());
    let cfg = config(
        &g.url(),
        &nats.url(),
        &format!("start = \"{day}\""),
        &repo_source("\"issues\", \"comments\", \"releases\", \"statuses\", \"actions\""),
    );
    let run = run(cfg);
    for ty in [
        "io.gitea.issue.labeled",
        "io.gitea.comment.created",
        "io.gitea.release.published",
        "io.gitea.actions_run.queued",
        "io.gitea.status.success",
    ] {
        wait_type(&nats, ty, 1).await;
    }
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async {
        g.requests().len() > reqs + 20
    })
    .await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    let repo_events: Vec<&Msg> = msgs
        .iter()
        .filter(|m| {
            !m.body["type"]
                .as_str()
                .unwrap_or("")
                .starts_with("io.gitea.activity.")
        })
        .collect();
    let d = |m: &Msg| m.body["data"].clone();
    let label = |m: &Msg| d(m)["timeline"]["label"]["name"].clone();
    assert!(repo_events.iter().any(|m| label(m) == "late"));
    assert!(repo_events.iter().any(|m| d(m)["comment"]["id"] == c_late));
    assert!(
        repo_events
            .iter()
            .any(|m| d(m)["release"]["tag_name"] == "v1.0")
    );
    assert!(repo_events.iter().any(|m| d(m)["run"]["id"] == run_late));
    assert!(
        repo_events
            .iter()
            .any(|m| d(m)["status"]["context"] == "ci/late")
    );
    for m in &repo_events {
        assert!(
            label(m) != "early"
                && d(m)["comment"]["id"] != c_early
                && d(m)["release"]["tag_name"] != "v0.9"
                && d(m)["run"]["id"] != run_early
                && d(m)["status"]["context"] != "ci/early",
            "published from before the start day: {}",
            m.body
        );
    }
    assert_eq!(repo_events.len(), 5, "{:?}", types(&msgs));
}

#[tokio::test]
async fn start_now_publishes_no_change_of_the_lookback_window_before_the_start() {
    let (nats, g) = setup().await;
    let index = g.create_issue("acme/widgets", "alice", "Crash on start", false);
    // A minute ago: inside the trailing window the first poll reads, but before the start.
    g.advance_clock(-60);
    g.label_issue("acme/widgets", index, "bob", "before", true);
    let c_before = g.import_comment("acme/widgets", index, "bob", "before");
    g.advance_clock(60);
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"now\"",
        &repo_source("\"issues\", \"comments\""),
    );
    let run = run(cfg);
    // Both kinds have their cursors: they started.
    let js = async_nats::jetstream::new(nats.client().await);
    wait_for(20, "the kinds' cursors", || {
        let js = js.clone();
        async move {
            let Ok(kv) = js.get_key_value("gitea_cursors").await else {
                return false;
            };
            let mut have = 0;
            for k in ["kind/issues/acme/widgets", "kind/comments/acme/widgets"] {
                if matches!(kv.get(k).await, Ok(Some(_))) {
                    have += 1;
                }
            }
            have == 2
        }
    })
    .await;
    g.advance_clock(2);
    g.label_issue("acme/widgets", index, "bob", "after", true);
    let c_after = g.import_comment("acme/widgets", index, "bob", "after");
    wait_type(&nats, "io.gitea.issue.labeled", 1).await;
    wait_type(&nats, "io.gitea.comment.created", 1).await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async {
        g.requests().len() > reqs + 10
    })
    .await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    let t = types(&msgs);
    let labeled: Vec<&Msg> = msgs
        .iter()
        .filter(|m| m.body["type"] == "io.gitea.issue.labeled")
        .collect();
    assert_eq!(labeled.len(), 1, "{t:?}");
    assert_eq!(
        labeled[0].body["data"]["timeline"]["label"]["name"],
        "after"
    );
    let comments: Vec<&serde_json::Value> = msgs
        .iter()
        .filter(|m| m.body["type"] == "io.gitea.comment.created")
        .map(|m| &m.body["data"]["comment"]["id"])
        .collect();
    assert_eq!(
        comments,
        [&serde_json::json!(c_after)],
        "not {c_before}: {t:?}"
    );
}

#[tokio::test]
async fn with_repos_sweep_an_org_reads_the_kinds_of_active_repositories_every_poll_and_the_others_in_turn()
 {
    let (nats, g) = setup().await;
    for i in 0..9 {
        g.add_repo("acme", &format!("quiet{i}"));
    }
    let quiet = g.create_issue("acme/quiet4", "alice", "Slow", false);
    // Ten repositories, a sweep of 2 s at polls every 200 ms: one quiet repository a poll.
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"now\"\nrepos_sweep = \"2s\"",
        "[[source]]\norg = \"acme\"\nrepos = true\nkinds = [\"issues\"]\n",
    );
    let run = run(cfg);
    // acme/widgets is active in the feed: a push a poll or so.
    let issues_of = |g: &FakeGitea, repo: &str| {
        g.requests()
            .iter()
            .filter(|r| r.path.ends_with(&format!("/repos/{repo}/issues")))
            .count()
    };
    wait_for(30, "the org's first sweep", || async {
        issues_of(&g, "acme/quiet8") > 0
    })
    .await;
    g.label_issue("acme/quiet4", quiet, "bob", "bug", true);
    let before = (issues_of(&g, "acme/widgets"), issues_of(&g, "acme/quiet2"));
    let polls = || {
        g.requests()
            .iter()
            .filter(|r| r.path.ends_with("/orgs/acme/activities/feeds"))
            .count()
    };
    let p0 = polls();
    while polls() < p0 + 25 {
        g.push_action(gitea_sim::NewAction::push("bob", "acme/widgets", "main", 1));
        let p = polls();
        wait_for(10, "the next org poll", || async { polls() > p }).await;
    }
    wait_type(&nats, "io.gitea.issue.labeled", 1).await;
    run.stop().await;
    let active = issues_of(&g, "acme/widgets") - before.0;
    let swept = issues_of(&g, "acme/quiet2") - before.1;
    assert!(
        active >= 20,
        "the active repository's issues read {active} times in 25 polls"
    );
    assert!(
        (1..=4).contains(&swept),
        "a quiet repository's issues read {swept} times in 25 polls (once per sweep of 10)"
    );
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    assert!(
        msgs.iter()
            .any(|m| m.body["type"] == "io.gitea.issue.labeled" && m.repo() == "acme/quiet4"),
        "the quiet repository's change still comes, with its sweep"
    );
}

#[tokio::test]
async fn with_repos_sweep_one_issue_search_for_the_org_brings_a_quiet_repositorys_change_before_its_turn()
 {
    let (nats, g) = setup().await;
    for i in 0..29 {
        g.add_repo("acme", &format!("quiet{i:02}"));
    }
    let last = "acme/quiet28";
    let index = g.create_issue(last, "alice", "Slow", false);
    // Thirty repositories, one a poll (every second): the last one's turn is ~30 s away.
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"now\"\nrepos_sweep = \"1h\"",
        "[[source]]\norg = \"acme\"\ninterval = \"1s\"\nrepos = true\nkinds = [\"issues\"]\n",
    );
    let run = run(cfg);
    let searches = || {
        g.requests()
            .iter()
            .filter(|r| r.path == "/api/v1/repos/issues/search" && r.query.contains("owner=acme"))
            .count()
    };
    let issues_of = |repo: &str| {
        g.requests()
            .iter()
            .filter(|r| r.path.ends_with(&format!("/repos/{repo}/issues")))
            .count()
    };
    // The first poll sets where the searches start (and reads the first quiet repository).
    wait_for(30, "the org's first poll", || async {
        issues_of("acme/quiet00") > 0 || issues_of("acme/widgets") > 0
    })
    .await;
    let read_before = issues_of(last);
    let changed = std::time::Instant::now();
    // A label is no feed row: only the search can tell which repository changed.
    g.label_issue(last, index, "bob", "bug", true);
    wait_type(&nats, "io.gitea.issue.labeled", 1).await;
    let took = changed.elapsed();
    run.stop().await;
    assert!(searches() >= 1, "the org's changes found by its search");
    assert!(
        issues_of(last) > read_before,
        "the changed repository read before its turn"
    );
    assert!(
        took < std::time::Duration::from_secs(15),
        "the change came after {took:?}, not at its turn in the sweep (~30 s)"
    );
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
}
