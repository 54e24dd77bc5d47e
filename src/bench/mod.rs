//! Benchmarking executor strategies on a pipeline of your own.

pub(crate) mod benchmark;
pub(crate) mod comparison;
pub(crate) mod timeline;
