//! Repository objects that the activity feed does not carry (`shared/gitea/FACTS.md`,
//! "What the feed does not carry"): issues and pull requests with their labels,
//! assignees, milestones and timelines, comments, releases, branches, commit
//! statuses and Actions runs, and the JSON of the endpoints that list them.
//!
//! * Every change to an issue sets its `updated_at` to now and appends a timeline
//!   item. Timeline items are rows of one comment table (ids from the world's
//!   comment-id counter), so a `comment` item has the id of the comment and of the
//!   feed row's `comment_id`.
//! * Changes that Gitea records in the feed (creating, closing, reopening,
//!   commenting, publishing a release) also push the feed action, at the same second.
//! * Times are Unix seconds from [`World::now`], rendered in the server's offset.
//! * A change that changes nothing (adding a label already there, closing a closed
//!   issue, ...) is a no-op, as in Gitea. Unknown issues, comments, releases and runs
//!   are ignored; unknown repositories are created (like [`World::push_action`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::FakeGitea;
use crate::base::{ActionId, TOKEN_USER, splitmix};
use crate::rows::{NewAction, NewComment, truncate_comment};
use crate::world::{PageOut, World};
use crate::zone::{fmt_time, to_datetime};

/// Every repository's objects and the id counters (one per Gitea table).
pub(crate) struct Objects {
    repos: HashMap<i64, RepoObjects>,
    next_issue_id: i64,
    next_label_id: i64,
    next_milestone_id: i64,
    next_release_id: i64,
    next_status_id: i64,
    next_run_id: i64,
    actions_supported: bool,
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
            actions_supported: true,
        }
    }
}

fn bump(counter: &mut i64) -> i64 {
    let id = *counter;
    *counter += 1;
    id
}

#[derive(Default)]
struct RepoObjects {
    /// By index.
    issues: BTreeMap<i64, Issue>,
    /// Comment id → (issue index, the feed action that carries it).
    comments: HashMap<i64, (i64, Option<ActionId>)>,
    labels: Vec<Label>,
    milestones: Vec<Milestone>,
    /// Ascending id.
    releases: Vec<Release>,
    branches: BTreeMap<String, Branch>,
    /// Ascending id; every call of `add_status` is a new row.
    statuses: Vec<Status>,
    /// Ascending id.
    runs: Vec<Run>,
}

struct Issue {
    id: i64,
    index: i64,
    is_pull: bool,
    poster: i64,
    title: String,
    body: String,
    /// Label ids, in the order added.
    labels: Vec<i64>,
    assignees: Vec<i64>,
    reviewers: Vec<i64>,
    milestone: Option<i64>,
    created: i64,
    updated: i64,
    closed: Option<i64>,
    /// Ascending id.
    timeline: Vec<Item>,
}

/// One timeline item (a row of Gitea's comment table).
struct Item {
    id: i64,
    poster: i64,
    body: String,
    created: i64,
    updated: i64,
    event: Event,
}

enum Event {
    Comment,
    Close,
    Reopen,
    Label { label: i64 },
    Assignees { user: i64, removed: bool },
    Milestone { new: Option<i64>, old: Option<i64> },
    ReviewRequest { reviewer: i64 },
    ChangeTitle { old: String, new: String },
}

impl Event {
    fn kind(&self) -> &'static str {
        match self {
            Event::Comment => "comment",
            Event::Close => "close",
            Event::Reopen => "reopen",
            Event::Label { .. } => "label",
            Event::Assignees { .. } => "assignees",
            Event::Milestone { .. } => "milestone",
            Event::ReviewRequest { .. } => "review_request",
            Event::ChangeTitle { .. } => "change_title",
        }
    }
}

struct Label {
    id: i64,
    name: String,
    /// Six hex digits, no `#` (as the API returns it).
    color: String,
}

struct Milestone {
    id: i64,
    title: String,
    created: i64,
}

struct Release {
    id: i64,
    tag: String,
    title: String,
    author: i64,
    created: i64,
    deleted: bool,
}

struct Branch {
    sha: String,
    /// When the head was set (the commit's timestamp).
    updated: i64,
}

struct Status {
    id: i64,
    sha: String,
    context: String,
    state: String,
    creator: i64,
    created: i64,
}

struct Run {
    id: i64,
    number: i64,
    workflow: String,
    head_sha: String,
    status: String,
    conclusion: Option<String>,
    created: i64,
    updated: i64,
    started: Option<i64>,
    completed: Option<i64>,
}

/// Which page of a list to serve (already defaulted and capped).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) page: usize,
    pub(crate) limit: usize,
}

impl Window {
    fn of<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let off = self.page.saturating_sub(1).saturating_mul(self.limit);
        if off >= items.len() {
            return &[];
        }
        let end = off.saturating_add(self.limit).min(items.len());
        &items[off..end]
    }
}

/// `since` / `before` filters (Unix seconds, both inclusive as in Gitea).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimeRange {
    pub(crate) since: Option<i64>,
    pub(crate) before: Option<i64>,
}

impl TimeRange {
    fn contains(&self, t: i64) -> bool {
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

fn name_hash(s: &str) -> u64 {
    s.bytes()
        .fold(0x6c61_6265_6c00_u64, |h, b| splitmix(h ^ u64::from(b)))
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings, integers and raw JSON: serialization cannot fail.
    serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec())
}

// ----- changes -----------------------------------------------------------------------

impl World {
    fn now_secs(&self) -> i64 {
        self.now().timestamp()
    }

    fn objs(&self, rid: i64) -> Option<&RepoObjects> {
        self.objects.repos.get(&rid)
    }

    fn objs_mut(&mut self, rid: i64) -> &mut RepoObjects {
        self.objects.repos.entry(rid).or_default()
    }

    fn issue_mut(&mut self, rid: i64, index: i64) -> Option<&mut Issue> {
        self.objects.repos.get_mut(&rid)?.issues.get_mut(&index)
    }

    fn full_name(&self, rid: i64) -> String {
        self.repo(rid)
            .map(|r| r.full_name.clone())
            .unwrap_or_default()
    }

    /// The repository id and the actor's id for a change to an existing issue.
    fn target(&mut self, repo: &str, index: i64, actor: &str) -> Option<(i64, i64)> {
        let rid = self.repo_id(repo)?;
        self.objs(rid)?.issues.get(&index)?;
        Some((rid, self.add_user(actor)))
    }

