//! Recursive descent over the grammar of pointy.md, 4.1, with the checks
//! of section 5 made as their tokens are read.

use super::ast::{Branch, Chain, Document, Link, Stage, Strategy, TaskNode};
use super::error::{ErrorKind, Pos};
use super::lexer::{Kind, LexError, Lexer, Token};
use super::token::{Expected, TokenClass as C};

/// The deepest branch list allowed (check C6): deep enough for any real
/// pipeline, shallow enough that recursion cannot overflow the stack.
const MAX_DEPTH: usize = 64;

const LINKS: Expected = Expected::only(C::Arrow).with(C::PipeArrow);
const ROOT_END: Expected = Expected::only(C::End);
const BRANCH_END: Expected = Expected::only(C::RParen).with(C::Comma);
const TASK_START: Expected = Expected::only(C::Name).with(C::Number);

/// Parses and checks a whole text, whose byte-order mark is already gone.
pub(crate) fn parse(text: &str) -> Result<Document<'_>, LexError> {
    let mut parser = Parser {
        lexer: Lexer::new(text),
        peeked: None,
        stages: 0,
        tasks: 0,
    };
    parser.directives()?;
    let chain = parser.chain(0, ROOT_END)?;
    Ok(Document {
        chain,
        stages: parser.stages,
        tasks: parser.tasks,
    })
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    /// The one token of lookahead. A token is read only when the grammar
    /// needs it, so the first error left to right is the one reported
    /// (pointy.md, 3.6).
    peeked: Option<Token<'a>>,
    stages: usize,
    tasks: usize,
}

fn syntax(expected: Expected, found: &Token<'_>) -> LexError {
    (
        ErrorKind::Syntax {
            expected,
            found: found.kind.found(),
        },
        found.pos,
    )
}

/// The value of an integer literal without sign, or `None` when `text`
/// is not one or does not fit in a `u32`.
fn unsigned(text: &str) -> Option<u32> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

