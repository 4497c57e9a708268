//! The relay in the demo: a local webhook receiver (what a CI server would be) that checks
//! every delivery's signatures over the raw body, and the relay delivering the demo's
//! webhook-shaped events to it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use gitea_nats_sourcer::relay::{self, config::RelayConfig, delivery};
use gitea_nats_sourcer::telemetry::Telemetry;

/// The demo receiver's secret (the relay reads it from a file, as from a credential).
const SECRET: &str = "demo-webhook-secret";

/// What the receiver counted.
#[derive(Default)]
pub struct Counts {
    pub delivered: AtomicUsize,
    pub verified: AtomicUsize,
    first_printed: Mutex<bool>,
}

#[derive(Clone)]
struct Rx {
    counts: Arc<Counts>,
}

/// Constant-time comparison of two hex signatures.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn hook(State(rx): State<Rx>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    // What Drone and Buildbot do: HMAC-SHA256 of the exact body bytes with the shared secret.
    let sha256 = delivery::sign_sha256(SECRET, &body);
    let ok = same(h("X-Gitea-Signature"), &sha256)
        && same(h("X-Hub-Signature-256"), &format!("sha256={sha256}"))
        && same(
            h("X-Hub-Signature"),
            &format!("sha1={}", delivery::sign_sha1(SECRET, &body)),
        );
    rx.counts.delivered.fetch_add(1, Ordering::Relaxed);
    if ok {
        rx.counts.verified.fetch_add(1, Ordering::Relaxed);
    }
    let repo = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["repository"]["full_name"].as_str().map(str::to_string))
        .unwrap_or_default();
    {
        let mut first = rx
            .counts
            .first_printed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !*first {
            *first = true;
            let mut names: Vec<_> = headers
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
                .collect();
            names.sort();
            say!(
                "receiver: the first delivery's headers ({} bytes of body, unchanged):\n    {}",
                body.len(),
                names.join("\n    ")
            );
        }
    }
    say!(
        "receiver: {} {} {repo} delivery {} signature {}",
        h("X-Gitea-Event"),
        h("X-Gitea-Event-Type"),
        h("X-Gitea-Delivery"),
        if ok { "verified" } else { "WRONG" }
    );
    if ok {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

/// The receiver and the relay, running until the returned stop is sent.
pub struct Running {
    pub counts: Arc<Counts>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), relay::RelayError>>,
    receiver: tokio::task::JoinHandle<()>,
}

/// The dead-letter bucket of run `run` (its own, as the stream).
pub fn dead_letter_bucket(run: &str) -> String {
    format!("gitea_demo_{run}_dead")
}

/// Starts the receiver on a free port and the relay towards it; returns the relay's config
/// text for the demo to show.
pub async fn start(
    dir: &std::path::Path,
    nats_url: &str,
    stream: &str,
    prefix: &str,
    run: &str,
) -> Result<(Running, String), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind the demo receiver: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("demo receiver: {e}"))?;
    let counts = Arc::new(Counts::default());
    let app = Router::new().route("/hook", post(hook)).with_state(Rx {
        counts: counts.clone(),
    });
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let secret = dir.join("ci-secret");
    std::fs::write(&secret, SECRET).map_err(|e| format!("cannot write the secret: {e}"))?;
    let text = format!(
        "dead_letter_bucket = \"{}\"\n\n[nats]\nurl = \"{nats_url}\"\nstream = \"{stream}\"\nsubject_prefix = \"{prefix}\"\n\n\
         [[receiver]]\nname = \"ci\"\nurl = \"http://{addr}/hook\"\nsecret_file = {:?}\nstart = \"all\"\n",
        dead_letter_bucket(run),
        secret.display().to_string()
    );
    let cfg = RelayConfig::parse(&text).map_err(|e| e.to_string())?;
    let receivers = cfg.receivers().map_err(|e| e.to_string())?;
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relay::run_with(cfg, receivers, Telemetry::new(), async {
        let _ = stop_rx.await;
    }));
    Ok((
        Running {
            counts,
            stop,
            task,
            receiver,
        },
        text,
    ))
}

impl Running {
    /// Stops the relay, then the receiver.
    pub async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        let r = match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("the relay task failed: {e}")),
        };
        self.receiver.abort();
        r
    }
}
