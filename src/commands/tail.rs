//! `tail`: print published events as they arrive: activity and repository events from their
//! CloudEvents JSON, webhook-shaped events (binary mode) from their headers and Gitea's body.

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt;

use anyhow::anyhow;

use crate::config::NatsConfig;
use crate::event::hook::wire;
use crate::nats;

pub async fn tail(
    nats: &NatsConfig,
    filter: Option<&str>,
    all: bool,
    count: Option<usize>,
    json: bool,
) -> anyhow::Result<()> {
    follow(nats, filter, all, count, |m| {
        crate::say!(
            "{}",
            match (json, m.hook_type()) {
                (true, None) => String::from_utf8_lossy(m.payload).into_owned(),
                (true, Some(_)) => hook_json(m),
                (false, _) => line(m),
            }
        );
    })
    .await
}

/// One message as `follow` hands it over.
pub struct Delivered<'a> {
    pub subject: &'a str,
    pub headers: Option<&'a async_nats::HeaderMap>,
    pub payload: &'a [u8],
}

impl Delivered<'_> {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers?.get(name).map(|v| v.as_str())
    }

    /// `X-Gitea-Event-Type` of a webhook-shaped event (binary mode); `None` for the others.
    pub fn hook_type(&self) -> Option<&str> {
        self.header(wire::GITEA_EVENT_TYPE)
    }
}

/// The human-readable line of any message: [`hook_summary`] or [`summary`].
pub fn line(m: &Delivered<'_>) -> String {
    match m.hook_type() {
        Some(ty) => hook_summary(
            m.header(wire::CE_TIME).unwrap_or(""),
            m.header(wire::CE_SUBJECT).unwrap_or(""),
            ty,
            m.payload,
        ),
        None => summary(m.payload),
    }
}

/// `--json` for a webhook-shaped event: its CloudEvents headers and Gitea's body together.
fn hook_json(m: &Delivered<'_>) -> String {
    let mut headers = serde_json::Map::new();
    for (k, v) in m.headers.into_iter().flat_map(|h| h.iter()) {
        if let Some(v) = v.first() {
            headers.insert(k.to_string(), serde_json::Value::from(v.as_str()));
        }
    }
    let body = serde_json::from_slice::<serde_json::Value>(m.payload).unwrap_or_default();
    serde_json::json!({ "subject": m.subject, "headers": headers, "body": body }).to_string()
}

/// One human-readable line for a webhook-shaped event, e.g.
/// `... alice/proj  hook push  refs/heads/main 3 commits by alice`.
pub fn hook_summary(time: &str, repo: &str, event_type: &str, payload: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return format!("(not JSON: {} bytes)", payload.len());
    };
    let s = |x: &serde_json::Value| x.as_str().unwrap_or("").to_string();
    let short = |x: &serde_json::Value, n: usize| s(x).chars().take(n).collect::<String>();
    let action = s(&v["action"]);
    let what = match event_type {
        "push" => format!(
            "{} {}..{} {} commits",
            s(&v["ref"]),
            short(&v["before"], 7),
            short(&v["after"], 7),
            v["total_commits"]
        ),
        "create" | "delete" => format!(
            "{} {} {}",
            s(&v["ref_type"]),
            s(&v["ref"]),
            short(&v["sha"], 10)
        ),
        "issue_comment" | "pull_request_comment" => format!(
            "{action} #{} {}",
            v["issue"]["number"],
            short(&v["comment"]["body"], 60)
        ),
        t if t.starts_with("issue") => {
            format!("{action} #{} {}", v["number"], s(&v["issue"]["title"]))
        }
        t if t.starts_with("pull_request") => {
            let pr = &v["pull_request"];
            let merged = if pr["merged"].as_bool() == Some(true) {
                " merged"
            } else {
                ""
            };
            format!(
                "{action}{merged} #{} {} ({} -> {})",
                v["number"],
                s(&pr["title"]),
                s(&pr["head"]["ref"]),
                s(&pr["base"]["ref"])
            )
        }
        "release" => format!(
            "{action} {} {}",
            s(&v["release"]["tag_name"]),
            s(&v["release"]["name"])
        ),
        "repository" => format!("{action} {}", s(&v["repository"]["full_name"])),
        "status" => format!(
            "{} {} {}",
            s(&v["state"]),
            s(&v["context"]),
            short(&v["sha"], 10)
        ),
        "workflow_run" => format!(
            "{action} {} {}",
            s(&v["workflow_run"]["path"]),
            s(&v["workflow_run"]["conclusion"])
        ),
        _ => action,
    };
    let sender = s(&v["sender"]["login"]);
    let by = if sender.is_empty() {
        String::new()
    } else {
        format!(" by {sender}")
    };
    printable(format!(
        "{time}  {repo:<24} hook {event_type:<28} {what}{by}"
    ))
}

