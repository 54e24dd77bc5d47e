//! Planning a step onto executors: its tasks grouped by config, each group
//! with the executor that runs it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use rayon::ThreadPool;

use super::pools::Pools;
use super::registry::CustomExecutor;
use crate::error::{BuildError, ExecutorSite};
use crate::model::config::ExecutorConfig;
use crate::model::step::Step;
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
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Range(r) => r.len(),
            Self::List(v) => v.len(),
        }
    }

    /// The task index at `position` of the group.
    pub(crate) fn get(&self, position: usize) -> usize {
        match self {
            Self::Range(r) => r.start + position,
            Self::List(v) => v[position],
        }
    }

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
pub(crate) enum ExecutionPlan {
    /// Every task on one executor, the common case: a plan that allocates
    /// nothing, which a chain of small steps makes once per step.
    Uniform(PlanGroup),
    /// Any number of groups (none for a step without tasks).
    Mixed(Vec<PlanGroup>),
}

impl ExecutionPlan {
    /// The groups, in plan order.
    pub(crate) fn groups(&self) -> &[PlanGroup] {
        match self {
            Self::Uniform(group) => std::slice::from_ref(group),
            Self::Mixed(groups) => groups,
        }
    }

    /// `(config, task indices)` per group, in plan order.
    #[cfg(test)]
    pub(crate) fn listed(&self) -> impl ExactSizeIterator<Item = (&ExecutorConfig, Vec<usize>)> + '_ {
        self.groups().iter().map(|g| (&g.config, g.tasks.to_vec()))
    }

    /// Takes out the group at the index `pick` chooses, if it chooses one,
    /// and hands back the others.
    pub(crate) fn split(
        self,
        pick: impl FnOnce(&[PlanGroup]) -> Option<usize>,
    ) -> (Option<PlanGroup>, Vec<PlanGroup>) {
        match self {
            Self::Uniform(group) => match pick(std::slice::from_ref(&group)) {
                Some(_) => (Some(group), Vec::new()),
                None => (None, vec![group]),
            },
            Self::Mixed(mut groups) => {
                let picked = pick(&groups).map(|i| groups.swap_remove(i));
                (picked, groups)
            }
        }
    }

    /// The plan without the tasks `done` marks: what is left of a step
    /// resumed after some of its tasks succeeded. Groups left empty go.
    pub(crate) fn without(self, done: &[bool]) -> Self {
        if !done.contains(&true) {
            return self;
        }
        let mut groups = match self {
            Self::Uniform(group) => vec![group],
            Self::Mixed(groups) => groups,
        };
        for group in &mut groups {
            let left: Vec<usize> = group.tasks.to_vec().into_iter().filter(|&i| !done[i]).collect();
            group.tasks = TaskIndices::List(left);
        }
        groups.retain(|g| g.tasks.len() > 0);
        Self::Mixed(groups)
    }

    /// The configs of the groups, in plan order.
    pub(crate) fn configs(&self) -> Vec<ExecutorConfig> {
        self.groups().iter().map(|g| g.config.clone()).collect()
    }
}

impl fmt::Debug for ExecutionPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.groups().iter().map(|g| (&g.config, &g.tasks)))
            .finish()
    }
}

/// Turns a step's tasks into an [`ExecutionPlan`] on an executor's
/// [`Pools`], resolving names and the executor's default config.
pub(crate) struct ExecutorFactory {
    pools: Pools,
    default: ExecutorConfig,
}

impl ExecutorFactory {
    /// A factory over `pools`, using `default` for tasks that name no
    /// executor. A default pool is built now, so a bad one fails the build.
    pub(crate) fn new(pools: Pools, default: ExecutorConfig) -> Result<Self, BuildError> {
        pools
            .registry()
            .check_config(|| ExecutorSite::Default, &default)?;
        let factory = Self { pools, default };
        factory.dispatch(&factory.default, || ExecutorSite::Default)?;
        Ok(factory)
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }

    /// The config a task runs on.
    pub(crate) fn config_for<T>(&self, task: &Task<T>, step: &str) -> Result<ExecutorConfig, BuildError> {
        let named = |e: BuildError| match e {
            BuildError::UnknownExecutor { name, .. } => BuildError::UnknownExecutor {
                name,
                task: Some(Arc::clone(&task.name)),
                step: Some(step.into()),
            },
            other => other,
        };
        match &task.executor {
            ExecutorRef::Default => Ok(self.default.clone()),
            ExecutorRef::Named(name) => self.pools.registry().resolve(name).map_err(named),
            ExecutorRef::Config(config) => {
                let site = || ExecutorSite::Task {
                    task: Arc::clone(&task.name),
                    step: step.into(),
                };
                self.pools.registry().check_config(site, config).map_err(named)?;
                Ok(config.clone())
            }
        }
    }

