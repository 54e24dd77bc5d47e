//! Building executors once and planning steps onto them.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use parking_lot::RwLock;
use rayon::ThreadPool;

use crate::engine::registry::{CustomExecutor, ExecutorRegistry};
use crate::error::PipelineError;
use crate::model::config::ExecutorConfig;
use crate::model::pipeline::Step;
use crate::model::task::{ExecutorRef, Task};

/// A built executor, ready to take a group of tasks.
#[derive(Clone)]
pub(crate) enum Dispatch {
    Inline,
    Pool(Arc<ThreadPool>),
    Global,
    ThreadPerTask,
    Custom(Arc<dyn CustomExecutor>),
}

impl Dispatch {
    /// How strongly this group wants the caller's thread: an inline group
    /// must run there; a group on the caller's own pool runs there to avoid
    /// a round trip and so that the caller's thread keeps working instead of
    /// blocking a worker.
    pub(crate) fn affinity(&self) -> u8 {
        match self {
            Self::Inline => 2,
            Self::Pool(pool) if pool.current_thread_index().is_some() => 1,
            Self::Global if rayon::current_thread_index().is_some() => 1,
            _ => 0,
        }
    }
}

/// The task indices of one group, in declaration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaskIndices {
    /// Every task of a step, the common case, without a list.
    Range(Range<usize>),
    List(Vec<usize>),
}

impl TaskIndices {
    pub(crate) fn to_vec(&self) -> Vec<usize> {
        match self {
            Self::Range(r) => r.clone().collect(),
            Self::List(v) => v.clone(),
        }
    }
}

/// One group of a plan: tasks that share a config, and its executor.
pub(crate) struct PlanGroup {
    pub(crate) config: ExecutorConfig,
    pub(crate) dispatch: Dispatch,
    pub(crate) tasks: TaskIndices,
}

/// A step's tasks grouped by executor config, in the order each config
/// first appears among the tasks.
pub struct ExecutionPlan {
    pub(crate) groups: Vec<PlanGroup>,
}

impl ExecutionPlan {
    /// `(config, task indices)` per group, in plan order.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = (&ExecutorConfig, Vec<usize>)> + '_ {
        self.groups.iter().map(|g| (&g.config, g.tasks.to_vec()))
    }

    /// Number of groups.
    #[must_use]
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether the plan has no groups.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

impl fmt::Debug for ExecutionPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.groups.iter().map(|g| (&g.config, &g.tasks)))
            .finish()
    }
}

/// Builds each executor once, caches it by config, and turns a step's tasks
/// into an [`ExecutionPlan`].
///
/// Pools named in the registry are built when the factory is; pools that
/// tasks ask for directly are built on first use. All are shut down when the
/// factory is dropped (rayon lets running jobs finish, then the threads exit).
pub struct ExecutorFactory {
    registry: ExecutorRegistry,
    default: ExecutorConfig,
    pools: RwLock<HashMap<ExecutorConfig, Arc<ThreadPool>>>,
}

impl ExecutorFactory {
    /// A factory over `registry`, using `default` for tasks that name no
    /// executor.
    ///
    /// # Errors
    /// [`PipelineError::ZeroThreads`] and [`PipelineError::UnknownExecutor`]
    /// for a bad default, and [`PipelineError::PoolBuild`] when rayon cannot
    /// start a registered pool.
    pub fn new(registry: ExecutorRegistry, default: ExecutorConfig) -> Result<Self, PipelineError> {
        registry.check_config("default", &default)?;
        let factory = Self {
            registry,
            default,
            pools: RwLock::new(HashMap::new()),
        };
        let mut eager: Vec<ExecutorConfig> = factory
            .registry
            .names()
            .into_iter()
            .filter_map(|n| factory.registry.resolve(n).ok())
            .collect();
        eager.push(factory.default.clone());
        for config in eager {
            factory.dispatch(&config)?;
        }
        Ok(factory)
    }

    /// The registry the factory resolves names with.
    #[must_use]
    pub fn registry(&self) -> &ExecutorRegistry {
        &self.registry
    }

    /// The config for tasks that name no executor.
    #[must_use]
    pub fn default_config(&self) -> &ExecutorConfig {
        &self.default
    }

