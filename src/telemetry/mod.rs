//! One struct per happening (Vector's internal events): its `emit` writes the happening's
//! log line and moves its metrics, so call sites say what happened and nothing more:
//! `telemetry.emit(PollCompleted { .. })`, on the run's [`Telemetry`], or
//! `telemetry::log(ConfigWarning { .. })` before there is a run. Happenings carry plain
//! values (strings, numbers, times, `&dyn Display` errors, [`SourceSpec`]); this module
//! imports nothing of the product but `source`, `names`, `metrics` and `health`, so every
//! layer can call it. Tokens never reach this module: URLs carry none, and errors are built
//! without them.
//!
//! One file per component, as vector's `src/internal_events/`; every happening is re-exported
//! here, so call sites name it `telemetry::PollCompleted`. This file holds the traits, the
//! handle and the helpers the components share.

pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod names;

mod command;
mod control;
mod cursor;
mod discovery;
mod feed;
mod gitea;
mod ha;
mod handover;
mod hooks;
mod lifecycle;
mod nats;
mod poll;
mod relay;
mod repo;
mod walk;

pub use command::*;
pub use control::*;
pub use cursor::*;
pub use discovery::*;
pub use feed::*;
pub use gitea::*;
pub use ha::*;
pub use handover::*;
pub use hooks::*;
pub use lifecycle::*;
pub use nats::*;
pub use poll::*;
pub use relay::*;
pub use repo::*;
pub use walk::*;

use std::sync::Arc;

use crate::source::SourceSpec;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::{Metrics, PublishedLabels, SourceLabel};

/// The target of every happening's log line: the module the happenings were written in
/// before it was split by component, so `RUST_LOG` filters and log readers see it unchanged.
const TARGET: &str = "gitea_nats_sourcer::telemetry";

/// A happening: what it writes to the log and the metrics it moves.
pub trait Happening {
    fn emit(self, m: &Metrics, h: &Health);
}

/// A happening before any run's [`Telemetry`] exists (the config is being read, signals
/// are set up): it writes its log line and moves no metric.
pub trait Logged {
    fn log(self);
}

/// Emits a happening that needs no run: `telemetry::log(ConfigWarning { .. })`.
pub fn log(happening: impl Logged) {
    happening.log()
}

/// The metrics registry and the health state of one run, handed to what emits happenings
/// (the Gitea client, the NATS event callback, the polls, the scheduler) and to the HTTP
/// listener that shows them. Cheap to clone: clones share both.
#[derive(Clone)]
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl Telemetry {
    /// A fresh registry and health state.
    pub fn new() -> Telemetry {
        Telemetry {
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::default()),
        }
    }

    /// Emits a happening: `telemetry.emit(PollCompleted { .. })`.
    pub fn emit(&self, happening: impl Happening) {
        happening.emit(&self.metrics, &self.health)
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

/// A source's label: its name, a private repository's hidden (`names`).
fn source_label(spec: &SourceSpec, names: &crate::telemetry::names::RepoNames) -> SourceLabel {
    SourceLabel {
        source: names.shown_source(&spec.to_string()).into_owned(),
    }
}

/// Counts the events of a batch that JetStream stored (not its duplicates) by op type.
fn count_published(m: &Metrics, source: &str, stored_op_types: &[&str]) {
    for op_type in stored_op_types {
        m.events_published
            .get_or_create(&PublishedLabels {
                source: source.to_string(),
                op_type: op_type.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn happenings_log_under_the_module_s_own_target() {
        assert_eq!(format!("{TARGET}::tests"), module_path!());
    }

    /// The text log lines `f` writes (no time, no colours), at every level to `DEBUG`.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn happenings_log_the_lines_and_targets_their_call_sites_logged() {
        let t = Telemetry::new();
        let out = logged(|| {
            log(ConfigWarning {
                warning: "poll.lookback is short",
            });
            log(SigtermUnavailable { error: &"denied" });
            t.emit(HttpFailed {
                error: &"address in use",
            });
            t.emit(EnrichmentSkipped {
                owner: "acme",
                name: "widgets",
                index: 7,
                error: &"HTTP 500",
            });
            t.emit(NatsFlushFailed {
                error: None,
                within: std::time::Duration::from_secs(5),
            });
            t.emit(GiteaPageSize {
                learned: Err(&"HTTP 404"),
                using: 50,
            });
            t.emit(NatsWaiting {
                source: &"org:acme".parse().unwrap(),
            });
        });
        let expected = [
            " WARN gitea_nats_sourcer::commands: poll.lookback is short",
            " WARN gitea_nats_sourcer::commands: cannot listen for SIGTERM (denied); only SIGINT stops the sourcer",
            "ERROR gitea_nats_sourcer::telemetry::http: HTTP listener failed: address in use",
            " WARN gitea_nats_sourcer::poll::pipeline::enrich: enrichment skipped: HTTP 500 repo=acme/widgets index=7",
            "DEBUG gitea_nats_sourcer::scheduler: NATS flush at shutdown: no answer within 5s",
            " WARN gitea_nats_sourcer::app: cannot read Gitea's page size, using 50: HTTP 404",
            "DEBUG gitea_nats_sourcer::telemetry: NATS is not connected; not polling Gitea until it is source=org:acme",
        ];
        assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn happenings_move_only_the_handle_they_are_emitted_into() {
        let moved = Telemetry::new();
        let other = Telemetry::new();
        let clone = moved.clone();
        // The product's families only: the process_* ones are the one process's.
        let product = |t: &Telemetry| {
            t.metrics
                .encode()
                .lines()
                .filter(|l| !l.contains("process_"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let before = product(&other);
        clone.emit(RateLimitWait);
        clone.emit(NatsConnected { connected: true });
        assert!(
            moved
                .metrics
                .encode()
                .contains("gitea_nats_sourcer_rate_limit_waits_total 1")
        );
        assert!(
            moved
                .metrics
                .encode()
                .contains("gitea_nats_sourcer_nats_connected 1")
        );
        assert!(!moved.health.problems().iter().any(|p| p.contains("NATS")));
        assert_eq!(product(&other), before);
        assert!(other.health.problems().iter().any(|p| p.contains("NATS")));
    }
}
