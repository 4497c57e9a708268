//! `gitea-nats-demo` (`scripts/demo`): the whole pipeline on one machine with no Gitea of
//! your own: a simulated Gitea generating activity (ties, org copies a second late), a
//! private nats-server, the sourcer, a tail of what arrives, and the relay delivering the
//! webhook-shaped events to a local receiver that verifies their signatures.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gitea_nats_sourcer::commands::{stop_signal, tail};
use gitea_nats_sourcer::config::{Config, LogFormat};
use gitea_nats_sourcer::telemetry::logging;
use gitea_nats_sourcer::{nats, run};
use gitea_sim::{FakeGitea, HistorySpec, NewAction, SimOptions};
use nats_harness::LocalNats;

/// Prints a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod relay_demo;
mod truth;

/// Run the sourcer end to end against a bundled simulated Gitea: no Gitea of your own.
///
/// Starts a simulated Gitea that generates activity (including the awkward parts: ties,
/// copies of each action in the org feed, late rows), a private nats-server (see
/// `scripts/ensure-nats-server`), the sourcer, and prints events as they arrive.
#[derive(Debug, Parser)]
#[command(name = "gitea-nats-demo", version)]
struct Args {
    /// How long to run.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Use this NATS server instead of starting a private one.
    #[arg(long)]
    nats_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Where the sourcer's and the relay's logs go (default: a new file in the temp dir,
    /// named on the first line); the terminal shows the events.
    #[arg(long)]
    log_file: Option<std::path::PathBuf>,
}

/// A name part for this run: the demo's stream, subjects and buckets are its own, so a
/// second run against the same NATS (`--nats-url`) reads none of the first run's events.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
        .unwrap_or(0);
    format!(
        "{:06x}",
        (nanos ^ u64::from(std::process::id()) << 20) & 0xff_ffff
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let run = run_id();
    let log_path = args
        .log_file
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("gitea-nats-demo-{run}.log")));
    let log = match std::fs::File::create(&log_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: cannot create the log file {}: {e}",
                log_path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    logging::init_with_writer(args.log_format, None, std::sync::Mutex::new(log), false);
    say!(
        "demo: run {run}; the sourcer's and the relay's logs go to {}",
        log_path.display()
    );
    match run_demo(args.duration, args.nats_url, &run, &log_path).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The warning and error lines of the log file (text or JSON lines).
fn log_levels(path: &std::path::Path) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let count = |level: &str| {
        text.lines()
            .filter(|l| {
                l.contains(&format!(" {level} ")) || l.contains(&format!("\"level\":\"{level}\""))
            })
            .count()
    };
    (count("WARN"), count("ERROR"))
}