impl<'a> Parser<'a> {
    fn peek(&mut self) -> Result<C, LexError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        Ok(self.peeked.as_ref().map_or(C::End, |t| t.kind.class()))
    }

    fn next(&mut self) -> Result<Token<'a>, LexError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    /// The syntax error for the next token, which is not in `expected`.
    fn reject(&mut self, expected: Expected) -> LexError {
        match self.next() {
            Ok(token) => syntax(expected, &token),
            Err(e) => e,
        }
    }

    fn expect(&mut self, class: C) -> Result<Token<'a>, LexError> {
        let token = self.next()?;
        if token.kind.class() == class {
            Ok(token)
        } else {
            Err(syntax(Expected::only(class), &token))
        }
    }

    /// `{ directive }`: checks D1 to D4; directives have no effect.
    fn directives(&mut self) -> Result<(), LexError> {
        let mut seen = [false; 2];
        loop {
            match self.peek()? {
                C::Directive => {}
                C::Name | C::Number => return Ok(()),
                _ => return Err(self.reject(TASK_START.with(C::Directive))),
            }
            let token = self.next()?;
            let Kind::Directive(name) = token.kind else {
                return Err(syntax(TASK_START.with(C::Directive), &token));
            };
            let slot = match name {
                "@mode" => 0,
                "@recursive-depth" => 1,
                _ => return Err((ErrorKind::UnknownDirective { name: name.into() }, token.pos)),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err((ErrorKind::DirectiveGivenTwice { name: name.into() }, token.pos));
            }
            self.expect(C::Colon)?;
            let value = self.next()?;
            let ok = match &value.kind {
                Kind::Name(v) if slot == 0 => is_mode(v),
                Kind::Str(v) if slot == 0 => is_mode(v),
                Kind::Number(v) if slot == 1 => unsigned(v).is_some_and(|n| n >= 1),
                Kind::Name(_) | Kind::Str(_) | Kind::Number(_) => false,
                _ => {
                    let expected = Expected::only(C::Name).with(C::Number).with(C::String);
                    return Err(syntax(expected, &value));
                }
            };
            if !ok {
                let kind = match slot {
                    0 => ErrorKind::InvalidMode,
                    _ => ErrorKind::InvalidRecursiveDepth,
                };
                return Err((kind, value.pos));
            }
        }
    }

    /// `chain = stage { link stage }`, ended by a token of `end`, which is
    /// left unread.
    fn chain(&mut self, depth: usize, end: Expected) -> Result<Chain<'a>, LexError> {
        let mut stages = Vec::new();
        let mut links = Vec::new();
        loop {
            let (stage, follow) = self.stage(depth)?;
            self.stages += 1;
            self.tasks += stage.tasks.len();
            stages.push(stage);
            match self.peek()? {
                C::Arrow => links.push(Link::Arrow),
                C::PipeArrow => links.push(Link::Pipe),
                class if end.contains(class) => return Ok(Chain { stages, links }),
                _ => return Err(self.reject(follow.union(LINKS).union(end))),
            }
            self.next()?;
        }
    }

    /// `stage = task { "||" task } [ branches [ retry ] ]`. Also returns
    /// what, besides a link or the chain's end, could have come next.
    fn stage(&mut self, depth: usize) -> Result<(Stage<'a>, Expected), LexError> {
        let mut stage = Stage {
            tasks: Vec::new(),
            strategy: None,
            branches: Vec::new(),
        };
        loop {
            let follow = self.task(&mut stage)?;
            match self.peek()? {
                C::Parallel => {
                    self.next()?;
                }
                C::LParen => break,
                _ => return Ok((stage, follow)),
            }
        }
        self.branches(depth, &mut stage)?;
        // The retry after a branch list is the stage's last task's.
        match stage.tasks.last_mut() {
            Some(task) if self.peek()? == C::Star => {
                self.suffix_retry(task)?;
                Ok((stage, Expected::NONE))
            }
            _ => Ok((stage, Expected::only(C::Star))),
        }
    }

    /// `task = [ NUMBER "*" ] NAME [ options ] [ retry ]`, added to the
    /// stage. Returns what else the stage allows after it.
    fn task(&mut self, stage: &mut Stage<'a>) -> Result<Expected, LexError> {
        let mut token = self.next()?;
        let mut attempts = None;
        if let Kind::Number(count) = token.kind {
            let star = self.next()?;
            match star.kind {
                Kind::Star => {}
                Kind::Arrow | Kind::PipeArrow => return Err((ErrorKind::MisplacedDescriptor, token.pos)),
                _ => return Err(syntax(Expected::only(C::Star), &star)),
            }
            let count = unsigned(count).filter(|n| *n >= 2);
            attempts = Some(count.ok_or((ErrorKind::InvalidRetryCount, token.pos))?);
            token = self.next()?;
            if !matches!(token.kind, Kind::Name(_)) {
                return Err(syntax(Expected::only(C::Name), &token));
            }
        }
        let Kind::Name(name) = token.kind else {
            return Err(syntax(TASK_START, &token));
        };
        let mut task = TaskNode {
            name,
            pos: token.pos,
            attempts,
            executor: None,
        };
        let mut follow = Expected::only(C::Parallel)
            .with(C::Star)
            .with(C::LParen)
            .with(C::LBracket);
        if self.peek()? == C::LBracket {
            self.next()?;
            self.options(&mut task, &mut stage.strategy)?;
            follow = Expected::only(C::Parallel).with(C::Star).with(C::LParen);
        }
        if self.peek()? == C::Star {
            self.suffix_retry(&mut task)?;
            follow = Expected::only(C::Parallel).with(C::LParen);
        }
        stage.tasks.push(task);
        Ok(follow)
    }

    /// `options = "[" option { "," option } "]"`, the `[` read; checks O1
    /// to O4, and C3 for `retry_attempts`.
    fn options(&mut self, task: &mut TaskNode<'a>, strategy: &mut Option<Strategy>) -> Result<(), LexError> {
        const KEYS: [&str; 3] = ["executor", "retry_attempts", "result_evaluation_strategy"];
        let mut seen = [false; KEYS.len()];
        loop {
            let key = self.next()?;
            let Kind::Name(name) = key.kind else {
                return Err(syntax(Expected::only(C::Name), &key));
            };
            let Some(slot) = KEYS.iter().position(|k| *k == name) else {
                let key_name = name.into();
                let kind = match name {
                    "executor_config" | "stop_condition" | "bypass_event_checks" => {
                        ErrorKind::UnsupportedOption { key: key_name }
                    }
                    _ => ErrorKind::UnknownOption { key: key_name },
                };
                return Err((kind, key.pos));
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err((ErrorKind::OptionGivenTwice { key: name.into() }, key.pos));
            }
            if slot == 1 {
                no_retry_yet(task, key.pos)?;
            }
            self.expect(C::Equals)?;
            let value = self.next()?;
            if !matches!(
                value.kind,
                Kind::Number(_) | Kind::Str(_) | Kind::True | Kind::False
            ) {
                let expected = Expected::only(C::Number)
                    .with(C::String)
                    .with(C::True)
                    .with(C::False);
                return Err(syntax(expected, &value));
            }
            let at = value.pos;
            let fail = move |kind| Err((kind, at));
            match (slot, value.kind) {
                (0, Kind::Str(s)) if s.is_empty() => return fail(ErrorKind::EmptyExecutor),
                (0, Kind::Str(s)) => task.executor = Some(s),
                (0, _) => return fail(ErrorKind::ExecutorNotString),
                (1, Kind::Number(n)) => match retry_attempts(n) {
                    // 0 and 1 both mean a single attempt (pointy.md, 7.6).
                    Some(n) => task.attempts = Some(n.max(1)),
                    None => return fail(ErrorKind::InvalidRetryAttempts),
                },
                (1, _) => return fail(ErrorKind::InvalidRetryAttempts),
                (_, Kind::Str(s)) => match Strategy::from_option(&s) {
                    Some(new) if strategy.is_some_and(|old| old != new) => {
                        return fail(ErrorKind::ConflictingStrategy);
                    }
                    Some(new) => *strategy = Some(new),
                    None => {
                        return fail(ErrorKind::UnknownStrategy {
                            value: s.into_owned(),
                        });
                    }
                },
                (_, _) => return fail(ErrorKind::StrategyNotString),
            }
            match self.peek()? {
                C::Comma => {}
                C::RBracket => {
                    self.next()?;
                    return Ok(());
                }
                _ => return Err(self.reject(Expected::only(C::RBracket).with(C::Comma))),
            }
            self.next()?;
        }
    }

    /// `branches = "(" branch { "," branch } ")"`, at the `(`; checks C6,
    /// C4 and C5. The branches' chains are at `depth + 1`.
    fn branches(&mut self, depth: usize, stage: &mut Stage<'a>) -> Result<(), LexError> {
        let open = self.next()?;
        if depth >= MAX_DEPTH {
            return Err((ErrorKind::TooDeep, open.pos));
        }
        let mut seen = [false; 10];
        loop {
            let token = self.next()?;
            let Kind::Number(text) = token.kind else {
                return Err(syntax(Expected::only(C::Number), &token));
            };
            let descriptor = match text.as_bytes() {
                [d @ b'0'..=b'9'] => d - b'0',
                _ => return Err((ErrorKind::InvalidDescriptor, token.pos)),
            };
            if std::mem::replace(&mut seen[usize::from(descriptor)], true) {
                return Err((ErrorKind::DuplicateDescriptor(descriptor), token.pos));
            }
            let link = self.next()?;
            let link = match link.kind {
                Kind::Arrow => Link::Arrow,
                Kind::PipeArrow => Link::Pipe,
                _ => return Err(syntax(LINKS, &link)),
            };
            let chain = self.chain(depth + 1, BRANCH_END)?;
            stage.branches.push(Branch {
                descriptor,
                link,
                chain,
            });
            // `chain` stops only before a `,` or a `)`.
            if self.next()?.kind == Kind::RParen {
                return Ok(());
            }
        }
    }

    /// `retry = "*" NUMBER` after a task, or after its stage's branch
    /// list: checks C3 at the `*`, then C2 at the number.
    fn suffix_retry(&mut self, task: &mut TaskNode<'a>) -> Result<(), LexError> {
        let star = self.next()?;
        no_retry_yet(task, star.pos)?;
        let token = self.next()?;
        let Kind::Number(text) = token.kind else {
            return Err(syntax(Expected::only(C::Number), &token));
        };
        let count = unsigned(text).filter(|n| *n >= 2);
        task.attempts = Some(count.ok_or((ErrorKind::InvalidRetryCount, token.pos))?);
        Ok(())
    }
}

/// Check C3: a task gets one retry at most; the second is reported `at`.
fn no_retry_yet(task: &TaskNode<'_>, at: Pos) -> Result<(), LexError> {
    match task.attempts {
        Some(_) => Err((
            ErrorKind::RetryGivenTwice {
                task: task.name.into(),
            },
            at,
        )),
        None => Ok(()),
    }
}

/// Whether a `@mode` value names a mode: CFG or DAG, any case.
fn is_mode(value: &str) -> bool {
    value.eq_ignore_ascii_case("cfg") || value.eq_ignore_ascii_case("dag")
}

/// The value of `retry_attempts`: an integer literal, a sign allowed,
/// from 0 to `u32::MAX`.
fn retry_attempts(text: &str) -> Option<u32> {
    match text.as_bytes().first() {
        Some(b'+') => unsigned(&text[1..]),
        Some(b'-') => unsigned(&text[1..]).filter(|n| *n == 0),
        _ => unsigned(text),
    }
}
