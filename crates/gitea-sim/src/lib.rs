//! A fake Gitea HTTP server ("the simulator") for integration tests, the `demo`
//! command and the benchmark.
//!
//! Modules, lowest first; each imports only modules above it in this list
//! (`scripts/module-graph.py` checks that there is no circle):
//!
//! * `zone`: the server's time zone ([`ServerZone`]) and time formatting (leaf).
//! * `base`: [`ActionId`], the token user, `lock`, `raw`, `splitmix` (leaf).
//! * `push`: push payload JSON, rendered from a seed or a counter (model).
//! * `rows`: feed-row model: accounts (with their [`Visibility`]) and the Actions bot,
//!   repositories, actions, [`NewAction`], who reads a feed (model).
//! * `engine`: the engine mode ([`Engine`]): Gitea's `action` table and indexes on
//!   MariaDB, PostgreSQL or SQLite, the table changes the world records ([`World`] does
//!   not see the database) and Gitea's feed queries (database).
//! * `objects`: repository objects (issues, comments, releases, branches,
//!   statuses, runs) with their queries and mutations (model).
//! * `world`: the [`World`]: state, actions, per-feed indexes and feed paging; in engine
//!   mode it also records every change of the feeds' rows for the `engine` table.
//! * `repo_ops`: the [`World`] methods that change repository objects.
//! * `generate`: history and live-activity generators over the [`World`] API.
//! * `shared`: what the handle, server and tasks share ([`SimOptions`], faults, hook).
//! * `repo_json`: the serde structs of the repository endpoints (http).
//! * `repo_http`: the repository endpoints' handlers: filter, page, render (http).
//! * `server`: axum front: faults, token, routing, feeds, `Link`/`X-Total-Count` (http);
//!   a feed page is computed after routing, asynchronously (it may wait for the engine).
//! * `lib` (this file): the [`FakeGitea`] facade and the public re-exports.
//! * `tests`: the simulator's own tests over real HTTP.
//!
//! It serves the parts of Gitea's REST API that the sourcer reads, with the
//! awkward behaviour of the real thing (see `shared/gitea/FACTS.md`):
//!
//! * **One row per receiver.** Every logical action is stored as the original row
//!   (`user_id == act_user_id`, shown in the repository feed and the actor's user
//!   feed), a copy for the repository owner when that is an org or another user
//!   (shown in `/orgs/{org}/activities/feeds` or the owner's user feed), and a copy
//!   per watcher. Each row has its own `id`: the same event has a different `id`
//!   in the repository feed and in the org feed. A copy's `created` may be one
//!   second later than the original's (`copy_delay_secs`).
//! * **Ordering by `created` only**, with one-second resolution: rows of the same
//!   second come back in a fresh random order on every request (the shuffle is
//!   seeded, so a test run is reproducible) under [`Engine::Random`], or in the order of a
//!   real database engine (below).
//! * **Engine mode** ([`SimOptions::engine`], by default from `GITEA_SIM_ENGINE`:
//!   `random`, `sqlite`, `mariadb`, `postgres`): the action rows are mirrored into a table
//!   with Gitea's schema and indexes on an in-memory SQLite, a MariaDB
//!   (`mysql://root@127.0.0.1:3306/test`, `GITEA_SIM_MARIADB_URL`) or a PostgreSQL
//!   (`postgres://postgres@127.0.0.1:5432/test`, `GITEA_SIM_POSTGRES_URL`), one table or
//!   schema per simulator, dropped at [`FakeGitea::shutdown`]. World changes are recorded
//!   and applied (batched) before the next feed query; each page is Gitea's `GetFeeds`
//!   query (`SELECT * ... ORDER BY created_unix DESC LIMIT L OFFSET K` and a `count(*)`;
//!   the ids first from page 10 on) and the engine picks the rows and their order, which
//!   the world renders. MariaDB and PostgreSQL order a tie by `LIMIT`/`OFFSET` and the
//!   query plan, the same way on every re-read: a tie cut by a page boundary can show one
//!   row twice and hide another for good. An engine that cannot be reached fails
//!   [`FakeGitea::start`] with the command that starts it.
//! * **Offset paging on live data** (`page`, `limit`, capped at
//!   `max_response_items`), `X-Total-Count` and a Gitea-style `Link` header.
//!   Inserting or deleting rows between two page requests shifts the pages, and
//!   [`FakeGitea::set_feed_hook`] lets a test do exactly that in the middle of a walk.
//! * **`date=YYYY-MM-DD`** selects one day in the *server's* time zone
//!   ([`SimOptions::utc_offset_secs`], `+08:00` by default, or the named zone
//!   [`SimOptions::time_zone`] with its daylight saving time), and `created` strings
//!   carry the offset in force at that instant. As in Gitea, `date=D` is the 86,400 s
//!   from local midnight of `D`: on a 25-hour day the last hour is in no `date=`
//!   answer, on a 23-hour day `date=D` also returns the first hour of `D+1`.
//! * **Late rows** ([`NewAction::hidden`] then [`FakeGitea::reveal`]): a row with an
//!   earlier `created` and a smaller `id` becomes visible after later ones were
//!   served. **Deletions as Gitea makes them**: a deleted comment's rows are soft-deleted
//!   (`is_deleted`; [`FakeGitea::delete_comment`], [`FakeGitea::soft_delete`] for any
//!   action and all its copies); a deleted issue's comment rows and creation row are
//!   hard-deleted, its merge row stays ([`FakeGitea::delete_issue`]); a deleted
//!   repository's rows are all hard-deleted ([`FakeGitea::delete_repo`]); **the
//!   `delete_old_actions` cron** ([`FakeGitea::delete_older_than`]) hard-deletes old rows.
//!   A hard delete is a `DELETE` in engine mode.
//! * **Faults** ([`FakeGitea::inject`]): error statuses with a JSON body, `429` with
//!   `Retry-After` in seconds or as an HTTP date, a truncated `200` body, delays.
//! * **Token authentication** (`Authorization: token X` or `Bearer X`) and a
//!   sub-URL install ([`SimOptions::path_prefix`]).
//! * **Who reads decides whose rows show** (go-gitea/gitea models/activities/action.go
//!   `ActivityQueryCondition`, read at query time): a token that is not a site admin's
//!   ([`SimOptions::admin`] false, the default) sees in no feed the rows of the Gitea
//!   Actions bot
//!   ([`NewAction::by_actions_bot`], user id [`ACTIONS_BOT_ID`], no `user` row, served
//!   with `"act_user": null`), of users and orgs with private visibility or of users who
//!   keep their activity private ([`FakeGitea::set_user_visibility`],
//!   [`FakeGitea::set_keep_activity_private`]), except its own user's rows, an org's own
//!   rows in that org's feed, and everything in its own user feed (`GetFeeds` skips the
//!   condition there). An anonymous request (no token configured, no `Authorization`)
//!   sees public actors only. An admin token sees everything. In engine mode the query
//!   carries `act_user_id NOT IN (...)` of the hidden actors, computed from the world at
//!   query time, whenever someone is hidden. Not played: the orgs a user belongs to
//!   (whose rows Gitea admits in that user's feed) and repository permissions.
//! * **Forgejo mode** ([`SimOptions::forgejo`]): the version is Forgejo's
//!   (`16.0.1+gitea-1.22.0` unless [`SimOptions::version`] was set), issue, pull request,
//!   comment and review rows carry a JSON array (`["12","Title"]`), `publish_release`
//!   rows the bare tag, tag pushes `"Commits":[]`, and every deletion is hard. The world
//!   stores Gitea's forms and renders Forgejo's at output time, so
//!   [`FakeGitea::logical_actions`] says what the feed serves.
//!
//! Other endpoints: `GET /api/v1/version`, `/api/v1/settings/api`, `/api/v1/user` (the
//! token's user, `is_admin` = [`SimOptions::admin`]), `/api/v1/repos/{o}/{r}`,
//! `/api/v1/orgs/{org}`, `/api/v1/orgs/{org}/repos`, `/api/v1/users/{u}`.
//!
//! **Repository objects the feed does not carry** (issues and pull requests with
//! labels, assignees, milestones, review requests and timelines; comments; releases;
//! branches; commit statuses; Actions runs) are changed with
//! [`FakeGitea::create_issue`], [`FakeGitea::label_issue`], [`FakeGitea::comment_on`],
//! [`FakeGitea::add_status`], [`FakeGitea::add_run`] and friends, and served by
//! `/api/v1/repos/{o}/{r}/issues` (`state`, `type`, `since`, `before`; newest
//! `updated_at` first), `/issues/{index}`, `/issues/{index}/timeline`,
//! `/issues/comments`, `/issues/comments/{id}`, `/releases`, `/branches`,
//! `/statuses/{sha}` and `/actions/runs` (`404` after
//! [`FakeGitea::set_actions_supported`]`(false)`). Lists are paged like the feeds.
//! [`FakeGitea::advance_clock`] moves the simulated clock so `since` filters can be
//! tested without sleeping.
//!
//! The data lives in a [`World`] behind a mutex. Rows are stored compactly (no JSON
//! per row; push payloads made by the generators are re-rendered from a seed on
//! demand) and indexed per feed, sorted by `created`, so a page costs
//! `O(page + log n)` plus the shuffle of the same-second groups that touch it.
//! [`FakeGitea::generate_history`] builds a large history quickly and
//! [`FakeGitea::spawn_activity`] keeps adding live actions.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use gitea_sim::{FakeGitea, NewAction, SimOptions};
//! let gitea = FakeGitea::start(SimOptions::default()).await?;
//! gitea.add_org("acme");
//! gitea.add_repo("acme", "widgets");
//! gitea.push_action(NewAction::push("alice", "acme/widgets", "main", 2));
//! println!("feed: {}/api/v1/orgs/acme/activities/feeds", gitea.url());
//! gitea.shutdown().await;
//! # Ok(()) }
//! ```

