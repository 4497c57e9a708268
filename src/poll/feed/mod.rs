//! Walking Gitea's activity feeds without losing or repeating actions: the walk's evidence
//! (`evidence`), the page walks (`walk`), the bytes of days walked ahead (`ahead`) and one
//! poll of one source's feed (`poll`). The
//! cursor design is in `store::cursor`; what feed and repository polls share is in
//! `pipeline`.

pub mod ahead;
pub mod evidence;
pub mod poll;
pub mod walk;

pub use poll::{FeedPoller, PollReport};
