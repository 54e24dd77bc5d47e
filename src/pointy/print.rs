//! Built pipelines shown as text: the corpus's one-line-per-step outline,
//! and pointy text that parses back to the same pipeline.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::ast::Strategy;
use crate::model::pipeline::Pipeline;
use crate::model::step::Step;
use crate::model::strategy::EvaluationStrategy;

/// Why a pipeline cannot be written as pointy text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrintError {
    /// A task name that is not a pointy name, or not `NAME#k` for the k-th
    /// occurrence of `NAME` in the text's order.
    #[error("task `{task}` cannot be written: expected the name `{expected}` at that place")]
    TaskName {
        /// The task's name.
        task: String,
        /// The name pointy would give a task there, or the name's base
        /// when that is no pointy name.
        expected: String,
    },
    /// A step named otherwise than by its tasks joined with `|`
    /// ([`Step::new`] rather than [`Step::of`]).
    #[error("step `{step}` is not named after its tasks")]
    StepName {
        /// The step's name.
        step: String,
    },
    /// A strategy other than the four pointy names.
    #[error("step `{step}` has the strategy {strategy}, which pointy cannot write")]
    Strategy {
        /// The step's name.
        step: String,
        /// The strategy's name.
        strategy: String,
    },
    /// A step with a [`Step::timeout`].
    #[error("step `{step}` has a deadline, which pointy cannot write")]
    Deadline {
        /// The step's name.
        step: String,
    },
    /// A task on the executor registered under the empty name.
    #[error("task `{task}` names an empty executor")]
    EmptyExecutor {
        /// The task's name.
        task: String,
    },
    /// Edges that no text builds: a step reached twice, declared out of
    /// the text's order, a sink that is not the step after its branches,
    /// or branches nested more than 64 deep.
    #[error("step `{step}` cannot be written: {reason}")]
    Shape {
        /// The step's name.
        step: String,
        /// What is wrong with its edges.
        reason: &'static str,
    },
}

/// The pipeline in the corpus notation of `pointy-corpus.txt`: one line per
/// step, in declaration order, such as
/// `Check*2 ; then=Done ok=Go fail=Fix sink=Done`.
///
/// Each line is the step's tasks joined with ` || `, each with `*N` for a
/// retry policy of N ≥ 2 attempts and `@EXECUTOR` for a registered
/// executor; then, after ` ; `, its edges (`then=`, `ok=`, `fail=`,
/// `sink=`, `sw2=` to `sw9=`) and its strategy when it is not the default
/// (`strategy=any`, `majority`, `nofail`; other strategies by their report
/// name and parameters). Step names, deadlines, executor configs given
/// directly and retry settings other than the count are not shown.
///
/// ```
/// use conveyor::{pointy, Pipeline, Task};
///
/// let tasks = |name: &str| Some(Task::from_fn(name, |c| Ok(*c.input())));
/// let pipeline = Pipeline::<u8>::parse("Check (0 -> Fix, 1 -> Go) * 2 -> Done", &tasks)?;
/// assert_eq!(
///     pointy::outline(&pipeline),
///     "Check*2 ; then=Done ok=Go fail=Fix sink=Done\nFix\nGo\nDone\n"
/// );
/// # Ok::<(), conveyor::pointy::PointyError>(())
/// ```
#[must_use]
pub fn outline<T>(pipeline: &Pipeline<T>) -> String {
    let mut out = String::new();
    for step in pipeline.steps() {
        for (i, task) in step.tasks().iter().enumerate() {
            out.push_str(if i == 0 { "" } else { " || " });
            out.push_str(task.name());
            if let Some(n) = task.retry_policy().map(|p| p.max_attempts()).filter(|n| *n >= 2) {
                let _ = write!(out, "*{n}");
            }
            if let Some(executor) = task.executor_name() {
                out.push('@');
                let bare = !executor.is_empty()
                    && executor
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
                if bare {
                    out.push_str(executor);
                } else {
                    quote(&mut out, executor);
                }
            }
        }
        let mut attrs = Vec::new();
        let edges = [
            ("then", step.then_step()),
            ("ok", step.success_step()),
            ("fail", step.failure_step()),
            ("sink", step.sink_step()),
        ];
        for (label, to) in edges {
            attrs.extend(to.map(|to| format!("{label}={to}")));
        }
        for n in 2..=9 {
            attrs.extend(step.switch_step(n).map(|to| format!("sw{n}={to}")));
        }
        attrs.extend(strategy_label(step.evaluation_strategy()).map(|s| format!("strategy={s}")));
        if !attrs.is_empty() {
            out.push_str(" ; ");
            out.push_str(&attrs.join(" "));
        }
        out.push('\n');
    }
    out
}

