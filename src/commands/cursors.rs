//! `cursors list` and `cursors reset`.

use super::{FAILED, OK, USAGE};
use crate::config::Config;
use crate::nats;
use crate::source::SourceSpec;
use crate::state::CursorStore;

async fn open(cfg: &Config) -> Result<CursorStore, String> {
    let client = nats::connect(&cfg.nats).await.map_err(|e| e.to_string())?;
    let js = nats::jetstream(client);
    let kv = nats::ensure_bucket(&js, &cfg.nats)
        .await
        .map_err(|e| e.to_string())?;
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

pub async fn list(cfg: &Config) -> u8 {
    let store = match open(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return FAILED;
        }
    };
    let list = match store.list().await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return FAILED;
        }
    };
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
    OK
}

pub async fn reset(cfg: &Config, spec: &str) -> u8 {
    let spec: SourceSpec = match spec.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return USAGE;
        }
    };
    let store = match open(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return FAILED;
        }
    };
    match store.reset(&spec).await {
        Ok(true) => {
            crate::say!("reset {spec}: it starts again at {}", cfg.poll.start);
            OK
        }
        Ok(false) => {
            crate::say!("{spec} had no cursor");
            OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            FAILED
        }
    }
}
