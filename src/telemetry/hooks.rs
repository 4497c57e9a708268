//! Webhook-shaped events that cannot be built, or go out incomplete.

use super::{Happening, TARGET};
use crate::telemetry::health::Health;
use crate::telemetry::metrics::{Metrics, PublishedLabels};

/// The webhook-shaped event of an action cannot be built (an object it needs could not be
/// read: a 404 for a deleted issue, a server error): the action's own event is published
/// without it.
pub struct HookSkipped<'a> {
    /// `owner/name`.
    pub repo: &'a str,
    /// The op type (`create_issue`) or repository change (`comment_edited`).
    pub op_type: &'a str,
    pub reason: &'a str,
}

impl Happening for HookSkipped<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let HookSkipped {
            repo,
            op_type,
            reason,
        } = self;
        let repo = &*h.names.shown(repo);
        let reason = &*h.names.scrub(reason);
        m.hooks_skipped
            .get_or_create(&PublishedLabels {
                source: format!("repo:{repo}"),
                op_type: op_type.to_string(),
            })
            .inc();
        tracing::warn!(target: TARGET,
            repo,
            op_type,
            "publishing the action without its webhook-shaped event: {reason}"
        );
    }
}

/// A webhook-shaped event goes out with a value left empty (a created ref's commit that is
/// gone again), or one is not made (`pull_request_sync` when the open pull requests could not
/// be listed), because the API could not tell it.
pub struct HookIncomplete<'a> {
    /// `owner/name`.
    pub repo: &'a str,
    pub op_type: &'a str,
    /// The field left empty.
    pub field: &'a str,
    pub reason: &'a str,
}

impl Happening for HookIncomplete<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let HookIncomplete {
            repo,
            op_type,
            field,
            reason,
        } = self;
        let repo = &*h.names.shown(repo);
        let reason = &*h.names.scrub(reason);
        tracing::info!(target: TARGET,
            repo,
            op_type,
            field,
            "a webhook-shaped event with an empty field: {reason}"
        );
    }
}
