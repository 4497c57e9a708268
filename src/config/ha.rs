//! `[ha]`: several instances sharing the sources through leases.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, NatsConfig, check_name, duration, invalid};

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
