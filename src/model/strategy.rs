//! Deciding whether a step succeeded.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::BuildError;

/// The task outcomes of one step, as an evaluation strategy sees them.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Tally<'a> {
    /// Whether each task succeeded, in declaration order.
    pub outcomes: &'a [bool],
    /// Number of tasks.
    pub total: usize,
    /// Number of tasks that succeeded.
    pub succeeded: usize,
    /// Number of tasks that failed (errors, panics, cancels, timeouts).
    pub failed: usize,
}

impl<'a> Tally<'a> {
    /// Counts the outcomes.
    #[must_use]
    pub fn new(outcomes: &'a [bool]) -> Self {
        let succeeded = outcomes.iter().filter(|ok| **ok).count();
        Self {
            outcomes,
            total: outcomes.len(),
            succeeded,
            failed: outcomes.len() - succeeded,
        }
    }
}

type Rule = dyn Fn(&Tally<'_>) -> bool + Send + Sync;

/// A user-supplied evaluation rule with a name for reports.
#[derive(Clone)]
pub struct CustomRule {
    name: Arc<str>,
    rule: Arc<Rule>,
}

impl CustomRule {
    /// Wraps `rule` under `name`.
    pub fn new(name: impl Into<Arc<str>>, rule: impl Fn(&Tally<'_>) -> bool + Send + Sync + 'static) -> Self {
        Self {
            name: name.into(),
            rule: Arc::new(rule),
        }
    }

    /// The rule's name, as reports show it.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for CustomRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomRule")
            .field("name", &self.name)
            .field("rule", &"<closure>")
            .finish()
    }
}

/// How a step's task outcomes decide whether the step succeeded.
///
/// | strategy | succeeds when | empty step |
/// |---|---|---|
/// | [`AllMustSucceed`](Self::AllMustSucceed) (default) | every task succeeded | fails |
/// | [`AnyMustSucceed`](Self::AnyMustSucceed) | at least one succeeded | fails |
/// | [`MajorityMustSucceed`](Self::MajorityMustSucceed) | more than half succeeded; exactly half gives the tie breaker | fails |
/// | [`AtLeast`](Self::AtLeast) | successes ≥ n | succeeds only when n = 0 |
/// | [`AtLeastPercent`](Self::AtLeastPercent) | 100 × successes / total ≥ p | succeeds only when p = 0 |
/// | [`NoFailures`](Self::NoFailures) | no task failed | succeeds |
/// | [`Custom`](Self::Custom) | the rule says so | the rule says so |
///
/// ```
/// use conveyor::EvaluationStrategy;
/// use conveyor::strategy::Tally;
/// let outcomes = [true, false, true];
/// let result = EvaluationStrategy::MajorityMustSucceed { tie_breaker: true }
///     .evaluate(&Tally::new(&outcomes));
/// assert!(result.success && result.partial);
/// assert_eq!((result.total, result.succeeded, result.failed), (3, 2, 1));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum EvaluationStrategy {
    /// Every task must succeed.
    #[default]
    AllMustSucceed,
    /// At least one task must succeed.
    AnyMustSucceed,
    /// More than half must succeed; exactly half gives `tie_breaker`.
    MajorityMustSucceed {
        /// The verdict when exactly half succeeded (the original's default
        /// was `true`).
        tie_breaker: bool,
    },
    /// At least this many tasks must succeed.
    AtLeast(usize),
    /// At least this percentage (0 to 100) of the tasks must succeed.
    AtLeastPercent(f64),
    /// No task may fail.
    NoFailures,
    /// A rule of the user's own.
    Custom(CustomRule),
}

impl EvaluationStrategy {
    /// More than half must succeed, with the original's tie breaker (`true`).
    #[must_use]
    pub const fn majority() -> Self {
        Self::MajorityMustSucceed { tie_breaker: true }
    }

    /// At least `percent` percent of the tasks must succeed.
    ///
    /// # Errors
    /// [`BuildError::InvalidThreshold`] when `percent` is not a number
    /// between 0 and 100.
    pub fn at_least_percent(percent: f64) -> Result<Self, BuildError> {
        let s = Self::AtLeastPercent(percent);
        s.validate()?;
        Ok(s)
    }

    /// A rule of the user's own, named for reports.
    pub fn custom(
        name: impl Into<Arc<str>>,
        rule: impl Fn(&Tally<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self::Custom(CustomRule::new(name, rule))
    }

    /// Checks the strategy's parameters.
    ///
    /// # Errors
    /// [`BuildError::InvalidThreshold`] for a percentage outside 0 to 100
    /// or one that is not a number.
    pub fn validate(&self) -> Result<(), BuildError> {
        match self {
            Self::AtLeastPercent(p) if !(0.0..=100.0).contains(p) => Err(BuildError::InvalidThreshold {
                strategy: "at_least_percent",
                value: p.to_string(),
                expected: "a percentage from 0 to 100",
                step: None,
            }),
            _ => Ok(()),
        }
    }

    /// The strategy's name, as reports show it.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Custom(rule) => rule.name(),
            builtin => builtin.static_name(),
        }
    }

    fn static_name(&self) -> &'static str {
        match self {
            Self::AllMustSucceed => "all_must_succeed",
            Self::AnyMustSucceed => "any_must_succeed",
            Self::MajorityMustSucceed { .. } => "majority_must_succeed",
            Self::AtLeast(_) => "at_least",
            Self::AtLeastPercent(_) => "at_least_percent",
            Self::NoFailures => "no_failures",
            Self::Custom(_) => "custom",
        }
    }

    /// Judges a step's outcomes.
    #[must_use]
    pub fn evaluate(&self, tally: &Tally<'_>) -> EvaluationResult {
        let Tally {
            total,
            succeeded,
            failed,
            ..
        } = *tally;
        let empty = total == 0;
        let success = match self {
            Self::AllMustSucceed => !empty && failed == 0,
            Self::AnyMustSucceed => succeeded > 0,
            Self::MajorityMustSucceed { tie_breaker } => {
                !empty && (succeeded * 2 > total || (succeeded * 2 == total && *tie_breaker))
            }
            Self::AtLeast(n) => succeeded >= *n,
            Self::AtLeastPercent(p) => {
                // `validate` keeps p in range; NaN compares false and fails.
                if empty {
                    *p == 0.0
                } else {
                    100.0 * succeeded as f64 / total as f64 >= *p
                }
            }
            Self::NoFailures => failed == 0,
            Self::Custom(rule) => (rule.rule)(tally),
        };
        EvaluationResult {
            success,
            total,
            succeeded,
            failed,
            strategy: match self {
                Self::Custom(rule) => Cow::Owned(rule.name().to_owned()),
                builtin => Cow::Borrowed(builtin.static_name()),
            },
            rate: if empty {
                0.0
            } else {
                succeeded as f64 / total as f64
            },
            partial: success && failed > 0,
        }
    }
}

