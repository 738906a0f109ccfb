//! Client-side rate limit: at most `n` requests in any rolling window of one second.
//!
//! A token bucket (GCRA) with burst `n` lets `n + 1` requests into some one-second window
//! (a full burst, then one more a `1/n` later), and AmoCRM counts windows; a log of the last `n`
//! send instants cannot overshoot.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct SlidingWindow {
    max: usize,
    window: Duration,
    sent: Mutex<VecDeque<Instant>>,
}

impl SlidingWindow {
    /// `max` requests per `window`; a small margin absorbs clock and network jitter.
    pub fn new(max: usize, window: Duration) -> Self {
        SlidingWindow {
            max: max.max(1),
            window,
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until one more request fits, and records it.
    pub async fn acquire(&self) {
        let mut sent = self.sent.lock().await;
        loop {
            let now = Instant::now();
            while sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                sent.pop_front();
            }
            if sent.len() < self.max {
                sent.push_back(now);
                return;
            }
            // Holding the lock while sleeping keeps waiters in arrival order.
            if let Some(oldest) = sent.front() {
                tokio::time::sleep_until(*oldest + self.window).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_max_in_any_window() {
        let limiter = std::sync::Arc::new(SlidingWindow::new(7, Duration::from_secs(1)));
        let start = Instant::now();
        let mut handles = vec![];
        for _ in 0..30 {
            let l = limiter.clone();
            handles.push(tokio::spawn(async move {
                l.acquire().await;
                Instant::now()
            }));
        }
        let mut times = vec![];
        for h in handles {
            times.push(h.await.unwrap());
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            assert!(in_window <= 7, "{in_window} requests within one second");
        }
        // 30 requests at 7/s: the last one goes out after 4 full windows.
        assert_eq!(
            times.last().unwrap().duration_since(start),
            Duration::from_secs(4)
        );
    }
}
