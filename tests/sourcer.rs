//! The sourcer end to end, in-process: a real nats-server, the fake Gitea, `run::run`.
//! Each test is named for the property it asserts.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use gitea_sim::{FakeGitea, Fault, FaultKind, NewAction, SimOptions};
use support::*;

const STREAM: &str = "GITEA_EVENTS";

fn ago(g: &FakeGitea, secs: i64) -> DateTime<FixedOffset> {
    g.now() - chrono::Duration::seconds(secs)
}

fn world(g: &FakeGitea) {
    g.add_user("alice");
    g.add_user("bob");
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("alice", "dot.files");
}

/// Per logical identity, how often the stream holds it.
fn counts(msgs: &[Msg]) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for m in msgs {
        *c.entry(msg_identity(m)).or_default() += 1;
    }
    c
}

fn truth(g: &FakeGitea, repo_filter: impl Fn(&str) -> bool) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for a in g.logical_actions() {
        if repo_filter(&a.repo) {
            *c.entry(a.identity()).or_default() += 1;
        }
    }
    c
}

/// Within each source repository, events are in `created` order.
fn assert_ordered_per_repo(msgs: &[Msg]) {
    let mut last: HashMap<String, i64> = HashMap::new();
    for m in msgs {
        let t = m.time();
        let prev = last.entry(m.repo()).or_insert(i64::MIN);
        assert!(
            t >= *prev,
            "out of order in {}: {} after {}",
            m.repo(),
            t,
            prev
        );
        *prev = t;
    }
}

async fn wait_count(nats: &Nats, n: u64, what: &str) {
    let url = nats.url();
    wait_for(30, what, || {
        let url = url.clone();
        async move { stream_count(&url, STREAM).await >= n }
    })
    .await;
}

#[tokio::test]
async fn start_at_beginning_publishes_history_over_several_days_once_and_in_order() {
    let nats = Nats::start().await;
    let g = gitea_with(SimOptions {
        max_response_items: 10,
        ..Default::default()
    })
    .await;
    world(&g);
    // 3 days of history, several actions in the same second.
    for i in 0..60i64 {
        let at = ago(&g, 3 * 86400 - i * 3600 - (i % 3));
        g.push_action(
            NewAction::push("alice", "acme/widgets", "main", 1 + (i as usize % 3)).at(at),
        );
        if i % 4 == 0 {
            g.push_action(NewAction::close_issue("bob", "acme/widgets", 1).at(at));
        }
    }
    let expected = g.action_count() as u64;
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nlive_pages = 2",
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let run = run(cfg);
    wait_count(&nats, expected, "all history published").await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len() as u64, expected);
    assert_no_repeats(&msgs);
    assert_eq!(counts(&msgs), truth(&g, |_| true));
    assert_ordered_per_repo(&msgs);
}

#[tokio::test]
async fn start_at_now_publishes_only_what_happens_after_start() {
    let nats = Nats::start().await;
    let g = gitea().await;
    world(&g);
    for i in 0..10 {
        g.push_action(NewAction::push("alice", "acme/widgets", "old", 1).at(ago(&g, 100 - i)));
    }
    let cfg = config(
        &g.url(),
        &nats.url(),
        "",
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let run = run(cfg);
    // Wait until the cursor exists (the first poll happened), then add new actions.
    let url = nats.url();
    wait_for(20, "cursor created", || {
        let url = url.clone();
        async move {
            let c = async_nats::connect(url).await.unwrap();
            let js = async_nats::jetstream::new(c);
            match js.get_key_value("gitea_cursors").await {
                Ok(kv) => kv.get("repo/acme/widgets").await.ok().flatten().is_some(),
                Err(_) => false,
            }
        }
    })
    .await;
    for _ in 0..5 {
        g.push_action(NewAction::push("bob", "acme/widgets", "new", 2));
    }
    wait_count(&nats, 5, "new actions published").await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), 5, "only the 5 new actions");
    assert!(
        msgs.iter()
            .all(|m| m.activity()["ref_name"] == "refs/heads/new")
    );
}

