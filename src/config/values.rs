//! Value types of the TOML shared by every section: durations, byte sizes, names, URLs
//! shown without credentials.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{ConfigError, invalid};

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration like \"30s\": {e}")))
}

/// A byte count: an integer, or a string with a unit (`"512MiB"`, `"10GiB"`, `"1TB"`).
pub(super) fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(n),
        Raw::Text(s) => parse_byte_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a size like \"10GiB\", \"512MiB\" or a number of bytes"
            ))
        }),
    }
}

/// `url` (or a comma-separated list of URLs, as `nats.url`) without credentials
/// (`user:pass@`): what may be shown (`check`, errors, logs) or published (an event's
/// `source`, a hook's `compare_url`). The URL itself, credentials and all, is used only to
/// connect. Text that is not a URL loses everything between `://` and the last `@` of its
/// authority.
pub fn without_userinfo(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let trimmed = one.trim();
            match reqwest::Url::parse(trimmed) {
                Ok(mut u) if u.has_authority() => {
                    let _ = u.set_username("");
                    let _ = u.set_password(None);
                    let mut shown = u.to_string();
                    // `Url` adds a `/` to a bare authority: keep what was written.
                    if !trimmed.ends_with('/') && shown.ends_with('/') && u.path() == "/" {
                        shown.pop();
                    }
                    shown
                }
                _ => match trimmed.split_once("://") {
                    Some((scheme, rest)) => {
                        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                        let (authority, tail) = rest.split_at(end);
                        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                        format!("{scheme}://{host}{tail}")
                    }
                    None => trimmed
                        .rsplit_once('@')
                        .map_or(trimmed, |(_, h)| h)
                        .to_string(),
                },
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `"10GiB"`, `"512 MiB"`, `"1TB"`, `"4096"`.
pub fn parse_byte_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

pub(super) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// The one check of a NATS name the config gives (a stream, a bucket, a receiver's name,
/// `dots`: a subject prefix): letters, digits, `_` and `-`, and with `dots` `.` between
/// tokens; else an error naming `key`.
pub(crate) fn check_name(key: &str, value: &str, dots: bool) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        && (dots || !value.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!(
                "{value:?} may hold only letters, digits, '_' and '-'{}",
                if dots {
                    " (and '.' between tokens)"
                } else {
                    ""
                }
            ),
        ))
    }
}
