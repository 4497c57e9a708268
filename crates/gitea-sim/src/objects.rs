//! The model of repository objects that the activity feed does not carry
//! (`shared/gitea/FACTS.md`, "What the feed does not carry"): issues and pull
//! requests with their labels, assignees, milestones and timelines, comments,
//! releases, branches, commit statuses and Actions runs, with the id counters (one
//! per Gitea table) and the filters the list endpoints apply. No world state, no
//! HTTP: the world's operations on them are in `repo_ops`, their JSON in
//! `repo_json` and `repo_http`.
//!
//! Times are Unix seconds; timeline items are rows of one comment table whose ids
//! the world hands out.

use std::collections::{BTreeMap, HashMap};

use crate::base::{ActionId, splitmix};

/// Every repository's objects and the id counters (one per Gitea table).
pub(crate) struct Objects {
    pub(crate) repos: HashMap<i64, RepoObjects>,
    pub(crate) next_issue_id: i64,
    pub(crate) next_label_id: i64,
    pub(crate) next_milestone_id: i64,
    pub(crate) next_release_id: i64,
    pub(crate) next_status_id: i64,
    pub(crate) next_run_id: i64,
    pub(crate) next_job_id: i64,
    pub(crate) actions_supported: bool,
}

impl Default for Objects {
    fn default() -> Self {
        Objects {
            repos: HashMap::new(),
            next_issue_id: 1,
            next_label_id: 1,
            next_milestone_id: 1,
            next_release_id: 1,
            next_status_id: 1,
            next_run_id: 1,
            next_job_id: 1,
            actions_supported: true,
        }
    }
}

pub(crate) fn bump(counter: &mut i64) -> i64 {
    let id = *counter;
    *counter += 1;
    id
}

#[derive(Default)]
pub(crate) struct RepoObjects {
    /// By index.
    pub(crate) issues: BTreeMap<i64, Issue>,
    /// Comment id → (issue index, the feed action that carries it).
    pub(crate) comments: HashMap<i64, (i64, Option<ActionId>)>,
    pub(crate) labels: Vec<Label>,
    pub(crate) milestones: Vec<Milestone>,
    /// Ascending id.
    pub(crate) releases: Vec<Release>,
    pub(crate) branches: BTreeMap<String, Branch>,
    /// Tags by name.
    pub(crate) tags: BTreeMap<String, Tag>,
    /// Ascending id; every call of `add_status` is a new row.
    pub(crate) statuses: Vec<Status>,
    /// Ascending id.
    pub(crate) runs: Vec<Run>,
    /// The runs' jobs, ascending id.
    pub(crate) jobs: Vec<Job>,
}

pub(crate) struct Issue {
    pub(crate) id: i64,
    pub(crate) index: i64,
    pub(crate) is_pull: bool,
    pub(crate) poster: i64,
    pub(crate) title: String,
    pub(crate) body: String,
    /// Label ids, in the order added.
    pub(crate) labels: Vec<i64>,
    pub(crate) assignees: Vec<i64>,
    pub(crate) reviewers: Vec<i64>,
    pub(crate) milestone: Option<i64>,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    pub(crate) closed: Option<i64>,
    /// Ascending id.
    pub(crate) timeline: Vec<Item>,
    /// Pull requests: the head branch (in the same repository) and the base branch.
    pub(crate) head: String,
    pub(crate) base: String,
    /// Pull requests: the commit of `refs/pull/{index}/head`, which Gitea writes at creation
    /// and moves with every push to the head branch while the pull request is open, and
    /// keeps after the branch is deleted (`services/pull/pull.go`, `services/convert/pull.go`).
    pub(crate) pull_head: String,
    /// Pull requests: when and by whom it was merged.
    pub(crate) merged: Option<(i64, i64)>,
}

/// One timeline item (a row of Gitea's comment table).
pub(crate) struct Item {
    pub(crate) id: i64,
    pub(crate) poster: i64,
    pub(crate) body: String,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    pub(crate) event: Event,
}

pub(crate) enum Event {
    Comment,
    Close,
    Reopen,
    /// A pull request merged (Gitea's `merge_pull` comment).
    MergePull,
    Label {
        label: i64,
    },
    Assignees {
        user: i64,
        removed: bool,
    },
    Milestone {
        new: Option<i64>,
        old: Option<i64>,
    },
    ReviewRequest {
        reviewer: i64,
    },
    ChangeTitle {
        old: String,
        new: String,
    },
    /// A pushed commit's message named the issue (Gitea's `commit_ref` comment, whose
    /// `ref_commit_sha` is the commit: `services/issue/commit.go` `UpdateIssuesCommit`).
    CommitRef {
        sha: String,
    },
    /// A submitted review's comment (Gitea's `review` comment, type 22), its body the
    /// review's summary.
    Review,
    /// A review's code comment (Gitea's `code` comment, type 21).
    Code,
}

