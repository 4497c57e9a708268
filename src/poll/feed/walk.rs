//! Reading a feed: newest first down to a cutoff (live polls), one whole day (catch-up), a
//! span of seconds through plain paging (the hour of a 25-hour day that no `date=` returns),
//! and the oldest row still there (gap detection).
//!
//! Every walk de-duplicates rows by id and ends only with positive evidence that it holds
//! every row of the range it read (`feed::evidence`): passes repeat until every second split
//! by a page boundary is proven, up to a budget. What stays unproven is returned
//! (`unproven`), and the caller must not move a cursor past it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate};
use futures::StreamExt;

use super::ahead::{Held, ReadAhead};
pub use super::evidence::Why;
use super::evidence::{self, PageShape, Run};
use crate::gitea::day::midnight;
use crate::gitea::{ActivityRow, FeedPage, GiteaClient, GiteaError};
use crate::source::SourceSpec;
use crate::telemetry;

/// How many passes one walk makes at most before it gives up proving (and says so).
const MAX_PASSES: usize = 6;

/// Passes of a walk: [`MAX_PASSES`], or one for a walk that is not to try hard.
fn passes(patient: bool) -> usize {
    match patient {
        true => MAX_PASSES,
        false => 1,
    }
}

/// The outcome of a live walk.
#[derive(Debug)]
pub enum LiveWalk {
    /// Every row down to the cutoff (and the rest of the last page), newest first.
    Done {
        rows: Vec<ActivityRow>,
        /// The feed ended before a row older than the cutoff: these are all its rows.
        exhausted: bool,
        /// Why `unproven` is (meaningless without it).
        why: evidence::Why,
        /// The oldest second (at or above the cutoff) not proven whole: a row of it may be
        /// missing. The cursor must stay at or below it.
        unproven: Option<i64>,
    },
    /// More than the page budget lies above the cutoff: catch up by day instead.
    TooDeep {
        /// `created` of the newest row (server time zone).
        newest: DateTime<FixedOffset>,
    },
}

/// The rows of a day or a span, and the oldest second not proven whole.
#[derive(Debug, Default)]
pub struct Walked {
    pub rows: Vec<ActivityRow>,
    pub unproven: Option<i64>,
    /// Why `unproven` is (meaningless without it).
    pub why: evidence::Why,
    /// A day walked ahead ([`DayWalker::ahead`]): its bytes, counted against the process's
    /// [`ReadAhead`] until this is dropped (keep it until the day is published).
    pub held: Option<Held>,
}

impl Walked {
    /// What its rows take in memory, about: each row's JSON and any content decoded beside it.
    pub fn bytes(&self) -> usize {
        self.rows
            .iter()
            .map(|r| r.raw().len() + r.activity.content.decoded_len())
            .sum()
    }
}

/// Rows gathered over the runs of one walk, de-duplicated by row id.
///
/// Only rows read by this walk count towards proving a second whole: the identities a
/// cursor's window or a ledger holds were published, but a row published then deleted
/// since would stand in for a row of the same second that the walk never saw (a tie split
/// by a page boundary can hide one). Known identities skip publishing (the pipeline's
/// `Target::seen`), never proof.
#[derive(Default)]
struct Gathered {
    rows: Vec<ActivityRow>,
    ids: HashSet<i64>,
    /// Distinct rows read per second.
    held: HashMap<i64, usize>,
    /// Every run read, for the evidence.
    runs: Vec<Run>,
}

impl Gathered {
    /// Adds a page's rows to the run being read.
    fn add(&mut self, run: &mut Run, page: FeedPage) {
        run.limit = page.limit;
        run.date = page.date;
        run.pages.push(PageShape {
            total: page.total,
            seconds: page.rows.iter().map(ActivityRow::created_unix).collect(),
        });
        self.hold(page.rows);
    }

    /// Holds rows read outside a run of this feed (the same rows, with the same ids, read
    /// through another feed).
    fn hold(&mut self, rows: Vec<ActivityRow>) {
        for r in rows {
            if self.ids.insert(r.activity.id) {
                *self.held.entry(r.created_unix()).or_default() += 1;
                self.rows.push(r);
            }
        }
    }

    fn unproven(&self, from: i64) -> Option<i64> {
        evidence::oldest_unproven(&self.runs, &self.held, from)
    }

    fn unproven_all(&self, from: i64) -> Vec<i64> {
        evidence::unproven(&self.runs, &self.held, from)
    }
}

/// How one pass over the newest pages ended.
enum PassEnd {
    /// A row older than the cutoff was read.
    Reached,
    /// The feed has no more pages.
    Exhausted,
    /// The page budget ran out first.
    TooDeep,
    /// A page came back empty while its `X-Total-Count` says rows lie there (a proxy, or
    /// rows deleted between Gitea's count and its page): the rows between the last one read
    /// and the cutoff are unknown, so nothing below the cutoff may be taken as read.
    Cut,
}

/// How deep a live walk reads.
#[derive(Debug, Clone, Copy)]
pub struct Depth {
    /// Read down to the first row older than this (Unix seconds): the cursor's cutoff.
    pub cutoff: i64,
    /// Pages a walk reads before it gives up as too deep...
    pub max_pages: usize,
    /// ...unless it has read a row at or below this second (the cursor's position): then
    /// only the trailing window is left, and it reads on down to the cutoff whatever its
    /// depth. A window deeper than `max_pages` (a busy feed, a long lookback) is still a
    /// live poll: a day-by-day catch-up would read the whole of today instead.
    pub settled: Option<i64>,
    /// Read up to [`PAGES_AHEAD`] pages at once (those the first page's total announces):
    /// for a walk known to be deep (the last day of a catch-up), where the few pages read
    /// past the cutoff cost less than reading one page at a time. A live poll reads one by
    /// one: its window usually ends on the first page or two.
    pub read_ahead: bool,
    /// Try hard to prove every second ([`MAX_PASSES`] passes, re-reads at other
    /// alignments, spans); `false`: one pass, for a source whose last walks could not prove
    /// a second and waits before it tries again (its cost stays one pass a poll).
    pub patient: bool,
}

impl Depth {
    /// Down to `cutoff`, at most `max_pages` pages.
    pub fn pages(cutoff: i64, max_pages: usize) -> Depth {
        Depth {
            cutoff,
            max_pages,
            settled: None,
            read_ahead: false,
            patient: true,
        }
    }
}

