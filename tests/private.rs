//! Private repositories stay private: the events of a repository that is not readable
//! anonymously (private, or of an org whose visibility is `limited` or `private`) go to the
//! private stream under the private prefix, every event (activity, repository change and
//! hook alike) says whose it is in `Gitea-Visibility`, a repository made private (or
//! public) moves from its next event on, and the relay delivers private repositories'
//! events only to a receiver that opted in (`private = true`). A real nats-server, the
//! simulator, real HTTP receivers; every wait is on a condition with a deadline.

#[path = "support/receiver.rs"]
mod receiver;
mod support;

use std::collections::BTreeSet;

use gitea_nats_sourcer::relay::{self, config::RelayConfig};
use gitea_nats_sourcer::telemetry::Telemetry;
use gitea_sim::{FakeGitea, Visibility};
use receiver::Receiver;
use support::hooks::{RawMsg, read_raw};
use support::*;

const PUBLIC: &str = "GITEA_EVENTS";
const PRIVATE: &str = "GITEA_PRIVATE";
const SECRET: &str = "s3cret-for-tests";

/// The repository an event is about: `ce-subject` of a hook, the CloudEvent's `subject`
/// otherwise.
fn repo_of(m: &RawMsg) -> String {
    match m.header("ce-subject") {
        "" => m.json()["subject"].as_str().unwrap_or("").to_string(),
        s => s.to_string(),
    }
}

/// A short name of what an event tells, to find it: `issue:{title}` for an issue's
/// activity, hook or change, `release:{tag}` for a release's.
fn what(m: &RawMsg) -> Option<String> {
    let b = m.json();
    let issue_title = b["issue"]["title"].as_str().or_else(|| {
        // The activity's content: `INDEX|TITLE`.
        b["data"]["activity"]["content"]
            .as_str()
            .and_then(|c| c.split_once('|'))
            .map(|(_, t)| t)
    });
    let tag = b["release"]["tag_name"]
        .as_str()
        .or(b["data"]["tag_name"].as_str())
        .or_else(|| {
            b["data"]["activity"]["ref_name"]
                .as_str()
                .map(|r| r.trim_start_matches("refs/tags/"))
        })
        .filter(|t| !t.is_empty());
    match (issue_title, tag) {
        (Some(t), _) if !t.is_empty() => Some(format!("issue:{t}")),
        (_, Some(t)) => Some(format!("release:{t}")),
        _ => None,
    }
}

/// `(repository, what)` of the messages of `stream`, each message checked against the
/// stream's visibility: its header and its subject's prefix.
async fn told(nats: &Nats, stream: &str) -> BTreeSet<(String, String)> {
    let (header, prefix) = match stream {
        PUBLIC => ("public", "gitea."),
        _ => ("private", "gitea_private."),
    };
    let mut out = BTreeSet::new();
    for m in read_raw(&nats.url(), stream).await {
        assert_eq!(
            m.header("Gitea-Visibility"),
            header,
            "{} in {stream}",
            m.subject
        );
        assert!(m.subject.starts_with(prefix), "{} in {stream}", m.subject);
        if let Some(w) = what(&m) {
            out.insert((repo_of(&m), w));
        }
    }
    out
}

fn pair(repo: &str, what: &str) -> (String, String) {
    (repo.to_string(), what.to_string())
}

/// Issues and releases in a public repository, a private one and a repository of a
/// `limited` org; then `acme/open` is made private and `acme/secret` public, and each
/// gets one more issue.
async fn world() -> FakeGitea {
    let g = gitea().await;
    g.add_org("acme");
    g.add_repo("acme", "open");
    g.add_repo("acme", "secret");
    g.set_private("acme/secret", true);
    g.add_org("hush");
    g.set_user_visibility("hush", Visibility::Limited);
    g.add_repo("hush", "tool");
    g
}

fn sourcer_config(g: &FakeGitea, nats: &Nats) -> gitea_nats_sourcer::config::Config {
    config(
        &g.url(),
        &nats.url(),
        "start = \"now\"\nwebhooks = true",
        "[[source]]\norg = \"acme\"\nrepos = true\nkinds = [\"releases\"]\n\n\
         [[source]]\norg = \"hush\"\nrepos = true\nkinds = [\"releases\"]\n",
    )
}

