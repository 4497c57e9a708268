//! One function per happening (Vector's internal events): each writes the happening's log
//! line, so call sites say what happened and nothing more. Tokens never reach this module:
//! URLs carry none, and errors are built without them.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate};

use crate::config::StartAt;
use crate::event::Event;
use crate::gitea::GiteaError;
use crate::health::HEALTH;
use crate::metrics::{
    ClassLabel, METRICS, PublishedLabels, ReasonLabel, SourceLabel, SourceReasonLabels,
};
use crate::publish::BatchOutcome;
use crate::source::SourceSpec;
use crate::state::cursor::Cursor;

fn source_label(spec: &SourceSpec) -> SourceLabel {
    SourceLabel {
        source: spec.to_string(),
    }
}

pub fn gitea_retry(url: &str, err: &GiteaError, wait: Duration) {
    HEALTH.progress();
    METRICS
        .gitea_retries
        .get_or_create(&ReasonLabel {
            reason: err.reason().into(),
        })
        .inc();
    tracing::warn!(
        url,
        reason = err.reason(),
        wait_ms = wait.as_millis() as u64,
        "Gitea request failed, retrying: {err}"
    );
}

pub fn gitea_response(status: u16) {
    HEALTH.progress();
    let class = match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    METRICS
        .gitea_requests
        .get_or_create(&ClassLabel {
            class: class.into(),
        })
        .inc();
    HEALTH.set_gitea_ok(status < 500);
}

pub fn gitea_unreachable() {
    METRICS
        .gitea_requests
        .get_or_create(&ClassLabel {
            class: "error".into(),
        })
        .inc();
    HEALTH.set_gitea_ok(false);
}

pub fn gitea_tls_unverified(url: &str) {
    tracing::warn!(
        url,
        "gitea.tls_insecure_skip_verify is on: Gitea's TLS certificate is NOT verified; anyone on the path can read the token"
    );
}

pub fn rate_limit_wait() {
    METRICS.rate_limit_waits.inc();
    tracing::trace!("waiting for the Gitea rate limit");
}

pub fn row_skipped(spec: &SourceSpec, url: &str, reason: &str) {
    tracing::warn!(source = %spec, url, "skipping a feed row that does not parse: {reason}");
}

pub fn event_skipped(spec: &SourceSpec, reason: &str) {
    tracing::error!(source = %spec, "skipping an action whose event cannot be built: {reason}");
}

pub fn walk_restarted(spec: &SourceSpec, pass: u64, unproven: i64) {
    tracing::debug!(source = %spec, pass, unproven, "a row of a second split by a page boundary (or of shifted pages) may be hidden; reading again");
}

pub fn walk_unproven(spec: &SourceSpec, unproven: i64, passes: usize) {
    METRICS
        .walks_unproven
        .get_or_create(&source_label(spec))
        .inc();
    tracing::warn!(source = %spec, unproven, passes, "could not prove every row of the feed held (a same-second tie at a page boundary, or the feed kept moving); the cursor stays at the unproven second and the next poll reads it again");
}

pub fn walk_incomplete(spec: &SourceSpec, day: NaiveDate, read: usize, unproven: i64) {
    METRICS
        .walks_unproven
        .get_or_create(&source_label(spec))
        .inc();
    tracing::warn!(source = %spec, %day, read, unproven, "could not prove every row of the day held (the feed kept moving); publishing what was read, the cursor stays at the unproven second and the next poll reads the day again");
}

pub fn window_shortened(spec: &SourceSpec, from: i64, max: usize) {
    tracing::warn!(source = %spec, from, max, "more published identities in the trailing window than a cursor can store; the window now starts at {from} until the burst has passed (a row turning visible later than that would be missed)");
}

pub fn repo_window_shortened(owner: &str, repo: &str, kind: &str, from: i64) {
    tracing::warn!(repo = %format!("{owner}/{repo}"), kind, from, "more published changes in the trailing window than a cursor can store; the window now starts at {from} until the burst has passed");
}

pub fn dst_span(spec: &SourceSpec, day: NaiveDate, from: i64, to: i64) {
    tracing::info!(source = %spec, %day, from, to, "the server's offset fell (daylight saving time ended): reading the end of the day, which no date= query returns, through plain paging");
}

pub fn cursor_handed_over(from: &SourceSpec, to: &SourceSpec, position: i64) {
    tracing::info!(source = %to, from = %from, position, "no stored cursor; taking the repository over from {from} where its cursor is");
}

pub fn repository_draining(spec: &SourceSpec, to: &SourceSpec) {
    tracing::info!(source = %spec, to = %to, "source removed; polling its repository to the head of its feed once more before {to} takes it over");
}

