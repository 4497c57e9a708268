//! The sourcer against a three-node JetStream cluster on loopback, with the stream and the
//! cursor bucket at three replicas: the leader of the stream, then the leader of the bucket,
//! is killed (SIGKILL) during a catch-up and during live polling, and restarted. Nothing may
//! be lost; what is stored twice is counted here (the stream's duplicate window is one
//! second, so it hides nothing) and must be a retry of the outage; publishing must resume
//! within an election. Each kill prints the time until publishing resumed.

mod support;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gitea_sim::HistorySpec;
use support::*;

const STREAM: &str = "GITEA_EVENTS";
const BUCKET_STREAM: &str = "KV_gitea_cursors";
/// Longest an election may take (about 10 s measured here); generous for two shared cores.
const RESUME_BOUND: Duration = Duration::from_secs(30);
/// Longest an event may be stored again after its first copy (a retry of the outage). A
/// batch NATS fails is tried again with the same ids until the new leader answers (at most
/// 5.1 s after its first copy measured here); 30 s leaves room for a slow election on two
/// shared cores. Every such copy is far inside the default duplicate window (2 hours).
const STORED_AGAIN_BOUND: Duration = Duration::from_secs(30);
/// Longest publishing may stand still once the new leader answers: a request timeout (5 s)
/// and the retry's pause (at most 1 s). Publishing and cursor writes are tried again across
/// an election, so a catch-up keeps the days it read ahead: publishing went on 0.2 to 1.1 s
/// after the new leader was elected here (before the retries: up to 25.4 s, reading the
/// days again).
const AFTER_ELECTION: Duration = Duration::from_secs(20);

/// One cluster test at a time: each runs three servers, and the times it prints are the
/// point; two clusters on two shared cores would measure each other.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The last sequence of `stream` through `url` (grows with every store, repeats included).
async fn last_seq(url: &str, stream: &str) -> Option<u64> {
    let client = async_nats::connect(url).await.ok()?;
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await.ok()?;
    Some(s.info().await.ok()?.state.last_sequence)
}

/// One leader kill and what it cost.
struct Kill {
    of: &'static str,
    node: String,
    elected_after: Duration,
    resumed_after: Duration,
}

/// Kills the leader of `of` (the events stream or the bucket's stream), waits until a new
/// leader answers and `of` stores again (publishing, or cursor writes, resumed), then
/// restarts the killed node on its store and waits until JetStream answers through it.
async fn kill_leader(cluster: &mut Cluster, of: &'static str) -> Kill {
    let leader = Mutex::new(None);
    wait_for(30, &format!("a leader of {of}"), || {
        let url = cluster.url_avoiding(None);
        let leader = &leader;
        async move {
            let l = stream_leader(&url, of).await;
            let found = l.is_some();
            *leader.lock().expect("lock") = l;
            found
        }
    })
    .await;
    let node = leader.into_inner().expect("lock").expect("leader known");
    let i = cluster.nodes.index_of(&node).expect("leader is a node");
    let killed = Instant::now();
    cluster.nodes.kill(i).await;
    let survivor = cluster.url_avoiding(Some(i));
    let after_election = Mutex::new(None);
    wait_for(
        60,
        &format!("a new leader of {of} after {node} was killed"),
        || {
            let survivor = survivor.clone();
            let node = node.clone();
            let after = &after_election;
            async move {
                match stream_leader(&survivor, of).await {
                    Some(l) if l != node => {
                        let s = last_seq(&survivor, of).await;
                        let found = s.is_some();
                        *after.lock().expect("lock") = s;
                        found
                    }
                    _ => false,
                }
            }
        },
    )
    .await;
    let s1 = after_election
        .into_inner()
        .expect("lock")
        .expect("sequence read");
    let elected_after = killed.elapsed();
    wait_for(
        60,
        &format!("{of} storing again after its leader was killed"),
        || {
            let survivor = survivor.clone();
            async move { last_seq(&survivor, of).await.is_some_and(|s| s > s1) }
        },
    )
    .await;
    let resumed_after = killed.elapsed();
    eprintln!(
        "cluster: killed {node}, leader of {of}: new leader after {elected_after:.1?}, \
         publishing resumed after {resumed_after:.1?}"
    );
    cluster.nodes.restart(i).await.expect("restart the node");
    cluster
        .nodes
        .wait_jetstream(Duration::from_secs(60))
        .await
        .expect("JetStream answers through every node again");
    Kill {
        of,
        node,
        elected_after,
        resumed_after,
    }
}

