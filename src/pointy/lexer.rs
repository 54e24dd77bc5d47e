//! Tokens, read one at a time when the parser asks (pointy.md, 3).

use std::borrow::Cow;

use super::error::{ErrorKind, Pos};
use super::token::{Found, TokenClass};

/// A token and the position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'a> {
    pub(crate) kind: Kind<'a>,
    pub(crate) pos: Pos,
}

/// What a token is. Names, numbers and directives borrow their spelling
/// from the text; a string holds its content with escapes resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind<'a> {
    Directive(&'a str),
    Name(&'a str),
    Number(&'a str),
    Str(Cow<'a, str>),
    True,
    False,
    Arrow,
    PipeArrow,
    Parallel,
    Star,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Equals,
    Colon,
    End,
}

impl Kind<'_> {
    pub(crate) fn class(&self) -> TokenClass {
        match self {
            Self::Directive(_) => TokenClass::Directive,
            Self::Name(_) => TokenClass::Name,
            Self::Number(_) => TokenClass::Number,
            Self::Str(_) => TokenClass::String,
            Self::True => TokenClass::True,
            Self::False => TokenClass::False,
            Self::Arrow => TokenClass::Arrow,
            Self::PipeArrow => TokenClass::PipeArrow,
            Self::Parallel => TokenClass::Parallel,
            Self::Star => TokenClass::Star,
            Self::LParen => TokenClass::LParen,
            Self::RParen => TokenClass::RParen,
            Self::LBracket => TokenClass::LBracket,
            Self::RBracket => TokenClass::RBracket,
            Self::Comma => TokenClass::Comma,
            Self::Equals => TokenClass::Equals,
            Self::Colon => TokenClass::Colon,
            Self::End => TokenClass::End,
        }
    }

    /// The token as a syntax error names it.
    pub(crate) fn found(&self) -> Found {
        let spelling = match self {
            Self::Directive(s) | Self::Name(s) | Self::Number(s) => Some(*s),
            _ => None,
        };
        Found::new(self.class(), spelling)
    }
}

/// A lexical error and where it is.
pub(crate) type LexError = (ErrorKind, Pos);

/// Reads tokens from a text whose byte-order mark is already gone.
///
/// Every character the grammar gives a meaning is ASCII, so the lexer
/// walks bytes; other characters occur only in strings and comments, where
/// a column is counted for each byte that starts a character.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    at: usize,
    pos: Pos,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `b` starts a character (is not a UTF-8 continuation byte).
fn starts_char(b: u8) -> bool {
    b & 0xC0 != 0x80
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            at: 0,
            pos: Pos::START,
        }
    }

    fn byte(&self, ahead: usize) -> Option<u8> {
        self.text.as_bytes().get(self.at + ahead).copied()
    }

    /// The character at the current offset, which starts one.
    fn char_here(&self) -> char {
        self.text
            .get(self.at..)
            .and_then(|s| s.chars().next())
            .unwrap_or('\u{fffd}')
    }

    /// Moves past `n` bytes of ASCII other than LF.
    fn skip_ascii(&mut self, n: usize) {
        self.at += n;
        self.pos.column += n;
    }

    /// Moves past one byte, keeping the position.
    fn skip_byte(&mut self, b: u8) {
        self.at += 1;
        if b == b'\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else if starts_char(b) {
            self.pos.column += 1;
        }
    }

    /// How many bytes from the current offset satisfy `keep`.
    fn run(&self, from: usize, keep: impl Fn(u8) -> bool) -> usize {
        let rest = self.text.as_bytes().get(self.at + from..).unwrap_or_default();
        rest.iter().take_while(|b| keep(**b)).count()
    }

    fn skip_blanks(&mut self) {
        while let Some(b) = self.byte(0) {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.skip_byte(b),
                b'#' => {
                    while let Some(b) = self.byte(0).filter(|b| *b != b'\n') {
                        self.skip_byte(b);
                    }
                }
                _ => return,
            }
        }
    }

    /// The next token, or the first lexical error in the way.
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, LexError> {
        self.skip_blanks();
        let pos = self.pos;
        let start = self.at;
        let Some(b) = self.byte(0) else {
            return Ok(Token { kind: Kind::End, pos });
        };
        let next = self.byte(1);
        let (kind, len) = match b {
            b'(' => (Kind::LParen, 1),
            b')' => (Kind::RParen, 1),
            b'[' => (Kind::LBracket, 1),
            b']' => (Kind::RBracket, 1),
            b',' => (Kind::Comma, 1),
            b'=' => (Kind::Equals, 1),
            b':' => (Kind::Colon, 1),
            b'*' => (Kind::Star, 1),
            b'|' if next == Some(b'|') => (Kind::Parallel, 2),
            b'|' if next == Some(b'-') && self.byte(2) == Some(b'>') => (Kind::PipeArrow, 3),
            b'-' if next == Some(b'>') => (Kind::Arrow, 2),
            b'-' | b'+' if next.is_some_and(|d| d.is_ascii_digit()) => return self.number(pos),
            b'0'..=b'9' => return self.number(pos),
            b'"' => {
                return self.string(pos).map(|s| Token {
                    kind: Kind::Str(s),
                    pos,
                });
            }
            b'@' if next.is_some_and(|l| l.is_ascii_alphabetic()) => {
                let len = 1 + self.run(1, |c| is_name_byte(c) || c == b'-');
                (Kind::Directive(&self.text[start..start + len]), len)
            }
            b'@' => return Err((ErrorKind::MissingDirectiveName, pos)),
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let len = self.run(0, is_name_byte);
                let kind = match &self.text[start..start + len] {
                    "true" => Kind::True,
                    "false" => Kind::False,
                    name => Kind::Name(name),
                };
                (kind, len)
            }
            _ => return Err((ErrorKind::UnexpectedCharacter(self.char_here()), pos)),
        };
        self.skip_ascii(len);
        Ok(Token { kind, pos })
    }

    /// A number, at its first character: a digit, or a sign before one
    /// (pointy.md, 3.4).
    fn number(&mut self, pos: Pos) -> Result<Token<'a>, LexError> {
        let invalid = Err((ErrorKind::InvalidNumber, pos));
        let digits = |lexer: &Self, from: usize| lexer.run(from, |b| b.is_ascii_digit());
        let mut len = usize::from(matches!(self.byte(0), Some(b'+' | b'-')));
        len += digits(self, len);
        if self.byte(len) == Some(b'.') {
            match digits(self, len + 1) {
                0 => return invalid,
                n => len += 1 + n,
            }
        }
        if matches!(self.byte(len), Some(b'e' | b'E')) {
            len += 1;
            if matches!(self.byte(len), Some(b'+' | b'-')) {
                len += 1;
            }
            match digits(self, len) {
                0 => return invalid,
                n => len += n,
            }
        }
        if self.byte(len).is_some_and(|b| is_name_byte(b) || b == b'.') {
            return invalid;
        }
        let kind = Kind::Number(&self.text[self.at..self.at + len]);
        self.skip_ascii(len);
        Ok(Token { kind, pos })
    }

    /// A string's content, at its opening quote (pointy.md, 3.5); borrowed
    /// when it holds no escape.
    fn string(&mut self, open: Pos) -> Result<Cow<'a, str>, LexError> {
        let unterminated = (ErrorKind::UnterminatedString, open);
        self.skip_ascii(1);
        let mut piece = self.at;
        let mut owned: Option<String> = None;
        loop {
            let Some(b) = self.byte(0) else {
                return Err(unterminated);
            };
            match b {
                b'\n' => return Err(unterminated),
                b'"' => {
                    let last = &self.text[piece..self.at];
                    self.skip_ascii(1);
                    return Ok(match owned {
                        Some(mut s) => {
                            s.push_str(last);
                            Cow::Owned(s)
                        }
                        None => Cow::Borrowed(last),
                    });
                }
                b'\\' => {
                    let resolved = match self.byte(1) {
                        None | Some(b'\n') => return Err(unterminated),
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'\'') => '\'',
                        Some(_) => {
                            let pos = self.pos;
                            self.skip_ascii(1);
                            return Err((ErrorKind::UnknownEscape(self.char_here()), pos));
                        }
                    };
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[piece..self.at]);
                    s.push(resolved);
                    self.skip_ascii(2);
                    piece = self.at;
                }
                b => self.skip_byte(b),
            }
        }
    }
}
