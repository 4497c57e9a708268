//! The commands: each returns the process exit code (0 ok, 1 failure, 2 bad usage or config).

pub mod check;
pub mod cursors;
pub mod tail;

use crate::cli::{Cli, Command, CursorsCommand};
use crate::config::{Config, LogFormat};
use crate::logging;

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

/// Runs the command line.
pub async fn dispatch(cli: Cli) -> u8 {
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            if matches!(cli.command, Command::Check) {
                println!("FAIL config: {e}");
            }
            eprintln!("error: {e}");
            return USAGE;
        }
    };
    let format = cli
        .log_format
        .or(config.log.format)
        .unwrap_or(LogFormat::Text);
    logging::init(format, Some(&config.log));
    if let Some(w) = config.inline_token_warning(&cli.config) {
        tracing::warn!("{w}");
    }
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    // What each command needs of the config beyond parsing: secrets readable for every
    // command that talks to Gitea or NATS; a source for `run`, `check` (it proves `run` will
    // work) and `backfill` without `--source`.
    let needs_sources = match &cli.command {
        Command::Run | Command::Check => true,
        Command::Backfill { sources, .. } => sources.is_empty(),
        _ => false,
    };
    let prepared = config.check_secrets().and_then(|()| match needs_sources {
        true => config.require_sources(),
        false => Ok(()),
    });
    if let Err(e) = prepared {
        if matches!(cli.command, Command::Check) {
            println!("FAIL config: {e}");
        }
        eprintln!("error: {e}");
        return USAGE;
    }
    match cli.command {
        Command::Run => {
            let stop = async {
                stop_signal().await;
            };
            match crate::scheduler::run_with_reload(config, Some(cli.config.clone()), stop).await {
                Ok(()) => OK,
                // Printed once: stderr is the log too (journald).
                Err(e) => {
                    eprintln!("error: {e}");
                    match e {
                        crate::app::RunError::Config(_) => USAGE,
                        _ => FAILED,
                    }
                }
            }
        }
        Command::Backfill {
            since,
            until,
            sources,
        } => backfill(config, since, until, &sources).await,
        Command::Check => check::check(&cli.config, &config).await,
        Command::Cursors(CursorsCommand::List) => cursors::list(&config).await,
        Command::Cursors(CursorsCommand::Reset { spec }) => cursors::reset(&config, &spec).await,
        Command::Tail {
            filter,
            all,
            count,
            json,
        } => tail::tail(&config, filter.as_deref(), all, count, json).await,
    }
}

async fn backfill(
    config: Config,
    since: chrono::NaiveDate,
    until: Option<chrono::NaiveDate>,
    sources: &[String],
) -> u8 {
    let until = until.unwrap_or_else(|| chrono::Utc::now().date_naive());
    if until < since {
        eprintln!("error: --until {until} is before --since {since}");
        return USAGE;
    }
    let specs: Vec<crate::source::SourceSpec> = if sources.is_empty() {
        config.sources().into_iter().map(|s| s.spec).collect()
    } else {
        match sources
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: --source: {e}");
                return USAGE;
            }
        }
    };
    let (trigger, mut shutdown) = crate::shutdown::channel();
    let work = async {
        let Some(services) = crate::app::connect(&config, &mut shutdown.clone())
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        crate::backfill::backfill(&services.ctx, &specs, since, until, &mut shutdown)
            .await
            .map(Some)
            .map_err(|e| e.to_string())
    };
    tokio::pin!(work);
    // A signal stops the backfill at its next safe point (after a batch's ledger write).
    let result: Result<Option<crate::backfill::Totals>, String> = tokio::select! {
        r = &mut work => r,
        _ = stop_signal() => {
            trigger.fire();
            work.await
        }
    };
    match result {
        Ok(Some(t)) => {
            say!(
                "backfill done: {} source-days, {} events published, {} already published",
                t.days,
                t.published,
                t.skipped
            );
            OK
        }
        Ok(None) => OK,
        Err(e) => {
            eprintln!("error: {e}");
            FAILED
        }
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
                tracing::warn!("cannot listen for SIGTERM ({e}); only SIGINT stops the sourcer");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
