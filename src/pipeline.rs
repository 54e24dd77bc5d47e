//! Pipelines: named steps of tasks, checked when built.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::PipelineError;
use crate::flow::{Edges, FlowGraph, SWITCHES};
use crate::strategy::EvaluationStrategy;
use crate::task::Task;

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
    pub(crate) tasks: Arc<[Task<T>]>,
    pub(crate) strategy: EvaluationStrategy,
    pub(crate) edges: Edges,
    pub(crate) timeout: Option<Duration>,
}

impl<T> Step<T> {
    /// A step named `name` running `tasks`.
    pub fn new(name: impl Into<Arc<str>>, tasks: impl IntoIterator<Item = Task<T>>) -> Self {
        Self {
            name: name.into(),
            tasks: tasks.into_iter().collect(),
            strategy: EvaluationStrategy::default(),
            edges: Edges::default(),
            timeout: None,
        }
    }

    /// A step named after its tasks, joined with `|` (`"stats|hash"`).
    /// Task names are unique in a pipeline, so these names are too.
    pub fn of(tasks: impl IntoIterator<Item = Task<T>>) -> Self {
        let tasks: Arc<[Task<T>]> = tasks.into_iter().collect();
        let name = tasks.iter().map(Task::name).collect::<Vec<_>>().join("|");
        Self {
            name: name.into(),
            tasks,
            strategy: EvaluationStrategy::default(),
            edges: Edges::default(),
            timeout: None,
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
    /// 9; any other number is reported by [`PipelineBuilder::build`] as
    /// [`PipelineError::InvalidSwitch`].
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
    /// whichever branch it was.
    ///
    /// Default: none.
    #[must_use]
    pub fn sink(mut self, step: impl Into<Arc<str>>) -> Self {
        self.edges.sink = Some(step.into());
        self
    }

    /// A deadline for each run of this step, counted from its start. When it
    /// passes, `execute` returns [`PipelineError::Timeout`] at once: tasks
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
        &self.name
    }

    /// The step's tasks, in declaration order.
    #[must_use]
    pub fn tasks(&self) -> &[Task<T>] {
        &self.tasks
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

impl<T> Clone for Step<T> {
    fn clone(&self) -> Self {
        Self {
            name: Arc::clone(&self.name),
            tasks: Arc::clone(&self.tasks),
            strategy: self.strategy.clone(),
            edges: self.edges.clone(),
            timeout: self.timeout,
        }
    }
}

impl<T> fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
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

pub(crate) struct PipelineInner<T> {
    pub(crate) name: Arc<str>,
    pub(crate) steps: Vec<Step<T>>,
    pub(crate) graph: FlowGraph,
}

/// Steps run one after another; a step's tasks see the previous step's
/// results. Cloning is cheap (one `Arc`), and a pipeline is immutable once
/// built, so one pipeline can be executed from many threads at once.
///
/// ```
/// use conveyor::{Pipeline, Task};
/// let p: Pipeline<u64> = Pipeline::builder("demo")
///     .step([Task::from_fn("load", |c| Ok(*c.input()))])
///     .step([Task::from_fn("a", |c| Ok(c.previous().first().unwrap() + 1)),
///            Task::from_fn("b", |c| Ok(c.previous().first().unwrap() + 2))])
///     .build()?;
/// assert_eq!(p.steps().len(), 2);
/// assert_eq!(p.steps()[1].name(), "a|b");
/// # Ok::<(), conveyor::PipelineError>(())
/// ```
pub struct Pipeline<T> {
    pub(crate) inner: Arc<PipelineInner<T>>,
}

impl<T> Pipeline<T> {
    /// Starts a pipeline named `name`.
    pub fn builder(name: impl Into<Arc<str>>) -> PipelineBuilder<T> {
        PipelineBuilder {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    /// The pipeline's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The steps, in order.
    #[must_use]
    pub fn steps(&self) -> &[Step<T>] {
        &self.inner.steps
    }

    /// The step named `name`.
    ///
    /// # Errors
    /// [`PipelineError::UnknownStep`] when there is no such step.
    pub fn step(&self, name: &str) -> Result<&Step<T>, PipelineError> {
        self.inner
            .steps
            .iter()
            .find(|s| &*s.name == name)
            .ok_or_else(|| PipelineError::UnknownStep {
                pipeline: Arc::clone(&self.inner.name),
                step: name.to_owned(),
            })
    }

    /// A canonical text of the pipeline's shape: its name, step names,
    /// strategies with their parameters, task names in order, and every
    /// declared edge. Pipelines built the same way describe alike, in any
    /// process and with any Rust release; checkpoints fingerprint it
    /// ([`Fingerprint::of_pipeline`](crate::Fingerprint::of_pipeline)).
    #[must_use]
    pub fn describe(&self) -> String {
        crate::checkpoint::describe(self)
    }

    /// Number of tasks over all steps.
    #[must_use]
    pub fn task_count(&self) -> usize {
        self.inner.steps.iter().map(|s| s.tasks.len()).sum()
    }
}

impl<T> Clone for Pipeline<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for Pipeline<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.inner.name)
            .field("steps", &self.inner.steps)
            .finish()
    }
}

/// Builds a [`Pipeline`]; see [`Pipeline::builder`].
pub struct PipelineBuilder<T> {
    name: Arc<str>,
    steps: Vec<Step<T>>,
}

impl<T> PipelineBuilder<T> {
    /// Appends a step: an array or `Vec` of tasks (named after them), a single
    /// task, or a [`Step`] built by hand.
    #[must_use]
    pub fn step(mut self, step: impl Into<Step<T>>) -> Self {
        self.steps.push(step.into());
        self
    }

    /// Checks the pipeline and builds it.
    ///
    /// # Errors
    /// - [`PipelineError::EmptyPipeline`]: no steps;
    /// - [`PipelineError::EmptyStep`]: a step without tasks;
    /// - [`PipelineError::EmptyName`]: an empty pipeline, step or task name;
    /// - [`PipelineError::DuplicateStep`] and [`PipelineError::DuplicateTask`]:
    ///   names are not unique;
    /// - [`PipelineError::InvalidThreshold`]: a step's strategy has a
    ///   threshold out of range;
    /// - [`PipelineError::InvalidSwitch`]: a switch target outside 2 to 9;
    /// - [`PipelineError::MissingStep`]: an edge to a step that does not
    ///   exist;
    /// - [`PipelineError::Cycle`]: edges that loop (loops are not allowed,
    ///   so every run ends);
    /// - [`PipelineError::UnreachableStep`]: a step no path leads to.
    pub fn build(self) -> Result<Pipeline<T>, PipelineError> {
        let pipeline = &self.name;
        if pipeline.is_empty() {
            return Err(PipelineError::EmptyName {
                pipeline: Arc::clone(pipeline),
                what: "pipeline",
            });
        }
        if self.steps.is_empty() {
            return Err(PipelineError::EmptyPipeline {
                pipeline: Arc::clone(pipeline),
            });
        }
        let mut steps: HashMap<&str, ()> = HashMap::with_capacity(self.steps.len());
        let mut tasks: HashMap<&str, &Arc<str>> = HashMap::new();
        for step in &self.steps {
            if step.tasks.is_empty() {
                return Err(PipelineError::EmptyStep {
                    pipeline: Arc::clone(pipeline),
                    step: Arc::clone(&step.name),
                });
            }
            if step.name.is_empty() {
                return Err(PipelineError::EmptyName {
                    pipeline: Arc::clone(pipeline),
                    what: "step",
                });
            }
            if steps.insert(&step.name, ()).is_some() {
                return Err(PipelineError::DuplicateStep {
                    pipeline: Arc::clone(pipeline),
                    step: Arc::clone(&step.name),
                });
            }
            step.strategy.validate().map_err(|e| match e {
                PipelineError::InvalidThreshold {
                    strategy,
                    value,
                    expected,
                    ..
                } => PipelineError::InvalidThreshold {
                    strategy,
                    value,
                    expected,
                    step: Some(Arc::clone(&step.name)),
                },
                other => other,
            })?;
            for task in step.tasks.iter() {
                if task.name.is_empty() {
                    return Err(PipelineError::EmptyName {
                        pipeline: Arc::clone(pipeline),
                        what: "task",
                    });
                }
                if let Some(first) = tasks.insert(&task.name, &step.name) {
                    return Err(PipelineError::DuplicateTask {
                        pipeline: Arc::clone(pipeline),
                        task: Arc::clone(&task.name),
                        first_step: Arc::clone(first),
                        second_step: Arc::clone(&step.name),
                    });
                }
            }
        }
        let graph = FlowGraph::build(pipeline, &self.steps)?;
        Ok(Pipeline {
            inner: Arc::new(PipelineInner {
                name: self.name,
                steps: self.steps,
                graph,
            }),
        })
    }
}

impl<T> fmt::Debug for PipelineBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("name", &self.name)
            .field("steps", &self.steps)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> Task<u8> {
        Task::from_fn(name, |c| Ok(*c.input()))
    }

    #[test]
    fn bad_pipelines_are_refused_with_context() {
        let err = Pipeline::<u8>::builder("p").build().unwrap_err();
        assert!(matches!(err, PipelineError::EmptyPipeline { .. }));

        let err = Pipeline::builder("p")
            .step(Vec::<Task<u8>>::new())
            .build()
            .unwrap_err();
        assert!(matches!(err, PipelineError::EmptyStep { .. }), "{err}");

        let err = Pipeline::builder("p")
            .step([t("a")])
            .step([t("b"), t("a")])
            .build()
            .unwrap_err();
        match err {
            PipelineError::DuplicateTask {
                task,
                first_step,
                second_step,
                ..
            } => {
                assert_eq!(&*task, "a");
                assert_eq!(&*first_step, "a");
                assert_eq!(&*second_step, "b|a");
            }
            other => panic!("{other}"),
        }

        let err = Pipeline::builder("p")
            .step(Step::new("s", [t("a")]))
            .step(Step::new("s", [t("b")]))
            .build()
            .unwrap_err();
        assert!(matches!(err, PipelineError::DuplicateStep { .. }));

        let err = Pipeline::builder("p").step([t("")]).build().unwrap_err();
        assert!(
            matches!(err, PipelineError::EmptyName { what: "step", .. }),
            "{err}"
        );

        let err = Pipeline::builder("p")
            .step(Step::new("s", [t("")]))
            .build()
            .unwrap_err();
        assert!(matches!(err, PipelineError::EmptyName { what: "task", .. }));

        let err = Pipeline::builder("").step([t("a")]).build().unwrap_err();
        assert!(matches!(err, PipelineError::EmptyName { what: "pipeline", .. }));
    }

    #[test]
    fn thresholds_are_checked_with_the_step_named() {
        let err = Pipeline::builder("p")
            .step(Step::new("s", [t("a")]).strategy(EvaluationStrategy::AtLeastPercent(101.0)))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "at_least_percent threshold 101 is out of range: expected a percentage from 0 to 100 (step `s`)"
        );
    }

    #[test]
    fn step_lookup() {
        let p = Pipeline::builder("p")
            .step([t("a")])
            .step(t("b"))
            .build()
            .unwrap();
        assert_eq!(p.step("b").unwrap().tasks().len(), 1);
        assert!(matches!(p.step("zz"), Err(PipelineError::UnknownStep { .. })));
        assert_eq!(p.task_count(), 2);
    }
}