    fn is_pull(&self, rid: i64, index: i64) -> bool {
        self.objs(rid)
            .and_then(|o| o.issues.get(&index))
            .is_some_and(|i| i.is_pull)
    }

    /// Append a timeline item to an issue and set its `updated_at`.
    fn add_item(
        &mut self,
        rid: i64,
        index: i64,
        poster: i64,
        body: &str,
        event: Event,
        now: i64,
    ) -> i64 {
        let id = self.alloc_comment_id();
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
        id
    }

    /// Push the feed action of an issue change.
    fn issue_action(
        &mut self,
        rid: i64,
        actor: &str,
        op: &str,
        content: String,
        now: i64,
        comment: Option<(i64, NewComment)>,
    ) -> ActionId {
        let mut a = NewAction::new(op, actor, &self.full_name(rid))
            .content(&content)
            .at(to_datetime(self.offset(), now));
        if let Some((id, c)) = comment {
            a.comment_id = id;
            a.comment = Some(c);
        }
        self.push_action(a)
    }

    /// Open an issue (or a pull request) and push its `create_issue` /
    /// `create_pull_request` feed action (content `INDEX|TITLE`). Returns the index:
    /// numbered from 1 per repository, after any the generators used.
    pub fn create_issue(&mut self, repo: &str, actor: &str, title: &str, is_pull: bool) -> i64 {
        let poster = self.add_user(actor);
        let rid = self.ensure_repo(repo, actor);
        if self.repo(rid).is_none() {
            return 0;
        }
        let now = self.now_secs();
        let gen_next = self.repo_gen.get(&rid).map_or(1, |g| g.next_index());
        let id = bump(&mut self.objects.next_issue_id);
        let o = self.objs_mut(rid);
        let index = o
            .issues
            .keys()
            .next_back()
            .map_or(1, |&i| i + 1)
            .max(gen_next);
        o.issues.insert(
            index,
            Issue {
                id,
                index,
                is_pull,
                poster,
                title: title.to_string(),
                body: String::new(),
                labels: Vec::new(),
                assignees: Vec::new(),
                reviewers: Vec::new(),
                milestone: None,
                created: now,
                updated: now,
                closed: None,
                timeline: Vec::new(),
            },
        );
        self.repo_gen.entry(rid).or_default().reserve_index(index);
        let op = if is_pull {
            "create_pull_request"
        } else {
            "create_issue"
        };
        self.issue_action(rid, actor, op, format!("{index}|{title}"), now, None);
        index
    }

    /// Edit an issue's title and/or body. A new title adds a `change_title` item
    /// (`old_title`, `new_title`); a new body only sets `updated_at`. Values equal
    /// to the current ones change nothing.
    pub fn edit_issue(
        &mut self,
        repo: &str,
        index: i64,
        actor: &str,
        title: Option<&str>,
        body: Option<&str>,
    ) {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return;
        };
        let now = self.now_secs();
        let mut renamed = None;
        if let Some(issue) = self.issue_mut(rid, index) {
            if let Some(b) = body
                && b != issue.body
            {
                issue.body = b.to_string();
                issue.updated = now;
            }
            if let Some(t) = title
                && t != issue.title
            {
                renamed = Some((std::mem::replace(&mut issue.title, t.to_string()), t));
            }
        }
        if let Some((old, new)) = renamed {
            let event = Event::ChangeTitle {
                old,
                new: new.to_string(),
            };
            self.add_item(rid, index, poster, "", event, now);
        }
    }

    /// Close an open issue: `closed_at`, a `close` item and the `close_issue` /
    /// `close_pull_request` feed action (content `INDEX|`).
    pub fn close_issue_as(&mut self, repo: &str, index: i64, actor: &str) {
        self.set_closed(repo, index, actor, true);
    }

    /// Reopen a closed issue: a `reopen` item and the `reopen_issue` /
    /// `reopen_pull_request` feed action.
    pub fn reopen_issue_as(&mut self, repo: &str, index: i64, actor: &str) {
        self.set_closed(repo, index, actor, false);
    }

