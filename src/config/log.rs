//! `[log]`: logging defaults.

use serde::Deserialize;

/// `[log]`: logging defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Level filter in `RUST_LOG` syntax (e.g. `info`, `gitea_nats_sourcer=debug`);
    /// `RUST_LOG` wins when set. Default: `info`.
    pub level: Option<String>,
    /// `text` (default) or `json`; `--log-format` wins when given.
    pub format: Option<LogFormat>,
    /// Name private repositories in logs, metrics labels, `sources.list` and dead letters.
    /// Off (the default): one known to be private is shown as `private-` and 16 hex digits
    /// of the SHA-256 of its lower-case `owner/name` (see `names`; `printf %s acme/secret |
    /// sha256sum` finds it).
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
