//! The parse tree: what a text says, with the position of every name.

use std::borrow::Cow;

use super::error::Pos;
use crate::model::strategy::EvaluationStrategy;

/// A whole text: its root chain. Directives are checked and dropped, as
/// they have no effect in conveyor (pointy.md, 7.8).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document<'a> {
    pub(crate) chain: Chain<'a>,
    /// How many stages and tasks the text holds, so that building can
    /// size its tables once.
    pub(crate) stages: usize,
    pub(crate) tasks: usize,
}

/// Stages joined by links.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chain<'a> {
    /// One or more.
    pub(crate) stages: Vec<Stage<'a>>,
    /// The link before each stage but the first: `links[i]` joins
    /// `stages[i]` and `stages[i + 1]`.
    pub(crate) links: Vec<Link>,
}

/// `->` or `|->`: they build the same pipeline, and the tree remembers
/// which was written (pointy.md, 7.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Arrow,
    Pipe,
}

/// Tasks joined by `||`, which become one step, and the stage's branches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stage<'a> {
    /// One or more, in written order.
    pub(crate) tasks: Vec<TaskNode<'a>>,
    /// The step's strategy, when an option sets it.
    pub(crate) strategy: Option<Strategy>,
    /// In written order; descriptors are distinct.
    pub(crate) branches: Vec<Branch<'a>>,
}

/// One occurrence of a name, with its options and retry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskNode<'a> {
    pub(crate) name: &'a str,
    pub(crate) pos: Pos,
    /// Attempts in all: `Some(n)` with n ≥ 2 from a retry, `Some(1)` for
    /// `retry_attempts` 0 or 1 (exactly once), `None` when the text says
    /// nothing.
    pub(crate) attempts: Option<u32>,
    pub(crate) executor: Option<Cow<'a, str>>,
}

/// `d link chain` inside a branch list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Branch<'a> {
    /// 0 (failure), 1 (success) or a switch target 2 to 9.
    pub(crate) descriptor: u8,
    pub(crate) link: Link,
    pub(crate) chain: Chain<'a>,
}

/// The strategies pointy can name (pointy.md, 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    All,
    Any,
    Majority,
    NoFailures,
}

impl Strategy {
    /// The strategy a `result_evaluation_strategy` value names, any case.
    pub(crate) fn from_option(value: &str) -> Option<Self> {
        [
            ("ALL_MUST_SUCCEED", Self::All),
            ("ANY_MUST_SUCCEED", Self::Any),
            ("MAJORITY_MUST_SUCCEED", Self::Majority),
            ("NO_FAILURES_ALLOWED", Self::NoFailures),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, s)| s)
    }

    /// The value a text writes for this strategy.
    pub(crate) fn option_value(self) -> &'static str {
        match self {
            Self::All => "ALL_MUST_SUCCEED",
            Self::Any => "ANY_MUST_SUCCEED",
            Self::Majority => "MAJORITY_MUST_SUCCEED",
            Self::NoFailures => "NO_FAILURES_ALLOWED",
        }
    }

    /// The conveyor strategy.
    pub(crate) fn evaluation(self) -> EvaluationStrategy {
        match self {
            Self::All => EvaluationStrategy::AllMustSucceed,
            Self::Any => EvaluationStrategy::AnyMustSucceed,
            Self::Majority => EvaluationStrategy::majority(),
            Self::NoFailures => EvaluationStrategy::NoFailures,
        }
    }

    /// The pointy name of a conveyor strategy, if it has one.
    pub(crate) fn of(strategy: &EvaluationStrategy) -> Option<Self> {
        match strategy {
            EvaluationStrategy::AllMustSucceed => Some(Self::All),
            EvaluationStrategy::AnyMustSucceed => Some(Self::Any),
            EvaluationStrategy::MajorityMustSucceed { tie_breaker: true } => Some(Self::Majority),
            EvaluationStrategy::NoFailures => Some(Self::NoFailures),
            _ => None,
        }
    }
}