/// One pass from page 1 down to the cutoff.
async fn live_pass(
    client: &GiteaClient,
    spec: &SourceSpec,
    depth: Depth,
    got: &mut Gathered,
) -> Result<PassEnd, GiteaError> {
    let mut run = Run {
        first_page: 1,
        ..Run::default()
    };
    let mut page = 1;
    let mut settled = false;
    let first = client.feed_page(spec, 1, None).await?;
    let limit = client.page_limit().max(1) as u64;
    let announced = first.total.map_or(1, |t| t.div_ceil(limit) as usize);
    let ahead = match depth.read_ahead {
        true => PAGES_AHEAD,
        false => 1,
    };
    // Pages 2 to the announced last, `ahead` at once, in order; then one by one should the
    // feed have grown.
    let mut rest = futures::stream::iter(2..announced.min(depth.max_pages) + 1)
        .map(|n| client.feed_page(spec, n, None))
        .buffered(ahead);
    let mut next = Some(first);
    let mut previous_total = None;
    let end = loop {
        let p = match next.take() {
            Some(p) => p,
            None => match rest.next().await {
                Some(p) => p?,
                None => client.feed_page(spec, page, None).await?,
            },
        };
        let reached = p.rows.iter().any(|r| r.created_unix() < depth.cutoff);
        settled |= depth
            .settled
            .is_some_and(|s| p.rows.iter().any(|r| r.created_unix() <= s));
        let end = p.served == 0 || !p.has_next;
        // An empty page is the end only when its total says nothing lies there, and that
        // total did not shrink since the page before (rows deleted meanwhile may have been
        // pulled up past the pages read; an empty page shows nothing of that).
        let cut = p.served == 0
            && (p
                .total
                .is_some_and(|t| (page.saturating_sub(1) as u64).saturating_mul(limit) < t)
                || matches!((previous_total, p.total), (Some(a), Some(b)) if b < a));
        previous_total = p.total;
        got.add(&mut run, p);
        if reached {
            break PassEnd::Reached;
        }
        if end && cut {
            break PassEnd::Cut;
        }
        if end {
            run.to_end = true;
            break PassEnd::Exhausted;
        }
        if page >= depth.max_pages && !settled {
            break PassEnd::TooDeep;
        }
        page += 1;
    };
    got.runs.push(run);
    Ok(end)
}

/// Reads pages from the newest down until a row older than `cutoff` (Unix seconds) shows up,
/// the feed ends, or `max_pages` were read; passes again until every row at or above the
/// cutoff is proven held (see `feed::evidence`), at most [`MAX_PASSES`] times.
pub async fn walk_back_to(
    client: &GiteaClient,
    spec: &SourceSpec,
    cutoff: i64,
    max_pages: usize,
) -> Result<LiveWalk, GiteaError> {
    walk_back(client, spec, Depth::pages(cutoff, max_pages)).await
}

/// [`walk_back_to`] as deep as `depth` says. Every second at or above the cutoff is proven
/// by the rows this walk reads, those published by earlier polls included (see
/// [`Gathered`]): a split second of the trailing window is read again at another alignment
/// (one request) rather than taken as whole from its published identities.
pub async fn walk_back(
    client: &GiteaClient,
    spec: &SourceSpec,
    depth: Depth,
) -> Result<LiveWalk, GiteaError> {
    let cutoff = depth.cutoff;
    let mut got = Gathered::default();
    let mut unproven = None;
    let mut exhausted = false;
    let mut cut = false;
    let passes = passes(depth.patient);
    for pass in 1..=passes {
        // Every other pass re-reads only the pages around the unproven seconds (the feed
        // moves under a live walk: where a second left the pages it was on, the run proves
        // nothing and the next pass reads the window again).
        let layout = got.runs.iter().rposition(|r| r.first_page == 1);
        let targeted = match layout {
            Some(layout) if pass % 2 == 0 => {
                realigned_runs(client, spec, cutoff, &mut got).await?
                    || targeted_runs(client, spec, None, cutoff, layout, &mut got).await?
            }
            _ => false,
        };
        if !targeted {
            let end = live_pass(client, spec, depth, &mut got).await?;
            if let PassEnd::TooDeep = end {
                let newest = got
                    .rows
                    .iter()
                    .map(|r| r.activity.created)
                    .max()
                    .unwrap_or_else(|| chrono::Utc::now().fixed_offset());
                return Ok(LiveWalk::TooDeep { newest });
            }
            exhausted = matches!(end, PassEnd::Exhausted);
            cut = matches!(end, PassEnd::Cut);
        }
        unproven = got.unproven(cutoff);
        if cut {
            // The pass ended before the cutoff: its rows are published, the cursor waits.
            unproven = Some(unproven.map_or(cutoff, |u| u.min(cutoff)));
        }
        match unproven {
            None => break,
            Some(t) => client.telemetry().emit(telemetry::WalkRestarted {
                source: spec,
                pass: pass as u64,
                unproven: t,
            }),
        }
    }
    if unproven.is_some() && depth.patient {
        unproven = prove_by_spans(client, spec, cutoff, &mut got).await?;
    }
    if cut {
        // The last pass ended before the cutoff: what lies between is unknown (spans prove
        // only the seconds they read).
        unproven = Some(unproven.map_or(cutoff, |u| u.min(cutoff)));
    }
    let why = match cut {
        true => evidence::Why::EndedEarly,
        false => evidence::why(&got.runs),
    };
    if let Some(t) = unproven {
        client.telemetry().emit(telemetry::WalkUnproven {
            source: spec,
            unproven: t,
            passes,
            why: why.describe(),
        });
    }
    Ok(LiveWalk::Done {
        rows: got.rows,
        exhausted,
        why,
        unproven,
    })
}

/// Pages of a day walk requested at once, beyond the one being read: once a page's
/// `X-Total-Count` says how many pages the day has, the next ones are asked for while the
/// answers come in, in order (a walk against a Gitea whose every answer takes 100 ms would
/// otherwise use a tenth of a 20 requests/s budget per request in flight). Never past the
/// last page the total announces, so no request is wasted on a steady day.
pub const PAGES_AHEAD: usize = 3;

/// Reads every page of one `date=` day (or of plain paging from `first_page`, for a span) as
/// one run. A day (no `stop_below`) reads up to [`PAGES_AHEAD`] pages at once; the run is
/// the same as read one by one: pages are added in page order, each with the total of its
/// own response, which is what the evidence judges (a change between two reads shows as a
/// total that differs, whichever was read first).
async fn full_run(
    client: &GiteaClient,
    spec: &SourceSpec,
    date: Option<NaiveDate>,
    first_page: usize,
    stop_below: Option<i64>,
    got: &mut Gathered,
) -> Result<(), GiteaError> {
    full_run_from(client, spec, date, first_page, stop_below, None, got).await
}

/// [`full_run`], its first page already read (`read`: that page, read just before).
async fn full_run_from(
    client: &GiteaClient,
    spec: &SourceSpec,
    date: Option<NaiveDate>,
    first_page: usize,
    stop_below: Option<i64>,
    mut read: Option<FeedPage>,
    got: &mut Gathered,
) -> Result<(), GiteaError> {
    let mut run = Run {
        first_page,
        ..Run::default()
    };
    let mut page = first_page;
    'run: loop {
        let p = match read.take() {
            Some(p) => p,
            None => client.feed_page(spec, page, date).await?,
        };
        let limit = client.page_limit().max(1) as u64;
        let announced = p.total.map(|t| t.div_ceil(limit) as usize);
        let mut pages = vec![p];
        // The pages after this one that the total announces, read ahead in order.
        let ahead = match (stop_below, announced) {
            (None, Some(last)) if last > page => page + 1..last + 1,
            _ => page + 1..page + 1,
        };
        let mut rest = futures::stream::iter(ahead)
            .map(|n| client.feed_page(spec, n, date))
            .buffered(PAGES_AHEAD);
        loop {
            let Some(p) = pages.pop() else {
                match rest.next().await {
                    Some(p) => {
                        pages.push(p?);
                        page += 1;
                        continue;
                    }
                    None => break,
                }
            };
            let end = p.served == 0 || !p.has_next;
            let reached = stop_below.is_some_and(|lo| p.rows.iter().any(|r| r.created_unix() < lo));
            got.add(&mut run, p);
            if end {
                run.to_end = true;
            }
            if end || reached {
                // Pages read ahead past an end that came early (rows deleted since the
                // total) are dropped: the run ends here, as it would one page at a time.
                break 'run;
            }
        }
        page += 1;
    }
    got.runs.push(run);
    Ok(())
}

