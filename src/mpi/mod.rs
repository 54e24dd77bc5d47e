//! The same pipeline as an MPI job: every rank of the job runs the same
//! binary and builds the same pipeline; rank 0 walks the flow, and every
//! rank, rank 0 included, runs a share of each step's tasks on its own
//! pools. Only with the `mpi` cargo feature, through the `mpi` crate
//! (rsmpi).
//!
//! ```no_run
//! use conveyor::mpi::Cluster;
//! use conveyor::{Pipeline, PipelineExecutor, Task};
//!
//! let cluster = Cluster::init()?; // under `mpirun -np 3 ./job`
//! let executor = PipelineExecutor::builder().build()?;
//! let pipeline = Pipeline::builder("squares")
//!     .step((0..64).map(|i| Task::from_fn(format!("t{i}"), move |c| Ok(*c.input() + i * i))))
//!     .task("sum", |c| Ok(c.previous().values().sum()))
//!     .build()?;
//! // Every rank calls it; rank 0 gets the run, the others `None`.
//! if let Some(run) = cluster.execute(&executor, &pipeline, 0_u64)? {
//!     println!("{}", run.output()?.get("sum").unwrap());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How a step runs
//!
//! - Rank 0 walks the pipeline as [`PipelineExecutor::execute`] does and,
//!   for each step, hands out the step's tasks in chunks as ranks become
//!   free: big chunks first, single tasks at the end (guided scheduling),
//!   two chunks held per rank so none idles while the next one travels.
//!   Rank 0 runs chunks too, on a thread of its own.
//! - A task is addressed by (step index, task index). What travels is the
//!   run's input (once per run), a step's previous results (once per rank
//!   and step, and only to ranks given its tasks) and the outcomes, in
//!   postcard, the checkpoint's codec: a value type that checkpoints also
//!   travels.
//! - Each rank runs its chunk through the ordinary executor on its own
//!   pools, so executor strategies, retries, panics caught as failures
//!   and deadlines behave as in a local run. Rank 0 judges the step with
//!   its [`EvaluationStrategy`](crate::EvaluationStrategy) and follows the
//!   flow; its observers hear every task, wherever it ran, and a
//!   checkpoint on rank 0 saves each task as its outcome arrives.
//! - A failure on another rank comes back as the [`TaskFailure`] variant
//!   it would be locally, with the same task, step and attempt, naming the
//!   rank: a task's error becomes [`TaskFailure::Failed`] whose cause is a
//!   [`RemoteError`] (the original message and the rank); a panic's
//!   message ends with `(on rank N)`. Task metrics show rank r's thread n
//!   as `r * 10000 + n`.
//!
//! # What every rank must do
//!
//! Build the same pipeline (same steps, task names and strategies: the
//! [`Fingerprint`](crate::checkpoint::Fingerprint) of each rank's pipeline
//! is compared before every run, and a difference is
//! [`ClusterError::PipelineMismatch`] on every rank), and call the same
//! `Cluster` methods in the same order. Executors may differ per rank
//! (pool sizes, say): they are not part of the fingerprint.
//!
//! # Faults
//!
//! MPI is fail-stop: when a rank dies, the launcher ends the job, and a
//! message conveyor cannot decode ends it too (`MPI_Abort`). With
//! [`Cluster::execute_with_checkpoint`], rank 0 saves progress, and
//! running the same command again resumes from it.
//!
//! # Without a launcher
//!
//! [`Cluster::init`] refuses to start a process no MPI launcher started
//! ([`ClusterError::NotLaunched`]): a job meant for a cluster that runs
//! on one machine by mistake should say so. Under a launcher, one rank
//! (`mpirun -np 1`) runs the pipeline in that process, as
//! [`PipelineExecutor::execute`] would.
//!
//! # Cost
//!
//! A step costs a few message round trips more than locally (one per
//! chunk, a handful per rank), and its previous results travel once to
//! every rank that gets tasks of it. The README's "Beyond one machine:
//! MPI" has measured figures and a model to predict a larger job.
//!
//! [`PipelineExecutor::execute`]: crate::PipelineExecutor::execute
//! [`TaskFailure`]: crate::TaskFailure
//! [`TaskFailure::Failed`]: crate::TaskFailure::Failed

mod cluster;
mod error;
mod link;
mod root;
mod wire;
mod worker;

pub use cluster::Cluster;
pub use error::ClusterError;
pub use wire::RemoteError;
