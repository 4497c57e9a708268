//! The optional HTTP listener (`[http] listen`): `/metrics` (OpenMetrics or Prometheus text,
//! as `Accept` asks), `/healthz` (the process is alive: the liveness probe) and `/readyz`
//! (NATS and Gitea reachable, no source stuck or pinned: readiness and alerting, never a
//! liveness probe, since a restart cures none of what it reports).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::shutdown::Shutdown;
use crate::telemetry::metrics::Format;
use crate::telemetry::{self, Telemetry};

/// OpenMetrics when the scraper's `Accept` asks for it (Prometheus does), else the 0.0.4
/// text format (curl, older scrapers).
async fn metrics(State(t): State<Telemetry>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        t.metrics.encode_as(format),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(t): State<Telemetry>) -> impl IntoResponse {
    let problems = t.health.problems();
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", problems.join("\n")),
        )
    }
}

/// The routes, showing `telemetry` (the run's metrics and health).
pub fn router(telemetry: Telemetry) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(telemetry)
}

/// Binds `addr` (so a taken port fails at start, naming it) and serves until shutdown.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, std::io::Error> {
    tokio::net::TcpListener::bind(addr).await
}

pub async fn serve(listener: tokio::net::TcpListener, telemetry: Telemetry, shutdown: Shutdown) {
    let r = axum::serve(listener, router(telemetry.clone()))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await;
    if let Err(e) = r {
        telemetry.emit(telemetry::HttpFailed { error: &e });
    }
}
