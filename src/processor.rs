//! Gathering a step's outcomes and judging them.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use crate::error::PipelineError;
use crate::metrics::TaskMetrics;
use crate::results::ResultSet;
use crate::strategy::{EvaluationResult, EvaluationStrategy, Tally};
use crate::task::Task;

/// What one task produced, sent once over the step's channel.
pub(crate) struct Outcome<T> {
    pub(crate) index: usize,
    pub(crate) result: Result<T, PipelineError>,
    pub(crate) started: Duration,
    pub(crate) finished: Duration,
    pub(crate) attempts: u32,
    pub(crate) thread: u64,
}

/// A judged step: results and errors in declaration order.
pub(crate) struct StepOutcome<T> {
    pub(crate) results: ResultSet<T>,
    pub(crate) errors: Vec<PipelineError>,
    pub(crate) evaluation: EvaluationResult,
    pub(crate) tasks: Vec<TaskMetrics>,
}

/// How long a rayon worker that waits for outcomes blocks on the channel
/// before it looks for pool work again. Short, because the work it may find
/// could be the very tasks it waits for.
const IDLE_POLL: Duration = Duration::from_micros(100);

/// Gathers the outcomes of one step run over one crossbeam channel and turns
/// them into results, errors and a verdict.
///
/// The channel is bounded to the number of tasks, so a send never blocks
/// and its buffer is allocated once. The processor drops its own sender
/// before it waits, so a job that vanishes without reporting (which the
/// dispatchers prevent, but a bug must not hang a caller) shows up as a
/// disconnect and becomes an error for that task.
pub(crate) struct ResultProcessor<T> {
    tx: Sender<Outcome<T>>,
    rx: Receiver<Outcome<T>>,
    expected: usize,
}

impl<T> ResultProcessor<T> {
    pub(crate) fn new(expected: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(expected.max(1));
        Self { tx, rx, expected }
    }

    pub(crate) fn sender(&self) -> &Sender<Outcome<T>> {
        &self.tx
    }

    /// Waits for every task's outcome and judges the step.
    pub(crate) fn collect(
        self,
        tasks: &[Task<T>],
        step: &Arc<str>,
        queued: Duration,
        strategy: &EvaluationStrategy,
    ) -> StepOutcome<T> {
        let Self { tx, rx, expected } = self;
        drop(tx);
        let mut slots: Vec<Option<Outcome<T>>> = Vec::with_capacity(expected);
        slots.resize_with(expected, || None);
        let mut received = 0;
        while received < expected {
            let Some(outcome) = recv(&rx) else { break };
            let slot = &mut slots[outcome.index];
            if slot.is_none() {
                received += 1;
            }
            *slot = Some(outcome);
        }

        let mut entries = Vec::with_capacity(received);
        let mut errors = Vec::new();
        let mut metrics = Vec::with_capacity(expected);
        let mut ok = Vec::with_capacity(expected);
        for (slot, task) in slots.into_iter().zip(tasks) {
            let outcome = slot.unwrap_or_else(|| lost(task, step));
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
                Err(e) => errors.push(e),
            }
        }
        let evaluation = strategy.evaluate(&Tally::new(&ok));
        StepOutcome {
            results: ResultSet::from_entries(entries),
            errors,
            evaluation,
            tasks: metrics,
        }
    }
}

fn lost<T>(task: &Task<T>, step: &Arc<str>) -> Outcome<T> {
    Outcome {
        index: 0,
        result: Err(PipelineError::TaskLost {
            task: Arc::clone(&task.name),
            step: Arc::clone(step),
        }),
        started: Duration::ZERO,
        finished: Duration::ZERO,
        attempts: 0,
        thread: 0,
    }
}

/// Receives one message. A plain thread blocks. A rayon worker must not:
/// the tasks it waits for may sit in its own pool's queues (a nested
/// `execute` on a one-thread pool), so it runs pool work while it waits,
/// the way rayon's own cross-pool waits do.
pub(crate) fn recv<M>(rx: &Receiver<M>) -> Option<M> {
    if rayon::current_thread_index().is_none() {
        return rx.recv().ok();
    }
    loop {
        match rx.try_recv() {
            Ok(m) => return Some(m),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            match rx.recv_timeout(IDLE_POLL) {
                Ok(m) => return Some(m),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(n: usize) -> Vec<Task<usize>> {
        (0..n)
            .map(|i| Task::from_fn(format!("t{i}"), |c| Ok(*c.input())))
            .collect()
    }

    fn outcome(index: usize, ok: bool) -> Outcome<usize> {
        Outcome {
            index,
            result: if ok {
                Ok(index * 10)
            } else {
                Err(PipelineError::EmptyExecutorName)
            },
            started: Duration::ZERO,
            finished: Duration::ZERO,
            attempts: 1,
            thread: 1,
        }
    }

    #[test]
    fn declaration_order_whatever_the_arrival_order() {
        let tasks = tasks(4);
        let p = ResultProcessor::new(4);
        for i in [3, 0, 2, 1] {
            p.sender().send(outcome(i, i != 2)).unwrap();
        }
        let out = p.collect(
            &tasks,
            &"s".into(),
            Duration::ZERO,
            &EvaluationStrategy::AnyMustSucceed,
        );
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
        let tasks = tasks(3);
        let p = ResultProcessor::new(3);
        let tx = p.sender().clone();
        tx.send(outcome(0, true)).unwrap();
        drop(tx);
        let out = p.collect(
            &tasks,
            &"s".into(),
            Duration::ZERO,
            &EvaluationStrategy::AllMustSucceed,
        );
        assert_eq!(out.results.len() + out.errors.len(), 3);
        assert!(matches!(out.errors[0], PipelineError::TaskLost { .. }));
        assert!(!out.evaluation.success);
    }
}
