//! HTTP side of the simulator: one axum fallback handler that applies faults,
//! checks the token, routes by hand (so the path prefix, 404s and the request log
//! cover every request) and renders Gitea-shaped JSON.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use chrono::NaiveDate;
use serde_json::json;

use crate::base::{TOKEN_USER, lock};
use crate::objects::{KindFilter, StateFilter, TimeRange};
use crate::repo_http::Window;
use crate::rows::{FeedKey, Viewer};
use crate::shared::{FaultKind, FeedPage, RequestRecord, Shared};
use crate::world::{PageOut, World};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// A response being built (kept simple so a fault can truncate it).
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn value(status: u16, v: &serde_json::Value) -> Reply {
        // Serializing a `Value` cannot fail.
        Reply::json(status, serde_json::to_vec(v).unwrap_or_default())
    }

    fn raw(status: u16, v: &serde_json::value::RawValue) -> Reply {
        Reply::json(status, v.get().as_bytes().to_vec())
    }

    fn header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    fn into_response(self) -> Response {
        let mut resp = Response::new(Body::from(self.body));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(name, v);
            }
        }
        resp
    }
}

/// What a request needs from its head.
struct Req {
    method: Method,
    path: String,
    query: String,
    host: String,
    auth: Option<String>,
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let at = Instant::now();
    let headers: &HeaderMap = req.headers();
    let r = Req {
        method: req.method().clone(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        host: headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| sh.addr.to_string(), str::to_string),
        auth: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    drop(req);

    let reply = match take_fault(&sh, &format!("{}?{}", r.path, r.query)) {
        None => serve(&sh, &r).await,
        Some(FaultKind::Status(code)) => error(&sh, &r, code, "simulated server error"),
        Some(FaultKind::RetryAfterSecs(n)) => {
            error(&sh, &r, 429, "too many requests").header("Retry-After", n.to_string())
        }
        Some(FaultKind::RetryAfterDate(n)) => {
            let secs = i64::try_from(n)
                .unwrap_or(i64::MAX / 4)
                .min(100 * 365 * 86_400);
            let when = chrono::Utc::now() + chrono::Duration::seconds(secs);
            error(&sh, &r, 429, "too many requests").header(
                "Retry-After",
                when.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            )
        }
        Some(FaultKind::Truncated) => {
            let mut reply = serve(&sh, &r).await;
            reply.body.truncate(reply.body.len() / 2);
            reply.status = 200;
            reply
        }
        Some(FaultKind::EmptyPage) => {
            let mut reply = serve(&sh, &r).await;
            if reply.status == 200 {
                reply.body = b"[]".to_vec();
            }
            reply
        }
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            serve(&sh, &r).await
        }
    };
    lock(&sh.requests).push(RequestRecord {
        at,
        path: r.path,
        query: r.query,
        status: reply.status,
    });
    reply.into_response()
}

/// Answer a request: `route` answers everything but a feed page, which it resolves
/// and leaves to [`feed`] (a page may have to wait for the engine).
async fn serve(sh: &Shared, r: &Req) -> Reply {
    match route(sh, r) {
        Routed::Reply(reply) => reply,
        Routed::Feed(f) => feed(sh, r, f).await,
    }
}

/// What `route` made of a request.
enum Routed {
    /// The answer.
    Reply(Reply),
    /// A feed page to compute.
    Feed(FeedReq),
}

/// A feed request whose feed exists.
struct FeedReq {
    key: FeedKey,
    /// [`FeedPage::feed`].
    name: String,
    page: usize,
    limit: usize,
    date: Option<NaiveDate>,
    /// The `date=` as given, when it parsed.
    date_str: Option<String>,
    /// `only-performed-by` as given (for the `Link` header).
    only_performed: Option<String>,
    /// Who reads it (which actors' rows it may show).
    viewer: Viewer,
}

/// Consume one use of the first queued fault matching `path`.
fn take_fault(sh: &Shared, path: &str) -> Option<FaultKind> {
    let mut faults = lock(&sh.faults);
    let i = faults.iter().position(|f| {
        f.times > 0
            && f.path_contains
                .as_deref()
                .is_none_or(|needle| path.contains(needle))
    })?;
    let f = faults.get_mut(i)?;
    f.times -= 1;
    let kind = f.kind.clone();
    if f.times == 0 {
        faults.remove(i);
    }
    Some(kind)
}