#[tokio::test]
async fn live_polling_and_restart_resume_from_the_kv_cursor_without_loss_or_repeat() {
    let nats = Nats::start().await;
    let g = gitea().await;
    world(&g);
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"\n[[source]]\nrepo = \"alice/dot.files\"",
    );
    for _ in 0..5 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    }
    let first = run(cfg.clone());
    wait_count(&nats, 5, "first batch").await;
    for _ in 0..5 {
        g.push_action(NewAction::push("alice", "alice/dot.files", "main", 1));
    }
    wait_count(&nats, 10, "live polling picks up new actions").await;
    first.stop().await;
    // While stopped: more activity, including same-second ties.
    let at = g.now();
    for i in 0..8 {
        g.push_action(NewAction::comment("bob", "acme/widgets", 1, &format!("c{i}")).at(at));
    }
    let second = run(cfg);
    wait_count(&nats, 18, "restart catches up").await;
    // One more poll cycle happens before we stop, proving nothing is re-published.
    g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    wait_count(&nats, 19, "still live after restart").await;
    second.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), 19);
    assert_no_repeats(&msgs);
    assert_eq!(counts(&msgs), truth(&g, |_| true));
    assert_ordered_per_repo(&msgs);
}

#[tokio::test]
async fn same_action_through_org_and_repository_feeds_is_published_once() {
    let nats = Nats::start().await;
    let g = gitea().await;
    world(&g);
    let base = ago(&g, 50);
    for i in 0..10i64 {
        let at = base + chrono::Duration::seconds(i * 2);
        // Copies a second later than the original, for unique and repeatable kinds.
        g.push_action(
            NewAction::push("alice", "acme/widgets", "main", 1)
                .at(at)
                .copy_delay(1),
        );
        g.push_action(
            NewAction::close_issue("bob", "acme/widgets", 100 + i)
                .at(at)
                .copy_delay(i % 2),
        );
        if i % 5 == 0 {
            // The same issue closed again later (after a reopen): a repeat, not a copy.
            g.push_action(
                NewAction::close_issue("bob", "acme/widgets", 3)
                    .at(at)
                    .copy_delay(1),
            );
        }
        g.push_action(
            NewAction::comment("bob", "acme/widgets", 3, "hi")
                .at(at)
                .copy_delay(1),
        );
    }
    let expected = g.action_count() as u64;
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"",
    );
    let run = run(cfg);
    wait_count(&nats, expected, "every action").await;
    // Let both sources poll a few more times: nothing more may arrive.
    let reqs = g.requests().len();
    wait_for(20, "more polls of both feeds", || async {
        g.requests().len() > reqs + 6
    })
    .await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(
        msgs.len() as u64,
        expected,
        "one event per action, not per feed"
    );
    assert_no_repeats(&msgs);
    assert_eq!(counts(&msgs), truth(&g, |_| true));
}

#[tokio::test]
async fn ties_and_late_visible_rows_are_published_exactly_once() {
    let nats = Nats::start().await;
    let g = gitea_with(SimOptions {
        max_response_items: 5,
        ..Default::default()
    })
    .await;
    world(&g);
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let run = run(cfg);
    let same_second = ago(&g, 5);
    let mut hidden = Vec::new();
    for i in 0..12 {
        g.push_action(
            NewAction::comment("alice", "acme/widgets", 1, &format!("tie {i}")).at(same_second),
        );
    }
    // Rows that become visible after newer rows were served, with an older `created`.
    for i in 0..4 {
        hidden.push(
            g.push_action(
                NewAction::comment("bob", "acme/widgets", 2, &format!("late {i}"))
                    .at(ago(&g, 20))
                    .hidden(),
            ),
        );
    }
    // Newer rows follow the tie before all of it is asserted: on MariaDB a tie larger than
    // a page at the head of a feed can keep a row out of every page alignment (its first
    // page scans an index, the others sort) until a newer row moves it down.
    wait_count(&nats, 1, "the tie seen").await;
    for _ in 0..3 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    }
    wait_count(&nats, 15, "the tied rows and the newer rows").await;
    for h in hidden {
        g.reveal(h);
    }
    wait_count(&nats, 19, "late rows").await;
    let reqs = g.requests().len();
    wait_for(20, "a few more polls", || async {
        g.requests().len() > reqs + 4
    })
    .await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), 19);
    assert_no_repeats(&msgs);
    assert_eq!(counts(&msgs), truth(&g, |_| true));
}

