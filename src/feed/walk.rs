//! Reading a feed: newest first down to a cutoff (live polls), one whole day (catch-up), and
//! the oldest row still there (gap detection). Each walk de-duplicates rows by id and starts
//! over when `X-Total-Count` shows that rows vanished under it (offset pages shifted up).

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, NaiveDate};

use crate::gitea::{ActivityRow, GiteaClient, GiteaError};
use crate::source::SourceSpec;
use crate::telemetry;

/// How often one walk may start over before it goes on with what it has.
const MAX_RESTARTS: usize = 5;

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

/// Reads pages from the newest down until a row older than `cutoff` (Unix seconds) shows up,
/// the feed ends, or `max_pages` were read.
pub async fn walk_back_to(
    client: &GiteaClient,
    spec: &SourceSpec,
    cutoff: i64,
    max_pages: usize,
) -> Result<LiveWalk, GiteaError> {
    let mut restarts = 0;
    'walk: loop {
        let mut rows = Vec::new();
        let mut ids = HashSet::new();
        let mut first_total = None;
        let mut page = 1;
        loop {
            let p = client.feed_page(spec, page, None).await?;
            if let (Some(first), Some(now)) = (first_total, p.total)
                && now < first
                && restarts < MAX_RESTARTS
            {
                restarts += 1;
                telemetry::walk_restarted(spec, first, now);
                continue 'walk;
            }
            first_total = first_total.or(p.total);
            let short = p.rows.len() < client.page_limit();
            let reached = p.rows.iter().any(|r| r.created_unix() < cutoff);
            for r in p.rows {
                if ids.insert(r.activity.id) {
                    rows.push(r);
                }
            }
            if reached || short || !p.has_next {
                return Ok(LiveWalk::Done {
                    rows,
                    exhausted: !reached,
                });
            }
            if page >= max_pages {
                let newest = rows
                    .iter()
                    .map(|r| r.activity.created)
                    .max()
                    .unwrap_or_else(|| chrono::Utc::now().fixed_offset());
                return Ok(LiveWalk::TooDeep { newest });
            }
            page += 1;
        }
    }
}

/// Reads every row of one day (server time zone), newest first.
///
/// Rows of the same second come back in a new random order on every request, so a tie
/// that straddles a page boundary can show one row twice and hide another; shifting pages do
/// the same. The walk therefore passes over the day again (keeping what it has, de-duplicated
/// by row id) until it holds as many distinct rows as `X-Total-Count` says the day has.
pub async fn walk_day(
    client: &GiteaClient,
    spec: &SourceSpec,
    date: NaiveDate,
) -> Result<Vec<ActivityRow>, GiteaError> {
    const MAX_PASSES: usize = 25;
    let mut rows = Vec::new();
    let mut ids = HashSet::new();
    let mut total = None;
    for _pass in 0..MAX_PASSES {
        let mut page = 1;
        loop {
            let p = client.feed_page(spec, page, Some(date)).await?;
            total = p.total.or(total);
            let short = p.rows.len() < client.page_limit();
            for r in p.rows {
                if ids.insert(r.activity.id) {
                    rows.push(r);
                }
            }
            if short || !p.has_next {
                break;
            }
            page += 1;
        }
        match total {
            Some(t) if (ids.len() as u64) < t => {
                telemetry::walk_restarted(spec, t, ids.len() as u64)
            }
            _ => return Ok(rows),
        }
    }
    telemetry::walk_incomplete(spec, date, ids.len(), total.unwrap_or_default());
    Ok(rows)
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
    while page.has_next && page.rows.len() >= client.page_limit() {
        n += 1;
        let next = client.feed_page(spec, n, None).await?;
        if next.rows.is_empty() {
            break;
        }
        page = next;
    }
    Ok(page.rows.into_iter().min_by_key(|r| r.created_unix()))
}
