//! The engine: how one step runs. The plan groups a step's tasks by
//! executor config onto cached pools, the coordinator dispatches every group
//! at once, the processor gathers the outcomes, and the state manager holds
//! the live state of each context. Signals tell observers what happens.

pub(crate) mod attempt;
pub(crate) mod coordinator;
pub(crate) mod group;
pub(crate) mod ledger;
pub(crate) mod outcome;
pub(crate) mod plan;
pub(crate) mod pools;
pub(crate) mod processor;
pub(crate) mod registry;
pub(crate) mod remote;
pub(crate) mod signal;
pub(crate) mod state_manager;
pub(crate) mod step_run;
pub(crate) mod trace;
pub(crate) mod unwind;
