//! The relay's config file: the sourcer's `[nats]` table (same keys, same checks), `[http]`,
//! `[log]`, and one `[[receiver]]` table per HTTP receiver. [`RelayConfig::load`] parses and
//! validates it; [`RelayConfig::receivers`] reads each receiver's secret files and turns the
//! tables into runtime [`Receiver`]s, so a missing file or a bad URL fails at start, naming
//! the key.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{
    ConfigError, HttpConfig, LogConfig, NatsConfig, Secret, Validate, check_name, invalid,
    load_toml, parse_toml, secret_path,
};

use super::glob::Glob;

/// Where `relay` reads its config when `--config` is not given.
pub const DEFAULT_RELAY_CONFIG_PATH: &str = "/etc/gitea-nats-sourcer/relay.toml";

/// The `X-Gitea-Event` values Gitea sends (`modules/webhook/type.go`, `HookEventType.Event`):
/// what `events` may name.
pub const EVENTS: &[&str] = &[
    "create",
    "delete",
    "fork",
    "push",
    "release",
    "repository",
    "wiki",
    "issues",
    "issue_comment",
    "pull_request",
    "pull_request_approved",
    "pull_request_rejected",
    "pull_request_comment",
    "status",
    "workflow_run",
    "workflow_job",
    "package",
];

/// The whole relay config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// How to reach NATS and which stream holds the hook events (the sourcer's `[nats]`).
    #[serde(default)]
    pub nats: NatsConfig,
    /// The HTTP listener for `/metrics`, `/healthz`, `/readyz`; off when absent.
    #[serde(default)]
    pub http: HttpConfig,
    /// Logging defaults (overridden by `RUST_LOG` and `--log-format`).
    #[serde(default)]
    pub log: LogConfig,
    /// Key-value bucket that holds the dead letters (created if missing).
    #[serde(default = "default_dead_letter_bucket")]
    pub dead_letter_bucket: String,
    /// The receivers: one table each.
    #[serde(default, rename = "receiver")]
    pub receivers: Vec<ReceiverConfig>,
}

fn default_dead_letter_bucket() -> String {
    "gitea_relay_dead".into()
}

/// One `[[receiver]]`: where to POST, how to sign, which events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Names the receiver in logs, metrics, its durable consumer (`relay-{name}`) and its
    /// dead letters: letters, digits, `_` and `-`.
    pub name: String,
    /// The receiver's URL (http or https). Use `url_file` when it carries a token. Exactly one
    /// of `url` and `url_file`; logs show only its scheme, host and port.
    pub url: Option<String>,
    /// File holding the URL (first line); relative = `$CREDENTIALS_DIRECTORY`.
    pub url_file: Option<PathBuf>,
    /// File holding the webhook secret (HMAC key, first line); relative =
    /// `$CREDENTIALS_DIRECTORY`. Without it `X-Gitea-Signature` is empty and
    /// `X-Hub-Signature`/`-256` are the prefix alone (`sha1=`, `sha256=`), as Gitea sends them.
    pub secret_file: Option<PathBuf>,
    /// File holding the whole `Authorization` header value (e.g. `Bearer abc`); relative =
    /// `$CREDENTIALS_DIRECTORY`.
    pub authorization_file: Option<PathBuf>,
    /// `X-Gitea-Event` values to deliver (e.g. `push`, `pull_request`); default: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// `owner/name` globs (`*` and `?` within a part) of repositories to deliver; default: all.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Time limit of one delivery attempt (connect, send, read the answer).
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub timeout: Duration,
    /// How long one event is retried before it becomes a dead letter.
    #[serde(
        default = "default_give_up_after",
        deserialize_with = "crate::config::duration"
    )]
    pub give_up_after: Duration,
    /// At most this many attempts per event (then a dead letter); default: no limit but
    /// `give_up_after`.
    pub max_attempts: Option<u32>,
    /// HTTP method: `POST` (default) or `PUT`, as a Gitea hook may be set to.
    #[serde(default)]
    pub method: Method,
    /// First wait between two attempts (doubling, with jitter, up to `backoff_max`).
    #[serde(
        default = "default_backoff_min",
        deserialize_with = "crate::config::duration"
    )]
    pub backoff_min: Duration,
    /// Longest wait between two attempts (a `Retry-After` may ask for longer).
    #[serde(
        default = "default_backoff_max",
        deserialize_with = "crate::config::duration"
    )]
    pub backoff_max: Duration,
    /// JetStream's ack wait of the receiver's consumer: an event handed out and neither
    /// acknowledged nor kept in progress for this long (the relay died) is handed out again.
    #[serde(
        default = "default_ack_wait",
        deserialize_with = "crate::config::duration"
    )]
    pub ack_wait: Duration,
    /// Where a new consumer begins: `new` (events from now on, the default) or `all`
    /// (everything the stream holds). An existing consumer resumes where it was.
    #[serde(default)]
    pub start: Start,
    /// Also deliver the events of private repositories (those not readable anonymously,
    /// from `nats.private_stream`, through a durable consumer `relay-{name}` there); off by
    /// default: a receiver gets public repositories' events only.
    #[serde(default)]
    pub private: bool,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_give_up_after() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_backoff_min() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(300)
}
fn default_ack_wait() -> Duration {
    Duration::from_secs(30)
}

