//! Where a step's outcomes go as they arrive: the waiting thread's own
//! result processor, or a ledger that another thread can close and take
//! over.
//!
//! A run carried into its pool walks on a pool worker, and that worker may
//! get stuck in a task of its own step. The caller outside the pool must
//! then be able to end the step at a cancel or a deadline with every
//! outcome that arrived, so the step gathers into a [`Ledger`] behind a
//! lock instead of into a processor on the walking thread's stack. The
//! lock is taken once per outcome (or once per batch drained from the
//! channel), never while a task runs.

use std::ops::Range;

use crossbeam_channel::{Receiver, SelectedOperation};
use parking_lot::Mutex;
use rayon::prelude::*;

use super::attempt::Landing;
use super::outcome::Outcome;
use super::processor::ResultProcessor;
use super::step_run::StepRun;
use crate::records::metrics::Stamp;

/// Takes a step's outcomes; see the module docs.
pub(crate) trait Intake<T> {
    /// Takes one task's outcome.
    fn accept(&mut self, outcome: Outcome<T>);

    /// Whether nothing more is wanted: every task has reported, or the
    /// outcomes were taken over.
    fn complete(&self) -> bool;

    /// Runs `attempt` for every task in `range` in parallel on the current
    /// rayon pool and takes the outcomes it gives (`None` for a task that
    /// did not finish), each written into the stamp and value slots it is
    /// handed (see [`attempt_into`](super::attempt::attempt_into)), with a
    /// state made by `carry` for each run of consecutive tasks on one
    /// worker. None of these tasks may have reported yet.
    fn fill_par<S>(
        &mut self,
        run: &StepRun<T>,
        range: Range<usize>,
        carry: impl Fn() -> S + Sync + Send,
        attempt: impl Fn(&mut S, usize, &mut Stamp, &mut Option<T>) -> Option<Landing> + Sync + Send,
    ) where
        T: Send + Sync,
    {
        let mut out = Vec::new();
        range
            .into_par_iter()
            .map_init(carry, |state, index| {
                let (mut stamp, mut value) = (Stamp::default(), None);
                let landing = attempt(state, index, &mut stamp, &mut value)?;
                Some(landing.into_outcome(run, index, stamp, value))
            })
            .collect_into_vec(&mut out);
        for outcome in out.into_iter().flatten() {
            self.accept(outcome);
        }
    }

    /// Learns the step's channel, over which the groups that run away
    /// from the waiting thread report.
    fn listen(&mut self, _rx: &Receiver<Outcome<T>>) {}

    /// Completes a receive that a `select` picked on the step's channel,
    /// and takes whatever else the channel holds without a select per
    /// outcome: a round of 10,000 retries reports 10,000 times. `false`
    /// when the channel has closed.
    fn receive(&mut self, op: SelectedOperation<'_>, rx: &Receiver<Outcome<T>>) -> bool {
        match op.recv(rx) {
            Ok(outcome) => {
                self.accept(outcome);
                while let Ok(outcome) = rx.try_recv() {
                    self.accept(outcome);
                }
                true
            }
            Err(_) => false,
        }
    }
}

impl<T> Intake<T> for ResultProcessor<T> {
    fn accept(&mut self, outcome: Outcome<T>) {
        ResultProcessor::accept(self, outcome);
    }

    fn complete(&self) -> bool {
        ResultProcessor::complete(self)
    }

    fn fill_par<S>(
        &mut self,
        _run: &StepRun<T>,
        range: Range<usize>,
        carry: impl Fn() -> S + Sync + Send,
        attempt: impl Fn(&mut S, usize, &mut Stamp, &mut Option<T>) -> Option<Landing> + Sync + Send,
    ) where
        T: Send + Sync,
    {
        ResultProcessor::fill_par(self, range, carry, attempt);
    }
}

/// The outcomes of one step, open until whoever ends the step closes it:
/// the thread that ran the step, or the caller that took the run over.
/// Outcomes that arrive after that are dropped, as a stuck task's late
/// outcome is.
pub(crate) struct Ledger<T> {
    open: Mutex<Option<Open<T>>>,
}

struct Open<T> {
    processor: ResultProcessor<T>,
    /// The step's channel, so that closing takes what is still in it.
    rx: Option<Receiver<Outcome<T>>>,
}

impl<T> Ledger<T> {
    /// An open ledger for `expected` outcomes.
    pub(crate) fn new(expected: usize) -> Self {
        Self {
            open: Mutex::new(Some(Open {
                processor: ResultProcessor::new(expected),
                rx: None,
            })),
        }
    }

    /// Closes the ledger and hands back its outcomes, with those still in
    /// the step's channel: every task that reported before the close keeps
    /// its result. `None` when it was already closed.
    pub(crate) fn close(&self) -> Option<ResultProcessor<T>> {
        let Open { mut processor, rx } = self.open.lock().take()?;
        if let Some(rx) = rx {
            while let Ok(outcome) = rx.try_recv() {
                processor.accept(outcome);
            }
        }
        Some(processor)
    }
}

impl<T> Intake<T> for &Ledger<T> {
    fn accept(&mut self, outcome: Outcome<T>) {
        if let Some(open) = &mut *self.open.lock() {
            open.processor.accept(outcome);
        }
    }

    fn complete(&self) -> bool {
        self.open.lock().as_ref().is_none_or(|o| o.processor.complete())
    }

    fn listen(&mut self, rx: &Receiver<Outcome<T>>) {
        if let Some(open) = &mut *self.open.lock() {
            open.rx = Some(rx.clone());
        }
    }

    /// As the provided method, with the receive made under the lock: an
    /// outcome is in the channel or in the ledger at every moment, so a
    /// close never misses one that is in flight between the two.
    fn receive(&mut self, op: SelectedOperation<'_>, rx: &Receiver<Outcome<T>>) -> bool {
        let mut open = self.open.lock();
        let Ok(outcome) = op.recv(rx) else { return false };
        if let Some(open) = &mut *open {
            open.processor.accept(outcome);
            while let Ok(outcome) = rx.try_recv() {
                open.processor.accept(outcome);
            }
        }
        true
    }
}
