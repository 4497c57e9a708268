//! Gitea's days are the server's local days (`date=`, `since`/`before`), told apart by the
//! fixed offsets its timestamps carry.

use chrono::NaiveDate;

/// Unix seconds of local midnight starting `day`, at the fixed offset `offset`.
pub fn midnight(day: NaiveDate, offset: i32) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map(|dt| dt.and_utc().timestamp() - i64::from(offset))
        // 00:00:00 exists on every date; this arm is never taken.
        .unwrap_or_default()
}
