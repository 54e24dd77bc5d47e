//! Pipelines as MPI jobs: each test starts `mpirun -np 3` on this very
//! test binary, whose ranks run one scenario (chosen by an environment
//! variable) and say what they saw on stdout. Every wait is bounded.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conveyor::checkpoint::FileCheckpointStore;
use conveyor::mpi::{Cluster, ClusterError, RemoteError};
use conveyor::{
    EvaluationStrategy, ExecutorConfig, Flow, Pipeline, PipelineExecutor, RetryPolicy, Run, RunOptions, Step,
    Task, TaskError, TaskFailure,
};

/// The scenario a child runs; unset in the parent.
const SCENARIO: &str = "CONVEYOR_MPI_SCENARIO";
/// A directory the scenario may use.
const DIR: &str = "CONVEYOR_MPI_DIR";

/// The rank of this process, for tasks that want to know where they run.
static RANK: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Starts `mpirun -np 3` on this test binary, running `scenario`, and
/// kills it if it outlives `limit`.
fn mpirun(scenario: &str, dir: &Path, extra: &[(&str, &str)], limit: Duration) -> (Output, Duration) {
    let exe = std::env::current_exe().unwrap();
    let args = ["child", "--exact", "--nocapture", "--test-threads=1"].map(String::from);
    launch(&exe, &args, scenario, dir, extra, limit)
}

/// Starts `mpirun -np 3` on `program`, killing it if it outlives `limit`.
fn launch(
    program: &Path,
    args: &[String],
    scenario: &str,
    dir: &Path,
    extra: &[(&str, &str)],
    limit: Duration,
) -> (Output, Duration) {
    let mut command = Command::new("timeout");
    command
        .args(["-k", "5", &limit.as_secs().to_string()])
        .args(["mpirun", "-np", "3", "--oversubscribe", "--bind-to", "none"])
        .args(["-x", SCENARIO, "-x", DIR])
        .env(SCENARIO, scenario)
        .env(DIR, dir)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .stdin(Stdio::null());
    for (k, v) in extra {
        command.args(["-x", k]).env(k, v);
    }
    command.arg(program).args(args);
    let started = Instant::now();
    let output = command.output().expect("mpirun and timeout are installed");
    (output, started.elapsed())
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn lines<'a>(output: &'a Output, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    std::str::from_utf8(&output.stdout)
        .unwrap_or("")
        .lines()
        // The test harness may have printed `test child ... ` before it.
        .filter_map(move |l| l.find(prefix).map(|at| &l[at + prefix.len()..]))
}

/// The entry point of every rank.
#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let dir = std::env::var_os(DIR).map(PathBuf::from).unwrap();
    let cluster = Cluster::init().unwrap();
    RANK.store(cluster.rank(), Ordering::Relaxed);
    match scenario.as_str() {
        "results" => results(&cluster),
        "mismatch" => mismatch(&cluster),
        "abort" => abort(&cluster),
        "checkpoint" => checkpoint(&cluster, &dir),
        other => panic!("no scenario {other}"),
    }
}

fn here() -> usize {
    RANK.load(Ordering::Relaxed)
}

fn executor() -> PipelineExecutor<i64> {
    PipelineExecutor::builder()
        .executor("cpu", ExecutorConfig::pool(2))
        .default_executor(ExecutorConfig::pool(1))
        .build()
        .unwrap()
}

