//! A tiny strategy benchmark end to end: every strategy, the baseline, and
//! each output format.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use conveyor::bench::{BenchmarkEvent, BenchmarkObserver, Comparison, StrategyBenchmark, Timeline};
use conveyor::{CustomExecutor, ExecutorConfig, Job, Pipeline, PipelineExecutor, Task};

/// Runs each job on a fresh thread: the simplest executor a user might bring.
struct Spawner;

impl CustomExecutor for Spawner {
    fn spawn(&self, job: Job) {
        std::thread::spawn(move || job.run());
    }
}

fn fan_out(width: u64) -> Pipeline<u64> {
    Pipeline::builder("fan")
        .step([Task::from_fn("source", |c| Ok(*c.input()))])
        .step(
            (0..width)
                .map(|i| Task::from_fn(format!("w{i}"), move |c| Ok(c.previous().first().unwrap() + i)))
                .collect::<Vec<_>>(),
        )
        .step([Task::from_fn("sink", |c| Ok(c.previous().values().sum()))])
        .build()
        .unwrap()
}

fn strategies() -> Vec<ExecutorConfig> {
    vec![
        ExecutorConfig::Inline,
        ExecutorConfig::pool(2),
        ExecutorConfig::Global,
        ExecutorConfig::ThreadPerTask,
        ExecutorConfig::custom("spawner"),
    ]
}

#[derive(Default)]
struct Progress {
    started: AtomicUsize,
    runs: Mutex<Vec<(usize, usize)>>,
    finished: AtomicUsize,
}

impl BenchmarkObserver for Progress {
    fn benchmark_started(&self, _: &str, total: usize) {
        self.started.store(total, Ordering::Relaxed);
    }
    fn run_finished(&self, e: &BenchmarkEvent<'_>) {
        self.runs.lock().unwrap().push((e.done, e.total));
    }
    fn benchmark_finished(&self, _: &Comparison) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn every_strategy_and_the_baseline_are_compared() {
    let executor = PipelineExecutor::builder()
        .custom_executor("spawner", Spawner)
        .build()
        .unwrap();
    let pipeline = fan_out(6);
    let baseline_runs = AtomicUsize::new(0);
    let progress = Arc::new(Progress::default());
    let comparison = StrategyBenchmark::new("fan-out 6", &pipeline, 1)
        .executor(&executor)
        .strategies(strategies())
        .as_configured()
        .baseline_on("rayon", 2, || {
            use rayon::prelude::*;
            let s: u64 = (0..6_u64).into_par_iter().map(|i| 1 + i).sum();
            std::hint::black_box(s);
            baseline_runs.fetch_add(1, Ordering::Relaxed);
        })
        .baseline_on("loop", 1, || {
            std::hint::black_box((0..6_u64).map(|i| 1 + i).sum::<u64>());
        })
        .warmups(1)
        .runs(3)
        .observer(Arc::clone(&progress))
        .run()
        .unwrap();

    assert_eq!(baseline_runs.load(Ordering::Relaxed), 4);
    let names: Vec<&str> = comparison.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "inline",
            "pool(2)",
            "global",
            "thread-per-task",
            "custom(spawner)",
            "as configured",
            "rayon",
            "loop"
        ]
    );
    assert_eq!(comparison.tasks, 8);
    assert_eq!(comparison.baseline().unwrap().name, "rayon");
    for r in &comparison.results {
        assert_eq!(r.runs, 3, "{}", r.name);
        assert_eq!(r.samples.len(), 3, "{}", r.name);
        assert!(r.min <= r.median && r.median <= r.max, "{}", r.name);
        assert!(r.ratio_to_fastest >= 1.0, "{}", r.name);
        #[cfg(target_os = "linux")]
        assert!(r.cpu.is_some(), "{}", r.name);
    }
    // Overheads only against a baseline of the same parallelism.
    let against = |name: &str| comparison.result(name).unwrap().compared_with.clone();
    assert_eq!(against("inline").as_deref(), Some("loop"));
    assert_eq!(against("pool(2)").as_deref(), Some("rayon"));
    assert_eq!(
        against("custom(spawner)"),
        None,
        "a custom executor's threads are unknown"
    );
    assert_eq!(
        against("as configured"),
        against("global"),
        "every task of the pipeline is on the global pool"
    );
    assert!(comparison.result("pool(2)").unwrap().ratio_to_baseline.is_some());
    // Every run of every contender, in the order the rounds ran them.
    let mut starts: Vec<_> = comparison
        .results
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| s.start))
        .collect();
    let count = starts.len();
    starts.sort_unstable();
    starts.dedup();
    assert_eq!(starts.len(), count, "each sample is its own run");
    let fastest = comparison.fastest().unwrap();
    assert_eq!(fastest.ratio_to_fastest, 1.0);

    assert_eq!(progress.started.load(Ordering::Relaxed), 32);
    let runs = progress.runs.lock().unwrap();
    assert_eq!(runs.len(), 32);
    assert_eq!(*runs.last().unwrap(), (32, 32));
    assert_eq!(progress.finished.load(Ordering::Relaxed), 1);

    let json: serde_json::Value = serde_json::from_str(&comparison.to_json()).unwrap();
    assert_eq!(json["benchmark"], "fan-out 6");
    let rows = json["results"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0]["samples"].as_array().unwrap().len(), 3);
    assert!(rows.iter().all(|r| r["median_ns"].as_u64().is_some()));
    assert_eq!(rows[1]["config"]["pool"]["threads"], 2);
    // The contender is named by the same field as the CSV column.
    assert_eq!(rows[0]["strategy"], "inline");
    assert_eq!(rows[1]["strategy"], "pool(2)");
    let back: Comparison = serde_json::from_str(&comparison.to_json()).unwrap();
    assert_eq!(back, comparison);

    let csv = comparison.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], Comparison::CSV_HEADER);
    assert_eq!(lines.len(), 9);
    let columns = Comparison::CSV_HEADER.split(',').count();
    for (line, name) in lines[1..].iter().zip(names) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), columns, "{line}");
        assert_eq!(fields[1], name);
    }

    let table = comparison.to_string();
    for name in [
        "inline",
        "pool(2)",
        "global",
        "thread-per-task",
        "custom(spawner)",
        "as configured",
        "rayon*",
        "loop*",
    ] {
        assert!(table.contains(name), "{name} missing from\n{table}");
    }
}

