//! Which source publishes which repository.

use std::collections::HashSet;

use crate::gitea::ActivityRow;
use crate::source::SourceSpec;

/// Each repository's actions are published by exactly one source: its `repo:` source if
/// there is one, else its org's `org:` source, else a `user:` source. The same action read
/// through several feeds then never races itself, even across restarts and outages.
#[derive(Debug, Default, Clone)]
pub struct Owners {
    /// `owner/name` (lower case) of the repository sources.
    repos: HashSet<String>,
    /// Org names (lower case) of the org sources.
    orgs: HashSet<String>,
    /// The user sources.
    users: Vec<SourceSpec>,
    /// Removed `repo:` sources still publishing their repository until drained.
    draining: HashSet<SourceSpec>,
}

impl Owners {
    pub fn new<'a>(specs: impl IntoIterator<Item = &'a SourceSpec>) -> Owners {
        let mut o = Owners::default();
        for spec in specs {
            match spec {
                SourceSpec::Repo { owner, name } => {
                    o.repos.insert(format!("{owner}/{name}").to_lowercase());
                }
                SourceSpec::Org(org) => {
                    o.orgs.insert(org.to_lowercase());
                }
                SourceSpec::User(_) => o.users.push(spec.clone()),
            }
        }
        o
    }

    /// Ownership with these removed `repo:` sources still publishing their repositories
    /// while they are drained (polled to the head once more) before the handover.
    pub fn with_draining(mut self, specs: impl IntoIterator<Item = SourceSpec>) -> Owners {
        for spec in specs {
            if let SourceSpec::Repo { owner, name } = &spec
                && !self
                    .repos
                    .contains(&format!("{owner}/{name}").to_lowercase())
            {
                self.draining.insert(spec);
            }
        }
        self
    }

    /// The removed `repo:` sources being drained.
    pub fn draining(&self) -> impl Iterator<Item = &SourceSpec> {
        self.draining.iter()
    }

    /// A drained repository changes hands: its org or user source publishes it from now on.
    pub fn drained(&mut self, spec: &SourceSpec) {
        self.draining.remove(spec);
    }

    /// The users of the user sources.
    pub fn users(&self) -> &[SourceSpec] {
        &self.users
    }

    fn repo_owned(&self, repo: &str) -> bool {
        self.repos.contains(repo)
            || self.draining.iter().any(|d| {
                matches!(d, SourceSpec::Repo { owner, name }
                    if format!("{owner}/{name}").to_lowercase() == repo)
            })
    }

    /// The repositories of `spec`'s org (or user) that other sources publish: `owner/name`,
    /// lower case, sorted. Recorded in its cursor, so that a `repo:` source of one of them
    /// that has no cursor of its own takes nothing over from it (it published none of it).
    pub fn left_to_others(&self, spec: &SourceSpec) -> Vec<String> {
        let of = match spec {
            SourceSpec::Org(n) | SourceSpec::User(n) => n.to_lowercase(),
            SourceSpec::Repo { .. } => return Vec::new(),
        };
        let drained = self.draining.iter().filter_map(|d| match d {
            SourceSpec::Repo { owner, name } => Some(format!("{owner}/{name}").to_lowercase()),
            _ => None,
        });
        let mut out: Vec<String> = self
            .repos
            .iter()
            .cloned()
            .chain(drained)
            .filter(|r| r.split_once('/').is_some_and(|(o, _)| o == of))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The source that publishes `owner/name` when no `repo:` source does: its org's source,
    /// else the owner's `user:` source (the user's own repositories), if configured.
    pub fn fallback_for(&self, owner: &str, users: &[SourceSpec]) -> Option<SourceSpec> {
        let o = owner.to_lowercase();
        if self.orgs.contains(&o) {
            return Some(SourceSpec::Org(owner.to_string()));
        }
        users
            .iter()
            .find(|u| matches!(u, SourceSpec::User(n) if n.to_lowercase() == o))
            .cloned()
    }

    /// Whether `spec` publishes this row (another source may own its repository).
    pub fn publishes(&self, spec: &SourceSpec, row: &ActivityRow) -> bool {
        let Some((owner, name)) = row.activity.repo_names() else {
            return true;
        };
        let repo = format!("{owner}/{name}").to_lowercase();
        match spec {
            SourceSpec::Repo { .. } => true,
            SourceSpec::Org(_) => !self.repo_owned(&repo),
            SourceSpec::User(_) => {
                !self.repo_owned(&repo) && !self.orgs.contains(&owner.to_lowercase())
            }
        }
    }
}
