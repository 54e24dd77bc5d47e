//! Unit tests of the pointy parser, printer and task sources; the corpus
//! (`tests/pointy_corpus.rs`) covers the spec's own examples.

use std::cell::Cell;
use std::time::Duration;

use super::*;
use crate::{EvaluationStrategy, PipelineExecutor, RetryPolicy, Step, Task, TaskError};

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

#[test]
fn unknown_names_are_reported_at_their_first_occurrence() {
    let tasks = |name: &str| (name != "Zed").then(|| Task::from_fn(name, |c| Ok(*c.input())));
    let err = Pipeline::<u8>::parse("A -> B (0 -> Zed) -> Zed", &tasks).unwrap_err();
    assert_eq!(err.to_string(), "1:14: unknown task `Zed`");
    assert!(matches!(err.kind(), ErrorKind::UnknownTask { name } if name == "Zed"));
    let err = Pipeline::<u8>::parse("2 * Zed", &tasks).unwrap_err();
    assert_eq!(err.to_string(), "1:5: unknown task `Zed`");
}

#[test]
fn the_source_is_asked_once_per_name_and_each_occurrence_is_named_apart() {
    let calls = Cell::new(0);
    let tasks = |name: &str| {
        calls.set(calls.get() + 1);
        Some(Task::from_fn(format!("source-{name}"), |c| Ok(*c.input())))
    };
    let p: Pipeline<u8> = parse("A -> B || A -> A (0 -> B)", &tasks).unwrap();
    assert_eq!(calls.get(), 2);
    assert_eq!(
        outline(&p),
        "A ; then=B|A#2\nB || A#2 ; then=A#3\nA#3 ; fail=B#2\nB#2\n"
    );
}

#[test]
fn retries_keep_the_sources_settings_and_executors_replace_its_choice() {
    let policy = RetryPolicy::builder()
        .max_attempts(5)
        .backoff(0.5, 3.0, 10.0)
        .build()
        .unwrap();
    let tasks = TaskRegistry::new()
        .with(
            Task::from_fn("A", |c: &crate::TaskContext<'_, u8>| Ok(*c.input()))
                .retry(policy)
                .on("cpu"),
        )
        .with(Task::from_fn("B", |c| Ok(*c.input())));
    let p = Pipeline::parse(
        "A * 2 -> A[retry_attempts=0, executor=\"io\"] -> A -> B[retry_attempts=1]",
        &tasks,
    )
    .unwrap();
    let tasks: Vec<&Task<u8>> = p.steps().iter().map(|s| &s.tasks()[0]).collect();
    let retry = tasks[0].retry_policy().unwrap();
    assert_eq!(
        (retry.max_attempts(), retry.delay(1, None)),
        (2, Duration::from_millis(500))
    );
    assert_eq!(tasks[1].retry_policy().unwrap().max_attempts(), 1);
    assert_eq!(tasks[1].executor_name(), Some("io"));
    assert_eq!(tasks[2].retry_policy().unwrap().max_attempts(), 5);
    assert_eq!(tasks[2].executor_name(), Some("cpu"));
    assert_eq!(tasks[3].retry_policy().unwrap().max_attempts(), 1);
}

#[test]
fn pipes_strategies_and_names() {
    let p = build("A |-> B[result_evaluation_strategy=\"majority_must_succeed\"] || C");
    assert_eq!(outline(&p), "A ; then=B|C\nB || C ; strategy=majority\n");
    assert!(matches!(
        p.steps()[1].evaluation_strategy(),
        EvaluationStrategy::MajorityMustSucceed { tie_breaker: true }
    ));
    assert_eq!(p.name(), DEFAULT_NAME);
    assert_eq!(parse_named("job", "A", &any).unwrap().name(), "job");
    let err = parse_named("", "A", &any).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Build(_)));
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(err.to_string(), "1:1: the pipeline could not be built");
}

/// The steps a run went through, by name.
fn ran(pipeline: &Pipeline<u8>) -> Vec<String> {
    let executor = PipelineExecutor::builder().build().unwrap();
    let run = executor.execute(pipeline, 0).unwrap();
    run.chain().iter().map(|c| c.step().to_owned()).collect()
}

