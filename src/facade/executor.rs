//! The facade: a blocking `execute` that walks a pipeline step by step.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::carry::{self, Board};
use crate::checkpoint::{self, CheckpointStore, Fingerprint, Journal, Keep, RunInfo, Saver, Start};
use crate::engine::coordinator::{Deadline, ExecutionCoordinator};
use crate::engine::outcome::Outcome;
use crate::engine::processor::StepOutcome;
use crate::engine::remote::{Remote, Share};
use crate::engine::step_run::{CutShort, RunShared, StepRun, TaskHook};
use rayon::ThreadPool;

use crate::engine::plan::ExecutorFactory;
use crate::engine::pools::{Pools, PoolsBuilder};
use crate::engine::registry::CustomExecutor;
use crate::engine::signal::{
    CheckpointEvent, ContextEvent, Observer, PipelineEvent, SignalEmitter, TaskEvent, TaskOutput,
};
use crate::engine::state_manager::ExecutionStateManager;
use crate::engine::trace::{RunSpan, StepSpan};
use crate::engine::unwind;
use crate::error::{BuildError, CancelledBy, DeadlineScope, RunError, TaskFailure};
use crate::facade::options::{Retention, RunOptions};
use crate::facade::run::Run;
use crate::ids::{ContextId, RunId};
use crate::model::cancel::CancelToken;
use crate::model::config::ExecutorConfig;
use crate::model::flow::{Next, StepVerdict};
use crate::model::pipeline::Pipeline;
use crate::model::step::Step;
use crate::records::chain::ExecutionChain;
use crate::records::context::ExecutionContext;
use crate::records::metrics::{ExecutionMetrics, RunClock, Stamp, TaskStamps};
use crate::records::results::ResultSet;
use crate::records::state::ExecutionState;
use crate::status::ExecutionStatus;

/// Runs pipelines, blocking the caller until each run ends.
///
/// One executor serves any number of threads at once: `execute` takes
/// `&self`. Its [`Pools`] are built once and reused by every run; several
/// executors, of different value types, can share one set of pools. Calling
/// `execute` from inside a task is allowed, on any pool, including a
/// one-thread pool.
///
/// ```
/// use conveyor::{ExecutorConfig, LogObserver, Pipeline, PipelineExecutor};
/// let executor = PipelineExecutor::builder()
///     .executor("cpu", ExecutorConfig::pool(2))
///     .observer(LogObserver)
///     .build()?;
/// let pipeline = Pipeline::<u64>::builder("sum")
///     .step_with(|s| s.task("square", |c| Ok(c.input() * c.input()))
///                     .task("double", |c| Ok(c.input() * 2))
///                     .on("cpu"))
///     .task("total", |c| Ok(c.previous().values().sum()))
///     .build()?;
/// let run = executor.execute(&pipeline, 7)?;
/// assert_eq!(run.output()?.get("total"), Some(&63));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PipelineExecutor<T> {
    core: Arc<Core<T>>,
}

/// What an executor's runs share. It sits behind an `Arc` so that a run
/// carried into a pool (see [`carry`]) can take it along in
/// a `'static` job.
pub(super) struct Core<T> {
    factory: ExecutorFactory,
    emitter: Arc<SignalEmitter>,
    states: ExecutionStateManager<T>,
    results: Option<ResultCallback<T>>,
}

/// The callback given to [`PipelineExecutorBuilder::on_result`].
type ResultCallback<T> = Arc<dyn Fn(&TaskOutput<'_, T>) + Send + Sync>;

/// Builds a [`PipelineExecutor`]; see [`PipelineExecutor::builder`].
pub struct PipelineExecutorBuilder<T> {
    own: PoolsBuilder,
    shared: Option<Pools>,
    default: ExecutorConfig,
    emitter: SignalEmitter,
    results: Option<ResultCallback<T>>,
    _values: PhantomData<fn() -> T>,
}

impl<T> PipelineExecutorBuilder<T> {
    /// Registers `config` under `name`, for tasks that say `.on(name)`;
    /// as [`PoolsBuilder::executor`]. Each name registered with a pool config
    /// is a pool of its own, built by [`build`](Self::build).
    ///
    /// Default: no names. A bad name or config is reported by `build`.
    #[must_use]
    pub fn executor(mut self, name: &str, config: ExecutorConfig) -> Self {
        self.own = self.own.executor(name, config);
        self
    }

    /// Registers a rayon pool the caller built, under `name`; as
    /// [`PoolsBuilder::rayon_pool`].
    ///
    /// Default: none.
    #[must_use]
    pub fn rayon_pool(mut self, name: &str, pool: Arc<ThreadPool>) -> Self {
        self.own = self.own.rayon_pool(name, pool);
        self
    }

    /// Registers a custom executor under `name`.
    ///
    /// Default: none. A bad name is reported by `build`.
    #[must_use]
    pub fn custom_executor(mut self, name: &str, executor: impl CustomExecutor + 'static) -> Self {
        self.own = self.own.custom_executor(name, executor);
        self
    }

    /// Runs on `pools`, shared with whoever else holds them, instead of
    /// pools of its own. Names are then registered on the [`Pools`], not
    /// here.
    ///
    /// Default: pools of its own, from [`executor`](Self::executor),
    /// [`rayon_pool`](Self::rayon_pool) and
    /// [`custom_executor`](Self::custom_executor).
    #[must_use]
    pub fn pools(mut self, pools: Pools) -> Self {
        self.shared = Some(pools);
        self
    }

    /// The executor for tasks that name none.
    ///
    /// Default: [`ExecutorConfig::Global`].
    #[must_use]
    pub fn default_executor(mut self, config: ExecutorConfig) -> Self {
        self.default = config;
        self
    }

    /// Adds an observer. Observers hear signals in the order they were added.
    ///
    /// Default: none.
    #[must_use]
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.emitter.add(observer);
        self
    }

    /// Hands every task's value to `callback` as soon as the task succeeds,
    /// on the thread that ran it: how a job streams results out (to a
    /// file, a channel, a database) instead of keeping them, together with
    /// [`Retention::Needed`](crate::Retention::Needed). Values restored
    /// from a checkpoint are not handed over again.
    ///
    /// The callback runs on pool threads, so it should be quick; a panic in
    /// it is caught and logged, and the task still counts as succeeded.
    ///
    /// ```
    /// use conveyor::{Pipeline, PipelineExecutor, Retention, RunOptions, Task};
    /// use std::sync::mpsc;
    /// let (tx, rx) = mpsc::channel();
    /// let tx = std::sync::Mutex::new(tx);
    /// let executor = PipelineExecutor::builder()
    ///     .on_result(move |out| {
    ///         let _ = tx.lock().unwrap().send((out.task.to_owned(), *out.value));
    ///     })
    ///     .build()?;
    /// let pipeline = Pipeline::builder("p")
    ///     .step([Task::from_fn("a", |c| Ok(*c.input() + 1))])
    ///     .step([Task::from_fn("b", |c| Ok(c.previous().first().unwrap() * 2))])
    ///     .build()?;
    /// let options = RunOptions::new().retain(Retention::Needed);
    /// let run = executor.execute_with(&pipeline, 1_u64, &options)?;
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [("a".to_owned(), 2), ("b".to_owned(), 4)]);
    /// // The first step's results were dropped once the second finished.
    /// assert!(run.chain().head().unwrap().state().results().is_empty());
    /// assert_eq!(run.output()?.get("b"), Some(&4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn on_result(mut self, callback: impl Fn(&TaskOutput<'_, T>) + Send + Sync + 'static) -> Self {
        self.results = Some(Arc::new(callback));
        self
    }

    /// Builds the executor and its named pools.
    ///
    /// # Errors
    /// Those of [`PoolsBuilder::build`]; [`BuildError::ZeroThreads`] or
    /// [`BuildError::UnknownExecutor`] for a bad default config; and
    /// [`BuildError::SharedPools`] when names were registered here as well
    /// as shared [`pools`](Self::pools) given.
    pub fn build(self) -> Result<PipelineExecutor<T>, BuildError> {
        let pools = match self.shared {
            Some(_) if !self.own.is_empty() => return Err(BuildError::SharedPools),
            Some(pools) => pools,
            None => self.own.build()?,
        };
        Ok(PipelineExecutor {
            core: Arc::new(Core {
                factory: ExecutorFactory::new(pools, self.default)?,
                emitter: Arc::new(self.emitter),
                states: ExecutionStateManager::new(),
                results: self.results,
            }),
        })
    }
}