    fn set_closed(&mut self, repo: &str, index: i64, actor: &str, close: bool) {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return;
        };
        let now = self.now_secs();
        let changed = self.issue_mut(rid, index).is_some_and(|issue| {
            if issue.closed.is_some() == close {
                return false;
            }
            issue.closed = close.then_some(now);
            true
        });
        if !changed {
            return;
        }
        let event = if close { Event::Close } else { Event::Reopen };
        self.add_item(rid, index, poster, "", event, now);
        let verb = if close { "close" } else { "reopen" };
        let what = if self.is_pull(rid, index) {
            "pull_request"
        } else {
            "issue"
        };
        self.issue_action(
            rid,
            actor,
            &format!("{verb}_{what}"),
            format!("{index}|"),
            now,
            None,
        );
    }

    fn find_label(&self, rid: i64, name: &str) -> Option<i64> {
        self.objs(rid)?
            .labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.id)
    }

    /// Add (`add`) or remove a label (created in the repository on first use): a
    /// `label` item whose body is `"1"` when added and `""` when removed.
    pub fn label_issue(&mut self, repo: &str, index: i64, actor: &str, label: &str, add: bool) {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return;
        };
        let lid = match self.find_label(rid, label) {
            Some(id) => id,
            None if add => {
                let id = bump(&mut self.objects.next_label_id);
                let color = format!("{:06x}", name_hash(label) & 0x00ff_ffff);
                self.objs_mut(rid).labels.push(Label {
                    id,
                    name: label.to_string(),
                    color,
                });
                id
            }
            None => return,
        };
        let now = self.now_secs();
        let changed = self.issue_mut(rid, index).is_some_and(|issue| {
            let pos = issue.labels.iter().position(|&l| l == lid);
            match (add, pos) {
                (true, None) => {
                    issue.labels.push(lid);
                    true
                }
                (false, Some(p)) => {
                    issue.labels.remove(p);
                    true
                }
                _ => false,
            }
        });
        if changed {
            let body = if add { "1" } else { "" };
            self.add_item(rid, index, poster, body, Event::Label { label: lid }, now);
        }
    }

    /// Assign (`add`) or unassign a user: an `assignees` item with `assignee` and
    /// `removed_assignee`.
    pub fn assign_issue(&mut self, repo: &str, index: i64, actor: &str, assignee: &str, add: bool) {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return;
        };
        let user = self.add_user(assignee);
        let now = self.now_secs();
        let changed = self.issue_mut(rid, index).is_some_and(|issue| {
            let pos = issue.assignees.iter().position(|&u| u == user);
            match (add, pos) {
                (true, None) => {
                    issue.assignees.push(user);
                    true
                }
                (false, Some(p)) => {
                    issue.assignees.remove(p);
                    true
                }
                _ => false,
            }
        });
        if changed {
            let event = Event::Assignees {
                user,
                removed: !add,
            };
            self.add_item(rid, index, poster, "", event, now);
        }
    }

    /// Set (or clear, with `None`) the milestone, created in the repository on first
    /// use: a `milestone` item with `milestone` and `old_milestone`.
    pub fn set_milestone(&mut self, repo: &str, index: i64, actor: &str, milestone: Option<&str>) {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return;
        };
        let now = self.now_secs();
        let new = match milestone {
            None => None,
            Some(title) => {
                let found = self
                    .objs(rid)
                    .and_then(|o| o.milestones.iter().find(|m| m.title == title).map(|m| m.id));
                Some(match found {
                    Some(id) => id,
                    None => {
                        let id = bump(&mut self.objects.next_milestone_id);
                        self.objs_mut(rid).milestones.push(Milestone {
                            id,
                            title: title.to_string(),
                            created: now,
                        });
                        id
                    }
                })
            }
        };
        let old = match self.issue_mut(rid, index) {
            Some(issue) if issue.milestone != new => std::mem::replace(&mut issue.milestone, new),
            _ => return,
        };
        self.add_item(rid, index, poster, "", Event::Milestone { new, old }, now);
    }

    /// Request a review: a `review_request` item whose `assignee` is the reviewer
    /// (once per reviewer).
    pub fn request_review(&mut self, repo: &str, index: i64, actor: &str, reviewer: &str) {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return;
        };
        let reviewer = self.add_user(reviewer);
        let now = self.now_secs();
        let changed = self.issue_mut(rid, index).is_some_and(|issue| {
            if issue.reviewers.contains(&reviewer) {
                return false;
            }
            issue.reviewers.push(reviewer);
            true
        });
        if changed {
            let event = Event::ReviewRequest { reviewer };
            self.add_item(rid, index, poster, "", event, now);
        }
    }

    /// Comment on an issue: the comment (listed by `/issues/comments`), a `comment`
    /// timeline item with the same id, and the `comment_issue` / `comment_pull` feed
    /// action with that `comment_id`, content `INDEX|` + the body cut like Gitea
    /// does (first 200 characters) and the comment object. Returns the comment id
    /// (0 when the issue does not exist).
    pub fn comment_on(&mut self, repo: &str, index: i64, actor: &str, body: &str) -> i64 {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return 0;
        };
        let now = self.now_secs();
        let id = self.add_item(rid, index, poster, body, Event::Comment, now);
        let is_pull = self.is_pull(rid, index);
        let op = if is_pull {
            "comment_pull"
        } else {
            "comment_issue"
        };
        let comment = NewComment {
            issue_index: index,
            body: body.to_string(),
            is_pull,
        };
        let content = format!("{index}|{}", truncate_comment(body));
        let aid = self.issue_action(rid, actor, op, content, now, Some((id, comment)));
        self.objs_mut(rid).comments.insert(id, (index, Some(aid)));
        id
    }

    /// A comment that no feed action announces, as Gitea's repository migration creates
    /// them (a `comment` timeline item only). Returns the comment id (0 when the issue
    /// does not exist).
    pub fn import_comment(&mut self, repo: &str, index: i64, actor: &str, body: &str) -> i64 {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return 0;
        };
        let now = self.now_secs();
        let id = self.add_item(rid, index, poster, body, Event::Comment, now);
        self.objs_mut(rid).comments.insert(id, (index, None));
        id
    }

    /// Edit a comment: its body and `updated_at` (also in the feed row's comment
    /// object; the row's `content` keeps the old text, as in Gitea). The issue's
    /// `updated_at` does not change.
    pub fn edit_comment(&mut self, repo: &str, comment_id: i64, body: &str) {
        let Some(rid) = self.repo_id(repo) else {
            return;
        };
        let Some(&(index, aid)) = self.objs(rid).and_then(|o| o.comments.get(&comment_id)) else {
            return;
        };
        let now = self.now_secs();
        if let Some(item) = self
            .issue_mut(rid, index)
            .and_then(|i| i.timeline.iter_mut().find(|t| t.id == comment_id))
        {
            item.body = body.to_string();
            item.updated = now;
        }
        if let Some(aid) = aid {
            self.edit_action_comment(aid, body, now);
        }
    }

    /// Publish a release of `tag` and push the `publish_release` feed action
    /// (content = title, `ref_name` = `refs/tags/TAG`). Returns the release id.
    pub fn add_release(&mut self, repo: &str, actor: &str, tag: &str, title: &str) -> i64 {
        let author = self.add_user(actor);
        let rid = self.ensure_repo(repo, actor);
        if self.repo(rid).is_none() {
            return 0;
        }
        let now = self.now_secs();
        let id = bump(&mut self.objects.next_release_id);
        self.objs_mut(rid).releases.push(Release {
            id,
            tag: tag.to_string(),
            title: title.to_string(),
            author,
            created: now,
            deleted: false,
        });
        let a = NewAction::new("publish_release", actor, &self.full_name(rid))
            .content(title)
            .ref_name(&format!("refs/tags/{tag}"))
            .at(to_datetime(self.offset(), now));
        self.push_action(a);
        id
    }

    /// A release that no feed action announces, as Gitea's repository migration (or a
    /// mirror) creates them. Returns the release id.
    pub fn import_release(&mut self, repo: &str, actor: &str, tag: &str, title: &str) -> i64 {
        let author = self.add_user(actor);
        let rid = self.ensure_repo(repo, actor);
        if self.repo(rid).is_none() {
            return 0;
        }
        let now = self.now_secs();
        let id = bump(&mut self.objects.next_release_id);
        self.objs_mut(rid).releases.push(Release {
            id,
            tag: tag.to_string(),
            title: title.to_string(),
            author,
            created: now,
            deleted: false,
        });
        id
    }

    fn release_mut(&mut self, repo: &str, id: i64) -> Option<&mut Release> {
        let rid = self.repo_id(repo)?;
        self.objects
            .repos
            .get_mut(&rid)?
            .releases
            .iter_mut()
            .find(|r| r.id == id && !r.deleted)
    }

    /// Rename a release (no feed action).
    pub fn edit_release(&mut self, repo: &str, id: i64, title: &str) {
        if let Some(r) = self.release_mut(repo, id) {
            r.title = title.to_string();
        }
    }

    /// Delete a release (its feed action stays).
    pub fn delete_release(&mut self, repo: &str, id: i64) {
        if let Some(r) = self.release_mut(repo, id) {
            r.deleted = true;
        }
    }

    /// Point `branch` at `sha` (creating the branch), with a commit timestamp of now.
    pub fn set_branch_head(&mut self, repo: &str, branch: &str, sha: &str) {
        let rid = self.ensure_repo(repo, TOKEN_USER);
        if self.repo(rid).is_none() {
            return;
        }
        let now = self.now_secs();
        self.objs_mut(rid).branches.insert(
            branch.to_string(),
            Branch {
                sha: sha.to_string(),
                updated: now,
            },
        );
    }

    /// Add a commit status row (`pending`, `success`, `failure`, `error` or
    /// `warning`; stored as given). Every call adds a row, as Gitea keeps the
    /// history; returns its id. The creator is the repository owner.
    pub fn add_status(&mut self, repo: &str, sha: &str, context: &str, state: &str) -> i64 {
        let rid = self.ensure_repo(repo, TOKEN_USER);
        let Some(creator) = self.repo(rid).map(|r| r.owner_id) else {
            return 0;
        };
        let now = self.now_secs();
        let id = bump(&mut self.objects.next_status_id);
        self.objs_mut(rid).statuses.push(Status {
            id,
            sha: sha.to_string(),
            context: context.to_string(),
            state: state.to_string(),
            creator,
            created: now,
        });
        id
    }

    /// Whether `/actions/runs` exists (default `true`; `false` answers 404 like a
    /// Gitea before 1.24).
    pub fn set_actions_supported(&mut self, yes: bool) {
        self.objects.actions_supported = yes;
    }

    pub(crate) fn actions_supported(&self) -> bool {
        self.objects.actions_supported
    }

    /// Add an Actions run of `workflow` (e.g. `"ci.yml"`) with `status` `queued`,
    /// `in_progress` or `completed` and no conclusion. Returns the run id.
    pub fn add_run(&mut self, repo: &str, workflow: &str, head_sha: &str, status: &str) -> i64 {
        let rid = self.ensure_repo(repo, TOKEN_USER);
        if self.repo(rid).is_none() {
            return 0;
        }
        let now = self.now_secs();
        let id = bump(&mut self.objects.next_run_id);
        let o = self.objs_mut(rid);
        let number = o.runs.len() as i64 + 1;
        o.runs.push(Run {
            id,
            number,
            workflow: workflow.to_string(),
            head_sha: head_sha.to_string(),
            status: status.to_string(),
            conclusion: None,
            created: now,
            updated: now,
            started: (!matches!(status, "queued" | "waiting")).then_some(now),
            completed: (status == "completed").then_some(now),
        });
        id
    }

    /// Change a run's status and conclusion; `updated_at` = now, `started_at` set
    /// when it leaves `queued`, `completed_at` when it is `completed`.
    pub fn update_run(&mut self, repo: &str, id: i64, status: &str, conclusion: Option<&str>) {
        let now = self.now_secs();
        let Some(rid) = self.repo_id(repo) else {
            return;
        };
        let Some(run) = self
            .objects
            .repos
            .get_mut(&rid)
            .and_then(|o| o.runs.iter_mut().find(|r| r.id == id))
        else {
            return;
        };
        run.status = status.to_string();
        run.conclusion = conclusion.map(str::to_string);
        run.updated = now;
        if !matches!(status, "queued" | "waiting") && run.started.is_none() {
            run.started = Some(now);
        }
        run.completed = if status == "completed" {
            Some(run.completed.unwrap_or(now))
        } else {
            None
        };
    }
}

