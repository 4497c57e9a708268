//! What `/readyz` and the systemd watchdog judge by: NATS connected, Gitea answering, and no
//! source stuck (a poll that made no progress of its own for 15 minutes, no successful poll
//! for several intervals, or a cursor pinned below an unproven second for 15 minutes).
//! Both judge a running poll by progress, not by how long it runs: a catch-up at a low
//! request budget may take hours and is healthy while its feed pages are answered and its
//! batches acknowledged. `/readyz` is for readiness (and alerting); liveness is `/healthz`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A running poll that made no progress of its own (a feed page read, a batch acknowledged,
/// a cursor written) for this long is stuck: every wait is bounded, and a catch-up reads a
/// page at least every few seconds however long its day takes.
const POLL_STUCK: Duration = Duration::from_secs(15 * 60);

/// A source whose cursor has waited this long below a second it could not prove whole (while
/// newer rows are published) is not ready: a restart would read everything from there again.
const PINNED_TOO_LONG: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone)]
struct SourceHealth {
    interval: Duration,
    registered: Instant,
    last_ok: Option<Instant>,
    polling_since: Option<Instant>,
    /// The last progress of this source's own (see [`Health::source_progress`]).
    progress: Option<Instant>,
    last_error: Option<String>,
    /// The second the cursor waits below (Unix seconds) and since when.
    pinned: Option<(i64, chrono::DateTime<chrono::Utc>)>,
}

/// The health state of one run (`telemetry::Telemetry` holds it; nothing is process-wide).
#[derive(Debug)]
pub struct Health {
    sources: Mutex<HashMap<String, SourceHealth>>,
    gitea_ok: AtomicBool,
    /// False for the relay, which never talks to Gitea.
    gitea_needed: AtomicBool,
    nats_ok: AtomicBool,
    /// What `progress_ms` counts from: when this state was made.
    epoch: Instant,
    /// Milliseconds since `epoch` of the last [`Health::progress`].
    progress_ms: AtomicU64,
    /// What the run's logs and metrics may call a repository (private ones hidden); here
    /// because every happening is handed the health state.
    pub names: crate::telemetry::names::RepoNames,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            sources: Mutex::new(HashMap::new()),
            gitea_ok: AtomicBool::new(false),
            gitea_needed: AtomicBool::new(true),
            nats_ok: AtomicBool::new(false),
            epoch: Instant::now(),
            progress_ms: AtomicU64::new(0),
            names: Default::default(),
        }
    }
}

impl Health {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SourceHealth>> {
        // Field updates only: a poisoned map is still consistent.
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(&self, source: &str, interval: Duration) {
        // A configured repository is private until read: it is named before anything of it
        // is (its cursor, its first poll).
        if let Some(full) = source.strip_prefix("repo:") {
            self.names.assume_private(full);
        }
        self.lock().insert(
            source.to_string(),
            SourceHealth {
                interval,
                registered: Instant::now(),
                last_ok: None,
                polling_since: None,
                progress: None,
                last_error: None,
                pinned: None,
            },
        );
    }

    pub fn unregister(&self, source: &str) {
        self.lock().remove(source);
    }

    /// Records that the service got something done: a Gitea request answered (whatever its
    /// status), a batch acknowledged by JetStream, a cursor written, a poll started or ended.
    /// One relaxed atomic store: cheap enough to call per request and per batch, from any
    /// task. The systemd watchdog is pinged while progress was made within its interval
    /// (or no poll runs), so any long-running step that makes progress should call it.
    pub fn progress(&self) {
        self.progress_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Records progress of one source's poll (a feed page read, a batch acknowledged, its
    /// cursor written), and progress of the service with it: what readiness judges a long
    /// poll by. One map lookup: per page and per batch, not per row.
    pub fn source_progress(&self, source: &str) {
        self.progress();
        if let Some(s) = self.lock().get_mut(source) {
            s.progress = Some(Instant::now());
        }
    }

    /// How long ago the last progress was.
    fn since_progress(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.progress_ms.load(Ordering::Relaxed)),
        )
    }

    pub fn poll_started(&self, source: &str) {
        self.progress();
        if let Some(s) = self.lock().get_mut(source) {
            s.polling_since = Some(Instant::now());
        }
    }

    pub fn poll_finished(&self, source: &str, error: Option<String>) {
        self.progress();
        if let Some(s) = self.lock().get_mut(source) {
            s.polling_since = None;
            match error {
                None => {
                    s.last_ok = Some(Instant::now());
                    s.last_error = None;
                }
                Some(e) => s.last_error = Some(e),
            }
        }
    }

    /// Records the second a source's cursor waits below and since when (`None`: it moves).
    pub fn pinned(&self, source: &str, pinned: Option<(i64, chrono::DateTime<chrono::Utc>)>) {
        if let Some(s) = self.lock().get_mut(source) {
            s.pinned = pinned;
        }
    }

    pub fn set_gitea_ok(&self, ok: bool) {
        self.gitea_ok.store(ok, Ordering::Relaxed);
    }

    /// The relay's readiness: it needs NATS, never Gitea.
    pub fn without_gitea(&self) {
        self.gitea_needed.store(false, Ordering::Relaxed);
    }
    pub fn set_nats_ok(&self, ok: bool) {
        self.nats_ok.store(ok, Ordering::Relaxed);
    }

