//! # gitea-nats-sourcer
//!
//! Turns a Gitea (or Forgejo) server into a stream of CloudEvents on NATS JetStream, by
//! polling its activity feeds instead of waiting for webhooks.
//!
//! The map, in the order data flows:
//! * [`config`]: the TOML config, typed and strict; secrets in [`config::Secret`].
//! * [`source`]: source specs (`repo:OWNER/NAME`, `org:NAME`, `user:NAME`) and their names.
//! * [`gitea`]: the one HTTP client towards Gitea (rate limit, retries, paging) and its types.
//! * [`feed`]: walking the feeds without losing or repeating rows: the cursor design
//!   (`feed::cursor`), page walks, cross-feed de-duplication, one poll of one source.
//! * [`event`]: pure functions from an activity row to a CloudEvents message (id, subject).
//! * [`repo`]: repository endpoints (labels, edits, releases, statuses, Actions runs).
//! * [`publish`]: pipelined JetStream publishing with `Nats-Msg-Id`.
//! * [`state`]: cursors in the JetStream key-value bucket, compare-and-set.
//! * [`nats`]: connecting, and creating or checking the stream and bucket.
//! * [`backfill`]: publishing a range of days once, with a ledger per day in the bucket.
//! * [`scheduler`]: `run`: one task per source, intervals with jitter, backoff, shutdown.
//! * [`shutdown`]: the shutdown signal passed into every task.
//! * [`telemetry`]: one function per happening, writing its log line and bumping its metric.
//! * [`metrics`], [`health`], [`http`]: Prometheus metrics, readiness, `/metrics` `/healthz` `/readyz`.
//! * [`cli`], [`commands`]: the command line and each command.
//! * [`simulator`]: a fake Gitea that behaves like the real one (demo, tests, benchmark).
//! * [`local_nats`]: a private nats-server process (demo, tests, benchmark).

pub mod backfill;
pub mod cli;
pub mod commands;
pub mod config;
pub mod event;
pub mod feed;
pub mod gitea;
pub mod health;
pub mod http;
pub mod local_nats;
pub mod metrics;
pub mod nats;
pub mod publish;
pub mod repo;
pub mod scheduler;
pub mod shutdown;
pub mod simulator;
pub mod source;
pub mod state;
pub mod telemetry;
