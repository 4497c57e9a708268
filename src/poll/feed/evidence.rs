//! Proof that a walk holds every row of the range it read.
//!
//! Gitea pages by offset over rows ordered by `created` (one-second resolution) alone, and
//! returns the rows of one second in a new random order on every request. A second whose
//! rows straddle a page boundary (a *split* second) can therefore show one row twice and hide
//! another; a row deleted between two page reads pulls the rows below it up, so one is never
//! served. A walk may end only with positive evidence that it holds every row:
//!
//! * a second that lies inside one page was served whole by that one request;
//! * a split second is proven by a run of pages read at one `X-Total-Count` (nothing was
//!   inserted or deleted between those requests) when the walk holds at least as many
//!   distinct rows of that second as the slots the second filled on those pages;
//! * where the total shrank between two pages, every second between them is suspect until
//!   another run reads that stretch at a steady total; where it grew (inserts push rows down:
//!   a row seen twice, none hidden), only a split second there is unproven;
//! * a run over the whole feed (or day) at a steady total must hold as many distinct rows as
//!   that total.
//!
//! [`oldest_unproven`] combines every run of a walk: the oldest second that some run flags, or
//! that holds a row, and that no run proves. The cursor must not move past it.

use std::collections::HashMap;

/// One page as one request served it.
#[derive(Debug, Clone, Default)]
pub struct PageShape {
    /// `X-Total-Count` of that response.
    pub total: Option<u64>,
    /// `created` (Unix seconds) of each row, in the order served (newest first).
    pub seconds: Vec<i64>,
}

impl PageShape {
    fn newest(&self) -> Option<i64> {
        self.seconds.iter().copied().max()
    }
    fn oldest(&self) -> Option<i64> {
        self.seconds.iter().copied().min()
    }
}

/// Contiguous pages read one after the other, at one page size.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Number of the first page (1-based).
    pub first_page: usize,
    /// The page size the run was read at (`limit`; 0: not known): page `p` starts at row
    /// `(p - 1) * limit` of the feed's order.
    pub limit: usize,
    /// The `date=` day the run was read with (`None`: the whole feed).
    pub date: Option<chrono::NaiveDate>,
    pub pages: Vec<PageShape>,
    /// The last page had no next page: nothing older exists.
    pub to_end: bool,
}

/// Inclusive range of seconds.
pub type Span = (i64, i64);

/// What one run proves and what it flags.
#[derive(Debug, Default, PartialEq)]
pub struct Judgement {
    pub proven: Vec<Span>,
    pub suspect: Vec<Span>,
}

