//! A checkpointed run killed with SIGKILL at random moments, again and
//! again, still ends with exactly the output of a run nobody touched.
//!
//! Each trial starts this test binary again as a child ([`kill_child`])
//! that runs a pipeline of 4 steps of 16 tasks, each task returning 64 to
//! 128 KiB, against a [`FileCheckpointStore`]. The parent kills the child
//! at a random moment (from a seeded generator, so a failure reproduces),
//! up to three times, then lets a last child finish. Over all trials this
//! proves, for the append-only log:
//!
//! - whatever moment a kill lands on, the log it leaves loads: a record cut
//!   short is dropped, never an error, and every value the log holds is the
//!   value an uninterrupted run computes;
//! - a new process restores the finished steps and, in the step that was
//!   interrupted, the tasks that have a record, and runs exactly the other
//!   tasks: what the last child of a trial restored and ran is checked
//!   against the log it started from;
//! - a log of a finished run (a kill after the last record, before the
//!   process exited) comes back whole, with nothing run again;
//! - the final output is byte for byte that of a plain `execute`, and the
//!   final log ends on a whole record.
//!
//! A record reaches the file in one `write`, which a kill almost never
//! lands inside. So that torn records are tested too, every other trial
//! runs on a [`SlowDisk`]: the same file store, appending each record in
//! small pieces with pauses between them, so that a kill often leaves part
//! of a record at the end of the log, exactly as a kill inside a long write
//! would.
//!
//! Unix only: SIGKILL gives the child no chance to flush or clean up, which
//! is the point.
#![cfg(unix)]

mod common;

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use conveyor::checkpoint::{Checkpoint, CheckpointStore, Durability, FileCheckpointStore};
use conveyor::signal::Signal;
use conveyor::{
    CheckpointError, ExecutorConfig, Pipeline, PipelineExecutor, PipelineExecutorBuilder, Step, Task,
    TaskContext, TaskError, observer_fn,
};
use serde::{Deserialize, Serialize};

/// Set to the trial's folder in the children; unset in the test run.
const CHILD: &str = "CONVEYOR_KILL_CHILD_DIR";
/// Set in the children that append through a [`SlowDisk`].
const SLOW: &str = "CONVEYOR_KILL_CHILD_SLOW";
const LOG: &str = "job.ckpt";
const OUTPUT: &str = "output.json";
const REPORT: &str = "report.json";

const STEPS: usize = 4;
const TASKS: usize = 16;
const TRIALS: usize = 24;
const KILLS_PER_TRIAL: usize = 3;
/// Mixing rounds per task: a few milliseconds in a debug build, so that a
/// step lasts long enough for kills to land inside it.
const WORK_ROUNDS: u32 = 200_000;
/// Seeds the kill times; change it to explore other interleavings.
const SEED: u64 = 0x5EED_C0DE_2024_0001;
/// How long one child may take to finish before the test calls it hung.
const CHILD_BOUND: Duration = Duration::from_secs(60);
const SIGKILL: i32 = 9;

