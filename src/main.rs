//! The binary: parse arguments, hand over to the command, print its error once and exit
//! with its code.

use std::process::ExitCode;

use clap::Parser;
use gitea_nats_sourcer::cli::Cli;
use gitea_nats_sourcer::commands;

/// jemalloc, not the system's malloc: the hot path allocates per event (rows, bodies,
/// subjects, ids), and glibc's malloc and free took a fifth of a catch-up's CPU
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::dispatch(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // The one place an error is printed (stderr is the log too: journald) and mapped to
        // its exit code.
        Err(e) => {
            if let Some(m) = commands::message(&e) {
                eprintln!("{m}");
            }
            ExitCode::from(commands::exit_code(&e))
        }
    }
}
