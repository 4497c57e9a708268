//! The binary driven from outside, as users and systemd do.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gitea_sim::{NewAction, SimOptions};
use support::*;

const TOKEN: &str = "tok-7f3a9c-DISTINCTIVE-SECRET";

fn write_config(
    dir: &std::path::Path,
    gitea: &str,
    nats: &str,
    sources: &str,
) -> std::path::PathBuf {
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[gitea]\nurl = \"{gitea}\"\ntoken_file = \"{}\"\nrequests_per_second = 100\nburst = 20\n\
             [nats]\nurl = \"{nats}\"\n[poll]\ninterval = \"200ms\"\nstart = \"beginning\"\n{sources}\n",
            token.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn an_unknown_config_key_exits_2_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[gitea]\nurl = \"http://x\"\nrequest_per_second = 3\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config"])
        .arg(&path)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("request_per_second"), "{err}");
}

#[tokio::test]
async fn check_passes_on_a_good_config_and_names_the_url_and_status_of_a_bad_source() {
    let nats = Nats::start().await;
    let g = gitea_with(SimOptions {
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(
        dir.path(),
        &g.url(),
        &nats.url(),
        "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"",
    );
    let (code, text, _) = sourcer(&good, &["check"]).await;
    assert_eq!(code, Some(0), "{text}");
    for want in [
        "ok   gitea:",
        "belongs to",
        "ok   source org:acme",
        "ok   nats",
        "ok   stream GITEA_EVENTS",
        "ok   bucket gitea_cursors",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let bad = write_config(
        dir.path(),
        &g.url(),
        &nats.url(),
        "[[source]]\nrepo = \"acme/nope\"",
    );
    let (code, text, stderr) = sourcer(&bad, &["check"]).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL source repo:acme/nope")
            && text.contains("/api/v1/repos/acme/nope")
            && text.contains("404"),
        "{text}"
    );
    assert!(!text.contains(TOKEN) && !stderr.contains(TOKEN));
}

#[tokio::test]
async fn check_says_the_feeds_send_no_link_and_warns_a_non_admin_token_of_the_rows_it_cannot_see() {
    let nats = Nats::start().await;
    let dir = tempfile::tempdir().unwrap();
    for admin in [false, true] {
        let g = gitea_with(SimOptions {
            token: Some(TOKEN.into()),
            admin,
            ..Default::default()
        })
        .await;
        g.add_org("acme");
        g.add_repo("acme", "widgets");
        g.push_action(gitea_sim::NewAction::push(
            "alice",
            "acme/widgets",
            "main",
            1,
        ));
        let cfg = write_config(
            dir.path(),
            &g.url(),
            &nats.url(),
            "[[source]]\norg = \"acme\"",
        );
        let (code, text, _) = sourcer(&cfg, &["check"]).await;
        assert_eq!(code, Some(0), "{text}");
        assert!(
            text.contains("ok   feed org:acme: 1 rows (X-Total-Count), no Link header"),
            "{text}"
        );
        let warned =
            text.contains("warn gitea token: not an admin's") && text.contains("Gitea Actions bot");
        assert_eq!(warned, !admin, "admin {admin}:\n{text}");
        assert_eq!(
            text.contains(", a site admin: every feed row is visible"),
            admin,
            "{text}"
        );
        // An admin's token is the whole instance: said as a warning.
        assert_eq!(
            text.contains("warn gitea token: a site admin's token reads every repository"),
            admin,
            "{text}"
        );
        g.shutdown().await;
    }
}

#[tokio::test]
async fn run_exits_0_within_10s_of_sigterm_and_never_logs_the_token() {
    let nats = Nats::start().await;
    let g = gitea_with(SimOptions {
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    for _ in 0..20 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", 2));
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &g.url(),
        &nats.url(),
        "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/gone\"",
    );
    // The logs go to a file, read while the binary runs: the refused source's line is
    // awaited, not the simulator's 404 (the first of which is the read at start, before
    // any poll has reported anything).
    let log_path = dir.path().join("stderr.log");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    wait_stream(
        &nats.url(),
        "GITEA_EVENTS",
        20,
        "events published by the binary",
    )
    .await;
    wait_for(
        30,
        "the refused source is reported with its URL",
        || async {
            std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains("source refused") && l.contains("acme/gone"))
        },
    )
    .await;
    // ps must not show the token either: it is read from a file, never an argument.
    let cmdline =
        std::fs::read_to_string(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
    assert!(!cmdline.contains(TOKEN));
    let started = Instant::now();
    // SAFETY-free: plain kill(2) through the shell's kill command.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(0));
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("published"), "{logs}");
    assert!(!logs.contains(TOKEN), "token leaked into logs");
}

#[tokio::test]
async fn cursors_list_shows_progress_and_reset_deletes_it() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = write_config(
        dir.path(),
        &g.url(),
        &nats.url(),
        "[[source]]\nrepo = \"acme/widgets\"\n[[source]]\nuser = \"bob\"",
    );
    let cfg = gitea_nats_sourcer::config::Config::load(&cfg_path).unwrap();
    let r = run(cfg);
    wait_stream(&nats.url(), "GITEA_EVENTS", 1, "published").await;
    r.stop().await;
    let (code, text, _) = sourcer(&cfg_path, &["cursors", "list"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("repo:acme/widgets") && text.contains("complete"),
        "{text}"
    );
    let (code, _, _) = sourcer(&cfg_path, &["cursors", "reset", "repo:acme/widgets"]).await;
    assert_eq!(code, Some(0));
    let (_, text, _) = sourcer(&cfg_path, &["cursors", "list"]).await;
    assert!(
        text.contains("repo:acme/widgets") && text.contains("no cursor"),
        "{text}"
    );
    let (code, _, _) = sourcer(&cfg_path, &["cursors", "reset", "team:x"]).await;
    assert_eq!(code, Some(2));
}

#[tokio::test]
async fn cursors_pause_and_resume_stop_and_start_a_source_of_a_running_sourcer() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "gadgets");
    g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = write_config(
        dir.path(),
        &g.url(),
        &nats.url(),
        "[[source]]\nrepo = \"acme/widgets\"\n[[source]]\nrepo = \"acme/gadgets\"",
    );
    let cfg = gitea_nats_sourcer::config::Config::load(&cfg_path).unwrap();
    let r = run(cfg);
    let url = nats.url();
    wait_stream(&url, "GITEA_EVENTS", 1, "published").await;
    let (code, text, err) = sourcer(&cfg_path, &["cursors", "pause", "repo:acme/widgets"]).await;
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(text.starts_with("paused repo:acme/widgets"), "{text}");
    let (_, text, _) = sourcer(&cfg_path, &["cursors", "pause", "repo:acme/widgets"]).await;
    assert!(text.contains("was paused already"), "{text}");
    let (_, text, _) = sourcer(&cfg_path, &["cursors", "list"]).await;
    let line = text
        .lines()
        .find(|l| l.starts_with("repo:acme/widgets"))
        .unwrap_or_else(|| panic!("a line for widgets in {text}"));
    assert!(
        line.contains("PAUSED since 20") && line.contains("by cursors pause on "),
        "{line}"
    );
    // The running sourcer saw the mark: widgets' new action waits while gadgets' comes.
    g.push_action(NewAction::push("bob", "acme/widgets", "main", 1));
    g.push_action(NewAction::push("bob", "acme/gadgets", "main", 1));
    wait_for(20, "gadgets' action", || async {
        events_of(&url, "acme/gadgets").await == 1
    })
    .await;
    g.push_action(NewAction::push("carol", "acme/gadgets", "main", 1));
    wait_for(
        20,
        "gadgets' second action (another poll of both)",
        || async { events_of(&url, "acme/gadgets").await == 2 },
    )
    .await;
    assert_eq!(
        events_of(&url, "acme/widgets").await,
        1,
        "paused, yet published"
    );
    let (code, text, _) = sourcer(&cfg_path, &["cursors", "resume", "repo:acme/widgets"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("resumed repo:acme/widgets"), "{text}");
    wait_for(20, "widgets' action after the resume", || async {
        events_of(&url, "acme/widgets").await == 2
    })
    .await;
    let (_, text, _) = sourcer(&cfg_path, &["cursors", "resume", "repo:acme/widgets"]).await;
    assert!(text.contains("was not paused"), "{text}");
    r.stop().await;
}

#[tokio::test]
async fn a_cursor_older_than_the_oldest_row_is_reported_as_lost_history_in_check_and_cursors_list()
{
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    for i in 0..5 {
        g.push_action(
            NewAction::push("alice", "acme/widgets", "main", 1)
                .at(g.now() - chrono::Duration::seconds(5000 - i)),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = write_config(
        dir.path(),
        &g.url(),
        &nats.url(),
        "[[source]]\nrepo = \"acme/widgets\"",
    );
    let cfg = gitea_nats_sourcer::config::Config::load(&cfg_path).unwrap();
    let r = run(cfg.clone());
    wait_stream(&nats.url(), "GITEA_EVENTS", 5, "history published").await;
    r.stop().await;
    // The delete_old_actions cron runs while the sourcer is down, then life goes on.
    g.delete_older_than(g.now() - chrono::Duration::seconds(100));
    for _ in 0..2 {
        g.push_action(NewAction::push("bob", "acme/widgets", "main", 1));
    }
    let r = run(cfg);
    wait_stream(&nats.url(), "GITEA_EVENTS", 7, "new actions published").await;
    r.stop().await;
    let (code, text, _) = sourcer(&cfg_path, &["check"]).await;
    assert_eq!(
        code,
        Some(0),
        "lost history warns, it does not fail check: {text}"
    );
    assert!(
        text.contains("warn history repo:acme/widgets: lost between"),
        "{text}"
    );
    let (code, text, _) = sourcer(&cfg_path, &["cursors", "list"]).await;
    assert_eq!(code, Some(0));
    assert!(text.contains("GAP: lost"), "{text}");
}

#[tokio::test]
async fn backfill_twice_over_the_same_range_publishes_nothing_the_second_time_even_after_the_duplicate_window()
 {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    g.add_repo("acme", "gears");
    let day = 86400;
    for i in 0..30i64 {
        let at = g.now() - chrono::Duration::seconds(5 * day - i * 3 * 3600);
        g.push_action(
            NewAction::push("alice", "acme/widgets", "main", 1)
                .at(at)
                .copy_delay(i % 2),
        );
        g.push_action(
            NewAction::close_issue("bob", "acme/gears", i)
                .at(at)
                .copy_delay(1),
        );
    }
    let expected = g.action_count() as u64;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = write_config(
        dir.path(),
        &g.url(),
        &nats.url(),
        "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"",
    );
    // A one-second duplicate window: JetStream alone would accept the second run's events.
    let text = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace("[nats]\n", "[nats]\nduplicate_window = \"1s\"\n");
    std::fs::write(&cfg_path, text).unwrap();
    let since = (g.now() - chrono::Duration::days(7))
        .date_naive()
        .to_string();
    let until = (g.now() - chrono::Duration::days(1))
        .date_naive()
        .to_string();
    let backfill = || {
        tokio::process::Command::new(BIN)
            .arg("--config")
            .arg(&cfg_path)
            .args(["backfill", "--since", &since, "--until", &until])
            .output()
    };
    let out = backfill().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{expected} events published")),
        "{text}"
    );
    assert_eq!(stream_count(&nats.url(), "GITEA_EVENTS").await, expected);
    // Wait until the duplicate window has provably passed: the same probe id is accepted twice.
    let js = async_nats::jetstream::new(nats.client().await);
    let probe = || async {
        js.send_publish(
            "gitea.probe.probe.probe",
            async_nats::jetstream::message::PublishMessage::build()
                .payload("p".into())
                .message_id("probe"),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .duplicate
    };
    assert!(!probe().await);
    wait_for(10, "the duplicate window to pass", || async {
        !probe().await
    })
    .await;
    let before = stream_count(&nats.url(), "GITEA_EVENTS").await;
    let out = backfill().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(" 0 events published"), "{text}");
    assert_eq!(
        stream_count(&nats.url(), "GITEA_EVENTS").await,
        before,
        "nothing new in the stream"
    );
}

/// Runs the binary with `args` on a config holding `text`; kills it after 15 s (a command
/// that should have refused the config at once and runs instead fails the test, not hangs it).
async fn refused(text: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        text.replace("DIR", &dir.path().display().to_string()),
    )
    .unwrap();
    let child = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`{}` did not exit within 15 s on:\n{text}", args.join(" ")))
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Nothing listens on port 9 (discard): anything that tries Gitea or NATS fails fast.
const NOWHERE: &str =
    "[gitea]\nurl = \"http://127.0.0.1:9\"\n[nats]\nurl = \"nats://127.0.0.1:9\"\n";

/// The `error:` lines of stderr.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("error")).collect()
}

#[tokio::test]
async fn run_refuses_a_nats_url_that_is_not_a_url_with_exit_2_naming_the_key() {
    let text = "[gitea]\nurl = \"http://127.0.0.1:9\"\n[nats]\nurl = \"not a url\"\n\
                [[source]]\norg = \"acme\"\n";
    let (code, _, stderr) = refused(text, &["run"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("nats.url") && errors[0].contains("not a url"),
        "{stderr}"
    );
}

#[tokio::test]
async fn run_refuses_a_missing_secret_file_once_with_exit_2_naming_the_key_and_path() {
    let missing_token = format!("{NOWHERE}[[source]]\norg = \"acme\"\n")
        .replace("[nats]", "token_file = \"DIR/no-such-token\"\n[nats]");
    let (code, _, stderr) = refused(&missing_token, &["run"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "printed once: {stderr}");
    assert!(
        errors[0].contains("gitea.token_file") && errors[0].contains("no-such-token"),
        "{stderr}"
    );
    // A readable token, a missing NATS password file: the same, and the token never shows.
    let missing_password = format!(
        "{NOWHERE}user = \"sourcer\"\npassword_file = \"DIR/no-such-password\"\n[[source]]\norg = \"acme\"\n"
    )
    .replace("[nats]", "token = \"tok-inline-DISTINCTIVE\"\n[nats]");
    let (code, stdout, stderr) = refused(&missing_password, &["run"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "printed once: {stderr}");
    assert!(
        errors[0].contains("nats.password_file") && errors[0].contains("no-such-password"),
        "{stderr}"
    );
    assert!(!(stdout + &stderr).contains("tok-inline-DISTINCTIVE"));
}

#[tokio::test]
async fn run_and_check_refuse_a_config_without_sources_with_exit_2() {
    let (code, _, stderr) = refused(NOWHERE, &["run"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("`source`") && errors[0].contains("[[source]]"),
        "{stderr}"
    );
    let (code, stdout, _) = refused(NOWHERE, &["check"]).await;
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stdout.contains("FAIL config") && stdout.contains("[[source]]"),
        "{stdout}"
    );
    let (code, _, stderr) = refused(NOWHERE, &["backfill", "--since", "2026-01-01"]).await;
    assert_eq!(code, Some(2), "{stderr}");
}

#[tokio::test]
async fn a_zero_lookback_is_refused_with_exit_2_and_a_short_one_is_warned_about() {
    let zero = format!("{NOWHERE}[poll]\nlookback = \"0s\"\n[[source]]\norg = \"acme\"\n");
    let (code, _, stderr) = refused(&zero, &["run"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("poll.lookback"), "{stderr}");
    // Legal but risky: `check` runs (and fails to reach anything), warning at start.
    let short = zero.replace("\"0s\"", "\"20s\"");
    let (code, _, stderr) = refused(&short, &["check"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("poll.lookback")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_bad_source_spec_is_a_usage_error_of_the_argument_parser_exit_2_naming_the_value() {
    let text = format!("{NOWHERE}[[source]]\norg = \"acme\"\n");
    let (code, stdout, stderr) = refused(
        &text,
        &["backfill", "--since", "2026-01-01", "--source", "team:x"],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("invalid value 'team:x' for '--source <SOURCES>'")
            && stderr.contains("is not a source: write repo:OWNER/NAME, org:NAME or user:NAME"),
        "{stderr}"
    );
    // A good spec beside a bad one: still refused, naming the bad one.
    let (code, _, stderr) = refused(
        &text,
        &[
            "backfill",
            "--since",
            "2026-01-01",
            "--source",
            "org:acme",
            "--source",
            "repo:alice",
        ],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value 'repo:alice'")
            && stderr.contains("must be written OWNER/NAME"),
        "{stderr}"
    );
    for bad in ["org:a.>", "user:", "repo:alice/dot.files."] {
        let (code, stdout, stderr) = refused(&text, &["cursors", "reset", bad]).await;
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        assert!(stdout.is_empty(), "{bad}: {stdout}");
        assert!(
            stderr.contains(&format!("invalid value '{bad}' for '<SPEC>'"))
                && stderr.contains("is not a Gitea name"),
            "{bad}: {stderr}"
        );
    }
}

/// The stream against the fake's truth, by logical identity: (missing, repeated, unexpected).
async fn against_truth(nats_url: &str, g: &gitea_sim::FakeGitea) -> (usize, usize, usize) {
    let want = truth_once_per_second(g);
    let mut got: std::collections::HashMap<String, usize> = Default::default();
    for m in read_stream(nats_url, "GITEA_EVENTS").await {
        *got.entry(msg_identity(&m)).or_default() += 1;
    }
    let missing = want.keys().filter(|k| !got.contains_key(*k)).count();
    let repeated = got
        .iter()
        .map(|(k, n)| n.saturating_sub(want.get(k).copied().unwrap_or(0).max(1)))
        .sum();
    let unexpected = got.keys().filter(|k| !want.contains_key(*k)).count();
    (missing, repeated, unexpected)
}

/// Noon (server time) of the day `days` before the fake's today.
fn noon(g: &gitea_sim::FakeGitea, days: i64) -> chrono::DateTime<chrono::FixedOffset> {
    use chrono::Timelike;
    let d = g.now() - chrono::Duration::days(days);
    d - chrono::Duration::seconds(i64::from(d.num_seconds_from_midnight()))
        + chrono::Duration::hours(12)
}

#[tokio::test]
async fn backfill_after_start_now_publishes_the_rows_before_the_install_that_run_did_not() {
    const REPO: &str = "acme/widgets";
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    // 20 actions in the four minutes before the install, the newest second a tie of two.
    let now = g.now();
    for i in 0..20i64 {
        g.push_action(
            NewAction::comment("alice", REPO, 1, &format!("before {i}"))
                .at(now - chrono::Duration::seconds(240 - i * 12)),
        );
    }
    g.push_action(
        NewAction::comment("bob", REPO, 1, "the newest second's tie")
            .at(now - chrono::Duration::seconds(12)),
    );
    let live = run(config(
        &g.url(),
        &nats.url(),
        "start = \"now\"",
        &format!("[[source]]\nrepo = \"{REPO}\""),
    ));
    let url = nats.url();
    wait_for(20, "the cursor created", || {
        let url = url.clone();
        async move { cursor_of(&url, &format!("repo:{REPO}")).await.is_some() }
    })
    .await;
    g.push_action(NewAction::comment("alice", REPO, 1, "after the install"));
    wait_stream(
        &nats.url(),
        "GITEA_EVENTS",
        1,
        "the action after the install",
    )
    .await;
    live.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &g.url(),
        &nats.url(),
        &format!("[[source]]\nrepo = \"{REPO}\""),
    );
    let since = (now - chrono::Duration::days(1)).date_naive().to_string();
    let until = now.date_naive().to_string();
    let (code, out, err) = sourcer(&cfg, &["backfill", "--since", &since, "--until", &until]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert_no_repeats(&read_stream(&nats.url(), "GITEA_EVENTS").await);
    assert_eq!(
        against_truth(&nats.url(), &g).await,
        (0, 0, 0),
        "(missing, repeated, unexpected) after start = \"now\" and a backfill of the days before:\n{out}"
    );
}

#[tokio::test]
async fn an_org_backfill_follows_which_source_publishes_each_repository() {
    let nats = Nats::start().await;
    let g = gitea().await;
    g.add_org("acme");
    for r in ["widgets", "gears", "bolts"] {
        g.add_repo("acme", r);
    }
    // Two days ago and yesterday: widgets (its `repo:` source publishes it live from the
    // beginning), gears (the org's: live from yesterday, the day before by backfill) and
    // bolts (its `repo:` source starts now: both days are backfill's).
    for days in [2, 1] {
        for i in 0..4i64 {
            let at = noon(&g, days) + chrono::Duration::minutes(i);
            for repo in ["acme/widgets", "acme/gears", "acme/bolts"] {
                g.push_action(
                    NewAction::comment("alice", repo, 1, &format!("{repo} {days} {i}"))
                        .at(at)
                        .copy_delay(i % 2),
                );
            }
        }
    }
    let yesterday = noon(&g, 1).date_naive().to_string();
    let sources = format!(
        "[[source]]\norg = \"acme\"\nstart = \"{yesterday}\"\n\
         [[source]]\nrepo = \"acme/widgets\"\nstart = \"beginning\"\n\
         [[source]]\nrepo = \"acme/bolts\"\nstart = \"now\""
    );
    let live = run(config(&g.url(), &nats.url(), "", &sources));
    // Live: the eight rows of widgets, the four of gears yesterday.
    wait_stream(&nats.url(), "GITEA_EVENTS", 12, "the live rows").await;
    let url = nats.url();
    wait_for(20, "the three cursors", || {
        let url = url.clone();
        async move {
            let mut n = 0;
            for s in ["org:acme", "repo:acme/widgets", "repo:acme/bolts"] {
                n += usize::from(cursor_of(&url, s).await.is_some());
            }
            n == 3
        }
    })
    .await;
    live.stop().await;
    wait_past_duplicate_window(&nats.url(), "GITEA_EVENTS").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &g.url(), &nats.url(), &sources);
    let since = noon(&g, 2).date_naive().to_string();
    let until = g.now().date_naive().to_string();
    let (code, out, err) = sourcer(
        &cfg,
        &[
            "backfill", "--since", &since, "--until", &until, "--source", "org:acme",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        against_truth(&nats.url(), &g).await,
        (0, 0, 0),
        "(missing, repeated, unexpected) after `backfill --source org:acme`:\n{out}"
    );
    assert!(
        err.contains("backfill of org:acme also backfills repo:acme/bolts"),
        "{err}"
    );
}

#[tokio::test]
async fn backfill_exits_1_and_names_each_day_it_could_not_complete() {
    const REPO: &str = "acme/widgets";
    let nats = Nats::start().await;
    let g = gitea_with(SimOptions {
        max_response_items: 5,
        ..Default::default()
    })
    .await;
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    let at = noon(&g, 3);
    let victims: Vec<gitea_sim::ActionId> = (0..300i64)
        .map(|i| {
            g.push_action(
                NewAction::comment("alice", REPO, 1, &format!("old {i}"))
                    .at(at + chrono::Duration::seconds(i / 3)),
            )
        })
        .collect();
    // Every read of the day finds one more of its rows gone (the newest left): its pages
    // shift under every read and no two reads agree on its total, so it is never proven.
    let day = at.date_naive();
    let victims = std::sync::Mutex::new(victims);
    g.set_feed_hook(Some(Box::new(move |_, w| {
        let mut victims = victims.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = victims.pop() {
            w.soft_delete(v);
        }
    })));
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &g.url(),
        &nats.url(),
        &format!("[[source]]\nrepo = \"{REPO}\""),
    );
    let d = day.to_string();
    let (code, out, err) = sourcer(&cfg, &["backfill", "--since", &d, "--until", &d]).await;
    g.set_feed_hook(None);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(!out.contains("backfill done"), "{out}");
    let named = format!("repo:{REPO} {d}: second ");
    assert!(
        out.contains(&format!("incomplete: {named}")) && err.contains(&named),
        "names the source, the day and the second:\n{out}\n{err}"
    );
    assert!(
        err.contains("error: backfill could not complete 1 source-days"),
        "{err}"
    );
}

#[tokio::test]
async fn check_never_prints_the_password_of_gitea_url() {
    let nats = Nats::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The URL's credentials are sent as basic auth (the simulator, with no token of its own,
    // takes any `Authorization`).
    let g = gitea().await;
    g.add_org("acme");
    let url = g.url().replacen("://", "://alice:s3cret-in-url@", 1);
    let cfg = write_config(
        dir.path(),
        &url,
        &nats.url(),
        "[[source]]\norg = \"acme\"\n[[source]]\nall = true",
    );
    let (code, text, stderr) = sourcer(&cfg, &["check"]).await;
    assert!(
        text.contains("warn config: a source has all = true"),
        "{text}"
    );
    assert_eq!(code, Some(0), "{text}{stderr}");
    assert!(text.contains(&format!("{} answers", g.url())), "{text}");
    assert!(
        !text.contains("s3cret") && !stderr.contains("s3cret"),
        "{text}{stderr}"
    );
}
