//! Executors by name: aliases for configs, and users' own executors.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rayon::ThreadPool;

use crate::error::{BuildError, ExecutorSite, NameKind};
use crate::model::config::ExecutorConfig;

/// One task, packaged for a [`CustomExecutor`].
///
/// Run it exactly once with [`Job::run`], on any thread. An executor that
/// drops a job without running it does not lose the task: the step records a
/// [`TaskFailure::Dispatch`](crate::TaskFailure::Dispatch) for it instead of waiting forever.
pub struct Job {
    work: Option<Box<dyn FnOnce(bool) + Send>>,
}

impl Job {
    pub(crate) fn new(work: impl FnOnce(bool) + Send + 'static) -> Self {
        Self {
            work: Some(Box::new(work)),
        }
    }

    /// Runs the task and reports its outcome to the waiting step.
    pub fn run(mut self) {
        if let Some(work) = self.work.take() {
            work(true);
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            work(false);
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("pending", &self.work.is_some())
            .finish()
    }
}

/// An executor of the user's own, registered by name.
///
/// `spawn` must not block until the job has run: the engine dispatches every
/// group of a step before it waits for any of them. An executor that keeps a
/// job forever, neither running nor dropping it, makes its step wait
/// forever too, unless the step or run has a deadline
/// ([`Step::timeout`](crate::Step::timeout)).
///
/// ```
/// use conveyor::{CustomExecutor, Job};
/// /// Runs every job on a fresh thread with a big stack.
/// struct BigStacks;
/// impl CustomExecutor for BigStacks {
///     fn spawn(&self, job: Job) {
///         std::thread::Builder::new()
///             .stack_size(64 << 20)
///             .spawn(move || job.run())
///             .expect("thread spawn");
///     }
/// }
/// ```
pub trait CustomExecutor: Send + Sync {
    /// Starts `job` somewhere; dropping it reports the task as not run.
    fn spawn(&self, job: Job);
}

impl<E: CustomExecutor + ?Sized> CustomExecutor for Box<E> {
    fn spawn(&self, job: Job) {
        (**self).spawn(job);
    }
}

impl<E: CustomExecutor + ?Sized> CustomExecutor for Arc<E> {
    fn spawn(&self, job: Job) {
        (**self).spawn(job);
    }
}

/// What a name is registered as.
#[derive(Clone)]
pub(crate) enum Entry {
    /// Another name for a config with nothing to isolate: inline, the
    /// global pool, a thread per task, or a custom executor.
    Alias(ExecutorConfig),
    /// A pool of its own, built by the factory.
    Pool(usize),
    /// A pool the user built.
    Rayon(Arc<ThreadPool>),
    /// A custom executor.
    Custom(Arc<dyn CustomExecutor>),
}

/// Executors by name: pools of their own (`"cpu"` → a pool of 4 threads),
/// the user's own rayon pools, names for other configs, and custom
/// executors. Names are checked when registered.
///
/// Every name registered with [`ExecutorConfig::Pool`] gets a pool of its
/// own, so `"io"` and `"cpu"` stay apart even at the same size; a name
/// registered as [`ExecutorConfig::Named`] shares the pool of the name it
/// gives.
#[derive(Clone, Default)]
pub(crate) struct ExecutorRegistry {
    entries: HashMap<Arc<str>, Entry>,
}

impl ExecutorRegistry {
    /// An empty registry.
    #[must_use]
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Registers `config` under `name`.
    pub(crate) fn register(&mut self, name: &str, config: ExecutorConfig) -> Result<(), BuildError> {
        self.check_name(name)?;
        let entry = match config {
            ExecutorConfig::Pool { threads: 0 } => {
                return Err(BuildError::ZeroThreads {
                    executor: ExecutorSite::Named(name.into()),
                });
            }
            ExecutorConfig::Pool { threads } => Entry::Pool(threads),
            // Sharing: the same entry under a second name, so both names
            // resolve to one config and their tasks form one group.
            ExecutorConfig::Named { name: other } => match self.entries.get(&*other) {
                Some(Entry::Pool(_) | Entry::Rayon(_)) => Entry::Alias(ExecutorConfig::Named { name: other }),
                Some(Entry::Alias(config)) => Entry::Alias(config.clone()),
                Some(Entry::Custom(_)) => Entry::Alias(ExecutorConfig::Custom { name: other }),
                None => return Err(unknown(&other)),
            },
            ExecutorConfig::Custom { name: custom } if self.custom(&custom).is_none() => {
                return Err(unknown(&custom));
            }
            config => Entry::Alias(config),
        };
        self.entries.insert(name.into(), entry);
        Ok(())
    }

    /// Registers a pool the user built.
    pub(crate) fn register_rayon(&mut self, name: &str, pool: Arc<ThreadPool>) -> Result<(), BuildError> {
        self.check_name(name)?;
        self.entries.insert(name.into(), Entry::Rayon(pool));
        Ok(())
    }

    /// Registers a custom executor.
    pub(crate) fn register_custom(
        &mut self,
        name: &str,
        executor: Arc<dyn CustomExecutor>,
    ) -> Result<(), BuildError> {
        self.check_name(name)?;
        self.entries.insert(name.into(), Entry::Custom(executor));
        Ok(())
    }

