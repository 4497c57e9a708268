//! `backfill --since --until [--source]`: publish the history of a range of days, skipping
//! what is already published, usable while `run` is running elsewhere.
//!
//! ## How it never publishes an action twice
//! JetStream's duplicate window forgets ids after `duplicate_window`, so it cannot protect a
//! month-old range run twice. Instead each day has a **ledger** in the cursor bucket
//! (`backfill/{YYYY-MM-DD}`, one per server day, shared by all sources): the identities
//! (`feed::cursor::Seen`) published for that day by any backfill, and the sources whose day
//! is complete. A backfill skips complete days, skips identities already in the ledger
//! (matching copies from other feeds a second late, as the live poll does), and writes the
//! ledger with compare-and-set after every acknowledged batch, so a crash or a second run
//! resumes exactly where the first stopped.
//!
//! It never touches live cursors. Rows at or after a live cursor's `floor` (where `run`
//! began publishing that source) belong to `run` and are skipped, so the two never publish
//! the same action. A day of more than roughly 15,000 actions exceeds the bucket's value
//! size; such a day fails with an error naming it.

use std::io::IsTerminal;
use std::time::Instant;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::event;
use crate::feed::cursor::Seen;
use crate::feed::walk;
use crate::feed::{PollContext, PollError};
use crate::gitea::ActivityRow;
use crate::shutdown::Shutdown;
use crate::source::SourceSpec;

/// What one day's ledger holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Ledger {
    /// Sources whose day was read completely (after the day had ended).
    #[serde(default)]
    pub done: Vec<String>,
    /// Identities published for this day by backfills.
    #[serde(default)]
    pub seen: Vec<Seen>,
}

/// Totals of a backfill.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub days: usize,
    pub published: usize,
    pub skipped: usize,
}

fn ledger_key(day: NaiveDate) -> String {
    format!("backfill/{}", day.format("%Y-%m-%d"))
}

/// Runs a backfill of `sources` over `since..=until` (server days).
pub async fn backfill(
    ctx: &PollContext,
    sources: &[SourceSpec],
    since: NaiveDate,
    until: NaiveDate,
    shutdown: &mut Shutdown,
) -> Result<Totals, PollError> {
    let days: Vec<NaiveDate> = since.iter_days().take_while(|d| *d <= until).collect();
    let total_days = days.len() * sources.len();
    let started = Instant::now();
    let mut totals = Totals::default();
    let terminal = std::io::stderr().is_terminal();
    let complete_before = chrono::Utc::now().date_naive().pred_opt().unwrap_or(until);
    for spec in sources {
        let floor = ctx.store.load(spec).await?.map(|s| s.cursor.floor);
        for &day in &days {
            if shutdown.is_fired() {
                return Ok(totals);
            }
            let key = ledger_key(day);
            let (mut ledger, mut rev) = ctx.store.get::<Ledger>(&key).await?.unwrap_or_default();
            if !ledger.done.iter().any(|s| *s == spec.to_string()) {
                let rows = tokio::select! {
                    r = walk::walk_day(&ctx.client, spec, day) => r?,
                    _ = shutdown.wait() => return Ok(totals),
                };
                let mut rows: Vec<ActivityRow> = rows
                    .into_iter()
                    .filter(|r| floor.is_none_or(|f| r.created_unix() < f))
                    .collect();
                rows.sort_by_key(|r| (r.created_unix(), r.activity.id));
                let mut fresh = Vec::new();
                for row in rows {
                    let key = event::identity_key(&row.activity);
                    let t = row.created_unix();
                    let rep = event::is_repeatable(&row.activity);
                    let known = |s: &Seen| s.k == key && (!rep || (s.t - t).abs() <= 1);
                    if ledger.seen.iter().any(known) || fresh.iter().any(|(s, _)| known(s)) {
                        totals.skipped += 1;
                        continue;
                    }
                    match event::build(&ctx.gitea_url, &ctx.subject_prefix, &row) {
                        Ok(e) => fresh.push((Seen { k: key, t }, e)),
                        Err(e) => crate::telemetry::event_skipped(spec, &e.to_string()),
                    }
                }
                // Publish in batches; the ledger is written only after a batch's acks, so a
                // failure leaves it listing exactly what was acknowledged.
                for batch in fresh.chunks(ctx.batch) {
                    let events: Vec<_> = batch.iter().map(|(_, e)| e.clone()).collect();
                    let outcome = ctx.publisher.publish_all(&events).await?;
                    totals.published += outcome.stored;
                    totals.skipped += outcome.duplicates;
                    ledger.seen.extend(batch.iter().map(|(s, _)| s.clone()));
                    rev = ctx.store.put(&key, &ledger, rev).await?;
                }
                if day < complete_before {
                    ledger.done.push(spec.to_string());
                    rev = ctx.store.put(&key, &ledger, rev).await?;
                }
                let _ = rev;
            }
            totals.days += 1;
            let rate = totals.published as f64 / started.elapsed().as_secs_f64().max(0.001);
            let line = format!(
                "backfill {spec} {day}: {}/{total_days} days, {} events published, {} already there, {rate:.0} events/s",
                totals.days, totals.published, totals.skipped
            );
            if terminal {
                eprint!("\r{line}\x1b[K");
            } else {
                tracing::info!("{line}");
            }
        }
    }
    if terminal {
        eprintln!();
    }
    Ok(totals)
}
