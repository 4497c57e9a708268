//! The commands: each returns `anyhow::Result`; the binary prints an error once, on stderr,
//! and exits with [`exit_code`] (1 failure, 2 bad usage or an invalid config, 3 a backfill
//! that could not complete some days).

pub mod check;
pub mod cursors;
pub mod relay;
pub mod tail;

use crate::cli::{Cli, Command, CursorsCommand};
use crate::config::{Config, ConfigError, LogFormat};
use crate::telemetry;
use crate::telemetry::logging;

/// Prints a line to stdout, ignoring a closed pipe (`tail | head` must not panic).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Exit code of success.
pub const OK: u8 = 0;
/// Exit code of a failure at run time.
pub const FAILED: u8 = 1;
/// Exit code of bad usage or an invalid config.
pub const USAGE: u8 = 2;

/// Bad usage that the argument parser cannot see (`--until` before `--since`): exit 2. A bad
/// `--source` or SPEC never gets here: clap refuses it (exit 2) with its own usage message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A failure the command already reported on stdout, line by line (`check`'s `FAIL` lines):
/// exit 1, and nothing more on stderr.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reported(pub String);

/// A backfill that could not complete some days: exit 1 (the contract's "anything else"),
/// each day named on stderr (they are not marked done; running it again reads them again).
#[derive(Debug, thiserror::Error)]
#[error("backfill could not complete {} source-days (not marked done; run the backfill again for them): {}", .0.len(), .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; "))]
pub struct BackfillIncomplete(pub Vec<crate::poll::backfill::Incomplete>);

/// The exit code of a command's error: 2 for a [`UsageError`] or a [`ConfigError`], 1 for
/// anything else (a [`BackfillIncomplete`] included). Only the outermost error counts: a config
/// error deep inside a run-time failure (say, a secret file that vanished after start)
/// stays a run-time failure.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.is::<UsageError>() || e.is::<ConfigError>() {
        USAGE
    } else {
        FAILED
    }
}

/// What the binary prints on stderr for a command's error (`None`: already reported).
pub fn message(e: &anyhow::Error) -> Option<String> {
    match e.is::<Reported>() {
        true => None,
        false => Some(format!("error: {e}")),
    }
}

/// Runs the command line.
pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    // The relay has a config file of its own (no [gitea]).
    if let Command::Relay { action } = &cli.command {
        return relay::dispatch(&cli.config, cli.log_format, action.clone()).await;
    }
    let is_check = matches!(cli.command, Command::Check);
    // `check` reports a bad config as one of its lines too; the error itself goes to stderr.
    let config_failed = |e: ConfigError| {
        if is_check {
            println!("FAIL config: {e}");
        }
        e
    };
    let config = Config::load(&cli.config).map_err(config_failed)?;
    let format = cli
        .log_format
        .or(config.log.format)
        .unwrap_or(LogFormat::Text);
    logging::init(format, Some(&config.log));
    if let Some(w) = config.inline_token_warning(&cli.config) {
        telemetry::log(telemetry::ConfigWarning { warning: &w });
    }
    for w in config.warnings() {
        telemetry::log(telemetry::ConfigWarning { warning: &w });
    }
    // What each command needs of the config beyond parsing: secrets readable for every
    // command that talks to Gitea or NATS; a source for `run`, `check` (it proves `run` will
    // work) and `backfill` without `--source`.
    let needs_sources = match &cli.command {
        Command::Run | Command::Check => true,
        Command::Backfill { sources, .. } => sources.is_empty(),
        _ => false,
    };
    config
        .check_secrets()
        .and_then(|()| match needs_sources {
            true => config.require_sources(),
            false => Ok(()),
        })
        .map_err(config_failed)?;
    match cli.command {
        Command::Run => {
            crate::run::run_with_reload(config, Some(cli.config.clone()), stop_signal())
                .await
                .map_err(|e| match e {
                    // A config error (exit 2), with the same message.
                    crate::run::RunError::Config(c) => anyhow::Error::new(c),
                    e => anyhow::Error::new(e),
                })
        }
        Command::Backfill {
            since,
            until,
            sources,
        } => backfill(config, since, until, sources).await,
        Command::Check => check::check(&cli.config, &config).await,
        Command::Cursors(CursorsCommand::List) => cursors::list(&config).await,
        Command::Cursors(CursorsCommand::Reset { spec }) => cursors::reset(&config, &spec).await,
        Command::Cursors(CursorsCommand::Pause { spec }) => cursors::pause(&config, &spec).await,
        Command::Cursors(CursorsCommand::Resume { spec }) => cursors::resume(&config, &spec).await,
        Command::Tail {
            filter,
            all,
            count,
            json,
            private,
        } => {
            let mut nats = config.nats.clone();
            if private {
                // The private stream, read as the public one is.
                nats.stream = nats.private_stream.clone();
                nats.subject_prefix = nats.private_subject_prefix.clone();
            }
            tail::tail(&nats, filter.as_deref(), all, count, json).await
        }
        // Dispatched above, before the sourcer's config is read.
        Command::Relay { .. } => Ok(()),
    }
}

