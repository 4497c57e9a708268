//! `backfill --since --until [--source]`: publish the history of a range of days, skipping
//! what is already published, usable while `run` is running elsewhere.
//!
//! ## How it never publishes an action twice
//! JetStream's duplicate window forgets ids after `duplicate_window`, so it cannot protect a
//! month-old range run twice. Instead each day has a **ledger** in the cursor bucket
//! (`backfill/{YYYY-MM-DD}`, one per server day, shared by all sources): the identities
//! (`state::cursor::Seen`) published for that day by any backfill, and the sources whose day
//! is complete. A backfill skips complete days, skips identities already in the ledger
//! (matching copies from other feeds a second late, as the live poll does), and writes the
//! ledger with compare-and-set after every acknowledged batch, so a crash or a second run
//! resumes exactly where the first stopped.
//!
//! It never touches live cursors. Rows a live cursor owns (at or after where `run` began
//! publishing that source, `Cursor::owns`) belong to `run` and are skipped, so the two never
//! publish the same action. A day is the server's local day, whatever its length: the rows
//! `date=` returns from the next day (a 23-hour day) are left to that day, and the last hour
//! of a 25-hour day, which no `date=` returns, is read through plain paging
//! (`feed::walk::DayWalker`). A day that cannot be proven whole is not marked done, so the
//! next backfill reads it again; its ledger keeps, per source, the second below which the
//! walk proved it (`Ledger::proven`), and the next walk proves only from there. A day of
//! more than roughly 15,000 actions exceeds the bucket's value size; such a day fails with
//! an error naming it.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::time::Instant;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::event::{self, Event};
use crate::feed::walk;
use crate::gitea::ActivityRow;
use crate::pipeline::{Context, Pending, Pipeline, PollError, Target, feed_candidates};
use crate::publish::BatchOutcome;
use crate::shutdown::Shutdown;
use crate::source::SourceSpec;
use crate::state::cursor::SeenSet;
use crate::telemetry;

/// What one day's ledger holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Ledger {
    /// Sources whose day was read completely (after the day had ended).
    #[serde(default)]
    pub done: Vec<String>,
    /// Identities published for this day by backfills.
    #[serde(default)]
    pub seen: SeenSet,
    /// Per source whose day is not complete: every second of the day below this one (Unix
    /// seconds) was proven whole by its last walk and its rows published. The next walk of
    /// the day proves only the seconds from there (`DayWalker::proven_in`); the identities
    /// in `seen` are no proof of a second.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proven: BTreeMap<String, i64>,
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

/// A day's ledger as the pipeline's target.
struct LedgerTarget<'a> {
    ctx: &'a Context,
    spec: &'a SourceSpec,
    key: String,
    ledger: Ledger,
    rev: u64,
}

impl Target for LedgerTarget<'_> {
    type Item = ActivityRow;

    fn seen(&mut self) -> &mut SeenSet {
        &mut self.ledger.seen
    }

    async fn build(&mut self, batch: &[Pending<ActivityRow>]) -> Vec<Event> {
        batch
            .iter()
            .filter_map(|c| {
                match event::build_with(
                    &self.ctx.gitea_url,
                    &self.ctx.subject_prefix,
                    &c.item,
                    c.id.key.clone(),
                    None,
                ) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        self.ctx.telemetry.emit(telemetry::EventSkipped {
                            source: self.spec,
                            reason: &e.to_string(),
                        });
                        None
                    }
                }
            })
            .collect()
    }

    async fn commit(
        &mut self,
        _batch: &[Pending<ActivityRow>],
        _events: &[Event],
        _outcome: &BatchOutcome,
    ) -> Result<(), PollError> {
        self.rev = self
            .ctx
            .store
            .put(&self.key, &self.ledger, self.rev)
            .await?;
        Ok(())
    }
}

