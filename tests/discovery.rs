//! `[[source]] all = true`: every org and every user repository the token sees becomes a
//! source; a new one is picked up without a restart, one that is gone is stopped.

mod support;

use std::time::Instant;

use gitea_sim::{NewAction, SimOptions};
use support::*;

const STREAM: &str = "GITEA_EVENTS";

fn published_in(msgs: &[Msg], repo: &str) -> usize {
    msgs.iter().filter(|m| m.repo() == repo).count()
}

/// Feed requests of `org` that arrived after `t`.
fn org_polls_after(g: &gitea_sim::FakeGitea, org: &str, t: Instant) -> usize {
    let path = format!("/api/v1/orgs/{org}/activities/feeds");
    g.requests()
        .iter()
        .filter(|r| r.at > t && r.path == path)
        .count()
}

#[tokio::test]
async fn all_sources_are_found_new_ones_start_without_a_restart_and_gone_ones_stop() {
    let nats = Nats::start().await;
    // Not a site admin's token: /admin/orgs answers 403, /user/orgs is used.
    let g = gitea_with(SimOptions {
        admin: false,
        ..SimOptions::default()
    })
    .await;
    g.add_user("alice");
    g.add_org("acme");
    g.add_org("globex");
    g.add_repo("acme", "widgets");
    g.add_repo("globex", "gears");
    g.add_repo("alice", "dot.files");
    for repo in ["acme/widgets", "globex/gears", "alice/dot.files"] {
        g.push_action(NewAction::push("alice", repo, "main", 1));
    }
    let running = run(config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nrepos_refresh = \"1s\"",
        "[[source]]\nall = true",
    ));
    let url = nats.url();
    wait_stream(&url, STREAM, 3, "the three repositories' pushes").await;
    let reqs = g.requests();
    assert!(
        reqs.iter()
            .any(|r| r.path == "/api/v1/admin/orgs" && r.status == 403)
            && reqs.iter().any(|r| r.path == "/api/v1/user/orgs"),
        "an ordinary token falls back from /admin/orgs to /user/orgs"
    );
    assert!(
        org_polls_after(
            &g,
            "acme",
            Instant::now() - std::time::Duration::from_secs(60)
        ) > 0
            && reqs
                .iter()
                .any(|r| r.path == "/api/v1/repos/alice/dot.files/activities/feeds"),
        "org feeds for orgs, a repository feed for a user's repository"
    );
    // A new org with a repository and an action: picked up without a restart.
    g.add_org("initech");
    g.add_repo("initech", "tps");
    g.push_action(NewAction::push("alice", "initech/tps", "main", 1));
    wait_stream(&url, STREAM, 4, "the new org's push").await;
    // globex disappears: its source stops.
    let unlisted = Instant::now();
    g.unlist("globex");
    // Stopped once a listing after the change has been applied: then acme goes on being
    // polled while globex is not.
    wait_for(20, "a listing after globex went away", || async {
        g.requests()
            .iter()
            .any(|r| r.at > unlisted && r.path == "/api/v1/repos/search")
    })
    .await;
    let quiet_since = std::sync::Mutex::new(Instant::now());
    wait_for(30, "acme polled while globex is not", || {
        let g = &g;
        let quiet = &quiet_since;
        async move {
            let mut since = quiet.lock().expect("lock");
            if org_polls_after(g, "globex", *since) > 0 {
                // Still running (the listing's result not applied yet): look again.
                *since = Instant::now();
                return false;
            }
            org_polls_after(g, "acme", *since) >= 5
        }
    })
    .await;
    g.push_action(NewAction::push("alice", "globex/gears", "main", 1));
    g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    wait_stream(&url, STREAM, 5, "the acme push after globex went away").await;
    running.stop().await;
    let msgs = read_stream(&url, STREAM).await;
    assert_no_repeats(&msgs);
    let got: Vec<(String, String)> = msgs
        .iter()
        .map(|m| (m.repo(), m.body["type"].to_string()))
        .collect();
    assert_eq!(published_in(&msgs, "acme/widgets"), 2, "{got:?}");
    assert_eq!(published_in(&msgs, "initech/tps"), 1);
    assert_eq!(published_in(&msgs, "alice/dot.files"), 1);
    assert_eq!(
        published_in(&msgs, "globex/gears"),
        1,
        "the push after globex went away is not published"
    );
}
