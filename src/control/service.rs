//! The NATS micro service of `[control]` (see [`crate::control`]): its endpoints, the
//! parsing of each request, and the answers (JSON; errors as micro service errors with a
//! code: 400 bad request, 404 unknown source, 409 wrong state, 500 failed, 503 stopping).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_nats::service::{self, ServiceExt};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Answer, Ask, Control, Request, State};
use crate::config::ControlConfig;
use crate::poll::pipeline::Context;
use crate::shutdown::Shutdown;
use crate::source::SourceSpec;
use crate::store::PauseMark;
use crate::telemetry;

/// The service's name, as `nats micro ls` shows it.
pub const NAME: &str = "gitea-nats-sourcer";

/// The endpoints: name (as `nats micro info` shows it) and subject below `control.subject`.
pub const ENDPOINTS: [(&str, &str); 5] = [
    ("sources-list", "sources.list"),
    ("sources-pause", "sources.pause"),
    ("sources-resume", "sources.resume"),
    ("sources-reset", "sources.reset"),
    ("backfill", "backfill"),
];

/// A failed request: the micro service error code and what went wrong.
type Failure = (usize, String);

/// The header nats-server adds to a request that crosses an account's service import
/// (JSON: `acc`, and with `share: true` also `user`, `name`, `host`, ...).
pub const REQUEST_INFO: &str = "Nats-Request-Info";

/// Who asked, as nats-server says in [`REQUEST_INFO`]: its user and account, `unknown` when
/// the header is absent (a request from within the sourcer's own account, or an import
/// without `share: true` for the user). Only these two fields are read: the header may also
/// carry the client's JWT, which is never logged. Within one account a client could set the
/// header itself, so it names who asked only where requests come through an import.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Requester {
    /// The requesting connection's user.
    #[serde(default)]
    user: Option<String>,
    /// The requesting connection's account.
    #[serde(default)]
    acc: Option<String>,
}

impl Requester {
    /// Read from a request's headers; unknown when absent or not JSON.
    pub fn of(message: &async_nats::Message) -> Requester {
        Requester::from_header(
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(REQUEST_INFO))
                .map(|v| v.as_str()),
        )
    }

    /// From the header's value, if any.
    fn from_header(value: Option<&str>) -> Requester {
        value
            .and_then(|v| serde_json::from_str::<Requester>(v).ok())
            .unwrap_or_default()
    }

    /// The user, printable and short; `unknown` when not given.
    pub fn user(&self) -> String {
        printable(self.user.as_deref())
    }

    /// The account, printable and short; `unknown` when not given.
    pub fn account(&self) -> String {
        printable(self.acc.as_deref())
    }
}

impl fmt::Display for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user {} (account {})", self.user(), self.account())
    }
}

/// A name from a header as it may be logged: no control characters, at most 128 characters,
/// `unknown` when empty.
fn printable(s: Option<&str>) -> String {
    let s: String = s
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    match s.is_empty() {
        true => "unknown".into(),
        false => s,
    }
}

/// A state-changing request under way: since when and who asked.
#[derive(Debug, Clone)]
struct Job {
    /// The endpoint (`backfill`, `sources-reset`, ...).
    what: &'static str,
    since: DateTime<Utc>,
    by: String,
}

/// What this service is doing that changes state, so that a second such request is refused
/// (409) instead of racing the first: one backfill at a time, one pause, resume or reset of
/// a source at a time. Held by [`Claim`]s, released when they drop (the request answered,
/// the backfill ended).
#[derive(Debug, Default)]
pub struct Busy {
    /// The backfill started through the service that still runs.
    backfill: Mutex<Option<Job>>,
    /// The source (spec) whose pause, resume or reset is under way.
    sources: Mutex<HashMap<String, Job>>,
}

/// What a [`Claim`] holds in [`Busy`].
enum Held {
    Backfill,
    Source(String),
}

/// A place in [`Busy`], given back on drop.
pub struct Claim {
    busy: Arc<Busy>,
    held: Held,
}

