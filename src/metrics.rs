//! Prometheus metrics, in one `prometheus_client` registry. Only `telemetry` (one function
//! per happening) and the scrape handler touch them. Labels come from a small fixed set:
//! source specs, op types, status classes, reasons.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublishedLabels {
    pub source: String,
    pub op_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceReasonLabels {
    pub source: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabel {
    pub receiver: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverClassLabels {
    pub receiver: String,
    pub class: String,
}

fn poll_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

/// Every metric of one run (`telemetry::Telemetry` holds it; nothing is process-wide).
pub struct Metrics {
    pub registry: Registry,
    pub events_published: Family<PublishedLabels, Counter>,
    pub events_duplicate: Family<SourceLabel, Counter>,
    pub gitea_requests: Family<ClassLabel, Counter>,
    pub gitea_retries: Family<ReasonLabel, Counter>,
    pub rate_limit_waits: Counter,
    pub poll_duration: Family<SourceLabel, Histogram, fn() -> Histogram>,
    pub poll_errors: Family<SourceReasonLabels, Counter>,
    pub source_lag: Family<SourceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub cursor_age: Family<SourceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// The wait before each source's next poll, as the cadence planned it.
    pub poll_wait: Family<SourceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// The Gitea requests a second the polls of every source add up to, as planned.
    pub polls_planned_rps: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub gaps_detected: Family<SourceLabel, Counter>,
    pub walks_unproven: Family<SourceLabel, Counter>,
    pub nats_connected: Gauge,
    /// Start-up attempts to read or create the stream, bucket or cursors that failed.
    pub nats_setup_failures: Counter,
    /// `[ha]`: source leases this instance holds now.
    pub leases_held: Gauge,
    /// `[ha]`: source leases this instance took (a source started here).
    pub leases_acquired: Counter,
    /// `[ha]`: source leases this instance lost (not renewed in time, or taken over).
    pub leases_lost: Counter,
    /// `[ha]`: source leases this instance gave up (rebalance, shutdown).
    pub leases_released: Counter,
    /// `[ha]`: instances alive on the lease bucket, this one included.
    pub ha_instances: Gauge,
    /// Webhook-shaped events not published (their activity event was), by op type.
    pub hooks_skipped: Family<PublishedLabels, Counter>,
    /// Relay: delivery attempts by receiver and status class (2xx, 4xx, 5xx, error).
    pub relay_deliveries: Family<ReceiverClassLabels, Counter>,
    /// Relay: attempts that are retried, by receiver.
    pub relay_retries: Family<ReceiverLabel, Counter>,
    /// Relay: events JetStream handed out again (after a restart, or a late ack), by receiver.
    pub relay_redeliveries: Family<ReceiverLabel, Counter>,
    /// Relay: events that became dead letters, by receiver.
    pub relay_dead_letters: Family<ReceiverLabel, Counter>,
    /// Relay: age of the oldest event not yet delivered (the one in hand), by receiver.
    pub relay_oldest_undelivered: Family<ReceiverLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Relay: events not yet delivered (in hand and waiting), by receiver.
    pub relay_backlog: Family<ReceiverLabel, Gauge>,
    /// Relay: time from an event's first attempt to its 2xx.
    pub relay_delivery_duration: Family<ReceiverLabel, Histogram, fn() -> Histogram>,
    /// Unix seconds of each source's newest published `created` and last cursor write;
    /// the lag and age gauges are computed from them at scrape time.
    times: Mutex<HashMap<String, (i64, i64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (one per run; tests make their own).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gitea_nats_sourcer");
        let m = Metrics {
            events_published: Family::default(),
            events_duplicate: Family::default(),
            gitea_requests: Family::default(),
            gitea_retries: Family::default(),
            rate_limit_waits: Counter::default(),
            poll_duration: Family::new_with_constructor(poll_histogram as fn() -> Histogram),
            poll_errors: Family::default(),
            source_lag: Family::default(),
            cursor_age: Family::default(),
            poll_wait: Family::default(),
            polls_planned_rps: Gauge::default(),
            gaps_detected: Family::default(),
            walks_unproven: Family::default(),
            nats_connected: Gauge::default(),
            nats_setup_failures: Counter::default(),
            hooks_skipped: Family::default(),
            leases_held: Gauge::default(),
            leases_acquired: Counter::default(),
            leases_lost: Counter::default(),
            leases_released: Counter::default(),
            ha_instances: Gauge::default(),
            relay_deliveries: Family::default(),
            relay_retries: Family::default(),
            relay_dead_letters: Family::default(),
            relay_redeliveries: Family::default(),
            relay_oldest_undelivered: Family::default(),
            relay_backlog: Family::default(),
            relay_delivery_duration: Family::new_with_constructor(
                poll_histogram as fn() -> Histogram,
            ),
            times: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "events_published",
            "Events stored by JetStream, by source and op_type",
            m.events_published.clone(),
        );
        registry.register(
            "nats_setup_failures",
            "Start-up attempts to read or create the stream, bucket or cursors that failed (retried)",
            m.nats_setup_failures.clone(),
        );
        registry.register(
            "events_duplicate",
            "Publishes JetStream refused as duplicates (same Nats-Msg-Id)",
            m.events_duplicate.clone(),
        );
        registry.register(
            "gitea_requests",
            "HTTP requests to Gitea by status class (2xx, 4xx, 5xx, error)",
            m.gitea_requests.clone(),
        );
        registry.register(
            "gitea_retries",
            "Gitea requests retried, by reason",
            m.gitea_retries.clone(),
        );
        registry.register(
            "rate_limit_waits",
            "Gitea requests that waited for the shared rate limit",
            m.rate_limit_waits.clone(),
        );
        registry.register(
            "poll_duration_seconds",
            "Duration of one poll of one source",
            m.poll_duration.clone(),
        );
        registry.register(
            "poll_errors",
            "Polls that failed, by source and reason",
            m.poll_errors.clone(),
        );
        registry.register(
            "source_lag_seconds",
            "Now minus the newest published action's created, per source",
            m.source_lag.clone(),
        );
        registry.register(
            "poll_wait_seconds",
            "The wait before the source's next poll: its interval, or longer when the budget is short",
            m.poll_wait.clone(),
        );
        registry.register(
            "polls_planned_requests_per_second",
            "Gitea requests a second the polls of every source add up to, as the cadence planned them",
            m.polls_planned_rps.clone(),
        );
        registry.register(
            "cursor_age_seconds",
            "Seconds since the source's cursor was last written",
            m.cursor_age.clone(),
        );
        registry.register(
            "gaps_detected",
            "History found deleted before it was read, per source",
            m.gaps_detected.clone(),
        );
        registry.register(
            "walks_unproven",
            "Feed walks that could not prove every row held (a tie at a page boundary, a moving feed); the cursor waited",
            m.walks_unproven.clone(),
        );
        registry.register(
            "leases_held",
            "Source leases this instance holds ([ha])",
            m.leases_held.clone(),
        );
        registry.register(
            "leases_acquired",
            "Source leases this instance acquired ([ha])",
            m.leases_acquired.clone(),
        );
        registry.register(
            "leases_lost",
            "Source leases this instance lost: not renewed in time or taken over ([ha])",
            m.leases_lost.clone(),
        );
        registry.register(
            "leases_released",
            "Source leases this instance released: rebalance or shutdown ([ha])",
            m.leases_released.clone(),
        );
        registry.register(
            "ha_instances",
            "Instances alive on the lease bucket, this one included ([ha])",
            m.ha_instances.clone(),
        );
        registry.register(
            "nats_connected",
            "1 while connected to NATS",
            m.nats_connected.clone(),
        );
        registry.register(
            "hooks_skipped",
            "Webhook-shaped events left out because an object they need could not be read (the activity event was published), by source and op_type",
            m.hooks_skipped.clone(),
        );
        registry.register(
            "relay_deliveries",
            "Relay: delivery attempts by receiver and status class (2xx, 3xx, 4xx, 5xx, error)",
            m.relay_deliveries.clone(),
        );
        registry.register(
            "relay_retries",
            "Relay: failed attempts that are tried again, by receiver",
            m.relay_retries.clone(),
        );
        registry.register(
            "relay_dead_letters",
            "Relay: events that became dead letters (refused, or retried to the end), by receiver",
            m.relay_dead_letters.clone(),
        );
        registry.register(
            "relay_redeliveries",
            "Relay: events JetStream handed out again (the relay restarted holding one, or an ack came later than ack_wait), by receiver",
            m.relay_redeliveries.clone(),
        );
        registry.register(
            "relay_oldest_undelivered_seconds",
            "Relay: age of the oldest event not yet delivered to the receiver (0 when none)",
            m.relay_oldest_undelivered.clone(),
        );
        registry.register(
            "relay_backlog",
            "Relay: events not yet delivered to the receiver",
            m.relay_backlog.clone(),
        );
        registry.register(
            "relay_delivery_duration_seconds",
            "Relay: from an event's first attempt to its 2xx, retries included",
            m.relay_delivery_duration.clone(),
        );
        Metrics { registry, ..m }
    }

    fn lock_times(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, i64)>> {
        // Plain inserts and reads: a poisoned map is still consistent.
        self.times.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a cursor write (and the newest published `created`, when known).
    pub fn cursor_written(&self, source: &str, newest_created: Option<i64>) {
        let now = chrono::Utc::now().timestamp();
        let mut t = self.lock_times();
        let e = t.entry(source.to_string()).or_insert((0, now));
        if let Some(c) = newest_created {
            e.0 = e.0.max(c);
        }
        e.1 = now;
    }

    /// The text exposition, with the time-derived gauges brought up to date.
    pub fn encode(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        for (source, (newest, written)) in self.lock_times().iter() {
            let l = SourceLabel {
                source: source.clone(),
            };
            if *newest > 0 {
                self.source_lag.get_or_create(&l).set((now - newest) as f64);
            }
            self.cursor_age
                .get_or_create(&l)
                .set((now - written) as f64);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_in_one_process_do_not_share_metrics() {
        let moved = Metrics::new();
        let other = Metrics::new();
        let before = other.encode();
        moved
            .gitea_requests
            .get_or_create(&ClassLabel {
                class: "2xx".into(),
            })
            .inc();
        moved.rate_limit_waits.inc();
        moved.nats_connected.set(1);
        moved.cursor_written("org:acme", Some(1_700_000_000));
        let after = moved.encode();
        assert!(after.contains("gitea_nats_sourcer_gitea_requests_total{class=\"2xx\"} 1"));
        assert!(after.contains("gitea_nats_sourcer_cursor_age_seconds{source=\"org:acme\"}"));
        assert_eq!(
            other.encode(),
            before,
            "the other run's registry did not move"
        );
        assert!(!before.contains("org:acme"));
        assert!(before.contains("gitea_nats_sourcer_nats_connected 0"));
    }
}