/// The HTTP method of deliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Post,
    Put,
}

/// Where a new consumer begins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Events stored from the consumer's creation on.
    #[default]
    New,
    /// Every event the stream holds.
    All,
}

/// A receiver ready to use: secrets read, URL parsed, filters compiled.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    /// The URL; it may carry a token, so it is a [`Secret`] and never shown.
    pub url: Secret,
    /// What logs may show of the URL: scheme, host and port.
    pub shown: String,
    pub secret: Option<Secret>,
    pub authorization: Option<Secret>,
    /// Empty: every event.
    pub events: Vec<String>,
    /// Empty: every repository.
    pub repos: Vec<Glob>,
    pub timeout: Duration,
    pub give_up_after: Duration,
    pub max_attempts: Option<u32>,
    pub method: Method,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub ack_wait: Duration,
    pub start: Start,
    /// Opted in to private repositories' events.
    pub private: bool,
}

impl Receiver {
    /// The durable consumer of this receiver.
    pub fn consumer_name(&self) -> String {
        format!("relay-{}", self.name)
    }

    /// Whether an event of coarse type `event` on repository `owner/name` goes to this receiver.
    pub fn wants(&self, event: &str, repo: &str) -> bool {
        (self.events.is_empty() || self.events.iter().any(|e| e == event))
            && (self.repos.is_empty() || self.repos.iter().any(|g| g.matches(repo)))
    }
}

impl Validate for RelayConfig {
    /// Checks what the types alone cannot.
    fn validate(&self) -> Result<(), ConfigError> {
        self.nats.validate()?;
        check_name("dead_letter_bucket", &self.dead_letter_bucket, false)?;
        if self.receivers.is_empty() {
            return Err(invalid(
                "receiver",
                "no [[receiver]] table: add one per HTTP receiver to deliver to",
            ));
        }
        let mut names = HashSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let key = |k: &str| format!("receiver[{i}].{k}");
            check_name(&key("name"), &r.name, false)?;
            if !names.insert(r.name.as_str()) {
                return Err(invalid(
                    key("name"),
                    format!("{:?} names two receivers", r.name),
                ));
            }
            match (&r.url, &r.url_file) {
                (Some(url), None) => {
                    check_url(url).map_err(|m| invalid(key("url"), m))?;
                }
                (None, Some(_)) => {}
                _ => {
                    return Err(invalid(key("url"), "give exactly one of url and url_file"));
                }
            }
            for e in &r.events {
                if !EVENTS.contains(&e.as_str()) {
                    return Err(invalid(
                        key("events"),
                        format!(
                            "{e:?} is not an X-Gitea-Event value (one of {})",
                            EVENTS.join(", ")
                        ),
                    ));
                }
            }
            for g in &r.repos {
                Glob::new(g).map_err(|m| invalid(key("repos"), m))?;
            }
            for (k, d) in [
                ("timeout", r.timeout),
                ("give_up_after", r.give_up_after),
                ("backoff_min", r.backoff_min),
                ("ack_wait", r.ack_wait),
            ] {
                if d.is_zero() {
                    return Err(invalid(key(k), "must be longer than 0s"));
                }
            }
            if r.backoff_max < r.backoff_min {
                return Err(invalid(key("backoff_max"), "is shorter than backoff_min"));
            }
            if r.ack_wait < Duration::from_secs(1) {
                return Err(invalid(key("ack_wait"), "must be at least 1s"));
            }
            if r.max_attempts == Some(0) {
                return Err(invalid(key("max_attempts"), "must be at least 1"));
            }
        }
        Ok(())
    }
}

