//! The keyspace of the cursor bucket (and of the `[ha]` lease bucket): every key is built
//! and read here, so that each maps to exactly one thing and back.
//!
//! | key | what |
//! |---|---|
//! | `repo/OWNER/NAME`, `org/NAME`, `user/NAME` | a source's cursor ([`super::cursor::Cursor`]) |
//! | `kind/KIND/OWNER/NAME` | a repository kind's cursor (`repo::KindCursor`) |
//! | `backfill/YYYY-MM-DD` | a server day's backfill ledger (`backfill::Ledger`) |
//! | `paused.SOURCE-KEY` | a source's pause mark ([`super::PauseMark`]) |
//! | `lease/SOURCE-KEY` | who holds a source (`[ha]` lease bucket) |
//!
//! Names are escaped ([`SourceSpec::kv_key`]): KV keys allow `[-/_=.A-Za-z0-9]`. A pause mark
//! is `paused.` and not `paused/` so that one watch of `paused.>` follows every mark and no
//! cursor key matches it.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

use crate::source::{SourceSpec, kv_escape, kv_unescape};

/// A key of the cursor or lease bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A source's cursor.
    Cursor(SourceSpec),
    /// The cursor of one kind of one repository.
    Kind {
        /// The kind's name (`config::RepoKind::name`).
        kind: String,
        /// The repository's owner, as Gitea names it.
        owner: String,
        /// The repository's name.
        name: String,
    },
    /// The backfill ledger of a server day.
    Ledger(NaiveDate),
    /// A source's pause mark.
    Paused(SourceSpec),
    /// A source's lease (in the `[ha]` lease bucket).
    Lease(SourceSpec),
}

/// The prefix of pause marks' keys.
const PAUSED: &str = "paused.";
/// The prefix of repository kinds' cursors.
const KIND: &str = "kind/";
/// The prefix of backfill ledgers.
const LEDGER: &str = "backfill/";
/// The prefix of leases.
const LEASE: &str = "lease/";
/// The date format of a ledger's day.
const DAY: &str = "%Y-%m-%d";

impl Key {
    /// The key of a repository kind's cursor.
    pub fn kind(kind: &str, owner: &str, name: &str) -> Key {
        Key::Kind {
            kind: kind.to_string(),
            owner: owner.to_string(),
            name: name.to_string(),
        }
    }

    /// The subject filter of every pause mark (`paused.>`), to watch them.
    pub fn every_pause() -> String {
        format!("{PAUSED}>")
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Cursor(spec) => f.write_str(&spec.kv_key()),
            Key::Kind { kind, owner, name } => {
                write!(f, "{KIND}{kind}/{}/{}", kv_escape(owner), kv_escape(name))
            }
            Key::Ledger(day) => write!(f, "{LEDGER}{}", day.format(DAY)),
            Key::Paused(spec) => write!(f, "{PAUSED}{}", spec.kv_key()),
            Key::Lease(spec) => write!(f, "{LEASE}{}", spec.kv_key()),
        }
    }
}

/// A string that is none of the bucket's keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a key of the cursor bucket")]
pub struct NotAKey(pub String);

impl FromStr for Key {
    type Err = NotAKey;

    fn from_str(key: &str) -> Result<Key, NotAKey> {
        let parsed = if let Some(rest) = key.strip_prefix(PAUSED) {
            SourceSpec::from_kv_key(rest).map(Key::Paused)
        } else if let Some(rest) = key.strip_prefix(LEASE) {
            SourceSpec::from_kv_key(rest).map(Key::Lease)
        } else if let Some(day) = key.strip_prefix(LEDGER) {
            NaiveDate::parse_from_str(day, DAY).ok().map(Key::Ledger)
        } else if let Some(rest) = key.strip_prefix(KIND) {
            kind(rest)
        } else {
            SourceSpec::from_kv_key(key).map(Key::Cursor)
        };
        parsed.ok_or_else(|| NotAKey(key.to_string()))
    }
}

/// `KIND/OWNER/NAME` of a kind's cursor key.
fn kind(rest: &str) -> Option<Key> {
    let mut parts = rest.split('/');
    let (kind, owner, name) = (parts.next()?, parts.next()?, parts.next()?);
    let named = !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase());
    if !named || parts.next().is_some() {
        return None;
    }
    Some(Key::kind(kind, &kv_unescape(owner)?, &kv_unescape(name)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> SourceSpec {
        s.parse().unwrap()
    }

    #[test]
    fn every_key_round_trips_and_todays_keys_parse() {
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        for (key, literal) in [
            (Key::Cursor(spec("repo:acme/widgets")), "repo/acme/widgets"),
            (Key::Cursor(spec("org:acme")), "org/acme"),
            (Key::Cursor(spec("user:bob_1")), "user/bob_1"),
            (
                Key::Cursor(spec("repo:alice/dot.files")),
                "repo/alice/dot=2Efiles",
            ),
            (
                Key::kind("issues", "acme", "widgets"),
                "kind/issues/acme/widgets",
            ),
            (
                Key::kind("actions", "acme", "dot.files"),
                "kind/actions/acme/dot=2Efiles",
            ),
            (Key::Ledger(day), "backfill/2026-10-01"),
            (
                Key::Paused(spec("repo:acme/widgets")),
                "paused.repo/acme/widgets",
            ),
            (Key::Paused(spec("org:acme")), "paused.org/acme"),
            (
                Key::Lease(spec("repo:acme/dot.files")),
                "lease/repo/acme/dot=2Efiles",
            ),
            (Key::Lease(spec("user:bob")), "lease/user/bob"),
        ] {
            assert_eq!(key.to_string(), literal);
            assert_eq!(literal.parse::<Key>(), Ok(key), "{literal}");
        }
        assert_eq!(Key::every_pause(), "paused.>");
    }

    #[test]
    fn other_strings_are_no_keys() {
        for s in [
            "backfill/2026-13-01",
            "backfill/",
            "org.acme",
            "kind/issues/acme",
            "kind/issues/acme/widgets/more",
            "kind//acme/widgets",
            "paused.kind/issues/acme/widgets",
            "lease/backfill/2026-10-01",
            "instance/web-1",
            "repo/acme",
            "",
        ] {
            assert_eq!(s.parse::<Key>(), Err(NotAKey(s.to_string())), "{s}");
        }
    }
}