/// Busy for about `ms` milliseconds, so tasks spread over the ranks.
fn spin(ms: u64) {
    let until = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// A branching pipeline: a wide step whose verdict picks a branch, a
/// switch, a sink, retries, and failures and panics on purpose.
fn branching(fail: bool) -> Pipeline<i64> {
    let wide = (0..24_i64).map(move |i| {
        Task::from_fn(format!("w{i}"), move |c| {
            spin(3);
            match (fail, i % 4) {
                (true, 1) => Err(TaskError::msg(format!("w{i} fails on rank {}", here()))),
                (true, 3) => panic!("w{i} panics on rank {}", here()),
                _ => Ok(c.input() * 100 + i),
            }
        })
        .on("cpu")
    });
    let flaky = Task::from_fn("flaky", |c| {
        // Fails on its first attempt wherever it runs.
        if c.attempt() == 1 {
            Err(TaskError::msg("first attempt"))
        } else {
            Ok(c.attempt().into())
        }
    })
    .retry(
        RetryPolicy::builder()
            .max_attempts(3)
            .backoff(0.001, 1.0, 0.0)
            .build()
            .unwrap(),
    );
    Pipeline::builder("branching")
        .step(
            Step::new("wide", wide.chain([flaky]))
                .strategy(EvaluationStrategy::AllMustSucceed)
                .on_success("pick")
                .on_failure("mend")
                .sink("sink"),
        )
        .step(
            Step::new(
                "pick",
                [Task::flow_fn("choose", |c| {
                    let sum: i64 = c.previous().values().sum();
                    Ok(Flow::Switch(2 + ((sum + c.input()) % 2) as u8, sum))
                })],
            )
            .on_switch(2, "even")
            .on_switch(3, "odd"),
        )
        .step(Step::new(
            "even",
            (0..6).map(|i| Task::from_fn(format!("e{i}"), move |c| Ok(c.previous().first().unwrap() + i))),
        ))
        .step(Step::new(
            "odd",
            (0..6).map(|i| Task::from_fn(format!("o{i}"), move |c| Ok(c.previous().first().unwrap() - i))),
        ))
        .step(Step::new(
            "mend",
            (0..6).map(|i| Task::from_fn(format!("m{i}"), move |c| Ok(c.previous().len() as i64 * 10 + i))),
        ))
        .step(Step::new(
            "sink",
            [Task::from_fn("total", |c| Ok(c.previous().values().sum()))],
        ))
        .build()
        .unwrap()
}

/// What must be equal between a local run and a distributed one: the
/// output, serialised, the status, and each step's results and failures
/// (kind, task, step, attempt).
fn summary(run: &Run<i64>) -> String {
    let output = match run.output() {
        Ok(set) => {
            postcard::to_allocvec(&set.iter().map(|(n, v)| (n.to_owned(), *v)).collect::<Vec<_>>()).unwrap()
        }
        Err(e) => postcard::to_allocvec(&e.record().kind).unwrap(),
    };
    let mut out = format!("status {:?} output {output:?}\n", run.status());
    for context in run.chain().iter() {
        let state = context.state();
        out += &format!(
            "  {} {:?} results {:?}\n",
            context.step(),
            state.status(),
            state.results().iter().collect::<Vec<_>>()
        );
        for e in state.errors() {
            out += &format!("    {} {} {} {:?}\n", e.kind(), e.task(), e.step(), e.attempt());
        }
    }
    out
}

fn results(cluster: &Cluster) {
    let executor = executor();
    for (fail, input) in [(false, 1_i64), (false, 2), (true, 1)] {
        let pipeline = branching(fail);
        let run = cluster.execute(&executor, &pipeline, input).unwrap();
        let Some(run) = run else {
            continue;
        };
        let local = executor.execute(&pipeline, input).unwrap();
        let (distributed, local) = (summary(&run), summary(&local));
        assert_eq!(distributed, local, "fail {fail} input {input}");
        let path = run
            .chain()
            .iter()
            .map(|c| c.step().to_owned())
            .collect::<Vec<_>>()
            .join(">");
        println!("PATH {path}");
        // Every remote failure names the rank its task ran on.
        let mut ranks = std::collections::BTreeSet::new();
        for failure in run.chain().iter().flat_map(|c| c.state().errors().to_vec()) {
            match &failure {
                TaskFailure::Failed { cause, .. } => {
                    let said = cause.to_string();
                    if let Some(remote) = cause.downcast_ref::<RemoteError>() {
                        assert!(said.contains(&format!("on rank {}", remote.rank)), "{said}");
                        ranks.insert(remote.rank);
                    } else {
                        assert!(said.contains("on rank 0"), "{said}");
                    }
                }
                TaskFailure::Panicked { message, .. } => {
                    let rank = message.rsplit("on rank ").next().unwrap().trim_end_matches(')');
                    if rank != "0" {
                        assert!(message.ends_with(&format!("(on rank {rank})")), "{message}");
                    }
                    ranks.insert(rank.parse().unwrap());
                }
                other => panic!("unexpected failure {other}"),
            }
        }
        println!("FAILED-ON {ranks:?}");
    }
    // Busy tasks on every rank: the remote ones ran somewhere else.
    let seen = PipelineExecutor::<i64>::builder().build().unwrap();
    let pipeline = Pipeline::builder("where")
        .step(Step::new(
            "spread",
            (0..30).map(|i| {
                Task::from_fn(format!("s{i}"), |_| {
                    spin(5);
                    Ok(here() as i64)
                })
            }),
        ))
        .build()
        .unwrap();
    if let Some(run) = cluster.execute(&seen, &pipeline, 0).unwrap() {
        let mut ranks: Vec<i64> = run.output().unwrap().values().copied().collect();
        ranks.sort_unstable();
        ranks.dedup();
        println!("RAN-ON {ranks:?}");
    }
    println!("DONE rank {}", cluster.rank());
}

#[test]
fn results_match_a_local_run_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let (output, _) = mpirun("results", dir.path(), &[], Duration::from_secs(120));
    assert!(output.status.success(), "{}", text(&output));
    let paths: Vec<&str> = lines(&output, "PATH ").collect();
    assert_eq!(paths.len(), 3, "{}", text(&output));
    // Success then an even or odd switch, and the failure branch; the sink
    // runs after either.
    assert!(
        paths[0].starts_with("wide>pick>") && paths[0].ends_with(">sink"),
        "{paths:?}"
    );
    assert_ne!(paths[0], paths[1], "inputs 1 and 2 switch differently");
    assert_eq!(paths[2], "wide>mend>sink");
    let failed_on: Vec<&str> = lines(&output, "FAILED-ON ").collect();
    assert!(
        failed_on[2].contains('1') || failed_on[2].contains('2'),
        "some failures came from other ranks: {}",
        text(&output)
    );
    let ran_on = lines(&output, "RAN-ON ").next().unwrap();
    assert_eq!(ran_on, "[0, 1, 2]", "every rank ran tasks");
    assert_eq!(lines(&output, "DONE rank ").count(), 3, "every rank returned");
}

