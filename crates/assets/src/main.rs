//! `gitea-nats-sourcer-assets OUT_DIR`: writes, from the sourcer's own clap definitions,
//! `OUT_DIR/man/gitea-nats-sourcer.1` and one page per subcommand
//! (`gitea-nats-sourcer-run.1`, `gitea-nats-sourcer-relay.1`, `gitea-nats-sourcer-relay-check.1`, ...),
//! and `OUT_DIR/completions/` for bash, zsh and fish. `scripts/package-deb` puts them in
//! the package.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use gitea_nats_sourcer::cli::Cli;

const BIN: &str = "gitea-nats-sourcer";

/// Writes the page of `cmd` (named `name`) and, below it, one page per subcommand.
fn man_pages(cmd: &clap::Command, name: &str, dir: &Path) -> std::io::Result<usize> {
    // clap names are `&'static str` (without its `string` feature, which would build the
    // sourcer's library a second time with other features); this tool runs once.
    let cmd = cmd.clone().name(&*name.to_string().leak());
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("1")
        .manual("gitea-nats-sourcer manual")
        .source(format!("gitea-nats-sourcer {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)?;
    std::fs::write(dir.join(format!("{name}.1")), out)?;
    let mut written = 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        written += man_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(written)
}

fn write(out: &Path) -> std::io::Result<(usize, usize)> {
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut cmd = Cli::command();
    cmd.build();
    let pages = man_pages(&cmd, BIN, &man)?;
    let mut shells = 0;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, BIN, &completions)?;
        shells += 1;
    }
    Ok((pages, shells))
}

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gitea-nats-sourcer-assets OUT_DIR");
        return ExitCode::from(2);
    };
    match write(&out) {
        Ok((pages, shells)) => {
            println!(
                "assets: {pages} man pages and {shells} shell completions in {}",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: writing into {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_gets_a_page_and_every_shell_a_completion() {
        let dir = std::env::temp_dir().join(format!("assets-test-{}", std::process::id()));
        let (pages, shells) = write(&dir).expect("written");
        assert_eq!(shells, 3);
        let page = std::fs::read_to_string(dir.join("man/gitea-nats-sourcer.1")).expect("page");
        assert!(page.contains(".TH gitea-nats-sourcer 1"), "{page}");
        assert!(page.contains("without webhooks"), "the about text: {page}");
        for sub in [
            "run",
            "check",
            "backfill",
            "cursors-reset",
            "relay",
            "relay-check",
        ] {
            let p = dir.join(format!("man/gitea-nats-sourcer-{sub}.1"));
            assert!(p.exists(), "{} missing", p.display());
        }
        assert!(pages >= 12, "{pages}");
        let bash = std::fs::read_to_string(dir.join("completions/gitea-nats-sourcer.bash"))
            .expect("bash completion");
        assert!(bash.contains("backfill") && bash.contains("--config"));
        assert!(dir.join("completions/_gitea-nats-sourcer").exists());
        assert!(dir.join("completions/gitea-nats-sourcer.fish").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
