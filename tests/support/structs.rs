//! Gitea's payload structs, one table set for every webhook event the sourcer makes, and
//! the one comparer ([`struct_diff`], [`hook_diff`]): `tests/webhooks_golden.rs` checks
//! every body of [`super::bodies::every_hook`] with them, `tests/webhooks_more.rs` the bodies
//! of its end-to-end run.
#![allow(dead_code)]

use gitea_nats_sourcer::event::hook::Hook;
use serde_json::Value;

use super::hooks::kind;
// ---------------------------------------------------------------------------------------
// Gitea's payload structs. Each table is a Go struct's fields, copied from go-gitea/gitea
// `modules/structs/hook.go` (newest stored version; `PullRequestPayload.Before`/`After`
// from Gitea 1.27+'s, `modules/structs/hook_test.go` `TestPullRequestPayload...`): the JSON
// name, the JSON types `encoding/json` writes for the Go type (`*T` and a map:
// `object|null`, `[]T`: `array|null`, `time.Time`: `string`, `*time.Time`: `string|null`),
// and whether it is `omitempty` (then the key may be absent, and is never `null`). The
// values are filled as `services/webhook/notifier.go` does. One comparer, [`struct_diff`].
// ---------------------------------------------------------------------------------------

/// `(json name, JSON types, omitempty)`.
pub type Fields = &'static [(&'static str, &'static str, bool)];
pub const OMIT: bool = true;

/// `PushPayload`.
pub const PUSH_PAYLOAD: Fields = &[
    ("ref", "string", false),
    ("before", "string", false),
    ("after", "string", false),
    ("compare_url", "string", false),
    ("commits", "array|null", false),
    ("total_commits", "number", false),
    ("head_commit", "object|null", false),
    ("repository", "object|null", false),
    ("pusher", "object|null", false),
    ("sender", "object|null", false),
];
/// `CreatePayload` (no `default_branch`: only Gogs' and early Gitea's had it).
pub const CREATE_PAYLOAD: Fields = &[
    ("sha", "string", false),
    ("ref", "string", false),
    ("ref_type", "string", false),
    ("repository", "object|null", false),
    ("sender", "object|null", false),
];
/// `DeletePayload`.
pub const DELETE_PAYLOAD: Fields = &[
    ("ref", "string", false),
    ("ref_type", "string", false),
    ("pusher_type", "string", false),
    ("repository", "object|null", false),
    ("sender", "object|null", false),
];
/// `IssuePayload`.
pub const ISSUE_PAYLOAD: Fields = &[
    ("action", "string", false),
    ("number", "number", false),
    ("changes", "object", OMIT),
    ("issue", "object|null", false),
    ("repository", "object|null", false),
    ("sender", "object|null", false),
    ("commit_id", "string", false),
];
/// `IssueCommentPayload` (`pull_request`: Gitea 1.23+).
pub const ISSUE_COMMENT_PAYLOAD: Fields = &[
    ("action", "string", false),
    ("issue", "object|null", false),
    ("pull_request", "object", OMIT),
    ("comment", "object|null", false),
    ("changes", "object", OMIT),
    ("repository", "object|null", false),
    ("sender", "object|null", false),
    ("is_pull", "bool", false),
];
/// `PullRequestPayload` (`before`/`after`: Gitea 1.27+).
pub const PULL_REQUEST_PAYLOAD: Fields = &[
    ("action", "string", false),
    ("number", "number", false),
    ("changes", "object", OMIT),
    ("pull_request", "object|null", false),
    ("requested_reviewer", "object|null", false),
    ("repository", "object|null", false),
    ("sender", "object|null", false),
    ("commit_id", "string", false),
    ("review", "object|null", false),
    ("before", "string", OMIT),
    ("after", "string", OMIT),
];
/// `ReleasePayload`.
pub const RELEASE_PAYLOAD: Fields = &[
    ("action", "string", false),
    ("release", "object|null", false),
    ("repository", "object|null", false),
    ("sender", "object|null", false),
];
/// `RepositoryPayload`.
pub const REPOSITORY_PAYLOAD: Fields = &[
    ("action", "string", false),
    ("repository", "object|null", false),
    ("organization", "object|null", false),
    ("sender", "object|null", false),
];
/// `CommitStatusPayload` (`updated_at` a `*time.Time` without `omitempty`).
pub const COMMIT_STATUS_PAYLOAD: Fields = &[
    ("commit", "object|null", false),
    ("context", "string", false),
    ("created_at", "string", false),
    ("description", "string", false),
    ("id", "number", false),
    ("repository", "object|null", false),
    ("sender", "object|null", false),
    ("sha", "string", false),
    ("state", "string", false),
    ("target_url", "string", false),
    ("updated_at", "string|null", false),
];
/// `WorkflowRunPayload`.
pub const WORKFLOW_RUN_PAYLOAD: Fields = &[
    ("action", "string", false),
    ("workflow", "object|null", false),
    ("workflow_run", "object|null", false),
    ("pull_request", "object", OMIT),
    ("organization", "object", OMIT),
    ("repository", "object|null", false),
    ("sender", "object|null", false),
];
/// `PayloadCommit`.
pub const PAYLOAD_COMMIT: Fields = &[
    ("id", "string", false),
    ("message", "string", false),
    ("url", "string", false),
    ("author", "object|null", false),
    ("committer", "object|null", false),
    ("verification", "object|null", false),
    ("timestamp", "string", false),
    ("added", "array|null", false),
    ("removed", "array|null", false),
    ("modified", "array|null", false),
];
/// `PayloadUser`.
pub const PAYLOAD_USER: Fields = &[
    ("name", "string", false),
    ("email", "string", false),
    ("username", "string", false),
];
/// `PayloadCommitVerification`.
pub const PAYLOAD_COMMIT_VERIFICATION: Fields = &[
    ("verified", "bool", false),
    ("reason", "string", false),
    ("signature", "string", false),
    ("signer", "object|null", false),
    ("payload", "string", false),
];
/// `ReviewPayload`.
pub const REVIEW_PAYLOAD: Fields = &[("type", "string", false), ("content", "string", false)];
/// `ChangesPayload`.
pub const CHANGES_PAYLOAD: Fields = &[
    ("title", "object", OMIT),
    ("body", "object", OMIT),
    ("ref", "object", OMIT),
];
/// `ChangesFromPayload`.
pub const CHANGES_FROM_PAYLOAD: Fields = &[("from", "string", false)];
/// `ActionWorkflow` (`modules/structs/repo_actions.go`, what `WorkflowRunPayload.Workflow`
/// points to).
pub const ACTION_WORKFLOW: Fields = &[
    ("id", "string", false),
    ("name", "string", false),
    ("path", "string", false),
    ("state", "string", false),
    ("created_at", "string", false),
    ("updated_at", "string", false),
    ("url", "string", false),
    ("html_url", "string", false),
    ("badge_url", "string", false),
    ("deleted_at", "string", false),
];

