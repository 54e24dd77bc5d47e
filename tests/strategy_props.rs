//! Property tests: the evaluation strategies follow the rules of the
//! original engine (`reference/original-behaviour.md`) on any outcomes.

use conveyor::EvaluationStrategy;
use conveyor::strategy::{EvaluationResult, Tally};
use proptest::prelude::*;

fn outcomes() -> impl Strategy<Value = Vec<bool>> {
    prop::collection::vec(any::<bool>(), 0..64)
}

fn judge(strategy: &EvaluationStrategy, outcomes: &[bool]) -> EvaluationResult {
    strategy.evaluate(&Tally::new(outcomes))
}

proptest! {
    #[test]
    fn counts_add_up(o in outcomes()) {
        let r = judge(&EvaluationStrategy::AllMustSucceed, &o);
        prop_assert_eq!(r.total, o.len());
        prop_assert_eq!(r.succeeded + r.failed, r.total);
        prop_assert_eq!(r.succeeded, o.iter().filter(|b| **b).count());
        prop_assert!(r.rate >= 0.0 && r.rate <= 1.0);
        prop_assert_eq!(r.partial, r.success && r.failed > 0);
    }

    #[test]
    fn all_must_succeed(o in outcomes()) {
        prop_assert_eq!(judge(&EvaluationStrategy::AllMustSucceed, &o).success, !o.is_empty() && o.iter().all(|b| *b));
    }

    #[test]
    fn any_must_succeed(o in outcomes()) {
        prop_assert_eq!(judge(&EvaluationStrategy::AnyMustSucceed, &o).success, o.iter().any(|b| *b));
    }

    #[test]
    fn majority_with_tie_breaker(o in outcomes(), tie in any::<bool>()) {
        let s = o.iter().filter(|b| **b).count();
        let expected = if o.is_empty() {
            false
        } else if 2 * s == o.len() {
            tie
        } else {
            2 * s > o.len()
        };
        let r = judge(&EvaluationStrategy::MajorityMustSucceed { tie_breaker: tie }, &o);
        prop_assert_eq!(r.success, expected);
    }

    #[test]
    fn at_least_n(o in outcomes(), n in 0usize..70) {
        let s = o.iter().filter(|b| **b).count();
        let r = judge(&EvaluationStrategy::AtLeast(n), &o);
        prop_assert_eq!(r.success, s >= n);
        if o.is_empty() {
            prop_assert_eq!(r.success, n == 0);
        }
    }

    #[test]
    fn at_least_percent(o in outcomes(), p in 0.0f64..=100.0) {
        let s = o.iter().filter(|b| **b).count();
        let r = judge(&EvaluationStrategy::at_least_percent(p).unwrap(), &o);
        let expected = if o.is_empty() { p == 0.0 } else { 100.0 * s as f64 / o.len() as f64 >= p };
        prop_assert_eq!(r.success, expected);
    }

    #[test]
    fn percent_outside_the_range_is_refused(p in prop_oneof![-1e9f64..-1e-9, 100.000_001f64..1e9]) {
        prop_assert!(EvaluationStrategy::at_least_percent(p).is_err());
    }

    #[test]
    fn no_failures(o in outcomes()) {
        prop_assert_eq!(judge(&EvaluationStrategy::NoFailures, &o).success, o.iter().all(|b| *b));
    }

    #[test]
    fn errors_never_count_as_successes(n in 1usize..64) {
        // The original counted error results as results; every strategy
        // but the custom one must fail a step where everything failed and
        // at least one success was needed.
        let o = vec![false; n];
        for s in [
            EvaluationStrategy::AllMustSucceed,
            EvaluationStrategy::AnyMustSucceed,
            EvaluationStrategy::majority(),
            EvaluationStrategy::AtLeast(1),
            EvaluationStrategy::NoFailures,
        ] {
            prop_assert!(!judge(&s, &o).success, "{}", s.name());
        }
    }
}