impl Drop for Claim {
    fn drop(&mut self) {
        match &self.held {
            Held::Backfill => *lock(&self.busy.backfill) = None,
            Held::Source(source) => {
                lock(&self.busy.sources).remove(source);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Busy {
    /// Takes the backfill's place; 409 naming the running one when taken.
    fn claim_backfill(self: &Arc<Self>, by: &Requester) -> Result<Claim, Failure> {
        let mut slot = lock(&self.backfill);
        if let Some(job) = slot.as_ref() {
            return Err((
                409,
                format!(
                    "a backfill is running since {}, started by {}; ask again once it is done",
                    job.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    job.by
                ),
            ));
        }
        *slot = Some(Job {
            what: "backfill",
            since: Utc::now(),
            by: by.to_string(),
        });
        Ok(Claim {
            busy: self.clone(),
            held: Held::Backfill,
        })
    }

    /// Takes `spec`'s place for `what`; 409 naming the request under way when taken.
    fn claim_source(
        self: &Arc<Self>,
        spec: &SourceSpec,
        what: &'static str,
        by: &Requester,
    ) -> Result<Claim, Failure> {
        let source = spec.to_string();
        let mut sources = lock(&self.sources);
        if let Some(job) = sources.get(&source) {
            return Err((
                409,
                format!(
                    "{source}: a {} of it is in flight since {}, started by {}",
                    job.what,
                    job.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    job.by
                ),
            ));
        }
        sources.insert(
            source.clone(),
            Job {
                what,
                since: Utc::now(),
                by: by.to_string(),
            },
        );
        Ok(Claim {
            busy: self.clone(),
            held: Held::Source(source),
        })
    }
}

/// What every request's handler shares: the way to the scheduler, the run's context, and
/// the service's own state.
struct Endpoints {
    /// Requests to the scheduler.
    tx: mpsc::Sender<Request>,
    ctx: Arc<Context>,
    /// This instance's name (a pause mark's `by`).
    instance: String,
    shutdown: Shutdown,
    /// `control.max_backfill_days`.
    max_backfill_days: u32,
    /// The state-changing requests under way.
    busy: Arc<Busy>,
}

/// Starts the service on `nats` and its task, which ends (the service stopped, so it leaves
/// `nats micro ls`) at shutdown; returns the scheduler's end. Each request is answered by a
/// task of its own, so a slow one (a reset waiting for a safe point) holds up no other;
/// [`Busy`] refuses the ones that would race.
pub async fn start(
    cfg: &ControlConfig,
    nats: async_nats::Client,
    ctx: Arc<Context>,
    instance: String,
    shutdown: Shutdown,
) -> Result<Control, async_nats::Error> {
    let svc = nats
        .service_builder()
        .description(
            "gitea-nats-sourcer control: list, pause, resume and reset sources; start a backfill",
        )
        .start(NAME, env!("CARGO_PKG_VERSION"))
        .await?;
    let group = svc.group(&cfg.subject);
    let mut streams: Vec<BoxStream<'static, (&'static str, service::Request)>> = Vec::new();
    for (name, subject) in ENDPOINTS {
        let endpoint = group.endpoint_builder().name(name).add(subject).await?;
        streams.push(endpoint.map(move |r| (name, r)).boxed());
    }
    let mut requests = futures::stream::select_all(streams);
    let (tx, rx) = mpsc::channel::<Request>(8);
    let prefix = cfg.subject.clone();
    ctx.telemetry.emit(telemetry::ControlStarted {
        service: NAME,
        subject: &prefix,
    });
    let endpoints = Arc::new(Endpoints {
        tx,
        ctx,
        instance,
        shutdown: shutdown.clone(),
        max_backfill_days: cfg.max_backfill_days,
        busy: Arc::new(Busy::default()),
    });
    tokio::spawn(async move {
        loop {
            let (endpoint, req) = tokio::select! {
                next = requests.next() => match next {
                    Some(r) => r,
                    None => break,
                },
                _ = shutdown.wait() => break,
            };
            tokio::spawn(endpoints.clone().answer(endpoint, req));
        }
        // Leaves `nats micro ls` (its subscriptions are dropped).
        let _ = svc.stop().await;
    });
    Ok(Control { requests: rx })
}

impl Endpoints {
    /// Answers one request and logs it with who asked and the outcome.
    async fn answer(self: Arc<Self>, endpoint: &'static str, req: service::Request) {
        let body = String::from_utf8_lossy(&req.message.payload)
            .trim()
            .to_string();
        let by = Requester::of(&req.message);
        let answer = self.handle(endpoint, &body, &by).await;
        let outcome = match &answer {
            Ok(_) => "ok".to_string(),
            Err((code, why)) => format!("{code} {why}"),
        };
        self.ctx.telemetry.emit(telemetry::ControlRequested {
            endpoint,
            body: &body,
            outcome: &outcome,
            user: &by.user(),
            account: &by.account(),
        });
        let response = answer
            .map(|v| Bytes::from(v.to_string()))
            .map_err(|(code, status)| service::error::Error { status, code });
        if let Err(e) = req.respond(response).await {
            self.ctx.telemetry.emit(telemetry::ControlAnswerUnsent {
                endpoint,
                error: &e,
            });
        }
    }
}
fn spec(body: &str) -> Result<SourceSpec, Failure> {
    let text = match serde_json::from_str::<Value>(body) {
        Ok(v) => v["source"].as_str().unwrap_or("").to_string(),
        Err(_) => body.to_string(),
    };
    text.parse::<SourceSpec>().map_err(|e| {
        (
            400,
            format!("the body must name a source (repo:OWNER/NAME, org:NAME, user:NAME): {e}"),
        )
    })
}

async fn asked(tx: &mpsc::Sender<Request>, a: Ask) -> Result<Answer, Failure> {
    super::ask(tx, a)
        .await
        .ok_or((503, "the sourcer is stopping".to_string()))
}

/// How long a pause's answer waits for the source's task here to reach a safe point (a
/// batch's end; the mark is stored already, so a slower task still stops, after the
/// answer). Shorter than the requesters' usual timeouts (`nats request`: 5 s).
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(4);

/// The state of `spec` as the scheduler lists it; 404 when it is not a configured source.
async fn configured_state(tx: &mpsc::Sender<Request>, spec: &SourceSpec) -> Result<State, Failure> {
    let Answer::Sources(sources) = asked(tx, Ask::List).await? else {
        return Err((500, "unexpected answer".into()));
    };
    let name = spec.to_string();
    sources
        .iter()
        .find(|s| s.source == name)
        .map(|s| s.state)
        .ok_or((404, format!("{spec} is not a configured source")))
}

fn done(answer: Answer, spec: &SourceSpec) -> Result<(), Failure> {
    match answer {
        Answer::Done => Ok(()),
        Answer::Unknown => Err((404, format!("{spec} is not a configured source"))),
        Answer::Conflict(why) => Err((409, format!("{spec}: {why}"))),
        Answer::Sources(_) => Err((500, "unexpected answer".into())),
    }
}

/// `backfill`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillBody {
    /// First day (server time zone).
    since: NaiveDate,
    /// Last day, inclusive; default today.
    until: Option<NaiveDate>,
    /// Sources; default every configured one.
    #[serde(default)]
    sources: Vec<String>,
}

impl Endpoints {
    async fn handle(&self, endpoint: &str, body: &str, by: &Requester) -> Result<Value, Failure> {
        let (tx, ctx, instance, shutdown) = (&self.tx, &self.ctx, &self.instance, &self.shutdown);
        match endpoint {
            "sources-list" => {
                let Answer::Sources(sources) = asked(tx, Ask::List).await? else {
                    return Err((500, "unexpected answer".into()));
                };
                let stored = ctx
                    .store
                    .list()
                    .await
                    .map_err(|e| (500, format!("reading the cursors: {e}")))?;
                // The bucket's marks, not this process's view of them: the watch brings a pause
                // made through another instance a moment later, and a list asked right after the
                // pause must show it on every instance.
                let marks = ctx
                    .store
                    .pauses()
                    .await
                    .map_err(|e| (500, format!("reading the pause marks: {e}")))?;
                let marked =
                    |source: &str| marks.iter().any(|(spec, _)| spec.to_string() == source);
                let sources: Vec<Value> = sources
                .into_iter()
                .map(|s| {
                    let cursor = stored
                        .iter()
                        .find(|(spec, _)| spec.to_string() == s.source)
                        .map(|(_, st)| {
                            json!({
                                "newest": st.cursor.newest,
                                "published": st.cursor.published,
                                "updated_at": st.cursor.updated_at.to_rfc3339(),
                                "gap": st.cursor.gap.as_ref().map(|g| json!({"from": g.from, "to": g.to})),
                            })
                        });
                    json!({
                        "source": ctx.telemetry.health.names.shown_source(&s.source),
                        "state": if marked(&s.source) { json!("paused") } else { json!(s.state) },
                        "interval": s.interval,
                        "cursor": cursor,
                    })
                })
                .collect();
                Ok(json!({ "sources": sources }))
            }
            "sources-pause" => {
                let spec = spec(body)?;
                let _claim = self.busy.claim_source(&spec, "pause", by)?;
                let here = configured_state(tx, &spec).await? == State::Running;
                let mark = PauseMark {
                    at: chrono::Utc::now(),
                    by: instance.to_string(),
                };
                let stored = ctx
                    .store
                    .pause(&spec, &mark)
                    .await
                    .map_err(|e| (500, format!("{spec}: storing the pause: {e}")))?;
                if !stored {
                    return Err((409, format!("{spec}: paused already")));
                }
                // The watch brings the mark to every process, this one too (a moment later; set
                // by hand here, it could undo a resume the watch brought meanwhile). A task
                // polling here stops at its next safe point, and the answer waits for that.
                let stopped_here = here
                    && tokio::time::timeout(STOP_WAIT, ctx.pauses.wait_paused(&spec))
                        .await
                        .is_ok()
                    && ctx.pauses.wait_idle_here(&spec, STOP_WAIT).await;
                Ok(json!({
                    "source": spec.to_string(),
                    "state": "paused",
                    "stopped_here": stopped_here,
                }))
            }
            "sources-resume" => {
                let spec = spec(body)?;
                let _claim = self.busy.claim_source(&spec, "resume", by)?;
                configured_state(tx, &spec).await?;
                let deleted = ctx
                    .store
                    .resume(&spec)
                    .await
                    .map_err(|e| (500, format!("{spec}: deleting the pause: {e}")))?;
                if !deleted {
                    return Err((409, format!("{spec}: not paused")));
                }
                Ok(json!({"source": spec.to_string(), "state": "running"}))
            }
            "sources-reset" => {
                let spec = spec(body)?;
                let _claim = self.busy.claim_source(&spec, "reset", by)?;
                let was_running = match asked(tx, Ask::Stop(spec.clone())).await? {
                    Answer::Done => true,
                    Answer::Conflict(_) => false,
                    other => return done(other, &spec).map(|()| Value::Null),
                };
                let deleted = ctx.store.reset(&spec).await;
                if was_running {
                    done(asked(tx, Ask::Start(spec.clone())).await?, &spec)?;
                }
                let deleted =
                    deleted.map_err(|e| (500, format!("{spec}: deleting the cursor: {e}")))?;
                Ok(json!({
                    "source": spec.to_string(),
                    "cursor_deleted": deleted,
                    "restarted": was_running,
                }))
            }
            "backfill" => {
                let b: BackfillBody = serde_json::from_str(body).map_err(|e| {
                (
                    400,
                    format!("the body must be {{\"since\": \"YYYY-MM-DD\", \"until\": ..., \"sources\": [...]}}: {e}"),
                )
            })?;
                // Server days, as the backfill reads them (UTC).
                let today = Utc::now().date_naive();
                let until = b.until.unwrap_or(today);
                if until > today {
                    return Err((
                        400,
                        format!(
                            "until {until} is after today ({today}, UTC): nothing to backfill there yet"
                        ),
                    ));
                }
                if until < b.since {
                    return Err((400, format!("until {until} is before since {}", b.since)));
                }
                let span = (until - b.since).num_days();
                if span > i64::from(self.max_backfill_days) {
                    return Err((
                        400,
                        format!(
                            "since {} is {span} days before until {until}: at most {} (control.max_backfill_days); split the range",
                            b.since, self.max_backfill_days
                        ),
                    ));
                }
                let Answer::Sources(configured) = asked(tx, Ask::List).await? else {
                    return Err((500, "unexpected answer".into()));
                };
                let specs: Vec<SourceSpec> = match b.sources.is_empty() {
                    true => configured
                        .iter()
                        .filter_map(|v| v.source.parse().ok())
                        .collect(),
                    false => {
                        let named: Vec<SourceSpec> = b
                            .sources
                            .iter()
                            .map(|s| spec(s))
                            .collect::<Result<_, _>>()?;
                        if let Some(unknown) = named
                            .iter()
                            .find(|n| !configured.iter().any(|c| c.source == n.to_string()))
                        {
                            return Err((404, format!("{unknown} is not a configured source")));
                        }
                        named
                    }
                };
                let claim = self.busy.claim_backfill(by)?;
                let names: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
                let ctx = ctx.clone();
                let stop = shutdown.clone();
                let since = b.since;
                tokio::spawn(async move {
                    // Held until the backfill ends (or its task is dropped at shutdown).
                    let _claim = claim;
                    let r =
                        crate::poll::backfill::backfill(&ctx, &specs, since, until, &stop).await;
                    let sources = specs
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(" ");
                    match r {
                        Ok(t) => ctx.telemetry.emit(telemetry::ControlBackfillDone {
                            sources: &sources,
                            since,
                            until,
                            days: t.days,
                            published: t.published,
                            skipped: t.skipped,
                            incomplete: t.incomplete.len(),
                        }),
                        Err(e) => ctx.telemetry.emit(telemetry::ControlBackfillFailed {
                            sources: &sources,
                            error: &e,
                        }),
                    }
                });
                Ok(json!({
                    "started": true,
                    "since": since.to_string(),
                    "until": until.to_string(),
                    "sources": names,
                }))
            }
            other => Err((404, format!("no endpoint {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_named_as_text_or_json() {
        assert_eq!(
            spec("repo:acme/widgets").map(|s| s.to_string()),
            Ok("repo:acme/widgets".to_string())
        );
        assert_eq!(
            spec("{\"source\": \"org:acme\"}").map(|s| s.to_string()),
            Ok("org:acme".to_string())
        );
        assert_eq!(spec("nonsense").map_err(|e| e.0), Err(400));
        assert_eq!(spec("").map_err(|e| e.0), Err(400));
    }

    #[test]
    fn the_requester_is_read_from_the_request_info_header_and_nothing_else_of_it() {
        let info = r#"{"acc":"OPS","user":"ada","name":"ada-laptop","host":"10.0.0.7","jwt":"eyJ0eXAiOiJKV1Qi.secret","rtt":"1ms"}"#;
        let r = Requester::from_header(Some(info));
        assert_eq!((r.user(), r.account()), ("ada".into(), "OPS".into()));
        assert_eq!(r.to_string(), "user ada (account OPS)");
        assert!(
            !format!("{r:?}").contains("secret"),
            "the JWT is not kept: {r:?}"
        );
        let none = Requester::from_header(None);
        assert_eq!(
            (none.user(), none.account()),
            ("unknown".into(), "unknown".into())
        );
        let only_acc = Requester::from_header(Some(r#"{"acc":"OPS","rtt":"1ms"}"#));
        assert_eq!(only_acc.user(), "unknown");
        assert_eq!(
            Requester::from_header(Some("not json")).account(),
            "unknown"
        );
        let odd = Requester::from_header(Some(r#"{"user":"a\u001b[31mb\nc"}"#));
        assert_eq!(odd.user(), "a[31mbc", "no control characters reach the log");
    }

    #[test]
    fn busy_refuses_a_second_claim_until_the_first_is_dropped() {
        let busy = Arc::new(Busy::default());
        let ada = Requester::from_header(Some(r#"{"acc":"OPS","user":"ada"}"#));
        let first = busy.claim_backfill(&ada).map_err(|e| e.1);
        assert!(first.is_ok());
        let (code, why) = busy
            .claim_backfill(&Requester::default())
            .err()
            .unwrap_or_default();
        assert_eq!(code, 409);
        assert!(
            why.contains("a backfill is running since")
                && why.contains("started by user ada (account OPS)"),
            "{why}"
        );
        drop(first);
        assert!(busy.claim_backfill(&ada).is_ok(), "released on drop");
        let widgets: SourceSpec = "repo:acme/widgets".parse().expect("spec");
        let gadgets: SourceSpec = "repo:acme/gadgets".parse().expect("spec");
        let reset = busy.claim_source(&widgets, "reset", &ada);
        assert!(reset.is_ok());
        let (code, why) = busy
            .claim_source(&widgets, "pause", &ada)
            .err()
            .unwrap_or_default();
        assert_eq!(code, 409);
        assert!(why.contains("a reset of it is in flight"), "{why}");
        assert!(
            busy.claim_source(&gadgets, "reset", &ada).is_ok(),
            "another source is free"
        );
        drop(reset);
        assert!(
            busy.claim_source(&widgets, "reset", &ada).is_ok(),
            "released on drop"
        );
    }
}
