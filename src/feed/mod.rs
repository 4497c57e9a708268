//! Walking Gitea's activity feeds without losing or repeating actions: the page walks (`walk`), cross-feed de-duplication (`dedup`) and one
//! poll of one source (`poll`).

pub mod dedup;
pub mod enrich;
pub mod evidence;
pub mod pipeline;
pub mod poll;
pub mod walk;

pub use dedup::RecentIndex;
pub use poll::{PollContext, PollError, PollReport, SourcePoller};
