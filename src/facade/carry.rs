//! Carrying a run into its pool: the walk runs there as one job, entered
//! once, and its caller outside the pool blocks on the run's end, a cancel
//! and the deadline, ready to take the run over.
//!
//! # Why
//!
//! Each injection into a pool from a thread outside it costs a full round
//! trip (about 13 µs on a small VM). A run whose every task is on one pool
//! therefore walks inside that pool: every step after the first starts from
//! a worker of the pool and pays nothing to get there.
//!
//! # How the caller stays in charge
//!
//! The walk is a `'static` job: it takes the executor's [`Core`], the
//! pipeline (an `Arc`), the input and the cancel token along. The caller
//! blocks in one `select` over the walk's end, a wake-up from the walk, the
//! cancel token's signal and the deadline; there is no polling.
//!
//! The walk keeps its progress (a [`Walk`] and the chain of contexts) on
//! its own stack while it is between steps, and *parks* it on a [`Board`]
//! while a step that a cancel or a deadline can cut short runs: the baton
//! then sits on the board, with the step's [`StepRun`] and the [`Ledger`]
//! that its outcomes go into. Two moves, each under the board's lock,
//! settle who finishes the step:
//!
//! - the walk, when the step ends, takes the baton back and closes the
//!   ledger, judges the step and walks on;
//! - the caller, when the cancel or the step's deadline fires while the
//!   baton is parked, takes it instead, closes the ledger (with every
//!   outcome that arrived, those still in the step's channel included),
//!   judges the step and finishes the run on its own thread with the very
//!   code the walk would have run. The walk, stuck in a task or not, finds
//!   the baton gone when it comes back, and stops: it has touched nothing
//!   the caller returned since it parked, and every context it made is in
//!   the chain the caller took, so the run's states leave the state
//!   manager as usual.
//!
//! Before the job has started, the baton is parked too, so a run whose job
//! waits behind a stuck task in a busy pool still ends on time (with no
//! context, as a run whose deadline passed before its first step).
//!
//! Between steps the walk runs only the engine's own code and the
//! observers, and stops at the next step by itself when the run was
//! cancelled or its deadline passed; the caller waits for that, woken when
//! the walk parks again or ends. So an observer that never returns holds
//! the run as it does when it runs on the caller's own thread.
//!
//! Runs with a checkpoint or an MPI remote borrow their saver and their
//! link, which a `'static` job cannot take along: they walk on the caller's
//! thread, one round trip per step.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Select, Sender};
use parking_lot::Mutex;
use rayon::ThreadPool;

use super::executor::{Core, Running, Scope, Walk, Walked};
use crate::engine::coordinator::ExecutionCoordinator;
use crate::engine::ledger::Ledger;
use crate::engine::plan::ExecutionPlan;
use crate::engine::processor::{ResultProcessor, StepOutcome};
use crate::engine::step_run::{Halt, StepRun};
use crate::engine::trace::RunHandle;
use crate::engine::unwind;
use crate::error::{DeadlineScope, RunError};
use crate::model::cancel::CancelToken;
use crate::model::pipeline::Pipeline;
use crate::model::strategy::EvaluationStrategy;
use crate::records::chain::ExecutionChain;

/// Where a carried walk parks its progress while it can be taken over;
/// see the module docs.
pub(crate) struct Board<T> {
    slot: Mutex<Slot<T>>,
    /// Tells the caller to look at the board again: the walk parked in a
    /// step with a deadline of its own, or parked after a halt. One
    /// pending wake-up is enough.
    wake: Sender<()>,
}

// One slot per run, moved rather than copied about; boxing the baton would
// allocate for every step that parks.
#[allow(clippy::large_enum_variant)]
enum Slot<T> {
    /// The walk holds its baton: it is between steps, or in a step that
    /// nothing can cut short.
    Walking,
    Parked(Baton<T>),
    /// The caller took the baton: the walk stops where it is.
    Taken,
}

