//! Peak heap use of a job whose steps each produce 128 MiB: keeping every
//! result, keeping only what later steps need, and doing the latter while
//! checkpointing to a file. Counted by a wrapping global allocator; this
//! file holds one test so that no other test allocates while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use conveyor::checkpoint::FileCheckpointStore;
use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Retention, RunOptions, Task};

struct Peak;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counters have no effect on the memory handed
// out.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        grew(new_size);
        // SAFETY: `ptr` came from this allocator, which is `System` underneath.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Peak = Peak;

const MIB: usize = 1 << 20;
const TASKS: usize = 8;
/// Each step's results: 8 tasks of 16 MiB.
const STEP: usize = 128 * MIB;

/// Four steps; each task reads a byte of the previous step's result and
/// returns a fresh 16 MiB buffer.
fn job() -> Pipeline<Vec<u8>> {
    let mut b = Pipeline::builder("peak");
    for s in 0..4_u8 {
        let tasks: Vec<Task<Vec<u8>>> = (0..TASKS)
            .map(|i| {
                Task::from_fn(format!("s{s}t{i}"), move |c| {
                    let seed = c.previous().first().map_or(s, |v: &Vec<u8>| v[i]);
                    let mut out = vec![seed.wrapping_add(1); STEP / TASKS];
                    out[0] = out[0].wrapping_add(i as u8);
                    Ok(out)
                })
                .executor(ExecutorConfig::pool(2))
            })
            .collect();
        b = b.step(tasks);
    }
    b.build().unwrap()
}

/// Peak live bytes above what was live before `f`, while it ran.
fn peak_of<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let r = f();
    (PEAK.load(Ordering::Relaxed) - before, r)
}

#[test]
fn keeping_only_what_is_needed_bounds_a_runs_memory_to_two_steps() {
    let pipeline = job();
    let executor = PipelineExecutor::builder().build().unwrap();
    let input = vec![0_u8; 16];

    let (all, run) = peak_of(|| executor.execute(&pipeline, input.clone()).unwrap());
    let output = run.output().unwrap().clone();
    drop(run);

    let lean = RunOptions::new().retain(Retention::Needed);
    let (needed, run) = peak_of(|| executor.execute_with(&pipeline, input.clone(), &lean).unwrap());
    assert_eq!(run.output().unwrap(), &output);
    drop(run);

    let dir = tempfile::tempdir().unwrap();
    let store = FileCheckpointStore::new(dir.path().join("peak.ckpt"));
    let (saved, run) = peak_of(|| {
        executor
            .execute_with_checkpoint_and_options(&pipeline, input.clone(), &lean, &store)
            .unwrap()
    });
    assert_eq!(run.output().unwrap(), &output);
    drop(run);
    let file = std::fs::metadata(store.file()).unwrap().len();

    let mib = |n: usize| n as f64 / MIB as f64;
    println!(
        "peak heap: all {:.0} MiB, needed {:.0} MiB, needed + file checkpoint {:.0} MiB; step {} MiB; checkpoint {:.0} MiB",
        mib(all),
        mib(needed),
        mib(saved),
        STEP / MIB,
        file as f64 / MIB as f64,
    );
    assert!(all >= 4 * STEP, "every step kept: {}", mib(all));
    // The step running and the one it reads, and nothing else of size.
    assert!(needed <= 2 * STEP + 8 * MIB, "needed: {} MiB", mib(needed));
    // Saving adds what waits for the writer (at most 64 MiB) and the record
    // each worker is encoding, never a copy of the results.
    assert!(
        saved <= 2 * STEP + 64 * MIB + 2 * (STEP / TASKS) + 8 * MIB,
        "saved: {} MiB",
        mib(saved)
    );
    // Results cost their size on disk, not a multiple of it.
    assert!(
        (file as usize) < 4 * STEP + 4 * STEP / 10,
        "checkpoint: {} MiB",
        mib(file as usize)
    );
}
