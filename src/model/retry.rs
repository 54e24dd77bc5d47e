//! Retrying failed task attempts, with backoff.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{BuildError, RetrySetting, TaskError};

type RetryPredicate = dyn Fn(&TaskError) -> bool + Send + Sync;

/// How often a task is tried, how long to wait between attempts, and which
/// errors are worth another attempt.
///
/// The delay before attempt `k + 1` (after `k` failures) is
/// `min(initial × factor^(k-1), max)`, optionally spread by ±`jitter`
/// (a fraction, so 0.1 is ±10 %). The original engine used 5 attempts,
/// an initial delay of 0.05 s, factor 2 and a cap of 100 s. conveyor's
/// defaults are tuned for CPU-bound batch work, where a retry is usually
/// about a transient resource: 3 attempts, 10 ms, factor 2, a 1 s cap and no
/// jitter. Every error is retried unless [`retry_if`](RetryPolicyBuilder::retry_if)
/// says otherwise; panics are not retried unless
/// [`retry_panics`](RetryPolicyBuilder::retry_panics) says so, since a panic
/// usually means a bug that would only repeat.
///
/// Backoff never pins a pool thread and never runs other tasks on the
/// waiting task's stack: a task on a rayon pool that must wait goes into
/// its group's delayed list, its thread moves on to other tasks, and the
/// thread waiting for the step hands it back to the pool when it is due.
/// Inline tasks that must wait are put back in the step's queue and the
/// other inline tasks run first. A task on its own thread (thread per task,
/// a custom executor's job) waits on that thread, waking early on a cancel.
///
/// ```
/// use conveyor::RetryPolicy;
/// use std::time::Duration;
/// let policy = RetryPolicy::builder()
///     .max_attempts(4)
///     .backoff(0.01, 2.0, 0.05)
///     .build()?;
/// assert_eq!(policy.delay(1, None), Duration::from_millis(10));
/// assert_eq!(policy.delay(2, None), Duration::from_millis(20));
/// assert_eq!(policy.delay(3, None), Duration::from_millis(40));
/// assert!(RetryPolicy::builder().max_attempts(0).build().is_err());
/// # Ok::<(), conveyor::BuildError>(())
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial: Duration,
    factor: f64,
    max: Duration,
    jitter: f64,
    retry_panics: bool,
    predicate: Option<Arc<RetryPredicate>>,
}

impl RetryPolicy {
    /// One attempt, no retries: what a task gets when it sets no policy.
    #[must_use]
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Starts a policy from the defaults.
    #[must_use]
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: Self::default(),
            error: None,
        }
    }

    /// Starts a policy from this one, to change some of its settings.
    #[must_use]
    pub fn to_builder(&self) -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: self.clone(),
            error: None,
        }
    }

    /// Attempts in all, the first included.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether panics are retried.
    #[must_use]
    pub fn retries_panics(&self) -> bool {
        self.retry_panics
    }

    /// Whether `error` is worth another attempt under this policy.
    #[must_use]
    pub fn retries(&self, error: &TaskError) -> bool {
        self.predicate.as_ref().is_none_or(|p| p(error))
    }

    /// The wait after `failures` failed attempts (from 1). `seed` spreads
    /// the jitter; with `None` or no jitter the delay is exact.
    #[must_use]
    pub fn delay(&self, failures: u32, seed: Option<u64>) -> Duration {
        let exponent = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.initial.as_secs_f64() * self.factor.powi(exponent);
        let capped = base.min(self.max.as_secs_f64());
        let spread = match seed {
            Some(seed) if self.jitter > 0.0 => {
                // Map the seed to [-1, 1); splitmix64 scatters nearby seeds.
                let unit = (splitmix64(seed) >> 11) as f64 / (1u64 << 53) as f64;
                1.0 + self.jitter * (2.0 * unit - 1.0)
            }
            _ => 1.0,
        };
        Duration::try_from_secs_f64((capped * spread).max(0.0)).unwrap_or(self.max)
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Default for RetryPolicy {
    /// 3 attempts, 10 ms initial delay, factor 2, 1 s cap, no jitter, every
    /// error retried, panics not.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial: Duration::from_millis(10),
            factor: 2.0,
            max: Duration::from_secs(1),
            jitter: 0.0,
            retry_panics: false,
            predicate: None,
        }
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("initial", &self.initial)
            .field("factor", &self.factor)
            .field("max", &self.max)
            .field("jitter", &self.jitter)
            .field("retry_panics", &self.retry_panics)
            .field("predicate", &self.predicate.as_ref().map(|_| "<closure>"))
            .finish()
    }
}

/// Builds a [`RetryPolicy`]; see [`RetryPolicy::builder`].
#[derive(Debug)]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
    error: Option<BuildError>,
}

