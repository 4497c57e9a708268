//! `gitea-sim-serve`: the simulated Gitea on a free loopback port, with the org `acme`, its
//! repository `acme/widgets` and a few actions, until SIGTERM or SIGINT. Prints its URL as
//! the first line of stdout. For checks of the installed package (`scripts/check-deb` runs
//! the installed binary's `check` against it); never installed itself.

use std::io::Write as _;
use std::process::ExitCode;

use gitea_sim::{FakeGitea, NewAction, SimOptions};

#[tokio::main]
async fn main() -> ExitCode {
    let g = match FakeGitea::start(SimOptions::default()).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: cannot start the simulated Gitea: {e}");
            return ExitCode::FAILURE;
        }
    };
    g.add_org("acme");
    g.add_repo("acme", "widgets");
    for i in 0..3 {
        g.push_action(NewAction::push("alice", "acme/widgets", "main", i + 1));
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", g.url());
    let _ = out.flush();
    gitea_nats_sourcer::commands::stop_signal().await;
    ExitCode::SUCCESS
}
