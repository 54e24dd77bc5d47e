//! Rank 0's side of a step: handing out chunks of tasks as ranks become
//! free, running its own share, and gathering every outcome.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::link::{Backoff, Link};
use super::wire::{self, Origin, ToRoot, ToWorker, WireDeadline};
use crate::engine::coordinator::announce;
use crate::engine::outcome::Outcome;
use crate::engine::remote::{Remote, Share};
use crate::engine::step_run::StepRun;
use crate::error::DeadlineScope;
use crate::model::pipeline::Pipeline;
use crate::model::step::Step;

/// Chunks each rank may hold at once: one running, one waiting, so that
/// a rank never idles while its next chunk is on the way.
const DEPTH: usize = 2;

/// One chunk for rank 0's own share, run by its helper thread.
pub(super) struct LocalJob<T> {
    pub(super) step: usize,
    pub(super) share: Share<T>,
}

/// Rank 0's [`Remote`]: shares each step among all ranks, itself included.
pub(super) struct Root<'a, T> {
    pub(super) pipeline: &'a Pipeline<T>,
    pub(super) size: usize,
    /// Chunks for rank 0's helper thread, and their outcomes back.
    pub(super) local: Sender<LocalJob<T>>,
    pub(super) local_done: Receiver<Vec<Outcome<T>>>,
    /// Numbers the steps of the run, so that a chunk's answer is never
    /// taken for another step's.
    pub(super) seq: Mutex<u64>,
}

/// Where each rank stands in the current step.
struct Rank {
    /// When each chunk it holds was sent, oldest first: a rank answers
    /// its chunks in order.
    sent: VecDeque<Duration>,
    /// Whether it was told about the step.
    told: bool,
}

