//! `[control]`: the NATS micro service, spoken to as `nats micro` does (`$SRV.PING`,
//! `$SRV.INFO`, `$SRV.STATS`) and through its endpoints: list the sources, pause one (its new
//! actions wait while the other source goes on, also after a restart: the pause is stored),
//! resume it (they come), reset it, start a
//! backfill; bad requests answer with a micro service error code.

mod support;

use futures::StreamExt;
use gitea_sim::NewAction;
use serde_json::Value;
use support::*;

#[tokio::test]
async fn the_control_service_lists_pauses_resumes_resets_and_backfills() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "gadgets");
    g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    g.push_action(NewAction::push("alice", "acme/gadgets", "main", 1));
    let mut cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[control]\nenabled = true\n[[source]]\nrepo = \"acme/widgets\"\n[[source]]\nrepo = \"acme/gadgets\"",
    );
    cfg.control.subject = "ops.gitea".into();
    let running = run(cfg.clone());
    let url = nats.url();
    wait_for(20, "both first actions published", || async {
        events_of(&url, "acme/widgets").await == 1 && events_of(&url, "acme/gadgets").await == 1
    })
    .await;
    let client = nats.client().await;

    // What `nats micro ls` and `nats micro info` ask.
    let (ping, _) = micro_request(&client, "$SRV.PING.gitea-nats-sourcer", "").await;
    assert_eq!(ping["type"], "io.nats.micro.v1.ping_response", "{ping}");
    assert_eq!(ping["name"], "gitea-nats-sourcer");
    assert_eq!(ping["version"], env!("CARGO_PKG_VERSION"));
    let (info, _) = micro_request(&client, "$SRV.INFO.gitea-nats-sourcer", "").await;
    let endpoints: Vec<(String, String)> = info["endpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("endpoints in {info}"))
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").to_string(),
                e["subject"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for (name, subject) in [
        ("sources-list", "ops.gitea.sources.list"),
        ("sources-pause", "ops.gitea.sources.pause"),
        ("sources-resume", "ops.gitea.sources.resume"),
        ("sources-reset", "ops.gitea.sources.reset"),
        ("backfill", "ops.gitea.backfill"),
    ] {
        assert!(
            endpoints.contains(&(name.to_string(), subject.to_string())),
            "{name} on {subject} in {endpoints:?}"
        );
    }

    // List: both running, with their cursors.
    let (list, code) = micro_request(&client, "ops.gitea.sources.list", "").await;
    assert_eq!(code, None, "{list}");
    let state = |list: &Value, source: &str| {
        list["sources"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["source"] == source))
            .map(|s| s["state"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(
        state(&list, "repo:acme/widgets").as_deref(),
        Some("running")
    );
    assert_eq!(
        state(&list, "repo:acme/gadgets").as_deref(),
        Some("running")
    );
    assert!(
        list["sources"][0]["cursor"]["published"].as_u64().is_some(),
        "{list}"
    );

    // Pause widgets: its new action waits while gadgets goes on.
    let (paused, code) =
        micro_request(&client, "ops.gitea.sources.pause", "repo:acme/widgets").await;
    assert_eq!(
        (paused["state"].as_str(), code),
        (Some("paused"), None),
        "{paused}"
    );
    assert_eq!(
        paused["stopped_here"], true,
        "answered once stopped: {paused}"
    );
    let (list, _) = micro_request(&client, "ops.gitea.sources.list", "").await;
    assert_eq!(state(&list, "repo:acme/widgets").as_deref(), Some("paused"));
    g.push_action(NewAction::push("bob", "acme/widgets", "main", 2));
    g.push_action(NewAction::push("bob", "acme/gadgets", "main", 2));
    // Gadgets polls every 200 ms: once its new action is in, widgets had that long too.
    wait_for(20, "gadgets' second action", || async {
        events_of(&url, "acme/gadgets").await == 2
    })
    .await;
    wait_for(20, "a few more polls of gadgets", || async {
        let (l, _) = micro_request(&client, "ops.gitea.sources.list", "").await;
        l["sources"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["source"] == "repo:acme/gadgets"))
            .and_then(|s| s["cursor"]["published"].as_u64())
            .is_some_and(|p| p >= 2)
    })
    .await;
    assert_eq!(
        events_of(&url, "acme/widgets").await,
        1,
        "paused, yet published"
    );
    // The pause is stored in the bucket: a restart keeps it.
    running.stop().await;
    let running = run(cfg.clone());
    g.push_action(NewAction::push("bob", "acme/gadgets", "main", 3));
    wait_for(20, "gadgets' third action, after the restart", || async {
        events_of(&url, "acme/gadgets").await == 3
    })
    .await;
    assert_eq!(
        events_of(&url, "acme/widgets").await,
        1,
        "paused before the restart, yet published after it"
    );
    let (list, _) = micro_request(&client, "ops.gitea.sources.list", "").await;
    assert_eq!(state(&list, "repo:acme/widgets").as_deref(), Some("paused"));
    // Pausing again is a conflict; an unknown source is not found; a bad body is refused.
    let (_, code) = micro_request(&client, "ops.gitea.sources.pause", "repo:acme/widgets").await;
    assert_eq!(code.as_deref(), Some("409"));
    let (_, code) = micro_request(&client, "ops.gitea.sources.pause", "repo:acme/nothing").await;
    assert_eq!(code.as_deref(), Some("404"));
    let (_, code) = micro_request(&client, "ops.gitea.sources.pause", "no spec").await;
    assert_eq!(code.as_deref(), Some("400"));

    // Resume: the waiting action comes.
    let (resumed, code) = micro_request(
        &client,
        "ops.gitea.sources.resume",
        "{\"source\": \"repo:acme/widgets\"}",
    )
    .await;
    assert_eq!(
        (resumed["state"].as_str(), code),
        (Some("running"), None),
        "{resumed}"
    );
    wait_for(20, "widgets' second action after the resume", || async {
        events_of(&url, "acme/widgets").await == 2
    })
    .await;

    // Reset: the cursor is deleted and the source started again.
    let (reset, code) =
        micro_request(&client, "ops.gitea.sources.reset", "repo:acme/widgets").await;
    assert_eq!(code, None, "{reset}");
    assert_eq!(reset["cursor_deleted"], true, "{reset}");
    assert_eq!(reset["restarted"], true, "{reset}");
    let (list, _) = micro_request(&client, "ops.gitea.sources.list", "").await;
    assert_eq!(
        state(&list, "repo:acme/widgets").as_deref(),
        Some("running")
    );

    // Backfill: started at once; its day ledgers appear in the bucket. Days that are over
    // everywhere (before yesterday), so each is marked done whatever the hour: the live
    // cursor owns every row, and a day still under way writes no ledger unless it publishes.
    let today = chrono::Utc::now().date_naive();
    let body = format!(
        "{{\"since\": \"{}\", \"until\": \"{}\", \"sources\": [\"repo:acme/gadgets\"]}}",
        today - chrono::Duration::days(3),
        today - chrono::Duration::days(2)
    );
    let (started, code) = micro_request(&client, "ops.gitea.backfill", &body).await;
    assert_eq!(
        (started["started"].as_bool(), code),
        (Some(true), None),
        "{started}"
    );
    let js = async_nats::jetstream::new(client.clone());
    let kv = js.get_key_value("gitea_cursors").await.expect("bucket");
    wait_for(30, "a backfill ledger in the bucket", || {
        let kv = kv.clone();
        async move {
            match kv.keys().await {
                Ok(keys) => {
                    keys.filter_map(|k| async move { k.ok() })
                        .any(|k| async move { k.starts_with("backfill/") })
                        .await
                }
                Err(_) => false,
            }
        }
    })
    .await;
    let (_, code) =
        micro_request(&client, "ops.gitea.backfill", "{\"since\": \"yesterday\"}").await;
    assert_eq!(code.as_deref(), Some("400"));

    // `nats micro stats`: the requests counted per endpoint.
    let (stats, _) = micro_request(&client, "$SRV.STATS.gitea-nats-sourcer", "").await;
    let pauses = stats["endpoints"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "sources-pause"))
        .and_then(|e| e["num_requests"].as_u64());
    assert_eq!(pauses, Some(3), "since the restart: {stats}");
    running.stop().await;
}