async fn backfill(
    config: Config,
    since: chrono::NaiveDate,
    until: Option<chrono::NaiveDate>,
    sources: Vec<crate::source::SourceSpec>,
) -> anyhow::Result<()> {
    let until = until.unwrap_or_else(|| chrono::Utc::now().date_naive());
    if until < since {
        return Err(UsageError(format!("--until {until} is before --since {since}")).into());
    }
    let specs = match sources.is_empty() {
        true => config.sources().into_iter().map(|s| s.spec).collect(),
        false => sources,
    };
    let (trigger, shutdown) = crate::shutdown::channel();
    let work = async {
        let Some(services) =
            crate::run::connect(&config, &crate::telemetry::Telemetry::new(), &shutdown).await?
        else {
            return Ok(None);
        };
        let totals =
            crate::poll::backfill::backfill(&services.ctx, &specs, since, until, &shutdown).await?;
        anyhow::Ok(Some(totals))
    };
    tokio::pin!(work);
    // A signal stops the backfill at its next safe point (after a batch's ledger write).
    let result = tokio::select! {
        r = &mut work => r,
        _ = stop_signal() => {
            trigger.fire();
            work.await
        }
    };
    let Some(t) = result? else { return Ok(()) };
    let ended = match (t.stopped, t.incomplete.is_empty()) {
        (true, _) => "backfill stopped",
        (false, true) => "backfill done",
        (false, false) => "backfill incomplete",
    };
    say!(
        "{ended}: {} source-days, {} events published, {} already published",
        t.days,
        t.published,
        t.skipped
    );
    for day in &t.incomplete {
        say!("incomplete: {day}");
    }
    match t.incomplete.is_empty() {
        true => Ok(()),
        false => Err(BackfillIncomplete(t.incomplete).into()),
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                telemetry::log(telemetry::SigtermUnavailable { error: &e });
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_config_errors_exit_2_the_rest_1_and_reported_ones_print_nothing() {
        let config: anyhow::Error = crate::config::Config::parse("[gitea]\nurl = 3\n")
            .err()
            .map(anyhow::Error::new)
            .unwrap_or_else(|| anyhow::anyhow!("no config error"));
        assert_eq!(exit_code(&config), USAGE);
        let usage = anyhow::Error::new(UsageError("--until 1 is before --since 2".into()));
        assert_eq!(exit_code(&usage), USAGE);
        assert_eq!(
            message(&usage).as_deref(),
            Some("error: --until 1 is before --since 2")
        );
        let failed = anyhow::anyhow!("stream S: gone");
        assert_eq!(exit_code(&failed), FAILED);
        assert_eq!(message(&failed).as_deref(), Some("error: stream S: gone"));
        let reported = anyhow::Error::new(Reported("1 checks failed".into()));
        assert_eq!(exit_code(&reported), FAILED);
        assert_eq!(message(&reported), None);
    }

    #[test]
    fn an_incomplete_backfill_exits_1_and_names_each_day() {
        let incomplete = anyhow::Error::new(BackfillIncomplete(vec![
            crate::poll::backfill::Incomplete {
                source: crate::source::SourceSpec::Org("acme".into()),
                day: chrono::NaiveDate::from_ymd_opt(2025, 12, 3).unwrap_or_default(),
                unproven: 1_764_727_200,
                why: crate::poll::feed::walk::Why::Changed,
            },
        ]));
        assert_eq!(exit_code(&incomplete), FAILED);
        assert_eq!(
            message(&incomplete).as_deref(),
            Some(
                "error: backfill could not complete 1 source-days (not marked done; run the backfill again for them): org:acme 2025-12-03: second 2025-12-03T02:00:00+00:00 could not be proven whole (the feed changed while it was read (its X-Total-Count differed between reads): a row may have moved past the pages read)"
            )
        );
    }
}
