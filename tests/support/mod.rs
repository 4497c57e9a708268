//! Test support: a real nats-server per test (free port, own store dir, stop and restart),
//! the fake Gitea from `gitea_sim`, the sourcer run in-process with a
//! stop handle, and helpers that wait on conditions with deadlines (never plain sleeps).
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt;
use gitea_nats_sourcer::config::Config;
use gitea_nats_sourcer::run;
use gitea_sim::{FakeGitea, SimOptions};
use nats_harness::LocalNats;

/// A nats-server with its temp dir. Fails loudly when nats-server is missing.
pub struct Nats {
    pub server: LocalNats,
    _dir: tempfile::TempDir,
}

impl Nats {
    pub async fn start() -> Nats {
        Self::start_with(&[]).await
    }
    pub async fn start_with(extra: &[String]) -> Nats {
        Self::start_with_env(extra, &[]).await
    }
    /// With the environment variables `env` too (the sample accounts' passwords).
    pub async fn start_with_env(extra: &[String], env: &[(String, String)]) -> Nats {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = LocalNats::start_with_env(&dir.path().join("store"), extra, env)
            .await
            .unwrap_or_else(|e| panic!("cannot start a test nats-server: {e}"));
        Nats { server, _dir: dir }
    }
    pub fn url(&self) -> String {
        self.server.url()
    }
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to test nats")
    }
}

pub async fn gitea() -> FakeGitea {
    gitea_with(SimOptions::default()).await
}

pub async fn gitea_with(opts: SimOptions) -> FakeGitea {
    FakeGitea::start(opts).await.expect("start fake gitea")
}

/// A config for the fake Gitea and test NATS, fast intervals; `extra` is appended verbatim
/// (more `[[source]]` tables, or keys for `[poll]` given as `poll_extra`). The stream has a
/// one-second duplicate window, so "nothing repeated" is proven by the stream itself, not
/// by JetStream absorbing repeats.
pub fn config(gitea_url: &str, nats_url: &str, poll_extra: &str, sources: &str) -> Config {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
    let text = format!(
        r#"
[gitea]
url = "{gitea_url}"
requests_per_second = 200
burst = 50
timeout = "5s"

[nats]
url = "{nats_url}"
# One second: a repeat shows in the stream instead of being absorbed by JetStream.
duplicate_window = "1s"
# JetStream reserves max_bytes per stream against a store of 75 % of the free disk; tests
# making many streams on one server would run out at the 2 GiB default (256 MiB holds the
# largest test, 20,000 events).
max_bytes = "256MiB"

[poll]
interval = "200ms"
jitter = 0.0
{poll_extra}

{sources}
"#
    );
    Config::parse(&text).unwrap_or_else(|e| panic!("test config: {e}\n{text}"))
}

/// The sourcer running in-process.
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), gitea_nats_sourcer::run::RunError>>,
}

pub fn run(cfg: Config) -> Running {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run::run(cfg, async {
        let _ = rx.await;
    }));
    Running {
        stop: Some(tx),
        task,
    }
}

impl Running {
    /// Stops like SIGTERM does and waits for a clean exit.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("sourcer stops within 10 s");
        r.expect("task").expect("run ends without error");
    }
    /// Whether `run` has ended (by itself, unless stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
    /// Kills it: no cleanup at all (like SIGKILL of the process).
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Waits until `cond` is true, checking every 50 ms; panics with `what` after `secs`.
pub async fn wait_for<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Like [`wait_for`], but says whether the condition came true before the deadline
/// instead of failing: for tests that count what did not arrive.
pub async fn wait_until<F, Fut>(secs: u64, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub subject: String,
    pub msg_id: String,
    pub body: serde_json::Value,
    pub seq: u64,
    /// When JetStream stored it (Unix milliseconds).
    pub stored_ms: i64,
}

