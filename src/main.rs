//! The binary: parse arguments, set up logging, hand over to the command.

use std::process::ExitCode;

use clap::Parser;
use gitea_nats_sourcer::cli::Cli;
use gitea_nats_sourcer::commands;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(commands::dispatch(cli).await)
}
