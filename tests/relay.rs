//! The relay end to end, with real parts: a real nats-server, real local HTTP receivers that
//! verify the signatures as Gitea's receivers do, the relay in-process or as the binary
//! (killed with SIGKILL), and once the whole chain from the simulated Gitea through the
//! sourcer. Every wait is on a condition with a deadline.

#[path = "support/receiver.rs"]
mod receiver;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream;
use gitea_nats_sourcer::config::NatsConfig;
use gitea_nats_sourcer::relay::{self, config::RelayConfig, dead, delivery};
use gitea_nats_sourcer::telemetry::Telemetry;
use receiver::{Got, Receiver};
use support::*;

const STREAM: &str = "GITEA_EVENTS";
const SECRET: &str = "s3cret-for-tests";

/// The stream as the sourcer makes it (smaller, for tests).
async fn stream(nats: &Nats) -> jetstream::Context {
    let js = jetstream::new(nats.client().await);
    let cfg = NatsConfig {
        url: nats.url(),
        max_bytes: 256 << 20,
        ..Default::default()
    };
    gitea_nats_sourcer::nats::ensure_stream(&js, &cfg)
        .await
        .expect("stream");
    js
}

/// Publishes hook event `n` of `repo` as the sourcer does (binary mode, Gitea's headers);
/// its body says `n` and `repo` (and `refuse`, which the test receiver answers with 422).
async fn publish(js: &jetstream::Context, repo: &str, n: usize, event_type: &str, refuse: bool) {
    let (owner, name) = repo.split_once('/').expect("owner/name");
    let id = format!("test-{owner}-{name}-{n}");
    let coarse = gitea_nats_sourcer::event::hook::coarse(match event_type {
        "push" => "push",
        "issues" => "issues",
        _ => "pull_request",
    });
    let body = serde_json::json!({
        "n": n,
        "refuse": refuse,
        "repository": {"full_name": repo},
        "note": "bytes forwarded unchanged: ünïcødé, \"quotes\", \\ back",
    });
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("ce-specversion", "1.0".to_string()),
        ("ce-id", id.clone()),
        ("ce-type", format!("io.gitea.webhook.{event_type}")),
        ("ce-source", format!("http://gitea.test/{repo}")),
        ("ce-subject", repo.to_string()),
        ("ce-time", "2026-01-01T00:00:00Z".to_string()),
        ("Content-Type", "application/json".to_string()),
        ("X-Gitea-Event", coarse.to_string()),
        ("X-Gitea-Event-Type", event_type.to_string()),
        ("Nats-Msg-Id", id.clone()),
    ] {
        h.insert(k, v.as_str());
    }
    let subject = gitea_nats_sourcer::event::hook::subject("gitea", owner, name, event_type);
    js.publish_with_headers(subject, h, serde_json::to_vec(&body).unwrap().into())
        .await
        .expect("publish")
        .await
        .expect("stored");
}

fn secret_file(dir: &std::path::Path) -> String {
    let p = dir.join("secret");
    std::fs::write(&p, format!("{SECRET}\n")).unwrap();
    p.display().to_string()
}

/// A `[[receiver]]` table with fast retries for tests.
fn receiver_toml(name: &str, url: &str, secret: &str, extra: &str) -> String {
    format!(
        "[[receiver]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret_file = \"{secret}\"\n\
         backoff_min = \"50ms\"\nbackoff_max = \"300ms\"\nack_wait = \"2s\"\nstart = \"all\"\ntimeout = \"2s\"\n{extra}\n"
    )
}

fn relay_config(nats: &Nats, receivers: &str) -> RelayConfig {
    let text = format!("[nats]\nurl = \"{}\"\n\n{receivers}", nats.url());
    RelayConfig::parse(&text).unwrap_or_else(|e| panic!("relay config: {e}\n{text}"))
}

/// The relay in-process, with its telemetry (metrics) visible.
struct Relay {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), relay::RelayError>>,
    telemetry: Telemetry,
}

fn start_relay(cfg: RelayConfig) -> Relay {
    let receivers = cfg.receivers().expect("receivers");
    let telemetry = Telemetry::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relay::run_with(cfg, receivers, telemetry.clone(), async {
        let _ = rx.await;
    }));
    Relay {
        stop: Some(tx),
        task,
        telemetry,
    }
}

impl Relay {
    fn metrics(&self) -> String {
        self.telemetry.metrics.encode()
    }
    fn metric(&self, line_start: &str) -> f64 {
        self.metrics()
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("relay stops within 10 s");
        r.expect("task").expect("relay ends without error");
    }
}

