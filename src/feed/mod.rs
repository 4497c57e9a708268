//! Walking Gitea's activity feeds without losing or repeating actions: the cursor and its
//! design (`cursor`), the page walks (`walk`), cross-feed de-duplication (`dedup`) and one
//! poll of one source (`poll`).

pub mod cursor;
pub mod dedup;
pub mod enrich;
pub mod evidence;
pub mod pipeline;
pub mod poll;
pub mod walk;

pub use cursor::Cursor;
pub use dedup::RecentIndex;
pub use poll::{PollContext, PollError, PollReport, SourcePoller};