/// Reads the whole stream until it holds `want` distinct events (deadline `secs`); then
/// checks every event once against the truth, the content type on every message, and
/// that every event stored twice was stored again within `STORED_AGAIN_BOUND` (a retry of an
/// outage, absorbed by any duplicate window longer than that: the default is 2 hours).
/// Returns (events stored twice, largest gap between the copies).
async fn verify(url: &str, truth: &HashMap<String, usize>, secs: u64) -> (usize, Duration) {
    let want: usize = truth.values().sum();
    let read = Mutex::new(Vec::new());
    let complete = wait_until(secs, || {
        let read = &read;
        async move {
            if (stream_count(url, STREAM).await as usize) < want {
                return false;
            }
            let msgs = read_stream_stored(url, STREAM).await;
            let distinct: std::collections::HashSet<&str> =
                msgs.iter().map(|m| m.msg.msg_id.as_str()).collect();
            let done = distinct.len() >= want;
            *read.lock().expect("lock") = msgs;
            done
        }
    })
    .await;
    let msgs = read.into_inner().expect("lock");
    let mut by_id: HashMap<&str, Vec<&StoredMsg>> = HashMap::new();
    for m in &msgs {
        assert_eq!(
            m.content_type.as_deref(),
            Some("application/cloudevents+json"),
            "structured-mode header on {}",
            m.msg.subject
        );
        assert_eq!(m.msg.body["id"].as_str(), Some(m.msg.msg_id.as_str()));
        by_id.entry(m.msg.msg_id.as_str()).or_default().push(m);
    }
    let mut got: HashMap<String, usize> = HashMap::new();
    let mut repeated = 0;
    let mut widest = Duration::ZERO;
    for copies in by_id.values() {
        *got.entry(msg_identity(&copies[0].msg)).or_default() += 1;
        if copies.len() > 1 {
            repeated += copies.len() - 1;
            let first = copies
                .iter()
                .map(|c| c.stored_unix_nanos)
                .min()
                .unwrap_or(0);
            let last = copies
                .iter()
                .map(|c| c.stored_unix_nanos)
                .max()
                .unwrap_or(0);
            let gap = Duration::from_nanos(u64::try_from(last - first).unwrap_or(u64::MAX));
            widest = widest.max(gap);
        }
    }
    let lost: Vec<_> = truth
        .iter()
        .filter(|(k, n)| got.get(*k) != Some(n))
        .map(|(k, _)| k)
        .take(5)
        .collect();
    assert!(
        complete && lost.is_empty(),
        "{} distinct of {want} events; lost or miscounted, e.g. {lost:?}",
        by_id.len()
    );
    assert_eq!(got, *truth, "nothing published that Gitea does not hold");
    assert!(
        widest <= STORED_AGAIN_BOUND,
        "an event was stored again {widest:?} after its first copy: not a retry of an outage"
    );
    (repeated, widest)
}

fn report(label: &str, kills: &[Kill], repeated: usize, widest: Duration) {
    for k in kills {
        assert!(
            k.elected_after <= RESUME_BOUND,
            "{label}: no new leader of {} {:?} after {} was killed",
            k.of,
            k.elected_after,
            k.node
        );
        assert!(
            k.resumed_after <= k.elected_after + AFTER_ELECTION,
            "{label}: publishing stood still {:?} after {} (leader of {}) was killed, \
             {:?} after the new leader answered",
            k.resumed_after,
            k.node,
            k.of,
            k.resumed_after - k.elected_after
        );
    }
    let times: Vec<String> = kills
        .iter()
        .map(|k| {
            format!(
                "{} leader {}: elected {:.1?}, publishing {:.1?}",
                k.of, k.node, k.elected_after, k.resumed_after
            )
        })
        .collect();
    eprintln!(
        "cluster {label}: resumed after [{}]; {repeated} events stored twice, copies at most \
         {widest:.1?} apart (absorbed by any duplicate window longer than that), 0 lost",
        times.join(", ")
    );
}

