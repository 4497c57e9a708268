//! The configuration file: typed, strict, and turned into runtime settings at start.
//!
//! Every table uses `deny_unknown_fields`, so a typo is an error that names the key instead
//! of a silent fall-back to a default. [`Config::load`] parses the TOML, then
//! [`Config::validate`] checks what serde cannot (URLs, exactly one of `org`/`repo`/`user` per
//! source, positive rates). Secrets are read by [`GiteaConfig::token`] from a file or the
//! environment and held in [`Secret`], whose `Debug` and `Display` never show the value.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};

use crate::source::{SourceSpec, SpecError};

/// The shortest `poll.lookback` accepted (below a minute is accepted with a warning).
pub const MIN_LOOKBACK: Duration = Duration::from_secs(1);

/// Where the config is read from when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/gitea-nats-sourcer/config.toml";

/// Errors of loading or validating the config; each names the file, key or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("cannot read the secret for `{key}` from {path}: {source}")]
    Secret {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How to reach Gitea and how hard to use it.
    pub gitea: GiteaConfig,
    /// How to reach NATS, and the names of the stream and cursor bucket.
    #[serde(default)]
    pub nats: NatsConfig,
    /// Defaults for every source: interval, start position, look-back window.
    #[serde(default)]
    pub poll: PollConfig,
    /// Logging defaults (overridden by `RUST_LOG` and `--log-format`).
    #[serde(default)]
    pub log: LogConfig,
    /// The HTTP listener for metrics and health; off when absent.
    #[serde(default)]
    pub http: HttpConfig,
    /// Several instances sharing the sources through leases (active/standby, scale-out).
    #[serde(default)]
    pub ha: HaConfig,
    /// The NATS micro control service (list, pause, resume, reset sources; backfill).
    #[serde(default)]
    pub control: ControlConfig,
    /// The feeds to poll: one table per organisation, repository or user.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
}

/// `[gitea]`: the server and the request budget towards it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiteaConfig {
    /// Base URL of the Gitea web UI; a path prefix (sub-URL install) is kept.
    pub url: String,
    /// File holding the API token (first line; surrounding white space is ignored). A
    /// relative path is looked up in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
    pub token_file: Option<PathBuf>,
    /// Name of an environment variable holding the API token.
    pub token_env: Option<String>,
    /// The token inline. Discouraged: prefer `token_file` or `token_env`.
    pub token: Option<Secret>,
    /// Sustained requests per second towards Gitea, shared by every source.
    #[serde(default = "default_rps")]
    pub requests_per_second: u32,
    /// Requests allowed at once above the sustained rate.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Time limit of one HTTP request (connect, send, read the whole body).
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// CA certificate file (PEM) to verify Gitea's TLS certificate, beside the system roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Skip verifying Gitea's TLS certificate. Dangerous; a warning is logged at every start.
    #[serde(default)]
    pub tls_insecure_skip_verify: bool,
    /// Gitea's `[service] NO_REPLY_ADDRESS`: users' e-mail addresses are published as Gitea's
    /// webhooks show them, `{login}@{no_reply_address}`. Default: `noreply.` and the host of
    /// `url` (Gitea's default, `noreply.` and its `DOMAIN`).
    pub no_reply_address: Option<String>,
    /// Gitea's `[service] REQUIRE_SIGNIN_VIEW = true`: nothing is readable anonymously, so
    /// every event is a private repository's (the API does not tell this setting).
    #[serde(default)]
    pub require_signin_view: bool,
    /// How often one request is retried (connect errors, timeouts, 429, 5xx, bad JSON)
    /// before the poll gives up until its next turn.
    #[serde(default = "default_retries")]
    pub max_retries: usize,
}