impl Run {
    /// Judges the run against the distinct rows held per second (over every run of the walk).
    pub fn judge(&self, held: &HashMap<i64, usize>) -> Judgement {
        let pages: Vec<&PageShape> = self
            .pages
            .iter()
            .filter(|p| !p.seconds.is_empty())
            .collect();
        let (Some(first), Some(last)) = (pages.first(), pages.last()) else {
            return Judgement::default();
        };
        let (Some(mut hi), Some(mut lo)) = (first.newest(), last.oldest()) else {
            return Judgement::default();
        };
        // Edge seconds may continue on pages this run did not read.
        if self.first_page > 1 {
            hi -= 1;
        }
        if !self.to_end {
            lo += 1;
        }
        let mut not_proven: Vec<Span> = Vec::new();
        let mut suspect: Vec<Span> = Vec::new();
        for (i, w) in pages.windows(2).enumerate() {
            let (a, b) = (w[0], w[1]);
            let (Some(a_old), Some(b_new)) = (a.oldest(), b.newest()) else {
                continue;
            };
            let shrank = matches!((a.total, b.total), (Some(x), Some(y)) if y < x);
            if shrank {
                // A row between these two pages may have been pulled up past the walk.
                suspect.push((b_new, a_old));
                not_proven.push((b_new, a_old));
                continue;
            }
            if a_old != b_new {
                continue;
            }
            let s = a_old;
            // Every page of this run holding second `s` (contiguous, in page order), and its
            // slots there.
            let mut first = i;
            while first > 0 && pages[first - 1].seconds.contains(&s) {
                first -= 1;
            }
            let mut last = i + 1;
            while last + 1 < pages.len() && pages[last + 1].seconds.contains(&s) {
                last += 1;
            }
            let holding = &pages[first..=last];
            let count = |p: &PageShape| p.seconds.iter().filter(|&&t| t == s).count();
            let slots: usize = holding.iter().map(|p| count(p)).sum();
            // Rows inserted above `s` between two page reads push it down: the lower page
            // shows again up to that many of the upper page's last rows, so that many of its
            // slots may be repeats, not hidden rows. A total that shrank was flagged above.
            let mut repeats = 0usize;
            let mut known = true;
            for w in holding.windows(2) {
                match (w[0].total, w[1].total) {
                    (Some(a), Some(b)) if b >= a => {
                        repeats += ((b - a) as usize).min(count(w[0]));
                    }
                    (None, None) => {}
                    _ => known = false,
                }
            }
            let have = held.get(&s).copied().unwrap_or(0);
            if !known || have + repeats < slots {
                not_proven.push((s, s));
            }
        }
        // A whole run at a steady total holds its total when every split second is proven
        // (each slot of a second inside one page is a distinct row of it). Short anyway: the
        // server's pages and its count disagree (rows it counts but does not serve), and no
        // second of the run can be trusted. Short with a split second unproven: that second
        // explains it, and only it is read again.
        if self.first_page == 1 && self.to_end && not_proven.is_empty() {
            let steady = pages.windows(2).all(|w| w[0].total == w[1].total);
            if let (true, Some(total)) = (steady, first.total) {
                let have: usize = held
                    .iter()
                    .filter(|(t, _)| (lo..=hi).contains(*t))
                    .map(|(_, n)| n)
                    .sum();
                if (have as u64) < total {
                    return Judgement {
                        proven: Vec::new(),
                        suspect: vec![(lo, hi)],
                    };
                }
            }
        }
        let proven = if lo <= hi {
            subtract((lo, hi), &not_proven)
        } else {
            Vec::new()
        };
        Judgement { proven, suspect }
    }
}

/// Where a second lies in the feed's order, as one run read it: its rows fill the slots
/// `first..first + rows` (0-based positions over the whole feed or day). Rows are ordered by
/// `created` alone, so a second's rows are contiguous, and at a steady total every slot of
/// it is a distinct row of it, whichever order the database served the ties in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub second: i64,
    pub first: usize,
    pub rows: usize,
    /// The page size of the read that placed it (whose boundaries cut it).
    pub limit: usize,
}

impl Run {
    /// Where `second` lies, when this run read every slot of it at one total: none when the
    /// run's page size is unknown, when the second touches an end of the run that may
    /// continue on a page it did not read, or when the total changed across its pages (the
    /// slots moved between the reads).
    pub fn place(&self, second: i64) -> Option<Placed> {
        if self.limit == 0 {
            return None;
        }
        let holding: Vec<usize> = (0..self.pages.len())
            .filter(|&k| self.pages[k].seconds.contains(&second))
            .collect();
        let (&k0, &k1) = (holding.first()?, holding.last()?);
        if k1 - k0 + 1 != holding.len() {
            return None;
        }
        let pages = &self.pages[k0..=k1];
        if pages.windows(2).any(|w| w[0].total != w[1].total) {
            return None;
        }
        let first_slot = pages[0].seconds.iter().position(|&t| t == second)?;
        let last_page = &pages[pages.len() - 1];
        let last_slot = last_page.seconds.iter().rposition(|&t| t == second)?;
        // The run's first slot may continue a second from the page above it; its last slot
        // one on the page below.
        if k0 == 0 && first_slot == 0 && self.first_page > 1 {
            return None;
        }
        if k1 + 1 == self.pages.len() && last_slot + 1 == last_page.seconds.len() && !self.to_end {
            return None;
        }
        let rows = pages
            .iter()
            .map(|p| p.seconds.iter().filter(|&&t| t == second).count())
            .sum();
        Some(Placed {
            second,
            first: (self.first_page - 1 + k0) * self.limit + first_slot,
            rows,
            limit: self.limit,
        })
    }
}

