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
//! hours; `actions` 1 + one per run whose jobs may have changed (new, not completed when
//! last listed, or changed). Pages beyond the first cost one request each.

mod actions;
mod comments;
mod issues;
pub mod refs;
mod releases;
mod statuses;

pub use actions::RECHECK_SECS as ACTIONS_RECHECK_SECS;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{RepoKind, StartAt};
use crate::event::{self, Event, Visibility};
use crate::gitea::GiteaClient;
use crate::gitea::GiteaError;
use crate::gitea::day::midnight;
use crate::nats::publish::BatchOutcome;
use crate::poll::pipeline::{Context, Pending, PollError, Target, stored_op_types};
use crate::shutdown::Shutdown;
use crate::store::Key;
use crate::store::cursor::{Identity, MAX_OFFSET, MAX_SEEN, SeenSet, Window};
use crate::telemetry;

/// The cursor of one kind of one repository; `S` is the kind's own state
/// (`issues::State`, `releases::State`, ...). Stored as today's JSON (see its
/// `Serialize`): `since`, `seen`, `state`, `published`, then the start fields when set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Default"))]
pub struct KindCursor<S = Value> {
    /// Position (`since`: Unix seconds of the newest change read), start (`floor`:
    /// `start = "now"`, Unix seconds of the cursor's creation, changes before it, read in
    /// the trailing window of the first poll, are never published; `floor_day`: changes
    /// whose own local date is before it are never published) and trailing window (the
    /// identities published with `t >= since - lookback`, and `window_floor`).
    #[serde(flatten)]
    pub window: Window,
    /// Kind-specific memory (known releases, tracked heads, runs in progress). Absent or
    /// `null` (a cursor written before the kind had state) is the kind's default.
    #[serde(default, deserialize_with = "null_as_default")]
    pub state: S,
    /// Events published in total.
    #[serde(default)]
    pub published: u64,
}

impl<S> std::ops::Deref for KindCursor<S> {
    type Target = Window;

    fn deref(&self) -> &Window {
        &self.window
    }
}

impl<S> std::ops::DerefMut for KindCursor<S> {
    fn deref_mut(&mut self) -> &mut Window {
        &mut self.window
    }
}

impl<S: Serialize> Serialize for KindCursor<S> {
    /// Field by field as kinds' cursors have always been stored (their start fields last,
    /// and only when set), so that a stored cursor is written back byte for byte.
    fn serialize<Z: serde::Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
        /// The stored form.
        #[derive(Serialize)]
        struct Stored<'a, S> {
            /// [`Window::position`].
            since: i64,
            /// [`Window::seen`].
            seen: &'a SeenSet,
            /// [`KindCursor::state`].
            state: &'a S,
            /// [`KindCursor::published`].
            published: u64,
            /// [`Window::floor`], when set.
            #[serde(skip_serializing_if = "Option::is_none")]
            floor: Option<i64>,
            /// [`Window::floor_day`].
            #[serde(skip_serializing_if = "Option::is_none")]
            floor_day: Option<NaiveDate>,
            /// [`Window::window_floor`], when set.
            #[serde(skip_serializing_if = "Option::is_none")]
            window_floor: Option<i64>,
        }
        let w = &self.window;
        Stored {
            since: w.position,
            seen: &w.seen,
            state: &self.state,
            published: self.published,
            floor: (w.floor != 0).then_some(w.floor),
            floor_day: w.floor_day,
            window_floor: (w.window_floor != 0).then_some(w.window_floor),
        }
        .serialize(z)
    }
}

impl<S> KindCursor<S> {
    /// Whether a kind's first listing (known releases, heads, runs) only records what
    /// exists without announcing it: a cursor created at "now" (or by a version that kept
    /// no start). From a start date on, the listing is announced, `floor_day` filtering.
    pub fn first_listing_is_baseline(&self) -> bool {
        self.position > 0 && self.floor_day.is_none()
    }

