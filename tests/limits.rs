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
