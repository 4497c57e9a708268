//! Least privilege, checked: the sample NATS accounts the package ships
//! (`packaging/nats/accounts.conf`, documented in `docs/least-privilege.md`) on a real
//! nats-server. The sourcer runs (with `[ha]` and `[control]`), `check` and `cursors list`
//! pass, the relay delivers, a reader reads and an operator lists the sources through the
//! control service, each as its own user: a permission missing from the file fails here.
//! And each may do no more: the reader and the relay cannot publish events, the sourcer
//! cannot delete the stream, the reader can neither read the cursors nor pause a source.
//! Audiences apart: a reader of public repositories' events reaches no private
//! repository's event by any JetStream API (no consumer on the private stream, none without
//! a filter below `gitea.>`, no read by sequence or subject), and no reader pulls, acks or
//! deletes the relay's consumers; a private reader reads the private stream. No password
//! ships: the file as it is fails `nats-server -t`.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gitea_nats_sourcer::config::Config;
use gitea_nats_sourcer::relay::{self, config::RelayConfig};
use gitea_nats_sourcer::telemetry::Telemetry;
use gitea_sim::NewAction;
use nats_harness::SAMPLE_USERS;
use support::*;

/// A nats-server running the sample accounts as shipped, with the tests' passwords in the
/// environment variables they name.
async fn sample_nats() -> Nats {
    let conf = nats_harness::sample_accounts();
    Nats::start_with_env(
        &["--config".into(), conf.display().to_string()],
        &nats_harness::sample_env(),
    )
    .await
}

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

/// `(subject, Gitea-Visibility)` of every message of `stream` below `prefix`, read with an
/// ordered consumer as `client`'s user (what `tail` and a consumer do: named, with its one
/// filter in the create subject); an error when that user may not.
async fn read_stream(
    client: async_nats::Client,
    stream: &str,
    prefix: &str,
) -> Result<Vec<(String, String)>, String> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    use futures::StreamExt;
    let mut js = async_nats::jetstream::new(client);
    js.set_timeout(Duration::from_secs(2));
    let mut stream = js.get_stream(stream).await.map_err(|e| e.to_string())?;
    let n = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .messages as usize;
    let consumer = stream
        .create_consumer(OrderedConfig {
            name: Some(format!("test-{:016x}", rand::random::<u64>())),
            filter_subject: format!("{prefix}.>"),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
            Ok(Some(Ok(m))) => out.push((
                m.subject.to_string(),
                m.headers
                    .as_ref()
                    .and_then(|h| h.get("Gitea-Visibility"))
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default(),
            )),
            other => return Err(format!("message {i} of {n}: {other:?}")),
        }
    }
    Ok(out)
}

/// The number of messages of the public events stream, read as `client`'s user.
async fn read_all(client: async_nats::Client) -> Result<usize, String> {
    read_stream(client, "GITEA_EVENTS", "gitea")
        .await
        .map(|m| m.len())
}

/// A client as a sample user that keeps the errors the server sends it (the permissions
/// violations), to tell a refusal from a request nobody answered.
struct Watched {
    client: async_nats::Client,
    errors: Arc<Mutex<Vec<String>>>,
}