fn default_rps() -> u32 {
    5
}
fn default_burst() -> u32 {
    10
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_retries() -> usize {
    5
}

/// `[nats]`: the server, and where events and cursors live.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL; a comma-separated list is allowed.
    #[serde(default = "default_nats_url")]
    pub url: String,
    /// JetStream stream that holds the events (created if missing).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// First token of every event subject; the stream listens on `{subject_prefix}.>`.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// JetStream stream of the events of repositories not readable anonymously (private,
    /// internal, or of a limited or private owner; unknown counts as private), created if
    /// missing with the settings of `stream`.
    #[serde(default = "default_private_stream")]
    pub private_stream: String,
    /// First token of those events' subjects (the layout below it as `subject_prefix`'s);
    /// the private stream listens on `{private_subject_prefix}.>`.
    #[serde(default = "default_private_prefix")]
    pub private_subject_prefix: String,
    /// JetStream key-value bucket that holds one cursor per source (created if missing).
    #[serde(default = "default_bucket")]
    pub cursor_bucket: String,
    /// Duplicate window of the stream when the sourcer creates it (at least one hour).
    #[serde(default = "default_dup_window", deserialize_with = "duration")]
    pub duplicate_window: Duration,
    /// Replicas of the stream and the bucket when the sourcer creates them (1 to 5; 3 on a
    /// three-node JetStream cluster survives the loss of any one node).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Oldest message the stream keeps when the sourcer creates it (at least the duplicate
    /// window, else a retry could repeat an event the stream already dropped).
    #[serde(default = "default_max_age", deserialize_with = "duration")]
    pub max_age: Duration,
    /// Most bytes the stream keeps when the sourcer creates it (the oldest go first): an
    /// integer or a string like `"10GiB"`, at least [`MIN_MAX_BYTES`].
    #[serde(default = "default_max_bytes", deserialize_with = "byte_size")]
    pub max_bytes: u64,
    /// NATS credentials file (JWT and nkey seed).
    pub creds_file: Option<PathBuf>,
    /// File holding an nkey seed.
    pub nkey_file: Option<PathBuf>,
    /// File holding a NATS auth token.
    pub token_file: Option<PathBuf>,
    /// NATS user name (with `password_file`).
    pub user: Option<String>,
    /// File holding the NATS user's password.
    pub password_file: Option<PathBuf>,
    /// CA certificate file to verify the NATS server (PEM).
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate file (PEM), with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// Client key file (PEM), with `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

fn default_nats_url() -> String {
    "nats://127.0.0.1:4222".into()
}
fn default_stream() -> String {
    "GITEA_EVENTS".into()
}
fn default_prefix() -> String {
    "gitea".into()
}
fn default_private_stream() -> String {
    "GITEA_PRIVATE".into()
}
fn default_private_prefix() -> String {
    "gitea_private".into()
}
fn default_bucket() -> String {
    "gitea_cursors".into()
}
fn default_dup_window() -> Duration {
    Duration::from_secs(2 * 3600)
}
fn default_replicas() -> usize {
    1
}
/// 30 days: a month for consumers to be away and replay, and for `backfill` ledgers to matter.
fn default_max_age() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
/// 2 GiB per replica: about 500,000 events of 4 KB, 30 days of an instance doing 16,000
/// actions a day. JetStream reserves it on every replica's store when the stream is
/// created, so the default must fit a modest server; a bigger instance raises it.
fn default_max_bytes() -> u64 {
    2 << 30
}

/// The smallest `nats.max_bytes` accepted: 64 MiB, about 16,000 events of 4 KB, one busy
/// day; less would evict events before most consumers could read them.
pub const MIN_MAX_BYTES: u64 = 64 << 20;

/// `nats.replicas` allowed by JetStream.
pub const MAX_REPLICAS: usize = 5;

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: default_nats_url(),
            stream: default_stream(),
            subject_prefix: default_prefix(),
            private_stream: default_private_stream(),
            private_subject_prefix: default_private_prefix(),
            cursor_bucket: default_bucket(),
            duplicate_window: default_dup_window(),
            replicas: default_replicas(),
            max_age: default_max_age(),
            max_bytes: default_max_bytes(),
            creds_file: None,
            nkey_file: None,
            token_file: None,
            user: None,
            password_file: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl NatsConfig {
    /// Checks what the types alone cannot (names, URLs, bounds, auth pairs); every command
    /// that reads a `[nats]` table (the sourcer's and the relay's) calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_name("nats.stream", &self.stream, false)?;
        check_name("nats.cursor_bucket", &self.cursor_bucket, false)?;
        check_name("nats.subject_prefix", &self.subject_prefix, true)?;
        check_name("nats.private_stream", &self.private_stream, false)?;
        check_name(
            "nats.private_subject_prefix",
            &self.private_subject_prefix,
            true,
        )?;
        if self.private_stream == self.stream {
            return Err(invalid(
                "nats.private_stream",
                format!(
                    "must differ from nats.stream ({:?}): private repositories' events are kept apart",
                    self.stream
                ),
            ));
        }
        // `gitea` and `gitea.private` would put private events in the public stream too.
        let (a, b) = (&self.subject_prefix, &self.private_subject_prefix);
        if a == b || b.starts_with(&format!("{a}.")) || a.starts_with(&format!("{b}.")) {
            return Err(invalid(
                "nats.private_subject_prefix",
                format!(
                    "{b:?} overlaps nats.subject_prefix {a:?}: neither may be the other or below it, \
                     or one stream would store the other's events"
                ),
            ));
        }
        if self.url.trim().is_empty() {
            return Err(invalid("nats.url", "must not be empty"));
        }
        for part in self.url.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(invalid(
                    "nats.url",
                    "has an empty entry in its comma-separated list",
                ));
            }
            if let Err(e) = part.parse::<async_nats::ServerAddr>() {
                return Err(invalid(
                    "nats.url",
                    format!(
                        "{part:?} is not a NATS server URL (nats://HOST:PORT, tls://, ws:// or wss://, comma-separated): {e}"
                    ),
                ));
            }
        }
        if self.duplicate_window < Duration::from_secs(1) {
            return Err(invalid("nats.duplicate_window", "must be at least 1s"));
        }
        if !(1..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(invalid(
                "nats.replicas",
                format!("must be 1 to {MAX_REPLICAS}, not {}", self.replicas),
            ));
        }
        if self.max_age < self.duplicate_window {
            return Err(invalid(
                "nats.max_age",
                format!(
                    "{} is shorter than nats.duplicate_window ({}): a retried event could be \
                     stored again after the stream dropped the first copy",
                    humantime::format_duration(self.max_age),
                    humantime::format_duration(self.duplicate_window)
                ),
            ));
        }
        if self.max_bytes < MIN_MAX_BYTES {
            return Err(invalid(
                "nats.max_bytes",
                format!(
                    "{} bytes is below the minimum of 64MiB (about one busy day of events)",
                    self.max_bytes
                ),
            ));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(invalid(
                "nats.tls_cert_file",
                "tls_cert_file and tls_key_file go together",
            ));
        }
        if self.user.is_some() != self.password_file.is_some() {
            return Err(invalid("nats.user", "user and password_file go together"));
        }
        Ok(())
    }

    /// Reads every NATS secret file once (see [`Config::check_secrets`]).
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        for (key, path) in [
            ("nats.nkey_file", &self.nkey_file),
            ("nats.token_file", &self.token_file),
            ("nats.password_file", &self.password_file),
            ("nats.creds_file", &self.creds_file),
        ] {
            if let Some(path) = path {
                read_secret_file(key, path)?;
            }
        }
        Ok(())
    }
}

