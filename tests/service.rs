//! Running as a service: metrics and health endpoints, systemd notify and watchdog, NATS
//! with TLS (test certificates made at test time) and user/password, shutdown, secrets kept
//! out of logs, metrics and errors. Reloads (SIGHUP) are in `tests/reload.rs`.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use gitea_sim::{NewAction, SimOptions};
use nats_harness::free_port;
use support::*;

const TOKEN: &str = "tok-metrics-9e1d-DISTINCTIVE";
async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// The value of one sample line `name{labels} value` whose text contains every `needle`.
fn sample(metrics: &str, name: &str, needles: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .next()
}

#[tokio::test]
async fn metrics_and_health_endpoints_move_when_events_flow_and_never_show_the_token() {
    let nats = Nats::start().await;
    let g = gitea_with(SimOptions {
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    g.add_org("metricsorg");
    g.add_repo("metricsorg", "gauges");
    for _ in 0..3 {
        g.push_action(NewAction::push("alice", "metricsorg/gauges", "main", 1));
    }
    let port = free_port().unwrap();
    let mut cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"metricsorg/gauges\"",
    );
    cfg.gitea.token = Some(gitea_nats_sourcer::config::Secret::new(TOKEN));
    cfg.http.listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let run = run(cfg);
    wait_for(20, "healthz answers", || async {
        get(&format!("{base}/healthz")).await.0 == 200
    })
    .await;
    wait_for(20, "readyz is ready", || async {
        get(&format!("{base}/readyz")).await.0 == 200
    })
    .await;
    let published = |m: &str| {
        sample(
            m,
            "gitea_nats_sourcer_events_published_total",
            &["metricsorg/gauges", "commit_repo"],
        )
    };
    wait_for(20, "three events counted", || async {
        published(&get(&format!("{base}/metrics")).await.1) == Some(3.0)
    })
    .await;
    for _ in 0..2 {
        g.push_action(NewAction::comment("bob", "metricsorg/gauges", 1, "hello"));
    }
    wait_for(20, "the comments counted", || async {
        let m = get(&format!("{base}/metrics")).await.1;
        sample(
            &m,
            "gitea_nats_sourcer_events_published_total",
            &["metricsorg/gauges", "comment_issue"],
        ) == Some(2.0)
    })
    .await;
    let m = get(&format!("{base}/metrics")).await.1;
    for name in [
        "gitea_nats_sourcer_gitea_requests_total{class=\"2xx\"}",
        "gitea_nats_sourcer_poll_duration_seconds_count{source=\"repo:metricsorg/gauges\"}",
        "gitea_nats_sourcer_source_lag_seconds{source=\"repo:metricsorg/gauges\"}",
        "gitea_nats_sourcer_cursor_age_seconds{source=\"repo:metricsorg/gauges\"}",
        "gitea_nats_sourcer_nats_connected 1",
        "gitea_nats_sourcer_rate_limit_waits_total",
    ] {
        assert!(m.contains(name), "missing {name} in:\n{m}");
    }
    assert!(!m.contains(TOKEN));
    run.stop().await;
}

/// `/metrics` as a scraper asking with `accept` sees it: the status, `Content-Type`, body.
async fn scrape(url: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (status, ct, r.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new(), String::new()),
    }
}

#[tokio::test]
async fn metrics_start_at_zero_and_answer_the_format_the_scraper_asks_for() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("zeroorg");
    g.add_repo("zeroorg", "quiet");
    let port = free_port().unwrap();
    let mut cfg = config(
        &g.url(),
        &nats.url(),
        "",
        "[[source]]\nrepo = \"zeroorg/quiet\"",
    );
    cfg.http.listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let url = format!("http://127.0.0.1:{port}/metrics");
    let run = run(cfg);
    let src = "source=\"repo:zeroorg/quiet\"";
    wait_for(20, "the source's first poll counted", || async {
        sample(
            &scrape(&url, None).await.2,
            "gitea_nats_sourcer_poll_duration_seconds_count",
            &[src],
        )
        .is_some_and(|v| v >= 1.0)
    })
    .await;
    // Prometheus's own Accept header: OpenMetrics.
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (status, ct, open) = scrape(&url, Some(prometheus)).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(
        open.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF:\n{open}"
    );
    assert!(open.contains("# TYPE gitea_nats_sourcer_events_duplicate counter"));
    // No Accept (curl), or one that prefers text: the 0.0.4 text format.
    for accept in [None, Some("text/plain;version=0.0.4"), Some("*/*")] {
        let (status, ct, text) = scrape(&url, accept).await;
        assert_eq!(status, 200);
        assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8", "{accept:?}");
        assert!(!text.contains("# EOF"), "{accept:?}");
        assert!(
            text.contains("# TYPE gitea_nats_sourcer_events_duplicate_total counter"),
            "a counter's TYPE names its samples in 0.0.4:\n{text}"
        );
    }
    // Nothing moved these, yet each is there at zero.
    let text = scrape(&url, None).await.2;
    for (name, needles) in [
        ("gitea_nats_sourcer_events_duplicate_total", vec![src]),
        ("gitea_nats_sourcer_gaps_detected_total", vec![src]),
        ("gitea_nats_sourcer_walks_unproven_total", vec![src]),
        (
            "gitea_nats_sourcer_poll_errors_total",
            vec![src, "reason=\"http_5xx\""],
        ),
        (
            "gitea_nats_sourcer_poll_errors_total",
            vec![src, "reason=\"publish\""],
        ),
        (
            "gitea_nats_sourcer_gitea_retries_total",
            vec!["reason=\"timeout\""],
        ),
        (
            "gitea_nats_sourcer_gitea_requests_total",
            vec!["class=\"5xx\""],
        ),
        ("gitea_nats_sourcer_nats_setup_failures_total", vec![]),
    ] {
        assert_eq!(
            sample(&text, name, &needles),
            Some(0.0),
            "{name} {needles:?} at zero in:\n{text}"
        );
    }
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        sample(&text, "gitea_nats_sourcer_build_info", &[&version]),
        Some(1.0)
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            sample(&text, name, &[]).is_some_and(|v| v > 0.0),
            "{name} in:\n{text}"
        );
    }
    run.stop().await;
}