// ----- JSON --------------------------------------------------------------------------

#[derive(Serialize)]
struct LabelJson<'a> {
    id: i64,
    name: &'a str,
    exclusive: bool,
    is_archived: bool,
    color: &'a str,
    description: &'a str,
    url: String,
}

#[derive(Serialize)]
struct MilestoneJson<'a> {
    id: i64,
    title: &'a str,
    description: &'a str,
    state: &'a str,
    open_issues: usize,
    closed_issues: usize,
    created_at: String,
    updated_at: String,
    closed_at: Option<String>,
    due_on: Option<String>,
}

#[derive(Serialize)]
struct PullMetaJson {
    merged: bool,
    merged_at: Option<String>,
    draft: bool,
    html_url: String,
}

#[derive(Serialize)]
struct RepoMetaJson<'a> {
    id: i64,
    name: &'a str,
    owner: &'a str,
    full_name: &'a str,
}

#[derive(Serialize)]
struct IssueJson<'a> {
    id: i64,
    url: String,
    html_url: String,
    number: i64,
    user: Option<&'a RawValue>,
    original_author: &'a str,
    original_author_id: i64,
    title: &'a str,
    body: &'a str,
    #[serde(rename = "ref")]
    ref_name: &'a str,
    assets: [u8; 0],
    labels: Vec<LabelJson<'a>>,
    milestone: Option<MilestoneJson<'a>>,
    assignee: Option<&'a RawValue>,
    /// `null` when nobody is assigned (Gitea leaves the slice nil).
    assignees: Option<Vec<&'a RawValue>>,
    state: &'a str,
    is_locked: bool,
    comments: usize,
    created_at: String,
    updated_at: String,
    closed_at: Option<String>,
    due_date: Option<String>,
    pull_request: Option<PullMetaJson>,
    repository: RepoMetaJson<'a>,
    pin_order: i64,
}

#[derive(Serialize)]
struct TimelineJson<'a> {
    id: i64,
    #[serde(rename = "type")]
    kind: &'a str,
    html_url: String,
    pull_request_url: String,
    issue_url: String,
    user: Option<&'a RawValue>,
    body: &'a str,
    created_at: String,
    updated_at: String,
    old_project_id: i64,
    project_id: i64,
    old_milestone: Option<MilestoneJson<'a>>,
    milestone: Option<MilestoneJson<'a>>,
    tracked_time: Option<()>,
    old_title: &'a str,
    new_title: &'a str,
    old_ref: &'a str,
    new_ref: &'a str,
    ref_issue: Option<()>,
    ref_comment: Option<()>,
    ref_action: &'a str,
    ref_commit_sha: &'a str,
    review_id: i64,
    label: Option<LabelJson<'a>>,
    assignee: Option<&'a RawValue>,
    assignee_team: Option<()>,
    removed_assignee: bool,
    resolve_doer: Option<&'a RawValue>,
    dependent_issue: Option<()>,
}

