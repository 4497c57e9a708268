//! What the sourcer makes of the NATS side before any event: `check` creates nothing, the
//! stream it creates is bounded as configured, an existing stream is used as it is (and an
//! unbounded one is warned about), servers older than 2.10 and bounds too small are
//! refused, and backfill ledgers beyond the stream's window can be pruned.

mod support;

use gitea_nats_sourcer::nats;
use gitea_nats_sourcer::store::CursorStore;
use std::time::Duration;
use support::*;

const STREAM: &str = "GITEA_EVENTS";

fn write_config(
    dir: &std::path::Path,
    gitea: &str,
    nats_url: &str,
    nats_extra: &str,
) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[gitea]\nurl = \"{gitea}\"\n[nats]\nurl = \"{nats_url}\"\n{nats_extra}\n\
             [[source]]\norg = \"acme\"\n"
        ),
    )
    .expect("write config");
    path
}

async fn exists(url: &str, stream: &str) -> bool {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
    js.get_stream(stream).await.is_ok()
}

#[tokio::test]
async fn check_creates_nothing_and_says_run_will_create_the_stream_and_bucket() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(dir.path(), &g.url(), &nats.url(), "");
    let (code, text, _) = sourcer(&path, &["check"]).await;
    assert_eq!(code, Some(0), "{text}");
    for want in [
        "ok   stream GITEA_EVENTS: missing: run will create it (public repositories' events",
        "ok   stream GITEA_PRIVATE: missing: run will create it (private repositories' events: \
         subjects [\"gitea_private.>\"]",
        "ok   bucket gitea_cursors: missing: run will create it",
        "version 2.",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(
        !exists(&nats.url(), STREAM).await,
        "check created the stream"
    );
    assert!(
        !exists(&nats.url(), "KV_gitea_cursors").await,
        "check created the bucket"
    );
}

#[tokio::test]
async fn run_creates_a_bounded_stream_whose_events_carry_the_cloudevents_content_type() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    for i in 0..3 {
        g.push_action(gitea_sim::NewAction::comment(
            "acme",
            "acme/widgets",
            1,
            &format!("c{i}"),
        ));
    }
    let cfg = config_with_nats(
        &g.url(),
        &nats.url(),
        "max_age = \"3days\"\nmax_bytes = \"100MiB\"",
        200,
        "start = \"beginning\"",
        "[[source]]\norg = \"acme\"",
    );
    let running = run(cfg);
    wait_stream(&nats.url(), STREAM, 3, "three events").await;
    running.stop().await;
    let js = async_nats::jetstream::new(nats.client().await);
    let info = js
        .get_stream(STREAM)
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .clone();
    assert_eq!(info.config.max_age, Duration::from_secs(3 * 86400));
    assert_eq!(info.config.max_bytes, 100 << 20);
    assert_eq!(info.config.num_replicas, 1);
    assert_eq!(
        info.config.discard,
        async_nats::jetstream::stream::DiscardPolicy::Old
    );
    assert_eq!(info.config.duplicate_window, Duration::from_secs(1));
    for m in read_stream_stored(&nats.url(), STREAM).await {
        assert_eq!(
            m.content_type.as_deref(),
            Some("application/cloudevents+json")
        );
    }
}

#[tokio::test]
async fn an_existing_unbounded_stream_is_used_as_it_is_and_check_warns() {
    let nats = Nats::start().await;
    let js = async_nats::jetstream::new(nats.client().await);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec!["gitea.>".into()],
        ..Default::default()
    })
    .await
    .expect("create an unbounded stream");
    let g = gitea().await;
    g.add_org("acme");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(dir.path(), &g.url(), &nats.url(), "");
    let (code, text, _) = sourcer(&path, &["check"]).await;
    assert_eq!(code, Some(0), "a warning does not fail check:\n{text}");
    assert!(
        text.contains("warn stream GITEA_EVENTS: unbounded"),
        "{text}"
    );
    assert!(text.contains("placement: single server"), "{text}");
    let running = run(config(
        &g.url(),
        &nats.url(),
        "",
        "[[source]]\norg = \"acme\"",
    ));
    wait_for(30, "the bucket created by run", || {
        let url = nats.url();
        async move { exists(&url, "KV_gitea_cursors").await }
    })
    .await;
    running.stop().await;
    let info = js
        .get_stream(STREAM)
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .clone();
    assert!(nats::unbounded(&info.config), "the stream was changed");
}