impl<T> fmt::Debug for PipelineExecutorBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineExecutorBuilder")
            .field("own", &self.own)
            .field("shared", &self.shared)
            .field("default", &self.default)
            .field("emitter", &self.emitter)
            .finish()
    }
}

/// What one step's run needs from the surrounding run.
pub(super) struct Scope<'a, T> {
    pub(super) pipeline: &'a Arc<str>,
    pub(super) input: &'a Arc<T>,
    pub(super) clock: RunClock,
    pub(super) cancel: Option<&'a CancelToken>,
    pub(super) deadline: Option<Deadline>,
    pub(super) run: RunId,
    pub(super) total_tasks: usize,
    pub(super) retain: Retention,
    /// Whether tasks' starts and ends are read from the clock.
    pub(super) timed: bool,
    pub(super) saver: Option<&'a dyn Saver<T>>,
    /// Where the steps' tasks run when not all in this process (an MPI
    /// job's ranks).
    pub(super) remote: Option<&'a dyn Remote<T>>,
    /// Where a walk carried into a pool parks while a step that can be cut
    /// short runs, so that its caller can take it over.
    pub(super) board: Option<&'a Board<T>>,
    /// What every step's `StepRun` shares, built by the first step.
    pub(super) shared: OnceLock<Arc<RunShared<T>>>,
    /// The state every context of the run starts in, built by the first
    /// step (see [`ExecutionStateManager::insert_as`]).
    pub(super) executing: OnceLock<Arc<ExecutionState<T>>>,
}

/// Where a walk is: all it carries from one step to the next, so that
/// whoever finishes a step (the walk, or the caller that took a carried
/// run over) can go on from it.
pub(super) struct Walk<T> {
    /// The step running, or the next to run.
    pub(super) at: usize,
    /// The results the step at `at` reads.
    previous: ResultSet<T>,
    /// Sinks still to run, the next one last.
    sinks: Vec<usize>,
    /// Set once a step fails with no failure branch: the pending sinks
    /// still run, like `finally` blocks, and the run then ends aborted with
    /// this first failure.
    unwinding: Option<RunError>,
    /// The latest context in the chain.
    tail: Option<ContextId>,
}

impl<T> Walk<T> {
    /// A walk that starts at step `at`, after the contexts of `chain`.
    pub(super) fn new(
        at: usize,
        previous: ResultSet<T>,
        sinks: Vec<usize>,
        chain: &ExecutionChain<T>,
    ) -> Self {
        Self {
            at,
            previous,
            sinks,
            unwinding: None,
            tail: chain.tail().map(ExecutionContext::id),
        }
    }

    /// The run's end, with the results read last as its output.
    fn end(&mut self, status: ExecutionStatus, failure: RunError) -> Walked<T> {
        (status, std::mem::take(&mut self.previous), Some(failure))
    }
}

impl<T> Default for Walk<T> {
    fn default() -> Self {
        Self {
            at: 0,
            previous: ResultSet::empty(),
            sinks: Vec::new(),
            unwinding: None,
            tail: None,
        }
    }
}

/// How a walk ended: the run's status, its output and its failure.
pub(super) type Walked<T> = (ExecutionStatus, ResultSet<T>, Option<RunError>);

/// The names of the steps at `indices`.
fn names<T>(steps: &[Step<T>], indices: &[usize]) -> Vec<Arc<str>> {
    indices.iter().map(|&i| Arc::clone(&steps[i].name)).collect()
}

/// How one step's run ended, as the walk needs it.
pub(super) struct StepEnd {
    id: ContextId,
    status: ExecutionStatus,
    switch: Option<(u8, Arc<str>)>,
    stop: Option<Arc<str>>,
    timed_out: Option<Deadline>,
    /// The error of a custom evaluation rule that panicked.
    rule_panic: Option<RunError>,
}

/// A context whose step is running: what recording its end needs.
pub(super) struct Running {
    pub(super) id: ContextId,
    /// The step's deadline or the run's, whichever comes first.
    pub(super) deadline: Option<Deadline>,
    pub(super) span: StepSpan,
}

/// Why a walk stops before it starts `step`: a cancel or a passed run
/// deadline.
fn halted_before<T>(scope: &Scope<'_, T>, step: &Step<T>) -> Option<(ExecutionStatus, RunError)> {
    if scope.cancel.is_some_and(CancelToken::is_cancelled) {
        let failure = RunError::Cancelled {
            step: Arc::clone(&step.name),
            by: CancelledBy::Token,
        };
        return Some((ExecutionStatus::Cancelled, failure));
    }
    let deadline = scope.deadline.filter(|d| Instant::now() >= d.at)?;
    // None of the step's tasks ran, so each one did not finish in time.
    let failures = step
        .tasks
        .iter()
        .map(|task| TaskFailure::TimedOut {
            task: Arc::clone(&task.name),
            step: Arc::clone(&step.name),
            scope: deadline.scope,
            limit: deadline.limit,
        })
        .collect();
    Some((ExecutionStatus::Aborted, timeout(step, deadline, failures)))
}