/// The zone database of [`SimOptions::time_zone`], re-exported for callers.
pub use chrono_tz;

mod base;
mod engine;
mod generate;
mod objects;
mod push;
mod repo_http;
mod repo_json;
mod repo_ops;
mod rows;
mod server;
mod shared;
#[cfg(test)]
mod tests;
pub mod truth;
mod world;
mod zone;

pub use base::ActionId;
pub use engine::{ENGINE_ENV, Engine};
pub use generate::HistorySpec;
pub use rows::{
    ACTIONS_BOT_ID, ACTIONS_BOT_LOGIN, LogicalAction, NewAction, NewComment, Visibility,
};
pub use shared::{Fault, FaultKind, FeedHook, FeedPage, RequestRecord, SimOptions};
pub use world::World;
pub use zone::ServerZone;

use base::{TOKEN_USER, lock, splitmix};
use shared::Shared;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running fake Gitea. Dropping it stops the server (abruptly);
/// [`FakeGitea::shutdown`] stops it gracefully.
pub struct FakeGitea {
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeGitea {
    /// Start on `127.0.0.1` with an ephemeral port.
    pub async fn start(opts: SimOptions) -> std::io::Result<FakeGitea> {
        FakeGitea::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), opts).await
    }

    /// Start on `addr`.
    pub async fn start_on(addr: SocketAddr, mut opts: SimOptions) -> std::io::Result<FakeGitea> {
        opts.path_prefix = normalize_prefix(&opts.path_prefix);
        opts.max_response_items = opts.max_response_items.max(1);
        opts.default_paging_num = opts.default_paging_num.max(1);
        let offset = FixedOffset::east_opt(opts.utc_offset_secs).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("utc_offset_secs out of range: {}", opts.utc_offset_secs),
            )
        })?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}{}", opts.path_prefix);
        let zone = match opts.time_zone {
            Some(tz) => ServerZone::Named(tz),
            None => ServerZone::Fixed(offset),
        };
        let table = engine::Table::open(opts.engine).await?;
        let mut world = World::new(base_url, zone, opts.seed, table.is_some(), opts.forgejo);
        world.admin_view = opts.admin;
        let shared = Arc::new(Shared {
            opts,
            addr,
            world: Mutex::new(world),
            table: table.map(tokio::sync::Mutex::new),
            hook: Mutex::new(None),
            faults: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        let app = server::router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "fake gitea server stopped with an error");
            }
        });
        Ok(FakeGitea {
            shared,
            server: Some(server),
            stop: Some(tx),
        })
    }

    /// `http://127.0.0.1:PORT` + path prefix, without a trailing slash.
    pub fn url(&self) -> String {
        format!(
            "http://{}{}",
            self.shared.addr, self.shared.opts.path_prefix
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The options in force (path prefix normalized).
    pub fn options(&self) -> &SimOptions {
        &self.shared.opts
    }

    /// Run `f` with the world locked.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut lock(&self.shared.world))
    }

    /// Add a user; idempotent (returns the existing id, also for an org).
    pub fn add_user(&self, login: &str) -> i64 {
        self.with_world(|w| w.add_user(login))
    }

    /// Add an org (a user of type organization); idempotent. An existing plain user
    /// of that name (e.g. made by `add_repo` as an owner) becomes an org.
    pub fn add_org(&self, name: &str) -> i64 {
        self.with_world(|w| w.add_org(name))
    }

    /// `owner/name` of every repository, in creation order.
    pub fn repo_names(&self) -> Vec<String> {
        self.with_world(|w| w.repo_names())
    }

    /// Names of every org, in creation order.
    pub fn org_names(&self) -> Vec<String> {
        self.with_world(|w| w.org_names())
    }

    /// Add a repository; the owner is created as a user when missing. Idempotent.
    pub fn add_repo(&self, owner: &str, name: &str) -> i64 {
        self.with_world(|w| w.add_repo(owner, name))
    }

    /// `user` watches `repo` (`owner/name`): later actions get a copy for them.
    pub fn add_watcher(&self, repo: &str, user: &str) {
        self.with_world(|w| w.add_watcher(repo, user))
    }

    /// Make a repository private or public (no-op for an unknown repository).
    /// The token no longer sees this org or repository (`owner/name`) in listings
    /// (`/admin/orgs`, `/user/orgs`, `/repos/search`; an org's repositories with it): as if
    /// deleted or access revoked.
    pub fn unlist(&self, name: &str) {
        self.with_world(|w| {
            w.unlisted.insert(name.to_string());
        })
    }

    pub fn set_private(&self, repo: &str, private: bool) {
        self.with_world(|w| w.set_private(repo, private))
    }

    /// Set a user's or an org's visibility (see [`World::set_user_visibility`]): a reader
    /// who is not a site admin no longer sees its rows in any feed when private (nor an
    /// anonymous one when limited), from the next request on, rows already made included.
    pub fn set_user_visibility(&self, login: &str, visibility: Visibility) {
        self.with_world(|w| w.set_user_visibility(login, visibility))
    }

    /// Set a user's "keep activity private" (see [`World::set_keep_activity_private`]):
    /// hides their rows from every reader but site admins and themselves.
    pub fn set_keep_activity_private(&self, login: &str, keep: bool) {
        self.with_world(|w| w.set_keep_activity_private(login, keep))
    }

    /// Insert an action: its original row and its copies.
    pub fn push_action(&self, a: NewAction) -> ActionId {
        self.with_world(|w| w.push_action(a))
    }

    /// Make a late (hidden) action visible.
    pub fn reveal(&self, id: ActionId) {
        self.with_world(|w| w.reveal(id))
    }

    /// Soft-delete an action and all its copies (`is_deleted`), as Gitea deletes a
    /// comment's rows (see [`World::soft_delete`]).
    pub fn soft_delete(&self, id: ActionId) {
        self.with_world(|w| w.soft_delete(id))
    }

    /// Delete a comment: gone from its issue, its rows soft-deleted (see
    /// [`World::delete_comment`]).
    pub fn delete_comment(&self, repo: &str, comment_id: i64) {
        self.with_world(|w| w.delete_comment(repo, comment_id))
    }

    /// Delete an issue or pull request: its comments' rows and its creation row are
    /// hard-deleted, its merge row stays (see [`World::delete_issue`]). Returns how many
    /// actions were deleted.
    pub fn delete_issue(&self, repo: &str, index: i64) -> usize {
        self.with_world(|w| w.delete_issue(repo, index))
    }

    /// Delete a repository: every row of it is hard-deleted, copies included, and it
    /// answers `404` (see [`World::delete_repo`]).
    pub fn delete_repo(&self, repo: &str) {
        self.with_world(|w| w.delete_repo(repo))
    }

    /// The `delete_old_actions` cron: hard-delete every row with `created < t`.
    pub fn delete_older_than(&self, t: DateTime<FixedOffset>) {
        self.with_world(|w| w.delete_older_than(t))
    }

    /// Logical actions that are visible, not deleted and whose original row exists.
    pub fn action_count(&self) -> usize {
        self.with_world(|w| w.action_count())
    }

    /// Every visible, not deleted logical action, oldest first (by created, then id).
    pub fn logical_actions(&self) -> Vec<LogicalAction> {
        self.with_world(|w| w.logical_actions())
    }

    /// The actions a sourcer can tell apart, oldest first: [`Self::logical_actions`] without
    /// a repeatable action that the same actor repeated in the same repository with the same
    /// op type, content and ref within one second of the last one kept. The sourcer takes
    /// such a repeat for a copy of the first (a documented limit: an action's id is made of
    /// those fields and its second, so two of them are one event). Creations, merges and
    /// comments are unique by content and always kept. Tests and the demo count the stream
    /// against this list.
    pub fn distinct_actions(&self) -> Vec<LogicalAction> {
        const UNIQUE: [&str; 4] = [
            "create_issue",
            "create_pull_request",
            "merge_pull_request",
            "create_repo",
        ];
        let mut last: std::collections::HashMap<(String, String, String, String, String), i64> =
            std::collections::HashMap::new();
        let mut kept = Vec::new();
        for a in self.logical_actions() {
            // As the sourcer's `event::is_repeatable`: a push that names its commits (a
            // compare URL) is unique; every other row without a comment can recur, a deleted
            // tag's push JSON (no commits, an empty compare URL) too.
            let push = matches!(
                a.op_type.as_str(),
                "commit_repo" | "mirror_sync_push" | "push_tag"
            );
            let repeatable = a.comment_id == 0
                && !UNIQUE.contains(&a.op_type.as_str())
                && !(push && a.content.len() > 2 && a.content.contains("CompareURL"));
            let key = (
                a.repo.clone(),
                a.op_type.clone(),
                a.actor.clone(),
                a.content.clone(),
                a.ref_name.clone(),
            );
            let t = a.created.timestamp();
            if repeatable && last.get(&key).is_some_and(|p| t - p <= 1) {
                continue;
            }
            last.insert(key, t);
            kept.push(a);
        }
        kept
    }

    /// Queue a fault; faults are matched in the order they were queued.
    pub fn inject(&self, f: Fault) {
        if f.times > 0 {
            lock(&self.shared.faults).push_back(f);
        }
    }

    /// Drop every queued fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Install or remove the feed hook (see [`FeedHook`]).
    pub fn set_feed_hook(&self, hook: Option<FeedHook>) {
        *lock(&self.shared.hook) = hook;
    }

    /// Current time in the server's time zone.
    pub fn now(&self) -> DateTime<FixedOffset> {
        self.with_world(|w| w.now())
    }

    /// The server's time zone.
    pub fn zone(&self) -> ServerZone {
        self.with_world(|w| w.offset())
    }

    /// Stop the generators and the server; waits up to 2 s for open connections.
    pub async fn shutdown(mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for t in lock(&self.shared.tasks).drain(..) {
            t.abort();
        }
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
        if let Some(table) = &self.shared.table {
            table.lock().await.drop_table().await;
        }
    }
}

