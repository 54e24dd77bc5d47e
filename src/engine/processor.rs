//! Gathering a step's outcomes and judging them.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use std::time::Duration;

use super::buffers::Buffers;
use super::outcome::Outcome;
use super::step_run::{Halt, StepRun};
use super::unwind;
use crate::error::TaskFailure;
use crate::model::flow::Directive;
use crate::model::strategy::{EvaluationResult, EvaluationStrategy, Tally};
use crate::model::task::Task;
use crate::records::metrics::Stamp;
use crate::records::results::ResultSet;

/// A judged step: results and errors in declaration order.
pub(crate) struct StepOutcome<T> {
    pub(crate) results: ResultSet<T>,
    pub(crate) errors: Vec<TaskFailure>,
    pub(crate) evaluation: EvaluationResult,
    /// Each task's stamp, in declaration order.
    pub(crate) stamps: Vec<Stamp>,
    /// When the step's tasks were handed to their executors.
    pub(crate) queued: Duration,
    /// The switch target picked by the first task (in declaration order)
    /// that picked one, and that task.
    pub(crate) switch: Option<(u8, Arc<str>)>,
    /// The first task that asked the run to stop.
    pub(crate) stop: Option<Arc<str>>,
    /// Whether the step's deadline passed before every task reported.
    pub(crate) timed_out: bool,
    /// Whether a cancel cut the wait short.
    pub(crate) cancelled: bool,
    /// The message of a custom evaluation rule that panicked.
    pub(crate) rule_panic: Option<String>,
}

/// Gathers the outcomes of one step run and turns them into results,
/// failures and a verdict.
///
/// Outcomes arrive in any order, from the thread that waits (the group it
/// joined or ran itself) and over the step's channel (the groups that ran
/// while it did something else); the coordinator hands each to
/// [`accept`](Self::accept). The slots put them back in declaration order.
pub(crate) struct ResultProcessor<T> {
    slots: Vec<Option<Outcome<T>>>,
    received: usize,
}

impl<T> ResultProcessor<T> {
    /// A processor for `expected` outcomes.
    pub(crate) fn new(expected: usize) -> Self {
        let mut slots = Vec::with_capacity(expected);
        slots.resize_with(expected, || None);
        Self { slots, received: 0 }
    }

    /// A processor for `expected` outcomes, in a slot vector kept from an
    /// earlier step when `buffers` has one.
    pub(crate) fn reusing(expected: usize, buffers: &Buffers<T>) -> Self {
        let mut slots = buffers.slots(expected);
        slots.resize_with(expected, || None);
        Self { slots, received: 0 }
    }

    /// Takes one task's outcome.
    pub(crate) fn accept(&mut self, outcome: Outcome<T>) {
        let slot = &mut self.slots[outcome.index];
        if slot.is_none() {
            self.received += 1;
        }
        *slot = Some(outcome);
    }

