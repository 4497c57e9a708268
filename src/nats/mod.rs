//! The NATS side: connecting (auth and TLS from `[nats]`), making sure the streams and the
//! cursor bucket exist with sensible settings (an existing stream whose subjects do not take
//! our events is reported, never changed), and publishing to them ([`publish`]).

pub mod publish;

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::config::{NatsConfig, Secret, secret_path};
use crate::telemetry::{self, Telemetry};

/// Errors of the NATS side; each names the server, stream or bucket.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("cannot read NATS credentials: {0}")]
    Credentials(String),
    #[error("JetStream stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("JetStream key-value bucket {bucket}: {message}")]
    Bucket { bucket: String, message: String },
    #[error(
        "stream {stream} exists with subjects {subjects:?}, which do not take {wanted:?}; \
         fix nats.stream or nats.subject_prefix (nats.private_stream or \
         nats.private_subject_prefix), or add the subject to the stream yourself"
    )]
    StreamConflict {
        stream: String,
        subjects: Vec<String>,
        wanted: String,
    },
    #[error(
        "nats-server {version} at {url} is not supported: the oldest supported is \
         {MIN_SERVER_MAJOR}.{MIN_SERVER_MINOR}; upgrade the server"
    )]
    UnsupportedServer { url: String, version: String },
}

impl NatsError {
    /// What retrying cannot fix. A stream or bucket that cannot be read or created now (a
    /// server starting, a cluster electing its JetStream leader, too few servers up for the
    /// replicas) may be tomorrow; a stream that takes other subjects, a server too old or
    /// credentials that cannot be read need the operator.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            NatsError::StreamConflict { .. }
                | NatsError::UnsupportedServer { .. }
                | NatsError::Credentials(_)
        )
    }
}

/// The oldest nats-server supported: 2.10 (stream and bucket settings, and what the tests
/// run in CI besides the newest).
pub const MIN_SERVER_MAJOR: u64 = 2;
pub const MIN_SERVER_MINOR: u64 = 10;

/// The major and minor number of a server version string (`2.15.1`, `2.11.0-RC.2`,
/// `v2.10.26`); `None` when it does not start with two numbers.
pub fn server_major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version
        .trim()
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().ok());
    Some((parts.next().flatten()?, parts.next().flatten()?))
}

/// Whether a server version string (`2.15.1`, `2.11.0-RC.2`, `v2.10.26`) is supported;
/// an unreadable one is not.
pub fn server_version_supported(version: &str) -> bool {
    server_major_minor(version).is_some_and(|v| v >= (MIN_SERVER_MAJOR, MIN_SERVER_MINOR))
}

/// A private nats-server for unit tests (its store in a temporary folder) and a client of
/// it; the server stops when the first two are dropped.
#[cfg(test)]
pub(crate) async fn test_server() -> (
    nats_harness::LocalNats,
    tempfile::TempDir,
    async_nats::Client,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = nats_harness::LocalNats::start(&dir.path().join("store"))
        .await
        .unwrap_or_else(|e| panic!("cannot start a test nats-server: {e}"));
    let client = async_nats::connect(server.url()).await.expect("connect");
    (server, dir, client)
}

/// Builds the connect options from `[nats]`, reading secret files now; the connection's
/// events are emitted into `telemetry`.
pub async fn connect_options(
    cfg: &NatsConfig,
    telemetry: &Telemetry,
) -> Result<async_nats::ConnectOptions, NatsError> {
    let events = telemetry.clone();
    let mut opts = async_nats::ConnectOptions::new()
        .name(concat!("gitea-nats-sourcer/", env!("CARGO_PKG_VERSION")))
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let events = events.clone();
            async move { events.emit(telemetry::NatsEvent { event: &event }) }
        });
    // Every file below may be a relative path: a credential of the unit
    // (`$CREDENTIALS_DIRECTORY`), as the secret files read with `Secret::read_file`.
    if let Some(path) = &cfg.creds_file {
        let path = &secret_path(path);
        opts = opts.credentials_file(path).await.map_err(|e| {
            NatsError::Credentials(format!("nats.creds_file {}: {e}", path.display()))
        })?;
    }
    if let Some(path) = &cfg.nkey_file {
        let seed = Secret::read_file("nats.nkey_file", path)
            .map_err(|e| NatsError::Credentials(e.to_string()))?;
        opts = opts.nkey(seed.expose().to_string());
    }
    if let Some(path) = &cfg.token_file {
        let token = Secret::read_file("nats.token_file", path)
            .map_err(|e| NatsError::Credentials(e.to_string()))?;
        opts = opts.token(token.expose().to_string());
    }
    if let (Some(user), Some(path)) = (&cfg.user, &cfg.password_file) {
        let pass = Secret::read_file("nats.password_file", path)
            .map_err(|e| NatsError::Credentials(e.to_string()))?;
        opts = opts.user_and_password(user.clone(), pass.expose().to_string());
    }
    if let Some(ca) = &cfg.tls_ca_file {
        opts = opts
            .add_root_certificates(secret_path(ca))
            .require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&cfg.tls_cert_file, &cfg.tls_key_file) {
        opts = opts
            .add_client_certificate(secret_path(cert), secret_path(key))
            .require_tls(true);
    }
    Ok(opts)
}