impl RetryPolicyBuilder {
    /// Attempts in all, the first included; at least 1.
    ///
    /// Default: 3.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        if attempts == 0 {
            self.fail(RetrySetting::MaxAttempts, "0", "at least 1 attempt");
        }
        self.policy.max_attempts = attempts;
        self
    }

    /// Delays in seconds: the first wait, the growth factor per attempt and
    /// the cap. All must be finite and not negative, and the factor at
    /// least 1.
    ///
    /// Default: 0.01, 2.0, 1.0.
    #[must_use]
    pub fn backoff(mut self, initial_secs: f64, factor: f64, max_secs: f64) -> Self {
        // `try_from_secs_f64` refuses what no `Duration` can hold (1e20 s),
        // which `from_secs_f64` would panic on.
        let secs = |v: f64| (v >= 0.0).then(|| Duration::try_from_secs_f64(v).ok()).flatten();
        match (secs(initial_secs), secs(max_secs)) {
            (None, _) => self.fail(
                RetrySetting::InitialBackoff,
                &initial_secs.to_string(),
                "finite seconds ≥ 0 that a Duration can hold",
            ),
            _ if !(factor.is_finite() && factor >= 1.0) => {
                self.fail(
                    RetrySetting::BackoffFactor,
                    &factor.to_string(),
                    "a finite factor ≥ 1",
                );
            }
            (_, None) => self.fail(
                RetrySetting::MaxBackoff,
                &max_secs.to_string(),
                "finite seconds ≥ 0 that a Duration can hold",
            ),
            (Some(initial), Some(max)) => {
                self.policy.initial = initial;
                self.policy.factor = factor;
                self.policy.max = max;
            }
        }
        self
    }

    /// Spreads each delay by ±`fraction` (0 to 1) so that tasks failing
    /// together do not retry in lockstep.
    ///
    /// Default: 0 (no jitter).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        if (0.0..=1.0).contains(&fraction) {
            self.policy.jitter = fraction;
        } else {
            self.fail(
                RetrySetting::Jitter,
                &fraction.to_string(),
                "a fraction from 0 to 1",
            );
        }
        self
    }

    /// Retries only errors for which `predicate` is true.
    ///
    /// Default: every error is retried.
    #[must_use]
    pub fn retry_if(mut self, predicate: impl Fn(&TaskError) -> bool + Send + Sync + 'static) -> Self {
        self.policy.predicate = Some(Arc::new(predicate));
        self
    }

    /// Whether a panicking attempt is retried.
    ///
    /// Default: `false`.
    #[must_use]
    pub fn retry_panics(mut self, retry: bool) -> Self {
        self.policy.retry_panics = retry;
        self
    }

    /// The policy.
    ///
    /// # Errors
    /// [`BuildError::InvalidRetry`] for the first bad setting: zero
    /// attempts, a negative, infinite or NaN delay or one too long for a
    /// `Duration`, a factor below 1, or a
    /// jitter outside 0 to 1.
    pub fn build(self) -> Result<RetryPolicy, BuildError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.policy),
        }
    }

    fn fail(&mut self, setting: RetrySetting, value: &str, expected: &'static str) {
        self.error.get_or_insert(BuildError::InvalidRetry {
            setting,
            value: value.to_owned(),
            expected,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap() {
        let p = RetryPolicy::builder().backoff(0.05, 2.0, 0.15).build().unwrap();
        let d: Vec<_> = (1..=4).map(|k| p.delay(k, None).as_millis()).collect();
        assert_eq!(d, vec![50, 100, 150, 150]);
    }

    #[test]
    fn jitter_stays_in_its_band() {
        let p = RetryPolicy::builder()
            .backoff(0.1, 1.0, 1.0)
            .jitter(0.5)
            .build()
            .unwrap();
        for seed in 0..200 {
            let ms = p.delay(1, Some(seed)).as_secs_f64() * 1000.0;
            assert!((50.0..=150.0).contains(&ms), "{ms}");
        }
        assert_ne!(p.delay(1, Some(1)), p.delay(1, Some(2)));
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for b in [
            RetryPolicy::builder().max_attempts(0),
            RetryPolicy::builder().backoff(-1.0, 2.0, 1.0),
            RetryPolicy::builder().backoff(f64::NAN, 2.0, 1.0),
            RetryPolicy::builder().backoff(0.1, f64::NAN, 1.0),
            RetryPolicy::builder().backoff(0.1, 0.5, 1.0),
            RetryPolicy::builder().backoff(0.1, 2.0, f64::INFINITY),
            RetryPolicy::builder().jitter(1.5),
        ] {
            assert!(matches!(b.build(), Err(BuildError::InvalidRetry { .. })));
        }
        let err = RetryPolicy::builder()
            .backoff(-1.0, 2.0, 1.0)
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "retry initial backoff -1 is invalid: expected finite seconds ≥ 0 that a Duration can hold"
        );
    }

    #[test]
    fn predicate_selects_errors() {
        let p = RetryPolicy::builder()
            .retry_if(|e| e.to_string().contains("transient"))
            .build()
            .unwrap();
        assert!(p.retries(&TaskError::msg("transient glitch")));
        assert!(!p.retries(&TaskError::msg("bad input")));
        assert!(RetryPolicy::default().retries(&TaskError::msg("anything")));
    }
}