/// `[poll]`: defaults for every source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    /// Time between two polls of one source; a source may override it.
    #[serde(default = "default_interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// Where a source without a cursor begins: `now`, `beginning` or `YYYY-MM-DD`.
    #[serde(default)]
    pub start: StartAt,
    /// Trailing window re-read on every poll, to catch rows that become visible late
    /// and rows skipped when offset pages shift (see `state::cursor`).
    #[serde(default = "default_lookback", deserialize_with = "duration")]
    pub lookback: Duration,
    /// Random extra delay before each poll, as a fraction of the interval (0 to 0.5), so that
    /// sources do not poll in lock-step.
    #[serde(default = "default_jitter")]
    pub jitter: f64,
    /// Pages a live poll reads before it switches to a day-by-day catch-up walk.
    #[serde(default = "default_live_pages")]
    pub live_pages: usize,
    /// The most identities one cursor's trailing window keeps (about 55 bytes each in the
    /// cursor's KV value, which the server bounds by its `max_payload`, 1 MiB by default).
    /// Past it the oldest seconds are forgotten first (the window is shorter until the burst
    /// has passed); while the cursor waits below a second it could not prove whole, rows
    /// newer than that second wait too once the window is full (late, not lost).
    #[serde(default = "default_max_window")]
    pub max_window: usize,
    /// How often an org source with `repos = true` lists its repositories again.
    #[serde(default = "default_repos_refresh", deserialize_with = "duration")]
    pub repos_refresh: Duration,
    /// The longest a quiet source waits between polls when the polls of every source do
    /// not fit the request budget (see `cadence`): active sources keep their interval, the
    /// quiet ones share the rest of the budget, each waiting at most this long.
    #[serde(default = "default_max_interval", deserialize_with = "duration")]
    pub max_interval: Duration,
    /// Org sources with `repos = true`: `"0s"` (the default) polls the `kinds` of every
    /// repository at every poll. Longer: only repositories the org feed shows active (a row
    /// in the trailing window) are polled at every poll; the others in turn, each at least
    /// once per this span (for orgs with many repositories and a small request budget).
    #[serde(default, deserialize_with = "duration")]
    pub repos_sweep: Duration,
    /// Also publish, for every action Gitea would send a webhook for, the payload Gitea would
    /// POST, on `{prefix}.{owner}.{repo}.hook.{event_type}` (CloudEvents binary mode); a
    /// source may override it. Costs requests: see the README's table of event types.
    #[serde(default)]
    pub webhooks: bool,
    /// With `webhooks`: fill each pushed commit's `added`/`removed`/`modified` from the commit
    /// API (one request per listed commit); a source may override it.
    #[serde(default)]
    pub push_files: bool,
}

fn default_repos_refresh() -> Duration {
    Duration::from_secs(600)
}

fn default_max_interval() -> Duration {
    Duration::from_secs(600)
}

fn default_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_lookback() -> Duration {
    Duration::from_secs(300)
}
fn default_jitter() -> f64 {
    0.1
}
fn default_live_pages() -> usize {
    8
}
fn default_max_window() -> usize {
    crate::state::cursor::MAX_SEEN
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            interval: default_interval(),
            start: StartAt::default(),
            lookback: default_lookback(),
            jitter: default_jitter(),
            live_pages: default_live_pages(),
            max_window: default_max_window(),
            repos_refresh: default_repos_refresh(),
            max_interval: default_max_interval(),
            repos_sweep: Duration::ZERO,
            webhooks: false,
            push_files: false,
        }
    }
}

/// `[http]`: metrics and health endpoints.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address for `/metrics`, `/healthz` and `/readyz`, e.g. `127.0.0.1:9464`; off when absent.
    pub listen: Option<std::net::SocketAddr>,
}

/// `[ha]`: several instances with the same config share its sources; each source is polled by
/// the one instance that holds its lease (a key in `lease_bucket`, expiring on the server's
/// clock unless renewed).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    /// Share the sources with the other instances on the same NATS; off: this instance polls
    /// every source.
    #[serde(default)]
    pub enabled: bool,
    /// This instance's name in the lease bucket (`check`, `cursors list`, logs); unique per
    /// running instance. Default: the host name and the process id (`HOST-PID`).
    pub instance: Option<String>,
    /// How long a lease outlives its holder's last renewal (renewed every third of it);
    /// whole seconds, 2s to 5min. A dead holder's sources move within two of these.
    #[serde(default = "default_lease_ttl", deserialize_with = "duration")]
    pub lease_ttl: Duration,
    /// KV bucket of the leases and of the instances' heartbeats (created if missing); never
    /// the cursor bucket: its keys expire.
    #[serde(default = "default_lease_bucket")]
    pub lease_bucket: String,
}

fn default_lease_ttl() -> Duration {
    Duration::from_secs(10)
}
fn default_lease_bucket() -> String {
    "gitea_leases".into()
}

/// `[control]`: a NATS micro service (`nats micro ls` lists it) through which an operator
/// lists the sources and their state, pauses, resumes or resets one, or starts a backfill.
/// Who may do what is decided by NATS: the subjects a user may publish to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Serve it; off by default (the sourcer's NATS user then needs to subscribe to
    /// `{subject}.>` and `$SRV.>`, with `allow_responses`).
    #[serde(default)]
    pub enabled: bool,
    /// Subject prefix of the endpoints (`{subject}.sources.list`, ...); not below
    /// `nats.subject_prefix`, whose subjects the stream stores.
    #[serde(default = "default_control_subject")]
    pub subject: String,
    /// The longest range `backfill` starts: `since` at most this many days before `until`
    /// (a wider one is refused, so a typo in a year cannot read Gitea for years).
    #[serde(default = "default_max_backfill_days")]
    pub max_backfill_days: u32,
}

fn default_control_subject() -> String {
    "gitea_control".into()
}
fn default_max_backfill_days() -> u32 {
    366
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            enabled: false,
            subject: default_control_subject(),
            max_backfill_days: default_max_backfill_days(),
        }
    }
}

impl ControlConfig {
    /// Checks the prefix: a valid subject, outside the stream's subjects.
    pub fn validate(&self, nats: &NatsConfig) -> Result<(), ConfigError> {
        check_name("control.subject", &self.subject, true)?;
        if self.max_backfill_days == 0 {
            return Err(invalid(
                "control.max_backfill_days",
                "must be at least 1 (the days a backfill may span)",
            ));
        }
        let events = format!("{}.", nats.subject_prefix);
        if self.subject == nats.subject_prefix || self.subject.starts_with(&events) {
            return Err(invalid(
                "control.subject",
                format!(
                    "must not be below nats.subject_prefix {:?}: the stream would store the requests",
                    nats.subject_prefix
                ),
            ));
        }
        Ok(())
    }
}

/// The shortest and longest `ha.lease_ttl`.
pub const LEASE_TTL_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(2), Duration::from_secs(300));