/// How many tasks to hand out next: guided self-scheduling, a share of
/// what is left that shrinks as the step goes, so the first chunks are
/// big (few messages) and the last ones single tasks (a slow task at the
/// end delays only its own rank).
fn chunk_len(left: usize, ranks: usize) -> usize {
    left.div_ceil(2 * ranks).max(1)
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Remote<T> for Root<'_, T> {
    fn gather(&self, step: &Step<T>, run: &StepRun<T>, done: &[bool]) -> Vec<Outcome<T>> {
        let link = Link::world();
        let Some(at) = self.pipeline.steps().iter().position(|s| std::ptr::eq(s, step)) else {
            // Not a step of this pipeline: nothing to share.
            return Vec::new();
        };
        let seq = {
            let mut seq = self.seq.lock();
            *seq += 1;
            *seq
        };
        let mut left: VecDeque<usize> = (0..step.tasks.len()).filter(|&i| !done[i]).collect();
        let mut gathered = Vec::with_capacity(left.len());
        let mut ranks: Vec<Rank> = (0..self.size)
            .map(|_| Rank {
                sent: VecDeque::new(),
                told: false,
            })
            .collect();
        // Encoded once, for the first rank that gets a chunk of the step.
        let mut header: Option<Vec<u8>> = None;
        let mut backoff = Backoff::new();
        loop {
            // A halted step hands out nothing more; what is left is judged
            // cancelled or timed out by the coordinator.
            if run.halted().is_none() {
                for (r, rank) in ranks.iter_mut().enumerate() {
                    while rank.sent.len() < DEPTH && !left.is_empty() {
                        let take = chunk_len(left.len(), self.size);
                        let chunk: Vec<usize> = left.drain(..take).collect();
                        rank.sent.push_back(run.clock.now());
                        if r == 0 {
                            self.run_here(at, run, &chunk);
                        } else {
                            if !rank.told {
                                let bytes = header.get_or_insert_with(|| step_header(&link, seq, at, run));
                                link.to_worker(r, bytes);
                                rank.told = true;
                            }
                            let message = ToWorker::<&T>::Chunk {
                                seq,
                                tasks: ranges(&chunk),
                            };
                            link.to_worker(r, &encoded(&link, &message));
                        }
                    }
                }
            }
            if ranks.iter().all(|r| r.sent.is_empty()) {
                return gathered;
            }
            let mut heard = false;
            while let Ok(outcomes) = self.local_done.try_recv() {
                heard = true;
                ranks[0].sent.pop_front();
                deliver(run, outcomes, &mut gathered);
            }
            while let Some((source, bytes)) = link.poll_root() {
                heard = true;
                self.accept(&link, run, seq, source, &bytes, &mut ranks, &mut gathered);
            }
            if heard {
                backoff.reset();
            } else if let Ok(outcomes) = self.local_done.recv_timeout(backoff.pause()) {
                // Sleeping on rank 0's own outcomes wakes the moment they
                // come, and polls MPI between naps.
                backoff.reset();
                ranks[0].sent.pop_front();
                deliver(run, outcomes, &mut gathered);
            }
        }
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Root<'_, T> {
    /// Hands a chunk to rank 0's helper thread.
    fn run_here(&self, at: usize, run: &StepRun<T>, chunk: &[usize]) {
        let mut only = vec![false; run.tasks.len()];
        for &i in chunk {
            only[i] = true;
        }
        let share = Share {
            pipeline: Arc::clone(&run.pipeline),
            context: run.context,
            run: run.run_id,
            total_tasks: run.total_tasks,
            input: Arc::clone(&run.input),
            previous: run.previous.clone(),
            clock: run.clock,
            deadline: run.deadline,
            cancel: run.cancel.clone(),
            only,
        };
        if self.local.send(LocalJob { step: at, share }).is_err() {
            Link::world().abort("rank 0's helper thread is gone");
        }
    }

    /// Takes a worker's answer.
    #[allow(clippy::too_many_arguments)]
    fn accept(
        &self,
        link: &Link,
        run: &StepRun<T>,
        seq: u64,
        source: usize,
        bytes: &[u8],
        ranks: &mut [Rank],
        gathered: &mut Vec<Outcome<T>>,
    ) {
        let message = wire::decode::<ToRoot<T>>(bytes).unwrap_or_else(|e| {
            link.abort(&format!("rank {source} sent a message that does not decode: {e}"))
        });
        let ToRoot::Done {
            seq: answered,
            outcomes,
        } = message
        else {
            link.abort(&format!("rank {source} said hello in the middle of a run"));
        };
        let sent = ranks.get_mut(source).and_then(|r| r.sent.pop_front());
        let Some(sent) = sent.filter(|_| answered == seq) else {
            link.abort(&format!("rank {source} answered a chunk it was not given"));
        };
        let origin = Origin {
            tasks: &run.tasks,
            step: &run.step,
            rank: source,
            sent,
        };
        let outcomes = outcomes
            .into_iter()
            .map(|o| {
                o.into_outcome(&origin).unwrap_or_else(|| {
                    link.abort(&format!("rank {source} answered for a task the step lacks"))
                })
            })
            .collect();
        deliver(run, outcomes, gathered);
    }
}

/// Tells observers and hooks about outcomes as they arrive, as a local
/// step does when its tasks finish: a progress bar moves, and a
/// checkpoint saves each task as it comes.
fn deliver<T>(run: &StepRun<T>, outcomes: Vec<Outcome<T>>, gathered: &mut Vec<Outcome<T>>) {
    for outcome in outcomes {
        announce(run, &outcome, false);
        if outcome.result.is_ok() {
            for hook in &run.hooks {
                hook(&outcome);
            }
        }
        gathered.push(outcome);
    }
}

/// The step's header for the workers: what its tasks see.
fn step_header<T: Serialize>(link: &Link, seq: u64, at: usize, run: &StepRun<T>) -> Vec<u8> {
    let deadline = run.deadline.map(|d| WireDeadline {
        left: d.at.saturating_duration_since(std::time::Instant::now()),
        run_scope: d.scope == DeadlineScope::Run,
        limit: d.limit,
    });
    let message = ToWorker::Step {
        seq,
        step: u32::try_from(at).unwrap_or(u32::MAX),
        context: run.context.get(),
        run: run.run_id,
        total_tasks: run.total_tasks as u64,
        deadline,
        previous: run
            .previous
            .iter()
            .map(|(name, v)| (name.to_owned(), v))
            .collect(),
    };
    encoded(link, &message)
}

fn encoded<M: Serialize>(link: &Link, message: &M) -> Vec<u8> {
    wire::encode(message).unwrap_or_else(|e| link.abort(&format!("a message does not encode: {e}")))
}

/// `tasks` (ascending) as ranges `[from, to)`: a chunk is usually one.
fn ranges(tasks: &[usize]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &i in tasks {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        match out.last_mut() {
            Some((_, to)) if *to == i => *to += 1,
            _ => out.push((i, i + 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_shrink_to_single_tasks_and_cover_the_step() {
        let (mut left, mut sizes) = (64, Vec::new());
        while left > 0 {
            let n = chunk_len(left, 3);
            sizes.push(n);
            left -= n;
        }
        assert_eq!(sizes.iter().sum::<usize>(), 64);
        assert_eq!(sizes[0], 11);
        assert_eq!(*sizes.last().unwrap(), 1);
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn ranges_merge_neighbours() {
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), [(0, 3), (5, 6), (7, 9)]);
        assert!(ranges(&[]).is_empty());
    }
}
