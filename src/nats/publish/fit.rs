//! Events that would exceed the server's `max_payload` are cut to fit, never refused: a
//! comment of a megabyte (anyone who may comment can post one; `enrich` and webhook-shaped
//! events repeat it) would otherwise fail its batch at every try, and the cursor of its
//! source (for an org: of every repository of it) would never move again.
//!
//! A cut event keeps its id, subject, attributes and every short value (the object's URLs,
//! numbers, names): the longest strings are shortened first, each ending in
//! [`CUT_MARK`] and how many bytes went; only when no long string is left are the longest
//! arrays halved. It says so twice: the CloudEvents extension attribute `truncated` (in
//! the JSON of a structured event, `ce-truncated` in binary mode) and the header
//! [`TRUNCATED_HEADER`] with the event's size before the cut. The full content stays in
//! Gitea, at the URL the event names.

use bytes::Bytes;
use serde_json::Value;

use crate::event::Event;

/// The header a cut event carries: its size in bytes (headers and body) before the cut.
pub const TRUNCATED_HEADER: &str = "Gitea-Truncated";

/// What ends a shortened string, followed by the number of bytes cut.
pub const CUT_MARK: &str = "… [cut by gitea-nats-sourcer: ";

/// Strings at most this long are never shortened (URLs, names, shas, dates).
const KEEP: usize = 512;

/// Room left for what the publisher adds after the cut (`Gitea-Sourcer-Instance`, the
/// truncation header) and for rounding.
const SLACK: usize = 1024;

/// A cut that made an event fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The event's wire size (headers and body) before the cut.
    pub from: usize,
    /// Its wire size after.
    pub to: usize,
}

/// Why an event cannot be made to fit.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("the event's body is not JSON, so it cannot be cut ({0})")]
    NotJson(#[source] serde_json::Error),
    #[error(
        "the event is {size} bytes and still {still} bytes after cutting every long string \
         and list, over the server's max_payload of {limit} bytes"
    )]
    TooLarge {
        size: usize,
        still: usize,
        limit: usize,
    },
}

/// The size on the wire of a message with these headers (besides `Nats-Msg-Id` = `id`) and
/// body, as nats-server counts it against `max_payload` (`HPUB`: the header block and the
/// payload).
pub fn wire_size(e: &Event, extra: &[(&str, &str)]) -> usize {
    let header = |name: &str, value: &str| name.len() + 2 + value.len() + 2;
    let mut len = "NATS/1.0\r\n".len() + 2;
    len += header("Nats-Msg-Id", &e.id);
    len += header(crate::event::VISIBILITY_HEADER, e.visibility.as_str());
    if e.headers.is_empty() {
        len += header("Content-Type", super::STRUCTURED_CONTENT_TYPE);
    }
    len += e.headers.iter().map(|(n, v)| header(n, v)).sum::<usize>();
    len += extra.iter().map(|(n, v)| header(n, v)).sum::<usize>();
    len + e.payload.len()
}

/// Cuts `e` to at most `limit` bytes on the wire when it is larger (see the module's
/// comment). `None`: it fits as it is.
pub fn fit(e: &mut Event, limit: usize) -> Result<Option<Cut>, FitError> {
    let from = wire_size(e, &[]);
    if from + SLACK <= limit {
        return Ok(None);
    }
    let mut value: Value = serde_json::from_slice(&e.payload).map_err(FitError::NotJson)?;
    let structured = e.headers.is_empty();
    if structured && let Value::Object(m) = &mut value {
        m.insert("truncated".into(), Value::Bool(true));
    } else if !structured {
        e.headers.push(("ce-truncated", "true".into()));
    }
    mark(e, from);
    // What the body may take: the limit less the headers (and the slack).
    let headers = wire_size(e, &[]) - e.payload.len();
    let budget = limit.saturating_sub(headers + SLACK);
    let mut body = serde_json::to_vec(&value).map_err(FitError::NotJson)?;
    // Each round cuts the longest string by what is over (or to KEEP), else halves the
    // longest list: it ends within a few rounds per long value.
    for _ in 0..256 {
        if body.len() <= budget {
            break;
        }
        let over = body.len() - budget;
        if !cut_longest_string(&mut value, over) && !halve_longest_list(&mut value) {
            break;
        }
        body = serde_json::to_vec(&value).map_err(FitError::NotJson)?;
    }
    e.payload = Bytes::from(body);
    let to = wire_size(e, &[]);
    if to + SLACK > limit {
        return Err(FitError::TooLarge {
            size: from,
            still: to,
            limit,
        });
    }
    Ok(Some(Cut { from, to }))
}

