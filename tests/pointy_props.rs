//! Properties of the pointy parser: no input panics it, every error points
//! inside the text, and printing a parsed pipeline gives a text that parses
//! back to the same pipeline.

use std::path::Path;

use conveyor::pointy::{self, PointyError};
use conveyor::{Pipeline, Task};
use proptest::prelude::*;

fn any_task(name: &str) -> Option<Task<u8>> {
    Some(Task::from_fn(name, |c| Ok(*c.input())))
}

/// Whether `line:column` is a position of `text` (pointy.md, 3.1): a
/// character's, or the one just after a line's last character.
fn inside(text: &str, line: usize, column: usize) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').collect();
    line >= 1 && line <= lines.len() && column >= 1 && column <= lines[line - 1].chars().count() + 1
}

/// Parses `text`; on error, checks where it points and how it renders.
fn parse_checked(text: &str) -> Result<(), TestCaseError> {
    match Pipeline::parse(text, &any_task) {
        Ok(pipeline) => {
            prop_assert!(!pipeline.steps().is_empty());
        }
        Err(e) => check_error(text, &e)?,
    }
    Ok(())
}

fn check_error(text: &str, e: &PointyError) -> Result<(), TestCaseError> {
    prop_assert!(inside(text, e.line(), e.column()), "{e} is outside {text:?}");
    let prefix = format!("{}:{}: ", e.line(), e.column());
    prop_assert!(e.to_string().starts_with(&prefix));
    let rendered = format!("{e:#}");
    let first = e.to_string();
    prop_assert_eq!(rendered.lines().next(), Some(first.as_str()));
    prop_assert!(rendered.ends_with('^'));
    Ok(())
}

/// The corpus's texts, raw (`!escaped` ones as written), to mutate.
fn corpus_texts() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/pointy-corpus.txt");
    let corpus = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the pointy corpus must be at {}: {e}", path.display()));
    let mut texts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in corpus.lines() {
        if line.starts_with("=== ") {
            current = Some(Vec::new());
        } else if line.starts_with("--- ") {
            texts.extend(current.take().map(|lines| lines.join("\n")));
        } else if let Some(lines) = &mut current {
            lines.push(line);
        }
    }
    assert!(
        texts.len() > 40,
        "read only {} texts from {}",
        texts.len(),
        path.display()
    );
    texts
}

/// One edit of a text, at a position taken modulo its length.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, char),
    Duplicate(usize, usize),
    Swap(usize, usize),
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let n = chars.len().max(1);
        match *edit {
            Edit::Delete(at, len) => {
                let at = at % n;
                let end = (at + len % 4).min(chars.len());
                chars.drain(at.min(chars.len())..end);
            }
            Edit::Insert(at, c) => chars.insert((at % n).min(chars.len()), c),
            Edit::Duplicate(at, len) => {
                let at = (at % n).min(chars.len());
                let end = (at + len % 8).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, copy);
            }
            Edit::Swap(a, b) => {
                let len = chars.len();
                if len > 0 {
                    chars.swap(a % len, b % len);
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn pointy_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select("AB_x0129 \t\r\n#@:=,()[]|*+-.>\"\\e".chars().collect::<Vec<_>>()),
        1 => any::<char>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, l)| Edit::Delete(a, l)),
        (any::<usize>(), pointy_char()).prop_map(|(a, c)| Edit::Insert(a, c)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, l)| Edit::Duplicate(a, l)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap(a, b)),
    ]
}

// Random pointy texts, valid by construction.

const NAMES: [&str; 6] = ["A", "B", "Load", "x_1", "trueCheck", "_"];
const STRATEGIES: [&str; 5] = [
    "ALL_MUST_SUCCEED",
    "any_must_succeed",
    "Majority_Must_Succeed",
    "NO_FAILURES_ALLOWED",
    "no_failures_allowed",
];

#[derive(Debug, Clone)]
enum Retry {
    None,
    Prefix(u32),
    Suffix(u32),
    Option(u32),
    AfterBranches(u32),
}

#[derive(Debug, Clone)]
struct GenTask {
    name: &'static str,
    retry: Retry,
    executor: Option<String>,
    carries_strategy: bool,
}

#[derive(Debug, Clone)]
struct GenStage {
    tasks: Vec<GenTask>,
    strategy: usize,
    branches: Vec<(u8, bool, GenChain)>,
}

#[derive(Debug, Clone)]
struct GenChain(Vec<(bool, GenStage)>);

fn gen_task() -> impl Strategy<Value = GenTask> {
    let retry = prop_oneof![
        3 => Just(Retry::None),
        1 => (2..6u32).prop_map(Retry::Prefix),
        1 => (2..6u32).prop_map(Retry::Suffix),
        1 => (0..6u32).prop_map(Retry::Option),
        1 => (2..6u32).prop_map(Retry::AfterBranches),
    ];
    let executor = prop::option::weighted(0.3, "[a-z \"\\\\\t]{1,6}");
    (prop::sample::select(&NAMES[..]), retry, executor, any::<bool>()).prop_map(
        |(name, retry, executor, carries_strategy)| GenTask {
            name,
            retry,
            executor,
            carries_strategy,
        },
    )
}

