//! The parser's error: a position, a kind, and the line to point into.

use std::fmt;

use super::token::{Expected, Found, Shown};
use crate::error::BuildError;

/// What went wrong; its `Display` is the spec's message, without the
/// position.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The next token is not one the grammar allows there.
    #[error("expected {expected}, found {found}")]
    Syntax {
        /// The token classes allowed at that point.
        expected: Expected,
        /// The token found instead.
        found: Found,
    },
    /// A character that starts no token.
    #[error("unexpected character `{}`", Shown(*.0))]
    UnexpectedCharacter(char),
    /// A string without its closing quote on the same line.
    #[error("unterminated string")]
    UnterminatedString,
    /// A backslash in a string followed by a character that is no escape.
    #[error("unknown escape `\\{}`", Shown(*.0))]
    UnknownEscape(char),
    /// A number that is cut short or runs into a letter, digit, `_` or `.`.
    #[error("invalid number")]
    InvalidNumber,
    /// An `@` not followed by a letter.
    #[error("expected a directive name after `@`")]
    MissingDirectiveName,
    /// A number followed by a link where a task starts (check C1).
    #[error("a descriptor is only allowed at the start of a branch")]
    MisplacedDescriptor,
    /// A retry count that is not a whole number from 2 up (check C2).
    #[error("retry count must be a whole number from 2 to 4294967295")]
    InvalidRetryCount,
    /// A second retry for one task (check C3).
    #[error("retry given twice for task `{task}`")]
    RetryGivenTwice {
        /// The task's name, as written.
        task: String,
    },
    /// A descriptor that is not a single digit (check C4).
    #[error("descriptor must be a single digit from 0 to 9")]
    InvalidDescriptor,
    /// A descriptor used twice in one branch list (check C5).
    #[error("duplicate descriptor {0} in this branch list")]
    DuplicateDescriptor(u8),
    /// Branch lists nested more than 64 deep (check C6).
    #[error("branches nested more than 64 levels deep")]
    TooDeep,
    /// An option the original knew and conveyor cannot honour (check O1).
    #[error("option `{key}` is not supported by conveyor")]
    UnsupportedOption {
        /// The option's key.
        key: String,
    },
    /// An option no version knew (check O1).
    #[error("unknown option `{key}`")]
    UnknownOption {
        /// The option's key.
        key: String,
    },
    /// An option given twice in one list (check O2).
    #[error("option `{key}` given twice")]
    OptionGivenTwice {
        /// The option's key.
        key: String,
    },
    /// `executor` given something other than a string (check O3).
    #[error("option `executor` must be a string")]
    ExecutorNotString,
    /// `executor` given an empty string (check O3).
    #[error("option `executor` must not be empty")]
    EmptyExecutor,
    /// `retry_attempts` given something other than a whole number in range
    /// (check O3).
    #[error("option `retry_attempts` must be a whole number from 0 to 4294967295")]
    InvalidRetryAttempts,
    /// `result_evaluation_strategy` given something other than a string
    /// (check O3).
    #[error("option `result_evaluation_strategy` must be a string")]
    StrategyNotString,
    /// `result_evaluation_strategy` naming no strategy (check O3).
    #[error("unknown result_evaluation_strategy `{value}`")]
    UnknownStrategy {
        /// The string's content.
        value: String,
    },
    /// Two tasks of one step asking for different strategies (check O4).
    #[error("conflicting result_evaluation_strategy in one step")]
    ConflictingStrategy,
    /// A directive other than `@recursive-depth` and `@mode` (check D1).
    #[error("unknown directive `{name}`")]
    UnknownDirective {
        /// The directive, `@` included.
        name: String,
    },
    /// A directive given twice (check D2).
    #[error("directive `{name}` given twice")]
    DirectiveGivenTwice {
        /// The directive, `@` included.
        name: String,
    },
    /// `@mode` given something other than CFG or DAG (check D3).
    #[error("`@mode` must be CFG or DAG")]
    InvalidMode,
    /// `@recursive-depth` given something other than a whole number from 1
    /// up (check D4).
    #[error("`@recursive-depth` must be a whole number from 1 to 4294967295")]
    InvalidRecursiveDepth,
    /// A name the task source does not know (pointy.md, 6.5).
    #[error("unknown task `{name}`")]
    UnknownTask {
        /// The name, as written.
        name: String,
    },
    /// [`PipelineBuilder::build`](crate::PipelineBuilder::build) refused
    /// the pipeline (reported at 1:1), or
    /// [`RetryPolicyBuilder::build`](crate::RetryPolicyBuilder::build) a
    /// task's policy (at the task); the cause is the error's
    /// [`source`](std::error::Error::source). The parser builds only
    /// pipelines and policies that pass, so this means an empty pipeline
    /// name or a bug in the parser, not a bad text.
    #[error("the pipeline could not be built")]
    Build(#[source] Box<BuildError>),
}