fn mix(h: u64, word: u64) -> u64 {
    let h = (h ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

fn absorb(mut h: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        h = mix(h, u64::from_le_bytes(word.try_into().unwrap()));
    }
    for &b in words.remainder() {
        h = mix(h, u64::from(b));
    }
    mix(h, bytes.len() as u64)
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn step_name(step: usize) -> String {
    format!("s{step}")
}

fn task_name(step: usize, index: usize) -> String {
    format!("s{step}t{index:02}")
}

/// 64 to 128 KiB, varying by task, so that records end at varied offsets.
/// (A debug build encodes and decodes a `Vec<u8>` a byte at a time, so
/// every kilobyte here costs in every save, load and output.)
fn value_len(step: usize, index: usize) -> usize {
    (64 + ((step * 7 + index * 5) % 9) * 8) * 1024
}

/// Depends on the input and on two results of the step before, so a
/// restored value that differed from the one computed would spread to
/// every later step and to the output.
fn task(step: usize, index: usize) -> Task<Vec<u8>> {
    Task::from_fn(task_name(step, index), move |c: &TaskContext<'_, Vec<u8>>| {
        let mut h = absorb((step * TASKS + index) as u64, c.input());
        if step > 0 {
            for k in [index, (index + 1) % TASKS] {
                let name = task_name(step - 1, k);
                let before = c
                    .previous()
                    .get(&name)
                    .ok_or_else(|| TaskError::msg(format!("no result from {name}")))?;
                h = absorb(h, before);
            }
        }
        for _ in 0..WORK_ROUNDS {
            h = mix(h, h.rotate_left(23));
        }
        let len = value_len(step, index);
        let mut value = Vec::with_capacity(len);
        while value.len() < len {
            value.extend_from_slice(&splitmix(&mut h).to_le_bytes());
        }
        Ok(value)
    })
}

fn pipeline() -> Pipeline<Vec<u8>> {
    let mut builder = Pipeline::builder("kill-resume");
    for step in 0..STEPS {
        builder = builder.step(Step::new(step_name(step), (0..TASKS).map(|i| task(step, i))).on("cpu"));
    }
    builder.build().unwrap()
}

fn input() -> Vec<u8> {
    let mut state = 7;
    (0..4096).map(|_| splitmix(&mut state) as u8).collect()
}

fn executor() -> PipelineExecutorBuilder<Vec<u8>> {
    PipelineExecutor::builder().executor("cpu", ExecutorConfig::pool(2))
}

/// A [`FileCheckpointStore`] on a slow disk: each append reaches the file
/// in pieces, with a pause after each. What the file holds at any moment
/// is still a prefix of what was appended, which is all a kill can leave.
struct SlowDisk(FileCheckpointStore);

impl SlowDisk {
    const PIECE: usize = 16 * 1024;
    const PAUSE: Duration = Duration::from_micros(300);
}

impl CheckpointStore for SlowDisk {
    fn open(&self) -> Result<Option<Box<dyn BufRead + '_>>, CheckpointError> {
        self.0.open()
    }

    fn create(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        self.0.create(bytes)
    }

    fn append(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        for piece in bytes.chunks(Self::PIECE) {
            self.0.append(piece)?;
            std::thread::sleep(Self::PAUSE);
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), CheckpointError> {
        self.0.sync()
    }

    fn truncate(&self, len: u64) -> Result<(), CheckpointError> {
        self.0.truncate(len)
    }

    fn clear(&self) -> Result<(), CheckpointError> {
        self.0.clear()
    }

    fn durability(&self) -> Durability {
        self.0.durability()
    }

    fn path(&self) -> Option<&Path> {
        self.0.path()
    }
}

/// What a child restored and ran, as its observer heard it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Restored {
    /// `Run::restored`: contexts that came back from the log.
    steps: usize,
    /// `restored_tasks` of the checkpoint-loaded event; `None` when there
    /// was no log to load.
    loaded_tasks: Option<usize>,
    /// Finished-task events marked restored.
    task_events: usize,
    /// Finished-task events of tasks that ran in this process.
    ran: usize,
}

/// What a child that ran to the end writes for the parent.
#[derive(Debug, Serialize, Deserialize)]
struct ChildReport {
    restored: Restored,
    /// How long `execute_with_checkpoint` took.
    run: Duration,
    /// How long writing the output took after it.
    publish: Duration,
}

/// Writes `bytes` under `name` in one rename, so the parent never reads
/// half a file from a child killed while writing it.
fn publish(dir: &Path, name: &str, bytes: &[u8]) {
    let temp = dir.join(format!("{name}.tmp"));
    fs::write(&temp, bytes).unwrap();
    fs::rename(&temp, dir.join(name)).unwrap();
}

#[derive(Default)]
struct Heard {
    restored: AtomicUsize,
    ran: AtomicUsize,
    loaded: OnceLock<usize>,
}

/// Not a test on its own: the body of the children of
/// [`killed_runs_resume_to_the_output_of_an_uninterrupted_one`]. It does
/// nothing unless started by that test.
#[test]
fn kill_child() {
    let Some(dir) = std::env::var_os(CHILD).map(PathBuf::from) else {
        return;
    };
    let heard = Arc::new(Heard::default());
    let ears = Arc::clone(&heard);
    let executor = executor()
        .observer(observer_fn(move |s| match s {
            Signal::TaskFinished(e) if e.restored => {
                ears.restored.fetch_add(1, Ordering::Relaxed);
            }
            Signal::TaskFinished(_) => {
                ears.ran.fetch_add(1, Ordering::Relaxed);
            }
            Signal::CheckpointLoaded(e) => {
                let _ = ears.loaded.set(e.restored_tasks);
            }
            _ => {}
        }))
        .build()
        .unwrap();
    let file = FileCheckpointStore::new(dir.join(LOG));
    let slow;
    let store: &dyn CheckpointStore = if std::env::var_os(SLOW).is_some() {
        slow = SlowDisk(file);
        &slow
    } else {
        &file
    };
    let began = Instant::now();
    let run = executor
        .execute_with_checkpoint(&pipeline(), input(), store)
        .unwrap();
    let ran = began.elapsed();
    assert!(run.is_success(), "{:?}", run.failure());
    publish(&dir, OUTPUT, &serde_json::to_vec(run.output().unwrap()).unwrap());
    let report = ChildReport {
        restored: Restored {
            steps: run.restored(),
            loaded_tasks: heard.loaded.get().copied(),
            task_events: heard.restored.load(Ordering::Relaxed),
            ran: heard.ran.load(Ordering::Relaxed),
        },
        run: ran,
        publish: began.elapsed() - ran,
    };
    publish(&dir, REPORT, &serde_json::to_vec(&report).unwrap());
}

