//! Token classes, as error messages name them, and sets of them.

use std::fmt;

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