#[derive(Serialize)]
struct CommentJson<'a> {
    id: i64,
    html_url: String,
    pull_request_url: String,
    issue_url: String,
    user: Option<&'a RawValue>,
    original_author: &'a str,
    original_author_id: i64,
    body: &'a str,
    assets: [u8; 0],
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct ArchiveCountJson {
    zip: i64,
    tar_gz: i64,
}

#[derive(Serialize)]
struct ReleaseJson<'a> {
    id: i64,
    tag_name: &'a str,
    target_commitish: &'a str,
    name: &'a str,
    body: &'a str,
    url: String,
    html_url: String,
    tarball_url: String,
    zipball_url: String,
    upload_url: String,
    hide_archive_links: bool,
    archive_download_count: ArchiveCountJson,
    draft: bool,
    prerelease: bool,
    created_at: String,
    published_at: String,
    author: Option<&'a RawValue>,
    assets: [u8; 0],
}

#[derive(Serialize)]
struct PayloadUserJson<'a> {
    name: &'a str,
    email: &'a str,
    username: &'a str,
}

#[derive(Serialize)]
struct PayloadCommitJson<'a> {
    id: &'a str,
    message: String,
    url: String,
    author: PayloadUserJson<'a>,
    committer: PayloadUserJson<'a>,
    verification: Option<()>,
    timestamp: String,
    added: Option<()>,
    removed: Option<()>,
    modified: Option<()>,
}

#[derive(Serialize)]
struct BranchJson<'a> {
    name: &'a str,
    commit: PayloadCommitJson<'a>,
    protected: bool,
    required_approvals: i64,
    enable_status_check: bool,
    status_check_contexts: [u8; 0],
    user_can_push: bool,
    user_can_merge: bool,
    effective_branch_protection_name: &'a str,
}

#[derive(Serialize)]
struct StatusJson<'a> {
    id: i64,
    status: &'a str,
    target_url: String,
    description: &'a str,
    url: String,
    context: &'a str,
    creator: Option<&'a RawValue>,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct RunJson<'a> {
    id: i64,
    url: String,
    html_url: String,
    display_title: &'a str,
    path: &'a str,
    event: &'a str,
    status: &'a str,
    conclusion: Option<&'a str>,
    head_sha: &'a str,
    head_branch: &'a str,
    run_number: i64,
    run_attempt: i64,
    created_at: String,
    updated_at: String,
    started_at: Option<String>,
    completed_at: Option<String>,
    repository_id: i64,
}

#[derive(Serialize)]
struct RunsJson<'a> {
    workflow_runs: Vec<RunJson<'a>>,
    total_count: usize,
}

/// What rendering an issue or timeline item needs about its repository.
struct RepoCtx<'a> {
    rid: i64,
    name: &'a str,
    owner: &'a str,
    full_name: &'a str,
    /// `{base}/api/v1/repos/{full_name}`.
    api: String,
    /// `{base}/{full_name}`.
    html: String,
    objs: Option<&'a RepoObjects>,
    /// Milestone id → (open, closed) issue counts.
    milestone_counts: HashMap<i64, (usize, usize)>,
}

impl World {
    fn user_raw(&self, id: i64) -> Option<&RawValue> {
        self.user(id).map(|u| &*u.json)
    }

