//! Push payloads (the `content` of `commit_repo` and `push_tag` rows): Gitea-shaped
//! JSON rendered from a seed ([`GenPush`]) or from a counter. No world state.

use std::sync::OnceLock;

use chrono::SecondsFormat;
use serde::Serialize;

use crate::base::splitmix;

/// A push payload rendered on demand from a seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GenPush {
    pub(crate) seed: u64,
    /// Commits listed (1..=5, like Gitea's `FEED_MAX_COMMIT_NUM`); 0: a tag's push, whose
    /// `Commits` is `null` (see [`render_push`]).
    pub(crate) commits: u8,
    /// `Len`: commits pushed (may exceed `commits`).
    pub(crate) len: u16,
    /// Approximate JSON size to pad to.
    pub(crate) bytes: u32,
}

const SUBJECTS: &[&str] = &[
    "Fix off-by-one in pager",
    "Add retry with backoff",
    "Refactor config loading",
    "Update changelog",
    "Bump version",
    "Improve error messages",
    "Remove dead code",
];
const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
];

pub(crate) fn sha_hex(seed: u64, k: u64) -> String {
    let a = splitmix(seed ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let b = splitmix(a ^ seed.rotate_left(17));
    let c = splitmix(b.wrapping_add(k));
    format!("{a:016x}{b:016x}{:08x}", c >> 32)
}

/// Size of the precomputed filler text.
const LOREM_LEN: usize = 16 * 1024;

/// Filler text (ASCII words, a line break about every 70 characters), built once.
fn lorem() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut out = String::with_capacity(LOREM_LEN + 16);
        let mut x = 0x006c_6f72_656d_u64;
        let mut line = 0;
        while out.len() < LOREM_LEN {
            x = splitmix(x);
            let w = WORDS[usize::try_from(x % WORDS.len() as u64).unwrap_or(0)];
            if line + w.len() > 70 {
                out.push('\n');
                line = 0;
            } else if line > 0 {
                out.push(' ');
                line += 1;
            }
            out.push_str(w);
            line += w.len();
        }
        out
    })
}

/// About `len` bytes of filler text, deterministic in `seed`: a slice of
/// [`lorem`] (repeated when longer) after a blank line.
fn filler(seed: u64, len: usize) -> String {
    let text = lorem().as_bytes();
    let mut out = Vec::with_capacity(len + 2);
    out.extend_from_slice(b"\n\n");
    let mut off = usize::try_from(splitmix(seed) % (text.len() as u64 / 2)).unwrap_or(0);
    while out.len() < len {
        let take = (len - out.len()).min(text.len() - off);
        out.extend_from_slice(&text[off..off + take]);
        off = 0;
    }
    // The text is ASCII, so any byte slice of it is valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
struct PushCommit<'a> {
    sha1: String,
    message: String,
    author_email: &'a str,
    author_name: &'a str,
    committer_email: &'a str,
    committer_name: &'a str,
    timestamp: String,
}

#[derive(Serialize)]
struct PushPayload<'a> {
    /// `None` is written `null`: Go's nil slice, as in a tag's push.
    #[serde(rename = "Commits")]
    commits: Option<Vec<PushCommit<'a>>>,
    #[serde(rename = "HeadCommit")]
    head_commit: Option<PushCommit<'a>>,
    #[serde(rename = "CompareURL")]
    compare_url: String,
    #[serde(rename = "Len")]
    len: usize,
}

fn to_json(p: &PushPayload<'_>) -> String {
    // Plain structs of strings and integers: serialization cannot fail.
    serde_json::to_string(p).unwrap_or_else(|_| "{}".to_string())
}

/// Render a generated push payload (same bytes every time for the same inputs).
pub(crate) fn render_push(
    p: &GenPush,
    repo: &str,
    login: &str,
    name: &str,
    email: &str,
    created: chrono::DateTime<chrono::FixedOffset>,
) -> String {
    let name = if name.is_empty() { login } else { name };
    if p.commits == 0 {
        // A tag's push, as go-gitea/gitea services/feed/notifier.go `PushCommits` writes it
        // for a new tag (services/repository/push.go builds it with `NewPushCommits()`, an
        // empty `PushCommits` whose nil `Commits` marshals as `null`): the head commit, a
        // compare URL from the zero SHA, `Len` 0.
        let sha = sha_hex(p.seed, 0);
        let head = PushCommit {
            sha1: sha.clone(),
            message: "Release\n".to_string(),
            author_email: email,
            author_name: name,
            committer_email: email,
            committer_name: name,
            timestamp: created.to_rfc3339_opts(SecondsFormat::Secs, true),
        };
        return to_json(&PushPayload {
            commits: None,
            head_commit: Some(head),
            compare_url: format!("{repo}/compare/{}...{sha}", "0".repeat(40)),
            len: 0,
        });
    }
    let n = usize::from(p.commits.max(1));
    let mut commits: Vec<PushCommit<'_>> = (0..n)
        .map(|k| {
            let subject = SUBJECTS
                [usize::try_from(splitmix(p.seed ^ k as u64) % SUBJECTS.len() as u64).unwrap_or(0)];
            PushCommit {
                sha1: sha_hex(p.seed, k as u64),
                message: format!("{subject} ({})\n", k + 1),
                author_email: email,
                author_name: name,
                committer_email: email,
                committer_name: name,
                timestamp: (created - chrono::Duration::seconds(97 * k as i64))
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
            }
        })
        .collect();
    let old = sha_hex(p.seed, 1_000_003);
    let compare_url = format!("{repo}/compare/{old}...{}", commits[0].sha1);
    let len = usize::from(p.len).max(n);
    let mut payload = PushPayload {
        head_commit: Some(commits[0].clone()),
        commits: None,
        compare_url,
        len,
    };
    payload.commits = Some(std::mem::take(&mut commits));
    let target = usize::try_from(p.bytes).unwrap_or(0);
    let first = to_json(&payload);
    if target <= first.len() {
        return first;
    }
    let remaining = target - first.len();
    let list = payload.commits.get_or_insert_with(Vec::new);
    if n == 1 {
        let pad = filler(p.seed, remaining / 2);
        if let Some(c) = list.first_mut() {
            c.message.push_str(&pad);
        }
        if let Some(h) = payload.head_commit.as_mut() {
            h.message.push_str(&pad);
        }
    } else {
        let per = remaining / (n - 1);
        for (k, c) in list.iter_mut().enumerate().skip(1) {
            c.message.push_str(&filler(p.seed ^ k as u64, per));
        }
    }
    to_json(&payload)
}

