//! Random activity: bulk history ([`FakeGitea::generate_history`](crate::FakeGitea::generate_history)) and the actions of
//! live activity ([`FakeGitea::spawn_activity`](crate::FakeGitea::spawn_activity), whose loop is in `lib.rs`).
//!
//! Generated pushes do not store their JSON: they keep a seed ([`GenPush`]) and
//! re-render the same payload whenever a page or [`FakeGitea::logical_actions`](crate::FakeGitea::logical_actions)
//! needs it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::base::{TOKEN_USER, splitmix};
use crate::push::GenPush;
use crate::rows::{ActionSpec, CommentData, Content, truncate_comment};
use crate::world::World;

const ORG_NAMES: &[&str] = &["acme", "globex", "initech", "umbrella", "hooli", "stark"];
const USER_NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar",
];
const REPO_NAMES: &[&str] = &[
    "widgets",
    "dot.files",
    "api-server",
    "frontend",
    "infra",
    "docs",
    "cli",
    "sdk-go",
];
const TITLES: &[&str] = &[
    "Crash when parsing a|b pipes",
    "Build fails on ARM",
    "Docs: typo in README",
    "Feature: dark mode",
    "Flaky test in CI | retries needed",
    "Memory leak in worker pool",
    "Upgrade dependencies",
    "Support sub-URL installs",
    "Ünïcödé in branch names breaks the feed",
];
const COMMENTS: &[&str] = &[
    "LGTM",
    "Can you add a test for this?",
    "I can reproduce this on main.\n\nSteps:\n1. run it\n2. watch it fail",
    "Fixed in the latest push | please re-check",
    "This is a rather long comment that goes on and on about the details of the change, \
     the reasons behind it, the alternatives that were considered and rejected, and why the \
     chosen approach is, all things considered, the least bad of them; it is longer than two \
     hundred characters so the feed row carries only its beginning.",
    "👍 works for me",
];

/// `names[i]`, then `names[i % len]` with a numeric suffix once they run out.
fn numbered(names: &[&str], i: usize) -> String {
    let base = names.get(i % names.len().max(1)).copied().unwrap_or("x");
    let round = i / names.len().max(1);
    if round == 0 {
        base.to_string()
    } else {
        format!("{base}-{round}")
    }
}

fn title(index: i64) -> &'static str {
    let i = usize::try_from(index.rem_euclid(TITLES.len() as i64)).unwrap_or(0);
    TITLES.get(i).copied().unwrap_or("Untitled")
}

