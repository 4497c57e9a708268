//! A repository between two sources: a `repo:` source added beside the `org:` source of its
//! owner, removed from beside it (drained until it hands over), or taking over from it. Each
//! action is published once, by one of them; nothing is skipped. Each of these was a bug the
//! fault suite (`tests/faults.rs`) found; its doc says which.

mod support;

use gitea_sim::{Fault, FaultKind, NewAction};
use support::*;

const STREAM: &str = "GITEA_EVENTS";

/// Bug: an org source lagging behind a repository source (its feed failing) published, after
/// a restart, the org copy (one second late) of a close_issue the repository source had
/// published: a repeatable action's id includes `created`, and the in-memory index that
/// matches copies to originals was gone. Each repository is now published by one source only.
#[tokio::test]
async fn a_lagging_org_source_does_not_repeat_what_the_repository_source_published() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "gears");
    g.inject(
        Fault::new(FaultKind::Status(500))
            .times(6)
            .on_path("/orgs/acme/"),
    );
    let mut cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nlookback = \"3s\"",
        "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"",
    );
    // Each failing org poll gives up after one retry: three failed polls, then it recovers.
    cfg.gitea.max_retries = 1;
    let first = run(cfg.clone());
    let t = g.now();
    g.push_action(
        NewAction::close_issue("bob", "acme/widgets", 7)
            .at(t)
            .copy_delay(1),
    );
    // A later action moves the repository cursor beyond the close's trailing window.
    g.push_action(
        NewAction::push("bob", "acme/widgets", "main", 1).at(t + chrono::Duration::seconds(10)),
    );
    wait_stream(
        &nats.url(),
        STREAM,
        2,
        "the repository source publishes both",
    )
    .await;
    first.stop().await;
    let second = run(cfg);
    g.push_action(
        NewAction::push("bob", "acme/gears", "main", 1).at(t + chrono::Duration::seconds(11)),
    );
    // The org feed recovers and the org source publishes the gears push.
    wait_stream(&nats.url(), STREAM, 3, "the org source's own repository").await;
    let ok = |g: &gitea_sim::FakeGitea| {
        g.requests()
            .iter()
            .filter(|r| r.path.contains("/orgs/acme/") && r.status == 200)
            .count()
    };
    let n = ok(&g);
    wait_for(20, "more org polls", || async { ok(&g) > n + 3 }).await;
    second.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    let closes = msgs
        .iter()
        .filter(|m| m.activity()["op_type"] == "close_issue")
        .count();
    assert_eq!(closes, 1, "close_issue published {closes} times");
    assert_eq!(msgs.len(), 3);
}

/// Issue 10: adding `repo:X` beside the `org:` source that published X until now. The new
/// source takes X over where the org's cursor is: with `start = "beginning"` it must not
/// publish X's history again, and with `start = "now"` it must not skip what the org had
/// not reached yet (the org skips X from then on). One-second duplicate window: a repeat
/// would show.
#[tokio::test]
async fn a_repo_source_added_beside_its_org_neither_repeats_nor_skips() {
    for start in ["beginning", "now"] {
        let nats = Nats::start().await;
        let g = gitea().await;
        g.add_org("acme");
        g.add_repo("acme", "widgets");
        g.add_repo("acme", "gadgets");
        let t = g.now();
        for i in 0..20 {
            let repo = if i % 2 == 0 {
                "acme/widgets"
            } else {
                "acme/gadgets"
            };
            g.push_action(
                NewAction::push("bob", repo, "main", 1)
                    .at(t - chrono::Duration::seconds(7200 - 360 * i)),
            );
        }
        let mk = |sources: &str, poll: &str| config(&g.url(), &nats.url(), poll, sources);
        let first = run(mk("[[source]]\norg = \"acme\"", "start = \"beginning\""));
        wait_stream(&nats.url(), STREAM, 20, "the org's history").await;
        first.stop().await;
        // While nothing runs: five actions in widgets that the org never read.
        for _ in 0..5 {
            g.push_action(NewAction::push("carol", "acme/widgets", "main", 1));
        }
        let second = run(mk(
            &format!(
                "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"\nstart = \"{start}\""
            ),
            "start = \"beginning\"",
        ));
        wait_stream(
            &nats.url(),
            STREAM,
            25,
            "the five actions made while stopped",
        )
        .await;
        // Two more, read by the repository source only.
        for _ in 0..2 {
            g.push_action(NewAction::push("dave", "acme/widgets", "main", 1));
        }
        wait_stream(&nats.url(), STREAM, 27, "the two new actions").await;
        second.stop().await;
        let msgs = read_stream(&nats.url(), STREAM).await;
        assert_eq!(msgs.len(), 27, "start = {start}");
        assert_no_repeats(&msgs);
    }
}