impl Msg {
    pub fn activity(&self) -> &serde_json::Value {
        &self.body["data"]["activity"]
    }
    pub fn repo(&self) -> String {
        self.body["subject"].as_str().unwrap_or("").to_string()
    }
    pub fn time(&self) -> i64 {
        chrono::DateTime::parse_from_rfc3339(self.body["time"].as_str().unwrap_or(""))
            .expect("time is RFC 3339")
            .timestamp()
    }
}

/// Number of messages in the stream.
pub async fn stream_count(nats_url: &str, stream: &str) -> u64 {
    let Ok(client) = async_nats::connect(nats_url).await else {
        return 0;
    };
    let js = async_nats::jetstream::new(client);
    match js.get_stream(stream).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Every message of the stream as JetStream stored it, in stream order (an ordered consumer
/// from the first message; at most 10 s a message).
pub async fn stream_messages(nats_url: &str, stream: &str) -> Vec<async_nats::jetstream::Message> {
    let client = async_nats::connect(nats_url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await.expect("stream exists");
    let n = s.info().await.expect("info").state.messages as usize;
    if n == 0 {
        return Vec::new();
    }
    let consumer = s
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("stream read in time")
            .expect("message")
            .expect("message ok");
        out.push(m);
    }
    out
}

/// Every message of the stream, in stream order.
pub async fn read_stream(nats_url: &str, stream: &str) -> Vec<Msg> {
    stream_messages(nats_url, stream)
        .await
        .into_iter()
        .map(|m| {
            let msg_id = m
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|v| v.to_string())
                .unwrap_or_default();
            let info = m.info().expect("a stream message has info");
            Msg {
                subject: m.subject.to_string(),
                msg_id,
                body: serde_json::from_slice(&m.payload).expect("body is JSON"),
                seq: info.stream_sequence,
                stored_ms: (info.published.unix_timestamp_nanos() / 1_000_000) as i64,
            }
        })
        .collect()
}

/// A request to a micro service endpoint on `subject`: the answer's JSON body (`Null` when
/// it is none) and its `Nats-Service-Error-Code`, within 15 s.
pub async fn micro_request(
    client: &async_nats::Client,
    subject: &str,
    body: &str,
) -> (serde_json::Value, Option<String>) {
    let answer = tokio::time::timeout(
        Duration::from_secs(15),
        client.request(subject.to_string(), body.to_string().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("{subject}: no answer within 15 s"))
    .unwrap_or_else(|e| panic!("{subject}: {e}"));
    let code = answer
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Service-Error-Code"))
        .map(|v| v.to_string());
    (
        serde_json::from_slice(&answer.payload).unwrap_or(serde_json::Value::Null),
        code,
    )
}

/// The events in `GITEA_EVENTS` whose repository (`owner/name`) `pick` takes.
pub async fn events_matching(nats_url: &str, pick: impl Fn(&str) -> bool) -> usize {
    if stream_count(nats_url, "GITEA_EVENTS").await == 0 {
        return 0;
    }
    read_stream(nats_url, "GITEA_EVENTS")
        .await
        .iter()
        .filter(|m| pick(&m.repo()))
        .count()
}

/// The events of `repo` in `GITEA_EVENTS`.
pub async fn events_of(nats_url: &str, repo: &str) -> usize {
    events_matching(nats_url, |r| r == repo).await
}

/// Asserts every id is unique and returns a map id -> count for diagnostics.
pub fn assert_no_repeats(msgs: &[Msg]) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in msgs {
        *counts.entry(m.msg_id.as_str()).or_default() += 1;
        assert_eq!(
            m.body["id"].as_str(),
            Some(m.msg_id.as_str()),
            "Nats-Msg-Id equals the CloudEvents id"
        );
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(repeated.is_empty(), "repeated events: {repeated:?}");
}

/// The logical identity of the action a message carries, compared with the fake's truth
/// (`gitea_sim::truth`, shared with the fault suite, the benchmark and the demo).
pub fn msg_identity(m: &Msg) -> String {
    gitea_sim::truth::of_event(&m.body)
}

/// The built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_gitea-nats-sourcer");

/// Runs `gitea-nats-sourcer --config CONFIG ARGS...` to completion: (exit code, stdout, stderr).
pub async fn sourcer(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .expect("run the binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until the stream holds at least `n` messages.
pub async fn wait_stream(nats_url: &str, stream: &str, n: u64, what: &str) {
    wait_for(30, what, || async move {
        stream_count(nats_url, stream).await >= n
    })
    .await;
}

/// The stored cursor of `spec` in the default cursor bucket, if any.
pub async fn cursor_of(
    nats_url: &str,
    spec: &str,
) -> Option<gitea_nats_sourcer::store::cursor::Cursor> {
    let client = async_nats::connect(nats_url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let kv = js.get_key_value("gitea_cursors").await.ok()?;
    let spec: gitea_nats_sourcer::source::SourceSpec = spec.parse().expect("spec");
    let store = gitea_nats_sourcer::store::CursorStore::new(kv);
    store.load(&spec).await.ok().flatten().map(|s| s.cursor)
}

/// A three-node JetStream cluster on loopback with its temp dir (`LocalCluster`): kill and
/// restart one node; fails loudly when nats-server is missing.
pub struct Cluster {
    pub nodes: nats_harness::LocalCluster,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let nodes = nats_harness::LocalCluster::start(dir.path(), 3)
            .await
            .unwrap_or_else(|e| panic!("cannot start a test JetStream cluster: {e}"));
        Cluster { nodes, _dir: dir }
    }
    /// Every node's URL, comma-separated.
    pub fn urls(&self) -> String {
        self.nodes.urls()
    }
    /// The URL of a running node other than `not`.
    pub fn url_avoiding(&self, not: Option<usize>) -> String {
        (0..self.nodes.len())
            .find(|i| Some(*i) != not && self.nodes.is_running(*i))
            .map(|i| self.nodes.node_url(i))
            .expect("a running node")
    }
}

/// Like [`config`], with `nats_extra` lines added to `[nats]` (a `duplicate_window` there
/// replaces the one-second default) and Gitea's request budget set to `requests_per_second`.
pub fn config_with_nats(
    gitea_url: &str,
    nats_url: &str,
    nats_extra: &str,
    requests_per_second: u32,
    poll_extra: &str,
    sources: &str,
) -> Config {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
    let window = if nats_extra.contains("duplicate_window") {
        ""
    } else {
        "duplicate_window = \"1s\""
    };
    // As in `config`: small reservations, whatever the free disk.
    let bytes = if nats_extra.contains("max_bytes") {
        ""
    } else {
        "max_bytes = \"256MiB\""
    };
    let text = format!(
        r#"
[gitea]
url = "{gitea_url}"
requests_per_second = {requests_per_second}
burst = {requests_per_second}
timeout = "5s"

[nats]
url = "{nats_url}"
{window}
{bytes}
{nats_extra}

[poll]
interval = "200ms"
jitter = 0.0
{poll_extra}

{sources}
"#
    );
    Config::parse(&text).unwrap_or_else(|e| panic!("test config: {e}\n{text}"))
}

/// The server name of the leader of `stream` (a bucket's stream is `KV_{bucket}`), asked
/// through `nats_url`; `None` while there is none or the server does not answer.
pub async fn stream_leader(nats_url: &str, stream: &str) -> Option<String> {
    let client = async_nats::connect(nats_url).await.ok()?;
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await.ok()?;
    let info = s.info().await.ok()?;
    info.cluster.as_ref()?.leader.clone()
}

/// A stored message with what [`read_stream`] leaves out: its `Content-Type` header and when
/// the stream stored it (Unix nanoseconds).
#[derive(Debug, Clone)]
pub struct StoredMsg {
    pub msg: Msg,
    pub content_type: Option<String>,
    pub stored_unix_nanos: i128,
}

/// Every message of the stream with headers and store times, in stream order.
pub async fn read_stream_stored(nats_url: &str, stream: &str) -> Vec<StoredMsg> {
    let mut out = Vec::new();
    for m in stream_messages(nats_url, stream).await {
        let header = |name: &str| {
            m.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.to_string())
        };
        let info = m.info().expect("a stream message has info");
        out.push(StoredMsg {
            msg: Msg {
                subject: m.subject.to_string(),
                msg_id: header("Nats-Msg-Id").unwrap_or_default(),
                body: serde_json::from_slice(&m.payload).expect("body is JSON"),
                seq: info.stream_sequence,
                stored_ms: (info.published.unix_timestamp_nanos() / 1_000_000) as i64,
            },
            content_type: header("Content-Type"),
            stored_unix_nanos: info.published.unix_timestamp_nanos(),
        });
    }
    out
}

/// What the fake Gitea holds, per logical identity, counting once a repeatable action
/// repeated by the same actor within one second (the documented limit of telling copies from
/// repeats).
pub fn truth_once_per_second(g: &FakeGitea) -> HashMap<String, usize> {
    gitea_sim::truth::counts(g.distinct_actions())
}
/// Waits until the stream's one-second duplicate window (the tests' `duplicate_window`) has
/// passed since its newest message was stored: a repeat published from now on is stored
/// again, not absorbed by JetStream.
pub async fn wait_past_duplicate_window(nats_url: &str, stream: &str) {
    let newest = read_stream(nats_url, stream)
        .await
        .iter()
        .map(|m| m.stored_ms)
        .max()
        .unwrap_or(0);
    wait_for(10, "the duplicate window to pass", || async {
        chrono::Utc::now().timestamp_millis() > newest + 1500
    })
    .await;
}

/// A fake Gitea serving pages of ten, with the user `alice` and the org `acme` owning
/// `acme/widgets`: where ties are split by page boundaries.
pub async fn widgets_paged_by_ten() -> FakeGitea {
    let g = gitea_with(SimOptions {
        max_response_items: 10,
        ..Default::default()
    })
    .await;
    g.add_user("alice");
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g
}

/// [`widgets_paged_by_ten`] with a trailing window of 40 comments by `alice`, two a second
/// over the last 20 s, and `old` older comments, one a second from an hour back: the rows
/// [`lose_one_per_read`] deletes.
pub async fn widgets_with_rows_to_lose(old: i64) -> (FakeGitea, Vec<gitea_sim::ActionId>) {
    const REPO: &str = "acme/widgets";
    let g = widgets_paged_by_ten().await;
    let now = g.now();
    for i in 0..40i64 {
        g.push_action(
            gitea_sim::NewAction::comment("alice", REPO, 1, &format!("window {i}"))
                .at(now - chrono::Duration::seconds(20 - i / 2)),
        );
    }
    let victims = (0..old)
        .map(|i| {
            g.push_action(
                gitea_sim::NewAction::comment("alice", REPO, 2, &format!("old {i}"))
                    .at(now - chrono::Duration::seconds(3600 + i)),
            )
        })
        .collect();
    (g, victims)
}

/// From now on every read of a feed deletes one of `victims` (the last first): the feed's
/// total shrinks at every read, so nothing read across such a change can be proven, and a
/// second stays unproven while victims last (until `g.set_feed_hook(None)`).
pub fn lose_one_per_read(g: &FakeGitea, victims: Vec<gitea_sim::ActionId>) {
    let victims = std::sync::Mutex::new(victims);
    g.set_feed_hook(Some(Box::new(move |_, w| {
        if let Some(v) = victims.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            w.soft_delete(v);
        }
    })));
}

pub mod bodies;
pub mod hooks;
pub mod structs;

/// Sends `sig` (`-HUP`, `-TERM`) to the child.
pub fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// SIGTERM, then waits (10 s at most) for exit 0.
pub async fn stop_child(child: std::process::Child) {
    signal(&child, "-TERM");
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("exits within 10 s of SIGTERM")
    .unwrap()
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// Kills the child if the test ends without stopping it (a failed assertion), so that no
/// sourcer outlives its test.
pub struct Reaper(pub Option<std::process::Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Reaper {
    pub fn child(&self) -> &std::process::Child {
        self.0.as_ref().expect("running")
    }
    pub fn take(mut self) -> std::process::Child {
        self.0.take().expect("running")
    }
}
