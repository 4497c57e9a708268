//! The `refs` kind: pushes the feed does not show. A token that is not a site admin's never
//! sees the Gitea Actions bot's feed rows; its pushes reach the stream from the repository's
//! branches and tags, once, and a push both the feed and the listing show (a user's, or any
//! under an admin's token) is published once.

mod support;

use std::collections::BTreeMap;

use gitea_sim::{FakeGitea, SimOptions};
use support::hooks::{RawMsg, read_hooks};
use support::*;

const STREAM: &str = "GITEA_EVENTS";
/// A ref hook as counted: event type, ref, `before` and `after` (`sha` for a create).
type Key = (String, String, String, String);
const REPO: &str = "acme/widgets";
const BOT: &str = "gitea-actions";
const TOKEN: &str = "a-token";
const ZERO: &str = "0000000000000000000000000000000000000000";

async fn setup(admin: bool) -> (Nats, FakeGitea) {
    let nats = Nats::start().await;
    // Signed in (the token's user), a site admin or not.
    let g = gitea_with(SimOptions {
        token: Some(TOKEN.into()),
        admin,
        ..Default::default()
    })
    .await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "quiet");
    (nats, g)
}

/// The org source with `refs` for every repository, webhook-shaped events on.
fn refs_config(g: &FakeGitea, nats: &Nats) -> gitea_nats_sourcer::config::Config {
    let mut cfg = config(
        &g.url(),
        &nats.url(),
        "webhooks = true",
        "[[source]]\norg = \"acme\"\nrepos = true\nkinds = [\"refs\"]\n",
    );
    cfg.gitea.token = Some(gitea_nats_sourcer::config::Secret::new(TOKEN));
    cfg
}

/// Requests for `path` served so far.
fn served(g: &FakeGitea, path: &str) -> usize {
    g.requests()
        .iter()
        .filter(|r| r.path.ends_with(path))
        .count()
}

/// `(event type, ref, before, after)` of the ref hooks, counted.
fn ref_hooks(hooks: &[RawMsg]) -> BTreeMap<Key, usize> {
    let mut out = BTreeMap::new();
    for h in hooks {
        let b = h.json();
        let s = |k: &str| b[k].as_str().unwrap_or("").to_string();
        let key = match h.event_type() {
            "push" if s("after") == ZERO => {
                ("push".to_string(), s("ref"), String::new(), s("after"))
            }
            "push" => ("push".to_string(), s("ref"), s("before"), s("after")),
            "create" => ("create".to_string(), s("ref"), String::new(), s("sha")),
            "delete" => ("delete".to_string(), s("ref"), String::new(), String::new()),
            _ => continue,
        };
        *out.entry(key).or_default() += 1;
    }
    out
}

fn key(t: &str, r: &str, before: &str, after: &str) -> Key {
    (t.into(), r.into(), before.into(), after.into())
}

/// Pushes by the Actions bot (hidden from the token), and one by a user (shown), after the
/// sourcer's first listing; returns the hooks wanted, each once. `main0` is `main`'s head
/// before the sourcer started.
async fn push_everything(g: &FakeGitea, nats: &Nats, main0: &str) -> Vec<(Key, usize)> {
    let main0 = main0.to_string();
    wait_for(30, "the first listing of acme/widgets", || async {
        served(g, "/repos/acme/widgets/tags") > 0
    })
    .await;
    // Past the second of the newest row at the start: `start = "now"` leaves rows of that
    // second to none (they may be older), so the feed would not show the first ones.
    let started = g.now().timestamp();
    wait_for(5, "the next second", || async {
        g.now().timestamp() > started
    })
    .await;
    // A workflow's version bump and its tag, a branch it makes and removes, a forced push
    // back; then a user's push, which the feed shows too.
    let main1 = g.git_push(BOT, REPO, "main", 2);
    wait_keys(
        nats,
        "the bot's push",
        &[key("push", "refs/heads/main", &main0, &main1)],
    )
    .await;
    g.git_push_tag(BOT, REPO, "v1.0.0", &main1);
    let tmp = g.git_push(BOT, REPO, "bump", 1);
    wait_keys(
        nats,
        "the tag and the new branch",
        &[
            key("create", "v1.0.0", "", &main1),
            key("create", "bump", "", &tmp),
        ],
    )
    .await;
    g.git_delete_branch(BOT, REPO, "bump");
    g.git_force_push(BOT, REPO, "main", &main0);
    wait_keys(
        nats,
        "the deletion and the forced push",
        &[
            key("delete", "bump", "", ""),
            key("push", "refs/heads/main", &main1, &main0),
        ],
    )
    .await;
    let main2 = g.git_push("alice", REPO, "main", 1);
    g.git_delete_tag(BOT, REPO, "v1.0.0");
    vec![
        (key("push", "refs/heads/main", &main0, &main1), 1),
        (key("push", "refs/tags/v1.0.0", ZERO, &main1), 1),
        (key("create", "v1.0.0", "", &main1), 1),
        (key("push", "refs/heads/bump", ZERO, &tmp), 1),
        (key("create", "bump", "", &tmp), 1),
        (key("delete", "bump", "", ""), 1),
        (key("push", "refs/heads/main", &main1, &main0), 1),
        (key("push", "refs/heads/main", &main0, &main2), 1),
        // (`before` is checked apart: a feed row of a deleted tag does not name it.)
        (key("push", "refs/tags/v1.0.0", "", ZERO), 1),
        (key("delete", "v1.0.0", "", ""), 1),
    ]
}

