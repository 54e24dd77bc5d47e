//! The records: what a run leaves behind. Statuses, immutable states,
//! metrics, contexts, the chain that links them, result sets and reports.

pub(crate) mod chain;
pub(crate) mod context;
pub(crate) mod metrics;
pub(crate) mod report;
pub(crate) mod results;
pub(crate) mod state;
