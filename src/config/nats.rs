//! `[nats]`: the server, its credentials, and the stream and bucket the sourcer uses.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Secret, byte_size, check_name, duration, invalid};

/// `[nats]`: the server, and where events and cursors live.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL; a comma-separated list is allowed, each a NATS URL (`nats://`, `tls://`,
    /// `ws://`, `wss://`, or `HOST:PORT`), checked at start.
    #[serde(default = "default_nats_url")]
    pub url: String,
    /// JetStream stream that holds the events, created by `run` if missing (subjects
    /// `{subject_prefix}.>`, file storage, the bounds below); an existing stream is used as
    /// it is.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// First token of every event subject; the stream listens on `{subject_prefix}.>`.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// JetStream stream of the events of repositories not readable anonymously (private,
    /// internal, or of a limited or private owner; unknown counts as private), created if
    /// missing with the settings of `stream`; must differ from `stream`.
    #[serde(default = "default_private_stream")]
    pub private_stream: String,
    /// First token of those events' subjects (the layout below it as `subject_prefix`'s);
    /// the private stream listens on `{private_subject_prefix}.>`. Neither prefix may be the
    /// other or below it.
    #[serde(default = "default_private_prefix")]
    pub private_subject_prefix: String,
    /// JetStream key-value bucket that holds one cursor per source (created by `run` if
    /// missing).
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
    /// Most bytes (per replica) the stream keeps when the sourcer creates it (the oldest go
    /// first): an integer or a string like `"512MiB"`, `"10GiB"`, `"1TB"`; at least 64 MiB
    /// ([`MIN_MAX_BYTES`]).
    #[serde(default = "default_max_bytes", deserialize_with = "byte_size")]
    pub max_bytes: u64,
    /// NATS credentials file (JWT and nkey seed). This and the other NATS files: a relative
    /// path is looked up in `$CREDENTIALS_DIRECTORY`, as `gitea.token_file`.
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

    /// Reads every NATS secret file once (see [`super::Config::check_secrets`]).
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        for (key, path) in [
            ("nats.nkey_file", &self.nkey_file),
            ("nats.token_file", &self.token_file),
            ("nats.password_file", &self.password_file),
            ("nats.creds_file", &self.creds_file),
        ] {
            if let Some(path) = path {
                Secret::read_file(key, path)?;
            }
        }
        Ok(())
    }
}
