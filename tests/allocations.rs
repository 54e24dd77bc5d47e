//! Heap allocations per task in the steady state, counted by a wrapping
//! global allocator. This file holds one test so that no other test
//! allocates while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Task};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, which is `System` underneath.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TASKS: u64 = 10_000;
const ROUNDS: u64 = 5;

/// Mean allocations per task over `ROUNDS` runs of one 10,000-task step,
/// after two runs that build pools and grow the allocator's caches.
fn per_task(executor: &PipelineExecutor<u64>, config: ExecutorConfig) -> f64 {
    let pipeline = Pipeline::builder("alloc")
        .step(
            (0..TASKS)
                .map(|i| Task::from_fn(format!("t{i}"), move |c| Ok(c.input() + i)))
                .collect::<Vec<_>>(),
        )
        .build()
        .unwrap()
        .with_executor(config);
    for _ in 0..2 {
        drop(executor.execute(&pipeline, 1).unwrap());
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..ROUNDS {
        let run = executor.execute(&pipeline, 1).unwrap();
        assert_eq!(run.output().unwrap().len(), 10_000);
    }
    let count = ALLOCATIONS.load(Ordering::Relaxed) - before;
    count as f64 / (TASKS * ROUNDS) as f64
}

#[test]
fn allocations_per_task_in_the_steady_state() {
    let executor = PipelineExecutor::builder().build().unwrap();
    let inline = per_task(&executor, ExecutorConfig::Inline);
    let pool = per_task(&executor, ExecutorConfig::pool(2));
    let global = per_task(&executor, ExecutorConfig::Global);
    println!("allocations per task: inline {inline:.3}, pool(2) {pool:.3}, global {global:.3}");
    // The design's budget ("Performance hazards" in DESIGN.md). Thread per
    // task and custom executors are left out: they allocate a thread or a
    // job box per task by their nature.
    for (name, n) in [("inline", inline), ("pool(2)", pool), ("global", global)] {
        assert!(n <= 2.0, "{name}: {n:.3} allocations per task");
    }

    // A step's own cost: a chain of one-task inline steps makes two
    // allocations a step (its final state and its result set) plus a share
    // of the run's own. Its run, its starting state, its one-group plan,
    // and its one task's stamp and value (kept inline) allocate nothing;
    // this catches a change that brings one of them back.
    let steps = per_step(&executor);
    println!("allocations per step of an inline chain: {steps:.3}");
    assert!(steps < 2.5, "{steps:.3} allocations per step");
}

/// Mean allocations per step over `ROUNDS` runs of a chain of 1,000
/// one-task inline steps, after two warm-up runs.
fn per_step(executor: &PipelineExecutor<u64>) -> f64 {
    const STEPS: u64 = 1_000;
    let mut builder = Pipeline::builder("chain");
    for i in 0..STEPS {
        builder =
            builder.step(Task::from_fn(format!("s{i}"), |c| Ok(*c.input())).executor(ExecutorConfig::Inline));
    }
    let pipeline = builder.build().unwrap();
    for _ in 0..2 {
        drop(executor.execute(&pipeline, 1).unwrap());
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..ROUNDS {
        let run = executor.execute(&pipeline, 1).unwrap();
        assert_eq!(run.chain().len(), STEPS as usize);
    }
    let count = ALLOCATIONS.load(Ordering::Relaxed) - before;
    count as f64 / (STEPS * ROUNDS) as f64
}
