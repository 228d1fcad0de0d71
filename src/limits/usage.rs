//! Monthly operation counts per tenant, kept durably (SPEC S10 `operations_per_month`).
//!
//! The hot path never writes to the database: a proxied call adds to an in-memory pending
//! count, and [`UsageMeter::flush`] (every 250 ms, and at graceful shutdown) adds the pending
//! counts to `tenant_usage` with one atomic upsert per tenant and month. The quota is checked
//! against `stored + in flight + pending`, where `stored` is the database's total as last seen
//! (read back from each upsert, re-read every flush while a tenant is active, and re-read
//! before the first operation after 5 s of idleness), so the other replicas' flushed calls
//! are seen within one flush interval.
//!
//! Bounds: one replica alone never lets a tenant past its quota. With N replicas on one
//! database, a tenant can exceed its quota by at most what the other N−1 replicas accept for it
//! during one flush interval (~250 ms) plus one database round trip. A crash (not a graceful
//! stop) loses at most the last 250 ms of counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike as _, TimeZone as _, Utc};

use crate::domain::TenantId;
use crate::store::{Store, StoreError};

/// Counters idle this long (and fully flushed) are forgotten.
const FORGET_AFTER_MS: u64 = 5 * 60 * 1000;
/// A tenant idle this long is no longer re-read at every flush; its next operation reads the
/// stored total again first (one query), so many idle tenants cost the database nothing.
const REFRESH_WHILE_ACTIVE_MS: u64 = 5_000;

/// One tenant's count for one month, as this replica knows it.
#[derive(Debug, Default)]
struct Tally {
    stored: u64,
    in_flight: u64,
    pending: u64,
    last_used_ms: u64,
}

impl Tally {
    fn total(&self) -> u64 {
        self.stored.saturating_add(self.in_flight).saturating_add(self.pending)
    }
}

type Key = (TenantId, String);

/// Counts proxied operations per tenant and month.
pub struct UsageMeter {
    store: Arc<dyn Store>,
    tallies: Mutex<HashMap<Key, Tally>>,
    /// Serializes flushes, so a shutdown flush and the periodic one never interleave.
    flushing: tokio::sync::Mutex<()>,
}

/// Why an operation was not counted.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("monthly operations quota exhausted")]
    QuotaExceeded,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UsageMeter {
    /// A meter writing to `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            tallies: Mutex::new(HashMap::new()),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Tally>> {
        // A poisoned lock only means another thread panicked mid-update; the counts stay valid.
        self.tallies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one operation for `tenant` in the month containing `now_ms`, unless that would
    /// go past `quota` (`None`: unlimited, still counted).
    pub async fn charge(&self, tenant: &TenantId, quota: Option<u64>, now_ms: u64) -> Result<(), UsageError> {
        let key = (tenant.clone(), period_of(now_ms));
        let fresh = self
            .lock()
            .get(&key)
            .is_some_and(|t| now_ms.saturating_sub(t.last_used_ms) < REFRESH_WHILE_ACTIVE_MS);
        if !fresh {
            // First use of this month here, or after a pause: learn what is stored now.
            let stored = u64::try_from(self.store.usage(tenant, &key.1).await?).unwrap_or(0);
            let mut tallies = self.lock();
            let tally = tallies.entry(key.clone()).or_default();
            // Totals only grow within a month: a concurrent flush may already know more.
            tally.stored = tally.stored.max(stored);
        }
        let mut tallies = self.lock();
        let tally = tallies.entry(key).or_default();
        tally.last_used_ms = now_ms;
        if quota.is_some_and(|q| tally.total() >= q) {
            return Err(UsageError::QuotaExceeded);
        }
        tally.pending += 1;
        Ok(())
    }

    /// This replica's view of a tenant's count for the month containing `now_ms`: what is
    /// stored plus what is not flushed yet.
    pub async fn current(&self, tenant: &TenantId, now_ms: u64) -> Result<u64, StoreError> {
        let period = period_of(now_ms);
        let stored = u64::try_from(self.store.usage(tenant, &period).await?).unwrap_or(0);
        let key = (tenant.clone(), period);
        let local = self
            .lock()
            .get(&key)
            .map_or(0, |t| t.in_flight.saturating_add(t.pending));
        Ok(stored.saturating_add(local))
    }

    /// Writes pending counts to the store and refreshes what other replicas stored.
    pub async fn flush(&self, now_ms: u64) {
        let _one_at_a_time = self.flushing.lock().await;
        let work: Vec<(Key, u64)> = {
            let mut tallies = self.lock();
            tallies.retain(|_, t| t.pending > 0 || now_ms.saturating_sub(t.last_used_ms) < FORGET_AFTER_MS);
            tallies
                .iter_mut()
                .filter(|(_, t)| t.pending > 0 || now_ms.saturating_sub(t.last_used_ms) < REFRESH_WHILE_ACTIVE_MS)
                .map(|(k, t)| {
                    let delta = std::mem::take(&mut t.pending);
                    t.in_flight += delta;
                    (k.clone(), delta)
                })
                .collect()
        };
        for ((tenant, period), delta) in work {
            let result = if delta > 0 {
                self.store
                    .add_usage(&tenant, &period, i64::try_from(delta).unwrap_or(i64::MAX))
                    .await
            } else {
                self.store.usage(&tenant, &period).await
            };
            let mut tallies = self.lock();
            let Some(tally) = tallies.get_mut(&(tenant.clone(), period.clone())) else {
                continue;
            };
            tally.in_flight -= delta;
            match result {
                Ok(total) => tally.stored = tally.stored.max(u64::try_from(total).unwrap_or(0)),
                Err(e) => {
                    // Kept for the next flush: counts are never dropped on a transient failure.
                    tally.pending += delta;
                    tracing::warn!(error = %e, tenant = %tenant, "could not record usage; will retry");
                }
            }
        }
    }
}