/// Reads (`(page, limit)`, 1-based pages, grouped by page size) that serve every slot of
/// `placed` at another alignment than the one that split it, at page sizes up to `max`:
/// re-reading the same pages proves nothing where the database serves ties in an order fixed
/// by `LIMIT` and `OFFSET` (MySQL, MariaDB, PostgreSQL), so a page boundary must fall
/// elsewhere. A second that fits a page is read in one page, with a row of another second on
/// each side where the page has room (the run then proves it by itself); a larger one is
/// read whole at up to three page sizes, each cutting it at other places, then (up to
/// [`MAX_ONE_BY_ONE`] rows) one row a page. The reads stop once the second is proven.
pub fn alignments(placed: Placed, max: usize) -> Vec<Vec<(usize, usize)>> {
    let (a, n) = (placed.first, placed.rows.max(1));
    let b = a + n - 1;
    if max == 0 {
        return Vec::new();
    }
    // With a neighbour on each side: slots a - 1 and b + 1 on the page too.
    if n + 2 <= max {
        let lo = a.saturating_sub(1);
        if let Some(l) = (n + 2..=max).find(|&l| lo / l == (b + 1) / l) {
            return vec![vec![(lo / l + 1, l)]];
        }
    }
    if n <= max
        && let Some(l) = (n..=max).find(|&l| a / l == b / l)
    {
        return vec![vec![(a / l + 1, l)]];
    }
    // Larger than a page: several page sizes, whose boundaries inside the second differ
    // from each other's and from those of the read that placed it (where the page sizes
    // allow: then at least in one place).
    let mut out: Vec<Vec<(usize, usize)>> = Vec::new();
    let cuts_at = |l: usize| -> Vec<usize> { (a / l + 1..=b / l).map(|k| k * l).collect() };
    let mut cuts: Vec<Vec<usize>> = match placed.limit {
        0 => Vec::new(),
        l => vec![cuts_at(l)],
    };
    for l in (max.div_ceil(2).max(1)..=max).rev() {
        let pages: Vec<(usize, usize)> = (a / l..=b / l).map(|k| (k + 1, l)).collect();
        let cut = cuts_at(l);
        if cuts.iter().any(|c| c.iter().any(|x| cut.contains(x))) {
            continue;
        }
        cuts.push(cut);
        out.push(pages);
        if out.len() == 3 {
            return out;
        }
    }
    // Then one row a page, where that costs no more than a few pages of the server's size:
    // every slot read by a query of its own (on MariaDB and PostgreSQL each such query
    // sorts the tie afresh), which serves rows no boundary-cutting read did.
    if n <= MAX_ONE_BY_ONE && !cuts.iter().any(|c| c.len() + 1 == n) {
        out.push((a..=b).map(|k| (k + 1, 1)).collect());
    }
    out
}

/// The largest second read one row a page by [`alignments`] (that many requests).
pub const MAX_ONE_BY_ONE: usize = 64;

/// `span` minus every span of `holes`.
fn subtract(span: Span, holes: &[Span]) -> Vec<Span> {
    let mut out = vec![span];
    for &(hlo, hhi) in holes {
        let mut next = Vec::with_capacity(out.len() + 1);
        for (lo, hi) in out {
            if hhi < lo || hlo > hi {
                next.push((lo, hi));
                continue;
            }
            if hlo > lo {
                next.push((lo, hlo - 1));
            }
            if hhi < hi {
                next.push((hhi + 1, hi));
            }
        }
        out = next;
    }
    out
}

