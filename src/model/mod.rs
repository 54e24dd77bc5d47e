//! The model: what a user declares. Pipelines of steps, their tasks, the
//! flow between steps, retry policies, evaluation strategies and executor
//! configs. Plain data checked when built; nothing here runs anything.

pub(crate) mod cancel;
pub(crate) mod config;
mod describe;
pub(crate) mod flow;
pub(crate) mod pipeline;
pub(crate) mod retry;
pub(crate) mod step;
pub(crate) mod strategy;
pub(crate) mod task;
mod task_list;
