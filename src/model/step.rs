//! Steps: groups of tasks that run in parallel, with their flow edges.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::flow::{Edges, Flow, SWITCHES};
use super::strategy::EvaluationStrategy;
use super::task::{ExecutorRef, Task, TaskContext};
use super::task_list::TaskList;
use crate::error::TaskError;
use crate::records::results::Names;

/// A group of tasks that run in parallel, judged by one strategy, with
/// edges that say where the run goes next.
///
/// Each run of a step gets exactly one
/// [`ExecutionContext`](crate::ExecutionContext).
///
/// # Flow
/// Without edges, steps run in the order they were declared. A step can
/// branch on its outcome ([`on_success`](Self::on_success),
/// [`on_failure`](Self::on_failure): the original's descriptors 1 and 0)
/// or on a switch target (2 to 9) that one of its tasks picks by returning
/// [`Flow::Switch`](crate::Flow::Switch) ([`on_switch`](Self::on_switch)).
/// A step that an edge leads to is part of a branch: it does not fall
/// through to the next declared step, but continues along its own
/// [`then`](Self::then) edge, and when the branch ends the run goes on at
/// the branching step's [`sink`](Self::sink), whichever branch ran. A failed
/// step without a failure branch aborts the run.
pub struct Step<T> {
    pub(crate) name: Arc<str>,
    pub(crate) tasks: TaskList<T>,
    pub(crate) strategy: EvaluationStrategy,
    pub(crate) edges: Edges,
    pub(crate) timeout: Option<Duration>,
    /// Whether the name follows the tasks (`of`, `step_with`), so adding a
    /// task renames the step.
    named_by_tasks: bool,
    /// The name of a step named by its tasks while tasks are added one at
    /// a time, grown in place rather than joined again on every call;
    /// `name` takes it when the step is sealed.
    label: Option<String>,
    /// Whether every task names the same executor: kept as the tasks
    /// change, so that planning a step of 10,000 tasks does not compare
    /// 10,000 executor names on every run.
    pub(crate) uniform: bool,
    /// The tasks' names, built on first use and shared by every result set
    /// and metrics record of this step's runs.
    names: OnceLock<Names>,
}

/// Whether every task of `tasks` names the same executor.
fn uniform<T>(tasks: &[Task<T>]) -> bool {
    tasks.windows(2).all(|w| w[0].executor == w[1].executor)
}

impl<T> Step<T> {
    /// A step named `name` running `tasks`.
    pub fn new(name: impl Into<Arc<str>>, tasks: impl IntoIterator<Item = Task<T>>) -> Self {
        let tasks: TaskList<T> = tasks.into_iter().collect();
        Self {
            name: name.into(),
            uniform: uniform(&tasks),
            tasks,
            strategy: EvaluationStrategy::default(),
            edges: Edges::default(),
            timeout: None,
            named_by_tasks: false,
            label: None,
            names: OnceLock::new(),
        }
    }

    /// A step with no tasks and no name, for [`PipelineBuilder::step_with`](crate::PipelineBuilder::step_with):
    /// its name, when none is set, comes from its tasks.
    pub(crate) fn empty() -> Self {
        Self {
            named_by_tasks: true,
            ..Self::new("", [])
        }
    }