impl FakeGitea {
    /// Move the simulated clock (see [`World::advance_clock`]).
    pub fn advance_clock(&self, secs: i64) {
        self.with_world(|w| w.advance_clock(secs))
    }

    /// See [`World::create_issue`].
    pub fn create_issue(&self, repo: &str, actor: &str, title: &str, is_pull: bool) -> i64 {
        self.with_world(|w| w.create_issue(repo, actor, title, is_pull))
    }

    /// See [`World::edit_issue`].
    pub fn edit_issue(
        &self,
        repo: &str,
        index: i64,
        actor: &str,
        title: Option<&str>,
        body: Option<&str>,
    ) {
        self.with_world(|w| w.edit_issue(repo, index, actor, title, body))
    }

    /// See [`World::set_pull_head`].
    pub fn set_pull_head(&self, repo: &str, index: i64, branch: &str) {
        self.with_world(|w| w.set_pull_head(repo, index, branch))
    }

    /// See [`World::merge_pull`].
    pub fn merge_pull(&self, repo: &str, index: i64, actor: &str) {
        self.with_world(|w| w.merge_pull(repo, index, actor))
    }

    /// See [`World::close_issue_as`].
    pub fn close_issue_as(&self, repo: &str, index: i64, actor: &str) {
        self.with_world(|w| w.close_issue_as(repo, index, actor))
    }