/// Gitea's API error body.
fn error(sh: &Shared, r: &Req, status: u16, message: &str) -> Reply {
    Reply::value(
        status,
        &json!({
            "message": message,
            "url": format!("http://{}{}/api/swagger", r.host, sh.opts.path_prefix),
        }),
    )
}

fn route(sh: &Shared, r: &Req) -> Routed {
    let prefix = sh.opts.path_prefix.as_str();
    let rest = match r.path.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => return Routed::Reply(error(sh, r, 404, "not found")),
    };
    let api = match rest.strip_prefix("/api/v1") {
        Some(api) if api.is_empty() || api.starts_with('/') => api,
        _ => return Routed::Reply(error(sh, r, 404, "not found")),
    };
    let authed = match (&sh.opts.token, &r.auth) {
        (Some(token), Some(given)) => given_token(given) == Some(token.as_str()),
        (Some(_), None) => false,
        (None, given) => given.is_some(),
    };
    if sh.opts.token.is_some() && !authed {
        let msg = if r.auth.is_some() {
            "invalid username, password or token"
        } else {
            "token is required"
        };
        return Routed::Reply(error(sh, r, 401, msg));
    }
    if r.method != Method::GET {
        return Routed::Reply(error(sh, r, 405, "method not allowed"));
    }
    let segs: Vec<String> = api
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let q = parse_query(&r.query);
    let viewer = viewer(sh, authed);
    match segs.as_slice() {
        ["repos", owner, name, "activities", "feeds"] => resolve_feed(sh, r, &q, viewer, |w| {
            w.repo_by_full_name(owner, name)
                .map(|repo| (FeedKey::Repo(repo.id), format!("repo:{}", repo.full_name)))
                .ok_or("repository does not exist")
        }),
        ["orgs", org, "activities", "feeds"] => resolve_feed(sh, r, &q, viewer, |w| {
            w.user_by_login(org)
                .filter(|u| u.is_org)
                .map(|u| (FeedKey::Recv(u.id), format!("org:{}", u.login)))
                .ok_or("org does not exist")
        }),
        ["users", login, "activities", "feeds"] => {
            let only_performed = q
                .iter()
                .find(|(k, _)| k == "only-performed-by")
                .is_some_and(|(_, v)| {
                    matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True")
                });
            resolve_feed(sh, r, &q, viewer, |w| {
                w.user_by_login(login)
                    .map(|u| {
                        let key = if only_performed {
                            FeedKey::Actor(u.id)
                        } else {
                            FeedKey::Recv(u.id)
                        };
                        (key, format!("user:{}", u.login))
                    })
                    .ok_or("user does not exist")
            })
        }
        segs => Routed::Reply(endpoint(sh, r, segs, &q, authed)),
    }
}