    fn repo_ctx(&self, rid: i64) -> Option<RepoCtx<'_>> {
        let repo = self.repo(rid)?;
        let owner = self.user(repo.owner_id).map_or("", |u| u.login.as_str());
        let objs = self.objs(rid);
        let mut milestone_counts: HashMap<i64, (usize, usize)> = HashMap::new();
        for issue in objs.iter().flat_map(|o| o.issues.values()) {
            if let Some(m) = issue.milestone {
                let c = milestone_counts.entry(m).or_default();
                if issue.closed.is_some() {
                    c.1 += 1;
                } else {
                    c.0 += 1;
                }
            }
        }
        Some(RepoCtx {
            rid,
            name: &repo.name,
            owner,
            full_name: &repo.full_name,
            api: format!("{}/api/v1/repos/{}", self.base_url(), repo.full_name),
            html: format!("{}/{}", self.base_url(), repo.full_name),
            objs,
            milestone_counts,
        })
    }

    fn label_json<'a>(&self, c: &RepoCtx<'a>, id: i64) -> Option<LabelJson<'a>> {
        let l = c.objs?.labels.iter().find(|l| l.id == id)?;
        Some(LabelJson {
            id,
            name: &l.name,
            exclusive: false,
            is_archived: false,
            color: &l.color,
            description: "",
            url: format!("{}/labels/{id}", c.api),
        })
    }

    fn milestone_json<'a>(&self, c: &RepoCtx<'a>, id: Option<i64>) -> Option<MilestoneJson<'a>> {
        let id = id?;
        let m = c.objs?.milestones.iter().find(|m| m.id == id)?;
        let (open, closed) = c.milestone_counts.get(&id).copied().unwrap_or_default();
        let t = fmt_time(self.offset(), m.created);
        Some(MilestoneJson {
            id,
            title: &m.title,
            description: "",
            state: "open",
            open_issues: open,
            closed_issues: closed,
            created_at: t.clone(),
            updated_at: t,
            closed_at: None,
            due_on: None,
        })
    }

    fn issue_html(c: &RepoCtx<'_>, issue: &Issue) -> String {
        let kind = if issue.is_pull { "pulls" } else { "issues" };
        format!("{}/{kind}/{}", c.html, issue.index)
    }

    fn issue_json<'a>(&'a self, c: &RepoCtx<'a>, issue: &'a Issue) -> IssueJson<'a> {
        let off = self.offset();
        let html_url = World::issue_html(c, issue);
        let comments = issue
            .timeline
            .iter()
            .filter(|t| matches!(t.event, Event::Comment))
            .count();
        let assignees: Vec<&RawValue> = issue
            .assignees
            .iter()
            .filter_map(|&u| self.user_raw(u))
            .collect();
        IssueJson {
            id: issue.id,
            url: format!("{}/issues/{}", c.api, issue.index),
            number: issue.index,
            user: self.user_raw(issue.poster),
            original_author: "",
            original_author_id: 0,
            title: &issue.title,
            body: &issue.body,
            ref_name: "",
            assets: [],
            labels: issue
                .labels
                .iter()
                .filter_map(|&l| self.label_json(c, l))
                .collect(),
            milestone: self.milestone_json(c, issue.milestone),
            assignee: assignees.first().copied(),
            assignees: (!assignees.is_empty()).then_some(assignees),
            state: if issue.closed.is_some() {
                "closed"
            } else {
                "open"
            },
            is_locked: false,
            comments,
            created_at: fmt_time(off, issue.created),
            updated_at: fmt_time(off, issue.updated),
            closed_at: issue.closed.map(|t| fmt_time(off, t)),
            due_date: None,
            pull_request: issue.is_pull.then(|| PullMetaJson {
                merged: false,
                merged_at: None,
                draft: false,
                html_url: html_url.clone(),
            }),
            html_url,
            repository: RepoMetaJson {
                id: c.rid,
                name: c.name,
                owner: c.owner,
                full_name: c.full_name,
            },
            pin_order: 0,
        }
    }

    fn timeline_json<'a>(
        &'a self,
        c: &RepoCtx<'a>,
        issue: &'a Issue,
        item: &'a Item,
    ) -> TimelineJson<'a> {
        let off = self.offset();
        let issue_html = World::issue_html(c, issue);
        let (mut label, mut assignee, mut removed, mut milestone, mut old_milestone) =
            (None, None, false, None, None);
        let (mut old_title, mut new_title) = ("", "");
        match &item.event {
            Event::Label { label: l } => label = self.label_json(c, *l),
            Event::Assignees { user, removed: r } => {
                assignee = self.user_raw(*user);
                removed = *r;
            }
            Event::ReviewRequest { reviewer } => assignee = self.user_raw(*reviewer),
            Event::Milestone { new, old } => {
                milestone = self.milestone_json(c, *new);
                old_milestone = self.milestone_json(c, *old);
            }
            Event::ChangeTitle { old, new } => {
                old_title = old.as_str();
                new_title = new.as_str();
            }
            Event::Comment | Event::Close | Event::Reopen => {}
        }
        TimelineJson {
            id: item.id,
            kind: item.event.kind(),
            html_url: format!("{issue_html}#issuecomment-{}", item.id),
            pull_request_url: if issue.is_pull {
                issue_html.clone()
            } else {
                String::new()
            },
            issue_url: if issue.is_pull {
                String::new()
            } else {
                issue_html
            },
            user: self.user_raw(item.poster),
            body: &item.body,
            created_at: fmt_time(off, item.created),
            updated_at: fmt_time(off, item.updated),
            old_project_id: 0,
            project_id: 0,
            old_milestone,
            milestone,
            tracked_time: None,
            old_title,
            new_title,
            old_ref: "",
            new_ref: "",
            ref_issue: None,
            ref_comment: None,
            ref_action: "",
            ref_commit_sha: "",
            review_id: 0,
            label,
            assignee,
            assignee_team: None,
            removed_assignee: removed,
            resolve_doer: None,
            dependent_issue: None,
        }
    }

    fn comment_json<'a>(
        &'a self,
        c: &RepoCtx<'a>,
        issue: &'a Issue,
        item: &'a Item,
    ) -> CommentJson<'a> {
        let off = self.offset();
        let issue_html = World::issue_html(c, issue);
        CommentJson {
            id: item.id,
            html_url: format!("{issue_html}#issuecomment-{}", item.id),
            pull_request_url: if issue.is_pull {
                issue_html.clone()
            } else {
                String::new()
            },
            issue_url: if issue.is_pull {
                String::new()
            } else {
                issue_html
            },
            user: self.user_raw(item.poster),
            original_author: "",
            original_author_id: 0,
            body: &item.body,
            assets: [],
            created_at: fmt_time(off, item.created),
            updated_at: fmt_time(off, item.updated),
        }
    }

    // ----- endpoints ---------------------------------------------------------------

    /// `GET /repos/{o}/{r}/issues`: newest `updated_at` first (ties: id DESC).
    pub(crate) fn api_issues(
        &self,
        rid: i64,
        state: StateFilter,
        kind: KindFilter,
        range: TimeRange,
        win: Window,
    ) -> PageOut {
        let Some(c) = self.repo_ctx(rid) else {
            return empty();
        };
        let mut v: Vec<&Issue> = c
            .objs
            .iter()
            .flat_map(|o| o.issues.values())
            .filter(|i| match state {
                StateFilter::Open => i.closed.is_none(),
                StateFilter::Closed => i.closed.is_some(),
                StateFilter::All => true,
            })
            .filter(|i| match kind {
                KindFilter::Issues => !i.is_pull,
                KindFilter::Pulls => i.is_pull,
                KindFilter::Both => true,
            })
            .filter(|i| range.contains(i.updated))
            .collect();
        v.sort_by_key(|i| (Reverse(i.updated), Reverse(i.id)));
        let items: Vec<IssueJson<'_>> =
            win.of(&v).iter().map(|&i| self.issue_json(&c, i)).collect();
        PageOut {
            body: to_json(&items),
            total: v.len(),
        }
    }

    /// `GET /repos/{o}/{r}/issues/{index}`.
    pub(crate) fn api_issue(&self, rid: i64, index: i64) -> Option<Vec<u8>> {
        let c = self.repo_ctx(rid)?;
        let issue = c.objs?.issues.get(&index)?;
        Some(to_json(&self.issue_json(&c, issue)))
    }

    /// `GET /repos/{o}/{r}/issues/{index}/timeline`: id ascending; `None` when the
    /// issue does not exist.
    pub(crate) fn api_timeline(
        &self,
        rid: i64,
        index: i64,
        range: TimeRange,
        win: Window,
    ) -> Option<PageOut> {
        let c = self.repo_ctx(rid)?;
        let issue = c.objs?.issues.get(&index)?;
        let v: Vec<&Item> = issue
            .timeline
            .iter()
            .filter(|t| range.contains(t.updated))
            .collect();
        let items: Vec<TimelineJson<'_>> = win
            .of(&v)
            .iter()
            .map(|&t| self.timeline_json(&c, issue, t))
            .collect();
        Some(PageOut {
            body: to_json(&items),
            total: v.len(),
        })
    }

    /// `GET /repos/{o}/{r}/issues/comments`: comments of every issue, id ascending.
    pub(crate) fn api_comments(&self, rid: i64, range: TimeRange, win: Window) -> PageOut {
        let Some(c) = self.repo_ctx(rid) else {
            return empty();
        };
        let mut v: Vec<(&Issue, &Item)> = c
            .objs
            .iter()
            .flat_map(|o| o.issues.values())
            .flat_map(|i| i.timeline.iter().map(move |t| (i, t)))
            .filter(|(_, t)| matches!(t.event, Event::Comment) && range.contains(t.updated))
            .collect();
        v.sort_by_key(|(_, t)| t.id);
        let items: Vec<CommentJson<'_>> = win
            .of(&v)
            .iter()
            .map(|&(i, t)| self.comment_json(&c, i, t))
            .collect();
        PageOut {
            body: to_json(&items),
            total: v.len(),
        }
    }

    /// `GET /repos/{o}/{r}/issues/comments/{id}`.
    pub(crate) fn api_comment(&self, rid: i64, id: i64) -> Option<Vec<u8>> {
        let c = self.repo_ctx(rid)?;
        let &(index, _) = c.objs?.comments.get(&id)?;
        let issue = c.objs?.issues.get(&index)?;
        let item = issue.timeline.iter().find(|t| t.id == id)?;
        Some(to_json(&self.comment_json(&c, issue, item)))
    }

    /// `GET /repos/{o}/{r}/releases`: not deleted, id descending.
    pub(crate) fn api_releases(&self, rid: i64, win: Window) -> PageOut {
        let Some(c) = self.repo_ctx(rid) else {
            return empty();
        };
        let off = self.offset();
        let v: Vec<&Release> = c
            .objs
            .iter()
            .flat_map(|o| o.releases.iter().rev())
            .filter(|r| !r.deleted)
            .collect();
        let items: Vec<ReleaseJson<'_>> = win
            .of(&v)
            .iter()
            .map(|r| {
                let t = fmt_time(off, r.created);
                ReleaseJson {
                    id: r.id,
                    tag_name: &r.tag,
                    target_commitish: "main",
                    name: &r.title,
                    body: "",
                    url: format!("{}/releases/{}", c.api, r.id),
                    html_url: format!("{}/releases/tag/{}", c.html, r.tag),
                    tarball_url: format!("{}/archive/{}.tar.gz", c.html, r.tag),
                    zipball_url: format!("{}/archive/{}.zip", c.html, r.tag),
                    upload_url: format!("{}/releases/{}/assets", c.api, r.id),
                    hide_archive_links: false,
                    archive_download_count: ArchiveCountJson { zip: 0, tar_gz: 0 },
                    draft: false,
                    prerelease: false,
                    created_at: t.clone(),
                    published_at: t,
                    author: self.user_raw(r.author),
                    assets: [],
                }
            })
            .collect();
        PageOut {
            body: to_json(&items),
            total: v.len(),
        }
    }

    /// `GET /repos/{o}/{r}/branches`: by name. The commit's author is the owner.
    pub(crate) fn api_branches(&self, rid: i64, win: Window) -> PageOut {
        let Some(c) = self.repo_ctx(rid) else {
            return empty();
        };
        let owner = self.repo(rid).and_then(|r| self.user(r.owner_id));
        let (name, email, login) = owner.map_or(("", "", ""), |u| {
            (u.full_name.as_str(), u.email.as_str(), u.login.as_str())
        });
        let who = || PayloadUserJson {
            name,
            email,
            username: login,
        };
        let v: Vec<(&String, &Branch)> = c.objs.iter().flat_map(|o| o.branches.iter()).collect();
        let items: Vec<BranchJson<'_>> = win
            .of(&v)
            .iter()
            .map(|(b, br)| BranchJson {
                name: b,
                commit: PayloadCommitJson {
                    id: &br.sha,
                    message: format!("Update {b}\n"),
                    url: format!("{}/commit/{}", c.html, br.sha),
                    author: who(),
                    committer: who(),
                    verification: None,
                    timestamp: fmt_time(self.offset(), br.updated),
                    added: None,
                    removed: None,
                    modified: None,
                },
                protected: false,
                required_approvals: 0,
                enable_status_check: false,
                status_check_contexts: [],
                user_can_push: true,
                user_can_merge: true,
                effective_branch_protection_name: "",
            })
            .collect();
        PageOut {
            body: to_json(&items),
            total: v.len(),
        }
    }

    /// `GET /repos/{o}/{r}/statuses/{sha}`: newest (highest id) first, or oldest
    /// first; optionally only one state.
    pub(crate) fn api_statuses(
        &self,
        rid: i64,
        sha: &str,
        oldest_first: bool,
        state: Option<&str>,
        win: Window,
    ) -> PageOut {
        let Some(c) = self.repo_ctx(rid) else {
            return empty();
        };
        let off = self.offset();
        let mut v: Vec<&Status> = c
            .objs
            .iter()
            .flat_map(|o| o.statuses.iter())
            .filter(|s| s.sha == sha && state.is_none_or(|st| s.state == st))
            .collect();
        if !oldest_first {
            v.reverse();
        }
        let items: Vec<StatusJson<'_>> = win
            .of(&v)
            .iter()
            .map(|s| {
                let t = fmt_time(off, s.created);
                StatusJson {
                    id: s.id,
                    status: &s.state,
                    target_url: String::new(),
                    description: match s.state.as_str() {
                        "pending" => "Waiting to run",
                        "success" => "Successful",
                        "failure" => "Failing",
                        "error" => "Has been cancelled",
                        _ => "",
                    },
                    url: format!("{}/statuses/{}", c.api, s.sha),
                    context: &s.context,
                    creator: self.user_raw(s.creator),
                    created_at: t.clone(),
                    updated_at: t,
                }
            })
            .collect();
        PageOut {
            body: to_json(&items),
            total: v.len(),
        }
    }

    /// `GET /repos/{o}/{r}/actions/runs`: `{"workflow_runs":[...],"total_count":N}`,
    /// id descending.
    pub(crate) fn api_runs(&self, rid: i64, win: Window) -> PageOut {
        let Some(c) = self.repo_ctx(rid) else {
            return empty();
        };
        let off = self.offset();
        let v: Vec<&Run> = c.objs.iter().flat_map(|o| o.runs.iter().rev()).collect();
        let runs: Vec<RunJson<'_>> = win
            .of(&v)
            .iter()
            .map(|r| RunJson {
                id: r.id,
                url: format!("{}/actions/runs/{}", c.api, r.id),
                html_url: format!("{}/actions/runs/{}", c.html, r.number),
                display_title: r
                    .workflow
                    .rsplit_once('.')
                    .map_or(r.workflow.as_str(), |(stem, _)| stem),
                path: &r.workflow,
                event: "push",
                status: &r.status,
                conclusion: r.conclusion.as_deref(),
                head_sha: &r.head_sha,
                head_branch: "main",
                run_number: r.number,
                run_attempt: 1,
                created_at: fmt_time(off, r.created),
                updated_at: fmt_time(off, r.updated),
                started_at: r.started.map(|t| fmt_time(off, t)),
                completed_at: r.completed.map(|t| fmt_time(off, t)),
                repository_id: rid,
            })
            .collect();
        PageOut {
            body: to_json(&RunsJson {
                workflow_runs: runs,
                total_count: v.len(),
            }),
            total: v.len(),
        }
    }

    /// `GET /orgs/{org}/repos`: the org's repositories, id ascending.
    pub(crate) fn api_org_repos(&self, org_id: i64, win: Window) -> PageOut {
        let v: Vec<&RawValue> = self
            .repos()
            .iter()
            .filter(|r| r.owner_id == org_id)
            .map(|r| &*r.json)
            .collect();
        PageOut {
            body: to_json(&win.of(&v)),
            total: v.len(),
        }
    }
}

