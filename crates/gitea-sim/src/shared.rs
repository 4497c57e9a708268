//! What the handle, the server task and the generator tasks share: the options,
//! the locked world, the feed hook, the fault queue and the request log, with the
//! public types that configure them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use crate::engine::{Engine, Table};
use crate::world::World;

/// How the fake server behaves.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// When `Some`, every `/api/v1` request must carry `Authorization: token X`
    /// (or `Bearer X`); otherwise it gets a `401` JSON error.
    pub token: Option<String>,
    /// The token is a site admin's: `/admin/orgs` answers (otherwise 403, as Gitea's
    /// `reqSiteAdmin`), `/user` says `is_admin`, and every feed shows every actor's rows
    /// (otherwise not those of the Actions bot, of private users and orgs, nor of users
    /// who keep their activity private: see
    /// [`FakeGitea::set_user_visibility`](crate::FakeGitea::set_user_visibility)). A
    /// request without a token (none configured, no `Authorization`) is anonymous and
    /// sees public actors only, whatever this says.
    pub admin: bool,
    /// `""` or e.g. `"/gitea"`: every route lives under it (a sub-URL install).
    /// Requests outside it get `404`.
    pub path_prefix: String,
    /// `MAX_RESPONSE_ITEMS`: `limit` is capped at it (default 50).
    pub max_response_items: usize,
    /// `DEFAULT_PAGING_NUM`: the limit used when none is given (default 30).
    pub default_paging_num: usize,
    /// Server time zone in seconds east of UTC (default `8 * 3600`, `+08:00`).
    /// `created` strings and `date=` days use it.
    pub utc_offset_secs: i32,
    /// A named server zone (e.g. `Europe/Berlin`); when `Some`, it replaces
    /// `utc_offset_secs`: every time is written with the zone's offset at that
    /// instant and `date=` counts from the zone's local midnight (default `None`).
    pub time_zone: Option<chrono_tz::Tz>,
    /// Seed of the rng used for tie shuffling and the generators (default 1).
    pub seed: u64,
    /// What `GET /api/v1/version` answers (default `"1.24.6"`). Under
    /// [`SimOptions::forgejo`] the default is answered as Forgejo's
    /// `"16.0.1+gitea-1.22.0"`; any other value is answered as given.
    pub version: String,
    /// Feeds send a `Link` header, as only Gitea 1.26's team feed does (default `false`:
    /// the repository, org and user feeds of every Gitea and Forgejo send `X-Total-Count`
    /// alone).
    pub feed_link: bool,
    /// Who orders the rows of one second (default: [`Engine::from_env`], the
    /// `GITEA_SIM_ENGINE` environment variable; unset = [`Engine::Random`]). Under
    /// MariaDB, PostgreSQL or SQLite the action rows live in a real table with Gitea's
    /// schema and indexes, and each feed page is Gitea's query on it.
    pub engine: Engine,
    /// Play Forgejo (13 and later) instead of Gitea (default `false`): the version says so;
    /// the content of issue, pull request, comment and review rows is a JSON array of
    /// strings (`["12","Title"]` for Gitea's `12|Title`; a comment's is its first line cut
    /// to 200 bytes, `["12","reviewer","comment"]` for `pull_review_dismissed`);
    /// `publish_release` rows name the bare tag (`v1.0`, not `refs/tags/v1.0`); tag pushes
    /// write `"Commits":[]` instead of `null`; and every deletion is hard (no
    /// `is_deleted`: [`FakeGitea::soft_delete`](crate::FakeGitea::soft_delete) and
    /// [`FakeGitea::delete_comment`](crate::FakeGitea::delete_comment) delete the rows).
    /// Rows are rendered so at output time (and in
    /// [`FakeGitea::logical_actions`](crate::FakeGitea::logical_actions)) from what the
    /// world stores, Gitea's form.
    pub forgejo: bool,
}

/// The default [`SimOptions::version`]: a Gitea's.
pub(crate) const GITEA_VERSION: &str = "1.24.6";
/// What a Forgejo answers on `/api/v1/version` (its own version, then the Gitea API it
/// keeps compatible with).
pub(crate) const FORGEJO_VERSION: &str = "16.0.1+gitea-1.22.0";

