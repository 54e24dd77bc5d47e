//! Calling `execute` from inside a task must not deadlock, on any pool.

use std::sync::Arc;
use std::time::Duration;

use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Task};

const BOUND: Duration = Duration::from_secs(30);

/// Runs `f` on its own thread and fails the test if it has not returned
/// within `BOUND`, so a deadlock fails instead of hanging CI.
fn within_bound<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND)
        .expect("execute deadlocked or took too long")
}

fn nested_on(config: ExecutorConfig, inner_tasks: usize, outer_tasks: usize) -> u64 {
    within_bound(move || {
        let executor = Arc::new(PipelineExecutor::builder().executor("p", config).build().unwrap());
        let inner = Pipeline::builder("inner")
            .step(
                (0..inner_tasks)
                    .map(|i| Task::from_fn(format!("in{i}"), |c| Ok(*c.input() + 1)).on("p"))
                    .collect::<Vec<_>>(),
            )
            .build()
            .unwrap();
        let ex = Arc::clone(&executor);
        let outer = Pipeline::builder("outer")
            .step(
                (0..outer_tasks)
                    .map(|i| {
                        let (ex, inner) = (Arc::clone(&ex), inner.clone());
                        Task::from_fn(format!("out{i}"), move |c| {
                            let run = ex.execute(&inner, *c.input())?;
                            Ok(run.output()?.values().sum())
                        })
                        .on("p")
                    })
                    .collect::<Vec<_>>(),
            )
            .build()
            .unwrap();
        let run = executor.execute(&outer, 1).unwrap();
        run.output().unwrap().values().sum()
    })
}

#[test]
fn nested_execute_on_a_one_thread_pool() {
    assert_eq!(nested_on(ExecutorConfig::pool(1), 4, 3), 3 * 4 * 2);
}

#[test]
fn nested_execute_on_the_same_pool() {
    assert_eq!(nested_on(ExecutorConfig::pool(2), 50, 20), 20 * 50 * 2);
}

#[test]
fn nested_execute_on_the_global_pool() {
    assert_eq!(nested_on(ExecutorConfig::Global, 50, 20), 20 * 50 * 2);
}

#[test]
fn nested_execute_inline() {
    assert_eq!(nested_on(ExecutorConfig::Inline, 5, 5), 5 * 5 * 2);
}

#[test]
fn nested_execute_thread_per_task() {
    assert_eq!(nested_on(ExecutorConfig::ThreadPerTask, 3, 3), 3 * 3 * 2);
}

/// Steps large enough that each worker runs their tasks in runs of
/// several (see `ResultProcessor::fill_par`), outside and inside: a task
/// in the middle of an outer run nests a whole chunked round, on the very
/// pool whose worker is running that outer run.
#[test]
fn nested_execute_inside_runs_of_tasks_on_the_same_pool() {
    assert_eq!(nested_on(ExecutorConfig::pool(2), 300, 300), 300 * 300 * 2);
    assert_eq!(nested_on(ExecutorConfig::pool(1), 200, 200), 200 * 200 * 2);
}
