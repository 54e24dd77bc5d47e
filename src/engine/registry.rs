//! Executors by name: aliases for configs, and users' own executors.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::PipelineError;
use crate::model::config::ExecutorConfig;

/// One task, packaged for a [`CustomExecutor`].
///
/// Run it exactly once with [`Job::run`], on any thread. An executor that
/// drops a job without running it does not lose the task: the step records a
/// [`PipelineError::Dispatch`] for it instead of waiting forever.
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

#[derive(Clone)]
enum Entry {
    Alias(ExecutorConfig),
    Custom(Arc<dyn CustomExecutor>),
}

/// Executors by name: names for configs (`"cpu"` → `pool(4)`), and custom
/// executors. Names are checked when registered.
///
/// ```
/// use conveyor::{ExecutorConfig, ExecutorRegistry, PipelineError};
/// let mut registry = ExecutorRegistry::new();
/// registry.register("cpu", ExecutorConfig::pool(4))?;
/// assert_eq!(registry.resolve("cpu")?, ExecutorConfig::pool(4));
/// assert!(matches!(registry.register("cpu", ExecutorConfig::Inline),
///                  Err(PipelineError::DuplicateExecutor { .. })));
/// assert!(matches!(registry.resolve("gpu"), Err(PipelineError::UnknownExecutor { .. })));
/// # Ok::<(), PipelineError>(())
/// ```
#[derive(Clone, Default)]
pub struct ExecutorRegistry {
    entries: HashMap<Arc<str>, Entry>,
}

impl ExecutorRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Names `config`.
    ///
    /// # Errors
    /// [`PipelineError::EmptyExecutorName`], [`PipelineError::DuplicateExecutor`],
    /// [`PipelineError::ZeroThreads`] for `pool(0)`, and
    /// [`PipelineError::UnknownExecutor`] for a custom config whose name is
    /// not registered yet.
    pub fn register(&mut self, name: &str, config: ExecutorConfig) -> Result<(), PipelineError> {
        self.check_name(name)?;
        self.check_config(name, &config)?;
        self.entries.insert(name.into(), Entry::Alias(config));
        Ok(())
    }

    /// Registers a custom executor; tasks reach it with `.on(name)` or
    /// `ExecutorConfig::custom(name)`.
    ///
    /// # Errors
    /// [`PipelineError::EmptyExecutorName`] and [`PipelineError::DuplicateExecutor`].
    pub fn register_custom(
        &mut self,
        name: &str,
        executor: impl CustomExecutor + 'static,
    ) -> Result<(), PipelineError> {
        self.check_name(name)?;
        self.entries
            .insert(name.into(), Entry::Custom(Arc::new(executor)));
        Ok(())
    }

    /// The config registered under `name`; for a custom executor,
    /// `ExecutorConfig::custom(name)`.
    ///
    /// # Errors
    /// [`PipelineError::UnknownExecutor`] when nothing is registered under
    /// `name`.
    pub fn resolve(&self, name: &str) -> Result<ExecutorConfig, PipelineError> {
        match self.entries.get(name) {
            Some(Entry::Alias(config)) => Ok(config.clone()),
            Some(Entry::Custom(_)) => Ok(ExecutorConfig::custom(name)),
            None => Err(unknown(name)),
        }
    }

    /// Checks that `config` can be built from this registry.
    ///
    /// # Errors
    /// [`PipelineError::ZeroThreads`] for `pool(0)` and
    /// [`PipelineError::UnknownExecutor`] for an unregistered custom name;
    /// `name` is what the errors call the executor.
    pub fn check_config(&self, name: &str, config: &ExecutorConfig) -> Result<(), PipelineError> {
        match config {
            ExecutorConfig::Pool { threads: 0 } => Err(PipelineError::ZeroThreads {
                executor: name.to_owned(),
            }),
            ExecutorConfig::Custom { name: custom } if self.custom(custom).is_none() => Err(unknown(custom)),
            _ => Ok(()),
        }
    }

    pub(crate) fn custom(&self, name: &str) -> Option<&Arc<dyn CustomExecutor>> {
        match self.entries.get(name) {
            Some(Entry::Custom(executor)) => Some(executor),
            _ => None,
        }
    }

    /// Registered names, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.entries.keys().map(|k| &**k).collect();
        names.sort_unstable();
        names
    }

    /// Whether `name` is registered.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    fn check_name(&self, name: &str) -> Result<(), PipelineError> {
        if name.is_empty() {
            Err(PipelineError::EmptyExecutorName)
        } else if self.entries.contains_key(name) {
            Err(PipelineError::DuplicateExecutor {
                name: name.to_owned(),
            })
        } else {
            Ok(())
        }
    }
}

fn unknown(name: &str) -> PipelineError {
    PipelineError::UnknownExecutor {
        name: name.to_owned(),
        task: None,
        step: None,
    }
}

impl fmt::Debug for ExecutorRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for name in self.names() {
            match &self.entries[name] {
                Entry::Alias(config) => map.entry(&name, config),
                Entry::Custom(_) => map.entry(&name, &"<custom executor>"),
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
            Err(PipelineError::EmptyExecutorName)
        ));
        assert!(matches!(
            r.register_custom("", Now),
            Err(PipelineError::EmptyExecutorName)
        ));
        assert!(matches!(
            r.register("none", ExecutorConfig::pool(0)),
            Err(PipelineError::ZeroThreads { executor }) if executor == "none"
        ));
        assert!(matches!(
            r.register("alias", ExecutorConfig::custom("later")),
            Err(PipelineError::UnknownExecutor { .. })
        ));
        r.register_custom("later", Now).unwrap();
        r.register("alias", ExecutorConfig::custom("later")).unwrap();
        assert!(matches!(
            r.register_custom("later", Now),
            Err(PipelineError::DuplicateExecutor { .. })
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