/// Connects for `run`: the client's own `retry_on_initial_connect` keeps trying (with its
/// backoff, each failure logged through the event callback) while this waits for the
/// connection, or for `shutdown` (`None`); then refuses a server older than 2.10.
pub async fn connect_retrying(
    cfg: &NatsConfig,
    telemetry: &Telemetry,
    shutdown: &crate::shutdown::Shutdown,
) -> Result<Option<async_nats::Client>, NatsError> {
    let opts = connect_options(cfg, telemetry)
        .await?
        .retry_on_initial_connect();
    let url = crate::config::without_userinfo(&cfg.url);
    let servers = server_list(&cfg.url).map_err(|message| NatsError::Connect {
        url: url.clone(),
        message,
    })?;
    let client = opts
        .connect(servers)
        .await
        .map_err(|e| NatsError::Connect {
            url: url.clone(),
            message: e.to_string(),
        })?;
    // The client reports its state, not a future of the first connection: look again
    // every 100 ms, racing shutdown.
    while client.connection_state() != async_nats::connection::State::Connected {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.wait() => return Ok(None),
        }
    }
    let version = client.server_info().version;
    if !server_version_supported(&version) {
        return Err(NatsError::UnsupportedServer { url, version });
    }
    Ok(Some(client))
}

/// Connects once; refuses a server older than 2.10.
pub async fn connect(
    cfg: &NatsConfig,
    telemetry: &Telemetry,
) -> Result<async_nats::Client, NatsError> {
    let opts = connect_options(cfg, telemetry).await?;
    let url = crate::config::without_userinfo(&cfg.url);
    let servers = server_list(&cfg.url).map_err(|message| NatsError::Connect {
        url: url.clone(),
        message,
    })?;
    let client = opts
        .connect(servers)
        .await
        .map_err(|e| NatsError::Connect {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let version = client.server_info().version;
    if !server_version_supported(&version) {
        return Err(NatsError::UnsupportedServer { url, version });
    }
    Ok(client)
}

/// The servers of `nats.url`, a comma-separated list (async-nats parses one URL per string).
pub fn server_list(url: &str) -> Result<Vec<async_nats::ServerAddr>, String> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>().map_err(|e| {
                let shown = crate::config::without_userinfo(u);
                format!("{shown:?} is not a NATS server URL: {e}")
            })
        })
        .collect()
}

/// A JetStream context; the publish pipeline is bounded by the publisher's batch size.
pub fn jetstream(client: async_nats::Client) -> jetstream::Context {
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(5));
    js
}

/// One of the events' streams: its name and the prefix of the subjects it takes.
#[derive(Debug, Clone, Copy)]
pub struct EventStream<'a> {
    pub visibility: crate::event::Visibility,
    pub name: &'a str,
    pub prefix: &'a str,
}

/// The events' streams, public first: `nats.stream` (`nats.subject_prefix`) and
/// `nats.private_stream` (`nats.private_subject_prefix`).
pub fn event_streams(cfg: &NatsConfig) -> [EventStream<'_>; 2] {
    use crate::event::Visibility;
    [
        EventStream {
            visibility: Visibility::Public,
            name: &cfg.stream,
            prefix: &cfg.subject_prefix,
        },
        EventStream {
            visibility: Visibility::Private,
            name: &cfg.private_stream,
            prefix: &cfg.private_subject_prefix,
        },
    ]
}

