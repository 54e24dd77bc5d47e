//! Gathering a step's outcomes and judging them.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rayon::prelude::*;

use super::attempt::Landing;
use super::outcome::Outcome;
use super::step_run::{Halt, StepRun};
use super::unwind;
use crate::error::TaskFailure;
use crate::model::flow::Directive;
use crate::model::strategy::{EvaluationResult, EvaluationStrategy, Tally};
use crate::model::task::Task;
use crate::records::metrics::{Stamp, StampColumn};
use crate::records::results::{ResultSet, ValueColumn};

/// A judged step: results and errors in declaration order.
pub(crate) struct StepOutcome<T> {
    pub(crate) results: ResultSet<T>,
    pub(crate) errors: Vec<TaskFailure>,
    pub(crate) evaluation: EvaluationResult,
    /// Each task's stamp, in declaration order.
    pub(crate) stamps: StampColumn,
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
/// [`accept`](Self::accept), or has a whole round written in parallel with
/// [`fill_par`](Self::fill_par).
///
/// The outcomes are kept by column, in declaration order: one stamp and
/// one optional value per task, and the rare failures and directives on
/// the side, by task index. The stamps become the context's metrics as
/// they are, and the values its results after one pass that drops the
/// empty ones, so judging a step of 10,000 tasks moves little.
pub(crate) struct ResultProcessor<T> {
    expected: usize,
    /// Empty until the first outcome arrives, then one per task; a stamp
    /// whose task reported is marked so.
    stamps: StampColumn,
    values: ValueColumn<T>,
    failures: Vec<(usize, Box<TaskFailure>)>,
    directives: Vec<(usize, Directive)>,
    received: usize,
}

/// Where the rare parts of outcomes go while a round runs in parallel.
struct Sides {
    failures: Mutex<Vec<(usize, Box<TaskFailure>)>>,
    directives: Mutex<Vec<(usize, Directive)>>,
}

impl Sides {
    /// Marks a task that was written in place reported, and sets aside
    /// its failure and its flow request.
    #[inline]
    fn land(&self, index: usize, stamp: &mut Stamp, landing: Landing) {
        let Landing { failure, directive } = landing;
        stamp.mark_reported();
        stamp.mark_succeeded(failure.is_none());
        if let Some(directive) = directive {
            self.directives.lock().push((index, directive));
        }
        if let Some(failure) = failure {
            self.failures.lock().push((index, failure));
        }
    }
}

/// Splits `outcome` into its stamp (marked reported, and succeeded or not)
/// and its value, handing a failure or a directive to the given sides.
fn split<T>(
    outcome: Outcome<T>,
    failure: impl FnOnce(usize, Box<TaskFailure>),
    directive: impl FnOnce(usize, Directive),
) -> (Stamp, Option<T>) {
    let Outcome {
        index,
        result,
        mut stamp,
        directive: steer,
    } = outcome;
    stamp.mark_reported();
    stamp.mark_succeeded(result.is_ok());
    if let Some(steer) = steer {
        directive(index, steer);
    }
    match result {
        Ok(value) => (stamp, Some(value)),
        Err(e) => {
            failure(index, e);
            (stamp, None)
        }
    }
}

impl<T> ResultProcessor<T> {
    /// A processor for `expected` outcomes.
    pub(crate) fn new(expected: usize) -> Self {
        Self {
            expected,
            stamps: StampColumn::new(),
            values: ValueColumn::new(),
            failures: Vec::new(),
            directives: Vec::new(),
            received: 0,
        }
    }

    /// Makes room for every task's outcome, once.
    fn columns(&mut self) {
        if self.stamps.len() != self.expected {
            // Exact sizes: the stamps become the context's metrics and the
            // values its results, kept for the run's life.
            self.stamps.reserve_exact(self.expected);
            self.values.reserve_exact(self.expected);
            self.stamps.resize(self.expected, Stamp::default());
            self.values.clear();
            self.values.resize_with(self.expected, || None);
        }
    }

