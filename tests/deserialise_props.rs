//! Deserialisers and builders driven with arbitrary values: they give
//! errors or values, and using what they give never panics.

use std::time::Duration;

use conveyor::bench::Timeline;
use conveyor::checkpoint::Checkpoint;
use conveyor::report::RunReport;
use conveyor::{
    EvaluationStrategy, ExecutorConfig, Pipeline, PipelineExecutor, RetryPolicy, RunOptions, Step, Task,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn timelines_with_any_times_render_without_panicking(
        bars in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>(), 0u64..8), 0..12)
    ) {
        let bars: Vec<serde_json::Value> = bars
            .into_iter()
            .map(|(s, f, sn, fnn, thread)| serde_json::json!({
                "step": "s", "task": "t", "thread": thread,
                "started": {"secs": s, "nanos": sn % 1_000_000_000},
                "finished": {"secs": f, "nanos": fnn % 1_000_000_000},
                "attempts": 1, "succeeded": true,
            }))
            .collect();
        let json = serde_json::json!({"bars": bars}).to_string();
        let timeline = serde_json::from_str::<Timeline>(&json);
        prop_assert!(timeline.is_ok(), "{:?}", timeline.err());
        let timeline = timeline.unwrap();
        let _ = timeline.busy();
        let _ = timeline.span();
        let _ = timeline.to_svg();
    }

    #[test]
    fn checkpoints_of_arbitrary_bytes_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Checkpoint::<u64>::decode(&bytes, None);
        let mut framed = b"conveyor-checkpoint v1 len=".to_vec();
        framed.extend_from_slice(&bytes);
        let _ = Checkpoint::<u64>::decode(&framed, None);
    }

    #[test]
    fn reports_of_arbitrary_json_are_errors_not_panics(text in ".{0,200}") {
        let _ = serde_json::from_str::<RunReport>(&text);
    }

    #[test]
    fn builders_take_any_numbers(
        attempts in any::<u32>(),
        initial in any::<f64>(),
        factor in any::<f64>(),
        max in any::<f64>(),
        jitter in any::<f64>(),
        percent in any::<f64>(),
        threads in 0usize..3,
        timeout_ns in any::<u64>(),
    ) {
        let _ = RetryPolicy::builder()
            .max_attempts(attempts)
            .backoff(initial, factor, max)
            .jitter(jitter)
            .build();
        let _ = EvaluationStrategy::at_least_percent(percent);
        let _ = PipelineExecutor::<u8>::builder().default_executor(ExecutorConfig::pool(threads)).build();
        let p = Pipeline::<u8>::builder("p")
            .step(Step::new("s", [Task::from_fn("t", |_| Ok(1))]).timeout(Duration::from_nanos(timeout_ns)))
            .build()
            .unwrap();
        let executor = PipelineExecutor::<u8>::builder().default_executor(ExecutorConfig::Inline).build().unwrap();
        let options = RunOptions::new().timeout(Duration::new(timeout_ns, 0));
        prop_assert!(executor.execute_with(&p, 0, &options).is_ok());
    }
}
