//! Repository endpoints: the changes the activity feed never carries (labels, assignees,
//! milestones, review requests, issue and comment edits, releases edited or deleted, commit
//! statuses, Actions runs; go-gitea/gitea issue 30954).
//!
//! ## Design
//! Each repository source (and, with `repos = true`, each repository of an org source) polls
//! the kinds its `kinds` list names, right after its feed poll, sharing its interval and the
//! one request budget. Every kind has its own cursor in the bucket (`kind/{kind}/{owner}/{repo}`):
//! a position (`since`, Unix seconds of the newest change read), the identities published
//! inside the trailing `lookback` window (re-read every poll, as the feed's cursor does) and a
//! little kind-specific state (known releases, tracked commit heads, runs in progress).
//! Events are published oldest first, pipelined, and the cursor moves only after every ack.
//!
//! Every change has a stable id built from what identifies it in Gitea (a timeline item's id,
//! a status's id, a run's id and state...). A comment's creation has the same identity as the
//! feed's `comment_issue` row, and a release's publication the same as `publish_release`, so
//! a change read both from the feed and from an endpoint is published once.
//!
//! Far behind, `issues` and `comments` read history one day at a time (`since`/`before`), so
//! memory holds one day's changes, not the whole gap.
//!
//! Requests per poll and repository: `issues` 1 + one timeline per changed issue;
//! `comments` 1; `releases` 1; `statuses` 1 (branches) + 1 per head pushed in the last two
//! hours; `actions` 1. Pages beyond the first cost one request each.

mod actions;
mod comments;
mod issues;
mod releases;
mod statuses;

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{self, Event, escape_token};
use crate::feed::cursor::{Identity, MAX_SEEN, SeenSet};
use crate::feed::pipeline::{Pending, Target};
use crate::feed::{PollContext, PollError};
use crate::gitea::GiteaClient;
use crate::gitea::GiteaError;
use crate::publish::BatchOutcome;
use crate::shutdown::Shutdown;
use crate::source::kv_escape;
use crate::telemetry;

/// A repository endpoint to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoKind {
    /// Issue and pull request changes: labels, assignees, milestones, review requests,
    /// title and body edits (`/issues?since=` then `/issues/{index}/timeline`).
    Issues,
    /// Comments created and edited (`/issues/comments?since=`).
    Comments,
    /// Releases published, edited, deleted (`/releases`).
    Releases,
    /// Commit statuses of recently pushed heads (`/branches`, `/statuses/{sha}`).
    Statuses,
    /// Actions runs and their state changes (`/actions/runs`), where the server has them.
    Actions,
}

impl RepoKind {
    pub fn name(self) -> &'static str {
        match self {
            RepoKind::Issues => "issues",
            RepoKind::Comments => "comments",
            RepoKind::Releases => "releases",
            RepoKind::Statuses => "statuses",
            RepoKind::Actions => "actions",
        }
    }
}

impl fmt::Display for RepoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The cursor of one kind of one repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KindCursor {
    /// Unix seconds of the newest change read.
    pub since: i64,
    /// Identities published with `t >= since - lookback`.
    #[serde(default)]
    pub seen: SeenSet,
    /// Kind-specific memory (known releases, tracked heads, runs in progress).
    #[serde(default)]
    pub state: Value,
    /// Events published in total.
    #[serde(default)]
    pub published: u64,
}

/// One change read from an endpoint.
#[derive(Debug, Clone)]
pub struct Change {
    /// De-duplication identity (shared with the feed for comments and releases).
    pub key: String,
    /// When it happened, Unix seconds.
    pub t: i64,
    /// Order among changes of the same second (Gitea's own ids grow with time).
    pub seq: i64,
    /// Match within one second rather than exactly (releases, like the feed's repeatables).
    pub repeatable: bool,
    /// The event id.
    pub id: String,
    /// `issue`, `pull_request`, `comment`, `release`, `status`, `actions_run`.
    pub noun: &'static str,
    /// `labeled`, `edited`, `success`, ...
    pub change: String,
    /// `time` of the event, as Gitea wrote it.
    pub time: String,
    /// The Gitea objects as returned.
    pub data: Value,
}

/// What a kind's reader returns: the changes and the cursor's new position and state.
pub struct Collected {
    pub changes: Vec<Change>,
    pub since: i64,
    pub state: Value,
}

/// The repository a reader works on.
pub struct Repo<'a> {
    pub client: &'a GiteaClient,
    pub owner: &'a str,
    pub name: &'a str,
    /// Read changes from here (Unix seconds; `since - lookback`).
    pub from: i64,
}

