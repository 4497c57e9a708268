//! Logging: sets up `tracing` from the config and the command line.

use crate::config::{LogConfig, LogFormat};

/// Sets up `tracing`: `RUST_LOG` wins, then `[log] level`, then `info`. Logs go to stderr.
pub fn init(format: LogFormat, cfg: Option<&LogConfig>) {
    use tracing_subscriber::EnvFilter;
    let default = cfg
        .and_then(|c| c.level.clone())
        .unwrap_or_else(|| "info".into());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&default))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}
