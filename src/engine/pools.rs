//! The pools executors run on: one cloneable handle that several executors,
//! of any value types, can share.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use rayon::ThreadPool;

use super::registry::{CustomExecutor, Entry, ExecutorRegistry};
use crate::error::{BuildError, ExecutorSite};
use crate::model::config::ExecutorConfig;

/// The thread pools and custom executors that tasks run on, by name.
///
/// A cheap, cloneable handle: give the same `Pools` to several
/// [`PipelineExecutor`](crate::PipelineExecutor)s, of different value types,
/// and they share its threads. Each name registered with a pool config is a
/// pool of its own; `pool(n)` given directly to a task is one unnamed pool
/// per size, built on first use. Pools shut down when the last handle and
/// the last executor using them are dropped (rayon lets running jobs finish,
/// then the threads exit).
///
/// ```
/// use std::sync::Arc;
/// use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Pools};
/// let mine = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(2).build()?);
/// let pools = Pools::builder()
///     .executor("cpu", ExecutorConfig::pool(2))
///     .executor("io", ExecutorConfig::pool(2)) // a second pool, not the same one
///     .rayon_pool("mine", mine)
///     .build()?;
/// let words = PipelineExecutor::<String>::builder().pools(pools.clone()).build()?;
/// let numbers = PipelineExecutor::<u64>::builder().pools(pools.clone()).build()?;
/// let p = Pipeline::<u64>::builder("double")
///     .step_with(|s| s.task("x2", |c| Ok(c.input() * 2)).on("mine"))
///     .build()?;
/// assert_eq!(numbers.execute(&p, 21)?.output()?.get("x2"), Some(&42));
/// assert_eq!(pools.pool_count(), 3);
/// # drop(words);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Pools {
    inner: Arc<PoolSet>,
}

struct PoolSet {
    registry: ExecutorRegistry,
    /// The pools of registered names.
    named: HashMap<Arc<str>, Arc<ThreadPool>>,
    /// Unnamed pools, by size, built on first use.
    sized: RwLock<HashMap<usize, Arc<ThreadPool>>>,
}

/// Builds [`Pools`]; see [`Pools::builder`].
#[derive(Default)]
pub struct PoolsBuilder {
    registry: ExecutorRegistry,
    error: Option<BuildError>,
}

impl PoolsBuilder {
    /// Registers `config` under `name`, for tasks that say `.on(name)`.
    ///
    /// - [`ExecutorConfig::Pool`]: a pool of its own for this name, built by
    ///   [`build`](Self::build); two names of the same size are two pools.
    /// - [`ExecutorConfig::Named`]: this name shares the pool (or executor)
    ///   registered under the other name.
    /// - Any other config: a name for it.
    ///
    /// Default: no names. A bad name or config is reported by `build`.
    #[must_use]
    pub fn executor(mut self, name: &str, config: ExecutorConfig) -> Self {
        if self.error.is_none() {
            self.error = self.registry.register(name, config).err();
        }
        self
    }

    /// Registers a rayon pool the caller built, under `name`. conveyor only
    /// installs work in it; the caller keeps it alive as long as it likes.
    ///
    /// Default: none. A bad name is reported by `build`.
    #[must_use]
    pub fn rayon_pool(mut self, name: &str, pool: Arc<ThreadPool>) -> Self {
        if self.error.is_none() {
            self.error = self.registry.register_rayon(name, pool).err();
        }
        self
    }

    /// Registers a custom executor under `name`.
    ///
    /// Default: none. A bad name is reported by `build`.
    #[must_use]
    pub fn custom_executor(mut self, name: &str, executor: impl CustomExecutor + 'static) -> Self {
        if self.error.is_none() {
            self.error = self.registry.register_custom(name, Arc::new(executor)).err();
        }
        self
    }

    /// Builds every named pool.
    ///
    /// # Errors
    /// The first bad registration: [`BuildError::EmptyExecutorName`],
    /// [`BuildError::InvalidName`], [`BuildError::DuplicateExecutor`],
    /// [`BuildError::ZeroThreads`], [`BuildError::UnknownExecutor`] for a
    /// name that shares one not registered yet; and
    /// [`BuildError::PoolBuild`] when rayon cannot start a pool.
    pub fn build(self) -> Result<Pools, BuildError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut named = HashMap::new();
        for (name, entry) in self.registry.entries() {
            let pool = match entry {
                Entry::Pool(threads) => build_pool(*threads, name, ExecutorSite::Named(Arc::clone(name)))?,
                Entry::Rayon(pool) => Arc::clone(pool),
                Entry::Alias(_) | Entry::Custom(_) => continue,
            };
            named.insert(Arc::clone(name), pool);
        }
        Ok(Pools {
            inner: Arc::new(PoolSet {
                registry: self.registry,
                named,
                sized: RwLock::new(HashMap::new()),
            }),
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.error.is_none() && self.registry.names().is_empty()
    }
}

impl fmt::Debug for PoolsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolsBuilder")
            .field("registry", &self.registry)
            .field("error", &self.error)
            .finish()
    }
}