/// Checks what every delivery must carry: Gitea's headers, verified signatures, the stable
/// delivery id of (event, receiver).
fn assert_gitea_delivery(g: &Got, receiver: &str) {
    assert!(g.gitea_sig_ok, "X-Gitea-Signature verifies");
    assert!(g.hub_sig_ok, "X-Hub-Signature(-256) verify");
    assert_eq!(g.method, "POST");
    assert_eq!(g.header("Content-Type"), "application/json");
    let repo = g.json()["repository"]["full_name"]
        .as_str()
        .unwrap()
        .to_string();
    let (owner, name) = repo.split_once('/').unwrap();
    let id = format!("test-{owner}-{name}-{}", g.json()["n"]);
    assert_eq!(
        g.header("X-Gitea-Delivery"),
        delivery::delivery_id(&id, receiver)
    );
    for p in ["Gogs", "GitHub"] {
        assert_eq!(
            g.header(&format!("X-{p}-Delivery")),
            g.header("X-Gitea-Delivery")
        );
        assert_eq!(g.header(&format!("X-{p}-Event")), g.header("X-Gitea-Event"));
        assert_eq!(
            g.header(&format!("X-{p}-Event-Type")),
            g.header("X-Gitea-Event-Type")
        );
    }
    assert_eq!(g.header("X-Gogs-Signature"), g.header("X-Gitea-Signature"));
    assert!(!g.header("X-Gitea-Event").is_empty());
    for p in ["Gitea", "GitHub"] {
        assert_eq!(
            g.header(&format!("X-{p}-Hook-Installation-Target-Type")),
            "repository"
        );
    }
}

/// `n` of each delivered body, by repository, in arrival order.
fn order_by_repo(got: &[Got]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for g in got {
        let v = g.json();
        out.entry(v["repository"]["full_name"].as_str().unwrap().to_string())
            .or_default()
            .push(v["n"].as_u64().unwrap());
    }
    out
}

#[tokio::test]
async fn a_receiver_down_for_a_while_then_up_gets_every_event_in_order_with_stable_ids() {
    let nats = Nats::start().await;
    let js = stream(&nats).await;
    let dir = tempfile::tempdir().unwrap();
    let port = nats_harness::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}/hook");
    let relay = start_relay(relay_config(
        &nats,
        &receiver_toml("ci", &url, &secret_file(dir.path()), ""),
    ));
    let repos = ["acme/web", "acme/api", "alice/dot.files"];
    for n in 0..10 {
        for r in repos {
            publish(&js, r, n, "push", false).await;
        }
    }
    // Down: nothing listens on the port; the relay retries the first event.
    wait_for(20, "retries while the receiver is down", || async {
        relay.metric("gitea_nats_sourcer_relay_retries_total{receiver=\"ci\"}") >= 3.0
    })
    .await;
    wait_for(10, "a backlog of 30", || async {
        relay
            .metrics()
            .contains("relay_backlog{receiver=\"ci\"} 30")
    })
    .await;
    // Then a 503, a 500 and a timeout-free 502 for the first attempts after it is up.
    let rx = Receiver::start_on(port, SECRET).await;
    rx.script(&[(503, None), (500, None), (502, None)]);
    wait_for(30, "all 30 delivered", || async {
        rx.delivered().len() >= 30
    })
    .await;
    let delivered = rx.delivered();
    assert_eq!(delivered.len(), 30, "each once (no restart, no repeat)");
    for g in &delivered {
        assert_gitea_delivery(g, "ci");
    }
    // Stream order: all of one repository in order, and overall.
    for (repo, ns) in order_by_repo(&delivered) {
        assert_eq!(ns, (0..10).collect::<Vec<_>>(), "{repo}");
    }
    // The first event was tried 4 times at the receiver, always with the same delivery id.
    let first = rx.got();
    let ids: Vec<_> = first[..4]
        .iter()
        .map(|g| g.header("X-Gitea-Delivery"))
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(
        first[..4].iter().map(|g| g.status).collect::<Vec<_>>(),
        [503, 500, 502, 200]
    );
    wait_for(10, "backlog and oldest age back to 0", || async {
        relay
            .metrics()
            .contains("relay_oldest_undelivered_seconds{receiver=\"ci\"} 0")
    })
    .await;
    let m = relay.metrics();
    assert!(
        m.contains("relay_deliveries_total{receiver=\"ci\",class=\"2xx\"} 30"),
        "{m}"
    );
    assert!(
        m.contains("relay_deliveries_total{receiver=\"ci\",class=\"5xx\"} 3"),
        "{m}"
    );
    assert!(!m.contains(SECRET) && !m.contains(&url));
    relay.stop().await;
}