fn gen_chain() -> impl Strategy<Value = GenChain> {
    let leaf =
        prop::collection::vec((any::<bool>(), gen_stage(Just(Vec::new()).boxed())), 1..4).prop_map(GenChain);
    leaf.prop_recursive(3, 24, 3, |inner| {
        let branches = prop::collection::vec((0..10u8, any::<bool>(), inner), 0..4).prop_map(|mut b| {
            b.sort_by_key(|(d, ..)| *d);
            b.dedup_by_key(|(d, ..)| *d);
            b
        });
        prop::collection::vec((any::<bool>(), gen_stage(branches.boxed())), 1..4).prop_map(GenChain)
    })
}

fn gen_stage(branches: BoxedStrategy<Vec<(u8, bool, GenChain)>>) -> impl Strategy<Value = GenStage> {
    (
        prop::collection::vec(gen_task(), 1..4),
        0..STRATEGIES.len(),
        branches,
    )
        .prop_map(|(tasks, strategy, branches)| GenStage {
            tasks,
            strategy,
            branches,
        })
}

fn render_chain(chain: &GenChain, out: &mut String, spaced: bool) {
    let gap = if spaced { " " } else { "" };
    for (i, (pipe, stage)) in chain.0.iter().enumerate() {
        if i > 0 {
            out.push_str(&format!("{gap}{}{gap}", if *pipe { "|->" } else { "->" }));
        }
        render_stage(stage, out, spaced);
    }
}

fn render_stage(stage: &GenStage, out: &mut String, spaced: bool) {
    let gap = if spaced { " " } else { "" };
    let last = stage.tasks.len() - 1;
    let mut after = None;
    for (i, task) in stage.tasks.iter().enumerate() {
        if i > 0 {
            out.push_str(&format!("{gap}||{gap}"));
        }
        // A retry after the branch list belongs to the stage's last task.
        let retry = match task.retry {
            Retry::AfterBranches(n) if i == last && !stage.branches.is_empty() => {
                after = Some(n);
                Retry::None
            }
            Retry::AfterBranches(n) => Retry::Suffix(n),
            ref other => other.clone(),
        };
        if let Retry::Prefix(n) = retry {
            out.push_str(&format!("{n}{gap}*{gap}"));
        }
        out.push_str(task.name);
        let mut options = Vec::new();
        if let Some(executor) = &task.executor {
            let escaped = executor
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\t', "\\t");
            options.push(format!("executor{gap}={gap}\"{escaped}\""));
        }
        if let Retry::Option(n) = retry {
            options.push(format!("retry_attempts={n}"));
        }
        if task.carries_strategy {
            options.push(format!(
                "result_evaluation_strategy=\"{}\"",
                STRATEGIES[stage.strategy]
            ));
        }
        if !options.is_empty() {
            out.push_str(&format!("[{}]", options.join(&format!(",{gap}"))));
        }
        if let Retry::Suffix(n) = retry {
            out.push_str(&format!("{gap}*{gap}{n}"));
        }
    }
    if !stage.branches.is_empty() {
        out.push_str(&format!("{gap}("));
        for (i, (descriptor, pipe, chain)) in stage.branches.iter().enumerate() {
            if i > 0 {
                out.push_str(if spaced { ",\n  # next branch\n  " } else { "," });
            }
            out.push_str(&format!(
                "{descriptor}{gap}{}{gap}",
                if *pipe { "|->" } else { "->" }
            ));
            render_chain(chain, out, spaced);
        }
        out.push(')');
        if let Some(n) = after {
            out.push_str(&format!("*{n}"));
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        parse_checked(&text)?;
    }

    #[test]
    fn pointy_like_strings_never_panic(chars in prop::collection::vec(pointy_char(), 0..60)) {
        parse_checked(&chars.into_iter().collect::<String>())?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        parse_checked(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn mutated_corpus_texts_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..5),
    ) {
        let texts = corpus_texts();
        let text = apply(&texts[pick.index(texts.len())], &edits);
        parse_checked(&text)?;
    }

    #[test]
    fn printed_pipelines_parse_back_the_same(chain in gen_chain(), spaced in any::<bool>()) {
        let mut text = String::new();
        render_chain(&chain, &mut text, spaced);
        let first: Pipeline<u8> = Pipeline::parse(&text, &any_task)
            .map_err(|e| TestCaseError::fail(format!("{text}\n{e:#}")))?;
        let printed = pointy::to_text(&first)
            .map_err(|e| TestCaseError::fail(format!("{text}\ncannot print: {e}")))?;
        let again: Pipeline<u8> = Pipeline::parse(&printed, &any_task)
            .map_err(|e| TestCaseError::fail(format!("{printed}\n{e:#}")))?;
        prop_assert_eq!(pointy::outline(&again), pointy::outline(&first), "{}\nprinted as\n{}", text, printed);
        prop_assert_eq!(pointy::to_text(&again).ok(), Some(printed));
    }
}
