//! `[gitea]`: the server, its token and the request budget towards it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Secret, duration, invalid, without_userinfo};

/// `[gitea]`: the server and the request budget towards it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiteaConfig {
    /// Base URL of the Gitea web UI; a path prefix (sub-URL install) is kept.
    pub url: String,
    /// File holding the API token (first line; surrounding white space is ignored). A
    /// relative path is looked up in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`),
    /// as are the NATS secret files; a missing, unreadable or empty one is a config error.
    pub token_file: Option<PathBuf>,
    /// Name of an environment variable holding the API token.
    pub token_env: Option<String>,
    /// The token inline. Discouraged: prefer `token_file` or `token_env` (a warning is logged
    /// if the config file is readable by other users). At most one of `token`, `token_file`
    /// and `token_env`; none of them: anonymous requests.
    pub token: Option<Secret>,
    /// Sustained requests per second towards Gitea, shared by every source.
    #[serde(default = "default_rps")]
    pub requests_per_second: u32,
    /// Requests allowed at once above the sustained rate.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Time limit of one HTTP request (connect, send, read the whole body).
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// CA certificate file (PEM) to verify Gitea's TLS certificate, beside the system roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Skip verifying Gitea's TLS certificate. Dangerous; a warning is logged at every start.
    #[serde(default)]
    pub tls_insecure_skip_verify: bool,
    /// Gitea's `[service] NO_REPLY_ADDRESS`: users' e-mail addresses are published as Gitea's
    /// webhooks show them, `{login}@{no_reply_address}`, and admin-only fields (`is_admin`,
    /// `login_name`, `last_login`, `language`, ...) at their zero values, whatever the token
    /// may read. Default: `noreply.` and the host of `url` (Gitea's default, `noreply.` and
    /// its `DOMAIN`).
    pub no_reply_address: Option<String>,
    /// Gitea's `[service] REQUIRE_SIGNIN_VIEW = true`: nothing is readable anonymously, so
    /// every event is a private repository's and goes to the private stream (the API does not
    /// tell this setting).
    #[serde(default)]
    pub require_signin_view: bool,
    /// How often one request is retried (connect errors, timeouts, 429, 5xx, bad JSON)
    /// before the poll gives up until its next turn.
    #[serde(default = "default_retries")]
    pub max_retries: usize,
}

fn default_rps() -> u32 {
    5
}
fn default_burst() -> u32 {
    10
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_retries() -> usize {
    5
}

impl GiteaConfig {
    /// Checks what the types alone cannot: the URL, one token source, positive budgets.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            invalid(
                "gitea.url",
                format!("{:?} is not a URL: {e}", without_userinfo(&self.url)),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("gitea.url", "must start with http:// or https://"));
        }
        let token_sources = [
            self.token.is_some(),
            self.token_file.is_some(),
            self.token_env.is_some(),
        ];
        if token_sources.iter().filter(|b| **b).count() > 1 {
            return Err(invalid(
                "gitea.token_file",
                "give at most one of token, token_file and token_env",
            ));
        }
        if self.requests_per_second == 0 {
            return Err(invalid("gitea.requests_per_second", "must be at least 1"));
        }
        if self.burst == 0 {
            return Err(invalid("gitea.burst", "must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(invalid("gitea.timeout", "must be longer than 0s"));
        }
        Ok(())
    }

    /// The domain of users' placeholder e-mail addresses (`no_reply_address`, else
    /// `noreply.` and the host of `url`).
    pub fn no_reply(&self) -> String {
        match &self.no_reply_address {
            Some(a) => a.clone(),
            None => {
                let host = reqwest::Url::parse(&self.url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| "localhost".to_string());
                format!("noreply.{host}")
            }
        }
    }

    /// Reads the API token from wherever the config says, if anywhere.
    pub fn token(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(path) = &self.token_file {
            return Secret::read_file("gitea.token_file", path).map(Some);
        }
        if let Some(var) = &self.token_env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
                _ => Err(invalid(
                    "gitea.token_env",
                    format!("environment variable {var} is not set or empty"),
                )),
            };
        }
        Ok(self.token.clone())
    }
}
