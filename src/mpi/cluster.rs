//! The job: MPI's start and end, the handshake of every run, and which
//! side each rank plays.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use ::mpi::Threading;
use ::mpi::environment::Universe;
use ::mpi::topology::Communicator;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ClusterError;
use super::link::{Backoff, Link};
use super::root::{LocalJob, Root};
use super::wire::{self, ToRoot, ToWorker};
use super::worker;
use crate::PipelineExecutor;
use crate::checkpoint::{CheckpointStore, Fingerprint};
use crate::engine::outcome::Outcome;
use crate::facade::options::RunOptions;
use crate::facade::run::Run;
use crate::model::pipeline::Pipeline;

/// Environment variables that MPI launchers set in the processes they
/// start: Open MPI's `mpirun`, MPICH's and Intel MPI's Hydra, and Slurm's
/// `srun` with PMI-2 or PMIx.
const LAUNCHER_VARS: [&str; 5] = [
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
    "PMI_RANK",
    "PMIX_RANK",
    "MPI_LOCALNRANKS",
];

/// This process's place in an MPI job, and the door through which a
/// pipeline runs on all of the job's ranks.
///
/// Made once per process, with [`Cluster::init`]; dropping it finalises
/// MPI. It is `Send` but not `Sync`: conveyor makes its MPI calls from the
/// thread that calls [`execute`](Self::execute), one thread at a time
/// (`MPI_THREAD_SERIALIZED`).
pub struct Cluster {
    /// Finalises MPI when dropped.
    _universe: Universe,
    rank: usize,
    size: usize,
    _one_thread_at_a_time: PhantomData<Cell<()>>,
}

impl Cluster {
    /// Initialises MPI and joins the job.
    ///
    /// # Errors
    /// [`ClusterError::NotLaunched`] when no MPI launcher started this
    /// process (it checks the variables `mpirun`, `mpiexec` and `srun`
    /// set, before initialising MPI): a job of one rank started by
    /// mistake should fail loudly, not run on one machine unnoticed.
    /// Under a launcher, one rank (`mpirun -np 1`) is fine and runs the
    /// pipeline in this process.
    /// [`ClusterError::AlreadyInitialized`] when MPI was initialised
    /// before, and [`ClusterError::Threading`] when the MPI library cannot
    /// serialise calls from several threads.
    pub fn init() -> Result<Self, ClusterError> {
        if !LAUNCHER_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
            return Err(ClusterError::NotLaunched);
        }
        let (universe, provided) = ::mpi::initialize_with_threading(Threading::Serialized)
            .ok_or(ClusterError::AlreadyInitialized)?;
        if provided < Threading::Serialized {
            return Err(ClusterError::Threading {
                provided: format!("{provided:?}"),
            });
        }
        let world = universe.world();
        let rank = usize::try_from(world.rank()).unwrap_or(0);
        let size = usize::try_from(world.size()).unwrap_or(1);
        Ok(Self {
            _universe: universe,
            rank,
            size,
            _one_thread_at_a_time: PhantomData,
        })
    }

    /// This process's rank, from 0.
    #[must_use]
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// How many ranks the job has.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this is rank 0, the rank that walks the pipeline and gets
    /// the [`Run`].
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Ends the whole job at once, every rank, with `code`: what a rank
    /// does when it cannot go on. MPI is fail-stop, so this is also what
    /// happens when any rank dies.
    pub fn abort(&self, code: i32) -> ! {
        Link::world().abort_with(code)
    }

    /// Runs `pipeline` on every rank of the job and blocks until it ends;
    /// every rank must call it, with the same pipeline (see the module
    /// docs).
    ///
    /// Rank 0 walks the pipeline, as
    /// [`PipelineExecutor::execute`] would, and gets `Some(run)`. The other
    /// ranks serve tasks and get `None` once the run is over; their
    /// `input` is not used: rank 0 sends its own.
    ///
    /// # Errors
    /// On every rank, [`ClusterError::PipelineMismatch`] when the ranks
    /// built different pipelines; on rank 0, [`ClusterError::Run`] with
    /// the errors of [`PipelineExecutor::execute`].
    pub fn execute<T>(
        &self,
        executor: &PipelineExecutor<T>,
        pipeline: &Pipeline<T>,
        input: T,
    ) -> Result<Option<Run<T>>, ClusterError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.job(executor, pipeline, input, &RunOptions::default(), None)
    }

    /// [`execute`](Self::execute) with a cancel token, a run deadline and
    /// a retention, as in [`PipelineExecutor::execute_with`]; the options
    /// count on rank 0, which tells the others the deadline. A cancel
    /// stops the handing out of tasks at once; chunks already on other
    /// ranks finish before rank 0 returns.
    ///
    /// # Errors
    /// As [`execute`](Self::execute).
    pub fn execute_with<T>(
        &self,
        executor: &PipelineExecutor<T>,
        pipeline: &Pipeline<T>,
        input: T,
        options: &RunOptions,
    ) -> Result<Option<Run<T>>, ClusterError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.job(executor, pipeline, input, options, None)
    }

    /// [`execute_with`](Self::execute_with), saving progress to `store`
    /// and resuming from it as
    /// [`PipelineExecutor::execute_with_checkpoint`] does. Only rank 0
    /// reads and writes `store`; the other ranks may pass any store (it is
    /// not touched), so that every rank can run the same code.
    ///
    /// MPI is fail-stop: when a rank dies the whole job ends, and running
    /// the same command again resumes from what rank 0 saved: finished
    /// steps, and the finished tasks of the step that was running.
    ///
    /// # Errors
    /// As [`execute`](Self::execute), and on rank 0 those of
    /// [`PipelineExecutor::execute_with_checkpoint`].
    pub fn execute_with_checkpoint<T>(
        &self,
        executor: &PipelineExecutor<T>,
        pipeline: &Pipeline<T>,
        input: T,
        options: &RunOptions,
        store: &dyn CheckpointStore,
    ) -> Result<Option<Run<T>>, ClusterError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.job(executor, pipeline, input, options, Some(store))
    }

    fn job<T>(
        &self,
        executor: &PipelineExecutor<T>,
        pipeline: &Pipeline<T>,
        input: T,
        options: &RunOptions,
        store: Option<&dyn CheckpointStore>,
    ) -> Result<Option<Run<T>>, ClusterError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let link = Link::world();
        let fingerprint = Fingerprint::of_pipeline(pipeline);
        if self.rank != 0 {
            let input = welcome(&link, self.rank, fingerprint)?;
            worker::serve(&link, executor, pipeline, input);
            return Ok(None);
        }
        if self.size == 1 {
            let run = match store {
                Some(store) => executor.execute_with_checkpoint_and_options(pipeline, input, options, store),
                None => executor.execute_with(pipeline, input, options),
            };
            return Ok(Some(run?));
        }
        greet(&link, self.size, fingerprint, &input)?;
        let (local, jobs) = crossbeam_channel::unbounded::<LocalJob<T>>();
        let (local_done, outcomes) = crossbeam_channel::unbounded::<Vec<Outcome<T>>>();
        let run = std::thread::scope(|threads| {
            // Rank 0's own share runs on a thread of its own, so that this
            // thread keeps handing out chunks and gathering answers while
            // it runs.
            threads.spawn(move || {
                for job in jobs {
                    let outcomes = executor.run_share(&pipeline.steps()[job.step], job.share);
                    if local_done.send(outcomes).is_err() {
                        break;
                    }
                }
            });
            let root = Root {
                pipeline,
                size: self.size,
                local,
                local_done: outcomes,
                seq: Mutex::new(0),
            };
            let run = executor.execute_remote(pipeline, input, options, store, &root);
            // Dropping the sender ends the helper thread.
            drop(root);
            run
        });
        // Whatever the run's result, the others are waiting for work.
        let end = encode(&link, &ToWorker::<&T>::End);
        for rank in 1..self.size {
            link.to_worker(rank, &end);
        }
        Ok(Some(run?))
    }
}

