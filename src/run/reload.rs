//! A new config (SIGHUP, or a discovery under `all = true`), applied by the [`Supervisor`]:
//! what to stop, what to start and which drains to begin are decided by the pure functions
//! here ([`needs_restart`], [`stale`], [`drains_again`]); the supervisor carries them out.

use std::collections::HashMap;

use tokio::task::JoinHandle;

use super::DRAIN;
use super::drain::start_drains;
use super::supervisor::Supervisor;
use crate::config::{Config, ConfigError, Source};
use crate::poll::pipeline::Owners;
use crate::shutdown::Deadline;
use crate::source::SourceSpec;
use crate::telemetry;

/// The sections of `new` that differ from `old` and take effect only at a restart.
pub(super) fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("gitea", new.gitea != old.gitea),
        ("nats", new.nats != old.nats),
        ("http", new.http != old.http),
        ("log", new.log != old.log),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(section, _)| section)
    .collect()
}

/// The running sources to stop for `wanted`: removed ones, and those whose settings changed
/// in any way (they restart).
pub(super) fn stale<'a>(
    running: impl Iterator<Item = (&'a SourceSpec, &'a Source)>,
    wanted: &HashMap<SourceSpec, Source>,
) -> Vec<SourceSpec> {
    running
        .filter(|(spec, source)| wanted.get(*spec) != Some(*source))
        .map(|(spec, _)| spec.clone())
        .collect()
}

/// The drains to stop first: their repository is configured again.
pub(super) fn drains_again<'a>(
    draining: impl Iterator<Item = &'a SourceSpec>,
    wanted: &HashMap<SourceSpec, Source>,
) -> Vec<SourceSpec> {
    draining
        .filter(|spec| wanted.contains_key(*spec))
        .cloned()
        .collect()
}

/// The tasks a reload stops, and what it learns doing so.
#[derive(Default)]
struct Stopping {
    /// The tasks, awaited before anything starts.
    tasks: Vec<JoinHandle<()>>,
    /// Under `[ha]`: the leases of the stopped sources, which stay held here; changed
    /// sources restart under them.
    leased: HashMap<SourceSpec, Deadline>,
    /// The sources no longer configured.
    removed: Vec<SourceSpec>,
    /// How many sources restart with new settings.
    changed: usize,
}