/// Every endpoint but the feeds.
fn endpoint(sh: &Shared, r: &Req, segs: &[&str], q: &[(String, String)], authed: bool) -> Reply {
    match segs {
        ["version"] => Reply::value(200, &json!({ "version": sh.opts.served_version() })),
        ["settings", "api"] => Reply::value(
            200,
            &json!({
                "max_response_items": sh.opts.max_response_items,
                "default_paging_num": sh.opts.default_paging_num,
                "default_git_trees_per_page": 1000,
                "default_max_blob_size": 10_485_760,
            }),
        ),
        ["user"] => {
            if !authed {
                return error(sh, r, 401, "token is required");
            }
            let w = lock(&sh.world);
            match w.user_by_login(TOKEN_USER) {
                Some(u) => Reply::value(200, &self_json(sh, &u.json)),
                None => error(sh, r, 404, "user does not exist"),
            }
        }
        ["users", login] => {
            let w = lock(&sh.world);
            match w.user_by_login(login) {
                // The token's own user, to that token: `is_admin` as for `/user`.
                Some(u) if authed && u.login == TOKEN_USER => {
                    Reply::value(200, &self_json(sh, &u.json))
                }
                Some(u) => Reply::raw(200, &u.json),
                None => error(sh, r, 404, "user does not exist"),
            }
        }
        ["orgs", name] => {
            let w = lock(&sh.world);
            match w.user_by_login(name).and_then(|u| u.org_json.as_deref()) {
                Some(j) => Reply::raw(200, j),
                None => error(sh, r, 404, "org does not exist"),
            }
        }
        ["repos", "issues", "search"] => list(sh, r, q, |w, win| {
            Ok(w.api_issues_search(query_get(q, "owner"), time_range(q)?, win))
        }),
        ["repos", owner, name] => {
            let w = lock(&sh.world);
            match w.repo_by_full_name(owner, name) {
                Some(repo) => Reply::raw(200, &repo.json),
                None => error(sh, r, 404, "repository does not exist"),
            }
        }
        ["admin", "orgs"] => {
            if !sh.opts.admin {
                return error(sh, r, 403, "reqSiteAdmin");
            }
            list(sh, r, q, |w, win| Ok(w.api_orgs(win)))
        }
        ["user", "orgs"] => list(sh, r, q, |w, win| Ok(w.api_orgs(win))),
        ["repos", "search"] => list(sh, r, q, |w, win| {
            let uid = query_get(q, "uid").and_then(|u| u.parse::<i64>().ok());
            let exclusive = query_get(q, "exclusive") == Some("true");
            let by_update = query_get(q, "sort") == Some("updated");
            let newest_first = query_get(q, "order") != Some("asc");
            Ok(w.api_repos_search(
                win,
                uid.filter(|_| exclusive),
                by_update.then_some(newest_first),
            ))
        }),
        ["orgs", org, "repos"] => list(sh, r, q, |w, win| {
            let org = w
                .user_by_login(org)
                .filter(|u| u.is_org)
                .ok_or((404, "org does not exist".to_string()))?;
            Ok(w.api_org_repos(org.id, win))
        }),
        ["repos", owner, name, "issues"] => list(sh, r, q, |w, win| {
            let rid = repo_id(w, owner, name)?;
            let state = match query_get(q, "state") {
                Some("all") => StateFilter::All,
                Some("closed") => StateFilter::Closed,
                _ => StateFilter::Open,
            };
            let kind = match query_get(q, "type") {
                Some("issues") => KindFilter::Issues,
                Some("pulls") => KindFilter::Pulls,
                _ => KindFilter::Both,
            };
            Ok(w.api_issues(rid, state, kind, time_range(q)?, win))
        }),
        ["repos", owner, name, "issues", "comments"] => list(sh, r, q, |w, win| {
            let rid = repo_id(w, owner, name)?;
            Ok(w.api_comments(rid, time_range(q)?, win))
        }),
        ["repos", owner, name, "issues", "comments", id] => {
            let w = lock(&sh.world);
            let found = repo_id(&w, owner, name).and_then(|rid| {
                id.parse::<i64>()
                    .ok()
                    .and_then(|id| w.api_comment(rid, id))
                    .ok_or((404, "comment does not exist".to_string()))
            });
            match found {
                Ok(body) => Reply::json(200, body),
                Err((code, msg)) => error(sh, r, code, &msg),
            }
        }
        ["repos", owner, name, "issues", index] => {
            let w = lock(&sh.world);
            let found = repo_id(&w, owner, name).and_then(|rid| {
                index
                    .parse::<i64>()
                    .ok()
                    .and_then(|i| w.api_issue(rid, i))
                    .ok_or((404, "issue does not exist".to_string()))
            });
            match found {
                Ok(body) => Reply::json(200, body),
                Err((code, msg)) => error(sh, r, code, &msg),
            }
        }
        ["repos", owner, name, "issues", index, "timeline"] => list(sh, r, q, |w, win| {
            let rid = repo_id(w, owner, name)?;
            let range = time_range(q)?;
            index
                .parse::<i64>()
                .ok()
                .and_then(|i| w.api_timeline(rid, i, range, win))
                .ok_or((404, "issue does not exist".to_string()))
        }),
        ["repos", owner, name, "pulls"] => list(sh, r, q, |w, win| {
            let rid = repo_id(w, owner, name)?;
            let state = match query_get(q, "state") {
                Some("all") => StateFilter::All,
                Some("closed") => StateFilter::Closed,
                _ => StateFilter::Open,
            };
            Ok(w.api_pulls(rid, state, win))
        }),
        ["repos", owner, name, "pulls", index] => {
            let w = lock(&sh.world);
            let found = repo_id(&w, owner, name).and_then(|rid| {
                index
                    .parse::<i64>()
                    .ok()
                    .and_then(|i| w.api_pull(rid, i))
                    .ok_or((404, "pull request does not exist".to_string()))
            });
            match found {
                Ok(body) => Reply::json(200, body),
                Err((code, msg)) => error(sh, r, code, &msg),
            }
        }
        ["repos", owner, name, "branches", branch] => {
            let w = lock(&sh.world);
            let found = repo_id(&w, owner, name).and_then(|rid| {
                w.api_branch(rid, branch)
                    .ok_or((404, "branch does not exist".to_string()))
            });
            match found {
                Ok(body) => Reply::json(200, body),
                Err((code, msg)) => error(sh, r, code, &msg),
            }
        }
        ["repos", owner, name, "git", "commits", sha] => {
            let w = lock(&sh.world);
            let found = repo_id(&w, owner, name).and_then(|rid| {
                w.api_git_commit(rid, sha)
                    .ok_or((404, "commit does not exist".to_string()))
            });
            match found {
                Ok(body) => Reply::json(200, body),
                Err((code, msg)) => error(sh, r, code, &msg),
            }
        }
        ["repos", owner, name, "releases"] => list(sh, r, q, |w, win| {
            Ok(w.api_releases(repo_id(w, owner, name)?, win))
        }),
        ["repos", owner, name, "branches"] => list(sh, r, q, |w, win| {
            Ok(w.api_branches(repo_id(w, owner, name)?, win))
        }),
        ["repos", owner, name, "tags"] => list(sh, r, q, |w, win| {
            Ok(w.api_tags(repo_id(w, owner, name)?, win))
        }),
        ["repos", owner, name, "statuses", sha] => list(sh, r, q, |w, win| {
            let rid = repo_id(w, owner, name)?;
            let oldest = matches!(
                query_get(q, "sort"),
                Some("oldest" | "leastupdate" | "leastindex")
            );
            let state = query_get(q, "state").filter(|s| !s.is_empty());
            Ok(w.api_statuses(rid, sha, oldest, state, win))
        }),
        ["repos", owner, name, "actions", "workflows", id] => {
            let w = lock(&sh.world);
            let found = repo_id(&w, owner, name).and_then(|rid| {
                if !w.actions_supported() {
                    return Err((404, "not found".to_string()));
                }
                w.api_workflow(rid, id)
                    .ok_or((404, "workflow does not exist".to_string()))
            });
            match found {
                Ok(body) => Reply::json(200, body),
                Err((code, msg)) => error(sh, r, code, &msg),
            }
        }
        ["repos", owner, name, "actions", "runs"] => list(sh, r, q, |w, win| {
            if !w.actions_supported() {
                return Err((404, "not found".to_string()));
            }
            Ok(w.api_runs(repo_id(w, owner, name)?, win))
        }),
        ["repos", owner, name, "actions", "runs", run, "jobs"] => list(sh, r, q, |w, win| {
            if !w.actions_supported() {
                return Err((404, "not found".to_string()));
            }
            let rid = repo_id(w, owner, name)?;
            run.parse::<i64>()
                .ok()
                .and_then(|run| w.api_run_jobs(rid, run, win))
                .ok_or((404, "run does not exist".to_string()))
        }),
        _ => error(sh, r, 404, "not found"),
    }
}