/// The push JSON of a new tag whose ref points at `object` (the commit itself for a
/// lightweight tag, the tag object for an annotated one) on commit `commit`, as
/// go-gitea/gitea services/repository/push.go `pushUpdates` builds it (`NewPushCommits()`
/// with `HeadCommit` the commit and `CompareURL` from the zero SHA to the ref's new value)
/// and services/feed/notifier.go `PushCommits` marshals it: `Commits` is a nil slice
/// (`null`), `Len` 0. The commit's author is the pusher.
pub(crate) fn tag_push_json(repo: &str, actor: &str, commit: &str, object: &str) -> String {
    let email = format!("{actor}@noreply.example.org");
    let head = PushCommit {
        sha1: commit.to_string(),
        message: "Release\n".to_string(),
        author_email: &email,
        author_name: actor,
        committer_email: &email,
        committer_name: actor,
        timestamp: "2025-01-01T00:00:00Z".to_string(),
    };
    to_json(&PushPayload {
        commits: None,
        head_commit: Some(head),
        compare_url: format!("{repo}/compare/{}...{object}", "0".repeat(40)),
        len: 0,
    })
}

/// The push JSON of a forced push of a branch from `old` back to `new`, one of its
/// ancestors (go-gitea/gitea services/repository/push.go `pushUpdates`: the commits between
/// them, `CommitsBeforeUntil(old)`, are none; the head commit is the new one).
pub(crate) fn forced_push_json(repo: &str, actor: &str, old: &str, new: &str) -> String {
    let email = format!("{actor}@noreply.example.org");
    let head = PushCommit {
        sha1: new.to_string(),
        message: "Earlier commit\n".to_string(),
        author_email: &email,
        author_name: actor,
        committer_email: &email,
        committer_name: actor,
        timestamp: "2025-01-01T00:00:00Z".to_string(),
    };
    to_json(&PushPayload {
        commits: Some(Vec::new()),
        head_commit: Some(head),
        compare_url: format!("{repo}/compare/{old}...{new}"),
        len: 0,
    })
}

/// The push JSON of a deleted tag, as go-gitea/gitea services/repository/push.go
/// `pushUpdates` writes it (`PushCommits(..., NewPushCommits())`: no commits, no head, no
/// compare URL); the old SHA is not in it.
pub(crate) const DELETED_TAG_PUSH_JSON: &str =
    r#"{"Commits":null,"HeadCommit":null,"CompareURL":"","Len":0}"#;

/// The push JSON of [`NewAction::push`](crate::NewAction::push): built from a counter, no rng, no clock.
pub(crate) fn counter_push_json(
    counter: u64,
    actor: &str,
    repo: &str,
    branch: &str,
    n_commits: usize,
) -> String {
    counter_push_json_from(
        counter,
        actor,
        repo,
        branch,
        n_commits,
        &sha_hex(counter, 1_000_003),
    )
}

/// [`counter_push_json`] of a push whose ref was at `old` before (its compare URL's base:
/// go-gitea/gitea services/repository/push.go `pushUpdates`, `CompareURL` from the old to
/// the new commit; zeros for a new branch).
pub(crate) fn counter_push_json_from(
    counter: u64,
    actor: &str,
    repo: &str,
    branch: &str,
    n_commits: usize,
    old: &str,
) -> String {
    let email = format!("{actor}@noreply.example.org");
    let base = 1_735_689_600 + i64::try_from(counter).unwrap_or(0) * 60;
    let all: Vec<PushCommit<'_>> = (0..n_commits)
        .map(|k| PushCommit {
            sha1: sha_hex(counter, k as u64),
            message: format!("commit {} of push {counter} to {branch}\n", n_commits - k),
            author_email: &email,
            author_name: actor,
            committer_email: &email,
            committer_name: actor,
            timestamp: chrono::DateTime::from_timestamp(base - k as i64, 0)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_default(),
        })
        .collect();
    let head = all.first().cloned();
    let new = head.as_ref().map_or_else(String::new, |h| h.sha1.clone());
    let payload = PushPayload {
        compare_url: format!("{repo}/compare/{old}...{new}"),
        commits: Some(all.into_iter().take(5).collect()),
        head_commit: head,
        len: n_commits,
    };
    to_json(&payload)
}
