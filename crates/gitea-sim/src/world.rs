//! The simulated data: users, orgs, repositories and action rows, with per-feed
//! indexes sorted by `created`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;

use crate::base::{ActionId, TOKEN_USER, raw, splitmix};
use crate::engine::{TableOp, TableRow};
use crate::objects::Objects;
use crate::push;
use crate::rows::{
    ACTIONS_BOT_ID, ACTIONS_BOT_LOGIN, Action, ActionSpec, CommentData, Content, FeedKey,
    LogicalAction, NewAction, Repo, User, Viewer, Visibility, forgejo_comment_text,
    forgejo_content, is_actions_bot,
};
use crate::zone::{ServerZone, fmt_time, to_datetime};

/// One row in a feed index. Indexes are sorted by `(created, row)`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    created: i64,
    row: i64,
    action: i64,
    /// The action's `act_user_id`, for the visibility condition of a feed.
    actor: i64,
}

impl Entry {
    fn key(&self) -> (i64, i64) {
        (self.created, self.row)
    }
}

/// A computed feed page.
pub(crate) struct PageOut {
    pub(crate) body: Vec<u8>,
    pub(crate) total: usize,
}

/// Per-repository generator state (issue numbers, open issues and pulls, tags).
#[derive(Default)]
pub(crate) struct RepoGen {
    pub(crate) next_index: i64,
    pub(crate) open_issues: Vec<i64>,
    pub(crate) closed_issues: Vec<i64>,
    pub(crate) open_prs: Vec<i64>,
    pub(crate) releases: u32,
    pub(crate) branches: u32,
}

impl RepoGen {
    /// Make the generators number their next issue after `index` (an issue or pull
    /// request made by `World::create_issue`).
    pub(crate) fn reserve_index(&mut self, index: i64) {
        self.next_index = self.next_index.max(index + 1);
    }

    /// The next issue index the generators would hand out.
    pub(crate) fn next_index(&self) -> i64 {
        self.next_index.max(1)
    }
}

/// The simulated Gitea database. A [`super::FeedHook`] gets `&mut World` and can
/// change it with the same operations as [`super::FakeGitea`].
pub struct World {
    base_url: String,
    offset: ServerZone,
    users: Vec<User>,
    user_by_login: HashMap<String, i64>,
    /// The Gitea Actions bot ([`ACTIONS_BOT_ID`]): no row in `users`, as none in Gitea's
    /// `user` table.
    actions_bot: User,
    /// Some action was done by the Actions bot (its rows may have to be hidden).
    bot_acted: bool,
    repos: Vec<Repo>,
    repo_by_name: HashMap<String, i64>,
    actions: HashMap<i64, Action>,
    indexes: HashMap<FeedKey, Vec<Entry>>,
    ops: Vec<Box<str>>,
    op_ids: HashMap<Box<str>, u16>,
    next_row_id: i64,
    next_comment_id: i64,
    /// Rows created before this were hard-deleted and are never indexed again.
    purged_before: i64,
    pub(crate) rng: StdRng,
    pub(crate) gen_calls: u64,
    /// Orgs and repositories (`owner/name`) the token no longer sees in listings.
    pub(crate) unlisted: std::collections::HashSet<String>,
    pub(crate) repo_gen: HashMap<i64, RepoGen>,
    /// Issues, comments, releases, branches, statuses and runs (see `objects`).
    pub(crate) objects: Objects,
    /// Seconds added to the wall clock by [`World::now`] ([`World::advance_clock`]).
    clock_skew: i64,
    /// Engine mode: the changes of the action table not applied yet, in order (see
    /// `engine`); `None` under [`crate::Engine::Random`], which serves the indexes.
    table_ops: Option<Vec<TableOp>>,
    /// The most rows one action has (original and copies): how far back from a row id
    /// its action's id can be.
    max_rows: usize,
    /// Play Forgejo ([`crate::SimOptions::forgejo`]): its content and ref forms at
    /// output time, hard deletions.
    forgejo: bool,
    /// Render users as a site admin reads them ([`crate::SimOptions::admin`]):
    /// services/convert/user.go `toUser` with `authed` fills the real e-mail address and the
    /// admin-only fields (`last_login`, `language`, ...).
    pub(crate) admin_view: bool,
}

impl World {
    /// A world; `mirror` (engine mode) records every change of the feeds' rows as a
    /// [`TableOp`] for [`World::take_table_ops`]; `forgejo` plays Forgejo's rows.
    pub(crate) fn new(
        base_url: String,
        offset: ServerZone,
        seed: u64,
        mirror: bool,
        forgejo: bool,
    ) -> World {
        let bot = actions_bot(&base_url, offset);
        let mut w = World {
            base_url,
            offset,
            users: Vec::new(),
            user_by_login: HashMap::new(),
            actions_bot: bot,
            bot_acted: false,
            repos: Vec::new(),
            repo_by_name: HashMap::new(),
            actions: HashMap::new(),
            indexes: HashMap::new(),
            ops: Vec::new(),
            op_ids: HashMap::new(),
            next_row_id: 1,
            next_comment_id: 1,
            purged_before: i64::MIN,
            rng: StdRng::seed_from_u64(seed),
            gen_calls: 0,
            unlisted: Default::default(),
            repo_gen: HashMap::new(),
            objects: Objects::default(),
            clock_skew: 0,
            table_ops: mirror.then(Vec::new),
            max_rows: 1,
            forgejo,
            admin_view: false,
        };
        w.add_user(TOKEN_USER);
        w
    }

    // ----- users, orgs, repositories -------------------------------------------------

    /// Add a user; idempotent (returns the existing id, also when it is an org).
    pub fn add_user(&mut self, login: &str) -> i64 {
        self.add_account(login, false)
    }

    /// Add an org; idempotent. An existing plain user of that name (e.g. created as
    /// a repository owner by `add_repo`) becomes an org.
    pub fn add_org(&mut self, name: &str) -> i64 {
        self.add_account(name, true)
    }

