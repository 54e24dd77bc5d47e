//! Tokens, read one at a time when the parser asks (pointy.md, 3).

use std::borrow::Cow;

use super::error::{ErrorKind, Found, Pos, TokenClass};

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
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    at: usize,
    pos: Pos,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            at: 0,
            pos: Pos::START,
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.text[self.at..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    /// Skips characters while `keep` holds; they are all on one line.
    fn bump_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek_char().is_some_and(&keep) {
            self.bump();
        }
    }

    fn skip_blanks(&mut self) {
        loop {
            match self.peek_char() {
                Some(' ' | '\t' | '\r' | '\n') => {
                    self.bump();
                }
                Some('#') => self.bump_while(|c| c != '\n'),
                _ => return,
            }
        }
    }

    /// The next token, or the first lexical error in the way.
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, LexError> {
        self.skip_blanks();
        let pos = self.pos;
        let start = self.at;
        let Some(c) = self.bump() else {
            return Ok(Token { kind: Kind::End, pos });
        };
        let next = self.peek_char();
        let kind = match c {
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '[' => Kind::LBracket,
            ']' => Kind::RBracket,
            ',' => Kind::Comma,
            '=' => Kind::Equals,
            ':' => Kind::Colon,
            '*' => Kind::Star,
            '|' if next == Some('|') => {
                self.bump();
                Kind::Parallel
            }
            '|' if next == Some('-') && self.peek_second() == Some('>') => {
                self.bump();
                self.bump();
                Kind::PipeArrow
            }
            '-' if next == Some('>') => {
                self.bump();
                Kind::Arrow
            }
            '-' | '+' if next.is_some_and(|d| d.is_ascii_digit()) => self.number(start, pos)?,
            '0'..='9' => self.number(start, pos)?,
            '"' => Kind::Str(self.string(pos)?),
            '@' if next.is_some_and(|l| l.is_ascii_alphabetic()) => {
                self.bump_while(|c| is_name_char(c) || c == '-');
                Kind::Directive(&self.text[start..self.at])
            }
            '@' => return Err((ErrorKind::MissingDirectiveName, pos)),
            c if is_name_start(c) => {
                self.bump_while(is_name_char);
                match &self.text[start..self.at] {
                    "true" => Kind::True,
                    "false" => Kind::False,
                    name => Kind::Name(name),
                }
            }
            other => return Err((ErrorKind::UnexpectedCharacter(other), pos)),
        };
        Ok(Token { kind, pos })
    }

    /// The rest of a number whose first character (a digit, or a sign
    /// before one) is read (pointy.md, 3.4).
    fn number(&mut self, start: usize, pos: Pos) -> Result<Kind<'a>, LexError> {
        let invalid = (ErrorKind::InvalidNumber, pos);
        let digits = |lexer: &mut Self| {
            let from = lexer.at;
            lexer.bump_while(|c| c.is_ascii_digit());
            lexer.at > from
        };
        digits(self);
        if self.peek_char() == Some('.') {
            self.bump();
            if !digits(self) {
                return Err(invalid);
            }
        }
        if matches!(self.peek_char(), Some('e' | 'E')) {
            self.bump();
            if matches!(self.peek_char(), Some('+' | '-')) {
                self.bump();
            }
            if !digits(self) {
                return Err(invalid);
            }
        }
        if self.peek_char().is_some_and(|c| is_name_char(c) || c == '.') {
            return Err(invalid);
        }
        Ok(Kind::Number(&self.text[start..self.at]))
    }

    /// The content of a string whose opening quote, at `open`, is read
    /// (pointy.md, 3.5). Borrowed when it holds no escape.
    fn string(&mut self, open: Pos) -> Result<Cow<'a, str>, LexError> {
        let start = self.at;
        let mut owned: Option<String> = None;
        loop {
            let at = self.at;
            let pos = self.pos;
            match self.bump() {
                None | Some('\n') => return Err((ErrorKind::UnterminatedString, open)),
                Some('"') => {
                    return Ok(match owned {
                        Some(s) => Cow::Owned(s),
                        None => Cow::Borrowed(&self.text[start..at]),
                    });
                }
                Some('\\') => {
                    let resolved = match self.peek_char() {
                        None | Some('\n') => return Err((ErrorKind::UnterminatedString, open)),
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('\'') => '\'',
                        Some(other) => return Err((ErrorKind::UnknownEscape(other), pos)),
                    };
                    self.bump();
                    owned
                        .get_or_insert_with(|| self.text[start..at].to_owned())
                        .push(resolved);
                }
                Some(c) => {
                    if let Some(s) = &mut owned {
                        s.push(c);
                    }
                }
            }
        }
    }
}
