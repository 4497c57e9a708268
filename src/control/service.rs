//! The NATS micro service of `[control]` (see [`crate::control`]): its endpoints, the
//! parsing of each request, and the answers (JSON; errors as micro service errors with a
//! code: 400 bad request, 404 unknown source, 409 wrong state, 500 failed, 503 stopping).

use std::sync::Arc;

use async_nats::service::{self, ServiceExt};
use bytes::Bytes;
use chrono::NaiveDate;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Answer, Ask, Control, Request, State};
use crate::config::ControlConfig;
use crate::pipeline::Context;
use crate::shutdown::Shutdown;
use crate::source::SourceSpec;
use crate::state::PauseMark;
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

/// Starts the service on `nats` and its task, which ends (the service stopped, so it leaves
/// `nats micro ls`) at shutdown; returns the scheduler's end.
pub async fn start(
    cfg: &ControlConfig,
    nats: async_nats::Client,
    ctx: Arc<Context>,
    instance: String,
    mut shutdown: Shutdown,
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
    tokio::spawn(async move {
        loop {
            let (endpoint, req) = tokio::select! {
                next = requests.next() => match next {
                    Some(r) => r,
                    None => break,
                },
                _ = shutdown.wait() => break,
            };
            let body = String::from_utf8_lossy(&req.message.payload)
                .trim()
                .to_string();
            let answer = handle(endpoint, &body, &tx, &ctx, &instance, &shutdown).await;
            let outcome = match &answer {
                Ok(_) => "ok".to_string(),
                Err((code, why)) => format!("{code} {why}"),
            };
            ctx.telemetry.emit(telemetry::ControlRequested {
                endpoint,
                body: &body,
                outcome: &outcome,
            });
            let response = answer
                .map(|v| Bytes::from(v.to_string()))
                .map_err(|(code, status)| service::error::Error { status, code });
            if let Err(e) = req.respond(response).await {
                tracing::debug!(endpoint, "control: the answer was not sent: {e}");
            }
        }
        // Leaves `nats micro ls` (its subscriptions are dropped).
        let _ = svc.stop().await;
    });
    Ok(Control { requests: rx })
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

async fn handle(
    endpoint: &str,
    body: &str,
    tx: &mpsc::Sender<Request>,
    ctx: &Arc<Context>,
    instance: &str,
    shutdown: &Shutdown,
) -> Result<Value, Failure> {
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
            let marked = |source: &str| marks.iter().any(|(spec, _)| spec.to_string() == source);
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
                        "source": s.source,
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
            let until = b.until.unwrap_or_else(|| chrono::Utc::now().date_naive());
            if until < b.since {
                return Err((400, format!("until {until} is before since {}", b.since)));
            }
            let specs: Vec<SourceSpec> = match b.sources.is_empty() {
                true => match asked(tx, Ask::List).await? {
                    Answer::Sources(s) => s.iter().filter_map(|v| v.source.parse().ok()).collect(),
                    _ => Vec::new(),
                },
                false => b
                    .sources
                    .iter()
                    .map(|s| spec(s))
                    .collect::<Result<_, _>>()?,
            };
            let names: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
            let ctx = ctx.clone();
            let mut stop = shutdown.clone();
            let since = b.since;
            tokio::spawn(async move {
                let r = crate::backfill::backfill(&ctx, &specs, since, until, &mut stop).await;
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
}
