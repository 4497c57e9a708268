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
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

/// The repositories whose visibility is known (or assumed), and whether private ones may be
/// named.
#[derive(Debug, Default)]
pub struct RepoNames {
    /// `log.name_private_repos`.
    show_private: AtomicBool,
    /// Lower-case `owner/name` to private (true) or public.
    known: RwLock<HashMap<String, bool>>,
}

impl RepoNames {
    /// `log.name_private_repos`: whether private repositories are named as they are.
    pub fn name_private(&self, yes: bool) {
        self.show_private.store(yes, Ordering::Relaxed);
    }

    /// `owner/name` is private (or public).
    pub fn learn(&self, full: &str, private: bool) {
        let key = full.to_lowercase();
        if self.is_private(&key) == Some(private) {
            return;
        }
        if let Ok(mut m) = self.known.write() {
            m.insert(key, private);
        }
    }

    /// `owner/name` is private until learnt otherwise (a configured `repo:` source, named
    /// before anything was read of it).
    pub fn assume_private(&self, full: &str) {
        if let Ok(mut m) = self.known.write() {
            m.entry(full.to_lowercase()).or_insert(true);
        }
    }

    fn is_private(&self, lower: &str) -> Option<bool> {
        // A poisoned lock (a panic elsewhere) hides every name: the safe side.
        match self.known.read() {
            Ok(m) => m.get(lower).copied(),
            Err(_) => Some(true),
        }
    }

    /// What may be shown for `owner/name`.
    pub fn shown<'a>(&self, full: &'a str) -> Cow<'a, str> {
        self.shown_as(full, false)
    }

    /// What may be shown for `owner/name` of an event that says it is `private` (or of a
    /// repository known to be).
    pub fn shown_as<'a>(&self, full: &'a str, private: bool) -> Cow<'a, str> {
        if self.show_private.load(Ordering::Relaxed) {
            return Cow::Borrowed(full);
        }
        let key = full.to_lowercase();
        match private || self.is_private(&key) == Some(true) {
            true => Cow::Owned(hidden(&key)),
            false => Cow::Borrowed(full),
        }
    }

    /// An event's subject (`{prefix}.{owner}.{repo}.{type}`, names escaped) with a private
    /// repository's two tokens replaced by its hidden name.
    pub fn shown_subject<'a>(&self, subject: &'a str) -> Cow<'a, str> {
        let t: Vec<&str> = subject.splitn(4, '.').collect();
        let [prefix, owner, repo, rest] = t[..] else {
            return Cow::Borrowed(subject);
        };
        let un = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        match self.shown(&format!("{}/{}", un(owner), un(repo))) {
            Cow::Borrowed(_) => Cow::Borrowed(subject),
            Cow::Owned(h) => Cow::Owned(format!("{prefix}.{h}.{rest}")),
        }
    }

    /// `text` (a URL, an error) with every private repository it names as `owner/name`
    /// replaced by what [`RepoNames::shown`] shows.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.show_private.load(Ordering::Relaxed) {
            return Cow::Borrowed(text);
        }
        let Ok(m) = self.known.read() else {
            return Cow::Owned("(hidden)".to_string());
        };
        let lower = text.to_lowercase();
        let mut out = Cow::Borrowed(text);
        for (name, _) in m.iter().filter(|(_, p)| **p) {
            if lower.contains(name.as_str()) {
                out = Cow::Owned(replace_ci(&out, name, &hidden(name)));
            }
        }
        out
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

/// `text` with every ASCII-case-insensitive occurrence of `lower` replaced by `with`.
fn replace_ci(text: &str, lower: &str, with: &str) -> String {
    let hay = text.to_lowercase();
    // Lower-casing may change byte lengths outside ASCII: then match exactly only.
    if hay.len() != text.len() {
        return text.replace(lower, with);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(i) = hay[at..].find(lower) {
        out.push_str(&text[at..at + i]);
        out.push_str(with);
        at += i + lower.len();
    }
    out.push_str(&text[at..]);
    out
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
        assert_eq!(
            n.scrub("GET https://g/api/v1/repos/Acme/Secret/releases: 500"),
            format!("GET https://g/api/v1/repos/{shown}/releases: 500")
        );
        assert_eq!(
            n.shown_subject("gitea_private.acme.secret.hook.push"),
            format!("gitea_private.{shown}.hook.push")
        );
        n.learn("acme/secret", false);
        assert_eq!(n.shown("acme/secret"), "acme/secret", "made public");
        assert_eq!(
            n.shown_as("acme/secret", true),
            shown,
            "an event that says private"
        );
        n.assume_private("acme/other");
        assert!(n.shown("acme/other").starts_with("private-"));
        n.learn("acme/other", false);
        n.assume_private("acme/other");
        assert_eq!(n.shown("acme/other"), "acme/other", "learnt beats assumed");
    }
}
