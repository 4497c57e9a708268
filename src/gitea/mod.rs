//! Talking to Gitea: the HTTP client (rate limit, retries, paging), its errors, and the
//! lenient types of what Gitea returns, its server days, and the cadence that spends its
//! request budget over the sources.

pub mod cadence;
pub mod client;
pub mod day;
pub mod error;
pub mod types;

pub use client::{FeedPage, GiteaClient};
pub use error::GiteaError;
pub use types::{Activity, ActivityRow, Visibility};
