//! The `tracing` feature: spans for runs, steps and task attempts that nest
//! across pool threads, and events for retries, cancels and deadlines.
//!
//! Run with `cargo test --features tracing --test tracing`. A subscriber
//! made of tracing-subscriber's registry and a recording layer is installed
//! as the global default once, because pool threads do not see a
//! thread-local one. Tests run side by side in one process, so each gives
//! its pipeline a name of its own and looks only at the spans under its run.
#![cfg(feature = "tracing")]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use conveyor::{
    CancelToken, ExecutorConfig, Flow, Pipeline, PipelineExecutor, RetryPolicy, RunError, RunOptions, Step,
    Task, TaskError,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the layer saw it. Keys are the order spans were made in: the
/// registry reuses ids once spans close, so ids cannot name spans for long.
#[derive(Debug, Clone)]
struct SpanRecord {
    name: &'static str,
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
    thread: ThreadId,
    closed: bool,
}

#[derive(Debug, Clone)]
struct EventRecord {
    message: String,
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Store {
    spans: Vec<SpanRecord>,
    events: Vec<EventRecord>,
    live: HashMap<u64, usize>,
}

fn store() -> MutexGuard<'static, Store> {
    static STORE: OnceLock<Mutex<Store>> = OnceLock::new();
    STORE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

struct Recorder;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // The registry resolves explicit and contextual parents alike.
        let parent = ctx.span(id).and_then(|s| s.parent()).map(|p| p.id().into_u64());
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut store = store();
        let parent = parent.and_then(|p| store.live.get(&p).copied());
        let key = store.spans.len();
        store.spans.push(SpanRecord {
            name: attrs.metadata().name(),
            parent,
            fields,
            thread: std::thread::current().id(),
            closed: false,
        });
        store.live.insert(id.into_u64(), key);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut store = store();
        if let Some(&key) = store.live.get(&id.into_u64()) {
            values.record(&mut Fields(&mut store.spans[key].fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let parent = ctx.event_span(event).map(|s| s.id().into_u64());
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let mut store = store();
        let parent = parent.and_then(|p| store.live.get(&p).copied());
        store.events.push(EventRecord {
            message,
            parent,
            fields,
        });
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let mut store = store();
        if let Some(key) = store.live.remove(&id.into_u64()) {
            store.spans[key].closed = true;
        }
    }
}

fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Recorder))
            .expect("no other global subscriber in this test binary");
    });
}

/// The spans and events under the one run of `pipeline`.
struct Seen {
    spans: Vec<(usize, SpanRecord)>,
    events: Vec<EventRecord>,
    run: usize,
}

impl Seen {
    fn of(pipeline: &str) -> Self {
        let store = store();
        let runs: Vec<usize> = (0..store.spans.len())
            .filter(|&k| store.spans[k].name == "run" && store.spans[k].fields["pipeline"] == pipeline)
            .collect();
        assert_eq!(runs.len(), 1, "one run span for {pipeline}");
        let run = runs[0];
        let under = |mut key: Option<usize>| {
            while let Some(k) = key {
                if k == run {
                    return true;
                }
                key = store.spans[k].parent;
            }
            false
        };
        Self {
            spans: (0..store.spans.len())
                .filter(|&k| under(Some(k)))
                .map(|k| (k, store.spans[k].clone()))
                .collect(),
            events: store.events.iter().filter(|e| under(e.parent)).cloned().collect(),
            run,
        }
    }

    fn named(&self, name: &str) -> Vec<&(usize, SpanRecord)> {
        self.spans.iter().filter(|(_, s)| s.name == name).collect()
    }

    fn span(&self, key: usize) -> &SpanRecord {
        &self
            .spans
            .iter()
            .find(|(k, _)| *k == key)
            .expect("a span of this run")
            .1
    }

    fn events(&self, message: &str) -> Vec<&EventRecord> {
        self.events.iter().filter(|e| e.message == message).collect()
    }
}