/// Issue 10: removing `repo:X` while `org:` of its owner stays. The org had skipped X's rows
/// (X published them) and its cursor moved on; what X had not reached yet (here: X failing
/// while the org went on) fell between the two and was lost. A removed repository source is
/// now drained: polled to the head of its feed once more, then handed over to the org.
#[tokio::test]
async fn a_repo_source_removed_while_behind_its_org_is_drained_before_the_handover() {
    removed_while_behind("").await;
}

/// The same under `[ha]`: the drain is started by the instance that takes the org's lease,
/// and runs under it (issue 15).
#[tokio::test]
async fn under_ha_the_holder_of_the_orgs_lease_drains_a_removed_repo_source() {
    removed_while_behind("\n[ha]\nenabled = true\nlease_ttl = \"2s\"\n").await;
}

/// `ha`: a `[ha]` table for both configs, or nothing.
async fn removed_while_behind(ha: &str) {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "gadgets");
    let t = g.now();
    g.push_action(
        NewAction::push("bob", "acme/widgets", "main", 1).at(t - chrono::Duration::seconds(30)),
    );
    let both = format!("[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"{ha}");
    let first = run(config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nlookback = \"3s\"",
        &both,
    ));
    let url = nats.url();
    wait_for(30, "both cursors", || {
        let url = url.clone();
        async move {
            cursor_of(&url, "org:acme").await.is_some()
                && cursor_of(&url, "repo:acme/widgets").await.is_some()
        }
    })
    .await;
    // The repository feed fails from now on; its five new actions wait for it, while the
    // org goes on past them (it leaves widgets to its own source).
    g.inject(
        Fault::new(FaultKind::Status(500))
            .times(1_000_000)
            .on_path("/repos/acme/widgets/activities"),
    );
    // Newer than the repository cursor, older than the org's next position by more than
    // the trailing window.
    for _ in 0..5 {
        g.push_action(
            NewAction::push("carol", "acme/widgets", "main", 1)
                .at(t - chrono::Duration::seconds(20)),
        );
    }
    for _ in 0..3 {
        g.push_action(NewAction::push("dave", "acme/gadgets", "main", 1).at(t));
    }
    wait_for(30, "the org past the widgets actions", || {
        let url = url.clone();
        async move {
            cursor_of(&url, "org:acme")
                .await
                .is_some_and(|c| c.position >= t.timestamp())
        }
    })
    .await;
    first.stop().await;
    let before = read_stream(&nats.url(), STREAM).await.len();
    assert_eq!(
        before, 4,
        "the first widgets action and the three gadgets actions"
    );
    g.clear_faults();
    // The repository source is removed.
    let second = run(config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nlookback = \"3s\"",
        &format!("[[source]]\norg = \"acme\"{ha}"),
    ));
    wait_stream(
        &nats.url(),
        STREAM,
        9,
        "the five actions the repository source had not read",
    )
    .await;
    wait_for(30, "the widgets cursor handed over", || {
        let url = url.clone();
        async move {
            cursor_of(&url, "repo:acme/widgets")
                .await
                .is_some_and(|c| c.handed_to.as_deref() == Some("org:acme"))
        }
    })
    .await;
    // After the handover the org publishes widgets.
    g.push_action(NewAction::push("erin", "acme/widgets", "main", 1));
    wait_stream(
        &nats.url(),
        STREAM,
        10,
        "a widgets action after the handover",
    )
    .await;
    second.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), 10);
    assert_no_repeats(&msgs);
}