#[tokio::test]
async fn without_a_secret_a_delivery_carries_gitea_s_bare_signature_headers() {
    // deliver.go: without a secret the hex signatures are empty and the GitHub copies are
    // the prefix alone (`sha1=`, `sha256=`); every header is there, none left out.
    let nats = Nats::start().await;
    let js = stream(&nats).await;
    let rx = Receiver::start("").await;
    // The test receiver refuses a signature that does not verify: this one has none.
    rx.script(&[(200, None)]);
    let relay = start_relay(relay_config(
        &nats,
        &format!(
            "[[receiver]]\nname = \"open\"\nurl = \"{}\"\nstart = \"all\"\n",
            rx.url()
        ),
    ));
    publish(&js, "acme/web", 0, "push", false).await;
    wait_for(20, "the delivery", || async { !rx.delivered().is_empty() }).await;
    let g = &rx.delivered()[0];
    for (name, value) in [
        ("X-Gitea-Signature", ""),
        ("X-Gogs-Signature", ""),
        ("X-Hub-Signature", "sha1="),
        ("X-Hub-Signature-256", "sha256="),
        ("X-Gitea-Hook-Installation-Target-Type", "repository"),
        ("X-GitHub-Hook-Installation-Target-Type", "repository"),
    ] {
        assert!(g.headers.contains_key(name), "{name} is sent");
        assert_eq!(g.header(name), value, "{name}");
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_refused_event_is_a_dead_letter_at_once_429_waits_for_retry_after_and_redeliver_sends_it_again()
 {
    let nats = Nats::start().await;
    let js = stream(&nats).await;
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(SECRET).await;
    let toml = receiver_toml("ci", &rx.url(), &secret_file(dir.path()), "");
    let cfg_path = dir.path().join("relay.toml");
    std::fs::write(
        &cfg_path,
        format!("[nats]\nurl = \"{}\"\n\n{toml}", nats.url()),
    )
    .unwrap();
    let relay = start_relay(relay_config(&nats, &toml));
    // 429 with Retry-After: 1 for the first event's first attempt.
    rx.script(&[(429, Some("1"))]);
    publish(&js, "acme/web", 0, "push", false).await;
    publish(&js, "acme/web", 1, "push", true).await;
    publish(&js, "acme/web", 2, "issues", false).await;
    wait_for(20, "events 0 and 2 delivered", || async {
        rx.delivered().len() >= 2
    })
    .await;
    let got = rx.got();
    assert_eq!(
        got.iter().map(|g| g.status).collect::<Vec<_>>(),
        [429, 200, 422, 200],
        "the refused one is tried once"
    );
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After honoured: {waited:?}"
    );
    assert_eq!(
        got[0].header("X-Gitea-Delivery"),
        got[1].header("X-Gitea-Delivery")
    );
    assert_eq!(got[3].header("X-Gitea-Event"), "issues");
    // The dead letter: event id, status, the receiver's answer.
    let store = jetstream::new(nats.client().await)
        .get_key_value("gitea_relay_dead")
        .await
        .expect("bucket");
    let letters = dead::list(&store, Some("ci")).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let l = &letters[0];
    assert_eq!(l.event_id, "test-acme-web-1");
    assert_eq!(l.status, Some(422));
    assert_eq!(l.attempts, 1);
    assert!(l.body_excerpt.contains("answer 422"), "{l:?}");
    assert!(l.reason.starts_with("refused"), "{l:?}");
    assert_eq!(l.delivery_id, got[2].header("X-Gitea-Delivery"));
    assert_eq!(
        relay.metric("gitea_nats_sourcer_relay_dead_letters_total{receiver=\"ci\"}"),
        1.0
    );
    relay.stop().await;
    // The CLI lists it; redelivering it while the receiver still refuses keeps it.
    let (code, out, err) = sourcer(&cfg_path, &["relay", "dead-letters", "list"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("test-acme-web-1") && out.contains("status=422"),
        "{out}"
    );
    assert!(out.contains("1 dead letters"), "{out}");
    let (code, out, _) = sourcer(&cfg_path, &["relay", "redeliver", "ci", "test-acme-web-1"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(dead::list(&store, None).await.unwrap().len(), 1);
    // The receiver fixed (here: one that accepts it), `redeliver` of all of ci's letters
    // sends it again with the same delivery id and removes the letter.
    let ok = Receiver::start(SECRET).await;
    let toml = receiver_toml("ci", &ok.url(), &secret_file(dir.path()), "");
    std::fs::write(
        &cfg_path,
        format!("[nats]\nurl = \"{}\"\n\n{toml}", nats.url()),
    )
    .unwrap();
    ok.script(&[(200, None)]);
    let (code, out, err) = sourcer(&cfg_path, &["relay", "redeliver", "ci"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("1 redelivered, 0 failed"), "{out}");
    assert_eq!(ok.delivered().len(), 1);
    assert_eq!(ok.delivered()[0].header("X-Gitea-Delivery"), l.delivery_id);
    assert_gitea_delivery(&ok.delivered()[0], "ci");
    assert!(dead::list(&store, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn one_dead_receiver_never_delays_another() {
    let nats = Nats::start().await;
    let js = stream(&nats).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let dead_port = nats_harness::free_port().unwrap();
    let alive = Receiver::start(SECRET).await;
    let http = nats_harness::free_port().unwrap();
    let relay = start_relay(relay_config(
        &nats,
        &format!(
            "[http]\nlisten = \"127.0.0.1:{http}\"\n\n{}{}",
            receiver_toml(
                "dead",
                &format!("http://127.0.0.1:{dead_port}/x"),
                &secret,
                ""
            ),
            receiver_toml(
                "alive",
                &alive.url(),
                &secret,
                "events = [\"push\"]\nrepos = [\"acme/*\"]"
            )
        ),
    ));
    let started = Instant::now();
    for n in 0..20 {
        publish(&js, "acme/web", n, "push", false).await;
        // Filtered out by `alive` (another owner; another event).
        publish(&js, "bob/web", n, "push", false).await;
        publish(&js, "acme/web", 100 + n, "issues", false).await;
    }
    wait_for(15, "alive gets its 20", || async {
        alive.delivered().len() >= 20
    })
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(alive.got().len(), 20, "only acme/* pushes");
    let d = alive.delivered();
    assert_eq!(order_by_repo(&d)["acme/web"], (0..20).collect::<Vec<_>>());
    for g in &d {
        assert_gitea_delivery(g, "alive");
    }
    // Ready (NATS is there; a dead receiver is the relay doing its job, and Gitea is not
    // needed), and the metrics are served.
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{http}{path}");
        async move {
            let r = reqwest::get(url).await.expect("the relay's HTTP listener");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await, (200, "ready\n".to_string()));
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("relay_deliveries_total{receiver=\"alive\",class=\"2xx\"} 20"),
        "{metrics}"
    );
    assert!(metrics.contains("relay_oldest_undelivered_seconds{receiver=\"dead\"}"));
    // Meanwhile the dead one is still retrying its first event.
    assert!(relay.metric("gitea_nats_sourcer_relay_retries_total{receiver=\"dead\"}") >= 1.0);
    wait_for(10, "a backlog of 60", || async {
        relay
            .metrics()
            .contains("relay_backlog{receiver=\"dead\"} 60")
    })
    .await;
    relay.stop().await;
}

#[tokio::test]
async fn a_relay_killed_mid_burst_loses_nothing_after_its_restart() {
    let nats = Nats::start().await;
    let js = stream(&nats).await;
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(SECRET).await;
    let cfg_path = dir.path().join("relay.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[nats]\nurl = \"{}\"\n\n{}",
            nats.url(),
            receiver_toml("ci", &rx.url(), &secret_file(dir.path()), "")
        ),
    )
    .unwrap();
    let spawn = || {
        tokio::process::Command::new(BIN)
            .arg("--config")
            .arg(&cfg_path)
            .arg("relay")
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the relay")
    };
    let mut first = spawn();
    const N: usize = 300;
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            for n in 0..N {
                publish(
                    &js,
                    if n % 2 == 0 { "acme/a" } else { "acme/b" },
                    n,
                    "push",
                    false,
                )
                .await;
            }
        })
    };
    wait_for(30, "a third delivered", || async {
        rx.delivered().len() >= N / 3
    })
    .await;
    // SIGKILL: no cleanup at all.
    first.start_kill().expect("kill");
    first.wait().await.expect("reaped");
    let at_kill = rx.delivered().len();
    publisher.await.unwrap();
    let mut second = spawn();
    wait_for(60, "every event delivered after the restart", || async {
        let ns: std::collections::HashSet<u64> = rx
            .delivered()
            .iter()
            .map(|g| g.json()["n"].as_u64().unwrap())
            .collect();
        ns.len() == N
    })
    .await;
    second.start_kill().expect("kill");
    let delivered = rx.delivered();
    assert!(at_kill < N, "killed mid-burst ({at_kill} of {N})");
    // Duplicates only as redeliveries: the same delivery id, and at most the one in hand.
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for g in &delivered {
        assert_gitea_delivery(g, "ci");
        *by_id
            .entry(g.header("X-Gitea-Delivery").to_string())
            .or_default() += 1;
    }
    assert_eq!(by_id.len(), N);
    let repeats = delivered.len() - N;
    assert!(repeats <= 1, "{repeats} repeats");
    // First arrivals keep the stream's order per repository.
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<Got> = delivered
        .into_iter()
        .filter(|g| seen.insert(g.header("X-Gitea-Delivery").to_string()))
        .collect();
    for (repo, ns) in order_by_repo(&firsts) {
        let mut sorted = ns.clone();
        sorted.sort();
        assert_eq!(ns, sorted, "{repo}");
    }
}

#[tokio::test]
async fn config_errors_exit_2_naming_the_key_and_never_showing_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let url_file = dir.path().join("url");
    std::fs::write(&url_file, "gopher://T0KEN@host/\n").unwrap();
    let ok = |extra: &str| {
        format!(
            "[[receiver]]\nname = \"ci\"\nurl = \"http://h/?t=T0KEN\"\nsecret_file = \"{secret}\"\n{extra}"
        )
    };
    let cases = [
        ("[[receiver]]\nname = \"ci\"\nurl = \"http//h T0KEN\"\n".to_string(), "receiver[0].url"),
        (ok("events = [\"pushh\"]"), "receiver[0].events"),
        (ok("repos = [\"acme/{a,b}\"]"), "receiver[0].repos"),
        (format!("{}{}", ok(""), ok("")), "receiver[1].name"),
        (
            "[[receiver]]\nname = \"ci\"\nurl = \"http://h/\"\nsecret_file = \"/nonexistent/ci-secret\"\n".into(),
            "receiver[0].secret_file",
        ),
        (
            format!("[[receiver]]\nname = \"ci\"\nurl_file = {:?}\n", url_file.display().to_string()),
            "receiver[0].url_file",
        ),
        (ok("give_up_after = \"soon\""), "give_up_after"),
        (format!("[nats]\nurl = \"\"\n{}", ok("")), "nats.url"),
        (ok("colour = \"red\""), "colour"),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, text).unwrap();
        for args in [&["relay"][..], &["relay", "check"][..]] {
            let (code, out, err) = sourcer(&path, args).await;
            assert_eq!(code, Some(2), "{args:?} {text}: {out}{err}");
            let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
            assert!(line.contains(key), "{key} in {err:?}");
            assert!(!err.contains("T0KEN") && !out.contains("T0KEN") && !err.contains(SECRET));
        }
    }
}

#[tokio::test]
async fn sourcer_to_relay_to_receiver_end_to_end() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"now\"\nwebhooks = true",
        "[[source]]\nrepo = \"acme/widgets\"\n",
    );
    let sourcer_run = run(cfg);
    wait_for(20, "the first polls", || async { g.requests().len() > 5 }).await;
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(SECRET).await;
    let cfg_path = dir.path().join("relay.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[nats]\nurl = \"{}\"\n\n{}",
            nats.url(),
            receiver_toml("ci", &rx.url(), &secret_file(dir.path()), "")
        ),
    )
    .unwrap();
    let (code, out, err) = sourcer(&cfg_path, &["relay", "check"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ok   receiver ci:"), "{out}");
    let relay = start_relay(RelayConfig::load(&cfg_path).unwrap());
    g.set_branch_head(
        "acme/widgets",
        "main",
        "1111111111111111111111111111111111111111",
    );
    g.push_action(gitea_sim::NewAction::push(
        "alice",
        "acme/widgets",
        "main",
        2,
    ));
    g.create_issue("acme/widgets", "alice", "Crash on start", false);
    wait_for(60, "a push and an issues delivery", || async {
        let d = rx.delivered();
        d.iter().any(|g| g.header("X-Gitea-Event") == "push")
            && d.iter().any(|g| g.header("X-Gitea-Event") == "issues")
    })
    .await;
    let hooks = support::hooks::read_hooks(&nats.url(), STREAM).await;
    for d in rx.delivered() {
        assert!(d.gitea_sig_ok && d.hub_sig_ok);
        let stored = hooks
            .iter()
            .find(|h| {
                delivery::delivery_id(h.header("ce-id"), "ci") == d.header("X-Gitea-Delivery")
            })
            .expect("the stored hook of this delivery");
        assert_eq!(d.body, stored.payload, "the body byte for byte");
        assert_eq!(
            d.header("X-Gitea-Event-Type"),
            stored.header("X-Gitea-Event-Type")
        );
    }
    let push = rx
        .delivered()
        .into_iter()
        .find(|g| g.header("X-Gitea-Event") == "push")
        .unwrap();
    assert_eq!(push.json()["ref"], "refs/heads/main");
    assert_eq!(push.json()["repository"]["full_name"], "acme/widgets");
    relay.stop().await;
    sourcer_run.stop().await;
}

#[tokio::test]
async fn retries_longer_than_ack_wait_stay_in_progress_and_budgets_end_in_dead_letters() {
    let nats = Nats::start().await;
    let js = stream(&nats).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let slow = Receiver::start(SECRET).await;
    let counted = Receiver::start(SECRET).await;
    let timed = Receiver::start(SECRET).await;
    // `slow`: 503s for about three ack waits (1 s) before it takes event 0.
    slow.script(&[(503, None); 14]);
    counted.script(&[(503, None); 50]);
    timed.script(&[(500, None); 50]);
    let relay = start_relay(relay_config(
        &nats,
        &format!(
            "{}{}{}",
            receiver_toml("slow", &slow.url(), &secret, "")
                .replace("ack_wait = \"2s\"", "ack_wait = \"1s\""),
            receiver_toml("counted", &counted.url(), &secret, "max_attempts = 3"),
            receiver_toml("timed", &timed.url(), &secret, "give_up_after = \"400ms\""),
        ),
    ));
    publish(&js, "acme/web", 0, "push", false).await;
    publish(&js, "acme/web", 1, "push", false).await;
    wait_for(30, "slow: event 1 delivered", || async {
        slow.delivered().iter().any(|g| g.json()["n"] == 1)
    })
    .await;
    let first = slow.got();
    let span = first[14].at - first[0].at;
    assert!(span > Duration::from_secs(2), "retried for {span:?}");
    // Kept in progress: JetStream never handed event 0 out again (the loop would drop such a
    // repeat, but counts it).
    assert_eq!(
        relay.metric("gitea_nats_sourcer_relay_redeliveries_total{receiver=\"slow\"}"),
        0.0,
        "JetStream handed nothing out again"
    );
    let n: Vec<_> = slow
        .delivered()
        .iter()
        .map(|g| g.json()["n"].clone())
        .collect();
    assert_eq!(n, [0, 1]);
    for g in &first[..15] {
        assert_eq!(
            g.header("X-Gitea-Delivery"),
            first[0].header("X-Gitea-Delivery")
        );
    }
    wait_for(20, "counted and timed: both events dead", || async {
        relay.metric("gitea_nats_sourcer_relay_dead_letters_total{receiver=\"counted\"}") >= 2.0
            && relay.metric("gitea_nats_sourcer_relay_dead_letters_total{receiver=\"timed\"}")
                >= 2.0
    })
    .await;
    // max_attempts = 3: three attempts per event, then the next event.
    assert_eq!(counted.got().len(), 6);
    let store = jetstream::new(nats.client().await)
        .get_key_value("gitea_relay_dead")
        .await
        .expect("bucket");
    let counted_letters = dead::list(&store, Some("counted")).await.unwrap();
    assert_eq!(counted_letters.len(), 2);
    assert!(
        counted_letters
            .iter()
            .all(|l| l.attempts == 3 && l.status == Some(503) && l.reason.starts_with("gave up")),
        "{counted_letters:?}"
    );
    let timed_letters = dead::list(&store, Some("timed")).await.unwrap();
    assert_eq!(timed_letters.len(), 2);
    assert!(
        timed_letters
            .iter()
            .all(|l| l.status == Some(500) && l.attempts >= 2)
    );
    assert!(dead::list(&store, Some("slow")).await.unwrap().is_empty());
    relay.stop().await;
}
