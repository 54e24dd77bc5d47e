//! Batch jobs at scale: a resume reruns only the unfinished tasks of the
//! step it was interrupted in, events name the run and its size and mark
//! what was restored, reports keep the two runs apart on one timeline,
//! results can be streamed out and dropped as the run goes, and a panic in
//! the streaming callback costs nothing but a log line.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use conveyor::checkpoint::{Checkpoint, MemoryCheckpointStore};
use conveyor::signal::Signal;
use conveyor::{
    ExecutorConfig, Pipeline, PipelineExecutor, Retention, RunId, RunOptions, Task, TaskError, observer_fn,
};
use parking_lot::Mutex;

const WIDE: usize = 8;

/// Counts of how often each task of the wide step ran, and a switch that
/// makes its upper half fail.
struct Job {
    runs: Vec<AtomicUsize>,
    prepared: AtomicUsize,
    broken: AtomicBool,
}

fn job() -> (Arc<Job>, Pipeline<u64>) {
    let state = Arc::new(Job {
        runs: (0..WIDE).map(|_| AtomicUsize::new(0)).collect(),
        prepared: AtomicUsize::new(0),
        broken: AtomicBool::new(true),
    });
    let s = Arc::clone(&state);
    let mut wide = Vec::new();
    for i in 0..WIDE {
        let s = Arc::clone(&state);
        wide.push(
            Task::from_fn(format!("part{i}"), move |c| {
                s.runs[i].fetch_add(1, Ordering::SeqCst);
                if i >= WIDE / 2 && s.broken.load(Ordering::SeqCst) {
                    return Err(TaskError::msg("disk full"));
                }
                Ok(c.previous().first().copied().unwrap_or(0) * 10 + i as u64)
            })
            .executor(ExecutorConfig::pool(2)),
        );
    }
    let pipeline = Pipeline::builder("scale")
        .step([Task::from_fn("prepare", move |c| {
            s.prepared.fetch_add(1, Ordering::SeqCst);
            Ok(*c.input() + 1)
        })])
        .step(wide)
        .step([Task::from_fn("sum", |c| Ok(c.previous().values().sum::<u64>()))])
        .build()
        .unwrap();
    (state, pipeline)
}

