//! `cursors list`, `cursors reset`, `cursors pause` and `cursors resume`.

use crate::config::Config;
use crate::nats;
use crate::source::SourceSpec;
use crate::store::CursorStore;

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

/// What a pinned cursor waits for: the second (RFC 3339 and Unix) and since when, or `None`.
pub fn pinned_note(c: &crate::store::cursor::Cursor) -> Option<String> {
    let p = c.pinned.as_ref()?;
    Some(format!(
        "PINNED waiting for {} (unix {}) since {}",
        fmt_time(p.second),
        p.second,
        p.since.format("%Y-%m-%dT%H:%M:%SZ")
    ))
}

/// `[ha]`: who holds each source's lease and since when (empty without `[ha]` or bucket).
async fn leases(cfg: &Config) -> anyhow::Result<std::collections::BTreeMap<SourceSpec, String>> {
    let mut out = std::collections::BTreeMap::new();
    if !cfg.ha.enabled {
        return Ok(out);
    }
    let client = nats::connect(&cfg.nats, &crate::telemetry::Telemetry::new()).await?;
    let js = nats::jetstream(client);
    if let Some(bucket) = crate::ha::lease::LeaseBucket::find(&js, &cfg.ha).await? {
        for (spec, e) in bucket.view(std::time::Duration::from_secs(5)).await?.leases {
            let since = e.holder.since.format("%Y-%m-%dT%H:%M:%SZ");
            out.insert(spec, format!("{} since {since}", e.holder.instance));
        }
    }
    Ok(out)
}

pub async fn list(cfg: &Config) -> anyhow::Result<()> {
    let store = open(cfg).await?;
    let list = store.list().await?;
    let leases = leases(cfg).await?;
    let pauses: std::collections::BTreeMap<SourceSpec, String> = store
        .pauses()
        .await?
        .into_iter()
        .map(|(spec, mark)| {
            let note = match mark {
                Some(m) => format!(
                    "  PAUSED since {} by {}",
                    m.at.format("%Y-%m-%dT%H:%M:%SZ"),
                    m.by
                ),
                None => "  PAUSED".into(),
            };
            (spec, note)
        })
        .collect();
    let held = |spec: &SourceSpec| {
        let lease = match (cfg.ha.enabled, leases.get(spec)) {
            (false, _) => String::new(),
            (true, Some(h)) => format!("  held by {h}"),
            (true, None) => "  not held".into(),
        };
        format!("{lease}{}", pauses.get(spec).map_or("", String::as_str))
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
        let gap = match pinned_note(c) {
            Some(p) => format!("{gap}  {p}"),
            None => gap,
        };
        crate::say!(
            "{:<32} {:<27} {:>10}  {:<27} {gap}{}",
            spec.to_string(),
            c.newest.clone().unwrap_or_else(|| fmt_time(c.position)),
            c.published,
            c.updated_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            held(spec),
        );
    }
    for source in cfg.sources() {
        if !list.iter().any(|(s, _)| *s == source.spec) {
            crate::say!(
                "{:<32} no cursor: starts at {}{}",
                source.spec.to_string(),
                source.start,
                held(&source.spec)
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

pub async fn pause(cfg: &Config, spec: &SourceSpec) -> anyhow::Result<()> {
    let store = open(cfg).await?;
    let mark = crate::store::PauseMark {
        at: chrono::Utc::now(),
        by: format!("cursors pause on {}", crate::config::host_name()),
    };
    match store.pause(spec, &mark).await? {
        true => crate::say!(
            "paused {spec}: running sourcers stop polling it at their next safe point, until `cursors resume {spec}`"
        ),
        false => crate::say!("{spec} was paused already"),
    }
    Ok(())
}

pub async fn resume(cfg: &Config, spec: &SourceSpec) -> anyhow::Result<()> {
    let store = open(cfg).await?;
    match store.resume(spec).await? {
        true => crate::say!("resumed {spec}: the sourcer that holds it polls it again now"),
        false => crate::say!("{spec} was not paused"),
    }
    Ok(())
}
