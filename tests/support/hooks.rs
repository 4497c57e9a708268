//! Webhook-shaped events: reading them with their headers (no CloudEvents library: plain
//! NATS headers and serde_json), and comparing a payload's shape with a real Gitea body.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

/// One stored message with every header.
#[derive(Debug, Clone)]
pub struct RawMsg {
    pub subject: String,
    pub headers: HashMap<String, String>,
    pub payload: Vec<u8>,
}

impl RawMsg {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
    pub fn is_hook(&self) -> bool {
        self.subject.split('.').nth(3) == Some("hook")
    }
    /// The body as JSON (a hook's body is Gitea's payload itself).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).expect("body is JSON")
    }
    /// `X-Gitea-Event-Type` of a hook.
    pub fn event_type(&self) -> &str {
        self.header("X-Gitea-Event-Type")
    }
}

/// Every message of the stream with its headers, in stream order.
pub async fn read_raw(nats_url: &str, stream: &str) -> Vec<RawMsg> {
    let mut out = Vec::new();
    for m in super::stream_messages(nats_url, stream).await {
        let mut headers = HashMap::new();
        if let Some(h) = m.headers.as_ref() {
            for (k, v) in h.iter() {
                if let Some(v) = v.first() {
                    headers.insert(k.to_string(), v.to_string());
                }
            }
        }
        out.push(RawMsg {
            subject: m.subject.to_string(),
            headers,
            payload: m.payload.to_vec(),
        });
    }
    out
}

/// The hook messages of the stream.
pub async fn read_hooks(nats_url: &str, stream: &str) -> Vec<RawMsg> {
    read_raw(nats_url, stream)
        .await
        .into_iter()
        .filter(RawMsg::is_hook)
        .collect()
}

/// A real Gitea webhook body from `tests/fixtures/webhooks/` (a copy of
/// `shared/gitea/fixtures/webhooks/`).
pub fn webhook_fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Keys Gitea's payloads may carry as `null` (pointers in `modules/structs`): where the fixture
/// has a value, ours may be `null` in another scenario (an open pull request has no
/// `merged_by`).
const NULLABLE: &[&str] = &[
    "milestone",
    "assignee",
    "assignees",
    "merged_by",
    "merged_at",
    "merge_commit_sha",
    "closed_at",
    "due_date",
    "parent",
    "pull_request",
    "head_commit",
    "verification",
    "mergeable",
];

/// Differences between the shape of `fixture` (a real body) and `ours`: every key of the
/// fixture must be in ours with the same JSON type, recursively (newer keys in ours are
/// welcome). `skip` lists paths not compared (`secret`, or what the API cannot know), and
/// `nullable` whether ours may be `null` where the fixture has a value.
pub fn shape_diff(fixture: &Value, ours: &Value, skip: &[&str], nullable: bool) -> Vec<String> {
    let mut out = Vec::new();
    walk("", fixture, ours, skip, nullable, &mut out);
    out
}

/// The JSON type of a value: `null`, `bool`, `number`, `string`, `array`, `object`.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(path: &str, f: &Value, o: &Value, skip: &[&str], nullable: bool, out: &mut Vec<String>) {
    if skip.contains(&path) {
        return;
    }
    let last = path.rsplit('.').next().unwrap_or("");
    match (f, o) {
        (Value::Null, _) => {}
        (_, Value::Null) if nullable && NULLABLE.contains(&last) => {}
        (Value::Object(fm), Value::Object(om)) => {
            for (k, fv) in fm {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if skip.contains(&p.as_str()) {
                    continue;
                }
                match om.get(k) {
                    Some(ov) => walk(&p, fv, ov, skip, nullable, out),
                    None => out.push(format!("{p}: missing")),
                }
            }
        }
        (Value::Array(fa), Value::Array(oa)) => {
            if let (Some(fv), Some(ov)) = (fa.first(), oa.first()) {
                walk(&format!("{path}[]"), fv, ov, skip, nullable, out);
            }
        }
        _ if kind(f) == kind(o) => {}
        _ => out.push(format!(
            "{path}: {} in Gitea's body, {} in ours",
            kind(f),
            kind(o)
        )),
    }
}

/// Asserts `ours` has the shape of fixture `name` (see [`shape_diff`]).
pub fn assert_shape(name: &str, ours: &Value, skip: &[&str], nullable: bool) {
    let diff = shape_diff(&webhook_fixture(name), ours, skip, nullable);
    assert!(
        diff.is_empty(),
        "{name}: the payload differs from Gitea's:\n  {}\nours: {ours:#}",
        diff.join("\n  ")
    );
}