#[tokio::test]
async fn pages_shifting_during_a_walk_lose_and_repeat_nothing() {
    let nats = Nats::start().await;
    let g = gitea_with(SimOptions {
        max_response_items: 5,
        ..Default::default()
    })
    .await;
    world(&g);
    for i in 0..40 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", 1).at(ago(&g, 200 - i * 2)));
    }
    let victims: Vec<_> = (0..3)
        .map(|i| {
            g.push_action(
                NewAction::comment("bob", "acme/widgets", 9, &format!("doomed {i}"))
                    .at(ago(&g, 150 - i)),
            )
        })
        .collect();
    // After page 2 of a walk: new rows arrive (pages shift down) and a row is soft-deleted
    // (pages shift up), every time until the victims are gone.
    let victims_hook = std::sync::Mutex::new(victims);
    g.set_feed_hook(Some(Box::new(move |page, w| {
        if page.page == 2 {
            w.push_action(NewAction::push("bob", "acme/widgets", "shift", 1));
            if let Some(v) = victims_hook.lock().unwrap().pop() {
                w.soft_delete(v);
            }
        }
    })));
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nlookback = \"10m\"",
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let run = run(cfg);
    wait_for(30, "stream holds every visible action", || async {
        stream_count(&nats.url(), STREAM).await >= 40
    })
    .await;
    g.set_feed_hook(None);
    // Victims published before their deletion stay in the stream (a stream is history), so
    // wait for every surviving action rather than for a count.
    let want = truth(&g, |_| true);
    let url = nats.url();
    wait_for(30, "every surviving action, inserted rows too", || {
        let (url, want) = (url.clone(), want.clone());
        async move {
            let got = counts(&read_stream(&url, STREAM).await);
            want.iter().all(|(k, n)| got.get(k) == Some(n))
        }
    })
    .await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    let truth = truth(&g, |_| true);
    let got = counts(&msgs);
    for (k, n) in &truth {
        assert_eq!(
            got.get(k),
            Some(n),
            "action {k} published {:?} times",
            got.get(k)
        );
    }
}

#[tokio::test]
async fn retries_429_with_retry_after_and_5xx_bursts_while_the_rate_limit_holds() {
    let nats = Nats::start().await;
    let g = gitea().await;
    world(&g);
    for _ in 0..5 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    }
    g.inject(
        Fault::new(FaultKind::RetryAfterSecs(1))
            .times(2)
            .on_path("activities/feeds"),
    );
    g.inject(
        Fault::new(FaultKind::Status(500))
            .times(3)
            .on_path("activities/feeds"),
    );
    g.inject(
        Fault::new(FaultKind::Status(503))
            .times(1)
            .on_path("activities/feeds"),
    );
    let mut cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"\n[[source]]\nrepo = \"alice/dot.files\"\n[[source]]\norg = \"acme\"",
    );
    cfg.gitea.requests_per_second = 5;
    cfg.gitea.burst = 2;
    let run = run(cfg);
    wait_count(&nats, 5, "events despite faults").await;
    // Let the sources poll against the limit for a while.
    wait_for(20, "40 requests served", || async {
        g.requests().len() >= 40
    })
    .await;
    run.stop().await;
    let reqs = g.requests();
    let statuses: Vec<u16> = reqs.iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&429) && statuses.contains(&500),
        "faults were served: {statuses:?}"
    );
    // The 429 asked for 1 s: the retry came no sooner.
    let i429 = reqs.iter().position(|r| r.status == 429).unwrap();
    let next = &reqs[i429 + 1..]
        .iter()
        .find(|r| r.path == reqs[i429].path)
        .unwrap();
    assert!(
        next.at.duration_since(reqs[i429].at) >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    // Rate: in any one-second window, at most burst + rate requests.
    for (i, r) in reqs.iter().enumerate() {
        let in_window = reqs[i..]
            .iter()
            .take_while(|q| q.at.duration_since(r.at) < Duration::from_secs(1))
            .count();
        assert!(
            in_window <= 2 + 5 + 1,
            "{in_window} requests within one second at #{i}"
        );
    }
    // And over the whole run: 40 requests at 5/s with a burst of 2 need (40 - 2) / 5 = 7.6 s.
    let span = reqs[39].at.duration_since(reqs[0].at);
    assert!(
        span >= Duration::from_millis(7_400),
        "40 requests took only {span:?}"
    );
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), 5);
}

