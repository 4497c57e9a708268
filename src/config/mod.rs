//! The configuration file: typed, strict, and turned into runtime settings at start.
//!
//! Every table uses `deny_unknown_fields`, so a typo is an error that names the key instead
//! of a silent fall-back to a default. [`load_toml`] (behind [`Config::load`] and the relay's
//! `RelayConfig::load`) parses the TOML, then [`Validate`] checks what serde cannot (URLs,
//! exactly one of `org`/`repo`/`user` per source, positive rates); each section checks its
//! own keys. Secret files (the Gitea token, NATS credentials, the relay's receiver files) are
//! read by [`Secret::read_file`] and held in [`Secret`], whose `Debug` and `Display` never
//! show the value. `docs/configuration.md` is generated from the fields' `///` comments.
//!
//! One file per section: `gitea`, `nats`, `poll` (and [`StartAt`]), `source` (`[[source]]`
//! and the effective [`Source`]), `ha`, `control`, `http`, `log`; `secret` and `values`
//! (durations, byte sizes, names, URLs without credentials) serve them all.

mod control;
mod gitea;
mod ha;
mod http;
mod log;
mod nats;
mod poll;
mod secret;
mod source;
mod values;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::source::SourceSpec;

pub use control::ControlConfig;
pub use gitea::GiteaConfig;
pub use ha::{HaConfig, LEASE_TTL_BOUNDS, host_name};
pub use http::HttpConfig;
pub use log::{LogConfig, LogFormat};
pub use nats::{MAX_REPLICAS, MIN_MAX_BYTES, NatsConfig};
pub use poll::{MIN_LOOKBACK, PollConfig, StartAt};
pub use secret::{Secret, secret_path};
pub use source::{RepoKind, Source, SourceConfig};
pub(crate) use values::check_name;
pub(crate) use values::duration;
use values::{byte_size, opt_duration};
pub use values::{parse_byte_size, without_userinfo};

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
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The error of a value serde accepted but [`Validate`] refuses: `key` names it as written
/// in the file (`nats.stream`, `source[2].kinds`, `receiver[0].url`).
pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// What the types alone cannot check in a config file that [`load_toml`] reads (URLs,
/// names, bounds, settings that go together). Each error names the key at fault.
pub trait Validate {
    /// Checks the whole file; the first fault found is the error.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Reads, parses and validates the TOML file at `path` (the sourcer's config and the
/// relay's): an unreadable file, a syntax error or an unknown key (every table uses
/// `deny_unknown_fields`) names the file; a value [`Validate`] refuses names its key.
pub fn load_toml<T: DeserializeOwned + Validate>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(&text).map_err(|e| match e {
        ConfigError::Parse { message, .. } => ConfigError::Parse {
            path: path.to_owned(),
            message,
        },
        other => other,
    })
}

/// Parses and validates TOML text, as [`load_toml`] (the file is named `<text>`).
pub fn parse_toml<T: DeserializeOwned + Validate>(text: &str) -> Result<T, ConfigError> {
    let config: T = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: PathBuf::from("<text>"),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    config.validate()?;
    Ok(config)
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

impl Validate for Config {
    /// Checks what the types alone cannot.
    fn validate(&self) -> Result<(), ConfigError> {
        self.gitea.validate()?;
        self.nats.validate()?;
        self.ha.validate(&self.nats)?;
        self.control.validate(&self.nats)?;
        self.poll.validate()?;
        source::validate_sources(&self.sources)
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        load_toml(path)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        parse_toml(text)
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

#[cfg(test)]
mod tests;