/// A walk's progress, as it passes between the walk and the board.
struct Baton<T> {
    walk: Walk<T>,
    chain: ExecutionChain<T>,
    /// The step the walk is parked in; none before the walk has begun.
    step: Option<ParkedStep<T>>,
}

struct ParkedStep<T> {
    run: Arc<StepRun<T>>,
    ledger: Arc<Ledger<T>>,
    /// When the step's tasks were queued, on the run's clock.
    queued: Duration,
}

/// What the caller does next.
#[allow(clippy::large_enum_variant)] // a return value, used once
enum Watch<T> {
    /// Finish the run from this baton; the halt is why, and the processor
    /// holds the outcomes of the step it was parked in.
    Take(Baton<T>, Halt, Option<ResultProcessor<T>>),
    /// Wait, watching the deadline (when it has not passed) and the cancel
    /// (when it has not fired).
    Wait { deadline: Option<Instant>, cancel: bool },
}

/// What the walk's job sends back when it ends: how the walk ended (or its
/// panic, a bug in the engine), and the chain of contexts it made.
type Ended<T> = (
    std::thread::Result<Result<Walked<T>, RunError>>,
    ExecutionChain<T>,
);

impl<T: Send + Sync + 'static> Board<T> {
    /// Runs a step that a cancel or a deadline can cut short with the walk
    /// parked on the board, and judges it. `None` when the caller took the
    /// walk over meanwhile: the run is the caller's, and the walk must
    /// stop without touching anything.
    pub(super) fn run_step(
        &self,
        run: StepRun<T>,
        plan: ExecutionPlan,
        strategy: &EvaluationStrategy,
        walk: &mut Walk<T>,
        chain: &mut ExecutionChain<T>,
    ) -> Option<StepOutcome<T>> {
        let queued = run.clock.now();
        let run = Arc::new(run);
        let ledger = Arc::new(Ledger::new(run.tasks.len()));
        let baton = Baton {
            walk: std::mem::take(walk),
            chain: std::mem::take(chain),
            step: Some(ParkedStep {
                run: Arc::clone(&run),
                ledger: Arc::clone(&ledger),
                queued,
            }),
        };
        *self.slot.lock() = Slot::Parked(baton);
        // The caller already watches the run's deadline and the cancel;
        // a deadline of the step's own is news to it, and so is a parked
        // baton when a halt came while the walk was between steps.
        let own_deadline = run.deadline.is_some_and(|d| d.scope == DeadlineScope::Step);
        if own_deadline || run.halted().is_some() {
            let _ = self.wake.try_send(());
        }
        let halt = ExecutionCoordinator::gather(&run, plan, &ledger);
        let processor = {
            let mut slot = self.slot.lock();
            let Slot::Parked(baton) = std::mem::replace(&mut *slot, Slot::Walking) else {
                *slot = Slot::Taken;
                return None;
            };
            *walk = baton.walk;
            *chain = baton.chain;
            // Closed under the board's lock, so that the caller never finds
            // a parked step whose outcomes are gone.
            ledger.close()
        };
        // The ledger is closed only by whoever unparks the baton: never
        // empty here, and an empty one would judge every task lost rather
        // than hang.
        let processor = processor.unwrap_or_else(|| ResultProcessor::new(run.tasks.len()));
        Some(processor.judge(&run, queued, strategy, halt))
    }

    /// The walk's job takes its baton; `None` when the caller took the
    /// run over before the job started.
    fn begin(&self) -> Option<Baton<T>> {
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut *slot, Slot::Walking) {
            Slot::Parked(baton) => Some(baton),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// After a panic in the walk: the baton back from the board if it was
    /// parked, `Err` if the caller has taken it.
    fn abandon(&self) -> Result<Option<Baton<T>>, ()> {
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut *slot, Slot::Walking) {
            Slot::Parked(baton) => Ok(Some(baton)),
            Slot::Walking => Ok(None),
            Slot::Taken => {
                *slot = Slot::Taken;
                Err(())
            }
        }
    }

    /// Looks at the board for the caller: takes the baton when it is
    /// parked and the run is halted, or says what to wait for.
    fn watch(&self, scope: &Scope<'_, T>) -> Watch<T> {
        let mut slot = self.slot.lock();
        let (halt, deadline) = match &*slot {
            Slot::Parked(Baton { step: Some(step), .. }) => (step.run.halted(), step.run.deadline),
            // Not begun, or between steps: only the run's own deadline
            // and the cancel apply.
            _ => (run_halt(scope), scope.deadline),
        };
        if let Some(halt) = halt
            && matches!(*slot, Slot::Parked(_))
            && let Slot::Parked(baton) = std::mem::replace(&mut *slot, Slot::Taken)
        {
            let processor = baton.step.as_ref().and_then(|s| s.ledger.close());
            return Watch::Take(baton, halt, processor);
        }
        Watch::Wait {
            deadline: deadline.filter(|_| halt.is_none()).map(|d| d.at),
            cancel: halt.is_none() && scope.cancel.is_some(),
        }
    }
}

