//! One function per happening (Vector's internal events): each writes the happening's log
//! line, so call sites say what happened and nothing more. Tokens never reach this module:
//! URLs carry none, and errors are built without them.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate};

use crate::config::{LogConfig, LogFormat, StartAt};
use crate::gitea::GiteaError;
use crate::source::SourceSpec;

/// Sets up `tracing`: `RUST_LOG` wins, then `[log] level`, then `info`. Logs go to stderr.
pub fn init(format: LogFormat, cfg: Option<&LogConfig>) {
    use tracing_subscriber::EnvFilter;
    let default = cfg
        .and_then(|c| c.level.clone())
        .unwrap_or_else(|| "info".into());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&default))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

pub fn gitea_retry(url: &str, err: &GiteaError, wait: Duration) {
    tracing::warn!(
        url,
        reason = err.reason(),
        wait_ms = wait.as_millis() as u64,
        "Gitea request failed, retrying: {err}"
    );
}

pub fn gitea_response(_status: u16) {}

pub fn rate_limit_wait() {
    tracing::trace!("waiting for the Gitea rate limit");
}

pub fn row_skipped(spec: &SourceSpec, url: &str, reason: &str) {
    tracing::warn!(source = %spec, url, "skipping a feed row that does not parse: {reason}");
}

pub fn event_skipped(spec: &SourceSpec, reason: &str) {
    tracing::error!(source = %spec, "skipping an action whose event cannot be built: {reason}");
}

pub fn walk_restarted(spec: &SourceSpec, before: u64, now: u64) {
    tracing::debug!(source = %spec, before, now, "feed total changed during a walk; reading it again");
}

pub fn walk_incomplete(spec: &SourceSpec, day: NaiveDate, read: usize, total: u64) {
    tracing::error!(source = %spec, %day, read, total, "could not read every row of the day (the feed kept moving); publishing what was read");
}

pub fn cursor_created(spec: &SourceSpec, start: &StartAt, position: i64) {
    tracing::info!(source = %spec, %start, position, "no stored cursor; starting at {start}");
}

pub fn catch_up_started(spec: &SourceSpec, from: NaiveDate, to: NaiveDate) {
    tracing::info!(source = %spec, %from, %to, "far behind: catching up day by day");
}

pub fn gap_detected(spec: &SourceSpec, from: i64, to: i64) {
    let fmt = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default()
    };
    tracing::error!(
        source = %spec, from = %fmt(from), to = %fmt(to),
        "history lost: Gitea no longer has the actions between the cursor and its oldest row \
         (delete_old_actions cron?); continuing from the oldest row"
    );
}

pub fn batch_published(
    spec: &SourceSpec,
    stored: usize,
    duplicates: usize,
    newest: &DateTime<FixedOffset>,
) {
    tracing::info!(source = %spec, count = stored, duplicates, newest = %newest.to_rfc3339(), "published");
}

pub fn poll_completed(spec: &SourceSpec, read: usize, published: usize, took: Duration) {
    tracing::debug!(source = %spec, read, published, took_ms = took.as_millis() as u64, "poll done");
}

pub fn poll_failed(
    spec: &SourceSpec,
    reason: &str,
    err: &dyn std::fmt::Display,
    retry_in: Duration,
) {
    tracing::warn!(source = %spec, reason, retry_in_s = retry_in.as_secs(), "poll failed: {err}");
}

pub fn source_refused(spec: &SourceSpec, err: &dyn std::fmt::Display, retry_in: Duration) {
    tracing::error!(source = %spec, retry_in_s = retry_in.as_secs(), "source refused by Gitea (token or name?); it waits, the others go on: {err}");
}

pub fn nats_waiting(spec: &SourceSpec) {
    tracing::debug!(source = %spec, "NATS is not connected; not polling Gitea until it is");
}

pub fn nats_event(event: &async_nats::Event) {
    match event {
        async_nats::Event::Connected => tracing::info!("NATS connected"),
        async_nats::Event::Disconnected => tracing::warn!("NATS disconnected; reconnecting"),
        other => tracing::info!("NATS: {other}"),
    }
}
