//! Rate limits and quotas (SPEC S3, S10): per API key (proxy and management calls), per
//! client address for failed authentications, and the tenant plan's requests per second and
//! operations per month.
//!
//! Windows are **fixed**, aligned on Unix time (a minute for keys and addresses, a second for
//! a tenant's requests per second), so every replica agrees on where a window starts. Counters
//! live in this process or, with `redis_url` configured, in Redis (shared by every replica).
//! Monthly operations are counted durably by [`usage::UsageMeter`].
//!
//! Must not decide who a caller is (see `auth`) or touch a request beyond answering 429.

pub mod clock;
pub mod counters;
pub mod http;
pub mod usage;

use std::net::IpAddr;
use std::sync::Arc;

pub use clock::Clock;
pub use counters::{Counters, MemoryCounters, RedisCounters};
pub use http::{ProxyCall, RateSlot, rate_limit_headers};

use crate::config::LimitsConfig;
use crate::domain::{ApiKeyId, Plan, ProjectId, TenantId};
use crate::error::ApiError;
use counters::Incr;
use usage::{UsageError, UsageMeter};

const MINUTE_MS: u64 = 60_000;
const SECOND_MS: u64 = 1_000;

/// Which per-key budget a call draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Calls through a proxy surface.
    Proxy,
    /// Everything else an API key can call.
    Management,
}

/// Where a caller stands in its current window, as the `X-RateLimit-*` headers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    pub limit: u64,
    pub remaining: u64,
    /// When the window resets, in Unix seconds.
    pub reset_unix: u64,
}

/// The limiter: counters, the clock and the usage meter.
pub struct Limiter {
    config: LimitsConfig,
    counters: Arc<dyn Counters>,
    clock: Clock,
    usage: Arc<UsageMeter>,
}

/// One counted hit in a fixed window.
struct Hit {
    count: u64,
    now_ms: u64,
    reset_ms: u64,
}

impl Hit {
    fn retry_after_secs(&self) -> u64 {
        self.reset_ms.saturating_sub(self.now_ms).div_ceil(1000).max(1)
    }
}

impl Limiter {
    /// A limiter with the given counters.
    pub fn new(config: LimitsConfig, counters: Arc<dyn Counters>, clock: Clock, usage: Arc<UsageMeter>) -> Self {
        Self {
            config,
            counters,
            clock,
            usage,
        }
    }

    /// The clock windows are measured on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The monthly usage meter.
    pub fn usage(&self) -> &Arc<UsageMeter> {
        &self.usage
    }

    /// Counts one call by an API key and reports where it stands; `Err(429 rate_limited)` past
    /// the limit (the status is returned either way, for the headers). `None`: limit disabled.
    pub async fn charge_key(&self, key: &ApiKeyId, bucket: Bucket) -> Option<(RateStatus, Result<(), ApiError>)> {
        let (limit, tag) = match bucket {
            Bucket::Proxy => (self.config.proxy_per_minute, "p"),
            Bucket::Management => (self.config.management_per_minute, "m"),
        };
        if limit == 0 {
            return None;
        }
        let hit = self.hit(&["k:", key.as_str(), ":", tag], MINUTE_MS).await;
        let status = RateStatus {
            limit,
            remaining: limit.saturating_sub(hit.count),
            reset_unix: hit.reset_ms.div_ceil(1000),
        };
        let verdict = if hit.count > limit {
            Err(ApiError::RateLimited {
                message: format!("rate limit of {limit} requests per minute for this API key exceeded"),
                retry_after_secs: hit.retry_after_secs(),
            })
        } else {
            Ok(())
        };
        Some((status, verdict))
    }

    /// Counts one signed request by a project against the management limit (each project has
    /// its own budget of `management_per_minute`, like an API key); `Err(429 rate_limited)`
    /// past it.
    pub async fn charge_project(&self, project: &ProjectId) -> Result<(), ApiError> {
        let limit = self.config.management_per_minute;
        if limit == 0 {
            return Ok(());
        }
        let hit = self.hit(&["j:", project.as_str(), ":m"], MINUTE_MS).await;
        if hit.count > limit {
            return Err(ApiError::RateLimited {
                message: format!("rate limit of {limit} signed requests per minute for this project exceeded"),
                retry_after_secs: hit.retry_after_secs(),
            });
        }
        Ok(())
    }

