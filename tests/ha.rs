//! `[ha]`: three sourcer processes with one config on the three-node loopback cluster share
//! six org sources through leases. Faults: the holder of most sources is killed (SIGKILL),
//! another is paused (SIGSTOP) for longer than the lease TTL and woken (it must publish
//! nothing under the leases it lost: no event it sent, by its `Gitea-Sourcer-Instance`
//! header, is stored after it woke and before it took that lease again, but for what its
//! client held before the stop, written out within `FLUSH` of waking, the documented
//! window), then all three are restarted one by one (SIGTERM: the
//! leases move at once). Every action must be in the stream once; the stream's duplicate
//! window is one second, so what it would have had to absorb is counted here, per fault.
//! Each fault prints the time until every source of the instance was polled again; no source
//! may go unpolled for longer than two TTLs.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use gitea_sim::{FakeGitea, HistorySpec};
use support::*;
use tokio::process::{Child, Command};

const STREAM: &str = "GITEA_EVENTS";
const BUCKET: &str = "gitea_leases";
/// The lease TTL of the test (the smallest allowed, so faults are over quickly).
const TTL: Duration = Duration::from_secs(2);
/// How soon after SIGCONT a woken instance's NATS client has written out what it had been
/// handed before the SIGSTOP (measured: 3.3 to 4.1 ms, 98 and 31 events, on 2.10.26); what
/// the instance stores later without its lease is a fencing failure.
const FLUSH: Duration = Duration::from_millis(250);

/// The instances' configs and logs; kept, and named on stderr, when the test fails (or with
/// `HA_KEEP_LOGS=1`), so a failure can be read from every instance's log.
struct LogDir(Option<tempfile::TempDir>);

impl LogDir {
    fn new() -> LogDir {
        LogDir(Some(tempfile::tempdir().expect("temp dir")))
    }

    fn path(&self) -> &Path {
        self.0.as_ref().expect("present until dropped").path()
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        if (std::thread::panicking() || std::env::var_os("HA_KEEP_LOGS").is_some())
            && let Some(dir) = self.0.take()
        {
            eprintln!(
                "ha: the instances' logs are kept in {}",
                dir.keep().display()
            );
        }
    }
}

/// One sourcer process.
struct Instance {
    name: String,
    config: PathBuf,
    port: u16,
    dir: PathBuf,
    runs: u32,
    child: Option<Child>,
}

impl Instance {
    fn new(dir: &Path, name: &str, gitea: &str, nats: &str, sources: &str) -> Instance {
        let port = nats_harness::free_port().expect("a free port for /metrics");
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[gitea]\nurl = \"{gitea}\"\nrequests_per_second = 30\nburst = 30\ntimeout = \"3s\"\n\
                 [nats]\nurl = \"{nats}\"\nduplicate_window = \"1s\"\nreplicas = 3\nmax_bytes = \"256MiB\"\n\
                 [poll]\ninterval = \"300ms\"\njitter = 0.1\nstart = \"beginning\"\n\
                 [http]\nlisten = \"127.0.0.1:{port}\"\n\
                 [ha]\nenabled = true\ninstance = \"{name}\"\nlease_ttl = \"{}s\"\n\
                 {sources}",
                TTL.as_secs()
            ),
        )
        .expect("write config");
        Instance {
            name: name.into(),
            config,
            port,
            dir: dir.into(),
            runs: 0,
            child: None,
        }
    }

    fn spawn(&mut self) {
        self.runs += 1;
        let log = self.dir.join(format!("{}-{}.log", self.name, self.runs));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the sourcer");
        self.child = Some(child);
    }

    fn pid(&self) -> String {
        self.child
            .as_ref()
            .and_then(|c| c.id())
            .expect("running")
            .to_string()
    }

    async fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .await
            .expect("run kill");
        assert!(ok.success(), "kill {sig} {}", self.name);
    }

    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// SIGTERM and the exit status (within 15 s, as the unit allows).
    async fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("-TERM").await;
        let mut c = self.child.take().expect("running");
        tokio::time::timeout(Duration::from_secs(15), c.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not stop within 15 s of SIGTERM", self.name))
            .expect("wait")
    }

    async fn metrics(&self) -> Option<String> {
        let r = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .ok()?;
        r.text().await.ok()
    }
}

