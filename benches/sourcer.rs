//! Benchmark of the sourcer; one run, one markdown table at the end, no assertion on speed.
//!
//! 1. **Raw limit**: acknowledged JetStream publishes against a private nats-server, with
//!    real event payloads (CloudEvents built by `event::build` from fake Gitea rows) and a
//!    unique `Nats-Msg-Id` each: pipelined in batches of 512 (all sent, then all acks
//!    awaited, as `src/nats/publish.rs` does) and serial (one ack awaited before the next send).
//! 2. **Catch-up end to end**: the fake Gitea (in this process) with a generated history, the
//!    release binary `gitea-nats-sourcer run` as a child process with `start = "beginning"`,
//!    timed until the stream holds one message per logical action; the child's peak RSS
//!    (`VmHWM`) and CPU time (`utime + stime`) from `/proc`; the raw limit is measured again
//!    right after it. Then the same against a Gitea whose every answer takes 100 ms, at 20
//!    requests a second (events/s against `rps x page size`), and a 10k-action gap for the
//!    memory-against-gap-size figure.
//! 3. **Steady state**: 1,000 idle repository sources at `interval = "30s"`; once every
//!    source has a cursor, the child's CPU over `BENCH_IDLE_SECS` seconds and its RSS.
//! 4. **Live at scale**: 10,000 repositories in 200 orgs (200 org sources, interval 15 s),
//!    1 % of the repositories active (2 actions a second among them), 10 requests a second:
//!    the delay from each action's creation to its event at a plain NATS subscriber (p50,
//!    p99), Gitea requests a second, the child's CPU and RSS, over `BENCH_LIVE_SECS`.
//!
//! Environment: `BENCH_ACTIONS` (catch-up size, default 100000), `BENCH_CATCH_UP_RPS` (its
//! budget, default 1000), `BENCH_SLOW_ACTIONS` (the 100 ms catch-up, default 40000),
//! `BENCH_LIVE_SECS` (default 180), `BENCH_RAW` (pipelined raw
//! publishes, default 50000), `BENCH_IDLE_SECS` (default 60), `BENCH_DEADLINE_SECS`
//! (catch-up deadline, default 120 + actions/100), `BENCH_KEEP_LOGS=1` (keep the temp dirs
//! with the child's config and log, and print where they are), `BENCH_CHILD_WRAPPER` (run the
//! sourcer under a tool, e.g. `valgrind --tool=massif --massif-out-file=/tmp/massif.%p`; the
//! figures then describe the tool). A catch-up also ends when the stream stops growing for
//! 60 s, and its figures are then marked incomplete.
//!
//! Every child process is killed and every temp dir removed when the benchmark ends, also
//! on failure (failures are returned as errors, never panics, so destructors run).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage as Publish};
use chrono::Duration as ChronoDuration;
use futures::StreamExt;
use gitea_nats_sourcer::config::Config;
use gitea_nats_sourcer::event::{self, Event};
use gitea_nats_sourcer::gitea::GiteaClient;
use gitea_nats_sourcer::nats;
use gitea_nats_sourcer::source::SourceSpec;
use gitea_sim::{FakeGitea, Fault, FaultKind, HistorySpec, NewAction, SimOptions};
use nats_harness::LocalNats;
use tokio::process::{Child, Command};

type Res<T> = Result<T, String>;

const BINARY: &str = env!("CARGO_BIN_EXE_gitea-nats-sourcer");
const STREAM: &str = "GITEA_EVENTS";
const BUCKET: &str = "gitea_cursors";
/// The sourcer's publish batch.
const BATCH: usize = gitea_nats_sourcer::poll::pipeline::BATCH;
/// Gitea's `MAX_RESPONSE_ITEMS` in the fake (the page maximum).
const PAGE_MAX: f64 = 50.0;
const SERIAL_MSGS: usize = 5_000;
const IDLE_SOURCES: usize = 1_000;
/// `gitea.requests_per_second` of the catch-up runs (`BENCH_CATCH_UP_RPS` changes it).
const CATCH_UP_RPS: u32 = 1000;
/// The slow catch-up: every Gitea answer delayed this much, at this budget.
const SLOW_LATENCY_MS: u64 = 100;
const SLOW_RPS: u32 = 20;
/// The second zero-latency catch-up's budget.
const WIDE_RPS: u32 = 5000;

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("benchmark failed: cannot build a tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(bench());
    // Children (kill_on_drop), nats-servers and temp dirs are gone once `bench` returned;
    // dropping the runtime reaps what is left.
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(table) => println!("{table}"),
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}

fn env_usize(name: &str, default: usize) -> Res<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|e| format!("{name}={v:?} is not a number: {e}")),
        Err(_) => Ok(default),
    }
}

fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