    /// Whether `c` is at or after where this kind's history begins (in the offset Gitea
    /// wrote its own time with).
    fn admits(&self, c: &Change) -> bool {
        let offset = chrono::DateTime::parse_from_rfc3339(&c.time)
            .ok()
            .map(|own| *own.offset());
        self.owns_at(c.t, offset)
    }
}

/// Added to the server's known offset when a start date is turned into an instant: the
/// offset at that date may be another (daylight saving time), so start earlier, never later.
const DST_MARGIN: i32 = 2 * 3600;

/// The server's UTC offset (seconds) as the repository's own Gitea timestamps carry it (the
/// most eastern of them), `None` when none parses.
async fn server_offset(repo: &Repo<'_>) -> Result<Option<i32>, GiteaError> {
    let r: Value = repo.client.get_json(&repo.path(&[]), &[]).await?;
    Ok(["created_at", "updated_at", "pushed_at"]
        .iter()
        .filter_map(|k| chrono::DateTime::parse_from_rfc3339(r[*k].as_str()?).ok())
        .map(|t| t.offset().local_minus_utc())
        .max())
}

fn null_as_default<'de, D, S>(d: D) -> Result<S, D::Error>
where
    D: serde::Deserializer<'de>,
    S: Deserialize<'de> + Default,
{
    Ok(Option::<S>::deserialize(d)?.unwrap_or_default())
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
    /// `issue`, `pull_request`, `comment`, `release`, `status`, `actions_run`, `actions_job`.
    pub noun: &'static str,
    /// `labeled`, `edited`, `success`, ...
    pub change: String,
    /// `time` of the event, as Gitea wrote it.
    pub time: String,
    /// The Gitea objects as returned.
    pub data: Value,
}

/// What a kind's reader returns: the changes and the cursor's new position and state.
pub struct Collected<S> {
    pub changes: Vec<Change>,
    pub since: i64,
    pub state: S,
}

/// One kind's reader: its typed state and how it reads its changes.
trait Reader {
    /// What the kind keeps between polls (serde defaults, so older cursors load).
    type State: Serialize + serde::de::DeserializeOwned + Default + Send + Sync;
    async fn collect(
        repo: &Repo<'_>,
        cursor: &KindCursor<Self::State>,
    ) -> Result<Collected<Self::State>, GiteaError>;
}

/// The repository a reader works on.
pub struct Repo<'a> {
    pub client: &'a GiteaClient,
    pub owner: &'a str,
    pub name: &'a str,
    /// Read changes from here (Unix seconds; `since - lookback`).
    pub from: i64,
    /// What the source knows of the repository's `updated_at` (`refs` reads nothing while
    /// it has not moved).
    pub updated: Updated,
}

/// What a source knows of a repository's last change (`updated_at`, moved by every push).
#[derive(Debug, Clone, Default)]
pub enum Updated {
    /// Not known: the reader asks `/repos/{o}/{r}`.
    #[default]
    Unknown,
    /// Not changed since the source's last look (an org's repositories listed by update
    /// time showed it older).
    Unchanged,
    /// Changed: the repository as listed, with its `updated_at`.
    At(Value),
}

/// How a source polls one repository's kinds.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where a kind without a cursor begins.
    pub start: Start,
    /// Also publish each change's webhook-shaped events (`webhooks = true`).
    pub webhooks: bool,
    /// The repository's last change, as the source knows it.
    pub updated: Updated,
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
    ) -> Result<Listed, GiteaError> {
        let what = format!("{}/{}", self.owner, self.name);
        list_pages(
            self.client,
            &what,
            &self.path(tail),
            query,
            field,
            max_pages,
        )
        .await
    }
}

/// The items of a list endpoint, and whether they are all of them.
pub(crate) struct Listed {
    pub items: Vec<Value>,
    /// The last page read announced no next one, and the count matched (when sent). A
    /// list that is not complete must not be taken for the whole set (absent is not deleted).
    pub complete: bool,
}