/// An event about context `id` of `step`, with no errors or verdict yet.
fn context_event<'a, T>(
    scope: &'a Scope<'_, T>,
    step: &'a Step<T>,
    id: ContextId,
    status: ExecutionStatus,
) -> ContextEvent<'a> {
    ContextEvent {
        run: scope.run,
        pipeline: scope.pipeline,
        total_tasks: scope.total_tasks,
        restored: false,
        step: &step.name,
        context: id,
        tasks: step.tasks.len(),
        status,
        errors: &[],
        evaluation: None,
    }
}

impl<T> PipelineExecutor<T> {
    /// Starts building an executor.
    #[must_use]
    pub fn builder() -> PipelineExecutorBuilder<T> {
        PipelineExecutorBuilder {
            own: Pools::builder(),
            shared: None,
            default: ExecutorConfig::default(),
            emitter: SignalEmitter::new(),
            results: None,
            _values: PhantomData,
        }
    }

    /// The live states of running contexts, read-only; readable from any
    /// thread while runs execute. A context leaves it when its run ends.
    #[must_use]
    pub fn states(&self) -> &ExecutionStateManager<T> {
        &self.core.states
    }

    /// The pools this executor runs on; clone the handle to share them.
    #[must_use]
    pub fn pools(&self) -> &Pools {
        self.core.factory.pools()
    }

    /// The executor configs `step`'s tasks run on, one per group, in the
    /// order each first appears among the tasks: how the step will be
    /// dispatched.
    ///
    /// # Errors
    /// [`BuildError::UnknownExecutor`] or [`BuildError::ZeroThreads`] for a
    /// task whose executor cannot be found or built, and
    /// [`BuildError::PoolBuild`].
    pub fn plan(&self, step: &Step<T>) -> Result<Vec<ExecutorConfig>, BuildError> {
        Ok(self.core.factory.plan(step)?.configs())
    }
}

impl<T: Send + Sync + 'static> PipelineExecutor<T> {
    /// Runs `pipeline` on `input` and blocks until it ends.
    ///
    /// Steps run in the order the pipeline's flow gives (see [`Step`]); each
    /// step's tasks see `input` and the results of the step that ran before.
    /// When a step fails and no failure branch catches it, the run stops
    /// there as `Aborted`; it still comes back as `Ok`, with [`Run::output`]
    /// giving the failure. A step whose deadline passes comes back the same
    /// way, with [`RunError::Timeout`] as the run's failure and every step
    /// that finished before it. Panics in user code are caught and never
    /// reach the caller. See the crate's README, "How a step waits", for
    /// what the calling thread does while a step runs.
    ///
    /// # Errors
    /// Before anything runs: [`RunError::Build`] with
    /// [`BuildError::UnknownExecutor`] or [`BuildError::ZeroThreads`] for a
    /// task whose executor cannot be found or built, or
    /// [`BuildError::PoolBuild`].
    pub fn execute(&self, pipeline: &Pipeline<T>, input: T) -> Result<Run<T>, RunError> {
        self.execute_with(pipeline, input, &RunOptions::default())
    }

    /// [`execute`](Self::execute) with a cancel token and a run deadline.
    ///
    /// A cancelled run returns `Ok` with status `Cancelled` within
    /// milliseconds of the cancel, even while a task is stuck; tasks that had
    /// not finished are recorded as
    /// [`TaskFailure::Cancelled`](crate::TaskFailure::Cancelled). A run whose
    /// deadline passes returns `Ok` as `Aborted`, with [`RunError::Timeout`]
    /// as its failure and every step that finished.
    ///
    /// # Errors
    /// As [`execute`](Self::execute).
    pub fn execute_with(
        &self,
        pipeline: &Pipeline<T>,
        input: T,
        options: &RunOptions,
    ) -> Result<Run<T>, RunError> {
        self.run(
            pipeline,
            input,
            options,
            Start::fresh(pipeline.steps().len()),
            None,
            None,
        )
    }

    /// Runs `pipeline` from `start`, saving progress with `saver` as it
    /// goes.
    fn run(
        &self,
        pipeline: &Pipeline<T>,
        input: T,
        options: &RunOptions,
        start: Start<T>,
        saver: Option<&dyn Saver<T>>,
        remote: Option<&dyn Remote<T>>,
    ) -> Result<Run<T>, RunError> {
        for step in pipeline.steps() {
            self.core.factory.check(step)?;
        }
        let scope = Scope {
            pipeline: &pipeline.inner.name,
            input: &Arc::new(input),
            clock: RunClock::resumed(start.offset),
            cancel: options.cancel.as_ref(),
            deadline: Deadline::after(options.timeout, DeadlineScope::Run),
            run: start.run,
            total_tasks: pipeline.steps().iter().map(|s| s.tasks.len()).sum(),
            retain: options.retain,
            timed: !options.untimed,
            saver,
            remote,
            board: None,
            shared: OnceLock::new(),
            executing: OnceLock::new(),
        };
        let pipeline_event = |status| PipelineEvent {
            run: scope.run,
            pipeline: scope.pipeline,
            total_tasks: scope.total_tasks,
            status,
            elapsed: scope.clock.here(),
        };
        if !self.core.emitter.is_empty() {
            self.core
                .emitter
                .emit(|o| o.pipeline_started(&pipeline_event(None)));
            self.core.announce_restored(&scope, &start);
        }
        let Start {
            at,
            previous,
            sinks,
            mut chain,
            done,
            pending,
            ..
        } = start;
        let restored = chain.len();
        // A run links at least one context per step it reaches.
        chain.reserve(pipeline.steps().len());
        if done {
            // A checkpoint of a finished run: the run comes back as it was
            // saved, nothing runs again, so a job killed after its last
            // save still gets its output.
            if !self.core.emitter.is_empty() {
                let event = pipeline_event(Some(ExecutionStatus::Finished));
                self.core.emitter.emit(|o| o.pipeline_finished(&event));
            }
            return Ok(Run {
                id: scope.run,
                pipeline: Arc::clone(scope.pipeline),
                status: ExecutionStatus::Finished,
                chain,
                output: previous,
                failure: None,
                duration: scope.clock.here(),
                restored,
                resumed_at: scope.clock.offset(),
                started_at: scope.clock.wall_start(),
            });
        }
        let pending: Vec<Outcome<T>> = pending
            .into_iter()
            .map(|t| Outcome {
                index: t.index,
                result: Ok(t.value),
                stamp: Stamp::new(t.started, t.finished, t.attempts, t.thread),
                directive: t.directive,
            })
            .collect();
        let span = RunSpan::enter(scope.pipeline);
        let walked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut walk = Walk::new(at, previous, sinks, &chain);
            let watched = scope.cancel.is_some()
                || scope.deadline.is_some()
                || pipeline.steps().iter().any(|s| s.timeout.is_some());
            let walked = |walked: Option<Walked<T>>| match walked {
                Some(walked) => walked,
                None => unreachable!("a walk with no board cannot be taken over"),
            };
            match self.carrier(pipeline, &scope) {
                // A run nothing can cut short is joined in place: `install`
                // costs less than a job and a wake-up, and the caller has
                // nothing to watch while it waits.
                Some(pool) if !watched => {
                    let handle = span.handle();
                    let (chain, walk) = (&mut chain, &mut walk);
                    pool.install(|| {
                        handle.in_scope(|| self.core.walk(pipeline, &scope, chain, walk, pending))
                    })
                    .map(walked)
                }
                // The whole walk runs inside the pool, entered once: every
                // step after the first starts from a worker of its own
                // pool, and pays no round trip.
                Some(pool) => {
                    debug_assert!(pending.is_empty(), "a resumed run has a saver and is not carried");
                    carry::carry(
                        &self.core,
                        &pool,
                        pipeline,
                        &scope,
                        span.handle(),
                        &mut chain,
                        walk,
                    )
                }
                None => self
                    .core
                    .walk(pipeline, &scope, &mut chain, &mut walk, pending)
                    .map(walked),
            }
        }));
        // Whatever happened, this run's contexts leave the live map: memory
        // stays bounded however many runs go through one executor. User
        // code cannot panic through the walk (it runs under
        // `catch_unwind`), but a bug in the engine must not leak states
        // either, so the panic is resumed only after the cleanup.
        self.core.states.remove(chain.ids());
        let walked = match walked {
            Ok(walked) => walked,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let duration = scope.clock.here();
        let status = match &walked {
            Ok((status, ..)) => *status,
            Err(_) => ExecutionStatus::Aborted,
        };
        span.finish(status, walked.as_ref().map_or_else(Some, |(_, _, f)| f.as_ref()));
        if !self.core.emitter.is_empty() {
            if let Some(saver) = scope.saver {
                saver.flush();
            }
            let event = pipeline_event(Some(status));
            if status == ExecutionStatus::Cancelled {
                self.core.emitter.emit(|o| o.pipeline_stopped(&event));
            } else {
                self.core.emitter.emit(|o| o.pipeline_finished(&event));
            }
        }
        let (status, output, failure) = walked?;
        Ok(Run {
            id: scope.run,
            pipeline: Arc::clone(scope.pipeline),
            status,
            chain,
            output,
            failure,
            duration,
            restored,
            resumed_at: scope.clock.offset(),
            started_at: scope.clock.wall_start(),
        })
    }

    /// The pool to carry a whole run into, so that it is entered once per
    /// run rather than once per step (see [`carry`]): for a
    /// run whose caller is outside every pool and whose every task runs on
    /// that one pool. A run that mixes executors keeps inline tasks on the
    /// caller's own thread; a run with a checkpoint or an MPI remote
    /// borrows them, and a borrowed saver or link cannot go into a
    /// `'static` job, so it walks on the caller's thread too.
    fn carrier(&self, pipeline: &Pipeline<T>, scope: &Scope<'_, T>) -> Option<Arc<ThreadPool>> {
        if scope.saver.is_some() || scope.remote.is_some() || rayon::current_thread_index().is_some() {
            return None;
        }
        self.core.factory.sole_pool(pipeline.steps())
    }
}

