//! Logging: sets up `tracing` from the config and the command line.

use tracing_subscriber::fmt::MakeWriter;

use crate::config::{LogConfig, LogFormat};

/// Sets up `tracing`: `RUST_LOG` wins, then `[log] level`, then `info`. Logs go to stderr.
pub fn init(format: LogFormat, cfg: Option<&LogConfig>) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    init_with_writer(format, cfg, std::io::stderr, ansi);
}

/// Like [`init`], into `writer` (the demo's log file); `ansi`: colours in text lines.
pub fn init_with_writer<W>(format: LogFormat, cfg: Option<&LogConfig>, writer: W, ansi: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::EnvFilter;
    let default = cfg
        .and_then(|c| c.level.clone())
        .unwrap_or_else(|| "info".into());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&default))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
    };
}
