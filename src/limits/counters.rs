//! Where counters live: this process's memory, or Redis so that every replica shares them.
//!
//! A counter is named with its window index baked in (`…:<index>`), so a new window is a new
//! counter and old ones simply expire; the backend only has to increment atomically and
//! expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;

use super::clock::Clock;

/// Entries kept in memory before expired ones are swept.
const SWEEP_AT: usize = 50_000;
/// How long a Redis command may take before this replica falls back to its own counters.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// One counter to increment: its full name and how long it must live.
#[derive(Debug, Clone)]
pub struct Incr {
    pub name: String,
    pub ttl_ms: u64,
}

/// A store of expiring counters.
#[async_trait]
pub trait Counters: Send + Sync + 'static {
    /// Adds one to each counter (creating it with its TTL) and returns the new values, in order,
    /// in one atomic step per counter.
    async fn incr(&self, counters: &[Incr]) -> anyhow::Result<Vec<u64>>;
    /// A counter's current value (0 when absent).
    async fn get(&self, name: &str) -> anyhow::Result<u64>;
}

/// Counters in this process's memory.
pub struct MemoryCounters {
    clock: Clock,
    /// name → (expires at, Unix ms; count)
    map: Mutex<HashMap<String, (u64, u64)>>,
}

impl MemoryCounters {
    /// Empty counters expiring on `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn incr_now(&self, counters: &[Incr]) -> Vec<u64> {
        let now = self.clock.now_ms();
        // A poisoned lock only means another thread panicked mid-update; counts stay usable.
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, (expires, _)| *expires > now);
        }
        counters
            .iter()
            .map(|c| {
                // Looked up by reference first: only a new counter's name is copied.
                let entry = match map.get_mut(c.name.as_str()) {
                    Some(entry) => entry,
                    None => map.entry(c.name.clone()).or_insert((0, 0)),
                };
                if entry.0 <= now {
                    *entry = (now.saturating_add(c.ttl_ms), 0);
                }
                entry.1 = entry.1.saturating_add(1);
                entry.1
            })
            .collect()
    }

    fn get_now(&self, name: &str) -> u64 {
        let now = self.clock.now_ms();
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name)
            .filter(|(expires, _)| *expires > now)
            .map_or(0, |(_, count)| *count)
    }
}

#[async_trait]
impl Counters for MemoryCounters {
    async fn incr(&self, counters: &[Incr]) -> anyhow::Result<Vec<u64>> {
        Ok(self.incr_now(counters))
    }

    async fn get(&self, name: &str) -> anyhow::Result<u64> {
        Ok(self.get_now(name))
    }
}

/// Increments every key and sets its expiry when it is new; one round trip for all of them.
const INCR_SCRIPT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[i]) end
  out[i] = n
end
return out
";

/// Counters in Redis, shared by every replica that uses the same URL and prefix.
///
/// When Redis does not answer within 250 ms, this replica counts in its own memory until it
/// does again (limits then hold per replica instead of across them) and says so in the log.
pub struct RedisCounters {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    script: redis::Script,
    fallback: MemoryCounters,
    last_warned_ms: AtomicU64,
    clock: Clock,
}

impl RedisCounters {
    /// Connects to `url`; every counter name is prefixed with `prefix`.
    pub async fn connect(url: &str, prefix: &str, clock: Clock) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            redis::aio::ConnectionManager::new_with_config(client, config),
        )
        .await
        .context("timed out connecting to Redis")?
        .context("cannot connect to Redis")?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            script: redis::Script::new(INCR_SCRIPT),
            fallback: MemoryCounters::new(clock.clone()),
            last_warned_ms: AtomicU64::new(0),
            clock,
        })
    }

    async fn try_incr(&self, counters: &[Incr]) -> redis::RedisResult<Vec<u64>> {
        let mut invocation = self.script.prepare_invoke();
        for c in counters {
            invocation.key(format!("{}{}", self.prefix, c.name));
        }
        for c in counters {
            invocation.arg(c.ttl_ms.max(1));
        }
        let mut conn = self.conn.clone();
        invocation.invoke_async(&mut conn).await
    }

    async fn try_get(&self, name: &str) -> redis::RedisResult<Option<u64>> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(format!("{}{name}", self.prefix))
            .query_async(&mut conn)
            .await
    }

    /// Logs a Redis failure at most every 10 seconds (a down Redis must not flood the log).
    fn warn(&self, e: &redis::RedisError) {
        let now = self.clock.now_ms();
        let last = self.last_warned_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .last_warned_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %e, "Redis did not answer; counting rate limits on this replica only");
        }
    }
}

#[async_trait]
impl Counters for RedisCounters {
    async fn incr(&self, counters: &[Incr]) -> anyhow::Result<Vec<u64>> {
        match self.try_incr(counters).await {
            Ok(values) if values.len() == counters.len() => Ok(values),
            Ok(_) => Ok(self.fallback.incr_now(counters)),
            Err(e) => {
                self.warn(&e);
                Ok(self.fallback.incr_now(counters))
            }
        }
    }

    async fn get(&self, name: &str) -> anyhow::Result<u64> {
        match self.try_get(name).await {
            Ok(v) => Ok(v.unwrap_or(0).max(self.fallback.get_now(name))),
            Err(e) => {
                self.warn(&e);
                Ok(self.fallback.get_now(name))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(name: &str, ttl_ms: u64) -> Incr {
        Incr {
            name: name.into(),
            ttl_ms,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn memory_counters_count_and_expire_on_the_clock() {
        let clock = Clock::starting_at(0);
        let c = MemoryCounters::new(clock.clone());
        assert_eq!(c.incr(&[incr("a", 1000), incr("b", 1000)]).await.unwrap(), vec![1, 1]);
        assert_eq!(c.incr(&[incr("a", 1000)]).await.unwrap(), vec![2]);
        assert_eq!(c.get("a").await.unwrap(), 2);
        assert_eq!(c.get("missing").await.unwrap(), 0);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(c.get("a").await.unwrap(), 2);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(c.get("a").await.unwrap(), 0, "expired exactly at its TTL");
        assert_eq!(c.incr(&[incr("a", 1000)]).await.unwrap(), vec![1]);
    }
}
