//! Which source publishes which repository.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::gitea::ActivityRow;
use crate::source::SourceSpec;
use crate::store::cursor::TakenOver;

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

    /// Whether `spec` publishes the repository `repo` (`owner/name`, lower case) of its org
    /// or user.
    pub fn publishes_repo(&self, spec: &SourceSpec, repo: &str) -> bool {
        match spec {
            SourceSpec::Repo { .. } => true,
            SourceSpec::Org(_) => !self.repo_owned(repo),
            SourceSpec::User(_) => {
                !self.repo_owned(repo)
                    && repo
                        .split_once('/')
                        .is_none_or(|(owner, _)| !self.orgs.contains(owner))
            }
        }
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

/// Repositories drained `repo:` sources offer to the org or user source taking them over:
/// that source records each in its cursor ([`crate::store::cursor::Cursor::taken_over`])
/// before its next poll and answers; only then is the drained cursor marked handed over, so
/// a restart between the two drains the repository again rather than forgetting where the
/// taker must read it from.
#[derive(Debug, Default)]
pub struct Takeovers {
    offers: Mutex<HashMap<SourceSpec, Vec<Offer>>>,
}

/// One repository offered, and whom to tell once it is recorded.
#[derive(Debug)]
pub struct Offer {
    pub taken: TakenOver,
    pub recorded: tokio::sync::oneshot::Sender<()>,
}

impl Takeovers {
    /// Offers `taken` to `to`; the answer comes once `to` recorded it (an earlier offer of
    /// the same repository is replaced: its drain is gone).
    pub fn offer(&self, to: &SourceSpec, taken: TakenOver) -> tokio::sync::oneshot::Receiver<()> {
        let (recorded, answer) = tokio::sync::oneshot::channel();
        let mut offers = self.offers.lock().unwrap_or_else(|e| e.into_inner());
        let list = offers.entry(to.clone()).or_default();
        list.retain(|o| o.taken.repo != taken.repo);
        list.push(Offer { taken, recorded });
        answer
    }

    /// The repositories offered to `spec` since the last call.
    pub fn take(&self, spec: &SourceSpec) -> Vec<Offer> {
        self.offers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(spec)
            .unwrap_or_default()
    }

    /// Offers taken but not recorded (the cursor write failed): offered again, unless a
    /// newer offer of the same repository came meanwhile.
    pub fn put_back(&self, spec: &SourceSpec, back: Vec<Offer>) {
        let mut offers = self.offers.lock().unwrap_or_else(|e| e.into_inner());
        let list = offers.entry(spec.clone()).or_default();
        for o in back {
            if !list.iter().any(|n| n.taken.repo == o.taken.repo) {
                list.push(o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cursor::SeenSet;

    fn taken(repo: &str, from: i64) -> TakenOver {
        TakenOver {
            repo: repo.into(),
            from,
            seen: SeenSet::default(),
            published_before: None,
        }
    }

    #[test]
    fn an_offer_is_answered_once_recorded_and_a_newer_one_replaces_it() {
        let t = Takeovers::default();
        let org = SourceSpec::Org("acme".into());
        let mut first = t.offer(&org, taken("acme/x", 10));
        let mut second = t.offer(&org, taken("acme/x", 20));
        assert!(first.try_recv().is_err(), "the replaced offer is dropped");
        let offers = t.take(&org);
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].taken.from, 20);
        // Not recorded (the cursor write failed): offered again at the next poll.
        t.put_back(&org, offers);
        let offers = t.take(&org);
        assert_eq!(offers.len(), 1);
        for o in offers {
            let _ = o.recorded.send(());
        }
        assert!(second.try_recv().is_ok(), "answered once recorded");
        assert!(t.take(&org).is_empty());
    }
}
