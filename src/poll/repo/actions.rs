//! `actions`: Actions runs and their state changes, from `/actions/runs` (first page,
//! newest runs), and the state changes of their jobs (`queued`, `waiting`, `in_progress`,
//! `completed`), from `/actions/runs/{run}/jobs` (go-gitea/gitea
//! routers/api/v1/repo/action.go `ListWorkflowRunJobs`). A server without Actions answers
//! 404: the kind is skipped for this repository with one info line, and asked again every
//! [`RECHECK_SECS`] (Actions can be enabled later, or the server upgraded); when it
//! answers, one info line says so and its runs are published from then on.
//!
//! Jobs are read only for the runs that may have changed them: a run listed for the first
//! time, a run not completed when last listed, and a run whose state changed (a re-run);
//! a run completed at both listings costs nothing more. One request per such run (its
//! jobs fit one page but for huge matrices, read up to [`JOB_PAGES`] pages).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Change, Collected, KindCursor, Reader, Repo, change_id, unix};
use crate::gitea::GiteaError;
use crate::telemetry;

/// The `actions` reader.
pub struct Actions;

/// How often a repository whose server answered 404 on `/actions/runs` is asked again.
pub const RECHECK_SECS: i64 = 3600;

/// Pages of one run's jobs read at most.
pub const JOB_PAGES: usize = 3;

/// What `actions` keeps: whether the server lacks Actions, and the runs last listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// The server answered 404 on `/actions/runs`.
    pub unsupported: bool,
    /// Unix seconds of the last 404 (`0`: a cursor written before it was kept: ask now).
    pub checked_at: i64,
    /// Run id to `status/conclusion`; `None` until the first listing.
    pub runs: Option<BTreeMap<i64, String>>,
    /// Job id to `status/conclusion/attempt`, for the jobs of runs not completed when last
    /// listed (a completed run's jobs are forgotten: they change only by a re-run, which
    /// changes the run's state and the jobs' attempt).
    pub jobs: BTreeMap<i64, String>,
}

impl Reader for Actions {
    type State = State;
    async fn collect(
        repo: &Repo<'_>,
        cursor: &KindCursor<State>,
    ) -> Result<Collected<State>, GiteaError> {
        collect(repo, cursor).await
    }
}

async fn collect(
    repo: &Repo<'_>,
    cursor: &KindCursor<State>,
) -> Result<Collected<State>, GiteaError> {
    let now = chrono::Utc::now().timestamp();
    let was_unsupported = cursor.state.unsupported;
    if was_unsupported && now - cursor.state.checked_at < RECHECK_SECS {
        return Ok(Collected {
            changes: Vec::new(),
            since: now,
            state: cursor.state.clone(),
        });
    }
    let known = cursor.state.runs.clone().unwrap_or_default();
    let runs = match read_runs(repo, &known).await {
        Ok(runs) => runs,
        Err(e) if e.status() == Some(404) => {
            if !was_unsupported {
                repo.client.telemetry().emit(telemetry::ActionsUnsupported {
                    owner: repo.owner,
                    repo: repo.name,
                });
            }
            return Ok(Collected {
                changes: Vec::new(),
                since: now,
                state: State {
                    unsupported: true,
                    checked_at: now,
                    runs: None,
                    jobs: BTreeMap::new(),
                },
            });
        }
        Err(e) => return Err(e),
    };
    if was_unsupported {
        repo.client.telemetry().emit(telemetry::ActionsSupported {
            owner: repo.owner,
            repo: repo.name,
        });
    }
    // A cursor created at "now" records the runs that exist without announcing them; runs
    // found once Actions appeared are news (they began after it was last asked).
    let baseline =
        cursor.state.runs.is_none() && cursor.first_listing_is_baseline() && !was_unsupported;
    let mut next = BTreeMap::new();
    // Runs not read this time (older than the pages read) stay known as they were.
    for (id, sig) in &known {
        if *id < runs.oldest {
            next.insert(*id, sig.clone());
        }
    }
    let mut changes = Vec::new();
    let mut jobs = BTreeMap::new();
    for run in runs.items {
        let id = run["id"].as_i64().unwrap_or(0);
        let status = run["status"].as_str().unwrap_or("unknown").to_string();
        let conclusion = run["conclusion"].as_str().unwrap_or("").to_string();
        let sig = format!("{status}/{conclusion}");
        next.insert(id, sig.clone());
        let before = known.get(&id);
        let done = status == "completed";
        // A run completed at both listings (or, on a baseline, completed) has no job news.
        let quiet = before == Some(&sig) && sig.starts_with("completed/");
        if !(quiet || (baseline && done)) {
            let found = read_jobs(repo, id).await?;
            for job in found {
                let Some(c) = job_change(repo, &run, &job, &cursor.state.jobs, &mut jobs, done)
                else {
                    continue;
                };
                if !baseline {
                    changes.push(c);
                }
            }
        }
        if baseline || before == Some(&sig) {
            continue;
        }
        let change = if status == "completed" && !conclusion.is_empty() {
            conclusion
        } else {
            status
        };
        let time = run["updated_at"]
            .as_str()
            .or(run["created_at"].as_str())
            .unwrap_or("")
            .to_string();
        let key = change_id("actions_run", repo, id, &sig);
        changes.push(Change {
            id: key.clone(),
            key,
            t: unix(&json!(time)).unwrap_or(now),
            seq: id,
            repeatable: false,
            noun: "actions_run",
            change: change
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect(),
            time,
            data: json!({ "run": run }),
        });
    }
    Ok(Collected {
        changes,
        since: now,
        state: State {
            unsupported: false,
            checked_at: 0,
            runs: Some(next),
            jobs,
        },
    })
}