/// `line` as a terminal may show it: text from Gitea (titles, comments, names) may hold
/// control characters, an escape sequence that would drive the terminal; line breaks and
/// tabs become spaces, every other control character its `\u{..}` escape.
fn printable(line: String) -> String {
    if !line.chars().any(char::is_control) {
        return line;
    }
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Calls `each` with every message matching `filter`, until `count` were seen.
pub async fn follow(
    cfg: &NatsConfig,
    filter: Option<&str>,
    all: bool,
    count: Option<usize>,
    each: impl FnMut(&Delivered<'_>),
) -> anyhow::Result<()> {
    follow_until(cfg, filter, all, count, each, std::future::pending()).await
}

/// Like [`follow`], until `stop` completes too; the connection is closed before it returns
/// (so a server stopped next sees no client to disconnect).
pub async fn follow_until(
    cfg: &NatsConfig,
    filter: Option<&str>,
    all: bool,
    count: Option<usize>,
    each: impl FnMut(&Delivered<'_>),
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let client = nats::connect(cfg, &crate::telemetry::Telemetry::new()).await?;
    let r = tokio::select! {
        r = read(cfg, client.clone(), filter, all, count, each) => r,
        () = stop => Ok(()),
    };
    close(&client).await;
    r
}

/// Drains `client` and waits (at most 2 s) until its connection is closed: `drain` only
/// starts it, and a server stopped before the close completes would see a disconnection.
pub async fn close(client: &async_nats::Client) {
    if client.drain().await.is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    // A closed client refuses every command; until then a flush still answers.
    while client.flush().await.is_ok() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn read(
    cfg: &NatsConfig,
    client: async_nats::Client,
    filter: Option<&str>,
    all: bool,
    count: Option<usize>,
    mut each: impl FnMut(&Delivered<'_>),
) -> anyhow::Result<()> {
    let js = nats::jetstream(client);
    let stream = js
        .get_stream(&cfg.stream)
        .await
        .map_err(|e| anyhow!("stream {}: {e}", cfg.stream))?;
    let filter_subject = match filter {
        None => format!("{}.>", cfg.subject_prefix),
        Some(f) if f.starts_with(&format!("{}.", cfg.subject_prefix)) => f.to_string(),
        Some(f) => format!("{}.{f}", cfg.subject_prefix),
    };
    // Named, with its one filter: async-nats then asks with the subject
    // `$JS.API.CONSUMER.CREATE.{stream}.{name}.{filter}`, which a reader's permissions can
    // limit to its prefix (docs/least-privilege.md); an unnamed one is asked for with
    // `$JS.API.CONSUMER.CREATE.{stream}`, whatever its filter.
    let consumer = stream
        .create_consumer(OrderedConfig {
            name: Some(format!("tail-{:016x}", rand::random::<u64>())),
            filter_subject,
            deliver_policy: if all {
                DeliverPolicy::All
            } else {
                DeliverPolicy::New
            },
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("cannot follow stream {}: {e}", cfg.stream))?;
    let mut messages = consumer.messages().await?;
    let mut seen = 0;
    while count.is_none_or(|c| seen < c) {
        match messages.next().await {
            Some(Ok(m)) => {
                each(&Delivered {
                    subject: m.subject.as_str(),
                    headers: m.headers.as_ref(),
                    payload: &m.payload,
                });
                seen += 1;
            }
            Some(Err(e)) => return Err(anyhow!("reading stream {}: {e}", cfg.stream)),
            None => break,
        }
    }
    Ok(())
}

/// One human-readable line for an event body.
pub fn summary(payload: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return format!("(not JSON: {} bytes)", payload.len());
    };
    let a = &v["data"]["activity"];
    let s = |x: &serde_json::Value| x.as_str().unwrap_or("").to_string();
    if a.is_null() {
        // A repository-endpoint event: name the change and its object.
        let d = &v["data"];
        let what = if !d["issue"].is_null() {
            format!("#{} {}", d["issue"]["number"], s(&d["issue"]["title"]))
        } else if !d["comment"].is_null() {
            s(&d["comment"]["body"]).chars().take(60).collect()
        } else if !d["release"].is_null() {
            format!(
                "{} {}",
                s(&d["release"]["tag_name"]),
                s(&d["release"]["name"])
            )
        } else if !d["status"].is_null() {
            format!(
                "{} {}",
                s(&d["status"]["context"]),
                s(&d["sha"]).chars().take(10).collect::<String>()
            )
        } else if !d["run"].is_null() {
            format!("run {} {}", d["run"]["id"], s(&d["run"]["path"]))
        } else {
            String::new()
        };
        let ty = s(&v["type"]);
        return printable(format!(
            "{}  {:<24} {:<31} {}",
            s(&v["time"]),
            s(&v["subject"]),
            ty.trim_start_matches("io.gitea."),
            what
        ));
    }
    let op = s(&a["op_type"]);
    let content = s(&a["content"]);
    let what = match op.as_str() {
        "commit_repo" | "mirror_sync_push" | "push_tag" => {
            let n = serde_json::from_str::<serde_json::Value>(&content)
                .ok()
                .and_then(|c| c["Len"].as_u64())
                .unwrap_or(0);
            format!("{} ({n} commits)", s(&a["ref_name"]))
        }
        _ => content
            .chars()
            .take(60)
            .collect::<String>()
            .replace('\n', " "),
    };
    printable(format!(
        "{}  {:<24} {:<20} {:<10} {}",
        s(&v["time"]),
        s(&v["subject"]),
        op,
        s(&a["act_user"]["login"]),
        what
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_gitea_cannot_drive_the_terminal() {
        let title = "Fix\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nnext\u{0}";
        let body = serde_json::json!({
            "action": "opened", "number": 3,
            "issue": { "title": title }, "sender": { "login": "eve\u{1b}[31m" },
        });
        let line = hook_summary("t", "acme/widgets", "issues", body.to_string().as_bytes());
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains("Fix\\u{1b}[2J"), "{line}");
        let row = serde_json::json!({
            "time": "t", "subject": "acme/widgets",
            "data": { "activity": { "op_type": "create_issue", "content": format!("3|{title}"),
                                    "act_user": { "login": "eve" } } },
        });
        let line = summary(row.to_string().as_bytes());
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }

    #[test]
    fn hook_lines_say_what_happened() {
        let push =
            br#"{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000",
            "after":"4522cbcefc20728a5b72b3a86af35e608622c514","total_commits":3,
            "sender":{"login":"alice"}}"#;
        let l = hook_summary("2026-01-02T03:04:05+08:00", "alice/proj", "push", push);
        assert!(
            l.ends_with("hook push                         refs/heads/main 0000000..4522cbc 3 commits by alice"),
            "{l}"
        );
        let pr = br#"{"action":"closed","number":7,"pull_request":{"title":"Fix","merged":true,
            "head":{"ref":"fix"},"base":{"ref":"main"}},"sender":{"login":"bob"}}"#;
        let l = hook_summary("t", "acme/w", "pull_request", pr);
        assert!(
            l.ends_with("closed merged #7 Fix (fix -> main) by bob"),
            "{l}"
        );
        let c = br#"{"action":"created","issue":{"number":3},"comment":{"body":"Seen\nit"},"sender":{"login":"bob"}}"#;
        let l = hook_summary("t", "acme/w", "issue_comment", c);
        assert!(l.ends_with("created #3 Seen it by bob"), "{l}");
    }
}
