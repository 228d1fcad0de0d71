//! The limiter's clock: wall-clock milliseconds that follow tokio's clock.
//!
//! Fixed windows must line up across replicas, so the clock reads Unix time; it is sampled
//! once at start and then advanced by `tokio::time::Instant`, so tests can pause and advance
//! tokio's time (or call [`Clock::advance`]) to see windows reset on schedule.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A shareable clock. Cloning shares the same time line.
#[derive(Debug, Clone)]
pub struct Clock(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    origin_unix_ms: u64,
    origin: tokio::time::Instant,
    skew_ms: AtomicU64,
}

impl Clock {
    /// A clock starting at the system's current time.
    pub fn system() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self::starting_at(unix)
    }

    /// A clock that reads `unix_ms` now.
    pub fn starting_at(unix_ms: u64) -> Self {
        Self(Arc::new(Inner {
            origin_unix_ms: unix_ms,
            origin: tokio::time::Instant::now(),
            skew_ms: AtomicU64::new(0),
        }))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.0.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0
            .origin_unix_ms
            .saturating_add(elapsed)
            .saturating_add(self.0.skew_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone) forward. Production never calls it; black-box tests
    /// use it to reach the next window without waiting a minute.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.skew_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_paused_tokio_time_and_manual_advances() {
        let c = Clock::starting_at(1_000);
        assert_eq!(c.now_ms(), 1_000);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(c.now_ms(), 1_250);
        c.clone().advance(Duration::from_secs(1));
        assert_eq!(c.now_ms(), 2_250);
    }
}
