//! The server's time zone (a fixed offset or a named zone with daylight saving time)
//! and how Unix seconds are written in it. A leaf: no other simulator module.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Offset, SecondsFormat, TimeZone};
use chrono_tz::Tz;

/// The server's time zone: what `created` strings carry and what `date=` days are
/// counted in. Gitea runs in a named zone (`[time] DEFAULT_UI_LOCATION`), usually with
/// daylight saving time; `Fixed` is a zone without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerZone {
    /// One offset all year.
    Fixed(FixedOffset),
    /// A named zone: the offset depends on the instant.
    Named(Tz),
}

impl ServerZone {
    /// The zone's offset at Unix second `unix`.
    pub fn offset_at(self, unix: i64) -> FixedOffset {
        match self {
            ServerZone::Fixed(o) => o,
            ServerZone::Named(tz) => {
                let utc = DateTime::from_timestamp(unix, 0).unwrap_or(DateTime::UNIX_EPOCH);
                tz.offset_from_utc_datetime(&utc.naive_utc()).fix()
            }
        }
    }

    /// Unix second `unix` in the zone, with the offset in force at that instant
    /// (`timeutil.TimeStamp.AsTime`).
    pub fn at(self, unix: i64) -> DateTime<FixedOffset> {
        DateTime::from_timestamp(unix, 0)
            .unwrap_or(DateTime::UNIX_EPOCH)
            .with_timezone(&self.offset_at(unix))
    }

    /// Local midnight of `day` as a Unix second, as Go's
    /// `time.ParseInLocation("2006-01-02", day, loc)` computes it: when midnight
    /// does not exist (a gap), the local time is read with the offset in force before
    /// the gap, which for a gap that starts at midnight is the first instant after
    /// it; when it exists twice, the earlier.
    pub fn midnight(self, day: NaiveDate) -> i64 {
        let naive = day.and_time(chrono::NaiveTime::MIN);
        match self {
            ServerZone::Fixed(o) => naive.and_utc().timestamp() - i64::from(o.local_minus_utc()),
            ServerZone::Named(tz) => match tz.from_local_datetime(&naive).earliest() {
                Some(t) => t.timestamp(),
                None => {
                    let as_utc = naive.and_utc().timestamp();
                    let before = self.offset_at(as_utc - 86_400);
                    as_utc - i64::from(before.local_minus_utc())
                }
            },
        }
    }

    /// A local time of the zone; the earlier instant when it exists twice, `None`
    /// when it does not exist (in a gap).
    pub fn local(self, t: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
        let unix = match self {
            ServerZone::Fixed(o) => o.from_local_datetime(&t).earliest()?.timestamp(),
            ServerZone::Named(tz) => tz.from_local_datetime(&t).earliest()?.timestamp(),
        };
        Some(self.at(unix))
    }
}

pub(crate) fn to_datetime(offset: ServerZone, secs: i64) -> DateTime<FixedOffset> {
    offset.at(secs)
}

/// RFC 3339 with the server's offset at that instant, seconds precision.
pub(crate) fn fmt_time(offset: ServerZone, secs: i64) -> String {
    to_datetime(offset, secs).to_rfc3339_opts(SecondsFormat::Secs, true)
}
