//! Every case of the pointy corpus (`../shared/reference/pointy-corpus.txt`):
//! valid texts build the pipeline the corpus gives, in its notation;
//! invalid texts fail with its exact line, column and message. Valid texts
//! also survive a round trip through `pointy::to_text`.

use std::path::{Path, PathBuf};

use conveyor::pointy::{self, PointyError};
use conveyor::{Pipeline, Task};

fn corpus_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/pointy-corpus.txt")
}

#[derive(Debug)]
enum Expect {
    Pipeline(Vec<String>),
    Error {
        line: usize,
        column: usize,
        message: String,
    },
}

#[derive(Debug)]
struct Case {
    id: String,
    text: String,
    expect: Expect,
}

/// Resolves `\n`, `\r`, `\t`, `\\` and `\u{HEX}` in an `!escaped` text.
fn unescape(line: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                let rest: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let hex = rest
                    .strip_prefix('{')
                    .ok_or_else(|| format!("bad \\u in {line:?}"))?;
                let code = u32::from_str_radix(hex, 16).map_err(|e| format!("{hex}: {e}"))?;
                out.push(char::from_u32(code).ok_or_else(|| format!("no char {code:x}"))?);
            }
            other => return Err(format!("unknown escape {other:?} in {line:?}")),
        }
    }
    Ok(out)
}

/// Reads the corpus in the format its header defines.
fn read_corpus(text: &str) -> Result<Vec<Case>, String> {
    let mut lines = text.lines().peekable();
    while lines.peek().is_some_and(|l| !l.starts_with("=== ")) {
        lines.next();
    }
    let mut cases = Vec::new();
    while let Some(header) = lines.next() {
        let rest = header
            .strip_prefix("=== ")
            .ok_or_else(|| format!("not a header: {header}"))?;
        let (kind_id, _title) = rest
            .split_once(':')
            .ok_or_else(|| format!("no title: {header}"))?;
        let mut words = kind_id.split_whitespace();
        let (kind, id) = (words.next().unwrap_or(""), words.next().unwrap_or("").to_owned());
        let escaped = words.next() == Some("!escaped");
        let mut text_lines = Vec::new();
        let marker = loop {
            match lines.next() {
                Some(l) if l.starts_with("--- ") => break l,
                Some(l) => text_lines.push(l),
                None => return Err(format!("{id}: no --- line")),
            }
        };
        let mut text = text_lines.join("\n");
        if escaped {
            text = unescape(&text)?;
        }
        let mut body = Vec::new();
        while lines.peek().is_some_and(|l| !l.starts_with("=== ")) {
            let l = lines.next().unwrap_or_default();
            if !l.trim().is_empty() {
                body.push(l.to_owned());
            }
        }
        let expect = match (kind, marker) {
            ("valid", "--- pipeline") => Expect::Pipeline(body),
            ("invalid", m) if m.starts_with("--- error ") => {
                let (line, column) = m["--- error ".len()..]
                    .split_once(':')
                    .ok_or_else(|| format!("{id}: bad position {m}"))?;
                let message = match body.as_slice() {
                    [message] => message.clone(),
                    _ => return Err(format!("{id}: expected one message line, got {body:?}")),
                };
                Expect::Error {
                    line: line.parse().map_err(|e| format!("{id}: {e}"))?,
                    column: column.parse().map_err(|e| format!("{id}: {e}"))?,
                    message,
                }
            }
            _ => return Err(format!("{id}: {kind} case with {marker}")),
        };
        cases.push(Case { id, text, expect });
    }
    Ok(cases)
}

fn any_task(name: &str) -> Option<Task<u8>> {
    Some(Task::from_fn(name, |c| Ok(*c.input())))
}

/// What is wrong with one case, if anything.
fn check(case: &Case) -> Option<String> {
    let parsed: Result<Pipeline<u8>, PointyError> = Pipeline::parse(&case.text, &any_task);
    match (&case.expect, parsed) {
        (Expect::Pipeline(want), Ok(pipeline)) => {
            let got = pointy::outline(&pipeline);
            let got: Vec<&str> = got.lines().collect();
            if got != *want {
                return Some(format!(
                    "built\n  {}\nexpected\n  {}",
                    got.join("\n  "),
                    want.join("\n  ")
                ));
            }
            let printed = match pointy::to_text(&pipeline) {
                Ok(text) => text,
                Err(e) => return Some(format!("cannot be printed back: {e}")),
            };
            match Pipeline::parse(&printed, &any_task) {
                Ok(again) if pointy::outline(&again) == pointy::outline(&pipeline) => None,
                Ok(again) => Some(format!(
                    "printed as\n{printed}which builds\n{}",
                    pointy::outline(&again)
                )),
                Err(e) => Some(format!("printed as\n{printed}which fails: {e:#}")),
            }
        }
        (Expect::Pipeline(_), Err(e)) => Some(format!("failed: {e:#}")),
        (Expect::Error { .. }, Ok(pipeline)) => Some(format!("built\n{}", pointy::outline(&pipeline))),
        (
            Expect::Error {
                line,
                column,
                message,
            },
            Err(e),
        ) => {
            let want = format!("{line}:{column}: {message}");
            let first_line = e.to_string();
            let fields = (e.line(), e.column()) == (*line, *column);
            let rendered = format!("{e:#}");
            if first_line != want || !fields || rendered.lines().next() != Some(want.as_str()) {
                Some(format!("gave\n  {first_line}\nexpected\n  {want}"))
            } else {
                None
            }
        }
    }
}

#[test]
fn every_corpus_case() {
    let path = corpus_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the pointy corpus must be at {} (next to pointy.md in the shared reference folder): {e}",
            path.display()
        )
    });
    let cases = read_corpus(&text).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = text.lines().filter(|l| l.starts_with("=== ")).count();
    assert_eq!(cases.len(), headers, "every header should give a case");
    let valid = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Pipeline(_)))
        .count();
    assert!(
        valid > 0 && valid < cases.len(),
        "the corpus should hold valid and invalid cases"
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check(case).map(|why| format!("{} {:?}:\n{why}", case.id, case.text)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases fail:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