/// Every signal heard, as (hook, run, total tasks, restored).
type Heard = Arc<Mutex<Vec<(&'static str, RunId, usize, bool)>>>;

fn listening() -> (Heard, PipelineExecutor<u64>) {
    let heard: Heard = Arc::default();
    let h = Arc::clone(&heard);
    let executor = PipelineExecutor::builder()
        .observer(observer_fn(move |s| {
            let entry = match s {
                Signal::PipelineStarted(e) => ("pipeline_started", e.run, e.total_tasks, false),
                Signal::ContextFinished(e) => ("context_finished", e.run, e.total_tasks, e.restored),
                Signal::ContextAborted(e) => ("context_aborted", e.run, e.total_tasks, e.restored),
                Signal::TaskFinished(e) => ("task_finished", e.run, e.total_tasks, e.restored),
                Signal::CheckpointLoaded(e) => ("checkpoint_loaded", e.run, e.total_tasks, false),
                Signal::CheckpointSaved(e) => {
                    assert!(e.bytes > 0, "a save writes something");
                    ("checkpoint_saved", e.run, e.total_tasks, false)
                }
                _ => return,
            };
            h.lock().push(entry);
        }))
        .build()
        .unwrap();
    (heard, executor)
}

fn count(heard: &Heard, hook: &str, restored: bool) -> usize {
    heard
        .lock()
        .iter()
        .filter(|(h, _, _, r)| *h == hook && *r == restored)
        .count()
}

#[test]
fn an_interrupted_step_resumes_only_its_unfinished_tasks() {
    let (state, pipeline) = job();
    let (heard, executor) = listening();
    let store = MemoryCheckpointStore::new();
    let first = executor.execute_with_checkpoint(&pipeline, 1, &store).unwrap();
    assert!(!first.is_success());
    let saved = Checkpoint::<u64>::load(&store).unwrap().unwrap();
    assert_eq!(
        saved.next.as_deref(),
        Some("part0|part1|part2|part3|part4|part5|part6|part7")
    );
    assert_eq!(
        saved.pending.iter().map(|t| t.index).collect::<Vec<_>>(),
        [0, 1, 2, 3],
        "the tasks that succeeded are in the log"
    );
    let first_events = heard.lock().len();
    assert!(
        heard
            .lock()
            .iter()
            .all(|(_, run, total, _)| *run == first.id() && *total == 1 + WIDE + 1)
    );

    state.broken.store(false, Ordering::SeqCst);
    let second = executor.execute_with_checkpoint(&pipeline, 1, &store).unwrap();
    assert!(second.is_success(), "{:?}", second.failure());
    assert_eq!(second.id(), first.id(), "a resumed run keeps its id");
    let expected: u64 = (0..WIDE as u64).map(|i| 20 + i).sum();
    assert_eq!(second.output().unwrap().get("sum"), Some(&expected));
    assert_eq!(state.prepared.load(Ordering::SeqCst), 1);
    for (i, runs) in state.runs.iter().enumerate() {
        let expected = if i < WIDE / 2 { 1 } else { 2 };
        assert_eq!(runs.load(Ordering::SeqCst), expected, "part{i}");
    }

    // The resumed run's events: the load, the restored step and the
    // restored half of the wide step, marked, then the rest as new.
    let resumed: Vec<_> = heard.lock()[first_events..].to_vec();
    assert!(
        resumed
            .iter()
            .all(|(_, run, total, _)| *run == first.id() && *total == 1 + WIDE + 1)
    );
    let restored_tasks = resumed
        .iter()
        .filter(|(h, _, _, r)| *h == "task_finished" && *r)
        .count();
    assert_eq!(restored_tasks, 1 + WIDE / 2);
    let fresh_tasks = resumed
        .iter()
        .filter(|(h, _, _, r)| *h == "task_finished" && !*r)
        .count();
    assert_eq!(
        fresh_tasks,
        WIDE / 2 + 1,
        "the failed half of the wide step, then `sum`"
    );
    assert_eq!(count(&heard, "checkpoint_loaded", false), 1);
    assert_eq!(count(&heard, "context_finished", true), 1, "`prepare`, restored");
    // Saves: `prepare` in the first run; the wide step and `sum` in the second.
    assert_eq!(count(&heard, "checkpoint_saved", false), 3);

    // The report keeps the two processes apart: restored work ends where
    // this run's begins.
    let report = second.report();
    assert_eq!(report.run, first.id());
    assert_eq!(report.restored, 1);
    let wide = &report.steps[1];
    assert!(!wide.restored);
    let restored: Vec<bool> = wide.tasks.iter().map(|t| t.restored).collect();
    assert_eq!(restored, [true, true, true, true, false, false, false, false]);
    for task in wide.tasks.iter().chain(&report.steps[0].tasks) {
        if task.restored || report.steps[0].tasks.contains(task) {
            assert!(task.finished_us <= report.resumed_at_us, "{task:?}");
        } else {
            assert!(task.started_us >= report.resumed_at_us, "{task:?}");
        }
    }
    assert!(report.steps[0].finished_us <= report.resumed_at_us);
    assert!(report.steps[2].started_us >= report.resumed_at_us);
}

#[test]
fn a_finished_log_comes_back_with_every_step_announced_as_restored() {
    let (state, pipeline) = job();
    state.broken.store(false, Ordering::SeqCst);
    let (heard, executor) = listening();
    let store = MemoryCheckpointStore::new();
    let first = executor.execute_with_checkpoint(&pipeline, 2, &store).unwrap();
    heard.lock().clear();
    let again = executor.execute_with_checkpoint(&pipeline, 2, &store).unwrap();
    assert_eq!(again.output().unwrap(), first.output().unwrap());
    assert_eq!(again.restored(), 3);
    assert_eq!(count(&heard, "task_finished", true), 1 + WIDE + 1);
    assert_eq!(count(&heard, "task_finished", false), 0);
    assert_eq!(count(&heard, "context_finished", true), 3);
    assert_eq!(count(&heard, "checkpoint_saved", false), 0, "nothing new to save");
}

#[test]
fn results_stream_out_and_are_dropped_as_the_run_goes() {
    let (state, pipeline) = job();
    state.broken.store(false, Ordering::SeqCst);
    let streamed = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&streamed);
    let executor = PipelineExecutor::builder()
        .on_result(move |out| {
            s.lock()
                .push((out.step.to_owned(), out.task.to_owned(), *out.value))
        })
        .build()
        .unwrap();
    let lean = RunOptions::new().retain(Retention::Needed);
    let run = executor.execute_with(&pipeline, 3, &lean).unwrap();
    let full = executor.execute(&pipeline, 3).unwrap();
    assert_eq!(run.output().unwrap(), full.output().unwrap());
    let chain: Vec<usize> = run.chain().iter().map(|c| c.state().results().len()).collect();
    assert_eq!(chain, [0, 0, 1], "only the output is kept");
    let kept: Vec<usize> = full.chain().iter().map(|c| c.state().results().len()).collect();
    assert_eq!(kept, [1, WIDE, 1]);
    // Statuses, verdicts and timing stay for every step.
    assert!(
        run.chain()
            .iter()
            .all(|c| c.evaluation().is_some_and(|e| e.success))
    );
    let streamed = streamed.lock();
    assert_eq!(streamed.len(), 2 * (1 + WIDE + 1), "two runs, every task");
    assert!(streamed.contains(&(
        "part0|part1|part2|part3|part4|part5|part6|part7".to_owned(),
        "part3".to_owned(),
        43
    )));
}