impl Default for HaConfig {
    fn default() -> Self {
        HaConfig {
            enabled: false,
            instance: None,
            lease_ttl: default_lease_ttl(),
            lease_bucket: default_lease_bucket(),
        }
    }
}

impl HaConfig {
    /// Checks the bounds and names (see [`LEASE_TTL_BOUNDS`]).
    pub fn validate(&self, nats: &NatsConfig) -> Result<(), ConfigError> {
        check_name("ha.lease_bucket", &self.lease_bucket, false)?;
        if self.lease_bucket == nats.cursor_bucket {
            return Err(invalid(
                "ha.lease_bucket",
                "must not be nats.cursor_bucket: leases expire, cursors must not",
            ));
        }
        let (min, max) = LEASE_TTL_BOUNDS;
        if self.lease_ttl < min || self.lease_ttl > max || self.lease_ttl.subsec_nanos() != 0 {
            return Err(invalid(
                "ha.lease_ttl",
                format!(
                    "must be whole seconds from {} to {}, not {}",
                    humantime::format_duration(min),
                    humantime::format_duration(max),
                    humantime::format_duration(self.lease_ttl)
                ),
            ));
        }
        if let Some(name) = &self.instance
            && (name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control))
        {
            return Err(invalid(
                "ha.instance",
                "must be 1 to 128 printable characters",
            ));
        }
        Ok(())
    }

    /// The instance name: `instance`, or `HOST-PID`.
    pub fn instance_name(&self) -> String {
        if let Some(name) = &self.instance {
            return name.trim().to_string();
        }
        format!("{}-{}", host_name(), std::process::id())
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else
/// `localhost`): in `[ha]` instance names and in who paused a source.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// `[log]`: logging defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Level filter in `RUST_LOG` syntax (e.g. `info`, `gitea_nats_sourcer=debug`);
    /// `RUST_LOG` wins when set.
    pub level: Option<String>,
    /// `text` (default) or `json`; `--log-format` wins when given.
    pub format: Option<LogFormat>,
    /// Name private repositories in logs, metrics labels, `sources.list` and dead letters.
    /// Off (the default): one known to be private is shown as `private-` and 16 hex digits
    /// of the SHA-256 of its lower-case `owner/name` (see `names`).
    #[serde(default)]
    pub name_private_repos: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (journald, log shippers).
    Json,
}

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
    /// Branches and tags (`/branches`, `/tags`, read when the repository's `updated_at`
    /// moved): the `push`, `create` and `delete` of pushes the feed does not show (a token
    /// that is not an admin's never sees the Gitea Actions bot's rows).
    Refs,
}

impl RepoKind {
    pub fn name(self) -> &'static str {
        match self {
            RepoKind::Issues => "issues",
            RepoKind::Comments => "comments",
            RepoKind::Releases => "releases",
            RepoKind::Statuses => "statuses",
            RepoKind::Actions => "actions",
            RepoKind::Refs => "refs",
        }
    }
}

impl fmt::Display for RepoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `[[source]]` table: exactly one of `org`, `repo`, `user`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Organisation whose feed (every repository of the org) is polled.
    pub org: Option<String>,
    /// Repository `OWNER/NAME` whose feed is polled.
    pub repo: Option<String>,
    /// User whose own actions are polled (`only-performed-by=true`).
    pub user: Option<String>,
    /// Every organisation and every user's repository the token can see, discovered through
    /// the API (`/admin/orgs`, or `/user/orgs` for a token that is not an admin's, and
    /// `/repos/search`) and listed again every `poll.repos_refresh`; this table's other
    /// settings apply to each. Sources given on their own tables keep their own settings.
    #[serde(default)]
    pub all: bool,
    /// Overrides `poll.interval` for this source.
    #[serde(default, deserialize_with = "opt_duration")]
    pub interval: Option<Duration>,
    /// Overrides `poll.start` for this source.
    pub start: Option<StartAt>,
    /// Repository endpoints polled besides the feed (opt-in; see README for their cost):
    /// `issues`, `comments`, `releases`, `statuses`, `actions`, `refs`.
    #[serde(default)]
    pub kinds: Vec<RepoKind>,
    /// Org sources: also poll `kinds` for every repository of the org (listed through the API
    /// and refreshed every `poll.repos_refresh`).
    #[serde(default)]
    pub repos: bool,
    /// Attach the issue or pull request a thin feed row points to (`data.issue`); one extra
    /// request per issue, cached.
    #[serde(default)]
    pub enrich: bool,
    /// Overrides `poll.webhooks`: also publish webhook-shaped events for this source.
    pub webhooks: Option<bool>,
    /// Overrides `poll.push_files`: pushes' file lists from the commit API.
    pub push_files: Option<bool>,
}

/// Where a source without a cursor begins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartAt {
    /// Only actions that happen from now on.
    #[default]
    Now,
    /// Every action Gitea still has.
    Beginning,
    /// Actions from this day (server time zone) on.
    Date(NaiveDate),
}

impl std::str::FromStr for StartAt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "now" => Ok(StartAt::Now),
            "beginning" => Ok(StartAt::Beginning),
            other => NaiveDate::parse_from_str(other, "%Y-%m-%d")
                .map(StartAt::Date)
                .map_err(|_| {
                    format!("expected \"now\", \"beginning\" or a date YYYY-MM-DD, got {other:?}")
                }),
        }
    }
}

impl fmt::Display for StartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartAt::Now => f.write_str("now"),
            StartAt::Beginning => f.write_str("beginning"),
            StartAt::Date(d) => write!(f, "{d}"),
        }
    }
}

impl<'de> Deserialize<'de> for StartAt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration like \"30s\": {e}")))
}

/// A byte count: an integer, or a string with a unit (`"512MiB"`, `"10GiB"`, `"1TB"`).
fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(n),
        Raw::Text(s) => parse_byte_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a size like \"10GiB\", \"512MiB\" or a number of bytes"
            ))
        }),
    }
}