async fn watched_as(nats: &Nats, user: &str) -> Watched {
    let (u, p) = SAMPLE_USERS
        .iter()
        .find(|(u, _)| *u == user)
        .expect("a sample user");
    let errors = Arc::new(Mutex::new(Vec::new()));
    let kept = errors.clone();
    let client = async_nats::ConnectOptions::with_user_and_password(u.to_string(), p.to_string())
        .event_callback(move |event| {
            let kept = kept.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    kept.lock().expect("errors").push(e.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"));
    Watched { client, errors }
}

impl Watched {
    /// How many permissions violations the server reported for exactly `subject`.
    fn violations(&self, subject: &str) -> usize {
        let quoted = format!("\"{subject}\"");
        self.errors
            .lock()
            .expect("errors")
            .iter()
            .filter(|e| e.contains("Permissions Violation for Publish") && e.contains(&quoted))
            .count()
    }

    /// Publishes `body` to `subject` (with a reply inbox, as a request) and waits for the
    /// server's permissions violation for it: the server refused it, it reached nobody.
    async fn refused(&self, subject: &str, body: &str) {
        let before = self.violations(subject);
        let inbox = self.client.new_inbox();
        self.client
            .publish_with_reply(subject.to_string(), inbox, body.to_string().into())
            .await
            .expect("publish");
        self.client.flush().await.expect("flush");
        wait_for(10, &format!("the server refusing {subject}"), || async {
            self.violations(subject) > before
        })
        .await;
    }
}

/// A request as `client`'s user that someone answers within 10 s.
async fn answered(client: &async_nats::Client, subject: &str, body: &str) -> async_nats::Message {
    tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject.to_string(), body.to_string().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer to {subject} within 10 s"))
    .unwrap_or_else(|e| panic!("{subject}: {e}"))
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
    let nats = sample_nats().await;
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
    let cluster = nats_harness::LocalCluster::start_with_env(
        &dir.path().join("nodes"),
        3,
        &["--config".into(), conf.display().to_string()],
        &nats_harness::sample_env(),
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

#[test]
fn the_shipped_sample_accounts_are_refused_until_every_password_is_set() {
    let binary = nats_harness::find_binary().unwrap_or_else(|e| panic!("{e}"));
    let conf = nats_harness::sample_accounts();
    let test = |env: &[(String, String)]| {
        let mut cmd = std::process::Command::new(&binary);
        cmd.arg("-t").arg("-c").arg(&conf);
        for (user, _) in SAMPLE_USERS {
            cmd.env_remove(nats_harness::sample_password_var(user));
        }
        let out = cmd
            .envs(env.iter().cloned())
            .output()
            .expect("nats-server -t");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // As shipped: refused, naming the first password it lacks.
    let (valid, err) = test(&[]);
    assert!(!valid, "the shipped sample passes nats-server -t: {err}");
    assert!(err.contains("GITEA_NATS_SOURCER_PASSWORD"), "{err}");
    // Any one missing: refused, naming it.
    let all = nats_harness::sample_env();
    for (missing, _) in &all {
        let rest: Vec<_> = all.iter().filter(|(k, _)| k != missing).cloned().collect();
        let (valid, err) = test(&rest);
        assert!(!valid, "valid without {missing}: {err}");
        assert!(err.contains(missing.as_str()), "{err}");
    }
    // Every one set: valid.
    let (valid, err) = test(&all);
    assert!(valid, "{err}");
    // And no password is written in the files themselves.
    for file in ["accounts.conf", "gitea-account.conf"] {
        let path = conf.with_file_name(file);
        let text = std::fs::read_to_string(&path).expect("sample file");
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some((_, value)) = line.split_once("password:") {
                assert!(
                    value.trim().starts_with("$GITEA_NATS_"),
                    "{file}: a password that is not a variable: {line}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_public_reader_reaches_no_private_event_by_any_jetstream_api_nor_the_relays_consumers() {
    let nats = sample_nats().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "secret");
    g.set_private("acme/secret", true);
    for i in 0..2 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", i + 1));
        g.push_action(NewAction::push("alice", "acme/secret", "main", i + 1));
    }
    // Both streams made up front as the sourcer, with direct gets on (an operator may turn
    // them on): a direct get then has someone to answer it, and only the permissions can
    // refuse it.
    {
        use async_nats::jetstream::stream;
        let js = async_nats::jetstream::new(connect_as(&nats, "sourcer").await);
        for (name, prefix) in [
            ("GITEA_EVENTS", "gitea"),
            ("GITEA_PRIVATE", "gitea_private"),
        ] {
            js.create_stream(stream::Config {
                name: name.into(),
                subjects: vec![format!("{prefix}.>")],
                allow_direct: true,
                duplicate_window: Duration::from_secs(1),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("create {name} as the sourcer: {e}"));
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "[gitea]\nurl = \"{}\"\n[nats]\nurl = \"{}\"\n{}duplicate_window = \"1s\"\n\
         [poll]\ninterval = \"200ms\"\njitter = 0.0\nstart = \"beginning\"\nwebhooks = true\n\
         [[source]]\nrepo = \"acme/widgets\"\n[[source]]\nrepo = \"acme/secret\"\n",
        g.url(),
        nats.url(),
        nats_auth(dir.path(), "sourcer")
    );
    let running = run(Config::parse(&text).expect("config parses"));

    // Each reader reads its audience's events: 2 pushes and their 2 hooks each.
    let reader = watched_as(&nats, "reader").await;
    let private_reader = watched_as(&nats, "private-reader").await;
    wait_for(30, "4 public events, read as the reader", || async {
        read_stream(reader.client.clone(), "GITEA_EVENTS", "gitea")
            .await
            .is_ok_and(|m| m.len() >= 4)
    })
    .await;
    wait_for(
        30,
        "4 private events, read as the private reader",
        || async {
            read_stream(
                private_reader.client.clone(),
                "GITEA_PRIVATE",
                "gitea_private",
            )
            .await
            .is_ok_and(|m| m.len() >= 4)
        },
    )
    .await;
    let public = read_stream(reader.client.clone(), "GITEA_EVENTS", "gitea")
        .await
        .expect("the public events as the reader");
    for (subject, visibility) in &public {
        assert!(subject.starts_with("gitea.acme.widgets."), "{subject}");
        assert_eq!(visibility, "public", "{subject}");
    }
    let private = read_stream(
        private_reader.client.clone(),
        "GITEA_PRIVATE",
        "gitea_private",
    )
    .await
    .expect("the private events as the private reader");
    for (subject, visibility) in &private {
        assert!(
            subject.starts_with("gitea_private.acme.secret."),
            "{subject}"
        );
        assert_eq!(visibility, "private", "{subject}");
    }
    // The private reader reads the public stream too, as a receiver with `private = true`.
    assert_eq!(
        read_stream(private_reader.client.clone(), "GITEA_EVENTS", "gitea")
            .await
            .map(|m| m.len()),
        Ok(public.len())
    );
    let a_private_subject = private[0].0.clone();

    // (a) The public reader: nothing of the private stream.
    {
        use async_nats::jetstream::consumer::pull::OrderedConfig;
        let mut js = async_nats::jetstream::new(reader.client.clone());
        js.set_timeout(Duration::from_secs(2));
        assert!(js.get_stream("GITEA_PRIVATE").await.is_err());
        let made = js
            .create_consumer_on_stream(
                OrderedConfig {
                    name: Some("peek".into()),
                    filter_subject: "gitea_private.>".into(),
                    ..Default::default()
                },
                "GITEA_PRIVATE",
            )
            .await;
        assert!(made.is_err(), "the reader made a consumer on GITEA_PRIVATE");
    }
    let config = |filter: &str| {
        format!(
            "{{\"stream_name\":\"S\",\"config\":{{\"name\":\"peek\",\"filter_subject\":\"{filter}\",\
             \"ack_policy\":\"none\",\"inactive_threshold\":10000000000}}}}"
        )
    };
    for subject in [
        "$JS.API.STREAM.INFO.GITEA_PRIVATE",
        "$JS.API.CONSUMER.CREATE.GITEA_PRIVATE",
        "$JS.API.CONSUMER.CREATE.GITEA_PRIVATE.peek",
        "$JS.API.CONSUMER.CREATE.GITEA_PRIVATE.peek.gitea_private.>",
        "$JS.API.CONSUMER.CREATE.GITEA_PRIVATE.peek.gitea.>",
        "$JS.API.CONSUMER.DURABLE.CREATE.GITEA_PRIVATE.peek",
    ] {
        reader
            .refused(
                subject,
                &config("gitea_private.>").replace("\"S\"", "\"GITEA_PRIVATE\""),
            )
            .await;
    }

    // (b) On the public stream: only with one filter below gitea.>, in the subject.
    {
        use async_nats::jetstream::consumer::pull::OrderedConfig;
        let mut js = async_nats::jetstream::new(reader.client.clone());
        js.set_timeout(Duration::from_secs(2));
        let stream = js.get_stream("GITEA_EVENTS").await.expect("GITEA_EVENTS");
        // Unnamed: async-nats asks with the legacy subject, which says no filter.
        assert!(
            stream
                .create_consumer(OrderedConfig {
                    filter_subject: "gitea.>".into(),
                    ..Default::default()
                })
                .await
                .is_err(),
            "the reader made a consumer with the legacy create"
        );
        // Two filters: no filter in the subject either.
        assert!(
            stream
                .create_consumer(OrderedConfig {
                    name: Some("peek".into()),
                    filter_subjects: vec!["gitea.>".into(), "gitea_private.>".into()],
                    ..Default::default()
                })
                .await
                .is_err(),
            "the reader made a consumer of two filters"
        );
    }
    for (subject, filter) in [
        ("$JS.API.CONSUMER.CREATE.GITEA_EVENTS", "gitea_private.>"),
        ("$JS.API.CONSUMER.CREATE.GITEA_EVENTS.peek", ">"),
        (
            "$JS.API.CONSUMER.CREATE.GITEA_EVENTS.peek.gitea_private.>",
            "gitea_private.>",
        ),
        ("$JS.API.CONSUMER.CREATE.GITEA_EVENTS.peek.>", ">"),
        ("$JS.API.CONSUMER.DURABLE.CREATE.GITEA_EVENTS.peek", ">"),
    ] {
        reader
            .refused(
                subject,
                &config(filter).replace("\"S\"", "\"GITEA_EVENTS\""),
            )
            .await;
    }

    // (c) No message by sequence or subject, of either stream, for either reader. The
    // relay may (`relay redeliver`): the stream does answer such a request.
    let relay = watched_as(&nats, "relay").await;
    let got = answered(
        &relay.client,
        "$JS.API.DIRECT.GET.GITEA_EVENTS",
        "{\"seq\":1}",
    )
    .await;
    assert!(
        got.headers
            .as_ref()
            .is_some_and(|h| h.get("Nats-Sequence").is_some()),
        "the relay's direct get: {got:?}"
    );
    for who in [&reader, &private_reader] {
        for stream in ["GITEA_EVENTS", "GITEA_PRIVATE"] {
            who.refused(&format!("$JS.API.DIRECT.GET.{stream}"), "{\"seq\":1}")
                .await;
            who.refused(&format!("$JS.API.STREAM.MSG.GET.{stream}"), "{\"seq\":1}")
                .await;
        }
        who.refused(
            &format!("$JS.API.DIRECT.GET.GITEA_PRIVATE.{a_private_subject}"),
            "",
        )
        .await;
        who.refused(
            "$JS.API.DIRECT.GET.GITEA_EVENTS.gitea.acme.widgets.push",
            "",
        )
        .await;
    }

    // (d) The relay's consumers (receiver `ci`, both streams), each with an event handed
    // out and not yet acknowledged: no reader pulls, acks, deletes, reads or remakes them.
    let relay_cfg = RelayConfig::parse(&format!(
        "[nats]\nurl = \"{}\"\n{}\n[[receiver]]\nname = \"ci\"\nurl = \"http://127.0.0.1:9/hook\"\n\
         start = \"all\"\nprivate = true\n",
        nats.url(),
        nats_auth(dir.path(), "relay")
    ))
    .expect("relay config");
    let ci = relay_cfg.receivers().expect("receivers").remove(0);
    let relay_js = async_nats::jetstream::new(relay.client.clone());
    for (stream_name, prefix) in [
        ("GITEA_EVENTS", "gitea"),
        ("GITEA_PRIVATE", "gitea_private"),
    ] {
        use futures::StreamExt;
        let stream = relay_js.get_stream(stream_name).await.expect("stream");
        let mut consumer = relay::worker::ensure_consumer(&stream, prefix, &ci)
            .await
            .unwrap_or_else(|e| panic!("the relay's consumer on {stream_name}: {e}"));
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .messages()
            .await
            .expect("fetch as the relay");
        let handed = batch
            .next()
            .await
            .expect("an event for the relay")
            .expect("an event for the relay");
        let ack = handed.reply.clone().expect("an ack subject").to_string();
        for who in [&reader, &private_reader] {
            who.refused(
                &format!("$JS.API.CONSUMER.MSG.NEXT.{stream_name}.relay-ci"),
                "{\"batch\":1,\"no_wait\":true}",
            )
            .await;
            who.refused(&ack, "+ACK").await;
            who.refused(
                &format!("$JS.API.CONSUMER.DELETE.{stream_name}.relay-ci"),
                "",
            )
            .await;
            who.refused(&format!("$JS.API.CONSUMER.INFO.{stream_name}.relay-ci"), "")
                .await;
            who.refused(
                &format!("$JS.API.CONSUMER.CREATE.{stream_name}.relay-ci.{prefix}.>"),
                &config(&format!("{prefix}.>"))
                    .replace("\"S\"", &format!("\"{stream_name}\""))
                    .replace("\"peek\"", "\"relay-ci\""),
            )
            .await;
        }
        // Still there, the event still in hand; the relay's own ack works.
        let info = consumer.info().await.expect("the relay's consumer info");
        assert_eq!(info.num_ack_pending, 1, "{stream_name}: {info:?}");
        handed.double_ack().await.expect("the relay acks");
        let info = consumer.info().await.expect("the relay's consumer info");
        assert_eq!(info.num_ack_pending, 0, "{stream_name}: {info:?}");
    }
    // And the relay touches no consumer but its own.
    relay
        .refused(
            "$JS.API.CONSUMER.CREATE.GITEA_EVENTS.peek.gitea.>",
            &config("gitea.>").replace("\"S\"", "\"GITEA_EVENTS\""),
        )
        .await;
    relay
        .refused(
            "$JS.API.CONSUMER.MSG.NEXT.GITEA_EVENTS.peek",
            "{\"batch\":1,\"no_wait\":true}",
        )
        .await;
    relay
        .refused("$JS.API.CONSUMER.DELETE.GITEA_EVENTS.relay-ci", "")
        .await;
    running.stop().await;
}
