//! Timestamps as the tables store them: RFC 3339 in UTC with exactly three fractional digits,
//! so that text order is time order (SQLite compares them as strings, DynamoDB sort keys too).

use jiff::Timestamp;

pub fn format(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn parse(raw: &str) -> Result<Timestamp, jiff::Error> {
    raw.parse()
}

/// `ts + d`, saturating at the end of representable time instead of failing.
pub fn add(ts: Timestamp, d: std::time::Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| ts.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_timestamps_sort_like_time() {
        let a = Timestamp::from_millisecond(1_700_000_000_001).unwrap();
        let b = Timestamp::from_millisecond(1_700_000_000_010).unwrap();
        assert_eq!(format(a), "2023-11-14T22:13:20.001Z");
        assert!(format(a) < format(b));
        assert_eq!(parse(&format(a)).unwrap(), a);
    }
}