impl<T: Send + Sync + 'static> Core<T> {
    /// Follows the pipeline's flow from where `walk` is to the end. `chain`
    /// holds the contexts of earlier steps, if the run is resumed, and
    /// `pending` the outcomes of the first step's tasks that succeeded in an
    /// earlier process.
    ///
    /// `None` when the caller of a carried run took the walk over (see
    /// [`carry`]): the run is then the caller's to finish, and
    /// this walk has changed nothing since.
    pub(super) fn walk(
        &self,
        pipeline: &Pipeline<T>,
        scope: &Scope<'_, T>,
        chain: &mut ExecutionChain<T>,
        walk: &mut Walk<T>,
        mut pending: Vec<Outcome<T>>,
    ) -> Result<Option<Walked<T>>, RunError> {
        loop {
            let step = &pipeline.steps()[walk.at];
            if let Some((status, failure)) = halted_before(scope, step) {
                return Ok(Some(walk.end(status, failure)));
            }
            let Some(end) = self.run_context(scope, step, walk, chain, std::mem::take(&mut pending))? else {
                return Ok(None);
            };
            if let Some(walked) = self.advance(pipeline, scope, chain, walk, end)? {
                return Ok(Some(walked));
            }
        }
    }

    /// Moves `walk` on from the step it just ran, which ended as `end`:
    /// to the step the flow gives next (`None`), or to the run's end.
    pub(super) fn advance(
        &self,
        pipeline: &Pipeline<T>,
        scope: &Scope<'_, T>,
        chain: &mut ExecutionChain<T>,
        walk: &mut Walk<T>,
        end: StepEnd,
    ) -> Result<Option<Walked<T>>, RunError> {
        let steps = pipeline.steps();
        let graph = &pipeline.inner.graph;
        let step = &steps[walk.at];
        if scope.retain == Retention::Needed
            && let Some(before) = walk.tail
        {
            // The step before this one is read by nobody from now on.
            self.states.remove([before]);
            if let Some(context) = chain.get_mut(before) {
                context.state = Arc::new(context.state.with_results(ResultSet::empty()));
            }
        }
        walk.tail = Some(end.id);
        let context = chain
            .get(end.id)
            .ok_or(RunError::UnknownContext { context: end.id })?;
        let state = Arc::clone(context.state());
        if let Some(deadline) = end.timed_out {
            // The run comes back with every finished step; what the
            // timed-out step finished is in its context.
            let failure = timeout(step, deadline, state.errors().to_vec());
            return Ok(Some(walk.end(ExecutionStatus::Aborted, failure)));
        }
        walk.previous = state.results().clone();
        if let Some(failure) = walk.unwinding.take() {
            return Ok(match walk.sinks.pop() {
                Some(sink) => {
                    walk.unwinding = Some(failure);
                    walk.at = sink;
                    None
                }
                None => Some(walk.end(ExecutionStatus::Aborted, failure)),
            });
        }
        let verdict = match end.status {
            ExecutionStatus::Cancelled => {
                let by = end.stop.map_or(CancelledBy::Token, CancelledBy::Task);
                let failure = RunError::Cancelled {
                    step: Arc::clone(&step.name),
                    by,
                };
                return Ok(Some(walk.end(ExecutionStatus::Cancelled, failure)));
            }
            ExecutionStatus::Finished => StepVerdict::Succeeded(end.switch.as_ref().map(|(n, _)| *n)),
            _ => StepVerdict::Failed,
        };
        // Progress is saved only when the walk moves on: a step that
        // aborts or cancels the run is run again by a resume.
        match graph.next(walk.at, verdict, &mut walk.sinks) {
            Ok(Next::Step(next)) => {
                if let Some(saver) = scope.saver {
                    saver.step(context, Some(&steps[next].name), &names(steps, &walk.sinks))?;
                }
                walk.at = next;
                Ok(None)
            }
            Ok(Next::End) => {
                if let Some(saver) = scope.saver {
                    saver.step(context, None, &names(steps, &walk.sinks))?;
                }
                Ok(Some((
                    ExecutionStatus::Finished,
                    std::mem::take(&mut walk.previous),
                    None,
                )))
            }
            Ok(Next::Abort) => {
                // No verdict when the step's executor could not be
                // built: every task then failed to dispatch.
                let (strategy, succeeded, total) = context.evaluation().map_or_else(
                    || (step.strategy.name().into(), 0, step.tasks.len()),
                    |e| (e.strategy.as_ref().into(), e.succeeded, e.total),
                );
                let failure = end.rule_panic.unwrap_or_else(|| {
                    RunError::step_failed(
                        Arc::clone(&step.name),
                        strategy,
                        succeeded,
                        total,
                        state.errors().to_vec(),
                    )
                });
                walk.sinks.extend(graph.sink(walk.at));
                Ok(match walk.sinks.pop() {
                    Some(sink) => {
                        walk.unwinding = Some(failure);
                        walk.at = sink;
                        None
                    }
                    None => Some(walk.end(ExecutionStatus::Aborted, failure)),
                })
            }
            Err(target) => {
                let task = end
                    .switch
                    .map(|(_, task)| task)
                    .unwrap_or_else(|| Arc::clone(&step.name));
                let failure = RunError::UnknownSwitch {
                    step: Arc::clone(&step.name),
                    task,
                    target,
                };
                Ok(Some(walk.end(ExecutionStatus::Aborted, failure)))
            }
        }
    }
}

