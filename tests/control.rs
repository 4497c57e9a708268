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

/// A request to a micro service endpoint: its error code and description
/// (`Nats-Service-Error-Code`, `Nats-Service-Error`), `None` when it succeeded.
async fn refusal(
    client: &async_nats::Client,
    subject: &str,
    body: &str,
) -> Option<(String, String)> {
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        client.request(subject.to_string(), body.to_string().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("{subject}: no answer within 15 s"))
    .unwrap_or_else(|e| panic!("{subject}: {e}"));
    let h = answer.headers.as_ref()?;
    let code = h.get("Nats-Service-Error-Code")?.to_string();
    let why = h
        .get("Nats-Service-Error")
        .map(|v| v.to_string())
        .unwrap_or_default();
    Some((code, why))
}

/// A backfill body for `since..=until` days before today, of `sources`.
fn backfill_body(since_ago: i64, until_ago: i64, sources: &[&str]) -> String {
    let today = chrono::Utc::now().date_naive();
    serde_json::json!({
        "since": (today - chrono::Duration::days(since_ago)).to_string(),
        "until": (today - chrono::Duration::days(until_ago)).to_string(),
        "sources": sources,
    })
    .to_string()
}

/// The sourcer with `[control]` (subject `ops.gitea`, `control_extra` appended) on one repo
/// source, `acme/widgets`, whose first action is published once this returns.
async fn widgets_with_control(
    nats: &Nats,
    g: &gitea_sim::FakeGitea,
    control_extra: &str,
) -> Running {
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "gadgets");
    g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        &format!(
            "[control]\nenabled = true\nsubject = \"ops.gitea\"\n{control_extra}\n[[source]]\nrepo = \"acme/widgets\""
        ),
    );
    let running = run(cfg);
    let url = nats.url();
    wait_for(20, "widgets' first action published", || async {
        events_of(&url, "acme/widgets").await == 1
    })
    .await;
    running
}