impl Repo<'_> {
    fn path<'p>(&'p self, tail: &[&'p str]) -> Vec<&'p str> {
        let mut p = vec!["repos", self.owner, self.name];
        p.extend_from_slice(tail);
        p
    }

    /// The `before` bound of the next slice to read when far behind: one day after `from`,
    /// widened (x4) over empty stretches, found by counting (`X-Total-Count`, one item
    /// asked). `None`: read up to now.
    async fn window(
        &self,
        tail: &[&str],
        base: &[(&str, String)],
    ) -> Result<Option<i64>, GiteaError> {
        const DAY: i64 = 86_400;
        let now = chrono::Utc::now().timestamp();
        let mut width = DAY;
        while now - self.from > width {
            let before = self.from + width;
            let mut q = base.to_vec();
            q.push(("since", rfc3339(self.from)));
            q.push(("before", rfc3339(before)));
            // Without a count, read slice by slice.
            let n = self.client.count(&self.path(tail), &q).await?.unwrap_or(1);
            if n > 0 {
                return Ok(Some(before));
            }
            width *= 4;
        }
        Ok(None)
    }

    /// Every page of a list endpoint (bounded by `max_pages`).
    async fn list_all(
        &self,
        tail: &[&str],
        query: &[(&str, String)],
        field: Option<&str>,
        max_pages: usize,
    ) -> Result<Vec<Value>, GiteaError> {
        let path = self.path(tail);
        let mut out = Vec::new();
        for page in 1..=max_pages {
            let p = self.client.list_page(&path, query, page, field).await?;
            let short = p.items.len() < self.client.page_limit();
            out.extend(p.items);
            if short || !p.has_next {
                break;
            }
        }
        Ok(out)
    }
}

/// RFC 3339 `s` (as Gitea writes times) to Unix seconds.
pub fn unix(s: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.as_str()?)
        .ok()
        .map(|d| d.timestamp())
}

/// Unix seconds as RFC 3339 (UTC) for `since`/`before` parameters.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t.max(0), 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn kv_key(kind: RepoKind, owner: &str, name: &str) -> String {
    format!(
        "kind/{}/{}/{}",
        kind.name(),
        kv_escape(owner),
        kv_escape(name)
    )
}

fn build(
    ctx: &PollContext,
    owner: &str,
    name: &str,
    c: &Change,
) -> Result<Event, serde_json::Error> {
    #[derive(Serialize)]
    struct Ce<'a> {
        specversion: &'static str,
        id: &'a str,
        source: String,
        #[serde(rename = "type")]
        ty: String,
        subject: String,
        time: &'a str,
        datacontenttype: &'static str,
        data: &'a Value,
    }
    let ce = Ce {
        specversion: "1.0",
        id: &c.id,
        source: format!("{}/{owner}/{name}", ctx.gitea_url),
        ty: format!("io.gitea.{}.{}", c.noun, c.change),
        subject: format!("{owner}/{name}"),
        time: &c.time,
        datacontenttype: "application/json",
        data: &c.data,
    };
    Ok(Event {
        id: c.id.clone(),
        key: c.key.clone(),
        subject: format!(
            "{}.{}.{}.{}",
            ctx.subject_prefix,
            escape_token(owner),
            escape_token(name),
            escape_token(&format!("{}_{}", c.noun, c.change))
        ),
        payload: Bytes::from(serde_json::to_vec(&ce)?),
        created: c.t,
        op_type: format!("{}_{}", c.noun, c.change),
    })
}

/// Polls `kinds` of one repository: read, publish new changes oldest first, move each
/// kind's cursor after its acks. `start_now`: a kind without a cursor starts at the present.
pub async fn poll_repo(
    ctx: &PollContext,
    owner: &str,
    name: &str,
    kinds: &[RepoKind],
    start_now: bool,
    shutdown: &mut Shutdown,
) -> Result<usize, PollError> {
    let mut published = 0;
    for &kind in kinds {
        if shutdown.is_fired() {
            break;
        }
        published += poll_kind(ctx, owner, name, kind, start_now, shutdown).await?;
    }
    Ok(published)
}