/// Reads a list page by page, following `Link` (`ListPage::more`): a short page is not
/// the end. At most `max_pages` pages; hitting the bound is logged and the list is
/// incomplete.
pub(crate) async fn list_pages(
    client: &GiteaClient,
    what: &str,
    path: &[&str],
    query: &[(&str, String)],
    field: Option<&str>,
    max_pages: usize,
) -> Result<Listed, GiteaError> {
    let mut items = Vec::new();
    for page in 1..=max_pages {
        let asked = client.page_limit();
        let p = client.list_page(path, query, page, field).await?;
        let total = p.total;
        let linked = p.linked;
        let more = p.more(items.len() + p.items.len(), asked);
        items.extend(p.items);
        if !more {
            // With `Link`, X-Total-Count is the list's: fewer read means rows moved
            // between pages while walking (offset paging), so something was skipped.
            let complete = !linked || total.is_none_or(|t| t == items.len() as u64);
            return Ok(Listed { items, complete });
        }
    }
    client.telemetry().emit(telemetry::ListTruncated {
        what,
        path: &path.join("/"),
        pages: max_pages,
        items: items.len(),
    });
    Ok(Listed {
        items,
        complete: false,
    })
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
    Key::kind(kind.name(), owner, name).to_string()
}

fn build(
    ctx: &Context,
    owner: &str,
    name: &str,
    c: &Change,
    visibility: Visibility,
) -> Result<Event, serde_json::Error> {
    event::RepoChange {
        owner,
        name,
        id: &c.id,
        key: &c.key,
        noun: c.noun,
        change: &c.change,
        time: &c.time,
        created: c.t,
        data: &c.data,
    }
    .to_event(&ctx.gitea_url, &ctx.prefixes, visibility)
}

