//! A repository handed over between a `repo:` source and the org or user source that
//! published it.

use std::fmt::Display;

use super::{Happening, TARGET};
use crate::source::SourceSpec;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::Metrics;

/// A new `repo:` source takes its repository over from the source that published it.
pub struct CursorHandedOver<'a> {
    pub from: &'a SourceSpec,
    pub to: &'a SourceSpec,
    pub position: i64,
}

impl Happening for CursorHandedOver<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let CursorHandedOver { from, to, position } = self;
        tracing::info!(target: TARGET, source = %h.names.shown_source(&to.to_string()), from = %from, position, "no stored cursor; taking the repository over from {from} where its cursor is");
    }
}

/// A new `repo:` source takes its repository over from the source that published it, but
/// its own `start` asks for older history than that source published: it starts there and
/// leaves out the span that source published.
pub struct HistoryBeforeHandover<'a> {
    pub from: &'a SourceSpec,
    pub to: &'a SourceSpec,
    /// The `start` setting, as written in the config.
    pub start: &'a dyn Display,
    /// What `from` published, Unix seconds from and to (`None`: nothing of this repository).
    pub left_out: Option<(i64, i64)>,
}

impl Happening for HistoryBeforeHandover<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let HistoryBeforeHandover {
            from,
            to,
            start,
            left_out,
        } = self;
        let at = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        };
        match left_out {
            Some((lo, hi)) => {
                tracing::info!(target: TARGET, source = %h.names.shown_source(&to.to_string()), from = %from, %start, left_out_from = lo, left_out_to = hi, "no stored cursor; taking the repository over from {from}, and publishing its history from {start}: all but what {from} published, from {} to {}", at(lo), at(hi))
            }
            None => {
                tracing::info!(target: TARGET, source = %h.names.shown_source(&to.to_string()), from = %from, %start, "no stored cursor; {from} published nothing of the repository that this source's start leaves out: starting at {start}")
            }
        }
    }
}

/// A removed `repo:` source is drained before `to` takes its repository over.
pub struct RepositoryDraining<'a> {
    pub source: &'a SourceSpec,
    pub to: &'a SourceSpec,
}

impl Happening for RepositoryDraining<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepositoryDraining { source: spec, to } = self;
        tracing::info!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), to = %to, "source removed; polling its repository to the head of its feed once more before {to} takes it over");
    }
}

/// A drained repository is handed over to `to`, which reads it back from `from`.
pub struct RepositoryHandedOver<'a> {
    pub source: &'a SourceSpec,
    pub to: &'a SourceSpec,
    /// Unix seconds: the drained cursor's cutoff.
    pub from: i64,
    /// The second the drain could not prove, if it handed over below one.
    pub held: Option<i64>,
}

impl Happening for RepositoryHandedOver<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepositoryHandedOver {
            source: spec,
            to,
            from,
            held,
        } = self;
        match held {
            None => {
                tracing::info!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), to = %to, from, "repository handed over to {to}")
            }
            Some(second) => {
                tracing::info!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), to = %to, from, held = second, "repository handed over to {to} below a second the drain could not prove: {to} reads it again from this source's trailing window and publishes what was not published")
            }
        }
    }
}

/// An org or user source records a repository a drained `repo:` source hands over: it
/// reads it back from `from` until a poll proved every row there.
pub struct RepositoryTakenOver<'a> {
    pub source: &'a SourceSpec,
    /// `owner/name`, lower case.
    pub repo: &'a str,
    /// Unix seconds.
    pub from: i64,
}

impl Happening for RepositoryTakenOver<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepositoryTakenOver {
            source: spec,
            repo,
            from,
        } = self;
        let repo = &*h.names.shown(repo);
        tracing::info!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), repo, from, "taking {repo} over from its drained source: reading it back from where that source's window began");
    }
}