    /// Number of dedicated pools built so far.
    #[must_use]
    pub fn pool_count(&self) -> usize {
        self.pools.read().len()
    }

    /// The config a task runs on.
    ///
    /// # Errors
    /// [`PipelineError::UnknownExecutor`] naming the task and step, and
    /// [`PipelineError::ZeroThreads`] for a task that asks for `pool(0)`.
    pub fn config_for<T>(&self, task: &Task<T>, step: &str) -> Result<ExecutorConfig, PipelineError> {
        self.resolve(&task.executor).map_err(|e| match e {
            PipelineError::UnknownExecutor { name, .. } => PipelineError::UnknownExecutor {
                name,
                task: Some(Arc::clone(&task.name)),
                step: Some(step.into()),
            },
            PipelineError::ZeroThreads { .. } => PipelineError::ZeroThreads {
                executor: format!(
                    "{} (task `{}` in step `{step}`)",
                    ExecutorConfig::pool(0),
                    task.name
                ),
            },
            other => other,
        })
    }

    fn resolve(&self, executor: &ExecutorRef) -> Result<ExecutorConfig, PipelineError> {
        match executor {
            ExecutorRef::Default => Ok(self.default.clone()),
            ExecutorRef::Named(name) => self.registry.resolve(name),
            ExecutorRef::Config(config) => {
                // No name: `config_for`, the only caller, names the task in
                // the error instead.
                self.registry.check_config("", config)?;
                Ok(config.clone())
            }
        }
    }

    /// Checks that every task of `step` names an executor that exists.
    ///
    /// # Errors
    /// As [`config_for`](Self::config_for), for the first bad task.
    pub fn check<T>(&self, step: &Step<T>) -> Result<(), PipelineError> {
        let mut last: Option<&ExecutorRef> = None;
        for task in step.tasks.iter() {
            // Steps usually repeat one choice; resolve each run of it once.
            if last != Some(&task.executor) {
                self.config_for(task, &step.name)?;
                last = Some(&task.executor);
            }
        }
        Ok(())
    }

    /// Groups `step`'s tasks by config and attaches each group's executor,
    /// building a pool the first time a config needs one.
    ///
    /// # Errors
    /// As [`config_for`](Self::config_for), and [`PipelineError::PoolBuild`].
    pub fn plan<T>(&self, step: &Step<T>) -> Result<ExecutionPlan, PipelineError> {
        let tasks = &step.tasks;
        let Some(first) = tasks.first() else {
            return Ok(ExecutionPlan { groups: Vec::new() });
        };
        // The common case: every task asks for the same executor.
        if tasks.iter().all(|t| t.executor == first.executor) {
            let config = self.config_for(first, &step.name)?;
            let dispatch = self.dispatch(&config)?;
            return Ok(ExecutionPlan {
                groups: vec![PlanGroup {
                    config,
                    dispatch,
                    tasks: TaskIndices::Range(0..tasks.len()),
                }],
            });
        }
        let mut groups: Vec<(ExecutorConfig, Vec<usize>)> = Vec::new();
        let mut last: Option<(&ExecutorRef, usize)> = None;
        for (i, task) in tasks.iter().enumerate() {
            let slot = match last {
                Some((r, slot)) if *r == task.executor => slot,
                _ => {
                    let config = self.config_for(task, &step.name)?;
                    let slot = match groups.iter().position(|(c, _)| *c == config) {
                        Some(slot) => slot,
                        None => {
                            groups.push((config, Vec::new()));
                            groups.len() - 1
                        }
                    };
                    last = Some((&task.executor, slot));
                    slot
                }
            };
            groups[slot].1.push(i);
        }
        let groups = groups
            .into_iter()
            .map(|(config, indices)| {
                Ok(PlanGroup {
                    dispatch: self.dispatch(&config)?,
                    config,
                    tasks: TaskIndices::List(indices),
                })
            })
            .collect::<Result<_, PipelineError>>()?;
        Ok(ExecutionPlan { groups })
    }