/// Insert one random action on `repo` by `actor` at `created`.
pub(crate) fn random_action(
    w: &mut World,
    rng: &mut StdRng,
    repo: i64,
    actor: i64,
    created: i64,
    payload_bytes: usize,
    live: bool,
) {
    let mut st = w.repo_gen.remove(&repo).unwrap_or_default();
    if st.next_index == 0 {
        st.next_index = 1;
    }
    let bytes = u32::try_from(payload_bytes).unwrap_or(u32::MAX);
    let mut comment = None;
    let mut comment_id = 0;
    let mut ref_name = String::new();
    let mut content = Content::Text("".into());
    let roll = rng.random_range(0..100u32);
    let op = match roll {
        0..40 => {
            let commits = rng.random_range(1..=5u8);
            let len = if rng.random_bool(0.1) {
                rng.random_range(6..=40u16)
            } else {
                u16::from(commits)
            };
            content = Content::Push(GenPush {
                seed: rng.random(),
                commits,
                len,
                bytes,
            });
            ref_name = if rng.random_bool(0.7) || st.branches == 0 {
                "refs/heads/main".to_string()
            } else {
                format!("refs/heads/feature-{}", rng.random_range(1..=st.branches))
            };
            "commit_repo"
        }
        40..50 => {
            let idx = st.next_index;
            st.next_index += 1;
            st.open_issues.push(idx);
            content = Content::Text(format!("{idx}|{}", title(idx)).into());
            "create_issue"
        }
        50..66 => {
            let (idx, is_pull) = if !st.open_prs.is_empty() && rng.random_bool(0.3) {
                (st.open_prs[rng.random_range(0..st.open_prs.len())], true)
            } else if !st.open_issues.is_empty() {
                (
                    st.open_issues[rng.random_range(0..st.open_issues.len())],
                    false,
                )
            } else {
                let idx = st.next_index;
                st.next_index += 1;
                st.open_issues.push(idx);
                (idx, false)
            };
            let body = COMMENTS[rng.random_range(0..COMMENTS.len())];
            comment_id = w.alloc_comment_id();
            content = Content::Text(format!("{idx}|{}", truncate_comment(body)).into());
            comment = Some(Box::new(CommentData {
                id: comment_id,
                body: body.into(),
                issue_index: idx,
                is_pull,
                updated: 0,
            }));
            if is_pull {
                "comment_pull"
            } else {
                "comment_issue"
            }
        }
        66..71 if !st.open_issues.is_empty() => {
            let i = rng.random_range(0..st.open_issues.len());
            let idx = st.open_issues.swap_remove(i);
            st.closed_issues.push(idx);
            content = Content::Text(format!("{idx}|").into());
            "close_issue"
        }
        71..73 if !st.closed_issues.is_empty() => {
            let i = rng.random_range(0..st.closed_issues.len());
            let idx = st.closed_issues.swap_remove(i);
            st.open_issues.push(idx);
            content = Content::Text(format!("{idx}|").into());
            "reopen_issue"
        }
        66..80 => {
            let idx = st.next_index;
            st.next_index += 1;
            st.open_prs.push(idx);
            content = Content::Text(format!("{idx}|{}", title(idx)).into());
            "create_pull_request"
        }
        80..86 if !st.open_prs.is_empty() => {
            let i = rng.random_range(0..st.open_prs.len());
            let idx = st.open_prs.swap_remove(i);
            content = Content::Text(format!("{idx}|{}", title(idx)).into());
            "merge_pull_request"
        }
        80..89 => {
            st.releases += 1;
            let tag = format!("v1.{}.0", st.releases);
            content = Content::Text(format!("Release {tag}").into());
            ref_name = format!("refs/tags/{tag}");
            "publish_release"
        }
        89..91 => {
            st.releases += 1;
            ref_name = format!("refs/tags/v1.{}.0-rc1", st.releases);
            // A tag's push: `Commits` null (see `push::render_push`).
            content = Content::Push(GenPush {
                seed: rng.random(),
                commits: 0,
                len: 0,
                bytes: 0,
            });
            "push_tag"
        }
        // No Gitea or Forgejo code writes `star_repo` or `watch_repo` rows (the types exist;
        // go-gitea/gitea services/feed/notifier.go has no notifier for them): a tag deleted
        // instead, whose push JSON has neither commits nor head (services/repository/push.go
        // `PushCommits(..., NewPushCommits())` for a deleted tag).
        91..96 => {
            ref_name = format!("refs/tags/v1.{}.0-rc1", st.releases.max(1));
            content = Content::Text(crate::push::DELETED_TAG_PUSH_JSON.into());
            "delete_tag"
        }
        96..98 => {
            // A new branch without commits: a push row with empty content.
            st.branches += 1;
            ref_name = format!("refs/heads/feature-{}", st.branches);
            "commit_repo"
        }
        _ => {
            if st.branches == 0 {
                st.branches = 1;
            }
            ref_name = format!("refs/heads/feature-{}", rng.random_range(1..=st.branches));
            "delete_branch"
        }
    };
    w.repo_gen.insert(repo, st);
    let op = w.op_id(op);
    let copy_delay = i64::from(rng.random_bool(0.1));
    let spec = ActionSpec {
        op,
        actor,
        repo,
        content,
        ref_name: ref_name.into(),
        comment_id,
        comment,
        created,
        copy_delay,
        visible: true,
    };
    // Live activity leaves out a repeat of an identical action within three seconds (a star
    // starred again, a branch deleted twice): it would test the documented limit of telling
    // repeats from copies, not what the tests are about. Tests of that limit push their own.
    if live && w.near_repeat(&spec, 3) {
        return;
    }
    w.insert(spec);
}