fn empty() -> PageOut {
    PageOut {
        body: b"[]".to_vec(),
        total: 0,
    }
}

// ----- the handle --------------------------------------------------------------------

impl FakeGitea {
    /// Move the simulated clock (see [`World::advance_clock`]).
    pub fn advance_clock(&self, secs: i64) {
        self.with_world(|w| w.advance_clock(secs))
    }

    /// See [`World::create_issue`].
    pub fn create_issue(&self, repo: &str, actor: &str, title: &str, is_pull: bool) -> i64 {
        self.with_world(|w| w.create_issue(repo, actor, title, is_pull))
    }

    /// See [`World::edit_issue`].
    pub fn edit_issue(
        &self,
        repo: &str,
        index: i64,
        actor: &str,
        title: Option<&str>,
        body: Option<&str>,
    ) {
        self.with_world(|w| w.edit_issue(repo, index, actor, title, body))
    }

    /// See [`World::close_issue_as`].
    pub fn close_issue_as(&self, repo: &str, index: i64, actor: &str) {
        self.with_world(|w| w.close_issue_as(repo, index, actor))
    }

    /// See [`World::reopen_issue_as`].
    pub fn reopen_issue_as(&self, repo: &str, index: i64, actor: &str) {
        self.with_world(|w| w.reopen_issue_as(repo, index, actor))
    }