fn spawn(dir: &Path, slow: bool) -> Child {
    // Kept in the trial's folder, so a failing child explains itself.
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("child.stderr"))
        .unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["kill_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, dir)
        .env_remove(SLOW)
        .stdout(Stdio::null())
        .stderr(stderr);
    if slow {
        command.env(SLOW, "1");
    }
    command.spawn().unwrap()
}

fn child_stderr(dir: &Path) -> String {
    fs::read_to_string(dir.join("child.stderr")).unwrap_or_default()
}

/// Polls until the child exits or `until` passes: `None` if it is still
/// running then.
fn exit_before(child: &mut Child, until: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        let now = Instant::now();
        if now >= until {
            return None;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(1)));
    }
}

/// The child's exit, within [`CHILD_BOUND`]; a child still running then is
/// killed and fails the test rather than hang it.
fn finish(child: &mut Child, dir: &Path) -> ExitStatus {
    exit_before(child, Instant::now() + CHILD_BOUND).unwrap_or_else(|| {
        let _ = child.kill();
        panic!(
            "a child ran longer than {CHILD_BOUND:?}; its stderr:\n{}",
            child_stderr(dir)
        )
    })
}

/// A seeded xorshift64: the same kill times on every run of the test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[lo, hi)`.
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1_u64 << 53) as f64;
        lo + unit * (hi - lo)
    }
}

/// Where the log a kill left says the run is: what the next child starts
/// from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// No log: the kill came before it was created.
    NoLog,
    /// `steps` steps finished, and `pending` tasks of the next one have a
    /// record.
    Partial { steps: usize, pending: usize },
    /// The last step's record is there: the run ended.
    Finished,
}

impl Progress {
    /// Tasks whose values the log holds.
    fn saved(self) -> usize {
        match self {
            Self::NoLog => 0,
            Self::Partial { steps, pending } => steps * TASKS + pending,
            Self::Finished => STEPS * TASKS,
        }
    }

    /// What a child starting from here must restore and run.
    fn expected(self) -> Restored {
        let steps = match self {
            Self::NoLog => 0,
            Self::Partial { steps, .. } => steps,
            Self::Finished => STEPS,
        };
        Restored {
            steps,
            loaded_tasks: (self != Self::NoLog).then_some(self.saved()),
            task_events: self.saved(),
            ran: STEPS * TASKS - self.saved(),
        }
    }
}

/// How long an untouched child spends where, from its spawn.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// Start-up: from the spawn to the start of the run.
    start: Duration,
    /// The whole run, from an empty log.
    run: Duration,
    /// Reading back the log of a finished run.
    load: Duration,
}

impl Timing {
    /// When a child starting from `from` has its run's work done: what the
    /// kill window is scaled to.
    fn work(self, from: Progress) -> Duration {
        let share = from.saved() as f64 / (STEPS * TASKS) as f64;
        self.start + self.load.mul_f64(share) + self.run.mul_f64(1.0 - share)
    }
}

/// Whether the log ends inside a record. Walks the frames by their length
/// fields only (the layout in `conveyor::checkpoint`'s docs): a kill
/// leaves a prefix of what was written, so a frame running past the end is
/// the only damage there can be.
fn torn_tail(log: &[u8]) -> bool {
    const PREAMBLE: usize = 12;
    const FRAME_HEAD: usize = 13;
    let mut at = PREAMBLE;
    loop {
        if at == log.len() {
            return false;
        }
        if log.len() - at < FRAME_HEAD {
            return true;
        }
        let len = u64::from_le_bytes(log[at..at + 8].try_into().unwrap());
        match usize::try_from(len)
            .ok()
            .and_then(|l| at.checked_add(FRAME_HEAD + l))
        {
            Some(next) if next <= log.len() => at = next,
            _ => return true,
        }
    }
}