    fn sides(&mut self) -> Sides {
        Sides {
            failures: Mutex::new(std::mem::take(&mut self.failures)),
            directives: Mutex::new(std::mem::take(&mut self.directives)),
        }
    }

    fn keep_sides(&mut self, sides: Sides) {
        self.failures = sides.failures.into_inner();
        self.directives = sides.directives.into_inner();
    }

    /// Takes one task's outcome. The first outcome of a task counts: a
    /// task reports once, and a second report (which would be a bug) must
    /// neither count twice nor leave a stale failure behind, so it is
    /// dropped.
    pub(crate) fn accept(&mut self, outcome: Outcome<T>) {
        self.columns();
        let index = outcome.index;
        if self.stamps[index].reported() {
            log::error!("task {index} reported twice; the second report is dropped");
            return;
        }
        let (failures, directives) = (&mut self.failures, &mut self.directives);
        let (stamp, value) = split(
            outcome,
            |index, failure| failures.push((index, failure)),
            |index, directive| directives.push((index, directive)),
        );
        self.stamps[index] = stamp;
        self.values[index] = value;
        self.received += 1;
    }

    /// Fills the outcomes of the tasks in `range` with `attempt`, in
    /// parallel on the current rayon pool: each worker hands each of its
    /// tasks that task's own stamp and value slots, and the attempt writes
    /// into them in place, so nothing is collected first or moved again.
    /// `attempt` gives `None` for a task it did not finish (one waiting
    /// for a retry). It also gets a state of its own for each run of
    /// consecutive tasks on one worker, made by `carry`. None of these
    /// tasks may have reported yet.
    pub(crate) fn fill_par<S>(
        &mut self,
        range: Range<usize>,
        carry: impl Fn() -> S + Sync + Send,
        attempt: impl Fn(&mut S, usize, &mut Stamp, &mut Option<T>) -> Option<Landing> + Sync + Send,
    ) where
        T: Send,
    {
        let sides = self.sides();
        // Counted only for the rare task that did not finish, so that the
        // workers share no counter on the common path.
        let unfinished = AtomicUsize::new(0);
        let len = range.len();
        self.columns();
        let (stamps, values) = (&mut self.stamps[range.clone()], &mut self.values[range.clone()]);
        let chunk = chunk_len(len);
        let start = range.start;
        stamps
            .par_chunks_mut(chunk)
            .zip(values.par_chunks_mut(chunk))
            .enumerate()
            .for_each_init(carry, |state, (c, (stamps, values))| {
                let first = start + c * chunk;
                for (index, (stamp, value)) in (first..).zip(stamps.iter_mut().zip(values.iter_mut())) {
                    debug_assert!(!stamp.reported() && value.is_none());
                    match attempt(state, index, stamp, value) {
                        Some(landing) => sides.land(index, stamp, landing),
                        None => {
                            unfinished.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        self.keep_sides(sides);
        self.received += len - unfinished.into_inner();
    }

    /// Expects no outcome from the tasks `skipped` marks: they run
    /// elsewhere.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn skip(&mut self, skipped: &[bool]) {
        self.received += skipped.iter().filter(|&&s| s).count();
    }

    /// Whether every task has reported.
    pub(crate) fn complete(&self) -> bool {
        self.received == self.expected
    }

    /// Records every task that did not report: timed out or cancelled when
    /// `halt` says the wait was cut short, lost otherwise.
    fn settle(&mut self, run: &StepRun<T>, halt: Option<Halt>, only: Option<&[bool]>) {
        self.columns();
        if self.complete() {
            return;
        }
        if halt.is_some() {
            run.close();
        }
        for index in 0..self.expected {
            if self.stamps[index].reported() || only.is_some_and(|o| !o[index]) {
                continue;
            }
            let outcome = match halt {
                Some(halt) => run.halted_outcome(index, halt, run.begun(index)),
                None => Outcome {
                    index,
                    ..lost(&run.tasks[index], &run.step)
                },
            };
            self.accept(outcome);
        }
    }

    /// The outcomes of the tasks `only` marks, in declaration order,
    /// unjudged. Tasks that did not report are recorded as in
    /// [`judge`](Self::judge).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn into_outcomes(
        mut self,
        run: &StepRun<T>,
        only: &[bool],
        halt: Option<Halt>,
    ) -> Vec<Outcome<T>> {
        self.settle(run, halt, Some(only));
        let mut failures: Vec<Option<Box<TaskFailure>>> = (0..self.expected).map(|_| None).collect();
        for (index, failure) in self.failures {
            failures[index] = Some(failure);
        }
        let mut directives = vec![None; self.expected];
        for (index, directive) in self.directives {
            directives[index] = Some(directive);
        }
        self.stamps
            .into_iter()
            .zip(self.values)
            .zip(failures.into_iter().zip(directives))
            .enumerate()
            .filter(|(index, _)| only[*index])
            .map(|(index, ((stamp, value), (failure, directive)))| Outcome {
                index,
                result: match (value, failure) {
                    (Some(value), _) => Ok(value),
                    (None, Some(failure)) => Err(failure),
                    (None, None) => lost(&run.tasks[index], &run.step).result,
                },
                stamp,
                directive,
            })
            .collect()
    }

    /// Judges the step. Tasks that did not report are recorded as timed
    /// out or cancelled when `halt` says the wait was cut short, and as
    /// lost otherwise; a cut-short step is never judged a success. A
    /// panicking custom rule is caught and fails the step.
    pub(crate) fn judge(
        mut self,
        run: &StepRun<T>,
        queued: Duration,
        strategy: &EvaluationStrategy,
        halt: Option<Halt>,
    ) -> StepOutcome<T> {
        self.settle(run, halt, None);
        let Self {
            stamps,
            values,
            mut failures,
            mut directives,
            ..
        } = self;
        let tasks = &run.tasks[..];
        failures.sort_unstable_by_key(|(index, _)| *index);
        directives.sort_unstable_by_key(|(index, _)| *index);
        let switch = directives.iter().find_map(|&(index, directive)| match directive {
            Directive::Switch(target) if values[index].is_some() => {
                Some((target, Arc::clone(&tasks[index].name)))
            }
            _ => None,
        });
        let stop = directives
            .iter()
            .find(|(_, directive)| *directive == Directive::Stop)
            .map(|&(index, _)| Arc::clone(&tasks[index].name));
        let timed_out = halt == Some(Halt::TimedOut)
            || failures
                .iter()
                .any(|(_, failure)| matches!(**failure, TaskFailure::TimedOut { .. }));
        let ok: Cow<'_, [bool]> = if failures.is_empty() {
            match ALL_OK.get(..values.len()) {
                Some(all) => Cow::Borrowed(all),
                None => Cow::Owned(vec![true; values.len()]),
            }
        } else {
            Cow::Owned(values.iter().map(Option::is_some).collect())
        };
        // Every task that reported has a value or a failure, never both,
        // and `settle` made every other task report a failure.
        let succeeded = values.len() - failures.len();
        let errors = if failures.is_empty() {
            Vec::new()
        } else {
            failures.into_iter().map(|(_, failure)| *failure).collect()
        };
        let tally = Tally::new(&ok);
        // Only a rule of the user's own can panic; the built-in ones are
        // judged without a landing pad.
        let judged = match strategy {
            EvaluationStrategy::Custom(_) => unwind::catch(|| strategy.evaluate(&tally)),
            _ => Ok(strategy.evaluate(&tally)),
        };
        let (mut evaluation, rule_panic) = match judged {
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
            results: ResultSet::counted(Arc::clone(&run.names), values, succeeded),
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

/// The success flags of a step where every task succeeded, for steps of
/// up to this many tasks, so that judging one allocates no flags.
static ALL_OK: [bool; 1024] = [true; 1024];

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

/// How many consecutive tasks of a parallel round one worker takes as a
/// unit: enough that a step of many tiny tasks runs them in a tight loop
/// with the step's invariants in registers, few enough that every worker
/// still gets dozens of units to balance uneven tasks with.
fn chunk_len(len: usize) -> usize {
    (len / (rayon::current_num_threads() * 32)).clamp(1, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: usize) -> StepRun<usize> {
        let tasks = (0..n)
            .map(|i| Task::from_fn(format!("t{i}"), |c| Ok(*c.input())))
            .collect();
        StepRun::alone(tasks, 0, None)
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
    fn a_second_report_of_a_task_neither_counts_nor_replaces_the_first() {
        let run = run(2);
        let mut p = ResultProcessor::new(2);
        p.accept(outcome(0, true));
        p.accept(outcome(0, false));
        assert!(!p.complete(), "task 0 counted once");
        p.accept(outcome(1, true));
        assert!(p.complete());
        let out = p.judge(&run, Duration::ZERO, &EvaluationStrategy::AllMustSucceed, None);
        assert_eq!(out.results.values().copied().collect::<Vec<_>>(), vec![0, 10]);
        assert!(out.errors.is_empty(), "no stale failure from the second report");
        assert!(out.evaluation.success);
    }

    #[test]
    fn a_parallel_round_fills_the_rest_of_a_step_that_already_has_outcomes() {
        let run = run(6);
        let mut p = ResultProcessor::new(6);
        p.accept(outcome(0, true));
        // Tasks 1 to 5 in parallel, where task 3 fails and task 4 has not
        // finished (a retry), so it is recorded as lost at judging.
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| {
                p.fill_par(
                    1..6,
                    || (),
                    |(), i, stamp, value| {
                        let Outcome { result, stamp: s, .. } = (i != 4).then(|| outcome(i, i != 3))?;
                        *stamp = s;
                        let failure = match result {
                            Ok(v) => {
                                *value = Some(v);
                                None
                            }
                            Err(e) => Some(e),
                        };
                        Some(Landing {
                            failure,
                            directive: None,
                        })
                    },
                );
            });
        assert!(!p.complete());
        let out = p.judge(&run, Duration::ZERO, &EvaluationStrategy::AnyMustSucceed, None);
        assert_eq!(
            out.results.values().copied().collect::<Vec<_>>(),
            vec![0, 10, 20, 50]
        );
        assert_eq!(
            out.results.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            vec!["t0", "t1", "t2", "t5"]
        );
        assert_eq!(out.errors.len(), 2);
        assert!(matches!(out.errors[1], TaskFailure::Lost { ref task, .. } if &**task == "t4"));
        assert_eq!(
            out.stamps.iter().map(Stamp::succeeded).collect::<Vec<_>>(),
            vec![true, true, true, false, false, true]
        );
    }

    #[test]
    fn a_round_in_runs_gives_every_task_of_its_range_its_own_slots_once() {
        // Runs of several tasks, a short last run and a range that does
        // not start at the step's first task: each index is attempted
        // once, and writes only its own slots.
        const N: usize = 5_003;
        let run = run(N);
        let mut p = ResultProcessor::new(N);
        for i in 0..7 {
            p.accept(outcome(i, true));
        }
        let calls: Vec<AtomicUsize> = (0..N).map(|_| AtomicUsize::new(0)).collect();
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| {
                assert!(chunk_len(N - 7) > 1, "the round runs tasks in runs");
                p.fill_par(
                    7..N,
                    || (),
                    |(), i, stamp, value| {
                        calls[i].fetch_add(1, Ordering::Relaxed);
                        *stamp = Stamp::new(Duration::ZERO, Duration::from_nanos(i as u64), 1, 1);
                        *value = Some(i * 10);
                        Some(Landing::default())
                    },
                );
            });
        assert!(p.complete());
        assert!(calls[..7].iter().all(|c| c.load(Ordering::Relaxed) == 0));
        assert!(calls[7..].iter().all(|c| c.load(Ordering::Relaxed) == 1));
        let out = p.judge(&run, Duration::ZERO, &EvaluationStrategy::AllMustSucceed, None);
        assert!(out.evaluation.success);
        assert!(out.results.values().copied().eq((0..N).map(|i| i * 10)));
        for (i, stamp) in out.stamps.iter().enumerate().skip(7) {
            assert_eq!(stamp.finished(), Duration::from_nanos(i as u64), "task {i}");
        }
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