#[tokio::test]
async fn the_binary_tells_systemd_it_is_ready_and_pings_the_watchdog() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[gitea]\nurl = \"{}\"\n[nats]\nurl = \"{}\"\n[poll]\ninterval = \"200ms\"\n[[source]]\norg = \"acme\"\n", g.url(), nats.url()),
    )
    .unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "600000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 512];
    while !(got.contains("READY=1") && got.contains("WATCHDOG=1")) {
        let n = tokio::time::timeout(Duration::from_secs(20), sock.recv(&mut buf))
            .await
            .expect("a notification within 20 s")
            .unwrap();
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
        got.push('\n');
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    while !got.contains("STOPPING=1") {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
            .await
            .expect("STOPPING within 10 s")
            .unwrap();
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
            KeyPair,
        };
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", ca.pem());
        for (name, usage) in [
            ("server", ExtendedKeyUsagePurpose::ServerAuth),
            ("client", ExtendedKeyUsagePurpose::ClientAuth),
        ] {
            let mut p =
                CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                    .unwrap();
            p.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &ca).unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}-key.pem"), key.serialize_pem());
        }
        std::fs::write(dir.path().join("password"), "s3cret-nats-pw\n").unwrap();
        Pki { dir }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[tokio::test]
async fn nats_with_tls_client_certificates_and_a_password_is_reached_with_the_config_and_refused_without()
 {
    let pki = Pki::new();
    let server_conf = pki.dir.path().join("nats.conf");
    std::fs::write(
        &server_conf,
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n}}\n\
             authorization {{\n  user: \"sourcer\"\n  password: \"s3cret-nats-pw\"\n}}\n",
            pki.path("server.pem"),
            pki.path("server-key.pem"),
            pki.path("ca.pem")
        ),
    )
    .unwrap();
    let nats = Nats::start_with(&["--config".to_string(), server_conf.display().to_string()]).await;
    let g = gitea().await;
    g.add_org("acme");
    let dir = tempfile::tempdir().unwrap();
    let full = format!(
        "user = \"sourcer\"\npassword_file = \"{}\"\ntls_ca_file = \"{}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        pki.path("password"),
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client-key.pem")
    );
    let check = |nats_extra: String| {
        let path = dir.path().join(format!("c{}.toml", nats_extra.len()));
        std::fs::write(
            &path,
            format!("[gitea]\nurl = \"{}\"\n[nats]\nurl = \"{}\"\n{nats_extra}[[source]]\norg = \"acme\"\n", g.url(), nats.url()),
        )
        .unwrap();
        async move {
            let out = tokio::process::Command::new(BIN)
                .arg("--config")
                .arg(&path)
                .arg("check")
                .output()
                .await
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let (code, text) = check(full.clone()).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok   stream GITEA_EVENTS"), "{text}");
    let no_password = full.replace("user = \"sourcer\"\n", "").replace(
        &format!("password_file = \"{}\"\n", pki.path("password")),
        "",
    );
    let (code, text) = check(no_password).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL nats"), "{text}");
    let no_tls = format!(
        "user = \"sourcer\"\npassword_file = \"{}\"\n",
        pki.path("password")
    );
    let (code, text) = check(no_tls).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL nats"), "{text}");
    assert!(!text.contains("s3cret-nats-pw"), "password leaked: {text}");
}

#[tokio::test]
async fn the_watchdog_is_pinged_through_a_catch_up_longer_than_its_interval() {
    let nats = Nats::start().await;
    // Deep history in small pages: one poll walks it day by day at 2 requests a second,
    // which takes several watchdog intervals.
    let g = gitea_with(SimOptions {
        max_response_items: 2,
        ..Default::default()
    })
    .await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let (days, per_day) = (6i64, 4i64);
    let now = g.now();
    for d in 0..days {
        for i in 0..per_day {
            let at = now - chrono::Duration::days(days - d) + chrono::Duration::minutes(i);
            g.push_action(NewAction::push("alice", "acme/widgets", "main", 1).at(at));
        }
    }
    let total = (days * per_day) as u64;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[gitea]\nurl = \"{}\"\nrequests_per_second = 2\nburst = 1\n[nats]\nurl = \"{}\"\n\
             [poll]\ninterval = \"200ms\"\nstart = \"beginning\"\nlive_pages = 1\n\
             [[source]]\nrepo = \"acme/widgets\"\n",
            g.url(),
            nats.url()
        ),
    )
    .unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
    let watchdog = Duration::from_secs(1);
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", watchdog.as_micros().to_string())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Reaper(Some(child));
    let mut buf = [0u8; 512];
    let mut ready_at = None;
    let mut pings_while_catching_up = 0;
    loop {
        // systemd would restart the service after a whole interval without a ping.
        let n = tokio::time::timeout(watchdog, sock.recv(&mut buf))
            .await
            .expect("a notification within every watchdog interval")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.contains("READY=1") && ready_at.is_none() {
            ready_at = Some(std::time::Instant::now());
        }
        if stream_count(&nats.url(), "GITEA_EVENTS").await >= total {
            break;
        }
        if ready_at.is_some() && text.contains("WATCHDOG=1") {
            pings_while_catching_up += 1;
        }
    }
    let took = ready_at.expect("READY=1 sent").elapsed();
    assert!(
        took > watchdog * 2,
        "the catch-up took {took:?}, not longer than the watchdog interval"
    );
    assert!(
        pings_while_catching_up >= 3,
        "{pings_while_catching_up} pings during the catch-up"
    );
    stop_child(child.take()).await;
}