#[test]
fn task_spans_are_children_of_their_step_on_every_thread() {
    install();
    let executor = PipelineExecutor::builder()
        .executor("cpu", ExecutorConfig::pool(2))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder("nesting")
        .step(Step::new(
            "fan",
            (0..8).map(|i| Task::from_fn(format!("t{i}"), move |c| Ok(c.input() + i)).on("cpu")),
        ))
        .step(Step::new(
            "sum",
            [Task::from_fn("sum", |c| Ok(c.previous().values().sum::<u64>()))
                .executor(ExecutorConfig::Inline)],
        ))
        .build()
        .unwrap();
    let run = executor.execute(&pipeline, 1_u64).unwrap();
    assert!(run.is_success());

    let seen = Seen::of("nesting");
    let run_span = seen.span(seen.run);
    assert_eq!(run_span.fields["status"], "finished");
    assert!(run_span.closed);

    let steps = seen.named("step");
    assert_eq!(steps.len(), 2);
    for (_, step) in &steps {
        assert_eq!(step.parent, Some(seen.run), "a step is a child of its run");
        assert_eq!(step.fields["pipeline"], "nesting");
        assert_eq!(step.fields["status"], "finished");
    }
    let tasks = seen.named("task");
    assert_eq!(tasks.len(), 9, "one span per task attempt");
    let test_thread = std::thread::current().id();
    for (_, task) in &tasks {
        let parent = seen.span(task.parent.expect("a task span has a parent"));
        assert_eq!(parent.name, "step");
        assert_eq!(parent.fields["step"], task.fields["step"], "{task:?}");
        assert_eq!(task.fields["attempt"], "1");
        assert_eq!(task.fields["status"], "succeeded");
        assert!(task.closed);
        let on_pool = task.fields["step"] == "fan";
        assert_eq!(task.fields["executor"], if on_pool { "cpu" } else { "inline" });
        if on_pool {
            // The pool's threads never entered the step's span: the parent
            // came with the step run's shared data.
            assert_ne!(task.thread, test_thread, "{task:?}");
        }
    }
    let mut names: Vec<&str> = tasks.iter().map(|(_, t)| t.fields["task"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["sum", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]);
}

#[test]
fn retries_are_events_in_the_attempt_that_failed() {
    install();
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .backoff(0.0, 1.0, 0.0)
        .build()
        .unwrap();
    let pipeline = Pipeline::builder("retries")
        .step([
            Task::from_fn("flaky", |c| {
                if c.attempt() < 3 {
                    Err(TaskError::msg("not yet"))
                } else {
                    Ok(1_u8)
                }
            })
            .executor(ExecutorConfig::pool(1))
            .retry(policy.clone()),
            Task::from_fn("broken", |_| Err(TaskError::msg("never"))).retry(policy),
        ])
        .build()
        .unwrap();
    let run = PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute(&pipeline, 0)
        .unwrap();
    assert!(!run.is_success());

    let seen = Seen::of("retries");
    let attempts = |task: &str| {
        let mut a: Vec<(String, String)> = seen
            .named("task")
            .iter()
            .filter(|(_, s)| s.fields["task"] == task)
            .map(|(_, s)| (s.fields["attempt"].clone(), s.fields["status"].clone()))
            .collect();
        a.sort();
        a
    };
    let (ok, failed) = ("succeeded".to_owned(), "task_failed".to_owned());
    assert_eq!(
        attempts("flaky"),
        [
            ("1".into(), failed.clone()),
            ("2".into(), failed.clone()),
            ("3".into(), ok)
        ]
    );
    assert_eq!(
        attempts("broken"),
        [
            ("1".into(), failed.clone()),
            ("2".into(), failed.clone()),
            ("3".into(), failed)
        ]
    );
    let retrying = seen.events("retrying");
    assert_eq!(retrying.len(), 4, "two retries of each task");
    for event in &retrying {
        let span = seen.span(event.parent.expect("in a span"));
        assert_eq!(span.name, "task");
        assert_eq!(span.fields["attempt"], event.fields["attempt"]);
        assert_eq!(event.fields["max_attempts"], "3");
        assert!(
            event.fields["error"].contains(span.fields["task"].as_str()),
            "{event:?}"
        );
    }
    let exhausted = seen.events("retries exhausted");
    assert_eq!(exhausted.len(), 1);
    assert_eq!(seen.span(exhausted[0].parent.unwrap()).fields["task"], "broken");
    assert_eq!(seen.span(seen.run).fields["status"], "aborted");
}

#[test]
fn cancels_and_deadlines_are_events() {
    install();
    let executor = PipelineExecutor::<u8>::builder().build().unwrap();

    // A task stops the run: its step ends cancelled, and so does the run.
    let stop = Pipeline::builder("stopping")
        .step([Task::flow_fn("stop", |_| Ok(Flow::Stop(1)))])
        .step([Task::from_fn("never", |_| Ok(2))])
        .build()
        .unwrap();
    let run = executor.execute(&stop, 0).unwrap();
    assert_eq!(run.status(), conveyor::ExecutionStatus::Cancelled);
    let seen = Seen::of("stopping");
    assert_eq!(seen.events("step cancelled").len(), 1);
    assert_eq!(seen.events("run cancelled").len(), 1);
    assert_eq!(seen.named("step").len(), 1, "the second step never ran");

    // A token cancelled before the run: no step runs.
    let token = CancelToken::new();
    token.cancel();
    let run = executor
        .execute_with(
            &Pipeline::builder("cancelled")
                .step([Task::from_fn("a", |_| Ok(1))])
                .build()
                .unwrap(),
            0,
            &RunOptions::default().cancel_token(token),
        )
        .unwrap();
    assert_eq!(run.status(), conveyor::ExecutionStatus::Cancelled);
    let seen = Seen::of("cancelled");
    assert_eq!(seen.events("run cancelled").len(), 1);
    assert_eq!(seen.span(seen.run).fields["status"], "cancelled");

    // A step's deadline passes while its task waits (at most 10 s, so the
    // test cannot hang if the deadline were missed).
    let (release, wait) = crossbeam_channel::bounded::<()>(0);
    let slow = Pipeline::builder("late")
        .step(
            Step::new(
                "slow",
                [Task::from_fn("slow", move |_| {
                    let _ = wait.recv_timeout(Duration::from_secs(10));
                    Ok(1)
                })
                .executor(ExecutorConfig::pool(1))],
            )
            .timeout(Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    let run = executor.execute(&slow, 0).unwrap();
    drop(release);
    assert!(
        matches!(run.failure(), Some(RunError::Timeout { .. })),
        "{:?}",
        run.failure()
    );
    let seen = Seen::of("late");
    let step_events = seen.events("step deadline passed");
    assert_eq!(step_events.len(), 1);
    assert_eq!(seen.span(step_events[0].parent.unwrap()).name, "step");
    assert_eq!(seen.events("run deadline passed").len(), 1);
}

/// A subscriber is user code too: one that panics on every span and event
/// loses them, and the run goes on and returns.
#[test]
fn a_panicking_subscriber_does_not_reach_the_caller() {
    struct Panics;
    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Panics {
        fn on_new_span(&self, _: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            panic!("layer bug in on_new_span");
        }
        fn on_record(&self, _: &Id, _: &Record<'_>, _: Context<'_, S>) {
            panic!("layer bug in on_record");
        }
        fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
            panic!("layer bug in on_event");
        }
        fn on_enter(&self, _: &Id, _: Context<'_, S>) {
            panic!("layer bug in on_enter");
        }
        fn on_exit(&self, _: &Id, _: Context<'_, S>) {
            panic!("layer bug in on_exit");
        }
    }
    install();
    let policy = RetryPolicy::builder()
        .max_attempts(2)
        .backoff(0.0, 1.0, 0.0)
        .build()
        .unwrap();
    // Inline, so every span is made on this thread, where the panicking
    // subscriber is the default.
    let pipeline = Pipeline::builder("panicking subscriber")
        .step([Task::from_fn("flaky", |c| {
            if c.attempt() == 1 {
                Err(TaskError::msg("once"))
            } else {
                Ok(1_u8)
            }
        })
        .executor(ExecutorConfig::Inline)
        .retry(policy)])
        .build()
        .unwrap();
    let executor = PipelineExecutor::builder().build().unwrap();
    let subscriber = tracing_subscriber::registry().with(Panics);
    let run = tracing::subscriber::with_default(subscriber, || executor.execute(&pipeline, 0)).unwrap();
    assert!(run.is_success());
    assert_eq!(run.output().unwrap().get("flaky"), Some(&1));
}
