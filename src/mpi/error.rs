//! What can go wrong with an MPI job before or around its run.

use crate::checkpoint::Fingerprint;
use crate::error::RunError;

/// An MPI job could not start, or its run could not be carried out.
///
/// Task failures are not errors here: as in a local run, they are in the
/// [`Run`](crate::Run) that rank 0 gets back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The process was not started by an MPI launcher, so it would be a
    /// job of one rank: almost always a mistake in how the job was
    /// started. Run a single process without [`Cluster`](super::Cluster),
    /// or with `mpirun -np 1` when one rank is meant.
    #[error(
        "this process was not started by an MPI launcher; run it under `mpirun -np N` \
         (or `mpiexec`, or `srun` on Slurm), or run it without MPI"
    )]
    NotLaunched,
    /// MPI was initialised already in this process: a [`Cluster`](super::Cluster)
    /// can be made once.
    #[error("MPI is already initialised in this process; make one Cluster and share it")]
    AlreadyInitialized,
    /// The MPI library cannot let one thread at a time make MPI calls
    /// (`MPI_THREAD_SERIALIZED`), which conveyor needs.
    #[error("the MPI library does not support MPI_THREAD_SERIALIZED (it gave {provided})")]
    Threading {
        /// The level the library gave.
        provided: String,
    },
    /// A rank built a different pipeline than rank 0: their fingerprints
    /// ([`Fingerprint::of_pipeline`]) differ. Every rank returns this
    /// error; on rank 0 it names the first rank that differs, on the others
    /// their own rank.
    #[error(
        "rank {rank} built a different pipeline than rank 0 (fingerprint {found}, rank 0 has {expected}); \
         every rank must build the same pipeline"
    )]
    PipelineMismatch {
        /// The rank that differs.
        rank: usize,
        /// Rank 0's fingerprint.
        expected: Fingerprint,
        /// That rank's fingerprint.
        found: Fingerprint,
    },
    /// The run on rank 0 could not be carried out, as
    /// [`PipelineExecutor::execute`](crate::PipelineExecutor::execute)
    /// reports it.
    #[error(transparent)]
    Run(#[from] RunError),
}
