//! The run's services, between the polls and the supervisor: connecting to NATS and Gitea
//! and building the shared [`Context`] ([`connect`]), and one poll of one source: its feed,
//! then its repository kinds ([`SourcePoller`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, ConfigError, Source};
use crate::gitea::{GiteaClient, GiteaError};
use crate::ha::lease::LeaseBucket;
use crate::nats::publish::Publisher;
use crate::nats::{self, NatsError};
use crate::poll::feed::{FeedPoller, PollReport};
use crate::poll::pipeline::{Context, Owners, PollError, RecentIndex};
use crate::poll::repo;
use crate::retry::{Doubling, with_jitter};
use crate::shutdown::Shutdown;
use crate::source::SourceSpec;
use crate::store::{CursorStore, StoreError};
use crate::telemetry::{self, Telemetry};
use serde_json::Value;

/// Errors that stop [`connect`] and [`super::run`] (everything else is retried or logged
/// per source).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Gitea(#[from] GiteaError),
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error(transparent)]
    State(#[from] StoreError),
    #[error(transparent)]
    Lease(#[from] crate::ha::lease::LeaseError),
    #[error("cannot listen on http.listen {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
}

impl RunError {
    /// What retrying cannot fix: the operator must (a stream that takes other subjects, a
    /// server too old, unreadable credentials, a bad config).
    pub fn is_permanent(&self) -> bool {
        match self {
            RunError::Nats(e) => e.is_permanent(),
            RunError::Config(_) | RunError::Listen(..) => true,
            RunError::State(e) => matches!(
                e,
                StoreError::Corrupt { .. } | StoreError::CorruptKey { .. }
            ),
            RunError::Lease(e) => e.is_permanent(),
            RunError::Gitea(_) => false,
        }
    }
}

/// Connected and ready services, built from the config.
pub struct Services {
    /// What every poll shares: the Gitea client, the publisher, the cursor store, telemetry.
    pub ctx: Arc<Context>,
    /// The NATS connection (its state tells a source whether to poll).
    pub nats: async_nats::Client,
    /// The lease bucket, with `[ha] enabled`.
    pub leases: Option<LeaseBucket>,
    /// This instance's name under `[ha]` (`[ha] instance`, or `HOST-PID`), worked out once:
    /// the events' `Gitea-Sourcer-Instance` header and the coordinator's heartbeat name the same.
    pub instance: String,
}

/// Connects to NATS (retrying with backoff until it answers or shutdown), ensures the stream
/// and bucket, reads Gitea's page size. `None` when shutdown came first. Everything built
/// emits into `telemetry` (the run's).
pub async fn connect(
    cfg: &Config,
    telemetry: &Telemetry,
    shutdown: &Shutdown,
) -> Result<Option<Services>, RunError> {
    let token = cfg.gitea.token()?;
    telemetry
        .health
        .names
        .name_private(cfg.log.name_private_repos);
    let client = GiteaClient::new(&cfg.gitea, token, telemetry.clone())?;
    let Some(nats_client) = nats::connect_retrying(&cfg.nats, telemetry, shutdown).await? else {
        return Ok(None);
    };
    let js = nats::jetstream(nats_client.clone());
    let version = nats_client.server_info().version;
    let Some((store, stored, leases)) =
        setup_retrying(&js, cfg, &version, telemetry, shutdown).await?
    else {
        return Ok(None);
    };
    tokio::select! {
        r = client.learn_page_limit() => match r {
            Ok(n) => telemetry.emit(telemetry::GiteaPageSize { learned: Ok(n), using: n }),
            Err(e) => telemetry.emit(telemetry::GiteaPageSize {
                learned: Err(&e),
                using: client.page_limit(),
            }),
        },
        _ = shutdown.wait() => return Ok(None),
    }
    if !learn_visibility(cfg, &client, telemetry, shutdown).await {
        return Ok(None);
    }
    let instance = cfg.ha.instance_name();
    let index = seeded_index(cfg.poll.lookback, stored);
    let ctx = Arc::new(Context {
        client,
        publisher: match cfg.ha.enabled {
            true => Publisher::new(js).published_by(instance.clone()),
            false => Publisher::new(js),
        },
        store,
        index,
        no_reply: cfg.gitea.no_reply(),
        gitea_url: crate::config::without_userinfo(&cfg.gitea.url)
            .trim_end_matches('/')
            .to_string(),
        prefixes: crate::event::Prefixes::of_config(cfg),
        lookback: cfg.poll.lookback.as_secs() as i64,
        live_pages: cfg.poll.live_pages,
        max_window: cfg.poll.max_window,
        batch: crate::poll::pipeline::BATCH,
        issues: crate::poll::pipeline::enrich::IssueCache::cancelled_by(shutdown.clone()),
        owners: std::sync::RwLock::new(Owners::new(cfg.sources().iter().map(|s| &s.spec))),
        takeovers: Default::default(),
        telemetry: telemetry.clone(),
        failing: Default::default(),
        cadence: crate::gitea::cadence::Cadence::new(
            f64::from(cfg.gitea.requests_per_second),
            cfg.poll.max_interval,
        ),
        pauses: crate::poll::pause::Pauses::new(),
        read_ahead: Default::default(),
    });
    Ok(Some(Services {
        ctx,
        nats: nats_client,
        leases,
        instance,
    }))
}

/// The configured repositories' visibility, before anything names them (their metrics
/// series, their first log lines): one read each. One Gitea does not answer for stays
/// private until its rows or its kinds tell (`names`). `false` when shutdown came first.
async fn learn_visibility(
    cfg: &Config,
    client: &GiteaClient,
    telemetry: &Telemetry,
    shutdown: &Shutdown,
) -> bool {
    let names = &telemetry.health.names;
    for source in cfg.sources() {
        if let SourceSpec::Repo { owner, name } = &source.spec {
            let full = format!("{owner}/{name}");
            names.assume_private(&full);
            let path = ["repos", owner.as_str(), name.as_str()];
            let read = tokio::select! {
                r = client.get_json::<Value>(&path, &[]) => r,
                _ = shutdown.wait() => return false,
            };
            match read {
                Ok(repo) => {
                    let private = crate::event::Visibility::of_repo(&repo);
                    names.learn(&full, private == crate::event::Visibility::Private);
                }
                // The token cannot see it (a wrong name, or no access): nothing of it will
                // be published, and the operator must see which source Gitea refuses.
                Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => names.learn(&full, false),
                // Gitea away: hidden until its rows or kinds tell.
                Err(_) => {}
            }
        }
    }
    true
}

/// The cross-feed index, seeded with the identities the stored cursors remember.
fn seeded_index(lookback: Duration, stored: Vec<crate::store::Stored>) -> Arc<RecentIndex> {
    let index = Arc::new(RecentIndex::new());
    index.prune_before(chrono::Utc::now().timestamp() - index_keep(lookback).as_secs() as i64);
    for stored in stored {
        for (k, t) in stored.cursor.seen.iter() {
            index.seed(k, t);
        }
    }
    index
}

/// Between two attempts of the setup: 0.5 s, doubled per failure, at most 30 s (before
/// the jitter).
const SETUP_RETRY: Doubling = Doubling {
    from: Duration::from_millis(500),
    cap: Duration::from_secs(30),
};

/// What setup yields: the cursor store, the stored cursors, the lease bucket (`[ha]`).
type Setup = (CursorStore, Vec<crate::store::Stored>, Option<LeaseBucket>);

/// The stream, the bucket, the stored cursors and (with `[ha]`) the lease bucket, tried again until they can be had (a
/// server still starting, a cluster without a JetStream leader or quorum: a service started
/// before NATS is ready waits for it, as it waits for the connection). Only what an operator
/// must fix (the stream takes other subjects, the server is too old) ends `run`. `None`:
/// shutdown came first.
async fn setup_retrying(
    js: &async_nats::jetstream::Context,
    cfg: &Config,
    server_version: &str,
    telemetry: &Telemetry,
    shutdown: &Shutdown,
) -> Result<Option<Setup>, RunError> {
    let mut failures: u32 = 0;
    loop {
        let attempt = async {
            nats::ensure_stream(js, &cfg.nats).await?;
            let store = CursorStore::new(nats::ensure_bucket(js, &cfg.nats).await?);
            let stored = store.list().await?;
            let leases = match cfg.ha.enabled {
                true => {
                    Some(LeaseBucket::open(js, &cfg.ha, cfg.nats.replicas, server_version).await?)
                }
                false => None,
            };
            Ok::<_, RunError>((store, stored.into_iter().map(|(_, s)| s).collect(), leases))
        };
        let err = tokio::select! {
            r = attempt => match r {
                Ok(done) => return Ok(Some(done)),
                Err(e) if e.is_permanent() => return Err(e),
                Err(e) => e,
            },
            _ = shutdown.wait() => return Ok(None),
        };
        failures = failures.saturating_add(1);
        // Lengthened by up to as much again, so that instances started together spread.
        let retry_in = with_jitter(SETUP_RETRY.after(failures), 1.0);
        telemetry.emit(telemetry::NatsSetupFailed {
            error: &err,
            retry_in,
        });
        if !shutdown.sleep(retry_in).await {
            return Ok(None);
        }
    }
}

/// How long the cross-feed index keeps identities.
pub fn index_keep(lookback: Duration) -> Duration {
    lookback.max(Duration::from_secs(1800)) * 2
}

/// Polls one source: its feed, then the repository kinds (`kinds`) of its repository or of
/// its org's repositories. Keeps the feed's cursor between polls.
pub struct SourcePoller {
    /// The run's shared context.
    ctx: Arc<Context>,
    /// The source's feed, with its cursor.
    feed: FeedPoller,
    /// The source and its settings.
    source: Source,
    /// An org source's repositories (for `kinds`) and when they were listed.
    repos: Option<(Instant, Vec<(String, String)>)>,
    /// With `repos_sweep`: where the turn of the quiet repositories is.
    sweep_at: usize,
    /// With `repos_sweep` and issue kinds: from when (Unix seconds) the next search for
    /// changed issues asks (`None` before the first poll).
    changes_since: Option<i64>,
    /// With the `refs` kind (org sources): the org's id (for `/repos/search?uid=`) and from
    /// when (Unix seconds) a repository counts as changed at the next poll.
    pushed_since: (Option<i64>, Option<i64>),
}

impl SourcePoller {
    pub fn new(ctx: Arc<Context>, source: Source) -> Self {
        SourcePoller {
            feed: FeedPoller::new(ctx.clone(), source.clone()),
            ctx,
            source,
            repos: None,
            sweep_at: 0,
            changes_since: None,
            pushed_since: (None, None),
        }
    }

    pub fn spec(&self) -> &SourceSpec {
        &self.source.spec
    }

    /// One poll: the feed, then (unless it stopped) the repository kinds. On error the
    /// feed's cursor stays where the last acknowledged batch left it.
    pub async fn poll(&mut self, shutdown: &Shutdown) -> Result<PollReport, PollError> {
        let mut report = self.feed.poll(shutdown).await?;
        if !self.source.kinds.is_empty() && !report.stopped {
            report.published += self.poll_repositories(shutdown).await?;
        }
        Ok(report)
    }

    /// The last step of a drain: see [`FeedPoller::hand_over`].
    pub async fn hand_over(
        &mut self,
        to: &SourceSpec,
        held: Option<i64>,
        stop: &crate::shutdown::Shutdown,
    ) -> Result<bool, PollError> {
        self.feed.hand_over(to, held, stop).await
    }

    /// With `repos_sweep` (org sources): the repositories whose kinds this poll reads: those
    /// the feed showed active since the last poll, and the next quiet ones in turn, so that
    /// every repository is read at least once per `repos_sweep`. Without: all of them.
    fn swept(
        &mut self,
        repos: Vec<(String, String)>,
        changed: std::collections::HashSet<String>,
    ) -> Vec<(String, String)> {
        let mut active = self.feed.take_active();
        active.extend(changed);
        let sweep = self.source.repos_sweep;
        if sweep.is_zero() || !matches!(self.source.spec, SourceSpec::Org(_)) || repos.is_empty() {
            return repos;
        }
        let polls = (sweep.as_secs_f64() / self.source.interval.as_secs_f64().max(0.001))
            .floor()
            .max(1.0) as usize;
        let n = repos.len();
        let turn = n.div_ceil(polls);
        let from = self.sweep_at % n;
        self.sweep_at = (from + turn) % n;
        repos
            .into_iter()
            .enumerate()
            .filter(|(i, (owner, name))| {
                (i + n - from) % n < turn
                    || active.contains(&format!("{owner}/{name}").to_lowercase())
            })
            .map(|(_, r)| r)
            .collect()
    }

    /// With `repos_sweep` (org sources polling `issues` or `comments`): the repositories
    /// (`owner/name`, lower case) with an issue or pull request updated since the last poll
    /// (minus the trailing window), from one `/repos/issues/search?owner=` for the whole org
    /// instead of a request per repository: they are read at this poll, not at their turn.
    /// Empty at the first poll, without a sweep, or when the search fails (logged; the next
    /// search asks from the same time).
    async fn issue_changes(&mut self) -> std::collections::HashSet<String> {
        let mut out = std::collections::HashSet::new();
        let SourceSpec::Org(org) = &self.source.spec else {
            return out;
        };
        let wanted = self.source.kinds.iter().any(|k| {
            matches!(
                k,
                crate::config::RepoKind::Issues | crate::config::RepoKind::Comments
            )
        });
        if self.source.repos_sweep.is_zero() || !wanted {
            return out;
        }
        let now = chrono::Utc::now().timestamp();
        let Some(since) = self.changes_since else {
            self.changes_since = Some(now - self.ctx.lookback);
            return out;
        };
        let since_text = chrono::DateTime::from_timestamp(since, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let query = [
            ("owner", org.clone()),
            ("state", "all".to_string()),
            ("since", since_text),
        ];
        match repo::list_pages(
            &self.ctx.client,
            "changed issues",
            &["repos", "issues", "search"],
            &query,
            None,
            20,
        )
        .await
        {
            Ok(listed) => {
                for i in &listed.items {
                    if let Some(full) = i["repository"]["full_name"].as_str() {
                        out.insert(full.to_lowercase());
                    }
                }
                self.changes_since = Some(now - self.ctx.lookback);
            }
            Err(e) => self.ctx.telemetry.emit(telemetry::IssueSearchFailed {
                org,
                reason: e.reason(),
                error: &e,
            }),
        }
        out
    }

    /// With the `refs` kind (org sources): the org's repositories whose `updated_at` moved
    /// since the last poll (minus the trailing window), from one `/repos/search?uid=&
    /// exclusive=true&sort=updated&order=desc` page (more only while every repository on it
    /// changed), by `owner/name` in lower case. Every push moves it (go-gitea/gitea
    /// services/repository/push.go `pushUpdates`: `UpdateRepositoryUpdatedTime`). `None`:
    /// not an org polling `refs`, or the search failed (logged; each repository is then
    /// asked on its own).
    async fn pushed_repos(&mut self) -> Option<std::collections::HashMap<String, Value>> {
        let SourceSpec::Org(org) = &self.source.spec else {
            return None;
        };
        if !self.source.kinds.contains(&crate::config::RepoKind::Refs) {
            return None;
        }
        let now = chrono::Utc::now().timestamp();
        let failed = |ctx: &Context, e: &crate::gitea::GiteaError| {
            ctx.telemetry.emit(telemetry::RepoSearchFailed {
                org,
                reason: e.reason(),
                error: e,
            })
        };
        let uid = match self.pushed_since.0 {
            Some(id) => id,
            None => match self
                .ctx
                .client
                .get_json::<Value>(&["orgs", org.as_str()], &[])
                .await
            {
                Ok(o) => match o["id"].as_i64() {
                    Some(id) => {
                        self.pushed_since.0 = Some(id);
                        id
                    }
                    None => return None,
                },
                Err(e) => {
                    failed(&self.ctx, &e);
                    return None;
                }
            },
        };
        let since = self.pushed_since.1;
        let query = [
            ("uid", uid.to_string()),
            ("exclusive", "true".to_string()),
            ("sort", "updated".to_string()),
            ("order", "desc".to_string()),
        ];
        let mut out = std::collections::HashMap::new();
        for page in 1..=20 {
            let listed = match self
                .ctx
                .client
                .list_page(&["repos", "search"], &query, page, Some("data"))
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    failed(&self.ctx, &e);
                    return None;
                }
            };
            let asked = self.ctx.client.page_limit();
            let more = listed.more(out.len() + listed.items.len(), asked);
            let mut older = false;
            for r in listed.items {
                let t = repo::unix(&r["updated_at"]).unwrap_or(i64::MAX);
                if since.is_some_and(|s| t < s) {
                    older = true;
                    break;
                }
                if let Some(full) = r["full_name"].as_str() {
                    out.insert(full.to_lowercase(), r.clone());
                }
            }
            // The first poll lists what exists (each repository is read once anyway).
            if older || !more || since.is_none() {
                break;
            }
        }
        self.pushed_since.1 = Some(now - self.ctx.lookback);
        Some(out)
    }

    /// The repository endpoints (`kinds`) of this source's repository or org repositories.
    async fn poll_repositories(&mut self, shutdown: &Shutdown) -> Result<usize, PollError> {
        let repos = match &self.source.spec {
            SourceSpec::Repo { owner, name } => vec![(owner.clone(), name.clone())],
            SourceSpec::Org(org) => {
                let stale = self
                    .repos
                    .as_ref()
                    .is_none_or(|(at, _)| at.elapsed() >= self.source.repos_refresh);
                if stale {
                    // A failed listing keeps the repositories known (if any) and is tried
                    // again next poll; it does not fail the org's feed poll.
                    match repo::org_repos(&self.ctx.client, org).await {
                        Ok(list) => self.repos = Some((Instant::now(), list)),
                        Err(e) => self.ctx.telemetry.emit(telemetry::RepoListFailed {
                            org,
                            reason: e.reason(),
                            error: &e,
                            kept: self.repos.as_ref().map_or(0, |(_, l)| l.len()),
                        }),
                    }
                }
                self.repos
                    .as_ref()
                    .map(|(_, l)| l.clone())
                    .unwrap_or_default()
            }
            SourceSpec::User(_) => Vec::new(),
        };
        let mut changed = self.issue_changes().await;
        let pushed = self.pushed_repos().await;
        if let Some(p) = &pushed {
            changed.extend(p.keys().cloned());
        }
        let repos = self.swept(repos, changed);
        // `start = "now"`: every kind of every repository begins where the source began
        // (its feed cursor's first write), not at its own first read, which for a quiet
        // repository can come long after (a change read then would be taken for older).
        let started = self
            .feed
            .cursor()
            .and_then(|c| c.created_at)
            .map(|t| t.timestamp());
        let mut published = 0;
        for (owner, name) in repos {
            if shutdown.is_fired() {
                break;
            }
            let updated = match &pushed {
                None => repo::Updated::Unknown,
                Some(p) => match p.get(&format!("{owner}/{name}").to_lowercase()) {
                    Some(r) => repo::Updated::At(r.clone()),
                    None => repo::Updated::Unchanged,
                },
            };
            let opts = repo::Options {
                start: repo::Start {
                    at: self.source.start,
                    source_began: started,
                },
                webhooks: self.source.webhooks,
                updated,
            };
            published += repo::poll_repo(
                &self.ctx,
                &owner,
                &name,
                &self.source.kinds,
                &opts,
                shutdown,
            )
            .await?;
        }
        Ok(published)
    }
}