/// Rank 0's side of the handshake: every rank says which pipeline it
/// built; all must be rank 0's, and then each gets the input.
fn greet<T: Serialize>(
    link: &Link,
    size: usize,
    fingerprint: Fingerprint,
    input: &T,
) -> Result<(), ClusterError> {
    let mut found = vec![None; size];
    let backoff = Backoff::new();
    let mut heard = 1;
    while heard < size {
        let Some((source, bytes)) = link.poll_root() else {
            std::thread::sleep(backoff.pause());
            continue;
        };
        match wire::decode::<ToRoot<()>>(&bytes) {
            Ok(ToRoot::Hello { fingerprint }) if source < size && found[source].is_none() => {
                found[source] = Some(Fingerprint::from(fingerprint));
                heard += 1;
            }
            Ok(_) => link.abort(&format!("rank {source} did not start with a hello")),
            Err(e) => link.abort(&format!("rank {source}'s hello does not decode: {e}")),
        }
    }
    let mismatch = found
        .iter()
        .enumerate()
        .find_map(|(rank, f)| f.filter(|f| *f != fingerprint).map(|f| (rank, f)));
    let welcome = ToWorker::Welcome {
        fingerprint: fingerprint.get(),
        mismatch: mismatch.map(|(rank, f)| (rank as u64, f.get())),
        input: mismatch.is_none().then_some(input),
    };
    let bytes = encode(link, &welcome);
    for rank in 1..size {
        link.to_worker(rank, &bytes);
    }
    match mismatch {
        Some((rank, found)) => Err(ClusterError::PipelineMismatch {
            rank,
            expected: fingerprint,
            found,
        }),
        None => Ok(()),
    }
}

/// A worker's side of the handshake: the input, once rank 0 agreed that
/// every rank built its pipeline.
fn welcome<T: DeserializeOwned>(
    link: &Link,
    rank: usize,
    fingerprint: Fingerprint,
) -> Result<T, ClusterError> {
    let hello = encode(
        link,
        &ToRoot::<()>::Hello {
            fingerprint: fingerprint.get(),
        },
    );
    link.to_root(&hello);
    let bytes = link.receive_worker();
    match wire::decode::<ToWorker<T>>(&bytes) {
        Ok(ToWorker::Welcome {
            fingerprint: expected,
            mismatch,
            input,
        }) => {
            let expected = Fingerprint::from(expected);
            match (input, mismatch) {
                (Some(input), None) if expected == fingerprint => Ok(input),
                // This rank differs, or another one does: the job cannot
                // run, and every rank says so.
                (_, mismatch) => {
                    let (rank, found) = if expected == fingerprint {
                        mismatch.map_or((rank, fingerprint), |(r, f)| {
                            (usize::try_from(r).unwrap_or(usize::MAX), Fingerprint::from(f))
                        })
                    } else {
                        (rank, fingerprint)
                    };
                    Err(ClusterError::PipelineMismatch {
                        rank,
                        expected,
                        found,
                    })
                }
            }
        }
        Ok(_) => link.abort("rank 0 did not answer the hello with a welcome"),
        Err(e) => link.abort(&format!("rank 0's welcome does not decode: {e}")),
    }
}

fn encode<M: Serialize>(link: &Link, message: &M) -> Vec<u8> {
    wire::encode(message).unwrap_or_else(|e| link.abort(&format!("a message does not encode: {e}")))
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}
