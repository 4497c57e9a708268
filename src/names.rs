//! What logs, metrics labels, `sources.list` and dead letters call a repository. A private
//! repository's name is private data too: unless the operator allows it
//! (`log.name_private_repos = true`), a repository known to be private is shown as
//! `private-` and the first 8 bytes of the SHA-256 of its lower-case `owner/name`, in hex: the
//! same for every line and every instance (so lines about it can be told apart and followed),
//! and checkable by whoever knows the name (`printf %s owner/name | sha256sum`), but
//! not the name. A repository is learnt as private (or public) wherever its visibility is
//! read: an org's listing, a repository's own JSON, each published event, each relayed one.
//! One not learnt yet is shown as it is.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

/// The repositories known to be private, and whether they may be named.
#[derive(Debug, Default)]
pub struct RepoNames {
    /// `log.name_private_repos`.
    show_private: AtomicBool,
    /// Lower-case `owner/name`.
    private: RwLock<HashSet<String>>,
}

impl RepoNames {
    /// `log.name_private_repos`: whether private repositories are named as they are.
    pub fn name_private(&self, yes: bool) {
        self.show_private.store(yes, Ordering::Relaxed);
    }

    /// `owner/name` is private (or not, any more).
    pub fn learn(&self, full: &str, private: bool) {
        let key = full.to_lowercase();
        let known = self
            .private
            .read()
            .map(|s| s.contains(&key))
            .unwrap_or(false);
        if known == private {
            return;
        }
        if let Ok(mut s) = self.private.write() {
            match private {
                true => s.insert(key),
                false => s.remove(&key),
            };
        }
    }

    /// What may be shown for `owner/name`.
    pub fn shown<'a>(&self, full: &'a str) -> Cow<'a, str> {
        if self.show_private.load(Ordering::Relaxed) {
            return Cow::Borrowed(full);
        }
        let key = full.to_lowercase();
        let private = self
            .private
            .read()
            .map(|s| s.contains(&key))
            .unwrap_or(true);
        match private {
            true => Cow::Owned(hidden(&key)),
            false => Cow::Borrowed(full),
        }
    }

    /// [`RepoNames::shown`] of `owner` and `name`.
    pub fn shown_parts(&self, owner: &str, name: &str) -> String {
        self.shown(&format!("{owner}/{name}")).into_owned()
    }

    /// A source's name (`repo:owner/name`, `org:acme`), or a repository kind's cursor key
    /// (`kind/releases/owner/name`, what its batches are published as), with its
    /// repository shown as [`RepoNames::shown`] says.
    pub fn shown_source<'a>(&self, source: &'a str) -> Cow<'a, str> {
        let (head, full) = match source.strip_prefix("repo:") {
            Some(full) => ("repo:".to_string(), full),
            None => match source.strip_prefix("kind/").and_then(|k| k.split_once('/')) {
                Some((kind, full)) => (format!("kind/{kind}/"), full),
                None => return Cow::Borrowed(source),
            },
        };
        match self.shown(full) {
            Cow::Borrowed(_) => Cow::Borrowed(source),
            Cow::Owned(h) => Cow::Owned(format!("{head}{h}")),
        }
    }
}

/// `private-` and 16 hex digits of the SHA-256 of the lower-case name.
fn hidden(lower: &str) -> String {
    let d = Sha256::digest(lower.as_bytes());
    format!("private-{}", hex::encode(&d[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_repository_is_shown_by_a_hash_unless_allowed() {
        let n = RepoNames::default();
        assert_eq!(n.shown("acme/Secret"), "acme/Secret", "not known yet");
        n.learn("acme/Secret", true);
        let shown = n.shown("ACME/secret").into_owned();
        assert!(
            shown.starts_with("private-") && !shown.contains("secret"),
            "{shown}"
        );
        assert_eq!(shown, n.shown_parts("acme", "secret"));
        assert_eq!(n.shown_source("repo:acme/secret"), format!("repo:{shown}"));
        assert_eq!(n.shown_source("org:acme"), "org:acme");
        assert_eq!(
            n.shown_source("kind/releases/acme/secret"),
            format!("kind/releases/{shown}")
        );
        n.name_private(true);
        assert_eq!(n.shown("acme/secret"), "acme/secret");
        n.name_private(false);
        n.learn("acme/secret", false);
        assert_eq!(n.shown("acme/secret"), "acme/secret", "made public");
    }
}