    /// Whether the systemd watchdog may be pinged: no poll is running, or progress (see
    /// [`Health::progress`]) was made within `within` (the watchdog interval). False means
    /// a poll is running and nothing moved for that long: the ping is withheld and systemd
    /// restarts the service. How long a poll has run does not matter.
    pub fn scheduler_alive(&self, within: Duration) -> bool {
        let polling = self.lock().values().any(|s| s.polling_since.is_some());
        !polling || self.since_progress() < within
    }

    /// Readiness problems, empty when ready.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.nats_ok.load(Ordering::Relaxed) {
            out.push("NATS is not connected".to_string());
        }
        if self.gitea_needed.load(Ordering::Relaxed) && !self.gitea_ok.load(Ordering::Relaxed) {
            out.push("Gitea did not answer the last request".to_string());
        }
        let mut sources: Vec<_> = self
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut s) in sources {
            // `/readyz` is often open to anyone: a private repository is not named there.
            let name = self.names.shown_source(&name).into_owned();
            s.last_error = s.last_error.map(|e| self.names.scrub(&e).into_owned());
            let grace = s.interval * 3 + Duration::from_secs(120);
            let since = s.last_ok.unwrap_or(s.registered);
            // The last sign of life of a running poll: its start, or its own progress since.
            let stuck = s.polling_since.and_then(|started| {
                let last = s.progress.map_or(started, |p| p.max(started));
                (last.elapsed() >= POLL_STUCK).then_some((started, last))
            });
            if let Some((started, last)) = stuck {
                out.push(format!(
                    "{name}: a poll running for {}s made no progress (no feed page read, batch acknowledged or cursor written) for {}s",
                    started.elapsed().as_secs(),
                    last.elapsed().as_secs()
                ));
            } else if since.elapsed() > grace && s.polling_since.is_none() {
                out.push(format!(
                    "{name}: no successful poll for {}s{}",
                    since.elapsed().as_secs(),
                    s.last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                ));
            }
            if let Some((second, since)) = s.pinned {
                let waited = (chrono::Utc::now() - since).to_std().unwrap_or_default();
                if waited >= PINNED_TOO_LONG {
                    out.push(format!(
                        "{name}: the cursor position has waited {}s (since {}) for {} (unix {second}), a second of the feed it could not prove whole; newer rows are published, the position does not move",
                        waited.as_secs(),
                        since.format("%Y-%m-%dT%H:%M:%SZ"),
                        chrono::DateTime::from_timestamp(second, 0)
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| second.to_string()),
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_judges_by_progress_not_by_how_long_a_poll_runs() {
        let h = Health::default();
        let within = Duration::from_secs(60);
        // Idle: nothing to be stuck on.
        assert!(h.scheduler_alive(within));
        h.register("org:acme", Duration::from_secs(30));
        h.poll_started("org:acme");
        // A catch-up running far longer than the old 15-minute limit, still making progress.
        let long_ago = Instant::now().checked_sub(POLL_STUCK * 2);
        if let Some(s) = h.lock().get_mut("org:acme") {
            s.polling_since = long_ago.or(s.polling_since);
        }
        h.progress();
        assert!(h.scheduler_alive(within));
        // Nothing moved within the watchdog interval (zero here) while the poll runs.
        assert!(!h.scheduler_alive(Duration::ZERO));
        h.poll_finished("org:acme", None);
        assert!(h.scheduler_alive(Duration::ZERO), "no poll running");
    }

    #[test]
    fn readiness_judges_a_long_poll_by_its_progress_per_source() {
        let h = Health::default();
        h.set_nats_ok(true);
        h.set_gitea_ok(true);
        let long_ago = |h: &Health, source: &str, progress_too: bool| {
            let mut sources = h.lock();
            if let Some(s) = sources.get_mut(source) {
                let then = Instant::now().checked_sub(POLL_STUCK * 2);
                s.polling_since = then.or(s.polling_since);
                if progress_too {
                    s.progress = then.or(s.progress);
                }
            }
        };
        // A catch-up whose day takes longer than the limit, reading pages and committing
        // batches: ready.
        h.register("org:acme", Duration::from_secs(30));
        h.poll_started("org:acme");
        long_ago(&h, "org:acme", false);
        h.source_progress("org:acme");
        assert!(h.problems().is_empty(), "{:?}", h.problems());
        // A poll that made no progress of its own for the limit is a problem, even while
        // another source's poll makes progress.
        h.register("org:stuck", Duration::from_secs(30));
        h.poll_started("org:stuck");
        long_ago(&h, "org:stuck", true);
        h.source_progress("org:acme");
        let problems = h.problems();
        assert!(
            problems.len() == 1
                && problems[0].starts_with("org:stuck: a poll running for ")
                && problems[0].contains("made no progress"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_source_pinned_too_long_is_not_ready() {
        let h = Health::default();
        h.set_nats_ok(true);
        h.set_gitea_ok(true);
        h.register("org:acme", Duration::from_secs(30));
        h.poll_started("org:acme");
        h.poll_finished("org:acme", None);
        let now = chrono::Utc::now();
        h.pinned("org:acme", Some((1_700_000_000, now)));
        assert!(
            h.problems().is_empty(),
            "pinned a moment: {:?}",
            h.problems()
        );
        let long_ago = now - chrono::Duration::minutes(20);
        h.pinned("org:acme", Some((1_700_000_000, long_ago)));
        let problems = h.problems();
        assert!(
            problems.len() == 1
                && problems[0].contains("org:acme")
                && problems[0].contains("2023-11-14T22:13:20+00:00")
                && problems[0].contains("unix 1700000000"),
            "{problems:?}"
        );
        h.pinned("org:acme", None);
        assert!(h.problems().is_empty(), "it moves again");
    }
}
