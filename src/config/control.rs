//! `[control]`: the NATS micro control service.

use serde::Deserialize;

use super::{ConfigError, NatsConfig, check_name, invalid};

/// `[control]`: a NATS micro service (`nats micro ls` lists it) through which an operator
/// lists the sources and their state, pauses, resumes or resets one, or starts a backfill.
/// Who may do what is decided by NATS: the subjects a user may publish to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Serve it; off by default (the sourcer's NATS user then needs to subscribe to
    /// `{subject}.>` and `$SRV.>`, with `allow_responses`).
    #[serde(default)]
    pub enabled: bool,
    /// Subject prefix of the endpoints (`{subject}.sources.list`, ...); not below
    /// `nats.subject_prefix`, whose subjects the stream stores.
    #[serde(default = "default_control_subject")]
    pub subject: String,
    /// The longest range `backfill` starts: `since` at most this many days before `until`
    /// (a wider one is refused, so a typo in a year cannot read Gitea for years); at least 1.
    #[serde(default = "default_max_backfill_days")]
    pub max_backfill_days: u32,
}

fn default_control_subject() -> String {
    "gitea_control".into()
}
fn default_max_backfill_days() -> u32 {
    366
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            enabled: false,
            subject: default_control_subject(),
            max_backfill_days: default_max_backfill_days(),
        }
    }
}

impl ControlConfig {
    /// Checks the prefix: a valid subject, outside the stream's subjects.
    pub fn validate(&self, nats: &NatsConfig) -> Result<(), ConfigError> {
        check_name("control.subject", &self.subject, true)?;
        if self.max_backfill_days == 0 {
            return Err(invalid(
                "control.max_backfill_days",
                "must be at least 1 (the days a backfill may span)",
            ));
        }
        let events = format!("{}.", nats.subject_prefix);
        if self.subject == nats.subject_prefix || self.subject.starts_with(&events) {
            return Err(invalid(
                "control.subject",
                format!(
                    "must not be below nats.subject_prefix {:?}: the stream would store the requests",
                    nats.subject_prefix
                ),
            ));
        }
        Ok(())
    }
}