    pub(crate) fn dispatch(&self, config: &ExecutorConfig) -> Result<Dispatch, PipelineError> {
        Ok(match config {
            ExecutorConfig::Inline => Dispatch::Inline,
            ExecutorConfig::Global => Dispatch::Global,
            ExecutorConfig::ThreadPerTask => Dispatch::ThreadPerTask,
            ExecutorConfig::Custom { name } => {
                Dispatch::Custom(Arc::clone(self.registry.custom(name).ok_or_else(|| {
                    PipelineError::UnknownExecutor {
                        name: name.clone(),
                        task: None,
                        step: None,
                    }
                })?))
            }
            ExecutorConfig::Pool { threads } => {
                if let Some(pool) = self.pools.read().get(config) {
                    return Ok(Dispatch::Pool(Arc::clone(pool)));
                }
                let mut pools = self.pools.write();
                // Another thread may have built it between the two locks.
                if let Some(pool) = pools.get(config) {
                    return Ok(Dispatch::Pool(Arc::clone(pool)));
                }
                if *threads == 0 {
                    return Err(PipelineError::ZeroThreads {
                        executor: config.to_string(),
                    });
                }
                let threads = *threads;
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(move |i| format!("conveyor-pool{threads}-{i}"))
                    .build()
                    .map_err(|e| PipelineError::PoolBuild {
                        config: config.clone(),
                        message: e.to_string(),
                    })?;
                let pool = Arc::new(pool);
                pools.insert(config.clone(), Arc::clone(&pool));
                Dispatch::Pool(pool)
            }
        })
    }
}

impl fmt::Debug for ExecutorFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorFactory")
            .field("registry", &self.registry)
            .field("default", &self.default)
            .field("pools", &self.pools.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str) -> Task<u8> {
        Task::from_fn(name, |c| Ok(*c.input()))
    }

    fn factory() -> ExecutorFactory {
        let mut registry = ExecutorRegistry::new();
        registry.register("cpu", ExecutorConfig::pool(2)).unwrap();
        ExecutorFactory::new(registry, ExecutorConfig::Inline).unwrap()
    }

    #[test]
    fn groups_in_first_appearance_order_by_whole_config() {
        let f = factory();
        let step = Step::new(
            "s",
            [
                task("a").on("cpu"),
                task("b"),
                task("c").executor(ExecutorConfig::pool(2)),
                task("d").executor(ExecutorConfig::pool(3)),
                task("e"),
            ],
        );
        let plan = f.plan(&step).unwrap();
        let groups: Vec<_> = plan.groups().map(|(c, i)| (c.clone(), i)).collect();
        assert_eq!(
            groups,
            vec![
                (ExecutorConfig::pool(2), vec![0, 2]),
                (ExecutorConfig::Inline, vec![1, 4]),
                (ExecutorConfig::pool(3), vec![3]),
            ]
        );
        assert_eq!(f.pool_count(), 2, "pool(2) is shared by name and by config");
    }

    #[test]
    fn pools_are_built_once() {
        let f = factory();
        let step = Step::new("s", [task("a").on("cpu")]);
        let p1 = f.plan(&step).unwrap();
        let p2 = f.plan(&step).unwrap();
        match (&p1.groups[0].dispatch, &p2.groups[0].dispatch) {
            (Dispatch::Pool(a), Dispatch::Pool(b)) => assert!(Arc::ptr_eq(a, b)),
            _ => panic!("expected pools"),
        }
        assert_eq!(p1.groups[0].tasks, TaskIndices::Range(0..1));
    }

    #[test]
    fn bad_executor_choices_name_the_task() {
        let f = factory();
        let err = f
            .plan(&Step::new("s", [task("a"), task("b").on("gpu")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no executor named `gpu` is registered (asked for by task `b` in step `s`)"
        );
        let err = f
            .check(&Step::new("s", [task("z").executor(ExecutorConfig::pool(0))]))
            .unwrap_err();
        assert!(matches!(err, PipelineError::ZeroThreads { .. }), "{err}");
        assert!(matches!(
            ExecutorFactory::new(ExecutorRegistry::new(), ExecutorConfig::pool(0)),
            Err(PipelineError::ZeroThreads { .. })
        ));
    }
}