/// Issue 22: a removed `repo:` source is drained until a poll reaches the head of its feed
/// with every row proven; one whose feed kept a second unproven (here: rows deleted below
/// the window during every read, so no stretch is read at one total) never got there and
/// never handed its repository over: nobody published it again. The drain now hands over
/// when a second is held back, and the org takes the repository over from the drained
/// cursor's trailing window: it reads that far back for it once and publishes what the
/// drain had not (here: a late row the drain's last read missed), not what it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_repo_source_with_a_second_it_cannot_prove_hands_over_and_loses_nothing() {
    drained_with_an_unprovable_second(8).await;
}

/// The same, the org reading the repository back day by day: deeper than its `live_pages`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_taken_over_deeper_than_live_pages_is_read_back_day_by_day() {
    drained_with_an_unprovable_second(2).await;
}

/// `live_pages`: of both runs (the org reads the repository back over six pages).
async fn drained_with_an_unprovable_second(live_pages: usize) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let nats = Nats::start().await;
    let g = widgets_paged_by_ten().await;
    g.add_repo("acme", "gadgets");
    let t = g.now();
    let at = move |s: i64| t + chrono::Duration::seconds(s);
    // The repository's trailing window: 40 actions, two a second (five pages); the org's
    // newest action is two minutes later, so the org's own window (30 s) does not reach it.
    for i in 0..40i64 {
        g.push_action(
            NewAction::comment("alice", "acme/widgets", 1, &format!("window {i}"))
                .at(at(-120 + i / 2)),
        );
    }
    let victims: Vec<gitea_sim::ActionId> = (0..1000i64)
        .map(|i| {
            g.push_action(
                NewAction::comment("alice", "acme/widgets", 2, &format!("old {i}"))
                    .at(at(-3600 - i)),
            )
        })
        .collect();
    g.push_action(NewAction::comment("alice", "acme/gadgets", 1, "gadgets").at(at(0)));
    let published = g.action_count() as u64;
    let poll = format!("start = \"beginning\"\nlookback = \"30s\"\nlive_pages = {live_pages}");
    let poll = poll.as_str();
    let first = run(config(
        &g.url(),
        &nats.url(),
        poll,
        "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"",
    ));
    wait_stream(&nats.url(), STREAM, published, "the history").await;
    first.stop().await;
    // From now on every read of the repository feed deletes old rows (below the window:
    // the total shrinks at every read, so nothing read can be proven) and, for its first 60
    // reads, after the page is served, a late row turns up in the window (spread over its
    // seconds): the drain's last read misses the last of them.
    let victims = std::sync::Mutex::new(victims);
    let late = Arc::new(AtomicUsize::new(0));
    let l = late.clone();
    g.set_feed_hook(Some(Box::new(move |page, w| {
        // The org's feed loses an old row at every read too: its read-back of the
        // repository cannot be proven either, which must not hold its own position back.
        if page.feed == "org:acme" {
            if let Some(v) = victims.lock().unwrap_or_else(|e| e.into_inner()).pop() {
                w.soft_delete(v);
            }
            return;
        }
        if page.feed != "repo:acme/widgets" {
            return;
        }
        let k = l.load(Ordering::SeqCst);
        let adds = k < 60;
        let mut victims = victims.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..1 + usize::from(adds) {
            if let Some(v) = victims.pop() {
                w.soft_delete(v);
            }
        }
        if adds {
            l.store(k + 1, Ordering::SeqCst);
            w.push_action(
                NewAction::comment("alice", "acme/widgets", 3, &format!("late {k}"))
                    .at(at(-130 + (k as i64 % 29))),
            );
        }
    })));
    // Polled every second (the drain polls as its org does): the old rows last the 10 s.
    let started = std::time::Instant::now();
    let second = run(config(
        &g.url(),
        &nats.url(),
        poll,
        "[[source]]\norg = \"acme\"\ninterval = \"1s\"",
    ));
    let url = nats.url();
    let handed = wait_until(10, || {
        let url = url.clone();
        async move {
            cursor_of(&url, "repo:acme/widgets")
                .await
                .is_some_and(|c| c.handed_to.as_deref() == Some("org:acme"))
        }
    })
    .await;
    let took = started.elapsed();
    let late = late.load(Ordering::SeqCst);
    eprintln!(
        "handover: an unprovable drain handed over after {:.1} s, {late} late rows made meanwhile",
        took.as_secs_f64()
    );
    assert!(
        handed,
        "the drained repo:acme/widgets never handed over within 10 s ({late} late rows, {} events)",
        stream_count(&url, STREAM).await
    );
    assert!(late > 0, "the drain read the repository's feed");
    // Then the org publishes the repository, and moves on while it cannot prove what it
    // reads back.
    g.push_action(NewAction::comment("alice", "acme/widgets", 1, "after").at(at(5)));
    let moved = wait_until(10, || {
        let url = url.clone();
        async move {
            cursor_of(&url, "org:acme")
                .await
                .is_some_and(|c| c.position >= t.timestamp() + 5)
        }
    })
    .await;
    g.set_feed_hook(None);
    let org = cursor_of(&url, "org:acme").await;
    assert!(
        moved,
        "the org's position stayed at {:?} below the new action at {}, held by a second it read back for acme/widgets only (taken over from {:?})",
        org.as_ref().map(|c| c.position),
        t.timestamp() + 5,
        org.as_ref()
            .map(|c| c.taken_over.iter().map(|t| t.from).collect::<Vec<_>>()),
    );
    // What the drain missed included.
    let all = published + late as u64 + 1;
    let whole = wait_until(20, || {
        let url = url.clone();
        async move { stream_count(&url, STREAM).await >= all }
    })
    .await;
    // Three more polls of the org, so that a repeat would show.
    let org_polls = |g: &gitea_sim::FakeGitea| {
        g.requests()
            .iter()
            .filter(|r| {
                r.path == "/api/v1/orgs/acme/activities/feeds" && r.query.contains("page=1&")
            })
            .count()
    };
    let n = org_polls(&g);
    wait_for(20, "three more polls of the org", || async {
        org_polls(&g) >= n + 3
    })
    .await;
    second.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for m in &msgs {
        *counts.entry(msg_identity(m)).or_default() += 1;
    }
    let missing: Vec<String> = g
        .logical_actions()
        .iter()
        .map(|a| a.identity())
        .filter(|i| !counts.contains_key(i))
        .collect();
    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        whole && missing.is_empty(),
        "{} of {all} actions published; missing: {missing:?}",
        msgs.len()
    );
    assert!(repeated.is_empty(), "published twice: {repeated:?}");
    assert_eq!(msgs.len() as u64, all);
    assert_no_repeats(&msgs);
}