async fn bench() -> Res<String> {
    let actions = env_usize("BENCH_ACTIONS", 100_000)?;
    let raw_n = env_usize("BENCH_RAW", 50_000)?;
    let idle_secs = env_usize("BENCH_IDLE_SECS", 60)? as u64;
    let deadline_secs = env_usize("BENCH_DEADLINE_SECS", 120 + actions / 100)? as u64;
    if !Path::new(BINARY).is_file() {
        return Err(format!(
            "the sourcer binary {BINARY} is missing; run the benchmark with `cargo bench --bench sourcer`"
        ));
    }
    nats_available()?;
    let clk_tck = clock_ticks();

    progress("building sample events from the fake Gitea");
    let samples = sample_events().await?;
    let avg_bytes = samples.iter().map(|e| e.payload.len()).sum::<usize>() / samples.len();

    progress(&format!(
        "raw JetStream publishes: {raw_n} pipelined (batches of {BATCH}), {SERIAL_MSGS} serial"
    ));
    let raw = raw_publish(&samples, raw_n, SERIAL_MSGS).await?;

    let big_spec = HistorySpec {
        actions,
        days: 20,
        orgs: 3,
        repos: 20,
        payload_bytes: 2500,
        ties: true,
    };
    progress(&format!(
        "catch-up of {actions} actions over 20 days, 3 orgs, 20 repos (deadline {deadline_secs} s)"
    ));
    let big = catch_up(
        "catch-up",
        &big_spec,
        local_budget()?,
        deadline_secs,
        clk_tck,
    )
    .await?;
    // The same catch-up with a budget five times as large: what the pipeline does when the
    // request budget is not what bounds it.
    let wide = Budget {
        rps: WIDE_RPS,
        burst: 500,
        latency: None,
    };
    progress(&format!("catch-up again at {WIDE_RPS} requests/s"));
    let big_wide = catch_up("catch-up-wide", &big_spec, wide, deadline_secs, clk_tck).await?;
    // The raw limit again right after the catch-up, on the machine as it is now: the ratio
    // uses the mean of both runs (two other builds may share the machine).
    let raw_after = raw_publish(&samples, raw_n, SERIAL_MSGS).await?;

    let slow_n = env_usize("BENCH_SLOW_ACTIONS", 40_000)?;
    let slow_spec = HistorySpec {
        actions: slow_n,
        days: 10,
        orgs: 1,
        repos: 5,
        payload_bytes: 2500,
        ties: false,
    };
    progress(&format!(
        "catch-up of {slow_n} actions over 10 days, 1 org, Gitea answering after {SLOW_LATENCY_MS} ms, {SLOW_RPS} requests/s"
    ));
    let slow_budget = Budget {
        rps: SLOW_RPS,
        burst: 10,
        latency: Some(Duration::from_millis(SLOW_LATENCY_MS)),
    };
    let slow = catch_up(
        "slow",
        &slow_spec,
        slow_budget,
        120 + (slow_n / 500) as u64,
        clk_tck,
    )
    .await?;

    let small_spec = HistorySpec {
        actions: 10_000,
        days: 5,
        orgs: 1,
        repos: 5,
        payload_bytes: 2500,
        ties: true,
    };
    progress("catch-up of a 10000-action gap over 5 days, 1 org, 5 repos");
    let small = catch_up("gap-10k", &small_spec, local_budget()?, 120 + 100, clk_tck).await?;

    progress(&format!(
        "steady state: {IDLE_SOURCES} idle repository sources, interval 30s, measured over {idle_secs} s"
    ));
    let idle = steady_state(IDLE_SOURCES, idle_secs, clk_tck).await?;

    let live_secs = env_usize("BENCH_LIVE_SECS", 180)? as u64;
    progress(&format!(
        "live: {} repositories in {LIVE_ORGS} orgs, {LIVE_ACTIVE_PERCENT} % active, {LIVE_RPS} requests/s, for {live_secs} s",
        LIVE_ORGS * LIVE_REPOS_PER_ORG
    ));
    let live = live(live_secs, 2.0, clk_tck).await?;

    Ok(table(&Figures {
        avg_bytes,
        raw,
        raw_after,
        big,
        big_wide,
        slow,
        small,
        idle,
        live,
    }))
}

// ---------------------------------------------------------------------------------------
// Machine, /proc and child processes

fn nats_available() -> Res<()> {
    nats_harness::find_binary().map(|_| ()).map_err(|_| {
        "nats-server is missing: install it with apt-get install -y nats-server \
             (or run scripts/ensure-nats-server)"
            .to_string()
    })
}

/// `getconf CLK_TCK`, 100 when it cannot be read.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn machine() -> String {
    let cpus = cores();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| format!(", {:.1} GiB RAM", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpus} CPUs (nproc), {model}{mem}")
}

/// A `kB` field of `/proc/PID/status` (`VmHWM`, `VmRSS`), in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// `utime + stime` of `/proc/PID/stat`, in seconds.
fn proc_cpu_secs(pid: u32, clk_tck: f64) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The sourcer as a child process, logging at `warn` to a file.
struct Sourcer {
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Sourcer {
    fn spawn(config: &Path, log: &Path) -> Res<Sourcer> {
        let log_file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        // BENCH_CHILD_WRAPPER (e.g. "valgrind --tool=massif --massif-out-file=/tmp/m.out"):
        // run the sourcer under a tool; the figures then describe the tool, not the sourcer.
        let wrapper: Vec<String> = std::env::var("BENCH_CHILD_WRAPPER")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        let mut command = match wrapper.split_first() {
            Some((tool, args)) => {
                let mut c = Command::new(tool);
                c.args(args).arg(BINARY);
                c
            }
            None => Command::new(BINARY),
        };
        let child = command
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("RUST_LOG", "warn")
            .env_remove("GITEA_NATS_SOURCER_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {BINARY}: {e}"))?;
        let pid = child
            .id()
            .ok_or_else(|| "the sourcer exited at once".to_string())?;
        progress(&format!("sourcer started, pid {pid}"));
        Ok(Sourcer {
            child,
            pid,
            log: log.to_owned(),
        })
    }

    /// Fails (with the log's tail) when the child has exited.
    fn check_alive(&mut self) -> Res<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "the sourcer exited early ({status}); its log ends with:\n{}",
                tail(&self.log, 20)
            )),
            Err(e) => Err(format!("cannot watch the sourcer: {e}")),
        }
    }

    /// SIGTERM, then waits up to 15 s (SIGKILL after that). Returns how it ended.
    async fn terminate(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        let started = Instant::now();
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {
                format!(
                    "exit 0 {:.1} s after SIGTERM",
                    started.elapsed().as_secs_f64()
                )
            }
            Ok(Ok(status)) => format!("{status} after SIGTERM"),
            Ok(Err(e)) => format!("wait failed: {e}"),
            Err(_) => {
                let _ = self.child.kill().await;
                "did not exit within 15 s of SIGTERM; killed".into()
            }
        }
    }
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Log lines of the child (it logs at `warn`, so every line is a warning or an error).
fn log_issues(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.to_string())
        .collect()
}

fn keep_logs() -> bool {
    std::env::var("BENCH_KEEP_LOGS").is_ok_and(|v| v == "1")
}

/// A temp dir, kept (and named) when `BENCH_KEEP_LOGS=1`.
fn temp_dir(label: &str) -> Res<tempfile::TempDir> {
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("sourcer-bench-{label}-"))
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    if keep_logs() {
        dir.disable_cleanup(true);
        progress(&format!("{label}: files kept in {}", dir.path().display()));
    }
    Ok(dir)
}

async fn start_nats(dir: &Path) -> Res<LocalNats> {
    LocalNats::start(&dir.join("nats"))
        .await
        .map_err(|e| format!("cannot start a private nats-server: {e}"))
}

async fn start_gitea() -> Res<FakeGitea> {
    FakeGitea::start(SimOptions::default())
        .await
        .map_err(|e| format!("cannot start the fake Gitea: {e}"))
}