    fn add_account(&mut self, login: &str, is_org: bool) -> i64 {
        if is_actions_bot(login) {
            // A system user, never a row (models/user/user_system.go `NewActionsUser`).
            return ACTIONS_BOT_ID;
        }
        let key = login.to_lowercase();
        if let Some(&id) = self.user_by_login.get(&key) {
            let convert = is_org && self.user(id).is_some_and(|u| !u.is_org);
            if convert {
                // A name first seen as a repository owner, now declared an org.
                self.change_account(&key, |u| u.is_org = true);
            }
            return id;
        }
        let id = self.users.len() as i64 + 1;
        let user = self.make_account(id, login, is_org, Visibility::Public, false);
        self.users.push(user);
        self.user_by_login.insert(key, id);
        id
    }

    fn make_account(
        &self,
        id: i64,
        login: &str,
        is_org: bool,
        visibility: Visibility,
        keep_activity_private: bool,
    ) -> User {
        let full_name = if is_org {
            format!("{login} Inc.")
        } else {
            let mut c = login.chars();
            match c.next() {
                Some(f) => format!("{}{} Example", f.to_uppercase(), c.as_str()),
                None => String::new(),
            }
        };
        let email = if is_org {
            String::new()
        } else if self.admin_view {
            // The address itself, which only an admin (or the user) is shown.
            format!("{login}@mail.example.com")
        } else {
            format!("{login}@noreply.example.org")
        };
        let (last_login, language) = match self.admin_view && !is_org {
            true => (fmt_time(self.offset, 1_790_000_000 + id * 60), "en-US"),
            false => ("0001-01-01T00:00:00Z".to_string(), ""),
        };
        let base = &self.base_url;
        let avatar = format!("{base}/avatars/{:016x}{:016x}", splitmix(id as u64), id);
        let created = fmt_time(self.offset, 1_700_000_000 + id * 3600);
        let user_json = json!({
            "id": id,
            "login": login,
            "login_name": "",
            "source_id": 0,
            "full_name": full_name,
            "email": email,
            "avatar_url": avatar,
            "html_url": format!("{base}/{login}"),
            "language": language,
            "is_admin": false,
            "last_login": last_login,
            "created": created,
            "restricted": false,
            "active": !is_org,
            "prohibit_login": false,
            "location": "",
            "website": "",
            "description": "",
            "visibility": visibility.name(),
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
            "username": login,
        });
        let org_json = is_org.then(|| {
            raw(json!({
                "id": id,
                "name": login,
                "username": login,
                "full_name": full_name,
                "email": "",
                "avatar_url": avatar,
                "description": "",
                "website": "",
                "location": "",
                "visibility": visibility.name(),
                "repo_admin_change_team_access": false,
            }))
        });
        User {
            id,
            login: login.to_string(),
            email,
            full_name,
            is_org,
            visibility,
            keep_activity_private,
            json: raw(user_json),
            org_json,
        }
    }

    /// Set a user's or an org's visibility (no-op for an unknown login or the Actions
    /// bot). Gitea reads it at query time, so it applies to every row already made.
    pub fn set_user_visibility(&mut self, login: &str, visibility: Visibility) {
        self.change_account(login, |u| u.visibility = visibility);
    }

    /// Set a user's "keep activity private" (no-op for an unknown login or the Actions
    /// bot); read at query time, like the visibility.
    pub fn set_keep_activity_private(&mut self, login: &str, keep: bool) {
        self.change_account(login, |u| u.keep_activity_private = keep);
    }

