//! The facade: the blocking `execute`, its options, and the run it returns.

pub(crate) mod carry;
pub(crate) mod executor;
pub(crate) mod options;
pub(crate) mod run;
