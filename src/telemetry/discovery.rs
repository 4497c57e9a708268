//! Searches and discovery: what changed on Gitea, what the token sees.

use std::fmt::Display;
use std::time::Duration;

use super::{Happening, TARGET};
use crate::source::SourceSpec;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::Metrics;

/// `repos_sweep`: the search for an org's changed issues failed (its quiet repositories
/// wait for their turn in the sweep; the next search asks from the same time).
pub struct IssueSearchFailed<'a> {
    pub org: &'a str,
    pub reason: &'static str,
    pub error: &'a dyn Display,
}

impl Happening for IssueSearchFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(target: TARGET,
            org = self.org,
            reason = self.reason,
            "cannot search the changed issues of {} ({}); its quiet repositories wait for their turn",
            self.org,
            self.error
        );
    }
}

/// `refs`: the search for an org's repositories changed since the last poll failed (each
/// repository's `updated_at` is then read on its own this poll).
pub struct RepoSearchFailed<'a> {
    pub org: &'a str,
    pub reason: &'static str,
    pub error: &'a dyn Display,
}

impl Happening for RepoSearchFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(target: TARGET,
            org = self.org,
            reason = self.reason,
            "cannot list the repositories of {} by update time ({}); each is asked on its own this poll",
            self.org,
            self.error
        );
    }
}

/// `all = true`: the sources the token sees changed.
pub struct SourcesDiscovered<'a> {
    pub added: &'a [SourceSpec],
    pub gone: &'a [SourceSpec],
}

impl Happening for SourcesDiscovered<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let names = |l: &[SourceSpec]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        if !self.added.is_empty() {
            tracing::info!(target: TARGET, sources = ?names(self.added), "{} source(s) found (all = true); starting them", self.added.len());
        }
        if !self.gone.is_empty() {
            tracing::warn!(target: TARGET, sources = ?names(self.gone), "{} source(s) no longer visible to the token (deleted, or access revoked); stopping them, their cursors are kept", self.gone.len());
        }
    }
}

/// `all = true`: listing what the token sees failed (tried again; the sources found before
/// go on).
pub struct DiscoveryFailed<'a> {
    pub error: &'a dyn Display,
    pub retry_in: Duration,
}

impl Happening for DiscoveryFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(target: TARGET,
            "cannot list the orgs and repositories the token sees ({}); the sources found before go on; trying again in {:?}",
            self.error,
            self.retry_in
        );
    }
}
