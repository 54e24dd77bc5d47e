//! The values a step produced, by task name, in declaration order.

use std::fmt;
use std::sync::Arc;

/// The names of a step's tasks, in declaration order: shared by every
/// result set the step produces, so a result costs no reference count of
/// its own.
pub(crate) type Names = Arc<[Arc<str>]>;

/// One slot per task of a step, in declaration order, `None` where the
/// task has no value. A one-task step, the commonest in long chains,
/// keeps its slot inline rather than in an allocation of its own.
pub(crate) type ValueColumn<T> = smallvec::SmallVec<[Option<T>; 1]>;

/// The successful results of one step, in the order its tasks were declared.
///
/// Cloning is cheap: the values sit behind one `Arc`. Tasks that failed
/// have no entry here; their errors are in the step's
/// [`ExecutionState`](crate::ExecutionState).
pub struct ResultSet<T> {
    // `None` for an empty set, so that the many empty sets (every pending
    // state, every first step's `previous`) cost no allocation.
    columns: Option<Arc<Columns<T>>>,
}

/// A result set's storage, by column: one slot per task of the step, in
/// declaration order, empty where the task has no value. It is the column
/// the step's tasks wrote their values into, kept as it is: a step of
/// 10,000 tasks is one vector and one shared name list, with nothing per
/// task to count, allocate or move when the step ends.
struct Columns<T> {
    names: Names,
    values: ValueColumn<T>,
    /// How many slots hold a value.
    len: usize,
}

impl<T> ResultSet<T> {
    /// A set with no results.
    #[must_use]
    pub const fn empty() -> Self {
        Self { columns: None }
    }

    pub(crate) fn from_entries(entries: Vec<(Arc<str>, T)>) -> Self {
        let (names, values): (Vec<_>, ValueColumn<T>) =
            entries.into_iter().map(|(n, v)| (n, Some(v))).unzip();
        Self::from_column(names.into(), values)
    }

    /// The values of a step whose tasks are `names`: one slot per task,
    /// `None` for a task without a value.
    pub(crate) fn from_column(names: Names, values: ValueColumn<T>) -> Self {
        debug_assert_eq!(names.len(), values.len());
        let len = values.iter().filter(|v| v.is_some()).count();
        Self::counted(names, values, len)
    }

    /// [`from_column`](Self::from_column), where the caller has counted
    /// the `len` slots that hold a value.
    pub(crate) fn counted(names: Names, values: ValueColumn<T>, len: usize) -> Self {
        debug_assert_eq!(len, values.iter().filter(|v| v.is_some()).count());
        Self {
            columns: (len > 0).then(|| Arc::new(Columns { names, values, len })),
        }
    }

    /// Number of results.
    #[must_use]
    pub fn len(&self) -> usize {
        self.columns.as_deref().map_or(0, |c| c.len)
    }

    /// Whether there are no results.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.columns.is_none()
    }

    /// The result of the task named `task`. A linear search: steps are
    /// usually small, and large ones are read with [`iter`](Self::iter).
    #[must_use]
    pub fn get(&self, task: &str) -> Option<&T> {
        self.iter().find(|(name, _)| *name == task).map(|(_, v)| v)
    }

    /// `(task name, value)` pairs in declaration order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &T)> + '_ {
        Iter {
            slots: self.columns.as_deref().map_or(&[][..], |c| &c.values[..]).iter(),
            names: self.columns.as_deref().map_or(&[][..], |c| &c.names[..]),
            position: 0,
            left: self.len(),
        }
    }

    /// The values in declaration order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// The first value, handy for single-task steps.
    #[must_use]
    pub fn first(&self) -> Option<&T> {
        self.columns.as_deref()?.values.iter().find_map(Option::as_ref)
    }
}

/// The `(name, value)` pairs of a result set: the slots that hold a
/// value, each with its task's name. It knows how many are left, so the
/// set's iterators stay exact-size.
struct Iter<'a, T> {
    slots: std::slice::Iter<'a, Option<T>>,
    names: &'a [Arc<str>],
    /// The position in the step of the next slot.
    position: usize,
    left: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (&'a str, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        for slot in self.slots.by_ref() {
            let position = self.position;
            self.position += 1;
            if let Some(value) = slot {
                self.left -= 1;
                return Some((&self.names[position], value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> Clone for ResultSet<T> {
    fn clone(&self) -> Self {
        Self {
            columns: self.columns.clone(),
        }
    }
}

impl<T> Default for ResultSet<T> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<T: fmt::Debug> fmt::Debug for ResultSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for ResultSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::ResultSet;

    #[test]
    fn lookup_and_order() {
        let set = ResultSet::from_entries(vec![("b".into(), 2), ("a".into(), 1)]);
        assert_eq!(set.get("a"), Some(&1));
        assert_eq!(set.get("zz"), None);
        assert_eq!(set.values().copied().collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(set.first(), Some(&2));
        assert_eq!(set.clone(), set);
        assert!(ResultSet::<u8>::empty().is_empty());
    }

    #[test]
    fn columns_with_gaps_name_each_value_by_its_position() {
        let names: super::Names = ["a", "b", "c", "d"].into_iter().map(Into::into).collect();
        let set = ResultSet::from_column(names.clone(), vec![Some(10), None, Some(30), None].into());
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![("a", &10), ("c", &30)]);
        assert_eq!(set.iter().len(), 2);
        assert_eq!(set.values().len(), 2);
        assert_eq!(set.len(), 2);
        assert_eq!(set.get("c"), Some(&30));
        assert_eq!(set.get("b"), None);
        let mut iter = set.iter();
        iter.next();
        assert_eq!(iter.len(), 1, "exact size as it goes");
        let whole = ResultSet::from_column(names.clone(), vec![Some(1), Some(2), Some(3), Some(4)].into());
        assert_eq!(whole.get("d"), Some(&4));
        assert_eq!(
            whole,
            ResultSet::from_entries(vec![
                ("a".into(), 1),
                ("b".into(), 2),
                ("c".into(), 3),
                ("d".into(), 4)
            ])
        );
        assert_ne!(whole, set);
        let late = ResultSet::from_column(names.clone(), vec![None, None, None, Some(4)].into());
        assert_eq!(late.first(), Some(&4));
        let none = ResultSet::<u8>::from_column(names, vec![None; 4].into());
        assert!(none.is_empty());
        assert_eq!(none.iter().len(), 0);
    }
}