    /// The config a task that says `.on(name)` runs on.
    pub(crate) fn resolve(&self, name: &str) -> Result<ExecutorConfig, BuildError> {
        match self.entries.get(name) {
            Some(Entry::Alias(config)) => Ok(config.clone()),
            Some(Entry::Pool(_) | Entry::Rayon(_)) => Ok(ExecutorConfig::named(name)),
            Some(Entry::Custom(_)) => Ok(ExecutorConfig::custom(name)),
            None => Err(unknown(name)),
        }
    }

    /// Checks that `config`, given directly, can be built from this
    /// registry.
    pub(crate) fn check_config(
        &self,
        site: impl FnOnce() -> ExecutorSite,
        config: &ExecutorConfig,
    ) -> Result<(), BuildError> {
        // The site is built only for an error: building it allocates, and
        // every step's plan checks its configs.
        match config {
            ExecutorConfig::Pool { threads: 0 } => Err(BuildError::ZeroThreads { executor: site() }),
            ExecutorConfig::Custom { name } if self.custom(name).is_none() => Err(unknown(name)),
            ExecutorConfig::Named { name }
                if !matches!(self.entries.get(&**name), Some(Entry::Pool(_) | Entry::Rayon(_))) =>
            {
                Err(unknown(name))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn custom(&self, name: &str) -> Option<&Arc<dyn CustomExecutor>> {
        match self.entries.get(name) {
            Some(Entry::Custom(executor)) => Some(executor),
            _ => None,
        }
    }

    /// The entries, sorted by name.
    pub(crate) fn entries(&self) -> Vec<(&Arc<str>, &Entry)> {
        let mut entries: Vec<_> = self.entries.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries
    }

    /// Registered names, sorted.
    #[must_use]
    pub(crate) fn names(&self) -> Vec<&str> {
        self.entries().into_iter().map(|(k, _)| &**k).collect()
    }

    fn check_name(&self, name: &str) -> Result<(), BuildError> {
        if name.is_empty() {
            Err(BuildError::EmptyExecutorName)
        } else if name.chars().any(char::is_control) {
            Err(BuildError::InvalidName {
                what: NameKind::Executor,
                name: name.to_owned(),
            })
        } else if self.entries.contains_key(name) {
            Err(BuildError::DuplicateExecutor { name: name.into() })
        } else {
            Ok(())
        }
    }
}

fn unknown(name: &str) -> BuildError {
    BuildError::UnknownExecutor {
        name: name.into(),
        task: None,
        step: None,
    }
}

impl fmt::Debug for ExecutorRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, entry) in self.entries() {
            match entry {
                Entry::Alias(config) => map.entry(name, config),
                Entry::Pool(threads) => map.entry(name, &format_args!("pool({threads})")),
                Entry::Rayon(pool) => map.entry(
                    name,
                    &format_args!("rayon pool of {} threads", pool.current_num_threads()),
                ),
                Entry::Custom(_) => map.entry(name, &"<custom executor>"),
            };
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Now;
    impl CustomExecutor for Now {
        fn spawn(&self, job: Job) {
            job.run();
        }
    }

    #[test]
    fn names_are_checked() {
        let mut r = ExecutorRegistry::new();
        assert!(matches!(
            r.register("", ExecutorConfig::Inline),
            Err(BuildError::EmptyExecutorName)
        ));
        assert!(matches!(
            r.register_custom("", Arc::new(Now)),
            Err(BuildError::EmptyExecutorName)
        ));
        assert!(matches!(
            r.register("none", ExecutorConfig::pool(0)),
            Err(BuildError::ZeroThreads { executor: ExecutorSite::Named(name) }) if &*name == "none"
        ));
        assert!(matches!(
            r.register("alias", ExecutorConfig::custom("later")),
            Err(BuildError::UnknownExecutor { .. })
        ));
        r.register_custom("later", Arc::new(Now)).unwrap();
        r.register("alias", ExecutorConfig::custom("later")).unwrap();
        assert!(matches!(
            r.register_custom("later", Arc::new(Now)),
            Err(BuildError::DuplicateExecutor { .. })
        ));
        assert_eq!(r.resolve("alias").unwrap(), ExecutorConfig::custom("later"));
        assert_eq!(r.resolve("later").unwrap(), ExecutorConfig::custom("later"));
        assert_eq!(r.names(), vec!["alias", "later"]);
    }

    #[test]
    fn a_dropped_job_reports_itself_once() {
        let ran = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (r, d) = (Arc::clone(&ran), Arc::clone(&dropped));
        let job = Job::new(move |did_run| {
            if did_run { &r } else { &d }.fetch_add(1, Ordering::Relaxed);
        });
        drop(job);
        let (r, d) = (Arc::clone(&ran), Arc::clone(&dropped));
        Job::new(move |did_run| {
            if did_run { &r } else { &d }.fetch_add(1, Ordering::Relaxed);
        })
        .run();
        assert_eq!(
            (ran.load(Ordering::Relaxed), dropped.load(Ordering::Relaxed)),
            (1, 1)
        );
    }

    #[test]
    fn custom_executor_is_object_safe() {
        let boxed: Box<dyn CustomExecutor> = Box::new(Now);
        let flag = Arc::new(AtomicUsize::new(0));
        let f = Arc::clone(&flag);
        boxed.spawn(Job::new(move |_| {
            f.fetch_add(1, Ordering::Relaxed);
        }));
        assert_eq!(flag.load(Ordering::Relaxed), 1);
    }
}