/// Bulk history, deterministic from `seed` (and the number of earlier calls), in
/// `[start, end]` (Unix seconds), or over `spec.days` ending a few seconds before now.
pub(crate) fn generate_history(
    w: &mut World,
    spec: &HistorySpec,
    seed: u64,
    between: Option<(i64, i64)>,
) -> usize {
    let mut rng = StdRng::seed_from_u64(splitmix(seed ^ 0x6869_7374) ^ splitmix(w.gen_calls));
    w.gen_calls += 1;
    let orgs: Vec<i64> = (0..spec.orgs)
        .map(|i| w.add_org(&numbered(ORG_NAMES, i)))
        .collect();
    let users: Vec<i64> = (0..spec.repos.clamp(3, 12))
        .map(|i| w.add_user(&numbered(USER_NAMES, i)))
        .collect();
    let n_repos = if spec.actions > 0 {
        spec.repos.max(1)
    } else {
        spec.repos
    };
    let repos: Vec<i64> = (0..n_repos)
        .map(|j| {
            let owner = if orgs.is_empty() {
                users[j % users.len()]
            } else {
                orgs[j % orgs.len()]
            };
            w.add_repo_for(owner, &numbered(REPO_NAMES, j))
        })
        .collect();
    for &r in &repos {
        if rng.random_bool(0.3) {
            let u = users[rng.random_range(0..users.len())];
            w.add_watcher_id(r, u);
        }
    }
    if spec.actions == 0 {
        return 0;
    }

    let (start, end) = match between {
        Some((start, end)) => (start.min(end), start.max(end)),
        None => {
            let end = w.now().timestamp() - 3;
            (end - i64::from(spec.days.max(1)) * 86_400, end)
        }
    };
    // At least one second, so that every slot is inside `[start, end]`.
    let span = (end - start).max(1);
    let mut sizes: Vec<u8> = Vec::new();
    let mut left = spec.actions;
    while left > 0 {
        let s = if spec.ties && rng.random_bool(0.25) {
            rng.random_range(2..=4usize)
        } else {
            1
        }
        .min(left);
        sizes.push(u8::try_from(s).unwrap_or(1));
        left -= s;
    }
    let slot = span as f64 / sizes.len() as f64;
    let mut made = 0;
    for (g, &size) in sizes.iter().enumerate() {
        let t = (start + ((g as f64 + rng.random::<f64>()) * slot) as i64).min(end);
        for _ in 0..size {
            // Some repos and users are busier than others.
            let r = repos[skewed(&mut rng, repos.len())];
            let a = users[skewed(&mut rng, users.len())];
            random_action(w, &mut rng, r, a, t, spec.payload_bytes, false);
            made += 1;
        }
    }
    made
}

/// An index in `0..n` biased towards the low end.
fn skewed(rng: &mut StdRng, n: usize) -> usize {
    let x: f64 = rng.random();
    ((x * x * n as f64) as usize).min(n.saturating_sub(1))
}

/// The default world of the demo, when there are no repositories yet.
pub(crate) fn ensure_default_world(w: &mut World) {
    if w.repos().next().is_none() {
        w.add_org("acme");
        w.add_user("alice");
        w.add_user("bob");
        w.add_repo("acme", "widgets");
        w.add_repo("acme", "dot.files");
        w.add_watcher("acme/widgets", "bob");
    }
    if !w.users().iter().any(|u| !u.is_org && u.login != TOKEN_USER) {
        w.add_user("alice");
    }
}

/// What [`FakeGitea::generate_history`](crate::FakeGitea::generate_history) (and
/// [`FakeGitea::generate_history_between`](crate::FakeGitea::generate_history_between)) makes.
#[derive(Clone, Debug)]
pub struct HistorySpec {
    /// Number of logical actions.
    pub actions: usize,
    /// Spread over this many days ending a few seconds before now (0 is taken as 1).
    pub days: u32,
    /// Number of orgs (0: repos are owned by users).
    pub orgs: usize,
    /// Number of repos, spread over the orgs (at least one is made when `actions > 0`).
    pub repos: usize,
    /// Approximate size of each push's content JSON.
    pub payload_bytes: usize,
    /// Put several actions in the same second.
    pub ties: bool,
}

impl Default for HistorySpec {
    fn default() -> Self {
        HistorySpec {
            actions: 1000,
            days: 7,
            orgs: 2,
            repos: 6,
            payload_bytes: 2048,
            ties: true,
        }
    }
}