/// Marks a cut event with its size before the cut ([`TRUNCATED_HEADER`]); a structured
/// event keeps its `Content-Type` (the publisher adds it only to an event without headers).
fn mark(e: &mut Event, from: usize) {
    if e.headers.is_empty() {
        e.headers
            .push(("Content-Type", super::STRUCTURED_CONTENT_TYPE.to_string()));
    }
    e.headers.push((TRUNCATED_HEADER, from.to_string()));
}

/// The longest string in `v` (its length, and where it is), if longer than [`KEEP`].
fn longest_string(v: &mut Value) -> Option<&mut String> {
    fn walk<'a>(v: &'a mut Value, best: &mut Option<&'a mut String>) {
        match v {
            Value::String(s)
                if s.len() > KEEP && best.as_ref().is_none_or(|b| s.len() > b.len()) =>
            {
                *best = Some(s);
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, best)),
            Value::Object(m) => m.values_mut().for_each(|x| walk(x, best)),
            _ => {}
        }
    }
    let mut best = None;
    walk(v, &mut best);
    best
}

/// Shortens the longest long string by `over` bytes (and the mark), never below [`KEEP`].
fn cut_longest_string(v: &mut Value, over: usize) -> bool {
    let Some(s) = longest_string(v) else {
        return false;
    };
    // The mark and the count take about 50 bytes; escaping may make the rest count more,
    // which the next round sees.
    let mut keep = s.len().saturating_sub(over + CUT_MARK.len() + 24).max(KEEP);
    while !s.is_char_boundary(keep) {
        keep -= 1;
    }
    let cut = s.len() - keep;
    s.truncate(keep);
    s.push_str(CUT_MARK);
    s.push_str(&format!("{cut} bytes]"));
    true
}

