//! Checkpoint and resume: finished steps never run again, a resumed run ends
//! with the results an uninterrupted one has, and a checkpoint that does not
//! fit is a typed error that leaves the store as it was — even across a
//! process that died mid-run.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use conveyor::checkpoint::{Checkpoint, CheckpointStore, FileCheckpointStore, MemoryCheckpointStore};
use conveyor::error::FingerprintOf;
use conveyor::{CheckpointError, Pipeline, PipelineExecutor, ResultSet, RunError, Step, Task, TaskError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Block {
    values: Vec<f64>,
    note: String,
}

/// Appends one line to `<dir>/<task>.count`: a side effect that survives
/// the process, so that a test can tell which tasks ran, and how often.
fn bump(dir: &Path, task: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{task}.count")))
        .unwrap();
    writeln!(f, "ran").unwrap();
}

fn count(dir: &Path, task: &str) -> usize {
    fs::read_to_string(dir.join(format!("{task}.count")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// A task that counts its runs, and fails or kills the process when a file
/// in `dir` says so: `fail-<task>` or `abort-<task>`.
fn task(
    dir: &Path,
    name: &'static str,
    f: impl Fn(&ResultSet<Block>, &Block) -> Block + Send + Sync + 'static,
) -> Task<Block> {
    let dir = dir.to_owned();
    Task::from_fn(name, move |c| {
        bump(&dir, name);
        if dir.join(format!("abort-{name}")).exists() {
            std::process::abort();
        }
        if dir.join(format!("fail-{name}")).exists() {
            return Err(TaskError::msg(format!("{name} was told to fail")));
        }
        Ok(f(c.previous(), c.input()))
    })
}

fn values(set: &ResultSet<Block>, task: &str) -> Vec<f64> {
    set.get(task).map(|b| b.values.clone()).unwrap_or_default()
}

fn block(values: Vec<f64>, note: &str) -> Block {
    Block {
        values,
        note: note.to_owned(),
    }
}

const TASKS: [&str; 8] = [
    "load", "scale", "log", "mix", "verify", "digest", "repair", "publish",
];

/// load → scale|log → mix → check (fails on purpose; its failure branch is
/// repair, its sink publish). Floats with long expansions check that a
/// resumed run sees bit-identical values.
fn job(dir: &Path) -> Pipeline<Block> {
    Pipeline::builder("job")
        .step([task(dir, "load", |_, input| input.clone())])
        .step([
            task(dir, "scale", |p, _| {
                block(values(p, "load").iter().map(|v| v * 1.1).collect(), "scaled")
            }),
            task(dir, "log", |p, _| {
                block(values(p, "load").iter().map(|v| v.ln_1p()).collect(), "logged")
            }),
        ])
        .step([task(dir, "mix", |p, _| {
            let (a, b) = (values(p, "scale"), values(p, "log"));
            block(a.iter().zip(&b).map(|(x, y)| x / (1.0 + y)).collect(), "mixed")
        })])
        .step(
            Step::new(
                "check",
                [
                    task(dir, "verify", |_, _| unreachable!()),
                    task(dir, "digest", |p, _| {
                        block(vec![values(p, "mix").iter().sum()], "digest")
                    }),
                ],
            )
            .on_failure("repair")
            .sink("publish"),
        )
        .step(Step::new(
            "repair",
            [task(dir, "repair", |p, _| {
                block(values(p, "digest").iter().map(|v| v.sqrt()).collect(), "repaired")
            })],
        ))
        .step(Step::new(
            "publish",
            [task(dir, "publish", |p, input| {
                let mut v = values(p, "repair");
                v.push(input.values.len() as f64);
                block(v, "published")
            })],
        ))
        .build()
        .unwrap()
}

fn input() -> Block {
    block((1..=2000).map(|i| f64::from(i).sqrt() / 7.0).collect(), "input")
}

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // `verify` always fails, so that the run takes the failure branch.
    fs::write(dir.path().join("fail-verify"), "").unwrap();
    dir
}

/// The output of a run without any checkpoint, in a workspace of its own.
fn reference() -> ResultSet<Block> {
    let dir = workspace();
    let run = PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute(&job(dir.path()), input())
        .unwrap();
    run.into_output().unwrap()
}

fn executor() -> PipelineExecutor<Block> {
    PipelineExecutor::builder().build().unwrap()
}

#[test]
fn a_checkpointed_run_matches_a_plain_one_and_is_then_finished() {
    let dir = workspace();
    let store = MemoryCheckpointStore::new();
    let run = executor()
        .execute_with_checkpoint(&job(dir.path()), input(), &store)
        .unwrap();
    assert_eq!(run.output().unwrap(), &reference());
    assert_eq!(run.restored(), 0);
    // The log's creation, then one durable step record per step, the last
    // marking the end.
    assert_eq!(store.saves(), 7);
    let checkpoint = Checkpoint::<Block>::load(&store).unwrap().unwrap();
    assert!(checkpoint.finished);
    assert_eq!(
        checkpoint.completed.iter().map(|s| &**s).collect::<Vec<_>>(),
        ["load", "scale|log", "mix", "check", "repair", "publish"]
    );

    let saved = store.load().unwrap();
    let rewritten = Checkpoint::<Block>::decode(&checkpoint.encode().unwrap(), None).unwrap();
    assert_eq!(
        rewritten.chain.last().unwrap().state.results(),
        checkpoint.chain.last().unwrap().state.results(),
        "Checkpoint::encode writes what a run saves"
    );
    assert_eq!(rewritten.completed, checkpoint.completed);
    let again = executor()
        .execute_with_checkpoint(&job(dir.path()), input(), &store)
        .unwrap();
    assert!(again.is_success());
    assert_eq!(
        again.restored(),
        again.chain().len(),
        "a finished run comes back whole"
    );
    assert_eq!(
        again.output().unwrap().len(),
        Checkpoint::<Block>::load(&store)
            .unwrap()
            .unwrap()
            .chain
            .last()
            .unwrap()
            .state
            .results()
            .len()
    );
    assert_eq!(
        store.load().unwrap(),
        saved,
        "giving back a finished run leaves the store alone"
    );
    assert_eq!(count(dir.path(), "load"), 1, "nothing ran the second time");
}

#[test]
fn a_resume_skips_finished_steps_and_keeps_the_pending_sink() {
    let dir = workspace();
    let store = MemoryCheckpointStore::new();
    fs::write(dir.path().join("fail-repair"), "").unwrap();
    let first = executor()
        .execute_with_checkpoint(&job(dir.path()), input(), &store)
        .unwrap();
    assert!(!first.is_success());
    // The pending sink ran as the failed branch unwound; the run still
    // ended aborted, with `repair`'s failure.
    assert_eq!(first.failure().and_then(|e| e.step()), Some("repair"));
    assert_eq!(count(dir.path(), "publish"), 1);
    let checkpoint = Checkpoint::<Block>::load(&store).unwrap().unwrap();
    assert_eq!(checkpoint.next.as_deref(), Some("repair"));
    assert_eq!(
        checkpoint.sinks.iter().map(|s| &**s).collect::<Vec<_>>(),
        ["publish"]
    );

    fs::remove_file(dir.path().join("fail-repair")).unwrap();
    let second = executor()
        .execute_with_checkpoint(&job(dir.path()), input(), &store)
        .unwrap();
    assert!(second.is_success(), "{:?}", second.failure());
    assert_eq!(second.output().unwrap(), &reference());
    assert_eq!(second.restored(), 4);
    let done = Checkpoint::<Block>::load(&store).unwrap().unwrap();
    assert!(done.finished);
    assert_eq!(done.chain.len(), 6);
    assert!(done.pending.is_empty());
    for (task, runs) in [
        ("load", 1),
        ("scale", 1),
        ("log", 1),
        ("mix", 1),
        ("verify", 1),
        ("digest", 1),
    ] {
        assert_eq!(count(dir.path(), task), runs, "{task}");
    }
    assert_eq!(count(dir.path(), "repair"), 2);
    // The sink runs like a `finally` block: once after the failed `repair`
    // of the first run (which still aborts, so progress stays at `repair`),
    // and again after the resumed branch ends.
    assert_eq!(count(dir.path(), "publish"), 2);

    let report = second.report();
    assert_eq!(report.restored, 4);
    assert_eq!(
        report
            .steps
            .iter()
            .map(|s| (&*s.step, s.restored))
            .collect::<Vec<_>>(),
        [
            ("load", true),
            ("scale|log", true),
            ("mix", true),
            ("check", true),
            ("repair", false),
            ("publish", false)
        ]
    );
    assert_eq!(
        report.step("check").unwrap().errors[0].task.as_deref(),
        Some("verify")
    );
    // Restored contexts get fresh ids of this process, not the saved ones,
    // and new ones come after them.
    assert_ne!(
        second.chain().head().unwrap().id(),
        first.chain().head().unwrap().id()
    );
    assert!(second.chain().head().unwrap().id() > first.chain().tail().unwrap().id());
    assert!(report.steps[4].context > report.steps[3].context);
}

#[test]
fn a_checkpoint_of_another_pipeline_or_input_is_refused_and_kept() {
    let dir = workspace();
    let store = MemoryCheckpointStore::new();
    fs::write(dir.path().join("fail-mix"), "").unwrap();
    executor()
        .execute_with_checkpoint(&job(dir.path()), input(), &store)
        .unwrap();
    let saved = store.load().unwrap().unwrap();

    let other = Pipeline::builder("job")
        .step([task(dir.path(), "load", |_, i| i.clone())])
        .build()
        .unwrap();
    let err = executor()
        .execute_with_checkpoint(&other, input(), &store)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Checkpoint(CheckpointError::Mismatch {
                what: FingerprintOf::Pipeline,
                ..
            })
        ),
        "{err}"
    );

    let mut changed = input();
    changed.values[7] += 1e-12;
    let err = executor()
        .execute_with_checkpoint(&job(dir.path()), changed, &store)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Checkpoint(CheckpointError::Mismatch {
                what: FingerprintOf::Input,
                ..
            })
        ),
        "{err}"
    );

    assert_eq!(store.load().unwrap().unwrap(), saved);
    assert_eq!(count(dir.path(), "load"), 1, "no refused attempt ran a task");
}

