//! Least privilege, checked: the sample NATS accounts the package ships
//! (`packaging/nats/accounts.conf`, documented in `docs/least-privilege.md`) on a real
//! nats-server. The sourcer runs (with `[ha]` and `[control]`), `check` and `cursors list`
//! pass, the relay delivers, a reader reads and an operator lists the sources through the
//! control service, each as its own user: a permission missing from the file fails here.
//! And each may do no more: the reader and the relay cannot publish events, the sourcer
//! cannot delete the stream, the reader can neither read the cursors nor pause a source.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gitea_nats_sourcer::config::Config;
use gitea_nats_sourcer::relay::{self, config::RelayConfig};
use gitea_nats_sourcer::telemetry::Telemetry;
use gitea_sim::NewAction;
use nats_harness::SAMPLE_USERS;
use support::*;

/// A client of the test server as one of the sample users.
async fn connect_as(nats: &Nats, user: &str) -> async_nats::Client {
    connect_url_as(&nats.url(), user).await
}

/// A client of the servers `urls` (comma-separated) as one of the sample users.
async fn connect_url_as(urls: &str, user: &str) -> async_nats::Client {
    let (u, p) = SAMPLE_USERS
        .iter()
        .find(|(u, _)| *u == user)
        .expect("a sample user");
    let servers: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(|u| u.trim().parse().expect("a server URL"))
        .collect();
    async_nats::ConnectOptions::with_user_and_password(u.to_string(), p.to_string())
        .connect(servers)
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

/// The messages of the events stream, read with an ordered consumer as `client`'s user
/// (what `tail` and a consumer do); an error when that user may not.
async fn read_all(client: async_nats::Client) -> Result<usize, String> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    use futures::StreamExt;
    let mut js = async_nats::jetstream::new(client);
    js.set_timeout(Duration::from_secs(2));
    let mut stream = js
        .get_stream("GITEA_EVENTS")
        .await
        .map_err(|e| e.to_string())?;
    let n = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .messages as usize;
    let consumer = stream
        .create_consumer(OrderedConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    for i in 0..n {
        match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
            Ok(Some(Ok(_))) => {}
            other => return Err(format!("message {i} of {n}: {other:?}")),
        }
    }
    Ok(n)
}

/// Writes `user`'s password into `dir` and returns the `[nats]` lines that use it.
fn nats_auth(dir: &std::path::Path, user: &str) -> String {
    let (_, p) = SAMPLE_USERS
        .iter()
        .find(|(u, _)| *u == user)
        .expect("a sample user");
    let file = dir.join(format!("{user}.password"));
    std::fs::write(&file, p).expect("password file");
    format!(
        "user = \"{user}\"\npassword_file = {:?}\n",
        file.display().to_string()
    )
}

