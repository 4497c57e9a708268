//! `webhooks = true`: the webhook-shaped events of a batch, built beside each action's own
//! event and published in the same batch (the cursor moves only after both are acked, so a
//! kill between them loses neither; a re-publish has the same ids).
//!
//! The objects a payload needs (`event::hook::needs`) are fetched here, once per batch (a
//! [`Fetcher`] lives for one `Target::build`): every object is fetched at most once however
//! many actions of the batch name it. Objects are read as they are *now*; the payload
//! builders set what the action itself tells (an `opened` issue is open, a `closed` pull
//! request closed, merged or not: `event::hook::from_row`), the rest is as read.
//!
//! An object that cannot be read (a deleted issue: 404; a server error) leaves that hook
//! event out with a logged reason (`telemetry::HookSkipped`); the action's own event is
//! published regardless, and the cursor moves: the hook event is not retried.

use std::collections::HashMap;

use serde_json::Value;

use super::Context;
use crate::event::Event;
use crate::event::hook::{self as webhook, Action, Hook, Needs, RowObjects};
use crate::gitea::ActivityRow;
use crate::shutdown::Shutdown;
use crate::telemetry;

/// What the webhook events of a source ask for.
#[derive(Debug, Clone, Copy)]
pub struct HookSettings {
    /// `push_files = true`: the commits' file lists from the commit API.
    pub push_files: bool,
}

/// The objects fetched for one batch's hooks, by API path.
pub struct Fetcher<'a> {
    ctx: &'a Context,
    stop: &'a Shutdown,
    cache: HashMap<String, Result<Value, String>>,
    /// `(repo_id, ref)` to the `created` of the batch's empty `commit_repo` rows: the rows
    /// Gitea writes for a new branch, so that its push's `before` is zeros.
    new_refs: HashMap<(i64, String), Vec<i64>>,
    /// `(repo_id, ref)` to the `(created, sha)` of the batch's `push_tag` rows: the sha a
    /// later `delete_tag` row of the same tag removed (its own row does not name it).
    tag_shas: HashMap<(i64, String), Vec<(i64, String)>>,
    /// `(repo_id, ref)` to the `(created, sha)` of the batch's branch pushes: the value a new
    /// branch was created with (its empty row's `create` names it; Gitea's `CreateRef` is
    /// given the push's new commit), even when the branch is gone again by the time it is read.
    branch_shas: HashMap<(i64, String), Vec<(i64, String)>>,
    /// A feed's claims of the pushes its rows tell (`claiming`): the owner tag it claims as
    /// in the cross-feed index, and the identities claimed, for its cursor's window.
    claims: Option<(u64, Vec<(String, i64)>)>,
}

