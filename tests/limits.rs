//! What one event can do to a source: one larger than the server's `max_payload` is
//! published cut to fit, and every other event of its source (for an org: of every
//! repository of it) still goes out.

mod support;

use std::collections::HashSet;

use support::*;

const STREAM: &str = "GITEA_EVENTS";

/// A comment of 2 MiB (well over any `max_payload` below it, twice over in a webhook-shaped
/// event that repeats it).
fn huge_comment() -> String {
    "A comment pasted from a log. ".repeat((2 << 20) / 29)
}

/// 360 actions in two repositories of `acme` (60 issues each opened, commented on twice),
/// one comment of 2 MiB in each: `acme/widgets` has its own `repo:` source, `acme/gears` is
/// seen through `org:acme` (with webhook-shaped events). Every action must be published,
/// once, whatever the server's `max_payload`, each message within it.
async fn two_huge_comments_among_360_actions(max_payload: Option<usize>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = match max_payload {
        Some(n) => {
            let conf = dir.path().join("nats.conf");
            std::fs::write(&conf, format!("max_payload: {n}\n")).expect("nats config");
            vec!["-c".to_string(), conf.display().to_string()]
        }
        None => Vec::new(),
    };
    let nats = Nats::start_with(&extra).await;
    let limit = nats.client().await.server_info().max_payload;
    assert_eq!(limit, max_payload.unwrap_or(1 << 20), "the server's limit");
    let g = gitea().await;
    g.add_org("acme");
    g.add_user("bob");
    let mut huge = HashSet::new();
    for repo in ["acme/widgets", "acme/gears"] {
        let (owner, name) = repo.split_once('/').unwrap_or_default();
        g.add_repo(owner, name);
        for i in 0..60 {
            let index = g.create_issue(repo, "bob", &format!("issue {i}"), false);
            let body = match i {
                30 => huge_comment(),
                _ => format!("comment {i}"),
            };
            let id = g.comment_on(repo, index, "bob", &body);
            if i == 30 {
                huge.insert(id);
            }
            g.comment_on(repo, index, "bob", "and another");
        }
    }
    let truth = g.distinct_actions().len();
    assert_eq!(truth, 360);
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\norg = \"acme\"\nwebhooks = true\n[[source]]\nrepo = \"acme/widgets\"",
    );
    let running = run(cfg);
    let activities = |msgs: &[async_nats::jetstream::Message]| {
        msgs.iter()
            .filter(|m| !m.subject.contains(".hook."))
            .count()
    };
    wait_for(60, "every action published", || async {
        stream_count(&nats.url(), STREAM).await >= truth as u64
            && activities(&stream_messages(&nats.url(), STREAM).await) >= truth
    })
    .await;
    running.stop().await;
    let msgs = stream_messages(&nats.url(), STREAM).await;
    assert_eq!(activities(&msgs), truth, "each action once");
    let mut cut = Vec::new();
    for m in &msgs {
        let headers = m.headers.clone().unwrap_or_default();
        let size = m.payload.len()
            + headers
                .iter()
                .map(|(k, v)| {
                    k.to_string().len() + 4 + v.iter().map(|v| v.as_str().len()).sum::<usize>()
                })
                .sum::<usize>();
        assert!(size <= limit, "{} is {size} bytes", m.subject);
        if let Some(from) = headers.get("Gitea-Truncated") {
            let from: usize = from.as_str().parse().unwrap_or(0);
            assert!(from > 2 << 20, "the size before the cut: {from}");
            cut.push((m.subject.to_string(), from, m.payload.len()));
            let body: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
            if m.subject.contains(".hook.") {
                assert_eq!(
                    headers.get("ce-truncated").map(|v| v.as_str()),
                    Some("true")
                );
                assert!(body["comment"]["html_url"].is_string(), "the URL stays");
            } else {
                assert_eq!(body["truncated"], true);
                let a = &body["data"]["activity"];
                assert!(huge.contains(&a["comment_id"].as_i64().unwrap_or(0)), "{a}");
                let text = a["comment"]["body"].as_str().unwrap_or_default();
                assert!(text.contains("[cut by gitea-nats-sourcer: "), "marked");
                assert!(
                    text.starts_with("A comment pasted from a log."),
                    "the start stays"
                );
            }
        }
    }
    let activity_cuts = cut.iter().filter(|c| !c.0.contains(".hook.")).count();
    assert_eq!(activity_cuts, 2, "the two huge comments, cut: {cut:?}");
    println!(
        "max_payload {limit}: {} events cut (bytes before -> body after): {:?}",
        cut.len(),
        cut.iter().map(|c| (c.1, c.2)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_comment_larger_than_max_payload_is_published_cut_and_stops_nothing() {
    two_huge_comments_among_360_actions(None).await;
}

#[tokio::test]
async fn on_a_server_with_a_512_kib_max_payload_too() {
    two_huge_comments_among_360_actions(Some(512 * 1024)).await;
}

/// While the cursor waits below a second it cannot prove whole, it cannot forget what it
/// published above that second: its window is bounded by `poll.max_window`, newer rows wait
/// once it is full, and all of them go out, once, when the second is proven.
#[tokio::test]
async fn a_held_second_keeps_the_window_within_max_window_and_loses_nothing() {
    const REPO: &str = "acme/widgets";
    const MAX: usize = 60;
    let nats = Nats::start().await;
    // The trailing window (40 actions), and older rows the feed loses one by one while it is
    // read: no walk can prove its window meanwhile.
    let (g, victims) = widgets_with_rows_to_lose(2000).await;
    let now = g.now();
    let history = g.action_count() as u64;
    let cfg = config(
        &g.url(),
        &nats.url(),
        &format!("start = \"beginning\"\nmax_window = {MAX}"),
        &format!("[[source]]\nrepo = \"{REPO}\""),
    );
    let running = run(cfg);
    let url = nats.url();
    wait_for(60, "the history published", || async {
        stream_count(&url, STREAM).await >= history
    })
    .await;
    lose_one_per_read(&g, victims);
    let feed_reads = |g: &gitea_sim::FakeGitea| g.requests().len();
    let reads = feed_reads(&g);
    wait_for(20, "a walk under the hook", || async {
        feed_reads(&g) > reads + 5
    })
    .await;
    // 100 newer actions while the second is held.
    for i in 0..100i64 {
        g.push_action(
            gitea_sim::NewAction::comment("alice", REPO, 3, &format!("newer {i}"))
                .at(now + chrono::Duration::seconds(1 + i / 2)),
        );
    }
    let window =
        |c: Option<gitea_nats_sourcer::store::cursor::Cursor>| c.map_or(0, |c| c.seen.len());
    // A walk under the hook ends (it publishes what fits), then more polls' worth of reads:
    // the window fills up to its bound, and stays there.
    wait_for(60, "newer rows published", || async {
        stream_count(&url, STREAM).await > history
    })
    .await;
    let reads = feed_reads(&g);
    wait_for(30, "polls with the second held", || async {
        feed_reads(&g) > reads + 60
    })
    .await;
    let held = window(cursor_of(&url, &format!("repo:{REPO}")).await);
    let published = stream_count(&url, STREAM).await - history;
    println!(
        "held: window {held} identities (max_window {MAX}), {published} of 100 newer published"
    );
    assert!(
        held <= MAX,
        "the window grew to {held} identities past max_window {MAX}"
    );
    assert!(published < 100, "newer rows wait once the window is full");
    // The feed steadies: the second is proven, and the rest goes out, once.
    g.set_feed_hook(None);
    wait_for(60, "every newer action published", || async {
        stream_count(&url, STREAM).await >= history + 100
    })
    .await;
    let reads = feed_reads(&g);
    wait_for(20, "more polls", || async { feed_reads(&g) > reads + 10 }).await;
    running.stop().await;
    let msgs = read_stream(&url, STREAM).await;
    assert_no_repeats(&msgs);
    assert_eq!(msgs.len() as u64, history + 100);
    let after = window(cursor_of(&url, &format!("repo:{REPO}")).await);
    assert!(after <= MAX, "{after}");
}

/// "History lost" is said only when Gitea's oldest row is newer than the cursor, never
/// because a walk ended early (here: an empty second page, the total still saying more).
#[tokio::test]
async fn a_walk_that_ends_early_is_not_reported_as_lost_history() {
    const REPO: &str = "acme/widgets";
    let nats = Nats::start().await;
    let g = widgets_paged_by_ten().await;
    let now = g.now();
    for i in 0..30i64 {
        g.push_action(
            gitea_sim::NewAction::comment("alice", REPO, 1, &format!("old {i}"))
                .at(now - chrono::Duration::seconds(600 - i)),
        );
    }
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nlookback = \"3s\"",
        &format!("[[source]]\nrepo = \"{REPO}\""),
    );
    let running = run(cfg);
    let url = nats.url();
    wait_for(30, "the history published", || async {
        stream_count(&url, STREAM).await >= 30
    })
    .await;
    // 15 newer actions: the next walk needs two pages to reach its cutoff; its second page
    // comes back empty (at every pass of a few polls).
    g.inject(
        gitea_sim::Fault::new(gitea_sim::FaultKind::EmptyPage)
            .on_path("feeds?page=2")
            .times(8),
    );
    for i in 0..15i64 {
        g.push_action(
            gitea_sim::NewAction::comment("alice", REPO, 2, &format!("new {i}"))
                .at(now - chrono::Duration::seconds(100 - i)),
        );
    }
    wait_for(30, "every action published", || async {
        stream_count(&url, STREAM).await >= 45
    })
    .await;
    let emptied = g
        .requests()
        .iter()
        .any(|r| r.query.starts_with("page=2") && r.path.ends_with("/feeds"));
    assert!(emptied, "the fault was served");
    let reads = g.requests().len();
    wait_for(20, "more polls", || async {
        g.requests().len() > reads + 5
    })
    .await;
    running.stop().await;
    let cursor = cursor_of(&url, &format!("repo:{REPO}")).await;
    let gap = cursor.and_then(|c| c.gap);
    assert!(gap.is_none(), "no history was lost, yet: {gap:?}");
    let msgs = read_stream(&url, STREAM).await;
    assert_no_repeats(&msgs);
    assert_eq!(msgs.len(), 45);
}
