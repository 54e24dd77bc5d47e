//! The parser's error: a position, a kind, and the line to point into.

use std::fmt;

use crate::error::PipelineError;

/// A class of token, as error messages name it (pointy.md, 6.2).
///
/// The variants are in the spec's fixed order, which is the order in which
/// an [`Expected`] set lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TokenClass {
    /// `@name`.
    Directive,
    /// A task name or an option key.
    Name,
    /// A number, signed or not, with or without a fraction or exponent.
    Number,
    /// A double-quoted string.
    String,
    /// The keyword `true`.
    True,
    /// The keyword `false`.
    False,
    /// `->`.
    Arrow,
    /// `|->`.
    PipeArrow,
    /// `||`.
    Parallel,
    /// `*`.
    Star,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `[`.
    LBracket,
    /// `]`.
    RBracket,
    /// `,`.
    Comma,
    /// `=`.
    Equals,
    /// `:`.
    Colon,
    /// The end of the text.
    End,
}

impl TokenClass {
    /// Every class, in the spec's order.
    pub const ALL: [Self; 18] = [
        Self::Directive,
        Self::Name,
        Self::Number,
        Self::String,
        Self::True,
        Self::False,
        Self::Arrow,
        Self::PipeArrow,
        Self::Parallel,
        Self::Star,
        Self::LParen,
        Self::RParen,
        Self::LBracket,
        Self::RBracket,
        Self::Comma,
        Self::Equals,
        Self::Colon,
        Self::End,
    ];

    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl fmt::Display for TokenClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Directive => "directive",
            Self::Name => "name",
            Self::Number => "number",
            Self::String => "string",
            Self::True => "`true`",
            Self::False => "`false`",
            Self::Arrow => "`->`",
            Self::PipeArrow => "`|->`",
            Self::Parallel => "`||`",
            Self::Star => "`*`",
            Self::LParen => "`(`",
            Self::RParen => "`)`",
            Self::LBracket => "`[`",
            Self::RBracket => "`]`",
            Self::Comma => "`,`",
            Self::Equals => "`=`",
            Self::Colon => "`:`",
            Self::End => "end of input",
        })
    }
}

/// The set of token classes the grammar allowed where a syntax error was
/// found. Displayed in the spec's order: `` name, number or `(` ``.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Expected(u32);

impl Expected {
    /// The empty set.
    pub const NONE: Self = Self(0);

    /// The set holding only `class`.
    #[must_use]
    pub const fn only(class: TokenClass) -> Self {
        Self(class.bit())
    }

    /// This set and `class`.
    #[must_use]
    pub const fn with(self, class: TokenClass) -> Self {
        Self(self.0 | class.bit())
    }

    /// This set and `other`.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `class` is in the set.
    #[must_use]
    pub const fn contains(self, class: TokenClass) -> bool {
        self.0 & class.bit() != 0
    }

    /// How many classes the set holds.
    #[must_use]
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The classes in the set, in the spec's order.
    pub fn iter(self) -> impl Iterator<Item = TokenClass> {
        TokenClass::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

impl fmt::Debug for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.len();
        for (i, class) in self.iter().enumerate() {
            match i {
                0 => {}
                _ if i + 1 == n => f.write_str(" or ")?,
                _ => f.write_str(", ")?,
            }
            write!(f, "{class}")?;
        }
        Ok(())
    }
}

/// The token a syntax error found: its class and, for names, numbers and
/// directives, how it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    class: TokenClass,
    spelling: Option<Box<str>>,
}

impl Found {
    pub(crate) fn new(class: TokenClass, spelling: Option<&str>) -> Self {
        Self {
            class,
            spelling: spelling.map(Box::from),
        }
    }

    /// The token's class.
    #[must_use]
    pub fn class(&self) -> TokenClass {
        self.class
    }

    /// The token as written, for a name, a number or a directive.
    #[must_use]
    pub fn spelling(&self) -> Option<&str> {
        self.spelling.as_deref()
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.spelling {
            Some(text) => write!(f, "{} `{text}`", self.class),
            None => write!(f, "{}", self.class),
        }
    }
}

/// A character as messages show it: itself when it is printable ASCII
/// other than space, else `\u{HEX}` (pointy.md, 6.4).
pub(crate) struct Shown(pub(crate) char);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            c @ '!'..='~' => write!(f, "{c}"),
            c => write!(f, "{}", c.escape_unicode()),
        }
    }
}

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
    /// the pipeline; the cause is the error's
    /// [`source`](std::error::Error::source). The parser builds only
    /// pipelines that pass, so this means an empty pipeline name or a bug
    /// in the parser, not a bad text. Reported at 1:1.
    #[error("the pipeline could not be built")]
    Build(#[source] Box<PipelineError>),
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
    /// The kind's cause: the [`PipelineError`] of [`ErrorKind::Build`]. The
    /// kind's own message is already part of this error's.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}
