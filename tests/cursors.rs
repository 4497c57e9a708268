//! The cursor's writes and size: a cursor write that fails mid catch-up, a burst larger than
//! a cursor can remember. Nothing is lost. Each of these was a bug the fault suite
//! (`tests/faults.rs`) found; its doc says which.

mod support;

use gitea_sim::{NewAction, SimOptions};
use support::*;

const STREAM: &str = "GITEA_EVENTS";

/// Bug: when the cursor write after an acknowledged batch failed, the later batches of the
/// same poll stayed reserved in the cross-feed index; the next poll took them for published
/// elsewhere and skipped them for good (688 of 1,200 lost).
#[tokio::test]
async fn a_failed_cursor_write_mid_catch_up_loses_nothing() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    // Yesterday from 10:00, server time: every row on one server day, so the first batch is
    // 512 rows whatever the hour the test runs (rows up to "now" crossed the server's
    // midnight at 16:00 UTC in a +08:00 zone, and a first day of 181 rows wrote its cursor
    // before the 8 KiB limit could refuse it: the test waited for 512 in vain).
    let now = g.now();
    let ten = (now.date_naive() - chrono::Days::new(1))
        .and_hms_opt(10, 0, 0)
        .and_then(|t| t.and_local_timezone(*now.offset()).single())
        .expect("yesterday 10:00 in the server's zone");
    for i in 0..1200 {
        g.push_action(
            NewAction::push("bob", "acme/widgets", "main", 1)
                .at(ten + chrono::Duration::seconds(i)),
        );
    }
    let js = async_nats::jetstream::new(nats.client().await);
    // The bucket refuses cursors over 8 KiB: the write after the first batch of 512 fails.
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: "gitea_cursors".into(),
        history: 1,
        max_value_size: 8 * 1024,
        ..Default::default()
    })
    .await
    .unwrap();
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let r = run(cfg);
    wait_stream(&nats.url(), STREAM, 512, "the first batch").await;
    // Polls go on failing at the cursor write; let a few happen, then lift the limit. Each
    // poll tries its write again for `SAVE_RETRY` (30 s) before it fails and the next begins.
    let n = g.requests().len();
    let deadline = gitea_nats_sourcer::store::SAVE_RETRY.as_secs() + 30;
    wait_for(deadline, "polls after the failed write", || async {
        g.requests().len() > n + 3
    })
    .await;
    let mut s = js.get_stream("KV_gitea_cursors").await.unwrap();
    let mut c = s.info().await.unwrap().config.clone();
    c.max_message_size = -1;
    js.update_stream(c).await.unwrap();
    wait_stream(&nats.url(), STREAM, 1200, "the rest of the day").await;
    r.stop().await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), 1200);
    assert_no_repeats(&msgs);
}

/// Issue 10: a cursor's identity list was rewritten whole each commit and reached the KV
/// value limit (1 MiB) at about 20,000 events in one trailing window: the cursor could no
/// longer be written and the source was stuck re-publishing. The window now keeps at most
/// `MAX_SEEN` identities (the oldest seconds go first, logged), and the source goes on.
#[tokio::test]
async fn a_burst_larger_than_a_cursor_can_remember_still_moves_the_cursor() {
    let nats = Nats::start().await;
    let g = gitea_with(SimOptions {
        max_response_items: 500,
        ..Default::default()
    })
    .await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let now = g.now();
    let n: i64 = 22_000;
    for i in 0..n {
        g.push_action(
            NewAction::push("bob", "acme/widgets", "main", 1)
                .at(now - chrono::Duration::seconds(1200 - i * 1200 / n)),
        );
    }
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"\nlookback = \"30m\"",
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let r = run(cfg);
    let url = nats.url();
    wait_for(120, "every action of the burst", || {
        let url = url.clone();
        async move { stream_count(&url, STREAM).await >= n as u64 }
    })
    .await;
    // The cursor was written at the end, and holds no more identities than it can store.
    let url = nats.url();
    wait_for(30, "the cursor at the newest action", || {
        let url = url.clone();
        async move {
            let c = cursor_of(&url, "repo:acme/widgets").await;
            c.is_some_and(|c| c.position >= now.timestamp() - 1)
        }
    })
    .await;
    r.stop().await;
    let c = cursor_of(&nats.url(), "repo:acme/widgets")
        .await
        .expect("a cursor");
    assert!(c.seen.len() <= gitea_nats_sourcer::store::cursor::MAX_SEEN);
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_eq!(msgs.len(), n as usize);
    assert_no_repeats(&msgs);
}