/// `url` (or a comma-separated list of URLs, as `nats.url`) without credentials
/// (`user:pass@`): what may be shown (`check`, errors, logs) or published (an event's
/// `source`, a hook's `compare_url`). The URL itself, credentials and all, is used only to
/// connect. Text that is not a URL loses everything between `://` and the last `@` of its
/// authority.
pub fn without_userinfo(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let trimmed = one.trim();
            match reqwest::Url::parse(trimmed) {
                Ok(mut u) if u.has_authority() => {
                    let _ = u.set_username("");
                    let _ = u.set_password(None);
                    let mut shown = u.to_string();
                    // `Url` adds a `/` to a bare authority: keep what was written.
                    if !trimmed.ends_with('/') && shown.ends_with('/') && u.path() == "/" {
                        shown.pop();
                    }
                    shown
                }
                _ => match trimmed.split_once("://") {
                    Some((scheme, rest)) => {
                        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                        let (authority, tail) = rest.split_at(end);
                        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                        format!("{scheme}://{host}{tail}")
                    }
                    None => trimmed
                        .rsplit_once('@')
                        .map_or(trimmed, |(_, h)| h)
                        .to_string(),
                },
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `"10GiB"`, `"512 MiB"`, `"1TB"`, `"4096"`.
pub fn parse_byte_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// A secret value (a token, a password, a webhook secret, a URL that may carry one): never
/// printed by `Debug` or `Display`, and its memory overwritten with zeros when dropped
/// (`zeroize`), so that a core dump or a reused allocation does not keep it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(zeroize::Zeroizing::new(value.into()))
    }
    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A source with its effective settings (defaults from `[poll]` applied). Equal when every
/// setting is: a reload restarts a source whose settings changed in any way.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Which feed.
    pub spec: SourceSpec,
    /// Time between polls.
    pub interval: Duration,
    /// Where to begin without a cursor.
    pub start: StartAt,
    /// Repository endpoints polled besides the feed.
    pub kinds: Vec<RepoKind>,
    /// Org sources: poll `kinds` for each of the org's repositories.
    pub repos: bool,
    /// How often the org's repositories are listed again.
    pub repos_refresh: Duration,
    /// Every quiet repository's kinds polled at least once per this span (0: every poll).
    pub repos_sweep: Duration,
    /// Attach the issue a feed row points to.
    pub enrich: bool,
    /// Also publish webhook-shaped events (`{prefix}.{owner}.{repo}.hook.{event_type}`).
    pub webhooks: bool,
    /// With `webhooks`: pushes' `added`/`removed`/`modified` from the commit API.
    pub push_files: bool,
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = reqwest::Url::parse(&self.gitea.url).map_err(|e| {
            invalid(
                "gitea.url",
                format!("{:?} is not a URL: {e}", without_userinfo(&self.gitea.url)),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("gitea.url", "must start with http:// or https://"));
        }
        let token_sources = [
            self.gitea.token.is_some(),
            self.gitea.token_file.is_some(),
            self.gitea.token_env.is_some(),
        ];
        if token_sources.iter().filter(|b| **b).count() > 1 {
            return Err(invalid(
                "gitea.token_file",
                "give at most one of token, token_file and token_env",
            ));
        }
        if self.gitea.requests_per_second == 0 {
            return Err(invalid("gitea.requests_per_second", "must be at least 1"));
        }
        if self.gitea.burst == 0 {
            return Err(invalid("gitea.burst", "must be at least 1"));
        }
        if self.gitea.timeout.is_zero() {
            return Err(invalid("gitea.timeout", "must be longer than 0s"));
        }
        self.nats.validate()?;
        self.ha.validate(&self.nats)?;
        self.control.validate(&self.nats)?;
        if self.poll.interval < Duration::from_millis(100) {
            return Err(invalid("poll.interval", "must be at least 100ms"));
        }
        if self.poll.lookback < MIN_LOOKBACK {
            return Err(invalid(
                "poll.lookback",
                format!(
                    "must be at least {}: every poll re-reads this trailing window to catch rows that become visible late; without it they are lost",
                    humantime::format_duration(MIN_LOOKBACK)
                ),
            ));
        }
        if !(0.0..=0.5).contains(&self.poll.jitter) {
            return Err(invalid("poll.jitter", "must be between 0 and 0.5"));
        }
        if self.poll.live_pages == 0 {
            return Err(invalid("poll.live_pages", "must be at least 1"));
        }
        if !(10..=crate::state::cursor::MAX_SEEN).contains(&self.poll.max_window) {
            return Err(invalid(
                "poll.max_window",
                format!(
                    "must be between 10 and {} (more would not fit a cursor in 1 MiB)",
                    crate::state::cursor::MAX_SEEN
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut discovering = false;
        for (i, s) in self.sources.iter().enumerate() {
            if s.all {
                if s.org.is_some() || s.repo.is_some() || s.user.is_some() {
                    return Err(invalid(
                        format!("source[{i}].all"),
                        "all = true goes alone: without org, repo or user",
                    ));
                }
                if discovering {
                    return Err(invalid(
                        format!("source[{i}].all"),
                        "only one all = true table",
                    ));
                }
                if !s.kinds.is_empty() && !s.repos {
                    return Err(invalid(
                        format!("source[{i}].kinds"),
                        "kinds with all = true need repos = true (every repository of each org)",
                    ));
                }
                discovering = true;
                continue;
            }
            let spec = s
                .spec()
                .map_err(|e| invalid(format!("source[{i}]"), e.to_string()))?;
            if let Some(iv) = s.interval
                && iv < Duration::from_millis(100)
            {
                return Err(invalid(
                    format!("source[{i}].interval"),
                    "must be at least 100ms",
                ));
            }
            match (&spec, s.repos, s.kinds.is_empty()) {
                (SourceSpec::Org(_), false, false) => {
                    return Err(invalid(
                        format!("source[{i}].kinds"),
                        "kinds on an org source need repos = true (poll every repository of the org)",
                    ));
                }
                (SourceSpec::User(_), _, false) => {
                    return Err(invalid(
                        format!("source[{i}].kinds"),
                        "kinds apply to repo and org sources",
                    ));
                }
                (SourceSpec::User(_) | SourceSpec::Repo { .. }, true, _) => {
                    return Err(invalid(
                        format!("source[{i}].repos"),
                        "repos = true applies to org sources",
                    ));
                }
                _ => {}
            }
            if !seen.insert(spec.clone()) {
                return Err(invalid(
                    format!("source[{i}]"),
                    format!("{spec} is listed twice"),
                ));
            }
        }
        Ok(())
    }

    /// The `all = true` table, if any.
    pub fn discovery(&self) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.all)
    }

    /// This config with the `all = true` table replaced by one table per `found` source
    /// (with its settings) that no table of its own names.
    pub fn with_discovered(&self, found: &[SourceSpec]) -> Config {
        let mut out = self.clone();
        let Some(all) = self.discovery().cloned() else {
            return out;
        };
        out.sources.retain(|s| !s.all);
        let named: HashSet<SourceSpec> = out.sources.iter().filter_map(|s| s.spec().ok()).collect();
        for spec in found {
            if named.contains(spec) {
                continue;
            }
            let mut t = SourceConfig {
                all: false,
                org: None,
                repo: None,
                user: None,
                ..all.clone()
            };
            match spec {
                SourceSpec::Org(o) => t.org = Some(o.clone()),
                SourceSpec::Repo { owner, name } => {
                    t.repo = Some(format!("{owner}/{name}"));
                    t.repos = false;
                }
                SourceSpec::User(u) => t.user = Some(u.clone()),
            }
            out.sources.push(t);
        }
        out
    }

    /// What `run` needs beyond a valid file: at least one `[[source]]` (without one it would
    /// run doing nothing). `check` asks the same; `tail`, `cursors` and `backfill --source`
    /// work without sources.
    pub fn require_sources(&self) -> Result<(), ConfigError> {
        if self.sources.is_empty() {
            return Err(invalid(
                "source",
                "no [[source]] table: add one per org, repo or user to poll",
            ));
        }
        Ok(())
    }

    /// Reads every secret file the config names (Gitea token, NATS credentials) once, so
    /// that a missing or unreadable one is a config error at start that names the key and
    /// the path. The values are dropped at once.
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        self.gitea.token()?;
        self.nats.check_secrets()
    }

    /// Settings that are legal but risky: one sentence each, logged as warnings at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.poll.lookback < Duration::from_secs(60) {
            out.push(format!(
                "poll.lookback = {} is short: rows that Gitea shows later than that after they happened are missed (the default is 5m)",
                humantime::format_duration(self.poll.lookback)
            ));
        }
        if self.nats.duplicate_window < Duration::from_secs(3600) {
            out.push(format!(
                "nats.duplicate_window = {} is short: a batch retried after a longer outage may be stored twice (at least 1h is advised; it applies only when the sourcer creates the stream)",
                humantime::format_duration(self.nats.duplicate_window)
            ));
        }
        out
    }

    /// The sources with `[poll]` defaults applied.
    pub fn sources(&self) -> Vec<Source> {
        self.sources
            .iter()
            .filter_map(|s| {
                // validate() has accepted every spec, so this keeps them all.
                let spec = s.spec().ok()?;
                Some(Source {
                    spec,
                    interval: s.interval.unwrap_or(self.poll.interval),
                    start: s.start.unwrap_or(self.poll.start),
                    kinds: s.kinds.clone(),
                    repos: s.repos,
                    repos_refresh: self.poll.repos_refresh,
                    repos_sweep: self.poll.repos_sweep,
                    enrich: s.enrich,
                    webhooks: s.webhooks.unwrap_or(self.poll.webhooks),
                    push_files: s.push_files.unwrap_or(self.poll.push_files),
                })
            })
            .collect()
    }

    /// A warning for a token written inline in a file that other users can read.
    pub fn inline_token_warning(&self, path: &Path) -> Option<String> {
        self.gitea.token.as_ref()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).ok()?.permissions().mode();
            if mode & 0o044 != 0 {
                return Some(format!(
                    "{} holds gitea.token inline and is readable by other users (mode {:o}); \
                     move the token to gitea.token_file or gitea.token_env, or chmod 600 the file",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
        None
    }
}

impl SourceConfig {
    /// The source this table names.
    pub fn spec(&self) -> Result<SourceSpec, SpecError> {
        match (&self.org, &self.repo, &self.user) {
            (Some(o), None, None) => SourceSpec::org(o),
            (None, Some(r), None) => r.parse::<SourceSpec>().or_else(|_| {
                let (owner, name) = r.split_once('/').ok_or(SpecError::RepoForm(r.clone()))?;
                SourceSpec::repo(owner, name)
            }),
            (None, None, Some(u)) => SourceSpec::user(u),
            _ => Err(SpecError::OneKind),
        }
    }
}

impl GiteaConfig {
    /// The domain of users' placeholder e-mail addresses (`no_reply_address`, else
    /// `noreply.` and the host of `url`).
    pub fn no_reply(&self) -> String {
        match &self.no_reply_address {
            Some(a) => a.clone(),
            None => {
                let host = reqwest::Url::parse(&self.url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| "localhost".to_string());
                format!("noreply.{host}")
            }
        }
    }

    /// Reads the API token from wherever the config says, if anywhere.
    pub fn token(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(path) = &self.token_file {
            let path = &secret_path(path);
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Secret {
                key: "gitea.token_file",
                path: path.clone(),
                source,
            })?;
            let token = text.lines().next().unwrap_or("").trim().to_string();
            if token.is_empty() {
                return Err(invalid(
                    "gitea.token_file",
                    format!("{} is empty", path.display()),
                ));
            }
            return Ok(Some(Secret::new(token)));
        }
        if let Some(var) = &self.token_env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
                _ => Err(invalid(
                    "gitea.token_env",
                    format!("environment variable {var} is not set or empty"),
                )),
            };
        }
        Ok(self.token.clone())
    }
}

