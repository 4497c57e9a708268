//! The NATS connection.

use super::{Happening, TARGET};
use crate::source::SourceSpec;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::Metrics;

/// A source waits for NATS before polling Gitea.
pub struct NatsWaiting<'a> {
    pub source: &'a SourceSpec,
}

impl Happening for NatsWaiting<'_> {
    fn emit(self, _: &Metrics, h: &Health) {
        let spec = self.source;
        tracing::debug!(target: TARGET, source = %h.names.shown_source(&spec.to_string()), "NATS is not connected; not polling Gitea until it is");
    }
}

/// NATS is connected, or not.
pub struct NatsConnected {
    pub connected: bool,
}

impl Happening for NatsConnected {
    fn emit(self, m: &Metrics, h: &Health) {
        let connected = self.connected;
        m.nats_connected.set(connected as i64);
        h.set_nats_ok(connected);
    }
}

/// An event of the NATS connection (connected, disconnected, anything else).
pub struct NatsEvent<'a> {
    pub event: &'a async_nats::Event,
}

impl Happening for NatsEvent<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        match self.event {
            async_nats::Event::Connected => {
                NatsConnected { connected: true }.emit(m, h);
                tracing::info!(target: TARGET, "NATS connected")
            }
            async_nats::Event::Disconnected => {
                NatsConnected { connected: false }.emit(m, h);
                tracing::warn!(target: TARGET, "NATS disconnected; reconnecting")
            }
            other => tracing::info!(target: TARGET, "NATS: {other}"),
        }
    }
}