    /// Adds a task named `name` that runs `f`; `T` is known here, so the
    /// closure needs no annotations.
    #[must_use]
    pub fn task<F>(self, name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(&TaskContext<'_, T>) -> Result<T, TaskError> + Send + Sync + 'static,
        T: 'static,
    {
        self.with(Task::from_fn(name, f))
    }

    /// Adds a task that steers the flow, as [`Task::flow_fn`].
    #[must_use]
    pub fn flow_task<F>(self, name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(&TaskContext<'_, T>) -> Result<Flow<T>, TaskError> + Send + Sync + 'static,
        T: 'static,
    {
        self.with(Task::flow_fn(name, f))
    }

    /// Adds a task built elsewhere. Adding tasks one at a time costs the
    /// same per task as building the step from an iterator: the list and,
    /// for a step named by its tasks, the name grow in place.
    #[must_use]
    pub fn with(mut self, task: Task<T>) -> Self {
        self.uniform = self.uniform
            && self
                .tasks
                .last()
                .is_none_or(|last| last.executor == task.executor);
        if self.named_by_tasks {
            let label = self.label.get_or_insert_with(|| self.name.to_string());
            if !self.tasks.is_empty() {
                label.push('|');
            }
            label.push_str(task.name());
        }
        self.tasks.push(task);
        self.names = OnceLock::new();
        self
    }

    /// Puts the step in the form its runs share: its task list and name
    /// are each made once, however the step was built.
    pub(crate) fn seal(&mut self) {
        self.tasks.seal();
        if let Some(label) = self.label.take() {
            self.name = label.into();
        }
    }

    /// Names the step.
    ///
    /// Default: the names of its tasks, joined with `|`.
    #[must_use]
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self.named_by_tasks = false;
        self.label = None;
        self
    }

    /// Runs every task of the step that names no executor of its own on the
    /// executor registered as `name`.
    ///
    /// Default: each task's own choice, else the executor's default.
    #[must_use]
    pub fn on(mut self, name: impl Into<Arc<str>>) -> Self {
        let name: Arc<str> = name.into();
        self.tasks = self
            .tasks
            .iter()
            .map(|t| match t.executor {
                ExecutorRef::Default => t.clone().on(Arc::clone(&name)),
                _ => t.clone(),
            })
            .collect();
        self.uniform = uniform(&self.tasks);
        self
    }

    /// A step named after its tasks, joined with `|` (`"stats|hash"`).
    /// Task names are unique in a pipeline, so these names are too.
    pub fn of(tasks: impl IntoIterator<Item = Task<T>>) -> Self {
        let tasks: TaskList<T> = tasks.into_iter().collect();
        Self {
            name: name_of(&tasks).into(),
            uniform: uniform(&tasks),
            tasks,
            strategy: EvaluationStrategy::default(),
            edges: Edges::default(),
            timeout: None,
            named_by_tasks: true,
            label: None,
            names: OnceLock::new(),
        }
    }

    /// How the step's outcomes decide whether it succeeded.
    ///
    /// Default: [`EvaluationStrategy::AllMustSucceed`].
    #[must_use]
    pub fn strategy(mut self, strategy: EvaluationStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Where the run goes when this step succeeds and no task picked a
    /// switch target (the original's descriptor 1).
    ///
    /// Default: the next step.
    #[must_use]
    pub fn on_success(mut self, step: impl Into<Arc<str>>) -> Self {
        self.edges.on_success = Some(step.into());
        self
    }

    /// Where the run goes when this step fails (the original's descriptor
    /// 0); the run then goes on instead of aborting.
    ///
    /// Default: none; a failure aborts the run.
    #[must_use]
    pub fn on_failure(mut self, step: impl Into<Arc<str>>) -> Self {
        self.edges.on_failure = Some(step.into());
        self
    }

    /// Where the run goes when a task of this step returns
    /// [`Flow::Switch`](crate::Flow::Switch)`(target, _)`. Targets are 2 to
    /// 9; any other number is reported by [`PipelineBuilder::build`](crate::PipelineBuilder::build) as
    /// [`BuildError::InvalidSwitch`](crate::BuildError::InvalidSwitch).
    ///
    /// Default: no switch targets.
    #[must_use]
    pub fn on_switch(mut self, target: u8, step: impl Into<Arc<str>>) -> Self {
        match usize::from(target)
            .checked_sub(2)
            .filter(|_| SWITCHES.contains(&target))
        {
            Some(slot) => self.edges.switch[slot] = Some(step.into()),
            None => {
                self.edges.invalid_switch.get_or_insert(target);
            }
        }
        self
    }

    /// The step to run after this step, overriding declaration order; the
    /// way to make a branch longer than one step.
    ///
    /// Default: the next declared step that no edge leads to, or, for a
    /// step inside a branch, the end of the branch.
    #[must_use]
    pub fn then(mut self, step: impl Into<Arc<str>>) -> Self {
        self.edges.then = Some(step.into());
        self
    }

    /// The step that runs when the branch this step took has ended,
    /// whichever branch it was, like a `finally` block: it also runs when a
    /// step inside the branch fails, or when this step fails with no
    /// failure branch. After a failure, only pending sinks run (each on its
    /// own, innermost first), and the run still ends `Aborted`, reporting
    /// the first failure.
    ///
    /// Default: none.
    #[must_use]
    pub fn sink(mut self, step: impl Into<Arc<str>>) -> Self {
        self.edges.sink = Some(step.into());
        self
    }

    /// A deadline for each run of this step, counted from its start. When it
    /// passes, `execute` returns the run at once, `Aborted`, with
    /// [`RunError::Timeout`](crate::RunError::Timeout) as its failure: tasks
    /// not yet started are skipped, and a task still running keeps its
    /// thread until it returns (threads cannot be killed safely), so a pool
    /// has one thread fewer until then. The deadline is watched from the
    /// calling thread; an inline task runs on that thread, so it cannot be
    /// interrupted, and the deadline is checked between inline tasks.
    ///
    /// Default: none.
    #[must_use]
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// The step's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// The step's tasks, in declaration order.
    #[must_use]
    pub fn tasks(&self) -> &[Task<T>] {
        &self.tasks
    }

    /// The tasks' names, in declaration order, shared.
    pub(crate) fn names(&self) -> &Names {
        self.names
            .get_or_init(|| self.tasks.iter().map(|t| Arc::clone(&t.name)).collect())
    }

    /// The step's evaluation strategy.
    #[must_use]
    pub fn evaluation_strategy(&self) -> &EvaluationStrategy {
        &self.strategy
    }

    /// The step named by [`then`](Self::then), if one was given.
    #[must_use]
    pub fn then_step(&self) -> Option<&str> {
        self.edges.then.as_deref()
    }

    /// The step named by [`on_success`](Self::on_success), if one was given.
    #[must_use]
    pub fn success_step(&self) -> Option<&str> {
        self.edges.on_success.as_deref()
    }

    /// The step named by [`on_failure`](Self::on_failure), if one was given.
    #[must_use]
    pub fn failure_step(&self) -> Option<&str> {
        self.edges.on_failure.as_deref()
    }

    /// The step that switch target `target` (2 to 9) leads to, if
    /// [`on_switch`](Self::on_switch) gave one; `None` for any other number.
    #[must_use]
    pub fn switch_step(&self, target: u8) -> Option<&str> {
        let slot = usize::from(target).checked_sub(2)?;
        self.edges.switch.get(slot)?.as_deref()
    }

    /// The step named by [`sink`](Self::sink), if one was given.
    #[must_use]
    pub fn sink_step(&self) -> Option<&str> {
        self.edges.sink.as_deref()
    }

    /// The deadline set by [`timeout`](Self::timeout), if any.
    #[must_use]
    pub fn time_limit(&self) -> Option<Duration> {
        self.timeout
    }
}

fn name_of<T>(tasks: &[Task<T>]) -> String {
    tasks.iter().map(Task::name).collect::<Vec<_>>().join("|")
}

impl<T> Clone for Step<T> {
    fn clone(&self) -> Self {
        Self {
            name: Arc::clone(&self.name),
            tasks: self.tasks.clone(),
            strategy: self.strategy.clone(),
            edges: self.edges.clone(),
            timeout: self.timeout,
            named_by_tasks: self.named_by_tasks,
            label: self.label.clone(),
            uniform: self.uniform,
            names: self.names.clone(),
        }
    }
}

impl<T> fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name())
            .field("tasks", &self.tasks)
            .field("strategy", &self.strategy)
            .field("edges", &self.edges)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<T, const N: usize> From<[Task<T>; N]> for Step<T> {
    fn from(tasks: [Task<T>; N]) -> Self {
        Self::of(tasks)
    }
}

impl<T> From<Vec<Task<T>>> for Step<T> {
    fn from(tasks: Vec<Task<T>>) -> Self {
        Self::of(tasks)
    }
}

impl<T> From<Task<T>> for Step<T> {
    fn from(task: Task<T>) -> Self {
        Self::of([task])
    }
}