async fn assert_r3(url: &str) {
    let client = async_nats::connect(url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    for name in [STREAM, BUCKET_STREAM] {
        let mut s = js.get_stream(name).await.expect("exists");
        let info = s.info().await.expect("info");
        assert_eq!(info.config.num_replicas, 3, "{name} replicas");
        let cluster = info.cluster.as_ref().expect("clustered");
        assert!(cluster.leader.is_some(), "{name} has a leader");
        assert_eq!(cluster.replicas.len(), 2, "{name}: two followers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kills_during_a_catch_up_lose_nothing_and_stall_no_longer_than_an_election() {
    let _one = ONE_CLUSTER.lock().await;
    let mut cluster = Cluster::start().await;
    let g = gitea().await;
    g.generate_history(&HistorySpec {
        actions: 40_000,
        days: 10,
        orgs: 1,
        repos: 4,
        payload_bytes: 300,
        ties: true,
    });
    let org = g.org_names()[0].clone();
    let truth = truth_once_per_second(&g);
    let want = truth.values().sum::<usize>() as u64;
    // Twenty requests a second: a day is read in a few seconds (so a stall is NATS's, not
    // Gitea's), and the ten days last past two kills and restarts (at fifty, since walks
    // prove a day in fewer passes, the catch-up ended before the bucket leader's kill and no
    // cursor write followed it; with split ties read again at another page size instead of
    // re-read, five days of 20,000 actions ended before it at twenty too).
    let cfg = config_with_nats(
        &g.url(),
        &cluster.urls(),
        "replicas = 3",
        20,
        "start = \"beginning\"",
        &format!("[[source]]\norg = \"{org}\""),
    );
    let run = run(cfg);
    let url = cluster.url_avoiding(None);
    wait_stream(&url, STREAM, 500, "the catch-up under way").await;
    assert_r3(&url).await;
    let mut kills = Vec::new();
    kills.push(kill_leader(&mut cluster, STREAM).await);
    let url = cluster.url_avoiding(None);
    let at = stream_count(&url, STREAM).await;
    assert!(
        at < want,
        "still catching up at the second kill ({at} of {want})"
    );
    kills.push(kill_leader(&mut cluster, BUCKET_STREAM).await);
    let url = cluster.url_avoiding(None);
    let at = stream_count(&url, STREAM).await;
    assert!(
        at < want,
        "still catching up after the second kill ({at} of {want})"
    );
    let (repeated, widest) = verify(&url, &truth, 240).await;
    run.stop().await;
    report("catch-up", &kills, repeated, widest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kills_during_live_polling_lose_nothing_and_stall_no_longer_than_an_election() {
    let _one = ONE_CLUSTER.lock().await;
    let mut cluster = Cluster::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_user("alice");
    g.add_user("bob");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "dot.files");
    let cfg = config_with_nats(
        &g.url(),
        &cluster.urls(),
        "replicas = 3",
        200,
        "start = \"beginning\"",
        "[[source]]\norg = \"acme\"",
    );
    let run = run(cfg);
    let activity = g.spawn_activity(10.0);
    let url = cluster.url_avoiding(None);
    wait_stream(&url, STREAM, 20, "live events flowing").await;
    assert_r3(&url).await;
    let mut kills = Vec::new();
    kills.push(kill_leader(&mut cluster, STREAM).await);
    kills.push(kill_leader(&mut cluster, BUCKET_STREAM).await);
    let url = cluster.url_avoiding(None);
    let before = stream_count(&url, STREAM).await;
    wait_stream(&url, STREAM, before + 20, "live after both kills").await;
    activity.abort();
    let _ = activity.await;
    let truth = truth_once_per_second(&g);
    let (repeated, widest) = verify(&url, &truth, 120).await;
    run.stop().await;
    report("live", &kills, repeated, widest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_shows_the_cluster_the_leader_and_the_replicas_of_stream_and_bucket() {
    let _one = ONE_CLUSTER.lock().await;
    let cluster = Cluster::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[gitea]\nurl = \"{}\"\n[nats]\nurl = \"{}\"\nreplicas = 3\nmax_bytes = \"256MiB\"\n[[source]]\norg = \"acme\"\n",
            g.url(),
            cluster.urls()
        ),
    )
    .expect("write config");
    let (code, text, _) = sourcer(&path, &["check"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("stream GITEA_EVENTS: missing: run will create it") && text.contains("R3"),
        "{text}"
    );
    // `run` creates them; then check shows where they live.
    let cfg = config_with_nats(
        &g.url(),
        &cluster.urls(),
        "replicas = 3",
        200,
        "",
        "[[source]]\norg = \"acme\"",
    );
    let running = run(cfg);
    let url = cluster.url_avoiding(None);
    wait_for(30, "the bucket created", || {
        let url = url.clone();
        async move { stream_leader(&url, BUCKET_STREAM).await.is_some() }
    })
    .await;
    running.stop().await;
    let (code, text, _) = sourcer(&path, &["check"]).await;
    assert_eq!(code, Some(0), "{text}");
    for what in ["stream GITEA_EVENTS", "bucket gitea_cursors"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("info {what} placement:")))
            .unwrap_or_else(|| panic!("no placement line for {what}:\n{text}"));
        assert!(
            line.contains("R3, cluster sourcer-test, leader n")
                && line.matches("(current)").count() == 2,
            "{line}"
        );
    }
}

/// Issue 12: a sourcer started while its cluster has no JetStream quorum (two of three nodes
/// down) cannot create its three-replica stream. It says so, counts the attempts, answers
/// `/readyz` with 503, and tries again, instead of ending `run`; once the nodes are back it
/// creates the stream and bucket and publishes everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sourcer_started_before_its_cluster_has_a_quorum_waits_for_it() {
    let _one = ONE_CLUSTER.lock().await;
    let mut cluster = Cluster::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    for _ in 0..5 {
        g.push_action(gitea_sim::NewAction::push("bob", "acme/widgets", "main", 1));
    }
    cluster.nodes.kill(1).await;
    cluster.nodes.kill(2).await;
    let mut cfg = config_with_nats(
        &g.url(),
        &cluster.nodes.node_url(0),
        "replicas = 3",
        50,
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let port = nats_harness::free_port().expect("a free port");
    cfg.http.listen = Some(format!("127.0.0.1:{port}").parse().expect("addr"));
    let run = run(cfg);
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let failures = || async {
        let text = match reqwest::get(&metrics).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .find(|l| l.starts_with("gitea_nats_sourcer_nats_setup_failures_total "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    wait_for(60, "two failed attempts to set up the stream", || async {
        failures().await >= 2.0
    })
    .await;
    assert!(!run.is_finished(), "run ended instead of waiting for NATS");
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(ready, 503, "/readyz while the stream cannot be set up");
    let tried = failures().await;
    cluster.nodes.restart(1).await.expect("restart node 1");
    cluster.nodes.restart(2).await.expect("restart node 2");
    wait_stream(
        &cluster.nodes.node_url(0),
        STREAM,
        5,
        "every event once the cluster is back",
    )
    .await;
    run.stop().await;
    let msgs = read_stream(&cluster.nodes.node_url(0), STREAM).await;
    assert_eq!(msgs.len(), 5);
    assert_no_repeats(&msgs);
    assert_r3(&cluster.nodes.node_url(0)).await;
    println!(
        "cluster: setup failed {tried} times while two of three nodes were down, then went on"
    );
}
