//! Runs and benchmarks as Chrome trace-event JSON, which Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::bench::comparison::Comparison;
use crate::facade::run::Run;

/// One entry of the `traceEvents` array, in the trace-event format's own
/// field names: `ph` is the phase (`X` a complete slice, `i` an instant,
/// `M` metadata), `ts` and `dur` are microseconds.
#[derive(Debug, Clone, Serialize)]
struct TraceEvent {
    name: String,
    cat: &'static str,
    ph: &'static str,
    ts: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    tid: u64,
    /// The scope of an instant event: `t`, its thread's track.
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    args: Value,
}

/// Runs and benchmarks as a Chrome trace: the JSON object format, with a
/// `traceEvents` array that Perfetto and `chrome://tracing` load.
///
/// Each run added becomes a process of its own in the trace:
/// - a track `steps` with one slice per step (category `step`), and inside
///   it a `dispatch` slice for the time before the step's first task
///   started;
/// - one track per thread that ran tasks, named `thread 1`, `thread 2`, …
///   in the order the threads first started a task in that run;
/// - one slice per task on its thread's track (category `task`), named
///   `task (step)`, with its step, context, attempts, success, queue time
///   and wait in `args`; a task that needed more than one attempt also has
///   an instant event `retried: N attempts` at its end (category `retry`).
///
/// The run's metrics keep each task's first start and last end, not every
/// attempt, so a retried task is one slice spanning its attempts and the
/// backoffs between them.
///
/// Each benchmark added becomes a process with one track per contender,
/// baselines included, and one slice per measured run (category `run`) at
/// the time it ran, with its CPU time in `args`: the interleaving of the
/// rounds shows.
///
/// ```
/// use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Task};
/// use conveyor::bench::ChromeTrace;
/// let pipeline: Pipeline<u64> = Pipeline::builder("p")
///     .step((0..4).map(|i| Task::from_fn(format!("t{i}"), move |c| Ok(c.input() + i))).collect::<Vec<_>>())
///     .build()?;
/// let run = PipelineExecutor::builder().build()?.execute(&pipeline, 1)?;
/// let json: serde_json::Value = serde_json::from_str(&ChromeTrace::from_run(&run).to_json())?;
/// let slices = json["traceEvents"].as_array().unwrap().iter().filter(|e| e["cat"] == "task").count();
/// assert_eq!(slices, 4);
/// // std::fs::write("run.trace.json", ChromeTrace::from_run(&run).to_json())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct ChromeTrace {
    events: Vec<TraceEvent>,
    processes: u32,
}

