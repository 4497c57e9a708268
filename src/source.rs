//! Source specs: which Gitea feed a source polls, and how it is named everywhere
//! (`repo:OWNER/NAME`, `org:NAME`, `user:NAME` on the command line and in logs,
//! an escaped key in the cursor bucket, a path under `/api/v1`).

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The bytes a name is escaped at, in subject tokens and cursor keys: every byte outside
/// `[A-Za-z0-9_-]` (non-ASCII bytes always are), written as two upper-case hex digits.
pub(crate) const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-');

/// A feed of Gitea's activity API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceSpec {
    /// `/repos/{owner}/{name}/activities/feeds`: one repository's original rows.
    Repo { owner: String, name: String },
    /// `/orgs/{name}/activities/feeds`: the org's copies of its repositories' actions.
    Org(String),
    /// `/users/{name}/activities/feeds?only-performed-by=true`: the user's own actions.
    User(String),
}

/// A source spec that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{0:?} is not a source: write repo:OWNER/NAME, org:NAME or user:NAME")]
    Form(String),
    #[error("repo {0:?} must be written OWNER/NAME")]
    RepoForm(String),
    #[error("{0:?} is not a Gitea name: use letters, digits, '-', '_' and '.' (not first or last)")]
    Name(String),
    #[error("a [[source]] takes exactly one of org, repo and user")]
    OneKind,
}

fn check(name: &str) -> Result<String, SpecError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.');
    if ok {
        Ok(name.to_string())
    } else {
        Err(SpecError::Name(name.to_string()))
    }
}

impl SourceSpec {
    pub fn repo(owner: &str, name: &str) -> Result<Self, SpecError> {
        Ok(SourceSpec::Repo {
            owner: check(owner)?,
            name: check(name)?,
        })
    }
    pub fn org(name: &str) -> Result<Self, SpecError> {
        Ok(SourceSpec::Org(check(name)?))
    }
    pub fn user(name: &str) -> Result<Self, SpecError> {
        Ok(SourceSpec::User(check(name)?))
    }

    /// Path segments of the feed below `/api/v1`.
    pub fn feed_path(&self) -> Vec<&str> {
        match self {
            SourceSpec::Repo { owner, name } => vec!["repos", owner, name, "activities", "feeds"],
            SourceSpec::Org(o) => vec!["orgs", o, "activities", "feeds"],
            SourceSpec::User(u) => vec!["users", u, "activities", "feeds"],
        }
    }

    /// Path segments of the object this source is about (to check it is visible).
    pub fn object_path(&self) -> Vec<&str> {
        match self {
            SourceSpec::Repo { owner, name } => vec!["repos", owner, name],
            SourceSpec::Org(o) => vec!["orgs", o],
            SourceSpec::User(u) => vec!["users", u],
        }
    }

    /// Extra query parameters of the feed.
    pub fn feed_query(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            SourceSpec::User(_) => &[("only-performed-by", "true")],
            _ => &[],
        }
    }

    /// True for feeds that hold the original rows (`user_id == act_user_id`).
    pub fn reads_originals(&self) -> bool {
        !matches!(self, SourceSpec::Org(_))
    }

    /// This source in bucket keys (its cursor's key, and after a prefix its pause mark's
    /// and lease's: `store::Key`). KV keys allow `[-/_=.A-Za-z0-9]`; names are escaped so
    /// that every spec maps to exactly one valid key.
    pub fn kv_key(&self) -> String {
        match self {
            SourceSpec::Repo { owner, name } => {
                format!("repo/{}/{}", kv_escape(owner), kv_escape(name))
            }
            SourceSpec::Org(o) => format!("org/{}", kv_escape(o)),
            SourceSpec::User(u) => format!("user/{}", kv_escape(u)),
        }
    }

    /// The inverse of [`SourceSpec::kv_key`].
    pub fn from_kv_key(key: &str) -> Option<SourceSpec> {
        let mut parts = key.split('/');
        let spec = match (parts.next()?, parts.next(), parts.next()) {
            ("repo", Some(o), Some(n)) => SourceSpec::repo(&kv_unescape(o)?, &kv_unescape(n)?),
            ("org", Some(o), None) => SourceSpec::org(&kv_unescape(o)?),
            ("user", Some(u), None) => SourceSpec::user(&kv_unescape(u)?),
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        spec.ok()
    }
}

