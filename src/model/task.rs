//! Tasks: named units of work, as user types or closures.

use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::error::TaskError;
use crate::model::config::ExecutorConfig;
use crate::model::flow::Flow;
use crate::model::retry::RetryPolicy;
use crate::records::results::ResultSet;

/// What a task sees while it runs.
pub struct TaskContext<'a, T> {
    pub(crate) input: &'a T,
    pub(crate) previous: &'a ResultSet<T>,
    pub(crate) name: &'a str,
    pub(crate) step: &'a str,
    pub(crate) attempt: u32,
    pub(crate) halt: &'a dyn Fn() -> bool,
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

    /// Whether the run was cancelled or its deadline passed. Long tasks
    /// should check this now and then and return early: the run waits for
    /// running tasks before it returns as `Cancelled`.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        (self.halt)()
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
    /// [`TaskFailure::Failed`](crate::TaskFailure::Failed) with
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

/// The engine's view of a task's work: a value plus a flow request.
pub(crate) trait Work<T>: Send + Sync {
    fn call(&self, ctx: &TaskContext<'_, T>) -> Result<Flow<T>, TaskError>;

    /// Runs the work once under `catch_unwind`, writing its value into
    /// `value` and a failure or a panic into `missed`, and returns what
    /// else it asked for.
    ///
    /// This is how the engine calls a task. Being a provided method, it is
    /// built once per kind of work with the user's code inlined, so the
    /// value is written straight into the slot the engine gives (a step's
    /// result column), and the answer comes back in a register. Handing
    /// the whole `Result<Flow<T>, _>` back instead made every layer copy it
    /// right after the layer below had written it field by field: copies
    /// that stall on the store buffer, and were half the cost of a no-op
    /// task.
    #[inline]
    fn call_into(
        &self,
        ctx: &TaskContext<'_, T>,
        value: &mut Option<T>,
        missed: &mut Option<Missed>,
    ) -> Returned {
        let run = AssertUnwindSafe(|| match self.call(ctx) {
            Ok(Flow::Continue(v)) => {
                *value = Some(v);
                Returned::Value
            }
            Ok(Flow::Switch(target, v)) => {
                *value = Some(v);
                Returned::Switch(target)
            }
            Ok(Flow::Stop(v)) => {
                *value = Some(v);
                Returned::Stop
            }
            Err(e) => {
                *missed = Some(Missed::Failed(e));
                Returned::Missed
            }
        });
        // `AssertUnwindSafe` is sound: after a panic the engine only reads
        // its payload, never what the task may have left half-updated.
        std::panic::catch_unwind(run).unwrap_or_else(|payload| {
            *missed = Some(Missed::Panicked(payload));
            Returned::Missed
        })
    }
}

/// What a task returned besides its value; see [`Work::call_into`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Returned {
    /// A value, and nothing more.
    Value,
    /// A value and a switch target.
    Switch(u8),
    /// A value and a request to stop the run.
    Stop,
    /// No value: what went wrong is in the `missed` slot.
    Missed,
}

/// Why a task gave no value.
pub(crate) enum Missed {
    Failed(TaskError),
    /// The panic's payload, which the attempt's out-of-line path turns
    /// into a message and lets go of safely.
    Panicked(Box<dyn Any + Send>),
}

struct EventWork<E>(E);

impl<T, E: Event<T>> Work<T> for EventWork<E> {
    fn call(&self, ctx: &TaskContext<'_, T>) -> Result<Flow<T>, TaskError> {
        self.0.run(ctx).map(Flow::Continue)
    }
}

struct FnWork<F>(F);

impl<T, F> Work<T> for FnWork<F>
where
    F: Fn(&TaskContext<'_, T>) -> Result<T, TaskError> + Send + Sync,
{
    fn call(&self, ctx: &TaskContext<'_, T>) -> Result<Flow<T>, TaskError> {
        (self.0)(ctx).map(Flow::Continue)
    }
}

struct FlowWork<F>(F);

impl<T, F> Work<T> for FlowWork<F>
where
    F: Fn(&TaskContext<'_, T>) -> Result<Flow<T>, TaskError> + Send + Sync,
{
    fn call(&self, ctx: &TaskContext<'_, T>) -> Result<Flow<T>, TaskError> {
        (self.0)(ctx)
    }
}

/// Which executor a task asked for.
#[derive(Debug, Clone, Eq)]
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
    pub(crate) work: Arc<dyn Work<T>>,
    pub(crate) executor: ExecutorRef,
    pub(crate) retry: Option<Arc<RetryPolicy>>,
}

impl PartialEq for ExecutorRef {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            // Tasks cloned from one template share the name's allocation;
            // comparing pointers first skips the string compare that
            // planning a 10,000-task step would otherwise repeat.
            (Self::Named(a), Self::Named(b)) => Arc::ptr_eq(a, b) || a == b,
            (Self::Config(a), Self::Config(b)) => a == b,
            (Self::Default, Self::Default) => true,
            _ => false,
        }
    }
}