    /// Refuses (429 `rate_limited`) a client address that has failed to authenticate too
    /// often in the current window — even when it now presents a valid key.
    pub async fn check_client_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        let limit = self.config.auth_failures_per_minute;
        if limit == 0 {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let (name, reset_ms) = window_name(&[&ip_counter(ip)], now, MINUTE_MS);
        let failures = self.counters.get(&name).await.unwrap_or(0);
        if failures >= limit {
            return Err(ApiError::RateLimited {
                message: "too many failed authentications from this address; try again later".into(),
                retry_after_secs: reset_ms.saturating_sub(now).div_ceil(1000).max(1),
            });
        }
        Ok(())
    }

    /// Records that an authentication failed from `ip`. **The** hook for every authentication
    /// mechanism (API keys here; request signatures and console logins call it too): after
    /// `auth_failures_per_minute` failures, [`Limiter::check_client_ip`] refuses the address
    /// until the window resets.
    pub async fn record_auth_failure(&self, ip: IpAddr) {
        if self.config.auth_failures_per_minute == 0 {
            return;
        }
        let hit = self.hit(&[&ip_counter(ip)], MINUTE_MS).await;
        if hit.count == self.config.auth_failures_per_minute {
            tracing::warn!(client = %ip, "failed-authentication limit reached; refusing this address until the window resets");
        }
    }

    /// Counts one proxied operation against the tenant's plan: requests per second (429
    /// `rate_limited`) and operations per month (429 `quota_exceeded`).
    pub async fn charge_operation(&self, tenant: &TenantId, plan: &Plan) -> Result<(), ApiError> {
        if let Some(rps) = plan.requests_per_second {
            let hit = self.hit(&["t:", tenant.as_str(), ":s"], SECOND_MS).await;
            if hit.count > u64::from(rps) {
                return Err(ApiError::RateLimited {
                    message: format!("this account's plan allows {rps} requests per second"),
                    retry_after_secs: hit.retry_after_secs(),
                });
            }
        }
        let now = self.clock.now_ms();
        match self.usage.charge(tenant, plan.operations_per_month, now).await {
            Ok(()) => Ok(()),
            Err(UsageError::QuotaExceeded) => Err(ApiError::QuotaExceeded {
                retry_after_secs: usage::ms_until_next_period(now).div_ceil(1000).max(1),
            }),
            Err(UsageError::Store(e)) => Err(e.into()),
        }
    }

    /// Counts a hit on the counter `base` (the concatenation of its parts) in the current fixed
    /// window of `period_ms`. A counter backend failure counts as a first hit (never a 500):
    /// the backends already fall back to local memory, so this only guards against a bug.
    async fn hit(&self, base: &[&str], period_ms: u64) -> Hit {
        let now_ms = self.clock.now_ms();
        let (name, reset_ms) = window_name(base, now_ms, period_ms);
        // The counter outlives its window by a second so late readers still see it.
        let ttl_ms = reset_ms.saturating_sub(now_ms) + 1_000;
        let count = match self.counters.incr(&[Incr { name, ttl_ms }]).await {
            Ok(v) => v.first().copied().unwrap_or(1),
            Err(e) => {
                tracing::error!(error = %e, "rate-limit counter failed");
                1
            }
        };
        Hit {
            count,
            now_ms,
            reset_ms,
        }
    }
}

/// The counter name for `base` (the concatenation of its parts) in the window containing
/// `now_ms`, and when that window ends. Built by hand, in one allocation: it runs on every
/// request.
fn window_name(base: &[&str], now_ms: u64, period_ms: u64) -> (String, u64) {
    use std::fmt::Write as _;
    let index = now_ms / period_ms;
    let mut name = String::with_capacity(base.iter().map(|p| p.len()).sum::<usize>() + 21);
    for part in base {
        name.push_str(part);
    }
    // Writing into a String cannot fail.
    let _ = write!(name, ":{index}");
    (name, (index + 1) * period_ms)
}

/// The failed-authentication counter of a client: one per IPv4 address, one per IPv6 /64
/// (a single host usually holds a whole /64, so counting per address would be no limit).
fn ip_counter(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let mut name = String::with_capacity(18);
            name.push_str("ip:");
            crate::auth::push_ipv4(&mut name, v4);
            name
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests;