    /// Checks that every task of `step` names an executor that exists.
    pub(crate) fn check<T>(&self, step: &Step<T>) -> Result<(), BuildError> {
        if step.uniform {
            return match step.tasks.first() {
                Some(first) => self.config_for(first, &step.name).map(drop),
                None => Ok(()),
            };
        }
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

    /// The one pool every task of `steps` runs on, if there is one: a run
    /// whose every group is on one pool can walk inside it, entering it
    /// once instead of once per step.
    pub(crate) fn sole_pool<T>(&self, steps: &[Step<T>]) -> Option<Arc<ThreadPool>> {
        let mut sole: Option<Arc<ThreadPool>> = None;
        for step in steps {
            let mut last: Option<&ExecutorRef> = None;
            let tasks = if step.uniform {
                &step.tasks[..step.tasks.len().min(1)]
            } else {
                &step.tasks[..]
            };
            for task in tasks {
                if last == Some(&task.executor) {
                    continue;
                }
                last = Some(&task.executor);
                let config = self.config_for(task, &step.name).ok()?;
                let site = || ExecutorSite::Config;
                let Dispatch::Pool(pool) = self.dispatch(&config, site).ok()? else {
                    return None;
                };
                match &sole {
                    Some(p) if !Arc::ptr_eq(p, &pool) => return None,
                    Some(_) => {}
                    None => sole = Some(pool),
                }
            }
        }
        sole
    }

    /// Groups `step`'s tasks by config and attaches each group's executor,
    /// building an unnamed pool the first time a size needs one.
    pub(crate) fn plan<T>(&self, step: &Step<T>) -> Result<ExecutionPlan, BuildError> {
        let tasks = &step.tasks;
        let Some(first) = tasks.first() else {
            return Ok(ExecutionPlan::Mixed(Vec::new()));
        };
        let site = |i: usize| {
            move || ExecutorSite::Task {
                task: Arc::clone(&tasks[i].name),
                step: Arc::clone(&step.name),
            }
        };
        // The common case: every task asks for the same executor.
        if step.uniform {
            let config = self.config_for(first, &step.name)?;
            let dispatch = self.dispatch(&config, site(0))?;
            return Ok(ExecutionPlan::Uniform(PlanGroup {
                config,
                dispatch,
                tasks: TaskIndices::Range(0..tasks.len()),
            }));
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
                    dispatch: self.dispatch(&config, site(indices[0]))?,
                    config,
                    tasks: TaskIndices::List(indices),
                })
            })
            .collect::<Result<_, BuildError>>()?;
        Ok(ExecutionPlan::Mixed(groups))
    }

    pub(crate) fn dispatch(
        &self,
        config: &ExecutorConfig,
        site: impl FnOnce() -> ExecutorSite,
    ) -> Result<Dispatch, BuildError> {
        Ok(match config {
            ExecutorConfig::Inline => Dispatch::Inline,
            ExecutorConfig::Global => Dispatch::Global,
            ExecutorConfig::ThreadPerTask => Dispatch::ThreadPerTask,
            ExecutorConfig::Custom { name } => {
                Dispatch::Custom(Arc::clone(self.pools.registry().custom(name).ok_or_else(
                    || BuildError::UnknownExecutor {
                        name: name.as_str().into(),
                        task: None,
                        step: None,
                    },
                )?))
            }
            ExecutorConfig::Pool { .. } | ExecutorConfig::Named { .. } => {
                Dispatch::Pool(self.pools.pool(config, site)?)
            }
        })
    }
}

impl fmt::Debug for ExecutorFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorFactory")
            .field("pools", &self.pools)
            .field("default", &self.default)
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
        let pools = Pools::builder()
            .executor("cpu", ExecutorConfig::pool(2))
            .build()
            .unwrap();
        ExecutorFactory::new(pools, ExecutorConfig::Inline).unwrap()
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
        let groups: Vec<_> = plan.listed().map(|(c, i)| (c.clone(), i)).collect();
        assert_eq!(
            groups,
            vec![
                (ExecutorConfig::named("cpu"), vec![0]),
                (ExecutorConfig::Inline, vec![1, 4]),
                (ExecutorConfig::pool(2), vec![2]),
                (ExecutorConfig::pool(3), vec![3]),
            ]
        );
        assert_eq!(f.pools().pool_count(), 3, "the name `cpu` is a pool of its own");
    }

    #[test]
    fn pools_are_built_once() {
        let f = factory();
        let step = Step::new("s", [task("a").on("cpu")]);
        let p1 = f.plan(&step).unwrap();
        let p2 = f.plan(&step).unwrap();
        match (&p1.groups()[0].dispatch, &p2.groups()[0].dispatch) {
            (Dispatch::Pool(a), Dispatch::Pool(b)) => assert!(Arc::ptr_eq(a, b)),
            _ => panic!("expected pools"),
        }
        assert_eq!(p1.groups()[0].tasks, TaskIndices::Range(0..1));
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
        assert!(matches!(err, BuildError::ZeroThreads { .. }), "{err}");
        assert!(matches!(
            ExecutorFactory::new(Pools::unnamed(), ExecutorConfig::pool(0)),
            Err(BuildError::ZeroThreads { .. })
        ));
    }
}
