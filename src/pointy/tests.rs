//! Unit tests of the pointy parser: messages and positions the corpus
//! (`tests/pointy_corpus.rs`) leaves out. Building, task sources and
//! printing are tested in `build.rs`, in the `tests` folder beside this
//! file.

mod build;

use super::*;
use crate::{RetryPolicy, Task};

fn any(name: &str) -> Option<Task<u8>> {
    Some(Task::from_fn(name, |c| Ok(*c.input())))
}

fn build(text: &str) -> Pipeline<u8> {
    parse(text, &any).unwrap_or_else(|e| panic!("{text:?}: {e:#}"))
}

/// The error's first line, `LINE:COLUMN: MESSAGE`.
fn error(text: &str) -> String {
    match parse(text, &any) {
        Ok(p) => panic!("{text:?} built:\n{}", outline(&p)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn positions_count_characters_after_the_bom_and_across_crlf() {
    assert_eq!(error("\u{feff}A $"), "1:3: unexpected character `$`");
    assert_eq!(error("A -> B\r\n  -> é"), "2:6: unexpected character `\\u{e9}`");
    assert_eq!(error("A[executor=\"é€\"] $"), "1:18: unexpected character `$`");
    assert_eq!(error("\tA\t$"), "1:4: unexpected character `$`");
    assert_eq!(
        error("A ->\n"),
        "2:1: expected name or number, found end of input"
    );
    assert_eq!(
        error("\u{feff}\u{feff}A"),
        "1:1: unexpected character `\\u{feff}`"
    );
}

#[test]
fn lexical_errors() {
    for (text, want) in [
        ("A |- B", "1:3: unexpected character `|`"),
        ("A -> +B", "1:6: unexpected character `+`"),
        ("A -\t> B", "1:3: unexpected character `-`"),
        ("A -> 2e", "1:6: invalid number"),
        ("A * 2e+", "1:5: invalid number"),
        ("A * 2B", "1:5: invalid number"),
        ("A * 1.5.2", "1:5: invalid number"),
        ("A * -3x", "1:5: invalid number"),
        ("@9: 1", "1:1: expected a directive name after `@`"),
        // `\C` with C shown as 6.4 shows it: a backslash, then `\u{20}`.
        ("A[executor=\"x\\ y\"]", "1:14: unknown escape `\\\\u{20}`"),
        ("A[executor=\"x\\", "1:12: unterminated string"),
        ("A[executor=\"x\\\ny\"]", "1:12: unterminated string"),
        ("A[executor=\"x\ny\"]", "1:12: unterminated string"),
        ("A ; B", "1:3: unexpected character `;`"),
        ("A -> B\u{7}", "1:7: unexpected character `\\u{7}`"),
    ] {
        assert_eq!(error(text), want, "{text:?}");
    }
}

#[test]
fn strings_keep_their_escapes_and_any_other_character() {
    let p = build("A[executor=\"#é\\'\\r\\n\"]");
    assert_eq!(p.steps()[0].tasks()[0].executor_name(), Some("#é'\r\n"));
}

#[test]
fn the_first_error_left_to_right_wins() {
    // Each check is made before the next token is read.
    assert_eq!(error("A[retries$"), "1:3: unknown option `retries`");
    assert_eq!(
        error("A * 1 $"),
        "1:5: retry count must be a whole number from 2 to 4294967295"
    );
    assert_eq!(error("@mood $"), "1:1: unknown directive `@mood`");
    assert_eq!(error("2 * A * $"), "1:7: retry given twice for task `A`");
    assert_eq!(
        error("A (0 -> B, 0 $"),
        "1:12: duplicate descriptor 0 in this branch list"
    );
}

#[test]
fn expected_sets_follow_the_table() {
    for (text, want) in [
        ("@mode CFG", "1:7: expected `:`, found name `CFG`"),
        (
            "@mode: true",
            "1:8: expected name, number or string, found `true`",
        ),
        (
            "@mode: CFG ->",
            "1:12: expected directive, name or number, found `->`",
        ),
        ("3 A", "1:3: expected `*`, found name `A`"),
        ("3 * 4", "1:5: expected name, found number `4`"),
        ("A[x", "1:3: unknown option `x`"),
        ("A[executor]", "1:11: expected `=`, found `]`"),
        (
            "A[executor=\"x\" executor",
            "1:16: expected `]` or `,`, found name `executor`",
        ),
        (
            "A[executor=\"x\"] [",
            "1:17: expected `->`, `|->`, `||`, `*`, `(` or end of input, found `[`",
        ),
        (
            "A * 3 [",
            "1:7: expected `->`, `|->`, `||`, `(` or end of input, found `[`",
        ),
        ("A * B", "1:5: expected number, found name `B`"),
        (
            "A (0 -> B) (1 -> C)",
            "1:12: expected `->`, `|->`, `*` or end of input, found `(`",
        ),
        (
            "A (0 -> B) * 2 *",
            "1:16: expected `->`, `|->` or end of input, found `*`",
        ),
        ("A (0 -> B) * C", "1:14: expected number, found name `C`"),
        ("A (0 B)", "1:6: expected `->` or `|->`, found name `B`"),
        ("A ()", "1:4: expected number, found `)`"),
        ("A (0 -> B,)", "1:11: expected number, found `)`"),
        (
            "A (0 -> B * 2 C)",
            "1:15: expected `->`, `|->`, `||`, `(`, `)` or `,`, found name `C`",
        ),
        ("A || (", "1:6: expected name or number, found `(`"),
        ("A -> \"s\"", "1:6: expected name or number, found string"),
        (
            "A[executor=[",
            "1:12: expected number, string, `true` or `false`, found `[`",
        ),
        (
            "ns::Task",
            "1:3: expected `->`, `|->`, `||`, `*`, `(`, `[` or end of input, found `:`",
        ),
    ] {
        assert_eq!(error(text), want, "{text:?}");
    }
}

#[test]
fn retry_checks() {
    let c2 = "retry count must be a whole number from 2 to 4294967295";
    assert_eq!(error("1 * A"), format!("1:1: {c2}"));
    assert_eq!(error("+2 * A"), format!("1:1: {c2}"));
    assert_eq!(error("2.0 * A"), format!("1:1: {c2}"));
    assert_eq!(error("A * 4294967296"), format!("1:5: {c2}"));
    assert_eq!(
        error("2 -> A"),
        "1:1: a descriptor is only allowed at the start of a branch"
    );
    assert_eq!(
        error("A (1 -> 2 |-> B)"),
        "1:9: a descriptor is only allowed at the start of a branch"
    );
    assert_eq!(
        error("3 * A[retry_attempts=2]"),
        "1:7: retry given twice for task `A`"
    );
    assert_eq!(
        error("A[retry_attempts=0] * 2"),
        "1:21: retry given twice for task `A`"
    );
    assert_eq!(
        error("B || 2 * A (0 -> C) * 3"),
        "1:21: retry given twice for task `A`"
    );
    let big = build("A * 4294967295 -> 0007 * B");
    let attempts: Vec<u32> = big
        .steps()
        .iter()
        .map(|s| s.tasks()[0].retry_policy().map_or(1, RetryPolicy::max_attempts))
        .collect();
    assert_eq!(attempts, [u32::MAX, 7]);
}

#[test]
fn descriptor_and_nesting_checks() {
    let c4 = "descriptor must be a single digit from 0 to 9";
    assert_eq!(error("A (00 -> B)"), format!("1:4: {c4}"));
    assert_eq!(error("A (+1 -> B)"), format!("1:4: {c4}"));
    assert_eq!(error("A (1.0 -> B)"), format!("1:4: {c4}"));
    let nested = |depth: usize| {
        let mut text = String::from("N0");
        for i in 1..=depth {
            text.push_str(&format!(" (1 -> N{i}"));
        }
        text + &")".repeat(depth)
    };
    assert_eq!(build(&nested(64)).steps().len(), 65);
    let err = parse(&nested(65), &any).unwrap_err();
    assert_eq!(err.kind().to_string(), "branches nested more than 64 levels deep");
    assert_eq!(err.column(), nested(64).len() - 64 + 2);
}

#[test]
fn option_checks() {
    for (text, want) in [
        (
            "A[executor_config=1]",
            "1:3: option `executor_config` is not supported by conveyor",
        ),
        (
            "A[bypass_event_checks=true]",
            "1:3: option `bypass_event_checks` is not supported by conveyor",
        ),
        ("A[Executor=\"x\"]", "1:3: unknown option `Executor`"),
        ("A[retries=1, retries=2]", "1:3: unknown option `retries`"),
        (
            "A[retry_attempts=1, retry_attempts=2]",
            "1:21: option `retry_attempts` given twice",
        ),
        (
            "A[retry_attempts=true]",
            "1:18: option `retry_attempts` must be a whole number from 0 to 4294967295",
        ),
        (
            "A[retry_attempts=2.0]",
            "1:18: option `retry_attempts` must be a whole number from 0 to 4294967295",
        ),
        (
            "A[retry_attempts=4294967296]",
            "1:18: option `retry_attempts` must be a whole number from 0 to 4294967295",
        ),
        ("A[executor=1]", "1:12: option `executor` must be a string"),
        (
            "A[result_evaluation_strategy=false]",
            "1:30: option `result_evaluation_strategy` must be a string",
        ),
        (
            "A[result_evaluation_strategy=\"any\"]",
            "1:30: unknown result_evaluation_strategy `any`",
        ),
        (
            "A[result_evaluation_strategy=\"NO_FAILURES_ALLOWED\"] || B || C[result_evaluation_strategy=\"ALL_MUST_SUCCEED\"]",
            "1:90: conflicting result_evaluation_strategy in one step",
        ),
    ] {
        assert_eq!(error(text), want, "{text:?}");
    }
    let p = build("A[retry_attempts=-0] -> B[retry_attempts=+4294967295]");
    assert_eq!(outline(&p), "A ; then=B\nB*4294967295\n");
}

#[test]
fn directive_checks() {
    assert!(check("@recursive-depth: 4294967295 @mode: \"Dag\" A").is_ok());
    assert!(check("@mode: cFg\n@recursive-depth: 007\nA").is_ok());
    let d4 = "`@recursive-depth` must be a whole number from 1 to 4294967295";
    assert_eq!(error("@recursive-depth: \"3\" A"), format!("1:19: {d4}"));
    assert_eq!(error("@recursive-depth: +3 A"), format!("1:19: {d4}"));
    assert_eq!(error("@recursive-depth: 4294967296 A"), format!("1:19: {d4}"));
    assert_eq!(error("@mode: \"TREE\" A"), "1:8: `@mode` must be CFG or DAG");
    assert_eq!(
        error("@recursive-depth: 1 @recursive-depth: 2 A"),
        "1:21: directive `@recursive-depth` given twice"
    );
}

#[test]
fn expected_sets_display_in_the_fixed_order() {
    let set = Expected::only(TokenClass::End)
        .with(TokenClass::Name)
        .with(TokenClass::Directive);
    assert_eq!(set.to_string(), "directive, name or end of input");
    assert_eq!(Expected::only(TokenClass::Colon).to_string(), "`:`");
    assert_eq!(set.iter().collect::<Vec<_>>()[2], TokenClass::End);
    assert_eq!(set.len(), 3);
    let err = check("A B").unwrap_err();
    let expected = err.expected().unwrap();
    assert!(expected.contains(TokenClass::LBracket) && !expected.contains(TokenClass::RParen));
    match err.kind() {
        ErrorKind::Syntax { found, .. } => {
            assert_eq!((found.class(), found.spelling()), (TokenClass::Name, Some("B")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_alternate_form_points_at_the_column() {
    let err = check("# one\n\tA -> B $ C").unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "2:9: unexpected character `$`\n  |\n2 | \tA -> B $ C\n  | \t       ^"
    );
    let err = check("A ->").unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "1:5: expected name or number, found end of input\n  |\n1 | A ->\n  |     ^"
    );
    let long = format!("{}A B", "\n".repeat(11));
    let err = check(&long).unwrap_err();
    assert!(
        format!("{err:#}").ends_with("\n   |\n12 | A B\n   |   ^"),
        "{err:#}"
    );
    assert_eq!(err.source_line(), "A B");
}