/// Halves the longest list of more than one element (dropping its newest half, the tail).
fn halve_longest_list(v: &mut Value) -> bool {
    fn walk<'a>(v: &'a mut Value, best: &mut Option<&'a mut Vec<Value>>) {
        match v {
            Value::Array(a) => {
                if a.len() > 1 && best.as_ref().is_none_or(|b| a.len() > b.len()) {
                    // Looking inside a list that may itself be the longest: take it whole.
                    *best = Some(a);
                } else {
                    a.iter_mut().for_each(|x| walk(x, best));
                }
            }
            Value::Object(m) => m.values_mut().for_each(|x| walk(x, best)),
            _ => {}
        }
    }
    let mut best = None;
    walk(v, &mut best);
    match best {
        Some(a) => {
            a.truncate(a.len().div_ceil(2));
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: Value, headers: Vec<(&'static str, String)>) -> Event {
        Event {
            id: "0123456789abcdef0123456789abcdef".into(),
            key: "k".into(),
            subject: "gitea.acme.widgets.comment_issue".into(),
            payload: Bytes::from(serde_json::to_vec(&payload).unwrap_or_default()),
            created: 0,
            op_type: "comment_issue".into(),
            headers,
            visibility: crate::event::Visibility::Public,
        }
    }

    #[test]
    fn a_small_event_is_left_alone() {
        let mut e = event(serde_json::json!({"data": "x"}), Vec::new());
        let before = e.payload.clone();
        assert_eq!(fit(&mut e, 1 << 20).ok().flatten(), None);
        assert_eq!(e.payload, before);
        assert!(e.headers.is_empty());
    }

    #[test]
    fn a_two_mebibyte_comment_is_cut_below_the_limit_keeping_urls_and_saying_so() {
        let body = "é".repeat(1 << 20); // 2 MiB of two-byte characters
        let url = "https://gitea.example.com/acme/widgets/issues/7#issuecomment-9";
        // An activity event as the event model writes it (structured mode).
        let envelope = crate::event::Envelope {
            id: "0123456789abcdef0123456789abcdef",
            source: "https://gitea.example.com/acme/widgets".into(),
            ty: "io.gitea.activity.comment_issue".into(),
            subject: "acme/widgets".into(),
            time: "2026-12-07T12:00:00Z",
        };
        let data = serde_json::json!({"activity": {"content": format!("7|{body}"),
                     "comment": {"body": body, "html_url": url}}});
        let payload: Value = envelope
            .structured(&data, 0)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        assert_eq!(payload["data"]["activity"]["comment"]["html_url"], url);
        for limit in [512 * 1024, 1 << 20] {
            let mut e = event(payload.clone(), Vec::new());
            let cut = fit(&mut e, limit).ok().flatten();
            let cut = cut.unwrap_or(Cut {
                from: 0,
                to: usize::MAX,
            });
            assert!(cut.from > 4 << 20, "{cut:?}");
            assert!(cut.to <= limit, "{cut:?} over {limit}");
            assert_eq!(cut.to, wire_size(&e, &[]));
            let v: Value = serde_json::from_slice(&e.payload).unwrap_or_default();
            assert_eq!(v["truncated"], true);
            assert_eq!(v["data"]["activity"]["comment"]["html_url"], url);
            let content = v["data"]["activity"]["content"]
                .as_str()
                .unwrap_or_default();
            assert!(content.starts_with("7|é"), "the start of the text stays");
            assert!(
                content.contains(CUT_MARK),
                "{}",
                &content[content.len() - 80..]
            );
            assert!(
                e.headers
                    .iter()
                    .any(|(n, v)| *n == TRUNCATED_HEADER && *v == cut.from.to_string())
            );
            assert!(
                e.headers.iter().any(
                    |(n, v)| *n == "Content-Type" && v == super::super::STRUCTURED_CONTENT_TYPE
                ),
                "a structured event stays structured"
            );
        }
    }

    #[test]
    fn a_webhook_shaped_event_is_marked_in_its_headers_and_its_body_keeps_gitea_s_keys() {
        let body = "x".repeat(3 << 20);
        let payload = serde_json::json!({"action": "created", "comment": {"body": body, "id": 9}});
        let mut e = event(payload, vec![(crate::event::hook::wire::CE_ID, "a".into())]);
        let cut = fit(&mut e, 1 << 20).ok().flatten();
        assert!(cut.is_some_and(|c| c.to <= 1 << 20));
        let v: Value = serde_json::from_slice(&e.payload).unwrap_or_default();
        assert_eq!(v.get("truncated"), None, "no key Gitea does not send");
        assert_eq!(v["comment"]["id"], 9);
        assert!(e.headers.contains(&("ce-truncated", "true".into())));
    }

    #[test]
    fn long_lists_are_halved_when_no_long_string_is_left() {
        let commits: Vec<Value> = (0..40_000)
            .map(|i| serde_json::json!({"sha": format!("{i:040}"), "message": "m"}))
            .collect();
        let mut e = event(
            serde_json::json!({"data": {"commits": commits}}),
            Vec::new(),
        );
        let cut = fit(&mut e, 512 * 1024).ok().flatten();
        assert!(cut.is_some_and(|c| c.to <= 512 * 1024), "{cut:?}");
        let v: Value = serde_json::from_slice(&e.payload).unwrap_or_default();
        let n = v["data"]["commits"].as_array().map_or(0, Vec::len);
        assert!(n > 1000 && n < 40_000, "{n}");
    }

    #[test]
    fn what_cannot_fit_is_an_error_that_says_why() {
        let mut e = event(serde_json::json!({"data": "x"}), Vec::new());
        let err = fit(&mut e, 200)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("max_payload of 200"), "{err}");
    }
}
