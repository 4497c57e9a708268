//! The command line: what each command does, taught by `--help`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{DEFAULT_CONFIG_PATH, LogFormat};
use crate::source::SourceSpec;

/// Turns a Gitea (or Forgejo) server into events on NATS JetStream, without webhooks.
///
/// It polls Gitea's activity feeds at a rate-limited cadence, publishes each action once as a
/// CloudEvents message to a JetStream stream (`Nats-Msg-Id` = the event id), and keeps one
/// cursor per source in a JetStream key-value bucket, so restarts and outages catch up
/// without losing or repeating events.
///
/// Start with `check` to prove a config works, then `run` (as a systemd service), and watch
/// events with `tail`. `scripts/demo` shows it all against a simulated Gitea.
#[derive(Debug, Parser)]
#[command(name = "gitea-nats-sourcer", version, propagate_version = true)]
pub struct Cli {
    /// Config file (TOML).
    #[arg(long, global = true, env = "GITEA_NATS_SOURCER_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Log format: human `text` or `json` (one object per line, for journald or shipping).
    /// Overrides `[log] format`. Levels come from `RUST_LOG` or `[log] level`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll every configured source forever and publish new actions.
    ///
    /// SIGTERM or SIGINT: stop polling, let in-flight publishes finish (or abandon them
    /// without moving the cursor past them), write the cursors, exit 0 within 10 s.
    Run,
    /// Publish the history of a range of days, skipping what is already published.
    ///
    /// Walks each day (Gitea's `date=`, server time zone) of each source, oldest first. Safe
    /// while `run` runs elsewhere: live cursors are never moved, and rows `run` publishes
    /// (from where its cursor began) are left to it. It follows `run`'s ownership: an org or
    /// user source is backfilled with the configured `repo:` sources of its repositories.
    /// Running it twice over the same range publishes nothing the second time, however long
    /// after: a ledger per day in the cursor bucket records what was published. Exits 3
    /// when some days could not be completed, naming each (source, day, unproven second).
    Backfill {
        /// First day, YYYY-MM-DD (server time zone).
        #[arg(long)]
        since: chrono::NaiveDate,
        /// Last day, inclusive; default today.
        #[arg(long)]
        until: Option<chrono::NaiveDate>,
        /// Only these sources (repo:OWNER/NAME, org:NAME, user:NAME); default all configured.
        #[arg(long = "source", value_parser = clap::value_parser!(SourceSpec))]
        sources: Vec<SourceSpec>,
    },
    /// Validate the config and reach Gitea and NATS; one line per check.
    ///
    /// Checks the config, Gitea's version, whose the token is, that every source is visible,
    /// that NATS answers with JetStream on, and that the stream and cursor bucket are usable.
    /// Exits non-zero if any check fails: run it before a deploy.
    Check,
    /// Show or delete the stored positions of sources.
    #[command(subcommand)]
    Cursors(CursorsCommand),
    /// Print published events as they arrive, one human-readable line each.
    ///
    /// FILTER is a NATS subject filter below the subject prefix, e.g. `acme.>` (all of the
    /// org acme), `*.*.create_issue`, or `acme.dot%2Efiles.>`; default: everything.
    Tail {
        /// Subject filter below `{subject_prefix}.`.
        filter: Option<String>,
        /// Start at the first event in the stream instead of new ones.
        #[arg(long)]
        all: bool,
        /// Exit after this many events.
        #[arg(long)]
        count: Option<usize>,
        /// Print each event's whole JSON body instead of a summary line.
        #[arg(long)]
        json: bool,
        /// Read private repositories' events (`nats.private_stream`, FILTER below
        /// `{private_subject_prefix}.`) instead of public ones'.
        #[arg(long)]
        private: bool,
    },
    /// Deliver the webhook-shaped events to HTTP receivers, as Gitea's webhooks would.
    ///
    /// Reads `{prefix}.*.*.hook.*` with one durable JetStream consumer per `[[receiver]]` of
    /// its own config file (default /etc/gitea-nats-sourcer/relay.toml; `[nats]` as the
    /// sourcer's, no `[gitea]`: the relay never talks to Gitea) and POSTs each body unchanged
    /// with Gitea's headers (X-Gitea-Delivery, X-Gitea-Event, X-Gitea-Signature, the X-Gogs-*
    /// and X-GitHub-* copies, X-Hub-Signature-256, X-Gitea-Hook-Installation-Target-Type).
    /// Acknowledged only after a 2xx; 5xx, 408, 429 (Retry-After), timeouts and connection
    /// errors are retried with backoff for up to `give_up_after`; other answers become dead
    /// letters at once. At least once: a restart
    /// resumes, and a repeat carries the same X-Gitea-Delivery.
    ///
    /// Without a subcommand it runs (as the gitea-nats-relay systemd service).
    Relay {
        #[command(subcommand)]
        action: Option<RelayCommand>,
    },
}

/// What `relay` does.
#[derive(Debug, Clone, Subcommand)]
pub enum RelayCommand {
    /// Deliver until SIGTERM or SIGINT (the default).
    Run,
    /// Validate the relay config, reach NATS and each receiver (HEAD), and show each
    /// receiver's consumer backlog and dead letters; one line per check.
    Check,
    /// The events that could not be delivered.
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
    /// Deliver dead letters again (one attempt each); a delivered one is removed.
    ///
    /// RECEIVER's dead letters, all of them or only ID (an event id or a delivery id).
    Redeliver {
        /// The receiver's name.
        receiver: String,
        /// One event id (ce-id) or delivery id (X-Gitea-Delivery); default: all.
        id: Option<String>,
    },
}

/// `relay dead-letters`.
#[derive(Debug, Clone, Subcommand)]
pub enum DeadLettersCommand {
    /// One line per dead letter: receiver, event, status, reason, time.
    List {
        /// Only this receiver's.
        #[arg(long)]
        receiver: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CursorsCommand {
    /// Show every stored cursor (and configured sources that have none).
    List,
    /// Delete a source's cursor: it starts again as `poll.start` says.
    ///
    /// SPEC is `repo:OWNER/NAME`, `org:NAME` or `user:NAME`.
    Reset {
        /// The source.
        #[arg(value_parser = clap::value_parser!(SourceSpec))]
        spec: SourceSpec,
    },
    /// Pause a source on every instance on the bucket, until `cursors resume`.
    ///
    /// Stores its pause mark (`paused.SOURCE` in the cursor bucket): a running sourcer stops
    /// polling it at its next safe point, and one that starts leaves it alone; its new
    /// actions wait in Gitea. The same as `[control]`'s `sources-pause`.
    Pause {
        /// The source.
        #[arg(value_parser = clap::value_parser!(SourceSpec))]
        spec: SourceSpec,
    },
    /// Resume a paused source: the instance that holds it polls it again at once.
    Resume {
        /// The source.
        #[arg(value_parser = clap::value_parser!(SourceSpec))]
        spec: SourceSpec,
    },
}
