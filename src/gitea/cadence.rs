//! When each source polls next: a budget-aware cadence shared by every source.
//!
//! Every source asks for a poll every `interval`. While the polls of all sources fit the
//! share of `gitea.requests_per_second` that polls may plan for ([`POLL_SHARE`]), that is
//! what each gets. When they do not (thousands of sources, a low budget), the request
//! limiter would queue every request behind every other, and the live delay of a busy
//! source would grow with the number of quiet ones. So the cadence ranks sources by recent
//! activity: a source that published within its last [`HOT_POLLS`] polls or the last
//! [`HOT_FOR`] is *active* and keeps its interval; the others (*quiet*) are stretched by one common factor until the
//! total fits, at most to `poll.max_interval`. The active sources may take at most
//! [`ACTIVE_SHARE`] of it: beyond, they are stretched too, and the quiet ones share the
//! rest (so a quiet source is never starved by busy ones). The limiter still holds the
//! total to `requests_per_second` whatever the plan; the cadence keeps its queue short, so
//! what is active is published within about one interval.
//!
//! What a poll costs is learnt per source: the Gitea requests its polls made (a moving
//! average), counted by the client for the task that runs the poll ([`count_requests`]).
//! A source's first poll (it creates the cursor) and a catch-up poll are not counted: they
//! happen once, not every interval.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The share of the request budget that regular polls may plan for; the rest is headroom
/// for catch-ups, repository endpoints, retries and bursts.
pub const POLL_SHARE: f64 = 0.8;

/// A source that published within this many of its last polls is active...
pub const HOT_POLLS: u32 = 4;

/// ...or within this long (activity comes in bursts: an org whose repositories see an
/// action every minute or two stays active between them).
pub const HOT_FOR: Duration = Duration::from_secs(300);

/// The most of the polls' share the active sources take when the quiet ones need the rest.
pub const ACTIVE_SHARE: f64 = 0.75;

tokio::task_local! {
    static REQUESTS: Cell<u64>;
}

/// Counts one Gitea request for the poll running in this task, if any
/// ([`count_requests`]); the client calls it for every request it sends.
pub fn note_request() {
    let _ = REQUESTS.try_with(|c| c.set(c.get() + 1));
}

/// Runs `f` and returns its output with the number of Gitea requests made by this task
/// meanwhile (requests of tasks it spawns are not counted).
pub async fn count_requests<T>(f: impl Future<Output = T>) -> (T, u64) {
    REQUESTS
        .scope(Cell::new(0), async {
            let out = f.await;
            (out, REQUESTS.with(|c| c.get()))
        })
        .await
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    interval: Duration,
    /// Requests per poll, a moving average.
    cost: f64,
    /// Polls in a row that published nothing.
    quiet: u32,
    /// When a poll last published.
    published_at: Option<Instant>,
}

impl Entry {
    fn active(&self) -> bool {
        self.quiet < HOT_POLLS || self.published_at.is_some_and(|t| t.elapsed() < HOT_FOR)
    }
    /// Requests per second at its own interval.
    fn demand(&self) -> f64 {
        self.cost / self.interval.as_secs_f64().max(0.001)
    }
}

/// The cadence of every source of a run.
#[derive(Debug)]
pub struct Cadence {
    /// Requests per second polls may plan for.
    budget: f64,
    /// The longest wait of a quiet source (never below its interval).
    max_interval: Duration,
    sources: Mutex<HashMap<String, Entry>>,
}

/// What [`Cadence::next_wait`] decided, for the caller's log line and metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Until the source's next poll (before jitter).
    pub wait: Duration,
    /// The source is active.
    pub active: bool,
    /// The requests per second every source's plan adds up to.
    pub planned_rps: f64,
}