fn covered(t: i64, proven: &[Span]) -> bool {
    proven.iter().any(|&(lo, hi)| lo <= t && t <= hi)
}

/// The seconds at or above `from` that the walk cannot prove it holds whole, oldest first:
/// each second of a held row, and the oldest second of each suspect stretch, that no run
/// proves. Empty: everything is proven.
pub fn unproven(runs: &[Run], held: &HashMap<i64, usize>, from: i64) -> Vec<i64> {
    let mut proven = Vec::new();
    let mut suspect = Vec::new();
    for run in runs {
        let j = run.judge(held);
        proven.extend(j.proven);
        suspect.extend(j.suspect);
    }
    let mut out: Vec<i64> = held
        .keys()
        .copied()
        .filter(|&t| t >= from && !covered(t, &proven))
        .collect();
    for &(lo, hi) in &suspect {
        if lo.max(from) <= hi {
            out.extend(
                subtract((lo.max(from), hi), &proven)
                    .iter()
                    .map(|&(l, _)| l),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Why a walk could not prove a second whole, as far as its reads tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Why {
    /// Every read of each listing saw the same `X-Total-Count`: a same-second tie that no
    /// page alignment tried served whole.
    #[default]
    Tie,
    /// The total of one listing differed between reads: rows were added or deleted while
    /// the feed was read, and one may have moved past the pages read.
    Changed,
    /// A page came back empty while the feed's total said rows lay there.
    EndedEarly,
}

impl Why {
    /// What the logs say.
    pub fn describe(self) -> &'static str {
        match self {
            Why::Tie => {
                "the feed was steady between reads: a same-second tie that no page alignment tried served whole"
            }
            Why::Changed => {
                "the feed changed while it was read (its X-Total-Count differed between reads): a row may have moved past the pages read"
            }
            Why::EndedEarly => {
                "a page came back empty while the feed's X-Total-Count said rows lay there"
            }
        }
    }
}

/// Why the seconds of `runs` that are not proven are not: [`Why::Changed`] when two reads
/// of one listing (the whole feed, or one `date=` day) saw different totals, else
/// [`Why::Tie`].
pub fn why(runs: &[Run]) -> Why {
    let mut totals: HashMap<Option<chrono::NaiveDate>, u64> = HashMap::new();
    for r in runs {
        for t in r.pages.iter().filter_map(|p| p.total) {
            if *totals.entry(r.date).or_insert(t) != t {
                return Why::Changed;
            }
        }
    }
    Why::Tie
}

/// The oldest of [`unproven`]: the cursor must not move past it.
pub fn oldest_unproven(runs: &[Run], held: &HashMap<i64, usize>, from: i64) -> Option<i64> {
    unproven(runs, held, from).first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(total: u64, seconds: &[i64]) -> PageShape {
        PageShape {
            total: Some(total),
            seconds: seconds.to_vec(),
        }
    }

    fn held(rows: &[(i64, usize)]) -> HashMap<i64, usize> {
        rows.iter().copied().collect()
    }

    #[test]
    fn why_a_second_is_unproven_is_a_steady_tie_unless_a_listing_s_total_changed() {
        let run = |date, totals: &[u64]| Run {
            first_page: 1,
            limit: 2,
            date,
            pages: totals.iter().map(|&t| page(t, &[10, 10])).collect(),
            to_end: false,
        };
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 6);
        // A day's total is not the whole feed's: different listings, both steady.
        assert_eq!(
            why(&[run(None, &[9, 9]), run(day, &[4, 4]), run(None, &[9])]),
            Why::Tie
        );
        assert_eq!(why(&[run(None, &[9, 9]), run(None, &[9, 8])]), Why::Changed);
        assert_eq!(why(&[run(day, &[4]), run(day, &[5])]), Why::Changed);
        assert!(!Why::Tie.describe().contains("changed"));
    }

    #[test]
    fn a_split_second_needs_as_many_rows_as_its_slots() {
        // Second 10 fills two slots on page 1 and two on page 2: four rows.
        let run = Run {
            first_page: 1,
            limit: 4,
            date: None,
            pages: vec![page(6, &[12, 11, 10, 10]), page(6, &[10, 10])],
            to_end: true,
        };
        // A row shown twice: only three distinct rows of second 10 held.
        let h = held(&[(12, 1), (11, 1), (10, 3)]);
        assert_eq!(oldest_unproven(std::slice::from_ref(&run), &h, 0), Some(10));
        let h = held(&[(12, 1), (11, 1), (10, 4)]);
        assert_eq!(oldest_unproven(&[run], &h, 0), None);
    }

    #[test]
    fn a_split_second_read_across_a_growing_total_allows_the_rows_pushed_down() {
        // One row inserted above between the two reads: page 2 shows page 1's last row
        // again. Second 10 fills three slots but may have only two rows.
        let run = Run {
            first_page: 1,
            limit: 0,
            date: None,
            pages: vec![page(5, &[12, 10]), page(6, &[10, 10, 9])],
            to_end: false,
        };
        let h = held(&[(12, 1), (10, 2), (9, 1)]);
        assert_eq!(oldest_unproven(std::slice::from_ref(&run), &h, 11), None);
        assert_eq!(oldest_unproven(std::slice::from_ref(&run), &h, 10), None);
        // With one row of it held, a row may be hidden.
        let h = held(&[(12, 1), (10, 1), (9, 1)]);
        assert_eq!(
            oldest_unproven(std::slice::from_ref(&run), &h, 10),
            Some(10)
        );
        // Two inserts, but only one slot of the second above the boundary: one repeat.
        let run = Run {
            first_page: 1,
            limit: 0,
            date: None,
            pages: vec![page(5, &[12, 10]), page(7, &[10, 10, 9])],
            to_end: false,
        };
        let h = held(&[(12, 1), (10, 1), (9, 1)]);
        assert_eq!(
            oldest_unproven(std::slice::from_ref(&run), &h, 10),
            Some(10)
        );
        // Inserts without a split second: duplicates only, nothing hidden.
        let run = Run {
            first_page: 1,
            limit: 0,
            date: None,
            pages: vec![page(4, &[12, 11]), page(5, &[10, 9])],
            to_end: false,
        };
        let h = held(&[(12, 1), (11, 1), (10, 1), (9, 1)]);
        assert_eq!(oldest_unproven(&[run], &h, 10), None);
    }

    #[test]
    fn a_shrinking_total_makes_the_stretch_suspect_until_a_steady_run_reads_it() {
        let moved = Run {
            first_page: 1,
            limit: 0,
            date: None,
            pages: vec![page(5, &[20, 18]), page(4, &[15, 14])],
            to_end: true,
        };
        let h = held(&[(20, 1), (18, 1), (15, 1), (14, 1)]);
        assert_eq!(
            oldest_unproven(std::slice::from_ref(&moved), &h, 0),
            Some(15)
        );
        let steady = Run {
            first_page: 1,
            limit: 0,
            date: None,
            pages: vec![page(4, &[20, 18]), page(4, &[15, 14])],
            to_end: true,
        };
        assert_eq!(oldest_unproven(&[moved, steady], &h, 0), None);
    }

    #[test]
    fn a_whole_feed_run_must_hold_its_total() {
        let run = Run {
            first_page: 1,
            limit: 0,
            date: None,
            pages: vec![page(5, &[20, 18]), page(5, &[15, 14])],
            to_end: true,
        };
        let h = held(&[(20, 1), (18, 1), (15, 1), (14, 1)]);
        assert_eq!(oldest_unproven(&[run], &h, 0), Some(14));
    }

    #[test]
    fn a_targeted_run_proves_only_its_interior() {
        // Pages 3 and 4 re-read: second 30 lies inside, 40 and 20 are edges.
        let run = Run {
            first_page: 3,
            limit: 0,
            date: None,
            pages: vec![page(9, &[40, 30]), page(9, &[30, 20])],
            to_end: false,
        };
        let h = held(&[(40, 1), (30, 2), (20, 1)]);
        let j = run.judge(&h);
        assert_eq!(j.proven, vec![(21, 39)]);
    }

    #[test]
    fn a_split_second_is_placed_by_its_slots_and_read_where_no_boundary_cuts_it() {
        // Pages of 4: second 10 fills slots 2..=5 (two on page 1, two on page 2).
        let run = Run {
            first_page: 1,
            limit: 4,
            date: None,
            pages: vec![page(9, &[12, 11, 10, 10]), page(9, &[10, 10, 9, 8])],
            to_end: false,
        };
        let placed = run.place(10).expect("placed");
        assert_eq!(
            placed,
            Placed {
                second: 10,
                first: 2,
                rows: 4,
                limit: 4,
            }
        );
        // At most 4 a page, one page cannot hold it: pages of 3 cut it elsewhere, pages of
        // 1 in yet other places (pages of 2 cut it only where pages of 4 did).
        assert_eq!(
            alignments(placed, 4),
            vec![vec![(1, 3), (2, 3)], vec![(3, 1), (4, 1), (5, 1), (6, 1)]]
        );
        // A page of 6 holds it (slots 0..=5), not with a neighbour on each side (slots
        // 1..=6 start at no multiple of 6); a page of 7 does (slots 0..=6).
        assert_eq!(alignments(placed, 6), vec![vec![(1, 6)]]);
        assert_eq!(alignments(placed, 7), vec![vec![(1, 7)]]);
        for max in [7, 10, 50] {
            let reads = alignments(placed, max);
            assert_eq!(reads.len(), 1, "max {max}");
            let (page, limit) = reads[0][0];
            let (lo, hi) = ((page - 1) * limit, page * limit - 1);
            assert!(
                lo < 2 && hi > 5 && limit <= max,
                "max {max}: {page}/{limit}"
            );
        }
        // A second at the end of what the run read may go on below it: not placed.
        let open = Run {
            to_end: false,
            pages: vec![page(9, &[12, 11, 10, 10]), page(9, &[10, 10, 10, 10])],
            ..run.clone()
        };
        assert_eq!(open.place(10), None);
        // Read across a changed total, its slots moved: not placed.
        let moved = Run {
            pages: vec![page(9, &[12, 11, 10, 10]), page(10, &[10, 10, 9, 8])],
            ..run
        };
        assert_eq!(moved.place(10), None);
    }

    #[test]
    fn a_second_larger_than_a_page_is_read_at_several_page_sizes_cutting_it_elsewhere() {
        let placed = Placed {
            second: 7,
            first: 30,
            rows: 70,
            limit: 50,
        };
        let reads = alignments(placed, 50);
        assert_eq!(reads.len(), 3);
        let mut cuts: Vec<usize> = vec![50];
        for group in &reads {
            let limit = group[0].1;
            assert!(limit <= 50);
            // Every slot of the second lies on one of the group's pages.
            let lo = (group[0].0 - 1) * limit;
            let hi = group[group.len() - 1].0 * limit - 1;
            assert!(lo <= 30 && hi >= 99, "{group:?}");
            for &(p, _) in &group[1..] {
                let cut = (p - 1) * limit;
                assert!(!cuts.contains(&cut), "boundary {cut} repeated");
                cuts.push(cut);
            }
        }
    }

    #[test]
    fn seconds_below_the_floor_do_not_count() {
        let run = Run {
            first_page: 1,
            limit: 0,
            date: None,
            pages: vec![page(4, &[12, 10]), page(4, &[10, 9])],
            to_end: false,
        };
        let h = held(&[(12, 1), (10, 1), (9, 1)]);
        assert_eq!(oldest_unproven(std::slice::from_ref(&run), &h, 11), None);
        assert_eq!(oldest_unproven(&[run], &h, 10), Some(10));
    }
}
