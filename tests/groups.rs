//! Pins that the groups of one step run at the same time, and that tasks asking for different configs get different groups.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{BOUND, within};
use conveyor::{
    ExecutionStatus, ExecutorConfig, Pipeline, PipelineExecutor, Step, Task, TaskError, TaskFailure,
    TaskMetrics,
};

/// How long a task waits for its partners. Only a broken engine waits this
/// long; a working one meets in microseconds.
const MEET: Duration = Duration::from_secs(20);

/// For tasks that are meant never to meet.
const GIVE_UP: Duration = Duration::from_millis(200);

/// A barrier whose wait gives up, so that tasks that can never meet fail
/// the run instead of hanging it.
struct Rendezvous {
    parties: usize,
    patience: Duration,
    arrived: Mutex<usize>,
    all_here: Condvar,
}

impl Rendezvous {
    fn new(parties: usize) -> Arc<Self> {
        Self::with_patience(parties, MEET)
    }

    fn with_patience(parties: usize, patience: Duration) -> Arc<Self> {
        Arc::new(Self {
            parties,
            patience,
            arrived: Mutex::new(0),
            all_here: Condvar::new(),
        })
    }

    fn meet(&self, who: &str) -> Result<(), TaskError> {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all_here.notify_all();
        let (arrived, timeout) = self
            .all_here
            .wait_timeout_while(arrived, self.patience, |n| *n < self.parties)
            .unwrap();
        if timeout.timed_out() {
            Err(TaskError::msg(format!(
                "{who} waited {:?} and only {} of {} arrived: the groups did not run at the same time",
                self.patience, *arrived, self.parties
            )))
        } else {
            Ok(())
        }
    }
}

/// A task that returns once `parties` tasks of the step are inside at once.
fn meets(name: &str, rendezvous: &Arc<Rendezvous>) -> Task<String> {
    let rendezvous = Arc::clone(rendezvous);
    Task::from_fn(name, move |c| {
        rendezvous.meet(c.name())?;
        Ok(std::thread::current().name().unwrap_or("<unnamed>").to_owned())
    })
}

/// Named pools of different sizes, each a pool of its own.
fn executor() -> PipelineExecutor<String> {
    PipelineExecutor::builder()
        .executor("a", ExecutorConfig::pool(1))
        .executor("b", ExecutorConfig::pool(2))
        .build()
        .unwrap()
}

fn run_step(executor: &PipelineExecutor<String>, step: Step<String>) -> conveyor::Run<String> {
    let pipeline = Pipeline::builder("groups").step(step).build().unwrap();
    let run = executor.execute(&pipeline, String::new()).unwrap();
    assert!(
        run.is_success(),
        "{:?}",
        run.errors()
            .map(|e| format!("{e}: {}", e.message()))
            .collect::<Vec<_>>()
    );
    run
}

#[test]
fn two_named_pools_run_their_groups_at_the_same_time() {
    within(BOUND, || {
        let executor = executor();
        let r = Rendezvous::new(2);
        let run = run_step(
            &executor,
            Step::new("meet", [meets("on_a", &r).on("a"), meets("on_b", &r).on("b")]),
        );
        let out = run.output().unwrap();
        assert!(out.get("on_a").unwrap().starts_with("conveyor-a-"));
        assert!(out.get("on_b").unwrap().starts_with("conveyor-b-"));
        let tasks = &run.context("meet").unwrap().metrics().tasks;
        assert_ne!(tasks[0].thread, tasks[1].thread);
    });
}

/// Each name registered with a pool config is a pool of its own, even when
/// two names ask for the same size: two names for `pool(1)` are two pools
/// and two groups, and their tasks run on different threads at the same
/// time. A name registered as `ExecutorConfig::named` shares the other
/// name's pool: one pool, one group, one thread, one task after the other.
#[test]
fn names_of_equal_size_are_separate_pools_and_named_aliases_share_one() {
    within(BOUND, || {
        let executor = PipelineExecutor::<String>::builder()
            .executor("a", ExecutorConfig::pool(1))
            .executor("b", ExecutorConfig::pool(1))
            .executor("also_a", ExecutorConfig::named("a"))
            .build()
            .unwrap();
        assert_eq!(executor.pools().pool_count(), 2);
        assert_eq!(executor.pools().names(), ["a", "also_a", "b"]);
        assert_eq!(executor.pools().threads(&ExecutorConfig::named("a")), Some(1));

        // Two names of one size: two groups, which meet, so two threads.
        let r = Rendezvous::new(2);
        let step = Step::new("apart", [meets("on_a", &r).on("a"), meets("on_b", &r).on("b")]);
        assert_eq!(
            executor.plan(&step).unwrap(),
            [ExecutorConfig::named("a"), ExecutorConfig::named("b")],
            "one group per name"
        );
        let run = run_step(&executor, step);
        let out = run.output().unwrap();
        assert_eq!(out.get("on_a").unwrap(), "conveyor-a-0");
        assert_eq!(out.get("on_b").unwrap(), "conveyor-b-0");

        // A name and its alias: one group on one pool of one thread.
        let step = Step::new(
            "shared",
            [
                Task::from_fn("first", |_| Ok(thread_name())).on("a"),
                Task::from_fn("second", |_| Ok(thread_name())).on("also_a"),
            ],
        );
        assert_eq!(
            executor.plan(&step).unwrap(),
            [ExecutorConfig::named("a")],
            "an alias joins its pool's group"
        );
        let run = run_step(&executor, step);
        let names: Vec<&String> = run.output().unwrap().values().collect();
        assert_eq!(names, ["conveyor-a-0", "conveyor-a-0"]);
        assert_eq!(executor.pools().pool_count(), 2, "no pool was built on the way");
    });
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or_default().to_owned()
}

