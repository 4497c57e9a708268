//! `backfill --since --until [--source]`: publish the history of a range of days, skipping
//! what is already published, usable while `run` is running elsewhere.
//!
//! ## How it never publishes an action twice
//! JetStream's duplicate window forgets ids after `duplicate_window`, so it cannot protect a
//! month-old range run twice. Instead each day has a **ledger** in the cursor bucket
//! (`backfill/{YYYY-MM-DD}`, one per server day, shared by all sources): the identities
//! (`store::cursor::Seen`) published for that day by any backfill, and the sources whose day
//! is complete. A backfill skips complete days, skips identities already in the ledger
//! (matching copies from other feeds a second late, as the live poll does), and writes the
//! ledger with compare-and-set after every acknowledged batch, so a crash or a second run
//! resumes exactly where the first stopped.
//!
//! It never touches live cursors, and it follows the ownership `run` follows, so that every
//! row is published by exactly one of the two:
//! * A source backfills only the rows it would publish live ([`Owners::publishes`] over the
//!   configured sources): the rows of a repository a configured `repo:` source publishes are
//!   that source's, and backfilling an org (or user) source backfills those `repo:` sources
//!   with it ([`with_owning_sources`]).
//! * A row is skipped when a live cursor published it or will
//!   ([`Cursor::published_live`]): its repository's `repo:` cursor (one handed over only up to
//!   its position), its owner's `org:` or `user:` cursor (up to where it left the repository
//!   to a `repo:` source, `left_to`), or the backfilled source's own. A `start = "now"`
//!   cursor owns only the rows after the newest one at install; the rows before, and the ties
//!   of that second, are backfill's.
//!
//! A day is the server's local day, whatever its length: the rows
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
use crate::gitea::ActivityRow;
use crate::nats::publish::BatchOutcome;
use crate::poll::feed::walk;
use crate::poll::pipeline::owners::Owners;
use crate::poll::pipeline::{Context, Pending, Pipeline, PollError, Target, feed_candidates};
use crate::shutdown::Shutdown;
use crate::source::SourceSpec;
use crate::store::cursor::{Cursor, SeenSet};
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
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub days: usize,
    pub published: usize,
    pub skipped: usize,
    /// The source-days read but not proven whole: not marked done, to be read again.
    pub incomplete: Vec<Incomplete>,
    /// Shutdown stopped the backfill before the end of its range.
    pub stopped: bool,
}

/// A day of a source that a backfill could not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    pub source: SourceSpec,
    pub day: NaiveDate,
    /// The oldest second the day walk could not prove whole (Unix seconds).
    pub unproven: i64,
    /// Why, as the walk's reads tell.
    pub why: walk::Why,
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let second = chrono::DateTime::from_timestamp(self.unproven, 0)
            .map_or_else(|| self.unproven.to_string(), |t| t.to_rfc3339());
        write!(
            f,
            "{} {}: second {second} could not be proven whole ({})",
            self.source,
            self.day,
            self.why.describe()
        )
    }
}

/// `specs` with, after each org or user source, the configured `repo:` sources of its
/// repositories (`Owners::left_to_others`) that are not in `specs`, each with the source it
/// was added for: those repositories' rows are theirs, live and in backfill, so
/// backfilling the org alone would leave them to nobody.
pub fn with_owning_sources(
    specs: &[SourceSpec],
    owners: &Owners,
) -> Vec<(SourceSpec, Option<SourceSpec>)> {
    let mut out: Vec<(SourceSpec, Option<SourceSpec>)> = Vec::with_capacity(specs.len());
    for spec in specs {
        if !out.iter().any(|(s, _)| same_source(s, spec)) {
            out.push((spec.clone(), None));
        }
        for repo in owners.left_to_others(spec) {
            let Some((o, n)) = repo.split_once('/') else {
                continue;
            };
            if let Ok(r) = SourceSpec::repo(o, n)
                && !specs.iter().any(|s| same_source(s, &r))
                && !out.iter().any(|(s, _)| same_source(s, &r))
            {
                out.push((r, Some(spec.clone())));
            }
        }
    }
    out
}

fn same_source(a: &SourceSpec, b: &SourceSpec) -> bool {
    a.to_string().eq_ignore_ascii_case(&b.to_string())
}

/// The live cursors, by source name in lower case (names are case-insensitive in Gitea).
struct LiveCursors {
    by_source: std::collections::HashMap<String, Cursor>,
    lookback: i64,
}

impl LiveCursors {
    async fn load(ctx: &Context) -> Result<LiveCursors, PollError> {
        let by_source = ctx
            .store
            .list()
            .await?
            .into_iter()
            .map(|(spec, s)| (spec.to_string().to_lowercase(), s.cursor))
            .collect();
        Ok(LiveCursors {
            by_source,
            lookback: ctx.lookback,
        })
    }

    fn get(&self, source: &str) -> Option<&Cursor> {
        self.by_source.get(source)
    }