impl RelayConfig {
    /// Reads, parses and validates the file at `path` (secret files are read by
    /// [`RelayConfig::receivers`]).
    pub fn load(path: &Path) -> Result<RelayConfig, ConfigError> {
        load_toml(path)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<RelayConfig, ConfigError> {
        parse_toml(text)
    }

    /// The receivers, with their secret files read (a missing or empty one is a config
    /// error naming its key) and URLs parsed.
    pub fn receivers(&self) -> Result<Vec<Receiver>, ConfigError> {
        self.receivers
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let key = |k: &str| format!("receiver[{i}].{k}");
                let url = match (&r.url, &r.url_file) {
                    (Some(url), _) => url.clone(),
                    (None, Some(path)) => {
                        let url = Secret::read_file(&key("url_file"), path)?;
                        // The message must not show the file's content: it may hold a token.
                        check_url(url.expose()).map_err(|_| {
                            invalid(
                                key("url_file"),
                                format!(
                                    "{} does not hold an http:// or https:// URL",
                                    secret_path(path).display()
                                ),
                            )
                        })?;
                        url.expose().to_string()
                    }
                    (None, None) => return Err(invalid(key("url"), "give url or url_file")),
                };
                let shown = shown_url(&url);
                let secret = r
                    .secret_file
                    .as_ref()
                    .map(|p| Secret::read_file(&key("secret_file"), p))
                    .transpose()?;
                let authorization = r
                    .authorization_file
                    .as_ref()
                    .map(|p| Secret::read_file(&key("authorization_file"), p))
                    .transpose()?;
                let repos = r
                    .repos
                    .iter()
                    .map(|g| Glob::new(g).map_err(|m| invalid(key("repos"), m)))
                    .collect::<Result<_, _>>()?;
                Ok(Receiver {
                    name: r.name.clone(),
                    url: Secret::new(url),
                    shown,
                    secret,
                    authorization,
                    events: r.events.clone(),
                    repos,
                    timeout: r.timeout,
                    give_up_after: r.give_up_after,
                    max_attempts: r.max_attempts,
                    method: r.method,
                    backoff_min: r.backoff_min,
                    backoff_max: r.backoff_max,
                    ack_wait: r.ack_wait,
                    start: r.start,
                    private: r.private,
                })
            })
            .collect()
    }
}

/// An http(s) URL with a host. The message never repeats the URL (it may carry a token).
fn check_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(parsed)
}

