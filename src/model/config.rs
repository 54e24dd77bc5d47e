//! Executor strategies, named as plain data.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which executor strategy runs a group of tasks.
///
/// Tasks of one step are grouped by their whole config (the original engine
/// kept only the first task's size for a group, which was a bug), and every
/// group of a step runs at the same time. Configs are `Hash + Eq`, so the
/// executor's [`Pools`](crate::Pools) build each pool once and reuse it.
/// A config identifies a pool: `pool(4)` given directly is one shared,
/// unnamed pool of 4 threads; each name registered with a pool config is a
/// pool of its own, reached as [`ExecutorConfig::Named`].
///
/// ```
/// use conveyor::ExecutorConfig;
/// assert_eq!(ExecutorConfig::pool(4), ExecutorConfig::Pool { threads: 4 });
/// assert_eq!(ExecutorConfig::pool(4).to_string(), "pool(4)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExecutorConfig {
    /// On the caller's thread, one task after another. No pool round trip,
    /// which makes it the cheapest strategy for tiny steps.
    Inline,
    /// A rayon pool of `threads` threads. Registered under a name, it is a
    /// pool of that name's own; given directly to a task, it is the one
    /// unnamed pool of that size in the executor's
    /// [`Pools`](crate::Pools), built on first use. Pools shut down when
    /// the last executor and [`Pools`](crate::Pools) handle using them are
    /// dropped. Zero threads is refused with
    /// [`BuildError::ZeroThreads`](crate::BuildError::ZeroThreads).
    Pool {
        /// Number of worker threads.
        threads: usize,
    },
    /// The pool rayon's free functions use: rayon's global pool, or, when
    /// `execute` is called from inside a rayon worker thread, that worker's
    /// pool — exactly where a `par_iter` at the same place would run.
    Global,
    /// One new OS thread per task. A baseline for comparing strategies, not a
    /// production choice: thread start-up dominates small tasks.
    ThreadPerTask,
    /// A [`CustomExecutor`](crate::CustomExecutor) registered under this
    /// name.
    Custom {
        /// The registered name.
        name: String,
    },
    /// The pool registered under this name: a pool of its own, built for
    /// that name, or a rayon pool the user registered
    /// ([`PoolsBuilder::rayon_pool`](crate::PoolsBuilder::rayon_pool)).
    /// Registering a second name as `Named` makes the two names share one
    /// pool.
    Named {
        /// The registered name.
        name: String,
    },
}

impl ExecutorConfig {
    /// A dedicated rayon pool of `threads` threads.
    #[must_use]
    pub const fn pool(threads: usize) -> Self {
        Self::Pool { threads }
    }

    /// A custom executor registered under `name`.
    #[must_use]
    pub fn custom(name: impl Into<String>) -> Self {
        Self::Custom { name: name.into() }
    }

    /// The pool registered under `name`.
    #[must_use]
    pub fn named(name: impl Into<String>) -> Self {
        Self::Named { name: name.into() }
    }
}

impl Default for ExecutorConfig {
    /// [`ExecutorConfig::Global`].
    fn default() -> Self {
        Self::Global
    }
}

impl fmt::Display for ExecutorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline => f.write_str("inline"),
            Self::Pool { threads } => write!(f, "pool({threads})"),
            Self::Global => f.write_str("global"),
            Self::ThreadPerTask => f.write_str("thread-per-task"),
            Self::Custom { name } => write!(f, "custom({name})"),
            Self::Named { name } => write!(f, "named({name})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExecutorConfig;
    use std::collections::HashSet;

    #[test]
    fn configs_group_by_whole_value() {
        let set: HashSet<_> = [
            ExecutorConfig::pool(2),
            ExecutorConfig::pool(2),
            ExecutorConfig::pool(4),
            ExecutorConfig::Inline,
            ExecutorConfig::custom("gpu"),
        ]
        .into_iter()
        .collect();
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn serde_round_trip() {
        for c in [
            ExecutorConfig::Inline,
            ExecutorConfig::pool(3),
            ExecutorConfig::Global,
            ExecutorConfig::ThreadPerTask,
            ExecutorConfig::custom("x"),
        ] {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<ExecutorConfig>(&json).unwrap(), c);
        }
    }
}