    /// See [`World::close_issue_by_commit`].
    pub fn close_issue_by_commit(
        &self,
        repo: &str,
        index: i64,
        actor: &str,
        sha: &str,
        close: bool,
    ) {
        self.with_world(|w| w.close_issue_by_commit(repo, index, actor, sha, close))
    }

    /// See [`World::reopen_issue_as`].
    pub fn reopen_issue_as(&self, repo: &str, index: i64, actor: &str) {
        self.with_world(|w| w.reopen_issue_as(repo, index, actor))
    }

    /// See [`World::label_issue`].
    pub fn label_issue(&self, repo: &str, index: i64, actor: &str, label: &str, add: bool) {
        self.with_world(|w| w.label_issue(repo, index, actor, label, add))
    }

    /// See [`World::assign_issue`].
    pub fn assign_issue(&self, repo: &str, index: i64, actor: &str, assignee: &str, add: bool) {
        self.with_world(|w| w.assign_issue(repo, index, actor, assignee, add))
    }

    /// See [`World::set_milestone`].
    pub fn set_milestone(&self, repo: &str, index: i64, actor: &str, milestone: Option<&str>) {
        self.with_world(|w| w.set_milestone(repo, index, actor, milestone))
    }

    /// See [`World::request_review`].
    pub fn request_review(&self, repo: &str, index: i64, actor: &str, reviewer: &str) {
        self.with_world(|w| w.request_review(repo, index, actor, reviewer))
    }

