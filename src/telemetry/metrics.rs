//! Prometheus metrics, in one `prometheus_client` registry. Only `telemetry` (one function
//! per happening) and the scrape handler touch them. Labels come from a small fixed set:
//! source specs, op types, status classes, reasons.
//!
//! Every family is there from the start: unlabelled ones at zero, labelled ones with a
//! zero series per known label value (every status class and retry reason at once, every
//! source at its first poll, every receiver when its loop starts), so `absent()` alerts
//! and ratios work before anything moved. Beside them: `build_info` and the standard
//! `process_*` metrics ([`crate::telemetry::metrics::process`]). The scrape answers OpenMetrics or
//! the 0.0.4 text format, as the scraper's `Accept` header asks ([`Format`]).

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
pub struct BuildLabels {
    pub version: String,
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

pub mod process;

/// Status classes of `gitea_requests_total` (and the relay's deliveries).
pub const CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "error"];

/// The status class label of an HTTP answer (one of [`CLASSES`]): `2xx`, `3xx`, `4xx`,
/// `5xx` (anything else a server answers), or `error` when there was no answer.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(_) => "5xx",
        None => "error",
    }
}

/// Every reason a Gitea request can fail with (`GiteaError::reason`): the label values of
/// `gitea_retries_total`, and with [`POLL_REASONS`] those of `poll_errors_total`.
pub const GITEA_REASONS: [&str; 10] = [
    "connect", "timeout", "http_429", "http_401", "http_403", "http_404", "http_5xx", "http_4xx",
    "bad_json", "request",
];

/// The reasons of a failed poll besides Gitea's (`PollError::reason`).
pub const POLL_REASONS: [&str; 3] = ["publish", "cursor_conflict", "cursor"];

/// The exposition format of a scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 (`application/openmetrics-text`), what Prometheus asks for first.
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (`text/plain`), for scrapers that ask for nothing else.
    Text,
}

