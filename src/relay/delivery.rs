//! Pure parts of one delivery: the delivery id, the headers Gitea sends
//! (`services/webhook/deliver.go`), the signatures, and what an answer means (delivered,
//! retry, refused), `Retry-After` included.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::event::hook::wire;

/// A UUID-shaped id, stable per (event id, receiver): every attempt and every redelivery of
/// the same event to the same receiver carries it, so a receiver can drop a repeat; two
/// receivers get different ids for one event, as two Gitea hooks would.
pub fn delivery_id(event_id: &str, receiver: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"gitea-nats-relay delivery\0");
    h.update(event_id.as_bytes());
    h.update(b"\0");
    h.update(receiver.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    // A version 5-like (name-based) UUID: version and variant bits set.
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// Hex HMAC-SHA256 of `body` with `secret` (`X-Gitea-Signature`).
pub fn sign_sha256(secret: &str, body: &[u8]) -> String {
    // An HMAC takes a key of any length: new_from_slice cannot fail for it.
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut m) => {
            m.update(body);
            hex::encode(m.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Hex HMAC-SHA1 of `body` with `secret` (`X-Hub-Signature`, without its `sha1=`).
pub fn sign_sha1(secret: &str, body: &[u8]) -> String {
    // As above: any key length is accepted.
    match Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mut m) => {
            m.update(body);
            hex::encode(m.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// `X-Gitea-Hook-Installation-Target-Type` (and its `X-GitHub-` copy): where the hook is
/// defined. A receiver gets one repository's events as a repository's hook does; Gitea
/// (1.24+, `addDefaultHeaders`) sends `repository` for a hook with a `RepoID`.
pub const INSTALLATION_TARGET_TYPE: &str = "repository";

/// Every header of one delivery, as Gitea's `services/webhook/deliver.go`
/// (`addDefaultHeaders`) sends them, in its order. Without a secret the hex signatures are
/// empty and the `X-Hub-Signature` headers are the prefix alone (`sha1=`, `sha256=`), as
/// Gitea writes `"sha1="+""`.
pub fn headers(
    delivery: &str,
    event: &str,
    event_type: &str,
    body: &[u8],
    secret: Option<&Secret>,
    authorization: Option<&Secret>,
) -> Vec<(&'static str, String)> {
    let (sha256, sha1) = match secret {
        Some(s) => (sign_sha256(s.expose(), body), sign_sha1(s.expose(), body)),
        None => (String::new(), String::new()),
    };
    let target = INSTALLATION_TARGET_TYPE.to_string();
    let mut h = vec![
        ("Content-Type", "application/json".to_string()),
        ("X-Gitea-Delivery", delivery.to_string()),
        (wire::GITEA_EVENT, event.to_string()),
        (wire::GITEA_EVENT_TYPE, event_type.to_string()),
        ("X-Gitea-Signature", sha256.clone()),
        ("X-Gitea-Hook-Installation-Target-Type", target.clone()),
        ("X-Gogs-Delivery", delivery.to_string()),
        ("X-Gogs-Event", event.to_string()),
        ("X-Gogs-Event-Type", event_type.to_string()),
        ("X-Gogs-Signature", sha256.clone()),
        ("X-Hub-Signature", format!("sha1={sha1}")),
        ("X-Hub-Signature-256", format!("sha256={sha256}")),
        ("X-GitHub-Delivery", delivery.to_string()),
        ("X-GitHub-Event", event.to_string()),
        ("X-GitHub-Event-Type", event_type.to_string()),
        ("X-GitHub-Hook-Installation-Target-Type", target),
    ];
    if let Some(a) = authorization {
        h.push(("Authorization", a.expose().to_string()));
    }
    h
}

/// What one attempt's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: acknowledge.
    Delivered,
    /// 5xx, 408, 429, a timeout or a connection error: try again, after at least the
    /// `Retry-After` when one was given.
    Retry(Option<Duration>),
    /// Any other status: the receiver refuses this payload; a dead letter at once.
    Refused,
}

/// The verdict of an HTTP status (with its `Retry-After`, if any).
pub fn verdict(status: u16, retry_after: Option<&str>, now: SystemTime) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => {
            Verdict::Retry(retry_after.and_then(|v| parse_retry_after(v, now)))
        }
        _ => Verdict::Refused,
    }
}

/// The longest wait a receiver's `Retry-After` can ask for: a day (the default
/// `give_up_after`). The worker caps it further at the receiver's `give_up_after`.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `Retry-After` ([`crate::retry::retry_after`]), capped at [`MAX_RETRY_AFTER`] (a value
/// from outside must not overflow a deadline: a receiver's `18446744073709551615` once
/// killed its delivery loop); a date in the past is zero; anything else is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    crate::retry::retry_after(value, now.into(), MAX_RETRY_AFTER)
}

/// The status class label of metrics: `2xx`, `4xx`, `5xx`, or `error` (no answer).
pub fn class(status: Option<u16>) -> &'static str {
    crate::telemetry::metrics::status_class(status)
}