fn mismatch(cluster: &Cluster) {
    let executor = executor();
    let mut builder = Pipeline::builder("p").step(Step::new("a", [Task::from_fn("x", |c| Ok(*c.input()))]));
    if cluster.rank() == 2 {
        builder = builder.step(Step::new("b", [Task::from_fn("y", |c| Ok(*c.input()))]));
    }
    let pipeline = builder.build().unwrap();
    match cluster.execute(&executor, &pipeline, 1) {
        Err(ClusterError::PipelineMismatch { rank, .. }) => {
            println!("MISMATCH rank {} names {rank}", cluster.rank())
        }
        other => panic!(
            "rank {}: {:?}",
            cluster.rank(),
            other.map(|r| r.map(|r| r.status()))
        ),
    }
}

#[test]
fn ranks_with_different_pipelines_all_get_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let (output, _) = mpirun("mismatch", dir.path(), &[], Duration::from_secs(60));
    assert!(output.status.success(), "{}", text(&output));
    let mut seen: Vec<&str> = lines(&output, "MISMATCH ").collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        ["rank 0 names 2", "rank 1 names 2", "rank 2 names 2"],
        "{}",
        text(&output)
    );
}

fn abort(cluster: &Cluster) {
    let executor = executor();
    let pipeline = Pipeline::builder("dies")
        .step(Step::new(
            "work",
            (0..40).map(|i| {
                Task::from_fn(format!("t{i}"), move |_| {
                    spin(20);
                    if here() == 1 && i > 3 {
                        // What an OOM kill or a segfault does to a rank.
                        std::process::abort();
                    }
                    Ok(i)
                })
            }),
        ))
        .build()
        .unwrap();
    println!("STARTED rank {}", cluster.rank());
    let _ = cluster.execute(&executor, &pipeline, 0);
    println!("SURVIVED rank {}", cluster.rank());
}

#[test]
fn a_rank_that_dies_mid_step_ends_the_job_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let (output, took) = mpirun("abort", dir.path(), &[], Duration::from_secs(60));
    assert!(!output.status.success(), "{}", text(&output));
    assert_ne!(output.status.code(), Some(124), "timed out: {}", text(&output));
    assert!(took < Duration::from_secs(15), "took {took:?}: {}", text(&output));
    assert_eq!(lines(&output, "STARTED ").count(), 3, "{}", text(&output));
    assert_eq!(lines(&output, "SURVIVED ").count(), 0, "{}", text(&output));
    // The job ended because rank 1 died, not for another reason.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rank 1") && stderr.contains("signal 6"),
        "{}",
        text(&output)
    );
}