    /// See [`World::comment_on`].
    pub fn comment_on(&self, repo: &str, index: i64, actor: &str, body: &str) -> i64 {
        self.with_world(|w| w.comment_on(repo, index, actor, body))
    }

    /// See [`World::import_comment`].
    pub fn import_comment(&self, repo: &str, index: i64, actor: &str, body: &str) -> i64 {
        self.with_world(|w| w.import_comment(repo, index, actor, body))
    }

    /// See [`World::edit_comment`].
    pub fn edit_comment(&self, repo: &str, comment_id: i64, body: &str) {
        self.with_world(|w| w.edit_comment(repo, comment_id, body))
    }

    /// See [`World::add_release`].
    pub fn add_release(&self, repo: &str, actor: &str, tag: &str, title: &str) -> i64 {
        self.with_world(|w| w.add_release(repo, actor, tag, title))
    }

    /// See [`World::import_release`].
    pub fn import_release(&self, repo: &str, actor: &str, tag: &str, title: &str) -> i64 {
        self.with_world(|w| w.import_release(repo, actor, tag, title))
    }

    /// A repository whose issues are disabled: Gitea answers `404` on `/issues` and
    /// everything below it (comments, timelines), for good.
    pub fn disable_issues(&self, repo: &str) {
        self.fail_endpoint(repo, "issues", 404);
    }