/// A server that speaks just enough NATS to connect: INFO with `version`, PONG to PING.
async fn fake_server(version: &'static str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let info = format!(
                    "INFO {{\"server_id\":\"FAKE\",\"server_name\":\"old\",\"version\":\"{version}\",\
                     \"proto\":1,\"go\":\"go1.19\",\"host\":\"127.0.0.1\",\"port\":{port},\
                     \"headers\":true,\"max_payload\":1048576}}\r\n"
                );
                if sock.write_all(info.as_bytes()).await.is_err() {
                    return;
                }
                let mut buf = [0u8; 4096];
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    if buf[..n].windows(4).any(|w| w == b"PING")
                        && sock.write_all(b"PONG\r\n").await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn check_refuses_a_server_older_than_2_10_with_one_clear_line() {
    let port = fake_server("2.9.10").await;
    let g = gitea().await;
    g.add_org("acme");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("nats://127.0.0.1:{port}");
    let path = write_config(dir.path(), &g.url(), &url, "");
    let (code, text, _) = sourcer(&path, &["check"]).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "FAIL nats: nats-server 2.9.10 at {url} is not supported: the oldest supported is 2.10"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn bounds_shorter_than_the_duplicate_window_or_too_small_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (extra, key) in [
        ("max_age = \"1h\"", "nats.max_age"),
        ("max_bytes = \"1MiB\"", "nats.max_bytes"),
        ("replicas = 6", "nats.replicas"),
    ] {
        let path = write_config(
            dir.path(),
            "http://127.0.0.1:1",
            "nats://127.0.0.1:1",
            extra,
        );
        let (code, out, err) = sourcer(&path, &["check"]).await;
        assert_eq!(code, Some(2), "{extra}: {out}{err}");
        assert!(err.contains(key), "{extra}: {err}");
    }
}

#[tokio::test]
async fn backfill_ledgers_before_the_streams_window_are_pruned_and_nothing_else() {
    let nats = Nats::start().await;
    let cfg = config("http://127.0.0.1:1", &nats.url(), "", "");
    let js = gitea_nats_sourcer::nats::jetstream(nats.client().await);
    let info = nats::ensure_stream(&js, &cfg.nats).await.expect("stream");
    let kv = nats::ensure_bucket(&js, &cfg.nats).await.expect("bucket");
    let store = CursorStore::new(kv.clone());
    let now = chrono::Utc::now();
    let day = |days_ago: u64| {
        now.date_naive()
            .checked_sub_days(chrono::Days::new(days_ago))
            .expect("date")
    };
    let value = serde_json::json!({"ids": []});
    for d in [400, 40, 33, 31, 5, 0] {
        store
            .put(
                &format!("backfill/{}", day(d).format("%Y-%m-%d")),
                &value,
                0,
            )
            .await
            .expect("put ledger");
    }
    store.put("org.acme", &value, 0).await.expect("other key");
    // The default max_age is 30 days; two days of margin keep day 31.
    let keep_from = nats::ledgers_needed_from(&info, now).expect("bounded stream");
    assert_eq!(keep_from, day(32));
    let pruned = store
        .prune_backfill_ledgers(keep_from)
        .await
        .expect("prune");
    assert_eq!(pruned, vec![day(400), day(40), day(33)]);
    for d in [31, 5, 0] {
        let key = format!("backfill/{}", day(d).format("%Y-%m-%d"));
        assert!(
            store
                .get::<serde_json::Value>(&key)
                .await
                .expect("get")
                .is_some(),
            "{key} kept"
        );
    }
    assert!(
        store
            .get::<serde_json::Value>("org.acme")
            .await
            .expect("get")
            .is_some()
    );
}