fn query_get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// An error status and message for [`list`].
type ApiError = (u16, String);

fn repo_id(w: &World, owner: &str, name: &str) -> Result<i64, ApiError> {
    w.repo_by_full_name(owner, name)
        .map(|repo| repo.id)
        .ok_or((404, "repository does not exist".to_string()))
}

/// `since` / `before` (RFC 3339); unparsable is a `422`, like Gitea.
fn time_range(q: &[(String, String)]) -> Result<TimeRange, ApiError> {
    let parse = |name: &str| -> Result<Option<i64>, ApiError> {
        match query_get(q, name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| Some(t.timestamp()))
                .map_err(|e| (422, format!("invalid {name} {v:?}: {e}"))),
        }
    };
    Ok(TimeRange {
        since: parse("since")?,
        before: parse("before")?,
    })
}

/// `page` and `limit` like Gitea's `FormInt`: unparsable is 0; then page < 1 → 1,
/// limit < 1 → the default; limit capped at `max_response_items`.
fn paging(sh: &Shared, q: &[(String, String)]) -> (usize, usize) {
    let page = query_get(q, "page")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|&p| p > 0)
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(1);
    let limit = query_get(q, "limit")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|&l| l > 0)
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(sh.opts.default_paging_num)
        .min(sh.opts.max_response_items);
    (page, limit)
}