impl Format {
    /// The format an `Accept` header prefers: OpenMetrics when it is acceptable at least as
    /// much as `text/plain` (by q-value), else the text format (also without a header).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut open, mut text) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => open = open.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        match open > 0.0 && open >= text {
            true => Format::OpenMetrics,
            false => Format::Text,
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The 0.0.4 text format of an OpenMetrics exposition: no `# EOF` or `# UNIT` lines, and a
/// counter's `# HELP` and `# TYPE` name its samples (`x_total`), as that format wants.
fn to_text_format(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let mut counters = std::collections::HashSet::new();
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            counters.insert(name.to_string());
        }
    }
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{tag}{name}_total {tail}"))
        });
        match renamed {
            Some(r) => out.push_str(&r),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn poll_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

/// A source's cursor position (Unix seconds) and since when it is pinned, if it is.
type Position = (i64, Option<chrono::DateTime<chrono::Utc>>);

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
    /// Now minus each source's cursor position.
    pub position_age: Family<SourceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// How long each source's position has waited below an unproven second (0: it moves).
    pub pinned: Family<SourceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// The wait before each source's next poll, as the cadence planned it.
    pub poll_wait: Family<SourceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// The Gitea requests a second the polls of every source add up to, as planned.
    pub polls_planned_rps: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub gaps_detected: Family<SourceLabel, Counter>,
    pub walks_unproven: Family<SourceLabel, Counter>,
    /// Same-second ties split by a page boundary, read again at another page size.
    pub walks_realigned: Family<SourceLabel, Counter>,
    /// 1 while a source holds its cursor below a second it could not prove whole.
    pub seconds_held_back: Family<SourceLabel, Gauge>,
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
    /// Events larger than `max_payload`, published cut to fit, by source and op type.
    pub events_truncated: Family<PublishedLabels, Counter>,
    /// Events too large for `max_payload` even cut, left out, by source and op type.
    pub events_too_large: Family<PublishedLabels, Counter>,
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
    /// 1, labelled with the version of the binary.
    pub build_info: Family<BuildLabels, Gauge>,
    /// Unix seconds of each source's newest published `created` and last cursor write;
    /// the lag and age gauges are computed from them at scrape time.
    times: Mutex<HashMap<String, (i64, i64)>>,
    /// Each source's cursor position (Unix seconds) and since when it is pinned, as its last
    /// poll left it; the position age and pinned gauges are computed from them at scrape time.
    positions: Mutex<HashMap<String, Position>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (one per run; tests make their own).
    pub fn new() -> Metrics {
        // The product's metrics under its prefix; the standard process_* ones beside them.
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("gitea_nats_sourcer");
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
            position_age: Family::default(),
            pinned: Family::default(),
            poll_wait: Family::default(),
            polls_planned_rps: Gauge::default(),
            gaps_detected: Family::default(),
            walks_unproven: Family::default(),
            walks_realigned: Family::default(),
            seconds_held_back: Family::default(),
            nats_connected: Gauge::default(),
            nats_setup_failures: Counter::default(),
            hooks_skipped: Family::default(),
            events_truncated: Family::default(),
            events_too_large: Family::default(),
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
            build_info: Family::default(),
            times: Mutex::new(HashMap::new()),
            positions: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "build_info",
            "Always 1; the label version is the binary's version",
            m.build_info.clone(),
        );
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
            "HTTP requests to Gitea by status class (2xx, 3xx, 4xx, 5xx, error)",
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
            "source_position_age_seconds",
            "Now minus the source's cursor position (where a restart reads again from)",
            m.position_age.clone(),
        );
        registry.register(
            "source_pinned_seconds",
            "How long the source's cursor position has not moved while it waits for a second of its feed it could not prove whole and newer rows were published (0 when it moves)",
            m.pinned.clone(),
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
            "walks_realigned",
            "Same-second ties split by a page boundary, read again at another page size (the database serves a split tie the same way on every re-read)",
            m.walks_realigned.clone(),
        );
        registry.register(
            "second_held_back",
            "1 while the source's cursor waits below a second of its feed it could not prove whole (see the log for which)",
            m.seconds_held_back.clone(),
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
            "events_truncated",
            "Events larger than the server's max_payload, published cut to fit (marked truncated), by source and op_type",
            m.events_truncated.clone(),
        );
        registry.register(
            "events_too_large",
            "Events too large for the server's max_payload even when cut, left out with a logged reason, by source and op_type",
            m.events_too_large.clone(),
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
        let m = Metrics {
            registry: root,
            ..m
        };
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        for class in CLASSES {
            let _ = m.gitea_requests.get_or_create(&ClassLabel {
                class: class.into(),
            });
        }
        for reason in GITEA_REASONS {
            let _ = m.gitea_retries.get_or_create(&ReasonLabel {
                reason: reason.into(),
            });
        }
        m
    }

    /// A zero series of every per-source family for `source` (idempotent: at every poll).
    pub fn init_source(&self, source: &str) {
        let l = SourceLabel {
            source: source.into(),
        };
        let _ = self.events_duplicate.get_or_create(&l);
        let _ = self.gaps_detected.get_or_create(&l);
        let _ = self.walks_unproven.get_or_create(&l);
        let _ = self.walks_realigned.get_or_create(&l);
        let _ = self.seconds_held_back.get_or_create(&l);
        let _ = self.pinned.get_or_create(&l);
        let _ = self.poll_duration.get_or_create(&l);
        for reason in GITEA_REASONS.iter().chain(POLL_REASONS.iter()) {
            let _ = self.poll_errors.get_or_create(&SourceReasonLabels {
                source: source.into(),
                reason: (*reason).into(),
            });
        }
    }

    /// A zero series of every relay family for `receiver`.
    pub fn init_receiver(&self, receiver: &str) {
        let l = ReceiverLabel {
            receiver: receiver.into(),
        };
        for class in CLASSES {
            let _ = self.relay_deliveries.get_or_create(&ReceiverClassLabels {
                receiver: receiver.into(),
                class: class.into(),
            });
        }
        let _ = self.relay_retries.get_or_create(&l);
        let _ = self.relay_dead_letters.get_or_create(&l);
        let _ = self.relay_redeliveries.get_or_create(&l);
        let _ = self.relay_backlog.get_or_create(&l);
        let _ = self.relay_oldest_undelivered.get_or_create(&l);
        let _ = self.relay_delivery_duration.get_or_create(&l);
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

    /// Records where a poll left a source's cursor, and since when it is pinned if it is.
    pub fn cursor_position(
        &self,
        source: &str,
        position: i64,
        pinned_since: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        // Plain inserts and reads: a poisoned map is still consistent.
        self.positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source.to_string(), (position, pinned_since));
    }

    /// The OpenMetrics exposition, with the time-derived gauges brought up to date.
    pub fn encode(&self) -> String {
        self.encode_as(Format::OpenMetrics)
    }

    /// The exposition in `format`, with the time-derived gauges brought up to date.
    pub fn encode_as(&self, format: Format) -> String {
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
        let now_utc = chrono::Utc::now();
        for (source, (position, pinned_since)) in self
            .positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let l = SourceLabel {
                source: source.clone(),
            };
            if *position > 0 {
                self.position_age
                    .get_or_create(&l)
                    .set((now - position) as f64);
            }
            let pinned = pinned_since.map_or(0.0, |since| {
                ((now_utc - since).num_milliseconds() as f64 / 1000.0).max(0.0)
            });
            self.pinned.get_or_create(&l).set(pinned);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        match format {
            Format::OpenMetrics => out,
            Format::Text => to_text_format(&out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_in_one_process_do_not_share_metrics() {
        let moved = Metrics::new();
        let other = Metrics::new();
        // The product's families only: the process_* ones are the one process's.
        let product = |m: &Metrics| {
            m.encode()
                .lines()
                .filter(|l| !l.contains("process_"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let before = product(&other);
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
            product(&other),
            before,
            "the other run's registry did not move"
        );
        assert!(!before.contains("org:acme"));
        assert!(before.contains("gitea_nats_sourcer_nats_connected 0"));
    }

    #[test]
    fn every_status_has_one_class_of_the_labels() {
        let cases = [
            (Some(200), "2xx"),
            (Some(204), "2xx"),
            (Some(302), "3xx"),
            (Some(404), "4xx"),
            (Some(503), "5xx"),
            (Some(100), "5xx"),
            (None, "error"),
        ];
        for (status, class) in cases {
            assert_eq!(status_class(status), class, "{status:?}");
            assert!(CLASSES.contains(&class));
        }
    }

    #[test]
    fn accept_headers_choose_the_format() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some(
                "text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"
            )),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
    }

    #[test]
    fn the_text_format_names_counters_by_their_samples_and_has_no_eof() {
        let m = Metrics::new();
        m.init_source("org:acme");
        let text = m.encode_as(Format::Text);
        assert!(!text.contains("# EOF"));
        assert!(!text.contains("# UNIT"));
        assert!(text.contains("# TYPE gitea_nats_sourcer_poll_errors_total counter\n"));
        assert!(text.contains("# HELP gitea_nats_sourcer_poll_errors_total Polls"));
        assert!(text.contains("# TYPE gitea_nats_sourcer_poll_duration_seconds histogram\n"));
        assert!(text.contains("# TYPE gitea_nats_sourcer_nats_connected gauge\n"));
        assert!(m.encode().ends_with("# EOF\n"));
        // Every sample line of one format is in the other.
        let samples = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .filter(|l| !l.starts_with("process_"))
                .map(String::from)
                .collect()
        };
        assert_eq!(samples(&text), samples(&m.encode()));
    }

    #[test]
    fn every_family_is_at_zero_before_anything_moved() {
        let m = Metrics::new();
        let fresh = m.encode_as(Format::Text);
        for line in [
            "gitea_nats_sourcer_build_info{version=\"",
            "gitea_nats_sourcer_gitea_requests_total{class=\"5xx\"} 0",
            "gitea_nats_sourcer_gitea_retries_total{reason=\"http_429\"} 0",
            "gitea_nats_sourcer_rate_limit_waits_total 0",
            "gitea_nats_sourcer_nats_connected 0",
            "gitea_nats_sourcer_nats_setup_failures_total 0",
        ] {
            assert!(fresh.contains(line), "{line} in:\n{fresh}");
        }
        m.init_source("repo:a/b");
        m.init_receiver("ci");
        let text = m.encode_as(Format::Text);
        for line in [
            "gitea_nats_sourcer_events_duplicate_total{source=\"repo:a/b\"} 0",
            "gitea_nats_sourcer_gaps_detected_total{source=\"repo:a/b\"} 0",
            "gitea_nats_sourcer_walks_unproven_total{source=\"repo:a/b\"} 0",
            "gitea_nats_sourcer_source_pinned_seconds{source=\"repo:a/b\"} 0",
            "gitea_nats_sourcer_poll_errors_total{source=\"repo:a/b\",reason=\"cursor\"} 0",
            "gitea_nats_sourcer_poll_duration_seconds_count{source=\"repo:a/b\"} 0",
            "gitea_nats_sourcer_relay_dead_letters_total{receiver=\"ci\"} 0",
            "gitea_nats_sourcer_relay_deliveries_total{receiver=\"ci\",class=\"5xx\"} 0",
            "gitea_nats_sourcer_relay_backlog{receiver=\"ci\"} 0",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
    }

    #[test]
    fn every_help_line_is_the_operations_page_s() {
        let readme = include_str!("../../docs/operations.md");
        let m = Metrics::new();
        m.init_source("s");
        m.init_receiver("r");
        // The families whose label values are known only when they move.
        let l = PublishedLabels {
            source: "s".into(),
            op_type: "o".into(),
        };
        m.events_published.get_or_create(&l).inc();
        m.hooks_skipped.get_or_create(&l).inc();
        m.cursor_written("s", Some(1));
        m.cursor_position("s", 1, None);
        let text = m.encode_as(Format::Text);
        let helps: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# HELP ")?.split_once(' '))
            .collect();
        assert!(helps.len() >= 25, "{helps:?}");
        for (name, help) in helps {
            let row = format!("| `{name}");
            let cell = format!("| {help} |");
            assert!(
                readme
                    .lines()
                    .any(|l| l.starts_with(&row) && l.contains(&cell)),
                "docs/operations.md has no row `{row}...` with the cell `{cell}`"
            );
        }
    }
}