/// `WorkflowJobPayload`: `pull_request` and `organization` are `omitempty` (Gitea fills no
/// `pull_request` for a job; `organization` for an organization's repository).
pub const WORKFLOW_JOB_PAYLOAD: Fields = &[
    ("action", "string", false),
    ("workflow_job", "object|null", false),
    ("pull_request", "object", OMIT),
    ("organization", "object", OMIT),
    ("repository", "object|null", false),
    ("sender", "object|null", false),
];
/// `ActionWorkflowJob` (`modules/structs/repo_actions.go`, what `WorkflowJobPayload.WorkflowJob`
/// points to): `head_branch`, `conclusion`, `runner_id` and `runner_name` are `omitempty`;
/// `steps` a slice (`[]` from the API: `util.SliceNilAsEmpty`).
pub const ACTION_WORKFLOW_JOB: Fields = &[
    ("id", "number", false),
    ("url", "string", false),
    ("html_url", "string", false),
    ("run_id", "number", false),
    ("run_url", "string", false),
    ("name", "string", false),
    ("labels", "array|null", false),
    ("run_attempt", "number", false),
    ("head_sha", "string", false),
    ("head_branch", "string", OMIT),
    ("status", "string", false),
    ("conclusion", "string", OMIT),
    ("runner_id", "number", OMIT),
    ("runner_name", "string", OMIT),
    ("steps", "array|null", false),
    ("created_at", "string", false),
    ("started_at", "string", false),
    ("completed_at", "string", false),
];
/// The actions of a `workflow_job` hook: the job's status as the jobs endpoint answers it,
/// which the sourcer passes through (services/webhook/notifier.go `WorkflowJobStatusUpdate`
/// sends the same value as `action` and `workflow_job.status`). The values: the notifier's
/// own `toActionStatus` (the first Gitea with `workflow_job`) writes `queued`, `waiting`,
/// `in_progress`, `completed`; today's services/convert/convert.go `ToActionsStatus` adds
/// `pending` (a blocked job) and `requested`, and `ToRunActionsStatus` still `waiting` (a
/// run needing approval).
pub const WORKFLOW_JOB_ACTIONS: &[&str] = &[
    "queued",
    "waiting",
    "pending",
    "requested",
    "in_progress",
    "completed",
];

