//! pointy: pipelines written as text, `Load * 3 -> Check (0 -> Fix, 1 -> Go) -> Done`.
//!
//! pointy is the arrow language in which the Python original described its
//! pipelines. [`parse`] (or [`Pipeline::parse`]) reads a text, asks a
//! [`TaskSource`] for the task behind each name, and builds the same
//! [`Pipeline`] the builder would, through the builder's public API. A
//! text that breaks the rules gets a [`PointyError`] with a line, a
//! column and the spec's exact message. The contract is
//! `pointy.md` (in the project's shared reference folder); in short:
//!
//! | text | builds |
//! |---|---|
//! | `A -> B`, `A \|-> B` | two steps; `A` [`then`](crate::Step::then) `B` (`\|->` builds the same) |
//! | `A \|\| B` | one step running `A` and `B` in parallel, named `A\|B` |
//! | `A * 3`, `3 * A`, `A[retry_attempts=3]` | `A` gets 3 attempts in all |
//! | `A (0 -> F, 1 -> S, 2 -> W)` | branches: on failure, on success, on switch target 2 |
//! | `A (…) -> D` | `D` is `A`'s [`sink`](crate::Step::sink): it runs after whichever branch ran |
//! | `A[executor="io"]` | `A` runs on the executor registered as `io` |
//! | `A[result_evaluation_strategy="ANY_MUST_SUCCEED"]` | the step's [`EvaluationStrategy`](crate::EvaluationStrategy) |
//! | `A -> B -> A` | a repeated name is a task of its own each time: `A`, `B`, `A#2` |
//! | `# …`, `@mode: CFG`, `@recursive-depth: 100` | comments; directives, checked and without effect |
//!
//! ```
//! use conveyor::pointy::{self, TaskRegistry};
//! use conveyor::{Pipeline, Task};
//!
//! let tasks: TaskRegistry<i64> = ["Load", "Check", "Fix", "Go", "Done"]
//!     .into_iter()
//!     .map(|name| Task::from_fn(name, |c| Ok(*c.input())))
//!     .collect();
//! let pipeline = Pipeline::parse("Load * 3 -> Check (0 -> Fix, 1 -> Go) -> Done", &tasks)?;
//! assert_eq!(
//!     pointy::outline(&pipeline),
//!     "Load*3 ; then=Check\n\
//!      Check ; then=Done ok=Go fail=Fix sink=Done\n\
//!      Fix\n\
//!      Go\n\
//!      Done\n"
//! );
//!
//! let err = Pipeline::parse("Load -> Nope", &tasks).unwrap_err();
//! assert_eq!(err.to_string(), "1:9: unknown task `Nope`");
//! # Ok::<(), pointy::PointyError>(())
//! ```
//!
//! # Why a hand-written parser
//! The grammar is a dozen rules with one token of lookahead, and the spec
//! fixes, for every error, its position, its wording and the exact set of
//! tokens that were expected, in a fixed order. A recursive-descent parser
//! states each expected set where the grammar has it, reads a token only
//! when the grammar needs it (so the first error met left to right is the
//! one reported), and makes the spec's checks as their tokens are read. A
//! combinator crate (winnow) or a lexer generator (logos) would add a
//! dependency and still need that work done by hand to get the messages
//! right. Nesting is capped at 64 branch lists, so no text can overflow the
//! stack; no input panics.
//!
//! The parse tree keeps every name's position, so that a name the task
//! source does not know is reported where it stands.

mod ast;
mod build;
mod error;
mod lexer;
mod parser;
mod print;
mod source;
#[cfg(test)]
mod tests;
mod token;

use std::sync::Arc;

pub use error::{ErrorKind, PointyError};
pub use print::{PrintError, outline, to_text};
pub use source::{TaskRegistry, TaskSource};
pub use token::{Expected, Found, TokenClass};

use crate::model::pipeline::Pipeline;

/// The name [`parse`] gives its pipelines: a text has none.
pub const DEFAULT_NAME: &str = "pointy";

/// Parses `text` and builds its pipeline, named [`DEFAULT_NAME`], with the
/// tasks `tasks` gives for its names.
///
/// A byte-order mark at the very start is skipped; line ends may be LF or
/// CRLF.
///
/// ```
/// use conveyor::{pointy, Task};
///
/// let tasks = |name: &str| Some(Task::from_fn(name, |c| Ok(*c.input() + 1)));
/// let pipeline = pointy::parse::<u32, _>("A -> B || C", &tasks)?;
/// assert_eq!(pipeline.steps()[1].name(), "B|C");
/// # Ok::<(), pointy::PointyError>(())
/// ```
///
/// # Errors
/// A [`PointyError`] for the first thing wrong, left to right: a character
/// or token the grammar does not allow there, a failed check (retry
/// counts, descriptors, options, directives, nesting), or a name `tasks`
/// does not know.
pub fn parse<T, S>(text: &str, tasks: &S) -> Result<Pipeline<T>, PointyError>
where
    S: TaskSource<T> + ?Sized,
{
    parse_named(DEFAULT_NAME, text, tasks)
}

/// [`parse`], naming the pipeline `name`.
///
/// # Errors
/// As [`parse`]; and [`ErrorKind::Build`], at 1:1, when `name` is empty.
pub fn parse_named<T, S>(name: impl Into<Arc<str>>, text: &str, tasks: &S) -> Result<Pipeline<T>, PointyError>
where
    S: TaskSource<T> + ?Sized,
{
    let text = without_bom(text);
    let doc = parser::parse(text).map_err(|(kind, pos)| PointyError::new(kind, pos, text))?;
    build::build(name.into(), &doc, tasks).map_err(|(kind, pos)| PointyError::new(kind, pos, text))
}

/// Checks `text` without building anything: what [`parse`] checks, except
/// whether the task source knows the names. For editors and linters.
///
/// ```
/// use conveyor::pointy;
///
/// assert!(pointy::check("A -> B (0 -> C)").is_ok());
/// let err = pointy::check("A -> B (0 -> C, 0 -> D)").unwrap_err();
/// assert_eq!(err.to_string(), "1:17: duplicate descriptor 0 in this branch list");
/// ```
///
/// # Errors
/// As [`parse`], except for unknown task names.
pub fn check(text: &str) -> Result<(), PointyError> {
    let text = without_bom(text);
    match parser::parse(text) {
        Ok(_) => Ok(()),
        Err((kind, pos)) => Err(PointyError::new(kind, pos, text)),
    }
}

/// `text` without the one byte-order mark it may start with, which takes
/// no column (pointy.md, 3.1).
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

impl<T> Pipeline<T> {
    /// Builds the pipeline a pointy text describes, with the tasks `tasks`
    /// gives for its names; see the [`pointy`](crate::pointy) module.
    ///
    /// ```
    /// use conveyor::pointy::TaskRegistry;
    /// use conveyor::{Pipeline, Task};
    ///
    /// let tasks: TaskRegistry<u64> = TaskRegistry::new()
    ///     .with(Task::from_fn("Fetch", |c| Ok(*c.input())))
    ///     .with(Task::from_fn("Store", |c| Ok(*c.input())));
    /// let pipeline = Pipeline::parse("Fetch * 3 -> Store", &tasks)?;
    /// assert_eq!(pipeline.steps()[0].then_step(), Some("Store"));
    /// # Ok::<(), conveyor::pointy::PointyError>(())
    /// ```
    ///
    /// # Errors
    /// As [`pointy::parse`](parse).
    pub fn parse<S>(text: &str, tasks: &S) -> Result<Self, PointyError>
    where
        S: TaskSource<T> + ?Sized,
    {
        parse(text, tasks)
    }
}