/// Bug (fault suite, 3 lost): an org source and a `repo:` source of one of its repositories
/// configured together; the repository source's feed failed until the process was killed,
/// so it never wrote a cursor, while the org source wrote one past the repository's history
/// (skipping it: the repository source owns it). After the restart the repository source,
/// finding no cursor of its own, took the repository over from the org's cursor as if the
/// org had published it, and its history was never published. The org's cursor now records
/// the repositories it left to other sources and its position when it left each; such a
/// source takes over from there (here: the beginning).
#[tokio::test]
async fn a_repo_source_that_never_wrote_a_cursor_takes_over_where_its_org_left_it() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "gadgets");
    let t = g.now();
    for i in 0..10 {
        g.push_action(
            NewAction::push("bob", "acme/widgets", "main", 1)
                .at(t - chrono::Duration::seconds(7200 - 60 * i)),
        );
    }
    g.push_action(NewAction::push("bob", "acme/gadgets", "main", 1));
    // The repository source's feed fails all through the first run.
    g.inject(
        Fault::new(FaultKind::Status(500))
            .times(100_000)
            .on_path("/repos/acme/widgets/"),
    );
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"",
    );
    let first = run(cfg.clone());
    wait_stream(&nats.url(), STREAM, 1, "the org publishes gadgets").await;
    wait_for(10, "the org's cursor past the widgets history", || async {
        cursor_of(&nats.url(), "org:acme")
            .await
            .is_some_and(|c| c.position >= t.timestamp() - 7200 + 540)
    })
    .await;
    first.stop().await;
    assert!(
        cursor_of(&nats.url(), "repo:acme/widgets").await.is_none(),
        "the repository source wrote no cursor in the first run"
    );
    g.clear_faults();
    let second = run(cfg);
    wait_stream(&nats.url(), STREAM, 11, "the widgets history").await;
    second.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), 11);
    assert_no_repeats(&msgs);
}

