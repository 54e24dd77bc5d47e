//! The values a step produced, by task name, in declaration order.

use std::fmt;
use std::sync::Arc;

/// The names of a step's tasks, in declaration order: shared by every
/// result set the step produces, so a result costs no reference count of
/// its own.
pub(crate) type Names = Arc<[Arc<str>]>;

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

/// A result set's storage, by column: the values, and which task each
/// belongs to. A step of 10,000 tasks that all succeed is one vector of
/// values and one shared name list, with nothing per task to count or
/// allocate.
struct Columns<T> {
    names: Names,
    values: Vec<T>,
    /// For each value, its task's position in `names`; `None` when every
    /// task has a value, in order.
    positions: Option<Vec<usize>>,
}

impl<T> Columns<T> {
    fn name(&self, k: usize) -> &str {
        let position = self.positions.as_ref().map_or(k, |p| p[k]);
        &self.names[position]
    }
}

impl<T> ResultSet<T> {
    /// A set with no results.
    #[must_use]
    pub const fn empty() -> Self {
        Self { columns: None }
    }

    pub(crate) fn from_entries(entries: Vec<(Arc<str>, T)>) -> Self {
        let (names, values): (Vec<_>, Vec<_>) = entries.into_iter().unzip();
        Self::from_columns(names.into(), values, None)
    }

    /// The values of the tasks `positions` picks out of `names` (every
    /// task, in order, when `None`).
    pub(crate) fn from_columns(names: Names, values: Vec<T>, positions: Option<Vec<usize>>) -> Self {
        debug_assert!(
            positions
                .as_ref()
                .map_or(values.len() == names.len(), |p| p.len() == values.len())
        );
        Self {
            columns: (!values.is_empty()).then(|| {
                Arc::new(Columns {
                    names,
                    values,
                    positions,
                })
            }),
        }
    }

    fn values_slice(&self) -> &[T] {
        self.columns.as_deref().map_or(&[], |c| c.values.as_slice())
    }

    /// Number of results.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values_slice().len()
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
        let columns = self.columns.as_deref();
        self.values_slice()
            .iter()
            .enumerate()
            .map(move |(k, v)| (columns.map_or("", |c| c.name(k)), v))
    }

    /// The values in declaration order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        self.values_slice().iter()
    }

    /// The first value, handy for single-task steps.
    #[must_use]
    pub fn first(&self) -> Option<&T> {
        self.values_slice().first()
    }
}

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
        let set = ResultSet::from_columns(names.clone(), vec![10, 30], Some(vec![0, 2]));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![("a", &10), ("c", &30)]);
        assert_eq!(set.get("c"), Some(&30));
        assert_eq!(set.get("b"), None);
        let whole = ResultSet::from_columns(names, vec![1, 2, 3, 4], None);
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
    }
}
