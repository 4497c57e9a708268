//! Reading a feed: newest first down to a cutoff (live polls), one whole day (catch-up), and
//! the oldest row still there (gap detection). Each walk de-duplicates rows by id and starts
//! over when `X-Total-Count` shows that rows vanished under it (offset pages shifted up).

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, NaiveDate};

use crate::gitea::{ActivityRow, GiteaClient, GiteaError};
use crate::source::SourceSpec;
use crate::telemetry;

/// How many passes one walk makes at most before it goes on with what it has.
const MAX_PASSES: usize = 6;

/// The outcome of a live walk.
#[derive(Debug)]
pub enum LiveWalk {
    /// Every row down to the cutoff (and the rest of the last page), newest first.
    Done {
        rows: Vec<ActivityRow>,
        /// The feed ended before a row older than the cutoff: these are all its rows.
        exhausted: bool,
    },
    /// More than the page budget lies above the cutoff: catch up by day instead.
    TooDeep {
        /// `created` of the newest row (server time zone).
        newest: DateTime<FixedOffset>,
    },
}

/// Rows gathered over the passes of one walk, de-duplicated by row id.
#[derive(Default)]
struct Gathered {
    rows: Vec<ActivityRow>,
    ids: HashSet<i64>,
}

impl Gathered {
    /// Adds a page's rows; returns (new rows, rows this pass had already read).
    fn add(&mut self, page: Vec<ActivityRow>, pass_ids: &mut HashSet<i64>) -> (usize, usize) {
        let (mut new, mut again) = (0, 0);
        for r in page {
            if !pass_ids.insert(r.activity.id) {
                again += 1;
            }
            if self.ids.insert(r.activity.id) {
                self.rows.push(r);
                new += 1;
            }
        }
        (new, again)
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
}

/// One pass from page 1 down to the cutoff. Returns how it ended, whether it saw the pages
/// move (a row read twice in this pass, or the total shrinking: either means a row may have
/// been hidden), and how many rows it added.
async fn live_pass(
    client: &GiteaClient,
    spec: &SourceSpec,
    cutoff: i64,
    max_pages: usize,
    got: &mut Gathered,
) -> Result<(PassEnd, bool, usize), GiteaError> {
    let mut pass_ids = HashSet::new();
    let (mut moved, mut added) = (false, 0);
    let mut first_total = None;
    let mut page = 1;
    loop {
        let p = client.feed_page(spec, page, None).await?;
        if let (Some(first), Some(now)) = (first_total, p.total)
            && now < first
        {
            moved = true;
        }
        first_total = first_total.or(p.total);
        let reached = p.rows.iter().any(|r| r.created_unix() < cutoff);
        let end = p.served == 0 || !p.has_next;
        let (new, again) = got.add(p.rows, &mut pass_ids);
        added += new;
        moved |= again > 0;
        if reached {
            return Ok((PassEnd::Reached, moved, added));
        }
        if end {
            return Ok((PassEnd::Exhausted, moved, added));
        }
        if page >= max_pages {
            return Ok((PassEnd::TooDeep, moved, added));
        }
        page += 1;
    }
}

/// Reads pages from the newest down until a row older than `cutoff` (Unix seconds) shows up,
/// the feed ends, or `max_pages` were read.
///
/// Same-second rows come back in a new random order on every request, so a tie straddling a
/// page boundary can show one row twice and hide another (and a deletion can pull a row past
/// the walk). A pass that read a row twice, or saw the total shrink, is followed by another
/// pass, until one finds nothing new.
pub async fn walk_back_to(
    client: &GiteaClient,
    spec: &SourceSpec,
    cutoff: i64,
    max_pages: usize,
) -> Result<LiveWalk, GiteaError> {
    let mut got = Gathered::default();
    let mut passes = 0;
    loop {
        let (end, moved, added) = live_pass(client, spec, cutoff, max_pages, &mut got).await?;
        passes += 1;
        if let PassEnd::TooDeep = end {
            let newest = got
                .rows
                .iter()
                .map(|r| r.activity.created)
                .max()
                .unwrap_or_else(|| chrono::Utc::now().fixed_offset());
            return Ok(LiveWalk::TooDeep { newest });
        }
        let again = moved && (passes == 1 || added > 0) && passes < MAX_PASSES;
        if !again {
            return Ok(LiveWalk::Done {
                rows: got.rows,
                exhausted: matches!(end, PassEnd::Exhausted),
            });
        }
        telemetry::walk_restarted(spec, passes as u64, added as u64);
    }
}

/// Reads every row of one day (server time zone), newest first.
///
/// Rows of the same second come back in a new random order on every request, so a tie that
/// straddles a page boundary can show one row twice and hide another; shifting pages do the
/// same. The walk therefore reads again until it holds as many distinct rows as
/// `X-Total-Count` says the day has: first only the pages on both sides of each boundary
/// that splits a second (where ties can hide), then, if that was not enough, every page.
pub async fn walk_day(
    client: &GiteaClient,
    spec: &SourceSpec,
    date: NaiveDate,
) -> Result<Vec<ActivityRow>, GiteaError> {
    let mut got = Gathered::default();
    let mut total = None;
    // (newest, oldest) `created` of each page of the last full pass.
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for pass in 0..MAX_PASSES {
        let pages: Vec<usize> = if pass % 2 == 0 {
            spans.clear();
            Vec::new() // every page, until the feed ends
        } else {
            // Boundaries where the oldest second of page p is the newest of page p + 1.
            let mut ps = Vec::new();
            for (i, w) in spans.windows(2).enumerate() {
                if w[0].1 == w[1].0 {
                    ps.extend([i + 1, i + 2]);
                }
            }
            ps.dedup();
            if ps.is_empty() {
                continue;
            }
            ps
        };
        let mut pass_ids = HashSet::new();
        if pages.is_empty() {
            let mut page = 1;
            loop {
                let p = client.feed_page(spec, page, Some(date)).await?;
                total = p.total.or(total);
                let end = p.served == 0 || !p.has_next;
                let newest = p
                    .rows
                    .iter()
                    .map(ActivityRow::created_unix)
                    .max()
                    .unwrap_or(0);
                let oldest = p
                    .rows
                    .iter()
                    .map(ActivityRow::created_unix)
                    .min()
                    .unwrap_or(0);
                spans.push((newest, oldest));
                got.add(p.rows, &mut pass_ids);
                if end {
                    break;
                }
                page += 1;
            }
        } else {
            for page in pages {
                let p = client.feed_page(spec, page, Some(date)).await?;
                total = p.total.or(total);
                got.add(p.rows, &mut pass_ids);
            }
        }
        match total {
            Some(t) if (got.ids.len() as u64) < t => {
                telemetry::walk_restarted(spec, t, got.ids.len() as u64)
            }
            _ => return Ok(got.rows),
        }
    }
    telemetry::walk_incomplete(spec, date, got.ids.len(), total.unwrap_or_default());
    Ok(got.rows)
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