impl<T> Task<T> {
    fn with_work(name: impl Into<Arc<str>>, work: Arc<dyn Work<T>>) -> Self {
        Self {
            name: name.into(),
            work,
            executor: ExecutorRef::Default,
            retry: None,
        }
    }

    /// A task running `event`.
    pub fn new(name: impl Into<Arc<str>>, event: impl Event<T> + 'static) -> Self
    where
        T: 'static,
    {
        Self::with_work(name, Arc::new(EventWork(event)))
    }

    /// A task running the closure `f`.
    pub fn from_fn<F>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(&TaskContext<'_, T>) -> Result<T, TaskError> + Send + Sync + 'static,
        T: 'static,
    {
        Self::with_work(name, Arc::new(FnWork(f)))
    }

    /// A task running the closure `f`, which also says where the run goes:
    /// [`Flow::Switch`] picks one of its step's switch targets, and
    /// [`Flow::Stop`] stops the run after the step.
    ///
    /// ```
    /// use conveyor::{Flow, Task};
    /// let route: Task<i64> = Task::flow_fn("route", |c| {
    ///     let v = *c.input();
    ///     Ok(if v < 0 { Flow::Switch(2, v) } else { Flow::Continue(v) })
    /// });
    /// # let _ = route;
    /// ```
    pub fn flow_fn<F>(name: impl Into<Arc<str>>, f: F) -> Self
    where
        F: Fn(&TaskContext<'_, T>) -> Result<Flow<T>, TaskError> + Send + Sync + 'static,
        T: 'static,
    {
        Self::with_work(name, Arc::new(FlowWork(f)))
    }

    /// Retries failed attempts under `policy`.
    ///
    /// Default: one attempt, no retries.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(Arc::new(policy));
        self
    }

    /// The task's retry policy, if it has one.
    #[must_use]
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.retry.as_deref()
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

    /// The same work, executor and retry policy under the name `name`: one
    /// template can stand for several tasks, which a pipeline needs to name
    /// apart.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The name given to [`on`](Self::on), if the task asked for a
    /// registered executor.
    #[must_use]
    pub fn executor_name(&self) -> Option<&str> {
        match &self.executor {
            ExecutorRef::Named(name) => Some(name),
            ExecutorRef::Default | ExecutorRef::Config(_) => None,
        }
    }
}

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        Self {
            name: Arc::clone(&self.name),
            work: Arc::clone(&self.work),
            executor: self.executor.clone(),
            retry: self.retry.clone(),
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("work", &"<closure or event>")
            .field("executor", &self.executor)
            .field("retry", &self.retry)
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
            halt: &|| false,
        }
    }

    fn value(t: &Task<u32>, input: u32) -> u32 {
        let prev = ResultSet::empty();
        match t.work.call(&ctx(&input, &prev)).unwrap() {
            Flow::Continue(v) | Flow::Switch(_, v) | Flow::Stop(v) => v,
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
        let a = Task::new("a", Add(2));
        let b = Task::from_fn("b", |c: &TaskContext<'_, u32>| Ok(c.input() * 10));
        assert_eq!(value(&a, 5), 7);
        assert_eq!(value(&b, 5), 50);
        let boxed: Box<dyn Event<u32>> = Box::new(Add(1));
        assert_eq!(value(&Task::new("c", boxed), 1), 2);
        let f = Task::flow_fn("f", |c: &TaskContext<'_, u32>| Ok(Flow::Switch(3, *c.input())));
        let prev = ResultSet::empty();
        assert_eq!(f.work.call(&ctx(&4, &prev)).unwrap(), Flow::Switch(3, 4));
    }

    #[test]
    fn executor_choice_is_recorded() {
        let t: Task<u32> = Task::from_fn("x", |c| Ok(*c.input())).on("cpu");
        assert_eq!(t.executor, ExecutorRef::Named("cpu".into()));
        let t = t.executor(ExecutorConfig::Inline);
        assert_eq!(t.executor, ExecutorRef::Config(ExecutorConfig::Inline));
    }
}
