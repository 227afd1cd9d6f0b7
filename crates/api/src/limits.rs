//! Per-caller rate limits: requests per identity (after authentication) and webhook
//! deliveries per source address (before any work: signature checks and ticket reads
//! cost writ and the ticketing system). Over the limit: 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use writ_config::HttpLimits;

use crate::error::ApiError;

/// Every this many checks, keys not seen lately are forgotten (source addresses are
/// chosen by whoever connects, so the table must not grow without end).
const FORGET_EVERY_CHECKS: u64 = 1024;

pub struct RateLimits {
    per_identity: Option<DefaultKeyedRateLimiter<String>>,
    per_source: Option<DefaultKeyedRateLimiter<IpAddr>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

/// `per_second` sustained, bursts of twice as many.
fn quota(per_second: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl RateLimits {
    pub fn new(limits: &HttpLimits) -> Self {
        Self {
            per_identity: limits
                .rate_limit_per_identity
                .and_then(quota)
                .map(governor::RateLimiter::keyed),
            per_source: limits
                .webhook_rate_limit_per_source
                .and_then(quota)
                .map(governor::RateLimiter::keyed),
            checks: AtomicU64::new(0),
        }
    }

    /// No limits at all (tests that build the router by hand).
    pub fn none() -> Self {
        Self {
            per_identity: None,
            per_source: None,
            checks: AtomicU64::new(0),
        }
    }

    pub fn check_identity(&self, name: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_identity else {
            return Ok(());
        };
        self.forget_now_and_then();
        limiter.check_key(&name.to_string()).map_err(|not_until| {
            too_many(
                format!("{name} is making requests faster than server.rate_limit allows"),
                not_until,
            )
        })
    }

    pub fn check_source(&self, source: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_source else {
            return Ok(());
        };
        self.forget_now_and_then();
        limiter.check_key(&source).map_err(|not_until| {
            too_many(
                format!(
                    "{source} is sending webhooks faster than server.webhook_rate_limit allows"
                ),
                not_until,
            )
        })
    }

    fn forget_now_and_then(&self) {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(FORGET_EVERY_CHECKS)
        {
            if let Some(limiter) = &self.per_identity {
                limiter.retain_recent();
            }
            if let Some(limiter) = &self.per_source {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

fn too_many(
    message: String,
    not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>,
) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    let mut error = ApiError::new(writ_engine::ErrorCode::RateLimited, message);
    // Whole seconds, rounded up: a client that waits that long gets through.
    error.retry_after_seconds = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
    error
}
