//! Gathering a step's outcomes and judging them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use crate::engine::coordinator::{Halt, StepRun};
use crate::error::TaskFailure;
use crate::model::flow::Directive;
use crate::model::strategy::{EvaluationResult, EvaluationStrategy, Tally};
use crate::model::task::Task;
use crate::records::metrics::TaskMetrics;
use crate::records::results::ResultSet;

/// What one task produced, sent once over the step's channel.
pub(crate) struct Outcome<T> {
    pub(crate) index: usize,
    /// Boxed: errors are rare, and a small outcome keeps the channel's
    /// buffer and the slot vector of a 10,000-task step small.
    pub(crate) result: Result<T, Box<TaskFailure>>,
    pub(crate) started: Duration,
    pub(crate) finished: Duration,
    pub(crate) attempts: u32,
    pub(crate) thread: u64,
    pub(crate) directive: Option<Directive>,
}

/// A judged step: results and errors in declaration order.
pub(crate) struct StepOutcome<T> {
    pub(crate) results: ResultSet<T>,
    pub(crate) errors: Vec<TaskFailure>,
    pub(crate) evaluation: EvaluationResult,
    pub(crate) tasks: Vec<TaskMetrics>,
    /// The switch target picked by the first task (in declaration order)
    /// that picked one, and that task.
    pub(crate) switch: Option<(u8, Arc<str>)>,
    /// The first task that asked the run to stop.
    pub(crate) stop: Option<Arc<str>>,
    /// Whether the step's deadline passed before every task reported.
    pub(crate) timed_out: bool,
}

/// How long a rayon worker that waits for outcomes blocks on the channel
/// before it looks for pool work again. Short, because the work it may find
/// could be the very tasks it waits for.
const IDLE_POLL: Duration = Duration::from_micros(100);

/// Gathers the outcomes of one step run and turns them into results, errors
/// and a verdict.
///
/// Outcomes of groups that run while the caller does something else come
/// over one crossbeam channel per step run, bounded to the number of tasks,
/// so a send never blocks and its buffer is allocated once. Outcomes of the
/// group the caller runs or joins itself (inline, or a pool it blocks in
/// until the group is done) are handed over directly: for them a channel
/// costs allocations and, with many workers, contention on its tail,
/// without letting the caller do anything sooner. The processor drops its own sender before it waits, so
/// a job that vanishes without reporting (which the dispatchers prevent,
/// but a bug must not hang a caller) shows up as a disconnect and becomes
/// an error for that task.
type Channel<T> = (Sender<Outcome<T>>, Receiver<Outcome<T>>);

pub(crate) struct ResultProcessor<T> {
    channel: Option<Channel<T>>,
    slots: Vec<Option<Outcome<T>>>,
    received: usize,
}

impl<T> ResultProcessor<T> {
    /// A processor for `expected` outcomes; `remote` says whether any will
    /// come from another thread.
    pub(crate) fn new(expected: usize, remote: bool) -> Self {
        let mut slots = Vec::with_capacity(expected);
        slots.resize_with(expected, || None);
        Self {
            channel: remote.then(|| crossbeam_channel::bounded(expected.max(1))),
            slots,
            received: 0,
        }
    }

    /// The sending side of the step's channel.
    ///
    /// # Panics
    /// When the processor was made without a channel, which would be a bug
    /// in the coordinator.
    pub(crate) fn sender(&self) -> &Sender<Outcome<T>> {
        &self
            .channel
            .as_ref()
            .expect("a step with remote groups has a channel")
            .0
    }

    /// Takes an outcome produced on the collecting thread.
    pub(crate) fn accept(&mut self, outcome: Outcome<T>) {
        let slot = &mut self.slots[outcome.index];
        if slot.is_none() {
            self.received += 1;
        }
        *slot = Some(outcome);
    }