fn strategy_label(strategy: &EvaluationStrategy) -> Option<String> {
    Some(match strategy {
        EvaluationStrategy::AllMustSucceed => return None,
        EvaluationStrategy::AnyMustSucceed => "any".into(),
        EvaluationStrategy::MajorityMustSucceed { tie_breaker: true } => "majority".into(),
        EvaluationStrategy::MajorityMustSucceed { tie_breaker: false } => "majority(false)".into(),
        EvaluationStrategy::NoFailures => "nofail".into(),
        EvaluationStrategy::AtLeast(n) => format!("at_least({n})"),
        EvaluationStrategy::AtLeastPercent(p) => format!("at_least_percent({p})"),
        other => other.name().to_owned(),
    })
}

/// `s` as a pointy string: in double quotes, with `\"`, `\\`, `\n`, `\t`
/// and `\r` escapes.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `name` is a pointy name (pointy.md, 3.3).
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != "true"
        && name != "false"
}

/// The pipeline as pointy text that parses back, with a task source giving
/// the same tasks, to a pipeline with the same [`outline`]: same steps,
/// tasks, edges, strategies, retry counts and executor names.
///
/// Links are written `->`; branch lists go one branch a line, indented.
/// Besides pipelines parsed from pointy, this writes builder pipelines
/// whose steps are named by [`Step::of`] and follow one another in
/// declaration order: such a sequence is written as `->`, which parses to
/// an explicit [`Step::then`] that runs the same way.
///
/// What the text does not carry is the task source's business: the work
/// itself, retry settings other than the count, and executor configs given
/// to [`Task::executor`](crate::Task::executor).
///
/// ```
/// use conveyor::{pointy, Pipeline, Task};
///
/// let tasks = |name: &str| Some(Task::from_fn(name, |c| Ok(*c.input())));
/// let text = "Load * 3 -> Check (0 -> Fix, 1 -> A || B[executor=\"io\"]) -> Done";
/// let pipeline = Pipeline::<u8>::parse(text, &tasks)?;
/// let printed = pointy::to_text(&pipeline)?;
/// assert_eq!(
///     printed,
///     "Load * 3 -> Check (\n    0 -> Fix,\n    1 -> A || B[executor=\"io\"]\n) -> Done\n"
/// );
/// let again = Pipeline::parse(&printed, &tasks)?;
/// assert_eq!(pointy::outline(&again), pointy::outline(&pipeline));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// A [`PrintError`] naming the first step or task that pointy cannot
/// write: a name that is not a pointy name, a strategy or a deadline
/// pointy has no spelling for, or edges that no text builds.
pub fn to_text<T>(pipeline: &Pipeline<T>) -> Result<String, PrintError> {
    let steps = pipeline.steps();
    if steps.is_empty() {
        // A built pipeline has steps; nothing to write if one had none.
        return Ok(String::new());
    }
    let mut printer = Printer {
        steps,
        index: steps.iter().enumerate().map(|(i, s)| (s.name(), i)).collect(),
        then: vec![None; steps.len()],
        declared: 0,
        occurrences: HashMap::new(),
        out: String::new(),
    };
    let mut targeted = vec![false; steps.len()];
    for step in steps {
        let switches = (2..=9).map(|n| step.switch_step(n));
        let edges = [step.then_step(), step.success_step(), step.failure_step()];
        for to in edges.into_iter().chain(switches) {
            if let Some(i) = printer.find(to) {
                targeted[i] = true;
            }
        }
    }
    // Where each step goes when it succeeds without taking a branch, as
    // conveyor's flow decides it: its `then`, or, for a step no edge leads
    // to, the next declared step no edge leads to.
    let mut next_free = None;
    for i in (0..steps.len()).rev() {
        printer.then[i] = match steps[i].then_step() {
            Some(to) => printer.find(Some(to)),
            None if !targeted[i] => next_free,
            None => None,
        };
        if !targeted[i] {
            next_free = Some(i);
        }
    }
    printer.chain(0, 0)?;
    if let Some(step) = steps.get(printer.declared) {
        return Err(shape(step, "no edge leads to it"));
    }
    printer.out.push('\n');
    Ok(printer.out)
}

fn shape<T>(step: &Step<T>, reason: &'static str) -> PrintError {
    PrintError::Shape {
        step: step.name().to_owned(),
        reason,
    }
}