/// A position in a text: line and column, both from 1, the column counted
/// in characters (pointy.md, 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Pos {
    pub(crate) const START: Self = Self { line: 1, column: 1 };
}

/// Why a pointy text was refused: where, and what was wrong.
///
/// `Display` gives the spec's one line, `LINE:COLUMN: MESSAGE`. The
/// alternate form (`{:#}`) adds the offending line with a caret under the
/// column, as rustc does:
///
/// ```
/// use conveyor::{Pipeline, Task};
///
/// let tasks = |name: &str| Some(Task::from_fn(name, |c| Ok(*c.input())));
/// let err = Pipeline::<u8>::parse("A -> B C", &tasks).unwrap_err();
/// assert_eq!((err.line(), err.column()), (1, 8));
/// assert_eq!(
///     err.to_string(),
///     "1:8: expected `->`, `|->`, `||`, `*`, `(`, `[` or end of input, found name `C`"
/// );
/// assert_eq!(
///     format!("{err:#}").lines().skip(1).collect::<Vec<_>>(),
///     ["  |", "1 | A -> B C", "  |        ^"]
/// );
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PointyError {
    pos: Pos,
    kind: ErrorKind,
    /// The text of the offending line, kept for the caret rendering.
    source_line: Box<str>,
}

impl PointyError {
    /// An error at `pos` of `text` (a text without its byte-order mark).
    pub(crate) fn new(kind: ErrorKind, pos: Pos, text: &str) -> Self {
        let line = text.split('\n').nth(pos.line.saturating_sub(1)).unwrap_or("");
        Self {
            pos,
            kind,
            source_line: line.strip_suffix('\r').unwrap_or(line).into(),
        }
    }

    /// The line, from 1.
    #[must_use]
    pub fn line(&self) -> usize {
        self.pos.line
    }

    /// The column, from 1, in characters (Unicode scalar values).
    #[must_use]
    pub fn column(&self) -> usize {
        self.pos.column
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The token classes the grammar allowed, for a syntax error.
    #[must_use]
    pub fn expected(&self) -> Option<Expected> {
        match &self.kind {
            ErrorKind::Syntax { expected, .. } => Some(*expected),
            _ => None,
        }
    }

    /// The text of the offending line, without its line end.
    #[must_use]
    pub fn source_line(&self) -> &str {
        &self.source_line
    }
}

// Written by hand rather than by thiserror: its generated `Display` would
// drop the `{:#}` flag that asks for the caret rendering.
impl fmt::Display for PointyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self;
        write!(f, "{}:{}: {}", e.pos.line, e.pos.column, e.kind)?;
        if !f.alternate() {
            return Ok(());
        }
        let number = e.pos.line.to_string();
        let gutter = " ".repeat(number.len());
        // Control characters would garble a terminal; a tab is kept so the
        // caret line, which copies it, stays aligned.
        let shown: String = e
            .source_line
            .chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect();
        let pad: String = e
            .source_line
            .chars()
            .take(e.pos.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        // A column past the line's end (end of input) still gets its caret.
        let missing = e
            .pos
            .column
            .saturating_sub(1)
            .saturating_sub(e.source_line.chars().count());
        write!(
            f,
            "\n{gutter} |\n{number} | {shown}\n{gutter} | {pad}{}^",
            " ".repeat(missing)
        )
    }
}

impl std::error::Error for PointyError {
    /// The kind's cause: the [`BuildError`] of [`ErrorKind::Build`]. The
    /// kind's own message is already part of this error's.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}