#[tokio::test]
async fn malformed_json_is_logged_and_retried_not_a_crash() {
    let nats = Nats::start().await;
    let g = gitea().await;
    world(&g);
    for _ in 0..7 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    }
    g.inject(
        Fault::new(FaultKind::Truncated)
            .times(4)
            .on_path("activities/feeds"),
    );
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let run = run(cfg);
    wait_count(&nats, 7, "events after truncated responses").await;
    run.stop().await;
    let truncated = g
        .requests()
        .iter()
        .filter(|r| r.status == 200 && r.path.contains("feeds"))
        .count();
    assert!(truncated >= 5, "truncated answers were served and retried");
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), 7);
    assert_no_repeats(&msgs);
}

#[tokio::test]
async fn a_repo_named_dot_files_gets_the_escaped_subject_and_a_full_cloudevent() {
    let nats = Nats::start().await;
    let g = gitea().await;
    world(&g);
    g.push_action(NewAction::push("alice", "alice/dot.files", "main", 2));
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"alice/dot.files\"",
    );
    let run = run(cfg);
    wait_count(&nats, 1, "the push").await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    let m = &msgs[0];
    assert_eq!(m.subject, "gitea.alice.dot%2Efiles.commit_repo");
    assert_eq!(m.body["specversion"], "1.0");
    assert_eq!(m.body["type"], "io.gitea.activity.commit_repo");
    assert_eq!(m.body["subject"], "alice/dot.files");
    assert_eq!(m.body["source"], format!("{}/alice/dot.files", g.url()));
    assert_eq!(m.body["datacontenttype"], "application/json");
    assert_eq!(m.body["time"], m.activity()["created"]);
}

#[tokio::test]
async fn a_source_refused_with_404_waits_while_the_others_go_on() {
    let nats = Nats::start().await;
    let g = gitea().await;
    world(&g);
    g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/missing\"\n[[source]]\nrepo = \"acme/widgets\"",
    );
    let run = run(cfg);
    wait_count(&nats, 1, "the healthy source publishes").await;
    g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    wait_count(&nats, 2, "and keeps polling").await;
    run.stop().await;
    let missing: Vec<_> = g
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("acme/missing"))
        .collect();
    assert!(!missing.is_empty() && missing.iter().all(|r| r.status == 404));
    // Not retried in a tight loop: the refused source backs off.
    assert!(
        missing.len() <= 8,
        "404 source polled {} times",
        missing.len()
    );
}

#[tokio::test]
async fn a_stream_with_conflicting_subjects_is_reported_not_changed() {
    let nats = Nats::start().await;
    let g = gitea().await;
    let js = async_nats::jetstream::new(nats.client().await);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec!["other.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let cfg = config(&g.url(), &nats.url(), "", "[[source]]\norg = \"acme\"");
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        gitea_nats_sourcer::run::run(cfg, std::future::pending()),
    )
    .await
    .expect("fails fast")
    .unwrap_err();
    assert!(err.to_string().contains("other.>"), "{err}");
    let mut s = js.get_stream(STREAM).await.unwrap();
    assert_eq!(
        s.info().await.unwrap().config.subjects,
        vec!["other.>".to_string()]
    );
}

#[tokio::test]
async fn nats_stopped_and_restarted_on_the_same_store_loses_and_repeats_nothing() {
    let mut nats = Nats::start().await;
    let g = gitea().await;
    world(&g);
    for _ in 0..5 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    }
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"",
    );
    let run = run(cfg);
    wait_count(&nats, 5, "before the outage").await;
    nats.server.stop().await;
    for i in 0..6 {
        g.push_action(NewAction::comment(
            "bob",
            "acme/widgets",
            4,
            &format!("during outage {i}"),
        ));
    }
    // While NATS is away the sourcer does not poll Gitea: nothing could be published.
    nats.server.restart().await.expect("restart nats");
    wait_count(&nats, 11, "after the outage").await;
    g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    wait_count(&nats, 12, "live again").await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), 12);
    assert_no_repeats(&msgs);
    assert_eq!(counts(&msgs), truth(&g, |_| true));
}