/// A JetStream publish to `subject` as `client`'s user: `Err` when the server refuses it.
async fn publish_as(client: async_nats::Client, subject: &str) -> Result<(), String> {
    let mut js = async_nats::jetstream::new(client);
    js.set_timeout(Duration::from_secs(2));
    let ack = js
        .publish(subject.to_string(), "x".into())
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_sample_accounts_let_each_part_do_its_work_and_no_more() {
    let conf = nats_harness::sample_accounts();
    let nats = Nats::start_with(&["--config".into(), conf.display().to_string()]).await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    for i in 0..3 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", i + 1));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "[gitea]\nurl = \"{}\"\n[nats]\nurl = \"{}\"\n{}duplicate_window = \"1s\"\nmax_bytes = \"256MiB\"\n\
         [poll]\ninterval = \"200ms\"\njitter = 0.0\nstart = \"beginning\"\nwebhooks = true\n\
         [ha]\nenabled = true\nlease_ttl = \"2s\"\n[control]\nenabled = true\n\
         [[source]]\nrepo = \"acme/widgets\"\n",
        g.url(),
        nats.url(),
        nats_auth(dir.path(), "sourcer")
    );
    let path = dir.path().join("sourcer.toml");
    std::fs::write(&path, &text).expect("config");
    let cfg = Config::parse(&text).expect("config parses");

    // Without the stream and bucket: `check` says run will create them.
    let (code, out, err) = sourcer(&path, &["check"]).await;
    assert_eq!(code, Some(0), "check as sourcer:\n{out}\n{err}");

    // The sourcer (with [ha]: its leases in gitea_leases) creates the stream and the
    // buckets and publishes 3 events and 3 push hooks.
    let running = run(cfg);
    let reader = connect_as(&nats, "reader").await;
    wait_for(30, "6 events, read as the reader", || async {
        read_all(reader.clone()).await.unwrap_or(0) >= 6
    })
    .await;
    let (code, out, err) = sourcer(&path, &["check"]).await;
    assert_eq!(
        code,
        Some(0),
        "check as sourcer, stream there:\n{out}\n{err}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    let (code, out, err) = sourcer(&path, &["cursors", "list"]).await;
    assert_eq!(code, Some(0), "cursors list as sourcer:\n{out}\n{err}");
    assert!(out.contains("repo:acme/widgets"), "{out}");

    // The relay, as its user, delivers the three push hooks to a local receiver.
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let relay_text = format!(
        "[nats]\nurl = \"{}\"\n{}\n[[receiver]]\nname = \"ci\"\nurl = \"http://{addr}/hook\"\nstart = \"all\"\n",
        nats.url(),
        nats_auth(dir.path(), "relay")
    );
    let relay_cfg = RelayConfig::parse(&relay_text).expect("relay config");
    let receivers = relay_cfg.receivers().expect("receivers");
    let (stop_relay, relay_stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay::run_with(
        relay_cfg,
        receivers,
        Telemetry::new(),
        async {
            let _ = relay_stopped.await;
        },
    ));
    wait_for(30, "the relay delivered the 3 push hooks", || async {
        posts.load(Ordering::Relaxed) >= 3
    })
    .await;

    // The operator lists the sources through [control]; the reader may not.
    let operator = connect_as(&nats, "operator").await;
    let listed = tokio::time::timeout(
        Duration::from_secs(10),
        operator.request("gitea_control.sources.list", "".into()),
    )
    .await
    .expect("an answer within 10 s")
    .expect("the operator's request");
    let listed: serde_json::Value = serde_json::from_slice(&listed.payload).expect("JSON");
    assert_eq!(
        listed["sources"][0]["source"], "repo:acme/widgets",
        "{listed}"
    );
    let discovered = tokio::time::timeout(
        Duration::from_secs(10),
        operator.request("$SRV.PING.gitea-nats-sourcer", "".into()),
    )
    .await
    .expect("an answer within 10 s")
    .expect("the operator's ping");
    assert!(String::from_utf8_lossy(&discovered.payload).contains("gitea-nats-sourcer"));
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        reader.request("gitea_control.sources.pause", "repo:acme/widgets".into()),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "the reader paused a source: {refused:?}"
    );

    // And no more than that.
    let before = read_all(reader.clone()).await.expect("read as the reader");
    let (as_reader, as_relay) = tokio::join!(
        publish_as(reader.clone(), "gitea.acme.widgets.commit_repo"),
        publish_as(
            connect_as(&nats, "relay").await,
            "gitea.acme.widgets.commit_repo"
        ),
    );
    assert!(as_reader.is_err(), "the reader published an event");
    assert!(as_relay.is_err(), "the relay published an event");
    let mut js = async_nats::jetstream::new(connect_as(&nats, "sourcer").await);
    js.set_timeout(Duration::from_secs(2));
    assert!(
        js.delete_stream("GITEA_EVENTS").await.is_err(),
        "the sourcer deleted the stream"
    );
    let mut js = async_nats::jetstream::new(reader.clone());
    js.set_timeout(Duration::from_secs(2));
    assert!(
        js.get_key_value("gitea_cursors").await.is_err(),
        "the reader opened the cursor bucket"
    );
    assert_eq!(read_all(reader.clone()).await, Ok(before));

    let _ = stop_relay.send(());
    let relayed = tokio::time::timeout(Duration::from_secs(10), relay_task)
        .await
        .expect("the relay stops within 10 s");
    assert!(
        matches!(relayed, Ok(Ok(()))),
        "the relay ends cleanly: {relayed:?}"
    );
    receiver.abort();
    running.stop().await;
}

#[tokio::test]
async fn the_sample_accounts_suffice_on_a_three_node_cluster() {
    // The GITEA account as an operator includes it, beside an account of the harness's own
    // for its readiness probes.
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = nats_harness::sample_accounts_beside_probe(&dir.path().join("conf"))
        .unwrap_or_else(|e| panic!("{e}"));
    let cluster = nats_harness::LocalCluster::start_with(
        &dir.path().join("nodes"),
        3,
        &["--config".into(), conf.display().to_string()],
        Some(nats_harness::PROBE_USER),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot start a test JetStream cluster: {e}"));
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    for i in 0..3 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", i + 1));
    }
    let text = format!(
        "[gitea]\nurl = \"{}\"\n[nats]\nurl = \"{}\"\n{}replicas = 3\nduplicate_window = \"1s\"\nmax_bytes = \"64MiB\"\n\
         [poll]\ninterval = \"200ms\"\njitter = 0.0\nstart = \"beginning\"\n\
         [ha]\nenabled = true\nlease_ttl = \"2s\"\n[control]\nenabled = true\n\
         [[source]]\nrepo = \"acme/widgets\"\n",
        g.url(),
        cluster.urls(),
        nats_auth(dir.path(), "sourcer")
    );
    let path = dir.path().join("sourcer.toml");
    std::fs::write(&path, &text).expect("config");
    let running = run(Config::parse(&text).expect("config parses"));
    let reader = connect_url_as(&cluster.urls(), "reader").await;
    wait_for(60, "3 events at R3, read as the reader", || async {
        read_all(reader.clone()).await.unwrap_or(0) >= 3
    })
    .await;
    let (code, out, err) = sourcer(&path, &["check"]).await;
    assert_eq!(
        code,
        Some(0),
        "check as sourcer on the cluster:\n{out}\n{err}"
    );
    assert!(out.contains("R3"), "{out}");
    let refused = publish_as(reader.clone(), "gitea.acme.widgets.commit_repo").await;
    assert!(refused.is_err(), "the reader published an event");
    running.stop().await;
}
