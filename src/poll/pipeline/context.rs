//! What every poll shares (the Gitea client, the publisher, the cursor bucket, the
//! cross-feed index, the issue cache, the ownership of repositories, the settings), and why a
//! poll does not finish.

use std::sync::{Arc, RwLock};

use super::Pipeline;
use super::dedup::RecentIndex;
use super::enrich::IssueCache;
use super::owners::{Owners, Takeovers};
use crate::gitea::{GiteaClient, GiteaError};
use crate::nats::publish::{PublishError, Publisher};
use crate::retry::SkipAfterFailures;
use crate::store::{CursorStore, StoreError};
use crate::telemetry::Telemetry;

/// What every source's poller shares.
pub struct Context {
    pub client: GiteaClient,
    pub publisher: Publisher,
    pub store: CursorStore,
    pub index: Arc<RecentIndex>,
    /// Base URL of the Gitea web UI, without a trailing `/` (CloudEvents `source`).
    pub gitea_url: String,
    /// The domain of users' placeholder e-mail addresses (`gitea.no_reply_address`).
    pub no_reply: String,
    /// The subject prefixes of public and private repositories' events.
    pub prefixes: crate::event::Prefixes,
    /// Trailing window, seconds.
    pub lookback: i64,
    /// Page budget of a live poll before it switches to catch-up.
    pub live_pages: usize,
    /// The most identities a cursor's window keeps (`poll.max_window`).
    pub max_window: usize,
    /// Events per pipelined batch; the cursor is written after each.
    pub batch: usize,
    /// Issues fetched for `enrich = true` sources.
    pub issues: IssueCache,
    /// Which source publishes which repository (updated on reload).
    pub owners: RwLock<Owners>,
    /// Repositories drained `repo:` sources hand over, until their taker recorded them.
    pub takeovers: Takeovers,
    /// The run's metrics and health (the client's too).
    pub telemetry: Telemetry,
    /// Repository kinds that keep failing, skipped for a while (this run's, not the process's).
    pub failing: SkipAfterFailures,
    /// When each source polls next, within the request budget.
    pub cadence: crate::gitea::cadence::Cadence,
    /// Which sources are paused (marks in the bucket, followed by the scheduler).
    pub pauses: crate::poll::pause::Pauses,
    /// The bytes of days walked ahead by catch-ups and backfills, process-wide.
    pub read_ahead: crate::poll::feed::ahead::ReadAhead,
}

impl Context {
    /// The publish pipeline with the cross-feed index (live polls and repository kinds).
    pub fn pipeline<'a>(&'a self, owner: &'a str) -> Pipeline<'a> {
        Pipeline {
            publisher: &self.publisher,
            source: owner,
            telemetry: &self.telemetry,
            index: Some(&self.index),
            no_reply: &self.no_reply,
            batch: self.batch,
            owner: super::owner_tag(owner),
        }
    }
}

/// Why a poll did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Gitea(#[from] GiteaError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    State(#[from] StoreError),
}

impl PollError {
    /// Short label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PollError::Gitea(e) => e.reason(),
            PollError::Publish(_) => "publish",
            PollError::State(StoreError::Conflict { .. }) => "cursor_conflict",
            PollError::State(_) => "cursor",
        }
    }
}