#[tokio::test]
async fn shutdown_abandons_a_slow_enrichment_fetch_at_once_and_the_next_run_publishes_the_batch_enriched()
 {
    use gitea_sim::{Fault, FaultKind};
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let index = g.create_issue("acme/widgets", "alice", "Crash on start", false);
    g.push_action(NewAction::comment("bob", "acme/widgets", index, "me too"));
    // The first issue fetch is answered at once (cut short, so it is retried); every retry
    // hangs far beyond the request timeout.
    g.inject(Fault::new(FaultKind::Truncated).on_path("/issues/"));
    g.inject(
        Fault::new(FaultKind::Delay(Duration::from_secs(60)))
            .times(100)
            .on_path("/issues/"),
    );
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"\nenrich = true",
    );
    let running = run(cfg);
    wait_for(20, "the first issue fetch answered", || async {
        g.requests().iter().any(|r| r.path.contains("/issues/"))
    })
    .await;
    let asked = std::time::Instant::now();
    running.stop().await;
    // Well before the drain limit (8 s) after which polls are abandoned unfinished.
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "stopped after {:?}",
        asked.elapsed()
    );
    let msgs = read_stream(&nats.url(), "GITEA_EVENTS").await;
    assert!(
        !msgs
            .iter()
            .any(|m| m.body["type"] == "io.gitea.activity.comment_issue"),
        "a batch whose enrichment was cut short by the stop is not published (its ids would \
         make the enriched copy of the next run a duplicate): the cursor stays before it"
    );
    // The next run publishes it, enriched, once.
    g.clear_faults();
    let again = run(config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"\nenrich = true",
    ));
    wait_for(20, "the comment published by the next run", || async {
        read_stream(&nats.url(), "GITEA_EVENTS")
            .await
            .iter()
            .any(|m| m.body["type"] == "io.gitea.activity.comment_issue")
    })
    .await;
    again.stop().await;
    let msgs = read_stream(&nats.url(), "GITEA_EVENTS").await;
    assert_no_repeats(&msgs);
    let comment: Vec<_> = msgs
        .iter()
        .filter(|m| m.body["type"] == "io.gitea.activity.comment_issue")
        .collect();
    assert_eq!(comment.len(), 1, "once");
    assert_eq!(
        comment[0].body["data"]["issue"]["title"], "Crash on start",
        "enriched: the issue is attached"
    );
}

#[tokio::test]
async fn run_stops_within_10s_while_nats_is_down() {
    let mut nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    let cfg = config(
        &g.url(),
        &nats.url(),
        "start = \"beginning\"",
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let running = run(cfg);
    wait_stream(&nats.url(), "GITEA_EVENTS", 1, "the push published").await;
    nats.server.stop().await;
    // Running::stop asserts a clean exit within 10 s.
    running.stop().await;
}