/// Structs by path: `(path, fields)`.
pub type Inner = &'static [(&'static str, Fields)];

/// The hook.go structs inside a `PayloadCommit`, by path below it.
pub const IN_PAYLOAD_COMMIT: Inner = &[
    ("author", PAYLOAD_USER),
    ("committer", PAYLOAD_USER),
    ("verification", PAYLOAD_COMMIT_VERIFICATION),
    ("verification.signer", PAYLOAD_USER),
];
/// The hook.go structs inside a `ChangesPayload`.
pub const IN_CHANGES: Inner = &[
    ("title", CHANGES_FROM_PAYLOAD),
    ("body", CHANGES_FROM_PAYLOAD),
    ("ref", CHANGES_FROM_PAYLOAD),
];

/// A payload struct: its name, fields, and the hook.go structs it holds, by path
/// (`commits[]`: each element; each `Fields` with what it holds in turn).
pub struct Payload {
    pub name: &'static str,
    pub fields: Fields,
    pub nested: &'static [(&'static str, Fields, Inner)],
}

pub const PUSH: Payload = Payload {
    name: "PushPayload",
    fields: PUSH_PAYLOAD,
    nested: &[
        ("commits[]", PAYLOAD_COMMIT, IN_PAYLOAD_COMMIT),
        ("head_commit", PAYLOAD_COMMIT, IN_PAYLOAD_COMMIT),
    ],
};
pub const ISSUE: Payload = Payload {
    name: "IssuePayload",
    fields: ISSUE_PAYLOAD,
    nested: &[("changes", CHANGES_PAYLOAD, IN_CHANGES)],
};
pub const PULL_REQUEST: Payload = Payload {
    name: "PullRequestPayload",
    fields: PULL_REQUEST_PAYLOAD,
    nested: &[
        ("changes", CHANGES_PAYLOAD, IN_CHANGES),
        ("review", REVIEW_PAYLOAD, &[]),
    ],
};
pub const ISSUE_COMMENT: Payload = Payload {
    name: "IssueCommentPayload",
    fields: ISSUE_COMMENT_PAYLOAD,
    nested: &[("changes", CHANGES_PAYLOAD, IN_CHANGES)],
};

/// Every `(event type, actions)` the sourcer makes, with Gitea's struct of its body
/// (`services/webhook/notifier.go` names the struct and action of each;
/// `modules/structs/hook.go` `HookIssueAction`, `HookIssueCommentAction`,
/// `HookReleaseAction`, `HookRepoAction` the actions). `""`: a payload without `action`.
pub const EVENTS: &[(&str, &[&str], &Payload)] = &[
    ("push", &[""], &PUSH),
    (
        "create",
        &[""],
        &Payload {
            name: "CreatePayload",
            fields: CREATE_PAYLOAD,
            nested: &[],
        },
    ),
    (
        "delete",
        &[""],
        &Payload {
            name: "DeletePayload",
            fields: DELETE_PAYLOAD,
            nested: &[],
        },
    ),
    (
        "issues",
        &["opened", "closed", "reopened", "edited"],
        &ISSUE,
    ),
    ("issue_label", &["label_updated", "label_cleared"], &ISSUE),
    ("issue_assign", &["assigned", "unassigned"], &ISSUE),
    ("issue_milestone", &["milestoned", "demilestoned"], &ISSUE),
    ("issue_comment", &["created", "edited"], &ISSUE_COMMENT),
    (
        "pull_request_comment",
        &["created", "edited"],
        &ISSUE_COMMENT,
    ),
    (
        "pull_request",
        &["opened", "closed", "reopened", "edited"],
        &PULL_REQUEST,
    ),
    (
        "pull_request_label",
        &["label_updated", "label_cleared"],
        &PULL_REQUEST,
    ),
    (
        "pull_request_assign",
        &["assigned", "unassigned"],
        &PULL_REQUEST,
    ),
    (
        "pull_request_milestone",
        &["milestoned", "demilestoned"],
        &PULL_REQUEST,
    ),
    (
        "pull_request_review_request",
        &["review_requested", "review_request_removed"],
        &PULL_REQUEST,
    ),
    ("pull_request_sync", &["synchronized"], &PULL_REQUEST),
    ("pull_request_review_approved", &["reviewed"], &PULL_REQUEST),
    ("pull_request_review_rejected", &["reviewed"], &PULL_REQUEST),
    ("pull_request_review_comment", &["reviewed"], &PULL_REQUEST),
    (
        "release",
        &["published", "updated", "deleted"],
        &Payload {
            name: "ReleasePayload",
            fields: RELEASE_PAYLOAD,
            nested: &[],
        },
    ),
    (
        "repository",
        &["created"],
        &Payload {
            name: "RepositoryPayload",
            fields: REPOSITORY_PAYLOAD,
            nested: &[],
        },
    ),
    (
        "status",
        &[""],
        &Payload {
            name: "CommitStatusPayload",
            fields: COMMIT_STATUS_PAYLOAD,
            nested: &[("commit", PAYLOAD_COMMIT, IN_PAYLOAD_COMMIT)],
        },
    ),
    (
        "workflow_run",
        &["requested", "in_progress", "completed"],
        &Payload {
            name: "WorkflowRunPayload",
            fields: WORKFLOW_RUN_PAYLOAD,
            nested: &[("workflow", ACTION_WORKFLOW, &[])],
        },
    ),
    (
        "workflow_job",
        WORKFLOW_JOB_ACTIONS,
        &Payload {
            name: "WorkflowJobPayload",
            fields: WORKFLOW_JOB_PAYLOAD,
            nested: &[("workflow_job", ACTION_WORKFLOW_JOB, &[])],
        },
    ),
];