    /// Every request below `/repos/{repo}/{tail}` answers `status` (a JSON error), for
    /// good: one repository's endpoint broken (e.g. `500` from a corrupt row).
    pub fn fail_endpoint(&self, repo: &str, tail: &str, status: u16) {
        self.inject(
            Fault::new(FaultKind::Status(status))
                .on_path(&format!("/repos/{repo}/{tail}"))
                .times(usize::MAX),
        );
    }

    /// See [`World::edit_release`].
    pub fn edit_release(&self, repo: &str, id: i64, title: &str) {
        self.with_world(|w| w.edit_release(repo, id, title))
    }

    /// See [`World::delete_release`].
    pub fn delete_release(&self, repo: &str, id: i64) {
        self.with_world(|w| w.delete_release(repo, id))
    }

    /// See [`World::delete_branch`].
    pub fn delete_branch(&self, repo: &str, branch: &str) {
        self.with_world(|w| w.delete_branch(repo, branch))
    }

    /// See [`World::comment_review`].
    pub fn comment_review(
        &self,
        repo: &str,
        index: i64,
        actor: &str,
        summary: &str,
        code: &[&str],
    ) -> i64 {
        self.with_world(|w| w.comment_review(repo, index, actor, summary, code))
    }

    /// See [`World::git_push`].
    pub fn git_push(&self, actor: &str, repo: &str, branch: &str, n_commits: usize) -> String {
        self.with_world(|w| w.git_push(actor, repo, branch, n_commits))
    }