/// Where a secret file really is: a relative path is looked up in systemd's
/// `$CREDENTIALS_DIRECTORY` (`LoadCredential=`) when it is set, else taken as given.
pub fn secret_path(path: &Path) -> PathBuf {
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if path.is_relative() => Path::new(&dir).join(path),
        _ => path.to_owned(),
    }
}

/// Reads a secret file (first line, trimmed) for a NATS credential.
pub fn read_secret_file(key: &'static str, path: &Path) -> Result<Secret, ConfigError> {
    let path = &secret_path(path);
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Secret {
        key,
        path: path.to_owned(),
        source,
    })?;
    Ok(Secret::new(text.lines().next().unwrap_or("").trim()))
}

fn check_name(key: &str, value: &str, dots: bool) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        && (dots || !value.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!(
                "{value:?} may hold only letters, digits, '_' and '-'{}",
                if dots {
                    " (and '.' between tokens)"
                } else {
                    ""
                }
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[gitea]\nurl = \"https://git.example.com/sub\"\n";

    #[test]
    fn urls_are_shown_and_published_without_their_credentials() {
        for (url, shown) in [
            (
                "https://alice:s3cret@git.example.org",
                "https://git.example.org",
            ),
            (
                "https://alice:s3cret@git.example.org/",
                "https://git.example.org/",
            ),
            (
                "https://tok@git.example.org:3000/gitea",
                "https://git.example.org:3000/gitea",
            ),
            ("https://git.example.org", "https://git.example.org"),
            (
                "nats://u:p@a:4222, nats://b:4222,tls://u2:p2@c",
                "nats://a:4222,nats://b:4222,tls://c",
            ),
            ("nats://u:p@[bad", "nats://[bad"),
        ] {
            let got = without_userinfo(url);
            assert_eq!(got, shown, "{url}");
            assert!(!got.contains("s3cret") && !got.contains(":p@"), "{got}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse(&format!("{MIN}tokn_file = \"/x\"\n")).unwrap_err();
        assert!(err.to_string().contains("tokn_file"), "{err}");
    }

    #[test]
    fn defaults_apply() {
        let c = Config::parse(&format!("{MIN}[[source]]\norg = \"acme\"\n")).unwrap();
        assert_eq!(c.nats.stream, "GITEA_EVENTS");
        assert_eq!(c.poll.interval, Duration::from_secs(30));
        assert_eq!(c.sources()[0].spec.to_string(), "org:acme");
        assert_eq!(c.sources()[0].start, StartAt::Now);
    }

    #[test]
    fn stream_bounds_default_and_parse() {
        let c = Config::parse(MIN).unwrap();
        assert_eq!(c.nats.replicas, 1);
        assert_eq!(c.nats.max_age, Duration::from_secs(30 * 86400));
        assert_eq!(c.nats.max_bytes, 2 << 30);
        let c = Config::parse(&format!(
            "{MIN}[nats]\nreplicas = 3\nmax_age = \"7days\"\nmax_bytes = \"512MiB\"\n"
        ))
        .unwrap();
        assert_eq!(c.nats.replicas, 3);
        assert_eq!(c.nats.max_age, Duration::from_secs(7 * 86400));
        assert_eq!(c.nats.max_bytes, 512 << 20);
        let c = Config::parse(&format!("{MIN}[nats]\nmax_bytes = 100000000\n")).unwrap();
        assert_eq!(c.nats.max_bytes, 100_000_000);
        assert_eq!(parse_byte_size("1TB"), Some(1_000_000_000_000));
        assert_eq!(parse_byte_size("ten"), None);
    }

    #[test]
    fn stream_bounds_too_small_are_refused_naming_the_key() {
        for (extra, key) in [
            ("max_age = \"1h\"", "nats.max_age"),
            (
                "duplicate_window = \"3h\"\nmax_age = \"2h\"",
                "nats.max_age",
            ),
            ("max_bytes = \"1MiB\"", "nats.max_bytes"),
            ("max_bytes = 1000", "nats.max_bytes"),
            ("replicas = 0", "nats.replicas"),
            ("replicas = 7", "nats.replicas"),
        ] {
            let err = Config::parse(&format!("{MIN}[nats]\n{extra}\n")).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { key: k, .. } if k == key),
                "{extra}: {err}"
            );
        }
        let err = Config::parse(&format!("{MIN}[nats]\nmax_bytes = \"lots\"\n")).unwrap_err();
        assert!(err.to_string().contains("max_bytes"), "{err}");
    }

    #[test]
    fn ha_defaults_and_bounds_are_enforced_naming_the_key() {
        let c = Config::parse(MIN).unwrap();
        assert!(!c.ha.enabled);
        assert_eq!(c.ha.lease_ttl, Duration::from_secs(10));
        assert_eq!(c.ha.lease_bucket, "gitea_leases");
        let name = c.ha.instance_name();
        assert!(
            name.ends_with(&format!("-{}", std::process::id())),
            "HOST-PID: {name}"
        );
        let c = Config::parse(&format!(
            "{MIN}[ha]\nenabled = true\ninstance = \" sourcer-1 \"\nlease_ttl = \"2s\"\n"
        ))
        .unwrap();
        assert_eq!(c.ha.instance_name(), "sourcer-1");
        for (extra, key) in [
            ("lease_ttl = \"1s\"", "ha.lease_ttl"),
            ("lease_ttl = \"6min\"", "ha.lease_ttl"),
            ("lease_ttl = \"2500ms\"", "ha.lease_ttl"),
            ("lease_bucket = \"gitea_cursors\"", "ha.lease_bucket"),
            ("lease_bucket = \"a.b\"", "ha.lease_bucket"),
            ("instance = \"  \"", "ha.instance"),
        ] {
            let err = Config::parse(&format!("{MIN}[ha]\n{extra}\n")).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { key: k, .. } if k == key),
                "{extra}: {err}"
            );
        }
        let err = Config::parse(&format!("{MIN}[ha]\nlease = \"10s\"\n")).unwrap_err();
        assert!(
            err.to_string().contains("lease"),
            "unknown key named: {err}"
        );
    }

    #[test]
    fn all_goes_alone_once_and_expands_into_the_sources_found() {
        let c = Config::parse(&format!(
            "{MIN}[[source]]\nall = true\ninterval = \"5s\"\nenrich = true\n\
             [[source]]\norg = \"acme\"\ninterval = \"1s\"\n"
        ))
        .unwrap();
        assert!(c.discovery().is_some());
        assert_eq!(
            c.sources().len(),
            1,
            "until something is found, the named ones"
        );
        let found = [
            SourceSpec::org("acme").unwrap(),
            SourceSpec::org("globex").unwrap(),
            SourceSpec::repo("alice", "dot.files").unwrap(),
        ];
        let e = c.with_discovered(&found);
        assert!(e.discovery().is_none());
        let s = e.sources();
        assert_eq!(s.len(), 3);
        let by = |n: &str| s.iter().find(|x| x.spec.to_string() == n).unwrap().clone();
        assert_eq!(
            by("org:acme").interval,
            Duration::from_secs(1),
            "its own table wins"
        );
        assert_eq!(by("org:globex").interval, Duration::from_secs(5));
        assert!(by("repo:alice/dot.files").enrich);
        for (extra, key) in [
            ("[[source]]\nall = true\norg = \"acme\"\n", "source[0].all"),
            (
                "[[source]]\nall = true\n[[source]]\nall = true\n",
                "source[1].all",
            ),
            (
                "[[source]]\nall = true\nkinds = [\"issues\"]\n",
                "source[0].kinds",
            ),
        ] {
            let err = Config::parse(&format!("{MIN}{extra}")).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { key: k, .. } if k == key),
                "{extra}: {err}"
            );
        }
    }

    #[test]
    fn source_needs_exactly_one_kind() {
        let err =
            Config::parse(&format!("{MIN}[[source]]\norg = \"a\"\nuser = \"b\"\n")).unwrap_err();
        assert!(err.to_string().contains("source[0]"), "{err}");
    }

    #[test]
    fn bad_duration_and_start_name_the_key() {
        let err = Config::parse(&format!("{MIN}[poll]\ninterval = \"soon\"\n")).unwrap_err();
        assert!(err.to_string().contains("interval"), "{err}");
        let err = Config::parse(&format!("{MIN}[poll]\nstart = \"yesterday\"\n")).unwrap_err();
        assert!(err.to_string().contains("start"), "{err}");
        let c = Config::parse(&format!("{MIN}[poll]\nstart = \"2026-01-02\"\n")).unwrap();
        assert_eq!(c.poll.start.to_string(), "2026-01-02");
    }

    #[test]
    fn webhooks_default_from_poll_and_a_source_overrides_them() {
        let c = Config::parse(&format!(
            "{MIN}[poll]\nwebhooks = true\n[[source]]\nrepo = \"a/b\"\n[[source]]\nrepo = \"a/c\"\nwebhooks = false\n[[source]]\nrepo = \"a/d\"\npush_files = true\n"
        ))
        .expect("valid");
        let s = c.sources();
        assert_eq!(
            s.iter()
                .map(|s| (s.webhooks, s.push_files))
                .collect::<Vec<_>>(),
            [(true, false), (false, false), (true, true)]
        );
        let off = Config::parse(&format!("{MIN}[[source]]\nrepo = \"a/b\"\n")).expect("valid");
        assert!(!off.sources()[0].webhooks, "off unless asked for");
        assert!(
            Config::parse(&format!(
                "{MIN}[[source]]\nrepo = \"a/b\"\nwebhook = true\n"
            ))
            .is_err()
        );
    }

    #[test]
    fn repository_kinds_are_checked() {
        let c = Config::parse(&format!(
            "{MIN}[[source]]\nrepo = \"a/b\"\nkinds = [\"issues\", \"statuses\"]\n"
        ))
        .unwrap();
        assert_eq!(c.sources()[0].kinds.len(), 2);
        let err = Config::parse(&format!(
            "{MIN}[[source]]\nrepo = \"a/b\"\nkinds = [\"labels\"]\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("labels"), "{err}");
        let err = Config::parse(&format!(
            "{MIN}[[source]]\norg = \"a\"\nkinds = [\"issues\"]\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("repos = true"), "{err}");
    }

    #[test]
    fn the_example_config_is_valid() {
        let c = Config::parse(include_str!("../config.example.toml")).unwrap();
        assert_eq!(c.sources().len(), 3);
    }

    #[test]
    fn nats_url_must_be_a_list_of_server_urls() {
        for good in [
            "nats://127.0.0.1:4222",
            "nats://a:4222, tls://b:4222",
            "127.0.0.1:4222",
        ] {
            Config::parse(&format!("{MIN}[nats]\nurl = \"{good}\"\n"))
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["not a url", "http://x:4222", "nats://a:4222,"] {
            let err = Config::parse(&format!("{MIN}[nats]\nurl = \"{bad}\"\n")).unwrap_err();
            assert!(err.to_string().contains("nats.url"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_lookback_below_the_minimum_is_refused_and_a_short_one_warned() {
        let err = Config::parse(&format!("{MIN}[poll]\nlookback = \"0s\"\n")).unwrap_err();
        assert!(err.to_string().contains("poll.lookback"), "{err}");
        let c = Config::parse(&format!("{MIN}[poll]\nlookback = \"20s\"\n")).unwrap();
        assert!(
            c.warnings().iter().any(|w| w.contains("poll.lookback")),
            "{:?}",
            c.warnings()
        );
        let c = Config::parse(MIN).unwrap();
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }

    #[test]
    fn secret_is_not_printed() {
        let s = Secret::new("hunter2-token");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    /// An inline `gitea.token` is a `Secret` too: a config printed with `{:?}` (a panic, a
    /// debug log) does not show it.
    #[test]
    fn an_inline_token_is_not_in_the_config_s_debug_output() {
        let c = Config::parse(
            "[gitea]\nurl = \"https://git.example.com\"\ntoken = \"hunter2-token\"\n\n\
             [[source]]\norg = \"acme\"\n",
        )
        .expect("config");
        assert_eq!(
            c.gitea
                .token()
                .expect("token")
                .map(|t| t.expose().to_string()),
            Some("hunter2-token".to_string())
        );
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
    }
}
