//! `tail`: print published events as they arrive.

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt;

use anyhow::anyhow;

use crate::config::{Config, NatsConfig};
use crate::nats;

pub async fn tail(
    cfg: &Config,
    filter: Option<&str>,
    all: bool,
    count: Option<usize>,
    json: bool,
) -> anyhow::Result<()> {
    follow(&cfg.nats, filter, all, count, |payload| {
        crate::say!(
            "{}",
            if json {
                String::from_utf8_lossy(payload).into_owned()
            } else {
                summary(payload)
            }
        );
    })
    .await
}

/// Calls `each` with every event body matching `filter`, until `count` were seen.
pub async fn follow(
    cfg: &NatsConfig,
    filter: Option<&str>,
    all: bool,
    count: Option<usize>,
    mut each: impl FnMut(&[u8]),
) -> anyhow::Result<()> {
    let client = nats::connect(cfg, &crate::telemetry::Telemetry::new()).await?;
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
    let consumer = stream
        .create_consumer(OrderedConfig {
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
                each(&m.payload);
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
        return format!(
            "{}  {:<24} {:<31} {}",
            s(&v["time"]),
            s(&v["subject"]),
            ty.trim_start_matches("io.gitea."),
            what.replace('\n', " ")
        );
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
    format!(
        "{}  {:<24} {:<20} {:<10} {}",
        s(&v["time"]),
        s(&v["subject"]),
        op,
        s(&a["act_user"]["login"]),
        what
    )
}