async fn poll_kind(
    ctx: &PollContext,
    owner: &str,
    name: &str,
    kind: RepoKind,
    start_now: bool,
    shutdown: &mut Shutdown,
) -> Result<usize, PollError> {
    let key = kv_key(kind, owner, name);
    let (cursor, revision) = match ctx.store.get::<KindCursor>(&key).await? {
        Some(stored) => stored,
        None => (
            KindCursor {
                since: if start_now {
                    chrono::Utc::now().timestamp() - 1
                } else {
                    0
                },
                ..Default::default()
            },
            0,
        ),
    };
    let repo = Repo {
        client: &ctx.client,
        owner,
        name,
        from: (cursor.since - ctx.lookback).max(0),
    };
    let read = async {
        match kind {
            RepoKind::Issues => issues::collect(&repo, &cursor).await,
            RepoKind::Comments => comments::collect(&repo, &cursor).await,
            RepoKind::Releases => releases::collect(&repo, &cursor).await,
            RepoKind::Statuses => statuses::collect(&repo, &cursor).await,
            RepoKind::Actions => actions::collect(&repo, &cursor).await,
        }
    };
    let collected = tokio::select! {
        biased;
        _ = shutdown.wait() => return Ok(0),
        r = read => r?,
    };
    let mut changes = collected.changes;
    changes.sort_by(|a, b| (a.t, a.seq, &a.id).cmp(&(b.t, b.seq, &b.id)));
    let candidates = changes
        .into_iter()
        .map(|c| Pending {
            id: Identity {
                key: c.key.clone(),
                t: c.t,
                repeatable: c.repeatable,
            },
            item: c,
        })
        .collect();
    let mut target = KindTarget {
        ctx,
        owner,
        name,
        kind,
        key,
        cursor,
        revision,
    };
    let out = ctx
        .pipeline()
        .run(&mut target, candidates, shutdown)
        .await?;
    if !out.stopped {
        let cursor = &mut target.cursor;
        cursor.since = cursor.since.max(collected.since);
        cursor.state = collected.state;
        cursor.seen.retain_from(cursor.since - ctx.lookback);
        ctx.store.put(&target.key, cursor, target.revision).await?;
    }
    if out.published > 0 {
        telemetry::repo_changes_published(owner, name, kind.name(), out.published);
    }
    Ok(out.published)
}

/// One kind's cursor of one repository as the pipeline's target.
struct KindTarget<'a> {
    ctx: &'a PollContext,
    owner: &'a str,
    name: &'a str,
    kind: RepoKind,
    key: String,
    cursor: KindCursor,
    revision: u64,
}

impl Target for KindTarget<'_> {
    type Item = Change;

    fn seen(&mut self) -> &mut SeenSet {
        &mut self.cursor.seen
    }

    async fn build(&mut self, batch: &[Pending<Change>]) -> Vec<Event> {
        batch
            .iter()
            .filter_map(|c| match build(self.ctx, self.owner, self.name, &c.item) {
                Ok(e) => Some(e),
                Err(e) => {
                    telemetry::repo_event_skipped(
                        self.owner,
                        self.name,
                        self.kind.name(),
                        &e.to_string(),
                    );
                    None
                }
            })
            .collect()
    }

    async fn commit(
        &mut self,
        batch: &[Pending<Change>],
        events: &[Event],
        outcome: &BatchOutcome,
    ) -> Result<(), PollError> {
        let cursor = &mut self.cursor;
        cursor.published += outcome.stored as u64;
        if let Some(last) = batch.last() {
            // Everything read up to this change is published; the trailing window re-reads
            // what shares its second.
            cursor.since = cursor.since.max(last.id.t);
        }
        cursor.seen.retain_from(cursor.since - self.ctx.lookback);
        cursor.seen.bound(MAX_SEEN);
        self.revision = self
            .ctx
            .store
            .put(&self.key, &*cursor, self.revision)
            .await?;
        telemetry::repo_batch_published(self.owner, self.name, events, outcome);
        Ok(())
    }
}

/// Lists an org's repositories (for `repos = true`).
pub async fn org_repos(
    client: &GiteaClient,
    org: &str,
) -> Result<Vec<(String, String)>, GiteaError> {
    let mut out = Vec::new();
    for page in 1..=100 {
        let p = client
            .list_page(&["orgs", org, "repos"], &[], page, None)
            .await?;
        let short = p.items.len() < client.page_limit();
        for r in &p.items {
            let full = r["full_name"].as_str().unwrap_or("");
            if let Some((o, n)) = full.split_once('/') {
                out.push((o.to_string(), n.to_string()));
            }
        }
        if short || !p.has_next {
            break;
        }
    }
    Ok(out)
}

/// The id of a change made of a noun, an object id and what distinguishes this change.
fn change_id(noun: &str, repo: &Repo<'_>, object: i64, extra: &str) -> String {
    event::parts_id(&[
        b"gitea-repo-change-v1",
        noun.as_bytes(),
        repo.owner.as_bytes(),
        repo.name.as_bytes(),
        &object.to_be_bytes(),
        extra.as_bytes(),
    ])
}
