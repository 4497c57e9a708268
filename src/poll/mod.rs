//! Polling Gitea and publishing what it says, once: the feed walk, the repository endpoints,
//! the one publish pipeline they share, backfill, discovery, and the pauses every instance follows.

pub mod backfill;
pub mod discovery;
pub mod feed;
pub mod pause;
pub mod pipeline;
pub mod repo;