impl SimOptions {
    /// What `/api/v1/version` answers: [`SimOptions::version`], or Forgejo's version in
    /// place of the default under [`SimOptions::forgejo`].
    pub(crate) fn served_version(&self) -> &str {
        if self.forgejo && self.version == GITEA_VERSION {
            FORGEJO_VERSION
        } else {
            &self.version
        }
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            token: None,
            admin: false,
            path_prefix: String::new(),
            max_response_items: 50,
            default_paging_num: 30,
            utc_offset_secs: 8 * 3600,
            time_zone: None,
            seed: 1,
            version: GITEA_VERSION.to_string(),
            feed_link: false,
            engine: Engine::from_env(),
            forgejo: false,
        }
    }
}

/// Called after each feed page has been computed and before it is returned.
/// It must not call back into the [`FakeGitea`](crate::FakeGitea) (the world is already locked):
/// use the `&mut World` it is given.
pub type FeedHook = Box<dyn FnMut(&FeedPage, &mut World) + Send>;

/// The feed page a [`FeedHook`] is told about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedPage {
    /// `"repo:owner/name"`, `"org:name"` or `"user:login"` (names as stored).
    pub feed: String,
    /// 1-based page number served.
    pub page: usize,
    /// Effective limit (after defaulting and capping).
    pub limit: usize,
    /// The `date=` filter, if any.
    pub date: Option<String>,
    /// `X-Total-Count` of this response.
    pub total: usize,
}

/// A fault to inject into the next matching requests.
#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: FaultKind,
    /// How many matching requests it applies to.
    pub times: usize,
    /// Applies to requests whose path (or `path?query`) contains this; `None` = any request.
    pub path_contains: Option<String>,
}

impl Fault {
    /// A fault for the next request (any path).
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            times: 1,
            path_contains: None,
        }
    }

    /// Apply it to `n` requests.
    pub fn times(mut self, n: usize) -> Fault {
        self.times = n;
        self
    }

    /// Apply it only to requests whose path contains `s`.
    pub fn on_path(mut self, s: &str) -> Fault {
        self.path_contains = Some(s.to_string());
        self
    }
}

/// What an injected fault does to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status and a JSON error body.
    Status(u16),
    /// `429` with `Retry-After: N` (seconds).
    RetryAfterSecs(u64),
    /// `429` with `Retry-After` as an HTTP date N seconds ahead.
    RetryAfterDate(u64),
    /// The real response's body cut to half its length, with status 200.
    Truncated,
    /// Answer normally after this delay.
    Delay(Duration),
    /// The real response's headers (`X-Total-Count` included) with an empty list: not
    /// Gitea's own behaviour, but what a caching proxy or a page read while rows were
    /// deleted can show a walk (it ends early).
    EmptyPage,
}

/// One request the server answered.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// When it arrived.
    pub at: Instant,
    /// Request path, including any path prefix.
    pub path: String,
    /// Raw query string (without `?`), `""` when none.
    pub query: String,
    /// Status answered.
    pub status: u16,
}

/// State shared by the handle, the server task and the generator tasks.
pub(crate) struct Shared {
    pub(crate) opts: SimOptions,
    pub(crate) addr: SocketAddr,
    pub(crate) world: Mutex<World>,
    /// Engine mode: the action table. Its lock serialises applying the world's pending
    /// table changes and the feed queries that follow (taken before `world`, and never
    /// while `hook` or `world` is held).
    pub(crate) table: Option<tokio::sync::Mutex<Table>>,
    /// Lock order: `hook` before `world`.
    pub(crate) hook: Mutex<Option<FeedHook>>,
    pub(crate) faults: Mutex<VecDeque<Fault>>,
    pub(crate) requests: Mutex<Vec<RequestRecord>>,
    pub(crate) stopping: AtomicBool,
    pub(crate) tasks: Mutex<Vec<AbortHandle>>,
}
