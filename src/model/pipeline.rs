//! Pipelines: named steps of tasks, checked when built.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::config::ExecutorConfig;
use super::flow::{Flow, FlowGraph};
use super::step::Step;
use super::task::{Task, TaskContext};
use crate::error::{BuildError, NameKind, TaskError};

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
/// # Ok::<(), conveyor::BuildError>(())
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

    /// The step named `name`, if the pipeline has one.
    #[must_use]
    pub fn step(&self, name: &str) -> Option<&Step<T>> {
        self.inner.steps.iter().find(|s| &*s.name == name)
    }

    /// A canonical text of the pipeline's shape: its name, step names,
    /// strategies with their parameters, task names in order, and every
    /// declared edge. Pipelines built the same way describe alike, in any
    /// process and with any Rust release; checkpoints fingerprint it
    /// (`checkpoint::Fingerprint::of_pipeline`).
    #[must_use]
    pub fn describe(&self) -> String {
        super::describe::describe(self)
    }

    /// Number of tasks over all steps.
    #[must_use]
    pub fn task_count(&self) -> usize {
        self.inner.steps.iter().map(|s| s.tasks.len()).sum()
    }
}

impl<T> Pipeline<T> {
    /// A copy of this pipeline whose every task runs on `config`, whatever
    /// executor it asked for. Names, steps and strategies are unchanged; the
    /// original is left as it was.
    ///
    /// ```
    /// use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Task};
    /// let p: Pipeline<u64> = Pipeline::builder("p")
    ///     .step([Task::from_fn("a", |c| Ok(c.input() + 1)).on("cpu")])
    ///     .build()?;
    /// // No executor named `cpu` is registered, but the copy does not need one.
    /// let inline = p.with_executor(ExecutorConfig::Inline);
    /// let run = PipelineExecutor::builder().build()?.execute(&inline, 1)?;
    /// assert_eq!(run.output()?.get("a"), Some(&2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// Never: the copy has the names of a pipeline that was already checked.
    #[must_use]
    pub fn with_executor(&self, config: ExecutorConfig) -> Pipeline<T> {
        let builder = self.steps().iter().fold(Pipeline::builder(self.name()), |b, s| {
            let mut step = s.clone();
            step.tasks = s
                .tasks
                .iter()
                .map(|t| t.clone().executor(config.clone()))
                .collect();
            // Every task now names `config`.
            step.uniform = true;
            b.step(step)
        });
        // The builder checks only names and thresholds, which are the
        // original's and passed when it was built.
        builder
            .build()
            .expect("a copy of a checked pipeline passes the same checks")
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
    ///
    /// Closures given to [`Task::from_fn`] here are type-checked before the
    /// step is known to hold `Task<T>`, so a closure that calls a method on
    /// its input may need its type spelled out. [`task`](Self::task) and
    /// [`step_with`](Self::step_with) take closures where `T` is already
    /// known, and need no annotations.
    #[must_use]
    pub fn step(mut self, step: impl Into<Step<T>>) -> Self {
        self.steps.push(step.into());
        self
    }

    /// Appends a step of one task, named `name`, that runs `f`.
    ///
    /// ```
    /// use conveyor::Pipeline;
    /// let p = Pipeline::<String>::builder("shout")
    ///     .task("upper", |c| Ok(c.input().to_uppercase()))
    ///     .task("exclaim", |c| Ok(format!("{}!", c.previous().first().unwrap())))
    ///     .build()?;
    /// assert_eq!(p.steps().len(), 2);
    /// # Ok::<(), conveyor::BuildError>(())
    /// ```
    #[must_use]
    pub fn task<F>(self, name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(&TaskContext<'_, T>) -> Result<T, TaskError> + Send + Sync + 'static,
        T: 'static,
    {
        self.step(Task::from_fn(name, f))
    }

    /// Appends the step that `build` makes from an empty [`Step`]: add tasks
    /// with [`Step::task`], and set its name, strategy, executor and edges.
    /// A step given no name is named after its tasks, joined with `|`.
    ///
    /// ```
    /// use conveyor::{EvaluationStrategy, Pipeline};
    /// let p = Pipeline::<String>::builder("stats")
    ///     .task("clean", |c| Ok(c.input().trim().to_owned()))
    ///     .step_with(|s| {
    ///         s.task("len", |c| Ok(c.previous().first().unwrap().len().to_string()))
    ///             .task("words", |c| Ok(c.previous().first().unwrap().split(' ').count().to_string()))
    ///             .strategy(EvaluationStrategy::AnyMustSucceed)
    ///     })
    ///     .build()?;
    /// assert_eq!(p.steps()[1].name(), "len|words");
    /// # Ok::<(), conveyor::BuildError>(())
    /// ```
    #[must_use]
    pub fn step_with(self, build: impl FnOnce(Step<T>) -> Step<T>) -> Self {
        self.step(build(Step::empty()))
    }

    /// Appends a step of one task that steers the flow: `f` returns a
    /// [`Flow`], as in [`Task::flow_fn`].
    #[must_use]
    pub fn flow_task<F>(self, name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(&TaskContext<'_, T>) -> Result<Flow<T>, TaskError> + Send + Sync + 'static,
        T: 'static,
    {
        self.step(Task::flow_fn(name, f))
    }

    /// Checks the pipeline and builds it.
    ///
    /// # Errors
    /// - [`BuildError::EmptyPipeline`]: no steps;
    /// - [`BuildError::EmptyStep`]: a step without tasks;
    /// - [`BuildError::EmptyName`]: an empty pipeline, step or task name;
    /// - [`BuildError::InvalidName`]: a name holding a control character;
    /// - [`BuildError::DuplicateStep`] and [`BuildError::DuplicateTask`]:
    ///   names are not unique;
    /// - [`BuildError::InvalidThreshold`]: a step's strategy has a
    ///   threshold out of range;
    /// - [`BuildError::InvalidSwitch`]: a switch target outside 2 to 9;
    /// - [`BuildError::MissingStep`]: an edge to a step that does not
    ///   exist;
    /// - [`BuildError::Cycle`]: edges that loop (loops are not allowed,
    ///   so every run ends);
    /// - [`BuildError::UnreachableStep`]: a step no path leads to.
    pub fn build(mut self) -> Result<Pipeline<T>, BuildError> {
        for step in &mut self.steps {
            step.seal();
        }
        let pipeline = &self.name;
        if pipeline.is_empty() {
            return Err(BuildError::EmptyName {
                pipeline: Arc::clone(pipeline),
                what: NameKind::Pipeline,
            });
        }
        if self.steps.is_empty() {
            return Err(BuildError::EmptyPipeline {
                pipeline: Arc::clone(pipeline),
            });
        }
        let controlled = |what: NameKind, name: &str| {
            // Thread names, logs and reports cannot carry control characters,
            // and a NUL would make spawning a named thread panic.
            name.chars()
                .any(char::is_control)
                .then(|| BuildError::InvalidName {
                    what,
                    name: name.to_owned(),
                })
        };
        if let Some(e) = controlled(NameKind::Pipeline, pipeline) {
            return Err(e);
        }
        for step in &self.steps {
            let names = std::iter::once((NameKind::Step, &*step.name))
                .chain(step.tasks.iter().map(|t| (NameKind::Task, &*t.name)));
            if let Some(e) = names.filter_map(|(what, name)| controlled(what, name)).next() {
                return Err(e);
            }
        }
        let mut steps: HashMap<&str, ()> = HashMap::with_capacity(self.steps.len());
        let mut tasks: HashMap<&str, &Arc<str>> = HashMap::new();
        for step in &self.steps {
            if step.tasks.is_empty() {
                return Err(BuildError::EmptyStep {
                    pipeline: Arc::clone(pipeline),
                    step: Arc::clone(&step.name),
                });
            }
            if step.name.is_empty() {
                return Err(BuildError::EmptyName {
                    pipeline: Arc::clone(pipeline),
                    what: NameKind::Step,
                });
            }
            if steps.insert(&step.name, ()).is_some() {
                return Err(BuildError::DuplicateStep {
                    pipeline: Arc::clone(pipeline),
                    step: Arc::clone(&step.name),
                });
            }
            step.strategy.validate().map_err(|e| match e {
                BuildError::InvalidThreshold {
                    strategy,
                    value,
                    expected,
                    ..
                } => BuildError::InvalidThreshold {
                    strategy,
                    value,
                    expected,
                    step: Some(Arc::clone(&step.name)),
                },
                other => other,
            })?;
            for task in step.tasks.iter() {
                if task.name.is_empty() {
                    return Err(BuildError::EmptyName {
                        pipeline: Arc::clone(pipeline),
                        what: NameKind::Task,
                    });
                }
                if let Some(first) = tasks.insert(&task.name, &step.name) {
                    return Err(BuildError::DuplicateTask {
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
    use crate::model::strategy::EvaluationStrategy;

    fn t(name: &str) -> Task<u8> {
        Task::from_fn(name, |c| Ok(*c.input()))
    }

    #[test]
    fn bad_pipelines_are_refused_with_context() {
        let err = Pipeline::<u8>::builder("p").build().unwrap_err();
        assert!(matches!(err, BuildError::EmptyPipeline { .. }));

        let err = Pipeline::builder("p")
            .step(Vec::<Task<u8>>::new())
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::EmptyStep { .. }), "{err}");

        let err = Pipeline::builder("p")
            .step([t("a")])
            .step([t("b"), t("a")])
            .build()
            .unwrap_err();
        match err {
            BuildError::DuplicateTask {
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
        assert!(matches!(err, BuildError::DuplicateStep { .. }));

        let err = Pipeline::builder("p").step([t("")]).build().unwrap_err();
        assert!(
            matches!(
                err,
                BuildError::EmptyName {
                    what: NameKind::Step,
                    ..
                }
            ),
            "{err}"
        );

        let err = Pipeline::builder("p")
            .step(Step::new("s", [t("")]))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            BuildError::EmptyName {
                what: NameKind::Task,
                ..
            }
        ));

        let err = Pipeline::builder("").step([t("a")]).build().unwrap_err();
        assert!(matches!(
            err,
            BuildError::EmptyName {
                what: NameKind::Pipeline,
                ..
            }
        ));
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
        assert!(p.step("zz").is_none());
        assert_eq!(p.task_count(), 2);
    }
}