/// Creates both events' streams if missing ([`event_streams`]); checks that an existing one
/// takes its `{prefix}.>`. Returns the public stream's info.
pub async fn ensure_stream(
    js: &jetstream::Context,
    cfg: &NatsConfig,
) -> Result<stream::Info, NatsError> {
    let [public, private] = event_streams(cfg);
    ensure_one(js, cfg, &private).await?;
    ensure_one(js, cfg, &public).await
}

async fn ensure_one(
    js: &jetstream::Context,
    cfg: &NatsConfig,
    which: &EventStream<'_>,
) -> Result<stream::Info, NatsError> {
    let wanted = format!("{}.>", which.prefix);
    let err = |message: String| NatsError::Stream {
        stream: which.name.to_string(),
        message,
    };
    match js.get_stream(which.name).await {
        Ok(mut s) => {
            let info = s.info().await.map_err(|e| err(e.to_string()))?.clone();
            takes_our_subjects(&info, which)?;
            Ok(info)
        }
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref je)
                if je.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            let description = match which.visibility {
                crate::event::Visibility::Public => {
                    "Gitea activity of public repositories, published by gitea-nats-sourcer"
                }
                crate::event::Visibility::Private => {
                    "Gitea activity of private repositories, published by gitea-nats-sourcer"
                }
            };
            let mut s = js
                .create_stream(stream::Config {
                    name: which.name.to_string(),
                    subjects: vec![wanted],
                    storage: stream::StorageType::File,
                    duplicate_window: cfg.duplicate_window,
                    num_replicas: cfg.replicas,
                    max_age: cfg.max_age,
                    // The config refuses sizes below 64 MiB; above i64::MAX means no limit.
                    max_bytes: i64::try_from(cfg.max_bytes).unwrap_or(-1),
                    discard: stream::DiscardPolicy::Old,
                    description: Some(description.into()),
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    let hint = if e.to_string().contains("insufficient storage") {
                        format!(
                            "; JetStream reserves nats.max_bytes ({} bytes) on each of the \
                             nats.replicas ({}) servers, for each of the two streams: lower it \
                             or raise their max_file_store",
                            cfg.max_bytes, cfg.replicas
                        )
                    } else {
                        String::new()
                    };
                    err(format!("cannot create it: {e}{hint}"))
                })?;
            Ok(s.info().await.map_err(|e| err(e.to_string()))?.clone())
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// Checks that an existing stream takes `{prefix}.>` of `which`.
pub fn takes_our_subjects(info: &stream::Info, which: &EventStream<'_>) -> Result<(), NatsError> {
    let wanted = format!("{}.>", which.prefix);
    let covers = info
        .config
        .subjects
        .iter()
        .any(|s| s == &wanted || s == ">" || subject_covers(s, &wanted));
    if covers {
        Ok(())
    } else {
        Err(NatsError::StreamConflict {
            stream: which.name.to_string(),
            subjects: info.config.subjects.clone(),
            wanted,
        })
    }
}

/// Whether subscription subject `pattern` matches everything `wanted` (`X.>`) matches.
fn subject_covers(pattern: &str, wanted: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let w: Vec<&str> = wanted.split('.').collect();
    for (i, pt) in p.iter().enumerate() {
        match (*pt, w.get(i)) {
            (">", Some(_)) => return true,
            ("*", Some(wt)) if *wt != ">" => continue,
            (a, Some(b)) if a == *b => continue,
            _ => return false,
        }
    }
    false
}

/// Opens the cursor bucket, creating it if missing.
pub async fn ensure_bucket(
    js: &jetstream::Context,
    cfg: &NatsConfig,
) -> Result<kv::Store, NatsError> {
    let err = |message: String| NatsError::Bucket {
        bucket: cfg.cursor_bucket.clone(),
        message,
    };
    match js.get_key_value(&cfg.cursor_bucket).await {
        Ok(store) => Ok(store),
        Err(e) if e.kind() == jetstream::context::KeyValueErrorKind::GetBucket => js
            .create_key_value(kv::Config {
                bucket: cfg.cursor_bucket.clone(),
                description: "gitea-nats-sourcer cursors, one key per source".into(),
                history: 5,
                storage: stream::StorageType::File,
                num_replicas: cfg.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| err(format!("cannot create it: {e}"))),
        Err(e) => Err(err(e.to_string())),
    }
}

/// What `check` reads about the stream or the bucket, without creating or changing anything.
pub enum Found {
    /// It exists: its settings, state and (clustered) placement.
    Exists(Box<stream::Info>),
    /// It does not exist: `run` will create it.
    Missing,
}

/// An events' stream's info if it exists (read-only; `check` uses it).
pub async fn inspect_stream(
    js: &jetstream::Context,
    which: &EventStream<'_>,
) -> Result<Found, NatsError> {
    inspect(js, which.name)
        .await
        .map_err(|message| NatsError::Stream {
            stream: which.name.to_string(),
            message,
        })
}

/// The info of the stream behind the cursor bucket (`KV_{bucket}`) if it exists (read-only).
pub async fn inspect_bucket(js: &jetstream::Context, cfg: &NatsConfig) -> Result<Found, NatsError> {
    inspect(js, &format!("KV_{}", cfg.cursor_bucket))
        .await
        .map_err(|message| NatsError::Bucket {
            bucket: cfg.cursor_bucket.clone(),
            message,
        })
}

async fn inspect(js: &jetstream::Context, name: &str) -> Result<Found, String> {
    match js.get_stream(name).await {
        Ok(mut s) => Ok(Found::Exists(Box::new(
            s.info().await.map_err(|e| e.to_string())?.clone(),
        ))),
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref je)
                if je.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            Ok(Found::Missing)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Whether a stream keeps everything forever (no age, size or count limit).
pub fn unbounded(config: &stream::Config) -> bool {
    config.max_age.is_zero() && config.max_bytes < 0 && config.max_messages < 0
}

/// One line on where a stream lives: `cluster C, leader L, replicas A (current), B (current)`,
/// or `single server` when not clustered.
pub fn placement(info: &stream::Info) -> String {
    // A server outside a cluster reports itself as leader, with no cluster name or peers.
    let Some(c) = info
        .cluster
        .as_ref()
        .filter(|c| c.name.is_some() || !c.replicas.is_empty())
    else {
        return "single server".to_string();
    };
    let mut out = format!(
        "R{}, cluster {}, leader {}",
        info.config.num_replicas,
        c.name.as_deref().unwrap_or("?"),
        c.leader.as_deref().unwrap_or("none (election under way?)")
    );
    if !c.replicas.is_empty() {
        let peers: Vec<String> = c
            .replicas
            .iter()
            .map(|p| {
                let state = if p.offline {
                    "offline".to_string()
                } else if p.current {
                    "current".to_string()
                } else {
                    format!("behind by {} operations", p.lag.unwrap_or(0))
                };
                format!("{} ({state})", p.name)
            })
            .collect();
        out.push_str(&format!(", replicas {}", peers.join(", ")));
    }
    out
}

/// The first day whose backfill ledger (`backfill/YYYY-MM-DD`) may still be needed, given the
/// stream's `max_age`: a ledger of an earlier day only guards events the stream has already
/// dropped, so it can be pruned ([`crate::store::CursorStore::prune_backfill_ledgers`]).
/// Two days of margin cover the server's time zone (days are Gitea's, not UTC) and the day
/// being partly inside the window. `None` for a stream without `max_age`: keep every ledger.
pub fn ledgers_needed_from(
    info: &stream::Info,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::NaiveDate> {
    if info.config.max_age.is_zero() {
        return None;
    }
    let age = chrono::Duration::from_std(info.config.max_age).ok()?;
    let oldest_kept = now.checked_sub_signed(age)?;
    oldest_kept
        .date_naive()
        .checked_sub_days(chrono::Days::new(2))
}

#[cfg(test)]
mod tests {
    use super::{server_version_supported, subject_covers};

    #[test]
    fn a_comma_separated_url_is_a_server_list() {
        let list = super::server_list("nats://a:4222, nats://b:4223,nats://c:4224").unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[1].port(), 4223);
        assert!(super::server_list("nats://a:4222,nats://b:x").is_err());
    }

    #[test]
    fn server_versions() {
        for ok in [
            "2.10.0",
            "2.10.26",
            "2.11.0-RC.2",
            "v2.15.1",
            "2.12.0-dev",
            "3.0.0",
        ] {
            assert!(server_version_supported(ok), "{ok}");
        }
        for old in ["2.9.10", "2.2.0", "1.4.1", "", "dev"] {
            assert!(!server_version_supported(old), "{old}");
        }
    }

    #[test]
    fn wildcard_coverage() {
        assert!(subject_covers("gitea.>", "gitea.>"));
        assert!(subject_covers("*.>", "gitea.>"));
        assert!(!subject_covers("gitea.*", "gitea.>"));
        assert!(!subject_covers("other.>", "gitea.>"));
    }
}
