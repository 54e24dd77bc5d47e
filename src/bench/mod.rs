//! Benchmarking executor strategies on a pipeline of your own.
//!
//! [`StrategyBenchmark`] runs one pipeline under several
//! [`ExecutorConfig`](crate::ExecutorConfig)s, rounds interleaved, and gives
//! a [`Comparison`]; a [`Timeline`] draws which task ran on which thread.

mod benchmark;
mod comparison;
mod timeline;

pub use benchmark::{BenchmarkEvent, BenchmarkObserver, StrategyBenchmark};
pub use comparison::{Comparison, StrategyResult};
pub use timeline::{Bar, Timeline};
