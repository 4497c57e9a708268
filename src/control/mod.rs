//! `[control]`: control over NATS, the ecosystem's own way. A NATS micro service named
//! `gitea-nats-sourcer` (so `nats micro ls`, `nats micro info` and `nats micro stats` see it)
//! with endpoints under `control.subject` (default `gitea_control`):
//!
//! | endpoint | subject | body | answer |
//! | --- | --- | --- | --- |
//! | `sources-list` | `{subject}.sources.list` | none | every configured source: its state here (`running`, `paused`, `elsewhere`), interval and cursor |
//! | `sources-pause` | `{subject}.sources.pause` | a source spec (`repo:acme/widgets`) | stores its pause mark: every instance stops polling it at a safe point (cursor written) until resumed, across restarts, reloads and lease moves |
//! | `sources-resume` | `{subject}.sources.resume` | a source spec | deletes the mark: it is polled again at once |
//! | `sources-reset` | `{subject}.sources.reset` | a source spec | stops it, deletes its cursor (it starts again as `start` says), starts it again |
//! | `backfill` | `{subject}.backfill` | `{"since": "YYYY-MM-DD", "until": ..., "sources": [...]}` | starts a backfill of that range in this process: configured sources only (404), `until` not after today, `since` at most `max_backfill_days` before it (400), one at a time (409) |
//!
//! Requests that change state run one at a time ([`service::Busy`]): a second backfill while
//! one started here runs, or a pause, resume or reset of a source while one of it is in
//! flight, is refused with 409 naming since when and who started it.
//!
//! Authorisation is the NATS account's: whoever may publish to a subject may ask it (grant
//! `{subject}.sources.list` to on-call readers, `{subject}.>` to operators; see
//! `docs/least-privilege.md`). Every request is logged with its outcome and who asked: the
//! user and account of nats-server's `Nats-Request-Info` header, present when the request
//! crossed an account's service import ([`service::Requester`]), else `unknown`.
//!
//! The service ([`service`]) talks to the scheduler, which alone knows which sources run,
//! through a small request channel: [`Request`]s of an [`Ask`], each answered once.

pub mod service;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::source::SourceSpec;

/// What the control service asks of the scheduler.
#[derive(Debug)]
pub enum Ask {
    /// Every configured source and its state here.
    List,
    /// Stop the source's task here at a safe point, until [`Ask::Start`] (a reset's stop:
    /// not stored; a pause is a mark in the bucket, see [`crate::poll::pause`]).
    Stop(SourceSpec),
    /// Start a task stopped by [`Ask::Stop`] again (under the lease it had, under `[ha]`).
    Start(SourceSpec),
}

/// A configured source's state in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Polled here.
    Running,
    /// Paused through the control service (a mark in the bucket: paused on every instance).
    Paused,
    /// Not polled here: another instance holds its lease (`[ha]`), or it is not started yet.
    Elsewhere,
}

/// One configured source, as the scheduler sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub source: String,
    pub state: State,
    /// The poll interval (`30s`).
    pub interval: String,
}

/// The scheduler's answer.
#[derive(Debug)]
pub enum Answer {
    /// To [`Ask::List`].
    Sources(Vec<SourceView>),
    /// Done as asked.
    Done,
    /// No such source in the config.
    Unknown,
    /// The source is not in a state the request applies to (why).
    Conflict(&'static str),
}

/// One request to the scheduler and where its answer goes.
#[derive(Debug)]
pub struct Request {
    pub ask: Ask,
    pub reply: oneshot::Sender<Answer>,
}

/// The scheduler's end of the control service: the requests to carry out.
pub struct Control {
    pub requests: mpsc::Receiver<Request>,
}

/// Asks the scheduler through `tx`; `None` when it is gone (shutting down).
pub async fn ask(tx: &mpsc::Sender<Request>, ask: Ask) -> Option<Answer> {
    let (reply, answer) = oneshot::channel();
    tx.send(Request { ask, reply }).await.ok()?;
    answer.await.ok()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[gitea]\nurl = \"https://gitea.example.com\"\n";

    #[test]
    fn the_control_subject_is_checked_and_kept_out_of_the_stream() {
        let on = Config::parse(&format!("{BASE}[control]\nenabled = true\n")).expect("parses");
        assert!(on.control.enabled);
        assert_eq!(on.control.subject, "gitea_control");
        let off = Config::parse(BASE).expect("parses");
        assert!(!off.control.enabled);
        for bad in ["gitea.control", "gitea", "a b", "ops.>"] {
            let e = Config::parse(&format!("{BASE}[control]\nsubject = \"{bad}\"\n"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("control.subject"), "{bad}: {e}");
        }
        let e = Config::parse(&format!("{BASE}[control]\nenable = true\n"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("enable"), "an unknown key is named: {e}");
    }

    #[test]
    fn the_longest_backfill_is_a_typed_key_of_at_least_one_day() {
        let on = Config::parse(&format!("{BASE}[control]\nenabled = true\n")).expect("parses");
        assert_eq!(on.control.max_backfill_days, 366);
        let set =
            Config::parse(&format!("{BASE}[control]\nmax_backfill_days = 31\n")).expect("parses");
        assert_eq!(set.control.max_backfill_days, 31);
        for bad in ["0", "-1", "\"a year\""] {
            let e = Config::parse(&format!("{BASE}[control]\nmax_backfill_days = {bad}\n"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("max_backfill_days"), "{bad}: {e}");
        }
    }
}