/// Waits until every hook of `want` is in the stream; panics naming what is there.
async fn wait_keys(nats: &Nats, what: &str, want: &[Key]) {
    let ok = wait_until(30, || async {
        let have = hooks_of(nats).await;
        want.iter().all(|k| have.contains_key(k))
    })
    .await;
    if !ok {
        panic!("{what}: want {want:#?}, have {:#?}", hooks_of(nats).await);
    }
}

async fn hooks_of(nats: &Nats) -> BTreeMap<Key, usize> {
    ref_hooks(&read_hooks(&nats.url(), STREAM).await)
}

/// Every wanted hook arrives, each once, and no other ref hook does.
async fn assert_each_once(g: &FakeGitea, nats: &Nats, want: &[(Key, usize)]) {
    let want: BTreeMap<_, _> = want.iter().cloned().collect();
    let arrived = wait_until(30, || async {
        let have = hooks_of(nats).await;
        want.keys().all(|k| have.contains_key(k))
    })
    .await;
    // More polls, past the stream's one-second duplicate window: a repeat would be stored.
    wait_past_duplicate_window(&nats.url(), STREAM).await;
    let reqs = g.requests().len();
    wait_for(20, "more polls", || async {
        g.requests().len() > reqs + 12
    })
    .await;
    let have = hooks_of(nats).await;
    assert!(arrived, "missing: {:?}", {
        want.keys()
            .filter(|k| !have.contains_key(*k))
            .collect::<Vec<_>>()
    });
    assert_eq!(have, want, "each ref hook once, and no other");
}

#[tokio::test]
async fn actions_bot_pushes_reach_the_stream_under_a_non_admin_token_each_once() {
    let (nats, g) = setup(false).await;
    let main0 = g.git_push("alice", REPO, "main", 1);
    let run = run(refs_config(&g, &nats));
    let want = push_everything(&g, &nats, &main0).await;
    assert_each_once(&g, &nats, &want).await;
    run.stop().await;
    // The bot's pushes came from the listing: the token saw none of its rows.
    let hooks = read_hooks(&nats.url(), STREAM).await;
    let bot_push = hooks
        .iter()
        .filter(|h| h.event_type() == "push")
        .map(RawMsg::json)
        .find(|p| p["ref"] == "refs/heads/bump")
        .expect("the bot's new branch");
    assert_eq!(bot_push["total_commits"], 1);
    assert!(
        bot_push["head_commit"]["id"]
            .as_str()
            .is_some_and(|s| s.len() == 40)
    );
    assert_eq!(bot_push["repository"]["full_name"], REPO);
    let tag_gone = hooks
        .iter()
        .filter(|h| h.event_type() == "push")
        .map(RawMsg::json)
        .find(|p| p["ref"] == "refs/tags/v1.0.0" && p["after"] == ZERO)
        .expect("the deleted tag's push");
    let tag_made = hooks
        .iter()
        .filter(|h| h.event_type() == "push")
        .map(RawMsg::json)
        .find(|p| p["ref"] == "refs/tags/v1.0.0" && p["before"] == ZERO)
        .expect("the new tag's push");
    assert_eq!(tag_gone["before"], tag_made["after"], "the tag's old value");
    // Cheap: the quiet repository's refs were listed once (its baseline), its `updated_at`
    // told the rest from the one search per poll.
    assert_eq!(served(&g, "/repos/acme/quiet/branches"), 1);
    let searches = served(&g, "/repos/search");
    let polls = served(&g, "/orgs/acme/activities/feeds");
    assert!(
        searches <= polls,
        "one search per poll at most: {searches} searches, {polls} feed reads"
    );
}

#[tokio::test]
async fn under_an_admin_token_the_feed_and_the_listing_publish_each_push_once() {
    let (nats, g) = setup(true).await;
    let main0 = g.git_push("alice", REPO, "main", 1);
    let run = run(refs_config(&g, &nats));
    let want = push_everything(&g, &nats, &main0).await;
    // The feed publishes the bot's rows too (the token sees them), after the listing told
    // their pushes (it holds a second until it is over): their hooks are not told again.
    let bot_rows = || async {
        read_stream(&nats.url(), STREAM)
            .await
            .iter()
            .filter(|m| m.body["data"]["activity"]["act_user_id"] == gitea_sim::ACTIONS_BOT_ID)
            .count()
    };
    // Seven rows: the push to main, the tag, the new branch's two, its deletion, the forced
    // push, the tag's deletion.
    wait_for(30, "the feed's rows of the bot", || async {
        bot_rows().await == 7
    })
    .await;
    assert_each_once(&g, &nats, &want).await;
    run.stop().await;
    // An admin's token reads users' own addresses and admin-only fields; published, every
    // user is as Gitea's webhooks show it (the placeholder address, the fields' zero values).
    let msgs = support::hooks::read_raw(&nats.url(), STREAM).await;
    let mut users = 0;
    for m in &msgs {
        let text = String::from_utf8_lossy(&m.payload);
        assert!(!text.contains("@mail.example.com"), "{}: {text}", m.subject);
        assert!(
            !text.contains("\"language\":\"en-US\""),
            "{}: {text}",
            m.subject
        );
        users += text.matches("@noreply.127.0.0.1").count();
    }
    assert!(users > 0, "users shown with the placeholder address");
}
