//! The one HTTP client towards Gitea: token header, sub-URL prefix, timeouts, one shared
//! `governor` rate limit for every request, and `backon` retries with exponential backoff
//! and jitter that honour `Retry-After`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use chrono::NaiveDate;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Response, Url};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::error::{GiteaError, parse_retry_after};
use super::types::{ActivityRow, ApiSettings, ServerVersion, User};
use crate::config::{GiteaConfig, Secret};
use crate::source::SourceSpec;
use crate::telemetry::{self, Telemetry};

/// One page of a feed.
#[derive(Debug)]
pub struct FeedPage {
    /// The rows that parsed, in the order Gitea sent them (newest first).
    pub rows: Vec<ActivityRow>,
    /// `X-Total-Count`: rows of the whole feed (or day), when Gitea sent it.
    pub total: Option<u64>,
    /// Whether a next page holds more rows: `Link` said so, or the total says more rows
    /// lie past this page ([`more_rows`]). Gitea's repository, org and user feeds send no
    /// `Link` (FACTS.md), so the total is what usually decides.
    pub has_next: bool,
    /// Rows the server sent, including any that did not parse.
    pub served: usize,
    /// The page size this page was asked for (`limit`): the page starts at row
    /// `(page - 1) * limit` of the feed's order.
    pub limit: usize,
    /// Whether the answer had a `Link` header at all (Gitea's feeds have none but the team
    /// feed's, from 1.26).
    pub linked: bool,
    /// The `date=` day asked for, if any.
    pub date: Option<NaiveDate>,
}

/// Whether more rows lie past page `page` (1-based) of `limit` rows that served `served`
/// rows, by the total: `(page - 1) * limit + served < total`. Without a total, a full page
/// means more. An empty page ends a walk whatever the total says (the rows counted were
/// deleted between Gitea's two queries: the rows and the count are read apart).
pub fn more_rows(page: usize, limit: usize, served: usize, total: Option<u64>) -> bool {
    if served == 0 {
        return false;
    }
    match total {
        Some(total) => {
            (page.saturating_sub(1) as u64)
                .saturating_mul(limit as u64)
                .saturating_add(served as u64)
                < total
        }
        None => served >= limit,
    }
}

/// One page of a list endpoint.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<serde_json::Value>,
    /// `X-Total-Count`, when sent (for some endpoints, e.g. a timeline, only this page's).
    pub total: Option<u64>,
    /// Whether `Link` announced a next page.
    pub has_next: bool,
    /// Whether the answer had a `Link` header at all (Gitea sends none for a single page,
    /// and none ever for `/issues/comments` and `/issues/{index}/timeline`).
    pub linked: bool,
}

impl ListPage {
    /// Whether another page may follow, `read` being the items of every page so far
    /// (this one included) and `asked` the page size asked for. `Link` decides when there
    /// is one: a page shorter than asked is not the end (the server may cap pages lower
    /// than we think). Without `Link`, a total larger than what was read, or else a full
    /// page, means more.
    pub fn more(&self, read: usize, asked: usize) -> bool {
        if self.linked {
            return self.has_next;
        }
        if self.items.is_empty() {
            return false;
        }
        match self.total {
            Some(total) if total > read as u64 => true,
            _ => self.items.len() >= asked,
        }
    }
}

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct GiteaClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `{url}/api/v1`, path prefix kept.
    api: Url,
    token: Option<Secret>,
    limiter: DefaultDirectRateLimiter,
    /// Requests take their turn at the limiter in arrival order (tokio's mutex is FIFO):
    /// governor alone lets whoever wakes first take a freed slot, which can starve a source
    /// for as long as others keep asking.
    turn: tokio::sync::Mutex<()>,
    max_retries: usize,
    /// Page size asked for: the server's `max_response_items` once known.
    page_limit: AtomicUsize,
    /// Where requests, retries and waits are counted.
    telemetry: Telemetry,
}