/// Loads the log a kill left, checks it against the reference values, and
/// says where it leaves the run.
fn inspect(store: &FileCheckpointStore, reference: &HashMap<String, Vec<u8>>, at: &str) -> Progress {
    let checkpoint = Checkpoint::<Vec<u8>>::load(store)
        .unwrap_or_else(|e| panic!("{at}: the log a kill left does not load: {e}"));
    let Some(checkpoint) = checkpoint else {
        return Progress::NoLog;
    };
    let steps = checkpoint.completed.len();
    let names: Vec<String> = (0..steps).map(step_name).collect();
    assert_eq!(
        checkpoint
            .completed
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        names,
        "{at}"
    );
    for context in &checkpoint.chain {
        let results = context.state.results();
        assert_eq!(results.len(), TASKS, "{at}: step {}", context.step);
        for (name, value) in results.iter() {
            assert!(
                value == &reference[name],
                "{at}: the log holds a wrong value for {name}"
            );
        }
    }
    if checkpoint.finished {
        assert_eq!(steps, STEPS, "{at}");
        assert!(checkpoint.pending.is_empty(), "{at}");
        return Progress::Finished;
    }
    let next = step_name(steps);
    assert_eq!(checkpoint.next.as_deref(), Some(next.as_str()), "{at}");
    for task in &checkpoint.pending {
        assert_eq!(*task.step, *next, "{at}: a pending task of another step");
        let name = task_name(steps, task.index);
        assert!(
            task.value == reference[&name],
            "{at}: the log holds a wrong value for pending {name}"
        );
    }
    Progress::Partial {
        steps,
        pending: checkpoint.pending.len(),
    }
}

/// What happened over all trials.
#[derive(Debug, Default)]
struct Tally {
    /// Kills sent to a child the parent last saw running.
    sent: usize,
    /// Of those, the ones that killed it (it died of SIGKILL).
    hit: usize,
    /// Children that exited on their own before the planned kill.
    missed: usize,
    /// Hits before the log existed.
    no_log: usize,
    /// Hits that left a log with finished steps only.
    between_steps: usize,
    /// Hits that left task records of an unfinished step.
    mid_step: usize,
    /// Hits after the last record, before the process exited.
    after_end: usize,
    /// Hits that left a record cut short at the end of the log.
    torn: usize,
    /// Of those, in trials on the plain file store.
    torn_plain: usize,
    /// Trials whose last child restored tasks of an interrupted step.
    resumed_mid_step: usize,
    /// Trials whose last child found a finished run and ran nothing.
    resumed_finished: usize,
}

struct Reference {
    /// The output as a child writes it.
    json: Vec<u8>,
    /// Every task's value, by task name.
    values: HashMap<String, Vec<u8>>,
}

fn reference() -> Reference {
    let run = executor().build().unwrap().execute(&pipeline(), input()).unwrap();
    assert!(run.is_success(), "{:?}", run.failure());
    let mut values = HashMap::new();
    for step in 0..STEPS {
        let context = run.context(&step_name(step)).unwrap();
        for (name, value) in context.state().results().iter() {
            values.insert(name.to_owned(), value.clone());
        }
    }
    assert_eq!(values.len(), STEPS * TASKS);
    Reference {
        json: serde_json::to_vec(run.output().unwrap()).unwrap(),
        values,
    }
}

/// Checks what the child that finished a trial restored, ran and wrote,
/// and that the log it leaves ends on a whole record.
fn check_finished(dir: &Path, from: Progress, reference: &Reference, at: &str) -> ChildReport {
    let report: ChildReport = serde_json::from_slice(&fs::read(dir.join(REPORT)).unwrap()).unwrap();
    assert_eq!(report.restored, from.expected(), "{at}: resumed from {from:?}");
    let output = fs::read(dir.join(OUTPUT)).unwrap();
    assert!(
        output == reference.json,
        "{at}: the output differs from an uninterrupted run's ({} bytes against {})",
        output.len(),
        reference.json.len()
    );
    assert!(
        !torn_tail(&fs::read(dir.join(LOG)).unwrap()),
        "{at}: the final log is torn"
    );
    report
}

