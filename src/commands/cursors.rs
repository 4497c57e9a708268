//! `cursors list` and `cursors reset`.

use crate::config::Config;
use crate::nats;
use crate::source::SourceSpec;
use crate::state::CursorStore;

async fn open(cfg: &Config) -> anyhow::Result<CursorStore> {
    let client = nats::connect(&cfg.nats, &crate::telemetry::Telemetry::new()).await?;
    let js = nats::jetstream(client);
    let kv = nats::ensure_bucket(&js, &cfg.nats).await?;
    Ok(CursorStore::new(kv))
}

/// Unix seconds as RFC 3339 (UTC), or `-` for none.
pub fn fmt_time(t: i64) -> String {
    if t <= 0 {
        return "-".into();
    }
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_else(|| t.to_string())
}

pub async fn list(cfg: &Config) -> anyhow::Result<()> {
    let store = open(cfg).await?;
    let list = store.list().await?;
    crate::say!(
        "{:<32} {:<27} {:>10}  {:<27} history",
        "SOURCE",
        "NEWEST PUBLISHED",
        "PUBLISHED",
        "UPDATED"
    );
    for (spec, stored) in &list {
        let c = &stored.cursor;
        let gap = match &c.gap {
            Some(g) => format!("GAP: lost {} .. {}", fmt_time(g.from), fmt_time(g.to)),
            None => "complete".into(),
        };
        crate::say!(
            "{:<32} {:<27} {:>10}  {:<27} {gap}",
            spec.to_string(),
            c.newest.clone().unwrap_or_else(|| fmt_time(c.position)),
            c.published,
            c.updated_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    }
    for source in cfg.sources() {
        if !list.iter().any(|(s, _)| *s == source.spec) {
            crate::say!(
                "{:<32} no cursor: starts at {}",
                source.spec.to_string(),
                source.start
            );
        }
    }
    Ok(())
}

pub async fn reset(cfg: &Config, spec: &SourceSpec) -> anyhow::Result<()> {
    let store = open(cfg).await?;
    match store.reset(spec).await? {
        true => crate::say!("reset {spec}: it starts again at {}", cfg.poll.start),
        false => crate::say!("{spec} had no cursor"),
    }
    Ok(())
}