#[test]
fn built_pipelines_run_as_the_text_says() {
    // The inner sink `D` runs after `C`'s branch is skipped (7.5).
    assert_eq!(ran(&build("A (1 -> B (0 -> C) -> D) -> E")), ["A", "B", "D", "E"]);
    let fails = |name: &str| {
        Some(match name {
            "Bad" => Task::from_fn(name, |_| Err(TaskError::msg("no"))),
            _ => Task::from_fn(name, |c: &crate::TaskContext<'_, u8>| Ok(*c.input())),
        })
    };
    let p = Pipeline::parse("A || Bad (0 -> Fix -> More, 1 -> Go) -> Sink -> After", &fails).unwrap();
    assert_eq!(ran(&p), ["A|Bad", "Fix", "More", "Sink", "After"]);
}

#[test]
fn builder_pipelines_print_when_pointy_can_say_them() {
    let t = |name: &str| Task::from_fn(name, |c: &crate::TaskContext<'_, u8>| Ok(*c.input()));
    let plain = Pipeline::builder("p")
        .step(t("a"))
        .step([t("b"), t("c")])
        .step(t("d"))
        .build()
        .unwrap();
    assert_eq!(to_text(&plain).unwrap(), "a -> b || c -> d\n");

    let refuse = |p: Pipeline<u8>| to_text(&p).unwrap_err().to_string();
    let named = Pipeline::builder("p")
        .step(Step::new("s", [t("a")]))
        .build()
        .unwrap();
    assert_eq!(refuse(named), "step `s` is not named after its tasks");
    let dashed = Pipeline::builder("p").step(t("load-data")).build().unwrap();
    assert_eq!(
        refuse(dashed),
        "task `load-data` cannot be written: expected the name `load-data` at that place"
    );
    let renumbered = Pipeline::builder("p")
        .step(t("a"))
        .step(t("a#3"))
        .build()
        .unwrap();
    assert_eq!(
        refuse(renumbered),
        "task `a#3` cannot be written: expected the name `a#2` at that place"
    );
    let custom = Pipeline::builder("p")
        .step(Step::of([t("a")]).strategy(EvaluationStrategy::AtLeast(1)))
        .build()
        .unwrap();
    assert_eq!(
        refuse(custom),
        "step `a` has the strategy at_least, which pointy cannot write"
    );
    let timed = Pipeline::builder("p")
        .step(Step::of([t("a")]).timeout(Duration::from_secs(1)))
        .build()
        .unwrap();
    assert_eq!(
        refuse(timed),
        "step `a` has a deadline, which pointy cannot write"
    );
    let sink_only = Pipeline::builder("p")
        .step(Step::of([t("a")]).sink("b"))
        .step(t("b"))
        .build()
        .unwrap();
    assert_eq!(
        refuse(sink_only),
        "step `a` cannot be written: it has a sink but no branches"
    );
    let out_of_order = Pipeline::builder("p")
        .step(Step::of([t("a")]).on_success("b").then("c").sink("c"))
        .step(t("c"))
        .step(t("b"))
        .build()
        .unwrap();
    assert_eq!(
        refuse(out_of_order),
        "step `b` cannot be written: it is reached twice or declared out of the text's order"
    );
    let no_sink = Pipeline::builder("p")
        .step(Step::of([t("a")]).on_failure("b").then("c"))
        .step(t("b"))
        .step(t("c"))
        .build()
        .unwrap();
    assert_eq!(
        refuse(no_sink),
        "step `a` cannot be written: its sink is not the step after its branches"
    );
    let mut deep = Pipeline::builder("p");
    for i in 0..70 {
        deep = deep.step(Step::of([t(&format!("n{i}"))]).on_success(format!("n{}", i + 1)));
    }
    let deep = deep.step(t("n70")).build().unwrap();
    assert_eq!(
        refuse(deep),
        "step `n64` cannot be written: its branches are nested more than 64 deep"
    );
}

#[test]
fn public_types_are_send_sync_and_sources_object_safe() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PointyError>();
    send_sync::<PrintError>();
    send_sync::<TaskRegistry<u64>>();
    fn _source(_: &dyn TaskSource<u64>) {}
    let registry: TaskRegistry<u8> = ["A", "B"].into_iter().map(|n| any(n).unwrap()).collect();
    let dynamic: &dyn TaskSource<u8> = &registry;
    assert_eq!(parse(" A->B ", dynamic).unwrap().steps().len(), 2);
    assert_eq!(format!("{registry:?}"), "TaskRegistry { names: [\"A\", \"B\"] }");
}