/// Issue 12: `run` prunes them itself, at start and then hourly: the ledgers of days beyond
/// the stream's `max_age` (and its two days of margin) go, the others and every cursor stay.
#[tokio::test]
async fn run_prunes_the_backfill_ledgers_beyond_the_streams_max_age_at_start() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let js = gitea_nats_sourcer::nats::jetstream(nats.client().await);
    nats::ensure_stream(&js, &cfg.nats).await.expect("stream");
    let store = CursorStore::new(nats::ensure_bucket(&js, &cfg.nats).await.expect("bucket"));
    let today = chrono::Utc::now().date_naive();
    let key = |days_ago: u64| {
        let d = today
            .checked_sub_days(chrono::Days::new(days_ago))
            .expect("date");
        format!("backfill/{}", d.format("%Y-%m-%d"))
    };
    let value = serde_json::json!({"ids": []});
    for d in [400, 33, 31, 0] {
        store.put(&key(d), &value, 0).await.expect("put ledger");
    }
    let r = run(cfg);
    let gone = |k: String| {
        let store = &store;
        async move {
            store
                .get::<serde_json::Value>(&k)
                .await
                .expect("get")
                .is_none()
        }
    };
    wait_for(20, "the ledgers of 400 and 33 days ago deleted", || async {
        gone(key(400)).await && gone(key(33)).await
    })
    .await;
    r.stop().await;
    for d in [31, 0] {
        assert!(!gone(key(d)).await, "{} kept", key(d));
    }
}

/// A cursor is read from the stream leader (`STREAM.MSG.GET`), never with `DIRECT.GET`, which
/// every replica of a bucket answers, a follower with what it has applied so far: an instance
/// taking a source's lease right after another wrote its cursor and let it go could read the
/// cursor before that write and publish again what came after (copies, seen in `tests/ha.rs`
/// once). Proven by a user that may not use `DIRECT.GET` at all: each read must still work.
#[tokio::test]
async fn cursors_are_read_from_the_stream_leader_never_with_a_direct_get() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("no-direct.conf");
    std::fs::write(
        &conf,
        "authorization { users = [ { user: sourcer, password: s3cret, permissions: {\n\
         publish: { allow: [\">\"], deny: [\"$JS.API.DIRECT.GET.>\"] }, subscribe: \">\" } } ] }\n",
    )
    .expect("write the server config");
    let server = nats_harness::LocalNats::start_with(
        &dir.path().join("store"),
        &["-c".to_string(), conf.display().to_string()],
    )
    .await
    .unwrap_or_else(|e| {
        panic!("cannot start a test nats-server: {e} (scripts/ensure-nats-server installs it)")
    });
    let client =
        async_nats::ConnectOptions::with_user_and_password("sourcer".into(), "s3cret".into())
            .connect(server.url())
            .await
            .expect("connect as sourcer");
    let js = async_nats::jetstream::new(client);
    let kv = js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "gitea_cursors".into(),
            history: 1,
            ..Default::default()
        })
        .await
        .expect("bucket");
    assert!(
        kv.stream.cached_info().config.allow_direct,
        "a bucket as NATS makes them allows direct gets"
    );
    let store = CursorStore::new(kv);
    let spec: gitea_nats_sourcer::source::SourceSpec = "org:acme".parse().expect("spec");
    assert!(
        store
            .load(&spec)
            .await
            .expect("a read of no cursor")
            .is_none()
    );
    let cursor = gitea_nats_sourcer::store::cursor::Cursor::new(1_700_000_000, 1_699_990_000);
    let never = gitea_nats_sourcer::shutdown::channel().1;
    let revision = store.save(&spec, &cursor, 0, &never).await.expect("write");
    let stored = store
        .load(&spec)
        .await
        .expect("a read of the cursor")
        .expect("found");
    assert_eq!(stored.revision, revision);
    assert_eq!(stored.cursor, cursor);
}