impl GiteaClient {
    /// Builds the client from `[gitea]`; the token is passed in already read. Requests,
    /// retries and waits are emitted into `telemetry`.
    pub fn new(
        cfg: &GiteaConfig,
        token: Option<Secret>,
        telemetry: Telemetry,
    ) -> Result<GiteaClient, GiteaError> {
        let mut api = Url::parse(&cfg.url).map_err(|e| {
            let shown = crate::config::without_userinfo(&cfg.url);
            GiteaError::Request(format!("gitea.url {shown:?}: {e}"))
        })?;
        {
            let mut segs = api.path_segments_mut().map_err(|_| {
                GiteaError::Request(format!(
                    "gitea.url {:?} cannot be a base",
                    crate::config::without_userinfo(&cfg.url)
                ))
            })?;
            segs.pop_if_empty().push("api").push("v1");
        }
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &cfg.tls_ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                GiteaError::Request(format!("gitea.tls_ca_file {}: {e}", path.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                GiteaError::Request(format!(
                    "gitea.tls_ca_file {} is not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        if cfg.tls_insecure_skip_verify {
            telemetry.emit(telemetry::GiteaTlsUnverified {
                url: &crate::config::without_userinfo(&cfg.url),
            });
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("gitea-nats-sourcer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GiteaError::Request(format!("cannot build the HTTP client: {e}")))?;
        // validate() guarantees both are at least 1; max(1) keeps this total anyway.
        let rps = NonZeroU32::new(cfg.requests_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(cfg.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::direct(Quota::per_second(rps).allow_burst(burst));
        Ok(GiteaClient {
            inner: Arc::new(Inner {
                http,
                api,
                token,
                limiter,
                turn: tokio::sync::Mutex::new(()),
                max_retries: cfg.max_retries,
                page_limit: AtomicUsize::new(ApiSettings::default().max_response_items),
                telemetry,
            }),
        })
    }

    /// Where this client's happenings go (the run's [`Telemetry`]).
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// The page size used for feeds.
    pub fn page_limit(&self) -> usize {
        self.inner.page_limit.load(Ordering::Relaxed)
    }

    /// Reads `max_response_items` so that every page is a full one. Older servers without
    /// the endpoint keep Gitea's default of 50.
    pub async fn learn_page_limit(&self) -> Result<usize, GiteaError> {
        match self
            .get_json::<ApiSettings>(&["settings", "api"], &[])
            .await
        {
            Ok(s) if s.max_response_items > 0 => {
                self.inner
                    .page_limit
                    .store(s.max_response_items, Ordering::Relaxed);
                Ok(s.max_response_items)
            }
            Ok(_) => Ok(self.page_limit()),
            Err(e) if e.status() == Some(404) => Ok(self.page_limit()),
            Err(e) => Err(e),
        }
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<String, GiteaError> {
        Ok(self
            .get_json::<ServerVersion>(&["version"], &[])
            .await?
            .version)
    }

    /// `GET /user`: whom the token belongs to.
    pub async fn current_user(&self) -> Result<User, GiteaError> {
        self.get_json(&["user"], &[]).await
    }

    /// Checks that the source's repository, org or user is visible to the token.
    pub async fn check_visible(&self, spec: &SourceSpec) -> Result<(), GiteaError> {
        self.get_json::<serde_json::Value>(&spec.object_path(), &[])
            .await
            .map(|_| ())
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.inner.token.is_some()
    }

    /// One page of a source's feed (1-based, of the full page size), optionally of one day
    /// (server time zone).
    pub async fn feed_page(
        &self,
        spec: &SourceSpec,
        page: usize,
        date: Option<NaiveDate>,
    ) -> Result<FeedPage, GiteaError> {
        self.feed_page_sized(spec, page, self.page_limit(), date)
            .await
    }

    /// One page of a source's feed at another page size (`limit`, at most the server's):
    /// the same rows read at another alignment, so that a page boundary falls elsewhere.
    pub async fn feed_page_sized(
        &self,
        spec: &SourceSpec,
        page: usize,
        limit: usize,
        date: Option<NaiveDate>,
    ) -> Result<FeedPage, GiteaError> {
        let limit = limit.clamp(1, self.page_limit().max(1));
        let mut query: Vec<(&str, String)> =
            vec![("page", page.to_string()), ("limit", limit.to_string())];
        if let Some(d) = date {
            query.push(("date", d.format("%Y-%m-%d").to_string()));
        }
        for (k, v) in spec.feed_query() {
            query.push((k, v.to_string()));
        }
        let url = self.url(&spec.feed_path(), &query)?;
        // The rows stay slices of the page's body: read once, not copied row by row.
        let (raws, headers) = self
            .with_retries(&url, || {
                self.fetch_as(url.clone(), |body| {
                    // A borrowed `RawValue` is a slice of the body it was read from.
                    Ok(serde_json::from_slice::<Vec<&RawValue>>(&body)?
                        .into_iter()
                        .map(|r| body.slice_ref(r.get().as_bytes()))
                        .collect::<Vec<Bytes>>())
                })
            })
            .await?;
        self.inner
            .telemetry
            .emit(telemetry::FeedPageRead { source: spec });
        let served = raws.len();
        let mut rows = Vec::with_capacity(served);
        for raw in raws {
            match ActivityRow::from_json(raw) {
                Ok(row) => {
                    // Learnt as soon as it is read: the lines about it that follow (hooks,
                    // retries, the batch) already hide a private repository's name.
                    if let Some((o, n)) = row.activity.repo_names() {
                        let private = row.activity.visibility() == super::Visibility::Private;
                        let names = &self.inner.telemetry.health.names;
                        names.learn(&format!("{o}/{n}"), private);
                    }
                    rows.push(row)
                }
                Err(e) => self.inner.telemetry.emit(telemetry::RowSkipped {
                    source: spec,
                    url: &redact(&url),
                    reason: &e.to_string(),
                }),
            }
        }
        let (total, linked_next) = paging(&headers);
        let linked = headers.contains_key(reqwest::header::LINK);
        let has_next = linked_next || more_rows(page, limit, served, total);
        if page == 1 && has_next && served > 0 && served < limit && limit == self.page_limit() {
            // A first page shorter than asked while more rows follow: the server caps pages
            // lower than we thought (its settings could not be read). Ask for what it
            // serves from now on.
            self.inner.page_limit.store(served, Ordering::Relaxed);
        }
        Ok(FeedPage {
            rows,
            total,
            has_next,
            served,
            limit,
            linked,
            date,
        })
    }

    /// How many items a list endpoint holds for `query` (`X-Total-Count`), asking for one.
    pub async fn count(
        &self,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<Option<u64>, GiteaError> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("page", "1".into()));
        q.push(("limit", "1".into()));
        let url = self.url(path, &q)?;
        let (_, headers) = self
            .with_retries(&url, || self.fetch::<serde_json::Value>(url.clone()))
            .await?;
        Ok(paging(&headers).0)
    }

    /// One page (1-based, full size) of a list endpoint below `/api/v1`, as JSON values.
    /// An endpoint that wraps its list in an object (Actions runs) is unwrapped by `field`.
    pub async fn list_page(
        &self,
        path: &[&str],
        query: &[(&str, String)],
        page: usize,
        field: Option<&str>,
    ) -> Result<ListPage, GiteaError> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("page", page.to_string()));
        q.push(("limit", self.page_limit().to_string()));
        let url = self.url(path, &q)?;
        let (value, headers) = self
            .with_retries(&url, || self.fetch::<serde_json::Value>(url.clone()))
            .await?;
        let (total, has_next) = paging(&headers);
        let linked = headers.contains_key(reqwest::header::LINK);
        let asked = self.page_limit();
        let list = match (field, value) {
            (Some(f), serde_json::Value::Object(mut m)) => m.remove(f).unwrap_or_default(),
            (_, v) => v,
        };
        let items = match list {
            serde_json::Value::Array(items) => items,
            serde_json::Value::Null => Vec::new(),
            other => {
                return Err(GiteaError::Decode {
                    url: redact(&url),
                    message: format!("expected a list, got {}", kind_of(&other)),
                });
            }
        };
        if has_next && !items.is_empty() && items.len() < asked {
            // A full page shorter than asked: the server caps pages lower than we thought.
            // Lists without `Link` (timelines) can only tell a full page by its size.
            self.inner.page_limit.store(items.len(), Ordering::Relaxed);
        }
        Ok(ListPage {
            items,
            total,
            has_next,
            linked,
        })
    }

    /// GET a JSON object with retries.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, GiteaError> {
        let url = self.url(path, query)?;
        let (v, _) = self
            .with_retries(&url, || self.fetch::<T>(url.clone()))
            .await?;
        Ok(v)
    }

    fn url(&self, path: &[&str], query: &[(&str, String)]) -> Result<Url, GiteaError> {
        let mut url = self.inner.api.clone();
        url.path_segments_mut()
            .map_err(|_| GiteaError::Request("gitea.url cannot be a base".into()))?
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    async fn with_retries<T, F, Fut>(&self, url: &Url, attempt: F) -> Result<T, GiteaError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, GiteaError>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(30))
            .with_max_times(self.inner.max_retries)
            .with_jitter();
        let shown = redact(url);
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(GiteaError::is_retryable)
            .adjust(|e, planned| planned.map(|d| e.retry_after().unwrap_or(d)))
            .notify(|e, wait| {
                self.inner.telemetry.emit(telemetry::GiteaRetry {
                    url: &shown,
                    reason: e.reason(),
                    error: e,
                    wait,
                })
            })
            .await
    }

    /// One attempt: wait for the rate limit, send, classify, decode.
    async fn fetch<T: DeserializeOwned>(&self, url: Url) -> Result<(T, HeaderMap), GiteaError> {
        self.fetch_as(url, |body| serde_json::from_slice(&body))
            .await
    }

    /// One attempt, its body decoded by `decode` (which may keep slices of it).
    async fn fetch_as<T>(
        &self,
        url: Url,
        decode: impl FnOnce(Bytes) -> Result<T, serde_json::Error>,
    ) -> Result<(T, HeaderMap), GiteaError> {
        {
            let _turn = self.inner.turn.lock().await;
            if self.inner.limiter.check().is_err() {
                self.inner.telemetry.emit(telemetry::RateLimitWait);
                self.inner.limiter.until_ready().await;
            }
        }
        crate::gitea::cadence::note_request();
        let shown = redact(&url);
        let mut req = self.inner.http.get(url);
        if let Some(token) = &self.inner.token {
            let mut value =
                HeaderValue::from_str(&format!("token {}", token.expose())).map_err(|_| {
                    GiteaError::Request(
                        "the Gitea token holds characters a header cannot carry".into(),
                    )
                })?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let resp = req.send().await.map_err(|e| {
            self.inner.telemetry.emit(telemetry::GiteaUnreachable);
            transport_error(&shown, e)
        })?;
        self.inner.telemetry.emit(telemetry::GiteaResponse {
            status: resp.status().as_u16(),
        });
        let resp = check_status(&shown, resp).await?;
        let headers = resp.headers().clone();
        let body = read_body(&shown, resp, MAX_BODY).await?;
        let value = decode(Bytes::from(body)).map_err(|e| GiteaError::Decode {
            url: shown.clone(),
            message: e.to_string(),
        })?;
        Ok((value, headers))
    }
}

/// `X-Total-Count` and whether `Link` announces a next page.
fn paging(headers: &HeaderMap) -> (Option<u64>, bool) {
    let total = headers
        .get("x-total-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let has_next = headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|l| l.contains("rel=\"next\"")));
    (total, has_next)
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Object(_) => "an object",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        _ => "something else",
    }
}

async fn check_status(url: &str, resp: Response) -> Result<Response, GiteaError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    // Only the start of an error body matters (its `message`).
    let body = read_body(url, resp, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_default();
    Err(GiteaError::Status {
        url: url.to_string(),
        status: status.as_u16(),
        message: message.chars().take(200).collect(),
        retry_after,
    })
}

/// The largest response body read from Gitea (a page of 50 rows is well below 1 MiB). A
/// larger one is an error naming the URL and the limit, retried like a malformed body.
pub const MAX_BODY: usize = 16 << 20;

/// The largest error body read (for its `message`).
const MAX_ERROR_BODY: usize = 64 << 10;

/// Reads the body, refusing more than `limit` bytes (by `Content-Length` up front, else
/// while reading), so a misbehaving server or proxy cannot make the sourcer buffer without
/// bound.
async fn read_body(url: &str, mut resp: Response, limit: usize) -> Result<Vec<u8>, GiteaError> {
    let too_big = || GiteaError::Decode {
        url: url.to_string(),
        message: format!(
            "the response body is larger than the limit of {limit} bytes ({} KiB)",
            limit >> 10
        ),
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    // Sized to the announced length: a page's rows live on as slices of this body, and a
    // Vec grown by doubling would keep up to twice the bytes for as long as they do.
    let announced = resp.content_length().unwrap_or(0) as usize;
    let mut body = Vec::with_capacity(announced);
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(url, e))? {
        if body.len() + chunk.len() > limit {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    if body.capacity() > body.len() + body.len() / 8 {
        body.shrink_to_fit();
    }
    Ok(body)
}

fn transport_error(url: &str, e: reqwest::Error) -> GiteaError {
    if e.is_timeout() {
        return GiteaError::Timeout {
            url: url.to_string(),
        };
    }
    // The error chain without the URL (which we print ourselves, redacted).
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    GiteaError::Connect {
        url: url.to_string(),
        message,
    }
}

/// The URL as it may be shown: without user info (a token could hide there).
fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request with `len` bytes of body, announced by
    /// `Content-Length` or (without it) ended by closing the connection.
    async fn oversized(len: usize, announce: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let head = match announce {
                        true => format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"),
                        false => "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n".to_string(),
                    };
                    if conn.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b' '; 1 << 16];
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if conn.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_an_error_naming_the_url_and_the_limit() {
        for announce in [true, false] {
            let url = oversized(MAX_BODY + 1, announce).await;
            let cfg: GiteaConfig = toml::from_str(&format!(
                "url = \"{url}\"\nmax_retries = 0\nrequests_per_second = 100\nburst = 100\n"
            ))
            .unwrap();
            let client = GiteaClient::new(&cfg, None, Telemetry::new()).unwrap();
            let err = client.version().await.unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, GiteaError::Decode { .. }) && err.is_retryable(),
                "announce={announce}: {text}"
            );
            assert!(
                text.contains(&format!("{url}/api/v1/version"))
                    && text.contains(&MAX_BODY.to_string()),
                "announce={announce}: {text}"
            );
        }
    }
}
