//! Secrets: [`Secret`], a value never printed, and the one reader of secret files.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::{ConfigError, invalid};

/// A secret value (a token, a password, a webhook secret, a URL that may carry one): never
/// printed by `Debug` or `Display`, and its memory overwritten with zeros when dropped
/// (`zeroize`), so that a core dump or a reused allocation does not keep it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    /// Reads the secret file at `path` (a relative one in `$CREDENTIALS_DIRECTORY`, see
    /// [`secret_path`]): its first line, surrounding white space removed. A missing or
    /// unreadable file, or an empty first line, is an error naming `key` and the path.
    pub fn read_file(key: &str, path: &Path) -> Result<Secret, ConfigError> {
        let path = &secret_path(path);
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Secret {
            key: key.to_string(),
            path: path.clone(),
            source,
        })?;
        let value = text.lines().next().unwrap_or("").trim();
        if value.is_empty() {
            return Err(invalid(key, format!("{} is empty", path.display())));
        }
        Ok(Secret::new(value))
    }

    pub fn new(value: impl Into<String>) -> Self {
        Secret(zeroize::Zeroizing::new(value.into()))
    }
    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret file really is: a relative path is looked up in systemd's
/// `$CREDENTIALS_DIRECTORY` (`LoadCredential=`) when it is set, else taken as given.
pub fn secret_path(path: &Path) -> PathBuf {
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if path.is_relative() => Path::new(&dir).join(path),
        _ => path.to_owned(),
    }
}