    /// Whether a live cursor published `row`, or will: `run`'s, never backfill's.
    fn published(&self, spec: &SourceSpec, row: &ActivityRow) -> bool {
        let created = &row.activity.created;
        let t = created.timestamp();
        let live = |c: &Cursor| c.published_live(created, self.lookback);
        if let Some((owner, name)) = row.activity.repo_names() {
            let repo = format!("{owner}/{name}").to_lowercase();
            // The repository's own source; one handed over published it up to its position.
            if self
                .get(&format!("repo:{repo}"))
                .is_some_and(|c| live(c) && (c.handed_to.is_none() || t <= c.position))
            {
                return true;
            }
            // Its owner's org or user source, up to where it left it to a `repo:` source.
            let owner = owner.to_lowercase();
            for source in [format!("org:{owner}"), format!("user:{owner}")] {
                if self.get(&source).is_some_and(|c| {
                    live(c)
                        && c.left_to
                            .iter()
                            .find(|l| l.repo == repo)
                            .is_none_or(|l| t <= l.from)
                }) {
                    return true;
                }
            }
        }
        // The backfilled source's own cursor (a user source's feed shows others' repositories).
        self.get(&spec.to_string().to_lowercase()).is_some_and(|c| {
            live(c)
                && match row.activity.repo_names() {
                    Some((o, n)) => {
                        let repo = format!("{o}/{n}").to_lowercase();
                        c.left_to.iter().all(|l| l.repo != repo)
                    }
                    None => true,
                }
        })
    }
}

fn ledger_key(day: NaiveDate) -> String {
    crate::store::Key::Ledger(day).to_string()
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
                    &self.ctx.prefixes,
                    &c.item,
                    c.id.key.clone(),
                    c.id.repeatable,
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

/// Runs a backfill of `sources` (and the `repo:` sources that publish some of their
/// repositories: [`with_owning_sources`]) over `since..=until` (server days). The days it
/// could not complete are in [`Totals::incomplete`].
pub async fn backfill(
    ctx: &Context,
    sources: &[SourceSpec],
    since: NaiveDate,
    until: NaiveDate,
    shutdown: &Shutdown,
) -> Result<Totals, PollError> {
    // Cloned so that no lock is held across the awaits below (a reload may write it).
    let owners = ctx.owners.read().unwrap_or_else(|e| e.into_inner()).clone();
    let sources: Vec<SourceSpec> = with_owning_sources(sources, &owners)
        .into_iter()
        .map(|(with, added_for)| {
            if let Some(source) = &added_for {
                ctx.telemetry.emit(telemetry::BackfillWithOwner {
                    source,
                    with: &with,
                });
            }
            with
        })
        .collect();
    let live = LiveCursors::load(ctx).await?;
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
        no_reply: &ctx.no_reply,
        batch: ctx.batch,
        owner: 0,
    };
    for spec in &sources {
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
        let mut ahead = walker.ahead(todo.clone(), &ctx.read_ahead);
        let mut walked_days = 0;
        for &day in &days {
            if shutdown.is_fired() {
                totals.stopped = true;
                return Ok(totals);
            }
            if todo.contains(&day) {
                let next = tokio::select! {
                    n = ahead.next() => n,
                    _ = shutdown.wait() => {
                        totals.stopped = true;
                        return Ok(totals);
                    }
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
                    if let Some(unproven) = walked.unproven {
                        let incomplete = Incomplete {
                            source: spec.clone(),
                            day,
                            unproven,
                            why: walked.why,
                        };
                        ctx.telemetry.emit(telemetry::BackfillDayIncomplete {
                            source: spec,
                            day,
                            unproven,
                            why: walked.why.describe(),
                        });
                        totals.incomplete.push(incomplete);
                    }
                    let target = LedgerTarget {
                        ctx,
                        spec,
                        key,
                        ledger,
                        rev,
                    };
                    let out = publish_day(
                        &pipeline,
                        target,
                        day,
                        walked,
                        (&live, &owners),
                        complete_before,
                        shutdown,
                    )
                    .await?;
                    totals.published += out.published;
                    totals.skipped += out.known + out.duplicates;
                    if out.stopped {
                        totals.stopped = true;
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
                ctx.telemetry
                    .emit(telemetry::BackfillProgress { line: &line });
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
async fn publish_day(
    pipeline: &Pipeline<'_>,
    mut target: LedgerTarget<'_>,
    day: NaiveDate,
    walked: walk::Walked,
    (live, owners): (&LiveCursors, &Owners),
    complete_before: NaiveDate,
    shutdown: &Shutdown,
) -> Result<crate::poll::pipeline::Outcome, PollError> {
    let (ctx, spec) = (target.ctx, target.spec);
    // The server's local day: rows `date=` returns from the next day (a 23-hour day) are
    // that day's. Rows another source publishes, and rows a live cursor published, are not
    // this backfill's.
    let rows: Vec<ActivityRow> = walked
        .rows
        .into_iter()
        .filter(|r| r.activity.created.date_naive() == day)
        .filter(|r| owners.publishes(spec, r) && !live.published(spec, r))
        .collect();
    let candidates = feed_candidates(rows);
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