/// Escapes `.` (a token separator in KV subjects) as `=2E`, `=` itself, and every other byte
/// outside `[A-Za-z0-9_-]`: [`ESCAPED`] with `=` for `%` (a `%` in the name is escaped too, so
/// every `%` the encoder writes starts an escape).
pub(crate) fn kv_escape(name: &str) -> String {
    utf8_percent_encode(name, ESCAPED)
        .to_string()
        .replace('%', "=")
}

pub(crate) fn kv_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Repo { owner, name } => write!(f, "repo:{owner}/{name}"),
            SourceSpec::Org(o) => write!(f, "org:{o}"),
            SourceSpec::User(u) => write!(f, "user:{u}"),
        }
    }
}

impl FromStr for SourceSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| SpecError::Form(s.to_string()))?;
        match kind {
            "repo" => {
                let (owner, name) = rest
                    .split_once('/')
                    .ok_or_else(|| SpecError::RepoForm(rest.to_string()))?;
                SourceSpec::repo(owner, name)
            }
            "org" => SourceSpec::org(rest),
            "user" => SourceSpec::user(rest),
            _ => Err(SpecError::Form(s.to_string())),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn parse_display_and_kv_key_round_trip() {
        for s in ["repo:alice/dot.files", "org:acme", "user:bob_1"] {
            let spec: SourceSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
            assert_eq!(SourceSpec::from_kv_key(&spec.kv_key()), Some(spec));
        }
        assert_eq!(
            "repo:alice/dot.files"
                .parse::<SourceSpec>()
                .unwrap()
                .kv_key(),
            "repo/alice/dot=2Efiles"
        );
    }

    /// Names no Gitea accepts, but escaping must not care: dots, spaces, wildcards, the
    /// escape characters themselves, control bytes, UTF-8, every ASCII byte.
    pub(crate) fn awkward_names() -> Vec<String> {
        let mut names: Vec<String> = [
            "dot.files",
            "a b",
            "*",
            ">",
            "a.>",
            "a.*.b",
            "%",
            "%2E",
            "%%",
            "=",
            "=2E",
            "a=b",
            "",
            "-_",
            "A-z_09",
            ".",
            "..",
            "/",
            "a/b",
            "tab\t",
            "new\nline",
            "\0",
            "\u{7f}",
            "ü",
            "naïve.files",
            "日本語",
            "🎉 party",
            "\u{feff}bom",
            "~!@#$^&()+[]{}|\\:;\"'<>,?`",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        names.push((0u8..128).map(char::from).collect());
        names.push("x".repeat(300));
        names
    }

    /// `kv_escape` as it was before percent-encoding.
    fn old_kv_escape(name: &str) -> String {
        let mut out = String::with_capacity(name.len());
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                out.push(b as char);
            } else {
                out.push_str(&format!("={b:02X}"));
            }
        }
        out
    }

    #[test]
    fn kv_escape_is_what_it_was_and_unescapes_back() {
        for name in awkward_names() {
            let key = kv_escape(&name);
            assert_eq!(key, old_kv_escape(&name), "{name:?}");
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=')),
                "{name:?} -> {key:?}"
            );
            assert_eq!(
                kv_unescape(&key).as_deref(),
                Some(name.as_str()),
                "{name:?}"
            );
        }
        assert_eq!(kv_escape("dot.files"), "dot=2Efiles");
        assert_eq!(kv_escape("é="), "=C3=A9=3D");
    }

    #[test]
    fn bad_names_are_refused() {
        assert!("repo:alice".parse::<SourceSpec>().is_err());
        assert!("org:a b".parse::<SourceSpec>().is_err());
        assert!("org:a.>".parse::<SourceSpec>().is_err());
        assert!("team:x".parse::<SourceSpec>().is_err());
    }
}
