//! Server time: UTC, as microseconds since the Unix epoch in storage and RFC 3339 on the wire.

use time::OffsetDateTime;

/// Now, in microseconds since the Unix epoch (UTC).
pub fn now_micros() -> i64 {
    to_micros(OffsetDateTime::now_utc())
}

/// Now, in whole seconds since the Unix epoch.
pub fn now_seconds() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}

/// Today's date in Japan (UTC+9, no daylight saving): the calendar that dates of birth and
/// consent dates are written in.
pub fn today_in_japan() -> time::Date {
    OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+9))
        .date()
}

/// An instant as stored.
pub fn to_micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// A stored instant; out-of-range values clamp to the epoch rather than fail a read.
pub fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Microseconds in `seconds`.
pub const fn seconds(seconds: u64) -> i64 {
    seconds as i64 * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip() {
        let now = OffsetDateTime::now_utc();
        let back = from_micros(to_micros(now));
        assert!((now - back).whole_microseconds().abs() < 1);
        assert_eq!(seconds(2), 2_000_000);
    }
}
