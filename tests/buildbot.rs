//! Buildbot's Gitea handler (PyPI `buildbot-gitea`, `buildbot_gitea.webhook.GiteaHandler`)
//! takes every push and pull request body the sourcer makes: each is written to a file and
//! fed to the handler's `getChanges` by `tests/buildbot/check.py` with the venv
//! `scripts/ensure-buildbot` installs (no NATS: the bodies are `webhook::from_row` /
//! `from_change`'s, as `tests/webhooks_golden.rs` builds them).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use support::bodies::{World, every_hook};

fn python() -> PathBuf {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/buildbot-venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/ensure-buildbot (scripts/test does)",
        py.display()
    );
    py
}

fn check(py: &Path, args: &[PathBuf]) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/buildbot/check.py");
    Command::new(py)
        .arg(script)
        .args(args)
        .output()
        .expect("run tests/buildbot/check.py")
}

#[test]
fn buildbot_s_gitea_handler_takes_every_push_and_pull_request_body() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut no_head = Vec::new();
    let mut fed = Vec::new();
    for (i, m) in every_hook(&World::new()).into_iter().enumerate() {
        let event = m.hook.event();
        if !matches!(event, "push" | "pull_request") {
            continue;
        }
        let name: String = format!("{i:03}-{}-{}", m.hook.event_type, m.label)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.path().join(format!("{name}.json"));
        let file = json!({ "event": event, "event_type": m.hook.event_type, "body": m.hook.body });
        std::fs::write(&path, file.to_string()).unwrap();
        let b = &m.hook.body;
        let tag = b["ref"]
            .as_str()
            .is_some_and(|r| r.starts_with("refs/tags/"));
        let no_commits = b["commits"].as_array().is_none_or(|c| c.is_empty());
        if event == "push" && tag && no_commits && b["head_commit"].is_null() {
            no_head.push((m.label.clone(), path.clone()));
        }
        files.push(path);
        fed.push(m.label.clone());
    }
    assert!(files.len() > 20, "{} bodies", files.len());
    // The refs kind's pushes and a mirror sync's are among them.
    for label in [
        "change ref branch pushed",
        "change ref branch created",
        "change ref tag created",
        "change ref tag deleted",
        "row mirror_sync_push: refs/heads/feature",
        "row mirror_sync_push: refs/tags/v2.0.0",
    ] {
        assert!(fed.iter().any(|l| l == label), "{label} not fed: {fed:?}");
    }
    let out = check(&py, &files);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Buildbot's handler refused a body:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What it cannot take is a tag's push without commits or head commit, reported as
    // known: a deleted tag's, from the feed's row and from the refs kind's listing (as
    // Gitea's own: `head_commit: null`); a mirror sync's new tag (as Gitea's own:
    // services/mirror/mirror_pull.go `SyncPullMirror` sends `NewPushCommits()`, no head
    // commit); and a new tag's whose feed row was cut to `{}` (Gitea's has the tag's
    // commit as `head_commit`; the row names none). Nothing else.
    let known: Vec<&str> = stdout.lines().filter(|l| l.starts_with("KNOWN")).collect();
    let labels: Vec<&str> = no_head.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "row push_tag: cut to {}",
            "row delete_tag",
            "row mirror_sync_push: refs/tags/v2.0.0",
            "change ref tag deleted",
        ]
    );
    assert_eq!(known.len(), no_head.len(), "{stdout}");
    for (line, (_, path)) in known.iter().zip(&no_head) {
        assert!(line.ends_with(&*path.to_string_lossy()), "{stdout}");
    }

    // The checker fails a broken body, naming the file and the exception.
    let self_test = check(&py, &["--self-test".into()]);
    assert!(
        self_test.status.success(),
        "{}",
        String::from_utf8_lossy(&self_test.stderr)
    );
    let push = files.iter().find(|f| {
        f.to_string_lossy()
            .contains("-push-row_commit_repo__push.json")
    });
    let mut broken: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(push.unwrap()).unwrap()).unwrap();
    broken["body"]["repository"]
        .as_object_mut()
        .unwrap()
        .remove("ssh_url");
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, broken.to_string()).unwrap();
    let out = check(&py, std::slice::from_ref(&bad));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("FAIL  {}: raised KeyError", bad.display())),
        "{stdout}"
    );
}