pub fn repository_handed_over(spec: &SourceSpec, to: &SourceSpec) {
    tracing::info!(source = %spec, to = %to, "repository handed over to {to}");
}

pub fn cursor_created(spec: &SourceSpec, start: &StartAt, position: i64) {
    tracing::info!(source = %spec, %start, position, "no stored cursor; starting at {start}");
}

pub fn catch_up_started(spec: &SourceSpec, from: NaiveDate, to: NaiveDate) {
    tracing::info!(source = %spec, %from, %to, "far behind: catching up day by day");
}

pub fn gap_detected(spec: &SourceSpec, from: i64, to: i64) {
    METRICS
        .gaps_detected
        .get_or_create(&source_label(spec))
        .inc();
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
    events: &[Event],
    outcome: &BatchOutcome,
    newest: &DateTime<FixedOffset>,
) {
    HEALTH.progress();
    count_published(&spec.to_string(), events, outcome);
    if outcome.duplicates > 0 {
        METRICS
            .events_duplicate
            .get_or_create(&source_label(spec))
            .inc_by(outcome.duplicates as u64);
    }
    tracing::info!(source = %spec, count = outcome.stored, duplicates = outcome.duplicates, newest = %newest.to_rfc3339(), "published");
}

pub fn cursor_written(spec: &SourceSpec, cursor: &Cursor) {
    HEALTH.progress();
    let newest = cursor
        .newest
        .as_deref()
        .and_then(|n| DateTime::parse_from_rfc3339(n).ok())
        .map(|d| d.timestamp());
    METRICS.cursor_written(&spec.to_string(), newest);
}

pub fn poll_started(spec: &SourceSpec) {
    HEALTH.poll_started(&spec.to_string());
}

pub fn poll_completed(spec: &SourceSpec, read: usize, published: usize, took: Duration) {
    METRICS
        .poll_duration
        .get_or_create(&source_label(spec))
        .observe(took.as_secs_f64());
    HEALTH.poll_finished(&spec.to_string(), None);
    tracing::debug!(source = %spec, read, published, took_ms = took.as_millis() as u64, "poll done");
}

fn poll_error(spec: &SourceSpec, reason: &str, err: &dyn std::fmt::Display) {
    METRICS
        .poll_errors
        .get_or_create(&SourceReasonLabels {
            source: spec.to_string(),
            reason: reason.into(),
        })
        .inc();
    HEALTH.poll_finished(&spec.to_string(), Some(err.to_string()));
}

pub fn poll_failed(
    spec: &SourceSpec,
    reason: &str,
    err: &dyn std::fmt::Display,
    retry_in: Duration,
) {
    poll_error(spec, reason, err);
    tracing::warn!(source = %spec, reason, retry_in_s = retry_in.as_secs(), "poll failed: {err}");
}

pub fn source_refused(
    spec: &SourceSpec,
    reason: &str,
    err: &dyn std::fmt::Display,
    retry_in: Duration,
) {
    poll_error(spec, reason, err);
    tracing::error!(source = %spec, retry_in_s = retry_in.as_secs(), "source refused by Gitea (token or name?); it waits, the others go on: {err}");
}

pub fn ready(sources: usize) {
    tracing::info!(sources, "running");
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::debug!("sd_notify READY: {e}");
    }
}

pub fn stopping() {
    tracing::info!("shutting down");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

pub fn watchdog_ping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
}

pub fn watchdog_withheld() {
    tracing::error!(
        "a poll is running and made no progress (no Gitea answer, no acknowledged batch) within the watchdog interval; withholding the systemd watchdog ping so the service is restarted"
    );
}