    /// Expects no outcome from the tasks `skipped` marks: they run
    /// elsewhere.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn skip(&mut self, skipped: &[bool]) {
        self.received += skipped.iter().filter(|&&s| s).count();
    }

    /// The outcomes of the tasks `only` marks, in declaration order,
    /// unjudged. Tasks that did not report are recorded as in
    /// [`judge`](Self::judge).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn into_outcomes(
        self,
        run: &StepRun<T>,
        only: &[bool],
        halt: Option<Halt>,
    ) -> Vec<Outcome<T>> {
        self.slots
            .into_iter()
            .zip(only)
            .enumerate()
            .filter(|(_, (_, only))| **only)
            .map(|(index, (slot, _))| match (slot, halt) {
                (Some(outcome), _) => outcome,
                (None, Some(halt)) => run.halted_outcome(index, halt, 0),
                (None, None) => Outcome {
                    index,
                    ..lost(&run.tasks[index], &run.step)
                },
            })
            .collect()
    }

    /// Whether every task has reported.
    pub(crate) fn complete(&self) -> bool {
        self.received == self.slots.len()
    }

    /// Fills the slots of the tasks in `range` with `run`, in parallel on
    /// the current rayon pool: each worker writes straight into its tasks'
    /// slots, so a large step's outcomes are neither collected first nor
    /// moved again. `run` gives `None` for a task it did not finish (one
    /// waiting for a retry). The slots must still be empty.
    pub(crate) fn fill_par(&mut self, range: Range<usize>, run: impl Fn(usize) -> Option<Outcome<T>> + Sync)
    where
        T: Send,
    {
        let filled: usize = self.slots[range.clone()]
            .par_iter_mut()
            .zip(range)
            .map(|(slot, index)| {
                debug_assert!(slot.is_none());
                *slot = run(index);
                usize::from(slot.is_some())
            })
            .sum();
        self.received += filled;
    }

    /// Judges the step. Tasks that did not report are recorded as timed
    /// out or cancelled when `halt` says the wait was cut short, and as
    /// lost otherwise; a cut-short step is never judged a success. A
    /// panicking custom rule is caught and fails the step.
    ///
    /// One pass over the slots, writing three columns: values (with the
    /// positions of their tasks only when some task failed), stamps, and
    /// the success flags the strategy reads. Nothing per task is counted or
    /// allocated: names stay with the step.
    pub(crate) fn judge(
        self,
        run: &StepRun<T>,
        queued: Duration,
        strategy: &EvaluationStrategy,
        halt: Option<Halt>,
    ) -> StepOutcome<T> {
        let (tasks, step) = (&run.tasks[..], &run.step);
        let Self { mut slots, received } = self;
        let expected = slots.len();
        let mut switch = None;
        let mut stop = None;
        let mut timed_out = halt == Some(Halt::TimedOut);
        let mut values = Vec::with_capacity(received);
        let mut positions: Option<Vec<usize>> = None;
        let mut errors = Vec::new();
        let mut stamps = Vec::with_capacity(expected);
        let mut ok = Vec::with_capacity(expected);
        for (index, (slot, task)) in slots.drain(..).zip(tasks).enumerate() {
            let outcome = match (slot, halt) {
                (Some(outcome), _) => outcome,
                (None, Some(halt)) => run.halted_outcome(index, halt, 0),
                (None, None) => lost(task, step),
            };
            if let Some(directive) = outcome.directive {
                match directive {
                    Directive::Switch(target) if switch.is_none() && outcome.result.is_ok() => {
                        switch = Some((target, Arc::clone(&task.name)));
                    }
                    Directive::Stop if stop.is_none() => stop = Some(Arc::clone(&task.name)),
                    _ => {}
                }
            }
            let succeeded = outcome.result.is_ok();
            ok.push(succeeded);
            let mut stamp = outcome.stamp;
            stamp.mark_succeeded(succeeded);
            stamps.push(stamp);
            match outcome.result {
                Ok(value) => {
                    if let Some(positions) = &mut positions {
                        positions.push(index);
                    }
                    values.push(value);
                }
                Err(e) => {
                    positions.get_or_insert_with(|| (0..values.len()).collect());
                    timed_out |= matches!(*e, TaskFailure::TimedOut { .. });
                    errors.push(*e);
                }
            }
        }
        run.buffers.keep_slots(slots);
        let tally = Tally::new(&ok);
        let (mut evaluation, rule_panic) = match unwind::catch(|| strategy.evaluate(&tally)) {
            Ok(evaluation) => (evaluation, None),
            Err(message) => {
                let mut evaluation = EvaluationStrategy::AllMustSucceed.evaluate(&tally);
                evaluation.strategy = strategy.name().to_owned().into();
                evaluation.success = false;
                evaluation.partial = false;
                (evaluation, Some(message))
            }
        };
        if halt.is_some() || timed_out {
            evaluation.success = false;
            evaluation.partial = false;
        }
        StepOutcome {
            results: ResultSet::from_columns(Arc::clone(&run.names), values, positions),
            errors,
            evaluation,
            stamps,
            queued,
            switch,
            stop,
            timed_out,
            cancelled: halt == Some(Halt::Cancelled),
            rule_panic,
        }
    }
}

