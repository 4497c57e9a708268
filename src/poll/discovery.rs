//! `[[source]] all = true`: the sources the token can see. Every organisation (`/admin/orgs`
//! with a site admin's token, otherwise `/user/orgs`) becomes an org source, and every
//! repository of `/repos/search` whose owner is not one of those orgs becomes a repository
//! source. The scheduler lists them again every `poll.repos_refresh`: a new org or
//! repository starts without a restart, one that is gone stops (logged).

use std::collections::BTreeSet;

use crate::gitea::{GiteaClient, GiteaError};
use crate::poll::repo::list_pages;
use crate::source::SourceSpec;

/// At most this many pages of each list (of 50 by default: 25,000 orgs or repositories).
const MAX_PAGES: usize = 500;

/// What the token sees now, sorted. `Ok(None)`: a list was cut short (rows moved while it
/// was read, or too long), so it is not the whole set and nothing may be dropped for it.
pub async fn discover(client: &GiteaClient) -> Result<Option<Vec<SourceSpec>>, GiteaError> {
    let orgs = match list_pages(client, "orgs", &["admin", "orgs"], &[], None, MAX_PAGES).await {
        Ok(l) => l,
        // Not a site admin's token: the orgs it belongs to.
        Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => {
            list_pages(client, "orgs", &["user", "orgs"], &[], None, MAX_PAGES).await?
        }
        Err(e) => return Err(e),
    };
    let repos = list_pages(
        client,
        "repositories",
        &["repos", "search"],
        &[],
        Some("data"),
        MAX_PAGES,
    )
    .await?;
    if !orgs.complete || !repos.complete {
        return Ok(None);
    }
    let mut found = BTreeSet::new();
    let mut org_names = BTreeSet::new();
    for o in &orgs.items {
        let name = o["username"].as_str().or_else(|| o["name"].as_str());
        if let Some(spec) = name.and_then(|n| SourceSpec::org(n).ok()) {
            org_names.insert(name.unwrap_or_default().to_ascii_lowercase());
            found.insert(spec);
        }
    }
    for r in &repos.items {
        let Some((owner, name)) = r["full_name"].as_str().and_then(|f| f.split_once('/')) else {
            continue;
        };
        if org_names.contains(&owner.to_ascii_lowercase()) {
            continue;
        }
        if let Ok(spec) = SourceSpec::repo(owner, name) {
            found.insert(spec);
        }
    }
    Ok(Some(found.into_iter().collect()))
}