#[test]
fn damaged_and_newer_checkpoint_files_are_typed_errors_and_kept() {
    let dir = workspace();
    let path = dir.path().join("job.ckpt");
    let store = FileCheckpointStore::new(&path);
    fs::write(dir.path().join("fail-mix"), "").unwrap();
    executor()
        .execute_with_checkpoint(&job(dir.path()), input(), &store)
        .unwrap();
    let good = fs::read(&path).unwrap();
    let mut newer = good.clone();
    newer[8..12].copy_from_slice(&7_u32.to_le_bytes());
    let mut flipped = good.clone();
    flipped[40] ^= 0x01;
    let cases: [(&[u8], &str); 4] = [
        (&good[..20], "checkpoint_corrupt"),
        (b"", "checkpoint_corrupt"),
        (&flipped, "checkpoint_corrupt"),
        (&newer, "checkpoint_version"),
    ];
    for (bytes, kind) in cases {
        fs::write(&path, bytes).unwrap();
        let err = executor()
            .execute_with_checkpoint(&job(dir.path()), input(), &store)
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        let RunError::Checkpoint(checkpoint) = &err else {
            panic!("expected a checkpoint error, got {err}")
        };
        assert_eq!(checkpoint.path(), Some(path.as_path()));
        assert_eq!(fs::read(&path).unwrap(), bytes, "the file is left for inspection");
    }
    assert_eq!(count(dir.path(), "load"), 1);

    // A last record cut short is what a kill mid-write leaves: it is
    // dropped, and the run resumes from the records before it.
    fs::write(&path, &good[..good.len() - 3]).unwrap();
    fs::remove_file(dir.path().join("fail-mix")).unwrap();
    let resumed = executor()
        .execute_with_checkpoint(&job(dir.path()), input(), &store)
        .unwrap();
    assert_eq!(resumed.output().unwrap(), &reference());
    assert_eq!(count(dir.path(), "load"), 1, "finished steps stay finished");
    assert!(Checkpoint::<Block>::load(&store).unwrap().unwrap().finished);
}

