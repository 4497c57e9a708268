//! A real local webhook receiver for the relay's tests and benchmark: an axum server on a
//! port of its own that verifies the signatures as Gitea's receivers do (HMAC over the raw
//! body, compared in constant time) and records every request it answers. What it answers is
//! scripted: a queue of statuses (with `Retry-After`) for the next requests; past it, a body
//! holding `"refuse": true` gets a 422, a bad signature a 401, anything else a 200.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hmac::{Hmac, KeyInit, Mac};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Got {
    pub method: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `X-Gitea-Signature` verified (hex HMAC-SHA256 of the raw body).
    pub gitea_sig_ok: bool,
    /// `X-Hub-Signature-256` (`sha256=`) and `X-Hub-Signature` (`sha1=`) verified.
    pub hub_sig_ok: bool,
    pub status: u16,
    pub at: Instant,
}

impl Got {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Scripted answers: (status, Retry-After).
type Script = VecDeque<(u16, Option<String>)>;

#[derive(Clone)]
struct Shared {
    secret: String,
    log: Arc<Mutex<Vec<Got>>>,
    script: Arc<Mutex<Script>>,
}

/// The running receiver; dropped, it stops.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

/// What Drone's and Buildbot's receivers do: HMAC-SHA256 of the exact body with the secret,
/// hex, compared in constant time with the header.
pub fn verify_sha256(secret: &str, body: &[u8], hex_sig: &str) -> bool {
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

fn verify_sha1(secret: &str, body: &[u8], hex_sig: &str) -> bool {
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn hook(
    State(s): State<Shared>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let gitea_sig_ok = verify_sha256(&s.secret, &body, &h("X-Gitea-Signature"));
    let hub_sig_ok = h("X-Hub-Signature-256")
        .strip_prefix("sha256=")
        .is_some_and(|x| verify_sha256(&s.secret, &body, x))
        && h("X-Hub-Signature")
            .strip_prefix("sha1=")
            .is_some_and(|x| verify_sha1(&s.secret, &body, x));
    let refuse = serde_json::from_slice::<serde_json::Value>(&body)
        .map(|v| v["refuse"] == serde_json::Value::Bool(true))
        .unwrap_or(false);
    let scripted = s.script.lock().unwrap().pop_front();
    let (status, retry_after) = match (refuse, scripted) {
        (_, Some(x)) => x,
        (true, None) => (422, None),
        (false, None) if !gitea_sig_ok => (401, None),
        (false, None) => (200, None),
    };
    s.log.lock().unwrap().push(Got {
        method: method.to_string(),
        headers: headers.clone(),
        body,
        gitea_sig_ok,
        hub_sig_ok,
        status,
        at: Instant::now(),
    });
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (code, format!("answer {status}\n")).into_response();
    if let Some(ra) = retry_after {
        resp.headers_mut()
            .insert("Retry-After", ra.parse().expect("header value"));
    }
    resp
}

impl Receiver {
    /// Starts on a free port.
    pub async fn start(secret: &str) -> Receiver {
        Self::start_on(0, secret).await
    }

    /// Starts on `port` (one reserved earlier: the receiver was "down" until now).
    pub async fn start_on(port: u16, secret: &str) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the test receiver");
        let addr = listener.local_addr().expect("addr");
        let shared = Shared {
            secret: secret.to_string(),
            log: Arc::default(),
            script: Arc::default(),
        };
        let app = Router::new()
            .route("/{*path}", any(hook))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next requests get these answers (status, Retry-After), then 200 again.
    pub fn script(&self, answers: &[(u16, Option<&str>)]) {
        let mut q = self.shared.script.lock().unwrap();
        for (s, ra) in answers {
            q.push_back((*s, ra.map(str::to_string)));
        }
    }

    /// Every request so far.
    pub fn got(&self) -> Vec<Got> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn delivered(&self) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| (200..300).contains(&g.status))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
