//! Tasks: named units of work, as user types or closures.

use std::fmt;
use std::sync::Arc;

use crate::config::ExecutorConfig;
use crate::error::TaskError;
use crate::results::ResultSet;

/// What a task sees while it runs.
pub struct TaskContext<'a, T> {
    pub(crate) input: &'a T,
    pub(crate) previous: &'a ResultSet<T>,
    pub(crate) name: &'a str,
    pub(crate) step: &'a str,
    pub(crate) attempt: u32,
}

impl<'a, T> TaskContext<'a, T> {
    /// The input the run was started with.
    #[must_use]
    pub fn input(&self) -> &'a T {
        self.input
    }

    /// The results of the step that ran before this one; empty for the
    /// first step.
    #[must_use]
    pub fn previous(&self) -> &'a ResultSet<T> {
        self.previous
    }

    /// This task's name.
    #[must_use]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The name of the step this task belongs to.
    #[must_use]
    pub fn step(&self) -> &'a str {
        self.step
    }

    /// The attempt number, from 1.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl<T> fmt::Debug for TaskContext<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("name", &self.name)
            .field("step", &self.step)
            .field("attempt", &self.attempt)
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

/// A unit of work of the user's own type.
///
/// Closures become tasks through [`Task::from_fn`]; implement `Event` when a
/// task carries configuration or state of its own.
///
/// ```
/// use conveyor::{Event, Task, TaskContext, TaskError};
/// struct Scale(u64);
/// impl Event<u64> for Scale {
///     fn run(&self, ctx: &TaskContext<'_, u64>) -> Result<u64, TaskError> {
///         Ok(ctx.input() * self.0)
///     }
/// }
/// let task = Task::new("triple", Scale(3));
/// assert_eq!(task.name(), "triple");
/// ```
pub trait Event<T>: Send + Sync {
    /// Runs the task once.
    ///
    /// # Errors
    /// Whatever the task decides is a failure; the engine records it as
    /// [`PipelineError::TaskFailed`](crate::PipelineError::TaskFailed) with
    /// the task's name, its step and the attempt.
    fn run(&self, ctx: &TaskContext<'_, T>) -> Result<T, TaskError>;
}

impl<T, E: Event<T> + ?Sized> Event<T> for Box<E> {
    fn run(&self, ctx: &TaskContext<'_, T>) -> Result<T, TaskError> {
        (**self).run(ctx)
    }
}

impl<T, E: Event<T> + ?Sized> Event<T> for Arc<E> {
    fn run(&self, ctx: &TaskContext<'_, T>) -> Result<T, TaskError> {
        (**self).run(ctx)
    }
}

struct FnEvent<F>(F);

impl<T, F> Event<T> for FnEvent<F>
where
    F: Fn(&TaskContext<'_, T>) -> Result<T, TaskError> + Send + Sync,
{
    fn run(&self, ctx: &TaskContext<'_, T>) -> Result<T, TaskError> {
        (self.0)(ctx)
    }
}

/// Which executor a task asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ExecutorRef {
    /// The executor's default config.
    Default,
    /// A name registered in the executor's registry.
    Named(Arc<str>),
    /// A config given directly.
    Config(ExecutorConfig),
}

/// A named unit of work, the executor it wants, and (later) its policies.
///
/// Cloning is cheap: the work sits behind an `Arc`.
///
/// ```
/// use conveyor::{ExecutorConfig, Task};
/// let t = Task::from_fn("double", |ctx| Ok(ctx.input() * 2)).on("cpu");
/// let u: Task<u64> = Task::from_fn("id", |ctx| Ok(*ctx.input()))
///     .executor(ExecutorConfig::Inline);
/// assert_eq!(t.name(), "double");
/// # let _: Task<u64> = t;
/// # let _ = u;
/// ```
pub struct Task<T> {
    pub(crate) name: Arc<str>,
    pub(crate) event: Arc<dyn Event<T>>,
    pub(crate) executor: ExecutorRef,
}

impl<T> Task<T> {
    /// A task running `event`.
    pub fn new(name: impl Into<Arc<str>>, event: impl Event<T> + 'static) -> Self {
        Self {
            name: name.into(),
            event: Arc::new(event),
            executor: ExecutorRef::Default,
        }
    }

    /// A task running the closure `f`.
    pub fn from_fn<F>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(&TaskContext<'_, T>) -> Result<T, TaskError> + Send + Sync + 'static,
        T: 'static,
    {
        Self::new(name, FnEvent(f))
    }

    /// Runs this task on the executor registered under `name` with
    /// [`PipelineExecutorBuilder::executor`](crate::PipelineExecutorBuilder::executor)
    /// or [`custom_executor`](crate::PipelineExecutorBuilder::custom_executor).
    /// An unknown name is reported by `execute` before anything runs.
    ///
    /// Default: the executor's default config.
    #[must_use]
    pub fn on(mut self, name: impl Into<Arc<str>>) -> Self {
        self.executor = ExecutorRef::Named(name.into());
        self
    }

    /// Runs this task on `config` directly, without a registered name.
    ///
    /// Default: the executor's default config.
    #[must_use]
    pub fn executor(mut self, config: ExecutorConfig) -> Self {
        self.executor = ExecutorRef::Config(config);
        self
    }

    /// The task's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        Self {
            name: Arc::clone(&self.name),
            event: Arc::clone(&self.event),
            executor: self.executor.clone(),
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("event", &"<event>")
            .field("executor", &self.executor)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(input: &'a u32, prev: &'a ResultSet<u32>) -> TaskContext<'a, u32> {
        TaskContext {
            input,
            previous: prev,
            name: "t",
            step: "s",
            attempt: 1,
        }
    }

    #[test]
    fn closures_and_events_run_alike() {
        struct Add(u32);
        impl Event<u32> for Add {
            fn run(&self, ctx: &TaskContext<'_, u32>) -> Result<u32, TaskError> {
                Ok(ctx.input() + self.0)
            }
        }
        let prev = ResultSet::empty();
        let a = Task::new("a", Add(2));
        let b = Task::from_fn("b", |c: &TaskContext<'_, u32>| Ok(c.input() * 10));
        assert_eq!(a.event.run(&ctx(&5, &prev)).unwrap(), 7);
        assert_eq!(b.event.run(&ctx(&5, &prev)).unwrap(), 50);
        let boxed: Box<dyn Event<u32>> = Box::new(Add(1));
        assert_eq!(Task::new("c", boxed).event.run(&ctx(&1, &prev)).unwrap(), 2);
    }

    #[test]
    fn executor_choice_is_recorded() {
        let t: Task<u32> = Task::from_fn("x", |c| Ok(*c.input())).on("cpu");
        assert_eq!(t.executor, ExecutorRef::Named("cpu".into()));
        let t = t.executor(ExecutorConfig::Inline);
        assert_eq!(t.executor, ExecutorRef::Config(ExecutorConfig::Inline));
    }
}
