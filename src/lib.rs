//! conveyor runs pipelines of CPU-bound tasks on thread pools, synchronously.
//!
//! A [`Pipeline`] is a list of [`Step`]s; a step is a group of [`Task`]s that
//! run in parallel and are judged together by an [`EvaluationStrategy`]. A
//! [`PipelineExecutor`] runs a pipeline with a blocking
//! [`execute`](PipelineExecutor::execute): no async runtime anywhere. Each
//! task says which executor it wants ([`ExecutorConfig`]: inline, a dedicated
//! rayon pool, rayon's global pool, a thread per task, or a custom executor
//! registered by name).
//!
//! # Quick start
//!
//! ```
//! use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Task, TaskError};
//!
//! #[derive(Debug, Clone, PartialEq)]
//! enum Value { Text(String), Words(Vec<String>), Count(usize) }
//!
//! fn words(text: &Value) -> Result<Vec<String>, TaskError> {
//!     match text {
//!         Value::Text(t) => Ok(t.split_whitespace().map(str::to_owned).collect()),
//!         other => Err(TaskError::msg(format!("expected text, got {other:?}"))),
//!     }
//! }
//!
//! let executor = PipelineExecutor::builder()
//!     .executor("cpu", ExecutorConfig::pool(2))
//!     .build()?;
//! let pipeline = Pipeline::builder("words")
//!     .step([Task::from_fn("split", |c| Ok(Value::Words(words(c.input())?)))])
//!     .step([
//!         Task::from_fn("count", |c| match c.previous().get("split") {
//!             Some(Value::Words(w)) => Ok(Value::Count(w.len())),
//!             _ => Err(TaskError::msg("no words")),
//!         })
//!         .on("cpu"),
//!         Task::from_fn("longest", |c| match c.previous().get("split") {
//!             Some(Value::Words(w)) => Ok(Value::Count(w.iter().map(String::len).max().unwrap_or(0))),
//!             _ => Err(TaskError::msg("no words")),
//!         })
//!         .on("cpu"),
//!     ])
//!     .build()?;
//!
//! let run = executor.execute(&pipeline, Value::Text("the quick brown fox".into()))?;
//! let output = run.output()?;
//! assert_eq!(output.get("count"), Some(&Value::Count(4)));
//! assert_eq!(output.get("longest"), Some(&Value::Count(5)));
//! assert_eq!(run.chain().len(), 2);
//! # Ok::<(), conveyor::PipelineError>(())
//! ```
//!
//! # How the parts relate
//!
//! - [`PipelineExecutor`] is the facade. For each step it makes an
//!   [`ExecutionContext`] (id, tasks, state, [`ExecutionMetrics`]), links it
//!   into the run's [`ExecutionChain`], and moves its [`ExecutionState`]
//!   through the [`ExecutionStateManager`].
//! - The [`ExecutorFactory`] turns the step's tasks into an
//!   [`ExecutionPlan`]: groups by [`ExecutorConfig`], each on an executor
//!   built once and cached. Names come from the [`ExecutorRegistry`].
//! - The coordinator dispatches every group at once and joins one of them
//!   on the caller's thread; each task yields exactly one outcome (over the
//!   step's crossbeam channel, for groups the caller does not join); the
//!   result processor puts them in declaration order, turns panics into
//!   [`PipelineError::TaskPanicked`], and asks the step's
//!   [`EvaluationStrategy`] for a verdict ([`EvaluationResult`]).
//! - The pipeline's flow graph, checked when it was built, picks the next
//!   step: in sequence, on success or failure, on a task's
//!   [`Flow::Switch`], and a step's sink after its branch.
//! - Tasks retry under a [`RetryPolicy`]; a [`CancelToken`] and deadlines
//!   ([`RunOptions`], [`Step::timeout`]) stop runs from outside.
//! - The [`SignalEmitter`] tells every [`Observer`] what happened
//!   ([`LogObserver`] writes to `log`; [`observer_fn`] adapts a closure).
//! - A [`Run`] gives a serialisable [`RunReport`]; a [`CheckpointStore`]
//!   lets [`PipelineExecutor::execute_with_checkpoint`] resume a job after
//!   its last finished step.
//! - [`StrategyBenchmark`] compares executor strategies on a pipeline of
//!   your own ([`Comparison`]), and [`Timeline`] draws which task ran where.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

mod benchmark;
mod cancel;
mod chain;
mod checkpoint;
mod comparison;
mod config;
mod context;
mod coordinator;
mod error;
mod executor;
mod factory;
mod flow;
mod metrics;
mod options;
mod pipeline;
pub mod pointy;
mod processor;
mod registry;
mod report;
mod results;
mod retry;
mod run;
mod signal;
mod snapshot;
mod state;
mod state_manager;
mod status;
mod strategy;
mod task;
mod timeline;
mod unwind;

pub use benchmark::{BenchmarkEvent, BenchmarkObserver, StrategyBenchmark};
pub use cancel::CancelToken;
pub use chain::{ExecutionChain, Iter as ChainIter};
pub use checkpoint::{
    CHECKPOINT_FORMAT, Checkpoint, CheckpointStore, FileCheckpointStore, Fingerprint, MemoryCheckpointStore,
};
pub use comparison::{Comparison, StrategyResult};
pub use config::ExecutorConfig;
pub use context::{ContextId, ExecutionContext};
pub use error::{Cause, ErrorRecord, PipelineError, TaskError};
pub use executor::{PipelineExecutor, PipelineExecutorBuilder};
pub use factory::{ExecutionPlan, ExecutorFactory};
pub use flow::Flow;
pub use metrics::{ExecutionMetrics, TaskMetrics};
pub use options::RunOptions;
pub use pipeline::{Pipeline, PipelineBuilder, Step};
pub use registry::{CustomExecutor, ExecutorRegistry, Job};
pub use report::{REPORT_FORMAT, RunReport, StepReport, TaskReport, Totals};
pub use results::ResultSet;
pub use retry::{RetryPolicy, RetryPolicyBuilder};
pub use run::Run;
pub use signal::{
    ContextEvent, FnObserver, LogObserver, Observer, PipelineEvent, RetryEvent, Signal, SignalEmitter,
    TaskEvent, observer_fn,
};
pub use snapshot::ContextSnapshot;
pub use state::ExecutionState;
pub use state_manager::ExecutionStateManager;
pub use status::ExecutionStatus;
pub use strategy::{CustomRule, EvaluationResult, EvaluationStrategy, LegacyPolicy, Tally};
pub use task::{Event, Task, TaskContext};
pub use timeline::{Bar, Timeline};

#[cfg(test)]
mod assertions {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        send_sync::<PipelineExecutor<u64>>();
        send_sync::<Pipeline<u64>>();
        send_sync::<Run<u64>>();
        send_sync::<PipelineError>();
        send_sync::<ExecutionChain<u64>>();
        send_sync::<ExecutionStateManager<u64>>();
        send_sync::<ExecutorFactory>();
        send_sync::<Checkpoint<u64>>();
        send_sync::<FileCheckpointStore>();
        send_sync::<MemoryCheckpointStore>();
        send_sync::<RunReport>();
    }

    #[test]
    fn plug_in_traits_are_object_safe() {
        fn _event(_: &dyn Event<u64>) {}
        fn _observer(_: &dyn Observer) {}
        fn _executor(_: &dyn CustomExecutor) {}
        fn _store(_: &dyn CheckpointStore) {}
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