/// Issue 22: a `repo:` source without a cursor of its own took its repository over from its
/// org's cursor (at a restart that added it) at the org's position and floor, whatever its
/// own `start`: with `start = "beginning"` the repository's history older than what the org
/// published (the org began with `start = "now"`) was never published. It now starts where
/// its own `start` says and leaves out only the span the org published.
#[tokio::test]
async fn a_repo_source_taking_over_from_its_org_still_publishes_the_history_its_start_asks_for() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "gadgets");
    let t = g.now();
    let at = |s: i64| t + chrono::Duration::seconds(s);
    // History older than the org's start: its source never publishes it.
    for i in 0..3 {
        g.push_action(NewAction::push("bob", "acme/widgets", "main", 1).at(at(-7200 + 100 * i)));
    }
    let first = run(config(
        &g.url(),
        &nats.url(),
        "start = \"now\"\nlookback = \"1s\"",
        "[[source]]\norg = \"acme\"",
    ));
    wait_for(10, "the org's cursor", || async {
        cursor_of(&nats.url(), "org:acme").await.is_some()
    })
    .await;
    // A widgets action a second after the newest at the org's install (its cursor owns and
    // publishes it: within the `lookback` after its floor, which a cursor written before
    // `FLOOR_RULE` did not publish), two more the org publishes, then a gadgets one that
    // moves its position more than the trailing window past them.
    g.push_action(NewAction::push("carol", "acme/widgets", "main", 1).at(at(-6999)));
    for _ in 0..2 {
        g.push_action(NewAction::push("carol", "acme/widgets", "main", 1).at(at(0)));
    }
    g.push_action(NewAction::push("carol", "acme/gadgets", "main", 1).at(at(5)));
    wait_stream(&nats.url(), STREAM, 4, "the org's four actions").await;
    wait_for(10, "the org's cursor at its newest action", || async {
        cursor_of(&nats.url(), "org:acme")
            .await
            .is_some_and(|c| c.position >= t.timestamp() + 5)
    })
    .await;
    first.stop().await;
    wait_past_duplicate_window(&nats.url(), STREAM).await;
    // Restarted with the repository source added: it publishes the three old actions, not
    // the three the org published, and what comes next.
    let second = run(config(
        &g.url(),
        &nats.url(),
        "start = \"now\"\nlookback = \"1s\"",
        "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"\nstart = \"beginning\"",
    ));
    wait_for(10, "the repository source's cursor", || async {
        cursor_of(&nats.url(), "repo:acme/widgets").await.is_some()
    })
    .await;
    g.push_action(NewAction::push("dave", "acme/widgets", "main", 1).at(at(10)));
    let url = nats.url();
    let whole = wait_until(15, || {
        let url = url.clone();
        async move { stream_count(&url, STREAM).await >= 8 }
    })
    .await;
    // One more through the repository source, later than a repeat would have come.
    g.push_action(NewAction::push("erin", "acme/widgets", "main", 1).at(at(12)));
    let last = wait_until(15, || {
        let url = url.clone();
        async move { stream_count(&url, STREAM).await >= 9 }
    })
    .await;
    second.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    let widgets = msgs.iter().filter(|m| m.repo() == "acme/widgets").count();
    assert!(
        whole && last,
        "{} events, {widgets} of widgets; expected 9, 8 of widgets (3 older than the org's start, 3 the org published, 2 new)",
        msgs.len()
    );
    assert_eq!(msgs.len(), 9);
    assert_no_repeats(&msgs);
}