fn build_pool(threads: usize, label: &str, site: ExecutorSite) -> Result<Arc<ThreadPool>, BuildError> {
    let label = label.to_owned();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("conveyor-{label}-{i}"))
        // Every piece of user code is run under `catch_unwind`, so nothing
        // should unwind out of a job; if something does, logging it keeps
        // the process alive where rayon's default would abort it.
        .panic_handler(|payload| {
            log::error!(
                "a conveyor pool job panicked outside the engine's guards: {}",
                super::unwind::settle(payload)
            );
        })
        .build()
        .map(Arc::new)
        .map_err(|e| BuildError::PoolBuild {
            executor: site,
            threads,
            cause: crate::error::Cause::new(e),
        })
}

impl Pools {
    /// Starts registering pools.
    #[must_use]
    pub fn builder() -> PoolsBuilder {
        PoolsBuilder::default()
    }

    /// Pools with no names: tasks run on the configs they give, and on
    /// unnamed pools built on first use.
    #[must_use]
    pub fn unnamed() -> Self {
        Self {
            inner: Arc::new(PoolSet {
                registry: ExecutorRegistry::new(),
                named: HashMap::new(),
                sized: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Registered names, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.inner.registry.names()
    }

    /// Number of distinct pools built so far: named, and unnamed by size.
    #[must_use]
    pub fn pool_count(&self) -> usize {
        let mut seen: Vec<*const ThreadPool> = self.inner.named.values().map(Arc::as_ptr).collect();
        seen.extend(self.inner.sized.read().values().map(Arc::as_ptr));
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    /// How many threads `config` runs its tasks on, when it is a pool that
    /// exists or can be built; `None` for the others (inline is 1, the
    /// global pool has rayon's count).
    #[must_use]
    pub fn threads(&self, config: &ExecutorConfig) -> Option<usize> {
        match config {
            ExecutorConfig::Inline => Some(1),
            ExecutorConfig::Pool { threads } => Some(*threads),
            ExecutorConfig::Global => Some(rayon::current_num_threads()),
            ExecutorConfig::Named { name } => self.inner.named.get(&**name).map(|p| p.current_num_threads()),
            _ => None,
        }
    }

    pub(crate) fn registry(&self) -> &ExecutorRegistry {
        &self.inner.registry
    }

    /// The pool for `config`, building an unnamed pool the first time a
    /// size is asked for.
    pub(crate) fn pool(
        &self,
        config: &ExecutorConfig,
        site: impl FnOnce() -> ExecutorSite,
    ) -> Result<Arc<ThreadPool>, BuildError> {
        match config {
            ExecutorConfig::Named { name } => {
                self.inner
                    .named
                    .get(&**name)
                    .cloned()
                    .ok_or_else(|| BuildError::UnknownExecutor {
                        name: name.as_str().into(),
                        task: None,
                        step: None,
                    })
            }
            ExecutorConfig::Pool { threads } => {
                if let Some(pool) = self.inner.sized.read().get(threads) {
                    return Ok(Arc::clone(pool));
                }
                let mut sized = self.inner.sized.write();
                // Another thread may have built it between the two locks.
                if let Some(pool) = sized.get(threads) {
                    return Ok(Arc::clone(pool));
                }
                if *threads == 0 {
                    return Err(BuildError::ZeroThreads { executor: site() });
                }
                let pool = build_pool(*threads, &format!("pool{threads}"), site())?;
                sized.insert(*threads, Arc::clone(&pool));
                Ok(pool)
            }
            _ => Err(BuildError::UnknownExecutor {
                name: config.to_string().into(),
                task: None,
                step: None,
            }),
        }
    }
}

impl Default for Pools {
    fn default() -> Self {
        Self::unnamed()
    }
}

impl fmt::Debug for Pools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pools")
            .field("registry", &self.inner.registry)
            .field("sized", &self.inner.sized.read().keys().collect::<Vec<_>>())
            .finish()
    }
}