/// Re-reads only the pages around the unproven seconds, as laid out by the last full run,
/// one page more on each side so that each second lies inside a run. `false`: there was
/// nothing to re-read that way.
async fn targeted_runs(
    client: &GiteaClient,
    spec: &SourceSpec,
    date: Option<NaiveDate>,
    from: i64,
    layout: usize,
    got: &mut Gathered,
) -> Result<bool, GiteaError> {
    let Some(layout) = got.runs.get(layout).cloned() else {
        return Ok(false);
    };
    let unproven = evidence::unproven(&got.runs, &got.held, from);
    if unproven.is_empty() {
        return Ok(false);
    }
    let last = layout.first_page + layout.pages.len().saturating_sub(1);
    // Page ranges holding each unproven second, widened by one page, merged.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for t in unproven {
        let holding: Vec<usize> = layout
            .pages
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                let lo = p.seconds.iter().min().copied().unwrap_or(i64::MAX);
                let hi = p.seconds.iter().max().copied().unwrap_or(i64::MIN);
                lo <= t && t <= hi
            })
            .map(|(i, _)| layout.first_page + i)
            .collect();
        let (Some(&a), Some(&b)) = (holding.first(), holding.last()) else {
            // Not laid out by that run (the feed moved): read everything again.
            return Ok(false);
        };
        let (a, b) = (a.saturating_sub(1).max(1), (b + 1).min(last));
        match ranges.last_mut() {
            Some(r) if a <= r.1 + 1 && b + 1 >= r.0 => *r = (r.0.min(a), r.1.max(b)),
            _ => ranges.push((a, b)),
        }
    }
    ranges.sort_unstable();
    for (a, b) in ranges {
        let mut run = Run {
            first_page: a,
            ..Run::default()
        };
        for page in a..=b {
            let p = client.feed_page(spec, page, date).await?;
            let end_here = p.served == 0 || !p.has_next;
            got.add(&mut run, p);
            if end_here {
                run.to_end = true;
                break;
            }
        }
        got.runs.push(run);
    }
    Ok(true)
}

/// How many unproven seconds one pass reads again at another alignment.
const MAX_REALIGNED: usize = 16;

/// Reads each unproven second again where no page boundary cuts it (`evidence::alignments`):
/// the pages of another page size that hold the whole second, located by its slots in the
/// newest run that read it at one total. On MySQL, MariaDB and PostgreSQL a tie split by a
/// page boundary shows the same rows on every re-read of the same pages; at another
/// alignment the page holds every row of the second, whichever order the ties come in.
/// Stops reading a second once as many distinct rows of it are held as it has slots.
/// `false`: no unproven second could be placed (a stretch the feed moved under, or one at
/// the end of what was read), and nothing was read.
async fn realigned_runs(
    client: &GiteaClient,
    spec: &SourceSpec,
    from: i64,
    got: &mut Gathered,
) -> Result<bool, GiteaError> {
    let unproven = evidence::unproven(&got.runs, &got.held, from);
    let placed: Vec<(evidence::Placed, usize)> = unproven
        .iter()
        .filter_map(|&t| {
            let mut runs = got.runs.iter().enumerate().rev();
            runs.find_map(|(i, r)| r.place(t).map(|p| (p, i)))
        })
        .take(MAX_REALIGNED)
        .collect();
    if placed.is_empty() {
        return Ok(false);
    }
    let max = client.page_limit().max(1);
    for (p, i) in placed {
        let date = got.runs.get(i).and_then(|r| r.date);
        read_aligned(client, spec, date, p, max, got).await?;
        // Still short in a walk of the whole feed: the same second through its day's
        // `date=` query, which the database may plan otherwise (on MariaDB the first page
        // of the whole feed can scan an index while later pages sort, so a tie at the head
        // of the feed, larger than a page, can keep a row out of every alignment of the
        // whole feed's query).
        if date.is_none()
            && got.held.get(&p.second).copied().unwrap_or(0) < p.rows
            && let Some((day, first)) = got.runs.get(i).and_then(|r| day_slot(r, p, &got.rows))
        {
            let in_day = evidence::Placed {
                first,
                limit: 0,
                ..p
            };
            read_aligned(client, spec, Some(day), in_day, max, got).await?;
        }
        // Still short in a repository's feed: its rows are the actors' own (original) rows,
        // which each actor's user feed holds with the same ids, in another query.
        if got.held.get(&p.second).copied().unwrap_or(0) < p.rows {
            read_through_actors(client, spec, p.second, got).await?;
        }
        client.telemetry().emit(telemetry::WalkRealigned {
            source: spec,
            second: p.second,
            rows: p.rows as u64,
            held: got.held.get(&p.second).copied().unwrap_or(0) as u64,
        });
    }
    Ok(true)
}

/// Reads second `t` of a repository source through the user feeds of the actors of its rows
/// held so far (`/users/{actor}/activities/feeds?only-performed-by=true`: the actor's
/// original rows, the same rows with the same ids as the repository feed's). On PostgreSQL a
/// tie larger than a page can keep a row out of every page of the repository's query (its
/// bounded heapsort keeps the first rows it scans, and the full sort serves the last ones
/// only on pages past them); the user feed's query scans other rows. Only actors already seen
/// in that second are asked: a row of another actor stays unproven.
async fn read_through_actors(
    client: &GiteaClient,
    spec: &SourceSpec,
    t: i64,
    got: &mut Gathered,
) -> Result<(), GiteaError> {
    let SourceSpec::Repo { .. } = spec else {
        return Ok(());
    };
    let mut actors: Vec<String> = got
        .rows
        .iter()
        .filter(|r| r.created_unix() == t)
        .filter_map(|r| r.activity.act_user.as_ref().map(|u| u.name().to_string()))
        .filter(|n| !n.is_empty())
        .collect();
    actors.sort_unstable();
    actors.dedup();
    let repo_ids: HashSet<i64> = got
        .rows
        .iter()
        .filter(|r| r.created_unix() == t)
        .map(|r| r.activity.repo_id)
        .collect();
    for actor in actors {
        let Ok(user) = format!("user:{actor}").parse::<SourceSpec>() else {
            continue;
        };
        // Boxed: a span walk may come back here (for a repository source only, so once).
        let span = Box::pin(walk_span(client, &user, t, t)).await?;
        got.hold(
            span.rows
                .into_iter()
                .filter(|r| repo_ids.contains(&r.activity.repo_id))
                .collect(),
        );
    }
    Ok(())
}

/// Reads the pages of [`evidence::alignments`] of `p` (of `date`, if any), each page size as
/// a run, until as many distinct rows of the second are held as it has slots.
async fn read_aligned(
    client: &GiteaClient,
    spec: &SourceSpec,
    date: Option<NaiveDate>,
    p: evidence::Placed,
    max: usize,
    got: &mut Gathered,
) -> Result<(), GiteaError> {
    'sizes: for reads in evidence::alignments(p, max) {
        if got.held.get(&p.second).copied().unwrap_or(0) >= p.rows {
            break;
        }
        let Some(&(first_page, limit)) = reads.first() else {
            continue;
        };
        let mut run = Run {
            first_page,
            limit,
            ..Run::default()
        };
        for (page, limit) in reads {
            let fp = client.feed_page_sized(spec, page, limit, date).await?;
            let end = fp.served == 0 || !fp.has_next;
            got.add(&mut run, fp);
            if end {
                run.to_end = true;
                got.runs.push(run);
                continue 'sizes;
            }
        }
        got.runs.push(run);
    }
    Ok(())
}

