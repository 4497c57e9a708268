//! The world's operations on repository objects (the public `World` methods behind
//! [`FakeGitea::create_issue`](crate::FakeGitea::create_issue) and friends): they
//! resolve names, hand out ids, change the model (`objects`) and push the feed
//! actions Gitea records.
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

use crate::base::{ActionId, TOKEN_USER};
use crate::objects::{
    Branch, Event, Issue, Job, Label, Milestone, Release, Run, Status, Tag, bump, name_hash,
};
use crate::push;
use crate::rows::{NewAction, NewComment, truncate_comment};
use crate::world::World;
use crate::zone::to_datetime;

impl World {
    fn now_secs(&self) -> i64 {
        self.now().timestamp()
    }

    fn full_name(&self, rid: i64) -> String {
        self.repo(rid)
            .map(|r| r.full_name.clone())
            .unwrap_or_default()
    }

    /// The repository id and the actor's id for a change to an existing issue.
    fn target(&mut self, repo: &str, index: i64, actor: &str) -> Option<(i64, i64)> {
        let rid = self.repo_id(repo)?;
        self.objects.repo(rid)?.issues.get(&index)?;
        Some((rid, self.add_user(actor)))
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
        self.objects
            .push_item(rid, index, id, poster, body, event, now);
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
        let o = self.objects.repo_mut(rid);
        let index = o
            .issues
            .keys()
            .next_back()
            .map_or(1, |&i| i + 1)
            .max(gen_next);
        // `refs/pull/{index}/head`: the head branch's commit (a branch the simulator never
        // made has a made-up one, as every Gitea pull request has a head commit).
        let head = format!("pr-{index}");
        let pull_head = o.branches.get(&head).map_or_else(
            || push::sha_hex(rid as u64, index as u64),
            |b| b.sha.clone(),
        );
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
                head,
                base: "main".to_string(),
                merged: None,
                pull_head,
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
        if let Some(issue) = self.objects.issue_mut(rid, index) {
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

    /// Set the head branch of pull request `index` (default `pr-{index}`), in the same
    /// repository: a push to it is what Gitea turns into `pull_request_sync`.
    pub fn set_pull_head(&mut self, repo: &str, index: i64, branch: &str) {
        let Some(rid) = self.repo_id(repo) else {
            return;
        };
        let sha = self
            .objects
            .repos
            .get(&rid)
            .and_then(|o| o.branches.get(branch))
            .map(|b| b.sha.clone());
        if let Some(issue) = self.objects.issue_mut(rid, index) {
            issue.head = branch.to_string();
            if let Some(sha) = sha {
                issue.pull_head = sha;
            }
        }
    }

    /// Merge open pull request `index`: closed and merged (`merged`, `merged_at`,
    /// `merged_by`), and the `merge_pull_request` feed action (content `INDEX|TITLE`).
    pub fn merge_pull(&mut self, repo: &str, index: i64, actor: &str) {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return;
        };
        let now = self.now_secs();
        let title = match self.objects.issue_mut(rid, index) {
            Some(issue) if issue.is_pull && issue.closed.is_none() => {
                issue.closed = Some(now);
                issue.merged = Some((now, poster));
                issue.updated = now;
                issue.title.clone()
            }
            _ => return,
        };
        self.add_item(rid, index, poster, "", Event::MergePull, now);
        self.issue_action(
            rid,
            actor,
            "merge_pull_request",
            format!("{index}|{title}"),
            now,
            None,
        );
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

    /// A pushed commit `sha` whose message closes (`close`) or reopens issue `index`, as
    /// `services/issue/commit.go` `UpdateIssuesCommit` handles it: a `commit_ref` item
    /// (`ref_commit_sha`, the body a link to the commit), then, for an issue whose state it
    /// changes, the `close` / `reopen` item and feed action of `ChangeStatus` (Gitea's webhook
    /// sends the commit as `commit_id`). A pull request gets the reference only ("Only issues
    /// can be closed/reopened this way").
    pub fn close_issue_by_commit(
        &mut self,
        repo: &str,
        index: i64,
        actor: &str,
        sha: &str,
        close: bool,
    ) {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return;
        };
        let now = self.now_secs();
        let body = format!(
            "<a href=\"/{}/commit/{sha}\">{}</a>",
            self.full_name(rid),
            if close { "Fix it" } else { "Bring it back" }
        );
        let sha = sha.to_string();
        self.add_item(rid, index, poster, &body, Event::CommitRef { sha }, now);
        if !self.objects.is_pull(rid, index) {
            self.set_closed(repo, index, actor, close);
        }
    }

    fn set_closed(&mut self, repo: &str, index: i64, actor: &str, close: bool) {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return;
        };
        let now = self.now_secs();
        let changed = self.objects.issue_mut(rid, index).is_some_and(|issue| {
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
        let what = if self.objects.is_pull(rid, index) {
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

    /// Add (`add`) or remove a label (created in the repository on first use): a
    /// `label` item whose body is `"1"` when added and `""` when removed.
    pub fn label_issue(&mut self, repo: &str, index: i64, actor: &str, label: &str, add: bool) {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return;
        };
        let lid = match self.objects.find_label(rid, label) {
            Some(id) => id,
            None if add => {
                let id = bump(&mut self.objects.next_label_id);
                let color = format!("{:06x}", name_hash(label) & 0x00ff_ffff);
                self.objects.repo_mut(rid).labels.push(Label {
                    id,
                    name: label.to_string(),
                    color,
                });
                id
            }
            None => return,
        };
        let now = self.now_secs();
        let changed = self.objects.issue_mut(rid, index).is_some_and(|issue| {
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
        let changed = self.objects.issue_mut(rid, index).is_some_and(|issue| {
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
                    .objects
                    .repo(rid)
                    .and_then(|o| o.milestones.iter().find(|m| m.title == title).map(|m| m.id));
                Some(match found {
                    Some(id) => id,
                    None => {
                        let id = bump(&mut self.objects.next_milestone_id);
                        self.objects.repo_mut(rid).milestones.push(Milestone {
                            id,
                            title: title.to_string(),
                            created: now,
                        });
                        id
                    }
                })
            }
        };
        let old = match self.objects.issue_mut(rid, index) {
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
        let changed = self.objects.issue_mut(rid, index).is_some_and(|issue| {
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
        let is_pull = self.objects.is_pull(rid, index);
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
        self.objects
            .repo_mut(rid)
            .comments
            .insert(id, (index, Some(aid)));
        id
    }

    /// A review of type "comment" submitted on pull request `index` by `actor`, with its
    /// code comments, as go-gitea/gitea services/pull/review.go `SubmitReview` stores it (a
    /// `code` comment each, a `review` comment with the summary) and
    /// services/feed/notifier.go `PullRequestReview` writes its rows: a `comment_pull` per
    /// code comment, then one for the review when its summary is not empty (content
    /// `INDEX|first line`, `comment_id` the comment). Returns the review comment's id.
    pub fn comment_review(
        &mut self,
        repo: &str,
        index: i64,
        actor: &str,
        summary: &str,
        code: &[&str],
    ) -> i64 {
        let Some((rid, poster)) = self.target(repo, index, actor) else {
            return 0;
        };
        let now = self.now_secs();
        let first_line = |b: &str| b.split('\n').next().unwrap_or("").to_string();
        for body in code {
            let id = self.add_item(rid, index, poster, body, Event::Code, now);
            let comment = NewComment {
                issue_index: index,
                body: body.to_string(),
                is_pull: true,
            };
            let content = format!("{index}|{}", first_line(body));
            self.issue_action(
                rid,
                actor,
                "comment_pull",
                content,
                now,
                Some((id, comment)),
            );
        }
        let id = self.add_item(rid, index, poster, summary, Event::Review, now);
        if !summary.trim().is_empty() {
            let comment = NewComment {
                issue_index: index,
                body: summary.to_string(),
                is_pull: true,
            };
            let content = format!("{index}|{}", first_line(summary));
            self.issue_action(
                rid,
                actor,
                "comment_pull",
                content,
                now,
                Some((id, comment)),
            );
        }
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
        self.objects
            .repo_mut(rid)
            .comments
            .insert(id, (index, None));
        id
    }

    /// Edit a comment: its body and `updated_at` (also in the feed row's comment
    /// object; the row's `content` keeps the old text, as in Gitea). The issue's
    /// `updated_at` does not change.
    pub fn edit_comment(&mut self, repo: &str, comment_id: i64, body: &str) {
        let Some(rid) = self.repo_id(repo) else {
            return;
        };
        let Some(&(index, aid)) = self
            .objects
            .repo(rid)
            .and_then(|o| o.comments.get(&comment_id))
        else {
            return;
        };
        let now = self.now_secs();
        if let Some(item) = self
            .objects
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
        self.objects.repo_mut(rid).releases.push(Release {
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
        self.objects.repo_mut(rid).releases.push(Release {
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

    /// Delete `branch` (the object only: its `delete_branch` feed row is the caller's
    /// `push_action`). Pull requests keep their head commit (`refs/pull/{index}/head`).
    pub fn delete_branch(&mut self, repo: &str, branch: &str) {
        if let Some(rid) = self.repo_id(repo) {
            self.objects.repo_mut(rid).branches.remove(branch);
        }
    }

    /// Point `branch` at `sha` (creating the branch), with a commit timestamp of now.
    pub fn set_branch_head(&mut self, repo: &str, branch: &str, sha: &str) {
        let rid = self.ensure_repo(repo, TOKEN_USER);
        if self.repo(rid).is_none() {
            return;
        }
        let now = self.now_secs();
        let o = self.objects.repo_mut(rid);
        o.branches.insert(
            branch.to_string(),
            Branch {
                sha: sha.to_string(),
                updated: now,
            },
        );
        // A push to the head branch of an open pull request moves `refs/pull/{index}/head`
        // (`services/pull/pull.go` `AddTestPullRequestTask`, `pushToBaseRepo`).
        for issue in o.issues.values_mut() {
            if issue.is_pull && issue.closed.is_none() && issue.head == branch {
                issue.pull_head = sha.to_string();
            }
        }
    }

    /// A `git push` of `n_commits` (at least one) new commits to `branch` by `actor`
    /// (`gitea-actions`: a workflow's token, whose rows only an admin's token sees), as
    /// go-gitea/gitea services/repository/push.go `pushUpdates` handles it: the branch
    /// moves to the push's head commit, the repository's `updated_at` moves
    /// (`UpdateRepositoryUpdatedTime`), and the feed rows are written: for a new branch the
    /// empty `commit_repo` row of services/feed/notifier.go `CreateRef` first, then the
    /// push's row (`PushCommits`: its compare URL from the old head, zeros for a new
    /// branch). Returns the new head.
    pub fn git_push(&mut self, actor: &str, repo: &str, branch: &str, n_commits: usize) -> String {
        let rid = self.ensure_repo(repo, actor);
        let full = self.full_name(rid);
        let old = self
            .objects
            .repo(rid)
            .and_then(|o| o.branches.get(branch))
            .map(|b| b.sha.clone());
        let counter = crate::rows::PUSH_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = n_commits.max(1);
        let zeros = "0".repeat(40);
        let content = push::counter_push_json_from(
            counter,
            actor,
            &full,
            branch,
            n,
            old.as_deref().unwrap_or(&zeros),
        );
        let head = push::sha_hex(counter, 0);
        let ref_name = format!("refs/heads/{branch}");
        if old.is_none() {
            self.push_action(NewAction::new("commit_repo", actor, &full).ref_name(&ref_name));
        }
        self.set_branch_head(&full, branch, &head);
        self.touch_repo(rid);
        self.push_action(
            NewAction::new("commit_repo", actor, &full)
                .content(&content)
                .ref_name(&ref_name),
        );
        head
    }

    /// A forced push of `branch` back to `sha` (a commit it had before), by `actor`: the
    /// branch moves, `updated_at` moves, and the push's row names no new commit (go-gitea/gitea
    /// services/repository/push.go `pushUpdates`: `CommitsBeforeUntil(old)` of an ancestor is
    /// empty) with `sha` as its head commit.
    pub fn git_force_push(&mut self, actor: &str, repo: &str, branch: &str, sha: &str) {
        let rid = self.ensure_repo(repo, actor);
        let full = self.full_name(rid);
        let old = self
            .objects
            .repo(rid)
            .and_then(|o| o.branches.get(branch))
            .map(|b| b.sha.clone())
            .unwrap_or_else(|| "0".repeat(40));
        self.set_branch_head(&full, branch, sha);
        self.touch_repo(rid);
        let content = push::forced_push_json(&full, actor, &old, sha);
        self.push_action(
            NewAction::new("commit_repo", actor, &full)
                .content(&content)
                .ref_name(&format!("refs/heads/{branch}")),
        );
    }

    /// `git push --delete` of `branch` by `actor`: the branch is gone, `updated_at` moves,
    /// and the empty `delete_branch` row of services/feed/notifier.go `DeleteRef` is written.
    pub fn git_delete_branch(&mut self, actor: &str, repo: &str, branch: &str) {
        let rid = self.ensure_repo(repo, actor);
        let full = self.full_name(rid);
        self.delete_branch(&full, branch);
        self.touch_repo(rid);
        self.push_action(
            NewAction::new("delete_branch", actor, &full).ref_name(&format!("refs/heads/{branch}")),
        );
    }

    /// A new lightweight tag `tag` on `commit`, pushed by `actor`: the tag exists, `updated_at`
    /// moves, and the `push_tag` row is written (`NewAction::push_tag`).
    pub fn git_push_tag(&mut self, actor: &str, repo: &str, tag: &str, commit: &str) {
        let rid = self.ensure_repo(repo, actor);
        let full = self.full_name(rid);
        let now = self.now_secs();
        self.objects.repo_mut(rid).tags.insert(
            tag.to_string(),
            Tag {
                object: commit.to_string(),
                commit: commit.to_string(),
                created: now,
            },
        );
        self.touch_repo(rid);
        self.push_action(NewAction::push_tag(actor, &full, tag, commit));
    }

    /// `git push --delete` of tag `tag` by `actor`: the tag is gone, `updated_at` moves, and
    /// the `delete_tag` row is written (`NewAction::delete_tag`).
    pub fn git_delete_tag(&mut self, actor: &str, repo: &str, tag: &str) {
        let rid = self.ensure_repo(repo, actor);
        let full = self.full_name(rid);
        self.objects.repo_mut(rid).tags.remove(tag);
        self.touch_repo(rid);
        self.push_action(NewAction::delete_tag(actor, &full, tag));
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
        self.objects.repo_mut(rid).statuses.push(Status {
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
        let o = self.objects.repo_mut(rid);
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

/// Mirror syncs and Actions jobs.
impl World {
    /// The login of a repository's owner (`""` for an unknown repository).
    fn owner_login(&self, rid: i64) -> String {
        self.repo(rid)
            .and_then(|r| self.user(r.owner_id))
            .map(|u| u.login.clone())
            .unwrap_or_default()
    }

    /// A pull mirror's sync found a new branch at `sha` (go-gitea/gitea
    /// services/mirror/mirror_pull.go `SyncPullMirror`, a result with no old commit): the
    /// branch exists, and the feed notifier (services/feed/notifier.go `SyncPushCommits`,
    /// `SyncCreateRef`) writes, as the repository's owner, a `mirror_sync_push` row with
    /// the push JSON of `repo_module.NewPushCommits()` (no commits, no head commit, no
    /// compare URL) and then a `mirror_sync_create` row with empty content, both naming
    /// `refs/heads/{branch}`. Returns the two actions.
    pub fn mirror_sync_new_branch(
        &mut self,
        repo: &str,
        branch: &str,
        sha: &str,
    ) -> (ActionId, ActionId) {
        let rid = self.ensure_repo(repo, TOKEN_USER);
        let owner = self.owner_login(rid);
        let full = self.full_name(rid);
        self.set_branch_head(&full, branch, sha);
        let ref_name = format!("refs/heads/{branch}");
        let push = self.push_action(
            NewAction::new("mirror_sync_push", &owner, &full)
                .content(push::DELETED_TAG_PUSH_JSON)
                .ref_name(&ref_name),
        );
        let create = self
            .push_action(NewAction::new("mirror_sync_create", &owner, &full).ref_name(&ref_name));
        (push, create)
    }

    /// A pull mirror's sync found a branch removed upstream (`SyncPullMirror`, a result
    /// with no new commit): the branch is gone, and `SyncDeleteRef` writes one
    /// `mirror_sync_delete` row (empty content, the owner as actor); no push row.
    pub fn mirror_sync_deleted_branch(&mut self, repo: &str, branch: &str) -> ActionId {
        let rid = self.ensure_repo(repo, TOKEN_USER);
        let owner = self.owner_login(rid);
        let full = self.full_name(rid);
        self.delete_branch(&full, branch);
        self.push_action(
            NewAction::new("mirror_sync_delete", &owner, &full)
                .ref_name(&format!("refs/heads/{branch}")),
        )
    }

    /// Add a job `name` (`runs-on: labels`) to run `run_id`, with `status` `queued`,
    /// `waiting`, `in_progress` or `completed` (models/actions/run_job.go `ActionRunJob`,
    /// attempt 1). Returns the job id, 0 for an unknown run.
    pub fn add_job(
        &mut self,
        repo: &str,
        run_id: i64,
        name: &str,
        labels: &[&str],
        status: &str,
    ) -> i64 {
        let Some(rid) = self.repo_id(repo) else {
            return 0;
        };
        let now = self.now_secs();
        let known = self
            .objects
            .repo(rid)
            .is_some_and(|o| o.runs.iter().any(|r| r.id == run_id));
        if !known {
            return 0;
        }
        let id = bump(&mut self.objects.next_job_id);
        self.objects.repo_mut(rid).jobs.push(Job {
            id,
            run_id,
            name: name.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            status: status.to_string(),
            conclusion: None,
            attempt: 1,
            created: now,
            started: (status == "in_progress" || status == "completed").then_some(now),
            completed: (status == "completed").then_some(now),
        });
        id
    }

    /// Change a job's status and conclusion; `started_at` set when it starts,
    /// `completed_at` when it is `completed`.
    pub fn update_job(&mut self, repo: &str, id: i64, status: &str, conclusion: Option<&str>) {
        let now = self.now_secs();
        let Some(rid) = self.repo_id(repo) else {
            return;
        };
        let Some(job) = self
            .objects
            .repos
            .get_mut(&rid)
            .and_then(|o| o.jobs.iter_mut().find(|j| j.id == id))
        else {
            return;
        };
        job.status = status.to_string();
        job.conclusion = conclusion.map(str::to_string);
        if matches!(status, "in_progress" | "completed") && job.started.is_none() {
            job.started = Some(now);
        }
        job.completed = (status == "completed").then(|| job.completed.unwrap_or(now));
    }
}
