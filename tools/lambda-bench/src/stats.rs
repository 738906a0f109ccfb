//! Order statistics over durations.

use std::time::Duration;

pub fn min(xs: &[Duration]) -> Option<Duration> {
    xs.iter().min().copied()
}

/// The nearest-rank percentile `p` (0..=100).
pub fn percentile(xs: &[Duration], p: f64) -> Option<Duration> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

pub fn median(xs: &[Duration]) -> Option<Duration> {
    percentile(xs, 50.0)
}

pub fn ms(d: Option<Duration>) -> String {
    d.map_or("n/a".into(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let xs: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(median(&xs), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&xs, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(min(&xs), Some(Duration::from_millis(1)));
        assert_eq!(median(&[]), None);
    }
}