/// The sum of a metric's samples whose labels contain `label` (all with `""`).
fn sample_sum(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(label)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Who holds each source's lease now (source as `org:NAME`), read from the bucket.
async fn holders(url: &str) -> BTreeMap<String, String> {
    leases(url)
        .await
        .into_iter()
        .map(|(s, (who, _))| (s, who))
        .collect()
}

/// Each source's lease: its holder and since when (unix nanos, the holder's clock).
async fn leases(url: &str) -> BTreeMap<String, (String, i128)> {
    let mut out = BTreeMap::new();
    let Ok(client) = async_nats::connect(url).await else {
        return out;
    };
    let js = async_nats::jetstream::new(client);
    let Ok(kv) = js.get_key_value(BUCKET).await else {
        return out;
    };
    let Ok(keys) = kv.keys().await else {
        return out;
    };
    let keys: Vec<String> = keys.try_collect().await.unwrap_or_default();
    for key in keys {
        let Some(org) = key.strip_prefix("lease/org/") else {
            continue;
        };
        if let Ok(Some(e)) = kv.entry(&key).await
            && e.operation == async_nats::jetstream::kv::Operation::Put
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&e.value)
        {
            let who = v["instance"].as_str().unwrap_or_default().to_string();
            let since = v["since"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .and_then(|t| t.timestamp_nanos_opt())
                .unwrap_or(0);
            out.insert(format!("org:{org}"), (who, i128::from(since)));
        }
    }
    out
}

/// The instant of each feed request per org (the sim's own log).
fn feed_requests(g: &FakeGitea) -> HashMap<String, Vec<Instant>> {
    let mut out: HashMap<String, Vec<Instant>> = HashMap::new();
    for r in g.requests() {
        if let Some(rest) = r.path.strip_prefix("/api/v1/orgs/")
            && let Some(org) = rest.strip_suffix("/activities/feeds")
        {
            out.entry(format!("org:{org}")).or_default().push(r.at);
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Per source of `lost`, the time from `at` to its first feed request after `at`.
async fn failover(g: &FakeGitea, lost: &[String], at: Instant) -> Vec<(String, Duration)> {
    let found = Mutex::new(Vec::new());
    wait_for(60, &format!("{lost:?} polled again"), || {
        let found = &found;
        async move {
            let reqs = feed_requests(g);
            let times: Vec<(String, Duration)> = lost
                .iter()
                .filter_map(|s| {
                    let first = reqs.get(s)?.iter().find(|t| **t > at)?;
                    Some((s.clone(), *first - at))
                })
                .collect();
            let done = times.len() == lost.len();
            *found.lock().expect("lock") = times;
            done
        }
    })
    .await;
    found.into_inner().expect("lock")
}

/// Waits until every source has a holder among the live `names`, none holding more than
/// its even share.
async fn wait_balanced(url: &str, sources: usize, names: &[&str], what: &str) {
    let share = sources.div_ceil(names.len());
    wait_for(60, what, || async move {
        let h = holders(url).await;
        let mut per: HashMap<&str, usize> = HashMap::new();
        for who in h.values() {
            *per.entry(who.as_str()).or_default() += 1;
        }
        h.len() == sources
            && h.values().all(|w| names.contains(&w.as_str()))
            && per.values().all(|n| *n <= share)
    })
    .await;
}

/// (source, publishing instance, store time in unix nanos) of every message in the stream.
async fn published(url: &str) -> Vec<(String, String, i128)> {
    stream_messages(url, STREAM)
        .await
        .iter()
        .map(|m| {
            let org = m.subject.split('.').nth(1).unwrap_or_default();
            let who = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Gitea-Sourcer-Instance"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            let stored = m
                .info()
                .map(|i| i.published.unix_timestamp_nanos())
                .unwrap_or(0);
            (format!("org:{org}"), who, stored)
        })
        .collect()
}

/// Stored copies per event id (first and later store times).
async fn copies(url: &str) -> HashMap<String, Vec<i128>> {
    let mut by_id: HashMap<String, Vec<i128>> = HashMap::new();
    for m in read_stream_stored(url, STREAM).await {
        by_id
            .entry(m.msg.msg_id.clone())
            .or_default()
            .push(m.stored_unix_nanos);
    }
    by_id
}

fn unix_nanos_now() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as i128
}

/// Who stored the copies that `repeats_in` counts in `[from, to)`: per (source, instance of
/// the first copy, instance of the later one), how many; for a failure's message.
async fn copies_by_instance(url: &str, from: i128, to: i128) -> BTreeMap<String, usize> {
    let mut by_id: HashMap<String, Vec<(i128, String, String)>> = HashMap::new();
    for m in stream_messages(url, STREAM).await {
        let header = |name: &str| {
            m.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        let org = m.subject.split('.').nth(1).unwrap_or_default().to_string();
        let stored = m
            .info()
            .map(|i| i.published.unix_timestamp_nanos())
            .unwrap_or(0);
        by_id.entry(header("Nats-Msg-Id")).or_default().push((
            stored,
            header("Gitea-Sourcer-Instance"),
            org,
        ));
    }
    let mut out = BTreeMap::new();
    for mut c in by_id.into_values() {
        c.sort();
        let Some((_, first, org)) = c.first().cloned() else {
            continue;
        };
        for (t, who, _) in &c[1..] {
            if *t >= from && *t < to {
                *out.entry(format!("org:{org} first by {first}, again by {who}"))
                    .or_default() += 1;
            }
        }
    }
    out
}

/// Events stored more than once with a later copy stored in `[from, to)` (unix nanos).
fn repeats_in(by_id: &HashMap<String, Vec<i128>>, from: i128, to: i128) -> usize {
    by_id
        .values()
        .map(|c| {
            let first = c.iter().min().copied().unwrap_or(0);
            c.iter()
                .filter(|t| **t != first && **t >= from && **t < to)
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_the_sources_and_kills_pauses_and_a_rolling_restart_lose_and_repeat_nothing()
 {
    let cluster = Cluster::start().await;
    let dir = LogDir::new();
    let g = gitea().await;
    g.generate_history(&HistorySpec {
        actions: 9_000,
        days: 3,
        orgs: 6,
        repos: 12,
        payload_bytes: 200,
        ties: true,
    });
    let orgs = g.org_names();
    assert_eq!(orgs.len(), 6);
    let sources: String = orgs
        .iter()
        .map(|o| format!("[[source]]\norg = \"{o}\"\n"))
        .collect();
    let urls = cluster.urls();
    let url = cluster.url_avoiding(None);
    let names = ["a", "b", "c"];
    let mut inst: Vec<Instance> = names
        .iter()
        .map(|n| Instance::new(dir.path(), n, &g.url(), &urls, &sources))
        .collect();
    for i in &mut inst {
        i.spawn();
    }
    let activity = g.spawn_activity(4.0);
    wait_balanced(&url, 6, &names, "six leases spread over three instances").await;
    wait_stream(&url, STREAM, 300, "the catch-up under way").await;
    let mut report: Vec<String> = Vec::new();
    let mut marks: Vec<(&str, i128, i128)> = Vec::new();

    // 1. SIGKILL the holder of most sources.
    let h = holders(&url).await;
    let victim = names
        .iter()
        .max_by_key(|n| h.values().filter(|w| w == n).count())
        .map(|n| n.to_string())
        .expect("a holder");
    let lost: Vec<String> = h
        .iter()
        .filter(|(_, w)| **w == victim)
        .map(|(s, _)| s.clone())
        .collect();
    let vi = names.iter().position(|n| *n == victim).expect("known");
    let killed = Instant::now();
    let killed_unix = unix_nanos_now();
    inst[vi].kill().await;
    let times = failover(&g, &lost, killed).await;
    report.push(format!("SIGKILL {victim}: {}", fmt_times(&times)));
    wait_balanced(
        &url,
        6,
        &names
            .iter()
            .copied()
            .filter(|n| *n != victim)
            .collect::<Vec<_>>(),
        "the killed instance's sources taken by the other two",
    )
    .await;
    inst[vi].spawn();
    wait_balanced(&url, 6, &names, "the restarted instance back in the share").await;
    marks.push(("SIGKILL", killed_unix, unix_nanos_now()));

    // 2. SIGSTOP another holder for three TTLs, then SIGCONT: it must publish nothing under
    // the leases it lost while asleep.
    let h = holders(&url).await;
    let sleeper = names
        .iter()
        .copied()
        .find(|n| *n != victim && h.values().any(|w| w == n))
        .expect("another holder")
        .to_string();
    let si = names.iter().position(|n| *n == sleeper).expect("known");
    let held: Vec<String> = h
        .iter()
        .filter(|(_, w)| **w == sleeper)
        .map(|(s, _)| s.clone())
        .collect();
    let paused = Instant::now();
    let paused_unix = unix_nanos_now();
    inst[si].signal("-STOP").await;
    let times = failover(&g, &held, paused + Duration::from_millis(1)).await;
    // The feed requests after the pause are the new holders' (the sleeper sends none).
    report.push(format!("SIGSTOP {sleeper}: {}", fmt_times(&times)));
    wait_for(30, "the sleeper's leases expired and taken", || {
        let url = &url;
        let held = &held;
        let sleeper = &sleeper;
        async move {
            let h = holders(url).await;
            held.iter().all(|s| h.get(s).is_some_and(|w| w != sleeper))
        }
    })
    .await;
    let woke_unix = unix_nanos_now();
    inst[si].signal("-CONT").await;
    // When it takes a source's lease again (if it does before the share is even).
    let retaken: Mutex<HashMap<String, i128>> = Mutex::new(HashMap::new());
    wait_until(20, || {
        let url = &url;
        let held = &held;
        let sleeper = &sleeper;
        let retaken = &retaken;
        async move {
            let now = leases(url).await;
            let mut r = retaken.lock().expect("lock");
            for (s, (who, since)) in now {
                if held.contains(&s) && who == *sleeper {
                    r.entry(s).or_insert(since);
                }
            }
            r.len() == held.len()
        }
    })
    .await;
    let retaken = retaken.into_inner().expect("lock");
    let m = inst[si].metrics().await.expect("metrics");
    let lost_count = sample_sum(&m, "gitea_nats_sourcer_leases_lost_total", "");
    assert!(
        lost_count >= held.len() as f64,
        "{sleeper} counts its {} lost leases: {lost_count}",
        held.len()
    );
    wait_balanced(&url, 6, &names, "the woken instance back in the share").await;
    let settled_unix = unix_nanos_now();
    // Nothing it sent for a source it had lost reached the stream after it woke, until it
    // held that source's lease again (the stream's store times, its own header), but for
    // the documented window: what its NATS client had been handed before the stop goes out
    // as the client runs again (within FLUSH of waking; copies, same ids).
    let flushed_by = woke_unix + FLUSH.as_nanos() as i128;
    let (mut stale, mut flushed) = (Vec::new(), 0);
    for (org, who, stored) in published(&url).await {
        if who == sleeper
            && held.contains(&org)
            && stored > woke_unix
            && stored < settled_unix
            && retaken.get(&org).is_none_or(|since| stored < *since)
        {
            match stored <= flushed_by {
                true => flushed += 1,
                false => stale.push((org, stored - woke_unix)),
            }
        }
    }
    report.push(format!(
        "SIGCONT {sleeper}: {flushed} events its client held before the stop stored as it woke"
    ));
    assert!(
        stale.is_empty(),
        "{sleeper} published {} events after it woke without the lease (source, ns after \
         waking): {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
    marks.push(("SIGSTOP", paused_unix, woke_unix));
    marks.push(("the client's flush at SIGCONT", woke_unix, flushed_by));
    marks.push(("after SIGCONT", flushed_by, unix_nanos_now()));

    // 3. A rolling restart: each in turn gets SIGTERM, its sources move at once, it comes back.
    let rolling_unix = unix_nanos_now();
    for (k, name) in names.iter().enumerate() {
        let h = holders(&url).await;
        let moving: Vec<String> = h
            .iter()
            .filter(|(_, w)| *w == name)
            .map(|(s, _)| s.clone())
            .collect();
        let t = Instant::now();
        let status = inst[k].terminate().await;
        assert!(
            status.success(),
            "{name} exits cleanly on SIGTERM: {status}"
        );
        let times = failover(&g, &moving, t).await;
        let moved = Mutex::new(Duration::ZERO);
        wait_for(30, "its leases held by the others", || {
            let url = &url;
            let moving = &moving;
            let moved = &moved;
            async move {
                let h = holders(url).await;
                let done = moving.iter().all(|s| h.get(s).is_some_and(|w| w != name));
                if done {
                    *moved.lock().expect("lock") = t.elapsed();
                }
                done
            }
        })
        .await;
        let moved = moved.into_inner().expect("lock");
        report.push(format!(
            "SIGTERM {name}: leases moved {moved:.1?} after SIGTERM; {}",
            fmt_times(&times)
        ));
        assert!(
            moved < TTL,
            "a released lease moves before it would have expired: {moved:?}"
        );
        inst[k].spawn();
        wait_balanced(&url, 6, &names, "the restarted instance back in the share").await;
    }
    marks.push(("rolling restart", rolling_unix, unix_nanos_now()));

    activity.abort();
    let _ = activity.await;
    let truth = truth_once_per_second(&g);
    let want: usize = truth.values().sum();
    wait_for(240, "every action in the stream", || {
        let url = &url;
        async move {
            let c = copies(url).await;
            c.len() >= want
        }
    })
    .await;
    let msgs = read_stream(&url, STREAM).await;
    let mut got: HashMap<String, usize> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for m in &msgs {
        if seen.insert(m.msg_id.clone()) {
            *got.entry(msg_identity(m)).or_default() += 1;
        }
    }
    let lost: Vec<_> = truth
        .iter()
        .filter(|(k, n)| got.get(*k) != Some(n))
        .take(5)
        .collect();
    assert!(lost.is_empty(), "lost or miscounted: {lost:?}");
    assert_eq!(got, truth, "nothing published that Gitea does not hold");
    let by_id = copies(&url).await;
    let mut absorbed = Vec::new();
    for (what, from, to) in &marks {
        absorbed.push((*what, repeats_in(&by_id, *from, *to)));
    }
    let total: usize = by_id.values().map(|c| c.len() - 1).sum();
    let attributed: usize = absorbed.iter().map(|(_, n)| n).sum();
    for i in &mut inst {
        i.kill().await;
    }
    // Longest a source went without a feed request, over the whole run.
    let reqs = feed_requests(&g);
    let widest = reqs
        .iter()
        .map(|(s, v)| {
            let gap = v.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
            (s.clone(), gap)
        })
        .max_by_key(|(_, g)| *g)
        .expect("requests");
    eprintln!(
        "ha: {want} actions once, 0 lost; stored again (a 1 s duplicate window hides nothing): \
         {total} in all, by fault {absorbed:?}; longest unpolled: {} {:.1?}",
        widest.0, widest.1
    );
    for r in &report {
        eprintln!("ha: {r}");
    }
    assert_eq!(total, attributed, "every copy falls in a fault's window");
    for ((what, n), (_, from, to)) in absorbed.iter().zip(&marks) {
        if matches!(*what, "after SIGCONT" | "rolling restart") && *n != 0 {
            let who = copies_by_instance(&url, *from, *to).await;
            panic!("{what}: nothing stored twice, but {n} were: {who:?}");
        }
    }
    assert!(
        widest.1 <= TTL * 2,
        "{} went unpolled for {:?}, more than two TTLs",
        widest.0,
        widest.1
    );
}

/// Leases released so far by all of `inst`.
async fn released_in_all(inst: &[Instance]) -> f64 {
    let mut n = 0.0;
    for i in inst {
        let m = i.metrics().await.expect("metrics");
        n += sample_sum(&m, "gitea_nats_sourcer_leases_released_total", "");
    }
    n
}

fn fmt_times(t: &[(String, Duration)]) -> String {
    t.iter()
        .map(|(s, d)| format!("{s} polled again after {d:.1?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_is_ready_and_takes_over_within_a_second_of_the_active_ones_sigterm() {
    let nats = Nats::start().await;
    let dir = LogDir::new();
    let g = gitea().await;
    g.add_org("acme");
    g.add_user("alice");
    g.add_repo("acme", "widgets");
    let sources = "[[source]]\norg = \"acme\"\n";
    let mut active = Instance::new(dir.path(), "active", &g.url(), &nats.url(), sources);
    let mut standby = Instance::new(dir.path(), "standby", &g.url(), &nats.url(), sources);
    // Replicas 3 needs a cluster: one server here.
    for i in [&active, &standby] {
        let text = std::fs::read_to_string(&i.config).expect("config");
        std::fs::write(&i.config, text.replace("replicas = 3", "replicas = 1")).expect("write");
    }
    active.spawn();
    wait_for(30, "the active instance holds the lease", || {
        let url = nats.url();
        async move { holders(&url).await.get("org:acme").map(String::as_str) == Some("active") }
    })
    .await;
    // `cursors list` and `check` say who holds the source, and since when.
    let (code, out, err) = sourcer(&active.config, &["cursors", "list"]).await;
    assert_eq!(code, Some(0), "cursors list: {err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("org:acme"))
        .unwrap_or_else(|| panic!("a line for org:acme in {out}"));
    assert!(line.contains("held by active since 20"), "{line}");
    let (code, out, err) = sourcer(&active.config, &["check"]).await;
    assert_eq!(code, Some(0), "check: {out}{err}");
    assert!(
        out.contains("ok   lease bucket gitea_leases: keys expire after 2s (")
            && out.contains("1 instance(s) alive: active")
            && out.contains("info lease org:acme: held by active since 20"),
        "{out}"
    );
    standby.spawn();
    let ready = |port: u16| async move {
        reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    };
    wait_for(30, "the standby is ready while it holds nothing", || {
        ready(standby.port)
    })
    .await;
    assert_eq!(
        holders(&nats.url())
            .await
            .get("org:acme")
            .map(String::as_str),
        Some("active"),
        "the lease stayed with the active instance"
    );
    let activity = g.spawn_activity(5.0);
    wait_stream(&nats.url(), STREAM, 10, "live events").await;
    let t = Instant::now();
    let status = active.terminate().await;
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let moved = Mutex::new(Duration::ZERO);
    wait_for(10, "the standby holds the lease", || {
        let url = nats.url();
        let moved = &moved;
        async move {
            let yes = holders(&url).await.get("org:acme").map(String::as_str) == Some("standby");
            if yes {
                *moved.lock().expect("lock") = t.elapsed();
            }
            yes
        }
    })
    .await;
    let moved = moved.into_inner().expect("lock");
    let before = stream_count(&nats.url(), STREAM).await;
    wait_stream(&nats.url(), STREAM, before + 5, "the standby publishing").await;
    activity.abort();
    let _ = activity.await;
    let truth = truth_once_per_second(&g);
    let want: usize = truth.values().sum();
    wait_stream(&nats.url(), STREAM, want as u64, "every action").await;
    let msgs = read_stream(&nats.url(), STREAM).await;
    assert_no_repeats(&msgs);
    let mut got: HashMap<String, usize> = HashMap::new();
    for m in &msgs {
        *got.entry(msg_identity(m)).or_default() += 1;
    }
    assert_eq!(got, truth, "each action once across the handover");
    eprintln!("ha: standby took the lease {moved:.2?} after the active one's SIGTERM");
    assert!(
        moved < Duration::from_millis(1500),
        "a rolling restart moves a source in about a second, not a TTL: {moved:?}"
    );
    standby.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_ha_starts_an_added_source_once_keeps_changed_ones_and_frees_removed_ones() {
    let nats = Nats::start().await;
    let dir = LogDir::new();
    let g = gitea().await;
    for org in ["acme", "globex", "initech"] {
        g.add_org(org);
        g.add_repo(org, "widgets");
    }
    g.add_user("alice");
    let two = "[[source]]\norg = \"acme\"\n[[source]]\norg = \"globex\"\n";
    let mut inst: Vec<Instance> = ["a", "b"]
        .iter()
        .map(|n| Instance::new(dir.path(), n, &g.url(), &nats.url(), two))
        .collect();
    let rewrite = |inst: &[Instance], from: &str, to: &str| {
        for i in inst {
            let text = std::fs::read_to_string(&i.config).expect("config");
            std::fs::write(&i.config, text.replace(from, to)).expect("write");
        }
    };
    rewrite(&inst, "replicas = 3", "replicas = 1");
    for i in &mut inst {
        i.spawn();
    }
    let url = nats.url();
    wait_balanced(&url, 2, &["a", "b"], "one source each").await;
    let before_leases = leases(&url).await;
    // (A cold start may already have moved one: the first instance up takes both. Its
    // count moves once the release is done: when the instances' held leases add up.)
    wait_for(30, "the instances' metrics agree with the bucket", || {
        let inst = &inst;
        async move {
            let mut held = 0.0;
            for i in inst {
                let m = i.metrics().await.unwrap_or_default();
                held += sample_sum(&m, "gitea_nats_sourcer_leases_held", "");
            }
            held == 2.0
        }
    })
    .await;
    let released_before = released_in_all(&inst).await;
    // Added: initech; changed: acme's interval; removed: globex.
    rewrite(
        &inst,
        two,
        "[[source]]\norg = \"acme\"\ninterval = \"400ms\"\n[[source]]\norg = \"initech\"\n",
    );
    for i in &inst {
        i.signal("-HUP").await;
    }
    wait_for(30, "initech held, globex released", || {
        let url = &url;
        async move {
            let h = holders(url).await;
            h.contains_key("org:initech") && !h.contains_key("org:globex")
        }
    })
    .await;
    let after = leases(&url).await;
    assert_eq!(
        after.get("org:acme"),
        before_leases.get("org:acme"),
        "a changed source restarts under the lease it held (same holder, same since)"
    );
    let released = released_in_all(&inst).await - released_before;
    assert_eq!(
        released, 1.0,
        "one lease released in the reload: the removed source's"
    );
    for (i, n) in inst.iter().zip(["a", "b"]) {
        let m = i.metrics().await.expect("metrics");
        assert_eq!(
            sample_sum(&m, "gitea_nats_sourcer_leases_lost_total", ""),
            0.0,
            "{n} lost no lease in the reload"
        );
    }
    let t = g.now();
    for org in ["acme", "globex", "initech"] {
        g.push_action(
            gitea_sim::NewAction::push("alice", &format!("{org}/widgets"), "main", 1).at(t),
        );
    }
    wait_for(30, "the acme and initech actions", || {
        let url = &url;
        async move {
            let subjects: Vec<String> = read_stream(url, STREAM)
                .await
                .into_iter()
                .map(|m| m.subject)
                .collect();
            ["acme", "initech"]
                .iter()
                .all(|o| subjects.iter().any(|s| s.split('.').nth(1) == Some(*o)))
        }
    })
    .await;
    for i in &mut inst {
        let status = i.terminate().await;
        assert!(status.success(), "{status}");
    }
    let msgs = read_stream(&url, STREAM).await;
    assert_no_repeats(&msgs);
    let per_org = |o: &str| {
        msgs.iter()
            .filter(|m| m.subject.split('.').nth(1) == Some(o))
            .count()
    };
    assert_eq!(
        (per_org("acme"), per_org("initech"), per_org("globex")),
        (1, 1, 0),
        "each remaining source's action once, the removed one's not at all"
    );
}

/// A control request answered by one of the instances (they share a queue group).
async fn control(client: &async_nats::Client, endpoint: &str, body: &str) -> serde_json::Value {
    let (answer, code) = micro_request(client, &format!("gitea_control.{endpoint}"), body).await;
    assert_eq!(code, None, "{endpoint} {body}: an error");
    assert!(!answer.is_null(), "{endpoint} {body}: a JSON answer");
    answer
}

/// The events of `org`'s repositories in the stream.
async fn events_of_org(url: &str, org: &str) -> usize {
    let prefix = format!("{org}/");
    events_matching(url, |r| r.starts_with(&prefix)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_on_every_instance_and_across_the_holders_death() {
    let nats = Nats::start().await;
    let dir = LogDir::new();
    let g = gitea().await;
    for org in ["acme", "beta"] {
        g.add_org(org);
        g.add_repo(org, "widgets");
    }
    g.push_action(gitea_sim::NewAction::push(
        "alice",
        "acme/widgets",
        "main",
        1,
    ));
    g.push_action(gitea_sim::NewAction::push(
        "alice",
        "beta/widgets",
        "main",
        1,
    ));
    let sources = "[control]\nenabled = true\n\
                   [[source]]\norg = \"acme\"\n[[source]]\norg = \"beta\"\n";
    let mut inst: Vec<Instance> = ["a", "b"]
        .iter()
        .map(|n| Instance::new(dir.path(), n, &g.url(), &nats.url(), sources))
        .collect();
    for i in &inst {
        let text = std::fs::read_to_string(&i.config).expect("config");
        std::fs::write(&i.config, text.replace("replicas = 3", "replicas = 1")).expect("write");
    }
    for i in &mut inst {
        i.spawn();
    }
    let url = nats.url();
    wait_balanced(&url, 2, &["a", "b"], "one source each").await;
    wait_for(30, "both first actions", || async {
        events_of_org(&url, "acme").await == 1 && events_of_org(&url, "beta").await == 1
    })
    .await;
    let client = nats.client().await;

    // Paused through whichever instance answers; the holder stops.
    let paused = control(&client, "sources.pause", "org:acme").await;
    assert_eq!(paused["state"], "paused", "{paused}");
    g.push_action(gitea_sim::NewAction::push("bob", "acme/widgets", "main", 2));
    // Every instance lists it paused (the mark is in the bucket, not in one process).
    for _ in 0..4 {
        let list = control(&client, "sources.list", "").await;
        let state = list["sources"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["source"] == "org:acme"))
            .map(|s| s["state"].clone());
        assert_eq!(state, Some(serde_json::json!("paused")), "{list}");
    }

    // `cursors list` shows the pause, when and by whom.
    let (code, out, err) = sourcer(&inst[0].config, &["cursors", "list"]).await;
    assert_eq!(code, Some(0), "cursors list: {err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("org:acme"))
        .unwrap_or_else(|| panic!("a line for org:acme in {out}"));
    assert!(
        line.contains("PAUSED since 20") && (line.ends_with(" by a") || line.ends_with(" by b")),
        "{line}"
    );

    // The holder of acme dies; the other instance takes its lease and leaves it alone.
    let holder = holders(&url)
        .await
        .get("org:acme")
        .cloned()
        .expect("a holder");
    let k = inst
        .iter()
        .position(|i| i.name == holder)
        .expect("a known holder");
    inst[k].kill().await;
    let other = inst[1 - k].name.clone();
    wait_for(30, "the other instance holds both leases", || {
        let url = url.clone();
        let other = other.clone();
        async move {
            let h = holders(&url).await;
            h.len() == 2 && h.values().all(|w| *w == other)
        }
    })
    .await;
    let taken_at = Instant::now();
    // Beta's new action comes after acme's: once beta's is in, the new holder has polled
    // since it took both leases (a source taken over polls at once), and would have
    // published acme's second action had the pause not held.
    g.push_action(gitea_sim::NewAction::push("bob", "beta/widgets", "main", 2));
    wait_for(30, "beta's second action, from the new holder", || async {
        events_of_org(&url, "beta").await == 2
    })
    .await;
    assert_eq!(
        events_of_org(&url, "acme").await,
        1,
        "acme is paused, yet its second action was published"
    );
    let acme_polls = feed_requests(&g)
        .get("org:acme")
        .map_or(0, |t| t.iter().filter(|t| **t > taken_at).count());
    assert_eq!(
        acme_polls, 0,
        "a paused source is not polled by its new holder"
    );

    // Resumed: the waiting action comes, once.
    let resumed = control(&client, "sources.resume", "org:acme").await;
    assert_eq!(resumed["state"], "running", "{resumed}");
    wait_for(30, "acme's second action after the resume", || async {
        events_of_org(&url, "acme").await == 2
    })
    .await;
    let msgs = read_stream(&url, STREAM).await;
    assert_no_repeats(&msgs);
    for i in &mut inst {
        i.kill().await;
    }
}