impl<T: Send + Sync + 'static> PipelineExecutor<T> {
    /// Runs one step of `pipeline` as a single context linked into `chain`
    /// right after `after` (at the head when `None`): the seed's
    /// `execute_pipeline(tasks, pipeline, previous_context_id)`. The step's
    /// tasks see the results of `after` as their previous results. Metrics
    /// offsets count from the start of this call.
    ///
    /// Returns the new context's id; its final state is in `chain`.
    ///
    /// # Errors
    /// [`RunError::UnknownStep`], [`RunError::UnknownContext`] when
    /// `after` is not in `chain`, and the executor errors of
    /// [`execute`](Self::execute). Task failures are not errors here: they
    /// are in the context's state.
    pub fn execute_step(
        &self,
        pipeline: &Pipeline<T>,
        step: &str,
        input: T,
        chain: &mut ExecutionChain<T>,
        after: Option<ContextId>,
    ) -> Result<ContextId, RunError> {
        let step = pipeline.step(step).ok_or_else(|| RunError::UnknownStep {
            pipeline: Arc::clone(&pipeline.inner.name),
            step: step.to_owned(),
        })?;
        self.core.factory.check(step)?;
        let previous = match after {
            Some(id) => chain
                .get(id)
                .ok_or(RunError::UnknownContext { context: id })?
                .state()
                .results()
                .clone(),
            None => ResultSet::empty(),
        };
        let scope = Scope {
            pipeline: &pipeline.inner.name,
            input: &Arc::new(input),
            clock: RunClock::start(),
            cancel: None,
            deadline: None,
            run: RunId::next(),
            total_tasks: step.tasks.len(),
            retain: Retention::All,
            timed: true,
            saver: None,
            remote: None,
            board: None,
            shared: OnceLock::new(),
            executing: OnceLock::new(),
        };
        let mut walk = Walk {
            previous,
            tail: after,
            ..Walk::default()
        };
        let Some(end) = self
            .core
            .run_context(&scope, step, &mut walk, chain, Vec::new())?
        else {
            unreachable!("a step run on the caller's thread has no board to be taken from");
        };
        self.core.states.remove([end.id]);
        if let Some(deadline) = end.timed_out {
            let errors = chain
                .get(end.id)
                .map(|c| c.state().errors().to_vec())
                .unwrap_or_default();
            return Err(timeout(step, deadline, errors));
        }
        Ok(end.id)
    }

    /// Runs one process's share of a step that an MPI job shares among its
    /// processes, and hands back the outcomes unjudged: no context, no
    /// observers, no hooks (the walking process does all that).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn run_share(&self, step: &Step<T>, share: Share<T>) -> Vec<Outcome<T>> {
        let watched = share.deadline.is_some() || share.cancel.is_some();
        let run = StepRun {
            shared: Arc::new(RunShared {
                pipeline: share.pipeline,
                input: share.input,
                emitter: Arc::default(),
                clock: share.clock,
                cancel: share.cancel,
                run_id: share.run,
                total_tasks: share.total_tasks,
                // The walking process decides whether its metrics show
                // times; a share always records them, and costs the same
                // either way next to the messages it travels in.
                timed: true,
            }),
            step: Arc::clone(&step.name),
            context: share.context,
            tasks: step.tasks.shared(),
            names: Arc::clone(step.names()),
            previous: share.previous,
            deadline: share.deadline,
            span: StepSpan::default(),
            hooks: Vec::new(),
            cut: watched.then(|| CutShort::new(step.tasks.len())),
        };
        match self.core.factory.plan(step) {
            Ok(plan) => ExecutionCoordinator::run_only(run, plan, &share.only),
            // As in a step run here: every task failed to dispatch.
            Err(e) => {
                let now = run.clock.now();
                (0..step.tasks.len())
                    .filter(|&i| share.only[i])
                    .map(|index| Outcome {
                        index,
                        result: Err(Box::new(TaskFailure::Dispatch {
                            executor: "(not built)".into(),
                            task: Arc::clone(&step.tasks[index].name),
                            step: Arc::clone(&step.name),
                            message: e.to_string(),
                        })),
                        stamp: Stamp::new(now, now, 0, crate::records::metrics::thread_number()),
                        directive: None,
                    })
                    .collect()
            }
        }
    }
}