/// Differences between `body`'s keys and JSON types and those of a Go struct's `fields`:
/// a key the struct has not, a key missing that is not `omitempty`, a type the Go type
/// cannot write.
pub fn struct_diff(what: &str, body: &Value, fields: Fields) -> Vec<String> {
    let mut out = Vec::new();
    let Some(m) = body.as_object() else {
        return vec![format!("{what}: {} where Gitea has an object", kind(body))];
    };
    for k in m.keys() {
        if !fields.iter().any(|(f, _, _)| f == k) {
            out.push(format!("{what}.{k}: not in Gitea's struct"));
        }
    }
    for (f, ty, omitempty) in fields {
        match m.get(*f) {
            None if *omitempty => {}
            None => out.push(format!("{what}.{f}: missing")),
            Some(v) if !ty.split('|').any(|t| t == kind(v)) => {
                out.push(format!("{what}.{f}: {} where Gitea has {ty}", kind(v)))
            }
            Some(_) => {}
        }
    }
    out
}

/// The values at `path` below `v` (`a.b`, `commits[]` each element); `null` and absent
/// ones are left out (their parent's table says whether they may be).
pub fn values_at<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut here = vec![v];
    for seg in path.split('.') {
        let (key, each) = match seg.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (seg, false),
        };
        here = here
            .into_iter()
            .filter_map(|v| v.get(key))
            .flat_map(|v| match (each, v) {
                (true, Value::Array(a)) => a.iter().collect(),
                (true, _) => Vec::new(),
                (false, v) => vec![v],
            })
            .filter(|v| !v.is_null())
            .collect();
    }
    here
}

/// The struct of `event_type`, `None` for an event with no table.
pub fn payload_of(event_type: &str) -> Option<(&'static [&'static str], &'static Payload)> {
    EVENTS
        .iter()
        .find(|(t, _, _)| *t == event_type)
        .map(|(_, actions, p)| (*actions, *p))
}

/// Differences between a hook and Gitea's struct of its event (top level and the hook.go
/// structs it holds), and an action the struct's event does not have.
pub fn hook_diff(what: &str, hook: &Hook) -> Vec<String> {
    let Some((actions, p)) = payload_of(hook.event_type) else {
        return vec![format!("{what}: {} has no table", hook.event_type)];
    };
    let what = format!("{what} [{} {}]", hook.event_type, p.name);
    let mut out = struct_diff(&what, &hook.body, p.fields);
    let action = hook.body["action"].as_str().unwrap_or("");
    if !actions.contains(&action) {
        out.push(format!(
            "{what}: action {action:?} is not one of {actions:?}"
        ));
    }
    for (path, fields, inner) in p.nested {
        for v in values_at(&hook.body, path) {
            out.extend(struct_diff(&format!("{what}.{path}"), v, fields));
            for (ipath, ifields) in *inner {
                for iv in values_at(v, ipath) {
                    out.extend(struct_diff(&format!("{what}.{path}.{ipath}"), iv, ifields));
                }
            }
        }
    }
    out
}