#[tokio::test]
async fn a_backfill_of_a_source_not_configured_is_refused_naming_it() {
    let nats = Nats::start().await;
    let g = gitea().await;
    let running = widgets_with_control(&nats, &g, "").await;
    let client = nats.client().await;
    // gadgets exists in Gitea but is no source here: a backfill must not read it.
    let body = backfill_body(3, 2, &["repo:acme/widgets", "repo:acme/gadgets"]);
    let refused = refusal(&client, "ops.gitea.backfill", &body).await;
    let (code, why) = refused.unwrap_or_else(|| panic!("a backfill of gadgets was started"));
    assert_eq!(code, "404", "{why}");
    assert!(
        why.contains("repo:acme/gadgets is not a configured source"),
        "{why}"
    );
    assert!(
        !g.requests().iter().any(|r| r.path.contains("gadgets")),
        "gadgets was read"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_backfill_range_is_bounded_by_max_backfill_days_and_today() {
    let nats = Nats::start().await;
    let g = gitea().await;
    let running = widgets_with_control(&nats, &g, "max_backfill_days = 30").await;
    let client = nats.client().await;
    let widgets = ["repo:acme/widgets"];
    // 31 days before until: refused, saying the key.
    let (code, why) = refusal(
        &client,
        "ops.gitea.backfill",
        &backfill_body(33, 2, &widgets),
    )
    .await
    .unwrap_or_else(|| panic!("a 31-day span was started"));
    assert_eq!(code, "400", "{why}");
    assert!(
        why.contains("31 days before until") && why.contains("control.max_backfill_days"),
        "{why}"
    );
    // Without until (today), since a year back: refused as well.
    let today = chrono::Utc::now().date_naive();
    let year_ago = format!("{{\"since\": \"{}\"}}", today - chrono::Duration::days(365));
    let (code, _) = refusal(&client, "ops.gitea.backfill", &year_ago)
        .await
        .unwrap_or_else(|| panic!("a year up to today was started"));
    assert_eq!(code, "400");
    // until after today: refused.
    let (code, why) = refusal(
        &client,
        "ops.gitea.backfill",
        &backfill_body(1, -1, &widgets),
    )
    .await
    .unwrap_or_else(|| panic!("a range ending tomorrow was started"));
    assert_eq!(code, "400", "{why}");
    assert!(why.contains("is after today"), "{why}");
    // Exactly 30 days before until: started.
    let (started, code) = micro_request(
        &client,
        "ops.gitea.backfill",
        &backfill_body(32, 2, &widgets),
    )
    .await;
    assert_eq!(
        (started["started"].as_bool(), code),
        (Some(true), None),
        "{started}"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_second_backfill_is_refused_while_the_first_runs_and_accepted_after() {
    let nats = Nats::start().await;
    let g = gitea().await;
    let running = widgets_with_control(&nats, &g, "").await;
    let client = nats.client().await;
    // The first backfill's day reads (`date=`) answer late: it runs for seconds.
    g.inject(
        gitea_sim::Fault::new(gitea_sim::FaultKind::Delay(std::time::Duration::from_secs(
            3,
        )))
        .times(2)
        .on_path("date="),
    );
    let body = backfill_body(3, 2, &["repo:acme/widgets"]);
    let (started, code) = micro_request(&client, "ops.gitea.backfill", &body).await;
    assert_eq!(code, None, "{started}");
    let (code, why) = refusal(&client, "ops.gitea.backfill", &body)
        .await
        .unwrap_or_else(|| panic!("a second backfill started beside the first"));
    assert_eq!(code, "409", "{why}");
    assert!(
        why.contains("a backfill is running since") && why.contains("started by user unknown"),
        "{why}"
    );
    // Once the first has ended, one is accepted again: the place is given back.
    wait_for(30, "a backfill accepted after the first ended", || async {
        refusal(&client, "ops.gitea.backfill", &body)
            .await
            .is_none()
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn a_reset_or_pause_of_a_source_is_refused_while_its_reset_is_in_flight() {
    let nats = Nats::start().await;
    let g = gitea().await;
    let running = widgets_with_control(&nats, &g, "").await;
    let client = nats.client().await;
    // Every read of widgets answers late: a reset waits for its poll's safe point.
    g.inject(
        gitea_sim::Fault::new(gitea_sim::FaultKind::Delay(std::time::Duration::from_secs(
            2,
        )))
        .times(1000)
        .on_path("widgets"),
    );
    let subject = "ops.gitea.sources.reset";
    // A reset sent (flushed: the server has it, and hands it to the sourcer before
    // anything sent later), then a second reset and a pause. A reset that came while the
    // task sat between polls is over at once: then the pair is sent again.
    let first_answers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    wait_for(
        30,
        "a reset and a pause refused beside a reset in flight",
        || {
            let client = client.clone();
            let first_answers = first_answers.clone();
            async move {
                let inbox = client.new_inbox();
                let mut first = client.subscribe(inbox.clone()).await.expect("subscribe");
                client
                    .publish_with_reply(subject, inbox, "repo:acme/widgets".into())
                    .await
                    .expect("publish");
                client.flush().await.expect("flush");
                let second = refusal(&client, subject, "repo:acme/widgets").await;
                let pause = refusal(&client, "ops.gitea.sources.pause", "repo:acme/widgets").await;
                let answer = tokio::time::timeout(std::time::Duration::from_secs(15), first.next())
                    .await
                    .expect("the first reset answers")
                    .expect("an answer");
                first_answers
                    .lock()
                    .expect("answers")
                    .push(answer.headers.clone());
                if pause.is_none() {
                    // The reset was over already and the pause stored: lifted for the next try.
                    refusal(&client, "ops.gitea.sources.resume", "repo:acme/widgets").await;
                }
                let in_flight = |r: &Option<(String, String)>| {
                    r.as_ref().is_some_and(|(code, why)| {
                        code == "409" && why.contains("a reset of it is in flight")
                    })
                };
                in_flight(&second) && in_flight(&pause)
            }
        },
    )
    .await;
    let last = first_answers
        .lock()
        .expect("answers")
        .last()
        .cloned()
        .flatten();
    assert!(
        last.as_ref()
            .and_then(|h| h.get("Nats-Service-Error-Code"))
            .is_none(),
        "the reset in flight was carried out: {last:?}"
    );
    // The pause was refused, not stored: widgets is not paused.
    g.clear_faults();
    let (list, _) = micro_request(&client, "ops.gitea.sources.list", "").await;
    assert_eq!(list["sources"][0]["state"], "running", "{list}");
    // Once answered, a reset of it is carried out again.
    assert_eq!(
        refusal(&client, subject, "repo:acme/widgets").await,
        None,
        "a reset after the first was answered"
    );
    running.stop().await;
}

/// Everything logged on this thread while the guard lives (the test's runtime is
/// single-threaded: the sourcer's tasks log here too).
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
    /// The `control request` lines logged so far.
    fn control_requests(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().expect("logs"))
            .lines()
            .filter(|l| l.contains("control request"))
            .map(str::to_string)
            .collect()
    }
}

#[tokio::test]
async fn a_control_request_is_logged_with_the_nats_user_and_account_that_sent_it() {
    let logs = Logs::default();
    let _guard = logs.capture();
    // The sourcer in account SRC, which exports the control subjects; an operator, ada, in
    // account OPS, which imports them with `share: true`: nats-server tells the sourcer who
    // asked in the `Nats-Request-Info` header.
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("accounts.conf");
    std::fs::write(
        &conf,
        "accounts {\n\
           SRC {\n\
             jetstream: enabled\n\
             users: [{user: sourcer, password: sourcer-pw}]\n\
             exports: [{service: \"ops.gitea.>\"}]\n\
           }\n\
           OPS {\n\
             users: [{user: ada, password: ada-pw}]\n\
             imports: [{service: {account: SRC, subject: \"ops.gitea.>\"}, share: true}]\n\
           }\n\
         }\n",
    )
    .expect("server config");
    let nats = Nats::start_with(&["--config".into(), conf.display().to_string()]).await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let mut cfg = config(
        &g.url(),
        &nats.url(),
        "",
        "[control]\nenabled = true\nsubject = \"ops.gitea\"\n[[source]]\nrepo = \"acme/widgets\"",
    );
    let password = dir.path().join("sourcer.password");
    std::fs::write(&password, "sourcer-pw").expect("password file");
    cfg.nats.user = Some("sourcer".into());
    cfg.nats.password_file = Some(password);
    let running = run(cfg);
    let ada = async_nats::ConnectOptions::with_user_and_password("ada".into(), "ada-pw".into())
        .name("ada-laptop")
        .connect(nats.url())
        .await
        .expect("connect as ada");
    wait_for(20, "the service answering ada", || async {
        matches!(
            tokio::time::timeout(
                std::time::Duration::from_secs(2),
                ada.request("ops.gitea.sources.list", "".into())
            )
            .await,
            Ok(Ok(m)) if m.payload.starts_with(b"{\"sources\"")
        )
    })
    .await;

    let (_, code) = micro_request(&ada, "ops.gitea.sources.pause", "repo:acme/widgets").await;
    assert_eq!(code, None);
    let lines = logs.control_requests();
    let pause = lines
        .iter()
        .find(|l| l.contains("endpoint=\"sources-pause\""))
        .unwrap_or_else(|| panic!("no pause logged in {lines:#?}"));
    assert!(
        pause.contains("user=\"ada\"") && pause.contains("account=\"OPS\""),
        "{pause}"
    );
    // A header of ada's own is replaced by the server's on the way through the import.
    let mut forged = async_nats::HeaderMap::new();
    forged.insert("Nats-Request-Info", r#"{"acc":"SRC","user":"mallory"}"#);
    ada.request_with_headers("ops.gitea.sources.list", forged, "".into())
        .await
        .expect("list as ada");
    let lines = logs.control_requests();
    assert!(
        lines.iter().all(|l| !l.contains("mallory")),
        "a forged header was believed: {lines:#?}"
    );
    // Only the user and the account of the header: not the connection's name or host.
    assert!(
        !pause.contains("ada-laptop") && !pause.contains("127.0.0.1"),
        "{pause}"
    );
    // From within the sourcer's own account no header comes: the user is unknown.
    let own =
        async_nats::ConnectOptions::with_user_and_password("sourcer".into(), "sourcer-pw".into())
            .connect(nats.url())
            .await
            .expect("connect as sourcer");
    let (_, code) = micro_request(&own, "ops.gitea.sources.resume", "repo:acme/widgets").await;
    assert_eq!(code, None);
    let lines = logs.control_requests();
    let resume = lines
        .iter()
        .find(|l| l.contains("endpoint=\"sources-resume\""))
        .unwrap_or_else(|| panic!("no resume logged in {lines:#?}"));
    assert!(resume.contains("user=\"unknown\""), "{resume}");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("sourcer-pw") || l.contains("ada-pw")),
        "a password was logged: {lines:#?}"
    );
    running.stop().await;
}