/// Whether a cancel or the run's deadline has halted the run.
fn run_halt<T>(scope: &Scope<'_, T>) -> Option<Halt> {
    if scope.deadline.is_some_and(|d| Instant::now() >= d.at) {
        Some(Halt::TimedOut)
    } else if scope.cancel.is_some_and(CancelToken::is_cancelled) {
        Some(Halt::Cancelled)
    } else {
        None
    }
}

/// Walks `pipeline` from `walk` inside `pool`, as one job, and blocks until
/// the run ends, is cancelled or its deadline passes; see the module docs.
/// `chain` holds the run's contexts when this returns, whoever finished
/// the run, or unwinds with the walk's panic (a bug in the engine).
pub(super) fn carry<T: Send + Sync + 'static>(
    core: &Arc<Core<T>>,
    pool: &ThreadPool,
    pipeline: &Pipeline<T>,
    scope: &Scope<'_, T>,
    span: RunHandle,
    chain: &mut ExecutionChain<T>,
    walk: Walk<T>,
) -> Result<Walked<T>, RunError> {
    let (wake, woken) = crossbeam_channel::bounded(1);
    let board = Arc::new(Board {
        slot: Mutex::new(Slot::Parked(Baton {
            walk,
            chain: std::mem::take(chain),
            step: None,
        })),
        wake,
    });
    let (done, ended) = crossbeam_channel::bounded::<Ended<T>>(1);
    spawn_walk(core, pool, pipeline, scope, span, &board, done);
    let never = crossbeam_channel::never();
    let cancel = scope.cancel.map_or(&never, CancelToken::signal);
    loop {
        let (deadline, watch_cancel) = match board.watch(scope) {
            Watch::Take(baton, halt, processor) => {
                return take_over(core, pipeline, scope, chain, baton, halt, processor);
            }
            Watch::Wait { deadline, cancel } => (deadline, cancel),
        };
        let mut select = Select::new();
        let end = select.recv(&ended);
        let wake = select.recv(&woken);
        if watch_cancel {
            select.recv(cancel);
        }
        let op = match deadline {
            Some(at) => select.select_deadline(at).ok(),
            None => Some(select.select()),
        };
        // The deadline came: look at the board again.
        let Some(op) = op else { continue };
        match op.index() {
            i if i == end => match op.recv(&ended) {
                Ok((walked, walked_chain)) => {
                    *chain = walked_chain;
                    return walked.unwrap_or_else(|panic| resume_unwind(panic));
                }
                // The job sends before it drops its sender unless the
                // caller took the run over, and then the caller is gone.
                Err(_) => panic!("the walk of a carried run ended without a word"),
            },
            i if i == wake => {
                let _ = op.recv(&woken);
            }
            // The signal carries no message: this is the cancel's
            // disconnect.
            _ => {
                let _ = op.recv(cancel);
            }
        }
    }
}