async fn run_demo(
    duration: Duration,
    nats_url: Option<String>,
    run: &str,
    log_path: &std::path::Path,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let mut local = None;
    let nats_url = match nats_url {
        Some(u) => u,
        None => {
            let n = LocalNats::start(&dir.path().join("nats")).await?;
            let url = n.url();
            local = Some(n);
            url
        }
    };
    let gitea = FakeGitea::start(SimOptions {
        seed: 7,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("cannot start the simulated Gitea: {e}"))?;
    let history = gitea.generate_history(&HistorySpec {
        actions: 40,
        days: 2,
        orgs: 1,
        repos: 3,
        payload_bytes: 600,
        ties: true,
    });
    let activity = gitea.spawn_activity(2.0);
    let orgs = gitea.org_names();
    let repos = gitea.repo_names();
    let first = repos.first().cloned().unwrap_or_default();
    let mut story = None;
    let mut sources = String::new();
    for o in &orgs {
        sources.push_str(&format!("[[source]]\norg = \"{o}\"\n"));
    }
    // One repository also on its own: the same actions through two feeds, published once;
    // with every repository endpoint, so the changes the feed never carries show up too.
    if let Some(r) = repos.first() {
        sources.push_str(&format!(
            "[[source]]\nrepo = \"{r}\"\ninterval = \"1s\"\nkinds = [\"issues\", \"comments\", \"releases\", \"statuses\", \"actions\"]\n"
        ));
        story = Some(repository_story(&gitea, r));
    }

    let metrics_port = nats_harness::free_port().map_err(|e| format!("no free port: {e}"))?;
    let stream = format!("GITEA_DEMO_{}", run.to_uppercase());
    let prefix = format!("gitea_demo_{run}");
    let bucket = format!("gitea_demo_{run}_cursors");
    let text = format!(
        "[gitea]\nurl = \"{}\"\nrequests_per_second = 20\nburst = 10\n\
         [nats]\nurl = \"{nats_url}\"\nstream = \"{stream}\"\nsubject_prefix = \"{prefix}\"\ncursor_bucket = \"{bucket}\"\n\
         [poll]\ninterval = \"2s\"\nstart = \"beginning\"\nwebhooks = true\n\
         [http]\nlisten = \"127.0.0.1:{metrics_port}\"\n{sources}",
        gitea.url()
    );
    let cfg = Config::parse(&text).map_err(|e| e.to_string())?;
    say!(
        "demo: simulated Gitea at {} with {history} past actions in {} repositories, 2 new actions a second",
        gitea.url(),
        repos.len()
    );
    say!(
        "demo: NATS at {nats_url}{}",
        if local.is_some() {
            " (private nats-server, temp store)"
        } else {
            ""
        }
    );
    say!("demo: config:\n{}", indent(&text));
    say!("demo: events as they arrive on stream {stream} (subject {prefix}.>):");
    let client = nats::connect(&cfg.nats, &gitea_nats_sourcer::telemetry::Telemetry::new())
        .await
        .map_err(|e| e.to_string())?;
    nats::ensure_stream(&nats::jetstream(client.clone()), &cfg.nats)
        .await
        .map_err(|e| e.to_string())?;

    let nats_cfg = cfg.nats.clone();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let hooks_seen = seen.clone();
    let (stop_tail, tail_stopped) = tokio::sync::oneshot::channel::<()>();
    let tail = tokio::spawn(async move {
        let mut first = true;
        let mut n = 0usize;
        let stop = async {
            let _ = tail_stopped.await;
        };
        let r = tail::follow_until(&nats_cfg, None, true, None, |m| {
            n += 1;
            match m.hook_type() {
                None if first => {
                    first = false;
                    say!("first event, whole:\n{}", indent(&pretty(m.payload)));
                }
                Some(ty) => {
                    // The first webhook-shaped event of each kind, whole but for the
                    // repository and user objects every one of them carries.
                    let body = serde_json::from_slice::<serde_json::Value>(m.payload)
                        .unwrap_or_default();
                    let kind = format!("{ty} {}", hook_action(&body));
                    if hooks_seen.lock().unwrap_or_else(|e| e.into_inner()).insert(kind.clone()) {
                        say!(
                            "first hook event {kind}, headers and body (repository and users abridged):\n{}",
                            indent(&hook_whole(m, &body))
                        );
                    }
                }
                None => {}
            }
            say!("{}", tail::line(m));
        }, stop)
        .await;
        if let Err(e) = r {
            eprintln!("tail stopped: {e}");
        }
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sourcer = tokio::spawn(run::run(cfg.clone(), async {
        let _ = stop_rx.await;
    }));
    let (relay, relay_text) = relay_demo::start(
        dir.path(),
        &nats_url,
        &cfg.nats.stream,
        &cfg.nats.subject_prefix,
        run,
    )
    .await?;
    say!(
        "demo: the relay delivers the webhook-shaped events to a local receiver that verifies their signatures; relay config:\n{}",
        indent(&relay_text)
    );
    let edits_at = duration.min(Duration::from_secs(3));
    let stopped = tokio::select! {
        _ = tokio::time::sleep(edits_at) => false,
        _ = stop_signal() => true,
    };
    if !stopped {
        if let Some(st) = &story {
            repository_edits(&gitea, &first, st);
        }
        tokio::select! {
            _ = tokio::time::sleep(duration - edits_at) => {}
            _ = stop_signal() => {}
        }
    }
    activity.abort();
    let js = nats::jetstream(client.clone());
    // Until every action is in the stream (two polls' time is plenty), at most 10 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stored = truth::read_stream(&js, &cfg.nats.stream).await?;
        if truth::compare(&gitea, &stored).missing == 0 || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // What an operator's scraper would see: an excerpt of /metrics.
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    if let Ok(r) = reqwest::get(&metrics_url).await
        && let Ok(body) = r.text().await
    {
        say!("demo: curl {metrics_url} (excerpt):");
        for line in body.lines().filter(|l| {
            !l.starts_with('#')
                && (l.contains("events_published_total{") && l.contains("repo:")
                    || l.contains("gitea_requests_total") && !l.ends_with(" 0")
                    || l.contains("source_lag_seconds")
                    || l.contains("poll_duration_seconds_count")
                    || l.contains("nats_connected"))
        }) {
            say!("    {line}");
        }
    }
    // Shutdown, each part after what feeds it: the sourcer (its last cursor writes), then
    // the relay once it delivered what the stream holds, then the tail, then NATS.
    let _ = stop_tx.send(());
    match sourcer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.to_string()),
        Err(e) => return Err(format!("the sourcer task failed: {e}")),
    }
    let stored = truth::read_stream(&js, &cfg.nats.stream).await?;
    let verdict = truth::compare(&gitea, &stored);
    let delivered = || {
        relay
            .counts
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while delivered() < verdict.hooks && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (delivered, verified) = (
        delivered(),
        relay
            .counts
            .verified
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    relay.stop().await?;
    let _ = stop_tail.send(());
    let _ = tail.await;
    if local.is_none() {
        // A NATS of the user's own: leave nothing of this run behind.
        for r in [
            js.delete_stream(&cfg.nats.stream)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            js.delete_key_value(&cfg.nats.cursor_bucket)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            js.delete_key_value(&relay_demo::dead_letter_bucket(run))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        ] {
            if let Err(e) = r {
                say!("demo: cleaning up on {nats_url}: {e}");
            }
        }
        say!(
            "demo: deleted this run's stream {} and buckets {}, {} from {nats_url}",
            cfg.nats.stream,
            cfg.nats.cursor_bucket,
            relay_demo::dead_letter_bucket(run)
        );
    }
    // Closed before the server stops: a client still connected then would log a
    // disconnection warning.
    tail::close(&client).await;
    drop(js);
    drop(local);
    let kinds = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    say!(
        "demo: webhook-shaped events of {} kinds ({}.*.*.hook.>): {}",
        kinds.len(),
        cfg.nats.subject_prefix,
        kinds.into_iter().collect::<Vec<_>>().join(", ")
    );
    say!(
        "demo: the generated history's issues, pull requests and comments exist only as feed \
         rows (the simulator keeps no objects for them), so their webhook events are skipped \
         with a warning naming the 404 (in the log); {first}'s story has real objects"
    );
    say!(
        "demo: the relay delivered {delivered} of the {} webhook-shaped events to the local receiver; {verified} signatures verified (X-Gitea-Signature, X-Hub-Signature-256, X-Hub-Signature)",
        verdict.hooks
    );
    let (warnings, errors) = log_levels(log_path);
    say!(
        "demo: log {}: {warnings} warnings, {errors} errors",
        log_path.display()
    );
    say!("{}", verdict.sentence());
    match verdict.missing + verdict.extra {
        0 => Ok(()),
        n => Err(format!(
            "the stream does not hold every action once ({n} missing or extra)"
        )),
    }
}

/// A hook body's `action`, else its `ref_type` (create, delete), else nothing.
fn hook_action(body: &serde_json::Value) -> String {
    let action = body["action"]
        .as_str()
        .or(body["ref_type"].as_str())
        .unwrap_or("");
    if action == "closed" && body["pull_request"]["merged"].as_bool() == Some(true) {
        // A merge is `closed` with `merged: true`: shown as a kind of its own.
        return "closed (merged)".to_string();
    }
    action.to_string()
}

/// A hook event's headers and body, the repository and user objects shortened.
fn hook_whole(m: &tail::Delivered<'_>, body: &serde_json::Value) -> String {
    use serde_json::{Value, json};
    fn abridge(v: &mut Value) {
        if let Value::Object(map) = v {
            for (k, x) in map.iter_mut() {
                match k.as_str() {
                    "repository" | "repo" if x.is_object() => {
                        *x = json!({ "full_name": x["full_name"], "…": "…" })
                    }
                    "sender" | "pusher" | "user" | "poster" | "merged_by" | "author"
                    | "creator" | "organization" | "owner"
                        if x.get("login").is_some() =>
                    {
                        *x = json!({ "login": x["login"], "…": "…" })
                    }
                    _ => abridge(x),
                }
            }
        }
    }
    let mut body = body.clone();
    abridge(&mut body);
    let mut out = String::new();
    for (k, v) in m.headers.into_iter().flat_map(|h| h.iter()) {
        if let Some(v) = v.first() {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    out.push_str(&serde_json::to_string_pretty(&body).unwrap_or_default());
    out
}

/// Changes only the repository endpoints show: labels, assignees, a milestone, an edited
/// comment, a release edited, commit statuses, an Actions run.
fn repository_story(g: &FakeGitea, repo: &str) -> Story {
    // The repository's creation (`repository`), pushes, a new branch, a tag, a deleted
    // branch (`push`, `create`, `delete`).
    g.push_action(NewAction::new("create_repo", "alice", repo));
    let sha = "5e1f4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c";
    g.set_branch_head(repo, "main", sha);
    g.push_action(NewAction::push("alice", repo, "main", 3));
    g.set_branch_head(
        repo,
        "empty-config",
        "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
    );
    g.push_action(NewAction::push("alice", repo, "empty-config", 0));
    g.push_action(NewAction::push("alice", repo, "empty-config", 1));
    g.push_action(NewAction::new("push_tag", "alice", repo).ref_name("refs/tags/v1.6.0-rc1"));
    g.push_action(NewAction::new("delete_branch", "bob", repo).ref_name("refs/heads/old-work"));
    g.push_action(NewAction::new("delete_tag", "bob", repo).ref_name("refs/tags/v1.5.0-rc1"));
    let issue = g.create_issue(repo, "alice", "Crash when the config is empty", false);
    g.label_issue(repo, issue, "bob", "bug", true);
    g.assign_issue(repo, issue, "bob", "alice", true);
    g.set_milestone(repo, issue, "bob", Some("v1.6"));
    let comment = g.comment_on(repo, issue, "bob", "Reproduced on main.");
    let pr = g.create_issue(repo, "alice", "Handle an empty config", true);
    g.set_pull_head(repo, pr, "empty-config");
    g.label_issue(repo, pr, "bob", "bug", true);
    g.assign_issue(repo, pr, "alice", "alice", true);
    g.set_milestone(repo, pr, "alice", Some("v1.6"));
    g.request_review(repo, pr, "alice", "bob");
    g.comment_on(repo, pr, "bob", "One nit inline.");
    g.push_action(
        NewAction::new("approve_pull_request", "bob", repo).content(&format!("{pr}|LGTM")),
    );
    g.close_issue_as(repo, issue, "alice");
    // A second attempt, rejected and closed.
    let other = g.create_issue(repo, "bob", "Ignore empty configs", true);
    g.push_action(
        NewAction::new("reject_pull_request", "alice", repo)
            .content(&format!("{other}|Rather fail loudly")),
    );
    g.close_issue_as(repo, other, "bob");
    g.add_status(repo, sha, "ci/build", "pending");
    g.add_status(repo, sha, "ci/build", "success");
    let run = g.add_run(repo, "ci.yml", sha, "queued");
    g.update_run(repo, run, "completed", Some("success"));
    let release = g.add_release(repo, "alice", "v1.6.0", "v1.6.0");
    Story {
        issue,
        pr,
        comment,
        release,
    }
}

/// What the story made, for the edits that follow.
struct Story {
    issue: i64,
    pr: i64,
    comment: i64,
    release: i64,
}

/// A few seconds later (Gitea's times have one-second resolution, and an edit is told from
/// the creation by a later `updated_at`): edits, a label removed, a release edited.
fn repository_edits(g: &FakeGitea, repo: &str, st: &Story) {
    g.label_issue(repo, st.issue, "alice", "needs-info", true);
    g.label_issue(repo, st.issue, "alice", "needs-info", false);
    g.edit_comment(repo, st.comment, "Reproduced on main and on v1.5.");
    g.edit_issue(
        repo,
        st.issue,
        "alice",
        None,
        Some("Steps: start with an empty config file."),
    );
    g.edit_release(repo, st.release, "v1.6.0: empty configs");
    // A push to the pull request's head (`pull_request_sync`), then its merge; the issue
    // reopened.
    g.push_action(NewAction::push("alice", repo, "empty-config", 1));
    g.merge_pull(repo, st.pr, "alice");
    g.reopen_issue_as(repo, st.issue, "bob");
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn pretty(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| String::from_utf8_lossy(payload).into_owned())
}
