//! Where the tasks a text names come from.

use std::collections::HashMap;
use std::fmt;

use crate::model::task::Task;

/// Gives the task a name in a pointy text stands for.
///
/// The parser asks once per distinct name, in text order, and names each
/// occurrence apart itself (`A`, `A#2`, …, with
/// [`Task::with_name`]), so a source returns one task per name and need not
/// care what it is called. Closures `Fn(&str) -> Option<Task<T>>` are
/// sources; [`TaskRegistry`] is a map of task templates.
///
/// ```
/// use conveyor::{Pipeline, Task};
///
/// let tasks = |name: &str| match name {
///     "double" => Some(Task::from_fn(name, |c| Ok(c.input() * 2))),
///     "inc" => Some(Task::from_fn(name, |c| Ok(c.input() + 1))),
///     _ => None,
/// };
/// let pipeline: Pipeline<u64> = Pipeline::parse("double -> inc -> double", &tasks)?;
/// assert_eq!(pipeline.steps()[2].name(), "double#2");
/// # Ok::<(), conveyor::pointy::PointyError>(())
/// ```
pub trait TaskSource<T> {
    /// The task `name`, as written in the text, stands for, or `None` when
    /// the name is unknown (the parser then reports ``unknown task `NAME` ``
    /// at the name).
    fn task(&self, name: &str) -> Option<Task<T>>;
}

impl<T, F> TaskSource<T> for F
where
    F: Fn(&str) -> Option<Task<T>>,
{
    fn task(&self, name: &str) -> Option<Task<T>> {
        self(name)
    }
}

/// A map from names to task templates: a [`TaskSource`] for tasks known in
/// advance, closures or [`Event`](crate::Event)s alike. Looking a name up
/// clones its template, which is cheap (the work sits behind an `Arc`).
///
/// ```
/// use conveyor::pointy::TaskRegistry;
/// use conveyor::{Event, Pipeline, Task, TaskContext, TaskError};
///
/// struct Scale(u64);
/// impl Event<u64> for Scale {
///     fn run(&self, ctx: &TaskContext<'_, u64>) -> Result<u64, TaskError> {
///         Ok(ctx.input() * self.0)
///     }
/// }
///
/// let tasks = TaskRegistry::new()
///     .with(Task::new("Triple", Scale(3)))
///     .with(Task::from_fn("Check", |c| Ok(*c.input())).on("cpu"));
/// let pipeline = Pipeline::parse("Triple * 2 -> Check", &tasks)?;
/// assert_eq!(pipeline.steps()[0].tasks()[0].retry_policy().unwrap().max_attempts(), 2);
/// assert_eq!(pipeline.steps()[1].tasks()[0].executor_name(), Some("cpu"));
/// # Ok::<(), conveyor::pointy::PointyError>(())
/// ```
pub struct TaskRegistry<T> {
    tasks: HashMap<Box<str>, Task<T>>,
}

impl<T> TaskRegistry<T> {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self {
            tasks: HashMap::new(),
        }
    }

    /// Adds `task` under its own name, replacing a template of that name.
    #[must_use]
    pub fn with(mut self, task: Task<T>) -> Self {
        self.insert(task);
        self
    }

    /// Adds `task` under its own name; returns the template it replaces.
    pub fn insert(&mut self, task: Task<T>) -> Option<Task<T>> {
        self.tasks.insert(task.name().into(), task)
    }

    /// The template for `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Task<T>> {
        self.tasks.get(name)
    }

    /// The names known, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tasks.keys().map(|k| &**k)
    }

    /// How many names are known.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no name is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl<T> TaskSource<T> for TaskRegistry<T> {
    fn task(&self, name: &str) -> Option<Task<T>> {
        self.tasks.get(name).cloned()
    }
}

impl<T> Default for TaskRegistry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for TaskRegistry<T> {
    fn clone(&self) -> Self {
        Self {
            tasks: self.tasks.clone(),
        }
    }
}

impl<T> fmt::Debug for TaskRegistry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        f.debug_struct("TaskRegistry").field("names", &names).finish()
    }
}

impl<T> FromIterator<Task<T>> for TaskRegistry<T> {
    fn from_iter<I: IntoIterator<Item = Task<T>>>(iter: I) -> Self {
        let mut registry = Self::new();
        registry.extend(iter);
        registry
    }
}

impl<T> Extend<Task<T>> for TaskRegistry<T> {
    fn extend<I: IntoIterator<Item = Task<T>>>(&mut self, iter: I) {
        for task in iter {
            self.insert(task);
        }
    }
}
