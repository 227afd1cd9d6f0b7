//! What stands between writ and one target: a bound on concurrent calls, an optional
//! rate limit, and a circuit breaker that stops hammering a target that keeps failing.
//!
//! The breaker opens after `circuit_failures` calls in a row failed and stays open for
//! `circuit_cooldown`; while open, calls fail at once without reaching the target (and
//! the work is retried with backoff like any failure). After the cooldown calls go
//! through again: a success closes it, another failure opens it for another cooldown.
//! Times come from the engine's clock, so tests drive it like expiry. Every call also
//! has a deadline (`call_timeout`, default 30 s): past it the outcome is unknown.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;
use writ_config::Target;
use writ_connectors::ConnectorError;
use writ_domain::Timestamp;

#[derive(Debug)]
pub(crate) struct TargetGuard {
    permits: Semaphore,
    rate: Option<Mutex<TokenBucket>>,
    breaker: Mutex<Breaker>,
    failures_to_open: u32,
    cooldown_seconds: i64,
    /// No call waits longer than this for the target (`call_timeout`).
    call_timeout: Duration,
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    /// Set when it opened; once past, the breaker is half-open: calls go through, and
    /// the first failure opens it again at once.
    open_until: Option<Timestamp>,
}

#[derive(Debug)]
struct TokenBucket {
    per_second: f64,
    tokens: f64,
    refilled: tokio::time::Instant,
}

impl TokenBucket {
    /// Takes a token, or says how long until one is there.
    fn take(&mut self) -> Option<Duration> {
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second.max(1.0));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TargetGuard {
    pub(crate) fn new(target: &Target) -> Self {
        Self {
            permits: Semaphore::new(target.max_concurrency),
            rate: target.max_rate_per_second.map(|per_second| {
                let per_second = f64::from(per_second);
                Mutex::new(TokenBucket {
                    per_second,
                    tokens: per_second.max(1.0),
                    refilled: tokio::time::Instant::now(),
                })
            }),
            breaker: Mutex::new(Breaker::default()),
            failures_to_open: target.circuit_failures,
            cooldown_seconds: target.circuit_cooldown_seconds,
            call_timeout: Duration::from_secs(
                u64::try_from(target.call_timeout_seconds).unwrap_or(0),
            ),
        }
    }

    /// No rate limit, the default concurrency and breaker.
    pub(crate) fn unconfigured() -> Self {
        Self {
            permits: Semaphore::new(16),
            rate: None,
            breaker: Mutex::new(Breaker::default()),
            failures_to_open: 5,
            cooldown_seconds: 10,
            call_timeout: Duration::from_secs(
                u64::try_from(writ_config::DEFAULT_CALL_TIMEOUT_SECONDS).unwrap_or(30),
            ),
        }
    }

    /// Runs one call to the target within the limits, unless the breaker is open.
    pub(crate) async fn call<T>(
        &self,
        now: Timestamp,
        call: impl Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        if let Some(until) = self.open_until(now) {
            return Err(ConnectorError::Failed(format!(
                "circuit open: the target failed {} times in a row; no calls until {until}",
                self.failures_to_open
            )));
        }
        let _permit =
            self.permits.acquire().await.map_err(|_| {
                ConnectorError::Failed("the target's call limiter is closed".into())
            })?;
        if let Some(rate) = &self.rate {
            loop {
                let wait = lock(rate).take();
                match wait {
                    None => break,
                    Some(wait) => tokio::time::sleep(wait).await,
                }
            }
        }
        // A target that does not answer in time: the call may or may not have taken
        // effect, so its outcome is unknown and the work re-checks before believing.
        let result = match tokio::time::timeout(self.call_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::Unknown(format!(
                "the target did not answer within {}s (call_timeout); the outcome is checked again",
                self.call_timeout.as_secs()
            ))),
        };
        self.record(now, result.is_ok());
        result
    }

    /// When the breaker is open at `now`, until when.
    pub(crate) fn open_until(&self, now: Timestamp) -> Option<Timestamp> {
        lock(&self.breaker).open_until.filter(|until| now < *until)
    }

    fn record(&self, now: Timestamp, succeeded: bool) {
        let mut breaker = lock(&self.breaker);
        if succeeded {
            *breaker = Breaker::default();
            return;
        }
        breaker.consecutive_failures = breaker.consecutive_failures.saturating_add(1);
        let half_open = breaker.open_until.is_some();
        if half_open || breaker.consecutive_failures >= self.failures_to_open {
            breaker.open_until = Some(now.plus_seconds(self.cooldown_seconds));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(failures: u32) -> TargetGuard {
        TargetGuard {
            permits: Semaphore::new(2),
            rate: None,
            breaker: Mutex::new(Breaker::default()),
            failures_to_open: failures,
            cooldown_seconds: 30,
            call_timeout: Duration::from_secs(5),
        }
    }

    /// A target that never answers gives an unknown outcome at the deadline, and
    /// counts as a failure for the breaker.
    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_deadline_is_an_unknown_outcome() {
        let guard = guard(1);
        let now = Timestamp::from_unix_micros(0);
        let result: Result<(), ConnectorError> = guard
            .call(now, std::future::pending::<Result<(), ConnectorError>>())
            .await;
        assert!(
            matches!(&result, Err(ConnectorError::Unknown(m)) if m.contains("within 5s")),
            "{result:?}"
        );
        assert!(guard.open_until(now).is_some());
    }

    async fn fail(guard: &TargetGuard, now: Timestamp) -> Result<(), ConnectorError> {
        guard
            .call(now, async {
                Err::<(), _>(ConnectorError::Failed("down".into()))
            })
            .await
    }

    #[tokio::test]
    async fn the_breaker_opens_after_failures_in_a_row_and_closes_on_success() {
        let guard = guard(3);
        let t0 = Timestamp::from_unix_micros(1_800_000_000_000_000);
        for _ in 0..3 {
            assert!(
                matches!(fail(&guard, t0).await, Err(ConnectorError::Failed(m)) if m == "down")
            );
        }
        // Open: the call is not made.
        let mut called = false;
        let result = guard
            .call(t0.plus_seconds(29), async {
                called = true;
                Ok(())
            })
            .await;
        assert!(!called);
        assert!(matches!(result, Err(ConnectorError::Failed(m)) if m.starts_with("circuit open")));
        // After the cooldown a call goes through; success closes it.
        assert!(
            guard
                .call(t0.plus_seconds(30), async { Ok(()) })
                .await
                .is_ok()
        );
        assert_eq!(guard.open_until(t0.plus_seconds(30)), None);
        // Failures must be in a row: a success in between resets the count.
        fail(&guard, t0.plus_seconds(31)).await.ok();
        fail(&guard, t0.plus_seconds(31)).await.ok();
        assert!(
            guard
                .call(t0.plus_seconds(31), async { Ok(()) })
                .await
                .is_ok()
        );
        fail(&guard, t0.plus_seconds(32)).await.ok();
        assert_eq!(guard.open_until(t0.plus_seconds(32)), None);
    }

    #[tokio::test]
    async fn the_rate_limit_spaces_calls() {
        let guard = TargetGuard {
            rate: Some(Mutex::new(TokenBucket {
                per_second: 20.0,
                tokens: 1.0,
                refilled: tokio::time::Instant::now(),
            })),
            ..guard(5)
        };
        let now = Timestamp::from_unix_micros(1_800_000_000_000_000);
        let started = std::time::Instant::now();
        for _ in 0..6 {
            guard.call(now, async { Ok(()) }).await.ok();
        }
        // One token at hand, then five more at 20/s: about 250 ms.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    }
}
