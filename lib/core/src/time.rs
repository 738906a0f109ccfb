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

/// Exponential backoff: `base`, `2·base`, `4·base` … for attempts 1, 2, 3 …, never more than
/// `max`. One rule for every retry loop (notifications, the CRM worker, the AmoCRM client, the
/// DynamoDB intake transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: std::time::Duration,
    pub max: std::time::Duration,
}

impl Backoff {
    pub const fn new(base: std::time::Duration, max: std::time::Duration) -> Self {
        Backoff { base, max }
    }

    /// The wait after the `attempt`-th failure (attempt 0 counts as 1).
    pub fn delay(&self, attempt: u32) -> std::time::Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A uniformly random wait between half of [`delay`](Self::delay) and all of it, so that
    /// writers racing for the same item spread out instead of colliding again.
    pub fn jittered(&self, attempt: u32) -> std::time::Duration {
        use std::hash::{BuildHasher, Hasher};
        let full = u64::try_from(self.delay(attempt).as_micros()).unwrap_or(u64::MAX);
        // A fresh `RandomState` is randomly keyed: enough randomness for jitter, no extra crate.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        std::time::Duration::from_micros(full / 2 + random % (full / 2 + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_per_attempt_up_to_its_cap_and_jitter_stays_within_half_of_it() {
        let b = Backoff::new(Duration::from_secs(30), Duration::from_secs(30 * 60));
        let delays: Vec<u64> = (0..9).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(delays, [30, 30, 60, 120, 240, 480, 960, 1800, 1800]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1800));
        let small = Backoff::new(Duration::from_millis(20), Duration::from_millis(400));
        for attempt in 0..40 {
            let d = small.jittered(attempt);
            let full = small.delay(attempt);
            assert!(d <= full && d >= full / 2, "{attempt}: {d:?} of {full:?}");
        }
    }

    #[test]
    fn formatted_timestamps_sort_like_time() {
        let a = Timestamp::from_millisecond(1_700_000_000_001).unwrap();
        let b = Timestamp::from_millisecond(1_700_000_000_010).unwrap();
        assert_eq!(format(a), "2023-11-14T22:13:20.001Z");
        assert!(format(a) < format(b));
        assert_eq!(parse(&format(a)).unwrap(), a);
    }
}
