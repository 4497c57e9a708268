//! The command line, before a run: config warnings, signals.

use std::fmt::Display;

use super::Logged;

/// The log target of the command line's happenings (where they were logged before).
const COMMANDS: &str = "gitea_nats_sourcer::commands";

/// The config is valid but unwise (`Config::warnings`, an inline token).
pub struct ConfigWarning<'a> {
    /// The warning, as the config words it.
    pub warning: &'a str,
}

impl Logged for ConfigWarning<'_> {
    fn log(self) {
        let warning = self.warning;
        tracing::warn!(target: COMMANDS, "{warning}");
    }
}

/// SIGTERM cannot be listened for; only SIGINT stops the sourcer.
pub struct SigtermUnavailable<'a> {
    /// Why the signal handler could not be installed.
    pub error: &'a dyn Display,
}

impl Logged for SigtermUnavailable<'_> {
    fn log(self) {
        let error = self.error;
        tracing::warn!(target: COMMANDS, "cannot listen for SIGTERM ({error}); only SIGINT stops the sourcer");
    }
}