impl Supervisor {
    /// Applies a changed config file (SIGHUP). Sources whose settings changed in any way,
    /// and removed ones, are stopped and awaited (each reaches a safe point: its cursor
    /// written for everything acknowledged) before the ownership map is updated and new
    /// tasks start, so an old and a new task never poll one source at once. A task that does
    /// not stop within [`DRAIN`] is abandoned (its cursor stays at its last acknowledged
    /// batch). Shutdown during the wait leaves the stopping tasks in `retired` and starts
    /// nothing.
    pub(super) async fn reload(&mut self, new: Result<Config, ConfigError>) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
        let telemetry = self.services.ctx.telemetry.clone();
        let new = match new.and_then(|c| c.require_sources().map(|()| c)) {
            Ok(c) => c,
            Err(e) => return telemetry.emit(telemetry::ReloadFailed { error: &e }),
        };
        for section in needs_restart(&self.config, &new) {
            telemetry.emit(telemetry::ReloadNeedsRestart { section });
        }
        let wanted: HashMap<SourceSpec, Source> = new
            .sources()
            .into_iter()
            .map(|s| (s.spec.clone(), s))
            .collect();
        let mut stopping = self.stop_for(&wanted);
        let drained = tokio::select! {
            r = tokio::time::timeout(DRAIN, futures::future::join_all(stopping.tasks.iter_mut())) => r.is_ok(),
            _ = self.shutdown.wait() => {
                self.retired.append(&mut stopping.tasks);
                return;
            }
        };
        if !drained {
            telemetry.emit(telemetry::ReloadAbandoned {
                tasks: stopping.tasks.iter().filter(|t| !t.is_finished()).count(),
            });
            for t in &stopping.tasks {
                t.abort();
            }
        }
        self.set_owners(&wanted);
        let before: Vec<SourceSpec> = self.config.sources().into_iter().map(|s| s.spec).collect();
        let (removed, changed) = (stopping.removed.len(), stopping.changed);
        self.start_reload_drains(&new, &wanted, &before, stopping.removed);
        let added = wanted.keys().filter(|s| !before.contains(s)).count();
        // New sources start with the new settings (their jitter among them).
        self.config = new;
        self.start_wanted(wanted, stopping.leased);
        telemetry.emit(telemetry::Reloaded {
            added,
            removed,
            changed,
        });
    }

    /// Fires the triggers of what `wanted` no longer has as it runs: drains of repositories
    /// configured again, removed sources and changed ones.
    fn stop_for(&mut self, wanted: &HashMap<SourceSpec, Source>) -> Stopping {
        let mut out = Stopping::default();
        let stale = stale(self.running.iter().map(|(s, r)| (s, &r.source)), wanted);
        // A drained repository configured again: its drain stops first.
        self.draining.retain(|_, r| !r.task.is_finished());
        for spec in drains_again(self.draining.keys(), wanted) {
            if let Some(r) = self.draining.remove(&spec) {
                r.trigger.fire();
                out.tasks.push(r.task);
            }
        }
        out.removed = stale
            .iter()
            .filter(|spec| !wanted.contains_key(*spec))
            .cloned()
            .collect();
        for spec in stale {
            let Some(r) = self.running.remove(&spec) else {
                continue;
            };
            // Stops at its next safe point; its cursor stays in the bucket.
            r.trigger.fire();
            if let Some(d) = r.deadline {
                out.leased.insert(spec.clone(), d);
            }
            self.services
                .ctx
                .telemetry
                .health
                .unregister(&spec.to_string());
            if wanted.contains_key(&spec) {
                out.changed += 1;
            }
            out.tasks.push(r.task);
        }
        out
    }

    /// The ownership map for `wanted`, keeping the drains still under way.
    fn set_owners(&self, wanted: &HashMap<SourceSpec, Source>) {
        let mut owners = self
            .services
            .ctx
            .owners
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let still: Vec<SourceSpec> = owners
            .draining()
            .filter(|d| !wanted.contains_key(*d))
            .cloned()
            .collect();
        *owners = Owners::new(wanted.keys()).with_draining(still);
    }

    /// The drains of the `repo:` sources a reload removed. Under `[ha]` every instance sees
    /// the same removals; each drain runs where the lease of the source it hands over to is
    /// held, under that lease.
    fn start_reload_drains(
        &mut self,
        new: &Config,
        wanted: &HashMap<SourceSpec, Source>,
        before: &[SourceSpec],
        removed_running: Vec<SourceSpec>,
    ) {
        let configured: Vec<SourceSpec> = wanted.keys().cloned().collect();
        if self.ha.is_none() {
            let (services, shutdown) = (&self.services, &self.shutdown);
            return start_drains(
                services,
                new,
                &configured,
                removed_running,
                &mut self.draining,
                shutdown,
                None,
            );
        }
        let removed: Vec<SourceSpec> = before
            .iter()
            .filter(|s| !wanted.contains_key(*s))
            .cloned()
            .collect();
        let holders: Vec<(SourceSpec, Deadline)> = self
            .running
            .iter()
            .filter_map(|(spec, r)| Some((spec.clone(), r.deadline.clone()?)))
            .collect();
        for (to, deadline) in &holders {
            start_drains(
                &self.services,
                new,
                &configured,
                removed.clone(),
                &mut self.draining,
                &self.shutdown,
                Some((to, deadline)),
            );
        }
    }

    /// Starts every wanted source not running. Under `[ha]` new sources start where the
    /// coordinator takes their leases (and removed ones' leases are released by it); changed
    /// ones restart here under the lease they held (`leased`), if it has not passed.
    fn start_wanted(
        &mut self,
        wanted: HashMap<SourceSpec, Source>,
        mut leased: HashMap<SourceSpec, Deadline>,
    ) {
        if let Some(ha) = &self.ha {
            ha.set_sources(wanted.keys().cloned().collect());
        }
        for (spec, source) in wanted {
            if self.running.contains_key(&spec) {
                continue;
            }
            let deadline = match self.ha {
                None => None,
                Some(_) => match leased.remove(&spec) {
                    Some(d) if !d.passed() => Some(d),
                    _ => continue,
                },
            };
            let r = self.start_source(source, deadline, None);
            self.running.insert(spec, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str, sources: &str) -> Config {
        Config::parse(&format!(
            "[gitea]\nurl = \"https://git.example.com\"\n{extra}\n{sources}"
        ))
        .expect("config")
    }

    fn wanted(c: &Config) -> HashMap<SourceSpec, Source> {
        c.sources()
            .into_iter()
            .map(|s| (s.spec.clone(), s))
            .collect()
    }

    const TWO: &str = "[[source]]\norg = \"acme\"\n[[source]]\nrepo = \"acme/widgets\"\n";

    #[test]
    fn a_changed_section_that_needs_a_restart_is_named_and_sources_are_not_sections() {
        let old = config("", TWO);
        assert!(needs_restart(&old, &old.clone()).is_empty());
        assert!(needs_restart(&old, &config("", "[[source]]\norg = \"other\"\n")).is_empty());
        let new = config(
            "requests_per_second = 3\n[nats]\nurl = \"nats://other:4222\"\n[http]\nlisten = \"127.0.0.1:9464\"\n[log]\nlevel = \"debug\"\n",
            TWO,
        );
        assert_eq!(
            needs_restart(&old, &new),
            vec!["gitea", "nats", "http", "log"]
        );
    }

    #[test]
    fn removed_and_changed_sources_stop_unchanged_ones_go_on() {
        let old = config("", TWO);
        let running = wanted(&old);
        let acme = SourceSpec::org("acme").expect("spec");
        let widgets = SourceSpec::repo("acme", "widgets").expect("spec");
        assert!(
            stale(running.iter(), &wanted(&old)).is_empty(),
            "same config"
        );
        // `acme` changes its interval; `widgets` is removed; `globex` is new (not stale).
        let new = config(
            "",
            "[[source]]\norg = \"acme\"\ninterval = \"77s\"\n[[source]]\norg = \"globex\"\n",
        );
        let mut stopped = stale(running.iter(), &wanted(&new));
        stopped.sort_by_key(|s| s.to_string());
        let mut expected = vec![acme.clone(), widgets.clone()];
        expected.sort_by_key(|s| s.to_string());
        assert_eq!(stopped, expected);
        // A drained repository configured again: its drain stops first.
        let draining = [
            widgets.clone(),
            SourceSpec::repo("acme", "gone").expect("spec"),
        ];
        assert_eq!(drains_again(draining.iter(), &wanted(&old)), vec![widgets]);
        assert!(drains_again(draining.iter(), &wanted(&new)).is_empty());
    }
}