    /// Change an account's flags and rebuild its JSON (and its repositories', which
    /// embed the owner).
    fn change_account(&mut self, login: &str, f: impl FnOnce(&mut User)) {
        let Some(&id) = self.user_by_login.get(&login.to_lowercase()) else {
            return;
        };
        let Some(slot) = usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.users.get_mut(i))
        else {
            return;
        };
        f(slot);
        let (login, is_org, visibility, keep) = (
            slot.login.clone(),
            slot.is_org,
            slot.visibility,
            slot.keep_activity_private,
        );
        let user = self.make_account(id, &login, is_org, visibility, keep);
        if let Some(slot) = usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.users.get_mut(i))
        {
            *slot = user;
        }
        let owned: Vec<i64> = self
            .repos
            .iter()
            .filter(|r| r.owner_id == id)
            .map(|r| r.id)
            .collect();
        for rid in owned {
            self.rebuild_repo_json(rid);
        }
    }

    /// The actors whose rows `viewer` may not see in feed `key`, as of now: Gitea's
    /// visibility condition (go-gitea/gitea models/activities/action.go
    /// `ActivityQueryCondition`, "check activity visibility for actor"), read at query
    /// time. Empty when no condition applies or nobody is hidden.
    ///
    /// * A site admin: no condition. Nor for a user reading their own user feed
    ///   (models/activities/action_list.go `GetFeeds`: "if the actor is the requested
    ///   user or is an administrator, we can skip the ActivityQueryCondition").
    /// * Anonymous (`opts.Actor == nil`): `act_user_id IN (SELECT id FROM user WHERE
    ///   keep_activity_private = false AND visibility = public)`.
    /// * Any other user: `act_user_id IN (SELECT id FROM user WHERE (keep_activity_private
    ///   = false AND visibility IN (public, limited)) OR id = <viewer>)`, and in an org's
    ///   feed `OR id = <org>` ("An organization can always see the activities whose
    ///   `act_user_id` is the same as its id"). In a user's feed Gitea also admits the orgs
    ///   that user belongs to; the simulator has no org membership, so that clause admits
    ///   nobody here.
    ///
    /// The Actions bot ([`ACTIONS_BOT_ID`]) has no `user` row, so the subquery never yields
    /// it: its rows are hidden from everyone but admins (and the reader of a user feed
    /// that skips the condition).
    pub(crate) fn hidden_actors(&self, viewer: Viewer, key: FeedKey) -> Vec<i64> {
        let (viewer_id, signed) = match viewer {
            Viewer::User { admin: true, .. } => return Vec::new(),
            Viewer::User { id, .. } => {
                let own = matches!(key, FeedKey::Recv(u) | FeedKey::Actor(u) if u == id);
                if own {
                    return Vec::new();
                }
                (Some(id), true)
            }
            Viewer::Anonymous => (None, false),
        };
        // Only an org's feed is `FeedKey::Recv(org)` with an org.
        let feed_org = match key {
            FeedKey::Recv(u) if signed && self.user(u).is_some_and(|o| o.is_org) => Some(u),
            _ => None,
        };
        let mut hidden: Vec<i64> = self
            .users
            .iter()
            .filter(|u| {
                let readable = !u.keep_activity_private
                    && match u.visibility {
                        Visibility::Public => true,
                        Visibility::Limited => signed,
                        Visibility::Private => false,
                    };
                !readable && Some(u.id) != viewer_id && Some(u.id) != feed_org
            })
            .map(|u| u.id)
            .collect();
        if self.bot_acted {
            hidden.insert(0, ACTIONS_BOT_ID);
        }
        hidden
    }

    /// `owner/name` of every repository, in creation order.
    pub fn repo_names(&self) -> Vec<String> {
        self.repos().map(|r| r.full_name.clone()).collect()
    }

    /// Names of every org, in creation order.
    pub fn org_names(&self) -> Vec<String> {
        self.users
            .iter()
            .filter(|u| u.is_org)
            .map(|u| u.login.clone())
            .collect()
    }

    /// Add a repository (the owner is created as a user when missing); idempotent.
    pub fn add_repo(&mut self, owner: &str, name: &str) -> i64 {
        let owner_id = self.add_user(owner);
        self.add_repo_for(owner_id, name)
    }

    pub(crate) fn add_repo_for(&mut self, owner_id: i64, name: &str) -> i64 {
        let owner_login = match self.user(owner_id) {
            Some(u) => u.login.clone(),
            None => return 0,
        };
        let full_name = format!("{owner_login}/{name}");
        let key = full_name.to_lowercase();
        if let Some(&id) = self.repo_by_name.get(&key) {
            return id;
        }
        let id = self.repos.len() as i64 + 1;
        self.repos.push(Repo {
            id,
            owner_id,
            name: name.to_string(),
            full_name,
            private: false,
            watchers: Vec::new(),
            json: raw(serde_json::Value::Null),
            updated: 0,
            deleted: false,
        });
        self.repo_by_name.insert(key, id);
        self.rebuild_repo_json(id);
        id
    }

    /// `user` watches `repo` (`owner/name`; created when missing).
    pub fn add_watcher(&mut self, repo: &str, user: &str) {
        let uid = self.add_user(user);
        let rid = self.ensure_repo(repo, user);
        self.add_watcher_id(rid, uid);
    }

    pub(crate) fn add_watcher_id(&mut self, rid: i64, uid: i64) {
        if let Some(r) = self.repo_mut(rid)
            && r.owner_id != uid
            && !r.watchers.contains(&uid)
        {
            r.watchers.push(uid);
            self.rebuild_repo_json(rid);
        }
    }

    /// Make a repository private or public; no-op when unknown.
    pub fn set_private(&mut self, repo: &str, private: bool) {
        if let Some(rid) = self.repo_by_name.get(&repo.to_lowercase()).copied()
            && let Some(r) = self.repo_mut(rid)
        {
            r.private = private;
            self.rebuild_repo_json(rid);
        }
    }

    /// A push changed `rid`: its `updated_at` is now (go-gitea/gitea
    /// services/repository/push.go `pushUpdates`: `UpdateRepositoryUpdatedTime(..., time.Now())`).
    pub(crate) fn touch_repo(&mut self, rid: i64) {
        let now = self.now().timestamp();
        if let Some(r) = usize::try_from(rid - 1)
            .ok()
            .and_then(|i| self.repos.get_mut(i))
        {
            r.updated = now;
        }
        self.rebuild_repo_json(rid);
    }

    fn rebuild_repo_json(&mut self, rid: i64) {
        let Some(r) = self.repo(rid) else { return };
        let Some(owner) = self.user(r.owner_id) else {
            return;
        };
        let base = &self.base_url;
        let host = base
            .split("://")
            .nth(1)
            .and_then(|s| s.split(['/', ':']).next())
            .unwrap_or("localhost");
        let html = format!("{base}/{}", r.full_name);
        let created = fmt_time(self.offset, 1_700_000_000 + rid * 7200);
        let updated = match r.updated {
            0 => created.clone(),
            t => fmt_time(self.offset, t),
        };
        let v = json!({
            "id": r.id,
            "owner": owner.json,
            "name": r.name,
            "full_name": r.full_name,
            "description": "",
            "empty": false,
            "private": r.private,
            "fork": false,
            "template": false,
            "parent": null,
            "mirror": false,
            "size": 1024,
            "language": "",
            "languages_url": format!("{base}/api/v1/repos/{}/languages", r.full_name),
            "html_url": html,
            "url": format!("{base}/api/v1/repos/{}", r.full_name),
            "link": "",
            "ssh_url": format!("git@{host}:{}.git", r.full_name),
            "clone_url": format!("{html}.git"),
            "original_url": "",
            "website": "",
            "stars_count": 0,
            "forks_count": 0,
            "watchers_count": r.watchers.len() + 1,
            "open_issues_count": 0,
            "open_pr_counter": 0,
            "release_counter": 0,
            "default_branch": "main",
            "archived": false,
        });
        let more = json!({
            "created_at": created,
            "updated_at": updated,
            "archived_at": "1970-01-01T00:00:00Z",
            "permissions": {"admin": true, "push": true, "pull": true},
            "has_issues": true,
            "has_wiki": true,
            "has_pull_requests": true,
            "has_projects": true,
            "has_releases": true,
            "has_packages": true,
            "has_actions": true,
            "ignore_whitespace_conflicts": false,
            "allow_merge_commits": true,
            "allow_rebase": true,
            "allow_squash_merge": true,
            "default_merge_style": "merge",
            "avatar_url": "",
            // go-gitea/gitea services/convert/repository.go `innerToRepo`:
            // `Internal: !repo.IsPrivate && repo.Owner.Visibility == api.VisibleTypePrivate`.
            "internal": !r.private && owner.visibility == Visibility::Private,
            "mirror_interval": "",
            "object_format_name": "sha1",
        });
        // Two literals: one would exceed `json!`'s macro recursion limit.
        let mut v = v;
        if let (Some(a), serde_json::Value::Object(b)) = (v.as_object_mut(), more) {
            a.extend(b);
        }
        let j = raw(v);
        if let Some(r) = self.repo_mut(rid) {
            r.json = j;
        }
    }

    /// Resolve `owner/name`, creating it when missing; a name without `/` is a repo
    /// of `default_owner`.
    pub(crate) fn ensure_repo(&mut self, repo: &str, default_owner: &str) -> i64 {
        if let Some(&id) = self.repo_by_name.get(&repo.to_lowercase()) {
            return id;
        }
        match repo.split_once('/') {
            Some((o, n)) => self.add_repo(o, n),
            None => self.add_repo(default_owner, repo),
        }
    }

    /// A user or org by id; [`ACTIONS_BOT_ID`] is the Actions bot (as go-gitea/gitea
    /// models/user/user.go `GetPossibleUserByID` answers `NewActionsUser()` for it).
    pub(crate) fn user(&self, id: i64) -> Option<&User> {
        if id == ACTIONS_BOT_ID {
            return Some(&self.actions_bot);
        }
        usize::try_from(id - 1).ok().and_then(|i| self.users.get(i))
    }

    pub(crate) fn user_by_login(&self, login: &str) -> Option<&User> {
        let id = *self.user_by_login.get(&login.to_lowercase())?;
        self.user(id)
    }

    pub(crate) fn users(&self) -> &[User] {
        &self.users
    }

    pub(crate) fn repo(&self, id: i64) -> Option<&Repo> {
        usize::try_from(id - 1).ok().and_then(|i| self.repos.get(i))
    }

    fn repo_mut(&mut self, id: i64) -> Option<&mut Repo> {
        usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.repos.get_mut(i))
    }

    pub(crate) fn repo_by_full_name(&self, owner: &str, name: &str) -> Option<&Repo> {
        let id = *self
            .repo_by_name
            .get(&format!("{owner}/{name}").to_lowercase())?;
        self.repo(id)
    }

    /// Every repository that is not deleted, in creation order.
    pub(crate) fn repos(&self) -> impl Iterator<Item = &Repo> {
        self.repos.iter().filter(|r| !r.deleted)
    }

    /// Id of the repository `owner/name` (case-insensitive).
    pub(crate) fn repo_id(&self, full_name: &str) -> Option<i64> {
        self.repo_by_name.get(&full_name.to_lowercase()).copied()
    }

    /// `http://host:port` + path prefix.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The server's time zone (a fixed offset, or a named zone with its
    /// daylight-saving rules).
    pub fn offset(&self) -> ServerZone {
        self.offset
    }

    /// Current time in the server's time zone (the wall clock plus any
    /// [`World::advance_clock`]).
    pub fn now(&self) -> DateTime<FixedOffset> {
        let wall = Utc::now();
        let now = chrono::TimeDelta::try_seconds(self.clock_skew)
            .and_then(|d| wall.checked_add_signed(d))
            .unwrap_or(wall);
        now.with_timezone(&self.offset.offset_at(now.timestamp()))
    }

    /// Move the simulated clock `secs` seconds forward (negative: back). It is used by
    /// [`World::now`], hence by the default `created` of new actions, the times of the
    /// repository objects and the generators.
    pub fn advance_clock(&mut self, secs: i64) {
        self.clock_skew = self.clock_skew.saturating_add(secs);
    }

    pub(crate) fn op_id(&mut self, op: &str) -> u16 {
        if let Some(&id) = self.op_ids.get(op) {
            return id;
        }
        // More than 65,535 distinct op types would be absurd; share the last slot then.
        let id = u16::try_from(self.ops.len()).unwrap_or(u16::MAX);
        if usize::from(id) == self.ops.len() {
            self.ops.push(op.into());
            self.op_ids.insert(op.into(), id);
        }
        id
    }

    fn op_name(&self, op: u16) -> &str {
        self.ops.get(usize::from(op)).map_or("", |s| s)
    }

    pub(crate) fn alloc_comment_id(&mut self) -> i64 {
        let id = self.next_comment_id;
        self.next_comment_id += 1;
        id
    }

    // ----- actions ------------------------------------------------------------------

    /// Insert an action: the original row and one copy per receiver.
    pub fn push_action(&mut self, a: NewAction) -> ActionId {
        let actor = self.add_user(&a.actor);
        let repo = self.ensure_repo(&a.repo, &a.actor);
        let op = self.op_id(&a.op_type);
        let created = a
            .created
            .map_or_else(|| self.now().timestamp(), |t| t.timestamp());
        let comment = a.comment.map(|c| {
            Box::new(CommentData {
                id: a.comment_id,
                body: c.body.into(),
                issue_index: c.issue_index,
                is_pull: c.is_pull,
                updated: 0,
            })
        });
        self.insert(ActionSpec {
            op,
            actor,
            repo,
            content: Content::Text(a.content.into()),
            ref_name: a.ref_name.into(),
            comment_id: a.comment_id,
            comment,
            created,
            copy_delay: a.copy_delay_secs,
            visible: a.visible,
        })
    }

    /// Whether an action like `s` (same repository, op, actor, ref and text content) was
    /// created within `within` seconds of it, among the newest rows. Two such actions are
    /// the documented limit of telling a repeat from a copy (an org's copy may be a second
    /// late, so up to two seconds apart); random live activity makes none.
    pub(crate) fn near_repeat(&self, s: &ActionSpec, within: i64) -> bool {
        let Content::Text(text) = &s.content else {
            return false;
        };
        let from = (self.next_row_id - 256).max(0);
        (from..self.next_row_id).any(|id| {
            self.actions.get(&id).is_some_and(|a| {
                a.op == s.op
                    && a.actor == s.actor
                    && a.repo == s.repo
                    && a.ref_name == s.ref_name
                    && (a.created - s.created).abs() <= within
                    && matches!(&a.content, Content::Text(t) if t == text)
            })
        })
    }

    pub(crate) fn insert(&mut self, mut s: ActionSpec) -> ActionId {
        self.bot_acted |= s.actor == ACTIONS_BOT_ID;
        // Forgejo's comment rows carry the comment's first line cut to 200 bytes where
        // Gitea's carry its first 200 characters cut at a word (services/feed/notifier.go
        // `CreateIssueComment`); the body as it is now, before any edit.
        if self.forgejo
            && let Some(c) = s.comment.as_deref()
            && matches!(self.op_name(s.op), "comment_issue" | "comment_pull")
            && matches!(&s.content, Content::Text(t) if t.starts_with(&format!("{}|", c.issue_index)))
        {
            let text = format!("{}|{}", c.issue_index, forgejo_comment_text(&c.body));
            s.content = Content::Text(text.into());
        }
        let mut receivers = vec![s.actor];
        if let Some(r) = self.repo(s.repo) {
            if r.owner_id != s.actor {
                receivers.push(r.owner_id);
            }
            for &w in &r.watchers {
                if !receivers.contains(&w) {
                    receivers.push(w);
                }
            }
        }
        let id = self.next_row_id;
        self.next_row_id += receivers.len() as i64;
        self.max_rows = self.max_rows.max(receivers.len());
        let action = Action {
            id,
            op: s.op,
            actor: s.actor,
            repo: s.repo,
            content: s.content,
            ref_name: s.ref_name,
            comment_id: s.comment_id,
            comment: s.comment,
            created: s.created,
            copy_delay: s.copy_delay,
            receivers: receivers.into_boxed_slice(),
            visible: s.visible,
            deleted: false,
            original_purged: false,
        };
        if action.visible {
            index_action(&mut self.indexes, &action, self.purged_before);
            if let Some(ops) = self.table_ops.as_mut() {
                mirror_insert(ops, &action, self.purged_before, &self.ops, &self.repos);
            }
        }
        self.actions.insert(id, action);
        ActionId(id)
    }

    /// Replace the comment object's body of an action (an edited comment: the feed
    /// renders the comment as it is now, its `content` stays as it was).
    pub(crate) fn edit_action_comment(&mut self, id: ActionId, body: &str, updated: i64) {
        if let Some(c) = self
            .actions
            .get_mut(&id.0)
            .and_then(|a| a.comment.as_deref_mut())
        {
            c.body = body.into();
            c.updated = updated;
        }
    }

    /// Make a late action visible (no-op when unknown, already visible or deleted).
    pub fn reveal(&mut self, id: ActionId) {
        if let Some(a) = self.actions.get_mut(&id.0)
            && !a.visible
        {
            a.visible = true;
            if !a.deleted {
                index_action(&mut self.indexes, a, self.purged_before);
                if let Some(ops) = self.table_ops.as_mut() {
                    mirror_insert(ops, a, self.purged_before, &self.ops, &self.repos);
                }
            }
        }
    }

    /// Soft-delete an action and all its copies: `is_deleted = true` on its rows, which
    /// every feed leaves out. This is how Gitea deletes a comment's rows (go-gitea/gitea
    /// models/issues/comment.go `DeleteComment`: `UPDATE action SET is_deleted = true
    /// WHERE comment_id = ?`); see [`World::delete_comment`].
    ///
    /// Forgejo deletes the rows instead (`DELETE`, as docs/gitea-feeds.md records of
    /// Forgejo 14+: every deletion is hard), under [`crate::SimOptions::forgejo`].
    pub fn soft_delete(&mut self, id: ActionId) {
        if self.forgejo {
            self.hard_delete(id.0);
            return;
        }
        if let Some(a) = self.actions.get_mut(&id.0)
            && !a.deleted
        {
            a.deleted = true;
            if a.visible {
                unindex_action(&mut self.indexes, a);
                if let Some(ops) = self.table_ops.as_mut() {
                    ops.push(TableOp::SoftDelete {
                        first: a.id,
                        last: a.id + a.receivers.len() as i64 - 1,
                    });
                }
            }
        }
    }

    /// Delete a comment as Gitea does (go-gitea/gitea models/issues/comment.go
    /// `DeleteComment`): the comment and its timeline item go, and the rows of every
    /// action with its `comment_id` are soft-deleted ([`World::soft_delete`]). No-op for
    /// an unknown repository or comment.
    pub fn delete_comment(&mut self, repo: &str, comment_id: i64) {
        let Some(rid) = self.repo_id(repo) else {
            return;
        };
        let Some((index, _)) = self
            .objects
            .repos
            .get_mut(&rid)
            .and_then(|o| o.comments.remove(&comment_id))
        else {
            return;
        };
        if let Some(issue) = self.objects.issue_mut(rid, index) {
            issue.timeline.retain(|t| t.id != comment_id);
        }
        let ids: Vec<i64> = self
            .actions
            .values()
            .filter(|a| a.repo == rid && a.comment_id == comment_id)
            .map(|a| a.id)
            .collect();
        for id in ids {
            self.soft_delete(ActionId(id));
        }
    }

    /// Delete an issue or pull request as Gitea does (go-gitea/gitea
    /// models/activities/action.go `DeleteIssueActions`, called by
    /// services/issue/issue.go `deleteIssue`): hard-deletes (`DELETE`) the rows whose
    /// `comment_id` is one of the issue's comments, and its `create_issue` /
    /// `create_pull_request` rows (`repo_id = ? AND op_type IN (...) AND content LIKE
    /// 'INDEX|%'`), every copy included; the issue is gone from the repository's
    /// objects. A `merge_pull_request` row stays (it has no `comment_id`).
    ///
    /// The issue's comments are its timeline items and the comments of rows pushed with
    /// [`NewAction::comment`] for that index. Gitea's close and reopen rows carry the id of
    /// their `close` / `reopen` comment (services/feed/notifier.go `IssueChangeStatus`:
    /// `CommentID: actionComment.ID`), so they go too; the simulator's have `comment_id`
    /// 0, so they are found by op and content (`INDEX|`). Returns how many actions were
    /// deleted (0 for an unknown repository).
    pub fn delete_issue(&mut self, repo: &str, index: i64) -> usize {
        let Some(rid) = self.repo_id(repo) else {
            return 0;
        };
        let mut comments: HashSet<i64> = HashSet::new();
        if let Some(o) = self.objects.repos.get_mut(&rid) {
            if let Some(issue) = o.issues.remove(&index) {
                comments.extend(issue.timeline.iter().map(|t| t.id));
            }
            o.comments.retain(|&id, &mut (i, _)| {
                if i == index {
                    comments.insert(id);
                }
                i != index
            });
        }
        if let Some(g) = self.repo_gen.get_mut(&rid) {
            for list in [&mut g.open_issues, &mut g.closed_issues, &mut g.open_prs] {
                list.retain(|&i| i != index);
            }
        }
        let prefix = format!("{index}|");
        let ids: Vec<i64> = self
            .actions
            .values()
            .filter(|a| a.repo == rid)
            .filter(|a| {
                let op = self.op_name(a.op);
                let text = match &a.content {
                    Content::Text(t) => t.as_ref(),
                    Content::Push(_) => "",
                };
                let of_comment = a.comment_id != 0
                    && (comments.contains(&a.comment_id)
                        || a.comment.as_ref().is_some_and(|c| c.issue_index == index));
                let created = matches!(op, "create_issue" | "create_pull_request")
                    && text.starts_with(&prefix);
                let status = matches!(
                    op,
                    "close_issue" | "reopen_issue" | "close_pull_request" | "reopen_pull_request"
                ) && text == prefix;
                of_comment || created || status
            })
            .map(|a| a.id)
            .collect();
        for &id in &ids {
            self.hard_delete(id);
        }
        ids.len()
    }

    /// Delete a repository as Gitea does (go-gitea/gitea services/repository/delete.go
    /// `DeleteRepositoryDirectly`: `db.DeleteBeans(..., &activities_model.Action{RepoID:
    /// repoID}, ...)`): every row of its actions, copies in org and user feeds included, is
    /// hard-deleted; the repository is gone (`404`, out of listings; its name can be made
    /// again, as a new repository). No-op for an unknown repository.
    pub fn delete_repo(&mut self, repo: &str) {
        let Some(rid) = self.repo_id(repo) else {
            return;
        };
        let gone: HashSet<i64> = self
            .actions
            .values()
            .filter(|a| a.repo == rid)
            .map(|a| a.id)
            .collect();
        self.actions.retain(|id, _| !gone.contains(id));
        for v in self.indexes.values_mut() {
            v.retain(|e| !gone.contains(&e.action));
        }
        self.indexes.retain(|_, v| !v.is_empty());
        if let Some(ops) = self.table_ops.as_mut() {
            ops.push(TableOp::DeleteRepo { repo_id: rid });
        }
        self.repo_by_name.retain(|_, id| *id != rid);
        self.objects.repos.remove(&rid);
        self.repo_gen.remove(&rid);
        if let Some(r) = self.repo_mut(rid) {
            r.deleted = true;
        }
    }

    /// Hard-delete an action's rows (`DELETE`, no `is_deleted`): out of the indexes and,
    /// in engine mode, out of the table.
    pub(crate) fn hard_delete(&mut self, id: i64) {
        let Some(a) = self.actions.remove(&id) else {
            return;
        };
        if a.visible && !a.deleted {
            unindex_action(&mut self.indexes, &a);
        }
        // A soft-deleted action's rows are still in the table.
        if a.visible
            && let Some(ops) = self.table_ops.as_mut()
        {
            ops.push(TableOp::Delete {
                first: a.id,
                last: a.id + a.receivers.len() as i64 - 1,
            });
        }
    }

    /// Hard-delete every row with `created < t` (Gitea's `delete_old_actions` cron).
    pub fn delete_older_than(&mut self, t: DateTime<FixedOffset>) {
        let cutoff = t.timestamp();
        self.purged_before = self.purged_before.max(cutoff);
        if let Some(ops) = self.table_ops.as_mut() {
            ops.push(TableOp::Purge { before: cutoff });
        }
        for v in self.indexes.values_mut() {
            let p = v.partition_point(|e| e.created < cutoff);
            v.drain(..p);
        }
        self.indexes.retain(|_, v| !v.is_empty());
        self.actions.retain(|_, a| {
            if a.created < cutoff {
                a.original_purged = true;
            }
            a.last_row_created() >= cutoff
        });
    }

    /// Visible, not deleted logical actions whose original row exists.
    pub fn action_count(&self) -> usize {
        self.actions.values().filter(|a| a.is_live()).count()
    }

    /// Every visible, not deleted logical action, oldest first.
    pub fn logical_actions(&self) -> Vec<LogicalAction> {
        let mut live: Vec<&Action> = self.actions.values().filter(|a| a.is_live()).collect();
        live.sort_by_key(|a| (a.created, a.id));
        live.into_iter()
            .map(|a| LogicalAction {
                id: ActionId(a.id),
                repo: self
                    .repo(a.repo)
                    .map(|r| r.full_name.clone())
                    .unwrap_or_default(),
                op_type: self.op_name(a.op).to_string(),
                actor: self
                    .user(a.actor)
                    .map(|u| u.login.clone())
                    .unwrap_or_default(),
                content: self.render_content(a).into_owned(),
                ref_name: self.served_ref_name(a).to_string(),
                comment_id: a.comment_id,
                created: to_datetime(self.offset, a.created),
            })
            .collect()
    }

    /// Ids of every row of an action (original first), for tests.
    pub fn row_ids(&self, id: ActionId) -> Vec<i64> {
        self.actions.get(&id.0).map_or_else(Vec::new, |a| {
            (0..a.receivers.len() as i64).map(|i| a.id + i).collect()
        })
    }

    /// A row's content as the feed serves it: Gitea's as stored, or Forgejo's form of it
    /// ([`forgejo_content`]).
    fn render_content<'a>(&'a self, a: &'a Action) -> Cow<'a, str> {
        let content = self.stored_content(a);
        if self.forgejo {
            forgejo_content(self.op_name(a.op), content)
        } else {
            content
        }
    }

    /// A row's `ref_name` as the feed serves it: Forgejo's `publish_release` rows name the
    /// bare tag where Gitea's name the ref (go-gitea/gitea services/feed/notifier.go
    /// `NewRelease`: `git.RefNameFromTag(rel.TagName).String()`).
    fn served_ref_name<'a>(&self, a: &'a Action) -> &'a str {
        if self.forgejo && self.op_name(a.op) == "publish_release" {
            a.ref_name.strip_prefix("refs/tags/").unwrap_or(&a.ref_name)
        } else {
            &a.ref_name
        }
    }

    /// A row's content in Gitea's form: the stored text, or a push payload rendered.
    fn stored_content<'a>(&'a self, a: &'a Action) -> Cow<'a, str> {
        match &a.content {
            Content::Text(s) => Cow::Borrowed(s),
            Content::Push(p) => {
                let repo = self.repo(a.repo).map_or("", |r| r.full_name.as_str());
                let (login, email) = self
                    .user(a.actor)
                    .map_or(("", ""), |u| (u.login.as_str(), u.email.as_str()));
                let name = self.user(a.actor).map_or("", |u| u.full_name.as_str());
                Cow::Owned(push::render_push(
                    p,
                    repo,
                    login,
                    name,
                    email,
                    to_datetime(self.offset, a.created),
                ))
            }
        }
    }

    // ----- feeds --------------------------------------------------------------------

    /// Unix-second range `[start, end)` that `date=D` selects: Gitea's
    /// `created_unix BETWEEN dateLow AND dateLow + 86399`, with `dateLow` the local
    /// midnight of `D` in the server's zone. The window is always 86,400 s long, so
    /// under daylight saving time it is not the local day: on a 25-hour day its last
    /// hour is in no window, on a 23-hour day the window also takes the first hour of
    /// the next day.
    pub(crate) fn day_range(&self, date: NaiveDate) -> (i64, i64) {
        let start = self.offset.midnight(date);
        (start, start + 86_400)
    }

    /// One page of a feed, newest first, ties shuffled afresh, without the rows of the
    /// actors in `hidden` ([`World::hidden_actors`]; filtering them costs a pass over the
    /// feed, so a feed without hidden actors stays `O(page + log n)`).
    pub(crate) fn feed_page(
        &mut self,
        key: FeedKey,
        page: usize,
        limit: usize,
        range: Option<(i64, i64)>,
        hidden: &[i64],
    ) -> PageOut {
        let empty: &[Entry] = &[];
        let all = self.indexes.get(&key).map_or(empty, |v| v.as_slice());
        let slice = match range {
            Some((start, end)) => {
                let lo = all.partition_point(|e| e.created < start);
                let hi = all.partition_point(|e| e.created < end);
                &all[lo..hi.max(lo)]
            }
            None => all,
        };
        let visible: Vec<Entry>;
        let slice = if hidden.is_empty() {
            slice
        } else {
            let hidden: HashSet<i64> = hidden.iter().copied().collect();
            visible = slice
                .iter()
                .filter(|e| !hidden.contains(&e.actor))
                .copied()
                .collect();
            &visible
        };
        let total = slice.len();
        let off = page.saturating_sub(1).saturating_mul(limit);
        if off >= total || limit == 0 {
            return PageOut {
                body: b"[]".to_vec(),
                total,
            };
        }
        let end = off.saturating_add(limit).min(total);
        // Descending position p is ascending index total-1-p: the page is the
        // ascending range [total-end, total-off).
        let lo = total - end;
        let hi = total - off;
        // Widen to whole same-second groups at both edges, so the page is a window
        // over one shuffled order of every group it touches.
        let lo_created = slice[lo].created;
        let glo = slice[..lo].partition_point(|e| e.created < lo_created);
        let hi_created = slice[hi - 1].created;
        let ghi = hi + slice[hi..].partition_point(|e| e.created <= hi_created);
        let mut window: Vec<Entry> = slice[glo..ghi].iter().rev().copied().collect();
        let rng = &mut self.rng;
        let mut i = 0;
        while i < window.len() {
            let c = window[i].created;
            let mut j = i + 1;
            while j < window.len() && window[j].created == c {
                j += 1;
            }
            if j - i > 1 {
                window[i..j].shuffle(rng);
            }
            i = j;
        }
        // Descending position of window[0] is total - ghi.
        let skip = off - (total - ghi);
        let rows = &window[skip..skip + (end - off)];
        PageOut {
            body: self.render_rows(rows),
            total,
        }
    }

    /// Engine mode: the changes of the action table since the last call, in order.
    pub(crate) fn take_table_ops(&mut self) -> Vec<TableOp> {
        self.table_ops
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Engine mode: put back `ops` (taken by [`World::take_table_ops`], not applied)
    /// before the changes made since.
    pub(crate) fn restore_table_ops(&mut self, mut ops: Vec<TableOp>) {
        if let Some(pending) = self.table_ops.as_mut() {
            ops.append(pending);
            *pending = ops;
        }
    }

    /// Engine mode: the JSON of a page whose rows the engine chose, in its order. A row
    /// the world no longer has (hard-deleted since the query) is left out.
    pub(crate) fn render_row_ids(&self, ids: &[i64]) -> Vec<u8> {
        let rows: Vec<Entry> = ids.iter().filter_map(|&id| self.entry_of_row(id)).collect();
        self.render_rows(&rows)
    }

    /// The index entry of row `row`: its action is the nearest action id at or below it
    /// (an action's rows have consecutive ids), when the row is one of that action's.
    fn entry_of_row(&self, row: i64) -> Option<Entry> {
        let back = i64::try_from(self.max_rows).ok()?;
        let a = (0..back).find_map(|k| self.actions.get(&(row - k)))?;
        let i = usize::try_from(row - a.id).ok()?;
        (i < a.receivers.len()).then(|| Entry {
            created: a.row_created(i),
            row,
            action: a.id,
            actor: a.actor,
        })
    }

    fn render_rows(&self, rows: &[Entry]) -> Vec<u8> {
        let items: Vec<ActivityJson<'_>> =
            rows.iter().filter_map(|e| self.activity_json(e)).collect();
        // Serializing these plain structs cannot fail (no maps with non-string keys,
        // no fallible Serialize impls); fall back to an empty array anyway.
        serde_json::to_vec(&items).unwrap_or_else(|_| b"[]".to_vec())
    }

    fn activity_json<'a>(&'a self, e: &Entry) -> Option<ActivityJson<'a>> {
        let a = self.actions.get(&e.action)?;
        let i = usize::try_from(e.row - a.id).ok()?;
        let user_id = *a.receivers.get(i)?;
        let actor = self.user(a.actor)?;
        let repo = self.repo(a.repo)?;
        let comment = a.comment.as_deref().map(|c| {
            let kind = if c.is_pull { "pulls" } else { "issues" };
            let issue_html = format!(
                "{}/{}/{kind}/{}",
                self.base_url, repo.full_name, c.issue_index
            );
            let t = fmt_time(self.offset, a.created);
            let updated = if c.updated > 0 {
                fmt_time(self.offset, c.updated)
            } else {
                t.clone()
            };
            CommentJson {
                id: c.id,
                html_url: format!("{issue_html}#issuecomment-{}", c.id),
                pull_request_url: if c.is_pull {
                    issue_html.clone()
                } else {
                    String::new()
                },
                issue_url: if c.is_pull { String::new() } else { issue_html },
                user: &actor.json,
                original_author: "",
                original_author_id: 0,
                body: &c.body,
                assets: &[],
                created_at: t,
                updated_at: updated,
            }
        });
        Some(ActivityJson {
            id: e.row,
            user_id,
            op_type: self.op_name(a.op),
            act_user_id: a.actor,
            // The API loads actors by id from the `user` table (go-gitea/gitea
            // models/activities/action_list.go `LoadActUsers`), where the Actions bot has no
            // row: its rows carry `"act_user": null` (services/convert/activity.go
            // `ToActivity` → services/convert/user.go `ToUser(nil)` is nil), though
            // `act_user_id` is -2. Its comments' `user` is the bot (`LoadPoster` resolves
            // system users).
            act_user: (a.actor != ACTIONS_BOT_ID).then_some(&*actor.json),
            repo_id: a.repo,
            repo: &repo.json,
            comment_id: a.comment_id,
            comment,
            ref_name: self.served_ref_name(a),
            is_private: repo.private,
            content: self.render_content(a),
            created: fmt_time(self.offset, e.created),
        })
    }
}

