//! Errors of talking to Gitea, with the retry policy's view of each.

use std::time::Duration;

/// What went wrong with one request. Messages name the URL and status, never the token
/// (the token travels in a header, and URLs never carry it).
#[derive(Debug, thiserror::Error)]
pub enum GiteaError {
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("request to {url} timed out")]
    Timeout { url: String },
    #[error("{url} answered HTTP {status}{}", fmt_message(.message))]
    Status {
        url: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{url} sent a response that is not the expected JSON: {message}")]
    Decode { url: String, message: String },
    #[error("invalid request to Gitea: {0}")]
    Request(String),
}

fn fmt_message(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

impl GiteaError {
    /// Connect errors, timeouts, 429, 5xx and malformed bodies may pass; retry them.
    /// 401, 403, 404 and other client errors will not; report them instead.
    pub fn is_retryable(&self) -> bool {
        match self {
            GiteaError::Connect { .. } | GiteaError::Timeout { .. } | GiteaError::Decode { .. } => {
                true
            }
            GiteaError::Status { status, .. } => *status == 429 || (500..600).contains(status),
            GiteaError::Request(_) => false,
        }
    }

    /// The wait the server asked for with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GiteaError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The URL of the failed request (redacted), or empty when unknown.
    pub fn url(&self) -> &str {
        match self {
            GiteaError::Connect { url, .. }
            | GiteaError::Timeout { url }
            | GiteaError::Status { url, .. }
            | GiteaError::Decode { url, .. } => url.as_str(),
            GiteaError::Request(_) => "",
        }
    }

    /// HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GiteaError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short, fixed label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            GiteaError::Connect { .. } => "connect",
            GiteaError::Timeout { .. } => "timeout",
            GiteaError::Status { status: 429, .. } => "http_429",
            GiteaError::Status { status: 401, .. } => "http_401",
            GiteaError::Status { status: 403, .. } => "http_403",
            GiteaError::Status { status: 404, .. } => "http_404",
            GiteaError::Status { status, .. } if *status >= 500 => "http_5xx",
            GiteaError::Status { .. } => "http_4xx",
            GiteaError::Decode { .. } => "bad_json",
            GiteaError::Request(_) => "request",
        }
    }
}

/// Parses `Retry-After` ([`crate::retry::retry_after`]), capped at 10 minutes, so that a
/// misconfigured proxy cannot park a source for a day.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    const CAP: Duration = Duration::from_secs(600);
    crate::retry::retry_after(value, now, CAP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 17, 56, 20)
            .unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 17:56:28 GMT", now),
            Some(Duration::from_secs(8))
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 17:56:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999", now),
            Some(Duration::from_secs(600))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_policy() {
        let st = |status| GiteaError::Status {
            url: "u".into(),
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(st(429).is_retryable());
        assert!(st(503).is_retryable());
        assert!(!st(401).is_retryable());
        assert!(!st(404).is_retryable());
    }
}
