//! `[http]`: the listener of metrics and health.

use serde::Deserialize;

/// `[http]`: metrics and health endpoints.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address for `/metrics`, `/healthz` and `/readyz`, e.g. `127.0.0.1:9464`; off when absent.
    pub listen: Option<std::net::SocketAddr>,
}
