//! `[[source]]`: the feeds to poll, and [`Source`], one with its effective settings.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, StartAt, invalid, opt_duration};
use crate::source::{SourceSpec, SpecError};

/// A repository endpoint to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoKind {
    /// Issue and pull request changes: labels, assignees, milestones, review requests,
    /// title and body edits (`/issues?since=` then `/issues/{index}/timeline`).
    Issues,
    /// Comments created and edited (`/issues/comments?since=`).
    Comments,
    /// Releases published, edited, deleted (`/releases`).
    Releases,
    /// Commit statuses of recently pushed heads (`/branches`, `/statuses/{sha}`).
    Statuses,
    /// Actions runs and their state changes (`/actions/runs`), where the server has them.
    Actions,
    /// Branches and tags (`/branches`, `/tags`, read when the repository's `updated_at`
    /// moved): the `push`, `create` and `delete` of pushes the feed does not show (a token
    /// that is not an admin's never sees the Gitea Actions bot's rows).
    Refs,
}

impl RepoKind {
    pub fn name(self) -> &'static str {
        match self {
            RepoKind::Issues => "issues",
            RepoKind::Comments => "comments",
            RepoKind::Releases => "releases",
            RepoKind::Statuses => "statuses",
            RepoKind::Actions => "actions",
            RepoKind::Refs => "refs",
        }
    }
}

impl fmt::Display for RepoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `[[source]]` table: exactly one of `org`, `repo`, `user` (or `all`). `run`, `check`
/// and `backfill` without `--source` refuse a config without any (exit 2); `tail` and
/// `cursors` accept it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Organisation whose feed (every repository of the org) is polled.
    pub org: Option<String>,
    /// Repository `OWNER/NAME` whose feed is polled.
    pub repo: Option<String>,
    /// User whose own actions are polled (`only-performed-by=true`).
    pub user: Option<String>,
    /// Every organisation and every user's repository the token can see, discovered through
    /// the API (`/admin/orgs`, or `/user/orgs` for a token that is not an admin's, and
    /// `/repos/search`) and listed again every `poll.repos_refresh`; this table's other
    /// settings apply to each. Sources given on their own tables keep their own settings.
    /// Alone in its table (without `org`, `repo`, `user`), in one table at most.
    #[serde(default)]
    pub all: bool,
    /// Overrides `poll.interval` for this source.
    #[serde(default, deserialize_with = "opt_duration")]
    pub interval: Option<Duration>,
    /// Overrides `poll.start` for this source.
    pub start: Option<StartAt>,
    /// Repository endpoints polled besides the feed (opt-in; see docs/events.md for their cost):
    /// `issues`, `comments`, `releases`, `statuses`, `actions`, `refs`.
    #[serde(default)]
    pub kinds: Vec<RepoKind>,
    /// Org sources: also poll `kinds` for every repository of the org (listed through the API
    /// and refreshed every `poll.repos_refresh`).
    #[serde(default)]
    pub repos: bool,
    /// Attach the issue or pull request a thin feed row points to (`INDEX|...`) in
    /// `data.issue`; one extra request per issue, cached.
    #[serde(default)]
    pub enrich: bool,
    /// Overrides `poll.webhooks`: also publish webhook-shaped events for this source.
    pub webhooks: Option<bool>,
    /// Overrides `poll.push_files`: pushes' file lists from the commit API.
    pub push_files: Option<bool>,
}

impl SourceConfig {
    /// The source this table names.
    pub fn spec(&self) -> Result<SourceSpec, SpecError> {
        match (&self.org, &self.repo, &self.user) {
            (Some(o), None, None) => SourceSpec::org(o),
            (None, Some(r), None) => r.parse::<SourceSpec>().or_else(|_| {
                let (owner, name) = r.split_once('/').ok_or(SpecError::RepoForm(r.clone()))?;
                SourceSpec::repo(owner, name)
            }),
            (None, None, Some(u)) => SourceSpec::user(u),
            _ => Err(SpecError::OneKind),
        }
    }
}

/// Checks every `[[source]]` table (exactly one kind, `kinds` where they apply) and the list
/// (one `all = true` at most, no source twice).
pub(super) fn validate_sources(sources: &[SourceConfig]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    let mut discovering = false;
    for (i, s) in sources.iter().enumerate() {
        if s.all {
            if s.org.is_some() || s.repo.is_some() || s.user.is_some() {
                return Err(invalid(
                    format!("source[{i}].all"),
                    "all = true goes alone: without org, repo or user",
                ));
            }
            if discovering {
                return Err(invalid(
                    format!("source[{i}].all"),
                    "only one all = true table",
                ));
            }
            if !s.kinds.is_empty() && !s.repos {
                return Err(invalid(
                    format!("source[{i}].kinds"),
                    "kinds with all = true need repos = true (every repository of each org)",
                ));
            }
            discovering = true;
            continue;
        }
        let spec = s
            .spec()
            .map_err(|e| invalid(format!("source[{i}]"), e.to_string()))?;
        if let Some(iv) = s.interval
            && iv < Duration::from_millis(100)
        {
            return Err(invalid(
                format!("source[{i}].interval"),
                "must be at least 100ms",
            ));
        }
        match (&spec, s.repos, s.kinds.is_empty()) {
            (SourceSpec::Org(_), false, false) => {
                return Err(invalid(
                    format!("source[{i}].kinds"),
                    "kinds on an org source need repos = true (poll every repository of the org)",
                ));
            }
            (SourceSpec::User(_), _, false) => {
                return Err(invalid(
                    format!("source[{i}].kinds"),
                    "kinds apply to repo and org sources",
                ));
            }
            (SourceSpec::User(_) | SourceSpec::Repo { .. }, true, _) => {
                return Err(invalid(
                    format!("source[{i}].repos"),
                    "repos = true applies to org sources",
                ));
            }
            _ => {}
        }
        if !seen.insert(spec.clone()) {
            return Err(invalid(
                format!("source[{i}]"),
                format!("{spec} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// A source with its effective settings (defaults from `[poll]` applied). Equal when every
/// setting is: a reload restarts a source whose settings changed in any way.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Which feed.
    pub spec: SourceSpec,
    /// Time between polls.
    pub interval: Duration,
    /// Where to begin without a cursor.
    pub start: StartAt,
    /// Repository endpoints polled besides the feed.
    pub kinds: Vec<RepoKind>,
    /// Org sources: poll `kinds` for each of the org's repositories.
    pub repos: bool,
    /// How often the org's repositories are listed again.
    pub repos_refresh: Duration,
    /// Every quiet repository's kinds polled at least once per this span (0: every poll).
    pub repos_sweep: Duration,
    /// Attach the issue a feed row points to.
    pub enrich: bool,
    /// Also publish webhook-shaped events (`{prefix}.{owner}.{repo}.hook.{event_type}`).
    pub webhooks: bool,
    /// With `webhooks`: pushes' `added`/`removed`/`modified` from the commit API.
    pub push_files: bool,
}
