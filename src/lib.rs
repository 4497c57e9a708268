//! # gitea-nats-sourcer
//!
//! Turns a Gitea (or Forgejo) server into a stream of CloudEvents on NATS JetStream, by
//! polling its activity feeds instead of waiting for webhooks.
//!
//! The map, in layers: each module uses only those of its own line and above it in this list
//! (`scripts/check-layers` fails on any module used from above, and on any circle). The folders
//! are the map: `ls src` lists these modules and nothing else.
//!
//! Foundations:
//! * [`source`]: source specs (`repo:OWNER/NAME`, `org:NAME`, `user:NAME`) and their names.
//! * [`shutdown`]: the shutdown signal passed into every task, raced at its waits (`Shutdown::sleep`).
//! * [`retry`]: every retry schedule (`Doubling`, `RetryWithin`, `SkipAfterFailures`) and the one
//!   `Retry-After` parser.
//! * [`store`]: the key-value bucket: cursors written with compare-and-set and read from the
//!   stream leader, the cursor design with its window shared by feed and kind cursors
//!   (`store::cursor`), and its keyspace (`store::Key`).
//! * [`config`]: the TOML config, typed and strict, one file per section; one loader
//!   (`config::load_toml`) for it and the relay's; secrets in [`config::Secret`];
//!   `docs/configuration.md` is generated from its `///` comments.
//! * [`telemetry`]: one struct per happening, one file per component; its `emit` writes the log
//!   line and moves the metric, on the run's [`telemetry::Telemetry`] handle (its metrics and
//!   health; no statics), or `telemetry::log` before a run has one. Beside them the Prometheus
//!   registry ([`telemetry::metrics`]), readiness ([`telemetry::health`]), what metrics and logs
//!   may call a repository ([`telemetry::names`]: private ones hidden), `tracing` set up from
//!   `[log]` ([`telemetry::logging`]) and `/metrics`, `/healthz`, `/readyz` ([`telemetry::http`]).
//!
//! The two sides:
//! * [`gitea`]: the one HTTP client towards Gitea (rate limit, retries, paging), its types,
//!   server days, and [`gitea::cadence`]: when each source polls next within the request budget.
//! * [`event`]: the event model, pure functions from what Gitea says to the messages published:
//!   identities and ids; one CloudEvents [`event::Envelope`] (structured JSON for activity rows
//!   and repository changes, binary `ce-*` headers for hook events) and one [`event::subject`];
//!   [`event::hook`]: the payloads Gitea's webhooks would POST for an action (a feed row or a
//!   repository change); [`event::hook::wire`]: their header names and `HookMessage::parse`,
//!   which the relay and `tail` read them back with.
//! * [`nats`]: connecting, creating or checking the streams and the bucket, and
//!   [`nats::publish`]: pipelined JetStream publishing with `Nats-Msg-Id`.
//!
//! Polling, once:
//! * [`poll`]: [`poll::pipeline`], the one publish pipeline and what polls share (`Context`,
//!   cross-feed index, issue cache, ownership); [`poll::feed`], walking a source's feed without
//!   losing or repeating rows (evidence, page walks, one feed poll); [`poll::repo`], the
//!   repository endpoints (labels, edits, releases, statuses, Actions runs); [`poll::discovery`]
//!   (`[[source]] all = true`); [`poll::backfill`], a range of days once, with a ledger per day;
//!   [`poll::pause`], marks in the bucket that every instance's task for a source follows.
//!
//! Running:
//! * [`ha`]: `[ha]`: leases in a KV bucket so several instances share the sources (which
//!   instance polls which source, renewals, fencing deadlines, releases at a safe point).
//! * [`control`]: `[control]`, the NATS micro service (list, pause, resume, reset sources;
//!   backfill); it asks the run's supervisor through a request channel.
//! * [`run`]: `run`: `connect` and the services; the `Supervisor` that owns the run (one
//!   `SourceTask` per source, reload, drains, `[ha]` orders, `[control]` requests) and its
//!   background tasks (watchdog, discovery, standby probe, prunes); each `SourceTask` keeps its
//!   poll apart from its error policy.
//! * [`relay`]: the `relay` command's service: hook events from JetStream to HTTP receivers as
//!   Gitea's webhooks (headers, signatures, retries, dead letters); it needs no Gitea.
//! * [`cli`], [`commands`]: the command line and each command.
//!
//! Not in this crate (the workspace's `crates/`, never in a release build): `gitea-sim`, a
//! fake Gitea that behaves like the real one; `nats-harness`, private nats-server processes;
//! `gitea-nats-demo`, the demo (`scripts/demo`). Tests and the benchmark use the first two as
//! dev-dependencies.

pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod event;
pub mod gitea;
pub mod ha;
pub mod nats;
pub mod poll;
pub mod relay;
pub mod retry;
pub mod run;
pub mod shutdown;
pub mod source;
pub mod store;
pub mod telemetry;