/// Three steps; the middle one kills rank 2 when told to, the first time.
fn resumable() -> Pipeline<i64> {
    Pipeline::builder("resumable")
        .step(Step::new(
            "first",
            (0..12).map(|i| Task::from_fn(format!("f{i}"), move |c| Ok(c.input() + i))),
        ))
        .step(Step::new(
            "second",
            (0..30).map(|i| {
                Task::from_fn(format!("s{i}"), move |c| {
                    spin(10);
                    if here() == 2 && i > 10 && std::env::var_os("CONVEYOR_MPI_CRASH").is_some() {
                        std::process::abort();
                    }
                    Ok(c.previous().values().sum::<i64>() * i)
                })
            }),
        ))
        .step(Step::new(
            "third",
            [Task::from_fn("sum", |c| Ok(c.previous().values().sum()))],
        ))
        .build()
        .unwrap()
}

fn checkpoint(cluster: &Cluster, dir: &Path) {
    let store = FileCheckpointStore::new(dir.join("job.ckpt"));
    let run = cluster
        .execute_with_checkpoint(&executor(), &resumable(), 5, &RunOptions::new(), &store)
        .unwrap();
    if let Some(run) = run {
        println!("OUTPUT {}", run.output().unwrap().get("sum").unwrap());
        println!("RESTORED {}", run.restored());
        let restored_tasks = run
            .chain()
            .iter()
            .flat_map(|c| c.metrics().tasks.iter())
            .filter(|t| t.restored)
            .count();
        println!("RESTORED-TASKS {restored_tasks}");
    }
}

#[test]
fn a_job_killed_mid_step_resumes_from_rank_0s_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (crashed, took) = mpirun(
        "checkpoint",
        dir.path(),
        &[("CONVEYOR_MPI_CRASH", "1")],
        Duration::from_secs(60),
    );
    assert!(!crashed.status.success(), "{}", text(&crashed));
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(dir.path().join("job.ckpt").exists(), "{}", text(&crashed));
    let (resumed, _) = mpirun("checkpoint", dir.path(), &[], Duration::from_secs(60));
    assert!(resumed.status.success(), "{}", text(&resumed));
    let local = executor().execute(&resumable(), 5).unwrap();
    let expected = local.output().unwrap().get("sum").copied().unwrap();
    assert_eq!(
        lines(&resumed, "OUTPUT ").next(),
        Some(expected.to_string().as_str())
    );
    // The first step was restored, and so were the tasks of the second
    // that finished before the crash.
    assert_eq!(
        lines(&resumed, "RESTORED ").next(),
        Some("1"),
        "{}",
        text(&resumed)
    );
    let tasks: usize = lines(&resumed, "RESTORED-TASKS ")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(tasks > 12, "{tasks} tasks restored: {}", text(&resumed));
}

#[test]
fn without_a_launcher_init_is_a_typed_error() {
    if std::env::var_os(SCENARIO).is_some() {
        return;
    }
    // This process was started by cargo, not by mpirun.
    assert!(matches!(Cluster::init(), Err(ClusterError::NotLaunched)));
}

/// The batch example, built with the feature next to this test binary
/// (`cargo build --features mpi --example batch`; `.ci/run` does).
fn batch_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap();
    let batch = profile.join("examples").join("batch");
    assert!(
        batch.exists(),
        "{} is missing: run `cargo build --features mpi --example batch` first",
        batch.display()
    );
    batch
}

#[test]
fn the_batch_example_gives_byte_identical_results_under_mpirun() {
    if std::env::var_os(SCENARIO).is_some() {
        return;
    }
    let batch = batch_example();
    let dir = tempfile::tempdir().unwrap();
    let flags = |out: &str| {
        [
            "--records",
            "60000",
            "--shards",
            "12",
            "--threads",
            "1",
            "--output",
            out,
            "--report",
        ]
        .map(String::from)
        .into_iter()
        .chain([dir.path().join(format!("{out}.report")).display().to_string()])
        .collect::<Vec<_>>()
    };
    let distributed = dir.path().join("mpi.json").display().to_string();
    let mut args = flags(&distributed);
    args.push("--mpi".to_owned());
    let (output, _) = launch(&batch, &args, "batch", dir.path(), &[], Duration::from_secs(120));
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        lines(&output, "checksum").count() == 1,
        "only rank 0 reports: {}",
        text(&output)
    );
    let local = dir.path().join("local.json").display().to_string();
    let here = Command::new(&batch)
        .args(flags(&local))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(here.status.success(), "{}", text(&here));
    let (a, b) = (
        std::fs::read(&distributed).unwrap(),
        std::fs::read(&local).unwrap(),
    );
    assert!(a.len() > 60_000, "every step's results are in the file");
    assert!(
        a == b,
        "the distributed run's results differ from the local run's"
    );
}