    /// See [`World::git_force_push`].
    pub fn git_force_push(&self, actor: &str, repo: &str, branch: &str, sha: &str) {
        self.with_world(|w| w.git_force_push(actor, repo, branch, sha))
    }

    /// See [`World::git_delete_branch`].
    pub fn git_delete_branch(&self, actor: &str, repo: &str, branch: &str) {
        self.with_world(|w| w.git_delete_branch(actor, repo, branch))
    }

    /// See [`World::git_push_tag`].
    pub fn git_push_tag(&self, actor: &str, repo: &str, tag: &str, commit: &str) {
        self.with_world(|w| w.git_push_tag(actor, repo, tag, commit))
    }

    /// See [`World::git_delete_tag`].
    pub fn git_delete_tag(&self, actor: &str, repo: &str, tag: &str) {
        self.with_world(|w| w.git_delete_tag(actor, repo, tag))
    }

    /// See [`World::set_branch_head`].
    pub fn set_branch_head(&self, repo: &str, branch: &str, sha: &str) {
        self.with_world(|w| w.set_branch_head(repo, branch, sha))
    }

    /// See [`World::add_status`].
    pub fn add_status(&self, repo: &str, sha: &str, context: &str, state: &str) -> i64 {
        self.with_world(|w| w.add_status(repo, sha, context, state))
    }

    /// See [`World::set_actions_supported`].
    pub fn set_actions_supported(&self, yes: bool) {
        self.with_world(|w| w.set_actions_supported(yes))
    }

    /// See [`World::add_run`].
    pub fn add_run(&self, repo: &str, workflow: &str, head_sha: &str, status: &str) -> i64 {
        self.with_world(|w| w.add_run(repo, workflow, head_sha, status))
    }

    /// See [`World::update_run`].
    pub fn update_run(&self, repo: &str, id: i64, status: &str, conclusion: Option<&str>) {
        self.with_world(|w| w.update_run(repo, id, status, conclusion))
    }

    /// See [`World::mirror_sync_new_branch`].
    pub fn mirror_sync_new_branch(
        &self,
        repo: &str,
        branch: &str,
        sha: &str,
    ) -> (ActionId, ActionId) {
        self.with_world(|w| w.mirror_sync_new_branch(repo, branch, sha))
    }

    /// See [`World::mirror_sync_deleted_branch`].
    pub fn mirror_sync_deleted_branch(&self, repo: &str, branch: &str) -> ActionId {
        self.with_world(|w| w.mirror_sync_deleted_branch(repo, branch))
    }

    /// See [`World::add_job`].
    pub fn add_job(
        &self,
        repo: &str,
        run_id: i64,
        name: &str,
        labels: &[&str],
        status: &str,
    ) -> i64 {
        self.with_world(|w| w.add_job(repo, run_id, name, labels, status))
    }

    /// See [`World::update_job`].
    pub fn update_job(&self, repo: &str, id: i64, status: &str, conclusion: Option<&str>) {
        self.with_world(|w| w.update_job(repo, id, status, conclusion))
    }
}

impl FakeGitea {
    /// Bulk history: `spec.actions` actions over `spec.days` days ending a few
    /// seconds before now, on `spec.orgs` orgs and `spec.repos` repos (made when
    /// missing; idempotent names). Deterministic from the seed; returns the count.
    pub fn generate_history(&self, spec: &HistorySpec) -> usize {
        let seed = self.shared.opts.seed;
        self.with_world(|w| generate::generate_history(w, spec, seed, None))
    }