const CHILD: &str = "CONVEYOR_CHECKPOINT_CHILD_DIR";

/// Runs [`child_process`] in a new process of this test binary, working in
/// `dir`.
fn child(dir: &Path) -> std::process::ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_process", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, dir)
        .stdout(Stdio::null())
        .status()
        .unwrap()
}

/// Not a test on its own: the body of the child processes of
/// [`a_crashed_process_resumes_in_a_new_process`]. It does nothing unless
/// started by that test.
#[test]
fn child_process() {
    let Some(dir) = std::env::var_os(CHILD).map(PathBuf::from) else {
        return;
    };
    let store = FileCheckpointStore::new(dir.join("job.ckpt"));
    let run = executor()
        .execute_with_checkpoint(&job(&dir), input(), &store)
        .unwrap();
    fs::write(
        dir.join("output.json"),
        serde_json::to_vec(run.output().unwrap()).unwrap(),
    )
    .unwrap();
    fs::write(dir.join("restored"), run.restored().to_string()).unwrap();
}

#[test]
fn a_crashed_process_resumes_in_a_new_process() {
    let dir = workspace();
    let d = dir.path();
    fs::write(d.join("abort-mix"), "").unwrap();
    let crashed = child(d);
    assert!(!crashed.success(), "the child was meant to abort in `mix`");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            crashed.signal(),
            Some(6),
            "SIGABRT, not a test failure: {crashed:?}"
        );
    }
    let checkpoint = Checkpoint::<Block>::load(&FileCheckpointStore::new(d.join("job.ckpt")))
        .unwrap()
        .unwrap();
    assert_eq!(checkpoint.next.as_deref(), Some("mix"));
    assert!(!d.join("output.json").exists());

    fs::remove_file(d.join("abort-mix")).unwrap();
    assert!(child(d).success());
    let output: ResultSet<Block> = serde_json::from_slice(&fs::read(d.join("output.json")).unwrap()).unwrap();
    assert_eq!(output, reference());
    assert_eq!(fs::read_to_string(d.join("restored")).unwrap(), "2");
    for task in ["load", "scale", "log"] {
        assert_eq!(count(d, task), 1, "{task} ran again after the crash");
    }
    // `mix` started in the process that died, and again in the one that
    // resumed; every later step ran once.
    assert_eq!(count(d, "mix"), 2);
    for task in &TASKS[4..] {
        assert_eq!(count(d, task), 1, "{task}");
    }
}

