//! `[ha]`: leases and the instances on the lease bucket.

use std::fmt::Display;

use super::{Happening, TARGET};
use crate::source::SourceSpec;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::Metrics;

/// `[ha]`: this instance took a source's lease and starts polling it.
pub struct LeaseAcquired<'a> {
    pub source: &'a SourceSpec,
    pub instance: &'a str,
    /// The previous holder, when the lease expired under it.
    pub after: Option<&'a str>,
}

impl Happening for LeaseAcquired<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        m.leases_acquired.inc();
        m.leases_held.inc();
        match self.after {
            Some(after) => {
                tracing::info!(target: TARGET, source = %h.names.shown_source(&self.source.to_string()), instance = self.instance, after, "lease acquired; polling here now (the lease of {after} had expired)")
            }
            None => {
                tracing::info!(target: TARGET, source = %h.names.shown_source(&self.source.to_string()), instance = self.instance, "lease acquired; polling here now")
            }
        }
    }
}

/// `[ha]`: this instance gave a source's lease up at a safe point (its cursor written).
pub struct LeaseReleased<'a> {
    pub source: &'a SourceSpec,
    /// Why: `rebalance` (another instance is its place now) or `shutdown`.
    pub why: &'static str,
}

impl Happening for LeaseReleased<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        m.leases_released.inc();
        m.leases_held.dec();
        tracing::info!(target: TARGET, source = %h.names.shown_source(&self.source.to_string()), why = self.why, "lease released ({})", self.why);
    }
}

/// `[ha]`: this instance lost a source's lease and stopped polling it at once.
pub struct LeaseLost<'a> {
    pub source: &'a SourceSpec,
    pub reason: &'a dyn Display,
}

impl Happening for LeaseLost<'_> {
    fn emit(self, m: &Metrics, h: &Health) {
        m.leases_lost.inc();
        m.leases_held.dec();
        tracing::warn!(target: TARGET, source = %h.names.shown_source(&self.source.to_string()), "lease lost ({}); stopped polling it here", self.reason);
    }
}

/// `[ha]`: the lease bucket could not be read or written this round (tried again).
pub struct LeaseBucketFailed<'a> {
    pub error: &'a dyn Display,
}

impl Happening for LeaseBucketFailed<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(target: TARGET, "lease bucket: {}; trying again", self.error);
    }
}

/// `[ha]`: live instances run with another source list than this one.
pub struct SourcesDiffer<'a> {
    pub instances: &'a [String],
}

impl Happening for SourcesDiffer<'_> {
    fn emit(self, _: &Metrics, _: &Health) {
        tracing::warn!(target: TARGET, instances = ?self.instances, "these instances run with another source list than this one: a source only some know may go unpolled; give every instance the same [[source]] tables (and reload them all)");
    }
}

/// `[ha]`: the instances alive on the lease bucket changed.
pub struct InstancesChanged<'a> {
    pub instances: &'a [String],
}

impl Happening for InstancesChanged<'_> {
    fn emit(self, m: &Metrics, _: &Health) {
        m.ha_instances.set(self.instances.len() as i64);
        tracing::info!(target: TARGET, instances = ?self.instances, "{} instance(s) share the sources", self.instances.len());
    }
}