    /// Bulk history like [`FakeGitea::generate_history`], spread over
    /// `[from, to]` (`spec.days` is ignored): any range, e.g. one that crosses the
    /// days a named [`SimOptions::time_zone`] changes its offset. Call it
    /// again with a narrow range to put rows in one given hour.
    pub fn generate_history_between(
        &self,
        spec: &HistorySpec,
        from: chrono::DateTime<chrono::FixedOffset>,
        to: chrono::DateTime<chrono::FixedOffset>,
    ) -> usize {
        let seed = self.shared.opts.seed;
        let range = (from.timestamp(), to.timestamp());
        self.with_world(|w| generate::generate_history(w, spec, seed, Some(range)))
    }

    /// Live random activity at roughly `per_second` actions per second on the
    /// existing repositories (a default org `acme` with `widgets` and `dot.files`
    /// and users `alice` and `bob` when there are none), some with a copy delay of
    /// one second, with occasional same-second bursts. It makes no action identical to one
    /// of the last three seconds (same repository, op, actor, ref and content: a repeat the
    /// sourcer documents it cannot tell from a copy). Runs until the handle is
    /// aborted or the server shut down; a rate that is not positive does nothing.
    pub fn spawn_activity(&self, per_second: f64) -> JoinHandle<()> {
        let shared = self.shared.clone();
        let seed = self.with_world(|w| {
            w.gen_calls += 1;
            splitmix(shared.opts.seed ^ 0x6c69_7665 ^ splitmix(w.gen_calls))
        });
        let handle = tokio::spawn(async move {
            if !(per_second.is_finite() && per_second > 0.0) {
                return;
            }
            let mut rng = StdRng::seed_from_u64(seed);
            generate::ensure_default_world(&mut lock(&shared.world));
            let started = Instant::now();
            let tick = (1.0 / per_second).clamp(0.005, 0.5);
            let mut done: u64 = 0;
            loop {
                let jitter: f64 = rng.random_range(0.5..1.5);
                tokio::time::sleep(Duration::from_secs_f64(tick * jitter)).await;
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let due = (started.elapsed().as_secs_f64() * per_second) as u64;
                // Do not flood after a stall: catch up at most ~2 s worth.
                let cap = (per_second * 2.0).max(1.0) as u64;
                done = done.max(due.saturating_sub(cap));
                if due <= done {
                    continue;
                }
                let mut w = lock(&shared.world);
                let repos: Vec<i64> = w.repos().map(|r| r.id).collect();
                let users: Vec<i64> = w
                    .users()
                    .iter()
                    .filter(|u| !u.is_org && u.login != TOKEN_USER)
                    .map(|u| u.id)
                    .collect();
                if repos.is_empty() || users.is_empty() {
                    continue;
                }
                while done < due {
                    let now = w.now().timestamp();
                    let burst = if rng.random_bool(0.08) {
                        rng.random_range(2..=4u64)
                    } else {
                        1
                    };
                    for _ in 0..burst {
                        let r = repos[rng.random_range(0..repos.len())];
                        let a = users[rng.random_range(0..users.len())];
                        generate::random_action(&mut w, &mut rng, r, a, now, 600, true);
                    }
                    done += burst;
                }
            }
        });
        lock(&self.shared.tasks).push(handle.abort_handle());
        handle
    }
}

impl Drop for FakeGitea {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for t in lock(&self.shared.tasks).drain(..) {
            t.abort();
        }
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        // Engine mode without `shutdown`: drop the table if the runtime still runs tasks
        // (best effort; a table left behind is dropped by a later start once this
        // process is gone).
        if self.shared.table.is_some()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let shared = self.shared.clone();
            rt.spawn(async move {
                if let Some(table) = &shared.table {
                    table.lock().await.drop_table().await;
                }
            });
        }
    }
}

/// `"gitea/"` → `"/gitea"`, `"/"` → `""`.
fn normalize_prefix(p: &str) -> String {
    let t = p.trim_matches('/');
    if t.is_empty() {
        String::new()
    } else {
        format!("/{t}")
    }
}
