//! Benchmarking executor strategies on a pipeline of your own.
//!
//! [`StrategyBenchmark`] runs one pipeline under several
//! [`ExecutorConfig`](crate::ExecutorConfig)s, rounds interleaved, and gives
//! a [`Comparison`]; a [`Timeline`] draws which task ran on which thread,
//! and a [`ChromeTrace`] exports runs and benchmarks for Perfetto and
//! `chrome://tracing`.

mod benchmark;
mod chrome;
mod comparison;
mod timeline;

pub use benchmark::{BenchmarkEvent, BenchmarkObserver, StrategyBenchmark};
pub use chrome::ChromeTrace;
pub use comparison::{Comparison, Sample, StrategyResult};
pub use timeline::{Bar, StepBand, Timeline};