/// The first `max` bytes of a body as text, for a dead letter (lossy, never panics on a cut
/// inside a UTF-8 character).
pub fn excerpt(body: &[u8], max: usize) -> String {
    let cut = &body[..body.len().min(max)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if body.len() > max {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_documented_examples() {
        // GitHub's documented example ("Validating webhook deliveries").
        assert_eq!(
            sign_sha256("It's a Secret to Everybody", b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        // RFC 2202 test case 2 (HMAC-SHA1) and RFC 4231 test case 2 (HMAC-SHA256).
        assert_eq!(
            sign_sha1("Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            sign_sha256("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn headers_are_gitea_s_with_every_copy() {
        let secret = Secret::new("s3cret");
        let auth = Secret::new("Bearer tok");
        let h = headers(
            "d-1",
            "pull_request",
            "pull_request_sync",
            b"{}",
            Some(&secret),
            Some(&auth),
        );
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let sig = sign_sha256("s3cret", b"{}");
        for p in ["Gitea", "Gogs", "GitHub"] {
            assert_eq!(get(&format!("X-{p}-Delivery")), Some("d-1"));
            assert_eq!(get(&format!("X-{p}-Event")), Some("pull_request"));
            assert_eq!(get(&format!("X-{p}-Event-Type")), Some("pull_request_sync"));
        }
        assert_eq!(get("X-Gitea-Signature"), Some(sig.as_str()));
        assert_eq!(get("X-Gogs-Signature"), Some(sig.as_str()));
        assert_eq!(
            get("X-Hub-Signature-256"),
            Some(format!("sha256={sig}").as_str())
        );
        assert_eq!(
            get("X-Hub-Signature"),
            Some(format!("sha1={}", sign_sha1("s3cret", b"{}")).as_str())
        );
        assert_eq!(get("Content-Type"), Some("application/json"));
        assert_eq!(get("Authorization"), Some("Bearer tok"));
        let bare = headers("d", "push", "push", b"{}", None, None);
        let get = |n: &str| bare.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("Authorization"), None);
    }

    #[test]
    fn without_a_secret_the_signatures_are_gitea_s_empty_hex_and_bare_prefixes() {
        // deliver.go `addDefaultHeaders`: the hex signatures stay empty, and the GitHub
        // copies are `"sha1="+""` and `"sha256="+""`, never left out.
        let bare = headers("d", "push", "push", b"{}", None, None);
        let get = |n: &str| bare.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("X-Gitea-Signature"), Some(""));
        assert_eq!(get("X-Gogs-Signature"), Some(""));
        assert_eq!(get("X-Hub-Signature"), Some("sha1="));
        assert_eq!(get("X-Hub-Signature-256"), Some("sha256="));
    }

    #[test]
    fn the_installation_target_type_is_a_repository_hook_s_in_gitea_s_order() {
        // deliver.go `addDefaultHeaders` (Gitea 1.24+): `repository` for a hook with a
        // RepoID, which is what a receiver of one repository's events is; the Gitea copy
        // right after `X-Gitea-Signature`, the GitHub copy last.
        let h = headers("d", "push", "push", b"{}", Some(&Secret::new("s")), None);
        let names: Vec<&str> = h.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "X-Gitea-Delivery",
                "X-Gitea-Event",
                "X-Gitea-Event-Type",
                "X-Gitea-Signature",
                "X-Gitea-Hook-Installation-Target-Type",
                "X-Gogs-Delivery",
                "X-Gogs-Event",
                "X-Gogs-Event-Type",
                "X-Gogs-Signature",
                "X-Hub-Signature",
                "X-Hub-Signature-256",
                "X-GitHub-Delivery",
                "X-GitHub-Event",
                "X-GitHub-Event-Type",
                "X-GitHub-Hook-Installation-Target-Type",
            ]
        );
        for (k, v) in &h {
            if k.ends_with("Hook-Installation-Target-Type") {
                assert_eq!(v, "repository", "{k}");
            }
        }
    }

    #[test]
    fn delivery_ids_are_stable_uuids_per_event_and_receiver() {
        let a = delivery_id("ev-1", "ci");
        assert_eq!(a, delivery_id("ev-1", "ci"));
        assert_ne!(a, delivery_id("ev-1", "chat"));
        assert_ne!(a, delivery_id("ev-2", "ci"));
        assert_eq!(a.len(), 36);
        let parts: Vec<_> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "5");
    }

    #[test]
    fn verdicts_and_retry_after() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(verdict(204, None, now), Verdict::Delivered);
        assert_eq!(verdict(500, None, now), Verdict::Retry(None));
        assert_eq!(verdict(408, None, now), Verdict::Retry(None));
        assert_eq!(
            verdict(429, Some("7"), now),
            Verdict::Retry(Some(Duration::from_secs(7)))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            verdict(503, Some(&later), now),
            Verdict::Retry(Some(Duration::from_secs(90)))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        // Values from outside never make a delay that overflows a deadline.
        for huge in ["18446744073709551615", "99999999999999999999999", "86401"] {
            assert_eq!(
                parse_retry_after(huge, now),
                Some(MAX_RETRY_AFTER),
                "{huge}"
            );
        }
        let far = httpdate::fmt_http_date(now + Duration::from_secs(400 * 86400));
        assert_eq!(parse_retry_after(&far, now), Some(MAX_RETRY_AFTER));
        assert_eq!(verdict(429, Some("soon"), now), Verdict::Retry(None));
        for s in [301, 400, 401, 403, 404, 410, 413, 422] {
            assert_eq!(verdict(s, None, now), Verdict::Refused, "{s}");
        }
        assert_eq!(class(None), "error");
        assert_eq!(class(Some(503)), "5xx");
        assert_eq!(excerpt("héllo".as_bytes(), 2), "h\u{fffd}…");
    }
}