struct Printer<'p, T> {
    steps: &'p [Step<T>],
    index: HashMap<&'p str, usize>,
    /// Per step, the step after it in its chain.
    then: Vec<Option<usize>>,
    /// How many steps the text written so far declares.
    declared: usize,
    occurrences: HashMap<&'p str, u32>,
    out: String,
}

impl<'p, T> Printer<'p, T> {
    fn find(&self, to: Option<&str>) -> Option<usize> {
        to.and_then(|to| self.index.get(to).copied())
    }

    /// Writes the chain that starts at step `first`, `depth` branch lists
    /// deep.
    fn chain(&mut self, first: usize, depth: usize) -> Result<(), PrintError> {
        let mut at = first;
        loop {
            let step = &self.steps[at];
            if at != self.declared {
                return Err(shape(
                    step,
                    "it is reached twice or declared out of the text's order",
                ));
            }
            self.declared += 1;
            self.stage(step)?;
            let mut heads: Vec<(u8, usize)> = [(0, step.failure_step()), (1, step.success_step())]
                .into_iter()
                .chain((2..=9).map(|n| (n, step.switch_step(n))))
                .filter_map(|(d, to)| self.find(to).map(|i| (d, i)))
                .collect();
            let next = self.then[at];
            if heads.is_empty() {
                if step.sink_step().is_some() {
                    return Err(shape(step, "it has a sink but no branches"));
                }
            } else {
                if self.find(step.sink_step()) != next {
                    return Err(shape(step, "its sink is not the step after its branches"));
                }
                if depth >= 64 {
                    return Err(shape(step, "its branches are nested more than 64 deep"));
                }
                // Branches in declaration order, so that the text declares
                // the steps in the pipeline's order.
                heads.sort_by_key(|(_, head)| *head);
                let indent = "    ".repeat(depth + 1);
                self.out.push_str(" (");
                for (k, (descriptor, head)) in heads.into_iter().enumerate() {
                    let comma = if k == 0 { "" } else { "," };
                    let _ = write!(self.out, "{comma}\n{indent}{descriptor} -> ");
                    self.chain(head, depth + 1)?;
                }
                let _ = write!(self.out, "\n{})", &indent[4..]);
            }
            match next {
                Some(next) => {
                    self.out.push_str(" -> ");
                    at = next;
                }
                None => return Ok(()),
            }
        }
    }

    /// Writes a step's tasks, with their options and retries.
    fn stage(&mut self, step: &'p Step<T>) -> Result<(), PrintError> {
        if step.time_limit().is_some() {
            return Err(PrintError::Deadline {
                step: step.name().to_owned(),
            });
        }
        let strategy = Strategy::of(step.evaluation_strategy()).ok_or_else(|| PrintError::Strategy {
            step: step.name().to_owned(),
            strategy: step.evaluation_strategy().name().to_owned(),
        })?;
        let joined = step
            .tasks()
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join("|");
        if joined != step.name() {
            return Err(PrintError::StepName {
                step: step.name().to_owned(),
            });
        }
        for (k, task) in step.tasks().iter().enumerate() {
            let name = task.name();
            let base = name.split_once('#').map_or(name, |(base, _)| base);
            let count = self.occurrences.entry(base).or_insert(0);
            *count += 1;
            let expected = match *count {
                1 => base.to_owned(),
                k => format!("{base}#{k}"),
            };
            if !is_name(base) || name != expected {
                return Err(PrintError::TaskName {
                    task: name.to_owned(),
                    expected,
                });
            }
            self.out.push_str(if k == 0 { "" } else { " || " });
            self.out.push_str(base);
            let mut options = Vec::new();
            if let Some(executor) = task.executor_name() {
                if executor.is_empty() {
                    return Err(PrintError::EmptyExecutor {
                        task: name.to_owned(),
                    });
                }
                let mut value = String::from("executor=");
                quote(&mut value, executor);
                options.push(value);
            }
            if k == 0 && strategy != Strategy::All {
                options.push(format!(
                    "result_evaluation_strategy=\"{}\"",
                    strategy.option_value()
                ));
            }
            if !options.is_empty() {
                let _ = write!(self.out, "[{}]", options.join(", "));
            }
            if let Some(n) = task.retry_policy().map(|p| p.max_attempts()).filter(|n| *n >= 2) {
                let _ = write!(self.out, " * {n}");
            }
        }
        Ok(())
    }
}
