//! A rank other than 0: it serves chunks of tasks until rank 0 says the
//! run is over.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::link::{Backoff, Link};
use super::wire::{self, ToRoot, ToWorker, WireOutcome};
use crate::PipelineExecutor;
use crate::engine::remote::Share;
use crate::engine::step_run::Deadline;
use crate::ids::{ContextId, RunId};
use crate::model::pipeline::Pipeline;
use crate::records::metrics::RunClock;
use crate::records::results::ResultSet;

/// The step a worker is serving, as rank 0 described it.
struct Current<T> {
    seq: u64,
    step: usize,
    context: ContextId,
    run: RunId,
    total_tasks: usize,
    deadline: Option<Deadline>,
    previous: ResultSet<T>,
}

/// Serves rank 0 until it ends the run. `input` is the run's input, as
/// rank 0 sent it in its welcome.
pub(super) fn serve<T>(link: &Link, executor: &PipelineExecutor<T>, pipeline: &Pipeline<T>, input: T)
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let input = Arc::new(input);
    let mut current: Option<Current<T>> = None;
    let mut backoff = Backoff::new();
    loop {
        let Some(bytes) = link.poll_worker() else {
            std::thread::sleep(backoff.pause());
            continue;
        };
        backoff.reset();
        let message = wire::decode::<ToWorker<T>>(&bytes)
            .unwrap_or_else(|e| link.abort(&format!("a message from rank 0 does not decode: {e}")));
        match message {
            ToWorker::Step {
                seq,
                step,
                context,
                run,
                total_tasks,
                deadline,
                previous,
            } => {
                let step = usize::try_from(step).unwrap_or(usize::MAX);
                if step >= pipeline.steps().len() {
                    link.abort(&format!("rank 0 named step {step}, which the pipeline lacks"));
                }
                let deadline = deadline.and_then(|d| Deadline::within(d.left, d.scope(), d.limit));
                let previous = previous
                    .into_iter()
                    .map(|(name, value)| (Arc::<str>::from(name), value))
                    .collect();
                current = Some(Current {
                    seq,
                    step,
                    context: ContextId::from(context),
                    run,
                    total_tasks: usize::try_from(total_tasks).unwrap_or(usize::MAX),
                    deadline,
                    previous: ResultSet::from_entries(previous),
                });
            }
            ToWorker::Chunk { seq, tasks } => {
                let Some(now) = current.as_ref().filter(|c| c.seq == seq) else {
                    link.abort("rank 0 sent a chunk of a step it did not describe");
                };
                let step = &pipeline.steps()[now.step];
                let mut only = vec![false; step.tasks.len()];
                for (from, to) in tasks {
                    for i in from..to {
                        match only.get_mut(i as usize) {
                            Some(slot) => *slot = true,
                            None => link.abort("rank 0 sent a task the step lacks"),
                        }
                    }
                }
                let share = Share {
                    pipeline: Arc::clone(&pipeline.inner.name),
                    context: now.context,
                    run: now.run,
                    total_tasks: now.total_tasks,
                    input: Arc::clone(&input),
                    previous: now.previous.clone(),
                    // Times count from when the chunk arrived; rank 0 adds
                    // when it sent it.
                    clock: RunClock::start(),
                    deadline: now.deadline,
                    cancel: None,
                    only,
                };
                let outcomes = executor.run_share(step, share);
                let answer = ToRoot::Done {
                    seq,
                    outcomes: outcomes.iter().map(WireOutcome::of).collect(),
                };
                let bytes = wire::encode(&answer)
                    .unwrap_or_else(|e| link.abort(&format!("an outcome does not encode: {e}")));
                link.to_root(&bytes);
            }
            ToWorker::End => return,
            ToWorker::Welcome { .. } => link.abort("rank 0 said welcome in the middle of a run"),
        }
    }
}