impl<'a> Fetcher<'a> {
    /// A fetcher for one batch; its reads are abandoned at `stop` (they are reads only).
    pub fn new(ctx: &'a Context, stop: &'a Shutdown) -> Fetcher<'a> {
        Fetcher {
            ctx,
            stop,
            cache: HashMap::new(),
            new_refs: HashMap::new(),
            tag_shas: HashMap::new(),
            branch_shas: HashMap::new(),
            claims: None,
        }
    }

    /// A feed's fetcher: the `push`, `create` and `delete` of its rows are claimed in the
    /// cross-feed index as `owner`, and left out when the `refs` kind told the same push
    /// first (`repo::refs`).
    pub fn claiming(mut self, owner: u64) -> Self {
        self.claims = Some((owner, Vec::new()));
        self
    }

    /// The identities claimed since the last call, to keep in the feed cursor's window (so
    /// that a restart seeds them).
    pub fn take_claims(&mut self) -> Vec<(String, i64)> {
        self.claims
            .as_mut()
            .map(|(_, c)| std::mem::take(c))
            .unwrap_or_default()
    }

    /// Claims a ref row's push (`after`: its new value) or deletion (`after` `None`) at
    /// `t`; false when the `refs` kind already told it.
    fn claim(&mut self, repo: (&str, &str), r#ref: &str, after: Option<&str>, t: i64) -> bool {
        let Some((owner, made)) = self.claims.as_mut() else {
            return true;
        };
        let index = &self.ctx.index;
        let (owner_name, name) = repo;
        match after {
            Some(sha) => {
                // Held from now, not from the row's second: a row older than the index
                // keeps (a catch-up after an outage) would not be held at all, and the
                // listing that follows would publish its push again.
                let now = chrono::Utc::now().timestamp().max(t);
                let key = crate::event::push_key(owner_name, name, r#ref, sha);
                let ok = index.reserve_as(*owner, &key, now, false);
                if ok {
                    made.push((key, now));
                }
                let r = crate::event::ref_key(owner_name, name, r#ref);
                index.note_head(&r, sha, t);
                ok
            }
            None => {
                let key = crate::event::delete_key(owner_name, name, r#ref);
                let ok = index.claim_span(*owner, &key, t, t);
                if ok {
                    made.push((format!("{}{key}", super::dedup::SPAN_PREFIX), t));
                }
                ok
            }
        }
    }

    /// Notes the rows of a batch that tell the push of the same ref created it, and the
    /// shas of the tags it pushed.
    pub fn scan<'r>(&mut self, rows: impl IntoIterator<Item = &'r ActivityRow>) {
        for r in rows {
            let a = &r.activity;
            if a.op_type == "push_tag"
                && let Some(sha) = webhook::pushed_sha(a)
            {
                self.tag_shas
                    .entry((a.repo_id, a.ref_name.clone()))
                    .or_default()
                    .push((a.created.timestamp(), sha));
            }
            if a.op_type == "commit_repo"
                && let Some(sha) = webhook::pushed_sha(a)
            {
                self.branch_shas
                    .entry((a.repo_id, a.ref_name.clone()))
                    .or_default()
                    .push((a.created.timestamp(), sha));
            }
            if a.op_type == "commit_repo" && a.content.is_empty() {
                self.new_refs
                    .entry((a.repo_id, a.ref_name.clone()))
                    .or_default()
                    .push(a.created.timestamp());
            }
        }
    }

    async fn get(&mut self, path: &[&str], query: &[(&str, String)]) -> Result<Value, String> {
        let mut key = path.join("/");
        for (k, v) in query {
            key.push_str(&format!("&{k}={v}"));
        }
        if let Some(v) = self.cache.get(&key) {
            return v.clone();
        }
        let client = &self.ctx.client;
        let stop = self.stop.clone();
        let r = tokio::select! {
            biased;
            _ = stop.wait() => return Err("abandoned at shutdown".to_string()),
            r = client.get_json::<Value>(path, query) => r.map_err(|e| e.to_string()),
        };
        self.cache.insert(key, r.clone());
        r
    }

    /// An object that may not exist: `Ok(None)` when Gitea answers 404 (cached the same).
    async fn get_opt(&mut self, path: &[&str]) -> Result<Option<Value>, String> {
        let key = format!("opt:{}", path.join("/"));
        let absent = |r: Result<Value, String>| r.map(|v| Some(v).filter(|v| !v.is_null()));
        if let Some(v) = self.cache.get(&key) {
            return absent(v.clone());
        }
        let client = &self.ctx.client;
        let stop = self.stop.clone();
        let r = tokio::select! {
            biased;
            _ = stop.wait() => return Err("abandoned at shutdown".to_string()),
            r = client.get_json::<Value>(path, &[]) => r,
        };
        let r = match r {
            Ok(v) => Ok(v),
            Err(e) if e.status() == Some(404) => Ok(Value::Null),
            Err(e) => Err(e.to_string()),
        };
        self.cache.insert(key, r.clone());
        absent(r)
    }

    /// Every page of a small list (open pull requests, releases), cached like an object.
    async fn list(&mut self, path: &[&str], query: &[(&str, String)]) -> Result<Value, String> {
        let mut key = format!("list:{}", path.join("/"));
        for (k, v) in query {
            key.push_str(&format!("&{k}={v}"));
        }
        if let Some(v) = self.cache.get(&key) {
            return v.clone();
        }
        let client = &self.ctx.client;
        let mut items = Vec::new();
        let mut result = Ok(());
        for page in 1..=10 {
            let stop = self.stop.clone();
            let p = tokio::select! {
                biased;
                _ = stop.wait() => return Err("abandoned at shutdown".to_string()),
                r = client.list_page(path, query, page, None) => r,
            };
            match p {
                Ok(p) => {
                    let asked = client.page_limit();
                    let more = p.more(items.len() + p.items.len(), asked);
                    items.extend(p.items);
                    if !more {
                        break;
                    }
                }
                Err(e) => {
                    result = Err(e.to_string());
                    break;
                }
            }
        }
        let r = result.map(|()| Value::Array(items));
        self.cache.insert(key, r.clone());
        r
    }
}

/// The fetched objects of one row or change (owned; borrowed into `RowObjects`).
#[derive(Default)]
struct Fetched {
    repo: Option<Value>,
    issue: Option<Value>,
    pull: Option<Value>,
    comment: Option<Value>,
    release: Option<Value>,
    ref_sha: Option<String>,
    open_pulls: Vec<Value>,
    commits: HashMap<String, Value>,
    workflow: Option<Value>,
    organization: Option<Value>,
    timeline: Vec<Value>,
    /// Why an object is missing, for the log.
    missing: Vec<String>,
}

async fn fetch(f: &mut Fetcher<'_>, owner: &str, name: &str, n: &Needs) -> Fetched {
    let mut out = Fetched::default();
    let note = |what: &str, e: String| format!("{what}: {e}");
    let base = ["repos", owner, name];
    // `last` is one segment per `/` (a branch `feature/x` is `branches/feature/x`, as
    // Gitea's routes take it).
    let path = |tail: &[&'static str], last: Option<&str>| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(tail.iter().map(|s| s.to_string()))
            .chain(
                last.into_iter()
                    .flat_map(|l| l.split('/'))
                    .map(str::to_string),
            )
            .collect()
    };
    async fn one(
        f: &mut Fetcher<'_>,
        p: Vec<String>,
        q: &[(&str, String)],
    ) -> Result<Value, String> {
        let p: Vec<&str> = p.iter().map(String::as_str).collect();
        f.get(&p, q).await
    }
    if n.repo {
        match one(f, path(&[], None), &[]).await {
            Ok(v) => out.repo = Some(v),
            Err(e) => out.missing.push(note("repository", e)),
        }
    }
    if let Some(i) = n.issue {
        match one(f, path(&["issues"], Some(&i.to_string())), &[]).await {
            Ok(v) => out.issue = Some(v),
            Err(e) => out.missing.push(note("issue", e)),
        }
    }
    if let Some(i) = n.pull {
        match one(f, path(&["pulls"], Some(&i.to_string())), &[]).await {
            Ok(v) => out.pull = Some(v),
            Err(e) => out.missing.push(note("pull request", e)),
        }
    }
    if let Some(id) = n.comment {
        match one(f, path(&["issues", "comments"], Some(&id.to_string())), &[]).await {
            Ok(v) => out.comment = Some(v),
            Err(e) => out.missing.push(note("comment", e)),
        }
    }
    if let Some(tag) = &n.release_tag {
        let p = path(&["releases"], None);
        let p: Vec<&str> = p.iter().map(String::as_str).collect();
        match f.list(&p, &[]).await {
            Ok(Value::Array(list)) => {
                out.release = list
                    .into_iter()
                    .find(|r| r["tag_name"].as_str() == Some(tag.as_str()));
                if out.release.is_none() {
                    out.missing
                        .push(format!("release: no release of tag {tag} is listed"));
                }
            }
            Ok(_) => {}
            Err(e) => out.missing.push(note("release", e)),
        }
    }
    if let Some(b) = &n.branch {
        match one(f, path(&["branches"], Some(b)), &[]).await {
            Ok(v) => out.ref_sha = v["commit"]["id"].as_str().map(str::to_string),
            Err(e) => out.missing.push(note("branch", e)),
        }
    }
    if let Some(t) = &n.tag {
        match one(f, path(&["tags"], Some(t)), &[]).await {
            // `id` is what the ref points to (the tag object of an annotated tag), the
            // value Gitea's `create` hook names; `commit.sha` the commit.
            Ok(v) => {
                out.ref_sha = v["id"]
                    .as_str()
                    .or(v["commit"]["sha"].as_str())
                    .map(str::to_string)
            }
            Err(e) => out.missing.push(note("tag", e)),
        }
    }
    if n.open_pulls {
        let p = path(&["pulls"], None);
        let p: Vec<&str> = p.iter().map(String::as_str).collect();
        match f.list(&p, &[("state", "open".to_string())]).await {
            Ok(Value::Array(list)) => out.open_pulls = list,
            Ok(_) => {}
            Err(e) => out.missing.push(note("open pull requests", e)),
        }
    }
    if let Some(id) = &n.workflow {
        match one(f, path(&["actions", "workflows"], Some(id)), &[]).await {
            Ok(v) => out.workflow = Some(v),
            Err(e) => out.missing.push(note("workflow", e)),
        }
    }
    if n.org {
        // A 404: the owner is a user, and the payload has no `organization`.
        match f.get_opt(&["orgs", owner]).await {
            Ok(v) => out.organization = v,
            Err(e) => out.missing.push(note("organization", e)),
        }
    }
    for sha in &n.commits {
        match one(f, path(&["git", "commits"], Some(sha)), &[]).await {
            Ok(v) => {
                out.commits.insert(sha.clone(), v);
            }
            Err(e) => out.missing.push(note("commit", e)),
        }
    }
    out
}

fn objects<'o>(
    f: &'o Fetched,
    repo: Option<&'o Value>,
    sender: Option<&'o Value>,
) -> RowObjects<'o> {
    RowObjects {
        repo: repo.or(f.repo.as_ref()),
        sender,
        issue: f.issue.as_ref(),
        pull: f.pull.as_ref(),
        comment: f.comment.as_ref(),
        release: f.release.as_ref(),
        ref_sha: f.ref_sha.as_deref(),
        deleted_sha: None,
        new_ref: false,
        open_pulls: &f.open_pulls,
        commits: Some(&f.commits),
        workflow: f.workflow.as_ref(),
        organization: f.organization.as_ref(),
        timeline: &f.timeline,
    }
}