/// Polls `kinds` of one repository: read, publish new changes oldest first, move each
/// kind's cursor after its acks. `start`: where a kind without a cursor begins.
///
/// Each kind fails alone: a Gitea error (issues disabled: 404; a 500; anything) or a cursor
/// written meanwhile by someone else is logged once with the repository, kind, URL and
/// status, counted, and the other kinds (and repositories) go on. A kind that keeps
/// failing is skipped for a growing number of polls (1, 3, 7, ... 63). Only NATS trouble
/// (publishing, the bucket) ends the poll: it stops every repository alike.
pub async fn poll_repo(
    ctx: &Context,
    owner: &str,
    name: &str,
    kinds: &[RepoKind],
    opts: &Options,
    shutdown: &Shutdown,
) -> Result<usize, PollError> {
    let mut published = 0;
    let visibility = tokio::sync::OnceCell::new();
    for &kind in kinds {
        if shutdown.is_fired() {
            break;
        }
        let failing = kv_key(kind, owner, name);
        if ctx.failing.skip(&failing) {
            continue;
        }
        let result = match kind {
            RepoKind::Issues => {
                poll_kind::<issues::Issues>(ctx, owner, name, kind, opts, &visibility, shutdown)
                    .await
            }
            RepoKind::Comments => {
                poll_kind::<comments::Comments>(ctx, owner, name, kind, opts, &visibility, shutdown)
                    .await
            }
            RepoKind::Releases => {
                poll_kind::<releases::Releases>(ctx, owner, name, kind, opts, &visibility, shutdown)
                    .await
            }
            RepoKind::Statuses => {
                poll_kind::<statuses::Statuses>(ctx, owner, name, kind, opts, &visibility, shutdown)
                    .await
            }
            RepoKind::Actions => {
                poll_kind::<actions::Actions>(ctx, owner, name, kind, opts, &visibility, shutdown)
                    .await
            }
            RepoKind::Refs => {
                poll_kind::<refs::Refs>(ctx, owner, name, kind, opts, &visibility, shutdown).await
            }
        };
        match result {
            Ok(n) => {
                published += n;
                if let Some(failures) = ctx.failing.succeeded(&failing) {
                    ctx.telemetry.emit(telemetry::RepoKindRecovered {
                        owner,
                        repo: name,
                        kind: kind.name(),
                        failures,
                    });
                }
            }
            Err(PollError::Gitea(e)) => {
                let (failures, skip) = ctx.failing.failed(&failing);
                ctx.telemetry.emit(telemetry::RepoKindFailed {
                    owner,
                    repo: name,
                    kind: kind.name(),
                    url: e.url(),
                    status: e.status(),
                    reason: e.reason(),
                    error: &e,
                    failures,
                    skip_polls: skip,
                });
            }
            Err(PollError::State(e @ crate::store::StoreError::Conflict { .. })) => {
                ctx.telemetry.emit(telemetry::RepoKindConflict {
                    owner,
                    repo: name,
                    kind: kind.name(),
                    error: &e,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(published)
}

async fn poll_kind<R: Reader>(
    ctx: &Context,
    owner: &str,
    name: &str,
    kind: RepoKind,
    opts: &Options,
    visibility: &tokio::sync::OnceCell<Visibility>,
    shutdown: &Shutdown,
) -> Result<usize, PollError> {
    let key = kv_key(kind, owner, name);
    let stored = ctx.store.get::<KindCursor<R::State>>(&key).await?;
    let mut repo = Repo {
        client: &ctx.client,
        owner,
        name,
        from: 0,
        updated: opts.updated.clone(),
    };
    let (cursor, revision) = match stored {
        Some(stored) => stored,
        None => (new_cursor(&repo, opts.start).await?, 0),
    };
    repo.from = cursor.window_start(ctx.lookback).max(0);
    let read = R::collect(&repo, &cursor);
    let collected = tokio::select! {
        biased;
        _ = shutdown.wait() => return Ok(0),
        r = read => r?,
    };
    let mut changes = collected.changes;
    let n_read = changes.len();
    changes.retain(|c| cursor.admits(c));
    if changes.len() < n_read {
        ctx.telemetry.emit(telemetry::RepoChangesBeforeStart {
            owner,
            repo: name,
            kind: kind.name(),
            n: n_read - changes.len(),
        });
    }
    // A ref's deletion the feed already told (its row's second falls between the listing
    // that last saw the ref and this one) is not told again (`refs`).
    let claimer = crate::poll::pipeline::owner_tag(&key);
    changes.retain(|c| {
        if c.noun != "ref" || c.change != "deleted" {
            return true;
        }
        let r#ref = c.data["ref"].as_str().unwrap_or("");
        let from = c.data["seen_before"].as_i64().unwrap_or(c.t);
        // The feed row's second is Gitea's clock, the listings' ours.
        ctx.index.claim_span(
            claimer,
            &event::delete_key(owner, name, r#ref),
            from - refs::CLOCK_SKEW,
            c.t + refs::CLOCK_SKEW,
        )
    });
    // A ref that moved twice between two listings, the first move told by the feed: this
    // push starts where that one ended.
    for c in changes
        .iter_mut()
        .filter(|c| c.noun == "ref" && c.change != "deleted")
    {
        let r#ref = c.data["ref"].as_str().unwrap_or("").to_string();
        let from = c.data["seen_before"].as_i64().unwrap_or(c.t);
        let after = c.data["after"].as_str().unwrap_or("").to_string();
        if let Some(head) = ctx
            .index
            .head_since(&event::ref_key(owner, name, &r#ref), from)
            && head != after
        {
            c.data["before"] = Value::String(head);
            if c.change == "created" {
                c.change = "pushed".to_string();
            }
        }
    }
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
        .collect::<Vec<_>>();
    // Who may read them, as the repository is now: asked once per poll of the repository,
    // and only when there is something to publish. Not known (Gitea failed): the kind
    // fails this poll and is read again (a public repository's change is not published as
    // private, nor the reverse).
    let visibility = match candidates.is_empty() {
        true => Visibility::Private,
        false => {
            *visibility
                .get_or_try_init(|| visibility_now(ctx, owner, name, &opts.updated))
                .await?
        }
    };
    let mut target = KindTarget {
        ctx,
        owner,
        name,
        kind,
        key,
        cursor,
        revision,
        read_to: collected.since,
        webhooks: opts.webhooks,
        visibility,
        stop: shutdown.clone(),
    };
    // The kind's cursor key names the reader: its own failed batch it may publish again.
    let reader = target.key.clone();
    let out = ctx
        .pipeline(&reader)
        .run(&mut target, candidates, shutdown)
        .await?;
    if !out.stopped {
        let cursor = &mut target.cursor;
        cursor.advance(collected.since, ctx.lookback);
        cursor.state = collected.state;
        ctx.store.put(&target.key, cursor, target.revision).await?;
    }
    if out.published > 0 {
        ctx.telemetry.emit(telemetry::RepoChangesPublished {
            owner,
            repo: name,
            kind: kind.name(),
            count: out.published,
        });
    }
    Ok(out.published)
}

/// Who may read a repository's events ([`Visibility::of_repo`]): from the listing of this
/// poll when it has the repository, else from `/repos/{owner}/{name}`.
async fn visibility_now(
    ctx: &Context,
    owner: &str,
    name: &str,
    updated: &Updated,
) -> Result<Visibility, GiteaError> {
    let v = match updated {
        Updated::At(listed) => Visibility::of_repo(listed),
        _ => {
            let repo: Value = ctx.client.get_json(&["repos", owner, name], &[]).await?;
            Visibility::of_repo(&repo)
        }
    };
    let names = &ctx.telemetry.health.names;
    names.learn(&format!("{owner}/{name}"), v == Visibility::Private);
    Ok(ctx.prefixes.decide(v))
}

/// Where a source's repository kinds begin: its `start`, and for `start = "now"` when the
/// source began.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub at: StartAt,
    /// Unix seconds of the source's first cursor write (`None`: not known; the kind's own
    /// first read is taken).
    pub source_began: Option<i64>,
}

/// The cursor of a kind that has none, as `start` says. Under `start = "now"` it begins
/// where the source began, not at this first read: a quiet repository of an org may be
/// read for the first time long after (its turn in the sweep, or the search that found a
/// change in it), and that change must not be taken for one before the start.
async fn new_cursor<S: Default>(
    repo: &Repo<'_>,
    start: Start,
) -> Result<KindCursor<S>, GiteaError> {
    let mut cursor = KindCursor::default();
    match start.at {
        StartAt::Beginning => {}
        StartAt::Now => {
            let now = chrono::Utc::now().timestamp();
            let began = start.source_began.map_or(now, |t| t.min(now));
            cursor.position = began - 1;
            cursor.floor = began;
        }
        StartAt::Date(day) => {
            // Local midnight of `day` at the server's offset (pushed east by the margin:
            // earlier), or at the most eastern offset there is when none is known. Which
            // changes belong is decided by each one's own local date (`admits`).
            let offset = server_offset(repo)
                .await?
                .map_or(MAX_OFFSET, |o| o.saturating_add(DST_MARGIN).min(MAX_OFFSET));
            cursor.position = midnight(day, offset);
            cursor.floor_day = Some(day);
        }
    }
    Ok(cursor)
}

/// One kind's cursor of one repository as the pipeline's target.
struct KindTarget<'a, S> {
    ctx: &'a Context,
    owner: &'a str,
    name: &'a str,
    kind: RepoKind,
    key: String,
    cursor: KindCursor<S>,
    revision: u64,
    /// Where the reader says the kind is read up to: a batch never moves `since` past it
    /// (an incomplete list leaves it below what was missed).
    read_to: i64,
    /// Also publish each change's webhook-shaped events (`webhooks = true`).
    webhooks: bool,
    /// Who may read the repository's events.
    visibility: Visibility,
    /// The poll's stop: fetches for webhook payloads (reads only) are abandoned at it.
    stop: Shutdown,
}

impl<S: Serialize + Send + Sync> Target for KindTarget<'_, S> {
    type Item = Change;

    fn seen(&mut self) -> &mut SeenSet {
        &mut self.cursor.seen
    }

    async fn build(&mut self, batch: &[Pending<Change>]) -> Vec<Event> {
        let mut hooks = self
            .webhooks
            .then(|| crate::poll::pipeline::hooks::Fetcher::new(self.ctx, &self.stop));
        let mut events = Vec::with_capacity(batch.len());
        for c in batch {
            match build(self.ctx, self.owner, self.name, &c.item, self.visibility) {
                Ok(e) => {
                    // The change's webhook-shaped events go in the same batch, after it.
                    let more = match hooks.as_mut() {
                        Some(f) => {
                            let change = crate::event::hook::Change {
                                noun: c.item.noun,
                                change: &c.item.change,
                                data: &c.item.data,
                            };
                            crate::poll::pipeline::hooks::change_events(
                                f,
                                self.owner,
                                self.name,
                                &change,
                                &c.item.time,
                                &e,
                            )
                            .await
                        }
                        None => Vec::new(),
                    };
                    events.push(e);
                    events.extend(more);
                }
                Err(e) => {
                    self.ctx.telemetry.emit(telemetry::RepoEventSkipped {
                        owner: self.owner,
                        repo: self.name,
                        kind: self.kind.name(),
                        reason: &e.to_string(),
                    });
                }
            }
        }
        events
    }

    async fn commit(
        &mut self,
        batch: &[Pending<Change>],
        events: &[Event],
        outcome: &BatchOutcome,
    ) -> Result<(), PollError> {
        let cursor = &mut self.cursor;
        cursor.published += outcome.stored as u64;
        // Everything read up to the batch's last change is published; the trailing window
        // re-reads what shares its second.
        let to = batch
            .last()
            .map_or(cursor.position, |last| last.id.t.min(self.read_to));
        cursor.advance(to, self.ctx.lookback);
        if let Some(from) = cursor.bound(MAX_SEEN, None) {
            self.ctx.telemetry.emit(telemetry::RepoWindowShortened {
                owner: self.owner,
                repo: self.name,
                kind: self.kind.name(),
                from,
            });
        }
        self.revision = self
            .ctx
            .store
            .put(&self.key, &*cursor, self.revision)
            .await?;
        self.ctx.telemetry.emit(telemetry::RepoBatchPublished {
            owner: self.owner,
            repo: self.name,
            stored_op_types: &stored_op_types(events, outcome),
        });
        Ok(())
    }
}

/// Lists an org's repositories (for `repos = true`).
pub async fn org_repos(
    client: &GiteaClient,
    org: &str,
) -> Result<Vec<(String, String)>, GiteaError> {
    let listed = list_pages(client, org, &["orgs", org, "repos"], &[], None, 100).await?;
    let mut out = Vec::new();
    let names = &client.telemetry().health.names;
    for r in &listed.items {
        let full = r["full_name"].as_str().unwrap_or("");
        names.learn(full, Visibility::of_repo(r) == Visibility::Private);
        if let Some((o, n)) = full.split_once('/') {
            out.push((o.to_string(), n.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use gitea_sim::{FakeGitea, SimOptions};

    /// A fake Gitea serving at most `max` items a page, and a client that guesses 50 (it
    /// never read the server's settings).
    async fn small_pages(max: usize) -> (FakeGitea, GiteaClient) {
        let g = FakeGitea::start(SimOptions {
            max_response_items: max,
            ..Default::default()
        })
        .await
        .expect("the fake Gitea starts");
        g.add_org("acme");
        g.add_repo("acme", "widgets");
        let cfg: crate::config::GiteaConfig = toml::from_str(&format!(
            "url = \"{}\"\nrequests_per_second = 500\nburst = 100",
            g.url()
        ))
        .expect("gitea config");
        let client =
            GiteaClient::new(&cfg, None, crate::telemetry::Telemetry::new()).expect("client");
        assert_eq!(client.page_limit(), 50);
        (g, client)
    }

    fn repo(client: &GiteaClient) -> Repo<'_> {
        Repo {
            client,
            owner: "acme",
            name: "widgets",
            from: 0,
            updated: Updated::Unknown,
        }
    }

    #[tokio::test]
    async fn lists_follow_link_past_pages_shorter_than_the_client_asked_for() {
        let (g, client) = small_pages(7).await;
        for i in 0..30 {
            g.import_release("acme/widgets", "alice", &format!("v{i}"), "r");
        }
        for i in 0..11 {
            g.add_repo("acme", &format!("r{i}"));
        }
        let listed = repo(&client)
            .list_all(&["releases"], &[], None, 100)
            .await
            .expect("releases");
        assert_eq!(
            listed.items.len(),
            30,
            "every page read, not only the first"
        );
        assert!(listed.complete);
        let repos = org_repos(&client, "acme").await.expect("org repos");
        assert_eq!(repos.len(), 12);
        // The bound: fewer pages than the list holds is an incomplete list.
        let listed = repo(&client)
            .list_all(&["releases"], &[], None, 2)
            .await
            .expect("releases");
        assert!(!listed.complete);
    }

    #[tokio::test]
    async fn releases_on_pages_smaller_than_guessed_are_all_seen_and_none_is_taken_for_deleted() {
        let (g, client) = small_pages(7).await;
        let ids: Vec<i64> = (0..30)
            .map(|i| g.import_release("acme/widgets", "alice", &format!("v{i}"), "r"))
            .collect();
        let repo = repo(&client);
        let first = releases::Releases::collect(&repo, &KindCursor::default())
            .await
            .expect("first poll");
        let published = first
            .changes
            .iter()
            .filter(|c| c.change == "published")
            .count();
        assert_eq!(published, 30);
        g.delete_release("acme/widgets", ids[3]);
        let cursor = KindCursor {
            window: Window {
                position: first.since,
                ..Default::default()
            },
            state: first.state,
            ..Default::default()
        };
        let second = releases::Releases::collect(&repo, &cursor)
            .await
            .expect("second poll");
        let changes: Vec<(&str, i64)> = second
            .changes
            .iter()
            .map(|c| (c.change.as_str(), c.seq))
            .collect();
        assert_eq!(changes, [("deleted", ids[3])]);
    }

    #[tokio::test]
    async fn refs_on_pages_smaller_than_guessed_are_all_seen_and_a_removed_one_is_one_deletion() {
        let (g, client) = small_pages(7).await;
        for i in 0..20 {
            g.git_push("alice", "acme/widgets", &format!("b{i}"), 1);
        }
        for i in 0..9 {
            g.git_push_tag("alice", "acme/widgets", &format!("v{i}"), &"a".repeat(40));
        }
        let repo = repo(&client);
        // A cursor made at "now": the first listing records what exists.
        let cursor = KindCursor {
            window: Window {
                position: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        let first = refs::Refs::collect(&repo, &cursor)
            .await
            .expect("first poll");
        assert!(first.changes.is_empty(), "the baseline announces nothing");
        assert_eq!(first.state.refs.as_ref().map(|r| r.len()), Some(29));
        g.git_delete_branch("alice", "acme/widgets", "b3");
        let head = g.git_push("alice", "acme/widgets", "b4", 1);
        let cursor = KindCursor {
            window: Window {
                position: first.since,
                ..Default::default()
            },
            state: first.state,
            ..Default::default()
        };
        let second = refs::Refs::collect(&repo, &cursor)
            .await
            .expect("second poll");
        let mut changes: Vec<(String, String)> = second
            .changes
            .iter()
            .map(|c| {
                (
                    c.change.clone(),
                    c.data["ref"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        changes.sort();
        assert_eq!(
            changes,
            [
                ("deleted".to_string(), "refs/heads/b3".to_string()),
                ("pushed".to_string(), "refs/heads/b4".to_string()),
            ]
        );
        let pushed = second
            .changes
            .iter()
            .find(|c| c.change == "pushed")
            .unwrap();
        assert_eq!(pushed.data["after"], head.as_str());
        assert_eq!(
            pushed.key,
            event::push_key("acme", "widgets", "refs/heads/b4", &head)
        );
    }

    /// Kinds' cursors as the code before `Window` wrote them (bytes from its serializer).
    const STORED_KIND_FULL: &str = r#"{"since":1764583200,"seen":[{"k":"issue_label/acme/widgets/7/3","t":1764583100}],"state":{"known":[1,2],"repo_id":42},"published":9,"floor":1764500000,"floor_day":"2025-11-30","window_floor":1764583050}"#;
    const STORED_KIND_NEW: &str = r#"{"since":7,"seen":[],"state":null,"published":0}"#;

    #[test]
    fn stored_kind_cursors_load_and_are_written_back_byte_for_byte() {
        for stored in [STORED_KIND_FULL, STORED_KIND_NEW] {
            let c: KindCursor = serde_json::from_str(stored).unwrap();
            assert_eq!(serde_json::to_string(&c).unwrap(), stored);
        }
        let c: KindCursor = serde_json::from_str(STORED_KIND_FULL).unwrap();
        assert_eq!(
            (
                c.position,
                c.floor,
                c.window_floor,
                c.seen.len(),
                c.published
            ),
            (1_764_583_200, 1_764_500_000, 1_764_583_050, 1, 9)
        );
        assert_eq!(c.window_start(300), 1_764_583_050);
        let c: KindCursor = serde_json::from_str(STORED_KIND_NEW).unwrap();
        assert_eq!((c.floor, c.window_floor), (0, 0), "unset");
    }

    fn load<S: serde::de::DeserializeOwned + Default>(v: Value) -> KindCursor<S> {
        serde_json::from_value(v).expect("an old cursor loads")
    }

    #[test]
    fn cursors_written_with_untyped_state_still_load_into_each_kinds_state() {
        let seen = json!([{ "k": "abc", "t": 5 }]);
        let c: KindCursor<issues::State> =
            load(json!({ "since": 7, "seen": seen, "state": null, "published": 3 }));
        assert_eq!((c.position, c.seen.len(), c.published), (7, 1, 3));
        let c: KindCursor<issues::State> = load(json!({ "since": 7 }));
        assert_eq!(c.state, issues::State {});

        let c: KindCursor<comments::State> =
            load(json!({ "since": 1, "state": { "repo_id": 42 } }));
        assert_eq!(c.state.repo_id, Some(42));

        let c: KindCursor<releases::State> = load(json!({ "since": 1, "state": {
            "repo_id": 42,
            "known": { "9": { "fp": "f", "tag_name": "v1", "name": "First" } }
        } }));
        assert_eq!(c.state.repo_id, Some(42));
        let known = c.state.known.expect("known releases");
        assert_eq!(known[&9].fp, "f");
        assert_eq!(known[&9].tag_name, "v1");
        assert_eq!(known[&9].name, json!("First"));
        let c: KindCursor<releases::State> =
            load(json!({ "since": 1, "state": { "repo_id": 42 } }));
        assert!(c.state.known.is_none(), "never listed stays never listed");

        let c: KindCursor<statuses::State> = load(json!({ "since": 1, "state": {
            "heads": { "main": "aaa" },
            "tracked": { "bbb": { "since": 100, "last": 4, "branch": "main" } }
        } }));
        assert_eq!(c.state.heads.expect("heads")["main"], "aaa");
        assert_eq!(c.state.tracked["bbb"].last, 4);
        assert_eq!(c.state.tracked["bbb"].branch, "main");

        let c: KindCursor<refs::State> = load(json!({ "since": 1, "state": {
            "refs": { "refs/heads/main": "aaa" }, "listed_at": 5
        } }));
        assert_eq!(c.state.refs.expect("refs")["refs/heads/main"], "aaa");
        assert_eq!((c.state.listed_at, c.state.updated_at), (5, None));

        let c: KindCursor<actions::State> =
            load(json!({ "since": 1, "state": { "unsupported": true } }));
        assert!(c.state.unsupported);
        let c: KindCursor<actions::State> = load(json!({ "since": 1, "state": {
            "runs": { "12": "completed/success" }
        } }));
        assert!(!c.state.unsupported);
        assert_eq!(c.state.runs.expect("runs")[&12], "completed/success");
    }
}