/// The day of second `p` (as its rows' offset gives it) and its first slot in that day's
/// `date=` order: its slot in the whole feed less the rows above it of later days. Only
/// from a run of the whole feed read from its first page (every row above it was read).
fn day_slot(run: &Run, p: evidence::Placed, rows: &[ActivityRow]) -> Option<(NaiveDate, usize)> {
    if run.first_page != 1 || run.date.is_some() {
        return None;
    }
    let row = rows.iter().find(|r| r.created_unix() == p.second)?;
    let day = row.activity.created.date_naive();
    let day_end = midnight(day, offset_of(row)) + 86_399;
    let later = run
        .pages
        .iter()
        .flat_map(|pg| pg.seconds.iter())
        .take(p.first)
        .filter(|&&t| t > day_end)
        .count();
    Some((day, p.first.checked_sub(later)?))
}

/// Reads every row of one day (the server's `date=` window), newest first, until every row
/// is proven held (`X-Total-Count` distinct rows, and every split second whole): first only
/// the pages around the unproven seconds, then, if that was not enough, every page again.
pub async fn walk_day(
    client: &GiteaClient,
    spec: &SourceSpec,
    date: NaiveDate,
) -> Result<Walked, GiteaError> {
    walk_day_from(client, spec, date, None, true, None).await
}

/// [`walk_day`], the day's first page already read (`first`: read just before, e.g.
/// while the day before was walked), proving only the seconds at or above `proven_below`
/// (every second below it was proven whole and published by an earlier walk: see
/// [`DayWalker::proven_below`]). Rows below it are still read and returned (one pass reads
/// the whole day), so a row that turned visible there late is still published.
async fn walk_day_from(
    client: &GiteaClient,
    spec: &SourceSpec,
    date: NaiveDate,
    mut first: Option<FeedPage>,
    patient: bool,
    proven_below: Option<i64>,
) -> Result<Walked, GiteaError> {
    let from = proven_below.unwrap_or(i64::MIN);
    let mut got = Gathered::default();
    let mut unproven = None;
    for pass in 0..passes(patient) {
        let layout = got
            .runs
            .iter()
            .rposition(|r| r.first_page == 1)
            .unwrap_or(0);
        if pass % 2 == 0
            || !(realigned_runs(client, spec, from, &mut got).await?
                || targeted_runs(client, spec, Some(date), from, layout, &mut got).await?)
        {
            full_run_from(client, spec, Some(date), 1, None, first.take(), &mut got).await?;
        }
        unproven = got.unproven(from);
        match unproven {
            None => break,
            Some(t) => client.telemetry().emit(telemetry::WalkRestarted {
                source: spec,
                pass: pass as u64 + 1,
                unproven: t,
            }),
        }
    }
    if unproven.is_some() && patient {
        unproven = prove_by_spans(client, spec, from, &mut got).await?;
    }
    let why = evidence::why(&got.runs);
    if let Some(t) = unproven {
        client.telemetry().emit(telemetry::WalkIncomplete {
            source: spec,
            day: date,
            read: got.ids.len(),
            unproven: t,
            why: why.describe(),
        });
    }
    Ok(Walked {
        rows: got.rows,
        unproven,
        why,
        held: None,
    })
}

/// How many unproven seconds a walk reads again one by one before it gives up.
const MAX_SPANS: usize = 16;

/// The last resort of a walk whose passes could not prove every second (a long walk over a
/// feed that keeps moving: each pass takes long enough to see inserts and deletions): each
/// unproven second is read again on its own, through plain paging around it
/// ([`walk_span`]: a few pages, read quickly enough to be steady). Returns the oldest second
/// still unproven.
async fn prove_by_spans(
    client: &GiteaClient,
    spec: &SourceSpec,
    from: i64,
    got: &mut Gathered,
) -> Result<Option<i64>, GiteaError> {
    let unproven = got.unproven_all(from);
    let mut still: Option<i64> = unproven.get(MAX_SPANS).copied();
    for &t in unproven.iter().take(MAX_SPANS) {
        let span = walk_span(client, spec, t, t).await?;
        for r in span.rows {
            if got.ids.insert(r.activity.id) {
                got.rows.push(r);
            }
        }
        if span.unproven.is_some() {
            still = Some(still.map_or(t, |s| s.min(t)));
        }
    }
    Ok(still)
}

/// Reads the rows with `lo <= created <= hi` through plain paging (no `date=`): the page
/// where they start is found by bisection over the feed's pages, then read down past `lo`.
/// This is how a catch-up reaches the last hour of a 25-hour day, which no `date=` query
/// returns (FACTS.md, daylight saving time).
pub async fn walk_span(
    client: &GiteaClient,
    spec: &SourceSpec,
    lo: i64,
    hi: i64,
) -> Result<Walked, GiteaError> {
    let first = client.feed_page(spec, 1, None).await?;
    let limit = client.page_limit().max(1) as u64;
    let pages = first
        .total
        .map(|t| t.div_ceil(limit).max(1) as usize)
        .unwrap_or(1);
    // The first page whose oldest row is at or below `hi`.
    let (mut a, mut b) = (1usize, pages);
    let oldest = |p: &FeedPage| p.rows.iter().map(ActivityRow::created_unix).min();
    if oldest(&first).is_some_and(|o| o > hi) {
        a = 2;
        while a < b {
            let mid = (a + b) / 2;
            let p = client.feed_page(spec, mid, None).await?;
            match oldest(&p) {
                Some(o) if o > hi => a = mid + 1,
                _ => b = mid,
            }
        }
    } else {
        b = 1;
    }
    let mut start = b.min(a).max(1);
    let mut got = Gathered::default();
    let mut unproven = None;
    let mut layout = None;
    for pass in 0..MAX_PASSES {
        if pass % 2 == 1
            && let Some(l) = layout
            && (realigned_runs(client, spec, lo, &mut got).await?
                || targeted_runs(client, spec, None, lo, l, &mut got).await?)
        {
            unproven = got.unproven(lo).filter(|t| *t <= hi);
            match unproven {
                None => break,
                Some(t) => client.telemetry().emit(telemetry::WalkRestarted {
                    source: spec,
                    pass: pass as u64 + 1,
                    unproven: t,
                }),
            }
            continue;
        }
        // Start one page above, so rows pushed down while bisecting are not missed, and
        // further up until the run's first row is newer than `hi`.
        loop {
            let from = start.saturating_sub(1).max(1);
            full_run(client, spec, None, from, Some(lo), &mut got).await?;
            let newest_first = got
                .runs
                .last()
                .and_then(|r| r.pages.first())
                .and_then(|p| p.seconds.iter().max().copied());
            if from == 1 || newest_first.is_some_and(|n| n > hi) {
                layout = Some(got.runs.len().saturating_sub(1));
                break;
            }
            start = from.saturating_sub(1).max(1);
        }
        unproven = got.unproven(lo).filter(|t| *t <= hi);
        match unproven {
            None => break,
            Some(t) => client.telemetry().emit(telemetry::WalkRestarted {
                source: spec,
                pass: pass as u64 + 1,
                unproven: t,
            }),
        }
    }
    let why = evidence::why(&got.runs);
    if let Some(t) = unproven {
        client.telemetry().emit(telemetry::WalkUnproven {
            source: spec,
            unproven: t,
            passes: MAX_PASSES,
            why: why.describe(),
        });
    }
    let rows = got
        .rows
        .into_iter()
        .filter(|r| (lo..=hi).contains(&r.created_unix()))
        .collect();
    Ok(Walked {
        rows,
        unproven,
        why,
        held: None,
    })
}