impl Event {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Event::Comment => "comment",
            Event::Close => "close",
            Event::Reopen => "reopen",
            Event::MergePull => "merge_pull",
            Event::Label { .. } => "label",
            Event::Assignees { .. } => "assignees",
            Event::Milestone { .. } => "milestone",
            Event::ReviewRequest { .. } => "review_request",
            Event::ChangeTitle { .. } => "change_title",
            Event::CommitRef { .. } => "commit_ref",
            Event::Review => "review",
            Event::Code => "code",
        }
    }
}

pub(crate) struct Label {
    pub(crate) id: i64,
    pub(crate) name: String,
    /// Six hex digits, no `#` (as the API returns it).
    pub(crate) color: String,
}

pub(crate) struct Milestone {
    pub(crate) id: i64,
    pub(crate) title: String,
    pub(crate) created: i64,
}

pub(crate) struct Release {
    pub(crate) id: i64,
    pub(crate) tag: String,
    pub(crate) title: String,
    pub(crate) author: i64,
    pub(crate) created: i64,
    pub(crate) deleted: bool,
}

pub(crate) struct Branch {
    pub(crate) sha: String,
    /// When the head was set (the commit's timestamp).
    pub(crate) updated: i64,
}

/// A tag: the ref's value (`object`: the commit for a lightweight tag) and its commit.
pub(crate) struct Tag {
    pub(crate) object: String,
    pub(crate) commit: String,
    /// When it was made (its creator date: `/tags` lists newest first).
    pub(crate) created: i64,
}

pub(crate) struct Status {
    pub(crate) id: i64,
    pub(crate) sha: String,
    pub(crate) context: String,
    pub(crate) state: String,
    pub(crate) creator: i64,
    pub(crate) created: i64,
}

pub(crate) struct Run {
    pub(crate) id: i64,
    pub(crate) number: i64,
    pub(crate) workflow: String,
    pub(crate) head_sha: String,
    pub(crate) status: String,
    pub(crate) conclusion: Option<String>,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    pub(crate) started: Option<i64>,
    pub(crate) completed: Option<i64>,
}

/// A job of an Actions run (go-gitea/gitea models/actions/run_job.go `ActionRunJob`).
pub(crate) struct Job {
    pub(crate) id: i64,
    pub(crate) run_id: i64,
    pub(crate) name: String,
    /// `runs-on`.
    pub(crate) labels: Vec<String>,
    /// As the API names it: `queued`, `waiting`, `in_progress`, `completed`.
    pub(crate) status: String,
    pub(crate) conclusion: Option<String>,
    pub(crate) attempt: i64,
    pub(crate) created: i64,
    pub(crate) started: Option<i64>,
    pub(crate) completed: Option<i64>,
}

impl Objects {
    /// A repository's objects, when it has any.
    pub(crate) fn repo(&self, rid: i64) -> Option<&RepoObjects> {
        self.repos.get(&rid)
    }

    /// A repository's objects, created empty on first use.
    pub(crate) fn repo_mut(&mut self, rid: i64) -> &mut RepoObjects {
        self.repos.entry(rid).or_default()
    }

    pub(crate) fn issue_mut(&mut self, rid: i64, index: i64) -> Option<&mut Issue> {
        self.repos.get_mut(&rid)?.issues.get_mut(&index)
    }

    pub(crate) fn is_pull(&self, rid: i64, index: i64) -> bool {
        self.repo(rid)
            .and_then(|o| o.issues.get(&index))
            .is_some_and(|i| i.is_pull)
    }

    pub(crate) fn find_label(&self, rid: i64, name: &str) -> Option<i64> {
        self.repo(rid)?
            .labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.id)
    }

    /// Append timeline item `id` to an issue and set its `updated_at` (no-op when
    /// the issue does not exist).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_item(
        &mut self,
        rid: i64,
        index: i64,
        id: i64,
        poster: i64,
        body: &str,
        event: Event,
        now: i64,
    ) {
        if let Some(issue) = self.issue_mut(rid, index) {
            issue.updated = now;
            issue.timeline.push(Item {
                id,
                poster,
                body: body.to_string(),
                created: now,
                updated: now,
                event,
            });
        }
    }
}

/// `since` / `before` filters (Unix seconds, both inclusive as in Gitea).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimeRange {
    pub(crate) since: Option<i64>,
    pub(crate) before: Option<i64>,
}

impl TimeRange {
    pub(crate) fn contains(&self, t: i64) -> bool {
        self.since.is_none_or(|s| t >= s) && self.before.is_none_or(|b| t <= b)
    }
}

/// `state=` of the issue list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StateFilter {
    Open,
    Closed,
    All,
}

/// `type=` of the issue list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KindFilter {
    Issues,
    Pulls,
    Both,
}

pub(crate) fn name_hash(s: &str) -> u64 {
    s.bytes()
        .fold(0x6c61_6265_6c00_u64, |h, b| splitmix(h ^ u64::from(b)))
}
