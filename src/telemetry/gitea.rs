//! Gitea requests: retries, answers, the rate limit.

use std::fmt::Display;
use std::time::Duration;

use super::{Happening, TARGET};
use crate::telemetry::health::Health;
use crate::telemetry::metrics::{ClassLabel, Metrics, ReasonLabel, status_class};

/// A Gitea request failed and is retried after `wait`.
pub struct GiteaRetry<'a> {
    pub url: &'a str,
    /// The error's short label (`GiteaError::reason`).
    pub reason: &'a str,
    pub error: &'a dyn Display,
    pub wait: Duration,
}

impl Happening for GiteaRetry<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        let GiteaRetry {
            url,
            reason,
            error,
            wait,
        } = self;
        h.progress();
        m.gitea_retries
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
        // A URL or an error may name a private repository (`/repos/{owner}/{name}/...`).
        let url = &*h.names.scrub(url);
        let error = h.names.scrub(&error.to_string()).into_owned();
        tracing::warn!(target: TARGET,
            url,
            reason,
            wait_ms = wait.as_millis() as u64,
            "Gitea request failed, retrying: {error}"
        );
    }
}

/// Gitea answered with an HTTP status.
pub struct GiteaResponse {
    pub status: u16,
}

impl Happening for GiteaResponse {
    fn emit(self, m: &Metrics, h: &Health) {
        let status = self.status;
        h.progress();
        let class = status_class(Some(status));
        m.gitea_requests
            .get_or_create(&ClassLabel {
                class: class.into(),
            })
            .inc();
        h.set_gitea_ok(status < 500);
    }
}

/// Gitea did not answer at all.
pub struct GiteaUnreachable;

impl Happening for GiteaUnreachable {
    fn emit(self, m: &Metrics, h: &Health) {
        m.gitea_requests
            .get_or_create(&ClassLabel {
                class: "error".into(),
            })
            .inc();
        h.set_gitea_ok(false);
    }
}

/// The client was built with `gitea.tls_insecure_skip_verify`.
pub struct GiteaTlsUnverified<'a> {
    pub url: &'a str,
}

impl Happening for GiteaTlsUnverified<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let url = self.url;
        tracing::warn!(target: TARGET,
            url,
            "gitea.tls_insecure_skip_verify is on: Gitea's TLS certificate is NOT verified; anyone on the path can read the token"
        );
    }
}

/// A request waits for the shared rate limit.
pub struct RateLimitWait;

impl Happening for RateLimitWait {
    fn emit(self, m: &Metrics, _: &Health) {
        m.rate_limit_waits.inc();
        tracing::trace!(target: TARGET, "waiting for the Gitea rate limit");
    }
}

/// The log target of the setup's happenings below (where they are logged today).
const APP: &str = "gitea_nats_sourcer::app";

/// At start, the page size Gitea serves was learned (`Ok`), or could not be read and the
/// client keeps `using` (`Err`).
pub struct GiteaPageSize<'a> {
    /// The page size learned, or why it could not be read.
    pub learned: Result<usize, &'a dyn Display>,
    /// The page size the client uses when none was learned.
    pub using: usize,
}

impl Happening for GiteaPageSize<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        let using = self.using;
        match self.learned {
            Ok(n) => tracing::debug!(target: APP, page_limit = n, "Gitea page size"),
            Err(e) => {
                tracing::warn!(target: APP, "cannot read Gitea's page size, using {using}: {e}")
            }
        }
    }
}