/// Runs a backfill of `sources` over `since..=until` (server days).
pub async fn backfill(
    ctx: &Context,
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
    // A day is over on the server once it is over in the westernmost zone (UTC-12).
    let complete_before = (chrono::Utc::now() - chrono::Duration::hours(12)).date_naive();
    // Days after the range are read only for the offset after its last day (a 25-hour day
    // at the end of the range), never past the server's today.
    let look_ahead_until = chrono::Utc::now().date_naive().succ_opt().unwrap_or(until);
    let pipeline = Pipeline {
        publisher: &ctx.publisher,
        source: "backfill",
        telemetry: &ctx.telemetry,
        index: None,
        batch: ctx.batch,
        owner: 0,
    };
    for spec in sources {
        // Rows the live cursor owns (at or after its start) are `run`'s, never backfill's.
        let live = ctx.store.load(spec).await?.map(|s| s.cursor);
        // The days this source still has to read; they are walked ahead of their
        // publication (`DaysAhead`), each ledger read again before its day is published.
        let mut todo = Vec::new();
        let mut proven = HashMap::new();
        for &day in &days {
            let ledger = ctx.store.get::<Ledger>(&ledger_key(day)).await?;
            if !ledger
                .as_ref()
                .is_some_and(|(l, _)| l.done.iter().any(|s| *s == spec.to_string()))
            {
                todo.push(day);
                if let Some(t) = ledger.and_then(|(l, _)| l.proven.get(&spec.to_string()).copied())
                {
                    proven.insert(day, t);
                }
            }
        }
        // What earlier backfills proved of each day: the walks prove only above it.
        let walker = walk::DayWalker::new(&ctx.client, spec, look_ahead_until).proven_in(proven);
        let expected = todo.len();
        let mut ahead = walker.ahead(todo.clone());
        let mut walked_days = 0;
        for &day in &days {
            if shutdown.is_fired() {
                return Ok(totals);
            }
            if todo.contains(&day) {
                let next = tokio::select! {
                    n = ahead.next() => n,
                    _ = shutdown.wait() => return Ok(totals),
                };
                // Days come in order, every one of them; anything else is a bug, refused.
                let Some((_, walked)) = next.filter(|(d, _)| *d == day) else {
                    return Err(crate::gitea::GiteaError::Request(format!(
                        "the day walks of {spec} ended after {walked_days} of {expected} days"
                    ))
                    .into());
                };
                walked_days += 1;
                let walked = walked?;
                let key = ledger_key(day);
                let (ledger, rev) = ctx.store.get::<Ledger>(&key).await?.unwrap_or_default();
                // Another backfill may have completed the day meanwhile.
                if !ledger.done.iter().any(|s| *s == spec.to_string()) {
                    let out = publish_day(
                        ctx,
                        &pipeline,
                        spec,
                        day,
                        walked,
                        live.as_ref(),
                        (key, ledger, rev),
                        complete_before,
                        shutdown,
                    )
                    .await?;
                    totals.published += out.published;
                    totals.skipped += out.known + out.duplicates;
                    if out.stopped {
                        return Ok(totals);
                    }
                }
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

/// Publishes one walked day of one source against the day's ledger, and marks the day done
/// for the source when it was proven whole and is over everywhere.
#[allow(clippy::too_many_arguments)]
async fn publish_day(
    ctx: &Context,
    pipeline: &Pipeline<'_>,
    spec: &SourceSpec,
    day: NaiveDate,
    walked: walk::Walked,
    live: Option<&crate::state::cursor::Cursor>,
    (key, ledger, rev): (String, Ledger, u64),
    complete_before: NaiveDate,
    shutdown: &Shutdown,
) -> Result<crate::pipeline::Outcome, PollError> {
    // The server's local day: rows `date=` returns from the next day (a 23-hour day) are
    // that day's.
    let rows: Vec<ActivityRow> = walked
        .rows
        .into_iter()
        .filter(|r| r.activity.created.date_naive() == day)
        .filter(|r| live.is_none_or(|c| !c.owns(&r.activity.created)))
        .collect();
    let candidates = feed_candidates(rows);
    let mut target = LedgerTarget {
        ctx,
        spec,
        key,
        ledger,
        rev,
    };
    let out = pipeline.run(&mut target, candidates, shutdown).await?;
    if !out.stopped && walked.unproven.is_none() && day < complete_before {
        target.ledger.done.push(spec.to_string());
        target.ledger.proven.remove(&spec.to_string());
        target.rev = ctx
            .store
            .put(&target.key, &target.ledger, target.rev)
            .await?;
    } else if !out.stopped
        && let Some(u) = walked.unproven
    {
        // Every row read is published (none is held back), so every second below the
        // oldest unproven one is proven and published: the next backfill starts there.
        let mark = target.ledger.proven.entry(spec.to_string()).or_insert(u);
        *mark = (*mark).max(u);
        target.rev = ctx
            .store
            .put(&target.key, &target.ledger, target.rev)
            .await?;
    }
    Ok(out)
}