#[test]
fn every_kind_of_group_runs_alongside_the_others() {
    within(BOUND, || {
        let executor = executor();
        let r = Rendezvous::new(5);
        run_step(
            &executor,
            Step::new(
                "meet",
                [
                    meets("inline", &r).executor(ExecutorConfig::Inline),
                    meets("on_a", &r).on("a"),
                    meets("global", &r).executor(ExecutorConfig::Global),
                    meets("thread", &r).executor(ExecutorConfig::ThreadPerTask),
                    meets("on_b", &r).on("b"),
                ],
            ),
        );
    });
}

#[test]
fn the_group_on_the_callers_thread_does_not_hold_back_the_others() {
    // Several runs in a row, so the group that lands on the caller's thread
    // is checked with each other kind of group beside it.
    within(BOUND, || {
        let executor = executor();
        for other in [
            ExecutorConfig::pool(1),
            ExecutorConfig::Global,
            ExecutorConfig::ThreadPerTask,
        ] {
            let r = Rendezvous::new(2);
            run_step(
                &executor,
                Step::new(
                    "pair",
                    [
                        meets("here", &r).executor(ExecutorConfig::Inline),
                        meets("there", &r).executor(other),
                    ],
                ),
            );
        }
    });
}

/// The original engine gave a group the first task's size; here tasks that
/// ask for pool(2) and pool(3) must run on two pools of those sizes, and a
/// task on a name registered as pool(2) runs on that name's own pool, not on
/// the unnamed pool(2).
#[test]
fn tasks_asking_for_different_pool_sizes_get_different_pools() {
    within(BOUND, || {
        let executor = PipelineExecutor::<String>::builder()
            .executor("two", ExecutorConfig::pool(2))
            .build()
            .unwrap();
        // Each group can only finish if its pool has as many threads as it
        // asked for: all of a group's tasks must be inside at once.
        let (two, three) = (Rendezvous::new(2), Rendezvous::new(3));
        let step = Step::new(
            "sizes",
            [
                meets("two_0", &two).executor(ExecutorConfig::pool(2)),
                meets("three_0", &three).executor(ExecutorConfig::pool(3)),
                meets("two_1", &two).on("two"),
                meets("three_1", &three).executor(ExecutorConfig::pool(3)),
                meets("three_2", &three).executor(ExecutorConfig::pool(3)),
            ],
        );
        assert_eq!(
            executor.plan(&step).unwrap(),
            [
                ExecutorConfig::pool(2),
                ExecutorConfig::pool(3),
                ExecutorConfig::named("two"),
            ]
        );

        let run = run_step(&executor, step);
        assert_eq!(
            executor.pools().pool_count(),
            3,
            "the name `two`, and the unnamed pool(2) and pool(3)"
        );
        let out = run.output().unwrap();
        for (task, pool) in [
            ("two_0", "conveyor-pool2-"),
            ("two_1", "conveyor-two-"),
            ("three_0", "conveyor-pool3-"),
            ("three_1", "conveyor-pool3-"),
            ("three_2", "conveyor-pool3-"),
        ] {
            let thread = out.get(task).unwrap();
            assert!(thread.starts_with(pool), "{task} ran on {thread}, not on {pool}*");
        }

        let metrics = &run.context("sizes").unwrap().metrics().tasks;
        let threads = |prefix: &str| -> HashSet<u64> {
            metrics
                .iter()
                .filter(|m: &&TaskMetrics| m.task.starts_with(prefix))
                .map(|m| m.thread)
                .collect()
        };
        let (on_two, on_three) = (threads("two_"), threads("three_"));
        assert_eq!(on_two.len(), 2, "a rendezvous of 2 needs 2 threads");
        assert_eq!(on_three.len(), 3, "a rendezvous of 3 needs 3 threads");
        assert!(on_two.is_disjoint(&on_three), "the groups shared threads");
    });
}

#[test]
fn a_group_that_cannot_meet_fails_the_step_instead_of_hanging() {
    // The rendezvous above is only evidence if it can fail: two tasks of a
    // one-thread pool can never both be inside at once.
    within(BOUND, || {
        let executor = executor();
        let r = Rendezvous::with_patience(2, GIVE_UP);
        let pipeline = Pipeline::builder("groups")
            .step(Step::new(
                "stuck",
                [meets("x", &r).on("a"), meets("y", &r).on("a")],
            ))
            .build()
            .unwrap();
        let run = executor.execute(&pipeline, String::new()).unwrap();
        assert_eq!(run.status(), ExecutionStatus::Aborted);
        assert!(run.errors().any(|e| matches!(e, TaskFailure::Failed { .. })
            && e.message().contains("did not run at the same time")));
    });
}