    /// See [`World::label_issue`].
    pub fn label_issue(&self, repo: &str, index: i64, actor: &str, label: &str, add: bool) {
        self.with_world(|w| w.label_issue(repo, index, actor, label, add))
    }

    /// See [`World::assign_issue`].
    pub fn assign_issue(&self, repo: &str, index: i64, actor: &str, assignee: &str, add: bool) {
        self.with_world(|w| w.assign_issue(repo, index, actor, assignee, add))
    }

    /// See [`World::set_milestone`].
    pub fn set_milestone(&self, repo: &str, index: i64, actor: &str, milestone: Option<&str>) {
        self.with_world(|w| w.set_milestone(repo, index, actor, milestone))
    }

    /// See [`World::request_review`].
    pub fn request_review(&self, repo: &str, index: i64, actor: &str, reviewer: &str) {
        self.with_world(|w| w.request_review(repo, index, actor, reviewer))
    }

    /// See [`World::comment_on`].
    pub fn comment_on(&self, repo: &str, index: i64, actor: &str, body: &str) -> i64 {
        self.with_world(|w| w.comment_on(repo, index, actor, body))
    }

    /// See [`World::import_comment`].
    pub fn import_comment(&self, repo: &str, index: i64, actor: &str, body: &str) -> i64 {
        self.with_world(|w| w.import_comment(repo, index, actor, body))
    }

    /// See [`World::edit_comment`].
    pub fn edit_comment(&self, repo: &str, comment_id: i64, body: &str) {
        self.with_world(|w| w.edit_comment(repo, comment_id, body))
    }

    /// See [`World::add_release`].
    pub fn add_release(&self, repo: &str, actor: &str, tag: &str, title: &str) -> i64 {
        self.with_world(|w| w.add_release(repo, actor, tag, title))
    }

    /// See [`World::import_release`].
    pub fn import_release(&self, repo: &str, actor: &str, tag: &str, title: &str) -> i64 {
        self.with_world(|w| w.import_release(repo, actor, tag, title))
    }

    /// A repository whose issues are disabled: Gitea answers `404` on `/issues` and
    /// everything below it (comments, timelines), for good.
    pub fn disable_issues(&self, repo: &str) {
        self.fail_endpoint(repo, "issues", 404);
    }

    /// Every request below `/repos/{repo}/{tail}` answers `status` (a JSON error), for
    /// good: one repository's endpoint broken (e.g. `500` from a corrupt row).
    pub fn fail_endpoint(&self, repo: &str, tail: &str, status: u16) {
        self.inject(
            super::Fault::new(super::FaultKind::Status(status))
                .on_path(&format!("/repos/{repo}/{tail}"))
                .times(usize::MAX),
        );
    }

    /// See [`World::edit_release`].
    pub fn edit_release(&self, repo: &str, id: i64, title: &str) {
        self.with_world(|w| w.edit_release(repo, id, title))
    }

    /// See [`World::delete_release`].
    pub fn delete_release(&self, repo: &str, id: i64) {
        self.with_world(|w| w.delete_release(repo, id))
    }

    /// See [`World::set_branch_head`].
    pub fn set_branch_head(&self, repo: &str, branch: &str, sha: &str) {
        self.with_world(|w| w.set_branch_head(repo, branch, sha))
    }

    /// See [`World::add_status`].
    pub fn add_status(&self, repo: &str, sha: &str, context: &str, state: &str) -> i64 {
        self.with_world(|w| w.add_status(repo, sha, context, state))
    }

    /// See [`World::set_actions_supported`].
    pub fn set_actions_supported(&self, yes: bool) {
        self.with_world(|w| w.set_actions_supported(yes))
    }

    /// See [`World::add_run`].
    pub fn add_run(&self, repo: &str, workflow: &str, head_sha: &str, status: &str) -> i64 {
        self.with_world(|w| w.add_run(repo, workflow, head_sha, status))
    }

    /// See [`World::update_run`].
    pub fn update_run(&self, repo: &str, id: i64, status: &str, conclusion: Option<&str>) {
        self.with_world(|w| w.update_run(repo, id, status, conclusion))
    }
}
