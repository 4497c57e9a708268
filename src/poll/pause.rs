//! Pauses of sources, kept in the cursor bucket and followed by every instance on it.
//!
//! `[control]`'s `sources-pause` stores a [`PauseMark`](crate::store::PauseMark) under `paused.` + the source's key;
//! `sources-resume` deletes it. One watch per process ([`follow`]) keeps [`Pauses`] up to
//! date, and each source's task looks there: a paused source's task idles (no requests, no
//! publishing) until its mark is gone, and a pause that comes during a poll stops that poll
//! at its next safe point (before a batch, with the cursor written). Because the mark is in
//! the bucket, not in a process, a pause holds across restarts, reloads and, under `[ha]`,
//! across a lease moving to another instance; a source's lease stays where it is while it
//! is paused.
//!
//! Until the marks have been read once, no source polls ([`Pauses::state`]): a paused
//! source must not poll because its process has just started.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use crate::retry::Doubling;
use crate::shutdown::Shutdown;
use crate::source::SourceSpec;
use crate::store::{CursorStore, Key};
use crate::telemetry::{self, Telemetry};

/// [`Pauses::state`] of `spec` in `k`.
fn view(k: &Known, spec: &SourceSpec) -> (bool, bool) {
    let paused = k.paused.contains(spec);
    (k.loaded && !paused, paused)
}

/// What this process knows of the pause marks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Known {
    /// The marks have been read once.
    loaded: bool,
    /// The sources with a mark.
    paused: HashSet<SourceSpec>,
    /// Sources whose task here idles because of its mark.
    idle: HashSet<SourceSpec>,
}

/// The pause marks as this process knows them; cheap to clone. New (or default): nothing
/// known yet, sources wait for [`follow`]'s first reading.
#[derive(Clone, Debug, Default)]
pub struct Pauses {
    /// What is known, watched by the sources' tasks.
    known: Arc<watch::Sender<Known>>,
}

impl Pauses {
    /// Nothing known yet: sources wait for [`follow`]'s first reading.
    pub fn new() -> Pauses {
        Pauses::default()
    }

    /// Whether `spec` is paused (as far as known).
    pub fn is_paused(&self, spec: &SourceSpec) -> bool {
        self.known.borrow().paused.contains(spec)
    }

    /// Whether `spec` may poll now (the marks have been read and it is not paused), and
    /// whether it is paused, read together.
    pub fn state(&self, spec: &SourceSpec) -> (bool, bool) {
        view(&self.known.borrow(), spec)
    }

    /// Waits until [`Pauses::state`] of `spec` differs from `seen`, the state the caller
    /// acted on (a change that came in between is not missed: the current value is looked
    /// at first).
    pub async fn wait_change(&self, spec: &SourceSpec, seen: (bool, bool)) {
        let mut rx = self.known.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail while we hold it.
        let _ = rx.wait_for(|k| view(k, spec) != seen).await;
    }

    /// Waits until `spec` is paused.
    pub async fn wait_paused(&self, spec: &SourceSpec) {
        let mut rx = self.known.subscribe();
        let _ = rx.wait_for(|k| k.paused.contains(spec)).await;
    }

    /// Waits until `spec`'s task here idles (after [`Pauses::wait_paused`] it stops at its
    /// next safe point), or `within` has passed; whether it does.
    pub async fn wait_idle_here(&self, spec: &SourceSpec, within: Duration) -> bool {
        let mut rx = self.known.subscribe();
        tokio::time::timeout(within, rx.wait_for(|k| k.idle.contains(spec)))
            .await
            .is_ok()
    }

    /// A source's task says it idles (`true`) or polls again (`false`).
    pub fn set_idle(&self, spec: &SourceSpec, idle: bool) {
        self.known.send_if_modified(|k| match idle {
            true => k.idle.insert(spec.clone()),
            false => k.idle.remove(spec),
        });
    }

    /// Marks `spec` paused or not (what the watch brought).
    pub fn set(&self, spec: &SourceSpec, paused: bool) {
        self.known.send_if_modified(|k| match paused {
            true => k.paused.insert(spec.clone()),
            false => k.paused.remove(spec),
        });
    }

    fn replace(&self, paused: HashSet<SourceSpec>) {
        self.known.send_if_modified(|k| {
            let changed = !k.loaded || k.paused != paused;
            k.loaded = true;
            k.paused = paused;
            changed
        });
    }
}

/// Between two attempts of [`follow`]: 0.5 s, doubled per failure, at most 8 s.
const FOLLOW_RETRY: Doubling = Doubling {
    from: Duration::from_millis(500),
    cap: Duration::from_secs(8),
};

