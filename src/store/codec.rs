//! How values are written into columns. Times are RFC 3339 text in UTC with nine
//! fraction digits and a `Z`: fixed width, so SQLite's text order is time order
//! (expiry checks and ordering happen in SQL), a person reading the file with
//! `sqlite3` sees real dates, and a `DateTime<Utc>` comes back exactly as it went in.

use super::StoreError;
use chrono::{DateTime, SecondsFormat, Utc};

pub(crate) fn time_to_sql(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn time_from_sql(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt {
            what: "timestamp",
            message: format!("{s:?}: {e}"),
        })
}

pub(crate) fn opt_time_from_sql(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.as_deref().map(time_from_sql).transpose()
}

pub(crate) fn json_from_sql<T: serde::de::DeserializeOwned>(what: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        message: e.to_string(),
    })
}

/// SQLite integers are `i64`; counts and limits in the API are `usize`/`u32`.
pub(crate) fn clamp_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_round_trip_exactly_and_sort_as_text() {
        let a = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        let b = Utc.timestamp_opt(1_700_000_000, 900).unwrap();
        let c = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        for t in [a, b, c] {
            assert_eq!(time_from_sql(&time_to_sql(&t)).unwrap(), t);
        }
        let mut texts = [time_to_sql(&c), time_to_sql(&a), time_to_sql(&b)];
        texts.sort();
        assert_eq!(texts, [time_to_sql(&b), time_to_sql(&a), time_to_sql(&c)]);
    }

    #[test]
    fn a_bad_timestamp_is_reported_as_corrupt() {
        assert!(matches!(time_from_sql("yesterday"), Err(StoreError::Corrupt { .. })));
    }
}
