//! A step's task list: cheap to grow while the step is built, and shared,
//! not copied, by every run once the step is in a pipeline.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::task::Task;

/// The tasks of a [`Step`](crate::Step), in declaration order.
///
/// A run hands its step's tasks to every context and worker as one
/// `Arc<[Task]>`, which cannot grow. A step built one task at a time
/// (`Step::task` in a loop) would copy that list on every call, quadratic
/// in its length, so while tasks are being added the list is a plain
/// `Vec`, and [`PipelineBuilder::build`](crate::PipelineBuilder::build)
/// seals it into the shared form once.
pub(crate) enum TaskList<T> {
    Shared(Arc<[Task<T>]>),
    Growing(Vec<Task<T>>),
}

impl<T> TaskList<T> {
    /// Appends `task`, copying a shared list into a growing one first.
    pub(crate) fn push(&mut self, task: Task<T>) {
        if let Self::Shared(shared) = self {
            let mut tasks = Vec::with_capacity((shared.len() + 1).next_power_of_two());
            tasks.extend(shared.iter().cloned());
            *self = Self::Growing(tasks);
        }
        if let Self::Growing(tasks) = self {
            tasks.push(task);
        }
    }

    /// Turns a growing list into the shared form, once.
    pub(crate) fn seal(&mut self) {
        if let Self::Growing(tasks) = self {
            *self = Self::Shared(std::mem::take(tasks).into());
        }
    }

    /// The list in its shared form. A sealed list, which every step of a
    /// pipeline has, is shared as it is; a growing one is copied.
    pub(crate) fn shared(&self) -> Arc<[Task<T>]> {
        match self {
            Self::Shared(shared) => Arc::clone(shared),
            Self::Growing(tasks) => tasks.as_slice().into(),
        }
    }
}

impl<T> Deref for TaskList<T> {
    type Target = [Task<T>];

    fn deref(&self) -> &[Task<T>] {
        match self {
            Self::Shared(shared) => shared,
            Self::Growing(tasks) => tasks,
        }
    }
}

impl<T> FromIterator<Task<T>> for TaskList<T> {
    fn from_iter<I: IntoIterator<Item = Task<T>>>(tasks: I) -> Self {
        Self::Shared(tasks.into_iter().collect())
    }
}

impl<T> Clone for TaskList<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Shared(shared) => Self::Shared(Arc::clone(shared)),
            Self::Growing(tasks) => Self::Growing(tasks.clone()),
        }
    }
}

impl<T> fmt::Debug for TaskList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str) -> Task<u8> {
        Task::from_fn(name, |_| Ok(0))
    }

    #[test]
    fn a_list_grows_in_place_and_seals_into_one_shared_copy() {
        let mut list: TaskList<u8> = [task("a")].into_iter().collect();
        let before = list.shared();
        list.push(task("b"));
        list.push(task("c"));
        assert!(matches!(list, TaskList::Growing(_)));
        // The shared list the step had before is left as it was.
        assert_eq!(before.len(), 1);
        let names: Vec<_> = list.iter().map(Task::name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        list.seal();
        let TaskList::Shared(sealed) = &list else {
            panic!("a sealed list is shared");
        };
        assert!(Arc::ptr_eq(sealed, &list.shared()));
        assert_eq!(list.len(), 3);
    }
}
