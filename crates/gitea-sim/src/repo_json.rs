//! The Gitea-shaped JSON of repository objects: the serde structs the repository
//! endpoints (`repo_http`) fill in, field for field as Gitea's API answers.

use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Serialize)]
pub(crate) struct LabelJson<'a> {
    pub(crate) id: i64,
    pub(crate) name: &'a str,
    pub(crate) exclusive: bool,
    pub(crate) is_archived: bool,
    pub(crate) color: &'a str,
    pub(crate) description: &'a str,
    pub(crate) url: String,
}

#[derive(Serialize)]
pub(crate) struct MilestoneJson<'a> {
    pub(crate) id: i64,
    pub(crate) title: &'a str,
    pub(crate) description: &'a str,
    pub(crate) state: &'a str,
    pub(crate) open_issues: usize,
    pub(crate) closed_issues: usize,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) closed_at: Option<String>,
    pub(crate) due_on: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct PullMetaJson {
    pub(crate) merged: bool,
    pub(crate) merged_at: Option<String>,
    pub(crate) draft: bool,
    pub(crate) html_url: String,
}

#[derive(Serialize)]
pub(crate) struct RepoMetaJson<'a> {
    pub(crate) id: i64,
    pub(crate) name: &'a str,
    pub(crate) owner: &'a str,
    pub(crate) full_name: &'a str,
}

#[derive(Serialize)]
pub(crate) struct IssueJson<'a> {
    pub(crate) id: i64,
    pub(crate) url: String,
    pub(crate) html_url: String,
    pub(crate) number: i64,
    pub(crate) user: Option<&'a RawValue>,
    pub(crate) original_author: &'a str,
    pub(crate) original_author_id: i64,
    pub(crate) title: &'a str,
    pub(crate) body: &'a str,
    #[serde(rename = "ref")]
    pub(crate) ref_name: &'a str,
    pub(crate) assets: [u8; 0],
    pub(crate) labels: Vec<LabelJson<'a>>,
    pub(crate) milestone: Option<MilestoneJson<'a>>,
    pub(crate) assignee: Option<&'a RawValue>,
    /// `null` when nobody is assigned (Gitea leaves the slice nil).
    pub(crate) assignees: Option<Vec<&'a RawValue>>,
    pub(crate) state: &'a str,
    pub(crate) is_locked: bool,
    pub(crate) comments: usize,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) closed_at: Option<String>,
    pub(crate) due_date: Option<String>,
    pub(crate) pull_request: Option<PullMetaJson>,
    pub(crate) repository: RepoMetaJson<'a>,
    pub(crate) pin_order: i64,
}

#[derive(Serialize)]
pub(crate) struct TimelineJson<'a> {
    pub(crate) id: i64,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) html_url: String,
    pub(crate) pull_request_url: String,
    pub(crate) issue_url: String,
    pub(crate) user: Option<&'a RawValue>,
    pub(crate) body: &'a str,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) old_project_id: i64,
    pub(crate) project_id: i64,
    pub(crate) old_milestone: Option<MilestoneJson<'a>>,
    pub(crate) milestone: Option<MilestoneJson<'a>>,
    pub(crate) tracked_time: Option<()>,
    pub(crate) old_title: &'a str,
    pub(crate) new_title: &'a str,
    pub(crate) old_ref: &'a str,
    pub(crate) new_ref: &'a str,
    pub(crate) ref_issue: Option<()>,
    pub(crate) ref_comment: Option<()>,
    pub(crate) ref_action: &'a str,
    pub(crate) ref_commit_sha: &'a str,
    pub(crate) review_id: i64,
    pub(crate) label: Option<LabelJson<'a>>,
    pub(crate) assignee: Option<&'a RawValue>,
    pub(crate) assignee_team: Option<()>,
    pub(crate) removed_assignee: bool,
    pub(crate) resolve_doer: Option<&'a RawValue>,
    pub(crate) dependent_issue: Option<()>,
}