/// A report's `started_at_unix_ms` is when this call started the run: for a
/// rerun of a finished checkpoint, where every step is restored, not when
/// the run that saved them started; and for a run cancelled before its
/// first step, still known.
#[test]
fn a_reports_start_is_this_calls_even_when_nothing_ran() {
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let p = Pipeline::<u64>::builder("p")
        .task("a", |c| Ok(*c.input()))
        .build()
        .unwrap();
    let executor = PipelineExecutor::builder().build().unwrap();
    let store = MemoryCheckpointStore::new();
    executor.execute_with_checkpoint(&p, 1, &store).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = now_ms();
    let again = executor.execute_with_checkpoint(&p, 1, &store).unwrap();
    assert_eq!(again.restored(), 1);
    let started = again.report().started_at_unix_ms.unwrap();
    assert!(
        (before..=now_ms()).contains(&started),
        "{started} not in this call ({before}..)"
    );

    let token = conveyor::CancelToken::new();
    token.cancel();
    let before = now_ms();
    let options = conveyor::RunOptions::new().cancel_token(token);
    let cancelled = executor.execute_with(&p, 1, &options).unwrap();
    assert_eq!(cancelled.chain().len(), 0);
    let started = cancelled.report().started_at_unix_ms.unwrap();
    assert!(
        (before..=now_ms()).contains(&started),
        "{started} not in this call ({before}..)"
    );
}

/// Every step's `checkpoint_saved` comes before the run's last event, in
/// every durability mode: the run waits for its writer before it says it
/// has finished.
#[test]
fn checkpoint_saved_events_come_before_pipeline_finished() {
    use conveyor::checkpoint::Durability;
    use conveyor::signal::Signal;
    use std::sync::{Arc, Mutex};
    for durability in [Durability::EveryStep, Durability::EveryRecord, Durability::Never] {
        let heard = Arc::new(Mutex::new(Vec::<String>::new()));
        let h = Arc::clone(&heard);
        let executor = PipelineExecutor::builder()
            .observer(conveyor::observer_fn(move |s| match s {
                Signal::PipelineFinished(_) => h.lock().unwrap().push("pipeline_finished".into()),
                Signal::CheckpointSaved(e) => {
                    h.lock().unwrap().push(format!("saved {}", e.step.unwrap_or("")));
                }
                _ => {}
            }))
            .build()
            .unwrap();
        let p = Pipeline::<u64>::builder("p")
            .task("a", |c| Ok(*c.input()))
            .task("b", |c| Ok(*c.input()))
            .build()
            .unwrap();
        let dir = workspace();
        let store = FileCheckpointStore::new(dir.path().join("c.ckpt")).with_durability(durability);
        executor.execute_with_checkpoint(&p, 1, &store).unwrap();
        let heard = heard.lock().unwrap().clone();
        assert_eq!(
            heard,
            ["saved a", "saved b", "pipeline_finished"],
            "{durability:?}"
        );
    }
}