fn events(
    ctx: &Context,
    env: &Action<'_>,
    op_type: &str,
    hooks: Result<Vec<Hook>, String>,
    missing: &[String],
) -> Vec<Event> {
    let repo = format!("{}/{}", env.owner, env.repo);
    let hooks = match hooks {
        Ok(h) => h,
        Err(e) => {
            let mut reason = e;
            if !missing.is_empty() {
                reason = format!("{reason} ({})", missing.join("; "));
            }
            ctx.telemetry.emit(telemetry::HookSkipped {
                repo: &repo,
                op_type,
                reason: &reason,
            });
            return Vec::new();
        }
    };
    hooks
        .iter()
        .filter_map(|h| match webhook::to_event(env, h) {
            Ok(e) => Some(e),
            Err(e) => {
                ctx.telemetry.emit(telemetry::HookSkipped {
                    repo: &repo,
                    op_type,
                    reason: &e.to_string(),
                });
                None
            }
        })
        .collect()
}

/// The webhook events of a feed row whose activity event is `action`.
pub async fn row_events(
    f: &mut Fetcher<'_>,
    settings: HookSettings,
    row: &ActivityRow,
    action: &Event,
) -> Vec<Event> {
    let a = &row.activity;
    let ctx = f.ctx;
    let needs = webhook::needs(a, settings.push_files);
    if !webhook::makes_hooks(&a.op_type) {
        return Vec::new();
    }
    let Some((owner, name)) = a.repo_names() else {
        // No repository (deleted or hidden): nothing a webhook could name.
        ctx.telemetry.emit(telemetry::HookSkipped {
            repo: "",
            op_type: &a.op_type,
            reason: "the row names no repository",
        });
        return Vec::new();
    };
    let raw: Value = serde_json::from_slice(row.raw()).unwrap_or_default();
    let row_comment = raw.get("comment").filter(|c| c.is_object());
    let mut needs = needs;
    if row_comment.is_some() {
        // The row carries its comment: no request for it.
        needs.comment = None;
    }
    let mut fetched = fetch(f, owner, name, &needs).await;
    if needs.open_pulls
        && let Some(why) = fetched.missing.iter().find(|m| m.starts_with("open pull"))
    {
        ctx.telemetry.emit(telemetry::HookIncomplete {
            repo: &format!("{owner}/{name}"),
            op_type: &a.op_type,
            field: "pull_request_sync",
            reason: why,
        });
    }
    if !needs.commits.is_empty() && fetched.commits.len() < needs.commits.len() {
        ctx.telemetry.emit(telemetry::HookIncomplete {
            repo: &format!("{owner}/{name}"),
            op_type: &a.op_type,
            field: "commits[].added/removed/modified",
            reason: &fetched.missing.join("; "),
        });
    }
    if let Some(index) = needs.timeline {
        // The items around the row: the status change and the `commit_ref` before it.
        let since = (a.created.with_timezone(&chrono::Utc) - chrono::Duration::seconds(2))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let index = index.to_string();
        let p = ["repos", owner, name, "issues", index.as_str(), "timeline"];
        match f.list(&p, &[("since", since)]).await {
            Ok(Value::Array(items)) => fetched.timeline = items,
            Ok(_) => {}
            Err(e) => ctx.telemetry.emit(telemetry::HookIncomplete {
                repo: &format!("{owner}/{name}"),
                op_type: &a.op_type,
                field: match a.op_type.as_str() {
                    "comment_pull" => {
                        "the comment's type (a review's is pull_request_review_comment)"
                    }
                    _ => "commit_id",
                },
                reason: &format!("timeline: {e}"),
            }),
        }
    }
    if a.op_type == "comment_pull" && needs.pull.is_some() && fetched.pull.is_none() {
        ctx.telemetry.emit(telemetry::HookIncomplete {
            repo: &format!("{owner}/{name}"),
            op_type: &a.op_type,
            field: "pull_request",
            reason: &fetched.missing.join("; "),
        });
    }
    if let Some(c) = row_comment {
        fetched.comment = Some(c.clone());
    }
    let repo = raw.get("repo").filter(|r| r.is_object());
    let sender = raw.get("act_user").filter(|u| u.is_object());
    let mut o = objects(&fetched, repo, sender);
    let t = a.created.timestamp();
    o.new_ref = f
        .new_refs
        .get(&(a.repo_id, a.ref_name.clone()))
        .is_some_and(|ts| ts.iter().any(|c| (c - t).abs() <= 2));
    // A new branch's empty row: the value its push in this batch (within two seconds) gave
    // it, before what the API says now.
    if a.op_type == "commit_repo" && a.content.is_empty() {
        let pushed = f
            .branch_shas
            .get(&(a.repo_id, a.ref_name.clone()))
            .and_then(|p| {
                p.iter()
                    .filter(|(c, _)| (c - t).abs() <= 2)
                    .min_by_key(|(c, _)| *c)
            })
            .map(|(_, sha)| sha.as_str());
        if pushed.is_some() {
            o.ref_sha = pushed;
        }
    }
    if (needs.branch.is_some() || needs.tag.is_some()) && o.ref_sha.is_none() {
        ctx.telemetry.emit(telemetry::HookIncomplete {
            repo: &format!("{owner}/{name}"),
            op_type: &a.op_type,
            field: "sha",
            reason: &fetched.missing.join("; "),
        });
    }
    // The latest push of this tag at or before its deletion, in this batch.
    let deleted_sha = (a.op_type == "delete_tag")
        .then(|| f.tag_shas.get(&(a.repo_id, a.ref_name.clone())))
        .flatten()
        .and_then(|pushes| {
            pushes
                .iter()
                .filter(|(c, _)| *c <= t)
                .max_by_key(|(c, _)| *c)
        })
        .map(|(_, sha)| sha.as_str());
    if a.op_type == "delete_tag" && deleted_sha.is_none() {
        ctx.telemetry.emit(telemetry::HookIncomplete {
            repo: &format!("{owner}/{name}"),
            op_type: &a.op_type,
            field: "before",
            reason: "a deleted tag's row does not name its sha and the API no longer has the \
                     tag; its push_tag row was not in the same batch",
        });
    }
    o.deleted_sha = deleted_sha;
    let mut hooks = webhook::from_row(&ctx.gitea_url, a, &o);
    // A ref's `push`, `create` and `delete` are told once, by the feed or the `refs` kind,
    // whichever saw the push first: its identity is the repository, the ref and its value.
    if let Ok(list) = hooks.as_mut()
        && list
            .iter()
            .any(|h| matches!(h.event_type, "push" | "create" | "delete"))
    {
        let after = list
            .iter()
            .find_map(|h| match h.event_type {
                "push" => h.body["after"].as_str(),
                "create" => h.body["sha"].as_str(),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let deleted = matches!(a.op_type.as_str(), "delete_branch" | "delete_tag")
            || after.as_deref() == Some(webhook::ZERO_SHA);
        // Older rows name a branch without `refs/heads/`.
        let full_ref = match a.ref_name.starts_with("refs/") {
            true => a.ref_name.clone(),
            false if matches!(a.op_type.as_str(), "push_tag" | "delete_tag") => {
                format!("refs/tags/{}", a.ref_name)
            }
            false => format!("refs/heads/{}", a.ref_name),
        };
        let claimed = match (deleted, after) {
            (true, _) => f.claim((owner, name), &full_ref, None, t),
            (false, Some(sha)) => f.claim((owner, name), &full_ref, Some(&sha), t),
            // No value known: nothing to match it by.
            (false, None) => true,
        };
        if !claimed {
            ctx.telemetry.emit(telemetry::HookSkipped {
                repo: &format!("{owner}/{name}"),
                op_type: &a.op_type,
                reason: "the refs kind already published this push",
            });
            list.retain(|h| !matches!(h.event_type, "push" | "create" | "delete"));
        }
    }
    let time = a.created.to_rfc3339();
    let env = Action {
        gitea_url: &ctx.gitea_url,
        prefixes: &ctx.prefixes,
        visibility: action.visibility,
        owner,
        repo: name,
        action_id: &action.id,
        key: &action.key,
        time: &time,
        created: t,
    };
    events(ctx, &env, &a.op_type, hooks, &fetched.missing)
}

/// The webhook events of a repository endpoint's change whose own event is `action`.
pub async fn change_events(
    f: &mut Fetcher<'_>,
    owner: &str,
    name: &str,
    change: &webhook::Change<'_>,
    time: &str,
    action: &Event,
) -> Vec<Event> {
    let ctx = f.ctx;
    let needs = webhook::needs_change(change);
    let fetched = fetch(f, owner, name, &needs).await;
    if !needs.commits.is_empty() && fetched.commits.len() < needs.commits.len() {
        ctx.telemetry.emit(telemetry::HookIncomplete {
            repo: &format!("{owner}/{name}"),
            op_type: &action.op_type,
            field: "commit",
            reason: &fetched.missing.join("; "),
        });
    }
    for (asked, got, field) in [
        (
            needs.workflow.is_some(),
            fetched.workflow.is_some(),
            "workflow",
        ),
        (
            needs.org,
            !fetched
                .missing
                .iter()
                .any(|m| m.starts_with("organization")),
            "organization",
        ),
    ] {
        if asked && !got {
            ctx.telemetry.emit(telemetry::HookIncomplete {
                repo: &format!("{owner}/{name}"),
                op_type: &action.op_type,
                field,
                reason: &fetched.missing.join("; "),
            });
        }
    }
    if change.noun == "comment" && needs.pull.is_some() && fetched.pull.is_none() {
        ctx.telemetry.emit(telemetry::HookIncomplete {
            repo: &format!("{owner}/{name}"),
            op_type: &action.op_type,
            field: "pull_request",
            reason: &fetched.missing.join("; "),
        });
    }
    let o = objects(&fetched, None, None);
    let hooks = webhook::from_change(change, &o);
    let env = Action {
        gitea_url: &ctx.gitea_url,
        prefixes: &ctx.prefixes,
        visibility: action.visibility,
        owner,
        repo: name,
        action_id: &action.id,
        key: &action.key,
        time,
        created: action.created,
    };
    events(ctx, &env, &action.op_type, hooks, &fetched.missing)
}