#[tokio::test]
async fn private_repositories_events_are_only_in_the_private_stream_and_reach_only_opted_in_receivers()
 {
    let nats = Nats::start().await;
    let g = world().await;
    let mut cfg = sourcer_config(&g, &nats);
    let port = nats_harness::free_port().expect("a free port for /metrics");
    cfg.http.listen = Some(format!("127.0.0.1:{port}").parse().expect("addr"));
    let running = run(cfg);
    wait_for(30, "the first polls of both orgs", || async {
        let r = g.requests();
        r.iter().any(|r| r.path.contains("/orgs/acme/repos"))
            && r.iter().any(|r| r.path.contains("/orgs/hush/repos"))
    })
    .await;
    // The relay: one receiver for everyone, one opted in to private repositories.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let everyone = Receiver::start(SECRET).await;
    let insiders = Receiver::start(SECRET).await;
    let refuser = Receiver::start(SECRET).await;
    let receiver = |name: &str, url: &str, extra: &str| {
        format!(
            "[[receiver]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret_file = \"{}\"\n\
             backoff_min = \"50ms\"\nbackoff_max = \"300ms\"\nstart = \"all\"\n{extra}\n",
            secret.display()
        )
    };
    let relay_text = format!(
        "[nats]\nurl = \"{}\"\n\n{}{}",
        nats.url(),
        receiver("everyone", &everyone.url(), ""),
        receiver("insiders", &insiders.url(), "private = true"),
    ) + &receiver(
        "refuser",
        &refuser.url(),
        "private = true\nrepos = [\"hush/*\"]",
    );
    let relay_path = dir.path().join("relay.toml");
    std::fs::write(&relay_path, &relay_text).unwrap();
    let (code, out, err) = sourcer(&relay_path, &["relay", "check"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    for line in [
        "ok   stream: GITEA_PRIVATE (private repositories)",
        "info receiver everyone: gets public repositories' events only",
        "info receiver insiders: gets public and private repositories' events",
    ] {
        assert!(out.contains(line), "relay check says {line:?}:\n{out}");
    }
    // After `relay check`'s HEAD: the refuser refuses its first event, a private
    // repository's (its `repos` filter), which becomes a dead letter.
    refuser.script(&[(422, None)]);
    let relay_cfg = RelayConfig::parse(&relay_text).expect("relay config");
    let receivers = relay_cfg.receivers().expect("receivers");
    let (stop_relay, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_telemetry = Telemetry::new();
    let relay_task = tokio::spawn(relay::run_with(
        relay_cfg,
        receivers,
        relay_telemetry.clone(),
        async {
            let _ = stopped.await;
        },
    ));

    let repos = ["acme/open", "acme/secret", "hush/tool"];
    let listed = |repo: &str| {
        let path = format!("/repos/{repo}/releases");
        g.requests()
            .iter()
            .filter(|r| r.path.ends_with(&path))
            .count()
    };
    let mut releases = Vec::new();
    for repo in repos {
        g.create_issue(repo, "alice", &format!("before in {repo}"), false);
        releases.push((
            repo,
            g.add_release(repo, "alice", "v1", "One"),
            listed(repo),
        ));
    }
    // An edit, which no feed row tells, only the releases kind: made once the kind has
    // listed the release (two listings after it: the first may have been under way).
    wait_for(30, "each release listed by the releases kind", || async {
        releases
            .iter()
            .all(|(repo, _, before)| listed(repo) > *before + 1)
    })
    .await;
    g.advance_clock(2);
    let edit_at = std::time::Instant::now();
    for (repo, release, _) in &releases {
        g.edit_release(repo, *release, "One, edited");
    }
    let public_before = [
        pair("acme/open", "issue:before in acme/open"),
        pair("acme/open", "release:v1"),
    ];
    let edited = |repo: &str| {
        let repo = repo.to_string();
        move |m: &RawMsg| repo_of(m) == repo && m.json()["type"] == "io.gitea.release.edited"
    };
    let private_before = [
        pair("acme/secret", "issue:before in acme/secret"),
        pair("acme/secret", "release:v1"),
        pair("hush/tool", "issue:before in hush/tool"),
        pair("hush/tool", "release:v1"),
    ];
    let ok = wait_until(60, || async {
        let (p, q) = (told(&nats, PUBLIC).await, told(&nats, PRIVATE).await);
        let (raw_p, raw_q) = (
            read_raw(&nats.url(), PUBLIC).await,
            read_raw(&nats.url(), PRIVATE).await,
        );
        public_before.iter().all(|w| p.contains(w))
            && private_before.iter().all(|w| q.contains(w))
            && raw_p.iter().any(edited("acme/open"))
            && raw_q.iter().any(edited("acme/secret"))
            && raw_q.iter().any(edited("hush/tool"))
    })
    .await;
    if !ok {
        let t0 = g.requests()[0].at;
        for r in g.requests() {
            if r.path.contains("secret") || r.path.contains("open") {
                eprintln!("{:?} {} {} {}", r.at - t0, r.path, r.query, r.status);
            }
        }
        eprintln!("edit at {:?}", edit_at - t0);
        for stream in [PUBLIC, PRIVATE] {
            for m in read_raw(&nats.url(), stream).await {
                eprintln!("{stream} {} {:?} {}", m.subject, what(&m), m.json()["type"]);
            }
        }
        panic!("timed out waiting for every first event in its stream");
    }

    // Made private, made public: from the next event on.
    g.set_private("acme/open", true);
    g.set_private("acme/secret", false);
    g.create_issue("acme/open", "alice", "after in acme/open", false);
    g.create_issue("acme/secret", "alice", "after in acme/secret", false);
    let moved_private = pair("acme/open", "issue:after in acme/open");
    let moved_public = pair("acme/secret", "issue:after in acme/secret");
    wait_for(60, "the events after the switch", || async {
        told(&nats, PRIVATE).await.contains(&moved_private)
            && told(&nats, PUBLIC).await.contains(&moved_public)
    })
    .await;

    let public = told(&nats, PUBLIC).await;
    let private = told(&nats, PRIVATE).await;
    let allowed_public: BTreeSet<_> = public_before
        .iter()
        .cloned()
        .chain([moved_public.clone()])
        .collect();
    for t in &public {
        assert!(
            allowed_public.contains(t),
            "{t:?} is in the public stream; it is a private repository's"
        );
    }
    for t in private_before.iter().chain([&moved_private]) {
        assert!(!public.contains(t), "{t:?} leaked into the public stream");
        assert!(
            private.contains(t),
            "{t:?} is missing from the private stream"
        );
    }
    // Hooks too, with the header of their stream (checked in `told`), and the
    // repository-change events of the releases kind.
    let raw_private = read_raw(&nats.url(), PRIVATE).await;
    assert!(
        raw_private.iter().any(RawMsg::is_hook),
        "webhook-shaped events of private repositories in the private stream"
    );
    assert!(
        raw_private
            .iter()
            .any(|m| !m.is_hook() && m.json()["type"] == "io.gitea.release.edited"),
        "the releases kind's changes of private repositories in the private stream"
    );

    // The relay: `everyone` only public repositories' hooks, `insiders` both.
    let delivered_repos = |r: &Receiver| -> BTreeSet<String> {
        r.delivered()
            .iter()
            .filter_map(|d| {
                d.json()["repository"]["full_name"]
                    .as_str()
                    .map(String::from)
            })
            .collect()
    };
    wait_for(
        60,
        "the insiders' deliveries of every repository",
        || async {
            let got = delivered_repos(&insiders);
            ["acme/open", "acme/secret", "hush/tool"]
                .iter()
                .all(|r| got.contains(*r))
        },
    )
    .await;
    wait_for(60, "everyone's delivery of the public issue", || async {
        everyone
            .delivered()
            .iter()
            .any(|d| d.json()["issue"]["title"].as_str() == Some("after in acme/secret"))
    })
    .await;
    for d in everyone.delivered() {
        let b = d.json();
        let title = b["issue"]["title"].as_str().unwrap_or("");
        let repo = b["repository"]["full_name"].as_str().unwrap_or("");
        let public_event = repo == "acme/open" && !title.starts_with("after")
            || repo == "acme/secret" && title.starts_with("after");
        assert!(
            public_event,
            "receiver `everyone` got a private repository's event: {repo} {title:?}"
        );
    }
    // Metrics do not name private repositories (`log.name_private_repos` is off): the
    // releases kind counts its events under `repo:OWNER/NAME`, shown for a private one as
    // `repo:private-` and a hash.
    let scraped = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    let relayed = relay_telemetry.metrics.encode();
    for (what, text) in [("the sourcer's", &scraped), ("the relay's", &relayed)] {
        for name in ["secret", "hush/tool", "hush%2Ftool"] {
            assert!(
                !text.contains(name),
                "{what} metrics name a private repository ({name}):\n{text}"
            );
        }
    }
    assert!(
        scraped.contains("source=\"repo:acme/open\"") && scraped.contains("source=\"repo:private-"),
        "the public repository named, the private ones by hash:\n{scraped}"
    );
    // The refused private event is a dead letter that does not name its repository, and
    // `relay redeliver` sends it again from the private stream.
    wait_for(30, "the refuser's dead letter", || async {
        refuser
            .got()
            .iter()
            .any(|g| g.status == 422 && g.method == "POST")
    })
    .await;
    let js = async_nats::jetstream::new(nats.client().await);
    wait_for(30, "the refuser's dead letter stored", || async {
        !letters(&js).await.is_empty()
    })
    .await;
    let letters = letters(&js).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert!(letter.private, "{letter:?}");
    assert!(
        letter.repo.starts_with("private-") && !letter.repo.contains("hush"),
        "{letter:?}"
    );
    let refused = refuser
        .got()
        .iter()
        .find(|g| g.status == 422 && g.method == "POST")
        .map(|g| g.header("X-Gitea-Delivery").to_string())
        .expect("the refused delivery");
    let (code, out, err) = sourcer(&relay_path, &["relay", "redeliver", "refuser"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        refuser
            .delivered()
            .iter()
            .any(|g| g.header("X-Gitea-Delivery") == refused),
        "redelivered from the private stream:\n{out}{err}"
    );
    // `tail` reads the public stream; `tail --private` the private one.
    let tail_cfg = dir.path().join("sourcer.toml");
    std::fs::write(
        &tail_cfg,
        format!(
            "[gitea]\nurl = \"{}\"\n\n[nats]\nurl = \"{}\"\n",
            g.url(),
            nats.url()
        ),
    )
    .unwrap();
    for (args, stream) in [
        (vec!["tail", "--all", "--json"], PUBLIC),
        (vec!["tail", "--private", "--all", "--json"], PRIVATE),
    ] {
        let n = read_raw(&nats.url(), stream).await.len().to_string();
        let mut args = args;
        args.extend(["--count", n.as_str()]);
        let (code, out, err) = sourcer(&tail_cfg, &args).await;
        assert_eq!(code, Some(0), "{args:?}: {err}");
        let secret_lines = out
            .lines()
            .filter(|l| l.contains("hush/tool") || l.contains("\"hush\""))
            .count();
        match stream {
            PUBLIC => assert_eq!(secret_lines, 0, "{args:?} printed:\n{out}"),
            _ => assert!(secret_lines > 0, "{args:?} printed:\n{out}"),
        }
    }
    let _ = stop_relay.send(());
    relay_task
        .await
        .expect("relay task")
        .expect("relay ends without error");
    running.stop().await;
}

/// The relay's dead letters (none while the bucket does not exist).
async fn letters(js: &async_nats::jetstream::Context) -> Vec<relay::dead::DeadLetter> {
    match js.get_key_value("gitea_relay_dead").await {
        Ok(store) => relay::dead::list(&store, None).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// A configured `repo:` source of a private repository is not named by `/metrics` or
/// `/readyz` from its first moment (its visibility is read before it is polled), even
/// when one of its endpoints keeps failing (a `poll_errors_total` series, a URL in the
/// log); with `log.name_private_repos = true` it is.
#[tokio::test]
async fn a_configured_private_repository_is_named_nowhere_unless_allowed() {
    for allowed in [false, true] {
        let nats = Nats::start().await;
        let g = gitea().await;
        g.add_org("acme");
        g.add_repo("acme", "vault");
        g.set_private("acme/vault", true);
        g.fail_endpoint("acme/vault", "releases", 500);
        let mut cfg = config(
            &g.url(),
            &nats.url(),
            "start = \"beginning\"",
            "[[source]]\nrepo = \"acme/vault\"\nkinds = [\"releases\"]\n",
        );
        cfg.log.name_private_repos = allowed;
        // The failing endpoint fails fast.
        cfg.gitea.max_retries = 1;
        let port = nats_harness::free_port().expect("a free port for /metrics");
        cfg.http.listen = Some(format!("127.0.0.1:{port}").parse().expect("addr"));
        g.create_issue("acme/vault", "alice", "Rotate the keys", false);
        let running = run(cfg);
        let metrics = format!("http://127.0.0.1:{port}/metrics");
        let scrape = || async {
            match reqwest::get(&metrics).await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        };
        wait_for(30, "the failing endpoint counted", || async {
            scrape().await.contains("releases_")
        })
        .await;
        wait_stream(&nats.url(), PRIVATE, 1, "the issue's event").await;
        let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .expect("GET /readyz")
            .text()
            .await
            .expect("readyz text");
        let scraped = scrape().await;
        let named = scraped.contains("vault") || ready.contains("vault");
        assert_eq!(
            named, allowed,
            "name_private_repos = {allowed}:\n{scraped}\n{ready}"
        );
        running.stop().await;
    }
}