/// The oldest row the feed still holds (one request for the total, one for the last page).
pub async fn oldest_row(
    client: &GiteaClient,
    spec: &SourceSpec,
) -> Result<Option<ActivityRow>, GiteaError> {
    let first = client.feed_page(spec, 1, None).await?;
    let limit = client.page_limit().max(1) as u64;
    let last_page = match first.total {
        Some(total) if total > limit => total.div_ceil(limit) as usize,
        _ => 1,
    };
    let mut page = if last_page == 1 {
        first
    } else {
        client.feed_page(spec, last_page, None).await?
    };
    let mut n = last_page;
    // Rows may have arrived since the total was read: follow `next` to the true end.
    while page.has_next {
        n += 1;
        let next = client.feed_page(spec, n, None).await?;
        if next.rows.is_empty() {
            break;
        }
        page = next;
    }
    Ok(page.rows.into_iter().min_by_key(|r| r.created_unix()))
}

/// The offset of a row's `created`, seconds east of UTC.
fn offset_of(r: &ActivityRow) -> i32 {
    r.activity.created.offset().local_minus_utc()
}

/// Walks days oldest first, each with the rows of its local day that no `date=` query
/// returns.
///
/// Gitea's `date=D` is `[local midnight of D, + 86,399 s]` in the server's named zone
/// (FACTS.md). The zone's name is not published, only each row's offset, so days are told
/// apart by those offsets: where the offset falls (clocks go back) between the newest row
/// known up to day D and the oldest row after it, the end of the day it fell on, up to local
/// midnight at the new offset, is read through plain paging ([`walk_span`]). Where the
/// offset rises (a 23-hour day), `date=D` also returns the first hour of D + 1: harmless,
/// those rows are matched by identity.
pub struct DayWalker {
    client: GiteaClient,
    spec: SourceSpec,
    /// The newest row before the current day: its date and offset.
    prev: Option<(NaiveDate, i32)>,
    /// No day after this one is read ahead (today, for a catch-up).
    last: NaiveDate,
    /// Whether day walks try hard to prove every second (see [`Depth::patient`]).
    patient: bool,
    /// Below this second, every second of every day was proven and published.
    proven_below: Option<i64>,
    /// The same, per day.
    proven_in: HashMap<NaiveDate, i64>,
}

/// How many empty days a walker looks past for the next row's offset.
const LOOK_AHEAD_DAYS: u64 = 7;

impl DayWalker {
    pub fn new(client: &GiteaClient, spec: &SourceSpec, last: NaiveDate) -> Self {
        DayWalker {
            client: client.clone(),
            spec: spec.clone(),
            prev: None,
            last,
            patient: true,
            proven_below: None,
            proven_in: HashMap::new(),
        }
    }

    /// Every second below `t` was proven whole by an earlier walk and its rows published
    /// (a catch-up: its cursor's position, which moves only over proven seconds and stops
    /// at the oldest unproven one, so the position itself may still be unproven). Day walks
    /// then prove only the seconds at or above `t`: an attempt after one that failed late in
    /// a day takes up where that one stopped instead of proving the day's oldest seconds
    /// again. The identities published (a cursor's window, a ledger) are no such proof.
    pub fn proven_below(mut self, t: i64) -> Self {
        self.proven_below = Some(t);
        self
    }

    /// [`Self::proven_below`] per day (a backfill: what each day's ledger says an earlier
    /// backfill of this source proved and published of that day).
    pub fn proven_in(mut self, days: HashMap<NaiveDate, i64>) -> Self {
        self.proven_in = days;
        self
    }