fn write_config(
    path: &Path,
    gitea_url: &str,
    nats_url: &str,
    gitea_extra: &str,
    poll: &str,
    sources: &str,
) -> Res<()> {
    let text = format!(
        "[gitea]\nurl = \"{gitea_url}\"\n{gitea_extra}\n\n[nats]\nurl = \"{nats_url}\"\n\n\
         [poll]\n{poll}\n\n{sources}"
    );
    Config::parse(&text).map_err(|e| format!("the benchmark's config is invalid: {e}"))?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

async fn connect(url: &str) -> Res<jetstream::Context> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| format!("cannot connect to the private nats-server at {url}: {e}"))?;
    Ok(jetstream::new(client))
}

/// Messages in the events stream; 0 while it does not exist.
async fn stream_count(js: &jetstream::Context) -> u64 {
    match js.get_stream(STREAM).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Keys in the cursor bucket; 0 while it does not exist.
async fn cursor_count(js: &jetstream::Context) -> usize {
    let Ok(kv) = js.get_key_value(BUCKET).await else {
        return 0;
    };
    match kv.keys().await {
        Ok(keys) => {
            keys.filter(|k| futures::future::ready(k.is_ok()))
                .count()
                .await
        }
        Err(_) => 0,
    }
}

// ---------------------------------------------------------------------------------------
// 1. Raw limit

/// Real events, built by the sourcer's own code from fake Gitea rows of ~2500-byte pushes.
async fn sample_events() -> Res<Vec<Event>> {
    let gitea = start_gitea().await?;
    gitea.generate_history(&HistorySpec {
        actions: 500,
        days: 1,
        orgs: 1,
        repos: 5,
        payload_bytes: 2500,
        ties: true,
    });
    let org = gitea
        .org_names()
        .into_iter()
        .next()
        .ok_or("the fake Gitea made no org")?;
    let cfg = Config::parse(&format!(
        "[gitea]\nurl = \"{}\"\n[nats]\n[[source]]\norg = \"{org}\"\n",
        gitea.url()
    ))
    .map_err(|e| format!("sample config: {e}"))?;
    let client = GiteaClient::new(
        &cfg.gitea,
        None,
        gitea_nats_sourcer::telemetry::Telemetry::new(),
    )
    .map_err(|e| format!("gitea client: {e}"))?;
    let spec = SourceSpec::Org(org);
    let mut events = Vec::new();
    let prefixes = event::Prefixes {
        public: "gitea".into(),
        private: "gitea_private".into(),
        all_private: false,
    };
    for page in 1..=10 {
        let p = client
            .feed_page(&spec, page, None)
            .await
            .map_err(|e| format!("reading the fake Gitea's feed: {e}"))?;
        for row in &p.rows {
            events.push(
                event::build(&gitea.url(), &prefixes, row)
                    .map_err(|e| format!("building an event: {e}"))?,
            );
        }
        if !p.has_next {
            break;
        }
    }
    gitea.shutdown().await;
    if events.is_empty() {
        return Err("the fake Gitea served no rows for the sample events".into());
    }
    Ok(events)
}

struct Raw {
    pipelined_n: usize,
    pipelined_per_sec: f64,
    serial_n: usize,
    serial_per_sec: f64,
}

async fn raw_publish(samples: &[Event], pipelined_n: usize, serial_n: usize) -> Res<Raw> {
    let dir = temp_dir("raw")?;
    let server = start_nats(dir.path()).await?;
    let cfg = Config::parse(&format!(
        "[gitea]\nurl = \"http://127.0.0.1:1\"\n[nats]\nurl = \"{}\"\n[[source]]\norg = \"x\"\n",
        server.url()
    ))
    .map_err(|e| format!("raw config: {e}"))?;
    // The same client, context and stream settings as the sourcer.
    let client = nats::connect(&cfg.nats, &gitea_nats_sourcer::telemetry::Telemetry::new())
        .await
        .map_err(|e| e.to_string())?;
    let js = nats::jetstream(client);
    nats::ensure_stream(&js, &cfg.nats)
        .await
        .map_err(|e| e.to_string())?;

    let msg = |i: usize| {
        let e = &samples[i % samples.len()];
        let p = Publish::build()
            .payload(e.payload.clone())
            .message_id(format!("bench-{i}"));
        (e.subject.clone(), p)
    };
    let publish_err = |e: &dyn std::fmt::Display| format!("raw JetStream publish failed: {e}");

    // Warm-up: one batch, not timed.
    let mut next = 0usize;
    let mut pending = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        let (s, p) = msg(next);
        next += 1;
        pending.push(js.send_publish(s, p).await.map_err(|e| publish_err(&e))?);
    }
    for ack in pending.drain(..) {
        ack.await.map_err(|e| publish_err(&e))?;
    }

    let started = Instant::now();
    let mut left = pipelined_n;
    while left > 0 {
        let n = left.min(BATCH);
        for _ in 0..n {
            let (s, p) = msg(next);
            next += 1;
            pending.push(js.send_publish(s, p).await.map_err(|e| publish_err(&e))?);
        }
        for ack in pending.drain(..) {
            let ack = ack.await.map_err(|e| publish_err(&e))?;
            if ack.duplicate {
                return Err("raw publish: a unique Nats-Msg-Id was taken as a duplicate".into());
            }
        }
        left -= n;
    }
    let pipelined_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    for _ in 0..serial_n {
        let (s, p) = msg(next);
        next += 1;
        js.send_publish(s, p)
            .await
            .map_err(|e| publish_err(&e))?
            .await
            .map_err(|e| publish_err(&e))?;
    }
    let serial_secs = started.elapsed().as_secs_f64();

    let stored = stream_count(&js).await;
    if stored != next as u64 {
        return Err(format!(
            "raw publish: the stream holds {stored} messages for {next} publishes"
        ));
    }
    drop(server);
    Ok(Raw {
        pipelined_n,
        pipelined_per_sec: pipelined_n as f64 / pipelined_secs,
        serial_n,
        serial_per_sec: serial_n as f64 / serial_secs,
    })
}

// ---------------------------------------------------------------------------------------
// 2. Catch-up

struct CatchUp {
    /// `gitea.requests_per_second` of the run.
    budget_rps: u32,
    /// Logical actions in the fake Gitea (`action_count()`).
    actions: usize,
    /// Actions the sourcer can tell apart: identical actions (same repository, kind, actor,
    /// ref, comment and content) in the same second count once; the sourcer documents that
    /// it takes them for copies of one (README, "Delivery guarantee").
    distinct: usize,
    /// Seconds from spawn until the stream held `distinct` messages (or its last growth).
    secs: f64,
    /// Messages in the stream when done, and 3 s later (more would mean repeats).
    stored: u64,
    stored_later: u64,
    /// `None`: every distinct action arrived; otherwise why the wait ended.
    incomplete: Option<String>,
    first_event_secs: Option<f64>,
    requests: usize,
    feed_requests: usize,
    failed_requests: usize,
    /// Distinct (feed, date) pairs read, and requests for their first page (passes).
    day_walks: usize,
    day_passes: usize,
    day_requests: usize,
    peak_rss_kib: u64,
    cpu_secs: f64,
    /// CPU seconds over the same span of the benchmark process (the fake Gitea serving
    /// pages, plus this loop) and of the nats-server.
    gitea_cpu_secs: f64,
    nats_cpu_secs: f64,
    exit: String,
    log: Vec<String>,
}