/// A paged list of repository objects: `X-Total-Count` and a `Link` header that
/// keeps the other query parameters.
fn list(
    sh: &Shared,
    r: &Req,
    q: &[(String, String)],
    f: impl FnOnce(&World, Window) -> Result<PageOut, ApiError>,
) -> Reply {
    let (page, limit) = paging(sh, q);
    let out = f(&lock(&sh.world), Window { page, limit });
    let out = match out {
        Ok(out) => out,
        Err((code, msg)) => return error(sh, r, code, &msg),
    };
    let mut reply = Reply::json(200, out.body)
        .header("X-Total-Count", out.total.to_string())
        .header(
            "Access-Control-Expose-Headers",
            "X-Total-Count, Link".to_string(),
        );
    let extra: String = q
        .iter()
        .filter(|(k, _)| k != "page" && k != "limit")
        .map(|(k, v)| format!("&{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    let base = format!("http://{}{}", r.host, r.path);
    if let Some(link) = link_header(&base, page, limit, out.total, &extra) {
        reply = reply.header("Link", link);
    }
    reply
}

/// The token's user as Gitea shows it to that user: go-gitea/gitea
/// services/convert/user.go `toUser` fills `is_admin` (with the login name, last login,
/// language and active flag) only when `authed` (the doer is that user or a site admin),
/// so the token's own user carries [`SimOptions::admin`](crate::SimOptions::admin) and every
/// other user `false` (routers/api/v1/user/user.go `GetAuthenticatedUser`:
/// `convert.ToUser(ctx, ctx.Doer, ctx.Doer)`).
fn self_json(sh: &Shared, user: &serde_json::value::RawValue) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(user.get()).unwrap_or(serde_json::Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("is_admin".into(), serde_json::Value::Bool(sh.opts.admin));
    }
    v
}

/// `token X` / `Bearer X` → `X`.
fn given_token(h: &str) -> Option<&str> {
    let (scheme, rest) = h.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.trim())
    } else {
        None
    }
}

/// Who a request reads as: the token's user ([`TOKEN_USER`], a site admin when
/// [`SimOptions::admin`](crate::SimOptions::admin)) when it carries the token (or, with no
/// token configured, any `Authorization`), else nobody (`ctx.Doer == nil`). Without a
/// token configured, a request without `Authorization` is anonymous.
fn viewer(sh: &Shared, authed: bool) -> Viewer {
    if !authed {
        return Viewer::Anonymous;
    }
    let id = lock(&sh.world)
        .user_by_login(TOKEN_USER)
        .map_or(0, |u| u.id);
    Viewer::User {
        id,
        admin: sh.opts.admin,
    }
}

/// Resolve a feed request: a 404 when its repository, org or user does not exist.
fn resolve_feed(
    sh: &Shared,
    r: &Req,
    q: &[(String, String)],
    viewer: Viewer,
    resolve: impl FnOnce(&World) -> Result<(FeedKey, String), &'static str>,
) -> Routed {
    let (page, limit) = paging(sh, q);
    // An unparseable `date=` is logged by Gitea and not applied: the whole feed comes back
    // (go-gitea/gitea models/activities/action.go `FeedDateCond`: "Unable to parse %s,
    // filter not applied").
    let date_str = query_get(q, "date").filter(|d| !d.is_empty());
    let date = date_str.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let date_str = date.and(date_str).map(str::to_string);
    let resolved = resolve(&lock(&sh.world));
    match resolved {
        Ok((key, name)) => Routed::Feed(FeedReq {
            key,
            name,
            page,
            limit,
            date,
            date_str,
            only_performed: query_get(q, "only-performed-by").map(str::to_string),
            viewer,
        }),
        Err(msg) => Routed::Reply(error(sh, r, 404, msg)),
    }
}

