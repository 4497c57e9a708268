//! `[poll]`: defaults for every source, and where a source without a cursor begins.

use std::fmt;
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

use super::{ConfigError, duration, invalid};

/// The shortest `poll.lookback` accepted (below a minute is accepted with a warning).
pub const MIN_LOOKBACK: Duration = Duration::from_secs(1);

/// `[poll]`: defaults for every source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    /// Time between two polls of one source; a source may override it.
    #[serde(default = "default_interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// Where a source without a cursor begins: `now` (the rows after the newest one at start;
    /// that row, its second and everything older are `backfill`'s), `beginning` or
    /// `YYYY-MM-DD`; a source may override it.
    #[serde(default)]
    pub start: StartAt,
    /// Trailing window re-read on every poll, to catch rows that become visible late
    /// and rows skipped when offset pages shift (see `store::cursor`). Below 1s is refused,
    /// below 1m warned about at start.
    #[serde(default = "default_lookback", deserialize_with = "duration")]
    pub lookback: Duration,
    /// Random extra delay before each poll, as a fraction of the interval (0 to 0.5), so that
    /// sources do not poll in lock-step.
    #[serde(default = "default_jitter")]
    pub jitter: f64,
    /// Pages a live poll reads to find its cursor's position before it switches to a
    /// day-by-day catch-up walk (the trailing window below the position is read whatever its
    /// depth).
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
    /// source may override it. Costs requests: see docs/events.md, the table of event types.
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
    crate::store::cursor::MAX_SEEN
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

impl PollConfig {
    /// Checks the bounds of the intervals, windows and jitter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval < Duration::from_millis(100) {
            return Err(invalid("poll.interval", "must be at least 100ms"));
        }
        if self.lookback < MIN_LOOKBACK {
            return Err(invalid(
                "poll.lookback",
                format!(
                    "must be at least {}: every poll re-reads this trailing window to catch rows that become visible late; without it they are lost",
                    humantime::format_duration(MIN_LOOKBACK)
                ),
            ));
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return Err(invalid("poll.jitter", "must be between 0 and 0.5"));
        }
        if self.live_pages == 0 {
            return Err(invalid("poll.live_pages", "must be at least 1"));
        }
        if !(10..=crate::store::cursor::MAX_SEEN).contains(&self.max_window) {
            return Err(invalid(
                "poll.max_window",
                format!(
                    "must be between 10 and {} (more would not fit a cursor in 1 MiB)",
                    crate::store::cursor::MAX_SEEN
                ),
            ));
        }
        Ok(())
    }
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