/// The jobs of run `run` (`[]` when the run is gone: 404).
async fn read_jobs(repo: &Repo<'_>, run: i64) -> Result<Vec<Value>, GiteaError> {
    let run = run.to_string();
    match repo
        .list_all(
            &["actions", "runs", run.as_str(), "jobs"],
            &[],
            Some("jobs"),
            JOB_PAGES,
        )
        .await
    {
        Ok(listed) => Ok(listed.items),
        Err(e) if e.status() == Some(404) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The change of `job` (of `run`) since it was last seen in `known`, if any; its signature
/// is kept in `next` while its run is not completed.
fn job_change(
    repo: &Repo<'_>,
    run: &Value,
    job: &Value,
    known: &BTreeMap<i64, String>,
    next: &mut BTreeMap<i64, String>,
    run_done: bool,
) -> Option<Change> {
    let id = job["id"].as_i64()?;
    let status = job["status"].as_str().unwrap_or("unknown").to_string();
    let conclusion = job["conclusion"].as_str().unwrap_or("").to_string();
    let attempt = job["run_attempt"].as_i64().unwrap_or(0);
    let sig = format!("{status}/{conclusion}/{attempt}");
    if !run_done {
        next.insert(id, sig.clone());
    }
    if known.get(&id) == Some(&sig) {
        return None;
    }
    let change = if status == "completed" && !conclusion.is_empty() {
        conclusion
    } else {
        status.clone()
    };
    // When it reached this state: Gitea writes a time not reached yet as the Unix epoch.
    let at = |k: &str| {
        job[k]
            .as_str()
            .filter(|t| unix(&json!(t)).is_some_and(|u| u > 0))
    };
    let time = match status.as_str() {
        "completed" => at("completed_at"),
        "in_progress" => at("started_at"),
        _ => None,
    }
    .or(at("created_at"))
    .unwrap_or("")
    .to_string();
    let key = change_id("actions_job", repo, id, &sig);
    Some(Change {
        id: key.clone(),
        key,
        t: unix(&json!(time)).unwrap_or_else(|| chrono::Utc::now().timestamp()),
        seq: id,
        repeatable: false,
        noun: "actions_job",
        change: change
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect(),
        time,
        data: json!({ "job": job, "run": run }),
    })
}

/// Runs read newest first, and the oldest id the pages reached.
struct Runs {
    items: Vec<serde_json::Value>,
    oldest: i64,
}

/// Pages of `/actions/runs` (newest first) until every run still running when last seen
/// is passed, or the list ends (`Link`; a short page is not the end). At most 10 pages.
async fn read_runs(repo: &Repo<'_>, known: &BTreeMap<i64, String>) -> Result<Runs, GiteaError> {
    const PAGES: usize = 10;
    // The oldest run that may still change.
    let unfinished = known
        .iter()
        .filter(|(_, sig)| !sig.starts_with("completed/"))
        .map(|(id, _)| *id)
        .min()
        .unwrap_or(i64::MAX);
    let path = repo.path(&["actions", "runs"]);
    let mut items: Vec<serde_json::Value> = Vec::new();
    for page in 1..=PAGES {
        let asked = repo.client.page_limit();
        let p = repo
            .client
            .list_page(&path, &[], page, Some("workflow_runs"))
            .await?;
        let more = p.more(items.len() + p.items.len(), asked);
        items.extend(p.items);
        let oldest = items
            .iter()
            .filter_map(|r| r["id"].as_i64())
            .min()
            .unwrap_or(i64::MAX);
        if !more || oldest <= unfinished {
            let oldest = if more { oldest } else { i64::MIN };
            return Ok(Runs { items, oldest });
        }
    }
    let oldest = items
        .iter()
        .filter_map(|r| r["id"].as_i64())
        .min()
        .unwrap_or(i64::MAX);
    repo.client.telemetry().emit(telemetry::ListTruncated {
        what: &format!("{}/{}", repo.owner, repo.name),
        path: &path.join("/"),
        pages: PAGES,
        items: items.len(),
    });
    Ok(Runs { items, oldest })
}