#[test]
fn lean_runs_resume_from_a_checkpoint_too() {
    let (state, pipeline) = job();
    let executor = PipelineExecutor::builder().build().unwrap();
    let store = MemoryCheckpointStore::new();
    let lean = RunOptions::new().retain(Retention::Needed);
    assert!(
        !executor
            .execute_with_checkpoint_and_options(&pipeline, 4, &lean, &store)
            .unwrap()
            .is_success()
    );
    state.broken.store(false, Ordering::SeqCst);
    let run = executor
        .execute_with_checkpoint_and_options(&pipeline, 4, &lean, &store)
        .unwrap();
    let expected: u64 = (0..WIDE as u64).map(|i| 50 + i).sum();
    assert_eq!(run.output().unwrap().get("sum"), Some(&expected));
    assert!(run.chain().head().unwrap().state().results().is_empty());
}

#[test]
fn a_panicking_result_callback_is_caught_and_the_run_goes_on() {
    common::quiet_planned_panics();
    let (state, pipeline) = job();
    state.broken.store(false, Ordering::SeqCst);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let executor = PipelineExecutor::builder()
        .on_result(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            panic!("{}", common::PLANNED);
        })
        .build()
        .unwrap();
    let run = common::within(common::BOUND, move || executor.execute(&pipeline, 1).unwrap());
    assert!(run.is_success());
    assert_eq!(calls.load(Ordering::SeqCst), 1 + WIDE + 1);
}