/// Flushes `meter` every `every` until the meter is dropped.
pub fn spawn_flusher(meter: &Arc<UsageMeter>, clock: super::Clock, every: std::time::Duration) {
    let weak = Arc::downgrade(meter);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(meter) = weak.upgrade() else { break };
            meter.flush(clock.now_ms()).await;
        }
    });
}

/// The month (UTC) containing `now_ms`, as `YYYY-MM`.
pub fn period_of(now_ms: u64) -> String {
    let t = utc(now_ms);
    let (year, month) = (t.year(), t.month());
    if !(1000..=9999).contains(&year) {
        return t.format("%Y-%m").to_string();
    }
    // By hand: it runs on every proxied call, and `format` parses its pattern each time.
    let mut out = String::with_capacity(7);
    for digit in [year / 1000, year / 100 % 10, year / 10 % 10, year % 10] {
        out.push(char::from_digit(digit.unsigned_abs(), 10).unwrap_or('0'));
    }
    out.push('-');
    out.push(char::from_digit(month / 10, 10).unwrap_or('0'));
    out.push(char::from_digit(month % 10, 10).unwrap_or('0'));
    out
}

/// Milliseconds from `now_ms` to the start of the next month (UTC).
pub fn ms_until_next_period(now_ms: u64) -> u64 {
    let t = utc(now_ms);
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .and_then(|next| u64::try_from(next.timestamp_millis()).ok())
        .map_or(0, |next| next.saturating_sub(now_ms))
}

fn utc(now_ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(i64::try_from(now_ms).unwrap_or(i64::MAX)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_meters_on_one_database_share_a_quota_once_flushed_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            crate::store::sqlite::SqliteStore::open(&dir.path().join("k.db"))
                .await
                .unwrap(),
        );
        let tenant = store.ensure_tenant("acme").await.unwrap().id;
        let (a, b) = (UsageMeter::new(store.clone()), UsageMeter::new(store.clone()));
        let now = 1_796_083_200_000; // December 2026
        a.charge(&tenant, Some(3), now).await.unwrap();
        a.charge(&tenant, Some(3), now).await.unwrap();
        assert_eq!(
            store.usage(&tenant, "2026-12").await.unwrap(),
            0,
            "nothing written on the hot path"
        );
        a.flush(now).await;
        assert_eq!(store.usage(&tenant, "2026-12").await.unwrap(), 2);
        b.charge(&tenant, Some(3), now).await.unwrap();
        assert!(matches!(
            b.charge(&tenant, Some(3), now).await,
            Err(UsageError::QuotaExceeded)
        ));
        b.flush(now).await;
        // A sees B's operation at its next flush (it re-reads while the tenant is active).
        a.flush(now + 250).await;
        assert!(matches!(
            a.charge(&tenant, Some(3), now + 250).await,
            Err(UsageError::QuotaExceeded)
        ));
        assert_eq!(store.usage(&tenant, "2026-12").await.unwrap(), 3);
        assert_eq!(a.current(&tenant, now).await.unwrap(), 3);
        // Unlimited tenants are counted too.
        a.charge(&tenant, None, now).await.unwrap();
        a.flush(now).await;
        assert_eq!(store.usage(&tenant, "2026-12").await.unwrap(), 4);
    }

    #[test]
    fn periods_are_utc_months_and_the_next_one_is_found() {
        // 2026-11-30T23:59:59.000Z
        let t = 1_796_083_199_000;
        assert_eq!(period_of(t), "2026-11");
        assert_eq!(ms_until_next_period(t), 1_000);
        assert_eq!(period_of(t + 1_000), "2026-12");
        // December rolls over into January of the next year.
        let dec = 1_796_083_200_000 + 5_000;
        assert_eq!(period_of(dec), "2026-12");
        assert_eq!(period_of(dec + ms_until_next_period(dec)), "2027-01");
    }

    #[test]
    fn periods_are_written_as_chrono_formats_them() {
        let mut t = 0;
        while t < 4_200_000_000_000 {
            assert_eq!(period_of(t), utc(t).format("%Y-%m").to_string());
            t += 86_400_000 * 13 + 3_600_000;
        }
        assert_eq!(period_of(u64::MAX), utc(u64::MAX).format("%Y-%m").to_string());
    }
}
