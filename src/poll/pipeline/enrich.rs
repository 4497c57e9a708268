//! `enrich = true`: feed rows are thin (go-gitea/gitea issue 34291); a row that points to an
//! issue or pull request (`INDEX|...`) gets the object itself in `data.issue`, fetched once
//! per issue and kept in a small cache (an issue's later changes come as their own events).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::Value;

use crate::event;
use crate::gitea::{ActivityRow, GiteaClient};
use crate::shutdown::Shutdown;
use crate::telemetry;

/// How many issues are kept.
const CAPACITY: usize = 2048;

/// `(repo_id, issue index)`.
type IssueRef = (i64, i64);

/// The issues and the order they came in (the oldest is dropped first).
type Entries = (HashMap<IssueRef, Value>, VecDeque<IssueRef>);

/// The cache of fetched issues.
#[derive(Default)]
pub struct IssueCache {
    inner: Mutex<Entries>,
    /// Fetches are abandoned when this fires (they are reads: nothing is lost).
    shutdown: Option<Shutdown>,
}

impl IssueCache {
    /// A cache whose fetches are abandoned once `shutdown` fires: the event then goes out
    /// without `data.issue`, as after a failed fetch, and the poll reaches its safe point
    /// without waiting for Gitea.
    pub fn cancelled_by(shutdown: Shutdown) -> IssueCache {
        IssueCache {
            inner: Mutex::default(),
            shutdown: Some(shutdown),
        }
    }

    fn get(&self, k: (i64, i64)) -> Option<Value> {
        // Inserts and lookups only: a poisoned cache is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .get(&k)
            .cloned()
    }

    fn put(&self, k: (i64, i64), v: Value) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.insert(k, v).is_none() {
            g.1.push_back(k);
        }
        while g.1.len() > CAPACITY {
            if let Some(old) = g.1.pop_front() {
                g.0.remove(&old);
            }
        }
    }

    /// The issue `row` points to, if any: from the cache or fetched. A failed fetch leaves
    /// the event unenriched rather than holding it back.
    pub async fn issue_for(&self, client: &GiteaClient, row: &ActivityRow) -> Option<Value> {
        self.lookup(client, row, None).await
    }

    /// Like [`IssueCache::issue_for`], and also abandoned when `stop` fires (a source's own
    /// stop, e.g. at a reload, besides the process-wide shutdown the cache was built with).
    pub async fn issue_for_until(
        &self,
        client: &GiteaClient,
        row: &ActivityRow,
        stop: &Shutdown,
    ) -> Option<Value> {
        self.lookup(client, row, Some(stop)).await
    }

    async fn lookup(
        &self,
        client: &GiteaClient,
        row: &ActivityRow,
        stop: Option<&Shutdown>,
    ) -> Option<Value> {
        let a = &row.activity;
        let index = event::issue_index(a)?;
        let k = (a.repo_id, index);
        if let Some(v) = self.get(k) {
            return Some(v);
        }
        let (owner, name) = a.repo_names()?;
        let index_s = index.to_string();
        let path = ["repos", owner, name, "issues", &index_s];
        let fetch = client.get_json::<Value>(&path, &[]);
        let fetched = tokio::select! {
            biased;
            _ = fired(stop.cloned()) => None,
            _ = fired(self.shutdown.clone()) => None,
            r = fetch => Some(r),
        };
        let Some(fetched) = fetched else {
            client
                .telemetry()
                .emit(telemetry::EnrichmentAbandoned { owner, name, index });
            return None;
        };
        match fetched {
            Ok(v) => {
                self.put(k, v.clone());
                Some(v)
            }
            Err(e) => {
                client.telemetry().emit(telemetry::EnrichmentSkipped {
                    owner,
                    name,
                    index,
                    error: &e,
                });
                None
            }
        }
    }
}

/// Completes when `s` fires; never without one.
async fn fired(s: Option<Shutdown>) {
    match s {
        Some(s) => s.wait().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GiteaConfig;

    #[tokio::test]
    async fn a_fired_stop_abandons_the_fetch_without_a_request() {
        // Nothing answers there: a fetch would fail only after its retries.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let cfg: GiteaConfig =
            toml::from_str(&format!("url = \"{url}\"\ntimeout = \"30s\"\n")).unwrap();
        let client = GiteaClient::new(&cfg, None, crate::telemetry::Telemetry::new()).unwrap();
        let raw = serde_json::value::RawValue::from_string(
            r#"{"id":1,"op_type":"comment_issue","repo_id":7,"content":"3|hi",
                "repo":{"id":7,"name":"w","full_name":"o/w","owner":{"id":1,"login":"o"}},
                "created":"2026-01-02T03:04:05+08:00"}"#
                .to_string(),
        )
        .unwrap();
        let row = ActivityRow::parse(raw).unwrap();
        let cache = IssueCache::default();
        let (trigger, stop) = crate::shutdown::channel();
        trigger.fire();
        let got = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            cache.issue_for_until(&client, &row, &stop),
        )
        .await
        .expect("returns at once");
        assert!(got.is_none());
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "no request was made");
    }
}