pub fn reloaded(added: usize, removed: usize, changed: usize) {
    tracing::info!(
        added,
        removed,
        changed,
        "config reloaded (SIGHUP): sources updated, cursors kept"
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
}

pub fn reload_failed(err: &dyn std::fmt::Display) {
    tracing::error!("config reload (SIGHUP) failed, keeping the running config: {err}");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
}

pub fn reload_abandoned(tasks: usize) {
    tracing::warn!(
        tasks,
        "config reload (SIGHUP): a stopped source did not reach a safe point in time; abandoning it (its cursor stays at its last acknowledged batch)"
    );
}

pub fn reload_needs_restart(section: &str) {
    tracing::warn!(
        "config reload (SIGHUP): [{section}] changed; it takes effect only after a restart"
    );
}

pub fn repo_event_skipped(owner: &str, repo: &str, kind: &str, reason: &str) {
    tracing::error!(repo = %format!("{owner}/{repo}"), kind, "skipping a change whose event cannot be built: {reason}");
}

/// Counts the events of a batch that JetStream stored (not its duplicates) by op type.
fn count_published(source: &str, events: &[Event], outcome: &BatchOutcome) {
    for (e, dup) in events.iter().zip(&outcome.duplicate) {
        if !dup {
            METRICS
                .events_published
                .get_or_create(&PublishedLabels {
                    source: source.to_string(),
                    op_type: e.op_type.clone(),
                })
                .inc();
        }
    }
}

/// Counts a batch of repository-endpoint events under `source="repo:OWNER/NAME"`.
pub fn repo_batch_published(owner: &str, repo: &str, events: &[Event], outcome: &BatchOutcome) {
    HEALTH.progress();
    count_published(&format!("repo:{owner}/{repo}"), events, outcome);
}

pub fn repo_changes_published(owner: &str, repo: &str, kind: &str, count: usize) {
    tracing::info!(repo = %format!("{owner}/{repo}"), kind, count, "published repository changes");
}

/// One kind of one repository failed (the others go on); `skip_polls` polls skip it now.
pub fn repo_kind_failed(
    owner: &str,
    repo: &str,
    kind: &str,
    err: &GiteaError,
    failures: u32,
    skip_polls: u32,
) {
    let source = format!("repo:{owner}/{repo}");
    METRICS
        .poll_errors
        .get_or_create(&SourceReasonLabels {
            source: source.clone(),
            reason: format!("{kind}_{}", err.reason()),
        })
        .inc();
    let url = match err {
        GiteaError::Connect { url, .. }
        | GiteaError::Timeout { url }
        | GiteaError::Status { url, .. }
        | GiteaError::Decode { url, .. } => url.as_str(),
        GiteaError::Request(_) => "",
    };
    let status = err.status().map(|s| s.to_string()).unwrap_or_default();
    tracing::warn!(
        repo = %format!("{owner}/{repo}"),
        kind,
        url,
        status,
        reason = err.reason(),
        failures,
        skip_polls,
        "repository endpoint failed; this kind of this repository waits {skip_polls} polls, the others go on: {err}"
    );
}

pub fn repo_kind_recovered(owner: &str, repo: &str, kind: &str, failures: u32) {
    tracing::info!(repo = %format!("{owner}/{repo}"), kind, failures, "repository endpoint answers again");
}

pub fn repo_kind_conflict(owner: &str, repo: &str, kind: &str, err: &dyn std::fmt::Display) {
    tracing::warn!(repo = %format!("{owner}/{repo}"), kind, "cursor written elsewhere meanwhile; read again next poll: {err}");
}

pub fn repo_list_failed(org: &str, err: &GiteaError, kept: usize) {
    METRICS
        .poll_errors
        .get_or_create(&SourceReasonLabels {
            source: format!("org:{org}"),
            reason: format!("repos_{}", err.reason()),
        })
        .inc();
    tracing::warn!(
        org,
        reason = err.reason(),
        kept,
        "cannot list the org's repositories; polling the {kept} known ones: {err}"
    );
}

pub fn list_truncated(what: &str, path: &str, pages: usize, items: usize) {
    tracing::warn!(
        of = what,
        path,
        pages,
        items,
        "list longer than the pages read: reading {pages} pages at most; the rest is not read this poll and the list is taken as incomplete"
    );
}

pub fn actions_unsupported(owner: &str, repo: &str) {
    tracing::info!(repo = %format!("{owner}/{repo}"), "this Gitea has no Actions API (404); the actions kind is skipped for this repository");
}

pub fn actions_supported(owner: &str, repo: &str) {
    tracing::info!(repo = %format!("{owner}/{repo}"), "this Gitea answers on its Actions API now; the actions kind polls it for this repository");
}

pub fn repo_changes_before_start(owner: &str, repo: &str, kind: &str, n: usize) {
    tracing::debug!(repo = %format!("{owner}/{repo}"), kind, n, "changes before the source's start not published");
}

pub fn nats_waiting(spec: &SourceSpec) {
    tracing::debug!(source = %spec, "NATS is not connected; not polling Gitea until it is");
}

pub fn nats_connected(connected: bool) {
    METRICS.nats_connected.set(connected as i64);
    HEALTH.set_nats_ok(connected);
}

pub fn nats_event(event: &async_nats::Event) {
    match event {
        async_nats::Event::Connected => {
            nats_connected(true);
            tracing::info!("NATS connected")
        }
        async_nats::Event::Disconnected => {
            nats_connected(false);
            tracing::warn!("NATS disconnected; reconnecting")
        }
        other => tracing::info!("NATS: {other}"),
    }
}
