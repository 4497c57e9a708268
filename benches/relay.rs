//! Benchmark of the relay; one run, one markdown table at the end, no assertion on speed.
//!
//! A private nats-server, the stream as the sourcer makes it, a local HTTP receiver (the
//! tests' one: it verifies every signature), and the relay in this process with one
//! receiver (`max_ack_pending = 1`: one delivery at a time, in stream order).
//!
//! 1. **Burst**: `BENCH_RELAY_EVENTS` (default 1,000) hook events published at once; the
//!    relay drains them: throughput from the first publish to the last delivery.
//! 2. **Paced**: as many events at `BENCH_RELAY_RATE` per second (default 200), each
//!    delivery's latency from its publish to its arrival at the receiver (p50, p99, max).

#[path = "../tests/support/receiver.rs"]
mod receiver;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream;
use gitea_nats_sourcer::config::NatsConfig;
use gitea_nats_sourcer::relay::{self, config::RelayConfig};
use gitea_nats_sourcer::telemetry::Telemetry;
use nats_harness::LocalNats;

type Res<T> = Result<T, String>;

const SECRET: &str = "bench-secret";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("benchmark failed: cannot build a tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(bench()) {
        Ok(table) => println!("{table}"),
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}

/// A hook event as the sourcer publishes it; its body carries `n` (and padding to a typical
/// push payload's size, about 4 KB).
fn message(run: &str, n: usize) -> (String, HeaderMap, bytes::Bytes) {
    let id = format!("bench-{run}-{n}");
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("ce-specversion", "1.0".to_string()),
        ("ce-id", id.clone()),
        ("ce-type", "io.gitea.webhook.push".to_string()),
        ("ce-source", "http://gitea.test/acme/web".to_string()),
        ("ce-subject", "acme/web".to_string()),
        ("ce-time", "2026-01-01T00:00:00Z".to_string()),
        ("Content-Type", "application/json".to_string()),
        ("X-Gitea-Event", "push".to_string()),
        ("X-Gitea-Event-Type", "push".to_string()),
        ("Nats-Msg-Id", id),
    ] {
        h.insert(k, v.as_str());
    }
    let body = serde_json::json!({
        "run": run,
        "n": n,
        "repository": {"full_name": "acme/web"},
        "padding": "x".repeat(4000),
    });
    (
        "gitea.acme.web.hook.push".to_string(),
        h,
        serde_json::to_vec(&body).unwrap_or_default().into(),
    )
}

/// Arrival times at the receiver of run `run`'s events, by `n`.
fn arrivals(rx: &receiver::Receiver, run: &str, n: usize) -> Vec<Option<Instant>> {
    let mut out = vec![None; n];
    for g in rx.delivered() {
        let v = g.json();
        if v["run"] == run
            && let Some(i) = v["n"].as_u64().map(|i| i as usize)
            && i < n
            && out[i].is_none()
        {
            out[i] = Some(g.at);
        }
    }
    out
}

async fn wait_all(
    rx: &receiver::Receiver,
    run: &str,
    n: usize,
    within: Duration,
) -> Res<Vec<Instant>> {
    let deadline = Instant::now() + within;
    loop {
        let a = arrivals(rx, run, n);
        if a.iter().all(Option::is_some) {
            return Ok(a.into_iter().flatten().collect());
        }
        if Instant::now() > deadline {
            let got = a.iter().filter(|x| x.is_some()).count();
            return Err(format!("{run}: {got} of {n} delivered within {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn bench() -> Res<String> {
    let n = env_usize("BENCH_RELAY_EVENTS", 1000);
    let rate = env_usize("BENCH_RELAY_RATE", 200).max(1);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let nats = LocalNats::start(&dir.path().join("store")).await?;
    let client = async_nats::connect(nats.url())
        .await
        .map_err(|e| e.to_string())?;
    let js = jetstream::new(client);
    let ncfg = NatsConfig {
        url: nats.url(),
        max_bytes: 256 << 20,
        ..Default::default()
    };
    gitea_nats_sourcer::nats::ensure_stream(&js, &ncfg)
        .await
        .map_err(|e| e.to_string())?;
    let rx = receiver::Receiver::start(SECRET).await;
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).map_err(|e| e.to_string())?;
    let text = format!(
        "[nats]\nurl = \"{}\"\n\n[[receiver]]\nname = \"bench\"\nurl = \"{}\"\nsecret_file = {:?}\nstart = \"all\"\n",
        nats.url(),
        rx.url(),
        secret.display().to_string()
    );
    let cfg = RelayConfig::parse(&text).map_err(|e| e.to_string())?;
    let receivers = cfg.receivers().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay::run_with(cfg, receivers, Telemetry::new(), async {
        let _ = stop_rx.await;
    }));

    // 1. Burst.
    let started = Instant::now();
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        let (subject, h, body) = message("burst", i);
        acks.push(
            js.publish_with_headers(subject, h, body)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    for a in acks {
        a.await.map_err(|e| e.to_string())?;
    }
    let published = started.elapsed();
    let burst = wait_all(&rx, "burst", n, Duration::from_secs(120)).await?;
    let last = burst.iter().max().copied().unwrap_or(started);
    let drain = last - started;
    let burst_tput = n as f64 / drain.as_secs_f64();

    // 2. Paced: latency from publish (acknowledged by JetStream) to arrival.
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let mut sent = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(every);
    for i in 0..n {
        tick.tick().await;
        let (subject, h, body) = message("paced", i);
        let t = Instant::now();
        js.publish_with_headers(subject, h, body)
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        sent.push(t);
    }
    let paced = wait_all(&rx, "paced", n, Duration::from_secs(120)).await?;
    let mut lat: Vec<Duration> = paced
        .iter()
        .zip(&sent)
        .map(|(a, s)| a.saturating_duration_since(*s))
        .collect();
    lat.sort();
    let bad = rx.got().iter().filter(|g| !g.gitea_sig_ok).count();
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), relay_task).await;

    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| relay ({n} events of ~4 KB, one receiver, signatures verified) | figure |"
    );
    let _ = writeln!(t, "| --- | --- |");
    let _ = writeln!(t, "| burst: published (pipelined) in | {} |", ms(published));
    let _ = writeln!(
        t,
        "| burst: first publish to last delivery | {} |",
        ms(drain)
    );
    let _ = writeln!(t, "| burst: throughput | {burst_tput:.0} deliveries/s |");
    let _ = writeln!(
        t,
        "| paced at {rate}/s: latency p50 | {} |",
        ms(percentile(&lat, 0.50))
    );
    let _ = writeln!(
        t,
        "| paced at {rate}/s: latency p99 | {} |",
        ms(percentile(&lat, 0.99))
    );
    let _ = writeln!(
        t,
        "| paced at {rate}/s: latency max | {} |",
        ms(percentile(&lat, 1.0))
    );
    let _ = writeln!(t, "| signatures that did not verify | {bad} |");
    Ok(t)
}