/// The original engine's four-valued setting, mapped onto the strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LegacyPolicy {
    /// Success only when every task succeeded.
    SuccessOnAllEventsSuccess,
    /// Success when any task succeeded.
    SuccessForPartialSuccess,
    /// Failure as soon as any task failed.
    FailureForPartialError,
    /// Failure only when every task failed.
    FailureForAllEventsFailure,
}

impl From<LegacyPolicy> for EvaluationStrategy {
    fn from(policy: LegacyPolicy) -> Self {
        match policy {
            LegacyPolicy::SuccessOnAllEventsSuccess => Self::AllMustSucceed,
            LegacyPolicy::SuccessForPartialSuccess | LegacyPolicy::FailureForAllEventsFailure => {
                Self::AnyMustSucceed
            }
            LegacyPolicy::FailureForPartialError => Self::NoFailures,
        }
    }
}

/// What a strategy decided about one step, with the counts behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EvaluationResult {
    /// Whether the step succeeded.
    pub success: bool,
    /// Number of tasks.
    pub total: usize,
    /// Number that succeeded.
    pub succeeded: usize,
    /// Number that failed.
    pub failed: usize,
    /// Name of the strategy that decided. Borrowed for the built-in
    /// strategies, so judging a step allocates nothing.
    pub strategy: Cow<'static, str>,
    /// `succeeded / total`, or 0 for an empty step.
    pub rate: f64,
    /// Succeeded although some tasks failed.
    pub partial: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &EvaluationStrategy, outcomes: &[bool]) -> bool {
        s.evaluate(&Tally::new(outcomes)).success
    }

    #[test]
    fn empty_step_follows_the_table() {
        use EvaluationStrategy as S;
        assert!(!eval(&S::AllMustSucceed, &[]));
        assert!(!eval(&S::AnyMustSucceed, &[]));
        assert!(!eval(&S::majority(), &[]));
        assert!(eval(&S::AtLeast(0), &[]));
        assert!(!eval(&S::AtLeast(1), &[]));
        assert!(eval(&S::AtLeastPercent(0.0), &[]));
        assert!(!eval(&S::AtLeastPercent(10.0), &[]));
        assert!(eval(&S::NoFailures, &[]));
    }

    #[test]
    fn majority_tie_uses_the_breaker() {
        let half = [true, false];
        assert!(eval(
            &EvaluationStrategy::MajorityMustSucceed { tie_breaker: true },
            &half
        ));
        assert!(!eval(
            &EvaluationStrategy::MajorityMustSucceed { tie_breaker: false },
            &half
        ));
    }

    #[test]
    fn percent_threshold_is_inclusive_and_checked() {
        let s = EvaluationStrategy::at_least_percent(50.0).unwrap();
        assert!(eval(&s, &[true, false]));
        assert!(!eval(&s, &[true, false, false]));
        for bad in [-1.0, 100.5, f64::NAN] {
            let err = EvaluationStrategy::at_least_percent(bad).unwrap_err();
            assert!(matches!(err, BuildError::InvalidThreshold { .. }), "{bad}");
        }
    }

    #[test]
    fn failures_are_not_counted_as_results() {
        // The original counted error results as results, so "any" passed
        // whenever anything ran.
        assert!(!eval(&EvaluationStrategy::AnyMustSucceed, &[false, false]));
    }

    #[test]
    fn custom_rule_sees_the_outcomes() {
        let s = EvaluationStrategy::custom("first wins", |t| t.outcomes.first() == Some(&true));
        assert!(eval(&s, &[true, false]));
        assert!(!eval(&s, &[false, true]));
        assert_eq!(s.name(), "first wins");
    }

    #[test]
    fn legacy_policies_map_onto_strategies() {
        let s = EvaluationStrategy::from(LegacyPolicy::FailureForPartialError);
        assert!(!eval(&s, &[true, false]));
        let s = EvaluationStrategy::from(LegacyPolicy::FailureForAllEventsFailure);
        assert!(eval(&s, &[true, false]));
        assert!(!eval(&s, &[false, false]));
    }

    #[test]
    fn result_reports_rate_and_partial() {
        let r = EvaluationStrategy::AnyMustSucceed.evaluate(&Tally::new(&[true, false, false, false]));
        assert!(r.success && r.partial);
        assert!((r.rate - 0.25).abs() < 1e-12);
        assert_eq!(r.strategy, "any_must_succeed");
    }
}