impl<T: Send + Sync + 'static> Core<T> {
    /// Creates, links and runs one context for `walk`'s step, moving its
    /// state as it goes. `restored` are outcomes of its tasks that
    /// succeeded in an earlier process: they are not run again.
    ///
    /// `None` when the caller of a carried run took it over while the step
    /// ran.
    fn run_context(
        &self,
        scope: &Scope<'_, T>,
        step: &Step<T>,
        walk: &mut Walk<T>,
        chain: &mut ExecutionChain<T>,
        restored: Vec<Outcome<T>>,
    ) -> Result<Option<StepEnd>, RunError> {
        let id = ContextId::next();
        let executing = scope
            .executing
            .get_or_init(|| Arc::new(ExecutionState::new().with_status(ExecutionStatus::Executing)));
        let state = self.states.insert_as(id, executing);
        let context = ExecutionContext {
            id,
            pipeline: Arc::clone(scope.pipeline),
            step: Arc::clone(&step.name),
            tasks: step.tasks.shared(),
            state,
            metrics: ExecutionMetrics::starting(&scope.clock).into(),
            evaluation: None,
        };
        if let Err(e) = chain.insert_after(walk.tail, context) {
            self.states.remove([id]);
            return Err(e);
        }
        self.signal_context(
            context_event(scope, step, id, ExecutionStatus::Pending),
            |o, e| {
                o.context_initialized(e);
            },
        );
        self.signal_context(
            context_event(scope, step, id, ExecutionStatus::Executing),
            |o, e| {
                o.context_started(e);
            },
        );

        let step_deadline = Deadline::after(step.timeout, DeadlineScope::Step);
        let running = Running {
            id,
            deadline: match (step_deadline, scope.deadline) {
                (Some(s), Some(r)) => Some(if r.at <= s.at { r } else { s }),
                (s, r) => s.or(r),
            },
            span: StepSpan::new(scope.pipeline, &step.name, id, step.tasks.len()),
        };
        let _entered = running.span.enter();
        let outcome = match self.factory.plan(step) {
            Ok(plan) => {
                let shared = scope.shared.get_or_init(|| {
                    Arc::new(RunShared {
                        pipeline: Arc::clone(scope.pipeline),
                        input: Arc::clone(scope.input),
                        emitter: Arc::clone(&self.emitter),
                        clock: scope.clock,
                        cancel: scope.cancel.cloned(),
                        run_id: scope.run,
                        total_tasks: scope.total_tasks,
                        timed: scope.timed,
                    })
                });
                let watched = running.deadline.is_some() || scope.cancel.is_some();
                let run = StepRun {
                    shared: Arc::clone(shared),
                    step: Arc::clone(&step.name),
                    context: id,
                    tasks: step.tasks.shared(),
                    names: Arc::clone(step.names()),
                    previous: walk.previous.clone(),
                    deadline: running.deadline,
                    span: running.span.clone(),
                    hooks: self.hooks(scope, step, id),
                    cut: watched.then(|| CutShort::new(step.tasks.len())),
                };
                match scope.board.filter(|_| watched) {
                    // A step that can be cut short, in a carried run: the
                    // caller may have to take it over, so the walk parks
                    // on the board while it runs.
                    Some(board) => match board.run_step(run, plan, &step.strategy, walk, chain) {
                        Some(outcome) => Ok(outcome),
                        None => return Ok(None),
                    },
                    None => {
                        let gathered = match scope.remote {
                            Some(remote) => {
                                let mut done = vec![false; step.tasks.len()];
                                for outcome in &restored {
                                    done[outcome.index] = true;
                                }
                                remote.gather(step, &run, &done)
                            }
                            None => Vec::new(),
                        };
                        Ok(ExecutionCoordinator::run_gathered(
                            run,
                            plan,
                            &step.strategy,
                            restored,
                            gathered,
                        ))
                    }
                }
            }
            Err(e) => Err(e),
        };
        self.record(scope, step, &running, outcome, chain).map(Some)
    }

    /// Records how a running context ended: its final state, verdict and
    /// timing, in the state manager and in `chain`, and tells observers.
    /// `outcome` is the judged step, or why its executor could not be
    /// built.
    pub(super) fn record(
        &self,
        scope: &Scope<'_, T>,
        step: &Step<T>,
        running: &Running,
        outcome: Result<StepOutcome<T>, BuildError>,
        chain: &mut ExecutionChain<T>,
    ) -> Result<StepEnd, RunError> {
        let id = running.id;
        let mut end = StepEnd {
            id,
            status: ExecutionStatus::Aborted,
            switch: None,
            stop: None,
            timed_out: None,
            rule_panic: None,
        };
        let (state, evaluation, tasks) = match outcome {
            Ok(outcome) => {
                let cancelled = scope.cancel.is_some_and(CancelToken::is_cancelled);
                end.status =
                    if outcome.stop.is_some() || ((cancelled || outcome.cancelled) && !outcome.timed_out) {
                        ExecutionStatus::Cancelled
                    } else if outcome.evaluation.success && !outcome.timed_out {
                        ExecutionStatus::Finished
                    } else {
                        ExecutionStatus::Aborted
                    };
                end.timed_out = running.deadline.filter(|_| outcome.timed_out);
                end.switch = outcome.switch;
                end.stop = outcome.stop;
                end.rule_panic = outcome.rule_panic.map(|message| RunError::RulePanicked {
                    step: Arc::clone(&step.name),
                    rule: step.strategy.name().into(),
                    message,
                });
                let (results, errors, status) = (outcome.results, outcome.errors, end.status);
                let state = self
                    .states
                    .update(id, |_| ExecutionState::settled(status, errors, results))?;
                let stamps = TaskStamps {
                    names: Arc::clone(step.names()),
                    queued: outcome.queued,
                    timed: scope.timed,
                    stamps: outcome.stamps,
                };
                (state, Some(outcome.evaluation), Some(stamps))
            }
            // The executor could not be built after the run's checks passed
            // (a pool failed to start): the step is aborted, not the caller.
            Err(e) => {
                let failures = step.tasks.iter().map(|t| TaskFailure::Dispatch {
                    executor: "(not built)".into(),
                    task: Arc::clone(&t.name),
                    step: Arc::clone(&step.name),
                    message: e.to_string(),
                });
                let state = self.states.update(id, |s| {
                    s.with_errors(failures).with_status(ExecutionStatus::Aborted)
                })?;
                (state, None, None)
            }
        };
        let context = chain
            .get_mut(id)
            .ok_or(RunError::UnknownContext { context: id })?;
        context.state = Arc::clone(&state);
        context.evaluation = evaluation;
        context.metrics.finish(scope.clock.now(), tasks);
        let status = state.status();
        running.span.finish(status, end.timed_out.is_some());
        if !self.emitter.is_empty() {
            let event = ContextEvent {
                errors: state.errors(),
                evaluation: context.evaluation.as_ref(),
                ..context_event(scope, step, id, status)
            };
            self.signal_context(event, |o, e| match status {
                ExecutionStatus::Finished => o.context_finished(e),
                ExecutionStatus::Cancelled => o.context_cancelled(e),
                _ => o.context_aborted(e),
            });
        }
        Ok(end)
    }

    /// The callbacks for each task of `step` that succeeds: the checkpoint's
    /// and the caller's.
    fn hooks(&self, scope: &Scope<'_, T>, step: &Step<T>, context: ContextId) -> Vec<TaskHook<T>> {
        let mut hooks = Vec::new();
        if let Some(saver) = scope.saver {
            hooks.push(saver.task_hook(&step.name));
        }
        if let Some(callback) = &self.results {
            let (callback, name, tasks, pipeline, run) = (
                Arc::clone(callback),
                Arc::clone(&step.name),
                step.tasks.shared(),
                Arc::clone(scope.pipeline),
                scope.run,
            );
            hooks.push(Arc::new(move |outcome: &Outcome<T>| {
                let Ok(value) = &outcome.result else { return };
                let step = &name;
                let output = TaskOutput {
                    run,
                    pipeline: &pipeline,
                    step,
                    context,
                    task: &tasks[outcome.index].name,
                    index: outcome.index,
                    value,
                };
                if let Err(message) = unwind::catch(|| callback(&output)) {
                    log::error!("the on_result callback panicked on a task of step `{step}`: {message}");
                }
            }));
        }
        hooks
    }

    /// Tells observers what a resumed run restored: the checkpoint's load,
    /// then every restored context and its tasks, marked restored, in the
    /// order a run sends them.
    fn announce_restored(&self, scope: &Scope<'_, T>, start: &Start<T>) {
        let Some(loaded) = start.loaded else { return };
        let load = CheckpointEvent {
            run: scope.run,
            pipeline: scope.pipeline,
            total_tasks: scope.total_tasks,
            step: None,
            bytes: loaded.bytes,
            elapsed: loaded.elapsed,
            restored_steps: start.chain.len(),
            restored_tasks: start.chain.iter().map(|c| c.tasks().len()).sum::<usize>() + start.pending.len(),
        };
        self.emitter.emit(|o| o.checkpoint_loaded(&load));
        for context in &start.chain {
            let state = context.state();
            let event = |status, evaluation, errors| ContextEvent {
                run: scope.run,
                pipeline: scope.pipeline,
                total_tasks: scope.total_tasks,
                restored: true,
                step: &context.step,
                context: context.id(),
                tasks: context.tasks().len(),
                status,
                errors,
                evaluation,
            };
            self.emitter
                .emit(|o| o.context_initialized(&event(ExecutionStatus::Pending, None, &[])));
            self.emitter
                .emit(|o| o.context_started(&event(ExecutionStatus::Executing, None, &[])));
            for (index, task) in context.tasks().iter().enumerate() {
                let metrics = context.metrics.task_at(index);
                let error = state.errors().iter().find(|e| e.task() == task.name());
                let event = TaskEvent {
                    run: scope.run,
                    pipeline: scope.pipeline,
                    total_tasks: scope.total_tasks,
                    restored: true,
                    step: &context.step,
                    context: context.id(),
                    task: task.name(),
                    attempt: metrics.map_or(1, |m| m.0),
                    thread: metrics.map_or(0, |m| m.1),
                    error: None,
                    elapsed: std::time::Duration::ZERO,
                };
                self.emitter.emit(|o| o.task_started(&event));
                let event = TaskEvent {
                    error,
                    elapsed: metrics.map_or(std::time::Duration::ZERO, |m| m.2),
                    ..event
                };
                self.emitter.emit(|o| o.task_finished(&event));
            }
            let status = state.status();
            let event = event(status, context.evaluation(), state.errors());
            self.emitter.emit(|o| match status {
                ExecutionStatus::Finished => o.context_finished(&event),
                ExecutionStatus::Cancelled => o.context_cancelled(&event),
                _ => o.context_aborted(&event),
            });
        }
    }

    fn signal_context(&self, event: ContextEvent<'_>, hook: impl Fn(&dyn Observer, &ContextEvent<'_>)) {
        if !self.emitter.is_empty() {
            self.emitter.emit(|o| hook(o, &event));
        }
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> PipelineExecutor<T> {
    /// [`execute`](Self::execute), saving the run's progress to `store` as
    /// it goes, and resuming from it when it holds a checkpoint.
    ///
    /// With an empty store a new log is created and the run starts at the
    /// first step. Every task that succeeds is appended to the log with its
    /// value as soon as it returns, and every step the run moves on from is
    /// appended once its records are in (see [`checkpoint`](crate::checkpoint)).
    /// With a log of this pipeline and this input, the steps it records are
    /// not run again: their contexts come back into the run's chain, and the
    /// run continues with the step after them, which sees the last one's
    /// results as its previous results; of that step, the tasks the log
    /// holds are not run again either. A run that aborts or is cancelled
    /// leaves the log at the last step that completed, plus the tasks of
    /// the next one that succeeded, so calling again resumes there; a
    /// finished run's last record marks the log finished. A record a kill
    /// cut short is dropped. The resumed run keeps the saved run's
    /// [`RunId`], and its observers hear what was restored.
    /// Calling again with a finished checkpoint returns that run as it was
    /// saved, every context restored and nothing run again: a job killed
    /// after its last save still gets its output. To start over, clear the
    /// store first ([`CheckpointStore::clear`]).
    ///
    /// ```
    /// use conveyor::{Pipeline, PipelineExecutor, Task, TaskError};
    /// use conveyor::checkpoint::MemoryCheckpointStore;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// static BROKEN: AtomicBool = AtomicBool::new(true);
    /// let pipeline = Pipeline::builder("job")
    ///     .step([Task::from_fn("load", |c| Ok(*c.input() * 10))])
    ///     .step([Task::from_fn("save", |c| match BROKEN.load(Ordering::Relaxed) {
    ///         true => Err(TaskError::msg("disk full")),
    ///         false => Ok(c.previous().first().unwrap() + 1),
    ///     })])
    ///     .build()?;
    /// let executor = PipelineExecutor::builder().build()?;
    /// let store = MemoryCheckpointStore::new();
    /// let first = executor.execute_with_checkpoint(&pipeline, 4_u64, &store)?;
    /// assert!(!first.is_success());
    /// BROKEN.store(false, Ordering::Relaxed);
    /// let second = executor.execute_with_checkpoint(&pipeline, 4, &store)?;
    /// assert_eq!(second.output()?.get("save"), Some(&41));
    /// assert_eq!(second.restored(), 1); // "load" did not run again
    /// // The checkpoint now records a finished run: it comes back as it was.
    /// let third = executor.execute_with_checkpoint(&pipeline, 4, &store)?;
    /// assert_eq!(third.output()?.get("save"), Some(&41));
    /// assert_eq!(third.restored(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`execute`](Self::execute); before anything runs, those of
    /// reading the checkpoint ([`RunError::Checkpoint`] with
    /// [`CheckpointError::Corrupt`](crate::CheckpointError::Corrupt),
    /// [`Version`](crate::CheckpointError::Version),
    /// [`Mismatch`](crate::CheckpointError::Mismatch) for another pipeline or input,
    /// [`Io`](crate::CheckpointError::Io)),
    /// none of which change the store (apart from cutting off a torn last
    /// record); and while running,
    /// [`CheckpointError::Io`](crate::CheckpointError::Io) or
    /// [`CheckpointError::Serialize`](crate::CheckpointError::Serialize) when
    /// progress cannot be saved (a result type the codec cannot read back
    /// fails at its first save). A save error ends the run at the next step
    /// boundary; what was saved before it stays in the log.
    pub fn execute_with_checkpoint(
        &self,
        pipeline: &Pipeline<T>,
        input: T,
        store: &dyn CheckpointStore,
    ) -> Result<Run<T>, RunError> {
        self.execute_with_checkpoint_and_options(pipeline, input, &RunOptions::default(), store)
    }

    /// [`execute_with_checkpoint`](Self::execute_with_checkpoint) with a
    /// cancel token and a run deadline, as in
    /// [`execute_with`](Self::execute_with). The deadline counts from this
    /// call, not from the start of the run that saved the checkpoint.
    ///
    /// # Errors
    /// As [`execute_with_checkpoint`](Self::execute_with_checkpoint) and
    /// [`execute_with`](Self::execute_with).
    pub fn execute_with_checkpoint_and_options(
        &self,
        pipeline: &Pipeline<T>,
        input: T,
        options: &RunOptions,
        store: &dyn CheckpointStore,
    ) -> Result<Run<T>, RunError> {
        self.checkpointed(pipeline, input, options, store, None)
    }

    /// Runs `pipeline` as the process that walks an MPI job, with `remote`
    /// sharing each step's tasks among the job's processes; with `store`,
    /// saving and resuming as
    /// [`execute_with_checkpoint`](Self::execute_with_checkpoint) does.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn execute_remote(
        &self,
        pipeline: &Pipeline<T>,
        input: T,
        options: &RunOptions,
        store: Option<&dyn CheckpointStore>,
        remote: &dyn Remote<T>,
    ) -> Result<Run<T>, RunError> {
        match store {
            Some(store) => self.checkpointed(pipeline, input, options, store, Some(remote)),
            None => self.run(
                pipeline,
                input,
                options,
                Start::fresh(pipeline.steps().len()),
                None,
                Some(remote),
            ),
        }
    }

    fn checkpointed(
        &self,
        pipeline: &Pipeline<T>,
        input: T,
        options: &RunOptions,
        store: &dyn CheckpointStore,
        remote: Option<&dyn Remote<T>>,
    ) -> Result<Run<T>, RunError> {
        let fingerprint = Fingerprint::of_value(&input)?;
        let keep = match options.retain {
            Retention::All => Keep::All,
            Retention::Needed => Keep::Last,
        };
        let start = checkpoint::start(store, pipeline, fingerprint, keep)?;
        if start.done {
            return self.run(pipeline, input, options, start, None, remote);
        }
        let info = RunInfo {
            run: start.run,
            pipeline: Arc::clone(&pipeline.inner.name),
            total_tasks: pipeline.steps().iter().map(|s| s.tasks.len()).sum(),
        };
        // The writer is a scoped thread: it borrows the store, and every
        // record sent is written before this call returns.
        std::thread::scope(|threads| {
            let journal = Journal::spawn(threads, store, Arc::clone(&self.core.emitter), info);
            let run = self.run(pipeline, input, options, start, Some(&journal), remote);
            let saved = journal.close();
            match (run, saved) {
                (Err(e), _) => Err(e),
                (Ok(_), Err(e)) => Err(RunError::Checkpoint(e)),
                (Ok(run), Ok(())) => Ok(run),
            }
        })
    }
}