#[derive(Serialize)]
pub(crate) struct CommentJson<'a> {
    pub(crate) id: i64,
    pub(crate) html_url: String,
    pub(crate) pull_request_url: String,
    pub(crate) issue_url: String,
    pub(crate) user: Option<&'a RawValue>,
    pub(crate) original_author: &'a str,
    pub(crate) original_author_id: i64,
    pub(crate) body: &'a str,
    pub(crate) assets: [u8; 0],
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

#[derive(Serialize)]
pub(crate) struct ArchiveCountJson {
    pub(crate) zip: i64,
    pub(crate) tar_gz: i64,
}

#[derive(Serialize)]
pub(crate) struct ReleaseJson<'a> {
    pub(crate) id: i64,
    pub(crate) tag_name: &'a str,
    pub(crate) target_commitish: &'a str,
    pub(crate) name: &'a str,
    pub(crate) body: &'a str,
    pub(crate) url: String,
    pub(crate) html_url: String,
    pub(crate) tarball_url: String,
    pub(crate) zipball_url: String,
    pub(crate) upload_url: String,
    pub(crate) hide_archive_links: bool,
    pub(crate) archive_download_count: ArchiveCountJson,
    pub(crate) draft: bool,
    pub(crate) prerelease: bool,
    pub(crate) created_at: String,
    pub(crate) published_at: String,
    pub(crate) author: Option<&'a RawValue>,
    pub(crate) assets: [u8; 0],
}

#[derive(Serialize)]
pub(crate) struct PayloadUserJson<'a> {
    pub(crate) name: &'a str,
    pub(crate) email: &'a str,
    pub(crate) username: &'a str,
}

#[derive(Serialize)]
pub(crate) struct PayloadCommitJson<'a> {
    pub(crate) id: &'a str,
    pub(crate) message: String,
    pub(crate) url: String,
    pub(crate) author: PayloadUserJson<'a>,
    pub(crate) committer: PayloadUserJson<'a>,
    pub(crate) verification: Option<()>,
    pub(crate) timestamp: String,
    pub(crate) added: Option<()>,
    pub(crate) removed: Option<()>,
    pub(crate) modified: Option<()>,
}

#[derive(Serialize)]
pub(crate) struct BranchJson<'a> {
    pub(crate) name: &'a str,
    pub(crate) commit: PayloadCommitJson<'a>,
    pub(crate) protected: bool,
    pub(crate) required_approvals: i64,
    pub(crate) enable_status_check: bool,
    pub(crate) status_check_contexts: [u8; 0],
    pub(crate) user_can_push: bool,
    pub(crate) user_can_merge: bool,
    pub(crate) effective_branch_protection_name: &'a str,
}

#[derive(Serialize)]
pub(crate) struct StatusJson<'a> {
    pub(crate) id: i64,
    pub(crate) status: &'a str,
    pub(crate) target_url: String,
    pub(crate) description: &'a str,
    pub(crate) url: String,
    pub(crate) context: &'a str,
    pub(crate) creator: Option<&'a RawValue>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

#[derive(Serialize)]
pub(crate) struct RunJson<'a> {
    pub(crate) id: i64,
    pub(crate) url: String,
    pub(crate) html_url: String,
    pub(crate) display_title: &'a str,
    pub(crate) path: &'a str,
    pub(crate) event: &'a str,
    pub(crate) status: &'a str,
    pub(crate) conclusion: Option<&'a str>,
    pub(crate) head_sha: &'a str,
    pub(crate) head_branch: &'a str,
    pub(crate) run_number: i64,
    pub(crate) run_attempt: i64,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) started_at: Option<String>,
    pub(crate) completed_at: Option<String>,
    pub(crate) repository_id: i64,
}

#[derive(Serialize)]
pub(crate) struct RunsJson<'a> {
    pub(crate) workflow_runs: Vec<RunJson<'a>>,
    pub(crate) total_count: usize,
}
