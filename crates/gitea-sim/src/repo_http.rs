//! The repository endpoints' handlers: from a repository, the parsed filters and a
//! page window to the page's JSON and its total (`X-Total-Count`), reading the model
//! (`objects`) through the world. Routing, query parsing and the `Link` header are
//! in `server`.

use std::cmp::Reverse;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::objects::{
    Branch, Event, Issue, Item, Job, KindFilter, Release, RepoObjects, Run, StateFilter, Status,
    TimeRange,
};
use crate::repo_json::{
    ArchiveCountJson, BranchJson, CommentJson, IssueJson, LabelJson, MilestoneJson,
    PayloadCommitJson, PayloadUserJson, PullMetaJson, ReleaseJson, RepoMetaJson, RunJson, RunsJson,
    StatusJson, TimelineJson,
};
use crate::world::{PageOut, World};
use crate::zone::fmt_time;

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

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings, integers and raw JSON: serialization cannot fail.
    serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec())
}

/// What rendering an issue or timeline item needs about its repository.
#[derive(Clone)]
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
        let objs = self.objects.repo(rid);
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
                merged: issue.merged.is_some(),
                merged_at: issue.merged.map(|(t, _)| fmt_time(off, t)),
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
        let mut ref_commit_sha = "";
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
            Event::CommitRef { sha } => ref_commit_sha = sha.as_str(),
            Event::Comment
            | Event::Close
            | Event::Reopen
            | Event::MergePull
            | Event::Review
            | Event::Code => {}
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
            ref_commit_sha,
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

    /// `GET /repos/issues/search`: issues and pull requests of every repository (of `owner`
    /// only, when given) updated in `range`, newest first, each with its `repository`.
    pub(crate) fn api_issues_search(
        &self,
        owner: Option<&str>,
        range: TimeRange,
        win: Window,
    ) -> PageOut {
        let mut v: Vec<(RepoCtx<'_>, &Issue)> = Vec::new();
        for repo in self.repos() {
            let Some(c) = self.repo_ctx(repo.id) else {
                continue;
            };
            if owner.is_some_and(|o| !c.owner.eq_ignore_ascii_case(o)) {
                continue;
            }
            let Some(objs) = c.objs else { continue };
            for i in objs.issues.values().filter(|i| range.contains(i.updated)) {
                v.push((c.clone(), i));
            }
        }
        v.sort_by_key(|(_, i)| (Reverse(i.updated), Reverse(i.id)));
        let page = win.of(&v);
        let items: Vec<IssueJson<'_>> = page.iter().map(|(c, i)| self.issue_json(c, i)).collect();
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

    /// `GET /repos/{o}/{r}/tags`: newest first (go-gitea/gitea modules/git/repo_tag.go
    /// `GetTagInfos`: `for-each-ref --sort -*creatordate refs/tags`, then paged), each as
    /// services/convert/convert.go `ToTag` writes it.
    pub(crate) fn api_tags(&self, rid: i64, win: Window) -> PageOut {
        let Some(c) = self.repo_ctx(rid) else {
            return empty();
        };
        let mut v: Vec<(&String, &crate::objects::Tag)> =
            c.objs.iter().flat_map(|o| o.tags.iter()).collect();
        v.sort_by_key(|(name, t)| (Reverse(t.created), *name));
        let items: Vec<serde_json::Value> = win
            .of(&v)
            .iter()
            .map(|(name, t)| {
                serde_json::json!({
                    "name": name,
                    "message": "",
                    "id": t.object,
                    "commit": {
                        "url": format!("{}/git/commits/{}", c.api, t.commit),
                        "sha": t.commit,
                        "created": fmt_time(self.offset(), t.created),
                    },
                    "zipball_url": format!("{}/archive/{name}.zip", c.html),
                    "tarball_url": format!("{}/archive/{name}.tar.gz", c.html),
                })
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

    /// `GET /repos/{o}/{r}/actions/runs/{run}/jobs` (go-gitea/gitea
    /// routers/api/v1/repo/action.go `ListWorkflowRunJobs`): `{"jobs":[...],"total_count":N}`,
    /// id ascending, each job as services/convert/convert.go `ToActionWorkflowJob` makes it
    /// (modules/structs/repo_actions.go `ActionWorkflowJob`): `url` `{api}/actions/jobs/{id}`,
    /// `html_url` the run's page `/jobs/{id}`, `head_sha`/`head_branch` the run's, times in
    /// UTC (`AsTime().UTC()`: a time not reached yet is the Unix epoch), `steps` `[]` (no
    /// task), no runner (`runner_id`, `runner_name` `omitempty`), `conclusion` only once
    /// completed (`omitempty`). `None`: no such run (Gitea: 404).
    pub(crate) fn api_run_jobs(&self, rid: i64, run_id: i64, win: Window) -> Option<PageOut> {
        let c = self.repo_ctx(rid)?;
        let objs = c.objs?;
        let run = objs.runs.iter().find(|r| r.id == run_id)?;
        let utc = |t: Option<i64>| {
            chrono::DateTime::from_timestamp(t.unwrap_or(0), 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let v: Vec<&Job> = objs.jobs.iter().filter(|j| j.run_id == run_id).collect();
        let jobs: Vec<serde_json::Value> = win
            .of(&v)
            .iter()
            .map(|j| {
                let mut o = serde_json::json!({
                    "id": j.id,
                    "url": format!("{}/actions/jobs/{}", c.api, j.id),
                    "html_url": format!("{}/actions/runs/{}/jobs/{}", c.html, run.number, j.id),
                    "run_id": run.id,
                    "run_url": format!("{}/actions/runs/{}", c.api, run.id),
                    "name": j.name,
                    "labels": j.labels,
                    "run_attempt": j.attempt,
                    "head_sha": run.head_sha,
                    "head_branch": "main",
                    "status": j.status,
                    "steps": [],
                    "created_at": utc(Some(j.created)),
                    "started_at": utc(j.started),
                    "completed_at": utc(j.completed),
                });
                if let Some(concl) = &j.conclusion {
                    o["conclusion"] = serde_json::json!(concl);
                }
                o
            })
            .collect();
        Some(PageOut {
            body: to_json(&serde_json::json!({ "jobs": jobs, "total_count": v.len() })),
            total: v.len(),
        })
    }

    /// `GET /repos/{o}/{r}/actions/workflows/{id}`: the `ActionWorkflow` of a workflow file
    /// some run of the repository ran, as go-gitea/gitea routers/api/v1/repo/action.go
    /// `ActionsGetWorkflow` answers it (services/convert/convert.go
    /// `getActionWorkflowEntry`): `id` the file name, `name` the file name (the workflow
    /// YAML names none), `path` under `.gitea/workflows`, `state` `active`, both dates the
    /// default branch's head commit's (here: the first run's creation), `deleted_at` Go's
    /// zero time. `None`: no such workflow (Gitea: 404).
    pub(crate) fn api_workflow(&self, rid: i64, id: &str) -> Option<Vec<u8>> {
        let c = self.repo_ctx(rid)?;
        let first = c.objs?.runs.iter().find(|r| r.workflow == id)?;
        let at = fmt_time(self.offset(), first.created);
        let branch = "main";
        let v = serde_json::json!({
            "id": id,
            "name": id,
            "path": format!(".gitea/workflows/{id}"),
            "state": "active",
            "created_at": at,
            "updated_at": at,
            "url": format!("{}/actions/workflows/{id}", c.api),
            "html_url": format!("{}/src/branch/{branch}/.gitea/workflows/{id}", c.html),
            "badge_url": format!("{}/actions/workflows/{id}/badge.svg?branch={branch}", c.html),
            "deleted_at": "0001-01-01T00:00:00Z",
        });
        Some(to_json(&v))
    }

    /// A pull request as `GET /repos/{o}/{r}/pulls/{index}` answers it: the issue's fields
    /// and `head`/`base` (branch, sha, repository), `merged`, `merged_by`, ...
    fn pull_value(&self, c: &RepoCtx<'_>, issue: &Issue) -> serde_json::Value {
        use serde_json::{Value, json};
        let off = self.offset();
        let mut v = serde_json::to_value(self.issue_json(c, issue)).unwrap_or(Value::Null);
        let repo: Value = self
            .repo(c.rid)
            .and_then(|r| serde_json::from_str(r.json.get()).ok())
            .unwrap_or(Value::Null);
        let sha = |b: &str| {
            c.objs
                .and_then(|o| o.branches.get(b))
                .map_or(String::new(), |br| br.sha.clone())
        };
        let side = |b: &str| {
            json!({
                "label": b, "ref": b, "sha": sha(b), "repo_id": c.rid, "repo": repo,
            })
        };
        // `services/convert/pull.go` `ToAPIPullRequest`: the head branch's commit while the
        // branch exists, else `refs/pull/{index}/head`'s, which is then `head.ref` too. An
        // open pull request's branch exists in Gitea (deleting it closes the pull request:
        // `services/repository/branch.go`), so one the simulator never made is told by name.
        let head_side = || {
            let exists = c.objs.is_some_and(|o| o.branches.contains_key(&issue.head));
            let mut h = side(&issue.head);
            if !exists {
                h["sha"] = json!(issue.pull_head);
                if issue.closed.is_some() {
                    h["ref"] = json!(format!("refs/pull/{}/head", issue.index));
                }
            }
            h
        };
        if let Value::Object(m) = &mut v {
            for k in [
                "pull_request",
                "repository",
                "ref",
                "original_author",
                "original_author_id",
            ] {
                m.remove(k);
            }
            let html = World::issue_html(c, issue);
            let merged = issue.merged;
            m.insert("url".into(), json!(html));
            m.insert("diff_url".into(), json!(format!("{html}.diff")));
            m.insert("patch_url".into(), json!(format!("{html}.patch")));
            m.insert("mergeable".into(), json!(merged.is_none()));
            m.insert("merged".into(), json!(merged.is_some()));
            m.insert(
                "merged_at".into(),
                json!(merged.map(|(t, _)| fmt_time(off, t))),
            );
            m.insert(
                "merge_commit_sha".into(),
                json!(merged.map(|_| sha(&issue.base))),
            );
            m.insert(
                "merged_by".into(),
                merged
                    .and_then(|(_, by)| self.user_raw(by))
                    .and_then(|u| serde_json::from_str(u.get()).ok())
                    .unwrap_or(Value::Null),
            );
            m.insert("base".into(), side(&issue.base));
            m.insert("head".into(), head_side());
            m.insert("merge_base".into(), json!(sha(&issue.base)));
            m.insert("draft".into(), json!(false));
            m.insert("allow_maintainer_edit".into(), json!(false));
            m.insert("review_comments".into(), json!(0));
            let reviewers: Vec<Value> = issue
                .reviewers
                .iter()
                .filter_map(|&u| self.user_raw(u))
                .filter_map(|u| serde_json::from_str(u.get()).ok())
                .collect();
            m.insert("requested_reviewers".into(), json!(reviewers));
        }
        v
    }

    /// `GET /repos/{o}/{r}/pulls/{index}`.
    pub(crate) fn api_pull(&self, rid: i64, index: i64) -> Option<Vec<u8>> {
        let c = self.repo_ctx(rid)?;
        let issue = c.objs?.issues.get(&index).filter(|i| i.is_pull)?;
        Some(to_json(&self.pull_value(&c, issue)))
    }

    /// `GET /repos/{o}/{r}/pulls?state=`: newest first.
    pub(crate) fn api_pulls(&self, rid: i64, state: StateFilter, win: Window) -> PageOut {
        let Some(c) = self.repo_ctx(rid) else {
            return empty();
        };
        let mut v: Vec<&Issue> = c
            .objs
            .iter()
            .flat_map(|o| o.issues.values())
            .filter(|i| i.is_pull)
            .filter(|i| match state {
                StateFilter::Open => i.closed.is_none(),
                StateFilter::Closed => i.closed.is_some(),
                StateFilter::All => true,
            })
            .collect();
        v.sort_by_key(|i| Reverse(i.id));
        let items: Vec<serde_json::Value> =
            win.of(&v).iter().map(|&i| self.pull_value(&c, i)).collect();
        PageOut {
            body: to_json(&items),
            total: v.len(),
        }
    }

    /// `GET /repos/{o}/{r}/branches/{name}`.
    pub(crate) fn api_branch(&self, rid: i64, name: &str) -> Option<Vec<u8>> {
        let c = self.repo_ctx(rid)?;
        c.objs?.branches.get(name)?;
        let all = self.api_branches(
            rid,
            Window {
                page: 1,
                limit: usize::MAX,
            },
        );
        let list: Vec<serde_json::Value> = serde_json::from_slice(&all.body).ok()?;
        let b = list
            .into_iter()
            .find(|b| b["name"].as_str() == Some(name))?;
        Some(to_json(&b))
    }

    /// `GET /repos/{o}/{r}/git/commits/{sha}`: a commit of a known branch head or of a
    /// pushed row. The simulator keeps no trees: `files` is one file named after the sha,
    /// `modified` (enough for `push_files` to have something to fill).
    pub(crate) fn api_git_commit(&self, rid: i64, sha: &str) -> Option<Vec<u8>> {
        let c = self.repo_ctx(rid)?;
        if sha.len() < 7 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let v = serde_json::json!({
            "url": format!("{}/git/commits/{sha}", c.api),
            "sha": sha,
            "html_url": format!("{}/commit/{sha}", c.html),
            "commit": { "message": "", "tree": { "sha": sha } },
            "parents": [],
            "files": [ { "filename": format!("src/{}.txt", &sha[..7]), "status": "modified" } ],
        });
        Some(to_json(&v))
    }

    /// `GET /orgs/{org}/repos`: the org's repositories, id ascending.
    /// `/admin/orgs`, `/user/orgs`: every org (the token's user is taken to belong to
    /// each), in id order, without the unlisted.
    pub(crate) fn api_orgs(&self, win: Window) -> PageOut {
        let v: Vec<&RawValue> = self
            .users()
            .iter()
            .filter(|u| u.is_org && !self.unlisted.contains(&u.login))
            .filter_map(|u| u.org_json.as_deref())
            .collect();
        PageOut {
            body: to_json(&win.of(&v)),
            total: v.len(),
        }
    }

    /// `/repos/search`: every repository, in id order, without the unlisted (an unlisted
    /// owner's too), wrapped as
    /// Gitea wraps it (`{"ok": true, "data": [...]}`).
    ///
    /// `owner` (`uid` with `exclusive=true`): only the repositories that account owns.
    /// `by_update` (`sort=updated`): by `updated_unix`, newest first when `Some(true)`
    /// (`order=desc`), ties by id (go-gitea/gitea routers/api/v1/repo/repo.go `Search`:
    /// `sort`/`order` to `db.SearchOrderByRecentUpdated` / `SearchOrderByLeastUpdated`,
    /// models/repo/search.go `"updated_unix DESC"`, then `id`).
    pub(crate) fn api_repos_search(
        &self,
        win: Window,
        owner: Option<i64>,
        by_update: Option<bool>,
    ) -> PageOut {
        let mut repos: Vec<&crate::rows::Repo> = self
            .repos()
            .filter(|r| {
                let owner = r.full_name.split('/').next().unwrap_or_default();
                !self.unlisted.contains(&r.full_name) && !self.unlisted.contains(owner)
            })
            .filter(|r| owner.is_none_or(|o| r.owner_id == o))
            .collect();
        if let Some(newest_first) = by_update {
            // Never changed: its creation time (`rebuild_repo_json`).
            let t = |r: &crate::rows::Repo| match r.updated {
                0 => 1_700_000_000 + r.id * 7200,
                t => t,
            };
            repos.sort_by_key(|r| (t(r), r.id));
            if newest_first {
                repos.reverse();
            }
        }
        let v: Vec<&RawValue> = repos.into_iter().map(|r| &*r.json).collect();
        let page = to_json(&win.of(&v));
        let mut body = b"{\"ok\":true,\"data\":".to_vec();
        body.extend_from_slice(&page);
        body.push(b'}');
        PageOut {
            body,
            total: v.len(),
        }
    }

    pub(crate) fn api_org_repos(&self, org_id: i64, win: Window) -> PageOut {
        let v: Vec<&RawValue> = self
            .repos()
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
