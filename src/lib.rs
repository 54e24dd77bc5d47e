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
//! use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, TaskError};
//!
//! let executor = PipelineExecutor::builder()
//!     .executor("cpu", ExecutorConfig::pool(2))
//!     .build()?;
//! // Closures given to `task` and `step_with` know the value type: no
//! // annotations.
//! let pipeline = Pipeline::<String>::builder("words")
//!     .task("clean", |c| Ok(c.input().trim().to_lowercase()))
//!     .step_with(|s| {
//!         s.task("count", |c| Ok(c.previous().first().unwrap().split_whitespace().count().to_string()))
//!             .task("longest", |c| {
//!                 let text = c.previous().get("clean").ok_or_else(|| TaskError::msg("no text"))?;
//!                 Ok(text.split_whitespace().max_by_key(|w| w.len()).unwrap_or("").to_owned())
//!             })
//!             .on("cpu")
//!     })
//!     .task("summary", |c| Ok(format!("{} words", c.previous().get("count").unwrap())))
//!     .build()?;
//!
//! let run = executor.execute(&pipeline, "  The quick red fox ".to_owned())?;
//! assert_eq!(run.output()?.get("summary").unwrap(), "4 words");
//! assert_eq!(run.context("count|longest").unwrap().state().results().get("longest").unwrap(), "quick");
//! assert_eq!(run.chain().len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How the parts relate
//!
//! - [`PipelineExecutor`] is the facade. For each step it makes an
//!   [`ExecutionContext`] (id, tasks, state, [`ExecutionMetrics`]), links it
//!   into the run's [`ExecutionChain`], and moves its [`ExecutionState`]
//!   through the [`ExecutionStateManager`], which users see read-only.
//! - The executor factory turns the step's tasks into an execution plan:
//!   groups by [`ExecutorConfig`], each on an executor from the executor's
//!   [`Pools`], built once and cached.
//! - The coordinator dispatches every group at once and joins one of them
//!   on the caller's thread; each task yields exactly one outcome (over the
//!   step's crossbeam channel, for groups the caller does not join); the
//!   result processor puts them in declaration order, turns panics into
//!   [`TaskFailure::Panicked`], and asks the step's [`EvaluationStrategy`]
//!   for a verdict.
//! - The pipeline's flow graph, checked when it was built, picks the next
//!   step: in sequence, on success or failure, on a task's
//!   [`Flow::Switch`], and a step's sink after its branch.
//! - Tasks retry under a [`RetryPolicy`]; a [`CancelToken`] and deadlines
//!   ([`RunOptions`], [`Step::timeout`]) stop runs from outside.
//! - Every [`Observer`] hears what happened ([`LogObserver`] writes to
//!   `log`; [`observer_fn`] adapts a closure; the events are in
//!   [`signal`]).
//! - Errors are narrow: [`BuildError`], [`TaskError`] (what tasks return),
//!   [`TaskFailure`], [`RunError`] and [`CheckpointError`], all in [`error`].
//! - A [`Run`] gives a serialisable [`report::RunReport`]; a
//!   [`checkpoint::CheckpointStore`] lets
//!   [`PipelineExecutor::execute_with_checkpoint`] resume a job after its
//!   last finished step.
//! - [`bench::StrategyBenchmark`] compares executor strategies on a pipeline
//!   of your own, against baselines of the same parallelism;
//!   [`bench::Timeline`] draws which task ran where, and
//!   [`bench::ChromeTrace`] exports runs and benchmarks for Perfetto and
//!   `chrome://tracing`.
//! - With the `tracing` cargo feature, runs, steps and task attempts are
//!   `tracing` spans (target `conveyor`), a task's span a child of its
//!   step's on whichever thread it runs, and retries, cancels and deadlines
//!   are events. `log` stays the default, through [`LogObserver`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

pub mod bench;
pub mod checkpoint;
mod engine;
pub mod error;
mod facade;
mod ids;
mod model;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod pointy;
mod records;
mod status;

pub use engine::pools::{Pools, PoolsBuilder};
pub use engine::registry::{CustomExecutor, Job};
pub use engine::signal::{LogObserver, Observer, observer_fn};
pub use engine::state_manager::ExecutionStateManager;
pub use error::{BuildError, CheckpointError, RunError, TaskError, TaskFailure};
pub use facade::executor::{PipelineExecutor, PipelineExecutorBuilder};
pub use facade::options::{Retention, RunOptions};
pub use facade::run::Run;
pub use ids::{ContextId, RunId};
pub use model::cancel::CancelToken;
pub use model::config::ExecutorConfig;
pub use model::flow::Flow;
pub use model::pipeline::{Pipeline, PipelineBuilder};
pub use model::retry::{RetryPolicy, RetryPolicyBuilder};
pub use model::step::Step;
pub use model::strategy::EvaluationStrategy;
pub use model::task::{Event, Task, TaskContext};
pub use records::chain::ExecutionChain;
pub use records::context::ExecutionContext;
pub use records::metrics::{ExecutionMetrics, TaskMetrics};
pub use records::results::ResultSet;
pub use records::state::ExecutionState;
pub use status::ExecutionStatus;

/// Observers and the events they hear.
///
/// [`Observer`], [`LogObserver`] and [`observer_fn`] are at the crate root;
/// the events each hook receives are here.
pub mod signal {
    pub use crate::engine::signal::{
        CheckpointEvent, ContextEvent, FnObserver, PipelineEvent, RetryEvent, Signal, TaskEvent, TaskOutput,
    };
    pub use crate::records::chain::Iter as ChainIter;
}

/// How a step's outcomes are judged: the tally a rule sees, custom rules,
/// the verdict, and the original's policy names.
pub mod strategy {
    pub use crate::model::strategy::{CustomRule, EvaluationResult, LegacyPolicy, Tally};
}

/// A run as a report a person or a script can read, in JSON.
pub mod report {
    pub use crate::records::report::{REPORT_FORMAT, RunReport, StepReport, TaskReport, Totals};
}

#[cfg(test)]
mod assertions {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        send_sync::<PipelineExecutor<u64>>();
        send_sync::<Pipeline<u64>>();
        send_sync::<Run<u64>>();
        send_sync::<RunError>();
        send_sync::<BuildError>();
        send_sync::<TaskFailure>();
        send_sync::<Pools>();
        send_sync::<ExecutionChain<u64>>();
        send_sync::<ExecutionStateManager<u64>>();
        send_sync::<checkpoint::Checkpoint<u64>>();
        send_sync::<checkpoint::FileCheckpointStore>();
        send_sync::<checkpoint::MemoryCheckpointStore>();
        send_sync::<report::RunReport>();
    }

    #[test]
    fn plug_in_traits_are_object_safe() {
        fn _event(_: &dyn Event<u64>) {}
        fn _observer(_: &dyn Observer) {}
        fn _executor(_: &dyn CustomExecutor) {}
        fn _store(_: &dyn checkpoint::CheckpointStore) {}
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