#[derive(Serialize)]
struct ActivityJson<'a> {
    id: i64,
    user_id: i64,
    op_type: &'a str,
    act_user_id: i64,
    act_user: Option<&'a RawValue>,
    repo_id: i64,
    repo: &'a RawValue,
    comment_id: i64,
    comment: Option<CommentJson<'a>>,
    ref_name: &'a str,
    is_private: bool,
    content: Cow<'a, str>,
    created: String,
}

#[derive(Serialize)]
struct CommentJson<'a> {
    id: i64,
    html_url: String,
    pull_request_url: String,
    issue_url: String,
    user: &'a RawValue,
    original_author: &'a str,
    original_author_id: i64,
    body: &'a str,
    assets: &'a [u8],
    created_at: String,
    updated_at: String,
}

/// The Gitea Actions bot as the API renders a user (go-gitea/gitea
/// models/user/user_system.go `NewActionsUser`: id -2, `gitea-actions`, "Gitea Actions",
/// `teabot@gitea.io`, active, public; services/convert/user.go `toUser`).
fn actions_bot(base_url: &str, zone: ServerZone) -> User {
    let login = ACTIONS_BOT_LOGIN;
    let full_name = "Gitea Actions";
    let email = "teabot@gitea.io";
    let json = json!({
        "id": ACTIONS_BOT_ID,
        "login": login,
        "login_name": "",
        "source_id": 0,
        "full_name": full_name,
        "email": email,
        "avatar_url": format!("{base_url}/assets/img/avatar_default.png"),
        "html_url": format!("{base_url}/{login}"),
        "language": "",
        "is_admin": false,
        "last_login": "0001-01-01T00:00:00Z",
        "created": fmt_time(zone, 0),
        "restricted": false,
        "active": true,
        "prohibit_login": false,
        "location": "",
        "website": "",
        "description": "",
        "visibility": "public",
        "followers_count": 0,
        "following_count": 0,
        "starred_repos_count": 0,
        "username": login,
    });
    User {
        id: ACTIONS_BOT_ID,
        login: login.to_string(),
        email: email.to_string(),
        full_name: full_name.to_string(),
        is_org: false,
        visibility: Visibility::Public,
        keep_activity_private: false,
        json: raw(json),
        org_json: None,
    }
}