/// Step names default to their tasks' names joined, which can run to
/// thousands of characters; a slice name that long helps no one.
const NAME_LIMIT: usize = 60;

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl ChromeTrace {
    /// An empty trace.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The trace of one run.
    #[must_use]
    pub fn from_run<T>(run: &Run<T>) -> Self {
        let mut trace = Self::new();
        trace.add_run(run);
        trace
    }

    /// The trace of one benchmark.
    #[must_use]
    pub fn from_comparison(comparison: &Comparison) -> Self {
        let mut trace = Self::new();
        trace.add_comparison(comparison);
        trace
    }

    /// How many events the trace holds, metadata included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the trace holds no events.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn process(&mut self, name: String) -> u32 {
        self.processes += 1;
        let pid = self.processes;
        self.metadata(pid, 0, "process_name", json!({ "name": name }));
        self.metadata(pid, 0, "process_sort_index", json!({ "sort_index": pid }));
        pid
    }

    fn metadata(&mut self, pid: u32, tid: u64, name: &str, args: Value) {
        self.events.push(TraceEvent {
            name: name.to_owned(),
            cat: "__metadata",
            ph: "M",
            ts: 0.0,
            dur: None,
            pid,
            tid,
            s: None,
            args,
        });
    }

    fn track(&mut self, pid: u32, tid: u64, name: &str) {
        self.metadata(pid, tid, "thread_name", json!({ "name": name }));
        self.metadata(pid, tid, "thread_sort_index", json!({ "sort_index": tid }));
    }

    #[allow(clippy::too_many_arguments)] // the fields of one slice
    fn slice(
        &mut self,
        pid: u32,
        tid: u64,
        name: String,
        cat: &'static str,
        from: Duration,
        to: Duration,
        args: Value,
    ) {
        self.events.push(TraceEvent {
            name,
            cat,
            ph: "X",
            ts: micros(from),
            dur: Some(micros(to.saturating_sub(from))),
            pid,
            tid,
            s: None,
            args,
        });
    }

    /// Adds `run` as a process of its own; see the type's docs for its
    /// tracks and slices. Times count from the run's start.
    pub fn add_run<T>(&mut self, run: &Run<T>) -> &mut Self {
        let pid = self.process(format!("run of `{}` ({})", run.pipeline(), run.status()));
        self.track(pid, 0, "steps");
        // Threads are numbered from 1 in the order they first started a
        // task: internal numbers (787, 788) mean nothing to a reader.
        let mut first_start: BTreeMap<u64, Duration> = BTreeMap::new();
        for context in run.chain().iter() {
            for t in context.metrics().tasks.iter().filter(|t| t.attempts > 0) {
                let at = first_start.entry(t.thread).or_insert(t.started);
                *at = (*at).min(t.started);
            }
        }
        let mut order: Vec<(Duration, u64)> =
            first_start.into_iter().map(|(thread, at)| (at, thread)).collect();
        order.sort_unstable();
        let lanes: BTreeMap<u64, u64> = order
            .iter()
            .zip(1..)
            .map(|(&(_, thread), lane)| (thread, lane))
            .collect();
        for (&thread, &lane) in &lanes {
            self.track(pid, lane, &format!("thread {lane}"));
            // The process-wide number links the track to TaskMetrics::thread.
            self.metadata(pid, lane, "thread_number", json!({ "thread": thread }));
        }

        for (index, context) in run.chain().iter().enumerate() {
            let metrics = context.metrics();
            let restored = index < run.restored();
            let step = shorten(context.step());
            let started = metrics
                .tasks
                .iter()
                .filter(|t| t.attempts > 0)
                .map(|t| t.started)
                .min();
            let evaluation = context.evaluation().map(|e| {
                json!({ "success": e.success, "succeeded": e.succeeded, "total": e.total, "strategy": e.strategy })
            });
            self.slice(
                pid,
                0,
                step.clone(),
                if restored { "step,restored" } else { "step" },
                metrics.started,
                metrics.finished.max(metrics.started),
                json!({
                    "context": context.id().get(),
                    "status": context.state().status().as_str(),
                    "tasks": metrics.tasks.len(),
                    "restored": restored,
                    "evaluation": evaluation,
                }),
            );
            if let Some(first) = started.filter(|&s| s > metrics.started && s <= metrics.finished) {
                self.slice(
                    pid,
                    0,
                    "dispatch".to_owned(),
                    "wait",
                    metrics.started,
                    first,
                    json!({ "step": step, "note": "from the step's start to its first task's start" }),
                );
            }
            for t in metrics.tasks.iter().filter(|t| t.attempts > 0) {
                let lane = lanes.get(&t.thread).copied().unwrap_or(0);
                let finished = t.finished.max(t.started);
                self.slice(
                    pid,
                    lane,
                    format!("{} ({step})", t.task),
                    if restored { "task,restored" } else { "task" },
                    t.started,
                    finished,
                    json!({
                        "task": &*t.task,
                        "step": step,
                        "context": context.id().get(),
                        "attempts": t.attempts,
                        "succeeded": t.succeeded,
                        "queued_us": micros(t.queued),
                        "wait_us": micros(t.wait()),
                        "thread": t.thread,
                    }),
                );
                if t.attempts > 1 {
                    self.events.push(TraceEvent {
                        name: format!("retried: {} attempts", t.attempts),
                        cat: "retry",
                        ph: "i",
                        ts: micros(finished),
                        dur: None,
                        pid,
                        tid: lane,
                        s: Some("t"),
                        args: json!({ "task": &*t.task, "step": step, "attempts": t.attempts }),
                    });
                }
            }
        }
        self
    }

    /// Adds `comparison` as a process of its own: a track per contender and
    /// a slice per measured run, at the time it ran in the benchmark.
    pub fn add_comparison(&mut self, comparison: &Comparison) -> &mut Self {
        let pid = self.process(format!("benchmark `{}`", comparison.benchmark));
        for (result, lane) in comparison.results.iter().zip(1..) {
            let name = if result.baseline {
                format!("{} (baseline)", result.name)
            } else {
                result.name.clone()
            };
            self.track(pid, lane, &name);
            for (run, sample) in result.samples.iter().enumerate() {
                self.slice(
                    pid,
                    lane,
                    result.name.clone(),
                    "run",
                    sample.start,
                    sample.start + sample.wall,
                    json!({
                        "run": run + 1,
                        "wall_us": micros(sample.wall),
                        "cpu_us": sample.cpu.map(micros),
                        "tasks": comparison.tasks,
                    }),
                );
            }
        }
        self
    }

    /// The trace as JSON: an object whose `traceEvents` array holds every
    /// event, as Perfetto and `chrome://tracing` load it.
    ///
    /// # Panics
    /// Never: the events are plain data with string keys.
    #[must_use]
    pub fn to_json(&self) -> String {
        let trace = json!({
            "traceEvents": self.events,
            "displayTimeUnit": "ms",
            "otherData": { "generator": concat!("conveyor ", env!("CARGO_PKG_VERSION")) },
        });
        serde_json::to_string(&trace).expect("a trace always serialises")
    }
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(NAME_LIMIT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

impl fmt::Debug for ChromeTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChromeTrace")
            .field("events", &self.events.len())
            .field("processes", &self.processes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::comparison::{Row, Sample};
    use crate::model::config::ExecutorConfig;

    #[test]
    fn a_comparison_has_a_track_per_contender_and_a_slice_per_run() {
        let ms = Duration::from_millis;
        let rows = vec![
            Row {
                name: "inline".into(),
                config: Some(ExecutorConfig::Inline),
                baseline: false,
                threads: Some(1),
                samples: vec![
                    Sample::new(ms(0), ms(2), Some(ms(2))),
                    Sample::new(ms(5), ms(3), None),
                ],
            },
            Row {
                name: "loop".into(),
                config: None,
                baseline: true,
                threads: Some(1),
                samples: vec![Sample::new(ms(2), ms(1), None), Sample::new(ms(8), ms(1), None)],
            },
        ];
        let c = Comparison::from_rows("b".into(), 4, 0, 2, rows);
        let json: Value = serde_json::from_str(&ChromeTrace::from_comparison(&c).to_json()).unwrap();
        let events = json["traceEvents"].as_array().unwrap();
        let runs: Vec<&Value> = events.iter().filter(|e| e["cat"] == "run").collect();
        assert_eq!(runs.len(), 4);
        assert_eq!(runs[1]["ts"], 5000.0);
        assert_eq!(runs[1]["dur"], 3000.0);
        assert!(runs[1]["args"]["cpu_us"].is_null());
        let tracks: Vec<&str> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(tracks, ["inline", "loop (baseline)"]);
    }

    #[test]
    fn long_step_names_are_cut() {
        assert_eq!(shorten("abc"), "abc");
        assert_eq!(shorten(&"x".repeat(100)).chars().count(), NAME_LIMIT + 1);
    }
}