fn lost<T>(task: &Task<T>, step: &Arc<str>) -> Outcome<T> {
    Outcome {
        index: 0,
        result: Err(Box::new(TaskFailure::Lost {
            task: Arc::clone(&task.name),
            step: Arc::clone(step),
        })),
        stamp: Stamp::default(),
        directive: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: usize) -> StepRun<usize> {
        StepRun {
            pipeline: "p".into(),
            step: "s".into(),
            context: crate::ContextId::from(1),
            tasks: (0..n)
                .map(|i| Task::from_fn(format!("t{i}"), |c| Ok(*c.input())))
                .collect(),
            names: (0..n).map(|i| format!("t{i}").into()).collect(),
            input: Arc::new(0),
            previous: ResultSet::empty(),
            emitter: Arc::default(),
            clock: crate::records::metrics::RunClock::start(),
            cancel: None,
            deadline: None,
            span: crate::engine::trace::StepSpan::default(),
            run_id: crate::ids::RunId::from(1),
            total_tasks: 0,
            hooks: Vec::new(),
            buffers: Arc::default(),
            timed: true,
        }
    }

    fn outcome(index: usize, ok: bool) -> Outcome<usize> {
        Outcome {
            index,
            result: if ok {
                Ok(index * 10)
            } else {
                Err(Box::new(TaskFailure::Lost {
                    task: "t".into(),
                    step: "s".into(),
                }))
            },
            stamp: Stamp::new(Duration::ZERO, Duration::ZERO, 1, 1),
            directive: None,
        }
    }

    #[test]
    fn declaration_order_whatever_the_arrival_order() {
        let run = run(4);
        let mut p = ResultProcessor::new(4);
        for i in [3, 0, 2, 1] {
            p.accept(outcome(i, i != 2));
        }
        assert!(p.complete());
        let out = p.judge(&run, Duration::ZERO, &EvaluationStrategy::AnyMustSucceed, None);
        assert_eq!(out.results.values().copied().collect::<Vec<_>>(), vec![0, 10, 30]);
        assert_eq!(
            out.results.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            vec!["t0", "t1", "t3"]
        );
        assert_eq!(out.errors.len(), 1);
        assert!(out.evaluation.success && out.evaluation.partial);
        assert_eq!(out.stamps.len(), 4);
        assert!(!out.stamps[2].succeeded() && out.stamps[3].succeeded());
    }

    #[test]
    fn a_missing_outcome_becomes_an_error_not_a_hang() {
        let run = run(3);
        let mut p = ResultProcessor::new(3);
        p.accept(outcome(0, true));
        assert!(!p.complete());
        let out = p.judge(&run, Duration::ZERO, &EvaluationStrategy::AllMustSucceed, None);
        assert_eq!(out.results.len() + out.errors.len(), 3);
        assert!(matches!(out.errors[0], TaskFailure::Lost { .. }));
        assert!(!out.evaluation.success);
    }

    #[test]
    fn a_halt_turns_missing_outcomes_into_timeouts_or_cancels_and_fails_the_step() {
        let mut run = run(2);
        run.deadline = crate::engine::step_run::Deadline::after(
            Some(Duration::from_millis(20)),
            crate::error::DeadlineScope::Step,
        );
        let mut p = ResultProcessor::new(2);
        p.accept(outcome(1, true));
        let out = p.judge(
            &run,
            Duration::ZERO,
            &EvaluationStrategy::AnyMustSucceed,
            Some(Halt::TimedOut),
        );
        assert!(out.timed_out);
        assert!(matches!(out.errors[..], [TaskFailure::TimedOut { .. }]));
        assert_eq!(out.results.len(), 1);
        assert!(!out.evaluation.success, "a timed-out step is never a success");
        let mut p = ResultProcessor::new(2);
        p.accept(outcome(0, true));
        let out = p.judge(
            &run,
            Duration::ZERO,
            &EvaluationStrategy::AnyMustSucceed,
            Some(Halt::Cancelled),
        );
        assert!(out.cancelled && !out.evaluation.success);
        assert!(matches!(out.errors[..], [TaskFailure::Cancelled { .. }]));
    }

    #[test]
    fn a_panicking_rule_fails_the_step_and_is_reported() {
        let run = run(1);
        let mut p = ResultProcessor::new(1);
        p.accept(outcome(0, true));
        let rule = EvaluationStrategy::custom("boom", |_| panic!("rule broke"));
        let out = p.judge(&run, Duration::ZERO, &rule, None);
        assert!(!out.evaluation.success);
        assert_eq!(out.rule_panic.as_deref(), Some("rule broke"));
    }
}