/// A checkpointed run whose task never returns still ends at its deadline
/// and at a cancel: the checkpoint writer does not wait for the stuck task.
#[test]
fn a_stuck_task_does_not_hold_a_checkpointed_run_past_its_deadline_or_cancel() {
    use conveyor::CancelToken;
    use std::time::Duration;
    let (release, stuck) = crossbeam_channel::bounded::<()>(0);
    let pipeline: Pipeline<u64> = Pipeline::builder("stuck")
        .step([Task::from_fn("fine", |c| Ok(*c.input()))])
        .step([
            Task::from_fn("quick", |c| Ok(*c.input() + 1)).executor(ExecutorConfig::pool(2)),
            Task::from_fn("stuck", move |_| {
                let _ = stuck.recv_timeout(common::BOUND);
                Ok(0)
            })
            .executor(ExecutorConfig::pool(2)),
        ])
        .build()
        .unwrap();
    let pipeline = Arc::new(pipeline);
    let store = Arc::new(MemoryCheckpointStore::new());

    let (p, s) = (Arc::clone(&pipeline), Arc::clone(&store));
    let run = common::within(Duration::from_secs(20), move || {
        let options = RunOptions::new().timeout(Duration::from_millis(200));
        PipelineExecutor::builder()
            .build()
            .unwrap()
            .execute_with_checkpoint_and_options(&p, 7, &options, &*s)
            .unwrap()
    });
    assert!(
        matches!(run.failure(), Some(conveyor::RunError::Timeout { .. })),
        "{:?}",
        run.failure()
    );
    let saved = Checkpoint::<u64>::load(&*store).unwrap().unwrap();
    assert_eq!(saved.completed.len(), 1, "the finished step was saved");
    assert_eq!(
        saved.pending.len(),
        1,
        "and the task that finished in the stuck step"
    );

    let token = CancelToken::new();
    let (p, s, t) = (Arc::clone(&pipeline), Arc::clone(&store), token.clone());
    let cancel = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        t.cancel();
    });
    let run = common::within(Duration::from_secs(20), move || {
        let options = RunOptions::new().cancel_token(token).timeout(Duration::MAX);
        PipelineExecutor::builder()
            .build()
            .unwrap()
            .execute_with_checkpoint_and_options(&p, 7, &options, &*s)
            .unwrap()
    });
    cancel.join().unwrap();
    assert_eq!(run.status(), conveyor::ExecutionStatus::Cancelled);
    assert_eq!(run.restored(), 1);
    drop(release);
}

/// A task may run a checkpointed pipeline of its own: each run has its own
/// log and writer.
#[test]
fn nested_checkpointed_runs_keep_their_own_logs() {
    let inner: Arc<Pipeline<u64>> = Arc::new(
        Pipeline::builder("inner")
            .step([Task::from_fn("double", |c| Ok(*c.input() * 2)).executor(ExecutorConfig::pool(1))])
            .build()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let inner_path = dir.path().join("inner.ckpt");
    let outer: Pipeline<u64> = Pipeline::builder("outer")
        .step([Task::from_fn("nest", move |c| {
            let store = conveyor::checkpoint::FileCheckpointStore::new(&inner_path);
            let run =
                PipelineExecutor::builder()
                    .build()?
                    .execute_with_checkpoint(&inner, *c.input(), &store)?;
            Ok(*run.output()?.get("double").unwrap_or(&0))
        })
        .executor(ExecutorConfig::pool(1))])
        .build()
        .unwrap();
    let store = conveyor::checkpoint::FileCheckpointStore::new(dir.path().join("outer.ckpt"));
    let run = common::within(common::BOUND, move || {
        PipelineExecutor::builder()
            .build()
            .unwrap()
            .execute_with_checkpoint(&outer, 21, &store)
            .unwrap()
    });
    assert_eq!(run.output().unwrap().get("nest"), Some(&42));
    for name in ["inner.ckpt", "outer.ckpt"] {
        let store = conveyor::checkpoint::FileCheckpointStore::new(dir.path().join(name));
        assert!(
            Checkpoint::<u64>::load(&store).unwrap().unwrap().finished,
            "{name}"
        );
    }
}

/// A store that fails (or panics) once it has taken `ok` appends.
struct Failing {
    inner: MemoryCheckpointStore,
    ok: usize,
    appends: AtomicUsize,
    panics: bool,
}

impl conveyor::checkpoint::CheckpointStore for Failing {
    fn open(&self) -> Result<Option<Box<dyn std::io::BufRead + '_>>, conveyor::CheckpointError> {
        self.inner.open()
    }
    fn create(&self, bytes: &[u8]) -> Result<(), conveyor::CheckpointError> {
        self.inner.create(bytes)
    }
    fn append(&self, bytes: &[u8]) -> Result<(), conveyor::CheckpointError> {
        if self.appends.fetch_add(1, Ordering::SeqCst) >= self.ok {
            if self.panics {
                panic!("{}", common::PLANNED);
            }
            return Err(conveyor::CheckpointError::Io {
                path: "failing.ckpt".into(),
                operation: conveyor::error::IoOperation::Write,
                cause: Arc::new(std::io::Error::other("disk full")),
            });
        }
        self.inner.append(bytes)
    }
    fn sync(&self) -> Result<(), conveyor::CheckpointError> {
        self.inner.sync()
    }
    fn truncate(&self, len: u64) -> Result<(), conveyor::CheckpointError> {
        self.inner.truncate(len)
    }
    fn clear(&self) -> Result<(), conveyor::CheckpointError> {
        self.inner.clear()
    }
}