/// Runs one untouched child on an empty log and times it.
fn calibrate(slow: bool, reference: &Reference) -> Timing {
    let dir = tempfile::tempdir().unwrap();
    let spawned = Instant::now();
    let status = finish(&mut spawn(dir.path(), slow), dir.path());
    let whole = spawned.elapsed();
    assert!(status.success(), "{}", child_stderr(dir.path()));
    let at = if slow {
        "calibration, slow disk"
    } else {
        "calibration"
    };
    let report = check_finished(dir.path(), Progress::NoLog, reference, at);
    let began = Instant::now();
    let store = FileCheckpointStore::new(dir.path().join(LOG));
    assert_eq!(inspect(&store, &reference.values, at), Progress::Finished);
    Timing {
        start: whole.saturating_sub(report.run + report.publish),
        run: report.run,
        load: began.elapsed(),
    }
}

#[test]
fn killed_runs_resume_to_the_output_of_an_uninterrupted_one() {
    let began = Instant::now();
    let reference = common::within(common::BOUND, reference);
    // Kill times scale with how long an untouched child takes here, debug
    // or release, loaded machine or not.
    let timings = [calibrate(false, &reference), calibrate(true, &reference)];

    let mut rng = XorShift(SEED);
    let mut tally = Tally::default();
    for trial in 0..TRIALS {
        let slow = trial % 2 == 1;
        let timing = timings[usize::from(slow)];
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let store = FileCheckpointStore::new(d.join(LOG));
        let mut from = Progress::NoLog;
        let mut kills = 0;
        let mut trail = Vec::new();
        loop {
            let at = format!("trial {trial}, child {}", kills + 1);
            // Anywhere from start-up to a little past the end of the work
            // left: early kills, kills mid-step and between steps, while
            // the log is read back, and some after the last record.
            let delay = timing.work(from).mul_f64(rng.between(0.0, 1.1));
            let mut child = spawn(d, slow);
            let spawned = Instant::now();
            if kills == KILLS_PER_TRIAL {
                let status = finish(&mut child, d);
                assert!(status.success(), "{at}: {status:?}\n{}", child_stderr(d));
                break;
            }
            kills += 1;
            if let Some(status) = exit_before(&mut child, spawned + delay) {
                assert!(status.success(), "{at}: {status:?}\n{}", child_stderr(d));
                tally.missed += 1;
                trail.push("done".to_owned());
                break;
            }
            child.kill().unwrap();
            tally.sent += 1;
            let status = finish(&mut child, d);
            if status.signal() != Some(SIGKILL) {
                // It exited on its own between the last poll and the kill.
                assert!(status.success(), "{at}: {status:?}\n{}", child_stderr(d));
                tally.missed += 1;
                trail.push("done".to_owned());
                break;
            }
            tally.hit += 1;
            let torn = fs::read(d.join(LOG)).is_ok_and(|log| torn_tail(&log));
            tally.torn += usize::from(torn);
            tally.torn_plain += usize::from(torn && !slow);
            from = inspect(&store, &reference.values, &at);
            match from {
                Progress::NoLog => tally.no_log += 1,
                Progress::Partial { pending: 0, .. } => tally.between_steps += 1,
                Progress::Partial { .. } => tally.mid_step += 1,
                Progress::Finished => tally.after_end += 1,
            }
            trail.push(format!(
                "{}ms→{from:?}{}",
                delay.as_millis(),
                if torn { " torn" } else { "" }
            ));
        }
        let report = check_finished(d, from, &reference, &format!("trial {trial}"));
        match from {
            Progress::Partial { pending, .. } if pending > 0 => tally.resumed_mid_step += 1,
            Progress::Finished => tally.resumed_finished += 1,
            _ => {}
        }
        println!(
            "trial {trial:2}{}: {} | last child {:?}",
            if slow { " (slow disk)" } else { "" },
            trail.join(", "),
            report.restored
        );
    }

    println!(
        "{TRIALS} trials in {:?}; untouched children: {:?} on the file store, {:?} on a slow disk\n{tally:#?}",
        began.elapsed(),
        timings[0],
        timings[1]
    );
    assert!(tally.hit > 0, "no kill hit a running child: {tally:?}");
    assert!(
        tally.between_steps + tally.mid_step > 0,
        "no kill landed while the run was saving progress: {tally:?}"
    );
    assert!(tally.torn > 0, "no kill left a torn record: {tally:?}");
    assert!(
        tally.resumed_mid_step > 0,
        "no resume restored tasks of an interrupted step: {tally:?}"
    );
}