fn timeout<T>(step: &Step<T>, deadline: Deadline, failures: Vec<TaskFailure>) -> RunError {
    RunError::Timeout {
        step: Arc::clone(&step.name),
        scope: deadline.scope,
        limit: deadline.limit,
        failures,
    }
}

impl<T> fmt::Debug for PipelineExecutor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineExecutor")
            .field("factory", &self.core.factory)
            .field("emitter", &self.core.emitter)
            .field("states", &self.core.states)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::Task;

    #[test]
    fn the_builder_reports_the_first_bad_registration() {
        let err = PipelineExecutor::<u8>::builder()
            .executor("", ExecutorConfig::Inline)
            .executor("x", ExecutorConfig::pool(0))
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::EmptyExecutorName));
        let err = PipelineExecutor::<u8>::builder()
            .default_executor(ExecutorConfig::custom("nobody"))
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::UnknownExecutor { .. }));
    }

    #[test]
    fn a_run_leaves_no_live_state_and_links_one_context_per_step() {
        let executor = PipelineExecutor::builder()
            .default_executor(ExecutorConfig::Inline)
            .build()
            .unwrap();
        let p = Pipeline::builder("p")
            .step([Task::from_fn("a", |c| Ok(*c.input() + 1))])
            .step([Task::from_fn("b", |c| Ok(c.previous().first().unwrap() * 2))])
            .build()
            .unwrap();
        let run = executor.execute(&p, 1u32).unwrap();
        assert_eq!(run.output().unwrap().get("b"), Some(&4));
        assert_eq!(run.chain().len(), 2);
        let ids: Vec<_> = run.chain().iter().map(ExecutionContext::id).collect();
        assert!(ids[0] < ids[1]);
        assert!(executor.states().is_empty());
    }

    #[test]
    fn execute_step_sees_the_results_of_the_context_it_follows() {
        let executor = PipelineExecutor::builder().build().unwrap();
        let p = Pipeline::builder("p")
            .step([Task::from_fn("a", |c| Ok(*c.input()))])
            .step([Task::from_fn("b", |c| {
                Ok(c.previous().get("a").copied().unwrap_or(0) + 1)
            })])
            .build()
            .unwrap();
        let mut chain = ExecutionChain::new();
        let a = executor.execute_step(&p, "a", 5u32, &mut chain, None).unwrap();
        let b = executor.execute_step(&p, "b", 0, &mut chain, Some(a)).unwrap();
        assert_eq!(chain.get(b).unwrap().state().results().get("b"), Some(&6));
        assert_eq!(chain.previous(b).map(ExecutionContext::id), Some(a));
    }
}