/// Hands the walk to `pool` as one job that takes its baton from `board`
/// and sends how it ended on `done`.
fn spawn_walk<T: Send + Sync + 'static>(
    core: &Arc<Core<T>>,
    pool: &ThreadPool,
    pipeline: &Pipeline<T>,
    scope: &Scope<'_, T>,
    span: RunHandle,
    board: &Arc<Board<T>>,
    done: Sender<Ended<T>>,
) {
    let (core, pipeline, board) = (Arc::clone(core), pipeline.clone(), Arc::clone(board));
    let (name, input, cancel) = (
        Arc::clone(scope.pipeline),
        Arc::clone(scope.input),
        scope.cancel.cloned(),
    );
    let (clock, deadline, run, total_tasks, retain, timed) = (
        scope.clock,
        scope.deadline,
        scope.run,
        scope.total_tasks,
        scope.retain,
        scope.timed,
    );
    pool.spawn(move || {
        let Some(Baton {
            mut walk, mut chain, ..
        }) = board.begin()
        else {
            return;
        };
        let scope = Scope {
            pipeline: &name,
            input: &input,
            clock,
            cancel: cancel.as_ref(),
            deadline,
            run,
            total_tasks,
            retain,
            timed,
            saver: None,
            remote: None,
            board: Some(&board),
            shared: std::sync::OnceLock::new(),
            executing: std::sync::OnceLock::new(),
        };
        let walked = catch_unwind(AssertUnwindSafe(|| {
            span.in_scope(|| core.walk(&pipeline, &scope, &mut chain, &mut walk, Vec::new()))
        }));
        let walked = match walked {
            // Taken over: the run is the caller's.
            Ok(Ok(None)) => return,
            Ok(Ok(Some(walked))) => Ok(Ok(walked)),
            Ok(Err(e)) => Ok(Err(e)),
            Err(panic) => match board.abandon() {
                Ok(parked) => {
                    if let Some(baton) = parked {
                        chain = baton.chain;
                    }
                    Err(panic)
                }
                Err(()) => {
                    log::error!(
                        "the walk of a carried run panicked after its caller took it over: {}",
                        unwind::settle(panic)
                    );
                    return;
                }
            },
        };
        let _ = done.send((walked, chain));
    });
}

/// Finishes the run on the caller's thread from a baton it took: judges
/// the step the walk was parked in, if any, with the outcomes that arrived,
/// and goes on as the walk would have.
fn take_over<T: Send + Sync + 'static>(
    core: &Core<T>,
    pipeline: &Pipeline<T>,
    scope: &Scope<'_, T>,
    chain: &mut ExecutionChain<T>,
    baton: Baton<T>,
    halt: Halt,
    processor: Option<ResultProcessor<T>>,
) -> Result<Walked<T>, RunError> {
    let Baton {
        mut walk,
        chain: taken,
        step: parked,
    } = baton;
    *chain = taken;
    if let Some(parked) = parked {
        let step = &pipeline.steps()[walk.at];
        let run = &parked.run;
        let processor = processor.unwrap_or_else(|| ResultProcessor::new(run.tasks.len()));
        let outcome = processor.judge(run, parked.queued, &step.strategy, Some(halt));
        let running = Running {
            id: run.context,
            deadline: run.deadline,
            span: run.span.clone(),
        };
        let end = core.record(scope, step, &running, Ok(outcome), chain)?;
        if let Some(walked) = core.advance(pipeline, scope, chain, &mut walk, end)? {
            return Ok(walked);
        }
    }
    // A halted walk stops before its next step; walking on here checks
    // that first, as the walk itself does.
    match core.walk(pipeline, scope, chain, &mut walk, Vec::new())? {
        Some(walked) => Ok(walked),
        None => unreachable!("a walk on the caller's thread has no board to be taken from"),
    }
}