/// A store that stops taking records mid-run ends the run with its error,
/// promptly; what it took before still resumes.
#[test]
fn a_failing_or_panicking_store_ends_the_run_with_an_error_and_keeps_what_it_took() {
    common::quiet_planned_panics();
    for panics in [false, true] {
        let (state, pipeline) = job();
        state.broken.store(false, Ordering::SeqCst);
        let pipeline = Arc::new(pipeline);
        // Two appends: `prepare`'s task record and its step record.
        let store = Arc::new(Failing {
            inner: MemoryCheckpointStore::new(),
            ok: 2,
            appends: AtomicUsize::new(0),
            panics,
        });
        let (p, s) = (Arc::clone(&pipeline), Arc::clone(&store));
        let err = common::within(common::BOUND, move || {
            PipelineExecutor::builder()
                .build()
                .unwrap()
                .execute_with_checkpoint(&p, 1, &*s)
                .unwrap_err()
        });
        let conveyor::RunError::Checkpoint(cause) = &err else {
            panic!("expected a checkpoint error, got {err}")
        };
        if panics {
            assert!(err.to_string().contains("writer panicked"), "{err}");
        } else {
            assert!(matches!(cause, conveyor::CheckpointError::Io { .. }), "{err}");
        }
        let saved = Checkpoint::<u64>::load(&store.inner).unwrap().unwrap();
        assert_eq!(
            saved.completed.len(),
            1,
            "`prepare` was saved before the store failed"
        );
        let resumed = PipelineExecutor::builder()
            .build()
            .unwrap()
            .execute_with_checkpoint(&pipeline, 1, &store.inner)
            .unwrap();
        assert!(resumed.is_success());
        assert_eq!(resumed.restored(), 1);
        assert_eq!(state.prepared.load(Ordering::SeqCst), 1);
    }
}

/// 10,000 tasks that each fail once and are retried, checkpointed: every
/// task's final value is saved, and the log brings the run back whole.
#[test]
fn ten_thousand_retried_tasks_are_saved_and_come_back_whole() {
    const N: usize = 10_000;
    let failed: Arc<Vec<AtomicBool>> = Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
    let policy = conveyor::RetryPolicy::builder()
        .max_attempts(2)
        .backoff(0.0, 1.0, 0.0)
        .build()
        .unwrap();
    let tasks: Vec<Task<u64>> = (0..N)
        .map(|i| {
            let failed = Arc::clone(&failed);
            Task::from_fn(format!("t{i}"), move |c| {
                if !failed[i].swap(true, Ordering::SeqCst) {
                    return Err(TaskError::msg("once"));
                }
                Ok(*c.input() + i as u64)
            })
            .executor(ExecutorConfig::pool(2))
            .retry(policy.clone())
        })
        .collect();
    let pipeline: Pipeline<u64> = Pipeline::builder("retried").step(tasks).build().unwrap();
    let store = Arc::new(MemoryCheckpointStore::new());
    let (p, s) = (Arc::new(pipeline), Arc::clone(&store));
    let run = common::within(common::BOUND, move || {
        let run = PipelineExecutor::builder()
            .build()
            .unwrap()
            .execute_with_checkpoint(&p, 5, &*s)
            .unwrap();
        (
            run.is_success(),
            run.output().unwrap().len(),
            run.report().totals.attempts,
            p,
        )
    });
    assert_eq!((run.0, run.1, run.2), (true, N, 2 * N as u64));
    let saved = Checkpoint::<u64>::load(&*store).unwrap().unwrap();
    assert!(saved.finished);
    let results = saved.chain[0].state.results();
    assert_eq!(results.len(), N);
    assert_eq!(results.get("t9999"), Some(&(5 + 9_999)));
    let again = PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute_with_checkpoint(&run.3, 5, &*store)
        .unwrap();
    assert_eq!(again.restored(), 1);
    assert_eq!(again.output().unwrap().len(), N);
}