impl Cadence {
    /// A cadence for a budget of `requests_per_second`, quiet sources waiting at most
    /// `max_interval`.
    pub fn new(requests_per_second: f64, max_interval: Duration) -> Cadence {
        Cadence {
            budget: (requests_per_second * POLL_SHARE).max(0.001),
            max_interval,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// After a poll of `source` (configured `interval`) that made `requests` Gitea requests
    /// and published `published` events (`catch_up`: it walked days, a cost not repeated
    /// every interval): the wait until its next poll.
    pub fn next_wait(
        &self,
        source: &str,
        interval: Duration,
        requests: u64,
        published: usize,
        catch_up: bool,
    ) -> Plan {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let cost = match catch_up {
            true => None,
            false => Some(requests.max(1) as f64),
        };
        let e = match sources.entry(source.to_string()) {
            std::collections::hash_map::Entry::Occupied(o) => {
                let e = o.into_mut();
                if let Some(cost) = cost {
                    e.cost = 0.5 * e.cost + 0.5 * cost;
                }
                e
            }
            // The first poll creates the cursor (a few requests, once): one request a poll
            // is assumed until the next. A source is quiet until it publishes.
            std::collections::hash_map::Entry::Vacant(v) => v.insert(Entry {
                interval,
                cost: 1.0,
                quiet: HOT_POLLS,
                published_at: None,
            }),
        };
        e.interval = interval;
        if published > 0 {
            e.quiet = 0;
            e.published_at = Some(Instant::now());
        } else {
            e.quiet = e.quiet.saturating_add(1);
        }
        let me = *e;
        let (mut active, mut quiet) = (0.0, 0.0);
        for e in sources.values() {
            match e.active() {
                true => active += e.demand(),
                false => quiet += e.demand(),
            }
        }
        let longest = |i: Duration| self.max_interval.max(i);
        let (active_stretch, quiet_stretch) = if active + quiet <= self.budget {
            (1.0, 1.0)
        } else {
            // The active ones first, up to their share when the quiet ones need the rest.
            let for_active = (self.budget - quiet).max(self.budget * ACTIVE_SHARE);
            let active_gets = active.min(for_active);
            let a = (active / for_active).max(1.0);
            let q = match quiet > 0.0 {
                true => quiet / (self.budget - active_gets).max(0.001),
                false => 1.0,
            };
            (a, q)
        };
        let stretch = |e: &Entry| match e.active() {
            true => active_stretch,
            false => quiet_stretch,
        };
        let wait_of = |e: &Entry| {
            let s = stretch(e).clamp(1.0, 1e6);
            e.interval.mul_f64(s).min(longest(e.interval))
        };
        let planned_rps = sources
            .values()
            .map(|e| e.cost / wait_of(e).as_secs_f64().max(0.001))
            .sum();
        Plan {
            wait: wait_of(&me),
            active: me.active(),
            planned_rps,
        }
    }

    /// A source that stopped (removed on reload) no longer counts.
    pub fn forget(&self, source: &str) {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A live poll of `requests` requests that published `published` events.
    fn poll(c: &Cadence, name: &str, interval: Duration, requests: u64, published: usize) -> Plan {
        c.next_wait(name, interval, requests, published, false)
    }

    #[test]
    fn within_the_budget_every_source_keeps_its_interval() {
        let c = Cadence::new(10.0, 600 * S);
        // Five sources at one request every 30 s: far below 8 requests a second.
        for i in 0..5 {
            assert_eq!(poll(&c, &format!("s{i}"), 30 * S, 1, 0).wait, 30 * S);
        }
        for _ in 0..10 {
            assert_eq!(poll(&c, "s0", 30 * S, 1, 0).wait, 30 * S, "quiet, but room");
        }
    }

    #[test]
    fn over_the_budget_active_sources_keep_their_interval_and_quiet_ones_share_the_rest() {
        let c = Cadence::new(10.0, 3600 * S);
        // 10,000 quiet sources at one request every 30 s ask for 333 requests a second.
        for i in 0..10_000 {
            poll(&c, &format!("q{i}"), 30 * S, 1, 0);
        }
        // 100 active ones: 3.3 requests a second.
        let mut last = None;
        for i in 0..100 {
            last = Some(poll(&c, &format!("a{i}"), 30 * S, 1, 5));
        }
        let a = last.expect("a plan");
        assert!(a.active);
        assert_eq!(a.wait, 30 * S);
        let q = poll(&c, "q0", 30 * S, 1, 0);
        assert!(!q.active);
        // The quiet ones share what is left of 8: 4.7 requests a second for 10,000.
        let want = 10_000.0 / (8.0 - 100.0 / 30.0);
        assert!(
            (q.wait.as_secs_f64() - want).abs() < 30.0,
            "{:?} vs {want}",
            q.wait
        );
        assert!(q.planned_rps <= 8.0 + 0.01, "{}", q.planned_rps);
        // A quiet source that publishes is active again at once, and stays active for a
        // while after (a burst's pause is not quiet).
        let back = poll(&c, "q0", 30 * S, 1, 1);
        assert!(back.active);
        assert_eq!(back.wait, 30 * S);
        for _ in 0..2 * HOT_POLLS {
            assert!(poll(&c, "q0", 30 * S, 1, 0).active);
        }
    }

    #[test]
    fn active_sources_over_their_share_are_stretched_and_quiet_ones_still_get_the_rest() {
        let c = Cadence::new(1.0, 120 * S);
        for i in 0..10 {
            poll(&c, &format!("q{i}"), 10 * S, 1, 0);
        }
        // 20 active sources at one request every 10 s (2 a second) over a share of 0.8:
        // they get 0.6, the ten quiet ones (1 a second) the other 0.2.
        for i in 0..20 {
            poll(&c, &format!("a{i}"), 10 * S, 1, 3);
        }
        let a = poll(&c, "a0", 10 * S, 1, 3);
        assert!(
            (a.wait.as_secs_f64() - 10.0 * 2.0 / 0.6).abs() < 1e-6,
            "{:?}",
            a.wait
        );
        let q = poll(&c, "q0", 10 * S, 1, 0);
        assert!(
            (q.wait.as_secs_f64() - 10.0 * 1.0 / 0.2).abs() < 1e-6,
            "{:?}",
            q.wait
        );
        assert!(q.planned_rps <= 0.8 + 1e-9, "{}", q.planned_rps);
        // Many more quiet ones: each waits at most max_interval.
        for i in 0..1000 {
            poll(&c, &format!("z{i}"), 10 * S, 1, 0);
        }
        assert_eq!(poll(&c, "q0", 10 * S, 1, 0).wait, 120 * S);
    }

    #[test]
    fn a_catch_up_poll_does_not_count_as_the_cost_of_every_poll() {
        let c = Cadence::new(15.0, 600 * S);
        // Two sources at 200 ms: 10 requests a second, within 12; far over if a catch-up's
        // 400 requests counted as the cost of each poll.
        poll(&c, "live", S / 5, 1, 0);
        let p = c.next_wait("org", S / 5, 400, 5_000, true);
        assert_eq!(p.wait, S / 5);
        assert_eq!(poll(&c, "live", S / 5, 1, 0).wait, S / 5);
    }

    #[test]
    fn the_cost_of_a_poll_is_learnt_and_a_forgotten_source_no_longer_counts() {
        let c = Cadence::new(10.0, 3600 * S);
        // One source whose polls cost 40 requests every second: 40 a second, over 8.
        assert_eq!(
            poll(&c, "big", S, 40, 0).wait,
            S,
            "the first poll is not its cost"
        );
        for _ in 0..20 {
            poll(&c, "big", S, 40, 0);
        }
        let p = poll(&c, "big", S, 40, 0);
        assert!(p.wait >= 4 * S, "{:?}", p.wait);
        assert!(p.planned_rps <= 8.01, "{}", p.planned_rps);
        c.forget("big");
        assert_eq!(poll(&c, "small", S, 1, 0).wait, S);
    }

    #[tokio::test]
    async fn requests_are_counted_per_task() {
        let ((), n) = count_requests(async {
            note_request();
            note_request();
        })
        .await;
        assert_eq!(n, 2);
        // Outside a counted poll, nothing is counted and nothing fails.
        note_request();
    }
}