/// Follows the pause marks of `store` into `pauses` until shutdown: a watch from now on,
/// then one reading of every mark (so that nothing put between the two is missed), then the
/// watch's changes. When the watch or the reading fails (NATS away), it starts over after a
/// pause, keeping what it knew; sources whose marks were never read wait.
pub async fn follow(store: CursorStore, pauses: Pauses, telemetry: Telemetry, shutdown: Shutdown) {
    let mut failures: u32 = 0;
    loop {
        let error = tokio::select! {
            e = follow_once(&store, &pauses) => e,
            _ = shutdown.wait() => return,
        };
        failures = failures.saturating_add(1);
        let retry_in = FOLLOW_RETRY.after(failures);
        telemetry.emit(telemetry::PausesUnread {
            error: &error,
            retry_in,
        });
        if !shutdown.sleep(retry_in).await {
            return;
        }
    }
}

/// One watch, until it fails (the error).
async fn follow_once(store: &CursorStore, pauses: &Pauses) -> String {
    let mut watch = match store.watch_pauses().await {
        Ok(w) => w,
        Err(e) => return e.to_string(),
    };
    match store.pauses().await {
        Ok(marks) => pauses.replace(marks.into_iter().map(|(spec, _)| spec).collect()),
        Err(e) => return e.to_string(),
    }
    while let Some(entry) = watch.next().await {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return e.to_string(),
        };
        let Ok(Key::Paused(spec)) = entry.key.parse() else {
            continue;
        };
        let paused = entry.operation == async_nats::jetstream::kv::Operation::Put;
        pauses.set(&spec, paused);
    }
    "the watch of the pause marks ended".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_source_waits_for_the_first_reading_and_while_paused() {
        let p = Pauses::new();
        let spec = SourceSpec::org("acme").expect("spec");
        assert_eq!(p.state(&spec), (false, false), "nothing read yet: it waits");
        p.replace([spec.clone()].into_iter().collect());
        assert_eq!(p.state(&spec), (false, true), "paused: it waits");
        let resumed = tokio::spawn({
            let p = p.clone();
            let spec = spec.clone();
            async move { p.wait_change(&spec, (false, true)).await }
        });
        p.set(&spec, false);
        tokio::time::timeout(Duration::from_secs(5), resumed)
            .await
            .expect("the wait sees the resume")
            .expect("task");
        assert_eq!(p.state(&spec), (true, false), "resumed: it goes on");
        assert_eq!(
            p.state(&SourceSpec::org("other").expect("spec")),
            (true, false),
            "read, and not paused"
        );
    }

    #[tokio::test]
    async fn marks_are_followed_from_the_bucket_whatever_their_value() {
        let (_server, _dir, client) = crate::nats::test_server().await;
        let js = crate::nats::jetstream(client);
        let kv = crate::nats::ensure_bucket(&js, &crate::config::NatsConfig::default())
            .await
            .expect("bucket");
        let store = CursorStore::new(kv.clone());
        let acme = SourceSpec::org("acme").expect("spec");
        let widgets = SourceSpec::repo("acme", "dot.files").expect("spec");
        // Paused before the process starts, by hand, with a value that is no mark.
        kv.put(Key::Paused(acme.clone()).to_string(), "ops".into())
            .await
            .expect("put");
        let pauses = Pauses::new();
        let (_trigger, shutdown) = crate::shutdown::channel();
        let task = tokio::spawn(follow(
            store.clone(),
            pauses.clone(),
            Telemetry::new(),
            shutdown,
        ));
        let within = |p: &Pauses, spec: &SourceSpec, paused: bool| {
            let (p, spec) = (p.clone(), spec.clone());
            async move {
                tokio::time::timeout(Duration::from_secs(5), async {
                    loop {
                        let seen = p.state(&spec);
                        if seen == (!paused, paused) {
                            break;
                        }
                        p.wait_change(&spec, seen).await;
                    }
                })
                .await
                .is_ok()
            }
        };
        assert!(within(&pauses, &acme, true).await, "read at the start");
        assert!(within(&pauses, &widgets, false).await);
        let mark = crate::store::PauseMark {
            at: chrono::Utc::now(),
            by: "test".into(),
        };
        assert!(store.pause(&widgets, &mark).await.expect("pause"));
        assert!(
            !store.pause(&widgets, &mark).await.expect("pause"),
            "paused already"
        );
        assert!(within(&pauses, &widgets, true).await, "seen by the watch");
        let listed = store.pauses().await.expect("pauses");
        assert_eq!(
            listed,
            vec![(widgets.clone(), Some(mark)), (acme.clone(), None)],
            "a hand-made value pauses too"
        );
        assert!(store.resume(&acme).await.expect("resume"));
        assert!(!store.resume(&acme).await.expect("resume"), "not paused");
        assert!(within(&pauses, &acme, false).await, "the deletion seen");
        assert!(pauses.is_paused(&widgets));
        task.abort();
    }
}
