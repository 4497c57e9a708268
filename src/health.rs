//! What `/readyz` and the systemd watchdog judge by: NATS connected, Gitea answering, and no
//! source stuck (a poll running far too long, or no successful poll for several intervals).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// A poll running longer than this means the scheduler is stuck (catch-up commits a batch
/// at least every few seconds, and every wait is bounded).
const POLL_STUCK: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone)]
struct SourceHealth {
    interval: Duration,
    registered: Instant,
    last_ok: Option<Instant>,
    polling_since: Option<Instant>,
    last_error: Option<String>,
}

/// Shared health state.
#[derive(Debug, Default)]
pub struct Health {
    sources: Mutex<HashMap<String, SourceHealth>>,
    gitea_ok: AtomicBool,
    nats_ok: AtomicBool,
}

/// The process-wide health state.
pub static HEALTH: LazyLock<Health> = LazyLock::new(Health::default);

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SourceHealth>> {
        // Field updates only: a poisoned map is still consistent.
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(&self, source: &str, interval: Duration) {
        self.lock().insert(
            source.to_string(),
            SourceHealth {
                interval,
                registered: Instant::now(),
                last_ok: None,
                polling_since: None,
                last_error: None,
            },
        );
    }

    pub fn unregister(&self, source: &str) {
        self.lock().remove(source);
    }

    pub fn poll_started(&self, source: &str) {
        if let Some(s) = self.lock().get_mut(source) {
            s.polling_since = Some(Instant::now());
        }
    }

    pub fn poll_finished(&self, source: &str, error: Option<String>) {
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

    pub fn set_gitea_ok(&self, ok: bool) {
        self.gitea_ok.store(ok, Ordering::Relaxed);
    }

    pub fn set_nats_ok(&self, ok: bool) {
        self.nats_ok.store(ok, Ordering::Relaxed);
    }

    /// False when some poll has run for longer than [`POLL_STUCK`]: the watchdog stops
    /// pinging and systemd restarts the service.
    pub fn scheduler_alive(&self) -> bool {
        self.lock()
            .values()
            .all(|s| s.polling_since.is_none_or(|t| t.elapsed() < POLL_STUCK))
    }

    /// Readiness problems, empty when ready.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.nats_ok.load(Ordering::Relaxed) {
            out.push("NATS is not connected".to_string());
        }
        if !self.gitea_ok.load(Ordering::Relaxed) {
            out.push("Gitea did not answer the last request".to_string());
        }
        let mut sources: Vec<_> = self
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, s) in sources {
            let grace = s.interval * 3 + Duration::from_secs(120);
            let since = s.last_ok.unwrap_or(s.registered);
            if s.polling_since.is_some_and(|t| t.elapsed() >= POLL_STUCK) {
                out.push(format!(
                    "{name}: a poll has run for {}s",
                    s.polling_since.map(|t| t.elapsed().as_secs()).unwrap_or(0)
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
        }
        out
    }
}
