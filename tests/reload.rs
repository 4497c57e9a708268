//! Reloads: SIGHUP rereads the config; an added source starts, a removed one stops, a changed
//! one (its interval, its kinds) restarts from its cursor, mid catch-up too, losing and
//! repeating nothing. (Under `[ha]`: `tests/ha.rs`.)

mod support;

use std::process::{Command, Stdio};

use gitea_sim::{NewAction, SimOptions};
use support::*;

#[tokio::test]
async fn sighup_rereads_the_source_list_and_keeps_cursors() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "one");
    g.add_repo("acme", "two");
    g.push_action(NewAction::push("alice", "acme/one", "main", 1));
    g.push_action(NewAction::push("alice", "acme/two", "main", 1));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let write = |sources: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[gitea]\nurl = \"{}\"\n[nats]\nurl = \"{}\"\n[poll]\ninterval = \"200ms\"\nstart = \"beginning\"\n{sources}",
                g.url(),
                nats.url()
            ),
        )
        .unwrap()
    };
    write("[[source]]\nrepo = \"acme/one\"\n");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_stream(&nats.url(), "GITEA_EVENTS", 1, "acme/one published").await;
    write("[[source]]\nrepo = \"acme/one\"\n[[source]]\nrepo = \"acme/two\"\n");
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    wait_stream(
        &nats.url(),
        "GITEA_EVENTS",
        2,
        "acme/two published after SIGHUP",
    )
    .await;
    g.push_action(NewAction::push("bob", "acme/one", "main", 1));
    wait_stream(
        &nats.url(),
        "GITEA_EVENTS",
        3,
        "acme/one still polled, from its cursor",
    )
    .await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let msgs = read_stream(&nats.url(), "GITEA_EVENTS").await;
    assert_eq!(msgs.len(), 3);
    assert_no_repeats(&msgs);
}

/// How often each `Nats-Msg-Id` is stored in the stream (every stored copy counted).
fn counts_per_id(msgs: &[Msg]) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for m in msgs {
        *counts.entry(m.msg_id.clone()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn sighup_notices_new_kinds_of_a_repo_source_and_publishes_label_changes() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let index = g.create_issue("acme/widgets", "alice", "Crash on start", false);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let write = |source_extra: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[gitea]\nurl = \"{}\"\n[nats]\nurl = \"{}\"\n[poll]\ninterval = \"200ms\"\nstart = \"beginning\"\n\
                 [[source]]\nrepo = \"acme/widgets\"\n{source_extra}",
                g.url(),
                nats.url()
            ),
        )
        .unwrap()
    };
    write("");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Reaper(Some(child));
    wait_stream(
        &nats.url(),
        "GITEA_EVENTS",
        1,
        "the create_issue row published",
    )
    .await;
    write("kinds = [\"issues\"]\n");
    signal(child.child(), "-HUP");
    // The label change happens after the reload was asked for; only the issues endpoint
    // (kinds = ["issues"]) turns it into an event.
    g.label_issue("acme/widgets", index, "bob", "bug", true);
    wait_for(30, "an io.gitea.issue.labeled event", || async {
        read_stream(&nats.url(), "GITEA_EVENTS")
            .await
            .iter()
            .any(|m| m.body["type"] == "io.gitea.issue.labeled")
    })
    .await;
    stop_child(child.take()).await;
    let msgs = read_stream(&nats.url(), "GITEA_EVENTS").await;
    assert_no_repeats(&msgs);
}

#[tokio::test]
async fn sighup_changing_the_interval_mid_catch_up_loses_nothing_and_repeats_nothing() {
    let nats = Nats::start().await;
    // Small pages: the history is too deep for the live walk, so the source catches up day
    // by day; enrichment makes each day's batch take a while at 5 requests a second.
    let g = gitea_with(SimOptions {
        max_response_items: 4,
        ..Default::default()
    })
    .await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let (days, per_day) = (5i64, 6i64);
    let now = g.now();
    for d in 0..days {
        for i in 0..per_day {
            let at = now - chrono::Duration::days(days - d) + chrono::Duration::minutes(i);
            g.push_action(
                NewAction::comment("bob", "acme/widgets", 1 + d * per_day + i, "hi").at(at),
            );
        }
    }
    let total = (days * per_day) as usize;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let write = |interval: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[gitea]\nurl = \"{}\"\nrequests_per_second = 5\nburst = 1\n\
                 [nats]\nurl = \"{}\"\nduplicate_window = \"1s\"\n\
                 [poll]\ninterval = \"{interval}\"\njitter = 0.0\nstart = \"beginning\"\nlive_pages = 1\n\
                 [[source]]\nrepo = \"acme/widgets\"\nenrich = true\n",
                g.url(),
                nats.url()
            ),
        )
        .unwrap()
    };
    write("200ms");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Reaper(Some(child));
    wait_stream(&nats.url(), "GITEA_EVENTS", 1, "the catch-up has begun").await;
    let at_reload = stream_count(&nats.url(), "GITEA_EVENTS").await as usize;
    assert!(
        at_reload < total,
        "the catch-up ended before the reload ({at_reload} of {total})"
    );
    write("300ms");
    signal(child.child(), "-HUP");
    wait_stream(
        &nats.url(),
        "GITEA_EVENTS",
        total as u64,
        "every row published",
    )
    .await;
    // A few more polls after the catch-up: nothing more may appear.
    let reqs = g.requests().len();
    wait_for(30, "more polls", || async { g.requests().len() > reqs + 6 }).await;
    stop_child(child.take()).await;
    let msgs = read_stream(&nats.url(), "GITEA_EVENTS").await;
    let repeated: Vec<_> = counts_per_id(&msgs)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(repeated.is_empty(), "stored more than once: {repeated:?}");
    assert_eq!(msgs.len(), total, "every row exactly once");
}