    /// Waits for every task's outcome, or for the step's deadline, and
    /// judges the step. Tasks that did not report by the deadline are
    /// recorded as timed out; their late outcomes go to a closed channel.
    pub(crate) fn collect(
        mut self,
        run: &StepRun<T>,
        queued: Duration,
        strategy: &EvaluationStrategy,
    ) -> StepOutcome<T> {
        let (tasks, step) = (&run.tasks[..], &run.step);
        let mut timed_out = false;
        if let Some((tx, rx)) = self.channel.take() {
            drop(tx);
            while self.received < self.slots.len() {
                match recv(&rx, run.deadline.map(|d| d.at)) {
                    Received::Message(outcome) => self.accept(outcome),
                    Received::Disconnected => break,
                    Received::TimedOut => {
                        timed_out = true;
                        break;
                    }
                }
            }
        }
        let Self { slots, received, .. } = self;
        let expected = slots.len();
        let mut switch = None;
        let mut stop = None;

        let mut entries = Vec::with_capacity(received);
        let mut errors = Vec::new();
        let mut metrics = Vec::with_capacity(expected);
        let mut ok = Vec::with_capacity(expected);
        for (index, (slot, task)) in slots.into_iter().zip(tasks).enumerate() {
            let outcome = match slot {
                Some(outcome) => outcome,
                None if timed_out => run.halted_outcome(index, Halt::TimedOut, 0),
                None => lost(task, step),
            };
            timed_out |= matches!(
                outcome.result.as_ref().map_err(|e| &**e),
                Err(TaskFailure::TimedOut { .. })
            );
            match outcome.directive {
                Some(Directive::Switch(target)) if switch.is_none() && outcome.result.is_ok() => {
                    switch = Some((target, Arc::clone(&task.name)));
                }
                Some(Directive::Stop) if stop.is_none() => stop = Some(Arc::clone(&task.name)),
                _ => {}
            }
            let succeeded = outcome.result.is_ok();
            ok.push(succeeded);
            metrics.push(TaskMetrics {
                task: Arc::clone(&task.name),
                queued,
                started: outcome.started,
                finished: outcome.finished,
                attempts: outcome.attempts,
                thread: outcome.thread,
                succeeded,
            });
            match outcome.result {
                Ok(value) => entries.push((Arc::clone(&task.name), value)),
                Err(e) => errors.push(*e),
            }
        }
        let evaluation = strategy.evaluate(&Tally::new(&ok));
        StepOutcome {
            results: ResultSet::from_entries(entries),
            errors,
            evaluation,
            tasks: metrics,
            switch,
            stop,
            timed_out,
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
        started: Duration::ZERO,
        finished: Duration::ZERO,
        attempts: 0,
        thread: 0,
        directive: None,
    }
}

pub(crate) enum Received<M> {
    Message(M),
    Disconnected,
    TimedOut,
}

impl<M> From<Result<M, RecvTimeoutError>> for Received<M> {
    fn from(r: Result<M, RecvTimeoutError>) -> Self {
        match r {
            Ok(m) => Self::Message(m),
            Err(RecvTimeoutError::Disconnected) => Self::Disconnected,
            Err(RecvTimeoutError::Timeout) => Self::TimedOut,
        }
    }
}

/// Receives one message, until `deadline` if there is one. A plain thread
/// blocks. A rayon worker must not: the tasks it waits for may sit in its
/// own pool's queues (a nested `execute` on a one-thread pool), so it runs
/// pool work while it waits, the way rayon's own cross-pool waits do.
pub(crate) fn recv<M>(rx: &Receiver<M>, deadline: Option<Instant>) -> Received<M> {
    if rayon::current_thread_index().is_none() {
        return match deadline {
            Some(at) => rx.recv_deadline(at).into(),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected).into(),
        };
    }
    loop {
        match rx.try_recv() {
            Ok(m) => return Received::Message(m),
            Err(TryRecvError::Disconnected) => return Received::Disconnected,
            Err(TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        if deadline.is_some_and(|at| now >= at) {
            return Received::TimedOut;
        }
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            let poll = deadline.map_or(IDLE_POLL, |at| (at - now).min(IDLE_POLL));
            match rx.recv_timeout(poll) {
                Ok(m) => return Received::Message(m),
                Err(RecvTimeoutError::Disconnected) => return Received::Disconnected,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
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
            input: Arc::new(0),
            previous: ResultSet::empty(),
            emitter: Arc::default(),
            clock: crate::records::metrics::RunClock::start(),
            cancel: None,
            deadline: None,
            span: crate::engine::trace::StepSpan::default(),
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
            started: Duration::ZERO,
            finished: Duration::ZERO,
            attempts: 1,
            thread: 1,
            directive: None,
        }
    }

    #[test]
    fn declaration_order_whatever_the_arrival_order() {
        let run = run(4);
        let p = ResultProcessor::new(4, true);
        for i in [3, 0, 2, 1] {
            p.sender().send(outcome(i, i != 2)).unwrap();
        }
        let out = p.collect(&run, Duration::ZERO, &EvaluationStrategy::AnyMustSucceed);
        assert_eq!(out.results.values().copied().collect::<Vec<_>>(), vec![0, 10, 30]);
        assert_eq!(
            out.results.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            vec!["t0", "t1", "t3"]
        );
        assert_eq!(out.errors.len(), 1);
        assert!(out.evaluation.success && out.evaluation.partial);
        assert_eq!(out.tasks.len(), 4);
        assert!(!out.tasks[2].succeeded);
    }

    #[test]
    fn a_missing_outcome_becomes_an_error_not_a_hang() {
        let run = run(3);
        let p = ResultProcessor::new(3, true);
        let tx = p.sender().clone();
        tx.send(outcome(0, true)).unwrap();
        drop(tx);
        let out = p.collect(&run, Duration::ZERO, &EvaluationStrategy::AllMustSucceed);
        assert_eq!(out.results.len() + out.errors.len(), 3);
        assert!(matches!(out.errors[0], TaskFailure::Lost { .. }));
        assert!(!out.evaluation.success);
    }

    #[test]
    fn a_deadline_turns_missing_outcomes_into_timeouts() {
        let mut run = run(2);
        run.deadline = Some(crate::engine::coordinator::Deadline {
            at: Instant::now() + Duration::from_millis(20),
            scope: crate::error::DeadlineScope::Step,
            limit: Duration::from_millis(20),
        });
        let p = ResultProcessor::new(2, true);
        // Keep a sender alive, as a stuck task would.
        let stuck = p.sender().clone();
        p.sender().send(outcome(1, true)).unwrap();
        let out = p.collect(&run, Duration::ZERO, &EvaluationStrategy::AllMustSucceed);
        assert!(out.timed_out);
        assert!(matches!(out.errors[..], [TaskFailure::TimedOut { .. }]));
        assert_eq!(out.results.len(), 1);
        drop(stuck);
    }
}
