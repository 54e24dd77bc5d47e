//! Work shared by the strategy bench and the strategy suite example, so
//! that both measure exactly the same thing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use conveyor::{BuildError, Pipeline, Task};

/// Dependent multiply-rotate rounds: real CPU work that the compiler cannot
/// fold away or vectorise.
pub(crate) fn spin(rounds: u64, seed: u64) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for i in 0..black_box(rounds) {
        h = (h ^ i).wrapping_mul(0x0100_0000_01b3).rotate_left(5);
    }
    black_box(h)
}

/// What a rayon user would write for a step of `n` tasks: a parallel map
/// on the pool, each call guarded against panics as conveyor guards its
/// tasks, collected in order.
pub(crate) fn par_iter_step(
    pool: &rayon::ThreadPool,
    n: usize,
    work: impl Fn(usize) -> u64 + Sync,
) -> Vec<u64> {
    use rayon::prelude::*;
    pool.install(|| {
        (0..n)
            .into_par_iter()
            .map(|i| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(i))).unwrap_or(0))
            .collect()
    })
}

/// Raw rayon doing what a step does: one spawn per task in a scope, one
/// outcome per task over one channel, collected in order.
pub(crate) fn rayon_step(pool: &rayon::ThreadPool, n: usize, work: impl Fn(usize) -> u64 + Sync) -> Vec<u64> {
    let (tx, rx) = crossbeam_channel::unbounded();
    pool.scope(|s| {
        for i in 0..n {
            let (tx, work) = (tx.clone(), &work);
            s.spawn(move |_| {
                let _ = tx.send((i, work(i)));
            });
        }
    });
    drop(tx);
    let mut out = vec![0; n];
    for (i, v) in rx {
        out[i] = v;
    }
    out
}

/// How many `spin` rounds take `grain`, from the best of a few timings.
pub(crate) struct Calibration {
    pub(crate) ns_per_round: f64,
}

impl Calibration {
    pub(crate) fn measure() -> Self {
        let rounds = 2_000_000;
        let best = (0..5)
            .map(|_| {
                let t = Instant::now();
                spin(rounds, 1);
                t.elapsed()
            })
            .min()
            .unwrap_or(Duration::from_millis(2));
        Self {
            ns_per_round: best.as_nanos() as f64 / rounds as f64,
        }
    }

    pub(crate) fn rounds(&self, grain: Duration) -> u64 {
        ((grain.as_nanos() as f64 / self.ns_per_round).round() as u64).max(1)
    }
}

/// A chain of `steps` one-task steps, each adding one to the last result:
/// the cost of a step.
pub(crate) fn chain_pipeline(steps: usize) -> Result<Pipeline<u64>, BuildError> {
    (0..steps)
        .fold(Pipeline::builder("chain"), |b, i| {
            b.step(Task::from_fn(format!("s{i}"), |c| {
                Ok(c.previous().first().copied().unwrap_or(*c.input()) + 1)
            }))
        })
        .build()
}

/// 1 → `width` → 1: a source, `width` tasks reading it, a sink summing them.
pub(crate) fn fan_out_pipeline(width: u64) -> Result<Pipeline<u64>, BuildError> {
    Pipeline::builder("fan")
        .step(Task::from_fn("source", |c| Ok(*c.input())))
        .step(
            (0..width)
                .map(|i| Task::from_fn(format!("w{i}"), move |c| Ok(c.previous().first().unwrap() + i)))
                .collect::<Vec<_>>(),
        )
        .step(Task::from_fn("sink", |c| Ok(c.previous().values().sum())))
        .build()
}
