//! The demo's last word, computed: every action of the simulated Gitea against the events
//! in the stream, by the action's content (repository, op type, ref, content, comment id: `gitea_sim::truth`), not
//! by the sourcer's own ids, so the sentence can say the sourcer is wrong.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use gitea_sim::FakeGitea;

/// One stored message: its subject and JSON body (a hook event's body is the webhook payload).
pub struct Stored {
    pub subject: String,
    pub body: serde_json::Value,
}

/// Every message of `stream`, oldest first (an ordered consumer, read to the stream's last
/// sequence at the start of the read).
pub async fn read_stream(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Result<Vec<Stored>, String> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
    let mut s = js
        .get_stream(stream)
        .await
        .map_err(|e| format!("stream {stream}: {e}"))?;
    let last = s
        .info()
        .await
        .map_err(|e| format!("stream {stream}: {e}"))?
        .state
        .last_sequence;
    let mut out = Vec::new();
    if last == 0 {
        return Ok(out);
    }
    let consumer = s
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("stream {stream}: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("stream {stream}: {e}"))?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
        let Ok(Some(Ok(m))) = next else {
            return Err(format!(
                "stream {stream}: read stopped before sequence {last}"
            ));
        };
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(last);
        out.push(Stored {
            subject: m.subject.to_string(),
            body: serde_json::from_slice(&m.payload).unwrap_or_default(),
        });
        if seq >= last {
            return Ok(out);
        }
    }
}

/// What the simulated Gitea holds, per identity. A repeatable action repeated by the same
/// actor with the same content within one second counts once (the documented limit: it is
/// taken for a copy). Also: comment id and release tag to identity, for the events of the
/// `comments` and `releases` kinds that carry those actions under their own type.
struct Truth {
    counts: HashMap<String, usize>,
    comments: HashMap<(String, i64), String>,
    releases: HashMap<(String, String), String>,
}

fn truth(g: &FakeGitea) -> Truth {
    let mut t = Truth {
        counts: HashMap::new(),
        comments: HashMap::new(),
        releases: HashMap::new(),
    };
    for a in g.distinct_actions() {
        let id = a.identity();
        if a.comment_id != 0 {
            t.comments
                .insert((a.repo.clone(), a.comment_id), id.clone());
        }
        if a.op_type == "publish_release"
            && let Some(tag) = a.ref_name.strip_prefix("refs/tags/")
        {
            t.releases
                .insert((a.repo.clone(), tag.to_string()), id.clone());
        }
        *t.counts.entry(id).or_default() += 1;
    }
    t
}

/// The comparison: actions published once, missing, extra (repeated, or no such action);
/// the events of changes only the repository endpoints show; the webhook-shaped events.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub actions: usize,
    pub once: usize,
    pub missing: usize,
    pub extra: usize,
    pub endpoint_changes: usize,
    pub hooks: usize,
}

impl Verdict {
    /// The demo's last line.
    pub fn sentence(&self) -> String {
        format!(
            "demo: {} of {} actions of the simulated Gitea once in the stream, {} missing, {} extra; \
             besides them {} changes only the repository endpoints show and {} webhook-shaped events",
            self.once, self.actions, self.missing, self.extra, self.endpoint_changes, self.hooks
        )
    }
}

/// Compares the stream with the simulated Gitea, by `gitea_sim::truth`'s identities.
pub fn compare(g: &FakeGitea, stored: &[Stored]) -> Verdict {
    let t = truth(g);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut v = Verdict {
        actions: t.counts.values().sum(),
        ..Default::default()
    };
    for m in stored {
        let ty = m.body["type"].as_str().unwrap_or("");
        if m.subject.split('.').nth(3) == Some("hook") {
            v.hooks += 1;
            continue;
        }
        let repo = m.body["subject"].as_str().unwrap_or("").to_string();
        let id = if ty.starts_with("io.gitea.activity.") {
            Some(gitea_sim::truth::of_event(&m.body))
        } else if ty == "io.gitea.comment.created" {
            let cid = m.body["data"]["comment"]["id"].as_i64().unwrap_or(0);
            t.comments.get(&(repo.clone(), cid)).cloned()
        } else if ty == "io.gitea.release.published" {
            let tag = m.body["data"]["release"]["tag_name"].as_str().unwrap_or("");
            t.releases.get(&(repo.clone(), tag.to_string())).cloned()
        } else {
            v.endpoint_changes += 1;
            continue;
        };
        match id {
            Some(id) => *seen.entry(id).or_default() += 1,
            // A comment or release the feed never showed: a change of its own.
            None => v.endpoint_changes += 1,
        }
    }
    for (id, want) in &t.counts {
        let got = seen.get(id).copied().unwrap_or(0);
        v.once += got.min(*want);
        v.missing += want.saturating_sub(got);
        v.extra += got.saturating_sub(*want);
    }
    v.extra += seen
        .iter()
        .filter(|(id, _)| !t.counts.contains_key(*id))
        .map(|(_, n)| n)
        .sum::<usize>();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitea_sim::{NewAction, SimOptions};

    fn activity_event(a: &gitea_sim::LogicalAction) -> Stored {
        Stored {
            subject: format!("p.{}.{}", a.repo.replace('/', "."), a.op_type),
            body: serde_json::json!({
                "type": format!("io.gitea.activity.{}", a.op_type),
                "subject": a.repo,
                "data": {"activity": {
                    "op_type": a.op_type, "ref_name": a.ref_name,
                    "content": a.content, "comment_id": a.comment_id}},
            }),
        }
    }

    #[tokio::test]
    async fn the_verdict_counts_what_is_missing_and_what_is_extra() {
        let g = FakeGitea::start(SimOptions::default()).await.expect("sim");
        g.add_org("acme");
        g.add_repo("acme", "widgets");
        g.push_action(NewAction::push("alice", "acme/widgets", "main", 1));
        g.push_action(NewAction::push("bob", "acme/widgets", "main", 2));
        let actions = g.logical_actions();
        assert_eq!(actions.len(), 2);
        let all: Vec<Stored> = actions.iter().map(activity_event).collect();
        let v = compare(&g, &all);
        assert_eq!((v.actions, v.once, v.missing, v.extra), (2, 2, 0, 0));
        assert!(v.sentence().contains("2 of 2 actions"), "{}", v.sentence());
        // One missing, the other twice (a second run replaying the first's events), a hook.
        let wrong = vec![
            activity_event(&actions[0]),
            activity_event(&actions[0]),
            Stored {
                subject: "p.acme.widgets.hook.push".into(),
                body: serde_json::json!({"ref": "refs/heads/main"}),
            },
        ];
        let v = compare(&g, &wrong);
        assert_eq!(
            (v.actions, v.once, v.missing, v.extra, v.hooks),
            (2, 1, 1, 1, 1)
        );
        assert!(
            v.sentence().contains("1 of 2 actions") && v.sentence().contains("1 missing, 1 extra"),
            "{}",
            v.sentence()
        );
    }
}