/// Scheme, host and port of a URL: what logs and `check` may show of it.
fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url.trim()) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "[[receiver]]\nname = \"ci\"\nurl = \"http://127.0.0.1:9/hook?token=T0P\"\n";

    fn key_of(text: &str) -> String {
        match RelayConfig::parse(text).and_then(|c| c.receivers().map(|_| c)) {
            Err(ConfigError::Invalid { key, message }) => {
                assert!(
                    !message.contains("T0P"),
                    "the URL's token leaked: {message}"
                );
                key
            }
            // A missing or unreadable secret file (`Secret::read_file`).
            Err(ConfigError::Secret { key, path, source }) => {
                let message = format!("{} {source}", path.display());
                assert!(
                    !message.contains("T0P"),
                    "the URL's token leaked: {message}"
                );
                key
            }
            Err(e) => format!("other: {e}"),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn defaults_apply_and_the_url_is_never_shown() {
        let c = RelayConfig::parse(ONE).unwrap();
        let r = &c.receivers().unwrap()[0];
        assert_eq!(r.timeout, Duration::from_secs(10));
        assert_eq!(r.give_up_after, Duration::from_secs(86400));
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.start, Start::New);
        assert_eq!(r.consumer_name(), "relay-ci");
        assert_eq!(r.shown, "http://127.0.0.1:9");
        assert!(!format!("{r:?}").contains("T0P"));
        assert!(r.wants("push", "acme/x"));
        assert_eq!(c.nats.stream, "GITEA_EVENTS");
    }

    #[test]
    fn the_example_config_is_valid() {
        let c = RelayConfig::parse(include_str!("../../relay.example.toml")).unwrap();
        assert_eq!(c.receivers[0].name, "ci");
        assert_eq!(c.receivers[0].events, ["push", "pull_request", "create"]);
    }

    #[test]
    fn filters_by_event_and_repository_glob() {
        let c = RelayConfig::parse(&format!(
            "{ONE}events = [\"push\", \"pull_request\"]\nrepos = [\"acme/*\", \"alice/dot.files\"]\n"
        ))
        .unwrap();
        let r = &c.receivers().unwrap()[0];
        assert!(r.wants("push", "acme/web"));
        assert!(r.wants("pull_request", "alice/dot.files"));
        assert!(!r.wants("issues", "acme/web"));
        assert!(!r.wants("push", "alice/dotxfiles"));
        assert!(!r.wants("push", "bob/web"));
    }

    #[test]
    fn config_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let bad_url = dir.path().join("bad-url");
        std::fs::write(&bad_url, "ftp://x/T0P\n").unwrap();
        for (text, want) in [
            ("", "receiver".to_string()),
            (
                "[[receiver]]\nname = \"ci\"\nurl = \"not a url T0P\"\n",
                "receiver[0].url".into(),
            ),
            (
                "[[receiver]]\nname = \"ci\"\nurl = \"ftp://h/T0P\"\n",
                "receiver[0].url".into(),
            ),
            ("[[receiver]]\nname = \"ci\"\n", "receiver[0].url".into()),
            (
                &format!("{ONE}events = [\"pushes\"]\n"),
                "receiver[0].events".into(),
            ),
            (
                &format!("{ONE}repos = [\"acme\"]\n"),
                "receiver[0].repos".into(),
            ),
            (
                &format!("{ONE}repos = [\"acme/[ab]\"]\n"),
                "receiver[0].repos".into(),
            ),
            (&format!("{ONE}{ONE}"), "receiver[1].name".into()),
            (
                "[[receiver]]\nname = \"c i\"\nurl = \"http://h/\"\n",
                "receiver[0].name".into(),
            ),
            (
                &format!("{ONE}secret_file = {:?}\n", missing.display().to_string()),
                "receiver[0].secret_file".into(),
            ),
            (
                &format!(
                    "{ONE}authorization_file = {:?}\n",
                    empty.display().to_string()
                ),
                "receiver[0].authorization_file".into(),
            ),
            (
                &format!(
                    "[[receiver]]\nname = \"ci\"\nurl_file = {:?}\n",
                    bad_url.display().to_string()
                ),
                "receiver[0].url_file".into(),
            ),
            (
                &format!("{ONE}timeout = \"0s\"\n"),
                "receiver[0].timeout".into(),
            ),
            (
                &format!("{ONE}max_attempts = 0\n"),
                "receiver[0].max_attempts".into(),
            ),
            (
                &format!("[nats]\nstream = \"a.b\"\n{ONE}"),
                "nats.stream".into(),
            ),
        ] {
            assert_eq!(key_of(text), want, "{text}");
        }
        let err = RelayConfig::parse(&format!("{ONE}secret = \"x\"\n")).unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
    }
}