    /// Below which second `day` needs no proof.
    fn proven_for(&self, day: NaiveDate) -> Option<i64> {
        match (self.proven_below, self.proven_in.get(&day).copied()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Day walks make one pass each (`false`) instead of trying hard to prove every second:
    /// for a source waiting before it tries a second it could not prove again.
    pub fn patient(mut self, patient: bool) -> Self {
        self.patient = patient;
        self
    }

    /// The offset of the oldest row after `day`, looking up to [`LOOK_AHEAD_DAYS`] ahead:
    /// the oldest row of the next day when it was walked already (`next`), else the last
    /// page of the first day after it that has rows (two requests a day; reading that day
    /// whole here would read today whole at the end of every catch-up).
    async fn offset_after(
        &mut self,
        day: NaiveDate,
        next: Option<&Walked>,
    ) -> Result<Option<i32>, GiteaError> {
        if let Some(next) = next
            && let Some(oldest) = next.rows.iter().min_by_key(|r| r.created_unix())
        {
            return Ok(Some(offset_of(oldest)));
        }
        for next in day.iter_days().skip(1).take(LOOK_AHEAD_DAYS as usize) {
            if next > self.last {
                break;
            }
            let first = self.client.feed_page(&self.spec, 1, Some(next)).await?;
            if first.rows.is_empty() {
                continue;
            }
            let limit = self.client.page_limit().max(1) as u64;
            let last_page = match first.total {
                Some(total) if total > limit => total.div_ceil(limit) as usize,
                _ => 1,
            };
            let oldest_page = if last_page > 1 {
                let p = self
                    .client
                    .feed_page(&self.spec, last_page, Some(next))
                    .await?;
                // Rows deleted since the total was read: the first page is the best known.
                if p.rows.is_empty() { first } else { p }
            } else {
                first
            };
            let oldest = oldest_page
                .rows
                .iter()
                .min_by_key(|r| r.created_unix())
                .map(offset_of);
            if oldest.is_some() {
                return Ok(oldest);
            }
        }
        Ok(None)
    }

    /// The rows of `date=day`, plus those of the end of the local day that no `date=`
    /// returns, newest first is not kept: sort before use.
    pub async fn day(&mut self, day: NaiveDate) -> Result<Walked, GiteaError> {
        let proven = self.proven_for(day);
        let w = walk_day_from(&self.client, &self.spec, day, None, self.patient, proven).await?;
        self.finish(day, w, None).await
    }

    /// [`Self::day`] for a day already walked by [`walk_day`] (`w`); `next`: the walk of
    /// the day after it, when there is one (its oldest row tells the offset after `day`).
    /// Days must be finished in order, oldest first.
    async fn finish(
        &mut self,
        day: NaiveDate,
        mut w: Walked,
        next: Option<&Walked>,
    ) -> Result<Walked, GiteaError> {
        let mut rows: Vec<&ActivityRow> = w.rows.iter().collect();
        rows.sort_by_key(|r| r.created_unix());
        // The highest offset known up to this day, and the newest day it was seen on.
        let mut old: Option<(NaiveDate, i32)> = self.prev;
        for r in &rows {
            let o = offset_of(r);
            if old.is_none_or(|(_, oo)| o >= oo) {
                old = Some((r.activity.created.date_naive(), o));
            }
        }
        let newest = rows
            .last()
            .map(|r| (r.activity.created.date_naive(), offset_of(r)));
        let after = match self.offset_after(day, next).await? {
            Some(o) => Some(o),
            None => newest.map(|(_, o)| o),
        };
        if let (Some((anchor, o_old)), Some(o_new)) = (old, after)
            && o_new < o_old
            && let Some(next) = day.succ_opt()
        {
            let lo = midnight(anchor.succ_opt().unwrap_or(anchor), o_old);
            let hi = midnight(next, o_new) - 1;
            if lo <= hi {
                self.client.telemetry().emit(telemetry::DstSpan {
                    source: &self.spec,
                    day,
                    from: lo,
                    to: hi,
                });
                let span = walk_span(&self.client, &self.spec, lo, hi).await?;
                let ids: HashSet<i64> = w.rows.iter().map(|r| r.activity.id).collect();
                w.rows.extend(
                    span.rows
                        .into_iter()
                        .filter(|r| !ids.contains(&r.activity.id)),
                );
                w.unproven = match (w.unproven, span.unproven) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        if let Some(r) = w.rows.iter().max_by_key(|r| r.created_unix()) {
            self.prev = Some((r.activity.created.date_naive(), offset_of(r)));
        }
        Ok(w)
    }

    /// Walks `days` (oldest first, each one later than the one before) ahead of their use,
    /// in a task of its own, within the process's `budget` of bytes: see [`DaysAhead`].
    pub fn ahead(self, days: Vec<NaiveDate>, budget: &ReadAhead) -> DaysAhead {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let wanted = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(self.produce(days, tx, budget.clone(), wanted.clone()));
        DaysAhead { rx, task, wanted }
    }

    /// The task behind [`Self::ahead`]: walks the days in order, each with
    /// [`PAGES_AHEAD`] pages in flight, finishes each with the walk of the next one, and
    /// hands them over one by one; ends at the first error (handed over too) or when the
    /// receiver is gone.
    async fn produce(
        mut self,
        days: Vec<NaiveDate>,
        tx: tokio::sync::mpsc::Sender<(NaiveDate, Result<Walked, GiteaError>)>,
        budget: ReadAhead,
        wanted: Arc<tokio::sync::Notify>,
    ) {
        let mut pending: Option<(NaiveDate, Walked)> = None;
        // The first page of each day is read while the day before is walked, so the walk of
        // a day starts with its pages read ahead (they are known only from a first answer's
        // total) and the budget stays busy across the change of day.
        let mut first: Option<FeedPage> = None;
        for (i, &day) in days.iter().enumerate() {
            if budget.is_full() {
                // The process holds its budget of days ahead: hand the finished day over
                // without the next walk's hint (one more request for the offset after it),
                // so that nothing waits on a day only this task holds, then wait for room,
                // or until the consumer asks for a day: what it waits for is not read
                // ahead, and a consumer is never left waiting on the budget (two sources'
                // days could hold it while both wait).
                if let Some((d, w)) = pending.take() {
                    let Ok(slot) = tx.reserve().await else { return };
                    if !self.hand_over(slot, d, w, None).await {
                        return;
                    }
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = budget.room() => {}
                    _ = wanted.notified() => {}
                }
            }
            // A day is walked only once the consumer has taken the one handed over before:
            // it holds one day, this task the pending one and the one it walks.
            let Ok(slot) = tx.reserve().await else { return };
            let next_day = days.get(i + 1).copied();
            let proven = self.proven_for(day);
            let (client, spec) = (&self.client, &self.spec);
            let both = async {
                let next_first = async {
                    match next_day {
                        Some(d) => client.feed_page(spec, 1, Some(d)).await.map(Some),
                        None => Ok(None),
                    }
                };
                tokio::join!(
                    walk_day_from(client, spec, day, first.take(), self.patient, proven),
                    next_first
                )
            };
            let (walked, next_first) = tokio::select! {
                // The consumer stopped (an unproven day, an error, shutdown): stop reading.
                _ = tx.closed() => return,
                w = both => w,
            };
            // A failed early read is read again by the walk of its day.
            first = next_first.ok().flatten();
            let (next, failed) = match walked {
                Ok(mut w) => {
                    w.held = Some(budget.hold(w.bytes()));
                    (Some((day, w)), None)
                }
                Err(e) => (None, Some(e)),
            };
            let slot = match pending.take() {
                Some((d, w)) => {
                    // The walk of the day right after `d` tells the offset after it.
                    let hint = next
                        .as_ref()
                        .filter(|(n, _)| d.succ_opt() == Some(*n))
                        .map(|(_, w)| w);
                    if !self.hand_over(slot, d, w, hint).await {
                        return;
                    }
                    None
                }
                None => Some(slot),
            };
            if let Some(e) = failed {
                match slot {
                    Some(slot) => slot.send((day, Err(e))),
                    None => {
                        let _ = tx.send((day, Err(e))).await;
                    }
                }
                return;
            }
            pending = next;
        }
        if let Some((d, w)) = pending {
            let done = self.finish(d, w, None).await;
            let _ = tx.send((d, done)).await;
        }
    }

    /// Finishes day `d` (`hint`: the walk of the day after it) and hands it over in `slot`;
    /// `false` when finishing failed (the error is handed over: the walks end).
    async fn hand_over(
        &mut self,
        slot: tokio::sync::mpsc::Permit<'_, (NaiveDate, Result<Walked, GiteaError>)>,
        d: NaiveDate,
        w: Walked,
        hint: Option<&Walked>,
    ) -> bool {
        let done = self.finish(d, w, hint).await;
        let ok = done.is_ok();
        slot.send((d, done));
        ok
    }
}

/// Days walked ahead of the one being published, in order.
///
/// A catch-up or backfill reads the next day while the current one is published and
/// acknowledged and its cursor (or ledger) written: the walk runs in a task of its own,
/// which finishes a day only once the day after it is walked (for the offset after it),
/// and walks a day only once the consumer has taken the one handed over before. So at
/// most two days are in memory beside the one being published (one finished and waiting
/// or handed over, one being walked, and the first page of the next), however long the
/// gap; and, across the process, a day is walked ahead only while the days walked ahead
/// and not yet published are within the [`ReadAhead`] budget (over it, the finished day
/// is handed over at once and the walk waits for room, or for the consumer to ask for a
/// day: then a source holds the day it publishes and the one being walked). Walks only read: dropping this (an unproven day, an error, shutdown) stops the task
/// and loses nothing.
pub struct DaysAhead {
    rx: tokio::sync::mpsc::Receiver<(NaiveDate, Result<Walked, GiteaError>)>,
    task: tokio::task::JoinHandle<()>,
    /// Told by [`DaysAhead::next`]: the consumer waits for a day.
    wanted: Arc<tokio::sync::Notify>,
}

impl DaysAhead {
    /// The next day, in the order given; `None` after the last one (or after an error).
    pub async fn next(&mut self) -> Option<(NaiveDate, Result<Walked, GiteaError>)> {
        self.wanted.notify_one();
        self.rx.recv().await
    }
}

impl Drop for DaysAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use gitea_sim::{FakeGitea, NewAction, SimOptions};

    const REPO: &str = "acme/widgets";

    async fn gitea(seed: u64, page: usize) -> (FakeGitea, GiteaClient, SourceSpec) {
        let g = FakeGitea::start(SimOptions {
            max_response_items: page,
            seed,
            ..Default::default()
        })
        .await
        .expect("the fake Gitea starts");
        g.add_org("acme");
        g.add_repo("acme", "widgets");
        let cfg: crate::config::GiteaConfig = toml::from_str(&format!(
            "url = \"{}\"\nrequests_per_second = 1000\nburst = 200",
            g.url()
        ))
        .expect("gitea config");
        let client =
            GiteaClient::new(&cfg, None, crate::telemetry::Telemetry::new()).expect("client");
        client.learn_page_limit().await.expect("page size");
        let spec: SourceSpec = "repo:acme/widgets".parse().expect("spec");
        (g, client, spec)
    }

    /// `n` pushes, `tie` to a second, ending `secs_ago` seconds before now.
    fn ties(g: &FakeGitea, n: i64, tie: i64, secs_ago: i64) {
        let now = g.now();
        for i in 0..n {
            g.push_action(
                NewAction::push("bob", REPO, "main", 1)
                    .at(now - chrono::Duration::seconds(secs_ago + (n - i) / tie)),
            );
        }
    }

    fn ids(rows: &[ActivityRow]) -> HashSet<i64> {
        rows.iter().map(|r| r.activity.id).collect()
    }

    #[tokio::test]
    async fn a_live_walk_over_ties_at_every_boundary_holds_every_row_or_says_which_second() {
        let mut proven = 0;
        for seed in 1..=10 {
            let (g, client, spec) = gitea(seed, 10).await;
            ties(&g, 120, 7, 3600);
            let w = walk_back_to(&client, &spec, 0, 40).await.expect("walk");
            let LiveWalk::Done { rows, unproven, .. } = w else {
                panic!("the feed is 12 pages, the budget 40");
            };
            match unproven {
                None => {
                    proven += 1;
                    assert_eq!(ids(&rows).len(), 120, "seed {seed}: proven means whole");
                }
                // Allowed, but then the walk really may have missed a row of that second.
                Some(t) => assert!(ids(&rows).len() <= 120, "seed {seed}: unproven at {t}"),
            }
            g.shutdown().await;
        }
        // Six passes prove a static feed (the passes only reshuffle ties).
        assert_eq!(proven, 10);
    }

    #[tokio::test]
    async fn an_unproven_second_is_blamed_on_a_moving_feed_only_when_its_total_moved() {
        // One pass, as a held-back source walks: a tie split by a boundary and served in
        // another order by each read stays unproven on a steady feed: a tie, not movement.
        let mut ties_seen = 0;
        for seed in 1..=8 {
            let (g, client, spec) = gitea(seed, 10).await;
            ties(&g, 60, 15, 3600);
            let depth = Depth {
                patient: false,
                ..Depth::pages(0, 40)
            };
            let LiveWalk::Done { unproven, why, .. } =
                walk_back(&client, &spec, depth).await.expect("walk")
            else {
                panic!("within the budget");
            };
            if unproven.is_some() {
                ties_seen += 1;
                assert_eq!(why, Why::Tie, "seed {seed}: the feed did not move");
            }
            // The same walk while every read loses a row below the window: it moved.
            let victims: Vec<_> = (0..50)
                .map(|i| {
                    g.push_action(
                        NewAction::comment("bob", REPO, 2, &format!("old {i}"))
                            .at(g.now() - chrono::Duration::seconds(7200 + i)),
                    )
                })
                .collect();
            let victims = std::sync::Mutex::new(victims);
            g.set_feed_hook(Some(Box::new(move |_, w| {
                if let Some(v) = victims.lock().unwrap_or_else(|e| e.into_inner()).pop() {
                    w.soft_delete(v);
                }
            })));
            let cutoff = g.now().timestamp() - 3600 - 10;
            let LiveWalk::Done { unproven, why, .. } =
                walk_back(&client, &spec, Depth::pages(cutoff, 40))
                    .await
                    .expect("walk")
            else {
                panic!("within the budget");
            };
            assert!(
                unproven.is_some(),
                "seed {seed}: nothing read across a change is proven"
            );
            assert_eq!(why, Why::Changed, "seed {seed}");
            g.shutdown().await;
        }
        assert!(ties_seen > 0, "no seed split a tie unprovably in one pass");
    }

    #[tokio::test]
    async fn a_split_second_already_published_is_proven_again_by_the_rows_read() {
        let (g, client, spec) = gitea(2, 10).await;
        ties(&g, 60, 15, 3600);
        let LiveWalk::Done { unproven, .. } =
            walk_back_to(&client, &spec, 0, 40).await.expect("walk")
        else {
            panic!("within the budget");
        };
        assert_eq!(unproven, None);
        // The next poll proves the window again from what it reads (its identities were
        // published, but are no proof), at other alignments where a boundary splits a tie.
        g.clear_requests();
        let LiveWalk::Done { rows, unproven, .. } = walk_back(&client, &spec, Depth::pages(0, 40))
            .await
            .expect("walk")
        else {
            panic!("within the budget");
        };
        assert_eq!(unproven, None);
        assert_eq!(ids(&rows).len(), 60);
        let queries: Vec<String> = g.requests().into_iter().map(|r| r.query).collect();
        eprintln!(
            "a window of six pages, four ties of 15: {} requests {queries:?}",
            queries.len()
        );
        // One pass over the six pages, then only reads at other page sizes (up to three
        // sizes of up to three pages for each tie a boundary splits): no second pass.
        let pass = queries.iter().filter(|q| q.ends_with("&limit=10")).count();
        assert_eq!(pass, 6, "{queries:?}");
        assert!(queries.len() <= 6 + 3 * 3 * 3, "{queries:?}");
        g.shutdown().await;
    }

    #[tokio::test]
    async fn a_published_row_deleted_since_does_not_stand_in_for_a_row_the_walk_never_saw() {
        // Second `s` held A and B when they were published; since, A was deleted and C,
        // of the same second, turned visible (its transaction committed late). Pages of
        // two split `s` across a boundary: a pass that shows B on both sides never sees C.
        // A and B are in the cursor's window, but only rows read by the walk count towards
        // proving `s` whole: such a pass leaves `s` unproven, and the cursor waits.
        let mut hidden_c = 0;
        for seed in 1..=16 {
            let (g, client, spec) = gitea(seed, 2).await;
            let now = g.now();
            let s = now - chrono::Duration::seconds(3600);
            let at = |d: i64| s + chrono::Duration::seconds(d);
            g.push_action(NewAction::comment("bob", REPO, 1, "newer").at(at(10)));
            let a = g.push_action(NewAction::comment("bob", REPO, 1, "a").at(at(0)));
            g.push_action(NewAction::comment("bob", REPO, 1, "b").at(at(0)));
            let c = g.push_action(NewAction::comment("bob", REPO, 1, "c").at(at(0)).hidden());
            g.push_action(NewAction::comment("bob", REPO, 1, "older").at(at(-10)));
            let LiveWalk::Done { rows, .. } =
                walk_back_to(&client, &spec, 0, 40).await.expect("walk")
            else {
                panic!("within the budget");
            };
            assert_eq!(
                ids(&rows).len(),
                4,
                "seed {seed}: published before: {rows:?}"
            );
            g.reveal(c);
            g.soft_delete(a);
            // One pass, as a source holding a second back walks between hard tries.
            let depth = Depth {
                patient: false,
                ..Depth::pages(0, 40)
            };
            let LiveWalk::Done { rows, unproven, .. } =
                walk_back(&client, &spec, depth).await.expect("walk")
            else {
                panic!("within the budget");
            };
            let saw_c = rows.iter().any(|r| r.activity.content.ends_with("|c"));
            if !saw_c {
                hidden_c += 1;
                assert!(
                    unproven.is_some_and(|u| u <= s.timestamp()),
                    "seed {seed}: C was never read, yet the walk proved its second (unproven {unproven:?}, second {})",
                    s.timestamp()
                );
            }
            g.shutdown().await;
        }
        assert!(hidden_c > 0, "no seed hid C: the test proves nothing");
    }

    /// Two catch-ups walking ahead under a budget each of their days alone exceeds: every
    /// day still arrives, in order (a walk that waited for room while holding a finished
    /// day nobody else could publish would wait forever), and nothing stays counted.
    #[tokio::test]
    async fn walks_ahead_over_a_shared_byte_budget_deliver_every_day_and_release_it() {
        let (g, client, spec) = gitea(5, 10).await;
        g.add_repo("acme", "gadgets");
        let other: SourceSpec = "repo:acme/gadgets".parse().expect("spec");
        let now = g.now();
        let days: Vec<NaiveDate> = (1..=5)
            .rev()
            .map(|d| (now - chrono::Duration::days(d)).date_naive())
            .collect();
        for d in 1..=5 {
            for (i, repo) in (0..12).flat_map(|i| [(i, REPO), (i, "acme/gadgets")]) {
                g.push_action(
                    NewAction::push("bob", repo, "main", 1)
                        .at(now - chrono::Duration::days(d) + chrono::Duration::seconds(i)),
                );
            }
        }
        let budget = ReadAhead::new(1);
        let take_all = |spec: SourceSpec| {
            let ahead =
                DayWalker::new(&client, &spec, now.date_naive()).ahead(days.clone(), &budget);
            async move {
                let mut ahead = ahead;
                let (mut seen, mut rows, mut holding) = (Vec::new(), 0, None);
                while let Some((day, w)) = ahead.next().await {
                    let w = w.expect("day walk");
                    seen.push(day);
                    rows += w.rows.len();
                    // Held until the next day arrives, as a day is held while published.
                    holding = Some(w);
                }
                drop(holding);
                (seen, rows)
            }
        };
        let both = async { tokio::join!(take_all(spec.clone()), take_all(other)) };
        let ((a, a_rows), (b, b_rows)) =
            tokio::time::timeout(std::time::Duration::from_secs(60), both)
                .await
                .expect("every day arrives under the budget");
        assert_eq!((a, b), (days.clone(), days));
        assert_eq!((a_rows, b_rows), (60, 60));
        assert_eq!(
            budget.held(),
            0,
            "every day's bytes are released once dropped"
        );
        g.shutdown().await;
    }

    #[tokio::test]
    async fn a_day_walk_re_reads_only_the_pages_around_split_seconds() {
        let (g, client, spec) = gitea(3, 10).await;
        ties(&g, 200, 5, 7200);
        // The day of the newest tie (two hours ago: yesterday, early in the server's day).
        let day = (g.now() - chrono::Duration::seconds(7200)).date_naive();
        g.clear_requests();
        let w = walk_day(&client, &spec, day).await.expect("walk");
        let today = g
            .logical_actions()
            .iter()
            .filter(|a| a.created.date_naive() == day)
            .count();
        assert_eq!(w.unproven, None);
        assert_eq!(ids(&w.rows).len(), today);
        let pages = today.div_ceil(10);
        let requests = g.requests().len();
        // One full pass, and re-reads of the pages around split seconds: far fewer than the
        // six full passes the budget allows. Here every page boundary splits a second of
        // five rows, so a split second is proven only once the reads showed all five (each
        // request shuffles them afresh): a full pass, a targeted one and, on most seeds, a
        // third, whether pages are read one by one or three at once.
        assert!(
            requests <= 3 * pages,
            "{requests} requests for {pages} pages"
        );
        g.shutdown().await;
    }

    #[tokio::test]
    async fn a_walk_ends_on_a_feed_that_keeps_moving() {
        let (g, client, spec) = gitea(5, 10).await;
        ties(&g, 60, 3, 3600);
        // A new row before every page served: every page boundary moves, nothing is hidden.
        let served = Arc::new(AtomicUsize::new(0));
        let s = served.clone();
        g.set_feed_hook(Some(Box::new(move |_, w| {
            s.fetch_add(1, Ordering::Relaxed);
            w.push_action(NewAction::push("carol", REPO, "busy", 1));
        })));
        let w = walk_back_to(&client, &spec, 0, 100).await.expect("walk");
        g.set_feed_hook(None);
        let LiveWalk::Done { rows, .. } = w else {
            panic!("within the budget");
        };
        let n = served.load(Ordering::Relaxed);
        assert!(n <= 6 * 20, "ended after {n} pages");
        // Every row that existed before the walk began is held.
        let held = rows
            .iter()
            .filter(|r| r.activity.ref_name == "refs/heads/main")
            .count();
        assert_eq!(held, 60);
        g.shutdown().await;
    }

    #[tokio::test]
    async fn a_walk_that_cannot_prove_a_stretch_says_where_and_stops() {
        let (g, client, spec) = gitea(7, 10).await;
        ties(&g, 60, 1, 3600);
        // A row newer than the ties deleted before every page: the total always shrinks
        // mid-walk and pulls the rows below up, so a row may slip past every read.
        let victims: Arc<std::sync::Mutex<Vec<gitea_sim::ActionId>>> = Default::default();
        {
            let now = g.now();
            let mut v = victims.lock().expect("lock");
            // More victims than the walk reads pages, re-reads and spans included.
            for i in 0..1000 {
                v.push(
                    g.push_action(
                        NewAction::push("dave", REPO, "doomed", 1)
                            .at(now - chrono::Duration::seconds(100 + i / 10)),
                    ),
                );
            }
        }
        let v = victims.clone();
        g.set_feed_hook(Some(Box::new(move |_, w| {
            if let Some(id) = v.lock().expect("lock").pop() {
                w.soft_delete(id);
            }
        })));
        let w = walk_back_to(&client, &spec, 0, 200).await.expect("walk");
        g.set_feed_hook(None);
        let LiveWalk::Done { unproven, .. } = w else {
            panic!("within the budget");
        };
        assert!(
            unproven.is_some(),
            "a feed that shrinks under every page is never proven"
        );
        g.shutdown().await;
    }

    #[tokio::test]
    async fn a_span_walk_reads_exactly_the_rows_of_a_stretch_deep_in_the_feed() {
        let (g, client, spec) = gitea(11, 10).await;
        ties(&g, 300, 4, 60);
        let now = g.now().timestamp();
        let (lo, hi) = (now - 60 - 50, now - 60 - 30);
        g.clear_requests();
        let w = walk_span(&client, &spec, lo, hi).await.expect("walk");
        let want = g
            .logical_actions()
            .iter()
            .filter(|a| (lo..=hi).contains(&a.created.timestamp()))
            .count();
        assert_eq!(w.unproven, None);
        assert_eq!(ids(&w.rows).len(), want);
        assert!(w.rows.iter().all(|r| (lo..=hi).contains(&r.created_unix())));
        // Bisection over 30 pages, then the few pages of the stretch: not a walk from page 1.
        assert!(g.requests().len() < 30, "{} requests", g.requests().len());
        g.shutdown().await;
    }
}
