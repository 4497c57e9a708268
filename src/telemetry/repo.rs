//! Repository kinds: changes published, kinds failing and recovering, lists, Actions.

use std::fmt::Display;

use super::{Happening, TARGET, count_published};
use crate::telemetry::health::Health;
use crate::telemetry::metrics::{Metrics, SourceReasonLabels};

/// A repository change whose event cannot be built is skipped.
pub struct RepoEventSkipped<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub reason: &'a str,
}

impl Happening for RepoEventSkipped<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoEventSkipped {
            owner,
            repo,
            kind,
            reason,
        } = self;
        tracing::error!(target: TARGET, repo = %h.names.shown_parts(owner, repo), kind, "skipping a change whose event cannot be built: {reason}");
    }
}

/// A batch of repository-endpoint events was acknowledged; counted under
/// `source="repo:OWNER/NAME"`.
pub struct RepoBatchPublished<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    /// The op type of each stored event (not the duplicates), oldest first.
    pub stored_op_types: &'a [&'a str],
}

impl Happening for RepoBatchPublished<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let RepoBatchPublished {
            owner,
            repo,
            stored_op_types,
        } = self;
        h.progress();
        count_published(
            m,
            &format!("repo:{}", h.names.shown_parts(owner, repo)),
            stored_op_types,
        );
    }
}

/// One kind of one repository published changes in a poll.
pub struct RepoChangesPublished<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub count: usize,
}

impl Happening for RepoChangesPublished<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoChangesPublished {
            owner,
            repo,
            kind,
            count,
        } = self;
        tracing::info!(target: TARGET, repo = %h.names.shown_parts(owner, repo), kind, count, "published repository changes");
    }
}

/// One kind of one repository failed (the others go on); `skip_polls` polls skip it now.
pub struct RepoKindFailed<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    /// The failed request's URL (empty when unknown).
    pub url: &'a str,
    /// The HTTP status, when Gitea answered with one.
    pub status: Option<u16>,
    /// The error's short label (`GiteaError::reason`).
    pub reason: &'a str,
    pub error: &'a dyn Display,
    pub failures: u32,
    pub skip_polls: u32,
}

impl Happening for RepoKindFailed<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let RepoKindFailed {
            owner,
            repo,
            kind,
            url,
            status,
            reason,
            error: err,
            failures,
            skip_polls,
        } = self;
        let source = format!("repo:{}", h.names.shown_parts(owner, repo));
        m.poll_errors
            .get_or_create(&SourceReasonLabels {
                source: source.clone(),
                reason: format!("{kind}_{reason}"),
            })
            .inc();
        let status = status.map(|s| s.to_string()).unwrap_or_default();
        let url = &*h.names.scrub(url);
        let err = h.names.scrub(&err.to_string()).into_owned();
        tracing::warn!(target: TARGET,
            repo = %h.names.shown_parts(owner, repo),
            kind,
            url,
            status,
            reason,
            failures,
            skip_polls,
            "repository endpoint failed; this kind of this repository waits {skip_polls} polls, the others go on: {err}"
        );
    }
}

/// A kind of a repository that was failing answers again.
pub struct RepoKindRecovered<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub failures: u32,
}

impl Happening for RepoKindRecovered<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoKindRecovered {
            owner,
            repo,
            kind,
            failures,
        } = self;
        tracing::info!(target: TARGET, repo = %h.names.shown_parts(owner, repo), kind, failures, "repository endpoint answers again");
    }
}

/// A kind's cursor was written elsewhere meanwhile.
pub struct RepoKindConflict<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub error: &'a dyn Display,
}

impl Happening for RepoKindConflict<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoKindConflict {
            owner,
            repo,
            kind,
            error: err,
        } = self;
        tracing::warn!(target: TARGET, repo = %h.names.shown_parts(owner, repo), kind, "cursor written elsewhere meanwhile; read again next poll: {err}");
    }
}

/// An org's repositories cannot be listed; the `kept` known ones are polled.
pub struct RepoListFailed<'a> {
    pub org: &'a str,
    /// The error's short label (`GiteaError::reason`).
    pub reason: &'a str,
    pub error: &'a dyn Display,
    pub kept: usize,
}

impl Happening for RepoListFailed<'_> {
    fn emit(self, m: &Metrics, _: &Health) {
        let RepoListFailed {
            org,
            reason,
            error: err,
            kept,
        } = self;
        m.poll_errors
            .get_or_create(&SourceReasonLabels {
                source: format!("org:{org}"),
                reason: format!("repos_{reason}"),
            })
            .inc();
        tracing::warn!(target: TARGET,
            org,
            reason,
            kept,
            "cannot list the org's repositories; polling the {kept} known ones: {err}"
        );
    }
}

/// A list is longer than the pages read.
pub struct ListTruncated<'a> {
    pub what: &'a str,
    pub path: &'a str,
    pub pages: usize,
    pub items: usize,
}

impl Happening for ListTruncated<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let ListTruncated {
            what,
            path,
            pages,
            items,
        } = self;
        tracing::warn!(target: TARGET,
            of = what,
            path,
            pages,
            items,
            "list longer than the pages read: reading {pages} pages at most; the rest is not read this poll and the list is taken as incomplete"
        );
    }
}

/// The server has no Actions API (404) for this repository.
pub struct ActionsUnsupported<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
}

impl Happening for ActionsUnsupported<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let ActionsUnsupported { owner, repo } = self;
        tracing::info!(target: TARGET, repo = %h.names.shown_parts(owner, repo), "this Gitea has no Actions API (404); the actions kind is skipped for this repository");
    }
}

/// The server answers on its Actions API now.
pub struct ActionsSupported<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
}

impl Happening for ActionsSupported<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let ActionsSupported { owner, repo } = self;
        tracing::info!(target: TARGET, repo = %h.names.shown_parts(owner, repo), "this Gitea answers on its Actions API now; the actions kind polls it for this repository");
    }
}

/// Changes read before the source's start are not published.
pub struct RepoChangesBeforeStart<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub kind: &'a str,
    pub n: usize,
}

impl Happening for RepoChangesBeforeStart<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let RepoChangesBeforeStart {
            owner,
            repo,
            kind,
            n,
        } = self;
        tracing::debug!(target: TARGET, repo = %h.names.shown_parts(owner, repo), kind, n, "changes before the source's start not published");
    }
}