#[tokio::test]
async fn start_at_a_date_publishes_from_that_day_on() {
    let nats = Nats::start().await;
    let g = gitea().await;
    world(&g);
    let day = 86400;
    g.push_action(NewAction::push("alice", "acme/widgets", "old", 1).at(ago(&g, 5 * day)));
    g.push_action(NewAction::push("alice", "acme/widgets", "new", 1).at(ago(&g, day)));
    g.push_action(NewAction::push("alice", "acme/widgets", "new", 1).at(ago(&g, 10)));
    let since = (g.now() - chrono::Duration::days(2)).date_naive();
    // The oldest rows are gone (the cron ran): the oldest left is newer than the start date.
    g.delete_older_than(g.now() - chrono::Duration::days(3));
    let cfg = config(
        &g.url(),
        &nats.url(),
        &format!("start = \"{since}\""),
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let run = run(cfg);
    wait_count(&nats, 2, "the two recent pushes").await;
    let reqs = g.requests().len();
    wait_for(20, "a few more polls", || async {
        g.requests().len() > reqs + 3
    })
    .await;
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), 2);
    assert!(
        msgs.iter()
            .all(|m| m.activity()["ref_name"] == "refs/heads/new")
    );
    // A start date before the oldest row Gitea has is not lost history.
    let js = async_nats::jetstream::new(nats.client().await);
    let kv = js.get_key_value("gitea_cursors").await.unwrap();
    let entry = kv.get("repo/acme/widgets").await.unwrap().unwrap();
    let cursor: serde_json::Value = serde_json::from_slice(&entry).unwrap();
    assert!(cursor["gap"].is_null(), "{cursor}");
}

/// Peak resident memory of this process (kB), for the log: measured, not asserted.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_of_twenty_thousand_actions_over_days_is_caught_up_once_and_in_order() {
    use gitea_sim::HistorySpec;
    let nats = Nats::start().await;
    let g = gitea().await;
    let n = g.generate_history(&HistorySpec {
        actions: 20_000,
        days: 6,
        orgs: 1,
        repos: 4,
        payload_bytes: 1500,
        ties: true,
    });
    let org = g.org_names()[0].clone();
    assert_eq!(n, g.action_count());
    // The generator sometimes repeats a repeatable action (a star) by the same user within one
    // second; the sourcer takes such a pair for an original and its copy (README, "Delivery guarantee").
    let want = truth_once_per_second(&g);
    let expected = want.values().sum::<usize>() as u64;
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &format!("[[source]]\norg = \"{org}\""),
    );
    let started = std::time::Instant::now();
    let run = run(cfg);
    let url = nats.url();
    wait_for(240, "the whole gap published", || {
        let url = url.clone();
        async move { stream_count(&url, STREAM).await >= expected }
    })
    .await;
    let took = started.elapsed();
    run.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len() as u64, expected);
    assert_no_repeats(&msgs);
    assert_eq!(counts(&msgs), want);
    assert_ordered_per_repo(&msgs);
    let requests = g.requests().len();
    eprintln!(
        "catch-up: {expected} actions over 6 days in {took:?}, {requests} Gitea requests, peak RSS of the test process {} kB",
        peak_rss_kb()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_catching_up_does_not_starve_a_live_source() {
    use gitea_sim::HistorySpec;
    let nats = Nats::start().await;
    let g = gitea().await;
    g.generate_history(&HistorySpec {
        actions: 4_000,
        days: 4,
        orgs: 1,
        repos: 2,
        payload_bytes: 300,
        ties: false,
    });
    let org = g.org_names()[0].clone();
    let backlog = g.action_count() as u64;
    g.add_user("zoe");
    g.add_repo("zoe", "live");
    let mut cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &format!("[[source]]\norg = \"{org}\"\n[[source]]\nrepo = \"zoe/live\"\n"),
    );
    // A tight budget: the catch-up needs well over a hundred requests, about ten seconds.
    cfg.gitea.requests_per_second = 15;
    cfg.gitea.burst = 5;
    let run = run(cfg);
    wait_stream(&nats.url(), STREAM, 200, "the catch-up is under way").await;
    g.push_action(NewAction::push("zoe", "zoe/live", "main", 1));
    let url = nats.url();
    wait_for(30, "the live source's action", || {
        let url = url.clone();
        async move {
            stream_count(&url, STREAM).await > 0
                && read_stream(&url, STREAM)
                    .await
                    .iter()
                    .any(|m| m.repo() == "zoe/live")
        }
    })
    .await;
    let when_live_arrived = stream_count(&nats.url(), STREAM).await;
    assert!(
        when_live_arrived < backlog,
        "the live action waited for the whole backlog ({when_live_arrived} of {backlog} published first)"
    );
    wait_stream(&nats.url(), STREAM, backlog + 1, "the backlog").await;
    run.stop().await;
}