/// How long the stream may stay unchanged before the wait gives up (the sourcer polls
/// every second in the catch-up scenarios).
const STALL_SECS: u64 = 60;

fn distinct_actions(gitea: &FakeGitea) -> usize {
    let mut keys = std::collections::HashSet::new();
    for a in gitea.logical_actions() {
        keys.insert((
            a.repo,
            a.op_type,
            a.actor,
            a.ref_name,
            a.comment_id,
            a.content,
            a.created.timestamp(),
        ));
    }
    keys.len()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// How a catch-up scenario reads Gitea: the request budget, and a delay added to every
/// answer (a real Gitea takes tens to hundreds of milliseconds per feed page).
#[derive(Clone, Copy)]
struct Budget {
    rps: u32,
    burst: u32,
    latency: Option<Duration>,
}

fn local_budget() -> Res<Budget> {
    Ok(Budget {
        rps: env_usize("BENCH_CATCH_UP_RPS", CATCH_UP_RPS as usize)? as u32,
        burst: 100,
        latency: None,
    })
}

async fn catch_up(
    label: &str,
    spec: &HistorySpec,
    budget: Budget,
    deadline_secs: u64,
    clk_tck: f64,
) -> Res<CatchUp> {
    let dir = temp_dir(label)?;
    let server = start_nats(dir.path()).await?;
    let gitea = start_gitea().await?;
    if let Some(d) = budget.latency {
        gitea.inject(Fault::new(FaultKind::Delay(d)).times(usize::MAX));
    }
    let t = Instant::now();
    gitea.generate_history(spec);
    let actions = gitea.action_count();
    let distinct = distinct_actions(&gitea);
    progress(&format!(
        "{label}: {actions} logical actions ({distinct} distinguishable) generated in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let sources: String = gitea
        .org_names()
        .iter()
        .map(|o| format!("[[source]]\norg = \"{o}\"\n\n"))
        .collect();
    let config = dir.path().join("config.toml");
    write_config(
        &config,
        &gitea.url(),
        &server.url(),
        &format!(
            "requests_per_second = {}\nburst = {}",
            budget.rps, budget.burst
        ),
        "start = \"beginning\"\ninterval = \"1s\"",
        &sources,
    )?;
    let js = connect(&server.url()).await?;
    gitea.clear_requests();
    let nats_pid = server.pid();
    let self_pid = std::process::id();
    let others_cpu = |clk| {
        (
            proc_cpu_secs(self_pid, clk).unwrap_or(f64::NAN),
            nats_pid
                .and_then(|p| proc_cpu_secs(p, clk))
                .unwrap_or(f64::NAN),
        )
    };
    let (gitea_cpu0, nats_cpu0) = others_cpu(clk_tck);

    let mut sourcer = Sourcer::spawn(&config, &dir.path().join("sourcer.log"))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(deadline_secs);
    let mut peak = 0u64;
    let mut first_event_secs = None;
    let mut last_report = Instant::now();
    let (mut last_n, mut last_change) = (0u64, started);
    let (stored, incomplete, secs, cpu_secs, gitea_cpu_secs, nats_cpu_secs) = loop {
        sourcer.check_alive()?;
        peak = peak.max(proc_status_kib(sourcer.pid, "VmHWM").unwrap_or(0));
        let n = stream_count(&js).await;
        let now = Instant::now();
        if n != last_n {
            (last_n, last_change) = (n, now);
        }
        if n > 0 && first_event_secs.is_none() {
            first_event_secs = Some(started.elapsed().as_secs_f64());
        }
        let why = if n >= distinct as u64 {
            Some(None)
        } else if now >= deadline {
            Some(Some(format!(
                "deadline of {deadline_secs} s hit with {n} of {distinct} events"
            )))
        } else if n > 0 && now - last_change >= Duration::from_secs(STALL_SECS) {
            Some(Some(format!(
                "stalled at {n} of {distinct} events (no new event for {STALL_SECS} s)"
            )))
        } else {
            None
        };
        if let Some(why) = why {
            let secs = if why.is_none() {
                started.elapsed().as_secs_f64()
            } else {
                (last_change - started).as_secs_f64()
            };
            let cpu = proc_cpu_secs(sourcer.pid, clk_tck).unwrap_or(f64::NAN);
            let (g, n2) = others_cpu(clk_tck);
            break (n, why, secs, cpu, g - gitea_cpu0, n2 - nats_cpu0);
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            progress(&format!(
                "{label}: {n} of {distinct} events after {:.0} s",
                started.elapsed().as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    peak = peak.max(proc_status_kib(sourcer.pid, "VmHWM").unwrap_or(0));
    if let Some(why) = &incomplete {
        progress(&format!("{label}: INCOMPLETE: {why}"));
    }
    // A few more polls: anything published now would be a repeat.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stored_later = stream_count(&js).await;
    peak = peak.max(proc_status_kib(sourcer.pid, "VmHWM").unwrap_or(0));
    let records = gitea.requests();
    let exit = sourcer.terminate().await;
    let log = log_issues(&dir.path().join("sourcer.log"));
    gitea.shutdown().await;
    drop(server);
    progress(&format!(
        "{label}: {stored} events in {secs:.1} s, {} Gitea requests, peak RSS {:.1} MiB, {cpu_secs:.1} CPU s",
        records.len(),
        mib(peak)
    ));
    Ok(CatchUp {
        budget_rps: budget.rps,
        actions,
        distinct,
        secs,
        stored,
        stored_later,
        incomplete,
        first_event_secs,
        requests: records.len(),
        feed_requests: records
            .iter()
            .filter(|r| r.path.ends_with("/activities/feeds"))
            .count(),
        failed_requests: records.iter().filter(|r| r.status != 200).count(),
        day_walks: records
            .iter()
            .filter_map(|r| query_param(&r.query, "date").map(|d| (r.path.clone(), d)))
            .collect::<std::collections::HashSet<_>>()
            .len(),
        day_passes: records
            .iter()
            .filter(|r| {
                query_param(&r.query, "date").is_some()
                    && query_param(&r.query, "page").is_none_or(|p| p == "1")
            })
            .count(),
        day_requests: records
            .iter()
            .filter(|r| query_param(&r.query, "date").is_some())
            .count(),
        peak_rss_kib: peak,
        cpu_secs,
        gitea_cpu_secs,
        nats_cpu_secs,
        exit,
        log,
    })
}

// ---------------------------------------------------------------------------------------
// 3. Steady state

struct Idle {
    sources: usize,
    secs: u64,
    cursors_secs: f64,
    cpu_percent: f64,
    rss_kib: u64,
    peak_rss_kib: u64,
    requests_per_sec: f64,
    stored: u64,
    exit: String,
    log: Vec<String>,
}

async fn steady_state(sources: usize, secs: u64, clk_tck: f64) -> Res<Idle> {
    let dir = temp_dir("idle")?;
    let server = start_nats(dir.path()).await?;
    let gitea = start_gitea().await?;
    let old = gitea.now() - ChronoDuration::days(2);
    let mut table = String::new();
    for i in 0..sources {
        let owner = format!("team{:02}", i / 100);
        let name = format!("repo{i:04}");
        gitea.add_repo(&owner, &name);
        let repo = format!("{owner}/{name}");
        gitea.push_action(NewAction::create_issue("alice", &repo, 1, "an old issue").at(old));
        let _ = write!(table, "[[source]]\nrepo = \"{repo}\"\n\n");
    }
    let config = dir.path().join("config.toml");
    write_config(
        &config,
        &gitea.url(),
        &server.url(),
        "requests_per_second = 200\nburst = 200",
        "start = \"now\"\ninterval = \"30s\"",
        &table,
    )?;
    let js = connect(&server.url()).await?;

    let mut sourcer = Sourcer::spawn(&config, &dir.path().join("sourcer.log"))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(180);
    loop {
        sourcer.check_alive()?;
        let n = cursor_count(&js).await;
        if n >= sources {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "steady state: only {n} of {sources} sources have a cursor after 180 s; the sourcer's log ends with:\n{}",
                tail(&sourcer.log, 20)
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cursors_secs = started.elapsed().as_secs_f64();
    progress(&format!(
        "idle: {sources} cursors after {cursors_secs:.1} s; measuring {secs} s"
    ));

    let cpu0 = proc_cpu_secs(sourcer.pid, clk_tck).ok_or("cannot read the sourcer's CPU time")?;
    let req0 = gitea.requests().len();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(secs);
    while Instant::now() < end {
        sourcer.check_alive()?;
        tokio::time::sleep(Duration::from_millis(500).min(end - Instant::now())).await;
    }
    let cpu1 = proc_cpu_secs(sourcer.pid, clk_tck).ok_or("cannot read the sourcer's CPU time")?;
    let elapsed = t0.elapsed().as_secs_f64();
    let req1 = gitea.requests().len();
    let rss_kib = proc_status_kib(sourcer.pid, "VmRSS").unwrap_or(0);
    let peak_rss_kib = proc_status_kib(sourcer.pid, "VmHWM").unwrap_or(0);
    let stored = stream_count(&js).await;
    let exit = sourcer.terminate().await;
    let log = log_issues(&dir.path().join("sourcer.log"));
    gitea.shutdown().await;
    drop(server);
    Ok(Idle {
        sources,
        secs,
        cursors_secs,
        cpu_percent: (cpu1 - cpu0) / elapsed * 100.0,
        rss_kib,
        peak_rss_kib,
        requests_per_sec: (req1 - req0) as f64 / elapsed,
        stored,
        exit,
        log,
    })
}

// ---------------------------------------------------------------------------------------
// 4. Live: many repositories, few of them active, a small budget

/// Organisations, repositories per organisation, and the share of repositories that are
/// active, of the live scenario.
const LIVE_ORGS: usize = 200;
const LIVE_REPOS_PER_ORG: usize = 50;
const LIVE_ACTIVE_PERCENT: usize = 1;
const LIVE_RPS: u32 = 10;
const LIVE_INTERVAL_SECS: u64 = 15;
/// `gitea.burst` of the live scenario (the default).
const LIVE_BURST: u32 = 10;

struct Live {
    repos: usize,
    active_repos: usize,
    active_orgs: usize,
    actions: usize,
    received: usize,
    secs: u64,
    warmup_secs: f64,
    /// Delays from each action's creation to its event's arrival at a subscriber, sorted.
    delays: Vec<f64>,
    requests_per_sec: f64,
    /// The most requests in any 10 s window of the measurement, per second.
    max_window_rps: f64,
    cpu_percent: f64,
    rss_kib: u64,
    peak_rss_kib: u64,
    exit: String,
    log: Vec<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn live(secs: u64, per_sec: f64, clk_tck: f64) -> Res<Live> {
    use rand::{Rng, SeedableRng};
    let dir = temp_dir("live")?;
    let server = start_nats(dir.path()).await?;
    let gitea = start_gitea().await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let old = gitea.now() - ChronoDuration::days(3);
    let mut repos = Vec::new();
    let mut table = String::new();
    for o in 0..LIVE_ORGS {
        let org = format!("org{o:03}");
        gitea.add_org(&org);
        for r in 0..LIVE_REPOS_PER_ORG {
            let name = format!("repo{r:02}");
            gitea.add_repo(&org, &name);
            repos.push(format!("{org}/{name}"));
        }
        // Some old history, so that each feed's first page holds rows (parsed every poll).
        for i in 0..10 {
            let repo = &repos[o * LIVE_REPOS_PER_ORG + i];
            gitea.push_action(NewAction::push("alice", repo, "main", 1).at(old));
        }
        let _ = write!(table, "[[source]]\norg = \"{org}\"\n\n");
    }
    let n_active = repos.len() * LIVE_ACTIVE_PERCENT / 100;
    let mut active: Vec<String> = Vec::new();
    while active.len() < n_active {
        let r = repos[rng.random_range(0..repos.len())].clone();
        if !active.contains(&r) {
            active.push(r);
        }
    }
    let active_orgs = active
        .iter()
        .filter_map(|r| r.split('/').next())
        .collect::<std::collections::HashSet<_>>()
        .len();
    let config = dir.path().join("config.toml");
    write_config(
        &config,
        &gitea.url(),
        &server.url(),
        &format!("requests_per_second = {LIVE_RPS}\nburst = {LIVE_BURST}"),
        &format!("start = \"now\"\ninterval = \"{LIVE_INTERVAL_SECS}s\""),
        &table,
    )?;
    let js = connect(&server.url()).await?;
    let mut sourcer = Sourcer::spawn(&config, &dir.path().join("sourcer.log"))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    loop {
        sourcer.check_alive()?;
        let n = cursor_count(&js).await;
        if n >= LIVE_ORGS {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "live: only {n} of {LIVE_ORGS} sources have a cursor after 300 s; the sourcer's log ends with:\n{}",
                tail(&sourcer.log, 20)
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // One more round of polls, so every source has been polled at least twice.
    tokio::time::sleep(Duration::from_secs(LIVE_INTERVAL_SECS)).await;
    let warmup_secs = started.elapsed().as_secs_f64();
    progress(&format!(
        "live: {LIVE_ORGS} cursors after {warmup_secs:.0} s; {per_sec} actions/s in {n_active} active repositories for {secs} s"
    ));
    // Events arrive at a plain subscriber: the delay is the action's creation to here.
    let client = async_nats::connect(server.url())
        .await
        .map_err(|e| format!("live: cannot connect: {e}"))?;
    let mut sub = client
        .subscribe("gitea.>")
        .await
        .map_err(|e| format!("live: cannot subscribe: {e}"))?;
    let pushed: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>> =
        Default::default();
    let arrived: std::sync::Arc<std::sync::Mutex<Vec<f64>>> = Default::default();
    let (p2, a2) = (pushed.clone(), arrived.clone());
    let listener = tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let now = Instant::now();
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(&m.payload) else {
                continue;
            };
            let key = format!(
                "{}|{}",
                body["subject"].as_str().unwrap_or(""),
                body["data"]["activity"]["ref_name"].as_str().unwrap_or("")
            );
            let t = p2.lock().ok().and_then(|p| p.get(&key).copied());
            if let (Some(t), Ok(mut a)) = (t, a2.lock()) {
                a.push((now - t).as_secs_f64());
            }
        }
    });
    let cpu0 = proc_cpu_secs(sourcer.pid, clk_tck).ok_or("cannot read the sourcer's CPU time")?;
    gitea.clear_requests();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(secs);
    let gap = Duration::from_secs_f64(1.0 / per_sec.max(0.01));
    let mut actions = 0usize;
    let mut next = t0;
    while Instant::now() < end {
        sourcer.check_alive()?;
        let repo = &active[rng.random_range(0..active.len())];
        let branch = format!("b{actions}");
        if let Ok(mut p) = pushed.lock() {
            p.insert(format!("{repo}|refs/heads/{branch}"), Instant::now());
        }
        gitea.push_action(NewAction::push("bob", repo, &branch, 1));
        actions += 1;
        next += gap;
        tokio::time::sleep(next.saturating_duration_since(Instant::now())).await;
    }
    let cpu1 = proc_cpu_secs(sourcer.pid, clk_tck).ok_or("cannot read the sourcer's CPU time")?;
    let elapsed = t0.elapsed().as_secs_f64();
    let records = gitea.requests();
    let rss_kib = proc_status_kib(sourcer.pid, "VmRSS").unwrap_or(0);
    // The last actions' events: wait for them (up to 240 s; an event later than that counts as
    // not received).
    let drain_until = Instant::now() + Duration::from_secs(240);
    while Instant::now() < drain_until && arrived.lock().map(|a| a.len()).unwrap_or(0) < actions {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    listener.abort();
    let peak_rss_kib = proc_status_kib(sourcer.pid, "VmHWM").unwrap_or(0);
    let exit = sourcer.terminate().await;
    let log = log_issues(&dir.path().join("sourcer.log"));
    gitea.shutdown().await;
    drop(server);
    let in_window: Vec<Instant> = records
        .iter()
        .map(|r| r.at)
        .filter(|at| *at >= t0 && *at <= t0 + Duration::from_secs_f64(elapsed))
        .collect();
    let mut max_window = 0usize;
    let mut j = 0;
    for i in 0..in_window.len() {
        while in_window[i] - in_window[j] > Duration::from_secs(10) {
            j += 1;
        }
        max_window = max_window.max(i - j + 1);
    }
    let mut delays = arrived.lock().map(|a| a.clone()).unwrap_or_default();
    delays.sort_by(|a, b| a.total_cmp(b));
    Ok(Live {
        repos: repos.len(),
        active_repos: n_active,
        active_orgs,
        actions,
        received: delays.len(),
        secs,
        warmup_secs,
        delays,
        requests_per_sec: in_window.len() as f64 / elapsed,
        max_window_rps: max_window as f64 / 10.0,
        cpu_percent: (cpu1 - cpu0) / elapsed * 100.0,
        rss_kib,
        peak_rss_kib,
        exit,
        log,
    })
}

// ---------------------------------------------------------------------------------------
// 5. The table

struct Figures {
    avg_bytes: usize,
    raw: Raw,
    raw_after: Raw,
    big: CatchUp,
    big_wide: CatchUp,
    slow: CatchUp,
    small: CatchUp,
    idle: Idle,
    live: Live,
}

fn status(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

/// `12345.6` → `12,346`.
fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn table(f: &Figures) -> String {
    let b = &f.big;
    let s = &f.small;
    let i = &f.idle;
    let events = |c: &CatchUp| c.stored.min(c.distinct as u64) as f64;
    let events_per_sec = events(b) / b.secs;
    let raw_mean = (f.raw.pipelined_per_sec + f.raw_after.pipelined_per_sec) / 2.0;
    let ratio = events_per_sec / raw_mean;
    let per_request = events(b) / b.requests.max(1) as f64;
    let per_feed_request = events(b) / b.feed_requests.max(1) as f64;
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut row = |a: String, v: String, g: &str, st: &str| {
        rows.push([a, v, g.to_string(), st.to_string()]);
    };
    row("machine".into(), machine(), "", "");
    row(
        format!(
            "raw JetStream publish, pipelined in batches of {BATCH} ({} msgs, {} B avg, unique Nats-Msg-Id)",
            thousands(f.raw.pipelined_n as f64),
            thousands(f.avg_bytes as f64)
        ),
        format!("{} msg/s", thousands(f.raw.pipelined_per_sec)),
        "",
        "",
    );
    row(
        "raw JetStream publish, pipelined, again after the catch-up".into(),
        format!(
            "{} msg/s (mean of both: {})",
            thousands(f.raw_after.pipelined_per_sec),
            thousands(raw_mean)
        ),
        "",
        "",
    );
    row(
        format!(
            "raw JetStream publish, serial ({} msgs)",
            thousands(f.raw.serial_n as f64)
        ),
        format!("{} msg/s", thousands(f.raw.serial_per_sec)),
        "",
        "",
    );
    let label = format!("catch-up {}k", b.actions / 1000);
    row(
        format!("{label}: logical actions / distinguishable / events in the stream"),
        format!(
            "{} / {} / {}{}",
            thousands(b.actions as f64),
            thousands(b.distinct as f64),
            thousands(b.stored as f64),
            b.incomplete
                .as_ref()
                .map_or(String::new(), |w| format!(" ({w})"))
        ),
        "one event per distinguishable action",
        status(b.incomplete.is_none() && b.stored_later == b.distinct as u64),
    );
    row(
        format!("{label}: wall time (spawn to last event)"),
        format!(
            "{:.1} s (first event after {})",
            b.secs,
            b.first_event_secs
                .map_or("-".into(), |t| format!("{t:.1} s"))
        ),
        "",
        "",
    );
    row(
        format!("{label}: events/s"),
        thousands(events_per_sec),
        "",
        "",
    );
    row(
        format!("{label}: events/s ÷ raw pipelined publishes/s (mean of both runs)"),
        format!("{:.0} %", ratio * 100.0),
        "≥ 50 %",
        status(ratio >= 0.5),
    );
    row(
        format!("{label}: Gitea requests (feed pages; non-200; rate against the budget)"),
        format!(
            "{} ({}; {}; {:.0}/s of {}/s)",
            thousands(b.requests as f64),
            thousands(b.feed_requests as f64),
            b.failed_requests,
            b.requests as f64 / b.secs,
            b.budget_rps
        ),
        "",
        "",
    );
    row(
        format!("{label}: day walks (feed × date) / passes over a day / pages per pass"),
        format!(
            "{} / {} ({:.2} passes per day) / {:.1}",
            b.day_walks,
            b.day_passes,
            b.day_passes as f64 / b.day_walks.max(1) as f64,
            b.day_requests as f64 / b.day_passes.max(1) as f64
        ),
        "1 pass per day",
        "",
    );
    row(
        format!("{label}: Gitea requests per event"),
        format!("{:.4}", b.requests as f64 / events(b).max(1.0)),
        "",
        "",
    );
    row(
        format!("{label}: events per Gitea request (per feed page)"),
        format!("{per_request:.1} ({per_feed_request:.1})"),
        "close to the page maximum 50 (≥ 45)",
        status(per_request >= 0.9 * PAGE_MAX),
    );
    row(
        format!("{label}: peak RSS of the sourcer (VmHWM)"),
        format!("{:.1} MiB", mib(b.peak_rss_kib)),
        "< 64 MiB",
        status(mib(b.peak_rss_kib) < 64.0),
    );
    row(
        format!("{label}: CPU time of the sourcer (user + system); per event"),
        format!(
            "{:.1} s ({:.0} % of one core); {:.1} µs per event",
            b.cpu_secs,
            b.cpu_secs / b.secs * 100.0,
            b.cpu_secs / events(b).max(1.0) * 1e6,
        ),
        "≤ 8 µs per event",
        status(b.cpu_secs / events(b).max(1.0) * 1e6 <= 8.0),
    );
    row(
        format!("{label}: CPU over the same span of the fake Gitea (bench process) / nats-server"),
        format!(
            "{:.1} s / {:.1} s (machine busy: {:.0} % of {} cores, sourcer included)",
            b.gitea_cpu_secs,
            b.nats_cpu_secs,
            (b.cpu_secs + b.gitea_cpu_secs + b.nats_cpu_secs) / b.secs / cores() as f64 * 100.0,
            cores()
        ),
        "",
        "",
    );
    let bw = &f.big_wide;
    let wide_rate = events(bw) / bw.secs;
    row(
        format!(
            "{label} at {WIDE_RPS} requests/s: events/s ÷ raw pipelined publishes/s (mean); requests/s used; wall"
        ),
        format!(
            "{} events/s = {:.0} %; {:.0}/s; {:.1} s{}",
            thousands(wide_rate),
            wide_rate / raw_mean * 100.0,
            bw.requests as f64 / bw.secs,
            bw.secs,
            bw.incomplete
                .as_ref()
                .map_or(String::new(), |x| format!(" ({x})"))
        ),
        "≥ 50 %",
        status(wide_rate >= 0.5 * raw_mean && bw.incomplete.is_none()),
    );
    row(
        format!("{label} at {WIDE_RPS} requests/s: CPU of the sourcer; peak RSS"),
        format!(
            "{:.1} s ({:.0} % of one core); {:.1} MiB",
            bw.cpu_secs,
            bw.cpu_secs / bw.secs * 100.0,
            mib(bw.peak_rss_kib)
        ),
        "",
        "",
    );
    let w = &f.slow;
    let slow_label = format!(
        "catch-up {}k, {SLOW_LATENCY_MS} ms per Gitea answer, {SLOW_RPS} requests/s",
        w.actions / 1000
    );
    let ideal = SLOW_RPS as f64 * PAGE_MAX;
    let slow_rate = events(w) / w.secs;
    row(
        format!("{slow_label}: events in the stream / distinguishable; wall time"),
        format!(
            "{} / {}{}; {:.1} s",
            thousands(w.stored as f64),
            thousands(w.distinct as f64),
            w.incomplete
                .as_ref()
                .map_or(String::new(), |x| format!(" ({x})")),
            w.secs
        ),
        "one event per distinguishable action",
        status(w.incomplete.is_none() && w.stored_later == w.distinct as u64),
    );
    row(
        format!(
            "{slow_label}: events/s ÷ ideal (requests/s × page size = {})",
            thousands(ideal)
        ),
        format!(
            "{} events/s = {:.0} %",
            thousands(slow_rate),
            slow_rate / ideal * 100.0
        ),
        "≥ 95 %",
        status(slow_rate >= 0.95 * ideal),
    );
    row(
        format!(
            "{slow_label}: Gitea requests (feed pages; day-walk requests); rate against the budget"
        ),
        format!(
            "{} ({}; {}); {:.1}/s of {SLOW_RPS}/s",
            thousands(w.requests as f64),
            thousands(w.feed_requests as f64),
            thousands(w.day_requests as f64),
            w.requests as f64 / w.secs
        ),
        "",
        "",
    );
    row(
        format!("{slow_label}: peak RSS; CPU of the sourcer"),
        format!(
            "{:.1} MiB; {:.1} s ({:.0} % of one core)",
            mib(w.peak_rss_kib),
            w.cpu_secs,
            w.cpu_secs / w.secs * 100.0
        ),
        "",
        "",
    );
    row(
        format!(
            "gap {}k (5 days, 1 org): peak RSS / events/s",
            s.actions / 1000
        ),
        format!(
            "{:.1} MiB / {} ({} of {} events in {:.1} s{})",
            mib(s.peak_rss_kib),
            thousands(events(s) / s.secs),
            thousands(s.stored as f64),
            thousands(s.distinct as f64),
            s.secs,
            s.incomplete
                .as_ref()
                .map_or(String::new(), |w| format!(", {w}"))
        ),
        "≤ 64 MiB, flat against gap size",
        status(mib(s.peak_rss_kib) <= 64.0),
    );
    row(
        format!(
            "idle: {} repo sources, interval 30s: CPU over {} s",
            thousands(i.sources as f64),
            i.secs
        ),
        format!("{:.2} % of one core", i.cpu_percent),
        "< 1 %",
        status(i.cpu_percent < 1.0),
    );
    row(
        "idle: RSS of the sourcer (now / peak)".into(),
        format!("{:.1} MiB / {:.1} MiB", mib(i.rss_kib), mib(i.peak_rss_kib)),
        "",
        "",
    );
    row(
        "idle: Gitea requests/s; time until every source had a cursor".into(),
        format!("{:.1} /s; {:.1} s", i.requests_per_sec, i.cursors_secs),
        "",
        "",
    );
    let l = &f.live;
    let live_label = format!(
        "live: {} repositories in {LIVE_ORGS} orgs ({LIVE_ORGS} org sources, interval {LIVE_INTERVAL_SECS}s), {} active in {} orgs, {LIVE_RPS} requests/s",
        thousands(l.repos as f64),
        l.active_repos,
        l.active_orgs
    );
    let p50 = percentile(&l.delays, 0.5);
    let p99 = percentile(&l.delays, 0.99);
    row(
        format!("{live_label}: actions over {} s / events received", l.secs),
        format!(
            "{} / {} (after a warm-up of {:.0} s)",
            l.actions, l.received, l.warmup_secs
        ),
        "every action",
        status(l.received >= l.actions),
    );
    row(
        format!("{live_label}: delay from creation to publication, p50 / p99 / max"),
        format!(
            "{p50:.1} s / {p99:.1} s / {:.1} s",
            l.delays.last().copied().unwrap_or(f64::NAN)
        ),
        "p99 < 60 s",
        status(p99 < 60.0 && l.received >= l.actions),
    );
    // The limiter allows `requests_per_second` sustained and `burst` (10, the default) at
    // once above it: over any 10 s, at most rps + burst / 10 a second.
    let bound = LIVE_RPS as f64 + LIVE_BURST as f64 / 10.0;
    row(
        format!("{live_label}: Gitea requests/s (mean; most in any 10 s)"),
        format!("{:.2} /s; {:.1} /s", l.requests_per_sec, l.max_window_rps),
        &format!(
            "never above the budget: {LIVE_RPS}/s sustained, burst 10 (≤ {bound:.0}/s over any 10 s)"
        ),
        status(l.max_window_rps <= bound),
    );
    row(
        format!("{live_label}: CPU of the sourcer"),
        format!("{:.2} % of one core", l.cpu_percent),
        "< 1 %",
        status(l.cpu_percent < 1.0),
    );
    row(
        format!("{live_label}: RSS of the sourcer (now / peak)"),
        format!("{:.1} MiB / {:.1} MiB", mib(l.rss_kib), mib(l.peak_rss_kib)),
        "< 64 MiB",
        status(mib(l.peak_rss_kib) < 64.0),
    );

    let mut out = String::new();
    let _ = writeln!(out, "\n## gitea-nats-sourcer benchmark\n");
    let _ = writeln!(out, "| figure | value | goal | status |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    for [a, v, g, st] in &rows {
        let _ = writeln!(out, "| {a} | {v} | {g} | {st} |");
    }

    let mut notes = Vec::new();
    for (what, c) in [
        ("catch-up", b),
        ("catch-up (wide budget)", &f.big_wide),
        ("slow catch-up", &f.slow),
        ("gap 10k", s),
    ] {
        if c.stored_later != c.stored {
            notes.push(format!(
                "{what}: the stream grew from {} to {} messages after every action was in it (repeats?)",
                c.stored, c.stored_later
            ));
        }
        if c.stored_later > c.distinct as u64 {
            notes.push(format!(
                "{what}: {} messages for {} distinguishable actions (repeats)",
                c.stored_later, c.distinct
            ));
        }
        if c.distinct != c.actions {
            notes.push(format!(
                "{what}: the fake Gitea generated {} action(s) identical to another in the same second \
                 (same repository, kind, actor and content, e.g. a double star_repo); the sourcer \
                 documents that it takes them for copies of one, so the target is {} events, not {}",
                c.actions - c.distinct,
                c.distinct,
                c.actions
            ));
        }
        if let Some(why) = &c.incomplete {
            notes.push(format!("{what}: {why}"));
        }
        if !c.exit.starts_with("exit 0") {
            notes.push(format!("{what}: the sourcer {}", c.exit));
        }
        push_log_notes(&mut notes, what, &c.log);
    }
    if i.stored != 0 {
        notes.push(format!(
            "idle: {} events published although every source started at `now`",
            i.stored
        ));
    }
    if !i.exit.starts_with("exit 0") {
        notes.push(format!("idle: the sourcer {}", i.exit));
    }
    push_log_notes(&mut notes, "idle", &i.log);
    if !l.exit.starts_with("exit 0") {
        notes.push(format!("live: the sourcer {}", l.exit));
    }
    push_log_notes(&mut notes, "live", &l.log);
    let _ = writeln!(
        out,
        "\nThe fake Gitea runs inside the benchmark process and nats-server beside it, on the same \
         machine; CPU and RSS figures are the sourcer's process only."
    );
    if notes.is_empty() {
        let _ = writeln!(
            out,
            "No anomalies: no warnings or errors in the sourcer's logs."
        );
    } else {
        let _ = writeln!(out, "\nAnomalies:");
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

fn push_log_notes(notes: &mut Vec<String>, what: &str, log: &[String]) {
    if log.is_empty() {
        return;
    }
    notes.push(format!(
        "{what}: {} warning/error lines in the sourcer's log; first: {}",
        log.len(),
        log.iter().take(3).cloned().collect::<Vec<_>>().join(" / ")
    ));
}