/// The index keys a row of an action belongs to.
fn row_keys(a: &Action, i: usize) -> ([Option<FeedKey>; 3], i64) {
    if i == 0 {
        (
            [
                Some(FeedKey::Repo(a.repo)),
                Some(FeedKey::Recv(a.actor)),
                Some(FeedKey::Actor(a.actor)),
            ],
            a.created,
        )
    } else {
        let r = a.receivers.get(i).copied().unwrap_or(0);
        ([Some(FeedKey::Recv(r)), None, None], a.row_created(i))
    }
}

fn index_action(indexes: &mut HashMap<FeedKey, Vec<Entry>>, a: &Action, purged_before: i64) {
    for i in 0..a.receivers.len() {
        let (keys, created) = row_keys(a, i);
        if created < purged_before {
            continue;
        }
        let e = Entry {
            created,
            row: a.id + i as i64,
            action: a.id,
            actor: a.actor,
        };
        for k in keys.into_iter().flatten() {
            let v = indexes.entry(k).or_default();
            match v.last() {
                Some(last) if last.key() > e.key() => {
                    let p = v.partition_point(|x| x.key() < e.key());
                    v.insert(p, e);
                }
                _ => v.push(e),
            }
        }
    }
}

/// Engine mode: the rows of `a` that [`index_action`] indexes, as [`TableOp::Insert`]s.
/// `content` is the op name: the JSON is rendered from the world, the table only
/// decides membership and order.
fn mirror_insert(
    ops: &mut Vec<TableOp>,
    a: &Action,
    purged_before: i64,
    op_names: &[Box<str>],
    repos: &[Repo],
) {
    let op = op_names.get(usize::from(a.op)).map_or("", |s| s);
    // Gitea stores the repository's visibility in each row when it records the action
    // (go-gitea/gitea services/feed/notifier.go: `IsPrivate: repo.IsPrivate`, which
    // services/feed/feed.go `notifyWatchers` copies into every row).
    let is_private = usize::try_from(a.repo - 1)
        .ok()
        .and_then(|i| repos.get(i))
        .is_some_and(|r| r.private);
    for (i, &user_id) in a.receivers.iter().enumerate() {
        let created = a.row_created(i);
        if created < purged_before {
            continue;
        }
        ops.push(TableOp::Insert(TableRow {
            id: a.id + i as i64,
            user_id,
            op_type: i32::from(a.op),
            act_user_id: a.actor,
            repo_id: a.repo,
            comment_id: a.comment_id,
            ref_name: a.ref_name.clone(),
            is_private,
            content: op.into(),
            created_unix: created,
        }));
    }
}

fn unindex_action(indexes: &mut HashMap<FeedKey, Vec<Entry>>, a: &Action) {
    for i in 0..a.receivers.len() {
        let (keys, created) = row_keys(a, i);
        let k = (created, a.id + i as i64);
        for key in keys.into_iter().flatten() {
            if let Some(v) = indexes.get_mut(&key) {
                let p = v.partition_point(|x| x.key() < k);
                if v.get(p).is_some_and(|x| x.key() == k) {
                    v.remove(p);
                }
            }
        }
    }
}