#[test]
fn the_timeline_has_one_bar_per_task() {
    let executor = PipelineExecutor::builder().build().unwrap();
    for config in [
        ExecutorConfig::Inline,
        ExecutorConfig::pool(2),
        ExecutorConfig::ThreadPerTask,
    ] {
        let pipeline = fan_out(5).with_executor(config.clone());
        let run = executor.execute(&pipeline, 2).unwrap();
        let timeline = Timeline::from_run(&run);
        assert_eq!(timeline.bars().len(), 7, "{config}");
        let svg = timeline.to_svg();
        assert!(svg.starts_with("<svg"), "{config}");
        assert!(svg.trim_end().ends_with("</svg>"), "{config}");
        assert_eq!(svg.matches(r#"class="task""#).count(), 7, "{config}");
        assert_eq!(svg.matches("<title>").count(), svg.matches("</title>").count());
        assert_eq!(timeline.steps().len(), 3, "{config}");
        if config == ExecutorConfig::Inline {
            assert_eq!(
                timeline.busy().len(),
                1,
                "inline runs on the caller's thread only"
            );
        }
    }
}

/// A run with several steps, a pool, a retry and a failure, as a Chrome
/// trace: it parses, every task is one slice, every slice has the fields a
/// viewer needs, and every track is named.
#[test]
fn a_run_exports_a_chrome_trace_with_every_task_once() {
    use conveyor::bench::ChromeTrace;
    use conveyor::{RetryPolicy, TaskError};

    let executor = PipelineExecutor::builder()
        .executor("cpu", ExecutorConfig::pool(2))
        .build()
        .unwrap();
    let retry = RetryPolicy::builder()
        .max_attempts(2)
        .backoff(0.0, 1.0, 0.0)
        .build()
        .unwrap();
    let pipeline = Pipeline::builder("traced")
        .step([Task::from_fn("source", |c| Ok(*c.input()))])
        .step(
            (0..20)
                .map(|i| {
                    Task::from_fn(format!("w{i}"), move |c| Ok(c.previous().first().unwrap() + i)).on("cpu")
                })
                .chain([Task::from_fn("flaky", |c| {
                    if c.attempt() == 1 {
                        Err(TaskError::msg("once"))
                    } else {
                        Ok(0)
                    }
                })
                .retry(retry)])
                .collect::<Vec<_>>(),
        )
        .step([Task::from_fn("sink", |c| Ok(c.previous().values().sum()))])
        .build()
        .unwrap();
    let run = executor.execute(&pipeline, 1).unwrap();
    assert!(run.is_success());

    let mut trace = ChromeTrace::from_run(&run);
    let comparison = StrategyBenchmark::new("small", &fan_out(3), 1)
        .strategies([ExecutorConfig::Inline])
        .warmups(0)
        .runs(2)
        .run()
        .unwrap();
    trace.add_comparison(&comparison);
    let json: serde_json::Value = serde_json::from_str(&trace.to_json()).expect("the trace parses");
    let events = json["traceEvents"].as_array().expect("a traceEvents array");

    let mut tasks: Vec<&str> = events
        .iter()
        .filter(|e| e["cat"] == "task")
        .map(|e| e["args"]["task"].as_str().unwrap())
        .collect();
    tasks.sort_unstable();
    let mut expected: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    expected.extend(["flaky", "sink", "source"].map(String::from));
    expected.sort_unstable();
    assert_eq!(tasks, expected, "every task exactly once");

    for e in events.iter().filter(|e| e["ph"] == "X") {
        for field in ["name", "cat", "ts", "dur", "pid", "tid", "args"] {
            assert!(!e[field].is_null(), "{field} missing from {e}");
        }
        assert!(e["dur"].as_f64().unwrap() >= 0.0);
    }
    let named: std::collections::HashSet<(u64, u64)> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
        .collect();
    for e in events.iter().filter(|e| e["ph"] == "X" || e["ph"] == "i") {
        let track = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        assert!(named.contains(&track), "unnamed track for {e}");
    }
    // Threads are numbered from 1 within the run.
    let run_threads: Vec<u64> = events
        .iter()
        .filter(|e| e["cat"] == "task")
        .map(|e| e["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(run_threads.iter().min(), Some(&1));
    let retried: Vec<&serde_json::Value> = events.iter().filter(|e| e["cat"] == "retry").collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["args"]["task"], "flaky");
    assert_eq!(events.iter().filter(|e| e["cat"] == "step").count(), 3);
    assert_eq!(events.iter().filter(|e| e["cat"] == "run").count(), 2);
}