/// One feed page, then the [`crate::FeedHook`] with the world still locked. Under
/// [`crate::Engine::Random`] the world's indexes serve it (ties shuffled afresh); under
/// an engine, the world's pending table changes are applied and the engine runs Gitea's
/// queries, and the world renders the rows it chose, in its order.
async fn feed(sh: &Shared, r: &Req, f: FeedReq) -> Reply {
    let fp = |total: usize| FeedPage {
        feed: f.name.clone(),
        page: f.page,
        limit: f.limit,
        date: f.date_str.clone(),
        total,
    };
    let out = match &sh.table {
        None => {
            let mut hook = lock(&sh.hook);
            let mut w = lock(&sh.world);
            let range = f.date.map(|d| w.day_range(d));
            let hidden = w.hidden_actors(f.viewer, f.key);
            let out = w.feed_page(f.key, f.page, f.limit, range, &hidden);
            if let Some(h) = hook.as_mut() {
                h(&fp(out.total), &mut w);
            }
            out
        }
        Some(table) => {
            let mut table = table.lock().await;
            // The hidden actors are read from the world now, as Gitea reads the `user` table
            // in the same query.
            let (ops, range, hidden) = {
                let mut w = lock(&sh.world);
                (
                    w.take_table_ops(),
                    f.date.map(|d| w.day_range(d)),
                    w.hidden_actors(f.viewer, f.key),
                )
            };
            let engine = table.engine();
            let result = match table.apply(&ops).await {
                Ok(()) => table.page(f.key, range, &hidden, f.page, f.limit).await,
                Err(e) => {
                    // Rolled back: the next feed request applies them again.
                    lock(&sh.world).restore_table_ops(ops);
                    Err(e)
                }
            };
            drop(table);
            let (ids, total) = match result {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(engine = engine.name(), error = %e, "feed query failed");
                    let msg = format!("gitea-sim engine {}: {e}", engine.name());
                    return error(sh, r, 500, &msg);
                }
            };
            let mut hook = lock(&sh.hook);
            let mut w = lock(&sh.world);
            let body = w.render_row_ids(&ids);
            if let Some(h) = hook.as_mut() {
                h(&fp(total), &mut w);
            }
            PageOut { body, total }
        }
    };

    // Gitea's repository, org and user feeds set `X-Total-Count` and nothing else
    // (go-gitea/gitea routers/api/v1/repo/repo.go `ListRepoActivityFeeds`,
    // routers/api/v1/org/org.go `ListOrgActivityFeeds`, routers/api/v1/user/user.go
    // `ListUserActivityFeeds`: `ctx.SetTotalCountHeader(count)`, which
    // services/context/api.go writes as `X-Total-Count` alone). Only the team feed sends
    // `Link` (1.26, `ctx.SetLinkHeader`): [`SimOptions::feed_link`] plays that.
    let mut reply = Reply::json(200, out.body)
        .header("X-Total-Count", out.total.to_string())
        .header("Access-Control-Expose-Headers", "X-Total-Count".to_string());
    if !sh.opts.feed_link {
        return reply;
    }
    let mut extra = String::new();
    if let Some(d) = &f.date_str {
        extra.push_str("&date=");
        extra.push_str(&percent_encode(d));
    }
    if let Some(v) = &f.only_performed {
        extra.push_str("&only-performed-by=");
        extra.push_str(&percent_encode(v));
    }
    let base = format!("http://{}{}", r.host, r.path);
    if let Some(link) = link_header(&base, f.page, f.limit, out.total, &extra) {
        reply = reply.header("Link", link);
    }
    reply
}

/// Gitea's `Link`: next and last when there are more pages, first and prev past page 1.
fn link_header(base: &str, page: usize, limit: usize, total: usize, extra: &str) -> Option<String> {
    let last = total.div_ceil(limit.max(1)).max(1);
    let url = |p: usize| format!("<{base}?page={p}&limit={limit}{extra}>");
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
        links.push(format!("{}; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", url(1)));
        links.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    (!links.is_empty()).then(|| links.join(","))
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}
